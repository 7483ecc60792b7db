/* SPDX-License-Identifier: MIT */
/* Record-reader front: format detection by content and dispatch to backends. */
#include "fluxo/reader.h"
#include "fluxo/csv.h"
#include "fluxo/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fx_reader {
    const struct fx_reader_ops *ops;
    void *self;
    char *source;
};

void fx_reader_opts_init(struct fx_reader_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_line_bytes = 1 << 20;
    opts->max_field_bytes = 64 << 10;
    opts->max_fields = 1024;
}

struct fx_reader *fx_reader_wrap(const struct fx_reader_ops *ops, void *self, const char *source)
{
    struct fx_reader *r = fx_calloc(1, sizeof(*r));
    r->ops = ops;
    r->self = self;
    r->source = fx_strdup(source ? source : "-");
    return r;
}

/* Sniff the first bytes: spreadsheets are refused with a clear reason until
 * their readers exist; anything else is treated as delimited text. */
int fx_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                   struct fx_err *err)
{
    *out = NULL;
    struct fx_reader_opts defaults;
    if (!opts) {
        fx_reader_opts_init(&defaults);
        opts = &defaults;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        fx_err_set(err, FX_EIO, "cannot open file: %s", strerror(e));
        if (err)
            snprintf(err->source, sizeof(err->source), "%s", path);
        return FX_EIO;
    }
    unsigned char magic[8] = {0};
    size_t n = fread(magic, 1, sizeof(magic), f);
    fclose(f);
    int rc = 0;
    if (n >= 4 && memcmp(magic, "PK\x03\x04", 4) == 0) {
        rc = fx_err_set(err, FX_ENOTSUP,
                        "file is a ZIP container (XLSX?): spreadsheet input is not supported yet; "
                        "export the sheet as CSV");
    } else if (n >= 8 && memcmp(magic, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) == 0) {
        rc = fx_err_set(err, FX_ENOTSUP,
                        "file is a legacy Excel workbook (XLS): not supported yet; export the "
                        "sheet as CSV");
    }
    if (rc) {
        if (err)
            snprintf(err->source, sizeof(err->source), "%s", path);
        return rc;
    }
    return fx_csv_reader_open(path, opts, out, err);
}

int fx_reader_next(struct fx_reader *r, struct fx_record *rec, struct fx_err *err)
{
    int rc = r->ops->next(r->self, rec, err);
    if (rc < 0 && err && !err->source[0])
        snprintf(err->source, sizeof(err->source), "%s", r->source);
    if (rc == 1 && rec->bad && !rec->err.source[0])
        snprintf(rec->err.source, sizeof(rec->err.source), "%s", r->source);
    return rc;
}

const char *fx_reader_format(const struct fx_reader *r)
{
    return r->ops->name;
}

const char *fx_reader_source(const struct fx_reader *r)
{
    return r->source;
}

void fx_reader_progress(const struct fx_reader *r, long long *done, long long *total)
{
    *done = 0;
    *total = 0;
    r->ops->progress(r->self, done, total);
}

void fx_reader_free(struct fx_reader *r)
{
    if (!r)
        return;
    r->ops->free(r->self);
    free(r->source);
    free(r);
}
