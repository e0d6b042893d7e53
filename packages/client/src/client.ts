/**
 * {@link FederationClient}: signed, validated, retried requests to any endpoint of the
 * table, sent through discovery and the safe HTTPS layer.
 *
 * @module
 */

import type { SigningKey } from "@myelin/signing";
import { parseJson, signRequest } from "@myelin/signing";
import type {
  EndpointDefinition,
  FederationEndpointName,
  JsonValue,
  PathParamNames,
  PathParams,
  QueryParams,
  RequestBody,
  ResponseBody,
} from "@myelin/types";
import { ENDPOINTS_BY_NAME, buildPath, buildQuery } from "@myelin/types";
import type { ResolveServerResult, ServerResolution } from "./discovery.js";
import { resolveServer } from "./discovery.js";
import { FederationRequestError } from "./errors.js";
import type { HttpsTransportOptions, TransportResponse } from "./https-transport.js";
import { HttpsTransport } from "./https-transport.js";
import type { MultipartResponse } from "./multipart.js";
import { MultipartParseError, parseMultipartMixed } from "./multipart.js";
import { checkJsonSchema } from "./schema-check.js";
import type { WellKnownCacheOptions } from "./well-known.js";
import { WellKnownCache } from "./well-known.js";

type ByName = typeof ENDPOINTS_BY_NAME;

/** The versions an endpoint of the table has (`"v1"`, `"v2"`). */
export type EndpointVersion<N extends FederationEndpointName> = keyof ByName[N] & string;

/** The table entry for a name and version. */
export type EndpointOf<N extends FederationEndpointName, V extends EndpointVersion<N>> =
  ByName[N][V] extends infer E extends EndpointDefinition ? E : never;

/** Retry with exponential backoff for retryable failures. */
export interface RetryOptions {
  /** Retries after the first attempt; default 3. */
  readonly retries?: number;
  /** Delay before the first retry; default 500 ms. */
  readonly initialDelayMs?: number;
  /** Delay cap, and the longest `retry_after_ms` honoured by waiting; default 2 s. */
  readonly maxDelayMs?: number;
  /** Random factor range applied to each delay; default [0.8, 1.4]. */
  readonly jitter?: readonly [number, number];
}

/** Per-request settings, overriding the client's. */
export interface PerRequestOptions {
  /** Deadline of each attempt (discovery, connection, TLS, response); default the client's. */
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  readonly retry?: RetryOptions | false;
  readonly signal?: AbortSignal;
}

type ParamsPart<E extends EndpointDefinition> = [PathParamNames<E["path"]>] extends [never]
  ? { readonly params?: Readonly<Record<string, never>> }
  : { readonly params: PathParams<E> };

type BodyPart<E extends EndpointDefinition> = E["method"] extends "GET"
  ? { readonly body?: undefined }
  : { readonly body: RequestBody<E> };

/** What a call of endpoint `E` takes besides the destination. */
export type CallOptions<E extends EndpointDefinition> = ParamsPart<E> &
  BodyPart<E> & { readonly query?: QueryParams<E> } & PerRequestOptions;

/** What {@link FederationClient.request} takes for endpoint `E`. */
export type RequestOptions<E extends EndpointDefinition> = CallOptions<E> & {
  /** The server name to send to, before delegation (the X-Matrix `destination`). */
  readonly destination: string;
};

/** What a call of endpoint `E` resolves to: the JSON body, or the parsed multipart answer. */
export type CallResult<E extends EndpointDefinition> = E["responseContentType"] extends "multipart/mixed"
  ? MultipartResponse<ResponseBody<E>>
  : ResponseBody<E>;

/** The options argument, optional when nothing in it is required. */
export type OptionsArgument<O> = object extends O ? [options?: O] : [options: O];

/** One typed method per endpoint and version: `client.endpoints.get_server_version.v1(destination)`. */
export type EndpointMethods = {
  readonly [N in FederationEndpointName]: {
    readonly [V in EndpointVersion<N>]: (
      destination: string,
      ...options: OptionsArgument<CallOptions<EndpointOf<N, V>>>
    ) => Promise<CallResult<EndpointOf<N, V>>>;
  };
};

/**
 * Checks a response body; returns human-readable violations (empty when valid). The
 * default is {@link checkJsonSchema} against the endpoint's response schema.
 */
export type ResponseValidator = (endpoint: EndpointDefinition, body: unknown) => readonly string[];

