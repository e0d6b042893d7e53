// A TLS connection made only to look at it: what `myelin check` reports in its connect
// and tls lines. The federation requests themselves go through the client's HTTPS layer,
// which validates certificates and refuses to continue; this probe validates nothing and
// records everything, so that the report can say exactly what is wrong.
import { isIP } from "node:net";
import * as tls from "node:tls";
import type { DetailedPeerCertificate, PeerCertificate } from "node:tls";
import type { AddressPolicy } from "@myelin/client";

/** One certificate of the chain the server presented. */
export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  /** `DNS:example.org`, `IP Address:127.0.0.1` ... */
  readonly subjectAltNames: readonly string[];
  readonly validFrom: number;
  readonly validTo: number;
  readonly fingerprint256: string;
}

/** What happened when we connected to one address. */
export type ProbeOutcome =
  | { readonly kind: "refused-address"; readonly address: string; readonly port: number; readonly blockedBy: string }
  | { readonly kind: "connect-failed"; readonly address: string; readonly port: number; readonly code?: string; readonly message: string }
  | { readonly kind: "timeout"; readonly address: string; readonly port: number; readonly phase: "connect" | "tls" }
  | { readonly kind: "handshake-failed"; readonly address: string; readonly port: number; readonly code?: string; readonly message: string }
  | {
      readonly kind: "secured";
      readonly address: string;
      readonly port: number;
      readonly protocol: string | null;
      /** The leaf first. */
      readonly chain: readonly CertificateInfo[];
      /** The leaf as node gives it, for name checks. */
      readonly leaf: PeerCertificate;
      /** Whether the chain leads to a trusted CA (bundled roots plus --ca), and if not why. */
      readonly authorizationError?: string;
    };

/** Options of {@link probeTls}. */
export interface ProbeOptions {
  readonly address: string;
  readonly port: number;
  /** SNI to send; none for IP certificates (spec § TLS). */
  readonly servername?: string;
  readonly extraCas: readonly string[];
  readonly policy: AddressPolicy;
  readonly timeoutMs: number;
}

function formatName(name: Readonly<Record<string, string | string[] | undefined>> | undefined): string {
  if (name === undefined) return "(none)";
  return Object.entries(name)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
    .join(", ");
}

function describe(cert: PeerCertificate): CertificateInfo {
  return {
    subject: formatName(cert.subject as unknown as Record<string, string>),
    issuer: formatName(cert.issuer as unknown as Record<string, string>),
    subjectAltNames: cert.subjectaltname === undefined || cert.subjectaltname === "" ? [] : cert.subjectaltname.split(/,\s*/),
    validFrom: Date.parse(cert.valid_from),
    validTo: Date.parse(cert.valid_to),
    fingerprint256: cert.fingerprint256,
  };
}

/** The chain node gives with `getPeerCertificate(true)`, leaf first, without repeating a self-signed root. */
function chainOf(leaf: DetailedPeerCertificate): CertificateInfo[] {
  const chain: CertificateInfo[] = [];
  const seen = new Set<string>();
  let cert: DetailedPeerCertificate | undefined = leaf;
  while (cert !== undefined && Object.keys(cert).length > 0 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(describe(cert));
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** Connects to one address and completes a TLS handshake, validating nothing. */
export function probeTls(options: ProbeOptions): Promise<ProbeOutcome> {
  const { address, port } = options;
  const check = options.policy.check(address);
  if (!check.allowed) return Promise.resolve({ kind: "refused-address", address, port, blockedBy: check.blockedBy });
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    const socket = tls.connect({
      host: address,
      port,
      ...(options.servername === undefined || isIP(options.servername) !== 0 ? {} : { servername: options.servername }),
      rejectUnauthorized: false,
      // The name is judged by the caller against the name discovery chose; authorizationError
      // is then about the chain alone.
      checkServerIdentity: () => undefined,
      ...(options.extraCas.length === 0 ? {} : { ca: [...tls.rootCertificates, ...options.extraCas] }),
    });
    const finish = (outcome: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "timeout", address, port, phase: connected ? "tls" : "connect" }), options.timeoutMs);
    socket.once("connect", () => (connected = true));
    socket.once("secureConnect", () => {
      const leaf = socket.getPeerCertificate(true);
      const authorizationError = socket.authorizationError;
      finish({
        kind: "secured",
        address,
        port,
        protocol: socket.getProtocol(),
        chain: chainOf(leaf),
        leaf,
        ...(socket.authorized || authorizationError === undefined ? {} : { authorizationError: String(authorizationError) }),
      });
    });
    socket.once("error", (error: Error & { code?: string }) => {
      const code = error.code;
      if (!connected) {
        finish({ kind: "connect-failed", address, port, ...(code === undefined ? {} : { code }), message: error.message });
      } else {
        finish({ kind: "handshake-failed", address, port, ...(code === undefined ? {} : { code }), message: error.message });
      }
    });
  });
}
