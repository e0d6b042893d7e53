/**
 * Configuration: command-line flags over an optional JSON config file over built-in
 * defaults that start on a fresh machine (plain HTTP on 127.0.0.1:8008, data in
 * `./myelin-data`).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CidrParseError, parseCidr } from "@myelin/client";
import { DEFAULT_ROOM_VERSION, ROOM_VERSIONS, findRoomVersion, isValidServerName } from "@myelin/types";
import type { LogLevel } from "./log.js";
import { LOG_LEVELS, isLogLevel } from "./log.js";

/** Where the server listens. */
export interface ListenAddress {
  /** A host name or IP literal (IPv6 without brackets). */
  readonly host: string;
  /** 0 lets the system choose a free port. */
  readonly port: number;
}

/** The homeserver's resolved configuration; every path is absolute. */
export interface HomeserverConfig {
  /**
   * Our server name. When absent, `localhost:<port>` with the port actually listened on,
   * which suits a single machine (and port 0 in tests).
   */
  readonly serverName?: string;
  readonly listen: ListenAddress;
  /** Certificate and key files (PEM); without them the server speaks plain HTTP. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Holds `signing.key` and `server-name`; created when missing. */
  readonly dataDir: string;
  /** Extra CA certificates (PEM files) trusted for outbound federation. */
  readonly federationCaFiles: readonly string[];
  /** CIDR ranges exempt from the refusal of private addresses for outbound federation. */
  readonly federationAllowIp: readonly string[];
  /** When set, `GET /.well-known/matrix/server` delegates to this server name. */
  readonly wellKnownServer?: string;
  readonly logLevel: LogLevel;
  /** The version of rooms created without one; absent means {@link DEFAULT_ROOM_VERSION} ("12"). */
  readonly defaultRoomVersion?: string;
  /**
   * Delay before the first retry of a destination that could not be reached (ms); doubled
   * at each further failure. Absent: Synapse's 10 minutes ({@link DEFAULTS}).
   */
  readonly federationRetryMinMs?: number;
  /** Longest delay between retries of an unreachable destination (ms). Absent: 7 days. */
  readonly federationRetryMaxMs?: number;
  /**
   * How often the federation workers look for due work (ms): destinations whose retry time
   * has come, staged PDUs nobody works on. Absent: 5 s.
   */
  readonly federationPollMs?: number;
}

/** The built-in defaults: what `myelin-server` with no flags runs with. */
export const DEFAULTS = {
  listen: { host: "127.0.0.1", port: 8008 },
  /** Relative to the working directory. */
  dataDir: "myelin-data",
  logLevel: "info",
  /** Synapse's first retry delay (`synapse/util/retryutils.py`): 10 minutes. */
  federationRetryMinMs: 10 * 60 * 1000,
  /** Synapse's largest retry delay: 7 days. */
  federationRetryMaxMs: 7 * 24 * 60 * 60 * 1000,
  federationPollMs: 5_000,
} as const satisfies {
  listen: ListenAddress;
  dataDir: string;
  logLevel: LogLevel;
  federationRetryMinMs: number;
  federationRetryMaxMs: number;
  federationPollMs: number;
};

/** What the command line asks for. */
export type CommandLine =
  | { readonly kind: "run"; readonly config: HomeserverConfig }
  | { readonly kind: "help" }
  | { readonly kind: "version" };

/** Why the configuration was refused. */
export type ConfigFailure =
  /** An unknown flag, a missing value, a stray argument. */
  | "invalid-flag"
  /** A flag or config key with a value that cannot be used. */
  | "invalid-value"
  /** The config file cannot be read or is not a JSON object of known keys. */
  | "invalid-config-file";

