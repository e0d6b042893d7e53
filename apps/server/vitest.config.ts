import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@myelin/source"] },
  ssr: { resolve: { conditions: ["@myelin/source"] } },
  test: { name: "homeserver" },
});
