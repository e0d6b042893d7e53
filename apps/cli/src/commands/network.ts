// What every network command shares: the global flags (--ca, --insecure, --allow-ip,
// --host-map, --timeout), the client built from them, a raw request path for `myelin
// request` and the round trip, and the one place failures are turned into advice.
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import {
  AddressPolicy,
  CidrParseError,
  FederationClient,
  FederationRequestError,
  HttpsTransport,
  resolveServer,
  validateAgainstSchema,
  type DnsResolver,
  type LookupAddress,
  type ResolveServerResult,
  type ServerResolution,
  type TransportResponse,
} from "@myelin/client";
import { generateSigningKey, signRequest, type SigningKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { isValidServerName } from "@myelin/types";
import { CliError, readNamedFile, type CliIo } from "../io.js";
import { loadSigningKey } from "./shared.js";

/** The flags every network command takes (`parseFlags` options). */
export const NETWORK_FLAGS = {
  ca: { type: "string", multiple: true },
  insecure: { type: "boolean" },
  "allow-ip": { type: "string", multiple: true },
  "host-map": { type: "string", multiple: true },
  timeout: { type: "string" },
} as const;

/** The flags that sign requests as a server (`myelin request`, `myelin check`). */
export const IDENTITY_FLAGS = {
  key: { type: "string" },
  origin: { type: "string" },
} as const;

/** How the network flags read in a usage line. */
export const NETWORK_USAGE = "[--ca FILE] [--insecure] [--allow-ip CIDR] [--host-map NAME=IP] [--timeout SECONDS]";

interface NetworkFlagValues {
  readonly ca?: string[] | undefined;
  readonly insecure?: boolean | undefined;
  readonly "allow-ip"?: string[] | undefined;
  readonly "host-map"?: string[] | undefined;
  readonly timeout?: string | undefined;
}

/** A server identity to sign requests with: `--key KEYFILE --origin NAME`. */
export interface Identity {
  readonly origin: string;
  readonly key: SigningKey;
}

/** The network as the flags configure it. Close it when done. */
export interface Network {
  readonly client: FederationClient;
  readonly transport: HttpsTransport;
  /** Deadline of each request and each TLS probe. */
  readonly timeoutMs: number;
  readonly insecure: boolean;
  /** PEM certificates of `--ca`. */
  readonly extraCas: readonly string[];
  /** The address policy with `--allow-ip` applied. */
  readonly policy: AddressPolicy;
  readonly identity: Identity | undefined;
  /** Discovery, with every step (the client's `.well-known` cache is shared). */
  resolve(serverName: string): Promise<ResolveServerResult>;
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
// The origin name of requests when no --origin is given; nothing is ever signed with it:
// without an identity, authenticated endpoints are sent unsigned.
const ANONYMOUS_ORIGIN = "myelin-cli.invalid";
// Key responses are judged by the CLI's own checks (server_name, self-signatures,
// validity, each explained), which say more than a schema mismatch would.
const SELF_CHECKED = new Set(["get_server_keys", "get_remote_server_keys", "get_remote_server_keys_batch"]);

/**
 * `--host-map NAME=IP[,IP...]`, a test aid: when given, DNS is not used at all. Mapped
 * names resolve to their addresses; every other name, and every SRV query, is "not found"
 * (a hosts file has no SRV records). This makes a test setup deterministic without
 * pretending to be DNS.
 */
export class HostMapResolver implements DnsResolver {
  private readonly hosts = new Map<string, string[]>();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const eq = entry.indexOf("=");
      const name = entry.slice(0, eq).toLowerCase();
      const addresses = entry.slice(eq + 1).split(",").filter((a) => a !== "");
      if (eq <= 0 || addresses.length === 0 || addresses.some((a) => isIP(a) === 0)) {
        throw new CliError(`--host-map must look like NAME=IP[,IP...], got ${JSON.stringify(entry)}`, 2);
      }
      this.hosts.set(name, [...(this.hosts.get(name) ?? []), ...addresses]);
    }
  }

  async resolveSrv(): Promise<never[]> {
    return [];
  }

  async lookup(hostname: string): Promise<LookupAddress[]> {
    const addresses = this.hosts.get(hostname.toLowerCase());
    if (addresses === undefined) {
      throw Object.assign(new Error(`${hostname} is not in --host-map (DNS is not used when --host-map is given)`), {
        code: "ENOTFOUND",
      });
    }
    return addresses.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
  }
}

async function readCas(files: readonly string[]): Promise<string[]> {
  const pems: string[] = [];
  for (const file of files) {
    const pem = await readNamedFile(file, "CA certificate");
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new CliError(`--ca ${file}: not a PEM certificate (${(error as Error).message})`, 2);
    }
    pems.push(pem);
  }
  return pems;
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0) {
    throw new CliError(`--timeout must be a positive number of seconds, got ${JSON.stringify(value)}`, 2);
  }
  return Math.round(seconds * 1000);
}

