/*
 * Ed25519 signature verification with per-key precomputation.
 *
 * Matrix servers verify many signatures by few keys: every event a server sends is signed
 * by that server's one key. Verification computes [S]B - [h]A for the base point B and the
 * public key A; both points are fixed for a given key, so this file precomputes the
 * multiples (j 2^(w i)) P for 1 <= j <= 2^(w-1) of P = B (once, w = 8) and of P = -A (once
 * per key, w = 6), in affine form. A scalar written in signed base 2^w then costs one
 * mixed addition per nonzero digit (32 for S, 43 for h) and no doublings, against about
 * 250 doublings and 100 additions for a verifier without tables.
 *
 * The equation is exactly libsodium's `crypto_sign_verify_detached` (the library behind
 * Synapse's PyNaCl): S must be below the group order L, h = SHA-512(R || A || M) mod L,
 * and the canonical encoding of [S]B + [h](-A) must equal the 32 bytes of R. The caller
 * applies libsodium's remaining refusals (small-order R or A, non-canonical A) first;
 * see `ed25519-checks.ts`. Everything here handles public data only and is variable time.
 *
 * Field elements mod p = 2^255 - 19 are five 51-bit limbs; points use extended twisted
 * Edwards coordinates (X : Y : Z : T) with the unified a = -1 formulas of Hisil, Wong,
 * Carter and Dawson, "Twisted Edwards Curves Revisited" (2008), which are complete on
 * this curve. SHA-512 follows FIPS 180-4.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ed25519_verify.h"

typedef unsigned __int128 u128;

/* ---------------------------------------------------------------- field arithmetic */

/*
 * An element of GF(2^255 - 19): v[0] + v[1] 2^51 + v[2] 2^102 + v[3] 2^153 + v[4] 2^204.
 * "Tight" elements (outputs of mul, sq, sub, carry) have limbs below 2^51 + 2^21;
 * fe_add of two tight elements gives limbs below 2^53. fe_mul and fe_sq accept limbs
 * below 2^54; fe_sub accepts a subtrahend with limbs below 2^53 - 76.
 */
typedef struct {
  uint64_t v[5];
} fe;

#define MASK51 ((UINT64_C(1) << 51) - 1)

static const fe FE_ONE = {{1, 0, 0, 0, 0}};
static const fe FE_D = {{0x34dca135978a3ULL, 0x1a8283b156ebdULL, 0x5e7a26001c029ULL, 0x739c663a03cbbULL,
                         0x52036cee2b6ffULL}};
static const fe FE_D2 = {{0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL, 0x6738cc7407977ULL,
                          0x2406d9dc56dffULL}};
static const fe FE_SQRTM1 = {{0x61b274a0ea0b0ULL, 0x0d5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL, 0x78595a6804c9eULL,
                              0x2b8324804fc1dULL}};
static const fe BASE_X = {{0x62d608f25d51aULL, 0x412a4b4f6592aULL, 0x75b7171a4b31dULL, 0x1ff60527118feULL,
                           0x216936d3cd6e5ULL}};
static const fe BASE_Y = {{0x6666666666658ULL, 0x4ccccccccccccULL, 0x1999999999999ULL, 0x3333333333333ULL,
                           0x6666666666666ULL}};

static inline uint64_t load64_le(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline void store64_le(uint8_t *p, uint64_t x) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (8 * i));
}

static inline void fe_add(fe *h, const fe *f, const fe *g) {
  for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
}

/* Propagates carries so that every limb is below 2^51 + 2^13 (input limbs below 2^63). */
static inline void fe_carry(fe *h) {
  uint64_t c;
  c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
  c = h->v[1] >> 51; h->v[1] &= MASK51; h->v[2] += c;
  c = h->v[2] >> 51; h->v[2] &= MASK51; h->v[3] += c;
  c = h->v[3] >> 51; h->v[3] &= MASK51; h->v[4] += c;
  c = h->v[4] >> 51; h->v[4] &= MASK51; h->v[0] += c * 19;
  c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
}

