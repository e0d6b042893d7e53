/**
 * The retry schedule of unreachable destinations: exponential backoff with jitter and a cap,
 * persisted per destination (hostile-federation D5, D6, D10).
 *
 * The production defaults are Synapse's (`synapse/util/retryutils.py`, `config/federation.py`):
 * first retry after 10 minutes, doubling, jitter x0.8-1.4, capped at 7 days. A destination
 * that sends us a valid request is retried at once whatever its schedule says.
 *
 * @module
 */

/** How long to wait after consecutive failures. */
export interface BackoffSchedule {
  /** Delay after the first failure (ms). */
  readonly initialMs: number;
  /** Factor applied per further failure. */
  readonly multiplier: number;
  /** Largest delay (ms), before jitter. */
  readonly maxMs: number;
  /** The delay is multiplied by a random factor in [low, high). */
  readonly jitter: readonly [low: number, high: number];
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Synapse's schedule: 10 min, x2, x0.8-1.4, capped at 7 days. */
export const DEFAULT_BACKOFF: BackoffSchedule = Object.freeze({
  initialMs: 10 * MINUTE,
  multiplier: 2,
  maxMs: 7 * DAY,
  jitter: Object.freeze([0.8, 1.4] as const),
});

/**
 * Once the delay exceeds this, volatile EDUs (typing, receipts, presence) queued for the
 * destination are dropped: they are stale by the time it comes back (Synapse's
 * `CATCHUP_RETRY_INTERVAL`, one hour).
 */
export const VOLATILE_EDU_DROP_MS = 60 * MINUTE;

/** The delay before the next attempt after `failures` consecutive failures (>= 1). */
export function retryDelayMs(failures: number, schedule: BackoffSchedule, random: () => number = Math.random): number {
  const exponent = Math.max(0, failures - 1);
  // Computed stepwise so that large failure counts cannot overflow to Infinity.
  let delay = schedule.initialMs;
  for (let i = 0; i < exponent && delay < schedule.maxMs; i++) delay *= schedule.multiplier;
  delay = Math.min(delay, schedule.maxMs);
  const [low, high] = schedule.jitter;
  return Math.round(delay * (low + (high - low) * random()));
}
