import type { SigningKey } from "@myelin/signing";
import { generateSigningKey, verifyRequest } from "@myelin/signing";
import { createTestCa } from "@myelin/test-support";
import type { TestCa } from "@myelin/test-support";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { FederationClientOptions } from "./client.js";
import { FederationClient } from "./client.js";
import { FederationRequestError } from "./errors.js";
import type { RecordedRequest, TestServer } from "./test-support/servers.js";
import { LOOPBACK, TestDns, closedPort, sendJson, startHttpsServer } from "./test-support/servers.js";

let ca: TestCa;
let signingKey: SigningKey;
let server: TestServer;
let server6: TestServer;
let dns: TestDns;
const clients: FederationClient[] = [];
/** What the test server's /.well-known answers, by hostname. */
const wellKnown = new Map<string, string>();

const VERSION = { server: { name: "Test", version: "1.0" } };

beforeAll(async () => {
  ca = createTestCa();
  signingKey = generateSigningKey("test");
  const certificate = ca.issue(["dest.test", "wk.test", "matrix.wk.test", "srv.test", "127.0.0.1", "::1"]);
  server = await startHttpsServer({ certificate });
  server6 = await startHttpsServer({ certificate, host: "::1" });
});

afterAll(async () => {
  await Promise.all([server.close(), server6.close()]);
});

beforeEach(() => {
  dns = new TestDns().host("dest.test", "127.0.0.1").host("wk.test", "127.0.0.1").host("node.example", "127.0.0.1");
  wellKnown.clear();
  for (const s of [server, server6]) {
    s.requests.length = 0;
    s.handler = (req, res) => {
      if (req.url === "/.well-known/matrix/server") {
        const delegated = wellKnown.get((req.headers.host ?? "").split(":")[0] as string);
        if (delegated === undefined) sendJson(res, 404, { errcode: "M_NOT_FOUND", error: "" });
        else sendJson(res, 200, { "m.server": delegated });
      } else {
        sendJson(res, 200, VERSION);
      }
    };
  }
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function client(options: Partial<FederationClientOptions> = {}): FederationClient {
  const made = new FederationClient({
    serverName: "origin.test",
    signingKey,
    resolver: dns,
    tls: { ca: ca.cert },
    allowedAddresses: [...LOOPBACK],
    wellKnownPort: server.port,
    discoveryCacheMs: 0,
    retry: false,
    ...options,
  });
  clients.push(made);
  return made;
}

/** Requests other than .well-known ones. */
function apiRequests(s: TestServer = server): RecordedRequest[] {
  return s.requests.filter((r) => r.url !== "/.well-known/matrix/server");
}

async function failure(promise: Promise<unknown>): Promise<FederationRequestError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FederationRequestError);
  return error as FederationRequestError;
}

async function verify(request: RecordedRequest, destination: string): Promise<unknown> {
  const content = request.body.length === 0 ? undefined : (JSON.parse(request.body.toString()) as never);
  return verifyRequest({
    header: request.headers.authorization ?? "",
    method: request.method,
    uri: request.url,
    destination,
    ...(content === undefined ? {} : { content }),
    lookupKey: (origin, keyId) =>
      origin === "origin.test" && keyId === signingKey.keyId ? { publicKey: signingKey.publicKey } : undefined,
  });
}

describe("FederationClient: X-Matrix signing", () => {
  it("signs a PUT with origin, destination and content, verifiable by verifyRequest", async () => {
    server.handler = (_req, res) => sendJson(res, 200, { pdus: {} });
    const destination = `dest.test:${server.port}`;
    const body = { origin: "origin.test", origin_server_ts: 1, pdus: [] };
    const answer = await client().call("send_transaction_message", "v1", destination, { params: { txnId: "t/1 $x" }, body });
    expect(answer).toEqual({ pdus: {} });
    const [request] = apiRequests();
    expect(request?.method).toBe("PUT");
    expect(request?.url).toBe("/_matrix/federation/v1/send/t%2F1%20%24x");
    expect(request?.headers["content-type"]).toBe("application/json");
    expect(request?.headers.authorization).toContain(`destination="${destination}"`);
    expect(await verify(request!, destination)).toEqual({ valid: true, origin: "origin.test", keyId: signingKey.keyId });
    // The signature is bound to the destination.
    expect(await verify(request!, "other.test")).toMatchObject({ valid: false, reason: { code: "wrong-destination" } });
  });

  it("signs a GET's query string as sent, without content", async () => {
    server.handler = (_req, res) => sendJson(res, 200, { auth_chain_ids: [], pdu_ids: [] });
    const destination = `dest.test:${server.port}`;
    await client().call("get_room_state_ids", "v1", destination, { params: { roomId: "!r:a.test" }, query: { event_id: "$e:a.test" } });
    const [request] = apiRequests();
    expect(request?.url).toBe("/_matrix/federation/v1/state_ids/!r%3Aa.test?event_id=%24e%3Aa.test");
    expect(request?.body.length).toBe(0);
    expect(await verify(request!, destination)).toMatchObject({ valid: true });
  });

  it("does not sign endpoints whose auth is none", async () => {
    await client().call("get_server_version", "v1", `dest.test:${server.port}`);
    expect(apiRequests()[0]?.headers.authorization).toBeUndefined();
  });

  it("offers one generated method per endpoint of the table", async () => {
    const c = client();
    expect(await c.endpoints.get_server_version.v1(`dest.test:${server.port}`)).toEqual(VERSION);
    expect(Object.keys(c.endpoints.create_join_event).sort()).toEqual(["v1", "v2"]);
    expect(typeof c.endpoints.get_content.v1).toBe("function");
  });
});

