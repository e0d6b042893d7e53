// `pnpm bench`: Myelin's benchmarks, with Synapse's Python libraries side by side where
// they exist. Prints a Markdown table per section; BENCHMARKS.md records a run.
//
//   pnpm bench                    # everything
//   pnpm bench -- signing cli     # only the named sections
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  availableEd25519Backends,
  computeReferenceHash,
  encodeBase64,
  encodeCanonicalJson,
  redactEvent,
  setEd25519Backend,
  signEvent,
  signingKeyFromSeed,
  signJson,
  verifyJsonSignature,
} from "@myelin/signing";
import { getRoomVersion, type JsonObject } from "@myelin/types";
import { homeserverJoinSection, homeserverSendSection } from "./homeserver.js";
import { stateResolutionSection } from "./rooms.js";
import { measure, printTable, type Row } from "./measure.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** The Python of .venv (created from PyPI on first use), or undefined without python3. */
function python(): string | undefined {
  const result = spawnSync("bash", [join(root, "scripts/python-env.sh")], { encoding: "utf8" });
  if (result.status !== 0) {
    process.stderr.write(`Python comparison unavailable: ${result.stderr.trim()}\n`);
    return undefined;
  }
  return result.stdout.trim();
}

/** Deterministic pseudo-random numbers so every run measures the same inputs. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Events shaped like a busy room's: messages of varied length, some membership events. */
function sampleEvents(count: number): JsonObject[] {
  const random = rng(42);
  const events: JsonObject[] = [];
  for (let i = 0; i < count; i++) {
    const sender = `@user${Math.floor(random() * 500)}:server${i % 7}.example.org`;
    const base = {
      room_id: "!Aa4NoqkQBvDxIFIwcExHvDRlzq2fHwR0zAx3b0GFqJQ",
      sender,
      origin_server_ts: 1_760_000_000_000 + i * 1000,
      depth: 10 + i,
      prev_events: [`$${encodeBase64(Buffer.alloc(32, i)).replace(/\+/g, "-").replace(/\//g, "_")}`],
      auth_events: ["$create", "$power", "$member"].map((x) => x + "A".repeat(37)),
      unsigned: { age: Math.floor(random() * 10_000) },
    };
    if (i % 10 === 0) {
      events.push({
        ...base,
        type: "m.room.member",
        state_key: sender,
        content: { membership: "join", displayname: `User ${i} ✨`, avatar_url: "mxc://example.org/abcdef" },
      });
    } else {
      const body = "lorem ipsum dolor sit amet ".repeat(1 + Math.floor(random() * 12));
      events.push({
        ...base,
        type: "m.room.message",
        content: { msgtype: "m.text", body: `${i}: ${body}`, "m.mentions": { user_ids: [] } },
      });
    }
  }
  return events;
}

// The spec's test signing key: reproducible across runs and comparable with Python.
const SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
const key = signingKeyFromSeed(Buffer.from(SEED, "base64"), "bench");
const rules = getRoomVersion("11");

