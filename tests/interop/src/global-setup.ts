/**
 * Runs once before the interop files: makes sure the pinned Synapse is installed in
 * `.interop/synapse-venv` (installing it from PyPI when missing) and that the Myelin
 * executables are built, so each file fails fast with a clear message otherwise.
 *
 * @module
 */

import { missingBuilds } from "./myelin.js";
import { ensureSynapseVenv, SYNAPSE_VENV_DIR } from "./synapse.js";

/** Vitest's global setup hook. */
export default async function setup(): Promise<void> {
  const missing = missingBuilds();
  if (missing.length > 0) {
    throw new Error(`not built: ${missing.join(", ")}; run \`pnpm --filter "@myelin/homeserver..." --filter "@myelin/cli..." build\` (pnpm test:interop does)`);
  }
  const started = Date.now();
  const version = await ensureSynapseVenv((line) => console.log(`interop: ${line}`));
  console.log(`interop: Synapse ${version} ready in ${SYNAPSE_VENV_DIR} (${Date.now() - started} ms)`);
}