/** Settings of a {@link FederationClient}. */
export interface FederationClientOptions extends HttpsTransportOptions {
  /** Our server name: the X-Matrix `origin`. */
  readonly serverName: string;
  /** The key requests are signed with. */
  readonly signingKey: SigningKey;
  /** A transport to share (its own resolver, TLS and address settings then apply). */
  readonly transport?: HttpsTransport;
  /** Deadline of each attempt; default 60 s (Synapse's federation timeout). */
  readonly timeoutMs?: number;
  /** Response cap; default 100 MiB, 500 MiB for send_join and /state (Synapse's limits). */
  readonly maxResponseBytes?: number;
  /** Default retry policy; `false` never retries. */
  readonly retry?: RetryOptions | false;
  /** The clock for caches (ms since the epoch); default `Date.now`. */
  readonly now?: () => number;
  /** `.well-known` cache settings (the clock defaults to `now`). */
  readonly wellKnown?: WellKnownCacheOptions;
  /** Port of `.well-known` requests; default 443. For tests. */
  readonly wellKnownPort?: number;
  /**
   * How long a complete resolution (SRV and address lookups included) is reused; default
   * 60 s; 0 resolves for every request. A resolution none of whose targets connected is
   * dropped at once. (`.well-known` answers have their own cache underneath.)
   */
  readonly discoveryCacheMs?: number;
  /** Response validation; `false` turns it off. */
  readonly validateResponse?: ResponseValidator | false;
  /** Randomness for SRV weights and jitter, in [0, 1). */
  readonly random?: () => number;
  /** How to wait between retries; default `setTimeout`. */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface LooseRequestOptions extends PerRequestOptions {
  readonly destination: string;
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body?: unknown;
}

const MIB = 1024 * 1024;
const LARGE_RESPONSE_ENDPOINTS = new Set(["create_join_event", "get_room_state"]);
const DEFAULT_RETRY: Required<RetryOptions> = { retries: 3, initialDelayMs: 500, maxDelayMs: 2000, jitter: [0.8, 1.4] };
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The default response validator: the endpoint's schema, checked by {@link checkJsonSchema}. */
export const validateAgainstSchema: ResponseValidator = (endpoint, body) =>
  checkJsonSchema(endpoint.schemas.response, body).map((v) => `${v.path === "" ? "(root)" : v.path}: ${v.message}`);

/**
 * Sends federation requests: discovers the destination, signs with X-Matrix (origin,
 * destination, method, uri, content), sends over the safe HTTPS layer, turns the answer
 * into a value of the endpoint's response type or a {@link FederationRequestError}, and
 * retries transient failures with exponential backoff (never 4xx answers).
 *
 * ```ts
 * const client = new FederationClient({ serverName: "a.example", signingKey });
 * const version = await client.call("get_server_version", "v1", "b.example");
 * ```
 */
export class FederationClient {
  readonly serverName: string;
  readonly transport: HttpsTransport;
  readonly wellKnownCache: WellKnownCache;
  /** One typed method per endpoint of the table, generated from it. */
  readonly endpoints: EndpointMethods;
  private readonly ownsTransport: boolean;
  private readonly signingKey: SigningKey;
  private readonly options: FederationClientOptions;
  private readonly now: () => number;
  private readonly resolutions = new Map<string, { resolution: ServerResolution; expiresAt: number }>();

  /** @throws `CidrParseError` for malformed `allowedAddresses` or TLS skip-list entries. */
  constructor(options: FederationClientOptions) {
    this.options = options;
    this.serverName = options.serverName;
    this.signingKey = options.signingKey;
    this.now = options.now ?? Date.now;
    this.ownsTransport = options.transport === undefined;
    this.transport = options.transport ?? new HttpsTransport(options);
    this.wellKnownCache = new WellKnownCache({ now: this.now, ...options.wellKnown });
    this.endpoints = generateMethods(this);
  }

  /** Closes the client's idle connections (not a shared transport's). */
  close(): void {
    if (this.ownsTransport) this.transport.close();
  }

