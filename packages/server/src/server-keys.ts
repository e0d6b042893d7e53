/**
 * The key server: `GET /_matrix/key/v2/server` (server-server API § "Publishing Keys").
 *
 * @module
 */

import type { SigningKey } from "@myelin/signing";
import { encodePublicKey, signJson } from "@myelin/signing";
import type { ENDPOINTS_BY_NAME, ResponseBody } from "@myelin/types";
import { isValidServerName } from "@myelin/types";
import type { FederationHandler } from "./handler.js";

/** A server keys object, as published by a server and relayed by notaries. */
export type ServerKeys = ResponseBody<typeof ENDPOINTS_BY_NAME.get_server_keys.v2>;

/** A retired key, as `old_verify_keys` lists it. */
export interface OldVerifyKey {
  /** Unpadded Base64 public key. */
  readonly key: string;
  /** When the key stopped being used, ms since the epoch. */
  readonly expired_ts: number;
}

/** Options of {@link createServerKeysPublisher}. */
export interface ServerKeysOptions {
  readonly serverName: string;
  /** The current signing keys: published in `verify_keys`, and each signs the response. */
  readonly signingKeys: readonly SigningKey[];
  /** Retired keys by key ID: still published so that old events can be checked. */
  readonly oldVerifyKeys?: Readonly<Record<string, OldVerifyKey>>;
  /**
   * How long a response stays valid (`valid_until_ts` = signing time + this). Default one
   * day, as Synapse's `key_refresh_interval`. At least two hours: responses are re-signed
   * at half their lifetime, and the spec asks origins not to serve responses expiring
   * within the hour.
   */
  readonly validityMs?: number;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
}

/** Our own published keys: the signed response and the handler that serves it. */
export interface ServerKeysPublisher {
  /** The signed server keys object, re-signed once half its lifetime has passed. */
  current(): ServerKeys;
  /** Handler for `get_server_keys.v2`. */
  readonly handler: FederationHandler<typeof ENDPOINTS_BY_NAME.get_server_keys.v2>;
}

/** Why {@link createServerKeysPublisher} refused its options. */
export type ServerKeysConfigFailure = "invalid-server-name" | "no-signing-keys" | "invalid-validity" | "duplicate-key-id";

/** Thrown by {@link createServerKeysPublisher} for unusable options. */
export class ServerKeysConfigError extends Error {
  override readonly name = "ServerKeysConfigError";
  constructor(
    readonly reason: ServerKeysConfigFailure,
    readonly subject: string,
  ) {
    super(`invalid server keys options (${reason}): ${subject}`);
  }
}

/** One day, Synapse's default `key_refresh_interval`. */
export const DEFAULT_KEY_VALIDITY_MS = 24 * 60 * 60 * 1000;
const MIN_KEY_VALIDITY_MS = 2 * 60 * 60 * 1000;

/**
 * Publishes our signing keys: `{ server_name, verify_keys, old_verify_keys,
 * valid_until_ts, signatures }`, signed by every current key. The response is cached and
 * signed again when half of its validity has passed, so a response is never served with
 * less than half its lifetime left and repeated requests cost no signing.
 *
 * @throws {@link ServerKeysConfigError}
 */
export function createServerKeysPublisher(options: ServerKeysOptions): ServerKeysPublisher {
  const { serverName, signingKeys } = options;
  if (!isValidServerName(serverName)) throw new ServerKeysConfigError("invalid-server-name", serverName);
  if (signingKeys.length === 0) throw new ServerKeysConfigError("no-signing-keys", serverName);
  const validityMs = options.validityMs ?? DEFAULT_KEY_VALIDITY_MS;
  if (!Number.isSafeInteger(validityMs) || validityMs < MIN_KEY_VALIDITY_MS) {
    throw new ServerKeysConfigError("invalid-validity", String(validityMs));
  }
  const now = options.now ?? Date.now;

  const verifyKeys: Record<string, { key: string }> = {};
  for (const key of signingKeys) {
    if (Object.hasOwn(verifyKeys, key.keyId)) throw new ServerKeysConfigError("duplicate-key-id", key.keyId);
    verifyKeys[key.keyId] = { key: encodePublicKey(key) };
  }
  const oldVerifyKeys: Record<string, { key: string; expired_ts: number }> = {};
  for (const [keyId, old] of Object.entries(options.oldVerifyKeys ?? {})) {
    if (Object.hasOwn(verifyKeys, keyId)) throw new ServerKeysConfigError("duplicate-key-id", keyId);
    oldVerifyKeys[keyId] = { key: old.key, expired_ts: old.expired_ts };
  }

  let cached: { readonly response: ServerKeys; readonly refreshAt: number } | undefined;
  const current = (): ServerKeys => {
    const time = now();
    if (cached === undefined || time >= cached.refreshAt) {
      let response: ServerKeys = {
        server_name: serverName,
        verify_keys: verifyKeys,
        old_verify_keys: oldVerifyKeys,
        valid_until_ts: time + validityMs,
        signatures: {},
      };
      for (const key of signingKeys) response = signJson(response, serverName, key);
      cached = { response, refreshAt: time + Math.floor(validityMs / 2) };
    }
    return cached.response;
  };
  return { current, handler: () => current() };
}
