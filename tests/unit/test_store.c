/* SPDX-License-Identifier: MIT */
/*
 * Store conformance suite, written against include/fluxo/store.h only and
 * run once per backend URL: "sqlite:<fresh tmpdir>" always, and the URL in
 * FLUXO_TEST_PG_URL when that is set (otherwise that group is not registered
 * at all). Every backend must pass the same "conformance" group; a second
 * group covers what only exists on SQLite (directories, :memory:, lock waits).
 *
 * The copy cases (bulk load) run on every backend too: round trip of every
 * value type and of text COPY must escape, wrong use, engine errors in the
 * data (and the transaction they leave to roll back), abort, 100 000 rows.
 *
 * On a shared server the suite owns the tables named st_* and the
 * fx_migrations rows of components named st_*: it drops them before each
 * test. Child processes never call cmocka: they report through exit codes.
 */
#include "fluxo/error.h"
#include "fluxo/mem.h"
#include "fluxo/store.h"
#include "fluxo/util.h"

#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DBNAME "conformance"

struct backend {
    const char *dialect; /* expected fx_store_dialect */
    const char *url;     /* NULL: sqlite on a fresh temporary directory per test */
};

struct fixture {
    const struct backend *be;
    char *tmpdir;
    char url[4200];
    struct fx_store *s;
};

/* Dropped in this order before each test (children before parents). */
static const char *const owned_tables[] = {
    "st_child",   "st_defer", "st_uniq",     "st_types", "st_cache", "st_tx",   "st_kv",
    "st_changes", "st_m1",    "st_m2",       "st_f1",    "st_f2",    "st_f3",   "st_d",
    "st_o",       "st_two",   "st_race_log", "st_bulk",  "st_busy",  "st_copy",
};

/* ---- helpers -------------------------------------------------------------- */

static struct fx_store *open_ok(const char *url)
{
    struct fx_store *s = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_open(url, DBNAME, &s, &e);
    if (rc != 0)
        print_error("open failed: %s: %s\n", fx_errname(rc), e.reason);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void exec_ok(struct fx_store *s, const char *sql)
{
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_exec(s, sql, &e);
    if (rc != 0)
        print_error("exec failed: %s: %s\nSQL: %s\n", fx_errname(rc), e.reason, sql);
    assert_int_equal(rc, 0);
}

static struct fx_stmt *prep_ok(struct fx_store *s, const char *sql)
{
    struct fx_stmt *st = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_prepare(s, sql, &st, &e);
    if (rc != 0)
        print_error("prepare failed: %s: %s\nSQL: %s\n", fx_errname(rc), e.reason, sql);
    assert_int_equal(rc, 0);
    assert_non_null(st);
    return st;
}

/* First column of the single row of sql (a count, a max...). */
static int64_t scalar(struct fx_store *s, const char *sql)
{
    struct fx_stmt *st = prep_ok(s, sql);
    assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
    int64_t v = fx_stmt_int(st, 0);
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
    return v;
}

static int is_sqlite(struct fx_store *s)
{
    return strcmp(fx_store_dialect(s), "sqlite") == 0;
}

/* Case-insensitive substring test, for engine messages. */
static int contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && (hay[i] | 0x20) == (needle[i] | 0x20))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!contains(hay, needle))
        print_error("expected \"%s\" in \"%s\"\n", needle, hay);
    assert_true(contains(hay, needle));
}

static int setup(void **state)
{
    const struct backend *be = *state;
    struct fixture *f = calloc(1, sizeof(*f));
    f->be = be;
    if (be->url) {
        snprintf(f->url, sizeof(f->url), "%s", be->url);
    } else {
        f->tmpdir = tu_tmpdir();
        if (!f->tmpdir)
            return -1;
        snprintf(f->url, sizeof(f->url), "sqlite:%s", f->tmpdir);
    }
    struct fx_err e;
    fx_err_clear(&e);
    if (fx_store_open(f->url, DBNAME, &f->s, &e) != 0) {
        print_error("setup: cannot open the store: %s\n", e.reason);
        return -1;
    }
    /* Leftovers of an earlier run on a shared server. */
    for (size_t i = 0; i < sizeof(owned_tables) / sizeof(owned_tables[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", owned_tables[i]);
        if (fx_store_exec(f->s, sql, &e) != 0)
            return -1;
    }
    if (fx_store_schema_version(f->s, "st_probe") < 0 ||
        fx_store_exec(f->s, "DELETE FROM fx_migrations WHERE substr(component, 1, 3) = 'st_'",
                      &e) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fx_store_close(f->s);
    if (f->tmpdir) {
        tu_rmrf(f->tmpdir);
        free(f->tmpdir);
    }
    free(f);
    return 0;
}

/* ---- conformance: every backend ------------------------------------------ */

static void t_open_close(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(fx_store_dialect(f->s), f->be->dialect);
    /* A second connection to the same database, closed right away. */
    struct fx_store *s2 = open_ok(f->url);
    assert_string_equal(fx_store_dialect(s2), f->be->dialect);
    fx_store_close(s2);
    fx_store_close(NULL);

    struct fx_store *s = (struct fx_store *)1;
    struct fx_err e;
    fx_err_clear(&e);
    assert_int_equal(fx_store_open(NULL, DBNAME, &s, &e), FX_EINVAL);
    assert_null(s);
    assert_int_equal(fx_store_open(f->url, NULL, &s, &e), FX_EINVAL);
    assert_int_equal(fx_store_open(f->url, "../escape", &s, &e), FX_EINVAL);
    assert_contains(e.reason, "name");
    assert_int_equal(fx_store_open(f->url, "", &s, &e), FX_EINVAL);
    assert_int_equal(fx_store_open("nosuchdb://user:secret@host/x", DBNAME, &s, &e), FX_ENOTSUP);
    assert_contains(e.reason, "nosuchdb");
    assert_false(contains(e.reason, "secret")); /* never echo credentials */
    assert_int_equal(fx_store_open("no-scheme-here", DBNAME, &s, &e), FX_EINVAL);
    assert_null(s);
}

static void t_exec_ddl(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_types (k INTEGER NOT NULL, i BIGINT, d DOUBLE PRECISION,"
                  " s TEXT);"
                  "INSERT INTO st_types (k, i) VALUES (1, 10);"
                  "INSERT INTO st_types (k, i) VALUES (2, 20)");
    assert_int_equal(scalar(f->s, "SELECT SUM(i) FROM st_types"), 30);

    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_exec(f->s, "CREATE TABLEX st_cache (x INTEGER)", &e);
    assert_int_equal(rc, FX_ESTORE);
    assert_int_equal(e.code, FX_ESTORE);
    assert_contains(e.reason, "syntax");
    assert_contains(fx_store_errmsg(f->s), "syntax");

    fx_err_clear(&e);
    assert_int_equal(fx_store_exec(f->s, "SELECT * FROM st_nosuch_table", &e), FX_ESTORE);
    assert_contains(e.reason, "st_nosuch_table");
    assert_int_equal(fx_store_exec(NULL, "SELECT 1", &e), FX_EINVAL);
    assert_int_equal(fx_store_exec(f->s, NULL, &e), FX_EINVAL);
}

static void t_types(void **state)
{
    struct fixture *f = *state;
    static const char utf8[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac "
                               "\xf0\x9f\x98\x80";
    exec_ok(f->s, "CREATE TABLE st_types (k INTEGER NOT NULL, i BIGINT, d DOUBLE PRECISION,"
                  " s TEXT)");
    struct fx_stmt *ins = prep_ok(f->s, "INSERT INTO st_types (k, i, d, s) VALUES (?, ?, ?, ?)");

    assert_int_equal(fx_stmt_bind_int(ins, 1, 1), 0);
    assert_int_equal(fx_stmt_bind_int(ins, 2, INT64_MAX), 0);
    assert_int_equal(fx_stmt_bind_double(ins, 3, 3.25), 0);
    assert_int_equal(fx_stmt_bind_text(ins, 4, utf8, strlen(utf8)), 0);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);

    assert_int_equal(fx_stmt_bind_int(ins, 1, 2), 0);
    assert_int_equal(fx_stmt_bind_int(ins, 2, INT64_MIN), 0);
    assert_int_equal(fx_stmt_bind_double(ins, 3, -1e300), 0);
    assert_int_equal(fx_stmt_bind_text(ins, 4, "", 0), 0);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);

    /* Explicit NULLs, and the parameter left unbound reads as NULL too. */
    assert_int_equal(fx_stmt_bind_int(ins, 1, 3), 0);
    assert_int_equal(fx_stmt_bind_null(ins, 2), 0);
    assert_int_equal(fx_stmt_bind_null(ins, 3), 0);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);

    /* len is honoured: a prefix of a longer buffer; the copy outlives it. */
    char buf[16];
    strcpy(buf, "abcdef");
    assert_int_equal(fx_stmt_bind_int(ins, 1, 4), 0);
    assert_int_equal(fx_stmt_bind_int(ins, 2, 0), 0);
    assert_int_equal(fx_stmt_bind_double(ins, 3, -0.5), 0);
    assert_int_equal(fx_stmt_bind_text(ins, 4, buf, 3), 0);
    memset(buf, 'X', sizeof(buf) - 1);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);

    struct fx_stmt *q = prep_ok(f->s, "SELECT k, i, d, s FROM st_types ORDER BY k");
    size_t len = 99;
    const char *t;
    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_int_equal(fx_stmt_ncols(q), 4);
    assert_int_equal(fx_stmt_int(q, 0), 1);
    assert_true(fx_stmt_int(q, 1) == INT64_MAX);
    assert_true(fx_stmt_double(q, 2) == 3.25);
    t = fx_stmt_text(q, 3, &len);
    assert_non_null(t);
    assert_int_equal(len, strlen(utf8));
    assert_memory_equal(t, utf8, len);
    assert_int_equal(t[len], '\0');
    assert_false(fx_stmt_is_null(q, 3));

    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(q, 0), 2);
    assert_true(fx_stmt_int(q, 1) == INT64_MIN);
    assert_true(fx_stmt_double(q, 2) == -1e300);
    len = 99;
    t = fx_stmt_text(q, 3, &len);
    assert_non_null(t); /* empty text is not NULL */
    assert_int_equal(len, 0);
    assert_string_equal(t, "");
    assert_false(fx_stmt_is_null(q, 3));

    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(q, 0), 3);
    for (int c = 1; c <= 3; c++)
        assert_true(fx_stmt_is_null(q, c));
    assert_false(fx_stmt_is_null(q, 0));
    assert_int_equal(fx_stmt_int(q, 1), 0);
    assert_true(fx_stmt_double(q, 2) == 0.0);
    len = 99;
    assert_null(fx_stmt_text(q, 3, &len));
    assert_int_equal(len, 0);

    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(q, 0), 4);
    assert_true(fx_stmt_double(q, 2) == -0.5);
    t = fx_stmt_text(q, 3, &len);
    assert_int_equal(len, 3);
    assert_string_equal(t, "abc");
    assert_non_null(fx_stmt_text(q, 3, NULL)); /* len is optional */

    assert_int_equal(fx_stmt_step(q), FX_STORE_DONE);

    /* Bad parameter index. */
    assert_true(fx_stmt_bind_int(ins, 9, 1) < 0);
    assert_true(fx_stmt_bind_int(ins, 0, 1) < 0);
    fx_stmt_reset(ins);
    /* NULL handles. */
    assert_int_equal(fx_stmt_bind_int(NULL, 1, 1), FX_EINVAL);
    assert_int_equal(fx_stmt_step(NULL), FX_EINVAL);
    assert_null(fx_stmt_text(NULL, 0, &len));
    fx_stmt_reset(NULL);
}

