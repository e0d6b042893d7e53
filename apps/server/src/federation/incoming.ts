/**
 * Getting a received PDU into the room DAG: what the room worker does with each staged PDU,
 * and what every other ingress path reuses (server-server API § "Checks performed on receipt
 * of a PDU", § "Retrieving events"; hostile-federation §2.11 and D8).
 *
 * The engine runs checks 4-6 (`persistIncomingEvent`) and says what it lacks:
 * - auth events it does not have: fetched with `/event_auth` from the server that sent the
 *   PDU, checked (format, signatures, hashes) and stored as outliers, then tried again;
 * - prev events it has no state for: fetched with `/get_missing_events` (at most
 *   {@link MAX_GAP_ROUNDS} rounds and {@link MAX_GAP_EVENTS} events), the oldest first. A
 *   fetched ("pulled") event whose own prev events are still missing gets the state before
 *   it from `/state_ids` at each missing prev (plus that prev itself), resolved with the
 *   state after the prevs we have, as Synapse's `_compute_event_context_with_maybe_missing_prevs`
 *   does. A pushed event whose prev events stay missing is dropped, never made an extremity
 *   (T75, Synapse's "Your server isn't divulging details about prev_events"); if its
 *   parents arrive later and it is sent again, it is accepted then (T78).
 *
 * Every event fetched goes through the same checks as a pushed one (`checkPdus`, T40).
 * History fetched with `/backfill` takes the pulled path too, placed below the timeline
 * ({@link IncomingPipeline.ingestBackfilled}). Events over the byte limits of rooms 1-10
 * are stored as rejected rather than dropped (T22).
 *
 * @module
 */

import type { FederationClient } from "@myelin/client";
import { stateKey } from "@myelin/rooms";
import type { KeyLookup } from "@myelin/signing";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { findRoomVersion } from "@myelin/types";
import type { RoomEngine } from "../engine/room-engine.js";
import type { StateMap } from "../engine/room-reader.js";
import { RoomReader } from "../engine/room-reader.js";
import type { Logger } from "../log.js";
import type { StagedPdu, Storage } from "../storage/storage.js";
import type { CheckedPdu, PduCheck } from "./pdu-checks.js";
import { checkPdus } from "./pdu-checks.js";
import { parsePdu, serializePdu } from "./room-state.js";

/** Most `/get_missing_events` rounds for one pushed PDU. */
export const MAX_GAP_ROUNDS = 10;
/** Most events fetched with `/get_missing_events` for one pushed PDU. */
export const MAX_GAP_EVENTS = 100;
/** Events asked for per `/get_missing_events` round (Synapse asks for 10). */
const GAP_ROUND_LIMIT = 10;
/** Above this many missing state events, `/state` is fetched whole instead of `/event` one by one. */
const FETCH_ONE_BY_ONE_MAX = 20;

/** Options of {@link IncomingPipeline}. */
export interface IncomingPipelineOptions {
  readonly engine: RoomEngine;
  readonly storage: Storage;
  readonly client: Pick<FederationClient, "call">;
  readonly lookupKey: KeyLookup;
  readonly logger: Logger;
}

/** What became of an event handed to {@link IncomingPipeline.ingest}. */
export type IngestOutcome = "persisted" | "soft-failed" | "rejected" | "duplicate" | "dropped";

interface Ctx {
  readonly roomId: string;
  readonly rules: RoomVersionRules;
  /** The server asked for whatever is missing. */
  readonly origin: string;
  readonly signal: AbortSignal | undefined;
}

/** Persists received events, fetching what they depend on from the server they came from. */
export class IncomingPipeline {
  private readonly engine: RoomEngine;
  private readonly storage: Storage;
  private readonly client: Pick<FederationClient, "call">;
  private readonly lookupKey: KeyLookup;
  private readonly logger: Logger;

  constructor(options: IncomingPipelineOptions) {
    this.engine = options.engine;
    this.storage = options.storage;
    this.client = options.client;
    this.lookupKey = options.lookupKey;
    this.logger = options.logger;
  }

