import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JsonObject } from "./json.js";
import {
  MAX_AUTH_EVENTS,
  MAX_PREV_EVENTS,
  PDU_V11_SCHEMA,
  PDU_V12_SCHEMA,
  PDU_V1_SCHEMA,
  PDU_V3_SCHEMA,
  PDU_V6_SCHEMA,
  type JsonSchema,
  type PduV1,
  type PduV12,
  type PduV3,
  pduSchemaFor,
} from "./pdu.js";
import { ROOM_VERSIONS, getRoomVersion, type RoomVersionRules } from "./room-versions.js";

function fixture(name: string): JsonObject {
  return JSON.parse(readFileSync(new URL(`../fixtures/spec/${name}.json`, import.meta.url), "utf8")) as JsonObject;
}

// strict: true turns ajv's strict-mode warnings (unknown keywords, missing types, loose
// tuples) into compile errors, so every schema here is checked for them.
const ajv = new Ajv({ strict: true, allErrors: true });

function check(schema: JsonSchema, data: unknown): ErrorObject[] {
  const validate = ajv.compile(schema);
  return validate(data) ? [] : (validate.errors ?? []);
}

/** The fields errors point at: `/depth`, `/prev_events/0`, or `/room_id` for a missing key. */
function fields(errors: ErrorObject[]): string[] {
  return errors
    .filter((e) => e.keyword !== "if")
    .map((e) => (e.keyword === "required" ? `${e.instancePath}/${String(e.params["missingProperty"])}` : e.instancePath));
}

const clone = <T>(value: T): T => structuredClone(value);

const ALL = { PDU_V1_SCHEMA, PDU_V3_SCHEMA, PDU_V6_SCHEMA, PDU_V11_SCHEMA, PDU_V12_SCHEMA };

