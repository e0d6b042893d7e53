import { parseJson, verifyJsonSignature, type VerifyKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";

/** What `myelin json verify` checks each document against. */
export interface VerifySpec {
  readonly server: string;
  readonly keys: ReadonlyMap<string, VerifyKey>;
}

/** The outcome for one line of JSON Lines input: `"ok"` or why it failed. */
export interface LineResult {
  readonly line: number;
  readonly result: string;
}

/**
 * Verifies one JSON document: it must carry a signature by `server` under at least one of
 * the given key IDs, and every such signature must verify (as Synapse's
 * `verify_signed_json` does for one key). Returns `"ok"` or the reason it failed.
 */
export function verifyDocument(text: string, spec: VerifySpec): string {
  let doc: JsonObject;
  try {
    const value = parseJson(text, { strict: false });
    if (value === null || typeof value !== "object" || Array.isArray(value)) return "not a JSON object";
    doc = value;
  } catch (error) {
    return (error as Error).message;
  }
  let checked = 0;
  try {
    for (const [keyId, key] of spec.keys) {
      const result = verifyJsonSignature(doc, spec.server, keyId, key.publicKey);
      if (result.valid) {
        checked++;
        continue;
      }
      if (result.reason === "missing-signature") continue;
      return `${result.reason} (${spec.server} ${keyId})`;
    }
  } catch (error) {
    return (error as Error).message;
  }
  if (checked === 0) {
    return `missing-signature: no signature by ${spec.server} under ${[...spec.keys.keys()].join(", ")}`;
  }
  return "ok";
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Verifies the JSON Lines in `bytes[start, end)`, whose first line is line `firstLine`.
 * Blank lines are skipped (but counted); a line that is not UTF-8 fails on its own.
 */
export function verifyRange(
  bytes: Uint8Array,
  start: number,
  end: number,
  firstLine: number,
  spec: VerifySpec,
): LineResult[] {
  const out: LineResult[] = [];
  let line = firstLine;
  let pos = start;
  while (pos < end) {
    let nl = bytes.indexOf(10, pos);
    if (nl === -1 || nl > end) nl = end;
    let text: string | undefined;
    try {
      text = decoder.decode(bytes.subarray(pos, nl)).trim();
    } catch {
      out.push({ line, result: "not valid UTF-8" });
    }
    if (text !== undefined && text !== "") out.push({ line, result: verifyDocument(text, spec) });
    pos = nl + 1;
    line++;
  }
  return out;
}
