/* SPDX-License-Identifier: MIT */
/*
 * Header binding, row validation and dedupe keys of a compiled pipeline.
 *
 * fx_pipeline_validate is the hot path: it runs for every row of every file.
 * It never calls malloc in steady state: the binding precomputes field ->
 * column, the row's arena is reset per call and the issues array is reused.
 * Text is copied once into the arena (trimmed, NUL-terminated) so values stay
 * valid after the reader moves on; parsers from types.h do the rest. The slow
 * paths (formatting issue messages) only run for bad rows.
 */
#include "fluxo/error.h"
#include "fluxo/mem.h"
#include "fluxo/schema.h"
#include "fluxo/types.h"
#include "fluxo/util.h"
#include "schema/schema_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx_binding {
    const struct fx_pipeline *p;
    int *col; /* per field: 0-based column, or -1 when the file lacks it */
    size_t nunknown;
    char **unknown;
    int content_ok; /* the file has every dedupe.requires_columns column */
};

/* ---- issues ---- */

void fx_issues_clear(struct fx_issues *iss)
{
    iss->n = 0;
}

void fx_issues_cleanup(struct fx_issues *iss)
{
    free(iss->v);
    iss->v = NULL;
    iss->n = iss->cap = 0;
}

int fx_issues_has_error(const struct fx_issues *iss)
{
    for (size_t i = 0; i < iss->n; i++)
        if (iss->v[i].severity == FX_ISSUE_ERROR)
            return 1;
    return 0;
}

/* Copy at most cap-1 bytes, cut on a UTF-8 boundary, control characters as '?'. */
static void copy_text(char *dst, size_t cap, const char *s, size_t n)
{
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[n] = '\0';
}

static void add_issue(struct fx_issues *iss, enum fx_severity sev, int column, const char *field,
                      const char *value, size_t vlen, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static void add_issue(struct fx_issues *iss, enum fx_severity sev, int column, const char *field,
                      const char *value, size_t vlen, const char *rule, const char *fmt, ...)
{
    if (iss->n == iss->cap) {
        iss->cap = iss->cap ? 2 * iss->cap : 8;
        iss->v = fx_realloc(iss->v, iss->cap * sizeof(*iss->v));
    }
    struct fx_issue *is = &iss->v[iss->n++];
    is->severity = sev;
    is->column = column;
    copy_text(is->field, sizeof(is->field), field, strlen(field));
    copy_text(is->value, sizeof(is->value), value ? value : "", value ? vlen : 0);
    snprintf(is->rule, sizeof(is->rule), "%s", rule);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(is->reason, sizeof(is->reason), fmt, ap);
    va_end(ap);
}

/* ---- text helpers ---- */

/*
 * Per-row scratch: one arena allocation sized from the row's cells, then plain
 * pointer bumps. A field needs at most 2 * cell length + 48 bytes (raw copy,
 * then one of: cleaned text, digits with padding, e-mail, formatted date).
 */
struct bump {
    char *p;
};

static inline char *bump(struct bump *b, size_t n)
{
    char *r = b->p;
    b->p += n;
    return r;
}

static inline int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim ASCII space, tab, CR, LF and U+00A0 (no-break space, C2 A0) at both ends. */
static inline void trim(const char **s, size_t *n)
{
    const unsigned char *p = (const unsigned char *)*s, *e = p + *n;
    for (;;) {
        if (p < e && is_ws(*p))
            p++;
        else if (e - p >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
            p += 2;
        else
            break;
    }
    for (;;) {
        if (e > p && is_ws(e[-1]))
            e--;
        else if (e - p >= 2 && e[-2] == 0xC2 && e[-1] == 0xA0)
            e -= 2;
        else
            break;
    }
    *s = (const char *)p;
    *n = (size_t)(e - p);
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* ASCII replacements for U+00C0..U+00FF (second byte 0x80..0xBF after 0xC3). */
static const char *const latin1_fold[64] = {
    "A", "A", "A", "A", "A", "A", "AE", "C",  "E", "E", "E", "E", "I", "I", "I",  "I",
    "D", "N", "O", "O", "O", "O", "O",  NULL, "O", "U", "U", "U", "U", "Y", "TH", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c",  "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  NULL, "o", "u", "u", "u", "u", "y", "th", "y",
};

static inline unsigned char ascii_case(unsigned char c, unsigned rules)
{
    if ((rules & FX__CLEAN_UPPER) && c >= 'a' && c <= 'z')
        return (unsigned char)(c - 32);
    if ((rules & FX__CLEAN_LOWER) && c >= 'A' && c <= 'Z')
        return (unsigned char)(c + 32);
    return c;
}

/* 1 when collapse_spaces would change s: a run of spaces, another white-space
 * character or a no-break space (U+00A0). The common single-spaced text is
 * then used as it is, without a copy. */
static int needs_collapse(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c > ' ' && c != 0xC2)
            continue;
        if (c == ' ' ? (i + 1 < n && p[i + 1] == ' ')
                     : (c == 0xC2 ? (i + 1 < n && p[i + 1] == 0xA0) : is_ws(c)))
            return 1;
    }
    return 0;
}

/* Apply collapse_spaces / upper / lower / strip_accents; output is never longer than input. */
static char *clean_text(struct bump *a, const char *s, size_t n, unsigned rules, size_t *outlen)
{
    unsigned char *o = (unsigned char *)bump(a, n + 1);
    const unsigned char *in = (const unsigned char *)s;
    size_t j = 0;
    int in_space = 0;
    const int recase = (rules & (FX__CLEAN_UPPER | FX__CLEAN_LOWER)) != 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = in[i];
        if (c > ' ' && c < 0x80 && !recase) {
            /* the common case: a visible ASCII character, copied as is */
            o[j++] = c;
            in_space = 0;
            i++;
            continue;
        }
        if (rules & FX__CLEAN_COLLAPSE) {
            size_t w = is_ws(c) ? 1 : (c == 0xC2 && i + 1 < n && in[i + 1] == 0xA0) ? 2 : 0;
            if (w) {
                if (!in_space)
                    o[j++] = ' ';
                in_space = 1;
                i += w;
                continue;
            }
            in_space = 0;
        }
        if (c < 0x80) {
            o[j++] = ascii_case(c, rules);
            i++;
            continue;
        }
        if (c == 0xC3 && i + 1 < n && (in[i + 1] & 0xC0) == 0x80) {
            unsigned char d = in[i + 1];
            const char *r = (rules & FX__CLEAN_STRIP_ACCENTS) ? latin1_fold[d - 0x80] : NULL;
            if (r) {
                for (; *r; r++)
                    o[j++] = ascii_case((unsigned char)*r, rules);
            } else {
                if ((rules & FX__CLEAN_UPPER) && d >= 0xA0 && d <= 0xBE && d != 0xB7)
                    d -= 0x20; /* à..þ -> À..Þ, except ÷ */
                if ((rules & FX__CLEAN_LOWER) && d >= 0x80 && d <= 0x9E && d != 0x97)
                    d += 0x20; /* À..Þ -> à..þ, except × */
                o[j++] = 0xC3;
                o[j++] = d;
            }
            i += 2;
            continue;
        }
        o[j++] = c;
        i++;
    }
    o[j] = '\0';
    *outlen = j;
    return (char *)o;
}

