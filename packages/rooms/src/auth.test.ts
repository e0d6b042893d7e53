import { getRoomVersion, type JsonObject } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { type AuthDecision, type AuthOptions, type AuthState, checkAuthAgainstState, checkCreate } from "./auth.js";
import type { RoomEvent } from "./events.js";
import { ruleNumber } from "./rules.js";
import { ALICE, BOB, CHARLIE, REMOTE, TestRoom, users, ZARA } from "./testing/builders.js";
import { generateSigningKey, verifyWithNodeCrypto } from "./testing/ed25519.js";

const ALL = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"] as const;
const range = (from: number, to: number) => ALL.filter((v) => Number(v) >= from && Number(v) <= to);

function against(room: TestRoom, event: RoomEvent, state: AuthState, options: AuthOptions = {}): AuthDecision {
  return checkAuthAgainstState(event, state, room.rules, { createEvent: room.create, ...options });
}

function expectDecision(decision: AuthDecision, allowed: boolean, name: string, room?: TestRoom): void {
  expect({ allowed: decision.allowed, name: decision.name }).toEqual({ allowed, name });
  if (room !== undefined) expect(decision.rule).toBe(ruleNumber(room.rules, name));
}

describe("rule numbers follow each room version's spec text", () => {
  it.each([
    ["1", "aliases.wrong_domain", "4.2"],
    ["1", "member.join.public", "5.2.5"],
    ["1", "power_levels.users_removed.old_too_high", "10.6.1"],
    ["1", "redaction.same_domain", "11.2"],
    ["1", "otherwise", "12"],
    ["3", "power_levels.allow", "10.8"],
    ["3", "otherwise", "11"],
    ["6", "member.invite.power", "4.3.4"],
    ["6", "otherwise", "10"],
    ["7", "member.leave.self", "4.4.1"],
    ["7", "member.knock.allow", "4.6.3"],
    ["8", "member.authorising_signature", "4.2"],
    ["8", "member.join.restricted.authoriser_invalid", "4.3.5.2"],
    ["8", "member.knock.allow", "4.7.3"],
    ["10", "power_levels.scalar_types", "9.1"],
    ["10", "power_levels.no_previous", "9.4"],
    ["11", "create.allow", "1.4"],
    ["12", "create.additional_creators", "1.4"],
    ["12", "room_id", "2"],
    ["12", "auth_events.wrong_room", "3.5"],
    ["12", "federate", "4"],
    ["12", "member.invite.third_party.target_banned", "5.4.1.1"],
    ["12", "power_levels.creators_in_users", "10.4"],
    ["12", "power_levels.users_added", "10.10"],
    ["12", "otherwise", "11"],
  ])("room %s numbers %s as %s", (version, name, number) => {
    expect(ruleNumber(getRoomVersion(version), name)).toBe(number);
  });

  it("has no number for rules a version lacks", () => {
    expect(ruleNumber(getRoomVersion("5"), "member.knock.allow")).toBeUndefined();
    expect(ruleNumber(getRoomVersion("6"), "aliases.allow")).toBeUndefined();
    expect(ruleNumber(getRoomVersion("3"), "redaction.power")).toBeUndefined();
    expect(ruleNumber(getRoomVersion("11"), "room_id")).toBeUndefined();
  });
});

