/**
 * Authenticating an incoming request from its X-Matrix `Authorization` header(s)
 * (server-server API § "Request Authentication").
 *
 * @module
 */

import type { KeyLookup, VerifyKey, XMatrixAuthorization } from "@myelin/signing";
import { XMatrixHeaderError, parseXMatrixHeader, verifyRequest } from "@myelin/signing";
import type { JsonValue } from "@myelin/types";
import { isValidServerName } from "@myelin/types";

/**
 * Where the router gets other servers' public keys. The application's key ring implements
 * it (fetching directly or through notaries, caching, capping `valid_until_ts` at 7 days);
 * this package only consumes it, so that the client and the server never import each other.
 */
export interface KeyResolver {
  /**
   * The keys of `serverName` among `keyIds` that the resolver knows, valid until at least
   * `minimumValidUntilTs` when it can find such keys. A key absent from the map is unknown.
   * Set `validUntilTs` (and `expiredTs` for a key from `old_verify_keys`) on each key: the
   * router refuses keys that are expired, or old keys, for requests.
   *
   * Rejects when the keys cannot be fetched (the router answers 401 and logs the cause).
   */
  getServerKeys(
    serverName: string,
    keyIds: readonly string[],
    minimumValidUntilTs?: number,
  ): Promise<ReadonlyMap<string, VerifyKey>>;
}

/** Why a request was not authenticated; each becomes a 401 `M_UNAUTHORIZED` whose message names it. */
export type AuthFailure =
  | { readonly code: "missing-header" }
  | { readonly code: "malformed-header"; readonly detail: string }
  | { readonly code: "conflicting-headers"; readonly detail: string }
  | { readonly code: "invalid-origin"; readonly origin: string }
  | { readonly code: "wrong-destination"; readonly destination: string }
  | { readonly code: "unsupported-algorithm"; readonly keyId: string }
  | { readonly code: "key-fetch-failed"; readonly origin: string; readonly cause: unknown }
  | { readonly code: "non-canonical-json"; readonly detail: string }
  | {
      readonly code: "unknown-key" | "key-expired" | "malformed-signature" | "bad-signature";
      readonly origin: string;
      readonly keyId: string;
    };

/** The outcome of {@link authenticateRequest}. */
export type AuthResult =
  | { readonly ok: true; readonly origin: string; readonly keyIds: readonly string[] }
  | { readonly ok: false; readonly failure: AuthFailure };

/** Input to {@link authenticateRequest}. */
export interface AuthenticateRequestOptions {
  /** Every `Authorization` header value received, in order. */
  readonly authorization: readonly string[];
  readonly method: string;
  /** The raw request target as received. */
  readonly uri: string;
  /** Our server name. */
  readonly serverName: string;
  /**
   * The parsed body, when the request had one. It may hold `JsonNumberToken`s (lossless
   * parse); they are encoded as Synapse's `canonicaljson` writes them.
   */
  readonly content?: JsonValue;
  readonly keyResolver: KeyResolver;
  /** The current time in ms (key validity). */
  readonly now: number;
}

const X_MATRIX = /^[ \t]*x-matrix[ \t]/i;

/**
 * Checks the X-Matrix authorization of a request. Expected failures are values.
 *
 * Several `Authorization` headers: the spec defines one header per signature (its sample
 * code builds one per key) but says nothing about receiving several. We read each
 * X-Matrix header as one more signature of the same signed request JSON and apply the
 * appendix's "Checking for a Signature" to all of them: they must name one origin and
 * (when they name one) one destination, headers under algorithms we do not implement
 * are ignored, at least one must remain, and every remaining one must be made with a
 * known, current key and verify. Headers with other schemes are ignored.
 */