/* h = f - g, computed as f + 4p - g so that no limb goes negative; the result is tight. */
static inline void fe_sub(fe *h, const fe *f, const fe *g) {
  h->v[0] = f->v[0] + 0x1FFFFFFFFFFFB4ULL - g->v[0];
  h->v[1] = f->v[1] + 0x1FFFFFFFFFFFFCULL - g->v[1];
  h->v[2] = f->v[2] + 0x1FFFFFFFFFFFFCULL - g->v[2];
  h->v[3] = f->v[3] + 0x1FFFFFFFFFFFFCULL - g->v[3];
  h->v[4] = f->v[4] + 0x1FFFFFFFFFFFFCULL - g->v[4];
  fe_carry(h);
}

static inline void fe_neg(fe *h, const fe *f) {
  static const fe zero = {{0, 0, 0, 0, 0}};
  fe_sub(h, &zero, f);
}

/* Reduces five 128-bit column sums (each below 2^118) to a tight element. */
static inline void fe_reduce_wide(fe *h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
  r1 += r0 >> 51;
  r2 += r1 >> 51;
  r3 += r2 >> 51;
  r4 += r3 >> 51;
  u128 t = (u128)((uint64_t)r0 & MASK51) + (r4 >> 51) * 19;
  h->v[0] = (uint64_t)t & MASK51;
  h->v[1] = ((uint64_t)r1 & MASK51) + (uint64_t)(t >> 51);
  h->v[2] = (uint64_t)r2 & MASK51;
  h->v[3] = (uint64_t)r3 & MASK51;
  h->v[4] = (uint64_t)r4 & MASK51;
}

static inline void fe_mul(fe *h, const fe *f, const fe *g) {
  const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
  const uint64_t g0 = g->v[0], g1 = g->v[1], g2 = g->v[2], g3 = g->v[3], g4 = g->v[4];
  const uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
  /* 2^255 = 19 (mod p): products whose limb index reaches 5 wrap around times 19. */
  u128 r0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 + (u128)f4 * g1_19;
  u128 r1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 + (u128)f4 * g2_19;
  u128 r2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 + (u128)f4 * g3_19;
  u128 r3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
  u128 r4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;
  fe_reduce_wide(h, r0, r1, r2, r3, r4);
}

static inline void fe_sq(fe *h, const fe *f) {
  const uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
  const uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1;
  const uint64_t f1_38 = 38 * f1, f2_38 = 38 * f2, f3_38 = 38 * f3, f3_19 = 19 * f3, f4_19 = 19 * f4;
  u128 r0 = (u128)f0 * f0 + (u128)f1_38 * f4 + (u128)f2_38 * f3;
  u128 r1 = (u128)f0_2 * f1 + (u128)f2_38 * f4 + (u128)f3_19 * f3;
  u128 r2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)f3_38 * f4;
  u128 r3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4_19 * f4;
  u128 r4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
  fe_reduce_wide(h, r0, r1, r2, r3, r4);
}

/* h = f^(2^n), n >= 1. */
static void fe_sqn(fe *h, const fe *f, int n) {
  fe_sq(h, f);
  while (--n > 0) fe_sq(h, h);
}

/* Loads 255 bits little-endian; the top bit of s[31] is ignored. */
static void fe_frombytes(fe *h, const uint8_t s[32]) {
  const uint64_t w0 = load64_le(s), w1 = load64_le(s + 8), w2 = load64_le(s + 16), w3 = load64_le(s + 24);
  h->v[0] = w0 & MASK51;
  h->v[1] = (w0 >> 51 | w1 << 13) & MASK51;
  h->v[2] = (w1 >> 38 | w2 << 26) & MASK51;
  h->v[3] = (w2 >> 25 | w3 << 39) & MASK51;
  h->v[4] = (w3 >> 12) & MASK51;
}

