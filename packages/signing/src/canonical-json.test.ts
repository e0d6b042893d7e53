import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JsonValue } from "@myelin/types";
import {
  CanonicalJsonError,
  MAX_JSON_DEPTH,
  compareCodePoints,
  encodeCanonicalJson,
  encodeCanonicalJsonBytes,
} from "./canonical-json.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import { parseJson } from "./json-parse.js";
import { canonicalJsonValue } from "./test-support/arbitraries.js";

/**
 * An independent encoder written from the spec text: keys ordered by comparing their UTF-8
 * bytes (UTF-8 byte order is code point order), strings escaped per the spec grammar one
 * code point at a time.
 */
function referenceEncode(value: JsonValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number") return Object.is(value, -0) ? "0" : value.toFixed(0);
  if (typeof value === "string") {
    let out = '"';
    for (const ch of value) {
      const cp = ch.codePointAt(0) as number;
      const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\" };
      if (short[cp] !== undefined) out += short[cp];
      else if (cp < 0x20) out += "\\u00" + cp.toString(16).padStart(2, "0");
      else out += ch;
    }
    return out + '"';
  }
  if (Array.isArray(value)) return "[" + value.map(referenceEncode).join(",") + "]";
  const keys = Object.keys(value).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return "{" + keys.map((k) => referenceEncode(k) + ":" + referenceEncode(value[k] as JsonValue)).join(",") + "}";
}

function failure(value: unknown): CanonicalJsonError {
  try {
    encodeCanonicalJson(value);
  } catch (error) {
    if (error instanceof CanonicalJsonError) return error;
    throw error;
  }
  throw new Error("expected encodeCanonicalJson to refuse the value");
}

describe("spec vectors (appendices, Canonical JSON > Examples)", () => {
  it.each(vectors.spec.canonical_json.examples.map((e) => [e.expected, e]))(
    "encodes the spec example as %s",
    (_name, example) => {
      // JSON.parse (not parseJson): the last example deliberately contains -0 and 1e10.
      expect(encodeCanonicalJson(JSON.parse(example.input))).toBe(example.expected);
    },
  );
});

describe("derived vectors", () => {
  it("orders astral-plane keys after U+FB01 (code point order, not UTF-16 order)", () => {
    const vector = vectors.derived.canonical_json_edge_cases.astral_key_order;
    const object = { "\uFB01": 1, "\uD83D\uDE00": 2, a: 3 };
    expect(encodeCanonicalJson(object)).toBe(vector.expected);
    expect(encodeCanonicalJson(object)).not.toBe(vector.wrong_if_sorted_by_utf16_code_units);
  });

  it("escapes controls with short forms and lower-case \\u00XX, leaves DEL and U+2028 raw", () => {
    const vector = vectors.derived.canonical_json_edge_cases.string_escapes;
    expect(encodeCanonicalJson({ s: '\u0001\u001f\b\t\n\f\r"\\\u007f\u2028' })).toBe(vector.expected);
  });
});

