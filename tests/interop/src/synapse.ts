/**
 * A real, unmodified Synapse as a federation peer on loopback: the pinned release from PyPI
 * in a virtual environment under `.interop/`, one instance per test file with its own
 * server name (`localhost:<port>`), TLS certificate from the test CA, SQLite database and
 * log, and users registered through the shared-secret admin API.
 *
 * @module
 */

import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { encodePublicKey, formatSigningKeyFile, generateSigningKey, type SigningKey } from "@myelin/signing";
import type { TestCa } from "@myelin/test-support";
import { CsClient, type TestUser } from "@myelin/test-support";
import { ServerProcess, federationVersionStatus } from "./process.js";

/** The Synapse release every run uses (PyPI `matrix-synapse`), pinned exactly. */
export const SYNAPSE_VERSION = "1.163.2";

/** The repository root (this file is `tests/interop/src/synapse.ts`). */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Where the virtual environment lives; `.interop/` is ignored by git. */
export const SYNAPSE_VENV_DIR = join(REPO_ROOT, ".interop", "synapse-venv");

/** Every package of the venv, pinned (`pip freeze` of a working install), so installs repeat. */
export const SYNAPSE_CONSTRAINTS = resolve(dirname(fileURLToPath(import.meta.url)), "..", "synapse-constraints.txt");

/** The venv's Python interpreter. */
export const SYNAPSE_PYTHON = join(SYNAPSE_VENV_DIR, "bin", "python");

/** Why the virtual environment could not be made ready. */
export type SynapseVenvFailure = "no-python" | "venv-failed" | "install-failed" | "import-failed";

/** Thrown by {@link ensureSynapseVenv}; the message carries the failing command's output. */
export class SynapseVenvError extends Error {
  override readonly name = "SynapseVenvError";
  constructor(
    readonly reason: SynapseVenvFailure,
    message: string,
  ) {
    super(message);
  }
}

interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    // cwd outside the repository: Synapse's version string asks git about the working
    // directory, and would report Myelin's commit as its own.
    execFile(command, [...args], { timeout: timeoutMs, cwd: tmpdir(), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolvePromise({ code, stdout, stderr: error !== null && stderr === "" ? error.message : stderr });
    });
  });
}

/** Prints the installed `matrix-synapse` version after importing the homeserver module. */
const CHECK_SCRIPT = "import importlib.metadata, synapse.app.homeserver; print(importlib.metadata.version('matrix-synapse'))";

/**
 * Makes sure `.interop/synapse-venv` holds Synapse {@link SYNAPSE_VERSION} and that
 * `synapse.app.homeserver` imports; creates the venv and installs the pinned release from
 * PyPI (prebuilt wheels only for Synapse itself: no Rust toolchain; every dependency pinned
 * by `synapse-constraints.txt`) when it does not.
 * Returns the installed version. Takes about a minute the first time, nothing afterwards.
 *
 * @throws {@link SynapseVenvError}
 */
export async function ensureSynapseVenv(log: (line: string) => void = () => {}): Promise<string> {
  if (existsSync(SYNAPSE_PYTHON)) {
    const check = await run(SYNAPSE_PYTHON, ["-c", CHECK_SCRIPT], 120_000);
    if (check.code === 0 && check.stdout.trim() === SYNAPSE_VERSION) return SYNAPSE_VERSION;
    log(`synapse venv at ${SYNAPSE_VENV_DIR} is not ready (${check.code === 0 ? `version ${check.stdout.trim()}` : "import failed"}): installing ${SYNAPSE_VERSION}`);
  } else {
    const python = process.env["PYTHON"] ?? "python3";
    log(`creating ${SYNAPSE_VENV_DIR} with ${python} and installing matrix-synapse==${SYNAPSE_VERSION} from PyPI`);
    await mkdir(dirname(SYNAPSE_VENV_DIR), { recursive: true });
    const venv = await run(python, ["-m", "venv", SYNAPSE_VENV_DIR], 120_000);
    if (venv.code !== 0) {
      const reason = /ENOENT|not found/.test(venv.stderr) ? "no-python" : "venv-failed";
      throw new SynapseVenvError(reason, `\`${python} -m venv ${SYNAPSE_VENV_DIR}\` failed (exit ${venv.code}):\n${venv.stderr}`);
    }
  }
  const install = await run(
    SYNAPSE_PYTHON,
    // --only-binary: Synapse's wheel carries its Rust extension prebuilt; never fall back to
    // building it (that needs a Rust toolchain and takes minutes).
    ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=matrix-synapse", "-c", SYNAPSE_CONSTRAINTS, `matrix-synapse==${SYNAPSE_VERSION}`],
    900_000,
  );
  if (install.code !== 0) {
    throw new SynapseVenvError("install-failed", `pip install matrix-synapse==${SYNAPSE_VERSION} failed (exit ${install.code}):\n${install.stderr}\n${install.stdout}`);
  }
  const check = await run(SYNAPSE_PYTHON, ["-c", CHECK_SCRIPT], 120_000);
  if (check.code !== 0 || check.stdout.trim() !== SYNAPSE_VERSION) {
    throw new SynapseVenvError(
      "import-failed",
      `after installing, \`import synapse.app.homeserver\` ${check.code === 0 ? `reports version ${check.stdout.trim()}` : `failed:\n${check.stderr}`}`,
    );
  }
  return SYNAPSE_VERSION;
}

