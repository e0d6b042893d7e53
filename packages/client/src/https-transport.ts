/**
 * The one outbound HTTPS path for federation: requests, `.well-known` fetches and key
 * fetches all go through {@link HttpsTransport}, which enforces, for every exchange:
 *
 * - the address policy, on the address actually connected to (hostile-federation T68,
 *   T69): names are resolved here, each address is checked, and the socket connects to
 *   the checked IP literal (Node then does no DNS of its own, so a rebinding name cannot
 *   swap the address in between); the socket's remote address is checked again on connect;
 * - certificate validation against the name discovery says the certificate must be for
 *   (never the SRV target), with SNI for that name, or no SNI when it is an IP address
 *   (server-server API § "TLS");
 * - one deadline covering DNS, connect, TLS, headers and body (slow peers, T73);
 * - a cap on the response size, checked on `Content-Length` and while reading.
 *
 * @module
 */

import type { IncomingHttpHeaders } from "node:http";
import * as https from "node:https";
import { isIP } from "node:net";
import * as tls from "node:tls";
import type { PeerCertificate, SecureContext } from "node:tls";
import { AddressPolicy, cidrContains, parseCidr, parseIpAddress } from "./addresses.js";
import type { Cidr } from "./addresses.js";
import type { DnsResolver } from "./dns.js";
import { isDnsNotFound, systemDnsResolver } from "./dns.js";
import { FederationRequestError } from "./errors.js";

/** TLS settings (server-server API § "TLS"). */
export interface TlsOptions {
  /**
   * Certificate authorities trusted in addition to Node's bundled root store (PEM), e.g.
   * a private CA for a test federation.
   */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /**
   * Names and netmasks for which certificate validation is skipped, "for the purposes of
   * testing or in networks where verification is done elsewhere, such as with `.onion`
   * addresses" (spec § TLS). Each entry is a CIDR range (`10.0.0.0/8`, `::1`) matched
   * against the address connected to, an exact name (`hs1.test`) or a suffix starting with
   * a dot (`.onion`) matched against the name the certificate should be for.
   */
  readonly insecureSkipVerifyFor?: readonly string[];
}

/** Settings shared by every request of a {@link HttpsTransport}. */
export interface HttpsTransportOptions {
  /** DNS for A/AAAA lookups; default {@link systemDnsResolver}. */
  readonly resolver?: DnsResolver;
  readonly tls?: TlsOptions;
  /**
   * CIDR ranges exempt from the refusal of private, loopback and link-local addresses
   * (e.g. `["127.0.0.0/8", "::1/128"]` for servers federating on one machine).
   */
  readonly allowedAddresses?: readonly string[];
  /** `User-Agent` header; default `Myelin`. */
  readonly userAgent?: string;
  /** Reuse connections (default `true`). Idle sockets never keep the process alive. */
  readonly keepAlive?: boolean;
}

/** One HTTPS exchange, fully resolved. */
export interface TransportRequest {
  /** The host to connect to: a DNS name (looked up here) or an IP literal (no brackets). */
  readonly host: string;
  readonly port: number;
  /** Addresses already looked up for `host`; when given, no DNS lookup is made. */
  readonly addresses?: readonly string[];
  /** The name the certificate must be valid for; SNI is sent for it unless it is an IP. */
  readonly certificateName: string;
  readonly hostHeader: string;
  readonly method: string;
  /** The request target: path and query, percent-encoded. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Deadline for the whole exchange, DNS included. */
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly signal?: AbortSignal;
}

/** A complete HTTP response. */
export interface TransportResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The IP address the response came from. */
  readonly address: string;
}

/** Codes OpenSSL and Node give certificate verification failures. */
const CERTIFICATE_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "CERT_REJECTED",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_CHAIN_TOO_LONG",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_TLS_CERT_ALTNAME_FORMAT",
]);

/** Socket errors that may go away on their own. */
const TRANSIENT_SOCKET_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED"]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Matches names and netmasks of {@link TlsOptions.insecureSkipVerifyFor}. */
class SkipList {
  private readonly ranges: Cidr[] = [];
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const isRange = parseIpAddress(entry.split("/")[0] as string) !== undefined;
      if (isRange) this.ranges.push(parseCidr(entry));
      else if (entry.startsWith(".")) this.suffixes.push(entry.toLowerCase());
      else this.names.add(entry.toLowerCase());
    }
  }

  matches(certificateName: string, address: string): boolean {
    const name = certificateName.toLowerCase();
    if (this.names.has(name) || this.suffixes.some((suffix) => name.endsWith(suffix))) return true;
    const ip = parseIpAddress(address);
    return ip !== undefined && this.ranges.some((range) => cidrContains(range, ip));
  }
}

/**
 * The safe HTTPS layer (see the module comment). Create one per process or per client and
 * {@link HttpsTransport.close} it when done.
 */
