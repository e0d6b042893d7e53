/**
 * Inbound transactions: `PUT /_matrix/federation/v1/send/{txnId}` and the staging area it
 * fills (server-server API § "Transactions", § "Checks performed on receipt of a PDU";
 * hostile-federation §2.2 and §5).
 *
 * The handler does the cheap, per-PDU checks (room known, server ACL, format, signatures,
 * hashes) and then, in one storage transaction, stages every PDU that passed together with
 * the response it is about to send. Only then does it answer: a 200 means every PDU it
 * accepts is on disk (D2), and a crash before the commit leaves nothing half-done (D1, D13).
 * The expensive part (missing events, auth, state) is the room worker's (see
 * {@link StagingWorker}).
 *
 * Idempotency: the response of (origin, txnId) is stored for 24 h and replayed (T16); a
 * concurrent duplicate shares the first one's answer (T17); another transaction from an
 * origin with one in flight gets 429 (T18); events already stored are not staged again (T19).
 *
 * @module
 */

import type { FederationHandler, FederationRequest } from "@myelin/server";
import type { KeyLookup } from "@myelin/signing";
import { encodeCanonicalJson, findJsonNumberToken, parseJson } from "@myelin/signing";
import type { ENDPOINTS_BY_NAME, JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { DEFAULT_ROOM_VERSION, MatrixError, MAX_TRANSACTION_EDUS, MAX_TRANSACTION_PDUS, findRoomVersion, getRoomVersion } from "@myelin/types";
import type { Logger } from "../log.js";
import type { StagedPdu, Storage } from "../storage/storage.js";
import type { AclCache } from "./room-state.js";
import { serializePdu } from "./room-state.js";
import { checkPdus, eventIdOf, roomIdOf, stripUnsigned } from "./pdu-checks.js";

type SendEndpoint = (typeof ENDPOINTS_BY_NAME)["send_transaction_message"]["v1"];

/** How long a `/send` response is replayed for the same (origin, txnId) (Synapse: 24 h). */
export const RECEIVED_TRANSACTION_TTL_MS = 24 * 60 * 60 * 1000;

/** Options of {@link createSendHandler}. */
export interface SendHandlerOptions {
  readonly storage: Storage;
  readonly lookupKey: KeyLookup;
  readonly acl: AclCache;
  readonly logger: Logger;
  readonly now: () => number;
  /** Called after the staging commit with the rooms that got new PDUs. */
  readonly onStaged: (roomIds: readonly string[]) => void;
}

type PduResults = Record<string, { error?: string }>;

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The key a PDU's result goes under when its room version is unknown: its `event_id` (rooms
 * 1-2), else the ID it would have in a room of the default version. The sender computed the
 * ID under the real version, so this is a best effort.
 */
function fallbackEventId(pdu: JsonObject): string | undefined {
  if (typeof pdu["event_id"] === "string") return pdu["event_id"];
  return eventIdOf(pdu, getRoomVersion(DEFAULT_ROOM_VERSION));
}

/**
 * The text a checked PDU is staged as. A room 1-5 PDU holding floats or big integers
 * (`JsonNumberToken`s) is written in Synapse's notation, the bytes its hashes and
 * signatures cover; `serializePdu` would hand the tokens to `JSON.stringify`, which refuses
 * them. Each PDU is judged per room version by `checkPdus` first (T14).
 */
function stagedJson(pdu: JsonObject): string {
  return findJsonNumberToken(pdu) === undefined ? serializePdu(pdu) : encodeCanonicalJson(pdu, { compat: "synapse" });
}