/** What {@link SynapsePeer.create} takes. */
export interface SynapsePeerOptions {
  /** The TLS (federation and client) port; the server name is `localhost:<port>`. */
  readonly port: number;
  /** The directory for this instance's files (created). */
  readonly dir: string;
  /** The test CA: issues Synapse's certificate, and is the only CA it trusts for federation. */
  readonly ca: TestCa;
  /** The CA certificate as a file. */
  readonly caFile: string;
  /** Readiness deadline; default 90 s (Synapse's first start creates its database). */
  readonly readyTimeoutMs?: number;
}

/**
 * The homeserver.yaml of a loopback test peer, as a JSON object (JSON is YAML, so it is
 * written as JSON). Every setting away from Synapse's defaults says why.
 */
export function synapseConfig(options: { serverName: string; port: number; dir: string; caFile: string; sharedSecret: string }): Record<string, unknown> {
  const { dir } = options;
  const generous = { per_second: 1000, burst_count: 10_000 };
  return {
    server_name: options.serverName,
    // Synapse refuses to start without an explicit answer.
    report_stats: false,
    pid_file: join(dir, "homeserver.pid"),
    signing_key_path: join(dir, "signing.key"),
    listeners: [
      {
        // One TLS listener on the server name's port serves federation and the
        // Client-Server API (which includes /_synapse/admin), like myelin-server's.
        port: options.port,
        type: "http",
        tls: true,
        bind_addresses: ["127.0.0.1"],
        x_forwarded: false,
        resources: [{ names: ["client", "federation"], compress: false }],
      },
    ],
    tls_certificate_path: join(dir, "tls.crt"),
    tls_private_key_path: join(dir, "tls.key"),
    database: { name: "sqlite3", args: { database: join(dir, "homeserver.db") } },
    media_store_path: join(dir, "media_store"),
    // Certificates are verified, against the test CA only (it replaces the system roots).
    federation_verify_certificates: true,
    federation_custom_ca_list: [options.caFile],
    // Outbound requests to 127.0.0.0/8 are refused by default; the test peer lives there.
    ip_range_whitelist: ["127.0.0.0/8", "::1/128"],
    // Fetch every key from its origin server; never contact matrix.org.
    trusted_key_servers: [],
    suppress_key_server_warning: true,
    registration_shared_secret: options.sharedSecret,
    enable_registration: false,
    // The scenarios send bursts of events, invites and joins that the defaults would throttle.
    rc_message: generous,
    rc_registration: generous,
    rc_login: { address: generous, account: generous, failed_attempts: generous },
    rc_joins: { local: generous, remote: generous },
    rc_joins_per_room: generous,
    rc_invites: { per_room: generous, per_user: generous, per_issuer: generous },
    rc_room_creation: generous,
    rc_profile: generous,
    rc_admin_redaction: generous,
    rc_federation: { window_size: 1000, sleep_limit: 1000, sleep_delay: 100, reject_limit: 10_000, concurrent: 100 },
  };
}

/** One Synapse process: its name, address, users and log. */
export class SynapsePeer {
  readonly port: number;
  /** `localhost:<port>`. */
  readonly serverName: string;
  /** `https://127.0.0.1:<port>` (the certificate names `localhost` and `127.0.0.1`). */
  readonly url: string;
  readonly dir: string;
  /** The signing key the harness wrote for it, so tests know which key to expect. */
  readonly signingKey: SigningKey;
  readonly process: ServerProcess;
  private readonly caCert: string;
  private readonly sharedSecret: string;

