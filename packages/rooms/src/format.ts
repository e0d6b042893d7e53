/**
 * PDU format checks per room version (checks on receipt, step 1: "valid event format for the
 * room version, else drop").
 *
 * Sources: PDU schemas `pdu_v1` .. `pdu_v12` (required fields, `prev_events` <= 20,
 * `auth_events` <= 10, depth limits); client-server "Size limits" (65,536 bytes for the whole
 * event, 255 for `type`, `state_key`, `sender`, `room_id`, `event_id`); rooms v6 (strict
 * canonical JSON); rooms v12 (room ID derived from the create event, no `room_id` on the
 * create event, create event never in `auth_events`). Hostile-federation T21-T26, T31, T34.
 *
 * @module
 */

import {
  MAX_AUTH_EVENTS,
  MAX_EVENT_KEY_BYTES,
  MAX_PDU_BYTES,
  MAX_PREV_EVENTS,
  parseRoomId,
  type RoomVersionRules,
} from "@myelin/types";

/** Why a PDU is not well-formed for its room version. */
export type FormatViolationReason =
  | "not_object"
  | "missing_field"
  | "wrong_type"
  | "not_canonical_json"
  | "too_large"
  | "field_too_long"
  | "depth_out_of_range"
  | "too_many_prev_events"
  | "too_many_auth_events"
  | "bad_identifier"
  | "create_has_room_id"
  | "room_id_mismatch"
  | "create_in_auth_events";

/** One format violation. */
export interface FormatViolation {
  readonly reason: FormatViolationReason;
  /** The offending field (top-level name, or a JSON path for canonical-JSON violations). */
  readonly field?: string;
  readonly message: string;
  /**
   * `true` when older servers accepted this (only: a field over 255 bytes but within 255 code
   * points, in rooms 1-10): persist the event as rejected rather than dropping it, so later
   * events that reference it can still be processed (hostile-federation T22).
   */
  readonly persistAsRejected: boolean;
}

/** The outcome of {@link checkPduFormat}. */
export type FormatCheckResult = { readonly ok: true } | { readonly ok: false; readonly violation: FormatViolation };

/** Options for {@link checkPduFormat}. */
export interface FormatCheckOptions {
  /** The event's ID (computed from the reference hash for rooms 3+); its length is checked. */
  readonly eventId?: string;
  /**
   * Room 12: the ID of the room's create event, when known. The `room_id` must be derived from
   * it, and it must not appear in `auth_events`.
   */
  readonly createEventId?: string;
}

/** Longest `type`, `state_key`, `sender`, `room_id` and `event_id` (the same 255 for each). */
const MAX_FIELD_LENGTH = MAX_EVENT_KEY_BYTES;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function utf8Length(value: string): number {
  return Buffer.byteLength(value, "utf8");
}

