/**
 * PDU (persistent data unit, i.e. room event) shapes per event format, and JSON Schemas that
 * check them.
 *
 * PDUs stay raw JSON objects: hashes and signatures cover the exact object received, unknown
 * keys included (old events carry `origin`, `prev_state`, ...). So the types here extend
 * {@link JsonObject} and the schemas never forbid unknown top-level keys.
 *
 * The schemas are plain objects in the JSON Schema draft-07 vocabulary, which is what ajv 8's
 * default `Ajv` class speaks; they carry no `$schema` or `$id`, so they can be embedded in
 * other schemas and compiled more than once. This module does not import ajv.
 *
 * Source: Matrix specification v1.19, `data/api/server-server/definitions/pdu_v1.yaml`,
 * `pdu_v3.yaml`, `pdu_v4.yaml`, `pdu_v6.yaml`, `pdu_v11.yaml`, `pdu_v12.yaml` and their
 * `components/`; client-server "Size limits".
 *
 * @module
 */

import type { JsonObject } from "./json.js";
import type { EventFormat, RoomVersionRules } from "./room-versions.js";

/** A JSON Schema (draft-07 vocabulary) as a plain object. */
export interface JsonSchema {
  readonly [keyword: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/**
 * Most `prev_events` a PDU may list. The spec's PDU schemas say "Must contain less than or
 * equal to 20 events"; Synapse rejects events over the limit when it receives them.
 */
export const MAX_PREV_EVENTS = 20;

/**
 * Most `auth_events` a PDU may list. The spec's PDU schemas say "Must contain less than or
 * equal to 10 events"; Synapse rejects events over the limit when it receives them.
 */
export const MAX_AUTH_EVENTS = 10;

/**
 * Largest PDU, in bytes of canonical JSON including signatures (client-server "Size limits").
 * A JSON Schema cannot measure this; `@myelin/rooms` checks it.
 */
export const MAX_PDU_BYTES = 65536;

/**
 * Longest `type` and `state_key`, in UTF-8 bytes (client-server "Size limits"). JSON Schema's
 * `maxLength` counts code points, not bytes, so the schemas leave this to `@myelin/rooms`.
 */
export const MAX_EVENT_KEY_BYTES = 255;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** The `hashes` of a PDU: the content hash (unpadded base64 SHA-256). */
export interface EventHashes extends JsonObject {
  sha256: string;
}

/** One server's signatures: key ID (`ed25519:abc`) to unpadded base64 signature. */
export interface ServerSignatures extends JsonObject {
  [keyId: string]: string;
}

/** The `signatures` of a PDU or other signed object: server name to that server's signatures. */
export interface EventSignatures extends JsonObject {
  [serverName: string]: ServerSignatures;
}

/**
 * A `prev_events` / `auth_events` entry in rooms 1-2: the event ID and that event's hashes.
 * The hashes are deprecated and read by no algorithm; Synapse fills them from its store and
 * can send `{}` when it has none, so `sha256` is optional here.
 */
export type EventReferenceV1 = [eventId: string, hashes: JsonObject & { sha256?: string }];

/** Fields every PDU format shares. */
export interface PduBase extends JsonObject {
  type: string;
  sender: string;
  origin_server_ts: number;
  content: JsonObject;
  /** Present (possibly `""`) exactly on state events. */
  state_key?: string;
  depth: number;
  hashes: EventHashes;
  signatures: EventSignatures;
  /** Data added by the sending server that hashes and signatures do not cover (e.g. `age`). */
  unsigned?: JsonObject;
  /**
   * Dropped from the schema in spec v1.3 but present on many events; covered by the content
   * hash and kept by the v1-v10 redaction algorithms, so it must be kept as received.
   */
  origin?: string;
}

/** A PDU in rooms 1-2 (`pdu_v1`): carries its own `event_id`; references are pairs. */
export interface PduV1 extends PduBase {
  event_id: string;
  room_id: string;
  prev_events: EventReferenceV1[];
  auth_events: EventReferenceV1[];
  /** On `m.room.redaction` events: the ID of the event being redacted. */
  redacts?: string;
}

/**
 * A PDU in rooms 3-11 (`pdu_v3`, `pdu_v4`, `pdu_v6`, `pdu_v11`): no `event_id` (it is the
 * reference hash); references are plain event IDs.
 */
export interface PduV3 extends PduBase {
  room_id: string;
  prev_events: string[];
  auth_events: string[];
  /** Rooms 3-10, on `m.room.redaction` events. From room 11 it lives in `content` instead. */
  redacts?: string;
}

/**
 * A PDU in room 12 (`pdu_v12`): as {@link PduV3}, but the `m.room.create` event has no
 * `room_id` (the room ID is derived from it), and every other event's `room_id` is the create
 * event's ID with `!` for `$`. `redacts` lives in `content`.
 */
export interface PduV12 extends PduBase {
  /** Absent on the `m.room.create` event, required on every other event. */
  room_id?: string;
  prev_events: string[];
  auth_events: string[];
}

/**
 * A PDU of any format. The formats overlap structurally: which one an object is follows from
 * its room's version, never from its shape; see {@link PduFor}.
 */
export type Pdu = PduV1 | PduV3 | PduV12;

/** The PDU type for an event format: `PduFor<rules["eventFormat"]>`. */
export type PduFor<F extends EventFormat> = F extends "v1" ? PduV1 : F extends "v3" ? PduV3 : PduV12;

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

// Sigils only: the exact grammar of IDs depends on the room version and is checked by
// the identifier parsers, and the spec's own examples use IDs like "$base64encodedeventid".
const EVENT_ID = { type: "string", pattern: "^\\$" } as const;
const ROOM_ID = { type: "string", pattern: "^!" } as const;
const USER_ID = { type: "string", pattern: "^@" } as const;

/** Schema of a PDU's `hashes`: an object with a string `sha256`; other algorithms are allowed. */
export const EVENT_HASHES_SCHEMA: JsonSchema = Object.freeze({
  type: "object",
  properties: { sha256: { type: "string" } },
  required: ["sha256"],
});

/** Schema of `signatures`: server name to key ID to signature string. */
export const SIGNATURES_SCHEMA: JsonSchema = Object.freeze({
  type: "object",
  additionalProperties: { type: "object", additionalProperties: { type: "string" } },
});

const REFERENCE_HASHES_V1 = {
  type: "object",
  properties: { sha256: { type: "string" } },
} as const;

const REFERENCE_V1 = {
  type: "array",
  items: [EVENT_ID, REFERENCE_HASHES_V1],
  minItems: 2,
  maxItems: 2,
} as const;

interface PduSchemaShape {
  readonly format: EventFormat;
  /** Largest depth, as a JSON number. */
  readonly maxDepth: number;
  /** Whether `redacts` is a top-level key (rooms 1-10). */
  readonly topLevelRedacts: boolean;
}

function buildPduSchema({ format, maxDepth, topLevelRedacts }: PduSchemaShape): JsonSchema {
  const reference = format === "v1" ? REFERENCE_V1 : EVENT_ID;
  const properties: Record<string, unknown> = {
    type: { type: "string" },
    sender: USER_ID,
    origin_server_ts: { type: "integer" },
    content: { type: "object" },
    state_key: { type: "string" },
    // The spec gives only the upper bound. Depth counts events from the create event, so a
    // negative one cannot be right; we refuse it.
    depth: { type: "integer", minimum: 0, maximum: maxDepth },
    hashes: EVENT_HASHES_SCHEMA,
    signatures: SIGNATURES_SCHEMA,
    unsigned: { type: "object", properties: { age: { type: "integer" } } },
    room_id: ROOM_ID,
    prev_events: { type: "array", items: reference, maxItems: MAX_PREV_EVENTS },
    auth_events: { type: "array", items: reference, maxItems: MAX_AUTH_EVENTS },
  };
  if (topLevelRedacts) properties["redacts"] = EVENT_ID;
  if (format === "v1") properties["event_id"] = EVENT_ID;

  const required = ["type", "sender", "origin_server_ts", "content", "depth", "hashes", "signatures", "prev_events", "auth_events"];
  if (format === "v1") required.push("event_id");
  if (format !== "v12") required.push("room_id");

  const schema: Record<string, unknown> = { type: "object", properties, required };
  if (format === "v12") {
    // pdu_v12: room_id is "Omitted from m.room.create events". Whether a create event that does
    // carry one is rejected is auth rule 1.2's business, not the format's.
    schema["if"] = { properties: { type: { const: "m.room.create" } }, required: ["type"] };
    schema["else"] = { properties: { room_id: ROOM_ID }, required: ["room_id"] };
  }
  return deepFreeze(schema);
}

/** @internal Freezes a schema and everything in it. Not exported from the package. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

// 2^63-1 is not a double: as a JSON number it rounds to 2^63, so the v1-v5 bound also admits
// 2^63 itself. JavaScript cannot tell the two apart after JSON.parse anyway.
const MAX_DEPTH_V1 = Number(2n ** 63n - 1n);
const MAX_DEPTH_V6 = Number.MAX_SAFE_INTEGER;

/** Schema for rooms 1-2 (`pdu_v1`). */
export const PDU_V1_SCHEMA = buildPduSchema({ format: "v1", maxDepth: MAX_DEPTH_V1, topLevelRedacts: true });
/** Schema for rooms 3-5 (`pdu_v3`, `pdu_v4`): depth up to 2^63-1. */
export const PDU_V3_SCHEMA = buildPduSchema({ format: "v3", maxDepth: MAX_DEPTH_V1, topLevelRedacts: true });
/** Schema for rooms 6-10 (`pdu_v6`): depth up to 2^53-1 (strict canonical JSON). */
export const PDU_V6_SCHEMA = buildPduSchema({ format: "v3", maxDepth: MAX_DEPTH_V6, topLevelRedacts: true });
/** Schema for room 11 (`pdu_v11`): as v6 without a top-level `redacts`. */
export const PDU_V11_SCHEMA = buildPduSchema({ format: "v3", maxDepth: MAX_DEPTH_V6, topLevelRedacts: false });
/** Schema for room 12 (`pdu_v12`): `room_id` required except on `m.room.create`. */
export const PDU_V12_SCHEMA = buildPduSchema({ format: "v12", maxDepth: MAX_DEPTH_V6, topLevelRedacts: false });

const cache = new Map<string, JsonSchema>([
  [cacheKey({ format: "v1", maxDepth: MAX_DEPTH_V1, topLevelRedacts: true }), PDU_V1_SCHEMA],
  [cacheKey({ format: "v3", maxDepth: MAX_DEPTH_V1, topLevelRedacts: true }), PDU_V3_SCHEMA],
  [cacheKey({ format: "v3", maxDepth: MAX_DEPTH_V6, topLevelRedacts: true }), PDU_V6_SCHEMA],
  [cacheKey({ format: "v3", maxDepth: MAX_DEPTH_V6, topLevelRedacts: false }), PDU_V11_SCHEMA],
  [cacheKey({ format: "v12", maxDepth: MAX_DEPTH_V6, topLevelRedacts: false }), PDU_V12_SCHEMA],
]);

function cacheKey(shape: PduSchemaShape): string {
  return `${shape.format}|${shape.maxDepth}|${shape.topLevelRedacts}`;
}

/**
 * The JSON Schema for PDUs in a room with these rules. Built from the rules' flags (event
 * format, depth limit, where `redacts` lives), so a custom room version gets a matching
 * schema; the same rules always return the same object, so ajv's compile cache applies.
 *
 * A schema checks shape only: required keys and their JSON types, sigils, the `prev_events`
 * and `auth_events` counts and the depth range. Hashes, signatures, ID grammar, byte limits
 * and authorization are other layers' work.
 */
export function pduSchemaFor(rules: RoomVersionRules): JsonSchema {
  const shape: PduSchemaShape = {
    format: rules.eventFormat,
    maxDepth: Number(rules.maxDepth),
    topLevelRedacts: !rules.auth.redactsInContent,
  };
  const key = cacheKey(shape);
  let schema = cache.get(key);
  if (schema === undefined) {
    schema = buildPduSchema(shape);
    cache.set(key, schema);
  }
  return schema;
}
