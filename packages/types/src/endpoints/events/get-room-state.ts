/**
 * `GET /_matrix/federation/v1/state/{roomId}`: the room state at an event, as PDUs.
 *
 * @module
 */

import { pathParameter, pduList } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Get the state before an event, with its full auth chain. */
export const v1 = defineEndpoint({
  name: "get_room_state",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/state/{roomId}",
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
        auth_chain: { ...pduList, description: "The auth events of the state, recursively." },
        pdus: { ...pduList, description: "The resolved state of the room at the event." },
      },
      required: ["auth_chain", "pdus"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1stateroomid",
  description: "Get a snapshot of a room's state at a given event.",
});
