/**
 * `GET /.well-known/matrix/server`: server name delegation.
 *
 * @module
 */

import { noParameters } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Fetch the delegation file from `https://<hostname>/.well-known/matrix/server`. The path
 * has no version; it is `v1` so that every table entry has one. Discovery treats an
 * unparsable or invalid answer as "no delegation", not as a failure (server-server API §
 * "Resolving server names"), so callers check the body against this schema themselves.
 */
export const v1 = defineEndpoint({
  name: "discover_homeserver",
  version: "v1",
  method: "GET",
  path: "/.well-known/matrix/server",
  auth: "none",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    response: {
      type: "object",
      properties: {
        "m.server": {
          type: "string",
          description: "The delegated server name, with optional port, in the server-name grammar.",
        },
      },
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#getwell-knownmatrixserver",
  description: "Get the server to delegate server-server communication to.",
});
