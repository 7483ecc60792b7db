/* SPDX-License-Identifier: MIT */
/*
 * Auth module tests, all against the real thing: tokens issued and verified
 * with HS256, RS256 and ES256 (keys generated at start-up with the openssl
 * command), cross-checked with libjwt as an independent implementation in
 * both directions; the attacks a verifier must refuse (alg none, HS/RS key
 * confusion, tampering, expiry, wrong issuer or audience); accounts and
 * grants on a real SQLite store in a temporary directory; the development
 * secret; and the verified-token cache, whose hits must still expire.
 */
#include "fluxo/auth.h"
#include "fluxo/config.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/store.h"
#include "fluxo/util.h"

#include "testutil.h"

#include <jwt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

/* Key files made once for the whole run (group setup). */
static char *keydir;
static char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub, *ec2_pub;

/* ---- helpers ---------------------------------------------------------------- */

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay);
}

static int64_t now_s(void)
{
    return fx_now_ms() / 1000;
}

struct fix {
    char *dir;
    struct fx_config *cfg;
    struct fx_auth *a;
};

/* A config read from an empty YAML and .env in a fresh directory, data_dir there. */
static void fix_init(struct fix *f)
{
    memset(f, 0, sizeof(*f));
    f->dir = tu_tmpdir();
    assert_non_null(f->dir);
    char *yaml = tu_write_file(f->dir, "fluxo.yaml", "", 0);
    char *env = tu_write_file(f->dir, "test.env", "", 0);
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_config_load(yaml, env, &f->cfg, &err) != 0)
        fail_msg("fx_config_load: %s", err.reason);
    free(yaml);
    free(env);
    assert_int_equal(fx_config_set(f->cfg, "data_dir", f->dir, &err), 0);
}

static void set(struct fix *f, const char *key, const char *value)
{
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_config_set(f->cfg, key, value, &err) != 0)
        fail_msg("fx_config_set %s=%s: %s", key, value, err.reason);
}

static void fix_open(struct fix *f)
{
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_auth_open(f->cfg, NULL, NULL, &f->a, &err);
    if (rc != 0)
        fail_msg("fx_auth_open: %s: %s", fx_errname(rc), err.reason);
}

/* HS256 with SECRET, the defaults otherwise. */
static void fix_hs256(struct fix *f)
{
    fix_init(f);
    set(f, "secret", SECRET);
    fix_open(f);
}

static void fix_cleanup(struct fix *f)
{
    fx_auth_close(f->a);
    fx_config_free(f->cfg);
    tu_rmrf(f->dir);
    free(f->dir);
}

static int verify(struct fix *f, const char *tok, struct fx_principal *p, struct fx_err *err)
{
    fx_err_clear(err);
    return fx_auth_verify(f->a, tok, strlen(tok), p, err);
}

static void verify_ok(struct fix *f, const char *tok, struct fx_principal *p)
{
    struct fx_err err;
    int rc = verify(f, tok, p, &err);
    if (rc != 0)
        fail_msg("verify refused: %s: %s", err.field, err.reason);
}

/* Refused with FX_EAUTH, err->field == field and reason containing needle. */
static void verify_refused(struct fix *f, const char *tok, size_t len, const char *field,
                           const char *needle)
{
    struct fx_principal p;
    struct fx_err err;
    fx_err_clear(&err);
    memset(&p, 0x5a, sizeof(p));
    int rc = fx_auth_verify(f->a, tok, len, &p, &err);
    if (rc != FX_EAUTH)
        fail_msg("expected refusal (%s) but got %s", needle, fx_errname(rc));
    assert_int_equal(err.code, FX_EAUTH);
    if (strcmp(err.field, field) != 0)
        fail_msg("expected field '%s', got '%s' (%s)", field, err.field, err.reason);
    assert_contains(err.reason, needle);
    assert_string_equal(p.sub, "");
    assert_int_equal(p.scopes, 0);
}

static char *issue(struct fix *f, const char *sub, unsigned scopes, int64_t ttl)
{
    char *tok = NULL;
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_auth_issue(f->a, sub, scopes, ttl, &tok, &err);
    if (rc != 0)
        fail_msg("fx_auth_issue: %s: %s", fx_errname(rc), err.reason);
    return tok;
}

static char *b64(const void *data, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = fx_malloc(cap);
    sodium_bin2base64(out, cap, data, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* header.payload.sig from raw JSON texts (no signing at all). */
static char *hand_token(const char *header, const char *payload, const char *sig)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
    char *t = fx_asprintf("%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return t;
}

/* A token minted by libjwt: header {"alg":...,"typ":"JWT"}, claims as given. */
static char *libjwt_mint(jwt_alg_t alg, const void *key, size_t keylen, const char *claims)
{
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims), 0);
    assert_int_equal(jwt_set_alg(j, alg, key, (int)keylen), 0);
    char *t = jwt_encode_str(j);
    assert_non_null(t);
    jwt_free(j);
    return t;
}

static char *claims_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *claims_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return fx_buf_take(&b);
}

/* HS256 token with SECRET and the given claims, minted by libjwt. */
static char *hs(const char *claims)
{
    return libjwt_mint(JWT_ALG_HS256, SECRET, strlen(SECRET), claims);
}

/* An HS256 token signed here with libsodium: for claims libjwt will not carry
 * (it refuses \u0000 in JSON) or a header it would not write. */
static char *hs_raw(const char *header, const char *claims)
{
    char *h = b64(header, strlen(header)), *pl = b64(claims, strlen(claims));
    char *in = fx_asprintf("%s.%s", h, pl);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)in, strlen(in));
    crypto_auth_hmacsha256_final(&st, mac);
    char *sig = b64(mac, sizeof(mac));
    char *t = fx_asprintf("%s.%s", in, sig);
    free(h);
    free(pl);
    free(in);
    free(sig);
    return t;
}

