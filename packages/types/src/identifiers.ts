/**
 * Matrix identifier grammars: server names, user IDs, room IDs, event IDs, room aliases,
 * key IDs and room version IDs.
 *
 * Every `parse*` function returns a {@link ParseResult}: `{ ok: true, value }` with the parts
 * of the identifier, or `{ ok: false, reason }` with a tagged reason. Malformed identifiers
 * arrive over federation all the time, so refusing one is an expected outcome, not an
 * exception. Every `isValid*` function is the boolean form of its parser.
 *
 * Source: Matrix specification v1.19, appendices "Identifier Grammar" (content/appendices.md)
 * and "Room version grammar" (content/rooms/_index.md).
 *
 * @module
 */

import type { EventIdFormat } from "./room-versions.js";

/** The outcome of parsing an identifier: its parts, or why it was refused. */
export type ParseResult<T, R extends string> =
  | { readonly ok: true; readonly value: T }
  | ParseFailure<R>;

/** A refused identifier. */
export interface ParseFailure<R extends string> {
  readonly ok: false;
  readonly reason: R;
  /** Set when `reason` is `"invalid-server-name"`: why the server name part was refused. */
  readonly serverNameReason?: ServerNameErrorReason;
}

/**
 * How identifier lengths are counted against the 255 limit.
 * - `"bytes"`: UTF-8 bytes, as the spec says ("MUST NOT exceed 255 bytes").
 * - `"codepoints"`: Unicode code points. Synapse counts code points for rooms 1-10 and bytes
 *   only from room 11 (its `strict_event_byte_limits_room_versions`), so code that must accept
 *   exactly what Synapse accepts in old rooms can ask for this.
 */
export type LengthUnit = "bytes" | "codepoints";

/** The spec's limit on user IDs, room IDs, event IDs and room aliases, sigil and domain included. */
export const MAX_IDENTIFIER_LENGTH = 255;

function fail<R extends string>(reason: R, serverNameReason?: ServerNameErrorReason): ParseFailure<R> {
  return serverNameReason === undefined
    ? { ok: false, reason }
    : { ok: false, reason, serverNameReason };
}

function succeed<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

// Counted by hand rather than with TextEncoder so no buffer is allocated for every ID checked.
// A lone surrogate counts 3 bytes, as it would once replaced by U+FFFD when encoded.
function utf8Length(s: string): number {
  let bytes = 0;
  for (const char of s) {
    const cp = char.codePointAt(0) ?? 0;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return bytes;
}

function tooLong(s: string, unit: LengthUnit = "bytes"): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes and at least part of one code point, so short
  // strings need no counting.
  if (unit === "codepoints") return s.length > MAX_IDENTIFIER_LENGTH && [...s].length > MAX_IDENTIFIER_LENGTH;
  return s.length * 3 > MAX_IDENTIFIER_LENGTH && utf8Length(s) > MAX_IDENTIFIER_LENGTH;
}

// Lone surrogates are not Unicode scalar values: the spec allows only "valid non-surrogate
// Unicode code points" in opaque localparts. With the `u` flag, paired surrogates form one
// astral code point and only unpaired halves match \p{Cs}.
const LONE_SURROGATE = /\p{Cs}/u;

/** Opaque localparts (historical user IDs, legacy room and event IDs, aliases): anything but `:` and NUL. */
function isOpaqueLocalpart(s: string): boolean {
  return !s.includes("\0") && !s.includes(":") && !LONE_SURROGATE.test(s);
}

// ---------------------------------------------------------------------------------------------
// Server names
// ---------------------------------------------------------------------------------------------

/** What kind of host a server name has. */
export type ServerNameKind = "ipv4" | "ipv6" | "dns";

/** A parsed server name. */
export interface ServerName {
  /**
   * The host exactly as written. For an IPv6 literal this keeps the brackets
   * (`"[::1]"`), the form used in `Host` headers, URLs and server ACLs.
   */
  readonly host: string;
  /** The explicit port, when the server name has one. */
  readonly port?: number;
  readonly kind: ServerNameKind;
}

