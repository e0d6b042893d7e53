import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { describe, expect, it } from "vitest";
import {
  DEVICE_LIST_UPDATE_EDU_SCHEMA,
  DIRECT_TO_DEVICE_EDU_SCHEMA,
  EDU_SCHEMA,
  EDU_SCHEMAS,
  MAX_TRANSACTION_EDUS,
  MAX_TRANSACTION_PDUS,
  PRESENCE_EDU_SCHEMA,
  RECEIPT_EDU_SCHEMA,
  SIGNING_KEY_UPDATE_EDU_SCHEMA,
  TRANSACTION_SCHEMA,
  TYPING_EDU_SCHEMA,
  type KnownEdu,
  type Transaction,
  isKnownEduType,
} from "./edu.js";
import type { JsonObject } from "./json.js";
import type { JsonSchema } from "./pdu.js";

function fixture(name: string): JsonObject {
  return JSON.parse(readFileSync(new URL(`../fixtures/spec/${name}.json`, import.meta.url), "utf8")) as JsonObject;
}

const ajv = new Ajv({ strict: true, allErrors: true });

function check(schema: JsonSchema, data: unknown): ErrorObject[] {
  const validate = ajv.compile(schema);
  return validate(data) ? [] : (validate.errors ?? []);
}

/** Where the errors point; a missing key is reported as the path it should have had. */
function fields(errors: ErrorObject[]): string[] {
  return errors
    .map((e) => (e.keyword === "required" ? `${e.instancePath}/${String(e.params["missingProperty"])}` : e.instancePath))
    .sort();
}

/** A copy of `edu` with `content[key]` replaced, or removed when `value` is undefined. */
function withContent(edu: JsonObject, key: string, value: unknown): JsonObject {
  const content = { ...(edu["content"] as JsonObject) } as Record<string, unknown>;
  if (value === undefined) delete content[key];
  else content[key] = value;
  return { ...edu, content } as JsonObject;
}

const EXAMPLES = {
  "m.typing": "edu_m.typing",
  "m.receipt": "edu_m.receipt",
  "m.presence": "edu_m.presence",
  "m.device_list_update": "edu_m.device_list_update",
  "m.signing_key_update": "edu_m.signing_key_update",
  "m.direct_to_device": "edu_m.direct_to_device",
} as const;

