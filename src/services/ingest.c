/* SPDX-License-Identifier: MIT */
/*
 * Ingest service: one batch per file. Design notes:
 *
 *  - A file is first scanned for structure (the reader alone, ~1 GB/s) so
 *    that whatever refuses it as a whole (unreadable, empty, header only,
 *    missing columns, unterminated quote) is found before anything is
 *    queued: a refused file leaves only a "failed" batch row explaining why.
 *  - Then rows are validated and committed every ingest.commit_rows rows
 *    (at chunk boundaries): each transaction holds accepted rows, their
 *    staging chunks, outbox entries, dedupe keys and issues together, so
 *    the relay and the distribution work on the start of a big file while
 *    the rest is still being read. If the store fails part-way (disk full),
 *    the batch is marked failed with how far it got; importing the file
 *    again completes it, the committed rows counting as duplicates.
 *  - Rows travel in chunks (pipeline option chunk_rows, default 1000): the
 *    chunk payload is stored once in `staging_payload` (written once, never
 *    updated: an UPDATE rewrites a whole SQLite row, overflow pages
 *    included), its state in `staging`, and `outbox` references it;
 *    which the relay drains. A chunk's id is the CloudEvent id, stable across
 *    re-publication, so the distribution inbox detects redelivery.
 *  - Dedupe: table `seen` holds every key ever accepted. A row whose key is
 *    already there is a duplicate (counted, not queued). Rows keyed by source
 *    position (file without data_hora) also record their content key: if that
 *    one was seen, the row is kept and flagged as a possible duplicate.
 *  - On PostgreSQL every statement is a network round trip, so dedupe is
 *    decided for a block of rows at once (see "blocks" below): rows are
 *    validated and keyed as they are read and held, then one INSERT ...
 *    RETURNING per block tells which keys are new, and the block is replayed
 *    in row order with the per-row rules, so counts, chunks, issues (in the
 *    same order) and commit points are those of the per-row path. Issues and
 *    the deferred repeat keys go in bulk too. SQLite keeps the per-row path:
 *    there a statement is a function call and the per-row path is faster.
 */
