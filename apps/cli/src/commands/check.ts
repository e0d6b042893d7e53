// `myelin check NAME`: a federation report in the order things break for a peer:
// discovery, connect, TLS, version, keys, the notary view of the keys, and request
// authentication; each line GOOD/WARN/BAD (or SKIP when an earlier failure makes the
// check meaningless) with what to do about it.
import { randomBytes } from "node:crypto";
import * as tls from "node:tls";
import { FederationRequestError, type DiscoveryStep, type ResolveServerResult, type ServerResolution } from "@myelin/client";
import { parseJson } from "@myelin/signing";
import { parseFlags } from "../args.js";
import type { Command } from "../command.js";
import { CliError, write } from "../io.js";
import { listKeys, sameKeys, type KeyAnalysis } from "./key-checks.js";
import { analyseNotarised, fetchAndAnalyseKeys } from "./net.js";
import {
  explainFailure,
  explainSocketError,
  IDENTITY_FLAGS,
  loadIdentity,
  NETWORK_FLAGS,
  NETWORK_USAGE,
  openNetwork,
  sendRaw,
  type Network,
  type RawResponse,
} from "./network.js";
import { finding, formatDate, formatDuration, renderFinding, type Finding } from "./report.js";
import { probeTls, type ProbeOutcome } from "./tls-probe.js";

const DAY = 86_400_000;
/** Certificates closer than this to expiry get a WARN: automated renewal normally happens 30 days ahead. */
const CERTIFICATE_WARN_MS = 14 * DAY;
/** TLS probes per check, at most (SRV targets times addresses). */
const MAX_PROBES = 6;

/** The checks, in order; a failed one makes the later ones SKIP. */
const CHECK_NAMES = ["discovery", "connect", "tls", "version", "keys", "notary", "auth"] as const;

function skipRest(findings: Finding[], from: (typeof CHECK_NAMES)[number], why: string): void {
  for (const name of CHECK_NAMES.slice(CHECK_NAMES.indexOf(from))) findings.push(finding(name, "SKIP", why));
}

function where(address: string, port: number): string {
  return `${address.includes(":") ? `[${address}]` : address}:${port}`;
}

// ---------------------------------------------------------------------------------------------
// discovery

function how(resolution: ServerResolution): string {
  const delegated = resolution.delegatedServerName;
  switch (resolution.rule) {
    case "1":
      return "IP literal";
    case "2":
      return "explicit port";
    case "3.1":
    case "3.2":
      return `.well-known delegation to ${delegated}`;
    case "3.3":
      return `.well-known delegation to ${delegated}, then SRV _matrix-fed._tcp`;
    case "3.4":
      return `.well-known delegation to ${delegated}, then the deprecated SRV _matrix._tcp`;
    case "3.5":
      return `.well-known delegation to ${delegated}, default port 8448`;
    case "4":
      return "SRV _matrix-fed._tcp";
    case "5":
      return "the deprecated SRV _matrix._tcp";
    case "6":
      return "no .well-known or SRV record, default port 8448";
  }
}

function checkDiscovery(name: string, outcome: ResolveServerResult & { ok: true }): Finding {
  const { resolution, steps } = outcome;
  const sni = resolution.tlsServerName === undefined ? "no SNI" : `SNI ${resolution.tlsServerName}`;
  const summary = `${name} -> ${resolution.host}:${resolution.port} via ${how(resolution)} (${sni}, Host ${resolution.hostHeader})`;
  const details = { resolution, steps };
  const notes = steps.map((s) => s.message);
  // A .well-known file that exists but cannot be used: servers silently fall back, which
  // is rarely what the operator meant.
  const broken = steps.find(
    (s): s is Extract<DiscoveryStep, { step: "well-known" }> =>
      s.step === "well-known" && !s.ok && s.reason !== undefined && s.reason !== "unreachable" && s.reason !== "http-status",
  );
  if (broken !== undefined) {
    return finding(
      "discovery",
      "WARN",
      `${summary}. But ${name} serves an unusable .well-known/matrix/server (${broken.reason}), which servers ignore: fix it or remove it`,
      details,
      notes,
    );
  }
  if (resolution.rule === "5" || resolution.rule === "3.4") {
    return finding(
      "discovery",
      "WARN",
      `${summary}. The _matrix._tcp SRV record is deprecated and servers are dropping it: publish _matrix-fed._tcp instead`,
      details,
      notes,
    );
  }
  return finding("discovery", "GOOD", summary, details);
}

