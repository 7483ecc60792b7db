/* SPDX-License-Identifier: MIT */
/*
 * JSON records (fluxo/jsonrec.h): turns a request body holding one JSON object, an
 * array of objects or NDJSON into flat records, pushed to a callback as the bytes come
 * in from the HTTP server, in chunks of any size.
 *
 * Design notes
 *
 * Why a scanner in front of jansson. jansson parses a whole document from memory and
 * has no incremental API: handing it a 100 MB array would mean buffering the body and
 * then holding the whole tree. So the parser finds where each record ends by itself
 * and gives jansson one record at a time (json_loadb with JSON_REJECT_DUPLICATES):
 *  - NDJSON: a record is a line (JSON text cannot hold a raw '\n'), found with memchr;
 *  - JSON: a record is an object; a small scanner follows strings, escapes and the
 *    bracket depth to find the '}' that closes it, and checks the array punctuation
 *    ('[', ',', ']') between records itself. It does not validate anything else: what
 *    lies between the braces is jansson's to judge, so a malformed element is reported
 *    as a bad record and the next element is read.
 * Only one record's text is ever buffered (and only when it straddles two chunks: a
 * record that lies whole inside a chunk is parsed in place), bounded by
 * max_record_bytes, so memory does not grow with the body.
 *
 * Split independence. Every piece of state (BOM bytes matched, inside a string, after
 * a backslash, depth, line and column) lives in the parser, never in a local that a
 * chunk end would lose, and limits are checked on the record's total length, so the
 * same body gives the same records and errors however it is cut.
 *
 * Limits. NDJSON: a line over max_record_bytes (its '\r' '\n' excluded) is a bad record
 * and skipped without storing it. JSON: an object over max_record_bytes is fatal, as
 * the task's contract for arrays asks (the body is refused rather than silently
 * truncated). max_fields and max_depth are checked while flattening.
 *
 * Positions. Lines count '\n'; columns count characters (UTF-8 lead bytes), like
 * jansson's own, so an error jansson reports inside a record translates to the body's
 * line and column by adding the record's start. A leading UTF-8 BOM is skipped.
 */
#include "fluxo/jsonrec.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum state {
    ST_BOM,       /* matching a leading UTF-8 BOM */
    ST_START,     /* JSON: before the first non-blank byte */
    ST_LINE,      /* NDJSON: inside a line (buffered in p->rec while it straddles chunks) */
    ST_SKIP,      /* NDJSON: inside a line over max_record_bytes, not stored */
    ST_ELEM,      /* JSON: inside an object (the body's or an array element) */
    ST_ARR_OPEN,  /* after '[' */
    ST_ARR_NEXT,  /* after ',' */
    ST_ARR_AFTER, /* after an element */
    ST_TRAIL,     /* after the closing ']' or the body's object: only blanks allowed */
    ST_DONE,      /* stopped by a callback or a fatal error: p->rc is returned */
};

struct fx_jsonrec_parser {
    struct fx_jsonrec_opts o;
    fx_jsonrec_cb cb;
    fx_jsonrec_bad_cb bad;
    void *ud;

    enum state st;
    int rc;             /* ST_DONE: what every call returns */
    struct fx_err ferr; /* ST_DONE: the error every call copies out */
    int finished;
    int bom;   /* BOM bytes matched */
    int array; /* JSON: the body is an array */

    long line; /* line of the last byte consumed (1-based) */
    long col;  /* column of the last byte consumed (0 = none yet on this line) */
    long arr_line, arr_col;

    /* the record being collected */
    size_t index; /* records started so far */
    struct fx_buf rec;
    long rec_line, rec_col;
    size_t rec_len;  /* JSON: bytes of the element scanned so far */
    int in_str, esc; /* JSON scanner */
    size_t depth;
    int skip_nonblank; /* ST_SKIP: the skipped line has a non-blank byte */

    /* the record handed to the callback */
    const char **names;
    struct fx_cell *cells;
    size_t n, cap;
    struct fx_arena arena;
};

static const unsigned char bom_bytes[3] = {0xEF, 0xBB, 0xBF};

void fx_jsonrec_opts_init(struct fx_jsonrec_opts *o)
{
    o->ndjson = 0;
    o->max_record_bytes = 1u << 20;
    o->max_fields = 1024;
    o->max_depth = 8;
}

