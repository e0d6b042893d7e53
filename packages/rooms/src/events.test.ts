import { getRoomVersion } from "@myelin/types";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareCodePoints, MalformedEventError, parseStateKey, stateKey, toRoomEvent } from "./events.js";

const pdu = {
  type: "m.room.member",
  sender: "@alice:example.com",
  room_id: "!room:example.com",
  state_key: "@alice:example.com",
  content: { membership: "join" },
  origin_server_ts: 5,
  depth: 3,
  hashes: { sha256: "x" },
  signatures: { "example.com": { "ed25519:1": "s" } },
};

describe("the RoomEvent view", () => {
  it("reads room 1-2 [id, hashes] pairs as plain event IDs and takes the PDU's own event_id", () => {
    const v1 = {
      ...pdu,
      event_id: "$e:example.com",
      prev_events: [["$p:example.com", { sha256: "h" }]],
      auth_events: [["$a:example.com", { sha256: "h" }], ["$b:example.com", { sha256: "h" }]],
    };
    const event = toRoomEvent(v1, { rules: getRoomVersion("1") });
    expect(event).toMatchObject({
      event_id: "$e:example.com",
      prev_events: ["$p:example.com"],
      auth_events: ["$a:example.com", "$b:example.com"],
      state_key: "@alice:example.com",
    });
  });

  it("reads room 3+ ID lists and takes the event ID it is given", () => {
    const v3 = { ...pdu, prev_events: ["$p"], auth_events: ["$a"] };
    const event = toRoomEvent(v3, { rules: getRoomVersion("10"), eventId: "$computed" });
    expect(event).toMatchObject({ event_id: "$computed", prev_events: ["$p"], auth_events: ["$a"] });
    expect(event.signatures).toEqual(pdu.signatures);
  });

  it("refuses a room 3+ PDU without a given event ID, and one lacking a field it needs", () => {
    const v3 = { ...pdu, prev_events: [], auth_events: [] };
    expect(() => toRoomEvent(v3, { rules: getRoomVersion("10") })).toThrow(MalformedEventError);
    const { sender: _s, ...noSender } = v3;
    expect(() => toRoomEvent(noSender, { rules: getRoomVersion("10"), eventId: "$x" })).toThrow(/sender/);
  });
});

describe("state keys", () => {
  it("round-trips any type and state key, including prototype names (hostile-federation T32)", () => {
    fc.assert(
      fc.property(fc.string(), fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "")), (type, key) => {
        expect(parseStateKey(stateKey(type, key))).toEqual([type, key]);
      }),
    );
    const record: Record<string, string> = {};
    record[stateKey("m.room.member", "__proto__")] = "$x";
    expect(Object.keys(record)).toEqual(['["m.room.member","__proto__"]']);
  });

  it("keeps different pairs apart even when their parts run together", () => {
    expect(stateKey("a,b", "c")).not.toBe(stateKey("a", "b,c"));
  });
});

describe("code-point order", () => {
  it("orders astral characters after U+FFFF, as Python and Rust compare strings", () => {
    expect(compareCodePoints("\u{1F600}", "\uFF01")).toBeGreaterThan(0);
    expect("\u{1F600}" < "\uFF01").toBe(true); // what plain JS comparison would do instead
  });

  it("agrees with comparing code point arrays", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        const cps = (s: string) => [...s].map((c) => c.codePointAt(0) as number);
        const [x, y] = [cps(a), cps(b)];
        let expected = 0;
        for (let i = 0; i < Math.min(x.length, y.length) && expected === 0; i++) expected = (x[i] as number) - (y[i] as number);
        if (expected === 0) expected = x.length - y.length;
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(expected));
      }),
    );
  });
});