/** Loads `--key KEYFILE --origin NAME`: both or neither. */
export async function loadIdentity(key: string | undefined, origin: string | undefined): Promise<Identity | undefined> {
  if (key === undefined && origin === undefined) return undefined;
  if (key === undefined || origin === undefined) {
    throw new CliError("--key and --origin go together: the key file of server ORIGIN, whose keys the destination fetches", 2);
  }
  if (!isValidServerName(origin)) throw new CliError(`--origin ${JSON.stringify(origin)} is not a valid server name`, 2);
  return { origin, key: await loadSigningKey(key) };
}

/** Checks a server name argument. */
export function serverNameArgument(name: string | undefined, what = "NAME"): string {
  if (name === undefined) throw new CliError(`expected a server ${what}`, 2);
  return name;
}

/**
 * Builds the client from the network flags. `--insecure` is announced on standard error
 * here, once, whatever the command.
 */
export async function openNetwork(values: NetworkFlagValues, io: CliIo, identity?: Identity): Promise<Network> {
  const timeoutMs = parseTimeout(values.timeout);
  const extraCas = await readCas(values.ca ?? []);
  const allowed = values["allow-ip"] ?? [];
  const insecure = values.insecure === true;
  let policy: AddressPolicy;
  try {
    policy = new AddressPolicy(allowed);
  } catch (error) {
    if (error instanceof CidrParseError) throw new CliError(`--allow-ip: ${error.message}`, 2);
    throw error;
  }
  const hostMap = values["host-map"] ?? [];
  const resolver = hostMap.length === 0 ? undefined : new HostMapResolver(hostMap);
  const transport = new HttpsTransport({
    allowedAddresses: allowed,
    ...(resolver === undefined ? {} : { resolver }),
    tls: {
      ...(extraCas.length === 0 ? {} : { ca: extraCas }),
      // Every address: the skip-list matches the address connected to.
      ...(insecure ? { insecureSkipVerifyFor: ["0.0.0.0/0", "::/0"] } : {}),
    },
    userAgent: "myelin-cli",
  });
  if (insecure) {
    io.stderr.write(
      "myelin: WARNING: --insecure: TLS certificates are NOT validated. Anyone on the network path can impersonate the server. Use it only for test setups.\n",
    );
  }
  const client = new FederationClient({
    serverName: identity?.origin ?? ANONYMOUS_ORIGIN,
    signingKey: identity?.key ?? generateSigningKey("cli"),
    transport,
    timeoutMs,
    // A diagnosis reports the first failure: retrying would hide a flaky server.
    retry: false,
    validateResponse: (endpoint, body) => (SELF_CHECKED.has(endpoint.name) ? [] : validateAgainstSchema(endpoint, body)),
  });
  return {
    client,
    transport,
    timeoutMs,
    insecure,
    extraCas,
    policy,
    identity,
    resolve: (serverName) =>
      resolveServer(serverName, {
        transport,
        wellKnownCache: client.wellKnownCache,
        wellKnownTimeoutMs: timeoutMs,
        dnsTimeoutMs: timeoutMs,
      }),
    close: () => {
      client.close();
      transport.close();
    },
  };
}

/** A request to send as given (any path, any method), for `myelin request` and the round trip. */
export interface RawRequest {
  readonly destination: string;
  readonly method: string;
  /** Path and query, percent-encoded, sent and signed exactly as given. */
  readonly path: string;
  readonly body?: JsonObject;
  /** Sign with X-Matrix as this server; unsigned when absent. */
  readonly sign?: Identity;
}

/** The answer to a {@link RawRequest}. */
export interface RawResponse extends TransportResponse {
  readonly port: number;
  readonly resolution: ServerResolution;
}

/**
 * Sends one request through discovery and the safe HTTPS layer, trying each SRV target
 * in turn when one cannot be connected to (as the client does).
 *
 * @throws FederationRequestError for discovery, connection, TLS and timeout failures.
 */
export async function sendRaw(net: Network, request: RawRequest): Promise<RawResponse> {
  const outcome = await net.resolve(request.destination);
  if (!outcome.ok) throw outcome.error;
  const { resolution } = outcome;
  const headers: Record<string, string> = { Accept: "application/json" };
  if (request.body !== undefined) headers["Content-Type"] = "application/json";
  if (request.sign !== undefined) {
    headers["Authorization"] = signRequest({
      method: request.method,
      uri: request.path,
      origin: request.sign.origin,
      destination: request.destination,
      ...(request.body === undefined ? {} : { content: request.body }),
      key: request.sign.key,
    });
  }
  const body = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), "utf8");
  let lastFailure: FederationRequestError | undefined;
  for (const target of resolution.targets) {
    if (target.addresses.length === 0) continue;
    try {
      const response = await net.transport.send({
        host: target.host,
        port: target.port,
        addresses: target.addresses,
        certificateName: resolution.certificateName,
        hostHeader: resolution.hostHeader,
        method: request.method,
        path: request.path,
        headers,
        ...(body === undefined ? {} : { body }),
        timeoutMs: net.timeoutMs,
        maxResponseBytes: 100 * 1024 * 1024,
      });
      return { ...response, port: target.port, resolution };
    } catch (error) {
      if (error instanceof FederationRequestError && error.layer === "connect" && error.reason === "connection-failed") {
        lastFailure = error.withDestination(request.destination);
        continue;
      }
      throw error instanceof FederationRequestError ? error.withDestination(request.destination) : error;
    }
  }
  throw lastFailure ?? new FederationRequestError({ layer: "connect", reason: "connection-failed", retryable: true, message: "no target to connect to" });
}

