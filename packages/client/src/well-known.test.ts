import { createTestCa } from "@myelin/test-support";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HttpsTransport } from "./https-transport.js";
import type { Handler, TestServer } from "./test-support/servers.js";
import { LOOPBACK, TestClock, TestDns, closedPort, sendJson, startHttpsServer } from "./test-support/servers.js";
import type { WellKnownFetch } from "./well-known.js";
import { WellKnownCache, cachePolicy, fetchWellKnown } from "./well-known.js";

let server: TestServer;
let transport: HttpsTransport;
const dns = new TestDns().host("example.test", "127.0.0.1").host("redirect.test", "127.0.0.1").host("private.test", "10.0.0.7");

beforeAll(async () => {
  const ca = createTestCa();
  server = await startHttpsServer({ certificate: ca.issue(["example.test", "redirect.test", "127.0.0.1"]) });
  transport = new HttpsTransport({ resolver: dns, tls: { ca: ca.cert }, allowedAddresses: [...LOOPBACK] });
});

afterAll(async () => {
  transport.close();
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

const fetch = (hostname = "example.test"): Promise<WellKnownFetch> => fetchWellKnown(hostname, { transport, port: server.port });

function answer(handler: Handler): void {
  server.handler = handler;
}

describe("fetchWellKnown", () => {
  it("reads m.server from https://<hostname>/.well-known/matrix/server, with Host and SNI for the hostname", async () => {
    answer((_req, res) => sendJson(res, 200, { "m.server": "delegated.test:443" }));
    const result = await fetch();
    expect(result).toMatchObject({ ok: true, server: "delegated.test:443", headerTtlMs: undefined, noStore: false });
    const [request] = server.requests;
    expect(request).toMatchObject({ method: "GET", url: "/.well-known/matrix/server", servername: "example.test" });
    expect(request?.headers.host).toBe(`example.test:${server.port}`);
  });

  it("follows redirects, to other hosts too, and reports every URL", async () => {
    answer((req, res) => {
      if (req.headers.host?.startsWith("example.test")) {
        res.writeHead(301, { Location: `https://redirect.test:${server.port}/moved` }).end();
      } else if (req.url === "/moved") {
        res.writeHead(307, { Location: "/final" }).end();
      } else {
        sendJson(res, 200, { "m.server": "delegated.test" });
      }
    });
    const result = await fetch();
    expect(result).toMatchObject({ ok: true, server: "delegated.test" });
    expect(result.urls).toEqual([
      `https://example.test:${server.port}/.well-known/matrix/server`,
      `https://redirect.test:${server.port}/moved`,
      `https://redirect.test:${server.port}/final`,
    ]);
    expect(server.requests.map((r) => r.servername)).toEqual(["example.test", "redirect.test", "redirect.test"]);
  });

  it("stops at a redirect loop", async () => {
    answer((req, res) => res.writeHead(302, { Location: req.url === "/a" ? "/b" : "/a" }).end());
    const result = await fetch();
    expect(result).toMatchObject({ ok: false, reason: "redirect-loop", transient: false });
    expect(server.requests.map((r) => r.url)).toEqual(["/.well-known/matrix/server", "/a", "/b"]);
  });

  it("stops after 10 redirects", async () => {
    answer((req, res) => res.writeHead(302, { Location: `/r${server.requests.length}` }).end());
    const result = await fetch();
    expect(result).toMatchObject({ ok: false, reason: "too-many-redirects" });
    expect(server.requests).toHaveLength(11);
  });

  it("refuses a redirect to plain HTTP", async () => {
    answer((_req, res) => res.writeHead(301, { Location: "http://169.254.169.254/latest/meta-data" }).end());
    expect(await fetch()).toMatchObject({ ok: false, reason: "invalid-redirect" });
    expect(server.requests).toHaveLength(1);
  });

  it("does not follow a redirect to a private address", async () => {
    answer((_req, res) => res.writeHead(302, { Location: "https://private.test/.well-known/matrix/server" }).end());
    const result = await fetch();
    expect(result).toMatchObject({ ok: false, reason: "unreachable" });
    expect(result.ok === false && result.detail).toMatch(/refusing to connect to 10\.0\.0\.7/);
  });

  it("refuses a body over 50 KiB (CVE-2021-21274)", async () => {
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test", padding: "x".repeat(51 * 1024) }));
    expect(await fetch()).toMatchObject({ ok: false, reason: "too-large" });
  });

  it.each([
    ["invalid JSON", "{not json", "invalid-json"],
    ["a JSON array", '["m.server"]', "not-an-object"],
    ["no m.server", '{"m.other": "x"}', "missing-m.server"],
    ["m.server not a string", '{"m.server": 8448}', "invalid-m.server"],
    ["m.server not a server name", '{"m.server": "bad name:99999"}', "invalid-m.server"],
  ])("treats %s as no delegation", async (_label, body, reason) => {
    answer((_req, res) => res.writeHead(200, { "Content-Type": "application/json" }).end(body));
    expect(await fetch()).toMatchObject({ ok: false, reason, transient: false });
  });

  it("treats a non-200 status as no delegation, transient only for 5xx", async () => {
    answer((_req, res) => sendJson(res, 404, { errcode: "M_NOT_FOUND", error: "" }));
    expect(await fetch()).toMatchObject({ ok: false, reason: "http-status", status: 404, transient: false });
    answer((_req, res) => sendJson(res, 503, {}));
    expect(await fetch()).toMatchObject({ ok: false, reason: "http-status", status: 503, transient: true });
  });

  it("treats an unreachable host as a transient failure", async () => {
    const result = await fetchWellKnown("example.test", { transport, port: await closedPort() });
    expect(result).toMatchObject({ ok: false, reason: "unreachable", transient: true });
  });

  it("passes the caching headers on", async () => {
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "public, max-age=3600" }));
    expect(await fetch()).toMatchObject({ ok: true, headerTtlMs: 3_600_000 });
  });
});

