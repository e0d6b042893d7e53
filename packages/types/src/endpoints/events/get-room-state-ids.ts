/**
 * `GET /_matrix/federation/v1/state_ids/{roomId}`: the room state at an event, as IDs.
 *
 * @module
 */

import { eventIdList, pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Get the IDs of the state before an event and of its full auth chain. */
export const v1 = defineEndpoint({
  name: "get_room_state_ids",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/state_ids/{roomId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: { roomId: pathParameter("The room ID to get state for.") },
      required: ["roomId"],
    },
    query: {
      type: "object",
      properties: { event_id: { type: "string", description: "The event to get the state at (before it)." } },
      required: ["event_id"],
    },
    response: {
      type: "object",
      properties: {
        auth_chain_ids: { ...eventIdList, description: "The auth chain of the state, recursively." },
        pdu_ids: { ...eventIdList, description: "The resolved state of the room at the event." },
      },
      required: ["auth_chain_ids", "pdu_ids"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1state_idsroomid",
  description: "Get the event IDs of a room's state at a given event.",
});
