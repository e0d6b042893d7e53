/**
 * State resolution v2 (room versions 2-11) and v2.1 (room version 12).
 *
 * Spec: rooms/v2 "State resolution"; rooms/v12 (v2.1: iterative auth checks start from the
 * empty state map, and the full conflicted set includes the conflicted state subgraph).
 * Where the spec leaves a choice open, Synapse's behaviour is followed, because state
 * resolution only works if every server makes the same choice:
 * - a key missing from some state set is conflicted;
 * - `m.room.create` is a power event (as are power levels and join rules with an empty state
 *   key, and kicks and bans);
 * - a power event's auth ancestors join the sort only through paths inside the full
 *   conflicted set;
 * - a set's full auth chain includes the set's own events (see `authChainDifference`);
 * - rejected events are never admitted into the resolved state.
 *
 * Cost: linear walks for the auth difference and subgraph, O(n log n) for the reverse
 * topological power ordering (Kahn's algorithm with a heap) and the mainline ordering
 * (each power-levels event's mainline depth computed once).
 *
 * @module
 */

import { authChainDifference, conflictedStateSubgraph } from "./auth-chain.js";
import { compareCodePoints, membershipOf, type RoomEvent, type StateKey, stateKey, stateKeyOf } from "./events.js";
import { MinHeap } from "./heap.js";
import { creatorsOf, PowerView, readPowerLevels } from "./power-levels.js";
import { type ResolutionContext, toRecord } from "./state-res-context.js";
import type { MainlineOrderTrace, PowerOrderTrace, StateMap, V2ResolutionTrace } from "./state-res-types.js";

const POWER_LEVELS_KEY = stateKey("m.room.power_levels", "");

