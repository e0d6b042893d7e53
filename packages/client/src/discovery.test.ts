import { createTestCa } from "@myelin/test-support";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ResolveServerResult, ServerResolution } from "./discovery.js";
import { resolveServer } from "./discovery.js";
import { HttpsTransport } from "./https-transport.js";
import type { TestServer } from "./test-support/servers.js";
import { LOOPBACK, TestClock, TestDns, closedPort, sendJson, startHttpsServer } from "./test-support/servers.js";
import { WellKnownCache } from "./well-known.js";

const NAMES = ["wk.test", "none.test", "bad.test", "srv.test", "legacy.test", "plain.test", "dot.test"];
let wellKnownServer: TestServer;
let transport: HttpsTransport;
let dns: TestDns;
/** What each hostname's .well-known answers: a delegation, or a status. */
const wellKnown = new Map<string, string | number>();

beforeAll(async () => {
  const ca = createTestCa();
  wellKnownServer = await startHttpsServer({
    certificate: ca.issue(NAMES),
    handler: (req, res) => {
      const host = (req.headers.host ?? "").split(":")[0] as string;
      const entry = wellKnown.get(host);
      if (typeof entry === "string") sendJson(res, 200, { "m.server": entry });
      else if (entry === undefined) sendJson(res, 404, { errcode: "M_NOT_FOUND", error: "" });
      else res.writeHead(entry).end("{ not json");
    },
  });
  dns = new TestDns();
  transport = new HttpsTransport({ resolver: dns, tls: { ca: ca.cert }, allowedAddresses: [...LOOPBACK] });
});

afterAll(async () => {
  transport.close();
  await wellKnownServer.close();
});

beforeEach(() => {
  wellKnown.clear();
  dns.hosts.clear();
  dns.srv.clear();
  dns.failing.clear();
  dns.queries.length = 0;
  wellKnownServer.requests.length = 0;
  for (const name of NAMES) dns.host(name, "127.0.0.1");
});

async function resolve(serverName: string, options: { wellKnownCache?: WellKnownCache } = {}): Promise<ResolveServerResult> {
  return resolveServer(serverName, { transport, wellKnownPort: wellKnownServer.port, random: () => 0, ...options });
}

async function resolved(serverName: string): Promise<ServerResolution> {
  const result = await resolve(serverName);
  if (!result.ok) throw result.error;
  return result.resolution;
}

describe("resolveServer: names that need no lookup of .well-known", () => {
  it("step 1: an IPv4 literal without port goes to 8448 with Host = the server name, no SNI", async () => {
    expect(await resolved("1.2.3.4")).toMatchObject({
      rule: "1",
      host: "1.2.3.4",
      port: 8448,
      addresses: ["1.2.3.4"],
      hostHeader: "1.2.3.4",
      certificateName: "1.2.3.4",
    });
    expect((await resolved("1.2.3.4")).tlsServerName).toBeUndefined();
    expect(dns.queries).toEqual([]);
    expect(wellKnownServer.requests).toHaveLength(0);
  });

  it("step 1: an IPv4 literal with port keeps the port in Host", async () => {
    expect(await resolved("1.2.3.4:8449")).toMatchObject({ rule: "1", port: 8449, hostHeader: "1.2.3.4:8449" });
  });

  it("step 1: an IPv6 literal connects to the bare address; Host keeps the brackets", async () => {
    expect(await resolved("[2001:db8::1]")).toMatchObject({
      rule: "1",
      host: "2001:db8::1",
      port: 8448,
      hostHeader: "[2001:db8::1]",
      certificateName: "2001:db8::1",
    });
    expect(await resolved("[::1]:8449")).toMatchObject({ rule: "1", host: "::1", port: 8449, hostHeader: "[::1]:8449" });
  });

  it("step 2: a hostname with port is looked up (A/AAAA) and gets Host hostname:port, SNI and certificate for the hostname", async () => {
    dns.host("hs.test", "192.0.2.1", "2001:db8::2");
    expect(await resolved("hs.test:8449")).toEqual({
      serverName: "hs.test:8449",
      rule: "2",
      targets: [{ host: "hs.test", port: 8449, addresses: ["192.0.2.1", "2001:db8::2"] }],
      host: "hs.test",
      port: 8449,
      addresses: ["192.0.2.1", "2001:db8::2"],
      tlsServerName: "hs.test",
      hostHeader: "hs.test:8449",
      certificateName: "hs.test",
    });
    expect(wellKnownServer.requests).toHaveLength(0);
    expect(dns.queries).toEqual(["A hs.test"]);
  });
});

