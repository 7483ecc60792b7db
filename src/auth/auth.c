/* SPDX-License-Identifier: MIT */
/*
 * The auth handle: reads the auth.* configuration, loads the signing and
 * verifying keys once (the HS256 secret, or the RS256/ES256 PEM files), keeps
 * a development secret under the data directory when asked to, and opens the
 * "auth" store. Tokens are in jwt.c, accounts in accounts.c.
 */
#include "auth_int.h"

#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* HS256 keys shorter than the hash output weaken it (RFC 7518 3.2). */
#define SECRET_MIN 32
/* Random bytes of a development secret, written as twice as many hex characters. */
#define DEV_SECRET_BYTES 32
/* A secret file larger than this is not one of ours. */
#define SECRET_FILE_MAX 4096

int fx__auth_refuse(struct fx_err *err, const char *field, const char *fmt, ...)
{
    if (!err)
        return FX_EAUTH;
    va_list ap;
    va_start(ap, fmt);
    fx_err_vset_at(err, FX_EAUTH, NULL, 0, fmt, ap);
    va_end(ap);
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    return FX_EAUTH;
}

int fx__auth_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FX_AUTH_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._-@+:", c)))
            return 0;
    }
    return 1;
}

static void set_secret(struct fx_auth *a, const void *key, size_t len)
{
    a->secret = fx_malloc(len);
    memcpy(a->secret, key, len);
    a->secret_len = len;
    crypto_auth_hmacsha256_init(&a->hmac_keyed, a->secret, len);
}

/* Read <data_dir>/jwt.secret, or create it with O_EXCL so that two processes
 * starting together end up with the same secret. */
