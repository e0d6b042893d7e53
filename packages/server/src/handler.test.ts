import type { JsonObject } from "@myelin/types";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { FederationHandlers } from "./handler.js";
import { FederationResponse, respond } from "./handler.js";

describe("respond", () => {
  it("builds a 200 response without extra headers by default, and keeps a given status and headers", () => {
    expect(respond({ a: 1 })).toEqual(new FederationResponse(200, { a: 1 }, {}));
    const custom = respond([], { status: 202, headers: { "Retry-After": "1" } });
    expect(custom.status).toBe(202);
    expect(custom.headers).toEqual({ "Retry-After": "1" });
  });
});

describe("handler types (checked by tsc)", () => {
  it("types each handler's request and response from the endpoint table", () => {
    const handlers: FederationHandlers = {
      send_transaction_message: {
        v1: (req) => {
          expectTypeOf(req.origin).toEqualTypeOf<string>();
          expectTypeOf(req.params).toEqualTypeOf<{ txnId: string }>();
          expectTypeOf(req.body.pdus).toEqualTypeOf<JsonObject[]>();
          expectTypeOf(req.body.origin_server_ts).toEqualTypeOf<number>();
          return { pdus: {} };
        },
      },
      create_join_event_template: {
        v1: (req) => {
          expectTypeOf(req.query.ver).toEqualTypeOf<string[] | undefined>();
          expectTypeOf(req.body).toEqualTypeOf<undefined>();
          return respond({ event: { sender: "", state_key: "", origin_server_ts: 0, type: "", content: { membership: "join" } } });
        },
      },
      get_server_version: {
        v1: (req) => {
          expectTypeOf(req.origin).toEqualTypeOf<undefined>();
          return { server: { name: "x" } };
        },
      },
    };
    expect(Object.keys(handlers)).toHaveLength(3);
  });
});