/* A spreadsheet number cell that holds an integer may come as "123.0": drop the zero fraction. */
static void number_integer_text(const char **s, size_t *n)
{
    const char *dot = memchr(*s, '.', *n);
    if (!dot)
        return;
    for (const char *q = dot + 1; q < *s + *n; q++)
        if (*q != '0')
            return;
    *n = (size_t)(dot - *s);
}

/*
 * A spreadsheet number cell holds a binary double: a price typed as 19.99 may
 * arrive as "19.989999999999998". When such full-precision text (15+
 * significant digits) has more decimals than the field keeps, round it half
 * up to scale decimals, in text (no floating point). Returns the new length,
 * or 0 to parse the cell as it is.
 */
static size_t round_number_text(const char *t, size_t tn, int scale, char *out, size_t cap)
{
    size_t i = 0, sig = 0;
    int neg = 0;
    if (i < tn && (t[i] == '-' || t[i] == '+'))
        neg = t[i++] == '-';
    size_t int_start = i;
    while (i < tn && t[i] >= '0' && t[i] <= '9')
        i++;
    size_t int_end = i;
    if (i >= tn || t[i] != '.' || int_end == int_start)
        return 0;
    size_t frac_start = ++i;
    while (i < tn && t[i] >= '0' && t[i] <= '9')
        i++;
    if (i != tn || tn - frac_start <= (size_t)scale)
        return 0;
    for (size_t k = int_start; k < tn; k++)
        if (t[k] != '.' && (sig || t[k] != '0'))
            sig++;
    if (sig < 15 || int_end - int_start + (size_t)scale + 3 > cap)
        return 0;
    /* digits kept: integer part + scale fraction digits, then carry the rounding */
    char d[64];
    size_t n = 0;
    for (size_t k = int_start; k < int_end; k++)
        d[n++] = t[k];
    for (int k = 0; k < scale; k++)
        d[n++] = t[frac_start + (size_t)k];
    if (t[frac_start + (size_t)scale] >= '5') {
        size_t k = n;
        while (k > 0 && d[k - 1] == '9')
            d[--k] = '0';
        if (k == 0) {
            memmove(d + 1, d, n++);
            d[0] = '1';
        } else {
            d[k - 1]++;
        }
    }
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    memcpy(out + o, d, n - (size_t)scale);
    o += n - (size_t)scale;
    if (scale > 0) {
        out[o++] = '.';
        memcpy(out + o, d + n - (size_t)scale, (size_t)scale);
        o += (size_t)scale;
    }
    out[o] = '\0';
    return o;
}

