import Database from "better-sqlite3";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../../test-helpers.js";
import type { StateKey } from "../storage.js";
import { STATE_GROUP_SNAPSHOT_INTERVAL, openSqliteStorage } from "./sqlite-storage.js";
import { temporaryDatabasePath } from "./test-fixtures.js";

afterAll(removeTemporaryDirectories);

const ROOM = "!room:example.org";

/** One createStateGroup call: over the newest group, an older one (by index), or none. */
interface Step {
  readonly base: "newest" | "none" | number;
  readonly delta: [StateKey, string | null][];
}

const deltaArbitrary: fc.Arbitrary<[StateKey, string | null][]> = fc.array(
  fc.tuple(
    fc.integer({ min: 0, max: 15 }).map((n) => JSON.stringify(["m.room.member", `@u${n}:x`])),
    fc.option(fc.integer({ min: 0, max: 999 }).map((n) => `$e${n}`)),
  ),
  { maxLength: 4 },
);

const stepArbitrary: fc.Arbitrary<Step> = fc.record({
  // Mostly extend the newest group, so chains grow past the snapshot interval.
  base: fc.oneof(
    { weight: 20, arbitrary: fc.constant<"newest">("newest") },
    { weight: 1, arbitrary: fc.constant<"none">("none") },
    { weight: 2, arbitrary: fc.nat() },
  ),
  delta: deltaArbitrary,
});

/**
 * A run: first an unbroken chain longer than the snapshot interval (so snapshots and deltas
 * over them are always exercised), then steps branching from anywhere.
 */
const runArbitrary: fc.Arbitrary<Step[]> = fc
  .tuple(
    fc.array(deltaArbitrary, { minLength: STATE_GROUP_SNAPSHOT_INTERVAL + 1, maxLength: 2 * STATE_GROUP_SNAPSHOT_INTERVAL + 20 }),
    fc.array(stepArbitrary, { maxLength: 150, size: "max" }),
  )
  .map(([chain, rest]) => [...chain.map((delta): Step => ({ base: "newest", delta })), ...rest]);

describe("state groups (property)", () => {
  it("read back exactly the model state, through long delta chains, cached or not", async () => {
    await fc.assert(
      fc.asyncProperty(runArbitrary, async (steps) => {
        const path = await temporaryDatabasePath();
        const model = new Map<number, Map<StateKey, string>>();
        const order: number[] = [];
        const storage = await openSqliteStorage(path);
        await storage.transaction(async (tx) => {
          for (const step of steps) {
            const base =
              order.length === 0 || step.base === "none"
                ? null
                : step.base === "newest"
                  ? (order.at(-1) ?? null)
                  : (order[step.base % order.length] ?? null);
            const state = new Map(base === null ? [] : model.get(base));
            const delta = new Map(step.delta);
            for (const [key, eventId] of delta) {
              if (eventId === null) state.delete(key);
              else state.set(key, eventId);
            }
            const id = await tx.createStateGroup(ROOM, base, delta);
            model.set(id, state);
            order.push(id);
            // Read the newest group within the writing transaction too.
            expect(await tx.getStateGroup(id)).toEqual(state);
          }
        });
        await storage.close();
        // A fresh handle without a cache resolves every group from the database alone.
        const cold = await openSqliteStorage(path, { stateGroupCacheSize: 0 });
        const warm = await openSqliteStorage(path, { stateGroupCacheSize: 8 });
        try {
          for (const id of [...order].reverse()) {
            expect(await cold.transaction((tx) => tx.getStateGroup(id))).toEqual(model.get(id));
          }
          for (const id of order) {
            expect(await warm.transaction((tx) => tx.getStateGroup(id))).toEqual(model.get(id));
          }
        } finally {
          await cold.close();
          await warm.close();
        }
      }),
      { numRuns: 12 },
    );
  }, 120_000);

  it("stores a full snapshot every 100 deltas, so no read walks more than 100 groups", async () => {
    const path = await temporaryDatabasePath();
    const storage = await openSqliteStorage(path);
    await storage.transaction(async (tx) => {
      let prev: number | null = null;
      for (let i = 0; i < 350; i++) prev = await tx.createStateGroup(ROOM, prev, new Map([[`k${i % 13}`, `$e${i}`]]));
    });
    await storage.close();
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare("SELECT id, delta_base, chain_length FROM state_groups ORDER BY id").all() as {
        id: number;
        delta_base: number | null;
        chain_length: number;
      }[];
      const snapshots = rows.filter((row) => row.delta_base === null).map((row) => rows.indexOf(row));
      expect(snapshots).toEqual([0, 100, 200, 300]);
      expect(Math.max(...rows.map((row) => row.chain_length))).toBe(STATE_GROUP_SNAPSHOT_INTERVAL - 1);
      // A snapshot holds the full state (13 keys by then), a delta only its change.
      const count = db.prepare("SELECT COUNT(*) FROM state_group_entries WHERE group_id = ?").pluck();
      expect(count.get(rows[100]?.id)).toBe(13);
      expect(count.get(rows[101]?.id)).toBe(1);
    } finally {
      db.close();
    }
  });
});