static void t_cache_reset(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_cache (k INTEGER NOT NULL);"
                  "INSERT INTO st_cache (k) VALUES (1), (2), (3)");
    const char *sql = "SELECT k FROM st_cache ORDER BY k";
    struct fx_stmt *a = prep_ok(f->s, sql);
    assert_int_equal(fx_stmt_step(a), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(a, 0), 1);
    assert_int_equal(fx_stmt_step(a), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(a, 0), 2);

    /* Same text (from another buffer): the cached statement, restarted. */
    char copy[64];
    snprintf(copy, sizeof(copy), "%s", sql);
    struct fx_stmt *b = prep_ok(f->s, copy);
    assert_ptr_equal(a, b);
    assert_int_equal(fx_stmt_step(b), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(b, 0), 1);

    /* Explicit reset restarts too. */
    fx_stmt_reset(b);
    assert_int_equal(fx_stmt_step(b), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(b, 0), 1);
    fx_stmt_reset(b);

    /* Bindings are cleared: the unbound parameter is NULL and matches nothing. */
    struct fx_stmt *p = prep_ok(f->s, "SELECT k FROM st_cache WHERE k = ?");
    assert_ptr_not_equal(p, a);
    assert_int_equal(fx_stmt_bind_int(p, 1, 2), 0);
    assert_int_equal(fx_stmt_step(p), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(p, 0), 2);
    p = prep_ok(f->s, "SELECT k FROM st_cache WHERE k = ?");
    assert_int_equal(fx_stmt_step(p), FX_STORE_DONE);

    /* Many distinct statements stay distinct and usable. */
    for (int i = 0; i < 300; i++) {
        char q[96];
        snprintf(q, sizeof(q), "SELECT k + %d FROM st_cache WHERE k = 1", i);
        struct fx_stmt *st = prep_ok(f->s, q);
        assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
        assert_int_equal(fx_stmt_int(st, 0), 1 + i);
        fx_stmt_reset(st);
    }
    assert_ptr_equal(prep_ok(f->s, sql), a);

    /* Preparing bad SQL fails with the engine's words and caches nothing. */
    struct fx_stmt *bad = (struct fx_stmt *)1;
    struct fx_err e;
    fx_err_clear(&e);
    assert_int_equal(fx_store_prepare(f->s, "SELEC k FROM st_cache", &bad, &e), FX_ESTORE);
    assert_null(bad);
    assert_contains(e.reason, "syntax");
    assert_contains(fx_store_errmsg(f->s), "syntax");
    fx_err_clear(&e);
    assert_true(fx_store_prepare(f->s, "SELECT x FROM st_nosuch_table", &bad, &e) < 0);
    assert_contains(e.reason, "st_nosuch_table");
    assert_true(fx_store_prepare(f->s, "SELECT 1; SELECT 2", &bad, &e) < 0);
    assert_int_equal(fx_store_prepare(f->s, NULL, &bad, &e), FX_EINVAL);
}

static int64_t count_tx(struct fx_store *s)
{
    return scalar(s, "SELECT COUNT(*) FROM st_tx");
}

static void t_transactions(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_tx (k INTEGER NOT NULL)");
    struct fx_stmt *ins = prep_ok(f->s, "INSERT INTO st_tx (k) VALUES (?)");

    assert_int_equal(fx_store_rollback(f->s), 0); /* none open: no-op */

    assert_int_equal(fx_store_begin(f->s), 0);
    for (int k = 1; k <= 2; k++) {
        fx_stmt_bind_int(ins, 1, k);
        assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
        fx_stmt_reset(ins);
    }
    assert_int_equal(count_tx(f->s), 2); /* own writes are visible */
    assert_int_equal(fx_store_commit(f->s), 0);
    assert_int_equal(count_tx(f->s), 2);

    assert_int_equal(fx_store_begin(f->s), 0);
    fx_stmt_bind_int(ins, 1, 99);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);
    assert_int_equal(count_tx(f->s), 3);
    assert_int_equal(fx_store_rollback(f->s), 0);
    assert_int_equal(count_tx(f->s), 2);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_tx WHERE k = 99"), 0);
    assert_int_equal(fx_store_rollback(f->s), 0);

    /* Closing with a transaction open discards it. */
    struct fx_store *s2 = open_ok(f->url);
    assert_int_equal(fx_store_begin(s2), 0);
    exec_ok(s2, "INSERT INTO st_tx (k) VALUES (77)");
    fx_store_close(s2);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_tx WHERE k = 77"), 0);

    assert_int_equal(fx_store_begin(NULL), FX_EINVAL);
    assert_int_equal(fx_store_commit(NULL), FX_EINVAL);
    assert_int_equal(fx_store_rollback(NULL), FX_EINVAL);
}

