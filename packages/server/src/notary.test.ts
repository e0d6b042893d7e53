import { encodePublicKey, generateSigningKey, verifySignedJson } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { NotaryFetcher } from "./notary.js";
import { createNotaryHandlers } from "./notary.js";
import { createFederationRouter } from "./router.js";
import type { ServerKeys } from "./server-keys.js";
import { DEFAULT_KEY_VALIDITY_MS, createServerKeysPublisher } from "./server-keys.js";
import type { TestServer } from "./test-support/harness.js";
import { TestKeyResolver, TestLogger, send, startServer } from "./test-support/harness.js";

const NOTARY = "notary.test";
const notaryKey = generateSigningKey("notary");
const remoteKey = generateSigningKey("remote");
const MINUTE = 60_000;

let clock = 1_700_000_000_000;
const remote = createServerKeysPublisher({ serverName: "remote.test", signingKeys: [remoteKey], now: () => clock });
const ownKeys = createServerKeysPublisher({ serverName: NOTARY, signingKeys: [notaryKey], now: () => clock });

/** A fetcher that answers from publishers, or fails, as the test sets it up. */
class TestFetcher implements NotaryFetcher {
  readonly calls: { serverName: string; minimumValidUntilTs: number }[] = [];
  readonly servers = new Map<string, () => readonly JsonObject[]>();
  async fetchServerKeys(serverName: string, minimumValidUntilTs: number): Promise<readonly JsonObject[]> {
    this.calls.push({ serverName, minimumValidUntilTs });
    const answer = this.servers.get(serverName);
    if (answer === undefined) throw new Error(`${serverName} unreachable (test)`);
    return answer();
  }
}

async function verifyBy(keys: ServerKeys, entity: string, publicKey: Uint8Array, keyId: string) {
  return verifySignedJson(keys as unknown as JsonObject, entity, (_s, id) => (id === keyId ? { publicKey } : undefined));
}

