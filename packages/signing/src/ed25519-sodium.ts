/**
 * Ed25519 through sodium-native (libsodium, the library behind Synapse's PyNaCl). Loaded
 * lazily with `createRequire` so that the package works when the optional dependency is
 * missing or its prebuilt binary does not load.
 *
 * @module
 */

import { createRequire } from "node:module";
import type { Ed25519Backend } from "./ed25519.js";
import { assertSeed } from "./ed25519-seed.js";

/** The slice of sodium-native's API this backend uses. */
interface SodiumNative {
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** Creates the sodium-native backend; throws if sodium-native cannot be loaded. */
export function createSodiumBackend(): Ed25519Backend {
  const sodium = createRequire(import.meta.url)("sodium-native") as SodiumNative;
  const keyPairs = new WeakMap<Uint8Array, { publicKey: Uint8Array; secretKey: Uint8Array }>();
  function keyPairFor(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
    let pair = keyPairs.get(seed);
    if (pair === undefined) {
      assertSeed(seed);
      pair = { publicKey: new Uint8Array(32), secretKey: new Uint8Array(64) };
      sodium.crypto_sign_seed_keypair(pair.publicKey, pair.secretKey, seed);
      keyPairs.set(seed, pair);
    }
    return pair;
  }
  return {
    name: "sodium",
    publicKeyFromSeed(seed) {
      return keyPairFor(seed).publicKey.slice();
    },
    sign(message, seed) {
      const signature = new Uint8Array(64);
      sodium.crypto_sign_detached(signature, message, keyPairFor(seed).secretKey);
      return signature;
    },
    verify(message, signature, publicKey) {
      // sodium-native asserts on sizes; a wrong size is simply not a valid signature.
      if (signature.length !== 64 || publicKey.length !== 32) return false;
      return sodium.crypto_sign_verify_detached(signature, message, publicKey);
    },
  };
}