static void t_constraints(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_uniq (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE,"
                  " n INTEGER CHECK (n >= 0))");
    exec_ok(f->s, "CREATE TABLE st_child (id INTEGER PRIMARY KEY,"
                  " parent INTEGER NOT NULL REFERENCES st_uniq (id))");
    struct fx_stmt *ins = prep_ok(f->s, "INSERT INTO st_uniq (id, k, n) VALUES (?, ?, ?)");

    assert_int_equal(fx_store_begin(f->s), 0);
    fx_stmt_bind_int(ins, 1, 1);
    fx_stmt_bind_text(ins, 2, "a", 1);
    fx_stmt_bind_int(ins, 3, 1);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);
    fx_stmt_bind_int(ins, 1, 2);
    fx_stmt_bind_text(ins, 2, "a", 1);
    fx_stmt_bind_int(ins, 3, 1);
    assert_int_equal(fx_stmt_step(ins), FX_ECONSTRAINT);
    assert_contains(fx_store_errmsg(f->s), "unique");
    fx_stmt_reset(ins);
    assert_int_equal(fx_store_rollback(f->s), 0);
    /* The message outlives the rollback that follows the failure. */
    assert_contains(fx_store_errmsg(f->s), "unique");

    /* The connection and the statement are usable again. */
    assert_int_equal(fx_store_begin(f->s), 0);
    fx_stmt_bind_int(ins, 1, 2);
    fx_stmt_bind_text(ins, 2, "b", 1);
    fx_stmt_bind_int(ins, 3, 5);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);
    assert_int_equal(fx_store_commit(f->s), 0);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_uniq"), 1);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_uniq WHERE k = 'a'"), 0);

    /* Outside a transaction, and without a reset: the failed statement is reusable. */
    fx_stmt_bind_int(ins, 1, 3);
    fx_stmt_bind_text(ins, 2, "b", 1);
    fx_stmt_bind_int(ins, 3, 1);
    assert_int_equal(fx_stmt_step(ins), FX_ECONSTRAINT);
    fx_stmt_bind_int(ins, 1, 3);
    fx_stmt_bind_text(ins, 2, "c", 1);
    fx_stmt_bind_int(ins, 3, 1);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    fx_stmt_reset(ins);

    /* NOT NULL, CHECK, primary key and foreign key violations. */
    fx_stmt_bind_int(ins, 1, 4);
    fx_stmt_bind_int(ins, 3, 1);
    assert_int_equal(fx_stmt_step(ins), FX_ECONSTRAINT);
    fx_stmt_reset(ins);
    fx_stmt_bind_int(ins, 1, 4);
    fx_stmt_bind_text(ins, 2, "d", 1);
    fx_stmt_bind_int(ins, 3, -1);
    assert_int_equal(fx_stmt_step(ins), FX_ECONSTRAINT);
    fx_stmt_reset(ins);
    fx_stmt_bind_int(ins, 1, 2);
    fx_stmt_bind_text(ins, 2, "e", 1);
    assert_int_equal(fx_stmt_step(ins), FX_ECONSTRAINT);
    fx_stmt_reset(ins);

    struct fx_stmt *child = prep_ok(f->s, "INSERT INTO st_child (id, parent) VALUES (?, ?)");
    fx_stmt_bind_int(child, 1, 1);
    fx_stmt_bind_int(child, 2, 2);
    assert_int_equal(fx_stmt_step(child), FX_STORE_DONE);
    fx_stmt_reset(child);
    fx_stmt_bind_int(child, 1, 2);
    fx_stmt_bind_int(child, 2, 999);
    assert_int_equal(fx_stmt_step(child), FX_ECONSTRAINT);
    fx_stmt_reset(child);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_child"), 1);
}

/* A failing COMMIT (deferred foreign key) ends the transaction: nothing stays locked. */
static void t_commit_failure(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_uniq (id INTEGER PRIMARY KEY, k TEXT)");
    exec_ok(f->s, "CREATE TABLE st_defer (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL"
                  " REFERENCES st_uniq (id) DEFERRABLE INITIALLY DEFERRED)");
    assert_int_equal(fx_store_begin(f->s), 0);
    exec_ok(f->s, "INSERT INTO st_defer (id, parent) VALUES (1, 42)"); /* checked at commit */
    assert_int_equal(fx_store_commit(f->s), FX_ECONSTRAINT);
    assert_contains(fx_store_errmsg(f->s), "foreign key");

    /* Before any rollback: another connection can write at once. */
    struct fx_store *s2 = open_ok(f->url);
    assert_int_equal(scalar(s2, "SELECT COUNT(*) FROM st_defer"), 0);
    assert_int_equal(fx_store_begin(s2), 0);
    exec_ok(s2, "INSERT INTO st_uniq (id, k) VALUES (42, 'p')");
    assert_int_equal(fx_store_commit(s2), 0);
    fx_store_close(s2);

    /* The usual rollback after a failure is a harmless no-op; the message stays. */
    assert_int_equal(fx_store_rollback(f->s), 0);
    assert_contains(fx_store_errmsg(f->s), "foreign key");
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_defer"), 0);
    assert_int_equal(fx_store_begin(f->s), 0);
    exec_ok(f->s, "INSERT INTO st_defer (id, parent) VALUES (1, 42)");
    assert_int_equal(fx_store_commit(f->s), 0);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_defer"), 1);
}

static void t_upsert_returning(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, is_sqlite(f->s) ? "CREATE TABLE st_kv (id INTEGER PRIMARY KEY,"
                                    " k TEXT NOT NULL UNIQUE, v BIGINT NOT NULL)"
                                  : "CREATE TABLE st_kv (id BIGSERIAL PRIMARY KEY,"
                                    " k TEXT NOT NULL UNIQUE, v BIGINT NOT NULL)");
    const char *sql = "INSERT INTO st_kv (k, v) VALUES (?, ?)"
                      " ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING id";
    struct {
        const char *k;
        int64_t v;
    } rows[] = {{"alpha", 1}, {"beta", 2}, {"alpha", 3}};
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        struct fx_stmt *st = prep_ok(f->s, sql);
        fx_stmt_bind_text(st, 1, rows[i].k, strlen(rows[i].k));
        fx_stmt_bind_int(st, 2, rows[i].v);
        assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
        assert_int_equal(fx_stmt_ncols(st), 1);
        ids[i] = fx_stmt_int(st, 0);
        assert_true(ids[i] > 0);
        assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
        assert_int_equal(fx_store_changes(f->s), 1);
    }
    assert_true(ids[0] != ids[1]);
    assert_true(ids[2] == ids[0]); /* updated in place, same id */
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_kv"), 2);
    assert_int_equal(scalar(f->s, "SELECT v FROM st_kv WHERE k = 'alpha'"), 3);

    /* DO NOTHING returns no row on conflict. */
    struct fx_stmt *st =
        prep_ok(f->s, "INSERT INTO st_kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"
                      " RETURNING id");
    fx_stmt_bind_text(st, 1, "beta", 4);
    fx_stmt_bind_int(st, 2, 9);
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
    assert_int_equal(scalar(f->s, "SELECT v FROM st_kv WHERE k = 'beta'"), 2);
}

static void t_changes(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_changes (k INTEGER NOT NULL)");
    struct fx_stmt *st = prep_ok(f->s, "INSERT INTO st_changes (k) VALUES (?), (?), (?)");
    for (int i = 1; i <= 3; i++)
        fx_stmt_bind_int(st, i, i);
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
    assert_int_equal(fx_store_changes(f->s), 3);
    st = prep_ok(f->s, "UPDATE st_changes SET k = k + 10 WHERE k >= ?");
    fx_stmt_bind_int(st, 1, 2);
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
    assert_int_equal(fx_store_changes(f->s), 2);
    st = prep_ok(f->s, "UPDATE st_changes SET k = 0 WHERE k > 1000");
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
    assert_int_equal(fx_store_changes(f->s), 0);
    st = prep_ok(f->s, "DELETE FROM st_changes");
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
    assert_int_equal(fx_store_changes(f->s), 3);
    assert_int_equal(fx_store_changes(NULL), 0);
}

static const struct fx_migration mig_basic[] = {
    {.version = 1, .name = "create m1", .sql = "CREATE TABLE st_m1 (x INTEGER NOT NULL)"},
    {.version = 2,
     .name = "seed m1, create m2",
     .sql = "INSERT INTO st_m1 (x) VALUES (2); CREATE TABLE st_m2 (y TEXT)"},
    {.version = 3, .name = "more m1", .sql = "INSERT INTO st_m1 (x) VALUES (3)"},
};

