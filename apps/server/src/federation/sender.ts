/**
 * The outbound federation queue: per-destination transactions built from a queue that lives
 * in the database, so a restart drops nothing (hostile-federation D4) and several processes
 * could share it (a lease per destination keeps one transaction in flight).
 *
 * - Items are queued in the transaction that persists the event (or with it), then the
 *   destination's loop is woken. Each transaction carries at most 50 PDUs and 100 EDUs
 *   (server-server API § "Transactions").
 * - The transaction ID is derived from the IDs of the queue items it carries: a retry of the
 *   same items reuses it (so the receiver's (origin, txnId) dedupe applies), and queue IDs
 *   are never reused, so a new transaction never collides with an old one.
 * - Failures back off exponentially (see `backoff.ts`), persisted per destination. A
 *   destination that answers 400/403/404/413 is alive but refuses these items: they are
 *   dropped with a log line rather than blocking the destination for ever (D9), and the
 *   backoff is untouched (D10). 401, 429, 5xx, timeouts and connection failures back off.
 * - A destination that sends us a valid request is retried at once ({@link FederationSender.notifyRemoteUp},
 *   Synapse's `notify_remote_server_up`). A failed destination is also retried when its
 *   delay is over (a timer per destination), not only at the next poll, so short retry
 *   delays (`--federation-retry-min-ms`) take effect as configured.
 * - After a long outage the queue still holds every PDU, so the destination gets all it missed,
 *   oldest first; volatile EDUs are dropped once the backoff exceeds an hour (D5).
 *
 * @module
 */

import { createHash, randomUUID } from "node:crypto";
import type { FederationClient } from "@myelin/client";
import { FederationRequestError } from "@myelin/client";
import { parseJson } from "@myelin/signing";
import type { JsonObject, JsonValue } from "@myelin/types";
import type { Logger } from "../log.js";
import type { OutboundItem, Storage, StorageTx } from "../storage/storage.js";
import type { BackoffSchedule } from "./backoff.js";
import { DEFAULT_BACKOFF, VOLATILE_EDU_DROP_MS, retryDelayMs } from "./backoff.js";

/** Options of {@link FederationSender}. */
export interface FederationSenderOptions {
  readonly storage: Storage;
  readonly client: Pick<FederationClient, "call">;
  /** Our server name (the transactions' `origin`; never a destination). */
  readonly serverName: string;
  readonly logger: Logger;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** Retry schedule; default {@link DEFAULT_BACKOFF}. */
  readonly backoff?: Partial<BackoffSchedule>;
  /** How often due destinations are looked for (ms). Default 5 s. */
  readonly pollIntervalMs?: number;
  /** Deadline of one transaction request (ms). Default 60 s. */
  readonly requestTimeoutMs?: number;
  /** Random numbers for jitter; default `Math.random`. */
  readonly random?: () => number;
  /**
   * This process's name in the per-destination leases. Give the same name across restarts
   * (see `FederationLayerOptions.instanceName`), so that a process killed while sending
   * does not keep its successor away from that destination until the lease expires.
   * Default: a random name.
   */
  readonly holder?: string;
}

/** Limits of one transaction (server-server API § "Transactions"). */
const MAX_PDUS = 50;
const MAX_EDUS = 100;

/** Longest delay a Node.js timer can wait (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Failures that mean "the remote is up but refuses these items" (D9, D10). */
const PERMANENT_STATUSES = new Set([400, 403, 404, 413]);

/**
 * The per-destination outbound queue worker. Create one per process, {@link start} it with
 * the server and {@link stop} it before closing storage.
 */
export class FederationSender {
  private readonly storage: Storage;
  private readonly client: Pick<FederationClient, "call">;
  private readonly serverName: string;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly schedule: BackoffSchedule;
  private readonly pollIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly random: () => number;
  private readonly holder: string;
  private readonly running = new Map<string, Promise<void>>();
  /** Destinations woken while their loop ran: the loop goes round once more. */
  private readonly rewake = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Per destination: the timer that retries it when its backoff is over. */
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private started = false;
  private abort = new AbortController();

  constructor(options: FederationSenderOptions) {
    this.storage = options.storage;
    this.client = options.client;
    this.serverName = options.serverName;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.schedule = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.pollIntervalMs = options.pollIntervalMs ?? 5_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.random = options.random ?? Math.random;
    this.holder = options.holder ?? `sender:${randomUUID()}`;
  }

