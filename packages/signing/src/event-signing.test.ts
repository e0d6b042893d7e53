import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { ROOM_VERSIONS, getRoomVersion } from "@myelin/types";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { encodeCanonicalJson } from "./canonical-json.js";
import { computeEventId } from "./event-hashes.js";
import { requiredSigningServers, signEvent, verifyEvent, verifyEvents } from "./event-signing.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import type { KeyLookup, VerifyKey } from "./json-signing.js";
import { JsonNumberToken } from "./json-number-token.js";
import { parseJson } from "./json-parse.js";
import { generateSigningKey, signingKeyFromSeed } from "./keys.js";
import { redactEvent } from "./redaction.js";
import { canonicalJsonObject } from "./test-support/arbitraries.js";

const v = getRoomVersion;
const versions = Object.values(ROOM_VERSIONS);
const specKey = signingKeyFromSeed(decodeBase64(vectors.spec.signing_key.seed_base64), "1");
const keyA = generateSigningKey("a");
const keyB = generateSigningKey("b");
const keyC = generateSigningKey("c");

const ring: Record<string, Record<string, VerifyKey>> = {
  domain: { "ed25519:1": specKey },
  "a.example": { "ed25519:a": keyA },
  "b.example": { "ed25519:b": keyB },
  "c.example": { "ed25519:c": keyC },
};
const lookupKey: KeyLookup = (server, keyId) => ring[server]?.[keyId];

const [minimalVector, redactableVector] = vectors.spec.event_signing as [
  (typeof vectors.spec.event_signing)[number],
  (typeof vectors.spec.event_signing)[number],
];

function pdu(overrides: JsonObject = {}): JsonObject {
  return {
    type: "m.room.message",
    room_id: "!room:a.example",
    sender: "@alice:a.example",
    origin_server_ts: 1_700_000_000_000,
    depth: 5,
    prev_events: ["$prev"],
    auth_events: ["$auth"],
    content: { body: "hello", msgtype: "m.text" },
    ...overrides,
  };
}

describe("spec vectors (Cryptographic Test Vectors: event signing)", () => {
  const preV11 = versions.filter((r) => r.redaction !== "v11");

  it.each(preV11.map((r) => [r.id, r] as const))("room %s signs both spec events exactly as the spec shows", (_id, rules) => {
    for (const vector of [minimalVector, redactableVector]) {
      const signed = signEvent(JSON.parse(vector.input) as JsonObject, "domain", specKey, rules);
      expect(signed).toStrictEqual(JSON.parse(vector.expected_signed));
    }
  });

  it.each(["11", "12"])("room %s signs them with the derived v11-redaction signatures instead", (id) => {
    const minimal = signEvent(JSON.parse(minimalVector.input) as JsonObject, "domain", specKey, v(id));
    const redactable = signEvent(JSON.parse(redactableVector.input) as JsonObject, "domain", specKey, v(id));
    expect(minimal.signatures["domain"]?.["ed25519:1"]).toBe(vectors.derived.minimal_event_signature_if_v11_plus_redaction);
    expect(redactable.signatures["domain"]?.["ed25519:1"]).toBe(vectors.derived.redactable_event_signature_if_v11_plus_redaction);
  });

  it("verifies the spec's signed events with the pre-v11 algorithm only", async () => {
    const minimal = JSON.parse(minimalVector.expected_signed) as JsonObject;
    const redactable = JSON.parse(redactableVector.expected_signed) as JsonObject;
    expect(await verifyEvent(minimal, { rules: v("10"), lookupKey })).toEqual({ outcome: "valid" });
    expect(await verifyEvent(redactable, { rules: v("1"), lookupKey })).toEqual({ outcome: "valid" });
    expect(await verifyEvent(minimal, { rules: v("11"), lookupKey })).toMatchObject({
      outcome: "reject",
      reason: { code: "bad-signature", server: "domain" },
    });
  });
});

describe("signEvent", () => {
  it("does not modify its input and keeps unsigned", () => {
    const input = pdu({ unsigned: { age: 1 } });
    const before = structuredClone(input);
    const signed = signEvent(input, "a.example", keyA, v("12"));
    expect(input).toStrictEqual(before);
    expect(signed.unsigned).toEqual({ age: 1 });
  });

  it("keeps another server's signature when co-signing, and both verify", async () => {
    const join = pdu({ type: "m.room.member", state_key: "@bob:b.example", sender: "@bob:b.example", content: { membership: "join" } });
    const bySender = signEvent(join, "b.example", keyB, v("10"));
    const byResident = signEvent(bySender, "a.example", keyA, v("10"));
    expect(Object.keys(byResident.signatures).sort()).toEqual(["a.example", "b.example"]);
    expect(byResident.hashes).toEqual(bySender.hashes);
    expect(await verifyEvent(byResident, { rules: v("10"), lookupKey })).toEqual({ outcome: "valid" });
  });
});