/* The unique representative in [0, p), as 32 bytes little-endian (top bit clear). */
static void fe_tobytes(uint8_t s[32], const fe *f) {
  fe h = *f;
  fe_carry(&h);
  fe_carry(&h);
  /* Now h < 2p. q = 1 exactly when h >= p, i.e. when h + 19 reaches 2^255. */
  uint64_t q = (h.v[0] + 19) >> 51;
  q = (h.v[1] + q) >> 51;
  q = (h.v[2] + q) >> 51;
  q = (h.v[3] + q) >> 51;
  q = (h.v[4] + q) >> 51;
  h.v[0] += 19 * q;
  h.v[1] += h.v[0] >> 51; h.v[0] &= MASK51;
  h.v[2] += h.v[1] >> 51; h.v[1] &= MASK51;
  h.v[3] += h.v[2] >> 51; h.v[2] &= MASK51;
  h.v[4] += h.v[3] >> 51; h.v[3] &= MASK51;
  h.v[4] &= MASK51; /* drops 2^255, completing the subtraction of q * p */
  store64_le(s, h.v[0] | h.v[1] << 51);
  store64_le(s + 8, h.v[1] >> 13 | h.v[2] << 38);
  store64_le(s + 16, h.v[2] >> 26 | h.v[3] << 25);
  store64_le(s + 24, h.v[3] >> 39 | h.v[4] << 12);
}

static int fe_iszero(const fe *f) {
  uint8_t s[32];
  fe_tobytes(s, f);
  uint8_t acc = 0;
  for (int i = 0; i < 32; i++) acc |= s[i];
  return acc == 0;
}

static int fe_isnegative(const fe *f) {
  uint8_t s[32];
  fe_tobytes(s, f);
  return s[0] & 1;
}

/*
 * Shared start of inversion and square root: returns z^(2^250 - 1) and sets *z11 = z^11.
 * The exponents follow from z^(2^k - 1) squared j times, times z^(2^j - 1), being
 * z^(2^(k+j) - 1).
 */
static void fe_pow2_250_1(fe *out, fe *z11, const fe *z) {
  fe z2, z9, t, e5, e10, e20, e40, e50, e100, e200;
  fe_sq(&z2, z);              /* z^2 */
  fe_sqn(&t, &z2, 2);         /* z^8 */
  fe_mul(&z9, &t, z);         /* z^9 */
  fe_mul(z11, &z9, &z2);      /* z^11 */
  fe_sq(&t, z11);             /* z^22 */
  fe_mul(&e5, &t, &z9);       /* z^31 = z^(2^5 - 1) */
  fe_sqn(&t, &e5, 5);
  fe_mul(&e10, &t, &e5);      /* 2^10 - 1 */
  fe_sqn(&t, &e10, 10);
  fe_mul(&e20, &t, &e10);     /* 2^20 - 1 */
  fe_sqn(&t, &e20, 20);
  fe_mul(&e40, &t, &e20);     /* 2^40 - 1 */
  fe_sqn(&t, &e40, 10);
  fe_mul(&e50, &t, &e10);     /* 2^50 - 1 */
  fe_sqn(&t, &e50, 50);
  fe_mul(&e100, &t, &e50);    /* 2^100 - 1 */
  fe_sqn(&t, &e100, 100);
  fe_mul(&e200, &t, &e100);   /* 2^200 - 1 */
  fe_sqn(&t, &e200, 50);
  fe_mul(out, &t, &e50);      /* 2^250 - 1 */
}

/* h = 1/z = z^(p - 2) = z^(2^255 - 21). */
static void fe_invert(fe *h, const fe *z) {
  fe e250, z11, t;
  fe_pow2_250_1(&e250, &z11, z);
  fe_sqn(&t, &e250, 5); /* 2^255 - 32 */
  fe_mul(h, &t, &z11);  /* 2^255 - 21 */
}

/* h = z^((p - 5) / 8) = z^(2^252 - 3). */
static void fe_pow22523(fe *h, const fe *z) {
  fe e250, z11, t;
  fe_pow2_250_1(&e250, &z11, z);
  fe_sqn(&t, &e250, 2); /* 2^252 - 4 */
  fe_mul(h, &t, z);     /* 2^252 - 3 */
}