struct fx_jsonrec_parser *fx_jsonrec_new(const struct fx_jsonrec_opts *o, fx_jsonrec_cb cb,
                                         fx_jsonrec_bad_cb bad, void *ud)
{
    struct fx_jsonrec_parser *p = fx_calloc(1, sizeof(*p));
    struct fx_jsonrec_opts d;
    fx_jsonrec_opts_init(&d);
    p->o = o ? *o : d;
    if (!p->o.max_record_bytes)
        p->o.max_record_bytes = d.max_record_bytes;
    if (!p->o.max_fields)
        p->o.max_fields = d.max_fields;
    if (!p->o.max_depth)
        p->o.max_depth = d.max_depth;
    p->cb = cb;
    p->bad = bad;
    p->ud = ud;
    p->st = ST_BOM;
    p->line = 1;
    /* one spare byte: an NDJSON line may hold max_record_bytes plus its '\r' */
    fx_buf_init(&p->rec, p->o.max_record_bytes + 1);
    fx_arena_init(&p->arena, 4096);
    return p;
}

void fx_jsonrec_free(struct fx_jsonrec_parser *p)
{
    if (!p)
        return;
    fx_buf_cleanup(&p->rec);
    fx_arena_cleanup(&p->arena);
    free(p->names);
    free(p->cells);
    free(p);
}

/* ---- errors -------------------------------------------------------------- */

/* Copy src into dst (cap bytes) with control bytes and invalid UTF-8 replaced by '?':
 * jansson quotes the offending input in its messages, and reasons end up in JSON. */
static void printable(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src), o = 0, i = 0;
    while (i < n) {
        size_t end = i + fx__csv_utf8_check(src + i, n - i);
        while (i < end) { /* whole sequences only, so dst is never cut inside one */
            unsigned char c = (unsigned char)src[i];
            size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (o + l + 1 > cap)
                goto done;
            if (l == 1)
                dst[o] = c < 0x20 || c == 0x7f ? '?' : (char)c;
            else
                memcpy(dst + o, src + i, l);
            o += l;
            i += l;
        }
        if (i < n) {
            if (o + 2 > cap)
                goto done;
            dst[o++] = '?';
            i++;
        }
    }
done:
    dst[o] = '\0';
}

/* "'x'" for a printable byte, else "byte 0xNN". */
static const char *describe(unsigned char c, char buf[16])
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

static int clamp_col(long col)
{
    return col > 0x7fffffffL ? 0x7fffffff : (int)col;
}

static int stop(struct fx_jsonrec_parser *p, int rc)
{
    p->st = ST_DONE;
    p->rc = rc;
    return rc;
}