describe("verifyEvent", () => {
  it.each(versions.map((r) => [r.id, r] as const))("accepts a freshly signed event in room %s", async (_id, rules) => {
    const event = signEvent(pdu(rules.eventFormat === "v1" ? { event_id: "$1:a.example" } : {}), "a.example", keyA, rules);
    expect(await verifyEvent(event, { rules, lookupKey })).toEqual({ outcome: "valid" });
  });

  it("returns the redacted event when only the content hash fails", async () => {
    const event = signEvent(pdu(), "a.example", keyA, v("12"));
    const tampered = { ...event, content: { body: "changed", msgtype: "m.text" }, unsigned: { age: 1 } };
    const result = await verifyEvent(tampered, { rules: v("12"), lookupKey });
    expect(result).toEqual({ outcome: "redact", redacted: redactEvent(tampered, v("12")) });
    expect(result.outcome === "redact" && result.redacted["content"]).toEqual({});
  });

  it("rejects an event its sender's server did not sign (relayed by another server)", async () => {
    const event = signEvent(pdu({ sender: "@bob:b.example" }), "a.example", keyA, v("12"));
    expect(await verifyEvent(event, { rules: v("12"), lookupKey })).toEqual({
      outcome: "reject",
      reason: { code: "missing-signature", server: "b.example" },
    });
  });

  it("rejects a signature that does not cover a changed essential field", async () => {
    const event = signEvent(pdu(), "a.example", keyA, v("12"));
    expect(await verifyEvent({ ...event, depth: 6 }, { rules: v("12"), lookupKey })).toEqual({
      outcome: "reject",
      reason: { code: "bad-signature", server: "a.example", keyId: "ed25519:a" },
    });
  });

  it("rejects when the signing key is unknown", async () => {
    const event = signEvent(pdu(), "a.example", generateSigningKey("z"), v("12"));
    expect(await verifyEvent(event, { rules: v("12"), lookupKey })).toEqual({
      outcome: "reject",
      reason: { code: "unknown-key", server: "a.example" },
    });
  });

  it("rejects an event signed only under an unknown algorithm", async () => {
    const event = { ...signEvent(pdu(), "a.example", keyA, v("12")), signatures: { "a.example": { "foo:a": "AAAA" } } };
    expect(await verifyEvent(event, { rules: v("12"), lookupKey })).toMatchObject({
      outcome: "reject",
      reason: { code: "unsupported-algorithm" },
    });
  });

  it("rejects a malformed signatures member instead of throwing", async () => {
    const event = { ...signEvent(pdu(), "a.example", keyA, v("12")), signatures: { "a.example": "x" } };
    expect(await verifyEvent(event, { rules: v("12"), lookupKey })).toMatchObject({
      outcome: "reject",
      reason: { code: "malformed-signature" },
    });
  });

  describe("key validity", () => {
    const ts = 1_700_000_000_000;
    const event = (rules: RoomVersionRules): JsonObject =>
      signEvent(pdu(rules.eventFormat === "v1" ? { event_id: "$1:a.example" } : {}), "a.example", keyA, rules);
    const withKey = (key: VerifyKey): KeyLookup => (server, keyId) =>
      server === "a.example" && keyId === "ed25519:a" ? key : undefined;

    it.each(versions.map((r) => [r.id, r] as const))(
      "room %s enforces valid_until_ts only from room 5",
      async (_id, rules) => {
        const result = await verifyEvent(event(rules), { rules, lookupKey: withKey({ ...keyA, validUntilTs: ts - 1 }) });
        if (rules.enforceKeyValidity) {
          expect(result).toEqual({ outcome: "reject", reason: { code: "key-expired", server: "a.example" } });
        } else {
          expect(result).toEqual({ outcome: "valid" });
        }
      },
    );

    it("accepts a key valid exactly until the event's timestamp", async () => {
      const result = await verifyEvent(event(v("12")), { rules: v("12"), lookupKey: withKey({ ...keyA, validUntilTs: ts }) });
      expect(result).toEqual({ outcome: "valid" });
    });

    it.each(versions.map((r) => [r.id, r] as const))(
      "room %s ignores an old key that expired before the event",
      async (_id, rules) => {
        expect(await verifyEvent(event(rules), { rules, lookupKey: withKey({ ...keyA, expiredTs: ts - 1 }) })).toEqual({
          outcome: "reject",
          reason: { code: "key-expired", server: "a.example" },
        });
        expect(await verifyEvent(event(rules), { rules, lookupKey: withKey({ ...keyA, expiredTs: ts }) })).toEqual({
          outcome: "valid",
        });
      },
    );
  });

  describe("which servers must sign", () => {
    it("rooms 1-2 also need the event ID's server", async () => {
      const event = signEvent(pdu({ event_id: "$1:b.example" }), "a.example", keyA, v("1"));
      expect(await verifyEvent(event, { rules: v("1"), lookupKey })).toEqual({
        outcome: "reject",
        reason: { code: "missing-signature", server: "b.example" },
      });
      const both = signEvent(event, "b.example", keyB, v("1"));
      expect(await verifyEvent(both, { rules: v("1"), lookupKey })).toEqual({ outcome: "valid" });
      expect(requiredSigningServers(both, v("2"))).toEqual(["a.example", "b.example"]);
    });

    it("room 3+ needs only the sender's server", () => {
      expect(requiredSigningServers(pdu({ event_id: "$1:b.example" }), v("3"))).toEqual(["a.example"]);
    });

    it("does not need the sender's server for an invite from a third-party invite", async () => {
      const invite = pdu({
        type: "m.room.member",
        state_key: "@carol:c.example",
        sender: "@alice:b.example",
        content: { membership: "invite", third_party_invite: { signed: { mxid: "@carol:c.example", token: "t", signatures: {} } } },
      });
      expect(requiredSigningServers(invite, v("12"))).toEqual([]);
      const signedByOther = signEvent(invite, "a.example", keyA, v("12"));
      expect(await verifyEvent(signedByOther, { rules: v("12"), lookupKey })).toEqual({ outcome: "valid" });
    });

    it("rooms 8+ need the authorising server of a restricted join", async () => {
      const join = pdu({
        type: "m.room.member",
        state_key: "@bob:b.example",
        sender: "@bob:b.example",
        content: { membership: "join", join_authorised_via_users_server: "@admin:c.example" },
      });
      expect(requiredSigningServers(join, v("7"))).toEqual(["b.example"]);
      expect(requiredSigningServers(join, v("8"))).toEqual(["b.example", "c.example"]);
      const bySender = signEvent(join, "b.example", keyB, v("9"));
      expect(await verifyEvent(bySender, { rules: v("9"), lookupKey })).toEqual({
        outcome: "reject",
        reason: { code: "missing-signature", server: "c.example" },
      });
      const both = signEvent(bySender, "c.example", keyC, v("9"));
      expect(await verifyEvent(both, { rules: v("9"), lookupKey })).toEqual({ outcome: "valid" });
    });
  });

  describe("malformed events are rejected, not thrown", () => {
    it.each<[string, JsonObject, string]>([
      ["no sender", { sender: null }, "sender is not a user ID"],
      ["no origin_server_ts", { origin_server_ts: "1" }, "origin_server_ts is not a number"],
    ])("%s", async (_name, overrides, detail) => {
      const event = { ...signEvent(pdu(), "a.example", keyA, v("12")), ...overrides };
      expect(await verifyEvent(event, { rules: v("12"), lookupKey })).toEqual({
        outcome: "reject",
        reason: { code: "malformed-event", detail },
      });
    });

    it("a room 1-2 event without event_id", async () => {
      expect(await verifyEvent(signEvent(pdu(), "a.example", keyA, v("1")), { rules: v("1"), lookupKey })).toMatchObject({
        outcome: "reject",
        reason: { code: "malformed-event" },
      });
    });
  });

  describe("non-canonical JSON", () => {
    it("rooms 6+ reject a float in content", async () => {
      const event = { ...signEvent(pdu(), "a.example", keyA, v("6")), content: { body: "x", n: 1.5 } };
      expect(await verifyEvent(event, { rules: v("6"), lookupKey })).toMatchObject({
        outcome: "reject",
        reason: { code: "non-canonical-json" },
      });
    });

    it("rooms 1-5 fall back to the redacted event when content holds a float", async () => {
      const rules = v("5");
      const event = { ...signEvent(pdu(), "a.example", keyA, rules), content: { body: "x", n: 1.5 } };
      expect(await verifyEvent(event, { rules, lookupKey })).toEqual({ outcome: "redact", redacted: redactEvent(event, rules) });
    });

    it("any room rejects a float in a field its redaction keeps", async () => {
      const event = { ...signEvent(pdu(), "a.example", keyA, v("3")), depth: 1.5 };
      expect(await verifyEvent(event, { rules: v("3"), lookupKey })).toMatchObject({
        outcome: "reject",
        reason: { code: "non-canonical-json" },
      });
    });
  });

  it("accepts asynchronous key lookups", async () => {
    const event = signEvent(pdu(), "a.example", keyA, v("12"));
    const asyncLookup: KeyLookup = async (server, keyId) => lookupKey(server, keyId);
    expect(await verifyEvent(event, { rules: v("12"), lookupKey: asyncLookup })).toEqual({ outcome: "valid" });
  });
});

