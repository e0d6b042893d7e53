/**
 * Independent checks against Synapse's signing libraries (signedjson/PyNaCl), run through
 * the project's Python venv (`bash scripts/python-env.sh` creates it). Skipped, visibly,
 * only when that venv's interpreter does not exist.
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { JsonNumberToken, encodeBase64, generateSigningKey } from "@myelin/signing";
import type { JsonValue } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FederationRequest } from "./handler.js";
import { createFederationRouter } from "./router.js";
import { createServerKeysPublisher } from "./server-keys.js";
import type { TestServer } from "./test-support/harness.js";
import { TestKeyResolver, createPeer, send, startServer } from "./test-support/harness.js";

const PYTHON = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));
const SCRIPT = fileURLToPath(new URL("../test-support/matrix_signing.py", import.meta.url));
const noPython = !existsSync(PYTHON);
const SKIP_NOTE = noPython ? " [SKIPPED: .venv/bin/python missing; run bash scripts/python-env.sh]" : "";

function python(command: string, input: string | Buffer): string {
  return execFileSync(PYTHON, [SCRIPT, command], { input, encoding: "utf8" });
}

const US = "myelin.test";
const peer = createPeer("synapse.test:8448", "py1");
const ourKeys = [generateSigningKey("k1"), generateSigningKey("k2")];

describe("cross-check with Synapse's signedjson (Python)", () => {
  let server: TestServer;
  const seen: FederationRequest[] = [];

  beforeAll(async () => {
    const publisher = createServerKeysPublisher({ serverName: US, signingKeys: ourKeys });
    server = await startServer(
      createFederationRouter({
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
              return { event: { sender: "@u:x", state_key: "@u:x", origin_server_ts: 1, type: "m.room.member", content: { membership: "join" } } };
            },
          },
          get_server_keys: { v2: publisher.handler },
        },
        keyResolver: new TestKeyResolver().addPeer(peer),
      }),
    );
  });
  afterAll(() => server.close());

  /** Signs with Python; `content` as a value, or as JSON text Python reads itself (floats, big integers). */
  function pythonSigned(method: string, uri: string, content?: JsonValue | { readonly text: string }) {
    const body =
      content === undefined ? {} : typeof content === "object" && content !== null && "text" in content && typeof content.text === "string"
        ? { content_text: content.text }
        : { content };
    const out = python(
      "sign",
      JSON.stringify({ seed: encodeBase64(peer.key.seed), version: "py1", origin: peer.serverName, destination: US, method, uri, ...body }),
    );
    return JSON.parse(out) as { authorization: string; body: string | null };
  }

  /** Sends a PUT /send signed by Python over `contentText` (read by Python's json). */
  async function sendPythonSigned(txnId: string, contentText: string) {
    const uri = `/_matrix/federation/v1/send/${txnId}`;
    const signed = pythonSigned("PUT", uri, { text: contentText });
    return send(server.port, {
      method: "PUT",
      path: uri,
      headers: { Authorization: signed.authorization, "Content-Type": "application/json" },
      body: signed.body ?? "",
    });
  }

  const envelope = (pdus: string): string =>
    `{"origin": ${JSON.stringify(peer.serverName)}, "origin_server_ts": 1700000000000, "pdus": [${pdus}], "edus": []}`;

  it.skipIf(noPython)(`accepts a transaction signed by Python's signedjson${SKIP_NOTE}`, async () => {
    const content: JsonValue = {
      origin: peer.serverName,
      origin_server_ts: 1_700_000_000_000,
      pdus: [{ type: "m.room.message", content: { body: "héllo ☃ 𝄞", n: -9007199254740991 } }],
      edus: [{ edu_type: "m.typing", content: { typing: true } }],
    };
    const uri = "/_matrix/federation/v1/send/txn%2F%C3%A9";
    const signed = pythonSigned("PUT", uri, content);
    expect(signed.body).toMatch(/\\u00e9/); // Python escapes non-ASCII: the bytes differ from canonical JSON
    const response = await send(server.port, {
      method: "PUT",
      path: uri,
      headers: { Authorization: signed.authorization, "Content-Type": "application/json" },
      body: signed.body ?? "",
    });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(seen.at(-1)?.origin).toBe(peer.serverName);
    expect(seen.at(-1)?.params).toEqual({ txnId: "txn/é" });
    expect(seen.at(-1)?.body).toEqual(content);
  });

  it.skipIf(noPython)(
    `authenticates a transaction with a float in one PDU (a room 1-5 event, as Synapse sends it) and hands the handler the exact number${SKIP_NOTE}`,
    async () => {
      const response = await sendPythonSigned(
        "float-pdu",
        envelope('{"type": "m.room.message", "content": {"body": "ok"}}, {"type": "m.room.message", "content": {"n": 1.5, "f": 1e-7, "z": 1.0, "k": 1e16}}'),
      );
      expect(response.status, JSON.stringify(response.json)).toBe(200);
      expect(seen.at(-1)?.origin).toBe(peer.serverName);
      const pdus = (seen.at(-1)?.body as unknown as { pdus: { content: Record<string, unknown> }[] }).pdus;
      expect(pdus[0]?.content).toEqual({ body: "ok" });
      // Python's json.dumps wrote each float as repr(float): the tokens hold that text.
      const content = pdus[1]?.content ?? {};
      for (const [key, text] of [["n", "1.5"], ["f", "1e-07"], ["z", "1.0"], ["k", "1e+16"]] as const) {
        expect(content[key], key).toBeInstanceOf(JsonNumberToken);
        expect(content[key], key).toMatchObject({ text, kind: "float" });
      }
    },
  );

  it.skipIf(noPython)(`authenticates a transaction with an integer beyond ±(2^53-1) in a PDU, kept digit for digit${SKIP_NOTE}`, async () => {
    const response = await sendPythonSigned("big-int-pdu", envelope('{"type": "m.room.message", "content": {"big": -123456789012345678901234567890}}'));
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    const pdus = (seen.at(-1)?.body as unknown as { pdus: { content: Record<string, unknown> }[] }).pdus;
    expect(pdus[0]?.content["big"]).toMatchObject({ text: "-123456789012345678901234567890", kind: "integer" });
  });

  it.skipIf(noPython)(`refuses (401) a Python-signed float transaction whose float was changed in transit${SKIP_NOTE}`, async () => {
    const uri = "/_matrix/federation/v1/send/float-altered";
    const signed = pythonSigned("PUT", uri, { text: envelope('{"type": "m.room.message", "content": {"n": 1.5}}') });
    const response = await send(server.port, {
      method: "PUT",
      path: uri,
      headers: { Authorization: signed.authorization },
      body: (signed.body ?? "").replace("1.5", "1.25"),
    });
    expect(response.status).toBe(401);
    expect(response.json).toMatchObject({ errcode: "M_UNAUTHORIZED", error: expect.stringMatching(/Invalid signature/) });
  });

  it.skipIf(noPython)(`accepts a GET with a query string signed by Python's signedjson${SKIP_NOTE}`, async () => {
    const uri = "/_matrix/federation/v1/make_join/%21room%3Aexample.org/%40u%3Asynapse.test%3A8448?ver=10&ver=org.example.v%2B1";
    const signed = pythonSigned("GET", uri);
    const response = await send(server.port, { method: "GET", path: uri, headers: { Authorization: signed.authorization } });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(seen.at(-1)?.query).toEqual({ ver: ["10", "org.example.v+1"] });
  });

  it.skipIf(noPython)(`refuses a Python-signed request whose body was altered${SKIP_NOTE}`, async () => {
    const content: JsonValue = { origin: peer.serverName, origin_server_ts: 1, pdus: [] };
    const signed = pythonSigned("PUT", "/_matrix/federation/v1/send/t", content);
    const response = await send(server.port, {
      method: "PUT",
      path: "/_matrix/federation/v1/send/t",
      headers: { Authorization: signed.authorization },
      body: JSON.stringify({ ...content, origin_server_ts: 2 }),
    });
    expect(response.status).toBe(401);
  });

  it.skipIf(noPython)(`serves a key response whose self-signatures Python's signedjson verifies${SKIP_NOTE}`, async () => {
    const response = await send(server.port, { method: "GET", path: "/_matrix/key/v2/server" });
    expect(response.status).toBe(200);
    const result = JSON.parse(python("verify-keys", response.bytes)) as { verified: string[] };
    expect(result.verified).toEqual(ourKeys.map((k) => k.keyId).sort());
  });

  it.skipIf(noPython)(`has Python's signedjson reject a key response we tampered with${SKIP_NOTE}`, async () => {
    const response = await send(server.port, { method: "GET", path: "/_matrix/key/v2/server" });
    const tampered = Buffer.from(JSON.stringify({ ...response.json, valid_until_ts: response.json.valid_until_ts + 1 }));
    expect(() => python("verify-keys", tampered)).toThrow();
  });
});
