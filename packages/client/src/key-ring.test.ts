import type { SigningKey } from "@myelin/signing";
import { encodePublicKey, generateSigningKey, signJson, signRequest, verifyRequest } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { createTestCa } from "@myelin/test-support";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FederationClient } from "./client.js";
import type { KeyRingOptions, NotaryConfig } from "./key-ring.js";
import { KeyRing } from "./key-ring.js";
import type { TestServer } from "./test-support/servers.js";
import { LOOPBACK, TestClock, TestDns, sendJson, startHttpsServer } from "./test-support/servers.js";

const DAY = 86_400_000;

let server: TestServer;
let client: FederationClient;
let origin: string;
let notary: string;
let clock: TestClock;
const originKey = generateSigningKey("o1");
const rotatedKey = generateSigningKey("o2");
const strangerKey = generateSigningKey("o1");
const notaryKey = generateSigningKey("n1");

/** What the origin and the notary answer; tests set these. */
let originAnswer: (() => [number, unknown]) | undefined;
let notaryAnswer: ((body: JsonObject) => [number, unknown]) | undefined;

beforeAll(async () => {
  const ca = createTestCa();
  server = await startHttpsServer({ certificate: ca.issue(["origin.test", "notary.test"]) });
  origin = `origin.test:${server.port}`;
  notary = `notary.test:${server.port}`;
  server.handler = (req, res) => {
    const host = req.headers.host ?? "";
    if (host === origin && req.url === "/_matrix/key/v2/server" && originAnswer !== undefined) {
      const [status, body] = originAnswer();
      return sendJson(res, status, body);
    }
    if (host === notary && req.url === "/_matrix/key/v2/query" && req.method === "POST" && notaryAnswer !== undefined) {
      const [status, body] = notaryAnswer(JSON.parse(req.body.toString()) as JsonObject);
      return sendJson(res, status, body);
    }
    sendJson(res, 404, { errcode: "M_UNRECOGNIZED", error: "" });
  };
  client = new FederationClient({
    serverName: "me.test",
    signingKey: generateSigningKey("me"),
    resolver: new TestDns().host("origin.test", "127.0.0.1").host("notary.test", "127.0.0.1"),
    tls: { ca: ca.cert },
    allowedAddresses: [...LOOPBACK],
    retry: false,
    discoveryCacheMs: 0,
  });
});

afterAll(async () => {
  client.close();
  await server.close();
});

beforeEach(() => {
  clock = new TestClock();
  originAnswer = undefined;
  notaryAnswer = undefined;
  server.requests.length = 0;
});

/** A `/key/v2/server` answer for `serverName`, self-signed by `signer`. */
function keysResponse(options: {
  serverName?: string;
  keys?: SigningKey[];
  signer?: SigningKey;
  validUntilTs?: number;
  old?: Record<string, { key: SigningKey; expiredTs: number }>;
}): JsonObject {
  const serverName = options.serverName ?? origin;
  const keys = options.keys ?? [originKey];
  const unsigned: JsonObject = {
    server_name: serverName,
    verify_keys: Object.fromEntries(keys.map((k) => [k.keyId, { key: encodePublicKey(k) }])),
    old_verify_keys: Object.fromEntries(
      Object.entries(options.old ?? {}).map(([id, { key, expiredTs }]) => [id, { key: encodePublicKey(key), expired_ts: expiredTs }]),
    ),
    valid_until_ts: options.validUntilTs ?? clock.time + DAY,
  };
  return signJson(unsigned, serverName, options.signer ?? keys[0] ?? originKey);
}

function ring(options: Partial<KeyRingOptions> = {}): KeyRing {
  return new KeyRing({ client, now: clock.now, ...options });
}

function notaries(): NotaryConfig[] {
  return [{ serverName: notary, verifyKeys: { [notaryKey.keyId]: encodePublicKey(notaryKey) } }];
}

const requestsTo = (host: string): number => server.requests.filter((r) => r.headers.host === host).length;

