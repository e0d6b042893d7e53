/**
 * Events as the client-server API shows them (`ClientEvent`): the PDU without its
 * federation fields (`auth_events`, `prev_events`, `depth`, `hashes`, `signatures`), with
 * `room_id` always present (room-12 create events carry none on the wire), `unsigned.age`,
 * and, for redacted events, the redacted content and `unsigned.redacted_because`.
 *
 * Spec: client-server "Room Events" (`ClientEvent`), "Redactions" (redacted events keep the
 * keys the room version's algorithm keeps, and carry the redaction in `redacted_because`).
 *
 * @module
 */

import { redactEvent } from "@myelin/signing";
import type { JsonObject, JsonValue } from "@myelin/types";
import type { EngineEvent } from "../engine/index.js";

/** A `ClientEvent` body. */
export type ClientEvent = JsonObject;

/**
 * Formats an event for clients. `redactedBecause`, when given, is the redaction that
 * applies: the content is reduced as the room version's redaction algorithm says.
 */
export function toClientEvent(event: EngineEvent, now: number, redactedBecause?: EngineEvent): ClientEvent {
  const source = redactedBecause === undefined ? event.pdu : redactEvent(event.pdu, event.rules);
  const out: JsonObject = {
    content: (source["content"] as JsonValue | undefined) ?? {},
    event_id: event.eventId,
    origin_server_ts: event.stored.originServerTs,
    room_id: event.roomId,
    sender: event.stored.sender,
    type: event.stored.type,
  };
  if (event.stored.stateKey !== null) out["state_key"] = event.stored.stateKey;
  if (event.stored.type === "m.room.redaction") {
    // Rooms 11+ moved `redacts` into content; clients still read the top-level key, so it is
    // given in both places there (as Synapse does).
    const content = source["content"] as JsonObject | undefined;
    const redacts = source["redacts"] ?? content?.["redacts"];
    if (typeof redacts === "string") out["redacts"] = redacts;
  }
  const unsigned: JsonObject = { age: Math.max(0, now - event.stored.originServerTs) };
  if (redactedBecause !== undefined) unsigned["redacted_because"] = toClientEvent(redactedBecause, now);
  out["unsigned"] = unsigned;
  return out;
}
