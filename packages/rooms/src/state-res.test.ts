import { createHash } from "node:crypto";
import { getRoomVersion } from "@myelin/types";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type RoomEvent, stateKey, stateKeyOf } from "./events.js";
import { CLASSIC_SCENARIOS, INITIAL_CHAIN, initialNodes } from "./fixtures/classic-scenarios.js";
import { createMemoryLookup, type EventLookup } from "./lookup.js";
import { resolveState } from "./resolve.js";
import type { StateMap, V1ResolutionTrace, V2ResolutionTrace } from "./state-res-types.js";
import { ALICE, BOB, CHARLIE, RoomGraph, TestRoom, users } from "./testing/builders.js";
import { generateRoom } from "./testing/generate-room.js";

const scenario = (name: string) => CLASSIC_SCENARIOS.find((s) => s.name === name) as (typeof CLASSIC_SCENARIOS)[number];

/** Builds a classic scenario and returns the graph and the two branch states at END. */
async function branchStates(version: string, name: string) {
  const rules = getRoomVersion(version);
  const graph = new RoomGraph(rules);
  const s = scenario(name);
  await graph.build([...initialNodes(rules), ...s.nodes(rules)], [INITIAL_CHAIN, ...s.chains]);
  const end = graph.node("END");
  const stateSets = end.prev_events.map((id) => graph.stateAfter.get(id) as StateMap);
  return { rules, graph, stateSets };
}

const withoutBatch = (lookup: EventLookup): EventLookup => ({ getEvent: (id) => lookup.getEvent(id) });

describe("explain mode", () => {
  it("traces the mainline: the resolved power levels, back to the first, and each event's position", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "mainline ordering");
    const { trace } = await resolveState({ rules, stateSets, lookup: graph.lookup(), explain: true });
    const t = trace as V2ResolutionTrace;
    const name = (id: string) => graph.named(new Map([["k", id]])).get("k");
    expect(t.algorithm).toBe("v2");
    expect(t.mainline.map(name)).toEqual(["PA2", "PA1", "IPOWER"]);
    const topics = t.mainlineOrder.filter((e) => e.key === stateKey("m.room.topic", ""));
    // T4 cites Bob's PB, whose chain meets the mainline at PA1 (position 1); T3 cites PA2 (0).
    expect(topics.map((e) => [name(e.eventId), e.mainlinePosition])).toEqual([
      ["T4", 1],
      ["T3", 0],
    ]);
    expect(t.conflicted[stateKey("m.room.topic", "")]?.map(name).sort()).toEqual(["T3", "T4"]);
  });

  it("traces the power ordering with sender power levels, and why each check passed or failed", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "ban vs. power-level change");
    const { trace, state } = await resolveState({ rules, stateSets, lookup: graph.lookup(), explain: true });
    const t = trace as V2ResolutionTrace;
    const name = (id: string) => graph.named(new Map([["k", id]])).get("k");
    // Alice's and Bob's old joins are conflicted with MA and MB; Bob's PB cites his join.
    expect(t.powerOrder.map((p) => [name(p.eventId), p.senderPowerLevel])).toEqual([
      ["IMA", 100],
      ["PA", 100],
      ["MA", 100],
      ["IMB", 0],
      ["MB", 100],
      ["PB", 50],
    ]);
    const pb = t.authChecks.find((c) => name(c.eventId) === "PB");
    expect(pb).toMatchObject({ phase: "power", outcome: "denied", name: "sender_not_joined", rule: "5" });
    expect(pb?.authEvents?.[stateKey("m.room.member", BOB)]).toBe(graph.node("MB").event_id);
    expect(t.fullConflictedSet).toEqual(expect.arrayContaining([graph.node("PB").event_id, graph.node("MB").event_id]));
    expect(t.resolved).toEqual(Object.fromEntries(state));
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
  });

  it("orders a long conflicted chain topologically and slots a concurrent event in by timestamp", async () => {
    const { rules, graph, stateSets } = await branchStates("11", "long conflicted chain");
    const { trace } = await resolveState({ rules, stateSets, lookup: graph.lookup(), explain: true });
    const order = (trace as V2ResolutionTrace).powerOrder.map((p) => graph.named(new Map([["k", p.eventId]])).get("k"));
    expect(order).toHaveLength(41);
    expect(order.indexOf("PX")).toBe(20);
    expect(order.filter((n) => n !== "PX")).toEqual(Array.from({ length: 40 }, (_, i) => `PL${String(i + 1).padStart(2, "0")}`));
  });

  it("reports creators' infinite power in room 12 as \"infinite\"", async () => {
    const { rules, graph, stateSets } = await branchStates("12", "ban vs. power-level change");
    const { trace } = await resolveState({ rules, stateSets, lookup: graph.lookup(), explain: true });
    const first = (trace as V2ResolutionTrace).powerOrder[0];
    expect(first?.senderPowerLevel).toBe("infinite");
  });

  it("returns no trace unless asked", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "topic, basic");
    expect((await resolveState({ rules, stateSets, lookup: graph.lookup() })).trace).toBeUndefined();
  });
});

