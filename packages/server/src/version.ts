/**
 * `GET /_matrix/federation/v1/version`.
 *
 * @module
 */

import type { ENDPOINTS_BY_NAME } from "@myelin/types";
import type { FederationHandler } from "./handler.js";

/** Options of {@link createVersionHandler}. */
export interface VersionOptions {
  /** The implementation name. Default `"Myelin"`. */
  readonly name?: string;
  /** The implementation version, in its own format. */
  readonly version: string;
}

/** The handler for `get_server_version.v1`: `{ server: { name, version } }`. */
export function createVersionHandler(
  options: VersionOptions,
): FederationHandler<typeof ENDPOINTS_BY_NAME.get_server_version.v1> {
  const body = { server: { name: options.name ?? "Myelin", version: options.version } };
  return () => body;
}
