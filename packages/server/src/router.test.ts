import { JsonNumberToken, parseJson } from "@myelin/signing";
import type { EndpointDefinition, JsonValue } from "@myelin/types";
import { ENDPOINTS, MatrixError, buildPath, buildQuery } from "@myelin/types";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RouterConfigError } from "./errors.js";
import type { FederationHandlers, FederationRequest } from "./handler.js";
import { RawResponse, respond } from "./handler.js";
import { createFederationRouter } from "./router.js";
import type { TestPeer, TestServer } from "./test-support/harness.js";
import { TestKeyResolver, TestLogger, createPeer, send, signedRequest, startServer } from "./test-support/harness.js";
import { exampleFor, examplePathParams, exampleQuery } from "./test-support/schema-examples.js";
import { createVersionHandler } from "./version.js";

const SERVER_NAME = "myelin.test";
const peer: TestPeer = createPeer("peer.test:8448");
const keyResolver = new TestKeyResolver().addPeer(peer);

/** Sends a request to `endpoint`, signed when the endpoint wants X-Matrix. */
function requestFor(
  endpoint: EndpointDefinition,
  path: string,
  content: JsonValue | undefined,
): Parameters<typeof send>[1] {
  if (endpoint.auth === "x-matrix") {
    return signedRequest({
      peer,
      destination: SERVER_NAME,
      method: endpoint.method,
      path,
      ...(content === undefined ? {} : { content }),
    });
  }
  return {
    method: endpoint.method,
    path,
    ...(content === undefined ? {} : { body: JSON.stringify(content), headers: { "Content-Type": "application/json" } }),
  };
}

describe("routing every endpoint of the table", () => {
  const seen = new Map<EndpointDefinition, FederationRequest>();
  let server: TestServer;

  beforeAll(async () => {
    const handlers: Record<string, Record<string, (req: FederationRequest) => unknown>> = {};
    for (const endpoint of ENDPOINTS) {
      (handlers[endpoint.name] ??= {})[endpoint.version] = (req) => {
        seen.set(endpoint, req);
        return exampleFor(endpoint.schemas.response);
      };
    }
    server = await startServer(
      createFederationRouter({
        serverName: SERVER_NAME,
        handlers: handlers as FederationHandlers,
        keyResolver,
        validateResponses: true,
      }),
    );
  });
  afterAll(() => server.close());

  it.each(ENDPOINTS.map((e) => [`${e.method} ${e.path} (${e.name} ${e.version})`, e] as const))(
    "routes %s to its handler with decoded parameters",
    async (_, endpoint) => {
      const params = examplePathParams(endpoint.schemas.path);
      const query = exampleQuery(endpoint.schemas.query);
      const content = endpoint.schemas.body === undefined ? undefined : exampleFor(endpoint.schemas.body);
      const path = buildPath(endpoint.path, params as never) + buildQuery(query);
      const response = await send(server.port, requestFor(endpoint, path, content));

      expect(response.status, JSON.stringify(response.json)).toBe(200);
      expect(response.headers["content-type"]).toBe("application/json");
      expect(response.json).toEqual(exampleFor(endpoint.schemas.response));
      const request = seen.get(endpoint);
      expect(request?.endpoint).toBe(endpoint);
      expect(request?.params).toEqual(params);
      expect(request?.query).toEqual(query);
      expect(request?.body).toEqual(content);
      expect(request?.uri).toBe(path);
      expect(request?.origin).toBe(endpoint.auth === "x-matrix" ? peer.serverName : undefined);
    },
  );
});

