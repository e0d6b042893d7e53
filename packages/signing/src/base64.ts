/**
 * Unpadded Base64, as Matrix uses it (spec appendices, "Unpadded Base64" and
 * "URL-safe unpadded Base64").
 *
 * Encoding always omits `=` padding. Decoding is lenient in the ways the spec asks for
 * ("implementations SHOULD accept input with or without padding characters") and also
 * accepts the URL-safe alphabet, because some senders use it where standard Base64 is
 * specified (spec v1.19 example of a policy-server key). Anything else is refused: Node's
 * own decoder silently skips invalid characters. Non-zero trailing bits are accepted
 * (`Zh` decodes like `Zg`): the spec's own test seed, `…XA1`, has them, so a strict
 * decoder would refuse the official vectors. Compare decoded bytes, never Base64 text.
 *
 * @module
 */

/** Why {@link decodeBase64} refused its input. */
export type Base64DecodeFailure =
  /** A character outside both Base64 alphabets (or a `=` before the end). */
  | "invalid-character"
  /** The unpadded length leaves a single dangling character (length % 4 === 1). */
  | "invalid-length"
  /** Padding present but not the amount RFC 4648 requires. */
  | "invalid-padding";

/** Thrown by {@link decodeBase64} for text that is not Base64. */
export class Base64DecodeError extends Error {
  override readonly name = "Base64DecodeError";
  constructor(
    readonly reason: Base64DecodeFailure,
    /** Index in the input of the offending character (or the input length). */
    readonly position: number,
  ) {
    super(`invalid base64 (${reason}) at position ${position}`);
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes `bytes` as unpadded standard Base64 (`+`, `/`, no `=`). */
export function encodeBase64(bytes: Uint8Array): string {
  const padded = toBuffer(bytes).toString("base64");
  // At most two '=' at the end; slicing is cheaper than a regex replace.
  if (padded.charCodeAt(padded.length - 1) !== 0x3d) return padded;
  return padded.charCodeAt(padded.length - 2) === 0x3d ? padded.slice(0, -2) : padded.slice(0, -1);
}

/** Encodes `bytes` as unpadded URL-safe Base64 (`-`, `_`, no `=`), as v4+ event IDs use. */
export function encodeBase64Url(bytes: Uint8Array): string {
  // Node's "base64url" encoding is RFC 4648 §5 without padding.
  return toBuffer(bytes).toString("base64url");
}

// Lookup table: 1 for a character of either alphabet, 0 otherwise.
const VALID = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_") {
  VALID[c.charCodeAt(0)] = 1;
}

/**
 * Decodes standard or URL-safe Base64, padded or unpadded.
 *
 * @throws {@link Base64DecodeError} for characters outside both alphabets, an impossible
 *   length, or wrong padding.
 */
export function decodeBase64(text: string): Uint8Array {
  let end = text.length;
  // Strip padding: at most two '=' and only at the very end.
  let padding = 0;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d && padding < 2) {
    end--;
    padding++;
  }
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || VALID[c] === 0) throw new Base64DecodeError("invalid-character", i);
  }
  const rem = end % 4;
  if (rem === 1) throw new Base64DecodeError("invalid-length", end);
  if (padding > 0 && (rem === 0 || 4 - rem !== padding)) {
    throw new Base64DecodeError("invalid-padding", end);
  }
  // Node's decoder accepts both alphabets and missing padding once the input is valid.
  const decoded = Buffer.from(end === text.length ? text : text.slice(0, end), "base64");
  return new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
}
