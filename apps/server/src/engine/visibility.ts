/**
 * History visibility: whether a user or a server may see an event, from the room state at
 * that event.
 *
 * Spec: client-server "Room History Visibility", "Server behaviour": the state *at the event*
 * decides (`world_readable`, the user's membership, `shared`, `invited`); for
 * `m.room.history_visibility` events and the user's own member events, the state before *or*
 * after the event may allow it. Unknown or absent values count as `shared`.
 *
 * For servers (federation `/event`, `/backfill`, `/get_missing_events`, `/state`) the spec
 * gives no separate text; we follow Synapse's `filter_events_for_server`: `world_readable` and
 * `shared` events are visible to any server, `invited` ones to a server with a member invited
 * or joined at the event, `joined` ones to a server with a member joined at the event.
 *
 * @module
 */

import { stateKey } from "@myelin/rooms";
import type { StoredEvent } from "../storage/storage.js";
import type { RoomReader, StateMap } from "./room-reader.js";
import { storedStateKey } from "./room-reader.js";

/** The `history_visibility` values. */
export type HistoryVisibility = "world_readable" | "shared" | "invited" | "joined";

const HISTORY_KEY = stateKey("m.room.history_visibility", "");

/** The history visibility a state map sets (`shared` when absent or not understood). */
export async function historyVisibilityIn(reader: RoomReader, state: StateMap): Promise<HistoryVisibility> {
  const id = state.get(HISTORY_KEY);
  if (id === undefined) return "shared";
  const value = (await reader.event(id))?.content["history_visibility"];
  return value === "world_readable" || value === "invited" || value === "joined" ? value : "shared";
}

/** A user's membership in a state map, or `undefined`. */
export async function membershipIn(reader: RoomReader, state: StateMap, userId: string): Promise<string | undefined> {
  const id = state.get(stateKey("m.room.member", userId));
  if (id === undefined) return undefined;
  const value = (await reader.event(id))?.content["membership"];
  return typeof value === "string" ? value : undefined;
}

/** The states the rule reads for `event`: before it and, when it changes state, after it. */
async function statesAt(reader: RoomReader, event: StoredEvent): Promise<{ before: StateMap; after: StateMap } | undefined> {
  if (event.stateGroupBefore === null) return undefined;
  const before = await reader.stateGroup(event.stateGroupBefore);
  const after = new Map(before);
  const key = storedStateKey(event);
  if (key !== undefined && event.rejectedReason === null) after.set(key, event.eventId);
  return { before, after };
}

/**
 * Whether `userId` may see `event` (client-server "Room History Visibility", server
 * behaviour rules 1-5). `shared` asks whether the user "joined the room at any point after
 * the event was sent": we answer it from the user's current membership (joined now, or left
 * or banned by an event later than `event` while joined just before it), which covers every
 * case but a user who joined and left more than once.
 *
 * Events whose state is unknown (outliers) are not visible.
 */
export async function canUserSeeEvent(reader: RoomReader, userId: string, event: StoredEvent): Promise<boolean> {
  const states = await statesAt(reader, event);
  if (states === undefined) return false;
  const decide = async (state: StateMap): Promise<boolean> => {
    const visibility = await historyVisibilityIn(reader, state);
    if (visibility === "world_readable") return true;
    const membership = await membershipIn(reader, state, userId);
    if (membership === "join") return true;
    if (visibility === "shared" && (await joinedAfter(reader, userId, event))) return true;
    return membership === "invite" && visibility === "invited";
  };
  if (await decide(states.before)) return true;
  const ownMember = event.type === "m.room.member" && event.stateKey === userId;
  if (ownMember || event.type === "m.room.history_visibility") return decide(states.after);
  return false;
}

/** Whether the user was joined at some point after `event` (see {@link canUserSeeEvent}). */
async function joinedAfter(reader: RoomReader, userId: string, event: StoredEvent): Promise<boolean> {
  const { state } = await reader.currentState();
  const memberId = state.get(stateKey("m.room.member", userId));
  if (memberId === undefined) return false;
  const member = await reader.row(memberId);
  const view = await reader.event(memberId);
  if (member === undefined || view === undefined) return false;
  const membership = view.content["membership"];
  if (membership === "join") return true;
  if (membership !== "leave" && membership !== "ban") return false;
  // Left after the event: were they joined just before leaving?
  if (member.streamOrdering === null || event.streamOrdering === null || member.streamOrdering <= event.streamOrdering) return false;
  if (member.stateGroupBefore === null) return false;
  const before = await reader.stateGroup(member.stateGroupBefore);
  return (await membershipIn(reader, before, userId)) === "join";
}

/**
 * Whether `serverName` may see `event`: `world_readable` and `shared` always; `invited` when
 * one of its users was invited or joined at the event; `joined` when one was joined
 * (Synapse's `filter_events_for_server`). Before or after for history-visibility events.
 */
export async function canServerSeeEvent(reader: RoomReader, serverName: string, event: StoredEvent): Promise<boolean> {
  const states = await statesAt(reader, event);
  if (states === undefined) return false;
  const decide = async (state: StateMap): Promise<boolean> => {
    const visibility = await historyVisibilityIn(reader, state);
    if (visibility === "world_readable" || visibility === "shared") return true;
    const allowed = visibility === "invited" ? ["invite", "join"] : ["join"];
    for (const membership of await serverMemberships(reader, state, serverName)) if (allowed.includes(membership)) return true;
    return false;
  };
  if (await decide(states.before)) return true;
  if (event.type === "m.room.history_visibility") return decide(states.after);
  if (event.type === "m.room.member" && event.stateKey !== null && serverOf(event.stateKey) === serverName) return decide(states.after);
  return false;
}

/** The memberships of `serverName`'s users in a state map. */
async function serverMemberships(reader: RoomReader, state: StateMap, serverName: string): Promise<string[]> {
  const memberships: string[] = [];
  const ids: string[] = [];
  for (const [key, id] of state) {
    if (!key.startsWith('["m.room.member",')) continue;
    const userId = (JSON.parse(key) as [string, string])[1];
    if (serverOf(userId) === serverName) ids.push(id);
  }
  for (const view of (await reader.events(ids)).values()) {
    const membership = view.content["membership"];
    if (typeof membership === "string") memberships.push(membership);
  }
  return memberships;
}

/** The server name of a user ID (after the first colon). */
export function serverOf(userId: string): string {
  return userId.slice(userId.indexOf(":") + 1);
}