/**
 * Why a server name was refused.
 * - `"empty"`: no host (`""`, `":8448"`).
 * - `"invalid-character"`: a character outside `[A-Za-z0-9.-]` in a DNS name or IPv4 literal,
 *   or something other than `:port` after an IPv6 literal's `]`.
 * - `"empty-label"`: a DNS name with an empty label (`"a..b"`, `".a"`, `"a."`).
 * - `"host-too-long"`: a DNS name over 255 characters.
 * - `"invalid-ipv4"`: a dotted quad with a number above 255.
 * - `"invalid-ipv6"`: a bracketed literal that is not an RFC 4291 IPv6 address, or no `]`.
 * - `"invalid-port"`: a port that is not 1-5 digits in the range 1-65535.
 */
export type ServerNameErrorReason =
  | "empty"
  | "invalid-character"
  | "empty-label"
  | "host-too-long"
  | "invalid-ipv4"
  | "invalid-ipv6"
  | "invalid-port";

const DNS_CHARS = /^[A-Za-z0-9.-]+$/;
const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
// Inside an IPv6 literal the IPv4 tail is written without leading zeros, as inet_pton and
// Node's net.isIPv6 require (RFC 4291 2.2 calls it the "standard IPv4 representation").
const EMBEDDED_IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const PORT = /^\d{1,5}$/;

/**
 * Whether `s` is an IPv6 address in one of the text forms of RFC 4291 section 2.2 (the
 * successor of RFC 3513 2.2, which the spec cites): eight groups of 1-4 hex digits, or fewer
 * with one `::` standing for one or more zero groups, the last 32 bits optionally as a dotted
 * quad. Zone IDs (`%eth0`) are not allowed: `%` is not an IPv6char in the spec's grammar.
 */
function isIpv6Address(s: string): boolean {
  // Spec grammar: IPv6address = 2*45IPv6char.
  if (s.length < 2 || s.length > 45 || !IPV6_CHARS.test(s)) return false;
  const gap = s.indexOf("::");
  if (gap !== -1 && s.includes("::", gap + 1)) return false;
  const compressed = gap !== -1;
  const before = compressed ? s.slice(0, gap) : s;
  const after = compressed ? s.slice(gap + 2) : "";
  const groups = [...(before === "" ? [] : before.split(":")), ...(after === "" ? [] : after.split(":"))];
  // The dotted quad may only be the address's last piece, never directly before a trailing "::".
  const lastIsWritten = !compressed || after !== "";
  let width = 0;
  for (const [i, group] of groups.entries()) {
    if (HEX_GROUP.test(group)) {
      width += 1;
    } else if (i === groups.length - 1 && lastIsWritten && EMBEDDED_IPV4.test(group)) {
      width += 2;
    } else {
      return false;
    }
  }
  return compressed ? width <= 7 : width === 8;
}

function parsePort(digits: string): number | undefined {
  if (!PORT.test(digits)) return undefined;
  const port = Number(digits);
  // The grammar allows any 1-5 digits; 0 and 65536-99999 cannot be TCP ports, so we refuse
  // them (ruma also refuses >65535; Synapse parses any integer and fails later on connect).
  return port >= 1 && port <= 65535 ? port : undefined;
}

function withPort(host: string, kind: ServerNameKind, portPart: string | undefined): ParseResult<ServerName, ServerNameErrorReason> {
  if (portPart === undefined) return succeed({ host, kind });
  const port = parsePort(portPart);
  return port === undefined ? fail("invalid-port") : succeed({ host, kind, port });
}

