import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, createNetworkFixture, startFederationServer, type FederationTestServer, type NetworkFixture } from "./test-federation.js";
import { runCli } from "./test-io.js";

const DAY = 86_400_000;
let fx: NetworkFixture;
let healthy: FederationTestServer;
const servers: FederationTestServer[] = [];

async function server(options: Partial<Parameters<typeof startFederationServer>[0]> = {}): Promise<FederationTestServer> {
  const started = await startFederationServer({ certificate: fx.ca.issue(["127.0.0.1"]), knownKeys: fx.knownKeys, ...options });
  servers.push(started);
  return started;
}

beforeAll(async () => {
  fx = await createNetworkFixture();
  healthy = await server();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** The report's check lines by name (notes and summary left out). */
function report(stdout: string): Map<string, string> {
  const checks = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const match = /^(GOOD|WARN|BAD|SKIP) +([a-z]+): /.exec(line);
    if (match !== null) checks.set(match[2]!, line);
  }
  return checks;
}

const isoMinute = (ms: number): string => {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
};

describe("myelin check on a healthy server", () => {
  it("is GOOD throughout, the signed round trip included, and exits 0", async () => {
    const r = await runCli(["check", healthy.serverName, "--key", fx.originKeyFile, "--origin", fx.origin, ...fx.flags]);
    expect(r.code).toBe(0);
    const checks = report(r.stdout);
    expect([...checks.keys()]).toEqual(["discovery", "connect", "tls", "version", "keys", "notary", "auth"]);
    for (const line of checks.values()) expect(line).toMatch(/^GOOD /);
    expect(r.stdout).not.toMatch(/^(BAD|WARN)/m);
    expect(checks.get("discovery")).toBe(
      `GOOD discovery: ${healthy.serverName} -> ${healthy.serverName} via IP literal (no SNI, Host ${healthy.serverName})`,
    );
    expect(checks.get("tls")).toMatch(/^GOOD tls: certificate for 127\.0\.0\.1 issued by CN=Myelin test CA, trusted, valid until .* \(\d+ days left\)$/);
    // The chain, the name checked and the SANs are shown under the tls line.
    expect(r.stdout).toContain("name checked: 127.0.0.1 (no SNI, as for an IP address)");
    expect(r.stdout).toMatch(/\[0\] subject CN=127\.0\.0\.1; issuer CN=Myelin test CA; IP Address:127\.0\.0\.1; valid /);
    expect(checks.get("keys")).toContain(`key ${healthy.key.keyId} self-signed, server_name ${healthy.serverName}`);
    expect(checks.get("auth")).toMatch(
      new RegExp(
        `accepted our GET /_matrix/federation/v1/query/profile signed as ${fx.origin} with ${fx.originKey.keyId} and answered 404 M_NOT_FOUND for a user that does not exist, as the spec says; it refuses unsigned ones \\(401 M_UNAUTHORIZED\\)$`,
      ),
    );
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("summary: 0 BAD, 0 WARN, 7 GOOD");
    // The round trip really was signed as the origin.
    expect(healthy.requests.some((q) => q.url.startsWith("/_matrix/federation/v1/query/profile") && q.authorization?.includes(`origin="${fx.origin}"`))).toBe(true);
  });

  it("without --key, checks that unsigned requests are refused and says how to test a signed one", async () => {
    const r = await runCli(["check", healthy.serverName, ...fx.flags]);
    expect(r.code).toBe(0);
    expect(report(r.stdout).get("auth")).toMatch(
      /^GOOD auth: .* refuses an unsigned GET \/_matrix\/federation\/v1\/query\/profile \(401 M_UNAUTHORIZED.*needs --key KEYFILE --origin NAME/,
    );
  });

  it("prints the same report as JSON with --json", async () => {
    const r = await runCli(["check", healthy.serverName, "--json", ...fx.flags]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.server).toBe(healthy.serverName);
    expect(json.ok).toBe(true);
    expect(json.checks.map((c: { name: string; status: string }) => `${c.status} ${c.name}`)).toEqual(
      ["discovery", "connect", "tls", "version", "keys", "notary", "auth"].map((n) => `GOOD ${n}`),
    );
    const tls = json.checks.find((c: { name: string }) => c.name === "tls");
    expect(tls.details.certificateName).toBe("127.0.0.1");
    expect(tls.details.chain[0].subjectAltNames).toEqual(["IP Address:127.0.0.1"]);
  });

  it("checks a DNS name with SNI for it (resolved with --host-map)", async () => {
    const named = await server({ certificate: fx.ca.issue(["hs.test"]), name: (port) => `hs.test:${port}` });
    const r = await runCli(["check", named.serverName, "--host-map", "hs.test=127.0.0.1", ...fx.flags]);
    expect(r.code).toBe(0);
    expect(report(r.stdout).get("discovery")).toBe(
      `GOOD discovery: ${named.serverName} -> hs.test:${named.port} via explicit port (SNI hs.test, Host ${named.serverName})`,
    );
    expect(report(r.stdout).get("tls")).toMatch(/^GOOD tls: certificate for hs\.test /);
  });
});

describe("myelin check on a broken server", () => {
  it("says the keys expired, and when", async () => {
    const s = await server({ keysNow: () => Date.now() - 3 * DAY });
    const r = await runCli(["check", s.serverName, ...fx.flags]);
    expect(r.code).toBe(1);
    const keys = report(r.stdout).get("keys");
    expect(keys).toContain(`BAD  keys: valid_until_ts: the keys expired on ${isoMinute(s.publisher.current().valid_until_ts)} (2 days ago)`);
    // The same problem seen through the notary API is not a second BAD line.
    expect(report(r.stdout).get("notary")).toMatch(/^WARN notary: .*same problems \(see keys\)/);
    expect(r.stdout.match(/^BAD/gm)).toHaveLength(1);
  });

  it("names the expected and the presented names when the certificate is for another name", async () => {
    const s = await server({ certificate: fx.ca.issue(["other.example"]) });
    const r = await runCli(["check", s.serverName, ...fx.flags]);
    expect(r.code).toBe(1);
    expect(report(r.stdout).get("tls")).toBe(
      `BAD  tls: certificate presented by ${s.serverName} is for other.example, not for 127.0.0.1, the name other servers check (from discovery). Get a certificate that names 127.0.0.1`,
    );
    expect(report(r.stdout).get("version")).toMatch(/^SKIP version: not checked: other servers refuse this TLS certificate/);
  });

  it("says when an expired certificate expired and since when it was valid", async () => {
    const certificate = fx.ca.issue(["127.0.0.1"], { validDays: -1, notBeforeDays: -10 });
    const s = await server({ certificate });
    const r = await runCli(["check", s.serverName, ...fx.flags]);
    expect(r.code).toBe(1);
    expect(report(r.stdout).get("tls")).toMatch(
      /^BAD {2}tls: certificate for 127\.0\.0\.1 expired on (\S+ \d\d:\d\d UTC), 2[34] h( \d+ min)? ago \(it was valid from (\S+) \d\d:\d\d UTC\)\. Renew it; servers refuse expired certificates$/,
    );
    const [, expiredOn, validFrom] = /expired on (\S+) .* valid from (\S+)/.exec(report(r.stdout).get("tls") ?? "") ?? [];
    expect(expiredOn).toBe(new Date(Date.now() - DAY).toISOString().slice(0, 10));
    expect(validFrom).toBe(new Date(Date.now() - 10 * DAY).toISOString().slice(0, 10));
  });

  it("warns about a certificate that expires within two weeks, and does not fail", async () => {
    const s = await server({ certificate: fx.ca.issue(["127.0.0.1"], { validDays: 5 }) });
    const r = await runCli(["check", s.serverName, ...fx.flags]);
    expect(r.code).toBe(0);
    expect(report(r.stdout).get("tls")).toMatch(/^WARN tls: certificate for 127\.0\.0\.1 expires in (4 days|5 days|\d+ h.*) \(.*\): renew it now/);
  });

  it("with --insecure, still reports the bad certificate but checks the rest, and says it is insecure", async () => {
    const s = await server({ certificate: fx.ca.issue(["127.0.0.1"], { validDays: -1 }) });
    const r = await runCli(["check", s.serverName, "--insecure", ...fx.flags]);
    expect(r.code).toBe(1);
    const checks = report(r.stdout);
    expect(checks.get("insecure")).toMatch(/^WARN insecure: --insecure: certificates are NOT validated/);
    expect(checks.get("tls")).toMatch(/^BAD {2}tls: certificate for 127\.0\.0\.1 expired on /);
    expect(checks.get("version")).toBe("GOOD version: Myelin test 0.0.1");
    expect(checks.get("keys")).toMatch(/^GOOD keys/);
  });

  it("says the certificate is not trusted, and how to fix it, when its CA is unknown", async () => {
    const r = await runCli(["check", healthy.serverName, "--allow-ip", "127.0.0.1/32", "--timeout", "3"]);
    expect(r.code).toBe(1);
    expect(report(r.stdout).get("tls")).toMatch(
      /^BAD {2}tls: certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY), issuer CN=Myelin test CA\): .*serve the full chain.*--ca FILE/,
    );
  });

  it("says a server that is down refused the connection, and skips what needs one", async () => {
    const port = await closedPort();
    const r = await runCli(["check", `127.0.0.1:${port}`, ...fx.flags]);
    expect(r.code).toBe(1);
    const checks = report(r.stdout);
    expect(checks.get("connect")).toBe(
      `BAD  connect: 127.0.0.1:${port} refused the connection (is the server running and listening on that port? is a firewall rejecting it?)`,
    );
    expect([...checks].filter(([, line]) => line.startsWith("SKIP")).map(([name]) => name)).toEqual(["tls", "version", "keys", "notary", "auth"]);
  });

  it("says loopback is refused by other servers unless --allow-ip admits it", async () => {
    const r = await runCli(["check", healthy.serverName, "--ca", fx.caFile]);
    expect(r.code).toBe(1);
    expect(report(r.stdout).get("connect")).toBe(
      "BAD  connect: 127.0.0.1 is in 127.0.0.0/8, a range other servers refuse to connect to. Publish a public address; for a test setup pass --allow-ip 127.0.0.0/8",
    );
  });

  it("says discovery failed and at which step", async () => {
    const r = await runCli(["check", "nowhere.test:8448", "--host-map", "hs.test=127.0.0.1", ...fx.flags]);
    expect(r.code).toBe(1);
    expect(report(r.stdout).get("discovery")).toMatch(/^BAD {2}discovery: discovery: cannot resolve nowhere\.test/);
    expect(r.stdout).toContain("step 2: hostname with explicit port 8448");
  });

  it("fails the round trip when the server cannot verify our signature, explaining what it needs", async () => {
    const r = await runCli(["check", healthy.serverName, "--key", fx.originKeyFile, "--origin", "stranger.test", ...fx.flags]);
    expect(r.code).toBe(1);
    expect(report(r.stdout).get("auth")).toMatch(
      new RegExp(
        `^BAD {2}auth: ${healthy.serverName.replace(/\./g, "\\.")} refused our GET /_matrix/federation/v1/query/profile signed as stranger\\.test with ${fx.originKey.keyId}: 401 M_UNAUTHORIZED .*It must fetch stranger\\.test's keys`,
      ),
    );
  });

  it("finds a server whose notary API serves other keys than it publishes", async () => {
    // Its key endpoint serves another server's response; its notary API answers from its own keys.
    const other = await server();
    const mixed = await server({ keysResponse: () => other.publisher.current() });
    const m = await runCli(["check", mixed.serverName, ...fx.flags]);
    expect(m.code).toBe(1);
    // Its key endpoint serves another server's response: wrong server_name.
    expect(report(m.stdout).get("keys")).toMatch(/^BAD {2}keys: server_name: the response says server_name "127\.0\.0\.1:\d+", but we asked/);
    expect(report(m.stdout).get("notary")).toMatch(
      /^BAD {2}notary: POST \/_matrix\/key\/v2\/query serves ed25519:\S+=\S+, but GET \/_matrix\/key\/v2\/server serves ed25519:\S+=\S+: two different key sets/,
    );
  });

  it("asks the room directory instead when the server does not implement the profile query", async () => {
    const s = await server({ without: ["profile"] });
    const r = await runCli(["check", s.serverName, "--key", fx.originKeyFile, "--origin", fx.origin, ...fx.flags]);
    expect(r.code).toBe(0);
    expect(report(r.stdout).get("auth")).toMatch(
      /^GOOD auth: .* accepted our GET \/_matrix\/federation\/v1\/publicRooms signed as origin\.test with \S+ and answered 200; it refuses unsigned ones \(401 M_UNAUTHORIZED\)$/,
    );
  });

  it("warns, and does not fail, when the server implements none of the questions the round trip asks", async () => {
    const s = await server({ without: ["profile", "publicRooms"] });
    const r = await runCli(["check", s.serverName, "--key", fx.originKeyFile, "--origin", fx.origin, ...fx.flags]);
    expect(r.code).toBe(0);
    expect(report(r.stdout).get("auth")).toMatch(
      /^WARN auth: .* implements none of the authenticated endpoints this check asks: GET \/_matrix\/federation\/v1\/query\/profile \(404 M_UNRECOGNIZED.*; GET \/_matrix\/federation\/v1\/publicRooms \(404 M_UNRECOGNIZED/,
    );
  });
});
