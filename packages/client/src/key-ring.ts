/**
 * The key ring: other servers' signing keys, fetched, verified and cached (server-server
 * API § "Retrieving server keys"; federation checklist §3.4).
 *
 * Keys come from the origin first (`GET /_matrix/key/v2/server`), then from each
 * configured notary in turn (`POST /_matrix/key/v2/query`). A response counts only if its
 * `server_name` is the server asked about and it is self-signed by its own `verify_keys`;
 * a notary's answer must in addition carry the notary's signature under a key configured
 * in advance. Keys are cached until their validity ends, and `old_verify_keys` are kept
 * with their `expired_ts` (they verify events only, never requests).
 *
 * Validity: a key's `validUntilTs` is `min(valid_until_ts, fetched + 7 days)`, the rule
 * rooms v5+ impose ("the lesser of valid_until_ts and 7 days into the future"), measured
 * from when we fetched it. `@myelin/signing` ignores it for rooms v1-v4.
 *
 * @module
 */

import type { KeyLookup, VerifyKey } from "@myelin/signing";
import { decodeBase64, verifySignedJson } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import type { FederationClient } from "./client.js";

/** A notary trusted in advance. */
export interface NotaryConfig {
  readonly serverName: string;
  /** The notary's own keys: key ID to unpadded Base64 (or the raw 32 bytes). */
  readonly verifyKeys: Readonly<Record<string, string | Uint8Array>>;
}

/** Settings of a {@link KeyRing}. */
export interface KeyRingOptions {
  /** The client key requests go through (its discovery, TLS and address policy apply). */
  readonly client: Pick<FederationClient, "call">;
  /** Notaries asked, in order, when the origin cannot give a suitable key. */
  readonly notaries?: readonly NotaryConfig[];
  /** The clock (ms since the epoch); default `Date.now`. */
  readonly now?: () => number;
  /** Keys known without fetching (our own, pinned ones): server name to key ID to key. */
  readonly staticKeys?: Readonly<Record<string, Readonly<Record<string, VerifyKey>>>>;
  /** After every source failed, no new fetch for this long; default 60 s. */
  readonly failureCacheMs?: number;
  /** Minimum time between two fetches for one server; default 30 s. */
  readonly minRefetchIntervalMs?: number;
  /** Cap on validity, measured from the fetch; default 7 days (rooms v5+). */
  readonly maxValidityMs?: number;
}

/** Why a source did not give a usable answer. */
export type KeyFetchFailure =
  /** The request failed (see `detail`: discovery, connection, TLS, HTTP, bad response). */
  | "request-failed"
  /** `server_name` is not the server asked about. */
  | "wrong-server-name"
  /** Not signed by the server's own `verify_keys`, or a signature does not verify. */
  | "bad-self-signature"
  /** A notary answer without a valid signature by a configured key of that notary. */
  | "bad-notary-signature"
  /** Keys that are not 32-byte Base64, a non-integer `valid_until_ts`, non-canonical JSON. */
  | "malformed"
  /** A notary had nothing for the server. */
  | "no-answer";

/** What one source contributed to a fetch. */
export interface KeyFetchAttempt {
  /** The server asked: the origin itself or a notary. */
  readonly source: string;
  readonly via: "origin" | "notary";
  /**
   * `stored`: verified and cached; `stale` also stored, but not valid until the required
   * time (expired, or short of `minimumValidUntilTs`), or without the wanted key.
   */
  readonly outcome: "stored" | "stale" | KeyFetchFailure;
  readonly detail: string;
}

/** The result of {@link KeyRing.fetchServerKeys}. */
export interface KeyFetchReport {
  readonly serverName: string;
  readonly attempts: readonly KeyFetchAttempt[];
  /** Whether a stored answer satisfied the request. */
  readonly satisfied: boolean;
}

/** Options of a key lookup. */
export interface GetVerifyKeyOptions {
  /**
   * The key must be valid at least until then (e.g. an event's `origin_server_ts`);
   * default now. A cached key that falls short is refetched (sent to notaries as
   * `minimum_valid_until_ts`).
   */
  readonly minimumValidUntilTs?: number;
}

interface StoredKey {
  readonly publicKey: Uint8Array;
  /** Effective validity (7-day cap applied), for current keys. */
  readonly validUntilTs?: number;
  /** For keys from `old_verify_keys`. */
  readonly expiredTs?: number;
  /** `valid_until_ts` of the response it came from: the newer response wins per key. */
  readonly responseValidUntilTs: number;
}

