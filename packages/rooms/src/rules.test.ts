import { getRoomVersion, ROOM_VERSIONS } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { listRules } from "./rules.js";

describe("rule numbering", () => {
  it("gives every rule a distinct number and keeps the v12 numbering of the auth-events rules (3.5 after a 3.4 that never fires)", () => {
    for (const rules of Object.values(ROOM_VERSIONS)) {
      const numbers = [...listRules(rules).values()];
      expect(new Set(numbers).size).toBe(numbers.length);
    }
    expect([...listRules(getRoomVersion("12")).entries()].filter(([name]) => name.startsWith("auth_events."))).toEqual([
      ["auth_events.duplicate", "3.1"],
      ["auth_events.unexpected", "3.2"],
      ["auth_events.rejected", "3.3"],
      ["auth_events.no_create", "3.4"],
      ["auth_events.wrong_room", "3.5"],
    ]);
  });
});