  /** Starts sending: every destination with due items now, then a poll every few seconds. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.abort = new AbortController();
    this.timer = setInterval(() => void this.poll(), this.pollIntervalMs);
    this.timer.unref();
    void this.poll();
  }

  /** Stops polling, cancels requests in flight and waits for the loops to end. Nothing queued is lost. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    this.abort.abort(new Error("the federation sender is stopping"));
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Queues a PDU for each destination (ourselves excluded), inside the caller's storage
   * transaction so that the event and its delivery commit together. Call {@link wake}
   * after the commit.
   */
  async enqueuePdu(tx: StorageTx, eventId: string, destinations: Iterable<string>): Promise<string[]> {
    const queued: string[] = [];
    for (const destination of new Set(destinations)) {
      if (destination === this.serverName) continue;
      await tx.enqueueOutbound(destination, { kind: "pdu", eventId });
      queued.push(destination);
    }
    return queued;
  }

  /** Queues an EDU for a destination inside the caller's transaction; call {@link wake} after the commit. */
  async enqueueEdu(tx: StorageTx, destination: string, edu: { edu_type: string; content: JsonObject }, volatile: boolean): Promise<void> {
    if (destination === this.serverName) return;
    await tx.enqueueOutbound(destination, { kind: "edu", json: JSON.stringify(edu), volatile });
  }

  /** Starts (or continues) the loops of these destinations, unless they are backing off. */
  wake(destinations: Iterable<string>): void {
    if (!this.started) return;
    for (const destination of destinations) this.run(destination);
  }

  /** Looks for destinations with due items now (after a commit that queued some). */
  wakeDue(): void {
    void this.poll();
  }

  /**
   * A destination just sent us a valid request: it is up, so forget its backoff and send
   * what is queued for it now.
   */
  async notifyRemoteUp(destination: string): Promise<void> {
    if (destination === this.serverName) return;
    const reset = await this.storage.transaction(async (tx) => {
      const state = await tx.getDestination(destination);
      if (state === undefined || (state.failures === 0 && state.retryAtTs === null)) return false;
      await tx.setDestination(destination, { failures: 0, retryAtTs: null });
      return true;
    });
    if (reset) {
      this.logger.info("destination is back: retrying now", { destination });
      this.wake([destination]);
    }
  }

  /** Resolves once every destination loop running now has finished (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  private async poll(): Promise<void> {
    if (!this.started) return;
    try {
      const due = await this.storage.transaction((tx) => tx.listDestinationsDue(this.now()));
      this.wake(due);
    } catch (error) {
      this.logger.error("could not list destinations with queued federation traffic", { error });
    }
  }

  private run(destination: string): void {
    if (this.running.has(destination)) {
      this.rewake.add(destination);
      return;
    }
    const loop = this.loop(destination)
      .catch((error: unknown) => this.logger.error("federation sender loop failed", { destination, error }))
      .finally(() => {
        this.running.delete(destination);
        if (this.rewake.delete(destination) && this.started) this.run(destination);
      });
    this.running.set(destination, loop);
  }

  /** Sends transactions to one destination until its queue is empty or it fails. */
  private async loop(destination: string): Promise<void> {
    const lease = `outbound:${destination}`;
    const leaseMs = this.requestTimeoutMs * 2 + 10_000;
    while (this.started) {
      this.rewake.delete(destination);
      const batch = await this.storage.transaction(async (tx) => {
        const state = await tx.getDestination(destination);
        if (state?.retryAtTs != null && state.retryAtTs > this.now()) return undefined;
        if (!(await tx.tryAcquireLease(lease, this.holder, this.now() + leaseMs))) return undefined;
        const items = await tx.peekOutbound(destination, { maxPdus: MAX_PDUS, maxEdus: MAX_EDUS });
        if (items.length === 0) {
          await tx.releaseLease(lease, this.holder);
          return undefined;
        }
        const events = await tx.getEvents(items.flatMap((item) => (item.kind === "pdu" ? [item.eventId] : [])));
        return { items, events };
      });
      if (batch === undefined) return;
      try {
        const more = await this.send(destination, batch.items, batch.events);
        if (!more) return;
      } finally {
        await this.storage.transaction((tx) => tx.releaseLease(lease, this.holder));
      }
    }
  }

