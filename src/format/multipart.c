/* SPDX-License-Identifier: MIT */
/*
 * multipart/form-data push parser (fluxo/multipart.h): splits an upload body into parts
 * as it streams in from the HTTP server, announcing each part's headers and passing its
 * data on without ever holding a part in memory.
 *
 * Design notes
 *
 * Finding the delimiter. Part data ends at CRLF "--" boundary (the "delimiter"). The
 * matcher compares one byte at a time against that pattern and remembers only how many
 * bytes of it matched so far (j): the bytes held back are then exactly the pattern's
 * first j bytes, so nothing needs buffering, and on a mismatch they are handed on as
 * data from the pattern itself. The pattern's first byte (CR, or LF in LF mode) occurs
 * nowhere else in it (a boundary cannot hold CR or LF), so after a mismatch no shorter
 * partial match can be pending: the only candidate left is the mismatching byte itself,
 * which is looked at again from j = 0. Runs of plain data are skipped with memchr for
 * that first byte, so large files cost little more than a copy.
 *
 * A full match is a delimiter only if what follows is "--" (the close delimiter),
 * blanks then a line end, or a line end; "\r\n--boundaryX" in the data is data. (RFC
 * 2046 forbids the boundary inside parts, so this only matters for odd bodies.)
 *
 * Line ends. The first boundary may start the body or follow a preamble (discarded).
 * How its line ends decides the delimiter for the rest of the body: CRLF as the RFC
 * says, or bare LF, which some hand-made clients send (the same choice as Go's
 * mime/multipart). Header lines may end in CRLF or LF either way.
 *
 * Headers are collected per part (max_header_bytes) and parsed once the blank line that
 * ends them is seen: only Content-Disposition (required, form-data, with a name) and
 * Content-Type matter; folded lines are unfolded; others are ignored.
 *
 * Every piece of state lives in the parser, so a chunk may end anywhere (inside the
 * boundary, between CR and LF, inside a header) with the same result.
 */
#include "fluxo/multipart.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 70

enum mstate {
    MS_PREAMBLE, /* looking for the first "--boundary" at the start of a line */
    MS_AFTER_B,  /* a full boundary match: what follows decides what it was */
    MS_DASH2,    /* "-" after the boundary: a second one closes the body */
    MS_PAD,      /* transport padding (blanks) after the boundary */
    MS_PAD_CR,   /* CR after the boundary: LF must follow */
    MS_HEADERS,  /* collecting a part's header section */
    MS_DATA,     /* part data, watching for the delimiter */
    MS_EPILOGUE, /* after the close delimiter: ignored */
    MS_DONE,     /* stopped by a callback or an error: m->rc is returned */
};

struct fx_multipart {
    struct fx_multipart_opts o;
    fx_multipart_begin_cb begin;
    fx_multipart_data_cb data;
    fx_multipart_end_cb end;
    void *ud;

    enum mstate st;
    int rc;
    struct fx_err ferr;
    int fed;

    char boundary[BOUNDARY_MAX + 1];
    char pre[BOUNDARY_MAX + 4]; /* "\n--" boundary: the first boundary line */
    char pat[BOUNDARY_MAX + 5]; /* "\r\n--" boundary, or "\n--" boundary in LF mode */
    size_t pre_len, pat_len;
    size_t j;     /* bytes of the pattern matched (held back) */
    int crlf;     /* MS_PAD_CR was seen: the boundary line ended in CRLF */
    size_t parts; /* parts begun */
    int in_part;  /* a part's data is streaming */

    struct fx_buf h;   /* the header section of the current part */
    size_t line_start; /* offset in h of the line being collected */
    struct fx_arena arena;
};

void fx_multipart_opts_init(struct fx_multipart_opts *o)
{
    o->max_header_bytes = 8u << 10;
    o->max_parts = 16;
}

/* RFC 2046 bchars: DIGIT ALPHA ' ( ) + _ , - . / : = ? and space (not last). */
static int boundary_ok(const char *b, size_t n)
{
    if (n < 1 || n > BOUNDARY_MAX || b[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("'()+_,-./:=? ", c)))
            return 0;
    }
    return 1;
}

