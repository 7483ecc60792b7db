/* SPDX-License-Identifier: MIT */
/*
 * Distribution service: applies chunks from processed_data to the normalized
 * tables declared by each pipeline's upsert plan.
 *
 * Exactly-once effect on at-least-once delivery: in ONE transaction the
 * message id goes into `inbox` (a repeat finds it there and changes nothing)
 * and every row of the chunk is upserted; the message is acked only after
 * the commit. A failure rolls the whole chunk back and nacks it (retried with
 * backoff, dead-lettered with the reason after delivery.max_attempts).
 *
 * Upserts, per table of the plan and input row: pick the first key
 * alternative whose columns are all present; look the natural key up in a
 * per-table cache of recent ids (customers and products repeat), else
 *   SELECT id FROM t WHERE <key> = ? AND <partial-index predicate>
 * then UPDATE the "update" columns of a found row, or INSERT a new one (and
 * read its id back when a later table references it). This costs two index
 * probes at most and, unlike INSERT ... ON CONFLICT ... RETURNING, no
 * ephemeral table per statement (SQLite materialises RETURNING rows; that
 * alone was half of the apply time). Unique indexes are partial so the
 * alternatives do not clash (customers: unique CPF/CNPJ when present, else
 * unique name + e-mail); a concurrent twin insert fails the chunk on the
 * unique index and the chunk is retried. The cache is dropped on rollback.
 *
 * On PostgreSQL every statement is a round trip, so the row-at-a-time path
 * above would be bound by latency; there a transaction's chunks are applied
 * set-based instead (apply_items_bulk), table by table in plan order:
 *  1. compute each row's column values as above (references from the ids
 *     already resolved for earlier tables), pick its key alternative, and
 *     fold repeats of a key into one row in C (struct bulk_tab): the first
 *     occurrence's values, an updated column holding its last non-null
 *     value, and flags saying whether the sequence of rows would have
 *     touched atualizado_em;
 *  2. COPY the unique rows, sorted by key, into a temporary staging table
 *     (one per plan table, created once per session, emptied at commit);
 *  3. per key alternative, one INSERT ... SELECT FROM the stage ON CONFLICT
 *     (key) WHERE <partial-index predicate> DO UPDATE SET c = coalesce(
 *     excluded.c, c), atualizado_em WHERE a value changes (DO NOTHING for
 *     tables without updated columns);
 *  4. for referenced tables, one SELECT joining the stage to the table
 *     gives every staged row its id, which later tables take.
 * Sorting by key makes concurrent workers lock rows in one order (no
 * deadlock between them) and walks the indexes in order. The inbox rows and
 * everything else stay in the one transaction, so the exactly-once effect
 * and the retry of a failed batch chunk by chunk are unchanged. Update
 * semantics are the row path's exactly: a NULL never overwrites; a row is
 * updated, and atualizado_em set, only when a non-null value differs from
 * the stored one, row after row (so Y then X over a stored X still counts as
 * a change: the stage marks such keys and they are touched by id).
 */
#define _GNU_SOURCE /* qsort_r */
#include "fluxo/bus.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/services.h"
#include "fluxo/store.h"
#include "fluxo/util.h"
#include "ingest_internal.h"

#include "chunk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 65536     /* per table; power of two */
#define STAGE_BUFFERS "128MB" /* PostgreSQL temp_buffers of the bulk path's session */

struct cache_slot {
    uint64_t h;  /* hash of key values (0 = empty) */
    uint64_t uh; /* hash of update values last written */
    int64_t id;
};

/* Unique rows of one table in a batch (bulk path); reused across batches. */
struct bulk_tab {
    size_t nu, cap;     /* unique rows */
    struct fx_cv *vals; /* cap * ncols: first occurrence; updated columns: last non-null */
    uint64_t *hash;     /* of key alternative and key values */
    uint32_t *kalt;     /* key alternative */
    uint8_t *flags;     /* BT_* */
    int64_t *id;        /* resolved id (referenced tables) */
    uint32_t *order;    /* staging order: sorted by key */
    uint32_t *slots;    /* open addressing: unique row + 1, 0 = empty */
    size_t nslots;
    size_t nchg;      /* rows with BT_CHG */
    size_t perkey[8]; /* rows per key alternative (the first 8) */
};

#define BT_TOUCH 1 /* as a new row, a later row of the batch changes it after its insert */
#define BT_CHG 2   /* two non-null values of an updated column differ within the batch */

struct table_rt {
    const struct fx_plan_table *t;
    char **select_sql;             /* per key alternative */
    char *insert_sql, *update_sql; /* update_sql NULL when no column updates */
    struct fx_stmt **select_st;    /* prepared lazily, owned by the store connection */
    struct fx_stmt *insert_st, *update_st;
    int referenced;  /* a later table takes this table's id */
    int insert_only; /* leaf without updates: insert-or-ignore, no lookup */
    /* insert_only rows deferred to the end of the transaction and written in
     * key order: a random-order unique index (purchase keys) is then swept
     * once instead of being hit at random, which saves page reads */
    struct fx_cv *pend;
    size_t npend, cappend;
    struct cache_slot *cache;
    /* bulk path (PostgreSQL) */
    char *stage;               /* pg_temp.fx_stage_<pipeline>_<table> */
    const char **copy_cols;    /* fx__row, fx__key, fx__touch, then the columns */
    char **upsert_sql;         /* per key alternative */
    char *ids_sql, *touch_sql; /* ids of staged rows; atualizado_em by id */
    struct bulk_tab bulk;
};

struct pipe_rt {
    const struct fx_pipeline *p;
    struct table_rt *tables;
    char *stage_ddl; /* bulk path: CREATE TEMP TABLE IF NOT EXISTS for every table */
};

struct fx_distribution {
    struct fx_runtime *rt;
    struct fx_store *db;
    struct fx_bus *bus;
    size_t npipes;
    struct pipe_rt *pipes;
};

static const struct fx_migration dist_migrations[] = {
    {1, "inbox of applied messages",
     "CREATE TABLE inbox (message_id TEXT PRIMARY KEY, batch_id TEXT, rows INTEGER NOT NULL,"
     " applied_at TEXT NOT NULL)",
     NULL, NULL},
};

static const char *sql_type(const struct fx_store *db, enum fx_sqltype t)
{
    int pg = strcmp(fx_store_dialect(db), "postgresql") == 0;
    switch (t) {
    case FX_SQL_INT:
        return pg ? "BIGINT" : "INTEGER";
    case FX_SQL_BOOL:
        return pg ? "BOOLEAN" : "INTEGER";
    case FX_SQL_DATE:
        return pg ? "DATE" : "TEXT";
    case FX_SQL_DATETIME:
        return pg ? "TIMESTAMPTZ" : "TEXT";
    default:
        return "TEXT";
    }
}

/* "a IS NOT NULL AND b IS NOT NULL AND (earlier key not complete)...", the
 * column names qualified by q ("" or "alias."). */
static void key_predicate_q(struct fx_buf *b, const struct fx_plan_table *t, size_t k,
                            const char *q)
{
    const struct fx_plan_key *key = &t->keys[k];
    for (size_t i = 0; i < key->ncols; i++)
        fx_buf_printf(b, "%s%s%s IS NOT NULL", i ? " AND " : "", q, t->cols[key->cols[i]].name);
    for (size_t e = 0; e < k; e++) {
        fx_buf_puts(b, " AND (");
        for (size_t i = 0; i < t->keys[e].ncols; i++)
            fx_buf_printf(b, "%s%s%s IS NULL", i ? " OR " : "", q,
                          t->cols[t->keys[e].cols[i]].name);
        fx_buf_putc(b, ')');
    }
}

static void key_predicate(struct fx_buf *b, const struct fx_plan_table *t, size_t k)
{
    key_predicate_q(b, t, k, "");
}

