/**
 * Matrix canonical JSON (spec appendices, "Canonical JSON").
 *
 * The shortest UTF-8 JSON text with object keys sorted by Unicode code point; integers
 * only, in `[-(2^53)+1, 2^53-1]`; `-0` written as `0`; only `"`, `\` and C0 controls
 * escaped, with the short forms `\b \t \n \f \r` and lower-case `\u00XX` for the rest.
 * U+2028, U+2029, DEL and all non-ASCII characters are written raw, as Synapse's
 * `canonicaljson` (Python `json` with `ensure_ascii=False`) does.
 *
 * This is on the hot path (every signature, hash and event ID), so the encoder is a
 * tight recursive walk with no path bookkeeping: when it meets something it cannot encode
 * it throws a bare sentinel, and only then does a second, slower walk find the JSON path
 * of the offender for the {@link CanonicalJsonError}.
 *
 * With `{ compat: "synapse" }` the encoder also writes {@link JsonNumberToken}s (floats and
 * big integers kept by the lossless parser) exactly as Synapse's `canonicaljson` does, which
 * is what signatures and hashes of room 1-5 events holding such numbers cover. Everything
 * else is the same in both modes.
 *
 * @module
 */

import { JsonNumberToken } from "./json-number-token.js";

/**
 * Deepest nesting of arrays and objects that is encoded or parsed (`[]` has depth 1).
 *
 * The spec sets no limit. serde_json (ruma, conduwuit) refuses more than 128 levels,
 * Python's `json` (Synapse) stops near its recursion limit of 1000 and Go's
 * `encoding/json` at 10 000. 512 is far beyond any real event (they nest fewer than ten
 * levels), stays under Synapse's limit so we never accept what Synapse cannot hash, and
 * keeps the recursive encoder far from V8's stack limit (about 10 000 frames). The parser
 * enforces the same limit, so anything {@link parseJson} accepts can be re-encoded.
 */
export const MAX_JSON_DEPTH = 512;

/** Largest integer canonical JSON allows: 2^53 - 1. */
export const MAX_CANONICAL_INTEGER = Number.MAX_SAFE_INTEGER;

/** Why a value cannot be encoded as canonical JSON. */
export type CanonicalJsonFailure =
  /** A number with a fractional part (floats are not permitted). */
  | "non-integer"
  /** An integer outside `[-(2^53)+1, 2^53-1]`. */
  | "integer-out-of-range"
  /** `NaN`, `Infinity` or `-Infinity`. */
  | "non-finite"
  /** A string or object key containing an unpaired UTF-16 surrogate (not valid UTF-8). */
  | "lone-surrogate"
  /** `undefined`, a function, symbol, bigint, or an object that is not a plain object or array. */
  | "unsupported-type"
  /** Nested deeper than {@link MAX_JSON_DEPTH} (also catches cycles). */
  | "too-deep";

/**
 * Options of {@link encodeCanonicalJson}.
 */
export interface EncodeCanonicalJsonOptions {
  /**
   * `"synapse"`: also encode {@link JsonNumberToken}s, as Synapse's `canonicaljson` does
   * (Python `int` digits, `repr(float)`). For the signatures, hashes and IDs of events in
   * room versions 1-5 and of request bodies carrying them; never for anything we create.
   * Plain `number`s keep the canonical rules (safe integers only). Default: strict
   * canonical JSON, where a token is refused (`non-integer` or `integer-out-of-range`).
   */
  readonly compat?: "synapse";
}

/** Thrown when a value cannot be encoded as canonical JSON. */
export class CanonicalJsonError extends Error {
  override readonly name = "CanonicalJsonError";
  constructor(
    readonly reason: CanonicalJsonFailure,
    /** Path from the root to the offending value: object keys and array indices. */
    readonly path: readonly (string | number)[],
  ) {
    super(`cannot encode canonical JSON (${reason}) at ${formatJsonPath(path)}`);
  }
}

