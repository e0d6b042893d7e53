/**
 * The read endpoints other servers pull events with: `event`, `state`, `state_ids`,
 * `event_auth`, `backfill`, `get_missing_events` and `timestamp_to_event` (server-server API
 * § "Retrieving events", § "Backfilling and retrieving missing events").
 *
 * Who may read what (hostile-federation T57, CVE-2022-39335, Synapse 0.33.1):
 * - room-scoped endpoints need a server with a joined member in the room's current state
 *   (Synapse's `assert_host_in_room`); the events named must belong to the path's room;
 * - an event is served when the server could see it (history visibility at the event,
 *   `canServerSeeEvent`); `/event` also serves a `world_readable` event to servers not in
 *   the room. Otherwise 403 `M_FORBIDDEN`.
 * - `backfill` and `get_missing_events` return the events the server may not see in
 *   redacted form rather than leaving holes in the DAG (Synapse's `filter_events_for_server`
 *   with `redact=True`).
 * - Limits are clamped: backfill to 100, get_missing_events to 20 (T58).
 * - Rejected events are never served; soft-failed ones are, when asked for or referenced.
 *
 * Server ACLs are applied by the router (`checkServerAcl`) on the endpoints the spec lists.
 *
 * @module
 */

import type { FederationHandlers } from "@myelin/server";
import { redactEvent } from "@myelin/signing";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { MatrixError, findRoomVersion } from "@myelin/types";
import { RoomReader } from "../engine/room-reader.js";
import { canServerSeeEvent, historyVisibilityIn } from "../engine/visibility.js";
import type { Storage, StorageTx, StoredEvent } from "../storage/storage.js";
import { currentJoinedServers, parsePdu } from "./room-state.js";

/** Options of {@link createServingHandlers}. */
export interface ServingOptions {
  readonly storage: Storage;
  readonly serverName: string;
  readonly now: () => number;
}

/** Largest backfill page served (Synapse clamps to 100). */
export const MAX_BACKFILL = 100;
/** Largest get_missing_events answer served (Synapse clamps to 20). */
export const MAX_MISSING_EVENTS = 20;

type Handlers = Pick<
  FederationHandlers,
  | "get_event"
  | "get_room_state"
  | "get_room_state_ids"
  | "get_event_authorization"
  | "get_backfill"
  | "get_missing_events"
  | "get_event_by_timestamp"
>;

function forbidden(message = "Server is not in the room"): MatrixError {
  return new MatrixError("M_FORBIDDEN", message);
}

function notFound(message: string): MatrixError {
  return new MatrixError("M_NOT_FOUND", message);
}

async function roomRules(tx: StorageTx, roomId: string): Promise<RoomVersionRules> {
  const room = await tx.getRoom(roomId);
  const rules = room === undefined ? undefined : findRoomVersion(room.roomVersion);
  if (rules === undefined) throw notFound(`Unknown room ${roomId}`);
  return rules;
}

/** Throws 403 unless `origin` has a joined member in the room now. */
async function assertInRoom(tx: StorageTx, roomId: string, origin: string): Promise<void> {
  if (!(await currentJoinedServers(tx, roomId)).includes(origin)) throw forbidden();
}

/** A stored event of `roomId` that is not rejected, or 404. */
async function roomEvent(tx: StorageTx, roomId: string, eventId: string): Promise<StoredEvent> {
  const event = await tx.getEvent(eventId);
  if (event === undefined || event.roomId !== roomId || event.rejectedReason !== null) {
    throw notFound(`Event ${eventId} is not known in room ${roomId}`);
  }
  return event;
}

/** The PDUs of stored events, in the given order (unknown IDs left out). */
async function pdusOf(tx: StorageTx, ids: Iterable<string>): Promise<JsonObject[]> {
  const list = [...ids];
  const rows = await tx.getEvents(list);
  const out: JsonObject[] = [];
  for (const id of list) {
    const row = rows.get(id);
    if (row !== undefined && row.rejectedReason === null) out.push(parsePdu(row.json));
  }
  return out;
}

