/**
 * Ed25519 verification through Myelin's own C verifier (`native/ed25519_verify.c`), which
 * precomputes a table for each public key and then verifies three to four times faster
 * than libsodium. It is compiled by the package's build (and install) script when a C
 * compiler is available; when it is not, this backend is simply unavailable.
 *
 * A key's table costs about as much as nine libsodium verifications to build and 161 KiB
 * to keep, so it pays off only for keys that sign repeatedly, which in Matrix is nearly
 * all of them (a server signs everything it sends with one key). This backend builds a
 * table on a key's fourth use, keeps the tables of the 128 most recently used keys (about
 * 20 MiB at most), and sends everything else (signing, a key's first uses) to the
 * fallback backend it wraps. Verdicts are libsodium's: the native code computes the same
 * equation as `crypto_sign_verify_detached`, after the same input checks.
 *
 * @module
 */

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Ed25519Backend } from "./ed25519.js";
import { passesLibsodiumChecks } from "./ed25519-checks.js";

/** An opaque handle to a key's table, owned by the native module. */
type KeyTable = object;

/** The native module's exports (see `native/addon.c`). */
export interface NativeVerifier {
  /** A table for the key, or `null` when the bytes are not a curve point. */
  keyTable(publicKey: Uint8Array): KeyTable | null;
  verify(table: KeyTable, message: Uint8Array, signature: Uint8Array): boolean;
  sha512(data: Uint8Array): Uint8Array;
}

/** Where the build puts the compiled module, relative to `src/` and `dist/` alike. */
const ADDON_URL = new URL("../native/build/myelin_ed25519.node", import.meta.url);

let addon: NativeVerifier | undefined;

/** Loads the compiled verifier; throws when it was not built or does not load here. */
export function loadNativeVerifier(): NativeVerifier {
  addon ??= createRequire(import.meta.url)(fileURLToPath(ADDON_URL)) as NativeVerifier;
  return addon;
}

/** Tuning for {@link createNativeBackend}. */
export interface NativeBackendOptions {
  /** The use of a key on which its table is built (default 4; earlier uses go to the fallback). */
  readonly tableAfterUses?: number;
  /** Tables kept, least recently used evicted first (default 128, 161 KiB each). */
  readonly cachedKeys?: number;
}

/** Keys seen fewer than `tableAfterUses` times are counted in a map of at most this size. */
const MAX_COUNTED_KEYS = 4096;

/**
 * Creates the native backend around `fallback`, which signs and verifies whatever the
 * tables do not cover. Throws when the native module cannot be loaded.
 */
export function createNativeBackend(fallback: Ed25519Backend, options: NativeBackendOptions = {}): Ed25519Backend {
  const native = loadNativeVerifier();
  const tableAfterUses = Math.max(1, options.tableAfterUses ?? 4);
  const cachedKeys = Math.max(1, options.cachedKeys ?? 128);
  // Keyed by the key's bytes as a latin1 string, in order of last use (Map order).
  const tables = new Map<string, KeyTable | null>();
  const uses = new Map<string, number>();
  // The last key verified against, compared by bytes: in bulk verification it almost
  // always matches, which skips the map lookup.
  let lastKey = new Uint8Array(32);
  let lastTable: KeyTable | null | undefined;

  function sameAsLast(publicKey: Uint8Array): boolean {
    for (let i = 0; i < 32; i++) {
      if (publicKey[i] !== lastKey[i]) return false;
    }
    return true;
  }

  /** The key's table, `null` for a key that is not a point, `undefined` for "not yet". */
  function tableFor(publicKey: Uint8Array): KeyTable | null | undefined {
    if (lastTable !== undefined && sameAsLast(publicKey)) return lastTable;
    const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, 32).toString("latin1");
    let table = tables.get(id);
    if (table !== undefined) {
      tables.delete(id);
      tables.set(id, table);
    } else {
      const count = (uses.get(id) ?? 0) + 1;
      if (count < tableAfterUses) {
        if (uses.size >= MAX_COUNTED_KEYS) uses.clear();
        uses.set(id, count);
        return undefined;
      }
      uses.delete(id);
      table = native.keyTable(publicKey);
      if (tables.size >= cachedKeys) {
        const oldest = tables.keys().next();
        if (oldest.done !== true) tables.delete(oldest.value);
      }
      tables.set(id, table);
    }
    lastKey = publicKey.slice(0, 32);
    lastTable = table;
    return table;
  }

  return {
    name: "native",
    publicKeyFromSeed: (seed) => fallback.publicKeyFromSeed(seed),
    sign: (message, seed) => fallback.sign(message, seed),
    verify(message, signature, publicKey) {
      if (!passesLibsodiumChecks(signature, publicKey)) return false;
      const table = tableFor(publicKey);
      if (table === undefined) return fallback.verify(message, signature, publicKey);
      return table !== null && native.verify(table, message, signature);
    },
  };
}