#include "fluxo/bus.h"
#include "fluxo/csv.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/reader.h"
#include "fluxo/services.h"
#include "fluxo/store.h"
#include "fluxo/util.h"
#include "ingest_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct fx_migration ingest_migrations[] = {
    {1, "batches, staging, outbox, issues, seen",
     "CREATE TABLE batches ("
     " id TEXT PRIMARY KEY, correlation_id TEXT NOT NULL, traceparent TEXT,"
     " pipeline TEXT NOT NULL, source TEXT NOT NULL, source_hash TEXT,"
     " state TEXT NOT NULL CHECK (state IN ('receiving','queued','failed')),"
     " received INTEGER NOT NULL DEFAULT 0, accepted INTEGER NOT NULL DEFAULT 0,"
     " rejected INTEGER NOT NULL DEFAULT 0, duplicate INTEGER NOT NULL DEFAULT 0,"
     " warnings INTEGER NOT NULL DEFAULT 0, possible_dup INTEGER NOT NULL DEFAULT 0,"
     " chunks INTEGER NOT NULL DEFAULT 0, unknown_columns TEXT, error TEXT,"
     " created_at TEXT NOT NULL, finished_at TEXT);"
     "CREATE TABLE staging ("
     " id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id), seq INTEGER NOT NULL,"
     " first_row INTEGER NOT NULL, last_row INTEGER NOT NULL, nrows INTEGER NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('pending','published','applied')),"
     " created_at TEXT NOT NULL, published_at TEXT, applied_at TEXT);"
     "CREATE INDEX staging_batch ON staging(batch_id, state);"
     "CREATE TABLE staging_payload (id TEXT PRIMARY KEY REFERENCES staging(id),"
     " payload TEXT NOT NULL) WITHOUT ROWID;"
     "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     " staging_id TEXT NOT NULL REFERENCES staging(id), routing_key TEXT NOT NULL);"
     "CREATE TABLE issues ("
     " batch_id TEXT NOT NULL, row INTEGER NOT NULL, col INTEGER NOT NULL, field TEXT,"
     " value TEXT, rule TEXT NOT NULL, reason TEXT NOT NULL,"
     " severity TEXT NOT NULL CHECK (severity IN ('error','warning')));"
     "CREATE INDEX issues_batch ON issues(batch_id, severity, row);"
     /* 128 bits of the key as two integers: a third of the size of hex text,
      * so the random-order index stays cache-resident far longer */
     "CREATE TABLE seen (hi INTEGER NOT NULL, lo INTEGER NOT NULL, PRIMARY KEY (hi, lo))"
     " WITHOUT ROWID;",
     NULL,
     /* PostgreSQL: the same tables with 64-bit integers and an identity for the outbox */
     "CREATE TABLE batches ("
     " id TEXT PRIMARY KEY, correlation_id TEXT NOT NULL, traceparent TEXT,"
     " pipeline TEXT NOT NULL, source TEXT NOT NULL, source_hash TEXT,"
     " state TEXT NOT NULL CHECK (state IN ('receiving','queued','failed')),"
     " received BIGINT NOT NULL DEFAULT 0, accepted BIGINT NOT NULL DEFAULT 0,"
     " rejected BIGINT NOT NULL DEFAULT 0, duplicate BIGINT NOT NULL DEFAULT 0,"
     " warnings BIGINT NOT NULL DEFAULT 0, possible_dup BIGINT NOT NULL DEFAULT 0,"
     " chunks BIGINT NOT NULL DEFAULT 0, unknown_columns TEXT, error TEXT,"
     " created_at TEXT NOT NULL, finished_at TEXT);"
     "CREATE TABLE staging ("
     " id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id), seq BIGINT NOT NULL,"
     " first_row BIGINT NOT NULL, last_row BIGINT NOT NULL, nrows BIGINT NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('pending','published','applied')),"
     " created_at TEXT NOT NULL, published_at TEXT, applied_at TEXT);"
     "CREATE INDEX staging_batch ON staging(batch_id, state);"
     "CREATE TABLE staging_payload (id TEXT PRIMARY KEY REFERENCES staging(id),"
     " payload TEXT NOT NULL);"
     "CREATE TABLE outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
     " staging_id TEXT NOT NULL REFERENCES staging(id), routing_key TEXT NOT NULL);"
     "CREATE TABLE issues ("
     " batch_id TEXT NOT NULL, row BIGINT NOT NULL, col INTEGER NOT NULL, field TEXT,"
     " value TEXT, rule TEXT NOT NULL, reason TEXT NOT NULL,"
     " severity TEXT NOT NULL CHECK (severity IN ('error','warning')));"
     "CREATE INDEX issues_batch ON issues(batch_id, severity, row);"
     "CREATE TABLE seen (hi BIGINT NOT NULL, lo BIGINT NOT NULL, PRIMARY KEY (hi, lo));"},
    {2, "API requests: per-request counts, idempotency keys; issues by request",
     "ALTER TABLE issues ADD COLUMN correlation_id TEXT;"
     "ALTER TABLE issues ADD COLUMN line INTEGER;"
     "CREATE INDEX issues_request ON issues(correlation_id, row) WHERE correlation_id IS NOT NULL;"
     "CREATE TABLE api_requests ("
     " correlation_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id),"
     " pipeline TEXT NOT NULL, idem_key TEXT UNIQUE, body_hash TEXT, traceparent TEXT,"
     " received INTEGER NOT NULL, accepted INTEGER NOT NULL, rejected INTEGER NOT NULL,"
     " duplicate INTEGER NOT NULL, warnings INTEGER NOT NULL, possible_dup INTEGER NOT NULL,"
     " created_at TEXT NOT NULL);"
     "CREATE INDEX staging_unapplied ON staging(state) WHERE state <> 'applied';"
     /* a chunk of one API request carries that request's ids into its CloudEvent */
     "ALTER TABLE staging ADD COLUMN correlation_id TEXT;"
     "ALTER TABLE staging ADD COLUMN traceparent TEXT;",
     NULL,
     "ALTER TABLE issues ADD COLUMN correlation_id TEXT;"
     "ALTER TABLE issues ADD COLUMN line BIGINT;"
     /* SQLite orders a request's issues by rowid; PostgreSQL needs a column */
     "ALTER TABLE issues ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;"
     "CREATE INDEX issues_request ON issues(correlation_id, row) WHERE correlation_id IS NOT NULL;"
     "CREATE TABLE api_requests ("
     " correlation_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id),"
     " pipeline TEXT NOT NULL, idem_key TEXT UNIQUE, body_hash TEXT, traceparent TEXT,"
     " received BIGINT NOT NULL, accepted BIGINT NOT NULL, rejected BIGINT NOT NULL,"
     " duplicate BIGINT NOT NULL, warnings BIGINT NOT NULL, possible_dup BIGINT NOT NULL,"
     " created_at TEXT NOT NULL);"
     "CREATE INDEX staging_unapplied ON staging(state) WHERE state <> 'applied';"
     "ALTER TABLE staging ADD COLUMN correlation_id TEXT;"
     "ALTER TABLE staging ADD COLUMN traceparent TEXT;"},
    /* A chunk payload is a few hundred kB of JSON: PostgreSQL's default TOAST
     * compression (pglz) cost about 5 ms a chunk, most of staging; lz4 is
     * several times faster both ways and compresses these payloads better.
     * A server without lz4 (before 14, or built without it) keeps pglz.
     * Nothing to do on SQLite. */
    {3, "PostgreSQL: lz4 compression for chunk payloads", NULL, "",
     "DO $$ BEGIN"
     " EXECUTE 'ALTER TABLE staging_payload ALTER COLUMN payload SET COMPRESSION lz4';"
     " EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL;"
     " END $$"},
    /* The API writer keeps a filter of the keys of `seen` in memory and must
     * learn of keys any other connection adds (src/services/ingest_api.c):
     * on SQLite, EVERY transaction that inserts into `seen` also runs
     * UPDATE seen_gen SET gen = gen + 1 (the file import in before_commit, the
     * API writer in pend_flush). A trigger would do it per key, which tripled
     * the cost of writing keys. */
    {4, "generation counter of the dedupe keys",
     "CREATE TABLE seen_gen (gen BIGINT NOT NULL);"
     "INSERT INTO seen_gen VALUES (0);",
     NULL, NULL},
    /* Every API request writes a row here. The UNIQUE column put an entry
     * into an index for every request, most of them NULL (no
     * Idempotency-Key); on SQLite the text primary key was a second B-tree
     * beside the rowid table. Now one B-tree on SQLite (the row in its
     * primary key, uuid7: appended in order) and a partial index of the
     * idempotency keys that exist. */
    {5, "API requests: partial index of idempotency keys; one B-tree on SQLite", NULL,
     "CREATE TABLE api_requests_v5 ("
     " correlation_id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id),"
     " pipeline TEXT NOT NULL, idem_key TEXT, body_hash TEXT, traceparent TEXT,"
     " received INTEGER NOT NULL, accepted INTEGER NOT NULL, rejected INTEGER NOT NULL,"
     " duplicate INTEGER NOT NULL, warnings INTEGER NOT NULL, possible_dup INTEGER NOT NULL,"
     " created_at TEXT NOT NULL) WITHOUT ROWID;"
     "INSERT INTO api_requests_v5 SELECT correlation_id, batch_id, pipeline, idem_key,"
     " body_hash, traceparent, received, accepted, rejected, duplicate, warnings,"
     " possible_dup, created_at FROM api_requests;"
     "DROP TABLE api_requests;"
     "ALTER TABLE api_requests_v5 RENAME TO api_requests;"
     "CREATE UNIQUE INDEX api_requests_idem ON api_requests(idem_key)"
     " WHERE idem_key IS NOT NULL;",
     "ALTER TABLE api_requests DROP CONSTRAINT api_requests_idem_key_key;"
     "CREATE UNIQUE INDEX api_requests_idem ON api_requests(idem_key)"
     " WHERE idem_key IS NOT NULL;"},
    /* The API writer counts the backlog (SUM(nrows) of the unapplied chunks)
     * every 250 ms between two groups. With the row count in the index the
     * count reads the index alone: 4 ms -> 1.2 ms at 17k unapplied chunks
     * (SQLite), where each chunk also cost a lookup in the table. */
    {6, "backlog counted from the index of unapplied chunks",
     "DROP INDEX staging_unapplied;"
     "CREATE INDEX staging_unapplied ON staging(state, nrows) WHERE state <> 'applied';",
     NULL, NULL},
    /* A big API request's chunks are written while its body still arrives
     * (src/services/ingest_api.c, "held chunks"): staged without an outbox
     * entry and listed here until the request commits; a request that never
     * does (refused, abandoned, server stopped) has them removed. owner is
     * "host pid token" of the API writer that wrote them. */
    {7, "chunks of API requests still being received",
     "CREATE TABLE staging_held (batch_id TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL,"
     " created_at TEXT NOT NULL, PRIMARY KEY (batch_id, id)) WITHOUT ROWID;",
     NULL,
     "CREATE TABLE staging_held (batch_id TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL,"
     " created_at TEXT NOT NULL, PRIMARY KEY (batch_id, id));"},
};

void fx__now_iso(char out[32])
{
    int64_t ms = fx_now_ms();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[16];
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    snprintf(out, 32, "%.10sT%02d:%02d:%02d.%03dZ", day, tm.tm_hour % 24, tm.tm_min % 60,
             tm.tm_sec % 61, (int)(ms % 1000));
}

int fx_ingest_open(struct fx_runtime *rt, struct fx_ingest **out, struct fx_err *err)
{
    *out = NULL;
    struct fx_store *db = NULL;
    int rc = fx_store_open(rt->db_url, "ingest", &db, err);
    if (rc)
        return rc;
    rc = fx_store_migrate(db, "ingest", ingest_migrations,
                          sizeof(ingest_migrations) / sizeof(ingest_migrations[0]), NULL, err);
    if (rc) {
        fx_store_close(db);
        return rc;
    }
    struct fx_ingest *ig = fx_calloc(1, sizeof(*ig));
    ig->rt = rt;
    ig->db = db;
    *out = ig;
    return 0;
}

void fx_ingest_close(struct fx_ingest *ig)
{
    if (!ig)
        return;
    fx_store_close(ig->db);
    free(ig);
}

/* Per-file import state. */
struct job {
    struct fx_ingest *ig;
    const struct fx_pipeline *p;
    struct fx_binding *bind;
    struct fx_batch_result *res;
    const char *path;
    char source_hash[65];
    int have_hash;
    char now[32];
    struct fx_buf chunk; /* JSON payload being built */
    size_t chunk_rows, chunk_cap;
    long first_row, last_row;
    uint64_t chunk_seq;
    /* repeat keys of timed rows: only recorded, never tested, so they are
     * written at commit time in index order (random-order inserts into a big
     * index cost a page read each) */
    int64_t (*later)[2];
    size_t nlater, caplater;
    struct bulk *bulk; /* PostgreSQL: rows awaiting a block decision; NULL on SQLite */
    /* where the time goes, in microseconds, for the debug log line of the batch
     * (timed per statement or per chunk, never per row) */
    int64_t us_dedupe, us_issues, us_stage, us_commit;
    unsigned long n_dedupe, n_issues;
};

