/*
 * Ed25519 verification with per-key precomputed tables (see ed25519_verify.c).
 */
#ifndef MYELIN_ED25519_VERIFY_H
#define MYELIN_ED25519_VERIFY_H

#include <stddef.h>
#include <stdint.h>

typedef struct myelin_ed25519_table myelin_ed25519_table;

/* A new table for the base point (about 480 KiB), or NULL when out of memory. */
myelin_ed25519_table *myelin_ed25519_base_table(void);

/*
 * A new table for a public key (about 160 KiB), or NULL when the encoding is not a curve
 * point (or out of memory). The caller refuses non-canonical and small-order keys first.
 */
myelin_ed25519_table *myelin_ed25519_key_table(const uint8_t public_key[32]);

/* The bytes a table occupies. */
size_t myelin_ed25519_table_bytes(const myelin_ed25519_table *table);

void myelin_ed25519_table_free(myelin_ed25519_table *table);

/*
 * 1 when `signature` is a valid signature of the message by the table's key, under
 * libsodium's equation; 0 otherwise. The caller refuses small-order R beforehand.
 */
int myelin_ed25519_verify(const myelin_ed25519_table *base, const myelin_ed25519_table *key,
                          const uint8_t *message, size_t message_len, const uint8_t signature[64]);

/* SHA-512 of `data`, exposed so that tests can check it against another implementation. */
void myelin_sha512(uint8_t out[64], const uint8_t *data, size_t len);

#endif
