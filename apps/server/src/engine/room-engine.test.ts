import { join } from "node:path";
import type { RoomEvent } from "@myelin/rooms";
import { checkAuth, createMemoryLookup, resolveState, stateKey, toRoomEvent } from "@myelin/rooms";
import type { SigningKey } from "@myelin/signing";
import { computeEventId, generateSigningKey, signEvent, verifyEvent } from "@myelin/signing";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { MatrixError, getRoomVersion } from "@myelin/types";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Storage } from "../storage/storage.js";
import { openSqliteStorage } from "../storage/storage.js";
import { removeTemporaryDirectories, temporaryDirectory } from "../test-helpers.js";
import type { EngineEvent, PersistedEvent } from "./index.js";
import { MAX_PREV_EVENTS_FOR_NEW_EVENT, RoomEngine, buildEvent } from "./index.js";

const HS = "hs.test";
const REMOTE_HS = "remote.test";
const ALICE = `@alice:${HS}`;
const BOB = `@bob:${HS}`;
const CAROL = `@carol:${HS}`;
const ROB = `@rob:${REMOTE_HS}`;

const opened: Storage[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
});
afterAll(removeTemporaryDirectories);

interface Server {
  readonly engine: RoomEngine;
  readonly storage: Storage;
  readonly key: SigningKey;
  readonly serverName: string;
  readonly path: string;
}

async function openServer(serverName = HS, options: { path?: string; key?: SigningKey; defaultRoomVersion?: string } = {}): Promise<Server> {
  const path = options.path ?? join(await temporaryDirectory(), "homeserver.db");
  const storage = await openSqliteStorage(path);
  opened.push(storage);
  const key = options.key ?? generateSigningKey();
  const engine = new RoomEngine({ storage, serverName, signingKey: key, ...(options.defaultRoomVersion === undefined ? {} : { defaultRoomVersion: options.defaultRoomVersion }) });
  return { engine, storage, key, serverName, path };
}

function view(event: EngineEvent): RoomEvent {
  return toRoomEvent(event.pdu, { rules: event.rules, eventId: event.eventId });
}

function content(event: EngineEvent | undefined): JsonObject {
  return (event?.pdu["content"] ?? {}) as JsonObject;
}

async function forbidden(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MatrixError) return `${error.status} ${error.errcode}`;
    throw error;
  }
  return "allowed";
}

/** Signs an unsigned template as `serverName` (what a remote server does after make_join). */
function signAs(template: JsonObject, rules: RoomVersionRules, serverName: string, key: SigningKey): { pdu: JsonObject; eventId: string } {
  const unsigned = rules.eventFormat === "v1" ? { ...template, event_id: `$${Math.random().toString(36).slice(2)}:${serverName}` } : template;
  const pdu = signEvent(unsigned, serverName, key, rules);
  return { pdu, eventId: computeEventId(pdu, rules) };
}

/** A remote event on chosen prev events, with auth events chosen by the test. */
async function remoteEvent(
  server: Server,
  rules: RoomVersionRules,
  roomId: string,
  draft: { type: string; sender: string; content: JsonObject; stateKey?: string },
  prevIds: readonly string[],
  authIds: readonly string[],
  key: SigningKey,
): Promise<{ pdu: JsonObject; eventId: string }> {
  const events = await server.engine.getEvents([...prevIds, ...authIds]);
  const ref = (id: string) => {
    const event = events.get(id);
    if (event === undefined) throw new Error(`unknown ${id}`);
    return { eventId: id, depth: event.stored.depth, pdu: event.pdu };
  };
  return buildEvent(draft, {
    rules,
    roomId,
    serverName: REMOTE_HS,
    signingKey: key,
    prevEvents: prevIds.map(ref),
    authEvents: authIds.map(ref),
    originServerTs: Date.now(),
  });
}

/** Has `@rob:remote.test` join a room of `server` the way federation does: template, remote signature, persist. */
async function remoteJoin(server: Server, roomId: string, key: SigningKey): Promise<PersistedEvent> {
  const template = await server.engine.buildEventTemplate({ roomId, type: "m.room.member", sender: ROB, stateKey: ROB, content: { membership: "join" } });
  const rules = getRoomVersion(template.roomVersion);
  const signed = signAs(template.pdu, rules, REMOTE_HS, key);
  const outcome = await server.engine.persistIncomingEvent({ roomId, ...signed });
  if (outcome.outcome !== "persisted") throw new Error(`join not persisted: ${outcome.outcome}`);
  return outcome.event;
}

