/**
 * Test harness (not part of the build): real HTTPS servers on loopback with a certificate
 * from a test CA, an HTTPS client that trusts it, and X-Matrix signing of test requests.
 *
 * @module
 */

import { once } from "node:events";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { type Server, createServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import type { SigningKey, VerifyKey } from "@myelin/signing";
import { encodeCanonicalJson, generateSigningKey, signRequest } from "@myelin/signing";
import type { JsonValue } from "@myelin/types";
import { createTestCa } from "@myelin/test-support";
import express from "express";
import type { RequestHandler, Router } from "express";
import type { KeyResolver } from "../x-matrix-auth.js";

const ca = createTestCa();
const certificate = ca.issue(["127.0.0.1", "localhost"]);

/** A running HTTPS server. */
export interface TestServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `router` (mounted at the root of a fresh express app, after any `before`
 * middleware) over HTTPS on 127.0.0.1.
 */
export async function startServer(router: Router, before: readonly RequestHandler[] = []): Promise<TestServer> {
  const app = express();
  for (const middleware of before) app.use(middleware);
  app.use(router);
  const server: Server = createServer({ cert: certificate.cert, key: certificate.key }, app);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What {@link send} got back. */
export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly bytes: Buffer;
  /** The body parsed as JSON (`undefined` if it is not JSON). */
  readonly json: any;
}

/** A request to send. */
export interface TestRequest {
  readonly method: string;
  /** The request-target, sent verbatim. */
  readonly path: string;
  readonly headers?: OutgoingHttpHeaders;
  /** The body: sent in one piece, or in several writes (`chunks`) with pauses between them. */
  readonly body?: string | Uint8Array;
  readonly chunks?: readonly Uint8Array[];
}

/** Sends a request over HTTPS, trusting only the test CA. */
export function send(port: number, request: TestRequest): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...request.headers };
    const req = httpsRequest(
      { host: "127.0.0.1", port, servername: "localhost", ca: ca.cert, method: request.method, path: request.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const bytes = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = JSON.parse(bytes.toString("utf8"));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, json });
        });
        res.on("error", reject);
      },
    );
    // Once the server has answered (e.g. 413 mid-body), later write errors do not matter.
    req.on("error", reject);
    if (request.chunks !== undefined) {
      const chunks = [...request.chunks];
      const writeNext = (): void => {
        const chunk = chunks.shift();
        if (chunk === undefined) {
          req.end();
          return;
        }
        if (req.destroyed) return;
        req.write(chunk, () => setTimeout(writeNext, 5));
      };
      writeNext();
    } else {
      req.end(request.body);
    }
  });
}

/** A test peer: a server name with a signing key. */
export interface TestPeer {
  readonly serverName: string;
  readonly key: SigningKey;
}

/** A new peer with a fresh key. */
export function createPeer(serverName: string, version?: string): TestPeer {
  return { serverName, key: generateSigningKey(version) };
}

/** Options of {@link signedRequest}. */
export interface SignedTestRequest {
  readonly peer: TestPeer;
  readonly destination: string;
  readonly method: string;
  readonly path: string;
  /** The body as a value: signed as `content` and sent as its JSON text. */
  readonly content?: JsonValue;
  /** Override what is signed (to test altered requests). */
  readonly sign?: { method?: string; path?: string; content?: JsonValue | undefined };
  readonly headers?: OutgoingHttpHeaders;
  /**
   * Sign and send `content`'s `JsonNumberToken`s in Synapse's notation (as a Synapse
   * homeserver forwarding a room 1-5 event with floats does).
   */
  readonly compat?: "synapse";
}

/** Builds a request signed with X-Matrix, as a peer would send it. */
export function signedRequest(options: SignedTestRequest): TestRequest {
  const signed = options.sign ?? {};
  const content = "content" in signed ? signed.content : options.content;
  const authorization = signRequest({
    method: signed.method ?? options.method,
    uri: signed.path ?? options.path,
    origin: options.peer.serverName,
    destination: options.destination,
    ...(content === undefined ? {} : { content }),
    key: options.peer.key,
    ...(options.compat === undefined ? {} : { compat: options.compat }),
  });
  const encoding = options.compat === undefined ? undefined : { compat: options.compat };
  return {
    method: options.method,
    path: options.path,
    headers: { Authorization: authorization, "Content-Type": "application/json", ...options.headers },
    ...(options.content === undefined ? {} : { body: encodeCanonicalJson(options.content, encoding) }),
  };
}

/** A key resolver over a fixed set of keys, counting its calls; `failing` makes it reject. */
export class TestKeyResolver implements KeyResolver {
  readonly calls: { serverName: string; keyIds: readonly string[] }[] = [];
  readonly #keys = new Map<string, Map<string, VerifyKey>>();
  failing = false;

  /** Adds a key of `serverName`; `valid` sets `validUntilTs`/`expiredTs`. */
  add(serverName: string, keyId: string, key: VerifyKey): this {
    let keys = this.#keys.get(serverName);
    if (keys === undefined) this.#keys.set(serverName, (keys = new Map()));
    keys.set(keyId, key);
    return this;
  }

  /** Adds a peer's current key, valid for a day. */
  addPeer(peer: TestPeer, validUntilTs = Date.now() + 86_400_000): this {
    return this.add(peer.serverName, peer.key.keyId, { publicKey: peer.key.publicKey, validUntilTs });
  }

  async getServerKeys(serverName: string, keyIds: readonly string[], _minimumValidUntilTs?: number): Promise<ReadonlyMap<string, VerifyKey>> {
    this.calls.push({ serverName, keyIds });
    if (this.failing) throw new Error("key server unreachable (test)");
    const known = this.#keys.get(serverName);
    const found = new Map<string, VerifyKey>();
    for (const keyId of keyIds) {
      const key = known?.get(keyId);
      if (key !== undefined) found.set(keyId, key);
    }
    return found;
  }
}

/** A logger that records what it is given. */
export class TestLogger {
  readonly errors: { message: string; context: Readonly<Record<string, unknown>> }[] = [];
  readonly warnings: { message: string; context: Readonly<Record<string, unknown>> }[] = [];
  error(message: string, context: Readonly<Record<string, unknown>>): void {
    this.errors.push({ message, context });
  }
  warn(message: string, context: Readonly<Record<string, unknown>>): void {
    this.warnings.push({ message, context });
  }
}
