// Helpers for the federation tests (not part of the server's API): real HTTPS federation
// endpoints on 127.0.0.1 with certificates from one test CA, either a scriptable "fake"
// server (the @myelin/server router with whatever handlers a test gives it, publishing its
// keys) or full homeservers from createHomeserver.
import { readFile } from "node:fs/promises";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { FederationClient, KeyRing } from "@myelin/client";
import type { FederationHandlers } from "@myelin/server";
import { createFederationRouter, createServerKeysPublisher } from "@myelin/server";
import type { SigningKey } from "@myelin/signing";
import express from "express";
import type { Homeserver, HomeserverInfo, HomeserverOptions } from "../app.js";
import type { HomeserverConfig } from "../config.js";
import { createHomeserver } from "../app.js";
import { registerLocalUser } from "../client-api/users.js";
import type { TlsFiles } from "../test-helpers.js";
import { request, temporaryDirectory, testConfig, writeTlsFiles } from "../test-helpers.js";

/** A test CA and a loopback certificate, as files (homeservers read them) and text. */
export interface TestTls {
  readonly files: TlsFiles;
  readonly caPem: string;
  readonly cert: string;
  readonly key: string;
}

/** Writes a test CA and a certificate for localhost / 127.0.0.1 / ::1. */
export async function createTestTls(): Promise<TestTls> {
  const files = await writeTlsFiles(await temporaryDirectory());
  return {
    files,
    caPem: files.ca.cert,
    cert: await readFile(files.certFile, "utf8"),
    key: await readFile(files.keyFile, "utf8"),
  };
}

/** A federation client for `serverName` trusting the test CA and allowed to reach loopback. */
export function testClient(tls: Pick<TestTls, "caPem">, serverName: string, signingKey: SigningKey): FederationClient {
  return new FederationClient({
    serverName,
    signingKey,
    tls: { ca: [tls.caPem] },
    allowedAddresses: ["127.0.0.0/8", "::1"],
    retry: false,
    timeoutMs: 10_000,
  });
}

/** A scriptable federation server started by {@link startFakeServer}. */
export interface FakeServer {
  readonly serverName: string;
  readonly port: number;
  /** A client signing as this server. */
  readonly client: FederationClient;
  /** Replaces the handlers (its key server is always served). */
  setHandlers(handlers: FederationHandlers): void;
  stop(): Promise<void>;
}

/**
 * Starts an HTTPS federation endpoint named `localhost:<port>`, publishing `key` at
 * `/_matrix/key/v2/server` and answering with `handlers`; requests to it are authenticated
 * with a key ring that fetches other servers' keys over HTTPS.
 */
export async function startFakeServer(
  tls: TestTls,
  key: SigningKey,
  handlers: FederationHandlers = {},
  /** Keys of servers that cannot be reached (named `*.test`), known without fetching. */
  trusted: ReadonlyMap<string, SigningKey> = new Map(),
): Promise<FakeServer> {
  let router: express.Router | undefined;
  const app = express();
  app.use((req, res, next) => (router === undefined ? next() : router(req, res, next)));
  const server = https.createServer({ cert: tls.cert, key: tls.key }, app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const serverName = `localhost:${port}`;
  const client = testClient(tls, serverName, key);
  const staticKeys: Record<string, Record<string, { publicKey: Uint8Array }>> = { [serverName]: { [key.keyId]: { publicKey: key.publicKey } } };
  for (const [name, other] of trusted) staticKeys[name] = { [other.keyId]: { publicKey: other.publicKey } };
  const keyRing = new KeyRing({ client, staticKeys });
  const keys = createServerKeysPublisher({ serverName, signingKeys: [key] });
  const build = (current: FederationHandlers): void => {
    router = createFederationRouter({
      serverName,
      handlers: { ...current, get_server_keys: { v2: keys.handler } },
      keyResolver: {
        async getServerKeys(name, keyIds) {
          const found = new Map();
          for (const keyId of keyIds) {
            const verifyKey = await keyRing.getVerifyKey(name, keyId);
            if (verifyKey !== undefined) found.set(keyId, verifyKey);
          }
          return found;
        },
      },
      logger: { error: () => undefined },
    });
  };
  build(handlers);
  return {
    serverName,
    port,
    client,
    setHandlers: build,
    stop: () =>
      new Promise<void>((resolve) => {
        client.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A homeserver under test with a client-API user. */
export interface TestHomeserver {
  readonly homeserver: Homeserver;
  readonly info: HomeserverInfo;
  readonly serverName: string;
  readonly url: string;
  readonly dataDir: string;
  /** Registers `@<localpart>:<server>` and returns its access token. */
  addUser(localpart: string): Promise<{ userId: string; token: string }>;
  /** A client-server API call as a user (`path` after `/_matrix/client/v3`). */
  call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  /** Stops, and starts again on the same port and data (outbound queue, staging and all). */
  restart(): Promise<TestHomeserver>;
  stop(): Promise<void>;
}

/** Fast retries for tests: a destination is retried 200 ms after a failure (then 400 ms...). */
export const TEST_HOMESERVER_OPTIONS: HomeserverOptions = {
  federationBackoff: { initialMs: 200, maxMs: 2_000, jitter: [1, 1] },
  federationPollIntervalMs: 100,
  // Peers' keep-alive connections would otherwise hold each stop for the default 5 s.
  stopGraceMs: 200,
};

/** Options of {@link startTestHomeserver}. */
export interface TestHomeserverOptions {
  readonly dataDir?: string;
  readonly port?: number;
  /** Configuration settings over the test defaults (e.g. `federationRetryMinMs`). */
  readonly config?: Partial<HomeserverConfig>;
  /** Replaces {@link TEST_HOMESERVER_OPTIONS}. */
  readonly homeserverOptions?: HomeserverOptions;
}

/** Starts a homeserver over HTTPS on 127.0.0.1 trusting the test CA and reaching loopback. */
export async function startTestHomeserver(tls: TestTls, options: TestHomeserverOptions = {}): Promise<TestHomeserver> {
  const dataDir = options.dataDir ?? (await temporaryDirectory());
  const config = testConfig(dataDir, {
    listen: { host: "127.0.0.1", port: options.port ?? 0 },
    tls: { certFile: tls.files.certFile, keyFile: tls.files.keyFile },
    federationCaFiles: [tls.files.caFile],
    federationAllowIp: ["127.0.0.0/8", "::1"],
    ...options.config,
  });
  const homeserver = createHomeserver(config, options.homeserverOptions ?? TEST_HOMESERVER_OPTIONS);
  const info = await homeserver.start();
  const url = info.address.url;
  const self: TestHomeserver = {
    homeserver,
    info,
    serverName: info.serverName,
    url,
    dataDir,
    async addUser(localpart) {
      // Through the running server's own storage: a second connection in this process would
      // wait for its write lock synchronously, blocking the event loop the server needs.
      const user = await registerLocalUser(homeserver.storage!, { localpart, serverName: info.serverName });
      return { userId: user.user_id, token: user.access_token };
    },
    async call(token, method, path, body) {
      const response = await request(`${url}/_matrix/client/v3${path}`, {
        method,
        ca: tls.caPem,
        headers: { Authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body }),
      });
      return { status: response.status, json: response.json };
    },
    async restart() {
      await homeserver.stop();
      return startTestHomeserver(tls, { ...options, dataDir, port: info.address.port });
    },
    stop: () => homeserver.stop(),
  };
  return self;
}

/** Polls `condition` every 50 ms until it holds, failing after `timeoutMs`. */
export async function eventually<T>(condition: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
