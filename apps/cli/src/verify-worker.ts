// Worker thread for `myelin json verify --jsonl`: loads the verifier as soon as it starts,
// then claims and verifies chunks of the shared input (see parallel-verify.ts).
import { parentPort, workerData } from "node:worker_threads";
import { decodeBase64, getEd25519Backend } from "@myelin/signing";
import { verifyChunks, type ChunkedInput } from "./parallel-verify.js";

interface Setup {
  server: string;
  keys: [string, string][];
}

// Load the native verifier now, while the main thread is still reading the input.
getEd25519Backend();
const setup = workerData as Setup;
const spec = {
  server: setup.server,
  keys: new Map(setup.keys.map(([id, b64]) => [id, { publicKey: decodeBase64(b64) }] as const)),
};
parentPort?.once("message", (input: ChunkedInput) => {
  verifyChunks(input, spec, (result) => parentPort?.postMessage(result));
});