/** Thrown by {@link parseCommandLine}; the message is meant for the operator as it is. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly reason: ConfigFailure,
    message: string,
  ) {
    super(message);
  }
}

/** The flags, as `parseArgs` takes them; every one but `config`, `help` and `version` is also a config file key. */
const OPTIONS = {
  config: { type: "string" },
  "server-name": { type: "string" },
  listen: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  data: { type: "string" },
  "federation-ca": { type: "string", multiple: true },
  "federation-allow-ip": { type: "string", multiple: true },
  "well-known-server": { type: "string" },
  "log-level": { type: "string" },
  "default-room-version": { type: "string" },
  "federation-retry-min-ms": { type: "string" },
  "federation-retry-max-ms": { type: "string" },
  "federation-poll-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

type SettingName = Exclude<keyof typeof OPTIONS, "config" | "help" | "version">;
const SETTINGS = Object.keys(OPTIONS).filter((name) => !["config", "help", "version"].includes(name)) as SettingName[];
const LIST_SETTINGS: ReadonlySet<SettingName> = new Set(["federation-ca", "federation-allow-ip"]);
const PATH_SETTINGS: ReadonlySet<SettingName> = new Set(["tls-cert", "tls-key", "data", "federation-ca"]);
/** Settings holding a number of milliseconds: a config file may give them as JSON numbers. */
const MS_SETTINGS: ReadonlySet<SettingName> = new Set(["federation-retry-min-ms", "federation-retry-max-ms", "federation-poll-ms"]);

/** A setting's value and the directory its relative paths are resolved against. */
interface Setting {
  readonly value: string | readonly string[];
  readonly base: string;
  /** How to name it in an error: `--flag` or `key in FILE`. */
  readonly source: string;
}

/** The text printed by `--help`. */
export const USAGE = `Usage: myelin-server [options]
       myelin-server user add NAME [--data DIR] [--server-name NAME] [--admin]

Starts the Myelin reference Matrix homeserver: rooms shared with other servers over
federation, a Client-Server API subset for local users, and the key server and notary
endpoints. With no options it listens on
http://127.0.0.1:8008 as localhost:8008, keeping its signing key and database in
./myelin-data. \`user add NAME\` creates the local user @NAME:<server name> and prints
{"user_id", "access_token", "device_id"} as JSON.

Options (each overrides the config file's key of the same name):
  --config FILE               JSON config file: { "server-name": "...", "listen": "...", ... }
  --server-name NAME          our server name (default: localhost:<port listened on>)
  --listen HOST:PORT          address to listen on, [IPv6]:PORT for IPv6 (default 127.0.0.1:8008)
  --tls-cert FILE             TLS certificate chain (PEM); with --tls-key, serve HTTPS.
  --tls-key FILE              Without them, plain HTTP for a TLS-terminating reverse proxy.
  --data DIR                  data directory, created if missing (default ./myelin-data)
  --federation-ca FILE        extra CA certificate (PEM) trusted for outbound federation; repeatable
  --federation-allow-ip CIDR  allow outbound federation to this private range; repeatable
  --well-known-server NAME    serve /.well-known/matrix/server delegating to NAME
  --log-level LEVEL           ${LOG_LEVELS.join(", ")} (default info)
  --default-room-version V    version of new rooms that do not ask for one (default ${DEFAULT_ROOM_VERSION})
  --federation-retry-min-ms MS
                              first retry delay of an unreachable server, doubled at each
                              failure (default ${DEFAULTS.federationRetryMinMs}: Synapse's 10 minutes)
  --federation-retry-max-ms MS
                              longest retry delay (default ${DEFAULTS.federationRetryMaxMs}: 7 days)
  --federation-poll-ms MS     how often the federation workers look for due work (default ${DEFAULTS.federationPollMs})
  -h, --help                  print this help
  --version                   print the version
`;

/**
 * Reads the command line (and the config file it names) into a configuration. Flags win
 * over the config file key by key, a repeatable flag replacing the file's whole list.
 * Relative paths from flags are resolved against `cwd`; those from the config file
 * against the file's directory, so a config file can be moved with its data.
 *
 * @throws {@link ConfigError}
 */
export function parseCommandLine(argv: readonly string[], options: { readonly cwd: string }): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ConfigError("invalid-flag", (error as Error).message);
  }
  const { values } = parsed;
  if (values.help === true) return { kind: "help" };
  if (values.version === true) return { kind: "version" };

  const settings = new Map<SettingName, Setting>();
  if (values.config !== undefined) {
    const file = resolve(options.cwd, values.config);
    for (const [name, value] of readConfigFile(file)) settings.set(name, { value, base: dirname(file), source: `"${name}" in ${file}` });
  }
  for (const name of SETTINGS) {
    const value = values[name];
    if (value !== undefined) settings.set(name, { value, base: options.cwd, source: `--${name}` });
  }
  return { kind: "run", config: buildConfig(settings, options.cwd) };
}

