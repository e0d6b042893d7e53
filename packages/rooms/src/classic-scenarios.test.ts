import { getRoomVersion } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { stateKeyOf } from "./events.js";
import { CLASSIC_SCENARIOS, INITIAL_CHAIN, initialNodes } from "./fixtures/classic-scenarios.js";
import { RoomGraph } from "./testing/builders.js";

async function endState(version: string, scenario: (typeof CLASSIC_SCENARIOS)[number]) {
  const rules = getRoomVersion(version);
  const graph = new RoomGraph(rules);
  await graph.build([...initialNodes(rules), ...scenario.nodes(rules)], [INITIAL_CHAIN, ...scenario.chains]);
  const start = graph.stateOf("START");
  const end = graph.stateOf("END");
  const expected = new Map(scenario.expected.map((name) => [stateKeyOf(graph.node(name)) as string, name]));
  const changed = new Map([...end].filter(([key, name]) => expected.has(key) || start.get(key) !== name));
  return { changed, expected };
}

// Room 2 is the first v2 room (v1 event format), 10 and 11 cover the later auth rules, and 12
// runs the same scenarios under state resolution v2.1, where none of them is a state reset.
describe.each(["2", "6", "10", "11", "12"])("classic scenarios in room version %s", (version) => {
  it.each(CLASSIC_SCENARIOS.map((s) => [s.name, s] as const))("%s", async (_name, scenario) => {
    const { changed, expected } = await endState(version, scenario);
    expect(changed).toEqual(expected);
  });
});