/* ---------------------------------------------------------------- group arithmetic */

/* Extended coordinates: x = X/Z, y = Y/Z, T = XY/Z. */
typedef struct {
  fe X, Y, Z, T;
} ge_ext;

/* A point prepared for full addition: (Y + X, Y - X, Z, 2dT). */
typedef struct {
  fe YpX, YmX, Z, T2d;
} ge_cached;

/* An affine point prepared for mixed addition: (y + x, y - x, 2dxy). */
typedef struct {
  fe ypx, ymx, xy2d;
} ge_affine;

static void ge_identity(ge_ext *p) {
  memset(p, 0, sizeof *p);
  p->Y = FE_ONE;
  p->Z = FE_ONE;
}

static void ge_to_cached(ge_cached *c, const ge_ext *p) {
  fe_add(&c->YpX, &p->Y, &p->X);
  fe_carry(&c->YpX);
  fe_sub(&c->YmX, &p->Y, &p->X);
  c->Z = p->Z;
  fe_mul(&c->T2d, &p->T, &FE_D2);
}

/*
 * The unified addition: with A = (Y1 - X1)(Y2 - X2), B = (Y1 + X1)(Y2 + X2),
 * C = 2d T1 T2 and D = 2 Z1 Z2, the sum is (EF : GH : FG : EH) for E = B - A, F = D - C,
 * G = D + C, H = B + A. Callers pass the second point's Y2 + X2 and Y2 - X2, and C and D.
 * Subtracting instead (negate = 1) uses -Q = (-x, y): Y2 + X2 and Y2 - X2 trade places
 * and C changes sign, which swaps F and G. `r` may alias `p`.
 */
static inline void ge_add_parts(ge_ext *r, const ge_ext *p, const fe *ypx, const fe *ymx, const fe *c, const fe *d,
                                int negate) {
  fe a, b, e, f, g, h;
  fe_sub(&a, &p->Y, &p->X);
  fe_mul(&a, &a, negate ? ypx : ymx);
  fe_add(&b, &p->Y, &p->X);
  fe_mul(&b, &b, negate ? ymx : ypx);
  fe_sub(&e, &b, &a);
  fe_add(&h, &b, &a);
  if (negate) {
    fe_add(&f, d, c);
    fe_sub(&g, d, c);
  } else {
    fe_sub(&f, d, c);
    fe_add(&g, d, c);
  }
  fe_mul(&r->X, &e, &f);
  fe_mul(&r->Y, &g, &h);
  fe_mul(&r->Z, &f, &g);
  fe_mul(&r->T, &e, &h);
}

static void ge_add(ge_ext *r, const ge_ext *p, const ge_cached *q) {
  fe c, d;
  fe_mul(&c, &p->T, &q->T2d);
  fe_mul(&d, &p->Z, &q->Z);
  fe_add(&d, &d, &d);
  ge_add_parts(r, p, &q->YpX, &q->YmX, &c, &d, 0);
}

/* p + q, or p - q when negate is 1, for affine q (Z2 = 1: 7 multiplications). */
static void ge_add_affine(ge_ext *r, const ge_ext *p, const ge_affine *q, int negate) {
  fe c, d;
  fe_mul(&c, &p->T, &q->xy2d);
  fe_add(&d, &p->Z, &p->Z);
  ge_add_parts(r, p, &q->ypx, &q->ymx, &c, &d, negate);
}

/*
 * Doubling for a = -1: with A = X^2, B = Y^2, C = 2Z^2, E = (X + Y)^2 - A - B,
 * G = B - A, F = G - C and H = -(A + B), the double is (EF : GH : FG : EH).
 */
