/**
 * The one error a federation request can fail with, tagged by the layer that failed and
 * saying whether a retry may help (matrix-rust-sdk's `RetryKind`, as the house style asks).
 *
 * @module
 */

import type { DiscoveryStep } from "./discovery.js";

/**
 * Which layer of a federation request failed.
 *
 * - `discovery`: the server name could not be resolved (grammar, DNS, SRV `.`).
 * - `connect`: no TCP connection: refused address, connection refused/reset, unreachable.
 * - `tls`: the TLS handshake failed or the certificate was not valid for the expected name.
 * - `timeout`: the request (discovery, connection, TLS, headers and body) did not finish in time.
 * - `http`: the remote answered with an HTTP error that is not a Matrix error.
 * - `matrix`: the remote answered with a Matrix error (`errcode`).
 * - `response`: a 2xx answer that is unusable: too large, not JSON, not matching the schema.
 */
export type FailureLayer = "discovery" | "connect" | "tls" | "timeout" | "http" | "matrix" | "response";

/** The specific failure, tagged; each belongs to one {@link FailureLayer}. */
export type FailureReason =
  // discovery
  | "invalid-server-name"
  | "srv-unavailable"
  | "host-not-found"
  | "dns-failed"
  // connect
  | "address-refused"
  | "connection-failed"
  // tls
  | "certificate-invalid"
  | "handshake-failed"
  // timeout
  | "timed-out"
  // http
  | "unexpected-status"
  // matrix
  | "matrix-error"
  // response
  | "too-large"
  | "invalid-json"
  | "schema-mismatch"
  | "invalid-multipart";

/** What {@link FederationRequestError}'s constructor takes. */
export interface FederationRequestErrorInit {
  readonly layer: FailureLayer;
  readonly reason: FailureReason;
  readonly retryable: boolean;
  readonly message: string;
  /** The server name the request was for (before delegation). */
  readonly destination?: string;
  /** HTTP status, when the remote answered. */
  readonly status?: number;
  /** Matrix errcode, when the remote answered with a Matrix error. */
  readonly errcode?: string;
  /** The parsed error body, when the remote answered with JSON. */
  readonly body?: unknown;
  /** From `retry_after_ms` (429) or `Retry-After`. */
  readonly retryAfterMs?: number;
  /** The IP address concerned (refused, or connected to). */
  readonly address?: string;
  /** For `discovery` failures: every step taken, the last one being the one that failed. */
  readonly steps?: readonly DiscoveryStep[];
  /** For `schema-mismatch`: where and how the body differs from the endpoint's schema. */
  readonly violations?: readonly string[];
  readonly cause?: unknown;
}

/**
 * A failed federation request (or server resolution, or key fetch transport). `layer` and
 * `reason` say what failed; `retryable` says whether trying again later may succeed
 * (timeouts, connection failures, 5xx and 429 are retryable; TLS failures, refused
 * addresses, 4xx and bad responses are not).
 */
export class FederationRequestError extends Error {
  override readonly name = "FederationRequestError";
  readonly layer: FailureLayer;
  readonly reason: FailureReason;
  readonly retryable: boolean;
  readonly destination?: string;
  readonly status?: number;
  readonly errcode?: string;
  readonly body?: unknown;
  readonly retryAfterMs?: number;
  readonly address?: string;
  readonly steps?: readonly DiscoveryStep[];
  readonly violations?: readonly string[];

  constructor(init: FederationRequestErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.layer = init.layer;
    this.reason = init.reason;
    this.retryable = init.retryable;
    if (init.destination !== undefined) this.destination = init.destination;
    if (init.status !== undefined) this.status = init.status;
    if (init.errcode !== undefined) this.errcode = init.errcode;
    if (init.body !== undefined) this.body = init.body;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.address !== undefined) this.address = init.address;
    if (init.steps !== undefined) this.steps = init.steps;
    if (init.violations !== undefined) this.violations = init.violations;
  }

  /** A copy naming the destination, for errors raised below the layer that knows it. */
  withDestination(destination: string): FederationRequestError {
    if (this.destination !== undefined) return this;
    const copy = new FederationRequestError({ ...this.init(), destination });
    if (this.stack !== undefined) copy.stack = this.stack;
    return copy;
  }

  private init(): FederationRequestErrorInit {
    const { layer, reason, retryable, message, cause } = this;
    return {
      layer,
      reason,
      retryable,
      message,
      ...(cause === undefined ? {} : { cause }),
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.errcode === undefined ? {} : { errcode: this.errcode }),
      ...(this.body === undefined ? {} : { body: this.body }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(this.address === undefined ? {} : { address: this.address }),
      ...(this.steps === undefined ? {} : { steps: this.steps }),
      ...(this.violations === undefined ? {} : { violations: this.violations }),
    };
  }
}