describe("rule 1: m.room.create", () => {
  it.each(ALL)("room %s allows a well-formed create event", (v) => {
    const room = new TestRoom(v);
    expectDecision(checkCreate(room.create, room.rules), true, "create.allow", room);
  });

  it.each(ALL)("room %s refuses a create event with prev_events", (v) => {
    const room = new TestRoom(v);
    expectDecision(checkCreate({ ...room.create, prev_events: ["$x"] }, room.rules), false, "create.prev_events", room);
  });

  it.each(range(1, 11))("room %s refuses a room ID whose domain is not the sender's", (v) => {
    const room = new TestRoom(v);
    const create = { ...room.create, room_id: "!room:elsewhere.test" };
    expectDecision(checkCreate(create, room.rules), false, "create.room_id", room);
  });

  it("room 12 refuses a create event that carries a room_id, and needs none", () => {
    const room = new TestRoom("12");
    expectDecision(checkCreate({ ...room.create, room_id: "!x" }, room.rules), false, "create.room_id", room);
    expect(room.create.room_id).toBeUndefined();
  });

  it.each(ALL)("room %s refuses an unrecognised content.room_version", (v) => {
    const room = new TestRoom(v, { room_version: "999" });
    expectDecision(checkCreate(room.create, room.rules), false, "create.room_version", room);
  });

  it.each(range(1, 10))("room %s refuses a create event without content.creator", (v) => {
    const room = new TestRoom(v);
    const { creator: _creator, ...content } = room.create.content;
    expectDecision(checkCreate({ ...room.create, content }, room.rules), false, "create.creator", room);
  });

  it.each(range(11, 12))("room %s does not need content.creator", (v) => {
    const room = new TestRoom(v);
    expect(Object.hasOwn(room.create.content, "creator")).toBe(false);
    expectDecision(checkCreate(room.create, room.rules), true, "create.allow", room);
  });

  it.each([[["not-a-user"]], ["@bob:example.com"], [[42]]])(
    "room 12 refuses malformed additional_creators %j",
    (additional) => {
      const room = new TestRoom("12", { additional_creators: additional });
      expectDecision(checkCreate(room.create, room.rules), false, "create.additional_creators", room);
    },
  );

  it("room 12 accepts additional_creators that are user IDs; room 11 ignores the field", () => {
    const v12 = new TestRoom("12", { additional_creators: [BOB] });
    expectDecision(checkCreate(v12.create, v12.rules), true, "create.allow", v12);
    const v11 = new TestRoom("11", { additional_creators: "garbage" });
    expectDecision(checkCreate(v11.create, v11.rules), true, "create.allow", v11);
  });
});

describe("rule 3 (4 before room 12): m.federate", () => {
  it.each(ALL)("room %s refuses a remote sender when m.federate is false, allows a local one", (v) => {
    const room = new TestRoom(v, { "m.federate": false });
    const state = room.state(room.member(ALICE, "join"), room.joinRules("public"), room.member(REMOTE, "join"));
    const remote = room.event({ type: "m.room.message", sender: REMOTE });
    expectDecision(against(room, remote, state), false, "federate", room);
    const local = room.event({ type: "m.room.message", sender: ALICE });
    expectDecision(against(room, local, state), true, "otherwise", room);
  });
});

describe("rule 4 (rooms 1-5): m.room.aliases", () => {
  it.each(range(1, 5))("room %s lets a server set the aliases under its own domain without joining", (v) => {
    const room = new TestRoom(v);
    const event = room.event({ type: "m.room.aliases", sender: REMOTE, state_key: "elsewhere.test", content: { aliases: [] } });
    expectDecision(against(room, event, room.basicState()), true, "aliases.allow", room);
  });

  it.each(range(1, 5))("room %s refuses aliases under another domain, or without a state_key", (v) => {
    const room = new TestRoom(v);
    const wrong = room.event({ type: "m.room.aliases", sender: REMOTE, state_key: "example.com" });
    expectDecision(against(room, wrong, room.basicState()), false, "aliases.wrong_domain", room);
    const none = room.event({ type: "m.room.aliases", sender: REMOTE });
    expectDecision(against(room, none, room.basicState()), false, "aliases.no_state_key", room);
  });

  it.each(range(6, 12))("room %s treats m.room.aliases as ordinary state (no special rule)", (v) => {
    const room = new TestRoom(v);
    const event = room.event({ type: "m.room.aliases", sender: REMOTE, state_key: "elsewhere.test" });
    expectDecision(against(room, event, room.basicState()), false, "sender_not_joined", room);
  });
});

