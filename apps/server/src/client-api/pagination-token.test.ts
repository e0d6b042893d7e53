import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { comparePositions, formatPaginationToken, parsePaginationToken } from "./pagination-token.js";

const integer = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const position = fc.record({ depth: integer, stream: integer });

describe("/messages pagination tokens", () => {
  it("reads back every position it writes, negative stream orderings included", () => {
    fc.assert(
      fc.property(position, (p) => {
        expect(parsePaginationToken(formatPaginationToken(p))).toEqual({ kind: "topological", position: p });
      }),
    );
    expect(formatPaginationToken({ depth: 12, stream: -3 })).toBe("t12_-3");
  });

  it("still reads the s<N> stream tokens of earlier versions", () => {
    expect(parsePaginationToken("s42")).toEqual({ kind: "stream", stream: 42 });
    expect(parsePaginationToken("s-7")).toEqual({ kind: "stream", stream: -7 });
    expect(parsePaginationToken("s-0")).toEqual({ kind: "stream", stream: 0 });
  });

  it("refuses what it did not write: other shapes, non-integers and numbers beyond the safe range", () => {
    for (const text of ["", "t", "t1", "t1_", "t_1", "t1-2", "t1_2_3", "t1.5_2", "s", "s1.0", "x1_2", "T1_2", " t1_2", "t1_2 ", "t99999999999999999_1", "s99999999999999999"]) {
      expect(parsePaginationToken(text), text).toBeUndefined();
    }
  });

  it("orders positions by depth, then by stream ordering", () => {
    fc.assert(
      fc.property(position, position, (a, b) => {
        const order = comparePositions(a, b);
        expect(Math.sign(order) + Math.sign(comparePositions(b, a))).toBe(0);
        if (a.depth !== b.depth) expect(order < 0).toBe(a.depth < b.depth);
        else expect(Math.sign(order)).toBe(Math.sign(a.stream - b.stream));
      }),
    );
    expect(comparePositions({ depth: 3, stream: 100 }, { depth: 4, stream: -100 })).toBeLessThan(0);
    expect(comparePositions({ depth: 4, stream: -5 }, { depth: 4, stream: 2 })).toBeLessThan(0);
    expect(comparePositions({ depth: 4, stream: 2 }, { depth: 4, stream: 2 })).toBe(0);
  });
});
