import fc from "fast-check";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { JsonObject } from "../json.js";
import {
  BuildPathError,
  buildPath,
  buildQuery,
  defineEndpoint,
  matchPath,
  parseQuery,
  type PathParams,
  type QueryParams,
  type RequestBody,
  type ResponseBody,
} from "./endpoint.js";
import * as createInvite from "./membership/create-invite.js";
import * as createJoinEvent from "./membership/create-join-event.js";
import * as createJoinEventTemplate from "./membership/create-join-event-template.js";
import * as getBackfill from "./events/get-backfill.js";
import * as claimKeys from "./keys/claim-keys.js";
import * as getProfileInformation from "./query/get-profile-information.js";
import * as sendTransactionMessage from "./transactions/send-transaction-message.js";
import type { FromSchema } from "./schema.js";

/** Identifier-like strings: any printable Unicode, including the characters paths reserve. */
const idLike = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 });

describe("buildPath", () => {
  it("percent-encodes $, :, /, + and ! in IDs so they stay inside their segment", () => {
    expect(
      buildPath(createJoinEvent.v2, { roomId: "!room:example.org", eventId: "$ab/cd+ef:example.org" }),
    ).toBe("/_matrix/federation/v2/send_join/!room%3Aexample.org/%24ab%2Fcd%2Bef%3Aexample.org");
    expect(buildPath(sendTransactionMessage.v1, { txnId: "a b?c#d%e" })).toBe(
      "/_matrix/federation/v1/send/a%20b%3Fc%23d%25e",
    );
  });

  it("percent-encodes non-ASCII characters as UTF-8", () => {
    expect(buildPath("/x/{id}", { id: "é🎉" })).toBe("/x/%C3%A9%F0%9F%8E%89");
  });

  it("refuses a missing, empty or unencodable parameter, naming it", () => {
    const missing = () => buildPath("/x/{a}/{b}", { a: "1" } as PathParams<"/x/{a}/{b}">);
    expect(missing).toThrow(BuildPathError);
    expect(missing).toThrow(expect.objectContaining({ reason: "missing-param", param: "b" }));
    expect(() => buildPath("/x/{a}", { a: "" })).toThrow(expect.objectContaining({ reason: "empty-param" }));
    expect(() => buildPath("/x/{a}", { a: "\ud800" })).toThrow(expect.objectContaining({ reason: "unencodable-param" }));
  });
});

describe("matchPath", () => {
  it("round-trips any parameters through buildPath", () => {
    fc.assert(
      fc.property(idLike, idLike, (roomId, eventId) => {
        const path = buildPath(createInvite.v2, { roomId, eventId });
        expect(matchPath(createInvite.v2.path, path)).toEqual({ roomId, eventId });
      }),
    );
  });

  it("decodes %2F inside a parameter instead of splitting on it", () => {
    expect(matchPath("/e/{eventId}", "/e/%24a%2Fb")).toEqual({ eventId: "$a/b" });
    expect(matchPath("/e/{eventId}", "/e/$a/b")).toBeUndefined();
  });

  it("accepts unencoded reserved characters that other servers send as is", () => {
    expect(matchPath("/r/{roomId}/{userId}", "/r/!a:b.org/@u:b.org")).toEqual({ roomId: "!a:b.org", userId: "@u:b.org" });
  });

  it("ignores the query string and fragment", () => {
    expect(matchPath("/s/{txnId}", "/s/1?a=b/c")).toEqual({ txnId: "1" });
    expect(matchPath("/s/{txnId}", "/s/1#x")).toEqual({ txnId: "1" });
  });

  it("rejects empty parameters, extra or missing segments, other literals and bad encodings", () => {
    expect(matchPath("/s/{txnId}", "/s/")).toBeUndefined();
    expect(matchPath("/s/{txnId}", "/s/1/")).toBeUndefined();
    expect(matchPath("/s/{txnId}", "/s")).toBeUndefined();
    expect(matchPath("/s/{txnId}", "/S/1")).toBeUndefined();
    expect(matchPath("/s/{txnId}", "/s/%ZZ")).toBeUndefined();
    expect(matchPath("/s/{txnId}", "/s/%C3")).toBeUndefined();
  });
});

describe("query strings", () => {
  it("reads a parameter the spec repeats as an array even when sent once", () => {
    expect(parseQuery(createJoinEventTemplate.v1, "ver=1")).toEqual({ ver: ["1"] });
    expect(parseQuery(createJoinEventTemplate.v1, "?ver=1&ver=12")).toEqual({ ver: ["1", "12"] });
    expect(parseQuery(createJoinEventTemplate.v1, "")).toEqual({});
  });

  it("keeps every value of a repeated single-valued parameter so the schema can refuse it", () => {
    expect(parseQuery(getBackfill.v1, "limit=1&limit=2&v=%24a")).toEqual({ limit: ["1", "2"], v: ["$a"] });
  });

  it("keeps a parameter named __proto__ as an ordinary parameter", () => {
    const parsed = parseQuery(getBackfill.v1, "__proto__=x&constructor=y");
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(["__proto__", "constructor"]);
    expect(Object.getOwnPropertyDescriptor(parsed, "__proto__")?.value).toBe("x");
  });

  it("keeps parameters the schema does not name", () => {
    expect(parseQuery(getBackfill.v1, new URLSearchParams("limit=3&v=x&future=1"))).toEqual({
      limit: "3",
      v: ["x"],
      future: "1",
    });
  });

  it("round-trips through buildQuery for any keys and values (no array-typed parameters)", () => {
    fc.assert(
      fc.property(fc.dictionary(idLike, fc.array(fc.string({ unit: "grapheme" }), { minLength: 1, maxLength: 3 })), (q) => {
        const parsed = parseQuery(sendTransactionMessage.v1, buildQuery(q));
        for (const [key, values] of Object.entries(q)) {
          expect(parsed[key]).toEqual(values.length === 1 ? values[0] : values);
        }
        expect(Object.keys(parsed).sort()).toEqual(Object.keys(q).sort());
      }),
    );
  });

  it("builds nothing for no parameters and skips undefined ones", () => {
    expect(buildQuery({})).toBe("");
    expect(buildQuery({ a: undefined, ver: ["1", "2"], ts: "5" })).toBe("?ver=1&ver=2&ts=5");
  });
});

