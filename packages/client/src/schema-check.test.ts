import { readFileSync } from "node:fs";
import { ENDPOINTS } from "@myelin/types";
import type { JsonSchema } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { checkJsonSchema } from "./schema-check.js";

/** The spec's examples (copied from @myelin/types' fixtures, extracted from the spec's OpenAPI files). */
interface SpecExample {
  readonly method: string;
  readonly path: string;
  readonly response?: unknown;
}
const EXAMPLES = JSON.parse(readFileSync(new URL("./fixtures/spec-examples.json", import.meta.url), "utf8")) as SpecExample[];

const errors = (schema: JsonSchema, value: unknown): string[] => checkJsonSchema(schema, value).map((v) => `${v.path}: ${v.message}`);

describe("checkJsonSchema", () => {
  it("accepts every response example of the spec against its endpoint's schema", () => {
    let checked = 0;
    for (const example of EXAMPLES) {
      if (example.response === undefined) continue;
      const endpoint = ENDPOINTS.find((e) => e.method === example.method && e.path === example.path && e.removed === undefined)
        ?? ENDPOINTS.find((e) => e.method === example.method && e.path === example.path);
      if (endpoint === undefined) continue;
      expect(errors(endpoint.schemas.response, example.response), `${example.method} ${example.path}`).toEqual([]);
      checked++;
    }
    expect(checked).toBeGreaterThan(25);
  });

  it("checks types, integer included", () => {
    expect(errors({ type: "integer" }, 1)).toEqual([]);
    expect(errors({ type: "integer" }, 1.5)).toEqual([": expected integer, got number"]);
    expect(errors({ type: "object" }, [])).toEqual([": expected object, got array"]);
    expect(errors({ type: "null" }, null)).toEqual([]);
  });

  it("checks required, properties, additional and pattern properties, with JSON Pointer paths", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: { a: { type: "string" }, "x/y": { type: "integer" } },
      required: ["a"],
      patternProperties: { "^n_": { type: "number" } },
      additionalProperties: false,
    };
    expect(errors(schema, { a: "s", n_1: 2 })).toEqual([]);
    expect(errors(schema, { "x/y": "no", n_1: "no", extra: 1 })).toEqual([
      ': missing required property "a"',
      "/x~1y: expected integer, got string",
      "/n_1: expected number, got string",
      ': unexpected property "extra"',
    ]);
    expect(errors({ type: "object", additionalProperties: { type: "string" } }, { k: 1 })).toEqual(["/k: expected string, got number"]);
  });

  it("checks arrays: items, tuples, additionalItems, bounds", () => {
    expect(errors({ type: "array", items: { type: "string" } }, ["a", 1])).toEqual(["/1: expected string, got number"]);
    const tuple: JsonSchema = { type: "array", items: [{ const: 200 }, { type: "object" }], additionalItems: false, minItems: 2 };
    expect(errors(tuple, [200, {}])).toEqual([]);
    expect(errors(tuple, [201, {}, 3])).toEqual(["/0: expected 200", ": unexpected item at index 2"]);
    expect(errors(tuple, [200])).toEqual([": fewer than 2 items"]);
    expect(errors({ type: "array", maxItems: 1 }, [1, 2])).toEqual([": more than 1 items"]);
  });

  it("checks strings and numbers: pattern, lengths in code points, bounds, enum", () => {
    expect(errors({ type: "string", pattern: "^[0-9]+$" }, "12a")).toEqual([": does not match ^[0-9]+$"]);
    expect(errors({ type: "string", maxLength: 1 }, "😀")).toEqual([]);
    expect(errors({ type: "string", minLength: 2 }, "😀")).toEqual([": shorter than 2"]);
    expect(errors({ type: "integer", minimum: 0, maximum: 10 }, 11)).toEqual([": greater than 10"]);
    expect(errors({ enum: ["a", "b"] }, "c")).toEqual([': expected one of "a", "b"']);
  });

  it("checks oneOf, anyOf and if/then", () => {
    const oneOf: JsonSchema = { oneOf: [{ type: "string" }, { type: "string", maxLength: 3 }] };
    expect(errors(oneOf, "abcd")).toEqual([]);
    expect(errors(oneOf, "ab")).toEqual([": matches 2 of oneOf, expected exactly 1"]);
    expect(errors({ anyOf: [{ type: "string" }, { type: "integer" }] }, true)).toEqual([": matches none of anyOf"]);
    const conditional: JsonSchema = {
      type: "object",
      if: { properties: { omitted: { const: true } }, required: ["omitted"] },
      then: { required: ["servers"] },
    };
    expect(errors(conditional, { omitted: false })).toEqual([]);
    expect(errors(conditional, { omitted: true })).toEqual([': missing required property "servers"']);
  });

  it("stops after 20 violations", () => {
    expect(checkJsonSchema({ type: "array", items: { type: "string" } }, new Array(100).fill(0))).toHaveLength(20);
  });

  it("treats __proto__ as an ordinary property name", () => {
    const value = JSON.parse('{"__proto__": 1}') as unknown;
    expect(errors({ type: "object", additionalProperties: { type: "string" } }, value)).toEqual(["/__proto__: expected string, got number"]);
    expect(errors({ type: "object", required: ["constructor"] }, {})).toEqual([': missing required property "constructor"']);
  });
});
