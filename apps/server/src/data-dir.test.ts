import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeBase64, formatSigningKeyFile, generateSigningKey } from "@myelin/signing";
import { afterAll, describe, expect, it } from "vitest";
import { DataDirError, SERVER_NAME_FILE, SIGNING_KEY_FILE, openDataDir } from "./data-dir.js";
import { removeTemporaryDirectories, temporaryDirectory } from "./test-helpers.js";

afterAll(removeTemporaryDirectories);

async function refusal(path: string, serverName: string): Promise<DataDirError> {
  try {
    await openDataDir(path, serverName);
  } catch (error) {
    if (error instanceof DataDirError) return error;
    throw error;
  }
  throw new Error("expected the data directory to be refused");
}

describe("the first run", () => {
  it("creates the directory, a signing key only its owner can read, and records the server name", async () => {
    const path = join(await temporaryDirectory(), "nested", "data");
    const data = await openDataDir(path, "hs.test");
    expect(data.createdSigningKey).toBe(true);
    expect(data.signingKeys).toHaveLength(1);
    expect(data.signingKeys[0].keyId).toMatch(/^ed25519:a_[A-Za-z0-9]{4}$/);
    expect(data.warnings).toEqual([]);
    const keyFile = join(path, SIGNING_KEY_FILE);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(keyFile, "utf8")).toBe(formatSigningKeyFile(data.signingKeys));
    expect(await readFile(join(path, SERVER_NAME_FILE), "utf8")).toBe("hs.test\n");
  });

  it("adopts a key in Synapse's format placed there beforehand", async () => {
    const path = await temporaryDirectory();
    const key = generateSigningKey("auto");
    await writeFile(join(path, SIGNING_KEY_FILE), `ed25519 auto ${encodeBase64(key.seed)}\n`, { mode: 0o600 });
    const data = await openDataDir(path, "hs.test");
    expect(data.createdSigningKey).toBe(false);
    expect(data.signingKeys[0].keyId).toBe("ed25519:auto");
    expect(data.signingKeys[0].publicKey).toEqual(key.publicKey);
    expect(await readFile(join(path, SERVER_NAME_FILE), "utf8")).toBe("hs.test\n");
  });
});

describe("later runs", () => {
  it("reuse the same key", async () => {
    const path = await temporaryDirectory();
    const first = await openDataDir(path, "hs.test");
    const second = await openDataDir(path, "hs.test");
    expect(second.createdSigningKey).toBe(false);
    expect(second.signingKeys.map((k) => [k.keyId, k.seed])).toEqual(first.signingKeys.map((k) => [k.keyId, k.seed]));
  });

  it("publish every key of a file holding several", async () => {
    const path = await temporaryDirectory();
    const keys = [generateSigningKey("one"), generateSigningKey("two")];
    await writeFile(join(path, SIGNING_KEY_FILE), formatSigningKeyFile(keys), { mode: 0o600 });
    expect((await openDataDir(path, "hs.test")).signingKeys.map((k) => k.keyId)).toEqual(["ed25519:one", "ed25519:two"]);
  });

  it("refuse another server name, telling which name the data belongs to", async () => {
    const path = await temporaryDirectory();
    await openDataDir(path, "old.test");
    const error = await refusal(path, "new.test");
    expect(error.reason).toBe("server-name-changed");
    expect(error.message).toMatch(/belongs to server name old\.test, not new\.test.*--server-name old\.test/);
    expect(await readFile(join(path, SERVER_NAME_FILE), "utf8")).toBe("old.test\n");
  });

  it("refuse a corrupt key and leave it as it is", async () => {
    const path = await temporaryDirectory();
    await openDataDir(path, "hs.test");
    const keyFile = join(path, SIGNING_KEY_FILE);
    const corrupt = (await readFile(keyFile, "utf8")).slice(0, 30);
    await writeFile(keyFile, corrupt);
    const error = await refusal(path, "hs.test");
    expect(error.reason).toBe("corrupt-signing-key");
    expect(error.message).toMatch(/is corrupt \(invalid-seed on line 1\)\. Refusing to start rather than replace it/);
    expect(await readFile(keyFile, "utf8")).toBe(corrupt);
  });

  it("refuse an empty key file", async () => {
    const path = await temporaryDirectory();
    await writeFile(join(path, SIGNING_KEY_FILE), "\n");
    const error = await refusal(path, "hs.test");
    expect(error.reason).toBe("corrupt-signing-key");
    expect(error.message).toMatch(/holds no key/);
  });

  it("refuse a key file that cannot be read", async () => {
    const path = await temporaryDirectory();
    await mkdir(join(path, SIGNING_KEY_FILE));
    const error = await refusal(path, "hs.test");
    expect(error.reason).toBe("unreadable-signing-key");
    expect(error.path).toBe(join(path, SIGNING_KEY_FILE));
    expect(error.message).toMatch(/EISDIR.*Refusing to start rather than replace it/);
  });

  it("refuse a server-name file that holds no server name", async () => {
    const path = await temporaryDirectory();
    await writeFile(join(path, SERVER_NAME_FILE), "not a name\n");
    expect((await refusal(path, "hs.test")).reason).toBe("corrupt-server-name");
  });

  it("warn about a key other users can read", async () => {
    const path = await temporaryDirectory();
    await openDataDir(path, "hs.test");
    await chmod(join(path, SIGNING_KEY_FILE), 0o644);
    const data = await openDataDir(path, "hs.test");
    expect(data.warnings).toEqual([`the signing key ${join(path, SIGNING_KEY_FILE)} is readable by other users (mode 644); chmod 600 it`]);
  });
});

it("refuses a data path that is a file", async () => {
  const file = join(await temporaryDirectory(), "file");
  await writeFile(file, "");
  expect((await refusal(file, "hs.test")).reason).toBe("unusable-directory");
});
