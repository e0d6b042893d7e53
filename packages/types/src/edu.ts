/**
 * EDU (ephemeral data unit) shapes and the transaction that carries PDUs and EDUs, with JSON
 * Schemas for each (draft-07 vocabulary, no `$schema`/`$id`, no ajv import; see `./pdu.js`).
 *
 * EDUs have no ID, no place in a room's DAG and no per-EDU result: a receiver drops one it
 * cannot use and carries on. So {@link TRANSACTION_SCHEMA} checks only the generic EDU
 * envelope, and each EDU's content is checked on its own with {@link EDU_SCHEMAS}.
 *
 * Source: Matrix specification v1.19, `data/api/server-server/definitions/transaction.yaml`,
 * `edu.yaml`, `event-schemas/m.*.yaml`, client-server `device_keys.yaml` and
 * `cross_signing_key.yaml`; server-server "Transactions" (at most 50 PDUs and 100 EDUs).
 *
 * @module
 */

import type { JsonObject, JsonValue } from "./json.js";
import type { EventSignatures, JsonSchema } from "./pdu.js";
import { SIGNATURES_SCHEMA, deepFreeze } from "./pdu.js";

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** Any EDU: a type and a content object. */
export interface Edu extends JsonObject {
  edu_type: string;
  content: JsonObject;
}

/** `m.typing`: a user started or stopped typing in a room. */
export interface TypingEdu extends Edu {
  edu_type: "m.typing";
  content: {
    room_id: string;
    user_id: string;
    typing: boolean;
    // The spec has no `timeout`; some servers send one anyway, and unknown keys pass.
    [extra: string]: JsonValue;
  };
}

/** Metadata of one read receipt. */
export interface ReceiptData extends JsonObject {
  /** When the user read the event, in milliseconds since the epoch. */
  ts: number;
  /** Spec v1.4: the thread root's event ID, or `"main"`; absent for an unthreaded receipt. */
  thread_id?: string;
}

/** One user's read receipt in one room. */
export interface UserReadReceipt extends JsonObject {
  /** Exactly one event ID: the event read up to. */
  event_ids: string[];
  data: ReceiptData;
}

/** Receipts for one room: `m.read` maps user IDs to their receipt. */
export interface RoomReceipts extends JsonObject {
  "m.read": { [userId: string]: UserReadReceipt };
}

/**
 * `m.receipt`: read receipts, as deltas (update the listed entries, remove nothing).
 * The content maps room IDs to that room's receipts.
 */
export interface ReceiptEdu extends Edu {
  edu_type: "m.receipt";
  content: { [roomId: string]: RoomReceipts };
}

/** One user's presence in an `m.presence` EDU. */
export interface UserPresenceUpdate extends JsonObject {
  user_id: string;
  presence: "online" | "unavailable" | "offline";
  status_msg?: string;
  /** Milliseconds since the user last did something. */
  last_active_ago: number;
  /** Defaults to `false` when absent. */
  currently_active?: boolean;
}

/** `m.presence`: presence updates for users of the sending server. */
export interface PresenceEdu extends Edu {
  edu_type: "m.presence";
  content: { push: UserPresenceUpdate[]; [extra: string]: JsonValue };
}

/** A device's identity keys (client-server `DeviceKeys`). */
export interface DeviceKeys extends JsonObject {
  user_id: string;
  device_id: string;
  algorithms: string[];
  /** `<algorithm>:<device_id>` to the key. */
  keys: { [keyId: string]: string };
  signatures: EventSignatures;
}

/** `m.device_list_update` (spec v1.1): one device of a user was added, changed or deleted. */
export interface DeviceListUpdateEdu extends Edu {
  edu_type: "m.device_list_update";
  content: {
    user_id: string;
    device_id: string;
    device_display_name?: string;
    /** Unique per `user_id`; gaps in the sequence mean an update was lost. */
    stream_id: number;
    /** Earlier `stream_id`s not yet referenced; may be missing or empty for the first update. */
    prev_id?: number[];
    deleted?: boolean;
    keys?: DeviceKeys;
    [extra: string]: JsonValue;
  };
}

/** A cross-signing key (client-server `CrossSigningKey`). */
export interface CrossSigningKey extends JsonObject {
  user_id: string;
  usage: ("master" | "self_signing" | "user_signing")[];
  /** Exactly one entry: `<algorithm>:<unpadded base64 public key>` to the key. */
  keys: { [keyId: string]: string };
  signatures?: EventSignatures;
}

