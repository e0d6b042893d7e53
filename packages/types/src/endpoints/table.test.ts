import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";
import { describe, expect, it } from "vitest";
import type { JsonValue } from "../json.js";
import { buildPath, buildQuery, type EndpointDefinition } from "./endpoint.js";
import * as createInvite from "./membership/create-invite.js";
import * as createJoinEvent from "./membership/create-join-event.js";
import type { JsonSchema } from "./schema.js";
import { ENDPOINTS, ENDPOINTS_BY_NAME, findEndpoint, getEndpoint } from "./table.js";
import * as sendTransactionMessage from "./transactions/send-transaction-message.js";

/** The spec's examples, extracted by fixtures/extract-spec-examples.py. */
interface SpecExample {
  readonly source: string;
  readonly operationId: string;
  readonly method: string;
  readonly path: string;
  readonly pathParams: Record<string, string>;
  readonly query: Record<string, string | string[]>;
  readonly body?: JsonValue;
  readonly response?: JsonValue;
  /** The example assembled from property-level `example:` values, where it differs. */
  readonly bodyFromProperties?: JsonValue;
  readonly responseFromProperties?: JsonValue;
}
const SPEC_EXAMPLES = JSON.parse(
  readFileSync(new URL("./fixtures/spec-examples.json", import.meta.url), "utf8"),
) as readonly SpecExample[];

/** The inventory of server-server-api v1.19 (federation checklist §1.1), as method and path. */
const V1_19_OPERATIONS = [
  "GET /.well-known/matrix/server",
  "GET /_matrix/federation/v1/version",
  "GET /_matrix/key/v2/server",
  "GET /_matrix/key/v2/query/{serverName}",
  "POST /_matrix/key/v2/query",
  "PUT /_matrix/federation/v1/send/{txnId}",
  "GET /_matrix/federation/v1/event/{eventId}",
  "GET /_matrix/federation/v1/state/{roomId}",
  "GET /_matrix/federation/v1/state_ids/{roomId}",
  "GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}",
  "GET /_matrix/federation/v1/backfill/{roomId}",
  "POST /_matrix/federation/v1/get_missing_events/{roomId}",
  "GET /_matrix/federation/v1/timestamp_to_event/{roomId}",
  "GET /_matrix/federation/v1/make_join/{roomId}/{userId}",
  "PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}",
  "GET /_matrix/federation/v1/make_knock/{roomId}/{userId}",
  "PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}",
  "PUT /_matrix/federation/v1/invite/{roomId}/{eventId}",
  "PUT /_matrix/federation/v2/invite/{roomId}/{eventId}",
  "GET /_matrix/federation/v1/make_leave/{roomId}/{userId}",
  "PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}",
  "PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}",
  "PUT /_matrix/federation/v1/3pid/onbind",
  "GET /_matrix/federation/v1/publicRooms",
  "POST /_matrix/federation/v1/publicRooms",
  "GET /_matrix/federation/v1/hierarchy/{roomId}",
  "GET /_matrix/federation/v1/query/{queryType}",
  "GET /_matrix/federation/v1/query/directory",
  "GET /_matrix/federation/v1/query/profile",
  "GET /_matrix/federation/v1/openid/userinfo",
  "GET /_matrix/federation/v1/user/devices/{userId}",
  "POST /_matrix/federation/v1/user/keys/claim",
  "POST /_matrix/federation/v1/user/keys/query",
  "GET /_matrix/federation/v1/media/download/{mediaId}",
  "GET /_matrix/federation/v1/media/thumbnail/{mediaId}",
  "POST /_matrix/policy/v1/sign",
];

/** Removed from the spec (v1.18, MSC4376) but still spoken by older servers. */
const REMOVED_OPERATIONS = [
  "PUT /_matrix/federation/v1/send_join/{roomId}/{eventId}",
  "PUT /_matrix/federation/v1/send_leave/{roomId}/{eventId}",
];

const operation = (e: { method: string; path: string }) => `${e.method} ${e.path}`;

/** The spec's HTML anchor for an operation: method, then the path without `/{}.`, lower case. */
const specAnchor = (e: EndpointDefinition) => `${e.method}${e.path.replace(/[/{}.]/g, "")}`.toLowerCase();