/*
 * Number cells always use '.' as the decimal point and never group thousands,
 * so they are parsed here rather than by the locale-guessing money parser
 * (which would read "10.005" as ten thousand). Returns 0, FX_EPARSE with *why,
 * or 1 when the text is not a plain decimal (left to the type's parser).
 */
static int parse_number_cell(const char *t, size_t tn, int scale, int64_t *out, const char **why)
{
    char rounded[48];
    size_t rn;
    if (tn < 40 && (rn = round_number_text(t, tn, scale, rounded, sizeof(rounded))) > 0)
        t = rounded, tn = rn;
    size_t i = 0;
    int neg = 0;
    if (i < tn && (t[i] == '-' || t[i] == '+'))
        neg = t[i++] == '-';
    uint64_t v = 0;
    size_t digits = 0, frac = 0;
    int point = 0, overflow = 0;
    for (; i < tn; i++) {
        char c = t[i];
        if (c == '.' && !point) {
            point = 1;
            continue;
        }
        if (c < '0' || c > '9')
            return 1;
        if (point && ++frac > (size_t)scale) {
            if (c != '0') {
                *why = "more decimal places than the field keeps";
                return FX_EPARSE;
            }
            continue;
        }
        overflow |= v > (UINT64_MAX - 9) / 10;
        v = v * 10 + (uint64_t)(c - '0');
        digits++;
    }
    if (!digits || (point && frac == 0))
        return 1;
    for (; frac < (size_t)scale; frac++) {
        overflow |= v > UINT64_MAX / 10;
        v *= 10;
    }
    if (overflow || v > (uint64_t)INT64_MAX) {
        *why = "number too large";
        return FX_EPARSE;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* Excel serial day number (1900 system) -> days since 1970-01-01 and seconds of the day. */
static int excel_serial(const char *raw, int32_t *days, int *secs)
{
    char *end;
    double v = strtod(raw, &end);
    if (end == raw || *end || !(v >= 61.0 && v < 2958466.0))
        return -1;
    long whole = (long)v;
    long s = (long)((v - (double)whole) * 86400.0 + 0.5);
    if (s >= 86400) {
        whole++;
        s -= 86400;
    }
    *days = (int32_t)(whole - 25569);
    *secs = (int)s;
    return 0;
}

static const char *type_noun(enum fx_type t)
{
    switch (t) {
    case FX_T_INT:
        return "whole number";
    case FX_T_MONEY:
        return "amount of money";
    case FX_T_DECIMAL:
        return "decimal number";
    case FX_T_DATE:
        return "date";
    case FX_T_DATETIME:
        return "date-time";
    case FX_T_BOOL:
        return "yes/no value";
    case FX_T_EMAIL:
        return "e-mail address";
    case FX_T_CPF_CNPJ:
        return "CPF/CNPJ";
    case FX_T_CPF:
        return "CPF";
    case FX_T_CNPJ:
        return "CNPJ";
    case FX_T_PHONE:
        return "phone number";
    default:
        return "value";
    }
}

/* A bound (min / max) written back in the field's own format, for messages. */
static void format_bound(const struct fx__field *f, int64_t v, char out[40])
{
    switch (f->type) {
    case FX_T_MONEY:
        fx_format_money(v, out);
        return;
    case FX_T_DATE:
        fx_format_date((int32_t)v, out);
        return;
    case FX_T_DATETIME:
        fx_format_datetime(v, out);
        return;
    case FX_T_DECIMAL:
        if (f->scale > 0 && f->scale <= 9) {
            uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            char frac[10];
            for (int i = f->scale - 1; i >= 0; i--) {
                frac[i] = (char)('0' + m % 10);
                m /= 10;
            }
            frac[f->scale] = '\0';
            snprintf(out, 40, "%s%llu.%s", v < 0 ? "-" : "", (unsigned long long)m, frac);
            return;
        }
        break;
    default:
        break;
    }
    snprintf(out, 40, "%lld", (long long)v);
}

/* ---- binding ---- */

static int set_err(struct fx_err *err, int code, const char *source, long row, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int set_err(struct fx_err *err, int code, const char *source, long row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fx_err_vset_at(err, code, source, row, fmt, ap);
    va_end(ap);
    return code;
}

int fx_pipeline_bind(const struct fx_pipeline *p, const struct fx_record *header,
                     const char *source, struct fx_binding **out, struct fx_err *err)
{
    if (out)
        *out = NULL;
    if (!p || !header || !out)
        return fx_err_set(err, FX_EINVAL, "no pipeline or header");
    if (header->bad) {
        if (err) {
            *err = header->err;
            err->code = FX_ESCHEMA;
            if (!err->source[0])
                snprintf(err->source, sizeof(err->source), "%s", source ? source : "");
        }
        return FX_ESCHEMA;
    }
    struct fx_binding *b = fx_calloc(1, sizeof(*b));
    b->p = p;
    b->col = fx_malloc((p->nfields ? p->nfields : 1) * sizeof(int));
    for (size_t i = 0; i < p->nfields; i++)
        b->col[i] = -1;
    b->unknown = fx_calloc(header->ncells ? header->ncells : 1, sizeof(char *));
    struct fx_buf found;
    fx_buf_init(&found, 0);
    int rc = 0;
    char key[FX__KEY_CAP];
    for (size_t j = 0; j < header->ncells; j++) {
        const char *s = header->cells[j].s;
        size_t n = header->cells[j].len;
        trim(&s, &n);
        if (n == 0)
            continue;
        fx_buf_printf(&found, "%s%.*s", found.len ? ", " : "", (int)n, s);
        size_t kl = fx_name_key(s, n, key, sizeof(key));
        int fi = (kl > 0 && kl < sizeof(key) - 1) ? fx__map_get(&p->names, key, kl) : -1;
        if (fi < 0) {
            b->unknown[b->nunknown++] = fx_strndup(s, n);
        } else if (b->col[fi] >= 0) {
            const struct fx_cell *first = &header->cells[b->col[fi]];
            rc = set_err(err, FX_ESCHEMA, source, header->row,
                         "columns %d ('%.60s') and %zu ('%.60s') both map to field '%s'",
                         b->col[fi] + 1, first->s, j + 1, s, p->fields[fi].name);
            if (err) {
                err->column = (int)j + 1;
                snprintf(err->field, sizeof(err->field), "%s", p->fields[fi].name);
            }
            goto out;
        } else {
            b->col[fi] = (int)j;
        }
    }

    struct fx_buf missing;
    fx_buf_init(&missing, 0);
    for (size_t i = 0; i < p->nfields; i++)
        if (p->fields[i].need_column && b->col[i] < 0)
            fx_buf_printf(&missing, "%s%s", missing.len ? ", " : "", p->fields[i].name);
    if (missing.len) {
        rc = set_err(err, FX_ESCHEMA, source, header->row,
                     "missing columns: %s; expected: %s; found: %s", missing.data, p->expected_list,
                     found.len ? found.data : "(no headers)");
        if (err && strlen(err->reason) == sizeof(err->reason) - 1) {
            /* truncated: end on a character boundary, with an ellipsis */
            size_t k = sizeof(err->reason) - 4;
            while (k > 0 && ((unsigned char)err->reason[k] & 0xC0) == 0x80)
                k--;
            memcpy(err->reason + k, "...", 4);
        }
    }
    fx_buf_cleanup(&missing);
    if (rc)
        goto out;

    b->content_ok = 1;
    for (size_t i = 0; i < p->nneed; i++)
        if (b->col[p->need[i]] < 0)
            b->content_ok = 0;
out:
    fx_buf_cleanup(&found);
    if (rc) {
        fx_binding_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void fx_binding_free(struct fx_binding *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nunknown; i++)
        free(b->unknown[i]);
    free(b->unknown);
    free(b->col);
    free(b);
}

const struct fx_pipeline *fx_binding_pipeline(const struct fx_binding *b)
{
    return b->p;
}

size_t fx_binding_unknown(const struct fx_binding *b, const char *const **names)
{
    if (names)
        *names = (const char *const *)b->unknown;
    return b->nunknown;
}

int fx_binding_has_field(const struct fx_binding *b, size_t i)
{
    return i < b->p->nfields && b->col[i] >= 0;
}

int fx_binding_column(const struct fx_binding *b, size_t i)
{
    return i < b->p->nfields ? b->col[i] : -1;
}

/* ---- validation ---- */

void fx_row_init(struct fx_row *row, const struct fx_pipeline *p)
{
    row->n = p->nfields;
    row->v = fx_calloc(row->n ? row->n : 1, sizeof(*row->v));
    for (size_t i = 0; i < row->n; i++)
        row->v[i].s = row->v[i].raw = "";
    row->src_row = 0;
    fx_arena_init(&row->arena, 16 * 1024);
}

void fx_row_cleanup(struct fx_row *row)
{
    free(row->v);
    row->v = NULL;
    row->n = 0;
    fx_arena_cleanup(&row->arena);
}

/* Bounds on v->i; returns 0 when within. */
static int check_bounds(const struct fx__field *f, int64_t i, struct fx_issues *iss, int column,
                        const char *raw, size_t rn)
{
    char b[40];
    if (f->has_min && i < f->min) {
        format_bound(f, f->min, b);
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, raw, rn, "min", "%s must be at least %s",
                  f->name, b);
        return -1;
    }
    if (f->has_max && i > f->max) {
        format_bound(f, f->max, b);
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, raw, rn, "max", "%s must be at most %s",
                  f->name, b);
        return -1;
    }
    return 0;
}

static int check_length(const struct fx__field *f, const char *s, size_t n, size_t dflt_min,
                        size_t dflt_max, struct fx_issues *iss, int column, const char *raw,
                        size_t rn)
{
    size_t lo = f->min_length, hi = f->max_length;
    if (!lo && !hi)
        lo = dflt_min, hi = dflt_max;
    if (!lo && !hi)
        return 0;
    /* a character is 1 to 4 bytes: most values are decided by their byte length */
    if ((!hi || n <= hi) && n / 4 >= lo)
        return 0;
    size_t k = utf8_chars(s, n);
    if (hi && k > hi) {
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, raw, rn, "max_length",
                  "%s is longer than %zu characters (%zu)", f->name, hi, k);
        return -1;
    }
    if (lo && k < lo) {
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, raw, rn, "min_length",
                  "%s is shorter than %zu characters (%zu)", f->name, lo, k);
        return -1;
    }
    return 0;
}

