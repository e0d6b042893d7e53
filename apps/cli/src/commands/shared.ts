import {
  decodeBase64,
  parseJson,
  parseSigningKeyFile,
  type SigningKey,
  type VerifyKey,
} from "@myelin/signing";
import { getRoomVersion, UnsupportedRoomVersionError, type JsonObject, type RoomVersionRules } from "@myelin/types";
import { CliError, readNamedFile } from "../io.js";

/** Loads every key of a Synapse-format signing key file. */
export async function loadSigningKeys(file: string): Promise<SigningKey[]> {
  const text = await readNamedFile(file, "key file");
  try {
    return parseSigningKeyFile(text);
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
}

/** Loads the first key of a Synapse-format signing key file (the one Synapse signs with). */
export async function loadSigningKey(file: string): Promise<SigningKey> {
  const key = (await loadSigningKeys(file))[0];
  if (key === undefined) throw new CliError(`${file}: no signing key in the file`);
  return key;
}

/**
 * Parses `--key ed25519:ID=PUBLICKEY` values (or those of another flag, named in errors)
 * into a map from key ID to public key.
 */
export function parseVerifyKeys(values: readonly string[], flag = "key"): Map<string, VerifyKey> {
  const keys = new Map<string, VerifyKey>();
  for (const value of values) {
    const eq = value.indexOf("=");
    const keyId = value.slice(0, eq);
    if (eq <= 0 || !/^ed25519:[A-Za-z0-9_]+$/.test(keyId)) {
      throw new CliError(`--${flag} must look like ed25519:ID=PUBLICKEY, got ${JSON.stringify(value)}`, 2);
    }
    let publicKey: Uint8Array;
    try {
      publicKey = decodeBase64(value.slice(eq + 1));
    } catch (error) {
      throw new CliError(`--${flag} ${keyId}: public key is not base64: ${(error as Error).message}`, 2);
    }
    if (publicKey.length !== 32) {
      throw new CliError(`--${flag} ${keyId}: an Ed25519 public key has 32 bytes, got ${publicKey.length}`, 2);
    }
    keys.set(keyId, { publicKey });
  }
  return keys;
}

/** The rules of `--room-version`. */
export function roomVersionRules(version: string | undefined): RoomVersionRules {
  if (version === undefined) throw new CliError("missing required option --room-version", 2);
  try {
    return getRoomVersion(version);
  } catch (error) {
    if (error instanceof UnsupportedRoomVersionError) {
      throw new CliError(`${error.message}; known versions are 1 to 12`, 2);
    }
    throw error;
  }
}

/**
 * Parses one JSON document that must be an object. `where` names it in errors
 * (`line 3`, a file name). Numbers are parsed exactly; `strict` refuses floats.
 */
export function parseObject(text: string, where: string, strict = false): JsonObject {
  let value;
  try {
    value = parseJson(text, { strict });
  } catch (error) {
    throw new CliError(`${where}: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError(`${where}: expected a JSON object`);
  }
  return value;
}
