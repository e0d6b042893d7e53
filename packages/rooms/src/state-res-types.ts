/**
 * Public types of state resolution: inputs, outputs and the explain-mode trace.
 *
 * The trace is plain JSON (records, arrays, strings, numbers) so that a CLI can print it and
 * an operator can diff two servers' traces of the same resolution.
 *
 * @module
 */

import type { RoomVersionRules, StateResolutionAlgorithm } from "@myelin/types";
import type { AuthOptions } from "./auth.js";
import type { StateKey } from "./events.js";
import type { EventLookup } from "./lookup.js";

/** Resolved room state: state key (see `stateKey`) -> event ID. */
export type StateMap = Map<StateKey, string>;

/** One input state set, as a map or a plain record from state key to event ID. */
export type StateSetInput = ReadonlyMap<StateKey, string> | Readonly<Record<StateKey, string>>;

/** Options for `resolveState`. */
export interface ResolveStateOptions {
  /** The room version's rules (they choose the algorithm: v1, v2 or v2.1). */
  readonly rules: RoomVersionRules;
  /** The state sets to resolve, e.g. the states after each of an event's `prev_events`. */
  readonly stateSets: readonly StateSetInput[];
  /** Where events are read from; it also says which events were rejected. */
  readonly lookup: EventLookup;
  /**
   * The room being resolved. When given, events the lookup returns from any other room are
   * treated as unknown (and listed as such in the trace). Give it unless the lookup is
   * already scoped to the room.
   */
  readonly roomId?: string;
  /** Also return a {@link ResolutionTrace} of every decision. Default `false`. */
  readonly explain?: boolean;
  /** Passed to the auth checks (third-party invite signatures, restricted-join signatures). */
  readonly auth?: Pick<AuthOptions, "verifySignature" | "isSignedBy">;
}

/** The outcome of `resolveState`. */
export interface ResolvedState {
  readonly state: StateMap;
  /** Present when `explain` was set. */
  readonly trace?: ResolutionTrace;
}

/** A power level as the trace prints it: room-12 creators have `"infinite"`. */
export type TracePowerLevel = number | "infinite";

/** One auth check made during resolution, and why it came out as it did. */
export interface AuthCheckTrace {
  /** Which step made the check (`"power"`/`"mainline"` for v2; the conflicted type for v1). */
  readonly phase: string;
  readonly eventId: string;
  /** The event's state key (`["type","state_key"]`), or `null` for a non-state event. */
  readonly key: StateKey | null;
  /** `"checked"`, or why the event was not checked at all. */
  readonly outcome: "allowed" | "denied" | "skipped";
  /** Rule number and name that decided (absent when skipped). */
  readonly rule?: string;
  readonly name?: string;
  readonly message: string;
  /** The state the check read: state key -> event ID (auth events overlaid by current state). */
  readonly authEvents?: Readonly<Record<StateKey, string>>;
}

/** An event in the reverse topological power ordering, with the keys it was sorted by. */
export interface PowerOrderTrace {
  readonly eventId: string;
  readonly key: StateKey | null;
  readonly senderPowerLevel: TracePowerLevel;
  readonly originServerTs: number;
}

/** An event in the mainline ordering, with the keys it was sorted by. */
export interface MainlineOrderTrace {
  readonly eventId: string;
  readonly key: StateKey | null;
  /**
   * Position of the closest mainline event in its power-levels chain: 0 is the resolved
   * power-levels event itself, larger is older; `"none"` (the spec's ∞) when its chain never
   * meets the mainline. Larger positions sort first.
   */
  readonly mainlinePosition: number | "none";
  readonly originServerTs: number;
}

/** Explain-mode trace of a v2 or v2.1 resolution (room versions 2-12). */
export interface V2ResolutionTrace {
  readonly algorithm: "v2" | "v2.1";
  readonly roomVersion: string;
  readonly stateSetCount: number;
  readonly unconflicted: Readonly<Record<StateKey, string>>;
  readonly conflicted: Readonly<Record<StateKey, readonly string[]>>;
  readonly authDifference: readonly string[];
  /** v2.1 only: the conflicted state subgraph. */
  readonly conflictedSubgraph?: readonly string[];
  readonly fullConflictedSet: readonly string[];
  /** Events of the full conflicted set the lookup did not know (or that are in another room); they take no part. */
  readonly unknownEvents: readonly string[];
  /** Power events (and their auth ancestors in the full conflicted set), in the order applied. */
  readonly powerOrder: readonly PowerOrderTrace[];
  /** What the first iterative auth checks started from. */
  readonly initialState: "unconflicted" | "empty";
  /** The state after the power events were applied (step 2). */
  readonly partialState: Readonly<Record<StateKey, string>>;
  /** The mainline, from the partial state's power-levels event (position 0) back to the first. */
  readonly mainline: readonly string[];
  /** The other events, in mainline order (step 3). */
  readonly mainlineOrder: readonly MainlineOrderTrace[];
  /** Every auth check, in the order made (steps 2 and 4). */
  readonly authChecks: readonly AuthCheckTrace[];
  /** Keys where the unconflicted state map overrode the iterative result (step 5). */
  readonly unconflictedOverrides: readonly StateKey[];
  readonly resolved: Readonly<Record<StateKey, string>>;
}

/** One conflicted key resolved by the v1 algorithm. */
export interface V1KeyTrace {
  readonly key: StateKey;
  /** `"power_levels"`, `"join_rules"`, `"member"` (applied in that order, each against the result so far) or `"other"`. */
  readonly pass: "power_levels" | "join_rules" | "member" | "other";
  /** Candidates in the order tried, with depth and sha1(event_id). */
  readonly candidates: readonly { readonly eventId: string; readonly depth: number; readonly sha1: string }[];
  readonly chosen: string;
  readonly reason: string;
}

/** Explain-mode trace of a v1 resolution (room version 1). */
export interface V1ResolutionTrace {
  readonly algorithm: "v1";
  readonly roomVersion: string;
  readonly stateSetCount: number;
  readonly unconflicted: Readonly<Record<StateKey, string>>;
  readonly conflicted: Readonly<Record<StateKey, readonly string[]>>;
  readonly unknownEvents: readonly string[];
  readonly keys: readonly V1KeyTrace[];
  readonly authChecks: readonly AuthCheckTrace[];
  readonly resolved: Readonly<Record<StateKey, string>>;
}

/** Explain-mode trace of any resolution. */
export type ResolutionTrace = V1ResolutionTrace | V2ResolutionTrace;

/** Internal: what each algorithm receives. */
export interface AlgorithmInput {
  readonly rules: RoomVersionRules;
  readonly algorithm: StateResolutionAlgorithm;
  readonly stateSets: readonly ReadonlyMap<StateKey, string>[];
  readonly explain: boolean;
  readonly auth: Pick<AuthOptions, "verifySignature" | "isSignedBy">;
}