function readConfigFile(file: string): Map<SettingName, string | readonly string[]> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError("invalid-config-file", `cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("invalid-config-file", `the config file ${file} is not JSON: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError("invalid-config-file", `the config file ${file} must hold a JSON object`);
  }
  const found = new Map<SettingName, string | readonly string[]>();
  for (const [key, value] of Object.entries(json)) {
    if (!(SETTINGS as readonly string[]).includes(key)) {
      throw new ConfigError("invalid-config-file", `unknown key "${key}" in the config file ${file} (known: ${SETTINGS.join(", ")})`);
    }
    const name = key as SettingName;
    const isStringList = Array.isArray(value) && value.every((v) => typeof v === "string");
    if (MS_SETTINGS.has(name) && typeof value === "number") {
      // A JSON number is the natural spelling of a duration; validated with the flags' text.
      found.set(name, String(value));
    } else if (typeof value === "string" || (LIST_SETTINGS.has(name) && isStringList)) {
      found.set(name, LIST_SETTINGS.has(name) && typeof value === "string" ? [value] : (value as string | string[]));
    } else {
      const expected = LIST_SETTINGS.has(name) ? "a string or an array of strings" : MS_SETTINGS.has(name) ? "a number or a string" : "a string";
      throw new ConfigError("invalid-config-file", `"${name}" in the config file ${file} must be ${expected}`);
    }
  }
  return found;
}