  /** The room worker's processor: one staged PDU (already through checks 1-3 in `/send`). */
  async processStaged(staged: StagedPdu, signal?: AbortSignal): Promise<void> {
    const room = await this.storage.transaction((tx) => tx.getRoom(staged.roomId));
    const rules = room === undefined ? undefined : findRoomVersion(room.roomVersion);
    if (rules === undefined) {
      this.logger.warn("dropping a staged PDU of an unknown room", { roomId: staged.roomId, eventId: staged.eventId });
      return;
    }
    // Signatures and hashes were checked before staging (and the staged text is the checked,
    // possibly redacted, copy); the format is checked again to recompute the event ID.
    const [check] = await checkPdus([parsePdu(staged.json)], { rules, lookupKey: this.lookupKey, roomId: staged.roomId, verifySignatures: false });
    if (check === undefined || check.kind === "dropped") {
      this.logger.warn("dropping a staged PDU that no longer passes the checks", { eventId: staged.eventId, reason: check?.reason });
      return;
    }
    const outcome = await this.ingest(check, { roomId: staged.roomId, rules, origin: staged.origin, signal }, true);
    this.logger.debug("processed a received PDU", { roomId: staged.roomId, eventId: check.eventId, origin: staged.origin, outcome });
  }

  /**
   * Checks (1-3) and persists PDUs pulled from `origin` for `roomId` (GME, backfill,
   * `/event`), oldest first. Returns the IDs of those persisted into the DAG.
   */
  async ingestPulled(roomId: string, origin: string, pdus: readonly JsonValue[], signal?: AbortSignal): Promise<string[]> {
    const room = await this.storage.transaction((tx) => tx.getRoom(roomId));
    const rules = room === undefined ? undefined : findRoomVersion(room.roomVersion);
    if (rules === undefined) return [];
    const ctx = { roomId, rules, origin, signal };
    const checked = await this.check(ctx, pdus);
    const done: string[] = [];
    for (const event of sortByDepth(checked)) {
      const outcome = await this.ingest(event, ctx, false);
      if (outcome === "persisted" || outcome === "soft-failed" || outcome === "duplicate") done.push(event.eventId);
    }
    return done;
  }

  /**
   * Persists a `/backfill` answer from `origin` (history older than the room's timeline):
   * checks 1-3 on every PDU (over-long `prev_events` / `auth_events` forgiven), then, oldest
   * first, those not in the timeline yet, each at a position reserved below the timeline, so
   * that `/messages` going backwards finds them after what it had, in depth order. The state
   * before the oldest comes from `/state_ids` at their unknown prev events, as for every
   * pulled event (checks 4-5; history is not soft-failed). Returns the IDs placed.
   */
  async ingestBackfilled(roomId: string, origin: string, pdus: readonly JsonValue[], signal?: AbortSignal): Promise<string[]> {
    const room = await this.storage.transaction((tx) => tx.getRoom(roomId));
    const rules = room === undefined ? undefined : findRoomVersion(room.roomVersion);
    if (rules === undefined) return [];
    const ctx = { roomId, rules, origin, signal };
    const checked = await this.check(ctx, pdus, true);
    const rows = await this.storage.transaction((tx) => tx.getEvents(checked.map((e) => e.eventId)));
    const fresh = new Map<string, CheckedPdu>();
    for (const event of checked) {
      const row = rows.get(event.eventId);
      if (row === undefined || row.outlier) fresh.set(event.eventId, event);
    }
    if (fresh.size === 0) return [];
    // Oldest first gets the lowest position: the block's order is the timeline's.
    const ordered = sortByDepth([...fresh.values()]);
    const lowest = await this.storage.transaction((tx) => tx.reserveBackfillOrderings(ordered.length));
    const placed: string[] = [];
    for (const [index, event] of ordered.entries()) {
      if (signal?.aborted === true) break;
      const outcome = await this.ingest(event, ctx, false, { streamOrdering: lowest + index });
      if (outcome === "persisted" || outcome === "soft-failed") placed.push(event.eventId);
    }
    return placed;
  }

