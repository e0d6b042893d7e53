import { computeEventId, parseJson } from "@myelin/signing";
import {
  checkAuth,
  createMemoryLookup,
  resolveState,
  stateKey,
  toRoomEvent,
  type RoomEvent,
  type StateKey,
} from "@myelin/rooms";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { parseFlags, requireFlag } from "../args.js";
import type { Command } from "../command.js";
import { CliError, readNamedFile, splitJsonLines, write } from "../io.js";
import { parseObject, roomVersionRules } from "./shared.js";

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads an events file: one event, a JSON array of events, or JSON Lines. Numbers are read
 * exactly (strict canonical JSON in rooms 6+).
 */
async function readEvents(file: string, rules: RoomVersionRules): Promise<{ where: string; pdu: JsonObject }[]> {
  const text = await readNamedFile(file, "events file");
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    let value: JsonValue;
    try {
      value = parseJson(trimmed, { strict: rules.strictCanonicalJson });
    } catch (error) {
      throw new CliError(`${file}: ${(error as Error).message}`);
    }
    return (value as JsonValue[]).map((pdu, i) => {
      if (!isObject(pdu)) throw new CliError(`${file}: element ${i} is not an event object`);
      return { where: `${file} element ${i}`, pdu };
    });
  }
  const lines = splitJsonLines(text);
  if (lines.length > 1) {
    return lines.map((l) => ({ where: `${file} line ${l.line}`, pdu: parseObject(l.text, `${file} line ${l.line}`, rules.strictCanonicalJson) }));
  }
  return [{ where: file, pdu: parseObject(text, file, rules.strictCanonicalJson) }];
}

/**
 * The room-event view of a PDU. Rooms 1-2 carry their `event_id`; from room 3 the ID is the
 * reference hash, but exported events (client API, admin dumps) often carry an `event_id`
 * too, which is then taken as given (it is not part of the hashed content there).
 */
function toEvent(where: string, pdu: JsonObject, rules: RoomVersionRules): RoomEvent {
  try {
    const given = pdu["event_id"];
    if (rules.eventFormat !== "v1" && typeof given === "string") {
      const { event_id: _omit, ...rest } = pdu;
      return toRoomEvent(rest, { rules, eventId: given });
    }
    const eventId = rules.eventFormat === "v1" ? undefined : computeEventId(pdu, rules);
    return toRoomEvent(pdu, eventId === undefined ? { rules } : { rules, eventId });
  } catch (error) {
    throw new CliError(`${where}: ${(error as Error).message}`);
  }
}

const authCheckCommand: Command = {
  path: ["auth", "check"],
  usage: "--room-version V --event FILE --auth-events FILE",
  summary:
    "Check an event against the authorization rules with the given auth events (in room 12 include the create event). Prints allowed, or the rule that denied it; exit 0 only if allowed.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      "room-version": { type: "string" },
      event: { type: "string" },
      "auth-events": { type: "string" },
    });
    if (positionals.length > 0) throw new CliError(`unexpected argument ${positionals[0]}`, 2);
    const rules = roomVersionRules(values["room-version"]);
    const eventFile = requireFlag(values.event, "event");
    const events = await readEvents(eventFile, rules);
    if (events.length !== 1) throw new CliError(`${eventFile}: expected one event, found ${events.length}`);
    const event = toEvent(events[0]!.where, events[0]!.pdu, rules);
    const authEvents = (await readEvents(requireFlag(values["auth-events"], "auth-events"), rules)).map((e) =>
      toEvent(e.where, e.pdu, rules),
    );
    let decision;
    try {
      decision = checkAuth(event, authEvents, rules);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    const text = decision.allowed
      ? `allowed (rule ${decision.rule}, ${decision.name}): ${decision.message}\n`
      : `denied by rule ${decision.rule} (${decision.name}): ${decision.message}\n`;
    await write(io.stdout, text);
    return decision.allowed ? 0 : 1;
  },
};

/** Reads a state set: `{"[type, state_key]": id}`, `{type: {state_key: id}}`, or a list of event IDs. */
async function readStateSet(file: string, byId: ReadonlyMap<string, RoomEvent>): Promise<Map<StateKey, string>> {
  let value: JsonValue;
  try {
    value = parseJson(await readNamedFile(file, "state set"));
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
  const set = new Map<StateKey, string>();
  if (Array.isArray(value)) {
    for (const id of value) {
      if (typeof id !== "string") throw new CliError(`${file}: a list state set holds event IDs (strings)`);
      const event = byId.get(id);
      if (event === undefined) throw new CliError(`${file}: event ${id} is not in --events`);
      if (event.state_key === undefined) throw new CliError(`${file}: event ${id} is not a state event`);
      set.set(stateKey(event.type, event.state_key), id);
    }
    return set;
  }
  if (!isObject(value)) throw new CliError(`${file}: a state set is a JSON object or a list of event IDs`);
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === "string") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(key);
      } catch {
        parsed = undefined;
      }
      const [type, sk] = Array.isArray(parsed) && parsed.length === 2 ? parsed : [];
      if (typeof type !== "string" || typeof sk !== "string") {
        throw new CliError(`${file}: key ${JSON.stringify(key)} is not a ["type", "state_key"] pair`);
      }
      set.set(stateKey(type, sk), entry);
    } else if (isObject(entry)) {
      for (const [sk, id] of Object.entries(entry)) {
        if (typeof id !== "string") throw new CliError(`${file}: ${key} ${JSON.stringify(sk)} is not an event ID`);
        set.set(stateKey(key, sk), id);
      }
    } else {
      throw new CliError(`${file}: value of ${JSON.stringify(key)} is neither an event ID nor an object`);
    }
  }
  return set;
}

const stateResolveCommand: Command = {
  path: ["state", "resolve"],
  usage: "--room-version V --events FILE [--explain] STATESET_FILE...",
  summary:
    'Resolve state sets (v1, v2 or v2.1 by room version). --events holds every event the resolution may need (JSON Lines or an array); prints {"[type, state_key]": event_id}, and with --explain the trace of every decision.',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      "room-version": { type: "string" },
      events: { type: "string" },
      explain: { type: "boolean" },
    });
    const rules = roomVersionRules(values["room-version"]);
    if (positionals.length === 0) throw new CliError("give at least one STATESET_FILE", 2);
    const events = (await readEvents(requireFlag(values.events, "events"), rules)).map((e) =>
      toEvent(e.where, e.pdu, rules),
    );
    const byId = new Map(events.map((e) => [e.event_id, e]));
    const stateSets = [];
    for (const file of positionals) stateSets.push(await readStateSet(file, byId));
    let resolved;
    try {
      resolved = await resolveState({
        rules,
        stateSets,
        lookup: createMemoryLookup(events),
        explain: values.explain === true,
      });
    } catch (error) {
      throw new CliError(`state resolution failed: ${(error as Error).message}`);
    }
    const state = Object.fromEntries([...resolved.state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const out = values.explain === true ? { state, trace: resolved.trace } : state;
    await write(io.stdout, JSON.stringify(out, null, 2) + "\n");
    return 0;
  },
};

/** `myelin auth ...` and `myelin state ...` */
export const ROOM_COMMANDS: readonly Command[] = [authCheckCommand, stateResolveCommand];
