/**
 * Numbers outside canonical JSON, kept exactly as received.
 *
 * Room versions 1-5 do not require canonical JSON, and Synapse sends events of those rooms
 * with floats (`1.5`, `1e-05`) and integers of any size: its `canonicaljson` writes a
 * Python `int` as all its digits and a Python `float` as `repr(float)`. Such an event's
 * signatures, hashes and ID are computed over that text, so to verify it we must neither
 * refuse it nor round it. `parseJson(text, { strict: false, lossless: true })` returns a
 * {@link JsonNumberToken} for every such number, and
 * `encodeCanonicalJson(value, { compat: "synapse" })` writes it back as Synapse would.
 *
 * The invariant: a token is never a number canonical JSON allows (its constructor refuses
 * integers within ±(2^53-1)), so a value holding one is not canonical JSON. Room versions
 * 6+ refuse such events (hostile-federation T14, T26).
 *
 * @module
 */

/** Why a {@link JsonNumberToken} could not be made or used. */
export type JsonNumberTokenFailure =
  /** The text is not one JSON number token (RFC 8259 `number`). */
  | "not-a-number-token"
  /** An integer within ±(2^53-1): a plain `number` represents it exactly. */
  | "canonical-integer"
  /** A float too large for a double (`1e400`): Python reads it as `inf`, which no encoder writes. */
  | "non-finite"
  /** `JSON.stringify` met a token: it cannot write the exact number (use the Synapse-compatible encoder). */
  | "json-stringify";

/** Thrown by {@link JsonNumberToken}'s constructor and `toJSON`. */
export class JsonNumberTokenError extends Error {
  override readonly name = "JsonNumberTokenError";
  constructor(
    readonly reason: JsonNumberTokenFailure,
    /** The token text concerned. */
    readonly text: string,
  ) {
    super(`JSON number ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text)}: ${reason}`);
  }
}

const NUMBER_TOKEN = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const INTEGER_TOKEN = /^-?(?:0|[1-9][0-9]*)$/;

/**
 * A JSON number that canonical JSON cannot carry, as it was written: a float (a token with
 * a fraction or exponent, even `1.0`) or an integer outside ±(2^53-1).
 *
 * Made by `parseJson` in lossless mode, typed there as a `JsonValue` (JSON data holds it
 * where a number was). It is an object, not a `number`: code reading JSON that may hold
 * tokens must check `instanceof JsonNumberToken` before treating a value as an object, and
 * never do arithmetic on it. `JSON.stringify` refuses it (see {@link toJSON}).
 */
export class JsonNumberToken {
  /** The token exactly as it appeared in the JSON text. */
  readonly text: string;
  /** `float` for a token with a fraction or exponent, `integer` for a big integer. */
  readonly kind: "float" | "integer";
  /**
   * The nearest double: the exact value of a float (JSON parsers in Python, Go and
   * JavaScript all read floats as doubles), a rounded one for a big integer.
   */
  readonly value: number;

  /** @throws {@link JsonNumberTokenError} for text that is not a float or a big integer token. */
  constructor(text: string) {
    if (!NUMBER_TOKEN.test(text)) throw new JsonNumberTokenError("not-a-number-token", text);
    const value = Number(text);
    if (INTEGER_TOKEN.test(text)) {
      if (Number.isSafeInteger(value)) throw new JsonNumberTokenError("canonical-integer", text);
      this.kind = "integer";
    } else {
      if (!Number.isFinite(value)) throw new JsonNumberTokenError("non-finite", text);
      this.kind = "float";
    }
    this.text = text;
    this.value = value;
  }

  /**
   * The number as Synapse's `canonicaljson` writes it: an integer's digits unchanged
   * (Python `int` is exact, and JSON integer tokens have no leading zeros or `+`), a float
   * as Python's `repr` of the double (`1e3` becomes `1000.0`, `0.00001` becomes `1e-05`).
   */
  toSynapseJson(): string {
    return this.kind === "integer" ? this.text : formatPythonFloat(this.value);
  }

