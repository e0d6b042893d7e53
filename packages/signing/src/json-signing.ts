/**
 * Signing JSON and checking JSON signatures (spec appendices, "Signing Details" and
 * "Checking for a Signature").
 *
 * A signature covers the canonical JSON of the object without its `signatures` and
 * `unsigned` members, so others can add signatures and unsigned data later. Signatures
 * are filed as `signatures[<entity>][<algorithm>:<version>]`, unpadded Base64.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "@myelin/types";
import { decodeBase64, encodeBase64 } from "./base64.js";
import type { EncodeCanonicalJsonOptions } from "./canonical-json.js";
import { encodeCanonicalJson } from "./canonical-json.js";
import { getEd25519Backend } from "./ed25519.js";
import { setMember } from "./json-parse.js";
import type { SigningKey } from "./keys.js";

/** A public key as the key ring knows it. */
export interface VerifyKey {
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** `valid_until_ts` of the key response it came from (ms since the epoch), if known. */
  readonly validUntilTs?: number;
  /** For a key from `old_verify_keys`: its `expired_ts` (ms since the epoch). */
  readonly expiredTs?: number;
}

/**
 * Finds a server's public key by key ID. May answer synchronously or asynchronously;
 * `undefined` means "unknown key". The key ring (not this package) decides where keys
 * come from, how long they are cached and the 7-day cap on `valid_until_ts`.
 */
export type KeyLookup = (
  serverName: string,
  keyId: string,
) => VerifyKey | undefined | PromiseLike<VerifyKey | undefined>;

/** The `signatures` member: entity -> key ID -> unpadded Base64 signature. */
export type Signatures = Record<string, Record<string, string>>;

/** Why a signature check failed. */
export type SignatureFailure =
  /** No signature from the entity (or, for a single-key check, none under that key ID). */
  | "missing-signature"
  /** The entity signed only with algorithms this library does not implement. */
  | "unsupported-algorithm"
  /** No verification key is known for any of the entity's key IDs. */
  | "unknown-key"
  /** Keys were found but none was valid at the relevant time. */
  | "key-expired"
  /** A signature that is not a string of valid Base64. */
  | "malformed-signature"
  /** A signature that does not verify. */
  | "bad-signature";

/** The result of checking an entity's signatures. */
export type SignatureCheck =
  | { readonly valid: true; /** Key IDs whose signatures verified. */ readonly keyIds: readonly string[] }
  | { readonly valid: false; readonly reason: SignatureFailure; /** The key ID concerned, if one. */ readonly keyId?: string };

/** Why {@link signJson} refused an object. */
export type JsonSigningFailure = "malformed-signatures";

/** Thrown by {@link signJson} when the existing `signatures` member is not an object of objects. */
export class JsonSigningError extends Error {
  override readonly name = "JsonSigningError";
  constructor(readonly reason: JsonSigningFailure) {
    super(`cannot sign JSON: ${reason}`);
  }
}

const ED25519_PREFIX = "ed25519:";

/** @internal True for non-null, non-array objects. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @internal The object without its top-level `signatures` and `unsigned` members (no copy if absent). */
export function withoutSignaturesAndUnsigned(object: JsonObject): JsonObject {
  if (!Object.hasOwn(object, "signatures") && !Object.hasOwn(object, "unsigned")) return object;
  const copy: JsonObject = {};
  for (const key of Object.keys(object)) {
    // setMember: a member named "__proto__" must stay a member, not become the prototype.
    if (key !== "signatures" && key !== "unsigned") setMember(copy, key, object[key] as JsonValue);
  }
  return copy;
}

/** @internal UTF-8 canonical JSON of the object as signed: without `signatures` and `unsigned`. */
export function signedBytes(object: JsonObject, options?: EncodeCanonicalJsonOptions): Uint8Array {
  return Buffer.from(encodeCanonicalJson(withoutSignaturesAndUnsigned(object), options), "utf8");
}

/**
 * The unpadded Base64 signature `key` makes over `object` (without its `signatures` and
 * `unsigned`). Does not modify or copy `object`. `options` are the encoder's (`compat`).
 *
 * @throws `CanonicalJsonError` when the object is not valid canonical JSON.
 */
export function computeJsonSignature(object: JsonObject, key: SigningKey, options?: EncodeCanonicalJsonOptions): string {
  return encodeBase64(getEd25519Backend().sign(signedBytes(object, options), key.seed));
}

/**
 * Returns a copy of `object` signed by `entity` with `key`: existing signatures are kept,
 * ours is added (replacing an older one under the same key ID), `unsigned` is kept but not
 * signed. The input is not modified. `options` are the encoder's (`compat`).
 *
 * @throws {@link JsonSigningError} if `signatures` exists but is not an object of objects;
 *   `CanonicalJsonError` when the object is not valid canonical JSON.
 */
export function signJson<T extends JsonObject>(
  object: T,
  entity: string,
  key: SigningKey,
  options?: EncodeCanonicalJsonOptions,
): T & { signatures: Signatures } {
  const existing = object["signatures"];
  if (existing !== undefined && !isJsonObject(existing)) throw new JsonSigningError("malformed-signatures");
  const entry = existing === undefined || !Object.hasOwn(existing, entity) ? undefined : existing[entity];
  if (entry !== undefined && !isJsonObject(entry)) throw new JsonSigningError("malformed-signatures");
  const signature = computeJsonSignature(object, key, options);
  const signatures = { ...existing, [entity]: { ...entry, [key.keyId]: signature } } as Signatures;
  return { ...object, signatures };
}