/* ---- key files -------------------------------------------------------------- */

static int run(const char *cmd)
{
    char *full = fx_asprintf("%s >/dev/null 2>&1", cmd);
    int rc = system(full);
    free(full);
    return rc;
}

static int make_keys(void **state)
{
    (void)state;
    keydir = tu_tmpdir();
    if (!keydir)
        return -1;
    rsa_priv = fx_asprintf("%s/rsa.pem", keydir);
    rsa_pub = fx_asprintf("%s/rsa.pub", keydir);
    ec_priv = fx_asprintf("%s/ec.pem", keydir);
    ec_pub = fx_asprintf("%s/ec.pub", keydir);
    ec2_pub = fx_asprintf("%s/ec2.pub", keydir);
    char *ec2_priv = fx_asprintf("%s/ec2.pem", keydir);
    char *cmds[] = {
        fx_asprintf("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s'",
                    rsa_priv),
        fx_asprintf("openssl pkey -in '%s' -pubout -out '%s'", rsa_priv, rsa_pub),
        fx_asprintf("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s'",
                    ec_priv),
        fx_asprintf("openssl pkey -in '%s' -pubout -out '%s'", ec_priv, ec_pub),
        fx_asprintf("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s'",
                    ec2_priv),
        fx_asprintf("openssl pkey -in '%s' -pubout -out '%s'", ec2_priv, ec2_pub),
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (rc == 0 && run(cmds[i]) != 0) {
            /* not a skip: without keys the RS256/ES256 tests cannot run */
            fprintf(stderr, "test_auth: key generation failed: %s\n", cmds[i]);
            rc = -1;
        }
        free(cmds[i]);
    }
    free(ec2_priv);
    return rc;
}

static int drop_keys(void **state)
{
    (void)state;
    tu_rmrf(keydir);
    free(keydir);
    free(rsa_priv);
    free(rsa_pub);
    free(ec_priv);
    free(ec_pub);
    free(ec2_pub);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    char *s = tu_read_file(path, len);
    assert_non_null(s);
    return s;
}

/* ---- scopes ----------------------------------------------------------------- */

static void test_scopes(void **state)
{
    (void)state;
    unsigned s = 99;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_scopes_parse("ingest:write read", &s, &err), 0);
    assert_int_equal(s, FX_SCOPE_INGEST_WRITE | FX_SCOPE_READ);
    assert_int_equal(fx_scopes_parse("  admin\tread read ", &s, &err), 0);
    assert_int_equal(s, FX_SCOPE_ADMIN | FX_SCOPE_READ);
    assert_int_equal(fx_scopes_parse("", &s, &err), 0);
    assert_int_equal(s, 0);
    assert_int_equal(fx_scopes_parse(NULL, &s, &err), 0);
    assert_int_equal(s, 0);
    assert_int_equal(fx_scopes_parse("read bogus admin", &s, &err), FX_EINVAL);
    assert_int_equal(s, 0);
    assert_string_equal(err.value, "bogus");
    assert_contains(err.reason, "'bogus'");
    assert_int_equal(fx_scopes_parse("Read", &s, &err), FX_EINVAL);
    assert_int_equal(fx_scopes_parse("read,admin", &s, &err), FX_EINVAL);

    char out[FX_SCOPES_TEXT_MAX];
    fx_scopes_format(FX_SCOPES_ALL, out, sizeof(out));
    assert_string_equal(out, "ingest:write read admin");
    fx_scopes_format(0, out, sizeof(out));
    assert_string_equal(out, "");
    fx_scopes_format(FX_SCOPE_ADMIN | FX_SCOPE_READ | 0x100, out, sizeof(out));
    assert_string_equal(out, "read admin");
    fx_scopes_format(FX_SCOPES_ALL, out, 16); /* room for the first name only */
    assert_string_equal(out, "ingest:write");
    fx_scopes_format(FX_SCOPES_ALL, out, 5);
    assert_string_equal(out, "");
    /* round trip of every set */
    for (unsigned v = 0; v <= FX_SCOPES_ALL; v++) {
        fx_scopes_format(v, out, sizeof(out));
        assert_int_equal(fx_scopes_parse(out, &s, &err), 0);
        assert_int_equal(s, v);
    }
}

/* ---- issue and verify ------------------------------------------------------- */

