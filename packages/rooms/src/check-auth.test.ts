import { getRoomVersion } from "@myelin/types";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkAuth, MissingAuthEventError } from "./auth.js";
import type { RoomEvent } from "./events.js";
import { CLASSIC_SCENARIOS, INITIAL_CHAIN, initialNodes } from "./fixtures/classic-scenarios.js";
import { ALICE, BOB, RoomGraph } from "./testing/builders.js";

const ALL = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"] as const;

/** The shared start of the classic scenarios plus the ban-vs-power scenario, built in `version`. */
async function buildRoom(version: string) {
  const rules = getRoomVersion(version);
  const graph = new RoomGraph(rules);
  const scenario = CLASSIC_SCENARIOS[0] as (typeof CLASSIC_SCENARIOS)[number];
  await graph.build([...initialNodes(rules), ...scenario.nodes(rules)], [INITIAL_CHAIN, ...scenario.chains]);
  const authEventsOf = (event: RoomEvent) => event.auth_events.map((id) => graph.events.get(id) as RoomEvent);
  const create = graph.node("CREATE");
  const options = rules.auth.privilegedCreators ? { createEvent: create } : {};
  return { rules, graph, authEventsOf, create, options };
}

describe("checkAuth against an event's own auth events", () => {
  it.each(ALL)("room %s: every event of a normally built room passes", async (v) => {
    const { rules, graph, authEventsOf, options } = await buildRoom(v);
    for (const name of ["CREATE", "IMA", "IPOWER", "IJR", "IMB", "START", "PA", "MB", "END"]) {
      const event = graph.node(name);
      const decision = checkAuth(event, authEventsOf(event), rules, options);
      expect(decision.allowed, `${name}: ${decision.message}`).toBe(true);
    }
  });

  it.each(ALL)("room %s refuses duplicate (type, state_key) entries", async (v) => {
    const { rules, graph, authEventsOf, options } = await buildRoom(v);
    const event = graph.node("MB");
    const withBoth = { ...event, auth_events: [...event.auth_events, graph.node("IPOWER").event_id] };
    const decision = checkAuth(withBoth, [...authEventsOf(event), graph.node("IPOWER")], rules, options);
    expect([decision.allowed, decision.name]).toEqual([false, "auth_events.duplicate"]);
  });

  it.each(ALL)("room %s refuses entries the selection algorithm would not pick", async (v) => {
    const { rules, graph, authEventsOf, options } = await buildRoom(v);
    const event = graph.node("START");
    // START is a message: the join rules are not among its auth events.
    const extra = { ...event, auth_events: [...event.auth_events, graph.node("IJR").event_id] };
    const decision = checkAuth(extra, [...authEventsOf(event), graph.node("IJR")], rules, options);
    expect([decision.allowed, decision.name]).toEqual([false, "auth_events.unexpected"]);
  });

  it.each(ALL)("room %s refuses an event with a rejected auth event", async (v) => {
    const { rules, graph, authEventsOf, options } = await buildRoom(v);
    const event = graph.node("START");
    const powerLevels = graph.node("IPOWER").event_id;
    const decision = checkAuth(event, authEventsOf(event), rules, { ...options, isRejected: (id) => id === powerLevels });
    expect([decision.allowed, decision.name]).toEqual([false, "auth_events.rejected"]);
  });

  it.each(ALL.filter((v) => v !== "12"))("room %s refuses auth events without the create event", async (v) => {
    const { rules, graph, authEventsOf, create } = await buildRoom(v);
    const event = graph.node("START");
    const without = { ...event, auth_events: event.auth_events.filter((id) => id !== create.event_id) };
    const decision = checkAuth(without, authEventsOf(event), rules);
    expect([decision.allowed, decision.name]).toEqual([false, "auth_events.no_create"]);
  });

  it("room 12 refuses the create event among the auth events", async () => {
    const { rules, graph, authEventsOf, create, options } = await buildRoom("12");
    const event = graph.node("START");
    const withCreate = { ...event, auth_events: [create.event_id, ...event.auth_events] };
    const decision = checkAuth(withCreate, authEventsOf(event), rules, options);
    expect([decision.allowed, decision.name, decision.rule]).toEqual([false, "auth_events.unexpected", "3.2"]);
  });

  it.each(ALL)("room %s refuses auth events from another room", async (v) => {
    const { rules, graph, authEventsOf, options } = await buildRoom(v);
    const event = graph.node("START");
    const foreign = authEventsOf(event).map((e) => (e.type === "m.room.power_levels" ? { ...e, room_id: "!other:example.com" } : e));
    const decision = checkAuth(event, foreign, rules, options);
    expect([decision.allowed, decision.name]).toEqual([false, "auth_events.wrong_room"]);
  });

  it("room 12 refuses an event whose room ID is not its create event's ID, or whose create event was rejected", async () => {
    const { rules, graph, authEventsOf, create } = await buildRoom("12");
    const event = graph.node("START");
    const moved = { ...event, room_id: "!someotherroom" };
    expect(checkAuth(moved, authEventsOf(event), rules, { createEvent: create }).name).toBe("room_id");
    const rejected = checkAuth(event, authEventsOf(event), rules, { createEvent: create, isRejected: (id) => id === create.event_id });
    expect([rejected.allowed, rejected.name, rejected.rule]).toEqual([false, "room_id", "2"]);
    expect(checkAuth(event, authEventsOf(event), rules).name).toBe("room_id");
    // The create event may also come among the supplied events, as long as it is not listed.
    expect(checkAuth(event, [...authEventsOf(event), create], rules).allowed).toBe(true);
  });

  it("throws when an auth event the event lists is not supplied", async () => {
    const { rules, graph } = await buildRoom("10");
    expect(() => checkAuth(graph.node("START"), [], rules)).toThrow(MissingAuthEventError);
  });

  it.each(ALL)("room %s: the decision does not depend on the order of the auth events (property)", async (v) => {
    const { rules, graph, authEventsOf, options } = await buildRoom(v);
    const events = ["IMB", "START", "PA", "MB", "PB"].map((name) => graph.node(name));
    for (const event of events) {
      const reference = checkAuth(event, authEventsOf(event), rules, options);
      fc.assert(
        fc.property(
          fc.shuffledSubarray([...event.auth_events], { minLength: event.auth_events.length }),
          fc.shuffledSubarray(authEventsOf(event), { minLength: event.auth_events.length }),
          (listed, supplied) => {
            const decision = checkAuth({ ...event, auth_events: listed }, supplied, rules, options);
            expect(decision).toEqual(reference);
          },
        ),
        { numRuns: 25 },
      );
    }
  });
});

