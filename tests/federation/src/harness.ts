/**
 * A cluster of real `myelin-server` processes on loopback: each with its own server name
 * (`localhost:<port>`, the port chosen up front so the name survives restarts), a
 * certificate from one test CA, its own data directory and log file. Each trusts the CA
 * for outbound federation and may reach 127.0.0.0/8, so the servers federate with each
 * other exactly as they would across the internet.
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as https from "node:https";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseSigningKeyFile, type SigningKey } from "@myelin/signing";
import { createTestCa, CsClient, trackChildProcess, type TestCa, type TestUser } from "@myelin/test-support";

/** Where the built server lives: `apps/server/bin/myelin-server.js` runs `dist/run.js`. */
const SERVER_PACKAGE_DIR = dirname(createRequire(import.meta.url).resolve("@myelin/homeserver/package.json"));
/** The executable every server process runs. */
export const SERVER_BIN = join(SERVER_PACKAGE_DIR, "bin", "myelin-server.js");

const LISTENING = /^myelin-server: (\S+) listening on (\S+) \(data: (.+)\)$/m;
const LOG_TAIL_LINES = 60;

/** What {@link startCluster} takes. */
export interface ClusterOptions {
  /** Short names of the servers, e.g. `["a", "b", "c"]`; each becomes `localhost:<port>`. */
  readonly names: readonly string[];
  /** Extra flags for every server (e.g. `["--log-level", "debug"]`). */
  readonly args?: readonly string[];
  /** How long one server may take to be ready; default 20 s. */
  readonly readyTimeoutMs?: number;
  /** `--log-level` of every server; default `debug`, so failures come with detail. */
  readonly logLevel?: "debug" | "info" | "warn" | "error";
}

export type { TestUser } from "@myelin/test-support";

/** Why a server process did not do what the harness asked. */
export type ServerProcessFailure = "missing-build" | "exited-early" | "not-ready" | "wrong-server-name" | "user-add-failed";

