/**
 * Reading `m.room.power_levels` content and the power of users, per room version.
 *
 * Rooms 1-9 accept integer strings (`" +100 "`), rooms 1-5 also floats (truncated); rooms 10+
 * accept only JSON integers. Room 12 gives creators infinite power. Spec: room versions,
 * "m.room.power_levels events accept values as strings / floats"; v10 and v12 auth rules.
 *
 * @module
 */

import { isValidUserId, type JsonObject, type JsonValue, type RoomVersionRules } from "@myelin/types";
import type { RoomEvent } from "./events.js";

/** The seven integer-valued top-level properties of power-levels content. */
export const SCALAR_LEVELS = [
  "users_default",
  "events_default",
  "state_default",
  "ban",
  "redact",
  "kick",
  "invite",
] as const;

/** One of {@link SCALAR_LEVELS}. */
export type ScalarLevel = (typeof SCALAR_LEVELS)[number];

/** Defaults for absent properties (also used when the room has no power-levels event). */
const SCALAR_DEFAULTS: Readonly<Record<ScalarLevel, number>> = {
  users_default: 0,
  events_default: 0,
  state_default: 50,
  ban: 50,
  redact: 50,
  kick: 50,
  invite: 0,
};

/** Power-levels content with every value parsed to a number. */
export interface PowerLevels {
  readonly users: ReadonlyMap<string, number>;
  readonly events: ReadonlyMap<string, number>;
  readonly notifications: ReadonlyMap<string, number>;
  /** The raw scalar values that were present (absent ones are not listed). */
  readonly scalars: ReadonlyMap<ScalarLevel, number>;
}

/**
 * The user-ID check of the auth rules (power-levels `users` keys, room-12
 * `additional_creators`): the historical grammar servers must accept over federation, with
 * the length counted in code points as Synapse has always counted it.
 */
export function isValidHistoricalUserId(value: string): boolean {
  return isValidUserId(value, { historical: true, lengthUnit: "codepoints" });
}

const STRINGY_INTEGER = /^\s*[+-]?\d+\s*$/u;

/**
 * Parses one power-level value for a room version, or returns `undefined` when the value is
 * not acceptable there (a string in rooms 10+, a float in rooms 6+, anything non-numeric).
 */
export function parsePowerLevelValue(value: JsonValue | undefined, rules: RoomVersionRules): number | undefined {
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value;
    // Rooms 1-5 do not enforce canonical JSON: floats are truncated toward zero.
    if (rules.auth.floatPowerLevels && Number.isFinite(value)) return Math.trunc(value);
    return undefined;
  }
  if (typeof value === "string" && !rules.auth.integerPowerLevels && STRINGY_INTEGER.test(value)) {
    return Number(value.trim());
  }
  return undefined;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Why power-levels content is not acceptable, naming the auth rule that rejects it. */
export interface PowerLevelsProblem {
  /** Rule name (see `ruleNumber`) that rejects the content. */
  readonly rule: "power_levels.scalar_types" | "power_levels.map_types" | "power_levels.users";
  readonly message: string;
}

/**
 * Parses power-levels content strictly: the outcome of auth rules 10.1-10.3 (v12 numbering).
 *
 * Rooms 1-9 only require `users` to be well-formed (rule 9.1 / 10.1 there); this function also
 * refuses malformed values of the other properties it compares, in those rooms attributing the
 * refusal to the `users` rule, because Synapse and ruma fail on them too (Synapse's `int()`
 * raises, ruma fails to deserialise), so no server accepts such an event in practice.
 */
export function validatePowerLevels(
  content: JsonObject,
  rules: RoomVersionRules,
): { readonly ok: true; readonly levels: PowerLevels } | ({ readonly ok: false } & PowerLevelsProblem) {
  const strict = rules.auth.integerPowerLevels;
  const scalars = new Map<ScalarLevel, number>();
  for (const name of SCALAR_LEVELS) {
    if (!Object.hasOwn(content, name)) continue;
    const parsed = parsePowerLevelValue(content[name], rules);
    if (parsed === undefined) {
      return {
        ok: false,
        rule: strict ? "power_levels.scalar_types" : "power_levels.users",
        message: `${name} is not an integer${strict ? "" : " or integer string"}`,
      };
    }
    scalars.set(name, parsed);
  }
  const maps: Record<"events" | "notifications", Map<string, number>> = {
    events: new Map(),
    notifications: new Map(),
  };
  for (const name of ["events", "notifications"] as const) {
    // Rooms 1-5 ignore `notifications` in the auth rules entirely (it was added in room 6).
    if (name === "notifications" && !strict && !rules.auth.limitNotificationsPowerLevels) continue;
    if (!Object.hasOwn(content, name)) continue;
    const value = content[name];
    if (!isObject(value)) {
      return {
        ok: false,
        rule: strict ? "power_levels.map_types" : "power_levels.users",
        message: `${name} is not an object`,
      };
    }
    for (const [key, level] of Object.entries(value)) {
      const parsed = parsePowerLevelValue(level, rules);
      if (parsed === undefined) {
        return {
          ok: false,
          rule: strict ? "power_levels.map_types" : "power_levels.users",
          message: `${name}[${JSON.stringify(key)}] is not an integer`,
        };
      }
      maps[name].set(key, parsed);
    }
  }
  const users = new Map<string, number>();
  if (Object.hasOwn(content, "users")) {
    const value = content["users"];
    if (!isObject(value)) return { ok: false, rule: "power_levels.users", message: "users is not an object" };
    for (const [user, level] of Object.entries(value)) {
      if (!isValidHistoricalUserId(user)) {
        return { ok: false, rule: "power_levels.users", message: `users key ${JSON.stringify(user)} is not a user ID` };
      }
      const parsed = parsePowerLevelValue(level, rules);
      if (parsed === undefined) {
        return { ok: false, rule: "power_levels.users", message: `users[${JSON.stringify(user)}] is not an integer` };
      }
      users.set(user, parsed);
    }
  }
  return { ok: true, levels: { users, events: maps.events, notifications: maps.notifications, scalars } };
}

