/**
 * `PUT /_matrix/federation/v{1,2}/send_leave/{roomId}/{eventId}`: submit a signed leave.
 *
 * @module
 */

import { emptyObject, noParameters, pathParameter, pdu } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

const path = {
  type: "object",
  properties: {
    roomId: pathParameter("The room being left."),
    eventId: pathParameter("The ID of the leave event."),
  },
  required: ["roomId", "eventId"],
} as const;

/**
 * The original send_leave, answering `[200, {}]`. Removed in v1.18 (MSC4376); kept to
 * leave through servers that only speak it.
 */
export const v1 = defineEndpoint({
  name: "create_leave_event",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/send_leave/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: {
    path,
    query: noParameters,
    body: pdu,
    response: {
      type: "array",
      items: [{ type: "integer", const: 200, description: "The value 200." }, emptyObject],
      minItems: 2,
      maxItems: 2,
      additionalItems: false,
    },
  },
  spec: "https://spec.matrix.org/v1.17/server-server-api/#put_matrixfederationv1send_leaveroomideventid",
  removed: "v1.18",
  description: "Submit a signed leave event to a resident server (legacy array response).",
});

/**
 * Submit a signed leave PDU. The spec's body schema also requires `depth` ("present but
 * ignored"); the body is a PDU, whose room-version format already has it.
 */
export const v2 = defineEndpoint({
  name: "create_leave_event",
  version: "v2",
  method: "PUT",
  path: "/_matrix/federation/v2/send_leave/{roomId}/{eventId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: true,
  schemas: { path, query: noParameters, body: pdu, response: emptyObject },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv2send_leaveroomideventid",
  description: "Submit a signed leave event to a resident server.",
});