/** Renders a path as `$.a["b c"][3]` for error messages. */
export function formatJsonPath(path: readonly (string | number)[]): string {
  let out = "$";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

// Thrown by the fast encoder; the public entry points catch it and locate the problem.
const FAIL: unique symbol = Symbol("canonical-json-failure");

// Characters that need more than `"` + s + `"`: escapes, and surrogates (which need a
// well-formedness check, and in keys a code-point-aware sort).
const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]/;
const SURROGATE = /[\ud800-\udfff]/;

// Set for the duration of a `compat: "synapse"` encoding: tokens are written, not refused.
let synapseNumbers = false;

// Set by encodeKey when a key contains a surrogate: UTF-16 order and code-point order
// differ only then, so the cheap native sort is redone with a code-point comparator.
let keyHadSurrogate = false;

interface WellFormedString {
  isWellFormed(): boolean;
}

function encodeString(s: string): string {
  if (!NEEDS_CARE.test(s)) return `"${s}"`;
  return encodeStringSlow(s);
}

function encodeStringSlow(s: string): string {
  if (!(s as unknown as WellFormedString).isWellFormed()) throw FAIL;
  // For well-formed strings JSON.stringify produces exactly the canonical escapes:
  // short forms for \b \t \n \f \r, lower-case \u00xx for other C0 controls, \" and \\,
  // everything else raw (ES2019 JSON.stringify escapes only lone surrogates, refused above).
  return JSON.stringify(s);
}

function encodeKey(s: string): string {
  if (!NEEDS_CARE.test(s)) return `"${s}"`;
  if (SURROGATE.test(s)) keyHadSurrogate = true;
  return encodeStringSlow(s);
}

/**
 * Compares two strings by Unicode code point. UTF-16 code-unit order (JavaScript's
 * default) puts astral characters (surrogates D800-DFFF) before U+E000-U+FFFF; code-point
 * order puts them after. Remapping units >= D800 fixes exactly that.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca !== cb) {
      if (ca >= 0xd800 && cb >= 0xd800) {
        ca = ca >= 0xe000 ? ca - 0x800 : ca + 0x2000;
        cb = cb >= 0xe000 ? cb - 0x800 : cb + 0x2000;
      }
      return ca - cb;
    }
  }
  return a.length - b.length;
}

function encodeNumber(n: number): string {
  // isSafeInteger is exactly the canonical range; "" + -0 is "0".
  if (Number.isSafeInteger(n)) return "" + n;
  throw FAIL;
}

function encodeValue(value: unknown, depth: number): string {
  switch (typeof value) {
    case "string":
      return encodeString(value);
    case "number":
      return encodeNumber(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        if (depth >= MAX_JSON_DEPTH) throw FAIL;
        return encodeArray(value, depth + 1);
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        // A token is a leaf, like a number: no depth check.
        if (synapseNumbers && value instanceof JsonNumberToken) return value.toSynapseJson();
        throw FAIL;
      }
      if (depth >= MAX_JSON_DEPTH) throw FAIL;
      return encodeObject(value as Record<string, unknown>, depth + 1);
    }
    default:
      throw FAIL;
  }
}

function encodeArray(array: readonly unknown[], depth: number): string {
  const n = array.length;
  if (n === 0) return "[]";
  let out = "[" + encodeValue(array[0], depth);
  for (let i = 1; i < n; i++) out += "," + encodeValue(array[i], depth);
  return out + "]";
}

function encodeObject(object: Record<string, unknown>, depth: number): string {
  const keys = Object.keys(object);
  const n = keys.length;
  if (n === 0) return "{}";
  if (n > 1) keys.sort();
  const saved = keyHadSurrogate;
  keyHadSurrogate = false;
  let out = encodeMembers(object, keys, n, depth);
  if (keyHadSurrogate && n > 1) {
    // Rare: astral-plane characters in keys. Redo with code-point order.
    keys.sort(compareCodePoints);
    out = encodeMembers(object, keys, n, depth);
  }
  keyHadSurrogate = saved;
  return out;
}

function encodeMembers(object: Record<string, unknown>, keys: string[], n: number, depth: number): string {
  let key = keys[0] as string;
  let out = "{" + encodeKey(key) + ":" + encodeValue(object[key], depth);
  for (let i = 1; i < n; i++) {
    key = keys[i] as string;
    out += "," + encodeKey(key) + ":" + encodeValue(object[key], depth);
  }
  return out + "}";
}

/**
 * Encodes `value` as canonical JSON text (with `{ compat: "synapse" }`, also writing
 * {@link JsonNumberToken}s as Synapse does; see {@link EncodeCanonicalJsonOptions}).
 *
 * @throws {@link CanonicalJsonError} for floats, integers outside ±(2^53-1) (plain numbers,
 *   or tokens without `compat`), NaN and infinities, lone surrogates in strings or keys,
 *   non-JSON values, and nesting deeper than {@link MAX_JSON_DEPTH}; the error carries the
 *   JSON path of the offender.
 */
