// A reference homeserver receiving federation traffic from a scripted server: `/send`
// (idempotency, per-PDU errors, missing prev events), `send_join` refusals, server ACLs and
// the read endpoints' membership checks.
import { computeEventId, generateSigningKey, signEvent } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { MatrixError, getRoomVersion } from "@myelin/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../test-helpers.js";
import type { FakeServer, TestHomeserver, TestTls } from "./test-support.js";
import { createTestTls, eventually, startFakeServer, startTestHomeserver } from "./test-support.js";

const rules = getRoomVersion("10");
const fKey = generateSigningKey("f1");
let tls: TestTls;
let a: TestHomeserver;
let f: FakeServer;
let alice: { userId: string; token: string };
let fred: string;
/** Events F has made or learnt, by ID. */
const known = new Map<string, JsonObject>();
/** Events F's get_missing_events pretends not to have (they are still served by /event). */
const withheld = new Set<string>();
/** PDUs A has pushed to F. */
const pushedToF: JsonObject[] = [];
/** Per room: the state IDs after F's join (what F answers /state_ids with). */
const stateAfterJoin = new Map<string, string[]>();

beforeAll(async () => {
  tls = await createTestTls();
  a = await startTestHomeserver(tls);
  alice = await a.addUser("alice");
  f = await startFakeServer(tls, fKey, {
    get_missing_events: {
      v1: ({ body }) => {
        // Serve what F knows, walking back from the latest events' prevs, deepest first.
        const limit = body.limit ?? 10;
        const out: JsonObject[] = [];
        const seen = new Set(body.earliest_events);
        let frontier = body.latest_events.flatMap((id) => ((known.get(id)?.["prev_events"] as string[] | undefined) ?? []));
        while (frontier.length > 0) {
          const next: string[] = [];
          for (const id of frontier) {
            if (seen.has(id) || out.length >= limit) continue;
            seen.add(id);
            const event = known.get(id);
            if (event === undefined || withheld.has(id)) continue;
            out.push(event);
            next.push(...(event["prev_events"] as string[]));
          }
          frontier = next;
        }
        return { events: out };
      },
    },
    send_transaction_message: {
      v1: ({ body }) => {
        pushedToF.push(...(body.pdus as JsonObject[]));
        return { pdus: {} };
      },
    },
    get_room_state_ids: {
      v1: ({ params }) => ({ pdu_ids: stateAfterJoin.get(params.roomId) ?? [], auth_chain_ids: [] }),
    },
    get_event: {
      v1: ({ params }) => {
        const event = known.get(params.eventId);
        if (event === undefined) throw new MatrixError("M_NOT_FOUND", "unknown event");
        return { origin: f.serverName, origin_server_ts: Date.now(), pdus: [event] };
      },
    },
  });
  fred = `@fred:${f.serverName}`;
}, 60_000);

afterAll(async () => {
  await f?.stop();
  await a?.stop();
  await removeTemporaryDirectories();
});

const enc = encodeURIComponent;

async function createRoom(body: JsonObject = {}): Promise<string> {
  const created = await a.call(alice.token, "POST", "/createRoom", { room_version: "10", preset: "public_chat", ...body });
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  return (created.json as { room_id: string }).room_id;
}

/** F joins `roomId` through A; returns the join event and the auth events F cites later. */
async function fJoins(roomId: string): Promise<{ join: JsonObject; joinId: string; authFor: (sender: string) => string[] }> {
  const template = await f.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId, userId: fred }, query: { ver: ["10"] } });
  const draft = { ...(template.event as JsonObject), origin: f.serverName, origin_server_ts: Date.now() };
  const join = signEvent(draft, f.serverName, fKey, rules);
  const joinId = computeEventId(join, rules);
  const answer = await f.client.call("create_join_event", "v2", a.serverName, { params: { roomId, eventId: joinId }, body: join });
  const state = answer.state as JsonObject[];
  for (const event of [...state, ...(answer.auth_chain as JsonObject[])]) known.set(computeEventId(event, rules), event);
  known.set(joinId, join);
  stateAfterJoin.set(roomId, [...state.map((e) => computeEventId(e, rules)), joinId]);
  const idOf = (type: string) => computeEventId(state.find((e) => e["type"] === type && e["state_key"] === "") as JsonObject, rules);
  return { join, joinId, authFor: () => [idOf("m.room.create"), idOf("m.room.power_levels"), joinId] };
}

