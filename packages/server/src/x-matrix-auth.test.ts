import { encodeBase64, generateSigningKey, signRequest } from "@myelin/signing";
import type { JsonValue } from "@myelin/types";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { FederationRequest } from "./handler.js";
import { createFederationRouter } from "./router.js";
import type { TestRequest, TestServer } from "./test-support/harness.js";
import { TestKeyResolver, TestLogger, createPeer, send, signedRequest, startServer } from "./test-support/harness.js";
import { keyResolverFromLookup } from "./x-matrix-auth.js";

const US = "myelin.test";
const peer = createPeer("peer.test");
const secondKeyPeer = { serverName: peer.serverName, key: generateSigningKey("second") };
const other = createPeer("other.test");
const PATH = "/_matrix/federation/v1/send/txn1";
const JOIN_PATH = "/_matrix/federation/v1/make_join/!r%3Apeer.test/%40u%3Apeer.test?ver=10&ver=11";
const transaction: JsonValue = { origin: "peer.test", origin_server_ts: 1700000000000, pdus: [], edus: [] };

describe("X-Matrix request authentication", () => {
  let server: TestServer;
  let resolver: TestKeyResolver;
  const logger = new TestLogger();
  const seen: FederationRequest[] = [];

  beforeAll(async () => {
    const router = createFederationRouter({
      serverName: US,
      handlers: {
        send_transaction_message: {
          v1: (req) => {
            seen.push(req as unknown as FederationRequest);
            return { pdus: {} };
          },
        },
        create_join_event_template: {
          v1: (req) => {
            seen.push(req as unknown as FederationRequest);
            return { event: { sender: "@u:peer.test", state_key: "@u:peer.test", origin_server_ts: 1, type: "m.room.member", content: { membership: "join" } } };
          },
        },
        get_server_version: { v1: () => ({ server: { name: "t" } }) },
      },
      keyResolver: { getServerKeys: (...args) => resolver.getServerKeys(...args) },
      logger,
    });
    server = await startServer(router);
  });
  afterAll(() => server.close());
  beforeEach(() => {
    resolver = new TestKeyResolver().addPeer(peer).addPeer(secondKeyPeer).addPeer(other);
    seen.length = 0;
  });

  const put = (overrides: Partial<Parameters<typeof signedRequest>[0]> = {}) =>
    signedRequest({ peer, destination: US, method: "PUT", path: PATH, content: transaction, ...overrides });

  async function expectRefused(request: TestRequest, reason: RegExp) {
    const response = await send(server.port, request);
    expect(response.status).toBe(401);
    expect(response.json.errcode).toBe("M_UNAUTHORIZED");
    expect(response.json.error).toMatch(reason);
    expect(seen).toHaveLength(0);
  }

  it("accepts a correctly signed request and gives the handler the origin", async () => {
    const response = await send(server.port, put());
    expect(response.status).toBe(200);
    expect(seen[0]?.origin).toBe("peer.test");
    expect(resolver.calls).toEqual([{ serverName: "peer.test", keyIds: [peer.key.keyId] }]);
  });

  it("accepts a signed GET whose signature covers the query string as sent", async () => {
    const response = await send(server.port, signedRequest({ peer, destination: US, method: "GET", path: JOIN_PATH }));
    expect(response.status).toBe(200);
    expect(seen[0]?.query).toEqual({ ver: ["10", "11"] });
  });

  it("refuses a request without Authorization, before fetching keys", async () => {
    const { headers: _, ...unsigned } = put();
    await expectRefused(unsigned, /^Missing X-Matrix Authorization header$/);
    expect(resolver.calls).toHaveLength(0);
  });

  it("refuses an Authorization header of another scheme", async () => {
    await expectRefused({ ...put(), headers: { Authorization: "Bearer abc" } }, /Missing X-Matrix/);
  });

  it("refuses a malformed X-Matrix header", async () => {
    await expectRefused({ ...put(), headers: { Authorization: 'X-Matrix origin="peer.test",key' } }, /^Malformed X-Matrix/);
    await expectRefused({ ...put(), headers: { Authorization: 'X-Matrix origin="peer.test",key="ed25519:a"' } }, /missing-parameter.*sig/);
  });

  it("accepts a header without destination (servers before v1.3), checking the signature against our name", async () => {
    const request = put();
    const header = String(request.headers?.["Authorization"]).replace(/destination="[^"]*",/, "");
    expect(header).not.toMatch(/destination/);
    const response = await send(server.port, { ...request, headers: { ...request.headers, Authorization: header } });
    expect(response.status).toBe(200);
  });

  it("refuses a header whose destination is another server", async () => {
    await expectRefused(put({ destination: "elsewhere.test" }), /destination "elsewhere.test" is not this server/);
  });

  it("refuses a signature made for another destination while the header names us", async () => {
    const request = put({ destination: "elsewhere.test" });
    const header = String(request.headers?.["Authorization"]).replace('destination="elsewhere.test"', `destination="${US}"`);
    await expectRefused({ ...request, headers: { ...request.headers, Authorization: header } }, /^Invalid signature from peer.test/);
  });

  it("refuses an origin that is not a valid server name, without fetching keys", async () => {
    await expectRefused(put({ peer: { serverName: "bad origin!", key: peer.key } }), /"bad origin!" is not a valid server name/);
    expect(resolver.calls).toHaveLength(0);
  });

  it("refuses an unknown key", async () => {
    await expectRefused(put({ peer: { serverName: "peer.test", key: generateSigningKey("unknown") } }), /^Unknown key ed25519:unknown for peer.test$/);
  });

  it("refuses a key whose validity has passed, and an old key (old_verify_keys sign events only)", async () => {
    resolver = new TestKeyResolver().addPeer(peer, Date.now() - 1000);
    await expectRefused(put(), /expired/);
    resolver = new TestKeyResolver().add("peer.test", peer.key.keyId, { publicKey: peer.key.publicKey, expiredTs: Date.now() - 1 });
    await expectRefused(put(), /expired/);
  });

  it("refuses (401) when the origin's keys cannot be fetched, and logs the cause", async () => {
    resolver.failing = true;
    const before = logger.warnings.length;
    await expectRefused(put(), /^Could not fetch the signing keys of peer.test$/);
    const warning = logger.warnings.slice(before)[0];
    expect(String(warning?.context["cause"])).toMatch(/unreachable/);
  });

  it("refuses a signature by another key than the header names", async () => {
    const forged = put({ peer: other });
    const header = String(forged.headers?.["Authorization"])
      .replace('origin="other.test"', 'origin="peer.test"')
      .replace(other.key.keyId, peer.key.keyId);
    await expectRefused({ ...forged, headers: { ...forged.headers, Authorization: header } }, /^Invalid signature from peer.test/);
  });

  it("refuses a signature that is not Base64", async () => {
    const request = put();
    const header = String(request.headers?.["Authorization"]).replace(/sig="[^"]*"/, 'sig="!!!"');
    await expectRefused({ ...request, headers: { ...request.headers, Authorization: header } }, /^Malformed signature/);
  });

  it("refuses a request whose method, path, query or body differs from what was signed", async () => {
    await expectRefused(put({ sign: { method: "POST" } }), /^Invalid signature/);
    await expectRefused(put({ sign: { path: "/_matrix/federation/v1/send/txn2" } }), /^Invalid signature/);
    await expectRefused(put({ sign: { content: { ...(transaction as object), origin_server_ts: 1 } } }), /^Invalid signature/);
    await expectRefused(put({ sign: { content: undefined } }), /^Invalid signature/);
    await expectRefused(
      signedRequest({ peer, destination: US, method: "GET", path: JOIN_PATH, sign: { path: JOIN_PATH.replace("ver=11", "ver=12") } }),
      /^Invalid signature/,
    );
  });

  it("verifies against the target as sent, not a decoded or re-encoded one", async () => {
    // %21 and ! decode to the same room ID, but only what was sent is signed.
    const sent = "/_matrix/federation/v1/make_join/%21r%3Apeer.test/%40u%3Apeer.test";
    await expectRefused(
      signedRequest({ peer, destination: US, method: "GET", path: sent, sign: { path: sent.replace("%21", "!") } }),
      /^Invalid signature/,
    );
    const response = await send(server.port, signedRequest({ peer, destination: US, method: "GET", path: sent }));
    expect(response.status).toBe(200);
    expect(seen[0]?.params).toEqual({ roomId: "!r:peer.test", userId: "@u:peer.test" });
  });

  it("verifies the body as parsed, whatever its formatting on the wire", async () => {
    const request = put();
    const body = JSON.stringify(transaction, null, 2).replace('"pdus"', '"pd\\u0075s"');
    const response = await send(server.port, { ...request, body });
    expect(response.status).toBe(200);
  });

  it("ignores Authorization on unauthenticated endpoints", async () => {
    const response = await send(server.port, {
      method: "GET",
      path: "/_matrix/federation/v1/version",
      headers: { Authorization: "X-Matrix garbage" },
    });
    expect(response.status).toBe(200);
  });

  describe("several Authorization headers", () => {
    const headerOf = (request: TestRequest) => String(request.headers?.["Authorization"]);

    it("accepts two valid signatures by two keys of the origin", async () => {
      const response = await send(server.port, {
        ...put(),
        headers: { Authorization: [headerOf(put()), headerOf(put({ peer: secondKeyPeer }))] },
      });
      expect(response.status).toBe(200);
      expect(resolver.calls).toEqual([{ serverName: "peer.test", keyIds: [peer.key.keyId, secondKeyPeer.key.keyId] }]);
    });

    it("refuses when any of them fails, even if another is valid", async () => {
      const bad = headerOf(put({ peer: secondKeyPeer, sign: { method: "POST" } }));
      await expectRefused({ ...put(), headers: { Authorization: [headerOf(put()), bad] } }, /^Invalid signature.*second/);
      const unknown = headerOf(put({ peer: { serverName: "peer.test", key: generateSigningKey("gone") } }));
      await expectRefused({ ...put(), headers: { Authorization: [unknown, headerOf(put())] } }, /^Unknown key ed25519:gone/);
    });

    it("refuses headers from different origins", async () => {
      await expectRefused(
        { ...put(), headers: { Authorization: [headerOf(put()), headerOf(put({ peer: other }))] } },
        /disagree: origins peer.test and other.test/,
      );
    });

    it("ignores headers of other schemes next to a valid X-Matrix one", async () => {
      const response = await send(server.port, { ...put(), headers: { Authorization: ["Bearer x", headerOf(put())] } });
      expect(response.status).toBe(200);
    });
  });
});

