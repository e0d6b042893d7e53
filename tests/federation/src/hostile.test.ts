// Bad input over federation gets the right Matrix error and changes nothing: a sample of
// the T-cases of /work/shared/reference/hostile-federation.md §2.1-2.6, sent by a fake
// federating server that joined a room on A through make_join/send_join. Each case checks
// the answer, then sends a valid "marker" event after it and waits until A shows the marker
// (A works through a room's staged events in order), and only then checks that the bad
// event is nowhere and that the room's state is what it was.
import { randomUUID } from "node:crypto";
import { encodePublicKey, generateSigningKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { CsRequestError } from "@myelin/test-support";
import { getJson, type RawResponse } from "./federation-request.js";
import { RemoteMember, startFakeServer, type BuiltPdu, type FakeServer } from "./fake-server.js";
import { computeEventIdLenient, signEventLenient } from "./lenient-json.js";
import { ROOM_VERSIONS, currentState, waitForEvent, waitForMembership, type StateSummary } from "./room-helpers.js";
import { useCluster } from "./use-cluster.js";

const cluster = useCluster({ names: ["a"] });
let fake: FakeServer;
let alice: CsClient;

beforeAll(async () => {
  fake = await startFakeServer(cluster().ca);
});

afterAll(async () => {
  alice?.close();
  await fake?.close();
});

/** Asserts a Matrix error answer: the status, and the errcode (one of `errcodes`, or any `M_…` when omitted). */
function expectMatrixError(response: RawResponse, statuses: readonly number[], errcodes?: readonly string[]): void {
  const errcode = (response.body as { errcode?: unknown } | undefined)?.errcode;
  expect(statuses, `answer ${response.status}: ${response.text}`).toContain(response.status);
  if (errcodes === undefined) expect(errcode, `answer ${response.status}: ${response.text}`).toMatch(/^M_[A-Z_]+$/);
  else expect(errcodes, `answer ${response.status}: ${response.text}`).toContain(errcode);
}

async function expectNotFound(call: Promise<unknown>, what: string): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `${what} should not exist`).toBeInstanceOf(CsRequestError);
  expect([403, 404], `${what}: ${(error as Error).message}`).toContain((error as CsRequestError).status);
}

describe("the fake server and requests no endpoint serves", () => {
  it("publishes keys that A's notary fetches and vouches for, so A can check what the fake server signs", async () => {
    const response = await getJson({ port: cluster().server("a").port, ca: cluster().ca.cert }, `/_matrix/key/v2/query/${encodeURIComponent(fake.serverName)}`);
    expect(response.status, response.text).toBe(200);
    const [keys] = (response.body as { server_keys: { server_name: string; verify_keys: Record<string, { key: string }>; signatures: Record<string, unknown> }[] }).server_keys;
    expect(keys?.server_name).toBe(fake.serverName);
    expect(keys?.verify_keys[fake.key.keyId]?.key).toBe(encodePublicKey(fake.key));
    expect(Object.keys(keys?.signatures ?? {}).sort()).toEqual([cluster().server("a").serverName, fake.serverName].sort());
  });

  it("answers an unknown federation path with 404 M_UNRECOGNIZED and a known path with the wrong method with 405 M_UNRECOGNIZED (T10)", async () => {
    const a = cluster().server("a");
    expectMatrixError(await fake.request(a, { method: "GET", path: "/_matrix/federation/v1/no_such_endpoint" }), [404], ["M_UNRECOGNIZED"]);
    expectMatrixError(await fake.request(a, { method: "GET", path: "/_matrix/federation/v7/send/abc" }), [404], ["M_UNRECOGNIZED"]);
    expectMatrixError(await fake.request(a, { method: "POST", path: "/_matrix/federation/v1/send/abc", body: {} }), [405], ["M_UNRECOGNIZED"]);
  });
});

