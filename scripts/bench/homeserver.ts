// The reference homeserver under federation load (issue: "PDUs per second ingested through
// /send ... and the time to complete a join whose send_join response carries 5,000 state
// events"). Everything runs in this process: the homeserver H (apps/server's
// createHomeserver, HTTPS with a test CA, SQLite in a temporary directory) and a scripted
// remote server R (apps/server's federation test support: the @myelin/server router,
// publishing its key), talking over loopback HTTPS with X-Matrix signatures both ways.
import { computeEventId, generateSigningKey, signEvent, type SigningKey } from "@myelin/signing";
import { getRoomVersion, type JsonObject } from "@myelin/types";
import { createTestTls, startFakeServer, type FakeServer, type TestTls } from "../../apps/server/src/federation/test-support.js";
import type { RoomEngine } from "../../apps/server/src/engine/index.js";
import { removeTemporaryDirectories } from "../../apps/server/src/test-helpers.js";
import { buildMessageChain, buildResidentRoom, median, startBenchHomeserver, type ResidentRoom, type SignedEvent } from "./homeserver-fixtures.js";

const ROOM_VERSIONS = ["10", "12"] as const;
type BenchRoomVersion = (typeof ROOM_VERSIONS)[number];

/** PDUs sent per room version, in transactions of the spec's maximum of 50. */
const SEND_PDUS = 2_000;
const PDUS_PER_TRANSACTION = 50;
/** Runs per room version, each by a fresh homeserver in a fresh room. */
const SEND_RUNS = 3;
/** State events in the room joined (create, creator, power levels, join rules and members). */
const JOIN_STATE_EVENTS = 5_000;
/** Joins timed per room version, each by a fresh homeserver. */
const JOIN_SAMPLES = 5;

const enc = encodeURIComponent;
type Handlers = Parameters<FakeServer["setHandlers"]>[0];

/** A transaction R's handler accepts and forgets (H sends R the events of its own users). */
const acceptTransactions: Handlers = { send_transaction_message: { v1: () => ({ pdus: {} }) } };

function fmtRate(n: number): string {
  return Math.round(n).toLocaleString("en");
}

function fmtMs(n: number): string {
  return Math.round(n).toLocaleString("en");
}

/** Rejects after `ms`, saying what was awaited (for waits that must not hang the bench). */
function timeout(ms: number, what: () => string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)), ms).unref());
}

// ---------------------------------------------------------------------------------------
// /send ingestion

interface SendResult {
  readonly version: BenchRoomVersion;
  readonly pdus: number;
  readonly transactions: number;
  readonly ackMs: number;
  readonly processedMs: number;
}

/**
 * R's user joins a public room of H with make_join/send_join, then R sends `SEND_PDUS`
 * signed messages chained on its previous event, one 50-PDU transaction in flight at a time
 * (server-server API § "Transactions"). Timed from the first request to the last 200, and to
 * the moment H has persisted the last of them into the room (after the signature, hash,
 * format, auth and state checks of its staging worker).
 */
async function measureSend(tls: TestTls, version: BenchRoomVersion): Promise<SendResult> {
  const rules = getRoomVersion(version);
  const h = await startBenchHomeserver(tls);
  const rKey = generateSigningKey("r1");
  const r = await startFakeServer(tls, rKey, acceptTransactions);
  try {
    const alice = await h.addUser("alice");
    const created = await h.call(alice.token, "POST", "/createRoom", { room_version: version, preset: "public_chat" });
    if (created.status !== 200) throw new Error(`createRoom failed: ${JSON.stringify(created.json)}`);
    const roomId = (created.json as { room_id: string }).room_id;

    // R's user joins through H, as a remote server does.
    const sender = `@sender:${r.serverName}`;
    const template = await r.client.call("create_join_event_template", "v1", h.info.serverName, { params: { roomId, userId: sender }, query: { ver: [version] } });
    const join = signEvent({ ...(template.event as JsonObject), origin: r.serverName, origin_server_ts: Date.now() }, r.serverName, rKey, rules);
    const joinId = computeEventId(join, rules);
    const answer = await r.client.call("create_join_event", "v2", h.info.serverName, { params: { roomId, eventId: joinId }, body: join });
    const state = answer.state as JsonObject[];
    const idOf = (type: string): string => {
      const event = state.find((e) => e["type"] === type && e["state_key"] === "");
      if (event === undefined) throw new Error(`no ${type} in the send_join state`);
      return computeEventId(event, rules);
    };
    // Rooms v12 leave the create event out of auth_events (MSC4291).
    const authEvents = rules.auth.privilegedCreators ? [idOf("m.room.power_levels"), joinId] : [idOf("m.room.create"), idOf("m.room.power_levels"), joinId];
    const messages = buildMessageChain({ roomId, rules, serverName: r.serverName, key: rKey, sender, after: { pdu: join, id: joinId }, authEvents, count: SEND_PDUS });

    const engine = h.homeserver.engine!;
    const wanted = new Set(messages.map((m) => m.id));
    let persisted = 0;
    let lastPersisted = 0;
    let done: () => void = () => undefined;
    const allPersisted = new Promise<void>((resolve) => (done = resolve));
    const unsubscribe = engine.onEventPersisted((event) => {
      if (!wanted.has(event.eventId)) return;
      persisted++;
      if (persisted === wanted.size) {
        lastPersisted = performance.now();
        done();
      }
    });

    const start = performance.now();
    let transactions = 0;
    for (let i = 0; i < messages.length; i += PDUS_PER_TRANSACTION) {
      const batch = messages.slice(i, i + PDUS_PER_TRANSACTION);
      const result = await r.client.call("send_transaction_message", "v1", h.info.serverName, {
        params: { txnId: `bench-${version}-${transactions++}` },
        body: { origin: r.serverName, origin_server_ts: Date.now(), pdus: batch.map((m) => m.pdu) },
      });
      const refused = Object.entries(result.pdus as Record<string, { error?: string }>).filter(([, outcome]) => outcome.error !== undefined);
      if (refused.length > 0) throw new Error(`H refused PDUs: ${JSON.stringify(refused.slice(0, 3))}`);
    }
    const acked = performance.now();
    await Promise.race([allPersisted, timeout(180_000, () => `the ${SEND_PDUS} PDUs to be persisted (${persisted} so far)`)]);
    unsubscribe();

    await checkInTimeline(engine, messages);
    return { version, pdus: messages.length, transactions, ackMs: acked - start, processedMs: lastPersisted - start };
  } finally {
    await r.stop();
    await h.stop();
  }
}

