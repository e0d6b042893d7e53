import type { CliIo } from "./io.js";

/** One leaf command of the CLI, e.g. `myelin json canonical`. */
export interface Command {
  /** The words that select it, e.g. `["json", "canonical"]`. */
  readonly path: readonly string[];
  /** Usage after `myelin <path>`, e.g. `[--jsonl] [FILE]`. */
  readonly usage: string;
  readonly summary: string;
  /** Runs with the arguments after the command words; returns the exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}
