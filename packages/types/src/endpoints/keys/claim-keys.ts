/**
 * `POST /_matrix/federation/v1/user/keys/claim`: claim one-time (or fallback) keys.
 *
 * @module
 */

import { noParameters, signatures } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Claim one-time keys of the receiving server's users' devices (server-server API § "End-to-End Encryption"). */
export const v1 = defineEndpoint({
  name: "claim_keys",
  version: "v1",
  method: "POST",
  path: "/_matrix/federation/v1/user/keys/claim",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    body: {
      type: "object",
      properties: {
        one_time_keys: {
          type: "object",
          description: "User ID (local to the receiver) to device ID to key algorithm.",
          additionalProperties: { type: "object", additionalProperties: { type: "string" } },
        },
      },
      required: ["one_time_keys"],
    },
    response: {
      type: "object",
      properties: {
        one_time_keys: {
          type: "object",
          description: "User ID to device ID to `<algorithm>:<key_id>` to the key (a string, or a signed key object).",
          additionalProperties: {
            type: "object",
            additionalProperties: {
              type: "object",
              additionalProperties: {
                anyOf: [
                  { type: "string" },
                  {
                    type: "object",
                    title: "KeyObject",
                    properties: {
                      key: { type: "string", description: "The key, unpadded base64." },
                      signatures,
                    },
                    required: ["key", "signatures"],
                  },
                ],
              },
            },
          },
        },
      },
      required: ["one_time_keys"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1userkeysclaim",
  description: "Claim one-time encryption keys for devices of the receiving server's users.",
});
