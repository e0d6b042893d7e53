/**
 * The storage contract of the homeserver: an asynchronous interface with explicit,
 * serialised transactions. The engine, the client API and the federation layers use only
 * these types; SQL lives behind them (SQLite today in `./sqlite/`, PostgreSQL later).
 *
 * Design rules every backend keeps:
 * - Nothing correct depends on process memory: leases, queues, staging and dedupe records
 *   live in the database, so several processes can share one database.
 * - Events are stored as received: `json` is the exact text given to
 *   {@link StorageTx.insertEvent}, never re-serialised, because hashes and signatures are
 *   over that text (hostile-federation §5.3).
 * - A committed transaction is durable (SQLite `synchronous=FULL`): "ack = durable"
 *   (hostile-federation §5, D2).
 *
 * @module
 */

/**
 * A state key as `@myelin/rooms` spells it: `JSON.stringify([type, state_key])`. Used as the
 * key of state maps (state groups, deltas).
 */
export type StateKey = string;

export { StorageError } from "./storage-error.js";
export type { StorageFailure } from "./storage-error.js";
export { openSqliteStorage } from "./sqlite/sqlite-storage.js";
export type { SqliteStorageOptions } from "./sqlite/sqlite-storage.js";

// ---------------------------------------------------------------------------------------
// Rooms

/** What {@link StorageTx.insertRoom} records for a new room. */
export interface NewRoom {
  readonly roomId: string;
  /** The room version identifier (`"12"`, `"10"` ...). */
  readonly roomVersion: string;
  /** The user ID of the room creator (the `m.room.create` sender). */
  readonly creator: string;
  /** When this server learnt of the room (ms since the epoch). */
  readonly createdTs: number;
}

/** A room known to this server. */
export interface RoomRow extends NewRoom {
  /** Whether the room is listed in the public room directory. */
  readonly isPublic: boolean;
}

// ---------------------------------------------------------------------------------------
// Events

/** What {@link StorageTx.insertEvent} records. */
export interface NewEvent {
  readonly eventId: string;
  readonly roomId: string;
  /**
   * The event JSON exactly as it must be served again: the canonical text of what was
   * received (or the redacted copy after a hash mismatch). Stored byte for byte.
   */
  readonly json: string;
  readonly type: string;
  /** `state_key`, or `null` for a non-state event. */
  readonly stateKey: string | null;
  readonly sender: string;
  readonly depth: number;
  readonly originServerTs: number;
  readonly prevEvents: readonly string[];
  readonly authEvents: readonly string[];
  /** Why the event was rejected (then it is never a prev event nor state); `null` or absent if not. */
  readonly rejectedReason?: string | null;
  /** Passed auth against its own state but failed against the current state (not shown, not an extremity). */
  readonly softFailed?: boolean;
  /** An outlier: known (e.g. as an auth event) but not placed in the room DAG; gets no stream ordering. */
  readonly outlier: boolean;
  /** The state group holding the room state *before* this event, if computed. */
  readonly stateGroupBefore?: number | null;
  /** When this server received or created the event (ms since the epoch). */
  readonly receivedTs: number;
  /**
   * For a backfilled non-outlier: its position, taken from
   * {@link StorageTx.reserveBackfillOrderings} (below every event so far). Absent: the
   * next stream ordering (the newest position).
   */
  readonly streamOrdering?: number;
}

/** A stored event with its status columns. */
export interface StoredEvent {
  readonly eventId: string;
  readonly roomId: string;
  /** The exact JSON text given at insert. */
  readonly json: string;
  readonly type: string;
  readonly stateKey: string | null;
  readonly sender: string;
  readonly depth: number;
  readonly originServerTs: number;
  readonly prevEvents: readonly string[];
  readonly authEvents: readonly string[];
  readonly rejectedReason: string | null;
  readonly softFailed: boolean;
  readonly outlier: boolean;
  readonly stateGroupBefore: number | null;
  /**
   * Position in this server's event stream (increasing across all rooms for new events;
   * backfilled events get negative positions, decreasing, below everything so far), or
   * `null` for an outlier that was never placed in the timeline.
   */
  readonly streamOrdering: number | null;
  readonly receivedTs: number;
}

