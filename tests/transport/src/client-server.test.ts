// @myelin/client calling @myelin/server for every endpoint of the table, over real HTTPS on
// loopback with certificates from a CA made here. The destination authenticates each
// request by fetching the origin's keys from the origin's own key server (a KeyRing over a
// second FederationClient), exactly as two homeservers would.
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FederationClient, FederationRequestError, KeyRing } from "@myelin/client";
import {
  createFederationRouter,
  createServerKeysPublisher,
  keyResolverFromLookup,
  type FederationHandlers,
  type FederationRequest,
} from "@myelin/server";
import { encodePublicKey, generateSigningKey, signJson, type SigningKey } from "@myelin/signing";
import { createTestCa } from "@myelin/test-support";
import { ENDPOINTS, type EndpointDefinition, type JsonObject } from "@myelin/types";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface SpecExample {
  method: string;
  path: string;
  pathParams?: Record<string, string>;
  query?: Record<string, string | string[]>;
  body?: unknown;
  response: unknown;
}

// The spec's own request/response examples for each endpoint (copied into @myelin/types'
// fixtures from the spec's OpenAPI definitions).
const examples: SpecExample[] = (
  JSON.parse(
    readFileSync(
      join(dirname(fileURLToPath(import.meta.url)), "../../../packages/types/src/endpoints/fixtures/spec-examples.json"),
      "utf8",
    ),
  ) as SpecExample[]
).map((e) =>
  // The generic query's example asks for "profile", which has its own endpoint (and wins the
  // route); ask for a query type without one. The spec gives no response example for it.
  e.path === "/_matrix/federation/v1/query/{queryType}"
    ? { ...e, pathParams: { queryType: "org.example.ping" }, response: e.response ?? { pong: true } }
    : e,
);

const ca = createTestCa();
const tls = ca.issue(["127.0.0.1"]);
const LOOPBACK = ["127.0.0.0/8"];

/** An HTTPS server on 127.0.0.1 whose express app is chosen after its port (and so its name) is known. */
async function listen(): Promise<{ server: Server; name: string; mount(app: express.Express): void }> {
  let app: express.Express | undefined;
  const server = createServer(tls, (req, res) => (app ? app(req, res) : res.end()));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const name = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, name, mount: (a) => (app = a) };
}

function clientFor(name: string, key: SigningKey): FederationClient {
  return new FederationClient({ serverName: name, signingKey: key, tls: { ca: [tls.cert, ca.cert] }, allowedAddresses: LOOPBACK, timeoutMs: 5000, retry: false });
}

const servers: Server[] = [];
let origin: { name: string; key: SigningKey; client: FederationClient };
let destination: { name: string; key: SigningKey };
const seen = new Map<string, FederationRequest>();
const endpointKey = (e: EndpointDefinition) => `${e.name} ${e.version}`;

function findExampleEndpoint(example: SpecExample): EndpointDefinition | undefined {
  return ENDPOINTS.find((e) => e.method === example.method && e.path === example.path);
}

beforeAll(async () => {
  // The origin: publishes its keys, and is the server whose client makes every call.
  const a = await listen();
  const aKey = generateSigningKey();
  const aKeys = createServerKeysPublisher({ serverName: a.name, signingKeys: [aKey] });
  a.mount(
    express().use(
      createFederationRouter({
        serverName: a.name,
        handlers: { get_server_keys: { v2: aKeys.handler } },
        keyResolver: { getServerKeys: async () => new Map() },
      }),
    ),
  );

  // The destination: a handler for every endpoint that has a spec example (except the
  // multipart media answers and the key server, which it publishes itself).
  const b = await listen();
  const bKey = generateSigningKey();
  const bClient = clientFor(b.name, bKey);
  const keyRing = new KeyRing({ client: bClient });
  const handlers: Record<string, Record<string, unknown>> = {};
  for (const example of examples) {
    const endpoint = findExampleEndpoint(example);
    if (endpoint === undefined || endpoint.responseContentType === "multipart/mixed") continue;
    if (endpoint.name === "get_server_keys") continue;
    (handlers[endpoint.name] ??= {})[endpoint.version] = async (req: FederationRequest) => {
      seen.set(endpointKey(endpoint), req);
      return example.response;
    };
  }
  handlers["get_server_keys"] = { v2: createServerKeysPublisher({ serverName: b.name, signingKeys: [bKey] }).handler };
  b.mount(
    express().use(
      createFederationRouter({
        serverName: b.name,
        handlers: handlers as FederationHandlers,
        keyResolver: keyResolverFromLookup(keyRing.lookupKey),
        validateResponses: true,
      }),
    ),
  );
  servers.push(a.server, b.server);
  origin = { name: a.name, key: aKey, client: clientFor(a.name, aKey) };
  destination = { name: b.name, key: bKey };
});

