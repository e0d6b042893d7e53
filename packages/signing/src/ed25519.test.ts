import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import nacl from "tweetnacl";
import { afterEach, describe, expect, it } from "vitest";
import { decodeBase64, encodeBase64 } from "./base64.js";
import type { Ed25519Backend } from "./ed25519.js";
import {
  Ed25519BackendError,
  availableEd25519Backends,
  getEd25519Backend,
  loadEd25519Backend,
  setEd25519Backend,
} from "./ed25519.js";
import { hasSmallOrder, isCanonicalPoint, isCanonicalScalar } from "./ed25519-checks.js";
import { Ed25519SeedError } from "./ed25519-seed.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import { L, P, fromLe, mod, order8Point, secretScalar, sha512, toLe } from "./test-support/curve.js";

const backends = availableEd25519Backends();
const byName = (name: string): Ed25519Backend => {
  const backend = loadEd25519Backend(name);
  if (backend === undefined) throw new Error(`${name} backend unavailable`);
  return backend;
};

afterEach(() => {
  delete process.env["MYELIN_ED25519_BACKEND"];
  setEd25519Backend(undefined);
});

/** Every encoding of a point of order dividing 8, derived from the curve equation. */
function smallOrderEncodings(): Uint8Array[] {
  // The order-8 points are (±x, y) and (±x, p - y) for one point (x, y) of order 8.
  const { y } = order8Point();
  const ys = [0n, 1n, P - 1n, y, P - y, P, P + 1n];
  return ys.flatMap((y) => {
    const plain = toLe(y);
    const signed = plain.slice();
    signed[31] = (signed[31] as number) | 0x80;
    return [plain, signed];
  });
}

/**
 * A signature by the small-order "public key" `point` that a verifier without the
 * small-order check accepts: R = [r]B and S = r, with a message for which
 * k = H(R || A || M) is a multiple of 8, so that [k]A is the identity.
 */
function forgeForSmallOrderKey(point: Uint8Array): { message: Uint8Array; signature: Uint8Array } {
  const seed = new Uint8Array(32).fill(7);
  const r = secretScalar(seed);
  const R = nacl.sign.keyPair.fromSeed(seed).publicKey;
  for (let i = 0; ; i++) {
    const message = new TextEncoder().encode(`forged ${i}`);
    const k = mod(fromLe(sha512(R, point, message)), L);
    if (k % 8n === 0n) {
      const signature = new Uint8Array(64);
      signature.set(R, 0);
      signature.set(toLe(mod(r, L)), 32);
      return { message, signature };
    }
  }
}

// --------------------------------------------------------------------------------------------

