/* SPDX-License-Identifier: MIT */
/*
 * JSON Web Tokens (RFC 7519, JWS compact form): issuing and verifying.
 *
 * Verification is written here rather than left to libjwt 1.10, whose
 * jwt_decode takes the algorithm from the token itself: it accepts
 * "alg":"none" tokens without a signature, and HMACs an HS256 token with
 * whatever key it is given, so an RS256 server handing it the public key PEM
 * accepts tokens "signed" with that public text. Here the header must name
 * the configured algorithm before any signature is computed, and every
 * refusal says which check failed, for the 401 body.
 *
 * Order of checks (each a precise FX_EAUTH): size; three base64url parts;
 * header JSON, "alg" exactly the configured one, no "crit"; signature; then
 * the claims: exp (required) and nbf with the configured leeway, iss, aud,
 * sub, scope. Tokens that pass go into the token cache; a hit re-checks only
 * the time window, the one thing that changes for an unchanged token.
 *
 * Threads: fx_auth_verify reads the handle and uses the token cache, which
 * has its own locks; nothing else is shared.
 */
#include "auth_int.h"

#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING /* for encoding */
/* Latest NumericDate accepted: 9999-12-31T23:59:59Z (keeps ms arithmetic far from overflow). */
#define NUMERIC_DATE_MAX 253402300799LL

/* A claim or header value made printable and short enough to quote in a reason. */
static const char *shown(char *out, size_t cap, const char *s, size_t n)
{
    size_t max = cap - 4, o = 0;
    for (size_t i = 0; i < n && o < max; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (n > max) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static const char *iso_time(int64_t secs, char out[32])
{
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)secs);
    return out;
}

/* exp/nbf against now (ms) with the leeway; exp_ms is required, nbf_ms may be INT64_MIN. */
static int check_window(int64_t now_ms, int64_t nbf_ms, int64_t exp_ms, int64_t leeway_ms,
                        struct fx_err *err)
{
    char when[32];
    if (now_ms >= exp_ms + leeway_ms)
        return fx__auth_refuse(err, "exp",
                               "token expired at %s (%lld s ago; allowed clock skew %lld s)",
                               iso_time(exp_ms / 1000, when), (long long)((now_ms - exp_ms) / 1000),
                               (long long)(leeway_ms / 1000));
    if (nbf_ms != INT64_MIN && now_ms + leeway_ms < nbf_ms)
        return fx__auth_refuse(err, "nbf",
                               "token is not valid before %s (%lld s from now; allowed clock "
                               "skew %lld s)",
                               iso_time(nbf_ms / 1000, when),
                               (long long)((nbf_ms - now_ms + 999) / 1000),
                               (long long)(leeway_ms / 1000));
    return 0;
}

/* Read a NumericDate claim into *secs; 0 absent, 1 present, or FX_EAUTH. */
static int numeric_date(json_t *claims, const char *name, int64_t *secs, struct fx_err *err)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return fx__auth_refuse(err, name, "token claim %s is not a number (NumericDate)", name);
    if (!(d >= 0 && d <= (double)NUMERIC_DATE_MAX))
        return fx__auth_refuse(err, name,
                               "token claim %s is out of range (%g): a date in seconds since "
                               "1970 up to year 9999 is expected",
                               name, d);
    *secs = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)floor(d);
    return 1;
}

/* String claim equal to want (full length compared: JSON strings may hold NULs). */
static int str_equals(json_t *v, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), want, n) == 0;
}

static json_t *parse_object(const char *json, size_t len, const char *what, struct fx_err *err)
{
    json_error_t je;
    /* duplicate keys refused: two "alg" or two "exp" must not be read two ways;
     * without JSON_ALLOW_NUL jansson also refuses \u0000, so no claim string
     * holds a NUL that would make "fluxo\0x" look like "fluxo" to C code */
    json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        fx__auth_refuse(err, what, "token %s is not valid JSON: %s (at byte %d)", what, je.text,
                        je.position);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        fx__auth_refuse(err, what, "token %s is not a JSON object", what);
        return NULL;
    }
    return v;
}

