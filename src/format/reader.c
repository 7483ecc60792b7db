/* SPDX-License-Identifier: MIT */
/* Record-reader front: format detection by content and dispatch to backends. */
#include "fluxo/reader.h"
#include "fluxo/csv.h"
#include "fluxo/mem.h"
#include "fluxo/xlsx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

/* Sniff the first bytes: a ZIP container is an XLSX workbook, an OLE
 * container a legacy XLS workbook (or an encrypted OOXML one, which the XLS
 * opener refuses); a spreadsheet extension on anything else is refused as a
 * corrupt workbook; everything else is treated as delimited text. */
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
    if (n >= 4 && (memcmp(magic, "PK\x03\x04", 4) == 0 || memcmp(magic, "PK\x05\x06", 4) == 0))
        return fx_xlsx_reader_open(path, opts, out, err);
    if (n >= 8 && memcmp(magic, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) == 0)
        return fx_xls_reader_open(path, opts, out, err);
    static const char *const sheet_ext[] = {".xlsx", ".xlsm", ".xls"};
    for (size_t i = 0; i < sizeof(sheet_ext) / sizeof(sheet_ext[0]); i++) {
        if (n > 0 && has_ext(path, sheet_ext[i])) {
            int rc = fx_err_set(err, FX_EPARSE,
                                "file is named %s but is not a spreadsheet (neither a ZIP nor an "
                                "OLE container): corrupt or mislabelled",
                                sheet_ext[i]);
            if (err)
                snprintf(err->source, sizeof(err->source), "%s", path);
            return rc;
        }
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
