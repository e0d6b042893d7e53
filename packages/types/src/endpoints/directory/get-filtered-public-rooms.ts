/**
 * `POST /_matrix/federation/v1/publicRooms`: the room directory, filtered.
 *
 * @module
 */

import { noParameters, publicRoomsResponse } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** List the receiving server's directory with a filter. ruma calls this `get_public_rooms_filtered`. */
export const v1 = defineEndpoint({
  name: "get_filtered_public_rooms",
  version: "v1",
  method: "POST",
  path: "/_matrix/federation/v1/publicRooms",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    body: {
      type: "object",
      description: "Options; an empty object for the defaults.",
      properties: {
        limit: { type: "integer", description: "The maximum number of rooms to return." },
        since: { type: "string", description: "A pagination token from a previous response." },
        filter: {
          type: "object",
          title: "Filter",
          properties: {
            generic_search_term: { type: "string", description: "Text to look for in the rooms' name, topic, alias..." },
            room_types: {
              type: "array",
              description: "Room types to include; `null` stands for rooms without a type (v1.4).",
              items: { anyOf: [{ type: "string" }, { type: "null" }] },
            },
          },
        },
        include_all_networks: { type: "boolean", description: "Whether to include rooms of all networks." },
        third_party_instance_id: { type: "string", description: "Only rooms of this third-party network." },
      },
    },
    response: publicRoomsResponse,
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1publicrooms",
  description: "List the server's published room directory with an optional filter.",
});
