import { parseJson, verifyJsonSignature, type VerifyKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";

/** What `myelin json verify` checks each document against. */
export interface VerifySpec {
  readonly server: string;
  readonly keys: ReadonlyMap<string, VerifyKey>;
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

/** Verifies each text in `texts`; results in the same order. */
export function verifyTexts(texts: readonly string[], spec: VerifySpec): string[] {
  return texts.map((text) => verifyDocument(text, spec));
}
