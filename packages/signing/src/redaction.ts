/**
 * The redaction algorithm of every room version (spec rooms/fragments `v1-redactions`,
 * `v6-redactions`, `v9-redactions`, `v11-redactions`; the v8 change is in rooms/v8).
 *
 * Redaction is part of signing and hashing: signatures and reference hashes (hence event
 * IDs from room 3 on) cover the redacted event, so every byte here must match what other
 * servers compute. The algorithm is chosen by `RoomVersionRules.redaction`.
 *
 * | algorithm | rooms  | change |
 * |-----------|--------|--------|
 * | v1        | 1-5    | base keep-lists (incl. `m.room.aliases` `aliases`) |
 * | v6        | 6-7    | `m.room.aliases` no longer keeps `aliases` |
 * | v8        | 8      | `m.room.join_rules` keeps `allow` |
 * | v9        | 9-10   | `m.room.member` keeps `join_authorised_via_users_server` |
 * | v11       | 11-12  | top level drops `origin`, `membership`, `prev_state`; create keeps all content; power levels keep `invite`; member keeps `third_party_invite.signed`; redaction keeps `redacts` |
 *
 * Where the spec is silent, this follows Synapse (`prune_event_dict`), whose output is
 * what most signatures in the wild were made over:
 * - `content` is always present in the output (`{}` when the event had none or it was not
 *   an object), except that a v11 create event keeps its `content` value as it is;
 * - v11 `third_party_invite` that is an object becomes `{}` plus its `signed` member if
 *   any (ruma drops an empty one; a member event without `signed` fails auth anyway); a
 *   non-object `third_party_invite` is dropped.
 *
 * @module
 */

import type { JsonObject, JsonValue, RedactionAlgorithm, RoomVersionRules } from "@myelin/types";

/** Top-level keys kept by the v1-v9 algorithms (rooms 1-10). */
const TOP_LEVEL_V1: ReadonlySet<string> = new Set([
  "event_id",
  "type",
  "room_id",
  "sender",
  "state_key",
  "content",
  "hashes",
  "signatures",
  "depth",
  "prev_events",
  "prev_state",
  "auth_events",
  "origin",
  "origin_server_ts",
  "membership",
]);

/** Top-level keys kept by the v11 algorithm: v1 minus `origin`, `membership`, `prev_state`. */
const TOP_LEVEL_V11: ReadonlySet<string> = new Set(
  [...TOP_LEVEL_V1].filter((key) => key !== "origin" && key !== "membership" && key !== "prev_state"),
);

const POWER_LEVELS_V1 = ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"];

/** Content keys kept per event type, or "all". Types not listed keep nothing. */
type ContentRules = Readonly<Record<string, readonly string[] | "all">>;

const CONTENT_V1: ContentRules = {
  "m.room.member": ["membership"],
  "m.room.create": ["creator"],
  "m.room.join_rules": ["join_rule"],
  "m.room.power_levels": POWER_LEVELS_V1,
  "m.room.aliases": ["aliases"],
  "m.room.history_visibility": ["history_visibility"],
};
const CONTENT_V6: ContentRules = Object.fromEntries(
  Object.entries(CONTENT_V1).filter(([type]) => type !== "m.room.aliases"),
);
const CONTENT_V8: ContentRules = { ...CONTENT_V6, "m.room.join_rules": ["join_rule", "allow"] };
const CONTENT_V9: ContentRules = {
  ...CONTENT_V8,
  "m.room.member": ["membership", "join_authorised_via_users_server"],
};
const CONTENT_V11: ContentRules = {
  ...CONTENT_V9,
  // third_party_invite.signed is handled separately (a nested keep-list).
  "m.room.create": "all",
  "m.room.power_levels": [...POWER_LEVELS_V1, "invite"],
  "m.room.redaction": ["redacts"],
};

interface Algorithm {
  readonly topLevel: ReadonlySet<string>;
  readonly content: ContentRules;
  readonly keepThirdPartyInviteSigned: boolean;
}

const ALGORITHMS: Readonly<Record<RedactionAlgorithm, Algorithm>> = {
  v1: { topLevel: TOP_LEVEL_V1, content: CONTENT_V1, keepThirdPartyInviteSigned: false },
  v6: { topLevel: TOP_LEVEL_V1, content: CONTENT_V6, keepThirdPartyInviteSigned: false },
  v8: { topLevel: TOP_LEVEL_V1, content: CONTENT_V8, keepThirdPartyInviteSigned: false },
  v9: { topLevel: TOP_LEVEL_V1, content: CONTENT_V9, keepThirdPartyInviteSigned: false },
  v11: { topLevel: TOP_LEVEL_V11, content: CONTENT_V11, keepThirdPartyInviteSigned: true },
};

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function redactContent(type: unknown, content: JsonValue | undefined, algorithm: Algorithm): JsonValue {
  const rule = typeof type === "string" && Object.hasOwn(algorithm.content, type) ? algorithm.content[type] : undefined;
  if (rule === "all") return content ?? {};
  const kept: JsonObject = {};
  if (!isObject(content)) return kept;
  if (rule !== undefined) {
    for (const key of rule) {
      if (Object.hasOwn(content, key)) kept[key] = content[key] as JsonValue;
    }
  }
  if (algorithm.keepThirdPartyInviteSigned && type === "m.room.member") {
    const invite = Object.hasOwn(content, "third_party_invite") ? content["third_party_invite"] : undefined;
    if (isObject(invite)) {
      const reduced: JsonObject = {};
      if (Object.hasOwn(invite, "signed")) reduced["signed"] = invite["signed"] as JsonValue;
      kept["third_party_invite"] = reduced;
    }
  }
  return kept;
}

/**
 * @internal Redacts `event`; when `keepSignatures` is false the output also lacks
 * `signatures` (the form that is signed and reference-hashed).
 */
export function redactEventWith(event: JsonObject, rules: Pick<RoomVersionRules, "redaction">, keepSignatures: boolean): JsonObject {
  const algorithm = ALGORITHMS[rules.redaction];
  const redacted: JsonObject = {};
  for (const key of Object.keys(event)) {
    if (!algorithm.topLevel.has(key) || key === "content") continue;
    if (key === "signatures" && !keepSignatures) continue;
    redacted[key] = event[key] as JsonValue;
  }
  redacted["content"] = redactContent(
    event["type"],
    Object.hasOwn(event, "content") ? event["content"] : undefined,
    algorithm,
  );
  return redacted;
}

/**
 * Returns the redacted form of `event` under the room version's redaction algorithm.
 * `unsigned` is always removed. The input is not modified; kept values are shared with
 * it (not deep-copied), so treat both as immutable.
 */
export function redactEvent(event: JsonObject, rules: Pick<RoomVersionRules, "redaction">): JsonObject {
  return redactEventWith(event, rules, true);
}