/** The changes {@link StorageTx.updateEvent} can make; absent fields are left alone. */
export interface EventUpdate {
  readonly outlier?: boolean;
  readonly stateGroupBefore?: number | null;
  readonly rejectedReason?: string | null;
  readonly softFailed?: boolean;
  /**
   * `"assign"`: give the event the next stream ordering (when an outlier is de-outliered);
   * a number: that position (a backfilled event's, see {@link StorageTx.reserveBackfillOrderings}).
   * Does nothing if the event already has one.
   */
  readonly streamOrdering?: "assign" | number;
}

/** A prev event that the room's timeline cites but does not hold (where backfill starts). */
export interface BackwardExtremity {
  readonly eventId: string;
  /** The depth of the deepest timeline event citing it. */
  readonly childDepth: number;
}

/**
 * A place in a room's timeline order, between two events. The timeline is ordered
 * topologically, as Synapse orders `/messages`: by depth, then by stream ordering (a total
 * order, since stream orderings are unique). `{ depth, stream }` is the place just after
 * the event at that depth and stream ordering (whether or not such an event exists).
 *
 * Depth, not stream ordering, comes first because stream orderings record when this server
 * learnt of an event: history backfilled after a rejoin is older than what the timeline
 * holds above it but newer than what this server saw during an earlier membership, and only
 * the DAG's depth places it between the two.
 */
export interface TimelinePosition {
  readonly depth: number;
  readonly stream: number;
}

/** Paging options of {@link StorageTx.getRoomTimeline}. */
export interface TimelineQuery {
  /**
   * Where to start: `"b"` returns the events before this position (default: from the
   * newest), `"f"` the events after it (default: from the oldest).
   */
  readonly from?: TimelinePosition;
  /** `"b"`: newest first, going back; `"f"`: oldest first, going forward. */
  readonly dir: "b" | "f";
  /** At most this many events (>= 0). */
  readonly limit: number;
}

/** Bounds (inclusive, either optional) on the depth of the events citing a backward extremity. */
export interface ChildDepthRange {
  readonly min?: number;
  readonly max?: number;
}

/** A local user's invite to a room (see {@link StorageTx.putPendingInvite}). */
export interface PendingInviteRow {
  readonly roomId: string;
  /** The invited local user. */
  readonly userId: string;
  /** The invite (`m.room.member`, membership `invite`), stored as an event. */
  readonly eventId: string;
  /** Who invited (the invite's sender). */
  readonly sender: string;
  /** The stripped state sent with the invite (`invite_room_state`), as JSON text of an array. */
  readonly roomState: string;
  readonly receivedTs: number;
}

/** Options of {@link StorageTx.getEventsBeforeDepth}. */
export interface DepthQuery {
  /** Only events with a depth at most this. */
  readonly maxDepth: number;
  readonly limit: number;
}

// ---------------------------------------------------------------------------------------
// Users, aliases, client transactions

/** What {@link StorageTx.createUser} records. */
export interface NewUser {
  readonly userId: string;
  readonly createdTs: number;
  /** A password hash (format chosen by the client-API layer), or absent for token-only users. */
  readonly passwordHash?: string | null;
}

/** A local user. */
export interface UserRow {
  readonly userId: string;
  readonly createdTs: number;
  readonly passwordHash: string | null;
}

/** A user's profile fields (`m.room.member` displayname and avatar_url; `null` when unset). */
export interface Profile {
  readonly displayname: string | null;
  readonly avatarUrl: string | null;
}

/** What {@link StorageTx.createAccessToken} records. */
export interface NewAccessToken {
  readonly token: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly createdTs: number;
}

