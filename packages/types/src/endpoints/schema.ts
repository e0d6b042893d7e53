/**
 * The JSON Schema subset the endpoint table is written in, and {@link FromSchema}, which
 * turns a schema written as a literal into the TypeScript type of the values it accepts.
 *
 * Schemas are plain draft-07 JSON Schema (what ajv 8's default class validates), with no
 * `format` keywords, so a router can compile them with `new Ajv({ strict: true })` and
 * nothing else. The type mapping is deliberately shallow: it reads `type`, `properties`,
 * `required`, `additionalProperties`, `patternProperties`, `items` (list or tuple),
 * `enum`, `const`, `oneOf` and `anyOf`, and ignores the value constraints (`pattern`,
 * `maxItems`, `if`/`then` ...), which only ajv enforces.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "../json.js";

/** A primitive JSON Schema type name. */
export type JsonSchemaTypeName = "string" | "integer" | "number" | "boolean" | "null" | "array" | "object";

/** A JSON Schema (draft-07) as used by the endpoint table. */
export interface JsonSchema {
  readonly type?: JsonSchemaTypeName;
  readonly title?: string;
  readonly description?: string;
  readonly properties?: { readonly [name: string]: JsonSchema };
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly patternProperties?: { readonly [pattern: string]: JsonSchema };
  readonly minProperties?: number;
  readonly maxProperties?: number;
  /** A schema for every item, or (with `additionalItems: false`) a tuple. */
  readonly items?: JsonSchema | readonly JsonSchema[];
  readonly additionalItems?: boolean | JsonSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly enum?: readonly JsonValue[];
  readonly const?: JsonValue;
  readonly oneOf?: readonly JsonSchema[];
  readonly anyOf?: readonly JsonSchema[];
  readonly if?: JsonSchema;
  readonly then?: JsonSchema;
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly default?: JsonValue;
}

/** A schema whose values are JSON objects (path and query parameters, most bodies). */
export interface ObjectSchema extends JsonSchema {
  readonly type: "object";
}

/**
 * The TypeScript type of the values a literal {@link JsonSchema} accepts.
 *
 * A schema without `type`, `enum`, `const`, `oneOf` or `anyOf` accepts any JSON value; an
 * object schema without `properties`, `additionalProperties` or `patternProperties` is
 * {@link JsonObject}. Properties not listed in `required` become optional.
 */
export type FromSchema<S> = S extends { readonly const: infer C }
  ? Mutable<C>
  : S extends { readonly enum: readonly (infer E)[] }
    ? E
    : S extends { readonly oneOf: readonly (infer U)[] }
      ? FromEach<U>
      : S extends { readonly anyOf: readonly (infer U)[] }
        ? FromEach<U>
        : S extends { readonly type: infer T }
          ? FromTypeName<S, T>
          : JsonValue;

/** Distributes over a union of schemas (the members of `oneOf`/`anyOf`). */
type FromEach<U> = U extends unknown ? FromSchema<U> : never;

type FromTypeName<S, T> = T extends "string"
  ? string
  : T extends "integer" | "number"
    ? number
    : T extends "boolean"
      ? boolean
      : T extends "null"
        ? null
        : T extends "array"
          ? FromArray<S>
          : T extends "object"
            ? FromObject<S>
            : never;

type FromArray<S> = S extends { readonly items: infer I }
  ? I extends readonly unknown[]
    ? { -readonly [K in keyof I]: FromSchema<I[K]> }
    : FromSchema<I>[]
  : JsonValue[];

type FromObject<S> = S extends { readonly properties: infer P }
  ? Simplify<FromProperties<P, RequiredOf<S>> & FromExtraProperties<S>>
  : S extends { readonly additionalProperties: JsonSchema | true } | { readonly patternProperties: object }
    ? FromExtraProperties<S>
    : JsonObject;

type RequiredOf<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;

type FromProperties<P, R> = {
  -readonly [K in keyof P as K extends R ? K : never]: FromSchema<P[K]>;
} & {
  -readonly [K in keyof P as K extends R ? never : K]?: FromSchema<P[K]>;
};

type FromExtraProperties<S> = S extends { readonly additionalProperties: infer A }
  ? A extends false
    ? unknown
    : A extends true
      ? { [key: string]: JsonValue }
      : { [key: string]: FromSchema<A> }
  : S extends { readonly patternProperties: infer PP }
    ? { [key: string]: FromSchema<PP[keyof PP]> }
    : unknown;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** `const` values are inferred read-only; the wire types are plain JSON. */
type Mutable<T> = T extends readonly unknown[] | object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;
