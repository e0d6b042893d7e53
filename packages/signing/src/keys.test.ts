import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { getEd25519Backend } from "./ed25519.js";
import { Ed25519SeedError } from "./ed25519-seed.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import {
  KeyIdError,
  SigningKeyFileError,
  encodePublicKey,
  formatSigningKeyFile,
  generateSigningKey,
  isValidKeyVersion,
  parseKeyId,
  parseSigningKeyFile,
  signingKeyFromSeed,
} from "./keys.js";

const specSeed = vectors.spec.signing_key.seed_base64;
// The spec's seed text has non-zero trailing bits, so its canonical re-encoding differs.
const canonicalSpecSeed = encodeBase64(decodeBase64(specSeed));

describe("signing keys", () => {
  it("derives the spec test key's public key and key ID", () => {
    const key = signingKeyFromSeed(decodeBase64(specSeed), "1");
    expect(key.keyId).toBe(vectors.spec.signing_key.key_id);
    expect(encodePublicKey(key)).toBe(vectors.derived.public_key_unpadded_base64);
    expect(key.algorithm).toBe("ed25519");
  });

  it("copies the seed so later changes to the caller's buffer do not alter the key", () => {
    const seed = decodeBase64(specSeed);
    const key = signingKeyFromSeed(seed, "1");
    seed.fill(0);
    expect(encodeBase64(key.seed)).toBe(canonicalSpecSeed);
  });

  it("generates distinct keys with Synapse-shaped versions that sign and verify", () => {
    const a = generateSigningKey();
    const b = generateSigningKey();
    expect(a.version).toMatch(/^a_[A-Za-z0-9]{4}$/);
    expect(a.keyId).toBe(`ed25519:${a.version}`);
    expect(encodeBase64(a.seed)).not.toBe(encodeBase64(b.seed));
    const message = new TextEncoder().encode("hello");
    const backend = getEd25519Backend();
    expect(backend.verify(message, backend.sign(message, a.seed), a.publicKey)).toBe(true);
    expect(backend.verify(message, backend.sign(message, a.seed), b.publicKey)).toBe(false);
  });

  it("uses a requested version", () => {
    expect(generateSigningKey("auto_1").keyId).toBe("ed25519:auto_1");
  });

  it.each(["", "a b", "a:b", "ä", "a-b"])("refuses the key version %j", (version) => {
    expect(isValidKeyVersion(version)).toBe(false);
    expect(() => generateSigningKey(version)).toThrow(KeyIdError);
  });

  it("refuses a seed that is not 32 bytes", () => {
    expect(() => signingKeyFromSeed(new Uint8Array(31), "1")).toThrow(Ed25519SeedError);
  });
});

describe("parseKeyId", () => {
  it("splits algorithm and version at the first colon", () => {
    expect(parseKeyId("ed25519:a_AbC1")).toEqual({ algorithm: "ed25519", version: "a_AbC1" });
    expect(parseKeyId("curve25519:x")).toEqual({ algorithm: "curve25519", version: "x" });
  });

  it.each([
    ["ed25519", "missing-colon"],
    [":1", "empty-algorithm"],
    ["ed25519:", "invalid-version"],
    ["ed25519:a:b", "invalid-version"],
    ["ed25519:a b", "invalid-version"],
  ])("refuses %j (%s)", (keyId, reason) => {
    expect(() => parseKeyId(keyId)).toThrow(expect.objectContaining({ reason }));
  });
});

describe("Synapse signing-key files", () => {
  it("parses the spec test key written in Synapse's format", () => {
    const [key, ...rest] = parseSigningKeyFile(`ed25519 1 ${specSeed}\n`);
    expect(rest).toEqual([]);
    expect(key?.keyId).toBe("ed25519:1");
    expect(encodePublicKey(key as NonNullable<typeof key>)).toBe(vectors.derived.public_key_unpadded_base64);
  });

  it("tolerates CRLF, blank lines, extra spaces and a padded seed", () => {
    const other = generateSigningKey("b");
    const text = `\r\n  ed25519   a_old   ${specSeed}=\r\n\r\ned25519 b ${encodeBase64(other.seed)}\r\n`;
    const keys = parseSigningKeyFile(text);
    expect(keys.map((k) => k.keyId)).toEqual(["ed25519:a_old", "ed25519:b"]);
    expect(encodeBase64(keys[1]?.publicKey ?? new Uint8Array())).toBe(encodeBase64(other.publicKey));
  });

  it("round-trips any set of keys through format and parse", () => {
    const keys = fc.uniqueArray(
      fc.record({ seed: fc.uint8Array({ minLength: 32, maxLength: 32 }), version: fc.stringMatching(/^[A-Za-z0-9_]{1,8}$/) }),
      { selector: (k) => k.version, maxLength: 4 },
    );
    fc.assert(
      fc.property(keys, (specs) => {
        const original = specs.map((s) => signingKeyFromSeed(s.seed, s.version));
        const text = formatSigningKeyFile(original);
        const parsed = parseSigningKeyFile(text);
        expect(parsed.map((k) => [k.keyId, encodeBase64(k.seed), encodeBase64(k.publicKey)])).toEqual(
          original.map((k) => [k.keyId, encodeBase64(k.seed), encodeBase64(k.publicKey)]),
        );
        expect(text.split("\n").filter((l) => l !== "")).toHaveLength(original.length);
      }),
      { numRuns: 50 },
    );
  });

  it("formats as one 'ed25519 <version> <unpadded seed>' line per key", () => {
    expect(formatSigningKeyFile([signingKeyFromSeed(decodeBase64(specSeed), "1")])).toBe(`ed25519 1 ${canonicalSpecSeed}\n`);
  });

  it.each([
    ["ed25519 1", "malformed-line", 1],
    [`\ned25519 1 ${specSeed} extra`, "malformed-line", 2],
    [`rsa 1 ${specSeed}`, "unsupported-algorithm", 1],
    [`ed25519 a-b ${specSeed}`, "invalid-version", 1],
    ["ed25519 1 not*base64", "invalid-seed", 1],
    [`ed25519 1 ${encodeBase64(new Uint8Array(31))}`, "invalid-seed", 1],
    [`ed25519 1 ${specSeed}\ned25519 1 ${specSeed}`, "duplicate-version", 2],
  ])("refuses %j (%s on line %i)", (text, reason, line) => {
    let error: unknown;
    try {
      parseSigningKeyFile(text);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SigningKeyFileError);
    expect(error).toMatchObject({ reason, line });
  });
});
