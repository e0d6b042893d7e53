import { getRoomVersion } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { parsePowerLevelValue, validatePowerLevels } from "./power-levels.js";

describe("power-level values per room version", () => {
  it.each([
    ["100", 100],
    ["000100", 100],
    ["+100", 100],
    ["-100", -100],
    [" 100 ", 100],
    [" 00100 ", 100],
    [" +100 ", 100],
    [" -100 ", -100],
  ])("rooms 1-9 read the string %j as %d (spec examples)", (value, expected) => {
    expect(parsePowerLevelValue(value, getRoomVersion("9"))).toBe(expected);
    expect(parsePowerLevelValue(value, getRoomVersion("10"))).toBeUndefined();
  });

  it.each(["1.5", "1e3", "", "abc", "+-1", "0x10"])("no room version reads the string %j", (value) => {
    expect(parsePowerLevelValue(value, getRoomVersion("1"))).toBeUndefined();
  });

  it("rooms 1-5 truncate floats (5.114698E4 is 51146); later rooms refuse them", () => {
    expect(parsePowerLevelValue(5.114698e4, getRoomVersion("5"))).toBe(51146);
    expect(parsePowerLevelValue(-50.57, getRoomVersion("1"))).toBe(-50);
    expect(parsePowerLevelValue(50.57, getRoomVersion("6"))).toBeUndefined();
  });

  it("never reads booleans, null or objects", () => {
    for (const value of [true, null, {}, []]) expect(parsePowerLevelValue(value, getRoomVersion("1"))).toBeUndefined();
  });

  it("validates whole contents and names the rule that refuses them", () => {
    const v10 = getRoomVersion("10");
    expect(validatePowerLevels({ users: { "@a:x": 10 }, events: { "m.room.name": 50 }, ban: 50 }, v10).ok).toBe(true);
    expect(validatePowerLevels({ notifications: [] }, v10)).toMatchObject({ ok: false, rule: "power_levels.map_types" });
    expect(validatePowerLevels({ kick: null }, v10)).toMatchObject({ ok: false, rule: "power_levels.scalar_types" });
    expect(validatePowerLevels({ users: [] }, v10)).toMatchObject({ ok: false, rule: "power_levels.users" });
    // Rooms 1-5 ignore notifications in the auth rules entirely.
    expect(validatePowerLevels({ notifications: { room: "lots" } }, getRoomVersion("5")).ok).toBe(true);
    expect(validatePowerLevels({ notifications: { room: "lots" } }, getRoomVersion("6"))).toMatchObject({ ok: false, rule: "power_levels.users" });
  });
});
