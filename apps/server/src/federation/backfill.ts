/**
 * Fetching history this server does not have (server-server API § "Backfilling and
 * retrieving missing events"): a server that joined late holds the room's state but not its
 * timeline before the join. When a client paginating `/messages` backwards nears such a gap,
 * the client API asks {@link Backfiller.backfill} for more: `GET /backfill/{roomId}?v=...` from a
 * server in the room, starting at the room's backward extremities (the prev events the
 * timeline cites but does not hold, as Synapse does). The answer goes through the same
 * checks as every received event and is placed in the timeline by its depth (see
 * `IncomingPipeline.ingestBackfilled`).
 *
 * @module
 */

import type { FederationClient } from "@myelin/client";
import type { JsonValue } from "@myelin/types";
import type { Logger } from "../log.js";
import type { ChildDepthRange, Storage, StorageTx } from "../storage/storage.js";
import type { IncomingPipeline } from "./incoming.js";
import { currentState, membershipsIn, serverOfUser } from "./room-state.js";

/** Events asked for per `/backfill` request (Synapse asks for 100, and serves at most 100). */
export const BACKFILL_BATCH = 100;
/** Backward extremities named in one request (`v`). */
const MAX_STARTS = 20;
/** How long extremities no server would fill are left alone (ms). */
const UNFILLABLE_RETRY_MS = 60_000;
/** Deadline of one `/backfill` request: a client is waiting (ms). */
const REQUEST_TIMEOUT_MS = 20_000;

/** Options of {@link Backfiller}. */
export interface BackfillerOptions {
  readonly storage: Storage;
  readonly client: Pick<FederationClient, "call">;
  readonly pipeline: Pick<IncomingPipeline, "ingestBackfilled">;
  /** Our server name (never asked). */
  readonly serverName: string;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Fetches a room's older history from the other servers in it. */
export class Backfiller {
  private readonly options: BackfillerOptions;
  /** Per room: the backfill running now (one at a time per room in this process). */
  private readonly running = new Map<string, Promise<number>>();
  /**
   * Extremities no server would fill, until when they are skipped. In memory on purpose: it
   * only spares the network, and forgetting it (a restart) costs one more try.
   */
  private readonly unfillable = new Map<string, number>();

  constructor(options: BackfillerOptions) {
    this.options = options;
  }

  /**
   * Fetches up to {@link BACKFILL_BATCH} events older than the room's timeline and places
   * them in it by depth; resolves with how many were placed (0 when the timeline reaches the
   * room's creation, or no server would give more). With `childDepths`, starts only from
   * the backward extremities cited by events in that depth range (those a client paging
   * back is about to reach). A call made while another runs for the same room waits for
   * it, then fetches the next batch.
   */
  async backfill(roomId: string, options: { readonly childDepths?: ChildDepthRange | undefined } = {}): Promise<number> {
    const previous = this.running.get(roomId) ?? Promise.resolve(0);
    const run = previous.catch(() => 0).then(() => this.backfillOnce(roomId, options.childDepths ?? {}));
    this.running.set(roomId, run);
    try {
      return await run;
    } finally {
      if (this.running.get(roomId) === run) this.running.delete(roomId);
    }
  }

  private async backfillOnce(roomId: string, childDepths: ChildDepthRange): Promise<number> {
    const { storage, client, logger, now } = this.options;
    const { extremities, servers } = await storage.transaction(async (tx) => {
      if ((await tx.getRoom(roomId)) === undefined) return { extremities: [], servers: [] };
      const found = await tx.getBackwardExtremities(roomId, MAX_STARTS * 4, childDepths);
      return { extremities: found.map((e) => e.eventId), servers: await this.serversToAsk(tx, roomId) };
    });
    const at = now();
    const starts = extremities.filter((id) => (this.unfillable.get(id) ?? 0) <= at).slice(0, MAX_STARTS);
    if (starts.length === 0 || servers.length === 0) return 0;
    for (const server of servers) {
      let pdus: readonly unknown[];
      try {
        const answer = await client.call("get_backfill", "v1", server, {
          params: { roomId },
          query: { v: starts, limit: String(BACKFILL_BATCH) },
          retry: false,
          timeoutMs: REQUEST_TIMEOUT_MS,
        });
        pdus = answer.pdus;
      } catch (error) {
        logger.info("backfill request failed", { roomId, server, error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      const placed = await this.options.pipeline.ingestBackfilled(roomId, server, pdus as JsonValue[]);
      logger.debug("backfilled", { roomId, server, received: pdus.length, placed: placed.length });
      if (placed.length > 0) {
        for (const id of starts) this.unfillable.delete(id);
        return placed.length;
      }
    }
    const until = now() + UNFILLABLE_RETRY_MS;
    for (const id of starts) this.unfillable.set(id, until);
    if (this.unfillable.size > 10_000) this.forgetExpired();
    logger.info("no server would backfill these events", { roomId, events: starts.length });
    return 0;
  }

  /**
   * The servers to ask, best first: those with joined members in the room now, most members
   * first (the likeliest to hold the whole history), ours left out.
   */
  private async serversToAsk(tx: StorageTx, roomId: string): Promise<string[]> {
    const counts = new Map<string, number>();
    for (const [userId, membership] of await membershipsIn(tx, await currentState(tx, roomId))) {
      if (membership !== "join") continue;
      const server = serverOfUser(userId);
      if (server !== this.options.serverName) counts.set(server, (counts.get(server) ?? 0) + 1);
    }
    return [...counts].sort(([a, m], [b, n]) => n - m || (a < b ? -1 : 1)).map(([server]) => server);
  }

  private forgetExpired(): void {
    const at = this.options.now();
    for (const [id, until] of this.unfillable) if (until <= at) this.unfillable.delete(id);
  }
}
