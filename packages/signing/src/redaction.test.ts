import { describe, expect, it } from "vitest";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { ROOM_VERSIONS, getRoomVersion } from "@myelin/types";
import { redactEvent } from "./redaction.js";

const versions = Object.values(ROOM_VERSIONS);
const since = (first: number) => (rules: RoomVersionRules) => Number(rules.id) >= first;

function event(type: string, content: JsonObject, extra: JsonObject = {}): JsonObject {
  return {
    type,
    content,
    room_id: "!r:example.org",
    sender: "@u:example.org",
    state_key: "",
    origin_server_ts: 1,
    depth: 2,
    prev_events: [],
    auth_events: [],
    hashes: { sha256: "aGFzaA" },
    signatures: { "example.org": { "ed25519:1": "c2ln" } },
    unsigned: { age_ts: 1 },
    ...extra,
  };
}

/** For each room version, whether `key` of `content` survives redaction of a `type` event. */
function keeps(type: string, content: JsonObject, key: string, rules: RoomVersionRules): boolean {
  const redacted = redactEvent(event(type, content), rules)["content"] as JsonObject;
  return Object.hasOwn(redacted, key);
}

describe.each(versions.map((r) => [r.id, r] as const))("room version %s", (id, rules) => {
  it("always keeps the essential top-level keys and drops unsigned and unknown keys", () => {
    const redacted = redactEvent(event("m.room.message", { body: "x" }, { event_id: "$e:example.org", custom: 1 }), rules);
    expect(Object.keys(redacted).sort()).toEqual(
      [
        "auth_events",
        "content",
        "depth",
        "event_id",
        "hashes",
        "origin_server_ts",
        "prev_events",
        "room_id",
        "sender",
        "signatures",
        "state_key",
        "type",
      ].sort(),
    );
    expect(redacted["content"]).toEqual({});
  });

  const pre11 = !since(11)(rules);
  it(`${pre11 ? "keeps" : "drops"} top-level origin, membership and prev_state`, () => {
    const redacted = redactEvent(
      event("m.room.member", { membership: "join" }, { origin: "example.org", membership: "join", prev_state: [] }),
      rules,
    );
    for (const key of ["origin", "membership", "prev_state"]) expect(Object.hasOwn(redacted, key)).toBe(pre11);
  });

  it("drops a top-level redacts key", () => {
    expect(redactEvent(event("m.room.redaction", {}, { redacts: "$x" }), rules)).not.toHaveProperty("redacts");
  });

  const table: [string, JsonObject, string, boolean][] = [
    ["m.room.member", { membership: "join" }, "membership", true],
    ["m.room.member", { displayname: "x" }, "displayname", false],
    ["m.room.member", { join_authorised_via_users_server: "@a:b" }, "join_authorised_via_users_server", since(9)(rules)],
    ["m.room.create", { creator: "@a:b" }, "creator", true],
    ["m.room.create", { room_version: id, "m.federate": false }, "room_version", since(11)(rules)],
    ["m.room.create", { additional_creators: ["@c:d"] }, "additional_creators", since(11)(rules)],
    ["m.room.join_rules", { join_rule: "restricted" }, "join_rule", true],
    ["m.room.join_rules", { allow: [] }, "allow", since(8)(rules)],
    ["m.room.power_levels", { invite: 50 }, "invite", since(11)(rules)],
    ["m.room.power_levels", { notifications: { room: 50 } }, "notifications", false],
    ["m.room.history_visibility", { history_visibility: "shared" }, "history_visibility", true],
    ["m.room.aliases", { aliases: ["#a:b"] }, "aliases", !since(6)(rules)],
    ["m.room.redaction", { redacts: "$x" }, "redacts", since(11)(rules)],
    ["m.room.message", { body: "x", msgtype: "m.text" }, "body", false],
    ["m.room.name", { name: "x" }, "name", false],
  ];
  it.each(table)("%s content %j: keeps %s = %s", (type, content, key, expected) => {
    expect(keeps(type, content, key, rules)).toBe(expected);
  });

  it("keeps all eight pre-v11 power-level keys", () => {
    const content = { ban: 1, events: {}, events_default: 2, kick: 3, redact: 4, state_default: 5, users: {}, users_default: 6 };
    expect(redactEvent(event("m.room.power_levels", { ...content, other: 1 }), rules)["content"]).toEqual(content);
  });

  it(`${since(11)(rules) ? "reduces third_party_invite to its signed member" : "drops third_party_invite"}`, () => {
    const signed = { mxid: "@u:example.org", token: "t", signatures: {} };
    const content = { membership: "invite", third_party_invite: { display_name: "Bob", signed } };
    const redacted = redactEvent(event("m.room.member", content), rules)["content"];
    expect(redacted).toEqual(
      since(11)(rules) ? { membership: "invite", third_party_invite: { signed } } : { membership: "invite" },
    );
  });

  it("does not modify the input event", () => {
    const input = event("m.room.member", { membership: "join", displayname: "x" }, { origin: "o" });
    const before = structuredClone(input);
    redactEvent(input, rules);
    expect(input).toStrictEqual(before);
  });

  it("gives an event without content an empty content object", () => {
    const { content: _content, ...noContent } = event("m.room.member", {});
    expect(redactEvent(noContent, rules)["content"]).toEqual({});
  });
});

describe("v11 third_party_invite edge cases (following Synapse's prune_event_dict)", () => {
  const v11 = getRoomVersion("11");
  it("keeps an empty third_party_invite object when it has no signed member", () => {
    expect(redactEvent(event("m.room.member", { membership: "join", third_party_invite: { display_name: "x" } }), v11)["content"]).toEqual({
      membership: "join",
      third_party_invite: {},
    });
  });

  it("drops a third_party_invite that is not an object", () => {
    expect(redactEvent(event("m.room.member", { membership: "join", third_party_invite: "x" }), v11)["content"]).toEqual({
      membership: "join",
    });
  });

  it("keeps the whole content of a create event, nested values included", () => {
    const content = { room_version: "11", predecessor: { room_id: "!old:x", event_id: "$e" }, type: "m.space" };
    expect(redactEvent(event("m.room.create", content), v11)["content"]).toEqual(content);
  });
});

describe("the spec's redactable event (rooms 1-10)", () => {
  it("strips content.body but keeps origin", () => {
    const input = {
      content: { body: "Here is the message content" },
      event_id: "$0:domain",
      origin: "domain",
      origin_server_ts: 1000000,
      type: "m.room.message",
      room_id: "!r:domain",
      sender: "@u:domain",
      signatures: {},
      unsigned: { age_ts: 1000000 },
    };
    expect(redactEvent(input, getRoomVersion("1"))).toStrictEqual({
      content: {},
      event_id: "$0:domain",
      origin: "domain",
      origin_server_ts: 1000000,
      type: "m.room.message",
      room_id: "!r:domain",
      sender: "@u:domain",
      signatures: {},
    });
  });
});