export async function authenticateRequest(options: AuthenticateRequestOptions): Promise<AuthResult> {
  const headers = options.authorization.filter((value) => X_MATRIX.test(value));
  if (headers.length === 0) return fail({ code: "missing-header" });

  const parsed: XMatrixAuthorization[] = [];
  for (const header of headers) {
    try {
      parsed.push(parseXMatrixHeader(header));
    } catch (error) {
      if (!(error instanceof XMatrixHeaderError)) throw error;
      return fail({ code: "malformed-header", detail: error.message });
    }
  }
  const first = parsed[0] as XMatrixAuthorization;
  const origin = first.origin;
  for (const auth of parsed) {
    if (auth.origin !== origin) {
      return fail({ code: "conflicting-headers", detail: `origins ${origin} and ${auth.origin}` });
    }
    // Spec: a destination that is not ours must be refused with 401 (v1.3); an absent one
    // is accepted from older servers and the signature is then checked against our name.
    if (auth.destination !== undefined && auth.destination !== options.serverName) {
      return fail({ code: "wrong-destination", destination: auth.destination });
    }
  }
  if (!isValidServerName(origin)) return fail({ code: "invalid-origin", origin });

  const indexes = parsed.flatMap((auth, i) => (auth.key.startsWith("ed25519:") ? [i] : []));
  if (indexes.length === 0) return fail({ code: "unsupported-algorithm", keyId: first.key });
  const keyIds = [...new Set(indexes.map((i) => (parsed[i] as XMatrixAuthorization).key))];

  let keys: ReadonlyMap<string, VerifyKey>;
  try {
    keys = await options.keyResolver.getServerKeys(origin, keyIds, options.now);
  } catch (cause) {
    return fail({ code: "key-fetch-failed", origin, cause });
  }

  for (const i of indexes) {
    const verification = await verifyRequest({
      header: headers[i] as string,
      method: options.method,
      uri: options.uri,
      destination: options.serverName,
      ...(options.content === undefined ? {} : { content: options.content }),
      lookupKey: (_server, keyId) => keys.get(keyId),
      now: options.now,
      // The body was parsed losslessly: its floats and big integers (room 1-5 events) are
      // checked in Synapse's notation, which is what Synapse signs. Canonical bodies are
      // encoded identically either way.
      compat: "synapse",
    });
    if (verification.valid) continue;
    const reason = verification.reason;
    switch (reason.code) {
      case "malformed-header":
        return fail({ code: "malformed-header", detail: reason.detail });
      case "wrong-destination":
        return fail({ code: "wrong-destination", destination: reason.destination });
      case "non-canonical-json":
        return fail({ code: "non-canonical-json", detail: reason.detail });
      case "unsupported-algorithm":
        return fail({ code: "unsupported-algorithm", keyId: reason.keyId });
      default:
        return fail({ code: reason.code, origin: reason.origin, keyId: reason.keyId });
    }
  }
  return { ok: true, origin, keyIds };
}

function fail(failure: AuthFailure): AuthResult {
  return { ok: false, failure };
}

/** The message of the 401 answer for a failure: says what is wrong, never internal details. */
export function describeAuthFailure(failure: AuthFailure): string {
  switch (failure.code) {
    case "missing-header":
      return "Missing X-Matrix Authorization header";
    case "malformed-header":
      return `Malformed X-Matrix Authorization header: ${failure.detail}`;
    case "conflicting-headers":
      return `X-Matrix Authorization headers disagree: ${failure.detail}`;
    case "invalid-origin":
      return `X-Matrix origin ${JSON.stringify(failure.origin)} is not a valid server name`;
    case "wrong-destination":
      return `X-Matrix destination ${JSON.stringify(failure.destination)} is not this server`;
    case "unsupported-algorithm":
      return `Unsupported signing algorithm in key ID ${JSON.stringify(failure.keyId)}`;
    case "key-fetch-failed":
      return `Could not fetch the signing keys of ${failure.origin}`;
    case "non-canonical-json":
      return `Request body cannot be encoded as canonical JSON: ${failure.detail}`;
    case "unknown-key":
      return `Unknown key ${failure.keyId} for ${failure.origin}`;
    case "key-expired":
      return `Key ${failure.keyId} of ${failure.origin} is expired or no longer valid for requests`;
    case "malformed-signature":
      return `Malformed signature from ${failure.origin} (${failure.keyId})`;
    case "bad-signature":
      return `Invalid signature from ${failure.origin} (${failure.keyId})`;
  }
}

/**
 * A {@link KeyResolver} over a `KeyLookup` function (a fixed table of keys, or a key ring
 * that answers one key at a time). `minimumValidUntilTs` is left to the router's check.
 */
export function keyResolverFromLookup(lookup: KeyLookup): KeyResolver {
  return {
    async getServerKeys(serverName, keyIds) {
      const keys = new Map<string, VerifyKey>();
      for (const keyId of keyIds) {
        const key = await lookup(serverName, keyId);
        if (key !== undefined) keys.set(keyId, key);
      }
      return keys;
    },
  };
}
