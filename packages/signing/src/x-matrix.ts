/**
 * X-Matrix request authentication (spec server-server "Request Authentication").
 *
 * The sender signs `{ method, uri, origin, destination, content? }` with the JSON signing
 * algorithm and sends `Authorization: X-Matrix origin="…",destination="…",key="…",sig="…"`.
 * `uri` is the request target exactly as sent (path and query, still percent-encoded);
 * `content` is the parsed JSON body, present whenever the request has a body.
 *
 * Parsing follows RFC 9110 §11.4 auth-params as the spec asks: one or more spaces after
 * the scheme, parameters in any order with case-insensitive names, optional whitespace
 * around `,` and `=`, values quoted (with `\` escapes) or bare; bare values may contain
 * `:` (the spec asks receivers to accept that from older servers). Unknown parameters are
 * ignored; a repeated known parameter is refused so that no two readers of one header can
 * disagree about its meaning. The signature parameter is `sig`: the spec's parameter list
 * says `signature`, but its own example and every implementation use `sig`.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "@myelin/types";
import { decodeBase64 } from "./base64.js";
import { CanonicalJsonError } from "./canonical-json.js";
import { getEd25519Backend } from "./ed25519.js";
import type { KeyLookup } from "./json-signing.js";
import { computeJsonSignature, signedBytes } from "./json-signing.js";
import type { SigningKey } from "./keys.js";

/** The parameters of an X-Matrix `Authorization` header. */
export interface XMatrixAuthorization {
  /** The sending server's name. */
  readonly origin: string;
  /** The receiving server's name; optional when parsing (servers before spec v1.3 omit it). */
  readonly destination?: string;
  /** The key ID, e.g. `ed25519:a_AbCd`. */
  readonly key: string;
  /** Unpadded Base64 signature. */
  readonly sig: string;
}

/** Why an X-Matrix header was refused. */
export type XMatrixHeaderFailure =
  /** The scheme is not `X-Matrix` (or nothing follows it). */
  | "not-x-matrix"
  /** The parameter list does not follow the auth-param grammar. */
  | "malformed"
  /** `origin`, `destination`, `key` or `sig` appears twice. */
  | "duplicate-parameter"
  /** `origin`, `key` or `sig` is absent or empty. */
  | "missing-parameter"
  /** Formatting: a value contains a control character. */
  | "invalid-value";

/** Thrown by {@link parseXMatrixHeader} and {@link formatXMatrixHeader}. */
export class XMatrixHeaderError extends Error {
  override readonly name = "XMatrixHeaderError";
  constructor(
    readonly reason: XMatrixHeaderFailure,
    /** The parameter concerned, if one. */
    readonly parameter?: string,
    /** Index in the header value where parsing stopped, if relevant. */
    readonly position?: number,
  ) {
    super(
      `invalid X-Matrix authorization (${reason})` +
        (parameter === undefined ? "" : ` for ${parameter}`) +
        (position === undefined ? "" : ` at position ${position}`),
    );
  }
}

const SCHEME = "x-matrix";
const KNOWN = new Set(["origin", "destination", "key", "sig"]);

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

// RFC 9110 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~"
function isTokenChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    (c < 0x7f && "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)))
  );
}

/**
 * Parses an `Authorization: X-Matrix …` header value.
 *
 * @throws {@link XMatrixHeaderError} with the reason.
 */
