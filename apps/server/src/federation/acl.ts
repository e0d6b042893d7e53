/**
 * Server access control lists (`m.room.server_acl`): which servers may take part in a room
 * over federation (server-server API § "Server Access Control Lists"; client-server
 * `m.room.server_acl`).
 *
 * Evaluation, for a server name with its port removed:
 * 1. no ACL event: allowed;
 * 2. an IP literal when `allow_ip_literals` is `false`: denied;
 * 3. matching any `deny` glob: denied;
 * 4. matching any `allow` glob: allowed;
 * 5. otherwise denied (so an ACL without `allow` denies everyone).
 *
 * Globs have `*` (any run) and `?` (one character) and match case-insensitively (spec v1.19,
 * MSC4436). The matcher is linear-time per pattern (no regular expressions built from
 * untrusted text, hostile-federation T63 / CVE-2023-45129); entries that are not strings are
 * ignored, as are lists that are not arrays.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "@myelin/types";

/** A compiled ACL: `allows(serverName)` answers step 1-5 above. */
export interface ServerAcl {
  /** Whether `serverName` (with or without a port) may use the room. */
  allows(serverName: string): boolean;
}

/** The ACL of a room without an `m.room.server_acl` event: everyone is allowed. */
export const ALLOW_ALL: ServerAcl = { allows: () => true };

/** Longest list of patterns read from one ACL; the rest are ignored (bounded evaluation). */
const MAX_PATTERNS = 1000;

function globs(value: JsonValue | undefined): string[] {
  if (!Array.isArray(value)) return [];
  const out: string[] = [];
  for (const entry of value) {
    if (typeof entry === "string") out.push(entry.toLowerCase());
    if (out.length >= MAX_PATTERNS) break;
  }
  return out;
}

/**
 * Compiles the content of an `m.room.server_acl` event. A non-boolean `allow_ip_literals`
 * counts as `true` (its default).
 */
export function compileServerAcl(content: JsonObject): ServerAcl {
  const allow = globs(content["allow"]);
  const deny = globs(content["deny"]);
  const allowIpLiterals = content["allow_ip_literals"] !== false;
  return {
    allows(serverName) {
      const host = hostOf(serverName).toLowerCase();
      if (!allowIpLiterals && isIpLiteral(host)) return false;
      if (deny.some((pattern) => matchGlob(pattern, host))) return false;
      return allow.some((pattern) => matchGlob(pattern, host));
    },
  };
}

/** The host part of a server name: the port is not part of what ACLs match. */
export function hostOf(serverName: string): string {
  if (serverName.startsWith("[")) {
    const close = serverName.indexOf("]");
    return close === -1 ? serverName : serverName.slice(0, close + 1);
  }
  const colon = serverName.indexOf(":");
  return colon === -1 ? serverName : serverName.slice(0, colon);
}

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function isIpLiteral(host: string): boolean {
  return IPV4.test(host) || (host.startsWith("[") && host.endsWith("]"));
}

/**
 * Whether `text` matches `pattern` (`*` any run, `?` one character), in O(|pattern| x |text|)
 * at worst: the classic two-pointer walk that remembers only the last `*`.
 */
export function matchGlob(pattern: string, text: string): boolean {
  const p = [...pattern];
  const t = [...text];
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === "?" || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === "*") {
      star = pi++;
      mark = ti;
    } else if (star !== -1) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === "*") pi++;
  return pi === p.length;
}