/** A message by Fred on top of `prev`, signed by F. */
function message(roomId: string, prev: JsonObject, prevId: string, auth: string[], body: string): { pdu: JsonObject; id: string } {
  const pdu = signEvent(
    {
      room_id: roomId,
      type: "m.room.message",
      sender: fred,
      content: { msgtype: "m.text", body },
      origin_server_ts: Date.now(),
      depth: (prev["depth"] as number) + 1,
      prev_events: [prevId],
      auth_events: auth,
    },
    f.serverName,
    fKey,
    rules,
  );
  const id = computeEventId(pdu, rules);
  known.set(id, pdu);
  return { pdu, id };
}

async function sendTxn(txnId: string, pdus: JsonObject[], origin = f.serverName): Promise<Record<string, { error?: string }>> {
  const answer = await f.client.call("send_transaction_message", "v1", a.serverName, {
    params: { txnId },
    body: { origin, origin_server_ts: Date.now(), pdus },
  });
  return answer.pdus as Record<string, { error?: string }>;
}

async function timelineBodies(roomId: string): Promise<string[]> {
  const events = await a.homeserver.engine!.getTimeline(roomId, { dir: "f", limit: 1000 });
  return events.filter((e) => e.stored.type === "m.room.message").map((e) => String((e.pdu["content"] as JsonObject)["body"]));
}

describe("inbound /send", () => {
  it("accepts a valid PDU, reports bad ones per PDU, and replays the same answer for a repeated transaction", async () => {
    const roomId = await createRoom();
    const { join, joinId, authFor } = await fJoins(roomId);
    const good = message(roomId, join, joinId, authFor(fred), "good");
    const badSignature = { ...message(roomId, join, joinId, authFor(fred), "tampered").pdu, signatures: { [f.serverName]: { [fKey.keyId]: "AAAA" } } };
    const badFormat = { ...message(roomId, join, joinId, authFor(fred), "bad depth").pdu, depth: -5 };
    const unknownRoom = message("!nowhere:" + f.serverName, join, joinId, authFor(fred), "lost").pdu;
    const answer = await sendTxn("txn-1", [good.pdu, badSignature, badFormat, unknownRoom]);
    expect(answer[good.id]).toEqual({});
    expect(answer[computeEventId(badSignature, rules)]?.error).toMatch(/signature/);
    expect(answer[computeEventId(badFormat, rules)]?.error).toMatch(/depth/);
    expect(answer[computeEventId(unknownRoom, rules)]?.error).toMatch(/Unknown room/);
    await eventually(async () => (await timelineBodies(roomId)).includes("good"), 10_000, "the good PDU in the timeline");
    expect(await timelineBodies(roomId)).not.toContain("tampered");

    // Same txnId again, even with other content: the first answer, nothing reprocessed (T16).
    const replay = await sendTxn("txn-1", [message(roomId, join, joinId, authFor(fred), "never").pdu]);
    expect(replay).toEqual(answer);
    // The same PDU under a new txnId: accepted again, but no second timeline entry (T19).
    expect(await sendTxn("txn-2", [good.pdu])).toEqual({ [good.id]: {} });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await timelineBodies(roomId)).filter((b) => b === "good")).toHaveLength(1);
    expect(await timelineBodies(roomId)).not.toContain("never");
  }, 30_000);

  it("stores a PDU over the byte limits of rooms 1-10 as rejected, and places a later PDU citing it (T22)", async () => {
    const roomId = await createRoom();
    const { join, joinId, authFor } = await fJoins(roomId);
    // 200 code points (within the 255 Synapse counts) but 400 bytes (over the 255 of rooms 11+).
    const longType = "é".repeat(200);
    const oversized = signEvent(
      { room_id: roomId, type: longType, sender: fred, content: { body: "long type" }, origin_server_ts: Date.now(), depth: (join["depth"] as number) + 1, prev_events: [joinId], auth_events: authFor(fred) },
      f.serverName,
      fKey,
      rules,
    );
    const oversizedId = computeEventId(oversized, rules);
    known.set(oversizedId, oversized);
    const after = message(roomId, oversized, oversizedId, authFor(fred), "after the long type");
    expect(await sendTxn("txn-bytes", [oversized, after.pdu])).toEqual({ [oversizedId]: {}, [after.id]: {} });
    await eventually(async () => (await timelineBodies(roomId)).includes("after the long type"), 10_000, "the PDU citing the rejected one");
    const stored = await a.homeserver.engine!.getEvent(oversizedId);
    expect(stored?.stored.rejectedReason).toMatch(/255 bytes/);
    const timeline = await a.homeserver.engine!.getTimeline(roomId, { dir: "f", limit: 100 });
    expect(timeline.map((e) => e.eventId)).not.toContain(oversizedId);
    // The rejected event is never a forward extremity (what it cited stays one, as in Synapse).
    const extremities = await a.homeserver.engine!.getForwardExtremities(roomId);
    expect(extremities).toContain(after.id);
    expect(extremities).not.toContain(oversizedId);
  }, 30_000);

  it("refuses a transaction whose body names another origin (T13)", async () => {
    await expect(sendTxn("txn-spoof", [], "someone.else")).rejects.toMatchObject({ status: 403 });
  });

  it("fetches a missing prev event with get_missing_events before accepting a PDU (D8)", async () => {
    const roomId = await createRoom();
    const { join, joinId, authFor } = await fJoins(roomId);
    const first = message(roomId, join, joinId, authFor(fred), "first (withheld)");
    const second = message(roomId, first.pdu, first.id, authFor(fred), "second");
    expect(await sendTxn("txn-gap", [second.pdu])).toEqual({ [second.id]: {} });
    await eventually(async () => (await timelineBodies(roomId)).includes("second"), 10_000, "the pushed PDU");
    expect(await timelineBodies(roomId)).toEqual(["first (withheld)", "second"]);
  }, 30_000);

  it("fills a gap larger than get_missing_events returns with /state_ids at the missing event (D8)", async () => {
    const roomId = await createRoom();
    const { join, joinId, authFor } = await fJoins(roomId);
    let prev = { pdu: join, id: joinId };
    const chain: { pdu: JsonObject; id: string }[] = [];
    for (let i = 0; i < 4; i++) {
      prev = message(roomId, prev.pdu, prev.id, authFor(fred), `gap ${i}`);
      chain.push(prev);
    }
    withheld.add(chain[0]!.id); // GME never returns the first: its child must get state from /state_ids
    const top = chain.at(-1)!;
    expect(await sendTxn("txn-big-gap", [top.pdu])).toEqual({ [top.id]: {} });
    await eventually(async () => (await timelineBodies(roomId)).includes("gap 3"), 10_000, "the pushed PDU");
    expect(await timelineBodies(roomId)).toEqual(["gap 1", "gap 2", "gap 3"]);
    // The withheld event was fetched with /event to complete the state after it, as an outlier.
    expect((await a.homeserver.engine!.getEvent(chain[0]!.id))?.stored.outlier).toBe(true);
  }, 30_000);

  it("drops a pushed PDU whose prev events the origin will not supply (T75)", async () => {
    const roomId = await createRoom();
    const { join, authFor } = await fJoins(roomId);
    const ghost = { depth: (join["depth"] as number) + 1 };
    const orphan = message(roomId, ghost, "$unknowable", authFor(fred), "orphan");
    known.delete("$unknowable");
    expect(await sendTxn("txn-orphan", [orphan.pdu])).toEqual({ [orphan.id]: {} });
    // Processed (and dropped) once it has left staging.
    await eventually(async () => (await a.homeserver.storage!.transaction((tx) => tx.countStagedPdus(roomId))) === 0, 10_000, "staging to empty");
    expect(await a.homeserver.engine!.getEvent(orphan.id)).toBeUndefined();
    expect(await timelineBodies(roomId)).not.toContain("orphan");
    expect(await a.homeserver.engine!.getForwardExtremities(roomId)).not.toContain(orphan.id);
  }, 30_000);
});

