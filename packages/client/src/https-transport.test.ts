import { createTestCa } from "@myelin/test-support";
import type { TestCa, TestCertificate } from "@myelin/test-support";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FederationRequestError } from "./errors.js";
import type { TransportRequest } from "./https-transport.js";
import { HttpsTransport } from "./https-transport.js";
import type { TestServer } from "./test-support/servers.js";
import { LOOPBACK, TestDns, closedPort, sendJson, startHttpsServer, startSilentServer } from "./test-support/servers.js";

let ca: TestCa;
let otherCa: TestCa;
let namedCert: TestCertificate;
let ipCert: TestCertificate;
const servers: TestServer[] = [];
const transports: HttpsTransport[] = [];

beforeAll(() => {
  ca = createTestCa();
  otherCa = createTestCa("Someone else's CA");
  namedCert = ca.issue(["hs.test"]);
  ipCert = ca.issue(["127.0.0.1", "::1"]);
});

afterEach(async () => {
  for (const t of transports.splice(0)) t.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => undefined);

async function server(certificate: TestCertificate, host = "127.0.0.1"): Promise<TestServer> {
  const started = await startHttpsServer({ certificate, host, handler: (_req, res) => sendJson(res, 200, { ok: true }) });
  servers.push(started);
  return started;
}

function transport(options: ConstructorParameters<typeof HttpsTransport>[0] = {}): HttpsTransport {
  const made = new HttpsTransport({ tls: { ca: ca.cert }, allowedAddresses: [...LOOPBACK], ...options });
  transports.push(made);
  return made;
}

function request(s: { port: number }, overrides: Partial<TransportRequest> = {}): TransportRequest {
  return {
    host: "127.0.0.1",
    port: s.port,
    certificateName: "hs.test",
    hostHeader: "hs.test",
    method: "GET",
    path: "/_matrix/federation/v1/version",
    timeoutMs: 5000,
    maxResponseBytes: 1024 * 1024,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<FederationRequestError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FederationRequestError);
  return error as FederationRequestError;
}

describe("HttpsTransport: Host, SNI and certificates", () => {
  it("sends the given Host header and SNI for the certificate name, and checks the certificate against that name rather than the address dialled", async () => {
    const s = await server(namedCert);
    const response = await transport().send(request(s, { hostHeader: "hs.test:8448" }));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString())).toEqual({ ok: true });
    expect(response.address).toBe("127.0.0.1");
    expect(s.requests[0]?.headers.host).toBe("hs.test:8448");
    expect(s.requests[0]?.servername).toBe("hs.test");
  });

  it("sends no SNI when the certificate must be for an IP address (IPv4)", async () => {
    const s = await server(ipCert);
    await transport().send(request(s, { certificateName: "127.0.0.1", hostHeader: s.authority }));
    expect(s.requests[0]?.servername).toBe(false);
    expect(s.requests[0]?.headers.host).toBe(s.authority);
  });

  it("sends no SNI when the certificate must be for an IP address (IPv6)", async () => {
    const s = await server(ipCert, "::1");
    await transport().send(request(s, { host: "::1", certificateName: "::1", hostHeader: s.authority }));
    expect(s.requests[0]?.servername).toBe(false);
    expect(s.requests[0]?.headers.host).toBe(`[::1]:${s.port}`);
  });

  it("fails in the tls layer, not retryable, for a certificate for another name", async () => {
    const s = await server(namedCert);
    const error = await failure(transport().send(request(s, { certificateName: "other.test" })));
    expect(error).toMatchObject({ layer: "tls", reason: "certificate-invalid", retryable: false });
    expect(s.requests).toHaveLength(0);
  });

  it("fails in the tls layer for an expired certificate", async () => {
    const s = await server(ca.issue(["hs.test"], { validDays: -1 }));
    const error = await failure(transport().send(request(s)));
    expect(error).toMatchObject({ layer: "tls", reason: "certificate-invalid", retryable: false });
    expect(error.message).toMatch(/expired/i);
  });

  it("fails in the tls layer for a certificate from an untrusted CA", async () => {
    const s = await server(otherCa.issue(["hs.test"]));
    const error = await failure(transport().send(request(s)));
    expect(error).toMatchObject({ layer: "tls", reason: "certificate-invalid" });
  });

  it("does not trust the test CA unless it is configured", async () => {
    const s = await server(namedCert);
    const error = await failure(transport({ tls: {} }).send(request(s)));
    expect(error).toMatchObject({ layer: "tls", reason: "certificate-invalid" });
  });

  it("skips validation for a name on the allow-list, and only for it", async () => {
    const s = await server(otherCa.issue(["hs.test"]));
    const skipping = transport({ tls: { ca: ca.cert, insecureSkipVerifyFor: ["hs.test"] } });
    expect((await skipping.send(request(s))).status).toBe(200);
    const suffix = transport({ tls: { insecureSkipVerifyFor: [".test"] } });
    expect((await suffix.send(request(s, { certificateName: "x.hs.test" }))).status).toBe(200);
    const other = transport({ tls: { ca: ca.cert, insecureSkipVerifyFor: ["else.test"] } });
    expect(await failure(other.send(request(s)))).toMatchObject({ layer: "tls" });
  });

  it("skips validation for an address inside an allow-listed netmask", async () => {
    const s = await server(otherCa.issue(["nothing.test"]));
    const skipping = transport({ tls: { insecureSkipVerifyFor: ["127.0.0.0/8"] } });
    expect((await skipping.send(request(s))).status).toBe(200);
    const elsewhere = transport({ tls: { insecureSkipVerifyFor: ["10.0.0.0/8"] } });
    expect(await failure(elsewhere.send(request(s)))).toMatchObject({ layer: "tls" });
  });
});

