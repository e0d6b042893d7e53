// History backfilled by a server that joined late: A and B talk in a room (history
// visibility "shared", the public_chat preset's), then a user of C joins. Joining gives C the
// room's state, not its timeline; paginating /messages backwards on C must fetch the earlier
// events over federation (spec CS API § "Get events and state around a point", server-server
// API § "Backfilling and retrieving missing events") and show them in the room's order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { ROOM_VERSIONS, messageBodies, waitForBodies, waitForEvent, waitForIdenticalState, waitForMembership } from "./room-helpers.js";
import { useCluster } from "./use-cluster.js";

const cluster = useCluster({ names: ["a", "b", "c"] });
let alice: CsClient;
let bob: CsClient;
let carol: CsClient;

beforeAll(async () => {
  alice = await cluster().server("a").newClient("alice");
  bob = await cluster().server("b").newClient("bob");
  carol = await cluster().server("c").newClient("carol");
});

afterAll(() => {
  for (const client of [alice, bob, carol]) client?.close();
});

/** Messages in each direction before C joins: more than one page of backfill (Synapse asks for 100 at most, often fewer). */
const ROUNDS = 20;

describe.each(ROOM_VERSIONS)("room version %s", (version) => {
  let roomId: string | undefined;
  const room = (): string => {
    if (roomId === undefined) throw new Error("the room was not set up (see the first test of this block)");
    return roomId;
  };
  const prefix = `history v${version} #`;
  const sent: string[] = [];

  it(`records a history of ${2 * ROUNDS} messages between A and B before C joins`, async () => {
    roomId = (await alice.createRoom({ preset: "public_chat", room_version: version })).room_id;
    await bob.join(room(), [cluster().server("a").serverName]);
    await waitForMembership(alice, room(), bob.userId, "join");
    for (let i = 0; i < ROUNDS; i++) {
      // Each message waits for the other server, so the history alternates between A's and B's events.
      for (const [sender, receiver] of [[alice, bob], [bob, alice]] as const) {
        const body = `${prefix}${sent.length}`;
        const { event_id } = await sender.sendMessage(room(), body);
        await waitForEvent(receiver, room(), event_id);
        sent.push(body);
      }
    }
    expect(messageBodies(await alice.timeline(room())).filter((b) => b.startsWith(prefix))).toEqual(sent);
  });

  it("lets the late joiner on C read the whole earlier history, in the room's order, back to the room's creation", async () => {
    await carol.join(room(), [cluster().server("b").serverName, cluster().server("a").serverName]);
    const seen = await waitForBodies(carol, room(), prefix, sent, 30_000);
    expect(seen).toEqual(sent);
    const timeline = await carol.timeline(room());
    expect(timeline[0]?.type).toBe("m.room.create");
    // The history C fetched is the one A and B hold: same events, same order.
    const ids = (events: { event_id: string; type: string }[]) => events.filter((e) => e.type === "m.room.message").map((e) => e.event_id);
    expect(ids(timeline)).toEqual(ids(await alice.timeline(room())));
    expect(ids(timeline)).toEqual(ids(await bob.timeline(room())));
  });

  it("leaves the three servers with the same current state after the late join", async () => {
    const state = await waitForIdenticalState([alice, bob, carol], room());
    expect(state.filter((line) => line.startsWith("m.room.member|"))).toHaveLength(3);
  });
});
