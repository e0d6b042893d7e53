/**
 * Server discovery: from a server name to the addresses, port, TLS name and `Host` header
 * to use (server-server API § "Resolving server names", federation checklist §7).
 *
 * {@link resolveServer} records every step it takes, so that `myelin resolve` can print
 * how a name was resolved, or exactly which step failed and why. Failures are values.
 *
 * @module
 */

import { isIP } from "node:net";
import { parseServerName } from "@myelin/types";
import type { DnsResolver, SrvRecord } from "./dns.js";
import { isDnsNotFound, orderSrvRecords } from "./dns.js";
import { FederationRequestError } from "./errors.js";
import type { HttpsTransportOptions } from "./https-transport.js";
import { HttpsTransport, withDeadline } from "./https-transport.js";
import type { WellKnownFailureReason } from "./well-known.js";
import { WellKnownCache, fetchWellKnown } from "./well-known.js";

/** The port of the federation API when nothing says otherwise (IANA-registered). */
export const DEFAULT_FEDERATION_PORT = 8448;

/**
 * The spec step that produced the answer: 1 IP literal, 2 hostname with port, 3.1-3.5
 * `.well-known` delegation (IP literal, with port, `_matrix-fed` SRV, deprecated
 * `_matrix` SRV, port 8448), 4 `_matrix-fed` SRV, 5 deprecated `_matrix` SRV, 6 port 8448.
 */
export type DiscoveryRule = "1" | "2" | "3.1" | "3.2" | "3.3" | "3.4" | "3.5" | "4" | "5" | "6";

/** One step of discovery, as `myelin resolve` prints it. `message` is a complete sentence. */
export type DiscoveryStep =
  | { readonly step: "parse"; readonly ok: boolean; readonly message: string }
  | { readonly step: "ip-literal"; readonly message: string }
  | { readonly step: "explicit-port"; readonly message: string }
  | {
      readonly step: "well-known";
      readonly ok: boolean;
      readonly cached: boolean;
      readonly delegatedServer?: string;
      readonly reason?: WellKnownFailureReason;
      readonly urls: readonly string[];
      readonly message: string;
    }
  | {
      readonly step: "srv";
      readonly record: string;
      readonly outcome: "found" | "not-found" | "unavailable" | "failed";
      /** The records, in the order they will be tried. */
      readonly records: readonly SrvRecord[];
      readonly message: string;
    }
  | {
      readonly step: "address-lookup";
      readonly host: string;
      readonly ok: boolean;
      readonly addresses: readonly string[];
      readonly message: string;
    }
  | { readonly step: "default-port"; readonly message: string };

/** One host and port to try, with its addresses. */
export interface ResolvedTarget {
  /** The host connected to: an SRV target, the (delegated) hostname, or a bare IP. */
  readonly host: string;
  readonly port: number;
  /** Its addresses; empty when the lookup failed (see `lookupError`). */
  readonly addresses: readonly string[];
  readonly lookupError?: string;
}

/** Where and how to send requests for a server name. */
export interface ServerResolution {
  /** The server name resolved (what X-Matrix `destination` carries). */
  readonly serverName: string;
  readonly rule: DiscoveryRule;
  /** `m.server` of the `.well-known` answer, when delegated. */
  readonly delegatedServerName?: string;
  /** Every target in connection order (several only for SRV); at least one has addresses. */
  readonly targets: readonly ResolvedTarget[];
  /** The first target's host. */
  readonly host: string;
  /** The first target's port. */
  readonly port: number;
  /** The first target's addresses. */
  readonly addresses: readonly string[];
  /** The SNI to send; absent when the certificate is for an IP address (spec § TLS). */
  readonly tlsServerName?: string;
  readonly hostHeader: string;
  /** The name the certificate must be valid for (never an SRV target). */
  readonly certificateName: string;
}

/** {@link resolveServer}'s answer: the resolution or the failure, with every step taken. */
export type ResolveServerResult =
  | { readonly ok: true; readonly resolution: ServerResolution; readonly steps: readonly DiscoveryStep[] }
  | { readonly ok: false; readonly error: FederationRequestError; readonly steps: readonly DiscoveryStep[] };

