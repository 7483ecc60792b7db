/* SPDX-License-Identifier: MIT */
/*
 * Authentication for the HTTP API: OAuth2-style grants (user password,
 * client credentials) that issue JSON Web Tokens, and the verification of
 * those tokens as bearer credentials on every request.
 *
 * Tokens are signed with one algorithm chosen in the configuration (auth.alg):
 * HS256 with the `secret` key, or RS256 / ES256 with PEM key files. A token is
 * accepted only when its header names exactly that algorithm, so unsigned
 * ("alg": "none") tokens and HMAC-with-the-public-key forgeries are refused
 * before any signature is computed. Accounts (users and API clients) live in
 * the "auth" store with argon2id password hashes (libsodium).
 *
 * Threads: fx_auth_verify is safe to call from any number of threads at once
 * and never touches the database; the other calls may also be made from
 * several threads (the store is guarded by a lock inside struct fx_auth), but
 * grants and account changes block for the duration of an argon2id hash.
 */
#ifndef FLUXO_AUTH_H
#define FLUXO_AUTH_H

#include "fluxo/config.h"
#include "fluxo/error.h"

#include <stddef.h>
#include <stdint.h>

/* Scopes a token can carry; a set of them is a bitmask. */
enum fx_scope { FX_SCOPE_INGEST_WRITE = 1, FX_SCOPE_READ = 2, FX_SCOPE_ADMIN = 4 };
#define FX_SCOPES_ALL 7u
/* Room for the longest scope text, "ingest:write read admin", and its NUL. */
#define FX_SCOPES_TEXT_MAX 32
/* Bearer tokens longer than this are refused before any decoding. */
#define FX_AUTH_TOKEN_MAX 8192
/* Longest user name or client id, in bytes (it must fit fx_principal.sub). */
#define FX_AUTH_NAME_MAX 127
/* Shortest password accepted by fx_auth_user_add, in characters. */
#define FX_AUTH_PASSWORD_MIN 8
/* Shortest client secret accepted when the caller chooses it, in bytes. */
#define FX_AUTH_CLIENT_SECRET_MIN 16

/*
 * Parse OAuth2 scope text ("ingest:write read admin": names separated by
 * spaces or tabs, in any order, repeats allowed) into a bitmask. NULL or
 * blank text is the empty set. An unknown name -> FX_EINVAL with err naming
 * it (err->value holds the name).
 */
int fx_scopes_parse(const char *text, unsigned *out, struct fx_err *err);
/* Write scopes as space-separated names in a fixed order into out (always
 * NUL-terminated when cap > 0; truncated when cap < FX_SCOPES_TEXT_MAX).
 * Bits that are not scopes are ignored; the empty set is "". */
void fx_scopes_format(unsigned scopes, char *out, size_t cap);

/* Who a verified token speaks for. */
struct fx_principal {
    char sub[128];   /* user name or client id */
    unsigned scopes; /* FX_SCOPE_* bits; scope names this build does not know are dropped */
    int64_t exp;     /* seconds since epoch */
    char jti[40];    /* token id ("" when the token has none) */
};

struct fx_auth;

/*
 * Open the "auth" store (db_url; NULL means the `db` key, or sqlite:<data_dir>
 * when that is unset too), applying its migrations, and load the keys of the
 * configured algorithm. data_dir NULL means the `data_dir` key.
 *
 * HS256 needs `secret` of 32 bytes or more. When it is unset and auth.dev is
 * true, <data_dir>/jwt.secret is read, or created with 64 random hex
 * characters and mode 0600, and a warning says a development secret is in
 * use; unset without auth.dev -> FX_ECONFIG telling how to set one.
 * RS256/ES256 need auth.public_key (a PEM public key file: RSA of 2048 bits or
 * more, or EC P-256) to verify and, to issue tokens, auth.private_key (the
 * matching unencrypted PEM private key). Each file is read and parsed here,
 * once; errors name the key and the file.
 *
 * On success *out is a new handle (fx_auth_close); on failure *out is NULL and
 * the return is FX_ECONFIG (keys, secret), FX_EIO (files) or a store error,
 * with err saying what and where. Blocks on file and database I/O.
 */
int fx_auth_open(const struct fx_config *cfg, const char *db_url, const char *data_dir,
                 struct fx_auth **out, struct fx_err *err);
/* Close the store and wipe the keys. NULL is a no-op. */
void fx_auth_close(struct fx_auth *a);

