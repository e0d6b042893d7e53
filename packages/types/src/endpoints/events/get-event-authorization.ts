/**
 * `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}`: an event's auth chain.
 *
 * @module
 */

import { noParameters, pathParameter, pduList } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Get the complete auth chain of an event. */
export const v1 = defineEndpoint({
  name: "get_event_authorization",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/event_auth/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: {
        roomId: pathParameter("The room the event is in."),
        eventId: pathParameter("The event whose auth chain is wanted."),
      },
      required: ["roomId", "eventId"],
    },
    query: noParameters,
    response: {
      type: "object",
      properties: { auth_chain: { ...pduList, description: "The PDUs of the event's auth chain." } },
      required: ["auth_chain"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1event_authroomideventid",
  description: "Get the complete auth chain for a given event.",
});