/* CPF / CNPJ: digits, spreadsheet leading zeros, length and check digits. */
static int document_value(const struct fx__field *f, struct fx_value *v, const char *t, size_t tn,
                          enum fx_cell_type ct, struct bump *a, struct fx_issues *iss, int column)
{
    const char *why = NULL;
    size_t n = 0;
    if (ct == FX_CELL_NUMBER)
        number_integer_text(&t, &tn);
    char *d = bump(a, tn + 16);
    if (fx_parse_digits(t, tn, d, tn + 16, &n, &why) != 0) {
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, v->raw, v->raw_len, "type",
                  "%s is not a valid %s: %s", f->name, type_noun(f->type), why ? why : "");
        return -1;
    }
    /* a number cell lost its leading zeros: restore them */
    size_t want = 0;
    if (ct == FX_CELL_NUMBER && n > 0) {
        if (f->type == FX_T_CPF || (f->type == FX_T_CPF_CNPJ && n < 11))
            want = 11;
        else if (f->type == FX_T_CNPJ || (f->type == FX_T_CPF_CNPJ && n > 11 && n < 14))
            want = 14;
        if (n < want) {
            memmove(d + (want - n), d, n);
            memset(d, '0', want - n);
            n = want;
            d[n] = '\0';
        }
    }
    int ok_len = f->type == FX_T_CPF    ? n == 11
                 : f->type == FX_T_CNPJ ? n == 14
                                        : (n == 11 || n == 14);
    if (!ok_len) {
        const char *expect = f->type == FX_T_CPF    ? "11 digits"
                             : f->type == FX_T_CNPJ ? "14 digits"
                                                    : "11 or 14 digits";
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, v->raw, v->raw_len, "type",
                  "%s must have %s, got %zu", type_noun(f->type), expect, n);
        return -1;
    }
    if (f->check_digits != FX__CHECK_OFF) {
        int valid = n == 11 ? fx_cpf_valid(d) : fx_cnpj_valid(d);
        if (!valid) {
            enum fx_severity sev =
                f->check_digits == FX__CHECK_REJECT ? FX_ISSUE_ERROR : FX_ISSUE_WARN;
            add_issue(iss, sev, column, f->name, v->raw, v->raw_len, "check_digits",
                      "invalid %s check digits", n == 11 ? "CPF" : "CNPJ");
            if (sev == FX_ISSUE_ERROR)
                return -1;
        }
    }
    v->s = d;
    v->len = n;
    return 0;
}

