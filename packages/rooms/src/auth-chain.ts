/**
 * Auth chains, the auth difference of state sets, and the conflicted state subgraph.
 *
 * Spec: rooms v2 "Auth chain", "Auth difference"; rooms v12 "Conflicted state subgraph".
 * Every walk visits each event once (linear in the events reached), fetching one
 * breadth-first level at a time through the lookup.
 *
 * @module
 */

import { EventCache, type EventLookup } from "./lookup.js";

/**
 * The auth chain of a set of events: every event reachable through `auth_events`, not
 * counting the starting events themselves (unless one is an auth event of another).
 * Unknown events end the walk along their path.
 */
export async function authChain(eventIds: Iterable<string>, lookup: EventLookup | EventCache): Promise<Set<string>> {
  const cache = lookup instanceof EventCache ? lookup : new EventCache(lookup);
  const start = new Set(eventIds);
  const chain = new Set<string>();
  // Walk from the start events' auth events so a start event is only included when reached.
  await cache.load(start);
  const first: string[] = [];
  for (const id of start) for (const authId of cache.get(id)?.auth_events ?? []) first.push(authId);
  await cache.walkAuthEvents(first, (id) => {
    chain.add(id);
    return true;
  });
  return chain;
}

/**
 * The auth difference of state sets (each given as its event IDs): the events in some but
 * not all of the sets' full auth chains.
 *
 * As Synapse computes it (`_get_auth_chain_difference`), a set's full auth chain includes the
 * set's own events. The spec's definition ("the union of the auth chains for each event in
 * S_i") reads as excluding them; the two differ only for an event that is in every state set
 * but cited by some sets' events and not others'. Agreeing with the implementation most
 * servers run is what keeps resolved states convergent.
 *
 * Linear: the chain shared by all sets (that of the events every set holds) is walked once,
 * and each set's walk stops where it meets that shared chain.
 */
export async function authChainDifference(
  stateSets: readonly Iterable<string>[],
  lookup: EventLookup | EventCache,
): Promise<Set<string>> {
  const cache = lookup instanceof EventCache ? lookup : new EventCache(lookup);
  const sets = stateSets.map((s) => new Set(s));
  if (sets.length <= 1) return new Set();
  const [first, ...rest] = sets as [Set<string>, ...Set<string>[]];
  const common = [...first].filter((id) => rest.every((s) => s.has(id)));

  const shared = new Set<string>();
  await cache.walkAuthEvents(common, (id) => {
    shared.add(id);
    return true;
  });

  const counts = new Map<string, number>();
  for (const set of sets) {
    const own = [...set].filter((id) => !shared.has(id));
    await cache.walkAuthEvents(own, (id) => {
      if (shared.has(id)) return false;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      return true;
    });
  }
  const difference = new Set<string>();
  for (const [id, count] of counts) if (count < sets.length) difference.add(id);
  return difference;
}

/**
 * The conflicted state subgraph (room version 12): every event on an `auth_events` path from
 * one conflicted event to another, endpoints included. An event is on such a path exactly
 * when it is reachable from a conflicted event and a conflicted event is reachable from it.
 */
export async function conflictedStateSubgraph(
  conflicted: Iterable<string>,
  lookup: EventLookup | EventCache,
): Promise<Set<string>> {
  const cache = lookup instanceof EventCache ? lookup : new EventCache(lookup);
  const targets = new Set(conflicted);
  const reachable: string[] = [];
  await cache.walkAuthEvents(targets, (id) => {
    reachable.push(id);
    return true;
  });

  // Whether a conflicted event is reachable from each event (itself counting), computed with
  // an explicit stack so that deep auth chains cannot overflow the call stack.
  // Room 1-2 event IDs are chosen by servers, so a hostile one can build an auth cycle; an
  // event already being expanded is skipped rather than followed round the cycle.
  const reaches = new Map<string, boolean>();
  const expanding = new Set<string>();
  for (const root of reachable) {
    if (reaches.has(root)) continue;
    const stack: [id: string, expanded: boolean][] = [[root, false]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [string, boolean];
      const [id, expanded] = top;
      if (reaches.has(id) || (!expanded && expanding.has(id))) {
        stack.pop();
        continue;
      }
      const parents = cache.get(id)?.auth_events ?? [];
      if (!expanded) {
        top[1] = true;
        expanding.add(id);
        for (const parent of parents) if (!reaches.has(parent) && !expanding.has(parent)) stack.push([parent, false]);
        continue;
      }
      stack.pop();
      expanding.delete(id);
      reaches.set(id, targets.has(id) || parents.some((p) => reaches.get(p) === true));
    }
  }
  const subgraph = new Set<string>();
  for (const id of reachable) if (reaches.get(id) === true) subgraph.add(id);
  return subgraph;
}