describe("createRoom", () => {
  for (const version of ["1", "6", "10", "11", "12"]) {
    it(`creates a version ${version} room whose every event passes the auth rules against its own auth events and carries a valid signature`, async () => {
      const server = await openServer();
      const room = await server.engine.createRoom({ creator: ALICE, roomVersion: version, name: "The room", topic: "About it", invite: [BOB] });
      const rules = getRoomVersion(version);
      expect(room.roomVersion).toBe(version);
      expect(room.events.map((e) => e.stored.type)).toEqual([
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.name",
        "m.room.topic",
        "m.room.member",
      ]);
      const create = room.events[0] as PersistedEvent;
      const createView = view(create);
      if (rules.eventFormat === "v12") {
        // Room 12: no room_id on the create event; the room ID is its event ID with "!".
        expect(create.pdu["room_id"]).toBeUndefined();
        expect(room.roomId).toBe(`!${create.eventId.slice(1)}`);
      } else {
        expect(room.roomId).toMatch(new RegExp(`^![A-Za-z]{18}:${HS.replace(".", "\\.")}$`));
        expect(create.pdu["room_id"]).toBe(room.roomId);
      }
      const all = await server.engine.getEvents(room.events.map((e) => e.eventId));
      let previousDepth = 0;
      for (const event of room.events) {
        const stored = all.get(event.eventId) as EngineEvent;
        const authEvents = [...(await server.engine.getEvents(view(stored).auth_events)).values()].map(view);
        const decision = checkAuth(view(stored), authEvents, rules, { createEvent: createView });
        expect(decision.allowed, `${event.stored.type}: ${decision.message}`).toBe(true);
        const verified = await verifyEvent(stored.pdu, { rules, lookupKey: (name, keyId) => (name === HS && keyId === server.key.keyId ? { publicKey: server.key.publicKey } : undefined) });
        expect(verified.outcome).toBe("valid");
        // Depth grows along the single chain of creation events.
        expect(stored.stored.depth).toBe(previousDepth + 1);
        previousDepth = stored.stored.depth;
        if (rules.auth.privilegedCreators) expect(view(stored).auth_events).not.toContain(create.eventId);
      }
    });
  }

  it("leaves the room state the spec's createRoom section describes (room 12)", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", name: "N", invite: [BOB] });
    expect(room.roomVersion).toBe("12");
    const state = await server.engine.getCurrentState(room.roomId);
    const byKey = new Map(state.map((e) => [`${e.stored.type}|${e.stored.stateKey}`, e]));
    expect([...byKey.keys()].sort()).toEqual(
      [
        "m.room.create|",
        `m.room.member|${ALICE}`,
        `m.room.member|${BOB}`,
        "m.room.power_levels|",
        "m.room.join_rules|",
        "m.room.history_visibility|",
        "m.room.guest_access|",
        "m.room.name|",
      ].sort(),
    );
    expect(content(byKey.get("m.room.create|"))).toEqual({ room_version: "12" });
    expect(content(byKey.get(`m.room.member|${ALICE}`))).toEqual({ membership: "join" });
    expect(content(byKey.get(`m.room.member|${BOB}`))).toEqual({ membership: "invite" });
    const power = content(byKey.get("m.room.power_levels|"));
    expect(power["users"]).toEqual({});
    expect((power["events"] as JsonObject)["m.room.tombstone"]).toBe(150);
    expect(power["state_default"]).toBe(50);
    expect(content(byKey.get("m.room.join_rules|"))).toEqual({ join_rule: "public" });
    expect(content(byKey.get("m.room.guest_access|"))).toEqual({ guest_access: "forbidden" });
    expect(await server.engine.getJoinedServers(room.roomId)).toEqual([HS]);
  });

  it("uses the configured default room version", async () => {
    const server = await openServer(HS, { defaultRoomVersion: "10" });
    expect((await server.engine.createRoom({ creator: ALICE })).roomVersion).toBe("10");
  });

  it("refuses an unknown room version with M_UNSUPPORTED_ROOM_VERSION", async () => {
    const server = await openServer();
    expect(await forbidden(server.engine.createRoom({ creator: ALICE, roomVersion: "99" }))).toBe("400 M_UNSUPPORTED_ROOM_VERSION");
  });

  it("creates nothing when an initial event is refused (M_INVALID_ROOM_STATE)", async () => {
    const server = await openServer();
    // The override takes the creator's power away, so the name event that follows is refused.
    const attempt = server.engine.createRoom({ creator: ALICE, roomVersion: "10", name: "N", powerLevelContentOverride: { users: {} }, alias: "#taken:hs.test" });
    expect(await forbidden(attempt)).toBe("400 M_INVALID_ROOM_STATE");
    expect(await server.storage.transaction((tx) => tx.listRooms())).toEqual([]);
    // The alias of the failed room was rolled back with it.
    expect(await server.storage.transaction((tx) => tx.getAlias("#taken:hs.test"))).toBeUndefined();
  });

  it("refuses an alias in use with M_ROOM_IN_USE and maps a new one with a canonical alias event", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, alias: "#lobby:hs.test" });
    expect(content(await server.engine.getCurrentStateEvent(room.roomId, "m.room.canonical_alias", ""))).toEqual({ alias: "#lobby:hs.test" });
    expect((await server.storage.transaction((tx) => tx.getAlias("#lobby:hs.test")))?.roomId).toBe(room.roomId);
    expect(await forbidden(server.engine.createRoom({ creator: BOB, alias: "#lobby:hs.test" }))).toBe("400 M_ROOM_IN_USE");
  });

  it("lists a public room in the directory", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, visibility: "public" });
    expect((await server.storage.transaction((tx) => tx.listPublicRooms())).map((r) => r.roomId)).toEqual([room.roomId]);
  });
});

