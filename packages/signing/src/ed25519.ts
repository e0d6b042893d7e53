/**
 * Ed25519 signing and verification behind one interface, with four interchangeable
 * backends: Myelin's own native verifier (`native`, verification only, see
 * `ed25519-native.ts`), libsodium (sodium-native), OpenSSL (node:crypto) and tweetnacl
 * (pure JS).
 *
 * All of them produce identical signatures (Ed25519 is deterministic) and, thanks to the
 * libsodium-compatible input checks in `ed25519-checks.ts`, identical verification
 * results, so the choice is only about speed and availability.
 *
 * Selection, first match wins:
 * 1. {@link setEd25519Backend};
 * 2. the environment variable `MYELIN_ED25519_BACKEND` (`native`, `sodium`, `node` or
 *    `tweetnacl`), read on first use;
 * 3. the first that loads of native, sodium, node and tweetnacl. The native backend signs
 *    through the best of the other three.
 *
 * @module
 */

import { createNativeBackend } from "./ed25519-native.js";
import { createNodeBackend } from "./ed25519-node.js";
import { createSodiumBackend } from "./ed25519-sodium.js";
import { createTweetnaclBackend } from "./ed25519-tweetnacl.js";

/** Names of the Ed25519 backends. */
export type Ed25519BackendName = "native" | "sodium" | "node" | "tweetnacl";

/** The backends in order of preference. */
export const ED25519_BACKEND_NAMES: readonly Ed25519BackendName[] = ["native", "sodium", "node", "tweetnacl"];

/** An Ed25519 implementation. Keys are raw: 32-byte seeds, 32-byte public keys. */
export interface Ed25519Backend {
  readonly name: Ed25519BackendName;
  /** The public key for a 32-byte seed. */
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  /** The 64-byte signature of `message` by the key with this 32-byte seed. */
  sign(message: Uint8Array, seed: Uint8Array): Uint8Array;
  /**
   * Whether `signature` is a valid signature of `message` by `publicKey`. Malformed
   * input (wrong sizes, points not on the curve) is `false`, never an exception.
   */
  verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
}

/** Why a backend could not be selected. */
export type Ed25519BackendFailure = "unknown-backend" | "unavailable";

/** Thrown when a requested backend is unknown or cannot be loaded. */
export class Ed25519BackendError extends Error {
  override readonly name = "Ed25519BackendError";
  constructor(
    readonly reason: Ed25519BackendFailure,
    readonly backend: string,
    options?: { cause?: unknown },
  ) {
    super(
      reason === "unknown-backend"
        ? `unknown Ed25519 backend ${JSON.stringify(backend)} (expected ${ED25519_BACKEND_NAMES.join(", ")})`
        : `Ed25519 backend ${JSON.stringify(backend)} is not available here`,
      options,
    );
  }
}

/** The best backend that signs by itself, for the native backend to delegate to. */
function bestSigningBackend(): Ed25519Backend {
  return loadEd25519Backend("sodium") ?? loadEd25519Backend("node") ?? requireBackend("tweetnacl");
}

const FACTORIES: Record<Ed25519BackendName, () => Ed25519Backend> = {
  native: () => createNativeBackend(bestSigningBackend()),
  sodium: createSodiumBackend,
  node: createNodeBackend,
  tweetnacl: createTweetnaclBackend,
};

// Each backend is created at most once; `null` records "tried and unavailable".
const loaded = new Map<Ed25519BackendName, Ed25519Backend | null>();
const loadErrors = new Map<Ed25519BackendName, unknown>();
let current: Ed25519Backend | undefined;

function isBackendName(name: string): name is Ed25519BackendName {
  return (ED25519_BACKEND_NAMES as readonly string[]).includes(name);
}

/**
 * The named backend, or `undefined` when it cannot be loaded here (native verifier not
 * built, sodium-native missing, Node without Ed25519). Does not change the current selection.
 *
 * @throws {@link Ed25519BackendError} (`unknown-backend`) for a name that is not a backend.
 */
export function loadEd25519Backend(name: string): Ed25519Backend | undefined {
  if (!isBackendName(name)) throw new Ed25519BackendError("unknown-backend", name);
  let backend = loaded.get(name);
  if (backend === undefined) {
    try {
      backend = FACTORIES[name]();
    } catch (error) {
      loadErrors.set(name, error);
      backend = null;
    }
    loaded.set(name, backend);
  }
  return backend ?? undefined;
}

/** Every backend that loads in this process, in order of preference. */
export function availableEd25519Backends(): Ed25519Backend[] {
  return ED25519_BACKEND_NAMES.map(loadEd25519Backend).filter((b): b is Ed25519Backend => b !== undefined);
}

function requireBackend(name: string): Ed25519Backend {
  const backend = loadEd25519Backend(name);
  if (backend === undefined) {
    throw new Ed25519BackendError("unavailable", name, { cause: loadErrors.get(name as Ed25519BackendName) });
  }
  return backend;
}

/**
 * The backend in use (see the module comment for how it is chosen).
 *
 * @throws {@link Ed25519BackendError} when `MYELIN_ED25519_BACKEND` names an unknown or
 *   unavailable backend: an explicit choice fails loudly rather than silently degrading.
 */
export function getEd25519Backend(): Ed25519Backend {
  if (current !== undefined) return current;
  const fromEnv = process.env["MYELIN_ED25519_BACKEND"];
  if (fromEnv !== undefined && fromEnv !== "") {
    current = requireBackend(fromEnv);
  } else {
    current = loadEd25519Backend("native") ?? bestSigningBackend();
  }
  return current;
}

/**
 * Selects the backend used from now on; `undefined` returns to automatic selection.
 * Returns the selected backend.
 *
 * @throws {@link Ed25519BackendError} for an unknown or unavailable backend.
 */
export function setEd25519Backend(backend: Ed25519BackendName | Ed25519Backend | undefined): Ed25519Backend {
  current = undefined;
  if (backend === undefined) return getEd25519Backend();
  current = typeof backend === "string" ? requireBackend(backend) : backend;
  return current;
}
