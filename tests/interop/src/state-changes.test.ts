// Scenario 6: topic, power levels, kick, ban, unban, redaction and leave made on either
// server; each side sees the other's changes and both end with the same current state.
// The steps of one room run in order (each builds on the previous one).
import { beforeAll, describe, expect, test } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { usePeers } from "./peers.js";
import {
  DIRECTIONS,
  ROOM_VERSIONS,
  newUser,
  serverNameOf,
  waitForEvent,
  waitForIdenticalState,
  waitForMembership,
  waitForStateContent,
} from "./rooms.js";
import { waitFor } from "@myelin/test-support";

const peers = usePeers();

interface PowerLevels extends Record<string, unknown> {
  users?: Record<string, number>;
}

describe.each(ROOM_VERSIONS)("scenario 6: state changes, room version %s", (roomVersion) => {
  describe.each(DIRECTIONS)("$label", (direction) => {
    let roomId = "";
    /** The room's creator, on the resident server. */
    let resident: CsClient;
    /** The user who joined over federation; made an admin in step 2. */
    let joiner: CsClient;
    /** A second user of the resident server, kicked and banned by the joiner. */
    let residentGuest: CsClient;
    /** A second user of the joining server, kicked and banned by the resident. */
    let joinerGuest: CsClient;
    let residentServer = "";

    beforeAll(async () => {
      const p = peers();
      resident = await newUser(p, direction.resident, "owner");
      joiner = await newUser(p, direction.joiner, "admin");
      residentGuest = await newUser(p, direction.resident, "rguest");
      joinerGuest = await newUser(p, direction.joiner, "jguest");
      residentServer = serverNameOf(p, direction.resident);
      ({ room_id: roomId } = await resident.createRoom({ preset: "public_chat", room_version: roomVersion }));
      await joiner.join(roomId, [residentServer]);
      await waitForMembership(resident, roomId, joiner.userId, "join");
    });

    test("a topic set on the resident server is seen on the joining server", async () => {
      await resident.putState(roomId, "m.room.topic", "", { topic: "topic from the resident" });
      await waitForStateContent(joiner, roomId, "m.room.topic", "", (c) => c["topic"] === "topic from the resident", "the resident's topic");
    });

    test("power levels raised on the resident server are seen on the joining server", async () => {
      const levels = await resident.getState<PowerLevels>(roomId, "m.room.power_levels");
      await resident.putState(roomId, "m.room.power_levels", "", { ...levels, users: { ...levels.users, [joiner.userId]: 100 } });
      await waitForStateContent<PowerLevels>(joiner, roomId, "m.room.power_levels", "", (c) => c.users?.[joiner.userId] === 100, "the joiner at power level 100");
    });

    test("a topic set on the joining server is seen on the resident server", async () => {
      await joiner.putState(roomId, "m.room.topic", "", { topic: "topic from the joiner" });
      await waitForStateContent(resident, roomId, "m.room.topic", "", (c) => c["topic"] === "topic from the joiner", "the joiner's topic");
    });

    test("power levels changed on the joining server are seen on the resident server", async () => {
      const levels = await joiner.getState<PowerLevels>(roomId, "m.room.power_levels");
      await joiner.putState(roomId, "m.room.power_levels", "", { ...levels, users: { ...levels.users, [residentGuest.userId]: 10 } });
      await waitForStateContent<PowerLevels>(resident, roomId, "m.room.power_levels", "", (c) => c.users?.[residentGuest.userId] === 10, "the joiner's power levels");
    });

    test("the resident kicks a user of the joining server; the joining server sees the kick", async () => {
      await joinerGuest.join(roomId, [residentServer]);
      await waitForMembership(resident, roomId, joinerGuest.userId, "join");
      await resident.kick(roomId, joinerGuest.userId, "kicked by the resident");
      await waitForMembership(joiner, roomId, joinerGuest.userId, "leave");
      const member = await joiner.getState<{ reason?: string }>(roomId, "m.room.member", joinerGuest.userId);
      expect(member.reason).toBe("kicked by the resident");
      await waitFor(async () => !(await joinerGuest.joinedRooms()).includes(roomId), { what: `${joinerGuest.userId} no longer lists ${roomId} as joined` });
    });

    test("the joining user kicks a user of the resident server; the resident server sees the kick", async () => {
      await residentGuest.join(roomId, [residentServer]);
      await waitForMembership(joiner, roomId, residentGuest.userId, "join");
      await joiner.kick(roomId, residentGuest.userId, "kicked by the joiner");
      await waitForMembership(resident, roomId, residentGuest.userId, "leave");
      await waitFor(async () => !(await residentGuest.joinedRooms()).includes(roomId), { what: `${residentGuest.userId} no longer lists ${roomId} as joined` });
    });

    test("the resident bans a user of the joining server, who can no longer join; the joining user unbans them", async () => {
      await resident.ban(roomId, joinerGuest.userId, "banned by the resident");
      await waitForMembership(joiner, roomId, joinerGuest.userId, "ban");
      await expect(joinerGuest.join(roomId, [residentServer])).rejects.toMatchObject({ status: 403 });
      await joiner.unban(roomId, joinerGuest.userId);
      await waitForMembership(resident, roomId, joinerGuest.userId, "leave");
      await joinerGuest.join(roomId, [residentServer]);
      await waitForMembership(resident, roomId, joinerGuest.userId, "join");
    });

    test("the joining user bans a user of the resident server, who can no longer join; the resident unbans them", async () => {
      await joiner.ban(roomId, residentGuest.userId, "banned by the joiner");
      await waitForMembership(resident, roomId, residentGuest.userId, "ban");
      await expect(residentGuest.join(roomId, [residentServer])).rejects.toMatchObject({ status: 403 });
      await resident.unban(roomId, residentGuest.userId);
      await waitForMembership(joiner, roomId, residentGuest.userId, "leave");
      await residentGuest.join(roomId, [residentServer]);
      await waitForMembership(joiner, roomId, residentGuest.userId, "join");
    });

    test("each side redacts a message of the other; both see both messages redacted", async () => {
      const fromResident = await resident.sendMessage(roomId, "to be redacted by the joiner");
      const fromJoiner = await joiner.sendMessage(roomId, "to be redacted by the resident");
      await waitForEvent(joiner, roomId, fromResident.event_id);
      await waitForEvent(resident, roomId, fromJoiner.event_id);
      const byJoiner = await joiner.redact(roomId, fromResident.event_id, "redacted by the joiner");
      const byResident = await resident.redact(roomId, fromJoiner.event_id, "redacted by the resident");
      await waitForEvent(resident, roomId, byJoiner.event_id);
      await waitForEvent(joiner, roomId, byResident.event_id);
      for (const client of [resident, joiner]) {
        for (const eventId of [fromResident.event_id, fromJoiner.event_id]) {
          await waitFor(async () => Object.keys((await client.event(roomId, eventId)).content).length === 0, {
            what: `${client.userId} sees ${eventId} redacted (empty content)`,
          });
        }
      }
    });

    test("users of both servers leave; each server sees the other's leave", async () => {
      await joinerGuest.leave(roomId);
      await residentGuest.leave(roomId);
      await waitForMembership(resident, roomId, joinerGuest.userId, "leave");
      await waitForMembership(joiner, roomId, residentGuest.userId, "leave");
    });

    test("both servers end with the same current state (the same state event IDs)", async () => {
      const state = await waitForIdenticalState(resident, joiner, roomId);
      expect(state.some((line) => line.startsWith(`m.room.member|${joinerGuest.userId} `))).toBe(true);
    });
  });
});