/** Builds the `send_transaction_message` v1 handler. */
export function createSendHandler(options: SendHandlerOptions): FederationHandler<SendEndpoint> {
  const { storage, logger } = options;
  /** origin -> the transaction being processed for it (in-flight coalescing, T17/T18). */
  const inFlight = new Map<string, { txnId: string; response: Promise<{ pdus: PduResults }> }>();

  return async (request: FederationRequest<SendEndpoint>) => {
    const origin = request.origin;
    const { txnId } = request.params;
    const body = request.body;
    // conduwuit refuses a transaction on behalf of another server; the spec's `origin` is
    // the sender's name, and only the X-Matrix origin is authenticated (T13).
    if (body.origin !== origin) {
      throw new MatrixError("M_FORBIDDEN", "The transaction's origin is not the server that signed the request");
    }
    // The router's schema enforces these too; kept for any caller that bypasses it (T11).
    if (body.pdus.length > MAX_TRANSACTION_PDUS || (body.edus?.length ?? 0) > MAX_TRANSACTION_EDUS) {
      throw new MatrixError("M_BAD_JSON", `A transaction carries at most ${MAX_TRANSACTION_PDUS} PDUs and ${MAX_TRANSACTION_EDUS} EDUs`);
    }
    const running = inFlight.get(origin);
    if (running !== undefined) {
      if (running.txnId === txnId) return running.response;
      throw new MatrixError("M_LIMIT_EXCEEDED", "Too many concurrent transactions", { extra: { retry_after_ms: 1000 } });
    }
    const response = processTransaction(origin, txnId, body.pdus as JsonValue[], (body.edus ?? []) as JsonValue[]);
    inFlight.set(origin, { txnId, response });
    try {
      return await response;
    } finally {
      inFlight.delete(origin);
    }
  };

  async function processTransaction(origin: string, txnId: string, pdus: JsonValue[], edus: JsonValue[]): Promise<{ pdus: PduResults }> {
    const stored = await storage.transaction((tx) => tx.getReceivedTransaction(origin, txnId));
    if (stored !== undefined) return parseJson(stored) as { pdus: PduResults };

    const results: PduResults = {};
    const byRoom = new Map<string, JsonObject[]>();
    for (const pdu of pdus) {
      if (!isObject(pdu)) continue; // nothing to key a result by (T15)
      const roomId = typeof pdu["room_id"] === "string" ? pdu["room_id"] : undefined;
      if (roomId === undefined) {
        // Without a room there is no room version: no event ID to answer under (T15).
        logger.info("ignoring a PDU without room_id", { origin, txnId });
        continue;
      }
      let list = byRoom.get(roomId);
      if (list === undefined) byRoom.set(roomId, (list = []));
      list.push(pdu);
    }

    const staged: { roomId: string; eventId: string; json: string }[] = [];
    for (const [roomId, roomPdus] of byRoom) {
      const room = await storage.transaction((tx) => tx.getRoom(roomId));
      const rules = room === undefined ? undefined : findRoomVersion(room.roomVersion);
      if (rules === undefined) {
        for (const pdu of roomPdus) {
          const id = fallbackEventId(pdu);
          if (id !== undefined) results[id] = { error: `Unknown room ${roomId}` };
        }
        continue;
      }
      // Server ACLs apply per PDU: the whole room's PDUs from a denied origin get errors (spec § "Server ACLs").
      if (!(await options.acl.allows(origin, roomId))) {
        for (const pdu of roomPdus) {
          const id = eventIdOf(stripUnsigned(pdu), rules) ?? fallbackEventId(pdu);
          if (id !== undefined) results[id] = { error: "Server is banned from this room by its server ACL" };
        }
        continue;
      }
      await checkRoomPdus(roomId, rules, roomPdus, results, staged);
    }

    checkEdus(origin, edus);

    const response = { pdus: results };
    const responseText = JSON.stringify(response);
    // Ack = durable: the PDUs and the response commit together, before the 200 (D2).
    const final = await storage.transaction(async (tx) => {
      const known = await tx.hasEvents(staged.map((entry) => entry.eventId));
      for (const entry of staged) {
        if (known.has(entry.eventId)) continue; // already in the DAG: event-level idempotency (T19)
        await tx.stagePdu({ origin, roomId: entry.roomId, eventId: entry.eventId, json: entry.json, receivedTs: options.now() });
      }
      if (await tx.putReceivedTransaction(origin, txnId, responseText, options.now())) return responseText;
      // Another process answered this transaction first: give the same answer.
      return (await tx.getReceivedTransaction(origin, txnId)) ?? responseText;
    });
    const rooms = [...new Set(staged.map((entry) => entry.roomId))];
    if (rooms.length > 0) options.onStaged(rooms);
    return parseJson(final) as { pdus: PduResults };
  }

  async function checkRoomPdus(
    roomId: string,
    rules: RoomVersionRules,
    pdus: readonly JsonObject[],
    results: PduResults,
    staged: { roomId: string; eventId: string; json: string }[],
  ): Promise<void> {
    const checks = await checkPdus(pdus, { rules, lookupKey: options.lookupKey, roomId });
    checks.forEach((check, index) => {
      const pdu = pdus[index] as JsonObject;
      const id = check.eventId ?? eventIdOf(pdu, rules) ?? fallbackEventId(pdu);
      if (check.kind === "dropped") {
        if (id !== undefined) results[id] = { error: check.reason };
        return;
      }
      // A PDU of another room than it claims cannot reach here (checkPdus refuses it).
      if (roomIdOf(check.pdu, rules) !== roomId) return;
      results[check.eventId] = {};
      staged.push({ roomId, eventId: check.eventId, json: stagedJson(check.pdu) });
    });
  }

  function checkEdus(origin: string, edus: readonly JsonValue[]): void {
    // Typing, receipts and presence are accepted and ignored for now; device-list EDUs are
    // ignored. Only the envelope is checked (spec § "EDUs": `edu_type` and `content`).
    let malformed = 0;
    for (const edu of edus) {
      if (!isObject(edu) || typeof edu["edu_type"] !== "string" || !isObject(edu["content"])) malformed++;
    }
    if (edus.length > 0) logger.debug("EDUs received and ignored", { origin, count: edus.length, malformed });
  }
}