static char *table_ddl(const struct fx_store *db, const struct fx_plan *plan, size_t ti)
{
    const struct fx_plan_table *t = &plan->tables[ti];
    int pg = strcmp(fx_store_dialect(db), "postgresql") == 0;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (id %s", t->name,
                  pg ? "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                     : "INTEGER PRIMARY KEY");
    for (size_t c = 0; c < t->ncols; c++) {
        const struct fx_plan_column *col = &t->cols[c];
        fx_buf_printf(&b, ", %s %s", col->name, sql_type(db, col->sqltype));
        if (col->not_null)
            fx_buf_puts(&b, " NOT NULL");
        if (col->kind == FX_SRC_REF)
            /* deferred: checked at commit, so single-row inserts need no
             * statement journal (and a chunk still fails as a whole) */
            fx_buf_printf(&b, " REFERENCES %s(id) DEFERRABLE INITIALLY DEFERRED",
                          plan->tables[col->a].name);
    }
    fx_buf_printf(
        &b, ", criado_em %s NOT NULL DEFAULT %s, atualizado_em %s);\n", pg ? "TIMESTAMPTZ" : "TEXT",
        pg ? "now()" : "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))", pg ? "TIMESTAMPTZ" : "TEXT");
    for (size_t k = 0; k < t->nkeys; k++) {
        fx_buf_printf(&b, "CREATE UNIQUE INDEX IF NOT EXISTS %s_key%zu ON %s (", t->name, k + 1,
                      t->name);
        for (size_t i = 0; i < t->keys[k].ncols; i++)
            fx_buf_printf(&b, "%s%s", i ? ", " : "", t->cols[t->keys[k].cols[i]].name);
        fx_buf_puts(&b, ") WHERE ");
        key_predicate(&b, t, k);
        fx_buf_puts(&b, ";\n");
    }
    /* every reference gets its own index for joins and FK checks: the key
     * indexes are partial (their columns NOT NULL), so a lookup by the
     * reference alone cannot use them */
    for (size_t c = 0; c < t->ncols; c++)
        if (t->cols[c].kind == FX_SRC_REF)
            fx_buf_printf(&b, "CREATE INDEX IF NOT EXISTS %s_%s ON %s (%s);\n", t->name,
                          t->cols[c].name, t->name, t->cols[c].name);
    return fx_buf_take(&b);
}

static char *select_sql(const struct fx_plan_table *t, size_t k)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "SELECT id");
    for (size_t c = 0; c < t->ncols; c++) /* current values of updated columns */
        if (t->cols[c].update)
            fx_buf_printf(&b, ", %s", t->cols[c].name);
    fx_buf_printf(&b, " FROM %s WHERE ", t->name);
    for (size_t i = 0; i < t->keys[k].ncols; i++)
        fx_buf_printf(&b, "%s%s = ?", i ? " AND " : "", t->cols[t->keys[k].cols[i]].name);
    fx_buf_puts(&b, " AND ");
    key_predicate(&b, t, k);
    return fx_buf_take(&b);
}

/* On SQLite, OR ROLLBACK: a constraint failure ends the transaction at once
 * (the chunk is retried as a whole anyway), which spares every single-row
 * statement the statement journal that ABORT semantics need. */
static const char *or_rollback(const struct fx_store *db)
{
    return strcmp(fx_store_dialect(db), "sqlite") == 0 ? " OR ROLLBACK" : "";
}

/* ignore: for leaf tables without updated columns (nothing needs the id and
 * nothing changes on a match), so a row already there is simply skipped:
 * INSERT OR IGNORE / ON CONFLICT DO NOTHING, no lookup first. */
static char *insert_sql(const struct fx_store *db, const struct fx_plan_table *t, int ignore)
{
    int sqlite = strcmp(fx_store_dialect(db), "sqlite") == 0;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "INSERT%s INTO %s (", ignore ? (sqlite ? " OR IGNORE" : "") : or_rollback(db),
                  t->name);
    for (size_t c = 0; c < t->ncols; c++)
        fx_buf_printf(&b, "%s, ", t->cols[c].name);
    fx_buf_puts(&b, "criado_em) VALUES (");
    for (size_t c = 0; c < t->ncols; c++)
        fx_buf_puts(&b, "?, ");
    fx_buf_puts(&b, "?)"); /* bound once per chunk: no date function per row */
    if (ignore && !sqlite)
        fx_buf_puts(&b, " ON CONFLICT DO NOTHING");
    return fx_buf_take(&b);
}

/* UPDATE t SET c = coalesce(?, c), ..., atualizado_em = ? WHERE id = ?
 * (parameters: the update columns in column order, the time, then the id);
 * NULL when nothing updates. */
static char *update_sql(const struct fx_store *db, const struct fx_plan_table *t)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "UPDATE%s %s SET ", or_rollback(db), t->name);
    int any = 0;
    for (size_t c = 0; c < t->ncols; c++) {
        if (!t->cols[c].update)
            continue;
        fx_buf_printf(&b, "%s%s = coalesce(?, %s)", any ? ", " : "", t->cols[c].name,
                      t->cols[c].name);
        any = 1;
    }
    if (!any) {
        fx_buf_cleanup(&b);
        return NULL;
    }
    fx_buf_puts(&b, ", atualizado_em = ? WHERE id = ?");
    return fx_buf_take(&b);
}

/* ---- bulk path SQL (PostgreSQL) ---- */

static int is_pg(const struct fx_store *db)
{
    return strcmp(fx_store_dialect(db), "postgresql") == 0;
}

/* The staging table of t: the bookkeeping columns, then t's columns with
 * their types and no constraint (checks happen on the way into t). Created
 * once per session, emptied at every commit. */
static void stage_ddl(struct fx_buf *b, const struct fx_store *db, const struct table_rt *tr)
{
    fx_buf_printf(b,
                  "CREATE TEMP TABLE IF NOT EXISTS %s (fx__row INTEGER, fx__key INTEGER,"
                  " fx__touch BOOLEAN",
                  tr->stage + strlen("pg_temp."));
    for (size_t c = 0; c < tr->t->ncols; c++)
        fx_buf_printf(b, ", %s %s", tr->t->cols[c].name, sql_type(db, tr->t->cols[c].sqltype));
    fx_buf_puts(b, ") ON COMMIT DELETE ROWS;\n");
}

/*
 * INSERT INTO t AS cur (cols, criado_em, atualizado_em)
 *   SELECT cols, ?, CASE WHEN fx__touch THEN ? END FROM stage WHERE fx__key = k
 *   ON CONFLICT (key cols) WHERE <predicate of k>
 *   DO UPDATE SET u = coalesce(excluded.u, cur.u), ..., atualizado_em = excluded.criado_em
 *   WHERE cur.u IS DISTINCT FROM coalesce(excluded.u, cur.u) OR ...
 * (DO NOTHING without updated columns). Parameters: the time, twice.
 */
static char *upsert_sql(const struct table_rt *tr, size_t k)
{
    const struct fx_plan_table *t = tr->t;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "INSERT INTO %s AS cur (", t->name);
    for (size_t c = 0; c < t->ncols; c++)
        fx_buf_printf(&b, "%s, ", t->cols[c].name);
    fx_buf_puts(&b, "criado_em, atualizado_em) SELECT ");
    for (size_t c = 0; c < t->ncols; c++)
        fx_buf_printf(&b, "%s, ", t->cols[c].name);
    fx_buf_printf(&b,
                  "CAST(? AS TIMESTAMPTZ), CASE WHEN fx__touch THEN CAST(? AS TIMESTAMPTZ) END"
                  " FROM %s WHERE fx__key = %zu ON CONFLICT (",
                  tr->stage, k);
    for (size_t i = 0; i < t->keys[k].ncols; i++)
        fx_buf_printf(&b, "%s%s", i ? ", " : "", t->cols[t->keys[k].cols[i]].name);
    fx_buf_puts(&b, ") WHERE ");
    key_predicate(&b, t, k);
    if (!tr->update_sql) {
        fx_buf_puts(&b, " DO NOTHING");
        return fx_buf_take(&b);
    }
    fx_buf_puts(&b, " DO UPDATE SET ");
    for (size_t c = 0; c < t->ncols; c++)
        if (t->cols[c].update)
            fx_buf_printf(&b, "%s = coalesce(excluded.%s, cur.%s), ", t->cols[c].name,
                          t->cols[c].name, t->cols[c].name);
    fx_buf_puts(&b, "atualizado_em = excluded.criado_em WHERE ");
    int any = 0;
    for (size_t c = 0; c < t->ncols; c++) {
        if (!t->cols[c].update)
            continue;
        fx_buf_printf(&b, "%scur.%s IS DISTINCT FROM coalesce(excluded.%s, cur.%s)",
                      any ? " OR " : "", t->cols[c].name, t->cols[c].name, t->cols[c].name);
        any = 1;
    }
    return fx_buf_take(&b);
}

/* SELECT fx__row, id of every staged row, joined on its key alternative. */
static char *ids_sql(const struct table_rt *tr)
{
    const struct fx_plan_table *t = tr->t;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    for (size_t k = 0; k < t->nkeys; k++) {
        fx_buf_printf(&b, "%sSELECT s.fx__row, cur.id FROM %s s JOIN %s cur ON ",
                      k ? " UNION ALL " : "", tr->stage, t->name);
        for (size_t i = 0; i < t->keys[k].ncols; i++) {
            const char *n = t->cols[t->keys[k].cols[i]].name;
            fx_buf_printf(&b, "cur.%s = s.%s AND ", n, n);
        }
        key_predicate_q(&b, t, k, "cur.");
        fx_buf_printf(&b, " WHERE s.fx__key = %zu", k);
    }
    return fx_buf_take(&b);
}

