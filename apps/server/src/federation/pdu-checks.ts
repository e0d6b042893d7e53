/**
 * The first three checks on receipt of a PDU, shared by every ingress path (`/send`,
 * `/get_missing_events`, `/backfill`, `/state`, `/event`, `/event_auth`, the send_join
 * response, invites): server-server API § "Checks performed on receipt of a PDU", steps
 * 1-3, plus the room the PDU must belong to.
 *
 * 1. format for the room version (`checkPduFormat`), else drop; a field over the byte limit
 *    but within 255 code points in rooms 1-10 is kept to be persisted as rejected (T22);
 * 2. signatures of the servers that must sign (`verifyEvents` through the key ring; key
 *    validity from room 5), else drop;
 * 3. content hash, else continue with the redacted copy.
 *
 * The auth checks (steps 4-6) need room state and belong to the engine.
 *
 * Unsigned data is not covered by signatures: everything but `age` (and, for membership
 * events, `invite_room_state` / `knock_room_state`) is removed before anything else, as
 * Synapse does (`_strip_unsigned_values`, hostile-federation T33).
 *
 * Numbers outside canonical JSON: PDUs arrive parsed losslessly (the router keeps floats
 * and integers beyond ±(2^53-1) as `JsonNumberToken`s, so that one such PDU does not sink
 * its transaction, hostile-federation T14). In rooms 6+ a PDU holding one is dropped on
 * its own (spec rooms/v6 "Canonical JSON", T26). In rooms 1-5 it is legal: its event ID,
 * signatures and hashes are computed in Synapse's notation (`compat: "synapse"`), and the
 * format checks still require integers where the PDU schema does (`depth`...).
 *
 * @module
 */

import type { FormatViolation } from "@myelin/rooms";
import { checkPduFormat } from "@myelin/rooms";
import type { KeyLookup } from "@myelin/signing";
import { JsonNumberToken, computeEventId, computeRoomIdV12, findJsonNumberToken, formatJsonPath, verifyEvents } from "@myelin/signing";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { MAX_AUTH_EVENTS, MAX_PREV_EVENTS } from "@myelin/types";

/** A PDU that passed steps 1-3 (or is to be stored as rejected, see `formatViolation`). */
export interface CheckedPdu {
  readonly kind: "checked";
  readonly eventId: string;
  /** The PDU to store: unsigned data stripped, redacted when its content hash did not match. */
  readonly pdu: JsonObject;
  /** Whether the content hash failed and `pdu` is the redacted copy. */
  readonly redacted: boolean;
  /**
   * Set when the format check failed in a way older servers accepted (rooms 1-10 byte
   * limits): store the event as rejected with this reason rather than dropping it.
   */
  readonly rejectReason?: string;
}

/** A PDU dropped at steps 1-2 (or for naming another room). */
export interface DroppedPdu {
  readonly kind: "dropped";
  /** Its event ID when one could be computed. */
  readonly eventId: string | undefined;
  /** Why, for logs and `/send` error entries. */
  readonly reason: string;
  /**
   * The signature check could not be completed for want of a key (the origin's key server
   * unreachable): unlike a bad signature, it may succeed later (hostile-federation D14).
   */
  readonly keyUnavailable?: boolean;
}

/** The outcome of {@link checkPdus} for one PDU. */
export type PduCheck = CheckedPdu | DroppedPdu;