  /**
   * Checks and stores events as outliers (auth chains, state); returns the IDs stored or
   * already known. Events over the byte limits of rooms 1-10 are stored as rejected (first,
   * so that events citing them find them).
   */
  async storeOutliers(roomId: string, rules: RoomVersionRules, pdus: readonly JsonValue[]): Promise<Set<string>> {
    const checked = await checkPdus(pdus, { rules, lookupKey: this.lookupKey, roomId });
    await this.storeFormatRejected(roomId, checked);
    const good: { pdu: JsonObject; eventId: string; json: string }[] = [];
    for (const check of checked) {
      if (check.kind === "checked" && check.rejectReason === undefined) {
        good.push({ pdu: check.pdu, eventId: check.eventId, json: serializePdu(check.pdu) });
      } else if (check.kind === "dropped") {
        this.logger.info("dropping a fetched event", { roomId, eventId: check.eventId, reason: check.reason });
      }
    }
    if (good.length === 0) return new Set();
    const outcome = await this.engine.persistOutliers(roomId, good);
    for (const missing of outcome.missingAuth) {
      this.logger.info("an outlier's auth events are missing: not stored", { roomId, eventId: missing.eventId, missing: missing.missing });
    }
    return this.storage.transaction((tx) => tx.hasEvents(good.map((e) => e.eventId)));
  }

  /**
   * Stores as rejected the checked PDUs whose format rooms 1-10 tolerated (see
   * {@link CheckedPdu.rejectReason}); the others are left alone.
   */
  async storeFormatRejected(roomId: string, checks: readonly PduCheck[]): Promise<void> {
    for (const check of checks) {
      if (check.kind !== "checked" || check.rejectReason === undefined) continue;
      await this.engine.persistRejectedEvent({ roomId, pdu: check.pdu, eventId: check.eventId, json: serializePdu(check.pdu), reason: check.rejectReason });
      this.logger.info("stored an event over the byte limits as rejected", { roomId, eventId: check.eventId, reason: check.rejectReason });
    }
  }

  private async check(ctx: Ctx, pdus: readonly JsonValue[], historical = false): Promise<CheckedPdu[]> {
    const results = await checkPdus(pdus, { rules: ctx.rules, lookupKey: this.lookupKey, roomId: ctx.roomId, historical });
    const out: CheckedPdu[] = [];
    for (const result of results) {
      if (result.kind === "checked") out.push(result);
      else this.logger.info("dropping a fetched event", { roomId: ctx.roomId, eventId: result.eventId, origin: ctx.origin, reason: result.reason });
    }
    return out;
  }

  /**
   * Persists one checked event, fetching missing auth events and prev events as needed.
   * `pushed`: sent to us (a missing prev that cannot be fetched drops it) rather than pulled
   * (then `/state_ids` fills in the state). `backfilled`: history, placed at that position.
   */
  private async ingest(event: CheckedPdu, ctx: Ctx, pushed: boolean, backfilled?: { readonly streamOrdering: number }): Promise<IngestOutcome> {
    if (event.rejectReason !== undefined) {
      // Rooms 1-10: a field over 255 bytes but within 255 code points. Older servers accepted
      // such events, so they are stored as rejected rather than dropped: they are not fetched
      // again, and events citing them can still be placed (hostile-federation T22).
      const outcome = await this.engine.persistRejectedEvent({
        roomId: ctx.roomId,
        pdu: event.pdu,
        eventId: event.eventId,
        json: serializePdu(event.pdu),
        reason: event.rejectReason,
      });
      if (outcome.outcome === "unknown-room") return "dropped";
      this.logger.info("stored an event over the byte limits as rejected", { eventId: event.eventId, reason: event.rejectReason });
      return outcome.outcome === "duplicate" ? "duplicate" : "rejected";
    }
    let fetchedAuth = false;
    let fetchedGap = false;
    let stateBefore: StateMap | undefined;
    for (let attempt = 0; attempt < 4; attempt++) {
      const outcome = await this.engine.persistIncomingEvent({
        roomId: ctx.roomId,
        pdu: event.pdu,
        eventId: event.eventId,
        json: serializePdu(event.pdu),
        ...(stateBefore === undefined ? {} : { stateBefore }),
        ...(backfilled === undefined ? {} : { backfilled }),
      });
      switch (outcome.outcome) {
        case "persisted":
          return outcome.softFailed ? "soft-failed" : "persisted";
        case "rejected":
          this.logger.info("rejected a received event", { eventId: event.eventId, rule: outcome.decision.rule, reason: outcome.decision.message });
          return "rejected";
        case "duplicate":
          return "duplicate";
        case "unknown-room":
          return "dropped";
        case "missing-auth-events":
          if (fetchedAuth) {
            this.logger.warn("auth events of a received event cannot be had: dropping it", { eventId: event.eventId, missing: outcome.missing });
            return "dropped";
          }
          fetchedAuth = true;
          await this.fetchAuthChain(ctx, event.eventId);
          break;
        case "missing-prev-state":
          if (!fetchedGap && pushed) {
            fetchedGap = true;
            await this.fillGap(ctx, event);
            break;
          }
          if (pushed) {
            this.logger.warn("prev events of a pushed event cannot be had: dropping it", { eventId: event.eventId, origin: ctx.origin, missing: outcome.missing });
            return "dropped";
          }
          if (stateBefore !== undefined) return "dropped";
          stateBefore = await this.stateFromMissingPrevs(ctx, event);
          if (stateBefore === undefined) return "dropped";
          break;
      }
    }
    return "dropped";
  }

