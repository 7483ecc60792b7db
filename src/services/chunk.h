/* SPDX-License-Identifier: MIT */
/*
 * Chunk codec: the payload that carries accepted rows from ingest to
 * distribution (CloudEvent data of type fluxo.ingest.chunk):
 *
 *   {"batch":"<id>","pipeline":"vendas","chunk":3,
 *    "fields":["nome",...],"raw":[8],
 *    "rows":[[<row number>,"<dedupe key>",<v0>,...,<vN-1>,"<raw text>",...],...]}
 *
 * Values are null, integers or strings (see schema.h for the canonical form
 * of each field type). The decoder is purpose-built for this shape because
 * it runs for every row: a general JSON tree (jansson) cost ~45k
 * instructions per row here, ten times the rest of the apply path; this
 * decoder makes one pass, allocates three arrays per chunk and unescapes
 * strings into one buffer. It still accepts any valid JSON spelling of the
 * shape (whitespace, key order, escapes) and rejects the rest with a reason.
 */
#ifndef FLUXO_CHUNK_H
#define FLUXO_CHUNK_H

#include <stddef.h>
#include <stdint.h>

enum fx_cv_type { FX_CV_NULL = 0, FX_CV_INT, FX_CV_STR };

struct fx_cv {
    enum fx_cv_type type;
    int64_t i;
    const char *s; /* NUL-terminated, in the chunk's string buffer */
    size_t len;
};

struct fx_chunk {
    const char *batch, *pipeline;
    int64_t seq;
    size_t nfields;
    const char **fields;
    size_t nraw;
    int64_t *raw;
    size_t nrows;
    size_t *row_start; /* index into vals of each row's first value */
    size_t *row_len;   /* values in each row */
    struct fx_cv *vals;
    /* storage */
    char *strbuf;
    size_t nvals_cap;
};

/* Decode; on error returns < 0 and writes a reason into why. */
int fx_chunk_decode(const char *json, size_t len, struct fx_chunk *c, char *why, size_t whycap);
void fx_chunk_free(struct fx_chunk *c);

/* Value j of row r, or a NULL value when out of range. */
const struct fx_cv *fx_chunk_val(const struct fx_chunk *c, size_t r, size_t j);

#endif
