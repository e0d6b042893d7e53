import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { encodeBase64 } from "@myelin/signing";
import { verifyRange, type LineResult, type VerifySpec } from "./verify-lines.js";

/** Below this many bytes of input, starting a worker costs more than it saves. */
const PARALLEL_THRESHOLD_BYTES = 1 << 20;

/** Worker threads this process may use for verification (1 = the calling thread only). */
function usableThreads(): number {
  // Workers run the compiled JavaScript (dist/); from TypeScript sources, as in unit tests,
  // there is nothing a worker thread could load, so verification stays on this thread.
  return import.meta.url.endsWith(".js") ? Math.min(availableParallelism(), 8) : 1;
}

/** A verification worker, started early so that it loads while the input is read. */
class VerifyWorker {
  private readonly worker: Worker;
  private readonly result: Promise<LineResult[]>;

  constructor(spec: VerifySpec) {
    const url = new URL("./verify-worker.js", import.meta.url);
    const keys = [...spec.keys].map(([id, key]) => [id, encodeBase64(key.publicKey)]);
    this.worker = new Worker(url, { workerData: { server: spec.server, keys } });
    this.result = new Promise((resolve, reject) => {
      this.worker.once("message", resolve);
      this.worker.once("error", reject);
      this.worker.once("exit", (code) => reject(new Error(`verify worker exited with code ${code}`)));
    });
  }

  run(bytes: Uint8Array, start: number, end: number, firstLine: number): Promise<LineResult[]> {
    this.worker.postMessage({ bytes, start, end, firstLine });
    return this.result;
  }

  stop(): void {
    void this.worker.terminate();
  }
}

/**
 * Verifies JSON Lines input, spreading it over the machine's cores: Ed25519 verification
 * is CPU-bound, and each worker thread runs its own native verifier. The input bytes are
 * shared with the workers (no copy per line); the calling thread takes one slice itself.
 *
 * `expectedBytes` (the file size, when known before reading) lets workers start while the
 * input is still being read. Results are in input order, one per non-blank line.
 */
export async function verifyJsonLines(
  read: () => Promise<Buffer>,
  spec: VerifySpec,
  expectedBytes?: number,
): Promise<LineResult[]> {
  const threads = usableThreads();
  const early = threads > 1 && expectedBytes !== undefined && expectedBytes >= PARALLEL_THRESHOLD_BYTES;
  const workers = early ? Array.from({ length: threads - 1 }, () => new VerifyWorker(spec)) : [];
  try {
    const input = await read();
    if (workers.length === 0 && threads > 1 && input.length >= PARALLEL_THRESHOLD_BYTES) {
      for (let i = 1; i < threads; i++) workers.push(new VerifyWorker(spec));
    }
    if (workers.length === 0) return verifyRange(input, 0, input.length, 1, spec);

    const shared = new Uint8Array(new SharedArrayBuffer(input.length));
    shared.set(input);
    // Cut the input into equal byte ranges, each ending after a newline.
    const parts = workers.length + 1;
    const bounds = [0];
    const lineAt = [1];
    let line = 1;
    let counted = 0;
    for (let p = 1; p < parts; p++) {
      let cut = Math.floor((input.length * p) / parts);
      const nl = input.indexOf(10, Math.max(cut, bounds[p - 1]!));
      cut = nl === -1 ? input.length : nl + 1;
      for (let i = input.indexOf(10, counted); i !== -1 && i < cut; i = input.indexOf(10, i + 1)) line++;
      counted = cut;
      bounds.push(cut);
      lineAt.push(line);
    }
    bounds.push(input.length);
    const pending = workers.map((w, i) => w.run(shared, bounds[i + 1]!, bounds[i + 2]!, lineAt[i + 1]!));
    const first = verifyRange(shared, 0, bounds[1]!, 1, spec);
    const rest = await Promise.all(pending);
    return first.concat(...rest);
  } finally {
    for (const w of workers) w.stop();
  }
}