static void setup_bulk(struct fx_distribution *d, struct pipe_rt *pr, size_t pi, struct fx_buf *ddl)
{
    const struct fx_plan *plan = fx_pipeline_plan(pr->p);
    for (size_t t = 0; t < plan->ntables; t++) {
        struct table_rt *tr = &pr->tables[t];
        const struct fx_plan_table *pt = tr->t;
        tr->stage = fx_asprintf("pg_temp.fx_stage_%zu_%zu", pi, t);
        stage_ddl(ddl, d->db, tr);
        tr->copy_cols = fx_calloc(pt->ncols + 3, sizeof(char *));
        tr->copy_cols[0] = "fx__row";
        tr->copy_cols[1] = "fx__key";
        tr->copy_cols[2] = "fx__touch";
        for (size_t c = 0; c < pt->ncols; c++)
            tr->copy_cols[3 + c] = pt->cols[c].name;
        tr->upsert_sql = fx_calloc(pt->nkeys ? pt->nkeys : 1, sizeof(char *));
        for (size_t k = 0; k < pt->nkeys; k++)
            tr->upsert_sql[k] = upsert_sql(tr, k);
        tr->ids_sql = ids_sql(tr);
        tr->touch_sql = fx_asprintf("UPDATE %s SET atualizado_em = CAST(? AS TIMESTAMPTZ)"
                                    " WHERE id = ANY (CAST(? AS BIGINT[]))",
                                    pt->name);
    }
}

static int setup_pipeline(struct fx_distribution *d, const struct fx_pipeline *p,
                          struct pipe_rt *pr, struct fx_err *err)
{
    const struct fx_plan *plan = fx_pipeline_plan(p);
    pr->p = p;
    pr->tables = fx_calloc(plan->ntables ? plan->ntables : 1, sizeof(*pr->tables));
    struct fx_buf ddl;
    fx_buf_init(&ddl, 0);
    for (size_t t = 0; t < plan->ntables; t++) {
        char *s = table_ddl(d->db, plan, t);
        fx_buf_puts(&ddl, s);
        free(s);
        struct table_rt *tr = &pr->tables[t];
        tr->t = &plan->tables[t];
        tr->select_sql = fx_calloc(tr->t->nkeys ? tr->t->nkeys : 1, sizeof(char *));
        tr->select_st = fx_calloc(tr->t->nkeys ? tr->t->nkeys : 1, sizeof(struct fx_stmt *));
        for (size_t k = 0; k < tr->t->nkeys; k++)
            tr->select_sql[k] = select_sql(tr->t, k);
        tr->update_sql = update_sql(d->db, tr->t);
        for (size_t later = t + 1; later < plan->ntables; later++)
            for (size_t c = 0; c < plan->tables[later].ncols; c++)
                if (plan->tables[later].cols[c].kind == FX_SRC_REF &&
                    plan->tables[later].cols[c].a == (int)t)
                    tr->referenced = 1;
        tr->insert_only = !tr->referenced && !tr->update_sql;
        tr->insert_sql = insert_sql(d->db, tr->t, tr->insert_only);
        tr->cache = fx_calloc(CACHE_SLOTS, sizeof(*tr->cache));
    }
    if (is_pg(d->db)) {
        struct fx_buf sd;
        fx_buf_init(&sd, 0);
        setup_bulk(d, pr, (size_t)(pr - d->pipes), &sd);
        pr->stage_ddl = fx_buf_take(&sd);
    }
    /* Pipeline tables are versioned as a component of their own; a changed
     * plan needs a new version (schema evolution: see docs/pipelines.md). */
    char component[96];
    snprintf(component, sizeof(component), "pipeline.%s", fx_pipeline_name(p));
    struct fx_migration m = {1, "tables of the pipeline's upsert plan", ddl.data, NULL, NULL};
    int rc = fx_store_migrate(d->db, component, &m, 1, NULL, err);
    fx_buf_cleanup(&ddl);
    return rc;
}

static void clear_caches(struct fx_distribution *d)
{
    for (size_t i = 0; i < d->npipes; i++) {
        const struct fx_plan *plan = fx_pipeline_plan(d->pipes[i].p);
        for (size_t t = 0; t < plan->ntables; t++)
            memset(d->pipes[i].tables[t].cache, 0, CACHE_SLOTS * sizeof(struct cache_slot));
    }
}