struct fx_multipart *fx_multipart_new(const char *boundary, const struct fx_multipart_opts *o,
                                      fx_multipart_begin_cb b, fx_multipart_data_cb d,
                                      fx_multipart_end_cb e, void *ud)
{
    size_t n = boundary ? strlen(boundary) : 0;
    if (!boundary_ok(boundary, n))
        return NULL;
    struct fx_multipart *m = fx_calloc(1, sizeof(*m));
    struct fx_multipart_opts def;
    fx_multipart_opts_init(&def);
    m->o = o ? *o : def;
    if (!m->o.max_header_bytes)
        m->o.max_header_bytes = def.max_header_bytes;
    if (!m->o.max_parts)
        m->o.max_parts = def.max_parts;
    m->begin = b;
    m->data = d;
    m->end = e;
    m->ud = ud;
    memcpy(m->boundary, boundary, n + 1);
    m->pre_len = (size_t)snprintf(m->pre, sizeof(m->pre), "\n--%s", boundary);
    m->st = MS_PREAMBLE;
    m->j = 1; /* the body's start counts as a line start */
    fx_buf_init(&m->h, m->o.max_header_bytes);
    fx_arena_init(&m->arena, 1024);
    return m;
}

void fx_multipart_free(struct fx_multipart *m)
{
    if (!m)
        return;
    fx_buf_cleanup(&m->h);
    fx_arena_cleanup(&m->arena);
    free(m);
}

/* ---- errors ------------------------------------------------------------------ */

static int stop(struct fx_multipart *m, int rc)
{
    m->st = MS_DONE;
    m->rc = rc;
    return rc;
}

static int fail(struct fx_multipart *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct fx_multipart *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fx_err_vset_at(&m->ferr, code, NULL, (long)m->parts, fmt, ap);
    va_end(ap);
    return stop(m, code);
}

/* A callback's answer: non-zero stops the parser. */
static int cb_rc(struct fx_multipart *m, int rc)
{
    if (rc) {
        fx_err_clear(&m->ferr);
        return stop(m, rc);
    }
    return 0;
}

