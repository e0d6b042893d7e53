import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASE_FILE } from "../app.js";
import { SERVER_NAME_FILE } from "../data-dir.js";
import { launch } from "../main.js";
import { openSqliteStorage } from "../storage/storage.js";
import { CapturedOutput, removeTemporaryDirectories, temporaryDirectory } from "../test-helpers.js";
import { authenticate } from "./users.js";

afterAll(removeTemporaryDirectories);

async function run(argv: string[], cwd = "/"): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  const outcome = await launch(argv, { stdout, stderr, cwd });
  if (outcome.kind !== "exit") throw new Error("the user command must exit");
  return { code: outcome.code, stdout: stdout.text, stderr: stderr.text };
}

describe("myelin-server user add", () => {
  it("prints one JSON line with user_id, access_token and device_id, and the token authenticates the user", async () => {
    const data = await temporaryDirectory();
    const result = await run(["user", "add", "alice", "--data", data, "--server-name", "example.test"]);
    expect(result.code).toBe(0);
    expect(result.stdout.endsWith("\n")).toBe(true);
    expect(result.stdout.trim().split("\n")).toHaveLength(1);
    const printed = JSON.parse(result.stdout) as Record<string, string>;
    expect(Object.keys(printed).sort()).toEqual(["access_token", "device_id", "user_id"]);
    expect(printed["user_id"]).toBe("@alice:example.test");
    const storage = await openSqliteStorage(join(data, DATABASE_FILE));
    try {
      expect(await authenticate(storage, printed["access_token"])).toEqual({ userId: "@alice:example.test", deviceId: printed["device_id"] });
    } finally {
      await storage.close();
    }
  });

  it("takes the server name recorded in the data directory and resolves --data against the working directory", async () => {
    const cwd = await temporaryDirectory();
    expect((await run(["user", "add", "first", "--data", "d", "--server-name", "recorded.test"], cwd)).code).toBe(0);
    const second = await run(["user", "add", "second", "--data", "d"], cwd);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ user_id: "@second:recorded.test" });
  });

  it("exits 2 when no server name is recorded or given, and 1 when the given one differs from the recorded one", async () => {
    const data = await temporaryDirectory();
    const none = await run(["user", "add", "alice", "--data", data]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--server-name/);
    await writeFile(join(data, SERVER_NAME_FILE), "one.test\n");
    const other = await run(["user", "add", "alice", "--data", data, "--server-name", "two.test"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/one\.test/);
    expect(other.stdout).toBe("");
  });

  it("exits 1 for an existing user or an invalid name, and 2 for a malformed command", async () => {
    const data = await temporaryDirectory();
    expect((await run(["user", "add", "alice", "--data", data, "--server-name", "example.test"])).code).toBe(0);
    const again = await run(["user", "add", "alice", "--data", data]);
    expect([again.code, again.stderr.includes("M_USER_IN_USE")]).toEqual([1, true]);
    const invalid = await run(["user", "add", "Not Valid", "--data", data]);
    expect([invalid.code, invalid.stderr.includes("M_INVALID_USERNAME")]).toEqual([1, true]);
    expect((await run(["user", "remove", "alice", "--data", data])).code).toBe(2);
    expect((await run(["user", "add", "--data", data])).code).toBe(2);
    expect((await run(["user", "add", "x", "--bogus"])).code).toBe(2);
  });
});
