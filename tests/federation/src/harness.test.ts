// The harness itself, on what myelin-server already serves: three real processes with TLS
// from one test CA, each fetching the other two's keys through its notary endpoint (so each
// makes outbound federation requests to the others), and a server killed with SIGKILL
// coming back under the same name, port and key.
import { readFile } from "node:fs/promises";
import { decodeBase64, encodePublicKey, verifyJsonSignature } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { CsRequestError } from "@myelin/test-support";
import { getJson, sendRaw } from "./federation-request.js";
import { parseUserAddOutput, type TestServer } from "./harness.js";
import { useCluster } from "./use-cluster.js";

const cluster = useCluster({ names: ["a", "b", "c"] });

interface KeyResponse extends JsonObject {
  server_name: string;
  verify_keys: Record<string, { key: string }>;
}

const target = (server: TestServer) => ({ port: server.port, ca: cluster().ca.cert });

async function ownKeys(server: TestServer): Promise<KeyResponse> {
  const response = await getJson(target(server), "/_matrix/key/v2/server");
  expect(response.status, response.text).toBe(200);
  return response.body as KeyResponse;
}

/** Whether `json` carries a valid signature by `entity` under each of `keys`. */
function signedBy(json: JsonObject, entity: string, keys: KeyResponse): boolean {
  return Object.entries(keys.verify_keys).every(
    ([keyId, { key }]) => verifyJsonSignature(json, entity, keyId, decodeBase64(key)).valid,
  );
}

describe("a cluster of three myelin-server processes", () => {
  it("runs each server under its own localhost name, HTTPS certificate from the test CA and data directory", async () => {
    const servers = cluster().servers;
    expect(new Set(servers.map((s) => s.serverName)).size).toBe(3);
    expect(new Set(servers.map((s) => s.dataDir)).size).toBe(3);
    for (const server of servers) {
      expect(server.serverName).toBe(`localhost:${server.port}`);
      const version = await getJson(target(server), "/_matrix/federation/v1/version");
      expect(version.status).toBe(200);
      const keys = await ownKeys(server);
      expect(keys.server_name).toBe(server.serverName);
      expect(signedBy(keys, server.serverName, keys)).toBe(true);
      // The key the server publishes is the one kept in its data directory.
      const [stored] = await server.signingKeys();
      expect(keys.verify_keys[stored!.keyId]?.key).toBe(encodePublicKey(stored!));
      expect(await readFile(server.logFile, "utf8")).toContain(`myelin-server: ${server.serverName} listening on`);
    }
  });

  it("lets each server fetch the other two's keys through its notary endpoint, over TLS trusted through --federation-ca", async () => {
    const servers = cluster().servers;
    for (const notary of servers) {
      const notaryKeys = await ownKeys(notary);
      for (const other of servers.filter((s) => s !== notary)) {
        const response = await getJson(target(notary), `/_matrix/key/v2/query/${encodeURIComponent(other.serverName)}`);
        expect(response.status, `${notary.name} asking for ${other.name}'s keys: ${response.text}`).toBe(200);
        const [keys] = (response.body as { server_keys: KeyResponse[] }).server_keys;
        const direct = await ownKeys(other);
        expect(keys?.server_name).toBe(other.serverName);
        expect(keys?.verify_keys).toEqual(direct.verify_keys);
        expect(signedBy(keys!, other.serverName, direct)).toBe(true);
        expect(signedBy(keys!, notary.serverName, notaryKeys)).toBe(true);
      }
    }
  });

  it("restarts a server killed with SIGKILL under the same name and port, with the same signing key", async () => {
    const a = cluster().server("a");
    const b = cluster().server("b");
    const before = await ownKeys(b);
    await b.kill("SIGKILL");
    expect(b.running).toBe(false);
    await expect(sendRaw(target(b), { method: "GET", path: "/_matrix/federation/v1/version" })).rejects.toThrow(/ECONNREFUSED/);
    await b.restart();
    const after = await ownKeys(b);
    expect(after.server_name).toBe(b.serverName);
    expect(after.verify_keys).toEqual(before.verify_keys);
    // A still vouches for the same key of B, whether from its cache or fetched again.
    const viaNotary = await getJson(target(a), `/_matrix/key/v2/query/${encodeURIComponent(b.serverName)}`);
    expect((viaNotary.body as { server_keys: KeyResponse[] }).server_keys[0]?.verify_keys).toEqual(before.verify_keys);
  });

  it("stops a server gracefully and starts it again, one log file holding both runs", async () => {
    const c = cluster().server("c");
    await c.stop();
    expect(c.running).toBe(false);
    await c.start();
    const log = await readFile(c.logFile, "utf8");
    expect(log.match(/listening on/g)?.length).toBe(2);
    expect(log).toContain("stopping with SIGTERM");
  });
});

describe("the Client-Server API driver", () => {
  it("reports a Matrix error answer with its status and errcode", async () => {
    const a = cluster().server("a");
    const client = a.client({ userId: `@nobody:${a.serverName}`, accessToken: "not-a-token" });
    const error = await client.request("GET", "/org.example.no_such_endpoint").catch((e: unknown) => e);
    client.close();
    expect(error).toBeInstanceOf(CsRequestError);
    expect(error).toMatchObject({ reason: "matrix-error", status: 404, errcode: "M_UNRECOGNIZED" });
  });

  it("reports a server that is not there as a transport failure", async () => {
    const b = cluster().server("b");
    const client = b.client({ userId: `@nobody:${b.serverName}`, accessToken: "not-a-token" });
    await b.stop();
    const error = await client.joinedRooms().catch((e: unknown) => e);
    await b.start();
    client.close();
    expect(error).toMatchObject({ reason: "transport", status: undefined });
  });
});

describe("reading the output of `myelin-server user add`", () => {
  it("takes the user ID and token from a JSON object", () => {
    const out = 'created\n{"user_id":"@alice:localhost:1","access_token":"syt_abc"}\n';
    expect(parseUserAddOutput(out, "alice", "localhost:1")).toEqual({ userId: "@alice:localhost:1", accessToken: "syt_abc" });
  });

  it("takes a bare token from the last line and derives the user ID", () => {
    expect(parseUserAddOutput("tok_123\n", "bob", "localhost:2")).toEqual({ userId: "@bob:localhost:2", accessToken: "tok_123" });
  });

  it("refuses output with no token in it", () => {
    expect(() => parseUserAddOutput("", "bob", "localhost:2")).toThrow(/cannot find an access token/);
    expect(() => parseUserAddOutput("user created for bob\n", "bob", "localhost:2")).toThrow(/cannot find an access token/);
  });
});
