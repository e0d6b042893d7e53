import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CanonicalJsonError, encodeCanonicalJson } from "./canonical-json.js";
import { JsonNumberToken, JsonNumberTokenError, findJsonNumberToken, formatPythonFloat } from "./json-number-token.js";
import { parseJson } from "./json-parse.js";

// Synapse's own encoder (canonicaljson, Python's json and float repr) in the project's venv
// (`bash scripts/python-env.sh` creates it).
const PYTHON = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));
const noPython = !existsSync(PYTHON);
const SKIP_NOTE = noPython ? " [SKIPPED: .venv/bin/python missing; run bash scripts/python-env.sh]" : "";

/** `canonicaljson.encode_canonical_json(json.loads(text))` for each text, in one Python process. */
function synapseEncode(texts: readonly string[]): string[] {
  const script = [
    "import json, sys, canonicaljson",
    "texts = json.load(sys.stdin)",
    "print(json.dumps([canonicaljson.encode_canonical_json(json.loads(t)).decode('utf-8') for t in texts]))",
  ].join("\n");
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input: JSON.stringify(texts), encoding: "utf8", maxBuffer: 64 << 20 })) as string[];
}

const lossless = { strict: false, lossless: true } as const;

/** Ours: parse losslessly, encode as Synapse does. */
function ourEncode(text: string): string {
  return encodeCanonicalJson(parseJson(text, lossless), { compat: "synapse" });
}

/**
 * Float tokens (fraction or exponent) for a double: three spellings of it, and a rounding of
 * it to 3 digits (when still finite), which is often a short decimal near a power of ten.
 */
function floatTexts(d: number): string[] {
  const shortest = String(d);
  const texts = [d.toExponential(), /[.e]/.test(shortest) ? shortest : `${shortest}.0`, d.toPrecision(17)];
  const rounded = d.toPrecision(3);
  if (Number.isFinite(Number(rounded))) texts.push(rounded);
  return texts;
}

const double = fc.double({ noNaN: true, noDefaultInfinity: true });

/** JSON text mixing floats, big and safe integers, strings, arrays and objects. */
const numberText = fc.oneof(
  double.chain((d) => fc.constantFrom(...floatTexts(d))),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n }).chain((n) => fc.constantFrom(String(n), String(-n))),
  fc.maxSafeInteger().map(String),
);
const documentText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    numberText,
    fc.constantFrom("true", "false", "null"),
    fc.string({ unit: "grapheme", maxLength: 8 }).map((s) => JSON.stringify(s)),
    fc.array(tie("value"), { maxLength: 5 }).map((items) => `[${items.join(", ")}]`),
    fc
      .array(fc.tuple(fc.string({ unit: "grapheme", maxLength: 6 }), tie("value")), { maxLength: 5 })
      .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(", ")}}`),
  ),
})).value;

describe("Python's float repr", () => {
  it.each([
    [1, "1.0"],
    [-0, "-0.0"],
    [0, "0.0"],
    [1.5, "1.5"],
    [0.1, "0.1"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [1e15, "1000000000000000.0"],
    [1e16, "1e+16"],
    [1.5e300, "1.5e+300"],
    [123456789012345680, "1.2345678901234568e+17"],
    [5e-324, "5e-324"],
    [Number.MAX_VALUE, "1.7976931348623157e+308"],
    [-2.5e-7, "-2.5e-07"],
  ])("writes %s as %s", (value, expected) => {
    expect(formatPythonFloat(value)).toBe(expected);
  });

  it("refuses NaN and the infinities, which JSON cannot hold", () => {
    for (const value of [Number.NaN, Infinity, -Infinity]) expect(() => formatPythonFloat(value)).toThrow(RangeError);
  });

  it("reads back as the same double", () => {
    fc.assert(
      fc.property(double, (d) => {
        expect(Object.is(Number(formatPythonFloat(d)), d)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it.skipIf(noPython)(`matches canonicaljson (Python) on many doubles, each in several spellings${SKIP_NOTE}`, () => {
    const seed = Date.now();
    const texts = [
      ...["-0.0", "0.0", "1e16", "1e-5", "9999999999999998.0", "0.00009999999999999999", "1e22", "4.35e-05"],
      ...fc.sample(double, { numRuns: 3000, seed }).flatMap(floatTexts),
    ];
    const expected = synapseEncode(texts);
    const mismatches = texts.flatMap((text, i) => (ourEncode(text) === expected[i] ? [] : [`${text}: ${ourEncode(text)} != ${expected[i]}`]));
    expect(mismatches, `seed ${seed}`).toEqual([]);
  });
});

describe("round trip: parse losslessly, encode as Synapse does", () => {
  it.skipIf(noPython)(`reproduces canonicaljson's bytes (Python) for documents with floats and big integers${SKIP_NOTE}`, () => {
    const seed = Date.now();
    const texts = fc.sample(documentText, { numRuns: 1500, seed });
    const expected = synapseEncode(texts);
    texts.forEach((text, i) => {
      expect(ourEncode(text), `seed ${seed}: ${text}`).toBe(expected[i]);
    });
  });

  it("is idempotent: Synapse's bytes parse back to the same bytes", () => {
    fc.assert(
      fc.property(documentText, (text) => {
        const once = ourEncode(text);
        expect(ourEncode(once)).toBe(once);
      }),
      { numRuns: 1000 },
    );
  });

  it("writes big integers digit for digit and keeps a float's `.0`", () => {
    const text = '{"b": 123456789012345678901234567890, "a": [1.0, 1e3, -0.0, -9007199254740993, 1E-7]}';
    expect(ourEncode(text)).toBe('{"a":[1.0,1000.0,-0.0,-9007199254740993,1e-07],"b":123456789012345678901234567890}');
  });
});