/* "'x'" for a printable byte, else "byte 0xNN". */
static const char *describe(unsigned char c, char buf[16])
{
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

/* Up to max bytes of src into dst (cap >= max + 1), whole UTF-8 characters only, with
 * control bytes and invalid UTF-8 as '?': header text quoted in a reason must not break
 * the JSON or the log line it ends up in. */
static const char *shown(char *dst, size_t cap, const char *src, size_t max)
{
    return fx__text_shown(dst, cap, src, strnlen(src, max));
}

/* ---- parameters (Content-Type, Content-Disposition) ---------------------------- */

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/*
 * The next `; name=value` of a header value at *sp: returns 1 with the name (n bytes at
 * *name) and the unquoted value in val, 0 at the end, -1 if malformed. Quoted values
 * take backslash escapes of '"' and '\' only: browsers send Windows paths unescaped
 * (C:\dir\a.csv), which must keep their backslashes.
 */
static int next_param(const char **sp, const char **name, size_t *nlen, struct fx_buf *val)
{
    const char *s = skip_ws(*sp);
    while (*s == ';')
        s = skip_ws(s + 1);
    if (!*s) {
        *sp = s;
        return 0;
    }
    const char *nm = s;
    while (*s && *s != '=' && *s != ';' && *s != ' ' && *s != '\t')
        s++;
    *name = nm;
    *nlen = (size_t)(s - nm);
    s = skip_ws(s);
    if (*s != '=' || *nlen == 0)
        return -1;
    s = skip_ws(s + 1);
    fx_buf_reset(val);
    fx_buf_append(val, "", 0);
    if (*s == '"') {
        for (s++;; s++) {
            if (!*s)
                return -1;
            if (*s == '"')
                break;
            if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                s++;
            fx_buf_putc(val, *s);
        }
        s++;
    } else {
        const char *v = s;
        while (*s && *s != ';' && *s != ' ' && *s != '\t')
            s++;
        if (s == v)
            return -1;
        fx_buf_append(val, v, (size_t)(s - v));
    }
    s = skip_ws(s);
    if (*s && *s != ';')
        return -1;
    *sp = s;
    return 1;
}

static int name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

int fx_multipart_boundary(const char *content_type, char *out, size_t cap, struct fx_err *err)
{
    static const char mt[] = "multipart/form-data";
    const char *s = skip_ws(content_type ? content_type : "");
    size_t tl = strcspn(s, "; \t");
    char sh[101];
    if (tl != sizeof(mt) - 1 || strncasecmp(s, mt, tl) != 0)
        return fx_err_set(err, FX_EPARSE, "multipart: Content-Type '%s' is not %s",
                          shown(sh, sizeof(sh), content_type ? content_type : "", 100), mt);
    s += tl;
    struct fx_buf val;
    fx_buf_init(&val, 0);
    const char *name;
    size_t nlen;
    int rc, found = 0;
    while ((rc = next_param(&s, &name, &nlen, &val)) == 1) {
        if (!name_is(name, nlen, "boundary"))
            continue;
        if (found) {
            rc = fx_err_set(err, FX_EPARSE,
                            "multipart: Content-Type has two boundary "
                            "parameters");
            goto out;
        }
        found = 1;
        if (!boundary_ok(val.data, val.len)) {
            rc = fx_err_set(err, FX_EPARSE,
                            "multipart: boundary '%s' is not valid (1 to 70 letters, digits "
                            "or '()+_,-./:=? characters, not ending in a space)",
                            shown(sh, sizeof(sh), val.data, 80));
            goto out;
        }
        if (val.len + 1 > cap) {
            rc = fx_err_set(err, FX_ETOOBIG,
                            "multipart: boundary of %zu characters does not fit %zu bytes", val.len,
                            cap);
            goto out;
        }
        memcpy(out, val.data, val.len + 1);
    }
    if (rc < 0) {
        rc = fx_err_set(err, FX_EPARSE, "multipart: malformed parameters in Content-Type '%s'",
                        shown(sh, sizeof(sh), content_type, 100));
        goto out;
    }
    rc = found ? 0
               : fx_err_set(err, FX_EPARSE,
                            "multipart: Content-Type has no boundary "
                            "parameter");
out:
    fx_buf_cleanup(&val);
    return rc;
}

/* ---- a part's headers ---------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 5987 ext-value charset'lang'pct-encoded into out (UTF-8); -1 if malformed or the
 * charset is neither UTF-8 nor ISO-8859-1. */
static int ext_value(const char *v, struct fx_buf *out)
{
    const char *q1 = strchr(v, '\'');
    const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
    if (!q2)
        return -1;
    size_t cl = (size_t)(q1 - v);
    int latin1;
    if (cl == 5 && strncasecmp(v, "UTF-8", 5) == 0)
        latin1 = 0;
    else if (cl == 10 && strncasecmp(v, "ISO-8859-1", 10) == 0)
        latin1 = 1;
    else
        return -1;
    fx_buf_reset(out);
    fx_buf_append(out, "", 0);
    for (const char *s = q2 + 1; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '%') {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
            if (lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            s += 2;
        }
        if (latin1 && c >= 0x80) {
            fx_buf_putc(out, (char)(0xC0 | (c >> 6)));
            fx_buf_putc(out, (char)(0x80 | (c & 0x3F)));
        } else {
            fx_buf_putc(out, (char)c);
        }
    }
    return fx__csv_utf8_check(out->data, out->len) == out->len ? 0 : -1;
}

/* A file name without its path: after the last '/' or '\'; "." and ".." mean none;
 * control characters become '_'. */
static char *base_name(struct fx_multipart *m, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\')
            start = i + 1;
    s += start;
    n -= start;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        n = 0;
    char *r = fx_arena_strndup(&m->arena, s, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f)
            r[i] = '_';
    return r;
}

/* Content-Disposition: form-data; name="..."; filename="..."; filename*=UTF-8''... */
static int disposition(struct fx_multipart *m, const char *v, struct fx_multipart_part *part)
{
    size_t tl = strcspn(v, "; \t");
    char sh[101];
    if (tl != 9 || strncasecmp(v, "form-data", 9) != 0)
        return fail(m, FX_EPARSE,
                    "multipart: part %zu: Content-Disposition is '%s', expected form-data",
                    m->parts, shown(sh, sizeof(sh), v, tl > 60 ? 60 : tl));
    const char *s = v + tl, *name;
    size_t nlen;
    struct fx_buf val, ext;
    fx_buf_init(&val, 0);
    fx_buf_init(&ext, 0);
    int rc, seen_name = 0, seen_fn = 0, seen_ext = 0;
    const char *fn = NULL;
    size_t fn_len = 0;
    while ((rc = next_param(&s, &name, &nlen, &val)) == 1) {
        int *seen = name_is(name, nlen, "name")        ? &seen_name
                    : name_is(name, nlen, "filename")  ? &seen_fn
                    : name_is(name, nlen, "filename*") ? &seen_ext
                                                       : NULL;
        if (!seen)
            continue;
        if ((*seen)++) {
            rc = fail(m, FX_EPARSE,
                      "multipart: part %zu: Content-Disposition has the parameter '%s' twice",
                      m->parts, shown(sh, sizeof(sh), name, nlen));
            goto out;
        }
        if (seen == &seen_name) {
            if (fx__csv_utf8_check(val.data, val.len) != val.len) {
                rc =
                    fail(m, FX_EENCODING, "multipart: part %zu: field name is not UTF-8", m->parts);
                goto out;
            }
            part->name = fx_arena_strndup(&m->arena, val.data, val.len);
        } else if (seen == &seen_fn) {
            fn = fx_arena_strndup(&m->arena, val.data, val.len);
            fn_len = val.len;
        } else if (ext_value(val.data, &ext) != 0) {
            rc = fail(m, FX_EPARSE,
                      "multipart: part %zu: filename* '%s' is not a valid RFC 5987 value in "
                      "UTF-8 or ISO-8859-1",
                      m->parts, shown(sh, sizeof(sh), val.data, 80));
            goto out;
        }
    }
    if (rc < 0) {
        rc = fail(m, FX_EPARSE,
                  "multipart: part %zu: malformed parameters in Content-Disposition '%s'", m->parts,
                  shown(sh, sizeof(sh), v, 100));
        goto out;
    }
    if (!seen_name) {
        rc = fail(m, FX_EPARSE, "multipart: part %zu: Content-Disposition has no name", m->parts);
        goto out;
    }
    if (seen_ext) {
        part->filename = base_name(m, ext.data, ext.len);
    } else if (fn) {
        if (fx__csv_utf8_check(fn, fn_len) != fn_len) {
            rc = fail(m, FX_EENCODING,
                      "multipart: part %zu: file name is not UTF-8 (send it as filename*=UTF-8'' "
                      "with percent-encoding)",
                      m->parts);
            goto out;
        }
        part->filename = base_name(m, fn, fn_len);
    }
    rc = 0;
out:
    fx_buf_cleanup(&val);
    fx_buf_cleanup(&ext);
    return rc;
}

static char *trim(char *s)
{
    s = (char *)skip_ws(s);
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Parse the header section in m->h (line ends included, the blank line excluded) and
 * announce the part. */
static int part_headers(struct fx_multipart *m)
{
    char *h = m->h.data;
    size_t n = m->line_start;
    if (memchr(h, '\0', n))
        return fail(m, FX_EPARSE, "multipart: part %zu has a NUL byte in its headers", m->parts);
    h[n] = '\0';
    /* unfold: a line starting with a blank continues the previous one */
    for (size_t i = 1; i < n; i++) {
        if (h[i - 1] == '\n' && (h[i] == ' ' || h[i] == '\t')) {
            h[i - 1] = ' ';
            if (i >= 2 && h[i - 2] == '\r')
                h[i - 2] = ' ';
        }
    }
    fx_arena_reset(&m->arena);
    struct fx_multipart_part part = {0};
    char *cd = NULL;
    for (char *line = h; *line;) {
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : line + strlen(line);
        if (nl) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r')
                nl[-1] = '\0';
        }
        char *colon = strchr(line, ':');
        size_t nl_len = colon ? strcspn(line, " \t:") : 0;
        if (!colon || nl_len == 0 || line + nl_len != colon) {
            char sh[61];
            int rc = fail(m, FX_EPARSE, "multipart: part %zu has a malformed header line '%s'",
                          m->parts, shown(sh, sizeof(sh), line, 60));
            fx_err_value(&m->ferr, line, strlen(line));
            return rc;
        }
        *colon = '\0';
        char *value = trim(colon + 1);
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (cd)
                return fail(m, FX_EPARSE, "multipart: part %zu has two Content-Disposition headers",
                            m->parts);
            cd = value;
        } else if (strcasecmp(line, "Content-Type") == 0 && !part.content_type && *value) {
            part.content_type = value;
        }
        line = next;
    }
    if (!cd)
        return fail(m, FX_EPARSE, "multipart: part %zu has no Content-Disposition header",
                    m->parts);
    int rc = disposition(m, cd, &part);
    if (rc)
        return rc;
    m->in_part = 1;
    return m->begin ? cb_rc(m, m->begin(m->ud, &part)) : 0;
}

