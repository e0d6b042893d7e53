/**
 * `GET /_matrix/federation/v1/query/directory`: resolve a room alias.
 *
 * @module
 */

import { noParameters } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Resolve an alias of the receiving server to a room ID and servers likely in the room. */
export const v1 = defineEndpoint({
  name: "get_room_information",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/query/directory",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: {
      type: "object",
      properties: { room_alias: { type: "string", description: "The room alias to resolve." } },
      required: ["room_alias"],
    },
    response: {
      type: "object",
      properties: {
        room_id: { type: "string", description: "The room the alias points to." },
        servers: { type: "array", items: { type: "string" }, description: "Servers likely to be in the room." },
      },
      required: ["room_id", "servers"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1querydirectory",
  description: "Get the room ID and resident servers for a room alias.",
});
