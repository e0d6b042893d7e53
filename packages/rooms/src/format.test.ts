import { getRoomVersion, type JsonObject, type JsonValue } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { checkPduFormat, type FormatCheckResult, jsonByteLength } from "./format.js";

const HASH_A = "A".repeat(42) + "Q";
const HASH_B = "B".repeat(42) + "g";

/** A well-formed PDU for a room version: an m.room.message, or the create event. */
function pdu(version: string, overrides: JsonObject = {}, create = false): JsonObject {
  const rules = getRoomVersion(version);
  const v1 = rules.eventFormat === "v1";
  const ref = (id: string) => (v1 ? [id, { sha256: "abc" }] : id);
  const base: JsonObject = {
    type: create ? "m.room.create" : "m.room.message",
    sender: "@alice:example.com",
    origin_server_ts: 1_700_000_000_000,
    content: create ? { room_version: version } : { body: "hi", msgtype: "m.text" },
    depth: create ? 1 : 5,
    hashes: { sha256: "abc" },
    signatures: { "example.com": { "ed25519:1": "sig" } },
    prev_events: create ? [] : [ref(v1 ? "$prev:example.com" : `$${HASH_B}`)],
    auth_events: create ? [] : [ref(v1 ? "$auth:example.com" : `$${HASH_B}`)],
    unsigned: { age: 5 },
  };
  if (!(create && rules.eventFormat === "v12")) base["room_id"] = rules.eventFormat === "v12" ? `!${HASH_A}` : "!room:example.com";
  if (v1) base["event_id"] = "$event:example.com";
  if (create) base["state_key"] = "";
  return { ...base, ...overrides };
}

const reason = (result: FormatCheckResult) => (result.ok ? "ok" : result.violation.reason);
const ALL = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"] as const;

