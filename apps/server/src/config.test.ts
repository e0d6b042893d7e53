import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CommandLine, HomeserverConfig } from "./config.js";
import { ConfigError, DEFAULTS, USAGE, formatListenAddress, parseCommandLine, parseListenAddress } from "./config.js";
import { removeTemporaryDirectories, temporaryDirectory } from "./test-helpers.js";

afterAll(removeTemporaryDirectories);

const cwd = "/srv/home";

function config(argv: string[], at = cwd): HomeserverConfig {
  const line: CommandLine = parseCommandLine(argv, { cwd: at });
  if (line.kind !== "run") throw new Error(`expected a run, got ${line.kind}`);
  return line.config;
}

function refusal(argv: string[], at = cwd): ConfigError {
  try {
    parseCommandLine(argv, { cwd: at });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

describe("the built-in defaults", () => {
  it("listen on 127.0.0.1:8008 over plain HTTP with data in ./myelin-data and no fixed server name", () => {
    expect(config([])).toEqual({
      listen: { host: "127.0.0.1", port: 8008 },
      dataDir: "/srv/home/myelin-data",
      federationCaFiles: [],
      federationAllowIp: [],
      logLevel: "info",
    });
    expect(DEFAULTS.listen).toEqual({ host: "127.0.0.1", port: 8008 });
  });
});

describe("flags", () => {
  it("set every setting, resolving paths against the working directory", () => {
    expect(
      config([
        "--server-name", "hs.example.org",
        "--listen", "[::]:8448",
        "--tls-cert", "tls/cert.pem",
        "--tls-key", "/etc/tls/key.pem",
        "--data", "data",
        "--federation-ca", "ca1.pem",
        "--federation-ca", "ca2.pem",
        "--federation-allow-ip", "127.0.0.0/8",
        "--federation-allow-ip", "::1",
        "--well-known-server", "matrix.example.org:443",
        "--log-level", "debug",
      ]),
    ).toEqual({
      serverName: "hs.example.org",
      listen: { host: "::", port: 8448 },
      tls: { certFile: "/srv/home/tls/cert.pem", keyFile: "/etc/tls/key.pem" },
      dataDir: "/srv/home/data",
      federationCaFiles: ["/srv/home/ca1.pem", "/srv/home/ca2.pem"],
      federationAllowIp: ["127.0.0.0/8", "::1"],
      wellKnownServer: "matrix.example.org:443",
      logLevel: "debug",
    });
  });

  it("accept the --flag=value form and take the last of a repeated single-valued flag", () => {
    const c = config(["--listen=0.0.0.0:0", "--server-name=a.test", "--server-name=b.test"]);
    expect(c.listen).toEqual({ host: "0.0.0.0", port: 0 });
    expect(c.serverName).toBe("b.test");
  });

  it("answer --help and --version without reading anything else", () => {
    expect(parseCommandLine(["--help", "--config", "/does/not/exist"], { cwd })).toEqual({ kind: "help" });
    expect(parseCommandLine(["-h"], { cwd })).toEqual({ kind: "help" });
    expect(parseCommandLine(["--version"], { cwd })).toEqual({ kind: "version" });
  });
});

describe("flag errors", () => {
  it.each([
    [["--frobnicate"], "invalid-flag", /Unknown option '--frobnicate'/],
    [["--listen"], "invalid-flag", /--listen/],
    [["serve"], "invalid-flag", /serve/],
    [["--listen", "8008"], "invalid-value", /^--listen: "8008" is not HOST:PORT/],
    [["--listen", "::1:8008"], "invalid-value", /^--listen:/],
    [["--listen", "127.0.0.1:65536"], "invalid-value", /^--listen:/],
    [["--server-name", "bad name"], "invalid-value", /^--server-name: "bad name" is not a server name/],
    [["--server-name", ""], "invalid-value", /^--server-name:/],
    [["--tls-cert", "cert.pem"], "invalid-value", /^--tls-cert: TLS needs both --tls-cert and --tls-key/],
    [["--tls-key", "key.pem"], "invalid-value", /only --tls-key was given/],
    [["--federation-allow-ip", "127.0.0.0/33"], "invalid-value", /^--federation-allow-ip: "127.0.0.0\/33" is not an IP address or CIDR range/],
    [["--federation-allow-ip", "localhost"], "invalid-value", /^--federation-allow-ip:/],
    [["--well-known-server", "a b"], "invalid-value", /^--well-known-server:/],
    [["--log-level", "loud"], "invalid-value", /^--log-level: "loud" is not one of debug, info, warn, error/],
    [["--data", ""], "invalid-value", /^--data: an empty path/],
  ] as const)("refuses %j with a message naming the flag", (argv, reason, message) => {
    const error = refusal([...argv]);
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(message);
  });
});

describe("the config file", () => {
  it("sets what flags leave unset, with its relative paths resolved against its own directory", async () => {
    const dir = await temporaryDirectory();
    await mkdir(join(dir, "etc"));
    const file = join(dir, "etc", "myelin.json");
    await writeFile(
      file,
      JSON.stringify({
        "server-name": "file.test",
        listen: "127.0.0.1:9000",
        data: "../var",
        "federation-ca": "ca.pem",
        "federation-allow-ip": ["10.0.0.0/8"],
        "log-level": "warn",
      }),
    );
    expect(config(["--config", "etc/myelin.json"], dir)).toEqual({
      serverName: "file.test",
      listen: { host: "127.0.0.1", port: 9000 },
      dataDir: join(dir, "var"),
      federationCaFiles: [join(dir, "etc", "ca.pem")],
      federationAllowIp: ["10.0.0.0/8"],
      logLevel: "warn",
    });
  });

  it("is overridden by flags key by key, a repeatable flag replacing the whole list", async () => {
    const dir = await temporaryDirectory();
    const file = join(dir, "c.json");
    await writeFile(file, JSON.stringify({ "server-name": "file.test", data: "d", "federation-allow-ip": ["10.0.0.0/8", "::1"] }));
    const c = config(["--config", file, "--server-name", "flag.test", "--federation-allow-ip", "127.0.0.0/8"], "/elsewhere");
    expect(c.serverName).toBe("flag.test");
    expect(c.dataDir).toBe(join(dir, "d"));
    expect(c.federationAllowIp).toEqual(["127.0.0.0/8"]);
  });

  it.each([
    ["not JSON", "{", /is not JSON/],
    ["not an object", "[]", /must hold a JSON object/],
    ["an unknown key", JSON.stringify({ server_name: "a.test" }), /unknown key "server_name"/],
    ["a number for a string", JSON.stringify({ listen: 8008 }), /"listen" in .* must be a string$/],
    ["a list for a single value", JSON.stringify({ data: ["a"] }), /"data" in .* must be a string$/],
    ["a bad list", JSON.stringify({ "federation-ca": [1] }), /must be a string or an array of strings/],
  ])("is refused when it holds %s", async (_what, text, message) => {
    const dir = await temporaryDirectory();
    await writeFile(join(dir, "c.json"), text);
    const error = refusal(["--config", "c.json"], dir);
    expect(error.reason).toBe("invalid-config-file");
    expect(error.message).toMatch(message);
  });

  it("names itself when one of its values is refused", async () => {
    const dir = await temporaryDirectory();
    const file = join(dir, "c.json");
    await writeFile(file, JSON.stringify({ listen: "nowhere" }));
    expect(refusal(["--config", file]).message).toBe(`"listen" in ${file}: "nowhere" is not HOST:PORT (or [IPv6]:PORT) with a port from 0 to 65535`);
  });

  it("is refused when it cannot be read", () => {
    const error = refusal(["--config", "/does/not/exist.json"]);
    expect(error.reason).toBe("invalid-config-file");
    expect(error.message).toMatch(/^cannot read the config file \/does\/not\/exist\.json: .*ENOENT/);
  });
});

describe("listen addresses", () => {
  it.each([
    ["127.0.0.1:8008", { host: "127.0.0.1", port: 8008 }],
    ["0.0.0.0:0", { host: "0.0.0.0", port: 0 }],
    ["localhost:65535", { host: "localhost", port: 65535 }],
    ["matrix.example.org:443", { host: "matrix.example.org", port: 443 }],
    ["[::1]:8448", { host: "::1", port: 8448 }],
    ["[::]:0", { host: "::", port: 0 }],
    ["[fe80::1:2]:80", { host: "fe80::1:2", port: 80 }],
  ])("reads %s", (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(["8008", ":8008", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:-1", "127.0.0.1:70000", "::1:8008", "[::1]8008",
    "[::1:8008", "[127.0.0.1]:80", "[host]:80", "999.1.1.1:80", "1.2.3:80", "-bad.example:80", "a b:80", "127.0.0.1:123456"])(
    "refuses %s",
    (text) => {
      expect(parseListenAddress(text)).toBeUndefined();
    },
  );

  it("formats every address back to text that reads as the same address", () => {
    const hosts = ["127.0.0.1", "0.0.0.0", "localhost", "a.example.org", "::1", "::", "2001:db8::42", "fe80::1"];
    for (const host of hosts) {
      for (const port of [0, 1, 80, 8008, 8448, 65535]) {
        const text = formatListenAddress({ host, port });
        expect(parseListenAddress(text)).toEqual({ host, port });
      }
    }
  });
});

describe("--default-room-version", () => {
  it("is absent by default (rooms 12), taken from the flag or the config file, and refused when unsupported", async () => {
    expect(config([]).defaultRoomVersion).toBeUndefined();
    expect(config(["--default-room-version", "10"]).defaultRoomVersion).toBe("10");
    const dir = await temporaryDirectory();
    await writeFile(join(dir, "config.json"), JSON.stringify({ "default-room-version": "11" }));
    expect(config(["--config", join(dir, "config.json")]).defaultRoomVersion).toBe("11");
    const refused = refusal(["--default-room-version", "99"]);
    expect(refused.reason).toBe("invalid-value");
    expect(refused.message).toMatch(/--default-room-version/);
  });
});

describe("the federation retry and poll settings", () => {
  it("are absent by default, so the server runs Synapse's schedule (10 minutes, up to 7 days) and polls every 5 s", () => {
    const c = config([]);
    expect(c.federationRetryMinMs).toBeUndefined();
    expect(c.federationRetryMaxMs).toBeUndefined();
    expect(c.federationPollMs).toBeUndefined();
    expect(DEFAULTS.federationRetryMinMs).toBe(600_000);
    expect(DEFAULTS.federationRetryMaxMs).toBe(7 * 86_400_000);
    expect(DEFAULTS.federationPollMs).toBe(5_000);
  });

  it("are taken from the flags as whole milliseconds", () => {
    const c = config(["--federation-retry-min-ms", "500", "--federation-retry-max-ms=2000", "--federation-poll-ms", "100"]);
    expect(c).toMatchObject({ federationRetryMinMs: 500, federationRetryMaxMs: 2_000, federationPollMs: 100 });
  });

  it("are read from the config file as JSON numbers or strings, and overridden by flags", async () => {
    const dir = await temporaryDirectory();
    const file = join(dir, "c.json");
    await writeFile(file, JSON.stringify({ "federation-retry-min-ms": 250, "federation-retry-max-ms": "4000", "federation-poll-ms": 50 }));
    expect(config(["--config", file])).toMatchObject({ federationRetryMinMs: 250, federationRetryMaxMs: 4_000, federationPollMs: 50 });
    expect(config(["--config", file, "--federation-poll-ms", "75"]).federationPollMs).toBe(75);
  });

  it.each([
    [["--federation-retry-min-ms", "0"], /^--federation-retry-min-ms: "0" is not a whole number of milliseconds/],
    [["--federation-retry-min-ms", "1.5"], /^--federation-retry-min-ms:/],
    [["--federation-retry-max-ms=-5"], /^--federation-retry-max-ms:/],
    [["--federation-poll-ms", "soon"], /^--federation-poll-ms:/],
    [["--federation-poll-ms", "99999999999999"], /^--federation-poll-ms:/],
    [["--federation-retry-min-ms", "5000", "--federation-retry-max-ms", "1000"], /^--federation-retry-max-ms: the first retry delay \(5000 ms\) is longer than the longest \(1000 ms\)/],
    [["--federation-retry-max-ms", "1000"], /^--federation-retry-max-ms: the first retry delay \(600000 ms\)/],
  ] as const)("refuses %j with a message naming the flag", (argv, message) => {
    const error = refusal([...argv]);
    expect(error.reason).toBe("invalid-value");
    expect(error.message).toMatch(message);
  });

  it("refuses a config file value that is neither a number nor a string", async () => {
    const dir = await temporaryDirectory();
    await writeFile(join(dir, "c.json"), JSON.stringify({ "federation-poll-ms": [100] }));
    const error = refusal(["--config", "c.json"], dir);
    expect(error.reason).toBe("invalid-config-file");
    expect(error.message).toMatch(/"federation-poll-ms" in .* must be a number or a string$/);
  });

  it("are listed in --help", () => {
    for (const flag of ["--federation-retry-min-ms", "--federation-retry-max-ms", "--federation-poll-ms"]) expect(USAGE).toContain(flag);
  });
});
