/* SPDX-License-Identifier: MIT */
/* Internals shared by the ingest-side files (ingest.c, relay.c, status.c). */
#ifndef FLUXO_INGEST_INTERNAL_H
#define FLUXO_INGEST_INTERNAL_H

#include "fluxo/services.h"
#include "fluxo/store.h"

struct fx_ingest {
    struct fx_runtime *rt;
    struct fx_store *db;
};

/* Current UTC time as RFC 3339 with milliseconds. */
void fx__now_iso(char out[32]);

struct fx_buf;
struct fx_row;
struct fx_pipeline;

/* The 128 leading bits of a hex dedupe key as the two integers of table `seen`. */
void fx__key_words(const char *key, int64_t w[2]);
/* n pairs of key words from src into dst (not overlapping), ordered as signed
 * integers, word 0 then word 1: the order of `seen`'s primary key. */
void fx__keys_sort(const int64_t (*src)[2], size_t n, int64_t (*dst)[2]);
/* Bind the six counts of a batch or request (received, accepted, rejected,
 * duplicate, warnings, possible_dup), in that order, from parameter first. */
void fx__bind_counts(struct fx_stmt *st, int first, const uint64_t c[6]);
/* Chunk payload (see chunk.h for the format): header, then rows. Rows
 * carry the raw input text of the fields the pipeline's plan stores
 * (fx_plan.raw). */
void fx__chunk_begin(struct fx_buf *b, const char *batch_id, const struct fx_pipeline *p,
                     uint64_t seq);
void fx__chunk_row(struct fx_buf *b, int first, const struct fx_pipeline *p,
                   const struct fx_row *row, const char *key);
/* Close payload and write it as a pending staging chunk with its outbox entry; corr and
 * trace (may be NULL: the batch's) go into the chunk's CloudEvent. */
int fx__stage_chunk(struct fx_store *db, const char *batch_id, uint64_t seq, long first_row,
                    long last_row, size_t nrows, const char *now, struct fx_buf *payload,
                    const char *corr, const char *trace, struct fx_err *err);
/* The same with the chunk's id given and payload already closed; held_by
 * non-NULL: no outbox entry, the chunk is listed in staging_held (owner
 * held_by) until fx__queue_chunk queues it. */
int fx__stage_chunk_as(struct fx_store *db, const char *id, const char *held_by,
                       const char *batch_id, uint64_t seq, long first_row, long last_row,
                       size_t nrows, const char *now, const struct fx_buf *payload,
                       const char *corr, const char *trace, struct fx_err *err);
/* The outbox entry of staged chunk id. */
int fx__queue_chunk(struct fx_store *db, const char *id, struct fx_err *err);

#endif
