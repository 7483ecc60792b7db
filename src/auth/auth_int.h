/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the files of the auth module: the handle, the
 * OpenSSL-backed asymmetric keys (pkey.c), the verified-token cache
 * (token_cache.c) and the JWT header and claims checks (jwt.c), which the
 * fuzz target also calls directly.
 */
#ifndef FLUXO_AUTH_INT_H
#define FLUXO_AUTH_INT_H

#include "fluxo/auth.h"
#include "fluxo/store.h"

#include <pthread.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

enum fx__jwt_alg { FX__JWT_HS256 = 0, FX__JWT_RS256, FX__JWT_ES256 };

/* ---- asymmetric keys (pkey.c) ---- */

/*
 * A parsed RSA or EC P-256 key. OpenSSL's libcrypto is reached through
 * pkey.c only; a key is immutable after loading, so one key may sign or
 * verify from many threads at once.
 */
struct fx__pkey;

/* Largest JOSE signature produced or accepted: RSA-8192. */
#define FX__SIG_MAX 1024

/*
 * Read and parse the PEM file at path (a public key, or with is_private an
 * unencrypted private key) for alg, which must be RS256 or ES256: RSA of 2048
 * bits or more, or EC on P-256. key_name is the configuration key, for
 * messages. FX_EIO (file), FX_ECONFIG (not a usable key), FX_ENOTSUP (no
 * libcrypto).
 */
int fx__pkey_load(const char *path, const char *key_name, int is_private, enum fx__jwt_alg alg,
                  struct fx__pkey **out, struct fx_err *err);
void fx__pkey_free(struct fx__pkey *k);
/* Sign data with SHA-256 into sig (JOSE form: RSA modulus bytes, or R||S of
 * 64 bytes for ES256); *siglen receives its length. 0 or FX_EIO. */
int fx__pkey_sign(const struct fx__pkey *k, const void *data, size_t len,
                  unsigned char sig[FX__SIG_MAX], size_t *siglen, struct fx_err *err);
/* 1 when sig (JOSE form) is a valid signature of data, else 0. */
int fx__pkey_verify(const struct fx__pkey *k, const void *data, size_t len,
                    const unsigned char *sig, size_t siglen);

/* ---- verified-token cache (token_cache.c) ---- */

/*
 * A fixed-size, set-associative map from the bytes of a verified token to
 * its principal and validity window. Keys are hashed with SipHash under a
 * random key (so nobody can aim tokens at one set) and compared in full.
 * Each set has its own lock; entries past their drop time are reused first,
 * then the least recently used.
 */
struct fx__token_cache;

struct fx__token_cache *fx__token_cache_new(void);
void fx__token_cache_free(struct fx__token_cache *c);
/* On a hit copy the principal and the token's nbf and exp (ms; nbf is
 * INT64_MIN when absent) and return 1; else 0. */
int fx__token_cache_get(struct fx__token_cache *c, const char *tok, size_t len,
                        struct fx_principal *p, int64_t *nbf_ms, int64_t *exp_ms);
/* Remember a verified token until drop_ms (wall clock). */
void fx__token_cache_put(struct fx__token_cache *c, const char *tok, size_t len,
                         const struct fx_principal *p, int64_t nbf_ms, int64_t exp_ms,
                         int64_t drop_ms);
/* Forget a token (after it was found expired). */
void fx__token_cache_drop(struct fx__token_cache *c, const char *tok, size_t len);
void fx__token_cache_stats(struct fx__token_cache *c, struct fx_auth_stats *out);

/* ---- JWT (jwt.c) ---- */

/* What a token must satisfy besides its signature. */
struct fx__jwt_policy {
    const char *alg; /* "HS256"... */
    const char *issuer;
    const char *audience;
    int64_t leeway_ms;
};

/* Strict base64url (RFC 4648 section 5) without padding: any other character,
 * an impossible length or non-zero unused bits -> -1. 0 on success with
 * *outlen bytes in out; -1 as well when they would not fit in cap. */
int fx__b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen);

/* Check a decoded JOSE header (JSON text of len bytes). 0 or FX_EAUTH. */
int fx__jwt_check_header(const char *json, size_t len, const struct fx__jwt_policy *pol,
                         struct fx_err *err);
/*
 * Check decoded claims (JSON text) at time now_ms and fill *p; *nbf_ms and
 * *exp_ms receive the validity window in ms (nbf INT64_MIN when absent).
 * 0 or FX_EAUTH.
 */
int fx__jwt_check_claims(const char *json, size_t len, const struct fx__jwt_policy *pol,
                         int64_t now_ms, struct fx_principal *p, int64_t *nbf_ms, int64_t *exp_ms,
                         struct fx_err *err);

/* ---- accounts (accounts.c) ---- */

struct fx_auth;
/* Open the "auth" store at url and apply its migrations into a->db. */
int fx__auth_open_store(struct fx_auth *a, const char *url, struct fx_err *err);

/* ---- the handle ---- */

struct fx_auth {
    enum fx__jwt_alg alg;
    struct fx__jwt_policy pol;
    char *issuer, *audience;
    int64_t ttl_ms;
    /* HS256: the secret, and the HMAC state keyed with it once (copied per call) */
    unsigned char *secret;
    size_t secret_len;
    crypto_auth_hmacsha256_state hmac_keyed;
    /* RS256 / ES256 */
    struct fx__pkey *sign_key;   /* NULL: this process can verify but not issue */
    struct fx__pkey *verify_key; /* always set for RS256 / ES256 */
    char *header_b64;            /* base64url of the fixed header we issue */
    size_t header_b64_len;
    struct fx__token_cache *cache;
    /* argon2id cost for new hashes */
    unsigned long long pw_ops;
    size_t pw_mem;
    /* the store is one connection: db_mu serialises its users */
    pthread_mutex_t db_mu;
    struct fx_store *db;
    /* hash checked for unknown accounts so they cost as much as known ones */
    pthread_mutex_t dummy_mu;
    char *dummy_hash;
};

/* Sign signing_input (header.payload) with the handle's key into sig. */
int fx__auth_sign(struct fx_auth *a, const char *data, size_t len, unsigned char sig[FX__SIG_MAX],
                  size_t *siglen, struct fx_err *err);

/* Set err to FX_EAUTH with field and a printf-style reason; returns FX_EAUTH. */
int fx__auth_refuse(struct fx_err *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when s is a valid user name / client id (see fx_auth_user_add). */
int fx__auth_name_ok(const char *s);

#endif
