/**
 * The homeserver: an HTTP(S) server carrying the Client-Server API subset and the federation
 * router with the version, key server and notary endpoints, over the data directory (signing
 * key, SQLite database), the room engine and the outbound federation.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { isIP } from "node:net";
import type { DnsResolver } from "@myelin/client";
import {
  createFederationRouter,
  createNotaryHandlers,
  createServerKeysPublisher,
  createVersionHandler,
} from "@myelin/server";
import type { SigningKey } from "@myelin/signing";
import { parseXMatrixHeader } from "@myelin/signing";
import express from "express";
import type { NextFunction, Request, Response } from "express";
import { createClientApi } from "./client-api/index.js";
import type { HomeserverConfig } from "./config.js";
import { DEFAULTS } from "./config.js";
import { openDataDir } from "./data-dir.js";
import { RoomEngine } from "./engine/index.js";
import type { OutboundFederation } from "./federation.js";
import { createOutboundFederation } from "./federation.js";
import type { BackoffSchedule, FederationLayer } from "./federation/index.js";
import { createFederationLayer } from "./federation/index.js";
import type { Logger } from "./log.js";
import { silentLogger } from "./log.js";
import type { Storage } from "./storage/storage.js";
import { openSqliteStorage } from "./storage/storage.js";

/** File name of the SQLite database inside the data directory. */
export const DATABASE_FILE = "homeserver.db";

/** The implementation version, from this package's `package.json` (one level above `src/` and `dist/`). */
export const HOMESERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Where a started homeserver listens. */
export interface HomeserverAddress {
  /** The address bound (IPv6 without brackets). */
  readonly host: string;
  /** The port bound: the one the system chose when the configuration said 0. */
  readonly port: number;
  /** `http://…` or `https://…`, with brackets around an IPv6 host. */
  readonly url: string;
}

/** What {@link Homeserver.start} reports. */
export interface HomeserverInfo {
  readonly serverName: string;
  readonly address: HomeserverAddress;
  readonly dataDir: string;
  /** The key IDs we publish, the first being the one requests are signed with. */
  readonly keyIds: readonly string[];
  /** Whether this start generated the signing key (first run). */
  readonly createdSigningKey: boolean;
}

/** A homeserver that can be started and stopped in-process. */
export interface Homeserver {
  /**
   * Reads the TLS and CA files, binds, opens the data directory (creating the signing key
   * on first run) and serves. On failure nothing is left listening.
   *
   * @throws {@link HomeserverStartError}, `DataDirError`.
   */
  start(): Promise<HomeserverInfo>;
  /**
   * Stops accepting connections and resolves once open requests have finished (those
   * still running after the grace period are cut off). Does nothing when not started.
   */
  stop(): Promise<void>;
  /** Where it listens; `undefined` until started. */
  readonly address: HomeserverAddress | undefined;
  /** The server name in use; `undefined` until started (it may depend on the port). */
  readonly serverName: string | undefined;
  /** The room engine; `undefined` until started. */
  readonly engine: RoomEngine | undefined;
  /** The database (for tools and tests: register users, inspect queues); `undefined` until started. */
  readonly storage: Storage | undefined;
}

/** Options of {@link createHomeserver} that are not configuration. */
export interface HomeserverOptions {
  /** Default: silent. */
  readonly logger?: Logger;
  /** DNS for outbound federation; default the system's. */
  readonly resolver?: DnsResolver;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** How long {@link Homeserver.stop} lets open requests finish (ms). Default 5 s. */
  readonly stopGraceMs?: number;
  /**
   * Retry schedule of unreachable destinations, over the configuration's
   * `federationRetryMinMs` / `federationRetryMaxMs` (default: Synapse's, first retry after
   * 10 min). Tests use it to fix the jitter.
   */
  readonly federationBackoff?: Partial<BackoffSchedule>;
  /** How often the federation workers look for due work (ms), over the configuration's `federationPollMs` (default 5 s). */
  readonly federationPollIntervalMs?: number;
}

/** Why {@link Homeserver.start} failed (data directory failures are `DataDirError`s). */
export type HomeserverStartFailure =
  | "unreadable-file"
  | "listen-failed"
  | "invalid-tls"
  | "already-started"
  | "stopped-while-starting"
  /** The database cannot be opened (locked, corrupt, or written by a newer version). */
  | "database-failed";

