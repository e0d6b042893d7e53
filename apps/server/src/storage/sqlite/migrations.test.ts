import { writeFile } from "node:fs/promises";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../../test-helpers.js";
import { StorageError } from "../storage-error.js";
import { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION } from "./migrations.js";
import { openSqliteStorage } from "./sqlite-storage.js";
import { temporaryDatabasePath } from "./test-fixtures.js";

afterAll(removeTemporaryDirectories);

/** Reads `schema_version` and the table names straight from the file. */
function inspect(path: string): { version: number[]; tables: string[]; journal: unknown } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      version: db.prepare("SELECT version FROM schema_version").pluck().all() as number[],
      tables: db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[],
      journal: db.pragma("journal_mode", { simple: true }),
    };
  } finally {
    db.close();
  }
}

async function openFailure(path: string, migrations?: readonly string[]): Promise<unknown> {
  try {
    const storage = await openSqliteStorage(path, migrations === undefined ? {} : { migrations });
    await storage.close();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("schema migrations", () => {
  it("creates the whole schema in an empty file, in WAL mode, and records its version", async () => {
    const path = await temporaryDatabasePath();
    const storage = await openSqliteStorage(path);
    await storage.close();
    const found = inspect(path);
    expect(found.version).toEqual([SQLITE_SCHEMA_VERSION]);
    expect(found.journal).toBe("wal");
    for (const table of ["events", "event_edges", "state_groups", "state_group_entries", "staged_pdus", "leases"]) {
      expect(found.tables).toContain(table);
    }
  });

  it("upgrades a version-1 database: backfill positions start below 0, and stored invites become pending invites", async () => {
    const path = await temporaryDatabasePath();
    const v1 = await openSqliteStorage(path, { migrations: SQLITE_MIGRATIONS.slice(0, 1) });
    const member = (eventId: string, membership: string, depth: number, userId = "@u:here", unsigned?: unknown) => ({
      eventId,
      roomId: "!r:there",
      json: JSON.stringify({ type: "m.room.member", state_key: userId, sender: "@s:there", content: { membership }, ...(unsigned === undefined ? {} : { unsigned }) }),
      type: "m.room.member",
      stateKey: userId,
      sender: "@s:there",
      depth,
      originServerTs: 1,
      prevEvents: [],
      authEvents: [],
      outlier: true,
      receivedTs: 7,
    });
    await v1.transaction(async (tx) => {
      await tx.createUser({ userId: "@u:here", createdTs: 0 });
      await tx.createUser({ userId: "@gone:here", createdTs: 0 });
      await tx.insertEvent(member("$invite", "invite", 5, "@u:here", { invite_room_state: [{ type: "m.room.name", state_key: "", content: { name: "R" } }] }));
      // Rejected through the inviting server afterwards: not pending.
      await tx.insertEvent(member("$old-invite", "invite", 5, "@gone:here"));
      await tx.insertEvent(member("$leave", "leave", 6, "@gone:here"));
      // Not a local user.
      await tx.insertEvent(member("$remote", "invite", 5, "@x:elsewhere"));
    });
    await v1.close();
    const storage = await openSqliteStorage(path);
    try {
      await storage.transaction(async (tx) => {
        expect(await tx.getPendingInvite("!r:there", "@u:here")).toEqual({
          roomId: "!r:there",
          userId: "@u:here",
          eventId: "$invite",
          sender: "@s:there",
          roomState: JSON.stringify([{ type: "m.room.name", state_key: "", content: { name: "R" } }]),
          receivedTs: 7,
        });
        expect(await tx.listPendingInvites("@gone:here")).toEqual([]);
        expect(await tx.listPendingInvites("@x:elsewhere")).toEqual([]);
        expect(await tx.reserveBackfillOrderings(1)).toBe(-1);
      });
    } finally {
      await storage.close();
    }
  });

  it("upgrades a version-2 database: an index in the timeline's (depth, stream ordering) order replaces the depth index", async () => {
    const path = await temporaryDatabasePath();
    const v2 = await openSqliteStorage(path, { migrations: SQLITE_MIGRATIONS.slice(0, 2) });
    const event = (eventId: string, depth: number, streamOrdering?: number) => ({
      eventId,
      roomId: "!r:here",
      json: "{}",
      type: "m.room.message",
      stateKey: null,
      sender: "@u:here",
      depth,
      originServerTs: 1,
      prevEvents: [],
      authEvents: [],
      outlier: false,
      receivedTs: 1,
      ...(streamOrdering === undefined ? {} : { streamOrdering }),
    });
    await v2.transaction(async (tx) => {
      await tx.insertEvent(event("$live", 1));
      await tx.insertEvent(event("$later", 9));
      await tx.insertEvent(event("$backfilled", 5, await tx.reserveBackfillOrderings(1)));
    });
    await v2.close();
    const storage = await openSqliteStorage(path);
    try {
      const ids = await storage.transaction(async (tx) => (await tx.getRoomTimeline("!r:here", { dir: "f", limit: 10 })).map((e) => e.eventId));
      expect(ids).toEqual(["$live", "$backfilled", "$later"]);
    } finally {
      await storage.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      const indexes = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events'").pluck().all();
      expect(indexes).toContain("events_room_topological");
      expect(indexes).not.toContain("events_room_depth");
    } finally {
      db.close();
    }
  });

  it("opens an up-to-date database again without re-running any step", async () => {
    const path = await temporaryDatabasePath();
    await (await openSqliteStorage(path)).close();
    // Every step creates tables, so running one twice would fail.
    await (await openSqliteStorage(path)).close();
    expect(inspect(path).version).toEqual([SQLITE_SCHEMA_VERSION]);
  });

  it("applies only the steps a database is missing, in order", async () => {
    const path = await temporaryDatabasePath();
    const steps = ["CREATE TABLE a (x INTEGER) STRICT; INSERT INTO a VALUES (1);", "INSERT INTO a VALUES (2);"];
    await (await openSqliteStorage(path, { migrations: steps.slice(0, 1) })).close();
    expect(inspect(path).version).toEqual([1]);
    await (await openSqliteStorage(path, { migrations: steps })).close();
    await (await openSqliteStorage(path, { migrations: steps })).close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare("SELECT x FROM a ORDER BY rowid").pluck().all()).toEqual([1, 2]);
      expect(db.prepare("SELECT version FROM schema_version").pluck().all()).toEqual([2]);
    } finally {
      db.close();
    }
  });

  it("rolls a failing step back whole and leaves the version where it was", async () => {
    const path = await temporaryDatabasePath();
    const steps = ["CREATE TABLE a (x INTEGER) STRICT;", "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO missing VALUES (1);"];
    const error = await openFailure(path, steps);
    expect(error).toBeInstanceOf(Error);
    const found = inspect(path);
    expect(found.version).toEqual([1]);
    expect(found.tables).toContain("a");
    expect(found.tables).not.toContain("b");
  });

  it("refuses a database written by a newer schema version, changing nothing", async () => {
    const path = await temporaryDatabasePath();
    await (await openSqliteStorage(path)).close();
    const db = new Database(path);
    db.prepare("UPDATE schema_version SET version = ?").run(SQLITE_MIGRATIONS.length + 1);
    db.close();
    const error = await openFailure(path);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).reason).toBe("schema-too-new");
    expect(inspect(path).version).toEqual([SQLITE_MIGRATIONS.length + 1]);
  });

  it("reports a file that is not a database as corrupt", async () => {
    const path = await temporaryDatabasePath();
    await writeFile(path, "this is not an SQLite database, just some text padding it out ".repeat(100));
    const error = await openFailure(path);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).reason).toBe("corrupt");
  });

  it("reports a schema_version table with several rows as corrupt", async () => {
    const path = await temporaryDatabasePath();
    await (await openSqliteStorage(path)).close();
    const db = new Database(path);
    db.prepare("INSERT INTO schema_version (version) VALUES (1)").run();
    db.close();
    const error = await openFailure(path);
    expect((error as StorageError).reason).toBe("corrupt");
  });
});