describe("sending local events", () => {
  it("cites the forward extremity, selects auth events from the state and sets depth to the deepest prev plus one", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, roomVersion: "11" });
    const [head] = await server.engine.getForwardExtremities(room.roomId);
    const headEvent = (await server.engine.getEvent(head as string)) as EngineEvent;
    const message = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { msgtype: "m.text", body: "hi" } });
    expect(view(message).prev_events).toEqual([head]);
    expect(message.stored.depth).toBe(headEvent.stored.depth + 1);
    const state = await server.engine.getCurrentStateIds(room.roomId);
    expect(new Set(view(message).auth_events)).toEqual(
      new Set([state.get(stateKey("m.room.create", "")), state.get(stateKey("m.room.power_levels", "")), state.get(stateKey("m.room.member", ALICE))]),
    );
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual([message.eventId]);
  });

  it("refuses an event from a non-member with M_FORBIDDEN naming the auth rule, and stores nothing", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE });
    const before = await server.engine.getMaxStream(room.roomId);
    let error: unknown;
    try {
      await server.engine.sendLocalEvent({ roomId: room.roomId, sender: BOB, type: "m.room.message", content: { body: "let me in" } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MatrixError);
    expect((error as MatrixError).errcode).toBe("M_FORBIDDEN");
    expect((error as MatrixError).message).toMatch(/member|join/i);
    expect(await server.engine.getMaxStream(room.roomId)).toBe(before);
  });

  it("refuses a user of another server as sender and an unknown room with M_NOT_FOUND", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE });
    expect(await forbidden(server.engine.sendLocalEvent({ roomId: room.roomId, sender: ROB, type: "m.room.message", content: {} }))).toBe("403 M_FORBIDDEN");
    expect(await forbidden(server.engine.sendLocalEvent({ roomId: "!nowhere:hs.test", sender: ALICE, type: "m.room.message", content: {} }))).toBe("404 M_NOT_FOUND");
  });

  it("refuses content that is not canonical JSON in rooms 6+ (M_BAD_JSON) and oversized events (M_TOO_LARGE)", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, roomVersion: "10" });
    expect(await forbidden(server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { n: 1.5 } }))).toBe("400 M_BAD_JSON");
    expect(await forbidden(server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "x".repeat(70_000) } }))).toBe("413 M_TOO_LARGE");
  });

  it("returns the first event for a repeated client transaction instead of sending another", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE });
    const txn = { deviceId: "DEV", txnId: "t1" };
    const first = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "once" }, txn });
    const again = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "once" }, txn });
    expect(again.eventId).toBe(first.eventId);
    expect((await server.engine.getTimeline(room.roomId, { dir: "b", limit: 2 })).map((e) => e.eventId)).toEqual([first.eventId, room.events.at(-1)?.eventId]);
  });

  it("does not resend a state event identical to the current one", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, name: "Same" });
    const nameEvent = await server.engine.getCurrentStateEvent(room.roomId, "m.room.name", "");
    const again = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.name", stateKey: "", content: { name: "Same" } });
    expect(again.eventId).toBe(nameEvent?.eventId);
    const changed = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.name", stateKey: "", content: { name: "Other" } });
    expect(changed.eventId).not.toBe(nameEvent?.eventId);
    expect((await server.engine.getCurrentStateEvent(room.roomId, "m.room.name", ""))?.eventId).toBe(changed.eventId);
  });

  it("runs persist hooks inside the event's transaction: a failing hook leaves no event behind", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE });
    server.engine.addPersistHook(async (tx, event) => {
      if (content(event)["body"] === "boom") throw new Error("hook failed");
      await tx.enqueueOutbound("other.test", { kind: "pdu", eventId: event.eventId });
    });
    const seen: string[] = [];
    server.engine.onEventPersisted((event) => seen.push(event.eventId));
    const sent = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "fine" } });
    expect(seen).toEqual([sent.eventId]);
    const queued = await server.storage.transaction((tx) => tx.peekOutbound("other.test", { maxPdus: 10, maxEdus: 10 }));
    expect(queued.map((item) => (item.kind === "pdu" ? item.eventId : ""))).toEqual([sent.eventId]);
    const stream = await server.engine.getMaxStream(room.roomId);
    await expect(server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "boom" } })).rejects.toThrow("hook failed");
    expect(await server.engine.getMaxStream(room.roomId)).toBe(stream);
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual([sent.eventId]);
    expect(seen).toEqual([sent.eventId]);
  });
});

describe("local membership", () => {
  it("invites, joins, kicks, bans and unbans with the auth rules' answers for forbidden changes", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, roomVersion: "10" });
    // Private room: Bob cannot join uninvited.
    expect(await forbidden(server.engine.join(room.roomId, BOB))).toBe("403 M_FORBIDDEN");
    await server.engine.invite(room.roomId, ALICE, BOB);
    expect((await server.engine.getMembership(room.roomId, BOB))?.membership).toBe("invite");
    await server.engine.join(room.roomId, BOB);
    expect((await server.engine.getJoinedMembers(room.roomId)).has(BOB)).toBe(true);
    // Bob (power 0) may neither kick nor ban Alice (power 100), nor invite someone already joined.
    expect(await forbidden(server.engine.kick(room.roomId, BOB, ALICE))).toBe("403 M_FORBIDDEN");
    expect(await forbidden(server.engine.ban(room.roomId, BOB, ALICE))).toBe("403 M_FORBIDDEN");
    expect(await forbidden(server.engine.invite(room.roomId, ALICE, BOB))).toBe("403 M_FORBIDDEN");
    // Kicking someone not in the room, unbanning someone not banned: M_BAD_STATE.
    expect(await forbidden(server.engine.kick(room.roomId, ALICE, CAROL))).toBe("403 M_BAD_STATE");
    expect(await forbidden(server.engine.unban(room.roomId, ALICE, BOB))).toBe("403 M_BAD_STATE");
    await server.engine.kick(room.roomId, ALICE, BOB, { reason: "out" });
    const kicked = await server.engine.getMembership(room.roomId, BOB);
    expect(content(kicked?.event)).toEqual({ membership: "leave", reason: "out" });
    await server.engine.ban(room.roomId, ALICE, BOB);
    expect((await server.engine.getMembership(room.roomId, BOB))?.membership).toBe("ban");
    // A banned user cannot be invited back, nor join.
    expect(await forbidden(server.engine.invite(room.roomId, ALICE, BOB))).toBe("403 M_FORBIDDEN");
    await server.engine.unban(room.roomId, ALICE, BOB);
    expect((await server.engine.getMembership(room.roomId, BOB))?.membership).toBe("leave");
    await server.engine.invite(room.roomId, ALICE, BOB);
    await server.engine.leave(room.roomId, BOB);
    expect((await server.engine.getMembership(room.roomId, BOB))?.membership).toBe("leave");
    // Leaving again sends nothing: the current leave event is returned.
    const left = await server.engine.getMembership(room.roomId, BOB);
    expect((await server.engine.leave(room.roomId, BOB)).eventId).toBe(left?.event.eventId);
    // A user who was never in the room cannot "leave" it (auth: leave only from invite, join, knock).
    expect(await forbidden(server.engine.leave(room.roomId, CAROL))).toBe("403 M_FORBIDDEN");
    expect(await server.engine.getJoinedRooms(ALICE)).toEqual([room.roomId]);
    expect(await server.engine.getJoinedRooms(BOB)).toEqual([]);
  });

  it("copies the user's profile into the join event", async () => {
    const server = await openServer();
    await server.storage.transaction(async (tx) => {
      await tx.createUser({ userId: BOB, createdTs: 1 });
      await tx.setProfile(BOB, { displayname: "Bob", avatarUrl: "mxc://hs.test/b" });
    });
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat" });
    const joined = await server.engine.join(room.roomId, BOB);
    expect(content(joined)).toEqual({ membership: "join", displayname: "Bob", avatar_url: "mxc://hs.test/b" });
  });
});

