/**
 * Signing events and checking received events' signatures and hashes (spec server-server
 * "Signing Events": "Adding hashes and signatures to outgoing events" and "Validating
 * hashes and signatures on received events").
 *
 * Outcomes of {@link verifyEvent} are values, because a bad event is an expected part of
 * federation, not a crash:
 * - `valid`: the required signatures verify and the content hash matches;
 * - `redact`: the signatures verify but the content hash does not; the spec says to keep
 *   the event in its redacted form, which is returned;
 * - `reject`: a required signature is missing, unverifiable or wrong, or the event is
 *   malformed. The reason says which server and key.
 *
 * Key validity: a key whose `expiredTs` is before the event's `origin_server_ts` is
 * ignored (any room version, spec "keys that are known to have expired prior to the
 * event's origin_server_ts are ignored"); from room 5 on (`enforceKeyValidity`) so is a
 * key whose `validUntilTs` is before it. Capping `validUntilTs` at 7 days after the key
 * was fetched (rooms/v5 "Signing key validity period") is the key ring's job: it must hand
 * out the capped value.
 *
 * Numbers outside canonical JSON: rooms 6+ (`strictCanonicalJson`) reject an event holding
 * one. In rooms 1-5 such an event, parsed losslessly (`JsonNumberToken`s), is verified with
 * `{ compat: "synapse" }`: its signatures and hashes were made over Synapse's notation of
 * those numbers (hostile-federation T14).
 *
 * @module
 */

import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { encodeBase64 } from "./base64.js";
import type { EncodeCanonicalJsonOptions } from "./canonical-json.js";
import { CanonicalJsonError, encodeCanonicalJson } from "./canonical-json.js";
import { checkContentHash, computeContentHash } from "./event-hashes.js";
import type { KeyLookup, SignatureFailure, Signatures, VerifyKey } from "./json-signing.js";
import { checkEntitySignatures, isJsonObject, signJson } from "./json-signing.js";
import type { SigningKey } from "./keys.js";
import { redactEventWith } from "./redaction.js";

/** The room-version rules event signing depends on. */
export type EventSigningRules = Pick<RoomVersionRules, "redaction" | "eventFormat" | "enforceKeyValidity" | "strictCanonicalJson"> & {
  readonly auth: Pick<RoomVersionRules["auth"], "restrictedJoins">;
};

/**
 * Adds the content hash to `event`, signs its redacted form as `serverName` with `key`,
 * and returns a copy of the full event with the signature added (existing signatures from
 * other servers are kept). The input is not modified. `options` are the encoder's:
 * `compat: "synapse"` signs a room 1-5 event holding `JsonNumberToken`s as Synapse would
 * (for tests and tools; a server never creates such events).
 *
 * @throws `CanonicalJsonError` when the event is not valid canonical JSON;
 *   `JsonSigningError` if its `signatures` member is malformed.
 */
export function signEvent<T extends JsonObject>(
  event: T,
  serverName: string,
  key: SigningKey,
  rules: Pick<RoomVersionRules, "redaction">,
  options?: EncodeCanonicalJsonOptions,
): T & { hashes: { sha256: string }; signatures: Signatures } {
  const hashed = { ...event, hashes: { sha256: encodeBase64(computeContentHash(event, options)) } };
  const signed = signJson(redactEventWith(hashed, rules, true), serverName, key, options);
  return { ...hashed, signatures: signed.signatures };
}

/** Why an event was rejected; `code` is the tag. */
export type EventRejection =
  /** The event lacks a field verification needs (sender, origin_server_ts, v1 event_id...). */
  | { readonly code: "malformed-event"; readonly detail: string }
  /**
   * Its redacted form cannot be encoded as canonical JSON (floats, huge integers...), or,
   * in rooms 6+, the event holds a `JsonNumberToken` anywhere.
   */
  | { readonly code: "non-canonical-json"; readonly detail: string }
  /** A required server's signatures failed the check; see {@link SignatureFailure}. */
  | { readonly code: SignatureFailure; readonly server: string; readonly keyId?: string };

