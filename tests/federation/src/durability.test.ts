// Crashes and restarts (hostile-federation.md §5.2 D1, D2, D4): a receiver killed with
// SIGKILL in the middle of a stream of events, a server down while another sends 200
// messages, and all three servers restarted. Nothing a server showed may be lost; every
// message arrives exactly once, in the sender's order; the rooms keep working.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { waitFor } from "@myelin/test-support";
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

// A test that failed with a server down must not take the next tests down with it.
beforeEach(async () => {
  await cluster().startStopped();
});

afterAll(() => {
  for (const client of [alice, bob, carol]) client?.close();
});

/** How long a restarted server may take to catch up (the sender's retry schedule decides). */
const CATCH_UP_MS = 30_000;

async function sendAll(client: CsClient, roomId: string, bodies: readonly string[]): Promise<void> {
  for (const body of bodies) await client.sendMessage(roomId, body);
}

function bodiesWithPrefix(bodies: readonly string[], prefix: string): string[] {
  return bodies.filter((b) => b.startsWith(prefix));
}

describe.each(ROOM_VERSIONS)("room version %s", (version) => {
  let roomId: string | undefined;
  const room = (): string => {
    if (roomId === undefined) throw new Error("the room was not set up (see the first test of this block)");
    return roomId;
  };

  it("sets up a room on A that users of B and C joined", async () => {
    roomId = (await alice.createRoom({ preset: "public_chat", room_version: version })).room_id;
    const via = [cluster().server("a").serverName];
    await bob.join(room(), via);
    await carol.join(room(), via);
    for (const viewer of [alice, bob, carol]) for (const member of [alice, bob, carol]) await waitForMembership(viewer, room(), member.userId, "join");
  });

  it("loses nothing when B is killed with SIGKILL while receiving, and gets the rest after its restart", async () => {
    const b = cluster().server("b");
    const prefix = `sigkill v${version} #`;
    const bodies = Array.from({ length: 60 }, (_, i) => `${prefix}${i}`);
    const sending = sendAll(alice, room(), bodies);
    sending.catch(() => undefined); // awaited below; keeps an early failure from going unhandled
    // Kill B once it has shown some of the stream, while A is still sending.
    const shownBeforeKill = await waitFor(
      async () => {
        const shown = bodiesWithPrefix(messageBodies((await bob.messages(room(), { limit: 100 })).chunk), prefix);
        return shown.length >= 10 ? shown : undefined;
      },
      { what: `B shows 10 of the 60 messages A is sending` },
    );
    await b.kill("SIGKILL");
    await sending;
    await b.start();
    // What B showed before it died is still there after the restart...
    const afterRestart = bodiesWithPrefix(messageBodies(await bob.timeline(room())), prefix);
    expect(afterRestart).toEqual(expect.arrayContaining(shownBeforeKill));
    // ...and the rest arrives, each message once, in A's order.
    expect(await waitForBodies(bob, room(), prefix, bodies, CATCH_UP_MS)).toEqual(bodies);
  });

  it("catches C up on the 200 messages A sent while C was down", async () => {
    const c = cluster().server("c");
    const prefix = `while down v${version} #`;
    const bodies = Array.from({ length: 200 }, (_, i) => `${prefix}${i}`);
    await c.stop();
    await sendAll(alice, room(), bodies);
    await c.start();
    expect(await waitForBodies(carol, room(), prefix, bodies, CATCH_UP_MS)).toEqual(bodies);
    await waitForIdenticalState([alice, bob, carol], room());
  });

  it("keeps the room working after all three servers restart: same state, history kept, messages flow", async () => {
    const servers = cluster().servers;
    const before = await waitForIdenticalState([alice, bob, carol], room());
    const historyBefore = messageBodies(await carol.timeline(room()));
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(servers.map((s) => s.start()));
    for (const client of [alice, bob, carol]) expect(await client.joinedRooms()).toContain(room());
    expect(await waitForIdenticalState([alice, bob, carol], room())).toEqual(before);
    // The history is kept in its order; catch-up still under way may add to it meanwhile.
    const kept = new Set(historyBefore);
    expect(messageBodies(await carol.timeline(room())).filter((b) => kept.has(b))).toEqual(historyBefore);
    for (const sender of [alice, bob, carol]) {
      const { event_id } = await sender.sendMessage(room(), `after the restart, from ${sender.userId}`);
      for (const receiver of [alice, bob, carol].filter((c) => c !== sender)) await waitForEvent(receiver, room(), event_id);
    }
  });
});
