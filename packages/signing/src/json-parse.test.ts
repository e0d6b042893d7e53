import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "./canonical-json.js";
import type { ParseJsonOptions } from "./json-parse.js";
import { JsonParseError, parseJson, parseJsonReference } from "./json-parse.js";
import { JsonNumberToken } from "./json-number-token.js";

function outcome(parse: typeof parseJson, text: string, options?: ParseJsonOptions): unknown {
  try {
    return { value: parse(text, options) };
  } catch (error) {
    if (error instanceof JsonParseError) return { reason: error.reason, position: error.position };
    throw error;
  }
}

function refusal(text: string, options?: ParseJsonOptions): { reason: string; position: number } {
  const result = outcome(parseJson, text, options) as { reason?: string; position: number };
  if (result.reason === undefined) throw new Error(`expected ${JSON.stringify(text)} to be refused`);
  return { reason: result.reason, position: result.position };
}

describe("parseJson", () => {
  it("parses what JSON.parse parses, for ordinary documents", () => {
    const text = '{"a":[1,-2,true,false,null,"x\\n\\u00e9\\ud83d\\ude00"],"b":{"c":{}},"d":[]}';
    expect(parseJson(text)).toStrictEqual(JSON.parse(text));
  });

  describe("integers are judged by their tokens, never rounded", () => {
    it.each(["9007199254740991", "-9007199254740991", "0", "-0", "1000000000000000"])("accepts %s", (token) => {
      expect(parseJson(`[${token}]`)).toStrictEqual([Number(token)]);
    });

    it.each(["9007199254740992", "-9007199254740992", "9007199254740993", "12345678901234567890", "-100000000000000000000"])(
      "refuses %s in strict and non-strict mode",
      (token) => {
        expect(refusal(`{"depth": ${token}}`)).toEqual({ reason: "integer-out-of-range", position: 10 });
        expect(refusal(`{"depth": ${token}}`, { strict: false })).toEqual({ reason: "integer-out-of-range", position: 10 });
      },
    );
  });

  describe("fractions and exponents", () => {
    it.each(["1.0", "1e3", "1E3", "1e+3", "-0.5", "5e-1", "0.0"])("strict mode refuses %s as non-integer", (token) => {
      expect(refusal(`[1, ${token}]`)).toEqual({ reason: "non-integer", position: 4 });
    });

    it.each([
      ["1.0", 1],
      ["1e3", 1000],
      ["-0.5", -0.5],
      ["1.7976931348623157e308", Number.MAX_VALUE],
      ["9007199254740993.0", 9007199254740992],
    ])("non-strict mode (rooms 1-5) returns %s as a number", (token, value) => {
      expect(parseJson(`[${token}]`, { strict: false })).toStrictEqual([value]);
    });

    it.each(["1e400", "-1e400"])("non-strict mode refuses %s, which overflows a double", (token) => {
      expect(refusal(`[${token}]`, { strict: false })).toEqual({ reason: "non-finite", position: 1 });
    });

    it("defaults to strict mode", () => {
      expect(refusal("1.5").reason).toBe("non-integer");
    });
  });

  describe("surrogates", () => {
    it("combines an escaped surrogate pair", () => {
      expect(parseJson('"\\ud83d\\ude00"')).toBe("😀");
      expect(parseJson('{"\\uD83D\\uDE00":1}')).toStrictEqual({ "😀": 1 });
    });

    it.each([
      ['"\\ud800"', 1],
      ['"ab\\udc00"', 3],
      ['"\\ud800\\u0041"', 1],
      ['"\\ud800\\ud800"', 1],
      ['"\\ud83d\\ude00\\ude00"', 13],
      ['{"\\ud800":1}', 2],
    ])("refuses a lone surrogate escape in %s", (text, position) => {
      expect(refusal(text)).toEqual({ reason: "lone-surrogate", position });
    });

    it("refuses a raw lone surrogate in the text", () => {
      expect(refusal('["ok", "\ud800"]')).toEqual({ reason: "lone-surrogate", position: 8 });
    });

    it("does not mistake an escaped backslash followed by 'ud800' for an escape", () => {
      expect(parseJson('"\\\\ud800"')).toBe("\\ud800");
    });
  });

  describe("depth limit", () => {
    const nested = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);

    it(`accepts ${MAX_JSON_DEPTH} nested containers by default`, () => {
      expect(() => parseJson(nested(MAX_JSON_DEPTH))).not.toThrow();
    });

    it(`refuses ${MAX_JSON_DEPTH + 1} at the opening bracket that exceeds the limit`, () => {
      expect(refusal(nested(MAX_JSON_DEPTH + 1))).toEqual({ reason: "too-deep", position: MAX_JSON_DEPTH });
    });

    it("refuses 100 000 nested arrays without overflowing the stack", () => {
      expect(refusal(nested(100_000)).reason).toBe("too-deep");
      expect(refusal(`{"a":${nested(100_000)}`).reason).toBe("too-deep");
    });

    it("honours a smaller maxDepth", () => {
      expect(refusal('{"a":{"b":[1]}}', { maxDepth: 2 })).toEqual({ reason: "too-deep", position: 10 });
      expect(parseJson('{"a":{"b":1}}', { maxDepth: 2 })).toStrictEqual({ a: { b: 1 } });
    });
  });

  it("keeps the last value of a duplicate key, as Python's json (Synapse) does", () => {
    expect(parseJson('{"a":1,"b":2,"a":3}')).toStrictEqual({ a: 3, b: 2 });
  });

  it("makes __proto__ an own property, never the prototype", () => {
    const value = parseJson('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect((value as { polluted?: boolean }).polluted).toBeUndefined();
  });

  describe("syntax errors carry the position of the problem", () => {
    it.each([
      ['{"a":}', 5],
      ["[1,]", 3],
      ['{"a" 1}', 5],
      ['{"a":1,}', 7],
      ["[1 2]", 3],
      ['{"a":1}x', 7],
      ["01", 1],
      ["-", 1],
      ["1.", 2],
      [".5", 0],
      ["+1", 0],
      ["1e", 2],
      ['"abc', 4],
      ['"a\nb"', 2],
      ['"\\x"', 1],
      ['"\\u12G4"', 1],
      ["NaN", 0],
      ["Infinity", 0],
      ["tru", 0],
      ["", 0],
      ["\ufeff{}", 0],
    ])("%j at %i", (text, position) => {
      expect(refusal(text)).toEqual({ reason: "syntax", position });
    });
  });
});