/** Options for {@link resolveServer}. */
export interface ResolveServerOptions extends HttpsTransportOptions {
  /**
   * The HTTPS layer for `.well-known` (address policy, TLS, size limit). When absent, one
   * is made from the other options and closed afterwards.
   */
  readonly transport?: HttpsTransport;
  /** Cache of `.well-known` answers; without one, every resolution fetches. */
  readonly wellKnownCache?: WellKnownCache;
  /** Port of the `.well-known` request; default 443. For tests. */
  readonly wellKnownPort?: number;
  /** Deadline per `.well-known` request; default 10 s. */
  readonly wellKnownTimeoutMs?: number;
  /** Deadline per DNS query; default 10 s. */
  readonly dnsTimeoutMs?: number;
  /** Randomness for SRV weights, in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  readonly signal?: AbortSignal;
}

class DiscoveryFailure extends Error {
  constructor(readonly error: FederationRequestError) {
    super(error.message);
  }
}

/**
 * Resolves a server name following the spec's algorithm exactly:
 *
 * 1. IP literal: that address, the given port or 8448; certificate for the IP, no SNI,
 *    `Host` = the server name.
 * 2. Hostname with port: A/AAAA of the hostname; certificate and SNI for the hostname,
 *    `Host` = `hostname:port`.
 * 3. Otherwise `.well-known` (cached; see {@link WellKnownCache}). A valid `m.server` is
 *    resolved by 3.1 (IP literal, `Host` = m.server), 3.2 (with port), 3.3
 *    `_matrix-fed._tcp` SRV, 3.4 deprecated `_matrix._tcp` SRV, 3.5 port 8448; certificate,
 *    SNI and `Host` are for the delegated hostname, never an SRV target.
 * 4.-6. No valid `.well-known`: `_matrix-fed._tcp` SRV, then `_matrix._tcp`, then 8448,
 *    all for the original hostname.
 *
 * An SRV answer whose only target is `.` means the service is decidedly unavailable
 * (RFC 2782), and discovery stops there, as Synapse does. A DNS failure other than "no
 * such record" also stops it (retryable). Several SRV targets are ordered by priority
 * and weight ({@link orderSrvRecords}); the caller tries them in turn.
 */
export async function resolveServer(serverName: string, options: ResolveServerOptions = {}): Promise<ResolveServerResult> {
  const ownTransport = options.transport === undefined;
  const transport = options.transport ?? new HttpsTransport(options);
  const steps: DiscoveryStep[] = [];
  try {
    const resolution = await discover(serverName, { ...options, transport }, steps);
    return { ok: true, resolution, steps };
  } catch (error) {
    if (!(error instanceof DiscoveryFailure)) throw error;
    const failed = new FederationRequestError({ ...errorInit(error.error), destination: serverName, steps });
    return { ok: false, error: failed, steps };
  } finally {
    if (ownTransport) transport.close();
  }
}

function errorInit(error: FederationRequestError): ConstructorParameters<typeof FederationRequestError>[0] {
  return {
    layer: error.layer,
    reason: error.reason,
    retryable: error.retryable,
    message: error.message,
    cause: error.cause,
    ...(error.address === undefined ? {} : { address: error.address }),
  };
}

type Context = ResolveServerOptions & { readonly transport: HttpsTransport };

async function discover(serverName: string, context: Context, steps: DiscoveryStep[]): Promise<ServerResolution> {
  const parsed = parseServerName(serverName);
  if (!parsed.ok) {
    const message = `"${serverName}" is not a valid server name (${parsed.reason})`;
    steps.push({ step: "parse", ok: false, message });
    throw failure("invalid-server-name", message, false);
  }
  const { host, port, kind } = parsed.value;
  steps.push({
    step: "parse",
    ok: true,
    message: `server name ${serverName}: ${kind === "dns" ? "hostname" : `${kind} literal`} ${host}${port === undefined ? ", no port" : `, port ${port}`}`,
  });

  // Step 1: IP literal.
  if (kind !== "dns") {
    const ip = bareIp(host);
    const targetPort = port ?? DEFAULT_FEDERATION_PORT;
    steps.push({
      step: "ip-literal",
      message: `step 1: IP literal, connect to ${host}:${targetPort}${port === undefined ? " (default port)" : ""}, certificate for ${ip}, no SNI`,
    });
    return result(serverName, "1", [{ host: ip, port: targetPort, addresses: [ip] }], ip, serverName);
  }

  // Step 2: hostname with explicit port.
  if (port !== undefined) {
    steps.push({ step: "explicit-port", message: `step 2: hostname with explicit port ${port}` });
    const target = await lookupTarget(host, port, context, steps, true);
    return result(serverName, "2", [target], host, serverName);
  }

  // Step 3: .well-known.
  const cache = context.wellKnownCache ?? new WellKnownCache();
  const lookup = await cache.lookup(host, () =>
    fetchWellKnown(host, {
      transport: context.transport,
      now: cache.now,
      ...(context.wellKnownPort === undefined ? {} : { port: context.wellKnownPort }),
      ...(context.wellKnownTimeoutMs === undefined ? {} : { timeoutMs: context.wellKnownTimeoutMs }),
      ...(context.signal === undefined ? {} : { signal: context.signal }),
    }),
  );
  const source = lookup.cached ? " (cached)" : "";
  if (lookup.kind === "none") {
    steps.push({
      step: "well-known",
      ok: false,
      cached: lookup.cached,
      reason: lookup.reason,
      urls: lookup.urls,
      message: `step 3: no valid .well-known${source} (${lookup.reason}: ${lookup.detail}); falling back to SRV for ${host}`,
    });
    return srvOrDefault(serverName, host, ["4", "5", "6"], context, steps);
  }

  const delegated = parseServerName(lookup.server);
  if (!delegated.ok) throw new Error("unreachable: the well-known fetch validated m.server");
  const { host: dHost, port: dPort, kind: dKind } = delegated.value;
  steps.push({
    step: "well-known",
    ok: true,
    cached: lookup.cached,
    delegatedServer: lookup.server,
    urls: lookup.urls,
    message: `step 3: .well-known${source}${lookup.stale ? " (previous answer, the server is failing)" : ""} delegates to ${lookup.server}`,
  });

  if (dKind !== "dns") {
    const ip = bareIp(dHost);
    const targetPort = dPort ?? DEFAULT_FEDERATION_PORT;
    steps.push({
      step: "ip-literal",
      message: `step 3.1: delegated to an IP literal, connect to ${dHost}:${targetPort}, certificate for ${ip}, no SNI`,
    });
    return result(serverName, "3.1", [{ host: ip, port: targetPort, addresses: [ip] }], ip, lookup.server, lookup.server);
  }
  if (dPort !== undefined) {
    steps.push({ step: "explicit-port", message: `step 3.2: delegated hostname with explicit port ${dPort}` });
    const target = await lookupTarget(dHost, dPort, context, steps, true);
    return result(serverName, "3.2", [target], dHost, `${dHost}:${dPort}`, lookup.server);
  }
  return srvOrDefault(serverName, dHost, ["3.3", "3.4", "3.5"], context, steps, lookup.server);
}

/** SRV `_matrix-fed._tcp`, then `_matrix._tcp`, then the hostname on 8448. */
async function srvOrDefault(
  serverName: string,
  hostname: string,
  rules: readonly [DiscoveryRule, DiscoveryRule, DiscoveryRule],
  context: Context,
  steps: DiscoveryStep[],
  delegatedServerName?: string,
): Promise<ServerResolution> {
  const services = [
    { record: `_matrix-fed._tcp.${hostname}`, rule: rules[0] },
    { record: `_matrix._tcp.${hostname}`, rule: rules[1], deprecated: true },
  ];
  for (const { record, rule, deprecated } of services) {
    const records = await lookupSrv(record, rule, context, steps, deprecated === true);
    if (records.length === 0) continue;
    const targets = await Promise.all(records.map((r) => lookupTarget(r.name, r.port, context, steps, false)));
    if (!targets.some((t) => t.addresses.length > 0)) {
      const first = targets[0] as ResolvedTarget;
      throw failure("host-not-found", `no SRV target of ${record} resolves (${first.lookupError ?? "no addresses"})`, false);
    }
    return result(serverName, rule, targets, hostname, hostname, delegatedServerName);
  }
  steps.push({
    step: "default-port",
    message: `step ${rules[2]}: no SRV records, connect to ${hostname} on port ${DEFAULT_FEDERATION_PORT}`,
  });
  const target = await lookupTarget(hostname, DEFAULT_FEDERATION_PORT, context, steps, true);
  return result(serverName, rules[2], [target], hostname, hostname, delegatedServerName);
}

async function lookupSrv(
  record: string,
  rule: DiscoveryRule,
  context: Context,
  steps: DiscoveryStep[],
  deprecated: boolean,
): Promise<SrvRecord[]> {
  const label = `step ${rule}: SRV ${record}${deprecated ? " (deprecated)" : ""}`;
  let found: readonly SrvRecord[];
  try {
    found = await withDeadline(
      context.transport.resolver.resolveSrv(record),
      Date.now() + (context.dnsTimeoutMs ?? 10_000),
      `resolving SRV ${record}`,
    );
  } catch (error) {
    if (isDnsNotFound(error)) {
      found = [];
    } else {
      const message = `${label}: DNS failed (${(error as Error).message})`;
      steps.push({ step: "srv", record, outcome: "failed", records: [], message });
      throw failure("dns-failed", message, true, error);
    }
  }
  if (found.length === 0) {
    steps.push({ step: "srv", record, outcome: "not-found", records: [], message: `${label}: no records` });
    return [];
  }
  // RFC 2782: a single record with target "." means the service is decidedly not available.
  if (found.length === 1 && stripDot((found[0] as SrvRecord).name) === "") {
    const message = `${label}: target "." — the service is declared unavailable`;
    steps.push({ step: "srv", record, outcome: "unavailable", records: [...found], message });
    throw failure("srv-unavailable", message, false);
  }
  const usable = found.filter((r) => stripDot(r.name) !== "").map((r) => ({ ...r, name: stripDot(r.name) }));
  const ordered = orderSrvRecords(usable, context.random);
  steps.push({
    step: "srv",
    record,
    outcome: "found",
    records: ordered,
    message: `${label}: ${ordered.map((r) => `${r.name}:${r.port} (priority ${r.priority}, weight ${r.weight})`).join(", ")}`,
  });
  return ordered;
}

/** A/AAAA lookup of one target; `required` makes a failure end discovery. */
async function lookupTarget(
  host: string,
  port: number,
  context: Context,
  steps: DiscoveryStep[],
  required: boolean,
): Promise<ResolvedTarget> {
  try {
    const addresses = await withDeadline(
      context.transport.lookup(host),
      Date.now() + (context.dnsTimeoutMs ?? 10_000),
      `looking up ${host}`,
    );
    steps.push({
      step: "address-lookup",
      host,
      ok: true,
      addresses,
      message: `${host} resolves to ${addresses.join(", ")}`,
    });
    return { host, port, addresses };
  } catch (error) {
    if (!(error instanceof FederationRequestError)) throw error;
    const message = `cannot resolve ${host}: ${error.message}`;
    steps.push({ step: "address-lookup", host, ok: false, addresses: [], message });
    if (required) throw new DiscoveryFailure(error);
    return { host, port, addresses: [], lookupError: error.message };
  }
}

function result(
  serverName: string,
  rule: DiscoveryRule,
  targets: readonly ResolvedTarget[],
  certificateName: string,
  hostHeader: string,
  delegatedServerName?: string,
): ServerResolution {
  const ordered = [...targets.filter((t) => t.addresses.length > 0), ...targets.filter((t) => t.addresses.length === 0)];
  const first = ordered[0] as ResolvedTarget;
  const ip = isIP(certificateName) !== 0;
  return {
    serverName,
    rule,
    ...(delegatedServerName === undefined ? {} : { delegatedServerName }),
    targets: ordered,
    host: first.host,
    port: first.port,
    addresses: first.addresses,
    ...(ip ? {} : { tlsServerName: certificateName }),
    hostHeader,
    certificateName,
  };
}

function bareIp(host: string): string {
  return host.startsWith("[") ? host.slice(1, -1) : host;
}

function stripDot(name: string): string {
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

function failure(
  reason: "invalid-server-name" | "srv-unavailable" | "host-not-found" | "dns-failed",
  message: string,
  retryable: boolean,
  cause?: unknown,
): DiscoveryFailure {
  return new DiscoveryFailure(
    new FederationRequestError({ layer: "discovery", reason, retryable, message, ...(cause === undefined ? {} : { cause }) }),
  );
}