/** Thrown by {@link Homeserver.start}; the message is meant for the operator. */
export class HomeserverStartError extends Error {
  override readonly name = "HomeserverStartError";
  constructor(
    readonly reason: HomeserverStartFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Builds a homeserver from a configuration; nothing happens until {@link Homeserver.start}. */
export function createHomeserver(config: HomeserverConfig, options: HomeserverOptions = {}): Homeserver {
  const logger = options.logger ?? silentLogger;
  interface Running {
    readonly server: http.Server;
    federation: OutboundFederation | undefined;
    storage: Storage | undefined;
    engine: RoomEngine | undefined;
    federationLayer: FederationLayer | undefined;
    info: HomeserverInfo | undefined;
  }
  let running: Running | undefined;
  let starting = false;

  const start = async (): Promise<HomeserverInfo> => {
    if (starting || running !== undefined) throw new HomeserverStartError("already-started", "the homeserver is already started");
    starting = true;
    try {
      const tls =
        config.tls === undefined
          ? undefined
          : { cert: await readConfigured(config.tls.certFile, "TLS certificate"), key: await readConfigured(config.tls.keyFile, "TLS key") };
      const caCertificates: Buffer[] = [];
      for (const file of config.federationCaFiles) caCertificates.push(await readConfigured(file, "federation CA"));

      // With a configured name the data directory is checked before binding, so a refusal
      // leaves no port taken even briefly; without one the name needs the bound port.
      const early = config.serverName === undefined ? undefined : await openDataDir(config.dataDir, config.serverName);
      // Requests reaching the port before the app is ready (the data directory may still be
      // opening) are told to come back rather than left hanging.
      let app: express.Express | undefined;
      const server = createServer(tls, (req, res) => {
        if (app !== undefined) return void app(req, res);
        res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "1" });
        res.end(JSON.stringify({ errcode: "M_UNKNOWN", error: "The server is starting" }));
      });
      const state: Running = { server, federation: undefined, storage: undefined, engine: undefined, federationLayer: undefined, info: undefined };
      running = state;
      const address = await listen(server, config.listen.host, config.listen.port, tls !== undefined);
      try {
        const serverName = config.serverName ?? `localhost:${address.port}`;
        const data = early ?? (await openDataDir(config.dataDir, serverName));
        for (const warning of data.warnings) logger.warn(warning);
        if (data.createdSigningKey) logger.info("generated a new signing key", { keyId: data.signingKeys[0].keyId, dataDir: data.path });

        const federation = createOutboundFederation({
          serverName,
          signingKeys: data.signingKeys,
          caCertificates,
          allowedAddresses: config.federationAllowIp,
          ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
          ...(options.now === undefined ? {} : { now: options.now }),
        });
        state.federation = federation;
        const storage = await openDatabase(join(data.path, DATABASE_FILE));
        state.storage = storage;
        const engine = new RoomEngine({
          storage,
          serverName,
          signingKey: data.signingKeys[0],
          logger,
          ...(config.defaultRoomVersion === undefined ? {} : { defaultRoomVersion: config.defaultRoomVersion }),
          ...(options.now === undefined ? {} : { now: options.now }),
        });
        state.engine = engine;
        const federationLayer = createFederationLayer({
          storage,
          engine,
          serverName,
          signingKey: data.signingKeys[0],
          client: federation.client,
          keyRing: federation.keyRing,
          logger,
          ...(options.now === undefined ? {} : { now: options.now }),
          backoff: federationBackoff(config, options.federationBackoff),
          pollIntervalMs: options.federationPollIntervalMs ?? config.federationPollMs ?? DEFAULTS.federationPollMs,
        });
        state.federationLayer = federationLayer;
        app = buildApp({ config, serverName, signingKeys: data.signingKeys, federation, storage, engine, federationLayer, logger, now: options.now });
        federationLayer.start();
        const info: HomeserverInfo = {
          serverName,
          address,
          dataDir: data.path,
          keyIds: data.signingKeys.map((k) => k.keyId),
          createdSigningKey: data.createdSigningKey,
        };
        state.info = info;
        if (running !== state) {
          await federationLayer.stop();
          federation.close();
          await storage.close();
          throw new HomeserverStartError("stopped-while-starting", "the homeserver was stopped while starting");
        }
        return info;
      } catch (error) {
        if (running === state) await stop();
        throw error;
      }
    } catch (error) {
      if (running !== undefined && running.info === undefined) running = undefined;
      throw error;
    } finally {
      starting = false;
    }
  };

  const stop = async (): Promise<void> => {
    const current = running;
    if (current === undefined) return;
    running = undefined;
    // The workers first: they stop taking work and finish or abandon (durably) what they hold.
    await current.federationLayer?.stop();
    current.federation?.close();
    if (!current.server.listening) {
      await current.storage?.close();
      return;
    }
    const closed = new Promise<void>((resolve) => current.server.close(() => resolve()));
    // Idle keep-alive connections go at once (Node 19+ does so in close(), older do not);
    // requests in flight get the grace period.
    current.server.closeIdleConnections();
    const timer = setTimeout(() => current.server.closeAllConnections(), options.stopGraceMs ?? 5_000);
    timer.unref();
    await closed;
    clearTimeout(timer);
    // After the last request has finished: nothing uses the database any more.
    await current.storage?.close();
  };

  return {
    start,
    stop,
    get address() {
      return running?.info?.address;
    },
    get serverName() {
      return running?.info?.serverName;
    },
    get engine() {
      return running?.info === undefined ? undefined : running.engine;
    },
    get storage() {
      return running?.info === undefined ? undefined : running.storage;
    },
  };
}

/** The retry schedule: the configured delays, then what the embedding code overrides. */
function federationBackoff(config: HomeserverConfig, override: Partial<BackoffSchedule> | undefined): Partial<BackoffSchedule> {
  return {
    initialMs: config.federationRetryMinMs ?? DEFAULTS.federationRetryMinMs,
    maxMs: config.federationRetryMaxMs ?? DEFAULTS.federationRetryMaxMs,
    ...override,
  };
}