int fx__jwt_check_header(const char *json, size_t len, const struct fx__jwt_policy *pol,
                         struct fx_err *err)
{
    json_t *h = parse_object(json, len, "header", err);
    if (!h)
        return FX_EAUTH;
    int rc = 0;
    char show[48];
    json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg)) {
        rc = fx__auth_refuse(err, "alg",
                             "token header has no \"alg\" string; this server "
                             "requires \"alg\": \"%s\"",
                             pol->alg);
    } else if (!str_equals(alg, pol->alg)) {
        const char *v = json_string_value(alg);
        size_t n = json_string_length(alg);
        if (n == 4 && strncasecmp(v, "none", 4) == 0)
            rc = fx__auth_refuse(err, "alg",
                                 "token algorithm \"%s\" is refused: unsigned tokens are never "
                                 "accepted; this server requires %s",
                                 shown(show, sizeof(show), v, n), pol->alg);
        else
            rc = fx__auth_refuse(err, "alg",
                                 "token algorithm \"%s\" is refused: this server accepts only "
                                 "%s tokens",
                                 shown(show, sizeof(show), v, n), pol->alg);
    } else if (json_object_get(h, "crit")) {
        /* RFC 7515 4.1.11: extensions we do not implement must not be ignored */
        rc = fx__auth_refuse(err, "crit",
                             "token header lists critical extensions (\"crit\"), which this "
                             "server does not implement");
    }
    json_decref(h);
    return rc;
}

int fx__jwt_check_claims(const char *json, size_t len, const struct fx__jwt_policy *pol,
                         int64_t now_ms, struct fx_principal *p, int64_t *nbf_ms, int64_t *exp_ms,
                         struct fx_err *err)
{
    memset(p, 0, sizeof(*p));
    json_t *c = parse_object(json, len, "payload", err);
    if (!c)
        return FX_EAUTH;
    char show[72];
    int64_t exp = 0, nbf = 0;
    int rc = numeric_date(c, "exp", &exp, err);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        rc = fx__auth_refuse(err, "exp", "token has no exp claim; tokens must expire");
        goto out;
    }
    rc = numeric_date(c, "nbf", &nbf, err);
    if (rc < 0)
        goto out;
    *exp_ms = exp * 1000;
    *nbf_ms = rc ? nbf * 1000 : INT64_MIN;
    rc = check_window(now_ms, *nbf_ms, *exp_ms, pol->leeway_ms, err);
    if (rc)
        goto out;

    json_t *iss = json_object_get(c, "iss");
    if (!json_is_string(iss)) {
        rc = fx__auth_refuse(err, "iss", "token has no iss (issuer) string; expected \"%s\"",
                             pol->issuer);
        goto out;
    }
    if (!str_equals(iss, pol->issuer)) {
        rc = fx__auth_refuse(
            err, "iss", "token issuer \"%s\" is not \"%s\"",
            shown(show, sizeof(show), json_string_value(iss), json_string_length(iss)),
            pol->issuer);
        goto out;
    }

    json_t *aud = json_object_get(c, "aud");
    int aud_ok = str_equals(aud, pol->audience);
    if (json_is_array(aud)) {
        size_t i;
        json_t *one;
        json_array_foreach(aud, i, one)
        {
            if (str_equals(one, pol->audience))
                aud_ok = 1;
        }
    }
    if (!aud_ok) {
        if (!aud)
            rc = fx__auth_refuse(err, "aud", "token has no aud (audience); expected \"%s\"",
                                 pol->audience);
        else if (json_is_string(aud))
            rc = fx__auth_refuse(
                err, "aud", "token audience \"%s\" is not \"%s\"",
                shown(show, sizeof(show), json_string_value(aud), json_string_length(aud)),
                pol->audience);
        else
            rc = fx__auth_refuse(err, "aud", "token audience does not include \"%s\"",
                                 pol->audience);
        goto out;
    }

    json_t *sub = json_object_get(c, "sub");
    size_t sublen = json_string_length(sub);
    if (!json_is_string(sub) || sublen == 0 || sublen >= sizeof(p->sub)) {
        rc = fx__auth_refuse(err, "sub", "token sub (subject) must be a string of 1 to %zu bytes",
                             sizeof(p->sub) - 1);
        goto out;
    }
    memcpy(p->sub, json_string_value(sub), sublen);

    json_t *jti = json_object_get(c, "jti");
    if (jti) {
        size_t n = json_string_length(jti);
        if (!json_is_string(jti) || n >= sizeof(p->jti)) {
            rc = fx__auth_refuse(err, "jti",
                                 "token jti (token id) must be a string of at most %zu bytes",
                                 sizeof(p->jti) - 1);
            goto out;
        }
        memcpy(p->jti, json_string_value(jti), n);
    }

    json_t *scope = json_object_get(c, "scope");
    if (scope && !json_is_string(scope)) {
        rc = fx__auth_refuse(err, "scope",
                             "token scope must be a string of space-separated scope names");
        goto out;
    }
    if (scope) {
        /* names of scopes this build does not know grant nothing: skip them */
        const char *s = json_string_value(scope);
        while (*s) {
            size_t n = strcspn(s, " ");
            char one[FX_SCOPES_TEXT_MAX];
            unsigned bit = 0;
            if (n > 0 && n < sizeof(one)) {
                memcpy(one, s, n);
                one[n] = '\0';
                if (fx_scopes_parse(one, &bit, NULL) != 0)
                    bit = 0;
            }
            p->scopes |= bit;
            s += n;
            while (*s == ' ')
                s++;
        }
    }
    p->exp = exp;
    rc = 0;