describe("rule 4/5: m.room.member, general", () => {
  it.each(ALL)("room %s refuses a member event without content.membership", (v) => {
    const room = new TestRoom(v);
    const event = room.event({ type: "m.room.member", sender: BOB, state_key: BOB, content: {} });
    expectDecision(against(room, event, room.basicState()), false, "member.malformed", room);
  });

  it.each(ALL)("room %s refuses an unknown membership", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(BOB, "dance"), room.basicState()), false, "member.unknown", room);
  });
});

describe("joins", () => {
  it.each(ALL)("room %s lets the creator join right after the create event", (v) => {
    const room = new TestRoom(v);
    const join = { ...room.member(ALICE, "join"), prev_events: [room.create.event_id] };
    expectDecision(against(room, join, room.state()), true, "member.join.creator", room);
  });

  it("room 10 takes the creator from content.creator, room 11 from the sender", () => {
    for (const [version, joiner, allowed] of [
      ["10", BOB, true],
      ["10", ALICE, false],
      ["11", ALICE, true],
      ["11", BOB, false],
    ] as const) {
      const room = new TestRoom(version);
      const create = { ...room.create, sender: ALICE, content: { ...room.create.content, creator: BOB } };
      const join = { ...room.member(joiner, "join"), prev_events: [create.event_id] };
      const stateWithCreate = new Map([[JSON.stringify(["m.room.create", ""]), create]]);
      const decision = checkAuthAgainstState(join, stateWithCreate, room.rules);
      expect(decision.allowed, `room ${version}, ${joiner}`).toBe(allowed);
    }
  });

  it.each(ALL)("room %s refuses joining on behalf of someone else", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(CHARLIE, "join", BOB), room.basicState()), false, "member.join.not_self", room);
  });

  it.each(ALL)("room %s refuses a banned user's join, even in a public room", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public");
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "ban", ALICE));
    expectDecision(against(room, room.member(ZARA, "join"), state), false, "member.join.banned", room);
  });

  it.each(ALL)("room %s lets anyone join a public room", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "join"), room.basicState("public")), true, "member.join.public", room);
  });

  it.each(ALL)("room %s lets only invited or joined users join an invite-only room", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("invite");
    expectDecision(against(room, room.member(ZARA, "join"), state), false, "member.join.invite_rule", room);
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "invite", ALICE));
    expectDecision(against(room, room.member(ZARA, "join"), state), true, "member.join.invite_rule", room);
  });

  it.each(ALL)("room %s refuses joins under an unknown join rule", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "join"), room.basicState("private")), false, "member.join.otherwise", room);
  });

  it("the knock join rule admits invited users from room 7, and no one before", () => {
    for (const v of ALL) {
      const room = new TestRoom(v);
      const state = room.basicState("knock");
      state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "invite", ALICE));
      const decision = against(room, room.member(ZARA, "join"), state);
      expectDecision(decision, Number(v) >= 7, Number(v) >= 7 ? "member.join.invite_rule" : "member.join.otherwise", room);
    }
  });
});

