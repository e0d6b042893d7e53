/**
 * `PUT /_matrix/federation/v1/send/{txnId}`: push PDUs and EDUs.
 *
 * @module
 */

import { noParameters, pathParameter, pdu } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Send a transaction (server-server API § "Transactions"). The limits of 50 PDUs and 100
 * EDUs reject the whole transaction; anything wrong inside one PDU or EDU must not, so
 * both are checked only for being objects here. PDUs are validated per room version and
 * reported per event ID in the response; EDUs are checked per `edu_type` and dropped alone.
 */
export const v1 = defineEndpoint({
  name: "send_transaction_message",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/send/{txnId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { txnId: pathParameter("The transaction ID, unique per origin; retries reuse it.") },
      required: ["txnId"],
    },
    query: noParameters,
    body: {
      type: "object",
      title: "Transaction",
      properties: {
        origin: { type: "string", description: "The server name of the sending homeserver." },
        origin_server_ts: { type: "integer", description: "Ms since the epoch on the origin when the transaction started." },
        pdus: { type: "array", items: pdu, maxItems: 50, description: "At most 50 PDUs." },
        edus: {
          type: "array",
          maxItems: 100,
          description: "At most 100 EDUs (`{ edu_type, content }`); may be omitted.",
          items: { type: "object", title: "EDU" },
        },
      },
      required: ["origin", "origin_server_ts", "pdus"],
    },
    response: {
      type: "object",
      title: "PDU Processing Results",
      properties: {
        pdus: {
          type: "object",
          description: "Event ID to `{}` when the PDU was handled, or `{ error }` when it was not.",
          additionalProperties: {
            type: "object",
            title: "PDU Processing Result",
            properties: { error: { type: "string", description: "Why the PDU was not handled." } },
          },
        },
      },
      required: ["pdus"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1sendtxnid",
  description: "Push PDUs and EDUs to another server.",
});