  /**
   * Refuses to be written by `JSON.stringify`, which could only write a rounded number or
   * a string: silently changing signed data is worse than failing.
   *
   * @throws {@link JsonNumberTokenError} always.
   */
  toJSON(): never {
    throw new JsonNumberTokenError("json-stringify", this.text);
  }

  /** The token text. */
  toString(): string {
    return this.text;
  }
}

/**
 * Formats a finite double as Python's `repr(float)` does (CPython `float_repr_style`
 * "short"): the shortest digits that read back as the same double, in positional form when
 * the decimal exponent is in -4..15 (with `.0` added to an integral value: `1.0`, `-0.0`,
 * `1000000000000000.0`), otherwise as `d.ddde±XX` with at least two exponent digits
 * (`1e+16`, `1e-05`, `1.5e+300`).
 *
 * JavaScript's `Number.prototype.toString` produces the same shortest digits (both pick
 * the candidate closest to the exact value), only laid out differently; this re-lays them.
 *
 * @throws `RangeError` for NaN and infinities, which Python's JSON encoder refuses too.
 */
export function formatPythonFloat(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`${value} has no JSON representation`);
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const sign = value < 0 ? "-" : "";
  const { digits, exponent } = shortestDigits(Math.abs(value));
  if (exponent < -4 || exponent >= 16) {
    const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    const magnitude = Math.abs(exponent);
    return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${magnitude < 10 ? "0" : ""}${magnitude}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const integerDigits = exponent + 1;
  if (digits.length <= integerDigits) return `${sign}${digits}${"0".repeat(integerDigits - digits.length)}.0`;
  return `${sign}${digits.slice(0, integerDigits)}.${digits.slice(integerDigits)}`;
}

/**
 * The shortest round-trip significant digits of a positive finite double (no leading or
 * trailing zeros) and the decimal exponent of the first one: value = d.ddd × 10^exponent.
 * Read off `String(value)`, whose forms are `123.45`, `0.00012`, `1.5e-7`, `1e+21` and
 * `123450000000000000000`.
 */
function shortestDigits(value: number): { digits: string; exponent: number } {
  const text = String(value);
  const e = text.indexOf("e");
  const mantissa = e < 0 ? text : text.slice(0, e);
  const shift = e < 0 ? 0 : Number(text.slice(e + 1));
  const point = mantissa.indexOf(".");
  const all = point < 0 ? mantissa : mantissa.slice(0, point) + mantissa.slice(point + 1);
  const integerLength = point < 0 ? mantissa.length : point;
  let first = 0;
  while (all.charCodeAt(first) === 0x30) first++;
  let end = all.length;
  while (end > first + 1 && all.charCodeAt(end - 1) === 0x30) end--;
  return { digits: all.slice(first, end), exponent: integerLength - first - 1 + shift };
}

/**
 * The path (object keys and array indices) of the first {@link JsonNumberToken} in `value`
 * in document order, or `undefined` when there is none: whether a value parsed losslessly
 * is canonical JSON as far as numbers go. Iterative, so any depth is safe.
 */
export function findJsonNumberToken(value: unknown): (string | number)[] | undefined {
  // Frames link to their parent, so a path is only built for the token found.
  interface Frame {
    readonly value: unknown;
    readonly parent: Frame | undefined;
    readonly key: string | number;
  }
  const stack: Frame[] = [{ value, parent: undefined, key: "" }];
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    const current = frame.value;
    if (typeof current !== "object" || current === null) continue;
    if (current instanceof JsonNumberToken) {
      const path: (string | number)[] = [];
      for (let at: Frame | undefined = frame; at?.parent !== undefined; at = at.parent) path.push(at.key);
      return path.reverse();
    }
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], parent: frame, key: i });
    } else {
      const keys = Object.keys(current);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        stack.push({ value: (current as Record<string, unknown>)[key], parent: frame, key });
      }
    }
  }
  return undefined;
}
