import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { generateSigningKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import express from "express";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Homeserver, HomeserverInfo } from "../app.js";
import { createHomeserver } from "../app.js";
import { CapturedOutput, removeTemporaryDirectories, temporaryDirectory, testConfig } from "../test-helpers.js";
import { RoomEngine } from "../engine/index.js";
import { openSqliteStorage } from "../storage/storage.js";
import { createClientApi } from "./client-api.js";
import { runUserCommand } from "./user-command.js";
import type { RegisteredUser } from "./users.js";
import { registerLocalUser } from "./users.js";

afterAll(removeTemporaryDirectories);

interface Running {
  readonly homeserver: Homeserver;
  readonly info: HomeserverInfo;
  readonly dataDir: string;
}

const started: Homeserver[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.stop()));
});

async function startServer(dataDir?: string, serverName?: string): Promise<Running> {
  const dir = dataDir ?? (await temporaryDirectory());
  const homeserver = createHomeserver(testConfig(dir, serverName === undefined ? {} : { serverName }));
  started.push(homeserver);
  const info = await homeserver.start();
  return { homeserver, info, dataDir: dir };
}

/** Registers a user with `myelin-server user add` against the running server's data directory. */
async function addUser(server: Running, name: string): Promise<RegisteredUser> {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  const code = await runUserCommand(["add", name, "--data", server.dataDir], { stdout, stderr, cwd: "/" });
  if (code !== 0) throw new Error(`user add failed: ${stderr.text}`);
  return JSON.parse(stdout.text) as RegisteredUser;
}

interface Answer {
  readonly status: number;
  readonly body: JsonObject;
}

async function call(server: Running, method: string, path: string, options: { token?: string; body?: unknown; raw?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers["Authorization"] = `Bearer ${options.token}`;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${server.info.address.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as JsonObject) };
}

const V3 = "/_matrix/client/v3";
const enc = encodeURIComponent;

/** A started server with Alice and Bob. */
async function serverWithUsers(): Promise<{ server: Running; alice: RegisteredUser; bob: RegisteredUser }> {
  const server = await startServer();
  return { server, alice: await addUser(server, "alice"), bob: await addUser(server, "bob") };
}

async function createRoom(server: Running, token: string, body: JsonObject = {}): Promise<string> {
  const answer = await call(server, "POST", `${V3}/createRoom`, { token, body });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body["room_id"] as string;
}

async function send(server: Running, token: string, roomId: string, body: string, txn = `t${Math.random()}`): Promise<string> {
  const answer = await call(server, "PUT", `${V3}/rooms/${enc(roomId)}/send/m.room.message/${enc(txn)}`, { token, body: { msgtype: "m.text", body } });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body["event_id"] as string;
}

