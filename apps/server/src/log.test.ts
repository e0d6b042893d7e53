import { describe, expect, it } from "vitest";
import { createLogger } from "./log.js";
import { CapturedOutput } from "./test-helpers.js";

function logger(level: "debug" | "info" | "warn" | "error") {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  return { log: createLogger({ level, stdout, stderr, now: () => Date.UTC(2025, 0, 2, 3, 4, 5, 6) }), stdout, stderr };
}

describe("the log", () => {
  it("writes information to stdout and problems to stderr, one timestamped line each", () => {
    const { log, stdout, stderr } = logger("debug");
    log.debug("d");
    log.info("i", { a: 1 });
    log.warn("w", { b: "two words" });
    log.error("e", { c: true });
    expect(stdout.text).toBe("2025-01-02T03:04:05.006Z DEBUG d\n2025-01-02T03:04:05.006Z INFO i a=1\n");
    expect(stderr.text).toBe('2025-01-02T03:04:05.006Z WARN w b="two words"\n2025-01-02T03:04:05.006Z ERROR e c=true\n');
  });

  it("drops entries below its level", () => {
    const { log, stdout, stderr } = logger("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    expect(stdout.text).toBe("");
    expect(stderr.lines).toHaveLength(1);
  });

  it("keeps what a peer sent on one line", () => {
    const { log, stdout } = logger("info");
    log.info("GET /a\nINJECTED 200", { origin: "x\ny", path: { p: "\r" } });
    expect(stdout.lines).toEqual(['2025-01-02T03:04:05.006Z INFO GET /a\\x0aINJECTED 200 origin="x\\ny" path={"p":"\\r"}']);
  });

  it("prints an error with its causes and skips undefined fields", () => {
    const { log, stderr } = logger("info");
    log.error("failed", { error: new Error("outer", { cause: new Error("inner") }), absent: undefined });
    expect(stderr.lines).toEqual(['2025-01-02T03:04:05.006Z ERROR failed error="outer: inner"']);
  });
});
