// Scenario 7: concurrent, conflicting state changes made on both servers at once converge
// to the same state on both (state resolution v2 in rooms 10 and 11, v2.1 in room 12).
import { describe, expect, test } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { waitFor } from "@myelin/test-support";
import { usePeers } from "./peers.js";
import { DIRECTIONS, ROOM_VERSIONS, newUser, serverNameOf, waitForEvent, waitForIdenticalState, waitForMembership } from "./rooms.js";

const peers = usePeers();

interface PowerLevels extends Record<string, unknown> {
  users?: Record<string, number>;
}

/** Waits until both servers know both events (each got the other's over federation). */
async function bothKnowBoth(a: CsClient, b: CsClient, roomId: string, eventIds: readonly string[]): Promise<void> {
  for (const client of [a, b]) {
    for (const eventId of eventIds) {
      await waitFor(async () => (await client.event(roomId, eventId)).event_id === eventId, { what: `${client.userId}'s server has event ${eventId}` });
    }
  }
}

describe.each(ROOM_VERSIONS)("scenario 7: concurrent conflicting state, room version %s", (roomVersion) => {
  test.each(DIRECTIONS)("$label: a topic and a name set on both servers at the same moment resolve to the same state on both", async (direction) => {
    const p = peers();
    const resident = await newUser(p, direction.resident, "fork-r");
    const joiner = await newUser(p, direction.joiner, "fork-j");
    // In room 12 the creator is above every power level and must not be listed (MSC4289).
    const residentEntry = roomVersion === "12" ? {} : { [resident.userId]: 100 };
    const { room_id: roomId } = await resident.createRoom({
      preset: "public_chat",
      room_version: roomVersion,
      power_level_content_override: { users: { ...residentEntry, [joiner.userId]: 100 } },
    });
    await joiner.join(roomId, [serverNameOf(p, direction.resident)]);
    await waitForMembership(resident, roomId, joiner.userId, "join");

    // Both requests leave at once: each server builds its event on the same DAG tip, before
    // the other's arrives, so the room forks and state resolution picks the winners.
    const [residentTopic, joinerTopic, residentName, joinerName] = await Promise.all([
      resident.putState(roomId, "m.room.topic", "", { topic: "resident's topic" }),
      joiner.putState(roomId, "m.room.topic", "", { topic: "joiner's topic" }),
      resident.putState(roomId, "m.room.name", "", { name: "resident's name" }),
      joiner.putState(roomId, "m.room.name", "", { name: "joiner's name" }),
    ]);
    await bothKnowBoth(resident, joiner, roomId, [residentTopic.event_id, joinerTopic.event_id, residentName.event_id, joinerName.event_id]);
    await waitForIdenticalState(resident, joiner, roomId);
    const [topicR, topicJ] = await Promise.all([resident.getState(roomId, "m.room.topic"), joiner.getState(roomId, "m.room.topic")]);
    expect(topicJ).toEqual(topicR);
    expect(["resident's topic", "joiner's topic"]).toContain(topicR["topic"]);

    // Later messages from both sides merge the fork; the state stays the same everywhere.
    const after = await resident.sendMessage(roomId, "after the fork");
    await waitForEvent(joiner, roomId, after.event_id);
    await waitForIdenticalState(resident, joiner, roomId);
  });

  test.each(DIRECTIONS)(
    "$label: the room's owner demotes a moderator while the moderator changes power levels at the same moment; both servers resolve to the same power levels",
    async (direction) => {
      const p = peers();
      const owner = await newUser(p, direction.resident, "pl-owner");
      const moderator = await newUser(p, direction.joiner, "pl-mod");
      const bystander = `@bystander:${serverNameOf(p, direction.resident)}`;
      // The moderator (50) may edit power levels up to its own level; the owner (100, or in
      // room 12 the creator, above every level and not listed: MSC4289) may demote it.
      const ownerEntry = roomVersion === "12" ? {} : { [owner.userId]: 100 };
      const { room_id: roomId } = await owner.createRoom({
        preset: "public_chat",
        room_version: roomVersion,
        power_level_content_override: { users: { ...ownerEntry, [moderator.userId]: 50 }, events: { "m.room.power_levels": 50 } },
      });
      await moderator.join(roomId, [serverNameOf(p, direction.resident)]);
      await waitForMembership(owner, roomId, moderator.userId, "join");
      const levels = await owner.getState<PowerLevels>(roomId, "m.room.power_levels");
      expect(levels.users?.[moderator.userId]).toBe(50);

      // Each change is allowed on its own; together they conflict. State resolution orders
      // the owner's (higher power) first, after which the moderator's no longer passes the
      // authorization rules: both servers must reach that same answer.
      const [byOwner, byModerator] = await Promise.all([
        owner.putState(roomId, "m.room.power_levels", "", { ...levels, users: { ...levels.users, [moderator.userId]: 0 } }),
        moderator.putState(roomId, "m.room.power_levels", "", { ...levels, users: { ...levels.users, [bystander]: 25 } }),
      ]);
      // The moderator's event fails auth against the owner's server's current state, so that
      // server soft-fails it and may hide it from clients (SS API § "Soft failure": Myelin
      // answers 404 on /event, Synapse shows it); it still takes part in state resolution.
      // Messages from both sides merge the fork: the moderator's references its own PL event.
      expect(byModerator.event_id).not.toBe(byOwner.event_id);
      const fromModerator = await moderator.sendMessage(roomId, "merge from the moderator");
      await waitForEvent(owner, roomId, fromModerator.event_id);
      const fromOwner = await owner.sendMessage(roomId, "merge from the owner");
      await waitForEvent(moderator, roomId, fromOwner.event_id);
      const state = await waitForIdenticalState(owner, moderator, roomId);
      const [onOwner, onModerator] = await Promise.all([
        owner.getState<PowerLevels>(roomId, "m.room.power_levels"),
        moderator.getState<PowerLevels>(roomId, "m.room.power_levels"),
      ]);
      expect(onModerator).toEqual(onOwner);
      expect(state).toContain(`m.room.power_levels| -> ${byOwner.event_id}`);
      expect(onOwner.users?.[moderator.userId]).toBe(0);
    },
  );
});
