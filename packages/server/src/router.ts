/**
 * The federation router: one express middleware that routes every request through the
 * endpoint table, authenticates, validates, calls the application's handler and answers
 * in JSON, turning every failure into a Matrix error.
 *
 * @module
 */

import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { CanonicalJsonError, encodeCanonicalJson } from "@myelin/signing";
import type { EndpointDefinition, JsonValue } from "@myelin/types";
import { ENDPOINTS_BY_NAME, MatrixError, findEndpoint, isValidServerName, parseQuery } from "@myelin/types";
import express from "express";
import type { Request, Response, Router } from "express";
import { decodeJsonBody, readBody } from "./body.js";
import { RouterConfigError } from "./errors.js";
import type { FederationHandler, FederationHandlers, FederationRequest } from "./handler.js";
import { FederationResponse, RawResponse } from "./handler.js";
import type { EndpointValidators } from "./validation.js";
import { SchemaCompiler } from "./validation.js";
import type { KeyResolver } from "./x-matrix-auth.js";
import { authenticateRequest, describeAuthFailure } from "./x-matrix-auth.js";

/** Where the router reports what peers must not see. */
export interface RouterLogger {
  /** A handler or the router failed: the peer got 500 `M_UNKNOWN`. */
  error(message: string, context: Readonly<Record<string, unknown>>): void;
  /** A request was refused for a reason worth an operator's attention (authentication). */
  warn?(message: string, context: Readonly<Record<string, unknown>>): void;
}

/**
 * Decides whether a server may use a room's endpoints (server-server API § "Server Access
 * Control Lists"): called for the table's ACL-protected endpoints with the authenticated
 * origin and the `roomId` path parameter; `false` answers 403 `M_FORBIDDEN`.
 */
export type ServerAclCheck = (origin: string, roomId: string) => boolean | Promise<boolean>;

/** Options of {@link createFederationRouter}. */
export interface FederationRouterOptions {
  /** Our server name: X-Matrix `destination` must be this (or absent). */
  readonly serverName: string;
  /** The endpoints the application implements; the others answer 404 `M_UNRECOGNIZED`. */
  readonly handlers: FederationHandlers;
  /** Public keys of requesting servers. */
  readonly keyResolver: KeyResolver;
  /** The largest request body accepted, in bytes (413 `M_TOO_LARGE` beyond). Default {@link DEFAULT_MAX_BODY_BYTES}. */
  readonly maxBodyBytes?: number;
  /** Default: errors to `console.error`, warnings dropped. */
  readonly logger?: RouterLogger;
  /** The clock, in ms since the epoch (key validity). Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Check handlers' 200 bodies against the table's response schema, answering 500 (and
   * logging the mismatch) when one does not match. Meant for development and tests.
   */
  readonly validateResponses?: boolean;
  /** Server ACL check for ACL-protected endpoints; without it no ACL is applied. */
  readonly checkServerAcl?: ServerAclCheck;
}

/**
 * Default body limit: 10 MiB. A full transaction is at most 50 PDUs of 64 KiB plus 100
 * EDUs, well under it; send_join and invite bodies are single events.
 */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

interface Route {
  readonly endpoint: EndpointDefinition;
  readonly handler: FederationHandler;
  readonly validators: EndpointValidators;
}

const defaultLogger: RouterLogger = {
  error(message, context) {
    console.error(`[@myelin/server] ${message}`, context);
  },
};

/**
 * Builds the federation router. Mount it at the root of an express app, after any other
 * routes the app serves on the same port: it answers every request that reaches it, with
 * 404 `M_UNRECOGNIZED` for paths the table does not know or the app does not implement,
 * and 405 `M_UNRECOGNIZED` (with `Allow`) for known paths with another method
 * (server-server API § "Unsupported endpoints"). Every answer is JSON with
 * `Content-Type: application/json`, except the bytes of a handler's {@link RawResponse}.
 *
 * @throws {@link RouterConfigError} for an invalid server name, body limit or handler entry.
 */
export function createFederationRouter(options: FederationRouterOptions): Router {
  if (!isValidServerName(options.serverName)) throw new RouterConfigError("invalid-server-name", options.serverName);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new RouterConfigError("invalid-body-limit", String(options.maxBodyBytes));
  }
  const logger = options.logger ?? defaultLogger;
  const now = options.now ?? Date.now;
  const routes = buildRoutes(options.handlers, options.validateResponses ?? false);

  const context: RequestContext = {
    serverName: options.serverName,
    keyResolver: options.keyResolver,
    maxBodyBytes,
    logger,
    now,
    routes,
    checkServerAcl: options.checkServerAcl,
  };
  const router = express.Router();
  router.use(async (req: Request, res: Response) => {
    try {
      await handleRequest(context, req, res);
    } catch (error) {
      fail(context, res, error, { method: req.method, uri: req.originalUrl });
    }
  });
  return router;
}

