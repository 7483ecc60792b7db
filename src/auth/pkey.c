/* SPDX-License-Identifier: MIT */
/*
 * RSA and EC P-256 keys for RS256 / ES256 tokens, on OpenSSL's libcrypto.
 *
 * Why not libjwt for these: libjwt 1.10 takes keys as PEM text and parses
 * them again on every jwt_decode / jwt_encode. Measured on this machine, that
 * parse is ~385 us of a ~490 us RS256 verification and ~535 us of a ~540 us
 * ES256 one; parsing once here and keeping the EVP_PKEY makes an uncached
 * verification several times cheaper.
 *
 * The entry points are gathered in one table (filled once) so the
 * functions this file relies on are listed in one place.
 *
 * Threads: a loaded key is never modified, and OpenSSL 3 allows concurrent
 * signing and verification with one EVP_PKEY; each call has its own context.
 */
#include "auth_int.h"

#include "fluxo/mem.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "pkey.c needs the OpenSSL 3 API"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#define LIBCRYPTO_SONAME "libcrypto.so." STR(OPENSSL_VERSION_MAJOR)

/* Largest PEM file read: an RSA-8192 private key is under 7 KiB. */
#define PEM_MAX (64 * 1024)

#define CRYPTO_FUNCS(X)                                                                            \
    X(BIO_new_mem_buf)                                                                             \
    X(BIO_free)                                                                                    \
    X(PEM_read_bio_PUBKEY)                                                                         \
    X(PEM_read_bio_PrivateKey)                                                                     \
    X(EVP_PKEY_free)                                                                               \
    X(EVP_PKEY_get_base_id)                                                                        \
    X(EVP_PKEY_get_bits)                                                                           \
    X(EVP_PKEY_get_size)                                                                           \
    X(EVP_PKEY_get_group_name)                                                                     \
    X(EVP_MD_fetch)                                                                                \
    X(EVP_MD_free)                                                                                 \
    X(EVP_MD_CTX_new)                                                                              \
    X(EVP_MD_CTX_free)                                                                             \
    X(EVP_DigestSignInit)                                                                          \
    X(EVP_DigestSign)                                                                              \
    X(EVP_DigestVerifyInit)                                                                        \
    X(EVP_DigestVerify)                                                                            \
    X(ECDSA_SIG_new)                                                                               \
    X(ECDSA_SIG_free)                                                                              \
    X(ECDSA_SIG_set0)                                                                              \
    X(ECDSA_SIG_get0)                                                                              \
    X(d2i_ECDSA_SIG)                                                                               \
    X(i2d_ECDSA_SIG)                                                                               \
    X(BN_bin2bn)                                                                                   \
    X(BN_bn2binpad)                                                                                \
    X(BN_free)                                                                                     \
    X(ERR_get_error)                                                                               \
    X(ERR_error_string_n)                                                                          \
    X(ERR_clear_error)

static struct {
#define DECLARE(f) __typeof__(&f) f;
    CRYPTO_FUNCS(DECLARE)
#undef DECLARE
    EVP_MD *sha256; /* fetched once: an implicit fetch per call costs microseconds */
} C;

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static char crypto_error[256];

static void crypto_resolve(void)
{
#define RESOLVE(f) C.f = f;
    CRYPTO_FUNCS(RESOLVE)
#undef RESOLVE
    C.sha256 = C.EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!C.sha256)
        snprintf(crypto_error, sizeof(crypto_error), "%s cannot provide SHA-256", LIBCRYPTO_SONAME);
}

/* 0 when libcrypto is usable, else FX_ENOTSUP with err saying why. */
static int crypto_ready(struct fx_err *err)
{
    pthread_once(&crypto_once, crypto_resolve);
    if (crypto_error[0])
        return fx_err_set(err, FX_ENOTSUP, "RS256 and ES256 need OpenSSL's %s: %s",
                          LIBCRYPTO_SONAME, crypto_error);
    return 0;
}

/* The first queued OpenSSL error as text (and the queue emptied: it is per thread). */
static const char *crypto_reason(char *buf, size_t cap)
{
    unsigned long e = C.ERR_get_error();
    if (e)
        C.ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "no detail from OpenSSL");
    C.ERR_clear_error();
    return buf;
}

