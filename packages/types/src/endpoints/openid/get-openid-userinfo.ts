/**
 * `GET /_matrix/federation/v1/openid/userinfo`: who owns an OpenID token.
 *
 * @module
 */

import { noParameters } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Exchange an OpenID access token for its owner's user ID. The caller must check that the
 * returned `sub` belongs to the server it asked (v1.18).
 */
export const v1 = defineEndpoint({
  name: "get_openid_userinfo",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/openid/userinfo",
  auth: "access-token-query",
  rateLimited: false,
  aclProtected: false,
  schemas: {
    path: noParameters,
    query: {
      type: "object",
      properties: { access_token: { type: "string", description: "The OpenID access token." } },
      required: ["access_token"],
    },
    response: {
      type: "object",
      properties: { sub: { type: "string", description: "The user ID that generated the token." } },
      required: ["sub"],
    },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1openiduserinfo",
  description: "Exchange an OpenID access token for information about its owner.",
});