  /** Resolves a server name with this client's resolver, TLS settings and caches, reporting each step. */
  resolveServer(serverName: string, signal?: AbortSignal): Promise<ResolveServerResult> {
    return resolveServer(serverName, {
      transport: this.transport,
      wellKnownCache: this.wellKnownCache,
      ...(this.options.wellKnownPort === undefined ? {} : { wellKnownPort: this.options.wellKnownPort }),
      ...(this.options.random === undefined ? {} : { random: this.options.random }),
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /** Calls an endpoint by name and version: `call("get_event", "v1", "b.example", { params: { eventId } })`. */
  call<N extends FederationEndpointName, V extends EndpointVersion<N>>(
    name: N,
    version: V,
    destination: string,
    ...options: OptionsArgument<CallOptions<EndpointOf<N, V>>>
  ): Promise<CallResult<EndpointOf<N, V>>> {
    const endpoint = (ENDPOINTS_BY_NAME[name] as Record<string, EndpointDefinition>)[version];
    if (endpoint === undefined) throw new TypeError(`unknown endpoint ${name} ${version}`);
    return this.send(endpoint, { ...(options[0] as object | undefined), destination }) as Promise<never>;
  }

  /**
   * Sends one request to `options.destination` for `endpoint`.
   *
   * @throws {@link FederationRequestError} when it fails; `BuildPathError` for bad path
   *   parameters; `CanonicalJsonError` for a body that cannot be signed; the signal's reason.
   */
  request<E extends EndpointDefinition>(endpoint: E, options: RequestOptions<E>): Promise<CallResult<E>> {
    return this.send(endpoint, options as never) as Promise<never>;
  }

  /** {@link FederationClient.request} without the per-endpoint types (instantiating them generically is too deep for tsc). */
  private async send(endpoint: EndpointDefinition, options: LooseRequestOptions): Promise<unknown> {
    const { destination } = options;
    const uri = buildPath(endpoint.path, (options.params ?? {}) as never) + buildQuery(options.query ?? {});
    const content: JsonValue | undefined = endpoint.method === "GET" ? undefined : ((options.body ?? {}) as JsonValue);
    const headers: Record<string, string> = {
      Accept: endpoint.responseContentType === "multipart/mixed" ? "multipart/mixed, application/json" : "application/json",
    };
    if (content !== undefined) headers["Content-Type"] = "application/json";
    if (endpoint.auth === "x-matrix") {
      headers["Authorization"] = signRequest({
        method: endpoint.method,
        uri,
        origin: this.serverName,
        destination,
        ...(content === undefined ? {} : { content }),
        key: this.signingKey,
      });
    }
    const body = content === undefined ? undefined : Buffer.from(JSON.stringify(content), "utf8");
    const retry = this.retryPolicy(options.retry);
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.attempt(endpoint, destination, uri, headers, body, options);
        return this.interpret(endpoint, destination, response) as never;
      } catch (error) {
        if (!(error instanceof FederationRequestError)) throw error;
        const failure = error.withDestination(destination);
        if (!failure.retryable || retry === undefined || attempt >= retry.retries || options.signal?.aborted) throw failure;
        const backoff = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** attempt);
        // A server asking us to wait longer than we are willing to gets the error back.
        if (failure.retryAfterMs !== undefined && failure.retryAfterMs > retry.maxDelayMs) throw failure;
        const [low, high] = retry.jitter;
        const random = this.options.random ?? Math.random;
        const delay = Math.max(failure.retryAfterMs ?? 0, backoff * (low + (high - low) * random()));
        await (this.options.sleep ?? sleep)(delay);
      }
    }
  }

  private retryPolicy(perRequest: RetryOptions | false | undefined): Required<RetryOptions> | undefined {
    const chosen = perRequest ?? this.options.retry;
    if (chosen === false) return undefined;
    return { ...DEFAULT_RETRY, ...chosen };
  }

  private async resolve(destination: string, signal: AbortSignal | undefined): Promise<ServerResolution> {
    const cached = this.resolutions.get(destination);
    if (cached !== undefined && this.now() < cached.expiresAt) return cached.resolution;
    const outcome = await this.resolveServer(destination, signal);
    if (!outcome.ok) throw outcome.error;
    const cacheMs = this.options.discoveryCacheMs ?? 60_000;
    if (cacheMs > 0) {
      this.resolutions.set(destination, { resolution: outcome.resolution, expiresAt: this.now() + cacheMs });
    }
    return outcome.resolution;
  }

