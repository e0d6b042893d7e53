import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCommands } from "./commands/index.js";
import { runCli } from "./test-io.js";

// The spec's signing test key (appendices, Cryptographic Test Vectors).
const SPEC_KEY_FILE = "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n";
const SPEC_PUBLIC = "ed25519:1=XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI";

let dir: string;
let keyFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "myelin-cli-"));
  keyFile = join(dir, "spec.key");
  await writeFile(keyFile, SPEC_KEY_FILE);
});

describe("myelin json canonical", () => {
  it("prints the spec's canonical form, normalising -0 and 1e10", async () => {
    const r = await runCli(["json", "canonical"], '{\n "b": "2", "a": -0, "c": 1e10, "日": "\\u65E5" }');
    expect(r).toEqual({ code: 0, stdout: '{"a":0,"b":"2","c":10000000000,"日":"日"}\n', stderr: "" });
  });

  it("handles JSON Lines one result per line", async () => {
    const r = await runCli(["json", "canonical", "--jsonl"], '{"b":1,"a":2}\n\n[3, {"z":[],"y":{}}]\n');
    expect(r.stdout).toBe('{"a":2,"b":1}\n[3,{"y":{},"z":[]}]\n');
  });

  it("refuses an integer it cannot represent instead of rounding it, naming the line", async () => {
    const r = await runCli(["json", "canonical", "--jsonl"], '{"ok":1}\n{"n":9007199254740993}\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^myelin: line 2: .*integer-out-of-range/);
  });

  it("refuses a number with a fraction", async () => {
    const r = await runCli(["json", "canonical"], '{"n":1.5}');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/standard input: .*\$\.n|standard input:.*n/);
  });

  it("reports malformed JSON with its position", async () => {
    const r = await runCli(["json", "canonical"], '{"a":}');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid JSON \(syntax\) at position 5/);
  });
});

describe("myelin json sign / verify", () => {
  it("signs the spec's example exactly as the spec does", async () => {
    const r = await runCli(["json", "sign", "--key", keyFile, "--server", "domain"], '{"one":1,"two":"Two"}');
    expect(r.stdout).toBe(
      '{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}\n',
    );
  });

  it("verifies what it signed and says which line failed and why", async () => {
    const signed = await runCli(
      ["json", "sign", "--jsonl", "--key", keyFile, "--server", "domain"],
      '{"a":1}\n{"b":2}\n{"c":3}\n',
    );
    const lines = signed.stdout.trimEnd().split("\n");
    lines[1] = lines[1]!.replace('"b":2', '"b":3');
    const r = await runCli(["json", "verify", "--jsonl", "--server", "domain", "--key", SPEC_PUBLIC], lines.join("\n"));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("ok\nline 2: bad-signature (domain ed25519:1)\nok\n");
    expect(r.stderr).toBe("myelin: 1 of 3 documents failed verification\n");
  });

  it("exits 0 only when the one document verifies", async () => {
    const signed = await runCli(["json", "sign", "--key", keyFile, "--server", "domain"], "{}");
    const ok = await runCli(["json", "verify", "--server", "domain", "--key", SPEC_PUBLIC], signed.stdout);
    expect(ok).toEqual({ code: 0, stdout: "ok\n", stderr: "" });
    const other = await runCli(["json", "verify", "--server", "other", "--key", SPEC_PUBLIC], signed.stdout);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/missing-signature: no signature by other under ed25519:1/);
  });

  it("rejects a malformed --key with a usage error", async () => {
    const r = await runCli(["json", "verify", "--server", "d", "--key", "nokey"], "{}");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--key must look like ed25519:ID=PUBLICKEY/);
  });
});

describe("myelin key", () => {
  it("generates a key file that key public reads back, refusing to overwrite it", async () => {
    const out = join(dir, "new.key");
    const gen = await runCli(["key", "generate", "--version", "abc", "--out", out]);
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/^ed25519:abc [A-Za-z0-9+/]{43}\n$/);
    expect((await readFile(out, "utf8"))).toMatch(/^ed25519 abc [A-Za-z0-9+/]{43}\n$/);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const pub = await runCli(["key", "public", out]);
    expect(pub.stdout).toBe(gen.stdout);
    const again = await runCli(["key", "generate", "--out", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cannot write .*EEXIST/);
  });

  it("derives the spec's public key from the spec's seed", async () => {
    const r = await runCli(["key", "public", keyFile]);
    expect(r.stdout).toBe(SPEC_PUBLIC.replace("=", " ") + "\n");
  });
});

