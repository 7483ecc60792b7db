/* SPDX-License-Identifier: MIT */
/*
 * Store front: picks the backend from the URL scheme, checks handles, and
 * forwards every call through the connection's vtable (store_int.h). The
 * statement path (bind, step, columns, reset) is one NULL check and one
 * indirect call, so a bulk insert runs at the engine's speed. Versioned
 * migrations live here, once for all backends, built from the same ops any
 * caller has: each pending migration runs in its own write transaction
 * together with its fx_migrations row, after re-reading the recorded versions
 * inside that transaction, so processes migrating one database at once apply
 * each version exactly once.
 */
#include "store/store_int.h"

#include "fluxo/log.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct fx_store_ops *const backends[] = {
    &fx__store_sqlite_ops,
    &fx__store_pg_ops,
    &fx__store_postgres_ops,
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* The one invariant the front relies on instead of checking per call. */
static int vtbl_complete(const struct fx_store_vtbl *vt)
{
    return vt && vt->close && vt->exec && vt->begin && vt->commit && vt->rollback && vt->prepare &&
           vt->bind_int && vt->bind_double && vt->bind_text && vt->bind_text_ref && vt->bind_null &&
           vt->step && vt->col_int && vt->col_double && vt->col_text && vt->col_is_null &&
           vt->ncols && vt->reset && vt->changes && vt->errmsg && vt->dialect && vt->copy_begin &&
           vt->copy_put_int && vt->copy_put_text && vt->copy_put_null && vt->copy_end_row &&
           vt->copy_end && vt->copy_abort;
}