static void test_hs256_round_trip(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    assert_string_equal(fx_auth_alg(f.a), "HS256");
    int64_t t0 = now_s();
    char *tok = issue(&f, "alice", FX_SCOPE_INGEST_WRITE | FX_SCOPE_READ, 0);
    struct fx_principal p;
    verify_ok(&f, tok, &p);
    assert_string_equal(p.sub, "alice");
    assert_int_equal(p.scopes, FX_SCOPE_INGEST_WRITE | FX_SCOPE_READ);
    assert_true(p.exp >= t0 + 3600 && p.exp <= now_s() + 3600);
    assert_int_equal(strlen(p.jti), 36);

    /* libjwt, independently, accepts our token and reads our claims */
    jwt_t *j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    assert_string_equal(jwt_get_grant(j, "sub"), "alice");
    assert_string_equal(jwt_get_grant(j, "iss"), "fluxo");
    assert_string_equal(jwt_get_grant(j, "aud"), "fluxo-api");
    assert_string_equal(jwt_get_grant(j, "scope"), "ingest:write read");
    assert_string_equal(jwt_get_grant(j, "jti"), p.jti);
    assert_int_equal(jwt_get_grant_int(j, "exp"), p.exp);
    assert_int_equal(jwt_get_grant_int(j, "nbf"), jwt_get_grant_int(j, "iat"));
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);

    /* and we accept libjwt's, ignoring scope names we do not know */
    char *c = claims_fmt("{\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"svc\",\"exp\":%lld,"
                         "\"scope\":\"read future:scope admin\"}",
                         (long long)now_s() + 60);
    char *other = hs(c);
    verify_ok(&f, other, &p);
    assert_string_equal(p.sub, "svc");
    assert_int_equal(p.scopes, FX_SCOPE_READ | FX_SCOPE_ADMIN);
    assert_string_equal(p.jti, "");

    /* an explicit lifetime */
    char *shortlived = issue(&f, "bob", 0, 120);
    verify_ok(&f, shortlived, &p);
    assert_true(p.exp <= now_s() + 120 && p.exp >= t0 + 120);
    assert_int_equal(p.scopes, 0);

    /* bad arguments */
    char *none = NULL;
    struct fx_err err;
    assert_int_equal(fx_auth_issue(f.a, "bad name", 0, 0, &none, &err), FX_EINVAL);
    assert_int_equal(fx_auth_issue(f.a, "", 0, 0, &none, &err), FX_EINVAL);
    assert_int_equal(fx_auth_issue(f.a, "x", 0x10, 0, &none, &err), FX_EINVAL);
    assert_int_equal(fx_auth_issue(f.a, "x", 0, 31LL * 24 * 3600, &none, &err), FX_EINVAL);
    assert_null(none);
    free(tok);
    free(c);
    free(other);
    free(shortlived);
    fix_cleanup(&f);
}

static void asym_round_trip(const char *alg, jwt_alg_t jalg, const char *priv, const char *pub)
{
    struct fix f;
    fix_init(&f);
    set(&f, "auth.alg", alg);
    set(&f, "auth.private_key", priv);
    set(&f, "auth.public_key", pub);
    fix_open(&f);
    assert_string_equal(fx_auth_alg(f.a), alg);
    char *tok = issue(&f, "carol", FX_SCOPE_READ, 0);
    struct fx_principal p;
    verify_ok(&f, tok, &p);
    assert_string_equal(p.sub, "carol");
    assert_int_equal(p.scopes, FX_SCOPE_READ);

    /* libjwt verifies our signature (JOSE form, not DER, for ES256) */
    size_t publen = 0, privlen = 0;
    char *pubpem = slurp(pub, &publen), *privpem = slurp(priv, &privlen);
    jwt_t *j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)pubpem, (int)publen), 0);
    assert_string_equal(jwt_get_grant(j, "sub"), "carol");
    assert_int_equal(jwt_get_alg(j), jalg);
    jwt_free(j);

    /* and a libjwt-signed token verifies here */
    char *c = claims_fmt("{\"iss\":\"fluxo\",\"aud\":[\"other\",\"fluxo-api\"],\"sub\":\"dave\","
                         "\"exp\":%lld,\"scope\":\"ingest:write\"}",
                         (long long)now_s() + 60);
    char *theirs = libjwt_mint(jalg, privpem, privlen, c);
    verify_ok(&f, theirs, &p);
    assert_string_equal(p.sub, "dave");
    assert_int_equal(p.scopes, FX_SCOPE_INGEST_WRITE);

    /* a verify-only server (public key alone) accepts it but cannot issue */
    struct fix v;
    fix_init(&v);
    set(&v, "auth.alg", alg);
    set(&v, "auth.public_key", pub);
    fix_open(&v);
    verify_ok(&v, tok, &p);
    char *none = NULL;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_auth_issue(v.a, "x", 0, 0, &none, &err), FX_ECONFIG);
    assert_contains(err.reason, "auth.private_key");
    assert_null(none);

    /* tampering with an asymmetric signature */
    char *bad = fx_strdup(tok);
    char *sig = strrchr(bad, '.') + 1;
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    verify_refused(&v, bad, strlen(bad), "signature", "does not match");

    free(bad);
    free(tok);
    free(c);
    free(theirs);
    free(pubpem);
    free(privpem);
    fix_cleanup(&v);
    fix_cleanup(&f);
}

static void test_rs256(void **state)
{
    (void)state;
    asym_round_trip("RS256", JWT_ALG_RS256, rsa_priv, rsa_pub);
}

static void test_es256(void **state)
{
    (void)state;
    asym_round_trip("ES256", JWT_ALG_ES256, ec_priv, ec_pub);
}

static void open_refused(struct fix *f, int code, const char *needle)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_auth *a = (struct fx_auth *)0x1;
    int rc = fx_auth_open(f->cfg, NULL, NULL, &a, &err);
    if (rc != code)
        fail_msg("fx_auth_open: expected %s, got %s (%s)", fx_errname(code), fx_errname(rc),
                 err.reason);
    assert_null(a);
    assert_contains(err.reason, needle);
}

static void test_key_config_errors(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    set(&f, "auth.alg", "ES256");
    open_refused(&f, FX_ECONFIG, "auth.public_key is not set");
    set(&f, "auth.public_key", rsa_pub);
    open_refused(&f, FX_ECONFIG, "P-256");
    set(&f, "auth.public_key", "/nonexistent/key.pub");
    open_refused(&f, FX_EIO, "/nonexistent/key.pub");
    set(&f, "auth.public_key", ec_priv); /* a private key where the public one goes */
    open_refused(&f, FX_ECONFIG, "not a PEM public key");
    set(&f, "auth.public_key", ec2_pub);
    set(&f, "auth.private_key", ec_priv);
    open_refused(&f, FX_ECONFIG, "does not belong to");
    set(&f, "auth.alg", "RS256");
    set(&f, "auth.public_key", ec_pub);
    set(&f, "auth.private_key", "");
    open_refused(&f, FX_ECONFIG, "not an RSA key");
    /* HS256: a short secret */
    set(&f, "auth.alg", "HS256");
    set(&f, "secret", "too-short");
    open_refused(&f, FX_ECONFIG, "32 or more");
    fix_cleanup(&f);
}