  /** `/event_auth` from the origin: the event's auth chain, stored as outliers. */
  private async fetchAuthChain(ctx: Ctx, eventId: string): Promise<void> {
    try {
      const answer = await this.client.call("get_event_authorization", "v1", ctx.origin, {
        params: { roomId: ctx.roomId, eventId },
        ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
      });
      await this.storeOutliers(ctx.roomId, ctx.rules, answer.auth_chain as JsonValue[]);
    } catch (error) {
      this.logger.warn("could not fetch an auth chain", { roomId: ctx.roomId, eventId, origin: ctx.origin, error: errorMessage(error) });
    }
  }

  /**
   * `/get_missing_events` from the origin, walking back from `event` towards our forward
   * extremities, then persists what came back, oldest first (as pulled events).
   */
  private async fillGap(ctx: Ctx, event: CheckedPdu): Promise<void> {
    const extremities = await this.storage.transaction((tx) => tx.getForwardExtremities(ctx.roomId));
    const fetched = new Map<string, CheckedPdu>();
    let latest = [event.eventId];
    for (let round = 0; round < MAX_GAP_ROUNDS && latest.length > 0 && fetched.size < MAX_GAP_EVENTS; round++) {
      let answer: { events: unknown[] };
      try {
        answer = await this.client.call("get_missing_events", "v1", ctx.origin, {
          params: { roomId: ctx.roomId },
          body: { earliest_events: extremities, latest_events: latest, limit: Math.min(GAP_ROUND_LIMIT, MAX_GAP_EVENTS - fetched.size), min_depth: 0 },
          ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
        });
      } catch (error) {
        this.logger.warn("get_missing_events failed", { roomId: ctx.roomId, origin: ctx.origin, error: errorMessage(error) });
        break;
      }
      const checked = await this.check(ctx, answer.events as JsonValue[]);
      const fresh = checked.filter((e) => !fetched.has(e.eventId) && e.eventId !== event.eventId);
      if (fresh.length === 0) break;
      for (const e of fresh) fetched.set(e.eventId, e);
      // Go on from the fetched events whose parents are neither fetched nor stored.
      const prevs = new Set<string>();
      for (const e of fresh) for (const prev of prevIdsOf(e.pdu, ctx.rules)) if (!fetched.has(prev)) prevs.add(prev);
      const known = await this.storage.transaction((tx) => tx.hasEvents(prevs));
      const frontier = new Set<string>();
      for (const e of fresh) {
        if (prevIdsOf(e.pdu, ctx.rules).some((prev) => !fetched.has(prev) && !known.has(prev))) frontier.add(e.eventId);
      }
      latest = [...frontier];
    }
    for (const pulled of sortByDepth([...fetched.values()])) await this.ingest(pulled, ctx, false);
  }

  /**
   * The state before a pulled event whose prev events are (partly) unknown: for each missing
   * prev, `/state_ids` at it plus the prev itself (the state after it); for the others, the
   * state after them from storage; resolved together. Every event named is fetched and
   * stored (as an outlier) first; state entries whose events cannot be had are left out.
   */
  private async stateFromMissingPrevs(ctx: Ctx, event: CheckedPdu): Promise<StateMap | undefined> {
    const prevs = prevIdsOf(event.pdu, ctx.rules);
    const states: StateMap[] = [];
    for (const prev of prevs) {
      const known = await this.engine.getStateAfter(prev);
      if (known !== undefined) {
        states.push(known);
        continue;
      }
      const state = await this.remoteStateAfter(ctx, prev);
      if (state === undefined) return undefined;
      states.push(state);
    }
    return this.storage.transaction(async (tx) => new RoomReader(tx, ctx.roomId, ctx.rules).resolve(states));
  }