describe("unknown and unsupported endpoints", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(
      createFederationRouter({
        serverName: SERVER_NAME,
        handlers: {
          get_server_version: { v1: createVersionHandler({ version: "1.2.3" }) },
          send_transaction_message: { v1: () => ({ pdus: {} }) },
        },
        keyResolver,
      }),
    );
  });
  afterAll(() => server.close());

  it("serves the version endpoint as { server: { name, version } }", async () => {
    const response = await send(server.port, { method: "GET", path: "/_matrix/federation/v1/version" });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ server: { name: "Myelin", version: "1.2.3" } });
  });

  it("answers 404 M_UNRECOGNIZED in JSON for a path the table does not know", async () => {
    for (const path of ["/_matrix/federation/v1/nonsense", "/", "/_matrix/federation/v1/version/extra", "/favicon.ico"]) {
      const response = await send(server.port, { method: "GET", path });
      expect(response.status, path).toBe(404);
      expect(response.headers["content-type"]).toBe("application/json");
      expect(response.json).toMatchObject({ errcode: "M_UNRECOGNIZED" });
    }
  });

  it("answers 404 M_UNRECOGNIZED for an endpoint of the table the application does not implement", async () => {
    const response = await send(
      server.port,
      signedRequest({ peer, destination: SERVER_NAME, method: "GET", path: "/_matrix/federation/v1/event/%24abc" }),
    );
    expect(response.status).toBe(404);
    expect(response.json).toMatchObject({ errcode: "M_UNRECOGNIZED" });
  });

  it("answers 405 M_UNRECOGNIZED with Allow for a known path and another method", async () => {
    const version = await send(server.port, { method: "POST", path: "/_matrix/federation/v1/version", body: "{}" });
    expect(version.status).toBe(405);
    expect(version.headers["allow"]).toBe("GET");
    expect(version.json).toMatchObject({ errcode: "M_UNRECOGNIZED" });

    const sendTxn = await send(server.port, { method: "GET", path: "/_matrix/federation/v1/send/t1" });
    expect(sendTxn.status).toBe(405);
    expect(sendTxn.headers["allow"]).toBe("PUT");

    const publicRooms = await send(server.port, { method: "DELETE", path: "/_matrix/federation/v1/publicRooms" });
    expect(publicRooms.status).toBe(405);
    expect(publicRooms.headers["allow"]?.split(", ").sort()).toEqual(["GET", "POST"]);
  });

  it("does not advertise the framework in its responses", async () => {
    const response = await send(server.port, { method: "GET", path: "/_matrix/federation/v1/version" });
    expect(response.headers["x-powered-by"]).toBeUndefined();
  });
});