/**
 * Parses a server name: `hostname [":" port]`, where the hostname is an IPv4 dotted quad,
 * a bracketed IPv6 literal or a DNS name (appendices, "Server Name").
 *
 * Choices where the spec leaves room, each documented on {@link ServerNameErrorReason}:
 * DNS names must not have empty labels (Synapse refuses them too); a dotted quad with a
 * number above 255 is refused rather than read as a DNS name, since the spec requires IPv4
 * literals to be in range; ports must be 1-65535. Leading zeros (`01.2.3.4`, `:08448`) are
 * allowed, as the grammar's `1*3DIGIT` and `1*5DIGIT` allow them.
 *
 * Server names are case-sensitive and compared as written; nothing is normalised.
 * A `"dns"` host may still be all digits (`"1.2.3"`): resolvers must not hand such a name
 * to an `inet_aton`-style parser that would read it as an IP address.
 */
export function parseServerName(s: string): ParseResult<ServerName, ServerNameErrorReason> {
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close === -1 || !isIpv6Address(s.slice(1, close))) return fail("invalid-ipv6");
    const rest = s.slice(close + 1);
    if (rest === "") return withPort(s, "ipv6", undefined);
    if (!rest.startsWith(":")) return fail("invalid-character");
    return withPort(s.slice(0, close + 1), "ipv6", rest.slice(1));
  }
  const colon = s.indexOf(":");
  const host = colon === -1 ? s : s.slice(0, colon);
  const portPart = colon === -1 ? undefined : s.slice(colon + 1);
  if (host === "") return fail("empty");
  if (!DNS_CHARS.test(host)) return fail("invalid-character");
  const quad = DOTTED_QUAD.exec(host);
  if (quad !== null) {
    if (quad.slice(1).some((n) => Number(n) > 255)) return fail("invalid-ipv4");
    return withPort(host, "ipv4", portPart);
  }
  if (host.length > 255) return fail("host-too-long");
  if (host.split(".").includes("")) return fail("empty-label");
  return withPort(host, "dns", portPart);
}

/** Whether `s` is a valid server name (see {@link parseServerName}). */
export function isValidServerName(s: string): boolean {
  return parseServerName(s).ok;
}

// ---------------------------------------------------------------------------------------------
// User IDs
// ---------------------------------------------------------------------------------------------

/**
 * Which grammar a user ID's localpart satisfies.
 * - `"strict"`: the v1.8 grammar, `[a-z0-9._=/+-]+`.
 * - `"historical"`: not strict, but non-empty and within U+0021-U+007E (e.g. upper case);
 *   the spec still calls these compliant.
 * - `"non-compliant"`: empty, or with characters outside U+0021-U+007E. Servers must accept
 *   events from such users but SHOULD NOT pass the IDs to clients outside an event (for
 *   example, device-list updates from them are dropped).
 */
export type LocalpartGrammar = "strict" | "historical" | "non-compliant";

/** A parsed user ID, `@localpart:server_name`. */
export interface UserId {
  readonly localpart: string;
  /** The server name part exactly as written. */
  readonly serverName: string;
  readonly server: ServerName;
  readonly localpartGrammar: LocalpartGrammar;
}

/** Options for {@link parseUserId}. */
export interface UserIdOptions {
  /**
   * Accept the historical grammar: any localpart without `:`, NUL or lone surrogates,
   * including the empty string (appendices, "Historical User IDs"). Servers MUST accept these
   * in events received over federation; leave it off when minting or checking new IDs.
   * Default `false`.
   */
  readonly historical?: boolean;
  /** How the 255 limit is counted. Default `"bytes"`. */
  readonly lengthUnit?: LengthUnit;
}

/** Why a user ID was refused. */
export type UserIdErrorReason =
  | "missing-sigil"
  | "missing-server-name"
  | "invalid-localpart"
  | "invalid-server-name"
  | "too-long";

const STRICT_LOCALPART = /^[a-z0-9._=\-/+]+$/;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

function classifyLocalpart(localpart: string): LocalpartGrammar {
  if (STRICT_LOCALPART.test(localpart)) return "strict";
  if (PRINTABLE_ASCII.test(localpart)) return "historical";
  return "non-compliant";
}