/** Who an access token belongs to. */
export interface AccessTokenOwner {
  readonly userId: string;
  readonly deviceId: string;
}

/** A room alias mapping. */
export interface AliasRow {
  readonly alias: string;
  readonly roomId: string;
  /** The user who created the alias (may delete it). */
  readonly creator: string;
}

/** A client transaction ID record (idempotent `PUT /send/{txnId}`). */
export interface ClientTxn {
  readonly userId: string;
  readonly deviceId: string;
  readonly txnId: string;
  readonly eventId: string;
  readonly ts: number;
}

// ---------------------------------------------------------------------------------------
// Inbound federation

/** What {@link StorageTx.stagePdu} records: a signature-checked PDU waiting for its room's worker. */
export interface NewStagedPdu {
  /** The server that sent it to us. */
  readonly origin: string;
  readonly roomId: string;
  /** Its event ID, or `null` when it cannot be computed (unknown room version). */
  readonly eventId: string | null;
  /** The PDU JSON text as received. */
  readonly json: string;
  readonly receivedTs: number;
}

/** A staged PDU. */
export interface StagedPdu extends NewStagedPdu {
  /** Row ID; increases with arrival order. */
  readonly id: number;
}

/** A lease row: who holds the named lock and until when. */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  readonly untilTs: number;
}

// ---------------------------------------------------------------------------------------
// Outbound federation

/** One item to send to a destination. */
export type OutboundItemInput =
  | { readonly kind: "pdu"; readonly eventId: string }
  | {
      readonly kind: "edu";
      /** The EDU JSON text (`{"edu_type":..., "content":...}`). */
      readonly json: string;
      /** Typing, receipts, presence: may be dropped after a long outage (hostile-federation D5). */
      readonly volatile?: boolean;
    };

/** A queued outbound item. */
export type OutboundItem =
  | {
      readonly id: number;
      readonly destination: string;
      readonly kind: "pdu";
      readonly eventId: string;
      readonly enqueuedTs: number;
    }
  | {
      readonly id: number;
      readonly destination: string;
      readonly kind: "edu";
      readonly json: string;
      readonly volatile: boolean;
      readonly enqueuedTs: number;
    };

/** Limits of one outbound transaction (the spec caps /send at 50 PDUs and 100 EDUs). */
export interface OutboundLimits {
  readonly maxPdus: number;
  readonly maxEdus: number;
}

/** Persisted retry state of one destination. */
export interface DestinationState {
  /** Consecutive failures (0 after a success). */
  readonly failures: number;
  /** Do not send before this time; `null` = any time. */
  readonly retryAtTs: number | null;
  /** Last time a transaction to it succeeded; `null` = never. */
  readonly lastSuccessTs: number | null;
}

// ---------------------------------------------------------------------------------------
// The interfaces

/** A database handle. Every read and write goes through {@link Storage.transaction}. */
export interface Storage {
  /**
   * Runs `fn` in one serialised read-write transaction: all of it commits, or none (a throw
   * rolls back and rethrows). Transactions never interleave; `fn` sees its own writes. Do
   * not await network I/O inside `fn`: it holds the database for its whole duration. Calling
   * `transaction` from inside `fn` throws `StorageError("nested-transaction")`.
   */
  transaction<T>(fn: (tx: StorageTx) => Promise<T> | T): Promise<T>;
  /** Waits for queued transactions, then closes the database. Later calls throw `"closed"`. */
  close(): Promise<void>;
}

/**
 * The operations available inside a transaction. All return promises (call with `await`).
 * The object is only valid until its transaction ends; later use throws `"closed"`.
 */
export interface StorageTx {
  // --- rooms ---

