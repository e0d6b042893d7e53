import { STATUS_CODES } from "node:http";
import { decodeBase64, encodeBase64, parseJson, verifyJsonSignature } from "@myelin/signing";
import type { DiscoveryStep, ServerResolution } from "@myelin/client";
import { findEndpoint, type JsonObject } from "@myelin/types";
import { parseFlags } from "../args.js";
import type { Command } from "../command.js";
import { CliError, readInput, write, type CliIo } from "../io.js";
import { analyseServerKeys, listKeys } from "./key-checks.js";
import {
  explainFailure,
  IDENTITY_FLAGS,
  loadIdentity,
  NETWORK_FLAGS,
  NETWORK_USAGE,
  openNetwork,
  sendRaw,
  serverNameArgument,
  type Network,
} from "./network.js";
import { finding, renderFinding, worstStatus, type Finding } from "./report.js";
import { parseObject, parseVerifyKeys } from "./shared.js";

/** Runs `body` with the network open, closing it afterwards. */
async function withNetwork<T>(net: Network, body: (net: Network) => Promise<T>): Promise<T> {
  try {
    return await body(net);
  } finally {
    net.close();
  }
}

function onlyName(positionals: readonly string[]): string {
  if (positionals.length > 1) throw new CliError(`expected one server NAME, got ${positionals.length} arguments`, 2);
  return serverNameArgument(positionals[0]);
}

/** Whether a discovery step is one that did not work out (a fallback or the failure). */
function stepFailed(step: DiscoveryStep): boolean {
  if ("ok" in step) return !step.ok;
  if (step.step === "srv") return step.outcome !== "found";
  return false;
}

/** `127.0.0.1:8448 (127.0.0.1); certificate for ..., SNI ..., Host ...` */
export function describeResolution(resolution: ServerResolution): string {
  const targets = resolution.targets
    .map((t) => `${t.host}:${t.port} (${t.addresses.length === 0 ? `no addresses: ${t.lookupError ?? "lookup failed"}` : t.addresses.join(", ")})`)
    .join(", then ");
  const sni = resolution.tlsServerName === undefined ? "no SNI" : `SNI ${resolution.tlsServerName}`;
  return `${targets}; certificate for ${resolution.certificateName}, ${sni}, Host ${resolution.hostHeader}`;
}

const resolveCommand: Command = {
  path: ["resolve"],
  usage: `NAME ${NETWORK_USAGE}`,
  summary:
    "Resolve a server name as the spec says (IP literal, port, .well-known, SRV, 8448): print each step and the result (host, port, addresses, TLS name, SNI, Host header), or the exact step that failed and why.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, NETWORK_FLAGS);
    const name = onlyName(positionals);
    return withNetwork(await openNetwork(values, io), async (net) => {
      const outcome = await net.resolve(name);
      const lines = outcome.steps.map((step) => `  ${stepFailed(step) ? "!" : "-"} ${step.message}\n`);
      if (!outcome.ok) {
        await write(io.stdout, `resolving ${name}\n${lines.join("")}FAILED: ${explainFailure(outcome.error)}\n`);
        return 1;
      }
      await write(io.stdout, `resolving ${name}\n${lines.join("")}result: ${describeResolution(outcome.resolution)}\n`);
      return 0;
    });
  },
};

const versionCommand: Command = {
  path: ["version"],
  usage: `NAME ${NETWORK_USAGE}`,
  summary: "Ask a server which implementation and version it runs (GET /_matrix/federation/v1/version).",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, NETWORK_FLAGS);
    const name = onlyName(positionals);
    return withNetwork(await openNetwork(values, io), async (net) => {
      let answer;
      try {
        answer = await net.client.call("get_server_version", "v1", name);
      } catch (error) {
        throw new CliError(explainFailure(error));
      }
      await write(io.stdout, `${answer.server?.name ?? "(no name)"} ${answer.server?.version ?? "(no version)"}\n`);
      return 0;
    });
  },
};

/** Fetches a server's keys directly and checks them. */
export async function fetchAndAnalyseKeys(net: Network, name: string): Promise<ReturnType<typeof analyseServerKeys> & { response: unknown }> {
  const response = await net.client.call("get_server_keys", "v2", name);
  return { ...analyseServerKeys(response, name, Date.now()), response };
}

/**
 * The notary's own keys: pinned with --notary-key, or fetched from it directly (trust on
 * first use, said as much in the output).
 */