describe("client API basics", () => {
  let server: Running;
  let alice: RegisteredUser;
  beforeAll(async () => {
    const setup = await serverWithUsers();
    server = setup.server;
    alice = setup.alice;
    started.splice(started.indexOf(server.homeserver), 1);
  });
  afterAll(async () => server.homeserver.stop());

  it("answers /versions without a token", async () => {
    const answer = await call(server, "GET", "/_matrix/client/versions");
    expect(answer.status).toBe(200);
    expect(answer.body["versions"]).toContain("v1.11");
  });

  it("says who the token belongs to, from the header or the access_token query parameter", async () => {
    expect((await call(server, "GET", `${V3}/account/whoami`, { token: alice.access_token })).body).toEqual({ user_id: alice.user_id, device_id: alice.device_id, is_guest: false });
    expect((await call(server, "GET", `${V3}/account/whoami?access_token=${enc(alice.access_token)}`)).body["user_id"]).toBe(alice.user_id);
  });

  it("answers 401 M_MISSING_TOKEN without a token and 401 M_UNKNOWN_TOKEN for an unknown one", async () => {
    const missing = await call(server, "GET", `${V3}/joined_rooms`);
    expect([missing.status, missing.body["errcode"]]).toEqual([401, "M_MISSING_TOKEN"]);
    const unknown = await call(server, "GET", `${V3}/joined_rooms`, { token: "nope" });
    expect([unknown.status, unknown.body["errcode"]]).toEqual([401, "M_UNKNOWN_TOKEN"]);
  });

  it("answers 404 M_UNRECOGNIZED for an unknown endpoint and 405 for a known path with another method", async () => {
    const unknown = await call(server, "GET", `${V3}/no/such/thing`, { token: alice.access_token });
    expect([unknown.status, unknown.body["errcode"]]).toEqual([404, "M_UNRECOGNIZED"]);
    const method = await call(server, "DELETE", `${V3}/createRoom`, { token: alice.access_token });
    expect([method.status, method.body["errcode"]]).toEqual([405, "M_UNRECOGNIZED"]);
  });

  it("refuses a body that is not JSON (M_NOT_JSON) or not an object (M_BAD_JSON)", async () => {
    const notJson = await call(server, "POST", `${V3}/createRoom`, { token: alice.access_token, raw: "{nope" });
    expect([notJson.status, notJson.body["errcode"]]).toEqual([400, "M_NOT_JSON"]);
    const notObject = await call(server, "POST", `${V3}/createRoom`, { token: alice.access_token, raw: "[1]" });
    expect([notObject.status, notObject.body["errcode"]]).toEqual([400, "M_BAD_JSON"]);
    const badField = await call(server, "POST", `${V3}/createRoom`, { token: alice.access_token, body: { name: 5 } });
    expect([badField.status, badField.body["errcode"]]).toEqual([400, "M_BAD_JSON"]);
  });

  it("answers CORS preflights", async () => {
    const response = await fetch(`${server.info.address.url}${V3}/createRoom`, { method: "OPTIONS" });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("leaves federation paths to the federation router", async () => {
    const answer = await call(server, "GET", "/_matrix/federation/v1/version");
    expect(answer.status).toBe(200);
    expect((answer.body["server"] as JsonObject)["name"]).toBe("Myelin");
  });

  it("advertises room version 12 as the default capability", async () => {
    const answer = await call(server, "GET", `${V3}/capabilities`, { token: alice.access_token });
    const versions = (answer.body["capabilities"] as JsonObject)["m.room_versions"] as JsonObject;
    expect(versions["default"]).toBe("12");
    expect(Object.keys(versions["available"] as JsonObject)).toContain("1");
  });
});

describe("rooms over HTTP", () => {
  for (const version of ["1", "6", "10", "11", "12"]) {
    it(`creates a version ${version} room with the preset, name, topic and invite state, readable through /state`, async () => {
      const { server, alice, bob } = await serverWithUsers();
      const roomId = await createRoom(server, alice.access_token, { room_version: version, preset: "private_chat", name: "Room", topic: "Topic", invite: [bob.user_id] });
      const state = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state`, { token: alice.access_token });
      expect(state.status).toBe(200);
      const events = state.body as unknown as JsonObject[];
      const find = (type: string, key = "") => events.find((e) => e["type"] === type && e["state_key"] === key);
      expect((find("m.room.create")?.["content"] as JsonObject)["room_version"]).toBe(version);
      expect(find("m.room.create")?.["room_id"]).toBe(roomId);
      expect(find("m.room.join_rules")?.["content"]).toEqual({ join_rule: "invite" });
      expect(find("m.room.name")?.["content"]).toEqual({ name: "Room" });
      expect((find("m.room.topic")?.["content"] as JsonObject)["topic"]).toBe("Topic");
      expect(find("m.room.member", bob.user_id)?.["content"]).toEqual({ membership: "invite" });
      expect(find("m.room.member", alice.user_id)?.["content"]).toEqual({ membership: "join" });
      const users = (find("m.room.power_levels")?.["content"] as JsonObject)["users"];
      expect(users).toEqual(version === "12" ? {} : { [alice.user_id]: 100 });
      for (const event of events) {
        expect(Object.keys(event).sort()).toEqual(["content", "event_id", "origin_server_ts", "room_id", "sender", "state_key", "type", "unsigned"]);
      }
      // The invitee joins; both now list the room.
      expect((await call(server, "POST", `${V3}/join/${enc(roomId)}`, { token: bob.access_token, body: {} })).body).toEqual({ room_id: roomId });
      expect((await call(server, "GET", `${V3}/joined_rooms`, { token: bob.access_token })).body).toEqual({ joined_rooms: [roomId] });
    });
  }

  it("refuses an unsupported room version with 400 M_UNSUPPORTED_ROOM_VERSION", async () => {
    const { server, alice } = await serverWithUsers();
    const answer = await call(server, "POST", `${V3}/createRoom`, { token: alice.access_token, body: { room_version: "99" } });
    expect([answer.status, answer.body["errcode"]]).toEqual([400, "M_UNSUPPORTED_ROOM_VERSION"]);
  });

  it("sends messages and state, reads them back, and refuses a non-member with 403 M_FORBIDDEN", async () => {
    const { server, alice, bob } = await serverWithUsers();
    const roomId = await createRoom(server, alice.access_token);
    const eventId = await send(server, alice.access_token, roomId, "hello");
    const event = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token: alice.access_token });
    expect(event.status).toBe(200);
    expect(event.body).toMatchObject({ event_id: eventId, room_id: roomId, sender: alice.user_id, type: "m.room.message", content: { msgtype: "m.text", body: "hello" } });
    expect(event.body["unsigned"]).toMatchObject({ age: expect.any(Number) });
    expect(event.body["state_key"]).toBeUndefined();

    const put = await call(server, "PUT", `${V3}/rooms/${enc(roomId)}/state/org.example.thing/${enc("a/b")}`, { token: alice.access_token, body: { value: 1 } });
    expect(put.status).toBe(200);
    const read = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/org.example.thing/${enc("a/b")}`, { token: alice.access_token });
    expect(read.body).toEqual({ value: 1 });
    const asEvent = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/org.example.thing/${enc("a/b")}?format=event`, { token: alice.access_token });
    expect(asEvent.body).toMatchObject({ event_id: put.body["event_id"], state_key: "a/b" });
    const emptyKey = await call(server, "PUT", `${V3}/rooms/${enc(roomId)}/state/m.room.topic`, { token: alice.access_token, body: { topic: "t" } });
    expect(emptyKey.status).toBe(200);
    expect((await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/m.room.topic/`, { token: alice.access_token })).body).toEqual({ topic: "t" });
    const missing = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/m.room.avatar`, { token: alice.access_token });
    expect([missing.status, missing.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);

    const intruder = await call(server, "PUT", `${V3}/rooms/${enc(roomId)}/send/m.room.message/x`, { token: bob.access_token, body: { body: "hi" } });
    expect([intruder.status, intruder.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
    const peek = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token: bob.access_token });
    expect([peek.status, peek.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
    const state = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state`, { token: bob.access_token });
    expect([state.status, state.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
  });

  it("makes a repeated send with the same transaction ID return the same event", async () => {
    const { server, alice } = await serverWithUsers();
    const roomId = await createRoom(server, alice.access_token);
    const first = await send(server, alice.access_token, roomId, "once", "txn-1");
    const again = await send(server, alice.access_token, roomId, "once", "txn-1");
    expect(again).toBe(first);
  });

  it("paginates /messages backwards and forwards with from, to and limit", async () => {
    const { server, alice } = await serverWithUsers();
    const roomId = await createRoom(server, alice.access_token, { preset: "public_chat" });
    const sent: string[] = [];
    for (let i = 0; i < 7; i++) sent.push(await send(server, alice.access_token, roomId, `m${i}`));
    const page = (query: string) => call(server, "GET", `${V3}/rooms/${enc(roomId)}/messages?${query}`, { token: alice.access_token });
    const ids = (answer: Answer) => (answer.body["chunk"] as JsonObject[]).map((e) => e["event_id"]);

    const back1 = await page("dir=b&limit=3");
    expect(ids(back1)).toEqual([sent[6], sent[5], sent[4]]);
    const back2 = await page(`dir=b&limit=3&from=${back1.body["end"] as string}`);
    expect(ids(back2)).toEqual([sent[3], sent[2], sent[1]]);
    // Forward from where the second backward page ended lands just after it.
    const forward = await page(`dir=f&limit=4&from=${back2.body["end"] as string}`);
    expect(ids(forward)).toEqual([sent[1], sent[2], sent[3], sent[4]]);
    // `to` stops the page at a token.
    const bounded = await page(`dir=b&limit=10&to=${back1.body["end"] as string}`);
    expect(ids(bounded)).toEqual([sent[6], sent[5], sent[4]]);
    expect(bounded.body["end"]).toBeUndefined();
    // Walking back to the start of the room ends without an `end` token.
    let from = back2.body["end"] as string;
    const older: unknown[] = [];
    for (;;) {
      const next = await page(`dir=b&limit=5&from=${from}`);
      older.push(...ids(next));
      if (next.body["end"] === undefined) break;
      from = next.body["end"] as string;
    }
    expect(older[0]).toBe(sent[0]);
    expect((await page("dir=f&limit=1")).body["chunk"]).toMatchObject([{ type: "m.room.create" }]);
    const bad = await page("dir=x");
    expect([bad.status, bad.body["errcode"]]).toEqual([400, "M_INVALID_PARAM"]);
    const noDir = await page("limit=1");
    expect([noDir.status, noDir.body["errcode"]]).toEqual([400, "M_MISSING_PARAM"]);
  });

  it("hides history from before a join when history_visibility is joined", async () => {
    const { server, alice, bob } = await serverWithUsers();
    const roomId = await createRoom(server, alice.access_token, { preset: "public_chat", initial_state: [{ type: "m.room.history_visibility", content: { history_visibility: "joined" } }] });
    const secret = await send(server, alice.access_token, roomId, "before bob");
    await call(server, "POST", `${V3}/rooms/${enc(roomId)}/join`, { token: bob.access_token, body: {} });
    const after = await send(server, alice.access_token, roomId, "after bob");
    const chunk = (await call(server, "GET", `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=50`, { token: bob.access_token })).body["chunk"] as JsonObject[];
    const seen = chunk.map((e) => e["event_id"]);
    expect(seen).toContain(after);
    expect(seen).not.toContain(secret);
  });

  it("redacts: the content is stripped per room version, the event stays in the timeline with redacted_because", async () => {
    const { server, alice } = await serverWithUsers();
    for (const [version, keptInvite] of [["10", false], ["11", true]] as const) {
      const roomId = await createRoom(server, alice.access_token, { room_version: version });
      const message = await send(server, alice.access_token, roomId, "regret");
      const redaction = await call(server, "PUT", `${V3}/rooms/${enc(roomId)}/redact/${enc(message)}/r1`, { token: alice.access_token, body: { reason: "oops" } });
      expect(redaction.status).toBe(200);
      const event = (await call(server, "GET", `${V3}/rooms/${enc(roomId)}/event/${enc(message)}`, { token: alice.access_token })).body;
      expect(event["content"]).toEqual({});
      expect((event["unsigned"] as JsonObject)["redacted_because"]).toMatchObject({ event_id: redaction.body["event_id"], redacts: message, content: { reason: "oops" } });
      const chunk = (await call(server, "GET", `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=2`, { token: alice.access_token })).body["chunk"] as JsonObject[];
      expect(chunk.map((e) => e["event_id"])).toEqual([redaction.body["event_id"], message]);
      expect(chunk[1]?.["content"]).toEqual({});
      // Power levels: room 11's redaction algorithm keeps `invite`, room 10's does not.
      const power = (await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/m.room.power_levels?format=event`, { token: alice.access_token })).body;
      await call(server, "PUT", `${V3}/rooms/${enc(roomId)}/redact/${enc(power["event_id"] as string)}/r2`, { token: alice.access_token, body: {} });
      const redactedPower = (await call(server, "GET", `${V3}/rooms/${enc(roomId)}/event/${enc(power["event_id"] as string)}`, { token: alice.access_token })).body["content"] as JsonObject;
      expect(Object.hasOwn(redactedPower, "invite")).toBe(keptInvite);
      expect(redactedPower["users"]).toEqual({ [alice.user_id]: 100 });
      expect(Object.hasOwn(redactedPower, "notifications")).toBe(false);
    }
  });

  it("invites, kicks, bans and unbans, with 403 for forbidden actions", async () => {
    const { server, alice, bob } = await serverWithUsers();
    const carol = await addUser(server, "carol");
    const roomId = await createRoom(server, alice.access_token);
    const path = (action: string) => `${V3}/rooms/${enc(roomId)}/${action}`;
    const denied = await call(server, "POST", `${V3}/join/${enc(roomId)}`, { token: bob.access_token, body: {} });
    expect([denied.status, denied.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
    expect((await call(server, "POST", path("invite"), { token: alice.access_token, body: { user_id: bob.user_id } })).status).toBe(200);
    expect((await call(server, "POST", path("join"), { token: bob.access_token, body: {} })).status).toBe(200);
    const bobKicks = await call(server, "POST", path("kick"), { token: bob.access_token, body: { user_id: alice.user_id } });
    expect([bobKicks.status, bobKicks.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
    const bobInvites = await call(server, "POST", path("invite"), { token: bob.access_token, body: { user_id: carol.user_id } });
    expect(bobInvites.status).toBe(200); // private_chat: invite level 0
    expect((await call(server, "POST", path("kick"), { token: alice.access_token, body: { user_id: bob.user_id, reason: "bye" } })).status).toBe(200);
    const member = await call(server, "GET", `${path("state")}/m.room.member/${enc(bob.user_id)}`, { token: alice.access_token });
    expect(member.body).toEqual({ membership: "leave", reason: "bye" });
    expect((await call(server, "POST", path("ban"), { token: alice.access_token, body: { user_id: bob.user_id } })).status).toBe(200);
    const rejoin = await call(server, "POST", path("join"), { token: bob.access_token, body: {} });
    expect([rejoin.status, rejoin.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
    expect((await call(server, "POST", path("unban"), { token: alice.access_token, body: { user_id: bob.user_id } })).status).toBe(200);
    const notBanned = await call(server, "POST", path("unban"), { token: alice.access_token, body: { user_id: bob.user_id } });
    expect([notBanned.status, notBanned.body["errcode"]]).toEqual([403, "M_BAD_STATE"]);
    // Carol rejects her invite by leaving.
    expect((await call(server, "POST", path("leave"), { token: carol.access_token, body: {} })).status).toBe(200);
    const members = await call(server, "GET", path("joined_members"), { token: alice.access_token });
    expect(Object.keys(members.body["joined"] as JsonObject)).toEqual([alice.user_id]);
    const missingUser = await call(server, "POST", path("invite"), { token: alice.access_token, body: {} });
    expect([missingUser.status, missingUser.body["errcode"]]).toEqual([400, "M_MISSING_PARAM"]);
  });

  it("answers 404 M_NOT_FOUND for joins and invites that need federation when none is plugged in", async () => {
    const { server, alice } = await clientApiWithoutFederation();
    const unknownRoom = await call(server, "POST", `${V3}/join/${enc("!elsewhere:remote.test")}?via=remote.test`, { token: alice.access_token, body: {} });
    expect([unknownRoom.status, unknownRoom.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
    expect(unknownRoom.body["error"]).toMatch(/federation/);
    const roomId = await createRoom(server, alice.access_token);
    const remoteInvite = await call(server, "POST", `${V3}/rooms/${enc(roomId)}/invite`, { token: alice.access_token, body: { user_id: "@rob:remote.test" } });
    expect([remoteInvite.status, remoteInvite.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
    const remoteAlias = await call(server, "GET", `${V3}/directory/room/${enc("#x:remote.test")}`);
    expect([remoteAlias.status, remoteAlias.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
  });
});

/** The client API alone (no federation layer) over a real database, on 127.0.0.1. */
async function clientApiWithoutFederation(): Promise<{ server: Running; alice: RegisteredUser }> {
  const dataDir = await temporaryDirectory();
  const storage = await openSqliteStorage(join(dataDir, "homeserver.db"));
  const serverName = "solo.test";
  const engine = new RoomEngine({ storage, serverName, signingKey: generateSigningKey() });
  const app = express();
  app.use(createClientApi({ engine, storage, serverName }));
  const listener = await new Promise<http.Server>((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => resolve(server));
  });
  const port = (listener.address() as AddressInfo).port;
  const alice = await registerLocalUser(storage, { localpart: "alice", serverName });
  const homeserver = {
    stop: async () => {
      await new Promise((resolve) => listener.close(resolve));
      await storage.close();
    },
  } as unknown as Homeserver;
  started.push(homeserver);
  const info = { serverName, address: { host: "127.0.0.1", port, url: `http://127.0.0.1:${port}` } } as unknown as HomeserverInfo;
  return { server: { homeserver, info, dataDir }, alice };
}

describe("directory, profile, persistence", () => {
  it("creates, resolves, lists, refuses to overwrite and deletes aliases", async () => {
    const { server, alice, bob } = await serverWithUsers();
    const name = server.info.serverName;
    const roomId = await createRoom(server, alice.access_token, { room_alias_name: "lobby", preset: "public_chat" });
    const lobby = `#lobby:${name}`;
    expect((await call(server, "GET", `${V3}/directory/room/${enc(lobby)}`)).body).toEqual({ room_id: roomId, servers: [name] });
    const taken = await call(server, "POST", `${V3}/createRoom`, { token: bob.access_token, body: { room_alias_name: "lobby" } });
    expect([taken.status, taken.body["errcode"]]).toEqual([400, "M_ROOM_IN_USE"]);
    const canonical = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/m.room.canonical_alias`, { token: alice.access_token });
    expect(canonical.body).toEqual({ alias: lobby });

    const extra = `#extra:${name}`;
    expect((await call(server, "PUT", `${V3}/directory/room/${enc(extra)}`, { token: bob.access_token, body: { room_id: roomId } })).status).toBe(200);
    const conflict = await call(server, "PUT", `${V3}/directory/room/${enc(extra)}`, { token: alice.access_token, body: { room_id: roomId } });
    expect([conflict.status, conflict.body["errcode"]]).toEqual([409, "M_UNKNOWN"]);
    expect((await call(server, "GET", `${V3}/rooms/${enc(roomId)}/aliases`, { token: alice.access_token })).body).toEqual({ aliases: [extra, lobby].sort() });
    const notCreator = await call(server, "DELETE", `${V3}/directory/room/${enc(extra)}`, { token: alice.access_token });
    expect([notCreator.status, notCreator.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
    expect((await call(server, "DELETE", `${V3}/directory/room/${enc(extra)}`, { token: bob.access_token })).status).toBe(200);
    const gone = await call(server, "GET", `${V3}/directory/room/${enc(extra)}`);
    expect([gone.status, gone.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
    // Joining by alias.
    expect((await call(server, "POST", `${V3}/join/${enc(lobby)}`, { token: bob.access_token, body: {} })).body).toEqual({ room_id: roomId });
    const foreign = await call(server, "PUT", `${V3}/directory/room/${enc("#x:other.test")}`, { token: alice.access_token, body: { room_id: roomId } });
    expect([foreign.status, foreign.body["errcode"]]).toEqual([400, "M_INVALID_PARAM"]);
  });

  it("sets and reads profile fields, only one's own, and puts them in later member events", async () => {
    const { server, alice, bob } = await serverWithUsers();
    const profile = (user: string) => `${V3}/profile/${enc(user)}`;
    expect((await call(server, "GET", profile(alice.user_id))).body).toEqual({});
    expect((await call(server, "PUT", `${profile(alice.user_id)}/displayname`, { token: alice.access_token, body: { displayname: "Alice" } })).status).toBe(200);
    expect((await call(server, "PUT", `${profile(alice.user_id)}/avatar_url`, { token: alice.access_token, body: { avatar_url: "mxc://x/y" } })).status).toBe(200);
    expect((await call(server, "GET", profile(alice.user_id))).body).toEqual({ displayname: "Alice", avatar_url: "mxc://x/y" });
    expect((await call(server, "GET", `${profile(alice.user_id)}/displayname`)).body).toEqual({ displayname: "Alice" });
    const other = await call(server, "PUT", `${profile(alice.user_id)}/displayname`, { token: bob.access_token, body: { displayname: "Mallory" } });
    expect([other.status, other.body["errcode"]]).toEqual([403, "M_FORBIDDEN"]);
    expect((await call(server, "DELETE", `${profile(alice.user_id)}/avatar_url`, { token: alice.access_token })).status).toBe(200);
    const noAvatar = await call(server, "GET", `${profile(alice.user_id)}/avatar_url`);
    expect([noAvatar.status, noAvatar.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
    const nobody = await call(server, "GET", profile(`@nobody:${server.info.serverName}`));
    expect([nobody.status, nobody.body["errcode"]]).toEqual([404, "M_NOT_FOUND"]);
    const roomId = await createRoom(server, alice.access_token);
    const member = await call(server, "GET", `${V3}/rooms/${enc(roomId)}/state/m.room.member/${enc(alice.user_id)}`, { token: alice.access_token });
    expect(member.body).toEqual({ membership: "join", displayname: "Alice" });
  });

  it("keeps users, rooms, messages and aliases across a restart on the same data directory", async () => {
    const first = await startServer(undefined, "persist.test");
    const alice = await addUser(first, "alice");
    const roomId = await createRoom(first, alice.access_token, { room_alias_name: "kept", name: "Kept" });
    const message = await send(first, alice.access_token, roomId, "remember me");
    await first.homeserver.stop();

    const second = await startServer(first.dataDir, "persist.test");
    expect((await call(second, "GET", `${V3}/joined_rooms`, { token: alice.access_token })).body).toEqual({ joined_rooms: [roomId] });
    expect((await call(second, "GET", `${V3}/directory/room/${enc("#kept:persist.test")}`)).body["room_id"]).toBe(roomId);
    const chunk = (await call(second, "GET", `${V3}/rooms/${enc(roomId)}/messages?dir=b&limit=1`, { token: alice.access_token })).body["chunk"] as JsonObject[];
    expect(chunk.map((e) => e["event_id"])).toEqual([message]);
    expect(await send(second, alice.access_token, roomId, "and me")).toMatch(/^\$/);
  });
});