describe("as the resident server", () => {
  it("relays a join it accepted through send_join to the room's other servers", async () => {
    const roomId = await createRoom();
    await fJoins(roomId);
    const gKey = generateSigningKey("g1");
    const g = await startFakeServer(tls, gKey);
    try {
      const greta = `@greta:${g.serverName}`;
      const template = await g.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId, userId: greta }, query: { ver: ["10"] } });
      const join = signEvent({ ...(template.event as JsonObject), origin: g.serverName, origin_server_ts: Date.now() }, g.serverName, gKey, rules);
      const joinId = computeEventId(join, rules);
      await g.client.call("create_join_event", "v2", a.serverName, { params: { roomId, eventId: joinId }, body: join });
      await eventually(() => pushedToF.some((pdu) => computeEventId(pdu, rules) === joinId), 10_000, "G's join pushed to F");
    } finally {
      await g.stop();
    }
  }, 30_000);
});

describe("invites from another server (T54)", () => {
  function invite(roomId: string, overrides: JsonObject = {}, signer = fKey): { pdu: JsonObject; id: string } {
    const pdu = signEvent(
      {
        room_id: roomId,
        type: "m.room.member",
        state_key: alice.userId,
        sender: fred,
        content: { membership: "invite" },
        origin_server_ts: Date.now(),
        depth: 5,
        prev_events: ["$p"],
        auth_events: ["$a"],
        ...overrides,
      },
      f.serverName,
      signer,
      rules,
    );
    return { pdu, id: computeEventId(pdu, rules) };
  }
  const put = (roomId: string, event: { pdu: JsonObject; id: string }) =>
    f.client.call("create_invite", "v2", a.serverName, {
      params: { roomId, eventId: event.id },
      body: { room_version: "10", event: event.pdu, invite_room_state: [{ type: "m.room.name", state_key: "", sender: fred, content: { name: "x" } }] },
    });

  it("co-signs a valid invite for a local user and keeps it", async () => {
    const roomId = `!invited:${f.serverName}`;
    const event = invite(roomId);
    const answer = await put(roomId, event);
    expect(Object.keys((answer.event as JsonObject)["signatures"] as JsonObject).sort()).toEqual([a.serverName, f.serverName].sort());
    expect(computeEventId(answer.event as JsonObject, rules)).toBe(event.id);
    const stored = await a.homeserver.engine!.getEvent(event.id);
    expect(stored?.stored.outlier).toBe(true);
    expect((stored?.pdu["unsigned"] as JsonObject)["invite_room_state"]).toHaveLength(1);
  });

  it("refuses invites signed by another key, sent for another server's user, or for a user of another server", async () => {
    const roomId = `!refused:${f.serverName}`;
    await expect(put(roomId, invite(roomId, {}, generateSigningKey("x")))).rejects.toMatchObject({ status: 403 });
    const spoofed = `@mallory:${a.serverName}`;
    await expect(put(roomId, invite(roomId, { sender: spoofed }))).rejects.toMatchObject({ status: 403 });
    await expect(put(roomId, invite(roomId, { state_key: `@x:${f.serverName}` }))).rejects.toMatchObject({ status: 400 });
    await expect(put(roomId, invite(roomId, { content: { membership: "join" } }))).rejects.toMatchObject({ status: 400 });
    expect(await a.homeserver.engine!.getRoom(roomId)).toBeUndefined();
  });
});