/* A fatal error of the whole body at line/col. */
static int fatal(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fatal(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fx_err_vset_at(&p->ferr, code, NULL, line, fmt, ap);
    va_end(ap);
    p->ferr.column = clamp_col(col);
    if (err)
        *err = p->ferr;
    return stop(p, code);
}

/* A bad record (p->index) starting at line/col: to the bad callback, or fatal without one. */
static int bad(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
               const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int bad(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
               const char *field, const char *fmt, ...)
{
    struct fx_err e;
    char why[sizeof(e.reason)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fx_err_set_at(&e, code, NULL, (long)p->index, "record %zu (line %ld, column %ld): %s", p->index,
                  line, col, why);
    e.column = clamp_col(col);
    if (field)
        printable(e.field, sizeof(e.field), field);
    if (!p->bad) {
        p->ferr = e;
        if (err)
            *err = e;
        return stop(p, code);
    }
    int rc = p->bad(p->ud, p->index, &e);
    if (rc) {
        fx_err_clear(&p->ferr);
        return stop(p, rc);
    }
    return 0;
}

/* ---- one record ------------------------------------------------------------- */

/* Why flattening refused the record: filled by add/flatten, reported by record(). */
struct why {
    int code;
    const char *field;
    char text[256];
};

static int refuse(struct why *w, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(struct why *w, int code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof(w->text), fmt, ap);
    va_end(ap);
    w->code = code;
    w->field = field;
    return code;
}

static int add(struct fx_jsonrec_parser *p, const char *name, const char *s, size_t len,
               enum fx_cell_type type, struct why *w)
{
    if (p->n == p->o.max_fields)
        return refuse(w, FX_ETOOBIG, NULL, "more than %zu fields (max_fields)", p->o.max_fields);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        if (cap > p->o.max_fields)
            cap = p->o.max_fields;
        p->names = fx_realloc(p->names, cap * sizeof(*p->names));
        p->cells = fx_realloc(p->cells, cap * sizeof(*p->cells));
        p->cap = cap;
    }
    p->names[p->n] = name;
    p->cells[p->n] = (struct fx_cell){.s = s, .len = len, .type = len ? type : FX_CELL_EMPTY};
    p->n++;
    return 0;
}

/* Decimal digits of v into buf (at least 21 bytes); snprintf is a measurable share of
 * the time per record, and most values are integers. */
static size_t int_text(json_int_t v, char *buf)
{
    char tmp[24];
    size_t n = 0, o = 0;
    /* work on the negative side: it holds INT64_MIN */
    json_int_t x = v < 0 ? v : -v;
    do {
        tmp[n++] = (char)('0' - x % 10);
        x /= 10;
    } while (x);
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    return o;
}

/* Shortest of %.15g, %.16g, %.17g that reads back as the same double: 3500.1 stays
 * "3500.1" instead of the exact binary expansion. Whole numbers below 1e15 (where %.15g
 * prints every digit) take the integer path. */
static size_t real_text(double d, char *buf, size_t cap)
{
    if (d > -1e15 && d < 1e15 && d == (double)(json_int_t)d && !(d == 0 && signbit(d)))
        return int_text((json_int_t)d, buf);
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

static int flatten(struct fx_jsonrec_parser *p, json_t *obj, const char *prefix, size_t plen,
                   size_t depth, int *nested, struct why *w)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        const char *name = key;
        size_t nlen = json_object_iter_key_len(it);
        if (prefix) {
            char *nm = fx_arena_alloc(&p->arena, plen + 1 + nlen + 1);
            memcpy(nm, prefix, plen);
            nm[plen] = '.';
            memcpy(nm + plen + 1, key, nlen + 1);
            name = nm;
            nlen += plen + 1;
        }
        int rc = 0;
        switch (json_typeof(v)) {
        case JSON_OBJECT:
            if (depth >= p->o.max_depth)
                return refuse(w, FX_ETOOBIG, name,
                              "field '%s': objects nested deeper than %zu levels (max_depth)", name,
                              p->o.max_depth);
            *nested = 1;
            rc = flatten(p, v, name, nlen, depth + 1, nested, w);
            break;
        case JSON_ARRAY:
            return refuse(w, FX_ENOTSUP, name, "field '%s': arrays are not supported", name);
        case JSON_STRING:
            rc = add(p, name, json_string_value(v), json_string_length(v), FX_CELL_STRING, w);
            break;
        case JSON_INTEGER: {
            char *b = fx_arena_alloc(&p->arena, 24);
            rc = add(p, name, b, int_text(json_integer_value(v), b), FX_CELL_NUMBER, w);
            break;
        }
        case JSON_REAL: {
            char *b = fx_arena_alloc(&p->arena, 32);
            rc = add(p, name, b, real_text(json_real_value(v), b, 32), FX_CELL_NUMBER, w);
            break;
        }
        case JSON_TRUE:
            rc = add(p, name, "true", 4, FX_CELL_BOOL, w);
            break;
        case JSON_FALSE:
            rc = add(p, name, "false", 5, FX_CELL_BOOL, w);
            break;
        case JSON_NULL:
            rc = add(p, name, "", 0, FX_CELL_EMPTY, w);
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Flattening can make two keys collide ({"a.b": 1, "a": {"b": 2}}): refuse that. */
static int check_unique(struct fx_jsonrec_parser *p, struct why *w)
{
    if (p->n < 2)
        return 0;
    const char **v = fx_arena_alloc(&p->arena, p->n * sizeof(*v));
    memcpy(v, p->names, p->n * sizeof(*v));
    qsort(v, p->n, sizeof(*v), cmp_name);
    for (size_t i = 1; i < p->n; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            return refuse(w, FX_EPARSE, v[i],
                          "field '%s' appears twice once nested objects are flattened", v[i]);
    return 0;
}

static const char *kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    default:
        return "an object";
    }
}

/* Parse s[0..n), the text of record p->index starting at line/col, and deliver it. */
static int record(struct fx_jsonrec_parser *p, const char *s, size_t n, long line, long col,
                  struct fx_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        long el = line, ec = col;
        if (je.line >= 1 && je.column >= 0) {
            el = line + je.line - 1;
            ec = je.line == 1 ? col + je.column - 1 : je.column;
            if (ec < 1)
                ec = 1;
        }
        char text[sizeof(je.text)];
        printable(text, sizeof(text), je.text);
        int code = json_error_code(&je) == json_error_invalid_utf8 ? FX_EENCODING : FX_EPARSE;
        return bad(p, err, code, el, ec, NULL, "%s", text);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc =
            bad(p, err, FX_EPARSE, line, col, NULL, "expected a JSON object, found %s", kind(root));
        goto out;
    }
    struct why w = {0};
    int nested = 0;
    p->n = 0;
    fx_arena_reset(&p->arena);
    if (flatten(p, root, NULL, 0, 1, &nested, &w) || (nested && check_unique(p, &w))) {
        rc = bad(p, err, w.code, line, col, w.field, "%s", w.text);
        goto out;
    }
    if (p->cb) {
        struct fx_jsonrec r = {
            .index = p->index, .line = line, .n = p->n, .names = p->names, .cells = p->cells};
        rc = p->cb(p->ud, &r);
        if (rc) {
            fx_err_clear(&p->ferr);
            stop(p, rc);
        }
    }
out:
    json_decref(root);
    return rc;
}

/* ---- NDJSON ----------------------------------------------------------------- */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != 0x1E)
            return 0;
    return 1;
}