  /** The state after `eventId` as the origin sees it, with every event it names stored here. */
  private async remoteStateAfter(ctx: Ctx, eventId: string): Promise<StateMap | undefined> {
    const options = { params: { roomId: ctx.roomId }, query: { event_id: eventId }, ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) };
    let ids: { pdu_ids: string[]; auth_chain_ids: string[] };
    try {
      ids = await this.client.call("get_room_state_ids", "v1", ctx.origin, options);
    } catch (error) {
      this.logger.warn("state_ids failed", { roomId: ctx.roomId, eventId, origin: ctx.origin, error: errorMessage(error) });
      return undefined;
    }
    const wanted = [...new Set([...ids.auth_chain_ids, ...ids.pdu_ids, eventId])];
    const have = await this.storage.transaction((tx) => tx.hasEvents(wanted));
    const missing = wanted.filter((id) => !have.has(id));
    if (missing.length > FETCH_ONE_BY_ONE_MAX) {
      try {
        const full = await this.client.call("get_room_state", "v1", ctx.origin, options);
        await this.storeOutliers(ctx.roomId, ctx.rules, [...(full.auth_chain as JsonValue[]), ...(full.pdus as JsonValue[])]);
      } catch (error) {
        this.logger.warn("state failed", { roomId: ctx.roomId, eventId, origin: ctx.origin, error: errorMessage(error) });
      }
    }
    const stillMissing = (await this.missingOf(wanted));
    if (stillMissing.length > 0) {
      const fetched: JsonValue[] = [];
      for (const id of stillMissing) {
        const pdu = await this.fetchEvent(ctx, id);
        if (pdu !== undefined) fetched.push(pdu);
      }
      await this.storeOutliers(ctx.roomId, ctx.rules, fetched);
    }
    // Build the map from what is stored and accepted.
    return this.storage.transaction(async (tx) => {
      const rows = await tx.getEvents([...ids.pdu_ids, eventId]);
      const state: StateMap = new Map();
      for (const id of ids.pdu_ids) {
        const row = rows.get(id);
        if (row === undefined || row.stateKey === null || row.roomId !== ctx.roomId || row.rejectedReason !== null) continue;
        state.set(stateKey(row.type, row.stateKey), id);
      }
      const prev = rows.get(eventId);
      if (prev !== undefined && prev.stateKey !== null && prev.rejectedReason === null && prev.roomId === ctx.roomId) {
        state.set(stateKey(prev.type, prev.stateKey), eventId);
      }
      return state;
    });
  }

  private async missingOf(ids: readonly string[]): Promise<string[]> {
    const have = await this.storage.transaction((tx) => tx.hasEvents(ids));
    return ids.filter((id) => !have.has(id));
  }

  /** `/event` from the origin; `undefined` when it fails. */
  async fetchEvent(ctx: Pick<Ctx, "origin" | "signal">, eventId: string): Promise<JsonValue | undefined> {
    try {
      const answer = await this.client.call("get_event", "v1", ctx.origin, {
        params: { eventId },
        ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
      });
      return answer.pdus[0] as JsonValue | undefined;
    } catch (error) {
      this.logger.info("could not fetch an event", { eventId, origin: ctx.origin, error: errorMessage(error) });
      return undefined;
    }
  }
}

/** The prev event IDs of a PDU (rooms 1-2 list `[id, hashes]` pairs). */
export function prevIdsOf(pdu: JsonObject, rules: RoomVersionRules): string[] {
  const prevs = pdu["prev_events"];
  if (!Array.isArray(prevs)) return [];
  return prevs.flatMap((entry) => {
    const id = rules.eventFormat === "v1" && Array.isArray(entry) ? entry[0] : entry;
    return typeof id === "string" ? [id] : [];
  });
}

/**
 * Oldest first: by depth (an event is deeper than its prev events), then by timestamp and
 * ID so that the order does not depend on how the events arrived.
 */
function sortByDepth(events: readonly CheckedPdu[]): CheckedPdu[] {
  const ts = (e: CheckedPdu): number => (typeof e.pdu["origin_server_ts"] === "number" ? e.pdu["origin_server_ts"] : 0);
  return [...events].sort(
    (a, b) => (a.pdu["depth"] as number) - (b.pdu["depth"] as number) || ts(a) - ts(b) || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0),
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