describe("cachePolicy", () => {
  const now = Date.UTC(2026, 0, 1);
  it("reads max-age, no-store and Expires, max-age first", () => {
    expect(cachePolicy({ "cache-control": "max-age=60" }, now)).toEqual({ ttlMs: 60_000, noStore: false });
    expect(cachePolicy({ "cache-control": 'max-age="60", private' }, now)).toEqual({ ttlMs: 60_000, noStore: false });
    expect(cachePolicy({ "cache-control": "no-store, max-age=60" }, now)).toEqual({ ttlMs: 0, noStore: true });
    expect(cachePolicy({ expires: new Date(now + 90_000).toUTCString() }, now)).toEqual({ ttlMs: 90_000, noStore: false });
    expect(cachePolicy({ "cache-control": "max-age=5", expires: new Date(now + 90_000).toUTCString() }, now).ttlMs).toBe(5000);
  });

  it("counts an unparsable Expires as expired and no header as no opinion", () => {
    expect(cachePolicy({ expires: "0" }, now)).toEqual({ ttlMs: 0, noStore: false });
    expect(cachePolicy({}, now)).toEqual({ ttlMs: undefined, noStore: false });
  });
});

describe("WellKnownCache", () => {
  const MIN = 60_000;
  const HOUR = 60 * MIN;

  function setup(): { clock: TestClock; cache: WellKnownCache; lookup: () => ReturnType<WellKnownCache["lookup"]> } {
    const clock = new TestClock();
    const cache = new WellKnownCache({ now: clock.now });
    return { clock, cache, lookup: () => cache.lookup("example.test", () => fetchWellKnown("example.test", { transport, port: server.port, now: clock.now })) };
  }

  it("keeps an answer for its max-age", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "max-age=3600" }));
    expect(await lookup()).toMatchObject({ kind: "delegated", server: "a.test", cached: false });
    clock.advance(HOUR - 1000);
    expect(await lookup()).toMatchObject({ kind: "delegated", cached: true });
    expect(server.requests).toHaveLength(1);
    clock.advance(2000);
    expect(await lookup()).toMatchObject({ cached: false });
    expect(server.requests).toHaveLength(2);
  });

  it("caps a long max-age at 48 hours", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "max-age=604800" }));
    await lookup();
    clock.advance(48 * HOUR - 1000);
    await lookup();
    expect(server.requests).toHaveLength(1);
    clock.advance(2000);
    await lookup();
    expect(server.requests).toHaveLength(2);
  });

  it("keeps an answer without caching headers for 24 hours", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }));
    await lookup();
    clock.advance(24 * HOUR - 1000);
    await lookup();
    expect(server.requests).toHaveLength(1);
    clock.advance(2000);
    await lookup();
    expect(server.requests).toHaveLength(2);
  });

  it("keeps even a max-age=0 answer for 5 minutes, but never caches no-store", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "max-age=0" }));
    await lookup();
    clock.advance(5 * MIN - 1000);
    await lookup();
    expect(server.requests).toHaveLength(1);
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "no-store" }));
    clock.advance(2000);
    await lookup();
    await lookup();
    expect(server.requests).toHaveLength(3);
  });

  it("caches errors, backing off exponentially from 5 minutes up to one hour", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 404, {}));
    const ttls: number[] = [];
    for (let i = 0; i < 7; i++) {
      const result = await lookup();
      expect(result).toMatchObject({ kind: "none", reason: "http-status", cached: false, failures: i + 1 });
      ttls.push(result.expiresAt - clock.time);
      // Within the error's cache time, nothing is fetched.
      clock.advance(result.expiresAt - clock.time - 1);
      expect(await lookup()).toMatchObject({ kind: "none", cached: true });
      clock.advance(1);
    }
    expect(ttls).toEqual([5, 10, 20, 40, 60, 60, 60].map((m) => m * MIN));
    expect(server.requests).toHaveLength(7);
  });

  it("resets the backoff after a success", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 404, {}));
    await lookup();
    clock.advance(5 * MIN);
    await lookup();
    clock.advance(10 * MIN);
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "max-age=300" }));
    await lookup();
    clock.advance(5 * MIN);
    answer((_req, res) => sendJson(res, 404, {}));
    const result = await lookup();
    expect(result).toMatchObject({ kind: "none", failures: 1 });
    expect(result.expiresAt - clock.time).toBe(5 * MIN);
  });

  it("rides out a transient failure with the previous answer for 2 minutes", async () => {
    const { clock, lookup } = setup();
    answer((_req, res) => sendJson(res, 200, { "m.server": "a.test" }, { "Cache-Control": "max-age=600" }));
    await lookup();
    clock.advance(10 * MIN + 1);
    answer((_req, res) => sendJson(res, 503, {}));
    const during = await lookup();
    expect(during).toMatchObject({ kind: "delegated", server: "a.test", stale: true });
    expect(during.expiresAt - clock.time).toBe(2 * MIN);
    // A permanent failure is believed at once.
    clock.advance(2 * MIN);
    answer((_req, res) => sendJson(res, 404, {}));
    expect(await lookup()).toMatchObject({ kind: "none", reason: "http-status" });
  });

  it("shares one fetch between concurrent lookups of a hostname", async () => {
    const { lookup } = setup();
    answer((_req, res) => setTimeout(() => sendJson(res, 200, { "m.server": "a.test" }), 50));
    const results = await Promise.all([lookup(), lookup(), lookup()]);
    expect(results.map((r) => r.kind)).toEqual(["delegated", "delegated", "delegated"]);
    expect(server.requests).toHaveLength(1);
  });
});
