/**
 * `PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}`: submit a signed knock.
 *
 * @module
 */

import { noParameters, pathParameter, pdu, pduList } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Submit a signed knock PDU. The answer's `knock_room_state` must contain the room's
 * `m.room.create` event, and (since v1.16) every entry is a full PDU of the room version.
 */
export const v1 = defineEndpoint({
  name: "create_knock_event",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/send_knock/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: {
        roomId: pathParameter("The room being knocked on."),
        eventId: pathParameter("The ID of the knock event."),
      },
      required: ["roomId", "eventId"],
    },
    query: noParameters,
    body: pdu,
    response: {
      type: "object",
      properties: {
        knock_room_state: { ...pduList, description: "State events identifying the room, including `m.room.create`." },
      },
      required: ["knock_room_state"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1send_knockroomideventid",
  added: "v1.1",
  description: "Submit a signed knock event to a resident server.",
});