interface ServerState {
  readonly keys: Map<string, StoredKey>;
  lastFetchAt?: number;
  failedUntil?: number;
}

interface VerifiedResponse {
  readonly verifyKeys: Map<string, Uint8Array>;
  readonly oldKeys: Map<string, { publicKey: Uint8Array; expiredTs: number }>;
  readonly validUntilTs: number;
}

type Verification = { readonly ok: true; readonly value: VerifiedResponse } | { readonly ok: false; readonly reason: KeyFetchFailure; readonly detail: string };

const DAY = 86_400_000;
const ED25519 = "ed25519:";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodeKey(encoded: unknown): Uint8Array | undefined {
  if (encoded instanceof Uint8Array) return encoded.length === 32 ? encoded : undefined;
  if (typeof encoded !== "string") return undefined;
  try {
    const bytes = decodeBase64(encoded);
    return bytes.length === 32 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fetches, verifies and caches servers' signing keys. {@link KeyRing.lookupKey} is a
 * `KeyLookup` for `@myelin/signing`'s `verifyEvent` and `verifyRequest`, and the key
 * resolver the server's router takes.
 */
export class KeyRing {
  /** `(serverName, keyId) => Promise<VerifyKey | undefined>`, bound to this ring. */
  readonly lookupKey: KeyLookup;
  private readonly client: Pick<FederationClient, "call">;
  private readonly notaries: readonly { serverName: string; keys: Map<string, VerifyKey> }[];
  private readonly now: () => number;
  private readonly staticKeys: Map<string, Map<string, VerifyKey>>;
  private readonly failureCacheMs: number;
  private readonly minRefetchIntervalMs: number;
  private readonly maxValidityMs: number;
  private readonly servers = new Map<string, ServerState>();
  private readonly inFlight = new Map<string, Promise<KeyFetchReport>>();

  /** @throws `TypeError` when a configured notary key is not a 32-byte key. */
  constructor(options: KeyRingOptions) {
    this.client = options.client;
    this.now = options.now ?? Date.now;
    this.failureCacheMs = options.failureCacheMs ?? 60_000;
    this.minRefetchIntervalMs = options.minRefetchIntervalMs ?? 30_000;
    this.maxValidityMs = options.maxValidityMs ?? 7 * DAY;
    this.notaries = (options.notaries ?? []).map((notary) => {
      const keys = new Map<string, VerifyKey>();
      for (const [keyId, encoded] of Object.entries(notary.verifyKeys)) {
        const publicKey = decodeKey(encoded);
        if (publicKey === undefined) throw new TypeError(`notary ${notary.serverName} key ${keyId} is not a 32-byte key`);
        keys.set(keyId, { publicKey });
      }
      return { serverName: notary.serverName, keys };
    });
    this.staticKeys = new Map(
      Object.entries(options.staticKeys ?? {}).map(([server, keys]) => [server, new Map(Object.entries(keys))]),
    );
    this.lookupKey = (serverName, keyId) => this.getVerifyKey(serverName, keyId);
  }

  /**
   * A server's key by ID: from the cache when valid long enough, else fetched (origin,
   * then notaries). When no fresh key can be had, a cached one is still returned with its
   * validity, for the verifier to judge (old events may still check out); `undefined`
   * when the key is unknown.
   */
  async getVerifyKey(serverName: string, keyId: string, options: GetVerifyKeyOptions = {}): Promise<VerifyKey | undefined> {
    const pinned = this.staticKeys.get(serverName)?.get(keyId);
    if (pinned !== undefined) return pinned;
    const now = this.now();
    const required = options.minimumValidUntilTs ?? now;
    const known = this.servers.get(serverName)?.keys.get(keyId);
    if (known !== undefined && isSufficient(known, required)) return toVerifyKey(known);
    const pending = this.inFlight.get(serverName);
    if (pending !== undefined) await pending;
    else if (this.mayFetch(serverName, now)) await this.fetchServerKeys(serverName, { keyId, minimumValidUntilTs: required });
    const after = this.servers.get(serverName)?.keys.get(keyId);
    return after === undefined ? undefined : toVerifyKey(after);
  }

  /** Every key cached for a server (current and old), without fetching. */
  cachedKeys(serverName: string): ReadonlyMap<string, VerifyKey> {
    const state = this.servers.get(serverName);
    return new Map([...(state?.keys ?? [])].map(([id, key]) => [id, toVerifyKey(key)]));
  }

  /**
   * Fetches a server's keys now (concurrent calls for one server share one fetch), from
   * the origin and then the notaries until an answer is valid until `minimumValidUntilTs`
   * (default now) and, when `keyId` is given, contains it. Reports what each source did.
   */
  fetchServerKeys(serverName: string, options: { keyId?: string; minimumValidUntilTs?: number } = {}): Promise<KeyFetchReport> {
    const pending = this.inFlight.get(serverName);
    if (pending !== undefined) return pending;
    const promise = this.fetch(serverName, options.keyId, options.minimumValidUntilTs ?? this.now()).finally(() =>
      this.inFlight.delete(serverName),
    );
    this.inFlight.set(serverName, promise);
    return promise;
  }

  private mayFetch(serverName: string, now: number): boolean {
    const state = this.servers.get(serverName);
    if (state === undefined) return true;
    if (state.failedUntil !== undefined && now < state.failedUntil) return false;
    return state.lastFetchAt === undefined || now - state.lastFetchAt >= this.minRefetchIntervalMs;
  }

  private state(serverName: string): ServerState {
    let state = this.servers.get(serverName);
    if (state === undefined) {
      state = { keys: new Map() };
      this.servers.set(serverName, state);
    }
    return state;
  }

  private async fetch(serverName: string, keyId: string | undefined, required: number): Promise<KeyFetchReport> {
    const attempts: KeyFetchAttempt[] = [];
    const state = this.state(serverName);
    state.lastFetchAt = this.now();
    let stored = false;
    const done = (): boolean => {
      if (keyId === undefined) return [...state.keys.values()].some((k) => k.expiredTs === undefined && isSufficient(k, required));
      const key = state.keys.get(keyId);
      return key !== undefined && isSufficient(key, required);
    };
    const record = (source: string, via: "origin" | "notary", verification: Verification): void => {
      if (!verification.ok) {
        attempts.push({ source, via, outcome: verification.reason, detail: verification.detail });
        return;
      }
      this.store(state, verification.value);
      stored = true;
      // The outcome judges this answer alone; whether to ask further depends on the ring.
      const answer = verification.value;
      const hasKey = keyId === undefined || answer.verifyKeys.has(keyId) || answer.oldKeys.has(keyId);
      const fresh = Math.min(answer.validUntilTs, this.now() + this.maxValidityMs) >= required;
      attempts.push({
        source,
        via,
        outcome: hasKey && (fresh || (keyId !== undefined && answer.oldKeys.has(keyId))) ? "stored" : "stale",
        detail: !hasKey
          ? `no key ${keyId ?? ""}`
          : fresh
            ? `keys valid until ${new Date(answer.validUntilTs).toISOString()}`
            : `valid_until_ts ${answer.validUntilTs} is before the required ${required}`,
      });
    };

    // The origin first (spec § "Retrieving server keys").
    try {
      const response = await this.client.call("get_server_keys", "v2", serverName);
      record(serverName, "origin", await this.verifyResponse(response as JsonObject, serverName));
    } catch (error) {
      attempts.push({ source: serverName, via: "origin", outcome: "request-failed", detail: (error as Error).message });
    }

    for (const notary of this.notaries) {
      if (done()) break;
      if (notary.serverName === serverName) continue;
      try {
        const criteria = keyId === undefined ? {} : { [keyId]: { minimum_valid_until_ts: required } };
        const answer = await this.client.call("get_remote_server_keys_batch", "v2", notary.serverName, {
          body: { server_keys: { [serverName]: criteria } },
        });
        const entries = (answer.server_keys ?? []).filter((entry) => isObject(entry) && entry["server_name"] === serverName);
        if (entries.length === 0) {
          attempts.push({ source: notary.serverName, via: "notary", outcome: "no-answer", detail: `no keys for ${serverName}` });
          continue;
        }
        for (const entry of entries) {
          record(notary.serverName, "notary", await this.verifyNotarised(entry as JsonObject, serverName, notary));
        }
      } catch (error) {
        attempts.push({ source: notary.serverName, via: "notary", outcome: "request-failed", detail: (error as Error).message });
      }
    }

    // Negative caching: when nobody gave a verifiable answer, do not ask again for a while.
    if (!stored) state.failedUntil = this.now() + this.failureCacheMs;
    else delete state.failedUntil;
    return { serverName, attempts, satisfied: done() };
  }

  /** Checks a `/key/v2/server` object: right server, well-formed keys, self-signed. */
  private async verifyResponse(response: JsonObject, serverName: string): Promise<Verification> {
    if (response["server_name"] !== serverName) {
      return { ok: false, reason: "wrong-server-name", detail: `server_name is ${JSON.stringify(response["server_name"])}` };
    }
    const validUntilTs = response["valid_until_ts"];
    if (typeof validUntilTs !== "number" || !Number.isSafeInteger(validUntilTs)) {
      return { ok: false, reason: "malformed", detail: "valid_until_ts is not an integer" };
    }
    const verifyKeys = new Map<string, Uint8Array>();
    for (const [keyId, entry] of Object.entries(isObject(response["verify_keys"]) ? response["verify_keys"] : {})) {
      if (!keyId.startsWith(ED25519)) continue; // unknown algorithms are ignored
      const publicKey = decodeKey(isObject(entry) ? entry["key"] : undefined);
      if (publicKey === undefined) return { ok: false, reason: "malformed", detail: `verify key ${keyId} is not a 32-byte key` };
      verifyKeys.set(keyId, publicKey);
    }
    const oldKeys = new Map<string, { publicKey: Uint8Array; expiredTs: number }>();
    for (const [keyId, entry] of Object.entries(isObject(response["old_verify_keys"]) ? response["old_verify_keys"] : {})) {
      if (!keyId.startsWith(ED25519) || !isObject(entry)) continue;
      const publicKey = decodeKey(entry["key"]);
      const expiredTs = entry["expired_ts"];
      // A malformed old key is dropped alone: the current keys are still good.
      if (publicKey !== undefined && typeof expiredTs === "number" && Number.isSafeInteger(expiredTs)) {
        oldKeys.set(keyId, { publicKey, expiredTs });
      }
    }
    let check;
    try {
      check = await verifySignedJson(response, serverName, (server, keyId) => {
        const publicKey = server === serverName ? verifyKeys.get(keyId) : undefined;
        return publicKey === undefined ? undefined : { publicKey };
      });
    } catch (error) {
      return { ok: false, reason: "malformed", detail: `cannot check signatures: ${(error as Error).message}` };
    }
    if (!check.valid) {
      return { ok: false, reason: "bad-self-signature", detail: `self-signature check failed (${check.reason}${check.keyId === undefined ? "" : ` for ${check.keyId}`})` };
    }
    return { ok: true, value: { verifyKeys, oldKeys, validUntilTs } };
  }

  /** A notary's copy: the notary's signature with a configured key, then the origin's own checks. */
  private async verifyNotarised(
    entry: JsonObject,
    serverName: string,
    notary: { serverName: string; keys: Map<string, VerifyKey> },
  ): Promise<Verification> {
    let check;
    try {
      check = await verifySignedJson(entry, notary.serverName, (server, keyId) =>
        server === notary.serverName ? notary.keys.get(keyId) : undefined,
      );
    } catch (error) {
      return { ok: false, reason: "malformed", detail: `cannot check signatures: ${(error as Error).message}` };
    }
    if (!check.valid) {
      return { ok: false, reason: "bad-notary-signature", detail: `notary signature check failed (${check.reason})` };
    }
    return this.verifyResponse(entry, serverName);
  }

  private store(state: ServerState, response: VerifiedResponse): void {
    const effective = Math.min(response.validUntilTs, this.now() + this.maxValidityMs);
    const put = (keyId: string, key: StoredKey): void => {
      const existing = state.keys.get(keyId);
      // Per key, the answer valid the longest is the newest and wins (a notary's older
      // cached copy must not undo what the origin said).
      if (existing === undefined || existing.responseValidUntilTs <= key.responseValidUntilTs) state.keys.set(keyId, key);
    };
    for (const [keyId, { publicKey, expiredTs }] of response.oldKeys) {
      put(keyId, { publicKey, expiredTs, responseValidUntilTs: response.validUntilTs });
    }
    for (const [keyId, publicKey] of response.verifyKeys) {
      put(keyId, { publicKey, validUntilTs: effective, responseValidUntilTs: response.validUntilTs });
    }
  }
}

/** Whether a cached key needs no refetch: an old key (refetching cannot help) or valid long enough. */
function isSufficient(key: StoredKey, required: number): boolean {
  return key.expiredTs !== undefined || (key.validUntilTs !== undefined && key.validUntilTs >= required);
}

function toVerifyKey(key: StoredKey): VerifyKey {
  if (key.expiredTs !== undefined) return { publicKey: key.publicKey, expiredTs: key.expiredTs };
  return key.validUntilTs === undefined ? { publicKey: key.publicKey } : { publicKey: key.publicKey, validUntilTs: key.validUntilTs };
}
