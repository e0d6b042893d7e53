/**
 * `PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}`: turn a 3PID invite
 * into a Matrix invite.
 *
 * @module
 */

import { emptyObject, noParameters, signedThirdPartyInvite } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Ask a server in the room to check a partial `m.room.member` invite built from a
 * third-party invite and to issue the invite proper before answering (server-server API
 * § "Third-party invites"). ruma calls this `exchange_invite`.
 */
export const v1 = defineEndpoint({
  name: "exchange_third_party_invite",
  version: "v1",
  method: "PUT",
  path: "/_matrix/federation/v1/exchange_third_party_invite/{roomId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { roomId: { type: "string", pattern: "^!", description: "The room the invite is for." } },
      required: ["roomId"],
    },
    query: noParameters,
    body: {
      type: "object",
      description: "A partial `m.room.member` event.",
      properties: {
        type: { type: "string", description: "The event type, `m.room.member`." },
        room_id: { type: "string", pattern: "^!", description: "The room ID; must equal the path's." },
        sender: {
          type: "string",
          pattern: "^@",
          description: "The user who sent the original `m.room.third_party_invite`.",
        },
        state_key: { type: "string", pattern: "^@", description: "The invited user." },
        content: {
          type: "object",
          title: "Event Content",
          properties: {
            membership: { type: "string", description: "The value `invite`." },
            third_party_invite: {
              type: "object",
              title: "Third-party Invite",
              properties: {
                display_name: { type: "string", description: "A name to show instead of the third-party identifier." },
                signed: signedThirdPartyInvite,
              },
              required: ["display_name", "signed"],
            },
          },
          required: ["membership", "third_party_invite"],
        },
      },
      required: ["type", "room_id", "sender", "state_key", "content"],
    },
    response: emptyObject,
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1exchange_third_party_inviteroomid",
  description: "Ask a server to authorise a third-party invite and issue the invite.",
});
