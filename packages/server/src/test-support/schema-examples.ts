/**
 * Minimal values satisfying the endpoint table's schemas (not part of the build), so a
 * test can call every endpoint with a valid request without a hand-written fixture each.
 *
 * @module
 */

import type { JsonSchema, JsonValue } from "@myelin/types";

/** A string satisfying the few `pattern`s the table uses, with characters that need encoding. */
export function exampleString(schema: JsonSchema, plain = "x"): string {
  switch (schema.pattern) {
    case undefined:
      return plain;
    case "^@":
      return "@alice:example.org";
    case "^!":
      return "!room/with?odd#chars:exämple.org";
    case "^[0-9]+$":
      return "1";
    default:
      throw new Error(`no example for pattern ${schema.pattern}`);
  }
}

/** A small value the schema accepts: required members only, minimum array lengths. */
export function exampleFor(schema: JsonSchema): JsonValue {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum !== undefined) return schema.enum[0] as JsonValue;
  const alternative = schema.anyOf?.[0] ?? schema.oneOf?.[0];
  if (alternative !== undefined) return exampleFor(alternative);
  switch (schema.type) {
    case undefined:
      return {};
    case "string":
      return exampleString(schema);
    case "integer":
    case "number":
      return 1;
    case "boolean":
      return true;
    case "null":
      return null;
    case "array": {
      if (Array.isArray(schema.items)) return (schema.items as readonly JsonSchema[]).map(exampleFor);
      const items = (schema.items ?? {}) as JsonSchema;
      return Array.from({ length: Math.max(1, schema.minItems ?? 0) }, () => exampleFor(items));
    }
    case "object": {
      const out: Record<string, JsonValue> = {};
      for (const name of schema.required ?? []) {
        const property = schema.properties?.[name];
        out[name] = property === undefined ? {} : exampleFor(property);
      }
      const extra = schema.additionalProperties;
      if ((schema.minProperties ?? 0) > Object.keys(out).length && typeof extra === "object") {
        out["extra"] = exampleFor(extra);
      }
      return out;
    }
    default:
      throw new Error(`no example for type ${String(schema.type)}`);
  }
}

/**
 * Query parameters for a query schema: every parameter it names (optional ones too, so
 * that parsing is exercised), as the strings a request carries.
 */
export function exampleQuery(schema: JsonSchema): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    if (property.type === "array") out[name] = ["1", "two words"];
    else out[name] = property.enum !== undefined ? String(property.enum[0]) : exampleString(property, "a b&c=d");
  }
  return out;
}

/** Path parameters for a path schema: strings with `/`, `?`, `#`, `%`, `:` and non-ASCII. */
export function examplePathParams(schema: JsonSchema): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    out[name] = property.pattern === undefined ? `$${name}/with?odd#chars%20:exämple.org` : exampleString(property);
  }
  return out;
}
