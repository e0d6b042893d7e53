/**
 * Vitest wiring for a cluster per test file: started in `beforeAll`, stopped in
 * `afterAll`, and when anything in the file failed, every server's log tail is printed
 * and the files (data, logs) are kept for reading.
 *
 * @module
 */

import type { RunnerTask } from "vitest";
import { afterAll, beforeAll } from "vitest";
import type { Cluster, ClusterOptions } from "./harness.js";
import { startCluster } from "./harness.js";

/**
 * Registers the hooks and returns a getter for the running cluster (valid inside tests
 * and later hooks). Call at the top level of a test file.
 */
export function useCluster(options: ClusterOptions): () => Cluster {
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    cluster = await startCluster(options);
  });

  // Vitest reads the first parameter as a fixture list, so it must be a destructuring pattern.
  afterAll(async ({}, file) => {
    if (cluster === undefined) return;
    // Nested suites have finished here; a failed test, a failed nested beforeAll and a failed
    // beforeAll of the file itself (marked on the file as it happens) all show.
    const failed = hasFailed(file);
    if (failed) {
      console.error(`federation cluster logs (files kept in ${cluster.dir}):\n${await cluster.logTails()}`);
    }
    await cluster.stop({ keepFiles: failed });
  });

  return () => {
    if (cluster === undefined) throw new Error("the cluster is not running (did beforeAll fail?)");
    return cluster;
  };
}

function hasFailed(task: RunnerTask): boolean {
  if (task.result?.state === "fail") return true;
  return task.type === "suite" && task.tasks.some(hasFailed);
}
