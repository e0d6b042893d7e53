/**
 * The homeserver's federation layer in one piece: the router handlers of every federation
 * endpoint it implements (transactions, event retrieval, membership, queries), the server
 * ACL check, the workers (inbound staging, outbound queue, the start-up announcement) and
 * the client API's `RemoteMembership`, `RemoteHistory` (backfill) and `RemoteQueries`.
 *
 * @module
 */

import type { FederationClient, KeyRing } from "@myelin/client";
import type { FederationHandler, FederationHandlers, ServerAclCheck } from "@myelin/server";
import type { SigningKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import type { RemoteHistory, RemoteMembership, RemoteQueries } from "../client-api/remote.js";
import type { RoomEngine } from "../engine/room-engine.js";
import type { Logger } from "../log.js";
import type { Storage } from "../storage/storage.js";
import { Backfiller } from "./backfill.js";
import type { BackoffSchedule } from "./backoff.js";
import { IncomingPipeline } from "./incoming.js";
import { RECEIVED_TRANSACTION_TTL_MS, StagingWorker, createSendHandler } from "./inbound.js";
import { FederationMembership, createMembershipHandlers } from "./membership.js";
import { createQueryHandlers, queryRemoteAlias, queryRemoteProfile } from "./query.js";
import { AclCache, currentJoinedServers, serverOfUser } from "./room-state.js";
import { FederationSender } from "./sender.js";
import { createServingHandlers } from "./serving.js";

export { BACKFILL_BATCH, Backfiller } from "./backfill.js";
export type { BackfillerOptions } from "./backfill.js";
export { DEFAULT_BACKOFF, retryDelayMs } from "./backoff.js";
export type { BackoffSchedule } from "./backoff.js";
export { IncomingPipeline } from "./incoming.js";
export type { IngestOutcome, IncomingPipelineOptions } from "./incoming.js";
export { StagingWorker } from "./inbound.js";
export type { StagingWorkerOptions } from "./inbound.js";
export { MembershipRefusedError } from "./membership.js";
export { checkPdus } from "./pdu-checks.js";
export type { CheckPdusOptions, CheckedPdu, DroppedPdu, PduCheck } from "./pdu-checks.js";
export { FederationSender } from "./sender.js";
export type { FederationSenderOptions } from "./sender.js";

/** Options of {@link createFederationLayer}. */
export interface FederationLayerOptions {
  readonly storage: Storage;
  readonly engine: RoomEngine;
  readonly serverName: string;
  /** Signs what we countersign (invites, restricted joins) and our joins and leaves. */
  readonly signingKey: SigningKey;
  readonly client: FederationClient;
  readonly keyRing: Pick<KeyRing, "lookupKey">;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Outbound retry schedule (default: Synapse's, first retry after 10 minutes). */
  readonly backoff?: Partial<BackoffSchedule>;
  /** How often the workers look for due work (ms). Default 5 s. */
  readonly pollIntervalMs?: number;
  /**
   * This process's name in the database's leases (`staging:<name>` for room workers,
   * `sender:<name>` for destinations). A restarted process takes its own leases back at
   * once, so a crash (SIGKILL) does not stall a room or a destination until the lease
   * expires. Processes sharing a database need distinct names; one process per data
   * directory, as `myelin-server` runs, keeps the default {@link DEFAULT_INSTANCE_NAME}.
   */
  readonly instanceName?: string;
}

/** The default {@link FederationLayerOptions.instanceName}: the one process of a data directory. */
export const DEFAULT_INSTANCE_NAME = "main";

/** What {@link createFederationLayer} builds. */
export interface FederationLayer {
  /** Handlers for the federation router. */
  readonly handlers: FederationHandlers;
  /** The router's server ACL check. */
  readonly checkServerAcl: ServerAclCheck;
  readonly remoteMembership: RemoteMembership;
  readonly remoteQueries: RemoteQueries;
  /** Older history through `/backfill`, for the client API's `/messages`. */
  readonly remoteHistory: RemoteHistory;
  readonly sender: FederationSender;
  readonly staging: StagingWorker;
  readonly pipeline: IncomingPipeline;
  /** Starts the workers (staged PDUs left by an earlier run are picked up now). */
  start(): void;
  /** Stops the workers; nothing queued or staged is lost. */
  stop(): Promise<void>;
}

/** How often old `/send` responses are pruned (ms). */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Builds the federation layer and registers the engine hook that queues every local event
 * for the room's other servers (in the event's own transaction, so nothing is lost).
 */
export function createFederationLayer(options: FederationLayerOptions): FederationLayer {
  const { storage, engine, serverName, logger } = options;
  const now = options.now ?? Date.now;
  const lookupKey = options.keyRing.lookupKey;
  const instance = options.instanceName ?? DEFAULT_INSTANCE_NAME;
  const sender = new FederationSender({
    holder: `sender:${instance}`,
    storage,
    client: options.client,
    serverName,
    logger,
    now,
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  });
  const pipeline = new IncomingPipeline({ engine, storage, client: options.client, lookupKey, logger });
  const staging = new StagingWorker({
    storage,
    process: (pdu, signal) => pipeline.processStaged(pdu, signal),
    logger,
    now,
    holder: `staging:${instance}`,
    ...(options.pollIntervalMs === undefined ? {} : { rescanIntervalMs: options.pollIntervalMs }),
  });
  const acl = new AclCache(storage);
  const backfiller = new Backfiller({ storage, client: options.client, pipeline, serverName, logger, now });

  // Each server sends its own users' events to the room's other servers: those joined after
  // the event, and for a kick or ban the target's server (no longer joined, but concerned).
  // An invitee's server got its invite through /invite and is not in the room.
  // Events we accept as the resident server (send_join, send_leave, send_knock) are relayed
  // to every other server in the room, in the same transaction.
  const relays = new Map<string, string>();
  engine.addPersistHook(async (tx, event) => {
    const relayFor = relays.get(event.eventId);
    if (!event.local && relayFor !== undefined && !event.stored.softFailed) {
      const destinations = (await currentJoinedServers(tx, event.roomId)).filter((server) => server !== relayFor);
      await sender.enqueuePdu(tx, event.eventId, destinations);
      return;
    }
    if (!event.local) return;
    const destinations = new Set(await currentJoinedServers(tx, event.roomId));
    if (event.stored.type === "m.room.member" && event.stored.stateKey !== null) {
      const membership = (event.pdu["content"] as JsonObject | undefined)?.["membership"];
      if (membership === "leave" || membership === "ban") destinations.add(serverOfUser(event.stored.stateKey));
    }
    await sender.enqueuePdu(tx, event.eventId, destinations);
  });
  engine.onEventPersisted((event) => {
    if (event.local) sender.wakeDue();
  });

  const membershipOptions = {
    engine,
    storage,
    serverName,
    signingKey: options.signingKey,
    lookupKey,
    client: options.client,
    sender,
    pipeline,
    logger,
    now,
    relays,
  };
  const membership = new FederationMembership(membershipOptions);
  const handlers: FederationHandlers = notifyingRemoteUp(
    {
      send_transaction_message: {
        v1: createSendHandler({ storage, lookupKey, acl, logger, now, onStaged: (rooms) => staging.wake(rooms) }),
      },
      ...createServingHandlers({ storage, serverName, now }),
      ...createMembershipHandlers(membershipOptions),
      ...createQueryHandlers({ storage, serverName }),
    },
    (origin) => void sender.notifyRemoteUp(origin).catch((error: unknown) => logger.warn("could not reset a destination's backoff", { origin, error })),
  );

  /**
   * After a start, every server we share a room with (a local user joined) and have nothing
   * queued for gets our forward extremities of those rooms in a transaction. That tells it
   * we are up (it resets its backoff for us and sends what it queued while we were down:
   * Synapse resets retry timings on any authenticated request, and so do we), and if it
   * missed our latest events it fetches them from the extremities with
   * `get_missing_events`, like Synapse's catch-up after an outage. Receivers drop the PDUs
   * they already have at no cost. Destinations with queued items are left out: the sender
   * contacts them anyway. The items go through the durable queue, so the usual backoff applies.
   */
  async function announceStart(): Promise<void> {
    const destinations = await storage.transaction(async (tx) => {
      const extremitiesFor = new Map<string, Set<string>>();
      for (const room of await tx.listRooms()) {
        const servers = await currentJoinedServers(tx, room.roomId);
        if (!servers.includes(serverName)) continue;
        const extremities = await tx.getForwardExtremities(room.roomId);
        for (const server of servers) {
          if (server === serverName) continue;
          let set = extremitiesFor.get(server);
          if (set === undefined) extremitiesFor.set(server, (set = new Set()));
          for (const id of extremities) set.add(id);
        }
      }
      const announced: string[] = [];
      for (const [destination, eventIds] of extremitiesFor) {
        if ((await tx.countOutbound(destination)) > 0) continue;
        for (const eventId of eventIds) await sender.enqueuePdu(tx, eventId, [destination]);
        announced.push(destination);
      }
      return announced;
    });
    if (destinations.length > 0) logger.info("announcing the start-up to the rooms' other servers", { destinations: destinations.length });
    sender.wake(destinations);
  }

  let pruneTimer: NodeJS.Timeout | undefined;
  let announcing: Promise<void> | undefined;
  const prune = (): void => {
    storage
      .transaction((tx) => tx.pruneReceivedTransactions(now() - RECEIVED_TRANSACTION_TTL_MS))
      .catch((error: unknown) => logger.warn("could not prune received transactions", { error }));
  };

  return {
    handlers,
    checkServerAcl: (origin, roomId) => acl.allows(origin, roomId),
    remoteMembership: membership,
    remoteHistory: backfiller,
    remoteQueries: {
      resolveAlias: (alias) => queryRemoteAlias(options.client, alias),
      getProfile: async (userId, field) => {
        const profile = await queryRemoteProfile(options.client, userId);
        if (profile === undefined || field === undefined) return profile;
        const value = (profile as JsonObject)[field];
        return value === undefined ? undefined : { [field]: value };
      },
    },
    sender,
    staging,
    pipeline,
    start() {
      sender.start();
      staging.start();
      announcing = announceStart().catch((error: unknown) => logger.warn("could not announce the start-up to the rooms' other servers", { error }));
      prune();
      pruneTimer = setInterval(prune, PRUNE_INTERVAL_MS);
      pruneTimer.unref();
    },
    async stop() {
      if (pruneTimer !== undefined) clearInterval(pruneTimer);
      pruneTimer = undefined;
      await announcing;
      await Promise.all([sender.stop(), staging.stop()]);
    },
  };
}

/**
 * Wraps every handler so that a request from a server (authenticated by the router) tells
 * the sender the server is up (Synapse's `notify_remote_server_up`, hostile-federation D5).
 */
function notifyingRemoteUp(handlers: FederationHandlers, notify: (origin: string) => void): FederationHandlers {
  const wrapped: Record<string, Record<string, FederationHandler>> = {};
  for (const [name, versions] of Object.entries(handlers as Record<string, Record<string, FederationHandler> | undefined>)) {
    if (versions === undefined) continue;
    wrapped[name] = {};
    for (const [version, handler] of Object.entries(versions)) {
      (wrapped[name] as Record<string, FederationHandler>)[version] = (request) => {
        if (typeof request.origin === "string") notify(request.origin);
        return handler(request);
      };
    }
  }
  return wrapped as FederationHandlers;
}
