import { getRoomVersion, type RoomVersionRules } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { problemA, problemB, type ResetScenario } from "./fixtures/state-reset-scenarios.js";
import { createMemoryLookup } from "./lookup.js";
import { resolveState } from "./resolve.js";
import type { V2ResolutionTrace } from "./state-res-types.js";

async function resolve(rules: RoomVersionRules, scenario: ResetScenario) {
  return resolveState({
    rules,
    stateSets: scenario.stateSets,
    lookup: createMemoryLookup(scenario.events),
    explain: true,
  });
}

const v11 = getRoomVersion("11");
const v12 = getRoomVersion("12");
// The room-12 rules with the old algorithm: shows the difference comes from v2.1 alone.
const v12WithV2: RoomVersionRules = { ...v12, stateResolution: "v2" };

describe.each([
  ["problem A", problemA],
  ["problem B", problemB],
] as const)("MSC4297 %s", (_name, build) => {
  it("resets the state under v2 (room 11)", async () => {
    const scenario = build(v11);
    const { state } = await resolve(v11, scenario);
    expect(state.get(scenario.key)).toBe(scenario.underV2);
  });

  it("does not reset under v2.1 (room 12)", async () => {
    const scenario = build(v12);
    const { state } = await resolve(v12, scenario);
    expect(state.get(scenario.key)).toBe(scenario.underV21);
  });

  it("resets under v2 with room-12 auth rules too, so the fix is the algorithm", async () => {
    const scenario = build(v12);
    const { state } = await resolve(v12WithV2, scenario);
    expect(state.get(scenario.key)).toBe(scenario.underV2);
  });
});

describe("what the v2.1 trace shows for the resets", () => {
  it("problem A: the join rules are checked from an empty state and pass on their own auth events", async () => {
    const scenario = problemA(v12);
    const trace = (await resolve(v12, scenario)).trace as V2ResolutionTrace;
    expect(trace.algorithm).toBe("v2.1");
    expect(trace.initialState).toBe("empty");
    const joinRuleChecks = trace.authChecks.filter((c) => c.key === scenario.key);
    expect(joinRuleChecks.map((c) => [c.eventId, c.outcome])).toEqual([
      ["$a-jr1", "allowed"],
      ["$a-jr2", "allowed"],
    ]);
  });

  it("problem A under v2: both join rules fail because Alice has left in the unconflicted state", async () => {
    const scenario = problemA(v11);
    const trace = (await resolve(v11, scenario)).trace as V2ResolutionTrace;
    const joinRuleChecks = trace.authChecks.filter((c) => c.key === scenario.key);
    expect(joinRuleChecks.map((c) => [c.eventId, c.outcome, c.name])).toEqual([
      ["$a-jr1", "denied", "sender_not_joined"],
      ["$a-jr2", "denied", "sender_not_joined"],
    ]);
  });

  it("problem B: the conflicted subgraph brings the intermediate power levels into the replay", async () => {
    const scenario = problemB(v12);
    const trace = (await resolve(v12, scenario)).trace as V2ResolutionTrace;
    expect(trace.conflictedSubgraph).toContain("$b-pl1");
    expect(trace.authDifference).not.toContain("$b-pl1");
    // The join rules and Bob's join are on paths between conflicted events too (Zara's join
    // cites the join rules, which cite PL0; PL2 cites Bob's join, which cites PL0).
    expect(trace.conflictedSubgraph).toEqual(expect.arrayContaining(["$b-jr", "$b-bob", "$b-eve"]));
    expect(trace.powerOrder.map((p) => p.eventId)).toEqual(["$b-pl0", "$b-jr", "$b-pl1", "$b-bob", "$b-pl2"]);
    const v2Trace = (await resolve(v11, problemB(v11))).trace as V2ResolutionTrace;
    expect(v2Trace.fullConflictedSet).not.toContain("$b-pl1");
    expect(v2Trace.powerOrder.map((p) => p.eventId)).toEqual(["$b-pl0", "$b-pl2"]);
  });
});
