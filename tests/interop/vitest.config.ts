import { defineConfig } from "vitest/config";

// Each test file starts one Synapse and one myelin-server (beforeAll) and stops them
// (afterAll). Files run one at a time: the machine has few cores and Synapse's timing
// (federation retries, backoff) is what the scenarios observe. Every wait inside a test is
// bounded by its own deadline and names what it waited for; the per-test timeout only
// catches a harness that hangs.
// Run on its own (`pnpm test:interop`), not as a project of the root run, so it has its own
// reporters: the plain closing line `tests: N passed, N failed, N skipped` for CI.
export default defineConfig({
  resolve: { conditions: ["@myelin/source"] },
  ssr: { resolve: { conditions: ["@myelin/source"] } },
  test: {
    name: "interop",
    globalSetup: ["./src/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 300_000,
    reporters: ["default", "../../scripts/summary-reporter.ts"],
  },
});
