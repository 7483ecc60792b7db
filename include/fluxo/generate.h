/* SPDX-License-Identifier: MIT */
/*
 * Sales data generator (`fluxo generate`): realistic Brazilian sales rows in
 * the spreadsheet layout of the original sales system (DESIGN §5 A), fully
 * determined by a seed, with an exact number of invalid rows, exact repeats
 * and rows that only deserve a warning (CPF/CNPJ check digits wrong), so that
 * tests and benchmarks know in advance what the pipeline must accept, reject,
 * deduplicate and warn about.
 *
 * Two layers: a row source (fx_gen_new / fx_gen_next), reusable by any file
 * writer (CSV here, XLSX later), and a CSV writer on top (fx_generate_csv).
 * Neither allocates per row; the generator is single-threaded and holds no
 * global state, so several generators may run in parallel threads.
 */
#ifndef FLUXO_GENERATE_H
#define FLUXO_GENERATE_H

#include "fluxo/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most columns a row can have (with data_hora). */
#define FX_GEN_MAX_COLS 10

struct fx_gen_opts {
    uint64_t rows;      /* data rows (header not counted); default 1000 */
    uint64_t seed;      /* same seed and options => byte-identical output; default 1 */
    double bad_ratio;   /* fraction of rows made invalid, 0..1; default 0 */
    double dup_ratio;   /* fraction of rows that exactly repeat an earlier good row, 0..1 */
    double warn_ratio;  /* fraction of customers whose document has wrong check digits
                           (valid length: the pipeline warns, it does not reject); default 0 */
    int with_data_hora; /* include the data_hora column; default 1 */
    char delimiter;     /* CSV delimiter: ',' (default) or ';' */
    int windows1252;    /* CSV text encoding: 0 = UTF-8 (default), 1 = Windows-1252 */
};

/* What a row is. A WARN row is a good row (accepted) whose document fails its check digits. */
enum fx_gen_kind {
    FX_GEN_GOOD = 0,
    FX_GEN_WARN = 1,
    FX_GEN_BAD = 2,
    FX_GEN_DUP = 3, /* exact copy (same cells) of an earlier GOOD or WARN row */
};

/* The single defect of a BAD row. */
enum fx_gen_defect {
    FX_GEN_DEFECT_NONE = 0,
    FX_GEN_DEFECT_EMPTY_NOME,  /* nome is empty */
    FX_GEN_DEFECT_NO_IDENTITY, /* cpf_cnpj and email both empty */
    FX_GEN_DEFECT_DOC_LENGTH,  /* cpf_cnpj has 10 digits */
    FX_GEN_DEFECT_QUANTIDADE,  /* quantidade "0", "-2" or "abc" */
    FX_GEN_DEFECT_VALOR,       /* valor_unitario "12,34,56" or "abc" */
    FX_GEN_DEFECT_DATA_HORA,   /* data_hora "31/02/2024 10:00" or "ontem" (only with data_hora) */
    FX_GEN_DEFECT_EMAIL,       /* email "fulano@" and cpf_cnpj empty */
    FX_GEN_DEFECT_COUNT
};

/*
 * Counts. rows = bad + dup + good_unique; warn counts the good_unique rows of
 * kind WARN (repeats of them are counted in dup only); defects[d] counts the
 * BAD rows with defect d (they sum to bad).
 */
struct fx_gen_stats {
    uint64_t rows, bad, dup, good_unique, warn;
    uint64_t defects[FX_GEN_DEFECT_COUNT];
};

/* Fill o with the defaults above. */
void fx_gen_opts_init(struct fx_gen_opts *o);

/*
 * Check options: ratios must be finite numbers in 0..1, the delimiter ',' or ';'.
 * Returns 0 or FX_EINVAL with a reason in err (err may be NULL).
 *
 * Counts derived from valid options: bad = round(rows * bad_ratio) and
 * dup = round(rows * dup_ratio), exactly, except that dup is lowered when
 * bad + dup would leave no good row before the first repeat (a repeat needs
 * an earlier good row to copy): dup <= rows - bad - 1.
 */
int fx_gen_opts_check(const struct fx_gen_opts *o, struct fx_err *err);

/*
 * The column names: nome, email, telefone, endereco_completo, cpf_cnpj,
 * produto, quantidade, valor_unitario, forma_pagamento[, data_hora]. data_hora
 * is included unless o says otherwise (o may be NULL: all ten). *n gets the
 * count. Static storage; never NULL.
 */
const char *const *fx_gen_header(const struct fx_gen_opts *o, size_t *n);

/*
 * Row source. fx_gen_new copies o; returns NULL only when fx_gen_opts_check
 * fails. fx_gen_free(NULL) is a no-op.
 */
struct fx_gen;
struct fx_gen *fx_gen_new(const struct fx_gen_opts *o);
void fx_gen_free(struct fx_gen *g);

/*
 * Produce the next row: cells[0..*n) point at NUL-terminated UTF-8 strings
 * owned by g and valid until the next call (cells must have room for
 * FX_GEN_MAX_COLS); *kind gets an enum fx_gen_kind (kind may be NULL).
 * Returns 1, or 0 when all rows have been produced. Does not allocate.
 */
int fx_gen_next(struct fx_gen *g, const char *cells[], size_t *n, int *kind);

/* Defect of the row last returned (FX_GEN_DEFECT_NONE unless it was BAD). */
enum fx_gen_defect fx_gen_last_defect(const struct fx_gen *g);

/* Short name of a defect, e.g. "empty_nome"; never NULL. */
const char *fx_gen_defect_name(enum fx_gen_defect d);

/* Counts of the rows produced so far (the planned totals once fx_gen_next returned 0). */
void fx_gen_counts(const struct fx_gen *g, struct fx_gen_stats *st);

/*
 * Write a CSV file to out: header and o->rows rows, RFC 4180 quoting where
 * needed, '\n' line ends, no BOM, UTF-8 or Windows-1252 as asked. Blocks on
 * out; does not close it (the caller checks fclose). Returns 0, FX_EINVAL
 * (bad options; nothing written), FX_EIO (write failed) or FX_EENCODING.
 * stats may be NULL.
 */
int fx_generate_csv(const struct fx_gen_opts *o, FILE *out, struct fx_gen_stats *stats);

#endif
