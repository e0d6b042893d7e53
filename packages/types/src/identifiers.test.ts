import { isIPv6 } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isValidEventId,
  isValidKeyId,
  isValidRoomAlias,
  isValidRoomId,
  isValidRoomVersionId,
  isValidServerName,
  isValidUserId,
  parseEventId,
  parseKeyId,
  parseRoomAlias,
  parseRoomId,
  parseServerName,
  parseUserId,
} from "./identifiers.js";

// ---------------------------------------------------------------------------------------------
// Generators for well-formed identifiers
// ---------------------------------------------------------------------------------------------

const chars = (alphabet: string) => fc.constantFrom(...alphabet.split(""));
const stringOf = (alphabet: string, minLength: number, maxLength: number) =>
  fc.array(chars(alphabet), { minLength, maxLength }).map((a) => a.join(""));

const LETTERS_DIGITS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const dnsLabel = fc
  .tuple(chars(LETTERS_DIGITS), stringOf(`${LETTERS_DIGITS}-`, 0, 12))
  // A purely numeric last label could form a dotted quad; keep a letter in every label.
  .map(([first, rest]) => `x${first}${rest}`);
const dnsName = fc.array(dnsLabel, { minLength: 1, maxLength: 5 }).map((labels) => labels.join("."));
const octet = fc.integer({ min: 0, max: 255 });
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join("."));

/** An IPv6 address in a random RFC 4291 text form: case, leading zeros, `::` and IPv4 tail vary. */
const ipv6 = fc
  .record({
    groups: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
    upper: fc.boolean(),
    pad: fc.boolean(),
    v4Tail: fc.boolean(),
    gapStart: fc.integer({ min: 0, max: 7 }),
    gapLength: fc.integer({ min: 0, max: 8 }),
  })
  .map(({ groups, upper, pad, v4Tail, gapStart, gapLength }) => {
    const hex = (n: number) => {
      const h = pad ? n.toString(16).padStart(4, "0") : n.toString(16);
      return upper ? h.toUpperCase() : h;
    };
    const [g6 = 0, g7 = 0] = groups.slice(6);
    // Seven pieces when the last 32 bits are written as a dotted quad, eight otherwise.
    const pieces = v4Tail
      ? [...groups.slice(0, 6).map(hex), `${g6 >> 8}.${g6 & 255}.${g7 >> 8}.${g7 & 255}`]
      : groups.map(hex);
    // Replace a non-empty run of hex groups (never the dotted quad) with "::".
    const end = Math.min(gapStart + gapLength, v4Tail ? 6 : 8);
    if (gapStart >= end) return pieces.join(":");
    return `${pieces.slice(0, gapStart).join(":")}::${pieces.slice(end).join(":")}`;
  });

const port = fc.integer({ min: 1, max: 65535 });
const serverName = fc
  .tuple(fc.oneof(dnsName, ipv4, ipv6.map((a) => `[${a}]`)), fc.option(port, { nil: undefined }))
  .map(([host, p]) => (p === undefined ? host : `${host}:${p}`));

const strictLocalpart = stringOf("abcdefghijklmnopqrstuvwxyz0123456789._=-/+", 1, 40);
const historicalLocalpart = fc
  .string({ unit: "grapheme", maxLength: 30 })
  .map((s) => s.replaceAll(":", "").replaceAll("\0", ""));
const base64Hash = (alphabet: "base64" | "base64url") =>
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString(alphabet).replace(/=+$/, ""));

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

// ---------------------------------------------------------------------------------------------
// Server names
// ---------------------------------------------------------------------------------------------

