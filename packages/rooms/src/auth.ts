/**
 * The authorisation rules for room versions 1-12.
 *
 * {@link checkAuth} applies every rule to an event and its own `auth_events` (checks on
 * receipt, step 4). {@link checkAuthAgainstState} applies the rules that depend on room state
 * to an event and a state map (steps 5 and 6, and the iterative auth checks of state
 * resolution). Each decision names the rule that made it, numbered as the spec numbers it in
 * that room version, so "5.3.5.2" in room 12 is "4.3.5.2" in room 8.
 *
 * Every difference between room versions reads a flag of the room-version table; nothing here
 * compares version strings. Spec: rooms/v1..v12 "Authorisation rules".
 *
 * @module
 */

import { decodeBase64, verifyJsonSignature } from "@myelin/signing";
import { findRoomVersion, type JsonObject, type JsonValue, type RoomVersionRules } from "@myelin/types";
import { authTypesForEvent } from "./auth-events.js";
import { domainOf, membershipOf, type RoomEvent, type StateKey, stateKey, stateKeyOf } from "./events.js";
import { creatorsOf, isValidHistoricalUserId, PowerView, readPowerLevels, SCALAR_LEVELS, validatePowerLevels } from "./power-levels.js";
import { type RuleName, ruleNumber } from "./rules.js";

/** The outcome of the auth rules for one event: allowed or not, and which rule decided. */
export interface AuthDecision {
  readonly allowed: boolean;
  /** The rule's number in this room version's spec text, e.g. `"5.4.3"`. */
  readonly rule: string;
  /** The rule's stable name across versions, e.g. `"member.invite.target_joined_or_banned"`. */
  readonly name: RuleName;
  /** Why, in words. */
  readonly message: string;
}

/**
 * Verifies an Ed25519 JSON signature, as `@myelin/signing`'s `verifyJsonSignature` does:
 * the signature by `serverName` under `keyId` on `object` against an unpadded-base64 public key.
 */
export type JsonSignatureVerifier = (
  object: JsonObject,
  serverName: string,
  keyId: string,
  publicKeyBase64: string,
) => boolean;

/**
 * The default {@link JsonSignatureVerifier}: `@myelin/signing`'s `verifyJsonSignature` with the
 * public key decoded from (unpadded, standard or URL-safe) base64.
 */
export const verifyThirdPartySignature: JsonSignatureVerifier = (object, serverName, keyId, publicKeyBase64) =>
  verifyJsonSignature(object, serverName, keyId, decodeBase64(publicKeyBase64)).valid;

/** Options shared by {@link checkAuth} and {@link checkAuthAgainstState}. */
export interface AuthOptions {
  /**
   * Room 12: the room's create event. It is never in `auth_events` there; without it (here,
   * among the supplied auth events, or in the state) the event is refused (rule 2). Ignored in
   * other versions, where the create event comes from the auth events or the state.
   */
  readonly createEvent?: RoomEvent | undefined;
  /** Whether an event was rejected (auth rule "entries which were themselves rejected"). */
  readonly isRejected?: ((eventId: string) => boolean) | undefined;
  /**
   * Verifies the signatures in `content.third_party_invite.signed` against the public keys of
   * the `m.room.third_party_invite` event. Default: {@link verifyThirdPartySignature}.
   */
  readonly verifySignature?: JsonSignatureVerifier | undefined;
  /**
   * Whether `event` carries a valid signature from `serverName` (rooms 8+: the authorising
   * server of a restricted join). The default checks that `signatures[serverName]` is present
   * and non-empty; cryptographic verification of every required signature is the job of the
   * signature checks that run before the auth rules (checks on receipt, step 2).
   */
  readonly isSignedBy?: ((event: RoomEvent, serverName: string) => boolean) | undefined;
}

/** The room state the state-dependent rules read: state key -> event. */
export type AuthState = ReadonlyMap<StateKey, RoomEvent>;