/** The outcome of verifying a received event. */
export type EventVerification =
  | { readonly outcome: "valid" }
  | { readonly outcome: "redact"; /** The redacted event to use instead. */ readonly redacted: JsonObject }
  | { readonly outcome: "reject"; readonly reason: EventRejection };

/** Options for {@link verifyEvent} and {@link verifyEvents}. */
export interface VerifyEventOptions {
  /** The room version's rules (redaction algorithm, event format, key validity). */
  readonly rules: EventSigningRules;
  /** Finds a server's verification key; may be synchronous or asynchronous. */
  readonly lookupKey: KeyLookup;
  /**
   * `"synapse"`: encode `JsonNumberToken`s (from a lossless parse) as Synapse does when
   * checking signatures and hashes, so a room 1-5 event with floats or big integers can
   * verify. Has no effect in rooms with `strictCanonicalJson` (6+), where such an event is
   * rejected (`non-canonical-json`) whatever its signatures. Default: canonical JSON only.
   */
  readonly compat?: "synapse";
}

function serverOf(id: unknown): string | undefined {
  if (typeof id !== "string") return undefined;
  const colon = id.indexOf(":");
  return colon < 0 || colon === id.length - 1 ? undefined : id.slice(colon + 1);
}

/**
 * The servers whose signatures an event needs (spec "Validating hashes and signatures on
 * received events"), or a string explaining why they cannot be determined:
 * - the `sender`'s server, except for an invite made from a third-party invite
 *   (`m.room.member`, `membership: invite`, `content.third_party_invite`), which the
 *   spec lets a different server send;
 * - rooms 1-2: also the server of the `event_id`;
 * - rooms 8+: for a join with `content.join_authorised_via_users_server`, the
 *   authorising user's server (auth rule 4.2). Like Synapse, only joins are checked here.
 */
export function requiredSigningServers(
  event: JsonObject,
  rules: Pick<EventSigningRules, "eventFormat" | "auth">,
): string[] | string {
  const servers: string[] = [];
  const sender = serverOf(event["sender"]);
  if (sender === undefined) return "sender is not a user ID";
  const content = isJsonObject(event["content"]) ? event["content"] : undefined;
  const isMember = event["type"] === "m.room.member";
  const membership = isMember && content !== undefined ? content["membership"] : undefined;
  const isThirdPartyInvite =
    membership === "invite" && content !== undefined && Object.hasOwn(content, "third_party_invite");
  if (!isThirdPartyInvite) servers.push(sender);
  if (rules.eventFormat === "v1") {
    const eventIdServer = serverOf(event["event_id"]);
    if (eventIdServer === undefined) return "event_id is not a v1 event ID";
    if (!servers.includes(eventIdServer)) servers.push(eventIdServer);
  }
  if (rules.auth.restrictedJoins && membership === "join" && content !== undefined) {
    if (Object.hasOwn(content, "join_authorised_via_users_server")) {
      const authoriser = serverOf(content["join_authorised_via_users_server"]);
      if (authoriser === undefined) return "join_authorised_via_users_server is not a user ID";
      if (!servers.includes(authoriser)) servers.push(authoriser);
    }
  }
  return servers;
}

type KeyFor = (server: string, keyId: string) => VerifyKey | undefined;

function reject(reason: EventRejection): EventVerification {
  return { outcome: "reject", reason };
}