describe("pending invites", () => {
  it("come from the current state in a room we are in, and end when the user joins", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "private_chat", roomVersion: "11", name: "Secret" });
    await server.engine.invite(room.roomId, ALICE, BOB);
    const invites = await server.engine.getPendingInvites(BOB);
    expect(invites.map((i) => [i.roomId, i.inviter, i.userId])).toEqual([[room.roomId, ALICE, BOB]]);
    expect(invites[0]?.inviteRoomState.map((e) => e["type"])).toEqual(["m.room.create", "m.room.join_rules", "m.room.name"]);
    expect(await server.engine.getPendingInvites(CAROL)).toEqual([]);
    await server.engine.join(room.roomId, BOB);
    expect(await server.engine.getPendingInvites(BOB)).toEqual([]);
  });

  it("keep an invite received from another server for a room we are not in, until it is answered", async () => {
    const resident = await openServer(REMOTE_HS);
    const server = await openServer(HS);
    const room = await resident.engine.createRoom({ creator: ROB, preset: "private_chat", roomVersion: "12", name: "Elsewhere" });
    const built = await resident.engine.buildLocalEvent({ roomId: room.roomId, sender: ROB, type: "m.room.member", stateKey: CAROL, content: { membership: "invite" } });
    const cosigned = signEvent(built.pdu, HS, server.key, built.rules);
    const stripped = await resident.engine.getStrippedState(room.roomId);
    expect(stripped.map((e) => e["type"])).toEqual(["m.room.create", "m.room.join_rules", "m.room.name"]);
    await server.engine.recordInvite({ roomId: room.roomId, roomVersion: "12", eventId: built.eventId, pdu: cosigned, inviteRoomState: stripped });
    expect((await server.engine.getRoom(room.roomId))?.creator).toBe(ROB);
    const invite = await server.engine.getPendingInvite(room.roomId, CAROL);
    expect(invite).toMatchObject({ roomId: room.roomId, roomVersion: "12", inviter: ROB, userId: CAROL, inviteRoomState: stripped });
    expect(invite?.event.stored.outlier).toBe(true);
    expect((await server.engine.getPendingInvites(CAROL)).map((i) => i.event.eventId)).toEqual([built.eventId]);
    // Recording it twice changes nothing; an invite for a user of another server is refused.
    await server.engine.recordInvite({ roomId: room.roomId, roomVersion: "12", eventId: built.eventId, pdu: cosigned, inviteRoomState: stripped });
    expect(await server.engine.getPendingInvites(CAROL)).toHaveLength(1);
    const foreign = await resident.engine.buildLocalEvent({ roomId: room.roomId, sender: ROB, type: "m.room.member", stateKey: `@zed:${REMOTE_HS}`, content: { membership: "invite" } });
    expect(await forbidden(server.engine.recordInvite({ roomId: room.roomId, roomVersion: "12", eventId: foreign.eventId, pdu: foreign.pdu, inviteRoomState: [] }))).toBe("400 M_BAD_JSON");
    await server.engine.forgetPendingInvite(room.roomId, CAROL);
    expect(await server.engine.getPendingInvite(room.roomId, CAROL)).toBeUndefined();
  });
});

