/**
 * Schema pieces several endpoints share, written from the spec's OpenAPI definitions
 * (`data/api/server-server/definitions/*`, and the client-server definitions the
 * federation API reuses). Internal to the endpoint table.
 *
 * @module
 */

import type { JsonSchema } from "./schema.js";

/**
 * A PDU. Only "it is an object" is checked here: the format depends on the room version,
 * which the router does not know, and hashes and signatures cover the exact object
 * received, so PDUs stay raw JSON until the room engine validates them one by one (a bad
 * PDU must fail alone, never the request that carried it).
 */
export const pdu = {
  type: "object",
  title: "PDU",
  description: "A PDU, formatted per its room version; validated per room version, not here.",
} as const satisfies JsonSchema;

/** A list of PDUs. */
export const pduList = { type: "array", items: pdu } as const satisfies JsonSchema;

/** The empty object several endpoints answer with. */
export const emptyObject = { type: "object", description: "An empty object." } as const satisfies JsonSchema;

/** Path or query schema of an endpoint without parameters. */
export const noParameters = { type: "object", properties: {} } as const satisfies JsonSchema;

/** An event ID list, as in `/state_ids` and `/get_missing_events`. */
export const eventIdList = { type: "array", items: { type: "string" } } as const satisfies JsonSchema;

/**
 * A path parameter: a string (decoded). The spec types every path parameter as a plain
 * string; grammar checks belong to the handler, which can answer with the right error.
 */
export function pathParameter<const D extends string>(description: D) {
  return { type: "string", description } as const satisfies JsonSchema;
}

/**
 * An integer query parameter. Query parameters arrive as text, so the schema accepts a
 * string of decimal digits; the handler converts it with `Number()`.
 */
export function integerQuery<const D extends string>(description: D) {
  return { type: "string", pattern: "^[0-9]+$", description } as const satisfies JsonSchema;
}

/** A boolean query parameter: the text `true` or `false`. */
export function booleanQuery<const D extends string>(description: D) {
  return { type: "string", enum: ["true", "false"], description } as const satisfies JsonSchema;
}

/** A string query parameter the spec repeats (`?ver=1&ver=2`): always an array. */
export function repeatedQuery<const D extends string>(description: D) {
  return { type: "array", items: { type: "string" }, description } as const satisfies JsonSchema;
}

/** `{ "<server or user>": { "<key id>": "<signature>" } }` (appendices § "Signing JSON"). */
export const signatures = {
  type: "object",
  description: "Signatures: entity (server name or user ID) to key ID to unpadded base64 signature.",
  additionalProperties: { type: "object", additionalProperties: { type: "string" } },
} as const satisfies JsonSchema;

/** A transaction as returned by `/event` and `/backfill` (definitions/transaction.yaml). */
export function transactionResponse<const P extends JsonSchema>(pdus: P) {
  return {
    type: "object",
    properties: {
      origin: { type: "string", description: "The server name of the homeserver sending this transaction." },
      origin_server_ts: { type: "integer", description: "Milliseconds since the epoch on the origin when it started." },
      pdus,
    },
    required: ["origin", "origin_server_ts", "pdus"],
  } as const satisfies JsonSchema;
}

/** Server keys (definitions/keys.yaml), as published and as relayed by notaries. */
export const serverKeys = {
  type: "object",
  title: "Server Keys",
  properties: {
    server_name: { type: "string", description: "The homeserver's server name." },
    verify_keys: {
      type: "object",
      description: "Current keys, by key ID (`ed25519:<version>`).",
      additionalProperties: {
        type: "object",
        properties: { key: { type: "string", description: "Unpadded base64 public key." } },
        required: ["key"],
      },
    },
    old_verify_keys: {
      type: "object",
      description: "Retired keys, by key ID, with when they stopped being used.",
      additionalProperties: {
        type: "object",
        properties: {
          expired_ts: { type: "integer", description: "When the key expired, ms since the epoch." },
          key: { type: "string", description: "Unpadded base64 public key." },
        },
        required: ["expired_ts", "key"],
      },
    },
    signatures,
    valid_until_ts: { type: "integer", description: "When to refresh the keys, ms since the epoch." },
  },
  required: ["server_name", "verify_keys", "signatures", "valid_until_ts"],
} as const satisfies JsonSchema;

/** A notary's answer (definitions/keys_query_response.yaml); the spec does not require the field. */
export const serverKeysQueryResponse = {
  type: "object",
  properties: {
    server_keys: {
      type: "array",
      description: "The queried servers' keys, signed by the notary as well as by the server.",
      items: serverKeys,
    },
  },
} as const satisfies JsonSchema;

/**
 * The unsigned membership template of `make_join`, `make_knock` and `make_leave`.
 *
 * Two departures from the spec's schemas, both for interop: `origin` is documented but
 * not required (room version 11 dropped the top-level `origin` from the redaction
 * algorithm, the caller overwrites it anyway, and a template without it is still usable);
 * and `event` is required for all three, where the OpenAPI requires it only for
 * `make_knock`, since an answer without a template cannot be used.
 */
