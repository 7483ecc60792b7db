/* SPDX-License-Identifier: MIT */
/*
 * CSV writer backend: UTF-8 (optional BOM), configurable delimiter and line
 * end, RFC 4180 quoting (a cell holding the delimiter, a quote, CR or LF is
 * quoted, quotes doubled), money from integer cents to "1234.56" /
 * "1234,56", and CSV-injection protection for text cells (OWASP: a cell a
 * spreadsheet would read as a formula, starting with = + - @ TAB or CR, gets
 * a leading '). Numbers in numeric columns are written as numbers: "-12.50"
 * in a money column is a value, not a formula, and must stay summable.
 *
 * Streaming: one cell at a time through a stdio buffer; memory does not
 * depend on the row count or cell sizes.
 */
#include "fluxo/mem.h"
#include "fluxo/types.h"
#include "writer_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_BUF (1u << 16)

struct csv_out {
    FILE *f;
    int is_stdout;
    char *buf;
    char *path;
};

/* "-"? digits, nothing else. */
static int is_int_text(const char *s)
{
    if (*s == '-')
        s++;
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* "-"? digits ("." digits)? */
static int is_decimal_text(const char *s)
{
    if (*s == '-')
        s++;
    const char *d = s;
    while (*s >= '0' && *s <= '9')
        s++;
    if (s == d)
        return 0;
    if (*s == '.') {
        const char *f = ++s;
        while (*s >= '0' && *s <= '9')
            s++;
        if (s == f)
            return 0;
    }
    return *s == '\0';
}

static int needs_neutralising(const char *s)
{
    return *s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r';
}

static void put_cell(FILE *f, char delim, const char *s, size_t n, int neutralise)
{
    int quote = 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (quote)
        putc('"', f);
    if (neutralise)
        putc('\'', f);
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) {
            fwrite(p, 1, (size_t)(end - p), f);
            break;
        }
        fwrite(p, 1, (size_t)(q - p) + 1, f);
        putc('"', f);
        p = q + 1;
    }
    putc('"', f);
}

static void put_text(FILE *f, char delim, const char *s)
{
    put_cell(f, delim, s, strlen(s), needs_neutralising(s));
}

/* A number as text, with '.' turned into ',' when asked. */
static void put_number(FILE *f, char delim, const char *s, int comma)
{
    char tmp[64];
    size_t n = strlen(s);
    if (!comma || n >= sizeof(tmp)) {
        put_cell(f, delim, s, n, 0);
        return;
    }
    memcpy(tmp, s, n + 1);
    char *dot = strchr(tmp, '.');
    if (dot)
        *dot = ',';
    put_cell(f, delim, tmp, n, 0);
}

static void put_value(const struct fx_writer *w, FILE *f, enum fx_col_kind kind, const char *v)
{
    char delim = w->o.csv_delimiter;
    if (!v || !*v)
        return;
    switch (kind) {
    case FX_COL_MONEY:
        if (is_int_text(v) && strlen(v) < 19) {
            char money[32];
            fx_format_money(strtoll(v, NULL, 10), money);
            put_number(f, delim, money, w->o.csv_decimal_comma);
            return;
        }
        break;
    case FX_COL_INT:
        if (is_int_text(v)) {
            put_cell(f, delim, v, strlen(v), 0);
            return;
        }
        break;
    case FX_COL_DECIMAL:
        if (is_decimal_text(v)) {
            put_number(f, delim, v, w->o.csv_decimal_comma);
            return;
        }
        break;
    case FX_COL_BOOL: {
        int b;
        if (fx_parse_bool(v, strlen(v), &b, NULL) == 0) {
            fputs(b ? "Sim" : "N\xc3\xa3o", f);
            return;
        }
        break;
    }
    case FX_COL_DATE:
    case FX_COL_DATETIME: /* canonical ISO text: unambiguous, and Excel reads it */
    case FX_COL_TEXT:
        break;
    }
    put_text(f, delim, v);
}

static void put_eol(const struct fx_writer *w, FILE *f)
{
    if (w->o.csv_crlf)
        putc('\r', f);
    putc('\n', f);
}

static int io_error(struct fx_err *err, const char *what, int e)
{
    return fx_err_set(err, FX_EIO, "%s: %s", what, strerror(e ? e : EIO));
}

static int csv_open(struct fx_writer *w, const char *path, struct fx_err *err)
{
    struct csv_out *c = fx_calloc(1, sizeof(*c));
    c->path = fx_strdup(strcmp(path, "-") == 0 ? "standard output" : path);
    if (strcmp(path, "-") == 0) {
        c->f = stdout;
        c->is_stdout = 1;
    } else {
        c->f = fopen(path, "wb");
        if (!c->f) {
            int e = errno;
            free(c->path);
            free(c);
            return io_error(err, path, e);
        }
        c->buf = fx_malloc(CSV_BUF);
        setvbuf(c->f, c->buf, _IOFBF, CSV_BUF);
    }
    w->impl = c;
    if (w->o.csv_bom)
        fputs("\xef\xbb\xbf", c->f);
    for (size_t i = 0; i < w->ncols; i++) {
        if (i)
            putc(w->o.csv_delimiter, c->f);
        put_text(c->f, w->o.csv_delimiter, w->cols[i].header);
    }
    put_eol(w, c->f);
    if (ferror(c->f)) {
        int e = errno;
        struct fx_err ignored;
        w->ops->close(w, &ignored);
        return io_error(err, path, e);
    }
    return 0;
}

static int csv_row(struct fx_writer *w, const char *const *values)
{
    struct csv_out *c = w->impl;
    for (size_t i = 0; i < w->ncols; i++) {
        if (i)
            putc(w->o.csv_delimiter, c->f);
        put_value(w, c->f, w->cols[i].kind, values[i]);
    }
    put_eol(w, c->f);
    if (ferror(c->f))
        return io_error(&w->err, c->path, errno);
    return 0;
}

static int csv_close(struct fx_writer *w, struct fx_err *err)
{
    struct csv_out *c = w->impl;
    if (!c)
        return 0;
    int rc = 0;
    int bad = ferror(c->f);
    int e = errno;
    if (c->is_stdout) {
        if (fflush(c->f) != 0 || bad)
            rc = io_error(err, c->path, bad ? e : errno);
    } else {
        if (fclose(c->f) != 0 || bad)
            rc = io_error(err, c->path, bad ? e : errno);
    }
    free(c->path);
    free(c->buf);
    free(c);
    w->impl = NULL;
    return rc;
}

const struct fx_writer_ops fx_writer_csv_ops = {
    .name = "csv",
    .stdout_ok = 1,
    .open = csv_open,
    .row = csv_row,
    .close = csv_close,
};