int fx_distribution_open(struct fx_runtime *rt, struct fx_distribution **out, struct fx_err *err)
{
    *out = NULL;
    struct fx_distribution *d = fx_calloc(1, sizeof(*d));
    d->rt = rt;
    int rc = fx_store_open(rt->db_url, "distribution", &d->db, err);
    if (rc == 0 && is_pg(d->db)) {
        /* The staging tables of a batch (tens of MB at distribution.batch
         * 64) stay in memory instead of spilling to temporary files past the
         * 8 MB default. Only settable before the session's first temporary
         * table; a reconnected session goes back to the default (slower,
         * not wrong). */
        struct fx_err e;
        fx_err_clear(&e);
        if (fx_store_exec(d->db, "SET temp_buffers = '" STAGE_BUFFERS "'", &e) != 0)
            fx_log_warn("distribution", "cannot set temp_buffers: %s", e.reason);
    }
    if (rc == 0)
        rc = fx_store_migrate(d->db, "distribution", dist_migrations, 1, NULL, err);
    if (rc == 0) {
        d->pipes = fx_calloc(rt->npipelines ? rt->npipelines : 1, sizeof(*d->pipes));
        for (size_t i = 0; i < rt->npipelines && rc == 0; i++) {
            rc = setup_pipeline(d, rt->pipelines[i], &d->pipes[i], err);
            d->npipes = i + 1;
        }
    }
    if (rc == 0)
        rc = fx_bus_open(rt->bus_url, &d->bus, err);
    if (rc == 0)
        rc = fx_services_declare(rt, d->bus, err);
    if (rc) {
        fx_distribution_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

void fx_distribution_close(struct fx_distribution *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->npipes; i++) {
        const struct fx_plan *plan = fx_pipeline_plan(d->pipes[i].p);
        for (size_t t = 0; t < plan->ntables; t++) {
            struct table_rt *tr = &d->pipes[i].tables[t];
            for (size_t k = 0; k < tr->t->nkeys; k++)
                free(tr->select_sql[k]);
            free(tr->select_sql);
            free(tr->select_st);
            free(tr->insert_sql);
            free(tr->update_sql);
            free(tr->pend);
            free(tr->cache);
            free(tr->stage);
            free(tr->copy_cols);
            for (size_t k = 0; tr->upsert_sql && k < tr->t->nkeys; k++)
                free(tr->upsert_sql[k]);
            free(tr->upsert_sql);
            free(tr->ids_sql);
            free(tr->touch_sql);
            struct bulk_tab *bt = &tr->bulk;
            free(bt->vals);
            free(bt->hash);
            free(bt->kalt);
            free(bt->flags);
            free(bt->id);
            free(bt->order);
            free(bt->slots);
        }
        free(d->pipes[i].tables);
        free(d->pipes[i].stage_ddl);
    }
    free(d->pipes);
    fx_bus_close(d->bus);
    fx_store_close(d->db);
    free(d);
}

/* ---- applying one chunk ---- */

struct chunk {
    const struct pipe_rt *pr;
    const struct fx_chunk *c;
    int *pos;           /* pipeline field -> index in row array, or -1 */
    int *rawpos;        /* pipeline field -> index of its raw text, or -1 */
    struct fx_cv *colv; /* scratch: values of one table's columns */
    char now[32];       /* criado_em / atualizado_em of this chunk's writes */
};

static const struct fx_cv cv_null = {FX_CV_NULL, 0, NULL, 0};

static int present(const struct fx_cv *v)
{
    return v->type == FX_CV_INT || (v->type == FX_CV_STR && v->len > 0);
}

/* Value of column c for row r. Returns 0 or an error with why filled. */
static int col_value(const struct chunk *ch, size_t r, const struct fx_plan_column *c,
                     const int64_t *ids, struct fx_cv *out, char *why, size_t whycap)
{
    *out = cv_null;
    switch (c->kind) {
    case FX_SRC_FIELD:
        if (ch->pos[c->a] >= 0)
            *out = *fx_chunk_val(ch->c, r, (size_t)ch->pos[c->a]);
        break;
    case FX_SRC_RAW:
        if (ch->rawpos[c->a] >= 0)
            *out = *fx_chunk_val(ch->c, r, (size_t)ch->rawpos[c->a]);
        if (!present(out))
            *out = cv_null;
        break;
    case FX_SRC_REF:
        if (ids[c->a] > 0) {
            out->type = FX_CV_INT;
            out->i = ids[c->a];
        }
        break;
    case FX_SRC_CONST:
        if (c->sqltype == FX_SQL_BOOL || c->sqltype == FX_SQL_INT) {
            out->type = FX_CV_INT;
            out->i = c->sqltype == FX_SQL_BOOL
                         ? (strcmp(c->constant, "true") == 0 || strcmp(c->constant, "1") == 0)
                         : strtoll(c->constant, NULL, 10);
        } else {
            out->type = FX_CV_STR;
            out->s = c->constant;
            out->len = strlen(c->constant);
        }
        break;
    case FX_SRC_PRODUCT: {
        const struct fx_cv *a =
            ch->pos[c->a] >= 0 ? fx_chunk_val(ch->c, r, (size_t)ch->pos[c->a]) : &cv_null;
        const struct fx_cv *b =
            ch->pos[c->b] >= 0 ? fx_chunk_val(ch->c, r, (size_t)ch->pos[c->b]) : &cv_null;
        if (a->type == FX_CV_INT && b->type == FX_CV_INT) {
            long long prod;
            if (__builtin_mul_overflow((long long)a->i, (long long)b->i, &prod)) {
                snprintf(why, whycap, "column %s: product overflows", c->name);
                return FX_EPARSE;
            }
            out->type = FX_CV_INT;
            out->i = prod;
        }
        break;
    }
    case FX_SRC_DEDUPE:
        *out = *fx_chunk_val(ch->c, r, 1);
        break;
    case FX_SRC_BATCH:
        out->type = FX_CV_STR;
        out->s = ch->c->batch;
        out->len = strlen(ch->c->batch);
        break;
    case FX_SRC_ROWNUM:
        *out = *fx_chunk_val(ch->c, r, 0);
        break;
    }
    if (c->not_null && !present(out)) {
        snprintf(why, whycap, "column %s is required but has no value", c->name);
        return FX_ECONSTRAINT;
    }
    return 0;
}

static void bind_cv(struct fx_stmt *st, int idx, const struct fx_cv *v)
{
    if (v->type == FX_CV_INT)
        fx_stmt_bind_int(st, idx, v->i);
    else if (v->type == FX_CV_STR) /* chunk strings outlive the statement's use */
        fx_stmt_bind_text_ref(st, idx, v->s, v->len);
    else
        fx_stmt_bind_null(st, idx);
}

static uint64_t cv_hash(uint64_t h, const struct fx_cv *v)
{
    if (v->type == FX_CV_INT)
        return (h ^ (uint64_t)v->i) * 1099511628211ULL + 0x9e37;
    if (v->type == FX_CV_STR)
        return (h ^ fx_hash64(v->s, v->len)) * 1099511628211ULL + 0x51;
    return h * 31 + 7;
}

static int prepare_once(struct fx_distribution *d, const char *sql, struct fx_stmt **st, char *why,
                        size_t whycap)
{
    if (*st)
        return 0;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_prepare(d->db, sql, st, &e);
    if (rc)
        snprintf(why, whycap, "%s", e.reason);
    return rc;
}

/* SELECT the id of the row with key k; 0 when absent. */
/* 1 when the stored value in column col of the current row differs from v
 * (a null v never overwrites: updates use coalesce). */
static int differs(struct fx_stmt *st, int col, const struct fx_cv *v)
{
    if (v->type == FX_CV_NULL)
        return 0;
    if (fx_stmt_is_null(st, col))
        return 1;
    if (v->type == FX_CV_INT)
        return fx_stmt_int(st, col) != v->i;
    size_t len = 0;
    const char *cur = fx_stmt_text(st, col, &len);
    return !cur || len != v->len || memcmp(cur, v->s, len) != 0;
}

/* SELECT the id of the row with key k (0 when absent); *stale tells whether
 * any updated column would change. */
static int find_id(struct fx_distribution *d, struct table_rt *tr, size_t k,
                   const struct fx_cv *colv, int64_t *id, int *stale, char *why, size_t whycap)
{
    const struct fx_plan_table *pt = tr->t;
    int rc = prepare_once(d, tr->select_sql[k], &tr->select_st[k], why, whycap);
    if (rc)
        return rc;
    struct fx_stmt *st = tr->select_st[k];
    for (size_t i = 0; i < pt->keys[k].ncols; i++)
        bind_cv(st, (int)i + 1, &colv[pt->keys[k].cols[i]]);
    rc = fx_stmt_step(st);
    *id = 0;
    *stale = 0;
    if (rc == FX_STORE_ROW) {
        *id = fx_stmt_int(st, 0);
        int col = 1;
        for (size_t c = 0; c < pt->ncols; c++)
            if (pt->cols[c].update)
                *stale |= differs(st, col++, &colv[c]);
    }
    fx_stmt_reset(st);
    if (rc < 0) {
        snprintf(why, whycap, "table %s: %s", pt->name, fx_store_errmsg(d->db));
        return rc;
    }
    return 0;
}

/* The first key alternative whose columns all have a value; nkeys if none. */
static size_t key_alternative(const struct fx_plan_table *pt, const struct fx_cv *colv)
{
    size_t k;
    for (k = 0; k < pt->nkeys; k++) {
        size_t i;
        for (i = 0; i < pt->keys[k].ncols && present(&colv[pt->keys[k].cols[i]]); i++)
            ;
        if (i == pt->keys[k].ncols)
            break;
    }
    return k;
}

static int apply_table(struct fx_distribution *d, struct table_rt *tr, const struct fx_cv *colv,
                       int64_t *id, char *why, size_t whycap, size_t r, const struct chunk *ch)
{
    const struct fx_plan_table *pt = tr->t;
    size_t k = key_alternative(pt, colv);
    if (k == pt->nkeys) {
        const struct fx_cv *rn = fx_chunk_val(ch->c, r, 0);
        snprintf(why, whycap, "row %lld: no complete natural key for table %s", (long long)rn->i,
                 pt->name);
        return FX_ESCHEMA;
    }
    uint64_t kh = 1469598103934665603ULL + k, uh = 0;
    for (size_t i = 0; i < pt->keys[k].ncols; i++)
        kh = cv_hash(kh, &colv[pt->keys[k].cols[i]]);
    for (size_t c = 0; c < pt->ncols; c++)
        if (pt->cols[c].update)
            uh = cv_hash(uh, &colv[c]);
    if (kh == 0)
        kh = 1;
    struct cache_slot *slot = &tr->cache[kh & (CACHE_SLOTS - 1)];
    int rc, stale = 1;
    *id = 0;
    if (slot->h == kh) {
        *id = slot->id;
        if (slot->uh == uh || !tr->update_sql)
            return 0;
        /* Values differ from the ones this row last came with, which may be
         * only a NULL where a value was (a NULL never overwrites): read the
         * stored row, so that only a real change updates it and sets
         * atualizado_em, as on a cache miss. */
        if ((rc = find_id(d, tr, k, colv, id, &stale, why, whycap)))
            return rc;
    } else if (!tr->insert_only && (rc = find_id(d, tr, k, colv, id, &stale, why, whycap))) {
        return rc;
    }
    if (*id > 0) {
        if (tr->update_sql && stale) {
            if ((rc = prepare_once(d, tr->update_sql, &tr->update_st, why, whycap)))
                return rc;
            int p = 1;
            for (size_t c = 0; c < pt->ncols; c++)
                if (pt->cols[c].update)
                    bind_cv(tr->update_st, p++, &colv[c]);
            fx_stmt_bind_text(tr->update_st, p++, ch->now, strlen(ch->now));
            fx_stmt_bind_int(tr->update_st, p, *id);
            rc = fx_stmt_step(tr->update_st);
            fx_stmt_reset(tr->update_st);
            if (rc < 0) {
                snprintf(why, whycap, "table %s: %s", pt->name, fx_store_errmsg(d->db));
                return rc;
            }
        }
    } else if (tr->insert_only) {
        if (tr->npend == tr->cappend) {
            tr->cappend = tr->cappend ? tr->cappend * 2 : 1024;
            tr->pend = fx_realloc(tr->pend, tr->cappend * pt->ncols * sizeof(*tr->pend));
        }
        memcpy(tr->pend + tr->npend * pt->ncols, colv, pt->ncols * sizeof(*colv));
        tr->npend++;
    } else {
        if ((rc = prepare_once(d, tr->insert_sql, &tr->insert_st, why, whycap)))
            return rc;
        for (size_t c = 0; c < pt->ncols; c++)
            bind_cv(tr->insert_st, (int)c + 1, &colv[c]);
        fx_stmt_bind_text(tr->insert_st, (int)pt->ncols + 1, ch->now, strlen(ch->now));
        rc = fx_stmt_step(tr->insert_st);
        fx_stmt_reset(tr->insert_st);
        if (rc < 0) {
            snprintf(why, whycap, "table %s: %s", pt->name, fx_store_errmsg(d->db));
            return rc;
        }
        if (tr->referenced && (rc = find_id(d, tr, k, colv, id, &stale, why, whycap)))
            return rc;
        if (tr->referenced && *id <= 0) {
            snprintf(why, whycap, "table %s: inserted row not found by its key", pt->name);
            return FX_ESTORE;
        }
    }
    slot->h = kh;
    slot->uh = uh;
    slot->id = *id;
    return 0;
}

static int apply_row(struct fx_distribution *d, const struct chunk *ch, size_t r, char *why,
                     size_t whycap)
{
    const struct fx_plan *plan = fx_pipeline_plan(ch->pr->p);
    int64_t ids[64];
    if (plan->ntables > 64) {
        snprintf(why, whycap, "too many tables in plan");
        return FX_EINVAL;
    }
    for (size_t t = 0; t < plan->ntables; t++) {
        struct table_rt *tr = &ch->pr->tables[t];
        const struct fx_plan_table *pt = tr->t;
        ids[t] = 0;
        if (pt->skip_unless_field >= 0) {
            int pos = ch->pos[pt->skip_unless_field];
            if (pos < 0 || !present(fx_chunk_val(ch->c, r, (size_t)pos)))
                continue;
        }
        for (size_t c = 0; c < pt->ncols; c++) {
            int rc = col_value(ch, r, &pt->cols[c], ids, &ch->colv[c], why, whycap);
            if (rc)
                return rc;
        }
        int rc = apply_table(d, tr, ch->colv, &ids[t], why, whycap, r, ch);
        if (rc)
            return rc;
    }
    return 0;
}

static const struct pipe_rt *find_pipe(struct fx_distribution *d, const char *name)
{
    for (size_t i = 0; i < d->npipes; i++)
        if (strcmp(fx_pipeline_name(d->pipes[i].p), name) == 0)
            return &d->pipes[i];
    return NULL;
}

/* Map the chunk's fields onto its pipeline's (chunk_cleanup releases). */
static void chunk_init(struct chunk *ch, const struct pipe_rt *pr, const struct fx_chunk *c)
{
    const struct fx_plan *plan = fx_pipeline_plan(pr->p);
    size_t nf = fx_pipeline_nfields(pr->p), maxcols = 1;
    for (size_t t = 0; t < plan->ntables; t++)
        if (plan->tables[t].ncols > maxcols)
            maxcols = plan->tables[t].ncols;
    ch->pr = pr;
    ch->c = c;
    ch->pos = fx_calloc(nf ? nf : 1, sizeof(int));
    ch->rawpos = fx_calloc(nf ? nf : 1, sizeof(int));
    ch->colv = fx_calloc(maxcols, sizeof(struct fx_cv));
    fx__now_iso(ch->now);
    for (size_t i = 0; i < nf; i++)
        ch->pos[i] = ch->rawpos[i] = -1;
    /* map by name: the chunk may come from an older or newer pipeline version */
    for (size_t i = 0; i < c->nfields; i++) {
        int f = fx_pipeline_field_index(pr->p, c->fields[i]);
        if (f >= 0)
            ch->pos[f] = (int)(2 + i);
    }
    for (size_t i = 0; i < c->nraw; i++) {
        int64_t f = c->raw[i];
        if (f >= 0 && (size_t)f < c->nfields) {
            int pf = fx_pipeline_field_index(pr->p, c->fields[f]);
            if (pf >= 0)
                ch->rawpos[pf] = (int)(2 + c->nfields + i);
        }
    }
}

static void chunk_cleanup(struct chunk *ch)
{
    free(ch->pos);
    free(ch->rawpos);
    free(ch->colv);
}

static int apply_chunk(struct fx_distribution *d, const struct fx_chunk *c, char *why,
                       size_t whycap)
{
    const struct pipe_rt *pr = find_pipe(d, c->pipeline);
    if (!pr) {
        snprintf(why, whycap, "unknown pipeline '%s'", c->pipeline);
        return FX_ENOTFOUND;
    }
    struct chunk ch;
    chunk_init(&ch, pr, c);
    int rc = 0;
    for (size_t r = 0; r < c->nrows && rc == 0; r++)
        rc = apply_row(d, &ch, r, why, whycap);
    chunk_cleanup(&ch);
    return rc;
}

static int publish_applied(struct fx_distribution *d, const struct fx_delivery *m,
                           const char *batch, size_t nrows, struct fx_err *err)
{
    char data[256], id[80];
    snprintf(data, sizeof(data), "{\"chunk\":\"%s\",\"batch\":\"%s\",\"rows\":%zu}", m->id,
             batch ? batch : "", nrows);
    snprintf(id, sizeof(id), "applied-%s", m->id);
    struct fx_msg out = {.id = id,
                         .type = "fluxo.distribution.applied",
                         .source = "/fluxo/distribution",
                         .routing_key = FX_RK_APPLIED,
                         .correlation_id = m->correlation_id,
                         .traceparent = m->traceparent,
                         .data = data,
                         .data_len = strlen(data)};
    return fx_bus_publish(d->bus, &out, 1, err);
}

/* One received chunk on its way through a transaction. */
struct item {
    struct fx_delivery *m;
    struct fx_chunk chunk;
    int skipped;
    char why[512];
};

/* Inbox entry of one chunk inside the open transaction; it->skipped tells
 * a chunk applied before. */
static int inbox_item(struct fx_distribution *d, struct item *it, const char *now)
{
    struct fx_stmt *st;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_prepare(d->db,
                              "INSERT INTO inbox(message_id, batch_id, rows, applied_at)"
                              " VALUES(?,?,?,?) ON CONFLICT DO NOTHING",
                              &st, &e);
    if (rc) {
        snprintf(it->why, sizeof(it->why), "inbox: %.400s", e.reason);
        return rc;
    }
    fx_stmt_bind_text(st, 1, it->m->id, strlen(it->m->id));
    fx_stmt_bind_text(st, 2, it->chunk.batch, strlen(it->chunk.batch));
    fx_stmt_bind_int(st, 3, (int64_t)it->chunk.nrows);
    fx_stmt_bind_text(st, 4, now, strlen(now));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    if (rc < 0) {
        snprintf(it->why, sizeof(it->why), "inbox: %s", fx_store_errmsg(d->db));
        return rc;
    }
    it->skipped = fx_store_changes(d->db) == 0;
    if (it->skipped) {
        fx_log(FX_LOG_INFO, "distribution", it->m->correlation_id,
               "chunk %s already applied (redelivery %d): skipped", it->m->id, it->m->attempt);
    }
    return 0;
}

/* Inbox entry + upserts of one chunk inside the open transaction. */
static int apply_item(struct fx_distribution *d, struct item *it, const char *now)
{
    int rc = inbox_item(d, it, now);
    if (rc || it->skipped)
        return rc;
    return apply_chunk(d, &it->chunk, it->why, sizeof(it->why));
}

/* Apply items [0, n) in one transaction: 0, or < 0 with everything rolled back
 * and the failing item's reason in its why. */
static int cv_cmp(const struct fx_cv *a, const struct fx_cv *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->type == FX_CV_INT)
        return a->i < b->i ? -1 : a->i > b->i;
    if (a->type == FX_CV_STR) {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->s, b->s, n);
        return c ? c : (a->len < b->len ? -1 : a->len > b->len);
    }
    return 0;
}

