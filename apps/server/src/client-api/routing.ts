/**
 * A small router for `/_matrix/client/...`: path templates matched segment by segment on the
 * raw path (so an encoded `/` inside a state key or alias stays inside its segment), JSON
 * bodies read with `@myelin/signing`'s parser, Matrix errors, CORS.
 *
 * Spec: client-server "API Standards" (JSON bodies, `{errcode, error}` errors, unknown
 * endpoints `404 M_UNRECOGNIZED`, a known path with an unsupported method `405
 * M_UNRECOGNIZED`), "Web Browser Clients" (CORS headers on every response, `OPTIONS`).
 *
 * @module
 */

import { JsonParseError, parseJson } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { MatrixError } from "@myelin/types";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "../log.js";

/** HTTP methods the client API uses. */
export type Method = "GET" | "PUT" | "POST" | "DELETE";

/** What a handler sees. */
export interface RouteRequest {
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters (the last value of repeated ones, except through {@link RouteRequest.queryAll}). */
  readonly query: Readonly<Record<string, string>>;
  /** Every value of a query parameter (`via` may repeat). */
  queryAll(name: string): string[];
  /** The JSON object body; `{}` for requests without one. */
  body(): Promise<JsonObject>;
  readonly headers: Request["headers"];
}

/** A handler's answer: a JSON body and a status (default 200). */
export interface RouteResponse {
  readonly status?: number;
  readonly body: unknown;
}

/** One route: a method and a template such as `/rooms/:roomId/send/:eventType/:txnId`. */
export interface Route {
  readonly method: Method;
  readonly path: string;
  readonly handler: (request: RouteRequest) => Promise<RouteResponse>;
}

/** Largest request body accepted (an event is at most 64 KiB; `createRoom` carries several). */
export const MAX_BODY_BYTES = 1024 * 1024;

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
  "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
};

interface CompiledRoute extends Route {
  readonly segments: readonly string[];
}

/**
 * An express handler serving `routes` under each of `prefixes` (e.g. `/_matrix/client/v3`).
 * Requests outside the prefixes go to `next()`; unknown paths under them get `404
 * M_UNRECOGNIZED`, known paths with another method `405 M_UNRECOGNIZED`.
 */
export function createRouteHandler(options: {
  readonly prefixes: readonly string[];
  readonly routes: readonly Route[];
  readonly logger: Logger;
  /** Paths outside the prefixes served as they are (e.g. `/_matrix/client/versions`). */
  readonly extraRoutes?: readonly Route[];
}): RequestHandler {
  const compile = (route: Route, prefix: string): CompiledRoute => ({ ...route, segments: split(prefix + route.path) });
  const compiled: CompiledRoute[] = [];
  for (const prefix of options.prefixes) for (const route of options.routes) compiled.push(compile(route, prefix));
  for (const route of options.extraRoutes ?? []) compiled.push(compile(route, ""));
  const owns = (path: string): boolean =>
    options.prefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`)) ||
    (options.extraRoutes ?? []).some((route) => route.path === path);

  return (req: Request, res: Response, next: NextFunction): void => {
    const rawPath = (req.originalUrl.split("?", 1)[0] as string).replace(/\/{2,}/g, "/");
    if (!owns(rawPath)) return next();
    for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value);
    if (req.method === "OPTIONS") {
      res.status(200).json({});
      return;
    }
    void serve(req, res, rawPath).catch((error: unknown) => {
      options.logger.error("client API handler failed", { path: rawPath, error: (error as Error).stack ?? String(error) });
      if (!res.headersSent) send(res, 500, { errcode: "M_UNKNOWN", error: "Internal server error" });
    });
  };

  async function serve(req: Request, res: Response, rawPath: string): Promise<void> {
    let segments: string[];
    try {
      segments = split(rawPath).map((segment) => decodeURIComponent(segment));
    } catch {
      send(res, 400, { errcode: "M_INVALID_PARAM", error: "The path is not valid percent-encoding" });
      return;
    }
    let pathMatched = false;
    for (const route of compiled) {
      const params = match(route.segments, segments);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      try {
        const answer = await route.handler(makeRequest(req, params));
        send(res, answer.status ?? 200, answer.body);
      } catch (error) {
        if (error instanceof MatrixError) {
          send(res, error.status, error.toJSON());
          return;
        }
        throw error;
      }
      return;
    }
    if (pathMatched) send(res, 405, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
    else send(res, 404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
  }
}

function split(path: string): string[] {
  return path.split("/").slice(1);
}

function match(template: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (template.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const want = template[i] as string;
    const got = segments[i] as string;
    if (want.startsWith(":")) params[want.slice(1)] = got;
    else if (want !== got) return undefined;
  }
  return params;
}

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type("application/json").send(JSON.stringify(body));
}

function makeRequest(req: Request, params: Record<string, string>): RouteRequest {
  const search = new URLSearchParams(req.originalUrl.includes("?") ? req.originalUrl.slice(req.originalUrl.indexOf("?") + 1) : "");
  // Object.fromEntries defines own properties: a parameter named "__proto__" stays a parameter.
  const query: Record<string, string> = Object.fromEntries(search);
  let body: Promise<JsonObject> | undefined;
  return {
    params,
    query,
    queryAll: (name) => search.getAll(name),
    headers: req.headers,
    body: () => (body ??= readJsonBody(req)),
  };
}

/**
 * Reads the body as a JSON object: `M_NOT_JSON` when it is not JSON, `M_BAD_JSON` when it is
 * not an object, `M_TOO_LARGE` (413) past {@link MAX_BODY_BYTES}. An empty body reads as `{}`.
 * Numbers are parsed leniently (floats allowed); events built from them are checked against
 * the room version's canonical-JSON rules later.
 */
async function readJsonBody(req: Request): Promise<JsonObject> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new MatrixError("M_TOO_LARGE", `The request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  let value;
  try {
    value = parseJson(text, { strict: false });
  } catch (error) {
    if (error instanceof JsonParseError) throw new MatrixError("M_NOT_JSON", `Content not JSON: ${error.message}`);
    throw error;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new MatrixError("M_BAD_JSON", "The body must be a JSON object");
  return value;
}
