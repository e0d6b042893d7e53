import { describe, expect, it } from "vitest";
import { compileServerAcl, hostOf, matchGlob } from "./acl.js";

describe("server ACLs", () => {
  it("denies a listed server whatever its port or case, and allows look-alikes (T61)", () => {
    const acl = compileServerAcl({ allow: ["*"], deny: ["evil.com"] });
    expect(acl.allows("evil.com:8448")).toBe(false);
    expect(acl.allows("EVIL.COM")).toBe(false);
    expect(acl.allows("evil.com.au")).toBe(true);
    expect(acl.allows("honestly.not.evil.com")).toBe(true);
  });

  it("refuses IP literals when allow_ip_literals is false, and only them (T61)", () => {
    const acl = compileServerAcl({ allow_ip_literals: false, allow: ["*"] });
    expect(acl.allows("1.2.3.4")).toBe(false);
    expect(acl.allows("[1:2::]")).toBe(false);
    expect(acl.allows("[1:2::]:8448")).toBe(false);
    expect(acl.allows("1a.2.3.4")).toBe(true);
    expect(acl.allows("1:2:3:4")).toBe(true);
  });

  it("treats a non-boolean allow_ip_literals as true", () => {
    expect(compileServerAcl({ allow_ip_literals: "no", allow: ["*"] }).allows("1.2.3.4")).toBe(true);
  });

  it("denies every server when allow is missing (T64)", () => {
    expect(compileServerAcl({ deny: [] }).allows("good.example")).toBe(false);
  });

  it("ignores entries that are not strings and lists that are not arrays (T63)", () => {
    const acl = compileServerAcl({ allow: [1, null, "ok.example", { x: 1 }], deny: "ok.example" });
    expect(acl.allows("ok.example")).toBe(true);
    expect(acl.allows("other.example")).toBe(false);
  });

  it("matches ? as exactly one character", () => {
    const acl = compileServerAcl({ allow: ["a?.example"] });
    expect(acl.allows("ab.example")).toBe(true);
    expect(acl.allows("a.example")).toBe(false);
    expect(acl.allows("abc.example")).toBe(false);
  });

  it("evaluates pathological globs quickly (T63)", () => {
    const pattern = "*?".repeat(200) + "a";
    const text = "b".repeat(255);
    const started = performance.now();
    expect(matchGlob(pattern, text)).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("strips the port of a server name but keeps IPv6 brackets", () => {
    expect(hostOf("example.org:8448")).toBe("example.org");
    expect(hostOf("[::1]:8448")).toBe("[::1]");
    expect(hostOf("example.org")).toBe("example.org");
  });
});
