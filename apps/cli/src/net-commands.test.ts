import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { signJson, type SigningKey } from "@myelin/signing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, createNetworkFixture, startFederationServer, type FederationTestServer, type NetworkFixture } from "./test-federation.js";
import { runCli } from "./test-io.js";

const DAY = 86_400_000;
let fx: NetworkFixture;
let healthy: FederationTestServer;
const servers: FederationTestServer[] = [];

async function server(options: Omit<Parameters<typeof startFederationServer>[0], "certificate"> = {}): Promise<FederationTestServer> {
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

const lines = (text: string): string[] => text.trimEnd().split("\n");

describe("myelin resolve", () => {
  it("resolves an IP literal with a port by step 1: that address and port, certificate for the IP, no SNI", async () => {
    const r = await runCli(["resolve", "127.0.0.1:8448", ...fx.flags]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("step 1: IP literal, connect to 127.0.0.1:8448");
    expect(lines(r.stdout).at(-1)).toBe("result: 127.0.0.1:8448 (127.0.0.1); certificate for 127.0.0.1, no SNI, Host 127.0.0.1:8448");
  });

  it("stops at the parse step for a name that is not a server name", async () => {
    const r = await runCli(["resolve", "exa mple.org", ...fx.flags]);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toEqual([
      "resolving exa mple.org",
      expect.stringMatching(/^ {2}! "exa mple.org" is not a valid server name/),
      expect.stringMatching(/^FAILED: discovery: .*not a valid server name.*\(a server name is a hostname or IP literal/),
    ]);
  });

  it("stops at the address lookup of step 2 when the host has no address, naming the host", async () => {
    const r = await runCli(["resolve", "nowhere.test:8448", ...fx.flags, "--host-map", "hs.test=127.0.0.1"]);
    expect(r.code).toBe(1);
    const out = lines(r.stdout);
    expect(out[2]).toBe("  - step 2: hostname with explicit port 8448");
    expect(out[3]).toMatch(/^ {2}! cannot resolve nowhere\.test: .*not in --host-map/);
    expect(out[4]).toMatch(/^FAILED: discovery: cannot resolve nowhere\.test.*publish an A or AAAA record/);
  });

  it("reports a .well-known that cannot be fetched, then falls back through SRV to port 8448 with SNI for the hostname", async () => {
    // Without --allow-ip, the .well-known request to 127.0.0.1:443 is refused by the address policy.
    const r = await runCli(["resolve", "hs.test", "--host-map", "hs.test=127.0.0.1"]);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[2]).toMatch(/^ {2}! step 3: no valid \.well-known \(unreachable: .*refusing to connect to 127\.0\.0\.1/);
    expect(out[3]).toBe("  ! step 4: SRV _matrix-fed._tcp.hs.test: no records");
    expect(out[4]).toBe("  ! step 5: SRV _matrix._tcp.hs.test (deprecated): no records");
    expect(out[5]).toBe("  - step 6: no SRV records, connect to hs.test on port 8448");
    expect(out.at(-1)).toBe("result: hs.test:8448 (127.0.0.1); certificate for hs.test, SNI hs.test, Host hs.test");
  });

  it("refuses a malformed --host-map as a usage error", async () => {
    const r = await runCli(["resolve", "hs.test", "--host-map", "hs.test=not-an-ip"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--host-map must look like NAME=IP/);
  });
});

describe("myelin version", () => {
  it("prints the implementation name and version", async () => {
    const r = await runCli(["version", healthy.serverName, ...fx.flags]);
    expect(r).toEqual({ code: 0, stdout: "Myelin test 0.0.1\n", stderr: "" });
  });

  it("names the TLS layer when the certificate's CA is not trusted, and says how to trust it", async () => {
    const r = await runCli(["version", healthy.serverName, "--allow-ip", "127.0.0.1/32", "--timeout", "3"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^myelin: tls: TLS certificate of 127\.0\.0\.1:\d+ is not valid for 127\.0\.0\.1: .*--ca FILE/);
  });

  it("goes on without validation with --insecure, and says so loudly", async () => {
    const r = await runCli(["version", healthy.serverName, "--insecure", "--allow-ip", "127.0.0.1/32"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Myelin test 0.0.1\n");
    expect(r.stderr).toMatch(/WARNING: --insecure: TLS certificates are NOT validated/);
  });

  it("says a server that is down refused the connection, naming address and port", async () => {
    const port = await closedPort();
    const r = await runCli(["version", `127.0.0.1:${port}`, ...fx.flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `myelin: connect: 127.0.0.1:${port} refused the connection (is the server running and listening on that port? is a firewall rejecting it?)\n`,
    );
  });

  it("refuses loopback without --allow-ip, and says which flag allows it", async () => {
    const r = await runCli(["version", healthy.serverName, "--ca", fx.caFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^myelin: connect: refusing to connect to 127\.0\.0\.1: it is in 127\.0\.0\.0\/8.*--allow-ip/);
  });
});

/** A key response signed by `key` as `serverName`, valid for a day. */
function keyResponse(serverName: string, key: SigningKey, publicKey: string, validUntilTs = Date.now() + DAY) {
  return signJson({ server_name: serverName, verify_keys: { [key.keyId]: { key: publicKey } }, old_verify_keys: {}, valid_until_ts: validUntilTs }, serverName, key);
}

describe("myelin keys", () => {
  it("checks a healthy key response: server_name, the self-signature of each key, validity", async () => {
    const r = await runCli(["keys", healthy.serverName, ...fx.flags]);
    expect(r.code).toBe(0);
    const published = healthy.publisher.current();
    const out = lines(r.stdout);
    expect(out[0]).toBe(`keys of ${healthy.serverName}, from ${healthy.serverName} (GET /_matrix/key/v2/server)`);
    expect(out[1]).toBe(`GOOD server_name: ${healthy.serverName}, as asked`);
    expect(out[2]).toBe(`GOOD verify key ${healthy.key.keyId}: ${published.verify_keys[healthy.key.keyId]?.key}: self-signature valid`);
    expect(out[3]).toMatch(/^GOOD valid_until_ts: valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 2[34] h( \d+ min)?\)$/);
    expect(out).toHaveLength(4);
  });

  it("says a self-signature does not verify when the response was altered after signing", async () => {
    const s = await server({
      keysResponse: ({ publisher }) => ({ ...publisher.current(), valid_until_ts: publisher.current().valid_until_ts + 1 }),
    });
    const r = await runCli(["keys", s.serverName, ...fx.flags]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^BAD  verify key ${s.key.keyId}: .*: the self-signature does NOT verify \\(bad-signature\\)`, "m"));
  });

  it("says the keys expired, and when", async () => {
    const s = await server({ keysNow: () => Date.now() - 3 * DAY });
    const validUntil = s.publisher.current().valid_until_ts;
    const r = await runCli(["keys", s.serverName, ...fx.flags]);
    expect(r.code).toBe(1);
    const date = new Date(validUntil).toISOString();
    expect(r.stdout).toContain(`BAD  valid_until_ts: the keys expired on ${date.slice(0, 10)} ${date.slice(11, 16)} UTC (2 days ago)`);
  });

  it("refuses a response whose server_name is another server's, naming both", async () => {
    const s = await server({
      keysResponse: ({ key, publisher }) =>
        keyResponse("other.example", key, publisher.current().verify_keys[key.keyId]?.key ?? ""),
    });
    const r = await runCli(["keys", s.serverName, ...fx.flags]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`BAD  server_name: the response says server_name "other.example", but we asked ${s.serverName}`);
    // The signature itself is fine: only the name is wrong.
    expect(r.stdout).toMatch(/^GOOD verify key .*self-signature valid$/m);
  });

  it("checks keys relayed by a notary: its signature with its own keys, then the origin's checks", async () => {
    const origin = await server();
    const notary = await server({ notaryFetch: async () => [origin.publisher.current()] });
    const r = await runCli(["keys", origin.serverName, "--notary", notary.serverName, ...fx.flags]);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toBe(`keys of ${origin.serverName}, from notary ${notary.serverName} (POST /_matrix/key/v2/query)`);
    expect(out[1]).toMatch(new RegExp(`^GOOD notary keys: fetched from ${notary.serverName} directly .*${notary.key.keyId}=`));
    expect(out[2]).toBe(`GOOD notary signature: signed by ${notary.serverName} with ${notary.key.keyId}`);
    expect(out[3]).toBe(`GOOD server_name: ${origin.serverName}, as asked`);
  });

  it("refuses a notary answer not signed with the notary key pinned by --notary-key", async () => {
    const origin = await server();
    const notary = await server({ notaryFetch: async () => [origin.publisher.current()] });
    const pinned = `${notary.key.keyId}=${Buffer.alloc(32, 1).toString("base64").replace(/=+$/, "")}`;
    const r = await runCli(["keys", origin.serverName, "--notary", notary.serverName, "--notary-key", pinned, ...fx.flags]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^BAD  notary signature: ${notary.serverName}'s signature does not verify: ${notary.key.keyId} \\(bad-signature\\)`, "m"));
  });
});

describe("myelin request", () => {
  it("sends an unauthenticated request unsigned: status line on stderr, pretty JSON on stdout, exit 0", async () => {
    const r = await runCli(["request", "GET", healthy.serverName, "/_matrix/federation/v1/version", ...fx.flags]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{\n  "server": {\n    "name": "Myelin test",\n    "version": "0.0.1"\n  }\n}\n');
    expect(r.stderr).toBe(`HTTP 200 OK from ${healthy.serverName} (unsigned)\n`);
  });

  it("signs with X-Matrix as --origin, and the server accepts it (2xx, exit 0)", async () => {
    const before = healthy.requests.length;
    const r = await runCli([
      "request", "--key", fx.originKeyFile, "--origin", fx.origin, "GET", healthy.serverName, "/_matrix/federation/v1/publicRooms", ...fx.flags,
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ chunk: [], total_room_count_estimate: 0 });
    expect(r.stderr).toBe(`HTTP 200 OK from ${healthy.serverName} (signed as ${fx.origin} with ${fx.originKey.keyId})\n`);
    const sent = healthy.requests.slice(before).find((q) => q.url === "/_matrix/federation/v1/publicRooms");
    expect(sent?.authorization).toMatch(new RegExp(`^X-Matrix origin="${fx.origin}",destination="${healthy.serverName.replace(/\./g, "\\.")}",key="${fx.originKey.keyId}",sig="`));
  });

  it("sends an authenticated endpoint unsigned without --key, warns, and exits 1 on the 401", async () => {
    const r = await runCli(["request", "GET", healthy.serverName, "/_matrix/federation/v1/publicRooms", ...fx.flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^myelin: note: get_public_rooms requires X-Matrix authentication; sending it unsigned/);
    expect(r.stderr).toContain(`HTTP 401 Unauthorized from ${healthy.serverName} (unsigned)`);
    expect(JSON.parse(r.stdout).errcode).toBe("M_UNAUTHORIZED");
  });

  it("sends a POST body as given, and signs over it", async () => {
    const body = JSON.stringify({ server_keys: { [healthy.serverName]: {} } });
    const r = await runCli([
      "request", "--key", fx.originKeyFile, "--origin", fx.origin, "POST", healthy.serverName, "/_matrix/key/v2/query", body, ...fx.flags,
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).server_keys[0].server_name).toBe(healthy.serverName);
  });

  it("reads the body from standard input with -", async () => {
    const r = await runCli(
      ["request", "POST", healthy.serverName, "/_matrix/key/v2/query", "-", ...fx.flags],
      JSON.stringify({ server_keys: {} }),
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ server_keys: [] });
  });

  it("reads the body from a file with @FILE, and refuses one that is not a JSON object", async () => {
    const file = join(fx.dir, "query.json");
    await writeFile(file, JSON.stringify({ server_keys: { [healthy.serverName]: {} } }));
    const r = await runCli(["request", "POST", healthy.serverName, "/_matrix/key/v2/query", `@${file}`, ...fx.flags]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).server_keys).toHaveLength(1);
    const bad = await runCli(["request", "POST", healthy.serverName, "/_matrix/key/v2/query", "[1]", ...fx.flags]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("myelin: BODY: expected a JSON object\n");
  });

  it("sends a path the endpoint table does not know, with a note, and exits 1 on the error answer", async () => {
    const r = await runCli(["request", "GET", healthy.serverName, "/_matrix/federation/v1/nonsense?x=%20", ...fx.flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^myelin: note: GET \/_matrix\/federation\/v1\/nonsense is not in the endpoint table/);
    expect(r.stderr).toContain("HTTP 404 Not Found");
    expect(JSON.parse(r.stdout).errcode).toBe("M_UNRECOGNIZED");
    expect(healthy.requests.at(-1)?.url).toBe("/_matrix/federation/v1/nonsense?x=%20");
  });

  it("gets a 401 naming the key when the origin's key is unknown to the destination", async () => {
    const r = await runCli([
      "request", "--key", fx.originKeyFile, "--origin", "stranger.test", "GET", healthy.serverName, "/_matrix/federation/v1/publicRooms", ...fx.flags,
    ]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).errcode).toBe("M_UNAUTHORIZED");
  });

  it("requires --key and --origin together", async () => {
    const r = await runCli(["request", "--key", fx.originKeyFile, "GET", healthy.serverName, "/x", ...fx.flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--key and --origin go together/);
  });

  it("refuses a PATH that does not start with /", async () => {
    const r = await runCli(["request", "GET", healthy.serverName, "_matrix/federation/v1/version", ...fx.flags]);
    expect(r.code).toBe(2);
  });
});
