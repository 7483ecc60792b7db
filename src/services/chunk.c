/* SPDX-License-Identifier: MIT */
/* Chunk payload decoder: see chunk.h for the format and why it is hand-written. */
#include "chunk.h"

#include "fluxo/error.h"
#include "fluxo/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct fx_cv null_value = {FX_CV_NULL, 0, NULL, 0};

struct parser {
    const char *start, *p, *end;
    char *out; /* next free byte in strbuf */
    char *why;
    size_t whycap;
    int depth;
};

static int fail(struct parser *ps, const char *what)
{
    snprintf(ps->why, ps->whycap, "malformed chunk at byte %ld: %s", (long)(ps->p - ps->start),
             what);
    return FX_EPARSE;
}

static void ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int expect(struct parser *ps, char c)
{
    ws(ps);
    if (ps->p >= ps->end || *ps->p != c) {
        char msg[32];
        snprintf(msg, sizeof(msg), "expected '%c'", c);
        return fail(ps, msg);
    }
    ps->p++;
    return 0;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* String at ps->p (after ws): unescaped into the string buffer (never longer
 * than the escaped text, so the buffer sized to the input always fits). */
static int string(struct parser *ps, const char **s, size_t *len)
{
    ws(ps);
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, "expected a string");
    ps->p++;
    char *start = ps->out, *o = ps->out;
    for (;;) {
        const char *q = ps->p;
        while (q < ps->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        memcpy(o, ps->p, (size_t)(q - ps->p));
        o += q - ps->p;
        ps->p = q;
        if (q >= ps->end)
            return fail(ps, "unterminated string");
        if (*q == '"') {
            ps->p++;
            break;
        }
        if ((unsigned char)*q < 0x20)
            return fail(ps, "control character in string");
        if (q + 1 >= ps->end)
            return fail(ps, "unterminated escape");
        char e = q[1];
        ps->p = q + 2;
        switch (e) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 4 || hex4(ps->p, &cp))
                return fail(ps, "bad \\u escape");
            ps->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                    hex4(ps->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(ps, "unpaired surrogate");
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return fail(ps, "unpaired surrogate");
            }
            if (cp == 0)
                return fail(ps, "NUL in string");
            o = put_utf8(o, cp);
            break;
        }
        default:
            return fail(ps, "bad escape");
        }
    }
    *o++ = '\0';
    ps->out = o;
    *s = start;
    *len = (size_t)(o - start - 1);
    return 0;
}

static int integer(struct parser *ps, int64_t *v)
{
    ws(ps);
    const char *q = ps->p;
    int neg = 0;
    if (q < ps->end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= ps->end || *q < '0' || *q > '9')
        return fail(ps, "expected an integer");
    uint64_t acc = 0;
    while (q < ps->end && *q >= '0' && *q <= '9') {
        if (acc > (UINT64_MAX - 9) / 10)
            return fail(ps, "integer out of range");
        acc = acc * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q < ps->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return fail(ps, "expected an integer, got a fraction");
    if (acc > (uint64_t)INT64_MAX + (uint64_t)neg)
        return fail(ps, "integer out of range");
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    ps->p = q;
    return 0;
}

/* Skip any JSON value (for keys this version does not know). */
static int skip_value(struct parser *ps)
{
    ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "expected a value");
    if (++ps->depth > 64)
        return fail(ps, "nested too deeply");
    int rc = 0;
    char c = *ps->p;
    if (c == '"') {
        const char *s;
        size_t n;
        char *save = ps->out;
        rc = string(ps, &s, &n);
        ps->out = save;
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        ps->p++;
        ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
        } else {
            for (;;) {
                if (c == '{') {
                    const char *s;
                    size_t n;
                    char *save = ps->out;
                    if ((rc = string(ps, &s, &n)) || (rc = expect(ps, ':')))
                        break;
                    ps->out = save;
                }
                if ((rc = skip_value(ps)))
                    break;
                ws(ps);
                if (ps->p < ps->end && *ps->p == ',') {
                    ps->p++;
                    continue;
                }
                rc = expect(ps, close);
                break;
            }
        }
    } else {
        const char *q = ps->p;
        while (q < ps->end && (strchr("-+.eE0123456789truefalsn", *q) != NULL))
            q++;
        if (q == ps->p)
            rc = fail(ps, "unexpected character");
        ps->p = q;
    }
    ps->depth--;
    return rc;
}

static int is_null(struct parser *ps)
{
    ws(ps);
    if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
        ps->p += 4;
        return 1;
    }
    return 0;
}