/* qsort_r comparator: rows of ncols values, ordered by the first key's columns */
static int pend_cmp(const void *a, const void *b, void *arg)
{
    const struct fx_plan_table *t = arg;
    const struct fx_cv *ra = a, *rb = b;
    for (size_t i = 0; i < t->keys[0].ncols; i++) {
        int c = cv_cmp(&ra[t->keys[0].cols[i]], &rb[t->keys[0].cols[i]]);
        if (c)
            return c;
    }
    return 0;
}

static void clear_pending(struct fx_distribution *d)
{
    for (size_t i = 0; i < d->npipes; i++) {
        const struct fx_plan *plan = fx_pipeline_plan(d->pipes[i].p);
        for (size_t t = 0; t < plan->ntables; t++)
            d->pipes[i].tables[t].npend = 0;
    }
}

/* Write the deferred insert-only rows of every table, in key order. */
static int flush_pending(struct fx_distribution *d, const char *now, char *why, size_t whycap)
{
    for (size_t i = 0; i < d->npipes; i++) {
        const struct fx_plan *plan = fx_pipeline_plan(d->pipes[i].p);
        for (size_t t = 0; t < plan->ntables; t++) {
            struct table_rt *tr = &d->pipes[i].tables[t];
            const struct fx_plan_table *pt = tr->t;
            if (!tr->npend)
                continue;
            size_t row = pt->ncols * sizeof(*tr->pend);
            if (pt->nkeys)
                qsort_r(tr->pend, tr->npend, row, pend_cmp, (void *)pt);
            int rc = prepare_once(d, tr->insert_sql, &tr->insert_st, why, whycap);
            for (size_t r = 0; r < tr->npend && rc == 0; r++) {
                const struct fx_cv *v = tr->pend + r * pt->ncols;
                for (size_t c = 0; c < pt->ncols; c++)
                    bind_cv(tr->insert_st, (int)c + 1, &v[c]);
                fx_stmt_bind_text(tr->insert_st, (int)pt->ncols + 1, now, strlen(now));
                rc = fx_stmt_step(tr->insert_st);
                fx_stmt_reset(tr->insert_st);
                if (rc < 0)
                    snprintf(why, whycap, "table %s: %s", pt->name, fx_store_errmsg(d->db));
                else
                    rc = 0;
            }
            tr->npend = 0;
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* The transaction of a set of items; on failure the reason goes to the first. */
static int begin_items(struct fx_distribution *d, struct item *items)
{
    int rc = fx_store_begin(d->db);
    if (rc)
        snprintf(items[0].why, sizeof(items[0].why), "cannot begin: %s", fx_store_errmsg(d->db));
    return rc;
}

static int apply_items_rows(struct fx_distribution *d, struct item *items, size_t n, size_t *failed)
{
    char now[32];
    fx__now_iso(now);
    *failed = 0;
    int rc = begin_items(d, items);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = apply_item(d, &items[i], now)) != 0) {
            *failed = i;
            fx_store_rollback(d->db);
            clear_caches(d);
            clear_pending(d);
            return rc;
        }
    }
    if ((rc = flush_pending(d, now, items[0].why, sizeof(items[0].why))) != 0) {
        *failed = 0;
        fx_store_rollback(d->db);
        clear_caches(d);
        clear_pending(d);
        return rc;
    }
    if ((rc = fx_store_commit(d->db)) != 0) {
        snprintf(items[0].why, sizeof(items[0].why), "commit: %s", fx_store_errmsg(d->db));
        *failed = 0;
        fx_store_rollback(d->db);
        clear_caches(d);
    }
    return rc;
}

