// Worker thread for `myelin json verify --jsonl`: loads the verifier as soon as it starts,
// then verifies the byte range of the shared input it is sent.
import { parentPort, workerData } from "node:worker_threads";
import { decodeBase64, getEd25519Backend } from "@myelin/signing";
import { verifyRange } from "./verify-lines.js";

interface Setup {
  server: string;
  keys: [string, string][];
}
interface Job {
  bytes: Uint8Array;
  start: number;
  end: number;
  firstLine: number;
}

// Load the native verifier now, while the main thread is still reading the input.
getEd25519Backend();
const setup = workerData as Setup;
const spec = {
  server: setup.server,
  keys: new Map(setup.keys.map(([id, b64]) => [id, { publicKey: decodeBase64(b64) }] as const)),
};
parentPort?.once("message", (job: Job) => {
  parentPort?.postMessage(verifyRange(job.bytes, job.start, job.end, job.firstLine, spec));
});