/* ---- attacks and malformed tokens ------------------------------------------- */

static void test_tampered(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    char *tok = issue(&f, "alice", FX_SCOPE_READ, 0);
    struct fx_principal p;
    verify_ok(&f, tok, &p); /* now cached: the copies below must not hit */

    /* payload swapped for one granting admin to mallory, signature kept */
    char *c = claims_fmt("{\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"mallory\",\"exp\":"
                         "%lld,\"scope\":\"admin\"}",
                         (long long)now_s() + 600);
    char *pl = b64(c, strlen(c));
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char *forged = fx_asprintf("%.*s.%s%s", (int)(d1 - tok), tok, pl, d2);
    verify_refused(&f, forged, strlen(forged), "signature", "does not match");

    /* one signature character changed (not the last: its low bits are padding) */
    char *bad = fx_strdup(tok);
    char *sig = strrchr(bad, '.') + 1;
    sig[5] = sig[5] == 'x' ? 'y' : 'x';
    verify_refused(&f, bad, strlen(bad), "signature", "does not match");
    /* signature of the wrong length, and none at all */
    char *trunc = fx_strndup(tok, strlen(tok) - 4);
    verify_refused(&f, trunc, strlen(trunc), "signature", "");
    char *nosig = fx_strndup(tok, (size_t)(strrchr(tok, '.') - tok) + 1);
    verify_refused(&f, nosig, strlen(nosig), "signature", "no signature");
    /* a token one byte longer than a cached one is a different token */
    char *longer = fx_asprintf("%sA", tok);
    verify_refused(&f, longer, strlen(longer), "signature", "");
    /* the original still verifies */
    verify_ok(&f, tok, &p);
    assert_string_equal(p.sub, "alice");

    /* a token signed with another secret */
    char *ec =
        claims_fmt("{\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"alice\",\"exp\":%lld}",
                   (long long)now_s() + 60);
    const char other[] = "another-secret-of-at-least-32-bytes!!";
    char *alien = libjwt_mint(JWT_ALG_HS256, other, strlen(other), ec);
    verify_refused(&f, alien, strlen(alien), "signature", "does not match");

    free(tok);
    free(c);
    free(pl);
    free(forged);
    free(bad);
    free(trunc);
    free(nosig);
    free(longer);
    free(ec);
    free(alien);
    fix_cleanup(&f);
}

static void test_alg_none(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    char *c = claims_fmt("{\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"root\",\"exp\":%lld,"
                         "\"scope\":\"admin\"}",
                         (long long)now_s() + 600);
    const char *headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\",\"typ\":\"JWT\"}",
                             "{\"alg\":\"NONE\"}"};
    for (size_t i = 0; i < 3; i++) {
        char *t = hand_token(headers[i], c, "");
        verify_refused(&f, t, strlen(t), "alg", "unsigned tokens are never accepted");
        free(t);
        /* with some signature attached too */
        t = hand_token(headers[i], c, "c2lnbmF0dXJl");
        verify_refused(&f, t, strlen(t), "alg", "unsigned tokens are never accepted");
        free(t);
    }
    /* other spellings and absent alg */
    char *t = hand_token("{\"typ\":\"JWT\"}", c, "");
    verify_refused(&f, t, strlen(t), "alg", "no \"alg\"");
    free(t);
    t = hand_token("{\"alg\":\"hs256\"}", c, "");
    verify_refused(&f, t, strlen(t), "alg", "accepts only HS256");
    free(t);
    t = hand_token("{\"alg\":null}", c, "");
    verify_refused(&f, t, strlen(t), "alg", "no \"alg\"");
    free(t);
    /* a duplicate "alg" key could be read two ways */
    t = hand_token("{\"alg\":\"HS256\",\"alg\":\"none\"}", c, "");
    verify_refused(&f, t, strlen(t), "header", "not valid JSON");
    free(t);
    /* critical extensions we do not implement */
    t = hand_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", c, "");
    verify_refused(&f, t, strlen(t), "crit", "critical");
    free(t);
    free(c);
    fix_cleanup(&f);
}

static void test_key_confusion(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    set(&f, "auth.alg", "RS256");
    set(&f, "auth.public_key", rsa_pub);
    set(&f, "auth.private_key", rsa_priv);
    fix_open(&f);
    size_t publen = 0;
    char *pubpem = slurp(rsa_pub, &publen);
    char *c = claims_fmt("{\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"root\",\"exp\":%lld,"
                         "\"scope\":\"admin\"}",
                         (long long)now_s() + 600);
    /* HS256 "signed" with the public key PEM, which any client can read */
    char *forged = libjwt_mint(JWT_ALG_HS256, pubpem, publen, c);
    verify_refused(&f, forged, strlen(forged), "alg", "accepts only RS256");

    /* an ES256 token to the RS256 server */
    size_t eclen = 0;
    char *ecpem = slurp(ec_priv, &eclen);
    char *es = libjwt_mint(JWT_ALG_ES256, ecpem, eclen, c);
    verify_refused(&f, es, strlen(es), "alg", "accepts only RS256");

    /* an RS256 token (even correctly signed) to an HS256 server */
    char *rs = issue(&f, "alice", 0, 0);
    struct fix h;
    fix_hs256(&h);
    verify_refused(&h, rs, strlen(rs), "alg", "accepts only HS256");

    free(pubpem);
    free(ecpem);
    free(c);
    free(forged);
    free(es);
    free(rs);
    fix_cleanup(&h);
    fix_cleanup(&f);
}

