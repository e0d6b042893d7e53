/**
 * `POST /_matrix/federation/v1/get_missing_events/{roomId}`: fill a gap in the DAG.
 *
 * @module
 */

import { eventIdList, noParameters, pathParameter, pduList } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Walk `prev_events` breadth-first back from `latest_events`, stopping at `earliest_events`. */
export const v1 = defineEndpoint({
  name: "get_missing_events",
  version: "v1",
  method: "POST",
  path: "/_matrix/federation/v1/get_missing_events/{roomId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: { roomId: pathParameter("The room ID to search in.") },
      required: ["roomId"],
    },
    query: noParameters,
    body: {
      type: "object",
      properties: {
        limit: { type: "integer", default: 10, description: "The maximum number of events to return; 10 by default." },
        min_depth: { type: "integer", default: 0, description: "The minimum depth of events to return; 0 by default." },
        earliest_events: { ...eventIdList, description: "Event IDs the requester already has; the walk skips them." },
        latest_events: { ...eventIdList, description: "Event IDs whose missing ancestors are wanted." },
      },
      required: ["earliest_events", "latest_events"],
    },
    response: {
      type: "object",
      properties: { events: { ...pduList, description: "The missing events." } },
      required: ["events"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1get_missing_eventsroomid",
  description: "Retrieve previous events that the sender is missing.",
});