describe.each(ROOM_VERSIONS)("room version %s", (version) => {
  let roomId: string;
  let otherRoomId: string;
  let mallory: RemoteMember;

  beforeAll(async () => {
    if (alice === undefined) alice = await cluster().server("a").newClient("alice");
    roomId = (await alice.createRoom({ preset: "public_chat", room_version: version })).room_id;
    otherRoomId = (await alice.createRoom({ preset: "public_chat", room_version: version })).room_id;
    mallory = new RemoteMember(fake, cluster().server("a"), roomId, version);
    await mallory.join();
    await waitForMembership(alice, roomId, mallory.userId, "join");
  });

  const snapshot = (room = roomId): Promise<StateSummary> => currentState(alice, room);

  /** A valid event sent in its own transaction, awaited on A: everything sent before it has been processed. */
  async function marker(): Promise<void> {
    const event = mallory.message(`marker ${randomUUID()}`);
    const response = await mallory.sendTransaction([event.pdu]);
    expect(response.status, `the marker's transaction: ${response.text}`).toBe(200);
    await waitForEvent(alice, roomId, event.eventId, { what: `A shows the marker event ${event.eventId}` });
    mallory.advance(event);
  }

  /** After a marker: none of `events` exists for A's users and the state is `before`. */
  async function expectNothingChanged(before: StateSummary, events: readonly BuiltPdu[]): Promise<void> {
    await marker();
    for (const event of events) await expectNotFound(alice.event(roomId, event.eventId), `event ${event.eventId}`);
    const recent = (await alice.messages(roomId, { limit: 100 })).chunk.map((e) => e.event_id);
    for (const event of events) expect(recent).not.toContain(event.eventId);
    expect(await snapshot()).toEqual(before);
  }

  /** A's per-PDU result for `eventId` in a /send answer (spec: `pdus` keyed by event ID). */
  function pduResult(response: RawResponse, eventId: string): { error?: string } | undefined {
    return (response.body as { pdus?: Record<string, { error?: string }> } | undefined)?.pdus?.[eventId];
  }

  /** Checks the valid PDUs of a transaction were accepted and shown, and moves the head past the last. */
  async function expectAccepted(response: RawResponse, events: readonly BuiltPdu[]): Promise<void> {
    expect(response.status, response.text).toBe(200);
    for (const event of events) {
      expect(pduResult(response, event.eventId)?.error, `the result for ${event.eventId}: ${response.text}`).toBeUndefined();
      await waitForEvent(alice, roomId, event.eventId);
    }
    const last = events.at(-1);
    if (last !== undefined) mallory.advance(last);
  }

  // §2.1 Request authentication and transport

  it("refuses a transaction with no Authorization header with 401 M_UNAUTHORIZED and processes none of it (T1)", async () => {
    const before = await snapshot();
    const event = mallory.message();
    expectMatrixError(await mallory.sendTransaction([event.pdu], { request: { authorize: false } }), [401], ["M_UNAUTHORIZED"]);
    await expectNothingChanged(before, [event]);
  });

  it("refuses a transaction signed for another destination with 401 M_UNAUTHORIZED (T2)", async () => {
    const before = await snapshot();
    const event = mallory.message();
    expectMatrixError(await mallory.sendTransaction([event.pdu], { request: { claimedDestination: "someone.else" } }), [401], ["M_UNAUTHORIZED"]);
    await expectNothingChanged(before, [event]);
  });

  it("refuses a transaction whose body was changed after signing with 401 M_UNAUTHORIZED (T4)", async () => {
    const before = await snapshot();
    const event = mallory.message();
    const signedContent = { origin: fake.serverName, origin_server_ts: Date.now(), pdus: [] };
    expectMatrixError(await mallory.sendTransaction([event.pdu], { request: { signedContent } }), [401], ["M_UNAUTHORIZED"]);
    await expectNothingChanged(before, [event]);
  });

  it("refuses a whole transaction of 51 PDUs with 400 M_BAD_JSON, even though each PDU is valid (T11)", async () => {
    const before = await snapshot();
    const events = Array.from({ length: 51 }, () => mallory.message());
    expectMatrixError(await mallory.sendTransaction(events.map((e) => e.pdu)), [400], ["M_BAD_JSON"]);
    await expectNothingChanged(before, events);
  });

  it("refuses a whole transaction of 101 EDUs with 400 M_BAD_JSON, and its valid PDU with it (T11)", async () => {
    const before = await snapshot();
    const event = mallory.message();
    const edus = Array.from({ length: 101 }, () => ({ edu_type: "org.example.noise", content: {} }));
    expectMatrixError(await mallory.sendTransaction([event.pdu], { edus }), [400], ["M_BAD_JSON"]);
    await expectNothingChanged(before, [event]);
  });

  it("refuses a transaction whose body origin is not the authenticated origin (T13)", async () => {
    const before = await snapshot();
    const event = mallory.message();
    expectMatrixError(await mallory.sendTransaction([event.pdu], { body: { origin: "localhost:1" } }), [400, 403], ["M_BAD_JSON", "M_FORBIDDEN"]);
    await expectNothingChanged(before, [event]);
  });

  // §2.2 The /send transaction: partial failure and idempotency

  it("answers a replayed transaction ID with the first answer and processes its PDU once (T16)", async () => {
    const txnId = randomUUID();
    const event = mallory.message();
    const first = await mallory.sendTransaction([event.pdu], { txnId });
    await expectAccepted(first, [event]);
    const replay = await mallory.sendTransaction([event.pdu], { txnId });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
    // Something else sent under the same ID is the same transaction: answered, not processed.
    const before = await snapshot();
    const other = mallory.message();
    const reuse = await mallory.sendTransaction([other.pdu], { txnId });
    expect(reuse.status).toBe(200);
    expect(reuse.body).toEqual(first.body);
    await expectNothingChanged(before, [other]);
    const timeline = (await alice.messages(roomId, { limit: 100 })).chunk.filter((e) => e.event_id === event.eventId);
    expect(timeline).toHaveLength(1);
  });

  it("gives a PDU with a bad signature an error entry and accepts the valid PDUs around it (T36)", async () => {
    const before = await snapshot();
    const good1 = mallory.message();
    // Signed under the fake server's key ID, but with another key: the signature cannot verify.
    const impostor = generateSigningKey(fake.key.version);
    const forged = mallory.draft({ type: "m.room.message", content: { msgtype: "m.text", body: `forged ${randomUUID()}` } });
    const bad = mallory.sign(forged, impostor);
    const good2 = mallory.message(undefined, { prev_events: [good1.eventId], depth: (good1.pdu["depth"] as number) + 1 });
    const response = await mallory.sendTransaction([good1.pdu, bad.pdu, good2.pdu]);
    expect(response.status, response.text).toBe(200);
    expect(typeof pduResult(response, bad.eventId)?.error, `the result for the forged PDU: ${response.text}`).toBe("string");
    await expectAccepted(response, [good1, good2]);
    await expectNotFound(alice.event(roomId, bad.eventId), "the forged event");
    expect(await snapshot()).toEqual(before);
  });

  it("ignores a PDU for a room A does not know and accepts the valid PDU beside it (T15)", async () => {
    const joinedBefore = await alice.joinedRooms();
    const unknownRoom = `!${randomUUID().replaceAll("-", "")}:${fake.serverName}`;
    const stray = mallory.sign(mallory.draft({ room_id: unknownRoom, type: "m.room.message", content: { msgtype: "m.text", body: "stray" } }));
    const good = mallory.message();
    const response = await mallory.sendTransaction([stray.pdu, good.pdu]);
    await expectAccepted(response, [good]);
    expect(await alice.joinedRooms()).toEqual(joinedBefore);
    await expectNotFound(alice.roomState(unknownRoom), `room ${unknownRoom}`);
  });

  // §2.3 PDU format, size and JSON edge cases

  it("drops a PDU with a negative depth inside a transaction and accepts the valid PDU beside it (T24)", async () => {
    const before = await snapshot();
    const bad = mallory.sign(mallory.draft({ type: "m.room.message", depth: -1, content: { msgtype: "m.text", body: `negative depth ${randomUUID()}` } }));
    const good = mallory.message();
    await expectAccepted(await mallory.sendTransaction([bad.pdu, good.pdu]), [good]);
    await expectNothingChanged(before, [bad]);
  });

  it("drops a PDU over 65536 bytes inside a transaction and accepts the valid PDU beside it (T21)", async () => {
    const before = await snapshot();
    const bad = mallory.message(`big ${"x".repeat(70_000)}`);
    const good = mallory.message();
    await expectAccepted(await mallory.sendTransaction([bad.pdu, good.pdu]), [good]);
    await expectNothingChanged(before, [bad]);
  });

  it("drops a PDU whose type is longer than 255 bytes and accepts the valid PDU beside it (T23)", async () => {
    const before = await snapshot();
    const bad = mallory.sign(mallory.draft({ type: `org.example.${"t".repeat(250)}`, content: { body: "long type" } }));
    const good = mallory.message();
    await expectAccepted(await mallory.sendTransaction([bad.pdu, good.pdu]), [good]);
    await expectNothingChanged(before, [bad]);
  });

  /** A join of a new user of the fake server, from A's make_join template, changed by `change` and signed leniently. */
  async function craftedJoin(change: (template: JsonObject) => JsonObject): Promise<{ userId: string; pdu: JsonObject; eventId: string }> {
    const userId = `@eve-${randomUUID().slice(0, 8)}:${fake.serverName}`;
    const template = await mallory.makeJoin(userId);
    const pdu = signEventLenient(change({ ...template, origin_server_ts: Date.now() }), fake.serverName, fake.key, mallory.rules);
    return { userId, pdu, eventId: computeEventIdLenient(pdu, mallory.rules) };
  }

  function sendJoin(room: string, eventId: string, pdu: JsonObject): Promise<RawResponse> {
    return fake.request(cluster().server("a"), {
      method: "PUT",
      path: `/_matrix/federation/v2/send_join/${encodeURIComponent(room)}/${encodeURIComponent(eventId)}`,
      body: pdu,
    });
  }

  it("refuses a send_join whose event has a depth beyond 2^53-1 with 400 M_BAD_JSON (T24)", async () => {
    const before = await snapshot();
    const join = await craftedJoin((t) => ({ ...t, depth: 2 ** 53 }));
    expectMatrixError(await sendJoin(roomId, join.eventId, join.pdu), [400], ["M_BAD_JSON"]);
    await expectNotFound(alice.getState(roomId, "m.room.member", join.userId), `${join.userId}'s membership`);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a send_join whose event has a float in its content with 400 M_BAD_JSON (T26)", async () => {
    const before = await snapshot();
    const join = await craftedJoin((t) => ({ ...t, content: { ...(t["content"] as JsonObject), "org.example.ratio": 1.5 } }));
    expectMatrixError(await sendJoin(roomId, join.eventId, join.pdu), [400], ["M_BAD_JSON"]);
    await expectNotFound(alice.getState(roomId, "m.room.member", join.userId), `${join.userId}'s membership`);
    expect(await snapshot()).toEqual(before);
  });

  // §2.4 Signatures and hashes

  it("redacts, rather than rejects, a correctly signed PDU whose content hash does not match (T38)", async () => {
    const event = mallory.message(`original ${randomUUID()}`);
    // The signature covers the redacted event (no message content) and the event ID is its
    // reference hash, so both still hold; only the content hash no longer matches.
    const tampered: BuiltPdu = { pdu: { ...event.pdu, content: { msgtype: "m.text", body: "tampered" } }, eventId: event.eventId };
    const response = await mallory.sendTransaction([tampered.pdu]);
    expect(response.status, response.text).toBe(200);
    const shown = await waitForEvent(alice, roomId, event.eventId);
    expect(shown.content).toEqual({});
    mallory.advance(event);
  });

  // §2.5 Auth rules

  it("rejects a power-levels event from a remote user without the power to send it (T43)", async () => {
    const before = await snapshot();
    const levels = await alice.getState<{ users?: Record<string, number> }>(roomId, "m.room.power_levels");
    const bad = mallory.sign(
      mallory.draft({ type: "m.room.power_levels", state_key: "", content: { ...levels, users: { ...levels.users, [mallory.userId]: 100 } } }),
    );
    const response = await mallory.sendTransaction([bad.pdu]);
    expect(response.status, response.text).toBe(200);
    await expectNothingChanged(before, [bad]);
    expect(await alice.getState(roomId, "m.room.power_levels")).toEqual(levels);
  });

  if (version === "12") {
    it("rejects a room-version-12 event that lists the create event among its auth events (T34)", async () => {
      const before = await snapshot();
      const bad = mallory.sign(
        mallory.draft({ type: "m.room.message", auth_events: mallory.authEvents([mallory.room.createId]), content: { msgtype: "m.text", body: `create in auth ${randomUUID()}` } }),
      );
      const response = await mallory.sendTransaction([bad.pdu]);
      expect(response.status, response.text).toBe(200);
      await expectNothingChanged(before, [bad]);
    });
  }

  // §2.6 Membership endpoints

  it("refuses a send_join carrying a message instead of a join with 400 (T50)", async () => {
    const before = await snapshot();
    const event = mallory.message();
    expectMatrixError(await sendJoin(roomId, event.eventId, event.pdu), [400]);
    await expectNothingChanged(before, [event]);
  });

  it("refuses a send_join whose path names another room than its event with 400 (T51)", async () => {
    const before = await snapshot();
    const otherBefore = await snapshot(otherRoomId);
    const join = await craftedJoin((t) => t);
    expectMatrixError(await sendJoin(otherRoomId, join.eventId, join.pdu), [400]);
    for (const room of [roomId, otherRoomId]) await expectNotFound(alice.getState(room, "m.room.member", join.userId), `${join.userId}'s membership of ${room}`);
    expect(await snapshot()).toEqual(before);
    expect(await snapshot(otherRoomId)).toEqual(otherBefore);
  });

  it("refuses a send_join for a user of another server than the sending one with 403 M_FORBIDDEN (T52)", async () => {
    const before = await snapshot();
    const victim = "@victim:localhost:1";
    const room = mallory.room;
    const create = mallory.rules.eventFormat === "v12" ? [] : [room.createId];
    const join = mallory.sign(
      mallory.draft({
        type: "m.room.member",
        state_key: victim,
        sender: victim,
        content: { membership: "join" },
        auth_events: [...create, room.powerLevelsId, room.joinRulesId],
      }),
    );
    expectMatrixError(await sendJoin(roomId, join.eventId, join.pdu), [403], ["M_FORBIDDEN"]);
    await expectNotFound(alice.getState(roomId, "m.room.member", victim), `${victim}'s membership`);
    expect(await snapshot()).toEqual(before);
  });

  /** An invite by mallory for `invitee`, sent to A's /invite (v2). */
  async function sendInvite(invitee: string): Promise<{ response: RawResponse; event: BuiltPdu }> {
    const event = mallory.sign(mallory.draft({ type: "m.room.member", state_key: invitee, content: { membership: "invite" } }));
    const response = await fake.request(cluster().server("a"), {
      method: "PUT",
      path: `/_matrix/federation/v2/invite/${encodeURIComponent(roomId)}/${encodeURIComponent(event.eventId)}`,
      body: { event: event.pdu, room_version: version, invite_room_state: [] },
    });
    return { response, event };
  }

  it("refuses an invite for a user who is not on A with a 4xx Matrix error (T54)", async () => {
    const before = await snapshot();
    const invitee = "@victim:localhost:1";
    const { response, event } = await sendInvite(invitee);
    expectMatrixError(response, [400, 403, 404]);
    await expectNothingChanged(before, [event]);
    await expectNotFound(alice.getState(roomId, "m.room.member", invitee), `${invitee}'s membership`);
  });

  it("refuses an invite for a local user A does not have with a 4xx Matrix error (T54)", async () => {
    const before = await snapshot();
    const invitee = `@nobody-${randomUUID().slice(0, 8)}:${cluster().server("a").serverName}`;
    const { response, event } = await sendInvite(invitee);
    expectMatrixError(response, [400, 403, 404]);
    await expectNothingChanged(before, [event]);
  });
});