describe("restricted joins (rooms 8+) and knock_restricted (rooms 10+)", () => {
  const signedBy = (event: RoomEvent, server: string): RoomEvent => ({
    ...event,
    signatures: { [server]: { "ed25519:1": "sig" } },
  });

  function restrictedJoin(room: TestRoom, authoriser: string | undefined) {
    const content: JsonObject = authoriser === undefined ? {} : { join_authorised_via_users_server: authoriser };
    const join = room.member(ZARA, "join", ZARA, content);
    return signedBy(signedBy(join, "example.com"), "example.com");
  }

  it.each(range(8, 12))("room %s admits a join authorised by a joined user with invite power", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("restricted", {}, BOB);
    expectDecision(against(room, restrictedJoin(room, BOB), state), true, "member.join.restricted.allow", room);
  });

  it.each(range(8, 12))("room %s refuses an authoriser who is not joined", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("restricted");
    expectDecision(against(room, restrictedJoin(room, CHARLIE), state), false, "member.join.restricted.authoriser_invalid", room);
  });

  it.each(range(8, 12))("room %s refuses an authoriser below the invite level, or none at all", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("restricted", { invite: 60 }, BOB);
    expectDecision(against(room, restrictedJoin(room, BOB), state), false, "member.join.restricted.authoriser_invalid", room);
    expectDecision(against(room, restrictedJoin(room, undefined), state), false, "member.join.restricted.authoriser_invalid", room);
  });

  it.each(range(8, 12))("room %s admits an already invited user without an authoriser", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("restricted");
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "invite", ALICE));
    expectDecision(against(room, restrictedJoin(room, undefined), state), true, "member.join.restricted.already_in", room);
  });

  it.each(range(8, 12))("room %s refuses a join naming an authoriser whose server did not sign it", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("restricted", {}, REMOTE);
    const join = signedBy(room.member(ZARA, "join", ZARA, { join_authorised_via_users_server: REMOTE }), "example.com");
    expectDecision(against(room, join, state), false, "member.authorising_signature", room);
  });

  it.each(range(1, 7))("room %s knows no restricted rule: such joins are refused", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("restricted", {}, BOB);
    expectDecision(against(room, restrictedJoin(room, BOB), state), false, "member.join.otherwise", room);
  });

  it("knock_restricted admits authorised joins from room 10, not in rooms 8-9", () => {
    for (const v of range(8, 12)) {
      const room = new TestRoom(v);
      const state = room.basicState("knock_restricted", {}, BOB);
      const decision = against(room, restrictedJoin(room, BOB), state);
      const newer = Number(v) >= 10;
      expectDecision(decision, newer, newer ? "member.join.restricted.allow" : "member.join.otherwise", room);
    }
  });
});

describe("invites", () => {
  it.each(ALL)("room %s lets a joined user with invite power invite", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "invite", ALICE), room.basicState()), true, "member.invite.power", room);
  });

  it.each(ALL)("room %s refuses an invite from a user who is not joined", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "invite", CHARLIE), room.basicState()), false, "member.invite.sender_not_joined", room);
  });

  it.each(ALL)("room %s refuses inviting a joined or banned user", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", {}, ZARA);
    expectDecision(against(room, room.member(ZARA, "invite", ALICE), state), false, "member.invite.target_joined_or_banned", room);
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "ban", ALICE));
    expectDecision(against(room, room.member(ZARA, "invite", ALICE), state), false, "member.invite.target_joined_or_banned", room);
  });

  it.each(ALL)("room %s refuses an invite below the invite level", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", { invite: 60 }, CHARLIE);
    expectDecision(against(room, room.member(ZARA, "invite", CHARLIE), state), false, "member.invite.otherwise", room);
  });
});

