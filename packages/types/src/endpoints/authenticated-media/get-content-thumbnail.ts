/**
 * `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`: download a thumbnail.
 *
 * @module
 */

import { booleanQuery, emptyObject, integerQuery, pathParameter } from "../components.js";
import { defineEndpoint } from "../endpoint.js";

/**
 * Download a thumbnail of media of the receiving server (v1.11). Same two-part
 * `multipart/mixed` answer as `get_content`. `animated=false` forbids an animated
 * thumbnail; when absent, one should not be returned.
 */
export const v1 = defineEndpoint({
  name: "get_content_thumbnail",
  version: "v1",
  method: "GET",
  path: "/_matrix/federation/v1/media/thumbnail/{mediaId}",
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
        width: integerQuery("The desired width; the thumbnail may be larger."),
        height: integerQuery("The desired height; the thumbnail may be larger."),
        method: { type: "string", enum: ["crop", "scale"], description: "The resizing method." },
        timeout_ms: integerQuery("How long to wait for not-yet-uploaded media, in ms; 20000 by default."),
        animated: booleanQuery("Whether an animated thumbnail is preferred (v1.11)."),
      },
      required: ["width", "height"],
    },
    response: { ...emptyObject, description: "The metadata part of the multipart response." },
  },
  spec: "https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1mediathumbnailmediaid",
  added: "v1.11",
  description: "Download a thumbnail of content from the content repository.",
});
