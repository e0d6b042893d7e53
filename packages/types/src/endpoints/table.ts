/**
 * The federation endpoint table: every endpoint of the server-server API (Matrix v1.19),
 * plus the removed v1 `send_join`/`send_leave` for talking to older servers. The client's
 * typed methods, the server's routes, the CLI and the docs all iterate this table; nothing
 * else lists endpoints. Adding an endpoint is one file plus one line here.
 *
 * @module
 */

import * as getContent from "./authenticated-media/get-content.js";
import * as getContentThumbnail from "./authenticated-media/get-content-thumbnail.js";
import * as getDevices from "./device/get-devices.js";
import * as getFilteredPublicRooms from "./directory/get-filtered-public-rooms.js";
import * as getPublicRooms from "./directory/get-public-rooms.js";
import * as getRoomInformation from "./directory/get-room-information.js";
import * as discoverHomeserver from "./discovery/discover-homeserver.js";
import type { EndpointDefinition, HttpMethod } from "./endpoint.js";
import { matchPath } from "./endpoint.js";
import * as getBackfill from "./events/get-backfill.js";
import * as getEvent from "./events/get-event.js";
import * as getEventAuthorization from "./events/get-event-authorization.js";
import * as getEventByTimestamp from "./events/get-event-by-timestamp.js";
import * as getMissingEvents from "./events/get-missing-events.js";
import * as getRoomState from "./events/get-room-state.js";
import * as getRoomStateIds from "./events/get-room-state-ids.js";
import * as claimKeys from "./keys/claim-keys.js";
import * as getKeys from "./keys/get-keys.js";
import * as getRemoteServerKeys from "./keys/get-remote-server-keys.js";
import * as getRemoteServerKeysBatch from "./keys/get-remote-server-keys-batch.js";
import * as getServerKeys from "./keys/get-server-keys.js";
import * as createInvite from "./membership/create-invite.js";
import * as createJoinEvent from "./membership/create-join-event.js";
import * as createJoinEventTemplate from "./membership/create-join-event-template.js";
import * as createKnockEvent from "./membership/create-knock-event.js";
import * as createKnockEventTemplate from "./membership/create-knock-event-template.js";
import * as createLeaveEvent from "./membership/create-leave-event.js";
import * as createLeaveEventTemplate from "./membership/create-leave-event-template.js";
import * as getOpenidUserinfo from "./openid/get-openid-userinfo.js";
import * as signEvent from "./policy/sign-event.js";
import * as getCustomInformation from "./query/get-custom-information.js";
import * as getProfileInformation from "./query/get-profile-information.js";
import * as getServerVersion from "./server/get-server-version.js";
import * as getHierarchy from "./space/get-hierarchy.js";
import * as bindCallback from "./thirdparty/bind-callback.js";
import * as exchangeThirdPartyInvite from "./thirdparty/exchange-third-party-invite.js";
import * as sendTransactionMessage from "./transactions/send-transaction-message.js";

/**
 * Every endpoint by name, then by version (`ENDPOINTS_BY_NAME.create_join_event.v2`), as
 * ruma's modules are laid out.
 */
export const ENDPOINTS_BY_NAME = Object.freeze({
  discover_homeserver: discoverHomeserver,
  get_server_version: getServerVersion,
  get_server_keys: getServerKeys,
  get_remote_server_keys: getRemoteServerKeys,
  get_remote_server_keys_batch: getRemoteServerKeysBatch,
  send_transaction_message: sendTransactionMessage,
  get_event: getEvent,
  get_room_state: getRoomState,
  get_room_state_ids: getRoomStateIds,
  get_event_authorization: getEventAuthorization,
  get_backfill: getBackfill,
  get_missing_events: getMissingEvents,
  get_event_by_timestamp: getEventByTimestamp,
  create_join_event_template: createJoinEventTemplate,
  create_join_event: createJoinEvent,
  create_knock_event_template: createKnockEventTemplate,
  create_knock_event: createKnockEvent,
  create_invite: createInvite,
  create_leave_event_template: createLeaveEventTemplate,
  create_leave_event: createLeaveEvent,
  exchange_third_party_invite: exchangeThirdPartyInvite,
  bind_callback: bindCallback,
  get_public_rooms: getPublicRooms,
  get_filtered_public_rooms: getFilteredPublicRooms,
  get_hierarchy: getHierarchy,
  get_custom_information: getCustomInformation,
  get_room_information: getRoomInformation,
  get_profile_information: getProfileInformation,
  get_openid_userinfo: getOpenidUserinfo,
  get_devices: getDevices,
  claim_keys: claimKeys,
  get_keys: getKeys,
  get_content: getContent,
  get_content_thumbnail: getContentThumbnail,
  sign_event: signEvent,
});