/**
 * Parses power-levels content leniently, for an event already in the room state: values that
 * do not parse are treated as absent (so their defaults apply).
 */
export function readPowerLevels(content: JsonObject, rules: RoomVersionRules): PowerLevels {
  // Memoised per content object: state resolution reads the same power-levels event for
  // thousands of events, and its `users` map can be large. Event content is never mutated.
  let byRules = parsedContent.get(content);
  if (byRules === undefined) {
    byRules = new WeakMap();
    parsedContent.set(content, byRules);
  }
  let levels = byRules.get(rules.auth);
  if (levels === undefined) {
    levels = parseLeniently(content, rules);
    byRules.set(rules.auth, levels);
  }
  return levels;
}

const parsedContent = new WeakMap<JsonObject, WeakMap<object, PowerLevels>>();

function parseLeniently(content: JsonObject, rules: RoomVersionRules): PowerLevels {
  const scalars = new Map<ScalarLevel, number>();
  for (const name of SCALAR_LEVELS) {
    const parsed = Object.hasOwn(content, name) ? parsePowerLevelValue(content[name], rules) : undefined;
    if (parsed !== undefined) scalars.set(name, parsed);
  }
  const readMap = (name: string): Map<string, number> => {
    const map = new Map<string, number>();
    const value = Object.hasOwn(content, name) ? content[name] : undefined;
    if (!isObject(value)) return map;
    for (const [key, level] of Object.entries(value)) {
      const parsed = parsePowerLevelValue(level, rules);
      if (parsed !== undefined) map.set(key, parsed);
    }
    return map;
  };
  return { users: readMap("users"), events: readMap("events"), notifications: readMap("notifications"), scalars };
}

/**
 * The room creators per room version: from room 12 the create event's `sender` plus
 * `content.additional_creators`; in 11 the `sender`; before that `content.creator`.
 */
export function creatorsOf(create: RoomEvent | undefined, rules: RoomVersionRules): ReadonlySet<string> {
  const creators = new Set<string>();
  if (create === undefined) return creators;
  if (rules.auth.implicitRoomCreator) {
    creators.add(create.sender);
  } else {
    const creator = create.content["creator"];
    if (typeof creator === "string") creators.add(creator);
  }
  if (rules.auth.privilegedCreators) {
    const additional = create.content["additional_creators"];
    if (Array.isArray(additional)) {
      for (const user of additional) if (typeof user === "string") creators.add(user);
    }
  }
  return creators;
}

/**
 * Power as the auth rules see it: the current power-levels event (if any) and the creators.
 * Creators in room 12 have infinite power (`Infinity`); with no power-levels event, a creator
 * in rooms 1-11 has 100 and everyone else 0.
 */
export class PowerView {
  constructor(
    readonly levels: PowerLevels | undefined,
    readonly creators: ReadonlySet<string>,
    readonly rules: RoomVersionRules,
  ) {}

  /** The power level of a user. */
  userLevel(user: string): number {
    if (this.rules.auth.privilegedCreators && this.creators.has(user)) return Infinity;
    if (this.levels !== undefined) return this.levels.users.get(user) ?? this.scalar("users_default");
    return this.creators.has(user) ? 100 : 0;
  }

  /** A named level (`ban`, `kick`, `invite`, ...), with the spec's defaults. */
  scalar(name: ScalarLevel): number {
    return this.levels?.scalars.get(name) ?? SCALAR_DEFAULTS[name];
  }

  /** The *required power level* to send an event of `type` (state or not). */
  requiredLevel(type: string, isState: boolean): number {
    return (
      this.levels?.events.get(type) ?? (isState ? this.scalar("state_default") : this.scalar("events_default"))
    );
  }
}