describe("PDU schemas", () => {
  it("compile under ajv strict mode", () => {
    for (const [name, schema] of Object.entries(ALL)) expect(() => ajv.compile(schema), name).not.toThrow();
  });

  it("pick the spec's schema for each room version", () => {
    const expected: Record<string, JsonSchema> = {
      "1": PDU_V1_SCHEMA,
      "2": PDU_V1_SCHEMA,
      "3": PDU_V3_SCHEMA,
      "4": PDU_V3_SCHEMA,
      "5": PDU_V3_SCHEMA,
      "6": PDU_V6_SCHEMA,
      "7": PDU_V6_SCHEMA,
      "8": PDU_V6_SCHEMA,
      "9": PDU_V6_SCHEMA,
      "10": PDU_V6_SCHEMA,
      "11": PDU_V11_SCHEMA,
      "12": PDU_V12_SCHEMA,
    };
    for (const [version, rules] of Object.entries(ROOM_VERSIONS)) expect(pduSchemaFor(rules), version).toBe(expected[version]);
  });

  it("builds a schema for custom rules from their flags and returns the same one each time", () => {
    const custom: RoomVersionRules = { ...getRoomVersion("12"), id: "org.example.deep", maxDepth: 1000n };
    const schema = pduSchemaFor(custom);
    expect(pduSchemaFor({ ...custom })).toBe(schema);
    const event = clone(fixture("pdu_v12"));
    expect(check(schema, { ...event, depth: 1000 })).toEqual([]);
    expect(fields(check(schema, { ...event, depth: 1001 }))).toEqual(["/depth"]);
  });

  it("accepts the spec's example PDU for each format", () => {
    expect(check(PDU_V1_SCHEMA, fixture("pdu_v1"))).toEqual([]);
    expect(check(PDU_V3_SCHEMA, fixture("pdu_v3"))).toEqual([]);
    for (const schema of [PDU_V3_SCHEMA, PDU_V6_SCHEMA]) {
      expect(check(schema, fixture("pdu_v4"))).toEqual([]);
      expect(check(schema, fixture("pdu_v4_join_membership"))).toEqual([]);
    }
    expect(check(PDU_V11_SCHEMA, fixture("pdu_v11"))).toEqual([]);
    expect(check(PDU_V12_SCHEMA, fixture("pdu_v12"))).toEqual([]);
  });

  it("accepts the spec's signed test-vector event, legacy origin and all, in rooms 3-12", () => {
    const signed = fixture("signed_event_minimal");
    expect(signed["origin"]).toBe("domain");
    for (const schema of [PDU_V3_SCHEMA, PDU_V6_SCHEMA, PDU_V11_SCHEMA, PDU_V12_SCHEMA]) expect(check(schema, signed)).toEqual([]);
  });

  it("refuses the spec's signing example that is not a full PDU, naming what is missing", () => {
    expect(fields(check(PDU_V1_SCHEMA, fixture("signed_event_redactable"))).sort()).toEqual(["/auth_events", "/depth", "/prev_events"]);
  });

  it("keeps each format's references apart", () => {
    expect(fields(check(PDU_V3_SCHEMA, fixture("pdu_v1"))).sort()).toEqual(["/auth_events/0", "/prev_events/0"]);
    expect(fields(check(PDU_V1_SCHEMA, fixture("pdu_v4"))).sort()).toEqual(["/auth_events/0", "/auth_events/1", "/event_id", "/prev_events/0", "/prev_events/1"]);
  });

  it("does not forbid unknown top-level keys", () => {
    const event = { ...fixture("pdu_v11"), origin: "example.com", prev_state: [], "org.example.custom": { x: 1 } };
    expect(check(PDU_V11_SCHEMA, event)).toEqual([]);
  });

  it.each([
    ["type", PDU_V6_SCHEMA, "pdu_v4"],
    ["sender", PDU_V6_SCHEMA, "pdu_v4"],
    ["origin_server_ts", PDU_V6_SCHEMA, "pdu_v4"],
    ["content", PDU_V6_SCHEMA, "pdu_v4"],
    ["depth", PDU_V6_SCHEMA, "pdu_v4"],
    ["hashes", PDU_V6_SCHEMA, "pdu_v4"],
    ["signatures", PDU_V6_SCHEMA, "pdu_v4"],
    ["prev_events", PDU_V6_SCHEMA, "pdu_v4"],
    ["auth_events", PDU_V6_SCHEMA, "pdu_v4"],
    ["room_id", PDU_V6_SCHEMA, "pdu_v4"],
    ["event_id", PDU_V1_SCHEMA, "pdu_v1"],
    ["room_id", PDU_V12_SCHEMA, "pdu_v12"],
  ] as const)("refuses a PDU without %s, naming it", (key, schema, name) => {
    const event = clone(fixture(name));
    delete event[key];
    expect(fields(check(schema, event))).toEqual([`/${key}`]);
  });

  it.each([
    ["type", 1],
    ["sender", "alice:example.com"],
    ["origin_server_ts", "1404838188000"],
    ["origin_server_ts", 1.5],
    ["content", "hello"],
    ["content", null],
    ["state_key", 0],
    ["depth", -1],
    ["depth", 2.5],
    ["depth", "12"],
    ["hashes", "abc"],
    ["signatures", []],
    ["unsigned", 4612],
    ["room_id", "#alias:example.org"],
    ["redacts", 5],
    ["prev_events", "$abc"],
    ["auth_events", {}],
  ])("refuses a PDU whose %s is %j, naming it", (key, value) => {
    const event = { ...clone(fixture("pdu_v4")), [key]: value };
    expect(fields(check(PDU_V6_SCHEMA, event))).toEqual([`/${key}`]);
  });

  it("refuses hashes without a string sha256, naming it", () => {
    const event = clone(fixture("pdu_v4"));
    expect(fields(check(PDU_V6_SCHEMA, { ...event, hashes: {} }))).toEqual(["/hashes/sha256"]);
    expect(fields(check(PDU_V6_SCHEMA, { ...event, hashes: { sha256: 1 } }))).toEqual(["/hashes/sha256"]);
    expect(check(PDU_V6_SCHEMA, { ...event, hashes: { sha256: "x", sha512: "y" } })).toEqual([]);
  });

  it("refuses signatures that are not an object of objects of strings, naming the spot", () => {
    const event = clone(fixture("pdu_v4"));
    expect(fields(check(PDU_V6_SCHEMA, { ...event, signatures: { "example.com": "sig" } }))).toEqual(["/signatures/example.com"]);
    expect(fields(check(PDU_V6_SCHEMA, { ...event, signatures: { "example.com": { "ed25519:1": 5 } } }))).toEqual([
      "/signatures/example.com/ed25519:1",
    ]);
  });

  it("refuses a non-integer age in unsigned but keeps other unsigned keys", () => {
    const event = clone(fixture("pdu_v4"));
    expect(fields(check(PDU_V6_SCHEMA, { ...event, unsigned: { age: "1" } }))).toEqual(["/unsigned/age"]);
    expect(check(PDU_V6_SCHEMA, { ...event, unsigned: { age_ts: 1, "m.relations": {} } })).toEqual([]);
  });

  it(`allows ${MAX_PREV_EVENTS} prev_events and ${MAX_AUTH_EVENTS} auth_events, and not one more`, () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `$event${i}`);
    const event = clone(fixture("pdu_v4"));
    expect(check(PDU_V6_SCHEMA, { ...event, prev_events: ids(20), auth_events: ids(10) })).toEqual([]);
    expect(fields(check(PDU_V6_SCHEMA, { ...event, prev_events: ids(21) }))).toEqual(["/prev_events"]);
    expect(fields(check(PDU_V6_SCHEMA, { ...event, auth_events: ids(11) }))).toEqual(["/auth_events"]);
    const pairs = (n: number) => ids(n).map((id) => [id, { sha256: "x" }]);
    const v1 = clone(fixture("pdu_v1"));
    expect(check(PDU_V1_SCHEMA, { ...v1, prev_events: pairs(20), auth_events: pairs(10) })).toEqual([]);
    expect(fields(check(PDU_V1_SCHEMA, { ...v1, prev_events: pairs(21) }))).toEqual(["/prev_events"]);
    expect(fields(check(PDU_V1_SCHEMA, { ...v1, auth_events: pairs(11) }))).toEqual(["/auth_events"]);
  });

  it("checks the count limits for every list length", () => {
    const event = clone(fixture("pdu_v4"));
    fc.assert(
      fc.property(fc.nat({ max: 30 }), fc.nat({ max: 30 }), (prev, auth) => {
        const data = {
          ...event,
          prev_events: Array.from({ length: prev }, (_, i) => `$p${i}`),
          auth_events: Array.from({ length: auth }, (_, i) => `$a${i}`),
        };
        expect(check(PDU_V6_SCHEMA, data).length === 0).toBe(prev <= 20 && auth <= 10);
      }),
    );
  });

  it("limits depth to 2^53-1 from room 6 and to 2^63-1 before", () => {
    const event = clone(fixture("pdu_v4"));
    const max = Number.MAX_SAFE_INTEGER;
    expect(check(PDU_V6_SCHEMA, { ...event, depth: max })).toEqual([]);
    expect(fields(check(PDU_V6_SCHEMA, { ...event, depth: max + 1 }))).toEqual(["/depth"]);
    expect(check(PDU_V3_SCHEMA, { ...event, depth: max + 1 })).toEqual([]);
    expect(check(PDU_V3_SCHEMA, { ...event, depth: 2 ** 62 })).toEqual([]);
    expect(fields(check(PDU_V3_SCHEMA, { ...event, depth: 2 ** 64 }))).toEqual(["/depth"]);
    expect(check(PDU_V6_SCHEMA, { ...event, depth: 0 })).toEqual([]);
  });

  it("requires rooms 1-2 references to be [event ID, hashes] pairs, allowing empty hashes", () => {
    const v1 = clone(fixture("pdu_v1"));
    expect(check(PDU_V1_SCHEMA, { ...v1, prev_events: [["$a:example.org", {}]] })).toEqual([]);
    for (const bad of [["$a:example.org"], [{ sha256: "x" }, "$a:example.org"], ["$a:example.org", { sha256: "x" }, "extra"], ["$a:example.org", { sha256: 1 }], "$a:example.org"]) {
      const errors = fields(check(PDU_V1_SCHEMA, { ...v1, prev_events: [bad] }));
      expect(errors.length, JSON.stringify(bad)).toBeGreaterThan(0);
      for (const path of errors) expect(path.startsWith("/prev_events/0")).toBe(true);
    }
  });

  it("lets a room 12 create event omit room_id, and nothing else", () => {
    const create = {
      type: "m.room.create",
      state_key: "",
      sender: "@creator:example.org",
      origin_server_ts: 1,
      content: { room_version: "12" },
      depth: 1,
      prev_events: [],
      auth_events: [],
      hashes: { sha256: "x" },
      signatures: { "example.org": { "ed25519:1": "sig" } },
    };
    expect(check(PDU_V12_SCHEMA, create)).toEqual([]);
    expect(fields(check(PDU_V12_SCHEMA, { ...create, type: "m.room.member", state_key: "@creator:example.org" }))).toEqual(["/room_id"]);
    // Rooms 1-11 need room_id on the create event too.
    expect(fields(check(PDU_V11_SCHEMA, create))).toEqual(["/room_id"]);
  });

  it("checks top-level redacts where rooms 1-10 put it, and leaves it alone from room 11", () => {
    const event = clone(fixture("pdu_v4"));
    expect(fields(check(PDU_V6_SCHEMA, { ...event, redacts: 1 }))).toEqual(["/redacts"]);
    expect(check(PDU_V11_SCHEMA, { ...event, redacts: 1 })).toEqual([]);
  });

  it("are frozen", () => {
    for (const schema of Object.values(ALL)) {
      expect(Object.isFrozen(schema)).toBe(true);
      expect(Object.isFrozen(schema["properties"])).toBe(true);
    }
  });
});