describe("FederationClient: discovery, Host and SNI seen by the server", () => {
  it("an IPv4 literal with port: no SNI, Host = the server name", async () => {
    await client().call("get_server_version", "v1", server.authority);
    expect(apiRequests()[0]).toMatchObject({ servername: false, headers: expect.objectContaining({ host: server.authority }) });
  });

  it("an IPv6 literal with port: no SNI, Host = the bracketed server name", async () => {
    await client().call("get_server_version", "v1", `[::1]:${server6.port}`);
    expect(apiRequests(server6)[0]).toMatchObject({ servername: false, headers: expect.objectContaining({ host: `[::1]:${server6.port}` }) });
  });

  it("a hostname with port: SNI hostname, Host hostname:port", async () => {
    await client().call("get_server_version", "v1", `dest.test:${server.port}`);
    expect(apiRequests()[0]).toMatchObject({ servername: "dest.test", headers: expect.objectContaining({ host: `dest.test:${server.port}` }) });
  });

  it(".well-known to a hostname with port: SNI the delegated hostname, Host delegated:port", async () => {
    wellKnown.set("wk.test", `matrix.wk.test:${server.port}`);
    dns.host("matrix.wk.test", "127.0.0.1");
    await client().call("get_server_version", "v1", "wk.test");
    expect(server.requests[0]).toMatchObject({ url: "/.well-known/matrix/server", servername: "wk.test" });
    expect(apiRequests()[0]).toMatchObject({
      servername: "matrix.wk.test",
      headers: expect.objectContaining({ host: `matrix.wk.test:${server.port}` }),
    });
  });

  it(".well-known to an IP literal with port: no SNI, Host = the IP and port", async () => {
    wellKnown.set("wk.test", `[::1]:${server6.port}`);
    await client().call("get_server_version", "v1", "wk.test");
    expect(apiRequests(server6)[0]).toMatchObject({ servername: false, headers: expect.objectContaining({ host: `[::1]:${server6.port}` }) });
  });

  it(".well-known to a hostname with an SRV record: SNI and Host are the delegated hostname, not the SRV target", async () => {
    wellKnown.set("wk.test", "matrix.wk.test");
    dns.service("_matrix-fed._tcp.matrix.wk.test", { name: "node.example", port: server.port, priority: 0, weight: 0 });
    await client().call("get_server_version", "v1", "wk.test");
    expect(apiRequests()[0]).toMatchObject({ servername: "matrix.wk.test", headers: expect.objectContaining({ host: "matrix.wk.test" }) });
  });

  it("no .well-known, an SRV record: SNI and Host are the server name", async () => {
    dns.host("srv.test", "127.0.0.1");
    dns.service("_matrix-fed._tcp.srv.test", { name: "node.example", port: server.port, priority: 0, weight: 0 });
    const destination = "srv.test";
    server.handler = (req, res) =>
      req.url === "/.well-known/matrix/server" ? sendJson(res, 404, {}) : sendJson(res, 200, { pdus: {} });
    await client().call("send_transaction_message", "v1", destination, { params: { txnId: "1" }, body: { origin: "origin.test", origin_server_ts: 0, pdus: [] } });
    const [request] = apiRequests();
    expect(request).toMatchObject({ servername: "srv.test", headers: expect.objectContaining({ host: "srv.test" }) });
    // X-Matrix names the server name, never the delegated target.
    expect(await verify(request!, "srv.test")).toMatchObject({ valid: true });
  });

  it("tries the next SRV target when the first one refuses connections", async () => {
    dns.host("srv.test", "127.0.0.1").host("down.example", "127.0.0.1");
    dns.service(
      "_matrix-fed._tcp.srv.test",
      { name: "down.example", port: await closedPort(), priority: 0, weight: 0 },
      { name: "node.example", port: server.port, priority: 1, weight: 0 },
    );
    expect(await client().call("get_server_version", "v1", "srv.test")).toEqual(VERSION);
  });

  it("fails in the discovery layer with the steps taken", async () => {
    const error = await failure(client().call("get_server_version", "v1", "nowhere.test:8448"));
    expect(error).toMatchObject({ layer: "discovery", reason: "host-not-found", destination: "nowhere.test:8448" });
    expect(error.steps?.map((s) => s.step)).toEqual(["parse", "explicit-port", "address-lookup"]);
  });

  it("refuses a destination resolving to loopback unless loopback is allowed", async () => {
    const error = await failure(client({ allowedAddresses: [] }).call("get_server_version", "v1", `dest.test:${server.port}`));
    expect(error).toMatchObject({ layer: "connect", reason: "address-refused", retryable: false });
    expect(apiRequests()).toHaveLength(0);
  });

  it("fails in the tls layer when the certificate is not for the destination", async () => {
    dns.host("other.test", "127.0.0.1");
    const error = await failure(client().call("get_server_version", "v1", `other.test:${server.port}`));
    expect(error).toMatchObject({ layer: "tls", reason: "certificate-invalid", retryable: false, destination: `other.test:${server.port}` });
  });
});

