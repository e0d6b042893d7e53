import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JsonObject, RoomVersionRules } from "@myelin/types";
import { ROOM_VERSIONS, getRoomVersion } from "@myelin/types";
import { decodeBase64 } from "./base64.js";
import { requiredSigningServers, signEvent, verifyEvent, verifyEvents } from "./event-signing.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import type { KeyLookup, VerifyKey } from "./json-signing.js";
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