// --- property tests: the fast path agrees with the reference parser ----------------------

const whitespace = fc.constantFrom("", " ", "\n", "\t", "\r\n ");
const numberToken = fc.oneof(
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }).map(String),
  fc.integer().map(String),
  fc.constantFrom(
    "9007199254740991",
    "9007199254740992",
    "-9007199254740991",
    "-9007199254740992",
    "0",
    "-0",
    "1.0",
    "1e3",
    "1E+3",
    "2.5e-3",
    "1e400",
    "-1e400",
    "0.1",
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
);
const stringPiece = fc.oneof(
  fc.string({ unit: "binary", maxLength: 5 }).map((s) => JSON.stringify(s).slice(1, -1)),
  fc.constantFrom(
    "\\n",
    "\\u0041",
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\ud800",
    "\\udc00",
    "\\\\ud800",
    "\\/",
    "\\\"",
    "\\\\",
  ),
);
const stringToken = fc.array(stringPiece, { maxLength: 4 }).map((pieces) => `"${pieces.join("")}"`);
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    numberToken,
    stringToken,
    fc.constantFrom("true", "false", "null"),
    fc
      .tuple(fc.array(tie("value"), { maxLength: 4 }), whitespace)
      .map(([items, ws]) => `[${ws}${items.join(`${ws},`)}]`),
    fc
      .tuple(fc.array(fc.tuple(stringToken, tie("value")), { maxLength: 4 }), whitespace)
      .map(([entries, ws]) => `{${entries.map(([k, v]) => `${ws}${k}${ws}:${v}`).join(",")}${ws}}`),
  ),
})).value;
const mutatedText = fc
  .tuple(jsonText, fc.nat(), fc.constantFrom("", ",", "]", "}", '"', "\\", "1", ".", "e", "{", "["))
  .map(([text, at, insert]) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i + 1);
  });

