// History for a server that joined late, between real homeservers over HTTPS on 127.0.0.1:
// joining gives C the room's state, not its timeline; paginating /messages backwards on C
// fetches the earlier events with /backfill, checks them like any received event and shows
// them in the room's order, page after page, with no duplicate and no gap.
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../test-helpers.js";
import type { TestHomeserver, TestTls } from "./test-support.js";
import { createTestTls, eventually, startTestHomeserver } from "./test-support.js";

let tls: TestTls;
let a: TestHomeserver;
let b: TestHomeserver;
let c: TestHomeserver;
let alice: { userId: string; token: string };
let bob: { userId: string; token: string };

beforeAll(async () => {
  tls = await createTestTls();
  a = await startTestHomeserver(tls);
  b = await startTestHomeserver(tls);
  c = await startTestHomeserver(tls);
  alice = await a.addUser("alice");
  bob = await b.addUser("bob");
}, 60_000);

afterAll(async () => {
  for (const server of [a, b, c]) await server?.stop();
  await removeTemporaryDirectories();
});

const enc = encodeURIComponent;

interface ClientEvent {
  readonly event_id: string;
  readonly type: string;
  readonly content: JsonObject;
}

async function createRoom(body: JsonObject): Promise<string> {
  const created = await a.call(alice.token, "POST", "/createRoom", body);
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  return (created.json as { room_id: string }).room_id;
}

async function send(server: TestHomeserver, token: string, roomId: string, body: string): Promise<string> {
  const sent = await server.call(token, "PUT", `/rooms/${enc(roomId)}/send/m.room.message/${Math.random().toString(36).slice(2)}`, { msgtype: "m.text", body });
  expect(sent.status, JSON.stringify(sent.json)).toBe(200);
  return (sent.json as { event_id: string }).event_id;
}

async function join(server: TestHomeserver, token: string, roomId: string, via: string): Promise<void> {
  const joined = await server.call(token, "POST", `/join/${enc(roomId)}?server_name=${enc(via)}`, {});
  expect(joined.status, JSON.stringify(joined.json)).toBe(200);
}

/** The whole timeline as a client pages it backwards with `limit`, oldest first, and the page sizes. */
async function paginate(server: TestHomeserver, token: string, roomId: string, limit: number): Promise<{ events: ClientEvent[]; pages: number[] }> {
  const events: ClientEvent[] = [];
  const pages: number[] = [];
  let from: string | undefined;
  for (let page = 0; page < 200; page++) {
    const query = `dir=b&limit=${limit}${from === undefined ? "" : `&from=${enc(from)}`}`;
    const answer = await server.call(token, "GET", `/rooms/${enc(roomId)}/messages?${query}`);
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    const body = answer.json as { chunk: ClientEvent[]; end?: string };
    events.push(...body.chunk);
    pages.push(body.chunk.length);
    if (body.end === undefined) break;
    from = body.end;
  }
  return { events: events.reverse(), pages };
}

async function timelineIds(server: TestHomeserver, roomId: string): Promise<string[]> {
  return (await server.homeserver.engine!.getTimeline(roomId, { dir: "f", limit: 10_000 })).map((e) => e.eventId);
}