const CREATE_KEY = stateKey("m.room.create", "");
const POWER_LEVELS_KEY = stateKey("m.room.power_levels", "");
const JOIN_RULES_KEY = stateKey("m.room.join_rules", "");

/** Builds decisions for one room version. */
class Decider {
  constructor(private readonly rules: RoomVersionRules) {}

  decide(allowed: boolean, name: RuleName, message: string): AuthDecision {
    const rule = ruleNumber(this.rules, name);
    if (rule === undefined) throw new Error(`rule ${name} does not exist in room version ${this.rules.id}`);
    return { allowed, rule, name, message };
  }

  allow(name: RuleName, message: string): AuthDecision {
    return this.decide(true, name, message);
  }

  deny(name: RuleName, message: string): AuthDecision {
    return this.decide(false, name, message);
  }
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Applies every authorisation rule to `event`, authorising it against its own `auth_events`.
 *
 * `authEvents` must contain the events `event.auth_events` lists (extra events are ignored;
 * order does not matter). In room 12 pass the create event as `options.createEvent`.
 * Throws {@link MissingAuthEventError} when a listed auth event is not supplied: fetch them
 * before asking.
 */
export function checkAuth(
  event: RoomEvent,
  authEvents: Iterable<RoomEvent>,
  rules: RoomVersionRules,
  options: AuthOptions = {},
): AuthDecision {
  const d = new Decider(rules);
  if (event.type === "m.room.create") return checkCreate(event, rules);

  const byId = new Map<string, RoomEvent>();
  for (const authEvent of authEvents) byId.set(authEvent.event_id, authEvent);
  // Room 12: the create event is named by the room ID; it may come as an option or among the
  // supplied events (it is still refused if the event itself lists it).
  const derivedCreateId = event.room_id?.startsWith("!") === true ? `$${event.room_id.slice(1)}` : undefined;
  const create = rules.auth.privilegedCreators
    ? (options.createEvent ?? (derivedCreateId === undefined ? undefined : byId.get(derivedCreateId)))
    : undefined;
  if (create !== undefined) byId.set(create.event_id, create);
  const isRejected = options.isRejected ?? (() => false);

  // Room 12, rule 2: the room ID is the create event's ID with `!` for `$`.
  if (rules.auth.privilegedCreators) {
    if (create === undefined) return d.deny("room_id", "the room's create event was not supplied");
    if (create.type !== "m.room.create" || create.state_key !== "") {
      return d.deny("room_id", `${create.event_id} is not an m.room.create event`);
    }
    if (event.room_id !== `!${create.event_id.slice(1)}` || !create.event_id.startsWith("$")) {
      return d.deny("room_id", `room_id ${String(event.room_id)} is not derived from create event ${create.event_id}`);
    }
    if (isRejected(create.event_id)) return d.deny("room_id", `create event ${create.event_id} was rejected`);
  }

  const entries: RoomEvent[] = [];
  for (const id of event.auth_events) {
    const authEvent = byId.get(id);
    if (authEvent === undefined) throw new MissingAuthEventError(event.event_id, id);
    entries.push(authEvent);
  }

  // Rule 2 (3 in room 12): the auth events themselves. The spec lists these as independent
  // conditions; they are checked in its order so the first failing rule is the one reported.
  const seen = new Map<StateKey, string>();
  for (const entry of entries) {
    const key = stateKeyOf(entry);
    if (key === undefined) continue;
    const previous = seen.get(key);
    if (previous !== undefined) {
      return d.deny("auth_events.duplicate", `auth events ${previous} and ${entry.event_id} share the key ${key}`);
    }
    seen.set(key, entry.event_id);
  }
  const expected = new Set(authTypesForEvent(event, rules));
  for (const entry of entries) {
    const key = stateKeyOf(entry);
    if (key === undefined || !expected.has(key)) {
      return d.deny(
        "auth_events.unexpected",
        `auth event ${entry.event_id} (${key ?? entry.type}) is not one the auth events selection picks`,
      );
    }
  }
  for (const entry of entries) {
    if (isRejected(entry.event_id)) return d.deny("auth_events.rejected", `auth event ${entry.event_id} was rejected`);
  }
  if (!rules.auth.privilegedCreators && !seen.has(CREATE_KEY)) {
    return d.deny("auth_events.no_create", "no m.room.create event among the auth events");
  }
  for (const entry of entries) {
    // MSC4307 (spec v1.16): applies to every room version.
    if (entry.room_id !== event.room_id) {
      return d.deny("auth_events.wrong_room", `auth event ${entry.event_id} is in room ${String(entry.room_id)}`);
    }
  }

  const state = new Map<StateKey, RoomEvent>();
  for (const entry of entries) state.set(stateKeyOf(entry) as StateKey, entry);
  return checkAuthAgainstState(event, state, rules, create === undefined ? options : { ...options, createEvent: create });
}

/** Thrown by {@link checkAuth} when an event's auth event was not supplied. */
export class MissingAuthEventError extends Error {
  override readonly name = "MissingAuthEventError";
  readonly reason = "missing_auth_event";
  constructor(
    readonly eventId: string,
    readonly authEventId: string,
  ) {
    super(`auth event ${authEventId} of ${eventId} was not supplied`);
  }
}

/**
 * The auth rules for `m.room.create` (rule 1), which depend on nothing but the event.
 */
export function checkCreate(event: RoomEvent, rules: RoomVersionRules): AuthDecision {
  const d = new Decider(rules);
  if (event.prev_events.length > 0) return d.deny("create.prev_events", "the create event has prev_events");
  if (rules.auth.privilegedCreators) {
    if (event.room_id !== undefined) return d.deny("create.room_id", "the create event has a room_id");
  } else {
    const roomDomain = event.room_id === undefined ? undefined : domainOf(event.room_id);
    if (roomDomain === undefined || roomDomain !== domainOf(event.sender)) {
      return d.deny("create.room_id", "the room ID's domain does not match the sender's");
    }
  }
  if (Object.hasOwn(event.content, "room_version")) {
    const version = event.content["room_version"];
    if (typeof version !== "string" || findRoomVersion(version) === undefined) {
      return d.deny("create.room_version", `room_version ${JSON.stringify(version)} is not a recognised version`);
    }
  }
  if (!rules.auth.implicitRoomCreator && !Object.hasOwn(event.content, "creator")) {
    return d.deny("create.creator", "content has no creator");
  }
  if (rules.auth.privilegedCreators && Object.hasOwn(event.content, "additional_creators")) {
    const additional = event.content["additional_creators"];
    if (!Array.isArray(additional) || !additional.every((u) => typeof u === "string" && isValidHistoricalUserId(u))) {
      return d.deny("create.additional_creators", "additional_creators is not an array of user IDs");
    }
  }
  return d.allow("create.allow", "a valid create event");
}

/**
 * Applies the state-dependent authorisation rules to `event` against `state` (a map from
 * state key to event): the rules after the auth-events checks. This is what the iterative
 * auth checks of state resolution use, and what checks on receipt steps 5 and 6 use with the
 * state before the event and the current state.
 *
 * `m.room.create` events are checked with {@link checkCreate}. In room 12, the create event
 * is `options.createEvent` when given, else the state's.
 */
export function checkAuthAgainstState(
  event: RoomEvent,
  state: AuthState,
  rules: RoomVersionRules,
  options: AuthOptions = {},
): AuthDecision {
  if (event.type === "m.room.create") return checkCreate(event, rules);
  return new StateAuth(event, state, rules, options).check();
}

/** One state-dependent check of one event. */
class StateAuth {
  private readonly d: Decider;
  private readonly create: RoomEvent | undefined;
  private readonly power: PowerView;