static void test_time_claims(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f); /* leeway 30 s by default */
    long long now = (long long)now_s();
    const char *base = "\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"alice\"";
    struct fx_principal p;

    char *c = claims_fmt("{%s,\"exp\":%lld}", base, now - 100);
    char *t = hs(c);
    verify_refused(&f, t, strlen(t), "exp", "expired");
    free(c);
    free(t);

    c = claims_fmt("{%s,\"exp\":%lld,\"nbf\":%lld}", base, now + 600, now + 100);
    t = hs(c);
    verify_refused(&f, t, strlen(t), "nbf", "not valid before");
    free(c);
    free(t);

    /* within the leeway both ways */
    c = claims_fmt("{%s,\"exp\":%lld,\"nbf\":%lld}", base, now - 10, now + 10);
    t = hs(c);
    verify_ok(&f, t, &p);
    assert_int_equal(p.exp, now - 10);
    char *inside = t;
    free(c);

    /* missing exp: tokens must expire */
    c = claims_fmt("{%s}", base);
    t = hs(c);
    verify_refused(&f, t, strlen(t), "exp", "must expire");
    free(c);
    free(t);
    /* exp of the wrong type or absurd */
    c = claims_fmt("{%s,\"exp\":\"%lld\"}", base, now + 60);
    t = hs(c);
    verify_refused(&f, t, strlen(t), "exp", "not a number");
    free(c);
    free(t);
    c = claims_fmt("{%s,\"exp\":1e300}", base);
    t = hs(c);
    verify_refused(&f, t, strlen(t), "exp", "out of range");
    free(c);
    free(t);
    c = claims_fmt("{%s,\"exp\":-5}", base);
    t = hs(c);
    verify_refused(&f, t, strlen(t), "exp", "out of range");
    free(c);
    free(t);
    /* a fractional NumericDate is allowed */
    c = claims_fmt("{%s,\"exp\":%lld.5}", base, now + 60);
    t = hs(c);
    verify_ok(&f, t, &p);
    assert_int_equal(p.exp, now + 60);
    free(c);
    free(t);
    fix_cleanup(&f);

    /* leeway 0: the token inside the 30 s leeway above is refused */
    fix_init(&f);
    set(&f, "secret", SECRET);
    set(&f, "auth.leeway", "0");
    fix_open(&f);
    verify_refused(&f, inside, strlen(inside), "exp", "allowed clock skew 0 s");
    free(inside);
    fix_cleanup(&f);
}

