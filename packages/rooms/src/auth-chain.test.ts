import { describe, expect, it } from "vitest";
import { authChain, authChainDifference, conflictedStateSubgraph } from "./auth-chain.js";
import type { RoomEvent } from "./events.js";
import { createMemoryLookup } from "./lookup.js";
import { makeEvent } from "./testing/builders.js";

/** Events named by letter, each citing the given auth events. */
function graph(edges: Record<string, string[]>) {
  const events: RoomEvent[] = Object.entries(edges).map(([id, auth]) =>
    makeEvent({ event_id: id, type: "t", sender: "@a:x", state_key: id, auth_events: auth }),
  );
  return createMemoryLookup(events);
}

describe("auth chains", () => {
  const lookup = graph({ A: [], B: ["A"], C: ["B"], D: ["C", "A"], E: ["B"] });

  it("collects every event reachable through auth_events, without the start events", async () => {
    expect([...(await authChain(["D"], lookup))].sort()).toEqual(["A", "B", "C"]);
    expect([...(await authChain(["D", "C"], lookup))].sort()).toEqual(["A", "B", "C"]);
    expect([...(await authChain(["A"], lookup))]).toEqual([]);
  });

  it("stops at unknown events", async () => {
    expect([...(await authChain(["X"], graph({ X: ["missing"] })))]).toEqual(["missing"]);
  });
});

describe("auth difference", () => {
  it("counts a state set's own events in its chain, as Synapse does", async () => {
    // Synapse's AuthChainDifferenceTestCase.test_simple: C -> B -> A, sets {A, B} and {C}.
    const lookup = graph({ A: [], B: ["A"], C: ["B"] });
    expect([...(await authChainDifference([["A", "B"], ["C"]], lookup))]).toEqual(["C"]);
  });

  it("is the union minus the intersection of the sets' chains", async () => {
    const lookup = graph({ A: [], B: ["A"], C: ["B"], D: ["B"], E: ["D"] });
    expect([...(await authChainDifference([["C"], ["E"]], lookup))].sort()).toEqual(["C", "D", "E"]);
    expect([...(await authChainDifference([["C"], ["C"]], lookup))]).toEqual([]);
    expect([...(await authChainDifference([["C"]], lookup))]).toEqual([]);
  });

  it("handles three sets: an event in two of three chains is in the difference", async () => {
    const lookup = graph({ A: [], B: ["A"], C: ["B"], D: ["A"] });
    expect([...(await authChainDifference([["C"], ["B"], ["D"]], lookup))].sort()).toEqual(["B", "C", "D"]);
  });
});

describe("conflicted state subgraph", () => {
  it("holds every event on a path between two conflicted events, and nothing else", async () => {
    // P2 -> P1 -> P0 and P2 -> M -> P0; X hangs off P0; conflicted: P2 and P0.
    const lookup = graph({ R: [], P0: ["R"], P1: ["P0"], M: ["P0"], P2: ["P1", "M"], X: ["P0"], Y: ["R"] });
    expect([...(await conflictedStateSubgraph(["P2", "P0"], lookup))].sort()).toEqual(["M", "P0", "P1", "P2"]);
    expect([...(await conflictedStateSubgraph(["X", "Y"], lookup))].sort()).toEqual(["X", "Y"]);
  });

  it("terminates on an auth cycle that a hostile server built with chosen event IDs", async () => {
    const lookup = graph({ A: ["B"], B: ["A"], C: ["A"] });
    const subgraph = await conflictedStateSubgraph(["C", "A"], lookup);
    expect(subgraph.has("C")).toBe(true);
    expect(subgraph.has("A")).toBe(true);
  });
});
