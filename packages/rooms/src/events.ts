/**
 * One view of a room event for every event format, and the state-map keys built from it.
 *
 * PDUs stay raw JSON until the room version is known (their hashes and signatures are over
 * the exact object received). Once it is known, {@link toRoomEvent} reads the fields that
 * authorisation and state resolution need, in the one place that knows the formats differ:
 * room versions 1 and 2 carry `event_id` and `[eventId, hashes]` pairs in `prev_events` and
 * `auth_events`; later versions carry plain ID lists and no `event_id`.
 *
 * @module
 */

import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";

/**
 * The fields of a PDU that authorisation and state resolution read, with `prev_events` and
 * `auth_events` as plain ID lists whatever the room version. Field names are the wire names.
 */
export interface RoomEvent {
  /** The event ID: carried by v1/v2 PDUs, computed from the reference hash for v3+. */
  readonly event_id: string;
  /** Absent only on a room-version-12 `m.room.create` event. */
  readonly room_id?: string | undefined;
  readonly type: string;
  /** Present (possibly empty) exactly when this is a state event. */
  readonly state_key?: string | undefined;
  readonly sender: string;
  readonly content: JsonObject;
  readonly origin_server_ts: number;
  readonly depth: number;
  readonly prev_events: readonly string[];
  readonly auth_events: readonly string[];
  /** Top-level `redacts` (room versions 1-10); from 11 it lives in `content.redacts`. */
  readonly redacts?: string | undefined;
  /** Server name -> key ID -> signature; only consulted for the presence of a server's signature. */
  readonly signatures?: JsonObject | undefined;
}

/** Thrown by {@link toRoomEvent} when a PDU lacks a field the view needs. */
export class MalformedEventError extends Error {
  override readonly name = "MalformedEventError";
  readonly reason = "malformed_event";
  constructor(
    /** Which field was missing or of the wrong type. */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads a `prev_events` / `auth_events` list: `[id, hashes]` pairs in the v1 format, plain
 * IDs otherwise.
 */
function readIdList(pdu: JsonObject, field: string, pairs: boolean): string[] {
  const value = pdu[field];
  if (!Array.isArray(value)) throw new MalformedEventError(field, `${field} is not an array`);
  return value.map((entry, index) => {
    const id = pairs && Array.isArray(entry) ? entry[0] : entry;
    if (typeof id !== "string") {
      throw new MalformedEventError(field, `${field}[${index}] is not an event ID`);
    }
    return id;
  });
}

/**
 * Builds the {@link RoomEvent} view of a PDU.
 *
 * `eventId` is required for room versions 3 and later (where the ID is the reference hash,
 * computed by `@myelin/signing`); for versions 1 and 2 it defaults to the PDU's own `event_id`.
 * Throws {@link MalformedEventError} when a field the view needs is missing; run
 * {@link checkPduFormat} first to get a reason as a value instead.
 */
export function toRoomEvent(
  pdu: JsonObject,
  options: { readonly rules: RoomVersionRules; readonly eventId?: string },
): RoomEvent {
  const v1Format = options.rules.eventFormat === "v1";
  const eventId = options.eventId ?? (v1Format ? pdu["event_id"] : undefined);
  if (typeof eventId !== "string") {
    throw new MalformedEventError("event_id", "no event ID given for a v3+ event, or event_id missing");
  }
  const str = (field: string, optional: boolean): string | undefined => {
    const value = pdu[field];
    if (value === undefined && optional) return undefined;
    if (typeof value !== "string") throw new MalformedEventError(field, `${field} is not a string`);
    return value;
  };
  const num = (field: string): number => {
    const value = pdu[field];
    if (typeof value !== "number") throw new MalformedEventError(field, `${field} is not a number`);
    return value;
  };
  const content = pdu["content"];
  if (!isObject(content)) throw new MalformedEventError("content", "content is not an object");
  const signatures = pdu["signatures"];
  return {
    event_id: eventId,
    room_id: str("room_id", true),
    type: str("type", false) as string,
    state_key: str("state_key", true),
    sender: str("sender", false) as string,
    content,
    origin_server_ts: num("origin_server_ts"),
    depth: num("depth"),
    prev_events: readIdList(pdu, "prev_events", v1Format),
    auth_events: readIdList(pdu, "auth_events", v1Format),
    redacts: str("redacts", true),
    signatures: isObject(signatures) ? signatures : undefined,
  };
}

/**
 * A state-map key: the JSON array `[type, state_key]` as a string, e.g.
 * `["m.room.member","@alice:example.org"]`. Unambiguous for any strings, and safe as an
 * object key (it always starts with `[`).
 */
export type StateKey = string;

/** The state-map key for a type and state key. */
export function stateKey(type: string, stateKeyValue: string): StateKey {
  return JSON.stringify([type, stateKeyValue]);
}

/** Splits a {@link StateKey} back into `[type, state_key]`; throws on a string that is not one. */
export function parseStateKey(key: StateKey): [type: string, stateKey: string] {
  const parsed: unknown = JSON.parse(key);
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== "string" ||
    typeof parsed[1] !== "string"
  ) {
    throw new TypeError(`not a state key: ${key}`);
  }
  return [parsed[0], parsed[1]];
}

/** The state-map key of a state event, or `undefined` for a message event. */
export function stateKeyOf(event: Pick<RoomEvent, "type" | "state_key">): StateKey | undefined {
  return event.state_key === undefined ? undefined : stateKey(event.type, event.state_key);
}

/** The server name of a user, room or event ID (`@user:server`), or `undefined` if it has none. */
export function domainOf(id: string): string | undefined {
  const colon = id.indexOf(":");
  return colon === -1 ? undefined : id.slice(colon + 1);
}

/** `content.membership` of a member event when it is a string. */
export function membershipOf(event: RoomEvent | undefined): string | undefined {
  const membership = event?.content["membership"];
  return typeof membership === "string" ? membership : undefined;
}

/**
 * Orders strings by Unicode code point, as Python (Synapse) and Rust (ruma) compare them.
 * JavaScript's `<` compares UTF-16 code units, which puts U+E000..U+FFFF after astral
 * characters; event IDs in rooms 1-2 are arbitrary strings, so tie-breaks must not depend on it.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixUp(x) - fixUp(y);
  }
  return a.length - b.length;
}

/** Maps a UTF-16 code unit so that surrogates sort above every other BMP code unit. */
function fixUp(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}