/**
 * @internal Checks `signatures[entity]` over `message` (the signed bytes) following the
 * spec's "Checking for a Signature": ignore unknown algorithms, require at least one known
 * key, and require every signature under a known, usable key to verify.
 */
export function checkEntitySignatures(
  signatures: unknown,
  entity: string,
  message: Uint8Array,
  keyFor: (keyId: string) => VerifyKey | undefined,
  isUsable: (key: VerifyKey) => boolean,
): SignatureCheck {
  if (!isJsonObject(signatures) || !Object.hasOwn(signatures, entity)) {
    return { valid: false, reason: "missing-signature" };
  }
  const entry = signatures[entity];
  if (!isJsonObject(entry)) return { valid: false, reason: "malformed-signature" };
  const keyIds = Object.keys(entry);
  if (keyIds.length === 0) return { valid: false, reason: "missing-signature" };
  const backend = getEd25519Backend();
  const verified: string[] = [];
  let sawSupported = false;
  let sawExpired = false;
  for (const keyId of keyIds) {
    if (!keyId.startsWith(ED25519_PREFIX)) continue;
    sawSupported = true;
    const key = keyFor(keyId);
    if (key === undefined) continue;
    if (!isUsable(key)) {
      sawExpired = true;
      continue;
    }
    const encoded = entry[keyId];
    if (typeof encoded !== "string") return { valid: false, reason: "malformed-signature", keyId };
    let signature: Uint8Array;
    try {
      signature = decodeBase64(encoded);
    } catch {
      return { valid: false, reason: "malformed-signature", keyId };
    }
    if (!backend.verify(message, signature, key.publicKey)) return { valid: false, reason: "bad-signature", keyId };
    verified.push(keyId);
  }
  if (verified.length > 0) return { valid: true, keyIds: verified };
  if (!sawSupported) return { valid: false, reason: "unsupported-algorithm" };
  return { valid: false, reason: sawExpired ? "key-expired" : "unknown-key" };
}

const alwaysUsable = (): boolean => true;

/**
 * Checks `entity`'s signature under one key ID with a known public key.
 *
 * @throws `CanonicalJsonError` when the object is not valid canonical JSON.
 */
export function verifyJsonSignature(
  object: JsonObject,
  entity: string,
  keyId: string,
  publicKey: Uint8Array,
): SignatureCheck {
  const signatures = object["signatures"];
  const entry = isJsonObject(signatures) && Object.hasOwn(signatures, entity) ? signatures[entity] : undefined;
  if (!isJsonObject(entry) || !Object.hasOwn(entry, keyId)) {
    return { valid: false, reason: "missing-signature", keyId };
  }
  if (!keyId.startsWith(ED25519_PREFIX)) return { valid: false, reason: "unsupported-algorithm", keyId };
  const only: VerifyKey = { publicKey };
  return checkEntitySignatures(
    { [entity]: { [keyId]: entry[keyId] as JsonValue } },
    entity,
    signedBytes(object),
    (id) => (id === keyId ? only : undefined),
    alwaysUsable,
  );
}

/** Options for {@link verifySignedJson}. */
export interface VerifySignedJsonOptions {
  /**
   * Only keys valid at this time (ms) count: `validUntilTs` and `expiredTs`, when known,
   * must not be earlier. Omit to ignore key validity (e.g. for a key response's
   * self-signature, whose validity the key ring checks itself).
   */
  readonly validAt?: number;
}

/**
 * Checks that `entity` signed `object`, looking keys up with `lookupKey` (spec appendices,
 * "Checking for a Signature"). Lookups run concurrently; the object is encoded once.
 *
 * @throws `CanonicalJsonError` when the object is not valid canonical JSON; whatever
 *   `lookupKey` throws.
 */
export async function verifySignedJson(
  object: JsonObject,
  entity: string,
  lookupKey: KeyLookup,
  options?: VerifySignedJsonOptions,
): Promise<SignatureCheck> {
  const signatures = object["signatures"];
  const entry = isJsonObject(signatures) && Object.hasOwn(signatures, entity) ? signatures[entity] : undefined;
  const keyIds = isJsonObject(entry) ? Object.keys(entry).filter((id) => id.startsWith(ED25519_PREFIX)) : [];
  const found = await Promise.all(keyIds.map((keyId) => lookupKey(entity, keyId)));
  const keys = new Map<string, VerifyKey>();
  keyIds.forEach((keyId, i) => {
    const key = found[i];
    if (key !== undefined) keys.set(keyId, key);
  });
  const validAt = options?.validAt;
  const isUsable =
    validAt === undefined
      ? alwaysUsable
      : (key: VerifyKey): boolean =>
          !(key.validUntilTs !== undefined && key.validUntilTs < validAt) &&
          !(key.expiredTs !== undefined && key.expiredTs < validAt);
  return checkEntitySignatures(signatures, entity, signedBytes(object), (id) => keys.get(id), isUsable);
}
