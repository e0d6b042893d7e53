/**
 * `PUT /_matrix/federation/v{1,2}/invite/{roomId}/{eventId}`: have an invite countersigned.
 *
 * @module
 */

import { noParameters, pathParameter, pdu, pduList } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

const path = {
  type: "object",
  properties: {
    roomId: pathParameter("The room the user is invited to."),
    eventId: pathParameter("The ID of the invite event, chosen by the inviting server."),
  },
  required: ["roomId", "eventId"],
} as const;

/**
 * The original invite: the body is the invite PDU itself (room state in
 * `unsigned.invite_room_state`) and the answer is `[200, { event }]`. Receivers assume room
 * version "1" or "2"; senders fall back to it only for those versions.
 */
export const v1 = defineEndpoint({
  name: "create_invite",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/invite/{roomId}/{eventId}",
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
          title: "Event Container",
          properties: { event: { ...pdu, description: "The invite event, now also signed by the invitee's server." } },
          required: ["event"],
        },
      ],
      minItems: 2,
      maxItems: 2,
      additionalItems: false,
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1inviteroomideventid",
  description: "Invite a remote user to a room (legacy, room versions 1 and 2).",
});

/** Invite a remote user: the invitee's server checks and countersigns the invite event. */
export const v2 = defineEndpoint({
  name: "create_invite",
  version: "v2",
  method: "PUT",
  path: "/_matrix/federation/v2/invite/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path,
    query: noParameters,
    body: {
      type: "object",
      properties: {
        room_version: { type: "string", description: "The version of the room." },
        event: { ...pdu, description: "The invite event, signed by the inviting server." },
        invite_room_state: {
          ...pduList,
          description: "State events identifying the room; must include `m.room.create` (v1.16).",
        },
      },
      required: ["room_version", "event"],
    },
    response: {
      type: "object",
      title: "Event Container",
      properties: { event: { ...pdu, description: "The invite event, now also signed by the invitee's server." } },
      required: ["event"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv2inviteroomideventid",
  description: "Invite a remote user to a room.",
});
