/**
 * Building our own PDUs: the fields of each event format (room versions 1-2, 3-11, 12),
 * depth, references, the content hash, our signature and the event ID.
 *
 * Spec: server-server "PDUs" (the formats), "Signing Events" (hashes then signature),
 * rooms v1 (`$opaque:server` event IDs, `[id, hashes]` references), rooms v3/v4 (event ID =
 * reference hash), rooms v12 (the create event carries no `room_id`; the room ID is derived
 * from it).
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import type { SigningKey } from "@myelin/signing";
import { computeEventId, computeReferenceHash, encodeBase64, signEvent } from "@myelin/signing";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";

/** What a local user asks to send: the parts of an event a client chooses. */
export interface EventDraft {
  readonly type: string;
  readonly sender: string;
  readonly content: JsonObject;
  /** Present (possibly `""`) for a state event. */
  readonly stateKey?: string | undefined;
  /** Rooms 1-10: the top-level `redacts` of an `m.room.redaction` event. */
  readonly redacts?: string | undefined;
}

/** An event this one references, with what a reference needs. */
export interface EventReference {
  readonly eventId: string;
  readonly depth: number;
  /** The referenced PDU: rooms 1-2 put its reference hash beside its ID. */
  readonly pdu: JsonObject;
}

/** Where and how to build an event. */
export interface BuildContext {
  readonly rules: RoomVersionRules;
  /** The room ID; `undefined` only for a room-12 create event. */
  readonly roomId: string | undefined;
  readonly serverName: string;
  readonly signingKey: SigningKey;
  readonly prevEvents: readonly EventReference[];
  readonly authEvents: readonly EventReference[];
  readonly originServerTs: number;
}

/** A built, hashed and signed event. */
export interface BuiltEvent {
  readonly pdu: JsonObject;
  readonly eventId: string;
}

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random string of ASCII letters (opaque ID localparts). */
export function randomLetters(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  // 52 letters; the modulo bias (256 % 52) is irrelevant for opaque identifiers.
  for (const byte of bytes) out += LETTERS[byte % LETTERS.length];
  return out;
}

/** A new room ID for rooms 1-11: `!<opaque>:<server name>` (appendices, "Room IDs"). */
export function newLegacyRoomId(serverName: string): string {
  return `!${randomLetters(18)}:${serverName}`;
}

/**
 * The depth of a new event: one more than the deepest prev event (1 for the create event),
 * capped at the largest depth the room version accepts (server-server "Depth").
 */
export function depthAfter(prevEvents: readonly { readonly depth: number }[], rules: RoomVersionRules): number {
  const max = Math.min(Number(rules.maxDepth), Number.MAX_SAFE_INTEGER);
  const deepest = prevEvents.reduce((depth, prev) => Math.max(depth, prev.depth), 0);
  return Math.min(deepest + 1, max);
}

/**
 * Builds the PDU for `draft`, adds its content hash, signs it as `serverName` and computes
 * its event ID. Rooms 1-2 get a `$<opaque>:<server name>` ID inside the event and
 * `[event ID, {sha256: reference hash}]` references; later rooms use plain ID lists and the
 * reference hash as the ID.
 *
 * @throws `CanonicalJsonError` when the content is not canonical JSON (floats, huge integers).
 */
export function buildEvent(draft: EventDraft, context: BuildContext): BuiltEvent {
  const { rules } = context;
  const v1Format = rules.eventFormat === "v1";
  const reference = (ref: EventReference): JsonValue =>
    v1Format ? [ref.eventId, { sha256: encodeBase64(computeReferenceHash(ref.pdu, rules)) }] : ref.eventId;
  const pdu: JsonObject = {
    auth_events: context.authEvents.map(reference),
    content: draft.content,
    depth: depthAfter(context.prevEvents, rules),
    origin_server_ts: context.originServerTs,
    prev_events: context.prevEvents.map(reference),
    sender: draft.sender,
    type: draft.type,
  };
  if (context.roomId !== undefined) pdu["room_id"] = context.roomId;
  if (draft.stateKey !== undefined) pdu["state_key"] = draft.stateKey;
  if (draft.redacts !== undefined) pdu["redacts"] = draft.redacts;
  if (v1Format) pdu["event_id"] = `$${randomLetters(18)}:${context.serverName}`;
  const signed = signEvent(pdu, context.serverName, context.signingKey, rules);
  return { pdu: signed, eventId: computeEventId(signed, rules) };
}
