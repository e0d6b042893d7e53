// PDUs holding floats or integers beyond ±(2^53-1) (hostile-federation T14, T26): the router
// parses them losslessly, and each PDU is then judged by its room version. In rooms 6+ it
// gets its own error and the rest of the transaction goes through; in rooms 1-5 (where
// Synapse sends such events) it is verified in Synapse's notation.
import * as https from "node:https";
import type { FederationRequest } from "@myelin/server";
import type { KeyLookup, VerifyKey } from "@myelin/signing";
import { JsonNumberToken, computeEventId, encodeCanonicalJson, generateSigningKey, parseJson, signEvent, signRequest } from "@myelin/signing";
import type { ENDPOINTS_BY_NAME, JsonObject, JsonValue } from "@myelin/types";
import { getRoomVersion } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../log.js";
import { openTemporaryStorage } from "../storage/sqlite/test-fixtures.js";
import { removeTemporaryDirectories } from "../test-helpers.js";
import { createSendHandler } from "./inbound.js";
import { checkPdus } from "./pdu-checks.js";
import { AclCache } from "./room-state.js";
import type { FakeServer, TestHomeserver, TestTls } from "./test-support.js";
import { createTestTls, eventually, startFakeServer, startTestHomeserver } from "./test-support.js";

afterAll(removeTemporaryDirectories);

const compat = { compat: "synapse" } as const;
const lossless = { strict: false, lossless: true } as const;
const v5 = getRoomVersion("5");
const v10 = getRoomVersion("10");
const key = generateSigningKey("k1");
const lookupKey: KeyLookup = (server, keyId) => (server === "a.example" && keyId === key.keyId ? { publicKey: key.publicKey } : undefined);
const roomId = "!room:a.example";

/** A PDU of a.example with `content`, which may hold tokens, signed in Synapse's notation. */
function pdu(content: string, overrides: JsonObject = {}, rules = v10): JsonObject {
  const event: JsonObject = {
    room_id: roomId,
    type: "m.room.message",
    sender: "@alice:a.example",
    content: parseJson(content, lossless),
    origin_server_ts: 1_700_000_000_000,
    depth: 5,
    prev_events: ["$prev"],
    auth_events: ["$create"],
    ...overrides,
  };
  return signEvent(event, "a.example", key, rules, compat);
}

describe("checks on received PDUs holding floats or big integers", () => {
  it("drops such a PDU in rooms 6+ on its own, naming where the number is, and checks the others of the batch", async () => {
    const good = pdu('{"body": "fine"}');
    const float = pdu('{"body": "x", "n": [1, 1.5]}');
    const big = pdu('{"body": "x", "n": 18446744073709551616}');
    const results = await checkPdus([float, good, big], { rules: v10, lookupKey, roomId });
    expect(results[0]).toEqual({
      kind: "dropped",
      eventId: computeEventId(float, v10, compat),
      reason: "bad format: not canonical JSON: $.content.n[1] is a float or an integer beyond ±(2^53-1)",
    });
    expect(results[1]).toEqual({ kind: "checked", eventId: computeEventId(good, v10), pdu: good, redacted: false });
    expect(results[2]).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/\$\.content\.n is a float/) });
  });

  it("accepts a correctly signed one in rooms 1-5, under the event ID Synapse gives it", async () => {
    const event = pdu('{"body": "x", "n": 1.0, "big": -123456789012345678901234567890}', {}, v5);
    const [result] = await checkPdus([event], { rules: v5, lookupKey, roomId });
    expect(result).toEqual({ kind: "checked", eventId: computeEventId(event, v5, compat), pdu: event, redacted: false });
  });

  it("in rooms 1-5 still checks signatures and hashes over the exact numbers", async () => {
    // Power levels keep `users` through redaction: a changed number breaks the signature.
    const levels = pdu('{"users": {"@alice:a.example": 100.0}}', { type: "m.room.power_levels", state_key: "" }, v5);
    const forged = { ...levels, content: parseJson('{"users": {"@alice:a.example": 100.5}}', lossless) };
    const [dropped] = await checkPdus([forged], { rules: v5, lookupKey, roomId });
    expect(dropped).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/signature check failed: bad-signature/) });
    // A message's content is only hashed: a changed float redacts it.
    const message = pdu('{"body": "x", "n": 2.5}', {}, v5);
    const altered = { ...message, content: parseJson('{"body": "x", "n": 2.50001}', lossless) };
    const [redacted] = await checkPdus([altered], { rules: v5, lookupKey, roomId });
    expect(redacted).toMatchObject({ kind: "checked", redacted: true, pdu: { content: {} } });
  });

  it("in rooms 1-5 still requires integers and objects where the PDU format does", async () => {
    const depth = pdu('{"body": "x"}', { depth: new JsonNumberToken("5.0") as unknown as JsonValue }, v5);
    const content = signEvent({ ...pdu("{}", {}, v5), content: new JsonNumberToken("1.5") as unknown as JsonValue }, "a.example", key, v5, compat);
    const results = await checkPdus([depth, content], { rules: v5, lookupKey, roomId });
    expect(results[0]).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/depth must be an integer/) });
    expect(results[1]).toMatchObject({ kind: "dropped", reason: "bad format: content must be an object" });
  });
});

type SendEndpoint = (typeof ENDPOINTS_BY_NAME)["send_transaction_message"]["v1"];

