import type { Command } from "../command.js";
import { CHECK_COMMANDS } from "./check.js";
import { DEMO_COMMANDS } from "./demo.js";
import { EVENT_COMMANDS } from "./event.js";
import { JSON_COMMANDS } from "./json.js";
import { KEY_COMMANDS } from "./key.js";
import { NET_COMMANDS } from "./net.js";
import { ROOM_COMMANDS } from "./rooms.js";

/** Every command of the CLI, in the order `myelin --help` lists them. */
export const COMMANDS: readonly Command[] = [...KEY_COMMANDS, ...JSON_COMMANDS, ...EVENT_COMMANDS, ...ROOM_COMMANDS, ...NET_COMMANDS, ...CHECK_COMMANDS, ...DEMO_COMMANDS];