/* A database name becomes a file name (sqlite) or a schema (postgresql). */
static int valid_name(const char *name)
{
    if (!*name || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int fx_store_open(const char *url, const char *name, struct fx_store **out, struct fx_err *err)
{
    if (out)
        *out = NULL;
    if (!url || !name || !out)
        return fx_err_set(err, FX_EINVAL, "store: open needs a URL, a database name and an output");
    if (!valid_name(name))
        return fx_err_set(err, FX_EINVAL,
                          "store: invalid database name '%.64s' (1-64 letters, digits, '_', '-')",
                          name);
    /* Never echo the URL past its scheme: it may carry a password. */
    const char *colon = strchr(url, ':');
    if (!colon || colon == url)
        return fx_err_set(err, FX_EINVAL,
                          "store: URL has no scheme (expected sqlite:DIR or postgresql://...)");
    size_t slen = (size_t)(colon - url);
    const struct fx_store_ops *ops = NULL;
    char known[128] = "";
    for (size_t i = 0; i < NBACKENDS; i++) {
        const char *sch = backends[i]->scheme;
        if (strlen(sch) == slen && strncasecmp(sch, url, slen) == 0) {
            ops = backends[i];
            break;
        }
        size_t k = strlen(known);
        snprintf(known + k, sizeof(known) - k, "%s%s", k ? ", " : "", sch);
    }
    if (!ops)
        return fx_err_set(err, FX_ENOTSUP, "store: unknown URL scheme '%.*s' (known: %s)",
                          (int)(slen > 32 ? 32 : slen), url, known);
    if (!vtbl_complete(ops->vt))
        return fx_err_set(err, FX_ENOTSUP, "store: backend '%s' leaves an operation unset",
                          ops->name);
    struct fx_store *s = NULL;
    int rc = ops->open(url, colon + 1, name, &s, err);
    if (rc < 0)
        return rc;
    *out = s;
    return 0;
}

void fx_store_close(struct fx_store *s)
{
    if (s)
        s->vt->close(s);
}

const char *fx_store_dialect(const struct fx_store *s)
{
    return s ? s->vt->dialect(s) : "";
}

int fx_store_exec(struct fx_store *s, const char *sql, struct fx_err *err)
{
    if (!s || !sql)
        return fx_err_set(err, FX_EINVAL, "store: exec needs a store and SQL");
    return s->vt->exec(s, sql, err);
}

int fx_store_begin(struct fx_store *s)
{
    return s ? s->vt->begin(s) : FX_EINVAL;
}

int fx_store_commit(struct fx_store *s)
{
    return s ? s->vt->commit(s) : FX_EINVAL;
}

int fx_store_rollback(struct fx_store *s)
{
    return s ? s->vt->rollback(s) : FX_EINVAL;
}

int fx_store_prepare(struct fx_store *s, const char *sql, struct fx_stmt **out, struct fx_err *err)
{
    if (out)
        *out = NULL;
    if (!s || !sql || !out)
        return fx_err_set(err, FX_EINVAL, "store: prepare needs a store, SQL and an output");
    return s->vt->prepare(s, sql, out, err);
}

int fx_stmt_bind_int(struct fx_stmt *st, int idx, int64_t v)
{
    return st ? st->vt->bind_int(st, idx, v) : FX_EINVAL;
}

int fx_stmt_bind_text(struct fx_stmt *st, int idx, const char *s, size_t len)
{
    return st ? st->vt->bind_text(st, idx, s, len) : FX_EINVAL;
}

int fx_stmt_bind_text_ref(struct fx_stmt *st, int idx, const char *s, size_t len)
{
    return st ? st->vt->bind_text_ref(st, idx, s, len) : FX_EINVAL;
}

int fx_stmt_bind_null(struct fx_stmt *st, int idx)
{
    return st ? st->vt->bind_null(st, idx) : FX_EINVAL;
}

int fx_stmt_bind_double(struct fx_stmt *st, int idx, double v)
{
    return st ? st->vt->bind_double(st, idx, v) : FX_EINVAL;
}

int fx_stmt_step(struct fx_stmt *st)
{
    return st ? st->vt->step(st) : FX_EINVAL;
}

int64_t fx_stmt_int(struct fx_stmt *st, int col)
{
    return st ? st->vt->col_int(st, col) : 0;
}

double fx_stmt_double(struct fx_stmt *st, int col)
{
    return st ? st->vt->col_double(st, col) : 0.0;
}

const char *fx_stmt_text(struct fx_stmt *st, int col, size_t *len)
{
    if (st)
        return st->vt->col_text(st, col, len);
    if (len)
        *len = 0;
    return NULL;
}

int fx_stmt_is_null(struct fx_stmt *st, int col)
{
    return st ? st->vt->col_is_null(st, col) : 1;
}

int fx_stmt_ncols(struct fx_stmt *st)
{
    return st ? st->vt->ncols(st) : 0;
}

void fx_stmt_reset(struct fx_stmt *st)
{
    if (st)
        st->vt->reset(st);
}

int64_t fx_store_changes(struct fx_store *s)
{
    return s ? s->vt->changes(s) : 0;
}

const char *fx_store_errmsg(struct fx_store *s)
{
    return s ? s->vt->errmsg(s) : "no store";
}

/* ---- bulk load ------------------------------------------------------------ */

/* An identifier the program wrote, safe to splice into SQL unquoted:
 * [A-Za-z_][A-Za-z0-9_]*, optionally qualified once (schema.table). */
static int valid_ident(const char *id, int qualified)
{
    size_t n = strlen(id);
    if (n == 0 || n > 63 * 2 + 1)
        return 0;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int first = i == 0 || id[i - 1] == '.';
        if (c == '.' && qualified && !first && i + 1 < n && ++dots == 1)
            continue;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (!first && c >= '0' && c <= '9')))
            return 0;
    }
    return n <= 63 || dots == 1;
}