/* ---- the body ------------------------------------------------------------------ */

static int emit(struct fx_multipart *m, const char *d, size_t n)
{
    if (n == 0 || !m->data)
        return 0;
    return cb_rc(m, m->data(m->ud, d, n));
}

/* A boundary line is complete: the previous part (if any) ends, the next begins. */
static int boundary_line(struct fx_multipart *m)
{
    if (m->pat_len == 0) {
        m->pat_len = (size_t)snprintf(m->pat, sizeof(m->pat), "%s--%s", m->crlf ? "\r\n" : "\n",
                                      m->boundary);
    }
    if (m->in_part) {
        m->in_part = 0;
        if (m->end && cb_rc(m, m->end(m->ud)))
            return m->rc;
    }
    if (m->parts == m->o.max_parts)
        return fail(m, FX_ETOOBIG, "multipart: more than %zu parts (max_parts)", m->o.max_parts);
    m->parts++;
    fx_buf_reset(&m->h);
    m->line_start = 0;
    m->st = MS_HEADERS;
    return 0;
}

/* After a full match turned out not to be a boundary: back to the data or preamble,
 * the matched bytes being ordinary content. */
static int not_a_boundary(struct fx_multipart *m)
{
    m->j = 0;
    if (m->pat_len == 0) {
        m->st = MS_PREAMBLE;
        return 0;
    }
    m->st = MS_DATA;
    return emit(m, m->pat, m->pat_len);
}