export function parseXMatrixHeader(header: string): XMatrixAuthorization {
  const n = header.length;
  let i = 0;
  while (i < n && isWhitespace(header.charCodeAt(i))) i++;
  if (header.slice(i, i + SCHEME.length).toLowerCase() !== SCHEME) throw new XMatrixHeaderError("not-x-matrix");
  i += SCHEME.length;
  if (i >= n || !isWhitespace(header.charCodeAt(i))) throw new XMatrixHeaderError("not-x-matrix");

  const params = new Map<string, string>();
  for (;;) {
    // Skip whitespace and empty list elements (RFC 9110 §5.6.1 lets recipients ignore them).
    while (i < n && (isWhitespace(header.charCodeAt(i)) || header.charCodeAt(i) === 0x2c)) i++;
    if (i >= n) break;

    const nameStart = i;
    while (i < n && isTokenChar(header.charCodeAt(i))) i++;
    if (i === nameStart) throw new XMatrixHeaderError("malformed", undefined, i);
    const name = header.slice(nameStart, i).toLowerCase();
    while (i < n && isWhitespace(header.charCodeAt(i))) i++;
    if (header.charCodeAt(i) !== 0x3d) throw new XMatrixHeaderError("malformed", name, i);
    i++;
    while (i < n && isWhitespace(header.charCodeAt(i))) i++;

    let value = "";
    if (header.charCodeAt(i) === 0x22) {
      i++;
      let chunk = i;
      for (;;) {
        if (i >= n) throw new XMatrixHeaderError("malformed", name, i);
        const c = header.charCodeAt(i);
        if (c === 0x22) break;
        if (c === 0x5c) {
          if (i + 1 >= n) throw new XMatrixHeaderError("malformed", name, i);
          value += header.slice(chunk, i) + header.charAt(i + 1);
          i += 2;
          chunk = i;
        } else {
          i++;
        }
      }
      value += header.slice(chunk, i);
      i++; // closing quote
    } else {
      // A bare value: a token, leniently extended to anything up to ',' or whitespace
      // (older servers send unquoted server names with ':' ports and Base64 with '/', '+').
      const start = i;
      while (i < n) {
        const c = header.charCodeAt(i);
        if (c === 0x2c || isWhitespace(c) || c === 0x22) break;
        i++;
      }
      value = header.slice(start, i);
    }

    while (i < n && isWhitespace(header.charCodeAt(i))) i++;
    if (i < n && header.charCodeAt(i) !== 0x2c) throw new XMatrixHeaderError("malformed", name, i);

    if (KNOWN.has(name)) {
      if (params.has(name)) throw new XMatrixHeaderError("duplicate-parameter", name);
      params.set(name, value);
    }
  }

  const origin = params.get("origin");
  const key = params.get("key");
  const sig = params.get("sig");
  if (origin === undefined || origin === "") throw new XMatrixHeaderError("missing-parameter", "origin");
  if (key === undefined || key === "") throw new XMatrixHeaderError("missing-parameter", "key");
  if (sig === undefined || sig === "") throw new XMatrixHeaderError("missing-parameter", "sig");
  const destination = params.get("destination");
  return destination === undefined ? { origin, key, sig } : { origin, destination, key, sig };
}

