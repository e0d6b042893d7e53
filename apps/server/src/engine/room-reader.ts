/**
 * Reading one room's events and state inside a storage transaction: stored rows parsed once
 * into PDUs and `@myelin/rooms` views, state groups, the state after an event, and state
 * resolution over the states after several events.
 *
 * @module
 */

import type { EventLookup, RoomEvent, StateKey } from "@myelin/rooms";
import { resolveState, stateKey, toRoomEvent } from "@myelin/rooms";
import { parseJson } from "@myelin/signing";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import type { StorageTx, StoredEvent } from "../storage/storage.js";

/** A state map: state key (`["type","state_key"]` as JSON) to event ID. */
export type StateMap = Map<StateKey, string>;

/** Parses a stored event's JSON text (written canonical by us or checked by federation). */
export function parseStoredPdu(json: string): JsonObject {
  const value = parseJson(json, { strict: false });
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("a stored event is not a JSON object");
  }
  return value;
}

/** The state key of a stored event, or `undefined` for a message event. */
export function storedStateKey(event: Pick<StoredEvent, "type" | "stateKey">): StateKey | undefined {
  return event.stateKey === null ? undefined : stateKey(event.type, event.stateKey);
}

/**
 * One room's events and state as seen from inside a transaction, with per-reader caches
 * (a reader lives no longer than its transaction).
 */
export class RoomReader {
  private readonly rows = new Map<string, StoredEvent | null>();
  private readonly pdus = new Map<string, JsonObject>();
  private readonly views = new Map<string, RoomEvent>();
  private readonly groups = new Map<number, StateMap>();

  constructor(
    readonly tx: StorageTx,
    readonly roomId: string,
    readonly rules: RoomVersionRules,
  ) {}

