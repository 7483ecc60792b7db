/* SPDX-License-Identifier: MIT */
/*
 * Services of the core pipeline and the runtime they share.
 *
 *   ingest        reads sources (files, watched folder), validates rows against
 *                 a pipeline, writes accepted rows as staging chunks plus an
 *                 outbox entry per chunk in one transaction, and records every
 *                 rejected row and warning with file, row, column, value, rule.
 *   relay         publishes outbox chunks to the bus (routing key
 *                 processed_data) and marks them published.
 *   distribution  consumes processed_data, applies each chunk in one
 *                 transaction (upserts into the normalized tables + the
 *                 message id into its inbox table: exactly-once effect),
 *                 acks after commit, and reports applied chunks back on the
 *                 bus (routing key distribution.applied).
 *   applied       (part of ingest) consumes distribution.applied and marks
 *                 staging chunks applied, which completes batch status.
 *
 * Services talk only through the bus; each owns its database
 * (<data_dir>/ingest.db, <data_dir>/distribution.db on SQLite).
 */
#ifndef FLUXO_SERVICES_H
#define FLUXO_SERVICES_H

#include "fluxo/config.h"
#include "fluxo/error.h"
#include "fluxo/jsonrec.h"
#include "fluxo/reader.h"
#include "fluxo/schema.h"

#include <stdint.h>

struct fx_bus;

#define FX_RK_PROCESSED "processed_data"
#define FX_RK_APPLIED "distribution.applied"
#define FX_GROUP_DISTRIBUTION "processed_data"
#define FX_GROUP_APPLIED "ingest.applied"

/* Resolved settings and loaded pipelines, shared read-only by every service thread. */
struct fx_runtime {
    const struct fx_config *cfg;
    char *data_dir;
    char *db_url; /* store URL (per-service databases live under it) */
    char *bus_url;
    char *inbox;
    char *pipelines_dir;
    char *default_pipeline;
    size_t npipelines;
    struct fx_pipeline **pipelines;
    volatile int stop; /* set by signal handlers / serve to stop loops */
};

/* Resolve URLs and directories from cfg, set the time zone, load every
 * every .yaml file of pipelines_dir. Errors name the offending pipeline file. */
int fx_runtime_init(struct fx_runtime *rt, const struct fx_config *cfg, struct fx_err *err);
void fx_runtime_cleanup(struct fx_runtime *rt);
const struct fx_pipeline *fx_runtime_pipeline(const struct fx_runtime *rt, const char *name);

/* ---- ingest ---- */

struct fx_ingest;

int fx_ingest_open(struct fx_runtime *rt, struct fx_ingest **out, struct fx_err *err);
void fx_ingest_close(struct fx_ingest *ig);

/* Progress callback: rows read so far, bytes consumed and total (0 if unknown). */
typedef void (*fx_progress_cb)(void *ud, uint64_t rows, long long bytes, long long total);

struct fx_batch_result {
    char batch_id[37];
    char correlation_id[37];
    uint64_t received, accepted, rejected, duplicate, warnings, possible_dup;
    uint64_t chunks;
    int refused; /* the file as a whole was refused (err says why) */
    char unknown_columns[512];
};

/*
 * Import one file as one batch. Returns 0 when the file was read (rows may
 * still have been rejected: see res), or < 0 when it was refused as a whole
 * (empty, header only, missing columns, unreadable...): err names the file
 * and why, and a batch row in state "failed" records it. All accepted rows
 * of the file commit in one transaction with their outbox entries.
 */
int fx_ingest_file(struct fx_ingest *ig, const char *path, const char *pipeline,
                   fx_progress_cb progress, void *ud, struct fx_batch_result *res,
                   struct fx_err *err);

struct fx_batch_status {
    char id[37], correlation_id[37], pipeline[64], state[16];
    char source[512], created_at[32], error[512];
    uint64_t received, accepted, rejected, duplicate, warnings, possible_dup;
    uint64_t queued, published, applied; /* rows by staging state */
};

/* Status of a batch; FX_ENOTFOUND when unknown. */
int fx_ingest_status(struct fx_ingest *ig, const char *batch_id, struct fx_batch_status *st);

/* Most recent batches first: calls cb with each one's status (at most limit);
 * cb returns non-zero to stop. */
typedef int (*fx_batch_cb)(void *ud, const struct fx_batch_status *st);
int fx_ingest_list(struct fx_ingest *ig, size_t limit, fx_batch_cb cb, void *ud);

/* Issues of a batch (errors then warnings), in row order; cb returns non-zero to stop. */
typedef int (*fx_issue_cb)(void *ud, long row, int column, const char *field, const char *value,
                           const char *rule, const char *reason, const char *severity);
int fx_ingest_issues(struct fx_ingest *ig, const char *batch_id, size_t limit, fx_issue_cb cb,
                     void *ud);