describe("request bodies", () => {
  const LIMIT = 4096;
  let server: TestServer;
  let calls = 0;
  const txnPath = "/_matrix/federation/v1/send/t1";
  const transaction = (pdus: JsonValue[] = []): JsonValue => ({ origin: peer.serverName, origin_server_ts: 1, pdus });
  let lastKeysBody: unknown;

  beforeAll(async () => {
    server = await startServer(
      createFederationRouter({
        serverName: SERVER_NAME,
        handlers: {
          send_transaction_message: {
            v1: () => {
              calls++;
              return { pdus: {} };
            },
          },
          get_remote_server_keys_batch: {
            v2: (req) => {
              lastKeysBody = req.body;
              return { server_keys: [] };
            },
          },
        },
        keyResolver,
        maxBodyBytes: LIMIT,
      }),
    );
  });
  afterAll(() => server.close());

  /** An unauthenticated POST (no signature to get in the way of body checks). */
  const postKeys = (body: string | Uint8Array) =>
    send(server.port, { method: "POST", path: "/_matrix/key/v2/query", body, headers: { "Content-Type": "application/json" } });

  it("accepts a body of exactly the limit", async () => {
    const padding = LIMIT - JSON.stringify({ server_keys: {}, p: "" }).length;
    const body = JSON.stringify({ server_keys: {}, p: "x".repeat(padding) });
    expect(Buffer.byteLength(body)).toBe(LIMIT);
    expect((await postKeys(body)).status).toBe(200);
  });

  it("answers 413 M_TOO_LARGE when the declared Content-Length exceeds the limit", async () => {
    const response = await postKeys(JSON.stringify({ server_keys: {}, p: "x".repeat(LIMIT) }));
    expect(response.status).toBe(413);
    expect(response.json).toMatchObject({ errcode: "M_TOO_LARGE" });
  });

  it("answers 413 M_TOO_LARGE while streaming a chunked body past the limit, without calling the handler", async () => {
    const before = calls;
    const chunk = Buffer.alloc(1024, 0x20); // JSON whitespace: only the size is wrong
    const request = signedRequest({ peer, destination: SERVER_NAME, method: "PUT", path: txnPath, content: transaction() });
    const response = await send(server.port, {
      method: "PUT",
      path: txnPath,
      headers: { ...request.headers, "Transfer-Encoding": "chunked" },
      chunks: [Buffer.from("{"), ...Array.from({ length: 64 }, () => chunk), Buffer.from("}")],
    });
    expect(response.status).toBe(413);
    expect(response.json).toMatchObject({ errcode: "M_TOO_LARGE" });
    expect(calls).toBe(before);
  });

  it("answers M_NOT_JSON for malformed JSON, naming the position", async () => {
    const response = await postKeys('{"server_keys": {');
    expect(response.status).toBe(400);
    expect(response.json.errcode).toBe("M_NOT_JSON");
    expect(response.json.error).toMatch(/position/);
  });

  it("answers M_NOT_JSON for a body that is not UTF-8", async () => {
    const response = await postKeys(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]));
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ errcode: "M_NOT_JSON", error: expect.stringMatching(/UTF-8/) });
  });

  it("answers M_NOT_JSON for an empty body where a JSON object is required", async () => {
    const response = await postKeys("");
    expect(response.status).toBe(400);
    expect(response.json.errcode).toBe("M_NOT_JSON");
  });

  it("answers M_BAD_JSON for JSON that is not an object", async () => {
    for (const body of ["[]", '"text"', "1", "null"]) {
      const response = await postKeys(body);
      expect(response.status, body).toBe(400);
      expect(response.json).toMatchObject({ errcode: "M_BAD_JSON", error: "Request body must be a JSON object" });
    }
  });

  it("hands the handler an integer outside ±(2^53-1) as a JsonNumberToken with its exact digits, never rounded", async () => {
    const response = await postKeys('{"server_keys": {}, "n": 9007199254740993}');
    expect(response.status).toBe(200);
    const n = (lastKeysBody as Record<string, unknown>)["n"];
    expect(n).toBeInstanceOf(JsonNumberToken);
    expect(n).toMatchObject({ text: "9007199254740993", kind: "integer" });
    const safe = await postKeys('{"server_keys": {}, "n": 9007199254740991}');
    expect(safe.status).toBe(200);
    expect((lastKeysBody as Record<string, unknown>)["n"]).toBe(9007199254740991);
  });

  it("hands the handler floats as JsonNumberTokens keeping their text (1.0 stays distinct from 1)", async () => {
    for (const n of ["1.5", "1e3", "1.0"]) {
      const response = await postKeys(`{"server_keys": {}, "n": ${n}}`);
      expect(response.status, n).toBe(200);
      expect((lastKeysBody as Record<string, unknown>)["n"], n).toMatchObject({ text: n, kind: "float" });
    }
  });

  it("refuses a float or big integer where the schema asks for an integer or an object (M_BAD_JSON naming the field)", async () => {
    for (const n of ["1.5", "1.0", "9007199254740993"]) {
      const criteria = await postKeys(`{"server_keys": {"a.example": {"ed25519:k": {"minimum_valid_until_ts": ${n}}}}}`);
      expect(criteria.json, n).toEqual({
        errcode: "M_BAD_JSON",
        error: 'Field server_keys["a.example"]["ed25519:k"].minimum_valid_until_ts is a float or an integer beyond ±(2^53-1), which canonical JSON cannot carry',
      });
      const object = await postKeys(`{"server_keys": ${n}}`);
      expect(object.json.error, n).toMatch(/^Field server_keys is a float/);
    }
  });

  it("refuses a float too large for a double (M_BAD_JSON): no server can sign it", async () => {
    const response = await postKeys('{"server_keys": {}, "n": 1e400}');
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ errcode: "M_BAD_JSON", error: expect.stringMatching(/too large for a double/) });
  });

  it("refuses an escaped lone surrogate (M_BAD_JSON)", async () => {
    const response = await postKeys('{"server_keys": {}, "s": "\\ud800"}');
    expect(response.json).toMatchObject({ errcode: "M_BAD_JSON", error: expect.stringMatching(/surrogate/) });
  });

  it("accepts a body without Content-Type (the spec says should, not must)", async () => {
    const response = await send(server.port, { method: "POST", path: "/_matrix/key/v2/query", body: '{"server_keys":{}}' });
    expect(response.status).toBe(200);
  });
});