// ---------------------------------------------------------------------------------------------
// connect and TLS

function probeFailure(probe: ProbeOutcome, timeoutMs: number): string {
  const at = where(probe.address, probe.port);
  switch (probe.kind) {
    case "refused-address":
      return `${probe.address} is in ${probe.blockedBy}, a range other servers refuse to connect to. Publish a public address; for a test setup pass --allow-ip ${probe.blockedBy}`;
    case "connect-failed":
      return explainSocketError(probe.code, at) ?? `cannot connect to ${at}: ${probe.message}`;
    case "timeout":
      return probe.phase === "connect"
        ? `${at} did not accept a connection within ${formatDuration(timeoutMs)} (a firewall dropping packets to that port?)`
        : `${at} accepted the connection but did not complete a TLS handshake within ${formatDuration(timeoutMs)}`;
    default:
      return `${at}: ${probe.kind}`;
  }
}

function checkConnect(probes: readonly ProbeOutcome[], timeoutMs: number): Finding {
  const connected = probes.filter((p) => p.kind === "secured" || p.kind === "handshake-failed" || (p.kind === "timeout" && p.phase === "tls"));
  const failed = probes.filter((p) => !connected.includes(p));
  const details = { probes: probes.map((p) => ({ kind: p.kind, address: p.address, port: p.port })) };
  const ok = connected.map((p) => where(p.address, p.port)).join(", ");
  if (connected.length === 0) return finding("connect", "BAD", failed.map((p) => probeFailure(p, timeoutMs)).join("; "), details);
  if (failed.length > 0) {
    return finding(
      "connect",
      "WARN",
      `connected to ${ok}, but ${failed.map((p) => probeFailure(p, timeoutMs)).join("; ")}. Servers try the next address, after a delay each time`,
      details,
    );
  }
  return finding("connect", "GOOD", `connected to ${ok}`, details);
}

const EXPIRY_CODES = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);

function trustAdvice(code: string): string {
  switch (code) {
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "UNABLE_TO_GET_ISSUER_CERT":
      return "the issuer is not a known certificate authority, or an intermediate certificate is missing: serve the full chain (fullchain.pem, not cert.pem); for a private test CA pass --ca FILE";
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
      return "it is self-signed, and other servers refuse self-signed certificates: get one from a public CA such as Let's Encrypt (for a test setup, --ca FILE)";
    case "SELF_SIGNED_CERT_IN_CHAIN":
      return "the chain ends in a CA nobody trusts: use a public CA (for a test setup, --ca FILE)";
    default:
      return "other servers will refuse it";
  }
}

/** The names a certificate is for: its subjectAltName entries, else its CN. */
function certificateNames(probe: ProbeOutcome & { kind: "secured" }): string {
  const leaf = probe.chain[0];
  if (leaf !== undefined && leaf.subjectAltNames.length > 0) {
    return leaf.subjectAltNames.map((n) => n.replace(/^DNS:/, "").replace(/^IP Address:/, "")).join(", ");
  }
  return leaf?.subject ?? "(nothing)";
}

