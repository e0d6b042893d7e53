/**
 * `GET /_matrix/federation/v1/version`: implementation name and version.
 *
 * @module
 */

import { noParameters } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Get the implementation name and version of the homeserver. */
export const v1 = defineEndpoint({
  name: "get_server_version",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/version",
  auth: "none",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    response: {
      type: "object",
      properties: {
        server: {
          type: "object",
          title: "Server",
          properties: {
            name: { type: "string", description: "Name of the implementation." },
            version: { type: "string", description: "Version of the implementation, in its own format." },
          },
        },
      },
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1version",
  description: "Get the implementation name and version of this homeserver.",
});