describe("power of the sender as read from the auth events", () => {
  it("a moderator's power-levels change is checked against the power levels it cites", async () => {
    const rules = getRoomVersion("10");
    const graph = new RoomGraph(rules);
    await graph.build(
      [
        ...initialNodes(rules),
        { id: "P1", type: "m.room.power_levels", sender: ALICE, stateKey: "", content: { users: { [ALICE]: 100, [BOB]: 50 } } },
        { id: "P2", type: "m.room.power_levels", sender: BOB, stateKey: "", content: { users: { [ALICE]: 100, [BOB]: 50 }, kick: 40 } },
        { id: "P3", type: "m.room.power_levels", sender: BOB, stateKey: "", content: { users: { [ALICE]: 0, [BOB]: 50 } } },
      ],
      [INITIAL_CHAIN, ["P3", "P2", "P1", "START"]],
    );
    const authEventsOf = (event: RoomEvent) => event.auth_events.map((id) => graph.events.get(id) as RoomEvent);
    expect(checkAuth(graph.node("P2"), authEventsOf(graph.node("P2")), rules).allowed).toBe(true);
    const demoteAdmin = checkAuth(graph.node("P3"), authEventsOf(graph.node("P3")), rules);
    expect([demoteAdmin.allowed, demoteAdmin.name]).toEqual([false, "power_levels.users_removed.old_too_high"]);
  });
});