  /** Records a new room; `"conflict"` if the room ID is known. */
  insertRoom(room: NewRoom): Promise<void>;
  /** The room, or `undefined` if unknown. */
  getRoom(roomId: string): Promise<RoomRow | undefined>;
  /** Every known room, by room ID. */
  listRooms(): Promise<RoomRow[]>;
  /** Lists or unlists the room in the public room directory; `"not-found"` if unknown. */
  setRoomPublic(roomId: string, isPublic: boolean): Promise<void>;
  /** The rooms in the public room directory, by room ID. */
  listPublicRooms(): Promise<RoomRow[]>;

  // --- events ---

  /**
   * Stores an event (its JSON text verbatim, its prev/auth edges) and gives a non-outlier
   * the next stream ordering (increasing; a failed insert may leave a gap). `"conflict"` if
   * the event ID is already stored: use {@link StorageTx.updateEvent} to change a stored event.
   */
  insertEvent(event: NewEvent): Promise<StoredEvent>;
  /** The event, or `undefined`. */
  getEvent(eventId: string): Promise<StoredEvent | undefined>;
  /** The stored ones of `eventIds` (missing IDs are absent from the map). Batched. */
  getEvents(eventIds: Iterable<string>): Promise<Map<string, StoredEvent>>;
  /** Which of `eventIds` are stored (in any status, outliers and rejected included). */
  hasEvents(eventIds: Iterable<string>): Promise<Set<string>>;
  /**
   * Changes status columns of a stored event and returns it updated; `"not-found"` if it is
   * not stored. Making an event a non-outlier also gives it a stream ordering if it has none
   * (as `streamOrdering: "assign"` does), so every non-outlier has a timeline position.
   */
  updateEvent(eventId: string, update: EventUpdate): Promise<StoredEvent>;
  /**
   * A page of the room timeline: non-outlier, not rejected, not soft-failed events, in
   * topological order: by depth, then stream ordering (see {@link TimelinePosition} and
   * {@link TimelineQuery}). Stream orderings may be negative (backfilled events).
   */
  getRoomTimeline(roomId: string, query: TimelineQuery): Promise<StoredEvent[]>;
  /**
   * The greatest depth among the room's timeline events (as in getRoomTimeline) with a
   * stream ordering at most `stream`, or `undefined` if there is none. Turns a position in
   * stream order (a `/messages` token of an earlier version) into a topological one.
   */
  getMaxDepthUpToStream(roomId: string, stream: number): Promise<number | undefined>;
  /**
   * For `/timestamp_to_event`: the timeline event (as in getRoomTimeline) closest to `ts`
   * in direction `dir` (`"f"`: the first with origin_server_ts >= ts; `"b"`: the last with
   * origin_server_ts <= ts), or `undefined`.
   */
  getEventIdNearTs(roomId: string, ts: number, dir: "b" | "f"): Promise<string | undefined>;
  /**
   * The highest stream ordering among the room's timeline events, or across all rooms if
   * `roomId` is absent; 0 when there is none (new events get orderings from 1 up, backfilled
   * ones from -1 down).
   */
  getMaxStream(roomId?: string): Promise<number>;
  /**
   * The auth chain of `eventIds`: every event reachable through `auth_events` edges
   * (transitively), from stored edges. The inputs are included only if reachable from
   * another input. Edges to events not stored are followed no further (the missing IDs
   * are included, so the caller can tell a chain is incomplete by looking them up).
   */
  getAuthChainIds(eventIds: Iterable<string>): Promise<Set<string>>;
  /**
   * IDs of stored events that list one of `eventIds` among their `prev_events` (children in
   * the DAG), rejected ones excluded. Used to recompute forward extremities.
   */
  getChildEventIds(eventIds: Iterable<string>): Promise<Set<string>>;
  /**
   * Reserves `count` (>= 1) stream orderings below every one handed out so far, for events
   * about to be backfilled (older than those already in the timeline), and returns the
   * lowest: the block is `lowest .. lowest + count - 1`, to be given oldest first. Never
   * reused, even if unused.
   */
  reserveBackfillOrderings(count: number): Promise<number>;
  /**
   * The room's backward extremities: events cited as `prev_events` by its timeline events
   * (non-outlier, not rejected) that are not in the timeline themselves (unknown, or stored
   * as outliers), deepest child first, at most `limit`. With `childDepths`, only the
   * citations by events whose depth is in that range count (`childDepth` is the deepest of
   * those).
   */
  getBackwardExtremities(roomId: string, limit: number, childDepths?: ChildDepthRange): Promise<BackwardExtremity[]>;
  /**
   * For backfill: the room's non-outlier, non-rejected events with depth <= `maxDepth`,
   * deepest first (ties by stream ordering, newest first).
   */
  getEventsBeforeDepth(roomId: string, query: DepthQuery): Promise<StoredEvent[]>;

