/**
 * The one error class of the storage layer, with its tagged reasons.
 *
 * @module
 */

/** Why a storage operation failed. */
export type StorageFailure =
  /** A unique thing already exists (user ID, alias, event ID, access token, room ID). */
  | "conflict"
  /** A referenced row does not exist (e.g. the previous state group of a delta, a room). */
  | "not-found"
  /** The database holds data the code cannot make sense of (bad state-group chain, bad JSON). */
  | "corrupt"
  /** The database stayed locked by another process beyond the busy timeout; retrying can help. */
  | "busy"
  /** The database was written by a newer version of this server (unknown schema version). */
  | "schema-too-new"
  /** The storage (or the transaction object) was used after it was closed or had ended. */
  | "closed"
  /** `transaction` was called from inside a transaction (it would wait for itself forever). */
  | "nested-transaction"
  /** An argument the caller should never pass (negative limit, empty ID list where one is required). */
  | "invalid-argument";

/** A storage operation failed; `reason` says how, `cause` carries the driver error if any. */
export class StorageError extends Error {
  /** Why the operation failed. */
  readonly reason: StorageFailure;

  /**
   * @param reason - the tagged failure
   * @param message - a human-readable detail
   * @param options - `cause`: the underlying error
   */
  constructor(reason: StorageFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
    this.reason = reason;
  }
}