/**
 * Parses a user ID, `@localpart:server_name` (appendices, "User Identifiers").
 *
 * The localpart ends at the first `:` (localparts cannot contain one); the rest is the
 * server name, which may itself contain `:` for a port or an IPv6 literal. The whole ID,
 * sigil and server name included, must not exceed 255 UTF-8 bytes.
 */
export function parseUserId(s: string, options: UserIdOptions = {}): ParseResult<UserId, UserIdErrorReason> {
  if (!s.startsWith("@")) return fail("missing-sigil");
  const colon = s.indexOf(":");
  if (colon === -1) return fail("missing-server-name");
  const localpart = s.slice(1, colon);
  const localpartGrammar = classifyLocalpart(localpart);
  if (options.historical === true ? !isOpaqueLocalpart(localpart) : localpartGrammar !== "strict") {
    return fail("invalid-localpart");
  }
  const serverName = s.slice(colon + 1);
  const server = parseServerName(serverName);
  if (!server.ok) return fail("invalid-server-name", server.reason);
  if (tooLong(s, options.lengthUnit)) return fail("too-long");
  return succeed({ localpart, serverName, server: server.value, localpartGrammar });
}

/** Whether `s` is a valid user ID (see {@link parseUserId}). */
export function isValidUserId(s: string, options: UserIdOptions = {}): boolean {
  return parseUserId(s, options).ok;
}

// ---------------------------------------------------------------------------------------------
// Base64 reference hashes (event IDs from room 3, room IDs from room 12)
// ---------------------------------------------------------------------------------------------

// A SHA-256 reference hash is 32 bytes: 43 unpadded base64 characters carrying 258 bits, so
// the last character's two low bits are zero and it is one of 16 characters. Any other last
// character cannot be the encoding of a hash, so no event can have that ID.
const STD_HASH = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;
const URLSAFE_HASH = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

// ---------------------------------------------------------------------------------------------
// Room IDs
// ---------------------------------------------------------------------------------------------

/**
 * A parsed room ID.
 * - `"legacy"` (rooms 1-11): `!opaque_id:server_name`.
 * - `"hash"` (room 12): `!` + the create event's reference hash in URL-safe unpadded base64
 *   (43 characters), i.e. the create event's ID with `!` for `$`. No server name.
 */
export type RoomId =
  | {
      readonly kind: "legacy";
      readonly opaqueId: string;
      /** The server name part exactly as written. */
      readonly serverName: string;
      readonly server: ServerName;
    }
  | {
      readonly kind: "hash";
      /** The 43-character URL-safe unpadded base64 reference hash, without the sigil. */
      readonly hash: string;
    };

/** Options for {@link parseRoomId}, {@link parseEventId} and {@link parseRoomAlias}. */
export interface OpaqueIdOptions {
  /** How the 255 limit is counted. Default `"bytes"`. */
  readonly lengthUnit?: LengthUnit;
}

/**
 * Why a room ID was refused. `"invalid-hash"` covers any `!`-prefixed string without a `:`
 * that is not a 43-character URL-safe base64 hash.
 */
export type RoomIdErrorReason =
  | "missing-sigil"
  | "invalid-opaque-id"
  | "invalid-hash"
  | "invalid-server-name"
  | "too-long";

/**
 * Parses a room ID in either form and says which (appendices, "Room IDs"). Which form a room
 * must use follows from its version (`eventFormat === "v12"` means `"hash"`); callers check that.
 */