static int date_value(const struct fx__field *f, struct fx_value *v, enum fx_cell_type ct,
                      struct bump *a, struct fx_issues *iss, int column)
{
    const char *why = NULL, *t = v->raw;
    size_t tn = v->raw_len;
    char iso[40];
    int32_t days;
    int secs, rc;
    if (ct == FX_CELL_NUMBER && excel_serial(v->raw, &days, &secs) == 0) {
        /* a date stored as a plain number: Excel serial, local time */
        int y, m, d;
        fx_civil_from_days(days, &y, &m, &d);
        tn = (size_t)snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d,
                              secs / 3600, secs / 60 % 60, secs % 60);
        t = iso;
    }
    if (f->type == FX_T_DATE) {
        rc = fx_parse_date(t, tn, &days, &why);
        v->i = days;
    } else {
        rc = fx_parse_datetime(t, tn, &v->i, &why);
    }
    if (rc != 0) {
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, v->raw, v->raw_len, "type",
                  "%s is not a valid %s: %s", f->name, type_noun(f->type), why ? why : "");
        return -1;
    }
    if (check_bounds(f, v->i, iss, column, v->raw, v->raw_len))
        return -1;
    char *s = bump(a, 24);
    if (f->type == FX_T_DATE) {
        fx_format_date((int32_t)v->i, s);
        v->len = 10;
    } else {
        fx_format_datetime(v->i, s);
        v->len = 20;
    }
    v->s = s;
    return 0;
}