/** What {@link StagingWorker} hands each staged PDU to. */
export type StagedPduProcessor = (pdu: StagedPdu, signal: AbortSignal) => Promise<void>;

/** Options of {@link StagingWorker}. */
export interface StagingWorkerOptions {
  readonly storage: Storage;
  readonly process: StagedPduProcessor;
  readonly logger: Logger;
  readonly now: () => number;
  /** This process's name in leases (unique per process). */
  readonly holder: string;
  /** How often staging is rescanned for rooms nobody works on (ms). Default 5 s. */
  readonly rescanIntervalMs?: number;
  /** Lease length (ms); renewed per PDU. Default 2 min. */
  readonly leaseMs?: number;
  /** Attempts before a PDU that keeps failing is dropped from staging. Default 5. */
  readonly maxAttempts?: number;
}

/**
 * Takes staged PDUs room by room, in arrival order, and hands them to the processor (one
 * room at a time per lease: two processes never work on one room, and within a process a
 * room has one loop). A PDU leaves staging once processed; one that keeps throwing is
 * retried at the next rescan and dropped after a few attempts, with a log line. Staging is
 * rescanned at start-up and every few seconds, which also picks up rooms whose lease
 * holder died (D2, D3).
 */
export class StagingWorker {
  private readonly options: StagingWorkerOptions;
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly attempts = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private abort = new AbortController();

  constructor(options: StagingWorkerOptions) {
    this.options = options;
  }

  /** Starts: a scan now, then one every `rescanIntervalMs`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.abort = new AbortController();
    this.timer = setInterval(() => void this.rescan(), this.options.rescanIntervalMs ?? 5_000);
    this.timer.unref();
    void this.rescan();
  }

  /** Stops taking PDUs, aborts the ones being processed and waits for the loops to end. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort(new Error("the staging worker is stopping"));
    await Promise.allSettled([...this.running.values()]);
  }

  /** New PDUs were staged for these rooms. */
  wake(roomIds: Iterable<string>): void {
    if (!this.started) return;
    for (const roomId of roomIds) this.run(roomId);
  }

  /** Resolves when no room loop is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  private async rescan(): Promise<void> {
    if (!this.started) return;
    try {
      this.wake(await this.options.storage.transaction((tx) => tx.listStagedRooms()));
    } catch (error) {
      this.options.logger.error("could not scan staged PDUs", { error });
    }
  }

  private run(roomId: string): void {
    if (this.running.has(roomId)) {
      this.again.add(roomId);
      return;
    }
    const loop = this.loop(roomId)
      .catch((error: unknown) => this.options.logger.error("staged PDU loop failed", { roomId, error }))
      .finally(() => {
        this.running.delete(roomId);
        if (this.again.delete(roomId) && this.started) this.run(roomId);
      });
    this.running.set(roomId, loop);
  }

  private async loop(roomId: string): Promise<void> {
    const { storage, holder, logger } = this.options;
    const lease = `staging:${roomId}`;
    const leaseMs = this.options.leaseMs ?? 120_000;
    const maxAttempts = this.options.maxAttempts ?? 5;
    try {
      while (this.started) {
        this.again.delete(roomId);
        const next = await storage.transaction(async (tx) => {
          if (!(await tx.tryAcquireLease(lease, holder, this.options.now() + leaseMs))) return undefined;
          return (await tx.nextStagedPdus(roomId, 1))[0];
        });
        if (next === undefined) return;
        try {
          await this.options.process(next, this.abort.signal);
        } catch (error) {
          if (!this.started) return;
          const attempts = (this.attempts.get(next.id) ?? 0) + 1;
          if (attempts < maxAttempts) {
            this.attempts.set(next.id, attempts);
            logger.warn("processing a staged PDU failed: will retry", { roomId, eventId: next.eventId, attempts, error });
            return; // keep the room's order: try again at the next rescan
          }
          logger.error("processing a staged PDU keeps failing: dropping it", { roomId, eventId: next.eventId, attempts, error });
        }
        this.attempts.delete(next.id);
        await storage.transaction((tx) => tx.deleteStagedPdu(next.id));
      }
    } finally {
      await storage.transaction((tx) => tx.releaseLease(lease, holder)).catch(() => undefined);
    }
  }
}
