/**
 * `GET /_matrix/federation/v1/user/devices/{userId}`: a local user's device list.
 *
 * @module
 */

import { crossSigningKey, deviceKeys, noParameters, pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Get all devices of a user of the receiving server. `stream_id` anchors the
 * `m.device_list_update` EDUs that follow, so this is also how a device list is resynced.
 */
export const v1 = defineEndpoint({
  name: "get_devices",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/user/devices/{userId}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { userId: pathParameter("The user, local to the receiving server.") },
      required: ["userId"],
    },
    query: noParameters,
    response: {
      type: "object",
      properties: {
        user_id: { type: "string", description: "The user the devices belong to." },
        stream_id: { type: "integer", description: "The version of the device list, matched by EDU `stream_id`s." },
        devices: {
          type: "array",
          description: "The user's devices; may be empty.",
          items: {
            type: "object",
            title: "User Device",
            properties: {
              device_id: { type: "string", description: "The device ID." },
              keys: deviceKeys,
              device_display_name: { type: "string", description: "The device's display name, if any." },
            },
            required: ["device_id", "keys"],
          },
        },
        master_key: crossSigningKey,
        self_signing_key: crossSigningKey,
      },
      required: ["user_id", "stream_id", "devices"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1userdevicesuserid",
  description: "Get all of a user's devices.",
});