/* ---- PostgreSQL: set-based apply (see the note at the top) ---- */

#define NO_ROW UINT32_MAX

/* Empty bt for a batch of at most maxrows rows. */
static void bulk_reset(struct bulk_tab *bt, size_t ncols, size_t maxrows)
{
    bt->nu = 0;
    bt->nchg = 0;
    memset(bt->perkey, 0, sizeof(bt->perkey));
    if (maxrows > bt->cap) {
        size_t cap = maxrows;
        bt->vals = fx_realloc(bt->vals, cap * (ncols ? ncols : 1) * sizeof(*bt->vals));
        bt->hash = fx_realloc(bt->hash, cap * sizeof(*bt->hash));
        bt->kalt = fx_realloc(bt->kalt, cap * sizeof(*bt->kalt));
        bt->flags = fx_realloc(bt->flags, cap * sizeof(*bt->flags));
        bt->id = fx_realloc(bt->id, cap * sizeof(*bt->id));
        bt->order = fx_realloc(bt->order, cap * sizeof(*bt->order));
        bt->cap = cap;
    }
    size_t want = 64;
    while (want < 2 * maxrows)
        want *= 2;
    if (want > bt->nslots) {
        free(bt->slots);
        bt->slots = fx_calloc(want, sizeof(*bt->slots));
        bt->nslots = want;
    } else {
        memset(bt->slots, 0, bt->nslots * sizeof(*bt->slots));
    }
}

static int same_key(const struct fx_plan_table *pt, size_t k, const struct fx_cv *a,
                    const struct fx_cv *b)
{
    for (size_t i = 0; i < pt->keys[k].ncols; i++)
        if (cv_cmp(&a[pt->keys[k].cols[i]], &b[pt->keys[k].cols[i]]) != 0)
            return 0;
    return 1;
}

/* The unique row with key alternative k and colv's key values (hash h),
 * added with colv's values when new (*added = 1). */
static uint32_t bulk_find_or_add(struct bulk_tab *bt, const struct fx_plan_table *pt, size_t k,
                                 uint64_t h, const struct fx_cv *colv, int *added)
{
    size_t mask = bt->nslots - 1, i;
    for (i = h & mask; bt->slots[i]; i = (i + 1) & mask) {
        uint32_t e = bt->slots[i] - 1;
        if (bt->hash[e] == h && bt->kalt[e] == k &&
            same_key(pt, k, &bt->vals[e * pt->ncols], colv)) {
            *added = 0;
            return e;
        }
    }
    uint32_t u = (uint32_t)bt->nu++;
    bt->slots[i] = u + 1;
    bt->hash[u] = h;
    bt->kalt[u] = (uint32_t)k;
    bt->flags[u] = 0;
    bt->id[u] = 0;
    memcpy(&bt->vals[u * pt->ncols], colv, pt->ncols * sizeof(*colv));
    if (k < sizeof(bt->perkey) / sizeof(bt->perkey[0]))
        bt->perkey[k]++;
    *added = 1;
    return u;
}

/* A later row of the same key: what the row path's sequence of coalesce
 * updates would leave, and whether it would have changed anything. */
static void bulk_merge(struct bulk_tab *bt, const struct fx_plan_table *pt, uint32_t u,
                       const struct fx_cv *colv)
{
    struct fx_cv *cur = &bt->vals[u * pt->ncols];
    for (size_t c = 0; c < pt->ncols; c++) {
        if (!pt->cols[c].update || colv[c].type == FX_CV_NULL)
            continue; /* a NULL never overwrites */
        if (cur[c].type == FX_CV_NULL) {
            bt->flags[u] |= BT_TOUCH; /* a new row gets its first value by an update */
        } else if (cv_cmp(&cur[c], &colv[c]) != 0) {
            if (!(bt->flags[u] & BT_CHG))
                bt->nchg++;
            bt->flags[u] |= BT_CHG | BT_TOUCH;
        }
        cur[c] = colv[c];
    }
}

struct order_ctx {
    const struct bulk_tab *bt;
    const struct fx_plan_table *pt;
    int refs_first; /* insert-only table: order by its references first */
};

/* qsort_r comparator of unique row numbers: key alternative, then key values;
 * with refs_first, the reference columns before all that. */
static int order_cmp(const void *a, const void *b, void *arg)
{
    const struct order_ctx *o = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    for (size_t c = 0; o->refs_first && c < o->pt->ncols; c++) {
        if (o->pt->cols[c].kind != FX_SRC_REF)
            continue;
        int r = cv_cmp(&o->bt->vals[x * o->pt->ncols + c], &o->bt->vals[y * o->pt->ncols + c]);
        if (r)
            return r;
    }
    if (o->bt->kalt[x] != o->bt->kalt[y])
        return o->bt->kalt[x] < o->bt->kalt[y] ? -1 : 1;
    const struct fx_plan_key *key = &o->pt->keys[o->bt->kalt[x]];
    const struct fx_cv *vx = &o->bt->vals[x * o->pt->ncols], *vy = &o->bt->vals[y * o->pt->ncols];
    for (size_t i = 0; i < key->ncols; i++) {
        int c = cv_cmp(&vx[key->cols[i]], &vy[key->cols[i]]);
        if (c)
            return c;
    }
    return x < y ? -1 : x > y;
}

static int copy_cv(struct fx_copy *cp, const struct fx_cv *v)
{
    if (v->type == FX_CV_INT)
        return fx_copy_put_int(cp, v->i);
    if (v->type == FX_CV_STR)
        return fx_copy_put_text(cp, v->s, v->len);
    return fx_copy_put_null(cp);
}

/* One pipeline's chunks of a bulk transaction. */
struct bulk_run {
    struct fx_distribution *d;
    const struct pipe_rt *pr;
    struct item *items;
    const size_t *which; /* items of this pipeline, in delivery order */
    size_t nw;
    struct chunk *chs; /* per item in which */
    size_t nrows, nt;
    int64_t *rowids; /* nrows * nt: id of each input row in each table (0: none) */
    uint32_t *urow;  /* nrows: unique row of the current table, or NO_ROW */
    const char *now;
    size_t *failed;
};

/* A failure not tied to one chunk: reported on the first, the batch retry
 * then finds the culprit chunk by chunk. */
