import {
  checkContentHash,
  computeContentHash,
  computeEventId,
  computeReferenceHash,
  encodeBase64,
  encodeCanonicalJson,
  redactEvent,
  signEvent,
  verifyEvent,
  type VerifyKey,
} from "@myelin/signing";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { parseFlags, requireFlag, singleFile } from "../args.js";
import type { Command } from "../command.js";
import { CliError, readInput, readNamedFile, write, type CliIo } from "../io.js";
import { loadSigningKey, parseObject, parseVerifyKeys, roomVersionRules } from "./shared.js";

const roomVersionFlag = { "room-version": { type: "string" } } as const;

async function readEvent(io: CliIo, file: string | undefined, rules: RoomVersionRules): Promise<JsonObject> {
  const text = await readInput(io, file);
  // Rooms 6+ use strict canonical JSON: a number with a fraction or exponent is invalid there.
  return parseObject(text, file ?? "standard input", rules.strictCanonicalJson);
}

function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw new CliError(`${what}: ${(error as Error).message}`);
  }
}

const hashCommand: Command = {
  path: ["event", "hash"],
  usage: "--room-version V [FILE]",
  summary: "Print the event's content hash, whether its hashes.sha256 matches, and its reference hash.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, roomVersionFlag);
    const rules = roomVersionRules(values["room-version"]);
    const event = await readEvent(io, singleFile(positionals), rules);
    const result = guard("cannot hash the event", () => ({
      content_hash: encodeBase64(computeContentHash(event)),
      content_hash_matches: checkContentHash(event),
      reference_hash: encodeBase64(computeReferenceHash(event, rules)),
    }));
    await write(io.stdout, JSON.stringify(result, null, 2) + "\n");
    return 0;
  },
};

const idCommand: Command = {
  path: ["event", "id"],
  usage: "--room-version V [FILE]",
  summary: "Print the event's ID (rooms 1-2: its event_id; 3: base64 reference hash; 4+: URL-safe).",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, roomVersionFlag);
    const rules = roomVersionRules(values["room-version"]);
    const event = await readEvent(io, singleFile(positionals), rules);
    await write(io.stdout, guard("cannot compute the event ID", () => computeEventId(event, rules)) + "\n");
    return 0;
  },
};

const redactCommand: Command = {
  path: ["event", "redact"],
  usage: "--room-version V [FILE]",
  summary: "Print the event redacted with the room version's algorithm (canonical JSON).",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, roomVersionFlag);
    const rules = roomVersionRules(values["room-version"]);
    const event = await readEvent(io, singleFile(positionals), rules);
    const redacted = guard("cannot redact the event", () => encodeCanonicalJson(redactEvent(event, rules)));
    await write(io.stdout, redacted + "\n");
    return 0;
  },
};

const signCommand: Command = {
  path: ["event", "sign"],
  usage: "--room-version V --key KEYFILE --server NAME [FILE]",
  summary: "Add the content hash and NAME's signature over the redacted event; print it (canonical JSON).",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...roomVersionFlag,
      key: { type: "string" },
      server: { type: "string" },
    });
    const rules = roomVersionRules(values["room-version"]);
    const key = await loadSigningKey(requireFlag(values.key, "key"));
    const server = requireFlag(values.server, "server");
    const event = await readEvent(io, singleFile(positionals), rules);
    const signed = guard("cannot sign the event", () => encodeCanonicalJson(signEvent(event, server, key, rules)));
    await write(io.stdout, signed + "\n");
    return 0;
  },
};

/** Reads `--keys FILE`: `{ "server": { "ed25519:ID": "PUBLICKEY" } }`. */
async function readKeysFile(file: string): Promise<Map<string, Map<string, VerifyKey>>> {
  const parsed = parseObject(await readNamedFile(file, "keys file"), file);
  const out = new Map<string, Map<string, VerifyKey>>();
  for (const [server, keys] of Object.entries(parsed)) {
    if (keys === null || typeof keys !== "object" || Array.isArray(keys)) {
      throw new CliError(`${file}: keys of ${server} must be an object of key ID to public key`);
    }
    out.set(
      server,
      parseVerifyKeys(Object.entries(keys).map(([id, pub]) => `${id}=${typeof pub === "string" ? pub : ""}`)),
    );
  }
  return out;
}

const verifyCommand: Command = {
  path: ["event", "verify"],
  usage: "--room-version V (--server NAME --key ed25519:ID=PUBLICKEY... | --keys FILE) [FILE]",
  summary:
    "Verify a received event's signatures and content hash. Prints valid (exit 0), redact: hash mismatch (exit 3), or reject: why (exit 1). --keys FILE holds {server: {keyId: publicKey}}.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...roomVersionFlag,
      server: { type: "string" },
      key: { type: "string", multiple: true },
      keys: { type: "string" },
    });
    const rules = roomVersionRules(values["room-version"]);
    const known = values.keys === undefined ? new Map<string, Map<string, VerifyKey>>() : await readKeysFile(values.keys);
    if (values.key !== undefined) {
      const server = requireFlag(values.server, "server");
      known.set(server, new Map([...(known.get(server) ?? []), ...parseVerifyKeys(values.key)]));
    }
    if (known.size === 0) throw new CliError("give the signing servers' keys with --server and --key, or --keys", 2);
    const event = await readEvent(io, singleFile(positionals), rules);
    const result = await verifyEvent(event, { rules, lookupKey: (server, keyId) => known.get(server)?.get(keyId) });
    switch (result.outcome) {
      case "valid":
        await write(io.stdout, "valid\n");
        return 0;
      case "redact":
        await write(io.stdout, "redact: signatures are valid but the content hash does not match\n");
        return 3;
      case "reject": {
        const { code, ...rest } = result.reason;
        await write(io.stdout, `reject: ${code} ${JSON.stringify(rest)}\n`);
        return 1;
      }
    }
  },
};

/** `myelin event ...` */
export const EVENT_COMMANDS: readonly Command[] = [hashCommand, idCommand, redactCommand, signCommand, verifyCommand];