static int prep(struct fx_ingest *ig, const char *sql, struct fx_stmt **st, struct fx_err *err)
{
    return fx_store_prepare(ig->db, sql, st, err);
}

static int add_issue(struct job *j, long row, int col, const char *field, const char *value,
                     const char *rule, const char *reason, const char *severity, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = prep(j->ig,
                  "INSERT INTO issues(batch_id,row,col,field,value,rule,reason,severity)"
                  " VALUES(?,?,?,?,?,?,?,?)",
                  &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, j->res->batch_id, strlen(j->res->batch_id));
    fx_stmt_bind_int(st, 2, row);
    fx_stmt_bind_int(st, 3, col);
    fx_stmt_bind_text(st, 4, field ? field : "", field ? strlen(field) : 0);
    fx_stmt_bind_text(st, 5, value ? value : "", value ? strlen(value) : 0);
    fx_stmt_bind_text(st, 6, rule, strlen(rule));
    fx_stmt_bind_text(st, 7, reason, strlen(reason));
    fx_stmt_bind_text(st, 8, severity, strlen(severity));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot record issue: %s", fx_store_errmsg(j->ig->db)) : 0;
}

/* 128 of the key's 256 bits are plenty to tell rows apart. */
void fx__key_words(const char *key, int64_t w[2])
{
    /* lower-case hex digit -> value; keys are our own SHA-256 hex */
    static const unsigned char hexval[256] = {
        ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3, ['4'] = 4,  ['5'] = 5,
        ['6'] = 6,  ['7'] = 7,  ['8'] = 8,  ['9'] = 9, ['a'] = 10, ['b'] = 11,
        ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15};
    const unsigned char *k = (const unsigned char *)key;
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 16; i++) {
        hi = (hi << 4) | hexval[k[i]];
        lo = (lo << 4) | hexval[k[16 + i]];
    }
    w[0] = (int64_t)hi;
    w[1] = (int64_t)lo;
}

/* Insert a key into `seen`: 1 = new, 0 = already there, < 0 error. */
static int seen_insert_words(struct job *j, const int64_t w[2], struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = prep(j->ig, "INSERT INTO seen(hi,lo) VALUES(?,?) ON CONFLICT DO NOTHING", &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_int(st, 1, w[0]);
    fx_stmt_bind_int(st, 2, w[1]);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "cannot record dedupe key: %s", fx_store_errmsg(j->ig->db));
    return fx_store_changes(j->ig->db) > 0 ? 1 : 0;
}

static int seen_insert(struct job *j, const char *key, struct fx_err *err)
{
    int64_t w[2];
    fx__key_words(key, w);
    return seen_insert_words(j, w, err);
}

static int cmp_words(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Write the deferred repeat keys, in index order; call before each commit. */
static int flush_later(struct job *j, struct fx_err *err)
{
    if (j->nlater == 0)
        return 0;
    qsort(j->later, j->nlater, sizeof(*j->later), cmp_words);
    for (size_t i = 0; i < j->nlater; i++) {
        int rc = seen_insert_words(j, j->later[i], err);
        if (rc < 0)
            return rc;
    }
    j->nlater = 0;
    return 0;
}

void fx__bind_counts(struct fx_stmt *st, int first, const uint64_t c[6])
{
    for (int i = 0; i < 6; i++)
        fx_stmt_bind_int(st, first + i, (int64_t)c[i]);
}

void fx__chunk_begin(struct fx_buf *b, const char *batch_id, const struct fx_pipeline *p,
                     uint64_t seq)
{
    const struct fx_plan *plan = fx_pipeline_plan(p);
    fx_buf_reset(b);
    fx_buf_printf(b, "{\"batch\":\"%s\",\"pipeline\":", batch_id);
    const char *pn = fx_pipeline_name(p);
    fx_buf_json_str(b, pn, strlen(pn));
    fx_buf_printf(b, ",\"chunk\":%llu,\"fields\":[", (unsigned long long)seq);
    size_t nf = fx_pipeline_nfields(p);
    for (size_t i = 0; i < nf; i++) {
        const char *fn = fx_pipeline_field_name(p, i);
        if (i)
            fx_buf_putc(b, ',');
        fx_buf_json_str(b, fn, strlen(fn));
    }
    fx_buf_puts(b, "],\"raw\":[");
    for (size_t i = 0; i < plan->nraw; i++)
        fx_buf_printf(b, "%s%d", i ? "," : "", plan->raw[i]);
    fx_buf_puts(b, "],\"rows\":[");
}

/* Decimal text of v into out (at least 21 bytes); returns its length. */
static size_t fmt_int(char *out, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

void fx__chunk_row(struct fx_buf *b, int first, const struct fx_pipeline *p,
                   const struct fx_row *row, const char *key)
{
    const struct fx_plan *plan = fx_pipeline_plan(p);
    /* by hand rather than printf: a row is rendered for every accepted record */
    char num[24];
    if (!first)
        fx_buf_putc(b, ',');
    fx_buf_putc(b, '[');
    fx_buf_append(b, num, fmt_int(num, (int64_t)row->src_row));
    fx_buf_append(b, ",\"", 2);
    fx_buf_append(b, key, 32);
    fx_buf_putc(b, '"');
    for (size_t i = 0; i < row->n; i++) {
        const struct fx_value *v = &row->v[i];
        if (!v->present) {
            fx_buf_append(b, ",null", 5);
        } else if (fx_type_is_integer(fx_pipeline_field_type(p, i))) {
            fx_buf_putc(b, ',');
            fx_buf_append(b, num, fmt_int(num, v->i));
        } else {
            fx_buf_putc(b, ',');
            fx_buf_json_str(b, v->s, v->len);
        }
    }
    for (size_t i = 0; i < plan->nraw; i++) {
        const struct fx_value *v = &row->v[plan->raw[i]];
        fx_buf_putc(b, ',');
        fx_buf_json_str(b, v->raw ? v->raw : "", v->raw ? v->raw_len : 0);
    }
    fx_buf_putc(b, ']');
}

static void chunk_begin(struct job *j)
{
    fx__chunk_begin(&j->chunk, j->res->batch_id, j->p, j->chunk_seq);
    j->chunk_rows = 0;
}

static void chunk_add(struct job *j, const struct fx_row *row, const char *key)
{
    if (j->chunk_rows == 0)
        j->first_row = row->src_row;
    j->last_row = row->src_row;
    fx__chunk_row(&j->chunk, j->chunk_rows == 0, j->p, row, key);
    j->chunk_rows++;
}

int fx__stage_chunk(struct fx_store *db, const char *batch_id, uint64_t seq, long first_row,
                    long last_row, size_t nrows, const char *now, struct fx_buf *payload,
                    const char *corr, const char *trace, struct fx_err *err)
{
    fx_buf_puts(payload, "]}");
    char id[37];
    fx_uuid7(id);
    return fx__stage_chunk_as(db, id, NULL, batch_id, seq, first_row, last_row, nrows, now, payload,
                              corr, trace, err);
}

int fx__stage_chunk_as(struct fx_store *db, const char *id, const char *held_by,
                       const char *batch_id, uint64_t seq, long first_row, long last_row,
                       size_t nrows, const char *now, const struct fx_buf *payload,
                       const char *corr, const char *trace, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(db,
                              "INSERT INTO staging(id,batch_id,seq,first_row,last_row,nrows,"
                              "state,created_at,correlation_id,traceparent)"
                              " VALUES(?,?,?,?,?,?,'pending',?,?,?)",
                              &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, id, 36);
    fx_stmt_bind_text(st, 2, batch_id, 36);
    fx_stmt_bind_int(st, 3, (int64_t)seq);
    fx_stmt_bind_int(st, 4, first_row);
    fx_stmt_bind_int(st, 5, last_row);
    fx_stmt_bind_int(st, 6, (int64_t)nrows);
    fx_stmt_bind_text(st, 7, now, strlen(now));
    if (corr)
        fx_stmt_bind_text(st, 8, corr, strlen(corr));
    else
        fx_stmt_bind_null(st, 8);
    if (trace)
        fx_stmt_bind_text(st, 9, trace, strlen(trace));
    else
        fx_stmt_bind_null(st, 9);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "cannot stage chunk: %s", fx_store_errmsg(db));
    rc = fx_store_prepare(db, "INSERT INTO staging_payload(id,payload) VALUES(?,?)", &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, id, 36);
    fx_stmt_bind_text_ref(st, 2, payload->data, payload->len);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "cannot stage chunk: %s", fx_store_errmsg(db));
    if (held_by) { /* no outbox entry yet: listed as held until its request commits */
        rc = fx_store_prepare(
            db, "INSERT INTO staging_held(batch_id,id,owner,created_at) VALUES(?,?,?,?)", &st, err);
        if (rc)
            return rc;
        fx_stmt_bind_text(st, 1, batch_id, 36);
        fx_stmt_bind_text(st, 2, id, 36);
        fx_stmt_bind_text(st, 3, held_by, strlen(held_by));
        fx_stmt_bind_text(st, 4, now, strlen(now));
        rc = fx_stmt_step(st);
        fx_stmt_reset(st);
        return rc < 0 ? fx_err_set(err, rc, "cannot hold chunk: %s", fx_store_errmsg(db)) : 0;
    }
    return fx__queue_chunk(db, id, err);
}

