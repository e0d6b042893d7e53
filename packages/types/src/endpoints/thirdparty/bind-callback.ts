/**
 * `PUT /_matrix/federation/v1/3pid/onbind`: an identity server reports a new 3PID binding.
 *
 * @module
 */

import { emptyObject, noParameters, signedThirdPartyInvite } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Called by identity servers, not homeservers, so it carries no X-Matrix signature; the
 * invites it lists are checked through their `signed` blocks instead.
 */
export const v1 = defineEndpoint({
  name: "bind_callback",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/3pid/onbind",
  auth: "none",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    body: {
      type: "object",
      properties: {
        medium: { type: "string", description: "The kind of third-party identifier; only `email` so far." },
        address: { type: "string", description: "The third-party identifier itself." },
        mxid: { type: "string", pattern: "^@", description: "The user now bound to the identifier." },
        invites: {
          type: "array",
          description: "Pending invites the identifier had received.",
          items: {
            type: "object",
            title: "Third-party Invite",
            properties: {
              medium: { type: "string", description: "The kind of third-party identifier invited." },
              address: { type: "string", description: "The third-party identifier invited." },
              mxid: { type: "string", pattern: "^@", description: "The now-bound user." },
              room_id: { type: "string", pattern: "^!", description: "The room the invite is for." },
              sender: { type: "string", pattern: "^@", description: "The user who sent the invite." },
              signed: signedThirdPartyInvite,
            },
            required: ["medium", "address", "mxid", "room_id", "sender", "signed"],
          },
        },
      },
      required: ["medium", "address", "mxid", "invites"],
    },
    response: emptyObject,
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv13pidonbind",
  description: "Notify the server that a third-party identifier was bound to one of its users.",
});
