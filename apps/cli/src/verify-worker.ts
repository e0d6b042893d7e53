// Worker thread for `myelin json verify --jsonl`: verifies one slice of the input.
import { parentPort, workerData } from "node:worker_threads";
import { decodeBase64 } from "@myelin/signing";
import { verifyTexts } from "./verify-lines.js";

interface Job {
  texts: string[];
  server: string;
  keys: [string, string][];
}

const job = workerData as Job;
const keys = new Map(job.keys.map(([id, b64]) => [id, { publicKey: decodeBase64(b64) }] as const));
parentPort?.postMessage(verifyTexts(job.texts, { server: job.server, keys }));
