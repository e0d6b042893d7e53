/**
 * `POST /_matrix/policy/v1/sign`: ask a policy server to sign an event.
 *
 * @module
 */

import { noParameters, pdu, signatures } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Ask a room's policy server (v1.18, MSC4284) to sign a PDU. The answer holds only the
 * policy server's signature block (`ed25519:policy_server`), to merge into the event's
 * `signatures` without dropping the others. Never called for the `m.room.policy` state
 * event with an empty state key. A 404 `M_UNRECOGNIZED` means "not a policy server".
 */
export const v1 = defineEndpoint({
  name: "sign_event",
  version: "v1",
  method: "POST",
  path: "/_matrix/policy/v1/sign",
  auth: "x-matrix",
  rateLimited: true,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    body: { ...pdu, description: "The PDU to sign, formatted per its room version." },
    response: { ...signatures, description: "The policy server's signatures: its name to key ID to signature." },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#post_matrixpolicyv1sign",
  added: "v1.18",
  description: "Ask the room's policy server to sign an event.",
});