describe("backend selection", () => {
  it("has the node and tweetnacl backends everywhere", () => {
    expect(backends.map((b) => b.name)).toEqual(expect.arrayContaining(["node", "tweetnacl"]));
  });

  it("prefers native when it loads, else sodium, else node", () => {
    setEd25519Backend(undefined);
    const expected = ["native", "sodium", "node"].find((name) => loadEd25519Backend(name) !== undefined);
    expect(getEd25519Backend().name).toBe(expected);
  });

  it("switches with setEd25519Backend and returns to automatic selection with undefined", () => {
    expect(setEd25519Backend("tweetnacl").name).toBe("tweetnacl");
    expect(getEd25519Backend().name).toBe("tweetnacl");
    expect(setEd25519Backend(undefined).name).not.toBe("tweetnacl");
  });

  it("honours MYELIN_ED25519_BACKEND on automatic selection", () => {
    process.env["MYELIN_ED25519_BACKEND"] = "tweetnacl";
    expect(setEd25519Backend(undefined).name).toBe("tweetnacl");
  });

  /**
   * Runs a real child process in which loading any module whose path contains one of
   * `blocked` fails, as on a machine where it is missing, and reports which backends it
   * chose. tsx (workspace root) runs the TypeScript sources.
   */
  function selectWithout(blocked: string[], explicitChoice: string): unknown {
    const dir = mkdtempSync(join(tmpdir(), "myelin-no-backend-"));
    const blocker = join(dir, "block.cjs");
    writeFileSync(
      blocker,
      `const Module = require("node:module");
const blocked = ${JSON.stringify(blocked)};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (blocked.some((name) => String(request).includes(name))) throw Object.assign(new Error("blocked"), { code: "MODULE_NOT_FOUND" });
  return resolve.call(this, request, ...rest);
};`,
    );
    const script = `import("./src/index.ts").then((m) => {
  const first = m.getEd25519Backend().name;
  const key = m.generateSigningKey();
  const signed = m.signJson({ a: 1 }, "x", key);
  const ok = m.verifyJsonSignature(signed, "x", key.keyId, key.publicKey).valid && m.verifyJsonSignature(signed, "x", key.keyId, key.publicKey).valid;
  let explicit;
  try { process.env.MYELIN_ED25519_BACKEND = ${JSON.stringify(explicitChoice)}; m.setEd25519Backend(undefined); explicit = "accepted"; }
  catch (error) { explicit = error.reason; }
  console.log(JSON.stringify({ first, available: m.availableEd25519Backends().map((b) => b.name), ok, explicit }));
});`;
    const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
    const child = spawnSync(
      process.execPath,
      ["--import", "tsx", "--conditions=@myelin/source", "--require", blocker, "-e", script],
      { cwd: packageDir, encoding: "utf8", env: { ...process.env, MYELIN_ED25519_BACKEND: "" } },
    );
    expect(child.stderr).toBe("");
    return JSON.parse(child.stdout);
  }

  it("works without the native verifier and sodium-native: falls back to node, and an explicit choice fails loudly", () => {
    expect(selectWithout(["myelin_ed25519.node", "sodium-native"], "sodium")).toEqual({
      first: "node",
      available: ["node", "tweetnacl"],
      ok: true,
      explicit: "unavailable",
    });
  });

  it("works without the native verifier: falls back to sodium, and an explicit native choice fails loudly", () => {
    expect(selectWithout(["myelin_ed25519.node"], "native")).toEqual({
      first: "sodium",
      available: ["sodium", "node", "tweetnacl"],
      ok: true,
      explicit: "unavailable",
    });
  });

  it("fails loudly for an unknown backend in the environment or the API", () => {
    process.env["MYELIN_ED25519_BACKEND"] = "openssl";
    expect(() => setEd25519Backend(undefined)).toThrow(Ed25519BackendError);
    delete process.env["MYELIN_ED25519_BACKEND"];
    expect(() => setEd25519Backend("openssl" as "node")).toThrow(expect.objectContaining({ reason: "unknown-backend" }));
  });
});

describe.each(backends.map((b) => [b.name, b] as const))("the %s backend", (_name, backend) => {
  const seed = decodeBase64(vectors.spec.signing_key.seed_base64);

  it("derives the spec test key's public key", () => {
    expect(encodeBase64(backend.publicKeyFromSeed(seed))).toBe(vectors.derived.public_key_unpadded_base64);
  });

  it("makes the spec signature of {}", () => {
    const signed = JSON.parse(vectors.spec.json_signing[0]?.expected_signed ?? "") as {
      signatures: { domain: Record<string, string> };
    };
    expect(encodeBase64(backend.sign(new TextEncoder().encode("{}"), seed))).toBe(signed.signatures.domain["ed25519:1"]);
  });

  it("returns false, never throws, for wrong sizes", () => {
    const publicKey = backend.publicKeyFromSeed(seed);
    const message = new Uint8Array(3);
    const signature = backend.sign(message, seed);
    expect(backend.verify(message, signature.subarray(0, 63), publicKey)).toBe(false);
    expect(backend.verify(message, signature, publicKey.subarray(0, 31))).toBe(false);
    expect(backend.verify(message, new Uint8Array(0), new Uint8Array(0))).toBe(false);
  });

  it("refuses a seed that is not 32 bytes", () => {
    expect(() => backend.sign(new Uint8Array(1), new Uint8Array(31))).toThrow(Ed25519SeedError);
  });
});

