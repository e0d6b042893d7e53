// Two reference homeservers federating over HTTPS on 127.0.0.1 (test CA, real SQLite):
// remote joins, messages both ways, invites, leaves, ACLs and the outbound queue across a
// restart.
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../test-helpers.js";
import type { TestHomeserver, TestTls } from "./test-support.js";
import { createTestTls, eventually, startTestHomeserver } from "./test-support.js";

let tls: TestTls;
let a: TestHomeserver;
let b: TestHomeserver;
let alice: { userId: string; token: string };
let bob: { userId: string; token: string };

beforeAll(async () => {
  tls = await createTestTls();
  a = await startTestHomeserver(tls);
  b = await startTestHomeserver(tls);
  alice = await a.addUser("alice");
  bob = await b.addUser("bob");
}, 60_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await removeTemporaryDirectories();
});

const enc = encodeURIComponent;

async function createRoom(server: TestHomeserver, token: string, body: JsonObject): Promise<string> {
  const created = await server.call(token, "POST", "/createRoom", body);
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  return (created.json as { room_id: string }).room_id;
}

async function send(server: TestHomeserver, token: string, roomId: string, body: string): Promise<string> {
  const sent = await server.call(token, "PUT", `/rooms/${enc(roomId)}/send/m.room.message/${Math.random().toString(36).slice(2)}`, { msgtype: "m.text", body });
  expect(sent.status, JSON.stringify(sent.json)).toBe(200);
  return (sent.json as { event_id: string }).event_id;
}

/** The bodies of the room's messages as a server's engine has them in its timeline. */
async function bodies(server: TestHomeserver, roomId: string): Promise<string[]> {
  const engine = server.homeserver.engine;
  if (engine === undefined || (await engine.getRoom(roomId)) === undefined) return [];
  const events = await engine.getTimeline(roomId, { dir: "f", limit: 1000 });
  return events.filter((e) => e.stored.type === "m.room.message").map((e) => String((e.pdu["content"] as JsonObject)["body"]));
}

async function joinVia(server: TestHomeserver, token: string, roomId: string, via: string): Promise<{ status: number; json: unknown }> {
  return server.call(token, "POST", `/join/${enc(roomId)}?server_name=${enc(via)}`, {});
}

describe("two homeservers", () => {
  for (const version of ["1", "3", "6", "10", "11", "12"]) {
    it(`join a room of version ${version} remotely and exchange messages both ways`, async () => {
      const roomId = await createRoom(a, alice.token, { room_version: version, preset: "public_chat", name: `room ${version}` });
      await send(a, alice.token, roomId, "before the join");
      const joined = await joinVia(b, bob.token, roomId, a.serverName);
      expect(joined.status, JSON.stringify(joined.json)).toBe(200);
      expect((await b.homeserver.engine!.getMembership(roomId, bob.userId))?.membership).toBe("join");
      // A sees Bob's join (relayed back by B's queue or persisted by send_join).
      await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, bob.userId))?.membership === "join", 10_000, "A to see the join");

      await send(a, alice.token, roomId, `hello from ${a.serverName}`);
      await eventually(async () => (await bodies(b, roomId)).includes(`hello from ${a.serverName}`), 15_000, "A's message on B");
      await send(b, bob.token, roomId, `hello from ${b.serverName}`);
      await eventually(async () => (await bodies(a, roomId)).includes(`hello from ${b.serverName}`), 15_000, "B's message on A");
      // The room's state agrees on both sides.
      const nameOnB = await b.homeserver.engine!.getCurrentStateEvent(roomId, "m.room.name", "");
      expect((nameOnB?.pdu["content"] as JsonObject)["name"]).toBe(`room ${version}`);
    }, 60_000);
  }
});

describe("the outbound queue", () => {
  it("delivers what was sent while the other server was down once it is back (D4, D5)", async () => {
    const roomId = await createRoom(a, alice.token, { room_version: "12", preset: "public_chat" });
    expect((await joinVia(b, bob.token, roomId, a.serverName)).status).toBe(200);
    await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, bob.userId))?.membership === "join", 10_000, "A to see the join");

    await b.stop();
    for (let i = 0; i < 3; i++) await send(a, alice.token, roomId, `while down ${i}`);
    // Let A fail at least once, so that it is backing off when B returns.
    await new Promise((resolve) => setTimeout(resolve, 500));
    b = await b.restart();
    await eventually(async () => (await bodies(b, roomId)).length >= 3, 15_000, "the queued messages on B");
    expect(await bodies(b, roomId)).toEqual(["while down 0", "while down 1", "while down 2"]);
  }, 60_000);

  it("still delivers them when the sending server restarts while the other is down (D4)", async () => {
    const roomId = await createRoom(a, alice.token, { room_version: "10", preset: "public_chat" });
    expect((await joinVia(b, bob.token, roomId, a.serverName)).status).toBe(200);
    await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, bob.userId))?.membership === "join", 10_000, "A to see the join");

    await b.stop();
    await send(a, alice.token, roomId, "queued before A restarts");
    a = await a.restart();
    b = await b.restart();
    await eventually(async () => (await bodies(b, roomId)).includes("queued before A restarts"), 15_000, "the message on B");
  }, 60_000);
});