describe("resolveServer: .well-known delegation (step 3)", () => {
  it("3.1: a delegated IP literal is used with its port; Host is the IP and port", async () => {
    wellKnown.set("wk.test", "[2001:db8::5]:8450");
    const resolution = await resolved("wk.test");
    expect(resolution).toMatchObject({
      rule: "3.1",
      delegatedServerName: "[2001:db8::5]:8450",
      host: "2001:db8::5",
      port: 8450,
      hostHeader: "[2001:db8::5]:8450",
      certificateName: "2001:db8::5",
    });
    expect(resolution.tlsServerName).toBeUndefined();
  });

  it("3.1: a delegated IP literal without port goes to 8448", async () => {
    wellKnown.set("wk.test", "192.0.2.9");
    expect(await resolved("wk.test")).toMatchObject({ rule: "3.1", host: "192.0.2.9", port: 8448, hostHeader: "192.0.2.9" });
  });

  it("3.2: a delegated hostname with port: its addresses, Host delegated:port, certificate for the delegated hostname", async () => {
    wellKnown.set("wk.test", "matrix.wk.test:8451");
    dns.host("matrix.wk.test", "192.0.2.10");
    expect(await resolved("wk.test")).toMatchObject({
      rule: "3.2",
      host: "matrix.wk.test",
      port: 8451,
      addresses: ["192.0.2.10"],
      hostHeader: "matrix.wk.test:8451",
      tlsServerName: "matrix.wk.test",
      certificateName: "matrix.wk.test",
    });
    expect(dns.queries).not.toContain("SRV _matrix-fed._tcp.matrix.wk.test");
  });

  it("3.3: a delegated hostname without port uses _matrix-fed._tcp SRV; Host and certificate stay the delegated hostname", async () => {
    wellKnown.set("wk.test", "matrix.wk.test");
    dns.service("_matrix-fed._tcp.matrix.wk.test", { name: "target.example.", port: 8452, priority: 0, weight: 0 });
    dns.host("target.example", "192.0.2.11");
    expect(await resolved("wk.test")).toMatchObject({
      rule: "3.3",
      host: "target.example",
      port: 8452,
      addresses: ["192.0.2.11"],
      hostHeader: "matrix.wk.test",
      tlsServerName: "matrix.wk.test",
      certificateName: "matrix.wk.test",
    });
    expect(dns.queries).not.toContain("SRV _matrix._tcp.matrix.wk.test");
  });

  it("3.4: without _matrix-fed, the deprecated _matrix._tcp SRV of the delegated hostname", async () => {
    wellKnown.set("wk.test", "matrix.wk.test");
    dns.service("_matrix._tcp.matrix.wk.test", { name: "old.example", port: 8453, priority: 0, weight: 0 });
    dns.host("old.example", "192.0.2.12");
    expect(await resolved("wk.test")).toMatchObject({ rule: "3.4", host: "old.example", port: 8453, hostHeader: "matrix.wk.test" });
    expect(dns.queries).toEqual(["A wk.test", "SRV _matrix-fed._tcp.matrix.wk.test", "SRV _matrix._tcp.matrix.wk.test", "A old.example"]);
  });

  it("3.5: without SRV records, the delegated hostname on 8448", async () => {
    wellKnown.set("wk.test", "matrix.wk.test");
    dns.host("matrix.wk.test", "192.0.2.13");
    expect(await resolved("wk.test")).toMatchObject({
      rule: "3.5",
      host: "matrix.wk.test",
      port: 8448,
      addresses: ["192.0.2.13"],
      hostHeader: "matrix.wk.test",
      certificateName: "matrix.wk.test",
    });
  });

  it("records each step with a readable message", async () => {
    wellKnown.set("wk.test", "matrix.wk.test");
    dns.host("matrix.wk.test", "192.0.2.13");
    const result = await resolve("wk.test");
    expect(result.steps.map((s) => s.step)).toEqual(["parse", "well-known", "srv", "srv", "default-port", "address-lookup"]);
    expect(result.steps.map((s) => s.message)).toEqual([
      "server name wk.test: hostname wk.test, no port",
      "step 3: .well-known delegates to matrix.wk.test",
      "step 3.3: SRV _matrix-fed._tcp.matrix.wk.test: no records",
      "step 3.4: SRV _matrix._tcp.matrix.wk.test (deprecated): no records",
      "step 3.5: no SRV records, connect to matrix.wk.test on port 8448",
      "matrix.wk.test resolves to 192.0.2.13",
    ]);
  });
});

