/**
 * A JSON parser that judges numbers by their raw tokens.
 *
 * `JSON.parse` turns `9007199254740993` into `9007199254740992` and `1.0` into `1`, so a
 * check on the parsed value cannot tell whether the text was valid canonical JSON
 * (hostile-federation T27). This module keeps `JSON.parse` for building the value (native
 * and fast) and adds one linear scan over the text that looks at what `JSON.parse`
 * cannot report: integer tokens outside ±(2^53-1), fraction/exponent tokens, `\u` escapes
 * that leave a surrogate unpaired, and nesting depth. The scan jumps over string bodies
 * with `indexOf`, so its cost is proportional to the number of tokens, not characters.
 *
 * Syntax errors, and the exact position of any error, come from {@link parseJsonReference},
 * a complete iterative parser that is also the oracle for the property tests.
 *
 * Duplicate keys: the last value wins, as with Python's `json` (Synapse) and `JSON.parse`,
 * so an event with duplicate keys hashes to what Synapse computes for it.
 *
 * Lossless mode (`{ strict: false, lossless: true }`) keeps every number canonical JSON
 * cannot carry as a {@link JsonNumberToken} instead of refusing or rounding it, so that a
 * room 1-5 event holding one can still be verified (hostile-federation T14, §5.3 item 4).
 * Text without such numbers takes the same `JSON.parse` path as before; text with them is
 * built by the reference parser.
 *
 * @module
 */

import type { JsonValue } from "@myelin/types";
import { MAX_JSON_DEPTH } from "./canonical-json.js";
import { JsonNumberToken } from "./json-number-token.js";

/** Options for {@link parseJson}. */
export interface ParseJsonOptions {
  /**
   * Strict canonical-JSON numbers (room versions 6+, `RoomVersionRules.strictCanonicalJson`):
   * refuse any number written with a fraction or exponent (`1.0`, `1e3`), as Synapse does.
   * When false (rooms 1-5), such numbers are returned as JavaScript numbers. Integer tokens
   * outside ±(2^53-1) are refused in both modes (never rounded), unless `lossless`.
   * Default: `true`.
   */
  readonly strict?: boolean;
  /**
   * Non-strict mode only (ignored when `strict`, where every number accepted is exact):
   * return each number with a fraction or exponent, and each integer outside ±(2^53-1), as
   * a {@link JsonNumberToken} holding its text, instead of a rounded `number` or a refusal.
   * Floats too large for a double (`1e400`) are still refused (`non-finite`). The result is
   * typed `JsonValue`, but tokens are objects: see {@link JsonNumberToken}. Default `false`.
   */
  readonly lossless?: boolean;
  /** Deepest nesting of arrays/objects accepted. Default {@link MAX_JSON_DEPTH} (512). */
  readonly maxDepth?: number;
}

/** Why {@link parseJson} refused its input. */
export type JsonParseFailure =
  /** Not JSON (RFC 8259 grammar). */
  | "syntax"
  /** An unpaired UTF-16 surrogate, raw or as a `\u` escape (it has no UTF-8 encoding). */
  | "lone-surrogate"
  /** Strict mode: a number with a fraction or exponent. */
  | "non-integer"
  /** An integer token outside ±(2^53-1) (not in lossless mode). */
  | "integer-out-of-range"
  /** Non-strict mode: a number token too large for a double (`1e400`). */
  | "non-finite"
  /** Nesting deeper than the depth limit. */
  | "too-deep";

/** Thrown by {@link parseJson} for text it refuses. */
export class JsonParseError extends Error {
  override readonly name = "JsonParseError";
  constructor(
    readonly reason: JsonParseFailure,
    /** Index (UTF-16 code units) in the text where the problem starts. */
    readonly position: number,
    detail?: string,
  ) {
    super(`invalid JSON (${reason}) at position ${position}${detail === undefined ? "" : `: ${detail}`}`);
  }
}

interface WellFormedString {
  isWellFormed(): boolean;
}