static void t_migrations_reopen(void **state)
{
    struct fixture *f = *state;
    struct fx_err e;
    fx_err_clear(&e);
    int applied = -1;
    assert_int_equal(fx_store_schema_version(f->s, "st_basic"), 0);
    assert_int_equal(fx_store_migrate(f->s, "st_basic", mig_basic, 2, &applied, &e), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(fx_store_schema_version(f->s, "st_basic"), 2);
    assert_int_equal(fx_store_schema_version(f->s, "st_other"), 0);

    /* Reopen, add the third: only it runs (v1 would fail, v2 would add a row). */
    fx_store_close(f->s);
    f->s = open_ok(f->url);
    assert_int_equal(fx_store_schema_version(f->s, "st_basic"), 2);
    assert_int_equal(fx_store_migrate(f->s, "st_basic", mig_basic, 3, &applied, &e), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(fx_store_schema_version(f->s, "st_basic"), 3);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_m1"), 2);
    assert_int_equal(scalar(f->s, "SELECT SUM(x) FROM st_m1"), 5);

    /* Nothing pending: nothing runs; applied may be NULL. */
    assert_int_equal(fx_store_migrate(f->s, "st_basic", mig_basic, 3, &applied, &e), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(fx_store_migrate(f->s, "st_basic", mig_basic, 3, NULL, &e), 0);
    assert_int_equal(fx_store_migrate(f->s, "st_basic", NULL, 0, &applied, &e), 0);

    /* The bookkeeping rows. */
    struct fx_stmt *st = prep_ok(f->s, "SELECT version, name, applied_at FROM fx_migrations"
                                       " WHERE component = ? ORDER BY version");
    fx_stmt_bind_text(st, 1, "st_basic", 8);
    for (int v = 1; v <= 3; v++) {
        assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
        assert_int_equal(fx_stmt_int(st, 0), v);
        assert_string_equal(fx_stmt_text(st, 1, NULL), mig_basic[v - 1].name);
        size_t n = 0;
        const char *at = fx_stmt_text(st, 2, &n);
        assert_non_null(at);
        assert_true(n >= 20); /* ISO 8601 UTC */
        assert_int_equal(at[4], '-');
    }
    assert_int_equal(fx_stmt_step(st), FX_STORE_DONE);
}

static void t_migration_failure(void **state)
{
    struct fixture *f = *state;
    struct fx_migration m[] = {
        {.version = 1, .name = "first", .sql = "CREATE TABLE st_f1 (x INTEGER)"},
        {.version = 2,
         .name = "broken step",
         .sql = "CREATE TABLE st_f2 (x INTEGER); INSERT INTO st_f_nosuch (x) VALUES (1)"},
        {.version = 3, .name = "third", .sql = "CREATE TABLE st_f3 (x INTEGER)"},
    };
    struct fx_err e;
    fx_err_clear(&e);
    int applied = -1;
    int rc = fx_store_migrate(f->s, "st_fail", m, 3, &applied, &e);
    assert_int_equal(rc, FX_ESTORE);
    assert_int_equal(e.code, FX_ESTORE);
    assert_int_equal(applied, 1);
    assert_contains(e.reason, "st_fail");
    assert_contains(e.reason, "v2");
    assert_contains(e.reason, "broken step");
    assert_contains(e.reason, "st_f_nosuch"); /* the engine's message */
    assert_int_equal(fx_store_schema_version(f->s, "st_fail"), 1);

    /* v2 ran in one transaction: its first statement is gone too; v3 never ran. */
    struct fx_stmt *st = NULL;
    assert_true(fx_store_prepare(f->s, "SELECT x FROM st_f2", &st, NULL) < 0);
    assert_true(fx_store_prepare(f->s, "SELECT x FROM st_f3", &st, NULL) < 0);
    prep_ok(f->s, "SELECT x FROM st_f1");

    /* Fixed, it resumes at v2. */
    m[1].sql = "CREATE TABLE st_f2 (x INTEGER)";
    assert_int_equal(fx_store_migrate(f->s, "st_fail", m, 3, &applied, &e), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(fx_store_schema_version(f->s, "st_fail"), 3);
}

static void t_migration_validation(void **state)
{
    struct fixture *f = *state;
    struct fx_err e;
    fx_err_clear(&e);
    int applied = -1;
    struct fx_migration unordered[] = {
        {.version = 1, .name = "one", .sql = "CREATE TABLE st_o (x INTEGER)"},
        {.version = 3, .name = "three", .sql = "SELECT 1"},
        {.version = 2, .name = "two", .sql = "SELECT 1"},
    };
    assert_int_equal(fx_store_migrate(f->s, "st_order", unordered, 3, &applied, &e), FX_EINVAL);
    assert_contains(e.reason, "st_order");
    assert_int_equal(applied, 0);
    /* Rejected before anything ran. */
    assert_int_equal(fx_store_schema_version(f->s, "st_order"), 0);
    struct fx_stmt *st = NULL;
    assert_true(fx_store_prepare(f->s, "SELECT x FROM st_o", &st, NULL) < 0);

    unordered[1].version = 1; /* duplicate */
    assert_int_equal(fx_store_migrate(f->s, "st_order", unordered, 2, NULL, &e), FX_EINVAL);
    unordered[0].version = 0; /* not positive */
    assert_int_equal(fx_store_migrate(f->s, "st_order", unordered, 1, NULL, &e), FX_EINVAL);
    assert_int_equal(fx_store_migrate(f->s, NULL, unordered, 1, NULL, &e), FX_EINVAL);
    assert_int_equal(fx_store_migrate(f->s, "", unordered, 1, NULL, &e), FX_EINVAL);
    assert_int_equal(fx_store_migrate(NULL, "st_order", unordered, 1, NULL, &e), FX_EINVAL);

    /* Per-dialect SQL; missing SQL for this dialect is rejected. */
    struct fx_migration nosql[] = {{.version = 1, .name = "nothing"}};
    assert_int_equal(fx_store_migrate(f->s, "st_dialect", nosql, 1, NULL, &e), FX_EINVAL);
    struct fx_migration dia[] = {
        {.version = 1, .name = "table", .sql = "CREATE TABLE st_d (which TEXT)"},
        {.version = 2,
         .name = "per dialect",
         .sql_sqlite = "INSERT INTO st_d (which) VALUES ('sqlite')",
         .sql_pg = "INSERT INTO st_d (which) VALUES ('postgresql')"},
        {.version = 3,
         .name = "override",
         .sql = "INSERT INTO st_d (which) VALUES ('portable')",
         .sql_sqlite = "INSERT INTO st_d (which) VALUES ('sqlite')",
         .sql_pg = "INSERT INTO st_d (which) VALUES ('postgresql')"},
    };
    assert_int_equal(fx_store_migrate(f->s, "st_dialect", dia, 3, &applied, &e), 0);
    assert_int_equal(applied, 3);
    st = prep_ok(f->s, "SELECT COUNT(*) FROM st_d WHERE which = ?");
    fx_stmt_bind_text(st, 1, fx_store_dialect(f->s), strlen(fx_store_dialect(f->s)));
    assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(st, 0), 2);
    fx_stmt_reset(st);

    /* A version inserted below the applied ones would be skipped for good: rejected. */
    struct fx_migration gap[] = {
        {.version = 1, .name = "one", .sql = "SELECT 1"},
        {.version = 3, .name = "three", .sql = "SELECT 1"},
    };
    assert_int_equal(fx_store_migrate(f->s, "st_gap", gap, 2, &applied, &e), 0);
    struct fx_migration gap2[] = {
        {.version = 1, .name = "one", .sql = "SELECT 1"},
        {.version = 2, .name = "late two", .sql = "SELECT 1"},
        {.version = 3, .name = "three", .sql = "SELECT 1"},
    };
    assert_true(fx_store_migrate(f->s, "st_gap", gap2, 3, &applied, &e) < 0);
    assert_contains(e.reason, "v2");
    assert_contains(e.reason, "late two");
    assert_int_equal(applied, 0);
}

static void t_two_connections(void **state)
{
    struct fixture *f = *state;
    struct fx_store *s2 = open_ok(f->url);
    exec_ok(f->s, "CREATE TABLE st_two (k INTEGER NOT NULL)");
    assert_int_equal(scalar(s2, "SELECT COUNT(*) FROM st_two"), 0);

    assert_int_equal(fx_store_begin(f->s), 0);
    exec_ok(f->s, "INSERT INTO st_two (k) VALUES (1)");
    assert_int_equal(scalar(s2, "SELECT COUNT(*) FROM st_two"), 0); /* not committed yet */
    assert_int_equal(fx_store_commit(f->s), 0);
    assert_int_equal(scalar(s2, "SELECT COUNT(*) FROM st_two"), 1);

    /* And the other way round, through a prepared statement. */
    struct fx_stmt *ins = prep_ok(s2, "INSERT INTO st_two (k) VALUES (?)");
    assert_int_equal(fx_store_begin(s2), 0);
    fx_stmt_bind_int(ins, 1, 2);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    assert_int_equal(fx_store_commit(s2), 0);
    assert_int_equal(scalar(f->s, "SELECT SUM(k) FROM st_two"), 3);
    fx_store_close(s2);
}

/* ---- several processes migrating one database ----------------------------- */

#define RACE_PROCS 4
#define RACE_ROUNDS 3
#define RACE_VERSIONS 4

/* Child side: no cmocka; exit code = migrations applied here, >= 100 on error. */
static int race_child(const char *url, int go_fd, const struct fx_migration *m, const char *comp)
{
    char c;
    while (read(go_fd, &c, 1) > 0) /* EOF: everybody starts at once */
        ;
    alarm(120); /* a hang fails the test instead of blocking it */
    struct fx_store *s = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    if (fx_store_open(url, DBNAME, &s, &e) != 0) {
        fprintf(stderr, "race child: open: %s\n", e.reason);
        return 100;
    }
    int applied = 0;
    int rc = fx_store_migrate(s, comp, m, RACE_VERSIONS, &applied, &e);
    fx_store_close(s);
    if (rc != 0) {
        fprintf(stderr, "race child: migrate: %s\n", e.reason);
        return 101;
    }
    return applied;
}

static void t_concurrent_migrate(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_race_log (r INTEGER NOT NULL, v INTEGER NOT NULL)");
    for (int round = 1; round <= RACE_ROUNDS; round++) {
        char comp[32], sqls[RACE_VERSIONS][128], names[RACE_VERSIONS][32];
        struct fx_migration m[RACE_VERSIONS];
        snprintf(comp, sizeof(comp), "st_race%d", round);
        for (int v = 1; v <= RACE_VERSIONS; v++) {
            snprintf(sqls[v - 1], sizeof(sqls[0]),
                     "INSERT INTO st_race_log (r, v) VALUES (%d, %d);"
                     "INSERT INTO st_race_log (r, v) SELECT r, -v FROM st_race_log"
                     " WHERE r = %d AND v = %d",
                     round, v, round, v);
            snprintf(names[v - 1], sizeof(names[0]), "step %d", v);
            m[v - 1] =
                (struct fx_migration){.version = v, .name = names[v - 1], .sql = sqls[v - 1]};
        }
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pids[RACE_PROCS];
        for (int i = 0; i < RACE_PROCS; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                close(pipefd[1]);
                _exit(race_child(f->url, pipefd[0], m, comp));
            }
        }
        close(pipefd[0]);
        close(pipefd[1]); /* go */
        int total = 0, failed = 0;
        for (int i = 0; i < RACE_PROCS; i++) {
            int status = 0;
            assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
            if (!WIFEXITED(status) || WEXITSTATUS(status) >= 100)
                failed++;
            else
                total += WEXITSTATUS(status);
        }
        assert_int_equal(failed, 0);
        assert_int_equal(total, RACE_VERSIONS);
        assert_int_equal(fx_store_schema_version(f->s, comp), RACE_VERSIONS);
        /* Each version's SQL ran exactly once: one row per (round, v) and its mirror. */
        struct fx_stmt *st = prep_ok(f->s, "SELECT COUNT(*), COUNT(DISTINCT v) FROM st_race_log"
                                           " WHERE r = ?");
        fx_stmt_bind_int(st, 1, round);
        assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
        assert_int_equal(fx_stmt_int(st, 0), 2 * RACE_VERSIONS);
        assert_int_equal(fx_stmt_int(st, 1), 2 * RACE_VERSIONS);
        fx_stmt_reset(st);
    }
}

/* Prints throughput only; no timing assertion. */
static void t_bulk_insert(void **state)
{
    struct fixture *f = *state;
    enum { N = 100000 };
    exec_ok(f->s, "CREATE TABLE st_bulk (a BIGINT, b TEXT, c DOUBLE PRECISION, d BIGINT, e TEXT)");
    int64_t t0 = fx_mono_ms();
    assert_int_equal(fx_store_begin(f->s), 0);
    struct fx_stmt *st =
        prep_ok(f->s, "INSERT INTO st_bulk (a, b, c, d, e) VALUES (?, ?, ?, ?, ?)");
    char b[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(b, sizeof(b), "name-%d", i);
        fx_stmt_bind_int(st, 1, i);
        fx_stmt_bind_text(st, 2, b, (size_t)n);
        fx_stmt_bind_double(st, 3, i * 0.5);
        fx_stmt_bind_int(st, 4, (int64_t)i * 7);
        fx_stmt_bind_text(st, 5, "constant text", 13);
        if (fx_stmt_step(st) != FX_STORE_DONE)
            fail_msg("bulk step %d: %s", i, fx_store_errmsg(f->s));
        fx_stmt_reset(st);
    }
    assert_int_equal(fx_store_commit(f->s), 0);
    int64_t ms = fx_mono_ms() - t0;
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_bulk"), N);
    print_message("    [%s] bulk insert: %d rows in %lld ms (%.0f rows/s)\n",
                  fx_store_dialect(f->s), N, (long long)ms, ms ? N * 1000.0 / (double)ms : 0.0);
}

/* ---- bulk load (copy) ------------------------------------------------------ */

static struct fx_copy *copy_ok(struct fx_store *s, const char *table, const char *const *cols,
                               size_t ncols)
{
    struct fx_copy *c = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_store_copy_begin(s, table, cols, ncols, &c, &e);
    if (rc != 0)
        print_error("copy begin failed: %s: %s\n", fx_errname(rc), e.reason);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

static int64_t copy_end_ok(struct fx_copy *c)
{
    int64_t rows = -1;
    struct fx_err e;
    fx_err_clear(&e);
    int rc = fx_copy_end(c, &rows, &e);
    if (rc != 0)
        print_error("copy end failed: %s: %s\n", fx_errname(rc), e.reason);
    assert_int_equal(rc, 0);
    return rows;
}

/* Text that COPY's text format must escape, or could mistake for markers. */
static const char *const copy_texts[] = {
    "plain",
    "",
    "tab\there",
    "line\nbreak",
    "cr\rlf\r\n",
    "back\\slash \\\\ \\t \\n",
    "\\N",
    "\\.",
    "\t\n\\",
    "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
    "quote ' and \" and , ; |",
};
#define NTEXTS (sizeof(copy_texts) / sizeof(copy_texts[0]))

static const int64_t copy_ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007};
#define NINTS (sizeof(copy_ints) / sizeof(copy_ints[0]))

/* Every value type round-trips, inside a transaction and on its own. */
static void t_copy_types(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_copy (k BIGINT NOT NULL, i BIGINT, s TEXT,"
                  " d TEXT DEFAULT 'dflt')");
    /* columns in another order than the table's, one left to its default */
    static const char *const cols[] = {"s", "k", "i"};
    size_t big_len = 3 * 256 * 1024 + 17; /* more than one write's worth */
    char *big = fx_malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = "ab\tc\\d\ne\xc3\xa9"[i % 10];
    if ((unsigned char)big[big_len - 1] == 0xc3) /* never end in half a character */
        big[big_len - 1] = 'z';

    assert_int_equal(fx_store_begin(f->s), 0);
    struct fx_copy *c = copy_ok(f->s, "st_copy", cols, 3);
    int64_t k = 0;
    for (size_t t = 0; t < NTEXTS; t++) {
        assert_int_equal(fx_copy_put_text(c, copy_texts[t], strlen(copy_texts[t])), 0);
        assert_int_equal(fx_copy_put_int(c, ++k), 0);
        assert_int_equal(fx_copy_put_int(c, copy_ints[t % NINTS]), 0);
        assert_int_equal(fx_copy_end_row(c), 0);
    }
    /* NULLs in every nullable column; NULL pointer with length 0 is empty text */
    assert_int_equal(fx_copy_put_null(c), 0);
    assert_int_equal(fx_copy_put_int(c, ++k), 0);
    assert_int_equal(fx_copy_put_null(c), 0);
    assert_int_equal(fx_copy_end_row(c), 0);
    assert_int_equal(fx_copy_put_text(c, NULL, 0), 0);
    assert_int_equal(fx_copy_put_int(c, ++k), 0);
    assert_int_equal(fx_copy_put_int(c, INT64_MIN), 0);
    assert_int_equal(fx_copy_end_row(c), 0);
    assert_int_equal(copy_end_ok(c), (int64_t)NTEXTS + 2);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), NTEXTS + 2); /* own writes */
    assert_int_equal(fx_store_commit(f->s), 0);

    /* Outside a transaction: the copy commits by itself. */
    c = copy_ok(f->s, "st_copy", cols, 3);
    assert_int_equal(fx_copy_put_text(c, big, big_len), 0);
    assert_int_equal(fx_copy_put_int(c, 100), 0);
    assert_int_equal(fx_copy_put_int(c, 7), 0);
    assert_int_equal(fx_copy_end_row(c), 0);
    assert_int_equal(copy_end_ok(c), 1);

    struct fx_stmt *q = prep_ok(f->s, "SELECT k, i, s, d FROM st_copy ORDER BY k");
    size_t len = 99;
    for (size_t t = 0; t < NTEXTS; t++) {
        assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
        assert_int_equal(fx_stmt_int(q, 0), (int64_t)t + 1);
        assert_true(fx_stmt_int(q, 1) == copy_ints[t % NINTS]);
        const char *s = fx_stmt_text(q, 2, &len);
        assert_non_null(s);
        if (len != strlen(copy_texts[t]) || memcmp(s, copy_texts[t], len) != 0)
            fail_msg("text %zu came back as \"%.*s\"", t, (int)len, s);
        assert_string_equal(fx_stmt_text(q, 3, NULL), "dflt");
    }
    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_true(fx_stmt_is_null(q, 1));
    assert_true(fx_stmt_is_null(q, 2)); /* NULL, not the text "\N" */
    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_true(fx_stmt_int(q, 1) == INT64_MIN);
    assert_false(fx_stmt_is_null(q, 2)); /* empty, not NULL */
    assert_non_null(fx_stmt_text(q, 2, &len));
    assert_int_equal(len, 0);
    assert_int_equal(fx_stmt_step(q), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(q, 0), 100);
    const char *s = fx_stmt_text(q, 2, &len);
    assert_int_equal(len, big_len);
    assert_memory_equal(s, big, big_len);
    assert_int_equal(fx_stmt_step(q), FX_STORE_DONE);
    free(big);
}

