/**
 * `/.well-known/matrix/server`: fetching it safely and caching the answer (server-server
 * API § "Resolving server names", step 3; hostile-federation T70).
 *
 * Where the spec leaves numbers open, this follows Synapse's `well_known_resolver.py`:
 * - the body is read up to 50 KiB (`WELL_KNOWN_MAX_SIZE`, CVE-2021-21274);
 * - a TTL from `Cache-Control: max-age` (or `Expires`) is clamped to 5 minutes - 48 hours,
 *   `no-store` means "do not cache", and no header means the spec's 24-hour default
 *   (Synapse adds random jitter to that; we do not, so behaviour is reproducible);
 * - a transient failure (no HTTP answer, or 5xx) shortly after a valid answer keeps using
 *   that answer and retries after 2 minutes (`WELL_KNOWN_DOWN_CACHE_PERIOD`).
 * Errors are cached with exponential backoff, 5 minutes doubling up to the spec's one hour
 * (Synapse caches every error for one hour flat; the spec encourages backing off).
 * Redirects: Synapse follows them with Twisted's `RedirectAgent` (20 at most); we follow
 * at most 10, only to `https:` URLs, and stop at the first URL seen twice (a loop).
 *
 * @module
 */

import { parseServerName } from "@myelin/types";
import { FederationRequestError } from "./errors.js";
import type { HttpsTransport } from "./https-transport.js";

/** The well-known path (server-server API § "Resolving server names"). */
export const WELL_KNOWN_PATH = "/.well-known/matrix/server";

/** Why a `.well-known` fetch did not yield a delegation; all of them mean "go to step 4". */
export type WellKnownFailureReason =
  /** No HTTP answer: DNS, connection, TLS, timeout or refused address. */
  | "unreachable"
  /** An HTTP status other than 200 (after redirects). */
  | "http-status"
  | "too-large"
  | "invalid-json"
  | "not-an-object"
  | "missing-m.server"
  /** `m.server` is not a string in the server-name grammar. */
  | "invalid-m.server"
  | "redirect-loop"
  | "too-many-redirects"
  /** A redirect to a non-`https:` URL or an unparsable `Location`. */
  | "invalid-redirect";

/** The outcome of one `.well-known` fetch (no cache involved). */
export type WellKnownFetch =
  | {
      readonly ok: true;
      /** The delegated server name (`m.server`). */
      readonly server: string;
      /** The TTL the response's headers ask for, before clamping; `undefined` without headers. */
      readonly headerTtlMs: number | undefined;
      /** `Cache-Control: no-store`. */
      readonly noStore: boolean;
      /** Every URL requested, redirects included. */
      readonly urls: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: WellKnownFailureReason;
      readonly detail: string;
      /** Whether the failure may be temporary (no HTTP answer, or a 5xx). */
      readonly transient: boolean;
      readonly status?: number;
      readonly urls: readonly string[];
    };

/** Options for {@link fetchWellKnown}. */
export interface FetchWellKnownOptions {
  readonly transport: HttpsTransport;
  /** Port of the first request; 443 as the spec's plain `https://<hostname>/` implies. Tests change it. */
  readonly port?: number;
  /** Deadline per request (each redirect gets its own); default 10 s. */
  readonly timeoutMs?: number;
  /** Body cap; default 50 KiB. */
  readonly maxBytes?: number;
  /** Default 10. */
  readonly maxRedirects?: number;
  readonly signal?: AbortSignal;
  /** The clock for `Expires`; default `Date.now`. */
  readonly now?: () => number;
}

/** Synapse's `WELL_KNOWN_MAX_SIZE`. */
export const WELL_KNOWN_MAX_BYTES = 50 * 1024;
const DEFAULT_MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Fetches and parses `https://<hostname>/.well-known/matrix/server`, following redirects.
 * Every failure is a value: discovery then falls through to SRV (spec step 4).
 *
 * @throws the signal's reason if `signal` aborts.
 */
