import { generateKeyPairSync, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { createRequire } from "node:module";

// node-forge is CommonJS without a default export in its types; load it as CommonJS.
const forge = createRequire(import.meta.url)("node-forge") as typeof import("node-forge");

/** A PEM certificate with its private key. */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
}

/** A certificate authority made for one test run; nothing outside the test trusts it. */
export interface TestCa extends TestCertificate {
  /**
   * Issues a server certificate for `names` (DNS names and IP addresses, placed in
   * subjectAltName as the right kind). `validDays` may be negative for an expired one.
   */
  issue(names: readonly string[], options?: { validDays?: number; notBeforeDays?: number }): TestCertificate;
}

function rsaKeyPair(): { privatePem: string; publicPem: string } {
  // node:crypto generates the key natively (fast); node-forge only assembles the certificates.
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive
  return bytes.toString("hex");
}

function days(n: number): Date {
  return new Date(Date.now() + n * 86_400_000);
}

/** Creates a new certificate authority (RSA 2048, SHA-256). */
export function createTestCa(commonName = "Myelin test CA"): TestCa {
  const pair = rsaKeyPair();
  const caKey = forge.pki.privateKeyFromPem(pair.privatePem);
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = forge.pki.publicKeyFromPem(pair.publicPem);
  caCert.serialNumber = serial();
  caCert.validity.notBefore = days(-1);
  caCert.validity.notAfter = days(3650);
  const subject = [{ name: "commonName", value: commonName }];
  caCert.setSubject(subject);
  caCert.setIssuer(subject);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(caKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(caCert);

  return {
    cert: caPem,
    key: pair.privatePem,
    issue(names, options = {}) {
      const leafPair = rsaKeyPair();
      const cert = forge.pki.createCertificate();
      cert.publicKey = forge.pki.publicKeyFromPem(leafPair.publicPem);
      cert.serialNumber = serial();
      const validDays = options.validDays ?? 30;
      cert.validity.notBefore = days(options.notBeforeDays ?? Math.min(-1, validDays - 2));
      cert.validity.notAfter = days(validDays);
      cert.setSubject([{ name: "commonName", value: names[0] ?? "localhost" }]);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: true },
        {
          name: "subjectAltName",
          altNames: names.map((name) => {
            const bare = name.replace(/^\[|\]$/g, "");
            return isIP(bare) !== 0 ? { type: 7, ip: bare } : { type: 2, value: name };
          }),
        },
      ]);
      cert.sign(caKey, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(cert), key: leafPair.privatePem };
    },
  };
}
