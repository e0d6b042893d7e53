/**
 * Versioned schema migrations of the SQLite backend. The database records the number of
 * migrations applied in `schema_version`; opening applies the missing ones in order, each in
 * its own transaction, and refuses a database that records more than this code knows (it
 * was written by a newer server; running on it could corrupt data the new code relies on).
 *
 * Migrations are append-only: a released step is never edited, a change is a new step.
 *
 * @module
 */

import type BetterSqlite3 from "better-sqlite3";
import { StorageError } from "../storage-error.js";

/**
 * The ordered migration steps; step `i` (0-based) takes the schema from version `i` to
 * `i + 1`. Tables are STRICT so a wrongly typed value fails loudly instead of being stored.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  // Version 1: the initial schema.
  `
  CREATE TABLE rooms (
    room_id      TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator      TEXT NOT NULL,
    created_ts   INTEGER NOT NULL,
    is_public    INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE INDEX rooms_public ON rooms (is_public, room_id);

  -- Monotonic counters (stream ordering). A row, not MAX()+1, so a number is never reused
  -- even if events are purged one day.
  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;
  INSERT INTO counters (name, value) VALUES ('stream', 0);

  -- State groups: a delta over delta_base, or a full snapshot when delta_base is NULL.
  -- chain_length counts the deltas since the snapshot, which bounds how many groups a read
  -- visits. prev_group is the logical predecessor, kept even where a snapshot was stored.
  CREATE TABLE state_groups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id      TEXT NOT NULL,
    prev_group   INTEGER REFERENCES state_groups (id),
    delta_base   INTEGER REFERENCES state_groups (id),
    chain_length INTEGER NOT NULL
  ) STRICT;
  -- event_id NULL in a delta removes the key.
  CREATE TABLE state_group_entries (
    group_id  INTEGER NOT NULL REFERENCES state_groups (id),
    state_key TEXT NOT NULL,
    event_id  TEXT,
    PRIMARY KEY (group_id, state_key)
  ) STRICT, WITHOUT ROWID;

  -- Events as received: json is the exact text; the other columns are extracted from it
  -- (prev/auth lists as JSON arrays, so a row rebuilds a StoredEvent without a join).
  CREATE TABLE events (
    event_id           TEXT PRIMARY KEY,
    room_id            TEXT NOT NULL,
    json               TEXT NOT NULL,
    type               TEXT NOT NULL,
    state_key          TEXT,
    sender             TEXT NOT NULL,
    depth              INTEGER NOT NULL,
    origin_server_ts   INTEGER NOT NULL,
    prev_events        TEXT NOT NULL,
    auth_events        TEXT NOT NULL,
    rejected_reason    TEXT,
    soft_failed        INTEGER NOT NULL DEFAULT 0,
    outlier            INTEGER NOT NULL,
    state_group_before INTEGER REFERENCES state_groups (id),
    stream_ordering    INTEGER UNIQUE,
    received_ts        INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
  CREATE INDEX events_room_depth ON events (room_id, depth);
  CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);

  -- DAG edges for lookups by target (children, auth chains). kind: 'prev' or 'auth'.
  CREATE TABLE event_edges (
    event_id  TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('prev', 'auth')),
    target_id TEXT NOT NULL,
    PRIMARY KEY (event_id, kind, target_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX event_edges_target ON event_edges (target_id, kind);

  CREATE TABLE forward_extremities (
    room_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE room_current_state (
    room_id     TEXT PRIMARY KEY,
    state_group INTEGER NOT NULL REFERENCES state_groups (id)
  ) STRICT;

  CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    created_ts    INTEGER NOT NULL,
    password_hash TEXT,
    displayname   TEXT,
    avatar_url    TEXT
  ) STRICT;

  CREATE TABLE access_tokens (
    token      TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    device_id  TEXT NOT NULL,
    created_ts INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX access_tokens_user ON access_tokens (user_id);

  CREATE TABLE room_aliases (
    alias   TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
  ) STRICT;
  CREATE INDEX room_aliases_room ON room_aliases (room_id);

  CREATE TABLE client_txns (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    ts        INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
  ) STRICT, WITHOUT ROWID;

  -- /send responses by (origin, txnId), kept ~24 h (pruned by ts).
  CREATE TABLE received_transactions (
    origin   TEXT NOT NULL,
    txn_id   TEXT NOT NULL,
    response TEXT NOT NULL,
    ts       INTEGER NOT NULL,
    PRIMARY KEY (origin, txn_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX received_transactions_ts ON received_transactions (ts);

  -- Signature-checked PDUs acknowledged to the sender but not yet processed.
  CREATE TABLE staged_pdus (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    origin      TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    event_id    TEXT,
    json        TEXT NOT NULL,
    received_ts INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX staged_pdus_room ON staged_pdus (room_id, id);
  CREATE UNIQUE INDEX staged_pdus_event ON staged_pdus (room_id, event_id) WHERE event_id IS NOT NULL;

  -- Named locks shared by every process on this database.
  CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ts INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE outbound_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('pdu', 'edu')),
    event_id    TEXT,
    json        TEXT,
    volatile    INTEGER NOT NULL DEFAULT 0,
    enqueued_ts INTEGER NOT NULL,
    CHECK ((kind = 'pdu' AND event_id IS NOT NULL) OR (kind = 'edu' AND json IS NOT NULL))
  ) STRICT;
  CREATE INDEX outbound_queue_destination ON outbound_queue (destination, kind, id);

  CREATE TABLE destinations (
    destination     TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL DEFAULT 0,
    retry_at_ts     INTEGER,
    last_success_ts INTEGER
  ) STRICT;
  `,
  // Version 2: backfill and pending invites.
  `
  -- Backfilled (older) events are placed below every event so far: their stream orderings
  -- count down from 0 (-1, -2, ...), like Synapse's backfill stream, so that paginating
  -- /messages backwards reaches them after the events this server already had.
  INSERT INTO counters (name, value) VALUES ('backfill', 0);

  -- Invites of local users to rooms this server may not be in: the inviter, and the
  -- stripped state shown with the invite (a copy of what the invite event's unsigned holds).
  CREATE TABLE pending_invites (
    room_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL REFERENCES events (event_id),
    sender      TEXT NOT NULL,
    room_state  TEXT NOT NULL,
    received_ts INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
  ) STRICT;
  CREATE INDEX pending_invites_user ON pending_invites (user_id, room_id);
  -- Invites received before this version were kept only as outlier events: record the
  -- latest one of each local user and room, unless a later membership of theirs is stored.
  INSERT OR IGNORE INTO pending_invites (room_id, user_id, event_id, sender, room_state, received_ts)
  SELECT e.room_id, e.state_key, e.event_id, e.sender,
         COALESCE(json_extract(e.json, '$.unsigned.invite_room_state'), '[]'), e.received_ts
  FROM events e
  WHERE e.type = 'm.room.member' AND e.outlier = 1 AND e.rejected_reason IS NULL
    AND json_extract(e.json, '$.content.membership') = 'invite'
    AND e.state_key IN (SELECT user_id FROM users)
    AND NOT EXISTS (
      SELECT 1 FROM events later
      WHERE later.room_id = e.room_id AND later.type = 'm.room.member' AND later.state_key = e.state_key
        AND later.event_id != e.event_id AND later.depth >= e.depth
    )
  ORDER BY e.depth DESC;
  `,
  // Version 3: the timeline's topological order.
  `
  -- /messages pages the timeline by (depth, stream_ordering), as Synapse pages by
  -- (topological_ordering, stream_ordering): stream order alone lists history backfilled
  -- after a rejoin before what this server saw live earlier. This index serves that order
  -- in both directions; it begins with events_room_depth's columns, which is dropped.
  CREATE INDEX events_room_topological ON events (room_id, depth, stream_ordering);
  DROP INDEX events_room_depth;
  `,
];

/** The schema version this code writes: the number of migration steps it knows. */
export const SQLITE_SCHEMA_VERSION: number = SQLITE_MIGRATIONS.length;