describe("resolution inputs and edge cases", () => {
  it.each(["1", "2", "12"])("room %s: no state sets resolve to the empty state", async (v) => {
    const { state } = await resolveState({ rules: getRoomVersion(v), stateSets: [], lookup: createMemoryLookup([]) });
    expect(state.size).toBe(0);
  });

  it("accepts plain records as state sets and works with a lookup that has only getEvent", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "offtopic power levels");
    const records = stateSets.map((s) => Object.fromEntries(s));
    const fromMaps = await resolveState({ rules, stateSets, lookup: graph.lookup() });
    const fromRecords = await resolveState({ rules, stateSets: records, lookup: withoutBatch(graph.lookup()) });
    expect(fromRecords.state).toEqual(fromMaps.state);
  });

  it("ignores conflicted events the lookup does not know, and says so in the trace", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "topic, basic");
    const [first, second] = stateSets as [StateMap, StateMap];
    const topic = stateKey("m.room.topic", "");
    const withGhost = new Map(second);
    withGhost.set(topic, "$ghost");
    const { state, trace } = await resolveState({ rules, stateSets: [first, withGhost], lookup: graph.lookup(), explain: true });
    expect(state.get(topic)).toBe(first.get(topic));
    expect((trace as V2ResolutionTrace).unknownEvents).toContain("$ghost");
  });

  it("treats events from another room as unknown when the room ID is given (hostile-federation T42)", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "topic, basic");
    const topic = stateKey("m.room.topic", "");
    const t2 = graph.node("T2").event_id;
    const moved = [...graph.events.values()].map((e) => (e.event_id === t2 ? { ...e, room_id: "!other:example.com" } : e));
    const lookup = createMemoryLookup(moved);
    const scoped = await resolveState({ rules, stateSets, lookup, roomId: graph.roomId, explain: true });
    expect(scoped.state.get(topic)).not.toBe(t2);
    expect((scoped.trace as V2ResolutionTrace).unknownEvents).toContain(t2);
    expect((await resolveState({ rules, stateSets, lookup })).state.get(topic)).toBe(t2);
  });

  it("never admits a rejected event into the resolved state (hostile-federation T45)", async () => {
    const { rules, graph, stateSets } = await branchStates("10", "topic reset by a later event");
    const topic = stateKey("m.room.topic", "");
    const t4 = graph.node("T4").event_id;
    const accepted = await resolveState({ rules, stateSets, lookup: graph.lookup() });
    expect(accepted.state.get(topic)).toBe(t4);
    const lookup = createMemoryLookup(graph.events.values(), { rejected: [t4] });
    const { state, trace } = await resolveState({ rules, stateSets, lookup, explain: true });
    expect(state.get(topic)).not.toBe(t4);
    expect((trace as V2ResolutionTrace).authChecks.find((c) => c.eventId === t4)?.outcome).toBe("skipped");
  });

  it("does not read rejected auth events in the iterative checks", async () => {
    // Bob's power comes only from PA; with PA rejected, Bob's topic has nothing to pass on.
    const rules = getRoomVersion("10");
    const graph = new RoomGraph(rules);
    await graph.build(
      [
        ...initialNodes(rules),
        { id: "PA", type: "m.room.power_levels", sender: ALICE, stateKey: "", content: { users: users(rules, { [BOB]: 50 }) } },
        { id: "TB", type: "m.room.topic", sender: BOB, stateKey: "", content: { topic: "b" } },
        { id: "TC", type: "m.room.topic", sender: ALICE, stateKey: "", content: { topic: "c" } },
      ],
      [INITIAL_CHAIN, ["END", "TB", "PA", "START"], ["END", "TC", "START"]],
    );
    const stateSets = graph.node("END").prev_events.map((id) => graph.stateAfter.get(id) as StateMap);
    const topic = stateKey("m.room.topic", "");
    // Without rejection TB (applied last, by timestamp) stands; with PA rejected PA cannot be
    // used, Bob is back at 0, and only Alice's TC passes.
    expect((await resolveState({ rules, stateSets, lookup: graph.lookup() })).state.get(topic)).toBe(graph.node("TB").event_id);
    const lookup = createMemoryLookup(graph.events.values(), { rejected: [graph.node("PA").event_id] });
    expect((await resolveState({ rules, stateSets, lookup })).state.get(topic)).toBe(graph.node("TC").event_id);
  });
});

