import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { encodeBase64 } from "@myelin/signing";
import { verifyRange, type LineResult, type VerifySpec } from "./verify-lines.js";

/** Below this many bytes of input, starting a worker costs more than it saves. */
const PARALLEL_THRESHOLD_BYTES = 1 << 20;

/** Threads claim the input in chunks of about this many bytes (some 80 events, 3 ms). */
const CHUNK_BYTES = 64 * 1024;

/** Worker threads this process may use for verification (1 = the calling thread only). */
function usableThreads(): number {
  // Workers run the compiled JavaScript (dist/); from TypeScript sources, as in unit tests,
  // there is nothing a worker thread could load, so verification stays on this thread.
  return import.meta.url.endsWith(".js") ? Math.min(availableParallelism(), 8) : 1;
}

/**
 * The input cut into chunks at line ends, shared with the workers. Each thread claims the
 * next unclaimed chunk by incrementing `next` atomically, so a worker that starts late or
 * runs slowly simply takes fewer chunks, and all threads finish within one chunk.
 */
export interface ChunkedInput {
  readonly bytes: Uint8Array;
  /** Chunk `c` is `bytes[bounds[c], bounds[c + 1])`. */
  readonly bounds: Int32Array;
  /** The line number of each chunk's first line. */
  readonly firstLines: Int32Array;
  /** The next chunk to claim (one shared Int32). */
  readonly next: Int32Array;
}

/** What a worker sends back: one message per chunk it verified. */
export interface ChunkResult {
  readonly chunk: number;
  readonly results: LineResult[];
}

function chunkInput(input: Uint8Array): ChunkedInput {
  const bytes = new Uint8Array(new SharedArrayBuffer(input.length));
  bytes.set(input);
  const bounds = [0];
  const firstLines = [1];
  let line = 1;
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(10, Math.min(start + CHUNK_BYTES, bytes.length) - 1);
    const end = nl === -1 ? bytes.length : nl + 1;
    for (let i = bytes.indexOf(10, start); i !== -1 && i < end; i = bytes.indexOf(10, i + 1)) line++;
    bounds.push(end);
    firstLines.push(line);
    start = end;
  }
  return {
    bytes,
    bounds: Int32Array.from(bounds),
    firstLines: Int32Array.from(firstLines),
    next: new Int32Array(new SharedArrayBuffer(4)),
  };
}

/** Claims and verifies chunks until none is left, handing each result to `done`. */
export function verifyChunks(input: ChunkedInput, spec: VerifySpec, done: (result: ChunkResult) => void): void {
  const chunks = input.bounds.length - 1;
  for (let chunk = Atomics.add(input.next, 0, 1); chunk < chunks; chunk = Atomics.add(input.next, 0, 1)) {
    const results = verifyRange(input.bytes, input.bounds[chunk]!, input.bounds[chunk + 1]!, input.firstLines[chunk]!, spec);
    done({ chunk, results });
  }
}

/** A verification worker, started early so that it loads while the input is read. */
class VerifyWorker {
  private readonly worker: Worker;
  readonly failed: Promise<never>;

  constructor(spec: VerifySpec, onResult: (result: ChunkResult) => void) {
    const url = new URL("./verify-worker.js", import.meta.url);
    const keys = [...spec.keys].map(([id, key]) => [id, encodeBase64(key.publicKey)]);
    this.worker = new Worker(url, { workerData: { server: spec.server, keys } });
    this.worker.on("message", onResult);
    this.failed = new Promise((_, reject) => {
      this.worker.once("error", reject);
      this.worker.once("exit", (code) => reject(new Error(`verify worker exited with code ${code}`)));
    });
    this.failed.catch(() => {}); // observed through Promise.race below
  }

  run(input: ChunkedInput): void {
    this.worker.postMessage(input);
  }

  stop(): void {
    this.worker.removeAllListeners("exit");
    void this.worker.terminate();
  }
}

/**
 * Verifies JSON Lines input, spreading it over the machine's cores: Ed25519 verification
 * is CPU-bound, and each worker thread runs its own native verifier. The input bytes are
 * shared with the workers (no copy per line), and the calling thread verifies too.
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
  const byChunk: LineResult[][] = [];
  let verified = 0;
  let allVerified: () => void = () => {};
  const record = ({ chunk, results }: ChunkResult): void => {
    byChunk[chunk] = results;
    verified++;
    if (verified === byChunk.length) allVerified();
  };
  const early = threads > 1 && expectedBytes !== undefined && expectedBytes >= PARALLEL_THRESHOLD_BYTES;
  const workers = early ? Array.from({ length: threads - 1 }, () => new VerifyWorker(spec, record)) : [];
  try {
    const bytes = await read();
    if (workers.length === 0 && threads > 1 && bytes.length >= PARALLEL_THRESHOLD_BYTES) {
      for (let i = 1; i < threads; i++) workers.push(new VerifyWorker(spec, record));
    }
    if (workers.length === 0) return verifyRange(bytes, 0, bytes.length, 1, spec);

    const input = chunkInput(bytes);
    byChunk.length = input.bounds.length - 1;
    const finished = new Promise<void>((resolve) => {
      allVerified = resolve;
    });
    for (const worker of workers) worker.run(input);
    verifyChunks(input, spec, record);
    // Chunks that workers claimed but have not reported yet.
    if (verified < byChunk.length) await Promise.race([finished, ...workers.map((w) => w.failed)]);
    return byChunk.flat();
  } finally {
    for (const worker of workers) worker.stop();
  }
}