/* The configured algorithm: "HS256", "RS256" or "ES256". */
const char *fx_auth_alg(const struct fx_auth *a);

/*
 * Add a user with an argon2id hash of password (libsodium crypto_pwhash_str;
 * set FLUXO_AUTH_FAST_HASH=1 in the environment before fx_auth_open to use
 * the minimum cost, for tests only). name: 1 to FX_AUTH_NAME_MAX bytes of
 * letters, digits and . _ - @ + :. Returns 0; FX_EEXIST when the name is
 * taken; FX_EINVAL for a bad name, a password shorter than
 * FX_AUTH_PASSWORD_MIN characters or scopes outside FX_SCOPES_ALL.
 * Blocks for the hash (tens of milliseconds) and the insert.
 */
int fx_auth_user_add(struct fx_auth *a, const char *name, const char *password, unsigned scopes,
                     struct fx_err *err);

/*
 * Add an API client. secret NULL: generate 32 random bytes and return them
 * base64url-encoded (43 characters) in *secret_out, which the caller frees;
 * this is the only time the secret is visible. With a secret given (at least
 * FX_AUTH_CLIENT_SECRET_MIN bytes) *secret_out, when not NULL, is set to NULL.
 * The secret is stored as an argon2id hash. Same id rules and errors as
 * fx_auth_user_add.
 */
int fx_auth_client_add(struct fx_auth *a, const char *client_id, const char *secret,
                       unsigned scopes, char **secret_out, struct fx_err *err);

/*
 * OAuth2 grants: check the credentials, then issue a token (see fx_auth_issue)
 * for the requested scopes (0 = every scope of the account).
 * Wrong name or password (or id and secret) -> FX_EAUTH with the same reason
 * whichever was wrong ("invalid username or password" / "invalid client id or
 * secret"), and the same time spent. A disabled account -> FX_EAUTH. A scope
 * the account does not hold -> FX_EAUTH with err->field "scope" (OAuth2
 * invalid_scope). No private key to sign with -> FX_ECONFIG.
 * On success *token_out (caller frees), *expires_in (seconds) and *granted
 * are set. Blocks for one argon2id verification.
 */
int fx_auth_password_grant(struct fx_auth *a, const char *user, const char *password,
                           unsigned requested_scopes, char **token_out, int64_t *expires_in,
                           unsigned *granted, struct fx_err *err);
int fx_auth_client_grant(struct fx_auth *a, const char *client_id, const char *secret,
                         unsigned requested_scopes, char **token_out, int64_t *expires_in,
                         unsigned *granted, struct fx_err *err);

/*
 * Issue a token for sub without checking any credential (the `fluxo token`
 * command, tests). Claims: iss, aud (the configured issuer and audience), sub,
 * iat = nbf = now, exp = now + ttl_s (ttl_s <= 0: auth.token_ttl), jti (a
 * UUIDv7) and scope (space-separated names). *token_out is the caller's.
 * FX_EINVAL for a bad sub or scopes; FX_ECONFIG without a private key.
 */
int fx_auth_issue(struct fx_auth *a, const char *sub, unsigned scopes, int64_t ttl_s,
                  char **token_out, struct fx_err *err);

/*
 * Verify a bearer token of len bytes (not NUL-terminated necessarily) and fill
 * *p. Checks, in this order: size, three base64url parts, a JSON header whose
 * "alg" is exactly the configured algorithm (and no "crit"), the signature,
 * then the claims: exp (required) and nbf with auth.leeway of clock skew, iss,
 * aud (a string, or an array holding ours), sub, and scope (names this build
 * does not know are ignored).
 * Returns 0, or FX_EAUTH with err->reason saying precisely what failed (fit
 * for a 401 response body) and err->field naming the part or claim; *p is
 * zeroed on failure. FX_EINVAL for NULL arguments.
 * Thread-safe and non-blocking apart from a short lock: verified tokens are
 * kept in a small cache until they expire, and a cache hit still checks exp
 * and nbf against the current time.
 */
int fx_auth_verify(struct fx_auth *a, const char *token, size_t len, struct fx_principal *p,
                   struct fx_err *err);

/* Counters of the verified-token cache, for metrics and tests. */
struct fx_auth_stats {
    uint64_t cache_hits;    /* verifications answered from the cache */
    uint64_t cache_misses;  /* verifications that had to decode and check a signature */
    uint64_t cache_entries; /* tokens held now */
};
void fx_auth_stats(struct fx_auth *a, struct fx_auth_stats *out);

#endif