out:
    json_decref(c);
    if (rc)
        memset(p, 0, sizeof(*p));
    return rc;
}

/*
 * Strict base64url decoding (no padding, no stray bits: each token has one
 * spelling). Not libsodium's sodium_base642bin: that one is constant-time,
 * which input the sender already knows does not need, and it was the largest
 * single cost of an uncached verification.
 */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int fx__b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1))
        return -1;
    *outlen = o;
    return 0;
}

static int check_part(const char *part, size_t n, const char *name, size_t offset,
                      struct fx_err *err)
{
    if (n == 0 && strcmp(name, "signature") != 0)
        return fx__auth_refuse(err, name, "token %s part is empty", name);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)part[i];
        if (b64_value(c) < 0) {
            char show[8];
            if (c >= 0x21 && c < 0x7f)
                snprintf(show, sizeof(show), "'%c'", c);
            else
                snprintf(show, sizeof(show), "0x%02x", c);
            return fx__auth_refuse(err, name,
                                   "token %s has %s at byte %zu, which is not base64url "
                                   "(A-Z a-z 0-9 - _, no '=' padding)",
                                   name, show, offset + i + 1);
        }
    }
    return 0;
}

static int hs256_matches(struct fx_auth *a, const char *data, size_t len, const unsigned char *sig,
                         size_t siglen)
{
    if (siglen != crypto_auth_hmacsha256_BYTES)
        return 0;
    crypto_auth_hmacsha256_state st = a->hmac_keyed;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    return sodium_memcmp(mac, sig, sizeof(mac)) == 0;
}

