/* SPDX-License-Identifier: MIT */
/*
 * Tabular writers: one push interface (open, a row at a time, close) over
 * every output format, a backend per format chosen by name ("csv", "xlsx"),
 * each a read-only descriptor (struct fx_writer_ops) like the store and the
 * bus. Callers give each cell as its canonical text (schema.h: money in
 * integer cents "123456", dates "YYYY-MM-DD", date-times
 * "YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)", bools "1"/"0"/"true"...) and the
 * column kind; the backend turns it into what the format shows best.
 *
 *   csv   UTF-8 (BOM by default, so Excel reads accents), ';' by default,
 *         RFC 4180 quoting, "\n" or "\r\n". Money "1234.56" ("1234,56" with
 *         csv_decimal_comma), dates and date-times kept in canonical ISO form,
 *         bools "Sim" / "Não". CSV injection: a text cell starting with
 *         = + - @ TAB or CR gets a leading single quote; numbers in numeric
 *         columns (money, int, decimal) are never altered. path "-" = stdout.
 *   xlsx  libxlsxwriter in constant_memory mode (rows go to a temporary file
 *         in order; memory does not grow with the row count): typed cells
 *         (money as numbers formatted [$R$-416] #,##0.00, dates dd/mm/yyyy,
 *         date-times dd/mm/yyyy hh:mm:ss in local time, bools, ints, text),
 *         a bold filled header row frozen at A2, an autofilter, and column
 *         widths from the header and kind (set before any row, since rows
 *         cannot be revisited). A sheet holds at most 1,048,575 data rows
 *         under its header (Excel's 1,048,576 rows); the next row starts a new
 *         sheet "<name> 2", "<name> 3"... with the same header.
 *
 * A cell whose text does not parse as its kind (e.g. "abc" in a money
 * column) is written as text, never dropped. NULL or "" is an empty cell.
 *
 * Threads: a writer is used by one thread. The xlsx backend converts
 * date-times with the process-wide zone of fx_tz_set (types.h); a tz option
 * calls fx_tz_set at open, which changes it for the whole process.
 *
 * Errors: fx_writer_row returns the first failure and keeps returning it
 * (later rows are dropped); fx_writer_close reports it with a reason, after
 * flushing and freeing everything in any case.
 */
#ifndef FLUXO_WRITER_H
#define FLUXO_WRITER_H

#include "fluxo/error.h"

#include <stddef.h>
#include <stdint.h>

enum fx_col_kind {
    FX_COL_TEXT = 0,
    FX_COL_INT,
    FX_COL_MONEY,    /* integer cents */
    FX_COL_DECIMAL,  /* "123.45" (dot, optional sign) */
    FX_COL_DATE,     /* "YYYY-MM-DD" */
    FX_COL_DATETIME, /* "YYYY-MM-DDTHH:MM:SSZ", or with an offset / fraction */
    FX_COL_BOOL,
};

struct fx_col {
    const char *name;   /* machine name (e.g. valor_unitario_centavos) */
    const char *header; /* display header, e.g. "Valor unitário (R$)"; NULL = name */
    enum fx_col_kind kind;
};

struct fx_writer_opts {
    int csv_bom;            /* 1 (default): start with a UTF-8 byte order mark */
    char csv_delimiter;     /* ';' (default), ',' or '\t' */
    int csv_decimal_comma;  /* 0 (default); 1: money and decimals as "1234,56" */
    int csv_crlf;           /* 0 (default): "\n"; 1: "\r\n" */
    const char *sheet_name; /* xlsx: NULL = "Dados"; invalid characters become '_', cut to 31 */
    const char *tz;         /* xlsx date-times: IANA zone for fx_tz_set at open; NULL = keep the
                               current one (the runtime's `timezone`, default America/Sao_Paulo) */
    const char *tmpdir;     /* xlsx temporary files: NULL = $TMPDIR or the system default */
    uint64_t sheet_rows;    /* xlsx data rows per sheet; 0 = 1,048,575 (tests lower it) */
};

/* Fill o with the defaults above. */
void fx_writer_opts_init(struct fx_writer_opts *o);

struct fx_writer;

/*
 * Open a writer of format ("csv" | "xlsx") onto path (created or truncated;
 * "-" = stdout, csv only) for ncols columns, and write the header row. cols
 * and its strings are copied. o may be NULL (defaults). Returns 0 with *out
 * set, or FX_EINVAL (unknown format, bad options, no columns), FX_EIO
 * (cannot create path) with err filled. Blocks on file I/O.
 */
int fx_writer_open(const char *format, const char *path, const struct fx_col *cols, size_t ncols,
                   const struct fx_writer_opts *o, struct fx_writer **out, struct fx_err *err);

/*
 * Append one row: values[0..ncols) are canonical texts (NULL = empty).
 * Not retained. Returns 0 or the writer's first error (FX_EIO, FX_ETOOBIG).
 */
int fx_writer_row(struct fx_writer *w, const char *const *values);

/* Data rows written so far (header not counted). */
uint64_t fx_writer_rows(const struct fx_writer *w);

/*
 * Finish the file (xlsx: assemble and zip it; csv: flush and close) and free
 * w. Returns 0, or the first error of any row or of the close, with err
 * filled. w may be NULL (returns 0).
 */
int fx_writer_close(struct fx_writer *w, struct fx_err *err);

/*
 * Backend descriptor: one const instance per format (src/format/<fmt>_write.c).
 * Every slot is set. The front (src/format/writer.c) checks arguments, makes
 * errors sticky and counts rows; backends keep their state in w->impl
 * (struct fx_writer: src/format/writer_int.h).
 */
struct fx_writer_ops {
    const char *name; /* "csv", "xlsx" */
    int stdout_ok;    /* path "-" allowed */
    /* Create the output and write the header. On failure the backend has freed its state. */
    int (*open)(struct fx_writer *w, const char *path, struct fx_err *err);
    /* One data row (values as fx_writer_row). Error: 0 or FX_E* with w->err filled. */
    int (*row)(struct fx_writer *w, const char *const *values);
    /* Finish and free the backend state, even on error. Returns 0 or FX_E* with err filled. */
    int (*close)(struct fx_writer *w, struct fx_err *err);
};

extern const struct fx_writer_ops fx_writer_csv_ops;
extern const struct fx_writer_ops fx_writer_xlsx_ops;

#endif
