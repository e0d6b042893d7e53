/**
 * `GET /_matrix/federation/v1/make_knock/{roomId}/{userId}`: a knock event template.
 *
 * @module
 */

import { membershipTemplateResponse, pathParameter, repeatedQuery } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Ask a resident server for a knock template (server-server API § "Knocking upon a room"). */
export const v1 = defineEndpoint({
  name: "create_knock_event_template",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/make_knock/{roomId}/{userId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: {
        roomId: pathParameter("The room about to be knocked on."),
        userId: pathParameter("The knocking user; must belong to the requesting server."),
      },
      required: ["roomId", "userId"],
    },
    query: {
      type: "object",
      properties: { ver: { ...repeatedQuery("Room versions the requesting server supports."), minItems: 1 } },
      required: ["ver"],
    },
    response: membershipTemplateResponse("knock", ["room_version", "event"]),
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1make_knockroomiduserid",
  added: "v1.1",
  description: "Get a template for a knock event from a resident server.",
});