static void test_iss_aud_sub(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    long long exp = (long long)now_s() + 600;
    struct fx_principal p;
    struct {
        const char *claims;
        const char *field; /* NULL: accepted */
        const char *needle;
    } cases[] = {
        {"\"iss\":\"evil\",\"aud\":\"fluxo-api\",\"sub\":\"a\"", "iss", "\"evil\" is not"},
        {"\"aud\":\"fluxo-api\",\"sub\":\"a\"", "iss", "no iss"},
        {"\"iss\":\"fluxo\",\"aud\":\"other-api\",\"sub\":\"a\"", "aud", "\"other-api\" is not"},
        {"\"iss\":\"fluxo\",\"sub\":\"a\"", "aud", "no aud"},
        {"\"iss\":\"fluxo\",\"aud\":[\"x\",\"y\"],\"sub\":\"a\"", "aud", "does not include"},
        {"\"iss\":\"fluxo\",\"aud\":[],\"sub\":\"a\"", "aud", "does not include"},
        {"\"iss\":\"fluxo\",\"aud\":[\"x\",\"fluxo-api\"],\"sub\":\"a\"", NULL, NULL},
        {"\"iss\":\"fluxo\",\"aud\":\"fluxo-api\"", "sub", "sub"},
        {"\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"\"", "sub", "sub"},
        {"\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":7", "sub", "sub"},
        /* NUL inside strings could make "a\0b" compare as "a": refused outright */
        {"\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"a\\u0000b\"", "payload",
         "not valid JSON"},
        {"\"iss\":\"fluxo\\u0000x\",\"aud\":\"fluxo-api\",\"sub\":\"a\"", "payload",
         "not valid JSON"},
        {"\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"a\",\"scope\":[\"read\"]", "scope",
         "string"},
        {"\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"a\",\"jti\":5", "jti", "jti"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *c = claims_fmt("{%s,\"exp\":%lld}", cases[i].claims, exp);
        char *t = hs_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c);
        if (cases[i].field)
            verify_refused(&f, t, strlen(t), cases[i].field, cases[i].needle);
        else
            verify_ok(&f, t, &p);
        free(c);
        free(t);
    }
    /* a subject too long for fx_principal */
    char longsub[200];
    memset(longsub, 'x', sizeof(longsub) - 1);
    longsub[sizeof(longsub) - 1] = '\0';
    char *c = claims_fmt("{\"iss\":\"fluxo\",\"aud\":\"fluxo-api\",\"sub\":\"%s\",\"exp\":%lld}",
                         longsub, exp);
    char *t = hs(c);
    verify_refused(&f, t, strlen(t), "sub", "1 to 127 bytes");
    free(c);
    free(t);
    fix_cleanup(&f);
}

static void test_garbage(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    struct fx_principal p;
    struct fx_err err;
    verify_refused(&f, "", 0, "token", "empty");
    verify_refused(&f, "abc", 3, "token", "1 part");
    verify_refused(&f, "abc.def", 7, "token", "2 parts");
    verify_refused(&f, "a.b.c.d", 7, "token", "more than three");
    verify_refused(&f, "..", 2, "header", "empty");
    verify_refused(&f, "eyJ9.", 5, "token", "2 parts");
    verify_refused(&f, "!!!.e30.", 8, "header", "'!'");
    verify_refused(&f, "e30=.e30.", 9, "header", "'='");
    verify_refused(&f, "e30.e30.ab+c", 12, "signature", "'+'");
    verify_refused(&f, "e30.e3 0.", 9, "payload", "byte 7");
    verify_refused(&f, "e30\0.e30.", 9, "header", "0x00");
    /* one base64 character too many cannot decode */
    verify_refused(&f, "e30xx.e30.", 10, "header", "base64url");
    /* non-zero padding bits: "e31" would decode like "e30" if they were ignored */
    verify_refused(&f, "e31.e30.", 8, "header", "base64url");
    char *t = hand_token("hello", "{}", "");
    verify_refused(&f, t, strlen(t), "header", "not valid JSON");
    free(t);
    t = hand_token("[\"alg\",\"HS256\"]", "{}", "");
    verify_refused(&f, t, strlen(t), "header", "not a JSON object");
    free(t);
    t = hand_token("{\"alg\":\"HS256\"", "{}", "");
    verify_refused(&f, t, strlen(t), "header", "not valid JSON");
    free(t);
    /* a valid header and signature over a payload that is not an object, or not JSON */
    t = hs_raw("{\"alg\":\"HS256\"}", "[1,2,3]");
    verify_refused(&f, t, strlen(t), "payload", "not a JSON object");
    free(t);
    t = hs_raw("{\"alg\":\"HS256\"}", "{\"exp\":");
    verify_refused(&f, t, strlen(t), "payload", "not valid JSON");
    free(t);
    /* and a signed header with "crit" */
    t = hs_raw("{\"alg\":\"HS256\",\"crit\":[\"x\"],\"x\":1}", "{}");
    verify_refused(&f, t, strlen(t), "crit", "critical");
    free(t);
    /* oversized */
    size_t big = FX_AUTH_TOKEN_MAX + 1;
    char *huge = fx_malloc(big);
    memset(huge, 'A', big);
    verify_refused(&f, huge, big, "token", "limit");
    free(huge);
    /* NULL arguments */
    fx_err_clear(&err);
    assert_int_equal(fx_auth_verify(f.a, NULL, 3, &p, &err), FX_EINVAL);
    assert_int_equal(fx_auth_verify(f.a, "x", 1, NULL, &err), FX_EINVAL);
    fix_cleanup(&f);
}

/* ---- accounts and grants ---------------------------------------------------- */

static void test_users(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_auth_user_add(f.a, "alice", "correct horse", FX_SCOPE_READ, &err), 0);
    assert_int_equal(fx_auth_user_add(f.a, "alice", "another password", 0, &err), FX_EEXIST);
    assert_contains(err.reason, "'alice' already exists");
    assert_int_equal(fx_auth_user_add(f.a, "bob", "short", 0, &err), FX_EINVAL);
    assert_contains(err.reason, "too short");
    /* eight characters, fewer than eight... bytes is not the rule: characters are */
    assert_int_equal(fx_auth_user_add(f.a, "bob", "çççç", 0, &err), FX_EINVAL);
    assert_int_equal(fx_auth_user_add(f.a, "bob", "çççççççç", 0, &err), 0);
    assert_int_equal(fx_auth_user_add(f.a, "with space", "long enough", 0, &err), FX_EINVAL);
    assert_int_equal(fx_auth_user_add(f.a, "", "long enough", 0, &err), FX_EINVAL);
    assert_int_equal(fx_auth_user_add(f.a, "carol", "long enough", 0x20, &err), FX_EINVAL);
    assert_int_equal(fx_auth_user_add(f.a, "dan.o+x@example.com", "long enough", 0, &err), 0);

    /* password grant */
    char *tok = NULL;
    int64_t expires = 0;
    unsigned granted = 0;
    assert_int_equal(
        fx_auth_password_grant(f.a, "alice", "correct horse", 0, &tok, &expires, &granted, &err),
        0);
    assert_int_equal(expires, 3600);
    assert_int_equal(granted, FX_SCOPE_READ);
    struct fx_principal p;
    verify_ok(&f, tok, &p);
    assert_string_equal(p.sub, "alice");
    assert_int_equal(p.scopes, FX_SCOPE_READ);
    free(tok);
    tok = NULL;

    /* wrong password and unknown user: one reason, nothing issued */
    struct fx_err e1, e2, e3;
    fx_err_clear(&e1);
    fx_err_clear(&e2);
    fx_err_clear(&e3);
    assert_int_equal(fx_auth_password_grant(f.a, "alice", "wrong horse", 0, &tok, NULL, NULL, &e1),
                     FX_EAUTH);
    assert_null(tok);
    assert_int_equal(
        fx_auth_password_grant(f.a, "nobody", "correct horse", 0, &tok, NULL, NULL, &e2), FX_EAUTH);
    assert_null(tok);
    assert_int_equal(fx_auth_password_grant(f.a, "no one!", "x", 0, &tok, NULL, NULL, &e3),
                     FX_EAUTH);
    assert_string_equal(e1.reason, "invalid username or password");
    assert_int_equal(memcmp(&e1, &e2, sizeof(e1)), 0);
    assert_int_equal(memcmp(&e1, &e3, sizeof(e1)), 0);

    /* scopes beyond the account's */
    fx_err_clear(&err);
    assert_int_equal(fx_auth_password_grant(f.a, "alice", "correct horse", FX_SCOPE_ADMIN, &tok,
                                            NULL, NULL, &err),
                     FX_EAUTH);
    assert_null(tok);
    assert_string_equal(err.field, "scope");
    assert_contains(err.reason, "'admin' is not granted");
    /* fewer than the account's */
    assert_int_equal(fx_auth_user_add(f.a, "erin", "long enough", FX_SCOPES_ALL, &err), 0);
    assert_int_equal(fx_auth_password_grant(f.a, "erin", "long enough", FX_SCOPE_INGEST_WRITE, &tok,
                                            NULL, &granted, &err),
                     0);
    assert_int_equal(granted, FX_SCOPE_INGEST_WRITE);
    verify_ok(&f, tok, &p);
    assert_int_equal(p.scopes, FX_SCOPE_INGEST_WRITE);
    free(tok);
    tok = NULL;

    /* a disabled account (there is no API for it yet: set it in the store) */
    char *url = fx_asprintf("sqlite:%s", f.dir);
    struct fx_store *db = NULL;
    assert_int_equal(fx_store_open(url, "auth", &db, &err), 0);
    assert_int_equal(fx_store_exec(db, "UPDATE users SET disabled = 1 WHERE name = 'erin'", &err),
                     0);
    fx_store_close(db);
    free(url);
    fx_err_clear(&err);
    assert_int_equal(fx_auth_password_grant(f.a, "erin", "long enough", 0, &tok, NULL, NULL, &err),
                     FX_EAUTH);
    assert_contains(err.reason, "disabled");
    assert_null(tok);
    fix_cleanup(&f);
}

