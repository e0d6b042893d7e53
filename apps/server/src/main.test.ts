import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HOMESERVER_VERSION } from "./app.js";
import { USAGE } from "./config.js";
import { EXIT_START_FAILED, EXIT_USAGE, launch } from "./main.js";
import { CapturedOutput, removeTemporaryDirectories, request, temporaryDirectory } from "./test-helpers.js";

afterAll(removeTemporaryDirectories);

async function run(argv: string[], cwd?: string) {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  const outcome = await launch(argv, { stdout, stderr, cwd: cwd ?? (await temporaryDirectory()) });
  return { outcome, stdout, stderr };
}

describe("launch", () => {
  it("starts the server and prints its name, URL and data directory", async () => {
    const cwd = await temporaryDirectory();
    const { outcome, stdout } = await run(["--listen", "127.0.0.1:0", "--log-level", "warn"], cwd);
    if (outcome.kind !== "running") throw new Error("expected a running server");
    try {
      const { port } = outcome.info.address;
      expect(stdout.text).toBe(`myelin-server: localhost:${port} listening on http://127.0.0.1:${port} (data: ${join(cwd, "myelin-data")})\n`);
      expect((await request(`${outcome.info.address.url}/_matrix/federation/v1/version`)).status).toBe(200);
      // --log-level warn: neither the first-run notice nor request lines.
      expect(stdout.lines).toHaveLength(1);
    } finally {
      await outcome.homeserver.stop();
    }
  });

  it("logs the first-run key generation at info level", async () => {
    const { outcome, stdout } = await run(["--listen", "127.0.0.1:0"]);
    if (outcome.kind !== "running") throw new Error("expected a running server");
    await outcome.homeserver.stop();
    expect(stdout.lines[0]).toMatch(/ INFO generated a new signing key keyId=ed25519:a_\w{4} dataDir=/);
  });

  it("prints usage and the version, exiting 0", async () => {
    const help = await run(["--help"]);
    expect(help.outcome).toEqual({ kind: "exit", code: 0 });
    expect(help.stdout.text).toBe(USAGE);
    const version = await run(["--version"]);
    expect(version.stdout.text).toBe(`myelin-server ${HOMESERVER_VERSION}\n`);
  });

  it("exits 2 with the problem and a pointer to --help on a configuration error", async () => {
    const { outcome, stdout, stderr } = await run(["--log-level", "loud"]);
    expect(outcome).toEqual({ kind: "exit", code: EXIT_USAGE });
    expect(stdout.text).toBe("");
    expect(stderr.text).toBe(`myelin-server: --log-level: "loud" is not one of debug, info, warn, error\nTry 'myelin-server --help'.\n`);
  });

  it("exits 1 with the reason when the server cannot start", async () => {
    const dir = await temporaryDirectory();
    await writeFile(join(dir, "server-name"), "other.test\n");
    const { outcome, stderr } = await run(["--data", dir, "--server-name", "me.test", "--listen", "127.0.0.1:0"]);
    expect(outcome).toEqual({ kind: "exit", code: EXIT_START_FAILED });
    expect(stderr.text).toMatch(/^myelin-server: the data in .* belongs to server name other\.test, not me\.test/);
  });
});