describe("state resolution v1 (room 1)", () => {
  const rules = getRoomVersion("1");
  const sha1 = (id: string) => createHash("sha1").update(id).digest("hex");

  function v1Room() {
    const room = new TestRoom("1");
    const alice = room.member(ALICE, "join");
    const pl = room.powerLevels({ users: users(room.rules, { [BOB]: 50 }) });
    const jr = room.joinRules("public");
    const bob = room.member(BOB, "join");
    const charlie = room.member(CHARLIE, "join");
    const base = [room.create, alice, pl, jr, bob, charlie];
    const stateOf = (...events: RoomEvent[]) => new Map(events.map((e) => [stateKeyOf(e) as string, e.event_id]));
    return { room, base, pl, stateOf };
  }

  it("takes the deeper power levels when they pass auth against the shallower ones", async () => {
    const { room, base, stateOf } = v1Room();
    const p1 = room.event({ type: "m.room.power_levels", sender: ALICE, state_key: "", depth: 10, content: { users: users(room.rules, { [BOB]: 60 }) } });
    const p2 = room.event({ type: "m.room.power_levels", sender: ALICE, state_key: "", depth: 20, content: { users: users(room.rules, { [BOB]: 70 }) } });
    const lookup = createMemoryLookup([...base, p1, p2]);
    const { state } = await resolveState({ rules, stateSets: [stateOf(...base, p2), stateOf(...base, p1)], lookup });
    expect(state.get(stateKey("m.room.power_levels", ""))).toBe(p2.event_id);
  });

  it("stops at the first power levels that fail auth against the ones before", async () => {
    const { room, base, stateOf } = v1Room();
    const demote = room.event({ type: "m.room.power_levels", sender: ALICE, state_key: "", depth: 10, content: { users: users(room.rules) } });
    const bobs = room.event({ type: "m.room.power_levels", sender: BOB, state_key: "", depth: 20, content: { users: users(room.rules, { [BOB]: 50 }), kick: 40 } });
    const lookup = createMemoryLookup([...base, demote, bobs]);
    const { state, trace } = await resolveState({ rules, stateSets: [stateOf(...base, demote), stateOf(...base, bobs)], lookup, explain: true });
    expect(state.get(stateKey("m.room.power_levels", ""))).toBe(demote.event_id);
    const key = (trace as V1ResolutionTrace).keys.find((k) => k.pass === "power_levels");
    expect(key?.candidates.map((c) => c.eventId)).toEqual([demote.event_id, bobs.event_id]);
  });

  it("picks the deepest other event that passes auth, skipping one that fails", async () => {
    const { room, base, stateOf } = v1Room();
    const byAlice = room.event({ type: "m.room.topic", sender: ALICE, state_key: "", depth: 10 });
    const byCharlie = room.event({ type: "m.room.topic", sender: CHARLIE, state_key: "", depth: 30 });
    const lookup = createMemoryLookup([...base, byAlice, byCharlie]);
    const { state } = await resolveState({ rules, stateSets: [stateOf(...base, byAlice), stateOf(...base, byCharlie)], lookup });
    expect(state.get(stateKey("m.room.topic", ""))).toBe(byAlice.event_id);
  });

  it("keeps the shallowest candidate when no other event passes auth, as Synapse does", async () => {
    const { room, base, stateOf } = v1Room();
    const t1 = room.event({ type: "m.room.topic", sender: CHARLIE, state_key: "", depth: 10 });
    const t2 = room.event({ type: "m.room.topic", sender: CHARLIE, state_key: "", depth: 30 });
    const lookup = createMemoryLookup([...base, t1, t2]);
    const { state } = await resolveState({ rules, stateSets: [stateOf(...base, t1), stateOf(...base, t2)], lookup });
    expect(state.get(stateKey("m.room.topic", ""))).toBe(t1.event_id);
  });

  it("breaks depth ties by the lowest sha1 of the event ID", async () => {
    const { room, base, stateOf } = v1Room();
    const a = room.event({ type: "m.room.topic", sender: ALICE, state_key: "", depth: 10, event_id: "$topic-a:example.com" });
    const b = room.event({ type: "m.room.topic", sender: ALICE, state_key: "", depth: 10, event_id: "$topic-b:example.com" });
    const lookup = createMemoryLookup([...base, a, b]);
    const { state } = await resolveState({ rules, stateSets: [stateOf(...base, a), stateOf(...base, b)], lookup });
    const expected = sha1(a.event_id) < sha1(b.event_id) ? a.event_id : b.event_id;
    expect(state.get(stateKey("m.room.topic", ""))).toBe(expected);
  });

  it("does not treat a key missing from one state set as conflicted, unlike v2", async () => {
    const { room, base, stateOf } = v1Room();
    // Charlie (power 0) could not set the topic, but only one set has it: v1 keeps it as is.
    const topic = room.event({ type: "m.room.topic", sender: CHARLIE, state_key: "", depth: 10 });
    const extra = room.event({ type: "org.example.x", sender: ALICE, state_key: "", depth: 11 });
    const extra2 = room.event({ type: "org.example.x", sender: ALICE, state_key: "", depth: 12 });
    const lookup = createMemoryLookup([...base, topic, extra, extra2]);
    const stateSets = [stateOf(...base, topic, extra), stateOf(...base, extra2)];
    const v1 = await resolveState({ rules, stateSets, lookup });
    expect(v1.state.get(stateKey("m.room.topic", ""))).toBe(topic.event_id);
    const v2 = await resolveState({ rules: getRoomVersion("2"), stateSets, lookup });
    expect(v2.state.get(stateKey("m.room.topic", ""))).toBeUndefined();
  });
});