describe("third-party invites", () => {
  const key = generateSigningKey();
  const TOKEN = "abc123";

  function setup(v: string) {
    const room = new TestRoom(v);
    const tpi = room.event({
      type: "m.room.third_party_invite",
      sender: ALICE,
      state_key: TOKEN,
      content: { display_name: "z...", public_keys: [{ public_key: key.publicKey }] },
    });
    const state = room.state(...room.basicState().values(), tpi);
    const signed = key.sign({ mxid: ZARA, token: TOKEN, sender: ALICE }, "identity.test", "ed25519:0");
    const invite = (content: JsonObject, sender = ALICE) =>
      room.member(ZARA, "invite", sender, { third_party_invite: { display_name: "z", ...content } });
    return { room, state, signed, invite };
  }
  const opts = { verifySignature: verifyWithNodeCrypto };

  it.each(ALL)("room %s admits an invite whose signed block verifies with a key of the invite", (v) => {
    const { room, state, signed, invite } = setup(v);
    expectDecision(against(room, invite({ signed }), state, opts), true, "member.invite.third_party.signature_valid", room);
  });

  it.each(ALL)("room %s refuses a signed block with a bad signature", (v) => {
    const { room, state, signed, invite } = setup(v);
    const forged = { ...signed, mxid: ZARA, token: TOKEN, sender: BOB };
    expectDecision(against(room, invite({ signed: forged }), state, opts), false, "member.invite.third_party.otherwise", room);
  });

  it("refuses each malformed or mismatched third-party invite by its own rule", () => {
    const { room, state, signed, invite } = setup("12");
    const cases: [RoomEvent, string][] = [
      [invite({}), "member.invite.third_party.no_signed"],
      [invite({ signed: { mxid: ZARA } }), "member.invite.third_party.no_mxid_or_token"],
      [invite({ signed: { ...signed, mxid: BOB } }), "member.invite.third_party.mxid_mismatch"],
      [invite({ signed: { ...signed, token: "other" } }), "member.invite.third_party.no_invite_event"],
      [invite({ signed }, BOB), "member.invite.third_party.sender_mismatch"],
    ];
    for (const [event, name] of cases) expectDecision(against(room, event, state, opts), false, name, room);
    const banned = new Map(state);
    banned.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "ban", ALICE));
    expectDecision(against(room, invite({ signed }), banned, opts), false, "member.invite.third_party.target_banned", room);
  });

  it("verifies with @myelin/signing when no verifier is given", () => {
    const { room, state, signed, invite } = setup("10");
    expectDecision(against(room, invite({ signed }), state), true, "member.invite.third_party.signature_valid", room);
    const tampered = { ...signed, mxid: ZARA, token: TOKEN, sender: CHARLIE };
    expectDecision(against(room, invite({ signed: tampered }), state), false, "member.invite.third_party.otherwise", room);
  });

  it.each(ALL)("room %s allows m.room.third_party_invite events only at the invite level", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", { invite: 10 }, CHARLIE);
    const event = (sender: string) => room.event({ type: "m.room.third_party_invite", sender, state_key: "t" });
    expectDecision(against(room, event(ALICE), state), true, "third_party_invite.power", room);
    expectDecision(against(room, event(CHARLIE), state), false, "third_party_invite.power", room);
  });
});

describe("leaves and kicks", () => {
  it.each(ALL)("room %s lets joined and invited users leave, but not users who already left", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", {}, ZARA);
    expectDecision(against(room, room.member(ZARA, "leave"), state), true, "member.leave.self", room);
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "invite", ALICE));
    expectDecision(against(room, room.member(ZARA, "leave"), state), true, "member.leave.self", room);
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "leave"));
    expectDecision(against(room, room.member(ZARA, "leave"), state), false, "member.leave.self", room);
  });

  it("lets a knocking user retract the knock from room 7 only", () => {
    for (const v of ALL) {
      const room = new TestRoom(v);
      const state = room.basicState("knock");
      state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "knock"));
      expectDecision(against(room, room.member(ZARA, "leave"), state), Number(v) >= 7, "member.leave.self", room);
    }
  });

  it.each(ALL)("room %s refuses a kick by a user who is not joined", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "leave", CHARLIE), room.basicState("public", {}, ZARA)), false, "member.leave.sender_not_joined", room);
  });

  it.each(ALL)("room %s lets a user with kick power kick a weaker user", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "leave", BOB), room.basicState("public", {}, BOB, ZARA)), true, "member.leave.kick_power", room);
  });

  it.each(ALL)("room %s refuses kicking a user of equal power", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", { users: users(room.rules, { [BOB]: 50, [ZARA]: 50 }) }, BOB, ZARA);
    expectDecision(against(room, room.member(ZARA, "leave", BOB), state), false, "member.leave.otherwise", room);
  });

  it.each(ALL)("room %s refuses an unban below the ban level", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", { kick: 0, ban: 75 }, BOB);
    state.set(JSON.stringify(["m.room.member", ZARA]), room.member(ZARA, "ban", ALICE));
    expectDecision(against(room, room.member(ZARA, "leave", BOB), state), false, "member.leave.unban_power", room);
    expectDecision(against(room, room.member(ZARA, "leave", ALICE), state), true, "member.leave.kick_power", room);
  });
});