function checkTls(probe: ProbeOutcome, resolution: ServerResolution, timeoutMs: number, prefix: string): Finding {
  const certName = resolution.certificateName;
  if (probe.kind === "handshake-failed") {
    return finding(
      "tls",
      "BAD",
      `${prefix}TLS handshake with ${where(probe.address, probe.port)} failed: ${probe.message} (is that port serving HTTPS? a plain-HTTP port answers with "wrong version number"; a server without a certificate for ${certName} may close the connection)`,
      { address: probe.address, code: probe.code },
    );
  }
  if (probe.kind !== "secured") {
    return finding("tls", "BAD", `${prefix}${probeFailure(probe, timeoutMs)}`, { address: probe.address });
  }
  const now = Date.now();
  const leaf = probe.chain[0];
  const sni = resolution.tlsServerName === undefined ? "no SNI, as for an IP address" : `SNI ${resolution.tlsServerName}`;
  const notes = [
    `name checked: ${certName} (${sni}); ${probe.protocol ?? "unknown protocol"}`,
    ...probe.chain.map(
      (c, i) =>
        `[${i}] subject ${c.subject}; issuer ${c.issuer}${c.subjectAltNames.length > 0 ? `; ${c.subjectAltNames.join(", ")}` : ""}; valid ${formatDate(c.validFrom)} to ${formatDate(c.validTo)}`,
    ),
  ];
  const details = { address: probe.address, certificateName: certName, sni: resolution.tlsServerName ?? null, chain: probe.chain, authorizationError: probe.authorizationError ?? null };
  if (leaf === undefined) return finding("tls", "BAD", `${prefix}the server presented no certificate`, details, notes);

  const problems: string[] = [];
  if (leaf.validTo < now) {
    problems.push(
      `certificate for ${certificateNames(probe)} expired on ${formatDate(leaf.validTo)}, ${formatDuration(now - leaf.validTo)} ago (it was valid from ${formatDate(leaf.validFrom)}). Renew it; servers refuse expired certificates`,
    );
  } else if (leaf.validFrom > now) {
    problems.push(
      `certificate for ${certificateNames(probe)} is not valid before ${formatDate(leaf.validFrom)}: check the clock of the machine that issued it`,
    );
  }
  const mismatch = tls.checkServerIdentity(certName, probe.leaf);
  if (mismatch !== undefined) {
    problems.push(
      `certificate presented by ${where(probe.address, probe.port)} is for ${certificateNames(probe)}, not for ${certName}, the name other servers check (from discovery). Get a certificate that names ${certName}`,
    );
  }
  const code = probe.authorizationError;
  if (code !== undefined && !EXPIRY_CODES.has(code)) {
    problems.push(`certificate is not trusted (${code}, issuer ${leaf.issuer}): ${trustAdvice(code)}`);
  }
  if (problems.length > 0) return finding("tls", "BAD", prefix + problems.join("; "), details, notes);
  const left = leaf.validTo - now;
  if (left < CERTIFICATE_WARN_MS) {
    return finding(
      "tls",
      "WARN",
      `${prefix}certificate for ${certName} expires in ${formatDuration(left)} (${formatDate(leaf.validTo)}): renew it now; automated renewal normally runs 30 days ahead, so it may be failing`,
      details,
      notes,
    );
  }
  return finding(
    "tls",
    "GOOD",
    `${prefix}certificate for ${certName} issued by ${leaf.issuer}, trusted, valid until ${formatDate(leaf.validTo)} (${formatDuration(left)} left)`,
    details,
    notes,
  );
}

function checkTlsAll(probes: readonly ProbeOutcome[], resolution: ServerResolution, timeoutMs: number): Finding[] {
  const reached = probes.filter((p) => p.kind === "secured" || p.kind === "handshake-failed" || (p.kind === "timeout" && p.phase === "tls"));
  const one = reached[0];
  if (one === undefined) return [];
  // One line when every address presents the same certificate, else one per address.
  const fingerprints = new Set(reached.map((p) => (p.kind === "secured" ? p.chain[0]?.fingerprint256 : p.kind)));
  if (fingerprints.size === 1 && reached.every((p) => p.kind === "secured")) return [checkTls(one, resolution, timeoutMs, "")];
  return reached.map((p) => checkTls(p, resolution, timeoutMs, `${where(p.address, p.port)}: `));
}