describe("JsonNumberToken", () => {
  it("knows floats and big integers by their text", () => {
    expect(new JsonNumberToken("1e3")).toMatchObject({ text: "1e3", kind: "float", value: 1000 });
    expect(new JsonNumberToken("-9007199254740992")).toMatchObject({ kind: "integer", value: -9007199254740992 });
  });

  it.each([
    ["1", "canonical-integer"],
    ["-9007199254740991", "canonical-integer"],
    ["1e400", "non-finite"],
    ["01", "not-a-number-token"],
    ["1.", "not-a-number-token"],
    ["+1.5", "not-a-number-token"],
    [" 1.5", "not-a-number-token"],
    ["NaN", "not-a-number-token"],
  ])("refuses %s (%s)", (text, reason) => {
    expect(() => new JsonNumberToken(text)).toThrow(expect.objectContaining({ reason }) as JsonNumberTokenError);
  });

  it("refuses to be written by JSON.stringify rather than round or quote the number", () => {
    expect(() => JSON.stringify({ n: new JsonNumberToken("1.0") })).toThrow(JsonNumberTokenError);
  });

  it("is refused by the canonical encoder by default, with the reason a plain number of its kind gets", () => {
    const reasonFor = (value: unknown): string | undefined => {
      try {
        encodeCanonicalJson(value);
      } catch (error) {
        if (error instanceof CanonicalJsonError) return `${error.reason} at ${error.path.join(".")}`;
        throw error;
      }
      return undefined;
    };
    expect(reasonFor({ a: [new JsonNumberToken("1.5")] })).toBe("non-integer at a.0");
    expect(reasonFor({ a: new JsonNumberToken("18446744073709551616") })).toBe("integer-out-of-range at a");
    expect(encodeCanonicalJson({ a: [new JsonNumberToken("1.5")] }, { compat: "synapse" })).toBe('{"a":[1.5]}');
  });

  it("does not change what compat mode does with plain numbers: canonical rules apply", () => {
    expect(() => encodeCanonicalJson([1.5], { compat: "synapse" })).toThrow(CanonicalJsonError);
    expect(() => encodeCanonicalJson([2 ** 60], { compat: "synapse" })).toThrow(CanonicalJsonError);
    expect(encodeCanonicalJson({ b: -0, a: 2 }, { compat: "synapse" })).toBe('{"a":2,"b":0}');
  });
});

describe("findJsonNumberToken", () => {
  it("gives the path of the first token, or undefined for canonical values", () => {
    expect(findJsonNumberToken(parseJson('{"a": [1, {"b": 2.5}], "c": 1e3}', lossless))).toEqual(["a", 1, "b"]);
    expect(findJsonNumberToken(parseJson("3.5", lossless))).toEqual([]);
    expect(findJsonNumberToken(parseJson('{"a": [1, {"b": 2}], "c": "1e3"}', lossless))).toBeUndefined();
  });

  it("walks deep values without recursion", () => {
    const deep = parseJson(`${"[".repeat(500)}1.5${"]".repeat(500)}`, lossless);
    expect(findJsonNumberToken(deep)).toHaveLength(500);
  });
});
