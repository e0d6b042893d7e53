/**
 * Content hashes, reference hashes, event IDs and room-version-12 room IDs
 * (spec server-server "Calculating the content hash / reference hash for an event";
 * rooms/fragments `v1-event-ids`, `v4-event-ids`; rooms/v3 for standard Base64 IDs;
 * rooms/v12 for room IDs).
 *
 * Events are hashed exactly as given: pass PDUs as received (for rooms 3+ without a
 * locally added `event_id`), because every top-level key, known or not, is covered.
 *
 * Each function takes the encoder's options: `{ compat: "synapse" }` for a room 1-5 event
 * parsed losslessly, whose floats and big integers Synapse hashed in its own notation.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { getRoomVersion } from "@myelin/types";
import { decodeBase64, encodeBase64, encodeBase64Url } from "./base64.js";
import { setMember } from "./json-parse.js";
import type { EncodeCanonicalJsonOptions } from "./canonical-json.js";
import { encodeCanonicalJson } from "./canonical-json.js";
import { isJsonObject } from "./json-signing.js";
import { redactEventWith } from "./redaction.js";

/** @internal SHA-256 of the canonical JSON of `value`. */
export function sha256CanonicalJson(value: JsonValue, options?: EncodeCanonicalJsonOptions): Buffer {
  // Hash the UTF-16 string as UTF-8 directly; lone surrogates were refused by the encoder.
  return createHash("sha256").update(encodeCanonicalJson(value, options), "utf8").digest();
}

/**
 * The SHA-256 content hash of an event: canonical JSON of the event without `unsigned`,
 * `signatures` and `hashes`. Covers every other top-level key, including unknown ones.
 *
 * @throws `CanonicalJsonError` when the event is not valid canonical JSON.
 */
export function computeContentHash(event: JsonObject, options?: EncodeCanonicalJsonOptions): Uint8Array {
  const hashed: JsonObject = {};
  for (const key of Object.keys(event)) {
    if (key !== "unsigned" && key !== "signatures" && key !== "hashes") setMember(hashed, key, event[key] as JsonValue);
  }
  return sha256CanonicalJson(hashed, options);
}

/**
 * Whether `hashes.sha256` of the event decodes to its content hash. A missing or
 * malformed hash is a mismatch: the caller then uses the redacted event (spec "Validating
 * hashes and signatures on received events").
 *
 * @throws `CanonicalJsonError` when the event is not valid canonical JSON.
 */
export function checkContentHash(event: JsonObject, options?: EncodeCanonicalJsonOptions): boolean {
  const hashes = event["hashes"];
  if (!isJsonObject(hashes) || !Object.hasOwn(hashes, "sha256")) return false;
  const claimed = hashes["sha256"];
  if (typeof claimed !== "string") return false;
  let expected: Uint8Array;
  try {
    expected = decodeBase64(claimed);
  } catch {
    return false;
  }
  return Buffer.from(computeContentHash(event, options)).equals(expected);
}

/**
 * The SHA-256 reference hash: the event redacted under the room version's algorithm,
 * without `signatures` and `unsigned`, as canonical JSON.
 *
 * @throws `CanonicalJsonError` when the redacted event is not valid canonical JSON.
 */
export function computeReferenceHash(
  event: JsonObject,
  rules: Pick<RoomVersionRules, "redaction">,
  options?: EncodeCanonicalJsonOptions,
): Uint8Array {
  return sha256CanonicalJson(redactEventWith(event, rules, false), options);
}

/** Why {@link computeEventId} could not produce an ID. */
export type EventIdFailure = "missing-event-id";

/** Thrown by {@link computeEventId} for a room 1-2 event without a string `event_id`. */
export class EventIdError extends Error {
  override readonly name = "EventIdError";
  constructor(readonly reason: EventIdFailure) {
    super(`cannot determine the event ID: ${reason}`);
  }
}

/**
 * The event's ID under the room version's format: rooms 1-2 carry their own `event_id`;
 * room 3 uses `$` + standard unpadded Base64 of the reference hash; rooms 4+ use `$` +
 * URL-safe unpadded Base64.
 *
 * @throws {@link EventIdError} for a room 1-2 event without an `event_id`;
 *   `CanonicalJsonError` when the event is not valid canonical JSON.
 */
export function computeEventId(
  event: JsonObject,
  rules: Pick<RoomVersionRules, "eventIdFormat" | "redaction">,
  options?: EncodeCanonicalJsonOptions,
): string {
  switch (rules.eventIdFormat) {
    case "legacy": {
      const id = event["event_id"];
      if (typeof id !== "string") throw new EventIdError("missing-event-id");
      return id;
    }
    case "base64":
      return "$" + encodeBase64(computeReferenceHash(event, rules, options));
    case "urlsafe":
      return "$" + encodeBase64Url(computeReferenceHash(event, rules, options));
  }
}

/**
 * The room ID a room-version-12 `m.room.create` event defines: its event ID with `!`
 * instead of `$`, i.e. `!` + URL-safe unpadded Base64 of its reference hash (MSC4291).
 * `rules` defaults to room version 12's.
 *
 * @throws `CanonicalJsonError` when the event is not valid canonical JSON.
 */
export function computeRoomIdV12(
  createEvent: JsonObject,
  rules: Pick<RoomVersionRules, "redaction"> = getRoomVersion("12"),
): string {
  return "!" + encodeBase64Url(computeReferenceHash(createEvent, rules));
}