describe("HttpsTransport: outbound address policy", () => {
  it("refuses loopback unless allowed, before connecting", async () => {
    const s = await server(namedCert);
    const error = await failure(transport({ allowedAddresses: [] }).send(request(s)));
    expect(error).toMatchObject({ layer: "connect", reason: "address-refused", retryable: false, address: "127.0.0.1" });
    expect(error.message).toContain("127.0.0.0/8");
    expect(s.requests).toHaveLength(0);
  });

  it("refuses the IPv4-mapped form ::ffff:127.0.0.1 unless 127.0.0.0/8 is allowed", async () => {
    const s = await server(namedCert);
    const refused = await failure(transport({ allowedAddresses: ["::1/128"] }).send(request(s, { host: "::ffff:127.0.0.1" })));
    expect(refused).toMatchObject({ reason: "address-refused", address: "::ffff:127.0.0.1" });
    const allowed = transport({ allowedAddresses: ["127.0.0.0/8"] });
    expect((await allowed.send(request(s, { host: "::ffff:127.0.0.1" }))).status).toBe(200);
  });

  it("refuses a hostname that resolves to loopback, judging the resolved address", async () => {
    const s = await server(namedCert);
    const dns = new TestDns().host("hs.test", "127.0.0.1");
    const error = await failure(transport({ resolver: dns, allowedAddresses: [] }).send(request(s, { host: "hs.test" })));
    expect(error).toMatchObject({ reason: "address-refused", address: "127.0.0.1" });
    expect(error.message).toContain("for hs.test");
    expect(dns.queries).toEqual(["A hs.test"]);
    const allowed = transport({ resolver: dns });
    expect((await allowed.send(request(s, { host: "hs.test" }))).status).toBe(200);
  });

  it("connects to an allowed address when another of the name's addresses is refused", async () => {
    const s = await server(namedCert);
    const dns = new TestDns().host("hs.test", "10.0.0.1", "127.0.0.1");
    const response = await transport({ resolver: dns, allowedAddresses: ["127.0.0.0/8"] }).send(request(s, { host: "hs.test" }));
    expect(response.address).toBe("127.0.0.1");
  });
});

describe("HttpsTransport: connection failures, timeouts and size limits", () => {
  it("reports a refused connection as a retryable connect failure", async () => {
    const port = await closedPort();
    const error = await failure(transport().send(request({ port })));
    expect(error).toMatchObject({ layer: "connect", reason: "connection-failed", retryable: true });
  });

  it("reports a connection cut in the middle of the body as a retryable connect failure", async () => {
    const s = await server(namedCert);
    s.handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "1000" });
      res.write('{"partial": ', () => setTimeout(() => res.socket?.destroy(), 20));
    };
    const error = await failure(transport().send(request(s)));
    expect(error).toMatchObject({ layer: "connect", reason: "connection-failed", retryable: true });
  });

  it("tries the next address when one refuses the connection", async () => {
    const s = await server(namedCert);
    const response = await transport().send(request(s, { addresses: ["127.0.0.2", "127.0.0.1"] }));
    expect(response.address).toBe("127.0.0.1");
  });

  it("times out a peer that accepts the connection but never speaks TLS", async () => {
    const silent = await startSilentServer();
    try {
      const started = Date.now();
      const error = await failure(transport().send(request(silent, { timeoutMs: 300 })));
      expect(error).toMatchObject({ layer: "timeout", reason: "timed-out", retryable: true });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await silent.close();
    }
  });

  it("times out a server that never answers the request", async () => {
    const s = await server(namedCert);
    s.handler = () => undefined;
    const error = await failure(transport().send(request(s, { timeoutMs: 300 })));
    expect(error).toMatchObject({ layer: "timeout", retryable: true });
  });

  it("times out a server that trickles its body (one deadline for the whole exchange)", async () => {
    const s = await server(namedCert);
    s.handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      const timer = setInterval(() => res.write(" "), 50);
      res.on("close", () => clearInterval(timer));
    };
    const error = await failure(transport().send(request(s, { timeoutMs: 400 })));
    expect(error).toMatchObject({ layer: "timeout" });
  });

  it("refuses a response whose Content-Length exceeds the cap", async () => {
    const s = await server(namedCert);
    s.handler = (_req, res) => sendJson(res, 200, { big: "x".repeat(5000) });
    const error = await failure(transport().send(request(s, { maxResponseBytes: 1000 })));
    expect(error).toMatchObject({ layer: "response", reason: "too-large", retryable: false });
  });

  it("stops reading a chunked response once it exceeds the cap", async () => {
    const s = await server(namedCert);
    s.handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      const chunk = "x".repeat(64 * 1024);
      let sent = 0;
      const write = (): void => {
        while (sent < 200 && res.write(chunk)) sent++;
        if (sent < 200) res.once("drain", write);
        else res.end();
      };
      write();
    };
    const error = await failure(transport().send(request(s, { maxResponseBytes: 256 * 1024 })));
    expect(error).toMatchObject({ layer: "response", reason: "too-large" });
  });

  it("gives up with the signal's reason when the caller aborts", async () => {
    const s = await server(namedCert);
    s.handler = () => undefined;
    const controller = new AbortController();
    const pending = transport().send(request(s, { signal: controller.signal }));
    setTimeout(() => controller.abort(new Error("shutting down")), 50);
    await expect(pending).rejects.toThrow("shutting down");
  });
});
