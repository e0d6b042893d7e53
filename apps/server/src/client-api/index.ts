/**
 * The Client-Server API subset (see {@link createClientApi}) and local users.
 *
 * @module
 */

export { CLIENT_VERSIONS, createClientApi, readCreateRoom } from "./client-api.js";
export type { ClientApiOptions } from "./client-api.js";
export { toClientEvent } from "./client-event.js";
export type { ClientEvent } from "./client-event.js";
export { federationUnavailable } from "./remote.js";
export type { RemoteHistory, RemoteMembership, RemoteQueries } from "./remote.js";
export { MAX_BODY_BYTES, createRouteHandler } from "./routing.js";
export type { Method, Route, RouteRequest, RouteResponse } from "./routing.js";
export { accessTokenOf, authenticate, newAccessToken, newDeviceId, registerLocalUser } from "./users.js";
export type { RegisteredUser } from "./users.js";