export async function fetchWellKnown(hostname: string, options: FetchWellKnownOptions): Promise<WellKnownFetch> {
  const port = options.port ?? 443;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const now = options.now ?? Date.now;
  let url = new URL(`https://${hostname}${port === 443 ? "" : `:${port}`}${WELL_KNOWN_PATH}`);
  const urls: string[] = [];
  const fail = (reason: WellKnownFailureReason, detail: string, transient = false, status?: number): WellKnownFetch => ({
    ok: false,
    reason,
    detail,
    transient,
    urls,
    ...(status === undefined ? {} : { status }),
  });

  for (;;) {
    urls.push(url.href);
    // WHATWG URLs keep IPv6 hosts bracketed; the transport wants the bare address.
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    let response;
    try {
      response = await options.transport.send({
        host,
        port: url.port === "" ? 443 : Number(url.port),
        certificateName: host,
        hostHeader: url.host,
        method: "GET",
        path: `${url.pathname}${url.search}`,
        headers: { Accept: "application/json" },
        timeoutMs: options.timeoutMs ?? 10_000,
        maxResponseBytes: options.maxBytes ?? WELL_KNOWN_MAX_BYTES,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (error) {
      if (!(error instanceof FederationRequestError)) throw error;
      if (error.reason === "too-large") return fail("too-large", error.message);
      return fail("unreachable", error.message, true);
    }

    if (REDIRECT_STATUSES.has(response.status)) {
      const location = response.headers.location;
      let next: URL;
      try {
        next = new URL(location ?? "", url);
      } catch {
        return fail("invalid-redirect", `${url.href} redirected to an invalid Location ${JSON.stringify(location)}`);
      }
      if (location === undefined) return fail("invalid-redirect", `${url.href} answered ${response.status} without Location`);
      if (next.protocol !== "https:") return fail("invalid-redirect", `${url.href} redirected to non-HTTPS ${next.href}`);
      next.hash = "";
      if (urls.includes(next.href)) return fail("redirect-loop", `redirect loop: ${[...urls, next.href].join(" -> ")}`);
      if (urls.length > maxRedirects) return fail("too-many-redirects", `more than ${maxRedirects} redirects from ${urls[0]}`);
      url = next;
      continue;
    }
    if (response.status !== 200) {
      return fail("http-status", `${url.href} answered HTTP ${response.status}`, response.status >= 500, response.status);
    }
    let body: unknown;
    try {
      body = JSON.parse(response.body.toString("utf8"));
    } catch (error) {
      return fail("invalid-json", `${url.href} is not JSON: ${(error as Error).message}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return fail("not-an-object", `${url.href} is not a JSON object`);
    }
    if (!Object.hasOwn(body, "m.server")) return fail("missing-m.server", `${url.href} has no m.server`);
    const server = (body as Record<string, unknown>)["m.server"];
    if (typeof server !== "string" || !parseServerName(server).ok) {
      return fail("invalid-m.server", `m.server ${JSON.stringify(server)} is not a valid server name`);
    }
    const cache = cachePolicy(response.headers, now());
    return { ok: true, server, headerTtlMs: cache.ttlMs, noStore: cache.noStore, urls };
  }
}

/**
 * Reads `Cache-Control` (`no-store`, `max-age`) and `Expires` as Synapse's
 * `_cache_period_from_headers` does: `max-age` wins, an unparsable `Expires` counts as
 * already expired (RFC 9111 §5.3), and neither means "no opinion" (`undefined`).
 */
export function cachePolicy(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  now: number,
): { ttlMs: number | undefined; noStore: boolean } {
  const raw = headers["cache-control"];
  const directives = new Map<string, string | undefined>();
  for (const header of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
    for (const directive of header.split(",")) {
      const [name, value] = directive.split("=", 2).map((part) => part.trim());
      if (name !== undefined && name !== "") directives.set(name.toLowerCase(), value?.replace(/^"|"$/g, ""));
    }
  }
  if (directives.has("no-store")) return { ttlMs: 0, noStore: true };
  const maxAge = directives.get("max-age");
  if (maxAge !== undefined && /^\d+$/.test(maxAge)) return { ttlMs: Number(maxAge) * 1000, noStore: false };
  const expires = headers["expires"];
  const expiresText = Array.isArray(expires) ? expires[expires.length - 1] : expires;
  if (expiresText !== undefined) {
    const at = Date.parse(expiresText);
    return { ttlMs: Number.isNaN(at) ? 0 : Math.max(0, at - now), noStore: false };
  }
  return { ttlMs: undefined, noStore: false };
}

/** Cache durations; each has the default documented in the module comment. */
export interface WellKnownCacheOptions {
  /** The clock (ms since the epoch); default `Date.now`. Tests inject one. */
  readonly now?: () => number;
  /** TTL when the response has no caching headers; default 24 h (spec). */
  readonly defaultTtlMs?: number;
  /** Upper clamp for header TTLs; default 48 h (spec). */
  readonly maxTtlMs?: number;
  /** Lower clamp for header TTLs; default 5 min (Synapse). */
  readonly minTtlMs?: number;
  /** First error's cache time, doubled per consecutive error; default 5 min. */
  readonly errorTtlMs?: number;
  /** Cap for error cache times; default 1 h (spec). */
  readonly maxErrorTtlMs?: number;
  /** How long a previous answer stands in during a transient failure; default 2 min (Synapse). */
  readonly downTtlMs?: number;
  /** How long after expiry a previous answer may still stand in; default 2 h (Synapse). */
  readonly rememberValidMs?: number;
}

/** What discovery learns from the cache or a fetch. */
export type WellKnownLookup =
  | {
      readonly kind: "delegated";
      readonly server: string;
      /** Served from the cache without a request. */
      readonly cached: boolean;
      /** A previous answer standing in during a transient failure. */
      readonly stale: boolean;
      readonly expiresAt: number;
      readonly urls: readonly string[];
    }
  | {
      readonly kind: "none";
      readonly reason: WellKnownFailureReason;
      readonly detail: string;
      readonly cached: boolean;
      readonly expiresAt: number;
      /** Consecutive failures, which set the backoff. */
      readonly failures: number;
      readonly urls: readonly string[];
    };

interface CacheEntry {
  readonly lookup: WellKnownLookup;
  readonly expiresAt: number;
  readonly failures: number;
  /** The last valid delegation and when it expired (or expires). */
  readonly lastValid?: { readonly server: string; readonly expiresAt: number };
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * Cache of `.well-known` answers keyed by hostname, successes and errors alike (spec step
 * 3), with concurrent lookups of one hostname sharing one fetch.
 */
export class WellKnownCache {
  readonly now: () => number;
  private readonly entries = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<WellKnownLookup>>();
  private readonly defaultTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly minTtlMs: number;
  private readonly errorTtlMs: number;
  private readonly maxErrorTtlMs: number;
  private readonly downTtlMs: number;
  private readonly rememberValidMs: number;

  constructor(options: WellKnownCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    this.defaultTtlMs = options.defaultTtlMs ?? 24 * HOUR;
    this.maxTtlMs = options.maxTtlMs ?? 48 * HOUR;
    this.minTtlMs = options.minTtlMs ?? 5 * MINUTE;
    this.errorTtlMs = options.errorTtlMs ?? 5 * MINUTE;
    this.maxErrorTtlMs = options.maxErrorTtlMs ?? HOUR;
    this.downTtlMs = options.downTtlMs ?? 2 * MINUTE;
    this.rememberValidMs = options.rememberValidMs ?? 2 * HOUR;
  }

  /** Forgets every entry. */
  clear(): void {
    this.entries.clear();
  }

  /**
   * The cached answer for `hostname` if still fresh, else the result of `fetch` (shared by
   * concurrent callers), which is then cached by the rules above.
   */
  async lookup(hostname: string, fetch: () => Promise<WellKnownFetch>): Promise<WellKnownLookup> {
    const entry = this.entries.get(hostname);
    if (entry !== undefined && this.now() < entry.expiresAt) return { ...entry.lookup, cached: true };
    const pending = this.inFlight.get(hostname);
    if (pending !== undefined) return pending;
    const promise = fetch()
      .then((result) => this.store(hostname, result))
      .finally(() => this.inFlight.delete(hostname));
    this.inFlight.set(hostname, promise);
    return promise;
  }

  private store(hostname: string, result: WellKnownFetch): WellKnownLookup {
    const now = this.now();
    const previous = this.entries.get(hostname);
    if (result.ok) {
      const ttl = result.noStore
        ? 0
        : result.headerTtlMs === undefined
          ? this.defaultTtlMs
          : Math.min(this.maxTtlMs, Math.max(this.minTtlMs, result.headerTtlMs));
      const lookup: WellKnownLookup = {
        kind: "delegated",
        server: result.server,
        cached: false,
        stale: false,
        expiresAt: now + ttl,
        urls: result.urls,
      };
      if (ttl > 0) {
        this.entries.set(hostname, {
          lookup,
          expiresAt: now + ttl,
          failures: 0,
          lastValid: { server: result.server, expiresAt: now + ttl },
        });
      } else {
        this.entries.delete(hostname);
      }
      return lookup;
    }
    const failures = (previous?.failures ?? 0) + 1;
    const lastValid = previous?.lastValid;
    if (result.transient && lastValid !== undefined && now < lastValid.expiresAt + this.rememberValidMs) {
      const expiresAt = now + this.downTtlMs;
      const lookup: WellKnownLookup = {
        kind: "delegated",
        server: lastValid.server,
        cached: false,
        stale: true,
        expiresAt,
        urls: result.urls,
      };
      this.entries.set(hostname, { lookup, expiresAt, failures, lastValid });
      return lookup;
    }
    const ttl = Math.min(this.maxErrorTtlMs, this.errorTtlMs * 2 ** Math.min(failures - 1, 30));
    const lookup: WellKnownLookup = {
      kind: "none",
      reason: result.reason,
      detail: result.detail,
      cached: false,
      expiresAt: now + ttl,
      failures,
      urls: result.urls,
    };
    this.entries.set(hostname, {
      lookup,
      expiresAt: now + ttl,
      failures,
      ...(lastValid === undefined ? {} : { lastValid }),
    });
    return lookup;
  }
}
