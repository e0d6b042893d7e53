/**
 * State resolution v1 (room version 1 only). Known to reset state; kept for old rooms.
 *
 * Spec: rooms/v1 "State resolution". Choices the spec leaves open follow Synapse
 * (`synapse/state/v1.py`), as every server in a v1 room must choose alike:
 * - a key is conflicted only when the sets that have it disagree (a missing key is not a
 *   conflict, unlike v2);
 * - power levels, then join rules, then member events are resolved, each pass against the
 *   result so far: sorted by ascending depth then descending sha1(event_id), the first is
 *   taken and each next one replaces it while it passes auth;
 * - other keys take the first event, by descending depth then ascending sha1(event_id), that
 *   passes auth against the state after the member pass; if none passes, the last one tried.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type AuthDecision, checkAuthAgainstState } from "./auth.js";
import { authTypesForEvent } from "./auth-events.js";
import { compareCodePoints, parseStateKey, type RoomEvent, type StateKey } from "./events.js";
import { type ResolutionContext, toRecord } from "./state-res-context.js";
import type { StateMap, V1KeyTrace, V1ResolutionTrace } from "./state-res-types.js";

function sha1Hex(value: string): string {
  return createHash("sha1").update(value, "utf8").digest("hex");
}

/** Splits state sets the v1 way: a key is conflicted only when two sets hold different events. */
function separateV1(stateSets: readonly ReadonlyMap<StateKey, string>[]): {
  unconflicted: StateMap;
  conflicted: Map<StateKey, string[]>;
} {
  const values = new Map<StateKey, Set<string>>();
  for (const set of stateSets) {
    for (const [key, id] of set) {
      let ids = values.get(key);
      if (ids === undefined) values.set(key, (ids = new Set()));
      ids.add(id);
    }
  }
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<StateKey, string[]>();
  for (const [key, ids] of values) {
    if (ids.size === 1) unconflicted.set(key, ids.values().next().value as string);
    else conflicted.set(key, [...ids].sort(compareCodePoints));
  }
  return { unconflicted, conflicted };
}

type Pass = V1KeyTrace["pass"];

function passOf(key: StateKey): Pass {
  const [type, stateKeyValue] = parseStateKey(key);
  if (type === "m.room.power_levels" && stateKeyValue === "") return "power_levels";
  if (type === "m.room.join_rules") return "join_rules";
  if (type === "m.room.member") return "member";
  return "other";
}

interface Candidate {
  readonly event: RoomEvent;
  readonly sha1: string;
}

