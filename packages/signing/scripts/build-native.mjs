#!/usr/bin/env node
// Compiles Myelin's native Ed25519 verifier (native/*.c) into native/build/myelin_ed25519.node.
//
// The verifier is an accelerator, not a requirement: when there is no C compiler, no
// Node-API headers, or the result fails its self-test, this prints one line saying so and
// exits 0, and @myelin/signing uses sodium-native (or node:crypto) instead.
//
// Environment: CC (compiler, default "cc"), npm_config_nodedir (a Node source or headers
// tree), MYELIN_NATIVE=0 (skip the build and remove any previous result).

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(packageDir, "native");
const output = join(nativeDir, "build", "myelin_ed25519.node");
const sources = ["ed25519_verify.c", "addon.c"].map((name) => join(nativeDir, name));
const inputs = [...sources, join(nativeDir, "ed25519_verify.h"), fileURLToPath(import.meta.url)];

function skip(reason) {
  console.log(`@myelin/signing: native Ed25519 verifier not built (${reason}); using sodium-native or node:crypto`);
  process.exit(0);
}

if (process.env.MYELIN_NATIVE === "0") {
  rmSync(output, { force: true });
  skip("MYELIN_NATIVE=0");
}
if (process.platform === "win32") skip("not supported on Windows yet");

const upToDate =
  existsSync(output) && inputs.every((input) => statSync(input).mtimeMs <= statSync(output).mtimeMs);

if (!upToDate) {
  const nodeDir = process.env.npm_config_nodedir;
  const headerDirs = [
    nodeDir && join(nodeDir, "include", "node"),
    nodeDir && join(nodeDir, "src"),
    join(dirname(process.execPath), "..", "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ].filter(Boolean);
  const headers = headerDirs.find((dir) => existsSync(join(dir, "node_api.h")));
  if (headers === undefined) skip("Node-API headers not found; set npm_config_nodedir");

  const compiler = process.env.CC || "cc";
  const temporary = `${output}.${process.pid}.tmp`;
  const args = ["-O3", "-shared", "-fPIC", "-fvisibility=hidden", "-std=gnu11", "-Wall", "-Wextra", `-I${headers}`];
  if (process.platform === "darwin") args.push("-undefined", "dynamic_lookup");
  args.push("-o", temporary, ...sources);
  mkdirSync(dirname(output), { recursive: true });
  try {
    execFileSync(compiler, args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    rmSync(temporary, { force: true });
    const detail = error.code === "ENOENT" ? `no C compiler "${compiler}"` : `${compiler} failed: ${String(error.stderr).trim().split("\n")[0]}`;
    skip(detail);
  }
  renameSync(temporary, output);
}

// Self-test: RFC 8032 section 7.1, test 1 (empty message), and the same signature tampered.
try {
  const addon = createRequire(import.meta.url)(output);
  const hex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
  const publicKey = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const signature = hex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  );
  const table = addon.keyTable(publicKey);
  const good = addon.verify(table, new Uint8Array(0), signature);
  signature[0] ^= 1;
  const bad = addon.verify(table, new Uint8Array(0), signature);
  if (good !== true || bad !== false) throw new Error("wrong verdict on RFC 8032 test 1");
} catch (error) {
  rmSync(output, { force: true });
  skip(`self-test failed: ${error.message}`);
}
