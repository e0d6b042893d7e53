/**
 * Checking path parameters, query parameters, bodies (and, optionally, responses) against
 * the endpoint table's JSON Schemas with ajv, and describing the first problem in terms of
 * the offending field.
 *
 * @module
 */

import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { JsonNumberToken, findJsonNumberToken } from "@myelin/signing";
import type { EndpointDefinition, JsonSchema } from "@myelin/types";

/** A validation failure, as the Matrix error to answer with. */
export interface ValidationProblem {
  readonly errcode: "M_BAD_JSON" | "M_MISSING_PARAM" | "M_INVALID_PARAM";
  readonly message: string;
}

/** The compiled validators of one endpoint. */
export interface EndpointValidators {
  path(value: unknown): ValidationProblem | undefined;
  query(value: unknown): ValidationProblem | undefined;
  /** `undefined` for endpoints without a body. */
  readonly body: ((value: unknown) => ValidationProblem | undefined) | undefined;
  /** Describes why a handler's response does not match the table, or `undefined`. */
  response(value: unknown): string | undefined;
}

/**
 * Compiles validators for endpoints, once per schema object (the table shares schema
 * pieces between endpoints). The table's schemas are plain draft-07 with no formats, so
 * ajv runs in strict mode: a schema mistake fails at router creation, not at request time.
 */
export class SchemaCompiler {
  readonly #ajv = new Ajv({ strict: true, allErrors: false });
  readonly #cache = new Map<JsonSchema, ValidateFunction>();

  #compile(schema: JsonSchema): ValidateFunction {
    let validate = this.#cache.get(schema);
    if (validate === undefined) {
      validate = this.#ajv.compile(schema as object);
      this.#cache.set(schema, validate);
    }
    return validate;
  }

  /** Validators for one endpoint; the response validator is compiled only if asked for. */
  compileEndpoint(endpoint: EndpointDefinition, options: { readonly responses: boolean }): EndpointValidators {
    const path = this.#compile(endpoint.schemas.path);
    const query = this.#compile(endpoint.schemas.query);
    const bodySchema = endpoint.schemas.body;
    const body = bodySchema === undefined ? undefined : this.#compile(bodySchema);
    const response = options.responses ? this.#compile(endpoint.schemas.response) : undefined;
    return {
      path: (value) => (path(value) ? undefined : describeParamError(path.errors, "path")),
      query: (value) => (query(value) ? undefined : describeParamError(query.errors, "query")),
      body:
        body === undefined
          ? undefined
          : (value) => {
              const view = withTokensHidden(value);
              return body(view) ? undefined : { errcode: "M_BAD_JSON", message: describeBodyError(body.errors, view) };
            },
      response: (value) => {
        const view = withTokensHidden(value);
        if (response === undefined || response(view)) return undefined;
        return describeBodyError(response.errors, view);
      },
    };
  }
}

/**
 * Stands for a `JsonNumberToken` while a body is validated. A token is an object, so ajv
 * would let it pass `{ type: "object" }`; and it is not a `number`, so a handler typed
 * from a `{ type: "integer" }` schema must never receive one. A symbol matches no JSON
 * type, so every schema that gives a type refuses it, and only untyped places (the insides
 * of PDUs and EDU contents) let it through, as the handlers' documentation says.
 */
const HIDDEN_TOKEN: unique symbol = Symbol("JsonNumberToken");

/** `value` with its tokens replaced by {@link HIDDEN_TOKEN}: the same object when it has none. */
function withTokensHidden(value: unknown): unknown {
  if (findJsonNumberToken(value) === undefined) return value;
  const replace = (item: unknown): unknown => {
    if (item instanceof JsonNumberToken) return HIDDEN_TOKEN;
    if (Array.isArray(item)) return item.map(replace);
    if (typeof item !== "object" || item === null) return item;
    const copy: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(item)) {
      // Like JSON.parse: `__proto__` is an own property, never the prototype.
      Object.defineProperty(copy, key, { value: replace(member), writable: true, enumerable: true, configurable: true });
    }
    return copy;
  };
  // Depth is bounded by the parser's limit (512), so recursion is safe here.
  return replace(value);
}

/** The value at an ajv instance path (`/pdus/3/content`), or `undefined`. */
function valueAt(root: unknown, instancePath: string): unknown {
  let value = root;
  if (instancePath === "") return value;
  for (const raw of instancePath.slice(1).split("/")) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** `/pdus/3/content` -> `pdus[3].content`: how a field is named in error messages. */
function fieldName(instancePath: string, extra?: string): string {
  const segments = instancePath === "" ? [] : instancePath.slice(1).split("/");
  if (extra !== undefined) segments.push(extra);
  let name = "";
  for (const raw of segments) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^[0-9]+$/.test(segment)) name += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) name += name === "" ? segment : `.${segment}`;
    else name += `[${JSON.stringify(segment)}]`;
  }
  return name;
}

function firstError(errors: ErrorObject[] | null | undefined): ErrorObject | undefined {
  return errors?.[0] ?? undefined;
}

function describeBodyError(errors: ErrorObject[] | null | undefined, view: unknown): string {
  const error = firstError(errors);
  if (error === undefined) return "Request body does not match the schema";
  if (valueAt(view, error.instancePath) === HIDDEN_TOKEN) {
    const field = fieldName(error.instancePath);
    const what = "a float or an integer beyond ±(2^53-1), which canonical JSON cannot carry";
    return field === "" ? `Body is ${what}` : `Field ${field} is ${what}`;
  }
  if (error.keyword === "required") {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return `Missing field ${fieldName(error.instancePath, missing)}`;
  }
  const field = fieldName(error.instancePath);
  return field === "" ? `Body ${error.message ?? "is invalid"}` : `Field ${field} ${error.message ?? "is invalid"}`;
}

function describeParamError(errors: ErrorObject[] | null | undefined, where: "path" | "query"): ValidationProblem {
  const error = firstError(errors);
  if (error === undefined) return { errcode: "M_INVALID_PARAM", message: `Invalid ${where} parameters` };
  if (error.keyword === "required") {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return { errcode: "M_MISSING_PARAM", message: `Missing ${where} parameter ${fieldName("", missing)}` };
  }
  // The parameter is the first segment; deeper segments are array items (`ver[0]`).
  const segments = error.instancePath.slice(1).split("/");
  const name = segments[0] ?? "";
  const detail =
    error.keyword === "type" && (error.params as { type?: string }).type === "string"
      ? "must be given once"
      : (error.message ?? "is invalid");
  return { errcode: "M_INVALID_PARAM", message: `Invalid ${where} parameter ${name}: ${detail}` };
}