describe("send_join refusals (T50-T52)", () => {
  it("refuses a message, a join for another user and a join from another server", async () => {
    const roomId = await createRoom();
    const template = await f.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId, userId: fred }, query: { ver: ["10"] } });
    const base = { ...(template.event as JsonObject), origin: f.serverName, origin_server_ts: Date.now() };
    const attempt = async (draft: JsonObject) => {
      const pdu = signEvent(draft, f.serverName, fKey, rules);
      return f.client.call("create_join_event", "v2", a.serverName, { params: { roomId, eventId: computeEventId(pdu, rules) }, body: pdu });
    };
    await expect(attempt({ ...base, type: "m.room.message", content: { body: "x" } })).rejects.toMatchObject({ status: 400, errcode: "M_BAD_JSON" });
    await expect(attempt({ ...base, content: { membership: "leave" } })).rejects.toMatchObject({ status: 400, errcode: "M_BAD_JSON" });
    await expect(attempt({ ...base, state_key: `@other:${f.serverName}` })).rejects.toMatchObject({ status: 400 });
    const foreign = `@mallory:${a.serverName}`;
    await expect(attempt({ ...base, sender: foreign, state_key: foreign })).rejects.toMatchObject({ status: 403 });
    // The right event under another event ID in the path (T51).
    const good = signEvent(base, f.serverName, fKey, rules);
    await expect(
      f.client.call("create_join_event", "v2", a.serverName, { params: { roomId, eventId: "$not-this-one" }, body: good }),
    ).rejects.toMatchObject({ status: 400 });
  });

  it("refuses make_join for a user of another server (T53)", async () => {
    const roomId = await createRoom();
    await expect(
      f.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId, userId: alice.userId }, query: { ver: ["10"] } }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it("answers make_join for an unsupported room version with M_INCOMPATIBLE_ROOM_VERSION", async () => {
    const roomId = await createRoom();
    await expect(
      f.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId, userId: fred }, query: { ver: ["9"] } }),
    ).rejects.toMatchObject({ status: 400, errcode: "M_INCOMPATIBLE_ROOM_VERSION" });
  });
});

