import { readFile } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";

/** The streams a command talks to; tests pass their own. */
export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** A failure the user caused or can fix: printed as `myelin: <message>` with the exit code. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Reads FILE, or standard input when FILE is absent or `-`, as bytes. */
export async function readInputBytes(io: CliIo, file: string | undefined): Promise<Buffer> {
  if (file !== undefined && file !== "-") {
    try {
      return await readFile(file);
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** Reads FILE, or standard input when FILE is absent or `-`, as UTF-8 text. */
export async function readInput(io: CliIo, file: string | undefined): Promise<string> {
  return (await readInputBytes(io, file)).toString("utf8");
}

/** Reads a file that a flag names (a key file, an events file). */
export async function readNamedFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

/**
 * Splits JSON Lines input. Blank lines are skipped; each document keeps its 1-based
 * line number so that errors can point at it.
 */
export function splitJsonLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let start = 0;
  let line = 1;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const raw = text.slice(start, end).trim();
    if (raw !== "") out.push({ line, text: raw });
    start = end + 1;
    line++;
  }
  return out;
}

/** Writes text to a stream and resolves once it has been handed to the OS buffer. */
export function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}