describe("notary (GET /_matrix/key/v2/query/{serverName}, POST /_matrix/key/v2/query)", () => {
  let server: TestServer;
  let fetcher: TestFetcher;
  const logger = new TestLogger();

  beforeAll(async () => {
    const handlers = createNotaryHandlers({
      serverName: NOTARY,
      signingKeys: [notaryKey],
      fetcher: { fetchServerKeys: (name, min) => fetcher.fetchServerKeys(name, min) },
      ownKeys,
      now: () => clock,
      logger,
    });
    server = await startServer(
      createFederationRouter({ serverName: NOTARY, handlers, keyResolver: new TestKeyResolver(), validateResponses: true }),
    );
  });
  afterAll(() => server.close());
  beforeEach(() => {
    clock += 10 * DEFAULT_KEY_VALIDITY_MS; // every test starts with an expired cache
    fetcher = new TestFetcher();
    fetcher.servers.set("remote.test", () => [remote.current()]);
  });

  const query = async (serverName: string, minimum?: number) => {
    const path = `/_matrix/key/v2/query/${encodeURIComponent(serverName)}` + (minimum === undefined ? "" : `?minimum_valid_until_ts=${minimum}`);
    return send(server.port, { method: "GET", path });
  };
  const batch = (body: unknown) =>
    send(server.port, { method: "POST", path: "/_matrix/key/v2/query", body: JSON.stringify(body) });

  it("relays the server's response with its own signature intact and the notary's added", async () => {
    const response = await query("remote.test");
    expect(response.status).toBe(200);
    const [keys, ...rest] = response.json.server_keys as ServerKeys[];
    expect(rest).toEqual([]);
    expect(keys?.verify_keys).toEqual({ [remoteKey.keyId]: { key: encodePublicKey(remoteKey) } });
    expect(await verifyBy(keys as ServerKeys, "remote.test", remoteKey.publicKey, remoteKey.keyId)).toMatchObject({ valid: true });
    expect(await verifyBy(keys as ServerKeys, NOTARY, notaryKey.publicKey, notaryKey.keyId)).toMatchObject({ valid: true });
    expect(fetcher.calls).toEqual([{ serverName: "remote.test", minimumValidUntilTs: clock }]);
  });

  it("serves from the cache for half of the response's lifetime, then fetches again", async () => {
    await query("remote.test");
    clock += DEFAULT_KEY_VALIDITY_MS / 2 - 1;
    await query("remote.test");
    expect(fetcher.calls).toHaveLength(1);
    clock += 1;
    await query("remote.test");
    expect(fetcher.calls).toHaveLength(2);
  });

  it("fetches again for a minimum_valid_until_ts the cached response does not reach", async () => {
    await query("remote.test");
    const cachedUntil = clock + DEFAULT_KEY_VALIDITY_MS;
    await query("remote.test", cachedUntil);
    expect(fetcher.calls).toHaveLength(1);
    clock += 2 * MINUTE;
    await query("remote.test", cachedUntil + 2 * DEFAULT_KEY_VALIDITY_MS);
    expect(fetcher.calls.map((c) => c.minimumValidUntilTs)).toEqual([clock - 2 * MINUTE, cachedUntil + 2 * DEFAULT_KEY_VALIDITY_MS]);
  });

  it("does not fetch again within a minute for an unreachable minimum (keys published for a short time)", async () => {
    await query("remote.test");
    await query("remote.test", clock + 30 * DEFAULT_KEY_VALIDITY_MS);
    expect(fetcher.calls).toHaveLength(1);
  });

  it("keeps serving the last response when the server cannot be reached", async () => {
    const first = await query("remote.test");
    fetcher.servers.delete("remote.test");
    clock += DEFAULT_KEY_VALIDITY_MS * 3;
    const stale = await query("remote.test");
    expect(fetcher.calls).toHaveLength(2);
    expect(stale.json).toEqual(first.json);
  });

  it("answers an empty list for a server it cannot reach and never reached", async () => {
    const response = await query("unreachable.test");
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ server_keys: [] });
    expect(String(logger.warnings.at(-1)?.context["error"])).toMatch(/unreachable/);
  });

  it("does not relay a response whose self-signature does not verify, or that names another server", async () => {
    const forged = createServerKeysPublisher({ serverName: "forged.test", signingKeys: [remoteKey], now: () => clock });
    fetcher.servers.set("forged.test", () => [{ ...forged.current(), valid_until_ts: clock + 365 * DEFAULT_KEY_VALIDITY_MS }]);
    expect((await query("forged.test")).json).toEqual({ server_keys: [] });
    expect(logger.warnings.at(-1)?.context["problem"]).toBe("self-signature: bad-signature");

    fetcher.servers.set("impostor.test", () => [remote.current()]);
    expect((await query("impostor.test")).json).toEqual({ server_keys: [] });
    expect(logger.warnings.at(-1)?.context["problem"]).toBe("server_name is not the server asked for");
  });

  it("answers for itself from its own key server, without fetching", async () => {
    const response = await query(NOTARY);
    expect(response.json).toEqual({ server_keys: [ownKeys.current()] });
    expect(fetcher.calls).toEqual([]);
  });

  it("answers 400 M_INVALID_PARAM for a path parameter that is not a server name", async () => {
    const response = await query("not a server");
    expect(response.status).toBe(400);
    expect(response.json.errcode).toBe("M_INVALID_PARAM");
  });

  it("answers a batch query for several servers, leaving out unreachable ones", async () => {
    const response = await batch({
      server_keys: {
        "remote.test": { [remoteKey.keyId]: { minimum_valid_until_ts: clock + 1000 } },
        "unreachable.test": {},
        [NOTARY]: {},
      },
    });
    expect(response.status).toBe(200);
    const names = (response.json.server_keys as ServerKeys[]).map((k) => k.server_name);
    expect(names.sort()).toEqual([NOTARY, "remote.test"]);
    expect(fetcher.calls).toContainEqual({ serverName: "remote.test", minimumValidUntilTs: clock + 1000 });
  });

  it("fetches again within the half-life when a batch asks for a key ID the cached response lacks", async () => {
    await batch({ server_keys: { "remote.test": {} } });
    clock += 2 * MINUTE;
    await batch({ server_keys: { "remote.test": { [remoteKey.keyId]: {} } } });
    expect(fetcher.calls).toHaveLength(1);
    await batch({ server_keys: { "remote.test": { "ed25519:rotated": {} } } });
    expect(fetcher.calls).toHaveLength(2);
  });

  it("answers an empty list for a batch without servers", async () => {
    const response = await batch({ server_keys: {} });
    expect(response.json).toEqual({ server_keys: [] });
  });

  it("fetches a server once for concurrent queries", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowFetcher = fetcher.fetchServerKeys.bind(fetcher);
    fetcher.fetchServerKeys = async (name, min) => {
      await gate;
      return slowFetcher(name, min);
    };
    const pending = Promise.all([query("remote.test"), query("remote.test"), query("remote.test")]);
    setTimeout(release, 50);
    const responses = await pending;
    expect(responses.map((r) => r.json.server_keys.length)).toEqual([1, 1, 1]);
    expect(fetcher.calls).toHaveLength(1);
  });
});

describe("notary response checks", () => {
  it("does not relay a response whose verify_keys are not Base64", async () => {
    const handlers = createNotaryHandlers({
      serverName: NOTARY,
      signingKeys: [notaryKey],
      fetcher: {
        fetchServerKeys: async () => [
          { server_name: "remote.test", verify_keys: { "ed25519:x": { key: "%%%" } }, valid_until_ts: 1, signatures: {} },
        ],
      },
    });
    const result = await handlers.get_remote_server_keys.v2({
      params: { serverName: "remote.test" },
      query: {},
    } as never);
    expect(result).toEqual({ server_keys: [] });
  });
});
