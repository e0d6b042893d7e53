import { describe, expect, it } from "vitest";
import { ROOM_VERSIONS, UnsupportedRoomVersionError, getRoomVersion } from "./room-versions.js";

describe("room-version table", () => {
  it("lists versions 1 to 12, all stable", () => {
    expect(Object.keys(ROOM_VERSIONS).sort((a, b) => Number(a) - Number(b))).toEqual(
      ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"],
    );
    for (const rules of Object.values(ROOM_VERSIONS)) expect(rules.stability).toBe("stable");
  });

  it("records each rule change at the version that introduced it", () => {
    const firstWith = (pred: (v: (typeof ROOM_VERSIONS)[string]) => boolean) =>
      Object.values(ROOM_VERSIONS).find(pred)?.id;
    expect(firstWith((v) => v.stateResolution === "v2")).toBe("2");
    expect(firstWith((v) => v.eventIdFormat === "base64")).toBe("3");
    expect(firstWith((v) => v.eventIdFormat === "urlsafe")).toBe("4");
    expect(firstWith((v) => v.enforceKeyValidity)).toBe("5");
    expect(firstWith((v) => v.strictCanonicalJson)).toBe("6");
    expect(firstWith((v) => v.auth.knocking)).toBe("7");
    expect(firstWith((v) => v.auth.restrictedJoins)).toBe("8");
    expect(firstWith((v) => v.redaction === "v9")).toBe("9");
    expect(firstWith((v) => v.auth.integerPowerLevels)).toBe("10");
    expect(firstWith((v) => v.redaction === "v11")).toBe("11");
    expect(firstWith((v) => v.strictEventByteLimits)).toBe("11");
    expect(firstWith((v) => v.stateResolution === "v2.1")).toBe("12");
    expect(getRoomVersion("12").auth.privilegedCreators).toBe(true);
    expect(getRoomVersion("11").auth.privilegedCreators).toBe(false);
  });

  it("refuses an unknown version by name", () => {
    expect(() => getRoomVersion("org.example.custom")).toThrow(UnsupportedRoomVersionError);
    expect(() => getRoomVersion("__proto__")).toThrow(/unsupported room version "__proto__"/);
  });
});
