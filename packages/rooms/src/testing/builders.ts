/**
 * Test support (not part of the public API): building events, rooms and room graphs.
 *
 * `RoomGraph` computes the state at every event the way a server does: the state before an
 * event is the resolution of the states after its `prev_events`, and its `auth_events` are
 * selected from that state. Fixtures then only describe events and edges.
 *
 * @module
 */

import { getRoomVersion, type JsonObject, type RoomVersionRules } from "@myelin/types";
import { selectAuthEvents } from "../auth-events.js";
import { type RoomEvent, type StateKey, stateKey } from "../events.js";
import { createMemoryLookup, type EventLookup } from "../lookup.js";
import { resolveState } from "../resolve.js";
import type { StateMap } from "../state-res-types.js";

export const ALICE = "@alice:example.com";
export const BOB = "@bob:example.com";
export const CHARLIE = "@charlie:example.com";
export const ZARA = "@zara:example.com";
export const EVELYN = "@evelyn:example.com";
export const REMOTE = "@remote:elsewhere.test";

/** Fields of a {@link RoomEvent} with defaults for the ones a test does not care about. */
export type EventFields = Partial<RoomEvent> & Pick<RoomEvent, "event_id" | "type" | "sender">;

/** A {@link RoomEvent} with defaults (empty content, no prev/auth events, ts 0, depth 1). */
export function makeEvent(fields: EventFields): RoomEvent {
  return {
    content: {},
    origin_server_ts: 0,
    depth: 1,
    prev_events: [],
    auth_events: [],
    ...fields,
  };
}

/** Power-levels `users` content: Alice at 100 unless creators are implicit (room 12). */
export function users(rules: RoomVersionRules, others: JsonObject = {}): JsonObject {
  return rules.auth.privilegedCreators ? { ...others } : { [ALICE]: 100, ...others };
}

/** Create-event content for a room version (`creator` where the version requires it). */
export function createContent(rules: RoomVersionRules, extra: JsonObject = {}): JsonObject {
  return rules.auth.implicitRoomCreator
    ? { room_version: rules.id, ...extra }
    : { creator: ALICE, room_version: rules.id, ...extra };
}

/**
 * A room for auth-rule tests: its create event and helpers to build events in it and state
 * maps to check them against.
 */
export class TestRoom {
  readonly rules: RoomVersionRules;
  readonly create: RoomEvent;
  readonly roomId: string;
  private counter = 0;

  constructor(version: string, createExtra: JsonObject = {}, creator = ALICE) {
    this.rules = getRoomVersion(version);
    const v12 = this.rules.auth.privilegedCreators;
    const createId = v12 ? "$create-event-hash" : "$create:example.com";
    this.roomId = v12 ? "!create-event-hash" : "!room:example.com";
    this.create = makeEvent({
      event_id: createId,
      type: "m.room.create",
      sender: creator,
      state_key: "",
      content: this.rules.auth.implicitRoomCreator
        ? { room_version: version, ...createExtra }
        : { creator, room_version: version, ...createExtra },
      ...(v12 ? {} : { room_id: this.roomId }),
    });
  }

  /** A new event in this room (ID generated unless given). */
  event(fields: Omit<EventFields, "event_id"> & { event_id?: string }): RoomEvent {
    this.counter++;
    const eventId = fields.event_id ?? (this.rules.eventFormat === "v1" ? `$e${this.counter}:example.com` : `$e${this.counter}`);
    return makeEvent({ room_id: this.roomId, origin_server_ts: this.counter, depth: this.counter + 1, ...fields, event_id: eventId });
  }

  member(user: string, membership: string, sender = user, content: JsonObject = {}): RoomEvent {
    return this.event({ type: "m.room.member", sender, state_key: user, content: { membership, ...content } });
  }

  powerLevels(content: JsonObject, sender = ALICE): RoomEvent {
    return this.event({ type: "m.room.power_levels", sender, state_key: "", content });
  }

  joinRules(joinRule: string, sender = ALICE, extra: JsonObject = {}): RoomEvent {
    return this.event({ type: "m.room.join_rules", sender, state_key: "", content: { join_rule: joinRule, ...extra } });
  }

  /** A state map of the create event (unless room 12, where it is passed separately) and `events`. */
  state(...events: RoomEvent[]): Map<StateKey, RoomEvent> {
    const map = new Map<StateKey, RoomEvent>();
    if (!this.rules.auth.privilegedCreators) map.set(stateKey("m.room.create", ""), this.create);
    for (const event of events) map.set(stateKey(event.type, event.state_key ?? ""), event);
    return map;
  }

  /** The usual starting state: Alice joined with power 100 (creator), join rule, members joined. */
  basicState(joinRule = "public", plContent: JsonObject = {}, ...joined: string[]): Map<StateKey, RoomEvent> {
    const events = [
      this.member(ALICE, "join"),
      this.powerLevels({ users: users(this.rules, { [BOB]: 50 }), ...plContent }),
      this.joinRules(joinRule),
      ...joined.map((user) => this.member(user, "join")),
    ];
    return this.state(...events);
  }
}

