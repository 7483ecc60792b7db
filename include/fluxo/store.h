/* SPDX-License-Identifier: MIT */
/*
 * Store: the relational database behind every service, one interface, a
 * backend per engine chosen from the URL (sqlite:DIR, postgresql://...).
 * Nothing above src/store/ sees engine types or calls.
 *
 * SQL given to the store is the portable subset both engines speak:
 * `?` placeholders (the PostgreSQL backend rewrites them to $n),
 * INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING, RETURNING. Where DDL must
 * differ, migrations carry per-dialect text.
 *
 * Threads: a struct fx_store is a connection; use it from one thread at a
 * time. Open one per thread (they share the database file/server).
 *
 * Statements: fx_store_prepare caches by SQL text for the connection's
 * lifetime; the returned statement belongs to the store (do not free it).
 */
#ifndef FLUXO_STORE_H
#define FLUXO_STORE_H

#include "fluxo/error.h"

#include <stddef.h>
#include <stdint.h>

struct fx_store;
struct fx_stmt;

/*
 * Open the database of one service ("ingest", "distribution", ...).
 * url "sqlite:DIR" opens DIR/<name>.db (created, WAL, synchronous=NORMAL,
 * foreign keys on, busy timeout). Returns 0 or FX_E* with err filled.
 */
int fx_store_open(const char *url, const char *name, struct fx_store **out, struct fx_err *err);
void fx_store_close(struct fx_store *s);

/* "sqlite" or "postgresql". */
const char *fx_store_dialect(const struct fx_store *s);

/* Run SQL without parameters (may hold several statements). */
int fx_store_exec(struct fx_store *s, const char *sql, struct fx_err *err);

/* Transactions. begin takes the write lock at once (SQLite: BEGIN IMMEDIATE). */
int fx_store_begin(struct fx_store *s);
int fx_store_commit(struct fx_store *s);
int fx_store_rollback(struct fx_store *s); /* no-op outside a transaction */

/* Prepare (or fetch from the cache) a statement; reset and unbound on return. */
int fx_store_prepare(struct fx_store *s, const char *sql, struct fx_stmt **out, struct fx_err *err);

/* Bind 1-based parameters. Text is copied. */
int fx_stmt_bind_int(struct fx_stmt *st, int idx, int64_t v);
int fx_stmt_bind_text(struct fx_stmt *st, int idx, const char *s, size_t len);
/* Bind text without copying: s must stay valid and unchanged until the
 * statement is reset (for bulk paths that bind from a buffer they own). */
int fx_stmt_bind_text_ref(struct fx_stmt *st, int idx, const char *s, size_t len);
int fx_stmt_bind_null(struct fx_stmt *st, int idx);
int fx_stmt_bind_double(struct fx_stmt *st, int idx, double v);

#define FX_STORE_DONE 0
#define FX_STORE_ROW 1
/*
 * Execute / advance: FX_STORE_ROW with a row available, FX_STORE_DONE when
 * finished, or < 0: FX_ECONSTRAINT (unique / check / foreign key), FX_EBUSY
 * (locked past the busy timeout), FX_ESTORE (anything else; message in
 * fx_store_errmsg).
 */
int fx_stmt_step(struct fx_stmt *st);
/* Columns of the current row, 0-based. Text valid until the next step/reset. */
int64_t fx_stmt_int(struct fx_stmt *st, int col);
double fx_stmt_double(struct fx_stmt *st, int col);
const char *fx_stmt_text(struct fx_stmt *st, int col, size_t *len); /* NULL for SQL NULL */
int fx_stmt_is_null(struct fx_stmt *st, int col);
int fx_stmt_ncols(struct fx_stmt *st);
/* Reset for re-execution and clear bindings. */
void fx_stmt_reset(struct fx_stmt *st);

/* Rows changed by the last INSERT/UPDATE/DELETE. */
int64_t fx_store_changes(struct fx_store *s);