export class HttpsTransport {
  /** Which addresses may be connected to. */
  readonly policy: AddressPolicy;
  /** The resolver used for A/AAAA lookups (discovery uses it for SRV too). */
  readonly resolver: DnsResolver;
  private readonly skip: SkipList;
  private readonly secureContext: SecureContext | undefined;
  private readonly agent: https.Agent;
  private readonly userAgent: string;

  /** @throws `CidrParseError` for a malformed allowed range or skip-list netmask. */
  constructor(options: HttpsTransportOptions = {}) {
    this.policy = new AddressPolicy(options.allowedAddresses ?? []);
    this.resolver = options.resolver ?? systemDnsResolver;
    this.skip = new SkipList(options.tls?.insecureSkipVerifyFor ?? []);
    const extra = options.tls?.ca;
    const extraCas = extra === undefined ? [] : Array.isArray(extra) ? extra : [extra as string | Buffer];
    // `ca` replaces the default store, so the bundled roots are passed along with the extras.
    this.secureContext =
      extraCas.length === 0 ? undefined : tls.createSecureContext({ ca: [...tls.rootCertificates, ...extraCas] });
    this.agent = new https.Agent({ keepAlive: options.keepAlive ?? true });
    this.userAgent = options.userAgent ?? "Myelin";
  }

  /** Closes idle connections; requests in flight finish. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * Looks up `host` (unless it is an IP literal) with the configured resolver.
   *
   * @throws {@link FederationRequestError} (`discovery`) when the name has no addresses or DNS fails.
   */
  async lookup(host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    let found;
    try {
      found = await this.resolver.lookup(host);
    } catch (error) {
      const notFound = isDnsNotFound(error);
      throw new FederationRequestError({
        layer: "discovery",
        reason: notFound ? "host-not-found" : "dns-failed",
        retryable: !notFound,
        message: `cannot resolve ${host}: ${(error as Error).message}`,
        cause: error,
      });
    }
    if (found.length === 0) {
      throw new FederationRequestError({
        layer: "discovery",
        reason: "host-not-found",
        retryable: false,
        message: `${host} has no A or AAAA records`,
      });
    }
    return found.map((a) => a.address);
  }

  /**
   * Performs one HTTPS exchange: resolves the host (unless addresses are given), refuses
   * blocked addresses, then tries each allowed address in turn until one connects.
   *
   * @throws {@link FederationRequestError}; the signal's reason when `signal` aborts.
   */
  async send(request: TransportRequest): Promise<TransportResponse> {
    const deadline = Date.now() + request.timeoutMs;
    const addresses =
      request.addresses ?? (await withDeadline(this.lookup(request.host), deadline, `looking up ${request.host}`));
    const allowed: string[] = [];
    let refused: FederationRequestError | undefined;
    for (const address of addresses) {
      const check = this.policy.check(address);
      if (check.allowed) allowed.push(address);
      else refused ??= refusedAddress(address, check.blockedBy, request.host);
    }
    if (refused !== undefined && allowed.length === 0) throw refused;
    if (allowed.length === 0) {
      throw new FederationRequestError({
        layer: "discovery",
        reason: "host-not-found",
        retryable: false,
        message: `no addresses to connect to for ${request.host}`,
      });
    }
    let lastFailure: FederationRequestError | undefined;
    for (const address of allowed) {
      const progress = { secured: false };
      try {
        return await this.exchange(address, request, deadline, progress);
      } catch (error) {
        // Another address may work when this one failed before the request could be sent.
        if (error instanceof FederationRequestError && error.reason === "connection-failed" && !progress.secured) {
          lastFailure = error;
          continue;
        }
        throw error;
      }
    }
    throw lastFailure as FederationRequestError;
  }

