/**
 * What `createRoom` sends, in the order the client-server API prescribes (`POST /createRoom`):
 * 1. `m.room.create`; 2. the creator's join; 3. `m.room.power_levels` (with
 * `power_level_content_override` applied); 4. `m.room.canonical_alias` when an alias is
 * asked for; 5. the preset's join rules, history visibility and guest access; 6.
 * `initial_state` in order; 7. `m.room.name` and `m.room.topic`; 8. the invites.
 *
 * This module is pure: it turns the options into event drafts; the engine builds, authorises
 * and persists them.
 *
 * @module
 */

import { stateKey } from "@myelin/rooms";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { MatrixError } from "@myelin/types";
import type { EventDraft } from "./build-event.js";

/** The `createRoom` presets (client-server API, `POST /createRoom`). */
export type RoomPreset = "private_chat" | "public_chat" | "trusted_private_chat";

/** One `initial_state` entry. */
export interface InitialStateEvent {
  readonly type: string;
  /** Default `""`. */
  readonly state_key?: string | undefined;
  readonly content: JsonObject;
}

/** Options of `RoomEngine.createRoom`, named after the request's fields. */
export interface CreateRoomOptions {
  /** The local user creating the room (the create event's sender). */
  readonly creator: string;
  /** Default: the engine's default room version. */
  readonly roomVersion?: string | undefined;
  /** Default from `visibility`: `public` -> `public_chat`, otherwise `private_chat`. */
  readonly preset?: RoomPreset | undefined;
  /** `public` also lists the room in the public room directory. Default `private`. */
  readonly visibility?: "public" | "private" | undefined;
  /** Extra keys of the create event's content (`creator` and `room_version` are ours). */
  readonly creationContent?: JsonObject | undefined;
  readonly initialState?: readonly InitialStateEvent[] | undefined;
  readonly name?: string | undefined;
  readonly topic?: string | undefined;
  /** Users to invite. Only local users are invited by the engine (see `CreatedRoom.remoteInvites`). */
  readonly invite?: readonly string[] | undefined;
  /** Sets `is_direct` on the invites. */
  readonly isDirect?: boolean | undefined;
  /** Top-level keys replacing those of the default power levels. */
  readonly powerLevelContentOverride?: JsonObject | undefined;
  /** A full room alias (`#local:ourserver`) to map to the room and publish as canonical alias. */
  readonly alias?: string | undefined;
}

/** The drafts of a new room, in sending order. */
export interface RoomPlan {
  /** Content of the create event. */
  readonly createContent: JsonObject;
  /** Every event after the create event, in order. */
  readonly events: readonly EventDraft[];
  readonly preset: RoomPreset;
}

/** Power level needed to send `m.room.tombstone` in room 12: above `state_default` (rooms v12, MSC4289). */
const V12_TOMBSTONE_LEVEL = 150;

/**
 * Plans the events of a new room.
 *
 * @param localInvitees The members of `options.invite` this server will invite itself (the
 *   local ones); remote ones are invited afterwards through federation.
 * @param profile The creator's display name and avatar, copied into the join event.
 * @throws `MatrixError` `M_INVALID_PARAM` when `initial_state` tries to set the create event
 *   or the creator's membership.
 */
