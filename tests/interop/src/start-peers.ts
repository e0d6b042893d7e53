/**
 * Debugging aid: starts one Synapse and one myelin-server as the suite does, creates a
 * user `alice` on each, prints how to reach them as JSON and runs until interrupted.
 * `pnpm --filter @myelin/test-interop start-peers` (after a build and the first suite run,
 * which installs Synapse).
 *
 * @module
 */

import { startPeers } from "./peers.js";
import { ensureSynapseVenv } from "./synapse.js";

await ensureSynapseVenv((line) => console.error(line));
const peers = await startPeers();
const synapseAlice = await peers.synapse.registerUser("alice");
const myelinAlice = await peers.myelin.registerUser("alice");
console.log(
  JSON.stringify(
    {
      dir: peers.dir,
      caFile: peers.caFile,
      synapse: { serverName: peers.synapse.serverName, url: peers.synapse.url, alice: synapseAlice },
      myelin: { serverName: peers.myelin.serverName, url: peers.myelin.url, alice: myelinAlice },
    },
    null,
    2,
  ),
);
const stop = (): void => {
  void peers.stop({ keepFiles: true }).then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
