/**
 * The room-version table: every rule that differs between Matrix room versions 1-12,
 * as data. Code that behaves differently per room version reads a flag from here
 * instead of comparing version strings.
 *
 * Source: the Matrix specification v1.19, "Room Versions" (content/rooms/v1.md-v12.md).
 *
 * @module
 */

/**
 * How a PDU is laid out on the wire.
 * - `"v1"`: rooms 1-2; the event carries its own `event_id`, and `prev_events` /
 *   `auth_events` are `[eventId, { sha256 }]` pairs.
 * - `"v3"`: rooms 3-11; no `event_id` field, `prev_events` / `auth_events` are plain ID lists.
 * - `"v12"`: room 12; as `"v3"`, but the create event has no `room_id` and every other
 *   event's `room_id` is the create event's ID with a `!` sigil.
 */
export type EventFormat = "v1" | "v3" | "v12";

/**
 * How event IDs are formed.
 * - `"legacy"`: `$opaque:server`, chosen by the sending server (rooms 1-2).
 * - `"base64"`: `$` + unpadded standard base64 of the reference hash (room 3).
 * - `"urlsafe"`: `$` + unpadded URL-safe base64 of the reference hash (rooms 4+).
 */
export type EventIdFormat = "legacy" | "base64" | "urlsafe";

/** Which redaction algorithm applies (named after the room version that introduced it). */
export type RedactionAlgorithm = "v1" | "v6" | "v8" | "v9" | "v11";

/** Which state resolution algorithm applies. */
export type StateResolutionAlgorithm = "v1" | "v2" | "v2.1";

/** Flags for the authorization rules; each names the change it represents. */
export interface AuthRuleFlags {
  /** Rooms 1-5: `m.room.aliases` events are authorised by the special "aliases" rule. */
  readonly specialCaseAliases: boolean;
  /**
   * Rooms 1-2: a redaction is allowed when the redacting and redacted events' `event_id`
   * domains match (auth rule 11). From room 3 this moved to "handling redactions".
   */
  readonly redactionDomainCheck: boolean;
  /** Rooms 6+: `notifications` is included in power-level change checks. */
  readonly limitNotificationsPowerLevels: boolean;
  /** Rooms 7+: `knock` membership and the `knock` join rule. */
  readonly knocking: boolean;
  /** Rooms 8+: the `restricted` join rule and `join_authorised_via_users_server`. */
  readonly restrictedJoins: boolean;
  /** Rooms 10+: the `knock_restricted` join rule. */
  readonly knockRestricted: boolean;
  /** Rooms 10+: power levels must be JSON integers (no strings). */
  readonly integerPowerLevels: boolean;
  /** Rooms 1-5: floats in power levels are truncated rather than rejected (pre-strict JSON). */
  readonly floatPowerLevels: boolean;
  /** Rooms 11+: the create event's `sender` is the creator (no `content.creator`). */
  readonly implicitRoomCreator: boolean;
  /** Rooms 11+: `redacts` lives in `content` of `m.room.redaction` events. */
  readonly redactsInContent: boolean;
  /**
   * Room 12: creators (create sender and `additional_creators`) have infinite power,
   * may not appear in `users`, the create event is never an auth event and the room ID
   * is derived from the create event.
   */
  readonly privilegedCreators: boolean;
}

/** Everything that depends on the room version. */
export interface RoomVersionRules {
  /** The version string, e.g. `"12"`. */
  readonly id: string;
  readonly stability: "stable" | "unstable";
  readonly eventFormat: EventFormat;
  readonly eventIdFormat: EventIdFormat;
  readonly redaction: RedactionAlgorithm;
  readonly stateResolution: StateResolutionAlgorithm;
  /** Rooms 6+: events must be valid canonical JSON (integers in ±(2^53-1), no floats). */
  readonly strictCanonicalJson: boolean;
  /** Rooms 5+: a signing key must be valid (`valid_until_ts`) at the event's `origin_server_ts`. */
  readonly enforceKeyValidity: boolean;
  /**
   * Rooms 11+: the 255-byte limits on `type`, `state_key`, `sender`, `room_id` and `event_id`
   * are enforced strictly. In earlier rooms an event over the byte limit but within 255 code
   * points is persisted as rejected instead of dropped, because Synapse once accepted such
   * events (Synapse's `LENIENT_EVENT_BYTE_LIMITS_ROOM_VERSIONS` are 1-10).
   */
  readonly strictEventByteLimits: boolean;
  /** Largest `depth` accepted: 2^63-1 for rooms 1-5, 2^53-1 for rooms 6+ (strict canonical JSON). */
  readonly maxDepth: bigint;
  readonly auth: AuthRuleFlags;
}

