/**
 * The SQLite backend of {@link Storage}, over better-sqlite3 (synchronous, in process).
 *
 * - Durability: WAL with `synchronous=FULL`, so a committed transaction survives a power
 *   cut, as "ack = durable" requires (hostile-federation §5, D2).
 * - Transactions: better-sqlite3's `db.transaction()` cannot span an `await`, so
 *   `transaction(fn)` issues BEGIN IMMEDIATE / COMMIT / ROLLBACK itself around the awaited
 *   `fn`, while holding a promise queue: no other transaction of this process interleaves,
 *   and BEGIN IMMEDIATE takes SQLite's write lock so other processes wait (busy_timeout).
 * - Nothing correct lives only in memory: the state-group cache holds immutable groups and
 *   is dropped on every rollback (a rolled-back group ID can be handed out again).
 * - ID lists are passed as one JSON array parameter and expanded with `json_each`, so a
 *   batch of any size is one statement, never over the bound-variable limit, never N+1.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import Database from "better-sqlite3";
import type BetterSqlite3 from "better-sqlite3";
import { StorageError } from "../storage-error.js";
import type {
  AccessTokenOwner,
  AliasRow,
  BackwardExtremity,
  ChildDepthRange,
  ClientTxn,
  DepthQuery,
  DestinationState,
  EventUpdate,
  Lease,
  NewAccessToken,
  NewEvent,
  NewRoom,
  NewStagedPdu,
  NewUser,
  OutboundItem,
  OutboundItemInput,
  OutboundLimits,
  PendingInviteRow,
  Profile,
  RoomRow,
  StagedPdu,
  StateKey,
  Storage,
  StorageTx,
  StoredEvent,
  TimelineQuery,
  UserRow,
} from "../storage.js";
import { SQLITE_MIGRATIONS, migrateSqlite } from "./migrations.js";

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The clock (ms since the epoch) for lease expiry and enqueue times; default `Date.now`. */
  readonly now?: () => number;
  /** How long to wait for another process's write lock before failing with `"busy"`; default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Migration steps to apply (tests only); default the real ones. */
  readonly migrations?: readonly string[];
  /** How many resolved state groups to keep in memory; default 256. */
  readonly stateGroupCacheSize?: number;
}

/**
 * A state group is stored as a full snapshot instead of a delta when it would be this many
 * deltas away from the last snapshot, so reading a group visits at most this many groups.
 */
export const STATE_GROUP_SNAPSHOT_INTERVAL = 100;

/**
 * Opens (creating if needed) the SQLite database at `path` (`":memory:"` works for
 * throwaway use) and migrates it to the current schema. Open one handle per file per
 * process: the driver is synchronous, so a second handle in the same process waiting for
 * the first one's write lock would block the thread the first needs to commit.
 *
 * @throws StorageError `"schema-too-new"` if a newer server wrote it; `"corrupt"` if it is not
 *   a database; `"busy"` if another process holds it locked past the busy timeout.
 */
export async function openSqliteStorage(path: string, options: SqliteStorageOptions = {}): Promise<Storage> {
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    migrateSqlite(db, options.migrations ?? SQLITE_MIGRATIONS);
  } catch (error) {
    db?.close();
    throw toStorageError(error);
  }
  return new SqliteStorage(db, options);
}

// ---------------------------------------------------------------------------------------
// Errors

/** Maps a driver error to a {@link StorageError}; anything else is returned unchanged. */
function toStorageError(error: unknown): unknown {
  if (error instanceof StorageError) return error;
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (typeof code !== "string") return error;
  const message = (error as Error).message;
  if (code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE") {
    return new StorageError("conflict", message, { cause: error });
  }
  if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") return new StorageError("not-found", message, { cause: error });
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new StorageError("busy", message, { cause: error });
  }
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return new StorageError("corrupt", message, { cause: error });
  }
  return error;
}

// ---------------------------------------------------------------------------------------
// Rows

interface EventRowDb {
  event_id: string;
  room_id: string;
  json: string;
  type: string;
  state_key: string | null;
  sender: string;
  depth: number;
  origin_server_ts: number;
  prev_events: string;
  auth_events: string;
  rejected_reason: string | null;
  soft_failed: number;
  outlier: number;
  state_group_before: number | null;
  stream_ordering: number | null;
  received_ts: number;
}

interface PendingInviteRowDb {
  room_id: string;
  user_id: string;
  event_id: string;
  sender: string;
  room_state: string;
  received_ts: number;
}

function toPendingInvite(row: PendingInviteRowDb): PendingInviteRow {
  return {
    roomId: row.room_id,
    userId: row.user_id,
    eventId: row.event_id,
    sender: row.sender,
    roomState: row.room_state,
    receivedTs: row.received_ts,
  };
}

const EVENT_COLUMNS =
  "event_id, room_id, json, type, state_key, sender, depth, origin_server_ts, prev_events, auth_events, " +
  "rejected_reason, soft_failed, outlier, state_group_before, stream_ordering, received_ts";

/** Timeline visibility: placed in the DAG, accepted, not soft-failed. */
const TIMELINE = "outlier = 0 AND rejected_reason IS NULL AND soft_failed = 0";

function parseIdList(text: string, eventId: string, column: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StorageError("corrupt", `events.${column} of ${eventId} is not JSON`, { cause: error });
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new StorageError("corrupt", `events.${column} of ${eventId} is not a list of IDs`);
  }
  return value as string[];
}