/** Every message is in H's room DAG: stored, not an outlier, not rejected, not soft-failed. */
async function checkInTimeline(engine: RoomEngine, messages: readonly SignedEvent[]): Promise<void> {
  const stored = await engine.getEvents(messages.map((m) => m.id));
  for (const m of messages) {
    const event = stored.get(m.id);
    if (event === undefined || event.stored.outlier || event.stored.rejectedReason !== null || event.stored.softFailed) {
      throw new Error(`message ${m.id} is not in the timeline: ${JSON.stringify(event?.stored ?? "missing")}`);
    }
  }
}

/** `/send` ingestion on H, per room version. */
export async function homeserverSendSection(): Promise<string> {
  const tls = await createTestTls();
  const runs = new Map<BenchRoomVersion, SendResult[]>();
  try {
    for (const version of ROOM_VERSIONS) {
      const results: SendResult[] = [];
      for (let run = 0; run < SEND_RUNS; run++) results.push(await measureSend(tls, version));
      runs.set(version, results);
    }
  } finally {
    await removeTemporaryDirectories();
  }
  const lines = [
    `${SEND_PDUS.toLocaleString("en")} signed \`m.room.message\` PDUs from one remote server, in ${PDUS_PER_TRANSACTION}-PDU transactions sent one at a time over HTTPS on loopback, ` +
      "each PDU citing the previous one as its prev event. \"Acknowledged\": from the first request to the last 200 (PDUs checked and staged durably). " +
      "\"Persisted\": to the moment the last PDU is in the room's timeline (prev events, auth and state checked, SQLite committed); " +
      "the staging worker runs while the next transaction arrives, so both share the CPU. " +
      `Median of ${SEND_RUNS} runs per version, each by a fresh homeserver in a fresh room; the range is slowest–fastest.`,
    "",
    "| room version | PDUs (transactions) | acknowledged (PDUs/s) | persisted (PDUs/s) | persisted, range (PDUs/s) | time to last persisted (ms) |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [version, results] of runs) {
    const ack = results.map((r) => r.pdus / (r.ackMs / 1000));
    const persisted = results.map((r) => r.pdus / (r.processedMs / 1000));
    const first = results[0]!;
    lines.push(
      `| ${version} | ${first.pdus.toLocaleString("en")} (${first.transactions}) | ${fmtRate(median(ack))} | ${fmtRate(median(persisted))} | ` +
        `${fmtRate(Math.min(...persisted))}–${fmtRate(Math.max(...persisted))} | ${fmtMs(median(results.map((r) => r.processedMs)))} |`,
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------
// Joining a large room

/** R's resident-side handlers for the rooms it holds: make_join templates and send_join v2. */
function residentHandlers(rooms: ReadonlyMap<string, ResidentRoom>, serverName: string, key: SigningKey): Handlers {
  const roomOf = (roomId: string): ResidentRoom => {
    const room = rooms.get(roomId);
    if (room === undefined) throw new Error(`R does not hold ${roomId}`);
    return room;
  };
  return {
    ...acceptTransactions,
    create_join_event_template: {
      v1: ({ params }) => {
        const room = roomOf(params.roomId);
        const last = room.events.at(-1)!;
        const auth = room.rules.auth.privilegedCreators ? [room.powerLevelsId, room.joinRulesId] : [room.createId, room.powerLevelsId, room.joinRulesId];
        const event: JsonObject = {
          room_id: room.roomId,
          type: "m.room.member",
          sender: params.userId,
          state_key: params.userId,
          content: { membership: "join" },
          origin: serverName,
          origin_server_ts: Date.now(),
          depth: (last.pdu["depth"] as number) + 1,
          prev_events: [last.id],
          auth_events: auth,
        };
        return { room_version: room.rules.id, event: event as never };
      },
    },
    create_join_event: {
      v2: ({ params, body }) => {
        const room = roomOf(params.roomId);
        const chain = new Set(room.authChainIds);
        // The whole room is state (every event is a state event of its own key); the auth
        // chain of that state is its first four events, which Synapse also lists again.
        return {
          origin: serverName,
          state: room.events.map((e) => e.pdu),
          auth_chain: room.events.filter((e) => chain.has(e.id)).map((e) => e.pdu),
          // The resident's copy of the join, with its signature added (as Synapse answers).
          event: signEvent(body as JsonObject, serverName, key, room.rules),
        };
      },
    },
  };
}

interface JoinResult {
  readonly version: BenchRoomVersion;
  readonly stateEvents: number;
  readonly responseBytes: number;
  readonly samplesMs: number[];
  readonly stateAfter: number;
}

/**
 * A local user of H joins R's room of `JOIN_STATE_EVENTS` state events through the
 * Client-Server API (`POST /join/{roomId}?server_name=R`): H asks R for a template, signs its
 * join, sends it, then checks and stores every event of the send_join response (signatures
 * with R's key fetched over HTTPS, hashes, format, auth against their own auth events) and
 * places its join on that state. Timed from the request to the 200, each sample by a fresh
 * homeserver (empty database, R's key not yet cached).
 */
async function measureJoin(tls: TestTls, version: BenchRoomVersion): Promise<JoinResult> {
  const rKey = generateSigningKey("r1");
  const r = await startFakeServer(tls, rKey);
  try {
    const room = buildResidentRoom({ serverName: r.serverName, key: rKey, roomVersion: version, members: JOIN_STATE_EVENTS - 4, label: `bench${version}` });
    r.setHandlers(residentHandlers(new Map([[room.roomId, room]]), r.serverName, rKey));
    const responseBytes = Buffer.byteLength(JSON.stringify(room.events.map((e) => e.pdu)));
    const samplesMs: number[] = [];
    let stateAfter = 0;
    for (let sample = 0; sample < JOIN_SAMPLES; sample++) {
      const h = await startBenchHomeserver(tls);
      try {
        const joiner = await h.addUser("joiner");
        const start = performance.now();
        const joined = await h.call(joiner.token, "POST", `/join/${enc(room.roomId)}?server_name=${enc(r.serverName)}`, {});
        const ms = performance.now() - start;
        if (joined.status !== 200) throw new Error(`the join failed (${joined.status}): ${JSON.stringify(joined.json)}`);
        samplesMs.push(ms);
        stateAfter = (await h.homeserver.engine!.getCurrentStateIds(room.roomId)).size;
        if (stateAfter !== JOIN_STATE_EVENTS + 1) throw new Error(`H has ${stateAfter} state entries after the join, not ${JOIN_STATE_EVENTS + 1}`);
      } finally {
        await h.stop();
      }
    }
    return { version, stateEvents: room.events.length, responseBytes, samplesMs, stateAfter };
  } finally {
    await r.stop();
  }
}

/** Remote joins of a room with 5,000 state events, per room version. */
export async function homeserverJoinSection(): Promise<string> {
  const tls = await createTestTls();
  const results: JoinResult[] = [];
  try {
    for (const version of ROOM_VERSIONS) results.push(await measureJoin(tls, version));
  } finally {
    await removeTemporaryDirectories();
  }
  const lines = [
    `A local user joins a public room held by a remote server through \`POST /_matrix/client/v3/join/{roomId}?server_name=…\`: make_join, ` +
      `send_join v2 answering with the whole room (create, creator, power levels, join rules and ${(JOIN_STATE_EVENTS - 4).toLocaleString("en")} members, ` +
      `each signed by the remote server), every event verified and stored. Wall time from the request to the 200, ${JOIN_SAMPLES} joins per version, each by a fresh homeserver.`,
    "",
    "| room version | state events in send_join | state JSON (MB) | join, median (ms) | join, fastest (ms) | state entries on H after |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.version} | ${r.stateEvents.toLocaleString("en")} | ${(r.responseBytes / 1e6).toFixed(1)} | ${fmtMs(median(r.samplesMs))} | ${fmtMs(Math.min(...r.samplesMs))} | ${r.stateAfter.toLocaleString("en")} |`,
    );
  }
  return lines.join("\n");
}
