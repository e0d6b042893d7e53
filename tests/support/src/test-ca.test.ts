import { once } from "node:events";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { connect } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { createTestCa } from "./test-ca.js";

const ca = createTestCa();
const servers: { close(): void }[] = [];
afterAll(() => servers.forEach((s) => s.close()));

async function handshake(cert: { cert: string; key: string }, servername: string | undefined, host: string) {
  const server = createServer(cert, (_req, res) => res.end("ok"));
  servers.push(server);
  server.listen(0, host);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return new Promise<string>((resolve) => {
    const socket = connect({ host, port, ca: ca.cert, ...(servername === undefined ? {} : { servername }) });
    socket.once("secureConnect", () => {
      socket.end();
      resolve("trusted");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe("test CA", () => {
  it("issues certificates a TLS client trusts for the names and IPs they carry", async () => {
    const cert = ca.issue(["example.test", "127.0.0.1"]);
    expect(await handshake(cert, "example.test", "127.0.0.1")).toBe("trusted");
    expect(await handshake(cert, undefined, "127.0.0.1")).toBe("trusted");
  });

  it("issues certificates that fail for another name, or when expired", async () => {
    const cert = ca.issue(["example.test"]);
    expect(await handshake(cert, "other.test", "127.0.0.1")).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    const expired = ca.issue(["example.test"], { validDays: -1 });
    expect(await handshake(expired, "example.test", "127.0.0.1")).toBe("CERT_HAS_EXPIRED");
  });
});