async function notaryKeys(net: Network, notary: string, pinned: readonly string[]): Promise<{ keys: Map<string, string>; findings: Finding[] }> {
  if (pinned.length > 0) {
    const keys = new Map([...parseVerifyKeys(pinned, "notary-key")].map(([id, key]) => [id, encodeBase64(key.publicKey)]));
    return { keys, findings: [finding("notary keys", "GOOD", `pinned with --notary-key: ${listKeys(keys)}`)] };
  }
  let analysis;
  try {
    analysis = await fetchAndAnalyseKeys(net, notary);
  } catch (error) {
    return { keys: new Map(), findings: [finding("notary keys", "BAD", `cannot fetch ${notary}'s own keys to check its signature: ${explainFailure(error)}`)] };
  }
  const bad = analysis.findings.filter((f) => f.status === "BAD");
  if (bad.length > 0) {
    return { keys: new Map(), findings: [finding("notary keys", "BAD", `${notary}'s own key response fails its checks: ${bad.map((f) => `${f.name}: ${f.message}`).join("; ")}`)] };
  }
  return {
    keys: new Map(analysis.verifyKeys),
    findings: [finding("notary keys", "GOOD", `fetched from ${notary} directly (pin them with --notary-key): ${listKeys(analysis.verifyKeys)}`)],
  };
}

/** Checks one notarised response: the notary's signature, then the origin's own checks. */
export function analyseNotarised(entry: unknown, name: string, notary: string, keys: ReadonlyMap<string, string>): Finding[] {
  const findings: Finding[] = [];
  const object = typeof entry === "object" && entry !== null && !Array.isArray(entry) ? (entry as JsonObject) : undefined;
  if (object !== undefined && notary !== name) {
    const valid: string[] = [];
    const invalid: string[] = [];
    for (const [keyId, key] of keys) {
      let check;
      try {
        check = verifyJsonSignature(object, notary, keyId, decodeBase64(key));
      } catch {
        continue;
      }
      if (check.valid) valid.push(keyId);
      else if (check.reason !== "missing-signature") invalid.push(`${keyId} (${check.reason})`);
    }
    findings.push(
      invalid.length > 0
        ? finding("notary signature", "BAD", `${notary}'s signature does not verify: ${invalid.join(", ")}`)
        : valid.length > 0
          ? finding("notary signature", "GOOD", `signed by ${notary} with ${valid.join(", ")}`)
          : finding("notary signature", "BAD", `not signed by ${notary} with any of its keys (${listKeys(keys)}): servers trusting ${notary} discard it`),
    );
  }
  findings.push(...analyseServerKeys(entry, name, Date.now()).findings);
  return findings;
}

const keysCommand: Command = {
  path: ["keys"],
  usage: `NAME [--notary NOTARY [--notary-key ed25519:ID=PUBLICKEY]] ${NETWORK_USAGE}`,
  summary:
    "Fetch a server's signing keys (directly, or through --notary) and check them as other servers do: server_name, each key's self-signature, valid_until_ts, old keys; one GOOD/WARN/BAD line per check. Exit 1 on any BAD.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...NETWORK_FLAGS,
      notary: { type: "string" },
      "notary-key": { type: "string", multiple: true },
    });
    const name = onlyName(positionals);
    if (values["notary-key"] !== undefined && values.notary === undefined) throw new CliError("--notary-key needs --notary", 2);
    return withNetwork(await openNetwork(values, io), async (net) => {
      const findings: Finding[] = [];
      let header: string;
      if (values.notary === undefined) {
        header = `keys of ${name}, from ${name} (GET /_matrix/key/v2/server)\n`;
        try {
          findings.push(...(await fetchAndAnalyseKeys(net, name)).findings);
        } catch (error) {
          throw new CliError(explainFailure(error));
        }
      } else {
        const notary = values.notary;
        header = `keys of ${name}, from notary ${notary} (POST /_matrix/key/v2/query)\n`;
        const trusted = await notaryKeys(net, notary, values["notary-key"] ?? []);
        findings.push(...trusted.findings);
        let answer;
        try {
          answer = await net.client.call("get_remote_server_keys_batch", "v2", notary, { body: { server_keys: { [name]: {} } } });
        } catch (error) {
          throw new CliError(explainFailure(error));
        }
        const entries = Array.isArray(answer.server_keys) ? answer.server_keys : [];
        if (entries.length === 0) {
          findings.push(finding("server_keys", "BAD", `${notary} has no keys for ${name} (it cannot reach ${name}, and has nothing cached)`));
        }
        entries.forEach((entry, i) => {
          const found = analyseNotarised(entry, name, notary, trusted.keys);
          findings.push(...(entries.length === 1 ? found : found.map((f) => ({ ...f, name: `[${i + 1}] ${f.name}` }))));
        });
      }
      await write(io.stdout, header + findings.map(renderFinding).join(""));
      return worstStatus(findings) === "BAD" ? 1 : 0;
    });
  },
};