/** Strict ajv, as a router would compile the table: unknown keywords or loose tuples throw. */
const ajv = new Ajv({ strict: true, allErrors: true });
const validators = new Map<JsonSchema, ValidateFunction>();
function validator(schema: JsonSchema): ValidateFunction {
  let fn = validators.get(schema);
  if (fn === undefined) {
    fn = ajv.compile(schema);
    validators.set(schema, fn);
  }
  return fn;
}
function errorsOf(schema: JsonSchema, value: unknown, options?: { ignoreMissing: boolean }): string[] {
  const fn = validator(schema);
  if (fn(value)) return [];
  const missing = new Set(["required", "if"]);
  return (fn.errors ?? [])
    .filter((e) => options?.ignoreMissing !== true || !missing.has(e.keyword))
    .map((e) => `${e.instancePath} ${e.message ?? ""}`);
}

describe("endpoint table coverage", () => {
  it("lists the 36 operations of v1.19 and the 2 removed v1 join/leave, nothing else", () => {
    const current = ENDPOINTS.filter((e) => e.removed === undefined).map(operation);
    const removed = ENDPOINTS.filter((e) => e.removed !== undefined).map(operation);
    expect(current).toHaveLength(36);
    expect(new Set(current)).toEqual(new Set(V1_19_OPERATIONS));
    expect(removed.sort()).toEqual([...REMOVED_OPERATIONS].sort());
    expect(ENDPOINTS).toHaveLength(38);
  });

  it("keeps the three legacy versions for older servers next to their successors", () => {
    const legacy: EndpointDefinition[] = [createJoinEvent.v1, createInvite.v1, ENDPOINTS_BY_NAME.create_leave_event.v1];
    for (const e of legacy) {
      expect(e.version).toBe("v1");
      expect(ENDPOINTS).toContain(e);
      expect(getEndpoint(e.name, "v2")).toBeDefined();
    }
    expect(legacy.filter((e) => e.removed === "v1.18")).toHaveLength(2);
  });

  it("gives every endpoint a unique name and version, matching its place in ENDPOINTS_BY_NAME", () => {
    const keys = ENDPOINTS.map((e) => `${e.name}/${e.version}`);
    expect(new Set(keys).size).toBe(ENDPOINTS.length);
    for (const [name, versions] of Object.entries(ENDPOINTS_BY_NAME)) {
      for (const [version, e] of Object.entries(versions)) {
        expect(e.name).toBe(name);
        expect(e.version).toBe(version);
      }
    }
    expect(getEndpoint("create_join_event", "v2")).toBe(createJoinEvent.v2);
    expect(getEndpoint("create_join_event", "v3")).toBeUndefined();
  });

  it("marks the auth scheme, rate limiting, ACLs and multipart answers as the spec does", () => {
    const where = (pred: (e: EndpointDefinition) => boolean) => new Set(ENDPOINTS.filter(pred).map(operation));
    expect(where((e) => e.auth === "none")).toEqual(
      new Set([
        "GET /.well-known/matrix/server",
        "GET /_matrix/federation/v1/version",
        "GET /_matrix/key/v2/server",
        "GET /_matrix/key/v2/query/{serverName}",
        "POST /_matrix/key/v2/query",
        "PUT /_matrix/federation/v1/3pid/onbind",
      ]),
    );
    expect(where((e) => e.auth === "access-token-query")).toEqual(new Set(["GET /_matrix/federation/v1/openid/userinfo"]));
    expect(where((e) => e.rateLimited)).toEqual(
      new Set([
        "GET /_matrix/federation/v1/media/download/{mediaId}",
        "GET /_matrix/federation/v1/media/thumbnail/{mediaId}",
        "POST /_matrix/policy/v1/sign",
      ]),
    );
    expect(where((e) => e.responseContentType === "multipart/mixed")).toEqual(
      new Set(["GET /_matrix/federation/v1/media/download/{mediaId}", "GET /_matrix/federation/v1/media/thumbnail/{mediaId}"]),
    );
    // Server-server API § "Server Access Control Lists": the protected path prefixes.
    const aclPrefixes = ["v1/make_join", "v1/make_leave", "v1/send_join", "v2/send_join", "v1/send_leave", "v2/send_leave"]
      .concat(["v1/invite", "v2/invite", "v1/make_knock", "v1/send_knock", "v1/state", "v1/state_ids", "v1/backfill"])
      .concat(["v1/event_auth", "v1/get_missing_events"])
      .map((p) => `/_matrix/federation/${p}/`);
    for (const e of ENDPOINTS) {
      expect(e.aclProtected, e.path).toBe(aclPrefixes.some((prefix) => e.path.startsWith(prefix)));
      if (e.aclProtected) expect(e.schemas.path.properties, e.path).toHaveProperty("roomId");
    }
  });

  it("has a spec example for every endpoint", () => {
    const withExamples = new Set(SPEC_EXAMPLES.map(operation));
    expect(ENDPOINTS.map(operation).filter((op) => !withExamples.has(op))).toEqual([]);
    expect(SPEC_EXAMPLES).toHaveLength(ENDPOINTS.length);
  });
});