describe("PDU types", () => {
  it("describe values the matching schema accepts, and pass as JSON objects without a cast", () => {
    const v1: PduV1 = {
      event_id: "$a4ecee13e2accdadf56c1025:example.com",
      room_id: "!UcYsUzyxTGDxLBEvLy:example.org",
      sender: "@alice:example.com",
      origin_server_ts: 1404838188000,
      depth: 12,
      type: "m.room.message",
      content: { key: "value" },
      hashes: { sha256: "thishashcoversallfieldsincasethisisredacted" },
      signatures: { "example.com": { "ed25519:key_version": "sig" } },
      auth_events: [["$af232176:example.org", { sha256: "abase64encodedsha256hashshouldbe43byteslong" }]],
      prev_events: [["$af232176:example.org", {}]],
    };
    const v3: PduV3 = {
      room_id: "!UcYsUzyxTGDxLBEvLy:example.org",
      sender: "@alice:example.com",
      origin_server_ts: 1404838188000,
      depth: 12,
      type: "m.room.redaction",
      content: {},
      redacts: "$some/old+event",
      hashes: { sha256: "x" },
      signatures: {},
      auth_events: ["$base64encodedeventid"],
      prev_events: ["$adifferenteventid"],
      origin: "example.com",
    };
    const create: PduV12 = {
      type: "m.room.create",
      state_key: "",
      sender: "@creator:example.org",
      origin_server_ts: 1,
      content: {},
      depth: 1,
      prev_events: [],
      auth_events: [],
      hashes: { sha256: "x" },
      signatures: {},
    };
    const cases: [JsonObject, string][] = [
      [v1, "1"],
      [v3, "3"],
      [create, "12"],
    ];
    for (const [event, version] of cases) expect(check(pduSchemaFor(getRoomVersion(version)), event)).toEqual([]);

    // Type-level checks, enforced by the typecheck: each format's references keep their shape.
    // @ts-expect-error rooms 3+ list plain event IDs
    const pairsInV3: PduV3 = { ...v3, prev_events: [["$a", {}]] };
    // @ts-expect-error rooms 1-2 list [event ID, hashes] pairs
    const idsInV1: PduV1 = { ...v1, prev_events: ["$a"] };
    // @ts-expect-error depth is required
    const noDepth: PduV3 = { ...v3, depth: undefined };
    expect([pairsInV3, idsInV1, noDepth]).toHaveLength(3);
  });
});
