/**
 * The shape of one federation endpoint definition (ruma's `metadata!`, as data), the types
 * derived from it, and the path and query helpers that the client and the router share.
 *
 * @module
 */

import type { FromSchema, JsonSchema, ObjectSchema } from "./schema.js";

/** The HTTP methods the federation API uses. */
export type HttpMethod = "GET" | "PUT" | "POST";

/**
 * How a request is authenticated.
 *
 * - `x-matrix`: a signed `Authorization: X-Matrix ...` header (server-server API §
 *   "Request Authentication").
 * - `none`: unauthenticated (discovery, keys, version, the identity server's `3pid/onbind`).
 * - `access-token-query`: an OpenID token in the `access_token` query parameter
 *   (`/openid/userinfo`).
 */
export type AuthScheme = "x-matrix" | "none" | "access-token-query";

/** A Matrix specification release, as the spec's changelog names them. */
export type SpecRelease = `v1.${number}`;

/** The request and response schemas of an endpoint. */
export interface EndpointSchemas {
  /** Decoded path parameters: one string property per `{name}` of the path template. */
  readonly path: ObjectSchema;
  /**
   * Query parameters as they arrive: every value is a string, or an array of strings for
   * a parameter the spec repeats (`ver`, `v`). Integers are strings of digits and booleans
   * are `"true"`/`"false"`; handlers convert them (see {@link parseQuery}).
   */
  readonly query: ObjectSchema;
  /** The JSON request body; absent for GET. */
  readonly body?: JsonSchema;
  /**
   * The 200 response body. For `multipart/mixed` responses (authenticated media) this
   * is the JSON metadata part only.
   */
  readonly response: JsonSchema;
}

/** What {@link defineEndpoint} takes. */
export interface EndpointDefinitionInput {
  /** ruma's name for the endpoint, snake_case (`create_join_event`). */
  readonly name: string;
  /** The endpoint version: the `/vN/` path segment (the well-known file counts as v1). */
  readonly version: "v1" | "v2";
  readonly method: HttpMethod;
  /** The path template, parameters in braces: `/_matrix/federation/v1/send/{txnId}`. */
  readonly path: string;
  readonly auth: AuthScheme;
  /** Whether the spec documents a `429 M_LIMIT_EXCEEDED` response. */
  readonly rateLimited: boolean;
  /**
   * Whether the spec lists the path among the prefixes a server ACL protects (server-server
   * API § "Server Access Control Lists"): the router checks the requesting server against
   * the ACL of the `roomId` path parameter. `/send` applies ACLs per PDU and EDU instead.
   */
  readonly aclProtected: boolean;
  /** `multipart/mixed` for authenticated media downloads; JSON otherwise. */
  readonly responseContentType?: "application/json" | "multipart/mixed";
  readonly schemas: EndpointSchemas;
  /** The spec section: a spec.matrix.org URL ending in the endpoint's anchor. */
  readonly spec: string;
  /** The spec release that added the endpoint, when after the first stable release. */
  readonly added?: SpecRelease;
  /** The spec release that removed it; kept only to talk to older servers. */
  readonly removed?: SpecRelease;
  /** One line on what the endpoint does. */
  readonly description: string;
}

/** Any endpoint definition (the common supertype of every entry of the table). */
export interface EndpointDefinition extends EndpointDefinitionInput {
  readonly responseContentType: "application/json" | "multipart/mixed";
}

/** The names of the `{parameters}` of a path template. */
export type PathParamNames<P extends string> = P extends `${string}{${infer Name}}${infer Rest}`
  ? Name | PathParamNames<Rest>
  : never;

/** Decoded path parameters of an endpoint (or of a path template). */
export type PathParams<E extends { readonly path: string } | string> = {
  [K in PathParamNames<E extends string ? E : E extends { readonly path: infer P extends string } ? P : never>]: string;
};

/** The query parameters of an endpoint, as strings. */
export type QueryParams<E extends EndpointDefinitionInput> = FromSchema<E["schemas"]["query"]>;

/** The JSON request body of an endpoint; `undefined` for endpoints without a body. */
export type RequestBody<E extends EndpointDefinitionInput> = E["schemas"] extends { readonly body: infer B }
  ? FromSchema<B>
  : undefined;

/** The 200 response body of an endpoint (the metadata part for multipart responses). */
export type ResponseBody<E extends EndpointDefinitionInput> = FromSchema<E["schemas"]["response"]>;

/** Compile-time check that the path schema names exactly the template's parameters. */
type PathParamsMatch<D extends EndpointDefinitionInput> = [keyof PropertiesOf<D["schemas"]["path"]>] extends [
  PathParamNames<D["path"]>,
]
  ? [PathParamNames<D["path"]>] extends [keyof PropertiesOf<D["schemas"]["path"]>]
    ? unknown
    : { readonly pathSchemaMustListEveryParameter: PathParamNames<D["path"]> }
  : { readonly pathSchemaMustListOnlyTemplateParameters: PathParamNames<D["path"]> };

type PropertiesOf<S> = S extends { readonly properties: infer P } ? P : Record<never, never>;

