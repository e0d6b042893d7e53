/**
 * `PUT /_matrix/federation/v{1,2}/send_join/{roomId}/{eventId}`: submit a signed join.
 *
 * @module
 */

import { booleanQuery, noParameters, pathParameter, pdu, pduList } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

const path = {
  type: "object",
  properties: {
    roomId: pathParameter("The room being joined."),
    eventId: pathParameter("The ID of the join event."),
  },
  required: ["roomId", "eventId"],
} as const;

/**
 * The original send_join, answering `[200, { origin, auth_chain, state }]`. Removed in
 * v1.18 (MSC4376); kept to join through servers that only speak it. The body is the
 * signed join PDU.
 */
export const v1 = defineEndpoint({
  name: "create_join_event",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/send_join/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path,
    query: noParameters,
    body: pdu,
    response: {
      type: "array",
      items: [
        { type: "integer", const: 200, description: "The value 200." },
        {
          type: "object",
          title: "Room State",
          properties: {
            origin: { type: "string", description: "The resident server's name." },
            auth_chain: { ...pduList, description: "The auth chain of the room state before the join." },
            state: { ...pduList, description: "The resolved room state before the join." },
            event: { ...pdu, description: "The join event, countersigned by the resident (restricted rooms)." },
          },
          required: ["auth_chain", "state", "origin"],
        },
      ],
      minItems: 2,
      maxItems: 2,
      additionalItems: false,
    },
  },
  spec: "https://spec.matrix.org/v1.17/server-server-api/#put_matrixfederationv1send_joinroomideventid",
  removed: "v1.18",
  description: "Submit a signed join event to a resident server (legacy array response).",
});

/**
 * Submit a signed join PDU to a resident server. With `omit_members=true` (v1.6, partial
 * state joins) the resident may leave membership events out of `state` and then must say
 * so in `members_omitted` and list `servers_in_room`.
 */
export const v2 = defineEndpoint({
  name: "create_join_event",
  version: "v2",
  method: "PUT",
  path: "/_matrix/federation/v2/send_join/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path,
    query: {
      type: "object",
      properties: {
        omit_members: booleanQuery("`true` when the caller accepts a response without membership events (v1.6)."),
      },
    },
    body: pdu,
    response: {
      type: "object",
      properties: {
        members_omitted: { type: "boolean", description: "`true` if `m.room.member` events were left out of `state`." },
        auth_chain: { ...pduList, description: "The auth chains of the join event and of the `state` events." },
        state: { ...pduList, description: "The resolved room state before the join." },
        event: { ...pdu, description: "The join event countersigned by the resident; required for restricted joins." },
        servers_in_room: {
          type: "array",
          items: { type: "string" },
          description: "Servers with joined members before the join; required when `members_omitted`.",
        },
      },
      required: ["auth_chain", "state"],
      if: { properties: { members_omitted: { const: true } }, required: ["members_omitted"] },
      then: { properties: { servers_in_room: { type: "array" } }, required: ["servers_in_room"] },
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv2send_joinroomideventid",
  description: "Submit a signed join event to a resident server.",
});