/** One node of a {@link RoomGraph}. */
export interface GraphNode {
  readonly id: string;
  readonly type: string;
  readonly sender: string;
  readonly stateKey?: string;
  readonly content?: JsonObject;
  /** Defaults to the order nodes are added in. */
  readonly ts?: number;
}

/** A room as a DAG of events, with the state after every event computed by resolution. */
export class RoomGraph {
  readonly rules: RoomVersionRules;
  readonly events = new Map<string, RoomEvent>();
  readonly stateAfter = new Map<string, StateMap>();
  readonly roomId: string;
  private readonly byNode = new Map<string, RoomEvent>();
  private ts = 0;

  constructor(rules: RoomVersionRules | string, readonly rejected = new Set<string>()) {
    this.rules = typeof rules === "string" ? getRoomVersion(rules) : rules;
    this.roomId = this.rules.auth.privilegedCreators ? "!CREATE" : "!room:example.com";
  }

  /** The event ID a node name maps to in this room version's style. */
  eventId(node: string): string {
    return this.rules.eventFormat === "v1" ? `$${node}:example.com` : `$${node}`;
  }

  node(node: string): RoomEvent {
    const event = this.byNode.get(node);
    if (event === undefined) throw new Error(`unknown node ${node}`);
    return event;
  }

  lookup(): EventLookup {
    return createMemoryLookup(this.events.values(), { rejected: this.rejected });
  }

  /** Adds an event after `prev` (node names), selecting its auth events from the state before it. */
  async add(node: GraphNode, prev: readonly string[]): Promise<RoomEvent> {
    const prevEvents = prev.map((p) => this.node(p));
    const stateBefore =
      prevEvents.length === 0
        ? new Map<StateKey, string>()
        : prevEvents.length === 1
          ? new Map(this.stateAfter.get((prevEvents[0] as RoomEvent).event_id))
          : (
              await resolveState({
                rules: this.rules,
                stateSets: prevEvents.map((e) => this.stateAfter.get(e.event_id) as StateMap),
                lookup: this.lookup(),
              })
            ).state;
    const content = node.content ?? {};
    const fields = { type: node.type, sender: node.sender, state_key: node.stateKey, content };
    const authEvents = node.type === "m.room.create" ? [] : selectAuthEvents(fields, stateBefore, this.rules);
    this.ts++;
    const isCreate = node.type === "m.room.create";
    const event: RoomEvent = {
      event_id: this.eventId(node.id),
      ...(isCreate && this.rules.auth.privilegedCreators ? {} : { room_id: this.roomId }),
      type: node.type,
      ...(node.stateKey === undefined ? {} : { state_key: node.stateKey }),
      sender: node.sender,
      content,
      origin_server_ts: node.ts ?? this.ts,
      depth: Math.max(0, ...prevEvents.map((e) => e.depth)) + 1,
      prev_events: prevEvents.map((e) => e.event_id),
      auth_events: authEvents,
    };
    this.events.set(event.event_id, event);
    this.byNode.set(node.id, event);
    const stateAfter = new Map(stateBefore);
    if (node.stateKey !== undefined) stateAfter.set(stateKey(node.type, node.stateKey), event.event_id);
    this.stateAfter.set(event.event_id, stateAfter);
    return event;
  }

  /**
   * Adds `nodes` given edges as chains from the newest event back (`["END", "B", "A"]` means
   * END follows B, which follows A), in a topological order that breaks ties by node name.
   */
  async build(nodes: readonly GraphNode[], chains: readonly (readonly string[])[]): Promise<void> {
    const prev = new Map<string, Set<string>>();
    const spec = new Map<string, GraphNode>();
    for (const node of nodes) {
      spec.set(node.id, node);
      prev.set(node.id, new Set());
    }
    for (const chain of chains) {
      for (let i = 0; i + 1 < chain.length; i++) {
        const [later, earlier] = [chain[i] as string, chain[i + 1] as string];
        if (!spec.has(later) && !this.byNode.has(later)) throw new Error(`unknown node ${later}`);
        prev.get(later)?.add(earlier);
      }
    }
    const pending = new Set(nodes.map((n) => n.id));
    while (pending.size > 0) {
      const ready = [...pending]
        .filter((id) => [...(prev.get(id) ?? [])].every((p) => !pending.has(p)))
        .sort();
      const next = ready[0];
      if (next === undefined) throw new Error("the graph has a cycle");
      pending.delete(next);
      await this.add(spec.get(next) as GraphNode, [...(prev.get(next) ?? [])].sort());
    }
  }

  /** The state after a node, keyed by state key, valued by node name (for readable assertions). */
  stateOf(node: string): Map<StateKey, string> {
    return this.named(this.stateAfter.get(this.node(node).event_id) as StateMap);
  }

  /** Replaces event IDs by node names in a state map. */
  named(state: ReadonlyMap<StateKey, string>): Map<StateKey, string> {
    const names = new Map<string, string>();
    for (const [name, event] of this.byNode) names.set(event.event_id, name);
    const result = new Map<StateKey, string>();
    for (const [key, id] of state) result.set(key, names.get(id) ?? id);
    return result;
  }
}
