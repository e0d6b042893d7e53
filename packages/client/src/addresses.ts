/**
 * IP addresses, CIDR ranges, and the outbound address policy: which addresses a federation
 * request may connect to.
 *
 * By default every non-public range is refused (loopback, RFC 1918, CGNAT, link-local,
 * unique-local, documentation, multicast, reserved...), in every form an IPv4 address can
 * hide in an IPv6 one: IPv4-mapped (`::ffff:10.0.0.1`), IPv4-compatible (`::10.0.0.1`),
 * 6to4 (`2002:0a00:0001::`) and NAT64 (`64:ff9b::10.0.0.1`). This is hostile-federation
 * T68; the ranges follow Synapse's `DEFAULT_IP_RANGE_BLOCKLIST`, which also blocks the
 * mapped, compatible and 6to4 forms of each IPv4 range. The policy is applied to the
 * address actually connected to (T69), never to a name.
 *
 * @module
 */

import { isIP } from "node:net";

/** A parsed IP address: family and network-order bytes (4 or 16). */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A parsed CIDR range. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefixLength: number;
  /** The range as written (normalised to `address/prefix`). */
  readonly text: string;
}

/** Thrown by {@link parseCidr} for text that is not an address or `address/prefix`. */
export class CidrParseError extends Error {
  override readonly name = "CidrParseError";
  constructor(
    readonly reason: "invalid-address" | "invalid-prefix",
    readonly input: string,
  ) {
    super(`invalid CIDR range "${input}" (${reason})`);
  }
}

/**
 * Parses an IPv4 or IPv6 address (an IPv6 zone such as `%eth0` is ignored, brackets are
 * allowed). Returns `undefined` for anything else, including DNS names that look numeric.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  let bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = bare.indexOf("%");
  if (zone !== -1) bare = bare.slice(0, zone);
  const kind = isIP(bare);
  if (kind === 4) return { family: 4, bytes: parseIpv4(bare) };
  if (kind === 6) return { family: 6, bytes: parseIpv6(bare) };
  return undefined;
}

function parseIpv4(text: string): Uint8Array {
  return Uint8Array.from(text.split(".").map(Number));
}

function parseIpv6(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let head = text;
  let tail = "";
  const gap = text.indexOf("::");
  if (gap !== -1) {
    head = text.slice(0, gap);
    tail = text.slice(gap + 2);
  }
  const toWords = (part: string): number[] => {
    if (part === "") return [];
    const words: number[] = [];
    for (const group of part.split(":")) {
      if (group.includes(".")) {
        const v4 = parseIpv4(group);
        words.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        words.push(Number.parseInt(group, 16));
      }
    }
    return words;
  };
  const front = toWords(head);
  const back = toWords(tail);
  const words = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}

/** Formats an address in its usual text form (IPv6 compressed per RFC 5952). */
export function formatIpAddress(address: IpAddress): string {
  if (address.family === 4) return [...address.bytes].join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((address.bytes[i] as number) << 8) | (address.bytes[i + 1] as number));
  // The longest run (>= 2) of zero words becomes "::".
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(":");
  if (bestStart === -1) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

/**
 * Parses `address/prefix` (or a bare address, meaning a single host). Host bits are
 * cleared, so `10.1.2.3/8` is `10.0.0.0/8`.
 *
 * @throws {@link CidrParseError}
 */
export function parseCidr(text: string): Cidr {
  const slash = text.lastIndexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseIpAddress(addressText);
  if (address === undefined) throw new CidrParseError("invalid-address", text);
  const max = address.family === 4 ? 32 : 128;
  let prefixLength = max;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) throw new CidrParseError("invalid-prefix", text);
    prefixLength = Number(prefixText);
  }
  const bytes = Uint8Array.from(address.bytes);
  for (let bit = prefixLength; bit < max; bit++) {
    bytes[bit >> 3] = (bytes[bit >> 3] as number) & ~(0x80 >> (bit & 7));
  }
  return {
    family: address.family,
    bytes,
    prefixLength,
    text: `${formatIpAddress({ family: address.family, bytes })}/${prefixLength}`,
  };
}

/** Whether `address` lies in `range` (families must match). */
export function cidrContains(range: Cidr, address: IpAddress): boolean {
  if (range.family !== address.family) return false;
  for (let bit = 0; bit < range.prefixLength; bit++) {
    const mask = 0x80 >> (bit & 7);
    if (((range.bytes[bit >> 3] as number) & mask) !== ((address.bytes[bit >> 3] as number) & mask)) return false;
  }
  return true;
}

/**
 * IPv4 ranges refused by default: RFC 6890 special-purpose blocks that are not globally
 * reachable, as in Synapse's default `ip_range_blacklist`.
 */