static void test_clients(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    struct fx_err err;
    fx_err_clear(&err);
    char *secret = NULL;
    assert_int_equal(fx_auth_client_add(f.a, "etl-1", NULL, FX_SCOPE_INGEST_WRITE, &secret, &err),
                     0);
    assert_non_null(secret);
    assert_int_equal(strlen(secret), 43);
    for (const char *c = secret; *c; c++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c));
    char *again = NULL;
    assert_int_equal(fx_auth_client_add(f.a, "etl-1", NULL, 0, &again, &err), FX_EEXIST);
    assert_null(again);
    assert_int_equal(fx_auth_client_add(f.a, "etl-2", "short", 0, NULL, &err), FX_EINVAL);
    assert_int_equal(fx_auth_client_add(f.a, "etl-2", NULL, 0, NULL, &err), FX_EINVAL);
    assert_int_equal(fx_auth_client_add(f.a, "etl-2", "a chosen secret, long enough", FX_SCOPE_READ,
                                        &again, &err),
                     0);
    assert_null(again);

    char *tok = NULL;
    int64_t expires = 0;
    unsigned granted = 0;
    assert_int_equal(fx_auth_client_grant(f.a, "etl-1", secret, 0, &tok, &expires, &granted, &err),
                     0);
    assert_int_equal(granted, FX_SCOPE_INGEST_WRITE);
    struct fx_principal p;
    verify_ok(&f, tok, &p);
    assert_string_equal(p.sub, "etl-1");
    assert_int_equal(p.scopes, FX_SCOPE_INGEST_WRITE);
    free(tok);
    tok = NULL;
    assert_int_equal(fx_auth_client_grant(f.a, "etl-2", "a chosen secret, long enough",
                                          FX_SCOPE_READ, &tok, NULL, NULL, &err),
                     0);
    free(tok);
    tok = NULL;

    struct fx_err e1, e2;
    fx_err_clear(&e1);
    fx_err_clear(&e2);
    secret[0] = secret[0] == 'A' ? 'B' : 'A';
    assert_int_equal(fx_auth_client_grant(f.a, "etl-1", secret, 0, &tok, NULL, NULL, &e1),
                     FX_EAUTH);
    assert_int_equal(fx_auth_client_grant(f.a, "etl-9", secret, 0, &tok, NULL, NULL, &e2),
                     FX_EAUTH);
    assert_null(tok);
    assert_string_equal(e1.reason, "invalid client id or secret");
    assert_int_equal(memcmp(&e1, &e2, sizeof(e1)), 0);
    /* a client is not a user */
    assert_int_equal(fx_auth_password_grant(f.a, "etl-2", "a chosen secret, long enough", 0, &tok,
                                            NULL, NULL, &e1),
                     FX_EAUTH);
    /* scope beyond the client's */
    fx_err_clear(&err);
    assert_int_equal(fx_auth_client_grant(f.a, "etl-2", "a chosen secret, long enough",
                                          FX_SCOPE_READ | FX_SCOPE_INGEST_WRITE, &tok, NULL, NULL,
                                          &err),
                     FX_EAUTH);
    assert_string_equal(err.field, "scope");
    assert_contains(err.reason, "'ingest:write' is not granted to client 'etl-2'");
    free(secret);
    fix_cleanup(&f);
}

/* ---- secrets ---------------------------------------------------------------- */