describe("FederationClient: answers", () => {
  it("fails in the response layer when the body does not match the endpoint's schema", async () => {
    server.handler = (_req, res) => sendJson(res, 200, { server: "not an object" });
    const error = await failure(client().call("get_server_version", "v1", server.authority));
    expect(error).toMatchObject({ layer: "response", reason: "schema-mismatch", retryable: false, status: 200 });
    expect(error.violations).toEqual(["/server: expected object, got string"]);
  });

  it("accepts a mismatching body when validation is turned off, and uses a given validator", async () => {
    server.handler = (_req, res) => sendJson(res, 200, { server: "not an object" });
    expect(await client({ validateResponse: false }).call("get_server_version", "v1", server.authority)).toEqual({ server: "not an object" });
    const custom = client({ validateResponse: (endpoint) => (endpoint.name === "get_server_version" ? ["no thanks"] : []) });
    expect((await failure(custom.call("get_server_version", "v1", server.authority))).violations).toEqual(["no thanks"]);
  });

  it("fails in the response layer for a body that is not JSON", async () => {
    server.handler = (_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end("{oops");
    expect(await failure(client().call("get_server_version", "v1", server.authority))).toMatchObject({
      layer: "response",
      reason: "invalid-json",
    });
  });

  it("fails in the response layer for a body over the cap", async () => {
    server.handler = (_req, res) => sendJson(res, 200, { server: { name: "x".repeat(10_000) } });
    const error = await failure(client().call("get_server_version", "v1", server.authority, { maxResponseBytes: 1000 }));
    expect(error).toMatchObject({ layer: "response", reason: "too-large" });
  });

  it("reports a Matrix error with errcode and status, in the matrix layer", async () => {
    server.handler = (_req, res) => sendJson(res, 403, { errcode: "M_FORBIDDEN", error: "Not in room" });
    const error = await failure(client().call("get_event", "v1", server.authority, { params: { eventId: "$e" } }));
    expect(error).toMatchObject({ layer: "matrix", reason: "matrix-error", errcode: "M_FORBIDDEN", status: 403, retryable: false });
    expect(error.message).toContain("Not in room");
  });

  it("reports a non-Matrix error answer in the http layer", async () => {
    server.handler = (_req, res) => res.writeHead(502, { "Content-Type": "text/html" }).end("<h1>Bad gateway</h1>");
    expect(await failure(client().call("get_server_version", "v1", server.authority))).toMatchObject({
      layer: "http",
      reason: "unexpected-status",
      status: 502,
      retryable: true,
    });
  });

  it("parses a multipart media answer", async () => {
    server.handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "multipart/mixed; boundary=b0undary" });
      res.end("--b0undary\r\nContent-Type: application/json\r\n\r\n{}\r\n--b0undary\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b0undary--\r\n");
    };
    const media = await client().call("get_content", "v1", server.authority, { params: { mediaId: "abc" } });
    expect(media.metadata).toEqual({});
    expect(media.content.kind === "bytes" && media.content.data.toString()).toBe("hello");
    expect(await verify(apiRequests()[0]!, server.authority)).toMatchObject({ valid: true });
  });
});