int fx__queue_chunk(struct fx_store *db, const char *id, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc =
        fx_store_prepare(db, "INSERT INTO outbox(staging_id,routing_key) VALUES(?,?)", &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, id, 36);
    fx_stmt_bind_text(st, 2, FX_RK_PROCESSED, strlen(FX_RK_PROCESSED));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "cannot queue chunk: %s", fx_store_errmsg(db));
    return 0;
}

static int chunk_flush(struct job *j, struct fx_err *err)
{
    if (j->chunk_rows == 0)
        return 0;
    int64_t t0 = fx_mono_us();
    int rc = fx__stage_chunk(j->ig->db, j->res->batch_id, j->chunk_seq, j->first_row, j->last_row,
                             j->chunk_rows, j->now, &j->chunk, NULL, NULL, err);
    j->us_stage += fx_mono_us() - t0;
    if (rc)
        return rc;
    j->chunk_seq++;
    j->res->chunks++;
    chunk_begin(j);
    return 0;
}

static int batch_insert(struct fx_ingest *ig, const struct fx_batch_result *res,
                        const char *pipeline, const char *source, const char *state,
                        const char *error, const char *now, struct fx_err *err)
{
    struct fx_stmt *st;
    char tp[56];
    fx_traceparent_new(tp);
    int rc = fx_store_prepare(ig->db,
                              "INSERT INTO batches(id,correlation_id,traceparent,pipeline,source,"
                              "state,error,created_at) VALUES(?,?,?,?,?,?,?,?)",
                              &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, res->batch_id, 36);
    fx_stmt_bind_text(st, 2, res->correlation_id, 36);
    fx_stmt_bind_text(st, 3, tp, strlen(tp));
    fx_stmt_bind_text(st, 4, pipeline, strlen(pipeline));
    fx_stmt_bind_text(st, 5, source, strlen(source));
    fx_stmt_bind_text(st, 6, state, strlen(state));
    if (error)
        fx_stmt_bind_text(st, 7, error, strlen(error));
    else
        fx_stmt_bind_null(st, 7);
    fx_stmt_bind_text(st, 8, now, strlen(now));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot record batch: %s", fx_store_errmsg(ig->db)) : 0;
}

/* Record a refused file: its own small transaction, after the import rolled back. */
static void record_refusal(struct fx_ingest *ig, struct fx_batch_result *res, const char *pipeline,
                           const char *path, const struct fx_err *why)
{
    char msg[1024], now[32];
    fx_err_format(why, msg, sizeof(msg));
    fx__now_iso(now);
    struct fx_err e2;
    fx_err_clear(&e2);
    res->refused = 1;
    if (fx_store_begin(ig->db) == 0) {
        if (batch_insert(ig, res, pipeline, path, "failed", msg, now, &e2) == 0)
            fx_store_commit(ig->db);
        else
            fx_store_rollback(ig->db);
    }
    fx_log(FX_LOG_WARN, "ingest", res->correlation_id, "refused %s: %s", path, msg);
}

/* Store the batch's counts (and state: "receiving" part-way, "queued" at the end). */
static int save_counts(struct job *j, const char *state, struct fx_err *err)
{
    struct fx_stmt *st;
    struct fx_batch_result *r = j->res;
    int rc = prep(j->ig,
                  "UPDATE batches SET state=?, source_hash=?, received=?, accepted=?,"
                  " rejected=?, duplicate=?, warnings=?, possible_dup=?, chunks=?,"
                  " unknown_columns=?, finished_at=? WHERE id=?",
                  &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, state, strlen(state));
    fx_stmt_bind_text(st, 2, j->source_hash, strlen(j->source_hash));
    fx__bind_counts(st, 3,
                    (const uint64_t[6]){r->received, r->accepted, r->rejected, r->duplicate,
                                        r->warnings, r->possible_dup});
    fx_stmt_bind_int(st, 9, (int64_t)r->chunks);
    fx_stmt_bind_text(st, 10, r->unknown_columns, strlen(r->unknown_columns));
    char now[32];
    fx__now_iso(now);
    if (strcmp(state, "queued") == 0)
        fx_stmt_bind_text(st, 11, now, strlen(now));
    else
        fx_stmt_bind_null(st, 11);
    fx_stmt_bind_text(st, 12, r->batch_id, 36);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot finish batch: %s", fx_store_errmsg(j->ig->db)) : 0;
}

/*
 * Blocks (PostgreSQL). A row read is validated, keyed and serialized as a
 * chunk row at once (the reader reuses its memory), then held in the block
 * with copies of its issues. Deciding a block costs one statement for its
 * dedupe keys and, for a file keyed by position, one for the content keys of
 * the rows kept:
 *
 *   INSERT INTO seen(hi,lo) SELECT * FROM unnest(?::bigint[], ?::bigint[])
 *     ON CONFLICT DO NOTHING RETURNING hi, lo
 *
 * A key comes back when this statement inserted it. Keys are sent once each,
 * sorted (index order, and the same lock order in every session), and the
 * first row of the block holding a key gets the verdict: later rows with the
 * same key are repeats of it, as in the per-row path. Doing all dedupe keys
 * before all content keys equals the per-row interleaving because a file
 * draws them from disjoint spaces (content hashes with the time vs position
 * hashes vs repeat hashes); only repeat keys are shared, between the content
 * keys tested here and the deferred keys of timed files, written at commit
 * as before. Then the block is replayed in row order: counts, issues, the
 * chunk and its flushes, exactly as handle_row would have done row by row.
 *
 * Commits: the per-row path commits after row R when R >= next_commit and
 * the chunk is empty after R. A block must not span such a point, or the
 * commit would carry dedupe keys of rows that are not staged yet. Below
 * next_commit no commit can happen; past it, the chunk can only become
 * empty when it is already empty (the held rows may all be duplicates) or
 * when the held candidates could fill it: the block is decided exactly then
 * (must_decide), so a commit always falls at the end of a block.
 */
