/* SPDX-License-Identifier: MIT */
/*
 * CloudEvents 1.0, structured JSON mode: the body every bus backend carries.
 *
 *   {"specversion":"1.0","id":"...","source":"...","type":"...",
 *    "time":"2024-05-01T12:00:00.123Z","datacontenttype":"application/json",
 *    "routingkey":"notifications.order","partitionkey":"order-42",
 *    "correlationid":"...","traceparent":"00-...-01","data":{...}}
 *
 * Attribute choices: the routing key travels in the extension "routingkey"
 * (not "subject", which names the event's subject for the producer and is
 * left to applications); the ordering key in "partitionkey", the name of the
 * CloudEvents partitioning extension; "correlationid" and "traceparent" (the
 * W3C distributed-tracing extension) as the design asks. Absent optional
 * attributes are omitted, never written as null.
 *
 * Hot path: data is usually the big member (a chunk of ~1000 rows, up to
 * megabytes). Encode copies it verbatim without validating it. Decode is a
 * purpose-built single-pass scanner: it unescapes only the small top-level
 * string attributes, and skips over every other value (strings with escapes,
 * nested objects and arrays, iteratively with a depth cap) checking JSON
 * structure as it goes, so data comes back as the exact bytes between the
 * member's ':' and its ',' or '}' (surrounding whitespace included, so what
 * encode wrote comes back byte for byte), copied once. Unknown attributes
 * (other extensions, "subject") are skipped; an optional attribute given as
 * null is absent; an empty "partitionkey" is no key.
 */
#include "bus/bus_int.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 512 /* nesting cap for skipped values (data) */

/* ---- UTF-8 ------------------------------------------------------------ */

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* ---- encode ----------------------------------------------------------- */

static void rfc3339_now(char *out, size_t cap)
{
    int64_t ms = fx_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", date, (int)(ms % 1000));
}

static int put_attr(struct fx_buf *out, const char *name, const char *value)
{
    if (!value)
        return 0;
    size_t n = strlen(value);
    if (!utf8_valid((const unsigned char *)value, n))
        return FX_EENCODING;
    int rc = fx_buf_printf(out, ",\"%s\":", name);
    return rc ? rc : fx_buf_json_str(out, value, n);
}

