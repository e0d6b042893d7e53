/**
 * Errors this package throws to its caller (never to a peer: peers get `MatrixError`s).
 *
 * @module
 */

/** Why {@link createFederationRouter} refused its options. */
export type RouterConfigFailure =
  /** `serverName` is not a valid server name. */
  | "invalid-server-name"
  /** A handler is registered under a name/version the endpoint table does not have. */
  | "unknown-endpoint"
  /** A handler entry is not a function. */
  | "invalid-handler"
  /** `maxBodyBytes` is not a positive integer. */
  | "invalid-body-limit";

/** Thrown when the router is created with unusable options. */
export class RouterConfigError extends Error {
  override readonly name = "RouterConfigError";
  constructor(
    readonly reason: RouterConfigFailure,
    /** What was refused: the server name, `name.version` of the handler, or the limit. */
    readonly subject: string,
  ) {
    super(`invalid federation router options (${reason}): ${subject}`);
  }
}