static void ge_double(ge_ext *r, const ge_ext *p) {
  fe a, b, c, e, f, g, h, t;
  fe_sq(&a, &p->X);
  fe_sq(&b, &p->Y);
  fe_sq(&c, &p->Z);
  fe_add(&c, &c, &c);
  fe_add(&t, &p->X, &p->Y);
  fe_sq(&t, &t);
  fe_add(&h, &a, &b);
  fe_sub(&e, &t, &h);
  fe_sub(&g, &b, &a);
  fe_sub(&f, &g, &c);
  fe_neg(&h, &h);
  fe_mul(&r->X, &e, &f);
  fe_mul(&r->Y, &g, &h);
  fe_mul(&r->Z, &f, &g);
  fe_mul(&r->T, &e, &h);
}

/*
 * Decodes a point and negates it, as libsodium's verifier does: x is recovered from
 * x^2 = (y^2 - 1) / (d y^2 + 1) and then given the sign opposite to the encoded one.
 * Returns 0 when y^2 - 1 over d y^2 + 1 has no square root (not a curve point).
 */
static int ge_decode_negated(ge_ext *p, const uint8_t s[32]) {
  fe u, v, v3, vxx, t, check;
  fe_frombytes(&p->Y, s);
  p->Z = FE_ONE;
  fe_sq(&u, &p->Y);
  fe_mul(&v, &u, &FE_D);
  fe_sub(&u, &u, &FE_ONE); /* u = y^2 - 1 */
  fe_add(&v, &v, &FE_ONE); /* v = d y^2 + 1 */
  fe_carry(&v);
  /* Candidate root x = u v^3 (u v^7)^((p - 5) / 8). */
  fe_sq(&v3, &v);
  fe_mul(&v3, &v3, &v);
  fe_sq(&t, &v3);
  fe_mul(&t, &t, &v);
  fe_mul(&t, &t, &u); /* u v^7 */
  fe_pow22523(&t, &t);
  fe_mul(&t, &t, &v3);
  fe_mul(&p->X, &t, &u);
  fe_sq(&vxx, &p->X);
  fe_mul(&vxx, &vxx, &v);
  fe_sub(&check, &vxx, &u);
  if (!fe_iszero(&check)) {
    fe_add(&check, &vxx, &u);
    if (!fe_iszero(&check)) return 0;
    fe_mul(&p->X, &p->X, &FE_SQRTM1);
  }
  if (fe_isnegative(&p->X) == (s[31] >> 7)) fe_neg(&p->X, &p->X);
  fe_mul(&p->T, &p->X, &p->Y);
  return 1;
}

static void ge_encode(uint8_t s[32], const ge_ext *p) {
  fe zinv, x, y;
  fe_invert(&zinv, &p->Z);
  fe_mul(&x, &p->X, &zinv);
  fe_mul(&y, &p->Y, &zinv);
  fe_tobytes(s, &y);
  s[31] ^= (uint8_t)(fe_isnegative(&x) << 7);
}

/*
 * Fills `table` (rows of `half` = 2^(w-1) affine points) with table[i * half + j] =
 * ((j + 1) 2^(w i)) P, normalising all of them with a single inversion.
 */
static int build_table(ge_affine *table, int rows, int w, const ge_ext *p) {
  const int half = 1 << (w - 1), n = rows * half;
  ge_ext *points = malloc((size_t)n * sizeof *points);
  fe *prefix = malloc((size_t)n * sizeof *prefix);
  if (points == NULL || prefix == NULL) {
    free(points);
    free(prefix);
    return 0;
  }
  ge_ext base = *p;
  for (int i = 0; i < rows; i++) {
    ge_ext *row = points + (size_t)i * half;
    ge_cached cached;
    row[0] = base;
    ge_to_cached(&cached, &base);
    ge_double(&row[1], &base);
    for (int j = 2; j < half; j++) ge_add(&row[j], &row[j - 1], &cached);
    ge_double(&base, &row[half - 1]); /* 2^w base */
  }
  /* Batch inversion: prefix[k] = Z_0 ... Z_(k-1), then peel the inverse back. */
  fe acc = FE_ONE, inv;
  for (int k = 0; k < n; k++) {
    prefix[k] = acc;
    fe_mul(&acc, &acc, &points[k].Z);
  }
  fe_invert(&inv, &acc);
  for (int k = n - 1; k >= 0; k--) {
    fe zinv, x, y;
    fe_mul(&zinv, &inv, &prefix[k]);
    fe_mul(&inv, &inv, &points[k].Z);
    fe_mul(&x, &points[k].X, &zinv);
    fe_mul(&y, &points[k].Y, &zinv);
    ge_affine *out = &table[k];
    fe_add(&out->ypx, &y, &x);
    fe_carry(&out->ypx);
    fe_sub(&out->ymx, &y, &x);
    fe_mul(&out->xy2d, &x, &y);
    fe_mul(&out->xy2d, &out->xy2d, &FE_D2);
  }
  free(points);
  free(prefix);
  return 1;
}