  constructor(
    private readonly event: RoomEvent,
    private readonly state: AuthState,
    private readonly rules: RoomVersionRules,
    private readonly options: AuthOptions,
  ) {
    this.d = new Decider(rules);
    this.create = (rules.auth.privilegedCreators ? options.createEvent : undefined) ?? state.get(CREATE_KEY);
    const pl = state.get(POWER_LEVELS_KEY);
    this.power = new PowerView(
      pl === undefined ? undefined : readPowerLevels(pl.content, rules),
      creatorsOf(this.create, rules),
      rules,
    );
  }

  private membership(user: string): string | undefined {
    return membershipOf(this.state.get(stateKey("m.room.member", user)));
  }

  check(): AuthDecision {
    const { event, d, rules, create } = this;
    if (create === undefined) {
      return rules.auth.privilegedCreators
        ? d.deny("room_id", "the room's create event is unknown")
        : d.deny("auth_events.no_create", "no m.room.create event in the state");
    }
    if (create.content["m.federate"] === false && domainOf(event.sender) !== domainOf(create.sender)) {
      return d.deny("federate", "the room is not federated (m.federate is false) and the sender is remote");
    }
    if (rules.auth.specialCaseAliases && event.type === "m.room.aliases") {
      if (event.state_key === undefined) return d.deny("aliases.no_state_key", "m.room.aliases without a state_key");
      if (event.state_key !== domainOf(event.sender)) {
        return d.deny("aliases.wrong_domain", "the state_key is not the sender's domain");
      }
      return d.allow("aliases.allow", "the sender's server may set its own aliases");
    }
    if (event.type === "m.room.member") return this.checkMember();

    if (this.membership(event.sender) !== "join") {
      return d.deny("sender_not_joined", `${event.sender} is not joined to the room`);
    }
    const senderLevel = this.power.userLevel(event.sender);
    if (event.type === "m.room.third_party_invite") {
      const invite = this.power.scalar("invite");
      return senderLevel >= invite
        ? d.allow("third_party_invite.power", `sender power ${senderLevel} >= invite level ${invite}`)
        : d.deny("third_party_invite.power", `sender power ${senderLevel} < invite level ${invite}`);
    }
    const required = this.power.requiredLevel(event.type, event.state_key !== undefined);
    if (required > senderLevel) {
      return d.deny("required_power", `sending ${event.type} needs power ${required}; the sender has ${senderLevel}`);
    }
    if (event.state_key !== undefined && event.state_key.startsWith("@") && event.state_key !== event.sender) {
      return d.deny("state_key_user", "a state_key starting with @ must be the sender");
    }
    if (event.type === "m.room.power_levels") return this.checkPowerLevels(senderLevel);
    if (rules.auth.redactionDomainCheck && event.type === "m.room.redaction") return this.checkRedaction(senderLevel);
    return d.allow("otherwise", "no rule refuses it");
  }

