/**
 * The notary: `GET /_matrix/key/v2/query/{serverName}` and `POST /_matrix/key/v2/query`
 * (server-server API § "Querying Keys Through Another Server").
 *
 * @module
 */

import type { SigningKey, VerifyKey } from "@myelin/signing";
import { decodeBase64, signJson, verifySignedJson } from "@myelin/signing";
import type { ENDPOINTS_BY_NAME, JsonObject } from "@myelin/types";
import { MatrixError, isValidServerName } from "@myelin/types";
import type { FederationHandler } from "./handler.js";
import type { ServerKeys, ServerKeysPublisher } from "./server-keys.js";

/**
 * Fetches a server's key responses for the notary, normally with
 * `GET /_matrix/key/v2/server` on that server (the application wires its client in).
 */
export interface NotaryFetcher {
  /**
   * The server's key responses as received (self-signed server keys objects), ideally
   * valid until at least `minimumValidUntilTs`. Rejects when the server cannot be reached.
   */
  fetchServerKeys(serverName: string, minimumValidUntilTs: number): Promise<readonly JsonObject[]>;
}

/** Where the notary reports fetch failures and refused responses. */
export interface NotaryLogger {
  warn(message: string, context: Readonly<Record<string, unknown>>): void;
}

/** Options of {@link createNotaryHandlers}. */
export interface NotaryOptions {
  /** Our server name: the notary signature is filed under it. */
  readonly serverName: string;
  /** Our current signing keys; each adds a signature to every relayed response. */
  readonly signingKeys: readonly SigningKey[];
  readonly fetcher: NotaryFetcher;
  /** Our own key server: queries about our own name are answered from it, without fetching. */
  readonly ownKeys?: ServerKeysPublisher;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  readonly logger?: NotaryLogger;
  /** Servers cached at most; the least recently fetched go first. Default 10000. */
  readonly maxCachedServers?: number;
  /** Fetches run at once for one batch query. Default 8. */
  readonly maxConcurrentFetches?: number;
  /**
   * A server whose cached response is within half its lifetime is asked again for a later
   * `minimum_valid_until_ts` or a missing key ID at most this often (ms). Default one minute:
   * a server that publishes short-lived keys must not be fetched on every query.
   */
  readonly minRefetchIntervalMs?: number;
}

type GetRemoteServerKeys = typeof ENDPOINTS_BY_NAME.get_remote_server_keys.v2;
type GetRemoteServerKeysBatch = typeof ENDPOINTS_BY_NAME.get_remote_server_keys_batch.v2;

/** The notary's handlers, ready to spread into the router's `handlers`. */
export interface NotaryHandlers {
  readonly get_remote_server_keys: { readonly v2: FederationHandler<GetRemoteServerKeys> };
  readonly get_remote_server_keys_batch: { readonly v2: FederationHandler<GetRemoteServerKeysBatch> };
}

interface CacheEntry {
  /** When the responses were fetched. */
  readonly fetchedAt: number;
  /** The latest `valid_until_ts` among them. */
  readonly validUntilTs: number;
  /** Every key ID they publish (current and old). */
  readonly keyIds: ReadonlySet<string>;
  /** The responses with our signature added. */
  readonly responses: readonly ServerKeys[];
}

/**
 * Builds the notary handlers. Each relayed response keeps the origin's signature and gets
 * ours. Caching follows the key server API's rules: a response is served from the cache
 * for half of its lifetime (from fetching to `valid_until_ts`) as long as it is valid
 * until the requested `minimum_valid_until_ts` (now when absent) and lists the requested
 * key IDs; otherwise the server is asked again, and when it cannot answer the last
 * response received is served anyway, "so that the signatures of old events can still be
 * checked". A server without any response is answered with an empty `server_keys`.
 *
 * Responses from the fetcher are checked before they are signed: the `server_name` must
 * be the one asked for and the object must carry a valid signature by one of its own
 * `verify_keys`. The notary vouches for what it relays, so it never signs anything else.
 */
