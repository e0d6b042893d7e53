import { availableParallelism } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { encodeBase64 } from "@myelin/signing";
import { verifyTexts, type VerifySpec } from "./verify-lines.js";

/** Below this many documents, starting a worker costs more than it saves. */
const PARALLEL_THRESHOLD = 2000;

function runWorker(texts: string[], spec: VerifySpec, workerUrl: URL): Promise<string[]> {
  const keys = [...spec.keys].map(([id, key]) => [id, encodeBase64(key.publicKey)]);
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: { texts, server: spec.server, keys } });
    worker.once("message", (results: string[]) => resolve(results));
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`verify worker exited with code ${code}`));
    });
  });
}

/**
 * Verifies many documents, spreading them over the machine's cores: Ed25519 verification
 * is CPU-bound, and each worker thread runs its own native verifier. The calling thread
 * takes one slice itself. Results are in input order.
 */
export async function verifyInParallel(texts: string[], spec: VerifySpec): Promise<string[]> {
  const ext = extname(fileURLToPath(import.meta.url));
  // A worker runs this package's compiled JavaScript, or its TypeScript source when the
  // process was started with a TypeScript loader (tsx) that workers inherit.
  const runnable = ext === ".js" || process.execArgv.some((arg) => arg.includes("tsx"));
  const threads = runnable ? Math.min(availableParallelism(), 8) : 1;
  if (threads <= 1 || texts.length < PARALLEL_THRESHOLD) return verifyTexts(texts, spec);
  const size = Math.ceil(texts.length / threads);
  const workerUrl = new URL(`./verify-worker${ext}`, import.meta.url);
  const slices = Array.from({ length: threads }, (_, i) => texts.slice(i * size, (i + 1) * size));
  const pending = slices.slice(1).map((slice) => runWorker(slice, spec, workerUrl));
  const first = verifyTexts(slices[0] ?? [], spec);
  const rest = await Promise.all(pending);
  return first.concat(...rest);
}
