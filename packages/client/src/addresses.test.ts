import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AddressPolicy,
  CidrParseError,
  cidrContains,
  embeddedIpv4,
  formatIpAddress,
  parseCidr,
  parseIpAddress,
} from "./addresses.js";

describe("parseIpAddress and formatIpAddress", () => {
  it("reads IPv4, IPv6, bracketed and zoned addresses and refuses names", () => {
    expect([...parseIpAddress("10.1.2.3")!.bytes]).toEqual([10, 1, 2, 3]);
    expect(parseIpAddress("[::1]")?.family).toBe(6);
    expect([...parseIpAddress("fe80::1%eth0")!.bytes.slice(0, 2)]).toEqual([0xfe, 0x80]);
    expect([...parseIpAddress("::ffff:127.0.0.1")!.bytes.slice(10)]).toEqual([0xff, 0xff, 127, 0, 0, 1]);
    expect(parseIpAddress("example.org")).toBeUndefined();
    expect(parseIpAddress("1.2.3")).toBeUndefined();
  });

  it("formats IPv6 compressed as RFC 5952 does", () => {
    expect(formatIpAddress(parseIpAddress("2001:0db8:0000:0000:0000:0000:0000:0001")!)).toBe("2001:db8::1");
    expect(formatIpAddress(parseIpAddress("::")!)).toBe("::");
    expect(formatIpAddress(parseIpAddress("1:0:1:0:0:0:1:1")!)).toBe("1:0:1::1:1");
  });

  it("round-trips every IPv4 and IPv6 address through its text form", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const parsed = parseIpAddress(text);
        expect(parsed).toBeDefined();
        expect(parseIpAddress(formatIpAddress(parsed!))).toEqual(parsed);
      }),
    );
  });
});

describe("parseCidr", () => {
  it("clears host bits and treats a bare address as a single host", () => {
    expect(parseCidr("10.1.2.3/8").text).toBe("10.0.0.0/8");
    expect(parseCidr("::1").text).toBe("::1/128");
    expect(parseCidr("fe80::1234/10").text).toBe("fe80::/10");
  });

  it("refuses names and out-of-range prefixes", () => {
    expect(() => parseCidr("localhost/8")).toThrow(CidrParseError);
    expect(() => parseCidr("10.0.0.0/33")).toThrow(expect.objectContaining({ reason: "invalid-prefix" }));
    expect(() => parseCidr("::/129")).toThrow(CidrParseError);
    expect(() => parseCidr("10.0.0.0/-1")).toThrow(CidrParseError);
  });

  it("contains exactly the addresses that share its prefix", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (base, prefix, other) => {
        const range = parseCidr(`${base}/${prefix}`);
        const a = parseIpAddress(other)!;
        const toInt = (bytes: Uint8Array): number => bytes.reduce((n, b) => n * 256 + b, 0);
        const mask = prefix === 0 ? 0 : Math.floor(toInt(a.bytes) / 2 ** (32 - prefix));
        const want = prefix === 0 ? true : Math.floor(toInt(range.bytes) / 2 ** (32 - prefix)) === mask;
        expect(cidrContains(range, a)).toBe(want);
      }),
    );
  });
});

describe("AddressPolicy", () => {
  const policy = new AddressPolicy();

  it.each([
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "::10.0.0.1",
    "2002:0a00:0001::",
    "64:ff9b::10.0.0.1",
    "ff02::1",
  ])("refuses the non-public address %s (hostile-federation T68)", (address) => {
    expect(policy.check(address).allowed).toBe(false);
  });

  it.each(["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1", "64:ff9b::8.8.8.8"])(
    "accepts the public address %s",
    (address) => {
      expect(policy.check(address)).toEqual({ allowed: true });
    },
  );

  it("names the range that blocked an address, including the embedded IPv4 one", () => {
    expect(policy.check("169.254.169.254")).toEqual({ allowed: false, blockedBy: "169.254.0.0/16" });
    expect(policy.check("2002:0a00:0001::")).toEqual({
      allowed: false,
      blockedBy: "10.0.0.0/8 (embedded in 2002:a00:1::)",
    });
  });

  it("refuses text that is not an IP address", () => {
    expect(policy.check("localhost").allowed).toBe(false);
  });

  it("admits blocked addresses inside an allowed range, and their IPv4-mapped forms", () => {
    const loopback = new AddressPolicy(["127.0.0.0/8"]);
    expect(loopback.check("127.0.0.1")).toEqual({ allowed: true, allowedBy: "127.0.0.0/8" });
    expect(loopback.check("::ffff:127.0.0.1")).toEqual({ allowed: true, allowedBy: "127.0.0.0/8" });
    expect(loopback.check("::1").allowed).toBe(false);
    expect(loopback.check("10.0.0.1").allowed).toBe(false);
  });

  it("finds the IPv4 address inside mapped, NAT64 and 6to4 addresses", () => {
    const v4 = (text: string): string | undefined => {
      const inner = embeddedIpv4(parseIpAddress(text)!);
      return inner === undefined ? undefined : formatIpAddress(inner);
    };
    expect(v4("::ffff:1.2.3.4")).toBe("1.2.3.4");
    expect(v4("64:ff9b::1.2.3.4")).toBe("1.2.3.4");
    expect(v4("2002:0102:0304::5")).toBe("1.2.3.4");
    expect(v4("2001:db8::1")).toBeUndefined();
  });
});