/** Options of {@link checkPdus}. */
export interface CheckPdusOptions {
  readonly rules: RoomVersionRules;
  /** The key ring's `lookupKey`. */
  readonly lookupKey: KeyLookup;
  /** The room every PDU must belong to (cross-room events are dropped, T42). */
  readonly roomId: string;
  /**
   * Default `true`. `false` skips checks 2-3, for PDUs that passed them already and were
   * kept on disk since (staged PDUs): a key server that has gone away since must not make
   * an acknowledged PDU fail (hostile-federation D14).
   */
  readonly verifySignatures?: boolean;
  /**
   * History (`/backfill`): `prev_events` and `auth_events` over the limits of the PDU
   * schemas (20 and 10) are accepted, since older events may predate them (server-server
   * "Backfilling and retrieving missing events"). Default `false`.
   */
  readonly historical?: boolean;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The PDU with disallowed `unsigned` members removed (a copy; the input is not changed). */
export function stripUnsigned(pdu: JsonObject): JsonObject {
  const unsigned = pdu["unsigned"];
  if (unsigned === undefined) return pdu;
  const out: JsonObject = { ...pdu };
  if (!isObject(unsigned)) {
    delete out["unsigned"];
    return out;
  }
  const kept: JsonObject = {};
  const keep = pdu["type"] === "m.room.member" ? ["age", "invite_room_state", "knock_room_state"] : ["age"];
  for (const key of keep) if (Object.hasOwn(unsigned, key)) kept[key] = unsigned[key] as JsonValue;
  if (Object.keys(kept).length === 0) delete out["unsigned"];
  else out["unsigned"] = kept;
  return out;
}

/** The room a PDU belongs to: `room_id`, or for a room-12 create event the ID derived from it. */
export function roomIdOf(pdu: JsonObject, rules: RoomVersionRules): string | undefined {
  if (rules.eventFormat === "v12" && pdu["type"] === "m.room.create" && !Object.hasOwn(pdu, "room_id")) {
    try {
      return computeRoomIdV12(pdu, rules);
    } catch {
      return undefined;
    }
  }
  const roomId = pdu["room_id"];
  return typeof roomId === "string" ? roomId : undefined;
}

/**
 * The event ID of a PDU under the room version, or `undefined` when it cannot be computed.
 * A PDU holding floats or big integers gets the ID Synapse computes for it (in rooms 6+
 * only to name it in errors: {@link checkPdus} drops it).
 */
export function eventIdOf(pdu: JsonObject, rules: RoomVersionRules): string | undefined {
  try {
    return computeEventId(pdu, rules, { compat: "synapse" });
  } catch {
    return undefined;
  }
}

/**
 * Why a PDU holding a `JsonNumberToken` (at `path`) is dropped, or `undefined` when its room
 * version allows it. The PDU format check takes a token for an object (it is one in
 * JavaScript), which would let `content: 1.5` pass: that case is refused here.
 */
function numberTokenProblem(pdu: JsonObject, path: readonly (string | number)[], rules: RoomVersionRules): string | undefined {
  if (rules.strictCanonicalJson) {
    return `bad format: not canonical JSON: ${formatJsonPath(path)} is a float or an integer beyond ±(2^53-1)`;
  }
  if (pdu["content"] instanceof JsonNumberToken) return "bad format: content must be an object";
  return undefined;
}

/** Format violations `historical` PDUs are forgiven. */
const REFERENCE_LIMITS: ReadonlySet<FormatViolation["reason"]> = new Set(["too_many_prev_events", "too_many_auth_events"]);

/** A copy of the PDU with `prev_events` and `auth_events` cut to the schemas' limits. */
function withinReferenceLimits(pdu: JsonObject): JsonObject {
  const out: JsonObject = { ...pdu };
  const prev = pdu["prev_events"];
  const auth = pdu["auth_events"];
  if (Array.isArray(prev)) out["prev_events"] = prev.slice(0, MAX_PREV_EVENTS);
  if (Array.isArray(auth)) out["auth_events"] = auth.slice(0, MAX_AUTH_EVENTS);
  return out;
}

function describeViolation(violation: FormatViolation): string {
  return `bad format: ${violation.message}`;
}

/**
 * Runs checks 1-3 on PDUs of one room, looking every signing key up once. Results are in
 * input order. Never throws for a bad PDU; only if the key lookup itself throws.
 */
export async function checkPdus(pdus: readonly JsonValue[], options: CheckPdusOptions): Promise<PduCheck[]> {
  const { rules, roomId } = options;
  const results: (PduCheck | undefined)[] = [];
  const toVerify: { index: number; eventId: string; pdu: JsonObject; rejectReason?: string }[] = [];
  const createEventId = rules.eventFormat === "v12" && roomId.startsWith("!") ? `$${roomId.slice(1)}` : undefined;
  pdus.forEach((raw, index) => {
    if (!isObject(raw)) {
      results[index] = { kind: "dropped", eventId: undefined, reason: "bad format: a PDU must be a JSON object" };
      return;
    }
    const pdu = stripUnsigned(raw);
    const eventId = eventIdOf(pdu, rules);
    if (eventId === undefined) {
      results[index] = { kind: "dropped", eventId: undefined, reason: "bad format: no event ID can be computed (not canonical JSON)" };
      return;
    }
    const tokenPath = findJsonNumberToken(pdu);
    const tokenProblem = tokenPath === undefined ? undefined : numberTokenProblem(pdu, tokenPath, rules);
    if (tokenProblem !== undefined) {
      results[index] = { kind: "dropped", eventId, reason: tokenProblem };
      return;
    }
    const formatOptions = { eventId, ...(createEventId === undefined ? {} : { createEventId }) };
    let format = checkPduFormat(pdu, rules, formatOptions);
    if (!format.ok && options.historical === true && REFERENCE_LIMITS.has(format.violation.reason)) {
      // Every other check is independent of the lists' lengths: run them on a copy with
      // the lists cut to the limits.
      format = checkPduFormat(withinReferenceLimits(pdu), rules, formatOptions);
    }
    let rejectReason: string | undefined;
    if (!format.ok) {
      if (!format.violation.persistAsRejected) {
        results[index] = { kind: "dropped", eventId, reason: describeViolation(format.violation) };
        return;
      }
      rejectReason = describeViolation(format.violation);
    }
    if (roomIdOf(pdu, rules) !== roomId) {
      results[index] = { kind: "dropped", eventId, reason: `the event is not in room ${roomId}` };
      return;
    }
    toVerify.push({ index, eventId, pdu, ...(rejectReason === undefined ? {} : { rejectReason }) });
  });

  const verdicts =
    options.verifySignatures === false
      ? toVerify.map(() => ({ outcome: "valid" }) as const)
      : await verifyEvents(
          toVerify.map((entry) => entry.pdu),
          // Rooms 1-5: floats and big integers as Synapse signed them (no effect in rooms 6+).
          { rules, lookupKey: options.lookupKey, compat: "synapse" },
        );
  toVerify.forEach((entry, i) => {
    const verdict = verdicts[i];
    const base = entry.rejectReason === undefined ? {} : { rejectReason: entry.rejectReason };
    if (verdict === undefined || verdict.outcome === "reject") {
      const reason = verdict?.reason;
      const detail =
        reason === undefined
          ? "not verified"
          : "server" in reason
            ? `${reason.code} for ${reason.server}${reason.keyId === undefined ? "" : ` (${reason.keyId})`}`
            : `${reason.code}: ${reason.detail}`;
      const keyUnavailable = reason !== undefined && "server" in reason && reason.code === "unknown-key";
      results[entry.index] = {
        kind: "dropped",
        eventId: entry.eventId,
        reason: `signature check failed: ${detail}`,
        ...(keyUnavailable ? { keyUnavailable } : {}),
      };
    } else if (verdict.outcome === "redact") {
      results[entry.index] = { kind: "checked", eventId: entry.eventId, pdu: verdict.redacted, redacted: true, ...base };
    } else {
      results[entry.index] = { kind: "checked", eventId: entry.eventId, pdu: entry.pdu, redacted: false, ...base };
    }
  });
  return results as PduCheck[];
}
