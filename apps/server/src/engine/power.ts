/**
 * Reading power levels for the engine's own checks (who may redact whom): the same rules as
 * the auth rules' "power level of a user" (rooms 1-11: the creator has 100 when there is no
 * power-levels event; room 12: creators have infinite power).
 *
 * @module
 */

import type { RoomEvent } from "@myelin/rooms";
import { validatePowerLevels } from "@myelin/rooms";
import type { JsonValue, RoomVersionRules } from "@myelin/types";

/** The power of a user, `Infinity` for room-12 creators. */
export function userPowerLevel(
  userId: string,
  create: RoomEvent | undefined,
  powerLevels: RoomEvent | undefined,
  rules: RoomVersionRules,
): number {
  if (rules.auth.privilegedCreators && create !== undefined && creatorsOf(create).has(userId)) return Infinity;
  if (powerLevels === undefined) {
    if (create === undefined) return 0;
    const creator = rules.auth.implicitRoomCreator ? create.sender : create.content["creator"];
    return creator === userId ? 100 : 0;
  }
  const parsed = validatePowerLevels(powerLevels.content, rules);
  if (!parsed.ok) return 0;
  return parsed.levels.users.get(userId) ?? parsed.levels.scalars.get("users_default") ?? 0;
}

/** A scalar level (`redact`, `kick`, `ban`: default 50; `invite`: default 0). */
export function scalarLevel(name: "redact" | "kick" | "ban" | "invite", powerLevels: RoomEvent | undefined, rules: RoomVersionRules): number {
  const fallback = name === "invite" ? 0 : 50;
  if (powerLevels === undefined) return fallback;
  const parsed = validatePowerLevels(powerLevels.content, rules);
  if (!parsed.ok) return fallback;
  return parsed.levels.scalars.get(name) ?? fallback;
}

/** Room 12 creators: the create event's sender and `additional_creators`. */
function creatorsOf(create: RoomEvent): Set<string> {
  const creators = new Set([create.sender]);
  const additional: JsonValue | undefined = create.content["additional_creators"];
  if (Array.isArray(additional)) for (const user of additional) if (typeof user === "string") creators.add(user);
  return creators;
}