describe("myelin event", () => {
  const event = {
    room_id: "!room:domain",
    sender: "@alice:domain",
    type: "m.room.message",
    content: { body: "hi", msgtype: "m.text" },
    origin_server_ts: 1000000,
    depth: 3,
    prev_events: ["$prev"],
    auth_events: ["$auth"],
  };

  it("signs, identifies and verifies an event, and redacts on a content change", async () => {
    const signed = await runCli(
      ["event", "sign", "--room-version", "11", "--key", keyFile, "--server", "domain"],
      JSON.stringify(event),
    );
    expect(signed.code).toBe(0);
    const verify = (text: string) =>
      runCli(["event", "verify", "--room-version", "11", "--server", "domain", "--key", SPEC_PUBLIC], text);
    expect((await verify(signed.stdout)).stdout).toBe("valid\n");
    const edited = await verify(signed.stdout.replace('"body":"hi"', '"body":"bye"'));
    expect(edited).toMatchObject({ code: 3, stdout: expect.stringMatching(/^redact:/) });
    const forged = await verify(signed.stdout.replace('"depth":3', '"depth":4'));
    expect(forged).toMatchObject({ code: 1, stdout: expect.stringMatching(/^reject: bad-signature/) });
    const id = await runCli(["event", "id", "--room-version", "11"], signed.stdout);
    expect(id.stdout).toMatch(/^\$[A-Za-z0-9_-]{43}\n$/);
    // Room 3 uses the standard base64 alphabet for the same reference hash (same redaction here).
    const id3 = await runCli(["event", "id", "--room-version", "3"], signed.stdout);
    expect(id3.stdout).toBe(id.stdout.replaceAll("-", "+").replaceAll("_", "/"));
  });

  it("redacts with the room version's algorithm", async () => {
    const member = { ...event, type: "m.room.member", state_key: "@alice:domain", origin: "domain",
      content: { membership: "join", displayname: "A", join_authorised_via_users_server: "@b:domain" } };
    const v8 = await runCli(["event", "redact", "--room-version", "8"], JSON.stringify(member));
    expect(JSON.parse(v8.stdout)).toMatchObject({ content: { membership: "join" }, origin: "domain" });
    expect(JSON.parse(v8.stdout).content).not.toHaveProperty("join_authorised_via_users_server");
    const v11 = JSON.parse((await runCli(["event", "redact", "--room-version", "11"], JSON.stringify(member))).stdout);
    expect(v11.content).toEqual({ membership: "join", join_authorised_via_users_server: "@b:domain" });
    expect(v11).not.toHaveProperty("origin");
  });

  it("refuses a float in a strict-canonical-JSON room version", async () => {
    const r = await runCli(["event", "id", "--room-version", "6"], JSON.stringify(event).replace('"depth":3', '"depth":3.0'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/non-integer/);
  });

  it("names an unknown room version", async () => {
    const r = await runCli(["event", "id", "--room-version", "99"], "{}");
    expect(r).toMatchObject({ code: 2, stderr: expect.stringMatching(/unsupported room version "99"/) });
  });
});

describe("myelin", () => {
  it("lists commands on --help and refuses unknown ones", async () => {
    expect((await runCli(["--help"])).stdout).toMatch(/myelin json canonical/);
    const bad = await runCli(["json", "frobnicate"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown command: json frobnicate/);
  });

  it("loads each command from its first word alone, so that start-up loads only that module", async () => {
    const all = await loadCommands();
    expect(all.length).toBeGreaterThan(15);
    for (const command of all) {
      const loaded = await loadCommands(command.path[0]);
      expect(loaded).toContain(command);
      expect(loaded.length).toBeLessThan(all.length);
    }
    expect(await loadCommands("frobnicate")).toEqual(all);
  });

  it("demo reproduces the spec's example signature", async () => {
    const r = await runCli(["demo"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/matches the signature given in the specification/);
  });
});