describe.each(ENDPOINTS.map((e) => [`${e.name} ${e.version}`, e] as const))("%s", (_, endpoint) => {
  it("has a well-formed path template whose parameters are exactly the path schema's", () => {
    expect(endpoint.path).toMatch(/^\/(?:[A-Za-z0-9_.-]+|\{[A-Za-z]+\})(?:\/(?:[A-Za-z0-9_.-]+|\{[A-Za-z]+\}))*$/);
    const names = [...endpoint.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    expect(new Set(names).size).toBe(names.length);
    const pathSchema = endpoint.schemas.path;
    expect(Object.keys(pathSchema.properties ?? {}).sort()).toEqual([...names].sort());
    expect([...(pathSchema.required ?? [])].sort()).toEqual([...names].sort());
    for (const p of Object.values(pathSchema.properties ?? {})) expect(p.type).toBe("string");
  });

  it("names the version that its path carries", () => {
    const segment = /\/(v\d+)\//.exec(endpoint.path)?.[1];
    expect(endpoint.version).toBe(segment ?? "v1");
  });

  it("links its spec anchor, in the last release that had it", () => {
    const release = endpoint.removed === undefined ? "v1.19" : "v1.17";
    expect(endpoint.spec).toBe(`https://spec.matrix.org/${release}/server-server-api/#${specAnchor(endpoint)}`);
  });

  it("takes a body exactly when the method carries one", () => {
    expect(endpoint.schemas.body !== undefined).toBe(endpoint.method !== "GET");
  });

  it("describes query parameters as the strings (or repeated strings) they arrive as", () => {
    for (const [name, p] of Object.entries(endpoint.schemas.query.properties ?? {})) {
      const isString = p.type === "string";
      const isRepeated = p.type === "array" && !Array.isArray(p.items) && (p.items as JsonSchema).type === "string";
      expect(isString || isRepeated, name).toBe(true);
    }
  });

  it("has schemas that strict ajv compiles", () => {
    const { path, query, body, response } = endpoint.schemas;
    for (const schema of [path, query, body, response]) {
      if (schema !== undefined) expect(() => validator(schema)).not.toThrow();
    }
  });

  it("is frozen", () => {
    expect(Object.isFrozen(endpoint)).toBe(true);
    expect(Object.isFrozen(endpoint.schemas.response)).toBe(true);
  });
});

describe.each(SPEC_EXAMPLES.map((x) => [`${x.method} ${x.path} (${x.source})`, x] as const))(
  "spec example %s",
  (_, example) => {
    const endpoint = ENDPOINTS.find((e) => operation(e) === operation(example));
    const built = buildPath(example.path, example.pathParams);
    const target = built + buildQuery(example.query);

    it("routes to its endpoint, or to a literal path that outranks it, with parameters decoded", () => {
      // The generic /query/{queryType} example asks for "profile", which has its own entry.
      const literal = ENDPOINTS.find((e) => e.method === example.method && e.path === built);
      expect(findEndpoint(example.method, target)).toEqual({
        pathKnown: true,
        methodAllowed: true,
        endpoint: literal ?? endpoint,
        params: literal === undefined ? example.pathParams : {},
      });
    });

    it("validates against the endpoint's schemas", () => {
      if (endpoint === undefined) throw new Error("no endpoint for this example");
      const { path, query, body, response } = endpoint.schemas;
      expect(errorsOf(path, example.pathParams)).toEqual([]);
      expect(errorsOf(query, example.query)).toEqual([]);
      if (example.body !== undefined) expect(errorsOf(body ?? {}, example.body)).toEqual([]);
      if (example.response !== undefined) expect(errorsOf(response, example.response)).toEqual([]);
    });

    it("gives every property-level example the type our schema has for it", () => {
      if (endpoint === undefined) throw new Error("no endpoint for this example");
      // Assembled from the properties' own `example:` values, so possibly incomplete.
      const { body, response } = endpoint.schemas;
      const typeErrors = (schema: JsonSchema, value: JsonValue) =>
        errorsOf(schema, value, { ignoreMissing: true });
      if (example.bodyFromProperties !== undefined) expect(typeErrors(body ?? {}, example.bodyFromProperties)).toEqual([]);
      if (example.responseFromProperties !== undefined) {
        expect(typeErrors(response, example.responseFromProperties)).toEqual([]);
      }
    });
  },
);

describe("schemas enforce what the spec requires", () => {
  const send = sendTransactionMessage.v1.schemas.body;
  const txn = (pdus: number, edus?: number) => ({
    origin: "example.org",
    origin_server_ts: 1,
    pdus: Array.from({ length: pdus }, () => ({ type: "m.room.message" })),
    ...(edus === undefined ? {} : { edus: Array.from({ length: edus }, () => ({ edu_type: "m.typing", content: {} })) }),
  });

  it("accepts a /send of 50 PDUs and 100 EDUs and refuses 51 PDUs or 101 EDUs", () => {
    expect(errorsOf(send, txn(50, 100))).toEqual([]);
    expect(errorsOf(send, txn(51))).not.toEqual([]);
    expect(errorsOf(send, txn(1, 101))).not.toEqual([]);
  });

  it("accepts a /send whose PDUs or EDUs are malformed but are objects, so they fail one by one", () => {
    expect(errorsOf(send, { origin: "a", origin_server_ts: 1, pdus: [{}, { type: 5 }], edus: [{ content: 1 }] })).toEqual(
      [],
    );
    expect(errorsOf(send, { origin: "a", origin_server_ts: 1, pdus: ["not a PDU"] })).not.toEqual([]);
    expect(errorsOf(send, { origin: "a", pdus: [] })).not.toEqual([]);
  });

  it("refuses query parameters that are not the digits, booleans or enum values they encode", () => {
    const backfill = ENDPOINTS_BY_NAME.get_backfill.v1.schemas.query;
    expect(errorsOf(backfill, { v: ["$a"], limit: "10" })).toEqual([]);
    expect(errorsOf(backfill, { v: ["$a"], limit: "ten" })).not.toEqual([]);
    expect(errorsOf(backfill, { v: "$a", limit: "10" })).not.toEqual([]);
    expect(errorsOf(backfill, { v: [], limit: "10" })).not.toEqual([]);
    const byTs = ENDPOINTS_BY_NAME.get_event_by_timestamp.v1.schemas.query;
    expect(errorsOf(byTs, { ts: "1432684800000", dir: "b" })).toEqual([]);
    expect(errorsOf(byTs, { ts: "1432684800000", dir: "x" })).not.toEqual([]);
    const sendJoin = createJoinEvent.v2.schemas.query;
    expect(errorsOf(sendJoin, { omit_members: "true" })).toEqual([]);
    expect(errorsOf(sendJoin, { omit_members: "yes" })).not.toEqual([]);
  });

  it("requires servers_in_room in a send_join answer that omitted members", () => {
    const response = createJoinEvent.v2.schemas.response;
    expect(errorsOf(response, { state: [], auth_chain: [], members_omitted: false })).toEqual([]);
    expect(errorsOf(response, { state: [], auth_chain: [], members_omitted: true })).not.toEqual([]);
    expect(errorsOf(response, { state: [], auth_chain: [], members_omitted: true, servers_in_room: ["a"] })).toEqual(
      [],
    );
  });

  it("expects the legacy [200, body] array from v1 invite and send_join, and an object from v2", () => {
    expect(errorsOf(createInvite.v1.schemas.response, [200, { event: {} }])).toEqual([]);
    expect(errorsOf(createInvite.v1.schemas.response, { event: {} })).not.toEqual([]);
    expect(errorsOf(createInvite.v1.schemas.response, [200, { event: {} }, 3])).not.toEqual([]);
    expect(errorsOf(createJoinEvent.v1.schemas.response, [201, { origin: "a", state: [], auth_chain: [] }])).not.toEqual(
      [],
    );
    expect(errorsOf(createInvite.v2.schemas.response, [200, { event: {} }])).not.toEqual([]);
  });

  it("requires the room version and event of a v2 invite", () => {
    const body = createInvite.v2.schemas.body;
    expect(errorsOf(body, { room_version: "12", event: {}, invite_room_state: [] })).toEqual([]);
    expect(errorsOf(body, { event: {} })).not.toEqual([]);
  });
});

describe("findEndpoint", () => {
  it("answers undefined (404) for paths no endpoint has", () => {
    expect(findEndpoint("GET", "/_matrix/federation/v1/nope")).toBeUndefined();
    expect(findEndpoint("PUT", "/_matrix/federation/v3/send/1")).toBeUndefined();
    expect(findEndpoint("GET", "/_matrix/federation/v1/event/$a/extra")).toBeUndefined();
    expect(findEndpoint("PUT", "/_matrix/federation/v1/send/")).toBeUndefined();
    expect(findEndpoint("GET", "/_matrix/federation/v1/version/")).toBeUndefined();
    expect(findEndpoint("GET", "/_matrix/federation/v1/event/%E0%A4%A")).toBeUndefined();
  });

  it("answers 405 with the allowed methods when the path exists for other methods only", () => {
    expect(findEndpoint("GET", "/_matrix/federation/v1/send/abc")).toEqual({
      pathKnown: true,
      methodAllowed: false,
      allowedMethods: ["PUT"],
    });
    expect(findEndpoint("DELETE", "/_matrix/federation/v1/publicRooms")).toEqual({
      pathKnown: true,
      methodAllowed: false,
      allowedMethods: expect.arrayContaining(["GET", "POST"]),
    });
    expect(findEndpoint("GET", "/_matrix/policy/v1/sign")).toMatchObject({ methodAllowed: false, allowedMethods: ["POST"] });
  });

  it("tells the two publicRooms endpoints apart by method", () => {
    expect(findEndpoint("GET", "/_matrix/federation/v1/publicRooms")).toMatchObject({
      endpoint: { name: "get_public_rooms" },
    });
    expect(findEndpoint("post", "/_matrix/federation/v1/publicRooms")).toMatchObject({
      endpoint: { name: "get_filtered_public_rooms" },
    });
  });

  it("prefers the literal query types over the generic /query/{queryType}", () => {
    expect(findEndpoint("GET", "/_matrix/federation/v1/query/profile?user_id=%40a%3Ab")).toMatchObject({
      endpoint: { name: "get_profile_information" },
      params: {},
    });
    expect(findEndpoint("GET", "/_matrix/federation/v1/query/directory")).toMatchObject({
      endpoint: { name: "get_room_information" },
    });
    expect(findEndpoint("GET", "/_matrix/federation/v1/query/m.custom")).toMatchObject({
      endpoint: { name: "get_custom_information" },
      params: { queryType: "m.custom" },
    });
    expect(findEndpoint("PUT", "/_matrix/federation/v1/query/profile")).toMatchObject({ allowedMethods: ["GET"] });
  });

  it("decodes percent-encoded parameters and ignores the query string", () => {
    const found = findEndpoint("GET", "/_matrix/federation/v1/event_auth/!r%3Aexample.org/%24ab%2Fcd%2Bef?x=1");
    expect(found).toMatchObject({
      endpoint: { name: "get_event_authorization" },
      params: { roomId: "!r:example.org", eventId: "$ab/cd+ef" },
    });
  });

  it("routes the removed v1 send_join apart from v2", () => {
    expect(findEndpoint("PUT", "/_matrix/federation/v1/send_join/!r:a/$e")).toMatchObject({
      endpoint: { version: "v1", removed: "v1.18" },
    });
    expect(findEndpoint("PUT", "/_matrix/federation/v2/send_join/!r:a/$e")).toMatchObject({
      endpoint: { version: "v2" },
    });
  });
});
