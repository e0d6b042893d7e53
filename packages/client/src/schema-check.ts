/**
 * A small validator for the JSON Schema subset the endpoint table is written in (see
 * `@myelin/types`' `schema.ts`), so that the client can check responses without ajv.
 *
 * Why not ajv: the client only checks what remote servers answer, against a few dozen
 * fixed schemas that use a documented subset of draft-07 (no `$ref`, no `format`). This
 * checker implements exactly that subset in one pass and with no code generation, which
 * keeps the client free of third-party runtime dependencies. Callers who want ajv's
 * complete semantics pass their own validator (`FederationClientOptions.validateResponse`).
 *
 * Implemented: `type` (with `integer`), `enum`, `const`, `properties`, `required`,
 * `additionalProperties`, `patternProperties`, `minProperties`, `maxProperties`, `items`
 * (one schema or a tuple), `additionalItems`, `minItems`, `maxItems`, `oneOf`, `anyOf`,
 * `if`/`then`, `pattern`, `minLength`, `maxLength` (in code points), `minimum`, `maximum`.
 * Annotations (`title`, `description`, `default`) and unknown keywords are ignored.
 *
 * @module
 */

import type { JsonSchema } from "@myelin/types";

/** One place where a value breaks its schema. */
export interface SchemaViolation {
  /** JSON Pointer (RFC 6901) to the value, `""` for the root. */
  readonly path: string;
  readonly message: string;
}

const MAX_VIOLATIONS = 20;
const patternCache = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let compiled = patternCache.get(pattern);
  if (compiled === undefined) {
    // JSON Schema patterns are ECMA-262 regular expressions over code points.
    compiled = new RegExp(pattern, "u");
    patternCache.set(pattern, compiled);
  }
  return compiled;
}

function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replace(/~/g, "~0").replace(/\//g, "~1")}`;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "object":
      return typeOf(value) === "object";
    default:
      return typeOf(value) === type;
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeOf(a) !== typeOf(b) || typeof a !== "object" || a === null) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => deepEqual(item, other[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((k) => Object.hasOwn(right, k) && deepEqual(left[k], right[k]));
}

/**
 * Checks `value` against `schema`. Returns the violations found (at most 20), or an empty
 * array when the value is valid.
 */
export function checkJsonSchema(schema: JsonSchema, value: unknown): SchemaViolation[] {
  const violations: SchemaViolation[] = [];
  check(schema, value, "", violations);
  return violations;
}

function check(schema: JsonSchema, value: unknown, path: string, out: SchemaViolation[]): void {
  if (out.length >= MAX_VIOLATIONS) return;
  const report = (message: string): void => {
    if (out.length < MAX_VIOLATIONS) out.push({ path, message });
  };

  if (schema.type !== undefined && !matchesType(value, schema.type)) {
    report(`expected ${schema.type}, got ${typeOf(value)}`);
    return;
  }
  if (schema.const !== undefined && !deepEqual(value, schema.const)) report(`expected ${JSON.stringify(schema.const)}`);
  if (schema.enum !== undefined && !schema.enum.some((option) => deepEqual(value, option))) {
    report(`expected one of ${schema.enum.map((o) => JSON.stringify(o)).join(", ")}`);
  }
  if (schema.anyOf !== undefined && !schema.anyOf.some((s) => checkJsonSchema(s, value).length === 0)) {
    report("matches none of anyOf");
  }
  if (schema.oneOf !== undefined) {
    const matching = schema.oneOf.filter((s) => checkJsonSchema(s, value).length === 0).length;
    if (matching !== 1) report(`matches ${matching} of oneOf, expected exactly 1`);
  }
  if (schema.if !== undefined && schema.then !== undefined && checkJsonSchema(schema.if, value).length === 0) {
    check(schema.then, value, path, out);
  }

  if (typeof value === "string") {
    const length = schema.minLength !== undefined || schema.maxLength !== undefined ? [...value].length : 0;
    if (schema.minLength !== undefined && length < schema.minLength) report(`shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && length > schema.maxLength) report(`longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) report(`does not match ${schema.pattern}`);
  } else if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) report(`less than ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) report(`greater than ${schema.maximum}`);
  } else if (Array.isArray(value)) {
    checkArray(schema, value, path, out, report);
  } else if (typeof value === "object" && value !== null) {
    checkObject(schema, value as Record<string, unknown>, path, out, report);
  }
}

function checkArray(
  schema: JsonSchema,
  value: readonly unknown[],
  path: string,
  out: SchemaViolation[],
  report: (message: string) => void,
): void {
  if (schema.minItems !== undefined && value.length < schema.minItems) report(`fewer than ${schema.minItems} items`);
  if (schema.maxItems !== undefined && value.length > schema.maxItems) report(`more than ${schema.maxItems} items`);
  const { items } = schema;
  if (items === undefined) return;
  if (Array.isArray(items)) {
    const tuple = items as readonly JsonSchema[];
    value.forEach((item, i) => {
      const itemSchema = tuple[i];
      if (itemSchema !== undefined) check(itemSchema, item, pointer(path, i), out);
      else if (schema.additionalItems === false) report(`unexpected item at index ${i}`);
      else if (typeof schema.additionalItems === "object") check(schema.additionalItems, item, pointer(path, i), out);
    });
    return;
  }
  value.forEach((item, i) => check(items as JsonSchema, item, pointer(path, i), out));
}

function checkObject(
  schema: JsonSchema,
  value: Readonly<Record<string, unknown>>,
  path: string,
  out: SchemaViolation[],
  report: (message: string) => void,
): void {
  const keys = Object.keys(value);
  if (schema.minProperties !== undefined && keys.length < schema.minProperties) {
    report(`fewer than ${schema.minProperties} properties`);
  }
  if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
    report(`more than ${schema.maxProperties} properties`);
  }
  for (const name of schema.required ?? []) {
    if (!Object.hasOwn(value, name)) report(`missing required property "${name}"`);
  }
  const properties = schema.properties ?? {};
  const patterns = Object.entries(schema.patternProperties ?? {});
  for (const key of keys) {
    const child = value[key];
    const known = Object.hasOwn(properties, key);
    if (known) check(properties[key] as JsonSchema, child, pointer(path, key), out);
    let matchedPattern = false;
    for (const [pattern, patternSchema] of patterns) {
      if (regex(pattern).test(key)) {
        matchedPattern = true;
        check(patternSchema, child, pointer(path, key), out);
      }
    }
    if (known || matchedPattern) continue;
    if (schema.additionalProperties === false) report(`unexpected property "${key}"`);
    else if (typeof schema.additionalProperties === "object") {
      check(schema.additionalProperties, child, pointer(path, key), out);
    }
  }
}
