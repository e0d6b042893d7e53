import { defineConfig } from "vitest/config";

// One vitest run over every workspace package. Sources are imported through the
// "@myelin/source" export condition, so tests never wait for a build.
export default defineConfig({
  resolve: { conditions: ["@myelin/source"] },
  ssr: { resolve: { conditions: ["@myelin/source"] } },
  test: {
    // tests/federation (three server processes) runs with `pnpm test:federation`;
    // tests/interop (a real Synapse) with `pnpm test:interop`.
    projects: ["packages/*", "apps/*", "tests/*", "!tests/federation", "!tests/interop"],
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
