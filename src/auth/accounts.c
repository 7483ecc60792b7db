/* SPDX-License-Identifier: MIT */
/*
 * Accounts and grants: users (name + password) and API clients (id +
 * secret) in the "auth" store, each with an argon2id hash (libsodium
 * crypto_pwhash_str, parameters stored in the hash) and the scopes it may
 * receive; and the OAuth2 password and client-credentials grants that turn
 * them into tokens.
 *
 * A failed login says the same thing and takes the same time whether the
 * name or the password was wrong: an unknown name is checked against a dummy
 * hash of the same cost, so neither the reply nor its timing tells which
 * names exist. The store connection is used under db_mu only, and never
 * while hashing, so one slow login does not hold up the others.
 */
#include "auth_int.h"

#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest password or secret hashed: longer input is refused, not truncated. */
#define SECRET_INPUT_MAX 1024
/* Random bytes of a generated client secret (43 base64url characters). */
#define CLIENT_SECRET_BYTES 32

static const struct fx_migration auth_migrations[] = {
    {1, "users and API clients",
     "CREATE TABLE users ("
     " name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
     " scopes INTEGER NOT NULL CHECK (scopes BETWEEN 0 AND 7),"
     " created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)));"
     "CREATE TABLE clients ("
     " id TEXT PRIMARY KEY, hash TEXT NOT NULL,"
     " scopes INTEGER NOT NULL CHECK (scopes BETWEEN 0 AND 7),"
     " created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)));",
     NULL, NULL},
};

/* The two kinds of account differ only in names and words. */
struct kind {
    const char *insert_sql;
    const char *select_sql;
    const char *noun;    /* "user" */
    const char *id_word; /* "name" */
    const char *secret_word;
    const char *invalid; /* the one reason for any failed login */
};

static const struct kind user_kind = {
    "INSERT INTO users (name, hash, scopes, created_at) VALUES (?, ?, ?, ?)",
    "SELECT hash, scopes, disabled FROM users WHERE name = ?",
    "user",
    "name",
    "password",
    "invalid username or password",
};

static const struct kind client_kind = {
    "INSERT INTO clients (id, hash, scopes, created_at) VALUES (?, ?, ?, ?)",
    "SELECT hash, scopes, disabled FROM clients WHERE id = ?",
    "client",
    "id",
    "secret",
    "invalid client id or secret",
};

int fx__auth_open_store(struct fx_auth *a, const char *url, struct fx_err *err)
{
    int rc = fx_store_open(url, "auth", &a->db, err);
    if (rc)
        return rc;
    return fx_store_migrate(a->db, "auth", auth_migrations,
                            sizeof(auth_migrations) / sizeof(auth_migrations[0]), NULL, err);
}