/** `m.signing_key_update` (spec v1.1): a user's cross-signing keys changed. */
export interface SigningKeyUpdateEdu extends Edu {
  edu_type: "m.signing_key_update";
  content: {
    user_id: string;
    master_key?: CrossSigningKey;
    self_signing_key?: CrossSigningKey;
    [extra: string]: JsonValue;
  };
}

/** `m.direct_to_device`: send-to-device messages for users on the receiving server. */
export interface DirectToDeviceEdu extends Edu {
  edu_type: "m.direct_to_device";
  content: {
    sender: string;
    /** The event type of the messages. */
    type: string;
    /** Idempotency key, at most 32 code points. */
    message_id: string;
    /** User ID to device ID (or `"*"` for all devices) to message content. */
    messages: { [userId: string]: { [deviceId: string]: JsonObject } };
    [extra: string]: JsonValue;
  };
}

/** The EDUs the spec defines (v1.19 defines no others). */
export type KnownEdu =
  | TypingEdu
  | ReceiptEdu
  | PresenceEdu
  | DeviceListUpdateEdu
  | SigningKeyUpdateEdu
  | DirectToDeviceEdu;

/** The `edu_type` of every EDU the spec defines. */
export type KnownEduType = KnownEdu["edu_type"];

/**
 * A transaction (`PUT /_matrix/federation/v1/send/{txnId}` body). PDUs are plain objects
 * here: their format depends on each one's room version, which the receiver looks up.
 */
export interface Transaction extends JsonObject {
  /** The sending server's name. */
  origin: string;
  /** When the transaction started, in milliseconds since the epoch on the origin server. */
  origin_server_ts: number;
  /** At most {@link MAX_TRANSACTION_PDUS}. */
  pdus: JsonObject[];
  /** At most {@link MAX_TRANSACTION_EDUS}; may be absent. */
  edus?: Edu[];
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

/** Most PDUs in one transaction (server-server "Transactions"). */
export const MAX_TRANSACTION_PDUS = 50;

/** Most EDUs in one transaction (server-server "Transactions"). */
export const MAX_TRANSACTION_EDUS = 100;

/** Longest `message_id` of an `m.direct_to_device` EDU, in code points. */
export const MAX_DIRECT_TO_DEVICE_MESSAGE_ID_LENGTH = 32;

function eduSchema(eduType: string, content: JsonSchema): JsonSchema {
  return deepFreeze({
    type: "object",
    properties: { edu_type: { const: eduType }, content },
    required: ["edu_type", "content"],
  });
}

/** The generic EDU envelope (`edu.yaml`): a string `edu_type` and an object `content`. */
export const EDU_SCHEMA: JsonSchema = deepFreeze({
  type: "object",
  properties: { edu_type: { type: "string" }, content: { type: "object" } },
  required: ["edu_type", "content"],
});

const USER_ID = { type: "string", pattern: "^@" } as const;
const ROOM_ID = { type: "string", pattern: "^!" } as const;

/** Schema of an `m.typing` EDU. */
export const TYPING_EDU_SCHEMA = eduSchema("m.typing", {
  type: "object",
  properties: { room_id: ROOM_ID, user_id: USER_ID, typing: { type: "boolean" } },
  required: ["room_id", "user_id", "typing"],
});

/** Schema of an `m.receipt` EDU. */
export const RECEIPT_EDU_SCHEMA = eduSchema("m.receipt", {
  type: "object",
  // As in the spec: keys that are not room IDs are not described, and so pass unchecked.
  patternProperties: {
    "^!": {
      type: "object",
      properties: {
        "m.read": {
          type: "object",
          patternProperties: {
            "^@": {
              type: "object",
              properties: {
                event_ids: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 1 },
                data: {
                  type: "object",
                  properties: { ts: { type: "integer" }, thread_id: { type: "string" } },
                  required: ["ts"],
                },
              },
              required: ["event_ids", "data"],
            },
          },
        },
      },
      required: ["m.read"],
    },
  },
});

/** Schema of an `m.presence` EDU. */
export const PRESENCE_EDU_SCHEMA = eduSchema("m.presence", {
  type: "object",
  properties: {
    push: {
      type: "array",
      items: {
        type: "object",
        properties: {
          user_id: USER_ID,
          presence: { enum: ["online", "unavailable", "offline"] },
          status_msg: { type: "string" },
          last_active_ago: { type: "integer" },
          currently_active: { type: "boolean" },
        },
        required: ["user_id", "presence", "last_active_ago"],
      },
    },
  },
  required: ["push"],
});