/**
 * Brings the database up to `migrations.length`, one transaction per step. Safe against a
 * second process migrating at the same time: each step re-reads the version under the
 * write lock (BEGIN IMMEDIATE) before applying. Returns the version found before migrating.
 *
 * @throws StorageError `"schema-too-new"` if the database is ahead of `migrations`;
 *   `"corrupt"` if `schema_version` does not hold one integer.
 */
export function migrateSqlite(db: BetterSqlite3.Database, migrations: readonly string[] = SQLITE_MIGRATIONS): number {
  const readVersion = (): number => {
    db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT");
    const rows = db.prepare("SELECT version FROM schema_version").all() as { version: unknown }[];
    if (rows.length === 0) return 0;
    const version = rows[0]?.version;
    if (rows.length > 1 || typeof version !== "number" || !Number.isInteger(version) || version < 0) {
      throw new StorageError("corrupt", "schema_version does not hold exactly one version number");
    }
    return version;
  };
  const inTransaction = <T>(fn: () => T): T => {
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      db.exec("COMMIT");
      return result;
    } catch (error) {
      if (db.inTransaction) db.exec("ROLLBACK");
      throw error;
    }
  };

  const found = inTransaction(readVersion);
  if (found > migrations.length) {
    throw new StorageError(
      "schema-too-new",
      `database schema version ${found} is newer than this server knows (${migrations.length}); upgrade the server`,
    );
  }
  for (let target = found + 1; target <= migrations.length; target++) {
    inTransaction(() => {
      const current = readVersion();
      if (current >= target) return; // another process applied it meanwhile
      db.exec(migrations[target - 1] ?? "");
      if (current === 0) db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(target);
      else db.prepare("UPDATE schema_version SET version = ?").run(target);
    });
  }
  return found;
}