// ---------------------------------------------------------------------------------------------
// version, keys, notary

async function checkVersion(net: Network, name: string): Promise<Finding> {
  try {
    const answer = await net.client.call("get_server_version", "v1", name);
    const server = answer.server ?? {};
    if (server.name === undefined && server.version === undefined) {
      return finding("version", "WARN", "answered without naming its implementation or version (allowed, but it makes interop problems harder to report)", { server });
    }
    return finding("version", "GOOD", `${server.name ?? "(no name)"} ${server.version ?? "(no version)"}`, { server });
  } catch (error) {
    return finding("version", "BAD", explainFailure(error));
  }
}

function foldKeys(analysis: KeyAnalysis, name: string): Finding {
  const details = { verifyKeys: Object.fromEntries(analysis.verifyKeys), validUntilTs: analysis.validUntilTs ?? null, findings: analysis.findings };
  const bad = analysis.findings.filter((f) => f.status === "BAD");
  const warn = analysis.findings.filter((f) => f.status === "WARN");
  const list = (fs: readonly Finding[]): string => fs.map((f) => `${f.name}: ${f.message}`).join("; ");
  if (bad.length > 0) return finding("keys", "BAD", list(bad), details);
  const until = analysis.validUntilTs === undefined ? "" : `, valid until ${formatDate(analysis.validUntilTs)} (in ${formatDuration(analysis.validUntilTs - Date.now())})`;
  const summary = `${analysis.verifyKeys.size === 1 ? "key" : "keys"} ${[...analysis.verifyKeys.keys()].join(", ")} self-signed, server_name ${name}${until}`;
  if (warn.length > 0) return finding("keys", "WARN", `${summary}; but ${list(warn)}`, details);
  return finding("keys", "GOOD", summary, details);
}

async function checkNotary(net: Network, name: string, direct: KeyAnalysis | undefined): Promise<Finding> {
  let answer;
  try {
    // Ask for the key IDs the server published directly, each with a minimum validity, as
    // servers do: Synapse answers criteria-less queries from its cache only (and never caches
    // its own keys), and refuses criteria without `minimum_valid_until_ts`.
    const now = Date.now();
    const criteria = Object.fromEntries([...(direct?.verifyKeys.keys() ?? [])].map((keyId) => [keyId, { minimum_valid_until_ts: now }]));
    answer = await net.client.call("get_remote_server_keys_batch", "v2", name, { body: { server_keys: { [name]: criteria } } });
  } catch (error) {
    if (error instanceof FederationRequestError && error.errcode === "M_UNRECOGNIZED") {
      return finding(
        "notary",
        "WARN",
        `${name} does not serve the notary API (POST /_matrix/key/v2/query answered ${error.status} M_UNRECOGNIZED). That is allowed, but its keys could not be cross-checked through it`,
      );
    }
    return finding("notary", "BAD", explainFailure(error));
  }
  const entries = (Array.isArray(answer.server_keys) ? answer.server_keys : []).filter(
    (e) => typeof e === "object" && e !== null && (e as { server_name?: unknown }).server_name === name,
  );
  if (entries.length === 0) {
    return finding(
      "notary",
      "WARN",
      `asked through its notary API (POST /_matrix/key/v2/query) for its own keys, ${name} returned none: servers using it as a notary get nothing for it`,
    );
  }
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const entry of entries) {
    for (const f of analyseNotarised(entry, name, name, new Map())) {
      if (f.status === "BAD") problems.push(`${f.name}: ${f.message}`);
      if (f.status === "GOOD" && typeof f.details["keyId"] === "string" && typeof f.details["key"] === "string") {
        seen.set(f.details["keyId"], f.details["key"]);
      }
    }
  }
  const details = { verifyKeys: Object.fromEntries(seen), responses: entries.length };
  const directProblems = new Set(direct?.findings.filter((f) => f.status === "BAD").map((f) => `${f.name}: ${f.message}`));
  if (problems.length > 0 && direct !== undefined && sameKeys(seen, direct.verifyKeys) && problems.every((p) => directProblems.has(p))) {
    // One root cause, one BAD line: the keys line already has it.
    return finding("notary", "WARN", `POST /_matrix/key/v2/query returns the same keys as GET /_matrix/key/v2/server, with the same problems (see keys)`, details);
  }
  if (problems.length > 0) {
    return finding("notary", "BAD", `the key response served through POST /_matrix/key/v2/query fails: ${problems.join("; ")}`, details);
  }
  if (direct === undefined) {
    return finding("notary", "WARN", `POST /_matrix/key/v2/query serves validly signed keys (${listKeys(seen)}), but the direct fetch failed, so they could not be compared`, details);
  }
  if (!sameKeys(seen, direct.verifyKeys)) {
    return finding(
      "notary",
      "BAD",
      `POST /_matrix/key/v2/query serves ${listKeys(seen)}, but GET /_matrix/key/v2/server serves ${listKeys(direct.verifyKeys)}: ` +
        `two different key sets under one name (a stale cache? two servers behind one name?); peers that fetch keys through notaries will reject its signatures`,
      details,
    );
  }
  return finding(
    "notary",
    "GOOD",
    `POST /_matrix/key/v2/query returns the same keys it publishes directly (${[...seen.keys()].join(", ")}), validly signed`,
    details,
  );
}