function quote(name: string, value: string): string {
  // Refuse CR, LF and other controls: they would end or corrupt the header.
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new XMatrixHeaderError("invalid-value", name);
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * Formats an `Authorization` header value the way the spec recommends senders write it:
 * one space after `X-Matrix`, lower-case names, every value quoted, no whitespace around
 * commas. `destination` is required here (senders MUST send it since spec v1.3).
 *
 * @throws {@link XMatrixHeaderError} (`invalid-value`) for control characters in a value.
 */
export function formatXMatrixHeader(authorization: XMatrixAuthorization & { readonly destination: string }): string {
  const { origin, destination, key, sig } = authorization;
  return (
    `X-Matrix origin=${quote("origin", origin)},destination=${quote("destination", destination)},` +
    `key=${quote("key", key)},sig=${quote("sig", sig)}`
  );
}

/** What a request signature covers. */
export interface SignedRequest {
  /** HTTP method as sent, e.g. `"PUT"`. */
  readonly method: string;
  /** The request target as sent: path and query, percent-encoded, without scheme or host. */
  readonly uri: string;
  /** The sending server's name (before any delegation). */
  readonly origin: string;
  /** The receiving server's name (before any delegation). */
  readonly destination: string;
  /** The parsed JSON body, when the request has one (include `{}` bodies). */
  readonly content?: JsonValue;
}

function requestJson(request: SignedRequest): JsonObject {
  const json: JsonObject = {
    method: request.method,
    uri: request.uri,
    origin: request.origin,
    destination: request.destination,
  };
  if (request.content !== undefined) json["content"] = request.content;
  return json;
}

/**
 * Signs a federation request and returns the `Authorization` header value. With
 * `compat: "synapse"`, `JsonNumberToken`s in `content` are signed in Synapse's notation
 * (send the body text encoded the same way).
 *
 * @throws `CanonicalJsonError` when `content` is not valid canonical JSON.
 */
export function signRequest(request: SignedRequest & { readonly key: SigningKey; readonly compat?: "synapse" }): string {
  const sig = computeJsonSignature(
    requestJson(request),
    request.key,
    request.compat === undefined ? undefined : { compat: request.compat },
  );
  return formatXMatrixHeader({ origin: request.origin, destination: request.destination, key: request.key.keyId, sig });
}

/** Why a request's authentication was refused; `code` is the tag. */
export type RequestRejection =
  | { readonly code: "malformed-header"; readonly failure: XMatrixHeaderFailure; readonly detail: string }
  /** The header names another server as destination (the spec requires 401). */
  | { readonly code: "wrong-destination"; readonly destination: string }
  /** The body cannot be encoded as canonical JSON (in the `compat` notation, when given). */
  | { readonly code: "non-canonical-json"; readonly detail: string }
  | {
      readonly code: "unsupported-algorithm" | "unknown-key" | "key-expired" | "malformed-signature" | "bad-signature";
      readonly origin: string;
      readonly keyId: string;
    };

/** The outcome of {@link verifyRequest}. */
export type RequestVerification =
  | { readonly valid: true; readonly origin: string; readonly keyId: string }
  | { readonly valid: false; readonly reason: RequestRejection };

/** Input to {@link verifyRequest}. */
export interface VerifyRequestOptions {
  /** The `Authorization` header value. */
  readonly header: string;
  /** The HTTP method as received. */
  readonly method: string;
  /** The raw request target as received (never a decoded or re-encoded path). */
  readonly uri: string;
  /** Our own server name. */
  readonly destination: string;
  /** The parsed JSON body, if the request had one. */
  readonly content?: JsonValue;
  /** Finds the origin's key. Only current keys may sign requests: a key with `expiredTs` is refused. */
  readonly lookupKey: KeyLookup;
  /** The time (ms) at which `validUntilTs` must still hold. Default: `Date.now()`. */
  readonly now?: number;
  /**
   * `"synapse"`: `content` was parsed losslessly and its `JsonNumberToken`s are encoded as
   * Synapse's `canonicaljson` writes them, which is what Synapse signs: a transaction
   * carrying a room 1-5 event with a float then authenticates (hostile-federation T14).
   * Default: canonical JSON only (a token makes the check fail with `non-canonical-json`).
   */
  readonly compat?: "synapse";
}

/**
 * Checks an X-Matrix `Authorization` header against the request it came with. Expected
 * failures are values (all deserve 401 `M_UNAUTHORIZED`); throws only when `lookupKey` does.
 */
export async function verifyRequest(options: VerifyRequestOptions): Promise<RequestVerification> {
  let auth: XMatrixAuthorization;
  try {
    auth = parseXMatrixHeader(options.header);
  } catch (error) {
    if (!(error instanceof XMatrixHeaderError)) throw error;
    return { valid: false, reason: { code: "malformed-header", failure: error.reason, detail: error.message } };
  }
  const { origin, key: keyId } = auth;
  if (auth.destination !== undefined && auth.destination !== options.destination) {
    return { valid: false, reason: { code: "wrong-destination", destination: auth.destination } };
  }
  const fail = (code: "unsupported-algorithm" | "unknown-key" | "key-expired" | "malformed-signature" | "bad-signature"): RequestVerification => ({
    valid: false,
    reason: { code, origin, keyId },
  });
  if (!keyId.startsWith("ed25519:")) return fail("unsupported-algorithm");
  const key = await options.lookupKey(origin, keyId);
  if (key === undefined) return fail("unknown-key");
  // old_verify_keys sign events only, never requests (spec "Publishing Keys").
  if (key.expiredTs !== undefined) return fail("key-expired");
  if (key.validUntilTs !== undefined && key.validUntilTs < (options.now ?? Date.now())) return fail("key-expired");
  let signature: Uint8Array;
  try {
    signature = decodeBase64(auth.sig);
  } catch {
    return fail("malformed-signature");
  }
  let message: Uint8Array;
  try {
    message = signedBytes(
      requestJson(
        options.content === undefined
          ? { method: options.method, uri: options.uri, origin, destination: options.destination }
          : { method: options.method, uri: options.uri, origin, destination: options.destination, content: options.content },
      ),
      options.compat === undefined ? undefined : { compat: options.compat },
    );
  } catch (error) {
    if (error instanceof CanonicalJsonError) {
      return { valid: false, reason: { code: "non-canonical-json", detail: error.message } };
    }
    throw error;
  }
  if (!getEd25519Backend().verify(message, signature, key.publicKey)) return fail("bad-signature");
  return { valid: true, origin, keyId };
}
