import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./test-io.js";

// A small room-version-10 room with readable event IDs (exported events carry `event_id`).
const ROOM = "!room:example.org";
let ts = 1000;
function ev(id: string, type: string, sender: string, content: object, stateKeyValue: string | undefined, auth: string[], prev: string[]) {
  return {
    event_id: id, room_id: ROOM, type, sender, content, origin_server_ts: ts++, depth: ts,
    prev_events: prev, auth_events: auth, hashes: { sha256: "x" }, signatures: {},
    ...(stateKeyValue === undefined ? {} : { state_key: stateKeyValue }),
  };
}
const A = "@alice:example.org";
const B = "@bob:example.org";
const create = ev("$create", "m.room.create", A, { room_version: "10", creator: A }, "", [], []);
const aliceJoin = ev("$ajoin", "m.room.member", A, { membership: "join" }, A, ["$create"], ["$create"]);
const power = ev("$pl", "m.room.power_levels", A, { users: { [A]: 100 }, users_default: 0, state_default: 50, events_default: 0, ban: 50, kick: 50 }, "", ["$create", "$ajoin"], ["$ajoin"]);
const joinRules = ev("$jr", "m.room.join_rules", A, { join_rule: "public" }, "", ["$create", "$ajoin", "$pl"], ["$pl"]);
const bobJoin = ev("$bjoin", "m.room.member", B, { membership: "join" }, B, ["$create", "$pl", "$jr"], ["$jr"]);
const bobTopic = ev("$btopic", "m.room.topic", B, { topic: "bob's" }, "", ["$create", "$pl", "$bjoin"], ["$bjoin"]);
const ban = ev("$ban", "m.room.member", A, { membership: "ban" }, B, ["$create", "$pl", "$ajoin", "$bjoin"], ["$bjoin"]);
const all = [create, aliceJoin, power, joinRules, bobJoin, bobTopic, ban];

let dir: string;
const file = async (name: string, value: unknown) => {
  const path = join(dir, name);
  await writeFile(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
};
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "myelin-rooms-"));
});

describe("myelin auth check", () => {
  it("allows a join to a public room and names the rule", async () => {
    const r = await runCli(["auth", "check", "--room-version", "10", "--event", await file("e.json", bobJoin),
      "--auth-events", await file("a.json", [create, power, joinRules])]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^allowed \(rule [0-9.]+, /);
  });

  it("denies a power-levels change by a user without power, naming the rule", async () => {
    const grab = ev("$grab", "m.room.power_levels", B, { users: { [A]: 100, [B]: 100 } }, "", ["$create", "$pl", "$bjoin"], ["$bjoin"]);
    const r = await runCli(["auth", "check", "--room-version", "10", "--event", await file("g.json", grab),
      "--auth-events", await file("ga.jsonl", [create, power, bobJoin].map((e) => JSON.stringify(e)).join("\n"))]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^denied by rule [0-9.]+ \(/);
  });

  it("says which auth event is missing", async () => {
    const r = await runCli(["auth", "check", "--room-version", "10", "--event", await file("e2.json", bobJoin),
      "--auth-events", await file("a2.json", [create])]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\$pl|\$jr/);
  });
});

describe("myelin state resolve", () => {
  it("lets the ban win over the banned user's concurrent topic change", async () => {
    const events = await file("all.jsonl", all.map((e) => JSON.stringify(e)).join("\n"));
    const base = ["$create", "$ajoin", "$pl", "$jr", "$bjoin"];
    const s1 = await file("s1.json", [...base, "$btopic"]);
    const s2 = await file("s2.json", { "m.room.create": { "": "$create" }, "m.room.member": { [A]: "$ajoin", [B]: "$ban" }, "m.room.power_levels": { "": "$pl" }, "m.room.join_rules": { "": "$jr" } });
    const r = await runCli(["state", "resolve", "--room-version", "10", "--events", events, s1, s2]);
    expect(r.code).toBe(0);
    const state = JSON.parse(r.stdout);
    expect(state[JSON.stringify(["m.room.member", B])]).toBe("$ban");
    // Bob's topic is re-checked against the partial state where he is banned: it is dropped.
    expect(state).not.toHaveProperty(JSON.stringify(["m.room.topic", ""]));
    const explained = JSON.parse((await runCli(["state", "resolve", "--room-version", "10", "--events", events, "--explain", s1, s2])).stdout);
    expect(explained.state).toEqual(state);
    expect(JSON.stringify(explained.trace)).toContain("$btopic");
  });

  it("refuses a state set naming an event it was not given", async () => {
    const events = await file("few.jsonl", [create, aliceJoin].map((e) => JSON.stringify(e)).join("\n"));
    const r = await runCli(["state", "resolve", "--room-version", "10", "--events", events, await file("s3.json", ["$nope"])]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/event \$nope is not in --events/);
  });
});
