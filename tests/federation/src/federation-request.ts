/**
 * Raw federation requests to one server of the cluster: exactly the bytes and the
 * `Authorization` header a test chooses (signed properly, signed over other content, for
 * another destination, or not at all), and the answer as it came, never retried.
 *
 * @module
 */

import * as https from "node:https";
import { CanonicalJsonError, signRequest, type SigningKey } from "@myelin/signing";
import type { JsonValue } from "@myelin/types";
import { signRequestLenient } from "./lenient-json.js";

/** Where to send: `127.0.0.1:port`, TLS checked against the test CA for `localhost`. */
export interface RequestTarget {
  readonly port: number;
  /** PEM of the test CA. */
  readonly ca: string;
}

/** An answer, whatever its status. */
export interface RawResponse {
  readonly status: number;
  /** The parsed JSON body, or `undefined` when the body is not JSON. */
  readonly body: unknown;
  readonly text: string;
}

/** One HTTPS exchange with exactly these method, path, headers and body bytes. */
export function sendRaw(
  target: RequestTarget,
  request: { method: string; path: string; headers?: Readonly<Record<string, string>>; body?: string },
): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    const payload = request.body === undefined ? undefined : Buffer.from(request.body, "utf8");
    const req = https.request(
      {
        host: "127.0.0.1",
        port: target.port,
        method: request.method,
        path: request.path,
        ca: target.ca,
        servername: "localhost",
        agent: false,
        timeout: 30_000,
        headers: {
          Accept: "application/json",
          ...(payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": String(payload.byteLength) }),
          ...request.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, text });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${request.method} ${request.path}: no answer within 30 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** A federation request as a server `origin` with signing key `key` would send it, with knobs for forgery. */
export interface FederationRequest {
  readonly method: "GET" | "PUT" | "POST" | "DELETE";
  /** Path and query, as sent and signed. */
  readonly path: string;
  /** The JSON body (sent as `JSON.stringify` writes it). */
  readonly body?: JsonValue;
  readonly origin: string;
  readonly key: SigningKey;
  /** The server name the request is for. */
  readonly destination: string;
  /** Sign and name this destination instead (spec: the receiver must refuse another). */
  readonly claimedDestination?: string;
  /** Sign this content instead of `body` (a body changed after signing). */
  readonly signedContent?: JsonValue;
  /** `false` sends no `Authorization` header at all. */
  readonly authorize?: boolean;
}

/**
 * Sends a federation request signed with X-Matrix (spec server-server API § "Request
 * Authentication"). Content that strict canonical JSON refuses (fractions, huge integers)
 * is signed with the lenient encoder, as a hostile server could.
 */
export function sendFederationRequest(target: RequestTarget, request: FederationRequest): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (request.authorize !== false) {
    const content = request.signedContent ?? request.body;
    const signed = {
      method: request.method,
      uri: request.path,
      origin: request.origin,
      destination: request.claimedDestination ?? request.destination,
      ...(content === undefined ? {} : { content }),
      key: request.key,
    };
    try {
      headers["Authorization"] = signRequest(signed);
    } catch (error) {
      if (!(error instanceof CanonicalJsonError)) throw error;
      headers["Authorization"] = signRequestLenient(signed);
    }
  }
  return sendRaw(target, {
    method: request.method,
    path: request.path,
    headers,
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
}

/** `GET path` without authentication, for the key and version endpoints. */
export function getJson(target: RequestTarget, path: string): Promise<RawResponse> {
  return sendRaw(target, { method: "GET", path });
}
