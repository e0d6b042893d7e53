/**
 * Server signing keys: key IDs, generation, and Synapse's signing-key file format.
 *
 * A key ID is `<algorithm>:<version>` (spec server-server, "Retrieving server keys";
 * appendices, "Signing Details"); the only algorithm defined is `ed25519`, and versions
 * use `[a-zA-Z0-9_]`. Synapse's key file (`signing_key_path`) holds one key per line:
 * `ed25519 <version> <unpadded base64 of the 32-byte seed>`.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { getEd25519Backend } from "./ed25519.js";

/** The only signing algorithm Matrix defines. */
export const ED25519 = "ed25519";

/** A server's Ed25519 signing key. */
export interface SigningKey {
  readonly algorithm: "ed25519";
  /** Key version, `[a-zA-Z0-9_]+`, e.g. `"a_AbCd"` or `"1"`. */
  readonly version: string;
  /** `ed25519:<version>`, the name signatures are filed under. */
  readonly keyId: string;
  /** The 32-byte private seed. */
  readonly seed: Uint8Array;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/** Why a key ID or key version was refused. */
export type KeyIdFailure = "missing-colon" | "empty-algorithm" | "invalid-version";

/** Thrown by {@link parseKeyId} and the key constructors for an invalid ID or version. */
export class KeyIdError extends Error {
  override readonly name = "KeyIdError";
  constructor(
    readonly reason: KeyIdFailure,
    readonly value: string,
  ) {
    super(`invalid key ID or version ${JSON.stringify(value)} (${reason})`);
  }
}

const VERSION_PATTERN = /^[A-Za-z0-9_]+$/;

/** Whether `version` is a valid key version (`[a-zA-Z0-9_]+`). */
export function isValidKeyVersion(version: string): boolean {
  return VERSION_PATTERN.test(version);
}

/**
 * Splits a key ID into algorithm and version. The algorithm is anything before the first
 * colon (callers skip algorithms they do not know, spec appendices "Checking for a
 * Signature"); the version must match `[a-zA-Z0-9_]+`.
 *
 * @throws {@link KeyIdError}
 */
export function parseKeyId(keyId: string): { algorithm: string; version: string } {
  const colon = keyId.indexOf(":");
  if (colon < 0) throw new KeyIdError("missing-colon", keyId);
  if (colon === 0) throw new KeyIdError("empty-algorithm", keyId);
  const version = keyId.slice(colon + 1);
  if (!isValidKeyVersion(version)) throw new KeyIdError("invalid-version", keyId);
  return { algorithm: keyId.slice(0, colon), version };
}

/**
 * The signing key with this seed and version.
 *
 * @throws {@link KeyIdError} for an invalid version; `Ed25519SeedError` unless the seed is 32 bytes.
 */
export function signingKeyFromSeed(seed: Uint8Array, version: string): SigningKey {
  if (!isValidKeyVersion(version)) throw new KeyIdError("invalid-version", version);
  const ownSeed = Uint8Array.from(seed);
  return Object.freeze({
    algorithm: ED25519,
    version,
    keyId: `${ED25519}:${version}`,
    seed: ownSeed,
    publicKey: getEd25519Backend().publicKeyFromSeed(ownSeed),
  });
}

const VERSION_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A new random signing key. The default version is `a_` plus four random alphanumerics,
 * the shape Synapse generates.
 */
export function generateSigningKey(version?: string): SigningKey {
  let chosen = version;
  if (chosen === undefined) {
    chosen = "a_";
    for (const byte of randomBytes(4)) chosen += VERSION_ALPHABET[byte % VERSION_ALPHABET.length];
  }
  return signingKeyFromSeed(randomBytes(32), chosen);
}

/** The public key as unpadded Base64, as published in `verify_keys`. */
export function encodePublicKey(key: Pick<SigningKey, "publicKey">): string {
  return encodeBase64(key.publicKey);
}

/** Why a signing-key file was refused. */
export type SigningKeyFileFailure =
  | "malformed-line"
  | "unsupported-algorithm"
  | "invalid-version"
  | "invalid-seed"
  | "duplicate-version";

/** Thrown by {@link parseSigningKeyFile}. */
export class SigningKeyFileError extends Error {
  override readonly name = "SigningKeyFileError";
  constructor(
    readonly reason: SigningKeyFileFailure,
    /** 1-based line number. */
    readonly line: number,
  ) {
    super(`invalid signing key file (${reason}) on line ${line}`);
  }
}

/**
 * Parses Synapse's signing-key file: one `ed25519 <version> <base64 seed>` per line.
 * Blank lines and surrounding whitespace (including CRLF endings) are ignored; the seed
 * may be padded or unpadded.
 *
 * @throws {@link SigningKeyFileError} naming the line and what is wrong with it.
 */
export function parseSigningKeyFile(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = (lines[index] as string).trim();
    if (line === "") continue;
    const lineNumber = index + 1;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) throw new SigningKeyFileError("malformed-line", lineNumber);
    const [algorithm, version, seedBase64] = parts as [string, string, string];
    if (algorithm !== ED25519) throw new SigningKeyFileError("unsupported-algorithm", lineNumber);
    if (!isValidKeyVersion(version)) throw new SigningKeyFileError("invalid-version", lineNumber);
    let seed: Uint8Array;
    try {
      seed = decodeBase64(seedBase64);
    } catch {
      throw new SigningKeyFileError("invalid-seed", lineNumber);
    }
    if (seed.length !== 32) throw new SigningKeyFileError("invalid-seed", lineNumber);
    if (keys.some((k) => k.version === version)) throw new SigningKeyFileError("duplicate-version", lineNumber);
    keys.push(signingKeyFromSeed(seed, version));
  }
  return keys;
}

/** Formats keys in Synapse's signing-key file format, one line each, newline-terminated. */
export function formatSigningKeyFile(keys: readonly SigningKey[]): string {
  return keys.map((key) => `${key.algorithm} ${key.version} ${encodeBase64(key.seed)}\n`).join("");
}