/* Part data from d: stops at the end of the chunk or after a full delimiter match. */
static int part_data(struct fx_multipart *m, const char **dp, size_t *np)
{
    const char *d = *dp;
    size_t n = *np, i = 0, run = 0;
    int rc = 0;
    while (i < n) {
        if (m->j == 0) {
            const char *q = memchr(d + i, m->pat[0], n - i);
            if (!q) {
                i = n;
                break;
            }
            i = (size_t)(q - d);
            if ((rc = emit(m, d + run, i - run)))
                goto out;
            m->j = 1;
            run = ++i;
        } else if (d[i] == m->pat[m->j]) {
            run = ++i;
            if (++m->j == m->pat_len) {
                m->st = MS_AFTER_B;
                m->j = 0;
                goto out;
            }
        } else {
            /* the held bytes were data; d[i] is looked at again from j = 0 */
            size_t held = m->j;
            m->j = 0;
            run = i;
            if ((rc = emit(m, m->pat, held)))
                goto out;
        }
    }
    rc = emit(m, d + run, i - run);
out:
    *dp = d + i;
    *np = n - i;
    return rc;
}

static int preamble(struct fx_multipart *m, const char **dp, size_t *np)
{
    const char *d = *dp;
    size_t n = *np, i = 0;
    while (i < n) {
        char c = d[i++];
        if (c == m->pre[m->j]) {
            if (++m->j == m->pre_len) {
                m->st = MS_AFTER_B;
                m->j = 0;
                break;
            }
        } else {
            m->j = c == '\n' ? 1 : 0;
        }
    }
    *dp = d + i;
    *np = n - i;
    return 0;
}

