/* SPDX-License-Identifier: MIT */
/*
 * POST /token: OAuth2 token endpoint (RFC 6749) as the original API had it,
 * an application/x-www-form-urlencoded body with grant_type=password
 * (username, password) or grant_type=client_credentials (client_id and
 * client_secret in the body or as HTTP Basic credentials), optional scope.
 * The reply is {"access_token", "token_type": "bearer", "expires_in",
 * "scope"}; errors are problem+json that also carry OAuth2's "error" code.
 *
 * Checking a password costs an argon2id hash (tens of milliseconds): it runs
 * on a thread of its own, never on an event loop, and one at a time (the
 * auth store handle is single-threaded).
 */
#define _GNU_SOURCE
#include "http_int.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_mutex_t grant_mu = PTHREAD_MUTEX_INITIALIZER;

/* Decode a form value in place ('+' and %XX); 0 or -1 when malformed. */
static int form_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%') {
            int hi, lo;
            char a = s[1], b = a ? s[2] : 0;
            hi = a >= '0' && a <= '9'                 ? a - '0'
                 : (a | 32) >= 'a' && (a | 32) <= 'f' ? (a | 32) - 'a' + 10
                                                      : -1;
            lo = b >= '0' && b <= '9'                 ? b - '0'
                 : (b | 32) >= 'a' && (b | 32) <= 'f' ? (b | 32) - 'a' + 10
                                                      : -1;
            if (hi < 0 || lo < 0)
                return -1;
            *o++ = (char)(hi * 16 + lo);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return 0;
}

struct form {
    char *grant_type, *username, *password, *scope, *client_id, *client_secret;
};