describe("redaction", () => {
  it("puts redacts at the top level in rooms 1-10 and in the content from room 11", async () => {
    const server = await openServer();
    for (const [version, inContent] of [["10", false], ["11", true]] as const) {
      const room = await server.engine.createRoom({ creator: ALICE, roomVersion: version });
      const message = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "oops" } });
      const redaction = await server.engine.redact({ roomId: room.roomId, sender: ALICE, eventId: message.eventId, reason: "typo" });
      if (inContent) {
        expect(redaction.pdu["redacts"]).toBeUndefined();
        expect(content(redaction)).toEqual({ redacts: message.eventId, reason: "typo" });
      } else {
        expect(redaction.pdu["redacts"]).toBe(message.eventId);
        expect(content(redaction)).toEqual({ reason: "typo" });
      }
      expect((await server.engine.getRedactions(room.roomId, [message.eventId])).get(message.eventId)?.eventId).toBe(redaction.eventId);
    }
  });

  it("lets a user without the redact level redact only their own events", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat" });
    await server.engine.join(room.roomId, BOB);
    const alices = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "a" } });
    const bobs = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: BOB, type: "m.room.message", content: { body: "b" } });
    expect(await forbidden(server.engine.redact({ roomId: room.roomId, sender: BOB, eventId: alices.eventId }))).toBe("403 M_FORBIDDEN");
    await server.engine.redact({ roomId: room.roomId, sender: BOB, eventId: bobs.eventId });
    await server.engine.redact({ roomId: room.roomId, sender: ALICE, eventId: alices.eventId });
    expect([...(await server.engine.getRedactions(room.roomId, [alices.eventId, bobs.eventId])).keys()].sort()).toEqual([alices.eventId, bobs.eventId].sort());
    expect(await forbidden(server.engine.redact({ roomId: room.roomId, sender: ALICE, eventId: "$unknown" }))).toBe("404 M_NOT_FOUND");
  });
});

describe("history visibility", () => {
  it("shows events to members by history_visibility at the event: joined, invited, shared, world_readable", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", initialState: [{ type: "m.room.history_visibility", content: { history_visibility: "joined" } }] });
    const beforeInvite = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "1" } });
    await server.engine.invite(room.roomId, ALICE, BOB);
    const whileInvited = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "2" } });
    const bobJoin = await server.engine.join(room.roomId, BOB);
    const afterJoin = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "3" } });
    expect(await server.engine.canUserSeeEvent(BOB, beforeInvite)).toBe(false);
    expect(await server.engine.canUserSeeEvent(BOB, whileInvited)).toBe(false);
    expect(await server.engine.canUserSeeEvent(BOB, bobJoin)).toBe(true);
    expect(await server.engine.canUserSeeEvent(BOB, afterJoin)).toBe(true);

    await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.history_visibility", stateKey: "", content: { history_visibility: "invited" } });
    await server.engine.invite(room.roomId, ALICE, CAROL);
    const carolInvited = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "4" } });
    expect(await server.engine.canUserSeeEvent(CAROL, carolInvited)).toBe(true);
    expect(await server.engine.canUserSeeEvent(CAROL, afterJoin)).toBe(false);

    await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.history_visibility", stateKey: "", content: { history_visibility: "world_readable" } });
    const open = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "5" } });
    expect(await server.engine.canUserSeeEvent("@stranger:elsewhere.test", open)).toBe(true);
    expect(await server.engine.canUserSeeEvent("@stranger:elsewhere.test", afterJoin)).toBe(false);
  });

  it("shows shared history to users who joined later, and stops at a leave", async () => {
    const server = await openServer();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat" });
    const early = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "early" } });
    expect(await server.engine.canUserSeeEvent(BOB, early)).toBe(false);
    await server.engine.join(room.roomId, BOB);
    expect(await server.engine.canUserSeeEvent(BOB, early)).toBe(true);
    await server.engine.leave(room.roomId, BOB);
    const late = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "late" } });
    expect(await server.engine.canUserSeeEvent(BOB, early)).toBe(true);
    expect(await server.engine.canUserSeeEvent(BOB, late)).toBe(false);
  });

  it("shows shared history to any server, joined history only to servers with a member joined at the event", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", roomVersion: "10" });
    const shared = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "s" } });
    await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.history_visibility", stateKey: "", content: { history_visibility: "joined" } });
    const hidden = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "h" } });
    expect(await server.engine.canServerSeeEvent(REMOTE_HS, shared)).toBe(true);
    expect(await server.engine.canServerSeeEvent(REMOTE_HS, hidden)).toBe(false);
    await remoteJoin(server, room.roomId, remoteKey);
    const seen = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "v" } });
    expect(await server.engine.canServerSeeEvent(REMOTE_HS, seen)).toBe(true);
    expect(await server.engine.canServerSeeEvent(REMOTE_HS, hidden)).toBe(false);
  });
});

