/**
 * The DNS edge of the client: an interface small enough for tests to replace (the
 * resolver is the edge of the machine, not a mock of the client), its default on
 * `node:dns/promises`, and RFC 2782 ordering of SRV records.
 *
 * @module
 */

import { promises as dns } from "node:dns";

/** One SRV record. */
export interface SrvRecord {
  /** The target host name (`"."` means "service decidedly not available", RFC 2782). */
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** One address a name resolves to. */
export interface LookupAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * The DNS lookups server discovery needs.
 *
 * Contract: a name without records resolves to `[]`, or rejects with an error whose
 * `code` is `ENOTFOUND` or `ENODATA` (what `node:dns` does); any other rejection is a DNS
 * failure, which may be transient.
 */
export interface DnsResolver {
  /** SRV records of `name` (e.g. `_matrix-fed._tcp.example.org`). */
  resolveSrv(name: string): Promise<readonly SrvRecord[]>;
  /** A and AAAA records of `hostname`, CNAMEs followed. */
  lookup(hostname: string): Promise<readonly LookupAddress[]>;
}

/** Error codes meaning "no such name / no such record" rather than "DNS failed". */
const NOT_FOUND_CODES = new Set(["ENOTFOUND", "ENODATA", "ENONAME", "NXDOMAIN"]);

/** Whether a resolver rejection means the name has no records (as opposed to a DNS failure). */
export function isDnsNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && NOT_FOUND_CODES.has(code);
}

/**
 * The default resolver: `resolveSrv` through c-ares, `lookup` through `getaddrinfo`
 * (so `/etc/hosts` applies, as for any other program on the machine). Addresses are kept
 * in the order the system returns them.
 */
export const systemDnsResolver: DnsResolver = {
  async resolveSrv(name) {
    try {
      return await dns.resolveSrv(name);
    } catch (error) {
      if (isDnsNotFound(error)) return [];
      throw error;
    }
  },
  async lookup(hostname) {
    try {
      const found = await dns.lookup(hostname, { all: true, verbatim: true });
      return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
    } catch (error) {
      if (isDnsNotFound(error)) return [];
      throw error;
    }
  },
};

/**
 * Orders SRV records for connection attempts (RFC 2782): by ascending priority, and
 * within a priority by a weighted random draw. Zero-weight records are drawn last, in
 * random order. This follows Synapse's `_sort_server_list` (which also fixes RFC 2782's
 * off-by-one in the running-sum selection). `random` returns a number in [0, 1).
 */
export function orderSrvRecords(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const record of records) {
    const group = byPriority.get(record.priority);
    if (group === undefined) byPriority.set(record.priority, [record]);
    else group.push(record);
  }
  const ordered: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const pool = [...(byPriority.get(priority) as SrvRecord[])];
    let total = pool.reduce((sum, r) => sum + r.weight, 0);
    while (pool.length > 0 && total > 0) {
      // A target in [1, total]; the first record whose running sum reaches it is chosen.
      let target = 1 + Math.floor(random() * total);
      let index = 0;
      for (; index < pool.length; index++) {
        target -= (pool[index] as SrvRecord).weight;
        if (target <= 0) break;
      }
      const [chosen] = pool.splice(Math.min(index, pool.length - 1), 1) as [SrvRecord];
      ordered.push(chosen);
      total -= chosen.weight;
    }
    // Only zero-weight records remain: shuffle them (Fisher-Yates).
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [pool[i], pool[j]] = [pool[j] as SrvRecord, pool[i] as SrvRecord];
    }
    ordered.push(...pool);
  }
  return ordered;
}