/*
 * Bulk load: stream rows into columns cols[0..ncols) of table, far faster
 * than one INSERT per row on a server. PostgreSQL: COPY table (cols) FROM
 * STDIN in text format, sent in large writes; SQLite: one cached INSERT
 * executed per row.
 *
 * Rows go into the current transaction; with none open, the copy is a
 * transaction of its own (every row or none). table and cols are SQL
 * identifiers written by the program (letters, digits, '_', and one '.' for
 * a schema or pg_temp): anything else is FX_EINVAL, as is ncols == 0.
 *
 * Each row is ncols put calls, in column order, then fx_copy_end_row. Values
 * are converted by the engine as bound parameters are: text into a BIGINT
 * column fails on PostgreSQL. A put copies its text before returning.
 *
 * Failures: a wrong number of fields in a row is FX_EINVAL at once; an
 * engine error in the data (type, constraint) fails the row's end_row
 * (SQLite) or only fx_copy_end (PostgreSQL, which checks rows as they
 * arrive but answers at the end). After the first failure every call on the
 * copy returns that code and fx_copy_end reports it. A failed or aborted
 * copy inside a caller's transaction leaves that transaction to be rolled
 * back (PostgreSQL has aborted it; on SQLite the rows put so far are in
 * it).
 *
 * While a copy is open its store serves it alone: end or abort it before any
 * other call on the store or its statements (PostgreSQL fails them,
 * fx_store_rollback excepted: it ends the copy as failed), and before
 * fx_store_close. Blocks on the engine (network writes once enough rows are
 * buffered).
 */
struct fx_copy;
int fx_store_copy_begin(struct fx_store *s, const char *table, const char *const *cols,
                        size_t ncols, struct fx_copy **out, struct fx_err *err);
/* The next field of the current row: an integer, text (s may be NULL when
 * len is 0: empty text, not NULL; on PostgreSQL text with a NUL byte is
 * FX_EINVAL), or SQL NULL. Returns 0 or < 0. */
int fx_copy_put_int(struct fx_copy *c, int64_t v);
int fx_copy_put_text(struct fx_copy *c, const char *s, size_t len);
int fx_copy_put_null(struct fx_copy *c);
/* Close the current row (exactly ncols fields put). Returns 0 or < 0. */
int fx_copy_end_row(struct fx_copy *c);
/* Finish: 0 with *rows (may be NULL) = rows written, or < 0 with err filled
 * ("copy into TABLE: ..." with the engine's words and the failing row where
 * known). Frees c in both cases. */
int fx_copy_end(struct fx_copy *c, int64_t *rows, struct fx_err *err);
/* Give up: nothing of the copy is kept (see the transaction note above).
 * Frees c; NULL is a no-op. */
void fx_copy_abort(struct fx_copy *c);
/* Last engine error message (connection-scoped). */
const char *fx_store_errmsg(struct fx_store *s);

/* Versioned migrations, tracked per component in table fx_migrations. */
struct fx_migration {
    int version;            /* 1, 2, 3... ascending */
    const char *name;       /* short description */
    const char *sql;        /* portable SQL, or NULL when per-dialect below */
    const char *sql_sqlite; /* overrides sql on SQLite */
    const char *sql_pg;     /* overrides sql on PostgreSQL */
};

/*
 * Apply, in one transaction each, every migration of component whose version
 * is above the recorded one. Returns 0, or an error naming the failing
 * version. *applied (may be NULL) receives how many ran.
 */
int fx_store_migrate(struct fx_store *s, const char *component, const struct fx_migration *m,
                     size_t n, int *applied, struct fx_err *err);
/* Current version of component (0 when none). */
int fx_store_schema_version(struct fx_store *s, const char *component);

/*
 * Backend descriptor: one const instance per backend (src/store/store_<name>.c),
 * listed in src/store/store.c and chosen by the URL scheme. Its vtable
 * (struct fx_store_vtbl, src/store/store_int.h) has every slot set: an op the
 * backend cannot do points at a function returning FX_ENOTSUP, never NULL.
 */
struct fx_store_vtbl;
struct fx_store_ops {
    const char *name;   /* dialect, as fx_store_dialect returns it */
    const char *scheme; /* URL scheme served, compared case-insensitively: "sqlite" */
    /*
     * Open one connection. url is the whole URL as given; location is what
     * follows "scheme:" in it (a directory for sqlite). On success *out is a
     * connection whose vtable is vt. Returns 0 or FX_E* with err filled.
     */
    int (*open)(const char *url, const char *location, const char *name, struct fx_store **out,
                struct fx_err *err);
    const struct fx_store_vtbl *vt;
};

#endif