afterAll(() => {
  for (const s of servers) s.close();
});

const routable = examples.filter((e) => {
  const endpoint = findExampleEndpoint(e);
  return endpoint !== undefined && endpoint.responseContentType !== "multipart/mixed" && endpoint.name !== "get_server_keys";
});

describe("client and server over HTTPS, for every endpoint with a handler", () => {
  it("covers every endpoint of the table except the multipart media answers", () => {
    const covered = new Set(routable.map((e) => endpointKey(findExampleEndpoint(e)!)));
    covered.add("get_server_keys v2");
    const missing = ENDPOINTS.filter((e) => e.responseContentType !== "multipart/mixed" && !covered.has(endpointKey(e)));
    expect(missing.map(endpointKey)).toEqual([]);
  });

  it.each(routable.map((e) => [`${e.method} ${e.path}`, e] as const))("%s", async (_label, example) => {
    const endpoint = findExampleEndpoint(example)!;
    const response = await origin.client.request(endpoint, {
      destination: destination.name,
      params: example.pathParams ?? {},
      query: example.query ?? {},
      body: example.body,
    } as never);
    expect(response).toEqual(example.response);
    const req = seen.get(endpointKey(endpoint));
    expect(req, "the destination's handler ran").toBeDefined();
    expect(req!.params).toEqual(example.pathParams ?? {});
    expect(req!.body).toEqual(example.body);
    // Authenticated endpoints learn who asked, from a verified X-Matrix signature.
    expect(req!.origin).toBe(endpoint.auth === "x-matrix" ? origin.name : undefined);
  });

  it("fetches the destination's keys and version through the typed methods", async () => {
    const keys = await origin.client.call("get_server_keys", "v2", destination.name);
    expect(keys.server_name).toBe(destination.name);
    expect(keys.verify_keys[destination.key.keyId]?.key).toBe(encodePublicKey(destination.key));
    const versionExample = examples.find((e) => e.path === "/_matrix/federation/v1/version")!;
    expect(await origin.client.endpoints.get_server_version.v1(destination.name)).toEqual(versionExample.response);
  });
});

describe("X-Matrix authentication between real servers", () => {
  const profile = (client: FederationClient) =>
    client.call("get_profile_information", "v1", destination.name, { query: { user_id: "@alice:example.org" } });

  it("refuses a request whose origin does not publish the signing key", async () => {
    // The request is signed with a key the origin's key server does not list.
    const stranger = clientFor(origin.name, generateSigningKey());
    const error = await profile(stranger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FederationRequestError);
    expect(error).toMatchObject({ layer: "matrix", status: 401, errcode: "M_UNAUTHORIZED" });
  });

  it("refuses a request signed with a key whose validity has ended", async () => {
    // An origin whose key server publishes a key that expired a minute ago (self-signed,
    // otherwise correct): the key ring must not use it to accept a request.
    const e = await listen();
    servers.push(e.server);
    const eKey = generateSigningKey();
    const expired = (): JsonObject =>
      signJson(
        { server_name: e.name, verify_keys: { [eKey.keyId]: { key: encodePublicKey(eKey) } }, old_verify_keys: {}, valid_until_ts: Date.now() - 60_000 },
        e.name,
        eKey,
      );
    e.mount(
      express().use(
        createFederationRouter({
          serverName: e.name,
          handlers: { get_server_keys: { v2: () => expired() as never } },
          keyResolver: { getServerKeys: async () => new Map() },
        }),
      ),
    );
    const error = await profile(clientFor(e.name, eKey)).catch((x: unknown) => x);
    expect(error).toMatchObject({ layer: "matrix", status: 401, errcode: "M_UNAUTHORIZED" });
  });

  it("accepts the same kind of request from an origin with a current key", async () => {
    await expect(profile(origin.client)).resolves.toBeDefined();
  });
});
