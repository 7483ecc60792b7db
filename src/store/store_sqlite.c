/* SPDX-License-Identifier: MIT */
/*
 * SQLite backend of the store: URL "sqlite:DIR" opens DIR/<name>.db (DIR is
 * created), "sqlite::memory:" a private in-memory database; an optional
 * "?busy_timeout=MS" overrides the 10 s default lock wait; "&cache_mb=N" the
 * 16 MiB page cache of each connection.
 *
 * Design notes:
 * - One connection per struct, used by one thread at a time, so the handle
 *   is opened SQLITE_OPEN_NOMUTEX. Several processes share a file: WAL lets
 *   readers run beside the single writer, synchronous=NORMAL makes a commit
 *   an append to the WAL (durable at checkpoint), and the busy timeout turns
 *   lock contention into waiting instead of errors.
 * - Statements are prepared once per SQL text (SQLITE_PREPARE_PERSISTENT)
 *   and kept in a hash map until close; prepare is a lookup plus
 *   reset/clear. bind/step/column calls go straight to sqlite3_* with no
 *   allocation of ours, so a bulk insert inside one transaction runs at the
 *   engine's speed.
 * - begin is BEGIN IMMEDIATE: the write lock is taken up front, so a
 *   transaction never fails half-way on a lock upgrade. The busy handler
 *   waits for it; a deadline loop covers the BUSY returns that bypass the
 *   handler (WAL recovery by another process).
 * - The last error message is copied on failure, so it outlives the
 *   rollback that usually follows.
 * - Double-quoted string literals are disabled (SQLITE_DBCONFIG_DQS_*): in
 *   the portable SQL subset "x" is an identifier, as in PostgreSQL.
 * - Bulk load (copy) is the cached INSERT executed once per row: in-process,
 *   that is already the engine's speed. Outside a transaction the copy opens
 *   its own (BEGIN IMMEDIATE) so it is all or nothing, as on PostgreSQL.
 */
#include "store/store_int.h"

#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BUSY_MS 10000
#define DEFAULT_CACHE_MB 16 /* page cache per connection */
#define MAX_BUSY_MS 3600000
#define CACHE_WARN_STMTS 4096 /* more distinct SQL texts than this smells of SQL built per call */

struct sq_store;

struct sq_stmt {
    struct fx_stmt base; /* first: the front casts */
    struct sq_store *store;
    sqlite3_stmt *st;
    struct sq_stmt *next; /* hash chain */
    uint64_t hash;
    size_t len;
    char sql[]; /* cache key */
};

struct sq_store {
    struct fx_store base; /* first: the front casts */
    sqlite3 *db;
    int busy_ms;
    int64_t busy_since_us;
    int cache_mb;
    sqlite3_stmt *begin_st, *commit_st, *rollback_st;
    struct sq_stmt **buckets; /* power-of-two count */
    size_t nbuckets, nstmts;
    char errmsg[1024];
};

static const struct fx_store_vtbl sq_vtbl;

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return FX_ECONSTRAINT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FX_EBUSY;
    case SQLITE_NOMEM:
        return FX_ENOMEM;
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        return FX_EINVAL;
    case SQLITE_TOOBIG:
        return FX_ETOOBIG;
    default:
        return FX_ESTORE;
    }
}

/* Save the connection's message for rc (call before any other sqlite3_*). */
static int fail(struct sq_store *s, int rc)
{
    const char *m = sqlite3_errmsg(s->db);
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", m && *m ? m : sqlite3_errstr(rc));
    return map_rc(rc);
}

/* The pause before the n-th retry of a lock: writers here hold the lock for
 * well under a millisecond (API group commits, relay marks), while SQLite's
 * own busy handler sleeps up to 100 ms at a time, which showed as 100 ms
 * tails in API latency. So: short sleeps first, 1 ms at most. */
static int busy_pause_us(int n)
{
    return n < 20 ? 50 : n < 100 ? 200 : 1000;
}