describe("EDU schemas", () => {
  it("compile under ajv strict mode", () => {
    for (const schema of [EDU_SCHEMA, TRANSACTION_SCHEMA, ...Object.values(EDU_SCHEMAS)]) expect(() => ajv.compile(schema)).not.toThrow();
  });

  it("accept the spec's example of every EDU type, and only under their own type", () => {
    for (const [eduType, name] of Object.entries(EXAMPLES)) {
      const example = fixture(name);
      expect(example["edu_type"]).toBe(eduType);
      expect(check(EDU_SCHEMA, example), eduType).toEqual([]);
      for (const [otherType, schema] of Object.entries(EDU_SCHEMAS)) {
        const errors = check(schema, example);
        if (otherType === eduType) expect(errors, eduType).toEqual([]);
        else expect(fields(errors), `${eduType} under ${otherType}`).toContain("/edu_type");
      }
    }
  });

  it("accept the spec's generic EDU example as an envelope", () => {
    expect(check(EDU_SCHEMA, fixture("edu"))).toEqual([]);
    expect(fields(check(EDU_SCHEMA, { edu_type: "m.presence" }))).toEqual(["/content"]);
    expect(fields(check(EDU_SCHEMA, { edu_type: 1, content: [] }))).toEqual(["/content", "/edu_type"]);
  });

  it("name every required field of every EDU type when it is missing", () => {
    const required: Record<keyof typeof EXAMPLES, string[]> = {
      "m.typing": ["room_id", "user_id", "typing"],
      "m.receipt": [],
      "m.presence": ["push"],
      "m.device_list_update": ["user_id", "device_id", "stream_id"],
      "m.signing_key_update": ["user_id"],
      "m.direct_to_device": ["sender", "type", "message_id", "messages"],
    };
    for (const [eduType, keys] of Object.entries(required) as [keyof typeof EXAMPLES, string[]][]) {
      for (const key of keys) {
        const edu = withContent(fixture(EXAMPLES[eduType]), key, undefined);
        expect(fields(check(EDU_SCHEMAS[eduType], edu)), `${eduType} without ${key}`).toEqual([`/content/${key}`]);
      }
    }
  });

  it.each([
    ["/content/typing", TYPING_EDU_SCHEMA, "edu_m.typing", "typing", "yes"],
    ["/content/room_id", TYPING_EDU_SCHEMA, "edu_m.typing", "room_id", "#alias:example.org"],
    ["/content/user_id", TYPING_EDU_SCHEMA, "edu_m.typing", "user_id", "john"],
    ["/content/push/0/presence", PRESENCE_EDU_SCHEMA, "edu_m.presence", "push", [{ user_id: "@a:b", presence: "away", last_active_ago: 1 }]],
    ["/content/push/0/last_active_ago", PRESENCE_EDU_SCHEMA, "edu_m.presence", "push", [{ user_id: "@a:b", presence: "online" }]],
    ["/content/push/0/last_active_ago", PRESENCE_EDU_SCHEMA, "edu_m.presence", "push", [{ user_id: "@a:b", presence: "online", last_active_ago: 1.5 }]],
    ["/content/stream_id", DEVICE_LIST_UPDATE_EDU_SCHEMA, "edu_m.device_list_update", "stream_id", "6"],
    ["/content/prev_id/0", DEVICE_LIST_UPDATE_EDU_SCHEMA, "edu_m.device_list_update", "prev_id", ["5"]],
    ["/content/deleted", DEVICE_LIST_UPDATE_EDU_SCHEMA, "edu_m.device_list_update", "deleted", "false"],
    ["/content/keys/signatures", DEVICE_LIST_UPDATE_EDU_SCHEMA, "edu_m.device_list_update", "keys", { user_id: "@a:b", device_id: "D", algorithms: [], keys: {} }],
    ["/content/master_key/keys", SIGNING_KEY_UPDATE_EDU_SCHEMA, "edu_m.signing_key_update", "master_key", { user_id: "@a:b", usage: ["master"], keys: {} }],
    ["/content/master_key/usage/0", SIGNING_KEY_UPDATE_EDU_SCHEMA, "edu_m.signing_key_update", "master_key", { user_id: "@a:b", usage: ["admin"], keys: { "ed25519:k": "k" } }],
    ["/content/message_id", DIRECT_TO_DEVICE_EDU_SCHEMA, "edu_m.direct_to_device", "message_id", "x".repeat(33)],
    ["/content/messages/@alice:example.org/DEVICE", DIRECT_TO_DEVICE_EDU_SCHEMA, "edu_m.direct_to_device", "messages", { "@alice:example.org": { DEVICE: "hi" } }],
  ] as const)("refuses an EDU with a bad %s, naming it", (path, schema, name, key, value) => {
    expect(fields(check(schema, withContent(fixture(name), key, value)))).toEqual([path]);
  });

  it("counts message_id length in code points, as the spec does", () => {
    const edu = fixture("edu_m.direct_to_device");
    expect(check(DIRECT_TO_DEVICE_EDU_SCHEMA, withContent(edu, "message_id", "😀".repeat(32)))).toEqual([]);
    expect(check(DIRECT_TO_DEVICE_EDU_SCHEMA, withContent(edu, "message_id", "😀".repeat(33)))).not.toEqual([]);
  });

  it("accepts an m.direct_to_device message for all of a user's devices", () => {
    const edu = withContent(fixture("edu_m.direct_to_device"), "messages", { "@alice:example.org": { "*": { body: "x" } } });
    expect(check(DIRECT_TO_DEVICE_EDU_SCHEMA, edu)).toEqual([]);
  });

  it("requires exactly one event ID in a read receipt, and m.read in each room", () => {
    const receipt = (eventIds: string[]) => ({
      edu_type: "m.receipt",
      content: { "!room:example.org": { "m.read": { "@john:matrix.org": { event_ids: eventIds, data: { ts: 1, thread_id: "main" } } } } },
    });
    expect(check(RECEIPT_EDU_SCHEMA, receipt(["$a"]))).toEqual([]);
    expect(fields(check(RECEIPT_EDU_SCHEMA, receipt([])))).toEqual(["/content/!room:example.org/m.read/@john:matrix.org/event_ids"]);
    expect(fields(check(RECEIPT_EDU_SCHEMA, receipt(["$a", "$b"])))).toEqual(["/content/!room:example.org/m.read/@john:matrix.org/event_ids"]);
    expect(fields(check(RECEIPT_EDU_SCHEMA, { edu_type: "m.receipt", content: { "!room:example.org": {} } }))).toEqual([
      "/content/!room:example.org/m.read",
    ]);
    const noTs = { edu_type: "m.receipt", content: { "!r:x": { "m.read": { "@u:x": { event_ids: ["$a"], data: {} } } } } };
    expect(fields(check(RECEIPT_EDU_SCHEMA, noTs))).toEqual(["/content/!r:x/m.read/@u:x/data/ts"]);
  });

  it("let unknown content keys through, such as the timeout some servers add to m.typing", () => {
    expect(check(TYPING_EDU_SCHEMA, withContent(fixture("edu_m.typing"), "timeout", 30000))).toEqual([]);
  });

  it("tell known EDU types from others", () => {
    for (const eduType of Object.keys(EXAMPLES)) expect(isKnownEduType(eduType)).toBe(true);
    for (const other of ["m.read.private", "org.example.custom", "toString", "__proto__"]) expect(isKnownEduType(other)).toBe(false);
  });

  it("type the spec's examples", () => {
    // Compile-time: a typed literal of each known EDU; the typecheck fails if the types drift.
    const typing: KnownEdu = { edu_type: "m.typing", content: { room_id: "!r:x", user_id: "@u:x", typing: true } };
    // @ts-expect-error typing must be a boolean
    const badTyping: KnownEdu = { edu_type: "m.typing", content: { room_id: "!r:x", user_id: "@u:x", typing: "yes" } };
    expect(check(TYPING_EDU_SCHEMA, typing)).toEqual([]);
    expect(check(TYPING_EDU_SCHEMA, badTyping)).not.toEqual([]);
  });
});