function buildRoutes(handlers: FederationHandlers, validateResponses: boolean): Map<EndpointDefinition, Route> {
  const compiler = new SchemaCompiler();
  const routes = new Map<EndpointDefinition, Route>();
  const table = ENDPOINTS_BY_NAME as unknown as Readonly<Record<string, Readonly<Record<string, EndpointDefinition>>>>;
  for (const [name, versions] of Object.entries(handlers as Record<string, Record<string, unknown> | undefined>)) {
    if (versions === undefined) continue;
    for (const [version, handler] of Object.entries(versions)) {
      if (handler === undefined) continue;
      const endpoint = Object.hasOwn(table, name) && Object.hasOwn(table[name] ?? {}, version) ? table[name]?.[version] : undefined;
      if (endpoint === undefined) throw new RouterConfigError("unknown-endpoint", `${name}.${version}`);
      if (typeof handler !== "function") throw new RouterConfigError("invalid-handler", `${name}.${version}`);
      routes.set(endpoint, {
        endpoint,
        handler: handler as FederationHandler,
        validators: compiler.compileEndpoint(endpoint, { responses: validateResponses }),
      });
    }
  }
  return routes;
}

interface RequestContext {
  readonly serverName: string;
  readonly keyResolver: KeyResolver;
  readonly maxBodyBytes: number;
  readonly logger: RouterLogger;
  readonly now: () => number;
  readonly routes: ReadonlyMap<EndpointDefinition, Route>;
  readonly checkServerAcl: ServerAclCheck | undefined;
}

async function handleRequest(context: RequestContext, req: Request, res: Response): Promise<void> {
  // The request-target exactly as received: what X-Matrix signs (never re-encoded).
  const uri = req.originalUrl;
  const method = req.method;
  const match = findEndpoint(method, uri);
  if (match === undefined) {
    return sendError(res, new MatrixError("M_UNRECOGNIZED", "Unrecognized request", { status: 404 }));
  }
  if (!match.methodAllowed) {
    res.setHeader("Allow", match.allowedMethods.join(", "));
    return sendError(res, new MatrixError("M_UNRECOGNIZED", `Method ${method} is not allowed on this path`, { status: 405 }));
  }
  const route = context.routes.get(match.endpoint);
  if (route === undefined) {
    return sendError(res, new MatrixError("M_UNRECOGNIZED", "Unrecognized request: not implemented by this server", { status: 404 }));
  }
  const { endpoint } = route;
  const authorization = req.headersDistinct.authorization ?? [];

  // Refuse an unauthenticated request before reading its body.
  if (endpoint.auth === "x-matrix" && !authorization.some((value) => /^[ \t]*x-matrix[ \t]/i.test(value))) {
    return sendError(res, unauthorized(describeAuthFailure({ code: "missing-header" })));
  }

  if ((req as { body?: unknown }).body !== undefined) {
    throw new Error("the request body was consumed by another middleware before the federation router");
  }
  const read = await readBody(req, context.maxBodyBytes);
  if (read.kind === "aborted") {
    // The peer is gone; there is nobody to answer.
    if (!res.headersSent) res.destroy();
    return;
  }
  if (read.kind === "too-large") {
    // The rest of the body is being discarded; close rather than keep reading it.
    res.setHeader("Connection", "close");
    return sendError(res, new MatrixError("M_TOO_LARGE", `Request body exceeds ${context.maxBodyBytes} bytes`));
  }
  const rawBody = read.bytes.length === 0 ? undefined : read.bytes;
  let content: JsonValue | undefined;
  if (rawBody === undefined) {
    // Spec § "API standards": POST and PUT requests carry a (possibly empty) JSON object.
    if (endpoint.schemas.body !== undefined) {
      return sendError(res, new MatrixError("M_NOT_JSON", "Request body is empty: a JSON object is required"));
    }
  } else {
    const decoded = decodeJsonBody(rawBody);
    if (!decoded.ok) return sendError(res, new MatrixError(decoded.problem.errcode, decoded.problem.message));
    if (typeof decoded.value !== "object" || decoded.value === null || Array.isArray(decoded.value)) {
      return sendError(res, new MatrixError("M_BAD_JSON", "Request body must be a JSON object"));
    }
    content = decoded.value;
  }

  let origin: string | undefined;
  if (endpoint.auth === "x-matrix") {
    const auth = await authenticateRequest({
      authorization,
      method,
      uri,
      serverName: context.serverName,
      ...(content === undefined ? {} : { content }),
      keyResolver: context.keyResolver,
      now: context.now(),
    });
    if (!auth.ok) {
      const message = describeAuthFailure(auth.failure);
      const details = { method, uri, reason: auth.failure.code, message };
      if (auth.failure.code === "key-fetch-failed") {
        context.logger.warn?.("could not fetch the keys of a requesting server", { ...details, cause: auth.failure.cause });
      } else {
        context.logger.warn?.("refused a request's X-Matrix authentication", details);
      }
      return sendError(res, unauthorized(message));
    }
    origin = auth.origin;
  }

  const { validators } = route;
  const params = match.params;
  const queryStart = uri.indexOf("?");
  const query = parseQuery(endpoint, queryStart === -1 ? "" : uri.slice(queryStart + 1));
  const problem =
    validators.path(params) ?? validators.query(query) ?? (validators.body === undefined ? undefined : validators.body(content));
  if (problem !== undefined) return sendError(res, new MatrixError(problem.errcode, problem.message));

  if (endpoint.aclProtected && context.checkServerAcl !== undefined && origin !== undefined) {
    const roomId = params["roomId"];
    if (roomId !== undefined && !(await context.checkServerAcl(origin, roomId))) {
      return sendError(res, new MatrixError("M_FORBIDDEN", "Server is banned from this room by its server ACL"));
    }
  }

  const request: FederationRequest = {
    endpoint,
    origin,
    params: params as FederationRequest["params"],
    query: query as FederationRequest["query"],
    body: (endpoint.schemas.body === undefined ? undefined : content) as FederationRequest["body"],
    rawBody,
    method,
    uri,
    headers: req.headers as IncomingHttpHeaders,
  };
  let result: unknown;
  try {
    result = await route.handler(request);
  } catch (error) {
    if (error instanceof MatrixError) return sendError(res, error);
    throw error;
  }
  sendResult(res, route, result);
}