// With its default policy the native backend sends a key's first uses to sodium, so here
// it mostly checks that delegation; ed25519-native.test.ts checks its tables against sodium.
describe("all backends agree", () => {
  it("on signatures and on verifying genuine and tampered signatures", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (seed, message, at, flip) => {
          const signatures = backends.map((b) => encodeBase64(b.sign(message, seed)));
          expect(new Set(signatures).size).toBe(1);
          const publicKey = backends[0]?.publicKeyFromSeed(seed) as Uint8Array;
          const signature = decodeBase64(signatures[0] as string);
          const tampered = signature.slice();
          tampered[at % 64] = (tampered[at % 64] as number) ^ flip;
          const otherMessage = Uint8Array.from([...message, 0]);
          for (const b of backends) {
            expect(b.verify(message, signature, publicKey)).toBe(true);
            expect(b.verify(message, tampered, publicKey)).toBe(false);
            expect(b.verify(otherMessage, signature, publicKey)).toBe(false);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("on random garbage signatures and keys", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (signature, publicKey) => {
          const results = backends.map((b) => b.verify(Uint8Array.of(1), signature, publicKey));
          expect(new Set(results).size).toBe(1);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("libsodium-compatible refusals (consensus on key-owner-crafted signatures)", () => {
  const rawTweetnaclVerify = (m: Uint8Array, s: Uint8Array, k: Uint8Array): boolean => nacl.sign.detached.verify(m, s, k);

  it("derives the blocked small-order encodings from the curve equation", () => {
    for (const encoding of smallOrderEncodings()) expect(hasSmallOrder(encoding)).toBe(true);
    for (const b of backends) expect(hasSmallOrder(b.publicKeyFromSeed(new Uint8Array(32).fill(9)))).toBe(false);
  });

  it("refuses signatures under every small-order public key, which raw tweetnacl accepts", () => {
    for (const point of smallOrderEncodings()) {
      const { message, signature } = forgeForSmallOrderKey(point);
      // An unchecked verifier accepts every one of these forgeries: the check is load-bearing.
      expect(rawTweetnaclVerify(message, signature, point)).toBe(true);
      for (const b of backends) expect(b.verify(message, signature, point)).toBe(false);
    }
  });

  it("refuses a small-order R, which raw tweetnacl accepts", () => {
    const seed = new Uint8Array(32).fill(3);
    const publicKey = nacl.sign.keyPair.fromSeed(seed).publicKey;
    const R = toLe(1n); // the identity
    const message = new TextEncoder().encode("small R");
    const k = mod(fromLe(sha512(R, publicKey, message)), L);
    const signature = new Uint8Array(64);
    signature.set(R, 0);
    signature.set(toLe(mod(k * secretScalar(seed), L)), 32);
    expect(rawTweetnaclVerify(message, signature, publicKey)).toBe(true);
    for (const b of backends) expect(b.verify(message, signature, publicKey)).toBe(false);
  });

  it("refuses a non-canonical S (S + L), which raw tweetnacl accepts", () => {
    const seed = new Uint8Array(32).fill(5);
    const publicKey = nacl.sign.keyPair.fromSeed(seed).publicKey;
    const message = new TextEncoder().encode("malleable");
    const signature = nacl.sign.detached(message, nacl.sign.keyPair.fromSeed(seed).secretKey);
    const malleated = signature.slice();
    malleated.set(toLe(fromLe(signature.subarray(32)) + L), 32);
    expect(isCanonicalScalar(signature)).toBe(true);
    expect(isCanonicalScalar(malleated)).toBe(false);
    expect(rawTweetnaclVerify(message, malleated, publicKey)).toBe(true);
    for (const b of backends) {
      expect(b.verify(message, signature, publicKey)).toBe(true);
      expect(b.verify(message, malleated, publicKey)).toBe(false);
    }
  });

  it("treats S = L - 1 as canonical and S = L as not", () => {
    const signature = new Uint8Array(64);
    signature.set(toLe(L - 1n), 32);
    expect(isCanonicalScalar(signature)).toBe(true);
    signature.set(toLe(L), 32);
    expect(isCanonicalScalar(signature)).toBe(false);
  });

  it("treats y >= p as a non-canonical public key encoding", () => {
    expect(isCanonicalPoint(toLe(P - 1n))).toBe(true);
    expect(isCanonicalPoint(toLe(P))).toBe(false);
    expect(isCanonicalPoint(toLe(2n ** 255n - 1n))).toBe(false);
    const signBit = toLe(P + 2n);
    expect(isCanonicalPoint(signBit)).toBe(false);
  });
});