/* Wrong use fails at once, names what is wrong, and nothing is kept. */
static void t_copy_misuse(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_copy (k BIGINT NOT NULL, i BIGINT, s TEXT)");
    static const char *const cols[] = {"k", "s"};
    struct fx_copy *c = (struct fx_copy *)1;
    struct fx_err e;
    fx_err_clear(&e);
    assert_int_equal(fx_store_copy_begin(f->s, "st_copy; DROP TABLE x", cols, 2, &c, &e),
                     FX_EINVAL);
    assert_null(c);
    assert_contains(e.reason, "identifier");
    static const char *const bad_cols[] = {"k", "s)"};
    assert_int_equal(fx_store_copy_begin(f->s, "st_copy", bad_cols, 2, &c, &e), FX_EINVAL);
    assert_contains(e.reason, "column 2");
    assert_int_equal(fx_store_copy_begin(f->s, "st_copy", cols, 0, &c, &e), FX_EINVAL);
    assert_int_equal(fx_store_copy_begin(NULL, "st_copy", cols, 2, &c, &e), FX_EINVAL);
    /* the engine refuses unknown tables and columns, naming them */
    fx_err_clear(&e);
    assert_true(fx_store_copy_begin(f->s, "st_nosuch", cols, 2, &c, &e) < 0);
    assert_null(c);
    assert_contains(e.reason, "st_nosuch");
    static const char *const unknown_col[] = {"k", "nosuchcol"};
    fx_err_clear(&e);
    assert_true(fx_store_copy_begin(f->s, "st_copy", unknown_col, 2, &c, &e) < 0);
    assert_contains(e.reason, "nosuchcol");

    /* Too many fields in a row: that put fails, and so does everything after. */
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(fx_copy_put_int(c, 1), 0);
    assert_int_equal(fx_copy_put_text(c, "a", 1), 0);
    assert_int_equal(fx_copy_end_row(c), 0);
    assert_int_equal(fx_copy_put_int(c, 2), 0);
    assert_int_equal(fx_copy_put_text(c, "b", 1), 0);
    assert_int_equal(fx_copy_put_null(c), FX_EINVAL);
    assert_int_equal(fx_copy_end_row(c), FX_EINVAL);
    assert_int_equal(fx_copy_put_int(c, 3), FX_EINVAL);
    fx_err_clear(&e);
    assert_int_equal(fx_copy_end(c, NULL, &e), FX_EINVAL);
    assert_contains(e.reason, "st_copy");
    assert_contains(e.reason, "row 2");
    assert_contains(e.reason, "fields");
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0); /* not even row 1 */

    /* Too few fields. */
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(fx_copy_put_int(c, 1), 0);
    assert_int_equal(fx_copy_end_row(c), FX_EINVAL);
    fx_err_clear(&e);
    assert_int_equal(fx_copy_end(c, NULL, &e), FX_EINVAL);
    assert_contains(e.reason, "row 1 has 1 fields, not 2");
    /* A row left open at the end. */
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(fx_copy_put_int(c, 1), 0);
    fx_err_clear(&e);
    assert_int_equal(fx_copy_end(c, NULL, &e), FX_EINVAL);
    assert_contains(e.reason, "not ended");
    /* Text at NULL with a length. */
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(fx_copy_put_int(c, 1), 0);
    assert_int_equal(fx_copy_put_text(c, NULL, 3), FX_EINVAL);
    fx_copy_abort(c);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

    /* NULL handles. */
    assert_int_equal(fx_copy_put_int(NULL, 1), FX_EINVAL);
    assert_int_equal(fx_copy_put_text(NULL, "a", 1), FX_EINVAL);
    assert_int_equal(fx_copy_put_null(NULL), FX_EINVAL);
    assert_int_equal(fx_copy_end_row(NULL), FX_EINVAL);
    assert_int_equal(fx_copy_end(NULL, NULL, NULL), FX_EINVAL);
    fx_copy_abort(NULL);
    /* and the connection still works */
    exec_ok(f->s, "INSERT INTO st_copy (k) VALUES (5)");
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 1);
}

