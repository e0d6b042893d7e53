// Byte-for-byte agreement of `myelin json canonical` and `myelin json sign` with Synapse's
// own Python libraries (canonicaljson, signedjson) on randomized documents. Needs the
// pinned virtual environment made by scripts/python-env.sh (CI creates it); without it the
// tests are reported as skipped, by name.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./test-io.js";

const here = dirname(fileURLToPath(import.meta.url));
const python = join(here, "../../../.venv/bin/python");
const script = join(here, "../test-support/synapse_json.py");
const havePython = existsSync(python);

function runPython(args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(python, [script, ...args], { maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    );
    child.stdin!.end(input);
  });
}

// Strings that stress the encoders: astral-plane characters (sorted by code point, not
// UTF-16 unit), the BMP private-use area that UTF-16 order puts after surrogates, control
// characters, U+2028/U+2029 (which JavaScript's JSON escapes nowhere but must stay raw),
// quotes and backslashes.
const special = fc.constantFrom(
  "\u0000", "\u0001", "\u001f", "\u007f", "\b", "\f", "\n", "\r", "\t", '"', "\\", "/",
  "\u2028", "\u2029", "\ue000", "\uffff", "\ud83d\ude00", "\u{10ffff}", "\u{1f600}", "é", "日本",
);
const text = fc
  .array(fc.oneof(fc.string({ unit: "binary", maxLength: 6 }), special), { maxLength: 5 })
  .map((parts) => parts.join(""))
  .filter((s) => !/\p{Cs}/u.test(s)); // no lone surrogates (they have no UTF-8 form)
const integer = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.maxSafeInteger(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 32, -(2 ** 31)),
);
const { doc } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    integer,
    text,
    fc.array(tie("value"), { maxLength: 4 }),
    tie("doc"),
  ),
  doc: fc.dictionary(text, tie("value"), { maxKeys: 6 }),
}));

const DOCS = 400;
let input: string;
beforeAll(() => {
  const docs = fc.sample(doc, { numRuns: DOCS, seed: 20261126 });
  input = docs.map((d) => JSON.stringify(d)).join("\n") + "\n";
  // The sample must actually contain the hard cases, or agreement proves little.
  for (const needle of ["\u2028", "\u{1f600}", "\ue000", "\\u0001", String(Number.MAX_SAFE_INTEGER)]) {
    if (!input.includes(needle)) throw new Error(`random sample lacks ${JSON.stringify(needle)}`);
  }
});

describe("agreement with Synapse's Python libraries", () => {
  it.skipIf(!havePython)(
    `json canonical matches canonicaljson.encode_canonical_json on ${DOCS} random documents (needs .venv)`,
    async () => {
      const ours = await runCli(["json", "canonical", "--jsonl"], input);
      expect(ours.code).toBe(0);
      const theirs = await runPython(["canonical"], input);
      const a = ours.stdout.split("\n");
      const b = theirs.split("\n");
      expect(a.length).toBe(DOCS + 1);
      for (let i = 0; i < a.length; i++) expect(a[i], `document ${i + 1}`).toBe(b[i]);
    },
  );

  it.skipIf(!havePython)(
    `json sign matches signedjson.sign_json on ${DOCS} random documents (needs .venv)`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "myelin-agree-"));
      const keyFile = join(dir, "signing.key");
      await writeFile(keyFile, (await runCli(["key", "generate", "--version", "agree"])).stdout);
      const ours = await runCli(["json", "sign", "--jsonl", "--key", keyFile, "--server", "example.org"], input);
      expect(ours.code).toBe(0);
      const theirs = await runPython(["sign", "example.org", keyFile], input);
      const a = ours.stdout.split("\n");
      const b = theirs.split("\n");
      expect(a.length).toBe(DOCS + 1);
      for (let i = 0; i < a.length; i++) expect(a[i], `document ${i + 1}`).toBe(b[i]);
    },
  );

  it.skipIf(!havePython)("refuses integers beyond 2^53-1 that canonicaljson would pass through (needs .venv)", async () => {
    // canonicaljson encodes any Python int; the spec limits canonical JSON to ±(2^53-1)
    // and Synapse enforces that separately for room versions 6+. We refuse at the encoder.
    const big = '{"n":9007199254740992}\n';
    expect((await runPython(["canonical"], big)).trim()).toBe('{"n":9007199254740992}');
    const ours = await runCli(["json", "canonical", "--jsonl"], big);
    expect(ours.code).toBe(1);
    expect(ours.stderr).toMatch(/integer-out-of-range/);
  });
});