describe("invites and leaves", () => {
  it("invites a user of the other server, who joins and then leaves", async () => {
    const carol = await b.addUser("carol");
    const roomId = await createRoom(a, alice.token, { room_version: "11", preset: "private_chat" });
    const invited = await a.call(alice.token, "POST", `/rooms/${enc(roomId)}/invite`, { user_id: carol.userId });
    expect(invited.status, JSON.stringify(invited.json)).toBe(200);
    expect((await a.homeserver.engine!.getMembership(roomId, carol.userId))?.membership).toBe("invite");
    // B co-signed the invite and keeps it for Carol.
    expect(await b.homeserver.engine!.getRoom(roomId)).toBeDefined();

    const joined = await joinVia(b, carol.token, roomId, a.serverName);
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, carol.userId))?.membership === "join", 10_000, "A to see Carol join");

    const left = await b.call(carol.token, "POST", `/rooms/${enc(roomId)}/leave`, {});
    expect(left.status, JSON.stringify(left.json)).toBe(200);
    await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, carol.userId))?.membership === "leave", 10_000, "A to see Carol leave");
  }, 60_000);

  it("rejects an invite to a room the server is not in through the inviting server", async () => {
    const dave = await b.addUser("dave");
    const roomId = await createRoom(a, alice.token, { room_version: "10", preset: "private_chat" });
    expect((await a.call(alice.token, "POST", `/rooms/${enc(roomId)}/invite`, { user_id: dave.userId })).status).toBe(200);
    const rejected = await b.call(dave.token, "POST", `/rooms/${enc(roomId)}/leave`, {});
    expect(rejected.status, JSON.stringify(rejected.json)).toBe(200);
    expect((await a.homeserver.engine!.getMembership(roomId, dave.userId))?.membership).toBe("leave");
  }, 30_000);

  it("keeps an invite to a room-12 room as pending, and joins through the inviter's server without via", async () => {
    const frank = await b.addUser("frank");
    const roomId = await createRoom(a, alice.token, { room_version: "12", preset: "private_chat", name: "Invite only" });
    expect((await a.call(alice.token, "POST", `/rooms/${enc(roomId)}/invite`, { user_id: frank.userId })).status).toBe(200);
    const invites = await b.homeserver.engine!.getPendingInvites(frank.userId);
    expect(invites.map((i) => [i.roomId, i.inviter])).toEqual([[roomId, alice.userId]]);
    expect(invites[0]?.inviteRoomState.map((e) => e["type"])).toEqual(expect.arrayContaining(["m.room.create", "m.room.name", "m.room.join_rules"]));
    expect(invites[0]?.event.pdu["content"]).toMatchObject({ membership: "invite" });
    // A room-12 ID names no server: only the invite says where to join.
    expect(roomId.includes(":")).toBe(false);
    const joined = await b.call(frank.token, "POST", `/join/${enc(roomId)}`, {});
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    expect((await b.homeserver.engine!.getMembership(roomId, frank.userId))?.membership).toBe("join");
    expect(await b.homeserver.engine!.getPendingInvites(frank.userId)).toEqual([]);
  }, 30_000);

  it("rejects an invite to a room-12 room through the inviter's server without via", async () => {
    const gina = await b.addUser("gina");
    const roomId = await createRoom(a, alice.token, { room_version: "12", preset: "private_chat" });
    expect((await a.call(alice.token, "POST", `/rooms/${enc(roomId)}/invite`, { user_id: gina.userId })).status).toBe(200);
    expect(await b.homeserver.engine!.getPendingInvite(roomId, gina.userId)).toBeDefined();
    const rejected = await b.call(gina.token, "POST", `/rooms/${enc(roomId)}/leave`, {});
    expect(rejected.status, JSON.stringify(rejected.json)).toBe(200);
    expect((await a.homeserver.engine!.getMembership(roomId, gina.userId))?.membership).toBe("leave");
    expect(await b.homeserver.engine!.getPendingInvite(roomId, gina.userId)).toBeUndefined();
  }, 30_000);

  it("fails a join cleanly when no server can be reached", async () => {
    const roomId = await createRoom(a, alice.token, { room_version: "12", preset: "public_chat" });
    const failed = await joinVia(b, bob.token, roomId, "localhost:1");
    expect(failed.status).toBeGreaterThanOrEqual(400);
    expect(await b.homeserver.engine!.getRoom(roomId)).toBeUndefined();
  }, 30_000);
});