/** The state before an event (state key -> event ID), or 404 for an event without known state. */
async function stateBefore(reader: RoomReader, event: StoredEvent): Promise<Map<string, string>> {
  if (event.stateGroupBefore === null) throw notFound(`No state is known at ${event.eventId}`);
  return reader.stateGroup(event.stateGroupBefore);
}

/** `events` as a server may receive them: visible ones whole, the others redacted. */
async function filterForServer(reader: RoomReader, origin: string, events: readonly StoredEvent[]): Promise<JsonObject[]> {
  const out: JsonObject[] = [];
  for (const event of events) {
    const pdu = parsePdu(event.json);
    out.push((await canServerSeeEvent(reader, origin, event)) ? pdu : redactEvent(pdu, reader.rules));
  }
  return out;
}

/** Builds the handlers of the read endpoints. */
export function createServingHandlers(options: ServingOptions): Handlers {
  const { storage, serverName } = options;
  const envelope = (pdus: JsonObject[]) => ({ origin: serverName, origin_server_ts: options.now(), pdus });

  return {
    get_event: {
      v1: async ({ origin, params }) =>
        storage.transaction(async (tx) => {
          const event = await tx.getEvent(params.eventId);
          if (event === undefined || event.rejectedReason !== null) throw notFound(`Unknown event ${params.eventId}`);
          const rules = await roomRules(tx, event.roomId);
          const reader = new RoomReader(tx, event.roomId, rules);
          const inRoom = (await currentJoinedServers(tx, event.roomId)).includes(origin);
          let allowed: boolean;
          if (event.stateGroupBefore === null) {
            // An outlier (an auth or state event learnt at a join): no state to judge it by.
            allowed = inRoom;
          } else if (inRoom) {
            allowed = await canServerSeeEvent(reader, origin, event);
          } else {
            allowed = (await historyVisibilityIn(reader, await reader.stateGroup(event.stateGroupBefore))) === "world_readable";
          }
          if (!allowed) throw forbidden("Server may not see this event");
          return envelope([parsePdu(event.json)]);
        }),
    },

    get_room_state: {
      v1: async ({ origin, params, query }) =>
        storage.transaction(async (tx) => {
          const { state, chain } = await stateAndChain(tx, params.roomId, query.event_id, origin);
          return { pdus: await pdusOf(tx, state.values()), auth_chain: await pdusOf(tx, chain) };
        }),
    },

    get_room_state_ids: {
      v1: async ({ origin, params, query }) =>
        storage.transaction(async (tx) => {
          const { state, chain } = await stateAndChain(tx, params.roomId, query.event_id, origin);
          const rows = await tx.getEvents(chain);
          const known = [...chain].filter((id) => rows.get(id)?.rejectedReason === null);
          return { pdu_ids: [...state.values()], auth_chain_ids: known };
        }),
    },

    get_event_authorization: {
      v1: async ({ origin, params }) =>
        storage.transaction(async (tx) => {
          await roomRules(tx, params.roomId);
          await assertInRoom(tx, params.roomId, origin);
          const event = await roomEvent(tx, params.roomId, params.eventId);
          // Exactly the auth chain: the event itself only if it is its own ancestor (never).
          const chain = await tx.getAuthChainIds([event.eventId]);
          chain.delete(event.eventId);
          return { auth_chain: await pdusOf(tx, chain) };
        }),
    },

    get_backfill: {
      v1: async ({ origin, params, query }) =>
        storage.transaction(async (tx) => {
          const rules = await roomRules(tx, params.roomId);
          await assertInRoom(tx, params.roomId, origin);
          const starts = Array.isArray(query.v) ? (query.v as string[]) : [query.v as unknown as string];
          const limit = Math.min(Number(query.limit), MAX_BACKFILL);
          const reader = new RoomReader(tx, params.roomId, rules);
          const found = await walkBack(tx, params.roomId, starts, { limit, includeStarts: true, stopAt: new Set(), minDepth: 0 });
          return envelope(await filterForServer(reader, origin, found));
        }),
    },

    get_missing_events: {
      v1: async ({ origin, params, body }) =>
        storage.transaction(async (tx) => {
          const rules = await roomRules(tx, params.roomId);
          await assertInRoom(tx, params.roomId, origin);
          const limit = Math.max(0, Math.min(body.limit ?? 10, MAX_MISSING_EVENTS));
          const reader = new RoomReader(tx, params.roomId, rules);
          const found = await walkBack(tx, params.roomId, body.latest_events, {
            limit,
            includeStarts: false,
            stopAt: new Set(body.earliest_events),
            minDepth: body.min_depth ?? 0,
          });
          // Oldest first: the order the requester persists them in.
          found.sort((a, b) => a.depth - b.depth || (a.streamOrdering ?? 0) - (b.streamOrdering ?? 0));
          return { events: await filterForServer(reader, origin, found) };
        }),
    },

    get_event_by_timestamp: {
      v1: async ({ origin, params, query }) =>
        storage.transaction(async (tx) => {
          await roomRules(tx, params.roomId);
          await assertInRoom(tx, params.roomId, origin);
          const eventId = await tx.getEventIdNearTs(params.roomId, Number(query.ts), query.dir === "b" ? "b" : "f");
          if (eventId === undefined) throw notFound("No event found near that time");
          const event = await tx.getEvent(eventId);
          if (event === undefined) throw notFound("No event found near that time");
          return { event_id: eventId, origin_server_ts: event.originServerTs };
        }),
    },
  };

  async function stateAndChain(
    tx: StorageTx,
    roomId: string,
    eventId: string,
    origin: string,
  ): Promise<{ state: Map<string, string>; chain: Set<string> }> {
    const rules = await roomRules(tx, roomId);
    await assertInRoom(tx, roomId, origin);
    const event = await roomEvent(tx, roomId, eventId);
    const reader = new RoomReader(tx, roomId, rules);
    if (event.stateGroupBefore !== null && !(await canServerSeeEvent(reader, origin, event))) {
      throw forbidden("Server may not see this event");
    }
    const state = await stateBefore(reader, event);
    const chain = await tx.getAuthChainIds(state.values());
    for (const id of state.values()) chain.delete(id);
    return { state, chain };
  }
}

