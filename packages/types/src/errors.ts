/**
 * Matrix error codes and the one error type that crosses the wire.
 *
 * @module
 */

/** The errcodes this project emits or understands, with the HTTP status each usually travels with. */
export const ERRCODES = {
  M_FORBIDDEN: 403,
  M_UNKNOWN_TOKEN: 401,
  M_MISSING_TOKEN: 401,
  M_UNAUTHORIZED: 401,
  M_BAD_JSON: 400,
  M_NOT_JSON: 400,
  M_NOT_FOUND: 404,
  M_LIMIT_EXCEEDED: 429,
  M_UNRECOGNIZED: 404,
  M_UNKNOWN: 500,
  M_MISSING_PARAM: 400,
  M_INVALID_PARAM: 400,
  M_TOO_LARGE: 413,
  M_EXCLUSIVE: 400,
  M_USER_IN_USE: 400,
  M_INVALID_USERNAME: 400,
  M_ROOM_IN_USE: 400,
  M_INVALID_ROOM_STATE: 400,
  M_UNSUPPORTED_ROOM_VERSION: 400,
  M_INCOMPATIBLE_ROOM_VERSION: 400,
  M_BAD_STATE: 403,
  M_GUEST_ACCESS_FORBIDDEN: 403,
  M_UNABLE_TO_AUTHORISE_JOIN: 400,
  M_UNABLE_TO_GRANT_JOIN: 400,
  M_INVITE_BLOCKED: 403,
  M_NOT_YET_UPLOADED: 504,
  M_CANNOT_OVERWRITE_MEDIA: 409,
} as const;

/** A Matrix errcode known to this library. Other `M_` codes from peers are kept as plain strings. */
export type Errcode = keyof typeof ERRCODES;

/** The JSON body of a Matrix error response. */
export interface MatrixErrorBody {
  errcode: string;
  error: string;
  [extra: string]: unknown;
}

/**
 * An error that is meant to reach the other side as a Matrix error response:
 * `{ "errcode": ..., "error": ... }` with an HTTP status.
 */
export class MatrixError extends Error {
  override readonly name = "MatrixError";
  readonly errcode: string;
  readonly status: number;
  /** Extra top-level fields of the body, e.g. `room_version` for `M_INCOMPATIBLE_ROOM_VERSION`. */
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(
    errcode: Errcode | (string & {}),
    message: string,
    options: { status?: number; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.errcode = errcode;
    this.status = options.status ?? (ERRCODES as Record<string, number>)[errcode] ?? 400;
    this.extra = options.extra ?? {};
  }

  /** The response body. */
  toJSON(): MatrixErrorBody {
    return { ...this.extra, errcode: this.errcode, error: this.message };
  }
}
