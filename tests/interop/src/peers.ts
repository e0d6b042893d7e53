/**
 * One Synapse and one `myelin-server` federating over TLS on loopback: a test CA, a
 * directory under the system temp directory, two `localhost:<port>` server names, both
 * processes started and ready. {@link usePeers} wires them into a test file's hooks.
 *
 * @module
 */

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunnerTask } from "vitest";
import { afterAll, beforeAll } from "vitest";
import { createTestCa, type TestCa } from "@myelin/test-support";
import { MyelinPeer } from "./myelin.js";
import { pickFreePorts } from "./process.js";
import { SynapsePeer } from "./synapse.js";

/** The two servers of a test file, sharing one test CA. */
export interface Peers {
  readonly ca: TestCa;
  /** The CA certificate file both servers trust for federation. */
  readonly caFile: string;
  /** The directory holding both servers' certificates, data and logs. */
  readonly dir: string;
  readonly synapse: SynapsePeer;
  readonly myelin: MyelinPeer;
  /** The log tails of both servers, for a failure report. */
  logTails(lines?: number): Promise<string>;
  /** Stops both servers; removes the directory unless `keepFiles`. */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
}

/** Creates and starts both servers (in parallel); on failure stops what started and keeps the files. */
export async function startPeers(): Promise<Peers> {
  const dir = await mkdtemp(join(tmpdir(), "myelin-interop-"));
  const ca = createTestCa("Myelin interop test CA");
  const caFile = join(dir, "ca.crt");
  await writeFile(caFile, ca.cert);
  const [synapsePort, myelinPort] = (await pickFreePorts(2)) as [number, number];
  await mkdir(join(dir, "synapse"), { recursive: true });
  const synapse = await SynapsePeer.create({ port: synapsePort, dir: join(dir, "synapse"), ca, caFile });
  const myelin = await MyelinPeer.create({ port: myelinPort, dir: join(dir, "myelin"), ca, caFile });
  const peers: Peers = {
    ca,
    caFile,
    dir,
    synapse,
    myelin,
    async logTails(lines) {
      return `${await synapse.process.logTail(lines)}\n${await myelin.process.logTail(lines)}`;
    },
    async stop(options = {}) {
      await Promise.all([synapse.stop(), myelin.stop()]);
      await Promise.all([synapse.process.closeLog(), myelin.process.closeLog()]);
      if (options.keepFiles !== true) await rm(dir, { recursive: true, force: true });
    },
  };
  const started = await Promise.allSettled([synapse.start(), myelin.start()]);
  const failures = started.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length > 0) {
    await peers.stop({ keepFiles: true });
    throw new Error(`the peers did not start (files kept in ${dir}):\n${failures.map((f) => (f.reason as Error).message).join("\n")}`);
  }
  return peers;
}

/**
 * Registers `beforeAll`/`afterAll` hooks that start the peers and stop them, and returns a
 * getter for them. When anything in the file failed, both log tails are printed and the
 * files (logs, databases, configuration) are kept; the path is printed.
 */
export function usePeers(): () => Peers {
  let peers: Peers | undefined;
  beforeAll(async () => {
    peers = await startPeers();
  });
  // Vitest reads the first parameter as a fixture list, so it must be a destructuring pattern.
  afterAll(async ({}, file) => {
    if (peers === undefined) return;
    const failed = hasFailed(file);
    if (failed) console.error(`interop logs (files kept in ${peers.dir}):\n${await peers.logTails()}`);
    await peers.stop({ keepFiles: failed });
  });
  return () => {
    if (peers === undefined) throw new Error("the peers are not running (did beforeAll fail?)");
    return peers;
  };
}

function hasFailed(task: RunnerTask): boolean {
  if (task.result?.state === "fail") return true;
  return task.type === "suite" && task.tasks.some(hasFailed);
}