/* rows held at most, whatever the chunk size: 100k rows took 110 statements
 * in blocks of 1000 and 36 in blocks of 4096, about 15 % less time; larger
 * blocks gained nothing more (the server's work per key dominates) */
#define BLOCK_ROWS 4096
#define BLOCK_MAX_ISSUES 4096  /* issues held (about 2 MB) before deciding early */
#define ISSUES_PER_INSERT 4096 /* issue rows per INSERT */
#define ISSUE_BYTES_PER_INSERT (1u << 20)
#define LATER_PER_INSERT 10000 /* deferred repeat keys per INSERT */

enum { KEY_ONLY, KEY_TIMED, KEY_POSITION };

/* One row read and not yet decided. */
struct pend {
    long row, src_row;
    int64_t key[2], content[2];
    size_t off, len;  /* the row as chunk JSON (without separator), in bulk.rows */
    size_t iss, niss; /* its validation issues, in bulk.iss */
    unsigned char kind, rejected, dup, maybe;
};

/* A key of a held row, sorted for one INSERT; fresh = this row inserted it. */
struct keyref {
    int64_t w[2];
    size_t idx;
    int fresh;
};

struct bulk {
    struct pend *pend;
    size_t npend, cappend, ncand;
    struct fx_buf rows;
    struct fx_issue *iss;
    size_t niss, capiss;
    struct keyref *refs;
    size_t caprefs;
    struct fx_buf hi, lo; /* bigint[] literals */
    /* issue rows waiting for one INSERT, one text[] literal per column:
     * row, col, field, value, rule, reason, severity */
    struct fx_buf q[7];
    size_t nq;
};

static struct bulk *bulk_new(void)
{
    struct bulk *bk = fx_calloc(1, sizeof(*bk));
    fx_buf_init(&bk->rows, 0);
    fx_buf_init(&bk->hi, 0);
    fx_buf_init(&bk->lo, 0);
    for (size_t i = 0; i < 7; i++) {
        fx_buf_init(&bk->q[i], 0);
        fx_buf_putc(&bk->q[i], '{');
    }
    return bk;
}

static void bulk_free(struct bulk *bk)
{
    if (!bk)
        return;
    free(bk->pend);
    free(bk->iss);
    free(bk->refs);
    fx_buf_cleanup(&bk->rows);
    fx_buf_cleanup(&bk->hi);
    fx_buf_cleanup(&bk->lo);
    for (size_t i = 0; i < 7; i++)
        fx_buf_cleanup(&bk->q[i]);
    free(bk);
}

static size_t held(const struct job *j)
{
    return j->bulk ? j->bulk->npend : 0;
}

/* Append s as a double-quoted element of an array literal ('{"a","b\"c"}'). */
static void array_text(struct fx_buf *b, const char *s)
{
    fx_buf_putc(b, '"');
    for (;;) {
        size_t n = strcspn(s, "\"\\");
        fx_buf_append(b, s, n);
        if (!s[n])
            break;
        fx_buf_putc(b, '\\');
        fx_buf_putc(b, s[n]);
        s += n + 1;
    }
    fx_buf_putc(b, '"');
}

/* Write the queued issue rows in one INSERT; ORDER BY keeps their order in the id column. */
static int flush_issues(struct job *j, struct fx_err *err)
{
    struct bulk *bk = j->bulk;
    if (!bk || bk->nq == 0)
        return 0;
    for (size_t i = 0; i < 7; i++)
        fx_buf_putc(&bk->q[i], '}');
    struct fx_stmt *st;
    int rc = prep(j->ig,
                  "INSERT INTO issues(batch_id,row,col,field,value,rule,reason,severity)"
                  " SELECT ?, r, c, f, v, ru, re, s FROM unnest(?::bigint[], ?::int[], ?::text[],"
                  " ?::text[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY"
                  " AS u(r, c, f, v, ru, re, s, n) ORDER BY n",
                  &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, j->res->batch_id, strlen(j->res->batch_id));
    for (size_t i = 0; i < 7; i++)
        fx_stmt_bind_text_ref(st, (int)i + 2, bk->q[i].data, bk->q[i].len);
    int64_t t0 = fx_mono_us();
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    j->us_issues += fx_mono_us() - t0;
    j->n_issues++;
    if (rc < 0)
        return fx_err_set(err, rc, "cannot record %zu issues: %s", bk->nq,
                          fx_store_errmsg(j->ig->db));
    for (size_t i = 0; i < 7; i++) {
        fx_buf_reset(&bk->q[i]);
        fx_buf_putc(&bk->q[i], '{');
    }
    bk->nq = 0;
    return 0;
}

/* Queue one issue row (the bulk counterpart of add_issue). */
static int queue_issue(struct job *j, long row, int col, const char *field, const char *value,
                       const char *rule, const char *reason, const char *severity,
                       struct fx_err *err)
{
    struct bulk *bk = j->bulk;
    if (bk->nq)
        for (size_t i = 0; i < 7; i++)
            fx_buf_putc(&bk->q[i], ',');
    fx_buf_printf(&bk->q[0], "%ld", row);
    fx_buf_printf(&bk->q[1], "%d", col);
    array_text(&bk->q[2], field);
    array_text(&bk->q[3], value);
    array_text(&bk->q[4], rule);
    array_text(&bk->q[5], reason);
    array_text(&bk->q[6], severity);
    bk->nq++;
    size_t bytes = 0;
    for (size_t i = 0; i < 7; i++)
        bytes += bk->q[i].len;
    if (bk->nq >= ISSUES_PER_INSERT || bytes >= ISSUE_BYTES_PER_INSERT)
        return flush_issues(j, err);
    return 0;
}

static void keys_literal(struct bulk *bk)
{
    fx_buf_reset(&bk->hi);
    fx_buf_reset(&bk->lo);
    fx_buf_putc(&bk->hi, '{');
    fx_buf_putc(&bk->lo, '{');
}

static void keys_add(struct bulk *bk, const int64_t w[2])
{
    if (bk->hi.len > 1) {
        fx_buf_putc(&bk->hi, ',');
        fx_buf_putc(&bk->lo, ',');
    }
    char num[24];
    fx_buf_append(&bk->hi, num, fmt_int(num, w[0]));
    fx_buf_append(&bk->lo, num, fmt_int(num, w[1]));
}