export function parseRoomId(s: string, options: OpaqueIdOptions = {}): ParseResult<RoomId, RoomIdErrorReason> {
  if (!s.startsWith("!")) return fail("missing-sigil");
  const colon = s.indexOf(":");
  if (colon === -1) {
    const hash = s.slice(1);
    return URLSAFE_HASH.test(hash) ? succeed({ kind: "hash", hash }) : fail("invalid-hash");
  }
  const opaqueId = s.slice(1, colon);
  if (!isOpaqueLocalpart(opaqueId)) return fail("invalid-opaque-id");
  const serverName = s.slice(colon + 1);
  const server = parseServerName(serverName);
  if (!server.ok) return fail("invalid-server-name", server.reason);
  if (tooLong(s, options.lengthUnit)) return fail("too-long");
  return succeed({ kind: "legacy", opaqueId, serverName, server: server.value });
}

/** Whether `s` is a valid room ID of either form (see {@link parseRoomId}). */
export function isValidRoomId(s: string, options: OpaqueIdOptions = {}): boolean {
  return parseRoomId(s, options).ok;
}

// ---------------------------------------------------------------------------------------------
// Event IDs
// ---------------------------------------------------------------------------------------------

/** A parsed event ID; `format` is the room version's {@link EventIdFormat}. */
export type EventId =
  | {
      readonly format: "legacy";
      readonly opaqueId: string;
      /** The server name part exactly as written. */
      readonly serverName: string;
      readonly server: ServerName;
    }
  | {
      readonly format: "base64" | "urlsafe";
      /** The 43-character unpadded base64 reference hash, without the sigil. */
      readonly hash: string;
    };

/** Why an event ID was refused. */
export type EventIdErrorReason =
  | "missing-sigil"
  | "missing-server-name"
  | "invalid-opaque-id"
  | "invalid-hash"
  | "invalid-server-name"
  | "too-long";

/**
 * Parses an event ID in the form its room version uses:
 * - `"legacy"` (rooms 1-2): `$opaque_id:server_name` (rooms v1 "Event IDs").
 * - `"base64"` (room 3): `$` + 43 characters of standard unpadded base64 (rooms v3).
 * - `"urlsafe"` (rooms 4+): `$` + 43 characters of URL-safe unpadded base64 (rooms v4).
 *
 * Hash forms must be the encoding of 32 bytes, so the last character is checked too.
 * Every form is limited to 255 bytes (appendices, "Event IDs").
 */
export function parseEventId(
  s: string,
  format: EventIdFormat,
  options: OpaqueIdOptions = {},
): ParseResult<EventId, EventIdErrorReason> {
  if (!s.startsWith("$")) return fail("missing-sigil");
  if (format !== "legacy") {
    const hash = s.slice(1);
    const pattern = format === "base64" ? STD_HASH : URLSAFE_HASH;
    return pattern.test(hash) ? succeed({ format, hash }) : fail("invalid-hash");
  }
  const colon = s.indexOf(":");
  if (colon === -1) return fail("missing-server-name");
  const opaqueId = s.slice(1, colon);
  if (!isOpaqueLocalpart(opaqueId)) return fail("invalid-opaque-id");
  const serverName = s.slice(colon + 1);
  const server = parseServerName(serverName);
  if (!server.ok) return fail("invalid-server-name", server.reason);
  if (tooLong(s, options.lengthUnit)) return fail("too-long");
  return succeed({ format, opaqueId, serverName, server: server.value });
}

/** Whether `s` is a valid event ID for `format` (see {@link parseEventId}). */
export function isValidEventId(s: string, format: EventIdFormat, options: OpaqueIdOptions = {}): boolean {
  return parseEventId(s, format, options).ok;
}

// ---------------------------------------------------------------------------------------------
// Room aliases
// ---------------------------------------------------------------------------------------------

/** A parsed room alias, `#alias:server_name`. */
export interface RoomAlias {
  readonly localpart: string;
  /** The server name part exactly as written. */
  readonly serverName: string;
  readonly server: ServerName;
}

/** Why a room alias was refused. */
export type RoomAliasErrorReason =
  | "missing-sigil"
  | "missing-server-name"
  | "invalid-localpart"
  | "invalid-server-name"
  | "too-long";

