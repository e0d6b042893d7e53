import { generateSigningKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { MatrixError } from "@myelin/types";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../log.js";
import { openTemporaryStorage } from "../storage/sqlite/test-fixtures.js";
import type { Storage } from "../storage/storage.js";
import { openSqliteStorage } from "../storage/storage.js";
import { removeTemporaryDirectories } from "../test-helpers.js";
import { retryDelayMs, DEFAULT_BACKOFF } from "./backoff.js";
import { FederationSender, transactionId } from "./sender.js";
import type { FakeServer, TestTls } from "./test-support.js";
import { createTestTls, startFakeServer, testClient } from "./test-support.js";

const ourName = "sender.test";
const ourKey = generateSigningKey("s1");
const keys = new Map([[ourName, ourKey]]);
const roomId = "!room:sender.test";

interface Received {
  txnId: string;
  pdus: JsonObject[];
  edus: JsonObject[];
}

let tls: TestTls;
beforeAll(async () => {
  tls = await createTestTls();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(removeTemporaryDirectories);

async function destination(answer: (txn: Received) => JsonObject | Promise<JsonObject> = () => ({ pdus: {} })): Promise<{ server: FakeServer; received: Received[] }> {
  const received: Received[] = [];
  const server = await startFakeServer(tls, generateSigningKey("d1"), {
    send_transaction_message: {
      v1: async ({ params, body }) => {
        const txn = { txnId: params.txnId, pdus: body.pdus as JsonObject[], edus: (body.edus ?? []) as JsonObject[] };
        received.push(txn);
        return (await answer(txn)) as { pdus: Record<string, never> };
      },
    },
  }, keys);
  cleanups.push(() => server.stop());
  return { server, received };
}

async function storeEvents(storage: Storage, count: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  await storage.transaction(async (tx) => {
    if ((await tx.getRoom(roomId)) === undefined) {
      await tx.insertRoom({ roomId, roomVersion: "10", creator: `@a:${ourName}`, createdTs: 0 });
    }
    for (let i = from; i < from + count; i++) {
      const eventId = `$event${i}`;
      const pdu = { room_id: roomId, type: "m.room.message", sender: `@a:${ourName}`, content: { body: `m${i}` }, depth: i + 1 };
      await tx.insertEvent({
        eventId,
        roomId,
        json: JSON.stringify(pdu),
        type: "m.room.message",
        stateKey: null,
        sender: `@a:${ourName}`,
        depth: i + 1,
        originServerTs: i,
        prevEvents: [],
        authEvents: [],
        outlier: false,
        receivedTs: 0,
      });
      ids.push(eventId);
    }
  });
  return ids;
}

async function newSender(storage: Storage, options: { initialMs?: number; pollIntervalMs?: number } = {}): Promise<FederationSender> {
  const client = testClient(tls, ourName, ourKey);
  const sender = new FederationSender({
    storage,
    client,
    serverName: ourName,
    logger: silentLogger,
    backoff: { initialMs: options.initialMs ?? 200, jitter: [1, 1] },
    pollIntervalMs: options.pollIntervalMs ?? 50,
    requestTimeoutMs: 3_000,
  });
  cleanups.push(async () => {
    await sender.stop();
    client.close();
  });
  return sender;
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function queue(storage: Storage, sender: FederationSender, eventIds: readonly string[], destinations: string[]): Promise<void> {
  await storage.transaction(async (tx) => {
    for (const id of eventIds) await sender.enqueuePdu(tx, id, destinations);
  });
  sender.wake(destinations);
}

describe("the outbound federation queue", () => {
  it("delivers queued PDUs in transactions of at most 50, oldest first, and empties the queue", async () => {
    const { storage } = await openTemporaryStorage();
    cleanups.push(() => storage.close());
    const { server, received } = await destination();
    const sender = await newSender(storage);
    sender.start();
    const ids = await storeEvents(storage, 120);
    await queue(storage, sender, ids, [server.serverName, ourName]);
    await until(() => received.flatMap((t) => t.pdus).length === 120);
    expect(received.map((t) => t.pdus.length)).toEqual([50, 50, 20]);
    expect(received.flatMap((t) => t.pdus).map((p) => (p["content"] as JsonObject)["body"])).toEqual(ids.map((_, i) => `m${i}`));
    await sender.idle();
    expect(await storage.transaction((tx) => tx.countOutbound(server.serverName))).toBe(0);
    expect(await storage.transaction((tx) => tx.countOutbound(ourName))).toBe(0);
  });

  it("retries a failed transaction later under the same transaction ID", async () => {
    const { storage } = await openTemporaryStorage();
    cleanups.push(() => storage.close());
    let failures = 2;
    const { server, received } = await destination(() => {
      if (failures-- > 0) throw new MatrixError("M_UNKNOWN", "try later", { status: 503 });
      return { pdus: {} };
    });
    const sender = await newSender(storage, { initialMs: 100 });
    sender.start();
    await queue(storage, sender, await storeEvents(storage, 3), [server.serverName]);
    await until(() => received.length === 3);
    expect(new Set(received.map((t) => t.txnId)).size).toBe(1);
    await until(async () => (await storage.transaction((tx) => tx.getDestination(server.serverName)))?.failures === 0);
  });

  it("retries a failed destination when its delay is over, without waiting for the next poll", async () => {
    const { storage } = await openTemporaryStorage();
    cleanups.push(() => storage.close());
    let failures = 1;
    const { server, received } = await destination(() => {
      if (failures-- > 0) throw new MatrixError("M_UNKNOWN", "try later", { status: 503 });
      return { pdus: {} };
    });
    // A poll every minute: only the retry timer can resend within the test's few seconds.
    const sender = await newSender(storage, { initialMs: 100, pollIntervalMs: 60_000 });
    sender.start();
    await queue(storage, sender, await storeEvents(storage, 1), [server.serverName]);
    await until(() => received.length === 2, 3_000);
    await until(async () => (await storage.transaction((tx) => tx.countOutbound(server.serverName))) === 0);
  });

  it("backs off exponentially and persists the schedule", async () => {
    const { storage } = await openTemporaryStorage();
    cleanups.push(() => storage.close());
    const { server } = await destination(() => {
      throw new MatrixError("M_UNKNOWN", "down", { status: 500 });
    });
    const sender = await newSender(storage, { initialMs: 60_000 });
    sender.start();
    const before = Date.now();
    await queue(storage, sender, await storeEvents(storage, 1), [server.serverName]);
    await until(async () => (await storage.transaction((tx) => tx.getDestination(server.serverName)))?.failures === 1);
    const state = await storage.transaction((tx) => tx.getDestination(server.serverName));
    expect(state?.retryAtTs).toBeGreaterThanOrEqual(before + 60_000);
    expect(await storage.transaction((tx) => tx.countOutbound(server.serverName))).toBe(1);
  });

  it("drops a transaction the destination refuses with 400 and goes on with the next (D9)", async () => {
    const { storage } = await openTemporaryStorage();
    cleanups.push(() => storage.close());
    const { server, received } = await destination((txn) => {
      if (txn.pdus.some((p) => (p["content"] as JsonObject)["body"] === "m0")) throw new MatrixError("M_BAD_JSON", "poison");
      return { pdus: {} };
    });
    const sender = await newSender(storage);
    sender.start();
    await queue(storage, sender, await storeEvents(storage, 1), [server.serverName]);
    await until(() => received.length === 1);
    await sender.idle();
    await queue(storage, sender, await storeEvents(storage, 1, 1), [server.serverName]);
    await until(() => received.length === 2);
    expect((received[1]?.pdus[0]?.["content"] as JsonObject)["body"]).toBe("m1");
    await sender.idle();
    expect(await storage.transaction((tx) => tx.getDestination(server.serverName))).toMatchObject({ failures: 0 });
    expect(await storage.transaction((tx) => tx.countOutbound(server.serverName))).toBe(0);
  });

  it("sends what was queued before a restart once started again (D4)", async () => {
    const opened = await openTemporaryStorage();
    const { server, received } = await destination();
    const first = await newSender(opened.storage);
    // Queued but never started: as if the process died before sending.
    await queue(opened.storage, first, await storeEvents(opened.storage, 5), [server.serverName]);
    await opened.storage.close();

    const storage = await openSqliteStorage(opened.path);
    cleanups.push(() => storage.close());
    const second = await newSender(storage);
    second.start();
    await until(() => received.flatMap((t) => t.pdus).length === 5);
  });

  it("retries at once when the destination shows it is back", async () => {
    const { storage } = await openTemporaryStorage();
    cleanups.push(() => storage.close());
    let up = false;
    const { server, received } = await destination(() => {
      if (!up) throw new MatrixError("M_UNKNOWN", "down", { status: 502 });
      return { pdus: {} };
    });
    const sender = await newSender(storage, { initialMs: 3_600_000 });
    sender.start();
    await queue(storage, sender, await storeEvents(storage, 1), [server.serverName]);
    await until(() => received.length === 1);
    await sender.idle();
    up = true;
    await sender.notifyRemoteUp(server.serverName);
    await until(() => received.length === 2);
  });
});

describe("the retry schedule", () => {
  it("doubles from the first delay and stops at the cap", () => {
    const schedule = { ...DEFAULT_BACKOFF, jitter: [1, 1] as const };
    expect(retryDelayMs(1, schedule)).toBe(10 * 60_000);
    expect(retryDelayMs(2, schedule)).toBe(20 * 60_000);
    expect(retryDelayMs(1000, schedule)).toBe(7 * 24 * 3_600_000);
  });

  it("names a retried batch the same and a different batch differently", () => {
    expect(transactionId([4, 5, 6])).toBe(transactionId([4, 5, 6]));
    expect(transactionId([4, 5, 6])).not.toBe(transactionId([4, 5, 6, 7]));
  });
});
