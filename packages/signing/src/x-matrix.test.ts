import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JsonValue } from "@myelin/types";
import { decodeBase64 } from "./base64.js";
import { encodeCanonicalJson } from "./canonical-json.js";
import { parseJson } from "./json-parse.js";
import vectors from "./fixtures/spec-vectors.json" with { type: "json" };
import type { KeyLookup, VerifyKey } from "./json-signing.js";
import { signingKeyFromSeed } from "./keys.js";
import type { XMatrixAuthorization } from "./x-matrix.js";
import { XMatrixHeaderError, formatXMatrixHeader, parseXMatrixHeader, signRequest, verifyRequest } from "./x-matrix.js";

const key = signingKeyFromSeed(decodeBase64(vectors.spec.signing_key.seed_base64), "1");
const examples = vectors.derived.x_matrix_examples;
const lookupKey: KeyLookup = (server, keyId) => (server === "domain" && keyId === "ed25519:1" ? key : undefined);

function headerFailure(header: string): { reason: string; parameter: string | undefined } {
  try {
    parseXMatrixHeader(header);
  } catch (error) {
    if (error instanceof XMatrixHeaderError) return { reason: error.reason, parameter: error.parameter };
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(header)} to be refused`);
}

describe("derived vectors", () => {
  it.each([
    ["GET without a body", examples.get_no_body],
    ["PUT with a body", examples.put_with_body],
  ])("signs a %s to the derived header and verifies it", async (_name, example) => {
    const input = example.signed_json_input as { method: string; uri: string; origin: string; destination: string; content?: JsonValue };
    expect(signRequest({ ...input, key })).toBe(example.authorization_header);
    expect(
      await verifyRequest({ ...input, header: example.authorization_header, destination: input.destination, lookupKey }),
    ).toEqual({ valid: true, origin: "domain", keyId: "ed25519:1" });
  });
});

describe("parseXMatrixHeader", () => {
  const expected = { origin: "origin.example:8448", destination: "dest.example", key: "ed25519:a_1", sig: "ab+/c" };

  it.each([
    ['X-Matrix origin="origin.example:8448",destination="dest.example",key="ed25519:a_1",sig="ab+/c"'],
    ['X-Matrix   origin="origin.example:8448",destination="dest.example",key="ed25519:a_1",sig="ab+/c"'],
    ['x-matrix ORIGIN="origin.example:8448",Destination="dest.example",KEY="ed25519:a_1",Sig="ab+/c"'],
    ["X-Matrix origin=origin.example:8448,destination=dest.example,key=ed25519:a_1,sig=ab+/c"],
    ['X-Matrix sig="ab+/c" , \tkey="ed25519:a_1",\tdestination="dest.example" ,origin="origin.example:8448"'],
    ['X-Matrix origin="origin\\.example:8448",destination="dest.example",key="ed25519:a_1",sig="ab+/\\c"'],
    ['X-Matrix origin = "origin.example:8448", destination="dest.example", key="ed25519:a_1", sig="ab+/c", extra="1", other=x'],
    ['X-Matrix ,origin="origin.example:8448",,destination="dest.example",key="ed25519:a_1",sig="ab+/c",'],
  ])("parses %j", (header) => {
    expect(parseXMatrixHeader(header)).toEqual(expected);
  });

  it("accepts a header without destination (servers before spec v1.3)", () => {
    expect(parseXMatrixHeader('X-Matrix origin="o",key="ed25519:1",sig="s"')).toEqual({ origin: "o", key: "ed25519:1", sig: "s" });
  });

  it("keeps commas and quotes inside quoted values", () => {
    expect(parseXMatrixHeader('X-Matrix origin="a,b\\"c",key="k:1",sig="s"').origin).toBe('a,b"c');
  });

  it.each([
    ['Bearer abc', "not-x-matrix", undefined],
    ["X-Matrix", "not-x-matrix", undefined],
    ['X-Matrixorigin="o",key="k",sig="s"', "not-x-matrix", undefined],
    ['X-Matrix key="ed25519:1",sig="s"', "missing-parameter", "origin"],
    ['X-Matrix origin="o",sig="s"', "missing-parameter", "key"],
    ['X-Matrix origin="o",key="ed25519:1"', "missing-parameter", "sig"],
    ['X-Matrix origin="",key="ed25519:1",sig="s"', "missing-parameter", "origin"],
    ['X-Matrix origin="o",origin="p",key="ed25519:1",sig="s"', "duplicate-parameter", "origin"],
    ['X-Matrix origin="o",key="ed25519:1",sig="s', "malformed", "sig"],
    ['X-Matrix origin="o" key="ed25519:1",sig="s"', "malformed", "origin"],
    ['X-Matrix origin,key="ed25519:1",sig="s"', "malformed", "origin"],
    ['X-Matrix ="o"', "malformed", undefined],
    ['X-Matrix origin="o"x,key="ed25519:1",sig="s"', "malformed", "origin"],
  ])("refuses %j (%s)", (header, reason, parameter) => {
    expect(headerFailure(header)).toEqual({ reason, parameter });
  });

  it("ignores repeated unknown parameters", () => {
    expect(parseXMatrixHeader('X-Matrix a=1,a=2,origin="o",key="k:1",sig="s"')).toEqual({ origin: "o", key: "k:1", sig: "s" });
  });
});

describe("formatXMatrixHeader", () => {
  it("writes the form the spec recommends to senders", () => {
    expect(formatXMatrixHeader({ origin: "o.example", destination: "d.example", key: "ed25519:1", sig: "c2ln" })).toBe(
      'X-Matrix origin="o.example",destination="d.example",key="ed25519:1",sig="c2ln"',
    );
  });

  it("refuses control characters that would break the header", () => {
    expect(() => formatXMatrixHeader({ origin: "o\r\nX-Evil: 1", destination: "d", key: "k", sig: "s" })).toThrow(
      expect.objectContaining({ reason: "invalid-value", parameter: "origin" }),
    );
  });

  it("round-trips through parseXMatrixHeader for any printable values", () => {
    const value = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1 });
    fc.assert(
      fc.property(value, value, value, value, (origin, destination, keyId, sig) => {
        const authorization: XMatrixAuthorization & { destination: string } = { origin, destination, key: keyId, sig };
        expect(parseXMatrixHeader(formatXMatrixHeader(authorization))).toEqual(authorization);
      }),
    );
  });
});

describe("verifyRequest", () => {
  const base = {
    method: "PUT",
    uri: "/_matrix/federation/v1/send/txn1?x=%2F",
    origin: "domain",
    destination: "remote.example",
    content: { pdus: [], edus: [{ edu_type: "m.typing", content: {} }] } as JsonValue,
  };
  const header = signRequest({ ...base, key });
  const verify = (overrides: Record<string, unknown> = {}) =>
    verifyRequest({ header, method: base.method, uri: base.uri, destination: base.destination, content: base.content, lookupKey, ...overrides });

  it("accepts the untouched request", async () => {
    expect(await verify()).toEqual({ valid: true, origin: "domain", keyId: "ed25519:1" });
  });

  it.each<[string, Record<string, unknown>]>([
    ["the method", { method: "POST" }],
    ["the path", { uri: "/_matrix/federation/v1/send/txn2?x=%2F" }],
    ["the query string", { uri: "/_matrix/federation/v1/send/txn1?x=/" }],
    ["the body", { content: { pdus: [], edus: [] } }],
    ["a body turned into none", { content: undefined }],
  ])("rejects a request whose %s changed after signing", async (_name, overrides) => {
    expect(await verify(overrides)).toEqual({
      valid: false,
      reason: { code: "bad-signature", origin: "domain", keyId: "ed25519:1" },
    });
  });

  it("distinguishes an empty body {} from no body", async () => {
    const emptyBody = signRequest({ ...base, content: {}, key });
    expect(await verify({ header: emptyBody, content: {} })).toMatchObject({ valid: true });
    expect(await verify({ header: emptyBody, content: undefined })).toMatchObject({ valid: false });
  });

  it("rejects a header addressed to another server with wrong-destination", async () => {
    expect(await verify({ destination: "someone.else" })).toEqual({
      valid: false,
      reason: { code: "wrong-destination", destination: "remote.example" },
    });
  });

  it("uses its own server name when the header has no destination", async () => {
    const legacy = header.replace(',destination="remote.example"', "");
    expect(await verify({ header: legacy })).toMatchObject({ valid: true });
    expect(await verify({ header: legacy, destination: "other.example" })).toMatchObject({
      valid: false,
      reason: { code: "bad-signature" },
    });
  });

  it("rejects a header whose origin was swapped", async () => {
    const swapped = header.replace('origin="domain"', 'origin="evil.example"');
    const evil: VerifyKey = { publicKey: key.publicKey };
    expect(await verify({ header: swapped, lookupKey: () => evil })).toMatchObject({
      valid: false,
      reason: { code: "bad-signature", origin: "evil.example" },
    });
  });

  it("rejects a tampered signature and one that is not Base64", async () => {
    const sig = /sig="([^"]+)"/.exec(header)?.[1] ?? "";
    const flipped = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    expect(await verify({ header: header.replace(sig, flipped) })).toMatchObject({ reason: { code: "bad-signature" } });
    expect(await verify({ header: header.replace(sig, "!!!") })).toMatchObject({ reason: { code: "malformed-signature" } });
  });

  it("rejects unknown, old and expired keys", async () => {
    expect(await verify({ lookupKey: () => undefined })).toMatchObject({ reason: { code: "unknown-key" } });
    expect(await verify({ lookupKey: () => ({ publicKey: key.publicKey, expiredTs: Date.now() + 1e9 }) })).toMatchObject({
      reason: { code: "key-expired" },
    });
    expect(await verify({ lookupKey: () => ({ publicKey: key.publicKey, validUntilTs: 1000 }), now: 1001 })).toMatchObject({
      reason: { code: "key-expired" },
    });
    expect(await verify({ lookupKey: () => ({ publicKey: key.publicKey, validUntilTs: 1000 }), now: 1000 })).toMatchObject({
      valid: true,
    });
  });

  it("rejects an algorithm it does not implement and a malformed header", async () => {
    expect(await verify({ header: header.replace("ed25519:1", "rsa:1") })).toMatchObject({
      reason: { code: "unsupported-algorithm" },
    });
    expect(await verify({ header: "Bearer x" })).toMatchObject({ reason: { code: "malformed-header", failure: "not-x-matrix" } });
  });

  it("rejects a body that is not canonical JSON", async () => {
    expect(await verify({ content: { n: 1.5 } })).toMatchObject({ reason: { code: "non-canonical-json" } });
  });

  it("with compat, verifies a body holding a float and a big integer signed in Synapse's notation", async () => {
    const content = parseJson('{"pdus": [{"content": {"n": 1e3, "big": 18446744073709551616}}]}', { strict: false, lossless: true });
    const signed = signRequest({ ...base, content, key, compat: "synapse" });
    expect(await verify({ header: signed, content, compat: "synapse" })).toMatchObject({ valid: true });
    // The same bytes as a body Synapse wrote itself (1000.0), parsed by us.
    const asSynapseWrote = parseJson(encodeCanonicalJson(content, { compat: "synapse" }), { strict: false, lossless: true });
    expect(await verify({ header: signed, content: asSynapseWrote, compat: "synapse" })).toMatchObject({ valid: true });
    expect(await verify({ header: signed, content })).toMatchObject({ reason: { code: "non-canonical-json" } });
    const changed = parseJson('{"pdus": [{"content": {"n": 1e4, "big": 18446744073709551616}}]}', { strict: false, lossless: true });
    expect(await verify({ header: signed, content: changed, compat: "synapse" })).toMatchObject({ reason: { code: "bad-signature" } });
  });
});