  private async attempt(
    endpoint: EndpointDefinition,
    destination: string,
    uri: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    options: PerRequestOptions,
  ): Promise<TransportResponse> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 60_000;
    const maxResponseBytes =
      options.maxResponseBytes ??
      this.options.maxResponseBytes ??
      (LARGE_RESPONSE_ENDPOINTS.has(endpoint.name) ? 500 * MIB : 100 * MIB);
    const resolution = await this.resolve(destination, options.signal);
    let lastFailure: FederationRequestError | undefined;
    for (const target of resolution.targets) {
      if (target.addresses.length === 0) continue;
      try {
        return await this.transport.send({
          host: target.host,
          port: target.port,
          addresses: target.addresses,
          certificateName: resolution.certificateName,
          hostHeader: resolution.hostHeader,
          method: endpoint.method,
          path: uri,
          headers,
          ...(body === undefined ? {} : { body }),
          timeoutMs,
          maxResponseBytes,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
      } catch (error) {
        // Another SRV target may be reachable when this one is not (RFC 2782).
        if (error instanceof FederationRequestError && error.layer === "connect") {
          lastFailure = error;
          continue;
        }
        throw error;
      }
    }
    // Nothing connected: resolve afresh next time, in case the addresses changed.
    this.resolutions.delete(destination);
    throw lastFailure ?? new FederationRequestError({ layer: "connect", reason: "connection-failed", retryable: true, message: "no target" });
  }

  private interpret(endpoint: EndpointDefinition, destination: string, response: TransportResponse): unknown {
    const { status } = response;
    if (status < 200 || status >= 300) throw this.errorFromResponse(destination, response);
    const contentType = headerValue(response.headers["content-type"]) ?? "";
    let value: unknown;
    let checked: unknown;
    try {
      if (endpoint.responseContentType === "multipart/mixed") {
        const multipart = parseMultipartMixed(contentType, response.body, (text) => parseJson(text, { strict: false }));
        value = multipart;
        checked = multipart.metadata;
      } else {
        value = parseJson(utf8.decode(response.body), { strict: false });
        checked = value;
      }
    } catch (error) {
      const multipart = error instanceof MultipartParseError;
      throw new FederationRequestError({
        layer: "response",
        reason: multipart ? "invalid-multipart" : "invalid-json",
        retryable: false,
        message: `${endpoint.method} ${endpoint.path} on ${destination}: ${multipart ? "" : "response is not valid JSON: "}${(error as Error).message}`,
        destination,
        status,
        address: response.address,
        cause: error,
      });
    }
    const validate = this.options.validateResponse === undefined ? validateAgainstSchema : this.options.validateResponse;
    if (validate !== false) {
      const violations = validate(endpoint, checked);
      if (violations.length > 0) {
        throw new FederationRequestError({
          layer: "response",
          reason: "schema-mismatch",
          retryable: false,
          message: `${endpoint.method} ${endpoint.path} on ${destination}: response does not match the schema (${violations.slice(0, 3).join("; ")})`,
          destination,
          status,
          address: response.address,
          violations,
        });
      }
    }
    return value;
  }

  private errorFromResponse(destination: string, response: TransportResponse): FederationRequestError {
    const { status } = response;
    let body: unknown;
    try {
      body = parseJson(utf8.decode(response.body), { strict: false });
    } catch {
      body = undefined;
    }
    const retryable = status >= 500 || status === 429;
    const retryAfterMs = retryAfter(body, headerValue(response.headers["retry-after"]));
    const common = {
      retryable,
      destination,
      status,
      address: response.address,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
    const errcode = isObject(body) && typeof body["errcode"] === "string" ? body["errcode"] : undefined;
    if (errcode !== undefined) {
      const text = isObject(body) && typeof body["error"] === "string" ? body["error"] : "";
      return new FederationRequestError({
        ...common,
        layer: "matrix",
        reason: "matrix-error",
        errcode,
        body,
        message: `${destination} answered ${status} ${errcode}${text === "" ? "" : `: ${text}`}`,
      });
    }
    return new FederationRequestError({
      ...common,
      layer: "http",
      reason: "unexpected-status",
      ...(body === undefined ? {} : { body }),
      message: `${destination} answered HTTP ${status} without a Matrix error`,
    });
  }
}

function generateMethods(client: FederationClient): EndpointMethods {
  const methods: Record<string, Record<string, unknown>> = {};
  for (const [name, versions] of Object.entries(ENDPOINTS_BY_NAME)) {
    const byVersion: Record<string, unknown> = {};
    for (const [version, endpoint] of Object.entries(versions as Record<string, EndpointDefinition>)) {
      byVersion[version] = (destination: string, options?: object) =>
        client.request(endpoint, { ...options, destination } as never);
    }
    methods[name] = Object.freeze(byVersion);
  }
  return Object.freeze(methods) as unknown as EndpointMethods;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** `retry_after_ms` from a 429 body, else a `Retry-After` header in seconds. */
function retryAfter(body: unknown, header: string | undefined): number | undefined {
  if (isObject(body) && typeof body["retry_after_ms"] === "number" && body["retry_after_ms"] >= 0) {
    return body["retry_after_ms"];
  }
  if (header !== undefined && /^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
