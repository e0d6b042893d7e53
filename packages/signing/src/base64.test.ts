import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Base64DecodeError, decodeBase64, encodeBase64, encodeBase64Url } from "./base64.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function refusal(text: string): { reason: string; position: number } {
  try {
    decodeBase64(text);
  } catch (error) {
    if (error instanceof Base64DecodeError) return { reason: error.reason, position: error.position };
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

describe("spec vectors (appendices, Unpadded Base64)", () => {
  it.each(vectors.spec.unpadded_base64.examples.map((e) => [e.input_utf8, e.expected]))(
    "UNPADDED_BASE64(%j) = %j",
    (input, expected) => {
      expect(encodeBase64(utf8(input))).toBe(expected);
      expect(decodeBase64(expected)).toEqual(utf8(input));
    },
  );
});

describe("derived vectors", () => {
  it("encodes one reference hash as standard and URL-safe Base64 differing only in +/ vs -_", () => {
    const vector = vectors.derived.redactable_event_reference_hash_v1_v10_redaction;
    const hash = decodeBase64(vector.std_base64);
    expect(hash).toHaveLength(32);
    expect(encodeBase64(hash)).toBe(vector.std_base64);
    expect(encodeBase64Url(hash)).toBe(vector.urlsafe_base64);
    expect(decodeBase64(vector.urlsafe_base64)).toEqual(hash);
  });
});

describe("decodeBase64", () => {
  it("accepts padded and unpadded, standard and URL-safe input", () => {
    const bytes = Uint8Array.from([0xfb, 0xff, 0xfe]);
    for (const text of ["+//+", "-__-"]) expect(decodeBase64(text)).toEqual(bytes);
    expect(decodeBase64("Zg==")).toEqual(utf8("f"));
    expect(decodeBase64("Zg")).toEqual(utf8("f"));
    expect(decodeBase64("Zm8=")).toEqual(utf8("fo"));
  });

  it("accepts non-zero trailing bits, which the spec's own test seed has", () => {
    const seed = vectors.spec.signing_key.seed_base64;
    expect(decodeBase64(seed)).toHaveLength(32);
    expect(encodeBase64(decodeBase64(seed))).not.toBe(seed);
    expect(decodeBase64("Zh")).toEqual(decodeBase64("Zg"));
  });

  it.each([
    ["Zm9v!", "invalid-character", 4],
    ["Zm 9v", "invalid-character", 2],
    ["Zm9v\n", "invalid-character", 4],
    ["Z=g", "invalid-character", 1],
    ["Zg===", "invalid-character", 2],
    ["é", "invalid-character", 0],
    ["Zm9vY", "invalid-length", 5],
    ["Zg=", "invalid-padding", 2],
    ["Zm9v=", "invalid-padding", 4],
    ["Zm8==", "invalid-padding", 3],
  ])("refuses %j (%s)", (text, reason, position) => {
    expect(refusal(text)).toEqual({ reason, position });
  });

  it("round-trips both encodings for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const standard = encodeBase64(bytes);
        const urlSafe = encodeBase64Url(bytes);
        expect(standard).not.toContain("=");
        expect(standard).toBe(Buffer.from(bytes).toString("base64").replace(/=+$/, ""));
        expect(urlSafe).toBe(standard.replace(/\+/g, "-").replace(/\//g, "_"));
        expect(decodeBase64(standard)).toEqual(bytes);
        expect(decodeBase64(urlSafe)).toEqual(bytes);
      }),
    );
  });

  it("encodes a view into a larger buffer without reading outside it", () => {
    const backing = Uint8Array.from([1, 2, 3, 4, 5]);
    expect(encodeBase64(backing.subarray(1, 3))).toBe(encodeBase64(Uint8Array.from([2, 3])));
  });
});