describe("queries", () => {
  it("resolves an alias of the other server and joins through it", async () => {
    const roomId = await createRoom(a, alice.token, { room_version: "12", preset: "public_chat", room_alias_name: "lobby" });
    const alias = `#lobby:${a.serverName}`;
    const resolved = await b.call(bob.token, "GET", `/directory/room/${enc(alias)}`);
    expect(resolved.status, JSON.stringify(resolved.json)).toBe(200);
    expect(resolved.json).toMatchObject({ room_id: roomId, servers: [a.serverName] });
    const joined = await b.call(bob.token, "POST", `/join/${enc(alias)}`, {});
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    expect(joined.json).toEqual({ room_id: roomId });
  }, 30_000);

  it("reads the profile of a user of the other server", async () => {
    expect((await a.call(alice.token, "PUT", `/profile/${enc(alice.userId)}/displayname`, { displayname: "Alice" })).status).toBe(200);
    const profile = await b.call(bob.token, "GET", `/profile/${enc(alice.userId)}`);
    expect(profile.status, JSON.stringify(profile.json)).toBe(200);
    expect(profile.json).toMatchObject({ displayname: "Alice" });
  });
});

describe("restricted rooms", () => {
  it("joins a restricted room through a resident that countersigns the join (rooms 8+)", async () => {
    const lobby = await createRoom(a, alice.token, { room_version: "10", preset: "public_chat" });
    expect((await joinVia(b, bob.token, lobby, a.serverName)).status).toBe(200);
    await eventually(async () => (await a.homeserver.engine!.getMembership(lobby, bob.userId))?.membership === "join", 10_000, "A to see Bob in the lobby");
    const inner = await createRoom(a, alice.token, {
      room_version: "10",
      preset: "private_chat",
      initial_state: [{ type: "m.room.join_rules", state_key: "", content: { join_rule: "restricted", allow: [{ type: "m.room_membership", room_id: lobby }] } }],
    });
    const joined = await joinVia(b, bob.token, inner, a.serverName);
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    const join = await a.homeserver.engine!.getMembership(inner, bob.userId);
    expect(join?.membership).toBe("join");
    expect((join?.event.pdu["content"] as JsonObject)["join_authorised_via_users_server"]).toBe(alice.userId);
    expect(Object.keys(join?.event.pdu["signatures"] as JsonObject).sort()).toEqual([a.serverName, b.serverName].sort());
    // A user of B who is in no allowed room is refused.
    const erin = await b.addUser("erin");
    expect((await joinVia(b, erin.token, inner, a.serverName)).status).toBe(403);
  }, 60_000);
});

describe("three servers", () => {
  it("lets a third server join through the resident and exchange messages with both others", async () => {
    const c = await startTestHomeserver(tls);
    try {
      const carl = await c.addUser("carl");
      const roomId = await createRoom(a, alice.token, { room_version: "12", preset: "public_chat" });
      expect((await joinVia(b, bob.token, roomId, a.serverName)).status).toBe(200);
      await eventually(async () => (await a.homeserver.engine!.getMembership(roomId, bob.userId))?.membership === "join", 10_000, "A to see Bob");
      expect((await joinVia(c, carl.token, roomId, a.serverName)).status).toBe(200);
      await eventually(async () => (await b.homeserver.engine!.getMembership(roomId, carl.userId))?.membership === "join", 10_000, "B to see Carl");
      await send(c, carl.token, roomId, "from C");
      await eventually(async () => (await bodies(b, roomId)).includes("from C"), 10_000, "C's message on B");
      await eventually(async () => (await bodies(a, roomId)).includes("from C"), 10_000, "C's message on A");
      await send(b, bob.token, roomId, "from B");
      await eventually(async () => (await bodies(c, roomId)).includes("from B"), 10_000, "B's message on C");
    } finally {
      await c.stop();
    }
  }, 60_000);
});
