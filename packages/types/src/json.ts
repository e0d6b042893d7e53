/**
 * JSON value types. Matrix JSON is the subset that canonical JSON can encode; the
 * types here are the plain JSON shapes, the limits are enforced by @myelin/signing.
 *
 * @module
 */

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}