export function membershipTemplateResponse<const M extends string, const R extends readonly string[]>(
  membership: M,
  required: R,
) {
  return {
    type: "object",
    properties: {
      room_version: {
        type: "string",
        description: "The room version. When absent (make_join, make_leave), assume \"1\" or \"2\".",
      },
      event: {
        type: "object",
        title: "Event Template",
        description: "An unsigned template event; may lack fields a PDU needs.",
        properties: {
          sender: { type: "string", description: "The user ID of the member." },
          origin: { type: "string", description: "The resident server's name." },
          origin_server_ts: { type: "integer", description: "A timestamp added by the resident server." },
          type: { type: "string", description: "The value `m.room.member`." },
          state_key: { type: "string", description: "The user ID of the member." },
          content: {
            type: "object",
            title: "Membership Event Content",
            properties: {
              membership: { type: "string", description: `The value \`${membership}\`.` },
              join_authorised_via_users_server: {
                type: "string",
                description: "For restricted rooms: a resident user able to issue invites.",
              },
            },
            required: ["membership"],
          },
        },
        required: ["state_key", "sender", "origin_server_ts", "type", "content"],
      },
    },
    required,
  } as const satisfies JsonSchema;
}

/** One published room (client-server definitions/public_rooms_chunk.yaml). */
const publishedRoomProperties = {
  canonical_alias: { type: "string", description: "The canonical alias of the room, if any." },
  name: { type: "string", description: "The name of the room, if any." },
  num_joined_members: { type: "integer", description: "The number of members joined to the room." },
  room_id: { type: "string", description: "The ID of the room." },
  topic: { type: "string", description: "The plain text topic of the room, if any." },
  world_readable: { type: "boolean", description: "Whether the room may be viewed without joining." },
  guest_can_join: { type: "boolean", description: "Whether guest users may join the room." },
  avatar_url: { type: "string", description: "The URL (mxc://) of the room's avatar, if any." },
  join_rule: { type: "string", description: "The room's join rule; `public` when absent." },
  room_type: { type: "string", description: "The `type` of the room from `m.room.create`, if any." },
} as const satisfies Record<string, JsonSchema>;

const publishedRoomRequired = ["room_id", "num_joined_members", "world_readable", "guest_can_join"] as const;

/** A published room directory page (client-server definitions/public_rooms_response.yaml). */
export const publicRoomsResponse = {
  type: "object",
  properties: {
    chunk: {
      type: "array",
      description: "A page of published rooms.",
      items: {
        type: "object",
        title: "PublishedRoomsChunk",
        properties: publishedRoomProperties,
        required: publishedRoomRequired,
      },
    },
    next_batch: { type: "string", description: "Token for the next page; absent on the last page." },
    prev_batch: { type: "string", description: "Token for the previous page; absent on the first page." },
    total_room_count_estimate: { type: "integer", description: "An estimate of the number of published rooms." },
  },
  required: ["chunk"],
} as const satisfies JsonSchema;

/**
 * A room summary (client-server definitions/room_summary.yaml). `encryption` is a plain
 * string rather than the spec's one-value enum, so a room using a newer algorithm does
 * not make a whole `/hierarchy` response invalid.
 */
export const roomSummaryProperties = {
  ...publishedRoomProperties,
  allowed_room_ids: {
    type: "array",
    items: { type: "string" },
    description: "For restricted rooms, the room IDs named by the join rules.",
  },
  encryption: { type: "string", description: "The room's encryption algorithm (`m.megolm.v1.aes-sha2`), if any." },
  room_version: { type: "string", description: "The version of the room." },
} as const satisfies Record<string, JsonSchema>;

/** The required fields of a room summary. */
export const roomSummaryRequired = publishedRoomRequired;

/** Device identity keys (client-server definitions/device_keys.yaml). */
export const deviceKeys = {
  type: "object",
  title: "DeviceKeys",
  properties: {
    user_id: { type: "string", description: "The user the device belongs to." },
    device_id: { type: "string", description: "The device ID." },
    algorithms: { type: "array", items: { type: "string" }, description: "Supported encryption algorithms." },
    keys: {
      type: "object",
      description: "Public identity keys by `<algorithm>:<device_id>`.",
      additionalProperties: { type: "string" },
    },
    signatures,
  },
  required: ["user_id", "device_id", "algorithms", "keys", "signatures"],
} as const satisfies JsonSchema;

/** A cross-signing key (client-server definitions/cross_signing_key.yaml). */
export const crossSigningKey = {
  type: "object",
  title: "CrossSigningKey",
  properties: {
    user_id: { type: "string", description: "The user the key belongs to." },
    usage: {
      type: "array",
      description: "What the key is used for.",
      items: { type: "string", enum: ["master", "self_signing", "user_signing"] },
    },
    keys: {
      type: "object",
      description: "Exactly one `<algorithm>:<unpadded base64 public key>` to that key.",
      additionalProperties: { type: "string" },
      minProperties: 1,
      maxProperties: 1,
    },
    signatures,
  },
  required: ["user_id", "usage", "keys"],
} as const satisfies JsonSchema;

/** The identity server's signed block of a third-party invite (signed_third_party_invite.yaml). */
export const signedThirdPartyInvite = {
  type: "object",
  title: "SignedThirdPartyInvite",
  properties: {
    mxid: { type: "string", description: "The invited Matrix user ID." },
    token: { type: "string", description: "The identity server's token (state_key of the m.room.third_party_invite)." },
    signatures: {
      type: "object",
      description: "Identity server name to key ID to signature.",
      additionalProperties: { type: "object", additionalProperties: { type: "string" } },
    },
  },
  required: ["mxid", "signatures", "token"],
} as const satisfies JsonSchema;