function signingSection(py: string | undefined): Row[] {
  const events = sampleEvents(1000);
  const signed = events.map((e) => signEvent(e, "bench.example.org", key, rules));
  const plainSigned = events.map((e) => signJson(e, "bench.example.org", key));
  const redacted = signed.map((e) => redactEvent(e, rules));

  let pyRates: Record<string, number> = {};
  if (py !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), "myelin-bench-"));
    const input = join(dir, "input.json");
    writeFileSync(input, JSON.stringify({ objects: events, seed: SEED, server: "bench.example.org", signed: plainSigned, redacted }));
    pyRates = JSON.parse(execFileSync(py, [join(root, "scripts/bench/python_bench.py"), input], { encoding: "utf8" }));
  }

  const rows: Row[] = [];
  rows.push({ name: "canonical JSON encode (event)", ours: measure(() => events.forEach((e) => encodeCanonicalJson(e)), events.length), theirs: pyRates["canonical"] });
  for (const backend of availableEd25519Backends()) {
    const name = backend.name;
    setEd25519Backend(backend);
    const small = name === "tweetnacl" ? 40 : events.length;
    rows.push({
      name: `sign JSON (${name})`,
      ours: measure(() => events.slice(0, small).forEach((e) => signJson(e, "bench.example.org", key)), small),
      theirs: pyRates["sign"],
      ...(name === "native" ? { note: "verification only: signs through sodium" } : {}),
    });
    rows.push({
      name: `verify JSON (${name})`,
      ours: measure(
        () => plainSigned.slice(0, small).forEach((e) => {
          if (!verifyJsonSignature(e, "bench.example.org", key.keyId, key.publicKey).valid) throw new Error("verify failed");
        }),
        small,
      ),
      theirs: pyRates["verify"],
    });
  }
  setEd25519Backend(undefined);
  rows.push({
    name: "reference hash (redact + canonical + SHA-256)",
    ours: measure(() => signed.forEach((e) => computeReferenceHash(e, rules)), signed.length),
    theirs: pyRates["referenceHashRedacted"],
    note: "Python: already-redacted input (no redaction step)",
  });
  return rows;
}

function time(command: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 256 << 20 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function cliSection(py: string | undefined): Row[] {
  const count = 20_000;
  const dir = mkdtempSync(join(tmpdir(), "myelin-bench-cli-"));
  const file = join(dir, "events.jsonl");
  const events = sampleEvents(count).map((e) => encodeCanonicalJson(signJson(e, "bench.example.org", key)));
  writeFileSync(file, events.join("\n") + "\n");
  const pub = `${key.keyId}=${encodeBase64(key.publicKey)}`;
  const bin = join(root, "apps/cli/bin/myelin.js");
  if (!existsSync(join(root, "apps/cli/dist/main.js"))) throw new Error("build the CLI first (pnpm build)");
  const runs = 5;
  const ours = median(Array.from({ length: runs }, () => time(process.execPath, [bin, "json", "verify", "--jsonl", "--server", "bench.example.org", "--key", pub, file])));
  const theirs =
    py === undefined
      ? undefined
      : median(Array.from({ length: runs }, () => time(py, [join(root, "scripts/bench/python_verify_jsonl.py"), file, "bench.example.org", pub])));
  return [
    {
      name: `verify ${count.toLocaleString("en")} signed events, whole process (events/s)`,
      ours: count / (ours / 1000),
      theirs: theirs === undefined ? undefined : count / (theirs / 1000),
      note: `median of ${runs}: myelin ${ours.toFixed(0)} ms${theirs === undefined ? "" : `, Python ${theirs.toFixed(0)} ms`}`,
    },
  ];
}

/** Each section returns rows for the ops/s table, or its own Markdown. */
const sections: Record<string, (py: string | undefined) => Row[] | string | Promise<Row[] | string>> = {
  signing: signingSection,
  cli: cliSection,
  "state-resolution": stateResolutionSection,
  "homeserver-send": homeserverSendSection,
  "homeserver-join": homeserverJoinSection,
};

const wanted = process.argv.slice(2).filter((a) => a !== "--");
const py = python();
process.stdout.write(
  `# Myelin benchmarks\n\nNode ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}; ` +
    `Python side: ${py === undefined ? "not available" : execFileSync(py, ["-c", "import signedjson, canonicaljson, nacl, sys; print('Python', sys.version.split()[0], '- signedjson 1.1.4, canonicaljson', canonicaljson.__version__, '- PyNaCl', nacl.__version__)"], { encoding: "utf8" }).trim()}\n`,
);
for (const [name, run] of Object.entries(sections)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const result = await run(py);
  if (typeof result === "string") process.stdout.write(`\n## ${name}\n\n${result}\n`);
  else printTable(name, result);
}