static int busy_cb(void *ud, int n)
{
    struct sq_store *s = ud;
    int64_t now = fx_mono_us();
    if (n == 0)
        s->busy_since_us = now;
    if (now - s->busy_since_us >= (int64_t)s->busy_ms * 1000)
        return 0;
    struct timespec ts = {0, (long)busy_pause_us(n) * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* Run a statement without results; on BUSY retry until the busy deadline. */
static int step_retry(struct sq_store *s, sqlite3_stmt *st)
{
    int64_t deadline = fx_mono_ms() + s->busy_ms;
    int n = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
            sqlite3_reset(st);
            return 0;
        }
        int r = fail(s, rc);
        sqlite3_reset(st);
        if ((rc & 0xff) != SQLITE_BUSY || fx_mono_ms() >= deadline)
            return r;
        struct timespec ts = {0, (long)busy_pause_us(n++) * 1000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- connection ops ------------------------------------------------------ */

static void sq_close(struct fx_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct sq_stmt *e = s->buckets[i];
        while (e) {
            struct sq_stmt *next = e->next;
            sqlite3_finalize(e->st);
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    sqlite3_finalize(s->begin_st);
    sqlite3_finalize(s->commit_st);
    sqlite3_finalize(s->rollback_st);
    sqlite3_close_v2(s->db); /* rolls back an open transaction */
    free(s);
}

static int sq_exec(struct fx_store *base, const char *sql, struct fx_err *err)
{
    struct sq_store *s = (struct sq_store *)base;
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return 0;
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return fx_err_set(err, map_rc(rc), "%s", s->errmsg);
}

static int sq_begin(struct fx_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    return step_retry(s, s->begin_st);
}

static int sq_rollback(struct fx_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    if (sqlite3_get_autocommit(s->db))
        return 0; /* none open, or the engine already rolled it back */
    int rc = sqlite3_step(s->rollback_st);
    int r = rc == SQLITE_DONE ? 0 : fail(s, rc);
    sqlite3_reset(s->rollback_st);
    return r;
}

static int sq_commit(struct fx_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    int rc = sqlite3_step(s->commit_st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s->commit_st);
        return 0;
    }
    int r = fail(s, rc);
    sqlite3_reset(s->commit_st);
    /* A failed COMMIT leaves the transaction open (holding the write lock). */
    if (!sqlite3_get_autocommit(s->db)) {
        char keep[sizeof(s->errmsg)];
        memcpy(keep, s->errmsg, sizeof(keep));
        sq_rollback(base);
        memcpy(s->errmsg, keep, sizeof(keep));
    }
    return r;
}

static void cache_grow(struct sq_store *s)
{
    size_t n = s->nbuckets * 2;
    struct sq_stmt **b = fx_calloc(n, sizeof(*b));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct sq_stmt *e = s->buckets[i];
        while (e) {
            struct sq_stmt *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static int sq_prepare(struct fx_store *base, const char *sql, struct fx_stmt **out,
                      struct fx_err *err)
{
    struct sq_store *s = (struct sq_store *)base;
    size_t len = strlen(sql);
    uint64_t h = fx_hash64(sql, len);
    for (struct sq_stmt *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->next) {
        if (e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0) {
            sqlite3_reset(e->st);
            sqlite3_clear_bindings(e->st);
            *out = &e->base;
            return 0;
        }
    }
    if (len >= INT_MAX)
        return fx_err_set(err, FX_ETOOBIG, "store: SQL text too long");

    sqlite3_stmt *st = NULL, *extra = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (rc != SQLITE_OK) {
        int r = fail(s, rc);
        fx_err_value(err, sql, len);
        return fx_err_set(err, r, "%s", s->errmsg);
    }
    if (!st) {
        snprintf(s->errmsg, sizeof(s->errmsg), "no SQL statement to prepare");
        return fx_err_set(err, FX_EINVAL, "store: %s", s->errmsg);
    }
    /* Trailing comments are fine; a second statement is not. */
    if (tail && *tail &&
        (sqlite3_prepare_v2(s->db, tail, -1, &extra, NULL) != SQLITE_OK || extra)) {
        sqlite3_finalize(extra);
        sqlite3_finalize(st);
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "prepare takes one SQL statement (fx_store_exec runs several)");
        fx_err_value(err, sql, len);
        return fx_err_set(err, FX_EINVAL, "store: %s", s->errmsg);
    }

    struct sq_stmt *e = fx_malloc(sizeof(*e) + len + 1);
    e->base.vt = &sq_vtbl;
    e->store = s;
    e->st = st;
    e->hash = h;
    e->len = len;
    memcpy(e->sql, sql, len + 1);
    if (s->nstmts >= s->nbuckets)
        cache_grow(s);
    e->next = s->buckets[h & (s->nbuckets - 1)];
    s->buckets[h & (s->nbuckets - 1)] = e;
    if (++s->nstmts == CACHE_WARN_STMTS)
        fx_log_warn("store",
                    "%d distinct statements cached on one connection: is SQL text built "
                    "per call? Bind parameters instead",
                    CACHE_WARN_STMTS);
    *out = &e->base;
    return 0;
}

static int64_t sq_changes(struct fx_store *base)
{
    return sqlite3_changes64(((struct sq_store *)base)->db);
}

static const char *sq_errmsg(struct fx_store *base)
{
    return ((struct sq_store *)base)->errmsg;
}

static const char *sq_dialect(const struct fx_store *base)
{
    (void)base;
    return "sqlite";
}

/* ---- statement ops (the hot path: nothing but the engine call) ----------- */

#define STMT(base) ((struct sq_stmt *)(base))

static int bind_result(struct sq_stmt *st, int rc)
{
    return rc == SQLITE_OK ? 0 : fail(st->store, rc);
}

static int sq_bind_int(struct fx_stmt *base, int idx, int64_t v)
{
    return bind_result(STMT(base), sqlite3_bind_int64(STMT(base)->st, idx, v));
}

static int sq_bind_double(struct fx_stmt *base, int idx, double v)
{
    return bind_result(STMT(base), sqlite3_bind_double(STMT(base)->st, idx, v));
}

static int sq_bind_text(struct fx_stmt *base, int idx, const char *s, size_t len)
{
    if (!s) {
        if (len)
            return FX_EINVAL;
        s = ""; /* a NULL pointer would bind SQL NULL */
    }
    return bind_result(STMT(base), sqlite3_bind_text64(STMT(base)->st, idx, s, len,
                                                       SQLITE_TRANSIENT, SQLITE_UTF8));
}

static int sq_bind_text_ref(struct fx_stmt *base, int idx, const char *s, size_t len)
{
    if (!s) {
        if (len)
            return FX_EINVAL;
        s = "";
    }
    return bind_result(
        STMT(base), sqlite3_bind_text64(STMT(base)->st, idx, s, len, SQLITE_STATIC, SQLITE_UTF8));
}

static int sq_bind_null(struct fx_stmt *base, int idx)
{
    return bind_result(STMT(base), sqlite3_bind_null(STMT(base)->st, idx));
}

static int sq_step(struct fx_stmt *base)
{
    struct sq_stmt *st = STMT(base);
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_ROW)
        return FX_STORE_ROW;
    if (rc == SQLITE_DONE)
        return FX_STORE_DONE;
    int r = fail(st->store, rc);
    sqlite3_reset(st->st);
    return r;
}

static int64_t sq_col_int(struct fx_stmt *base, int col)
{
    return sqlite3_column_int64(STMT(base)->st, col);
}

static double sq_col_double(struct fx_stmt *base, int col)
{
    return sqlite3_column_double(STMT(base)->st, col);
}

static const char *sq_col_text(struct fx_stmt *base, int col, size_t *len)
{
    sqlite3_stmt *st = STMT(base)->st;
    const char *p = (const char *)sqlite3_column_text(st, col);
    if (!p) {
        if (len)
            *len = 0;
        /* NULL for SQL NULL only; a zero-length blob reads as "" */
        return sqlite3_column_type(st, col) == SQLITE_NULL ? NULL : "";
    }
    if (len)
        *len = (size_t)sqlite3_column_bytes(st, col);
    return p;
}

static int sq_col_is_null(struct fx_stmt *base, int col)
{
    return sqlite3_column_type(STMT(base)->st, col) == SQLITE_NULL;
}

static int sq_ncols(struct fx_stmt *base)
{
    return sqlite3_column_count(STMT(base)->st);
}

static void sq_reset(struct fx_stmt *base)
{
    sqlite3_reset(STMT(base)->st);
    sqlite3_clear_bindings(STMT(base)->st);
}

/* ---- bulk load ------------------------------------------------------------ */

struct sq_copy {
    struct fx_copy base; /* first: the front casts */
    struct sq_store *store;
    sqlite3_stmt *st; /* the cached INSERT, owned by the store's cache */
    int own_tx;       /* the copy opened the transaction it runs in */
};

#define COPY(base) ((struct sq_copy *)(base))

static int sq_copy_begin(struct fx_store *base, const char *table, const char *const *cols,
                         size_t ncols, struct fx_copy **out, struct fx_err *err)
{
    struct sq_store *s = (struct sq_store *)base;
    if (ncols > 32766) /* SQLite's limit on parameters */
        return fx_err_set(err, FX_EINVAL, "store: copy into %s: too many columns (%zu)", table,
                          ncols);
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "INSERT INTO %s (", table);
    for (size_t i = 0; i < ncols; i++)
        fx_buf_printf(&b, "%s%s", i ? ", " : "", cols[i]);
    fx_buf_puts(&b, ") VALUES (");
    for (size_t i = 0; i < ncols; i++)
        fx_buf_puts(&b, i ? ", ?" : "?");
    fx_buf_putc(&b, ')');
    struct fx_stmt *st = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = sq_prepare(base, b.data, &st, &e);
    fx_buf_cleanup(&b);
    if (rc < 0)
        return fx_err_set(err, rc, "copy into %s: %s", table, e.reason);
    int own = sqlite3_get_autocommit(s->db);
    if (own && (rc = step_retry(s, s->begin_st)) < 0)
        return fx_err_set(err, rc, "copy into %s: cannot begin a transaction: %s", table,
                          s->errmsg);
    struct sq_copy *c = fx_calloc(1, sizeof(*c));
    c->base.vt = &sq_vtbl;
    c->base.ncols = ncols;
    snprintf(c->base.table, sizeof(c->base.table), "%s", table);
    c->store = s;
    c->st = ((struct sq_stmt *)st)->st;
    c->own_tx = own;
    *out = &c->base;
    return 0;
}

static int sq_copy_put_int(struct fx_copy *base, int64_t v)
{
    struct sq_copy *c = COPY(base);
    int rc = sqlite3_bind_int64(c->st, (int)base->col + 1, v);
    return rc == SQLITE_OK ? 0 : fail(c->store, rc);
}

static int sq_copy_put_text(struct fx_copy *base, const char *s, size_t len)
{
    struct sq_copy *c = COPY(base);
    int rc = sqlite3_bind_text64(c->st, (int)base->col + 1, s, len, SQLITE_TRANSIENT, SQLITE_UTF8);
    return rc == SQLITE_OK ? 0 : fail(c->store, rc);
}

static int sq_copy_put_null(struct fx_copy *base)
{
    struct sq_copy *c = COPY(base);
    int rc = sqlite3_bind_null(c->st, (int)base->col + 1);
    return rc == SQLITE_OK ? 0 : fail(c->store, rc);
}

static int sq_copy_end_row(struct fx_copy *base)
{
    struct sq_copy *c = COPY(base);
    int rc = sqlite3_step(c->st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(c->st);
        return 0;
    }
    int r = fail(c->store, rc);
    sqlite3_reset(c->st);
    snprintf(base->why, sizeof(base->why), "row %lld: %.340s", (long long)base->rows + 1,
             c->store->errmsg);
    return r;
}

/* Leave the connection as the copy found it: its own transaction ends,
 * bindings are dropped (the text copies are freed now, not at the next use). */
static void copy_release(struct sq_copy *c, int commit)
{
    sqlite3_reset(c->st);
    sqlite3_clear_bindings(c->st);
    if (c->own_tx && !commit)
        sq_rollback(&c->store->base);
    free(c);
}

static int sq_copy_end(struct fx_copy *base, int64_t *rows, struct fx_err *err)
{
    struct sq_copy *c = COPY(base);
    int rc = base->rc;
    if (rc == 0 && c->own_tx && (rc = sq_commit(&c->store->base)) < 0)
        snprintf(base->why, sizeof(base->why), "commit: %.370s", c->store->errmsg);
    if (rc < 0) {
        fx_err_set(err, rc, "copy into %s: %s", base->table,
                   base->why[0] ? base->why : c->store->errmsg);
        copy_release(c, 0);
        return rc;
    }
    if (rows)
        *rows = base->rows;
    copy_release(c, 1);
    return 0;
}

static void sq_copy_abort(struct fx_copy *base)
{
    copy_release(COPY(base), 0);
}

static const struct fx_store_vtbl sq_vtbl = {
    .close = sq_close,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .prepare = sq_prepare,
    .bind_int = sq_bind_int,
    .bind_double = sq_bind_double,
    .bind_text = sq_bind_text,
    .bind_text_ref = sq_bind_text_ref,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .col_int = sq_col_int,
    .col_double = sq_col_double,
    .col_text = sq_col_text,
    .col_is_null = sq_col_is_null,
    .ncols = sq_ncols,
    .reset = sq_reset,
    .changes = sq_changes,
    .errmsg = sq_errmsg,
    .dialect = sq_dialect,
    .copy_begin = sq_copy_begin,
    .copy_put_int = sq_copy_put_int,
    .copy_put_text = sq_copy_put_text,
    .copy_put_null = sq_copy_put_null,
    .copy_end_row = sq_copy_end_row,
    .copy_end = sq_copy_end,
    .copy_abort = sq_copy_abort,
};

/* ---- open ---------------------------------------------------------------- */

/* URL option "key=N" with 0 <= N <= max: 1 and *out set, 0 when key does not
 * match, < 0 for a bad value. */
static int int_option(const char *q, size_t plen, const char *key, long max, long *out)
{
    size_t klen = strlen(key);
    if (plen <= klen || strncmp(q, key, klen) != 0 || q[klen] != '=')
        return 0;
    char num[16], *end;
    size_t vlen = plen - klen - 1;
    if (vlen == 0 || vlen >= sizeof(num))
        return -1;
    memcpy(num, q + klen + 1, vlen);
    num[vlen] = '\0';
    long v = strtol(num, &end, 10);
    if (*end || v < 0 || v > max)
        return -1;
    *out = v;
    return 1;
}

/* "DIR[?busy_timeout=MS][&cache_mb=N]" -> dir (caller frees), busy_ms, cache_mb. */
static int parse_location(const char *location, char **dir, int *busy_ms, int *cache_mb,
                          struct fx_err *err)
{
    const char *q = strchr(location, '?');
    size_t n = q ? (size_t)(q - location) : strlen(location);
    *busy_ms = DEFAULT_BUSY_MS;
    *cache_mb = DEFAULT_CACHE_MB;
    if (n == 0)
        return fx_err_set(err, FX_EINVAL,
                          "store: sqlite URL needs a directory (sqlite:DIR or sqlite::memory:)");
    while (q && *q) {
        q++;
        const char *amp = strchr(q, '&');
        size_t plen = amp ? (size_t)(amp - q) : strlen(q);
        long v = 0;
        int r;
        if ((r = int_option(q, plen, "busy_timeout", MAX_BUSY_MS, &v)) != 0) {
            if (r < 0)
                return fx_err_set(err, FX_EINVAL,
                                  "store: sqlite busy_timeout must be 0..%d milliseconds",
                                  MAX_BUSY_MS);
            *busy_ms = (int)v;
        } else if ((r = int_option(q, plen, "cache_mb", 65536, &v)) != 0) {
            if (r < 0 || v < 1)
                return fx_err_set(err, FX_EINVAL, "store: sqlite cache_mb must be 1..65536");
            *cache_mb = (int)v;
        } else {
            return fx_err_set(err, FX_EINVAL,
                              "store: unknown sqlite URL option '%.*s' (known: busy_timeout, "
                              "cache_mb)",
                              (int)(plen > 64 ? 64 : plen), q);
        }
        q = amp;
    }
    *dir = fx_strndup(location, n);
    return 0;
}

static int check_dir(const char *dir, struct fx_err *err)
{
    if (fx_mkdirs(dir) < 0)
        return fx_err_set(err, FX_EIO, "store: cannot create database directory '%s': %s", dir,
                          strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return fx_err_set(err, FX_EIO, "store: cannot use database directory '%s': %s", dir,
                          strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return fx_err_set(err, FX_EIO, "store: database directory '%s' is not a directory", dir);
    /* WAL needs to create DIR/<name>.db-wal and -shm beside the database. */
    if (access(dir, W_OK | X_OK) != 0)
        return fx_err_set(err, FX_EIO, "store: database directory '%s' is not writable: %s", dir,
                          strerror(errno));
    return 0;
}

static int prep_ctl(struct sq_store *s, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

/* Connection settings; any failure names the database. */
static int setup(struct sq_store *s, int memory)
{
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, busy_cb, s);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (!memory && sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(s->errmsg, sizeof(s->errmsg), "database file is read-only");
        return FX_EIO;
    }

    /* Switching to WAL takes a lock another process may hold: wait for it. */
    sqlite3_stmt *st = NULL;
    int rc = prep_ctl(s, "PRAGMA journal_mode=WAL", &st);
    if (rc < 0)
        return rc;
    int64_t deadline = fx_mono_ms() + s->busy_ms;
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(st, 0);
            const char *want = memory ? "memory" : "wal";
            if (!mode || strcmp(mode, want) != 0) {
                snprintf(s->errmsg, sizeof(s->errmsg), "journal mode is '%s', not %s",
                         mode ? mode : "?", want);
                rc = FX_ESTORE;
            }
            break;
        }
        rc = fail(s, r);
        sqlite3_reset(st);
        if ((r & 0xff) != SQLITE_BUSY || fx_mono_ms() >= deadline)
            break;
        fx_sleep_ms(5);
        rc = 0;
    }
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;

    rc = sq_exec(&s->base,
                 "PRAGMA synchronous=NORMAL;"
                 "PRAGMA foreign_keys=ON;"
                 "PRAGMA temp_store=MEMORY;"
                 "PRAGMA mmap_size=0;" /* mapped pages would count in every process RSS */
                 "PRAGMA journal_size_limit=67108864;" /* truncate a big WAL after checkpoint */
                 "PRAGMA wal_autocheckpoint=16384;",   /* 64 MiB: bulk commits write MBs */
                 NULL);
    if (rc < 0)
        return rc;
    char cache[64];
    snprintf(cache, sizeof(cache), "PRAGMA cache_size=-%d", s->cache_mb * 1024);
    if ((rc = sq_exec(&s->base, cache, NULL)) < 0)
        return rc;
    if ((rc = prep_ctl(s, "BEGIN IMMEDIATE", &s->begin_st)) < 0 ||
        (rc = prep_ctl(s, "COMMIT", &s->commit_st)) < 0 ||
        (rc = prep_ctl(s, "ROLLBACK", &s->rollback_st)) < 0)
        return rc;
    return 0;
}

static int sq_open(const char *url, const char *location, const char *name, struct fx_store **out,
                   struct fx_err *err)
{
    (void)url;
    char *dir = NULL, *path = NULL;
    struct sq_store *s = NULL;
    int busy_ms, cache_mb;
    int rc = parse_location(location, &dir, &busy_ms, &cache_mb, err);
    if (rc < 0)
        return rc;
    int memory = strcmp(dir, ":memory:") == 0;
    if (memory) {
        path = fx_strdup(":memory:");
    } else {
        if ((rc = check_dir(dir, err)) < 0)
            goto out;
        /* "./" keeps a relative DIR from ever reading as a "file:" URI. */
        path = fx_asprintf("%s%s/%s.db", dir[0] == '/' ? "" : "./", dir, name);
    }

    s = fx_calloc(1, sizeof(*s));
    s->base.vt = &sq_vtbl;
    s->busy_ms = busy_ms;
    s->cache_mb = cache_mb;
    s->nbuckets = 64;
    s->buckets = fx_calloc(s->nbuckets, sizeof(*s->buckets));
    int src = sqlite3_open_v2(path, &s->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                  SQLITE_OPEN_EXRESCODE,
                              NULL);
    if (src != SQLITE_OK) {
        int sys = s->db ? sqlite3_system_errno(s->db) : 0;
        rc = s->db ? fail(s, src) : FX_ENOMEM;
        if (rc != FX_ENOMEM)
            rc = FX_EIO;
        fx_err_set(err, rc, "store: cannot open database '%s': %s%s%s%s", path, s->errmsg,
                   sys ? " (" : "", sys ? strerror(sys) : "", sys ? ")" : "");
        goto out;
    }
    if ((rc = setup(s, memory)) < 0) {
        fx_err_set(err, rc, "store: cannot set up database '%s': %s", path, s->errmsg);
        goto out;
    }
    *out = &s->base;
    s = NULL;
    rc = 0;
out:
    if (s)
        sq_close(&s->base);
    free(path);
    free(dir);
    return rc;
}

const struct fx_store_ops fx__store_sqlite_ops = {
    .name = "sqlite",
    .scheme = "sqlite",
    .open = sq_open,
    .vt = &sq_vtbl,
};