  /** Loads rows not yet cached, in one batch. */
  async load(ids: Iterable<string>): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => !this.rows.has(id));
    if (missing.length === 0) return;
    const found = await this.tx.getEvents(missing);
    for (const id of missing) {
      const row = found.get(id);
      this.rows.set(id, row !== undefined && row.roomId === this.roomId ? row : null);
    }
  }

  /** The stored row of an event of this room, or `undefined`. */
  async row(id: string): Promise<StoredEvent | undefined> {
    await this.load([id]);
    return this.rows.get(id) ?? undefined;
  }

  /** Remembers a row just written, so later reads in the transaction see it. */
  remember(row: StoredEvent, pdu?: JsonObject): void {
    this.rows.set(row.eventId, row);
    this.views.delete(row.eventId);
    if (pdu !== undefined) this.pdus.set(row.eventId, pdu);
  }

  /** The parsed PDU of an event of this room, or `undefined`. */
  async pdu(id: string): Promise<JsonObject | undefined> {
    const cached = this.pdus.get(id);
    if (cached !== undefined) return cached;
    const row = await this.row(id);
    if (row === undefined) return undefined;
    const pdu = parseStoredPdu(row.json);
    this.pdus.set(id, pdu);
    return pdu;
  }

  /** The `@myelin/rooms` view of an event of this room, or `undefined`. */
  async event(id: string): Promise<RoomEvent | undefined> {
    const cached = this.views.get(id);
    if (cached !== undefined) return cached;
    const pdu = await this.pdu(id);
    if (pdu === undefined) return undefined;
    const view = toRoomEvent(pdu, { rules: this.rules, eventId: id });
    this.views.set(id, view);
    return view;
  }

  /** The views of the known events among `ids`. */
  async events(ids: Iterable<string>): Promise<Map<string, RoomEvent>> {
    const list = [...ids];
    await this.load(list);
    const found = new Map<string, RoomEvent>();
    for (const id of list) {
      const view = await this.event(id);
      if (view !== undefined) found.set(id, view);
    }
    return found;
  }

  /** Whether a stored event was rejected. */
  isRejected(id: string): boolean {
    const row = this.rows.get(id);
    return row !== undefined && row !== null && row.rejectedReason !== null;
  }

  /** An {@link EventLookup} over this reader, for resolution and auth-chain walks. */
  lookup(): EventLookup {
    return {
      getEvent: (id) => this.event(id),
      getEvents: (ids) => this.events(ids),
      isRejected: async (id) => {
        await this.load([id]);
        return this.isRejected(id);
      },
    };
  }

  /** The full state of a state group (a copy the caller may change). */
  async stateGroup(groupId: number): Promise<StateMap> {
    let group = this.groups.get(groupId);
    if (group === undefined) {
      group = await this.tx.getStateGroup(groupId);
      this.groups.set(groupId, group);
    }
    return new Map(group);
  }

  /** The room's current state; empty when none is recorded. */
  async currentState(): Promise<{ groupId: number | undefined; state: StateMap }> {
    const groupId = await this.tx.getCurrentStateGroup(this.roomId);
    return { groupId, state: groupId === undefined ? new Map() : await this.stateGroup(groupId) };
  }

  /**
   * The state after an event: the state before it, plus the event itself if it is a state
   * event that was not rejected (rejected events never change state). `undefined` when the
   * state before it is not known (an outlier, or not stored).
   */
  async stateAfter(id: string): Promise<StateMap | undefined> {
    const row = await this.row(id);
    if (row === undefined || row.stateGroupBefore === null) return undefined;
    const state = await this.stateGroup(row.stateGroupBefore);
    const key = storedStateKey(row);
    if (key !== undefined && row.rejectedReason === null) state.set(key, row.eventId);
    return state;
  }

  /**
   * Resolves state sets with the room version's algorithm (one set is returned as it is,
   * identical sets are resolved once).
   */
  async resolve(stateSets: readonly StateMap[]): Promise<StateMap> {
    const distinct: StateMap[] = [];
    for (const set of stateSets) if (!distinct.some((other) => sameState(other, set))) distinct.push(set);
    if (distinct.length === 0) return new Map();
    if (distinct.length === 1) return new Map(distinct[0]);
    const { state } = await resolveState({ rules: this.rules, stateSets: distinct, lookup: this.lookup(), roomId: this.roomId });
    return state;
  }

  /**
   * Records `state` as a state group, as a delta over `baseGroup` when given (or the full
   * state), and returns its ID. Reuses `baseGroup` when nothing differs.
   */
  async saveState(state: ReadonlyMap<StateKey, string>, baseGroup: number | undefined): Promise<number> {
    if (baseGroup === undefined) return this.tx.createStateGroup(this.roomId, null, state);
    const base = await this.stateGroup(baseGroup);
    const delta = new Map<StateKey, string | null>();
    for (const [key, id] of state) if (base.get(key) !== id) delta.set(key, id);
    for (const key of base.keys()) if (!state.has(key)) delta.set(key, null);
    if (delta.size === 0) return baseGroup;
    const groupId = await this.tx.createStateGroup(this.roomId, baseGroup, delta);
    this.groups.set(groupId, new Map(state));
    return groupId;
  }

  /** The views of the state events a state map names, keyed like the map (unknown ones left out). */
  async stateEvents(state: ReadonlyMap<StateKey, string>, keys?: Iterable<StateKey>): Promise<Map<StateKey, RoomEvent>> {
    const wanted = keys === undefined ? [...state.keys()] : [...keys];
    const ids = wanted.map((key) => state.get(key)).filter((id): id is string => id !== undefined);
    await this.load(ids);
    const events = new Map<StateKey, RoomEvent>();
    for (const key of wanted) {
      const id = state.get(key);
      if (id === undefined) continue;
      const view = await this.event(id);
      if (view !== undefined) events.set(key, view);
    }
    return events;
  }
}

/** Whether two state maps hold the same entries. */
export function sameState(a: ReadonlyMap<StateKey, string>, b: ReadonlyMap<StateKey, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, id] of a) if (b.get(key) !== id) return false;
  return true;
}