describe("server names", () => {
  it("accepts every example the spec lists as valid", () => {
    // appendices, "Server Name" (verbatim).
    const examples = ["matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]", "[1234:5678::abcd]:5678"];
    for (const s of examples) expect(parseServerName(s), s).toMatchObject({ ok: true });
  });

  it("splits host, port and kind", () => {
    expect(parseServerName("matrix.org")).toEqual({ ok: true, value: { host: "matrix.org", kind: "dns" } });
    expect(parseServerName("matrix.org:8888")).toEqual({ ok: true, value: { host: "matrix.org", kind: "dns", port: 8888 } });
    expect(parseServerName("1.2.3.4:1234")).toEqual({ ok: true, value: { host: "1.2.3.4", kind: "ipv4", port: 1234 } });
    expect(parseServerName("[::1]")).toEqual({ ok: true, value: { host: "[::1]", kind: "ipv6" } });
    expect(parseServerName("[2001:db8::1]:8448")).toEqual({
      ok: true,
      value: { host: "[2001:db8::1]", kind: "ipv6", port: 8448 },
    });
  });

  it.each([
    "localhost",
    "a",
    "my-example.com:1234",
    "EXAMPLE.ORG",
    "-leading-hyphen.example",
    "0.0.0.0",
    "255.255.255.255:65535",
    "01.02.03.004",
    "1.2.3",
    "example.org:1",
    "example.org:08448",
    "[::]",
    "[::ffff:192.0.2.1]",
    "[1:2:3:4:5:6:7:8]",
    "[1:2:3:4:5:6:7::]",
    "[::2:3:4:5:6:7:8]",
    "[FE80::ABCD]:443",
    "[0000:0000:0000:0000:0000:ffff:255.255.255.255]",
    `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}`,
  ])("accepts %s", (s) => {
    expect(parseServerName(s)).toMatchObject({ ok: true });
  });

  it.each([
    ["", "empty"],
    [":8448", "empty"],
    ["exa mple.org", "invalid-character"],
    ["example_org", "invalid-character"],
    ["exämple.org", "invalid-character"],
    ["example.org/", "invalid-character"],
    ["a..b", "empty-label"],
    [".example.org", "empty-label"],
    ["example.org.", "empty-label"],
    [`${"a".repeat(256)}`, "host-too-long"],
    ["1.2.3.256", "invalid-ipv4"],
    ["999.1.1.1:80", "invalid-ipv4"],
    ["[::g]", "invalid-ipv6"],
    ["[1:2:3:4:5:6:7:8:9]", "invalid-ipv6"],
    ["[1:2:3:4:5:6:7]", "invalid-ipv6"],
    ["[1::2::3]", "invalid-ipv6"],
    ["[1:2:3:4::5:6:7:8]", "invalid-ipv6"],
    ["[:::]", "invalid-ipv6"],
    ["[:1::2]", "invalid-ipv6"],
    ["[12345::]", "invalid-ipv6"],
    ["[1.2.3.4::]", "invalid-ipv6"],
    ["[::ffff:01.2.3.4]", "invalid-ipv6"],
    ["[::ffff:1.2.3.256]", "invalid-ipv6"],
    ["[fe80::1%eth0]", "invalid-ipv6"],
    ["[]", "invalid-ipv6"],
    ["[:]", "invalid-ipv6"],
    ["[::1", "invalid-ipv6"],
    ["::1", "empty"],
    ["[::1]8448", "invalid-character"],
    ["[::1]:", "invalid-port"],
    ["example.org:", "invalid-port"],
    ["example.org:0", "invalid-port"],
    ["example.org:65536", "invalid-port"],
    ["example.org:99999", "invalid-port"],
    ["example.org:123456", "invalid-port"],
    ["example.org:+80", "invalid-port"],
    ["example.org:80:80", "invalid-port"],
    ["example.org: 80", "invalid-port"],
  ])("refuses %j as %s", (s, reason) => {
    expect(parseServerName(s)).toEqual({ ok: false, reason });
    expect(isValidServerName(s)).toBe(false);
  });

  it("accepts generated well-formed server names and returns their parts", () => {
    fc.assert(
      fc.property(serverName, (s) => {
        const parsed = parseServerName(s);
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        const { host, port: p } = parsed.value;
        expect(p === undefined ? host : `${host}:${p}`).toBe(s);
      }),
    );
  });

  it("classifies generated hosts by kind", () => {
    const kindOf = (s: string) => {
      const parsed = parseServerName(s);
      return parsed.ok ? parsed.value.kind : parsed.reason;
    };
    fc.assert(fc.property(ipv4, (s) => kindOf(s) === "ipv4"));
    fc.assert(fc.property(ipv6, (s) => kindOf(`[${s}]`) === "ipv6"));
    fc.assert(fc.property(dnsName, (s) => kindOf(s) === "dns"));
  });

  it("agrees with Node's IPv6 parser on generated and mutated literals", () => {
    const mutated = fc
      .tuple(ipv6, fc.nat(), stringOf("0123456789abcdefABCDEF:.", 0, 3), fc.nat({ max: 3 }))
      .map(([addr, at, insert, remove]) => {
        const i = at % (addr.length + 1);
        return addr.slice(0, i) + insert + addr.slice(i + remove);
      });
    const noise = stringOf("0123456789abcdefABCDEF:.", 2, 45);
    fc.assert(
      fc.property(fc.oneof(ipv6, mutated, noise), (addr) => {
        expect(isValidServerName(`[${addr}]`)).toBe(isIPv6(addr));
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses ports outside 1-65535 and accepts every port inside", () => {
    fc.assert(
      fc.property(dnsName, fc.integer({ min: 0, max: 99999 }), (host, p) => {
        expect(isValidServerName(`${host}:${p}`)).toBe(p >= 1 && p <= 65535);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// User IDs
// ---------------------------------------------------------------------------------------------

describe("user IDs", () => {
  it("splits at the first colon, leaving ports and IPv6 literals to the server name", () => {
    expect(parseUserId("@alice:example.org")).toEqual({
      ok: true,
      value: {
        localpart: "alice",
        serverName: "example.org",
        server: { host: "example.org", kind: "dns" },
        localpartGrammar: "strict",
      },
    });
    expect(parseUserId("@bob:[2001:db8::1]:8448")).toMatchObject({
      ok: true,
      value: { localpart: "bob", serverName: "[2001:db8::1]:8448", server: { kind: "ipv6", port: 8448 } },
    });
  });

  it.each(["@a:b", "@someone:matrix.org", "@john.doe=2f_+/-:example.com:8448", "@0:1.2.3.4", "@x:[::1]"])(
    "accepts %s under the v1.8 grammar",
    (s) => {
      expect(parseUserId(s)).toMatchObject({ ok: true, value: { localpartGrammar: "strict" } });
    },
  );

  it.each([
    ["alice:example.org", "missing-sigil"],
    ["#alice:example.org", "missing-sigil"],
    ["@alice", "missing-server-name"],
    ["@:example.org", "invalid-localpart"],
    ["@Alice:example.org", "invalid-localpart"],
    ["@al ice:example.org", "invalid-localpart"],
    ["@alice*:example.org", "invalid-localpart"],
    ["@ålice:example.org", "invalid-localpart"],
    ["@alice:", "invalid-server-name"],
    ["@alice:exa mple.org", "invalid-server-name"],
    ["@alice::8448", "invalid-server-name"],
  ])("refuses %j under the v1.8 grammar as %s", (s, reason) => {
    expect(parseUserId(s)).toMatchObject({ ok: false, reason });
    expect(isValidUserId(s)).toBe(false);
  });

  it("names the server-name failure", () => {
    expect(parseUserId("@alice:example.org:0")).toEqual({
      ok: false,
      reason: "invalid-server-name",
      serverNameReason: "invalid-port",
    });
  });

  it("accepts historical localparts only when asked, and grades them", () => {
    const cases: [string, string][] = [
      ["@Alice:example.org", "historical"],
      ["@a!b#c~:example.org", "historical"],
      ["@:example.org", "non-compliant"],
      ["@ålice:example.org", "non-compliant"],
      ["@al ice:example.org", "non-compliant"],
      ["@tab\there:example.org", "non-compliant"],
      ["@😀:example.org", "non-compliant"],
    ];
    for (const [s, grammar] of cases) {
      expect(isValidUserId(s), s).toBe(false);
      expect(parseUserId(s, { historical: true }), s).toMatchObject({ ok: true, value: { localpartGrammar: grammar } });
    }
  });

  it("refuses NUL and lone surrogates even under the historical grammar", () => {
    expect(parseUserId("@a\0b:example.org", { historical: true })).toMatchObject({ ok: false, reason: "invalid-localpart" });
    expect(parseUserId("@a\uD800b:example.org", { historical: true })).toMatchObject({ ok: false, reason: "invalid-localpart" });
    expect(parseUserId("@a\uDC00:example.org", { historical: true })).toMatchObject({ ok: false, reason: "invalid-localpart" });
  });

  it("allows 255 bytes, counting UTF-8 bytes rather than characters", () => {
    const server = ":example.org";
    const fits = `@${"a".repeat(255 - 1 - server.length)}${server}`;
    expect(utf8(fits)).toBe(255);
    expect(isValidUserId(fits)).toBe(true);
    expect(parseUserId(`@a${fits.slice(1)}`)).toMatchObject({ ok: false, reason: "too-long" });
    // 122 two-byte characters: 135 characters but 257 bytes.
    const wide = `@${"é".repeat(122)}${server}`;
    expect(wide.length).toBeLessThan(255);
    expect(parseUserId(wide, { historical: true })).toMatchObject({ ok: false, reason: "too-long" });
    expect(parseUserId(wide, { historical: true, lengthUnit: "codepoints" })).toMatchObject({ ok: true });
  });

  it("accepts generated v1.8 user IDs and returns their parts", () => {
    fc.assert(
      fc.property(strictLocalpart, serverName, (local, server) => {
        const s = `@${local}:${server}`;
        const parsed = parseUserId(s);
        expect(parsed.ok).toBe(utf8(s) <= 255);
        if (parsed.ok) expect(`@${parsed.value.localpart}:${parsed.value.serverName}`).toBe(s);
      }),
    );
  });

  it("accepts generated historical user IDs under the historical flag, and without it only the strict ones", () => {
    fc.assert(
      fc.property(historicalLocalpart, dnsName, (local, server) => {
        const s = `@${local}:${server}`;
        const parsed = parseUserId(s, { historical: true });
        expect(parsed.ok).toBe(utf8(s) <= 255);
        if (parsed.ok) {
          expect(parsed.value.localpart).toBe(local);
          expect(isValidUserId(s)).toBe(parsed.value.localpartGrammar === "strict");
        }
      }),
    );
  });

  it("refuses a strict localpart with any character outside the v1.8 set", () => {
    const outside = fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 1 })
      .filter((c) => !/^[a-z0-9._=\-/+]$/.test(c) && c !== ":");
    fc.assert(
      fc.property(strictLocalpart, outside, fc.nat(), (local, bad, at) => {
        const i = at % (local.length + 1);
        expect(isValidUserId(`@${local.slice(0, i)}${bad}${local.slice(i)}:example.org`)).toBe(false);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Room IDs, event IDs, aliases
// ---------------------------------------------------------------------------------------------

describe("room IDs", () => {
  it("parses both forms and says which", () => {
    expect(parseRoomId("!UcYsUzyxTGDxLBEvLy:example.org")).toEqual({
      ok: true,
      value: {
        kind: "legacy",
        opaqueId: "UcYsUzyxTGDxLBEvLy",
        serverName: "example.org",
        server: { host: "example.org", kind: "dns" },
      },
    });
    // The room v12 example from the spec's pdu_v12 schema.
    expect(parseRoomId("!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ")).toEqual({
      ok: true,
      value: { kind: "hash", hash: "Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ" },
    });
  });

  it.each(["!x:domain", "!r:domain", "!:example.org", "!Cuyf34gef24t:localhost", "!ünïcode\u0001:example.org:8448"])(
    "accepts legacy room ID %j",
    (s) => {
      expect(parseRoomId(s)).toMatchObject({ ok: true, value: { kind: "legacy" } });
    },
  );

  it.each([
    ["$abc:example.org", "missing-sigil"],
    ["!abc", "invalid-hash"],
    ["!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpY", "invalid-hash"],
    ["!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQA", "invalid-hash"],
    ["!Nhcu5BS+UMnFX7hBVfVSoXiD7OgH6iRT/xyIuqDnpYQ", "invalid-hash"],
    ["!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYR", "invalid-hash"],
    ["!a\0b:example.org", "invalid-opaque-id"],
    ["!a\uD800:example.org", "invalid-opaque-id"],
    ["!abc:exa_mple.org", "invalid-server-name"],
    [`!${"a".repeat(250)}:example.org`, "too-long"],
  ])("refuses %j as %s", (s, reason) => {
    expect(parseRoomId(s)).toMatchObject({ ok: false, reason });
    expect(isValidRoomId(s)).toBe(false);
  });

  it("accepts generated hash-form room IDs", () => {
    fc.assert(
      fc.property(base64Hash("base64url"), (hash) => {
        expect(parseRoomId(`!${hash}`)).toEqual({ ok: true, value: { kind: "hash", hash } });
      }),
    );
  });

  it("accepts generated legacy room IDs and returns their parts", () => {
    fc.assert(
      fc.property(historicalLocalpart, serverName, (opaque, server) => {
        const s = `!${opaque}:${server}`;
        const parsed = parseRoomId(s);
        expect(parsed.ok).toBe(utf8(s) <= 255);
        if (parsed.ok) expect(parsed.value).toMatchObject({ kind: "legacy", opaqueId: opaque, serverName: server });
      }),
    );
  });
});

describe("event IDs", () => {
  it("accepts the spec's example of each room version's form", () => {
    expect(parseEventId("$a4ecee13e2accdadf56c1025:example.com", "legacy")).toMatchObject({
      ok: true,
      value: { format: "legacy", opaqueId: "a4ecee13e2accdadf56c1025", serverName: "example.com" },
    });
    expect(parseEventId("$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o", "base64")).toEqual({
      ok: true,
      value: { format: "base64", hash: "CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o" },
    });
    expect(parseEventId("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", "urlsafe")).toEqual({
      ok: true,
      value: { format: "urlsafe", hash: "Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg" },
    });
  });

  it("keeps the standard and URL-safe alphabets apart", () => {
    // The same reference hash in both alphabets (derived test vector): `+` and `/` vs `-` and `_`.
    const std = "$oFAil2fHTGY66j9PIsC3hnc+/6r2SQGxCzd1/FUgtOE";
    const url = "$oFAil2fHTGY66j9PIsC3hnc-_6r2SQGxCzd1_FUgtOE";
    expect(isValidEventId(std, "base64")).toBe(true);
    expect(isValidEventId(std, "urlsafe")).toBe(false);
    expect(isValidEventId(url, "urlsafe")).toBe(true);
    expect(isValidEventId(url, "base64")).toBe(false);
  });

  it.each([
    ["abc:example.org", "legacy", "missing-sigil"],
    ["$abc", "legacy", "missing-server-name"],
    ["$a\0:example.org", "legacy", "invalid-opaque-id"],
    ["$abc:", "legacy", "invalid-server-name"],
    [`$${"a".repeat(250)}:example.org`, "legacy", "too-long"],
    ["$abc:example.org", "urlsafe", "invalid-hash"],
    ["$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6", "base64", "invalid-hash"],
    ["$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o=", "base64", "invalid-hash"],
    ["$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6p", "base64", "invalid-hash"],
    ["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Z!", "urlsafe", "invalid-hash"],
  ] as const)("refuses %j in %s form as %s", (s, format, reason) => {
    expect(parseEventId(s, format)).toMatchObject({ ok: false, reason });
    expect(isValidEventId(s, format)).toBe(false);
  });

  it("accepts generated reference-hash event IDs in their own alphabet", () => {
    fc.assert(
      fc.property(base64Hash("base64"), (hash) => {
        expect(parseEventId(`$${hash}`, "base64")).toEqual({ ok: true, value: { format: "base64", hash } });
        expect(isValidEventId(`$${hash}`, "urlsafe")).toBe(!/[+/]/.test(hash));
      }),
    );
    fc.assert(
      fc.property(base64Hash("base64url"), (hash) => {
        expect(parseEventId(`$${hash}`, "urlsafe")).toEqual({ ok: true, value: { format: "urlsafe", hash } });
      }),
    );
  });

  it("refuses hash event IDs whose last character cannot end a 32-byte encoding", () => {
    fc.assert(
      fc.property(base64Hash("base64url"), chars(LETTERS_DIGITS), (hash, last) => {
        const s = `$${hash.slice(0, 42)}${last}`;
        const canonical = Buffer.from(Buffer.from(s.slice(1), "base64url")).toString("base64url") === s.slice(1);
        expect(isValidEventId(s, "urlsafe")).toBe(canonical);
      }),
    );
  });

  it("accepts generated legacy event IDs and returns their parts", () => {
    fc.assert(
      fc.property(historicalLocalpart, serverName, (opaque, server) => {
        const s = `$${opaque}:${server}`;
        const parsed = parseEventId(s, "legacy");
        expect(parsed.ok).toBe(utf8(s) <= 255);
        if (parsed.ok) expect(parsed.value).toMatchObject({ opaqueId: opaque, serverName: server });
      }),
    );
  });
});

describe("room aliases", () => {
  it.each(["#room:example.org", "#:example.org", "#Ünïcode room!:example.org:8448", "#a:[::1]"])("accepts %j", (s) => {
    expect(parseRoomAlias(s)).toMatchObject({ ok: true });
  });

  it("returns the localpart and server name", () => {
    expect(parseRoomAlias("#room:example.org:8448")).toEqual({
      ok: true,
      value: { localpart: "room", serverName: "example.org:8448", server: { host: "example.org", kind: "dns", port: 8448 } },
    });
  });

  it.each([
    ["room:example.org", "missing-sigil"],
    ["#room", "missing-server-name"],
    ["#ro\0om:example.org", "invalid-localpart"],
    ["#room:example..org", "invalid-server-name"],
    [`#${"ä".repeat(125)}:example.org`, "too-long"],
  ])("refuses %j as %s", (s, reason) => {
    expect(parseRoomAlias(s)).toMatchObject({ ok: false, reason });
    expect(isValidRoomAlias(s)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Key IDs and room versions
// ---------------------------------------------------------------------------------------------

describe("key IDs", () => {
  it.each([
    ["ed25519:1", "ed25519", "1"],
    ["ed25519:abc123", "ed25519", "abc123"],
    ["ed25519:0ldK3y", "ed25519", "0ldK3y"],
    ["ed25519:a_RXGa", "ed25519", "a_RXGa"],
    ["signed_curve25519:AAAAHQ", "signed_curve25519", "AAAAHQ"],
  ])("splits %s into algorithm and version", (s, algorithm, version) => {
    expect(parseKeyId(s)).toEqual({ ok: true, value: { algorithm, version } });
  });

  it.each([
    ["ed25519", "missing-colon"],
    [":abc", "invalid-algorithm"],
    ["ed-25519:abc", "invalid-algorithm"],
    ["ed25519:", "invalid-version"],
    ["ed25519:key-1", "invalid-version"],
    ["ed25519:key_version:", "invalid-version"],
    ["ed25519:a+b/c", "invalid-version"],
  ])("refuses %j as %s", (s, reason) => {
    expect(parseKeyId(s)).toEqual({ ok: false, reason });
    expect(isValidKeyId(s)).toBe(false);
  });

  it("accepts any non-empty version when lenient", () => {
    expect(parseKeyId("ed25519:key-1", { lenientVersion: true })).toEqual({
      ok: true,
      value: { algorithm: "ed25519", version: "key-1" },
    });
    expect(parseKeyId("ed25519:", { lenientVersion: true })).toEqual({ ok: false, reason: "invalid-version" });
  });

  it("accepts generated key IDs", () => {
    fc.assert(
      fc.property(stringOf(`${LETTERS_DIGITS}_`, 1, 20), stringOf(`${LETTERS_DIGITS}_`, 1, 20), (algorithm, version) => {
        expect(parseKeyId(`${algorithm}:${version}`)).toEqual({ ok: true, value: { algorithm, version } });
      }),
    );
  });
});

describe("room version IDs", () => {
  it.each(["1", "1.2", "1.2-beta", "com.example.version", "12", "org.matrix.msc4289", "a".repeat(32)])(
    "accepts %s",
    (s) => {
      // The first four are the spec's own examples (rooms, "Room version grammar").
      expect(isValidRoomVersionId(s)).toBe(true);
    },
  );

  it.each(["", "a".repeat(33), "V12", "1_2", "1 2", "1/2", "ü"])("refuses %j", (s) => {
    expect(isValidRoomVersionId(s)).toBe(false);
  });

  it("accepts exactly the 1-32 character strings over [a-z0-9.-]", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        expect(isValidRoomVersionId(s)).toBe(s.length >= 1 && s.length <= 32 && [...s].every((c) => "abcdefghijklmnopqrstuvwxyz0123456789.-".includes(c)));
      }),
    );
    fc.assert(fc.property(stringOf("abcdefghijklmnopqrstuvwxyz0123456789.-", 1, 32), (s) => isValidRoomVersionId(s)));
  });
});
