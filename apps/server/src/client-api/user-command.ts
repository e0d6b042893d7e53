/**
 * `myelin-server user add NAME [--data DIR] [--server-name NAME] [--admin]`: creates a local
 * user in the data directory's database and prints `{"user_id", "access_token",
 * "device_id"}` as one JSON line on stdout (test harnesses read it).
 *
 * It works whether or not the server is running: the database is SQLite in WAL mode, which
 * lets a second process write between the server's transactions.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { MatrixError, isValidServerName } from "@myelin/types";
import { DATABASE_FILE } from "../app.js";
import { DataDirError, SERVER_NAME_FILE, openDataDir } from "../data-dir.js";
import type { LineSink } from "../log.js";
import { openSqliteStorage } from "../storage/storage.js";
import { registerLocalUser } from "./users.js";

/** What {@link runUserCommand} needs from the process. */
export interface UserCommandIo {
  readonly stdout: LineSink;
  readonly stderr: LineSink;
  readonly cwd: string;
}

/** Usage of the `user` subcommand. */
export const USER_USAGE = `Usage: myelin-server user add NAME [--data DIR] [--server-name NAME] [--admin]

Creates the local user @NAME:<server name> with a device and an access token, and prints
{"user_id": ..., "access_token": ..., "device_id": ...} on stdout. The server name is the
one recorded in the data directory (--data, default ./myelin-data); on a new data directory
pass --server-name. Works while the server runs.
`;

/**
 * Runs `user ...` (the arguments after `user`) and returns the exit code: 0 on success, 2
 * for a usage error, 1 when the user cannot be created (exists, invalid name, data
 * directory refused).
 */
export async function runUserCommand(argv: readonly string[], io: UserCommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { data: { type: "string" }, "server-name": { type: "string" }, admin: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    return usage(io, (error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stdout.write(USER_USAGE);
    return 0;
  }
  if (positionals[0] !== "add" || positionals.length !== 2) return usage(io, "expected: user add NAME");
  const name = positionals[1] as string;
  const dataDir = resolve(io.cwd, values.data ?? "myelin-data");
  const flagName = values["server-name"];
  if (flagName !== undefined && !isValidServerName(flagName)) return usage(io, `--server-name: "${flagName}" is not a server name`);

  let serverName = flagName;
  if (serverName === undefined) {
    try {
      serverName = (await readFile(join(dataDir, SERVER_NAME_FILE), "utf8")).trim();
    } catch {
      return usage(io, `no server name is recorded in ${dataDir}: pass --server-name`);
    }
  }
  try {
    // Checks (or records) the name the data belongs to, exactly as the server does.
    await openDataDir(dataDir, serverName);
  } catch (error) {
    if (!(error instanceof DataDirError)) throw error;
    io.stderr.write(`myelin-server: ${error.message}\n`);
    return 1;
  }
  if (values.admin === true) {
    io.stderr.write("myelin-server: --admin: admin accounts are not recorded yet (nothing is admin-only); created a regular user\n");
  }
  const storage = await openSqliteStorage(join(dataDir, DATABASE_FILE));
  try {
    const user = await registerLocalUser(storage, { localpart: name, serverName });
    io.stdout.write(`${JSON.stringify(user)}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof MatrixError)) throw error;
    io.stderr.write(`myelin-server: ${error.errcode}: ${error.message}\n`);
    return 1;
  } finally {
    await storage.close();
  }
}

function usage(io: UserCommandIo, problem: string): number {
  io.stderr.write(`myelin-server: ${problem}\n${USER_USAGE}`);
  return 2;
}