static int enum_value(const struct fx__field *f, struct fx_value *v, struct fx_issues *iss,
                      int column)
{
    char key[FX__KEY_CAP];
    size_t kl = fx_name_key(v->raw, v->raw_len, key, sizeof(key));
    int code = (kl > 0 && kl < sizeof(key) - 1) ? fx__map_get(&f->labels, key, kl) : -1;
    if (code < 0) {
        if (f->default_code < 0) {
            add_issue(iss, FX_ISSUE_ERROR, column, f->name, v->raw, v->raw_len, "enum",
                      "unknown %s '%.60s' (expected one of: %.150s)", f->name, v->raw,
                      f->codes_list);
            return -1;
        }
        code = f->default_code;
        add_issue(iss, FX_ISSUE_WARN, column, f->name, v->raw, v->raw_len, "enum",
                  "unmapped label '%.60s' mapped to %s", v->raw, f->codes[code]);
    }
    v->s = f->codes[code];
    v->len = f->code_lens[code];
    return 0;
}

/* Type one trimmed, non-empty value; returns 0 when valid. */
static int field_value(const struct fx__field *f, struct fx_value *v, const char *t, size_t tn,
                       enum fx_cell_type ct, struct bump *a, struct fx_issues *iss, int column)
{
    const char *why = NULL;
    int rc = 0, b;
    size_t n;
    char *o;
    switch (f->type) {
    case FX_T_STRING:
        if (f->clean == FX__CLEAN_COLLAPSE && !needs_collapse(v->raw, v->raw_len)) {
            v->s = v->raw; /* nothing to collapse: the (trimmed) copy serves */
            v->len = v->raw_len;
        } else if (f->clean) {
            v->s = clean_text(a, v->raw, v->raw_len, f->clean, &v->len);
        } else {
            v->s = v->raw;
            v->len = v->raw_len;
        }
        return check_length(f, v->s, v->len, 0, 0, iss, column, v->raw, v->raw_len);
    case FX_T_INT:
        rc = fx_parse_int(t, tn, &v->i, &why);
        break;
    case FX_T_MONEY:
    case FX_T_DECIMAL: {
        int scale = f->type == FX_T_MONEY ? 2 : f->scale;
        rc = ct == FX_CELL_NUMBER ? parse_number_cell(t, tn, scale, &v->i, &why) : 1;
        if (rc == 1)
            rc = f->type == FX_T_MONEY ? fx_parse_money(t, tn, &v->i, &why)
                                       : fx_parse_decimal(t, tn, scale, &v->i, &why);
        break;
    }
    case FX_T_BOOL:
        rc = fx_parse_bool(t, tn, &b, &why);
        v->i = b;
        break;
    case FX_T_DATE:
    case FX_T_DATETIME:
        return date_value(f, v, ct, a, iss, column);
    case FX_T_EMAIL:
        o = bump(a, tn + 1);
        rc = fx_parse_email(t, tn, o, tn + 1, &n, &why);
        if (rc == 0) {
            v->s = o;
            v->len = n;
            return check_length(f, o, n, 0, 0, iss, column, v->raw, v->raw_len);
        }
        break;
    case FX_T_PHONE:
        if (ct == FX_CELL_NUMBER)
            number_integer_text(&t, &tn);
        o = bump(a, tn + 1);
        rc = fx_parse_digits(t, tn, o, tn + 1, &n, &why);
        if (rc == 0) {
            v->s = o;
            v->len = n;
            return check_length(f, o, n, 8, 15, iss, column, v->raw, v->raw_len);
        }
        break;
    case FX_T_CPF_CNPJ:
    case FX_T_CPF:
    case FX_T_CNPJ:
        return document_value(f, v, t, tn, ct, a, iss, column);
    case FX_T_ENUM:
        return enum_value(f, v, iss, column);
    }
    if (rc != 0) {
        add_issue(iss, FX_ISSUE_ERROR, column, f->name, v->raw, v->raw_len, "type",
                  "%s is not a valid %s: %s", f->name, type_noun(f->type), why ? why : "");
        return -1;
    }
    return check_bounds(f, v->i, iss, column, v->raw, v->raw_len);
}