  // --- state groups ---

  /**
   * Records a state group for `roomId`: `prevGroup`'s state with `delta` applied (an event
   * ID sets a key; `null` removes it). With `prevGroup` null, `delta` is the full state.
   * Returns the new group's ID. `"not-found"` if `prevGroup` does not exist. Reads stay
   * bounded: every 100th group of a chain is stored as a full snapshot.
   */
  createStateGroup(
    roomId: string,
    prevGroup: number | null,
    delta: ReadonlyMap<StateKey, string | null>,
  ): Promise<number>;
  /** The full state of a group (state key -> event ID); `"not-found"` if the group does not exist. */
  getStateGroup(groupId: number): Promise<Map<StateKey, string>>;

  // --- room heads ---

  /** The room's forward extremities (events without children), sorted; `[]` if none recorded. */
  getForwardExtremities(roomId: string): Promise<string[]>;
  /** Replaces the room's forward extremities. */
  setForwardExtremities(roomId: string, eventIds: Iterable<string>): Promise<void>;
  /** The state group of the room's current state, or `undefined` if none recorded. */
  getCurrentStateGroup(roomId: string): Promise<number | undefined>;
  /** Records the state group of the room's current state. */
  setCurrentStateGroup(roomId: string, groupId: number): Promise<void>;

  // --- pending invites ---

  /**
   * Records (or replaces) a local user's invite to a room; `"not-found"` if the invite
   * event is not stored. Kept until {@link StorageTx.deletePendingInvite}.
   */
  putPendingInvite(invite: PendingInviteRow): Promise<void>;
  /** The user's invite to the room, or `undefined`. */
  getPendingInvite(roomId: string, userId: string): Promise<PendingInviteRow | undefined>;
  /** The user's invites, by room ID. */
  listPendingInvites(userId: string): Promise<PendingInviteRow[]>;
  /** Forgets the user's invite to the room (joined, rejected, superseded); whether there was one. */
  deletePendingInvite(roomId: string, userId: string): Promise<boolean>;

  // --- users ---

  /** Records a local user; `"conflict"` (M_USER_IN_USE) if the user ID exists. */
  createUser(user: NewUser): Promise<void>;
  /** The user, or `undefined`. */
  getUser(userId: string): Promise<UserRow | undefined>;
  /** Records an access token; `"conflict"` if the token exists, `"not-found"` if the user does not. */
  createAccessToken(token: NewAccessToken): Promise<void>;
  /** Who holds `token`, or `undefined`. */
  getAccessToken(token: string): Promise<AccessTokenOwner | undefined>;
  /** Revokes `token`; whether it existed. */
  deleteAccessToken(token: string): Promise<boolean>;
  /** The user's profile, or `undefined` if the user does not exist. */
  getProfile(userId: string): Promise<Profile | undefined>;
  /** Sets the given profile fields (`null` clears one); `"not-found"` if the user does not exist. */
  setProfile(userId: string, profile: Partial<Profile>): Promise<void>;

  // --- aliases ---

  /** Maps `alias` to `roomId`; `"conflict"` if the alias exists (whatever room it names). */
  putAlias(alias: string, roomId: string, creator: string): Promise<void>;
  /** The alias mapping, or `undefined`. */
  getAlias(alias: string): Promise<AliasRow | undefined>;
  /** Removes the alias; whether it existed. */
  deleteAlias(alias: string): Promise<boolean>;
  /** The aliases pointing at `roomId`, sorted. */
  listAliases(roomId: string): Promise<string[]>;