function codePointLength(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

/**
 * Checks that a PDU (as received, with signatures) is well-formed for its room version.
 * It does not check signatures, hashes or the auth rules.
 */
export function checkPduFormat(
  pdu: unknown,
  roomRules: RoomVersionRules,
  options: FormatCheckOptions = {},
): FormatCheckResult {
  const rules = roomRules;
  const fail = (reason: FormatViolationReason, field: string | undefined, message: string, persistAsRejected = false): FormatCheckResult => ({
    ok: false,
    violation: { reason, ...(field === undefined ? {} : { field }), message, persistAsRejected },
  });
  if (!isObject(pdu)) return fail("not_object", undefined, "a PDU must be a JSON object");

  if (rules.strictCanonicalJson) {
    const bad = findNonCanonicalNumber(pdu);
    if (bad !== undefined) return fail("not_canonical_json", bad, `${bad} is not an integer in ±(2^53-1)`);
  }
  const size = jsonByteLength(pdu);
  if (size > MAX_PDU_BYTES) return fail("too_large", undefined, `the PDU is ${size} bytes; the limit is ${MAX_PDU_BYTES}`);

  const isCreate = pdu["type"] === "m.room.create";
  const v12 = rules.eventFormat === "v12";
  const stringFields = ["type", "sender"];
  if (!(v12 && isCreate)) stringFields.push("room_id");
  if (rules.eventFormat === "v1") stringFields.push("event_id");
  for (const field of stringFields) {
    if (!Object.hasOwn(pdu, field)) return fail("missing_field", field, `${field} is required`);
    if (typeof pdu[field] !== "string") return fail("wrong_type", field, `${field} must be a string`);
  }
  for (const field of ["origin_server_ts", "depth"]) {
    if (!Object.hasOwn(pdu, field)) return fail("missing_field", field, `${field} is required`);
    if (!Number.isInteger(pdu[field])) return fail("wrong_type", field, `${field} must be an integer`);
  }
  for (const field of ["content", "hashes", "signatures"]) {
    if (!Object.hasOwn(pdu, field)) return fail("missing_field", field, `${field} is required`);
    if (!isObject(pdu[field])) return fail("wrong_type", field, `${field} must be an object`);
  }
  const hashes = pdu["hashes"] as Record<string, Json>;
  if (typeof hashes["sha256"] !== "string") return fail("wrong_type", "hashes", "hashes.sha256 must be a string");
  for (const [server, keys] of Object.entries(pdu["signatures"] as Record<string, Json>)) {
    if (!isObject(keys) || !Object.values(keys).every((s) => typeof s === "string")) {
      return fail("wrong_type", "signatures", `signatures.${server} must map key IDs to strings`);
    }
  }
  for (const field of ["state_key", "redacts"]) {
    if (Object.hasOwn(pdu, field) && typeof pdu[field] !== "string") return fail("wrong_type", field, `${field} must be a string`);
  }
  if (Object.hasOwn(pdu, "unsigned") && !isObject(pdu["unsigned"])) return fail("wrong_type", "unsigned", "unsigned must be an object");
  if (v12 && isCreate && Object.hasOwn(pdu, "room_id")) {
    return fail("create_has_room_id", "room_id", "a room-version-12 create event has no room_id");
  }

  const references: Record<"prev_events" | "auth_events", string[]> = { prev_events: [], auth_events: [] };
  for (const field of ["prev_events", "auth_events"] as const) {
    if (!Object.hasOwn(pdu, field)) return fail("missing_field", field, `${field} is required`);
    const list = pdu[field];
    if (!Array.isArray(list)) return fail("wrong_type", field, `${field} must be an array`);
    for (const entry of list) {
      // Rooms 1-2 list [event_id, {sha256}] pairs; later rooms list event IDs.
      const id = rules.eventFormat === "v1" ? (Array.isArray(entry) && entry.length === 2 && isObject(entry[1]) ? entry[0] : undefined) : entry;
      if (typeof id !== "string" || !id.startsWith("$")) {
        return fail("wrong_type", field, `${field} entries must be ${rules.eventFormat === "v1" ? "[event ID, hashes] pairs" : "event IDs"}`);
      }
      references[field].push(id);
    }
  }
  if (references.prev_events.length > MAX_PREV_EVENTS) {
    return fail("too_many_prev_events", "prev_events", `${references.prev_events.length} prev_events; at most ${MAX_PREV_EVENTS}`);
  }
  if (references.auth_events.length > MAX_AUTH_EVENTS) {
    return fail("too_many_auth_events", "auth_events", `${references.auth_events.length} auth_events; at most ${MAX_AUTH_EVENTS}`);
  }

  const depth = pdu["depth"] as number;
  if (depth < 0 || BigInt(depth) > rules.maxDepth) {
    return fail("depth_out_of_range", "depth", `depth ${depth} is outside 0..${rules.maxDepth}`);
  }

  const sender = pdu["sender"] as string;
  if (!/^@[^:]*:.+$/u.test(sender)) return fail("bad_identifier", "sender", "sender is not a user ID");
  const roomId = pdu["room_id"];
  if (typeof roomId === "string") {
    if (!roomId.startsWith("!")) return fail("bad_identifier", "room_id", "room_id is not a room ID");
    const parsed = parseRoomId(roomId);
    if (v12 && !(parsed.ok && parsed.value.kind === "hash")) {
      return fail("bad_identifier", "room_id", "a room-version-12 room ID is ! and 43 characters of URL-safe base64");
    }
  }
  const eventId = options.eventId ?? (typeof pdu["event_id"] === "string" ? pdu["event_id"] : undefined);
  if (rules.eventFormat === "v1" && (eventId === undefined || !/^\$[^:]*:.+$/u.test(eventId))) {
    return fail("bad_identifier", "event_id", "a room-version-1/2 event ID is $opaque:server");
  }

  const limited: [string, string | undefined][] = [
    ["type", pdu["type"] as string],
    ["state_key", typeof pdu["state_key"] === "string" ? pdu["state_key"] : undefined],
    ["sender", sender],
    ["room_id", typeof roomId === "string" ? roomId : undefined],
    ["event_id", eventId],
  ];
  for (const [field, value] of limited) {
    if (value === undefined) continue;
    // Synapse has always counted code points strictly; bytes strictly only from room 11.
    if (codePointLength(value) > MAX_FIELD_LENGTH) {
      return fail("field_too_long", field, `${field} is longer than ${MAX_FIELD_LENGTH} code points`);
    }
    if (utf8Length(value) > MAX_FIELD_LENGTH) {
      return fail("field_too_long", field, `${field} is longer than ${MAX_FIELD_LENGTH} bytes`, !rules.strictEventByteLimits);
    }
  }

  if (v12 && !isCreate && options.createEventId !== undefined) {
    if (roomId !== `!${options.createEventId.slice(1)}`) {
      return fail("room_id_mismatch", "room_id", `room_id is not derived from create event ${options.createEventId}`);
    }
    if (references.auth_events.includes(options.createEventId)) {
      return fail("create_in_auth_events", "auth_events", "the create event must not be listed in auth_events");
    }
  }
  return { ok: true };
}

/**
 * The UTF-8 length of the compact JSON encoding of `root`. Canonical JSON differs from compact
 * JSON only in key order, so the length is the same. Computed iteratively: a 64 KiB event can
 * nest 30,000 levels deep, which overflows `JSON.stringify` (hostile-federation T30).
 */
export function jsonByteLength(root: unknown): number {
  let total = 0;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      total += 2 + Math.max(0, value.length - 1);
      for (const item of value) stack.push(item);
    } else if (isObject(value)) {
      const entries = Object.entries(value);
      total += 2 + Math.max(0, entries.length - 1);
      for (const [key, item] of entries) {
        total += utf8Length(JSON.stringify(key)) + 1;
        stack.push(item);
      }
    } else if (typeof value === "string") {
      total += utf8Length(JSON.stringify(value));
    } else {
      total += String(JSON.stringify(value ?? null)).length;
    }
  }
  return total;
}

/** The JSON path of the first number that canonical JSON forbids, walking iteratively (no recursion limit). */
function findNonCanonicalNumber(root: Json): string | undefined {
  const stack: [Json, string][] = [[root, "$"]];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [Json, string];
    if (typeof value === "number") {
      if (!Number.isInteger(value) || Math.abs(value) > MAX_SAFE) return path;
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => stack.push([item, `${path}[${i}]`]));
    } else if (isObject(value)) {
      for (const [key, item] of Object.entries(value)) stack.push([item, `${path}.${key}`]);
    }
  }
  return undefined;
}