static int line_too_long(struct fx_jsonrec_parser *p, struct fx_err *err)
{
    p->index++;
    return bad(p, err, FX_ETOOBIG, p->line, 1, NULL,
               "line longer than %zu bytes (max_record_bytes)", p->o.max_record_bytes);
}

/* One whole line, its '\n' excluded. */
static int ndjson_line(struct fx_jsonrec_parser *p, const char *s, size_t n, struct fx_err *err)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (is_blank(s, n))
        return 0;
    if (n > p->o.max_record_bytes)
        return line_too_long(p, err);
    p->index++;
    /* RFC 7464 (application/json-seq) puts an RS before each text */
    size_t rs = 0;
    while (rs < n && s[rs] == 0x1E)
        rs++;
    return record(p, s + rs, n - rs, p->line, 1 + (long)rs, err);
}

/* Consume NDJSON bytes; returns after each line so the caller can check for a stop. */
static int ndjson(struct fx_jsonrec_parser *p, const char **dp, size_t *np, struct fx_err *err)
{
    const char *d = *dp;
    size_t n = *np;
    const char *nl = memchr(d, '\n', n);
    size_t k = nl ? (size_t)(nl - d) : n;
    size_t room = p->o.max_record_bytes + 1; /* the line and its '\r' */
    int rc = 0;
    if (p->st == ST_SKIP) {
        if (!p->skip_nonblank)
            p->skip_nonblank = !is_blank(d, k);
        if (nl) {
            if (p->skip_nonblank)
                rc = line_too_long(p, err);
            p->st = ST_LINE;
        }
    } else if (p->rec.len + k > room) {
        p->skip_nonblank = !is_blank(p->rec.data, p->rec.len) || !is_blank(d, k);
        fx_buf_reset(&p->rec);
        p->st = ST_SKIP;
        if (nl) {
            if (p->skip_nonblank)
                rc = line_too_long(p, err);
            p->st = ST_LINE;
        }
    } else if (!nl) {
        fx_buf_append(&p->rec, d, k);
    } else if (p->rec.len == 0) {
        rc = ndjson_line(p, d, k, err); /* whole line in this chunk: parse in place */
    } else {
        fx_buf_append(&p->rec, d, k);
        rc = ndjson_line(p, p->rec.data, p->rec.len, err);
        fx_buf_reset(&p->rec);
    }
    if (nl) {
        p->line++;
        k++;
    }
    *dp = d + k;
    *np = n - k;
    return rc;
}

