// Test harness for the network commands (not part of the build): a real federation server
// on 127.0.0.1 (port 0) over HTTPS with a certificate from a test CA, built from
// @myelin/server's router and ready-made handlers. Its server name is `127.0.0.1:PORT`, an
// IP literal, so that discovery needs no DNS.
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createFederationRouter,
  createNotaryHandlers,
  createServerKeysPublisher,
  createVersionHandler,
  type FederationHandlers,
  type KeyResolver,
  type ServerKeysPublisher,
} from "@myelin/server";
import { formatSigningKeyFile, generateSigningKey, type SigningKey, type VerifyKey } from "@myelin/signing";
import { createTestCa, type TestCertificate } from "@myelin/test-support";
import { MatrixError } from "@myelin/types";

/** A running test server. */
export interface FederationTestServer {
  /** `127.0.0.1:PORT` */
  readonly serverName: string;
  readonly port: number;
  readonly key: SigningKey;
  readonly publisher: ServerKeysPublisher;
  /** Every request's method and target, in order. */
  readonly requests: { method: string; url: string; authorization?: string }[];
  close(): Promise<void>;
}

/** What the server is like. */
export interface FederationTestServerOptions {
  readonly certificate: TestCertificate;
  /** Keys the server accepts requests from: server name to key ID to key. */
  readonly knownKeys?: Readonly<Record<string, Readonly<Record<string, VerifyKey>>>>;
  /** The clock of the key publisher (a past clock publishes expired keys). */
  readonly keysNow?: () => number;
  /** Replaces the published key response (handcrafted bad ones). */
  readonly keysResponse?: (context: { serverName: string; key: SigningKey; publisher: ServerKeysPublisher }) => object;
  /** Authenticated endpoints to leave out (404 M_UNRECOGNIZED). */
  readonly without?: readonly ("profile" | "publicRooms")[];
  /** The server name for a port; default `127.0.0.1:PORT`. */
  readonly name?: (port: number) => string;
  /** Where the notary gets other servers' key responses; default nowhere. */
  readonly notaryFetch?: (serverName: string) => Promise<readonly object[]>;
}

/** Starts a server; close it after the test. */
export async function startFederationServer(options: FederationTestServerOptions): Promise<FederationTestServer> {
  const requests: FederationTestServer["requests"] = [];
  let route: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server = https.createServer({ cert: options.certificate.cert, key: options.certificate.key }, (req, res) => {
    requests.push({
      method: req.method ?? "",
      url: req.url ?? "",
      ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
    });
    route(req, res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const serverName = options.name?.(port) ?? `127.0.0.1:${port}`;

  const key = generateSigningKey();
  const publisher = createServerKeysPublisher({
    serverName,
    signingKeys: [key],
    ...(options.keysNow === undefined ? {} : { now: options.keysNow }),
  });
  const keysResponse = options.keysResponse;
  const keyResolver: KeyResolver = {
    async getServerKeys(origin, keyIds) {
      const known = options.knownKeys?.[origin] ?? {};
      return new Map(keyIds.flatMap((id) => (known[id] === undefined ? [] : [[id, known[id]] as const])));
    },
  };
  const handlers: FederationHandlers = {
    get_server_version: { v1: createVersionHandler({ name: "Myelin test", version: "0.0.1" }) },
    get_server_keys: { v2: keysResponse === undefined ? publisher.handler : () => keysResponse({ serverName, key, publisher }) as never },
    ...createNotaryHandlers({
      serverName,
      signingKeys: [key],
      ownKeys: publisher,
      fetcher: {
        fetchServerKeys: (name) =>
          options.notaryFetch === undefined
            ? Promise.reject(new Error("the test server fetches nothing"))
            : (options.notaryFetch(name) as Promise<never>),
      },
    }),
    // An authenticated endpoint answering 200, for signed requests that succeed.
    ...(options.without?.includes("publicRooms") === true
      ? {}
      : { get_public_rooms: { v1: () => ({ chunk: [], total_room_count_estimate: 0 }) } }),
    ...(options.without?.includes("profile") === true
      ? {}
      : {
          get_profile_information: {
            v1: () => {
              throw new MatrixError("M_NOT_FOUND", "Profile was not found");
            },
          },
        }),
  };
  const router = createFederationRouter({ serverName, handlers, keyResolver, logger: { error: () => undefined } });
  // The router is an express Router; it needs nothing of express beyond node's req/res.
  const handle = router as unknown as (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
  route = (req, res) =>
    handle(req, res, () => {
      res.statusCode = 500;
      res.end();
    });

  return {
    serverName,
    port,
    key,
    publisher,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the network tests share: a test CA (trusted through a --ca file) and a signing server identity. */
export interface NetworkFixture {
  readonly ca: ReturnType<typeof createTestCa>;
  readonly dir: string;
  readonly caFile: string;
  /** The flags every test passes: trust the test CA, allow loopback, short timeout. */
  readonly flags: readonly string[];
  /** A server identity the test servers know: `--key` file and `--origin` name. */
  readonly origin: string;
  readonly originKey: SigningKey;
  readonly originKeyFile: string;
  /** `knownKeys` for {@link startFederationServer}: the origin's key. */
  readonly knownKeys: Readonly<Record<string, Readonly<Record<string, VerifyKey>>>>;
}

/** Creates the CA, its file, and the origin's key file in a fresh directory. */
export async function createNetworkFixture(): Promise<NetworkFixture> {
  const ca = createTestCa();
  const dir = await mkdtemp(join(tmpdir(), "myelin-net-"));
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, ca.cert);
  const origin = "origin.test";
  const originKey = generateSigningKey();
  const originKeyFile = join(dir, "origin.key");
  await writeFile(originKeyFile, formatSigningKeyFile([originKey]));
  return {
    ca,
    dir,
    caFile,
    flags: ["--ca", caFile, "--allow-ip", "127.0.0.1/32", "--timeout", "3"],
    origin,
    originKey,
    originKeyFile,
    knownKeys: { [origin]: { [originKey.keyId]: { publicKey: originKey.publicKey, validUntilTs: Date.now() + 86_400_000 } } },
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
