/**
 * Ed25519 through `node:crypto` (OpenSSL). Public `KeyObject`s are cached per key: building
 * one from raw bytes costs about as much as a verification.
 *
 * @module
 */

import { type KeyObject, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import type { Ed25519Backend } from "./ed25519.js";
import { passesLibsodiumChecks } from "./ed25519-checks.js";
import { assertSeed } from "./ed25519-seed.js";

// DER prefixes for raw Ed25519 keys (RFC 8410): PKCS#8 private key, SPKI public key.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** How many public keys to keep `KeyObject`s for (a server sees a few thousand peers). */
const PUBLIC_KEY_CACHE_SIZE = 4096;

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Creates the node:crypto backend; throws if this Node build lacks Ed25519. */
export function createNodeBackend(): Ed25519Backend {
  // Fails early (and so makes the backend "unavailable") on builds without Ed25519.
  createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.alloc(32)]), format: "der", type: "pkcs8" });

  const privateKeys = new WeakMap<Uint8Array, KeyObject>();
  const publicByIdentity = new WeakMap<Uint8Array, KeyObject>();
  // Keyed by the key's bytes as a latin1 string; Map iteration order gives cheap FIFO eviction.
  const publicByValue = new Map<string, KeyObject>();

  function privateKeyFor(seed: Uint8Array): KeyObject {
    let key = privateKeys.get(seed);
    if (key === undefined) {
      assertSeed(seed);
      key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
      privateKeys.set(seed, key);
    }
    return key;
  }

  function publicKeyFor(publicKey: Uint8Array): KeyObject {
    let key = publicByIdentity.get(publicKey);
    if (key !== undefined) return key;
    const id = toBuffer(publicKey).toString("latin1");
    key = publicByValue.get(id);
    if (key === undefined) {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
      if (publicByValue.size >= PUBLIC_KEY_CACHE_SIZE) {
        const oldest = publicByValue.keys().next();
        if (oldest.done !== true) publicByValue.delete(oldest.value);
      }
      publicByValue.set(id, key);
    }
    publicByIdentity.set(publicKey, key);
    return key;
  }

  return {
    name: "node",
    publicKeyFromSeed(seed) {
      const der = createPublicKey(privateKeyFor(seed)).export({ format: "der", type: "spki" });
      return Uint8Array.from(der.subarray(der.length - 32));
    },
    sign(message, seed) {
      return Uint8Array.from(sign(null, toBuffer(message), privateKeyFor(seed)));
    },
    verify(message, signature, publicKey) {
      if (!passesLibsodiumChecks(signature, publicKey)) return false;
      let key: KeyObject;
      try {
        key = publicKeyFor(publicKey);
      } catch {
        return false; // not a point on the curve
      }
      return verify(null, toBuffer(message), key, toBuffer(signature));
    },
  };
}
