import { writeFile } from "node:fs/promises";
import { encodePublicKey, formatSigningKeyFile, generateSigningKey, isValidKeyVersion } from "@myelin/signing";
import { parseFlags } from "../args.js";
import type { Command } from "../command.js";
import { CliError, write } from "../io.js";
import { loadSigningKeys } from "./shared.js";

const generateCommand: Command = {
  path: ["key", "generate"],
  usage: "[--version V] [--out FILE]",
  summary:
    "Generate an Ed25519 signing key in Synapse's key file format (`ed25519 VERSION SEED`); --out writes it to a new file (mode 0600).",
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, { version: { type: "string" }, out: { type: "string" } });
    if (positionals.length > 0) throw new CliError(`unexpected argument ${positionals[0]}`, 2);
    if (values.version !== undefined && !isValidKeyVersion(values.version)) {
      throw new CliError(`--version must match [a-zA-Z0-9_]+, got ${JSON.stringify(values.version)}`, 2);
    }
    const key = generateSigningKey(values.version);
    const text = formatSigningKeyFile([key]);
    if (values.out === undefined) {
      await write(io.stdout, text);
      return 0;
    }
    try {
      // "wx": never overwrite an existing key; losing a signing key breaks federation.
      await writeFile(values.out, text, { mode: 0o600, flag: "wx" });
    } catch (error) {
      throw new CliError(`cannot write ${values.out}: ${(error as Error).message}`);
    }
    await write(io.stdout, `${key.keyId} ${encodePublicKey(key)}\n`);
    return 0;
  },
};

const publicCommand: Command = {
  path: ["key", "public"],
  usage: "KEYFILE",
  summary: "Print the key ID and unpadded base64 public key of each key in KEYFILE.",
  async run(argv, io) {
    const { positionals } = parseFlags(argv, {});
    if (positionals.length !== 1) throw new CliError("expected exactly one KEYFILE", 2);
    const keys = await loadSigningKeys(positionals[0]!);
    await write(io.stdout, keys.map((key) => `${key.keyId} ${encodePublicKey(key)}\n`).join(""));
    return 0;
  },
};

/** `myelin key ...` */
export const KEY_COMMANDS: readonly Command[] = [generateCommand, publicCommand];
