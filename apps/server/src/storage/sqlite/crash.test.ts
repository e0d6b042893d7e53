// Crash and multi-process behaviour, with real child processes on a real database file.
import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import { stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories, temporaryDirectory } from "../../test-helpers.js";
import { openSqliteStorage } from "./sqlite-storage.js";

afterAll(removeTemporaryDirectories);

/** apps/server, where `--import tsx` resolves. */
const PACKAGE_DIR = fileURLToPath(new URL("../../../", import.meta.url));
const STORAGE_MODULE = new URL("./sqlite-storage.ts", import.meta.url).href;

// The child: opens the database and runs one scenario, reporting progress on stdout.
const CHILD_SOURCE = `
import { openSqliteStorage } from ${JSON.stringify(STORAGE_MODULE)};
const [path, mode, arg] = process.argv.slice(2);
const storage = await openSqliteStorage(path);
const filler = "x".repeat(2048);
const event = (eventId) => ({
  eventId, roomId: "!room:x", json: JSON.stringify({ eventId, filler }), type: "m.room.message",
  stateKey: null, sender: "@a:x", depth: 1, originServerTs: 1, prevEvents: ["$p"], authEvents: ["$a"],
  outlier: false, receivedTs: 1,
});
if (mode === "hang-mid-transaction") {
  await storage.transaction(async (tx) => {
    for (let i = 0; i < 10; i++) await tx.insertEvent(event("$committed" + i));
  });
  console.log("committed");
  // Keep the process alive while the second transaction stays open.
  setInterval(() => {}, 1000);
  await storage.transaction(async (tx) => {
    // About 12 MB: far more than the page cache, so uncommitted pages spill into the WAL.
    for (let i = 0; i < 6000; i++) {
      await tx.insertEvent(event("$open" + i));
      if (i % 100 === 0) await tx.stagePdu({ origin: "o", roomId: "!room:x", eventId: "$s" + i, json: "{}", receivedTs: 1 });
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await tx.createStateGroup("!room:x", null, new Map([["k", "$open0"]]));
    console.log("mid");
    await new Promise(() => {});
  });
} else if (mode === "batches") {
  setInterval(() => {}, 1000);
  for (let batch = 0; ; batch++) {
    await storage.transaction(async (tx) => {
      for (let i = 0; i < 50; i++) await tx.insertEvent(event("$b" + batch + "-" + i));
      await tx.enqueueOutbound("b.org", { kind: "pdu", eventId: "$b" + batch + "-0" });
    });
    console.log("batch " + batch);
  }
} else if (mode === "lease") {
  const won = await storage.transaction((tx) => tx.tryAcquireLease("room:!r", arg, Date.now() + 60_000));
  console.log(won ? "won" : "lost");
  await storage.close();
}
`;

const written = new Set<string>();

type Child = ChildProcessByStdio<null, Readable, Readable>;

async function startChild(path: string, mode: string, arg = ""): Promise<{ child: Child; lines: string[]; exited: Promise<number | null> }> {
  const script = join(dirname(path), "child.mts");
  if (!written.has(script)) {
    written.add(script);
    await writeFile(script, CHILD_SOURCE);
  }
  const child = spawn(process.execPath, ["--conditions=@myelin/source", "--import", "tsx", script, path, mode, arg], {
    cwd: PACKAGE_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => lines.push(...chunk.split("\n").filter(Boolean)));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      if (code !== null && code !== 0) console.error(stderr);
      resolve(code);
    }),
  );
  return { child, lines, exited };
}

async function waitFor(lines: string[], predicate: (lines: string[]) => boolean, exited: Promise<unknown>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 30_000;
  while (!predicate(lines)) {
    if (done || Date.now() > deadline) throw new Error(`child stopped before expected output; got ${lines.join(" | ")}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("crash safety", () => {
  it("loses the whole open transaction and nothing committed when the process is killed mid-transaction", async () => {
    const path = join(await temporaryDirectory(), "crash.db");
    const { child, lines, exited } = await startChild(path, "hang-mid-transaction");
    await waitFor(lines, (seen) => seen.includes("mid"), exited);
    child.kill("SIGKILL");
    await exited;
    // The open transaction reached the disk (spilled WAL frames without a commit record):
    // recovery has something to throw away.
    expect((await stat(`${path}-wal`)).size).toBeGreaterThan(4_000_000);

    const storage = await openSqliteStorage(path);
    try {
      await storage.transaction(async (tx) => {
        const committed = await tx.hasEvents(Array.from({ length: 10 }, (_, i) => `$committed${i}`));
        expect(committed.size).toBe(10);
        const open = await tx.hasEvents(Array.from({ length: 6000 }, (_, i) => `$open${i}`));
        expect(open.size).toBe(0);
        expect(await tx.countStagedPdus()).toBe(0);
        expect(await tx.getMaxStream()).toBe(10);
        // The stream counter did not move either: the next event follows the committed ones.
        expect((await tx.insertEvent({
          eventId: "$after", roomId: "!room:x", json: "{}", type: "t", stateKey: null, sender: "@a:x", depth: 1,
          originServerTs: 1, prevEvents: [], authEvents: [], outlier: false, receivedTs: 1,
        })).streamOrdering).toBe(11);
      });
    } finally {
      await storage.close();
    }
  }, 60_000);

  it("keeps every acknowledged commit, and each transaction all or nothing, when killed at a random moment", async () => {
    const path = join(await temporaryDirectory(), "batches.db");
    const { child, lines, exited } = await startChild(path, "batches");
    await waitFor(lines, (seen) => seen.length >= 15, exited);
    child.kill("SIGKILL");
    await exited;
    const acknowledged = lines.filter((line) => line.startsWith("batch ")).length;

    const storage = await openSqliteStorage(path);
    try {
      await storage.transaction(async (tx) => {
        for (let batch = 0; batch < acknowledged + 50; batch++) {
          const present = await tx.hasEvents(Array.from({ length: 50 }, (_, i) => `$b${batch}-${i}`));
          if (batch < acknowledged) expect(present.size).toBe(50);
          else expect([0, 50]).toContain(present.size);
        }
        const queued = await tx.countOutbound("b.org");
        expect(queued).toBeGreaterThanOrEqual(acknowledged);
        expect(await tx.getMaxStream()).toBe(queued * 50);
      });
    } finally {
      await storage.close();
    }
  }, 60_000);
});

describe("several processes on one database", () => {
  it("grants a lease to exactly one of several processes racing for it", async () => {
    const dir = await temporaryDirectory();
    const path = join(dir, "lease.db");
    await (await openSqliteStorage(path)).close(); // migrate once, so the racers only race for the lease
    const racers = [await startChild(path, "lease", "p1")];
    racers.push(...(await Promise.all(["p2", "p3"].map((name) => startChild(path, "lease", name)))));
    const codes = await Promise.all(racers.map((racer) => racer.exited));
    expect(codes).toEqual([0, 0, 0]);
    const outcomes = racers.map((racer) => racer.lines.join(""));
    expect(outcomes.filter((line) => line === "won")).toHaveLength(1);
    expect(outcomes.filter((line) => line === "lost")).toHaveLength(2);
    const storage = await openSqliteStorage(path);
    try {
      const winner = ["p1", "p2", "p3"][outcomes.indexOf("won")];
      expect((await storage.transaction((tx) => tx.getLease("room:!r")))?.holder).toBe(winner);
    } finally {
      await storage.close();
    }
  }, 60_000);
});
