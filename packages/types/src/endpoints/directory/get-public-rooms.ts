/**
 * `GET /_matrix/federation/v1/publicRooms`: the server's published room directory.
 *
 * @module
 */

import { booleanQuery, integerQuery, noParameters, publicRoomsResponse } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** List the rooms in the receiving server's own directory, a page at a time. */
export const v1 = defineEndpoint({
  name: "get_public_rooms",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/publicRooms",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: {
      type: "object",
      properties: {
        limit: integerQuery("The maximum number of rooms to return; 0 (no limit) by default."),
        since: { type: "string", description: "A pagination token from a previous response." },
        include_all_networks: booleanQuery("Whether to include rooms of all application service networks."),
        third_party_instance_id: {
          type: "string",
          description: "Only rooms of this third-party network; only when `include_all_networks` is false.",
        },
      },
    },
    response: publicRoomsResponse,
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1publicrooms",
  description: "List the server's published room directory.",
});