function buildConfig(settings: ReadonlyMap<SettingName, Setting>, cwd: string): HomeserverConfig {
  const single = (name: SettingName): (Setting & { value: string }) | undefined => {
    const setting = settings.get(name);
    if (setting === undefined) return undefined;
    // parseArgs gives the last of repeated single-valued flags; a config file cannot repeat keys.
    return setting as Setting & { value: string };
  };
  const list = (name: SettingName): { values: readonly string[]; setting: Setting | undefined } => {
    const setting = settings.get(name);
    return { values: setting === undefined ? [] : (setting.value as readonly string[]), setting };
  };
  const path = (setting: Setting, value: string): string => {
    if (value === "") throw invalid(setting, "an empty path");
    return resolve(setting.base, value);
  };

  const serverName = single("server-name");
  if (serverName !== undefined && !isValidServerName(serverName.value)) {
    throw invalid(serverName, `"${serverName.value}" is not a server name (host name, IPv4 or [IPv6] literal, optional :port)`);
  }

  const listenSetting = single("listen");
  let listen: ListenAddress = DEFAULTS.listen;
  if (listenSetting !== undefined) {
    const parsed = parseListenAddress(listenSetting.value);
    if (parsed === undefined) {
      throw invalid(listenSetting, `"${listenSetting.value}" is not HOST:PORT (or [IPv6]:PORT) with a port from 0 to 65535`);
    }
    listen = parsed;
  }

  const cert = single("tls-cert");
  const key = single("tls-key");
  if ((cert === undefined) !== (key === undefined)) {
    const given = (cert ?? key) as Setting;
    throw invalid(given, `TLS needs both --tls-cert and --tls-key (only ${given.source} was given)`);
  }

  const data = single("data");
  const dataDir = data === undefined ? resolve(cwd, DEFAULTS.dataDir) : path(data, data.value);

  const ca = list("federation-ca");
  const federationCaFiles = ca.values.map((file) => path(ca.setting as Setting, file));

  const allow = list("federation-allow-ip");
  for (const range of allow.values) {
    try {
      parseCidr(range);
    } catch (error) {
      if (!(error instanceof CidrParseError)) throw error;
      throw invalid(allow.setting as Setting, `"${range}" is not an IP address or CIDR range (e.g. 127.0.0.0/8, ::1/128)`);
    }
  }

  const wellKnown = single("well-known-server");
  if (wellKnown !== undefined && !isValidServerName(wellKnown.value)) {
    throw invalid(wellKnown, `"${wellKnown.value}" is not a server name`);
  }

  const level = single("log-level");
  if (level !== undefined && !isLogLevel(level.value)) {
    throw invalid(level, `"${level.value}" is not one of ${LOG_LEVELS.join(", ")}`);
  }

  const roomVersion = single("default-room-version");
  if (roomVersion !== undefined && findRoomVersion(roomVersion.value) === undefined) {
    throw invalid(roomVersion, `"${roomVersion.value}" is not a supported room version (${Object.keys(ROOM_VERSIONS).join(", ")})`);
  }

  const retryMin = milliseconds(single("federation-retry-min-ms"));
  const retryMax = milliseconds(single("federation-retry-max-ms"));
  const effectiveMin = retryMin?.ms ?? DEFAULTS.federationRetryMinMs;
  const effectiveMax = retryMax?.ms ?? DEFAULTS.federationRetryMaxMs;
  if (effectiveMin > effectiveMax) {
    const culprit = (retryMax ?? retryMin) as { setting: Setting };
    throw invalid(culprit.setting, `the first retry delay (${effectiveMin} ms) is longer than the longest (${effectiveMax} ms)`);
  }
  const poll = milliseconds(single("federation-poll-ms"));

  return {
    ...(serverName === undefined ? {} : { serverName: serverName.value }),
    listen,
    ...(cert === undefined || key === undefined ? {} : { tls: { certFile: path(cert, cert.value), keyFile: path(key, key.value) } }),
    dataDir,
    federationCaFiles,
    federationAllowIp: [...allow.values],
    ...(wellKnown === undefined ? {} : { wellKnownServer: wellKnown.value }),
    logLevel: level === undefined ? DEFAULTS.logLevel : (level.value as LogLevel),
    ...(roomVersion === undefined ? {} : { defaultRoomVersion: roomVersion.value }),
    ...(retryMin === undefined ? {} : { federationRetryMinMs: retryMin.ms }),
    ...(retryMax === undefined ? {} : { federationRetryMaxMs: retryMax.ms }),
    ...(poll === undefined ? {} : { federationPollMs: poll.ms }),
  };
}

/** Longest duration accepted (a year): anything longer is surely a typo. */
const MAX_MS = 365 * 24 * 60 * 60 * 1000;

/** A duration setting: a whole number of milliseconds from 1 to a year. */
function milliseconds(setting: (Setting & { value: string }) | undefined): { ms: number; setting: Setting } | undefined {
  if (setting === undefined) return undefined;
  const text = setting.value.trim();
  const ms = /^\d{1,12}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_MS) {
    throw invalid(setting, `"${setting.value}" is not a whole number of milliseconds from 1 to ${MAX_MS}`);
  }
  return { ms, setting };
}

function invalid(setting: Setting, problem: string): ConfigError {
  return new ConfigError("invalid-value", `${setting.source}: ${problem}`);
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parses `HOST:PORT` or `[IPv6]:PORT` (the port may be 0: any free port). The host is an
 * IPv4 literal, a host name, or an IPv6 literal in brackets. `undefined` when malformed.
 */
export function parseListenAddress(text: string): ListenAddress | undefined {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1 || text[close + 1] !== ":") return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) return undefined;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon === -1) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (isIP(host) === 6 || host.includes(":")) return undefined; // IPv6 needs brackets
    if (isIP(host) !== 4 && (!HOST_NAME.test(host) || /^[\d.]+$/.test(host))) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host, port };
}

/** `HOST:PORT`, with brackets around an IPv6 host: the inverse of {@link parseListenAddress}. */
export function formatListenAddress(address: ListenAddress): string {
  return `${isIP(address.host) === 6 ? `[${address.host}]` : address.host}:${address.port}`;
}
