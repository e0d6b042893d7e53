/**
 * `GET /_matrix/federation/v1/query/profile`: a local user's public profile.
 *
 * @module
 */

import { noParameters } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

const nullableString = <const D extends string>(description: D) =>
  ({ anyOf: [{ type: "string" }, { type: "null" }], description }) as const;

/**
 * Get one field, or all public fields, of a user of the receiving server. An unset field
 * is omitted or `null`; servers may add custom fields. `m.tz` is left untyped because
 * requesters must tolerate invalid values.
 */
export const v1 = defineEndpoint({
  name: "get_profile_information",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/query/profile",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: {
      type: "object",
      properties: {
        user_id: { type: "string", description: "The user, local to the receiving server." },
        field: {
          type: "string",
          description: "Only this field (`displayname`, `avatar_url`, `m.tz` or a custom one); all when absent.",
        },
      },
      required: ["user_id"],
    },
    response: {
      type: "object",
      properties: {
        displayname: nullableString("The display name; omitted or null if unset."),
        avatar_url: nullableString("The avatar's mxc:// URL; omitted or null if unset."),
        "m.tz": { description: "The user's time zone, an IANA name (v1.16); may be invalid." },
      },
      additionalProperties: true,
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1queryprofile",
  description: "Get profile information about a user of the receiving server.",
});
