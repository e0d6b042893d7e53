/**
 * Canonical JSON without the number rules, for crafting hostile input: `@myelin/signing`
 * rightly refuses to encode fractions or integers beyond ±(2^53-1), but a hostile server
 * can still hash and sign such JSON (Synapse's sender and sytest do), so tests need to.
 * Keys are sorted by code point and nothing else differs from canonical JSON.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  compareCodePoints,
  encodeBase64,
  encodeBase64Url,
  formatXMatrixHeader,
  getEd25519Backend,
  redactEvent,
  type SigningKey,
} from "@myelin/signing";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";

/** Canonical JSON of `value`, except that any finite number is written as JavaScript writes it. */
export function encodeLenientCanonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`cannot encode ${value} as JSON`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(encodeLenientCanonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object).filter((k) => object[k] !== undefined).sort(compareCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${encodeLenientCanonicalJson(object[k])}`).join(",")}}`;
  }
  throw new TypeError(`cannot encode a ${typeof value} as JSON`);
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function sign(text: string, key: SigningKey): string {
  return encodeBase64(getEd25519Backend().sign(new Uint8Array(Buffer.from(text, "utf8")), key.seed));
}

function without(object: JsonObject, ...names: string[]): JsonObject {
  const copy: JsonObject = {};
  for (const [key, value] of Object.entries(object)) if (!names.includes(key)) copy[key] = value;
  return copy;
}

/** The X-Matrix `Authorization` header for a request whose content may hold any numbers. */
export function signRequestLenient(request: {
  method: string;
  uri: string;
  origin: string;
  destination: string;
  content?: JsonValue;
  key: SigningKey;
}): string {
  const json: Record<string, unknown> = { method: request.method, uri: request.uri, origin: request.origin, destination: request.destination };
  if (request.content !== undefined) json["content"] = request.content;
  return formatXMatrixHeader({ origin: request.origin, destination: request.destination, key: request.key.keyId, sig: sign(encodeLenientCanonicalJson(json), request.key) });
}

/**
 * Hashes and signs an event as `serverName` (spec server-server API § "Signing events"),
 * tolerating any numbers: content hash over the event without `unsigned`, `signatures`
 * and `hashes`; signature over the redacted event without `signatures` and `unsigned`.
 */
export function signEventLenient(event: JsonObject, serverName: string, key: SigningKey, rules: Pick<RoomVersionRules, "redaction">): JsonObject {
  const hash = encodeBase64(sha256(encodeLenientCanonicalJson(without(event, "unsigned", "signatures", "hashes"))));
  const hashed: JsonObject = { ...event, hashes: { sha256: hash } };
  const redacted = redactEvent(hashed, rules);
  const signature = sign(encodeLenientCanonicalJson(without(redacted, "signatures", "unsigned")), key);
  return { ...hashed, signatures: { [serverName]: { [key.keyId]: signature } } };
}

/** The event ID (room versions 4+) of an event that may hold any numbers: `$` + URL-safe Base64 of its reference hash. */
export function computeEventIdLenient(event: JsonObject, rules: Pick<RoomVersionRules, "redaction">): string {
  const redacted = redactEvent(event, rules);
  return "$" + encodeBase64Url(sha256(encodeLenientCanonicalJson(without(redacted, "signatures", "unsigned"))));
}