describe("parseJson agrees with the reference parser", () => {
  it.each([true, false])("on generated JSON text (strict: %s)", (strict) => {
    fc.assert(
      fc.property(jsonText, (text) => {
        expect(outcome(parseJson, text, { strict })).toStrictEqual(outcome(parseJsonReference, text, { strict }));
      }),
      { numRuns: 1000 },
    );
  });

  it.each([true, false])("on mutated, mostly invalid JSON text (strict: %s)", (strict) => {
    fc.assert(
      fc.property(mutatedText, (text) => {
        expect(outcome(parseJson, text, { strict })).toStrictEqual(outcome(parseJsonReference, text, { strict }));
      }),
      { numRuns: 1000 },
    );
  });

  it("builds the same values as JSON.parse whenever it accepts", () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        const result = outcome(parseJsonReference, text, { strict: false }) as { value?: unknown };
        if ("value" in result) expect(result.value).toStrictEqual(JSON.parse(text));
      }),
      { numRuns: 1000 },
    );
  });

  it("accepts exactly the texts JSON.parse accepts, minus the refusals it adds", () => {
    fc.assert(
      fc.property(mutatedText, (text) => {
        const result = outcome(parseJson, text, { strict: false }) as { reason?: string };
        let nativeAccepts = true;
        try {
          JSON.parse(text);
        } catch {
          nativeAccepts = false;
        }
        if (!nativeAccepts) expect(result.reason).toBeDefined();
        if (nativeAccepts && result.reason !== undefined) expect(result.reason).not.toBe("syntax");
      }),
      { numRuns: 1000 },
    );
  });
});

/** `value` with every token replaced by its double (what non-strict mode returns for floats). */
function asDoubles(value: unknown): unknown {
  if (value instanceof JsonNumberToken) return value.value;
  if (Array.isArray(value)) return value.map(asDoubles);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    Object.defineProperty(out, key, { value: asDoubles(item), writable: true, enumerable: true, configurable: true });
  }
  return out;
}

describe("lossless mode (rooms 1-5: numbers canonical JSON cannot carry, kept exactly)", () => {
  const lossless: ParseJsonOptions = { strict: false, lossless: true };

  it.each(["1.0", "1e3", "-0.0", "2.5E-3", "9007199254740993.0"])("returns the float %s as a token holding its text and double", (token) => {
    const [value] = parseJson(`[${token}]`, lossless) as unknown[];
    expect(value).toBeInstanceOf(JsonNumberToken);
    expect(value).toMatchObject({ text: token, kind: "float", value: Number(token) });
  });

  it.each(["9007199254740992", "-9007199254740992", "123456789012345678901234567890"])(
    "returns the out-of-range integer %s as a token instead of refusing it",
    (token) => {
      const value = (parseJson(`{"n": ${token}}`, lossless) as Record<string, unknown>)["n"];
      expect(value).toBeInstanceOf(JsonNumberToken);
      expect(value).toMatchObject({ text: token, kind: "integer" });
    },
  );

  it("keeps canonical integers as numbers and returns the same value as JSON.parse for text without tokens", () => {
    const text = '{"a":[1,-2,9007199254740991,-0,true,null,"1.5"],"b":{"c":{}}}';
    expect(parseJson(text, lossless)).toStrictEqual(JSON.parse(text));
  });

  it("still refuses a float that overflows a double, lone surrogates and excess depth", () => {
    expect(refusal("[1e400]", lossless)).toEqual({ reason: "non-finite", position: 1 });
    expect(refusal('["\\ud800", 1.5]', lossless).reason).toBe("lone-surrogate");
    expect(refusal("[[[1.5]]]", { ...lossless, maxDepth: 2 }).reason).toBe("too-deep");
  });

  it("is ignored in strict mode, and off by default in non-strict mode", () => {
    expect(refusal("[1.5]", { strict: true, lossless: true }).reason).toBe("non-integer");
    expect(refusal("[9007199254740993]", { strict: true, lossless: true }).reason).toBe("integer-out-of-range");
    expect(parseJson("[1.5]", { strict: false })).toStrictEqual([1.5]);
    expect(refusal("[9007199254740993]", { strict: false }).reason).toBe("integer-out-of-range");
  });

  it("agrees with the reference parser on generated and mutated JSON text", () => {
    fc.assert(
      fc.property(fc.oneof(jsonText, mutatedText), (text) => {
        expect(outcome(parseJson, text, lossless)).toStrictEqual(outcome(parseJsonReference, text, lossless));
      }),
      { numRuns: 2000 },
    );
  });

  it("accepts every text non-strict mode accepts, with the same value once tokens are read as doubles", () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        const plain = outcome(parseJson, text, { strict: false }) as { value?: unknown };
        if (!("value" in plain)) return;
        expect(asDoubles(parseJson(text, lossless))).toStrictEqual(plain.value);
      }),
      { numRuns: 1000 },
    );
  });
});