describe("validation against the table's schemas", () => {
  let server: TestServer;
  let lastRequest: FederationRequest | undefined;
  const record = (result: unknown) => (req: FederationRequest) => {
    lastRequest = req;
    return result;
  };

  beforeAll(async () => {
    server = await startServer(
      createFederationRouter({
        serverName: SERVER_NAME,
        handlers: {
          send_transaction_message: { v1: record({ pdus: {} }) as never },
          create_join_event_template: {
            v1: record({ room_version: "10", event: exampleFor({ ...templateSchema() }) }) as never,
          },
          get_backfill: { v1: record({ origin: SERVER_NAME, origin_server_ts: 1, pdus: [] }) as never },
          get_public_rooms: { v1: record({ chunk: [] }) as never },
        },
        keyResolver,
      }),
    );
  });
  afterAll(() => server.close());

  const put = (content: JsonValue) =>
    send(
      server.port,
      signedRequest({ peer, destination: SERVER_NAME, method: "PUT", path: "/_matrix/federation/v1/send/t1", content }),
    );
  const get = (path: string) => send(server.port, signedRequest({ peer, destination: SERVER_NAME, method: "GET", path }));

  it("refuses a transaction of 51 PDUs with M_BAD_JSON naming pdus", async () => {
    const pdus = Array.from({ length: 51 }, () => ({}));
    const response = await put({ origin: peer.serverName, origin_server_ts: 1, pdus });
    expect(response.status).toBe(400);
    expect(response.json).toEqual({ errcode: "M_BAD_JSON", error: "Field pdus must NOT have more than 50 items" });
    const fifty = await put({ origin: peer.serverName, origin_server_ts: 1, pdus: pdus.slice(1) });
    expect(fifty.status).toBe(200);
  });

  it("authenticates a transaction whose PDU holds a float and a big integer (signed in Synapse's notation) and hands over the tokens", async () => {
    const text = `{"origin": ${JSON.stringify(peer.serverName)}, "origin_server_ts": 1, "pdus": [{"content": {"n": 2.50, "big": 18446744073709551616}}, {"content": {}}]}`;
    const content = parseJson(text, { strict: false, lossless: true });
    const request = signedRequest({ peer, destination: SERVER_NAME, method: "PUT", path: "/_matrix/federation/v1/send/t-float", content, compat: "synapse" });
    expect(request.body).toContain('"n":2.5}'); // the bytes on the wire are Synapse's notation
    const response = await send(server.port, request);
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    const pdus = (lastRequest?.body as unknown as { pdus: { content: Record<string, unknown> }[] }).pdus;
    expect(pdus[0]?.content["n"]).toMatchObject({ text: "2.5", kind: "float" });
    expect(pdus[0]?.content["big"]).toMatchObject({ text: "18446744073709551616", kind: "integer" });
    expect(pdus[1]).toEqual({ content: {} });
  });

  it("refuses a transaction whose envelope holds a float where the schema wants an integer, after authenticating it", async () => {
    const content = parseJson(`{"origin": ${JSON.stringify(peer.serverName)}, "origin_server_ts": 1.0, "pdus": []}`, { strict: false, lossless: true });
    const response = await send(server.port, signedRequest({ peer, destination: SERVER_NAME, method: "PUT", path: "/_matrix/federation/v1/send/t-env", content, compat: "synapse" }));
    expect(response.status).toBe(400);
    expect(response.json).toEqual({
      errcode: "M_BAD_JSON",
      error: "Field origin_server_ts is a float or an integer beyond ±(2^53-1), which canonical JSON cannot carry",
    });
    const pduAsNumber = parseJson(`{"origin": ${JSON.stringify(peer.serverName)}, "origin_server_ts": 1, "pdus": [{}, 1.5]}`, { strict: false, lossless: true });
    const second = await send(server.port, signedRequest({ peer, destination: SERVER_NAME, method: "PUT", path: "/_matrix/federation/v1/send/t-env2", content: pduAsNumber, compat: "synapse" }));
    expect(second.json).toMatchObject({ errcode: "M_BAD_JSON", error: expect.stringMatching(/^Field pdus\[1\] is a float/) });
  });

  it("names a missing body field, and a wrongly typed nested one", async () => {
    const missing = await put({ origin_server_ts: 1, pdus: [] });
    expect(missing.json).toEqual({ errcode: "M_BAD_JSON", error: "Missing field origin" });
    const nested = await put({ origin: peer.serverName, origin_server_ts: 1, pdus: [{}, "not a pdu"] });
    expect(nested.json).toEqual({ errcode: "M_BAD_JSON", error: "Field pdus[1] must be object" });
  });

  it("accepts make_join without ver (optional: the handler applies the default [\"1\"])", async () => {
    const response = await get("/_matrix/federation/v1/make_join/!r%3Aexample.org/%40u%3Apeer.test%3A8448");
    expect(response.status).toBe(200);
    expect(lastRequest?.query).toEqual({});
    expect(lastRequest?.params).toEqual({ roomId: "!r:example.org", userId: "@u:peer.test:8448" });
  });

  it("reads a repeated array parameter (ver) in order, and a single one as a one-item array", async () => {
    await get("/_matrix/federation/v1/make_join/!r%3Aexample.org/%40u%3Apeer.test?ver=10&ver=11");
    expect(lastRequest?.query).toEqual({ ver: ["10", "11"] });
    await get("/_matrix/federation/v1/make_join/!r%3Aexample.org/%40u%3Apeer.test?ver=12");
    expect(lastRequest?.query).toEqual({ ver: ["12"] });
  });

  it("answers M_MISSING_PARAM naming a missing required query parameter", async () => {
    const response = await get("/_matrix/federation/v1/backfill/!r%3Aexample.org?v=%24e");
    expect(response.status).toBe(400);
    expect(response.json).toEqual({ errcode: "M_MISSING_PARAM", error: "Missing query parameter limit" });
  });

  it("answers M_INVALID_PARAM naming a query parameter with a bad value or given twice", async () => {
    const bad = await get("/_matrix/federation/v1/backfill/!r%3Aexample.org?v=%24e&limit=ten");
    expect(bad.status).toBe(400);
    expect(bad.json.errcode).toBe("M_INVALID_PARAM");
    expect(bad.json.error).toMatch(/^Invalid query parameter limit: /);
    const twice = await get("/_matrix/federation/v1/backfill/!r%3Aexample.org?v=%24e&limit=1&limit=2");
    expect(twice.json).toEqual({ errcode: "M_INVALID_PARAM", error: "Invalid query parameter limit: must be given once" });
  });

  it("keeps query parameters the schema does not name (forward compatibility)", async () => {
    const response = await get("/_matrix/federation/v1/publicRooms?limit=5&org.example.new=1");
    expect(response.status).toBe(200);
    expect(lastRequest?.query).toEqual({ limit: "5", "org.example.new": "1" });
  });

  it("answers 404 for a path whose percent-encoding is malformed (it cannot match a template)", async () => {
    const response = await get("/_matrix/federation/v1/backfill/%E0%A4%A?v=x&limit=1");
    expect(response.status).toBe(404);
    expect(response.json.errcode).toBe("M_UNRECOGNIZED");
  });
});

