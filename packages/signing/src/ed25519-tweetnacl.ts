/**
 * Ed25519 through tweetnacl (pure JavaScript): always available, about 20 times slower
 * than the native backends.
 *
 * @module
 */

import nacl from "tweetnacl";
import type { Ed25519Backend } from "./ed25519.js";
import { passesLibsodiumChecks } from "./ed25519-checks.js";
import { assertSeed } from "./ed25519-seed.js";

/** Creates the tweetnacl backend. */
export function createTweetnaclBackend(): Ed25519Backend {
  // tweetnacl signs with the 64-byte expanded key (seed || public key); derive it once per seed.
  const secretKeys = new WeakMap<Uint8Array, Uint8Array>();
  function secretKeyFor(seed: Uint8Array): Uint8Array {
    let secret = secretKeys.get(seed);
    if (secret === undefined) {
      assertSeed(seed);
      secret = nacl.sign.keyPair.fromSeed(seed).secretKey;
      secretKeys.set(seed, secret);
    }
    return secret;
  }
  return {
    name: "tweetnacl",
    publicKeyFromSeed(seed) {
      return secretKeyFor(seed).slice(32);
    },
    sign(message, seed) {
      return nacl.sign.detached(message, secretKeyFor(seed));
    },
    verify(message, signature, publicKey) {
      if (!passesLibsodiumChecks(signature, publicKey)) return false;
      return nacl.sign.detached.verify(message, signature, publicKey);
    },
  };
}