/**
 * Parses a room alias, `#localpart:server_name` (appendices, "Room Aliases"). The localpart
 * may hold any non-surrogate code point except `:` and NUL; the spec sets no minimum length,
 * so an empty localpart is accepted. At most 255 bytes in all.
 */
export function parseRoomAlias(s: string, options: OpaqueIdOptions = {}): ParseResult<RoomAlias, RoomAliasErrorReason> {
  if (!s.startsWith("#")) return fail("missing-sigil");
  const colon = s.indexOf(":");
  if (colon === -1) return fail("missing-server-name");
  const localpart = s.slice(1, colon);
  if (!isOpaqueLocalpart(localpart)) return fail("invalid-localpart");
  const serverName = s.slice(colon + 1);
  const server = parseServerName(serverName);
  if (!server.ok) return fail("invalid-server-name", server.reason);
  if (tooLong(s, options.lengthUnit)) return fail("too-long");
  return succeed({ localpart, serverName, server: server.value });
}

/** Whether `s` is a valid room alias (see {@link parseRoomAlias}). */
export function isValidRoomAlias(s: string, options: OpaqueIdOptions = {}): boolean {
  return parseRoomAlias(s, options).ok;
}

// ---------------------------------------------------------------------------------------------
// Key IDs
// ---------------------------------------------------------------------------------------------

/** A parsed signing key ID, `algorithm:version` (e.g. `ed25519:abc123`). */
export interface KeyId {
  readonly algorithm: string;
  readonly version: string;
}

/** Options for {@link parseKeyId}. */
export interface KeyIdOptions {
  /**
   * Accept any non-empty version. Some deployed servers use versions outside `[a-zA-Z0-9_]`
   * (ruma keeps a compatibility switch for this); use it when reading keys and signatures
   * from peers, not when minting key IDs. Default `false`.
   */
  readonly lenientVersion?: boolean;
}

/** Why a key ID was refused. */
export type KeyIdErrorReason = "missing-colon" | "invalid-algorithm" | "invalid-version";

// The spec does not give a grammar for the algorithm part; every algorithm it names
// (ed25519, curve25519, signed_curve25519) fits this one.
const KEY_ALGORITHM = /^[A-Za-z0-9_]+$/;
// Server-server "Retrieving server keys": the version must match [a-zA-Z0-9_].
const KEY_VERSION = /^[A-Za-z0-9_]+$/;

/**
 * Parses a key ID, `algorithm:version`, splitting at the first `:`. The version must be
 * non-empty and match `[a-zA-Z0-9_]` (server-server "Retrieving server keys") unless
 * `lenientVersion` is set.
 */
export function parseKeyId(s: string, options: KeyIdOptions = {}): ParseResult<KeyId, KeyIdErrorReason> {
  const colon = s.indexOf(":");
  if (colon === -1) return fail("missing-colon");
  const algorithm = s.slice(0, colon);
  const version = s.slice(colon + 1);
  if (!KEY_ALGORITHM.test(algorithm)) return fail("invalid-algorithm");
  const versionOk = options.lenientVersion === true ? version !== "" : KEY_VERSION.test(version);
  return versionOk ? succeed({ algorithm, version }) : fail("invalid-version");
}

/** Whether `s` is a valid key ID (see {@link parseKeyId}). */
export function isValidKeyId(s: string, options: KeyIdOptions = {}): boolean {
  return parseKeyId(s, options).ok;
}

// ---------------------------------------------------------------------------------------------
// Room version IDs
// ---------------------------------------------------------------------------------------------

const ROOM_VERSION_ID = /^[a-z0-9.-]{1,32}$/;

/**
 * Whether `s` is a grammatical room version: 1-32 characters of `[a-z0-9.-]` (rooms,
 * "Room version grammar"). Says nothing about whether the version is implemented; see
 * `findRoomVersion`.
 */
export function isValidRoomVersionId(s: string): boolean {
  return ROOM_VERSION_ID.test(s);
}
