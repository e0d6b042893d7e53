/** Entry point of the `myelin` command. Returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  process.stdout.write(`myelin: ${argv.join(" ")}\n`);
  return 0;
}
