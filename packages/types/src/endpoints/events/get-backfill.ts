/**
 * `GET /_matrix/federation/v1/backfill/{roomId}`: history before given events.
 *
 * @module
 */

import { integerQuery, pathParameter, pduList, repeatedQuery, transactionResponse } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Retrieve the given events and those before them, up to `limit` PDUs in all. Backfilled
 * PDUs must not be rejected for exceeding the `prev_events`/`auth_events` limits, since
 * older events may predate them (server-server API § "Backfilling and retrieving missing events").
 */
export const v1 = defineEndpoint({
  name: "get_backfill",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/backfill/{roomId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: { roomId: pathParameter("The room ID to backfill.") },
      required: ["roomId"],
    },
    query: {
      type: "object",
      properties: {
        v: { ...repeatedQuery("The event IDs to backfill from (`?v=...&v=...`)."), minItems: 1 },
        limit: integerQuery("The maximum number of PDUs to return, counting the `v` events."),
      },
      required: ["v", "limit"],
    },
    response: transactionResponse(pduList),
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1backfillroomid",
  description: "Retrieve the events preceding the given events.",
});
