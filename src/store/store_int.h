/* SPDX-License-Identifier: MIT */
/*
 * Store internals shared by the front (store.c) and the backends
 * (store_sqlite.c, store_pg.c...). Nothing outside src/store/ includes this.
 *
 * Shape: a backend registers one const struct fx_store_ops (public header:
 * name, URL scheme, open, vtable). Its open returns a connection whose first
 * member is struct fx_store, and every statement it hands out starts with
 * struct fx_stmt; both headers carry the same vtable pointer, so the front
 * dispatches from either handle with one indirect call and nothing else: no
 * lookup, no allocation, no hashing on the bind/step/column path.
 *
 * Every slot is set: the front checks the vtable once per open and refuses a
 * backend with an empty slot (an op a backend cannot do points at a function
 * returning FX_ENOTSUP, never at NULL). The front has already checked the
 * handles are non-NULL; ops validate their remaining arguments.
 *
 * Common contract of the ops below: one connection and its statements are
 * used by one thread at a time; ops block on the engine (disk, lock waits up
 * to the busy timeout, network) but never longer. On failure an op returns a
 * negative FX_E* and saves the engine's message for errmsg; mapping is the
 * same everywhere: constraint (unique, check, not null, foreign key) ->
 * FX_ECONSTRAINT, lock held past the busy timeout -> FX_EBUSY, anything else
 * from the engine -> FX_ESTORE, bad argument -> FX_EINVAL.
 */
#ifndef FLUXO_STORE_INT_H
#define FLUXO_STORE_INT_H

#include "fluxo/store.h"

#include <stdint.h>

struct fx_store_vtbl;

/* Common header: first member of every backend's connection struct. */
struct fx_store {
    const struct fx_store_vtbl *vt;
};

/* Common header: first member of every backend's statement struct. */
struct fx_stmt {
    const struct fx_store_vtbl *vt;
};

/*
 * Common header: first member of every backend's copy struct. The front
 * keeps the bookkeeping every backend needs (fields per row, failure state)
 * so the put ops only convert a value: they are called once per field.
 */
struct fx_copy {
    const struct fx_store_vtbl *vt;
    size_t ncols;  /* fields per row */
    size_t col;    /* fields put in the current row */
    int64_t rows;  /* rows ended so far */
    int rc;        /* first failure (sticky), 0 while the copy is good */
    char why[384]; /* what failed and where, for copy_end's message ("" if the
                    * engine's own message says it) */
    char table[128];
};

struct fx_store_vtbl {
    /* Finalize every cached statement and release the connection; an open
     * transaction is rolled back. Frees s. Never fails. */
    void (*close)(struct fx_store *s);

    /* Run parameterless SQL, possibly several ';'-separated statements, in
     * order; stops at the first failure (earlier statements stay applied
     * unless a transaction is rolled back). err->reason gets the engine's
     * message. */
    int (*exec)(struct fx_store *s, const char *sql, struct fx_err *err);

    /* begin: start a transaction holding the write lock (SQLite BEGIN
     * IMMEDIATE), waiting for it up to the busy timeout, then FX_EBUSY.
     * commit: on failure the transaction is rolled back before returning, so
     * a following rollback is a harmless no-op.
     * rollback: 0 when no transaction is open. */
    int (*begin)(struct fx_store *s);
    int (*commit)(struct fx_store *s);
    int (*rollback)(struct fx_store *s);

    /* Return the connection's statement for this exact SQL text (one
     * statement; several -> FX_EINVAL), preparing and caching it on first use.
     * The statement is returned reset with every parameter unbound (= NULL)
     * and is owned by the connection until close: preparing the same text
     * again while iterating it restarts that iteration. */
    int (*prepare)(struct fx_store *s, const char *sql, struct fx_stmt **out, struct fx_err *err);

    /* Bind 1-based parameter idx (out of range -> FX_EINVAL). Text is copied
     * before return; s == NULL with len 0 binds the empty string. */
    int (*bind_int)(struct fx_stmt *st, int idx, int64_t v);
    int (*bind_double)(struct fx_stmt *st, int idx, double v);
    int (*bind_text)(struct fx_stmt *st, int idx, const char *s, size_t len);
    /* Like bind_text, but the text is borrowed: it must stay valid and
     * unchanged until the statement is reset (bulk paths avoid a copy). */
    int (*bind_text_ref)(struct fx_stmt *st, int idx, const char *s, size_t len);
    int (*bind_null)(struct fx_stmt *st, int idx);

    /* Execute or advance: FX_STORE_ROW, FX_STORE_DONE or < 0 (statement
     * left reset, so it can be re-bound and retried). A statement left on a
     * row keeps its read snapshot: step it to DONE or reset it. */
    int (*step)(struct fx_stmt *st);

    /* Current row, 0-based columns. SQL NULL reads as 0 / 0.0 / text NULL
     * with *len 0; empty text is "" with *len 0. Text stays valid until the
     * next step or reset of st. */
    int64_t (*col_int)(struct fx_stmt *st, int col);
    double (*col_double)(struct fx_stmt *st, int col);
    const char *(*col_text)(struct fx_stmt *st, int col, size_t *len);
    int (*col_is_null)(struct fx_stmt *st, int col);
    int (*ncols)(struct fx_stmt *st);

    /* Reset for re-execution and unbind every parameter. */
    void (*reset)(struct fx_stmt *st);

    /* Rows changed by the last completed INSERT/UPDATE/DELETE. */
    int64_t (*changes)(struct fx_store *s);

    /* Message of the last failed op on this connection ("" before any);
     * successful ops leave it alone, so it survives the rollback that
     * usually follows a failure. Owned by the connection. */
    const char *(*errmsg)(struct fx_store *s);

    /* The SQL dialect: "sqlite" or "postgresql" (static string). */
    const char *(*dialect)(const struct fx_store *s);

    /*
     * Bulk load (fx_store_copy_begin in store.h). The front has validated
     * table and cols (identifiers, ncols > 0). copy_begin allocates the
     * backend's copy, fills the header (vt, ncols, table) and starts it; on
     * failure nothing is left open and err says why.
     * The put ops are called only while the copy is good (header rc == 0)
     * and the row has room (col < ncols); the front advances col after a
     * successful put. copy_end_row is called with col == ncols; the front
     * then counts the row and resets col. A put or end_row that fails
     * returns < 0 and may write the header's why; the front records the
     * code in rc.
     * copy_end finishes (header rc != 0: fails the copy with that code),
     * sets *rows, fills err on failure and frees c. copy_abort fails the
     * copy and frees c; it never fails.
     */
    int (*copy_begin)(struct fx_store *s, const char *table, const char *const *cols, size_t ncols,
                      struct fx_copy **out, struct fx_err *err);
    int (*copy_put_int)(struct fx_copy *c, int64_t v);
    int (*copy_put_text)(struct fx_copy *c, const char *s, size_t len);
    int (*copy_put_null)(struct fx_copy *c);
    int (*copy_end_row)(struct fx_copy *c);
    int (*copy_end)(struct fx_copy *c, int64_t *rows, struct fx_err *err);
    void (*copy_abort)(struct fx_copy *c);
};

/* Registered backends (defined in store_<backend>.c). */
extern const struct fx_store_ops fx__store_sqlite_ops;
extern const struct fx_store_ops fx__store_pg_ops, fx__store_postgres_ops; /* store_pg.c */

#endif