describe("bans", () => {
  it.each(ALL)("room %s lets a user with ban power ban a weaker user", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "ban", BOB), room.basicState("public", {}, BOB)), true, "member.ban.power", room);
  });

  it.each(ALL)("room %s refuses a ban by a user who is not joined", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "ban", BOB), room.basicState()), false, "member.ban.sender_not_joined", room);
  });

  it.each(ALL)("room %s refuses banning a stronger user", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ALICE, "ban", BOB), room.basicState("public", {}, BOB)), false, "member.ban.otherwise", room);
  });
});

describe("knocks (rooms 7+)", () => {
  it.each(range(7, 12))("room %s lets an outsider knock when the join rule is knock", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "knock"), room.basicState("knock")), true, "member.knock.allow", room);
  });

  it.each(range(7, 12))("room %s refuses knocks under another join rule, for someone else, or by members", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "knock"), room.basicState("invite")), false, "member.knock.join_rule", room);
    expectDecision(against(room, room.member(ZARA, "knock", BOB), room.basicState("knock", {}, BOB)), false, "member.knock.not_self", room);
    expectDecision(against(room, room.member(ZARA, "knock"), room.basicState("knock", {}, ZARA)), false, "member.knock.otherwise", room);
  });

  it("knock_restricted allows knocking from room 10, not in rooms 7-9", () => {
    for (const v of range(7, 12)) {
      const room = new TestRoom(v);
      const decision = against(room, room.member(ZARA, "knock"), room.basicState("knock_restricted"));
      expectDecision(decision, Number(v) >= 10, Number(v) >= 10 ? "member.knock.allow" : "member.knock.join_rule", room);
    }
  });

  it.each(range(1, 6))("room %s has no knock membership", (v) => {
    const room = new TestRoom(v);
    expectDecision(against(room, room.member(ZARA, "knock"), room.basicState("knock")), false, "member.unknown", room);
  });
});

describe("other events: membership, power and state keys", () => {
  it.each(ALL)("room %s refuses events from users who are not joined", (v) => {
    const room = new TestRoom(v);
    const event = room.event({ type: "m.room.message", sender: ZARA });
    expectDecision(against(room, event, room.basicState()), false, "sender_not_joined", room);
  });

  it.each(ALL)("room %s refuses an event below its required power level and allows one at it", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", { events: { "m.room.topic": 50 } }, CHARLIE, BOB);
    const topic = (sender: string) => room.event({ type: "m.room.topic", sender, state_key: "", content: { topic: "t" } });
    expectDecision(against(room, topic(CHARLIE), state), false, "required_power", room);
    expectDecision(against(room, topic(BOB), state), true, "otherwise", room);
  });

  it.each(ALL)("room %s uses state_default (50) for state and events_default (0) for messages", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", {}, CHARLIE);
    expectDecision(against(room, room.event({ type: "x.custom", sender: CHARLIE, state_key: "" }), state), false, "required_power", room);
    expectDecision(against(room, room.event({ type: "x.custom", sender: CHARLIE }), state), true, "otherwise", room);
  });

  it.each(ALL)("room %s refuses a state_key naming another user", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState();
    expectDecision(against(room, room.event({ type: "x.custom", sender: ALICE, state_key: BOB }), state), false, "state_key_user", room);
    expectDecision(against(room, room.event({ type: "x.custom", sender: ALICE, state_key: ALICE }), state), true, "otherwise", room);
  });

  it.each(range(1, 11))("room %s gives the creator 100 and others 0 when there are no power levels", (v) => {
    const room = new TestRoom(v);
    const state = room.state(room.member(ALICE, "join"), room.joinRules("public"), room.member(BOB, "join"));
    const topic = (sender: string) => room.event({ type: "m.room.topic", sender, state_key: "" });
    expectDecision(against(room, topic(ALICE), state), true, "otherwise", room);
    expectDecision(against(room, topic(BOB), state), false, "required_power", room);
  });
});

