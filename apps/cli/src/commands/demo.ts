import {
  decodeBase64,
  encodeCanonicalJson,
  encodePublicKey,
  formatSigningKeyFile,
  generateSigningKey,
  getEd25519Backend,
  signJson,
  signingKeyFromSeed,
} from "@myelin/signing";
import type { Command } from "../command.js";
import { write } from "../io.js";

// The signing key and expected signature of the spec's "Signing JSON" example
// (appendices, Cryptographic Test Vectors): seed, server "domain", key ed25519:1.
const SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
const SPEC_SIGNATURE = "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw";

const demoCommand: Command = {
  path: ["demo"],
  usage: "",
  summary: "Generate a signing key and sign the specification's example object with the specification's key.",
  async run(_argv, io) {
    const fresh = generateSigningKey();
    const specKey = signingKeyFromSeed(decodeBase64(SPEC_SEED), "1");
    const signed = signJson({ one: 1, two: "Two" }, "domain", specKey);
    const signature = signed.signatures["domain"]?.["ed25519:1"];
    const matches = signature === SPEC_SIGNATURE;
    await write(
      io.stdout,
      [
        `Ed25519 backend: ${getEd25519Backend().name}`,
        "",
        "A fresh signing key (Synapse's key file format):",
        `  ${formatSigningKeyFile([fresh]).trimEnd()}`,
        `  public key ${fresh.keyId}: ${encodePublicKey(fresh)}`,
        "",
        'The specification\'s example {"one":1,"two":"Two"} signed by "domain" with its test key ed25519:1:',
        `  ${encodeCanonicalJson(signed)}`,
        `  ${matches ? "matches" : "DOES NOT MATCH"} the signature given in the specification`,
        "",
      ].join("\n"),
    );
    return matches ? 0 : 1;
  },
};

/** `myelin demo` */
export const DEMO_COMMANDS: readonly Command[] = [demoCommand];
