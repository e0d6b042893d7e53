// Fixtures of the homeserver benchmarks: an in-process homeserver over HTTPS (test CA, real
// SQLite in a temporary directory, production worker settings), and the signed events a
// remote server R would produce: a room of which R is the resident server, and chains of
// messages. The events are built before any timing starts: R's signing is not H's cost.
import { computeEventId, computeRoomIdV12, signEvent, type SigningKey } from "@myelin/signing";
import { getRoomVersion, type JsonObject, type RoomVersionRules } from "@myelin/types";
import { createHomeserver, type Homeserver, type HomeserverInfo } from "../../apps/server/src/app.js";
import { registerLocalUser } from "../../apps/server/src/client-api/users.js";
import type { TestTls } from "../../apps/server/src/federation/test-support.js";
import { request, temporaryDirectory, testConfig } from "../../apps/server/src/test-helpers.js";

/** A signed PDU with its event ID. */
export interface SignedEvent {
  readonly pdu: JsonObject;
  readonly id: string;
}

/** A homeserver under measurement, with a client-API helper. */
export interface BenchHomeserver {
  readonly homeserver: Homeserver;
  readonly info: HomeserverInfo;
  /** Registers `@<localpart>:<server>` and returns its access token. */
  addUser(localpart: string): Promise<{ userId: string; token: string }>;
  /** A client-server API call as a user (`path` after `/_matrix/client/v3`). */
  call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  stop(): Promise<void>;
}

/**
 * Starts a homeserver the way an operator would, apart from the test CA, loopback being
 * allowed for federation and a short stop grace: the workers keep their default timers
 * (5 s polling, Synapse's backoff), unlike the test suite's fast ones.
 */
export async function startBenchHomeserver(tls: TestTls): Promise<BenchHomeserver> {
  const config = testConfig(await temporaryDirectory(), {
    tls: { certFile: tls.files.certFile, keyFile: tls.files.keyFile },
    federationCaFiles: [tls.files.caFile],
    federationAllowIp: ["127.0.0.0/8", "::1"],
    logLevel: "error",
  });
  // Peers' keep-alive connections would otherwise hold the stop for the default 5 s.
  const homeserver = createHomeserver(config, { stopGraceMs: 200 });
  const info = await homeserver.start();
  return {
    homeserver,
    info,
    async addUser(localpart) {
      // Through the running server's storage: a second connection would block on its write lock.
      const user = await registerLocalUser(homeserver.storage!, { localpart, serverName: info.serverName });
      return { userId: user.user_id, token: user.access_token };
    },
    async call(token, method, path, body) {
      const response = await request(`${info.address.url}/_matrix/client/v3${path}`, {
        method,
        ca: tls.caPem,
        headers: { Authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body }),
      });
      return { status: response.status, json: response.json };
    },
    stop: () => homeserver.stop(),
  };
}

/** A public room held by a remote server: its events in DAG order and the IDs templates cite. */
export interface ResidentRoom {
  readonly roomId: string;
  readonly rules: RoomVersionRules;
  /** Every event, create first; each one's prev event is the one before it. */
  readonly events: readonly SignedEvent[];
  readonly createId: string;
  readonly powerLevelsId: string;
  readonly joinRulesId: string;
  /** The IDs of the auth chain of the whole state (create, creator's join, power levels, join rules). */
  readonly authChainIds: readonly string[];
}

/**
 * Builds the room a resident server `serverName` would hold after `members` of its users
 * joined a public room: create, the creator's join, power levels, join rules, then one join
 * per `@u<N>:<serverName>`, each signed by the server (`members + 4` state events in all).
 * Room 12's ID is the create event's reference hash, and its auth events leave the create
 * event out (rooms v12, MSC4291); the creator is privileged without a power level there.
 */
export function buildResidentRoom(options: { readonly serverName: string; readonly key: SigningKey; readonly roomVersion: "10" | "12"; readonly members: number; readonly label: string }): ResidentRoom {
  const { serverName, key, roomVersion } = options;
  const rules = getRoomVersion(roomVersion);
  const v12 = rules.auth.privilegedCreators;
  const creator = `@creator:${serverName}`;
  const events: SignedEvent[] = [];
  const baseTs = Date.now() - 60_000;
  let roomId = v12 ? "" : `!${options.label}:${serverName}`;
  const add = (type: string, sender: string, stateKeyValue: string, content: JsonObject, authEvents: readonly string[]): string => {
    const prev = events.at(-1);
    const draft: JsonObject = {
      type,
      sender,
      state_key: stateKeyValue,
      content,
      origin_server_ts: baseTs + events.length,
      depth: events.length + 1,
      prev_events: prev === undefined ? [] : [prev.id],
      auth_events: [...authEvents],
    };
    // Room 12's create event has no room_id: the room ID is derived from it.
    if (!(v12 && type === "m.room.create")) draft["room_id"] = roomId;
    const pdu = signEvent(draft, serverName, key, rules);
    const id = computeEventId(pdu, rules);
    events.push({ pdu, id });
    return id;
  };
  const createId = add("m.room.create", creator, "", v12 ? { room_version: roomVersion } : { room_version: roomVersion, creator }, []);
  if (v12) roomId = computeRoomIdV12(events[0]!.pdu, rules);
  const withCreate = (ids: readonly string[]): string[] => (v12 ? [...ids] : [createId, ...ids]);
  const creatorJoin = add("m.room.member", creator, creator, { membership: "join" }, withCreate([]));
  const powerLevelsId = add("m.room.power_levels", creator, "", { users: v12 ? {} : { [creator]: 100 }, users_default: 0 }, withCreate([creatorJoin]));
  const joinRulesId = add("m.room.join_rules", creator, "", { join_rule: "public" }, withCreate([powerLevelsId, creatorJoin]));
  for (let n = 0; n < options.members; n++) {
    const user = `@u${n}:${serverName}`;
    add("m.room.member", user, user, { membership: "join", displayname: `User ${n}` }, withCreate([powerLevelsId, joinRulesId]));
  }
  return { roomId, rules, events, createId, powerLevelsId, joinRulesId, authChainIds: [createId, creatorJoin, powerLevelsId, joinRulesId] };
}

/**
 * `count` messages by `sender` on top of `after`, each citing the one before as its only
 * prev event, with increasing depth and the given auth events, signed by `serverName`.
 */
export function buildMessageChain(options: {
  readonly roomId: string;
  readonly rules: RoomVersionRules;
  readonly serverName: string;
  readonly key: SigningKey;
  readonly sender: string;
  readonly after: SignedEvent;
  readonly authEvents: readonly string[];
  readonly count: number;
}): SignedEvent[] {
  const out: SignedEvent[] = [];
  let prev = options.after;
  const baseTs = Date.now();
  for (let i = 0; i < options.count; i++) {
    const pdu = signEvent(
      {
        room_id: options.roomId,
        type: "m.room.message",
        sender: options.sender,
        content: { msgtype: "m.text", body: `message ${i}: ${"lorem ipsum dolor sit amet ".repeat(1 + (i % 6))}` },
        origin_server_ts: baseTs + i,
        depth: (prev.pdu["depth"] as number) + 1,
        prev_events: [prev.id],
        auth_events: [...options.authEvents],
      },
      options.serverName,
      options.key,
      options.rules,
    );
    prev = { pdu, id: computeEventId(pdu, options.rules) };
    out.push(prev);
  }
  return out;
}

/** The middle value (the upper one of an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