describe("power levels", () => {
  const setupPl = (v: string, previous: JsonObject = {}) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", previous, BOB, CHARLIE);
    return { room, state };
  };

  it.each(ALL)("room %s allows the first power-levels event", (v) => {
    const room = new TestRoom(v);
    const state = room.state(room.member(ALICE, "join"));
    expectDecision(against(room, room.powerLevels({ users: users(room.rules) }), state), true, "power_levels.no_previous", room);
  });

  it.each(ALL)("room %s refuses users keys that are not user IDs", (v) => {
    const { room, state } = setupPl(v);
    expectDecision(against(room, room.powerLevels({ users: { "not-a-user": 10 } }), state), false, "power_levels.users", room);
  });

  it.each(range(1, 9))("room %s accepts integer strings such as \" +50 \"", (v) => {
    const { room, state } = setupPl(v);
    const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }), ban: " +50 ", events: { "m.room.name": "050" } });
    expectDecision(against(room, pl, state), true, "power_levels.allow", room);
  });

  it.each(range(10, 12))("room %s refuses string power levels (rules 10.1-10.3 / 9.1-9.3)", (v) => {
    const { room, state } = setupPl(v);
    expectDecision(against(room, room.powerLevels({ users: users(room.rules), ban: "50" }), state), false, "power_levels.scalar_types", room);
    expectDecision(
      against(room, room.powerLevels({ users: users(room.rules), events: { "m.room.name": "50" } }), state),
      false,
      "power_levels.map_types",
      room,
    );
    expectDecision(against(room, room.powerLevels({ users: users(room.rules, { [BOB]: "50" }) }), state), false, "power_levels.users", room);
  });

  it.each(range(1, 5))("room %s truncates float power levels", (v) => {
    const { room, state } = setupPl(v);
    // 50.9 truncates to 50, Bob's current level: an unchanged entry, so allowed for Bob himself.
    const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50.9, [CHARLIE]: 10.2 }) }, BOB);
    expectDecision(against(room, pl, state), true, "power_levels.allow", room);
  });

  it.each(range(6, 9))("room %s refuses floats (strict canonical JSON)", (v) => {
    const { room, state } = setupPl(v);
    expectDecision(against(room, room.powerLevels({ users: users(room.rules, { [BOB]: 50.5 }) }), state), false, "power_levels.users", room);
  });

  it.each(ALL)("room %s refuses changing a property whose old value is above the sender", (v) => {
    const { room, state } = setupPl(v, { ban: 75 });
    const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }), ban: 40 }, BOB);
    expectDecision(against(room, pl, state), false, "power_levels.scalars.old_too_high", room);
  });

  it.each(ALL)("room %s refuses raising a property above the sender", (v) => {
    const { room, state } = setupPl(v);
    const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }), kick: 60 }, BOB);
    expectDecision(against(room, pl, state), false, "power_levels.scalars.new_too_high", room);
  });

  it.each(ALL)("room %s refuses lowering an events entry above the sender, and adding one above", (v) => {
    const { room, state } = setupPl(v, { events: { "m.room.name": 100 } });
    const lower = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }), events: { "m.room.name": 0 } }, BOB);
    expectDecision(against(room, lower, state), false, "power_levels.map_removed.old_too_high", room);
    const add = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }), events: { "m.room.name": 100, "m.room.topic": 70 } }, BOB);
    expectDecision(against(room, add, state), false, "power_levels.map_added.new_too_high", room);
  });

  it("checks notifications entries from room 6, not before", () => {
    for (const v of ALL) {
      const { room, state } = setupPl(v);
      const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }), notifications: { room: 90 } }, BOB);
      const checked = Number(v) >= 6;
      expectDecision(against(room, pl, state), !checked, checked ? "power_levels.map_added.new_too_high" : "power_levels.allow", room);
    }
  });

  it.each(ALL)("room %s refuses changing a user at or above the sender's level", (v) => {
    const { room, state } = setupPl(v, { users: users(getRoomVersion(v), { [BOB]: 50, [CHARLIE]: 50 }) });
    const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50, [CHARLIE]: 0 }) }, BOB);
    expectDecision(against(room, pl, state), false, "power_levels.users_removed.old_too_high", room);
  });

  it.each(ALL)("room %s lets a user lower their own level, but not raise anyone above theirs", (v) => {
    const { room, state } = setupPl(v);
    expectDecision(against(room, room.powerLevels({ users: users(room.rules, { [BOB]: 10 }) }, BOB), state), true, "power_levels.allow", room);
    const raise = room.powerLevels({ users: users(room.rules, { [BOB]: 50, [CHARLIE]: 51 }) }, BOB);
    expectDecision(against(room, raise, state), false, "power_levels.users_added.new_too_high", room);
  });
});

