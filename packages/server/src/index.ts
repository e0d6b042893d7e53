/**
 * `@myelin/server`: the Matrix federation API as an express router built from the
 * endpoint table of `@myelin/types`. It routes (404/405 `M_UNRECOGNIZED`), limits and
 * parses bodies number-exactly, verifies X-Matrix signatures, validates against the
 * table's schemas and answers Matrix errors; the application supplies one handler per
 * endpoint it implements. Ready-made handlers serve the version, key server and notary
 * endpoints.
 *
 * @packageDocumentation
 */

// Router
export { DEFAULT_MAX_BODY_BYTES, createFederationRouter } from "./router.js";
export type { FederationRouterOptions, RouterLogger, ServerAclCheck } from "./router.js";
export { RouterConfigError } from "./errors.js";
export type { RouterConfigFailure } from "./errors.js";

// Handlers
export { FederationResponse, RawResponse, respond } from "./handler.js";
export type {
  EndpointOf,
  FederationHandler,
  FederationHandlers,
  FederationRequest,
  HandlerResult,
  OriginOf,
  VersionOf,
} from "./handler.js";

// Authentication
export { authenticateRequest, describeAuthFailure, keyResolverFromLookup } from "./x-matrix-auth.js";
export type { AuthFailure, AuthResult, AuthenticateRequestOptions, KeyResolver } from "./x-matrix-auth.js";

// Ready-made handlers
export { createVersionHandler } from "./version.js";
export type { VersionOptions } from "./version.js";
export { DEFAULT_KEY_VALIDITY_MS, ServerKeysConfigError, createServerKeysPublisher } from "./server-keys.js";
export type {
  OldVerifyKey,
  ServerKeys,
  ServerKeysConfigFailure,
  ServerKeysOptions,
  ServerKeysPublisher,
} from "./server-keys.js";
export { createNotaryHandlers } from "./notary.js";
export type { NotaryFetcher, NotaryHandlers, NotaryLogger, NotaryOptions } from "./notary.js";