/* ---- API ingest: records pushed over HTTP ----
 *
 * An HTTP request's records are validated on the request's own thread
 * (fx_api_req_add), then handed to the API writer, a single thread with its
 * own connection that commits the rows of every request waiting in one
 * transaction (group commit: a few hundred requests share one write) and
 * answers each request after the commit. Rows of the API join the pipeline's
 * open "API batch" (source "api"), which is closed after api batch rows or
 * one minute; each request keeps its own correlation id, counts and issues
 * (GET /api/v1/status/{correlation_id}). */

struct fx_api_req;

struct fx_api_issue {
    long record;  /* 1-based record of the request */
    long line;    /* line in the body (0 = n/a) */
    int column;   /* 1-based column, 0 = the record as a whole */
    int severity; /* FX_ISSUE_ERROR / FX_ISSUE_WARN */
    int row_ix;   /* warnings: index of the accepted row they belong to; errors: -1 */
    long seq;     /* order found */
    char field[64], value[128], rule[32], reason[256];
};

struct fx_api_counts {
    char batch_id[37], correlation_id[37], pipeline[64], created_at[32], state[16];
    uint64_t received, accepted, rejected, duplicate, warnings, possible_dup;
    uint64_t queued, published, applied; /* rows of the request's batch by staging state */
};

/* New request for pipeline p. correlation_id (a UUID, unique: it keys the request) and
 * traceparent may be NULL: new ones are made. own_trace: the trace came from the client, so
 * the request's rows get chunks of their own and their CloudEvents carry its ids. */
struct fx_api_req *fx_api_req_new(const struct fx_pipeline *p, const char *correlation_id,
                                  const char *traceparent, int own_trace);
void fx_api_req_free(struct fx_api_req *r);
const char *fx_api_req_correlation(const struct fx_api_req *r);
const char *fx_api_req_traceparent(const struct fx_api_req *r);
/* The request carries an Idempotency-Key: a second request with the same key and body hash
 * gets the first one's result; with another body, a conflict. */
void fx_api_req_set_idempotency(struct fx_api_req *r, const char *key, const char body_hash[65]);
/* Validate one record (names[i] -> cells[i]); rejected records become issues. record: 1-based
 * index in the body, line: line where it starts (0 = n/a). Returns 0 or < 0 (out of memory). */
int fx_api_req_add(struct fx_api_req *r, const char *const *names, const struct fx_cell *cells,
                   size_t n, long record, long line);
/* The same, for big bodies: the record is copied and validated later, possibly on a
 * thread of a shared pool (slices of records, in order). Call fx_api_req_settle before
 * reading the request (rows, issues) or submitting it; the outcome is the same as with
 * fx_api_req_add, record for record. */
int fx_api_req_add_deferred(struct fx_api_req *r, const char *const *names,
                            const struct fx_cell *cells, size_t n, long record, long line);
void fx_api_req_settle(struct fx_api_req *r);
struct fx_api_writer;
/* Big bodies (more than one slice) through writer w: a batch of their own, whose chunks
 * w starts writing while the body still arrives (held, published only once the request
 * commits; removed if it never does, fx_api_req_free included). Call before the first
 * record; then fx_api_req_progress between pieces of the body (cheap: it hands over
 * whole chunks of validated records, when there are some). */
void fx_api_req_hold(struct fx_api_req *r, struct fx_api_writer *w);
void fx_api_req_progress(struct fx_api_req *r);
/* NDJSON bodies: lines handed over unparsed by the body's parser (fx_jsonrec_defer_lines)
 * are parsed and validated in slices on the pool, by parsers with options o (set once,
 * before the first line); a bad line is rejected with the parser's reason (rule "json"). */
void fx_api_req_set_json(struct fx_api_req *r, const struct fx_jsonrec_opts *o);
int fx_api_req_add_line(struct fx_api_req *r, const struct fx_jsonrec_line *ln);
/* A record that could not even be parsed (bad JSON line): rejected with this reason. */
void fx_api_req_reject(struct fx_api_req *r, long record, long line, const char *rule,
                       const char *reason);
size_t fx_api_req_issues(const struct fx_api_req *r, const struct fx_api_issue **out);
/* Counts after the writer handled it (ids, received, accepted, rejected, duplicate...). */
const struct fx_api_counts *fx_api_req_result(const struct fx_api_req *r);
/* After the writer: 1 = this was a replay of an earlier request with the same key (result
 * holds the earlier one's counts and ids); 2 = same key, different body. */
int fx_api_req_replay(const struct fx_api_req *r);
uint64_t fx_api_req_rows(const struct fx_api_req *r); /* records added so far */

struct fx_api_writer;
/* Dedupe keys found new by the in-memory filter without a lookup, and keys looked up. */
void fx_api_writer_dedupe_stats(const struct fx_api_writer *w, uint64_t *filtered,
                                uint64_t *looked_up);
