/**
 * The outbound side of the homeserver, in one place: the federation client (discovery,
 * TLS with the extra CAs, the outbound address policy), the key ring the router
 * authenticates requests with, and the notary's fetcher.
 *
 * @module
 */

import type { DnsResolver } from "@myelin/client";
import { FederationClient, KeyRing } from "@myelin/client";
import type { KeyResolver, NotaryFetcher } from "@myelin/server";
import type { SigningKey, VerifyKey } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";

/** Options of {@link createOutboundFederation}. */
export interface OutboundFederationOptions {
  readonly serverName: string;
  /** Our keys: the first signs requests; all are known to the key ring without fetching. */
  readonly signingKeys: readonly [SigningKey, ...SigningKey[]];
  /** Extra CA certificates (PEM) trusted besides the system's roots. */
  readonly caCertificates?: readonly (string | Buffer)[];
  /** CIDR ranges exempt from the refusal of private, loopback and link-local addresses. */
  readonly allowedAddresses?: readonly string[];
  /** DNS for discovery and lookups; default the system's. */
  readonly resolver?: DnsResolver;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** Deadline of one key request (key ring and notary), in ms. Default 15 s. */
  readonly keyFetchTimeoutMs?: number;
}

/** The homeserver's outbound federation. */
export interface OutboundFederation {
  readonly client: FederationClient;
  readonly keyRing: KeyRing;
  /** The router's {@link KeyResolver}, backed by the key ring. */
  readonly keyResolver: KeyResolver;
  /** The notary's {@link NotaryFetcher}: `GET /_matrix/key/v2/server` on the origin. */
  readonly notaryFetcher: NotaryFetcher;
  /** Closes idle outbound connections. */
  close(): void;
}

/**
 * Builds the client, key ring, key resolver and notary fetcher.
 *
 * @throws `CidrParseError` for a malformed allowed range.
 */
export function createOutboundFederation(options: OutboundFederationOptions): OutboundFederation {
  const now = options.now ?? Date.now;
  const ca = options.caCertificates ?? [];
  const client = new FederationClient({
    serverName: options.serverName,
    signingKey: options.signingKeys[0],
    ...(ca.length === 0 ? {} : { tls: { ca } }),
    allowedAddresses: options.allowedAddresses ?? [],
    ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
    now,
    userAgent: "Myelin",
  });

  // Key fetches hold up the request being authenticated (or the notary query being
  // answered): a shorter deadline and a single retry, over the same connections.
  const timeoutMs = options.keyFetchTimeoutMs ?? 15_000;
  const keyClient = new FederationClient({
    serverName: options.serverName,
    signingKey: options.signingKeys[0],
    transport: client.transport,
    now,
    timeoutMs,
    retry: { retries: 1 },
  });

  // Our own keys never need fetching (nor a request to ourselves).
  const own: Record<string, VerifyKey> = {};
  for (const key of options.signingKeys) own[key.keyId] = { publicKey: key.publicKey };
  const keyRing = new KeyRing({ client: keyClient, now, staticKeys: { [options.serverName]: own } });

  const keyResolver: KeyResolver = {
    async getServerKeys(serverName, keyIds, minimumValidUntilTs) {
      const found = new Map<string, VerifyKey>();
      const lookup = minimumValidUntilTs === undefined ? {} : { minimumValidUntilTs };
      for (const keyId of keyIds) {
        const key = await keyRing.getVerifyKey(serverName, keyId, lookup);
        if (key !== undefined) found.set(keyId, key);
      }
      return found;
    },
  };

  const notaryFetcher: NotaryFetcher = {
    // The key server endpoint takes no minimum validity: the origin publishes what it has,
    // and the notary judges it (spec § "Querying Keys Through Another Server").
    async fetchServerKeys(serverName) {
      // A notary query is answered while its asker waits: one short attempt, no retries;
      // the notary serves its last cached copy when the origin is down.
      const response = await keyClient.call("get_server_keys", "v2", serverName, { retry: false });
      return [response as JsonObject];
    },
  };

  return {
    client,
    keyRing,
    keyResolver,
    notaryFetcher,
    close: () => {
      keyClient.close(); // a shared transport: closes nothing of its own
      client.close();
    },
  };
}
