import { describe, expect, it } from "vitest";
import type { JsonObject } from "@myelin/types";
import { ROOM_VERSIONS, getRoomVersion } from "@myelin/types";
import { encodeBase64, encodeBase64Url } from "./base64.js";
import { encodeCanonicalJson } from "./canonical-json.js";
import {
  EventIdError,
  checkContentHash,
  computeContentHash,
  computeEventId,
  computeReferenceHash,
  computeRoomIdV12,
} from "./event-hashes.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import { redactEvent } from "./redaction.js";

const [minimalVector, redactableVector] = vectors.spec.event_signing as [
  (typeof vectors.spec.event_signing)[number],
  (typeof vectors.spec.event_signing)[number],
];
const minimal = JSON.parse(minimalVector.expected_signed) as JsonObject;
const redactable = JSON.parse(redactableVector.expected_signed) as JsonObject;
const derived = vectors.derived.minimal_signed_event_reference_hash;
const v = getRoomVersion;

describe("content hash (spec vectors)", () => {
  it.each([
    ["minimal", minimalVector],
    ["redactable", redactableVector],
  ])("computes the %s event's hashes.sha256 from its unsigned input", (_name, vector) => {
    const expected = (JSON.parse(vector.expected_signed) as { hashes: { sha256: string } }).hashes.sha256;
    expect(encodeBase64(computeContentHash(JSON.parse(vector.input) as JsonObject))).toBe(expected);
  });

  it("confirms the signed vectors' hashes", () => {
    expect(checkContentHash(minimal)).toBe(true);
    expect(checkContentHash(redactable)).toBe(true);
  });
});

describe("content hash", () => {
  it("ignores unsigned, signatures and hashes but covers every other key, known or not", () => {
    const base = computeContentHash(minimal);
    expect(computeContentHash({ ...minimal, unsigned: { x: 1 }, signatures: {}, hashes: { sha256: "x" } })).toEqual(base);
    expect(computeContentHash({ ...minimal, origin: "elsewhere" })).not.toEqual(base);
    expect(computeContentHash({ ...minimal, "org.example.custom": 1 })).not.toEqual(base);
  });

  it("reports a mismatch for changed content and for a missing or malformed hash", () => {
    expect(checkContentHash({ ...redactable, content: { body: "changed" } })).toBe(false);
    const { hashes: _hashes, ...noHashes } = redactable;
    expect(checkContentHash(noHashes)).toBe(false);
    expect(checkContentHash({ ...redactable, hashes: { sha256: "*" } })).toBe(false);
    expect(checkContentHash({ ...redactable, hashes: { sha256: 5 } })).toBe(false);
    expect(checkContentHash({ ...redactable, hashes: "x" })).toBe(false);
    expect(checkContentHash({ ...redactable, hashes: { sha256: "AAAA" } })).toBe(false);
  });
});

describe("reference hashes and event IDs (derived vectors)", () => {
  it("hashes the redacted minimal event (rooms 1-10) to the derived canonical form", () => {
    const { signatures: _s, ...redacted } = redactEvent(minimal, v("3"));
    expect(encodeCanonicalJson(redacted)).toBe(derived.redacted_canonical_json_v1_v10);
  });

  it("hashes the redacted minimal event (rooms 11+) without origin", () => {
    const { signatures: _s, ...redacted } = redactEvent(minimal, v("11"));
    expect(encodeCanonicalJson(redacted)).toBe(derived.redacted_canonical_json_v11_plus);
  });

  it("gives room 3 standard Base64 IDs and rooms 4-10 URL-safe IDs", () => {
    expect(computeEventId(minimal, v("3"))).toBe(derived.event_id_v3_style_std_base64_using_v1_v10_redaction);
    for (const id of ["4", "5", "6", "7", "8", "9", "10"]) {
      expect(computeEventId(minimal, v(id))).toBe(derived.event_id_v4_to_v10_style_urlsafe_base64);
    }
  });

  it("gives rooms 11-12 the ID of the v11 redaction", () => {
    expect(computeEventId(minimal, v("11"))).toBe(derived.event_id_v11_plus_style_urlsafe_base64_using_v11_redaction);
    expect(computeEventId(minimal, v("12"))).toBe(derived.event_id_v11_plus_style_urlsafe_base64_using_v11_redaction);
  });

  it("distinguishes standard from URL-safe Base64 where the hash needs + and /", () => {
    const vector = vectors.derived.redactable_event_reference_hash_v1_v10_redaction;
    expect(encodeBase64(computeReferenceHash(redactable, v("1")))).toBe(vector.std_base64);
    expect(computeEventId(redactable, v("3"))).toBe(`$${vector.std_base64}`);
    expect(computeEventId(redactable, v("4"))).toBe(`$${vector.urlsafe_base64}`);
  });

  it("ignores signatures, unsigned and redactable content in the reference hash", () => {
    const id = computeEventId(redactable, v("4"));
    expect(computeEventId({ ...redactable, signatures: {}, unsigned: { a: 1 }, content: { body: "other" } }, v("4"))).toBe(id);
    expect(computeEventId({ ...redactable, origin_server_ts: 1 }, v("4"))).not.toBe(id);
  });

  it("returns the event's own event_id in rooms 1-2 and refuses an event without one", () => {
    expect(computeEventId(redactable, v("1"))).toBe("$0:domain");
    expect(computeEventId(redactable, v("2"))).toBe("$0:domain");
    expect(() => computeEventId(minimal, v("1"))).toThrow(EventIdError);
  });

  it("uses the room version's ID format for every version", () => {
    for (const rules of Object.values(ROOM_VERSIONS)) {
      const id = computeEventId({ ...minimal, event_id: "$legacy:domain" }, rules);
      if (rules.eventIdFormat === "legacy") expect(id).toBe("$legacy:domain");
      else expect(id).toMatch(rules.eventIdFormat === "base64" ? /^\$[A-Za-z0-9+/]{43}$/ : /^\$[A-Za-z0-9_-]{43}$/);
    }
  });
});

describe("room version 12 room IDs", () => {
  const create: JsonObject = {
    type: "m.room.create",
    state_key: "",
    sender: "@creator:example.org",
    origin_server_ts: 1700000000000,
    depth: 1,
    prev_events: [],
    auth_events: [],
    content: { room_version: "12", additional_creators: ["@other:example.org"] },
    hashes: { sha256: "aGFzaA" },
    signatures: { "example.org": { "ed25519:1": "c2ln" } },
    unsigned: { age: 5 },
  };

  it("is the create event's ID with ! instead of $", () => {
    const roomId = computeRoomIdV12(create);
    expect(roomId).toMatch(/^![A-Za-z0-9_-]{43}$/);
    expect(roomId.slice(1)).toBe(computeEventId(create, v("12")).slice(1));
    expect(roomId).toBe("!" + encodeBase64Url(computeReferenceHash(create, v("12"))));
  });

  it("matches the derived v11+ ID for the minimal event", () => {
    expect(computeRoomIdV12(minimal)).toBe("!" + derived.event_id_v11_plus_style_urlsafe_base64_using_v11_redaction.slice(1));
  });

  it("changes with the creators, which survive redaction, but not with unsigned data or signatures", () => {
    const roomId = computeRoomIdV12(create);
    expect(computeRoomIdV12({ ...create, content: { room_version: "12" } })).not.toBe(roomId);
    expect(computeRoomIdV12({ ...create, unsigned: {}, signatures: {} })).toBe(roomId);
  });
});