describe("received events (federation)", () => {
  it("persists a remote join built from a template, and reports the room's joined servers", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", roomVersion: "1" });
    const seen: PersistedEvent[] = [];
    server.engine.onEventPersisted((event) => seen.push(event));
    const join = await remoteJoin(server, room.roomId, remoteKey);
    expect(join.local).toBe(false);
    expect(seen.map((e) => e.eventId)).toEqual([join.eventId]);
    expect(await server.engine.getJoinedServers(room.roomId)).toEqual([HS, REMOTE_HS].sort());
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual([join.eventId]);
    // The state before the join is the state after its prev event.
    const [prev] = view(join).prev_events;
    expect(await server.engine.getStateBefore(join.eventId)).toEqual(await server.engine.getStateAfter(prev as string));
    const local = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "welcome" } });
    expect(seen.at(-1)?.local).toBe(true);
    expect(view(local).prev_events).toEqual([join.eventId]);
  });

  it("rejects an event its own auth events refuse, keeping it out of the timeline and the extremities", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const room = await server.engine.createRoom({ creator: ALICE, roomVersion: "10" });
    const state = await server.engine.getCurrentStateIds(room.roomId);
    const [head] = await server.engine.getForwardExtremities(room.roomId);
    const rules = getRoomVersion("10");
    const authIds = [state.get(stateKey("m.room.create", "")) as string, state.get(stateKey("m.room.power_levels", "")) as string];
    const intruder = await remoteEvent(server, rules, room.roomId, { type: "m.room.message", sender: ROB, content: { body: "hi" } }, [head as string], authIds, remoteKey);
    const outcome = await server.engine.persistIncomingEvent({ roomId: room.roomId, ...intruder });
    expect(outcome.outcome).toBe("rejected");
    if (outcome.outcome === "rejected") expect(outcome.decision.allowed).toBe(false);
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual([head]);
    expect((await server.engine.getTimeline(room.roomId, { dir: "b", limit: 1 }))[0]?.eventId).toBe(head);
    expect((await server.engine.getEvent(intruder.eventId))?.stored.rejectedReason).toMatch(/auth rule/);
    // A duplicate delivery changes nothing.
    expect((await server.engine.persistIncomingEvent({ roomId: room.roomId, ...intruder })).outcome).toBe("duplicate");
  });

  it("soft-fails an event allowed by the state before it but not by the current state", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", roomVersion: "11" });
    const join = await remoteJoin(server, room.roomId, remoteKey);
    await server.engine.ban(room.roomId, ALICE, ROB);
    const extremities = await server.engine.getForwardExtremities(room.roomId);
    // Rob sends on top of his join, not having seen the ban.
    const state = (await server.engine.getStateAfter(join.eventId)) as Map<string, string>;
    const authIds = [stateKey("m.room.create", ""), stateKey("m.room.power_levels", ""), stateKey("m.room.member", ROB)].map((k) => state.get(k) as string);
    const late = await remoteEvent(server, getRoomVersion("11"), room.roomId, { type: "m.room.message", sender: ROB, content: { body: "sneaky" } }, [join.eventId], authIds, remoteKey);
    const outcome = await server.engine.persistIncomingEvent({ roomId: room.roomId, ...late });
    expect(outcome).toMatchObject({ outcome: "persisted", softFailed: true });
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual(extremities);
    const timeline = await server.engine.getTimeline(room.roomId, { dir: "b", limit: 5 });
    expect(timeline.map((e) => e.eventId)).not.toContain(late.eventId);
  });

  it("reports missing auth events and missing prev state, and accepts the event once the state before it is given", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", roomVersion: "10" });
    const join = await remoteJoin(server, room.roomId, remoteKey);
    const rules = getRoomVersion("10");
    const state = (await server.engine.getStateAfter(join.eventId)) as Map<string, string>;
    const authIds = [stateKey("m.room.create", ""), stateKey("m.room.power_levels", ""), stateKey("m.room.member", ROB)].map((k) => state.get(k) as string);
    const message = await remoteEvent(server, rules, room.roomId, { type: "m.room.message", sender: ROB, content: { body: "gap" } }, [join.eventId], authIds, remoteKey);
    // Pretend its prev event is one we never received.
    const gapped = signAs({ ...stripSignatures(message.pdu), prev_events: ["$unseen"] }, rules, REMOTE_HS, remoteKey);
    expect(await server.engine.persistIncomingEvent({ roomId: room.roomId, ...gapped })).toEqual({ outcome: "missing-prev-state", missing: ["$unseen"] });
    const unknownAuth = signAs({ ...stripSignatures(message.pdu), auth_events: [...authIds, "$lost"] }, rules, REMOTE_HS, remoteKey);
    expect(await server.engine.persistIncomingEvent({ roomId: room.roomId, ...unknownAuth })).toEqual({ outcome: "missing-auth-events", missing: ["$lost"] });
    const filled = await server.engine.persistIncomingEvent({ roomId: room.roomId, ...gapped, stateBefore: state });
    expect(filled).toMatchObject({ outcome: "persisted", softFailed: false });
    // Its prev is unknown, so both it and the previous head are now extremities.
    expect(new Set(await server.engine.getForwardExtremities(room.roomId))).toEqual(new Set([join.eventId, gapped.eventId]));
  });

  it("resolves the current state over forked branches and cites every extremity in the next local event", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const rules = getRoomVersion("10");
    const room = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", roomVersion: "10", powerLevelContentOverride: { users: { [ALICE]: 100, [ROB]: 50 } } });
    const join = await remoteJoin(server, room.roomId, remoteKey);
    // Alice renames the room; concurrently (on the same prev) Rob renames it too.
    const aliceName = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.name", stateKey: "", content: { name: "Alice's" } });
    const state = (await server.engine.getStateAfter(join.eventId)) as Map<string, string>;
    const authIds = [stateKey("m.room.create", ""), stateKey("m.room.power_levels", ""), stateKey("m.room.member", ROB)].map((k) => state.get(k) as string);
    const robName = await remoteEvent(server, rules, room.roomId, { type: "m.room.name", sender: ROB, stateKey: "", content: { name: "Rob's" } }, [join.eventId], authIds, remoteKey);
    expect(await server.engine.persistIncomingEvent({ roomId: room.roomId, ...robName })).toMatchObject({ outcome: "persisted", softFailed: false });
    expect(new Set(await server.engine.getForwardExtremities(room.roomId))).toEqual(new Set([aliceName.eventId, robName.eventId]));

    const stateA = (await server.engine.getStateAfter(aliceName.eventId)) as Map<string, string>;
    const stateB = (await server.engine.getStateAfter(robName.eventId)) as Map<string, string>;
    const all = await server.engine.getEvents([...new Set([...stateA.values(), ...stateB.values(), ...(await server.engine.getAuthChainIds([...stateA.values(), ...stateB.values()]))])]);
    const expected = await resolveState({ rules, stateSets: [stateA, stateB], lookup: createMemoryLookup([...all.values()].map(view)), roomId: room.roomId });
    expect(await server.engine.getCurrentStateIds(room.roomId)).toEqual(expected.state);

    const next = await server.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "merge" } });
    expect(new Set(view(next).prev_events)).toEqual(new Set([aliceName.eventId, robName.eventId]));
    expect(next.stored.depth).toBe(Math.max(aliceName.stored.depth, (await server.engine.getEvent(robName.eventId))?.stored.depth ?? 0) + 1);
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual([next.eventId]);
    expect(MAX_PREV_EVENTS_FOR_NEW_EVENT).toBe(10);
  });

  it("joins another server's room: outliers for its state and auth chain, then the join with the state before it", async () => {
    const resident = await openServer(REMOTE_HS);
    const joiner = await openServer(HS);
    for (const version of ["10", "12"]) {
      const rules = getRoomVersion(version);
      const room = await resident.engine.createRoom({ creator: ROB, preset: "public_chat", roomVersion: version, name: "Remote room" });
      // make_join on the resident, signed by the joining server, then send_join on the resident.
      const template = await resident.engine.buildEventTemplate({ roomId: room.roomId, type: "m.room.member", sender: ALICE, stateKey: ALICE, content: { membership: "join" } });
      const join = signAs(template.pdu, rules, HS, joiner.key);
      expect(await resident.engine.persistIncomingEvent({ roomId: room.roomId, ...join })).toMatchObject({ outcome: "persisted" });
      const stateBefore = (await resident.engine.getStateBefore(join.eventId)) as Map<string, string>;
      const chain = await resident.engine.getAuthChainIds([...stateBefore.values(), join.eventId]);
      const shipped = await resident.engine.getEvents([...new Set([...stateBefore.values(), ...chain])]);

      await joiner.engine.registerRoom({ roomId: room.roomId, roomVersion: version, creator: ROB });
      // Any order: the engine sorts them by their auth events.
      const outliers = await joiner.engine.persistOutliers(room.roomId, [...shipped.values()].reverse().map((e) => ({ pdu: e.pdu, eventId: e.eventId })));
      expect(outliers.rejected).toEqual([]);
      expect(outliers.missingAuth).toEqual([]);
      expect(new Set(outliers.stored)).toEqual(new Set(shipped.keys()));
      expect(await joiner.engine.isResident(room.roomId)).toBe(false);
      const persisted = await joiner.engine.persistIncomingEvent({ roomId: room.roomId, ...join, stateBefore });
      expect(persisted).toMatchObject({ outcome: "persisted", softFailed: false });
      expect(await joiner.engine.isResident(room.roomId)).toBe(true);
      expect(await joiner.engine.getJoinedServers(room.roomId)).toEqual([HS, REMOTE_HS].sort());
      expect(content(await joiner.engine.getCurrentStateEvent(room.roomId, "m.room.name", ""))).toEqual({ name: "Remote room" });

      // Alice now speaks locally, and the resident accepts it.
      const hello = await joiner.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "hello" } });
      expect(await resident.engine.persistIncomingEvent({ roomId: room.roomId, pdu: hello.pdu, eventId: hello.eventId })).toMatchObject({ outcome: "persisted", softFailed: false });
    }
  });

  it("places a backfilled event below the timeline, leaving the heads, the current state and the listeners alone", async () => {
    const resident = await openServer(REMOTE_HS);
    const joiner = await openServer(HS);
    const room = await resident.engine.createRoom({ creator: ROB, preset: "public_chat", roomVersion: "10" });
    const history = [];
    for (const body of ["one", "two"]) history.push(await resident.engine.sendLocalEvent({ roomId: room.roomId, sender: ROB, type: "m.room.message", content: { body } }));
    const template = await resident.engine.buildEventTemplate({ roomId: room.roomId, type: "m.room.member", sender: ALICE, stateKey: ALICE, content: { membership: "join" } });
    const join = signAs(template.pdu, getRoomVersion("10"), HS, joiner.key);
    await resident.engine.persistIncomingEvent({ roomId: room.roomId, ...join });
    const stateBefore = (await resident.engine.getStateBefore(join.eventId)) as Map<string, string>;
    const chain = await resident.engine.getAuthChainIds([...stateBefore.values()]);
    const shipped = await resident.engine.getEvents([...new Set([...stateBefore.values(), ...chain])]);
    await joiner.engine.registerRoom({ roomId: room.roomId, roomVersion: "10", creator: ROB });
    await joiner.engine.persistOutliers(room.roomId, [...shipped.values()].map((e) => ({ pdu: e.pdu, eventId: e.eventId })));
    await joiner.engine.persistIncomingEvent({ roomId: room.roomId, ...join, stateBefore });
    const heads = await joiner.engine.getForwardExtremities(room.roomId);
    const current = await joiner.engine.getCurrentStateIds(room.roomId);
    const seen: string[] = [];
    joiner.engine.onEventPersisted((event) => seen.push(event.eventId));

    // "two" is the join's prev: its state is the state before the join.
    const two = history[1] as EngineEvent;
    const lowest = await joiner.storage.transaction((tx) => tx.reserveBackfillOrderings(1));
    const outcome = await joiner.engine.persistIncomingEvent({ roomId: room.roomId, pdu: two.pdu, eventId: two.eventId, stateBefore, backfilled: { streamOrdering: lowest } });
    expect(outcome).toMatchObject({ outcome: "persisted", softFailed: false });
    expect((await joiner.engine.getEvent(two.eventId))?.stored.streamOrdering).toBe(lowest);
    expect((await joiner.engine.getTimeline(room.roomId, { dir: "f", limit: 10 })).map((e) => e.eventId)).toEqual([two.eventId, join.eventId]);
    expect(await joiner.engine.getForwardExtremities(room.roomId)).toEqual(heads);
    expect(await joiner.engine.getCurrentStateIds(room.roomId)).toEqual(current);
    expect(seen).toEqual([]);
  });

  it("builds a restricted-join template naming one of our users as authoriser, counting our signature as coming", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const rules = getRoomVersion("10");
    const lobby = await server.engine.createRoom({ creator: ALICE, preset: "public_chat", roomVersion: "10" });
    const inner = await server.engine.createRoom({
      creator: ALICE,
      preset: "private_chat",
      roomVersion: "10",
      initialState: [{ type: "m.room.join_rules", state_key: "", content: { join_rule: "restricted", allow: [{ type: "m.room_membership", room_id: lobby.roomId }] } }],
    });
    const draft = { roomId: inner.roomId, type: "m.room.member", sender: ROB, stateKey: ROB };
    const template = await server.engine.buildEventTemplate({ ...draft, content: { membership: "join", join_authorised_via_users_server: ALICE } });
    expect(template.pdu["content"]).toEqual({ membership: "join", join_authorised_via_users_server: ALICE });
    // Our server cannot stand in for another server's authoriser, nor authorise without power.
    expect(await forbidden(server.engine.buildEventTemplate({ ...draft, content: { membership: "join", join_authorised_via_users_server: `@eve:elsewhere.test` } }))).toBe("403 M_FORBIDDEN");
    expect(await forbidden(server.engine.buildEventTemplate({ ...draft, content: { membership: "join" } }))).toBe("403 M_FORBIDDEN");
    // Signed by the joiner, then by us at send_join, the join is accepted.
    const signed = signAs(template.pdu, rules, REMOTE_HS, remoteKey);
    const countersigned = signEvent(signed.pdu, HS, server.key, rules);
    expect(Object.keys(countersigned.signatures).sort()).toEqual([HS, REMOTE_HS].sort());
    const outcome = await server.engine.persistIncomingEvent({ roomId: inner.roomId, pdu: countersigned, eventId: computeEventId(countersigned, rules) });
    expect(outcome).toMatchObject({ outcome: "persisted", softFailed: false });
    expect((await server.engine.getMembership(inner.roomId, ROB))?.membership).toBe("join");
  });

  it("stores as rejected an outlier its auth events refuse, and one marked rejected on the caller's say-so", async () => {
    const server = await openServer();
    const remoteKey = generateSigningKey();
    const room = await server.engine.createRoom({ creator: ALICE, roomVersion: "10" });
    const state = await server.engine.getCurrentStateIds(room.roomId);
    const [head] = await server.engine.getForwardExtremities(room.roomId);
    const rules = getRoomVersion("10");
    const authIds = [state.get(stateKey("m.room.create", "")) as string, state.get(stateKey("m.room.power_levels", "")) as string];
    const forged = await remoteEvent(server, rules, room.roomId, { type: "m.room.topic", sender: ROB, stateKey: "", content: { topic: "forged" } }, [head as string], authIds, remoteKey);
    const outcome = await server.engine.persistOutliers(room.roomId, [forged]);
    expect(outcome.stored).toEqual([forged.eventId]);
    expect(outcome.rejected.map((r) => r.eventId)).toEqual([forged.eventId]);
    const other = await remoteEvent(server, rules, room.roomId, { type: "m.room.message", sender: ROB, content: { body: "x" } }, [head as string], authIds, remoteKey);
    expect(await server.engine.persistRejectedEvent({ roomId: room.roomId, ...other, reason: "field over 255 bytes" })).toMatchObject({ outcome: "rejected" });
    const stored = await server.engine.getEvent(other.eventId);
    expect(stored?.stored.rejectedReason).toBe("field over 255 bytes");
    // Its state before is known (its prev is), so later events citing it can be placed.
    expect(await server.engine.getStateAfter(other.eventId)).toEqual(await server.engine.getStateAfter(head as string));
    expect(await server.engine.getForwardExtremities(room.roomId)).toEqual([head]);
  });
});

describe("persistence", () => {
  it("keeps rooms, state, timeline and extremities across a restart on the same database", async () => {
    const first = await openServer();
    const room = await first.engine.createRoom({ creator: ALICE, name: "Durable", preset: "public_chat" });
    const message = await first.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "still here" } });
    const stateBefore = await first.engine.getCurrentStateIds(room.roomId);
    await first.storage.close();

    const second = await openServer(HS, { path: first.path, key: first.key });
    expect(await second.engine.getCurrentStateIds(room.roomId)).toEqual(stateBefore);
    expect(await second.engine.getForwardExtremities(room.roomId)).toEqual([message.eventId]);
    expect((await second.engine.getTimeline(room.roomId, { dir: "b", limit: 1 }))[0]?.pdu).toEqual(message.pdu);
    const next = await second.engine.sendLocalEvent({ roomId: room.roomId, sender: ALICE, type: "m.room.message", content: { body: "after restart" } });
    expect(view(next).prev_events).toEqual([message.eventId]);
  });
});

function stripSignatures(pdu: JsonObject): JsonObject {
  const { signatures: _s, hashes: _h, ...rest } = pdu;
  void _s;
  void _h;
  return rest;
}