/* Put rows (k, s) until a call fails; returns how many rows were ended. */
static int copy_rows(struct fx_copy *c, int from, int n, int null_at)
{
    for (int i = 0; i < n; i++) {
        char s[32];
        int len = snprintf(s, sizeof(s), "row %d", from + i);
        int rc = from + i == null_at ? fx_copy_put_null(c) : fx_copy_put_int(c, from + i);
        if (rc == 0)
            rc = fx_copy_put_text(c, s, (size_t)len);
        if (rc == 0)
            rc = fx_copy_end_row(c);
        if (rc != 0)
            return i;
    }
    return n;
}

/* A row the engine refuses fails the copy, with the engine's reason; the
 * transaction then rolls back cleanly and the connection goes on. */
/* n rows (s, k) of text s and k = row number, except row 3 whose k is "abc"
 * (not a number: PostgreSQL refuses it for a BIGINT column) */
static void copy_bad_third(struct fx_copy *c, const char *s, int n)
{
    for (int i = 1; i <= n; i++) {
        assert_int_equal(fx_copy_put_text(c, s, strlen(s)), 0);
        if (i == 3)
            assert_int_equal(fx_copy_put_text(c, "abc", 3), 0);
        else
            assert_int_equal(fx_copy_put_int(c, i), 0);
        assert_int_equal(fx_copy_end_row(c), 0);
    }
}

static void t_copy_failure(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_copy (k BIGINT NOT NULL, s TEXT)");
    static const char *const cols[] = {"k", "s"};
    struct fx_err e;

    /* NOT NULL violation in row 500 of 1000, inside a transaction. */
    assert_int_equal(fx_store_begin(f->s), 0);
    exec_ok(f->s, "INSERT INTO st_copy (k, s) VALUES (-1, 'before the copy')");
    struct fx_copy *c = copy_ok(f->s, "st_copy", cols, 2);
    int ended = copy_rows(c, 1, 1000, 500);
    /* SQLite stops at the row; PostgreSQL takes them all and answers at the end */
    assert_true(ended == 499 || ended == 1000);
    fx_err_clear(&e);
    int64_t rows = 7;
    assert_int_equal(fx_copy_end(c, &rows, &e), FX_ECONSTRAINT);
    assert_int_equal(rows, 0);
    assert_int_equal(e.code, FX_ECONSTRAINT);
    assert_contains(e.reason, "copy into st_copy");
    assert_contains(e.reason, "null");
    assert_contains(e.reason, "k");
    assert_int_equal(fx_store_rollback(f->s), 0);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

    /* The same outside a transaction: nothing is kept. */
    c = copy_ok(f->s, "st_copy", cols, 2);
    copy_rows(c, 1, 10, 3);
    assert_int_equal(fx_copy_end(c, NULL, &e), FX_ECONSTRAINT);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

    /* Text into a BIGINT column: PostgreSQL checks types; SQLite stores the
     * text as is (see docs/backends.md), so this part is PostgreSQL's. */
    if (!is_sqlite(f->s)) {
        static const char *const rcols[] = {"s", "k"};
        assert_int_equal(fx_store_begin(f->s), 0);
        c = copy_ok(f->s, "st_copy", rcols, 2);
        copy_bad_third(c, "x", 5);
        fx_err_clear(&e);
        assert_int_equal(fx_copy_end(c, NULL, &e), FX_ESTORE);
        assert_contains(e.reason, "copy into st_copy");
        assert_contains(e.reason, "bigint");
        assert_contains(e.reason, "abc");
        assert_contains(e.reason, "line 3"); /* where: the row, and the column */
        assert_contains(e.reason, "column k");
        assert_contains(fx_store_errmsg(f->s), "bigint");
        /* the transaction is failed: statements are refused until the rollback */
        struct fx_stmt *st = prep_ok(f->s, "SELECT COUNT(*) FROM st_copy");
        assert_true(fx_stmt_step(st) < 0);
        fx_stmt_reset(st);
        assert_int_equal(fx_store_rollback(f->s), 0);
        assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

        /* a bad row early in a long copy (many writes after it): still the
         * server's reason and the row, at the end */
        c = copy_ok(f->s, "st_copy", rcols, 2);
        copy_bad_third(c, "filler text of the row", 50000);
        fx_err_clear(&e);
        assert_int_equal(fx_copy_end(c, NULL, &e), FX_ESTORE);
        assert_contains(e.reason, "bigint");
        assert_contains(e.reason, "line 3");
        assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

        /* text with a NUL byte cannot go into PostgreSQL text */
        c = copy_ok(f->s, "st_copy", cols, 2);
        assert_int_equal(fx_copy_put_int(c, 1), 0);
        assert_int_equal(fx_copy_put_text(c, "a\0b", 3), FX_EINVAL);
        assert_int_equal(fx_copy_end(c, NULL, &e), FX_EINVAL);
        assert_contains(e.reason, "NUL");
    }

    /* The connection goes on. */
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(copy_rows(c, 1, 3, 0), 3);
    assert_int_equal(copy_end_ok(c), 3);
    assert_int_equal(scalar(f->s, "SELECT SUM(k) FROM st_copy"), 6);
}