/* ---------------------------------------------------------------- scalars mod L */

/* L = 2^252 + 27742317777372353535851937790883648493, as 64-bit limbs. */
static const uint64_t SC_L[4] = {0x5812631a5cf5d3edULL, 0x14def9dea2f79cd6ULL, 0, 0x1000000000000000ULL};
/* floor(2^512 / L), for Barrett reduction. */
static const uint64_t SC_MU[5] = {0xed9ce5a30a2c131bULL, 0x2106215d086329a7ULL, 0xffffffffffffffebULL,
                                  0xffffffffffffffffULL, 0x000000000000000fULL};

/* Whether the 32-byte little-endian s is below L. */
static int sc_is_canonical(const uint8_t s[32]) {
  for (int i = 3; i >= 0; i--) {
    uint64_t w = load64_le(s + 8 * i);
    if (w < SC_L[i]) return 1;
    if (w > SC_L[i]) return 0;
  }
  return 0;
}

/* out[0 .. na + nb) = a * b. */
static void mp_mul(uint64_t *out, const uint64_t *a, int na, const uint64_t *b, int nb) {
  memset(out, 0, (size_t)(na + nb) * sizeof *out);
  for (int i = 0; i < na; i++) {
    uint64_t carry = 0;
    for (int j = 0; j < nb; j++) {
      u128 t = (u128)a[i] * b[j] + out[i + j] + carry;
      out[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    out[i + nb] = carry;
  }
}

/* r -= b over n limbs (mod 2^(64n)). */
static void mp_sub(uint64_t *r, const uint64_t *b, int n) {
  uint64_t borrow = 0;
  for (int i = 0; i < n; i++) {
    u128 t = (u128)r[i] - b[i] - borrow;
    r[i] = (uint64_t)t;
    borrow = (uint64_t)(t >> 64) & 1;
  }
}

/*
 * out = in mod L for a 512-bit little-endian in (Barrett): q = floor(in * mu / 2^512)
 * underestimates floor(in / L) by at most one, so in - qL < 2L needs at most one
 * correction; the loop makes that self-evident.
 */
static void sc_reduce512(uint8_t out[32], const uint8_t in[64]) {
  uint64_t x[8], prod[13], ql[9], l5[5] = {SC_L[0], SC_L[1], SC_L[2], SC_L[3], 0};
  for (int i = 0; i < 8; i++) x[i] = load64_le(in + 8 * i);
  mp_mul(prod, x, 8, SC_MU, 5);
  mp_mul(ql, prod + 8, 5, SC_L, 4);
  uint64_t r[5] = {x[0], x[1], x[2], x[3], x[4]};
  mp_sub(r, ql, 5); /* exact: the true remainder is below 2L < 2^320 */
  for (;;) {
    int below = 0;
    for (int i = 4; i >= 0; i--) {
      if (r[i] != l5[i]) {
        below = r[i] < l5[i];
        break;
      }
    }
    if (below) break;
    mp_sub(r, l5, 5);
  }
  for (int i = 0; i < 4; i++) store64_le(out + 8 * i, r[i]);
}

/*
 * Signed base-2^w digits of a < 2^253 (2 <= w <= 8): a = sum e[i] 2^(w i) over
 * i < ceil(256 / w), with every digit in [-2^(w-1), 2^(w-1)).
 */
static int sc_digits(int8_t *e, const uint8_t a[32], int w) {
  const int n = (256 + w - 1) / w, half = 1 << (w - 1), mask = (1 << w) - 1;
  int carry = 0;
  for (int i = 0; i < n; i++) {
    const int pos = i * w, byte = pos >> 3;
    unsigned window = a[byte];
    if (byte + 1 < 32) window |= (unsigned)a[byte + 1] << 8;
    const int digit = (int)((window >> (pos & 7)) & (unsigned)mask) + carry;
    carry = (digit + half) >> w;
    e[i] = (int8_t)(digit - (carry << w));
  }
  /* a < 2^253 leaves no carry out of the top digit for any w <= 8. */
  return n;
}

/* ---------------------------------------------------------------- SHA-512 */

typedef struct {
  uint64_t h[8];
  uint8_t block[128];
  size_t used;
  uint64_t bytes;
} sha512_ctx;

/* First 64 bits of the fractional parts of the cube roots of the first 80 primes. */
static const uint64_t SHA512_K[80] = {
    0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
    0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
    0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
    0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
    0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
    0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
    0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
    0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
    0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
    0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
    0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
    0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
    0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
    0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
    0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
    0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
    0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
    0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
    0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
    0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL,
};

static inline uint64_t rotr64(uint64_t x, int n) {
  return x >> n | x << (64 - n);
}

static inline uint64_t load64_be(const uint8_t *p) {
  return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
         (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

static void sha512_compress(uint64_t h[8], const uint8_t *block) {
  uint64_t w[80];
  for (int t = 0; t < 16; t++) w[t] = load64_be(block + 8 * t);
  for (int t = 16; t < 80; t++) {
    uint64_t s0 = rotr64(w[t - 15], 1) ^ rotr64(w[t - 15], 8) ^ (w[t - 15] >> 7);
    uint64_t s1 = rotr64(w[t - 2], 19) ^ rotr64(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int t = 0; t < 80; t++) {
    uint64_t t1 = k + (rotr64(e, 14) ^ rotr64(e, 18) ^ rotr64(e, 41)) + ((e & f) ^ (~e & g)) + SHA512_K[t] + w[t];
    uint64_t t2 = (rotr64(a, 28) ^ rotr64(a, 34) ^ rotr64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d;
  h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

static void sha512_init(sha512_ctx *ctx) {
  /* First 64 bits of the fractional parts of the square roots of the first 8 primes. */
  static const uint64_t iv[8] = {0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                                 0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                                 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};
  memcpy(ctx->h, iv, sizeof iv);
  ctx->used = 0;
  ctx->bytes = 0;
}

static void sha512_update(sha512_ctx *ctx, const uint8_t *data, size_t len) {
  ctx->bytes += len;
  if (ctx->used > 0) {
    size_t take = 128 - ctx->used < len ? 128 - ctx->used : len;
    memcpy(ctx->block + ctx->used, data, take);
    ctx->used += take;
    data += take;
    len -= take;
    if (ctx->used < 128) return;
    sha512_compress(ctx->h, ctx->block);
    ctx->used = 0;
  }
  for (; len >= 128; data += 128, len -= 128) sha512_compress(ctx->h, data);
  memcpy(ctx->block, data, len);
  ctx->used = len;
}

static void sha512_final(sha512_ctx *ctx, uint8_t out[64]) {
  /* Messages here are far below 2^61 bytes, so the high half of the bit length is 0. */
  const uint64_t bits = ctx->bytes << 3;
  ctx->block[ctx->used++] = 0x80;
  if (ctx->used > 112) {
    memset(ctx->block + ctx->used, 0, 128 - ctx->used);
    sha512_compress(ctx->h, ctx->block);
    ctx->used = 0;
  }
  memset(ctx->block + ctx->used, 0, 120 - ctx->used);
  for (int i = 0; i < 8; i++) ctx->block[120 + i] = (uint8_t)(bits >> (56 - 8 * i));
  sha512_compress(ctx->h, ctx->block);
  for (int i = 0; i < 8; i++) {
    for (int j = 0; j < 8; j++) out[8 * i + j] = (uint8_t)(ctx->h[i] >> (56 - 8 * j));
  }
}

void myelin_sha512(uint8_t out[64], const uint8_t *data, size_t len) {
  sha512_ctx ctx;
  sha512_init(&ctx);
  sha512_update(&ctx, data, len);
  sha512_final(&ctx, out);
}

/* ---------------------------------------------------------------- verification */

/* Window widths: the shared base-point table is large, per-key tables are moderate. */
#define BASE_WINDOW 8 /* 32 rows x 128 points, 480 KiB */
#define KEY_WINDOW 6  /* 43 rows x 32 points, 161 KiB */

struct myelin_ed25519_table {
  uint8_t public_key[32];
  int window;
  int rows;
  size_t bytes;
  ge_affine points[];
};

static myelin_ed25519_table *table_new(int w, const ge_ext *p, const uint8_t public_key[32]) {
  const int rows = (256 + w - 1) / w;
  const size_t bytes = sizeof(myelin_ed25519_table) + (size_t)rows * ((size_t)1 << (w - 1)) * sizeof(ge_affine);
  myelin_ed25519_table *table = malloc(bytes);
  if (table == NULL) return NULL;
  memcpy(table->public_key, public_key, 32);
  table->window = w;
  table->rows = rows;
  table->bytes = bytes;
  if (!build_table(table->points, rows, w, p)) {
    free(table);
    return NULL;
  }
  return table;
}

myelin_ed25519_table *myelin_ed25519_base_table(void) {
  static const uint8_t none[32] = {0};
  ge_ext b;
  b.X = BASE_X;
  b.Y = BASE_Y;
  b.Z = FE_ONE;
  fe_mul(&b.T, &BASE_X, &BASE_Y);
  return table_new(BASE_WINDOW, &b, none);
}

myelin_ed25519_table *myelin_ed25519_key_table(const uint8_t public_key[32]) {
  ge_ext minus_a;
  if (!ge_decode_negated(&minus_a, public_key)) return NULL;
  return table_new(KEY_WINDOW, &minus_a, public_key);
}

size_t myelin_ed25519_table_bytes(const myelin_ed25519_table *table) {
  return table->bytes;
}

void myelin_ed25519_table_free(myelin_ed25519_table *table) {
  free(table);
}

/* acc += a P for the table's point P. */
static void add_multiple(ge_ext *acc, const uint8_t a[32], const myelin_ed25519_table *table) {
  int8_t e[128];
  const int n = sc_digits(e, a, table->window), half = 1 << (table->window - 1);
  for (int i = 0; i < n; i++) {
    const ge_affine *row = table->points + (size_t)i * half;
    if (e[i] > 0) {
      ge_add_affine(acc, acc, &row[e[i] - 1], 0);
    } else if (e[i] < 0) {
      ge_add_affine(acc, acc, &row[-e[i] - 1], 1);
    }
  }
}

int myelin_ed25519_verify(const myelin_ed25519_table *base, const myelin_ed25519_table *key,
                          const uint8_t *message, size_t message_len, const uint8_t signature[64]) {
  uint8_t digest[64], h[32], check[32];
  if (!sc_is_canonical(signature + 32)) return 0;
  sha512_ctx ctx;
  sha512_init(&ctx);
  sha512_update(&ctx, signature, 32);
  sha512_update(&ctx, key->public_key, 32);
  sha512_update(&ctx, message, message_len);
  sha512_final(&ctx, digest);
  sc_reduce512(h, digest);
  ge_ext acc;
  ge_identity(&acc);
  add_multiple(&acc, signature + 32, base);
  add_multiple(&acc, h, key);
  ge_encode(check, &acc);
  return memcmp(check, signature, 32) == 0;
}
