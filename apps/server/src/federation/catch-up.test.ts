// Catching up after an outage, between real homeservers over HTTPS on 127.0.0.1: the
// configured retry delays (--federation-retry-min-ms / --federation-retry-max-ms) and the
// start-up announcement that makes the other server send what it queued at once.
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HomeserverOptions } from "../app.js";
import { removeTemporaryDirectories } from "../test-helpers.js";
import type { TestHomeserver, TestTls } from "./test-support.js";
import { DEFAULT_INSTANCE_NAME } from "./index.js";
import { createTestTls, eventually, startTestHomeserver } from "./test-support.js";

/** No backoff override: the schedule comes from the configuration (or Synapse's default). */
const CONFIGURED: HomeserverOptions = { federationPollIntervalMs: 100, stopGraceMs: 200 };

let tls: TestTls;
const started: TestHomeserver[] = [];

beforeAll(async () => {
  tls = await createTestTls();
}, 30_000);

afterAll(async () => {
  for (const server of started) await server.stop();
  await removeTemporaryDirectories();
});

async function start(config: Parameters<typeof startTestHomeserver>[1] = {}): Promise<TestHomeserver> {
  const server = await startTestHomeserver(tls, { homeserverOptions: CONFIGURED, ...config });
  started.push(server);
  return server;
}

const enc = encodeURIComponent;

/** A public room on `resident` that a user of `joiner` has joined (seen joined by both). */
async function sharedRoom(resident: TestHomeserver, joiner: TestHomeserver): Promise<{ roomId: string; token: string }> {
  const owner = await resident.addUser(`owner${started.length}${Math.random().toString(36).slice(2, 6)}`);
  const guest = await joiner.addUser(`guest${started.length}${Math.random().toString(36).slice(2, 6)}`);
  const created = await resident.call(owner.token, "POST", "/createRoom", { room_version: "12", preset: "public_chat" });
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  const roomId = (created.json as { room_id: string }).room_id;
  const joined = await joiner.call(guest.token, "POST", `/join/${enc(roomId)}?server_name=${enc(resident.serverName)}`, {});
  expect(joined.status, JSON.stringify(joined.json)).toBe(200);
  await eventually(async () => (await resident.homeserver.engine!.getMembership(roomId, guest.userId))?.membership === "join", 10_000, "the join on the resident");
  // The joiner also queues its join for the resident: wait until that is delivered, so
  // that the joiner has nothing left to send (a restart then has nothing to say but hello).
  await eventually(async () => (await joiner.homeserver.storage!.transaction((tx) => tx.countOutbound(resident.serverName))) === 0, 10_000, "the joiner's queue to empty");
  return { roomId, token: owner.token };
}

async function send(server: TestHomeserver, token: string, roomId: string, body: string): Promise<void> {
  const sent = await server.call(token, "PUT", `/rooms/${enc(roomId)}/send/m.room.message/${Math.random().toString(36).slice(2)}`, { msgtype: "m.text", body });
  expect(sent.status, JSON.stringify(sent.json)).toBe(200);
}

async function bodies(server: TestHomeserver, roomId: string): Promise<string[]> {
  const events = await server.homeserver.engine!.getTimeline(roomId, { dir: "f", limit: 1000 });
  return events.filter((e) => e.stored.type === "m.room.message").map((e) => String((e.pdu["content"] as JsonObject)["body"]));
}

async function failuresTowards(server: TestHomeserver, destination: string): Promise<{ failures: number; retryAtTs: number | null } | undefined> {
  return server.homeserver.storage!.transaction((tx) => tx.getDestination(destination));
}

describe("the retry schedule of an unreachable server", () => {
  it("follows the configured first and longest delays instead of Synapse's 10 minutes", async () => {
    const a = await start({ config: { federationRetryMinMs: 500, federationRetryMaxMs: 1_000 } });
    let b = await start();
    const { roomId, token } = await sharedRoom(a, b);
    await b.stop();
    const before = Date.now();
    await send(a, token, roomId, "while B is down");
    const first = await eventually(async () => {
      const state = await failuresTowards(a, b.serverName);
      return state !== undefined && state.failures >= 1 ? state : undefined;
    }, 10_000, "a first failure");
    // 500 ms with Synapse's jitter (x0.8-1.4), counted from the failed attempt.
    expect(first.retryAtTs).toBeGreaterThanOrEqual(before + 400);
    expect(first.retryAtTs).toBeLessThanOrEqual(Date.now() + 700);
    // It tries again on its own when the delay is over, and the delay stops growing at 1 s.
    const later = await eventually(async () => {
      const state = await failuresTowards(a, b.serverName);
      return state !== undefined && state.failures >= 4 ? state : undefined;
    }, 10_000, "three more failures");
    expect(later.retryAtTs).toBeLessThanOrEqual(Date.now() + 1_400);

    b = await b.restart();
    started.push(b);
    await eventually(async () => (await bodies(b, roomId)).includes("while B is down"), 15_000, "the message on B");
  }, 60_000);
});

