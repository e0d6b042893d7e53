// Scenario 5: history sent while one server was stopped arrives after its restart
// (catch-up), and history from before a join is backfilled.
import { describe, expect, test } from "vitest";
import type { ClientEvent } from "@myelin/test-support";
import type { Peers } from "./peers.js";
import { usePeers } from "./peers.js";
import type { Side } from "./rooms.js";
import {
  DIRECTIONS,
  ROOM_VERSIONS,
  messagesWithPrefix,
  serverNameOf,
  setUpJoinedRoom,
  sideName,
  waitForEvent,
  waitForMembership,
  waitForMessages,
} from "./rooms.js";

const peers = usePeers();

/** Catch-up and backfill walk more events than a live delivery: a longer deadline. */
const CATCH_UP_TIMEOUT_MS = 60_000;

/** Backfilling 25 events is a few requests. */
const BACKFILL_TIMEOUT_MS = 30_000;

/** More than one page of /get_missing_events (Synapse asks for 10 at a time) and of /backfill. */
const MISSED = 15;

function ids(events: readonly ClientEvent[]): string[] {
  return events.map((e) => e.event_id);
}

function bodies(events: readonly ClientEvent[]): string[] {
  return events.map((e) => String(e.content["body"]));
}

/** `count` bodies `${prefix}0` … in the order they were sent. */
function expectedBodies(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

function server(p: Peers, side: Side): { stop(): Promise<void>; start(): Promise<void> } {
  return side === "synapse" ? p.synapse : p.myelin;
}

describe.each(ROOM_VERSIONS)("scenario 5: catch-up and backfill, room version %s", (roomVersion) => {
  test.each(DIRECTIONS)(
    "$label: messages sent while the joining server was stopped reach it after its restart, in order, once it speaks again",
    async (direction) => {
      const p = peers();
      const { roomId, resident, joiner } = await setUpJoinedRoom(p, direction, roomVersion, { prefix: "down" });
      const before = await resident.sendMessage(roomId, "down before");
      await waitForEvent(joiner, roomId, before.event_id);

      const stopped = server(p, direction.joiner);
      await stopped.stop();
      const sent: string[] = [];
      for (let i = 0; i < MISSED; i++) sent.push((await resident.sendMessage(roomId, `down missed ${i}`)).event_id);
      await stopped.start();

      // A server that failed to reach a destination backs off (Synapse: 10 minutes at first),
      // and both servers end the backoff early when the destination sends them a valid request
      // (Synapse's "Marking origin as up"). A restarted server's user speaking is that request.
      const back = await joiner.sendMessage(roomId, "down back");
      await waitForEvent(resident, roomId, back.event_id, CATCH_UP_TIMEOUT_MS);
      const arrived = await waitForMessages(joiner, roomId, "down missed ", MISSED, CATCH_UP_TIMEOUT_MS);
      expect(bodies(arrived), `${sideName(direction.joiner)} lists the missed messages in the order they were sent`).toEqual(expectedBodies("down missed ", MISSED));
      expect(ids(arrived)).toEqual(sent);
      expect(ids(messagesWithPrefix(await resident.timeline(roomId), "down missed "))).toEqual(sent);
    },
  );

  test.each(DIRECTIONS)(
    "$label: messages sent by the joining server while the resident server was stopped reach it after its restart, in order, once it speaks again",
    async (direction) => {
      const p = peers();
      const { roomId, resident, joiner } = await setUpJoinedRoom(p, direction, roomVersion, { prefix: "rdown" });
      const stopped = server(p, direction.resident);
      await stopped.stop();
      const sent: string[] = [];
      for (let i = 0; i < MISSED; i++) sent.push((await joiner.sendMessage(roomId, `rdown missed ${i}`)).event_id);
      await stopped.start();
      const back = await resident.sendMessage(roomId, "rdown back");
      await waitForEvent(joiner, roomId, back.event_id, CATCH_UP_TIMEOUT_MS);
      const arrived = await waitForMessages(resident, roomId, "rdown missed ", MISSED, CATCH_UP_TIMEOUT_MS);
      expect(bodies(arrived), `${sideName(direction.resident)} lists the missed messages in the order they were sent`).toEqual(expectedBodies("rdown missed ", MISSED));
      expect(ids(arrived)).toEqual(sent);
    },
  );

  test.each(DIRECTIONS)(
    "$label: a user who rejoins reads the history made while its server was out of the room, backfilled from the resident server and listed in order with what it saw live",
    async (direction) => {
      const p = peers();
      const { roomId, resident, joiner } = await setUpJoinedRoom(p, direction, roomVersion, { prefix: "late" });
      const live: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { event_id } = await resident.sendMessage(roomId, `late history ${i}`);
        await waitForEvent(joiner, roomId, event_id);
        live.push(event_id);
      }
      // The joiner's server leaves (it was the server's only user in the room); once the
      // resident has the leave, the history below exists on the resident server only.
      await joiner.leave(roomId);
      await waitForMembership(resident, roomId, joiner.userId, "leave");
      const missed: string[] = [];
      for (let i = 3; i < 25; i++) missed.push((await resident.sendMessage(roomId, `late history ${i}`)).event_id);
      await joiner.join(roomId, [serverNameOf(p, direction.resident)]);
      const seen = await waitForMessages(joiner, roomId, "late history ", 25, BACKFILL_TIMEOUT_MS);
      expect(bodies(seen), `${sideName(direction.joiner)} lists the history in the order it was sent`).toEqual(expectedBodies("late history ", 25));
      expect(ids(seen)).toEqual([...live, ...missed]);
    },
  );
});
