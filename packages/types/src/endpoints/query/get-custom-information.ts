/**
 * `GET /_matrix/federation/v1/query/{queryType}`: the generic query endpoint.
 *
 * @module
 */

import { pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * A query of any type. The known types (`directory`, `profile`) have their own entries,
 * which the router prefers because their paths are literal.
 */
export const v1 = defineEndpoint({
  name: "get_custom_information",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/query/{queryType}",
  auth: "x-matrix",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: {
      type: "object",
      properties: { queryType: pathParameter("The type of query.") },
      required: ["queryType"],
    },
    query: { type: "object", description: "Arguments; they depend on the query type." },
    response: { type: "object", description: "The answer; its shape depends on the query type." },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1queryquerytype",
  description: "Perform a query of the given type.",
});
