import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { Ed25519Backend } from "./ed25519.js";
import { loadEd25519Backend } from "./ed25519.js";
import { createNativeBackend, loadNativeVerifier, type NativeVerifier } from "./ed25519-native.js";
import {
  L,
  P,
  addPoints,
  decodePoint,
  encodePoint,
  fromLe,
  mod,
  order8Point,
  secretScalar,
  sha512,
  toLe,
} from "./test-support/curve.js";

// The package build compiles the verifier wherever a C compiler exists; a machine without
// one opts out explicitly with MYELIN_NATIVE=0, and these tests then show as skipped.
const optedOut = process.env["MYELIN_NATIVE"] === "0";

/** libsodium (or, without sodium-native, OpenSSL): the reference verdicts. */
function reference(): Ed25519Backend {
  const backend = loadEd25519Backend("sodium") ?? loadEd25519Backend("node");
  if (backend === undefined) throw new Error("no reference backend");
  return backend;
}

describe.skipIf(optedOut)("the native Ed25519 verifier", () => {
  let native: NativeVerifier;
  let sodium: Ed25519Backend;
  // Tables from the first use, so that every verification below goes through them.
  let eager: Ed25519Backend;
  beforeAll(() => {
    native = loadNativeVerifier();
    sodium = reference();
    eager = createNativeBackend(sodium, { tableAfterUses: 1 });
  });

  it("computes SHA-512 as node:crypto does, across block boundaries", () => {
    const lengths = [0, 1, 3, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257, 1000, 4096];
    for (const length of [...lengths, ...Array.from({ length: 40 }, () => Math.floor(Math.random() * 2000))]) {
      const data = randomBytes(length);
      expect(Buffer.from(native.sha512(data)).toString("hex")).toBe(createHash("sha512").update(data).digest("hex"));
    }
  });

  it("verifies RFC 8032 test vectors 1-3", () => {
    const vectors = [
      ["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "", "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"],
      ["3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72", "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"],
      ["fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82", "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"],
    ];
    for (const [key, message, signature] of vectors) {
      const publicKey = Buffer.from(key as string, "hex");
      const sig = Buffer.from(signature as string, "hex");
      expect(eager.verify(Buffer.from(message as string, "hex"), sig, publicKey)).toBe(true);
      sig[40] = (sig[40] as number) ^ 4;
      expect(eager.verify(Buffer.from(message as string, "hex"), sig, publicKey)).toBe(false);
    }
  });

  it("agrees with libsodium on genuine, tampered and misdirected signatures", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 700 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (seed, message, at, flip) => {
          const publicKey = sodium.publicKeyFromSeed(seed);
          const signature = sodium.sign(message, seed);
          const tampered = signature.slice();
          tampered[at % 64] = (tampered[at % 64] as number) ^ flip;
          const otherMessage = Uint8Array.from([...message, 0]);
          expect(eager.verify(message, signature, publicKey)).toBe(true);
          expect(eager.verify(message, tampered, publicKey)).toBe(sodium.verify(message, tampered, publicKey));
          expect(eager.verify(otherMessage, signature, publicKey)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("agrees with libsodium on random keys and signatures, including keys off the curve", () => {
    let offCurve = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 50 }),
        (signature, publicKey, message) => {
          if (decodePoint(publicKey) === undefined) offCurve++;
          // Clear the top bits of S half the time so that the equation itself is reached.
          if ((signature[0] as number) & 1) signature[63] = (signature[63] as number) & 0x0f;
          expect(eager.verify(message, signature, publicKey)).toBe(sodium.verify(message, signature, publicKey));
        },
      ),
      { numRuns: 300 },
    );
    expect(offCurve).toBeGreaterThan(50);
    expect(native.keyTable(encodePoint({ x: 0n, y: 2n }))).toBeNull(); // y = 2 is not on the curve
  });

  it("computes [h]A exactly for a key with a torsion component, as libsodium does", () => {
    // A' = A + T for a point T of order 8. With R = [r]B and S = r + h a, the equation
    // [S]B - [h]A' = R - [h]T holds exactly when 8 divides h, so libsodium accepts about
    // one message in eight; a verifier that took shortcuts (cofactor clearing, reducing
    // the table's multiples mod L) would disagree.
    const seed = new Uint8Array(32).fill(11);
    const a = secretScalar(seed);
    const keyPoint = decodePoint(sodium.publicKeyFromSeed(seed)) as { x: bigint; y: bigint };
    const mixed = encodePoint(addPoints(keyPoint, order8Point()));
    const rSeed = new Uint8Array(32).fill(12);
    const r = secretScalar(rSeed);
    const R = sodium.publicKeyFromSeed(rSeed);
    const verdicts = { accepted: 0, refused: 0 };
    for (let i = 0; i < 64; i++) {
      const message = new TextEncoder().encode(`torsion ${i}`);
      const h = mod(fromLe(sha512(R, mixed, message)), L);
      const signature = new Uint8Array(64);
      signature.set(R, 0);
      signature.set(toLe(mod(r + h * a, L)), 32);
      const expected = h % 8n === 0n;
      expect(sodium.verify(message, signature, mixed)).toBe(expected);
      expect(eager.verify(message, signature, mixed)).toBe(expected);
      verdicts[expected ? "accepted" : "refused"]++;
    }
    expect(verdicts.accepted).toBeGreaterThan(0);
    expect(verdicts.refused).toBeGreaterThan(0);
  });

  it("refuses S >= L and non-canonical R encodings that would otherwise match", () => {
    const seed = new Uint8Array(32).fill(13);
    const publicKey = sodium.publicKeyFromSeed(seed);
    const message = new TextEncoder().encode("edges");
    const signature = sodium.sign(message, seed);
    expect(eager.verify(message, signature, publicKey)).toBe(true);
    const malleated = signature.slice();
    malleated.set(toLe(fromLe(signature.subarray(32)) + L), 32);
    expect(eager.verify(message, malleated, publicKey)).toBe(false);
    // R with y + p in place of y (possible only when y < 19): never equal to an encoding.
    const y = fromLe(signature.subarray(0, 32)) & (2n ** 255n - 1n);
    if (y + P < 2n ** 255n) {
      const alias = signature.slice();
      alias.set(toLe(y + P), 0);
      alias[31] = (alias[31] as number) | ((signature[31] as number) & 0x80);
      expect(eager.verify(message, alias, publicKey)).toBe(false);
    }
  });

  it("keeps its verdicts while evicting tables and while sending first uses to the fallback", () => {
    let fallbackCalls = 0;
    const counting: Ed25519Backend = {
      ...sodium,
      verify(message, signature, publicKey) {
        fallbackCalls++;
        return sodium.verify(message, signature, publicKey);
      },
    };
    const seeds = Array.from({ length: 5 }, (_, i) => new Uint8Array(32).fill(20 + i));
    const message = new TextEncoder().encode("rotate");
    const exercise = (backend: Ed25519Backend): void => {
      for (let round = 0; round < 4; round++) {
        for (const seed of seeds) {
          const signature = sodium.sign(message, seed);
          const publicKey = sodium.publicKeyFromSeed(seed);
          expect(backend.verify(message, signature, publicKey)).toBe(true);
          const wrong = signature.slice();
          wrong[63] = (wrong[63] as number) ^ 1;
          expect(backend.verify(message, wrong, publicKey)).toBe(false);
        }
      }
    };
    exercise(createNativeBackend(counting, { tableAfterUses: 2, cachedKeys: 8 }));
    // Each key's very first verification went to the fallback; the rest used tables.
    expect(fallbackCalls).toBe(seeds.length);
    // Five keys through two cached tables: constant eviction, same verdicts.
    exercise(createNativeBackend(counting, { tableAfterUses: 1, cachedKeys: 2 }));
    expect(fallbackCalls).toBe(seeds.length);
  });

  it("rejects arguments of the wrong type with a TypeError instead of crashing", () => {
    const table = native.keyTable(sodium.publicKeyFromSeed(new Uint8Array(32).fill(1))) as object;
    expect(() => native.verify({}, new Uint8Array(0), new Uint8Array(64))).toThrow(TypeError);
    expect(() => native.verify(table, "text" as unknown as Uint8Array, new Uint8Array(64))).toThrow(TypeError);
    expect(() => native.keyTable([1, 2, 3] as unknown as Uint8Array)).toThrow(TypeError);
    const untyped = native as unknown as Record<string, () => unknown>;
    expect(() => untyped["keyTable"]!()).toThrow(TypeError);
    expect(() => untyped["verify"]!()).toThrow(TypeError);
    expect(() => untyped["sha512"]!()).toThrow(TypeError);
    expect(native.verify(table, new Uint8Array(0), new Uint8Array(63))).toBe(false);
    expect(native.keyTable(new Uint8Array(31))).toBeNull();
  });
});
