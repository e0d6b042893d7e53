/**
 * What every state-resolution algorithm shares: the event cache, auth checks against a state
 * map (memoised within one resolution), and the trace.
 *
 * @module
 */

import type { RoomVersionRules } from "@myelin/types";
import { type AuthDecision, type AuthState, checkAuthAgainstState } from "./auth.js";
import { authTypesForEvent } from "./auth-events.js";
import { type RoomEvent, type StateKey, stateKeyOf } from "./events.js";
import type { EventCache } from "./lookup.js";
import type { AlgorithmInput, AuthCheckTrace, StateMap } from "./state-res-types.js";

/** Per-resolution state: cache, rules, memoised auth checks, trace records. */
export class ResolutionContext {
  readonly rules: RoomVersionRules;
  readonly authChecks: AuthCheckTrace[] = [];
  private readonly memo = new Map<string, AuthDecision>();

  constructor(
    readonly input: AlgorithmInput,
    readonly cache: EventCache,
  ) {
    this.rules = input.rules;
  }

  get explain(): boolean {
    return this.input.explain;
  }

  /** Room 12: the create event named by an event's room ID (it is never an auth event there). */
  createEventIdFor(event: RoomEvent): string | undefined {
    if (!this.rules.auth.privilegedCreators || event.room_id === undefined || !event.room_id.startsWith("!")) {
      return undefined;
    }
    return `$${event.room_id.slice(1)}`;
  }

  /**
   * Fetches what auth checks of `events` against `state` will read: their auth events, the
   * state's events at their auth types, and (room 12) the create event.
   */
  async preloadForChecks(events: readonly RoomEvent[], state: ReadonlyMap<StateKey, string>): Promise<void> {
    const ids = new Set<string>();
    for (const event of events) {
      for (const id of event.auth_events) ids.add(id);
      for (const key of authTypesForEvent(event, this.rules)) {
        const id = state.get(key);
        if (id !== undefined) ids.add(id);
      }
      const createId = this.createEventIdFor(event);
      if (createId !== undefined) ids.add(createId);
    }
    await this.cache.load(ids);
  }

  /**
   * The auth state for checking `event` during resolution: its own non-rejected auth events,
   * overlaid by the non-rejected events of `state` at each key the auth rules read (spec:
   * iterative auth checks; "rejected auth events are deliberately excluded").
   */
  authStateFor(event: RoomEvent, state: ReadonlyMap<StateKey, string>): Map<StateKey, RoomEvent> {
    const authState = new Map<StateKey, RoomEvent>();
    for (const id of event.auth_events) {
      const authEvent = this.cache.get(id);
      if (authEvent === undefined || this.cache.isRejected(id)) continue;
      const key = stateKeyOf(authEvent);
      if (key !== undefined) authState.set(key, authEvent);
    }
    for (const key of authTypesForEvent(event, this.rules)) {
      const id = state.get(key);
      if (id === undefined || this.cache.isRejected(id)) continue;
      const stateEvent = this.cache.get(id);
      if (stateEvent !== undefined) authState.set(key, stateEvent);
    }
    return authState;
  }

  /** The state-dependent auth rules for `event` against `authState`, memoised. */
  check(event: RoomEvent, authState: AuthState): AuthDecision {
    const ids: string[] = [];
    for (const authEvent of authState.values()) ids.push(authEvent.event_id);
    ids.sort();
    const memoKey = `${event.event_id}\u0000${ids.join("\u0000")}`;
    const known = this.memo.get(memoKey);
    if (known !== undefined) return known;
    const createId = this.createEventIdFor(event);
    const createEvent =
      createId === undefined || this.cache.isRejected(createId) ? undefined : this.cache.get(createId);
    const decision = checkAuthAgainstState(event, authState, this.rules, {
      createEvent,
      verifySignature: this.input.auth.verifySignature,
      isSignedBy: this.input.auth.isSignedBy,
    });
    this.memo.set(memoKey, decision);
    return decision;
  }

  /** Records an auth check in the trace (explain mode only). */
  record(
    phase: string,
    event: RoomEvent,
    decision: AuthDecision | { readonly skipped: string },
    authState?: AuthState,
  ): void {
    if (!this.explain) return;
    const key = stateKeyOf(event) ?? null;
    if ("skipped" in decision) {
      this.authChecks.push({ phase, eventId: event.event_id, key, outcome: "skipped", message: decision.skipped });
      return;
    }
    const authEvents: Record<StateKey, string> = {};
    for (const [k, e] of authState ?? []) authEvents[k] = e.event_id;
    this.authChecks.push({
      phase,
      eventId: event.event_id,
      key,
      outcome: decision.allowed ? "allowed" : "denied",
      rule: decision.rule,
      name: decision.name,
      message: decision.message,
      authEvents,
    });
  }

  /**
   * The iterative auth checks: applies each event of `ids` to `state` (a copy is returned)
   * when the auth rules allow it. Rejected events are not admitted: Synapse keeps rejected
   * events out of resolved state (its state-res `_iterative_auth_checks`, after
   * CVE-2022-39374), and letting them back in is the state-reset route of hostile-federation T45.
   */
  async iterativeAuthChecks(phase: string, ids: readonly string[], initial: ReadonlyMap<StateKey, string>): Promise<StateMap> {
    const state: StateMap = new Map(initial);
    const events: RoomEvent[] = [];
    for (const id of ids) {
      const event = this.cache.get(id);
      if (event !== undefined) events.push(event);
    }
    await this.preloadForChecks(events, state);
    for (const event of events) {
      const key = stateKeyOf(event);
      if (key === undefined) {
        this.record(phase, event, { skipped: "not a state event" });
        continue;
      }
      if (this.cache.isRejected(event.event_id)) {
        this.record(phase, event, { skipped: "the event was rejected; rejected events stay out of the state" });
        continue;
      }
      const authState = this.authStateFor(event, state);
      const decision = this.check(event, authState);
      this.record(phase, event, decision, authState);
      if (decision.allowed) state.set(key, event.event_id);
    }
    return state;
  }
}

/** A state map as a plain record (for traces). */
export function toRecord<V>(map: ReadonlyMap<StateKey, V>): Record<StateKey, V> {
  const record: Record<StateKey, V> = {};
  for (const [key, value] of map) record[key] = value;
  return record;
}