describe("FederationClient: retries", () => {
  function retrying(delays: number[], options: Partial<FederationClientOptions> = {}): FederationClient {
    return client({
      retry: { retries: 3, initialDelayMs: 500, maxDelayMs: 2000 },
      random: () => 0.5,
      sleep: async (ms) => {
        delays.push(ms);
      },
      ...options,
    });
  }

  it("retries 5xx answers with exponential backoff and jitter, then succeeds", async () => {
    let calls = 0;
    server.handler = (_req, res) => (++calls < 3 ? sendJson(res, 500, { errcode: "M_UNKNOWN", error: "" }) : sendJson(res, 200, VERSION));
    const delays: number[] = [];
    expect(await retrying(delays).call("get_server_version", "v1", server.authority)).toEqual(VERSION);
    expect(calls).toBe(3);
    // jitter factor 0.8 + 0.6 * 0.5 = 1.1
    expect(delays).toEqual([550, 1100]);
  });

  it("gives up after the configured retries, with the last (retryable) error", async () => {
    server.handler = (_req, res) => sendJson(res, 503, { errcode: "M_UNKNOWN", error: "busy" });
    const delays: number[] = [];
    const error = await failure(retrying(delays).call("get_server_version", "v1", server.authority));
    expect(error).toMatchObject({ layer: "matrix", status: 503, retryable: true });
    expect(apiRequests()).toHaveLength(4);
    expect(delays).toEqual([550, 1100, 2000 * 1.1]);
  });

  it("never retries a 4xx answer", async () => {
    server.handler = (_req, res) => sendJson(res, 400, { errcode: "M_BAD_JSON", error: "" });
    const delays: number[] = [];
    await failure(retrying(delays).call("get_server_version", "v1", server.authority));
    expect(apiRequests()).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it("waits as long as a 429's retry_after_ms asks, within the cap, and gives up beyond it", async () => {
    let calls = 0;
    server.handler = (_req, res) =>
      ++calls === 1 ? sendJson(res, 429, { errcode: "M_LIMIT_EXCEEDED", error: "", retry_after_ms: 1500 }) : sendJson(res, 200, VERSION);
    const delays: number[] = [];
    await retrying(delays).call("get_server_version", "v1", server.authority);
    expect(delays).toEqual([1500]);
    server.handler = (_req, res) => sendJson(res, 429, { errcode: "M_LIMIT_EXCEEDED", error: "", retry_after_ms: 60_000 });
    const error = await failure(retrying([]).call("get_server_version", "v1", server.authority));
    expect(error).toMatchObject({ layer: "matrix", errcode: "M_LIMIT_EXCEEDED", retryable: true, retryAfterMs: 60_000 });
  });

  it("retries a refused connection", async () => {
    const delays: number[] = [];
    const error = await failure(retrying(delays).call("get_server_version", "v1", `127.0.0.1:${await closedPort()}`));
    expect(error).toMatchObject({ layer: "connect", reason: "connection-failed", retryable: true });
    expect(delays).toHaveLength(3);
  });

  it("retries a connection dropped before the answer, then succeeds", async () => {
    let calls = 0;
    server.handler = (_req, res) => (++calls === 1 ? res.socket?.destroy() : sendJson(res, 200, VERSION));
    expect(await retrying([]).call("get_server_version", "v1", server.authority)).toEqual(VERSION);
    expect(calls).toBe(2);
  });

  it("retries a timeout", async () => {
    let calls = 0;
    server.handler = (_req, res) => (++calls === 1 ? undefined : sendJson(res, 200, VERSION));
    expect(await retrying([], { timeoutMs: 1500 }).call("get_server_version", "v1", server.authority)).toEqual(VERSION);
    expect(calls).toBe(2);
  });

  it("does not retry a refused address, a TLS failure or an invalid server name", async () => {
    const delays: number[] = [];
    await failure(retrying(delays, { allowedAddresses: [] }).call("get_server_version", "v1", server.authority));
    dns.host("other.test", "127.0.0.1");
    await failure(retrying(delays).call("get_server_version", "v1", `other.test:${server.port}`));
    await failure(retrying(delays).call("get_server_version", "v1", "bad name"));
    expect(delays).toEqual([]);
  });

  it("lets a request turn retries off", async () => {
    server.handler = (_req, res) => sendJson(res, 500, {});
    const delays: number[] = [];
    await failure(retrying(delays).call("get_server_version", "v1", server.authority, { retry: false }));
    expect(delays).toEqual([]);
  });
});
