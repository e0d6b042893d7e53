/**
 * `POST /_matrix/key/v2/query`: a notary's copy of several servers' keys.
 *
 * @module
 */

import { noParameters, serverKeysQueryResponse } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/** Ask a notary for the keys of several servers at once. */
export const v2 = defineEndpoint({
  name: "get_remote_server_keys_batch",
  version: "v2",
  method: "POST",
  path: "/_matrix/key/v2/query",
  auth: "none",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: noParameters,
    body: {
      type: "object",
      properties: {
        server_keys: {
          type: "object",
          description:
            "Server name to key ID to criteria. No key IDs for a server means all its keys; no servers means an empty answer.",
          additionalProperties: {
            type: "object",
            additionalProperties: {
              type: "object",
              title: "Query Criteria",
              properties: {
                minimum_valid_until_ts: {
                  type: "integer",
                  description: "Ms since the epoch the key should stay valid until; now when absent.",
                },
              },
            },
          },
        },
      },
      required: ["server_keys"],
    },
    response: serverKeysQueryResponse,
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#post_matrixkeyv2query",
  description: "Query a notary server for several servers' keys in one request.",
});
