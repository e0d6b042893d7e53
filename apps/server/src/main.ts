/**
 * The command line, short of the process itself: parses the flags, starts the homeserver
 * and says where it listens, or says why it cannot.
 *
 * @module
 */

import type { Homeserver, HomeserverInfo } from "./app.js";
import { HOMESERVER_VERSION, HomeserverStartError, createHomeserver } from "./app.js";
import { runUserCommand } from "./client-api/user-command.js";
import { ConfigError, USAGE, parseCommandLine } from "./config.js";
import { DataDirError } from "./data-dir.js";
import type { LineSink } from "./log.js";
import { createLogger } from "./log.js";

/** What the command line runs against. */
export interface CommandIo {
  readonly stdout: LineSink;
  readonly stderr: LineSink;
  /** Relative paths of flags are resolved against it. */
  readonly cwd: string;
}

/** The outcome of {@link launch}. */
export type LaunchOutcome =
  /** Nothing to serve (help, version) or a refusal: exit with this code. */
  | { readonly kind: "exit"; readonly code: number }
  /** Serving until stopped. */
  | { readonly kind: "running"; readonly homeserver: Homeserver; readonly info: HomeserverInfo };

/** Exit code for a usage or configuration error. */
export const EXIT_USAGE = 2;
/** Exit code when the server cannot start (data directory, files, port). */
export const EXIT_START_FAILED = 1;

/**
 * Runs `myelin-server` with `argv`: `user ...` runs the user subcommand (see
 * `runUserCommand`) and exits; `--help` and `--version` print and exit 0; a flag or
 * config error prints it and exits 2; a start failure (refused data directory, unreadable
 * file, port taken) exits 1; otherwise the server runs and its address is printed as
 * `myelin-server: <server name> listening on <url> (data: <dir>)`.
 */
export async function launch(argv: readonly string[], io: CommandIo): Promise<LaunchOutcome> {
  // `myelin-server user add NAME ...`: manage local users, then exit.
  if (argv[0] === "user") return { kind: "exit", code: await runUserCommand(argv.slice(1), io) };
  let command;
  try {
    command = parseCommandLine(argv, { cwd: io.cwd });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr.write(`myelin-server: ${error.message}\nTry 'myelin-server --help'.\n`);
    return { kind: "exit", code: EXIT_USAGE };
  }
  if (command.kind === "help") {
    io.stdout.write(USAGE);
    return { kind: "exit", code: 0 };
  }
  if (command.kind === "version") {
    io.stdout.write(`myelin-server ${HOMESERVER_VERSION}\n`);
    return { kind: "exit", code: 0 };
  }

  const logger = createLogger({ level: command.config.logLevel, stdout: io.stdout, stderr: io.stderr });
  const homeserver = createHomeserver(command.config, { logger });
  let info: HomeserverInfo;
  try {
    info = await homeserver.start();
  } catch (error) {
    if (!(error instanceof HomeserverStartError || error instanceof DataDirError)) throw error;
    io.stderr.write(`myelin-server: ${error.message}\n`);
    return { kind: "exit", code: EXIT_START_FAILED };
  }
  io.stdout.write(`myelin-server: ${info.serverName} listening on ${info.address.url} (data: ${info.dataDir})\n`);
  return { kind: "running", homeserver, info };
}
