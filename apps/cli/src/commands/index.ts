import type { Command } from "../command.js";

/** A module of commands, loaded only when one of its first words is used. */
interface CommandModule {
  /** The first words of its commands' paths. */
  readonly words: readonly string[];
  readonly load: () => Promise<readonly Command[]>;
}

// In the order `myelin --help` lists them. Loading every module costs about 50 ms of
// start-up (the client, rooms and server-probe code), which bulk commands such as
// `myelin json verify --jsonl` should not pay.
const MODULES: readonly CommandModule[] = [
  { words: ["key"], load: async () => (await import("./key.js")).KEY_COMMANDS },
  { words: ["json"], load: async () => (await import("./json.js")).JSON_COMMANDS },
  { words: ["event"], load: async () => (await import("./event.js")).EVENT_COMMANDS },
  { words: ["auth", "state"], load: async () => (await import("./rooms.js")).ROOM_COMMANDS },
  { words: ["keys", "request", "resolve", "version"], load: async () => (await import("./net.js")).NET_COMMANDS },
  { words: ["check"], load: async () => (await import("./check.js")).CHECK_COMMANDS },
  { words: ["demo"], load: async () => (await import("./demo.js")).DEMO_COMMANDS },
];

/**
 * The commands whose path starts with `firstWord`, or every command of the CLI (in help
 * order) when `firstWord` is undefined or no command starts with it.
 */
export async function loadCommands(firstWord?: string): Promise<readonly Command[]> {
  const matching = MODULES.filter((m) => firstWord !== undefined && m.words.includes(firstWord));
  const modules = await Promise.all((matching.length > 0 ? matching : MODULES).map((m) => m.load()));
  return modules.flat();
}