/** The synchronous core: every key the event needs is already available through `keyFor`. */
function verifyWithKeys(event: JsonObject, rules: EventSigningRules, keyFor: KeyFor, compat: boolean): EventVerification {
  if (!isJsonObject(event)) return reject({ code: "malformed-event", detail: "not an object" });
  // Tokens only exist outside canonical JSON; the encoder refuses them without `compat`.
  const encoding: EncodeCanonicalJsonOptions | undefined = compat && !rules.strictCanonicalJson ? { compat: "synapse" } : undefined;
  const servers = requiredSigningServers(event, rules);
  if (typeof servers === "string") return reject({ code: "malformed-event", detail: servers });
  const ts = event["origin_server_ts"];
  if (typeof ts !== "number") return reject({ code: "malformed-event", detail: "origin_server_ts is not a number" });

  let message: Uint8Array;
  try {
    message = Buffer.from(encodeCanonicalJson(redactEventWith(event, rules, false), encoding), "utf8");
  } catch (error) {
    if (error instanceof CanonicalJsonError) return reject({ code: "non-canonical-json", detail: error.message });
    throw error;
  }

  const enforceValidUntil = rules.enforceKeyValidity;
  const isUsable = (key: VerifyKey): boolean =>
    !(key.expiredTs !== undefined && key.expiredTs < ts) &&
    !(enforceValidUntil && key.validUntilTs !== undefined && key.validUntilTs < ts);
  const signatures = event["signatures"];
  for (const server of servers) {
    const check = checkEntitySignatures(signatures, server, message, (keyId) => keyFor(server, keyId), isUsable);
    if (!check.valid) {
      return reject(
        check.keyId === undefined
          ? { code: check.reason, server }
          : { code: check.reason, server, keyId: check.keyId },
      );
    }
  }

  let hashMatches: boolean;
  try {
    hashMatches = checkContentHash(event, encoding);
  } catch (error) {
    if (!(error instanceof CanonicalJsonError)) throw error;
    // Rooms 6+ require canonical JSON. In rooms 1-5 the full event may hold floats or big
    // integers whose hash (Python's float repr) cannot be reproduced here; the redacted
    // form verified, so fall back to it, as for a hash mismatch.
    if (rules.strictCanonicalJson) return reject({ code: "non-canonical-json", detail: error.message });
    hashMatches = false;
  }
  if (hashMatches) return { outcome: "valid" };
  return { outcome: "redact", redacted: redactEventWith(event, rules, true) };
}

const KEY_SEPARATOR = "\u0000";

/** The (server, key ID) pairs verifying `event` may need, as `server\0keyId`. */
function keysNeeded(event: JsonObject, rules: EventSigningRules, into: Set<string>): void {
  if (!isJsonObject(event)) return;
  const servers = requiredSigningServers(event, rules);
  const signatures = event["signatures"];
  if (typeof servers === "string" || !isJsonObject(signatures)) return;
  for (const server of servers) {
    const entry = Object.hasOwn(signatures, server) ? signatures[server] : undefined;
    if (!isJsonObject(entry)) continue;
    for (const keyId of Object.keys(entry)) {
      if (keyId.startsWith("ed25519:")) into.add(server + KEY_SEPARATOR + keyId);
    }
  }
}

async function prefetch(needed: Set<string>, lookupKey: KeyLookup): Promise<KeyFor> {
  const ids = [...needed];
  const found = await Promise.all(
    ids.map((id) => {
      const at = id.indexOf(KEY_SEPARATOR);
      return lookupKey(id.slice(0, at), id.slice(at + 1));
    }),
  );
  const keys = new Map<string, VerifyKey>();
  ids.forEach((id, i) => {
    const key = found[i];
    if (key !== undefined) keys.set(id, key);
  });
  return (server, keyId) => keys.get(server + KEY_SEPARATOR + keyId);
}

/**
 * Verifies a received event's signatures and content hash under the room version's rules.
 * Never throws for bad events (see {@link EventVerification}); only when `lookupKey` does.
 */
export async function verifyEvent(event: JsonObject, options: VerifyEventOptions): Promise<EventVerification> {
  const needed = new Set<string>();
  keysNeeded(event, options.rules, needed);
  const keyFor = await prefetch(needed, options.lookupKey);
  return verifyWithKeys(event, options.rules, keyFor, options.compat === "synapse");
}

/**
 * Verifies many events of one room version, looking each distinct (server, key ID) up
 * once, all lookups concurrently. Results are in input order.
 */
export async function verifyEvents(
  events: readonly JsonObject[],
  options: VerifyEventOptions,
): Promise<EventVerification[]> {
  const needed = new Set<string>();
  for (const event of events) keysNeeded(event, options.rules, needed);
  const keyFor = await prefetch(needed, options.lookupKey);
  const compat = options.compat === "synapse";
  return events.map((event) => verifyWithKeys(event, options.rules, keyFor, compat));
}