/** BODY: JSON text, `@FILE`, or `-` for standard input. */
async function readBody(io: CliIo, body: string): Promise<JsonObject> {
  if (body === "-") return parseObject(await readInput(io, undefined), "standard input");
  if (body.startsWith("@")) return parseObject(await readInput(io, body.slice(1)), body.slice(1));
  return parseObject(body, "BODY");
}

const requestCommand: Command = {
  path: ["request"],
  usage: `[--key KEYFILE --origin NAME] METHOD NAME PATH [BODY | @FILE | -] ${NETWORK_USAGE}`,
  summary:
    "Send a request to any federation endpoint, signed with X-Matrix as ORIGIN when --key/--origin are given (unsigned otherwise). PATH is sent as given (percent-encoded, with its query). The status line goes to standard error, the JSON body to standard output; exit 0 for 2xx.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, { ...NETWORK_FLAGS, ...IDENTITY_FLAGS });
    if (positionals.length < 3 || positionals.length > 4) {
      throw new CliError("expected METHOD NAME PATH [BODY]", 2);
    }
    const [rawMethod, name, path, rawBody] = positionals as [string, string, string, string | undefined];
    const method = rawMethod.toUpperCase();
    if (!/^[A-Z]+$/.test(method)) throw new CliError(`METHOD must be an HTTP method such as GET or PUT, got ${JSON.stringify(rawMethod)}`, 2);
    if (!path.startsWith("/")) throw new CliError(`PATH must start with /, e.g. /_matrix/federation/v1/version; got ${JSON.stringify(path)}`, 2);
    if (rawBody !== undefined && (method === "GET" || method === "HEAD")) throw new CliError(`a ${method} request has no body`, 2);
    const identity = await loadIdentity(values.key, values.origin);
    // Spec § "API standards": POST and PUT requests carry a JSON object, {} at least.
    const body = rawBody !== undefined ? await readBody(io, rawBody) : method === "POST" || method === "PUT" ? {} : undefined;

    const match = findEndpoint(method, path);
    if (match === undefined) {
      io.stderr.write(`myelin: note: ${method} ${path.split("?")[0]} is not in the endpoint table (spec v1.19); sending it anyway\n`);
    } else if (!match.methodAllowed) {
      io.stderr.write(`myelin: note: that path takes ${match.allowedMethods.join(", ")}, not ${method}; sending it anyway\n`);
    } else if (match.endpoint.auth === "x-matrix" && identity === undefined) {
      io.stderr.write(
        `myelin: note: ${match.endpoint.name} requires X-Matrix authentication; sending it unsigned, so expect 401. ` +
          "To sign, pass --key KEYFILE --origin NAME: the signing key of a server whose keys the destination can fetch\n",
      );
    }

    return withNetwork(await openNetwork(values, io, identity), async (net) => {
      let response;
      try {
        response = await sendRaw(net, {
          destination: name,
          method,
          path,
          ...(body === undefined ? {} : { body }),
          ...(identity === undefined ? {} : { sign: identity }),
        });
      } catch (error) {
        throw new CliError(explainFailure(error));
      }
      const signed = identity === undefined ? "unsigned" : `signed as ${identity.origin} with ${identity.key.keyId}`;
      const where = response.address.includes(":") ? `[${response.address}]:${response.port}` : `${response.address}:${response.port}`;
      io.stderr.write(`HTTP ${response.status} ${STATUS_CODES[response.status] ?? ""} from ${where} (${signed})\n`);
      const text = response.body.toString("utf8");
      let printed = text;
      try {
        printed = JSON.stringify(parseJson(text, { strict: false }), null, 2);
      } catch {
        // Not JSON: printed as received.
      }
      await write(io.stdout, printed === "" ? "" : printed.endsWith("\n") ? printed : `${printed}\n`);
      return response.status >= 200 && response.status < 300 ? 0 : 1;
    });
  },
};

/** `myelin resolve`, `version`, `keys`, `request`. */
export const NET_COMMANDS: readonly Command[] = [resolveCommand, versionCommand, keysCommand, requestCommand];