/** Thrown by {@link TestServer} methods; the message names the server and carries its log tail. */
export class ServerProcessError extends Error {
  override readonly name = "ServerProcessError";
  constructor(
    readonly reason: ServerProcessFailure,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Picks `count` distinct free TCP ports on 127.0.0.1 by binding them all at once and
 * releasing them. Another process could take one before the server does; the server then
 * exits with "address in use" and {@link TestServer.start} says so.
 */
export async function pickFreePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      return server;
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** One `myelin-server` process, which can be stopped, killed and started again with the same name, port and data. */
export class TestServer {
  /** The short name given to the cluster (`"a"`). */
  readonly name: string;
  readonly port: number;
  /** `localhost:<port>`: stable across restarts. */
  readonly serverName: string;
  /** `https://127.0.0.1:<port>`; the certificate also names `localhost`. */
  readonly url: string;
  readonly dataDir: string;
  /** Every line the process wrote (stdout and stderr, all runs), with harness notes. */
  readonly logFile: string;
  private readonly caCert: string;
  private readonly args: readonly string[];
  private readonly readyTimeoutMs: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private log: WriteStream | undefined;
  private runs = 0;

  constructor(options: {
    name: string;
    port: number;
    dir: string;
    caFile: string;
    caCert: string;
    certFile: string;
    keyFile: string;
    extraArgs: readonly string[];
    readyTimeoutMs: number;
  }) {
    this.name = options.name;
    this.port = options.port;
    this.serverName = `localhost:${options.port}`;
    this.url = `https://127.0.0.1:${options.port}`;
    this.dataDir = join(options.dir, "data");
    this.logFile = join(options.dir, "server.log");
    this.caCert = options.caCert;
    this.readyTimeoutMs = options.readyTimeoutMs;
    this.args = [
      "--server-name", this.serverName,
      "--listen", `127.0.0.1:${options.port}`,
      "--tls-cert", options.certFile,
      "--tls-key", options.keyFile,
      "--data", this.dataDir,
      "--federation-ca", options.caFile,
      "--federation-allow-ip", "127.0.0.0/8",
      ...options.extraArgs,
    ];
  }

  /** Whether the process is running (started and not yet exited). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Starts the process and waits until it is ready: it printed its "listening" line with
   * the expected server name, and `GET /_matrix/federation/v1/version` answers 200 over
   * HTTPS with a certificate the test CA vouches for.
   */
  async start(): Promise<void> {
    if (this.running) throw new Error(`server ${this.name} (${this.serverName}) is already running`);
    if (!existsSync(join(SERVER_PACKAGE_DIR, "dist", "run.js"))) {
      throw new ServerProcessError(
        "missing-build",
        `${SERVER_PACKAGE_DIR}/dist is missing: build first with \`pnpm --filter "@myelin/homeserver..." build\``,
      );
    }
    this.runs++;
    this.log ??= createWriteStream(this.logFile, { flags: "a" });
    this.note(`starting (run ${this.runs}): ${SERVER_BIN} ${this.args.join(" ")}`);
    const child = spawn(process.execPath, [SERVER_BIN, ...this.args], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    trackChildProcess(child);
    let stdout = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      this.log?.write(chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => this.log?.write(chunk));
    this.exited = new Promise<void>((resolve) =>
      child.once("close", (code, signal) => {
        this.note(`exited (code ${code ?? "-"}, signal ${signal ?? "-"})`);
        resolve();
      }),
    );

    const deadline = Date.now() + this.readyTimeoutMs;
    const listening = await new Promise<RegExpExecArray | "exited" | "timeout">((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), this.readyTimeoutMs);
      const check = (): void => {
        const match = LISTENING.exec(stdout);
        if (match !== null) {
          clearTimeout(timer);
          child.stdout?.off("data", check);
          resolve(match);
        }
      };
      child.stdout?.on("data", check);
      void this.exited?.then(() => {
        clearTimeout(timer);
        resolve("exited");
      });
    });
    if (listening === "exited") {
      throw new ServerProcessError("exited-early", `server ${this.name} (${this.serverName}) exited before listening\n${await this.logTail()}`);
    }
    if (listening === "timeout") {
      await this.kill("SIGKILL");
      throw new ServerProcessError("not-ready", `server ${this.name} (${this.serverName}) printed no "listening" line within ${this.readyTimeoutMs} ms\n${await this.logTail()}`);
    }
    if (listening[1] !== this.serverName) {
      await this.kill("SIGKILL");
      throw new ServerProcessError("wrong-server-name", `server ${this.name} says it is ${listening[1]}, expected ${this.serverName}`);
    }
    let lastProblem = "";
    while (Date.now() < deadline) {
      try {
        const status = await this.federationVersionStatus();
        if (status === 200) {
          this.note("ready");
          return;
        }
        lastProblem = `status ${status}`;
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      if (!this.running) break;
      await sleep(50);
    }
    await this.kill("SIGKILL");
    throw new ServerProcessError(
      "not-ready",
      `server ${this.name} (${this.serverName}) did not answer GET /_matrix/federation/v1/version with 200 (${lastProblem})\n${await this.logTail()}`,
    );
  }

  /** Stops the process with SIGTERM (graceful; SIGKILL after 10 s). A stopped server is left alone. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.note("stopping with SIGTERM");
    this.child?.kill("SIGTERM");
    const timer = setTimeout(() => {
      this.note("still running 10 s after SIGTERM: SIGKILL");
      this.child?.kill("SIGKILL");
    }, 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Sends `signal` (default SIGKILL: no chance to clean up) and waits until the process is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running) return;
    this.note(`killing with ${signal}`);
    this.child?.kill(signal);
    await this.exited;
  }

  /** Stops the process (if running) and starts it again: same name, port, data directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * Creates a local user with the server's own command line, `myelin-server user add
   * LOCALPART --data DIR --server-name NAME`, which prints the access token. The one place
   * that knows the command's output format is {@link parseUserAddOutput}.
   */
  async createUser(localpart: string): Promise<TestUser> {
    const args = [SERVER_BIN, "user", "add", localpart, "--data", this.dataDir, "--server-name", this.serverName];
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, args, { timeout: 20_000 }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      });
    });
    this.note(`user add ${localpart}: exit ${result.code}`);
    if (result.code !== 0) {
      throw new ServerProcessError(
        "user-add-failed",
        `\`myelin-server user add ${localpart}\` for ${this.serverName} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
      );
    }
    return parseUserAddOutput(result.stdout, localpart, this.serverName);
  }

  /** A Client-Server API client for `user` on this server. */
  client(user: TestUser): CsClient {
    return new CsClient({ baseUrl: this.url, ca: this.caCert, accessToken: user.accessToken, userId: user.userId });
  }

  /** Creates a local user ({@link TestServer.createUser}) and returns a client signed in as it. */
  async newClient(localpart: string): Promise<CsClient> {
    return this.client(await this.createUser(localpart));
  }

  /** The server's signing keys, read from its data directory (for crafting requests as this server). */
  async signingKeys(): Promise<SigningKey[]> {
    return parseSigningKeyFile(await readFile(join(this.dataDir, "signing.key"), "utf8"));
  }

  /** The last lines of this server's log, headed with its name and the log file's path. */
  async logTail(lines = LOG_TAIL_LINES): Promise<string> {
    let text = "";
    try {
      text = await readFile(this.logFile, "utf8");
    } catch {
      text = "(no log file)";
    }
    const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
    return `---- server ${this.name} (${this.serverName}), last ${lines} lines of ${this.logFile} ----\n${tail}`;
  }

  /** Closes the log file (after the process is gone). */
  async closeLog(): Promise<void> {
    const log = this.log;
    this.log = undefined;
    if (log !== undefined) await new Promise<void>((resolve) => log.end(() => resolve()));
  }

  private note(text: string): void {
    this.log?.write(`${new Date().toISOString()} HARNESS ${text}\n`);
  }

  private federationVersionStatus(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const req = https.get(
        { host: "127.0.0.1", port: this.port, path: "/_matrix/federation/v1/version", ca: this.caCert, servername: "localhost", agent: false, timeout: 2000 },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", reject);
    });
  }
}

/**
 * Reads what `myelin-server user add` printed: a JSON object `{ user_id, access_token }`,
 * or else the access token alone on the last line (the user ID is then `@localpart:server`).
 */
export function parseUserAddOutput(stdout: string, localpart: string, serverName: string): TestUser {
  const text = stdout.trim();
  const lines = text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  for (const candidate of [text, ...lines.slice().reverse()]) {
    if (!candidate.startsWith("{")) continue;
    try {
      const json = JSON.parse(candidate) as { user_id?: unknown; access_token?: unknown };
      if (typeof json.access_token === "string") {
        return { userId: typeof json.user_id === "string" ? json.user_id : `@${localpart}:${serverName}`, accessToken: json.access_token };
      }
    } catch {
      // not this line
    }
  }
  const last = lines.at(-1);
  if (last === undefined || /\s/.test(last)) {
    throw new ServerProcessError("user-add-failed", `cannot find an access token in the output of \`myelin-server user add ${localpart}\`: ${JSON.stringify(stdout)}`);
  }
  return { userId: `@${localpart}:${serverName}`, accessToken: last };
}