interface WalkOptions {
  readonly limit: number;
  /** Whether the start events themselves are returned (backfill) or only their ancestors (GME). */
  readonly includeStarts: boolean;
  /** Events the walk stops at without returning them (GME's `earliest_events`). */
  readonly stopAt: ReadonlySet<string>;
  /** Events shallower than this are not returned or walked past (GME's `min_depth`). */
  readonly minDepth: number;
}

/**
 * Walks `prev_events` backwards from `starts`, deepest first, returning at most `limit`
 * events of the room that are not rejected. Start events of another room are ignored (T57).
 */
async function walkBack(tx: StorageTx, roomId: string, starts: readonly string[], options: WalkOptions): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  const seen = new Set<string>(options.stopAt);
  const frontier: StoredEvent[] = [];
  const push = async (ids: Iterable<string>): Promise<void> => {
    const fresh = [...ids].filter((id) => !seen.has(id));
    for (const id of fresh) seen.add(id);
    const rows = await tx.getEvents(fresh);
    for (const id of fresh) {
      const row = rows.get(id);
      if (row === undefined || row.roomId !== roomId || row.rejectedReason !== null || row.depth < options.minDepth) continue;
      frontier.push(row);
    }
  };
  const startRows = await tx.getEvents(starts.filter((id) => !options.stopAt.has(id)));
  const valid = [...startRows.values()].filter((row) => row.roomId === roomId && row.rejectedReason === null);
  for (const row of valid) seen.add(row.eventId);
  if (options.includeStarts) frontier.push(...valid);
  else for (const row of valid) await push(row.prevEvents);
  while (frontier.length > 0 && out.length < options.limit) {
    // Deepest first, like Synapse's depth-ordered queue.
    frontier.sort((a, b) => a.depth - b.depth);
    const next = frontier.pop() as StoredEvent;
    out.push(next);
    await push(next.prevEvents);
  }
  return out;
}