  private checkMember(): AuthDecision {
    const { event, d, rules, power } = this;
    const membership = event.content["membership"];
    if (event.state_key === undefined || typeof membership !== "string") {
      return d.deny("member.malformed", "a member event needs a state_key and a string content.membership");
    }
    const target = event.state_key;
    const authoriser = event.content["join_authorised_via_users_server"];
    if (rules.auth.restrictedJoins && typeof authoriser === "string") {
      const server = domainOf(authoriser);
      const isSignedBy = this.options.isSignedBy ?? hasSignatureFrom;
      if (server === undefined || !isSignedBy(event, server)) {
        return d.deny(
          "member.authorising_signature",
          `not signed by ${String(server)}, the server of join_authorised_via_users_server`,
        );
      }
    }
    const senderMembership = this.membership(event.sender);
    const targetMembership = this.membership(target);
    const joinRuleEvent = this.state.get(JOIN_RULES_KEY);
    // Synapse and ruma treat a room without join rules as invite-only.
    const joinRuleValue = joinRuleEvent === undefined ? "invite" : joinRuleEvent.content["join_rule"];
    const joinRule = typeof joinRuleValue === "string" ? joinRuleValue : undefined;
    const senderLevel = power.userLevel(event.sender);
    const targetLevel = power.userLevel(target);

    switch (membership) {
      case "join": {
        const create = this.create as RoomEvent;
        const creator = rules.auth.implicitRoomCreator ? create.sender : create.content["creator"];
        if (event.prev_events.length === 1 && event.prev_events[0] === create.event_id && target === creator) {
          return d.allow("member.join.creator", "the creator's first join, right after the create event");
        }
        if (event.sender !== target) return d.deny("member.join.not_self", "cannot join on behalf of another user");
        if (targetMembership === "ban") return d.deny("member.join.banned", `${target} is banned`);
        if (joinRule === "invite" || (rules.auth.knocking && joinRule === "knock")) {
          return targetMembership === "invite" || targetMembership === "join"
            ? d.allow("member.join.invite_rule", `join rule ${joinRule} and ${target} is ${targetMembership}`)
            : d.deny("member.join.invite_rule", `join rule ${joinRule} and ${target} is not invited`);
        }
        if (
          rules.auth.restrictedJoins &&
          (joinRule === "restricted" || (rules.auth.knockRestricted && joinRule === "knock_restricted"))
        ) {
          if (targetMembership === "invite" || targetMembership === "join") {
            return d.allow("member.join.restricted.already_in", `join rule ${joinRule} and ${target} is ${targetMembership}`);
          }
          if (typeof authoriser !== "string") {
            return d.deny("member.join.restricted.authoriser_invalid", "no join_authorised_via_users_server");
          }
          if (this.membership(authoriser) !== "join") {
            return d.deny("member.join.restricted.authoriser_invalid", `authoriser ${authoriser} is not joined`);
          }
          const authoriserLevel = power.userLevel(authoriser);
          const invite = power.scalar("invite");
          if (authoriserLevel < invite) {
            return d.deny(
              "member.join.restricted.authoriser_invalid",
              `authoriser ${authoriser} has power ${authoriserLevel} < invite level ${invite}`,
            );
          }
          return d.allow("member.join.restricted.allow", `authorised by ${authoriser}`);
        }
        if (joinRule === "public") return d.allow("member.join.public", "the room is public");
        return d.deny("member.join.otherwise", `join rule ${JSON.stringify(joinRuleValue)} does not let ${target} join`);
      }
      case "invite": {
        if (Object.hasOwn(event.content, "third_party_invite")) return this.checkThirdPartyInvite(target, targetMembership);
        if (senderMembership !== "join") {
          return d.deny("member.invite.sender_not_joined", `${event.sender} is not joined`);
        }
        if (targetMembership === "join" || targetMembership === "ban") {
          return d.deny("member.invite.target_joined_or_banned", `${target} is ${targetMembership}`);
        }
        const invite = power.scalar("invite");
        return senderLevel >= invite
          ? d.allow("member.invite.power", `sender power ${senderLevel} >= invite level ${invite}`)
          : d.deny("member.invite.otherwise", `sender power ${senderLevel} < invite level ${invite}`);
      }
      case "leave": {
        if (event.sender === target) {
          const may =
            targetMembership === "invite" ||
            targetMembership === "join" ||
            (rules.auth.knocking && targetMembership === "knock");
          return may
            ? d.allow("member.leave.self", `${target} leaves from ${targetMembership}`)
            : d.deny("member.leave.self", `${target} cannot leave from ${String(targetMembership)}`);
        }
        if (senderMembership !== "join") return d.deny("member.leave.sender_not_joined", `${event.sender} is not joined`);
        const ban = power.scalar("ban");
        if (targetMembership === "ban" && senderLevel < ban) {
          return d.deny("member.leave.unban_power", `unbanning needs power ${ban}; the sender has ${senderLevel}`);
        }
        const kick = power.scalar("kick");
        if (senderLevel >= kick && targetLevel < senderLevel) {
          return d.allow("member.leave.kick_power", `sender power ${senderLevel} >= kick level ${kick} and > target's ${targetLevel}`);
        }
        return d.deny(
          "member.leave.otherwise",
          `sender power ${senderLevel} (kick level ${kick}) does not exceed target power ${targetLevel}`,
        );
      }
      case "ban": {
        if (senderMembership !== "join") return d.deny("member.ban.sender_not_joined", `${event.sender} is not joined`);
        const ban = power.scalar("ban");
        if (senderLevel >= ban && targetLevel < senderLevel) {
          return d.allow("member.ban.power", `sender power ${senderLevel} >= ban level ${ban} and > target's ${targetLevel}`);
        }
        return d.deny(
          "member.ban.otherwise",
          `sender power ${senderLevel} (ban level ${ban}) does not exceed target power ${targetLevel}`,
        );
      }
      case "knock": {
        if (rules.auth.knocking) {
          if (joinRule !== "knock" && !(rules.auth.knockRestricted && joinRule === "knock_restricted")) {
            return d.deny("member.knock.join_rule", `join rule ${JSON.stringify(joinRuleValue)} does not allow knocking`);
          }
          if (event.sender !== target) return d.deny("member.knock.not_self", "cannot knock on behalf of another user");
          if (senderMembership !== "ban" && senderMembership !== "invite" && senderMembership !== "join") {
            return d.allow("member.knock.allow", `${target} may knock`);
          }
          return d.deny("member.knock.otherwise", `${target} is already ${senderMembership}`);
        }
        return d.deny("member.unknown", "knocking does not exist in this room version");
      }
      default:
        return d.deny("member.unknown", `unknown membership ${JSON.stringify(membership)}`);
    }
  }