int fx_store_copy_begin(struct fx_store *s, const char *table, const char *const *cols,
                        size_t ncols, struct fx_copy **out, struct fx_err *err)
{
    if (out)
        *out = NULL;
    if (!s || !table || !out || (ncols && !cols))
        return fx_err_set(err, FX_EINVAL, "store: copy needs a store, a table and an output");
    if (!valid_ident(table, 1))
        return fx_err_set(err, FX_EINVAL,
                          "store: copy into '%.64s': not a plain SQL identifier (letters, "
                          "digits, '_', one '.')",
                          table);
    if (ncols == 0)
        return fx_err_set(err, FX_EINVAL, "store: copy into %s names no column", table);
    for (size_t i = 0; i < ncols; i++)
        if (!cols[i] || !valid_ident(cols[i], 0))
            return fx_err_set(err, FX_EINVAL,
                              "store: copy into %s: column %zu '%.64s' is not a plain SQL "
                              "identifier",
                              table, i + 1, cols[i] ? cols[i] : "(null)");
    return s->vt->copy_begin(s, table, cols, ncols, out, err);
}

/* A put refused before the backend sees it: the copy fails for good. */
static int copy_misuse(struct fx_copy *c)
{
    snprintf(c->why, sizeof(c->why), "row %lld has more than %zu fields (one per column)",
             (long long)c->rows + 1, c->ncols);
    return c->rc = FX_EINVAL;
}

/* The put path: one check of the copy's state and the row's room, one call. */
#define COPY_PUT(c, call)                                                                          \
    do {                                                                                           \
        if (!(c))                                                                                  \
            return FX_EINVAL;                                                                      \
        if ((c)->rc)                                                                               \
            return (c)->rc;                                                                        \
        if ((c)->col >= (c)->ncols)                                                                \
            return copy_misuse(c);                                                                 \
        int rc_ = (call);                                                                          \
        if (rc_ < 0)                                                                               \
            return (c)->rc = rc_;                                                                  \
        (c)->col++;                                                                                \
        return 0;                                                                                  \
    } while (0)

int fx_copy_put_int(struct fx_copy *c, int64_t v)
{
    COPY_PUT(c, c->vt->copy_put_int(c, v));
}

int fx_copy_put_text(struct fx_copy *c, const char *s, size_t len)
{
    if (c && !s && len) {
        if (!c->rc) {
            snprintf(c->why, sizeof(c->why), "row %lld, field %zu: text of %zu bytes at NULL",
                     (long long)c->rows + 1, c->col + 1, len);
            c->rc = FX_EINVAL;
        }
        return c->rc;
    }
    COPY_PUT(c, c->vt->copy_put_text(c, s ? s : "", len));
}

int fx_copy_put_null(struct fx_copy *c)
{
    COPY_PUT(c, c->vt->copy_put_null(c));
}

int fx_copy_end_row(struct fx_copy *c)
{
    if (!c)
        return FX_EINVAL;
    if (c->rc)
        return c->rc;
    if (c->col != c->ncols) {
        snprintf(c->why, sizeof(c->why), "row %lld has %zu fields, not %zu (one per column)",
                 (long long)c->rows + 1, c->col, c->ncols);
        return c->rc = FX_EINVAL;
    }
    int rc = c->vt->copy_end_row(c);
    if (rc < 0)
        return c->rc = rc;
    c->col = 0;
    c->rows++;
    return 0;
}

int fx_copy_end(struct fx_copy *c, int64_t *rows, struct fx_err *err)
{
    if (rows)
        *rows = 0;
    if (!c)
        return fx_err_set(err, FX_EINVAL, "store: copy end needs a copy");
    if (!c->rc && c->col != 0) {
        snprintf(c->why, sizeof(c->why), "the last row (%lld) was not ended: %zu of %zu fields",
                 (long long)c->rows + 1, c->col, c->ncols);
        c->rc = FX_EINVAL;
    }
    return c->vt->copy_end(c, rows, err);
}

void fx_copy_abort(struct fx_copy *c)
{
    if (c)
        c->vt->copy_abort(c);
}

/* ---- migrations ---------------------------------------------------------- */

/* Portable DDL: both engines accept it as is. */
static const char migrations_ddl[] = "CREATE TABLE IF NOT EXISTS fx_migrations ("
                                     " component TEXT NOT NULL,"
                                     " version INTEGER NOT NULL,"
                                     " name TEXT NOT NULL,"
                                     " applied_at TEXT NOT NULL,"
                                     " PRIMARY KEY (component, version))";

