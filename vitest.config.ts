import { defineConfig } from "vitest/config";

// One vitest run over every workspace package. Sources are imported through the
// "@myelin/source" export condition, so tests never wait for a build.
export default defineConfig({
  resolve: { conditions: ["@myelin/source"] },
  ssr: { resolve: { conditions: ["@myelin/source"] } },
  test: {
    // tests/interop needs a Synapse installed from PyPI: it runs with `pnpm test:interop`.
    projects: ["packages/*", "apps/*", "tests/*", "!tests/interop"],
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
