/**
 * `GET /_matrix/federation/v1/make_join/{roomId}/{userId}`: a join event template.
 *
 * @module
 */

import { membershipTemplateResponse, pathParameter, repeatedQuery } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Ask a resident server for a join template (server-server API § "Joining Rooms"). The
 * caller must check that the template's `room_id`, `sender`, `state_key`, `type` and
 * `membership` match its request before signing it.
 */
export const v1 = defineEndpoint({
  name: "create_join_event_template",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/make_join/{roomId}/{userId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: {
        roomId: pathParameter("The room about to be joined."),
        userId: pathParameter("The joining user; must belong to the requesting server."),
      },
      required: ["roomId", "userId"],
    },
    query: {
      type: "object",
      properties: {
        ver: repeatedQuery("Room versions the requesting server supports; `[\"1\"]` when absent."),
      },
    },
    response: membershipTemplateResponse("join", ["event"]),
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1make_joinroomiduserid",
  description: "Get a template for a join event from a resident server.",
});
