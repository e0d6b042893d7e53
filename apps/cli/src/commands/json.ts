import { encodeCanonicalJson, parseJson, signJson } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { parseFlags, requireFlag, singleFile } from "../args.js";
import type { Command } from "../command.js";
import { stat } from "node:fs/promises";
import { CliError, readInput, readInputBytes, splitJsonLines, write, type CliIo } from "../io.js";
import { verifyJsonLines } from "../parallel-verify.js";
import { verifyDocument } from "../verify-lines.js";
import { loadSigningKey, parseObject, parseVerifyKeys } from "./shared.js";

/** The documents of the input: one, or one per line with `--jsonl`. */
async function readDocuments(io: CliIo, file: string | undefined, jsonl: boolean) {
  const text = await readInput(io, file);
  if (jsonl) return splitJsonLines(text).map((d) => ({ where: `line ${d.line}`, text: d.text }));
  if (text.trim() === "") throw new CliError(`${file ?? "standard input"}: no JSON document`);
  return [{ where: file ?? "standard input", text }];
}

function canonical(value: unknown, where: string): string {
  try {
    return encodeCanonicalJson(value);
  } catch (error) {
    throw new CliError(`${where}: ${(error as Error).message}`);
  }
}

const canonicalCommand: Command = {
  path: ["json", "canonical"],
  usage: "[--jsonl] [FILE]",
  summary: "Print the canonical JSON form of each document (spec appendices, Canonical JSON).",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, { jsonl: { type: "boolean" } });
    const out: string[] = [];
    for (const doc of await readDocuments(io, singleFile(positionals), values.jsonl === true)) {
      let value;
      try {
        // Not strict: `1e10` and `-0` are accepted and normalised, as the spec's examples show;
        // numbers that are not integers are then refused by the encoder.
        value = parseJson(doc.text, { strict: false });
      } catch (error) {
        throw new CliError(`${doc.where}: ${(error as Error).message}`);
      }
      out.push(canonical(value, doc.where));
    }
    await write(io.stdout, out.join("\n") + "\n");
    return 0;
  },
};

const signCommand: Command = {
  path: ["json", "sign"],
  usage: "--key KEYFILE --server NAME [--jsonl] [FILE]",
  summary: "Sign each JSON object as server NAME with the first key of KEYFILE; print it canonical.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      key: { type: "string" },
      server: { type: "string" },
      jsonl: { type: "boolean" },
    });
    const key = await loadSigningKey(requireFlag(values.key, "key"));
    const server = requireFlag(values.server, "server");
    const out: string[] = [];
    for (const doc of await readDocuments(io, singleFile(positionals), values.jsonl === true)) {
      const object: JsonObject = parseObject(doc.text, doc.where);
      let signed: JsonObject;
      try {
        signed = signJson(object, server, key);
      } catch (error) {
        throw new CliError(`${doc.where}: ${(error as Error).message}`);
      }
      out.push(canonical(signed, doc.where));
    }
    await write(io.stdout, out.join("\n") + "\n");
    return 0;
  },
};

const verifyCommand: Command = {
  path: ["json", "verify"],
  usage: "--server NAME --key ed25519:ID=PUBLICKEY [--key ...] [--jsonl] [FILE]",
  summary:
    "Check NAME's signatures. Exit 0 only if every document verifies; with --jsonl, print one line per document: ok, or why not.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      server: { type: "string" },
      key: { type: "string", multiple: true },
      jsonl: { type: "boolean" },
    });
    const server = requireFlag(values.server, "server");
    if (values.key === undefined || values.key.length === 0) throw new CliError("missing required option --key", 2);
    const spec = { server, keys: parseVerifyKeys(values.key) };
    const file = singleFile(positionals);
    if (values.jsonl !== true) {
      const doc = (await readDocuments(io, file, false))[0]!;
      const result = verifyDocument(doc.text, spec);
      if (result !== "ok") throw new CliError(`${doc.where}: ${result}`);
      await write(io.stdout, "ok\n");
      return 0;
    }
    const size = file === undefined || file === "-" ? undefined : await stat(file).then((s) => s.size, () => undefined);
    const results = await verifyJsonLines(() => readInputBytes(io, file), spec, size);
    let failed = 0;
    const lines = results.map(({ line, result }) => {
      if (result === "ok") return result;
      failed++;
      return `line ${line}: ${result}`;
    });
    await write(io.stdout, lines.length === 0 ? "" : lines.join("\n") + "\n");
    if (failed > 0) io.stderr.write(`myelin: ${failed} of ${results.length} documents failed verification\n`);
    return failed === 0 ? 0 : 1;
  },
};

/** `myelin json ...` */
export const JSON_COMMANDS: readonly Command[] = [canonicalCommand, signCommand, verifyCommand];
