/**
 * Test and bench support: deterministic generated rooms with a chosen number of state events
 * and share of conflicted keys.
 *
 * A base room (create, Alice as admin, Bob as moderator, public join rule) grows in one line
 * of history until its state holds `stateEvents` entries: user joins and custom state. Then
 * `branches` forks each rewrite the same `conflictRatio` share of the keys: members change
 * their display names (now and then Bob kicks one instead), Alice rewrites custom state, and
 * each branch starts with a power-levels change by Alice. Every event cites the auth events
 * its branch's state selects, so the rooms are what servers would really exchange.
 *
 * @module
 */

import type { RoomVersionRules } from "@myelin/types";
import { selectAuthEvents } from "../auth-events.js";
import { type RoomEvent, type StateKey, stateKey } from "../events.js";
import type { StateMap } from "../state-res-types.js";
import { ALICE, BOB } from "./builders.js";

/** Options for {@link generateRoom}. */
export interface GenerateRoomOptions {
  readonly rules: RoomVersionRules;
  /** State entries in the base room (at least 6). */
  readonly stateEvents: number;
  /** Share of the state keys every branch rewrites (0..1). */
  readonly conflictRatio: number;
  /** Number of forks, each giving one state set. Default 2. */
  readonly branches?: number;
  /** Seed for the pseudo-random choices. Default 1. */
  readonly seed?: number;
  /** Chance that a member key is rewritten by a kick rather than a profile change. Default 0.05. */
  readonly kickRatio?: number;
}

/** A generated room: its events and the states at the branch tips. */
export interface GeneratedRoom {
  readonly events: RoomEvent[];
  readonly stateSets: StateMap[];
  /** Keys rewritten on every branch. */
  readonly conflictedKeys: StateKey[];
}

/** mulberry32: a small deterministic PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateRoom(options: GenerateRoomOptions): GeneratedRoom {
  const { rules, stateEvents, conflictRatio } = options;
  const branches = options.branches ?? 2;
  const random = prng(options.seed ?? 1);
  const kickRatio = options.kickRatio ?? 0.05;
  const v12 = rules.auth.privilegedCreators;
  const legacyIds = rules.eventFormat === "v1";
  const createId = legacyIds ? "$gen-create:example.com" : "$gen-create";
  const roomId = v12 ? "!gen-create" : "!gen:example.com";
  const events: RoomEvent[] = [];
  let counter = 0;
  let ts = 0;

  const emit = (
    state: StateMap,
    fields: { type: string; sender: string; state_key: string; content: RoomEvent["content"] },
    prev: string | undefined,
    depth: number,
  ): RoomEvent => {
    const isCreate = fields.type === "m.room.create";
    const eventId = isCreate ? createId : legacyIds ? `$gen-${++counter}:example.com` : `$gen-${++counter}`;
    const event: RoomEvent = {
      event_id: eventId,
      ...(isCreate && v12 ? {} : { room_id: roomId }),
      ...fields,
      origin_server_ts: ts++,
      depth,
      prev_events: prev === undefined ? [] : [prev],
      auth_events: isCreate ? [] : selectAuthEvents(fields, state, rules),
    };
    events.push(event);
    state.set(stateKey(fields.type, fields.state_key), eventId);
    return event;
  };
  const users = (others: Record<string, number>) => (v12 ? others : { [ALICE]: 100, ...others });

  const base: StateMap = new Map();
  let depth = 1;
  let last = emit(
    base,
    {
      type: "m.room.create",
      sender: ALICE,
      state_key: "",
      content: rules.auth.implicitRoomCreator ? { room_version: rules.id } : { creator: ALICE, room_version: rules.id },
    },
    undefined,
    depth++,
  );
  const step = (fields: Parameters<typeof emit>[1]) => {
    last = emit(base, fields, last.event_id, depth++);
  };
  step({ type: "m.room.member", sender: ALICE, state_key: ALICE, content: { membership: "join" } });
  step({ type: "m.room.power_levels", sender: ALICE, state_key: "", content: { users: users({ [BOB]: 50 }) } });
  step({ type: "m.room.join_rules", sender: ALICE, state_key: "", content: { join_rule: "public" } });
  step({ type: "m.room.member", sender: BOB, state_key: BOB, content: { membership: "join" } });
  const memberKeys: string[] = [];
  const customKeys: string[] = [];
  for (let i = 0; base.size < stateEvents; i++) {
    if (i % 3 === 2) {
      const key = `k${i}`;
      step({ type: "org.example.setting", sender: ALICE, state_key: key, content: { value: i } });
      customKeys.push(key);
    } else {
      const user = `@u${i}:example.com`;
      step({ type: "m.room.member", sender: user, state_key: user, content: { membership: "join" } });
      memberKeys.push(user);
    }
  }

  // The keys every branch rewrites, chosen without repetition.
  const pool = [...memberKeys.map((u) => ["m", u] as const), ...customKeys.map((k) => ["c", k] as const)];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j] as (typeof pool)[number], pool[i] as (typeof pool)[number]];
  }
  const chosen = pool.slice(0, Math.round(conflictRatio * stateEvents));
  const kicks = new Set(chosen.filter(([kind]) => kind === "m" && random() < kickRatio).map(([, key]) => key));

  const stateSets: StateMap[] = [];
  const baseEvent = last;
  const baseTs = ts;
  for (let b = 0; b < branches; b++) {
    const state = new Map(base);
    let tip = baseEvent;
    let branchDepth = depth;
    // Interleave the branches' timestamps, as concurrent traffic would.
    ts = baseTs + b;
    const next = (fields: Parameters<typeof emit>[1]) => {
      tip = emit(state, fields, tip.event_id, branchDepth++);
      ts += branches - 1;
    };
    next({ type: "m.room.power_levels", sender: ALICE, state_key: "", content: { users: users({ [BOB]: 50 }), ban: 50 + b } });
    for (const [kind, key] of chosen) {
      if (kind === "c") {
        next({ type: "org.example.setting", sender: ALICE, state_key: key, content: { value: `branch ${b}` } });
      } else if (kicks.has(key) && b === 0) {
        next({ type: "m.room.member", sender: BOB, state_key: key, content: { membership: "leave" } });
      } else {
        next({ type: "m.room.member", sender: key, state_key: key, content: { membership: "join", displayname: `${key} @${b}` } });
      }
    }
    stateSets.push(state);
  }
  return {
    events,
    stateSets,
    conflictedKeys: chosen.map(([kind, key]) => (kind === "c" ? stateKey("org.example.setting", key) : stateKey("m.room.member", key))),
  };
}
