import { readFile } from "node:fs/promises";
import { generateSigningKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Homeserver, HomeserverInfo } from "./app.js";
import { createHomeserver } from "./app.js";
import type { OutboundFederation } from "./federation.js";
import { createOutboundFederation } from "./federation.js";
import type { TlsFiles } from "./test-helpers.js";
import { removeTemporaryDirectories, request, temporaryDirectory, testConfig, writeTlsFiles } from "./test-helpers.js";

const DAY = 86_400_000;
const ownKey = generateSigningKey("own");
let tls: TlsFiles;
let remote: Homeserver;
let remoteInfo: HomeserverInfo;
let remoteKeys: JsonObject & { verify_keys: Record<string, { key: string }> };
let outbound: OutboundFederation;

beforeAll(async () => {
  tls = await writeTlsFiles(await temporaryDirectory());
  remote = createHomeserver(testConfig(await temporaryDirectory(), { tls: { certFile: tls.certFile, keyFile: tls.keyFile } }));
  remoteInfo = await remote.start();
  remoteKeys = (await request(`${remoteInfo.address.url}/_matrix/key/v2/server`, { ca: tls.ca.cert })).json as typeof remoteKeys;
  outbound = createOutboundFederation({
    serverName: "self.invalid",
    signingKeys: [ownKey],
    caCertificates: [await readFile(tls.caFile)],
    allowedAddresses: ["127.0.0.0/8", "::1"],
  });
});

afterAll(async () => {
  outbound.close();
  await remote.stop();
  await removeTemporaryDirectories();
});

describe("the key resolver", () => {
  it("fetches another server's key from that server, valid for at most 7 days", async () => {
    const [keyId] = remoteInfo.keyIds;
    const before = Date.now();
    const keys = await outbound.keyResolver.getServerKeys(remoteInfo.serverName, [keyId!, "ed25519:unknown"]);
    expect([...keys.keys()]).toEqual([keyId]);
    const key = keys.get(keyId!)!;
    expect(Buffer.from(key.publicKey).toString("base64").replace(/=+$/, "")).toBe(remoteKeys.verify_keys[keyId!]!.key);
    expect(key.validUntilTs).toBeGreaterThan(before);
    expect(key.validUntilTs).toBeLessThanOrEqual(Date.now() + 7 * DAY);
  });

  it("knows our own keys without asking anyone", async () => {
    // self.invalid cannot be resolved: an answer can only come from the static keys.
    const keys = await outbound.keyResolver.getServerKeys("self.invalid", [ownKey.keyId]);
    expect(keys.get(ownKey.keyId)?.publicKey).toEqual(ownKey.publicKey);
  });

  it("answers nothing for a server that cannot be reached", async () => {
    const keys = await outbound.keyResolver.getServerKeys("localhost:1", ["ed25519:x"]);
    expect(keys.size).toBe(0);
  });
});

describe("the notary fetcher", () => {
  it("returns the origin's key response as the origin signed it", async () => {
    const responses = await outbound.notaryFetcher.fetchServerKeys(remoteInfo.serverName, Date.now());
    expect(responses).toHaveLength(1);
    expect(responses[0]!["server_name"]).toBe(remoteInfo.serverName);
    expect(responses[0]!["verify_keys"]).toEqual(remoteKeys.verify_keys);
    expect(Object.keys(responses[0]!["signatures"] as object)).toEqual([remoteInfo.serverName]);
  });

  it("rejects when the origin cannot be reached, naming the layer", async () => {
    await expect(outbound.notaryFetcher.fetchServerKeys("localhost:1", Date.now())).rejects.toMatchObject({
      name: "FederationRequestError",
      layer: "connect",
    });
  });
});