describe("verifyEvents", () => {
  it("looks each distinct key up once and returns results in order", async () => {
    const rules = v("12");
    const good = Array.from({ length: 5 }, (_, i) => signEvent(pdu({ depth: i }), "a.example", keyA, rules));
    const fromB = signEvent(pdu({ sender: "@bob:b.example" }), "b.example", keyB, rules);
    const bad = { ...good[0], depth: 99 } as JsonObject;
    const calls: string[] = [];
    const counting: KeyLookup = async (server, keyId) => {
      calls.push(`${server} ${keyId}`);
      return lookupKey(server, keyId);
    };
    const results = await verifyEvents([...good, fromB, bad], { rules, lookupKey: counting });
    expect(calls.sort()).toEqual(["a.example ed25519:a", "b.example ed25519:b"]);
    expect(results.map((r) => r.outcome)).toEqual(["valid", "valid", "valid", "valid", "valid", "valid", "reject"]);
  });
});

describe("properties", () => {
  const rulesArb = fc.constantFrom(...versions);

  it("sign then verify is valid for any content in any room version", async () => {
    await fc.assert(
      fc.asyncProperty(rulesArb, canonicalJsonObject, fc.constantFrom("m.room.message", "m.room.member", "m.room.create", "m.room.power_levels"), async (rules, content, type) => {
        const event = signEvent(
          pdu({ type, content, ...(rules.eventFormat === "v1" ? { event_id: "$e:a.example" } : {}) }),
          "a.example",
          keyA,
          rules,
        );
        expect(await verifyEvent(event, { rules, lookupKey })).toEqual({ outcome: "valid" });
      }),
      { numRuns: 60 },
    );
  });

  it("changing content never invalidates the signature, only the hash (redact outcome)", async () => {
    await fc.assert(
      fc.asyncProperty(rulesArb, canonicalJsonObject, async (rules, content) => {
        const event = signEvent(pdu(rules.eventFormat === "v1" ? { event_id: "$e:a.example" } : {}), "a.example", keyA, rules);
        fc.pre(JSON.stringify(content) !== JSON.stringify(event["content"]));
        const result = await verifyEvent({ ...event, content }, { rules, lookupKey });
        expect(result.outcome).toBe("redact");
      }),
      { numRuns: 60 },
    );
  });
});