  private checkThirdPartyInvite(target: string, targetMembership: string | undefined): AuthDecision {
    const { event, d } = this;
    if (targetMembership === "ban") return d.deny("member.invite.third_party.target_banned", `${target} is banned`);
    const invite = event.content["third_party_invite"];
    const signed = isObject(invite) ? invite["signed"] : undefined;
    if (!isObject(signed)) return d.deny("member.invite.third_party.no_signed", "third_party_invite has no signed object");
    const mxid = signed["mxid"];
    const token = signed["token"];
    if (typeof mxid !== "string" || typeof token !== "string") {
      return d.deny("member.invite.third_party.no_mxid_or_token", "signed lacks mxid or token");
    }
    if (mxid !== target) return d.deny("member.invite.third_party.mxid_mismatch", `signed.mxid ${mxid} is not ${target}`);
    const inviteEvent = this.state.get(stateKey("m.room.third_party_invite", token));
    if (inviteEvent === undefined) {
      return d.deny("member.invite.third_party.no_invite_event", `no m.room.third_party_invite with state_key ${token}`);
    }
    if (inviteEvent.sender !== event.sender) {
      return d.deny("member.invite.third_party.sender_mismatch", "the sender did not send the third-party invite");
    }
    const verify = this.options.verifySignature ?? verifyThirdPartySignature;
    const signatures = signed["signatures"];
    if (isObject(signatures)) {
      for (const publicKey of thirdPartyPublicKeys(inviteEvent.content)) {
        for (const [server, keys] of Object.entries(signatures)) {
          if (!isObject(keys)) continue;
          for (const keyId of Object.keys(keys)) {
            if (!keyId.startsWith("ed25519:")) continue;
            if (safeVerify(verify, signed, server, keyId, publicKey)) {
              return d.allow("member.invite.third_party.signature_valid", `signed by ${server} with a key of the invite`);
            }
          }
        }
      }
    }
    return d.deny("member.invite.third_party.otherwise", "no signature in signed matches the invite's public keys");
  }