int fx_pipeline_validate(const struct fx_binding *b, const struct fx_record *rec,
                         struct fx_row *row, struct fx_issues *issues)
{
    const struct fx_pipeline *p = b->p;
    fx_issues_clear(issues);
    if (row->n != p->nfields) {
        add_issue(issues, FX_ISSUE_ERROR, 0, "", "", 0, "read",
                  "row initialised for another pipeline");
        return FX_EINVAL;
    }
    fx_arena_reset(&row->arena);
    row->src_row = rec->row;
    for (size_t i = 0; i < row->n; i++) {
        struct fx_value *v = &row->v[i];
        v->present = 0;
        v->i = 0;
        v->s = v->raw = "";
        v->len = v->raw_len = 0;
    }
    if (rec->bad) {
        const struct fx_err *e = &rec->err;
        const char *field = e->field;
        for (size_t i = 0; !field[0] && e->column > 0 && i < p->nfields; i++)
            if (b->col[i] == e->column - 1) /* name the field the bad column feeds */
                field = p->fields[i].name;
        add_issue(issues, FX_ISSUE_ERROR, e->column, field, e->value, strlen(e->value), "read",
                  "%s", e->reason[0] ? e->reason : fx_strerror(e->code));
        return FX_ESCHEMA;
    }

    size_t need = 64;
    for (size_t i = 0; i < p->nfields; i++)
        if (b->col[i] >= 0 && (size_t)b->col[i] < rec->ncells)
            need += 2 * rec->cells[b->col[i]].len + 48;
    struct bump scratch = {.p = fx_arena_alloc(&row->arena, need)};
    struct bump *a = &scratch;

    for (size_t i = 0; i < p->nfields; i++) {
        const struct fx__field *f = &p->fields[i];
        int col = b->col[i];
        if (col < 0)
            continue; /* the file has no such column: null */
        struct fx_value *v = &row->v[i];
        const char *t = "";
        size_t tn = 0;
        enum fx_cell_type ct = FX_CELL_EMPTY;
        if ((size_t)col < rec->ncells) {
            t = rec->cells[col].s;
            tn = rec->cells[col].len;
            ct = rec->cells[col].type;
        }
        trim(&t, &tn);
        if (tn == 0) {
            if (f->required)
                add_issue(issues, FX_ISSUE_ERROR, col + 1, f->name, "", 0, "required",
                          "%s is required", f->name);
            continue;
        }
        char *raw = bump(a, tn + 1);
        memcpy(raw, t, tn);
        raw[tn] = '\0';
        v->raw = raw;
        v->raw_len = tn;
        if (ct == FX_CELL_ERROR) {
            add_issue(issues, FX_ISSUE_ERROR, col + 1, f->name, raw, tn, "type",
                      "%s holds a spreadsheet error (%.40s)", f->name, raw);
            continue;
        }
        if (field_value(f, v, raw, tn, ct, a, issues, col + 1) == 0) {
            v->present = 1;
        } else {
            v->i = 0;
            v->s = "";
            v->len = 0;
        }
    }

