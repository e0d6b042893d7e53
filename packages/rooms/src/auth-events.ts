/**
 * Auth events selection: which state an event must cite in `auth_events`.
 *
 * Spec: server-server API, "Auth events selection"; rooms v12 "MUST NOT select
 * `m.room.create`" (the create event is implied by the room ID).
 *
 * @module
 */

import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { type StateKey, stateKey } from "./events.js";

/** The fields of an event (or an event being built) that decide its auth events. */
export interface AuthEventsInput {
  readonly type: string;
  readonly sender: string;
  readonly state_key?: string | undefined;
  readonly content: JsonObject;
}

/**
 * The state keys whose current events an event must cite: create (rooms 1-11), power levels,
 * the sender's membership; for member events also the target's membership, the join rules
 * (for `join`, `invite` and `knock`), the third-party invite named by
 * `content.third_party_invite.signed.token`, and (rooms 8+, joins) the member event of
 * `content.join_authorised_via_users_server`. Empty for `m.room.create`.
 */
export function authTypesForEvent(event: AuthEventsInput, rules: RoomVersionRules): StateKey[] {
  if (event.type === "m.room.create") return [];
  const keys = new Set<StateKey>();
  if (!rules.auth.privilegedCreators) keys.add(stateKey("m.room.create", ""));
  keys.add(stateKey("m.room.power_levels", ""));
  keys.add(stateKey("m.room.member", event.sender));
  if (event.type === "m.room.member") {
    const membership = event.content["membership"];
    if (event.state_key !== undefined) keys.add(stateKey("m.room.member", event.state_key));
    if (membership === "join" || membership === "invite" || membership === "knock") {
      keys.add(stateKey("m.room.join_rules", ""));
    }
    if (membership === "invite") {
      const token = thirdPartyInviteToken(event.content);
      if (token !== undefined) keys.add(stateKey("m.room.third_party_invite", token));
    }
    if (membership === "join" && rules.auth.restrictedJoins) {
      const authoriser = event.content["join_authorised_via_users_server"];
      if (typeof authoriser === "string") keys.add(stateKey("m.room.member", authoriser));
    }
  }
  return [...keys];
}

/** `content.third_party_invite.signed.token` when it is a string. */
export function thirdPartyInviteToken(content: JsonObject): string | undefined {
  const invite = content["third_party_invite"];
  if (typeof invite !== "object" || invite === null || Array.isArray(invite)) return undefined;
  const signed = invite["signed"];
  if (typeof signed !== "object" || signed === null || Array.isArray(signed)) return undefined;
  const token = signed["token"];
  return typeof token === "string" ? token : undefined;
}

/**
 * Selects the auth events for a new event from the current room state (a map from
 * {@link StateKey} to event ID), in the order of {@link authTypesForEvent}.
 */
export function selectAuthEvents(
  event: AuthEventsInput,
  state: ReadonlyMap<StateKey, string>,
  rules: RoomVersionRules,
): string[] {
  const ids: string[] = [];
  for (const key of authTypesForEvent(event, rules)) {
    const id = state.get(key);
    if (id !== undefined && !ids.includes(id)) ids.push(id);
  }
  return ids;
}