function toStoredEvent(row: EventRowDb): StoredEvent {
  return {
    eventId: row.event_id,
    roomId: row.room_id,
    json: row.json,
    type: row.type,
    stateKey: row.state_key,
    sender: row.sender,
    depth: row.depth,
    originServerTs: row.origin_server_ts,
    prevEvents: parseIdList(row.prev_events, row.event_id, "prev_events"),
    authEvents: parseIdList(row.auth_events, row.event_id, "auth_events"),
    rejectedReason: row.rejected_reason,
    softFailed: row.soft_failed !== 0,
    outlier: row.outlier !== 0,
    stateGroupBefore: row.state_group_before,
    streamOrdering: row.stream_ordering,
    receivedTs: row.received_ts,
  };
}

interface RoomRowDb {
  room_id: string;
  room_version: string;
  creator: string;
  created_ts: number;
  is_public: number;
}

function toRoomRow(row: RoomRowDb): RoomRow {
  return {
    roomId: row.room_id,
    roomVersion: row.room_version,
    creator: row.creator,
    createdTs: row.created_ts,
    isPublic: row.is_public !== 0,
  };
}

interface OutboundRowDb {
  id: number;
  destination: string;
  kind: string;
  event_id: string | null;
  json: string | null;
  volatile: number;
  enqueued_ts: number;
}

function toOutboundItem(row: OutboundRowDb): OutboundItem {
  if (row.kind === "pdu" && row.event_id !== null) {
    return { id: row.id, destination: row.destination, kind: "pdu", eventId: row.event_id, enqueuedTs: row.enqueued_ts };
  }
  if (row.kind === "edu" && row.json !== null) {
    return {
      id: row.id,
      destination: row.destination,
      kind: "edu",
      json: row.json,
      volatile: row.volatile !== 0,
      enqueuedTs: row.enqueued_ts,
    };
  }
  throw new StorageError("corrupt", `outbound_queue row ${row.id} has kind ${row.kind} without its payload`);
}

/** One JSON array parameter for `json_each`, deduplicated. */
function idArray(ids: Iterable<string | number>): string {
  return JSON.stringify([...new Set(ids)]);
}

function checkLimit(limit: number, what: string): void {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new StorageError("invalid-argument", `${what} must be a non-negative integer, got ${limit}`);
  }
}

// ---------------------------------------------------------------------------------------
// Storage

/** Marks the transaction a piece of async code runs in, to refuse nested transactions. */
interface ActiveTransaction {
  readonly storage: SqliteStorage;
  active: boolean;
}

const currentTransaction = new AsyncLocalStorage<ActiveTransaction>();

class SqliteStorage implements Storage {
  readonly db: BetterSqlite3.Database;
  readonly now: () => number;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  /** Resolved state groups (immutable once committed), most recently used last. */
  private readonly stateGroups = new Map<number, ReadonlyMap<StateKey, string>>();
  private readonly stateGroupCacheSize: number;
  /** The tail of the transaction queue: settles when the last queued transaction has. */
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(db: BetterSqlite3.Database, options: SqliteStorageOptions) {
    this.db = db;
    this.now = options.now ?? Date.now;
    this.stateGroupCacheSize = options.stateGroupCacheSize ?? 256;
  }