  private checkPowerLevels(senderLevel: number): AuthDecision {
    const { event, d, rules, power } = this;
    const validated = validatePowerLevels(event.content, rules);
    if (!validated.ok) return d.deny(validated.rule, validated.message);
    const next = validated.levels;
    if (rules.auth.privilegedCreators) {
      for (const creator of power.creators) {
        if (next.users.has(creator)) return d.deny("power_levels.creators_in_users", `creator ${creator} is listed in users`);
      }
    }
    const previousEvent = this.state.get(stateKey(event.type, event.state_key ?? ""));
    if (previousEvent === undefined) return d.allow("power_levels.no_previous", "the first power-levels event");
    const previous = readPowerLevels(previousEvent.content, rules);

    for (const name of SCALAR_LEVELS) {
      const before = previous.scalars.get(name);
      const after = next.scalars.get(name);
      if (before === after) continue;
      if (before !== undefined && before > senderLevel) {
        return d.deny("power_levels.scalars.old_too_high", `${name} was ${before}, above the sender's ${senderLevel}`);
      }
      if (after !== undefined && after > senderLevel) {
        return d.deny("power_levels.scalars.new_too_high", `${name} would be ${after}, above the sender's ${senderLevel}`);
      }
    }
    const maps: ["events" | "notifications", ReadonlyMap<string, number>, ReadonlyMap<string, number>][] = [
      ["events", previous.events, next.events],
    ];
    if (rules.auth.limitNotificationsPowerLevels) maps.push(["notifications", previous.notifications, next.notifications]);
    for (const [field, before, after] of maps) {
      for (const [key, old] of before) {
        if (after.get(key) !== old && old > senderLevel) {
          return d.deny("power_levels.map_removed.old_too_high", `${field}.${key} was ${old}, above the sender's ${senderLevel}`);
        }
      }
    }
    for (const [field, before, after] of maps) {
      for (const [key, value] of after) {
        if (before.get(key) !== value && value > senderLevel) {
          return d.deny("power_levels.map_added.new_too_high", `${field}.${key} would be ${value}, above the sender's ${senderLevel}`);
        }
      }
    }
    for (const [user, old] of previous.users) {
      if (user === event.sender || next.users.get(user) === old) continue;
      if (old >= senderLevel) {
        return d.deny("power_levels.users_removed.old_too_high", `${user} had ${old}, not below the sender's ${senderLevel}`);
      }
    }
    for (const [user, value] of next.users) {
      if (previous.users.get(user) !== value && value > senderLevel) {
        return d.deny("power_levels.users_added.new_too_high", `${user} would have ${value}, above the sender's ${senderLevel}`);
      }
    }
    return d.allow("power_levels.allow", "every change is within the sender's power");
  }

