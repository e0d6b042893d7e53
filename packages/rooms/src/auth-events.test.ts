import { getRoomVersion } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { authTypesForEvent, selectAuthEvents } from "./auth-events.js";
import { stateKey } from "./events.js";

const ALICE = "@alice:example.com";
const BOB = "@bob:example.com";

describe("auth events selection", () => {
  it("selects create, power levels and the sender's membership for ordinary events", () => {
    const types = authTypesForEvent({ type: "m.room.message", sender: ALICE, content: {} }, getRoomVersion("11"));
    expect(types).toEqual([stateKey("m.room.create", ""), stateKey("m.room.power_levels", ""), stateKey("m.room.member", ALICE)]);
  });

  it("never selects the create event in room 12", () => {
    const types = authTypesForEvent({ type: "m.room.message", sender: ALICE, content: {} }, getRoomVersion("12"));
    expect(types).not.toContain(stateKey("m.room.create", ""));
  });

  it("selects nothing for the create event", () => {
    expect(authTypesForEvent({ type: "m.room.create", sender: ALICE, state_key: "", content: {} }, getRoomVersion("1"))).toEqual([]);
  });

  it("adds the target, join rules, third-party invite and authorising user for member events", () => {
    const v10 = getRoomVersion("10");
    const invite = authTypesForEvent(
      { type: "m.room.member", sender: ALICE, state_key: BOB, content: { membership: "invite", third_party_invite: { signed: { token: "tok" } } } },
      v10,
    );
    expect(invite).toEqual(expect.arrayContaining([stateKey("m.room.member", BOB), stateKey("m.room.join_rules", ""), stateKey("m.room.third_party_invite", "tok")]));
    const join = { type: "m.room.member", sender: BOB, state_key: BOB, content: { membership: "join", join_authorised_via_users_server: ALICE } };
    expect(authTypesForEvent(join, v10)).toContain(stateKey("m.room.member", ALICE));
    // Before room 8 there are no restricted joins, so the authoriser is not selected.
    expect(authTypesForEvent(join, getRoomVersion("7"))).not.toContain(stateKey("m.room.member", ALICE));
    const leave = authTypesForEvent({ type: "m.room.member", sender: BOB, state_key: BOB, content: { membership: "leave" } }, v10);
    expect(leave).not.toContain(stateKey("m.room.join_rules", ""));
  });

  it("picks the current events at those keys, each once", () => {
    const state = new Map([
      [stateKey("m.room.create", ""), "$c"],
      [stateKey("m.room.power_levels", ""), "$p"],
      [stateKey("m.room.member", ALICE), "$ma"],
      [stateKey("m.room.topic", ""), "$t"],
    ]);
    const selected = selectAuthEvents({ type: "m.room.member", sender: ALICE, state_key: ALICE, content: { membership: "join" } }, state, getRoomVersion("9"));
    expect(selected).toEqual(["$c", "$p", "$ma"]);
  });
});