describe("encodeCanonicalJson", () => {
  it("escapes every C0 control character exactly as the spec grammar allows", () => {
    const short: Record<number, string> = { 8: "b", 9: "t", 10: "n", 12: "f", 13: "r" };
    for (let cp = 0; cp < 0x20; cp++) {
      const expected = short[cp] !== undefined ? `"\\${short[cp]}"` : `"\\u00${cp.toString(16).padStart(2, "0")}"`;
      expect(encodeCanonicalJson(String.fromCharCode(cp))).toBe(expected);
    }
  });

  it("writes '/', DEL, U+2028, U+2029 and non-ASCII raw", () => {
    expect(encodeCanonicalJson("/\u007f\u2028\u2029é日😀")).toBe('"/\u007f\u2028\u2029é日😀"');
  });

  it("escapes quotes and backslashes, including a literal \\u1234 text", () => {
    expect(encodeCanonicalJson('"\\ test')).toBe('"\\"\\\\ test"');
    expect(encodeCanonicalJson("\\u1234")).toBe('"\\\\u1234"');
  });

  it("writes -0 as 0 and the integer range limits in full", () => {
    expect(encodeCanonicalJson(-0)).toBe("0");
    expect(encodeCanonicalJson([2 ** 53 - 1, -(2 ** 53 - 1), 1e15])).toBe(
      "[9007199254740991,-9007199254740991,1000000000000000]",
    );
  });

  it("sorts keys that differ only after a shared prefix, and shorter keys first", () => {
    expect(encodeCanonicalJson({ ab: 1, a: 2, b: 3, "": 4 })).toBe('{"":4,"a":2,"ab":1,"b":3}');
  });

  it("sorts integer-like keys as strings, not in JavaScript's numeric enumeration order", () => {
    expect(Object.keys({ a: 0, 10: 1, 9: 2 })).toEqual(["9", "10", "a"]);
    expect(encodeCanonicalJson({ a: 0, 10: 1, 9: 2 })).toBe('{"10":1,"9":2,"a":0}');
  });

  it("sorts mixed BMP-private-use and astral keys by code point", () => {
    expect(encodeCanonicalJson({ "\u{10000}": 1, "\uffff": 2, "\ue000": 3, "\ud7ff": 4 })).toBe(
      '{"\ud7ff":4,"\ue000":3,"\uffff":2,"\u{10000}":1}',
    );
  });

  it("encodes objects with a null prototype and own __proto__ keys", () => {
    const bare = Object.create(null) as Record<string, JsonValue>;
    bare["b"] = 1;
    bare["a"] = 2;
    expect(encodeCanonicalJson(bare)).toBe('{"a":2,"b":1}');
    expect(encodeCanonicalJson(JSON.parse('{"__proto__":{"x":1}}'))).toBe('{"__proto__":{"x":1}}');
  });

  it("returns UTF-8 bytes from encodeCanonicalJsonBytes", () => {
    expect(Buffer.from(encodeCanonicalJsonBytes({ a: "日😀" })).toString("hex")).toBe(
      Buffer.from('{"a":"日😀"}', "utf8").toString("hex"),
    );
  });

  describe("refusals, each with a tagged reason and the JSON path", () => {
    it.each<[string, unknown, string, (string | number)[]]>([
      ["a float", { a: { b: [0, 1, 1.5] } }, "non-integer", ["a", "b", 2]],
      ["2^53", { depth: 2 ** 53 }, "integer-out-of-range", ["depth"]],
      ["-(2^53)", [-(2 ** 53)], "integer-out-of-range", [0]],
      ["NaN", { x: NaN }, "non-finite", ["x"]],
      ["Infinity", { x: [Infinity] }, "non-finite", ["x", 0]],
      ["-Infinity", -Infinity, "non-finite", []],
      ["a lone high surrogate in a string", { s: "a\ud800b" }, "lone-surrogate", ["s"]],
      ["a lone low surrogate in a string", ["\udc00"], "lone-surrogate", [0]],
      ["a lone surrogate in a key", { ok: 1, ["k\ud800"]: 1 }, "lone-surrogate", ["k\ud800"]],
      ["undefined", { a: undefined }, "unsupported-type", ["a"]],
      ["a function", { f: () => 1 }, "unsupported-type", ["f"]],
      ["a bigint", { n: 1n }, "unsupported-type", ["n"]],
      ["a Date", { d: new Date(0) }, "unsupported-type", ["d"]],
      ["a Map", { m: new Map() }, "unsupported-type", ["m"]],
      ["a Uint8Array", { u: new Uint8Array(1) }, "unsupported-type", ["u"]],
    ])("refuses %s", (_name, value, reason, path) => {
      const error = failure(value);
      expect(error.reason).toBe(reason);
      expect(error.path).toEqual(path);
    });

    it("reports the first offender in canonical order", () => {
      expect(failure({ b: 1.5, a: NaN }).path).toEqual(["a"]);
    });

    it("renders the path in the message", () => {
      expect(failure({ content: { "m.key": [1, 0.5] } }).message).toContain('$.content["m.key"][1]');
    });
  });

  describe("depth limit", () => {
    const nest = (depth: number): JsonValue => {
      let value: JsonValue = 0;
      for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
      return value;
    };

    it(`encodes ${MAX_JSON_DEPTH} nested containers`, () => {
      expect(encodeCanonicalJson(nest(MAX_JSON_DEPTH))).toHaveLength(MAX_JSON_DEPTH * 2 + 1 + (MAX_JSON_DEPTH / 2) * 4);
    });

    it(`refuses ${MAX_JSON_DEPTH + 1} nested containers as too-deep`, () => {
      expect(failure(nest(MAX_JSON_DEPTH + 1)).reason).toBe("too-deep");
    });

    it("refuses 100 000 nested arrays without overflowing the stack", () => {
      expect(failure(nest(100_000)).reason).toBe("too-deep");
    });

    it("refuses a cycle as too-deep", () => {
      const cycle: Record<string, unknown> = {};
      cycle["self"] = cycle;
      expect(failure(cycle).reason).toBe("too-deep");
    });
  });

  describe("properties", () => {
    it("matches an independent reference encoder", () => {
      fc.assert(fc.property(canonicalJsonValue, (value) => encodeCanonicalJson(value) === referenceEncode(value)), {
        numRuns: 500,
      });
    });

    it("is idempotent: re-encoding parsed canonical JSON gives the same text", () => {
      fc.assert(
        fc.property(canonicalJsonValue, (value) => {
          const text = encodeCanonicalJson(value);
          return encodeCanonicalJson(JSON.parse(text)) === text;
        }),
        { numRuns: 300 },
      );
    });

    it("round-trips: parseJson(encodeCanonicalJson(x)) deep-equals x", () => {
      fc.assert(
        fc.property(canonicalJsonValue, (value) => {
          expect(parseJson(encodeCanonicalJson(value))).toStrictEqual(value);
        }),
        { numRuns: 300 },
      );
    });

    it("ignores key insertion order", () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string({ unit: "binary" }), fc.integer()), (object) => {
          const reversed = Object.fromEntries(Object.entries(object).reverse());
          return encodeCanonicalJson(reversed) === encodeCanonicalJson(object);
        }),
      );
    });

    it("compareCodePoints orders like comparing code point sequences", () => {
      const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0) as number);
      const reference = (a: string, b: string): number => {
        const x = codePoints(a);
        const y = codePoints(b);
        for (let i = 0; i < Math.min(x.length, y.length); i++) {
          if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
        }
        return x.length - y.length;
      };
      const text = fc.string({ unit: fc.constantFrom("a", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{10ffff}") });
      fc.assert(fc.property(text, text, (a, b) => Math.sign(compareCodePoints(a, b)) === Math.sign(reference(a, b))));
    });
  });
});

describe("compat: \"synapse\" (only JsonNumberTokens are written differently)", () => {
  it("encodes canonical values exactly as the default mode does", () => {
    fc.assert(
      fc.property(canonicalJsonValue, (value) => {
        expect(encodeCanonicalJson(value, { compat: "synapse" })).toBe(encodeCanonicalJson(value));
      }),
      { numRuns: 500 },
    );
  });

  it("refuses what the default mode refuses when no token is involved, with the same reason and path", () => {
    for (const value of [{ a: 1.5 }, [2 ** 53], { s: "\ud800" }, { f: () => 1 }, { n: Number.NaN }]) {
      expect(failureWith(value, { compat: "synapse" })).toEqual(failureWith(value));
    }
  });
});

function failureWith(value: unknown, options?: { readonly compat?: "synapse" }): { reason: string; path: readonly (string | number)[] } {
  try {
    encodeCanonicalJson(value, options);
  } catch (error) {
    if (error instanceof CanonicalJsonError) return { reason: error.reason, path: error.path };
    throw error;
  }
  throw new Error("expected a refusal");
}