/* ---- JSON: object or array ------------------------------------------------- */

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Account for one consumed byte in line/column. */
static void step(struct fx_jsonrec_parser *p, unsigned char c)
{
    if (c == '\n') {
        p->line++;
        p->col = 0;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

static void begin_elem(struct fx_jsonrec_parser *p)
{
    p->index++;
    p->st = ST_ELEM;
    p->rec_line = p->line;
    p->rec_col = p->col + 1;
    p->rec_len = 0;
    p->in_str = p->esc = 0;
    p->depth = 0;
    fx_buf_reset(&p->rec);
}

/* Scan the element from d: consumes up to and including its closing brace. */
static int elem(struct fx_jsonrec_parser *p, const char **dp, size_t *np, struct fx_err *err)
{
    const unsigned char *d = (const unsigned char *)*dp;
    size_t n = *np, i = 0;
    int done = 0;
    for (; i < n; i++) {
        unsigned char c = d[i];
        step(p, c);
        if (p->in_str) {
            if (p->esc)
                p->esc = 0;
            else if (c == '\\')
                p->esc = 1;
            else if (c == '"')
                p->in_str = 0;
        } else if (c == '"') {
            p->in_str = 1;
        } else if (c == '{' || c == '[') {
            p->depth++;
        } else if ((c == '}' || c == ']') && --p->depth == 0) {
            i++;
            done = 1;
            break;
        }
    }
    *dp += i;
    *np -= i;
    p->rec_len += i;
    if (p->rec_len > p->o.max_record_bytes)
        return fatal(p, err, FX_ETOOBIG, p->rec_line, p->rec_col,
                     "record %zu (line %ld, column %ld) is longer than %zu bytes "
                     "(max_record_bytes)",
                     p->index, p->rec_line, p->rec_col, p->o.max_record_bytes);
    p->st = done ? (p->array ? ST_ARR_AFTER : ST_TRAIL) : ST_ELEM;
    if (!done) {
        fx_buf_append(&p->rec, d, i);
        return 0;
    }
    if (p->rec.len == 0) /* whole element in this chunk: parse in place */
        return record(p, (const char *)d, i, p->rec_line, p->rec_col, err);
    fx_buf_append(&p->rec, d, i);
    int rc = record(p, p->rec.data, p->rec.len, p->rec_line, p->rec_col, err);
    fx_buf_reset(&p->rec);
    return rc;
}

/* One significant (non-blank) byte c between records, at p->line/p->col once stepped. */
static int punct(struct fx_jsonrec_parser *p, unsigned char c, struct fx_err *err)
{
    char b[16];
    if (c == '{' && (p->st == ST_START || p->st == ST_ARR_OPEN || p->st == ST_ARR_NEXT)) {
        begin_elem(p); /* the scanner consumes the '{' */
        return 0;
    }
    step(p, c);
    switch (p->st) {
    case ST_START:
        if (c == '[') {
            p->array = 1;
            p->arr_line = p->line;
            p->arr_col = p->col;
            p->st = ST_ARR_OPEN;
            return 0;
        }
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "line %ld, column %ld: expected a JSON object or an array of objects, "
                     "found %s",
                     p->line, p->col, describe(c, b));
    case ST_ARR_OPEN:
        if (c == ']') {
            p->st = ST_TRAIL;
            return 0;
        }
        /* fall through */
    case ST_ARR_NEXT:
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "line %ld, column %ld: array element %zu is not an object (found %s)", p->line,
                     p->col, p->index + 1, describe(c, b));
    case ST_ARR_AFTER:
        if (c == ',') {
            p->st = ST_ARR_NEXT;
            return 0;
        }
        if (c == ']') {
            p->st = ST_TRAIL;
            return 0;
        }
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "line %ld, column %ld: expected ',' or ']' after array element %zu, "
                     "found %s",
                     p->line, p->col, p->index, describe(c, b));
    default: /* ST_TRAIL */
        if (!p->array && c == '{')
            return fatal(p, err, FX_EPARSE, p->line, p->col,
                         "line %ld, column %ld: another object after the JSON object (one "
                         "object per line is NDJSON: send it as application/x-ndjson)",
                         p->line, p->col);
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "line %ld, column %ld: unexpected %s after the closing %s", p->line, p->col,
                     describe(c, b), p->array ? "']' of the array" : "'}' of the JSON object");
    }
}