function unauthorized(message: string): MatrixError {
  return new MatrixError("M_UNAUTHORIZED", message, { status: 401 });
}

function sendResult(res: Response, route: Route, result: unknown): void {
  if (result instanceof RawResponse) {
    setHeaders(res, result.headers);
    res.statusCode = result.status;
    res.setHeader("Content-Type", result.contentType);
    res.setHeader("Content-Length", result.body.byteLength);
    res.end(result.body);
    return;
  }
  const response = result instanceof FederationResponse ? result : new FederationResponse(200, result);
  if (response.body === undefined) {
    throw new Error(`the handler for ${route.endpoint.name} ${route.endpoint.version} returned no body`);
  }
  if (response.status === 200) {
    const mismatch = route.validators.response(response.body);
    if (mismatch !== undefined) {
      throw new Error(`the handler for ${route.endpoint.name} ${route.endpoint.version} returned an invalid response: ${mismatch}`);
    }
  }
  setHeaders(res, response.headers);
  sendJson(res, response.status, response.body);
}

function setHeaders(res: ServerResponse, headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
}

function sendError(res: ServerResponse, error: MatrixError): void {
  sendJson(res, error.status, error.toJSON());
}

/**
 * Writes a JSON body. Canonical JSON when the value allows it (stable bytes, what signed
 * objects are made of); events of room versions 1-5 may hold numbers canonical JSON cannot
 * encode and must still be served: their `JsonNumberToken`s are written as Synapse writes
 * them (the bytes their signatures cover), and plain non-canonical numbers with
 * `JSON.stringify`.
 */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  let text: string;
  try {
    text = encodeCanonicalJson(body as JsonValue, { compat: "synapse" });
  } catch (error) {
    if (!(error instanceof CanonicalJsonError)) throw error;
    // Throws (a 500) for a token next to a plain float: nothing can write such a body exactly.
    text = JSON.stringify(body);
  }
  const bytes = Buffer.from(text, "utf8");
  res.removeHeader("X-Powered-By");
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Content-Length", bytes.byteLength);
  res.end(bytes);
}

/** The last resort: log the cause, answer 500 `M_UNKNOWN` without details (or drop the connection if too late). */
function fail(context: RequestContext, res: ServerResponse, error: unknown, where: { readonly method: string; readonly uri: string }): void {
  context.logger.error("federation request failed", { ...where, error });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  sendError(res, new MatrixError("M_UNKNOWN", "Internal server error", { status: 500 }));
}
