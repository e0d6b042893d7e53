// Scenario 1: version and keys, both ways, and `myelin check` against Synapse.
import { execFile } from "node:child_process";
import * as https from "node:https";
import { describe, expect, test } from "vitest";
import { decodeBase64, encodePublicKey, verifyJsonSignature } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { MYELIN_CLI_BIN } from "./myelin.js";
import { usePeers } from "./peers.js";

const peers = usePeers();

/** `GET https://127.0.0.1:port{path}` trusting the test CA: status and JSON body. */
function getJson(port: number, ca: string, path: string): Promise<{ status: number; body: JsonObject }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path, ca, servername: "localhost", agent: false, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as JsonObject });
        } catch {
          reject(new Error(`GET ${path} on port ${port}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 300)}`));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} on port ${port}: no answer within 30 s`)));
    req.on("error", reject);
  });
}

/** `POST https://127.0.0.1:port{path}` with a JSON body, trusting the test CA: status and JSON body. */
function postJson(port: number, ca: string, path: string, payload: unknown): Promise<{ status: number; body: JsonObject }> {
  const data = Buffer.from(JSON.stringify(payload), "utf8");
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1", port, path, method: "POST", ca, servername: "localhost", agent: false, timeout: 30_000,
        headers: { "Content-Type": "application/json", "Content-Length": String(data.byteLength) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as JsonObject });
          } catch {
            reject(new Error(`POST ${path} on port ${port}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 300)}`));
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`POST ${path} on port ${port}: no answer within 30 s`)));
    req.on("error", reject);
    req.end(data);
  });
}

/** The `server_keys` entry of `server` in a notary answer, and the verify key `keyId` in it. */
function notarised(body: JsonObject, server: string): JsonObject {
  const list = body["server_keys"];
  expect(Array.isArray(list), `server_keys is a list: ${JSON.stringify(body)}`).toBe(true);
  const entry = (list as JsonObject[]).find((k) => k["server_name"] === server);
  expect(entry, `server_keys holds ${server}: ${JSON.stringify(body)}`).toBeDefined();
  return entry as JsonObject;
}

function verifyKeyOf(keys: JsonObject, keyId: string): string | undefined {
  const verify = keys["verify_keys"] as Record<string, { key?: string }> | undefined;
  return verify?.[keyId]?.key;
}

describe("scenario 1: version and keys", () => {
  // First, while Synapse is fresh: what an operator sees before any traffic.
  test("`myelin check` against a fresh Synapse reports every line GOOD, including a request signed as Myelin", async () => {
    const { synapse, myelin, caFile } = peers();
    const args = [
      MYELIN_CLI_BIN, "check", synapse.serverName, "--json",
      "--ca", caFile,
      "--allow-ip", "127.0.0.0/8",
      "--host-map", "localhost=127.0.0.1",
      "--key", myelin.signingKeyFile,
      "--origin", myelin.serverName,
    ];
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, args, { timeout: 60_000 }, (error, out, err) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout: out, stderr: err });
      });
    });
    let report: { ok: boolean; checks: { name: string; status: string; message: string }[] };
    try {
      report = JSON.parse(stdout) as typeof report;
    } catch {
      throw new Error(`myelin check exited ${code} without a JSON report\nstdout: ${stdout}\nstderr: ${stderr}`);
    }
    const lines = report.checks.map((c) => `${c.status} ${c.name}: ${c.message}`);
    expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["discovery", "connect", "tls", "version", "keys", "notary", "auth"]));
    expect(report.checks.filter((c) => c.status !== "GOOD").map((c) => `${c.status} ${c.name}: ${c.message}`), lines.join("\n")).toEqual([]);
    expect(code).toBe(0);
  });

  test("Myelin answers GET /_matrix/federation/v1/version as a peer reads it (Synapse never fetches versions; the check above reads Synapse's)", async () => {
    const { myelin, ca } = peers();
    const { status, body } = await getJson(myelin.port, ca.cert, "/_matrix/federation/v1/version");
    expect(status).toBe(200);
    const server = body["server"] as { name?: unknown; version?: unknown };
    expect(typeof server.name).toBe("string");
    expect(typeof server.version).toBe("string");
  });

  test("Synapse fetches Myelin's keys from Myelin when asked by key ID, and vouches for them through its notary API", async () => {
    const { synapse, myelin, ca } = peers();
    const [ours] = await myelin.signingKeys();
    if (ours === undefined) throw new Error("myelin-server has no signing key in its data directory");
    // Named by key ID, with minimum_valid_until_ts, as servers ask a notary when they verify a
    // signature. Synapse 1.163 answers a query for all keys (no key ID) only from its cache, and
    // refuses criteria without minimum_valid_until_ts (400 M_MISSING_PARAM): see README.md.
    const { status, body } = await postJson(synapse.port, ca.cert, "/_matrix/key/v2/query", {
      server_keys: { [myelin.serverName]: { [ours.keyId]: { minimum_valid_until_ts: Date.now() } } },
    });
    expect(status, JSON.stringify(body)).toBe(200);
    const keys = notarised(body, myelin.serverName);
    expect(verifyKeyOf(keys, ours.keyId)).toBe(encodePublicKey(ours));
    // Signed by Myelin itself (the origin's self-signature, kept as fetched) ...
    expect(verifyJsonSignature(keys, myelin.serverName, ours.keyId, ours.publicKey).valid).toBe(true);
    // ... and by Synapse as the notary (SS API § "Querying Keys Through Another Server").
    expect(verifyJsonSignature(keys, synapse.serverName, synapse.signingKey.keyId, synapse.signingKey.publicKey).valid).toBe(true);

    // Now in Synapse's cache, the keys also come back for GET /query/{serverName}.
    const all = await getJson(synapse.port, ca.cert, `/_matrix/key/v2/query/${encodeURIComponent(myelin.serverName)}`);
    expect(all.status).toBe(200);
    expect(verifyKeyOf(notarised(all.body, myelin.serverName), ours.keyId)).toBe(encodePublicKey(ours));
  });

  test("Myelin fetches Synapse's keys from Synapse and vouches for them through its notary API", async () => {
    const { synapse, myelin, ca } = peers();
    const [ours] = await myelin.signingKeys();
    if (ours === undefined) throw new Error("myelin-server has no signing key in its data directory");
    const { status, body } = await getJson(myelin.port, ca.cert, `/_matrix/key/v2/query/${encodeURIComponent(synapse.serverName)}`);
    expect(status, JSON.stringify(body)).toBe(200);
    const keys = notarised(body, synapse.serverName);
    expect(verifyKeyOf(keys, synapse.signingKey.keyId)).toBe(synapse.publicKey);
    expect(verifyJsonSignature(keys, synapse.serverName, synapse.signingKey.keyId, synapse.signingKey.publicKey).valid).toBe(true);
    expect(verifyJsonSignature(keys, myelin.serverName, ours.keyId, ours.publicKey).valid).toBe(true);
  });

  test("Synapse's own key response carries the key the harness wrote, self-signed", async () => {
    const { synapse, ca } = peers();
    const { status, body } = await getJson(synapse.port, ca.cert, "/_matrix/key/v2/server");
    expect(status).toBe(200);
    expect(body["server_name"]).toBe(synapse.serverName);
    expect(verifyKeyOf(body, synapse.signingKey.keyId)).toBe(synapse.publicKey);
    expect(decodeBase64(synapse.publicKey)).toEqual(synapse.signingKey.publicKey);
    expect(verifyJsonSignature(body, synapse.serverName, synapse.signingKey.keyId, synapse.signingKey.publicKey).valid).toBe(true);
  });
});