/** Servers started by {@link startCluster}, sharing one test CA. */
export interface Cluster {
  readonly ca: TestCa;
  /** The CA certificate file every server trusts for outbound federation. */
  readonly caFile: string;
  /** The directory holding every server's certificate, data and log. */
  readonly dir: string;
  readonly servers: readonly TestServer[];
  /** The server with this short name. */
  server(name: string): TestServer;
  /** Starts every server that is not running (after a test that failed with one down). */
  startStopped(): Promise<void>;
  /** The log tails of every server, for a failure report. */
  logTails(lines?: number): Promise<string>;
  /** Stops every server; removes the directory unless `keepFiles` (to read the logs after a failure). */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
}

/**
 * Starts one server per name, in parallel, each ready before this resolves (see
 * {@link TestServer.start}). On failure the servers already started are stopped and the
 * error carries their log tails.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), "myelin-federation-"));
  const ca = createTestCa("Myelin federation test CA");
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, ca.cert);
  const ports = await pickFreePorts(options.names.length);
  const extraArgs = ["--log-level", options.logLevel ?? "debug", ...(options.args ?? [])];
  const servers = await Promise.all(
    options.names.map(async (name, index) => {
      const serverDir = join(dir, name);
      await mkdir(serverDir, { recursive: true });
      const leaf = ca.issue(["localhost", "127.0.0.1"]);
      const certFile = join(serverDir, "cert.pem");
      const keyFile = join(serverDir, "key.pem");
      await writeFile(certFile, leaf.cert);
      await writeFile(keyFile, leaf.key, { mode: 0o600 });
      return new TestServer({
        name,
        port: ports[index] as number,
        dir: serverDir,
        caFile,
        caCert: ca.cert,
        certFile,
        keyFile,
        extraArgs,
        readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
      });
    }),
  );
  const cluster: Cluster = {
    ca,
    caFile,
    dir,
    servers,
    server(name) {
      const found = servers.find((s) => s.name === name);
      if (found === undefined) throw new Error(`no server named ${name} in this cluster (${servers.map((s) => s.name).join(", ")})`);
      return found;
    },
    async startStopped() {
      await Promise.all(servers.filter((s) => !s.running).map((s) => s.start()));
    },
    async logTails(lines) {
      return (await Promise.all(servers.map((s) => s.logTail(lines)))).join("\n");
    },
    async stop(stopOptions = {}) {
      await Promise.all(servers.map((s) => s.stop()));
      await Promise.all(servers.map((s) => s.closeLog()));
      if (stopOptions.keepFiles !== true) await rm(dir, { recursive: true, force: true });
    },
  };
  const started = await Promise.allSettled(servers.map((s) => s.start()));
  const failures = started.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length > 0) {
    await cluster.stop({ keepFiles: true });
    throw new Error(`the cluster did not start:\n${failures.map((f) => (f.reason as Error).message).join("\n")}`);
  }
  return cluster;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