  private exchange(
    address: string,
    request: TransportRequest,
    deadline: number,
    progress: { secured: boolean },
  ): Promise<TransportResponse> {
    const { signal } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(timedOut(request, address));

    const skipVerify = this.skip.matches(request.certificateName, address);
    const ipCertificate = isIP(request.certificateName) !== 0;
    const headers: Record<string, string> = {
      "User-Agent": this.userAgent,
      ...request.headers,
      Host: request.hostHeader,
    };
    if (request.body !== undefined) headers["Content-Length"] = String(request.body.byteLength);

    return new Promise<TransportResponse>((resolve, reject) => {
      const phase = { connected: false, secured: false, responded: false };
      let settled = false;
      // Set when we stop the exchange ourselves; it wins over whatever error the teardown causes.
      let stopReason: FederationRequestError | undefined;
      const finish = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        progress.secured = phase.secured;
        outcome();
      };

      const req = https.request({
        host: address,
        port: request.port,
        method: request.method,
        path: request.path,
        headers,
        agent: this.agent,
        // SNI names the expected certificate; an empty string sends none (IP certificates).
        servername: ipCertificate ? "" : request.certificateName,
        rejectUnauthorized: !skipVerify,
        ...(this.secureContext === undefined ? {} : { secureContext: this.secureContext }),
        // The certificate must match the name discovery chose, whatever address we dialled.
        checkServerIdentity: (_host: string, cert: PeerCertificate) =>
          skipVerify ? undefined : tls.checkServerIdentity(request.certificateName, cert),
      });
      const stop = (reason: FederationRequestError): void => {
        stopReason ??= reason;
        req.destroy();
      };

      const timer = setTimeout(() => stop(timedOut(request, address)), remaining);
      const onAbort = (): void => {
        req.destroy();
        finish(() => reject(signal?.reason));
      };
      signal?.addEventListener("abort", onAbort, { once: true });

      req.on("socket", (socket) => {
        const onConnect = (): void => {
          phase.connected = true;
          // Defence in depth: judge the peer the kernel actually connected us to.
          const peer = socket.remoteAddress;
          const check = peer === undefined ? undefined : this.policy.check(peer);
          if (check !== undefined && !check.allowed) stop(refusedAddress(peer as string, check.blockedBy, request.host));
        };
        if (socket.connecting) {
          socket.once("connect", onConnect);
          socket.once("secureConnect", () => (phase.secured = true));
        } else {
          // A kept-alive socket: connected and past TLS already.
          phase.secured = true;
          onConnect();
        }
      });

      req.on("response", (res) => {
        phase.responded = true;
        const declared = Number(res.headers["content-length"]);
        if (Number.isFinite(declared) && declared > request.maxResponseBytes) {
          stop(tooLarge(request, address, declared));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > request.maxResponseBytes) {
            stop(tooLarge(request, address, size));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          if (stopReason !== undefined || !res.complete) return; // 'close' reports it
          finish(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), address }));
        });
        res.on("error", () => req.destroy());
      });

      req.on("error", (error) => {
        finish(() => reject(stopReason ?? classify(error, phase, request, address)));
      });
      req.on("close", () => {
        // A response cut off mid-body, or an exchange we stopped, ends here.
        finish(() =>
          reject(
            stopReason ??
              new FederationRequestError({
                layer: "connect",
                reason: "connection-failed",
                retryable: true,
                message: `connection to ${address}:${request.port} closed before the response was complete`,
                address,
              }),
          ),
        );
      });

      req.end(request.body === undefined ? undefined : Buffer.from(request.body));
    });
  }
}

function classify(
  error: Error,
  phase: { connected: boolean; secured: boolean; responded: boolean },
  request: TransportRequest,
  address: string,
): FederationRequestError {
  const code = codeOf(error);
  const where = `${request.host === address ? address : `${request.host} (${address})`}:${request.port}`;
  if (phase.connected && !phase.secured) {
    const certificate = code !== undefined && CERTIFICATE_CODES.has(code);
    if (certificate || !TRANSIENT_SOCKET_CODES.has(code ?? "")) {
      return new FederationRequestError({
        layer: "tls",
        reason: certificate ? "certificate-invalid" : "handshake-failed",
        retryable: false,
        message: certificate
          ? `TLS certificate of ${where} is not valid for ${request.certificateName}: ${error.message}`
          : `TLS handshake with ${where} failed: ${error.message}`,
        address,
        cause: error,
      });
    }
  }
  return new FederationRequestError({
    layer: "connect",
    reason: "connection-failed",
    retryable: true,
    message: phase.responded
      ? `connection to ${where} failed while reading the response: ${error.message}`
      : `connection to ${where} failed: ${error.message}`,
    address,
    cause: error,
  });
}

function refusedAddress(address: string, blockedBy: string, host: string): FederationRequestError {
  return new FederationRequestError({
    layer: "connect",
    reason: "address-refused",
    retryable: false,
    message: `refusing to connect to ${address}${host === address ? "" : ` (for ${host})`}: it is in ${blockedBy}, which is not allowed`,
    address,
  });
}

function timedOut(request: TransportRequest, address: string): FederationRequestError {
  return new FederationRequestError({
    layer: "timeout",
    reason: "timed-out",
    retryable: true,
    message: `${request.method} ${request.host}:${request.port} did not complete within ${request.timeoutMs} ms`,
    address,
  });
}

function tooLarge(request: TransportRequest, address: string, size: number): FederationRequestError {
  return new FederationRequestError({
    layer: "response",
    reason: "too-large",
    retryable: false,
    message: `response from ${request.host}:${request.port} exceeds ${request.maxResponseBytes} bytes (at least ${size})`,
    address,
  });
}

/** Races a promise against the deadline, failing with a `timeout` error. */
export function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  const remaining = deadline - Date.now();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new FederationRequestError({
            layer: "timeout",
            reason: "timed-out",
            retryable: true,
            message: `timed out ${what}`,
          }),
        ),
      Math.max(0, remaining),
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
