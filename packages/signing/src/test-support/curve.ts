/**
 * Edwards25519 arithmetic on BigInts, for tests that construct adversarial Ed25519 inputs
 * (not part of the build; slow and variable time by design).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The field prime 2^255 - 19. */
export const P = 2n ** 255n - 19n;
/** The order of the base point. */
export const L = 2n ** 252n + 27742317777372353535851937790883648493n;

export const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m;

export const pow = (base: bigint, exp: bigint): bigint => {
  let result = 1n;
  let b = mod(base);
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
};

export const inverse = (a: bigint): bigint => pow(a, P - 2n);

/** The curve constant d = -121665/121666. */
export const D = mod(-121665n * inverse(121666n));

export const sqrtModP = (a: bigint): bigint | undefined => {
  let x = pow(a, (P + 3n) / 8n);
  if (mod(x * x - a) !== 0n) x = (x * pow(2n, (P - 1n) / 4n)) % P;
  return mod(x * x - a) === 0n ? x : undefined;
};

/** 32 bytes little-endian. */
export const toLe = (n: bigint): Uint8Array => Uint8Array.from(Buffer.from(n.toString(16).padStart(64, "0"), "hex").reverse());
export const fromLe = (bytes: Uint8Array): bigint => BigInt("0x" + (Buffer.from(bytes).reverse().toString("hex") || "0"));

export const sha512 = (...parts: Uint8Array[]): Uint8Array =>
  Uint8Array.from(createHash("sha512").update(Buffer.concat(parts)).digest());

/** The secret scalar `a` of a seed (RFC 8032 §5.1.5), so that its public key is [a]B. */
export const secretScalar = (seed: Uint8Array): bigint => {
  const h = sha512(seed).slice(0, 32);
  h[0] = (h[0] as number) & 248;
  h[31] = ((h[31] as number) & 127) | 64;
  return fromLe(h);
};

/** An affine point (x, y). */
export interface Point {
  readonly x: bigint;
  readonly y: bigint;
}

/** Decodes a canonical point encoding, or `undefined` when it is not on the curve. */
export function decodePoint(bytes: Uint8Array): Point | undefined {
  const y = fromLe(bytes) & (2n ** 255n - 1n);
  const x2 = mod((y * y - 1n) * inverse(mod(D * y * y + 1n)));
  let x = sqrtModP(x2);
  if (x === undefined) return undefined;
  if ((x & 1n) !== BigInt((bytes[31] as number) >> 7)) x = mod(-x);
  return { x, y };
}

export function encodePoint(point: Point): Uint8Array {
  const bytes = toLe(point.y);
  bytes[31] = (bytes[31] as number) | (Number(point.x & 1n) << 7);
  return bytes;
}

/** The sum of two points (the complete twisted Edwards addition law, a = -1). */
export function addPoints(p: Point, q: Point): Point {
  const t = mod(D * p.x * q.x * p.y * q.y);
  return {
    x: mod((p.x * q.y + p.y * q.x) * inverse(mod(1n + t))),
    y: mod((p.y * q.y + p.x * q.x) * inverse(mod(1n - t))),
  };
}

/** A point of order 8: x^2 = (1 + sqrt(1 + d)) / d with y^2 = -x^2. */
export function order8Point(): Point {
  const root = sqrtModP(mod(1n + D)) as bigint;
  for (const sign of [1n, -1n]) {
    const x2 = mod((1n + sign * root) * inverse(D));
    const x = sqrtModP(x2);
    const y = sqrtModP(mod(-x2));
    if (x !== undefined && y !== undefined) return { x, y };
  }
  throw new Error("no order-8 point found");
}
