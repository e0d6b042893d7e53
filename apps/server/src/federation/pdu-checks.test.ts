import { computeEventId, generateSigningKey, signEvent } from "@myelin/signing";
import type { KeyLookup } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { getRoomVersion } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { checkPdus, stripUnsigned } from "./pdu-checks.js";

const v10 = getRoomVersion("10");
const v12 = getRoomVersion("12");
const key = generateSigningKey("k1");
const otherKey = generateSigningKey("k2");
const lookupKey: KeyLookup = (server, keyId) =>
  server === "a.example" && keyId === key.keyId ? { publicKey: key.publicKey } : undefined;
const roomId = "!room:a.example";

function message(overrides: JsonObject = {}, signer = key, server = "a.example"): JsonObject {
  const event: JsonObject = {
    room_id: roomId,
    type: "m.room.message",
    sender: "@alice:a.example",
    content: { body: "hi", msgtype: "m.text" },
    origin_server_ts: 1_700_000_000_000,
    depth: 5,
    prev_events: ["$prev"],
    auth_events: ["$create", "$pl", "$member"],
    ...overrides,
  };
  return signEvent(event, server, signer, v10);
}

describe("checks 1-3 on received PDUs", () => {
  it("accepts a well-formed, correctly signed PDU and computes its event ID", async () => {
    const pdu = message();
    const [result] = await checkPdus([pdu], { rules: v10, lookupKey, roomId });
    expect(result).toEqual({ kind: "checked", eventId: computeEventId(pdu, v10), pdu, redacted: false });
  });

  it("drops a PDU signed with a key the sender's server does not have (T36)", async () => {
    const [result] = await checkPdus([message({}, otherKey)], { rules: v10, lookupKey, roomId });
    expect(result).toMatchObject({ kind: "dropped", keyUnavailable: true });
    expect(result?.kind === "dropped" && result.reason).toMatch(/signature/);
  });

  it("drops a PDU signed by a relaying server instead of the sender's (T36)", async () => {
    const [result] = await checkPdus([message({ sender: "@mallory:b.example" })], { rules: v10, lookupKey, roomId });
    expect(result).toMatchObject({ kind: "dropped" });
  });

  it("redacts a PDU whose content hash does not match (T38)", async () => {
    const pdu = { ...message(), content: { body: "changed after signing", msgtype: "m.text" } };
    const [result] = await checkPdus([pdu], { rules: v10, lookupKey, roomId });
    expect(result).toMatchObject({ kind: "checked", redacted: true });
    expect(result?.kind === "checked" && result.pdu["content"]).toEqual({});
  });

  it("accepts more prev and auth events than the schemas allow only in history fetched with /backfill", async () => {
    const prevs = Array.from({ length: 25 }, (_, i) => `$prev${i}`);
    const auths = Array.from({ length: 12 }, (_, i) => `$auth${i}`);
    const old = message({ prev_events: prevs, auth_events: auths });
    const [pushed] = await checkPdus([old], { rules: v10, lookupKey, roomId });
    expect(pushed).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/prev_events/) });
    const [backfilled] = await checkPdus([old], { rules: v10, lookupKey, roomId, historical: true });
    expect(backfilled).toMatchObject({ kind: "checked", eventId: computeEventId(old, v10), pdu: old });
    // Every other format rule still holds for history.
    const [bad] = await checkPdus([{ ...old, depth: -1 }], { rules: v10, lookupKey, roomId, historical: true });
    expect(bad).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/depth/) });
  });

  it("drops a badly formed PDU but checks the others of the batch (T14)", async () => {
    const good = message();
    const results = await checkPdus([{ ...message(), depth: -1 }, "nope", good], { rules: v10, lookupKey, roomId });
    expect(results.map((r) => r.kind)).toEqual(["dropped", "dropped", "checked"]);
    expect(results[0]).toMatchObject({ reason: expect.stringMatching(/depth/) });
  });

  it("drops a PDU of another room (T42)", async () => {
    const [result] = await checkPdus([message({ room_id: "!other:a.example" })], { rules: v10, lookupKey, roomId });
    expect(result).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/not in room/) });
  });

  it("drops a room-12 event listing the create event among its auth events (T34)", async () => {
    const createId = "$" + "A".repeat(43);
    const room12 = "!" + "A".repeat(43);
    const pdu = signEvent(
      {
        room_id: room12,
        type: "m.room.message",
        sender: "@alice:a.example",
        content: {},
        origin_server_ts: 1,
        depth: 3,
        prev_events: ["$x"],
        auth_events: [createId],
      },
      "a.example",
      key,
      v12,
    );
    const [result] = await checkPdus([pdu], { rules: v12, lookupKey, roomId: room12 });
    expect(result).toMatchObject({ kind: "dropped", reason: expect.stringMatching(/create event/) });
  });

  it("keeps only age and stripped room state in unsigned (T33)", () => {
    const stripped = stripUnsigned({ type: "m.room.member", unsigned: { age: 1, prev_content: {}, invite_room_state: [], transaction_id: "x" } });
    expect(stripped["unsigned"]).toEqual({ age: 1, invite_room_state: [] });
    expect(stripUnsigned({ type: "m.room.message", unsigned: { redacted_because: {} } })).not.toHaveProperty("unsigned");
  });
});