/* Close the two array literals and prepare sql (taking them as ?1 and ?2). */
static int keys_stmt(struct job *j, const char *sql, struct fx_stmt **st, struct fx_err *err)
{
    struct bulk *bk = j->bulk;
    fx_buf_putc(&bk->hi, '}');
    fx_buf_putc(&bk->lo, '}');
    int rc = prep(j->ig, sql, st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text_ref(*st, 1, bk->hi.data, bk->hi.len);
    fx_stmt_bind_text_ref(*st, 2, bk->lo.data, bk->lo.len);
    return 0;
}

static int cmp_refs(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c = cmp_words(x->w, y->w);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Insert the keys of refs[0..n) into `seen` in one statement. On return refs
 * is sorted, and refs[i].fresh is 1 when that row's key was not there before:
 * the statement inserted it and no earlier row of the block holds it.
 */
static int seen_insert_block(struct job *j, struct keyref *refs, size_t n, const char *what,
                             struct fx_err *err)
{
    struct bulk *bk = j->bulk;
    if (n == 0)
        return 0;
    qsort(refs, n, sizeof(*refs), cmp_refs);
    keys_literal(bk);
    for (size_t i = 0; i < n; i++) {
        refs[i].fresh = 0;
        if (i == 0 || cmp_words(refs[i - 1].w, refs[i].w) != 0)
            keys_add(bk, refs[i].w);
    }
    struct fx_stmt *st;
    int rc = keys_stmt(j,
                       "INSERT INTO seen(hi,lo) SELECT * FROM unnest(?::bigint[], ?::bigint[])"
                       " ON CONFLICT DO NOTHING RETURNING hi, lo",
                       &st, err);
    if (rc)
        return rc;
    int64_t t0 = fx_mono_us();
    j->n_dedupe++;
    while ((rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        struct keyref k = {{fx_stmt_int(st, 0), fx_stmt_int(st, 1)}, 0, 0};
        struct keyref *hit = bsearch(&k, refs, n, sizeof(*refs), cmp_words);
        if (!hit)
            continue; /* cannot happen: the server returns what it was given */
        while (hit > refs && cmp_words(hit[-1].w, hit->w) == 0)
            hit--; /* the block's first row with this key */
        hit->fresh = 1;
    }
    fx_stmt_reset(st);
    j->us_dedupe += fx_mono_us() - t0;
    if (rc < 0)
        return fx_err_set(err, rc, "cannot record %s keys of rows %ld to %ld: %s", what,
                          bk->pend[0].row, bk->pend[bk->npend - 1].row, fx_store_errmsg(j->ig->db));
    return 0;
}

/* Append a decided row's chunk JSON, as chunk_add would have written it. */
static int chunk_add_held(struct job *j, const struct pend *pe, struct fx_err *err)
{
    if (j->chunk_rows == 0)
        j->first_row = pe->src_row;
    else
        fx_buf_putc(&j->chunk, ',');
    j->last_row = pe->src_row;
    fx_buf_append(&j->chunk, j->bulk->rows.data + pe->off, pe->len);
    j->chunk_rows++;
    if (j->chunk_rows >= j->chunk_cap)
        return chunk_flush(j, err);
    return 0;
}

static void later_add(struct job *j, const int64_t w[2])
{
    if (j->nlater == j->caplater) {
        j->caplater = j->caplater ? j->caplater * 2 : 4096;
        j->later = fx_realloc(j->later, j->caplater * sizeof(*j->later));
    }
    j->later[j->nlater][0] = w[0];
    j->later[j->nlater][1] = w[1];
    j->nlater++;
}

/* Replay one decided row with handle_row's rules. */
static int replay(struct job *j, const struct pend *pe, struct fx_err *err)
{
    struct fx_batch_result *r = j->res;
    const struct fx_issue *iss = j->bulk->iss + pe->iss;
    int rc;
    if (pe->rejected) {
        r->rejected++;
        for (size_t i = 0; i < pe->niss; i++)
            if ((rc = queue_issue(j, pe->row, iss[i].column, iss[i].field, iss[i].value,
                                  iss[i].rule, iss[i].reason,
                                  iss[i].severity == FX_ISSUE_ERROR ? "error" : "warning", err)))
                return rc;
        return 0;
    }
    if (pe->dup) {
        r->duplicate++;
        return 0;
    }
    for (size_t i = 0; i < pe->niss; i++) {
        r->warnings++;
        if ((rc = queue_issue(j, pe->row, iss[i].column, iss[i].field, iss[i].value, iss[i].rule,
                              iss[i].reason, "warning", err)))
            return rc;
    }
    if (pe->kind == KEY_TIMED) {
        later_add(j, pe->content);
    } else if (pe->kind == KEY_POSITION && pe->maybe) {
        r->possible_dup++;
        if ((rc = queue_issue(j, pe->row, 0, "", "", "possible_duplicate",
                              "same content as an earlier row; kept because the file has no "
                              "date-time to tell a repeat purchase from a re-sent one",
                              "warning", err)))
            return rc;
    }
    r->accepted++;
    return chunk_add_held(j, pe, err);
}

/* Decide the held rows: their dedupe keys, then their content keys, then replay them. */
static int decide(struct job *j, struct fx_err *err)
{
    struct bulk *bk = j->bulk;
    if (!bk || bk->npend == 0)
        return 0;
    if (bk->caprefs < bk->ncand) {
        bk->caprefs = bk->ncand;
        bk->refs = fx_realloc(bk->refs, bk->caprefs * sizeof(*bk->refs));
    }
    size_t n = 0;
    for (size_t i = 0; i < bk->npend; i++)
        if (!bk->pend[i].rejected)
            bk->refs[n++] = (struct keyref){{bk->pend[i].key[0], bk->pend[i].key[1]}, i, 0};
    int rc = seen_insert_block(j, bk->refs, n, "dedupe", err);
    if (rc)
        return rc;
    for (size_t k = 0; k < n; k++)
        bk->pend[bk->refs[k].idx].dup = !bk->refs[k].fresh;
    n = 0;
    for (size_t i = 0; i < bk->npend; i++) {
        const struct pend *pe = &bk->pend[i];
        if (!pe->rejected && !pe->dup && pe->kind == KEY_POSITION)
            bk->refs[n++] = (struct keyref){{pe->content[0], pe->content[1]}, i, 0};
    }
    if ((rc = seen_insert_block(j, bk->refs, n, "content", err)))
        return rc;
    for (size_t k = 0; k < n; k++)
        bk->pend[bk->refs[k].idx].maybe = !bk->refs[k].fresh;
    for (size_t i = 0; i < bk->npend; i++)
        if ((rc = replay(j, &bk->pend[i], err)))
            return rc;
    bk->npend = bk->ncand = bk->niss = 0;
    fx_buf_reset(&bk->rows);
    return 0;
}

/* Must the held rows be decided now, after row res->received? See "Commits" above. */
static int must_decide(const struct job *j, uint64_t next_commit)
{
    const struct bulk *bk = j->bulk;
    if (!bk || bk->npend == 0)
        return 0;
    if (bk->ncand >= BLOCK_ROWS || bk->npend >= BLOCK_ROWS * 4 || bk->niss >= BLOCK_MAX_ISSUES)
        return 1;
    if (j->res->received < next_commit)
        return 0;
    return j->chunk_rows == 0 || bk->ncand >= j->chunk_cap - j->chunk_rows;
}

/* Hold a validated row (handle_row's first half, on PostgreSQL). */
static int hold_row(struct job *j, const struct fx_record *rec, const struct fx_row *row,
                    const struct fx_issues *iss, int rejected, const char *key, const char *content,
                    int by_content)
{
    struct bulk *bk = j->bulk;
    if (bk->npend == bk->cappend) {
        bk->cappend = bk->cappend ? bk->cappend * 2 : 1024;
        bk->pend = fx_realloc(bk->pend, bk->cappend * sizeof(*bk->pend));
    }
    if (bk->niss + iss->n > bk->capiss) {
        while (bk->niss + iss->n > bk->capiss)
            bk->capiss = bk->capiss ? bk->capiss * 2 : 64;
        bk->iss = fx_realloc(bk->iss, bk->capiss * sizeof(*bk->iss));
    }
    struct pend *pe = &bk->pend[bk->npend++];
    memset(pe, 0, sizeof(*pe));
    pe->row = rec->row;
    pe->src_row = row->src_row;
    pe->iss = bk->niss;
    pe->niss = iss->n;
    if (iss->n)
        memcpy(bk->iss + bk->niss, iss->v, iss->n * sizeof(*iss->v));
    bk->niss += iss->n;
    pe->rejected = (unsigned char)rejected;
    if (rejected)
        return 0;
    bk->ncand++;
    fx__key_words(key, pe->key);
    fx__key_words(content, pe->content);
    if (memcmp(key, content, 64) == 0)
        pe->kind = KEY_ONLY;
    else
        pe->kind = by_content ? KEY_TIMED : KEY_POSITION;
    pe->off = bk->rows.len;
    fx__chunk_row(&bk->rows, 1, j->p, row, key);
    pe->len = bk->rows.len - pe->off;
    return 0;
}

/* The deferred repeat keys in a few statements, in index order (PostgreSQL). */
static int flush_later_bulk(struct job *j, struct fx_err *err)
{
    struct bulk *bk = j->bulk;
    qsort(j->later, j->nlater, sizeof(*j->later), cmp_words);
    for (size_t at = 0; at < j->nlater;) {
        keys_literal(bk);
        size_t end = at + LATER_PER_INSERT < j->nlater ? at + LATER_PER_INSERT : j->nlater;
        for (size_t i = at; i < end; i++)
            if (i == at || cmp_words(j->later[i - 1], j->later[i]) != 0)
                keys_add(bk, j->later[i]);
        struct fx_stmt *st;
        int rc = keys_stmt(j,
                           "INSERT INTO seen(hi,lo) SELECT * FROM unnest(?::bigint[], ?::bigint[])"
                           " ON CONFLICT DO NOTHING",
                           &st, err);
        if (rc)
            return rc;
        int64_t t0 = fx_mono_us();
        rc = fx_stmt_step(st);
        fx_stmt_reset(st);
        j->us_dedupe += fx_mono_us() - t0;
        j->n_dedupe++;
        if (rc < 0)
            return fx_err_set(err, rc, "cannot record %zu repeat keys: %s", end - at,
                              fx_store_errmsg(j->ig->db));
        at = end;
    }
    j->nlater = 0;
    return 0;
}

/* Everything a commit must carry that is still held or queued. */
static int before_commit(struct job *j, struct fx_err *err)
{
    if (!j->bulk) {
        int64_t t0 = fx_mono_us();
        int rc = flush_later(j, err);
        /* keys went into `seen`: tell the API writer's filter (ingest v4) */
        if (rc == 0 && (rc = fx_store_exec(j->ig->db, "UPDATE seen_gen SET gen = gen + 1", err)))
            fx_err_set(err, rc, "cannot record dedupe keys: %s", fx_store_errmsg(j->ig->db));
        j->us_dedupe += fx_mono_us() - t0;
        return rc;
    }
    int rc = flush_issues(j, err);
    if (rc == 0 && j->nlater)
        rc = flush_later_bulk(j, err);
    return rc;
}

static int handle_row(struct job *j, const struct fx_record *rec, struct fx_row *row,
                      struct fx_issues *iss, struct fx_err *err)
{
    struct fx_batch_result *r = j->res;
    int rc;
    r->received++;
    int vrc = fx_pipeline_validate(j->bind, rec, row, iss);
    if (vrc != 0 && j->bulk)
        return hold_row(j, rec, row, iss, 1, NULL, NULL, 0);
    if (vrc != 0) {
        r->rejected++;
        for (size_t i = 0; i < iss->n; i++) {
            const struct fx_issue *is = &iss->v[i];
            if ((rc = add_issue(j, rec->row, is->column, is->field, is->value, is->rule, is->reason,
                                is->severity == FX_ISSUE_ERROR ? "error" : "warning", err)))
                return rc;
        }
        return 0;
    }
    char key[65], content[65];
    int by_content = 0;
    fx_pipeline_dedupe_key(j->bind, row, j->source_hash, key, content, &by_content);
    if (!by_content && !j->have_hash) {
        /* first row keyed by position: the file's identity is needed now */
        if (fx_sha256_file(j->path, j->source_hash) != 0)
            return fx_err_set(err, FX_EIO, "cannot read file to hash it");
        j->have_hash = 1;
        fx_pipeline_dedupe_key(j->bind, row, j->source_hash, key, content, &by_content);
    }
    if (j->bulk)
        return hold_row(j, rec, row, iss, 0, key, content, by_content);
    rc = seen_insert(j, key, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        r->duplicate++;
        return 0;
    }
    for (size_t i = 0; i < iss->n; i++) {
        const struct fx_issue *is = &iss->v[i];
        r->warnings++;
        if ((rc = add_issue(j, rec->row, is->column, is->field, is->value, is->rule, is->reason,
                            "warning", err)))
            return rc;
    }
    if (memcmp(key, content, 64) != 0 && by_content) {
        /* the repeat key (content without the time) of a timed row: recorded so
         * a later file without data_hora can be matched against it */
        int64_t w[2];
        fx__key_words(content, w);
        later_add(j, w);
    } else if (memcmp(key, content, 64) != 0) {
        rc = seen_insert(j, content, err);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            r->possible_dup++;
            if ((rc = add_issue(j, rec->row, 0, "", "", "possible_duplicate",
                                "same content as an earlier row; kept because the file has no "
                                "date-time to tell a repeat purchase from a re-sent one",
                                "warning", err)))
                return rc;
        }
    }
    r->accepted++;
    chunk_add(j, row, key);
    if (j->chunk_rows >= j->chunk_cap)
        return chunk_flush(j, err);
    return 0;
}

static void set_source(struct fx_err *err, const char *path)
{
    if (err && !err->source[0])
        snprintf(err->source, sizeof(err->source), "%s", path);
}

/* Structure pass: read every record once without validating, so a fatal read
 * error refuses the file before any row is queued. */
static int prescan(const char *path, const struct fx_reader_opts *ro, struct fx_err *err)
{
    struct fx_reader *rd = NULL;
    int rc = fx_reader_open(path, ro, &rd, err);
    struct fx_record rec;
    while (rc == 0 && (rc = fx_reader_next(rd, &rec, err)) == 1)
        rc = 0;
    fx_reader_free(rd);
    return rc < 0 ? rc : 0;
}

/* Mark a batch that already has committed rows as failed, keeping its counts. */
static void mark_failed(struct fx_ingest *ig, struct fx_batch_result *res, const struct fx_err *why)
{
    char msg[1024];
    fx_err_format(why, msg, sizeof(msg));
    struct fx_stmt *st;
    struct fx_err e2;
    fx_err_clear(&e2);
    if (fx_store_prepare(ig->db, "UPDATE batches SET state='failed', error=? WHERE id=?", &st,
                         &e2) == 0) {
        fx_stmt_bind_text(st, 1, msg, strlen(msg));
        fx_stmt_bind_text(st, 2, res->batch_id, 36);
        fx_stmt_step(st);
        fx_stmt_reset(st);
    }
    fx_log(FX_LOG_ERROR, "ingest", res->correlation_id,
           "batch %s failed after %llu rows were queued: %s", res->batch_id,
           (unsigned long long)res->accepted, msg);
}

int fx_ingest_file(struct fx_ingest *ig, const char *path, const char *pipeline,
                   fx_progress_cb progress, void *ud, struct fx_batch_result *res,
                   struct fx_err *err)
{
    int64_t t_start = fx_mono_us();
    memset(res, 0, sizeof(*res));
    fx_uuid7(res->batch_id);
    fx_uuid7(res->correlation_id);
    if (!pipeline)
        pipeline = ig->rt->default_pipeline;
    struct job j;
    memset(&j, 0, sizeof(j));
    j.ig = ig;
    j.res = res;
    j.path = path;
    fx__now_iso(j.now);
    fx_buf_init(&j.chunk, 0);
    struct fx_reader *rd = NULL;
    struct fx_row row;
    struct fx_issues iss = {0};
    int row_ready = 0, in_tx = 0, committed = 0;
    int rc;

    j.p = fx_runtime_pipeline(ig->rt, pipeline);
    if (!j.p) {
        rc = fx_err_set(err, FX_ENOTFOUND, "unknown pipeline '%s' (no %s/%s.yaml)", pipeline,
                        ig->rt->pipelines_dir, pipeline);
        set_source(err, path);
        record_refusal(ig, res, pipeline, path, err);
        goto out;
    }
    struct fx_reader_opts ro;
    fx_reader_opts_init(&ro);
    ro.max_line_bytes = (size_t)fx_config_int(ig->rt->cfg, "ingest.max_line_bytes");
    ro.max_field_bytes = (size_t)fx_config_int(ig->rt->cfg, "ingest.max_field_bytes");
    ro.max_fields = (size_t)fx_config_int(ig->rt->cfg, "ingest.max_fields");
    if ((rc = prescan(path, &ro, err)) != 0)
        goto refused;
    int64_t t_scanned = fx_mono_us() - t_start;
    rc = fx_reader_open(path, &ro, &rd, err);
    if (rc)
        goto refused;

    struct fx_record rec;
    rc = fx_reader_next(rd, &rec, err);
    if (rc < 0)
        goto refused;
    if (rc == 0) {
        rc = fx_err_set(err, FX_EEMPTY, "empty file: no header row and no data");
        goto refused;
    }
    if (rec.bad) {
        *err = rec.err;
        rc = FX_EPARSE;
        goto refused;
    }
    rc = fx_pipeline_bind(j.p, &rec, path, &j.bind, err);
    if (rc)
        goto refused;
    const char *const *unknown;
    size_t nunk = fx_binding_unknown(j.bind, &unknown);
    for (size_t i = 0, off = 0; i < nunk && off < sizeof(res->unknown_columns) - 1; i++)
        off += (size_t)snprintf(res->unknown_columns + off, sizeof(res->unknown_columns) - off,
                                "%s%s", i ? ", " : "", unknown[i]);
    if (nunk)
        fx_log(FX_LOG_INFO, "ingest", res->correlation_id, "%s: ignoring unknown columns: %s", path,
               res->unknown_columns);

    j.chunk_cap = fx_pipeline_chunk_rows(j.p);
    chunk_begin(&j);
    if (strcmp(fx_store_dialect(ig->db), "postgresql") == 0)
        j.bulk = bulk_new();

    fx_row_init(&row, j.p);
    row_ready = 1;
    if ((rc = fx_store_begin(ig->db)) != 0) {
        fx_err_set(err, rc, "cannot start transaction: %s", fx_store_errmsg(ig->db));
        goto out;
    }
    in_tx = 1;
    if ((rc = batch_insert(ig, res, pipeline, path, "receiving", NULL, j.now, err)))
        goto out;

    int64_t last_report = fx_mono_ms();
    uint64_t commit_rows = (uint64_t)fx_config_int(ig->rt->cfg, "ingest.commit_rows");
    uint64_t next_commit = commit_rows;
    for (;;) {
        rc = fx_reader_next(rd, &rec, err);
        if (rc < 0)
            goto refused;
        if (rc == 0)
            break;
        if ((rc = handle_row(&j, &rec, &row, &iss, err)))
            goto out;
        if (must_decide(&j, next_commit) && (rc = decide(&j, err)))
            goto out;
        if (res->received >= next_commit && j.chunk_rows == 0 && held(&j) == 0) {
            /* at a chunk boundary: let this part flow while the rest is read */
            rc = before_commit(&j, err);
            int64_t t0 = fx_mono_us();
            if (rc || (rc = save_counts(&j, "receiving", err)) || (rc = fx_store_commit(ig->db)) ||
                (rc = fx_store_begin(ig->db))) {
                in_tx = rc == 0;
                fx_err_set(err, rc, "cannot commit part of the batch: %s", fx_store_errmsg(ig->db));
                goto out;
            }
            j.us_commit += fx_mono_us() - t0;
            committed = 1;
            next_commit = res->received + commit_rows;
        }
        if (progress && (res->received & 1023) == 0) {
            int64_t t = fx_mono_ms();
            if (t - last_report >= 200) {
                long long done, total;
                fx_reader_progress(rd, &done, &total);
                progress(ud, res->received, done, total);
                last_report = t;
            }
        }
    }
    if (res->received == 0) {
        rc = fx_err_set(err, FX_EEMPTY, "header only: the file has no data rows");
        goto refused;
    }
    if ((rc = decide(&j, err)) || (rc = chunk_flush(&j, err)) || (rc = before_commit(&j, err)))
        goto out;
    int64_t t_end = fx_mono_us();
    if ((rc = save_counts(&j, "queued", err)))
        goto out;
    if ((rc = fx_store_commit(ig->db)) != 0) {
        fx_err_set(err, rc, "cannot commit batch: %s", fx_store_errmsg(ig->db));
        goto out;
    }
    in_tx = 0;
    j.us_commit += fx_mono_us() - t_end;
    {
        int64_t total = fx_mono_us() - t_start;
        int64_t rest = total - t_scanned - j.us_dedupe - j.us_issues - j.us_stage - j.us_commit;
        fx_log(FX_LOG_DEBUG, "ingest", res->correlation_id,
               "batch %s timing (%s): %lld ms in all: structure pass %lld, rows %lld (read, "
               "validate, keys%s), dedupe %lld (%lu statements), issues %lld (%lu statements), "
               "staging %lld (%llu chunks), commits %lld",
               res->batch_id, fx_store_dialect(ig->db), (long long)(total / 1000),
               (long long)(t_scanned / 1000), (long long)(rest / 1000),
               j.bulk ? ", chunk rows" : ", per-row dedupe and issues",
               (long long)(j.us_dedupe / 1000), j.n_dedupe, (long long)(j.us_issues / 1000),
               j.n_issues, (long long)(j.us_stage / 1000), (unsigned long long)res->chunks,
               (long long)(j.us_commit / 1000));
    }
    if (progress) {
        long long done, total;
        fx_reader_progress(rd, &done, &total);
        progress(ud, res->received, total ? total : done, total);
    }
    fx_log(FX_LOG_INFO, "ingest", res->correlation_id,
           "batch %s from %s: %llu rows, %llu accepted, %llu rejected, %llu duplicate, "
           "%llu warnings, %llu chunks",
           res->batch_id, path, (unsigned long long)res->received,
           (unsigned long long)res->accepted, (unsigned long long)res->rejected,
           (unsigned long long)res->duplicate, (unsigned long long)res->warnings,
           (unsigned long long)res->chunks);
    rc = 0;
    goto out;

refused:
    set_source(err, path);
    if (in_tx) {
        fx_store_rollback(ig->db);
        in_tx = 0;
    }
    if (rc >= 0)
        rc = FX_EPARSE;
    if (committed) { /* the file changed under us after the structure pass */
        mark_failed(ig, res, err);
        res->refused = 1;
        goto out;
    }
    memset(&res->received, 0, sizeof(*res) - offsetof(struct fx_batch_result, received));
    record_refusal(ig, res, pipeline, path, err);
out:
    if (in_tx)
        fx_store_rollback(ig->db);
    if (rc < 0 && committed && !res->refused)
        mark_failed(ig, res, err);
    if (row_ready)
        fx_row_cleanup(&row);
    fx_issues_cleanup(&iss);
    fx_binding_free(j.bind);
    fx_reader_free(rd);
    fx_buf_cleanup(&j.chunk);
    free(j.later);
    bulk_free(j.bulk);
    return rc;
}
