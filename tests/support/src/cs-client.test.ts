import { describe, expect, it } from "vitest";
import { waitFor } from "./cs-client.js";

describe("waitFor", () => {
  it("returns the first value that is neither undefined nor false, treating a throwing probe as not yet", async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        calls++;
        if (calls === 1) throw new Error("not ready");
        return calls === 2 ? false : `ready after ${calls}`;
      },
      { what: "the probe succeeds", intervalMs: 1 },
    );
    expect(value).toBe("ready after 3");
  });

  it("fails after the deadline naming what it waited for and the last error", async () => {
    await expect(
      waitFor(
        () => {
          throw new Error("still 404");
        },
        { what: "B sees the message", timeoutMs: 50, intervalMs: 5 },
      ),
    ).rejects.toThrow(/timed out after 50 ms waiting until B sees the message \(last error: still 404\)/);
  });
});