/**
 * Parses JSON text, refusing numbers that cannot be represented exactly, lone surrogates
 * and excessive nesting.
 *
 * @throws {@link JsonParseError} with the reason and position of the first problem.
 */
export function parseJson(text: string, options?: ParseJsonOptions): JsonValue {
  const strict = options?.strict ?? true;
  const lossless = !strict && options?.lossless === true;
  const maxDepth = options?.maxDepth ?? MAX_JSON_DEPTH;
  if (!(text as unknown as WellFormedString).isWellFormed()) {
    throw new JsonParseError("lone-surrogate", firstLoneSurrogate(text));
  }
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    // Let the reference parser find and describe the first problem.
    parseJsonReference(text, options);
    throw new JsonParseError("syntax", 0, "rejected by JSON.parse");
  }
  if (scanTokens(text, strict, lossless, maxDepth)) {
    // Some number needs a token: build the value again, keeping their text.
    return parseJsonReference(text, options);
  }
  return value;
}

function firstLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

// "9007199254740991" has 16 digits; shorter integer tokens are always in range.
const MAX_INTEGER_DIGITS = "9007199254740991";

function hexValue(text: string, at: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = text.charCodeAt(at + k);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * Checks a `\` escape at `at` (text known to be valid JSON); returns the index after it.
 * A high-surrogate escape must be followed directly by a low-surrogate escape.
 */
function checkEscape(text: string, at: number): number {
  if (text.charCodeAt(at + 1) !== 0x75) return at + 2;
  const unit = hexValue(text, at + 2);
  if (unit < 0xd800 || unit > 0xdfff) return at + 6;
  if (unit <= 0xdbff && text.charCodeAt(at + 6) === 0x5c && text.charCodeAt(at + 7) === 0x75) {
    const low = hexValue(text, at + 8);
    if (low >= 0xdc00 && low <= 0xdfff) return at + 12;
  }
  throw new JsonParseError("lone-surrogate", at);
}

// Set by checkNumber (lossless mode) when a number needs a JsonNumberToken.
let sawTokenNumber = false;

/** Checks the number token at `start` (valid JSON); returns the index after it. */
function checkNumber(text: string, start: number, strict: boolean, lossless: boolean): number {
  let i = start;
  if (text.charCodeAt(i) === 0x2d) i++;
  const digitsStart = i;
  let c = text.charCodeAt(i);
  while (c >= 0x30 && c <= 0x39) c = text.charCodeAt(++i);
  if (c === 0x2e || c === 0x65 || c === 0x45) {
    if (strict) throw new JsonParseError("non-integer", start);
    c = text.charCodeAt(++i);
    // Rest of the token: digits, '.', 'e', 'E', '+', '-'.
    while ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d) {
      c = text.charCodeAt(++i);
    }
    if (!Number.isFinite(Number(text.slice(start, i)))) throw new JsonParseError("non-finite", start);
    if (lossless) sawTokenNumber = true;
    return i;
  }
  const digits = i - digitsStart;
  // JSON forbids leading zeros, so the digit count orders magnitudes.
  if (digits >= 16 && (digits > 16 || text.slice(digitsStart, i) > MAX_INTEGER_DIGITS)) {
    if (!lossless) throw new JsonParseError("integer-out-of-range", start);
    sawTokenNumber = true;
  }
  return i;
}

/**
 * One pass over text that JSON.parse accepted. String bodies are skipped with indexOf;
 * backslashes are visited in order through a running "next backslash" index, which is
 * valid because in JSON text every backslash lies inside a string. Returns whether a
 * number needs a {@link JsonNumberToken} (lossless mode only).
 */
function scanTokens(text: string, strict: boolean, lossless: boolean, maxDepth: number): boolean {
  sawTokenNumber = false;
  const n = text.length;
  let backslash = text.indexOf("\\");
  if (backslash < 0) backslash = n;
  let depth = 0;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let from = i + 1;
      for (;;) {
        const quote = text.indexOf('"', from);
        if (backslash > quote) {
          i = quote + 1;
          break;
        }
        from = checkEscape(text, backslash);
        backslash = text.indexOf("\\", from);
        if (backslash < 0) backslash = n;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw new JsonParseError("too-deep", i);
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      i = checkNumber(text, i, strict, lossless);
    } else if (c === 0x74 || c === 0x6e) {
      i += 4; // true, null
    } else if (c === 0x66) {
      i += 5; // false
    } else {
      i++; // whitespace, ',' or ':'
    }
  }
  return sawTokenNumber;
}

// ---------------------------------------------------------------------------------------
// Reference parser

interface ArrayFrame {
  readonly array: JsonValue[];
  readonly object: undefined;
  key: string;
}
interface ObjectFrame {
  readonly array: undefined;
  readonly object: Record<string, JsonValue>;
  key: string;
}
type Frame = ArrayFrame | ObjectFrame;

/** @internal Sets `object[key]` as an own data property, even for the key `__proto__`. */
export function setMember(object: Record<string, JsonValue>, key: string, value: JsonValue): void {
  if (key === "__proto__") {
    // Like JSON.parse: an own data property, never the prototype setter.
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/**
 * A complete, iterative JSON parser with the same acceptance rules and results as
 * {@link parseJson}, reporting the first problem in text order. Slower than `parseJson`;
 * used to locate errors and as the oracle in property tests.
 *
 * @throws {@link JsonParseError}
 */
export function parseJsonReference(text: string, options?: ParseJsonOptions): JsonValue {
  const strict = options?.strict ?? true;
  const lossless = !strict && options?.lossless === true;
  const maxDepth = options?.maxDepth ?? MAX_JSON_DEPTH;
  if (!(text as unknown as WellFormedString).isWellFormed()) {
    throw new JsonParseError("lone-surrogate", firstLoneSurrogate(text));
  }
  const n = text.length;
  let i = 0;
  const stack: Frame[] = [];

  const syntax = (at: number, detail: string): JsonParseError =>
    new JsonParseError("syntax", at, at >= n ? `unexpected end of input (${detail})` : detail);

  const skipWhitespace = (): void => {
    let c = text.charCodeAt(i);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
  };

  const parseString = (): string => {
    // text[i] === '"'
    let out = "";
    let chunkStart = ++i;
    for (;;) {
      if (i >= n) throw syntax(i, "unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(chunkStart, i);
        i++;
        return out;
      }
      if (c < 0x20) throw syntax(i, "control character in string");
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(chunkStart, i);
      const escapeAt = i;
      const e = text.charCodeAt(i + 1);
      switch (e) {
        case 0x22: out += '"'; i += 2; break;
        case 0x5c: out += "\\"; i += 2; break;
        case 0x2f: out += "/"; i += 2; break;
        case 0x62: out += "\b"; i += 2; break;
        case 0x66: out += "\f"; i += 2; break;
        case 0x6e: out += "\n"; i += 2; break;
        case 0x72: out += "\r"; i += 2; break;
        case 0x74: out += "\t"; i += 2; break;
        case 0x75: {
          const unit = hexValue(text, i + 2);
          if (unit < 0) throw syntax(i, "bad \\u escape");
          i += 6;
          if (unit >= 0xd800 && unit <= 0xdfff) {
            let low = -1;
            if (unit <= 0xdbff && text.charCodeAt(i) === 0x5c && text.charCodeAt(i + 1) === 0x75) {
              low = hexValue(text, i + 2);
            }
            if (low < 0xdc00 || low > 0xdfff) throw new JsonParseError("lone-surrogate", escapeAt);
            out += String.fromCharCode(unit, low);
            i += 6;
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          throw syntax(i, "bad escape");
      }
      chunkStart = i;
    }
  };

  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

  const parseNumber = (): number | JsonNumberToken => {
    const start = i;
    if (text.charCodeAt(i) === 0x2d) i++;
    const digitsStart = i;
    let c = text.charCodeAt(i);
    if (c === 0x30) {
      c = text.charCodeAt(++i);
    } else if (c >= 0x31 && c <= 0x39) {
      while (isDigit(c)) c = text.charCodeAt(++i);
    } else {
      throw syntax(i, "bad number");
    }
    const digits = i - digitsStart;
    let isFloat = false;
    if (c === 0x2e) {
      isFloat = true;
      c = text.charCodeAt(++i);
      if (!isDigit(c)) throw syntax(i, "bad number fraction");
      while (isDigit(c)) c = text.charCodeAt(++i);
    }
    if (c === 0x65 || c === 0x45) {
      isFloat = true;
      c = text.charCodeAt(++i);
      if (c === 0x2b || c === 0x2d) c = text.charCodeAt(++i);
      if (!isDigit(c)) throw syntax(i, "bad number exponent");
      while (isDigit(c)) c = text.charCodeAt(++i);
    }
    const token = text.slice(start, i);
    if (isFloat) {
      if (strict) throw new JsonParseError("non-integer", start);
      const value = Number(token);
      if (!Number.isFinite(value)) throw new JsonParseError("non-finite", start);
      return lossless ? new JsonNumberToken(token) : value;
    }
    if (digits >= 16 && (digits > 16 || text.slice(digitsStart, i) > MAX_INTEGER_DIGITS)) {
      if (lossless) return new JsonNumberToken(token);
      throw new JsonParseError("integer-out-of-range", start);
    }
    return Number(token);
  };

  const expectKey = (): string => {
    skipWhitespace();
    if (text.charCodeAt(i) !== 0x22) throw syntax(i, "expected a string key");
    const key = parseString();
    skipWhitespace();
    if (text.charCodeAt(i) !== 0x3a) throw syntax(i, "expected ':'");
    i++;
    return key;
  };

  const literal = (word: string, value: JsonValue): JsonValue => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return value;
    }
    throw syntax(i, "unexpected token");
  };

  let value: JsonValue;
  next: for (;;) {
    skipWhitespace();
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= maxDepth) throw new JsonParseError("too-deep", i);
      i++;
      skipWhitespace();
      if (c === 0x7b) {
        if (text.charCodeAt(i) === 0x7d) {
          i++;
          value = {};
        } else {
          stack.push({ array: undefined, object: {}, key: expectKey() });
          continue next;
        }
      } else if (text.charCodeAt(i) === 0x5d) {
        i++;
        value = [];
      } else {
        stack.push({ array: [], object: undefined, key: "" });
        continue next;
      }
    } else if (c === 0x22) {
      value = parseString();
    } else if (c === 0x2d || isDigit(c)) {
      // A token stands where the number was; JsonValue has no place for it (see ParseJsonOptions.lossless).
      value = parseNumber() as JsonValue;
    } else if (c === 0x74) {
      value = literal("true", true);
    } else if (c === 0x66) {
      value = literal("false", false);
    } else if (c === 0x6e) {
      value = literal("null", null);
    } else {
      throw syntax(i, "expected a value");
    }

    // A value is complete: hand it to the enclosing containers.
    for (;;) {
      const frame = stack[stack.length - 1];
      if (frame === undefined) {
        skipWhitespace();
        if (i < n) throw syntax(i, "unexpected text after the value");
        return value;
      }
      skipWhitespace();
      const d = text.charCodeAt(i);
      if (frame.array !== undefined) {
        frame.array.push(value);
        if (d === 0x2c) {
          i++;
          continue next;
        }
        if (d !== 0x5d) throw syntax(i, "expected ',' or ']'");
        i++;
        value = frame.array;
      } else {
        setMember(frame.object, frame.key, value);
        if (d === 0x2c) {
          i++;
          frame.key = expectKey();
          continue next;
        }
        if (d !== 0x7d) throw syntax(i, "expected ',' or '}'");
        i++;
        value = frame.object;
      }
      stack.pop();
    }
  }
}
