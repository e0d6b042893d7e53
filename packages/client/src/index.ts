/**
 * `@myelin/client`: the outbound side of Matrix federation. Server discovery exactly as
 * the spec describes it, HTTPS with certificate validation and an outbound address
 * policy, X-Matrix signed requests with one typed method per endpoint of the table,
 * response validation, retries, and a key ring fetching keys from origins and notaries.
 *
 * @packageDocumentation
 */

// Requests
export { FederationClient, validateAgainstSchema } from "./client.js";
export type {
  CallOptions,
  CallResult,
  EndpointMethods,
  EndpointOf,
  EndpointVersion,
  FederationClientOptions,
  OptionsArgument,
  PerRequestOptions,
  RequestOptions,
  ResponseValidator,
  RetryOptions,
} from "./client.js";
export { FederationRequestError } from "./errors.js";
export type { FailureLayer, FailureReason, FederationRequestErrorInit } from "./errors.js";

// Discovery
export { DEFAULT_FEDERATION_PORT, resolveServer } from "./discovery.js";
export type {
  DiscoveryRule,
  DiscoveryStep,
  ResolveServerOptions,
  ResolveServerResult,
  ResolvedTarget,
  ServerResolution,
} from "./discovery.js";
export { WELL_KNOWN_MAX_BYTES, WELL_KNOWN_PATH, WellKnownCache, cachePolicy, fetchWellKnown } from "./well-known.js";
export type {
  FetchWellKnownOptions,
  WellKnownCacheOptions,
  WellKnownFailureReason,
  WellKnownFetch,
  WellKnownLookup,
} from "./well-known.js";
export { isDnsNotFound, orderSrvRecords, systemDnsResolver } from "./dns.js";
export type { DnsResolver, LookupAddress, SrvRecord } from "./dns.js";

// Transport
export { HttpsTransport } from "./https-transport.js";
export type { HttpsTransportOptions, TlsOptions, TransportRequest, TransportResponse } from "./https-transport.js";
export {
  AddressPolicy,
  BLOCKED_IPV4_RANGES,
  BLOCKED_IPV6_RANGES,
  CidrParseError,
  cidrContains,
  embeddedIpv4,
  formatIpAddress,
  parseCidr,
  parseIpAddress,
} from "./addresses.js";
export type { AddressCheck, Cidr, IpAddress } from "./addresses.js";

// Responses
export { checkJsonSchema } from "./schema-check.js";
export type { SchemaViolation } from "./schema-check.js";
export { MultipartParseError, parseMultipartMixed } from "./multipart.js";
export type { MediaContent, MultipartFailure, MultipartResponse } from "./multipart.js";

// Keys
export { KeyRing } from "./key-ring.js";
export type {
  GetVerifyKeyOptions,
  KeyFetchAttempt,
  KeyFetchFailure,
  KeyFetchReport,
  KeyRingOptions,
  NotaryConfig,
} from "./key-ring.js";