describe("keyResolverFromLookup", () => {
  it("answers the keys the lookup knows, leaving out the others", async () => {
    const key = generateSigningKey("k");
    const resolver = keyResolverFromLookup((server, keyId) =>
      server === "a.test" && keyId === key.keyId ? { publicKey: key.publicKey } : undefined,
    );
    const keys = await resolver.getServerKeys("a.test", [key.keyId, "ed25519:other"]);
    expect([...keys.keys()]).toEqual([key.keyId]);
    expect(encodeBase64(keys.get(key.keyId)?.publicKey ?? new Uint8Array())).toBe(encodeBase64(key.publicKey));
  });

  it("feeds the router: a request signed with a looked-up key is accepted", async () => {
    const router = createFederationRouter({
      serverName: US,
      handlers: { send_transaction_message: { v1: () => ({ pdus: {} }) } },
      keyResolver: keyResolverFromLookup((_server, keyId) => (keyId === peer.key.keyId ? { publicKey: peer.key.publicKey } : undefined)),
    });
    const server = await startServer(router);
    try {
      const header = signRequest({ method: "PUT", uri: PATH, origin: "peer.test", destination: US, content: transaction, key: peer.key });
      const response = await send(server.port, { method: "PUT", path: PATH, headers: { Authorization: header }, body: JSON.stringify(transaction) });
      expect(response.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