// ---------------------------------------------------------------------------------------------
// auth: the signed round trip

function matrixError(response: RawResponse): { errcode?: string; error?: string } {
  try {
    const body = parseJson(response.body.toString("utf8"), { strict: false });
    if (typeof body === "object" && body !== null && !Array.isArray(body)) {
      const errcode = body["errcode"];
      const error = body["error"];
      return { ...(typeof errcode === "string" ? { errcode } : {}), ...(typeof error === "string" ? { error } : {}) };
    }
  } catch {
    // Not JSON.
  }
  return {};
}

function answer(response: RawResponse): string {
  const { errcode, error } = matrixError(response);
  return `${response.status}${errcode === undefined ? "" : ` ${errcode}`}${error === undefined || error === "" ? "" : ` (${JSON.stringify(error)})`}`;
}

/** An authenticated question the round trip may ask. */
interface Question {
  readonly endpoint: string;
  path(name: string): string;
}

/**
 * The questions, in order of preference; the first one the server implements is asked.
 * Both require X-Matrix and are read-only. The profile query for a user that does not
 * exist has a definite answer, 404 `M_NOT_FOUND` (spec § "Query information"); the room
 * directory answers 200, or 403 where an operator keeps it private.
 */
const QUESTIONS: readonly Question[] = [
  {
    endpoint: "GET /_matrix/federation/v1/query/profile",
    path: (name) => `/_matrix/federation/v1/query/profile?user_id=${encodeURIComponent(`@myelin-check-${randomBytes(4).toString("hex")}:${name}`)}`,
  },
  { endpoint: "GET /_matrix/federation/v1/publicRooms", path: () => "/_matrix/federation/v1/publicRooms?limit=1" },
];

/**
 * The signed round trip: an authenticated question asked twice. Unsigned, the server must
 * answer 401. Signed as a server whose keys it can fetch (--key/--origin), anything but
 * 401 proves it fetched our keys and verified our signature, and the answer must be one
 * the spec gives.
 */
