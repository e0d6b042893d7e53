import { readFile, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { join } from "node:path";
import { decodeBase64, encodePublicKey, parseSigningKeyFile, verifyJsonSignature } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Homeserver, HomeserverInfo } from "./app.js";
import { HOMESERVER_VERSION, HomeserverStartError, createHomeserver } from "./app.js";
import type { HomeserverConfig } from "./config.js";
import { DataDirError, SERVER_NAME_FILE, SIGNING_KEY_FILE } from "./data-dir.js";
import { createLogger } from "./log.js";
import type { TlsFiles } from "./test-helpers.js";
import { CapturedOutput, removeTemporaryDirectories, request, temporaryDirectory, testConfig, writeTlsFiles } from "./test-helpers.js";

const started: Homeserver[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.stop()));
});
afterAll(removeTemporaryDirectories);

async function start(config: HomeserverConfig, output?: CapturedOutput): Promise<{ homeserver: Homeserver; info: HomeserverInfo }> {
  const logger = output === undefined ? undefined : createLogger({ level: "debug", stdout: output, stderr: output });
  const homeserver = createHomeserver(config, logger === undefined ? {} : { logger });
  started.push(homeserver);
  return { homeserver, info: await homeserver.start() };
}

async function startError(config: HomeserverConfig): Promise<unknown> {
  const homeserver = createHomeserver(config);
  started.push(homeserver);
  try {
    await homeserver.start();
  } catch (error) {
    return error;
  }
  throw new Error("expected the homeserver to refuse to start");
}