    for (size_t r = 0; r < p->nrules; r++) {
        const struct fx__rule *rule = &p->rules[r];
        size_t given = 0;
        for (size_t k = 0; k < rule->n; k++)
            given += row->v[rule->fields[k]].raw_len > 0;
        if (!given)
            add_issue(issues, FX_ISSUE_ERROR, 0, rule->fields_list, "", 0, "require_any",
                      "needs at least one of: %s", rule->fields_list);
    }
    return fx_issues_has_error(issues) ? FX_ESCHEMA : 0;
}

/* ---- dedupe ---- */

/*
 * Content encoding, per dedupe.content field in order (docs/pipelines.md):
 *   null             0x00
 *   integer or date  0x01, then i as 8 bytes little-endian (date / datetime: days / seconds)
 *   text             0x02, then the length as LEB128, then the canonical bytes
 * Unambiguous (null differs from empty, values cannot run into each other) and
 * compact, so a typical sales row is one or two BLAKE2b blocks.
 */
struct hbuf {
    struct fx_keyhash h;
    size_t n;
    unsigned char buf[512];
};

static void hb_put(struct hbuf *hb, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (hb->n + n > sizeof(hb->buf)) {
        fx_keyhash_update(&hb->h, hb->buf, hb->n);
        hb->n = 0;
        if (n > sizeof(hb->buf)) {
            fx_keyhash_update(&hb->h, data, n);
            return;
        }
    }
    memcpy(hb->buf + hb->n, data, n);
    hb->n += n;
}

static int hashes_integer(enum fx_type t)
{
    return fx_type_is_integer(t) || t == FX_T_DATE || t == FX_T_DATETIME;
}

int fx_binding_keys_by_position(const struct fx_binding *b)
{
    return !b->content_ok && !b->p->dedupe_by_content;
}

void fx_pipeline_dedupe_key(const struct fx_binding *b, const struct fx_row *row,
                            const char *source_hash, char key_out[65], char content_out[65],
                            int *by_content)
{
    const struct fx_pipeline *p = b->p;
    struct hbuf full, loose; /* all content fields / without the requires_columns ones */
    char content[65], repeat[65];
    fx_keyhash_init(&full.h);
    fx_keyhash_init(&loose.h);
    full.n = loose.n = 0;
    for (size_t k = 0; k < p->ncontent; k++) {
        const struct fx_value *v = &row->v[p->content[k]];
        int timeless = 1;
        for (size_t j = 0; j < p->nneed; j++)
            if (p->need[j] == p->content[k])
                timeless = 0;
        unsigned char head[11];
        size_t hl = 0;
        const void *tail = NULL;
        size_t tl = 0;
        if (!v->present) {
            head[hl++] = 0;
        } else if (hashes_integer(p->fields[p->content[k]].type)) {
            uint64_t x = (uint64_t)v->i;
            head[hl++] = 1;
            for (int i = 0; i < 8; i++)
                head[hl++] = (unsigned char)(x >> (8 * i));
        } else {
            head[hl++] = 2;
            size_t n = v->len;
            do {
                head[hl++] = (unsigned char)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
                n >>= 7;
            } while (n);
            tail = v->s;
            tl = v->len;
        }
        hb_put(&full, head, hl);
        hb_put(&full, tail, tl);
        if (timeless) {
            hb_put(&loose, head, hl);
            hb_put(&loose, tail, tl);
        }
    }
    fx_keyhash_update(&full.h, full.buf, full.n);
    fx_keyhash_final_hex(&full.h, content);
    fx_keyhash_update(&loose.h, loose.buf, loose.n);
    fx_keyhash_final_hex(&loose.h, repeat);
    if (content_out)
        memcpy(content_out, repeat, 65);

    if (by_content)
        *by_content = b->content_ok || p->dedupe_by_content;
    if (b->content_ok) {
        memcpy(key_out, content, 65);
        return;
    }
    if (p->dedupe_by_content) { /* no time in this file: repeats are duplicates */
        memcpy(key_out, repeat, 65);
        return;
    }
    /* position key: BLAKE2b-256 of "<source hash>:<row number>" */
    char pos[96], digits[24];
    size_t sl = source_hash ? strnlen(source_hash, 64) : 0, dl = 0;
    memcpy(pos, source_hash ? source_hash : "", sl);
    pos[sl++] = ':';
    long r = row->src_row;
    unsigned long m = r < 0 ? 0UL - (unsigned long)r : (unsigned long)r;
    do {
        digits[dl++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (r < 0)
        pos[sl++] = '-';
    while (dl)
        pos[sl++] = digits[--dl];
    fx_keyhash_hex(pos, sl, key_out);
}