static void now_iso(char out[32])
{
    int64_t ms = fx_now_ms();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int hash_secret(struct fx_auth *a, const char *secret, char out[crypto_pwhash_STRBYTES],
                       struct fx_err *err)
{
    if (crypto_pwhash_str(out, secret, strlen(secret), a->pw_ops, a->pw_mem) != 0)
        return fx_err_set(err, FX_ENOMEM, "argon2id needs %zu MiB of memory it could not get",
                          a->pw_mem >> 20);
    return 0;
}

static int add_account(struct fx_auth *a, const struct kind *k, const char *id, const char *secret,
                       unsigned scopes, struct fx_err *err)
{
    if (!fx__auth_name_ok(id))
        return fx_err_set(err, FX_EINVAL,
                          "%s %s '%.*s' is not valid: use 1 to %d letters, digits or . _ - @ + :",
                          k->noun, k->id_word, FX_AUTH_NAME_MAX, id, FX_AUTH_NAME_MAX);
    if (scopes & ~FX_SCOPES_ALL)
        return fx_err_set(err, FX_EINVAL, "scope bits 0x%x are not scopes",
                          scopes & ~FX_SCOPES_ALL);
    if (strlen(secret) > SECRET_INPUT_MAX)
        return fx_err_set(err, FX_EINVAL, "%s is longer than %d bytes", k->secret_word,
                          SECRET_INPUT_MAX);
    char hash[crypto_pwhash_STRBYTES], created[32];
    int rc = hash_secret(a, secret, hash, err);
    if (rc)
        return rc;
    now_iso(created);
    pthread_mutex_lock(&a->db_mu);
    struct fx_stmt *st = NULL;
    rc = fx_store_prepare(a->db, k->insert_sql, &st, err);
    if (rc)
        goto out;
    fx_stmt_bind_text(st, 1, id, strlen(id));
    fx_stmt_bind_text(st, 2, hash, strlen(hash));
    fx_stmt_bind_int(st, 3, scopes);
    fx_stmt_bind_text(st, 4, created, strlen(created));
    rc = fx_stmt_step(st);
    if (rc == FX_ECONSTRAINT)
        rc = fx_err_set(err, FX_EEXIST, "%s '%s' already exists", k->noun, id);
    else if (rc < 0)
        rc = fx_err_set(err, rc, "cannot add %s '%s': %s", k->noun, id, fx_store_errmsg(a->db));
    else
        rc = 0;
    fx_stmt_reset(st);
out:
    pthread_mutex_unlock(&a->db_mu);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

int fx_auth_user_add(struct fx_auth *a, const char *name, const char *password, unsigned scopes,
                     struct fx_err *err)
{
    if (!a || !name || !password)
        return fx_err_set(err, FX_EINVAL, "fx_auth_user_add: NULL argument");
    if (utf8_chars(password) < FX_AUTH_PASSWORD_MIN)
        return fx_err_set(err, FX_EINVAL,
                          "password of user '%s' is too short: %d characters or "
                          "more are needed",
                          name, FX_AUTH_PASSWORD_MIN);
    return add_account(a, &user_kind, name, password, scopes, err);
}

int fx_auth_client_add(struct fx_auth *a, const char *client_id, const char *secret,
                       unsigned scopes, char **secret_out, struct fx_err *err)
{
    if (secret_out)
        *secret_out = NULL;
    if (!a || !client_id || (!secret && !secret_out))
        return fx_err_set(err, FX_EINVAL, "fx_auth_client_add: NULL argument");
    char made[sodium_base64_ENCODED_LEN(CLIENT_SECRET_BYTES,
                                        sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (!secret) {
        unsigned char raw[CLIENT_SECRET_BYTES];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2base64(made, sizeof(made), raw, sizeof(raw),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(raw, sizeof(raw));
    } else if (strlen(secret) < FX_AUTH_CLIENT_SECRET_MIN) {
        return fx_err_set(err, FX_EINVAL,
                          "secret of client '%s' is too short: %d bytes or more are needed (or "
                          "let one be generated)",
                          client_id, FX_AUTH_CLIENT_SECRET_MIN);
    }
    int rc = add_account(a, &client_kind, client_id, secret ? secret : made, scopes, err);
    if (rc == 0 && !secret)
        *secret_out = fx_strdup(made);
    sodium_memzero(made, sizeof(made));
    return rc;
}

/* Look an account up; 1 found (hash, scopes, disabled set), 0 not found, < 0 store error. */
static int fetch(struct fx_auth *a, const struct kind *k, const char *id,
                 char hash[crypto_pwhash_STRBYTES], unsigned *scopes, int *disabled,
                 struct fx_err *err)
{
    pthread_mutex_lock(&a->db_mu);
    struct fx_stmt *st = NULL;
    int rc = fx_store_prepare(a->db, k->select_sql, &st, err);
    if (rc)
        goto out;
    fx_stmt_bind_text(st, 1, id, strlen(id));
    rc = fx_stmt_step(st);
    if (rc == FX_STORE_ROW) {
        size_t n = 0;
        const char *h = fx_stmt_text(st, 0, &n);
        if (!h || n >= crypto_pwhash_STRBYTES) {
            rc = fx_err_set(err, FX_ESTORE, "%s '%s' has a malformed password hash in the store",
                            k->noun, id);
        } else {
            memcpy(hash, h, n);
            hash[n] = '\0';
            *scopes = (unsigned)fx_stmt_int(st, 1) & FX_SCOPES_ALL;
            *disabled = fx_stmt_int(st, 2) != 0;
            rc = 1;
        }
    } else if (rc < 0) {
        rc = fx_err_set(err, rc, "cannot look up %s '%s': %s", k->noun, id, fx_store_errmsg(a->db));
    }
    fx_stmt_reset(st);
out:
    pthread_mutex_unlock(&a->db_mu);
    return rc;
}

/* Spend the time of one hash check on a hash no input matches. */
static void burn_dummy(struct fx_auth *a, const char *secret)
{
    pthread_mutex_lock(&a->dummy_mu);
    if (!a->dummy_hash) {
        unsigned char raw[32];
        char pw[65];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(pw, sizeof(pw), raw, sizeof(raw));
        char *h = fx_malloc(crypto_pwhash_STRBYTES);
        if (crypto_pwhash_str(h, pw, strlen(pw), a->pw_ops, a->pw_mem) == 0)
            a->dummy_hash = h;
        else
            free(h);
    }
    char *h = a->dummy_hash;
    pthread_mutex_unlock(&a->dummy_mu);
    if (h) {
        int rc = crypto_pwhash_str_verify(h, secret ? secret : "", secret ? strlen(secret) : 0);
        (void)rc;
    }
}

static int grant(struct fx_auth *a, const struct kind *k, const char *id, const char *secret,
                 unsigned requested, char **token_out, int64_t *expires_in, unsigned *granted,
                 struct fx_err *err)
{
    if (!a || !token_out)
        return fx_err_set(err, FX_EINVAL, "grant: NULL argument");
    *token_out = NULL;
    if (requested & ~FX_SCOPES_ALL)
        return fx_err_set(err, FX_EINVAL, "scope bits 0x%x are not scopes",
                          requested & ~FX_SCOPES_ALL);
    if (a->alg != FX__JWT_HS256 && !a->sign_key)
        return fx_err_set(err, FX_ECONFIG,
                          "auth.private_key is not set: this server can verify %s tokens but "
                          "not issue them",
                          a->pol.alg);
    char hash[crypto_pwhash_STRBYTES];
    unsigned scopes = 0;
    int disabled = 0, found = 0;
    if (id && secret && fx__auth_name_ok(id) && strlen(secret) <= SECRET_INPUT_MAX) {
        found = fetch(a, k, id, hash, &scopes, &disabled, err);
        if (found < 0)
            return found;
    }
    if (!found) {
        burn_dummy(a, secret);
        return fx__auth_refuse(err, "", "%s", k->invalid);
    }
    int match = crypto_pwhash_str_verify(hash, secret, strlen(secret)) == 0;
    sodium_memzero(hash, sizeof(hash));
    if (!match)
        return fx__auth_refuse(err, "", "%s", k->invalid);
    if (disabled)
        return fx__auth_refuse(err, "", "%s '%s' is disabled", k->noun, id);
    if (requested & ~scopes) {
        char want[FX_SCOPES_TEXT_MAX], have[FX_SCOPES_TEXT_MAX];
        fx_scopes_format(requested & ~scopes, want, sizeof(want));
        fx_scopes_format(scopes, have, sizeof(have));
        return fx__auth_refuse(err, "scope", "scope '%s' is not granted to %s '%s' (it holds: %s)",
                               want, k->noun, id, have[0] ? have : "no scopes");
    }
    unsigned give = requested ? requested : scopes;
    int rc = fx_auth_issue(a, id, give, 0, token_out, err);
    if (rc)
        return rc;
    if (expires_in)
        *expires_in = (a->ttl_ms + 999) / 1000;
    if (granted)
        *granted = give;
    return 0;
}

int fx_auth_password_grant(struct fx_auth *a, const char *user, const char *password,
                           unsigned requested_scopes, char **token_out, int64_t *expires_in,
                           unsigned *granted, struct fx_err *err)
{
    return grant(a, &user_kind, user, password, requested_scopes, token_out, expires_in, granted,
                 err);
}

int fx_auth_client_grant(struct fx_auth *a, const char *client_id, const char *secret,
                         unsigned requested_scopes, char **token_out, int64_t *expires_in,
                         unsigned *granted, struct fx_err *err)
{
    return grant(a, &client_kind, client_id, secret, requested_scopes, token_out, expires_in,
                 granted, err);
}
