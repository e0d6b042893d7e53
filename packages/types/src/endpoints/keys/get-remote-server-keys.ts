/**
 * `GET /_matrix/key/v2/query/{serverName}`: a notary's copy of one server's keys.
 *
 * @module
 */

import { integerQuery, pathParameter, serverKeysQueryResponse } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Ask a notary for one server's keys (server-server API § "Querying Keys Through Another Server"). */
export const v2 = defineEndpoint({
  name: "get_remote_server_keys",
  version: "v2",
  method: "GET",
  path: "/_matrix/key/v2/query/{serverName}",
  auth: "none",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { serverName: pathParameter("The server name whose keys are wanted.") },
      required: ["serverName"],
    },
    query: {
      type: "object",
      properties: {
        minimum_valid_until_ts: integerQuery(
          "Ms since the epoch the keys should stay valid until; the notary uses now when absent.",
        ),
      },
    },
    response: serverKeysQueryResponse,
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixkeyv2queryservername",
  description: "Query a notary server for another server's keys.",
});
