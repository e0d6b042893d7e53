// myelin-server as a real process: the installed executable (bin/myelin-server.js, running
// the build in dist/, which the root `pnpm test` makes first), for what only a whole
// process shows: the flags as typed, the printed address, exit codes, signals.
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { readFile, stat, writeFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeBase64, verifyJsonSignature } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHomeserver } from "./app.js";
import type { TlsFiles } from "./test-helpers.js";
import { removeTemporaryDirectories, request, temporaryDirectory, testConfig, writeTlsFiles } from "./test-helpers.js";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "myelin-server.js");
const LISTENING = /^myelin-server: (\S+) listening on (\S+) \(data: (.+)\)$/m;

interface Running {
  readonly child: ChildProcess;
  readonly serverName: string;
  readonly url: string;
  readonly dataDir: string;
  output(): { stdout: string; stderr: string };
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
afterAll(removeTemporaryDirectories);

function launch(args: string[], cwd: string): { child: ChildProcess; exited: Promise<number | string>; output(): { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | string>((resolve) =>
    child.once("close", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** Runs the server until it says where it listens. */
async function startProcess(args: string[], cwd: string): Promise<Running> {
  const proc = launch(args, cwd);
  const found = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 15 s: ${JSON.stringify(proc.output())}`)), 15_000);
    const check = (): void => {
      const match = LISTENING.exec(proc.output().stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match);
      }
    };
    proc.child.stdout?.on("data", check);
    void proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening: ${JSON.stringify(proc.output())}`));
    });
  });
  return { ...proc, serverName: found[1]!, url: found[2]!, dataDir: found[3]! };
}

/** Runs the server expecting it to exit by itself. */
async function runToExit(args: string[], cwd: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const proc = launch(args, cwd);
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 15_000);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, ...proc.output() };
}

async function stopProcess(running: Running): Promise<number | string> {
  running.child.kill("SIGTERM");
  return running.exited;
}

let tls: TlsFiles;
beforeAll(async () => {
  tls = await writeTlsFiles(await temporaryDirectory());
});

describe("myelin-server as a process", () => {
  it("starts with no flags in an empty directory, saying where it listens", async () => {
    const cwd = await temporaryDirectory();
    const running = await startProcess([], cwd);
    expect(running.output().stdout).toMatch(
      new RegExp(`^myelin-server: localhost:8008 listening on http://127\\.0\\.0\\.1:8008 \\(data: ${cwd}/myelin-data\\)$`, "m"),
    );
    expect((await stat(join(cwd, "myelin-data", "signing.key"))).mode & 0o777).toBe(0o600);
    const r = await request(`${running.url}/_matrix/federation/v1/version`);
    expect((r.json as { server: { name: string } }).server.name).toBe("Myelin");
    expect(await stopProcess(running)).toBe(0);
  }, 30_000);

  it("serves TLS on the port the system chose, keeps its key across restarts and stops on SIGTERM", async () => {
    const dir = await temporaryDirectory();
    const args = ["--server-name", "proc.test", "--listen", "127.0.0.1:0", "--data", "data", "--tls-cert", tls.certFile, "--tls-key", tls.keyFile];
    const first = await startProcess(args, dir);
    expect(first.serverName).toBe("proc.test");
    expect(first.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(first.dataDir).toBe(join(dir, "data"));
    expect(first.url).not.toBe("https://127.0.0.1:0");
    const keys = (await request(`${first.url}/_matrix/key/v2/server`, { ca: tls.ca.cert })).json as JsonObject;
    expect(await stopProcess(first)).toBe(0);
    expect(first.output().stdout).toMatch(/^myelin-server: SIGTERM, stopping$/m);
    expect(first.output().stdout).toMatch(/ INFO GET \/_matrix\/key\/v2\/server 200 \d+ms origin=-$/m);

    const second = await startProcess(args, dir);
    const again = (await request(`${second.url}/_matrix/key/v2/server`, { ca: tls.ca.cert })).json as JsonObject;
    expect(again["verify_keys"]).toEqual(keys["verify_keys"]);
    expect(second.output().stdout).not.toMatch(/generated a new signing key/);
    expect(await stopProcess(second)).toBe(0);
  }, 30_000);

  it("acts as a notary for another server reached with --federation-ca and --federation-allow-ip", async () => {
    const b = createHomeserver(testConfig(await temporaryDirectory(), { tls: { certFile: tls.certFile, keyFile: tls.keyFile } }));
    const bInfo = await b.start();
    try {
      const a = await startProcess(
        ["--listen", "127.0.0.1:0", "--data", await temporaryDirectory(), "--federation-ca", tls.caFile, "--federation-allow-ip", "127.0.0.0/8"],
        await temporaryDirectory(),
      );
      const aKeys = (await request(`${a.url}/_matrix/key/v2/server`)).json as { verify_keys: Record<string, { key: string }> };
      const bKeys = (await request(`${bInfo.address.url}/_matrix/key/v2/server`, { ca: tls.ca.cert })).json as {
        verify_keys: Record<string, { key: string }>;
      };
      const r = await request(`${a.url}/_matrix/key/v2/query/${bInfo.serverName}`);
      const [relayed] = (r.json as { server_keys: JsonObject[] }).server_keys;
      expect(relayed?.["server_name"]).toBe(bInfo.serverName);
      for (const [entity, published] of [[a.serverName, aKeys], [bInfo.serverName, bKeys]] as const) {
        const [keyId, { key }] = Object.entries(published.verify_keys)[0]!;
        expect(verifyJsonSignature(relayed!, entity, keyId, decodeBase64(key))).toMatchObject({ valid: true });
      }
      expect(await stopProcess(a)).toBe(0);
    } finally {
      await b.stop();
    }
  }, 30_000);

  it("exits 2 on a bad flag without creating anything", async () => {
    const cwd = await temporaryDirectory();
    const unknown = await runToExit(["--frobnicate"], cwd);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("myelin-server: Unknown option '--frobnicate'\nTry 'myelin-server --help'.\n");
    const listen = await runToExit(["--listen", "localhost"], cwd);
    expect(listen.code).toBe(2);
    expect(listen.stderr).toMatch(/^myelin-server: --listen: "localhost" is not HOST:PORT/);
    expect(await readdir(cwd)).toEqual([]);
  }, 30_000);

  it("prints help and its version", async () => {
    const cwd = await temporaryDirectory();
    const help = await runToExit(["--help"], cwd);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: myelin-server \[options\]/);
    expect(help.stdout).toMatch(/--federation-allow-ip CIDR/);
    const version = await runToExit(["--version"], cwd);
    expect(version.stdout).toMatch(/^myelin-server \d+\.\d+\.\d+/);
  }, 30_000);

  it("exits 1 when the server name changed or the signing key is corrupt", async () => {
    const dir = await temporaryDirectory();
    await writeFile(join(dir, "server-name"), "first.test\n");
    const renamed = await runToExit(["--server-name", "second.test", "--listen", "127.0.0.1:0", "--data", dir], dir);
    expect(renamed.code).toBe(1);
    expect(renamed.stderr).toMatch(/^myelin-server: the data in .* belongs to server name first\.test, not second\.test/);

    await writeFile(join(dir, "signing.key"), "garbage\n");
    const corrupt = await runToExit(["--server-name", "first.test", "--listen", "127.0.0.1:0", "--data", dir], dir);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/^myelin-server: the signing key .*signing\.key is corrupt \(malformed-line on line 1\)/);
    expect(await readFile(join(dir, "signing.key"), "utf8")).toBe("garbage\n");
  }, 30_000);
});