export function planRoom(
  options: CreateRoomOptions,
  rules: RoomVersionRules,
  localInvitees: readonly string[],
  profile: { readonly displayname?: string | undefined; readonly avatar_url?: string | undefined } = {},
): RoomPlan {
  const creator = options.creator;
  const preset: RoomPreset = options.preset ?? (options.visibility === "public" ? "public_chat" : "private_chat");
  const invitees = dedupe(options.invite ?? []).filter((user) => user !== creator);
  const v12 = rules.auth.privilegedCreators;

  // Create event content: the client's extra keys, then ours.
  const createContent: JsonObject = { ...(options.creationContent ?? {}) };
  delete createContent["creator"];
  if (!rules.auth.implicitRoomCreator) createContent["creator"] = creator;
  createContent["room_version"] = rules.id;
  if (v12 && preset === "trusted_private_chat") {
    // client-server createRoom: trusted_private_chat invitees become additional creators (v12).
    const given = createContent["additional_creators"];
    const listed = Array.isArray(given) ? given.filter((u): u is string => typeof u === "string") : [];
    createContent["additional_creators"] = dedupe([...listed, ...invitees]).filter((user) => user !== creator);
  }

  const initial = new Map<string, InitialStateEvent>();
  for (const entry of options.initialState ?? []) {
    const key = stateKey(entry.type, entry.state_key ?? "");
    if (entry.type === "m.room.create") {
      throw new MatrixError("M_INVALID_PARAM", "initial_state cannot hold m.room.create: use creation_content");
    }
    if (entry.type === "m.room.member") {
      throw new MatrixError("M_INVALID_PARAM", "initial_state cannot hold m.room.member events: use invite");
    }
    // A later entry for the same key replaces an earlier one, keeping its position.
    initial.set(key, entry);
  }

  const events: EventDraft[] = [];
  const state = (type: string, content: JsonObject, key = ""): EventDraft => ({ type, sender: creator, stateKey: key, content });

  const join: JsonObject = { membership: "join" };
  if (profile.displayname !== undefined) join["displayname"] = profile.displayname;
  if (profile.avatar_url !== undefined) join["avatar_url"] = profile.avatar_url;
  events.push(state("m.room.member", join, creator));

  const powerKey = stateKey("m.room.power_levels", "");
  const initialPower = initial.get(powerKey);
  initial.delete(powerKey);
  const power = initialPower?.content ?? defaultPowerLevels(rules, preset, creator, invitees);
  events.push(state("m.room.power_levels", { ...power, ...(options.powerLevelContentOverride ?? {}) }));

  if (options.alias !== undefined) events.push(state("m.room.canonical_alias", { alias: options.alias }));

  const presetState: [string, JsonObject][] = [
    ["m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" }],
    ["m.room.history_visibility", { history_visibility: "shared" }],
    ["m.room.guest_access", { guest_access: preset === "public_chat" ? "forbidden" : "can_join" }],
  ];
  for (const [type, content] of presetState) {
    // initial_state "takes precedence over events set by preset".
    if (!initial.has(stateKey(type, ""))) events.push(state(type, content));
  }

  // name and topic override initial_state's.
  if (options.name !== undefined) initial.delete(stateKey("m.room.name", ""));
  if (options.topic !== undefined) initial.delete(stateKey("m.room.topic", ""));
  for (const entry of initial.values()) events.push(state(entry.type, entry.content, entry.state_key ?? ""));
  if (options.name !== undefined) events.push(state("m.room.name", { name: options.name }));
  if (options.topic !== undefined) {
    // m.room.topic since v1.15 also carries the topic as an m.topic text block.
    events.push(state("m.room.topic", { topic: options.topic, "m.topic": { "m.text": [{ body: options.topic, mimetype: "text/plain" }] } }));
  }

  for (const invitee of invitees) {
    if (!localInvitees.includes(invitee)) continue;
    const content: JsonObject = { membership: "invite" };
    if (options.isDirect === true) content["is_direct"] = true;
    events.push(state("m.room.member", content, invitee));
  }
  return { createContent, events, preset };
}

/**
 * The default power levels of a new room (the spec's defaults for each key, as Synapse sends
 * them): the creator at 100 in rooms 1-11 (in room 12 creators are implicit and must not be
 * listed), `trusted_private_chat` invitees at the creator's level, `invite` at 0 in private
 * presets and 50 in public ones.
 */
export function defaultPowerLevels(rules: RoomVersionRules, preset: RoomPreset, creator: string, invitees: readonly string[]): JsonObject {
  const v12 = rules.auth.privilegedCreators;
  const users: JsonObject = {};
  if (!v12) {
    users[creator] = 100;
    if (preset === "trusted_private_chat") for (const invitee of invitees) users[invitee] = 100;
  }
  const events: Record<string, JsonValue> = {
    "m.room.name": 50,
    "m.room.power_levels": 100,
    "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50,
    "m.room.avatar": 50,
    "m.room.tombstone": v12 ? V12_TOMBSTONE_LEVEL : 100,
    "m.room.server_acl": 100,
    "m.room.encryption": 100,
  };
  return {
    users,
    users_default: 0,
    events,
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: preset === "public_chat" ? 50 : 0,
    notifications: { room: 50 },
  };
}

function dedupe<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
