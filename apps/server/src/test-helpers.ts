// Helpers for this package's tests (not built into dist): temporary directories, a test
// CA's files, and HTTP(S) requests that trust the test CA.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestCa } from "@myelin/test-support";
import { createTestCa } from "@myelin/test-support";
import type { HomeserverConfig } from "./config.js";
import type { LineSink } from "./log.js";

const directories: string[] = [];

/** A new empty temporary directory, removed by {@link removeTemporaryDirectories}. */
export async function temporaryDirectory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "myelin-homeserver-"));
  directories.push(dir);
  return dir;
}

/** Removes every directory {@link temporaryDirectory} made (for `afterAll`). */
export async function removeTemporaryDirectories(): Promise<void> {
  await Promise.all(directories.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** A test CA with its certificate, and a server certificate for loopback, written to files. */
export interface TlsFiles {
  readonly ca: TestCa;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Writes a new test CA and a certificate for `localhost`, `127.0.0.1` and `::1` into `dir`. */
export async function writeTlsFiles(dir: string, names: readonly string[] = ["localhost", "127.0.0.1", "::1"]): Promise<TlsFiles> {
  const ca = createTestCa();
  const leaf = ca.issue(names);
  const files = { ca, caFile: join(dir, "ca.pem"), certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") };
  await writeFile(files.caFile, ca.cert);
  await writeFile(files.certFile, leaf.cert);
  await writeFile(files.keyFile, leaf.key);
  return files;
}

/** A configuration for tests: plain HTTP on 127.0.0.1, any port, data in `dataDir`. */
export function testConfig(dataDir: string, overrides: Partial<HomeserverConfig> = {}): HomeserverConfig {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    dataDir,
    federationCaFiles: [],
    federationAllowIp: [],
    logLevel: "info",
    ...overrides,
  };
}

/** A response read whole. */
export interface TestResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (`undefined` when it is not JSON). */
  readonly json: unknown;
}

/** Sends a request to `url` (trusting `ca` for HTTPS) and reads the whole answer. */
export function request(
  url: string,
  options: { method?: string; body?: unknown; ca?: string; headers?: Record<string, string> } = {},
): Promise<TestResponse> {
  const target = new URL(url);
  const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const send = target.protocol === "https:" ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? "GET",
        headers: { ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...options.headers },
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A line sink keeping what is written. */
export class CapturedOutput implements LineSink {
  text = "";
  write(text: string): boolean {
    this.text += text;
    return true;
  }
  get lines(): string[] {
    return this.text.split("\n").filter((line) => line !== "");
  }
}