/* ---- driver ------------------------------------------------------------------ */

static enum state first_state(const struct fx_jsonrec_parser *p)
{
    return p->o.ndjson ? ST_LINE : ST_START;
}

static int run(struct fx_jsonrec_parser *p, const char *d, size_t n, struct fx_err *err)
{
    int rc = 0;
    while (n > 0 && rc == 0) {
        switch (p->st) {
        case ST_BOM:
            if ((unsigned char)*d == bom_bytes[p->bom]) {
                d++;
                n--;
                if (++p->bom == 3)
                    p->st = first_state(p);
            } else {
                /* not a BOM after all: its bytes so far are ordinary input */
                int k = p->bom;
                p->st = first_state(p);
                if (k)
                    rc = run(p, (const char *)bom_bytes, (size_t)k, err);
            }
            break;
        case ST_LINE:
        case ST_SKIP:
            rc = ndjson(p, &d, &n, err);
            break;
        case ST_ELEM:
            rc = elem(p, &d, &n, err);
            break;
        case ST_DONE:
            return p->rc;
        default:
            while (n > 0 && is_ws((unsigned char)*d)) {
                step(p, (unsigned char)*d);
                d++;
                n--;
            }
            if (n > 0) {
                unsigned char c = (unsigned char)*d;
                if (c != '{' || p->st == ST_ARR_AFTER || p->st == ST_TRAIL) {
                    d++;
                    n--;
                }
                rc = punct(p, c, err);
            }
            break;
        }
    }
    return rc;
}

int fx_jsonrec_feed(struct fx_jsonrec_parser *p, const char *data, size_t len, struct fx_err *err)
{
    if (p->st == ST_DONE) {
        if (err && p->rc < 0)
            *err = p->ferr;
        return p->rc;
    }
    if (p->finished)
        return fx_err_set(err, FX_EINVAL, "fx_jsonrec_feed called after fx_jsonrec_finish");
    int rc = run(p, data, len, err);
    if (rc < 0 && err && p->st == ST_DONE)
        *err = p->ferr;
    return rc;
}

int fx_jsonrec_finish(struct fx_jsonrec_parser *p, struct fx_err *err)
{
    int rc = 0;
    if (p->st == ST_DONE)
        goto out;
    if (p->finished)
        return 0;
    p->finished = 1;
    if (p->st == ST_BOM) {
        int k = p->bom;
        p->st = first_state(p);
        if (k && (rc = run(p, (const char *)bom_bytes, (size_t)k, err)))
            goto out;
    }
    switch (p->st) {
    case ST_LINE:
        if (p->rec.len) {
            rc = ndjson_line(p, p->rec.data, p->rec.len, err);
            fx_buf_reset(&p->rec);
        }
        break;
    case ST_SKIP:
        if (p->skip_nonblank)
            rc = line_too_long(p, err);
        p->st = ST_LINE;
        break;
    case ST_ELEM:
        if (p->array)
            rc = fatal(p, err, FX_EPARSE, p->rec_line, p->rec_col,
                       "body ended inside array element %zu (line %ld, column %ld): the "
                       "object is not closed",
                       p->index, p->rec_line, p->rec_col);
        else
            rc = fatal(p, err, FX_EPARSE, p->rec_line, p->rec_col,
                       "body ended inside the JSON object that starts at line %ld, column %ld",
                       p->rec_line, p->rec_col);
        break;
    case ST_ARR_OPEN:
    case ST_ARR_NEXT:
    case ST_ARR_AFTER:
        rc = fatal(p, err, FX_EPARSE, p->line, p->col,
                   "body ended before the closing ']' of the array that starts at line %ld, "
                   "column %ld",
                   p->arr_line, p->arr_col);
        break;
    default:
        break;
    }
    if (rc)
        goto out;
    if (p->st == ST_START || (p->o.ndjson && p->index == 0))
        rc = fatal(p, err, FX_EEMPTY, 0, 0,
                   "empty body: expected a JSON object, an array of objects or NDJSON");
out:
    if (p->st == ST_DONE) {
        rc = p->rc;
        if (err && rc < 0)
            *err = p->ferr;
    }
    return rc;
}
