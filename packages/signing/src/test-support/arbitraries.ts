/**
 * fast-check arbitraries shared by the tests (not part of the build).
 *
 * @module
 */

import fc from "fast-check";
import type { JsonObject, JsonValue } from "@myelin/types";

/** Canonical JSON values: safe integers only, well-formed Unicode strings and keys. */
export const canonicalJsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.integer({ min: -1000, max: 1000 }),
    fc.string({ unit: "binary" }),
    fc.string({ unit: "grapheme-ascii" }),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: "binary", maxLength: 6 }), tie("value"), { maxKeys: 6, noNullPrototype: true }),
  ),
})).value;

/** Canonical JSON objects. */
export const canonicalJsonObject: fc.Arbitrary<JsonObject> = fc.dictionary(
  fc.string({ unit: "binary", maxLength: 8 }),
  canonicalJsonValue,
  { maxKeys: 8, noNullPrototype: true },
);