/** The definition {@link defineEndpoint} returns for the input `D`. */
export type Endpoint<D extends EndpointDefinitionInput> = D & {
  readonly responseContentType: D extends { readonly responseContentType: infer C } ? C : "application/json";
};

/**
 * Declares one endpoint. The argument is inferred as a literal (no `as const` needed) so
 * that {@link QueryParams}, {@link RequestBody} and {@link ResponseBody} can derive the
 * wire types from the schemas; the result is deeply frozen.
 */
export function defineEndpoint<const D extends EndpointDefinitionInput>(definition: D & PathParamsMatch<D>): Endpoint<D> {
  return deepFreeze({ responseContentType: "application/json", ...definition }) as Endpoint<D>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Why {@link buildPath} refused its parameters: one was not given, was empty (the path
 * would not route), or held a lone UTF-16 surrogate, which has no UTF-8 encoding.
 */
export type BuildPathFailure = "missing-param" | "empty-param" | "unencodable-param";

/** Thrown by {@link buildPath} when a path parameter cannot be put in the path. */
export class BuildPathError extends Error {
  override readonly name = "BuildPathError";
  constructor(
    readonly reason: BuildPathFailure,
    readonly template: string,
    readonly param: string,
  ) {
    super(`path parameter "${param}" of ${template}: ${reason}`);
  }
}

const PARAM = /\{([^{}/]+)\}/g;

/**
 * Fills a path template. Each parameter is percent-encoded with `encodeURIComponent`, so
 * `$`, `:`, `/`, `+`, `#`, `?` and non-ASCII characters in IDs cannot change the path's
 * structure (server-server API § "Request Authentication": the signed `uri` is the
 * request-target exactly as sent, so callers sign what this returns).
 */
export function buildPath<const P extends string>(endpoint: P | { readonly path: P }, params: PathParams<P>): string {
  const template = typeof endpoint === "string" ? endpoint : endpoint.path;
  const values = params as Readonly<Record<string, string | undefined>>;
  return template.replace(PARAM, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new BuildPathError("missing-param", template, name);
    if (value === "") throw new BuildPathError("empty-param", template, name);
    try {
      return encodeURIComponent(value);
    } catch {
      throw new BuildPathError("unencodable-param", template, name);
    }
  });
}

/**
 * Matches a raw request path (as received, still percent-encoded; any `?query` is ignored)
 * against a path template. Returns the decoded parameters, or `undefined` when the path
 * does not match, a parameter segment is empty, or its percent-encoding is malformed.
 * Literal segments compare exactly; a parameter matches one whole segment, so an encoded
 * `%2F` stays inside its parameter.
 */
export function matchPath<const P extends string>(template: P, rawPath: string): PathParams<P> | undefined {
  const pattern = splitPath(template);
  const actual = splitPath(stripQuery(rawPath));
  if (pattern.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] as string;
    const got = actual[i] as string;
    const name = paramName(want);
    if (name === undefined) {
      if (want !== got) return undefined;
      continue;
    }
    if (got === "") return undefined;
    try {
      params[name] = decodeURIComponent(got);
    } catch {
      return undefined;
    }
  }
  return params as PathParams<P>;
}

/** Splits a path on `/`, keeping empty segments so that `/a//b` and `/a/b/` never match `/a/{x}/b`. */
function splitPath(path: string): string[] {
  return path.split("/");
}

function stripQuery(rawPath: string): string {
  const end = rawPath.search(/[?#]/);
  return end === -1 ? rawPath : rawPath.slice(0, end);
}

function paramName(segment: string): string | undefined {
  return segment.length > 2 && segment.startsWith("{") && segment.endsWith("}") ? segment.slice(1, -1) : undefined;
}

/** Query parameters as received: a string, or every value of a repeated parameter. */
export type RawQuery = Record<string, string | string[]>;

/**
 * Reads a query string into the shape the endpoint's query schema describes: parameters
 * the schema types as arrays (`ver`, `v`) are always arrays, even when sent once; any
 * other parameter is a string, or an array if it was repeated (which the schema then
 * rejects, rather than silently keeping one of the values). Parameters the schema does
 * not name are kept, for forward compatibility.
 */
export function parseQuery(endpoint: Pick<EndpointDefinitionInput, "schemas">, query: string | URLSearchParams): RawQuery {
  const search = typeof query === "string" ? new URLSearchParams(query.startsWith("?") ? query.slice(1) : query) : query;
  const properties = endpoint.schemas.query.properties ?? {};
  // fromEntries defines own properties, so a parameter named `__proto__` stays a parameter.
  return Object.fromEntries(
    [...new Set(search.keys())].map((key) => {
      const values = search.getAll(key);
      const schema = Object.hasOwn(properties, key) ? properties[key] : undefined;
      return [key, schema?.type === "array" || values.length > 1 ? values : (values[0] as string)];
    }),
  );
}

/**
 * Builds the `?query` suffix for a request (empty when there are no parameters), in the
 * order given, repeating array-valued parameters. Uses `encodeURIComponent`, so the result
 * is stable and is what the X-Matrix signature's `uri` must contain.
 */
export function buildQuery(query: Readonly<Record<string, string | readonly string[] | undefined>>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const item of typeof value === "string" ? [value] : value) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(item)}`);
    }
  }
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}