describe("resolveServer: no valid .well-known (steps 4-6)", () => {
  it("4: _matrix-fed._tcp SRV of the original hostname; Host and certificate are the hostname, never the SRV target", async () => {
    dns.service("_matrix-fed._tcp.srv.test", { name: "fed.example", port: 8454, priority: 0, weight: 0 });
    dns.host("fed.example", "192.0.2.14");
    const result = await resolve("srv.test");
    expect(result.ok && result.resolution).toMatchObject({
      rule: "4",
      host: "fed.example",
      port: 8454,
      hostHeader: "srv.test",
      tlsServerName: "srv.test",
      certificateName: "srv.test",
    });
    expect(result.steps[1]).toMatchObject({ step: "well-known", ok: false, reason: "http-status" });
  });

  it("5: the deprecated _matrix._tcp SRV when there is no _matrix-fed record", async () => {
    dns.service("_matrix._tcp.legacy.test", { name: "legacy.example", port: 8455, priority: 0, weight: 0 });
    dns.host("legacy.example", "192.0.2.15");
    expect(await resolved("legacy.test")).toMatchObject({ rule: "5", host: "legacy.example", port: 8455, hostHeader: "legacy.test" });
  });

  it("6: no SRV either: the hostname on 8448", async () => {
    expect(await resolved("plain.test")).toMatchObject({
      rule: "6",
      host: "plain.test",
      port: 8448,
      addresses: ["127.0.0.1"],
      hostHeader: "plain.test",
      certificateName: "plain.test",
    });
  });

  it.each([
    ["a 500 answer", 500],
    ["an unparsable 200 answer", 200],
  ])("falls back to SRV after %s", async (_label, status) => {
    wellKnown.set("bad.test", status);
    dns.service("_matrix-fed._tcp.bad.test", { name: "fed.example", port: 8456, priority: 0, weight: 0 });
    dns.host("fed.example", "192.0.2.16");
    expect(await resolved("bad.test")).toMatchObject({ rule: "4", port: 8456, hostHeader: "bad.test" });
  });

  it("falls back to SRV when nothing answers on the .well-known port", async () => {
    const result = await resolveServer("plain.test", { transport, wellKnownPort: await closedPort(), random: () => 0 });
    expect(result.ok && result.resolution.rule).toBe("6");
    expect(result.steps[1]).toMatchObject({ step: "well-known", ok: false, reason: "unreachable" });
  });

  it("orders several SRV targets by priority, keeping the unresolvable ones last", async () => {
    dns.service(
      "_matrix-fed._tcp.srv.test",
      { name: "backup.example", port: 2, priority: 20, weight: 0 },
      { name: "gone.example", port: 3, priority: 5, weight: 0 },
      { name: "main.example", port: 1, priority: 10, weight: 0 },
    );
    dns.host("main.example", "192.0.2.21").host("backup.example", "192.0.2.22");
    const resolution = await resolved("srv.test");
    expect(resolution.targets.map((t) => `${t.host}:${t.port}`)).toEqual(["main.example:1", "backup.example:2", "gone.example:3"]);
    expect(resolution.targets[2]?.lookupError).toMatch(/ENOTFOUND/);
    expect(resolution.host).toBe("main.example");
  });

  it("uses a cached .well-known answer without asking again", async () => {
    const cache = new WellKnownCache({ now: new TestClock().now });
    wellKnown.set("wk.test", "192.0.2.9");
    await resolve("wk.test", { wellKnownCache: cache });
    const again = await resolve("wk.test", { wellKnownCache: cache });
    expect(wellKnownServer.requests).toHaveLength(1);
    expect(again.steps[1]).toMatchObject({ step: "well-known", cached: true });
    expect(again.steps[1]?.message).toContain("(cached)");
  });
});

describe("resolveServer: failures are values naming the failed step", () => {
  it("refuses a name outside the server-name grammar", async () => {
    const result = await resolve("bad_name!");
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatchObject({ layer: "discovery", reason: "invalid-server-name", retryable: false });
    expect(result.steps).toEqual([{ step: "parse", ok: false, message: '"bad_name!" is not a valid server name (invalid-character)' }]);
  });

  it("stops at an SRV record whose target is '.' (RFC 2782: service unavailable)", async () => {
    dns.service("_matrix-fed._tcp.dot.test", { name: ".", port: 0, priority: 0, weight: 0 });
    const result = await resolve("dot.test");
    expect(!result.ok && result.error).toMatchObject({ reason: "srv-unavailable", retryable: false, destination: "dot.test" });
    expect(result.steps.at(-1)).toMatchObject({ step: "srv", outcome: "unavailable" });
    expect(dns.queries).not.toContain("SRV _matrix._tcp.dot.test");
  });

  it("stops, retryably, when the SRV query fails (not 'no such record')", async () => {
    dns.failing.add("_matrix-fed._tcp.srv.test");
    const result = await resolve("srv.test");
    expect(!result.ok && result.error).toMatchObject({ layer: "discovery", reason: "dns-failed", retryable: true });
    expect(result.steps.at(-1)).toMatchObject({ step: "srv", outcome: "failed" });
  });

  it("fails when the hostname has no addresses, with the steps so far", async () => {
    const result = await resolve("nowhere.test:8448");
    expect(!result.ok && result.error).toMatchObject({ reason: "host-not-found", retryable: false });
    expect(!result.ok && result.error.steps).toBe(result.steps);
    expect(result.steps.map((s) => s.step)).toEqual(["parse", "explicit-port", "address-lookup"]);
  });

  it("fails when no SRV target resolves", async () => {
    dns.service("_matrix-fed._tcp.srv.test", { name: "gone.example", port: 1, priority: 0, weight: 0 });
    const result = await resolve("srv.test");
    expect(!result.ok && result.error).toMatchObject({ reason: "host-not-found" });
  });

  it("reports a DNS failure of the hostname as retryable", async () => {
    dns.failing.add("flaky.test");
    const result = await resolve("flaky.test:8448");
    expect(!result.ok && result.error).toMatchObject({ reason: "dns-failed", retryable: true });
  });
});
