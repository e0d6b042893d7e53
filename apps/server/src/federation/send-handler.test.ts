import type { FederationRequest } from "@myelin/server";
import type { VerifyKey } from "@myelin/signing";
import { computeEventId, generateSigningKey, signEvent } from "@myelin/signing";
import type { ENDPOINTS_BY_NAME, JsonObject } from "@myelin/types";
import { getRoomVersion } from "@myelin/types";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../log.js";
import { openTemporaryStorage } from "../storage/sqlite/test-fixtures.js";
import { removeTemporaryDirectories } from "../test-helpers.js";
import { createSendHandler } from "./inbound.js";
import { AclCache } from "./room-state.js";

afterAll(removeTemporaryDirectories);

type SendEndpoint = (typeof ENDPOINTS_BY_NAME)["send_transaction_message"]["v1"];
const rules = getRoomVersion("10");
const key = generateSigningKey("k");
const origin = "origin.test";
const roomId = "!room:origin.test";

function pdu(body: string): JsonObject {
  return signEvent(
    { room_id: roomId, type: "m.room.message", sender: `@u:${origin}`, content: { body }, origin_server_ts: 1, depth: 2, prev_events: ["$p"], auth_events: ["$a"] },
    origin,
    key,
    rules,
  );
}

function sendRequest(txnId: string, pdus: JsonObject[]): FederationRequest<SendEndpoint> {
  return {
    origin,
    params: { txnId },
    body: { origin, origin_server_ts: 1, pdus },
  } as unknown as FederationRequest<SendEndpoint>;
}

describe("the /send handler", () => {
  it("answers a concurrent duplicate with the first one's answer and another transaction with 429 (T17, T18)", async () => {
    const { storage } = await openTemporaryStorage();
    await storage.transaction((tx) => tx.insertRoom({ roomId, roomVersion: "10", creator: `@u:${origin}`, createdTs: 0 }));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const staged: string[][] = [];
    const handler = createSendHandler({
      storage,
      // Key lookups wait for the gate: the first transaction stays in flight meanwhile.
      lookupKey: async (server, keyId): Promise<VerifyKey | undefined> => {
        await gate;
        return server === origin && keyId === key.keyId ? { publicKey: key.publicKey } : undefined;
      },
      acl: new AclCache(storage),
      logger: silentLogger,
      now: Date.now,
      onStaged: (rooms) => staged.push([...rooms]),
    });
    const event = pdu("hello");
    const first = handler(sendRequest("t1", [event]));
    const duplicate = handler(sendRequest("t1", [event]));
    await expect(handler(sendRequest("t2", [pdu("other")]))).rejects.toMatchObject({ errcode: "M_LIMIT_EXCEEDED", status: 429 });
    release();
    const [a, b] = await Promise.all([first, duplicate]);
    expect(a).toEqual({ pdus: { [computeEventId(event, rules)]: {} } });
    expect(b).toEqual(a);
    expect(staged).toEqual([[roomId]]);
    expect(await storage.transaction((tx) => tx.countStagedPdus(roomId))).toBe(1);
    // Once answered, another transaction is welcome.
    expect(await handler(sendRequest("t2", []))).toEqual({ pdus: {} });
    await storage.close();
  });
});