describe("properties of resolution", () => {
  const versions = ["1", "2", "10", "12"] as const;

  it.each(versions)("room %s: the result does not depend on the order of the state sets", async (v) => {
    const rules = getRoomVersion(v);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 2, max: 4 }),
        fc.double({ min: 0.1, max: 0.9, noNaN: true }),
        fc.integer({ min: 0, max: 1_000_000 }),
        async (seed, branches, conflictRatio, shuffleSeed) => {
          const room = generateRoom({ rules, stateEvents: 24, conflictRatio, branches, seed, kickRatio: 0.3 });
          const lookup = createMemoryLookup(room.events);
          const reference = await resolveState({ rules, stateSets: room.stateSets, lookup });
          const shuffled = fc.sample(fc.shuffledSubarray(room.stateSets, { minLength: room.stateSets.length }), {
            seed: shuffleSeed,
            numRuns: 1,
          })[0] as StateMap[];
          const other = await resolveState({ rules, stateSets: shuffled, lookup });
          expect(other.state).toEqual(reference.state);
        },
      ),
      { numRuns: 30 },
    );
  });

  it.each(versions)("room %s: resolving a single state set returns it", async (v) => {
    const rules = getRoomVersion(v);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: 1 }), async (seed, which) => {
        const room = generateRoom({ rules, stateEvents: 20, conflictRatio: 0.5, seed });
        const only = room.stateSets[which] as StateMap;
        const { state } = await resolveState({ rules, stateSets: [only], lookup: createMemoryLookup(room.events) });
        expect(state).toEqual(only);
      }),
      { numRuns: 20 },
    );
  });

  it.each(versions)("room %s: identical state sets resolve to themselves", async (v) => {
    const rules = getRoomVersion(v);
    const room = generateRoom({ rules, stateEvents: 30, conflictRatio: 0.3, seed: 7 });
    const set = room.stateSets[0] as StateMap;
    const { state } = await resolveState({ rules, stateSets: [set, new Map(set), new Map(set)], lookup: createMemoryLookup(room.events) });
    expect(state).toEqual(set);
  });

  it("every generated conflicted key resolves to one of its candidates (v2.1)", async () => {
    const rules = getRoomVersion("12");
    const room = generateRoom({ rules, stateEvents: 60, conflictRatio: 0.5, branches: 3, seed: 3 });
    const { state } = await resolveState({ rules, stateSets: room.stateSets, lookup: createMemoryLookup(room.events) });
    for (const key of room.conflictedKeys) {
      const candidates = new Set(room.stateSets.map((s) => s.get(key)));
      expect(candidates.has(state.get(key))).toBe(true);
    }
  });
});
