/* SPDX-License-Identifier: MIT */
/* OAuth2 scope text ("ingest:write read admin") to and from the FX_SCOPE_* bitmask. */
#include "fluxo/auth.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {
    {"ingest:write", FX_SCOPE_INGEST_WRITE},
    {"read", FX_SCOPE_READ},
    {"admin", FX_SCOPE_ADMIN},
};

#define NSCOPES (sizeof(scope_names) / sizeof(scope_names[0]))

static unsigned scope_bit(const char *s, size_t n)
{
    for (size_t i = 0; i < NSCOPES; i++)
        if (strlen(scope_names[i].name) == n && memcmp(scope_names[i].name, s, n) == 0)
            return scope_names[i].bit;
    return 0;
}

int fx_scopes_parse(const char *text, unsigned *out, struct fx_err *err)
{
    unsigned set = 0;
    *out = 0;
    for (const char *p = text; p && *p;) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        size_t n = strcspn(p, " \t");
        unsigned bit = scope_bit(p, n);
        if (!bit) {
            fx_err_clear(err);
            fx_err_value(err, p, n);
            if (err)
                snprintf(err->field, sizeof(err->field), "scope");
            return fx_err_set(err, FX_EINVAL,
                              "unknown scope '%.*s'; the scopes are ingest:write, read and admin",
                              (int)(n > 64 ? 64 : n), p);
        }
        set |= bit;
        p += n;
    }
    *out = set;
    return 0;
}

void fx_scopes_format(unsigned scopes, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < NSCOPES; i++) {
        if (!(scopes & scope_names[i].bit))
            continue;
        int n = snprintf(out + len, cap - len, "%s%s", len ? " " : "", scope_names[i].name);
        if (n < 0 || (size_t)n >= cap - len) {
            /* do not leave half a name behind */
            out[len] = '\0';
            return;
        }
        len += (size_t)n;
    }
}