// Synapse's signing stack (canonicaljson, signedjson) in the project's venv.
const PYTHON = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));
const noPython = !existsSync(PYTHON);
const SKIP_NOTE = noPython ? " [SKIPPED: .venv/bin/python missing; run bash scripts/python-env.sh]" : "";

/**
 * Hashes and signs a power-levels event the way Synapse does (room versions 3-5: v1
 * redaction, URL-safe reference-hash event IDs), from its JSON text: Python reads floats as
 * floats and big integers exactly. Returns the signed event as Synapse sends it, and its ID.
 */
function synapseSignPowerLevels(eventText: string, server: string, seed: Uint8Array, version: string): { text: string; eventId: string } {
  const script = `
import hashlib, json, sys
from canonicaljson import encode_canonical_json
from signedjson.key import decode_signing_key_base64
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64
req = json.load(sys.stdin)
event = json.loads(req["event"])
hashed = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
event["hashes"] = {"sha256": encode_base64(hashlib.sha256(encode_canonical_json(hashed)).digest())}
top = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
       "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership"}
kept = ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"]
redacted = {k: v for k, v in event.items() if k in top}
redacted["content"] = {k: v for k, v in event["content"].items() if k in kept}
key = decode_signing_key_base64("ed25519", req["version"], req["seed"])
event["signatures"] = sign_json(dict(redacted), req["server"], key)["signatures"]
event_id = "$" + encode_base64(hashlib.sha256(encode_canonical_json(redacted)).digest(), urlsafe=True)
print(json.dumps({"text": encode_canonical_json(event).decode("utf-8"), "eventId": event_id}))
`;
  const input = JSON.stringify({ event: eventText, server, seed: encodeBase64(seed), version });
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input, encoding: "utf8" })) as { text: string; eventId: string };
}

