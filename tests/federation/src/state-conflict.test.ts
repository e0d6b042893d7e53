// A state conflict made on purpose: users of A and B change the power levels at the same
// moment, so each server's event follows the same parent without knowing the other's. The
// DAG forks on m.room.power_levels; state resolution (v2 in rooms 10 and 11, v2.1 in 12)
// must make all three servers agree, and the room must keep working after the merge.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { waitFor } from "@myelin/test-support";
import type { TestServer } from "./harness.js";
import { sendFederationRequest } from "./federation-request.js";
import { ROOM_VERSIONS, waitForEvent, waitForIdenticalState, waitForMembership } from "./room-helpers.js";
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

type PowerLevels = { users?: Record<string, number>; events?: Record<string, number> } & Record<string, unknown>;

/**
 * The PDU `eventId` as `holder` serves it over federation, asked as server C (a member of
 * the room, so history visibility lets it read): the one place the DAG's edges show.
 */
async function fetchPdu(holder: TestServer, eventId: string): Promise<{ prev_events: string[] }> {
  const c = cluster().server("c");
  const [key] = await c.signingKeys();
  const response = await sendFederationRequest(
    { port: holder.port, ca: cluster().ca.cert },
    { method: "GET", path: `/_matrix/federation/v1/event/${encodeURIComponent(eventId)}`, origin: c.serverName, key: key!, destination: holder.serverName },
  );
  if (response.status !== 200) throw new Error(`GET /event/${eventId} on ${holder.name} answered ${response.status}: ${response.text}`);
  const [pdu] = (response.body as { pdus: { prev_events: string[] }[] }).pdus;
  if (pdu === undefined) throw new Error(`GET /event/${eventId} on ${holder.name} returned no PDU`);
  return pdu;
}

function withEventLevel(levels: PowerLevels, type: string, level: number): PowerLevels {
  return { ...levels, events: { ...levels.events, [type]: level } };
}

describe.each(ROOM_VERSIONS)("room version %s", (version) => {
  let roomId: string | undefined;
  const room = (): string => {
    if (roomId === undefined) throw new Error("the room was not set up (see the first test of this block)");
    return roomId;
  };
  let concurrent: { fromA: string; fromB: string; contentA: PowerLevels; contentB: PowerLevels } | undefined;

  it("sets up a room on A that B and C joined, where the user of B may change power levels", async () => {
    roomId = (await alice.createRoom({ preset: "public_chat", room_version: version })).room_id;
    const via = [cluster().server("a").serverName];
    await bob.join(room(), via);
    await carol.join(room(), via);
    const levels = await alice.getState<PowerLevels>(room(), "m.room.power_levels");
    await alice.putState(room(), "m.room.power_levels", "", { ...levels, users: { ...levels.users, [bob.userId]: 100 } });
    await waitFor(async () => (await bob.getState<PowerLevels>(room(), "m.room.power_levels")).users?.[bob.userId] === 100, {
      what: `B sees ${bob.userId} at power level 100`,
    });
    await waitForMembership(carol, room(), bob.userId, "join");
    await waitForIdenticalState([alice, bob, carol], room());
  });

  it("makes A and B change the power levels at the same moment, forking the room's DAG", async () => {
    const a = cluster().server("a");
    const b = cluster().server("b");
    // Both writes go out in the same tick; each server signs its event long before the other's
    // arrives over federation. The fork is checked on the PDUs themselves, and the race is
    // run again (with new values) in the rare case one server saw the other's event first.
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 3 && concurrent === undefined; attempt++) {
      await waitForIdenticalState([alice, bob, carol], room());
      const [levelsA, levelsB] = await Promise.all([
        alice.getState<PowerLevels>(room(), "m.room.power_levels"),
        bob.getState<PowerLevels>(room(), "m.room.power_levels"),
      ]);
      const contentA = withEventLevel(levelsA, `org.example.from_a.${attempt}`, 10);
      const contentB = withEventLevel(levelsB, `org.example.from_b.${attempt}`, 20);
      const [sentA, sentB] = await Promise.all([
        alice.putState(room(), "m.room.power_levels", "", contentA),
        bob.putState(room(), "m.room.power_levels", "", contentB),
      ]);
      const [pduA, pduB] = await Promise.all([fetchPdu(a, sentA.event_id), fetchPdu(b, sentB.event_id)]);
      if (!pduA.prev_events.includes(sentB.event_id) && !pduB.prev_events.includes(sentA.event_id)) {
        concurrent = { fromA: sentA.event_id, fromB: sentB.event_id, contentA, contentB };
      } else {
        attempts.push(`attempt ${attempt}: A's prev_events ${JSON.stringify(pduA.prev_events)}, B's ${JSON.stringify(pduB.prev_events)}`);
      }
    }
    expect(concurrent, `no concurrent power-level events after 3 attempts:\n${attempts.join("\n")}`).toBeDefined();
  });

  it("resolves the conflict identically on all three servers, to one of the two power-level events", async () => {
    if (concurrent === undefined) throw new Error("no conflict was made (see the previous test)");
    const state = await waitForIdenticalState([alice, bob, carol], room(), 30_000);
    const line = state.find((l) => l.startsWith("m.room.power_levels| -> "));
    const winner = line?.slice("m.room.power_levels| -> ".length);
    expect([concurrent.fromA, concurrent.fromB]).toContain(winner);
    const expected = winner === concurrent.fromA ? concurrent.contentA : concurrent.contentB;
    for (const client of [alice, bob, carol]) {
      expect(await client.getState<PowerLevels>(room(), "m.room.power_levels")).toEqual(expected);
    }
  });

  it("keeps working after the conflict: messages merge the fork and the resolved state stays", async () => {
    const before = await waitForIdenticalState([alice, bob, carol], room());
    for (const sender of [alice, bob, carol]) {
      const { event_id } = await sender.sendMessage(room(), `after the conflict, from ${sender.userId}`);
      for (const receiver of [alice, bob, carol].filter((c) => c !== sender)) await waitForEvent(receiver, room(), event_id);
    }
    expect(await waitForIdenticalState([alice, bob, carol], room())).toEqual(before);
  });
});