export function createNotaryHandlers(options: NotaryOptions): NotaryHandlers {
  const now = options.now ?? Date.now;
  const maxCached = options.maxCachedServers ?? 10_000;
  const maxConcurrent = options.maxConcurrentFetches ?? 8;
  const minRefetchInterval = options.minRefetchIntervalMs ?? 60_000;
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<CacheEntry | undefined>>();

  const remember = (serverName: string, entry: CacheEntry): void => {
    cache.delete(serverName);
    cache.set(serverName, entry);
    while (cache.size > maxCached) {
      const oldest = cache.keys().next();
      if (oldest.done === true) break;
      cache.delete(oldest.value);
    }
  };

  const fetchEntry = (serverName: string, minimumValidUntilTs: number): Promise<CacheEntry | undefined> => {
    const pending = inFlight.get(serverName);
    if (pending !== undefined) return pending;
    const promise = (async (): Promise<CacheEntry | undefined> => {
      let fetched: readonly JsonObject[];
      try {
        fetched = await options.fetcher.fetchServerKeys(serverName, minimumValidUntilTs);
      } catch (error) {
        options.logger?.warn("notary: could not fetch a server's keys", { serverName, error });
        return undefined;
      }
      const fetchedAt = now();
      const accepted: ServerKeys[] = [];
      for (const response of fetched) {
        const problem = await checkKeyResponse(response, serverName);
        if (problem !== undefined) {
          options.logger?.warn("notary: refused a key response", { serverName, problem });
          continue;
        }
        let signed = response as ServerKeys;
        for (const key of options.signingKeys) signed = signJson(signed, options.serverName, key);
        accepted.push(signed);
      }
      if (accepted.length === 0) return undefined;
      const entry: CacheEntry = {
        fetchedAt,
        validUntilTs: Math.max(...accepted.map((r) => r.valid_until_ts)),
        keyIds: new Set(accepted.flatMap((r) => [...Object.keys(r.verify_keys), ...Object.keys(r.old_verify_keys ?? {})])),
        responses: accepted,
      };
      remember(serverName, entry);
      return entry;
    })().finally(() => inFlight.delete(serverName));
    inFlight.set(serverName, promise);
    return promise;
  };

  const keysFor = async (serverName: string, minimumValidUntilTs: number, keyIds: readonly string[]): Promise<readonly ServerKeys[]> => {
    if (serverName === options.serverName && options.ownKeys !== undefined) return [options.ownKeys.current()];
    const cached = cache.get(serverName);
    if (cached !== undefined) {
      const time = now();
      const fresh = time < cached.fetchedAt + (cached.validUntilTs - cached.fetchedAt) / 2;
      const satisfies = cached.validUntilTs >= minimumValidUntilTs && keyIds.every((id) => cached.keyIds.has(id));
      if (fresh && (satisfies || time < cached.fetchedAt + minRefetchInterval)) return cached.responses;
    }
    const fetched = await fetchEntry(serverName, minimumValidUntilTs);
    return (fetched ?? cache.get(serverName))?.responses ?? [];
  };

  const single: FederationHandler<GetRemoteServerKeys> = async (request) => {
    const { serverName } = request.params;
    if (!isValidServerName(serverName)) {
      throw new MatrixError("M_INVALID_PARAM", `Invalid path parameter serverName: not a server name`);
    }
    const minimum = request.query.minimum_valid_until_ts;
    const minimumValidUntilTs = minimum === undefined ? now() : Number(minimum);
    return { server_keys: [...(await keysFor(serverName, minimumValidUntilTs, []))] };
  };

  const batch: FederationHandler<GetRemoteServerKeysBatch> = async (request) => {
    const queries = Object.entries(request.body.server_keys).filter(([serverName]) => isValidServerName(serverName));
    const time = now();
    const results = await mapWithConcurrency(queries, maxConcurrent, ([serverName, criteria]) => {
      const keyIds = Object.keys(criteria);
      // The spec gives each key ID its own minimum; one response answers them all, so ask
      // for the latest. A key ID without one means now.
      const minimumValidUntilTs = Math.max(time, ...keyIds.map((id) => criteria[id]?.minimum_valid_until_ts ?? time));
      return keysFor(serverName, minimumValidUntilTs, keyIds);
    });
    return { server_keys: results.flat() };
  };

  return {
    get_remote_server_keys: { v2: single },
    get_remote_server_keys_batch: { v2: batch },
  };
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Why a fetched key response is not relayed, or `undefined` when it is fine. */
async function checkKeyResponse(response: unknown, serverName: string): Promise<string | undefined> {
  if (!isObject(response)) return "not an object";
  if (response["server_name"] !== serverName) return "server_name is not the server asked for";
  if (!Number.isSafeInteger(response["valid_until_ts"])) return "valid_until_ts is not an integer";
  const verifyKeys = response["verify_keys"];
  if (!isObject(verifyKeys)) return "verify_keys is not an object";
  const oldVerifyKeys = response["old_verify_keys"];
  if (oldVerifyKeys !== undefined && !isObject(oldVerifyKeys)) return "old_verify_keys is not an object";
  const keys = new Map<string, VerifyKey>();
  for (const [keyId, entry] of Object.entries(verifyKeys)) {
    if (!isObject(entry) || typeof entry["key"] !== "string") return `verify_keys.${keyId} has no key`;
    try {
      const publicKey = decodeBase64(entry["key"]);
      if (publicKey.length === 32) keys.set(keyId, { publicKey });
    } catch {
      return `verify_keys.${keyId} is not Base64`;
    }
  }
  try {
    const check = await verifySignedJson(response, serverName, (_server, keyId) => keys.get(keyId));
    return check.valid ? undefined : `self-signature: ${check.reason}`;
  } catch (error) {
    return `self-signature: ${error instanceof Error ? error.message : String(error)}`;
  }
}

async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