async function checkAuth(net: Network, name: string): Promise<Finding> {
  let question: Question | undefined;
  let path = "";
  let unsigned: RawResponse | undefined;
  const unrecognized: string[] = [];
  for (const candidate of QUESTIONS) {
    path = candidate.path(name);
    let response: RawResponse;
    try {
      response = await sendRaw(net, { destination: name, method: "GET", path });
    } catch (error) {
      return finding("auth", "BAD", explainFailure(error));
    }
    if (matrixError(response).errcode === "M_UNRECOGNIZED") {
      unrecognized.push(`${candidate.endpoint} (${answer(response)})`);
      continue;
    }
    question = candidate;
    unsigned = response;
    break;
  }
  if (question === undefined || unsigned === undefined) {
    return finding(
      "auth",
      "WARN",
      `${name} implements none of the authenticated endpoints this check asks: ${unrecognized.join("; ")}; request authentication was not tested`,
      { unrecognized },
    );
  }
  const details: Record<string, unknown> = { request: `GET ${path}`, unsigned: { status: unsigned.status, ...matrixError(unsigned) } };
  const unsignedCode = matrixError(unsigned).errcode;
  if (unsigned.status >= 200 && unsigned.status < 300) {
    return finding(
      "auth",
      "BAD",
      `${name} answered an UNSIGNED ${question.endpoint}, which requires X-Matrix, with ${unsigned.status}: it does not authenticate federation requests, so anyone can pose as any server to it`,
      details,
    );
  }
  const refusesUnsigned = unsigned.status === 401;
  const unsignedNote = refusesUnsigned
    ? `it refuses unsigned ones (${unsigned.status}${unsignedCode === undefined ? "" : ` ${unsignedCode}`})`
    : `but it answered an unsigned one with ${answer(unsigned)} instead of 401`;
  const identity = net.identity;
  if (identity === undefined) {
    return finding(
      "auth",
      refusesUnsigned ? "GOOD" : "WARN",
      refusesUnsigned
        ? `${name} refuses an unsigned ${question.endpoint} (${answer(unsigned)}), as it must. ` +
            "The signed half of the round trip needs --key KEYFILE --origin NAME: the signing key of a server whose keys it can fetch"
        : `${name} answered an unsigned ${question.endpoint}, which requires X-Matrix, with ${answer(unsigned)}; servers answer 401`,
      details,
    );
  }

  let signed: RawResponse;
  try {
    signed = await sendRaw(net, { destination: name, method: "GET", path, sign: identity });
  } catch (error) {
    return finding("auth", "BAD", explainFailure(error), details);
  }
  details["signed"] = { status: signed.status, origin: identity.origin, keyId: identity.key.keyId, ...matrixError(signed) };
  const as = `${question.endpoint} signed as ${identity.origin} with ${identity.key.keyId}`;
  const status = signed.status;
  const { errcode } = matrixError(signed);
  if (status === 401) {
    return finding(
      "auth",
      "BAD",
      `${name} refused our ${as}: ${answer(signed)}. It must fetch ${identity.origin}'s keys (GET https://${identity.origin}/_matrix/key/v2/server, or through its notary) ` +
        `and find ${identity.key.keyId} there with the public key of the key file: check with \`myelin keys ${identity.origin}\` and \`myelin key public KEYFILE\``,
      details,
    );
  }
  if (status >= 500) {
    return finding("auth", "BAD", `${name} answered ${answer(signed)} to a valid ${as}: the server failed (see its logs)`, details);
  }
  const good = (what: string): Finding =>
    finding("auth", refusesUnsigned ? "GOOD" : "WARN", `${name} accepted our ${as} and ${what}; ${unsignedNote}`, details);
  if (status >= 200 && status < 300) {
    let body: unknown;
    try {
      body = parseJson(signed.body.toString("utf8"), { strict: false });
    } catch {
      body = undefined;
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return finding("auth", "BAD", `${name} accepted our ${as} but answered ${status} with a body that is not a JSON object`, details);
    }
    return good(`answered ${status}`);
  }
  if (status === 404 && errcode === "M_NOT_FOUND") return good("answered 404 M_NOT_FOUND for a user that does not exist, as the spec says");
  if (status === 403) return good(`refuses to answer it (${answer(signed)}), which servers may do`);
  return finding(
    "auth",
    "WARN",
    `${name} answered our ${as} with ${answer(signed)}: not 401, so it seems to have accepted the signature, but this is not an answer the spec gives; ${unsignedNote}`,
    details,
  );
}

