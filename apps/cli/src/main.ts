import type { Command } from "./command.js";
import { CliError, type CliIo } from "./io.js";
import { loadCommands } from "./commands/index.js";

const defaultIo: CliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };

function usage(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  myelin ${[...c.path, c.usage].join(" ").trimEnd()}\n      ${c.summary}`);
  return `Usage:\n${lines.join("\n")}\n\nmyelin <command> --help shows a command's usage.\n`;
}

/**
 * Runs the `myelin` command line with `argv` (without `node` and the script path)
 * and returns the process exit code. Errors are printed to `io.stderr`.
 */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const commands = await loadCommands(argv[0]);
  const matches = commands.filter((c) => c.path.every((word, i) => argv[i] === word));
  const command = matches.sort((a, b) => b.path.length - a.path.length)[0];
  if (command === undefined) {
    const prefix = argv.filter((a) => !a.startsWith("-"));
    const related = commands.filter((c) => prefix.length > 0 && c.path[0] === prefix[0]);
    const help = argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help";
    io[help ? "stdout" : "stderr"].write(
      (help ? "" : `myelin: unknown command: ${argv.join(" ")}\n`) + usage(related.length > 0 ? related : commands),
    );
    return help ? 0 : 2;
  }
  const rest = argv.slice(command.path.length);
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout.write(`Usage: myelin ${[...command.path, command.usage].join(" ")}\n  ${command.summary}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr.write(`myelin: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(`myelin: ${(error as Error).message ?? String(error)}\n`);
    return 1;
  }
}