const BASE: RoomVersionRules = {
  id: "1",
  stability: "stable",
  eventFormat: "v1",
  eventIdFormat: "legacy",
  redaction: "v1",
  stateResolution: "v1",
  strictCanonicalJson: false,
  enforceKeyValidity: false,
  strictEventByteLimits: false,
  maxDepth: 2n ** 63n - 1n,
  auth: {
    specialCaseAliases: true,
    redactionDomainCheck: true,
    limitNotificationsPowerLevels: false,
    knocking: false,
    restrictedJoins: false,
    knockRestricted: false,
    integerPowerLevels: false,
    floatPowerLevels: true,
    implicitRoomCreator: false,
    redactsInContent: false,
    privilegedCreators: false,
  },
};

function derive(
  from: RoomVersionRules,
  id: string,
  changes: Partial<Omit<RoomVersionRules, "auth" | "id">>,
  authChanges: Partial<AuthRuleFlags> = {},
): RoomVersionRules {
  return Object.freeze({
    ...from,
    ...changes,
    id,
    auth: Object.freeze({ ...from.auth, ...authChanges }),
  });
}

const V1 = derive(BASE, "1", {});
const V2 = derive(V1, "2", { stateResolution: "v2" });
const V3 = derive(V2, "3", { eventFormat: "v3", eventIdFormat: "base64" }, { redactionDomainCheck: false });
const V4 = derive(V3, "4", { eventIdFormat: "urlsafe" });
const V5 = derive(V4, "5", { enforceKeyValidity: true });
const V6 = derive(
  V5,
  "6",
  { redaction: "v6", strictCanonicalJson: true, maxDepth: 2n ** 53n - 1n },
  { specialCaseAliases: false, limitNotificationsPowerLevels: true, floatPowerLevels: false },
);
const V7 = derive(V6, "7", {}, { knocking: true });
const V8 = derive(V7, "8", { redaction: "v8" }, { restrictedJoins: true });
const V9 = derive(V8, "9", { redaction: "v9" });
const V10 = derive(V9, "10", {}, { knockRestricted: true, integerPowerLevels: true });
const V11 = derive(V10, "11", { redaction: "v11", strictEventByteLimits: true }, { implicitRoomCreator: true, redactsInContent: true });
const V12 = derive(
  V11,
  "12",
  { eventFormat: "v12", stateResolution: "v2.1" },
  { privilegedCreators: true },
);

/** Every room version this library implements, keyed by version string. */
export const ROOM_VERSIONS: Readonly<Record<string, RoomVersionRules>> = Object.freeze({
  "1": V1,
  "2": V2,
  "3": V3,
  "4": V4,
  "5": V5,
  "6": V6,
  "7": V7,
  "8": V8,
  "9": V9,
  "10": V10,
  "11": V11,
  "12": V12,
});

/** The room version new rooms should use (spec v1.16+: version 12). */
export const DEFAULT_ROOM_VERSION = "12";

/** Rules for `version`, or `undefined` when the version is unknown. */
export function findRoomVersion(version: string): RoomVersionRules | undefined {
  return Object.hasOwn(ROOM_VERSIONS, version) ? ROOM_VERSIONS[version] : undefined;
}

/** Thrown by {@link getRoomVersion} for a version string this library does not implement. */
export class UnsupportedRoomVersionError extends Error {
  override readonly name = "UnsupportedRoomVersionError";
  constructor(readonly version: string) {
    super(`unsupported room version ${JSON.stringify(version)}`);
  }
}

/** Rules for `version`; throws {@link UnsupportedRoomVersionError} when unknown. */
export function getRoomVersion(version: string): RoomVersionRules {
  const rules = findRoomVersion(version);
  if (rules === undefined) throw new UnsupportedRoomVersionError(version);
  return rules;
}
