// The checks other servers make on a key response (server-server API § "Publishing
// Keys", § "Querying Keys Through Another Server"), each explained: what `myelin keys`
// prints line by line and `myelin check` folds into its keys line.
import { decodeBase64, verifyJsonSignature } from "@myelin/signing";
import type { JsonObject } from "@myelin/types";
import { finding, formatDate, relative, type Finding } from "./report.js";

/** What {@link analyseServerKeys} found. */
export interface KeyAnalysis {
  readonly findings: readonly Finding[];
  /** Current keys, key ID to unpadded Base64, as published. */
  readonly verifyKeys: ReadonlyMap<string, string>;
  readonly validUntilTs: number | undefined;
}

const HOUR = 3_600_000;
const SEVEN_DAYS = 7 * 24 * HOUR;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isKey(encoded: unknown): boolean {
  if (typeof encoded !== "string") return false;
  try {
    return decodeBase64(encoded).length === 32;
  } catch {
    return false;
  }
}

/**
 * Checks a server keys object as published by `serverName` (or relayed for it): the
 * `server_name`, at least one Ed25519 verify key, a valid self-signature by each key,
 * `valid_until_ts` in the future, and the old keys. One finding per check.
 */
export function analyseServerKeys(response: unknown, serverName: string, now: number): KeyAnalysis {
  const findings: Finding[] = [];
  const verifyKeys = new Map<string, string>();
  if (!isObject(response)) {
    findings.push(finding("response", "BAD", "the key response is not a JSON object; other servers cannot use it"));
    return { findings, verifyKeys, validUntilTs: undefined };
  }

  const name = response["server_name"];
  findings.push(
    name === serverName
      ? finding("server_name", "GOOD", `${serverName}, as asked`)
      : finding(
          "server_name",
          "BAD",
          `the response says server_name ${JSON.stringify(name)}, but we asked ${serverName}: other servers discard it. ` +
            `The server must be configured with server_name ${serverName} (the name in its users' IDs), or ${serverName}'s discovery points at the wrong server`,
          { expected: serverName, found: name },
        ),
  );

  const published = isObject(response["verify_keys"]) ? response["verify_keys"] : {};
  let signedByOne = false;
  let badSignature = false;
  for (const [keyId, entry] of Object.entries(published)) {
    const encoded = isObject(entry) ? entry["key"] : undefined;
    const subject = `verify key ${keyId}`;
    if (!keyId.startsWith("ed25519:")) {
      findings.push(finding(subject, "WARN", "an algorithm other servers do not know; they ignore this key"));
      continue;
    }
    if (!isKey(encoded)) {
      findings.push(finding(subject, "BAD", "the key is not 32 bytes of unpadded Base64; other servers reject the whole response", { keyId }));
      badSignature = true;
      continue;
    }
    const key = encoded as string;
    verifyKeys.set(keyId, key);
    let check;
    try {
      check = verifyJsonSignature(response, typeof name === "string" ? name : serverName, keyId, decodeBase64(key));
    } catch (error) {
      findings.push(finding(subject, "BAD", `the response cannot be checked: ${(error as Error).message}`, { keyId, key }));
      badSignature = true;
      continue;
    }
    if (check.valid) {
      signedByOne = true;
      findings.push(finding(subject, "GOOD", `${key}: self-signature valid`, { keyId, key }));
    } else if (check.reason === "missing-signature") {
      findings.push(
        finding(
          subject,
          "WARN",
          `${key}: the response is not signed with this key. Other servers accept a response signed by one of its keys, but only a signature proves the server holds this one: sign with every published key`,
          { keyId, key },
        ),
      );
    } else {
      badSignature = true;
      findings.push(
        finding(
          subject,
          "BAD",
          `${key}: the self-signature does NOT verify (${check.reason}): the response was altered after signing, or signed with another private key than the one published. ` +
            `Check that the signing key file matches (myelin key public KEYFILE shows its public key)`,
          { keyId, key, reason: check.reason },
        ),
      );
    }
  }
  if (verifyKeys.size === 0 && !badSignature) {
    findings.push(finding("verify_keys", "BAD", "no Ed25519 verify key is published: nothing this server signs can be verified"));
  } else if (!signedByOne && !badSignature) {
    findings.push(finding("signatures", "BAD", `the response is not signed by any of its verify keys: other servers discard it`));
  }

  const validUntil = response["valid_until_ts"];
  let validUntilTs: number | undefined;
  if (typeof validUntil !== "number" || !Number.isSafeInteger(validUntil)) {
    findings.push(finding("valid_until_ts", "BAD", "missing or not an integer: other servers discard the response"));
  } else {
    validUntilTs = validUntil;
    const when = `${formatDate(validUntil)} (${relative(validUntil, now)})`;
    if (validUntil <= now) {
      findings.push(
        finding(
          "valid_until_ts",
          "BAD",
          `the keys expired on ${when}: other servers refuse requests and new events signed with them. ` +
            `The server must publish a freshly signed key response (is it serving a stale cached copy? is its clock right?)`,
          { validUntilTs: validUntil },
        ),
      );
    } else if (validUntil - now < HOUR) {
      findings.push(
        finding(
          "valid_until_ts",
          "WARN",
          `the keys expire ${relative(validUntil, now)} (${formatDate(validUntil)}): the spec asks servers not to serve key responses that expire within the hour, so that others do not refetch them constantly`,
          { validUntilTs: validUntil },
        ),
      );
    } else {
      const capped = validUntil - now > SEVEN_DAYS ? "; other servers trust it for at most 7 days at a time" : "";
      findings.push(finding("valid_until_ts", "GOOD", `valid until ${when}${capped}`, { validUntilTs: validUntil }));
    }
  }

  const old = isObject(response["old_verify_keys"]) ? response["old_verify_keys"] : {};
  for (const [keyId, entry] of Object.entries(old)) {
    const expired = isObject(entry) ? entry["expired_ts"] : undefined;
    if (!isObject(entry) || !isKey(entry["key"]) || typeof expired !== "number" || !Number.isSafeInteger(expired)) {
      findings.push(finding(`old key ${keyId}`, "WARN", "malformed (needs key and expired_ts); other servers ignore it, so old events it signed cannot be checked"));
      continue;
    }
    findings.push(
      finding(`old key ${keyId}`, "GOOD", `${entry["key"] as string}: retired on ${formatDate(expired)}; it still verifies events signed before then`, {
        keyId,
        expiredTs: expired,
      }),
    );
  }
  return { findings, verifyKeys, validUntilTs };
}

/** Whether two key sets are the same keys. */
export function sameKeys(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([id, key]) => b.get(id) === key);
}

/** `ed25519:a=XGX0..., ed25519:b=...` */
export function listKeys(keys: ReadonlyMap<string, string>): string {
  return keys.size === 0 ? "(none)" : [...keys].map(([id, key]) => `${id}=${key}`).join(", ");
}