static int parse_form(char *body, struct form *f, char *why, size_t cap)
{
    memset(f, 0, sizeof(*f));
    char *save = NULL;
    for (char *kv = strtok_r(body, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = kv, *v = eq + 1;
        if (form_decode(k) || form_decode(v)) {
            snprintf(why, cap, "malformed percent-encoding in the form field '%.40s'", k);
            return -1;
        }
        char **slot = strcmp(k, "grant_type") == 0      ? &f->grant_type
                      : strcmp(k, "username") == 0      ? &f->username
                      : strcmp(k, "password") == 0      ? &f->password
                      : strcmp(k, "scope") == 0         ? &f->scope
                      : strcmp(k, "client_id") == 0     ? &f->client_id
                      : strcmp(k, "client_secret") == 0 ? &f->client_secret
                                                        : NULL;
        if (slot) {
            if (*slot) {
                snprintf(why, cap, "the form field '%s' is repeated", k);
                return -1;
            }
            *slot = v;
        }
    }
    return 0;
}

static void oauth_error(struct req *r, unsigned status, const char *code, const char *detail)
{
    char extra[96];
    snprintf(extra, sizeof(extra), "\"error\":\"%s\"", code);
    req_problem(r, status, NULL, detail, extra);
    req_header(r, "Cache-Control", "no-store");
}

struct grant_job {
    struct req *r;
    char *body;
    char *basic; /* decoded "id:secret" of an HTTP Basic header */
};

static void *grant_thread(void *arg)
{
    struct grant_job *j = arg;
    struct req *r = j->r;
    struct form f;
    char why[160];
    if (parse_form(j->body, &f, why, sizeof(why)) != 0) {
        oauth_error(r, 400, "invalid_request", why);
        goto out;
    }
    if (j->basic && !f.client_id) {
        char *colon = strchr(j->basic, ':');
        if (colon) {
            *colon = '\0';
            f.client_id = j->basic;
            f.client_secret = colon + 1;
        }
    }
    const char *gt = f.grant_type ? f.grant_type : (f.username ? "password" : NULL);
    unsigned scopes = 0;
    struct fx_err err;
    fx_err_clear(&err);
    if (f.scope && *f.scope && fx_scopes_parse(f.scope, &scopes, &err) != 0) {
        oauth_error(r, 400, "invalid_scope", err.reason);
        goto out;
    }
    char *token = NULL;
    int64_t expires = 0;
    unsigned granted = 0;
    int rc;
    if (gt && strcmp(gt, "password") == 0) {
        if (!f.username || !f.password) {
            oauth_error(r, 400, "invalid_request",
                        "grant_type=password needs the form fields username and password");
            goto out;
        }
        pthread_mutex_lock(&grant_mu);
        rc = fx_auth_password_grant(r->h->auth, f.username, f.password, scopes, &token, &expires,
                                    &granted, &err);
        pthread_mutex_unlock(&grant_mu);
    } else if (gt && strcmp(gt, "client_credentials") == 0) {
        if (!f.client_id || !f.client_secret) {
            oauth_error(r, 400, "invalid_request",
                        "grant_type=client_credentials needs client_id and client_secret (in "
                        "the form or as HTTP Basic credentials)");
            goto out;
        }
        pthread_mutex_lock(&grant_mu);
        rc = fx_auth_client_grant(r->h->auth, f.client_id, f.client_secret, scopes, &token,
                                  &expires, &granted, &err);
        pthread_mutex_unlock(&grant_mu);
    } else {
        oauth_error(r, 400, "unsupported_grant_type",
                    "grant_type must be password or client_credentials");
        goto out;
    }
    if (rc != 0) {
        if (rc == FX_EAUTH && strcmp(err.field, "scope") == 0)
            oauth_error(r, 400, "invalid_scope", err.reason);
        else if (rc == FX_EAUTH)
            oauth_error(r, strcmp(gt, "password") == 0 ? 400 : 401,
                        strcmp(gt, "password") == 0 ? "invalid_grant" : "invalid_client",
                        err.reason);
        else
            oauth_error(r, 500, "server_error", err.reason);
        goto out;
    }
    char scope_txt[128];
    fx_scopes_format(granted, scope_txt, sizeof(scope_txt));
    struct fx_buf o;
    fx_buf_init(&o, 0);
    fx_buf_puts(&o, "{\"access_token\":");
    fx_buf_json_str(&o, token, strlen(token));
    fx_buf_printf(&o,
                  ",\"token_type\":\"bearer\",\"expires_in\":%lld,\"scope\":", (long long)expires);
    fx_buf_json_str(&o, scope_txt, strlen(scope_txt));
    fx_buf_putc(&o, '}');
    sodium_memzero(token, strlen(token));
    free(token);
    req_reply_buf(r, 200, "application/json", &o);
    req_header(r, "Cache-Control", "no-store");
    fx_buf_cleanup(&o);
out:
    sodium_memzero(j->body, strlen(j->body));
    free(j->body);
    if (j->basic) {
        sodium_memzero(j->basic, strlen(j->basic));
        free(j->basic);
    }
    free(j);
    req_resume(r);
    return NULL;
}

void api_token(struct req *r)
{
    const char *ct = req_header_in(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        oauth_error(r, 415, "invalid_request",
                    "send the form as application/x-www-form-urlencoded");
        return;
    }
    struct grant_job *j = fx_calloc(1, sizeof(*j));
    j->r = r;
    j->body = fx_strndup(r->body.data ? r->body.data : "", r->body.len);
    const char *auth = req_header_in(r, "Authorization");
    if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
        size_t n = strlen(auth + 6);
        j->basic = fx_calloc(1, n + 1);
        size_t out = 0;
        if (sodium_base642bin((unsigned char *)j->basic, n, auth + 6, n, NULL, &out, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
            free(j->basic);
            j->basic = NULL;
        } else {
            j->basic[out] = '\0';
        }
    }
    req_suspend(r);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, grant_thread, j) != 0) {
        free(j->body);
        free(j->basic);
        free(j);
        oauth_error(r, 503, "temporarily_unavailable", "cannot start the token check");
        req_resume(r);
    }
    pthread_attr_destroy(&attr);
}