/* The full check of a token not in the cache. */
static int verify_token(struct fx_auth *a, const char *tok, size_t len, int64_t now_ms,
                        struct fx_principal *p, int64_t *nbf_ms, int64_t *exp_ms,
                        struct fx_err *err)
{
    size_t dots[2], ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (ndots == 2)
                return fx__auth_refuse(err, "token",
                                       "token has more than three parts; a JWT is "
                                       "header.payload.signature in base64url");
            dots[ndots++] = i;
        }
    }
    if (ndots != 2)
        return fx__auth_refuse(err, "token",
                               "token has %zu part%s; a JWT is header.payload.signature in "
                               "base64url",
                               ndots + 1, ndots ? "s" : "");
    const char *hdr = tok, *pay = tok + dots[0] + 1, *sig = tok + dots[1] + 1;
    size_t hlen = dots[0], plen = dots[1] - dots[0] - 1, slen = len - dots[1] - 1;
    int rc = check_part(hdr, hlen, "header", 0, err);
    if (!rc)
        rc = check_part(pay, plen, "payload", dots[0] + 1, err);
    if (!rc)
        rc = check_part(sig, slen, "signature", dots[1] + 1, err);
    if (rc)
        return rc;

    unsigned char buf[FX_AUTH_TOKEN_MAX];
    size_t n = 0;
    /* the header this server writes passes the checks: skip decoding it again */
    if (hlen != a->header_b64_len || memcmp(hdr, a->header_b64, hlen) != 0) {
        if (fx__b64url_decode(hdr, hlen, buf, sizeof(buf), &n) != 0)
            return fx__auth_refuse(err, "header", "token header is not valid base64url");
        rc = fx__jwt_check_header((const char *)buf, n, &a->pol, err);
        if (rc)
            return rc;
    }

    unsigned char sigbin[FX__SIG_MAX];
    size_t siglen = 0;
    if (slen == 0)
        return fx__auth_refuse(err, "signature", "token has no signature");
    if (fx__b64url_decode(sig, slen, sigbin, sizeof(sigbin), &siglen) != 0)
        return fx__auth_refuse(err, "signature",
                               "token signature is not valid base64url or is too long");
    int ok = a->alg == FX__JWT_HS256 ? hs256_matches(a, tok, dots[1], sigbin, siglen)
                                     : fx__pkey_verify(a->verify_key, tok, dots[1], sigbin, siglen);
    if (!ok)
        return fx__auth_refuse(err, "signature",
                               "token signature does not match (%s): the token was not issued "
                               "with this server's key, or was altered",
                               a->pol.alg);

    if (fx__b64url_decode(pay, plen, buf, sizeof(buf), &n) != 0)
        return fx__auth_refuse(err, "payload", "token payload is not valid base64url");
    return fx__jwt_check_claims((const char *)buf, n, &a->pol, now_ms, p, nbf_ms, exp_ms, err);
}

int fx_auth_verify(struct fx_auth *a, const char *token, size_t len, struct fx_principal *p,
                   struct fx_err *err)
{
    if (!a || !p || (!token && len))
        return fx_err_set(err, FX_EINVAL, "fx_auth_verify: NULL argument");
    memset(p, 0, sizeof(*p));
    if (len == 0)
        return fx__auth_refuse(err, "token", "empty bearer token");
    if (len > FX_AUTH_TOKEN_MAX)
        return fx__auth_refuse(err, "token", "bearer token is %zu bytes; the limit is %d", len,
                               FX_AUTH_TOKEN_MAX);
    int64_t now = fx_now_ms(), nbf_ms = INT64_MIN, exp_ms = 0;
    if (fx__token_cache_get(a->cache, token, len, p, &nbf_ms, &exp_ms)) {
        int rc = check_window(now, nbf_ms, exp_ms, a->pol.leeway_ms, err);
        if (rc) {
            memset(p, 0, sizeof(*p));
            if (now >= exp_ms + a->pol.leeway_ms)
                fx__token_cache_drop(a->cache, token, len);
        }
        return rc;
    }
    int rc = verify_token(a, token, len, now, p, &nbf_ms, &exp_ms, err);
    if (rc) {
        memset(p, 0, sizeof(*p));
        return rc;
    }
    fx__token_cache_put(a->cache, token, len, p, nbf_ms, exp_ms, exp_ms + a->pol.leeway_ms);
    return 0;
}

/* ---- issuing ---- */

static void put_b64(struct fx_buf *b, const void *data, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, B64URL);
    char *tmp = fx_malloc(cap);
    sodium_bin2base64(tmp, cap, data, n, B64URL);
    fx_buf_puts(b, tmp);
    free(tmp);
}