int fx_cloudevent_encode(const struct fx_msg *m, struct fx_buf *out)
{
    if (!m || !out || !m->id || !m->source || !m->type || (!m->data && m->data_len))
        return FX_EINVAL;
    char now[64];
    const char *time = m->time;
    if (!time) {
        rfc3339_now(now, sizeof(now));
        time = now;
    }
    size_t start = out->len;
    int rc = fx_buf_puts(out, "{\"specversion\":\"1.0\"");
    if (!rc)
        rc = put_attr(out, "id", m->id);
    if (!rc)
        rc = put_attr(out, "source", m->source);
    if (!rc)
        rc = put_attr(out, "type", m->type);
    if (!rc)
        rc = put_attr(out, "time", time);
    if (!rc && m->data && m->data_len)
        rc = fx_buf_puts(out, ",\"datacontenttype\":\"application/json\"");
    if (!rc)
        rc = put_attr(out, "routingkey", m->routing_key);
    if (!rc && m->key && *m->key)
        rc = put_attr(out, "partitionkey", m->key);
    if (!rc)
        rc = put_attr(out, "correlationid", m->correlation_id);
    if (!rc)
        rc = put_attr(out, "traceparent", m->traceparent);
    if (!rc && m->data && m->data_len) {
        rc = fx_buf_puts(out, ",\"data\":");
        if (!rc)
            rc = fx_buf_append(out, m->data, m->data_len);
    }
    if (!rc)
        rc = fx_buf_putc(out, '}');
    if (rc) {
        out->len = start; /* leave the buffer as it was */
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* ---- decode: scanner -------------------------------------------------- */

struct scan {
    const char *base, *p, *end;
    struct fx_err *err;
};

/* Bytes that end a run of plain string characters. */
static const unsigned char str_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
};

static int bad(struct scan *s, const char *at, const char *what)
{
    return fx_err_set(s->err, FX_EPARSE, "invalid JSON at byte %zu: %s", (size_t)(at - s->base),
                      what);
}

static void skip_ws(struct scan *s)
{
    const char *p = s->p;
    while (p < s->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    s->p = p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (bounds already checked) or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static void put_utf8(struct fx_buf *out, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    fx_buf_append(out, b, n);
}

/*
 * String at s->p (the opening quote). Leaves s->p after the closing quote.
 * With out, appends the unescaped text (surrogate pairs joined; a lone
 * surrogate is an error); without, only checks the escapes' shape.
 */
static int scan_string(struct scan *s, struct fx_buf *out)
{
    const char *p = s->p + 1, *end = s->end, *run = p;
    for (;;) {
        while (p < end && !str_stop[(unsigned char)*p])
            p++;
        if (p >= end)
            return bad(s, s->p, "unterminated string");
        if (*p == '"') {
            if (out)
                fx_buf_append(out, run, (size_t)(p - run));
            s->p = p + 1;
            return 0;
        }
        if (*p != '\\')
            return bad(s, p, "control character in string");
        if (out)
            fx_buf_append(out, run, (size_t)(p - run));
        if (end - p < 2)
            return bad(s, s->p, "unterminated string");
        char c = p[1], e = 0;
        switch (c) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '/':
            e = '/';
            break;
        case 'b':
            e = '\b';
            break;
        case 'f':
            e = '\f';
            break;
        case 'n':
            e = '\n';
            break;
        case 'r':
            e = '\r';
            break;
        case 't':
            e = '\t';
            break;
        case 'u':
            break;
        default:
            return bad(s, p, "invalid escape in string");
        }
        if (e) {
            if (out)
                fx_buf_putc(out, e);
            p += 2;
            run = p;
            continue;
        }
        long cp = end - p >= 6 ? hex4(p + 2) : -1;
        if (cp < 0)
            return bad(s, p, "invalid \\u escape in string");
        const char *esc = p;
        p += 6;
        if (out && cp >= 0xd800 && cp <= 0xdbff) {
            long lo = (end - p >= 6 && p[0] == '\\' && p[1] == 'u') ? hex4(p + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return bad(s, esc, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        } else if (out && cp >= 0xdc00 && cp <= 0xdfff) {
            return bad(s, esc, "unpaired surrogate in \\u escape");
        }
        if (out)
            put_utf8(out, (unsigned long)cp);
        run = p;
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int scan_number(struct scan *s)
{
    const char *p = s->p, *end = s->end, *start = p;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return bad(s, start, "invalid number");
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return bad(s, start, "invalid number");
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return bad(s, start, "invalid number");
        while (p < end && is_digit(*p))
            p++;
    }
    s->p = p;
    return 0;
}

static int scan_literal(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return bad(s, s->p, "unexpected character");
    s->p += n;
    return 0;
}

/* Object member name and its ':' (s->p at the name's quote). */
static int scan_member_name(struct scan *s, struct fx_buf *name)
{
    if (s->p >= s->end || *s->p != '"')
        return bad(s, s->p, "expected a member name");
    int rc = scan_string(s, name);
    if (rc)
        return rc;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return bad(s, s->p, "expected ':' after member name");
    s->p++;
    return 0; /* whitespace before the value is left to the caller */
}

/* Skip one value (s->p at its first byte), checking its structure. */
static int skip_value(struct scan *s)
{
    char stack[MAX_DEPTH]; /* closing bracket per open container */
    int sp = 0, rc;
    for (;;) {
        /* a value */
        if (s->p >= s->end)
            return bad(s, s->p, "unexpected end of input");
        switch (*s->p) {
        case '{':
        case '[':
            if (sp == MAX_DEPTH)
                return bad(s, s->p, "nesting too deep");
            stack[sp++] = *s->p == '{' ? '}' : ']';
            s->p++;
            skip_ws(s);
            if (s->p < s->end && *s->p == stack[sp - 1]) {
                s->p++;
                sp--;
                break; /* empty container: a complete value */
            }
            if (stack[sp - 1] == '}' && (rc = scan_member_name(s, NULL)))
                return rc;
            skip_ws(s);
            continue;
        case '"':
            if ((rc = scan_string(s, NULL)))
                return rc;
            break;
        case 't':
            if ((rc = scan_literal(s, "true")))
                return rc;
            break;
        case 'f':
            if ((rc = scan_literal(s, "false")))
                return rc;
            break;
        case 'n':
            if ((rc = scan_literal(s, "null")))
                return rc;
            break;
        default:
            if ((rc = scan_number(s)))
                return rc;
        }
        /* after a complete value: close containers or move to the next element */
        for (;;) {
            if (sp == 0)
                return 0;
            skip_ws(s);
            if (s->p >= s->end)
                return bad(s, s->p, "unexpected end of input");
            if (*s->p == stack[sp - 1]) {
                s->p++;
                sp--;
                continue;
            }
            if (*s->p != ',')
                return bad(s, s->p,
                           stack[sp - 1] == '}' ? "expected ',' or '}' in object"
                                                : "expected ',' or ']' in array");
            s->p++;
            skip_ws(s);
            if (stack[sp - 1] == '}' && (rc = scan_member_name(s, NULL)))
                return rc;
            skip_ws(s);
            break;
        }
    }
}

/* ---- decode: attributes ----------------------------------------------- */

enum attr {
    A_SPECVERSION,
    A_ID,
    A_SOURCE,
    A_TYPE,
    A_TIME,
    A_DATACONTENTTYPE,
    A_ROUTINGKEY,
    A_PARTITIONKEY,
    A_CORRELATIONID,
    A_TRACEPARENT,
    A_DATA,
    A_DATA_BASE64,
    A_COUNT,
    A_OTHER = A_COUNT
};

static const char *const attr_names[A_COUNT] = {
    "specversion", "id",           "source",        "type",        "time", "datacontenttype",
    "routingkey",  "partitionkey", "correlationid", "traceparent", "data", "data_base64",
};

static enum attr attr_of(const char *name, size_t n)
{
    for (int a = 0; a < A_COUNT; a++)
        if (strlen(attr_names[a]) == n && memcmp(attr_names[a], name, n) == 0)
            return (enum attr)a;
    return A_OTHER;
}

/* Where a string attribute lands in d (NULL: read then dropped). */
static char **attr_slot(struct fx_delivery *d, enum attr a)
{
    switch (a) {
    case A_ID:
        return &d->id;
    case A_SOURCE:
        return &d->source;
    case A_TYPE:
        return &d->type;
    case A_TIME:
        return &d->time;
    case A_ROUTINGKEY:
        return &d->routing_key;
    case A_PARTITIONKEY:
        return &d->key;
    case A_CORRELATIONID:
        return &d->correlation_id;
    case A_TRACEPARENT:
        return &d->traceparent;
    default:
        return NULL;
    }
}

static void clear_fields(struct fx_delivery *d)
{
    char **f[] = {&d->id,   &d->type,           &d->source,      &d->routing_key, &d->key,
                  &d->time, &d->correlation_id, &d->traceparent, &d->data};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        free(*f[i]);
        *f[i] = NULL;
    }
    d->data_len = 0;
}

static int attr_error(struct fx_err *err, int code, enum attr a, const char *fmt,
                      const char *detail)
{
    if (err) {
        snprintf(err->field, sizeof(err->field), "%s", attr_names[a]);
    }
    return fx_err_set(err, code, fmt, attr_names[a], detail);
}

int fx_cloudevent_decode(const char *body, size_t len, struct fx_delivery *d, struct fx_err *err)
{
    if (!d || (!body && len))
        return fx_err_set(err, FX_EINVAL, "body or delivery is NULL");
    struct scan s = {body, body, body + len, err};
    struct fx_buf tmp;
    fx_buf_init(&tmp, 0);
    char *specversion = NULL;
    unsigned seen = 0;
    int rc = 0;
    d->id = d->type = d->source = d->routing_key = d->key = NULL;
    d->time = d->correlation_id = d->traceparent = d->data = NULL;
    d->data_len = 0;

    skip_ws(&s);
    if (s.p >= s.end) {
        rc = fx_err_set(err, FX_EPARSE, "body is empty");
        goto out;
    }
    if (*s.p != '{') {
        rc = fx_err_set(err, FX_EPARSE, "body is not a JSON object (starts with '%c' at byte %zu)",
                        (unsigned char)*s.p >= 0x20 && (unsigned char)*s.p < 0x7f ? *s.p : '?',
                        (size_t)(s.p - s.base));
        goto out;
    }
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            fx_buf_reset(&tmp);
            if ((rc = scan_member_name(&s, &tmp)))
                goto out;
            const char *value = s.p; /* data keeps its surrounding whitespace */
            skip_ws(&s);
            enum attr a = attr_of(tmp.data ? tmp.data : "", tmp.len);
            if (a != A_OTHER) {
                if (seen & (1u << a)) {
                    rc = attr_error(err, FX_EPARSE, a, "duplicate attribute \"%s\"%s", "");
                    goto out;
                }
                seen |= 1u << a;
            }
            if (a == A_DATA_BASE64) {
                rc = attr_error(err, FX_EPARSE, a, "attribute \"%s\" is not supported%s",
                                " (binary data; expected JSON in \"data\")");
                goto out;
            } else if (a == A_DATA) {
                if ((rc = skip_value(&s)))
                    goto out;
                skip_ws(&s);
                d->data_len = (size_t)(s.p - value);
                d->data = fx_strndup(value, d->data_len);
            } else if (a == A_OTHER) {
                if ((rc = skip_value(&s)))
                    goto out;
            } else if (s.p < s.end && *s.p == '"') {
                fx_buf_reset(&tmp);
                if ((rc = scan_string(&s, &tmp)))
                    goto out;
                const char *v = tmp.data ? tmp.data : "";
                if (memchr(v, '\0', tmp.len)) {
                    rc = attr_error(err, FX_EPARSE, a, "attribute \"%s\" contains a NUL%s", "");
                    goto out;
                }
                if (!utf8_valid((const unsigned char *)v, tmp.len)) {
                    rc = attr_error(err, FX_EENCODING, a, "attribute \"%s\" is not valid UTF-8%s",
                                    "");
                    goto out;
                }
                char **slot = attr_slot(d, a);
                if (slot)
                    *slot = fx_strndup(v, tmp.len);
                else if (a == A_SPECVERSION)
                    specversion = fx_strndup(v, tmp.len);
            } else if (a != A_SPECVERSION && a != A_ID && a != A_SOURCE && a != A_TYPE &&
                       s.p + 4 <= s.end && memcmp(s.p, "null", 4) == 0) {
                s.p += 4; /* optional attribute given as null: absent */
            } else {
                rc = attr_error(err, FX_EPARSE, a, "attribute \"%s\" must be a string%s", "");
                goto out;
            }
            skip_ws(&s);
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                skip_ws(&s);
                continue;
            }
            if (s.p < s.end && *s.p == '}') {
                s.p++;
                break;
            }
            rc = bad(&s, s.p, "expected ',' or '}' after a member");
            goto out;
        }
    }
    skip_ws(&s);
    if (s.p != s.end) {
        rc = fx_err_set(err, FX_EPARSE, "unexpected data after the JSON object at byte %zu",
                        (size_t)(s.p - s.base));
        goto out;
    }
    static const enum attr required[] = {A_SPECVERSION, A_ID, A_SOURCE, A_TYPE};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!(seen & (1u << required[i]))) {
            rc = attr_error(err, FX_EPARSE, required[i], "missing required attribute \"%s\"%s", "");
            goto out;
        }
    }
    if (strcmp(specversion, "1.0") != 0) {
        fx_err_value(err, specversion, strlen(specversion));
        rc = attr_error(err, FX_EPARSE, A_SPECVERSION, "unsupported %s \"%s\" (expected \"1.0\")",
                        specversion);
        goto out;
    }
    if (!*d->id || !*d->source || !*d->type) {
        enum attr a = !*d->id ? A_ID : !*d->source ? A_SOURCE : A_TYPE;
        rc = attr_error(err, FX_EPARSE, a, "required attribute \"%s\" is empty%s", "");
        goto out;
    }
    if (d->key && !*d->key) {
        free(d->key); /* an empty ordering key is no key */
        d->key = NULL;
    }
out:
    if (rc)
        clear_fields(d);
    free(specversion);
    fx_buf_cleanup(&tmp);
    return rc;
}