describe("events with floats and big integers (rooms 1-5, Synapse's notation)", () => {
  const lossless = { strict: false, lossless: true } as const;
  // Floats where redaction keeps them (power levels), so they are signed, and elsewhere in
  // content, so they are only hashed.
  const eventText = JSON.stringify({
    type: "m.room.power_levels",
    room_id: "!room:a.example",
    sender: "@alice:a.example",
    state_key: "",
    origin_server_ts: 1_700_000_000_000,
    depth: 7,
    prev_events: ["$prev"],
    auth_events: ["$auth"],
    content: { ban: "@@BAN@@", users: { "@alice:a.example": "@@USER@@" }, users_default: "@@DEFAULT@@", note: "@@NOTE@@" },
  })
    .replace('"@@BAN@@"', "50.0")
    .replace('"@@USER@@"', "1E2")
    .replace('"@@DEFAULT@@"', "123456789012345678901234567890")
    .replace('"@@NOTE@@"', "0.00001");

  it.skipIf(noPython)(`verifies an event Synapse's signedjson signed, and computes Synapse's event ID for it${SKIP_NOTE}`, async () => {
    const signed = synapseSignPowerLevels(eventText, "a.example", keyA.seed, "a");
    const event = parseJson(signed.text, lossless) as JsonObject;
    expect((event["content"] as JsonObject)["ban"]).toBeInstanceOf(JsonNumberToken);
    expect(await verifyEvent(event, { rules: v("5"), lookupKey, compat: "synapse" })).toEqual({ outcome: "valid" });
    expect(computeEventId(event, v("5"), { compat: "synapse" })).toBe(signed.eventId);
    // Without the Synapse notation the signed bytes cannot even be formed.
    expect(await verifyEvent(event, { rules: v("5"), lookupKey })).toMatchObject({ outcome: "reject", reason: { code: "non-canonical-json" } });
  });

  it("signs and verifies such an event itself with compat, and redacts it when its hashed content changes", async () => {
    const event = signEvent(parseJson(eventText, lossless) as JsonObject, "a.example", keyA, v("5"), { compat: "synapse" });
    expect(await verifyEvent(event, { rules: v("5"), lookupKey, compat: "synapse" })).toEqual({ outcome: "valid" });
    const altered = { ...event, content: { ...(event["content"] as JsonObject), note: new JsonNumberToken("0.0001") as unknown as JsonObject } };
    const result = await verifyEvent(altered, { rules: v("5"), lookupKey, compat: "synapse" });
    expect(result.outcome).toBe("redact");
    // The bytes signed are Synapse's: 50.0 and 1E2 are written 50.0 and 100.0.
    expect(encodeCanonicalJson(event["content"], { compat: "synapse" })).toMatch(/"ban":50\.0,.*"users":\{"@alice:a\.example":100\.0\}/);
  });

  it("rejects it in rooms 6+ even when asked for compat (canonical JSON is required there)", async () => {
    for (const id of ["6", "10", "11"]) {
      const event = signEvent(parseJson(eventText, lossless) as JsonObject, "a.example", keyA, v(id), { compat: "synapse" });
      expect(await verifyEvent(event, { rules: v(id), lookupKey, compat: "synapse" }), id).toMatchObject({
        outcome: "reject",
        reason: { code: "non-canonical-json" },
      });
    }
  });

  it("rejects in rooms 6+ a token that redaction removes (it is still in the content hash)", async () => {
    const content = { body: "x", n: new JsonNumberToken("1.5") } as unknown as JsonObject;
    const event = signEvent(pdu({ content }), "a.example", keyA, v("10"), { compat: "synapse" });
    expect(await verifyEvent(event, { rules: v("10"), lookupKey, compat: "synapse" })).toMatchObject({ outcome: "reject" });
    const v5 = signEvent(pdu({ content }), "a.example", keyA, v("5"), { compat: "synapse" });
    expect(await verifyEvents([v5], { rules: v("5"), lookupKey, compat: "synapse" })).toEqual([{ outcome: "valid" }]);
  });
});
