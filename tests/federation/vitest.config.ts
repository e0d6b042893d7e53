import { defineProject } from "vitest/config";

// Each test file starts its own cluster of myelin-server processes; running files one at a
// time keeps the machine (and the servers' timing) calm. Waits inside tests are bounded
// by their own deadlines, so the per-test timeout only catches a harness that hangs.
export default defineProject({
  resolve: { conditions: ["@myelin/source"] },
  ssr: { resolve: { conditions: ["@myelin/source"] } },
  test: {
    name: "federation",
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
