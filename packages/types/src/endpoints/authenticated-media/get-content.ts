/**
 * `GET /_matrix/federation/v1/media/download/{mediaId}`: download media.
 *
 * @module
 */

import { emptyObject, integerQuery, pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Download media of the receiving server (v1.11). The answer is `multipart/mixed` with
 * exactly two parts: JSON metadata (`{}` today, which is what the response schema
 * describes), then either the bytes or a `Location` header to fetch them from (not to be
 * cached). A 404 `M_UNRECOGNIZED` means the server predates this endpoint.
 */
export const v1 = defineEndpoint({
  name: "get_content",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/media/download/{mediaId}",
  auth: "x-matrix",
  rateLimited: true,
  aclProtected: false,
  responseContentType: "multipart/mixed",
  schemas: {
    path: {
      type: "object",
      properties: { mediaId: pathParameter("The media ID: the path of the mxc:// URI.") },
      required: ["mediaId"],
    },
    query: {
      type: "object",
      properties: {
        timeout_ms: integerQuery("How long to wait for not-yet-uploaded media, in ms; 20000 by default."),
      },
    },
    response: { ...emptyObject, description: "The metadata part of the multipart response." },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1mediadownloadmediaid",
  added: "v1.11",
  description: "Download content from the content repository.",
});