type ByName = typeof ENDPOINTS_BY_NAME;

/** The name of a federation endpoint (`create_join_event`). */
export type FederationEndpointName = keyof ByName;

/** Any entry of the table, as the union of their precise types. */
export type FederationEndpoint = { [N in FederationEndpointName]: ByName[N][keyof ByName[N]] }[FederationEndpointName];

/**
 * Every endpoint version, in table order (removed versions included, marked `removed`).
 * Typed for iteration; {@link ENDPOINTS_BY_NAME} keeps each entry's precise type.
 */
export const ENDPOINTS: readonly EndpointDefinition[] = Object.freeze(
  Object.values(ENDPOINTS_BY_NAME).flatMap((versions): EndpointDefinition[] => Object.values(versions)),
);

/** {@link findEndpoint}'s answer when an endpoint serves the method and path. */
export interface EndpointMatch {
  readonly pathKnown: true;
  readonly methodAllowed: true;
  readonly endpoint: EndpointDefinition;
  /** The decoded path parameters. */
  readonly params: Readonly<Record<string, string>>;
}

/** {@link findEndpoint}'s answer when the path is known but not for this method (405). */
export interface MethodNotAllowed {
  readonly pathKnown: true;
  readonly methodAllowed: false;
  /** The methods the path does serve, for the `Allow` header. */
  readonly allowedMethods: readonly HttpMethod[];
}

interface Route {
  readonly endpoint: EndpointDefinition;
  /** Per segment, whether it is a literal: literals outrank parameters. */
  readonly literal: readonly boolean[];
}

const ROUTES: readonly Route[] = ENDPOINTS.map((endpoint) => ({
  endpoint,
  literal: endpoint.path.split("/").map((segment) => !segment.startsWith("{")),
}));

/**
 * Compares the specificity of two templates matching the same path: at the first segment
 * where one is literal and the other a parameter, the literal one wins, so
 * `/query/profile` beats `/query/{queryType}` whatever the table order.
 */
function moreSpecific(a: Route, b: Route): number {
  for (let i = 0; i < a.literal.length; i++) {
    if (a.literal[i] !== b.literal[i]) return a.literal[i] ? -1 : 1;
  }
  return 0;
}

/**
 * Routes a request: the endpoint serving `method` on `rawPath` (the request-target as
 * received, percent-encoded; a query string is ignored) with its decoded parameters; or,
 * when the path exists only for other methods, a 405 answer; or `undefined` (404). Both
 * misses are `M_UNRECOGNIZED`, which peers use to detect unsupported endpoints
 * (server-server API § "Unsupported endpoints").
 */
export function findEndpoint(method: string, rawPath: string): EndpointMatch | MethodNotAllowed | undefined {
  const wanted = method.toUpperCase();
  const matches: { route: Route; params: Record<string, string> }[] = [];
  for (const route of ROUTES) {
    const params = matchPath(route.endpoint.path, rawPath);
    if (params !== undefined) matches.push({ route, params });
  }
  if (matches.length === 0) return undefined;
  matches.sort((a, b) => moreSpecific(a.route, b.route));
  const best = matches.find((m) => m.route.endpoint.method === wanted);
  if (best !== undefined) {
    return { pathKnown: true, methodAllowed: true, endpoint: best.route.endpoint, params: best.params };
  }
  const allowedMethods = [...new Set(matches.map((m) => m.route.endpoint.method))];
  return { pathKnown: true, methodAllowed: false, allowedMethods };
}

/** The table entry with this name and version, if any. */
export function getEndpoint(name: string, version: string): EndpointDefinition | undefined {
  return ENDPOINTS.find((e) => e.name === name && e.version === version);
}