describe("room 12: creators", () => {
  it("refuses power levels that list a creator in users (rule 10.4)", () => {
    const room = new TestRoom("12", { additional_creators: [BOB] });
    const state = room.basicState("public", {}, BOB);
    const pl = room.powerLevels({ users: { [BOB]: 100 } });
    expectDecision(against(room, pl, state), false, "power_levels.creators_in_users", room);
    expectDecision(against(room, room.powerLevels({ users: { [ALICE]: 100 } }), state), false, "power_levels.creators_in_users", room);
  });

  it("gives creators infinite power: they pass any level and cannot be kicked", () => {
    const room = new TestRoom("12", { additional_creators: [BOB] });
    const state = room.basicState("public", { users: { [CHARLIE]: 9007199254740991 }, ban: 9007199254740991 }, BOB, CHARLIE);
    expectDecision(against(room, room.member(CHARLIE, "ban", BOB), state), true, "member.ban.power", room);
    expectDecision(against(room, room.member(BOB, "leave", CHARLIE), state), false, "member.leave.otherwise", room);
    expectDecision(against(room, room.member(ALICE, "leave", BOB), state), false, "member.leave.otherwise", room);
  });

  it("without power levels, additional creators may send state and others may not", () => {
    const room = new TestRoom("12", { additional_creators: [BOB] });
    const state = room.state(room.member(ALICE, "join"), room.joinRules("public"), room.member(BOB, "join"), room.member(CHARLIE, "join"));
    const topic = (sender: string) => room.event({ type: "m.room.topic", sender, state_key: "" });
    expectDecision(against(room, topic(BOB), state), true, "otherwise", room);
    expectDecision(against(room, topic(CHARLIE), state), false, "required_power", room);
  });

  it("room 11 gives additional_creators no power", () => {
    const room = new TestRoom("11", { additional_creators: [BOB] });
    const state = room.state(room.member(ALICE, "join"), room.joinRules("public"), room.member(BOB, "join"));
    expectDecision(against(room, room.event({ type: "m.room.topic", sender: BOB, state_key: "" }), state), false, "required_power", room);
  });
});

describe("redactions", () => {
  it.each(range(1, 2))("room %s allows a redaction at the redact level, or of an event from the same domain", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", {}, CHARLIE);
    const redaction = (sender: string, redacts: string) =>
      room.event({ type: "m.room.redaction", sender, redacts, event_id: "$r1:example.com" });
    expectDecision(against(room, redaction(ALICE, "$x:elsewhere.test"), state), true, "redaction.power", room);
    expectDecision(against(room, redaction(CHARLIE, "$x:example.com"), state), true, "redaction.same_domain", room);
    expectDecision(against(room, redaction(CHARLIE, "$x:elsewhere.test"), state), false, "redaction.otherwise", room);
  });

  it.each(range(3, 12))("room %s authorises redactions like any other event (redact level not consulted)", (v) => {
    const room = new TestRoom(v);
    const state = room.basicState("public", {}, CHARLIE);
    const event = room.event({ type: "m.room.redaction", sender: CHARLIE, redacts: "$x", content: { redacts: "$x" } });
    expectDecision(against(room, event, state), true, "otherwise", room);
  });
});