static void test_dev_secret(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    set(&f, "auth.dev", "true");
    fix_open(&f);
    char *path = fx_asprintf("%s/jwt.secret", f.dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t len = 0;
    char *first = slurp(path, &len);
    assert_int_equal(len, 65);
    for (size_t i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", first[i]));
    char *tok = issue(&f, "alice", FX_SCOPE_READ, 0);
    fx_auth_close(f.a);
    f.a = NULL;

    /* reopened: same secret, the old token still verifies */
    fix_open(&f);
    struct fx_principal p;
    verify_ok(&f, tok, &p);
    char *second = slurp(path, NULL);
    assert_string_equal(first, second);

    /* a configured secret wins over the file: the dev token no longer verifies */
    fx_auth_close(f.a);
    f.a = NULL;
    set(&f, "secret", SECRET);
    fix_open(&f);
    verify_refused(&f, tok, strlen(tok), "signature", "does not match");
    free(path);
    free(first);
    free(second);
    free(tok);
    fix_cleanup(&f);
}

static void test_no_secret(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    open_refused(&f, FX_ECONFIG, "FLUXO_SECRET");
    open_refused(&f, FX_ECONFIG, "auth.dev");
    char *path = fx_asprintf("%s/jwt.secret", f.dir);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing generated without auth.dev */
    free(path);
    fix_cleanup(&f);
}

/* ---- the token cache -------------------------------------------------------- */

static void test_cache_hit_expires(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    set(&f, "secret", SECRET);
    set(&f, "auth.leeway", "0");
    fix_open(&f);
    /* start just after a second boundary so the 1 s token is not born expired */
    int64_t deadline = fx_mono_ms() + 3000;
    while (fx_now_ms() % 1000 > 200 && fx_mono_ms() < deadline)
        fx_sleep_ms(10);
    char *tok = issue(&f, "alice", FX_SCOPE_READ, 1);
    struct fx_principal p;
    struct fx_auth_stats s0, s1, s2;
    verify_ok(&f, tok, &p); /* miss: full check, then cached */
    fx_auth_stats(f.a, &s0);
    assert_int_equal(s0.cache_entries, 1);
    verify_ok(&f, tok, &p); /* hit */
    fx_auth_stats(f.a, &s1);
    assert_int_equal(s1.cache_hits, s0.cache_hits + 1);
    assert_int_equal(s1.cache_misses, s0.cache_misses);
    assert_string_equal(p.sub, "alice");

    /* keep presenting it: a hit must start failing once exp passes */
    struct fx_err err;
    int rc = 0;
    deadline = fx_mono_ms() + 5000;
    while ((rc = verify(&f, tok, &p, &err)) == 0 && fx_mono_ms() < deadline)
        fx_sleep_ms(20);
    assert_int_equal(rc, FX_EAUTH);
    assert_string_equal(err.field, "exp");
    assert_contains(err.reason, "expired");
    assert_string_equal(p.sub, "");
    fx_auth_stats(f.a, &s2);
    assert_true(s2.cache_hits > s1.cache_hits);
    assert_int_equal(s2.cache_misses, s1.cache_misses); /* refused from the cache entry */
    assert_int_equal(s2.cache_entries, 0);              /* and the entry dropped */
    /* presented again: a full check, refused the same way */
    verify_refused(&f, tok, strlen(tok), "exp", "expired");
    free(tok);
    fix_cleanup(&f);
}

struct worker {
    struct fix *f;
    char **toks;
    size_t ntoks;
    int failures;
};

static void *verify_loop(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 3000; i++) {
        size_t k = (size_t)i % w->ntoks;
        struct fx_principal p;
        struct fx_err err;
        int rc = fx_auth_verify(w->f->a, w->toks[k], strlen(w->toks[k]), &p, &err);
        char want[16];
        snprintf(want, sizeof(want), "u%zu", k);
        if (rc != 0 || strcmp(p.sub, want) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent_verify(void **state)
{
    (void)state;
    struct fix f;
    fix_hs256(&f);
    /* more tokens than one cache set holds, so threads evict each other's */
    enum { NTOK = 40, NTHREADS = 4 };
    char *toks[NTOK];
    for (size_t i = 0; i < NTOK; i++) {
        char sub[16];
        snprintf(sub, sizeof(sub), "u%zu", i);
        toks[i] = issue(&f, sub, FX_SCOPE_READ, 0);
    }
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){&f, toks, NTOK, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_loop, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    struct fx_auth_stats s;
    fx_auth_stats(f.a, &s);
    assert_int_equal(s.cache_hits + s.cache_misses, NTHREADS * 3000);
    assert_true(s.cache_hits > s.cache_misses);
    for (size_t i = 0; i < NTOK; i++)
        free(toks[i]);
    fix_cleanup(&f);
}

int main(void)
{
    /* the environment must not configure the auth under test */
    static const char *const vars[] = {"FLUXO_SECRET",           "FLUXO_AUTH_ALG",
                                       "FLUXO_AUTH_PRIVATE_KEY", "FLUXO_AUTH_PUBLIC_KEY",
                                       "FLUXO_AUTH_ISSUER",      "FLUXO_AUTH_AUDIENCE",
                                       "FLUXO_AUTH_TOKEN_TTL",   "FLUXO_AUTH_LEEWAY",
                                       "FLUXO_AUTH_DEV",         "FLUXO_DB",
                                       "FLUXO_DATA_DIR"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    setenv("FLUXO_AUTH_FAST_HASH", "1", 1);
    fx_log_set_level(FX_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_hs256_round_trip),
        cmocka_unit_test(test_rs256),
        cmocka_unit_test(test_es256),
        cmocka_unit_test(test_key_config_errors),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_key_confusion),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_iss_aud_sub),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_clients),
        cmocka_unit_test(test_dev_secret),
        cmocka_unit_test(test_no_secret),
        cmocka_unit_test(test_cache_hit_expires),
        cmocka_unit_test(test_concurrent_verify),
    };
    return cmocka_run_group_tests(tests, make_keys, drop_keys);
}
