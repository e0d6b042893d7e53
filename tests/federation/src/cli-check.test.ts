// `myelin check` (the CLI, as a real process) against a real myelin-server process: the
// report must be GOOD throughout, including the signed round trip, where the server has to
// fetch the requesting server's keys over federation to authenticate the CLI's request.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { SERVER_BIN } from "./harness.js";
import { useCluster } from "./use-cluster.js";

const cluster = useCluster({ names: ["a", "b"] });
// apps/server/bin/myelin-server.js -> apps/cli/bin/myelin.js (built by `pnpm test` / test:federation).
const CLI = join(dirname(SERVER_BIN), "../../cli/bin/myelin.js");

function myelin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("myelin check against the reference server", () => {
  it("reports GOOD for every check, signed round trip included", async () => {
    const [a, b] = cluster().servers;
    const r = await myelin([
      "check", a!.serverName,
      "--ca", cluster().caFile, "--allow-ip", "127.0.0.0/8", "--host-map", "localhost=127.0.0.1",
      // Sign as server b with b's own key: a authenticates the request by fetching b's keys.
      "--key", join(b!.dataDir, "signing.key"), "--origin", b!.serverName,
    ]);
    const lines = r.stdout.split("\n").filter((l) => /^(GOOD|WARN|BAD|SKIP)\b/.test(l));
    expect(lines.length, r.stdout + r.stderr).toBeGreaterThan(5);
    expect(lines.filter((l) => !l.startsWith("GOOD")), r.stdout).toEqual([]);
    expect(r.stdout).toMatch(/^GOOD +auth\b/m);
    expect(r.code).toBe(0);
  });

  it("says exactly what is wrong when the server is down", async () => {
    const [a] = cluster().servers;
    await a!.stop();
    try {
      const r = await myelin(["check", a!.serverName, "--ca", cluster().caFile, "--allow-ip", "127.0.0.0/8", "--host-map", "localhost=127.0.0.1", "--timeout", "3"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^BAD +connect: 127\.0\.0\.1:\d+ refused the connection/m);
    } finally {
      await a!.start();
    }
  });
});
