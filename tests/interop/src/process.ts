/**
 * One long-running server process under test (Synapse or `myelin-server`): started with
 * its output appended to a log file, ready once a probe says so, stopped with SIGTERM
 * (SIGKILL after a grace period), and killed whatever happens when the test worker exits.
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import * as https from "node:https";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { trackChildProcess } from "@myelin/test-support";

/** Why a server process did not do what the harness asked. */
export type ProcessFailure = "exited-early" | "not-ready" | "already-running";

/** Thrown by {@link ServerProcess.start}; the message names the process and carries its log tail. */
export class ServerProcessError extends Error {
  override readonly name = "ServerProcessError";
  constructor(
    readonly reason: ProcessFailure,
    message: string,
  ) {
    super(message);
  }
}

/** How to run one server. */
export interface ServerProcessOptions {
  /** Shown in messages and log notes: `synapse localhost:8481`. */
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Every line the process writes (stdout and stderr, all runs) plus harness notes. */
  readonly logFile: string;
  /** Resolves `true` when the server is ready; throwing or `false` means "not yet". */
  readonly ready: () => Promise<boolean>;
  readonly readyTimeoutMs: number;
  /** How long SIGTERM may take before SIGKILL. */
  readonly stopGraceMs?: number;
}

/** A server process that can be started, stopped and started again with the same arguments. */
export class ServerProcess {
  readonly options: ServerProcessOptions;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private log: WriteStream | undefined;
  private runs = 0;

  constructor(options: ServerProcessOptions) {
    this.options = options;
  }

  /** Whether the process is running (started and not yet exited). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and waits until {@link ServerProcessOptions.ready} says it is ready. */
  async start(): Promise<void> {
    const { label, command, args, cwd, readyTimeoutMs } = this.options;
    if (this.running) throw new ServerProcessError("already-running", `${label} is already running`);
    this.runs++;
    this.log ??= createWriteStream(this.options.logFile, { flags: "a" });
    this.note(`starting (run ${this.runs}): ${command} ${args.join(" ")}`);
    const child = spawn(command, [...args], { cwd, env: this.options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    trackChildProcess(child);
    child.stdout?.on("data", (chunk: Buffer) => this.log?.write(chunk));
    child.stderr?.on("data", (chunk: Buffer) => this.log?.write(chunk));
    this.exited = new Promise<void>((resolve) =>
      child.once("close", (code, signal) => {
        this.note(`exited (code ${code ?? "-"}, signal ${signal ?? "-"})`);
        resolve();
      }),
    );
    const started = Date.now();
    let lastProblem = "no answer yet";
    while (Date.now() - started < readyTimeoutMs) {
      if (!this.running) {
        throw new ServerProcessError("exited-early", `${label} exited before it was ready\n${await this.logTail()}`);
      }
      try {
        if (await this.options.ready()) {
          this.note(`ready after ${Date.now() - started} ms`);
          return;
        }
        lastProblem = "probe said not ready";
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      await sleep(200);
    }
    await this.kill();
    throw new ServerProcessError("not-ready", `${label} was not ready within ${readyTimeoutMs} ms (${lastProblem})\n${await this.logTail()}`);
  }

  /** Stops the process with SIGTERM, SIGKILL after the grace period; a stopped process is left alone. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const grace = this.options.stopGraceMs ?? 15_000;
    this.note("stopping with SIGTERM");
    this.child?.kill("SIGTERM");
    const timer = setTimeout(() => {
      this.note(`still running ${grace} ms after SIGTERM: SIGKILL`);
      this.child?.kill("SIGKILL");
    }, grace);
    await this.exited;
    clearTimeout(timer);
  }

  /** Sends SIGKILL and waits until the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.note("killing with SIGKILL");
    this.child?.kill("SIGKILL");
    await this.exited;
  }

  /** The last `lines` lines of the log, headed with the label and the log file's path. */
  async logTail(lines = 80): Promise<string> {
    let text: string;
    try {
      text = await readFile(this.options.logFile, "utf8");
    } catch {
      text = "(no log file)";
    }
    const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
    return `---- ${this.options.label}: last ${lines} lines of ${this.options.logFile} ----\n${tail}`;
  }

  /** Writes a timestamped harness line into the log. */
  note(text: string): void {
    this.log?.write(`${new Date().toISOString()} HARNESS ${text}\n`);
  }

  /** Closes the log file (after the process is gone). */
  async closeLog(): Promise<void> {
    const log = this.log;
    this.log = undefined;
    if (log !== undefined) await new Promise<void>((resolve) => log.end(() => resolve()));
  }
}

/**
 * Picks `count` distinct free TCP ports on 127.0.0.1 by binding them all at once and
 * releasing them. A port taken by someone else before the server binds it shows up as the
 * server exiting early, with "address in use" in its log.
 */
export async function pickFreePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer();
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      return server;
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/**
 * `GET https://127.0.0.1:PORT/_matrix/federation/v1/version` with SNI `localhost`,
 * trusting only `ca`: the status code (the readiness probe of both servers).
 */
export function federationVersionStatus(port: number, ca: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port, path: "/_matrix/federation/v1/version", ca, servername: "localhost", agent: false, timeout: 2000 },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