describe("transaction schema", () => {
  it("accepts the spec's example transaction", () => {
    expect(check(TRANSACTION_SCHEMA, fixture("transaction"))).toEqual([]);
  });

  it("names missing and mistyped fields", () => {
    const txn = fixture("transaction");
    for (const key of ["origin", "origin_server_ts", "pdus"]) {
      const broken = { ...txn } as Record<string, unknown>;
      delete broken[key];
      expect(fields(check(TRANSACTION_SCHEMA, broken))).toEqual([`/${key}`]);
    }
    expect(fields(check(TRANSACTION_SCHEMA, { ...txn, origin_server_ts: "1" }))).toEqual(["/origin_server_ts"]);
    expect(fields(check(TRANSACTION_SCHEMA, { ...txn, pdus: ["$event"] }))).toEqual(["/pdus/0"]);
    expect(fields(check(TRANSACTION_SCHEMA, { ...txn, edus: [{ edu_type: "m.typing" }] }))).toEqual(["/edus/0/content"]);
  });

  it(`allows ${MAX_TRANSACTION_PDUS} PDUs and ${MAX_TRANSACTION_EDUS} EDUs, and not one more`, () => {
    const txn: Transaction = { origin: "matrix.org", origin_server_ts: 1, pdus: [], edus: [] };
    const pdus = (n: number) => Array.from({ length: n }, () => ({ type: "m.room.message" }));
    const edus = (n: number) => Array.from({ length: n }, () => ({ edu_type: "m.typing", content: {} }));
    expect(check(TRANSACTION_SCHEMA, { ...txn, pdus: pdus(50), edus: edus(100) })).toEqual([]);
    expect(fields(check(TRANSACTION_SCHEMA, { ...txn, pdus: pdus(51) }))).toEqual(["/pdus"]);
    expect(fields(check(TRANSACTION_SCHEMA, { ...txn, edus: edus(101) }))).toEqual(["/edus"]);
  });

  it("checks only the envelope of each EDU, so one bad EDU does not fail the transaction", () => {
    const txn = { ...fixture("transaction"), edus: [{ edu_type: "m.typing", content: { typing: "not a boolean" } }] };
    expect(check(TRANSACTION_SCHEMA, txn)).toEqual([]);
  });
});