  private constructor(options: SynapsePeerOptions, signingKey: SigningKey, sharedSecret: string) {
    this.port = options.port;
    this.serverName = `localhost:${options.port}`;
    this.url = `https://127.0.0.1:${options.port}`;
    this.dir = options.dir;
    this.signingKey = signingKey;
    this.caCert = options.ca.cert;
    this.sharedSecret = sharedSecret;
    this.process = new ServerProcess({
      label: `synapse ${this.serverName}`,
      command: SYNAPSE_PYTHON,
      args: ["-m", "synapse.app.homeserver", "--config-path", join(options.dir, "homeserver.yaml")],
      cwd: options.dir,
      // Unbuffered, so the log is complete when a test reads it.
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
      logFile: join(options.dir, "synapse.log"),
      ready: async () => (await federationVersionStatus(this.port, this.caCert)) === 200,
      readyTimeoutMs: options.readyTimeoutMs ?? 90_000,
    });
  }

  /** Writes the instance's certificate, signing key and configuration (does not start it). */
  static async create(options: SynapsePeerOptions): Promise<SynapsePeer> {
    await mkdir(join(options.dir, "media_store"), { recursive: true });
    const serverName = `localhost:${options.port}`;
    const leaf = options.ca.issue(["localhost", "127.0.0.1"]);
    await writeFile(join(options.dir, "tls.crt"), leaf.cert);
    await writeFile(join(options.dir, "tls.key"), leaf.key, { mode: 0o600 });
    // Synapse's key file format is ours: `ed25519 <version> <unpadded base64 seed>`.
    const signingKey = generateSigningKey();
    await writeFile(join(options.dir, "signing.key"), formatSigningKeyFile([signingKey]), { mode: 0o600 });
    const sharedSecret = randomBytes(24).toString("hex");
    const config = synapseConfig({ serverName, port: options.port, dir: options.dir, caFile: options.caFile, sharedSecret });
    await writeFile(join(options.dir, "homeserver.yaml"), `${JSON.stringify(config, null, 2)}\n`);
    return new SynapsePeer(options, signingKey, sharedSecret);
  }

  /** The public half of {@link signingKey}, unpadded base64 (as `/_matrix/key/v2/server` shows it). */
  get publicKey(): string {
    return encodePublicKey(this.signingKey);
  }

  /** Starts Synapse and waits until it answers `GET /_matrix/federation/v1/version` over TLS. */
  start(): Promise<void> {
    return this.process.start();
  }

  /** Stops Synapse (SIGTERM). */
  stop(): Promise<void> {
    return this.process.stop();
  }

  /**
   * Registers a local user through the shared-secret admin API
   * (`/_synapse/admin/v1/register`: a one-time nonce, then an HMAC-SHA1 of
   * nonce, user, password and admin flag, NUL-separated).
   */
  async registerUser(localpart: string, options: { admin?: boolean; displayname?: string } = {}): Promise<TestUser> {
    const admin = options.admin ?? false;
    const anonymous = new CsClient({ baseUrl: this.url, ca: this.caCert, accessToken: "", userId: "(registration)" });
    try {
      const { nonce } = await anonymous.raw<{ nonce: string }>("GET", "/_synapse/admin/v1/register");
      const password = randomBytes(12).toString("hex");
      const mac = createHmac("sha1", this.sharedSecret)
        .update([nonce, localpart, password, admin ? "admin" : "notadmin"].join("\0"))
        .digest("hex");
      const answer = await anonymous.raw<{ user_id: string; access_token: string }>("POST", "/_synapse/admin/v1/register", {
        body: { nonce, username: localpart, password, admin, mac, ...(options.displayname === undefined ? {} : { displayname: options.displayname }) },
      });
      return { userId: answer.user_id, accessToken: answer.access_token };
    } finally {
      anonymous.close();
    }
  }

  /** A Client-Server API client for `user` on this Synapse. */
  client(user: TestUser): CsClient {
    return new CsClient({ baseUrl: this.url, ca: this.caCert, accessToken: user.accessToken, userId: user.userId });
  }

  /** Registers a user and returns a client signed in as it. */
  async newClient(localpart: string, options: { admin?: boolean } = {}): Promise<CsClient> {
    return this.client(await this.registerUser(localpart, options));
  }
}
