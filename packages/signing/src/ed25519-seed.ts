/**
 * Shared seed validation for the Ed25519 backends.
 *
 * @module
 */

/** Thrown when an Ed25519 seed is not 32 bytes. */
export class Ed25519SeedError extends Error {
  override readonly name = "Ed25519SeedError";
  readonly reason = "invalid-seed-length";
  constructor(readonly length: number) {
    super(`an Ed25519 seed is 32 bytes, got ${length}`);
  }
}

/** Throws {@link Ed25519SeedError} unless `seed` is 32 bytes. */
export function assertSeed(seed: Uint8Array): void {
  if (seed.length !== 32) throw new Ed25519SeedError(seed.length);
}