/* '[' then items separated by ',' then ']': calls item for each. */
#define ARRAY(ps, ...)                                                                             \
    do {                                                                                           \
        if ((rc = expect(ps, '[')))                                                                \
            return rc;                                                                             \
        ws(ps);                                                                                    \
        if ((ps)->p < (ps)->end && *(ps)->p == ']') {                                              \
            (ps)->p++;                                                                             \
            break;                                                                                 \
        }                                                                                          \
        for (;;) {                                                                                 \
            __VA_ARGS__;                                                                           \
            ws(ps);                                                                                \
            if ((ps)->p < (ps)->end && *(ps)->p == ',') {                                          \
                (ps)->p++;                                                                         \
                continue;                                                                          \
            }                                                                                      \
            if ((rc = expect(ps, ']')))                                                            \
                return rc;                                                                         \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

static void push_val(struct fx_chunk *c, size_t *n, struct fx_cv v)
{
    if (*n == c->nvals_cap) {
        c->nvals_cap = c->nvals_cap ? c->nvals_cap * 2 : 1024;
        c->vals = fx_realloc(c->vals, c->nvals_cap * sizeof(*c->vals));
    }
    c->vals[(*n)++] = v;
}

static int rows(struct parser *ps, struct fx_chunk *c)
{
    int rc;
    size_t nvals = 0, cap_rows = 0;
    ARRAY(ps, {
        if (c->nrows == cap_rows) {
            cap_rows = cap_rows ? cap_rows * 2 : 256;
            c->row_start = fx_realloc(c->row_start, cap_rows * sizeof(size_t));
            c->row_len = fx_realloc(c->row_len, cap_rows * sizeof(size_t));
        }
        size_t start = nvals;
        ARRAY(ps, {
            struct fx_cv v = {FX_CV_NULL, 0, NULL, 0};
            ws(ps);
            if (ps->p >= ps->end)
                return fail(ps, "truncated row");
            if (*ps->p == '"') {
                v.type = FX_CV_STR;
                if ((rc = string(ps, &v.s, &v.len)))
                    return rc;
            } else if (!is_null(ps)) {
                v.type = FX_CV_INT;
                if ((rc = integer(ps, &v.i)))
                    return rc;
            }
            push_val(c, &nvals, v);
        });
        c->row_start[c->nrows] = start;
        c->row_len[c->nrows] = nvals - start;
        c->nrows++;
    });
    return 0;
}

static int fields(struct parser *ps, struct fx_chunk *c)
{
    int rc;
    size_t cap = 0;
    ARRAY(ps, {
        if (c->nfields == cap) {
            cap = cap ? cap * 2 : 16;
            c->fields = fx_realloc(c->fields, cap * sizeof(char *));
        }
        size_t n;
        if ((rc = string(ps, &c->fields[c->nfields], &n)))
            return rc;
        c->nfields++;
    });
    return 0;
}

static int raws(struct parser *ps, struct fx_chunk *c)
{
    int rc;
    size_t cap = 0;
    ARRAY(ps, {
        if (c->nraw == cap) {
            cap = cap ? cap * 2 : 8;
            c->raw = fx_realloc(c->raw, cap * sizeof(int64_t));
        }
        if ((rc = integer(ps, &c->raw[c->nraw])))
            return rc;
        c->nraw++;
    });
    return 0;
}

int fx_chunk_decode(const char *json, size_t len, struct fx_chunk *c, char *why, size_t whycap)
{
    memset(c, 0, sizeof(*c));
    c->strbuf = fx_malloc(len + 1);
    struct parser ps = {json, json, json + len, c->strbuf, why, whycap, 0};
    int have_fields = 0, have_rows = 0;
    struct parser *p = &ps;
    int rc;
    if ((rc = expect(p, '{')))
        goto out;
    ws(p);
    if (p->p < p->end && *p->p == '}') {
        rc = fail(p, "empty object");
        goto out;
    }
    for (;;) {
        const char *key;
        size_t klen;
        char *save = p->out;
        if ((rc = string(p, &key, &klen)) || (rc = expect(p, ':')))
            goto out;
        p->out = save; /* keys are not kept */
        char k[16];
        snprintf(k, sizeof(k), "%s", klen < sizeof(k) ? key : "");
        if (strcmp(k, "batch") == 0) {
            size_t n;
            rc = string(p, &c->batch, &n);
        } else if (strcmp(k, "pipeline") == 0) {
            size_t n;
            rc = string(p, &c->pipeline, &n);
        } else if (strcmp(k, "chunk") == 0) {
            rc = integer(p, &c->seq);
        } else if (strcmp(k, "fields") == 0) {
            rc = fields(p, c);
            have_fields = 1;
        } else if (strcmp(k, "raw") == 0) {
            rc = raws(p, c);
        } else if (strcmp(k, "rows") == 0) {
            rc = rows(p, c);
            have_rows = 1;
        } else {
            rc = skip_value(p);
        }
        if (rc)
            goto out;
        ws(p);
        if (p->p < p->end && *p->p == ',') {
            p->p++;
            continue;
        }
        if ((rc = expect(p, '}')))
            goto out;
        break;
    }
    ws(p);
    if (p->p != p->end) {
        rc = fail(p, "trailing data after the object");
        goto out;
    }
    if (!c->batch || !c->pipeline || !have_fields || !have_rows) {
        snprintf(why, whycap, "malformed chunk: needs batch, pipeline, fields and rows");
        rc = FX_EPARSE;
    }
out:
    if (rc)
        fx_chunk_free(c);
    return rc;
}

void fx_chunk_free(struct fx_chunk *c)
{
    free(c->fields);
    free(c->raw);
    free(c->row_start);
    free(c->row_len);
    free(c->vals);
    free(c->strbuf);
    memset(c, 0, sizeof(*c));
}

const struct fx_cv *fx_chunk_val(const struct fx_chunk *c, size_t r, size_t j)
{
    if (r >= c->nrows || j >= c->row_len[r])
        return &null_value;
    return &c->vals[c->row_start[r] + j];
}