int fx__auth_sign(struct fx_auth *a, const char *data, size_t len, unsigned char sig[FX__SIG_MAX],
                  size_t *siglen, struct fx_err *err)
{
    if (a->alg == FX__JWT_HS256) {
        crypto_auth_hmacsha256_state st = a->hmac_keyed;
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
        crypto_auth_hmacsha256_final(&st, sig);
        *siglen = crypto_auth_hmacsha256_BYTES;
        return 0;
    }
    if (!a->sign_key)
        return fx_err_set(err, FX_ECONFIG,
                          "auth.private_key is not set: this server can verify %s tokens but "
                          "not issue them",
                          a->pol.alg);
    return fx__pkey_sign(a->sign_key, data, len, sig, siglen, err);
}

/* Longest accepted ttl: the bound of auth.token_ttl, 30 days. */
#define TTL_MAX_S (30LL * 24 * 3600)

int fx_auth_issue(struct fx_auth *a, const char *sub, unsigned scopes, int64_t ttl_s,
                  char **token_out, struct fx_err *err)
{
    if (!a || !sub || !token_out)
        return fx_err_set(err, FX_EINVAL, "fx_auth_issue: NULL argument");
    *token_out = NULL;
    if (!fx__auth_name_ok(sub))
        return fx_err_set(err, FX_EINVAL,
                          "subject '%.*s' is not a valid name: 1 to %d letters, digits or . _ - "
                          "@ + :",
                          FX_AUTH_NAME_MAX, sub, FX_AUTH_NAME_MAX);
    if (scopes & ~FX_SCOPES_ALL)
        return fx_err_set(err, FX_EINVAL, "scope bits 0x%x are not scopes",
                          scopes & ~FX_SCOPES_ALL);
    if (ttl_s > TTL_MAX_S)
        return fx_err_set(err, FX_EINVAL, "token lifetime %lld s is above the limit of 30 days",
                          (long long)ttl_s);
    if (a->alg != FX__JWT_HS256 && !a->sign_key)
        return fx_err_set(err, FX_ECONFIG,
                          "auth.private_key is not set: this server can verify %s tokens but "
                          "not issue them",
                          a->pol.alg);
    int64_t ttl = ttl_s > 0 ? ttl_s : (a->ttl_ms + 999) / 1000;
    int64_t now = fx_now_ms() / 1000;
    char jti[37], scope[FX_SCOPES_TEXT_MAX];
    fx_uuid7(jti);
    fx_scopes_format(scopes, scope, sizeof(scope));

    struct fx_buf claims, tok;
    fx_buf_init(&claims, 0);
    fx_buf_init(&tok, 0);
    fx_buf_puts(&claims, "{\"iss\":");
    fx_buf_json_str(&claims, a->issuer, strlen(a->issuer));
    fx_buf_puts(&claims, ",\"aud\":");
    fx_buf_json_str(&claims, a->audience, strlen(a->audience));
    fx_buf_puts(&claims, ",\"sub\":");
    fx_buf_json_str(&claims, sub, strlen(sub));
    fx_buf_printf(&claims, ",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"jti\":\"%s\",\"scope\":",
                  (long long)now, (long long)now, (long long)(now + ttl), jti);
    fx_buf_json_str(&claims, scope, strlen(scope));
    fx_buf_putc(&claims, '}');

    fx_buf_puts(&tok, a->header_b64);
    fx_buf_putc(&tok, '.');
    put_b64(&tok, claims.data, claims.len);
    unsigned char sig[FX__SIG_MAX];
    size_t siglen = 0;
    int rc = fx__auth_sign(a, tok.data, tok.len, sig, &siglen, err);
    if (rc == 0) {
        fx_buf_putc(&tok, '.');
        put_b64(&tok, sig, siglen);
        *token_out = fx_buf_take(&tok);
    }
    fx_buf_cleanup(&claims);
    fx_buf_cleanup(&tok);
    return rc;
}