describe("PDU format checks", () => {
  it.each(ALL)("room %s accepts a well-formed message and create event", (v) => {
    expect(reason(checkPduFormat(pdu(v), getRoomVersion(v)))).toBe("ok");
    expect(reason(checkPduFormat(pdu(v, {}, true), getRoomVersion(v)))).toBe("ok");
  });

  it.each(["type", "sender", "origin_server_ts", "content", "depth", "hashes", "signatures", "prev_events", "auth_events", "room_id"])(
    "refuses a PDU without %s",
    (field) => {
      const { [field]: _dropped, ...rest } = pdu("10");
      const result = checkPduFormat(rest, getRoomVersion("10"));
      expect(result).toMatchObject({ ok: false, violation: { reason: "missing_field", field } });
    },
  );

  it("refuses a room 1 PDU without event_id, and pairs that are not [id, hashes]", () => {
    const { event_id: _e, ...noId } = pdu("1");
    expect(reason(checkPduFormat(noId, getRoomVersion("1")))).toBe("missing_field");
    expect(reason(checkPduFormat(pdu("1", { prev_events: ["$prev:example.com"] }), getRoomVersion("1")))).toBe("wrong_type");
    expect(reason(checkPduFormat(pdu("3", { prev_events: [["$x", {}]] }), getRoomVersion("3")))).toBe("wrong_type");
  });

  it.each([
    ["type", 5],
    ["content", "text"],
    ["depth", "5"],
    ["depth", 5.5],
    ["state_key", 3],
    ["unsigned", []],
    ["signatures", { "example.com": "sig" }],
    ["hashes", { sha1: "x" }],
  ] as [string, JsonValue][])("refuses %s of the wrong type (%j)", (field, value) => {
    expect(reason(checkPduFormat(pdu("4", { [field]: value }), getRoomVersion("4")))).toBe("wrong_type");
  });

  it("refuses a PDU over 65,536 bytes and accepts one at the limit", () => {
    const base = pdu("10");
    const size = Buffer.byteLength(JSON.stringify(base));
    const filler = (n: number) => pdu("10", { content: { body: "x".repeat(n) } });
    const exact = filler(65_536 - size + Buffer.byteLength(JSON.stringify({ body: "hi", msgtype: "m.text" })) - Buffer.byteLength('{"body":""}'));
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(65_536);
    expect(reason(checkPduFormat(exact, getRoomVersion("10")))).toBe("ok");
    const over = pdu("10", { content: { body: "x".repeat(65_536) } });
    expect(reason(checkPduFormat(over, getRoomVersion("10")))).toBe("too_large");
  });

  it("limits type, state_key, sender and room_id to 255 bytes: strictly from room 11, persisted as rejected before", () => {
    const long = "💥".repeat(70); // 70 code points, 280 bytes
    for (const [version, persist] of [
      ["10", true],
      ["11", false],
    ] as const) {
      const result = checkPduFormat(pdu(version, { type: "m.room.topic", state_key: long }), getRoomVersion(version));
      expect(result).toMatchObject({ ok: false, violation: { reason: "field_too_long", field: "state_key", persistAsRejected: persist } });
    }
    const tooManyCodePoints = checkPduFormat(pdu("10", { type: "t".repeat(256) }), getRoomVersion("10"));
    expect(tooManyCodePoints).toMatchObject({ ok: false, violation: { field: "type", persistAsRejected: false } });
    const longSender = `@${"a".repeat(250)}:example.com`;
    expect(reason(checkPduFormat(pdu("10", { sender: longSender }), getRoomVersion("10")))).toBe("field_too_long");
  });

  it("checks the supplied event ID's length", () => {
    expect(reason(checkPduFormat(pdu("10"), getRoomVersion("10"), { eventId: `$${"e".repeat(255)}` }))).toBe("field_too_long");
  });

  it("bounds depth: 0..2^63-1 in rooms 1-5, 0..2^53-1 from room 6", () => {
    expect(reason(checkPduFormat(pdu("6", { depth: -1 }), getRoomVersion("6")))).toBe("depth_out_of_range");
    expect(reason(checkPduFormat(pdu("6", { depth: 2 ** 53 - 1 }), getRoomVersion("6")))).toBe("ok");
    expect(reason(checkPduFormat(pdu("6", { depth: 2 ** 53 }), getRoomVersion("6")))).toBe("not_canonical_json");
    expect(reason(checkPduFormat(pdu("5", { depth: 2 ** 60 }), getRoomVersion("5")))).toBe("ok");
    expect(reason(checkPduFormat(pdu("5", { depth: 2 ** 64 }), getRoomVersion("5")))).toBe("depth_out_of_range");
  });

  it("enforces canonical JSON numbers from room 6: no floats, nothing beyond 2^53-1, however deep", () => {
    const nested = { foo: [{ bar: 2 ** 56 }] };
    expect(reason(checkPduFormat(pdu("6", { content: nested }), getRoomVersion("6")))).toBe("not_canonical_json");
    expect(reason(checkPduFormat(pdu("6", { content: { x: 1.5 } }), getRoomVersion("6")))).toBe("not_canonical_json");
    expect(reason(checkPduFormat(pdu("5", { content: { x: 1.5 } }), getRoomVersion("5")))).toBe("ok");
    let deep: JsonObject = { x: 1.5 };
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const result = checkPduFormat(pdu("6", { content: { deep } }), getRoomVersion("6"));
    expect(reason(result)).toBe("not_canonical_json");
  });

  it("measures deeply nested events without overflowing the stack (hostile-federation T30)", () => {
    const nested = JSON.parse(`${"[".repeat(30_000)}${"]".repeat(30_000)}`) as JsonObject;
    expect(reason(checkPduFormat(pdu("6", { content: { nested } }), getRoomVersion("6")))).toBe("ok");
    expect(jsonByteLength({ a: [1, "é", null, true, { b: -2 }] })).toBe(Buffer.byteLength(JSON.stringify({ a: [1, "é", null, true, { b: -2 }] })));
  });

  it("allows at most 20 prev_events and 10 auth_events", () => {
    const ids = (n: number) => Array.from({ length: n }, () => `$${HASH_B}`);
    expect(reason(checkPduFormat(pdu("10", { prev_events: ids(20), auth_events: ids(10) }), getRoomVersion("10")))).toBe("ok");
    expect(reason(checkPduFormat(pdu("10", { prev_events: ids(21) }), getRoomVersion("10")))).toBe("too_many_prev_events");
    expect(reason(checkPduFormat(pdu("10", { auth_events: ids(11) }), getRoomVersion("10")))).toBe("too_many_auth_events");
  });

  it("refuses identifiers of the wrong shape", () => {
    expect(reason(checkPduFormat(pdu("10", { sender: "alice" }), getRoomVersion("10")))).toBe("bad_identifier");
    expect(reason(checkPduFormat(pdu("10", { room_id: "#alias:example.com" }), getRoomVersion("10")))).toBe("bad_identifier");
    expect(reason(checkPduFormat(pdu("1", { event_id: "$nodomain" }), getRoomVersion("1")))).toBe("bad_identifier");
    expect(reason(checkPduFormat(pdu("10", { prev_events: ["not-an-id"] }), getRoomVersion("10")))).toBe("wrong_type");
  });

  describe("room 12", () => {
    const v12 = getRoomVersion("12");

    it("refuses a create event carrying a room_id", () => {
      expect(reason(checkPduFormat(pdu("12", { room_id: `!${HASH_A}` }, true), v12))).toBe("create_has_room_id");
    });

    it("refuses a room ID that is not ! and 43 URL-safe base64 characters", () => {
      expect(reason(checkPduFormat(pdu("12", { room_id: "!room:example.com" }), v12))).toBe("bad_identifier");
    });

    it("refuses a room ID not derived from the create event, and the create event in auth_events", () => {
      const createEventId = `$${HASH_A}`;
      expect(reason(checkPduFormat(pdu("12"), v12, { createEventId }))).toBe("ok");
      expect(reason(checkPduFormat(pdu("12"), v12, { createEventId: `$${HASH_B}` }))).toBe("room_id_mismatch");
      const citing = pdu("12", { auth_events: [createEventId] });
      expect(reason(checkPduFormat(citing, v12, { createEventId }))).toBe("create_in_auth_events");
    });
  });

  it("refuses what is not an object", () => {
    expect(reason(checkPduFormat([], getRoomVersion("10")))).toBe("not_object");
    expect(reason(checkPduFormat(null, getRoomVersion("10")))).toBe("not_object");
  });
});
