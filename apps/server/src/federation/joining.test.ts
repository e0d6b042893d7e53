// A reference homeserver joining a room held by a scripted (possibly hostile) resident
// server: what it refuses to sign (T55), what makes a join fail cleanly (T56), and that bad
// events in a send_join response are dropped without failing the join (T40).
import { computeEventId, generateSigningKey, signEvent } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { MatrixError, getRoomVersion } from "@myelin/types";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../test-helpers.js";
import type { FakeServer, TestHomeserver, TestTls } from "./test-support.js";
import { createTestTls, startFakeServer, startTestHomeserver } from "./test-support.js";

const rules = getRoomVersion("10");
const fKey = generateSigningKey("f1");
let tls: TestTls;
let a: TestHomeserver;
let f: FakeServer;
let alice: { userId: string; token: string };

beforeAll(async () => {
  tls = await createTestTls();
  a = await startTestHomeserver(tls);
  alice = await a.addUser("alice");
  f = await startFakeServer(tls, fKey);
}, 60_000);

afterAll(async () => {
  await f?.stop();
  await a?.stop();
  await removeTemporaryDirectories();
});

/** A v10 room held by F: create, Fred's join, power levels, public join rules. */
interface FakeRoom {
  readonly roomId: string;
  readonly events: { pdu: JsonObject; id: string }[];
  byType(type: string): { pdu: JsonObject; id: string };
}

let roomCounter = 0;

function fakeRoom(): FakeRoom {
  const fred = `@fred:${f.serverName}`;
  const roomId = `!room${++roomCounter}:${f.serverName}`;
  const events: { pdu: JsonObject; id: string }[] = [];
  const add = (type: string, content: JsonObject, auth: string[], stateKey = ""): void => {
    const prev = events.at(-1);
    const pdu = signEvent(
      {
        room_id: roomId,
        type,
        state_key: stateKey,
        sender: fred,
        content,
        origin_server_ts: Date.now(),
        depth: events.length + 1,
        prev_events: prev === undefined ? [] : [prev.id],
        auth_events: auth,
      },
      f.serverName,
      fKey,
      rules,
    );
    events.push({ pdu, id: computeEventId(pdu, rules) });
  };
  add("m.room.create", { room_version: "10", creator: fred }, []);
  const create = events[0]!.id;
  add("m.room.member", { membership: "join" }, [create], fred);
  const join = events[1]!.id;
  add("m.room.power_levels", { users: { [fred]: 100 }, users_default: 0 }, [create, join]);
  const pl = events[2]!.id;
  add("m.room.join_rules", { join_rule: "public" }, [create, join, pl]);
  add("m.room.topic", { topic: "fake" }, [create, join, pl]);
  return {
    roomId,
    events,
    byType: (type) => events.find((e) => e.pdu["type"] === type)!,
  };
}

/** A join template for `userId` on top of the room's last event. */
function template(room: FakeRoom, userId: string, overrides: JsonObject = {}): JsonObject {
  const last = room.events.at(-1)!;
  return {
    room_id: room.roomId,
    type: "m.room.member",
    sender: userId,
    state_key: userId,
    content: { membership: "join" },
    origin: f.serverName,
    origin_server_ts: Date.now(),
    depth: (last.pdu["depth"] as number) + 1,
    prev_events: [last.id],
    auth_events: [room.byType("m.room.create").id, room.byType("m.room.power_levels").id, room.byType("m.room.join_rules").id],
    ...overrides,
  };
}

let sendJoins = 0;

function serve(room: FakeRoom, options: { template?: (userId: string) => JsonObject; state?: (state: JsonObject[]) => JsonObject[] } = {}): void {
  f.setHandlers({
    create_join_event_template: {
      v1: ({ params }) => ({ room_version: "10", event: (options.template ?? ((u: string) => template(room, u)))(params.userId) as never }),
    },
    create_join_event: {
      v2: () => {
        sendJoins++;
        const state = room.events.map((e) => e.pdu);
        return { state: options.state === undefined ? state : options.state(state), auth_chain: [] as JsonObject[], origin: f.serverName };
      },
    },
    get_event_authorization: {
      v1: () => {
        throw new MatrixError("M_NOT_FOUND", "no");
      },
    },
  });
}

const join = (roomId: string) => a.call(alice.token, "POST", `/join/${encodeURIComponent(roomId)}?server_name=${encodeURIComponent(f.serverName)}`, {});

beforeEach(() => {
  sendJoins = 0;
});

describe("joining through a resident server", () => {
  it("joins on a valid template and state, keeping the room's state", async () => {
    const room = fakeRoom();
    serve(room);
    const joined = await join(room.roomId);
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    expect((await a.homeserver.engine!.getMembership(room.roomId, alice.userId))?.membership).toBe("join");
    expect((await a.homeserver.engine!.getCurrentStateEvent(room.roomId, "m.room.topic", ""))?.pdu["content"]).toEqual({ topic: "fake" });
  });

  it("refuses to sign templates that are not the join asked for (T55)", async () => {
    const room = fakeRoom();
    const bad: JsonObject[] = [
      { type: "m.room.message" },
      { sender: `@fred:${f.serverName}` },
      { state_key: `@fred:${f.serverName}` },
      { room_id: `!other:${f.serverName}` },
      { content: { membership: "leave" } },
      { content: { membership: "join", extra: "signed by you" } },
    ];
    for (const overrides of bad) {
      serve(room, { template: (u) => template(room, u, overrides) });
      const joined = await join(room.roomId);
      expect(joined.status, JSON.stringify(overrides)).toBeGreaterThanOrEqual(400);
    }
    expect(sendJoins).toBe(0);
  });

  it("fails cleanly when the send_join state has no create event (T56)", async () => {
    const room = fakeRoom();
    serve(room, { state: (state) => state.filter((e) => e["type"] !== "m.room.create") });
    expect((await join(room.roomId)).status).toBeGreaterThanOrEqual(400);
    expect(await a.homeserver.engine!.getRoom(room.roomId)).toBeUndefined();
  });

  it("drops a badly signed event of the send_join state and still joins (T40)", async () => {
    const room = fakeRoom();
    serve(room, {
      state: (state) =>
        state.map((e) => (e["type"] === "m.room.topic" ? { ...e, signatures: { [f.serverName]: { [fKey.keyId]: "AAAA" } } } : e)),
    });
    const joined = await join(room.roomId);
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    expect(await a.homeserver.engine!.getCurrentStateEvent(room.roomId, "m.room.topic", "")).toBeUndefined();
    expect((await a.homeserver.engine!.getMembership(room.roomId, alice.userId))?.membership).toBe("join");
  });
});
