/**
 * Test support: real Ed25519 JSON signatures (node:crypto) for third-party-invite tests, with a
 * minimal canonical JSON (sorted keys, no whitespace) sufficient for the ASCII test objects.
 *
 * @module
 */

import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import type { JsonObject, JsonValue } from "@myelin/types";
import type { JsonSignatureVerifier } from "../auth.js";

function canonical(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k] as JsonValue)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function signable(object: JsonObject): Buffer {
  const { signatures: _s, unsigned: _u, ...rest } = object;
  return Buffer.from(canonical(rest), "utf8");
}

const unpad = (b64: string): string => b64.replace(/=+$/u, "");

/** A signing key: its unpadded standard-base64 public key and a signer. */
export interface TestSigningKey {
  readonly publicKey: string;
  /** Returns `object` with a signature by `server` under `keyId` added. */
  sign(object: JsonObject, server: string, keyId: string): JsonObject;
}

export function generateSigningKey(): TestSigningKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const jwk = publicKey.export({ format: "jwk" });
  const raw = Buffer.from(jwk.x as string, "base64url");
  return {
    publicKey: unpad(raw.toString("base64")),
    sign(object, server, keyId) {
      const signature = unpad(sign(null, signable(object), privateKey as KeyObject).toString("base64"));
      const signatures = (object["signatures"] as JsonObject | undefined) ?? {};
      const serverSignatures = (signatures[server] as JsonObject | undefined) ?? {};
      return { ...object, signatures: { ...signatures, [server]: { ...serverSignatures, [keyId]: signature } } };
    },
  };
}

/** A {@link JsonSignatureVerifier} over node:crypto Ed25519. */
export const verifyWithNodeCrypto: JsonSignatureVerifier = (object, serverName, keyId, publicKeyBase64) => {
  const signatures = object["signatures"];
  if (typeof signatures !== "object" || signatures === null || Array.isArray(signatures)) return false;
  const byServer = signatures[serverName];
  if (typeof byServer !== "object" || byServer === null || Array.isArray(byServer)) return false;
  const signature = byServer[keyId];
  if (typeof signature !== "string") return false;
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKeyBase64, "base64").toString("base64url") },
    format: "jwk",
  });
  return verify(null, signable(object), key, Buffer.from(signature, "base64"));
};
