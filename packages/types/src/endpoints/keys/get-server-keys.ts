/**
 * `GET /_matrix/key/v2/server`: a server's own signing keys.
 *
 * @module
 */

import { noParameters, serverKeys } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Fetch the server's published signing keys, self-signed (server-server API § "Publishing Keys"). */
export const v2 = defineEndpoint({
  name: "get_server_keys",
  version: "v2",
  method: "GET",
  path: "/_matrix/key/v2/server",
  auth: "none",
  rateLimited: false,
  aclProtected: false,
  schemas: { path: noParameters, query: noParameters, response: serverKeys },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixkeyv2server",
  description: "Get the homeserver's published signing keys.",
});
