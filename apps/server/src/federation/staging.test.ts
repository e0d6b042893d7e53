import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../log.js";
import { openTemporaryStorage } from "../storage/sqlite/test-fixtures.js";
import type { StagedPdu, Storage } from "../storage/storage.js";
import { openSqliteStorage } from "../storage/storage.js";
import { removeTemporaryDirectories } from "../test-helpers.js";
import { StagingWorker } from "./inbound.js";
import { eventually } from "./test-support.js";

afterAll(removeTemporaryDirectories);

async function stage(storage: Storage, roomId: string, ids: readonly string[]): Promise<void> {
  await storage.transaction(async (tx) => {
    for (const id of ids) await tx.stagePdu({ origin: "o.test", roomId, eventId: id, json: "{}", receivedTs: 0 });
  });
}

function worker(storage: Storage, process: (pdu: StagedPdu) => Promise<void>, holder = "w1"): StagingWorker {
  return new StagingWorker({ storage, process, logger: silentLogger, now: Date.now, holder, rescanIntervalMs: 50, maxAttempts: 2 });
}

describe("the staging worker", () => {
  it("processes what an earlier run staged, per room in arrival order, and empties staging (D2)", async () => {
    const opened = await openTemporaryStorage();
    await stage(opened.storage, "!a:o.test", ["$1", "$2", "$3"]);
    await stage(opened.storage, "!b:o.test", ["$4"]);
    await opened.storage.close(); // as if the process died after acknowledging them

    const storage = await openSqliteStorage(opened.path);
    const seen: string[] = [];
    const staging = worker(storage, async (pdu) => {
      seen.push(`${pdu.roomId} ${pdu.eventId}`);
    });
    staging.start();
    await eventually(async () => (await storage.transaction((tx) => tx.countStagedPdus())) === 0, 5_000, "staging to empty");
    await staging.stop();
    expect(seen.filter((s) => s.startsWith("!a"))).toEqual(["!a:o.test $1", "!a:o.test $2", "!a:o.test $3"]);
    expect(seen).toContain("!b:o.test $4");
    await storage.close();
  });

  it("never lets two workers process one room at once (lease)", async () => {
    const { storage } = await openTemporaryStorage();
    await stage(storage, "!a:o.test", ["$1", "$2", "$3", "$4"]);
    let active = 0;
    let overlap = false;
    const process = async (): Promise<void> => {
      active++;
      if (active > 1) overlap = true;
      await new Promise((resolve) => setTimeout(resolve, 20));
      active--;
    };
    const first = worker(storage, process, "w1");
    const second = worker(storage, process, "w2");
    first.start();
    second.start();
    await eventually(async () => (await storage.transaction((tx) => tx.countStagedPdus())) === 0, 5_000, "staging to empty");
    await Promise.all([first.stop(), second.stop()]);
    expect(overlap).toBe(false);
    await storage.close();
  });

  it("retries a PDU whose processing fails, then drops it and goes on", async () => {
    const { storage } = await openTemporaryStorage();
    await stage(storage, "!a:o.test", ["$bad", "$good"]);
    const attempts: string[] = [];
    const staging = worker(storage, async (pdu) => {
      attempts.push(pdu.eventId ?? "");
      if (pdu.eventId === "$bad") throw new Error("boom");
    });
    staging.start();
    await eventually(async () => (await storage.transaction((tx) => tx.countStagedPdus())) === 0, 5_000, "staging to empty");
    await staging.stop();
    expect(attempts).toEqual(["$bad", "$bad", "$good"]);
    await storage.close();
  });
});
