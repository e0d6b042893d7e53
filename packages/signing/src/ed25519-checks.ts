/**
 * Input checks that make every Ed25519 backend accept exactly the signatures libsodium
 * accepts.
 *
 * Ed25519 implementations disagree on edge cases that only a key owner can construct:
 * a non-canonical scalar `S >= L`, small-order `R` or public keys, and non-canonical
 * public-key encodings. For Matrix this is a consensus problem, not a curiosity: if one
 * server accepts an event signature that another refuses, the two disagree about room
 * state. Synapse verifies through PyNaCl, i.e. libsodium's `crypto_sign_verify_detached`,
 * which refuses all of the above before checking the equation. The node (OpenSSL) and
 * tweetnacl backends run these same checks first, so all three give the same answers.
 *
 * The order-8 encodings below were derived from the curve equation (see the test, which
 * recomputes them with BigInt arithmetic and confirms libsodium refuses every one).
 *
 * @module
 */

const P_MINUS_ONE_LOW = 0xec; // low byte of p - 1 = 2^255 - 20
const BLOCKED = [
  // y = 0 (the two order-4 points, x = ±sqrt(-1))
  "0000000000000000000000000000000000000000000000000000000000000000",
  // y = 1 (the identity, order 1)
  "0100000000000000000000000000000000000000000000000000000000000000",
  // the order-8 points: y and p - y
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  // y = p - 1 (order 2)
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  // y = p and y = p + 1: non-canonical encodings of 0 and 1
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((hex) => Uint8Array.from(Buffer.from(hex, "hex")));

/**
 * True when the 32-byte point encoding is one of the small-order points (ignoring the
 * sign bit of x, as libsodium does).
 */
export function hasSmallOrder(point: Uint8Array, offset = 0): boolean {
  outer: for (const blocked of BLOCKED) {
    for (let i = 0; i < 31; i++) {
      if (point[offset + i] !== blocked[i]) continue outer;
    }
    if (((point[offset + 31] as number) & 0x7f) === blocked[31]) return true;
  }
  return false;
}

/** True when the encoded y coordinate is below p = 2^255 - 19. */
export function isCanonicalPoint(point: Uint8Array): boolean {
  if (((point[31] as number) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i > 0; i--) {
    if (point[i] !== 0xff) return true;
  }
  return (point[0] as number) <= P_MINUS_ONE_LOW;
}

// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L = Uint8Array.from(Buffer.from("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", "hex"));

/** True when the scalar `S` (bytes 32..63 of a signature) is below the group order L. */
export function isCanonicalScalar(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i] as number;
    const l = L[i] as number;
    if (s < l) return true;
    if (s > l) return false;
  }
  return false; // S === L
}

/**
 * libsodium's refusals before the verification equation: wrong sizes, `S >= L`,
 * small-order `R`, non-canonical or small-order public key.
 */
export function passesLibsodiumChecks(signature: Uint8Array, publicKey: Uint8Array): boolean {
  return (
    signature.length === 64 &&
    publicKey.length === 32 &&
    isCanonicalScalar(signature) &&
    !hasSmallOrder(signature, 0) &&
    isCanonicalPoint(publicKey) &&
    !hasSmallOrder(publicKey, 0)
  );
}