export const BLOCKED_IPV4_RANGES: readonly string[] = Object.freeze([
  "0.0.0.0/8", // "this network", including 0.0.0.0 (which Linux routes to the local host)
  "10.0.0.0/8", // RFC 1918
  "100.64.0.0/10", // CGNAT (RFC 6598)
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local (and cloud metadata services)
  "172.16.0.0/12", // RFC 1918
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // TEST-NET-1
  "192.88.99.0/24", // 6to4 relay anycast
  "192.168.0.0/16", // RFC 1918
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // TEST-NET-2
  "203.0.113.0/24", // TEST-NET-3
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, and 255.255.255.255
]);

/**
 * IPv6 ranges refused by default. IPv4-mapped addresses are judged as the IPv4 address
 * they denote, and 6to4 / NAT64 addresses by the IPv4 address they embed, so they are not
 * listed here.
 */
export const BLOCKED_IPV6_RANGES: readonly string[] = Object.freeze([
  "::/128", // unspecified
  "::1/128", // loopback
  "::/96", // IPv4-compatible (deprecated; ::10.0.0.1 reaches 10.0.0.1 on some stacks)
  "64:ff9b:1::/48", // local-use NAT64
  "100::/64", // discard-only
  "2001:db8::/32", // documentation
  "fc00::/7", // unique-local
  "fe80::/10", // link-local
  "fec0::/10", // site-local (deprecated)
  "ff00::/8", // multicast
]);

const BLOCKED_V4 = BLOCKED_IPV4_RANGES.map(parseCidr);
const BLOCKED_V6 = BLOCKED_IPV6_RANGES.map(parseCidr);
const MAPPED = parseCidr("::ffff:0:0/96");
const SIX_TO_FOUR = parseCidr("2002::/16");
const NAT64 = parseCidr("64:ff9b::/96");

/**
 * The IPv4 address an IPv6 address stands for or embeds: IPv4-mapped (`::ffff:a.b.c.d`),
 * NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::/48`). IPv4-compatible addresses
 * are refused as a whole range instead.
 */
export function embeddedIpv4(address: IpAddress): IpAddress | undefined {
  if (address.family !== 6) return undefined;
  if (cidrContains(MAPPED, address) || cidrContains(NAT64, address)) {
    return { family: 4, bytes: address.bytes.slice(12, 16) };
  }
  if (cidrContains(SIX_TO_FOUR, address)) return { family: 4, bytes: address.bytes.slice(2, 6) };
  return undefined;
}

/** The outcome of checking an address against an {@link AddressPolicy}. */
export type AddressCheck =
  | { readonly allowed: true; /** Set when an allow-list entry admitted a blocked address. */ readonly allowedBy?: string }
  | { readonly allowed: false; /** The blocked range that matched. */ readonly blockedBy: string };

/**
 * Decides which addresses outbound requests may connect to: everything public, plus the
 * blocked addresses inside an explicitly allowed CIDR range.
 */
export class AddressPolicy {
  private readonly allowed: readonly Cidr[];

  /**
   * @param allowedRanges CIDR ranges (or single addresses) exempt from the refusal, e.g.
   *   `["127.0.0.0/8", "::1/128"]` for tests on loopback.
   * @throws {@link CidrParseError} for a malformed range.
   */
  constructor(allowedRanges: readonly string[] = []) {
    this.allowed = allowedRanges.map(parseCidr);
  }

  /** Checks an address given as text; text that is not an IP address is refused. */
  check(addressText: string): AddressCheck {
    const address = parseIpAddress(addressText);
    if (address === undefined) return { allowed: false, blockedBy: "not-an-ip-address" };
    // An IPv4-mapped address connects to the IPv4 host, so it is judged (and allowed) as such.
    const mapped = cidrContains(MAPPED, address) ? { family: 4 as const, bytes: address.bytes.slice(12, 16) } : undefined;
    const candidates = mapped === undefined ? [address] : [address, mapped];
    const allowedBy = this.allowed.find((range) => candidates.some((a) => cidrContains(range, a)));
    const blockedBy = blockedRange(mapped ?? address);
    if (blockedBy === undefined) return { allowed: true };
    return allowedBy === undefined ? { allowed: false, blockedBy } : { allowed: true, allowedBy: allowedBy.text };
  }
}

/** The default-blocked range containing `address`, if any. */
function blockedRange(address: IpAddress): string | undefined {
  if (address.family === 4) return BLOCKED_V4.find((range) => cidrContains(range, address))?.text;
  const direct = BLOCKED_V6.find((range) => cidrContains(range, address));
  if (direct !== undefined) return direct.text;
  const inner = embeddedIpv4(address);
  if (inner === undefined) return undefined;
  const range = BLOCKED_V4.find((r) => cidrContains(r, inner));
  return range === undefined ? undefined : `${range.text} (embedded in ${formatIpAddress(address)})`;
}
