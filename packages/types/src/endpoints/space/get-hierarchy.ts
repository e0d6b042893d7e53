/**
 * `GET /_matrix/federation/v1/hierarchy/{roomId}`: a space and its children.
 *
 * @module
 */

import { booleanQuery, pathParameter, roomSummaryProperties, roomSummaryRequired } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Get a space room and every child the requesting server could peek or join, unpaginated. */
export const v1 = defineEndpoint({
  name: "get_hierarchy",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/hierarchy/{roomId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { roomId: pathParameter("The space room.") },
      required: ["roomId"],
    },
    query: {
      type: "object",
      properties: { suggested_only: booleanQuery("Only consider suggested children; `false` by default.") },
    },
    response: {
      type: "object",
      properties: {
        room: {
          type: "object",
          title: "SpaceHierarchyParentRoom",
          properties: {
            ...roomSummaryProperties,
            children_state: {
              type: "array",
              description: "The room's `m.space.child` events, as stripped state with `origin_server_ts`.",
              items: {
                type: "object",
                properties: {
                  type: { type: "string", description: "The event type." },
                  state_key: { type: "string", description: "The state key: the child room ID." },
                  sender: { type: "string", description: "The sender of the event." },
                  content: { type: "object", description: "The event content." },
                  origin_server_ts: { type: "integer", description: "The event's timestamp." },
                },
                required: ["type", "state_key", "content", "sender", "origin_server_ts"],
              },
            },
          },
          required: [...roomSummaryRequired, "children_state"],
        },
        children: {
          type: "array",
          description: "Summaries of the children the requesting server can peek or join.",
          items: {
            type: "object",
            title: "SpaceHierarchyChildRoomsChunk",
            properties: roomSummaryProperties,
            required: roomSummaryRequired,
          },
        },
        inaccessible_children: {
          type: "array",
          items: { type: "string" },
          description: "Children the requesting server cannot reach from anywhere; not to be asked again.",
        },
      },
      required: ["room", "children", "inaccessible_children"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1hierarchyroomid",
  added: "v1.2",
  description: "Get a space room and its children.",
});
