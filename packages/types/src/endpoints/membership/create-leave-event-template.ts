/**
 * `GET /_matrix/federation/v1/make_leave/{roomId}/{userId}`: a leave event template.
 *
 * @module
 */

import { membershipTemplateResponse, noParameters, pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Ask a resident server for a leave template: to leave, reject an invite or retract a knock. */
export const v1 = defineEndpoint({
  name: "create_leave_event_template",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/make_leave/{roomId}/{userId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path: {
      type: "object",
      properties: {
        roomId: pathParameter("The room about to be left."),
        userId: pathParameter("The leaving user; must belong to the requesting server."),
      },
      required: ["roomId", "userId"],
    },
    query: noParameters,
    response: membershipTemplateResponse("leave", ["event"]),
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1make_leaveroomiduserid",
  description: "Get a template for a leave event from a resident server.",
});
