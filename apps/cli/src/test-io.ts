import { PassThrough, Readable } from "node:stream";
import type { CliIo } from "./io.js";
import { main } from "./main.js";

/** Runs the CLI in-process with `stdin` as standard input; collects what it prints. */
export async function runCli(
  argv: readonly string[],
  stdin = "",
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (c: Buffer) => out.push(c));
  stderr.on("data", (c: Buffer) => err.push(c));
  const io: CliIo = { stdin: Readable.from([Buffer.from(stdin)]), stdout, stderr };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}