describe("defineEndpoint", () => {
  const probe = defineEndpoint({
    name: "probe",
    version: "v1",
    method: "PUT",
    path: "/_matrix/federation/v1/probe/{roomId}",
    auth: "x-matrix",
    rateLimited: false,
    aclProtected: false,
    schemas: {
      path: { type: "object", properties: { roomId: { type: "string" } }, required: ["roomId"] },
      query: { type: "object", properties: { limit: { type: "string" } } },
      body: {
        type: "object",
        properties: { n: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
        required: ["n"],
      },
      response: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] },
    },
    spec: "https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1proberoomid",
    description: "A test endpoint.",
  });

  it("returns a deeply frozen definition, defaulting the response to JSON", () => {
    expect(probe.responseContentType).toBe("application/json");
    expect(Object.isFrozen(probe)).toBe(true);
    expect(Object.isFrozen(probe.schemas.body.properties.tags.items)).toBe(true);
  });

  it("derives the request and response types from the schemas", () => {
    expectTypeOf<PathParams<typeof probe>>().toEqualTypeOf<{ roomId: string }>();
    expectTypeOf<QueryParams<typeof probe>>().toEqualTypeOf<{ limit?: string }>();
    expectTypeOf<RequestBody<typeof probe>>().toEqualTypeOf<{ n: number; tags?: string[] }>();
    expectTypeOf<ResponseBody<typeof probe>>().toEqualTypeOf<{ ok: boolean }>();
    expectTypeOf<RequestBody<typeof getBackfill.v1>>().toEqualTypeOf<undefined>();
    expectTypeOf<QueryParams<typeof getBackfill.v1>>().toEqualTypeOf<{ v: string[]; limit: string }>();
    expectTypeOf<ResponseBody<typeof createInvite.v1>>().toEqualTypeOf<[200, { event: JsonObject }]>();
    expectTypeOf<ResponseBody<typeof getProfileInformation.v1>["displayname"]>().toEqualTypeOf<
      string | null | undefined
    >();
    expectTypeOf<ResponseBody<typeof claimKeys.v1>["one_time_keys"][string][string][string]>().toEqualTypeOf<
      string | { key: string; signatures: Record<string, Record<string, string>> }
    >();
    expectTypeOf<RequestBody<typeof sendTransactionMessage.v1>["pdus"]>().toEqualTypeOf<JsonObject[]>();
    expect(probe.schemas.path.required).toEqual(["roomId"]);
  });

  it("rejects at compile time a path schema that does not list the template's parameters", () => {
    const define = () =>
      // @ts-expect-error the path schema names `eventId`, the template `roomId`
      defineEndpoint({
        name: "bad",
        version: "v1",
        method: "GET",
        path: "/x/{roomId}",
        auth: "none",
        rateLimited: false,
        aclProtected: false,
        schemas: {
          path: { type: "object", properties: { eventId: { type: "string" } }, required: ["eventId"] },
          query: { type: "object" },
          response: { type: "object" },
        },
        spec: "",
        description: "",
      });
    expect(define).not.toThrow();
  });
});

// Type-level: these fail `tsc --noEmit`, not the vitest run.
describe("FromSchema", () => {
  it("maps enums, consts, unions, tuples and maps", () => {
    expectTypeOf<FromSchema<{ type: "string"; enum: readonly ["f", "b"] }>>().toEqualTypeOf<"f" | "b">();
    expectTypeOf<FromSchema<{ const: 200 }>>().toEqualTypeOf<200>();
    expectTypeOf<FromSchema<{ anyOf: readonly [{ type: "string" }, { type: "null" }] }>>().toEqualTypeOf<
      string | null
    >();
    expectTypeOf<FromSchema<{ oneOf: readonly [{ type: "integer" }, { type: "boolean" }] }>>().toEqualTypeOf<
      number | boolean
    >();
    expectTypeOf<
      FromSchema<{ type: "array"; items: readonly [{ type: "integer" }, { type: "string" }] }>
    >().toEqualTypeOf<[number, string]>();
    expectTypeOf<FromSchema<{ type: "object"; additionalProperties: { type: "string" } }>>().toEqualTypeOf<{
      [key: string]: string;
    }>();
    expectTypeOf<FromSchema<{ type: "object" }>>().toEqualTypeOf<JsonObject>();
  });
});
