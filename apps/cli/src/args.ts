import { parseArgs, type ParseArgsConfig } from "node:util";
import { CliError } from "./io.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses a command's flags; unknown flags and missing values become a {@link CliError} (exit 2). */
export function parseFlags<T extends Options>(argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CliError((error as Error).message.replace(/^TypeError( \[[A-Z_]+\])?: /, ""), 2);
  }
}

/** The value of a required string flag. */
export function requireFlag(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw new CliError(`missing required option --${flag}`, 2);
  return value;
}

/** At most one positional FILE argument. */
export function singleFile(positionals: readonly string[]): string | undefined {
  if (positionals.length > 1) throw new CliError(`expected at most one FILE, got ${positionals.length}`, 2);
  return positionals[0];
}