// ---------------------------------------------------------------------------------------------

/** Runs every check against `name`. */
export async function runChecks(net: Network, name: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  if (net.insecure) {
    findings.push(
      finding(
        "insecure",
        "WARN",
        "--insecure: certificates are NOT validated for the requests below. The tls line still reports what other servers will see",
      ),
    );
  }
  const outcome = await net.resolve(name);
  if (!outcome.ok) {
    findings.push(finding("discovery", "BAD", explainFailure(outcome.error), { steps: outcome.steps }, outcome.steps.map((s) => s.message)));
    skipRest(findings, "connect", "not checked: discovery failed");
    return findings;
  }
  findings.push(checkDiscovery(name, outcome));
  const { resolution } = outcome;

  const targets = resolution.targets.flatMap((t) => t.addresses.map((address) => ({ address, port: t.port }))).slice(0, MAX_PROBES);
  const probes = await Promise.all(
    targets.map((t) =>
      probeTls({
        ...t,
        ...(resolution.tlsServerName === undefined ? {} : { servername: resolution.tlsServerName }),
        extraCas: net.extraCas,
        policy: net.policy,
        timeoutMs: net.timeoutMs,
      }),
    ),
  );
  const connect = checkConnect(probes, net.timeoutMs);
  findings.push(connect);
  if (connect.status === "BAD") {
    skipRest(findings, "tls", "not checked: no connection");
    return findings;
  }
  const tlsFindings = checkTlsAll(probes, resolution, net.timeoutMs);
  findings.push(...tlsFindings);
  if (!net.insecure && tlsFindings.every((f) => f.status === "BAD")) {
    skipRest(findings, "version", "not checked: other servers refuse this TLS certificate (see tls); --insecure checks the rest anyway");
    return findings;
  }

  findings.push(await checkVersion(net, name));
  let direct: KeyAnalysis | undefined;
  try {
    direct = await fetchAndAnalyseKeys(net, name);
    findings.push(foldKeys(direct, name));
  } catch (error) {
    findings.push(finding("keys", "BAD", explainFailure(error)));
  }
  findings.push(await checkNotary(net, name, direct));
  findings.push(await checkAuth(net, name));
  return findings;
}

const checkCommand: Command = {
  path: ["check"],
  usage: `NAME [--json] [--key KEYFILE --origin NAME] ${NETWORK_USAGE}`,
  summary:
    "Federation report for a server: discovery, connection, TLS (chain, names, expiry), version, keys, the keys through its notary API, and request authentication (signed with --key/--origin). One GOOD/WARN/BAD line each, saying what to fix; --json for the same as JSON. Exit 1 on any BAD.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, { ...NETWORK_FLAGS, ...IDENTITY_FLAGS, json: { type: "boolean" } });
    if (positionals.length !== 1) throw new CliError("expected one server NAME", 2);
    const name = positionals[0]!;
    const identity = await loadIdentity(values.key, values.origin);
    const net = await openNetwork(values, io, identity);
    let findings: Finding[];
    try {
      findings = await runChecks(net, name);
    } finally {
      net.close();
    }
    const bad = findings.filter((f) => f.status === "BAD").length;
    if (values.json === true) {
      const checks = findings.map(({ name: check, status, message, details }) => ({ name: check, status, message, details }));
      await write(io.stdout, `${JSON.stringify({ server: name, ok: bad === 0, checks }, null, 2)}\n`);
    } else {
      const count = (s: string): number => findings.filter((f) => f.status === s).length;
      const summary = `summary: ${bad} BAD, ${count("WARN")} WARN, ${count("GOOD")} GOOD${count("SKIP") > 0 ? `, ${count("SKIP")} SKIP` : ""}\n`;
      await write(io.stdout, findings.map(renderFinding).join("") + summary);
    }
    return bad === 0 ? 0 : 1;
  },
};

/** `myelin check` */
export const CHECK_COMMANDS: readonly Command[] = [checkCommand];

