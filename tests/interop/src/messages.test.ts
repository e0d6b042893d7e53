// Scenario 3: messages both ways, visible through each side's Client-Server API in the same order.
import { describe, expect, test } from "vitest";
import type { ClientEvent, CsClient } from "@myelin/test-support";
import { usePeers } from "./peers.js";
import { DIRECTIONS, ROOM_VERSIONS, messagesWithPrefix, setUpJoinedRoom, waitForEvent, waitForMessages } from "./rooms.js";

const peers = usePeers();

function ids(events: readonly ClientEvent[]): string[] {
  return events.map((e) => e.event_id);
}

/** Sends `body` as `from` and waits until `to` sees it: the next message then follows it in the DAG. */
async function sendAndDeliver(from: CsClient, to: CsClient, roomId: string, body: string): Promise<string> {
  const { event_id } = await from.sendMessage(roomId, body);
  await waitForEvent(to, roomId, event_id);
  return event_id;
}

describe.each(ROOM_VERSIONS)("scenario 3: messages, room version %s", (roomVersion) => {
  test.each(DIRECTIONS)("$label: alternating messages arrive on the other server and both timelines list them in the same order", async (direction) => {
    const { roomId, resident, joiner } = await setUpJoinedRoom(peers(), direction, roomVersion, { prefix: "chat" });
    const sent: string[] = [];
    for (let round = 0; round < 3; round++) {
      sent.push(await sendAndDeliver(resident, joiner, roomId, `alt ${round} from resident`));
      sent.push(await sendAndDeliver(joiner, resident, roomId, `alt ${round} from joiner`));
    }
    const onResident = messagesWithPrefix(await resident.timeline(roomId), "alt ");
    const onJoiner = messagesWithPrefix(await joiner.timeline(roomId), "alt ");
    expect(ids(onResident)).toEqual(sent);
    expect(ids(onJoiner)).toEqual(sent);
    // Same event, same content and sender on both sides.
    for (const [index, event] of onJoiner.entries()) {
      expect(event.sender).toBe(onResident[index]?.sender);
      expect(event.content).toEqual(onResident[index]?.content);
    }
  });

  test.each(DIRECTIONS)("$label: a burst of messages from each side arrives complete and in order on the other", async (direction) => {
    const { roomId, resident, joiner } = await setUpJoinedRoom(peers(), direction, roomVersion, { prefix: "burst" });
    for (const [from, to, who] of [
      [resident, joiner, "resident"],
      [joiner, resident, "joiner"],
    ] as const) {
      const sent: string[] = [];
      // One sender, one after the other: a chain in the DAG, so the order is defined.
      for (let i = 0; i < 8; i++) sent.push((await from.sendMessage(roomId, `burst ${who} ${i}`)).event_id);
      const arrived = await waitForMessages(to, roomId, `burst ${who} `, sent.length);
      expect(ids(arrived)).toEqual(sent);
    }
    const onResident = messagesWithPrefix(await resident.timeline(roomId), "burst ");
    const onJoiner = messagesWithPrefix(await joiner.timeline(roomId), "burst ");
    expect(ids(onJoiner)).toEqual(ids(onResident));
  });
});