/* The header section: up to and including its blank line. */
static int headers(struct fx_multipart *m, const char **dp, size_t *np)
{
    const char *d = *dp;
    size_t n = *np;
    const char *nl = memchr(d, '\n', n);
    size_t k = nl ? (size_t)(nl - d) + 1 : n;
    if (m->h.len + k > m->o.max_header_bytes)
        return fail(m, FX_ETOOBIG,
                    "multipart: headers of part %zu longer than %zu bytes (max_header_bytes)",
                    m->parts, m->o.max_header_bytes);
    fx_buf_append(&m->h, d, k);
    *dp = d + k;
    *np = n - k;
    if (!nl)
        return 0;
    size_t end = m->h.len - 1; /* the '\n' */
    if (end > m->line_start && m->h.data[end - 1] == '\r')
        end--;
    if (end > m->line_start) {
        m->line_start = m->h.len;
        return 0;
    }
    m->st = MS_DATA;
    m->j = 0;
    return part_headers(m);
}

/* One byte after a full boundary match (states MS_AFTER_B .. MS_PAD_CR). */
static int after_boundary(struct fx_multipart *m, unsigned char c, int *again)
{
    char b[16];
    int first = m->pat_len == 0;
    *again = 0;
    switch (m->st) {
    case MS_AFTER_B:
        if (c == '-') {
            m->st = MS_DASH2;
            return 0;
        }
        if (c == ' ' || c == '\t') {
            m->st = MS_PAD;
            return 0;
        }
        if (c == '\r') {
            m->st = MS_PAD_CR;
            return 0;
        }
        if (c == '\n') {
            m->crlf = 0;
            return boundary_line(m);
        }
        *again = 1; /* not a boundary: c is content */
        return not_a_boundary(m);
    case MS_DASH2:
        if (c == '-') {
            if (m->in_part) {
                m->in_part = 0;
                if (m->end && cb_rc(m, m->end(m->ud)))
                    return m->rc;
            }
            m->st = MS_EPILOGUE;
            return 0;
        }
        break;
    case MS_PAD:
        if (c == ' ' || c == '\t')
            return 0;
        if (c == '\r') {
            m->st = MS_PAD_CR;
            return 0;
        }
        if (c == '\n') {
            m->crlf = 0;
            return boundary_line(m);
        }
        break;
    default: /* MS_PAD_CR */
        if (c == '\n') {
            m->crlf = 1;
            return boundary_line(m);
        }
        break;
    }
    if (first) { /* a preamble line that only looked like a boundary */
        m->st = MS_PREAMBLE;
        m->j = c == '\n' ? 1 : 0;
        return 0;
    }
    return fail(m, FX_EPARSE, "multipart: unexpected %s after the boundary that ends part %zu",
                describe(c, b), m->parts);
}

int fx_multipart_feed(struct fx_multipart *m, const char *data, size_t len, struct fx_err *err)
{
    int rc = 0;
    if (len)
        m->fed = 1;
    while (len > 0 && rc == 0) {
        switch (m->st) {
        case MS_PREAMBLE:
            rc = preamble(m, &data, &len);
            break;
        case MS_HEADERS:
            rc = headers(m, &data, &len);
            break;
        case MS_DATA:
            rc = part_data(m, &data, &len);
            break;
        case MS_EPILOGUE:
            len = 0;
            break;
        case MS_DONE:
            rc = m->rc;
            break;
        default: {
            int again;
            rc = after_boundary(m, (unsigned char)*data, &again);
            if (!again) {
                data++;
                len--;
            }
            break;
        }
        }
    }
    if (m->st == MS_DONE) {
        rc = m->rc;
        if (err && rc < 0)
            *err = m->ferr;
    }
    return rc;
}

int fx_multipart_finish(struct fx_multipart *m, struct fx_err *err)
{
    switch (m->st) {
    case MS_EPILOGUE:
        return 0;
    case MS_DONE:
        break;
    case MS_PREAMBLE:
        if (!m->fed) {
            fail(m, FX_EPARSE, "multipart: empty body");
            break;
        }
        /* fall through */
    default:
        if (m->pat_len == 0)
            fail(m, FX_EPARSE, "multipart: body ended before the first boundary ('--%s')",
                 m->boundary);
        else if (m->st == MS_HEADERS)
            fail(m, FX_EPARSE,
                 "multipart: body ended before the closing boundary (in the headers of part "
                 "%zu)",
                 m->parts);
        else
            fail(m, FX_EPARSE, "multipart: body ended before the closing boundary (in part %zu)",
                 m->parts);
        break;
    }
    if (err && m->rc < 0)
        *err = m->ferr;
    return m->rc;
}