/* Abort keeps nothing; on PostgreSQL the connection serves the copy alone. */
static void t_copy_abort(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_copy (k BIGINT NOT NULL, s TEXT)");
    static const char *const cols[] = {"k", "s"};

    /* Outside a transaction: nothing is written. */
    struct fx_copy *c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(copy_rows(c, 1, 100, 0), 100);
    fx_copy_abort(c);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

    /* Inside one: the caller rolls back, earlier writes go with it. */
    assert_int_equal(fx_store_begin(f->s), 0);
    exec_ok(f->s, "INSERT INTO st_copy (k, s) VALUES (-1, 'x')");
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(copy_rows(c, 1, 100, 0), 100);
    fx_copy_abort(c);
    assert_int_equal(fx_store_rollback(f->s), 0);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 0);

    /* Two copies in one transaction, then a commit. */
    assert_int_equal(fx_store_begin(f->s), 0);
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(copy_rows(c, 1, 10, 0), 10);
    assert_int_equal(copy_end_ok(c), 10);
    c = copy_ok(f->s, "st_copy", cols, 2);
    assert_int_equal(copy_rows(c, 11, 10, 0), 10);
    assert_int_equal(copy_end_ok(c), 10);
    assert_int_equal(fx_store_commit(f->s), 0);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 20);

    if (!is_sqlite(f->s)) {
        struct fx_err e;
        c = copy_ok(f->s, "st_copy", cols, 2);
        assert_int_equal(copy_rows(c, 100, 5, 0), 5);
        /* anything else on the connection is refused, naming the copy */
        fx_err_clear(&e);
        assert_int_equal(fx_store_exec(f->s, "SELECT 1", &e), FX_EINVAL);
        assert_contains(e.reason, "COPY into st_copy");
        struct fx_stmt *st = NULL;
        assert_int_equal(fx_store_prepare(f->s, "SELECT 2", &st, &e), FX_EINVAL);
        struct fx_copy *c2 = NULL;
        assert_int_equal(fx_store_copy_begin(f->s, "st_copy", cols, 2, &c2, &e), FX_EINVAL);
        assert_int_equal(fx_store_begin(f->s), FX_EINVAL);
        /* the copy is still good after those refusals */
        assert_int_equal(copy_end_ok(c), 5);
        assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 25);

        /* a rollback while a copy is open ends it as failed */
        assert_int_equal(fx_store_begin(f->s), 0);
        c = copy_ok(f->s, "st_copy", cols, 2);
        assert_int_equal(copy_rows(c, 200, 5, 0), 5);
        assert_int_equal(fx_store_rollback(f->s), 0);
        assert_int_equal(fx_copy_put_int(c, 1), FX_ESTORE);
        fx_err_clear(&e);
        assert_int_equal(fx_copy_end(c, NULL, &e), FX_ESTORE);
        assert_contains(e.reason, "rolled back");
        /* and a commit with one open fails and rolls back */
        assert_int_equal(fx_store_begin(f->s), 0);
        c = copy_ok(f->s, "st_copy", cols, 2);
        assert_int_equal(copy_rows(c, 300, 5, 0), 5);
        assert_int_equal(fx_store_commit(f->s), FX_EINVAL);
        assert_contains(fx_store_errmsg(f->s), "COPY into st_copy");
        fx_copy_abort(c);
        assert_int_equal(fx_store_rollback(f->s), 0);
        assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_copy"), 25);
    }
}

/* Prints throughput only; no timing assertion. */
static void t_copy_bulk(void **state)
{
    struct fixture *f = *state;
    enum { N = 100000 };
    exec_ok(f->s, "CREATE TABLE st_bulk (a BIGINT, b TEXT, c BIGINT, d BIGINT, e TEXT)");
    static const char *const cols[] = {"a", "b", "c", "d", "e"};
    int64_t t0 = fx_mono_ms();
    assert_int_equal(fx_store_begin(f->s), 0);
    struct fx_copy *c = copy_ok(f->s, "st_bulk", cols, 5);
    char b[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(b, sizeof(b), "name-%d", i);
        if (fx_copy_put_int(c, i) || fx_copy_put_text(c, b, (size_t)n) ||
            (i % 10 ? fx_copy_put_int(c, i / 2) : fx_copy_put_null(c)) ||
            fx_copy_put_int(c, (int64_t)i * 7) || fx_copy_put_text(c, "constant\ttext", 13) ||
            fx_copy_end_row(c))
            fail_msg("copy row %d failed", i);
    }
    assert_int_equal(copy_end_ok(c), N);
    assert_int_equal(fx_store_commit(f->s), 0);
    int64_t ms = fx_mono_ms() - t0;
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_bulk"), N);
    assert_int_equal(scalar(f->s, "SELECT COUNT(*) FROM st_bulk WHERE c IS NULL"), N / 10);
    assert_int_equal(scalar(f->s, "SELECT SUM(a) FROM st_bulk"), (int64_t)N * (N - 1) / 2);
    struct fx_stmt *st = prep_ok(f->s, "SELECT COUNT(*) FROM st_bulk WHERE e = ?");
    assert_int_equal(fx_stmt_bind_text(st, 1, "constant\ttext", 13), 0);
    assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
    assert_int_equal(fx_stmt_int(st, 0), N);
    fx_stmt_reset(st);
    print_message("    [%s] copy: %d rows in %lld ms (%.0f rows/s)\n", fx_store_dialect(f->s), N,
                  (long long)ms, ms ? N * 1000.0 / (double)ms : 0.0);
}

/* ---- SQLite only ----------------------------------------------------------- */

static void s_memory(void **state)
{
    (void)state;
    struct fx_store *a = open_ok("sqlite::memory:");
    struct fx_store *b = open_ok("SQLITE::memory:");
    exec_ok(a, "CREATE TABLE st_two (k INTEGER); INSERT INTO st_two (k) VALUES (7)");
    assert_int_equal(scalar(a, "SELECT k FROM st_two"), 7);
    struct fx_stmt *st = NULL;
    assert_true(fx_store_prepare(b, "SELECT k FROM st_two", &st, NULL) < 0); /* private */
    assert_int_equal(fx_store_begin(a), 0);
    exec_ok(a, "INSERT INTO st_two (k) VALUES (8)");
    assert_int_equal(fx_store_rollback(a), 0);
    assert_int_equal(scalar(a, "SELECT COUNT(*) FROM st_two"), 1);
    fx_store_close(a);
    fx_store_close(b);
}