static int ensure_table(struct fx_store *s, struct fx_err *err)
{
    struct fx_err e;
    fx_err_clear(&e);
    int rc = s->vt->exec(s, migrations_ddl, &e);
    if (rc < 0)
        return fx_err_set(err, rc, "migrations: cannot create table fx_migrations: %s", e.reason);
    return 0;
}

/* Highest recorded version of component into *out (0 when none). */
static int recorded_max(struct fx_store *s, const char *component, int *out, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = s->vt->prepare(
        s, "SELECT COALESCE(MAX(version), 0) FROM fx_migrations WHERE component = ?", &st, err);
    if (rc < 0)
        return rc;
    rc = st->vt->bind_text(st, 1, component, strlen(component));
    if (rc >= 0)
        rc = st->vt->step(st);
    if (rc == FX_STORE_ROW)
        *out = (int)st->vt->col_int(st, 0);
    else if (rc >= 0)
        rc = FX_ESTORE; /* an aggregate always yields a row */
    st->vt->reset(st);  /* release the read snapshot */
    if (rc < 0)
        return fx_err_set(err, rc, "migrations: cannot read the version of %s: %s", component,
                          s->vt->errmsg(s));
    return 0;
}

static int is_recorded(struct fx_store *s, const char *component, int version, int *yes,
                       struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = s->vt->prepare(s, "SELECT 1 FROM fx_migrations WHERE component = ? AND version = ?",
                            &st, err);
    if (rc < 0)
        return rc;
    rc = st->vt->bind_text(st, 1, component, strlen(component));
    if (rc >= 0)
        rc = st->vt->bind_int(st, 2, version);
    if (rc >= 0)
        rc = st->vt->step(st);
    st->vt->reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "migrations: cannot read fx_migrations: %s", s->vt->errmsg(s));
    *yes = rc == FX_STORE_ROW;
    return 0;
}

static int record(struct fx_store *s, const char *component, const struct fx_migration *m)
{
    struct fx_stmt *st;
    int rc = s->vt->prepare(s,
                            "INSERT INTO fx_migrations (component, version, name, applied_at)"
                            " VALUES (?, ?, ?, ?)",
                            &st, NULL);
    if (rc < 0)
        return rc;
    char now[32];
    int64_t ms = fx_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now + n, sizeof(now) - n, ".%03dZ", (int)(ms % 1000));
    const char *name = m->name ? m->name : "";
    rc = st->vt->bind_text(st, 1, component, strlen(component));
    if (rc >= 0)
        rc = st->vt->bind_int(st, 2, m->version);
    if (rc >= 0)
        rc = st->vt->bind_text(st, 3, name, strlen(name));
    if (rc >= 0)
        rc = st->vt->bind_text(st, 4, now, strlen(now));
    if (rc >= 0)
        rc = st->vt->step(st);
    st->vt->reset(st);
    return rc < 0 ? rc : 0;
}

static const char *migration_sql(const struct fx_migration *m, const char *dialect)
{
    if (strcmp(dialect, "sqlite") == 0 && m->sql_sqlite)
        return m->sql_sqlite;
    if (strcmp(dialect, "postgresql") == 0 && m->sql_pg)
        return m->sql_pg;
    return m->sql;
}

/*
 * One migration, in its own write transaction. *ran tells whether it was
 * applied here (0 when another process got there first).
 */