int fx_api_writer_start(struct fx_runtime *rt, struct fx_api_writer **out, struct fx_err *err);
/* How long the writer waits with no request before it writes the dedupe keys it holds in
 * memory (default 20 ms); -1: only when they are due (a second after the first of them). */
void fx_api_writer_set_idle_keys_ms(struct fx_api_writer *w, int ms);
/* Commit what is queued, close the open API batches, stop the thread. */
void fx_api_writer_stop(struct fx_api_writer *w);
/* Called on the writer thread once the request is committed (rc 0) or failed (rc < 0, err). */
typedef void (*fx_api_done_cb)(void *ud, struct fx_api_req *r, int rc, const struct fx_err *err);
/* Hand r over (the caller keeps ownership but must not touch r until done is called). */
int fx_api_writer_submit(struct fx_api_writer *w, struct fx_api_req *r, fx_api_done_cb done,
                         void *ud);
/* Rows accepted and not yet applied, plus rows waiting for the writer (refreshed a few times
 * a second): the backpressure signal. */
int64_t fx_api_writer_backlog(const struct fx_api_writer *w);
/* Rows waiting in the outbox for the relay (refreshed with the backlog). */
int64_t fx_api_writer_outbox(const struct fx_api_writer *w);

/* Counts and state of an API request by correlation id (FX_ENOTFOUND when unknown).
 * Also answers for a file batch's correlation id. */
int fx_ingest_request_status(struct fx_ingest *ig, const char *correlation_id,
                             struct fx_api_counts *out);
/* Issues of an API request in record order (then as found); cb returns non-zero to stop. */
typedef int (*fx_api_issue_cb)(void *ud, const struct fx_api_issue *is);
int fx_ingest_request_issues(struct fx_ingest *ig, const char *correlation_id, size_t limit,
                             fx_api_issue_cb cb, void *ud);

/* ---- relay ---- */

/* Publish up to relay.batch pending outbox chunks. Returns the number
 * published (0 = nothing pending) or < 0. */
int fx_relay_once(struct fx_ingest *ig, struct fx_bus *bus, struct fx_err *err);

/* ---- applied-events consumer (ingest side) ---- */
int fx_applied_once(struct fx_ingest *ig, struct fx_bus *bus, int timeout_ms, struct fx_err *err);

/* ---- distribution ---- */

struct fx_distribution;

int fx_distribution_open(struct fx_runtime *rt, struct fx_distribution **out, struct fx_err *err);
void fx_distribution_close(struct fx_distribution *d);
/* Receive the chunks waiting (at most distribution.batch; waits up to
 * timeout_ms for the first) and apply them in one transaction. Returns how
 * many were newly applied (redelivered ones already applied are acked and
 * not counted), 0 when none, < 0 when a single chunk failed (it is nacked;
 * err says why). */
int fx_distribution_once(struct fx_distribution *d, int timeout_ms, struct fx_err *err);

/* Declare the bus groups every service relies on (idempotent). */
int fx_services_declare(struct fx_runtime *rt, struct fx_bus *bus, struct fx_err *err);

/* Create/upgrade the databases of every service (fluxo migrate). */
int fx_services_migrate(struct fx_runtime *rt, struct fx_err *err);

/* ---- watched folder ---- */

/* Scan the inbox once: import files that are finished (stable size and mtime
 * for watch.settle_ms), then move each to processed/ or failed/ with a
 * report beside it. Returns the number of files handled or < 0. */
struct fx_watch;
int fx_watch_open(struct fx_runtime *rt, struct fx_ingest *ig, struct fx_watch **out,
                  struct fx_err *err);
int fx_watch_scan(struct fx_watch *w);
void fx_watch_close(struct fx_watch *w);

/* ---- long-running loops ---- */

enum fx_service_mask {
    FX_SVC_WATCH = 1,        /* watched folder */
    FX_SVC_RELAY = 2,        /* outbox -> bus (one relay per data dir: relay.lock) */
    FX_SVC_APPLIED = 4,      /* distribution.applied -> batch status */
    FX_SVC_DISTRIBUTION = 8, /* processed_data -> normalized tables */
    FX_SVC_INGEST = FX_SVC_WATCH | FX_SVC_RELAY | FX_SVC_APPLIED,
    FX_SVC_ALL = FX_SVC_INGEST | FX_SVC_DISTRIBUTION,
};

struct fx_services;

/* Start the services of mask in threads (distribution: distribution.workers
 * threads). They run until fx_services_stop. */
int fx_services_start(struct fx_runtime *rt, unsigned mask, struct fx_services **out,
                      struct fx_err *err);
/* Ask every thread to stop, wait for them (in-flight work completes). */
void fx_services_stop(struct fx_services *s);

/* 1 if some process on this data dir runs the distribution service. */
int fx_distribution_running(const struct fx_runtime *rt);

#endif