static int bulk_fail(struct bulk_run *br, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bulk_fail(struct bulk_run *br, int rc, const char *fmt, ...)
{
    struct item *it = &br->items[br->which[0]];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->why, sizeof(it->why), fmt, ap);
    va_end(ap);
    *br->failed = br->which[0];
    return rc;
}

/* Step 1: every row's values for table t, folded per key. */
static int bulk_collect(struct bulk_run *br, size_t t)
{
    struct table_rt *tr = &br->pr->tables[t];
    const struct fx_plan_table *pt = tr->t;
    struct bulk_tab *bt = &tr->bulk;
    bulk_reset(bt, pt->ncols, br->nrows);
    size_t g = 0;
    for (size_t w = 0; w < br->nw; w++) {
        struct chunk *ch = &br->chs[w];
        struct item *it = &br->items[br->which[w]];
        for (size_t r = 0; r < ch->c->nrows; r++, g++) {
            br->urow[g] = NO_ROW;
            if (pt->skip_unless_field >= 0) {
                int pos = ch->pos[pt->skip_unless_field];
                if (pos < 0 || !present(fx_chunk_val(ch->c, r, (size_t)pos)))
                    continue;
            }
            const int64_t *ids = br->rowids + g * br->nt;
            for (size_t c = 0; c < pt->ncols; c++) {
                int rc =
                    col_value(ch, r, &pt->cols[c], ids, &ch->colv[c], it->why, sizeof(it->why));
                if (rc) {
                    *br->failed = br->which[w];
                    return rc;
                }
            }
            size_t k = key_alternative(pt, ch->colv);
            if (k == pt->nkeys) {
                const struct fx_cv *rn = fx_chunk_val(ch->c, r, 0);
                snprintf(it->why, sizeof(it->why), "row %lld: no complete natural key for table %s",
                         (long long)rn->i, pt->name);
                *br->failed = br->which[w];
                return FX_ESCHEMA;
            }
            uint64_t kh = 1469598103934665603ULL + k;
            for (size_t i = 0; i < pt->keys[k].ncols; i++)
                kh = cv_hash(kh, &ch->colv[pt->keys[k].cols[i]]);
            int added;
            uint32_t u = bulk_find_or_add(bt, pt, k, kh, ch->colv, &added);
            if (!added && tr->update_sql)
                bulk_merge(bt, pt, u, ch->colv);
            br->urow[g] = u;
        }
    }
    return 0;
}

/* Step 2: the unique rows, in key order, into the stage. */
static int bulk_stage(struct bulk_run *br, size_t t)
{
    struct table_rt *tr = &br->pr->tables[t];
    const struct fx_plan_table *pt = tr->t;
    struct bulk_tab *bt = &tr->bulk;
    for (size_t i = 0; i < bt->nu; i++)
        bt->order[i] = (uint32_t)i;
    /* Upserted tables go in key order: concurrent workers then take row
     * locks in one order and never deadlock. Insert-only rows only conflict
     * on a repeat, and their deferred foreign key checks, one per reference
     * and row at commit, walk the referenced table in order when the rows
     * are sorted by their references (30 % less commit time for compras). */
    struct order_ctx oc = {bt, pt, tr->insert_only};
    qsort_r(bt->order, bt->nu, sizeof(*bt->order), order_cmp, &oc);
    struct fx_copy *cp = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_copy_begin(br->d->db, tr->stage, tr->copy_cols, pt->ncols + 3, &cp, &e);
    if (rc)
        return bulk_fail(br, rc, "table %s: staging: %s", pt->name, e.reason);
    for (size_t i = 0; i < bt->nu && rc == 0; i++) {
        uint32_t u = bt->order[i];
        const struct fx_cv *v = &bt->vals[u * pt->ncols];
        rc = fx_copy_put_int(cp, u);
        if (rc == 0)
            rc = fx_copy_put_int(cp, bt->kalt[u]);
        if (rc == 0)
            rc = fx_copy_put_int(cp, (bt->flags[u] & BT_TOUCH) != 0);
        for (size_t c = 0; c < pt->ncols && rc == 0; c++)
            rc = copy_cv(cp, &v[c]);
        if (rc == 0)
            rc = fx_copy_end_row(cp);
    }
    rc = fx_copy_end(cp, NULL, &e); /* reports a failure above too */
    if (rc)
        return bulk_fail(br, rc, "table %s: staging: %s", pt->name, e.reason);
    return 0;
}

/* Step 3: one upsert per key alternative present. */
static int bulk_upsert(struct bulk_run *br, size_t t)
{
    struct table_rt *tr = &br->pr->tables[t];
    const struct fx_plan_table *pt = tr->t;
    size_t nper = sizeof(tr->bulk.perkey) / sizeof(tr->bulk.perkey[0]);
    for (size_t k = 0; k < pt->nkeys; k++) {
        if (k < nper && tr->bulk.perkey[k] == 0)
            continue;
        struct fx_stmt *st = NULL;
        struct fx_err e;
        fx_err_clear(&e);
        int rc = fx_store_prepare(br->d->db, tr->upsert_sql[k], &st, &e);
        if (rc)
            return bulk_fail(br, rc, "table %s: %s", pt->name, e.reason);
        fx_stmt_bind_text(st, 1, br->now, strlen(br->now));
        fx_stmt_bind_text(st, 2, br->now, strlen(br->now));
        rc = fx_stmt_step(st);
        fx_stmt_reset(st);
        if (rc < 0)
            return bulk_fail(br, rc, "table %s: %s", pt->name, fx_store_errmsg(br->d->db));
    }
    return 0;
}

