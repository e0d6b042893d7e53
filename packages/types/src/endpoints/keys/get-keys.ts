/**
 * `POST /_matrix/federation/v1/user/keys/query`: device and cross-signing keys.
 *
 * @module
 */

import { crossSigningKey, deviceKeys, noParameters } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Download device identity keys and cross-signing keys of the receiving server's users. */
export const v1 = defineEndpoint({
  name: "get_keys",
  version: "v1",
  method: "POST",
  path: "/_matrix/federation/v1/user/keys/query",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    body: {
      type: "object",
      properties: {
        device_keys: {
          type: "object",
          description: "User ID (local to the receiver) to device IDs; an empty list means all devices.",
          additionalProperties: { type: "array", items: { type: "string" } },
        },
      },
      required: ["device_keys"],
    },
    response: {
      type: "object",
      properties: {
        device_keys: {
          type: "object",
          description: "User ID to device ID to the device keys, plus unsigned data.",
          additionalProperties: {
            type: "object",
            additionalProperties: {
              ...deviceKeys,
              properties: {
                ...deviceKeys.properties,
                unsigned: {
                  type: "object",
                  title: "UnsignedDeviceInfo",
                  properties: {
                    device_display_name: { type: "string", description: "The device's display name." },
                  },
                },
              },
            },
          },
        },
        master_keys: {
          type: "object",
          description: "User ID to master cross-signing key (v1.1).",
          additionalProperties: crossSigningKey,
        },
        self_signing_keys: {
          type: "object",
          description: "User ID to self-signing key (v1.1). User-signing keys are never federated.",
          additionalProperties: crossSigningKey,
        },
      },
      required: ["device_keys"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1userkeysquery",
  description: "Download device identity keys of the receiving server's users.",
});