describe("a restarted server", () => {
  it("announces itself, so the other server sends what it queued at once despite a long backoff", async () => {
    // Synapse's schedule: after the first failure A would wait 8 to 14 minutes.
    const a = await start();
    let b = await start();
    const { roomId, token } = await sharedRoom(a, b);
    await b.stop();
    for (let i = 0; i < 3; i++) await send(a, token, roomId, `queued ${i}`);
    const failed = await eventually(async () => {
      const state = await failuresTowards(a, b.serverName);
      return state !== undefined && state.failures >= 1 ? state : undefined;
    }, 10_000, "A to fail to reach B");
    expect(failed.retryAtTs).toBeGreaterThan(Date.now() + 5 * 60_000);

    b = await b.restart();
    started.push(b);
    await eventually(async () => (await bodies(b, roomId)).length === 3, 15_000, "the queued messages on B");
    expect(await bodies(b, roomId)).toEqual(["queued 0", "queued 1", "queued 2"]);
    // A knows B is back: its backoff is reset.
    await eventually(async () => (await failuresTowards(a, b.serverName))?.failures === 0, 10_000, "A to reset its backoff");
  }, 60_000);

  it("sends its forward extremities to the servers it shares rooms with when it starts", async () => {
    const a = await start();
    let b = await start();
    const { roomId } = await sharedRoom(a, b);
    expect((await b.homeserver.engine!.getForwardExtremities(roomId)).length).toBeGreaterThan(0);
    // B's join went to A through B's queue; wait for that to be over.
    const before = await eventually(async () => {
      const state = await b.homeserver.storage!.transaction(async (tx) => ({
        queued: await tx.countOutbound(a.serverName),
        lastSuccessTs: (await tx.getDestination(a.serverName))?.lastSuccessTs ?? 0,
      }));
      return state.queued === 0 ? state : undefined;
    }, 10_000, "B's queue to A to empty");
    await new Promise((resolve) => setTimeout(resolve, 20));
    b = await b.restart();
    started.push(b);
    // Nothing new happened in the room, yet B sends A a transaction after its restart.
    await eventually(async () => {
      const state = await b.homeserver.storage!.transaction((tx) => tx.getDestination(a.serverName));
      return (state?.lastSuccessTs ?? 0) > before.lastSuccessTs;
    }, 10_000, "B's announcement to A");
    expect(await b.homeserver.storage!.transaction((tx) => tx.countOutbound(a.serverName))).toBe(0);
  }, 60_000);

  it("takes back at once the leases its previous run died holding (SIGKILL mid-work)", async () => {
    const a = await start();
    let b = await start();
    const { roomId, token } = await sharedRoom(a, b);
    // As if B had been killed while working on the room and while sending to A: its leases
    // stay in the database for an hour. A new run of the same instance must not wait.
    await b.homeserver.storage!.transaction(async (tx) => {
      const hour = Date.now() + 3_600_000;
      expect(await tx.tryAcquireLease(`staging:${roomId}`, `staging:${DEFAULT_INSTANCE_NAME}`, hour)).toBe(true);
      expect(await tx.tryAcquireLease(`outbound:${a.serverName}`, `sender:${DEFAULT_INSTANCE_NAME}`, hour)).toBe(true);
    });
    b = await b.restart();
    started.push(b);
    await send(a, token, roomId, "to the restarted server");
    await eventually(async () => (await bodies(b, roomId)).includes("to the restarted server"), 10_000, "B to process A's message");
    const guest = [...(await b.homeserver.engine!.getJoinedMembers(roomId)).keys()].find((user) => b.homeserver.engine!.isLocalUser(user)) as string;
    await b.homeserver.engine!.sendLocalEvent({ roomId, sender: guest, type: "m.room.message", content: { msgtype: "m.text", body: "from the restarted server" } });
    await eventually(async () => (await bodies(a, roomId)).includes("from the restarted server"), 10_000, "A to get B's message");
  }, 60_000);
});