/** Schema of a device's identity keys (client-server `DeviceKeys`). */
export const DEVICE_KEYS_SCHEMA: JsonSchema = deepFreeze({
  type: "object",
  properties: {
    user_id: USER_ID,
    device_id: { type: "string" },
    algorithms: { type: "array", items: { type: "string" } },
    keys: { type: "object", additionalProperties: { type: "string" } },
    signatures: SIGNATURES_SCHEMA,
  },
  required: ["user_id", "device_id", "algorithms", "keys", "signatures"],
});

/** Schema of a cross-signing key (client-server `CrossSigningKey`). */
export const CROSS_SIGNING_KEY_SCHEMA: JsonSchema = deepFreeze({
  type: "object",
  properties: {
    user_id: USER_ID,
    usage: { type: "array", items: { enum: ["master", "self_signing", "user_signing"] } },
    keys: { type: "object", additionalProperties: { type: "string" }, minProperties: 1, maxProperties: 1 },
    signatures: SIGNATURES_SCHEMA,
  },
  required: ["user_id", "usage", "keys"],
});

/** Schema of an `m.device_list_update` EDU. */
export const DEVICE_LIST_UPDATE_EDU_SCHEMA = eduSchema("m.device_list_update", {
  type: "object",
  properties: {
    user_id: USER_ID,
    device_id: { type: "string" },
    device_display_name: { type: "string" },
    stream_id: { type: "integer" },
    prev_id: { type: "array", items: { type: "integer" } },
    deleted: { type: "boolean" },
    keys: DEVICE_KEYS_SCHEMA,
  },
  required: ["user_id", "device_id", "stream_id"],
});

/** Schema of an `m.signing_key_update` EDU. */
export const SIGNING_KEY_UPDATE_EDU_SCHEMA = eduSchema("m.signing_key_update", {
  type: "object",
  properties: {
    user_id: USER_ID,
    master_key: CROSS_SIGNING_KEY_SCHEMA,
    self_signing_key: CROSS_SIGNING_KEY_SCHEMA,
  },
  required: ["user_id"],
});

/**
 * Schema of an `m.direct_to_device` EDU. The 32-code-point limit on `message_id` is checked
 * with `maxLength`, which counts code points as the spec does.
 */
export const DIRECT_TO_DEVICE_EDU_SCHEMA = eduSchema("m.direct_to_device", {
  type: "object",
  properties: {
    sender: USER_ID,
    type: { type: "string" },
    message_id: { type: "string", maxLength: MAX_DIRECT_TO_DEVICE_MESSAGE_ID_LENGTH },
    messages: {
      type: "object",
      patternProperties: {
        "^@": { type: "object", additionalProperties: { type: "object" } },
      },
    },
  },
  required: ["sender", "type", "message_id", "messages"],
});

/** The schema for each EDU type the spec defines, keyed by `edu_type`. */
export const EDU_SCHEMAS: Readonly<Record<KnownEduType, JsonSchema>> = Object.freeze({
  "m.typing": TYPING_EDU_SCHEMA,
  "m.receipt": RECEIPT_EDU_SCHEMA,
  "m.presence": PRESENCE_EDU_SCHEMA,
  "m.device_list_update": DEVICE_LIST_UPDATE_EDU_SCHEMA,
  "m.signing_key_update": SIGNING_KEY_UPDATE_EDU_SCHEMA,
  "m.direct_to_device": DIRECT_TO_DEVICE_EDU_SCHEMA,
});

/** Whether `eduType` is one of the EDU types the spec defines. */
export function isKnownEduType(eduType: string): eduType is KnownEduType {
  return Object.hasOwn(EDU_SCHEMAS, eduType);
}

/**
 * Schema of a transaction: `origin`, `origin_server_ts`, at most 50 PDUs (any objects; their
 * format depends on their room) and at most 100 EDUs (the generic envelope only).
 */
export const TRANSACTION_SCHEMA: JsonSchema = deepFreeze({
  type: "object",
  properties: {
    origin: { type: "string" },
    origin_server_ts: { type: "integer" },
    pdus: { type: "array", items: { type: "object" }, maxItems: MAX_TRANSACTION_PDUS },
    edus: { type: "array", items: EDU_SCHEMA, maxItems: MAX_TRANSACTION_EDUS },
  },
  required: ["origin", "origin_server_ts", "pdus"],
});
