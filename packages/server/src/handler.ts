/**
 * What an application hands the router: one handler per endpoint version it implements,
 * typed from the endpoint table, and what a handler may return.
 *
 * @module
 */

import type { IncomingHttpHeaders } from "node:http";
import type {
  ENDPOINTS_BY_NAME,
  EndpointDefinition,
  EndpointDefinitionInput,
  FederationEndpointName,
  PathParams,
  QueryParams,
  RequestBody,
  ResponseBody,
} from "@myelin/types";

/**
 * The authenticated origin of a request: the server name for `x-matrix` endpoints,
 * `undefined` for unauthenticated ones (and `string | undefined` when the endpoint is not
 * known statically).
 */
export type OriginOf<E extends Pick<EndpointDefinitionInput, "auth">> = [E["auth"]] extends ["x-matrix"]
  ? string
  : "x-matrix" extends E["auth"]
    ? string | undefined
    : undefined;

/** A request that passed routing, authentication and validation, as a handler sees it. */
export interface FederationRequest<E extends EndpointDefinitionInput = EndpointDefinition> {
  /** The table entry that matched. */
  readonly endpoint: E;
  /** The server that signed the request (X-Matrix `origin`), for authenticated endpoints. */
  readonly origin: OriginOf<E>;
  /** Decoded path parameters. */
  readonly params: PathParams<E["path"]>;
  /**
   * Query parameters as validated: strings (arrays for repeated ones). Integers and
   * booleans are still text; optional parameters the request left out are absent (the
   * handler applies the spec's defaults, e.g. `ver` of `make_join` is `["1"]`).
   */
  readonly query: QueryParams<E>;
  /**
   * The JSON body, parsed number-exactly and validated; `undefined` for endpoints without
   * one.
   *
   * Parsed losslessly: a float or an integer beyond ±(2^53-1) is a `JsonNumberToken` (from
   * `@myelin/signing`) holding its exact text, though the type says `JsonValue`. Validation
   * refuses a token wherever the table's schema gives a type (an envelope's integers,
   * objects...), so tokens reach a handler only where the schema leaves values open: inside
   * PDUs (`{ type: "object" }`), EDU contents and the like. There a handler must not take
   * one for a plain object or a number: check `instanceof JsonNumberToken`, or let the
   * room-version checks judge the PDU (rooms 6+ reject it; rooms 1-5 verify it with
   * `compat: "synapse"`). `JSON.stringify` refuses tokens; encode with
   * `encodeCanonicalJson(value, { compat: "synapse" })`.
   */
  readonly body: RequestBody<E>;
  /** The body bytes as received (after the size limit), or `undefined` when there was no body. */
  readonly rawBody: Uint8Array | undefined;
  /** The HTTP method as received. */
  readonly method: string;
  /** The request target as received: path and query, still percent-encoded (what X-Matrix signs). */
  readonly uri: string;
  /** The request headers (lower-case names). */
  readonly headers: IncomingHttpHeaders;
}

/**
 * A JSON response with a status other than 200 or extra headers. Return one from a
 * handler (see {@link respond}); a plain object return means 200 with that body.
 */
export class FederationResponse<B = unknown> {
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The JSON body. */
    readonly body: B,
    /** Extra response headers; `Content-Type` is always `application/json`. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

/**
 * A non-JSON response, for the `multipart/mixed` media downloads: the bytes are sent as
 * they are with the given content type.
 */
export class RawResponse {
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The `Content-Type` header. */
    readonly contentType: string,
    /** The body bytes. */
    readonly body: Uint8Array,
    /** Extra response headers. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

/** Builds a {@link FederationResponse}: `return respond(body, { status: 202 })`. */
export function respond<B>(
  body: B,
  options: { readonly status?: number; readonly headers?: Readonly<Record<string, string>> } = {},
): FederationResponse<B> {
  return new FederationResponse(options.status ?? 200, body, options.headers ?? {});
}

/** What a handler may return: the 200 body, a {@link FederationResponse}, or a {@link RawResponse}. */
export type HandlerResult<E extends EndpointDefinitionInput = EndpointDefinition> =
  | ResponseBody<E>
  | FederationResponse<ResponseBody<E>>
  | RawResponse;

/**
 * Serves one endpoint version. Throw a `MatrixError` to answer with a Matrix error; any
 * other exception becomes 500 `M_UNKNOWN` (the cause is logged, never sent).
 */
export type FederationHandler<E extends EndpointDefinitionInput = EndpointDefinition> = (
  request: FederationRequest<E>,
) => HandlerResult<E> | Promise<HandlerResult<E>>;

type ByName = typeof ENDPOINTS_BY_NAME;

/** The versions (`v1`, `v2`) the table defines for an endpoint name. */
export type VersionOf<N extends FederationEndpointName> = Extract<keyof ByName[N], "v1" | "v2">;

/** The table entry of an endpoint name and version. */
export type EndpointOf<N extends FederationEndpointName, V extends VersionOf<N>> = ByName[N][V] extends infer E extends
  EndpointDefinitionInput
  ? E
  : never;

/**
 * The application's handlers, by endpoint name then version, as the table names them:
 * `{ send_transaction_message: { v1: async (req) => ({ pdus: {} }) } }`. Endpoints left
 * out answer 404 `M_UNRECOGNIZED`, as for paths the table does not know.
 */
export type FederationHandlers = {
  readonly [N in FederationEndpointName]?: {
    readonly [V in VersionOf<N>]?: FederationHandler<EndpointOf<N, V>>;
  };
};