function causeOf(error: Error): { code?: string; address?: string; port?: number; message?: string } {
  const cause = (error as { cause?: unknown }).cause;
  return typeof cause === "object" && cause !== null ? (cause as { code?: string; address?: string; port?: number }) : {};
}

/** Advice for a connection error code, or undefined. */
export function explainSocketError(code: string | undefined, where: string): string | undefined {
  switch (code) {
    case "ECONNREFUSED":
      return `${where} refused the connection (is the server running and listening on that port? is a firewall rejecting it?)`;
    case "ETIMEDOUT":
      return `${where} did not accept the connection in time (a firewall dropping packets to that port?)`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${where} is unreachable: no route to that address (check the address and the network; an IPv6 address without IPv6 connectivity?)`;
    case "ECONNRESET":
    case "EPIPE":
      return `${where} closed the connection abruptly (a firewall, or a proxy that does not speak TLS on that port?)`;
    default:
      return undefined;
  }
}

/**
 * A failure in one actionable sentence, naming the layer first:
 * `connect: 127.0.0.1:8448 refused the connection (is the server running ...?)`.
 */
export function explainFailure(error: unknown): string {
  if (!(error instanceof FederationRequestError)) return (error as Error).message ?? String(error);
  const cause = causeOf(error);
  const code = cause.code;
  switch (error.layer) {
    case "discovery": {
      const advice: Partial<Record<string, string>> = {
        "invalid-server-name": "a server name is a hostname or IP literal with an optional :port",
        "host-not-found": "publish an A or AAAA record for it, or delegate with .well-known/matrix/server",
        "dns-failed": "the DNS server did not answer properly; try again, or check the resolver",
        "srv-unavailable": "the SRV record's target '.' declares that this name does not federate",
      };
      const extra = advice[error.reason];
      return `discovery: ${error.message}${extra === undefined ? "" : ` (${extra})`}`;
    }
    case "connect": {
      if (error.reason === "address-refused") {
        return `connect: ${error.message}. Other servers refuse private addresses too; publish a public address, or for a test setup pass --allow-ip with that range`;
      }
      const where = cause.address === undefined ? undefined : `${cause.address.includes(":") ? `[${cause.address}]` : cause.address}:${cause.port ?? "?"}`;
      const explained = where === undefined ? undefined : explainSocketError(code, where);
      return `connect: ${explained ?? error.message}`;
    }
    case "tls": {
      if (error.reason === "handshake-failed") {
        return `tls: ${error.message} (is that port serving HTTPS? a plain-HTTP port answers TLS with "wrong version number")`;
      }
      const advice: Partial<Record<string, string>> = {
        CERT_HAS_EXPIRED: "renew it; servers refuse expired certificates",
        CERT_NOT_YET_VALID: "its validity starts in the future; check the clock of the machine that issued it, and this one",
        ERR_TLS_CERT_ALTNAME_INVALID: "get a certificate that names it (myelin check shows the names the certificate has)",
        UNABLE_TO_VERIFY_LEAF_SIGNATURE:
          "the issuer is unknown: send the full chain (intermediate certificates too); for a private CA pass --ca FILE",
        UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
          "the issuer is unknown: send the full chain (intermediate certificates too); for a private CA pass --ca FILE",
        DEPTH_ZERO_SELF_SIGNED_CERT: "a self-signed certificate is refused by other servers; use one from a public CA (for a test setup, --ca FILE or --insecure)",
        SELF_SIGNED_CERT_IN_CHAIN: "the chain ends in a CA nobody trusts; use a public CA (for a test setup, --ca FILE or --insecure)",
      };
      const extra = code === undefined ? undefined : advice[code];
      return `tls: ${error.message}${extra === undefined ? "" : ` (${extra})`}`;
    }
    case "timeout":
      return `timeout: ${error.message} (a firewall dropping packets? an overloaded server? --timeout SECONDS waits longer)`;
    case "http": {
      const hint =
        error.status === 404
          ? " (a reverse proxy that does not forward /_matrix/ to the homeserver?)"
          : error.status !== undefined && error.status >= 502 && error.status <= 504
            ? " (a reverse proxy whose homeserver is down?)"
            : "";
      return `http: ${error.message}${hint}`;
    }
    case "matrix": {
      const hint = error.errcode === "M_UNRECOGNIZED" ? " (the server does not implement this endpoint)" : "";
      return `matrix: ${error.message}${hint}`;
    }
    case "response":
      return `response: ${error.message}`;
  }
}
