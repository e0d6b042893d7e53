import type { VerifyKey } from "@myelin/signing";
import { decodeBase64, encodeCanonicalJson, encodePublicKey, generateSigningKey, verifySignedJson } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFederationRouter } from "./router.js";
import type { ServerKeys } from "./server-keys.js";
import { DEFAULT_KEY_VALIDITY_MS, ServerKeysConfigError, createServerKeysPublisher } from "./server-keys.js";
import type { TestServer } from "./test-support/harness.js";
import { TestKeyResolver, send, startServer } from "./test-support/harness.js";

const US = "keys.test";
const current = generateSigningKey("current");
const second = generateSigningKey("second");
const retired = generateSigningKey("retired");
const HOUR = 3_600_000;

/** Checks `keys` is signed by `entity` with the keys it publishes itself. */
function verifySelfSignature(keys: ServerKeys, entity = keys.server_name) {
  const published = new Map<string, VerifyKey>(
    Object.entries(keys.verify_keys).map(([id, { key }]) => [id, { publicKey: decodeBase64(key) }]),
  );
  return verifySignedJson(keys as unknown as JsonObject, entity, (_server, keyId) => published.get(keyId));
}

describe("key server (GET /_matrix/key/v2/server)", () => {
  let server: TestServer;
  let clock = 1_700_000_000_000;
  const publisher = createServerKeysPublisher({
    serverName: US,
    signingKeys: [current, second],
    oldVerifyKeys: { [retired.keyId]: { key: encodePublicKey(retired), expired_ts: 1_600_000_000_000 } },
    now: () => clock,
  });

  beforeAll(async () => {
    server = await startServer(
      createFederationRouter({
        serverName: US,
        handlers: { get_server_keys: { v2: publisher.handler } },
        keyResolver: new TestKeyResolver(),
        validateResponses: true,
      }),
    );
  });
  afterAll(() => server.close());

  it("publishes current and old keys with valid_until_ts one day ahead, signed by every current key", async () => {
    const response = await send(server.port, { method: "GET", path: "/_matrix/key/v2/server" });
    expect(response.status).toBe(200);
    const keys = response.json as ServerKeys;
    expect(keys).toEqual({
      server_name: US,
      verify_keys: { [current.keyId]: { key: encodePublicKey(current) }, [second.keyId]: { key: encodePublicKey(second) } },
      old_verify_keys: { [retired.keyId]: { key: encodePublicKey(retired), expired_ts: 1_600_000_000_000 } },
      valid_until_ts: clock + DEFAULT_KEY_VALIDITY_MS,
      signatures: { [US]: { [current.keyId]: expect.any(String), [second.keyId]: expect.any(String) } },
    });
    expect(await verifySelfSignature(keys)).toEqual({ valid: true, keyIds: [current.keyId, second.keyId] });
  });

  it("serves canonical JSON bytes", async () => {
    const response = await send(server.port, { method: "GET", path: "/_matrix/key/v2/server" });
    expect(response.bytes.toString("utf8")).toBe(encodeCanonicalJson(response.json));
  });

  it("detects tampering: the self-signature no longer verifies if valid_until_ts is changed", async () => {
    const keys = publisher.current();
    const check = await verifySelfSignature({ ...keys, valid_until_ts: keys.valid_until_ts + 1 });
    expect(check).toMatchObject({ valid: false, reason: "bad-signature" });
  });

  it("re-signs only once half of the validity has passed", async () => {
    clock = 2_000_000_000_000;
    const first = publisher.current();
    expect(first.valid_until_ts).toBe(clock + DEFAULT_KEY_VALIDITY_MS);
    clock += DEFAULT_KEY_VALIDITY_MS / 2 - 1;
    expect(publisher.current()).toBe(first);
    clock += 1;
    const renewed = publisher.current();
    expect(renewed.valid_until_ts).toBe(clock + DEFAULT_KEY_VALIDITY_MS);
    expect(await verifySelfSignature(renewed)).toMatchObject({ valid: true });
  });

  it("refuses unusable options", () => {
    const base = { serverName: US, signingKeys: [current] };
    expect(() => createServerKeysPublisher({ ...base, serverName: "no such name!" })).toThrow(ServerKeysConfigError);
    expect(() => createServerKeysPublisher({ ...base, signingKeys: [] })).toThrow(/no-signing-keys/);
    expect(() => createServerKeysPublisher({ ...base, validityMs: HOUR })).toThrow(/invalid-validity/);
    expect(() => createServerKeysPublisher({ ...base, validityMs: 2 * HOUR })).not.toThrow();
    expect(() =>
      createServerKeysPublisher({ ...base, oldVerifyKeys: { [current.keyId]: { key: "AAAA", expired_ts: 1 } } }),
    ).toThrow(/duplicate-key-id/);
  });
});
