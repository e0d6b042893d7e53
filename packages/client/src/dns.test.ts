import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { SrvRecord } from "./dns.js";
import { isDnsNotFound, orderSrvRecords } from "./dns.js";

const srv = (name: string, priority: number, weight: number): SrvRecord => ({ name, port: 8448, priority, weight });

describe("orderSrvRecords", () => {
  it("tries lower priorities first whatever the weights", () => {
    const ordered = orderSrvRecords([srv("c", 20, 100), srv("a", 5, 0), srv("b", 10, 1)], () => 0.5);
    expect(ordered.map((r) => r.name)).toEqual(["a", "b", "c"]);
  });

  it("draws within a priority by weight (RFC 2782): a low draw picks the first, a high draw the heavier", () => {
    const records = [srv("light", 1, 1), srv("heavy", 1, 9)];
    // total 10: target 1 falls in "light" (weight 1); target 10 in "heavy".
    expect(orderSrvRecords(records, () => 0).map((r) => r.name)).toEqual(["light", "heavy"]);
    expect(orderSrvRecords(records, () => 0.99).map((r) => r.name)).toEqual(["heavy", "light"]);
  });

  it("puts zero-weight records after the weighted ones of the same priority", () => {
    const ordered = orderSrvRecords([srv("zero", 1, 0), srv("some", 1, 5), srv("later", 2, 0)], () => 0.3);
    expect(ordered.map((r) => r.name)).toEqual(["some", "zero", "later"]);
  });

  it("returns a permutation ordered by priority for any records and any randomness", () => {
    const record = fc.record({
      name: fc.string({ minLength: 1, maxLength: 5 }),
      port: fc.integer({ min: 1, max: 65535 }),
      priority: fc.integer({ min: 0, max: 3 }),
      weight: fc.integer({ min: 0, max: 5 }),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 8 }), fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 1 }), (records, draws) => {
        let i = 0;
        const ordered = orderSrvRecords(records, () => draws[i++ % draws.length] as number);
        expect([...ordered].sort(compare)).toEqual([...records].sort(compare));
        for (let k = 1; k < ordered.length; k++) {
          expect(ordered[k]!.priority).toBeGreaterThanOrEqual(ordered[k - 1]!.priority);
        }
      }),
    );
  });
});

function compare(a: SrvRecord, b: SrvRecord): number {
  return JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0;
}

describe("isDnsNotFound", () => {
  it("tells 'no such name' from a DNS failure", () => {
    expect(isDnsNotFound(Object.assign(new Error(), { code: "ENOTFOUND" }))).toBe(true);
    expect(isDnsNotFound(Object.assign(new Error(), { code: "ENODATA" }))).toBe(true);
    expect(isDnsNotFound(Object.assign(new Error(), { code: "ESERVFAIL" }))).toBe(false);
    expect(isDnsNotFound(new Error("no code"))).toBe(false);
  });
});