/** Runs v1 over the context's state sets. */
export async function resolveV1(ctx: ResolutionContext): Promise<{ state: StateMap; trace?: V1ResolutionTrace }> {
  const { cache, rules } = ctx;
  const stateSets = ctx.input.stateSets;
  const { unconflicted, conflicted } = separateV1(stateSets);

  const allConflicted = [...conflicted.values()].flat();
  await cache.load(allConflicted);
  // R starts from the unconflicted state as separated, before keys left with a single known
  // event are moved into it (Synapse builds its auth events at that point too).
  const baseForAuth = new Map(unconflicted);
  const unknownEvents: string[] = [];
  const candidatesByKey = new Map<StateKey, Candidate[]>();
  for (const [key, ids] of conflicted) {
    const candidates: Candidate[] = [];
    for (const id of ids) {
      const event = cache.get(id);
      if (event === undefined) unknownEvents.push(id);
      else candidates.push({ event, sha1: sha1Hex(id) });
    }
    // Unknown events cannot be checked; a key left with one known event is not a conflict.
    if (candidates.length === 1) unconflicted.set(key, (candidates[0] as Candidate).event.event_id);
    else if (candidates.length > 1) candidatesByKey.set(key, candidates);
  }

  // R: the state the conflicted events are checked against, starting from the unconflicted
  // events at every key their auth rules read.
  const authKeys = new Set<StateKey>();
  for (const id of allConflicted) {
    const event = cache.get(id);
    if (event !== undefined) for (const key of authTypesForEvent(event, rules)) authKeys.add(key);
  }
  const authIds: string[] = [];
  for (const key of authKeys) {
    const id = baseForAuth.get(key);
    if (id !== undefined) authIds.push(id);
  }
  await cache.load(authIds);
  const authState = new Map<StateKey, RoomEvent>();
  for (const key of authKeys) {
    const id = baseForAuth.get(key);
    const event = id === undefined ? undefined : cache.get(id);
    if (event !== undefined && !cache.isRejected(event.event_id)) authState.set(key, event);
  }

  const keyTraces: V1KeyTrace[] = [];
  const resolved: StateMap = new Map(unconflicted);
  const check = (phase: string, event: RoomEvent, state: ReadonlyMap<StateKey, RoomEvent>): AuthDecision => {
    const decision = checkAuthAgainstState(event, state, rules, ctx.input.auth);
    ctx.record(phase, event, decision, state);
    return decision;
  };

  const byAscendingDepth = (a: Candidate, b: Candidate): number =>
    a.event.depth !== b.event.depth ? a.event.depth - b.event.depth : a.sha1 < b.sha1 ? 1 : a.sha1 > b.sha1 ? -1 : 0;

  for (const pass of ["power_levels", "join_rules", "member"] as const) {
    const picked: [StateKey, RoomEvent][] = [];
    for (const [key, candidates] of candidatesByKey) {
      if (passOf(key) !== pass) continue;
      const ordered = [...candidates].sort(byAscendingDepth);
      const state = new Map(authState);
      let chosen = (ordered[0] as Candidate).event;
      let reason = "the only candidate to pass auth was the first (lowest depth)";
      for (const { event } of ordered.slice(1)) {
        state.set(key, chosen);
        if (!check(pass, event, state).allowed) {
          reason = `${event.event_id} failed auth against ${chosen.event_id}; stopped there`;
          break;
        }
        chosen = event;
        reason = "each candidate passed auth against the one before; the last one stands";
      }
      picked.push([key, chosen]);
      resolved.set(key, chosen.event_id);
      if (ctx.explain) keyTraces.push({ key, pass, candidates: ordered.map(traceCandidate), chosen: chosen.event_id, reason });
    }
    // The next pass is checked against this pass's results.
    for (const [key, event] of picked) authState.set(key, event);
  }

  const byDescendingDepth = (a: Candidate, b: Candidate): number =>
    a.event.depth !== b.event.depth ? b.event.depth - a.event.depth : a.sha1 < b.sha1 ? -1 : a.sha1 > b.sha1 ? 1 : 0;
  for (const [key, candidates] of candidatesByKey) {
    if (passOf(key) !== "other") continue;
    const ordered = [...candidates].sort(byDescendingDepth);
    let chosen: RoomEvent | undefined;
    for (const { event } of ordered) {
      if (check("other", event, authState).allowed) {
        chosen = event;
        break;
      }
    }
    const reason =
      chosen === undefined
        ? "no candidate passed auth; the last one tried (lowest depth) is kept, as Synapse does"
        : "the first candidate, by highest depth, to pass auth";
    chosen ??= (ordered[ordered.length - 1] as Candidate).event;
    resolved.set(key, chosen.event_id);
    if (ctx.explain) keyTraces.push({ key, pass: "other", candidates: ordered.map(traceCandidate), chosen: chosen.event_id, reason });
  }

  if (!ctx.explain) return { state: resolved };
  return {
    state: resolved,
    trace: {
      algorithm: "v1",
      roomVersion: rules.id,
      stateSetCount: stateSets.length,
      unconflicted: toRecord(unconflicted),
      conflicted: toRecord(conflicted),
      unknownEvents: unknownEvents.sort(compareCodePoints),
      keys: keyTraces,
      authChecks: ctx.authChecks,
      resolved: toRecord(resolved),
    },
  };
}

function traceCandidate({ event, sha1 }: Candidate): V1KeyTrace["candidates"][number] {
  return { eventId: event.event_id, depth: event.depth, sha1 };
}
