// GET /messages on a server that left a room and rejoined it (the Synapse interop suite's
// catch-up scenario, without the network): the events it received live during the first
// membership are stored first, the history it missed arrives later through backfill, and
// /messages must still list everything in the room's order, both ways, page after page.
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { SigningKey } from "@myelin/signing";
import { computeEventId, generateSigningKey, signEvent } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { getRoomVersion } from "@myelin/types";
import express from "express";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { EngineEvent } from "../engine/index.js";
import { RoomEngine } from "../engine/index.js";
import type { ChildDepthRange, Storage } from "../storage/storage.js";
import { openSqliteStorage } from "../storage/storage.js";
import { removeTemporaryDirectories, temporaryDirectory } from "../test-helpers.js";
import { createClientApi } from "./client-api.js";
import type { RemoteHistory } from "./remote.js";
import { registerLocalUser } from "./users.js";

const RESIDENT = "resident.test";
const JOINER = "joiner.test";
const ROB = `@rob:${RESIDENT}`;
const ALICE = `@alice:${JOINER}`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(removeTemporaryDirectories);

interface Server {
  readonly engine: RoomEngine;
  readonly storage: Storage;
  readonly key: SigningKey;
}

async function openServer(serverName: string): Promise<Server> {
  const storage = await openSqliteStorage(join(await temporaryDirectory(), "homeserver.db"));
  cleanups.push(() => storage.close());
  const key = generateSigningKey();
  return { engine: new RoomEngine({ storage, serverName, signingKey: key }), storage, key };
}

/** Alice (on the joiner) joins the resident's room: make_join, signed by the joiner, send_join. */
async function joinThroughResident(resident: Server, joiner: Server, roomId: string): Promise<void> {
  const template = await resident.engine.buildEventTemplate({ roomId, type: "m.room.member", sender: ALICE, stateKey: ALICE, content: { membership: "join" } });
  const rules = getRoomVersion(template.roomVersion);
  const pdu = signEvent(template.pdu, JOINER, joiner.key, rules);
  const eventId = computeEventId(pdu, rules);
  expect(await resident.engine.persistIncomingEvent({ roomId, pdu, eventId })).toMatchObject({ outcome: "persisted" });
  const stateBefore = (await resident.engine.getStateBefore(eventId)) as Map<string, string>;
  const chain = await resident.engine.getAuthChainIds([...stateBefore.values(), eventId]);
  const shipped = await resident.engine.getEvents([...new Set([...stateBefore.values(), ...chain])]);
  if ((await joiner.engine.getRoom(roomId)) === undefined) {
    await joiner.engine.registerRoom({ roomId, roomVersion: template.roomVersion, creator: ROB });
  }
  await joiner.engine.persistOutliers(roomId, [...shipped.values()].map((e) => ({ pdu: e.pdu, eventId: e.eventId })));
  expect(await joiner.engine.persistIncomingEvent({ roomId, pdu, eventId, stateBefore })).toMatchObject({ outcome: "persisted" });
}

/** Delivers a resident's event to the joiner live (its prev events are there). */
async function deliver(joiner: Server, event: EngineEvent): Promise<void> {
  expect(await joiner.engine.persistIncomingEvent({ roomId: event.roomId, pdu: event.pdu, eventId: event.eventId })).toMatchObject({ outcome: "persisted" });
}

/**
 * What `/backfill` against the resident does, in small batches so that a walk needs several:
 * the events before the joiner's backward extremities (those cited by events in the depth
 * range asked for), nearest first, placed oldest first below every stream position so far.
 */
function backfillFrom(resident: Server, joiner: Server, batch: number): RemoteHistory & { readonly asked: ChildDepthRange[] } {
  const asked: ChildDepthRange[] = [];
  return {
    asked,
    async backfill(roomId, options = {}) {
      asked.push(options.childDepths ?? {});
      const starts = await joiner.storage.transaction((tx) => tx.getBackwardExtremities(roomId, 20, options.childDepths));
      const found = new Map<string, EngineEvent>();
      let frontier = starts.map((s) => s.eventId);
      while (frontier.length > 0 && found.size < batch) {
        const events = [...(await resident.engine.getEvents(frontier)).values()].sort((a, b) => b.stored.depth - a.stored.depth);
        const next: string[] = [];
        for (const event of events) {
          if (found.size >= batch || found.has(event.eventId)) continue;
          found.set(event.eventId, event);
          next.push(...(event.pdu["prev_events"] as string[]));
        }
        const held = await joiner.storage.transaction((tx) => tx.getEvents(next));
        frontier = next.filter((id) => held.get(id)?.outlier !== false && !found.has(id));
      }
      const oldestFirst = [...found.values()].sort((a, b) => a.stored.depth - b.stored.depth);
      if (oldestFirst.length === 0) return 0;
      const lowest = await joiner.storage.transaction((tx) => tx.reserveBackfillOrderings(oldestFirst.length));
      for (const [index, event] of oldestFirst.entries()) {
        const stateBefore = (await resident.engine.getStateBefore(event.eventId)) as Map<string, string>;
        const outcome = await joiner.engine.persistIncomingEvent({ roomId, pdu: event.pdu, eventId: event.eventId, stateBefore, backfilled: { streamOrdering: lowest + index } });
        expect(outcome).toMatchObject({ outcome: "persisted" });
      }
      return oldestFirst.length;
    },
  };
}

/** The joiner's client API on 127.0.0.1, and a `/messages` caller for Alice. */
type Messages = (roomId: string, query: string) => Promise<{ chunk: JsonObject[]; start: string; end?: string }>;

