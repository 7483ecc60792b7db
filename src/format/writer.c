/* SPDX-License-Identifier: MIT */
/*
 * Front of the tabular writers: picks the backend by format name, copies the
 * columns and options, checks arguments, keeps the first row error sticky
 * (so a caller can stream every row and look at the result once, at close)
 * and counts rows. The formats themselves live in csv_write.c and xlsx_write.c.
 */
#include "fluxo/mem.h"
#include "writer_int.h"

#include <stdlib.h>
#include <string.h>

static const struct fx_writer_ops *const backends[] = {&fx_writer_csv_ops, &fx_writer_xlsx_ops};

void fx_writer_opts_init(struct fx_writer_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->csv_bom = 1;
    o->csv_delimiter = ';';
}

size_t fx__utf8_chars(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void free_writer(struct fx_writer *w)
{
    for (size_t i = 0; i < w->ncols; i++) {
        free((char *)w->cols[i].name);
        free((char *)w->cols[i].header);
    }
    free(w->cols);
    free(w);
}

int fx_writer_open(const char *format, const char *path, const struct fx_col *cols, size_t ncols,
                   const struct fx_writer_opts *o, struct fx_writer **out, struct fx_err *err)
{
    *out = NULL;
    const struct fx_writer_ops *ops = NULL;
    for (size_t i = 0; format && i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, format) == 0)
            ops = backends[i];
    if (!ops)
        return fx_err_set(err, FX_EINVAL, "unknown output format '%s' (csv or xlsx)",
                          format ? format : "(null)");
    if (!path || !*path)
        return fx_err_set(err, FX_EINVAL, "no output file given");
    if (strcmp(path, "-") == 0 && !ops->stdout_ok)
        return fx_err_set(err, FX_EINVAL, "%s cannot be written to standard output; name a file",
                          ops->name);
    if (ncols == 0 || !cols)
        return fx_err_set(err, FX_EINVAL, "no columns to write");
    struct fx_writer_opts def;
    fx_writer_opts_init(&def);
    if (!o)
        o = &def;
    char d = o->csv_delimiter;
    if (d != ';' && d != ',' && d != '\t' && d != '|')
        return fx_err_set(err, FX_EINVAL, "CSV delimiter must be ';', ',', '|' or a tab");
    if (o->csv_decimal_comma && d == ',')
        return fx_err_set(err, FX_EINVAL,
                          "a decimal comma needs a delimiter other than ',' (use ';')");
    for (size_t i = 0; i < ncols; i++)
        if (!cols[i].name || (unsigned)cols[i].kind > FX_COL_BOOL)
            return fx_err_set(err, FX_EINVAL, "column %zu has no name or an unknown kind", i + 1);

    struct fx_writer *w = fx_calloc(1, sizeof(*w));
    w->ops = ops;
    w->o = *o;
    w->cols = fx_calloc(ncols, sizeof(*w->cols));
    w->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        w->cols[i].name = fx_strdup(cols[i].name);
        w->cols[i].header = fx_strdup(cols[i].header ? cols[i].header : cols[i].name);
        w->cols[i].kind = cols[i].kind;
    }
    /* option strings are only read during open; do not keep the caller's pointers */
    int rc = ops->open(w, path, err);
    w->o.sheet_name = NULL;
    w->o.tz = NULL;
    w->o.tmpdir = NULL;
    if (rc != 0) {
        free_writer(w);
        return rc;
    }
    *out = w;
    return 0;
}

int fx_writer_row(struct fx_writer *w, const char *const *values)
{
    if (!w || !values)
        return FX_EINVAL;
    if (w->failed)
        return w->failed;
    int rc = w->ops->row(w, values);
    if (rc != 0) {
        w->failed = rc;
        if (w->err.code == 0)
            fx_err_set(&w->err, rc, "writing row %llu failed: %s", (unsigned long long)w->rows + 1,
                       fx_strerror(rc));
        return rc;
    }
    w->rows++;
    return 0;
}

uint64_t fx_writer_rows(const struct fx_writer *w)
{
    return w ? w->rows : 0;
}

int fx_writer_close(struct fx_writer *w, struct fx_err *err)
{
    if (!w)
        return 0;
    struct fx_err cerr;
    fx_err_clear(&cerr);
    int rc = w->ops->close(w, &cerr);
    if (w->failed) {
        rc = w->failed;
        if (err)
            *err = w->err;
    } else if (rc != 0 && err) {
        *err = cerr;
    }
    free_writer(w);
    return rc;
}
