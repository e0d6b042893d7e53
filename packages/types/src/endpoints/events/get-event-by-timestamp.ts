/**
 * `GET /_matrix/federation/v1/timestamp_to_event/{roomId}`: the event closest to a time.
 *
 * @module
 */

import { integerQuery, pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Find the event closest to a timestamp in one direction. The spec's OpenAPI lists an
 * access token as security here, a copy-paste from the client-server API; like every
 * other room-scoped federation endpoint it is authenticated with X-Matrix.
 */
export const v1 = defineEndpoint({
  name: "get_event_by_timestamp",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/timestamp_to_event/{roomId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { roomId: pathParameter("The room to search.") },
      required: ["roomId"],
    },
    query: {
      type: "object",
      properties: {
        ts: integerQuery("The timestamp to search from, ms since the epoch."),
        dir: { type: "string", enum: ["f", "b"], description: "`f` to search forwards, `b` backwards." },
      },
      required: ["ts", "dir"],
    },
    response: {
      type: "object",
      properties: {
        event_id: { type: "string", description: "The ID of the event found." },
        origin_server_ts: { type: "integer", description: "The event's timestamp, ms since the epoch." },
      },
      required: ["event_id", "origin_server_ts"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1timestamp_to_eventroomid",
  added: "v1.6",
  description: "Get the ID of the event closest to the given timestamp.",
});
