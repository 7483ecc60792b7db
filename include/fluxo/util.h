/* SPDX-License-Identifier: MIT */
/* Small shared utilities: clocks, UUIDv7 ids, hashing, file helpers. */
#ifndef FLUXO_UTIL_H
#define FLUXO_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (wall clock). */
int64_t fx_now_ms(void);
/* Monotonic milliseconds, for deadlines and rates. */
int64_t fx_mono_ms(void);
int64_t fx_mono_us(void);
/* Sleep for ms milliseconds (restarts on EINTR). */
void fx_sleep_ms(int ms);

/* Write a fresh UUIDv7 (time-ordered, RFC 9562) as 36 chars + NUL into out. */
void fx_uuid7(char out[37]);
/* W3C traceparent "00-<32 hex>-<16 hex>-01" into out (56 bytes incl. NUL). */
void fx_traceparent_new(char out[56]);

/* SHA-256 (libsodium) of data as 64 lowercase hex chars + NUL. */
void fx_sha256_hex(const void *data, size_t len, char out[65]);
/* Incremental SHA-256; opaque state sized for libsodium's. */
struct fx_sha256 {
    _Alignas(64) unsigned char opaque[128];
};
void fx_sha256_init(struct fx_sha256 *s);
void fx_sha256_update(struct fx_sha256 *s, const void *data, size_t len);
void fx_sha256_final_hex(struct fx_sha256 *s, char out[65]);
/* Dedupe-key hash: BLAKE2b-256 (libsodium crypto_generichash), 64 hex chars.
 * Chosen over SHA-256 for row keys: it runs once per row and is ~3x faster in
 * libsodium on this hardware, with the same collision resistance. */
struct fx_keyhash {
    _Alignas(64) unsigned char opaque[384];
};
void fx_keyhash_init(struct fx_keyhash *s);
void fx_keyhash_update(struct fx_keyhash *s, const void *data, size_t len);
void fx_keyhash_final_hex(struct fx_keyhash *s, char out[65]);
void fx_keyhash_hex(const void *data, size_t len, char out[65]);

/* SHA-256 of a whole file, streamed. Returns 0 or FX_EIO. */
int fx_sha256_file(const char *path, char out[65]);

/* 64-bit FNV-1a, for in-memory hash tables. */
uint64_t fx_hash64(const void *data, size_t len);

/* A URL fit for logs: the password of user:password@ becomes "***" and a query
 * string (which may hold credentials: sasl.password=...) becomes "?...".
 * Always NUL-terminated; truncated to cap - 1 bytes. */
void fx_url_redact(const char *url, char *out, size_t cap);

/* mkdir -p; returns 0 or FX_EIO. */
int fx_mkdirs(const char *path);

#endif