describe("server ACLs and read access", () => {
  it("refuses a denied server's PDUs and requests, and serves an allowed member", async () => {
    const roomId = await createRoom();
    const { join, joinId, authFor } = await fJoins(roomId);
    const ids = await f.client.call("get_room_state_ids", "v1", a.serverName, { params: { roomId }, query: { event_id: joinId } });
    expect(ids.pdu_ids.length).toBeGreaterThan(3);

    const acl = await a.call(alice.token, "PUT", `/rooms/${enc(roomId)}/state/m.room.server_acl/`, { allow: ["*"], deny: ["localhost"] });
    expect(acl.status, JSON.stringify(acl.json)).toBe(200);
    const denied = message(roomId, join, joinId, authFor(fred), "denied");
    const answer = await sendTxn("txn-acl", [denied.pdu]);
    expect(answer[denied.id]?.error).toMatch(/ACL/);
    await expect(
      f.client.call("get_room_state_ids", "v1", a.serverName, { params: { roomId }, query: { event_id: joinId } }),
    ).rejects.toMatchObject({ status: 403, errcode: "M_FORBIDDEN" });
    await expect(
      f.client.call("create_join_event_template", "v1", a.serverName, { params: { roomId, userId: fred }, query: { ver: ["10"] } }),
    ).rejects.toMatchObject({ status: 403 });
  }, 30_000);

  it("refuses the room's state and events to a server with no member in it (T57)", async () => {
    const roomId = await createRoom({ preset: "private_chat" });
    const events = await a.homeserver.engine!.getTimeline(roomId, { dir: "f", limit: 10 });
    const some = events.at(-1)!.eventId;
    await expect(
      f.client.call("get_room_state_ids", "v1", a.serverName, { params: { roomId }, query: { event_id: some } }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(f.client.call("get_event", "v1", a.serverName, { params: { eventId: some } })).rejects.toMatchObject({ status: 403 });
    await expect(
      f.client.call("get_missing_events", "v1", a.serverName, { params: { roomId }, body: { earliest_events: [], latest_events: [some] } }),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe("read endpoints for a server in the room", () => {
  it("serves missing events, backfill, state, auth chains, single events and timestamps", async () => {
    const roomId = await createRoom();
    const { joinId } = await fJoins(roomId);
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await a.call(alice.token, "PUT", `/rooms/${enc(roomId)}/send/m.room.message/t${i}`, { msgtype: "m.text", body: `m${i}` });
      sent.push((r.json as { event_id: string }).event_id);
    }
    const last = sent.at(-1)!;

    const missing = await f.client.call("get_missing_events", "v1", a.serverName, {
      params: { roomId },
      body: { earliest_events: [joinId], latest_events: [last], limit: 10 },
    });
    // Everything between the join and the latest event, oldest first, without either end.
    expect((missing.events as JsonObject[]).map((e) => (e["content"] as JsonObject)["body"])).toEqual(["m0", "m1", "m2", "m3"]);

    const backfill = await f.client.call("get_backfill", "v1", a.serverName, { params: { roomId }, query: { v: [last], limit: "3" } });
    expect((backfill.pdus as JsonObject[]).map((e) => (e["content"] as JsonObject)["body"])).toEqual(["m4", "m3", "m2"]);

    const ids = await f.client.call("get_room_state_ids", "v1", a.serverName, { params: { roomId }, query: { event_id: last } });
    const state = await f.client.call("get_room_state", "v1", a.serverName, { params: { roomId }, query: { event_id: last } });
    expect((state.pdus as JsonObject[]).map((e) => computeEventId(e, rules)).sort()).toEqual([...ids.pdu_ids].sort());
    expect(ids.pdu_ids).toContain(joinId);

    const auth = await f.client.call("get_event_authorization", "v1", a.serverName, { params: { roomId, eventId: last } });
    const chain = (auth.auth_chain as JsonObject[]).map((e) => e["type"]);
    expect(chain).toContain("m.room.create");
    expect(chain).not.toContain("m.room.message");

    const one = await f.client.call("get_event", "v1", a.serverName, { params: { eventId: sent[2]! } });
    expect(((one.pdus[0] as JsonObject)["content"] as JsonObject)["body"]).toBe("m2");

    const near = await f.client.call("get_event_by_timestamp", "v1", a.serverName, { params: { roomId }, query: { ts: String(Date.now() + 60_000), dir: "b" } });
    expect(near.event_id).toBe(last);
  }, 30_000);

  it("answers 404 for state at an event of another room", async () => {
    const roomId = await createRoom();
    const other = await createRoom();
    await fJoins(roomId);
    const otherEvent = (await a.homeserver.engine!.getTimeline(other, { dir: "f", limit: 1 }))[0]!.eventId;
    await expect(
      f.client.call("get_room_state_ids", "v1", a.serverName, { params: { roomId }, query: { event_id: otherEvent } }),
    ).rejects.toMatchObject({ status: 404 });
  }, 30_000);
});