  /**
   * A prepared statement, prepared once per SQL text and row mode (`pluck`: first column
   * only; `raw`: arrays). The mode is part of the key because it is a statement setting.
   */
  stmt(sql: string, mode: "object" | "pluck" | "raw" = "object"): BetterSqlite3.Statement {
    const key = mode === "object" ? sql : `${mode}\u0000${sql}`;
    let statement = this.statements.get(key);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      if (mode === "pluck") statement.pluck(true);
      else if (mode === "raw") statement.raw(true);
      this.statements.set(key, statement);
    }
    return statement;
  }

  cachedStateGroup(id: number): ReadonlyMap<StateKey, string> | undefined {
    const state = this.stateGroups.get(id);
    if (state !== undefined) {
      this.stateGroups.delete(id);
      this.stateGroups.set(id, state);
    }
    return state;
  }

  cacheStateGroup(id: number, state: ReadonlyMap<StateKey, string>): void {
    if (this.stateGroupCacheSize <= 0) return;
    this.stateGroups.delete(id);
    this.stateGroups.set(id, state);
    while (this.stateGroups.size > this.stateGroupCacheSize) {
      const oldest = this.stateGroups.keys().next();
      if (oldest.done === true) break;
      this.stateGroups.delete(oldest.value);
    }
  }

  transaction<T>(fn: (tx: StorageTx) => Promise<T> | T): Promise<T> {
    if (this.closed) return Promise.reject(new StorageError("closed", "the storage is closed"));
    const outer = currentTransaction.getStore();
    if (outer !== undefined && outer.active && outer.storage === this) {
      return Promise.reject(
        new StorageError("nested-transaction", "transaction() called inside a transaction of the same storage"),
      );
    }
    const result = this.tail.then(() => this.run(fn));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async run<T>(fn: (tx: StorageTx) => Promise<T> | T): Promise<T> {
    if (!this.db.open) throw new StorageError("closed", "the storage is closed");
    try {
      this.stmt("BEGIN IMMEDIATE").run();
    } catch (error) {
      throw toStorageError(error);
    }
    const marker: ActiveTransaction = { storage: this, active: true };
    const tx = new SqliteTx(this);
    try {
      const value = await currentTransaction.run(marker, () => fn(tx));
      tx.end();
      this.stmt("COMMIT").run();
      return value;
    } catch (error) {
      tx.end();
      if (this.db.inTransaction) this.stmt("ROLLBACK").run();
      // Group IDs created in the rolled-back transaction may be reused: forget them all.
      this.stateGroups.clear();
      throw toStorageError(error);
    } finally {
      marker.active = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    this.statements.clear();
    this.stateGroups.clear();
    this.db.close();
  }
}

// ---------------------------------------------------------------------------------------
// Transaction

class SqliteTx implements StorageTx {
  private ended = false;

  constructor(private readonly s: SqliteStorage) {}

  end(): void {
    this.ended = true;
  }

  /** Runs one operation: refuses use after the transaction ended, maps driver errors. */
  private op<T>(fn: () => T): Promise<T> {
    if (this.ended) return Promise.reject(new StorageError("closed", "transaction object used after it ended"));
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(toStorageError(error));
    }
  }

  private get<R>(sql: string, ...params: unknown[]): R | undefined {
    return this.s.stmt(sql).get(...params) as R | undefined;
  }

  private all<R>(sql: string, ...params: unknown[]): R[] {
    return this.s.stmt(sql).all(...params) as R[];
  }

  private pluck<R>(sql: string, ...params: unknown[]): R[] {
    return this.s.stmt(sql, "pluck").all(...params) as R[];
  }

  private run(sql: string, ...params: unknown[]): BetterSqlite3.RunResult {
    return this.s.stmt(sql).run(...params);
  }

  // --- rooms ---

  insertRoom(room: NewRoom): Promise<void> {
    return this.op(() => {
      this.run(
        "INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES (?, ?, ?, ?)",
        room.roomId,
        room.roomVersion,
        room.creator,
        room.createdTs,
      );
    });
  }

  getRoom(roomId: string): Promise<RoomRow | undefined> {
    return this.op(() => {
      const row = this.get<RoomRowDb>("SELECT * FROM rooms WHERE room_id = ?", roomId);
      return row === undefined ? undefined : toRoomRow(row);
    });
  }

  listRooms(): Promise<RoomRow[]> {
    return this.op(() => this.all<RoomRowDb>("SELECT * FROM rooms ORDER BY room_id").map(toRoomRow));
  }

  setRoomPublic(roomId: string, isPublic: boolean): Promise<void> {
    return this.op(() => {
      const result = this.run("UPDATE rooms SET is_public = ? WHERE room_id = ?", isPublic ? 1 : 0, roomId);
      if (result.changes === 0) throw new StorageError("not-found", `unknown room ${roomId}`);
    });
  }

  listPublicRooms(): Promise<RoomRow[]> {
    return this.op(() =>
      this.all<RoomRowDb>("SELECT * FROM rooms WHERE is_public = 1 ORDER BY room_id").map(toRoomRow),
    );
  }

  // --- events ---

  private nextStream(): number {
    const row = this.get<{ value: number }>(
      "UPDATE counters SET value = value + 1 WHERE name = 'stream' RETURNING value",
    );
    if (row === undefined) throw new StorageError("corrupt", "the stream counter row is missing");
    return row.value;
  }

  insertEvent(event: NewEvent): Promise<StoredEvent> {
    return this.op(() => {
      if (event.streamOrdering !== undefined && (event.outlier || !Number.isSafeInteger(event.streamOrdering))) {
        throw new StorageError("invalid-argument", "an explicit stream ordering is an integer, for a non-outlier");
      }
      const streamOrdering = event.outlier ? null : (event.streamOrdering ?? this.nextStream());
      const stored: StoredEvent = {
        eventId: event.eventId,
        roomId: event.roomId,
        json: event.json,
        type: event.type,
        stateKey: event.stateKey,
        sender: event.sender,
        depth: event.depth,
        originServerTs: event.originServerTs,
        prevEvents: [...event.prevEvents],
        authEvents: [...event.authEvents],
        rejectedReason: event.rejectedReason ?? null,
        softFailed: event.softFailed ?? false,
        outlier: event.outlier,
        stateGroupBefore: event.stateGroupBefore ?? null,
        streamOrdering,
        receivedTs: event.receivedTs,
      };
      this.run(
        `INSERT INTO events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        stored.eventId,
        stored.roomId,
        stored.json,
        stored.type,
        stored.stateKey,
        stored.sender,
        stored.depth,
        stored.originServerTs,
        JSON.stringify(stored.prevEvents),
        JSON.stringify(stored.authEvents),
        stored.rejectedReason,
        stored.softFailed ? 1 : 0,
        stored.outlier ? 1 : 0,
        stored.stateGroupBefore,
        streamOrdering,
        stored.receivedTs,
      );
      // One statement for all edges of the event (duplicates in the lists are ignored).
      if (stored.prevEvents.length + stored.authEvents.length > 0) {
        this.run(
          `INSERT OR IGNORE INTO event_edges (event_id, kind, target_id)
           SELECT ?, 'prev', value FROM json_each(?)
           UNION ALL SELECT ?, 'auth', value FROM json_each(?)`,
          stored.eventId,
          JSON.stringify(stored.prevEvents),
          stored.eventId,
          JSON.stringify(stored.authEvents),
        );
      }
      return stored;
    });
  }

  getEvent(eventId: string): Promise<StoredEvent | undefined> {
    return this.op(() => {
      const row = this.get<EventRowDb>(`SELECT ${EVENT_COLUMNS} FROM events WHERE event_id = ?`, eventId);
      return row === undefined ? undefined : toStoredEvent(row);
    });
  }

  getEvents(eventIds: Iterable<string>): Promise<Map<string, StoredEvent>> {
    return this.op(() => {
      const rows = this.all<EventRowDb>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE event_id IN (SELECT value FROM json_each(?))`,
        idArray(eventIds),
      );
      return new Map(rows.map((row) => [row.event_id, toStoredEvent(row)]));
    });
  }

  hasEvents(eventIds: Iterable<string>): Promise<Set<string>> {
    return this.op(
      () =>
        new Set(
          this.pluck<string>(
            "SELECT event_id FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
            idArray(eventIds),
          ),
        ),
    );
  }

  updateEvent(eventId: string, update: EventUpdate): Promise<StoredEvent> {
    return this.op(() => {
      const current = this.get<{ outlier: number; stream_ordering: number | null }>(
        "SELECT outlier, stream_ordering FROM events WHERE event_id = ?",
        eventId,
      );
      if (current === undefined) throw new StorageError("not-found", `unknown event ${eventId}`);
      const outlier = update.outlier ?? current.outlier !== 0;
      if (typeof update.streamOrdering === "number" && !Number.isSafeInteger(update.streamOrdering)) {
        throw new StorageError("invalid-argument", "a stream ordering is an integer");
      }
      // Invariant: a non-outlier has a stream ordering (it is in the timeline's order).
      const wantsStream = update.streamOrdering !== undefined || !outlier;
      const given = typeof update.streamOrdering === "number" ? update.streamOrdering : undefined;
      const stream = current.stream_ordering ?? (wantsStream ? (given ?? this.nextStream()) : null);
      const set = (value: unknown): [number, unknown] => [value === undefined ? 0 : 1, value ?? null];
      this.run(
        `UPDATE events SET
           outlier = ?,
           state_group_before = CASE WHEN ? THEN ? ELSE state_group_before END,
           rejected_reason = CASE WHEN ? THEN ? ELSE rejected_reason END,
           soft_failed = CASE WHEN ? THEN ? ELSE soft_failed END,
           stream_ordering = ?
         WHERE event_id = ?`,
        outlier ? 1 : 0,
        ...set(update.stateGroupBefore),
        ...set(update.rejectedReason),
        ...set(update.softFailed === undefined ? undefined : update.softFailed ? 1 : 0),
        stream,
        eventId,
      );
      const row = this.get<EventRowDb>(`SELECT ${EVENT_COLUMNS} FROM events WHERE event_id = ?`, eventId);
      if (row === undefined) throw new StorageError("not-found", `unknown event ${eventId}`);
      return toStoredEvent(row);
    });
  }

  getRoomTimeline(roomId: string, query: TimelineQuery): Promise<StoredEvent[]> {
    return this.op(() => {
      checkLimit(query.limit, "limit");
      const from = query.from;
      if (from !== undefined && !(Number.isSafeInteger(from.depth) && Number.isSafeInteger(from.stream))) {
        throw new StorageError("invalid-argument", "a timeline position is a pair of integers");
      }
      // Row values compare (depth, stream_ordering) lexicographically, which is the
      // timeline's order; the events_room_topological index serves both directions.
      const backward = query.dir === "b";
      const bound = from === undefined ? "" : backward ? "AND (depth, stream_ordering) <= (?, ?)" : "AND (depth, stream_ordering) > (?, ?)";
      const order = backward ? "DESC" : "ASC";
      return this.all<EventRowDb>(
        `SELECT ${EVENT_COLUMNS} FROM events
         WHERE room_id = ? ${bound} AND ${TIMELINE}
         ORDER BY depth ${order}, stream_ordering ${order} LIMIT ?`,
        roomId,
        ...(from === undefined ? [] : [from.depth, from.stream]),
        query.limit,
      ).map(toStoredEvent);
    });
  }

  getMaxDepthUpToStream(roomId: string, stream: number): Promise<number | undefined> {
    return this.op(() => {
      if (!Number.isSafeInteger(stream)) throw new StorageError("invalid-argument", "a stream ordering is an integer");
      const row = this.get<{ max: number | null }>(
        `SELECT MAX(depth) AS max FROM events WHERE room_id = ? AND stream_ordering <= ? AND ${TIMELINE}`,
        roomId,
        stream,
      );
      return row?.max ?? undefined;
    });
  }

  getEventIdNearTs(roomId: string, ts: number, dir: "b" | "f"): Promise<string | undefined> {
    return this.op(() => {
      const row =
        dir === "f"
          ? this.get<{ event_id: string }>(
              `SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts >= ? AND ${TIMELINE}
               ORDER BY origin_server_ts ASC, stream_ordering ASC LIMIT 1`,
              roomId,
              ts,
            )
          : this.get<{ event_id: string }>(
              `SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts <= ? AND ${TIMELINE}
               ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1`,
              roomId,
              ts,
            );
      return row?.event_id;
    });
  }

  getMaxStream(roomId?: string): Promise<number> {
    return this.op(() => {
      const row =
        roomId === undefined
          ? this.get<{ max: number | null }>("SELECT MAX(stream_ordering) AS max FROM events")
          : this.get<{ max: number | null }>(
              "SELECT MAX(stream_ordering) AS max FROM events WHERE room_id = ?",
              roomId,
            );
      return row?.max ?? 0;
    });
  }

  getAuthChainIds(eventIds: Iterable<string>): Promise<Set<string>> {
    return this.op(
      () =>
        new Set(
          this.pluck<string>(
            `WITH RECURSIVE chain(id) AS (
               SELECT target_id FROM event_edges
               WHERE kind = 'auth' AND event_id IN (SELECT value FROM json_each(?))
               UNION
               SELECT e.target_id FROM event_edges e JOIN chain c ON e.event_id = c.id AND e.kind = 'auth'
             )
             SELECT id FROM chain`,
            idArray(eventIds),
          ),
        ),
    );
  }

  getChildEventIds(eventIds: Iterable<string>): Promise<Set<string>> {
    return this.op(
      () =>
        new Set(
          this.pluck<string>(
            `SELECT DISTINCT e.event_id FROM event_edges e JOIN events ev ON ev.event_id = e.event_id
             WHERE e.kind = 'prev' AND e.target_id IN (SELECT value FROM json_each(?))
               AND ev.rejected_reason IS NULL`,
            idArray(eventIds),
          ),
        ),
    );
  }

  reserveBackfillOrderings(count: number): Promise<number> {
    return this.op(() => {
      if (!Number.isSafeInteger(count) || count < 1) throw new StorageError("invalid-argument", "count must be a positive integer");
      const row = this.get<{ value: number }>(
        "UPDATE counters SET value = value - ? WHERE name = 'backfill' RETURNING value",
        count,
      );
      if (row === undefined) throw new StorageError("corrupt", "the backfill counter row is missing");
      return row.value;
    });
  }

  getBackwardExtremities(roomId: string, limit: number, childDepths: ChildDepthRange = {}): Promise<BackwardExtremity[]> {
    return this.op(() => {
      checkLimit(limit, "limit");
      // Absent bounds are the widest integers, so one statement (and the depth index) serves all.
      const min = childDepths.min ?? Number.MIN_SAFE_INTEGER;
      const max = childDepths.max ?? Number.MAX_SAFE_INTEGER;
      if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max)) throw new StorageError("invalid-argument", "depth bounds are integers");
      return this.all<{ event_id: string; child_depth: number }>(
        `SELECT e.target_id AS event_id, MAX(child.depth) AS child_depth
         FROM events child
         JOIN event_edges e ON e.event_id = child.event_id AND e.kind = 'prev'
         LEFT JOIN events target ON target.event_id = e.target_id
         WHERE child.room_id = ? AND child.depth BETWEEN ? AND ? AND child.outlier = 0 AND child.rejected_reason IS NULL
           AND (target.event_id IS NULL OR target.outlier = 1)
         GROUP BY e.target_id
         ORDER BY child_depth DESC, event_id
         LIMIT ?`,
        roomId,
        min,
        max,
        limit,
      ).map((row) => ({ eventId: row.event_id, childDepth: row.child_depth }));
    });
  }

  getEventsBeforeDepth(roomId: string, query: DepthQuery): Promise<StoredEvent[]> {
    return this.op(() => {
      checkLimit(query.limit, "limit");
      return this.all<EventRowDb>(
        `SELECT ${EVENT_COLUMNS} FROM events
         WHERE room_id = ? AND depth <= ? AND outlier = 0 AND rejected_reason IS NULL
         ORDER BY depth DESC, stream_ordering DESC LIMIT ?`,
        roomId,
        query.maxDepth,
        query.limit,
      ).map(toStoredEvent);
    });
  }

  // --- state groups ---

  createStateGroup(
    roomId: string,
    prevGroup: number | null,
    delta: ReadonlyMap<StateKey, string | null>,
  ): Promise<number> {
    return this.op(() => {
      let entries: Iterable<[StateKey, string | null]> = delta;
      let deltaBase: number | null = null;
      let chainLength = 0;
      if (prevGroup !== null) {
        const prev = this.get<{ room_id: string; chain_length: number }>(
          "SELECT room_id, chain_length FROM state_groups WHERE id = ?",
          prevGroup,
        );
        if (prev === undefined) throw new StorageError("not-found", `unknown state group ${prevGroup}`);
        if (prev.room_id !== roomId) {
          throw new StorageError("invalid-argument", `state group ${prevGroup} belongs to ${prev.room_id}, not ${roomId}`);
        }
        if (prev.chain_length + 1 >= STATE_GROUP_SNAPSHOT_INTERVAL) {
          const full = new Map(this.resolveStateGroup(prevGroup));
          for (const [key, eventId] of delta) {
            if (eventId === null) full.delete(key);
            else full.set(key, eventId);
          }
          entries = full;
        } else {
          deltaBase = prevGroup;
          chainLength = prev.chain_length + 1;
        }
      }
      const group = this.get<{ id: number }>(
        "INSERT INTO state_groups (room_id, prev_group, delta_base, chain_length) VALUES (?, ?, ?, ?) RETURNING id",
        roomId,
        prevGroup,
        deltaBase,
        chainLength,
      );
      if (group === undefined) throw new StorageError("corrupt", "INSERT ... RETURNING returned no row");
      const rows: [StateKey, string | null][] = [];
      for (const [key, eventId] of entries) {
        // A snapshot holds only present keys; a removal only means something in a delta.
        if (eventId !== null || deltaBase !== null) rows.push([key, eventId]);
      }
      if (rows.length > 0) {
        this.run(
          `INSERT INTO state_group_entries (group_id, state_key, event_id)
           SELECT ?, value ->> 0, value ->> 1 FROM json_each(?)`,
          group.id,
          JSON.stringify(rows),
        );
      }
      return group.id;
    });
  }

  getStateGroup(groupId: number): Promise<Map<StateKey, string>> {
    return this.op(() => new Map(this.resolveStateGroup(groupId)));
  }

  /** The full state of a group: from the cache, or by applying its delta chain. */
  private resolveStateGroup(groupId: number): ReadonlyMap<StateKey, string> {
    const cached = this.s.cachedStateGroup(groupId);
    if (cached !== undefined) return cached;
    // The chain from the group back to its snapshot (at most the snapshot interval long).
    const chain = this.all<{ id: number; delta_base: number | null }>(
      `WITH RECURSIVE chain(id, delta_base, n) AS (
         SELECT id, delta_base, 0 FROM state_groups WHERE id = ?
         UNION ALL
         SELECT g.id, g.delta_base, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.delta_base
         WHERE c.n < ?
       )
       SELECT id, delta_base FROM chain ORDER BY n`,
      groupId,
      STATE_GROUP_SNAPSHOT_INTERVAL + 1,
    );
    if (chain.length === 0) throw new StorageError("not-found", `unknown state group ${groupId}`);
    // Stop at the newest group already resolved in memory, else at the snapshot.
    let base: ReadonlyMap<StateKey, string> | undefined;
    let needed = chain.length;
    for (let i = 1; i < chain.length; i++) {
      const hit = this.s.cachedStateGroup(chain[i]?.id ?? -1);
      if (hit !== undefined) {
        base = hit;
        needed = i;
        break;
      }
    }
    const last = chain[needed - 1];
    if (base === undefined && last?.delta_base !== null) {
      throw new StorageError("corrupt", `state group ${groupId} has no snapshot within ${chain.length} groups`);
    }
    const ids = chain.slice(0, needed).map((link) => link.id);
    const rows = this.s
      .stmt(
        `SELECT group_id, state_key, event_id FROM state_group_entries
         WHERE group_id IN (SELECT value FROM json_each(?))`,
        "raw",
      )
      .all(JSON.stringify(ids)) as [number, StateKey, string | null][];
    const byGroup = new Map<number, [StateKey, string | null][]>();
    for (const row of rows) {
      let list = byGroup.get(row[0]);
      if (list === undefined) byGroup.set(row[0], (list = []));
      list.push([row[1], row[2]]);
    }
    const state = new Map(base);
    // Oldest first: the snapshot (or cached base), then each delta towards the group.
    for (let i = ids.length - 1; i >= 0; i--) {
      for (const [key, eventId] of byGroup.get(ids[i] ?? -1) ?? []) {
        if (eventId === null) state.delete(key);
        else state.set(key, eventId);
      }
    }
    this.s.cacheStateGroup(groupId, state);
    return state;
  }

  // --- room heads ---

  getForwardExtremities(roomId: string): Promise<string[]> {
    return this.op(() =>
      this.pluck<string>("SELECT event_id FROM forward_extremities WHERE room_id = ? ORDER BY event_id", roomId),
    );
  }

  setForwardExtremities(roomId: string, eventIds: Iterable<string>): Promise<void> {
    return this.op(() => {
      this.run("DELETE FROM forward_extremities WHERE room_id = ?", roomId);
      this.run(
        "INSERT INTO forward_extremities (room_id, event_id) SELECT ?, value FROM json_each(?)",
        roomId,
        idArray(eventIds),
      );
    });
  }

  getCurrentStateGroup(roomId: string): Promise<number | undefined> {
    return this.op(
      () =>
        this.get<{ state_group: number }>("SELECT state_group FROM room_current_state WHERE room_id = ?", roomId)
          ?.state_group,
    );
  }

  setCurrentStateGroup(roomId: string, groupId: number): Promise<void> {
    return this.op(() => {
      this.run(
        `INSERT INTO room_current_state (room_id, state_group) VALUES (?, ?)
         ON CONFLICT (room_id) DO UPDATE SET state_group = excluded.state_group`,
        roomId,
        groupId,
      );
    });
  }

  // --- pending invites ---

  putPendingInvite(invite: PendingInviteRow): Promise<void> {
    return this.op(() => {
      this.run(
        `INSERT INTO pending_invites (room_id, user_id, event_id, sender, room_state, received_ts) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (room_id, user_id) DO UPDATE SET event_id = excluded.event_id, sender = excluded.sender,
           room_state = excluded.room_state, received_ts = excluded.received_ts`,
        invite.roomId,
        invite.userId,
        invite.eventId,
        invite.sender,
        invite.roomState,
        invite.receivedTs,
      );
    });
  }

  getPendingInvite(roomId: string, userId: string): Promise<PendingInviteRow | undefined> {
    return this.op(() => {
      const row = this.get<PendingInviteRowDb>("SELECT * FROM pending_invites WHERE room_id = ? AND user_id = ?", roomId, userId);
      return row === undefined ? undefined : toPendingInvite(row);
    });
  }

  listPendingInvites(userId: string): Promise<PendingInviteRow[]> {
    return this.op(() =>
      this.all<PendingInviteRowDb>("SELECT * FROM pending_invites WHERE user_id = ? ORDER BY room_id", userId).map(toPendingInvite),
    );
  }

  deletePendingInvite(roomId: string, userId: string): Promise<boolean> {
    return this.op(() => this.run("DELETE FROM pending_invites WHERE room_id = ? AND user_id = ?", roomId, userId).changes > 0);
  }

  // --- users ---

  createUser(user: NewUser): Promise<void> {
    return this.op(() => {
      this.run(
        "INSERT INTO users (user_id, created_ts, password_hash) VALUES (?, ?, ?)",
        user.userId,
        user.createdTs,
        user.passwordHash ?? null,
      );
    });
  }

  getUser(userId: string): Promise<UserRow | undefined> {
    return this.op(() => {
      const row = this.get<{ user_id: string; created_ts: number; password_hash: string | null }>(
        "SELECT user_id, created_ts, password_hash FROM users WHERE user_id = ?",
        userId,
      );
      return row === undefined
        ? undefined
        : { userId: row.user_id, createdTs: row.created_ts, passwordHash: row.password_hash };
    });
  }

  createAccessToken(token: NewAccessToken): Promise<void> {
    return this.op(() => {
      this.run(
        "INSERT INTO access_tokens (token, user_id, device_id, created_ts) VALUES (?, ?, ?, ?)",
        token.token,
        token.userId,
        token.deviceId,
        token.createdTs,
      );
    });
  }

  getAccessToken(token: string): Promise<AccessTokenOwner | undefined> {
    return this.op(() => {
      const row = this.get<{ user_id: string; device_id: string }>(
        "SELECT user_id, device_id FROM access_tokens WHERE token = ?",
        token,
      );
      return row === undefined ? undefined : { userId: row.user_id, deviceId: row.device_id };
    });
  }

  deleteAccessToken(token: string): Promise<boolean> {
    return this.op(() => this.run("DELETE FROM access_tokens WHERE token = ?", token).changes > 0);
  }

  getProfile(userId: string): Promise<Profile | undefined> {
    return this.op(() => {
      const row = this.get<{ displayname: string | null; avatar_url: string | null }>(
        "SELECT displayname, avatar_url FROM users WHERE user_id = ?",
        userId,
      );
      return row === undefined ? undefined : { displayname: row.displayname, avatarUrl: row.avatar_url };
    });
  }

  setProfile(userId: string, profile: Partial<Profile>): Promise<void> {
    return this.op(() => {
      const result = this.run(
        `UPDATE users SET
           displayname = CASE WHEN ? THEN ? ELSE displayname END,
           avatar_url = CASE WHEN ? THEN ? ELSE avatar_url END
         WHERE user_id = ?`,
        "displayname" in profile ? 1 : 0,
        profile.displayname ?? null,
        "avatarUrl" in profile ? 1 : 0,
        profile.avatarUrl ?? null,
        userId,
      );
      if (result.changes === 0) throw new StorageError("not-found", `unknown user ${userId}`);
    });
  }

  // --- aliases ---

  putAlias(alias: string, roomId: string, creator: string): Promise<void> {
    return this.op(() => {
      this.run("INSERT INTO room_aliases (alias, room_id, creator) VALUES (?, ?, ?)", alias, roomId, creator);
    });
  }

  getAlias(alias: string): Promise<AliasRow | undefined> {
    return this.op(() => {
      const row = this.get<{ alias: string; room_id: string; creator: string }>(
        "SELECT alias, room_id, creator FROM room_aliases WHERE alias = ?",
        alias,
      );
      return row === undefined ? undefined : { alias: row.alias, roomId: row.room_id, creator: row.creator };
    });
  }

  deleteAlias(alias: string): Promise<boolean> {
    return this.op(() => this.run("DELETE FROM room_aliases WHERE alias = ?", alias).changes > 0);
  }

  listAliases(roomId: string): Promise<string[]> {
    return this.op(() =>
      this.pluck<string>("SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias", roomId),
    );
  }

  // --- client transaction IDs ---

  getClientTxn(userId: string, deviceId: string, txnId: string): Promise<string | undefined> {
    return this.op(
      () =>
        this.get<{ event_id: string }>(
          "SELECT event_id FROM client_txns WHERE user_id = ? AND device_id = ? AND txn_id = ?",
          userId,
          deviceId,
          txnId,
        )?.event_id,
    );
  }

  putClientTxn(txn: ClientTxn): Promise<void> {
    return this.op(() => {
      this.run(
        "INSERT INTO client_txns (user_id, device_id, txn_id, event_id, ts) VALUES (?, ?, ?, ?, ?)",
        txn.userId,
        txn.deviceId,
        txn.txnId,
        txn.eventId,
        txn.ts,
      );
    });
  }

  // --- inbound federation ---

  getReceivedTransaction(origin: string, txnId: string): Promise<string | undefined> {
    return this.op(
      () =>
        this.get<{ response: string }>(
          "SELECT response FROM received_transactions WHERE origin = ? AND txn_id = ?",
          origin,
          txnId,
        )?.response,
    );
  }

  putReceivedTransaction(origin: string, txnId: string, response: string, ts: number): Promise<boolean> {
    return this.op(
      () =>
        this.run(
          "INSERT OR IGNORE INTO received_transactions (origin, txn_id, response, ts) VALUES (?, ?, ?, ?)",
          origin,
          txnId,
          response,
          ts,
        ).changes > 0,
    );
  }

  pruneReceivedTransactions(beforeTs: number): Promise<number> {
    return this.op(() => this.run("DELETE FROM received_transactions WHERE ts < ?", beforeTs).changes);
  }

  stagePdu(pdu: NewStagedPdu): Promise<number> {
    return this.op(() => {
      if (pdu.eventId !== null) {
        const existing = this.get<{ id: number }>(
          "SELECT id FROM staged_pdus WHERE room_id = ? AND event_id = ?",
          pdu.roomId,
          pdu.eventId,
        );
        if (existing !== undefined) return existing.id;
      }
      const row = this.get<{ id: number }>(
        "INSERT INTO staged_pdus (origin, room_id, event_id, json, received_ts) VALUES (?, ?, ?, ?, ?) RETURNING id",
        pdu.origin,
        pdu.roomId,
        pdu.eventId,
        pdu.json,
        pdu.receivedTs,
      );
      if (row === undefined) throw new StorageError("corrupt", "INSERT ... RETURNING returned no row");
      return row.id;
    });
  }

  listStagedRooms(): Promise<string[]> {
    return this.op(() => this.pluck<string>("SELECT DISTINCT room_id FROM staged_pdus ORDER BY room_id"));
  }

  nextStagedPdus(roomId: string, limit: number): Promise<StagedPdu[]> {
    return this.op(() => {
      checkLimit(limit, "limit");
      return this.all<{
        id: number;
        origin: string;
        room_id: string;
        event_id: string | null;
        json: string;
        received_ts: number;
      }>("SELECT * FROM staged_pdus WHERE room_id = ? ORDER BY id LIMIT ?", roomId, limit).map((row) => ({
        id: row.id,
        origin: row.origin,
        roomId: row.room_id,
        eventId: row.event_id,
        json: row.json,
        receivedTs: row.received_ts,
      }));
    });
  }

  deleteStagedPdu(id: number): Promise<boolean> {
    return this.op(() => this.run("DELETE FROM staged_pdus WHERE id = ?", id).changes > 0);
  }

  countStagedPdus(roomId?: string): Promise<number> {
    return this.op(() => {
      const row =
        roomId === undefined
          ? this.get<{ n: number }>("SELECT COUNT(*) AS n FROM staged_pdus")
          : this.get<{ n: number }>("SELECT COUNT(*) AS n FROM staged_pdus WHERE room_id = ?", roomId);
      return row?.n ?? 0;
    });
  }

  tryAcquireLease(name: string, holder: string, untilTs: number): Promise<boolean> {
    return this.op(
      () =>
        // One statement: insert, or take over when we already hold it or it has expired.
        this.run(
          `INSERT INTO leases (name, holder, until_ts) VALUES (?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ts = excluded.until_ts
           WHERE leases.holder = excluded.holder OR leases.until_ts <= ?`,
          name,
          holder,
          untilTs,
          this.s.now(),
        ).changes > 0,
    );
  }

  releaseLease(name: string, holder: string): Promise<boolean> {
    return this.op(() => this.run("DELETE FROM leases WHERE name = ? AND holder = ?", name, holder).changes > 0);
  }

  getLease(name: string): Promise<Lease | undefined> {
    return this.op(() => {
      const row = this.get<{ name: string; holder: string; until_ts: number }>(
        "SELECT name, holder, until_ts FROM leases WHERE name = ?",
        name,
      );
      return row === undefined ? undefined : { name: row.name, holder: row.holder, untilTs: row.until_ts };
    });
  }

  // --- outbound federation ---

  enqueueOutbound(destination: string, item: OutboundItemInput): Promise<number> {
    return this.op(() => {
      const row = this.get<{ id: number }>(
        `INSERT INTO outbound_queue (destination, kind, event_id, json, volatile, enqueued_ts)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
        destination,
        item.kind,
        item.kind === "pdu" ? item.eventId : null,
        item.kind === "edu" ? item.json : null,
        item.kind === "edu" && item.volatile === true ? 1 : 0,
        this.s.now(),
      );
      if (row === undefined) throw new StorageError("corrupt", "INSERT ... RETURNING returned no row");
      return row.id;
    });
  }

  peekOutbound(destination: string, limits: OutboundLimits): Promise<OutboundItem[]> {
    return this.op(() => {
      checkLimit(limits.maxPdus, "maxPdus");
      checkLimit(limits.maxEdus, "maxEdus");
      const sql = "SELECT * FROM outbound_queue WHERE destination = ? AND kind = ? ORDER BY id LIMIT ?";
      const rows = [
        ...this.all<OutboundRowDb>(sql, destination, "pdu", limits.maxPdus),
        ...this.all<OutboundRowDb>(sql, destination, "edu", limits.maxEdus),
      ];
      rows.sort((a, b) => a.id - b.id);
      return rows.map(toOutboundItem);
    });
  }

  deleteOutbound(ids: Iterable<number>): Promise<number> {
    return this.op(
      () => this.run("DELETE FROM outbound_queue WHERE id IN (SELECT value FROM json_each(?))", idArray(ids)).changes,
    );
  }

  dropVolatileOutbound(destination: string): Promise<number> {
    return this.op(
      () =>
        this.run("DELETE FROM outbound_queue WHERE destination = ? AND kind = 'edu' AND volatile = 1", destination)
          .changes,
    );
  }

  countOutbound(destination: string): Promise<number> {
    return this.op(
      () =>
        this.get<{ n: number }>("SELECT COUNT(*) AS n FROM outbound_queue WHERE destination = ?", destination)?.n ?? 0,
    );
  }

  getDestination(destination: string): Promise<DestinationState | undefined> {
    return this.op(() => {
      const row = this.get<{ failures: number; retry_at_ts: number | null; last_success_ts: number | null }>(
        "SELECT failures, retry_at_ts, last_success_ts FROM destinations WHERE destination = ?",
        destination,
      );
      return row === undefined
        ? undefined
        : { failures: row.failures, retryAtTs: row.retry_at_ts, lastSuccessTs: row.last_success_ts };
    });
  }

  setDestination(destination: string, state: Partial<DestinationState>): Promise<void> {
    return this.op(() => {
      const has = (key: keyof DestinationState): number => (key in state ? 1 : 0);
      this.run(
        `INSERT INTO destinations (destination, failures, retry_at_ts, last_success_ts) VALUES (?, ?, ?, ?)
         ON CONFLICT (destination) DO UPDATE SET
           failures = CASE WHEN ? THEN excluded.failures ELSE failures END,
           retry_at_ts = CASE WHEN ? THEN excluded.retry_at_ts ELSE retry_at_ts END,
           last_success_ts = CASE WHEN ? THEN excluded.last_success_ts ELSE last_success_ts END`,
        destination,
        state.failures ?? 0,
        state.retryAtTs ?? null,
        state.lastSuccessTs ?? null,
        has("failures"),
        has("retryAtTs"),
        has("lastSuccessTs"),
      );
    });
  }

  listDestinationsDue(nowTs: number): Promise<string[]> {
    return this.op(() =>
      this.pluck<string>(
        `SELECT q.destination FROM (SELECT DISTINCT destination FROM outbound_queue) q
         LEFT JOIN destinations d ON d.destination = q.destination
         WHERE d.retry_at_ts IS NULL OR d.retry_at_ts <= ?
         ORDER BY q.destination`,
        nowTs,
      ),
    );
  }
}