static int apply_one(struct fx_store *s, const char *component, const struct fx_migration *m,
                     const char *sql, int *ran, struct fx_err *err)
{
    const char *name = m->name ? m->name : "";
    struct fx_err e;
    fx_err_clear(&e);
    *ran = 0;
    int rc = s->vt->begin(s);
    if (rc < 0)
        return fx_err_set(err, rc, "migration %s v%d (%s): cannot begin a transaction: %s",
                          component, m->version, name, s->vt->errmsg(s));
    /*
     * SQLite's begin already holds the database write lock. PostgreSQL
     * locks rows, not the database: serialize migrators on the table.
     */
    if (strcmp(s->vt->dialect(s), "postgresql") == 0) {
        rc = s->vt->exec(s, "LOCK TABLE fx_migrations IN SHARE ROW EXCLUSIVE MODE", &e);
        if (rc < 0) {
            fx_err_set(err, rc, "migration %s v%d (%s): cannot lock fx_migrations: %s", component,
                       m->version, name, e.reason);
            goto fail;
        }
    }
    int done = 0;
    rc = is_recorded(s, component, m->version, &done, &e);
    if (rc < 0) {
        fx_err_set(err, rc, "migration %s v%d (%s): %s", component, m->version, name, e.reason);
        goto fail;
    }
    if (done) /* another process applied it since we looked */
        return s->vt->rollback(s);
    rc = s->vt->exec(s, sql, &e);
    if (rc < 0) {
        fx_err_set(err, rc, "migration %s v%d (%s) failed: %s", component, m->version, name,
                   e.reason);
        goto fail;
    }
    rc = record(s, component, m);
    if (rc < 0) {
        fx_err_set(err, rc, "migration %s v%d (%s): cannot record it: %s", component, m->version,
                   name, s->vt->errmsg(s));
        goto fail;
    }
    rc = s->vt->commit(s);
    if (rc < 0)
        return fx_err_set(err, rc, "migration %s v%d (%s): commit failed: %s", component,
                          m->version, name, s->vt->errmsg(s));
    *ran = 1;
    fx_log_info("store", "migration %s v%d (%s) applied", component, m->version, name);
    return 0;
fail:
    s->vt->rollback(s);
    return rc;
}

int fx_store_migrate(struct fx_store *s, const char *component, const struct fx_migration *m,
                     size_t n, int *applied, struct fx_err *err)
{
    if (applied)
        *applied = 0;
    if (!s || !component || !*component || (n && !m))
        return fx_err_set(err, FX_EINVAL, "migrations: need a store, a component and migrations");
    /* Check the whole list before touching the database. */
    const char *dialect = s->vt->dialect(s);
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= 0 || (i > 0 && m[i].version <= m[i - 1].version))
            return fx_err_set(err, FX_EINVAL,
                              "migrations of %s: version %d at position %zu must be positive "
                              "and above the one before (%d)",
                              component, m[i].version, i, i > 0 ? m[i - 1].version : 0);
        if (!migration_sql(&m[i], dialect))
            return fx_err_set(err, FX_EINVAL, "migration %s v%d (%s) has no SQL for %s", component,
                              m[i].version, m[i].name ? m[i].name : "", dialect);
    }
    int rc = ensure_table(s, err);
    if (rc < 0)
        return rc;
    int current = 0;
    rc = recorded_max(s, component, &current, err);
    if (rc < 0)
        return rc;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= current) {
            /* A hole below the recorded version would be skipped for good. */
            int done = 0;
            rc = is_recorded(s, component, m[i].version, &done, err);
            if (rc < 0)
                return rc;
            if (!done)
                return fx_err_set(err, FX_ESTORE,
                                  "migration %s v%d (%s) is not applied but v%d is: new "
                                  "migrations must come after the last applied one",
                                  component, m[i].version, m[i].name ? m[i].name : "", current);
            continue;
        }
        int ran = 0;
        rc = apply_one(s, component, &m[i], migration_sql(&m[i], dialect), &ran, err);
        if (rc < 0)
            break;
        count += ran;
    }
    if (applied)
        *applied = count;
    return rc < 0 ? rc : 0;
}

int fx_store_schema_version(struct fx_store *s, const char *component)
{
    if (!s || !component)
        return FX_EINVAL;
    int rc = ensure_table(s, NULL);
    if (rc < 0)
        return rc;
    int v = 0;
    rc = recorded_max(s, component, &v, NULL);
    return rc < 0 ? rc : v;
}