async function openDatabase(path: string): Promise<Storage> {
  try {
    return await openSqliteStorage(path);
  } catch (error) {
    throw new HomeserverStartError("database-failed", `cannot open the database ${path}: ${(error as Error).message}`, { cause: error });
  }
}

async function readConfigured(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new HomeserverStartError("unreadable-file", `cannot read the ${what} ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function createServer(tls: { cert: Buffer; key: Buffer } | undefined, listener: http.RequestListener): http.Server {
  // Slow clients must not hold connections for ever (the router sets no timeouts itself).
  const limits = { requestTimeout: 120_000, headersTimeout: 30_000, keepAliveTimeout: 30_000 };
  if (tls === undefined) return http.createServer(limits, listener);
  try {
    return https.createServer({ ...limits, cert: tls.cert, key: tls.key }, listener);
  } catch (error) {
    throw new HomeserverStartError("invalid-tls", `cannot use the TLS certificate and key: ${(error as Error).message}`, { cause: error });
  }
}

function listen(server: http.Server, host: string, port: number, secure: boolean): Promise<HomeserverAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const where = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
      const hint = error.code === "EADDRINUSE" ? " (another process uses this port: choose another with --listen HOST:PORT)" : error.code === "EACCES" ? " (ports below 1024 need privileges)" : "";
      reject(new HomeserverStartError("listen-failed", `cannot listen on ${where}: ${error.message}${hint}`, { cause: error }));
    };
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      const bound = server.address() as AddressInfo;
      const shown = bound.family === "IPv6" || isIP(bound.address) === 6 ? `[${bound.address}]` : bound.address;
      resolve({ host: bound.address, port: bound.port, url: `${secure ? "https" : "http"}://${shown}:${bound.port}` });
    });
  });
}

interface AppContext {
  readonly config: HomeserverConfig;
  readonly serverName: string;
  readonly signingKeys: readonly [SigningKey, ...SigningKey[]];
  readonly federation: OutboundFederation;
  readonly storage: Storage;
  readonly engine: RoomEngine;
  readonly federationLayer: FederationLayer;
  readonly logger: Logger;
  readonly now: (() => number) | undefined;
}

function buildApp(context: AppContext): express.Express {
  const { serverName, signingKeys, federation, logger } = context;
  const clock = context.now === undefined ? {} : { now: context.now };
  const ownKeys = createServerKeysPublisher({ serverName, signingKeys, ...clock });
  const notary = createNotaryHandlers({
    serverName,
    signingKeys,
    fetcher: federation.notaryFetcher,
    ownKeys,
    logger: { warn: (message, fields) => logger.warn(message, fields) },
    ...clock,
  });
  const router = createFederationRouter({
    serverName,
    keyResolver: federation.keyResolver,
    handlers: {
      get_server_version: { v1: createVersionHandler({ name: "Myelin", version: HOMESERVER_VERSION }) },
      get_server_keys: { v2: ownKeys.handler },
      ...notary,
      ...context.federationLayer.handlers,
    },
    checkServerAcl: context.federationLayer.checkServerAcl,
    logger: {
      error: (message, fields) => logger.error(message, fields),
      warn: (message, fields) => logger.warn(message, fields),
    },
    ...clock,
  });

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(requestLog(logger));
  const wellKnown = context.config.wellKnownServer;
  if (wellKnown !== undefined) {
    // Spec § "Resolving server names", step 3: delegation through /.well-known/matrix/server.
    const body = JSON.stringify({ "m.server": wellKnown });
    app.get("/.well-known/matrix/server", (_req, res) => {
      res.status(200).type("application/json").setHeader("Cache-Control", "max-age=86400").send(body);
    });
  }
  // The Client-Server API answers /_matrix/client/... and passes everything else on.
  app.use(
    createClientApi({
      engine: context.engine,
      storage: context.storage,
      serverName,
      remoteMembership: context.federationLayer.remoteMembership,
      remoteQueries: context.federationLayer.remoteQueries,
      remoteHistory: context.federationLayer.remoteHistory,
      logger,
      ...clock,
    }),
  );
  // The router answers everything else, 404 M_UNRECOGNIZED included: it must come last.
  app.use(router);
  return app;
}

/**
 * One `info` line per request once it is answered (or abandoned): method, path without
 * the query, status, time taken, and the X-Matrix origin the request claims (verified
 * only when the status is not 401).
 */
function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    res.once("close", () => {
      const ms = Math.round(performance.now() - started);
      const path = req.originalUrl.split("?", 1)[0] as string;
      const status = res.writableFinished ? String(res.statusCode) : "aborted";
      logger.info(`${req.method} ${path} ${status} ${ms}ms`, { origin: claimedOrigin(req.headers.authorization) ?? "-" });
    });
    next();
  };
}

function claimedOrigin(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  try {
    return parseXMatrixHeader(header).origin;
  } catch {
    return undefined;
  }
}
