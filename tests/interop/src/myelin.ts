/**
 * `myelin-server` as the other federation peer: the built executable, started the way an
 * operator starts it, with TLS from the same test CA as Synapse, that CA trusted for
 * outbound federation, and 127.0.0.0/8 allowed as a destination.
 *
 * @module
 */

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { parseSigningKeyFile, type SigningKey } from "@myelin/signing";
import type { TestCa } from "@myelin/test-support";
import { CsClient, type TestUser } from "@myelin/test-support";
import { ServerProcess, federationVersionStatus } from "./process.js";

const require = createRequire(import.meta.url);

/** `apps/server`: its `bin/myelin-server.js` runs `dist/run.js`. */
const SERVER_PACKAGE_DIR = dirname(require.resolve("@myelin/homeserver/package.json"));
/** The executable of the homeserver. */
export const MYELIN_SERVER_BIN = join(SERVER_PACKAGE_DIR, "bin", "myelin-server.js");

/** `apps/cli`: its `bin/myelin.js` runs `dist/`. */
const CLI_PACKAGE_DIR = dirname(require.resolve("@myelin/cli/package.json"));
/** The executable of the `myelin` command line. */
export const MYELIN_CLI_BIN = join(CLI_PACKAGE_DIR, "bin", "myelin.js");

/** Why a Myelin executable could not be used. */
export type MyelinFailure = "missing-build" | "user-add-failed";

/** Thrown by {@link MyelinPeer}; the message says what to do. */
export class MyelinPeerError extends Error {
  override readonly name = "MyelinPeerError";
  constructor(
    readonly reason: MyelinFailure,
    message: string,
  ) {
    super(message);
  }
}

/** The build outputs the suite runs; a missing one is reported before any server starts. */
export function missingBuilds(): string[] {
  return [join(SERVER_PACKAGE_DIR, "dist", "run.js"), join(CLI_PACKAGE_DIR, "dist", "run.js")].filter((file) => !existsSync(file));
}

/** What {@link MyelinPeer.create} takes. */
export interface MyelinPeerOptions {
  /** The listening port; the server name is `localhost:<port>`. */
  readonly port: number;
  /** The directory for this instance's files (created). */
  readonly dir: string;
  readonly ca: TestCa;
  readonly caFile: string;
  /** Readiness deadline; default 30 s. */
  readonly readyTimeoutMs?: number;
}

/** One `myelin-server` process: its name, address, users and log. */
export class MyelinPeer {
  readonly port: number;
  /** `localhost:<port>`. */
  readonly serverName: string;
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  readonly dataDir: string;
  readonly process: ServerProcess;
  private readonly caCert: string;

  private constructor(options: MyelinPeerOptions) {
    this.port = options.port;
    this.serverName = `localhost:${options.port}`;
    this.url = `https://127.0.0.1:${options.port}`;
    this.dataDir = join(options.dir, "data");
    this.caCert = options.ca.cert;
    this.process = new ServerProcess({
      label: `myelin-server ${this.serverName}`,
      command: process.execPath,
      args: [
        MYELIN_SERVER_BIN,
        "--server-name", this.serverName,
        "--listen", `127.0.0.1:${options.port}`,
        "--tls-cert", join(options.dir, "tls.crt"),
        "--tls-key", join(options.dir, "tls.key"),
        "--data", this.dataDir,
        "--federation-ca", options.caFile,
        "--federation-allow-ip", "127.0.0.0/8",
        "--log-level", "debug",
      ],
      cwd: options.dir,
      logFile: join(options.dir, "myelin.log"),
      ready: async () => (await federationVersionStatus(this.port, this.caCert)) === 200,
      readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    });
  }

  /** Writes the instance's certificate (does not start it; the server makes its own signing key). */
  static async create(options: MyelinPeerOptions): Promise<MyelinPeer> {
    const missing = missingBuilds();
    if (missing.length > 0) {
      throw new MyelinPeerError("missing-build", `not built: ${missing.join(", ")}; run \`pnpm --filter "@myelin/homeserver..." --filter "@myelin/cli..." build\``);
    }
    await mkdir(options.dir, { recursive: true });
    const leaf = options.ca.issue(["localhost", "127.0.0.1"]);
    await writeFile(join(options.dir, "tls.crt"), leaf.cert);
    await writeFile(join(options.dir, "tls.key"), leaf.key, { mode: 0o600 });
    return new MyelinPeer(options);
  }

  /** Starts the server and waits until it answers `GET /_matrix/federation/v1/version` over TLS. */
  start(): Promise<void> {
    return this.process.start();
  }

  /** Stops the server (SIGTERM). */
  stop(): Promise<void> {
    return this.process.stop();
  }

  /** The file holding the server's signing keys (created at its first start). */
  get signingKeyFile(): string {
    return join(this.dataDir, "signing.key");
  }

  /** The server's signing keys, read from its data directory. */
  async signingKeys(): Promise<SigningKey[]> {
    return parseSigningKeyFile(await readFile(this.signingKeyFile, "utf8"));
  }

  /**
   * Creates a local user with the server's own command line (`myelin-server user add NAME
   * --data DIR --server-name NAME`), which prints `{"user_id", "access_token", "device_id"}`.
   */
  async registerUser(localpart: string): Promise<TestUser> {
    const args = [MYELIN_SERVER_BIN, "user", "add", localpart, "--data", this.dataDir, "--server-name", this.serverName];
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, args, { timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
      });
    });
    this.process.note(`user add ${localpart}: exit ${result.code}`);
    let parsed: { user_id?: unknown; access_token?: unknown } | undefined;
    try {
      parsed = JSON.parse(result.stdout) as { user_id?: unknown; access_token?: unknown };
    } catch {
      parsed = undefined;
    }
    if (result.code !== 0 || typeof parsed?.user_id !== "string" || typeof parsed.access_token !== "string") {
      throw new MyelinPeerError(
        "user-add-failed",
        `\`myelin-server user add ${localpart}\` for ${this.serverName} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
      );
    }
    return { userId: parsed.user_id, accessToken: parsed.access_token };
  }

  /** A Client-Server API client for `user` on this server. */
  client(user: TestUser): CsClient {
    return new CsClient({ baseUrl: this.url, ca: this.caCert, accessToken: user.accessToken, userId: user.userId });
  }

  /** Creates a user and returns a client signed in as it. */
  async newClient(localpart: string): Promise<CsClient> {
    return this.client(await this.registerUser(localpart));
  }
}
