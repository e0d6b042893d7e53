import { getRoomVersion } from "@myelin/types";
import { MatrixError } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { defaultPowerLevels, planRoom } from "./create-room.js";

const ALICE = "@alice:hs.test";
const BOB = "@bob:hs.test";
const REMOTE = "@rob:remote.test";

describe("planRoom", () => {
  it("orders the events as createRoom prescribes: join, power levels, alias, preset, initial state, name, topic, invites", () => {
    const plan = planRoom(
      {
        creator: ALICE,
        alias: "#room:hs.test",
        initialState: [{ type: "m.room.encryption", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
        name: "Name",
        topic: "Topic",
        invite: [BOB, REMOTE],
      },
      getRoomVersion("11"),
      [BOB],
    );
    expect(plan.events.map((e) => `${e.type}/${e.stateKey ?? ""}`)).toEqual([
      `m.room.member/${ALICE}`,
      "m.room.power_levels/",
      "m.room.canonical_alias/",
      "m.room.join_rules/",
      "m.room.history_visibility/",
      "m.room.guest_access/",
      "m.room.encryption/",
      "m.room.name/",
      "m.room.topic/",
      `m.room.member/${BOB}`,
    ]);
    // The remote invitee is left to federation.
    expect(plan.events.some((e) => e.stateKey === REMOTE)).toBe(false);
  });

  it("applies each preset's join rules, history visibility and guest access", () => {
    const contents = (preset: "private_chat" | "public_chat" | "trusted_private_chat") => {
      const plan = planRoom({ creator: ALICE, preset }, getRoomVersion("10"), []);
      const pick = (type: string) => plan.events.find((e) => e.type === type)?.content;
      return [pick("m.room.join_rules"), pick("m.room.history_visibility"), pick("m.room.guest_access")];
    };
    expect(contents("public_chat")).toEqual([{ join_rule: "public" }, { history_visibility: "shared" }, { guest_access: "forbidden" }]);
    expect(contents("private_chat")).toEqual([{ join_rule: "invite" }, { history_visibility: "shared" }, { guest_access: "can_join" }]);
    expect(contents("trusted_private_chat")).toEqual([{ join_rule: "invite" }, { history_visibility: "shared" }, { guest_access: "can_join" }]);
  });

  it("chooses public_chat for public visibility and private_chat otherwise when no preset is given", () => {
    expect(planRoom({ creator: ALICE, visibility: "public" }, getRoomVersion("10"), []).preset).toBe("public_chat");
    expect(planRoom({ creator: ALICE, visibility: "private" }, getRoomVersion("10"), []).preset).toBe("private_chat");
    expect(planRoom({ creator: ALICE }, getRoomVersion("10"), []).preset).toBe("private_chat");
  });

  it("lets initial_state replace a preset event and name/topic replace initial_state's", () => {
    const plan = planRoom(
      {
        creator: ALICE,
        preset: "public_chat",
        initialState: [
          { type: "m.room.join_rules", content: { join_rule: "invite" } },
          { type: "m.room.name", content: { name: "from initial_state" } },
        ],
        name: "from name",
      },
      getRoomVersion("11"),
      [],
    );
    const joinRules = plan.events.filter((e) => e.type === "m.room.join_rules");
    expect(joinRules.map((e) => e.content)).toEqual([{ join_rule: "invite" }]);
    expect(plan.events.filter((e) => e.type === "m.room.name").map((e) => e.content)).toEqual([{ name: "from name" }]);
  });

  it("puts creator in create content only where the room version needs it, and always room_version", () => {
    expect(planRoom({ creator: ALICE, creationContent: { creator: "@mallory:x", "m.federate": false } }, getRoomVersion("10"), []).createContent).toEqual({
      creator: ALICE,
      room_version: "10",
      "m.federate": false,
    });
    expect(planRoom({ creator: ALICE, creationContent: { creator: "@mallory:x" } }, getRoomVersion("11"), []).createContent).toEqual({ room_version: "11" });
  });

  it("in room 12 lists no creator in power levels, sets the tombstone level above state_default, and makes trusted_private_chat invitees additional creators", () => {
    const plan = planRoom({ creator: ALICE, preset: "trusted_private_chat", invite: [BOB, REMOTE], creationContent: { additional_creators: ["@carol:hs.test", BOB] } }, getRoomVersion("12"), [BOB]);
    expect(plan.createContent["additional_creators"]).toEqual(["@carol:hs.test", BOB, REMOTE]);
    const power = plan.events.find((e) => e.type === "m.room.power_levels")?.content as Record<string, unknown>;
    expect(power["users"]).toEqual({});
    const events = power["events"] as Record<string, number>;
    expect(events["m.room.tombstone"]).toBeGreaterThan(power["state_default"] as number);
  });

  it("gives trusted_private_chat invitees the creator's level in rooms 1-11", () => {
    const power = defaultPowerLevels(getRoomVersion("9"), "trusted_private_chat", ALICE, [BOB]);
    expect(power["users"]).toEqual({ [ALICE]: 100, [BOB]: 100 });
    expect(defaultPowerLevels(getRoomVersion("9"), "private_chat", ALICE, [BOB])["users"]).toEqual({ [ALICE]: 100 });
  });

  it("applies power_level_content_override over the defaults, key by key", () => {
    const plan = planRoom({ creator: ALICE, powerLevelContentOverride: { users_default: 50, events: { "m.room.name": 0 } } }, getRoomVersion("10"), []);
    const power = plan.events.find((e) => e.type === "m.room.power_levels")?.content as Record<string, unknown>;
    expect(power["users_default"]).toBe(50);
    expect(power["events"]).toEqual({ "m.room.name": 0 });
    expect(power["users"]).toEqual({ [ALICE]: 100 });
  });

  it("refuses a create or member event in initial_state", () => {
    const refused = (type: string) => {
      try {
        planRoom({ creator: ALICE, initialState: [{ type, state_key: type === "m.room.member" ? BOB : "", content: {} }] }, getRoomVersion("10"), []);
      } catch (error) {
        return error instanceof MatrixError ? error.errcode : "other";
      }
      return "accepted";
    };
    expect(refused("m.room.create")).toBe("M_INVALID_PARAM");
    expect(refused("m.room.member")).toBe("M_INVALID_PARAM");
  });
});
