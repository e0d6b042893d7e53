/**
 * Test helpers: real HTTPS servers on loopback that record what they receive (method,
 * target, headers, SNI, body), and an in-memory DNS table implementing the client's
 * `DnsResolver` interface (the edge of the machine; everything above it is real).
 */

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import type { TLSSocket } from "node:tls";
import type { TestCertificate } from "@myelin/test-support";
import type { DnsResolver, LookupAddress, SrvRecord } from "../dns.js";

/** What a test server received. */
export interface RecordedRequest {
  readonly method: string;
  /** The raw request target. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The SNI the client sent, or `false` when it sent none. */
  readonly servername: string | false;
  readonly body: Buffer;
}

/** Answers a request; `res` is a plain node response. */
export type Handler = (request: RecordedRequest, res: ServerResponse) => unknown;

/** A running HTTPS test server. */
export interface TestServer {
  readonly host: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  handler: Handler;
  /** `host:port`, bracketed for IPv6. */
  readonly authority: string;
  close(): Promise<void>;
}

/** Sends a JSON answer. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Starts an HTTPS server on loopback with the given certificate. */
export async function startHttpsServer(options: {
  readonly certificate: TestCertificate;
  readonly host?: string;
  readonly handler?: Handler;
}): Promise<TestServer> {
  const host = options.host ?? "127.0.0.1";
  const requests: RecordedRequest[] = [];
  const state = { handler: options.handler ?? ((_req, res) => sendJson(res, 404, { errcode: "M_UNRECOGNIZED", error: "" })) } as {
    handler: Handler;
  };
  const server = https.createServer({ cert: options.certificate.cert, key: options.certificate.key });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const recorded: RecordedRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        servername: (req.socket as TLSSocket).servername ?? false,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      void Promise.resolve(state.handler(recorded, res)).catch((error: unknown) => {
        res.destroy(error as Error);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    requests,
    get handler() {
      return state.handler;
    },
    set handler(handler: Handler) {
      state.handler = handler;
    },
    authority: host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A TCP server that accepts connections and never says anything (no TLS, no HTTP). */
export async function startSilentServer(host = "127.0.0.1"): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on loopback with nothing listening (bound, then released). */
export async function closedPort(host = "127.0.0.1"): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** An in-memory DNS: A/AAAA and SRV tables, failures on demand, and a log of queries. */
export class TestDns implements DnsResolver {
  readonly hosts = new Map<string, string[]>();
  readonly srv = new Map<string, SrvRecord[]>();
  /** Names whose queries fail with SERVFAIL. */
  readonly failing = new Set<string>();
  readonly queries: string[] = [];

  /** Adds A/AAAA records. */
  host(name: string, ...addresses: string[]): this {
    this.hosts.set(name, addresses);
    return this;
  }

  /** Adds SRV records. */
  service(name: string, ...records: SrvRecord[]): this {
    this.srv.set(name, records);
    return this;
  }

  async resolveSrv(name: string): Promise<readonly SrvRecord[]> {
    this.queries.push(`SRV ${name}`);
    if (this.failing.has(name)) throw Object.assign(new Error(`queryServfail ${name}`), { code: "ESERVFAIL" });
    const records = this.srv.get(name);
    if (records === undefined) throw Object.assign(new Error(`queryNotFound ${name}`), { code: "ENOTFOUND" });
    return records;
  }

  async lookup(hostname: string): Promise<readonly LookupAddress[]> {
    this.queries.push(`A ${hostname}`);
    if (this.failing.has(hostname)) throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), { code: "EAI_AGAIN" });
    const addresses = this.hosts.get(hostname);
    if (addresses === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: net.isIP(address) === 6 ? 6 : 4 }));
  }
}

/** A settable clock. */
export class TestClock {
  constructor(public time = Date.UTC(2026, 0, 1)) {}
  readonly now = (): number => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

/** Loopback ranges to allow in tests. */
export const LOOPBACK = ["127.0.0.0/8", "::1/128"] as const;
