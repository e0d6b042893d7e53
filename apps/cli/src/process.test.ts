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
    // A forgery every 250 lines, spread over the ~37 chunks the threads claim (whichever does);
    // a blank line still counts for numbering.
    const forged = Array.from({ length: 12 }, (_, k) => 10 + 250 * k);
    for (const i of forged) lines[i] = lines[i]!.replace(`"n":${i},`, `"n":${i + 1},`);
    lines.splice(1500, 0, "");
    const file = join(await mkdtemp(join(tmpdir(), "myelin-proc-")), "docs.jsonl");
    await writeFile(file, lines.join("\n") + "\n");
    const r = await runProcess([
      "json", "verify", "--jsonl", "--server", "example.org", "--key", `${key.keyId}=${encodeBase64(key.publicKey)}`, file,
    ]);
    expect(r.code).toBe(1);
    const out = r.stdout.trimEnd().split("\n");
    expect(out).toHaveLength(3000);
    // File line numbers are 1-based, and lines from index 1500 on moved down by the blank one.
    const expected = forged.map((i) => `line ${i < 1500 ? i + 1 : i + 2}: bad-signature (example.org ed25519:t)`);
    expect(out.filter((l) => l !== "ok")).toEqual(expected);
    expect(r.stderr).toBe("myelin: 12 of 3000 documents failed verification\n");
  }, 60_000);

  it("exits 2 with usage on an unknown flag", async () => {
    const r = await runProcess(["json", "canonical", "--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^myelin: Unknown option '--frobnicate'/);
  }, 30_000);
});
