// The CLI as a real process, the installed executable (bin/myelin.js, running the build in
// dist/, which `pnpm test` makes first), for what only a whole process shows: worker
// threads sharing the input, exit codes, standard streams.
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeBase64, encodeCanonicalJson, signJson, signingKeyFromSeed } from "@myelin/signing";
import { describe, expect, it } from "vitest";

const cliDir = join(dirname(fileURLToPath(import.meta.url)), "..");

function runProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/myelin.js", ...args],
      { cwd: cliDir, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

describe("myelin json verify --jsonl as a process", () => {
  it("verifies a multi-megabyte file across threads, reporting each bad line by its number", async () => {
    const key = signingKeyFromSeed(new Uint8Array(32).fill(7), "t");
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const doc = { n: i, body: "x".repeat(700), sender: `@u${i}:example.org` };
      lines.push(encodeCanonicalJson(signJson(doc, "example.org", key)));
    }
    // One forgery in each half, so both the main thread's and the worker's slice report one;
    // blank lines still count for numbering.
    lines[10] = lines[10]!.replace('"n":10', '"n":11');
    lines[2990] = lines[2990]!.replace('"n":2990', '"n":2991');
    lines.splice(1500, 0, "");
    const file = join(await mkdtemp(join(tmpdir(), "myelin-proc-")), "docs.jsonl");
    await writeFile(file, lines.join("\n") + "\n");
    const r = await runProcess([
      "json", "verify", "--jsonl", "--server", "example.org", "--key", `${key.keyId}=${encodeBase64(key.publicKey)}`, file,
    ]);
    expect(r.code).toBe(1);
    const out = r.stdout.trimEnd().split("\n");
    expect(out).toHaveLength(3000);
    expect(out.filter((l) => l !== "ok")).toEqual([
      "line 11: bad-signature (example.org ed25519:t)",
      "line 2992: bad-signature (example.org ed25519:t)",
    ]);
    expect(r.stderr).toBe("myelin: 2 of 3000 documents failed verification\n");
  }, 60_000);

  it("exits 2 with usage on an unknown flag", async () => {
    const r = await runProcess(["json", "canonical", "--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^myelin: Unknown option '--frobnicate'/);
  }, 30_000);
});