struct fx__pkey {
    EVP_PKEY *pkey;
    enum fx__jwt_alg alg;
    size_t sig_len; /* JOSE signature length */
};

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* never prompt on the terminal, as OpenSSL's default would */
}

static int read_pem(const char *path, const char *key_name, char **out, size_t *len,
                    struct fx_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fx_err_set(err, FX_EIO, "%s: cannot open '%s': %s", key_name, path, strerror(errno));
    char *buf = fx_malloc(PEM_MAX + 1);
    size_t n = fread(buf, 1, PEM_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > PEM_MAX) {
        sodium_memzero(buf, PEM_MAX + 1);
        free(buf);
        return bad ? fx_err_set(err, FX_EIO, "%s: cannot read '%s'", key_name, path)
                   : fx_err_set(err, FX_ECONFIG,
                                "%s: '%s' is larger than %d KiB; it is not a PEM key file",
                                key_name, path, PEM_MAX / 1024);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Refuse a key that does not fit alg; fill sig_len. */
static int check_key(struct fx__pkey *k, const char *path, const char *key_name, struct fx_err *err)
{
    int type = C.EVP_PKEY_get_base_id(k->pkey);
    if (k->alg == FX__JWT_RS256) {
        if (type != EVP_PKEY_RSA)
            return fx_err_set(err, FX_ECONFIG, "%s: '%s' is not an RSA key, which RS256 needs",
                              key_name, path);
        int bits = C.EVP_PKEY_get_bits(k->pkey);
        if (bits < 2048)
            return fx_err_set(err, FX_ECONFIG,
                              "%s: '%s' is a %d-bit RSA key; RS256 needs 2048 bits or more "
                              "(RFC 7518)",
                              key_name, path, bits);
        k->sig_len = (size_t)C.EVP_PKEY_get_size(k->pkey);
        if (k->sig_len > FX__SIG_MAX)
            return fx_err_set(err, FX_ECONFIG, "%s: '%s': RSA keys above %d bits are not supported",
                              key_name, path, FX__SIG_MAX * 8);
        return 0;
    }
    char group[64] = "";
    size_t glen = 0;
    if (type != EVP_PKEY_EC ||
        C.EVP_PKEY_get_group_name(k->pkey, group, sizeof(group), &glen) != 1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        C.ERR_clear_error();
        return fx_err_set(err, FX_ECONFIG,
                          "%s: '%s' is not an EC key on curve P-256 (prime256v1), which ES256 "
                          "needs%s%s",
                          key_name, path, group[0] ? "; its curve is " : "", group);
    }
    k->sig_len = 64;
    return 0;
}

int fx__pkey_load(const char *path, const char *key_name, int is_private, enum fx__jwt_alg alg,
                  struct fx__pkey **out, struct fx_err *err)
{
    *out = NULL;
    int rc = crypto_ready(err);
    if (rc)
        return rc;
    char *pem = NULL;
    size_t len = 0;
    rc = read_pem(path, key_name, &pem, &len, err);
    if (rc)
        return rc;
    struct fx__pkey *k = fx_calloc(1, sizeof(*k));
    k->alg = alg;
    if (is_private && strstr(pem, "ENCRYPTED")) {
        rc = fx_err_set(err, FX_ECONFIG,
                        "%s: '%s' is an encrypted private key; give an unencrypted one (protect "
                        "it with file permissions, e.g. mode 0600)",
                        key_name, path);
        goto out;
    }
    BIO *bio = C.BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = fx_err_set(err, FX_ENOMEM, "%s: OpenSSL could not allocate", key_name);
        goto out;
    }
    k->pkey = is_private ? C.PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                         : C.PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    C.BIO_free(bio);
    if (!k->pkey) {
        char why[256];
        rc = fx_err_set(err, FX_ECONFIG, "%s: '%s' is not a PEM %s key (%s)%s", key_name, path,
                        is_private ? "private" : "public", crypto_reason(why, sizeof(why)),
                        is_private ? ""
                                   : "; a public key file starts with -----BEGIN PUBLIC KEY-----");
        goto out;
    }
    rc = check_key(k, path, key_name, err);
out:
    sodium_memzero(pem, len);
    free(pem);
    if (rc) {
        fx__pkey_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void fx__pkey_free(struct fx__pkey *k)
{
    if (!k)
        return;
    if (k->pkey)
        C.EVP_PKEY_free(k->pkey);
    free(k);
}

/* DER ECDSA signature -> JOSE R||S, each left-padded to 32 bytes. */
static int der_to_jose(const unsigned char *der, size_t len, unsigned char out[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *s = C.d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!s)
        return -1;
    const BIGNUM *r = NULL, *sv = NULL;
    C.ECDSA_SIG_get0(s, &r, &sv);
    int ok = C.BN_bn2binpad(r, out, 32) == 32 && C.BN_bn2binpad(sv, out + 32, 32) == 32;
    C.ECDSA_SIG_free(s);
    return ok ? 0 : -1;
}

/* JOSE R||S -> DER; returns the DER length or -1. */
static int jose_to_der(const unsigned char in[64], unsigned char *der, size_t cap)
{
    ECDSA_SIG *s = C.ECDSA_SIG_new();
    BIGNUM *r = C.BN_bin2bn(in, 32, NULL);
    BIGNUM *sv = C.BN_bin2bn(in + 32, 32, NULL);
    int n = -1;
    if (!s || !r || !sv || C.ECDSA_SIG_set0(s, r, sv) != 1) {
        C.BN_free(r);
        C.BN_free(sv);
        goto out;
    }
    n = C.i2d_ECDSA_SIG(s, NULL);
    if (n <= 0 || (size_t)n > cap) {
        n = -1;
        goto out;
    }
    unsigned char *p = der;
    n = C.i2d_ECDSA_SIG(s, &p);
out:
    if (s)
        C.ECDSA_SIG_free(s);
    return n;
}

int fx__pkey_sign(const struct fx__pkey *k, const void *data, size_t len,
                  unsigned char sig[FX__SIG_MAX], size_t *siglen, struct fx_err *err)
{
    unsigned char der[FX__SIG_MAX + 16];
    size_t n = sizeof(der);
    int rc = 0;
    EVP_MD_CTX *ctx = C.EVP_MD_CTX_new();
    if (!ctx || C.EVP_DigestSignInit(ctx, NULL, C.sha256, NULL, k->pkey) != 1 ||
        C.EVP_DigestSign(ctx, der, &n, data, len) != 1) {
        char why[256];
        rc = fx_err_set(err, FX_EIO, "signing the token failed: %s",
                        crypto_reason(why, sizeof(why)));
        goto out;
    }
    if (k->alg == FX__JWT_ES256) {
        if (der_to_jose(der, n, sig) != 0) {
            rc = fx_err_set(err, FX_EIO, "signing the token failed: malformed ECDSA signature");
            goto out;
        }
        *siglen = 64;
    } else {
        memcpy(sig, der, n);
        *siglen = n;
    }
out:
    C.EVP_MD_CTX_free(ctx);
    return rc;
}

int fx__pkey_verify(const struct fx__pkey *k, const void *data, size_t len,
                    const unsigned char *sig, size_t siglen)
{
    if (siglen != k->sig_len)
        return 0;
    unsigned char der[80]; /* a P-256 DER signature is at most 72 bytes */
    const unsigned char *s = sig;
    size_t n = siglen;
    if (k->alg == FX__JWT_ES256) {
        int dn = jose_to_der(sig, der, sizeof(der));
        if (dn < 0) {
            C.ERR_clear_error();
            return 0;
        }
        s = der;
        n = (size_t)dn;
    }
    EVP_MD_CTX *ctx = C.EVP_MD_CTX_new();
    int ok = ctx && C.EVP_DigestVerifyInit(ctx, NULL, C.sha256, NULL, k->pkey) == 1 &&
             C.EVP_DigestVerify(ctx, s, n, data, len) == 1;
    C.EVP_MD_CTX_free(ctx);
    if (!ok)
        C.ERR_clear_error();
    return ok;
}