  /** Sends one transaction; whether to go on with the next one. */
  private async send(
    destination: string,
    items: readonly OutboundItem[],
    events: ReadonlyMap<string, { readonly json: string }>,
  ): Promise<boolean> {
    const pdus: JsonValue[] = [];
    const edus: JsonValue[] = [];
    const unusable: number[] = [];
    for (const item of items) {
      try {
        if (item.kind === "pdu") {
          const row = events.get(item.eventId);
          if (row === undefined) unusable.push(item.id);
          else pdus.push(parseJson(row.json, { strict: false }));
        } else {
          edus.push(parseJson(item.json, { strict: false }));
        }
      } catch (error) {
        this.logger.error("dropping an outbound item that cannot be read", { destination, item: item.id, error });
        unusable.push(item.id);
      }
    }
    const ids = items.map((item) => item.id);
    if (pdus.length === 0 && edus.length === 0) {
      await this.storage.transaction((tx) => tx.deleteOutbound(ids));
      return true;
    }
    const txnId = transactionId(ids);
    try {
      const response = await this.client.call("send_transaction_message", "v1", destination, {
        params: { txnId },
        body: { origin: this.serverName, origin_server_ts: this.now(), pdus: pdus as JsonObject[], edus: edus as JsonObject[] },
        retry: false,
        timeoutMs: this.requestTimeoutMs,
        signal: this.abort.signal,
      });
      for (const [eventId, result] of Object.entries(response.pdus ?? {})) {
        const error = (result as { error?: unknown }).error;
        if (error !== undefined) this.logger.warn("destination refused a PDU", { destination, eventId, error });
      }
      await this.storage.transaction(async (tx) => {
        await tx.deleteOutbound(ids);
        await tx.setDestination(destination, { failures: 0, retryAtTs: null, lastSuccessTs: this.now() });
      });
      this.logger.debug("sent a federation transaction", { destination, txnId, pdus: pdus.length, edus: edus.length });
      return true;
    } catch (error) {
      if (!this.started) return false;
      if (error instanceof FederationRequestError && error.status !== undefined && PERMANENT_STATUSES.has(error.status)) {
        // The remote is alive and refuses these items: sending them again would fail again
        // and block everything behind them (hostile-federation D9, CVE-2023-32323).
        this.logger.warn("destination refused a transaction: dropping its items", {
          destination,
          txnId,
          status: error.status,
          errcode: error.errcode,
          pdus: pdus.length,
          edus: edus.length,
        });
        await this.storage.transaction((tx) => tx.deleteOutbound(ids));
        return true;
      }
      await this.recordFailure(destination, error);
      return false;
    }
  }

  /**
   * Wakes the destination once its delay is over. The poll would find it too, but only at
   * its next tick; the timer is not needed for correctness (the schedule is in the database).
   */
  private scheduleRetry(destination: string, delayMs: number): void {
    if (!this.started || delayMs > MAX_TIMER_MS) return;
    clearTimeout(this.retryTimers.get(destination));
    const timer = setTimeout(() => {
      this.retryTimers.delete(destination);
      this.wake([destination]);
    }, delayMs + 1);
    timer.unref();
    this.retryTimers.set(destination, timer);
  }

  private async recordFailure(destination: string, error: unknown): Promise<void> {
    const retryAfterMs = error instanceof FederationRequestError ? error.retryAfterMs : undefined;
    const { failures, delay } = await this.storage.transaction(async (tx) => {
      const failures = ((await tx.getDestination(destination))?.failures ?? 0) + 1;
      const delay = Math.max(retryDelayMs(failures, this.schedule, this.random), retryAfterMs ?? 0);
      await tx.setDestination(destination, { failures, retryAtTs: this.now() + delay });
      if (delay > VOLATILE_EDU_DROP_MS) await tx.dropVolatileOutbound(destination);
      return { failures, delay };
    });
    this.scheduleRetry(destination, delay);
    this.logger.warn("could not send to destination: backing off", {
      destination,
      failures,
      retryInMs: delay,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** A transaction ID naming exactly these queue items (stable across retries, never reused). */
export function transactionId(itemIds: readonly number[]): string {
  const digest = createHash("sha256").update(itemIds.join(",")).digest("base64url").slice(0, 16);
  return `${itemIds[0] ?? 0}-${digest}`;
}