function templateSchema() {
  return {
    type: "object",
    properties: {
      sender: { type: "string" },
      origin_server_ts: { type: "integer" },
      type: { type: "string" },
      state_key: { type: "string" },
      content: { type: "object", properties: { membership: { type: "string" } }, required: ["membership"] },
    },
    required: ["state_key", "sender", "origin_server_ts", "type", "content"],
  } as const;
}

describe("handler outcomes", () => {
  let server: TestServer;
  const logger = new TestLogger();
  let behaviour: () => unknown = () => ({});
  let aclAllows = true;

  beforeAll(async () => {
    server = await startServer(
      createFederationRouter({
        serverName: SERVER_NAME,
        handlers: {
          get_public_rooms: { v1: () => behaviour() as never },
          get_content: { v1: () => behaviour() as never },
          get_room_state_ids: { v1: () => behaviour() as never },
        },
        keyResolver,
        logger,
        validateResponses: true,
        checkServerAcl: (origin, roomId) => {
          expect(origin).toBe(peer.serverName);
          expect(roomId).toBe("!r:example.org");
          return aclAllows;
        },
      }),
    );
  });
  afterAll(() => server.close());

  const publicRooms = () =>
    send(server.port, signedRequest({ peer, destination: SERVER_NAME, method: "GET", path: "/_matrix/federation/v1/publicRooms" }));

  it("sends a thrown MatrixError as its status and body", async () => {
    behaviour = () => {
      throw new MatrixError("M_FORBIDDEN", "No directory for you", { extra: { retry: false } });
    };
    const response = await publicRooms();
    expect(response.status).toBe(403);
    expect(response.json).toEqual({ errcode: "M_FORBIDDEN", error: "No directory for you", retry: false });
  });

  it("turns any other exception into 500 M_UNKNOWN without its message or stack, and logs the cause", async () => {
    const secret = new Error("database password is hunter2");
    behaviour = () => {
      throw secret;
    };
    const before = logger.errors.length;
    const response = await publicRooms();
    expect(response.status).toBe(500);
    expect(response.json).toEqual({ errcode: "M_UNKNOWN", error: "Internal server error" });
    expect(response.bytes.toString()).not.toMatch(/hunter2|at .*\.ts/);
    expect(logger.errors.slice(before).map((e) => e.context["error"])).toEqual([secret]);
  });

  it("treats a rejected promise like a thrown exception", async () => {
    behaviour = () => Promise.reject(new TypeError("boom"));
    const response = await publicRooms();
    expect(response.status).toBe(500);
    expect(response.json.errcode).toBe("M_UNKNOWN");
  });

  it("answers 500 when a handler's response does not match the table (validateResponses)", async () => {
    behaviour = () => ({ chunk: [{ room_id: 5 }] });
    const before = logger.errors.length;
    const response = await publicRooms();
    expect(response.status).toBe(500);
    expect(String(logger.errors.slice(before)[0]?.context["error"])).toMatch(/invalid response/);
  });

  it("sends a FederationResponse's status and headers", async () => {
    behaviour = () => respond({ chunk: [] }, { status: 202, headers: { "Cache-Control": "no-store" } });
    const response = await publicRooms();
    expect(response.status).toBe(202);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.json).toEqual({ chunk: [] });
  });

  it("sends a RawResponse's bytes with its content type (multipart media)", async () => {
    const body = Buffer.from("--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--\r\n");
    behaviour = () => new RawResponse(200, "multipart/mixed; boundary=b", body);
    const response = await send(
      server.port,
      signedRequest({ peer, destination: SERVER_NAME, method: "GET", path: "/_matrix/federation/v1/media/download/abc" }),
    );
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("multipart/mixed; boundary=b");
    expect(response.bytes.equals(body)).toBe(true);
  });

  it("answers 403 M_FORBIDDEN on an ACL-protected endpoint when the ACL check refuses the origin", async () => {
    behaviour = () => ({ auth_chain_ids: [], pdu_ids: [] });
    const path = "/_matrix/federation/v1/state_ids/!r%3Aexample.org?event_id=%24e";
    aclAllows = false;
    const refused = await send(server.port, signedRequest({ peer, destination: SERVER_NAME, method: "GET", path }));
    expect(refused.status).toBe(403);
    expect(refused.json.errcode).toBe("M_FORBIDDEN");
    aclAllows = true;
    const allowed = await send(server.port, signedRequest({ peer, destination: SERVER_NAME, method: "GET", path }));
    expect(allowed.status).toBe(200);
  });

  it("answers 500 when the body was already consumed by an earlier body parser", async () => {
    const parsed = await startServer(
      createFederationRouter({
        serverName: SERVER_NAME,
        handlers: { get_remote_server_keys_batch: { v2: () => ({ server_keys: [] }) } },
        keyResolver,
        logger,
      }),
      [express.json()],
    );
    const response = await send(parsed.port, {
      method: "POST",
      path: "/_matrix/key/v2/query",
      headers: { "Content-Type": "application/json" },
      body: '{"server_keys":{}}',
    });
    await parsed.close();
    expect(response.status).toBe(500);
    expect(String(logger.errors.at(-1)?.context["error"])).toMatch(/consumed by another middleware/);
  });
});

describe("router options", () => {
  it("refuses a handler for an endpoint or version the table does not have", () => {
    const make = (handlers: unknown) =>
      createFederationRouter({ serverName: SERVER_NAME, handlers: handlers as FederationHandlers, keyResolver });
    expect(() => make({ no_such_endpoint: { v1: () => ({}) } })).toThrow(RouterConfigError);
    expect(() => make({ get_server_version: { v2: () => ({}) } })).toThrow(/unknown-endpoint.*get_server_version\.v2/);
    expect(() => make({ get_server_version: { v1: "not a function" } })).toThrow(/invalid-handler/);
  });

  it("refuses an invalid server name or body limit", () => {
    expect(() => createFederationRouter({ serverName: "not a name", handlers: {}, keyResolver })).toThrow(/invalid-server-name/);
    expect(() => createFederationRouter({ serverName: SERVER_NAME, handlers: {}, keyResolver, maxBodyBytes: 0 })).toThrow(
      /invalid-body-limit/,
    );
  });
});
