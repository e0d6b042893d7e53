/**
 * Checking path parameters, query parameters, bodies (and, optionally, responses) against
 * the endpoint table's JSON Schemas with ajv, and describing the first problem in terms of
 * the offending field.
 *
 * @module
 */

import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
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
          : (value) => (body(value) ? undefined : { errcode: "M_BAD_JSON", message: describeBodyError(body.errors) }),
      response: (value) => {
        if (response === undefined || response(value)) return undefined;
        return describeBodyError(response.errors);
      },
    };
  }
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

function describeBodyError(errors: ErrorObject[] | null | undefined): string {
  const error = firstError(errors);
  if (error === undefined) return "Request body does not match the schema";
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
