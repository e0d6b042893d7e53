import { computeEventId, encodeCanonicalJson, generateSigningKey, signEvent, signRequest } from "@myelin/signing";
import { getRoomVersion, type JsonObject } from "@myelin/types";
import { describe, expect, it } from "vitest";
import { computeEventIdLenient, encodeLenientCanonicalJson, signEventLenient, signRequestLenient } from "./lenient-json.js";

const key = generateSigningKey("t1");
const event: JsonObject = {
  type: "m.room.message",
  room_id: "!room:example.org",
  sender: "@u:example.org",
  origin_server_ts: 1_700_000_000_000,
  depth: 12,
  prev_events: ["$a"],
  auth_events: ["$b", "$c"],
  content: { msgtype: "m.text", body: "h\u00e9llo \uD83D\uDE00", "\uFF01": 1, "\u{1F600}": [true, null, -5] },
  unsigned: { age: 3 },
};

describe("lenient canonical JSON", () => {
  it("encodes valid JSON exactly as the strict canonical encoder does", () => {
    expect(encodeLenientCanonicalJson(event)).toBe(encodeCanonicalJson(event));
  });

  it("writes fractions and integers beyond 2^53-1 that the strict encoder refuses", () => {
    expect(() => encodeCanonicalJson({ b: 1.5, a: 2 ** 53 })).toThrow();
    expect(encodeLenientCanonicalJson({ b: 1.5, a: 2 ** 53 })).toBe('{"a":9007199254740992,"b":1.5}');
  });

  it.each(["10", "11", "12"])("signs and identifies a valid room-version-%s event exactly as @myelin/signing does", (version) => {
    const rules = getRoomVersion(version);
    const lenient = signEventLenient(event, "example.org", key, rules);
    expect(lenient).toEqual(signEvent(event, "example.org", key, rules));
    expect(computeEventIdLenient(lenient, rules)).toBe(computeEventId(lenient, rules));
  });

  it("signs a valid request exactly as @myelin/signing does", () => {
    const request = { method: "PUT", uri: "/_matrix/federation/v1/send/1", origin: "a.example", destination: "b.example", content: { pdus: [] }, key };
    expect(signRequestLenient(request)).toBe(signRequest(request));
  });
});