async function serveClientApi(joiner: Server, remoteHistory: RemoteHistory): Promise<Messages> {
  const app = express();
  app.use(createClientApi({ engine: joiner.engine, storage: joiner.storage, serverName: JOINER, remoteHistory }));
  const listener = await new Promise<http.Server>((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => resolve(server));
  });
  cleanups.push(() => new Promise((resolve) => listener.close(resolve)));
  const { port } = listener.address() as AddressInfo;
  const alice = await registerLocalUser(joiner.storage, { localpart: "alice", serverName: JOINER });
  return async (roomId, query) => {
    const response = await fetch(`http://127.0.0.1:${port}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?${query}`, {
      headers: { Authorization: `Bearer ${alice.access_token}` },
    });
    const body = (await response.json()) as { chunk: JsonObject[]; start: string; end?: string };
    expect(response.status, JSON.stringify(body)).toBe(200);
    return body;
  };
}

/** Every event of a walk through `/messages` in `dir`, `limit` at a time, in the order listed. */
async function walk(messages: Messages, roomId: string, dir: "b" | "f", limit: number): Promise<{ ids: string[]; pages: number[] }> {
  const ids: string[] = [];
  const pages: number[] = [];
  let from: string | undefined;
  for (let page = 0; page < 500; page++) {
    const body = await messages(roomId, `dir=${dir}&limit=${limit}${from === undefined ? "" : `&from=${encodeURIComponent(from)}`}`);
    ids.push(...body.chunk.map((e) => e["event_id"] as string));
    pages.push(body.chunk.length);
    if (body.end === undefined) return { ids, pages };
    from = body.end;
  }
  throw new Error("the walk did not end");
}

function bodyOf(resident: EngineEvent[], id: string): string | undefined {
  const content = resident.find((e) => e.eventId === id)?.pdu["content"] as JsonObject | undefined;
  return typeof content?.["body"] === "string" ? content["body"] : undefined;
}

describe("/messages after a rejoin", () => {
  it.each(["10", "12"])(
    "lists the history backfilled after the rejoin between the events received live before the leave and the rejoin, both ways (room %s)",
    async (roomVersion) => {
      const resident = await openServer(RESIDENT);
      const joiner = await openServer(JOINER);
      const { roomId } = await resident.engine.createRoom({ creator: ROB, preset: "public_chat", roomVersion });
      await joinThroughResident(resident, joiner, roomId);
      for (let i = 0; i < 3; i++) await deliver(joiner, await resident.engine.sendLocalEvent({ roomId, sender: ROB, type: "m.room.message", content: { body: `late history ${i}` } }));
      const leave = await joiner.engine.leave(roomId, ALICE);
      expect(await resident.engine.persistIncomingEvent({ roomId, pdu: leave.pdu, eventId: leave.eventId })).toMatchObject({ outcome: "persisted" });
      // Sent while the joiner is out of the room: only the resident has them.
      for (let i = 3; i < 25; i++) await resident.engine.sendLocalEvent({ roomId, sender: ROB, type: "m.room.message", content: { body: `late history ${i}` } });
      await joinThroughResident(resident, joiner, roomId);

      const history = backfillFrom(resident, joiner, 8);
      const messages = await serveClientApi(joiner, history);
      const residentTimeline = await resident.engine.getTimeline(roomId, { dir: "f", limit: 1000 });
      const roomOrder = residentTimeline.map((e) => e.eventId);

      const back = await walk(messages, roomId, "b", 4);
      expect(new Set(back.ids).size).toBe(back.ids.length);
      const oldestFirst = [...back.ids].reverse();
      expect(oldestFirst).toEqual(roomOrder);
      expect(oldestFirst.map((id) => bodyOf(residentTimeline, id)).filter((body) => body !== undefined)).toEqual(
        Array.from({ length: 25 }, (_, i) => `late history ${i}`),
      );
      // The backfill happened inside the pages that needed it: every page but the last was full.
      expect(back.pages.slice(0, -1).every((n) => n === 4)).toBe(true);
      expect(history.asked.length).toBeGreaterThan(1);

      // Now stored: forward from the start, and back again, without asking anyone.
      const asked = history.asked.length;
      expect((await walk(messages, roomId, "f", 3)).ids).toEqual(roomOrder);
      expect([...(await walk(messages, roomId, "b", 7)).ids].reverse()).toEqual(roomOrder);
      expect(history.asked.length).toBe(asked);
    },
  );

  it("reads an s<N> token of an earlier version as the place after the events it had listed", async () => {
    const resident = await openServer(RESIDENT);
    const joiner = await openServer(JOINER);
    const { roomId } = await resident.engine.createRoom({ creator: ROB, preset: "public_chat", roomVersion: "10" });
    await joinThroughResident(resident, joiner, roomId);
    const sent: EngineEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const event = await resident.engine.sendLocalEvent({ roomId, sender: ROB, type: "m.room.message", content: { body: `m${i}` } });
      await deliver(joiner, event);
      sent.push((await joiner.engine.getEvent(event.eventId)) as EngineEvent);
    }
    const messages = await serveClientApi(joiner, backfillFrom(resident, joiner, 100));
    const second = sent[1]?.stored.streamOrdering;
    const back = await messages(roomId, `dir=b&limit=2&from=s${second}`);
    expect(back.start).toBe(`s${second}`);
    expect(back.chunk.map((e) => e["event_id"])).toEqual([sent[1]?.eventId, sent[0]?.eventId]);
    const forward = await messages(roomId, `dir=f&limit=5&from=s${second}`);
    expect(forward.chunk.map((e) => e["event_id"])).toEqual([sent[2]?.eventId]);
    // Tokens handed out now are topological.
    expect(back.end).toMatch(/^t\d+_-?\d+$/);
  });
});