export function encodeCanonicalJson(value: unknown, options?: EncodeCanonicalJsonOptions): string {
  const compat = options?.compat === "synapse";
  synapseNumbers = compat;
  try {
    return encodeValue(value, 0);
  } catch (error) {
    if (error === FAIL) throw locateProblem(value, compat);
    throw error;
  } finally {
    keyHadSurrogate = false;
    synapseNumbers = false;
  }
}

/** Encodes `value` as canonical JSON, UTF-8 encoded. Same options and refusals as {@link encodeCanonicalJson}. */
export function encodeCanonicalJsonBytes(value: unknown, options?: EncodeCanonicalJsonOptions): Uint8Array {
  const text = encodeCanonicalJson(value, options);
  // Lone surrogates were refused, so the UTF-8 conversion is exact (no U+FFFD).
  const buffer = Buffer.from(text, "utf8");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Walks `value` again, with path tracking, to explain why the fast encoder failed. */
function locateProblem(root: unknown, compat: boolean): CanonicalJsonError {
  interface Frame {
    value: unknown;
    path: (string | number)[];
    depth: number;
  }
  const stack: Frame[] = [{ value: root, path: [], depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop() as Frame;
    switch (typeof value) {
      case "string":
        if (!(value as unknown as WellFormedString).isWellFormed()) {
          return new CanonicalJsonError("lone-surrogate", path);
        }
        continue;
      case "number":
        if (!Number.isFinite(value)) return new CanonicalJsonError("non-finite", path);
        if (!Number.isInteger(value)) return new CanonicalJsonError("non-integer", path);
        if (!Number.isSafeInteger(value)) return new CanonicalJsonError("integer-out-of-range", path);
        continue;
      case "boolean":
        continue;
      case "object": {
        if (value === null) continue;
        if (value instanceof JsonNumberToken) {
          if (compat) continue;
          return new CanonicalJsonError(value.kind === "float" ? "non-integer" : "integer-out-of-range", path);
        }
        if (depth >= MAX_JSON_DEPTH) return new CanonicalJsonError("too-deep", path);
        // Push children in reverse so that the first offender in document order wins.
        if (Array.isArray(value)) {
          for (let i = value.length - 1; i >= 0; i--) {
            stack.push({ value: value[i], path: [...path, i], depth: depth + 1 });
          }
          continue;
        }
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          return new CanonicalJsonError("unsupported-type", path);
        }
        const keys = Object.keys(value).sort(compareCodePoints);
        for (let i = keys.length - 1; i >= 0; i--) {
          const key = keys[i] as string;
          stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key], depth: depth + 1 });
          if (!(key as unknown as WellFormedString).isWellFormed()) {
            // A bad key is reported at its own path, before its value.
            stack.push({ value: key, path: [...path, key], depth: depth + 1 });
          }
        }
        continue;
      }
      default:
        return new CanonicalJsonError("unsupported-type", path);
    }
  }
  // Unreachable unless the fast encoder and this walk disagree.
  return new CanonicalJsonError("unsupported-type", []);
}
