/* SPDX-License-Identifier: MIT */
/*
 * Record readers: one interface over every tabular input (CSV today, XLSX and
 * XLS next). A reader is opened on a file, detects what it needs (format by
 * content, text encoding, delimiter) and is then pulled one record at a time.
 *
 * Errors come in two kinds:
 *  - fatal (the file as a whole is refused: unreadable, not a supported
 *    format, limits such as a line longer than max_line_bytes when the reader
 *    cannot resynchronise): fx_reader_next returns a negative FX_E* code and
 *    fills err;
 *  - row-level (this row is unusable but the next one can be read: invalid
 *    UTF-8 in a UTF-8 file, a field longer than max_field_bytes, too many
 *    fields): fx_reader_next returns 1 with rec->bad set and rec->err filled
 *    (row, column, reason), so the caller can reject the row and go on.
 *
 * Cells point into reader-owned memory valid until the next call to
 * fx_reader_next or fx_reader_free. Cell text is always valid UTF-8 and
 * NUL-terminated (readers transcode Windows-1252 input).
 */
#ifndef FLUXO_READER_H
#define FLUXO_READER_H

#include "fluxo/error.h"

#include <stddef.h>

enum fx_cell_type {
    FX_CELL_EMPTY = 0, /* missing or empty cell; s = "" */
    FX_CELL_STRING,    /* text (CSV cells are always strings) */
    FX_CELL_NUMBER,    /* s holds the exact decimal text ("12345678900", "3500.5") */
    FX_CELL_BOOL,      /* s = "true" / "false" */
    FX_CELL_DATE,      /* s = ISO 8601 local "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS" */
    FX_CELL_ERROR,     /* spreadsheet error value, s = "#N/A" etc. */
};

struct fx_cell {
    const char *s; /* NUL-terminated UTF-8 text; never NULL */
    size_t len;
    enum fx_cell_type type;
};

struct fx_record {
    long row; /* 1-based physical row (CSV: line where the record starts) */
    size_t ncells;
    struct fx_cell *cells; /* reader-owned */
    int bad;               /* row-level error: see err */
    struct fx_err err;     /* filled when bad */
};

struct fx_reader_opts {
    size_t max_line_bytes;  /* longest record in bytes (default 1 MiB) */
    size_t max_field_bytes; /* longest cell in bytes (default 64 KiB) */
    size_t max_fields;      /* most cells in a record (default 1024) */
    const char *encoding;   /* NULL/"auto", "utf-8", "windows-1252" */
    char delimiter;         /* 0 = detect among ',' ';' '\t' */
    const char *sheet;      /* spreadsheets: sheet name, or NULL for the first */
    int sheet_index;        /* spreadsheets: 1-based index when sheet is NULL; 0 = first */
};

/* Fill opts with defaults. */
void fx_reader_opts_init(struct fx_reader_opts *opts);

struct fx_reader;

/* Contract a backend implements. next: see the header comment. */
struct fx_reader_ops {
    const char *name; /* "csv", "xlsx", ... */
    int (*next)(void *self, struct fx_record *rec, struct fx_err *err);
    /* bytes of input consumed so far and the total when known (else 0) */
    void (*progress)(void *self, long long *done, long long *total);
    void (*free)(void *self);
};

/*
 * Open path, choosing the backend by content (then by extension). opts may be
 * NULL for defaults. On failure returns a negative code, *out = NULL and err
 * names the file and the reason (empty file, unsupported format...).
 */
int fx_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                   struct fx_err *err);

/* Wrap an already-constructed backend instance (used by backends' openers). */
struct fx_reader *fx_reader_wrap(const struct fx_reader_ops *ops, void *self, const char *source);

/* Pull the next record: 1 = record in rec, 0 = end of input, < 0 = fatal. */
int fx_reader_next(struct fx_reader *r, struct fx_record *rec, struct fx_err *err);

/* Backend name ("csv") and source (path) of an open reader. */
const char *fx_reader_format(const struct fx_reader *r);
const char *fx_reader_source(const struct fx_reader *r);

/* Bytes consumed so far and total size when known (for progress), else 0. */
void fx_reader_progress(const struct fx_reader *r, long long *done, long long *total);

void fx_reader_free(struct fx_reader *r);

#endif