describe("KeyRing: keys from the origin", () => {
  it("fetches GET /_matrix/key/v2/server from the origin and returns the key with its validity", async () => {
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time + DAY })];
    const key = await ring().getVerifyKey(origin, originKey.keyId);
    expect(key).toEqual({ publicKey: originKey.publicKey, validUntilTs: clock.time + DAY });
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(["GET /_matrix/key/v2/server"]);
  });

  it("caps validity at 7 days from the fetch (rooms v5+)", async () => {
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time + 30 * DAY })];
    expect((await ring().getVerifyKey(origin, originKey.keyId))?.validUntilTs).toBe(clock.time + 7 * DAY);
  });

  it("serves the key from the cache until valid_until_ts, then refetches", async () => {
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time + DAY })];
    const keys = ring();
    await keys.getVerifyKey(origin, originKey.keyId);
    clock.advance(DAY);
    await keys.getVerifyKey(origin, originKey.keyId);
    expect(requestsTo(origin)).toBe(1);
    clock.advance(1);
    await keys.getVerifyKey(origin, originKey.keyId);
    expect(requestsTo(origin)).toBe(2);
  });

  it("refuses an answer not signed by its own verify_keys", async () => {
    originAnswer = () => [200, keysResponse({ signer: strangerKey })];
    const keys = ring();
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toBeUndefined();
    const report = await keys.fetchServerKeys(origin);
    expect(report.attempts).toEqual([
      { source: origin, via: "origin", outcome: "bad-self-signature", detail: "self-signature check failed (bad-signature for ed25519:o1)" },
    ]);
  });

  it("refuses an answer with only a signature by a key it does not list", async () => {
    const unsigned = keysResponse({ keys: [rotatedKey], signer: rotatedKey });
    originAnswer = () => [200, { ...unsigned, signatures: { [origin]: { [originKey.keyId]: "AAAA" } } }];
    const report = await ring().fetchServerKeys(origin);
    expect(report.attempts[0]).toMatchObject({ outcome: "bad-self-signature" });
  });

  it("refuses an answer for another server_name", async () => {
    originAnswer = () => [200, keysResponse({ serverName: "evil.test" })];
    const keys = ring();
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toBeUndefined();
    expect((await keys.fetchServerKeys(origin)).attempts[0]).toMatchObject({ outcome: "wrong-server-name" });
  });

  it("refuses a key that is not 32 bytes of Base64", async () => {
    const response = keysResponse({});
    originAnswer = () => [200, { ...response, verify_keys: { [originKey.keyId]: { key: "c2hvcnQ" } } }];
    expect((await ring().fetchServerKeys(origin)).attempts[0]).toMatchObject({ outcome: "malformed" });
  });

  it("keeps an expired answer's key, marked with its past validity, so requests signed with it fail", async () => {
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time - 1000 })];
    const keys = ring();
    const report = await keys.fetchServerKeys(origin, { keyId: originKey.keyId });
    expect(report).toMatchObject({ satisfied: false, attempts: [{ outcome: "stale" }] });
    const key = await keys.getVerifyKey(origin, originKey.keyId);
    expect(key?.validUntilTs).toBe(clock.time - 1000);
    const header = signRequest({ method: "GET", uri: "/x", origin, destination: "me.test", key: originKey });
    const verdict = await verifyRequest({ header, method: "GET", uri: "/x", destination: "me.test", lookupKey: keys.lookupKey, now: clock.time });
    expect(verdict).toMatchObject({ valid: false, reason: { code: "key-expired" } });
  });

  it("keeps old_verify_keys with their expired_ts", async () => {
    originAnswer = () => [200, keysResponse({ keys: [rotatedKey], old: { [originKey.keyId]: { key: originKey, expiredTs: clock.time - DAY } } })];
    const keys = ring();
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toEqual({ publicKey: originKey.publicKey, expiredTs: clock.time - DAY });
    expect(await keys.getVerifyKey(origin, rotatedKey.keyId)).toMatchObject({ publicKey: rotatedKey.publicKey });
    expect(requestsTo(origin)).toBe(1);
  });

  it("shares one fetch between concurrent lookups", async () => {
    originAnswer = () => [200, keysResponse({})];
    const keys = ring();
    const found = await Promise.all([1, 2, 3].map(() => keys.getVerifyKey(origin, originKey.keyId)));
    expect(found.every((k) => k !== undefined)).toBe(true);
    expect(requestsTo(origin)).toBe(1);
  });

  it("does not ask again for a while after every source failed (negative caching)", async () => {
    const keys = ring({ failureCacheMs: 60_000, minRefetchIntervalMs: 0 });
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toBeUndefined();
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toBeUndefined();
    expect(requestsTo(origin)).toBe(1);
    clock.advance(60_000);
    originAnswer = () => [200, keysResponse({})];
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toBeDefined();
    expect(requestsTo(origin)).toBe(2);
  });

  it("refetches for an unknown key ID (a rotation), at most once per interval", async () => {
    originAnswer = () => [200, keysResponse({})];
    const keys = ring({ minRefetchIntervalMs: 30_000 });
    await keys.getVerifyKey(origin, originKey.keyId);
    originAnswer = () => [200, keysResponse({ keys: [rotatedKey, originKey] })];
    expect(await keys.getVerifyKey(origin, rotatedKey.keyId)).toBeUndefined();
    expect(requestsTo(origin)).toBe(1);
    clock.advance(30_000);
    expect(await keys.getVerifyKey(origin, rotatedKey.keyId)).toMatchObject({ publicKey: rotatedKey.publicKey });
    expect(requestsTo(origin)).toBe(2);
  });

  it("refetches when asked for a validity the cached key lacks", async () => {
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time + DAY })];
    const keys = ring({ minRefetchIntervalMs: 0 });
    await keys.getVerifyKey(origin, originKey.keyId);
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time + 3 * DAY })];
    const key = await keys.getVerifyKey(origin, originKey.keyId, { minimumValidUntilTs: clock.time + 2 * DAY });
    expect(key?.validUntilTs).toBe(clock.time + 3 * DAY);
    expect(requestsTo(origin)).toBe(2);
  });

  it("answers pinned keys without fetching", async () => {
    const pinned = { publicKey: originKey.publicKey };
    expect(await ring({ staticKeys: { [origin]: { [originKey.keyId]: pinned } } }).getVerifyKey(origin, originKey.keyId)).toBe(pinned);
    expect(server.requests).toHaveLength(0);
  });

  it("serves as the KeyLookup of verifyRequest", async () => {
    originAnswer = () => [200, keysResponse({})];
    const header = signRequest({ method: "PUT", uri: "/_matrix/federation/v1/send/1", origin, destination: "me.test", content: {}, key: originKey });
    const verdict = await verifyRequest({
      header,
      method: "PUT",
      uri: "/_matrix/federation/v1/send/1",
      destination: "me.test",
      content: {},
      lookupKey: ring().lookupKey,
      now: clock.time,
    });
    expect(verdict).toEqual({ valid: true, origin, keyId: originKey.keyId });
  });
});