static void s_settings(void **state)
{
    struct fixture *f = *state;
    char *path = fx_asprintf("%s/%s.db", f->tmpdir, DBNAME);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    free(path);
    struct fx_stmt *st = prep_ok(f->s, "PRAGMA journal_mode");
    assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
    assert_string_equal(fx_stmt_text(st, 0, NULL), "wal");
    fx_stmt_reset(st);
    assert_int_equal(scalar(f->s, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(scalar(f->s, "PRAGMA foreign_keys"), 1);
    /* the busy timeout is the store's own handler (short sleeps first), so
     * PRAGMA busy_timeout does not show it: the URL option is checked by
     * how long a locked BEGIN waits */
    assert_int_equal(scalar(f->s, "PRAGMA temp_store"), 2); /* MEMORY */

    /* URL option. */
    char url[4300];
    snprintf(url, sizeof(url), "%s?busy_timeout=250", f->url);
    struct fx_store *s2 = open_ok(url);
    assert_int_equal(fx_store_begin(f->s), 0);
    int64_t t0 = fx_mono_ms();
    assert_int_equal(fx_store_begin(s2), FX_EBUSY);
    int64_t waited = fx_mono_ms() - t0;
    assert_true(waited >= 200 && waited < 5000);
    assert_int_equal(fx_store_rollback(f->s), 0);
    fx_store_close(s2);

    /* Portable SQL: "x" is an identifier, never a string. */
    assert_true(fx_store_prepare(f->s, "SELECT \"not a string\"", &st, NULL) < 0);

    /* prepare takes exactly one statement; trailing comments are fine. */
    struct fx_err e;
    fx_err_clear(&e);
    assert_int_equal(fx_store_prepare(f->s, "SELECT 1; SELECT 2", &st, &e), FX_EINVAL);
    assert_contains(e.reason, "one SQL statement");
    assert_int_equal(fx_store_prepare(f->s, "", &st, &e), FX_EINVAL);
    st = prep_ok(f->s, "SELECT 1; -- trailing comment");
    assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
    fx_stmt_reset(st);
}

static void s_bad_urls(void **state)
{
    struct fixture *f = *state;
    struct fx_store *s = NULL;
    struct fx_err e;
    fx_err_clear(&e);
    char url[4300];
    assert_int_equal(fx_store_open("sqlite:", DBNAME, &s, &e), FX_EINVAL);
    assert_contains(e.reason, "directory");
    snprintf(url, sizeof(url), "%s?busy_timeout=abc", f->url);
    assert_int_equal(fx_store_open(url, DBNAME, &s, &e), FX_EINVAL);
    assert_contains(e.reason, "busy_timeout");
    snprintf(url, sizeof(url), "%s?color=blue", f->url);
    assert_int_equal(fx_store_open(url, DBNAME, &s, &e), FX_EINVAL);
    assert_contains(e.reason, "color");
    assert_null(s);
}

static void s_unwritable(void **state)
{
    struct fixture *f = *state;
    struct fx_store *s = NULL;
    struct fx_err e;
    char url[4300];
    char *file = tu_write_file(f->tmpdir, "plainfile", "x", 1);
    assert_non_null(file);

    /* A directory below a regular file cannot be created. */
    fx_err_clear(&e);
    snprintf(url, sizeof(url), "sqlite:%s/sub", file);
    assert_int_equal(fx_store_open(url, DBNAME, &s, &e), FX_EIO);
    assert_null(s);
    assert_contains(e.reason, file);
    assert_contains(e.reason, "not a directory");

    /* DIR is a regular file. */
    fx_err_clear(&e);
    snprintf(url, sizeof(url), "sqlite:%s", file);
    assert_int_equal(fx_store_open(url, DBNAME, &s, &e), FX_EIO);
    assert_contains(e.reason, "not a directory");

    /* DIR/<name>.db is a directory: the engine refuses, the message names the file. */
    char *sub = fx_asprintf("%s/d", f->tmpdir);
    char *dbdir = fx_asprintf("%s/%s.db", sub, DBNAME);
    assert_int_equal(fx_mkdirs(dbdir), 0);
    fx_err_clear(&e);
    snprintf(url, sizeof(url), "sqlite:%s", sub);
    assert_true(fx_store_open(url, DBNAME, &s, &e) < 0);
    assert_null(s);
    assert_contains(e.reason, dbdir);

    /* Permissions (root ignores them, so only checked as a normal user). */
    if (geteuid() != 0) {
        char *ro = fx_asprintf("%s/ro", f->tmpdir);
        assert_int_equal(mkdir(ro, 0555), 0);
        fx_err_clear(&e);
        snprintf(url, sizeof(url), "sqlite:%s", ro);
        assert_int_equal(fx_store_open(url, DBNAME, &s, &e), FX_EIO);
        assert_contains(e.reason, "not writable");
        assert_contains(e.reason, ro);
        chmod(ro, 0755);
        free(ro);
    }
    free(sub);
    free(dbdir);
    free(file);
}

static void s_busy(void **state)
{
    struct fixture *f = *state;
    char url[4300];
    snprintf(url, sizeof(url), "%s?busy_timeout=100", f->url);
    struct fx_store *s2 = open_ok(url);
    exec_ok(f->s, "CREATE TABLE st_busy (k INTEGER)");

    assert_int_equal(fx_store_begin(f->s), 0); /* holds the write lock */
    int64_t t0 = fx_mono_ms();
    assert_int_equal(fx_store_begin(s2), FX_EBUSY);
    assert_true(fx_mono_ms() - t0 >= 50); /* it waited rather than failing at once */
    assert_contains(fx_store_errmsg(s2), "locked");
    struct fx_err e;
    fx_err_clear(&e);
    assert_int_equal(fx_store_exec(s2, "INSERT INTO st_busy (k) VALUES (1)", &e), FX_EBUSY);
    struct fx_stmt *ins = prep_ok(s2, "INSERT INTO st_busy (k) VALUES (?)");
    fx_stmt_bind_int(ins, 1, 2);
    assert_int_equal(fx_stmt_step(ins), FX_EBUSY);
    /* Readers are not blocked by the writer (WAL). */
    assert_int_equal(scalar(s2, "SELECT COUNT(*) FROM st_busy"), 0);
    assert_int_equal(fx_store_commit(f->s), 0);

    assert_int_equal(fx_store_begin(s2), 0);
    fx_stmt_bind_int(ins, 1, 3);
    assert_int_equal(fx_stmt_step(ins), FX_STORE_DONE);
    assert_int_equal(fx_store_commit(s2), 0);
    fx_store_close(s2);
}

struct waiter {
    const char *url;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
    int rc;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    struct fx_store *s = NULL;
    w->rc = fx_store_open(w->url, DBNAME, &s, NULL);
    pthread_mutex_lock(&w->mu);
    w->started = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->rc != 0)
        return NULL;
    w->rc = fx_store_begin(s); /* waits for the main thread's commit */
    if (w->rc == 0)
        w->rc = fx_store_exec(s, "INSERT INTO st_busy (k) VALUES (2)", NULL);
    if (w->rc == 0)
        w->rc = fx_store_commit(s);
    fx_store_close(s);
    return NULL;
}

static void s_begin_waits(void **state)
{
    struct fixture *f = *state;
    exec_ok(f->s, "CREATE TABLE st_busy (k INTEGER)");
    assert_int_equal(fx_store_begin(f->s), 0);
    exec_ok(f->s, "INSERT INTO st_busy (k) VALUES (1)");

    struct waiter w = {.url = f->url, .rc = -1000};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
    pthread_mutex_lock(&w.mu);
    while (!w.started)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(fx_store_commit(f->s), 0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(scalar(f->s, "SELECT SUM(k) FROM st_busy"), 3);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

/* ---- registration ---------------------------------------------------------- */

#define CONFORMANCE(be)                                                                            \
    cmocka_unit_test_prestate_setup_teardown(t_open_close, setup, teardown, be),                   \
        cmocka_unit_test_prestate_setup_teardown(t_exec_ddl, setup, teardown, be),                 \
        cmocka_unit_test_prestate_setup_teardown(t_types, setup, teardown, be),                    \
        cmocka_unit_test_prestate_setup_teardown(t_cache_reset, setup, teardown, be),              \
        cmocka_unit_test_prestate_setup_teardown(t_transactions, setup, teardown, be),             \
        cmocka_unit_test_prestate_setup_teardown(t_constraints, setup, teardown, be),              \
        cmocka_unit_test_prestate_setup_teardown(t_commit_failure, setup, teardown, be),           \
        cmocka_unit_test_prestate_setup_teardown(t_upsert_returning, setup, teardown, be),         \
        cmocka_unit_test_prestate_setup_teardown(t_changes, setup, teardown, be),                  \
        cmocka_unit_test_prestate_setup_teardown(t_migrations_reopen, setup, teardown, be),        \
        cmocka_unit_test_prestate_setup_teardown(t_migration_failure, setup, teardown, be),        \
        cmocka_unit_test_prestate_setup_teardown(t_migration_validation, setup, teardown, be),     \
        cmocka_unit_test_prestate_setup_teardown(t_two_connections, setup, teardown, be),          \
        cmocka_unit_test_prestate_setup_teardown(t_concurrent_migrate, setup, teardown, be),       \
        cmocka_unit_test_prestate_setup_teardown(t_bulk_insert, setup, teardown, be),              \
        cmocka_unit_test_prestate_setup_teardown(t_copy_types, setup, teardown, be),               \
        cmocka_unit_test_prestate_setup_teardown(t_copy_misuse, setup, teardown, be),              \
        cmocka_unit_test_prestate_setup_teardown(t_copy_failure, setup, teardown, be),             \
        cmocka_unit_test_prestate_setup_teardown(t_copy_abort, setup, teardown, be),               \
        cmocka_unit_test_prestate_setup_teardown(t_copy_bulk, setup, teardown, be)

int main(void)
{
    static struct backend sqlite_be = {.dialect = "sqlite", .url = NULL};
    static struct backend pg_be = {.dialect = "postgresql", .url = NULL};
    const struct CMUnitTest sqlite_tests[] = {CONFORMANCE(&sqlite_be)};
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test(s_memory),
        cmocka_unit_test_prestate_setup_teardown(s_settings, setup, teardown, &sqlite_be),
        cmocka_unit_test_prestate_setup_teardown(s_bad_urls, setup, teardown, &sqlite_be),
        cmocka_unit_test_prestate_setup_teardown(s_unwritable, setup, teardown, &sqlite_be),
        cmocka_unit_test_prestate_setup_teardown(s_busy, setup, teardown, &sqlite_be),
        cmocka_unit_test_prestate_setup_teardown(s_begin_waits, setup, teardown, &sqlite_be),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("store conformance [sqlite]", sqlite_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("store sqlite only", sqlite_only, NULL, NULL);

    const char *pg = getenv("FLUXO_TEST_PG_URL");
    if (pg && *pg) {
        pg_be.url = pg;
        const struct CMUnitTest pg_tests[] = {CONFORMANCE(&pg_be)};
        failed +=
            cmocka_run_group_tests_name("store conformance [postgresql]", pg_tests, NULL, NULL);
    }
    return failed ? 1 : 0;
}