/** Checks `object`'s signature by `entity` with every key `keys` lists; returns the key IDs checked. */
function verifiedBy(object: JsonObject, entity: string, keys: Record<string, { key: string }>): string[] {
  const checked: string[] = [];
  for (const [keyId, { key }] of Object.entries(keys)) {
    const check = verifyJsonSignature(object, entity, keyId, decodeBase64(key));
    if (!check.valid) throw new Error(`${entity} ${keyId}: ${check.reason}`);
    checked.push(keyId);
  }
  return checked;
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function canListen(port: number): Promise<boolean> {
  const probe = net.createServer();
  return new Promise((resolve) => {
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

let tls: TlsFiles;
beforeAll(async () => {
  tls = await writeTlsFiles(await temporaryDirectory());
});

describe("over plain HTTP", () => {
  it("answers the version endpoint with the implementation name and version", async () => {
    const { info } = await start(testConfig(await temporaryDirectory()));
    expect(info.address.url).toBe(`http://127.0.0.1:${info.address.port}`);
    const r = await request(`${info.address.url}/_matrix/federation/v1/version`);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.json).toEqual({ server: { name: "Myelin", version: HOMESERVER_VERSION } });
  });

  it("names itself localhost:<port bound> when no server name is configured", async () => {
    const { homeserver, info } = await start(testConfig(await temporaryDirectory()));
    expect(info.serverName).toBe(`localhost:${info.address.port}`);
    expect(homeserver.serverName).toBe(info.serverName);
    const keys = (await request(`${info.address.url}/_matrix/key/v2/server`)).json as JsonObject;
    expect(keys["server_name"]).toBe(info.serverName);
    expect(await readFile(join(info.dataDir, SERVER_NAME_FILE), "utf8")).toBe(`${info.serverName}\n`);
  });

  it("publishes the persisted signing key, self-signed, and the same one after a restart", async () => {
    const dataDir = await temporaryDirectory();
    const config = testConfig(dataDir, { serverName: "hs.test" });
    const first = await start(config);
    expect(first.info.createdSigningKey).toBe(true);
    const [fileKey] = parseSigningKeyFile(await readFile(join(dataDir, SIGNING_KEY_FILE), "utf8"));
    const response = (await request(`${first.info.address.url}/_matrix/key/v2/server`)).json as JsonObject & {
      verify_keys: Record<string, { key: string }>;
      valid_until_ts: number;
    };
    expect(response["server_name"]).toBe("hs.test");
    expect(response.verify_keys).toEqual({ [fileKey!.keyId]: { key: encodePublicKey(fileKey!) } });
    expect(verifiedBy(response, "hs.test", response.verify_keys)).toEqual([fileKey!.keyId]);
    expect(response.valid_until_ts).toBeGreaterThan(Date.now());
    await first.homeserver.stop();

    const second = await start(config);
    expect(second.info.createdSigningKey).toBe(false);
    expect(second.info.keyIds).toEqual([fileKey!.keyId]);
    const again = (await request(`${second.info.address.url}/_matrix/key/v2/server`)).json as JsonObject;
    expect(again["verify_keys"]).toEqual(response.verify_keys);
  });

  it("answers unknown paths with 404 M_UNRECOGNIZED", async () => {
    const { info } = await start(testConfig(await temporaryDirectory()));
    const r = await request(`${info.address.url}/_matrix/federation/v1/nothing-here`);
    expect(r.status).toBe(404);
    expect((r.json as JsonObject)["errcode"]).toBe("M_UNRECOGNIZED");
    const wellKnown = await request(`${info.address.url}/.well-known/matrix/server`);
    expect(wellKnown.status).toBe(404);
  });

  it("serves /.well-known/matrix/server delegation when configured", async () => {
    const { info } = await start(testConfig(await temporaryDirectory(), { wellKnownServer: "matrix.example.org:443" }));
    const r = await request(`${info.address.url}/.well-known/matrix/server`);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(r.json).toEqual({ "m.server": "matrix.example.org:443" });
  });

  it("logs one line per request with method, path without query, status, time and claimed origin", async () => {
    const output = new CapturedOutput();
    const { info } = await start(testConfig(await temporaryDirectory()), output);
    await request(`${info.address.url}/_matrix/federation/v1/version?secret=1`);
    await request(`${info.address.url}/_matrix/federation/v1/query/directory?room_alias=%23a:b.test`, {
      headers: { Authorization: 'X-Matrix origin="other.test",key="ed25519:k",sig="c2ln"' },
    });
    const lines = output.lines.filter((line) => / INFO (GET|POST) /.test(line));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO GET \/_matrix\/federation\/v1\/version 200 \d+ms origin=-$/);
    expect(lines[1]).toMatch(/ INFO GET \/_matrix\/federation\/v1\/query\/directory 401 \d+ms origin=other\.test$/);
  });

  it("stops listening when stopped", async () => {
    const { homeserver, info } = await start(testConfig(await temporaryDirectory()));
    await homeserver.stop();
    expect(homeserver.address).toBeUndefined();
    await expect(request(`${info.address.url}/_matrix/federation/v1/version`)).rejects.toThrow(/ECONNREFUSED/);
    expect(await canListen(info.address.port)).toBe(true);
  });
});

describe("over TLS", () => {
  it("serves HTTPS with the configured certificate", async () => {
    const { info } = await start(testConfig(await temporaryDirectory(), { tls: { certFile: tls.certFile, keyFile: tls.keyFile } }));
    expect(info.address.url).toBe(`https://127.0.0.1:${info.address.port}`);
    const r = await request(`${info.address.url}/_matrix/federation/v1/version`, { ca: tls.ca.cert });
    expect(r.json).toEqual({ server: { name: "Myelin", version: HOMESERVER_VERSION } });
  });

  it("listens on IPv6 loopback", async () => {
    const { info } = await start(
      testConfig(await temporaryDirectory(), { listen: { host: "::1", port: 0 }, tls: { certFile: tls.certFile, keyFile: tls.keyFile } }),
    );
    expect(info.address.url).toBe(`https://[::1]:${info.address.port}`);
    expect((await request(`${info.address.url}/_matrix/key/v2/server`, { ca: tls.ca.cert })).status).toBe(200);
  });
});

describe("the notary", () => {
  /** Server B on TLS (federation is HTTPS), and a notary A configured with `overrides`. */
  async function twoServers(overrides: Partial<HomeserverConfig>, output?: CapturedOutput) {
    const b = await start(testConfig(await temporaryDirectory(), { tls: { certFile: tls.certFile, keyFile: tls.keyFile } }));
    const a = await start(testConfig(await temporaryDirectory(), overrides), output);
    const bKeys = (await request(`${b.info.address.url}/_matrix/key/v2/server`, { ca: tls.ca.cert })).json as JsonObject & {
      verify_keys: Record<string, { key: string }>;
    };
    const aKeys = (await request(`${a.info.address.url}/_matrix/key/v2/server`)).json as JsonObject & {
      verify_keys: Record<string, { key: string }>;
    };
    return { a: a.info, b: b.info, aKeys, bKeys };
  }

  it("relays another reference server's keys signed by both servers", async () => {
    const { a, b, aKeys, bKeys } = await twoServers({ federationCaFiles: [tls.caFile], federationAllowIp: ["127.0.0.0/8"] });
    const r = await request(`${a.address.url}/_matrix/key/v2/query/${b.serverName}`);
    expect(r.status).toBe(200);
    const [relayed, ...rest] = (r.json as { server_keys: (JsonObject & { signatures: Record<string, unknown> })[] }).server_keys;
    expect(rest).toEqual([]);
    expect(relayed!["server_name"]).toBe(b.serverName);
    expect(relayed!["verify_keys"]).toEqual(bKeys.verify_keys);
    expect(Object.keys(relayed!.signatures).sort()).toEqual([a.serverName, b.serverName].sort());
    expect(verifiedBy(relayed!, b.serverName, bKeys.verify_keys)).toEqual(b.keyIds);
    expect(verifiedBy(relayed!, a.serverName, aKeys.verify_keys)).toEqual(a.keyIds);

    const batch = await request(`${a.address.url}/_matrix/key/v2/query`, {
      method: "POST",
      body: { server_keys: { [b.serverName]: {} } },
    });
    const [fromBatch] = (batch.json as { server_keys: JsonObject[] }).server_keys;
    expect(verifiedBy(fromBatch!, a.serverName, aKeys.verify_keys)).toEqual(a.keyIds);
    expect(verifiedBy(fromBatch!, b.serverName, bKeys.verify_keys)).toEqual(b.keyIds);
  });

  it("does not reach a loopback server unless --federation-allow-ip covers it", async () => {
    const output = new CapturedOutput();
    const { a, b } = await twoServers({ federationCaFiles: [tls.caFile] }, output);
    const r = await request(`${a.address.url}/_matrix/key/v2/query/${b.serverName}`);
    expect(r.json).toEqual({ server_keys: [] });
    expect(output.text).toMatch(/WARN notary: could not fetch a server's keys .*refusing to connect to 127\.0\.0\.1/);
  });

  it("does not trust the other server's certificate without --federation-ca", async () => {
    const output = new CapturedOutput();
    const { a, b } = await twoServers({ federationAllowIp: ["127.0.0.0/8"] }, output);
    const r = await request(`${a.address.url}/_matrix/key/v2/query/${b.serverName}`);
    expect(r.json).toEqual({ server_keys: [] });
    expect(output.text).toMatch(/WARN notary: could not fetch a server's keys .*certificate/);
  });

  it("answers for itself from its own key server", async () => {
    const { info } = await start(testConfig(await temporaryDirectory()));
    const own = (await request(`${info.address.url}/_matrix/key/v2/server`)).json;
    const r = await request(`${info.address.url}/_matrix/key/v2/query/${info.serverName}`);
    expect(r.json).toEqual({ server_keys: [own] });
  });
});

describe("refusing to start", () => {
  it("with a server name other than the data's, before taking the port", async () => {
    const dataDir = await temporaryDirectory();
    await writeFile(join(dataDir, SERVER_NAME_FILE), "old.test\n");
    const port = await freePort();
    const error = await startError(testConfig(dataDir, { serverName: "new.test", listen: { host: "127.0.0.1", port } }));
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as DataDirError).reason).toBe("server-name-changed");
    expect(await canListen(port)).toBe(true);
  });

  it("with a derived server name other than the data's, releasing the port", async () => {
    const dataDir = await temporaryDirectory();
    await writeFile(join(dataDir, SERVER_NAME_FILE), "old.test\n");
    const port = await freePort();
    const homeserver = createHomeserver(testConfig(dataDir, { listen: { host: "127.0.0.1", port } }));
    await expect(homeserver.start()).rejects.toThrow(`belongs to server name old.test, not localhost:${port}`);
    expect(homeserver.address).toBeUndefined();
    expect(await canListen(port)).toBe(true);
  });

  it("with a corrupt signing key", async () => {
    const dataDir = await temporaryDirectory();
    await writeFile(join(dataDir, SIGNING_KEY_FILE), "ed25519 a_bcde notbase64!\n");
    const error = await startError(testConfig(dataDir));
    expect((error as DataDirError).reason).toBe("corrupt-signing-key");
    expect(await readFile(join(dataDir, SIGNING_KEY_FILE), "utf8")).toBe("ed25519 a_bcde notbase64!\n");
  });

  it("when the port is taken", async () => {
    const { info } = await start(testConfig(await temporaryDirectory()));
    const error = await startError(testConfig(await temporaryDirectory(), { serverName: "b.test", listen: { host: "127.0.0.1", port: info.address.port } }));
    expect(error).toBeInstanceOf(HomeserverStartError);
    expect((error as HomeserverStartError).reason).toBe("listen-failed");
    expect((error as Error).message).toMatch(new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${info.address.port}: .*EADDRINUSE.*another process uses this port`));
  });

  it("when a TLS or CA file cannot be read", async () => {
    const dir = await temporaryDirectory();
    const missing = join(dir, "missing.pem");
    const tlsError = await startError(testConfig(dir, { tls: { certFile: missing, keyFile: tls.keyFile } }));
    expect((tlsError as HomeserverStartError).reason).toBe("unreadable-file");
    expect((tlsError as Error).message).toMatch(`cannot read the TLS certificate ${missing}`);
    const caError = await startError(testConfig(dir, { federationCaFiles: [missing] }));
    expect((caError as Error).message).toMatch(`cannot read the federation CA ${missing}`);
  });

  it("when the TLS files do not hold a certificate and key", async () => {
    const dir = await temporaryDirectory();
    const error = await startError(testConfig(dir, { tls: { certFile: tls.keyFile, keyFile: tls.certFile } }));
    expect((error as HomeserverStartError).reason).toBe("invalid-tls");
  });

  it("twice at once", async () => {
    const { homeserver } = await start(testConfig(await temporaryDirectory()));
    await expect(homeserver.start()).rejects.toMatchObject({ reason: "already-started" });
  });
});