/* Step 4: the id of every staged row (for later tables, and for step 5). */
static int bulk_ids(struct bulk_run *br, size_t t)
{
    struct table_rt *tr = &br->pr->tables[t];
    const struct fx_plan_table *pt = tr->t;
    struct bulk_tab *bt = &tr->bulk;
    struct fx_stmt *st = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_prepare(br->d->db, tr->ids_sql, &st, &e);
    if (rc)
        return bulk_fail(br, rc, "table %s: %s", pt->name, e.reason);
    size_t found = 0;
    while ((rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        int64_t u = fx_stmt_int(st, 0);
        if (u >= 0 && (size_t)u < bt->nu && bt->id[u] == 0) {
            bt->id[u] = fx_stmt_int(st, 1);
            found++;
        }
    }
    fx_stmt_reset(st);
    if (rc < 0)
        return bulk_fail(br, rc, "table %s: %s", pt->name, fx_store_errmsg(br->d->db));
    if (found != bt->nu)
        return bulk_fail(br, FX_ESTORE,
                         "table %s: %zu of %zu staged rows not found by their key after the upsert",
                         pt->name, bt->nu - found, bt->nu);
    for (size_t g = 0; g < br->nrows; g++)
        br->rowids[g * br->nt + t] = br->urow[g] == NO_ROW ? 0 : bt->id[br->urow[g]];
    return 0;
}

/* Step 5: keys whose values changed within the batch were updated at least
 * once, row by row, even when the last value equals the stored one. */
static int bulk_touch(struct bulk_run *br, size_t t)
{
    struct table_rt *tr = &br->pr->tables[t];
    struct bulk_tab *bt = &tr->bulk;
    struct fx_buf ids;
    fx_buf_init(&ids, 0);
    fx_buf_putc(&ids, '{');
    int any = 0;
    for (size_t u = 0; u < bt->nu; u++) {
        if (bt->flags[u] & BT_CHG) {
            fx_buf_printf(&ids, "%s%lld", any ? "," : "", (long long)bt->id[u]);
            any = 1;
        }
    }
    fx_buf_putc(&ids, '}');
    struct fx_stmt *st = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_prepare(br->d->db, tr->touch_sql, &st, &e);
    if (rc == 0) {
        fx_stmt_bind_text(st, 1, br->now, strlen(br->now));
        fx_stmt_bind_text(st, 2, ids.data, ids.len);
        rc = fx_stmt_step(st);
        fx_stmt_reset(st);
        if (rc < 0)
            snprintf(e.reason, sizeof(e.reason), "%s", fx_store_errmsg(br->d->db));
    }
    fx_buf_cleanup(&ids);
    if (rc < 0)
        return bulk_fail(br, rc, "table %s: %s", tr->t->name, e.reason);
    return 0;
}

static int bulk_table(struct bulk_run *br, size_t t)
{
    struct table_rt *tr = &br->pr->tables[t];
    int64_t t0 = fx_mono_ms();
    int rc = bulk_collect(br, t);
    if (rc || tr->bulk.nu == 0)
        return rc;
    int64_t t1 = fx_mono_ms();
    if ((rc = bulk_stage(br, t)))
        return rc;
    int64_t t2 = fx_mono_ms();
    if ((rc = bulk_upsert(br, t)))
        return rc;
    int64_t t3 = fx_mono_ms();
    if ((tr->referenced || tr->bulk.nchg) && (rc = bulk_ids(br, t)))
        return rc;
    if (tr->bulk.nchg && (rc = bulk_touch(br, t)))
        return rc;
    fx_log_debug("distribution",
                 "bulk %s: %zu rows, %zu keys; values %lld ms, copy %lld ms, upsert %lld ms, ids "
                 "%lld ms",
                 tr->t->name, br->nrows, tr->bulk.nu, (long long)(t1 - t0), (long long)(t2 - t1),
                 (long long)(t3 - t2), (long long)(fx_mono_ms() - t3));
    return 0;
}

static int bulk_pipeline(struct fx_distribution *d, size_t pi, struct item *items,
                         const size_t *which, size_t nw, const char *now, size_t *failed)
{
    const struct pipe_rt *pr = &d->pipes[pi];
    const struct fx_plan *plan = fx_pipeline_plan(pr->p);
    struct bulk_run br = {.d = d,
                          .pr = pr,
                          .items = items,
                          .which = which,
                          .nw = nw,
                          .nt = plan->ntables,
                          .now = now,
                          .failed = failed};
    br.chs = fx_calloc(nw, sizeof(*br.chs));
    for (size_t w = 0; w < nw; w++) {
        chunk_init(&br.chs[w], pr, &items[which[w]].chunk);
        br.nrows += items[which[w]].chunk.nrows;
    }
    int rc = 0;
    if (br.nrows >= NO_ROW) {
        rc = bulk_fail(&br, FX_ETOOBIG, "batch of %zu rows is too large", br.nrows);
        goto out;
    }
    br.rowids = fx_calloc(br.nrows * br.nt + 1, sizeof(*br.rowids));
    br.urow = fx_malloc((br.nrows + 1) * sizeof(*br.urow));
    struct fx_err e;
    fx_err_clear(&e);
    if ((rc = fx_store_exec(d->db, pr->stage_ddl, &e))) {
        rc = bulk_fail(&br, rc, "staging tables: %s", e.reason);
        goto out;
    }
    for (size_t t = 0; t < br.nt && rc == 0; t++)
        rc = bulk_table(&br, t);
out:
    for (size_t w = 0; w < nw; w++)
        chunk_cleanup(&br.chs[w]);
    free(br.chs);
    free(br.rowids);
    free(br.urow);
    return rc;
}

/* Apply items [0, n) in one transaction, set-based per pipeline (chunks in
 * delivery order within each): 0, or < 0 with everything rolled back and a
 * reason in items[*failed].why. */
static int apply_items_bulk(struct fx_distribution *d, struct item *items, size_t n, size_t *failed)
{
    char now[32];
    fx__now_iso(now);
    *failed = 0;
    int rc = begin_items(d, items);
    if (rc)
        return rc;
    size_t *which = fx_malloc(n * sizeof(*which));
    int64_t t0 = fx_mono_ms();
    for (size_t i = 0; i < n; i++) {
        if ((rc = inbox_item(d, &items[i], now)) != 0) {
            *failed = i;
            goto fail;
        }
        if (!items[i].skipped && !find_pipe(d, items[i].chunk.pipeline)) {
            snprintf(items[i].why, sizeof(items[i].why), "unknown pipeline '%s'",
                     items[i].chunk.pipeline);
            rc = FX_ENOTFOUND;
            *failed = i;
            goto fail;
        }
    }
    int64_t t1 = fx_mono_ms();
    for (size_t p = 0; p < d->npipes; p++) {
        size_t nw = 0;
        for (size_t i = 0; i < n; i++)
            if (!items[i].skipped &&
                strcmp(items[i].chunk.pipeline, fx_pipeline_name(d->pipes[p].p)) == 0)
                which[nw++] = i;
        if (nw && (rc = bulk_pipeline(d, p, items, which, nw, now, failed)) != 0)
            goto fail;
    }
    free(which);
    int64_t t2 = fx_mono_ms();
    if ((rc = fx_store_commit(d->db)) != 0) {
        snprintf(items[0].why, sizeof(items[0].why), "commit: %s", fx_store_errmsg(d->db));
        *failed = 0;
        fx_store_rollback(d->db);
    }
    fx_log_debug("distribution", "bulk transaction: inbox %lld ms, tables %lld ms, commit %lld ms",
                 (long long)(t1 - t0), (long long)(t2 - t1), (long long)(fx_mono_ms() - t2));
    return rc;
fail:
    free(which);
    fx_store_rollback(d->db);
    return rc;
}

static int apply_items(struct fx_distribution *d, struct item *items, size_t n, size_t *failed)
{
    return is_pg(d->db) ? apply_items_bulk(d, items, n, failed)
                        : apply_items_rows(d, items, n, failed);
}

static void announce_and_ack(struct fx_distribution *d, struct item *items, size_t n)
{
    struct fx_err e;
    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        fx_err_clear(&e);
        if (publish_applied(d, it->m, it->chunk.batch, it->chunk.nrows, &e) != 0) {
            /* committed already: the redelivery finds the inbox entry and re-announces */
            fx_bus_nack(d->bus, it->m, "cannot announce applied chunk");
            continue;
        }
        int rc = fx_bus_ack(d->bus, it->m);
        if (rc)
            fx_log(FX_LOG_WARN, "distribution", it->m->correlation_id,
                   "ack of chunk %s failed (%s): it will be redelivered and skipped", it->m->id,
                   fx_strerror(rc));
    }
}

static void reject_item(struct fx_distribution *d, struct item *it)
{
    fx_log(FX_LOG_ERROR, "distribution", it->m->correlation_id,
           "chunk %s (attempt %d) not applied: %s", it->m->id, it->m->attempt, it->why);
    fx_bus_nack(d->bus, it->m, it->why);
}

/*
 * Up to distribution.batch chunks (those already waiting; it never waits for
 * more) go into one transaction: SQLite writes each touched page once per
 * commit, and random-key indexes (purchase keys, documents) touch a page per
 * row, so bigger transactions write several times less. If any chunk fails,
 * the transaction is rolled back and the chunks are retried one per
 * transaction, so only the bad one is nacked.
 */
int fx_distribution_once(struct fx_distribution *d, int timeout_ms, struct fx_err *err)
{
    size_t max = (size_t)fx_config_int(d->rt->cfg, "distribution.batch");
    struct item *items = fx_calloc(max, sizeof(*items));
    size_t n = 0;
    int rc = 0;
    while (n < max) {
        struct fx_delivery *m = NULL;
        rc = fx_bus_receive(d->bus, FX_GROUP_DISTRIBUTION, n ? 0 : timeout_ms, &m, err);
        if (rc <= 0)
            break;
        struct item *it = &items[n];
        it->m = m;
        if (!m->data) {
            snprintf(it->why, sizeof(it->why), "chunk event has no data");
            reject_item(d, it);
            fx_delivery_free(m);
            it->m = NULL;
            continue;
        }
        if (fx_chunk_decode(m->data, m->data_len, &it->chunk, it->why, sizeof(it->why)) != 0) {
            reject_item(d, it);
            fx_delivery_free(m);
            it->m = NULL;
            continue;
        }
        free(m->data); /* decoded into the chunk: halve what a batch holds */
        m->data = NULL;
        m->data_len = 0;
        n++;
    }
    if (n == 0) {
        free(items);
        return rc < 0 ? rc : 0;
    }
    int64_t t0 = fx_mono_ms();
    size_t failed = 0, rows = 0;
    int result = 0;
    if (apply_items(d, items, n, &failed) == 0) {
        announce_and_ack(d, items, n);
        for (size_t i = 0; i < n; i++)
            result += !items[i].skipped;
    } else if (n == 1) {
        reject_item(d, &items[0]);
        fx_err_set(err, FX_ESTORE, "%s", items[0].why);
        result = FX_ESTORE;
    } else {
        fx_log(FX_LOG_WARN, "distribution", items[failed].m->correlation_id,
               "batch of %zu chunks rolled back (%s); retrying them one by one", n,
               items[failed].why);
        result = 0;
        for (size_t i = 0; i < n; i++) {
            size_t f;
            if (apply_items(d, &items[i], 1, &f) == 0) {
                announce_and_ack(d, &items[i], 1);
                result += !items[i].skipped;
            } else {
                reject_item(d, &items[i]);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        rows += items[i].chunk.nrows;
    fx_log(FX_LOG_DEBUG, "distribution", NULL, "%zu chunks, %zu rows in %lld ms", n, rows,
           (long long)(fx_mono_ms() - t0));
    for (size_t i = 0; i < n; i++) {
        fx_chunk_free(&items[i].chunk);
        fx_delivery_free(items[i].m);
    }
    free(items);
    return result;
}