  // --- client transaction IDs ---

  /** The event ID a client transaction produced, or `undefined`. */
  getClientTxn(userId: string, deviceId: string, txnId: string): Promise<string | undefined>;
  /** Records a client transaction; `"conflict"` if (user, device, txn) is already recorded. */
  putClientTxn(txn: ClientTxn): Promise<void>;

  // --- inbound federation ---

  /** The stored `/send` response (JSON text) for (origin, txnId), or `undefined`. */
  getReceivedTransaction(origin: string, txnId: string): Promise<string | undefined>;
  /**
   * Records the `/send` response for (origin, txnId) at `ts`. The first record wins: returns
   * `false` (and changes nothing) if one exists.
   */
  putReceivedTransaction(origin: string, txnId: string, response: string, ts: number): Promise<boolean>;
  /** Deletes received-transaction records older than `beforeTs` (the spec keeps them ~24 h); how many. */
  pruneReceivedTransactions(beforeTs: number): Promise<number>;
  /**
   * Stages a PDU for its room's worker and returns the staging ID. A PDU whose event ID is
   * already staged for the same room is not staged twice: the existing ID is returned.
   */
  stagePdu(pdu: NewStagedPdu): Promise<number>;
  /** The rooms with staged PDUs, sorted. */
  listStagedRooms(): Promise<string[]>;
  /** The room's oldest `limit` staged PDUs, in arrival order. */
  nextStagedPdus(roomId: string, limit: number): Promise<StagedPdu[]>;
  /** Removes a staged PDU (processed); whether it existed. */
  deleteStagedPdu(id: number): Promise<boolean>;
  /** How many PDUs are staged (for the room, or in total). */
  countStagedPdus(roomId?: string): Promise<number>;
  /**
   * Takes or renews the lease `name` for `holder` until `untilTs`: succeeds if nobody holds
   * it, the holder is `holder` already, or the current lease has expired (its until_ts is
   * at or before now). Atomic: at most one holder at a time across processes.
   */
  tryAcquireLease(name: string, holder: string, untilTs: number): Promise<boolean>;
  /** Gives the lease up if `holder` holds it; whether it did. */
  releaseLease(name: string, holder: string): Promise<boolean>;
  /** The lease row (expired or not), or `undefined`. */
  getLease(name: string): Promise<Lease | undefined>;

  // --- outbound federation ---

  /** Queues an item for `destination` and returns its ID (increasing with enqueue order). */
  enqueueOutbound(destination: string, item: OutboundItemInput): Promise<number>;
  /**
   * The next items for one transaction to `destination`, oldest first: at most `maxPdus`
   * PDUs and `maxEdus` EDUs (each kind in queue order). Items stay queued until
   * {@link StorageTx.deleteOutbound}.
   */
  peekOutbound(destination: string, limits: OutboundLimits): Promise<OutboundItem[]>;
  /** Removes sent (or dropped) items; how many existed. */
  deleteOutbound(ids: Iterable<number>): Promise<number>;
  /** Removes the destination's volatile EDUs (after a long outage); how many. */
  dropVolatileOutbound(destination: string): Promise<number>;
  /** How many items are queued for `destination`. */
  countOutbound(destination: string): Promise<number>;
  /** The destination's retry state, or `undefined` if never recorded. */
  getDestination(destination: string): Promise<DestinationState | undefined>;
  /** Sets the given retry-state fields (absent ones keep their value; new rows start at 0/null/null). */
  setDestination(destination: string, state: Partial<DestinationState>): Promise<void>;
  /** The destinations with queued items whose retryAtTs is null or <= `nowTs`, sorted. */
  listDestinationsDue(nowTs: number): Promise<string[]>;
}