describe("a server that joined late", () => {
  it("pages back through the whole earlier history, fetched with /backfill in several batches, in the room's order", async () => {
    const roomId = await createRoom({ room_version: "12", preset: "public_chat", name: "History" });
    await join(b, bob.token, roomId, a.serverName);
    await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, bob.userId))?.membership === "join", 10_000, "A to see Bob");
    // 150 messages (more than one /backfill batch of 100), from both servers, in one line.
    const sent: string[] = [];
    for (let i = 0; i < 150; i++) {
      const fromB = i % 10 === 9;
      const id = await send(fromB ? b : a, fromB ? bob.token : alice.token, roomId, `history ${i}`);
      sent.push(id);
      if (fromB || i % 10 === 8) {
        // Each server waits for the other's last message before going on: a linear history.
        const other = fromB ? a : b;
        await eventually(async () => (await other.homeserver.engine!.getEvent(id)) !== undefined, 10_000, `message ${i} on the other server`);
      }
    }

    const carol = await c.addUser("carol");
    await join(c, carol.token, roomId, a.serverName);
    // Right after the join C holds only its join in the timeline; the state is outliers.
    expect((await c.homeserver.engine!.getTimeline(roomId, { dir: "f", limit: 10 })).length).toBe(1);

    const { events, pages } = await paginate(c, carol.token, roomId, 7);
    const ids = events.map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(events[0]?.type).toBe("m.room.create");
    expect(events.filter((e) => e.type === "m.room.message").map((e) => e.event_id)).toEqual(sent);
    // Exactly the events A has, in the same order (A also holds C's join, last).
    expect(ids).toEqual(await timelineIds(a, roomId));
    // Every page but the last was full: backfill happened inside the requests that needed it.
    expect(pages.slice(0, -1).every((n) => n === 7)).toBe(true);

    // Now stored: paging again returns the same, without asking anyone.
    expect((await paginate(c, carol.token, roomId, 50)).events.map((e) => e.event_id)).toEqual(ids);
    // Forward from the start too.
    const forward = await c.call(carol.token, "GET", `/rooms/${enc(roomId)}/messages?dir=f&limit=3`);
    expect((forward.json as { chunk: ClientEvent[] }).chunk.map((e) => e.event_id)).toEqual(ids.slice(0, 3));
  }, 120_000);

  it("keeps pagination consistent for a token handed out before the history arrived, and for new events", async () => {
    const roomId = await createRoom({ room_version: "10", preset: "public_chat" });
    const before: string[] = [];
    for (let i = 0; i < 12; i++) before.push(await send(a, alice.token, roomId, `before ${i}`));
    const dave = await c.addUser(`dave${Math.random().toString(36).slice(2, 6)}`);
    await join(c, dave.token, roomId, a.serverName);
    const first = await c.call(dave.token, "GET", `/rooms/${enc(roomId)}/messages?dir=b&limit=3`);
    const firstBody = first.json as { chunk: ClientEvent[]; end: string };
    expect(firstBody.chunk[0]?.type).toBe("m.room.member");
    expect(firstBody.chunk.slice(1).map((e) => (e.content as { body?: string }).body)).toEqual(["before 11", "before 10"]);
    // A new message arrives; the old token still continues where it stopped.
    const after = await send(a, alice.token, roomId, "after the join");
    await eventually(async () => (await c.homeserver.engine!.getEvent(after)) !== undefined, 10_000, "the new message on C");
    const next = await c.call(dave.token, "GET", `/rooms/${enc(roomId)}/messages?dir=b&limit=3&from=${enc(firstBody.end)}`);
    expect((next.json as { chunk: ClientEvent[] }).chunk.map((e) => (e.content as { body?: string }).body)).toEqual(["before 9", "before 8", "before 7"]);
    const newest = await c.call(dave.token, "GET", `/rooms/${enc(roomId)}/messages?dir=b&limit=1`);
    expect((newest.json as { chunk: ClientEvent[] }).chunk[0]?.event_id).toBe(after);
  }, 60_000);

  it("stops at what it has when no server in the room will give the history", async () => {
    const roomId = await createRoom({ room_version: "11", preset: "public_chat" });
    for (let i = 0; i < 3; i++) await send(a, alice.token, roomId, `unreachable ${i}`);
    const erin = await c.addUser(`erin${Math.random().toString(36).slice(2, 6)}`);
    await join(c, erin.token, roomId, a.serverName);
    await a.stop();
    try {
      const answer = await c.call(erin.token, "GET", `/rooms/${enc(roomId)}/messages?dir=b&limit=10`);
      expect(answer.status).toBe(200);
      const body = answer.json as { chunk: ClientEvent[]; end?: string };
      expect(body.chunk.map((e) => e.type)).toEqual(["m.room.member"]);
      expect(body.end).toBeUndefined();
    } finally {
      a = await a.restart();
    }
    // Once A is back (and the pause for unfillable events is over), the history comes.
  }, 60_000);
});
