/**
 * `GET /_matrix/federation/v1/event/{eventId}`: one PDU.
 *
 * @module
 */

import { noParameters, pathParameter, pdu, transactionResponse } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Retrieve a single event, wrapped in a transaction holding exactly that PDU. */
export const v1 = defineEndpoint({
  name: "get_event",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/event/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { eventId: pathParameter("The event ID to get.") },
      required: ["eventId"],
    },
    query: noParameters,
    response: transactionResponse({
      type: "array",
      items: pdu,
      minItems: 1,
      maxItems: 1,
      description: "The single PDU requested.",
    }),
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1eventeventid",
  description: "Retrieve a single event.",
});
