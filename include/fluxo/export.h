/* SPDX-License-Identifier: MIT */
/*
 * Export (`fluxo export`): stream one normalized table of the distribution
 * database into a file through a writer (writer.h), CSV or XLSX, with pt-BR
 * headers and column kinds taken from the pipeline's upsert plan (a column
 * fed by a money field is money, a document stays text so leading zeros
 * survive). Only tables of a loaded pipeline's plan can be named, which is
 * also what keeps the table name out of reach of SQL injection.
 */
#ifndef FLUXO_EXPORT_H
#define FLUXO_EXPORT_H

#include "fluxo/error.h"
#include "fluxo/services.h"
#include "fluxo/writer.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Write every row of table (columns id, the plan's columns, criado_em;
 * ORDER BY id) to path in format ("csv" | "xlsx"; path "-" = stdout for
 * csv). o may be NULL (writer defaults; the sheet is named after the table).
 * Reads through the store API in one statement, with constant memory for any
 * table size. *rows (may be NULL) gets the rows written. Returns 0, or
 * FX_ENOTFOUND (table not in any loaded pipeline: err lists the valid
 * names), FX_ESTORE, FX_EIO, FX_EINVAL with err filled; a file left
 * half-written by a failure is removed. Blocks; runs on the calling thread.
 */
int fx_export_table(struct fx_runtime *rt, const char *table, const char *format, const char *path,
                    const struct fx_writer_opts *o, uint64_t *rows, struct fx_err *err);

/*
 * Columns of an exported table (the same ones fx_export_table writes):
 * *cols is an array of n columns (caller frees the array with free(); its
 * strings are static or owned by the pipeline). Returns 0 or FX_ENOTFOUND.
 */
int fx_export_columns(const struct fx_runtime *rt, const char *table, struct fx_col **cols,
                      size_t *n, struct fx_err *err);

/* pt-BR display header for a column name: a known name ("valor_unitario_centavos" ->
 * "Valor unitário (R$)"), else underscores to spaces and a capital first letter.
 * Writes at most cap-1 bytes + NUL into out; returns out. */
char *fx_export_header(const char *name, char *out, size_t cap);

#endif
