/**
 * `resolveState`: the room state that results from several state sets, by the algorithm the
 * room version names (v1 for room 1, v2 for rooms 2-11, v2.1 for room 12).
 *
 * @module
 */

import type { StateKey } from "./events.js";
import { EventCache } from "./lookup.js";
import { ResolutionContext } from "./state-res-context.js";
import type { ResolvedState, ResolveStateOptions, StateSetInput } from "./state-res-types.js";
import { resolveV1 } from "./state-res-v1.js";
import { resolveV2 } from "./state-res-v2.js";

function toMap(set: StateSetInput): ReadonlyMap<StateKey, string> {
  if (set instanceof Map) return set;
  return new Map(Object.entries(set as Readonly<Record<StateKey, string>>));
}

/**
 * Resolves state sets into one room state.
 *
 * Pure over its inputs: events are read through `lookup` (which may be backed by storage),
 * nothing is written. With `explain: true` the result carries a trace of every decision:
 * the unconflicted and conflicted state, the full conflicted set, the power ordering, each
 * auth check and the rule that decided it, and the mainline with each event's position.
 *
 * Resolving no state sets gives the empty state; resolving one gives it back unchanged.
 */
export async function resolveState(options: ResolveStateOptions): Promise<ResolvedState> {
  const { rules } = options;
  const ctx = new ResolutionContext(
    {
      rules,
      algorithm: rules.stateResolution,
      stateSets: options.stateSets.map(toMap),
      explain: options.explain === true,
      auth: options.auth ?? {},
    },
    new EventCache(options.lookup, options.roomId),
  );
  switch (rules.stateResolution) {
    case "v1":
      return resolveV1(ctx);
    case "v2":
      return resolveV2(ctx, false);
    case "v2.1":
      return resolveV2(ctx, true);
  }
}
