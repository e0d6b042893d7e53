// Helpers for the storage tests (not part of the storage API): real SQLite files in a
// temporary directory, and event rows with defaults.
import { join } from "node:path";
import { temporaryDirectory } from "../../test-helpers.js";
import type { NewEvent, Storage } from "../storage.js";
import type { SqliteStorageOptions } from "./sqlite-storage.js";
import { openSqliteStorage } from "./sqlite-storage.js";

/** A path for a new database file in a fresh temporary directory. */
export async function temporaryDatabasePath(): Promise<string> {
  return join(await temporaryDirectory(), "myelin.db");
}

/** Opens a new database file; remember to close it (see {@link withStorage}). */
export async function openTemporaryStorage(
  options: SqliteStorageOptions = {},
): Promise<{ storage: Storage; path: string }> {
  const path = await temporaryDatabasePath();
  return { storage: await openSqliteStorage(path, options), path };
}

/** Runs `fn` over a new database file, closing it afterwards. */
export async function withStorage<T>(
  fn: (storage: Storage, path: string) => Promise<T>,
  options: SqliteStorageOptions = {},
): Promise<T> {
  const { storage, path } = await openTemporaryStorage(options);
  try {
    return await fn(storage, path);
  } finally {
    await storage.close();
  }
}

/** An event row with plausible defaults; `json` is derived unless given. */
export function newEvent(eventId: string, overrides: Partial<NewEvent> = {}): NewEvent {
  const base = {
    eventId,
    roomId: "!room:example.org",
    type: "m.room.message",
    stateKey: null,
    sender: "@alice:example.org",
    depth: 1,
    originServerTs: 1_000,
    prevEvents: [],
    authEvents: [],
    outlier: false,
    receivedTs: 2_000,
    ...overrides,
  };
  return { json: overrides.json ?? JSON.stringify({ event_id: eventId, type: base.type }), ...base };
}