describe("the /send handler in a room 1-5", () => {
  it("accepts a PDU with floats and stages it as the bytes Synapse hashed", async () => {
    const { storage } = await openTemporaryStorage();
    try {
      await storage.transaction((tx) => tx.insertRoom({ roomId, roomVersion: "5", creator: "@alice:a.example", createdTs: 0 }));
      const handler = createSendHandler({
        storage,
        lookupKey: (server, keyId): VerifyKey | undefined => (server === "a.example" && keyId === key.keyId ? { publicKey: key.publicKey } : undefined),
        acl: new AclCache(storage),
        logger: silentLogger,
        now: Date.now,
        onStaged: () => undefined,
      });
      const event = pdu('{"body": "x", "n": 1e3, "big": 123456789012345678901234567890}', {}, v5);
      const eventId = computeEventId(event, v5, compat);
      const request = { origin: "a.example", params: { txnId: "t1" }, body: { origin: "a.example", origin_server_ts: 1, pdus: [event] } };
      expect(await handler(request as unknown as FederationRequest<SendEndpoint>)).toEqual({ pdus: { [eventId]: {} } });
      const [staged] = await storage.transaction((tx) => tx.nextStagedPdus(roomId, 1));
      expect(staged?.eventId).toBe(eventId);
      expect(staged?.json).toBe(encodeCanonicalJson(event, compat));
      expect(staged?.json).toContain('"big":123456789012345678901234567890,"body":"x","n":1000.0}');
    } finally {
      await storage.close();
    }
  });
});

describe("a homeserver receiving a transaction with one float PDU in a room 10 (T14)", () => {
  const fKey = generateSigningKey("f1");
  let tls: TestTls;
  let a: TestHomeserver;
  let f: FakeServer;
  let alice: { userId: string; token: string };

  beforeAll(async () => {
    tls = await createTestTls();
    a = await startTestHomeserver(tls);
    alice = await a.addUser("alice");
    f = await startFakeServer(tls, fKey);
  }, 60_000);

  afterAll(async () => {
    await f?.stop();
    await a?.stop();
  });

  /** PUT /send from F, signed and written in Synapse's notation, over real HTTPS. */
  function sendAsSynapse(txnId: string, pdus: JsonObject[]): Promise<{ status: number; json: unknown }> {
    const uri = `/_matrix/federation/v1/send/${txnId}`;
    const content: JsonObject = { origin: f.serverName, origin_server_ts: Date.now(), pdus };
    const authorization = signRequest({ method: "PUT", uri, origin: f.serverName, destination: a.serverName, content, key: fKey, compat: "synapse" });
    const body = Buffer.from(encodeCanonicalJson(content, compat), "utf8");
    return new Promise((resolve, reject) => {
      const request = https.request(
        new URL(uri, a.url),
        { method: "PUT", ca: tls.caPem, agent: false, headers: { Authorization: authorization, "Content-Type": "application/json", "Content-Length": body.length } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  it("answers 200 with an error entry for the float PDU, and persists the good PDUs of the transaction", async () => {
    const created = await a.call(alice.token, "POST", "/createRoom", { room_version: "10", preset: "public_chat" });
    expect(created.status, JSON.stringify(created.json)).toBe(200);
    const room = (created.json as { room_id: string }).room_id;
    const fred = `@fred:${f.serverName}`;

    // Fred joins through A.
    const template = await f.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId: room, userId: fred }, query: { ver: ["10"] } });
    const join: JsonObject = signEvent({ ...(template.event as JsonObject), origin: f.serverName, origin_server_ts: Date.now() }, f.serverName, fKey, v10);
    const joinId = computeEventId(join, v10);
    const answer = await f.client.call("create_join_event", "v2", a.serverName, { params: { roomId: room, eventId: joinId }, body: join });
    const state = answer.state as JsonObject[];
    const idOf = (type: string): string => computeEventId(state.find((e) => e["type"] === type && e["state_key"] === "") as JsonObject, v10);
    const auth = [idOf("m.room.create"), idOf("m.room.power_levels"), joinId];

    const message = (prevId: string, depth: number, content: string): { pdu: JsonObject; id: string } => {
      const event = signEvent(
        { room_id: room, type: "m.room.message", sender: fred, content: parseJson(content, lossless), origin_server_ts: Date.now(), depth, prev_events: [prevId], auth_events: auth },
        f.serverName,
        fKey,
        v10,
        compat,
      );
      return { pdu: event, id: computeEventId(event, v10, compat) };
    };
    const depth = (join["depth"] as number) + 1;
    const first = message(joinId, depth, '{"msgtype": "m.text", "body": "first"}');
    const float = message(first.id, depth + 1, '{"msgtype": "m.text", "body": "float", "n": 1.5}');
    const second = message(first.id, depth + 1, '{"msgtype": "m.text", "body": "second"}');

    const response = await sendAsSynapse("txn-float", [first.pdu, float.pdu, second.pdu]);
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    const results = (response.json as { pdus: Record<string, { error?: string }> }).pdus;
    expect(results[first.id]).toEqual({});
    expect(results[second.id]).toEqual({});
    expect(results[float.id]?.error).toMatch(/not canonical JSON: \$\.content\.n/);

    const bodies = async (): Promise<string[]> =>
      (await a.homeserver.engine!.getTimeline(room, { dir: "f", limit: 100 }))
        .filter((e) => e.stored.type === "m.room.message")
        .map((e) => String((e.pdu["content"] as JsonObject)["body"]));
    await eventually(async () => (await bodies()).includes("second"), 10_000, "the good PDUs in the timeline");
    expect((await bodies()).sort()).toEqual(["first", "second"]);
    expect(await a.homeserver.engine!.getEvent(float.id)).toBeUndefined();
  }, 30_000);
});