  private checkRedaction(senderLevel: number): AuthDecision {
    const { event, d, power } = this;
    const redact = power.scalar("redact");
    if (senderLevel >= redact) return d.allow("redaction.power", `sender power ${senderLevel} >= redact level ${redact}`);
    const redacts = event.redacts;
    if (redacts !== undefined && domainOf(redacts) !== undefined && domainOf(redacts) === domainOf(event.event_id)) {
      return d.allow("redaction.same_domain", "the redacted event's ID has the redaction's domain");
    }
    return d.deny("redaction.otherwise", `sender power ${senderLevel} < redact level ${redact} and the domains differ`);
  }
}

function hasSignatureFrom(event: RoomEvent, serverName: string): boolean {
  const signatures = event.signatures?.[serverName];
  return isObject(signatures) && Object.keys(signatures).length > 0;
}

/** The public keys of an `m.room.third_party_invite`: `public_key` and every `public_keys[].public_key`. */
function thirdPartyPublicKeys(content: JsonObject): string[] {
  const keys: string[] = [];
  const single = content["public_key"];
  if (typeof single === "string") keys.push(single);
  const list = content["public_keys"];
  if (Array.isArray(list)) {
    for (const entry of list) {
      if (isObject(entry) && typeof entry["public_key"] === "string") keys.push(entry["public_key"]);
    }
  }
  return keys;
}

function safeVerify(
  verify: JsonSignatureVerifier,
  signed: JsonObject,
  server: string,
  keyId: string,
  publicKey: string,
): boolean {
  try {
    return verify(signed, server, keyId, publicKey);
  } catch {
    // A malformed key or signature is simply not a match.
    return false;
  }
}