/** Splits state sets into the unconflicted state map and the conflicted state set. */
export function separate(stateSets: readonly ReadonlyMap<StateKey, string>[]): {
  unconflicted: StateMap;
  conflicted: Map<StateKey, string[]>;
} {
  const values = new Map<StateKey, Set<string>>();
  const counts = new Map<StateKey, number>();
  for (const set of stateSets) {
    for (const [key, id] of set) {
      let ids = values.get(key);
      if (ids === undefined) values.set(key, (ids = new Set()));
      ids.add(id);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const unconflicted: StateMap = new Map();
  const conflicted = new Map<StateKey, string[]>();
  for (const [key, ids] of values) {
    if (ids.size === 1 && counts.get(key) === stateSets.length) {
      unconflicted.set(key, ids.values().next().value as string);
    } else {
      conflicted.set(key, [...ids].sort(compareCodePoints));
    }
  }
  return { unconflicted, conflicted };
}

/**
 * A power event: power levels, join rules or create (empty state key), or a member event
 * whose `membership` is `leave` or `ban` and whose sender is not its target (a kick or ban).
 */
export function isPowerEvent(event: RoomEvent): boolean {
  if (event.state_key === undefined) return false;
  if (event.type === "m.room.power_levels" || event.type === "m.room.join_rules" || event.type === "m.room.create") {
    return event.state_key === "";
  }
  if (event.type === "m.room.member") {
    const membership = membershipOf(event);
    return (membership === "leave" || membership === "ban") && event.sender !== event.state_key;
  }
  return false;
}

/** Runs v2 (or v2.1 when `v21`) over the context's state sets. */
export async function resolveV2(ctx: ResolutionContext, v21: boolean): Promise<{ state: StateMap; trace?: V2ResolutionTrace }> {
  const { cache, rules } = ctx;
  const stateSets = ctx.input.stateSets;
  const { unconflicted, conflicted } = separate(stateSets);
  const trace = (parts: Partial<V2ResolutionTrace>, resolved: StateMap): V2ResolutionTrace | undefined =>
    ctx.explain
      ? {
          algorithm: v21 ? "v2.1" : "v2",
          roomVersion: rules.id,
          stateSetCount: stateSets.length,
          unconflicted: toRecord(unconflicted),
          conflicted: toRecord(conflicted),
          authDifference: [],
          fullConflictedSet: [],
          unknownEvents: [],
          powerOrder: [],
          initialState: v21 ? "empty" : "unconflicted",
          partialState: {},
          mainline: [],
          mainlineOrder: [],
          authChecks: ctx.authChecks,
          unconflictedOverrides: [],
          ...parts,
          resolved: toRecord(resolved),
        }
      : undefined;

  if (conflicted.size === 0) return withTrace(unconflicted, trace({}, unconflicted));

  const conflictedIds = new Set<string>();
  for (const ids of conflicted.values()) for (const id of ids) conflictedIds.add(id);
  const authDifference = await authChainDifference(
    stateSets.map((set) => set.values()),
    cache,
  );
  const subgraph = v21 ? await conflictedStateSubgraph(conflictedIds, cache) : new Set<string>();
  const candidates = new Set<string>([...conflictedIds, ...authDifference, ...subgraph]);
  await cache.load(candidates);
  const fullConflictedSet = new Set<string>();
  const unknownEvents: string[] = [];
  // Events the lookup does not know cannot be checked, so they take no part (as in Synapse and ruma).
  for (const id of candidates) {
    if (cache.get(id) === undefined) unknownEvents.push(id);
    else fullConflictedSet.add(id);
  }

  // Step 1: the power events and their auth ancestors in the full conflicted set, sorted.
  const powerEvents = [...fullConflictedSet].filter((id) => isPowerEvent(cache.get(id) as RoomEvent));
  const { order: sortedPower, trace: powerOrder } = await reverseTopologicalPowerSort(ctx, powerEvents, fullConflictedSet);

  // Step 2: iterative auth checks from the unconflicted state map (v2) or from nothing (v2.1).
  const partial = await ctx.iterativeAuthChecks("power", sortedPower, v21 ? new Map() : unconflicted);

  // Step 3: every other event, in mainline order of the partial state's power levels.
  const inPowerOrder = new Set(sortedPower);
  const remaining = [...fullConflictedSet].filter((id) => !inPowerOrder.has(id));
  const { order: sortedRemaining, mainline, trace: mainlineOrder } = await mainlineSort(
    ctx,
    remaining,
    partial.get(POWER_LEVELS_KEY),
  );

  // Step 4: iterative auth checks of those on top of the partial state.
  const resolved = await ctx.iterativeAuthChecks("mainline", sortedRemaining, partial);

  // Step 5: the unconflicted state map wins wherever it has a key.
  const unconflictedOverrides: StateKey[] = [];
  for (const [key, id] of unconflicted) {
    if (ctx.explain && resolved.get(key) !== id) unconflictedOverrides.push(key);
    resolved.set(key, id);
  }

  return withTrace(
    resolved,
    trace(
      {
        authDifference: [...authDifference].sort(compareCodePoints),
        ...(v21 ? { conflictedSubgraph: [...subgraph].sort(compareCodePoints) } : {}),
        fullConflictedSet: [...fullConflictedSet].sort(compareCodePoints),
        unknownEvents: unknownEvents.sort(compareCodePoints),
        powerOrder,
        partialState: toRecord(partial),
        mainline,
        mainlineOrder,
        unconflictedOverrides,
      },
      resolved,
    ),
  );
}

function withTrace<T>(state: StateMap, trace: T | undefined): { state: StateMap; trace?: T } {
  return trace === undefined ? { state } : { state, trace };
}

/**
 * The power level of an event's sender according to the event's own auth events (the
 * power-levels event there, else the creator rule), as the reverse topological power
 * ordering compares them. Room-12 creators have infinite power.
 */
function senderPowerLevel(ctx: ResolutionContext, event: RoomEvent): number {
  let powerLevels: RoomEvent | undefined;
  let create: RoomEvent | undefined;
  for (const id of event.auth_events) {
    const authEvent = ctx.cache.get(id);
    if (authEvent === undefined || authEvent.state_key !== "") continue;
    if (authEvent.type === "m.room.power_levels") powerLevels = authEvent;
    else if (authEvent.type === "m.room.create") create = authEvent;
  }
  const createId = ctx.createEventIdFor(event);
  if (createId !== undefined) create = ctx.cache.get(createId);
  const view = new PowerView(
    powerLevels === undefined ? undefined : readPowerLevels(powerLevels.content, ctx.rules),
    creatorsOf(create, ctx.rules),
    ctx.rules,
  );
  return view.userLevel(event.sender);
}

interface PowerSortKey {
  readonly id: string;
  readonly power: number;
  readonly ts: number;
}

/** Higher power first, then earlier `origin_server_ts`, then smaller event ID. */
function comparePowerKeys(a: PowerSortKey, b: PowerSortKey): number {
  if (a.power !== b.power) return a.power > b.power ? -1 : 1;
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  return compareCodePoints(a.id, b.id);
}

/**
 * The reverse topological power ordering of the power events and their auth ancestors inside
 * the full conflicted set: Kahn's algorithm over the auth DAG, oldest first, choosing among
 * ready events by {@link comparePowerKeys}.
 */
async function reverseTopologicalPowerSort(
  ctx: ResolutionContext,
  powerEvents: readonly string[],
  fullConflictedSet: ReadonlySet<string>,
): Promise<{ order: string[]; trace: PowerOrderTrace[] }> {
  const { cache } = ctx;
  // The graph: each node's auth events that are in the full conflicted set.
  const graph = new Map<string, string[]>();
  const stack = [...powerEvents];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (graph.has(id)) continue;
    const edges = (cache.get(id)?.auth_events ?? []).filter((authId) => fullConflictedSet.has(authId));
    graph.set(id, edges);
    for (const authId of edges) if (!graph.has(authId)) stack.push(authId);
  }

  const nodes = [...graph.keys()].map((id) => cache.get(id) as RoomEvent);
  const authIds = new Set<string>();
  for (const event of nodes) {
    for (const id of event.auth_events) authIds.add(id);
    const createId = ctx.createEventIdFor(event);
    if (createId !== undefined) authIds.add(createId);
  }
  await cache.load(authIds);

  const keys = new Map<string, PowerSortKey>();
  for (const event of nodes) {
    keys.set(event.event_id, { id: event.event_id, power: senderPowerLevel(ctx, event), ts: event.origin_server_ts });
  }
  const outdegree = new Map<string, number>();
  const citedBy = new Map<string, string[]>();
  const heap = new MinHeap<PowerSortKey>(comparePowerKeys);
  for (const [id, edges] of graph) {
    const distinct = new Set(edges);
    outdegree.set(id, distinct.size);
    for (const authId of distinct) {
      let list = citedBy.get(authId);
      if (list === undefined) citedBy.set(authId, (list = []));
      list.push(id);
    }
    if (distinct.size === 0) heap.push(keys.get(id) as PowerSortKey);
  }
  const order: string[] = [];
  for (let next = heap.pop(); next !== undefined; next = heap.pop()) {
    order.push(next.id);
    for (const parent of citedBy.get(next.id) ?? []) {
      const remaining = (outdegree.get(parent) as number) - 1;
      outdegree.set(parent, remaining);
      if (remaining === 0) heap.push(keys.get(parent) as PowerSortKey);
    }
  }
  const trace: PowerOrderTrace[] = ctx.explain
    ? order.map((id) => {
        const key = keys.get(id) as PowerSortKey;
        return {
          eventId: id,
          key: stateKeyOf(cache.get(id) as RoomEvent) ?? null,
          senderPowerLevel: key.power === Infinity ? "infinite" : key.power,
          originServerTs: key.ts,
        };
      })
    : [];
  return { order, trace };
}

/** The `m.room.power_levels` event among an event's auth events, if any. */
function powerLevelsAuthEvent(ctx: ResolutionContext, event: RoomEvent): string | undefined {
  for (const id of event.auth_events) {
    const authEvent = ctx.cache.get(id);
    if (authEvent !== undefined && authEvent.type === "m.room.power_levels" && authEvent.state_key === "") return id;
  }
  return undefined;
}

/**
 * The mainline ordering of `ids` based on the power-levels event `powerLevelsId`: events whose
 * power-levels chain meets the mainline further back (or never) first, then earlier
 * `origin_server_ts`, then smaller event ID.
 */
async function mainlineSort(
  ctx: ResolutionContext,
  ids: readonly string[],
  powerLevelsId: string | undefined,
): Promise<{ order: string[]; mainline: string[]; trace: MainlineOrderTrace[] }> {
  const { cache } = ctx;
  const mainline: string[] = [];
  if (ids.length === 0) return { order: [], mainline, trace: [] };
  const onMainline = new Set<string>();
  for (let id = powerLevelsId; id !== undefined && !onMainline.has(id); ) {
    mainline.push(id);
    onMainline.add(id);
    await cache.load([id]);
    const event = cache.get(id);
    if (event === undefined) break;
    await cache.load(event.auth_events);
    id = powerLevelsAuthEvent(ctx, event);
  }
  // Depth on the mainline: the oldest power-levels event is 1, the resolved one the largest;
  // 0 stands for "never meets the mainline" (the spec's position ∞), which sorts first.
  const mainlineDepth = new Map<string, number>();
  mainline.forEach((id, index) => mainlineDepth.set(id, mainline.length - index));

  // Each power-levels event's depth is computed once, so the whole sort is O(n log n).
  const depthOf = async (start: string | undefined): Promise<number> => {
    const path = new Set<string>();
    let depth = 0;
    for (let id = start; id !== undefined; ) {
      const known = mainlineDepth.get(id);
      if (known !== undefined) {
        depth = known;
        break;
      }
      if (path.has(id)) break; // a cycle (hostile room 1-2 event IDs): never meets the mainline
      path.add(id);
      await cache.load([id]);
      const event = cache.get(id);
      if (event === undefined) break;
      await cache.load(event.auth_events);
      id = powerLevelsAuthEvent(ctx, event);
    }
    for (const id of path) mainlineDepth.set(id, depth);
    return depth;
  };

  const events = ids.map((id) => cache.get(id) as RoomEvent);
  await cache.load(events.flatMap((event) => event.auth_events));
  const sortKeys = new Map<string, { depth: number; ts: number }>();
  for (const event of events) {
    sortKeys.set(event.event_id, {
      depth: await depthOf(powerLevelsAuthEvent(ctx, event)),
      ts: event.origin_server_ts,
    });
  }
  const order = [...ids].sort((a, b) => {
    const x = sortKeys.get(a) as { depth: number; ts: number };
    const y = sortKeys.get(b) as { depth: number; ts: number };
    if (x.depth !== y.depth) return x.depth - y.depth;
    if (x.ts !== y.ts) return x.ts < y.ts ? -1 : 1;
    return compareCodePoints(a, b);
  });
  const trace: MainlineOrderTrace[] = ctx.explain
    ? order.map((id) => {
        const key = sortKeys.get(id) as { depth: number; ts: number };
        return {
          eventId: id,
          key: stateKeyOf(cache.get(id) as RoomEvent) ?? null,
          mainlinePosition: key.depth === 0 ? "none" : mainline.length - key.depth,
          originServerTs: key.ts,
        };
      })
    : [];
  return { order, mainline, trace };
}
