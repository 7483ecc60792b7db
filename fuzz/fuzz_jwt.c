/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: bearer token verification. Each input is tried four ways
 * against one HS256-configured handle (opened once): as a whole token given
 * to fx_auth_verify; as a JOSE header and as a claims set given straight to
 * the JSON checks; and as a claims set wrapped in a correctly signed token,
 * so that the checks after the signature (and the token cache) see fuzzed
 * claims too, which a fuzzer could never reach by guessing an HMAC. It is also
 * decoded as base64url by our decoder and by libsodium's, which must agree.
 */
#include "auth/auth_int.h"

#include "fluxo/auth.h"
#include "fluxo/config.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_SECRET "fuzz-secret-0123456789abcdef0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fx_auth *auth;
static struct fx_config *cfg;
static char dir[64];

static void remove_dir(void)
{
    static const char *const files[] = {"auth.db", "auth.db-wal", "auth.db-shm", "fluxo.yaml",
                                        "fuzz.env"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = fx_asprintf("%s/%s", dir, files[i]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
}

static void cleanup(void)
{
    fx_auth_close(auth);
    fx_config_free(cfg);
}

static char *empty_file(const char *name)
{
    char *p = fx_asprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f)
        fclose(f);
    return p;
}

static void setup(void)
{
    fx_log_set_level(FX_LOG_OFF);
    snprintf(dir, sizeof(dir), "/tmp/fluxo-fuzz-jwt-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    char *yaml = empty_file("fluxo.yaml"), *env = empty_file("fuzz.env");
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_config_load(yaml, env, &cfg, &err) != 0 ||
        fx_config_set(cfg, "secret", FUZZ_SECRET, &err) != 0 ||
        fx_config_set(cfg, "auth.alg", "HS256", &err) != 0 ||
        fx_auth_open(cfg, NULL, dir, &auth, &err) != 0) {
        fprintf(stderr, "fuzz_jwt: setup failed: %s\n", err.reason);
        abort();
    }
    free(yaml);
    free(env);
    /* verification never touches the store: remove the directory now, as
     * libFuzzer may end the process without running atexit handlers */
    remove_dir();
    atexit(cleanup);
}

static void append_b64(struct fx_buf *b, const void *data, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *tmp = fx_malloc(cap);
    sodium_bin2base64(tmp, cap, data, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    fx_buf_puts(b, tmp);
    free(tmp);
}

static int in_alphabet(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", data[i]) ||
            !data[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!auth)
        setup();
    struct fx_principal p;
    struct fx_err err;
    int64_t nbf = 0, exp = 0;

    fx_auth_verify(auth, (const char *)data, size, &p, &err);
    fx__jwt_check_header((const char *)data, size, &auth->pol, &err);
    fx__jwt_check_claims((const char *)data, size, &auth->pol, fx_now_ms(), &p, &nbf, &exp, &err);

    if (size > FX_AUTH_TOKEN_MAX)
        return 0;
    /* the fast base64url decoder must agree with libsodium's strict one on
     * the base64url alphabet, and refuse everything else (libsodium 1.0.18
     * decodes some bytes >= 0x80, e.g. f5 ff ff f8, as if they were letters) */
    static unsigned char mine[FX_AUTH_TOKEN_MAX], ref[FX_AUTH_TOKEN_MAX];
    size_t mlen = 0, rlen = 0;
    int m = fx__b64url_decode((const char *)data, size, mine, sizeof(mine), &mlen);
    if (in_alphabet(data, size)) {
        int r = sodium_base642bin(ref, sizeof(ref), (const char *)data, size, NULL, &rlen, NULL,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        if (m != r || (m == 0 && (mlen != rlen || memcmp(mine, ref, mlen) != 0)))
            abort();
    } else if (m == 0) {
        abort();
    }
    struct fx_buf tok;
    fx_buf_init(&tok, 0);
    fx_buf_puts(&tok, auth->header_b64);
    fx_buf_putc(&tok, '.');
    append_b64(&tok, data, size);
    unsigned char sig[FX__SIG_MAX];
    size_t siglen = 0;
    if (fx__auth_sign(auth, tok.data, tok.len, sig, &siglen, &err) == 0) {
        fx_buf_putc(&tok, '.');
        append_b64(&tok, sig, siglen);
        /* twice: the second may come from the cache */
        int a = fx_auth_verify(auth, tok.data, tok.len, &p, &err);
        int b = fx_auth_verify(auth, tok.data, tok.len, &p, &err);
        /* a cached token may only turn invalid by time (exp, nbf) */
        if (a == 0 && b != 0 && strcmp(err.field, "exp") != 0 && strcmp(err.field, "nbf") != 0)
            abort();
    }
    fx_buf_cleanup(&tok);
    return 0;
}