static int dev_secret(struct fx_auth *a, const char *data_dir, struct fx_err *err)
{
    char *path = fx_asprintf("%s/jwt.secret", data_dir);
    char buf[SECRET_FILE_MAX + 1];
    int rc = 0, fd = -1;
    if (fx_mkdirs(data_dir) != 0) {
        rc = fx_err_set(err, FX_EIO,
                        "cannot create data directory '%s' for the development "
                        "secret",
                        data_dir);
        goto out;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        unsigned char raw[DEV_SECRET_BYTES];
        char hex[2 * DEV_SECRET_BYTES + 2];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
        size_t n = strlen(hex);
        hex[n] = '\n';
        if (fchmod(fd, 0600) != 0 || write(fd, hex, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0) {
            rc = fx_err_set(err, FX_EIO, "cannot write development secret '%s': %s", path,
                            strerror(errno));
            unlink(path);
        } else {
            set_secret(a, hex, n);
            fx_log_warn("auth",
                        "development secret created in %s: API tokens are signed with it "
                        "because auth.dev is on and no secret is set; set FLUXO_SECRET "
                        "for production",
                        path);
        }
        sodium_memzero(raw, sizeof(raw));
        sodium_memzero(hex, sizeof(hex));
        goto out;
    }
    if (errno != EEXIST) {
        rc = fx_err_set(err, FX_EIO, "cannot create development secret '%s': %s", path,
                        strerror(errno));
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    if (n < 0) {
        rc = fx_err_set(err, FX_EIO, "cannot read development secret '%s': %s", path,
                        strerror(errno));
        goto out;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n < SECRET_MIN || n > SECRET_FILE_MAX) {
        rc = fx_err_set(err, FX_ECONFIG,
                        "development secret '%s' holds %zd bytes; it needs %d to %d (delete the "
                        "file to have a new one generated)",
                        path, n, SECRET_MIN, SECRET_FILE_MAX);
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        fx_log_warn("auth", "development secret %s is readable by other users (mode %03o)", path,
                    (unsigned)(st.st_mode & 0777));
    set_secret(a, buf, (size_t)n);
    fx_log_warn("auth", "development secret in use (%s): set FLUXO_SECRET for production", path);
out:
    if (fd >= 0)
        close(fd);
    sodium_memzero(buf, sizeof(buf));
    free(path);
    return rc;
}

static int load_keys(struct fx_auth *a, const struct fx_config *cfg, const char *data_dir,
                     struct fx_err *err)
{
    if (a->alg == FX__JWT_HS256) {
        const char *secret = fx_config_str(cfg, "secret");
        if (secret && *secret) {
            size_t n = strlen(secret);
            if (n < SECRET_MIN)
                return fx_err_set(err, FX_ECONFIG,
                                  "secret (from %s) is %zu bytes; HS256 needs %d or more, e.g. "
                                  "the output of: openssl rand -hex 32",
                                  fx_config_origin(cfg, "secret"), n, SECRET_MIN);
            set_secret(a, secret, n);
            return 0;
        }
        if (fx_config_bool(cfg, "auth.dev"))
            return dev_secret(a, data_dir, err);
        return fx_err_set(err, FX_ECONFIG,
                          "no secret to sign API tokens with (auth.alg HS256): set FLUXO_SECRET "
                          "in the environment or `secret:` in fluxo.yaml to 32 or more random "
                          "bytes (e.g. openssl rand -hex 32), or set auth.dev: true to have a "
                          "development secret generated in %s/jwt.secret",
                          data_dir);
    }
    const char *pub = fx_config_str(cfg, "auth.public_key");
    const char *priv = fx_config_str(cfg, "auth.private_key");
    if (!pub || !*pub)
        return fx_err_set(err, FX_ECONFIG,
                          "auth.alg is %s but auth.public_key is not set: give the PEM public "
                          "key file that verifies tokens (FLUXO_AUTH_PUBLIC_KEY)",
                          a->pol.alg);
    int rc = fx__pkey_load(pub, "auth.public_key", 0, a->alg, &a->verify_key, err);
    if (rc || !priv || !*priv)
        return rc;
    rc = fx__pkey_load(priv, "auth.private_key", 1, a->alg, &a->sign_key, err);
    if (rc)
        return rc;
    /* a private key that does not match the public one would issue tokens
     * this very server refuses: find out now, not at the first login */
    static const char probe[] = "fluxo key pair probe";
    unsigned char sig[FX__SIG_MAX];
    size_t siglen = 0;
    rc = fx__pkey_sign(a->sign_key, probe, sizeof(probe) - 1, sig, &siglen, err);
    if (rc)
        return rc;
    if (!fx__pkey_verify(a->verify_key, probe, sizeof(probe) - 1, sig, siglen))
        return fx_err_set(err, FX_ECONFIG,
                          "auth.private_key '%s' does not belong to auth.public_key '%s': tokens "
                          "it signs would not verify",
                          priv, pub);
    return 0;
}

static void make_header(struct fx_auth *a)
{
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", a->pol.alg);
    size_t cap = sodium_base64_ENCODED_LEN((size_t)n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    a->header_b64 = fx_malloc(cap);
    sodium_bin2base64(a->header_b64, cap, (const unsigned char *)json, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    a->header_b64_len = strlen(a->header_b64);
}

int fx_auth_open(const struct fx_config *cfg, const char *db_url, const char *data_dir,
                 struct fx_auth **out, struct fx_err *err)
{
    if (!cfg || !out)
        return fx_err_set(err, FX_EINVAL, "fx_auth_open: NULL argument");
    *out = NULL;
    if (sodium_init() < 0)
        return fx_err_set(err, FX_EIO, "libsodium failed to initialise");
    if (!data_dir)
        data_dir = fx_config_str(cfg, "data_dir");
    char *url = NULL;
    struct fx_auth *a = fx_calloc(1, sizeof(*a));
    pthread_mutex_init(&a->db_mu, NULL);
    pthread_mutex_init(&a->dummy_mu, NULL);
    const char *alg = fx_config_str(cfg, "auth.alg");
    a->alg = strcmp(alg, "RS256") == 0   ? FX__JWT_RS256
             : strcmp(alg, "ES256") == 0 ? FX__JWT_ES256
                                         : FX__JWT_HS256;
    static const char *const alg_names[] = {"HS256", "RS256", "ES256"};
    a->pol.alg = alg_names[a->alg];
    a->issuer = fx_strdup(fx_config_str(cfg, "auth.issuer"));
    a->audience = fx_strdup(fx_config_str(cfg, "auth.audience"));
    a->pol.issuer = a->issuer;
    a->pol.audience = a->audience;
    a->pol.leeway_ms = fx_config_int(cfg, "auth.leeway");
    a->ttl_ms = fx_config_int(cfg, "auth.token_ttl");
    const char *fast = getenv("FLUXO_AUTH_FAST_HASH");
    if (fast && strcmp(fast, "1") == 0) {
        a->pw_ops = crypto_pwhash_OPSLIMIT_MIN;
        a->pw_mem = crypto_pwhash_MEMLIMIT_MIN;
    } else {
        a->pw_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        a->pw_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
    make_header(a);
    a->cache = fx__token_cache_new();

    int rc = load_keys(a, cfg, data_dir, err);
    if (rc)
        goto out;
    if (!db_url) {
        const char *v = fx_config_str(cfg, "db");
        if (v && *v) {
            db_url = v;
        } else {
            if (fx_mkdirs(data_dir) != 0) {
                rc = fx_err_set(err, FX_EIO, "cannot create data directory '%s'", data_dir);
                goto out;
            }
            db_url = url = fx_asprintf("sqlite:%s", data_dir);
        }
    }
    rc = fx__auth_open_store(a, db_url, err);
out:
    free(url);
    if (rc) {
        fx_auth_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

void fx_auth_close(struct fx_auth *a)
{
    if (!a)
        return;
    fx_store_close(a->db);
    fx__token_cache_free(a->cache);
    fx__pkey_free(a->sign_key);
    fx__pkey_free(a->verify_key);
    if (a->secret) {
        sodium_memzero(a->secret, a->secret_len);
        free(a->secret);
    }
    sodium_memzero(&a->hmac_keyed, sizeof(a->hmac_keyed));
    free(a->header_b64);
    free(a->issuer);
    free(a->audience);
    free(a->dummy_hash);
    pthread_mutex_destroy(&a->db_mu);
    pthread_mutex_destroy(&a->dummy_mu);
    free(a);
}

const char *fx_auth_alg(const struct fx_auth *a)
{
    return a->pol.alg;
}

void fx_auth_stats(struct fx_auth *a, struct fx_auth_stats *out)
{
    fx__token_cache_stats(a->cache, out);
}