describe("KeyRing: notaries", () => {
  function notarised(response: JsonObject, signer: SigningKey = notaryKey): JsonObject {
    return signJson(response, notary, signer);
  }

  it("falls back to a notary when the origin fails, asking with minimum_valid_until_ts", async () => {
    originAnswer = () => [500, { errcode: "M_UNKNOWN", error: "" }];
    let asked: JsonObject | undefined;
    notaryAnswer = (body) => {
      asked = body;
      return [200, { server_keys: [notarised(keysResponse({}))] }];
    };
    const keys = ring({ notaries: notaries() });
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toMatchObject({ publicKey: originKey.publicKey });
    expect(asked).toEqual({ server_keys: { [origin]: { [originKey.keyId]: { minimum_valid_until_ts: clock.time } } } });
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(["GET /_matrix/key/v2/server", "POST /_matrix/key/v2/query"]);
  });

  it("does not ask notaries when the origin's answer suffices", async () => {
    originAnswer = () => [200, keysResponse({})];
    notaryAnswer = () => [200, { server_keys: [] }];
    await ring({ notaries: notaries() }).getVerifyKey(origin, originKey.keyId);
    expect(requestsTo(notary)).toBe(0);
  });

  it("asks a notary for a fresher copy when the origin's answer has expired", async () => {
    originAnswer = () => [200, keysResponse({ validUntilTs: clock.time - 1 })];
    notaryAnswer = () => [200, { server_keys: [notarised(keysResponse({ validUntilTs: clock.time + DAY }))] }];
    const keys = ring({ notaries: notaries() });
    const report = await keys.fetchServerKeys(origin, { keyId: originKey.keyId });
    expect(report.attempts.map((a) => `${a.via}:${a.outcome}`)).toEqual(["origin:stale", "notary:stored"]);
    expect(report.satisfied).toBe(true);
    expect((await keys.getVerifyKey(origin, originKey.keyId))?.validUntilTs).toBe(clock.time + DAY);
  });

  it("refuses a notary answer not signed by the notary's configured key", async () => {
    notaryAnswer = () => [200, { server_keys: [notarised(keysResponse({}), generateSigningKey("n1"))] }];
    const keys = ring({ notaries: notaries() });
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toBeUndefined();
    const report = await keys.fetchServerKeys(origin);
    expect(report.attempts.map((a) => `${a.via}:${a.outcome}`)).toEqual(["origin:request-failed", "notary:bad-notary-signature"]);
  });

  it("refuses a notarised copy lacking the origin's own valid signature", async () => {
    notaryAnswer = () => [200, { server_keys: [notarised(keysResponse({ signer: strangerKey }))] }];
    const report = await ring({ notaries: notaries() }).fetchServerKeys(origin);
    expect(report.attempts[1]).toMatchObject({ via: "notary", outcome: "bad-self-signature" });
  });

  it("ignores entries for other servers and reports a notary with nothing", async () => {
    notaryAnswer = () => [200, { server_keys: [notarised(keysResponse({ serverName: "else.test" }))] }];
    const report = await ring({ notaries: notaries() }).fetchServerKeys(origin);
    expect(report.attempts[1]).toMatchObject({ via: "notary", outcome: "no-answer" });
    expect(report.satisfied).toBe(false);
  });

  it("does not let a notary's older copy undo the origin's newer answer", async () => {
    originAnswer = () => [200, keysResponse({ keys: [rotatedKey], old: { [originKey.keyId]: { key: originKey, expiredTs: clock.time - 1 } }, validUntilTs: clock.time + 2 * DAY })];
    notaryAnswer = () => [200, { server_keys: [notarised(keysResponse({ validUntilTs: clock.time + DAY }))] }];
    const keys = ring({ notaries: notaries() });
    // The origin lacks a current o1, so the notary is asked; its copy is older and loses.
    await keys.fetchServerKeys(origin, { keyId: originKey.keyId });
    expect(await keys.getVerifyKey(origin, originKey.keyId)).toEqual({ publicKey: originKey.publicKey, expiredTs: clock.time - 1 });
  });

  it("refuses a notary configured with a malformed key", () => {
    expect(() => ring({ notaries: [{ serverName: notary, verifyKeys: { "ed25519:x": "nope" } }] })).toThrow(TypeError);
  });
});
