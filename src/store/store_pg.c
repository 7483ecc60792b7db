/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL backend of the store, on libpq: URL
 * "postgresql://user:password@host:port/database?..." (or "postgres://");
 * the store's name (ingest, distribution, auth...) is a schema of that
 * database, created when missing and put alone on the search_path, so every
 * service keeps its own tables in one database. Query parameters go to libpq
 * (sslmode, connect_timeout, application_name...), except two of ours:
 * "busy_timeout=MS" (lock wait before FX_EBUSY, 10 s by default, like the
 * SQLite backend) and "reconnect_timeout=MS" (how long a lost connection is
 * retried, 5 s by default).
 *
 * Design notes:
 * - One PGconn per struct, used by one thread at a time (the store's
 *   contract), so nothing here locks. Every call is a synchronous round trip.
 * - Statements: `?` placeholders become $1..$n (outside literals, quoted
 *   identifiers, dollar quotes and comments); each SQL text is PQprepare'd
 *   once per session under a generated name and kept in a hash map until
 *   close, like the SQLite backend. The description of the statement
 *   (parameter types) decides the wire format of text parameters: binary for
 *   text columns, which needs no terminating NUL, so text_ref is sent
 *   straight from the caller's buffer; text format otherwise (numbers and
 *   anything the server must parse). Results come back in text format and
 *   are fetched whole at the first step: our queries return few rows.
 * - Transactions are BEGIN ISOLATION LEVEL READ COMMITTED. PostgreSQL locks
 *   rows, not the database, so begin waits for nothing; a statement waiting
 *   for a lock longer than busy_timeout (lock_timeout) fails with FX_EBUSY,
 *   as do serialization failures and deadlocks. Unlike SQLite, a failed
 *   statement aborts the whole transaction: the caller must roll back.
 * - Reconnect: the server may go away (restart, failover). Before sending
 *   outside a transaction, a readable idle socket means the server closed
 *   it; the connection is then re-established (PQreset, bounded backoff) and
 *   statements are re-prepared lazily (a generation number tells which are
 *   stale). Inside a transaction nothing is retried: the transaction died
 *   with the session, every call fails until the caller rolls back (which
 *   then succeeds), and the next begin reconnects. Nothing is half-applied.
 * - Messages name host:port and database, never the password: libpq does
 *   not print it, and the password's forms found in the URL are blotted out
 *   of any message built from the URL or the connection anyway.
 * - Bulk load: COPY ... FROM STDIN in text format. Fields are escaped into
 *   one buffer and handed to libpq in writes of COPY_FLUSH bytes, so a row
 *   costs no round trip and no syscall of its own. The server checks rows as
 *   they arrive but reports a bad one only when the copy ends (libpq reads
 *   nothing back during COPY IN), so errors in the data surface at
 *   fx_copy_end, with the server's line and column. While a COPY is open the
 *   connection is in COPY IN state and can do nothing else: every op checks
 *   for it first (ready()), and rollback ends it as failed.
 */
#include "store/store_int.h"

#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BUSY_MS 10000
#define MAX_BUSY_MS 3600000
#define DEFAULT_RECONNECT_MS 5000
#define MAX_RECONNECT_MS 600000
#define CONNECT_TIMEOUT_S "10"   /* per attempt, unless the URL says otherwise */
#define MIN_SERVER_VERSION 90500 /* ON CONFLICT */
#define CACHE_WARN_STMTS 4096
#define NSECRETS 4
#define COPY_FLUSH (256 * 1024) /* bytes of COPY data per write to libpq */

/* Type OIDs of the text types (fixed in the catalog since PostgreSQL 7). */
#define BOOLOID 16
#define TEXTOID 25
#define BPCHAROID 1042
#define VARCHAROID 1043

struct pg_store;
struct pg_copy;

enum { P_NULL, P_INT, P_DOUBLE, P_TEXT, P_REF };

struct param {
    int kind;
    char num[32];    /* P_INT, P_DOUBLE: the value in text form */
    const char *ref; /* P_REF: the caller's bytes */
    size_t len;      /* P_TEXT, P_REF */
    char *buf;       /* P_TEXT copy; P_REF copy when sent in text format */
    size_t cap;
};

enum { ST_READY, ST_ROWS, ST_DONE };

struct pg_stmt {
    struct fx_stmt base; /* first: the front casts */
    struct pg_store *store;
    struct pg_stmt *next; /* hash chain */
    uint64_t hash;
    uint64_t gen; /* session it is prepared in (0: none) */
    char *pgsql;  /* with $n placeholders */
    int nparams;
    int ncols; /* from the description, before any execution */
    Oid *ptypes;
    struct param *params;
    const char **values;
    int *lengths, *formats;
    PGresult *res;
    int row, nrows, state;
    char name[24];
    size_t len;
    char sql[]; /* cache key */
};

struct pg_store {
    struct fx_store base; /* first: the front casts */
    PGconn *conn;
    char *schema_q; /* the schema as a quoted identifier */
    char where[384];
    char *secrets[NSECRETS]; /* forms of the password to keep out of messages */
    int busy_ms, reconnect_ms;
    uint64_t gen;
    int in_tx; /* last known: inside a transaction block */
    int64_t changes;
    unsigned long next_name;
    struct pg_stmt **buckets;
    size_t nbuckets, nstmts;
    struct pg_copy *copy; /* the COPY in progress, or NULL */
    char errmsg[1024];
};

static const struct fx_store_vtbl pg_vtbl;

/* ---- messages ------------------------------------------------------------ */

/* One line: libpq messages are lines ending in newlines, continued by
 * lines that start with a tab. Lines join with "; ", continuations with a
 * space; m (cap bytes) is rewritten in place, truncated if need be. */
static void one_line(char *m, size_t cap)
{
    char in[1024];
    snprintf(in, sizeof(in), "%s", m);
    size_t w = 0;
    for (const char *r = in; *r && w + 3 < cap; r++) {
        if (*r == '\n' && r[1] && r[1] != '\t' && r[1] != '\n' && w > 0 && m[w - 1] != ' ') {
            m[w++] = ';';
            m[w++] = ' ';
            continue;
        }
        char c = (*r == '\n' || *r == '\t' || *r == '\r') ? ' ' : *r;
        if (c == ' ' && (w == 0 || m[w - 1] == ' '))
            continue;
        m[w++] = c;
    }
    while (w > 0 && m[w - 1] == ' ')
        w--;
    m[w] = '\0';
}

/* Blot the password out of m (any form of it seen in the URL) in place:
 * the mask is never longer than what it covers. Secrets shorter than 3
 * bytes are not searched for: they would match ordinary words. */
static void scrub(char *const *secrets, char *m)
{
    for (int i = 0; i < NSECRETS; i++) {
        const char *sec = secrets[i];
        size_t n = sec ? strlen(sec) : 0;
        if (n < 3)
            continue;
        size_t mask = n < 4 ? n : 4;
        char *p = m;
        while ((p = strstr(p, sec)) != NULL) {
            memset(p, '*', mask);
            memmove(p + mask, p + n, strlen(p + n) + 1);
            p += mask;
        }
    }
}

static void set_msg(struct pg_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_msg(struct pg_store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    one_line(s->errmsg, sizeof(s->errmsg));
    scrub(s->secrets, s->errmsg);
}

static int lost(const struct pg_store *s)
{
    return PQstatus(s->conn) != CONNECTION_OK;
}

static int map_sqlstate(const char *state)
{
    if (!state || strlen(state) != 5)
        return FX_ESTORE;
    if (strncmp(state, "23", 2) == 0)
        return FX_ECONSTRAINT; /* integrity constraint violation */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return FX_EBUSY; /* serialization failure, deadlock, lock timeout */
    if (strcmp(state, "53200") == 0)
        return FX_ENOMEM;
    return FX_ESTORE;
}

/* Save the error of res (NULL: of the connection) for errmsg; returns FX_E*. */
static int result_error(struct pg_store *s, const PGresult *res)
{
    if (lost(s)) {
        set_msg(s, "connection to PostgreSQL at %s lost: %s", s->where, PQerrorMessage(s->conn));
        return FX_ESTORE;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (primary)
        set_msg(s, "%s%s%s (SQLSTATE %s)", primary, detail ? "; " : "", detail ? detail : "",
                state ? state : "?");
    else if (res && *PQresultErrorMessage(res))
        set_msg(s, "%s", PQresultErrorMessage(res));
    else
        set_msg(s, "%s", *PQerrorMessage(s->conn) ? PQerrorMessage(s->conn) : "unknown error");
    return map_sqlstate(state);
}

static void track_tx(struct pg_store *s)
{
    if (lost(s))
        return; /* keep the last known state: a lost transaction needs a rollback */
    PGTransactionStatusType t = PQtransactionStatus(s->conn);
    s->in_tx = t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static void count_changes(struct pg_store *s, PGresult *res)
{
    const char *tag = PQcmdStatus(res);
    if (strncmp(tag, "INSERT ", 7) == 0 || strncmp(tag, "UPDATE ", 7) == 0 ||
        strncmp(tag, "DELETE ", 7) == 0 || strncmp(tag, "MERGE ", 6) == 0)
        s->changes = strtoll(PQcmdTuples(res), NULL, 10);
}

static int is_ok(const PGresult *res)
{
    ExecStatusType t = PQresultStatus(res);
    return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK || t == PGRES_EMPTY_QUERY;
}

/* COPY sent as a statement or through exec has nothing to feed or drain it
 * (fx_store_copy_begin is the way in): end it cleanly so the connection
 * stays usable, and refuse. Takes res. */
static int refuse_copy(struct pg_store *s, PGresult *res)
{
    ExecStatusType t = PQresultStatus(res);
    PQclear(res);
    if (t == PGRES_COPY_IN) {
        PQputCopyEnd(s->conn, "COPY FROM STDIN is not supported by the store");
    } else if (t == PGRES_COPY_OUT) {
        char *buf;
        while (PQgetCopyData(s->conn, &buf, 0) > 0)
            PQfreemem(buf);
    }
    while ((res = PQgetResult(s->conn)) != NULL)
        PQclear(res);
    track_tx(s);
    set_msg(s, "COPY is not supported through the store's statements (use fx_store_copy_begin)");
    return FX_ENOTSUP;
}

static int is_copy(const PGresult *res)
{
    ExecStatusType t = PQresultStatus(res);
    return t == PGRES_COPY_IN || t == PGRES_COPY_OUT || t == PGRES_COPY_BOTH;
}

/* ---- COPY state shared with the connection ops --------------------------- */

struct pg_copy {
    struct fx_copy base; /* first: the front casts */
    struct pg_store *store;
    int open;        /* COPY IN in progress on the wire */
    int send_failed; /* libpq refused data: the server may have said why */
    char *buf;       /* escaped rows not yet handed to libpq */
    size_t len, cap;
};

/* Take the connection out of COPY IN: end the copy (failed when reason is
 * set) and read its results. Returns the COPY's final result (caller
 * clears), or NULL when the connection could not tell. */
static PGresult *copy_finish_wire(struct pg_copy *c, const char *reason)
{
    struct pg_store *s = c->store;
    PGresult *final = NULL, *res;
    c->open = 0;
    s->copy = NULL;
    /* When the end cannot be sent (connection gone, or the server already
     * left COPY on an error), what is pending is still read: the error,
     * and the connection back to idle. */
    PQputCopyEnd(s->conn, reason);
    while ((res = PQgetResult(s->conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_COPY_IN) {
            /* still in COPY IN: the end did not go through; never loop on it */
            PQclear(res);
            break;
        }
        if (!final)
            final = res;
        else
            PQclear(res);
    }
    track_tx(s);
    return final;
}

/* ---- connection ---------------------------------------------------------- */

static void notice_cb(void *arg, const char *message)
{
    (void)arg;
    /* NOTICEs ("table does not exist, skipping") are chatter for callers of a
     * portable store; keep them for debugging only. */
    fx_log_debug("store", "postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

/* Per-session settings: applied after every (re)connect. */
static int session_setup(struct pg_store *s)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SET search_path TO %s; SET lock_timeout = %d", s->schema_q,
             s->busy_ms > 0 ? s->busy_ms : 1); /* 0 would mean: wait forever */
    PGresult *res = PQexec(s->conn, sql);
    int rc = is_ok(res) ? 0 : result_error(s, res);
    PQclear(res);
    return rc;
}

/* The server closed an idle connection (restart, idle timeout): a FATAL
 * message and EOF are waiting on the socket. Reading them marks it bad. */
static void probe(struct pg_store *s)
{
    /* The message comes first and the EOF shows on the next read; a few
     * rounds at most, as an idle server has nothing else to say. */
    for (int round = 0; round < 4 && !lost(s); round++) {
        struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
        if (p.fd < 0 || poll(&p, 1, 0) <= 0)
            return;
        if (!PQconsumeInput(s->conn))
            return;
        PGnotify *n;
        while ((n = PQnotifies(s->conn)) != NULL)
            PQfreemem(n);
    }
}

static int reconnect(struct pg_store *s)
{
    int64_t start = fx_mono_ms();
    int delay = 50, attempts = 0;
    char why[512] = "";
    fx_log_warn("store", "connection to PostgreSQL at %s lost; reconnecting", s->where);
    for (;;) {
        attempts++;
        PQreset(s->conn);
        if (!lost(s)) {
            int rc = session_setup(s);
            if (rc == 0) {
                s->gen++;
                s->in_tx = 0;
                fx_log_info("store", "reconnected to PostgreSQL at %s after %d attempt%s", s->where,
                            attempts, attempts > 1 ? "s" : "");
                return 0;
            }
            if (!lost(s))
                return rc; /* the server refuses our settings: retrying will not help */
        }
        snprintf(why, sizeof(why), "%s", PQerrorMessage(s->conn));
        if (fx_mono_ms() - start + delay > s->reconnect_ms)
            break;
        fx_sleep_ms(delay);
        delay = delay >= 500 ? 1000 : delay * 2;
    }
    set_msg(s, "cannot reconnect to PostgreSQL at %s (%d attempts in %lld ms): %s", s->where,
            attempts, (long long)(fx_mono_ms() - start), why);
    return FX_ESTORE;
}

/*
 * Make sure the connection is usable before sending on it: reconnect when it
 * was lost outside a transaction; inside one, fail (the transaction is gone).
 */
static int ready(struct pg_store *s)
{
    if (s->copy) {
        set_msg(s, "a COPY into %s is in progress on this connection: end or abort it first",
                ((struct fx_copy *)s->copy)->table);
        return FX_EINVAL;
    }
    if (!s->in_tx && !lost(s))
        probe(s);
    if (!lost(s))
        return 0;
    if (s->in_tx) {
        set_msg(s,
                "connection to PostgreSQL at %s was lost inside a transaction, which the server "
                "rolled back: roll back and retry",
                s->where);
        return FX_ESTORE;
    }
    return reconnect(s);
}

/* A statement without parameters or results (BEGIN, ROLLBACK...). A
 * connection found dead on sending is re-established and the statement sent
 * again once when retry is set (only for statements that change nothing). */
static int run_ctl(struct pg_store *s, const char *sql, int retry)
{
    for (int attempt = 0;; attempt++) {
        int rc = ready(s);
        if (rc < 0)
            return rc;
        PGresult *res = PQexec(s->conn, sql);
        if (is_ok(res)) {
            PQclear(res);
            track_tx(s);
            return 0;
        }
        int dead = lost(s) && !s->in_tx;
        rc = result_error(s, res);
        PQclear(res);
        track_tx(s);
        if (!(retry && dead && attempt == 0))
            return rc;
    }
}

/* ---- connection ops ------------------------------------------------------ */

static void free_stmt(struct pg_stmt *e)
{
    PQclear(e->res);
    for (int i = 0; i < e->nparams; i++)
        free(e->params[i].buf);
    free(e->params);
    free(e->ptypes);
    free(e->values);
    free(e->lengths);
    free(e->formats);
    free(e->pgsql);
    free(e);
}

static void pg_close(struct fx_store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct pg_stmt *e = s->buckets[i];
        while (e) {
            struct pg_stmt *next = e->next;
            free_stmt(e);
            e = next;
        }
    }
    free(s->buckets);
    PQfinish(s->conn); /* the server rolls back an open transaction */
    for (int i = 0; i < NSECRETS; i++) {
        if (s->secrets[i]) {
            memset(s->secrets[i], 0, strlen(s->secrets[i]));
            free(s->secrets[i]);
        }
    }
    free(s->schema_q);
    free(s);
}

static int pg_exec(struct fx_store *base, const char *sql, struct fx_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    int rc = ready(s);
    if (rc < 0)
        return fx_err_set(err, rc, "%s", s->errmsg);
    PGresult *res = PQexec(s->conn, sql);
    if (is_ok(res)) {
        count_changes(s, res);
        PQclear(res);
        track_tx(s);
        return 0;
    }
    if (res && is_copy(res))
        rc = refuse_copy(s, res);
    else {
        rc = result_error(s, res);
        PQclear(res);
        track_tx(s);
    }
    return fx_err_set(err, rc, "%s", s->errmsg);
}

static int pg_begin(struct fx_store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->in_tx) {
        if (lost(s))
            return ready(s); /* explains: roll back first */
        set_msg(s, "a transaction is already open on this connection");
        return FX_ESTORE;
    }
    return run_ctl(s, "BEGIN ISOLATION LEVEL READ COMMITTED", 1);
}

static int pg_rollback(struct fx_store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->copy) {
        /* The caller gave up on the transaction with a copy open: end it as
         * failed; its handle reports that at fx_copy_end / abort. */
        struct pg_copy *c = s->copy;
        PQclear(copy_finish_wire(c, "the transaction was rolled back"));
        if (!c->base.rc) {
            c->base.rc = FX_ESTORE;
            snprintf(c->base.why, sizeof(c->base.why),
                     "the transaction was rolled back while the copy was open");
        }
    }
    if (lost(s) || PQtransactionStatus(s->conn) == PQTRANS_IDLE) {
        s->in_tx = 0; /* none open, or it died with the session */
        return 0;
    }
    PGresult *res = PQexec(s->conn, "ROLLBACK");
    int rc = 0;
    if (!is_ok(res) && !lost(s)) /* a dead session rolled back by itself */
        rc = result_error(s, res);
    PQclear(res);
    s->in_tx = 0;
    track_tx(s);
    return rc;
}

static int pg_commit(struct fx_store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->copy) {
        /* A commit must not leave its transaction open: fail it, copy included. */
        char keep[sizeof(s->errmsg)];
        snprintf(keep, sizeof(keep),
                 "commit while a COPY into %s was open: the copy failed and the transaction "
                 "was rolled back",
                 ((struct fx_copy *)s->copy)->table);
        pg_rollback(base);
        memcpy(s->errmsg, keep, sizeof(keep));
        return FX_EINVAL;
    }
    /* A session the server already ended (its message waits on the socket)
     * rolled back for sure: say so rather than "outcome unknown" below. */
    if (!lost(s))
        probe(s);
    if (lost(s)) {
        int was = s->in_tx;
        s->in_tx = 0;
        if (was)
            set_msg(s,
                    "connection to PostgreSQL at %s was lost inside the transaction: the "
                    "server rolled it back",
                    s->where);
        else
            set_msg(s, "commit without an open transaction (connection to %s lost)", s->where);
        return FX_ESTORE;
    }
    if (PQtransactionStatus(s->conn) == PQTRANS_IDLE) {
        s->in_tx = 0;
        set_msg(s, "commit without an open transaction");
        return FX_ESTORE;
    }
    PGresult *res = PQexec(s->conn, "COMMIT");
    int rc = 0;
    if (is_ok(res)) {
        /* COMMIT of a transaction a failed statement aborted "succeeds" as a
         * rollback: report it, keeping the first error's words. */
        if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
            char first[sizeof(s->errmsg)];
            memcpy(first, s->errmsg, sizeof(first));
            set_msg(s, "transaction rolled back at commit: a statement in it failed%s%.900s%s",
                    *first ? " (" : "", first, *first ? ")" : "");
            rc = FX_ESTORE;
        }
    } else if (lost(s)) {
        char why[512];
        snprintf(why, sizeof(why), "%s", PQerrorMessage(s->conn));
        one_line(why, sizeof(why));
        set_msg(s,
                "connection to PostgreSQL at %s lost during COMMIT: whether the transaction "
                "was committed is unknown (%s)",
                s->where, why);
        rc = FX_ESTORE;
    } else {
        rc = result_error(s, res); /* deferred constraint, serialization failure */
    }
    PQclear(res);
    s->in_tx = 0;
    track_tx(s);
    if (s->in_tx) { /* never leave a failed commit's transaction open */
        char keep[sizeof(s->errmsg)];
        memcpy(keep, s->errmsg, sizeof(keep));
        pg_rollback(base);
        memcpy(s->errmsg, keep, sizeof(keep));
    }
    return rc;
}

/* A byte that continues an identifier ($ included, as PostgreSQL allows). */
static int ident_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 0x80 || u == '_' || u == '$' || (u >= '0' && u <= '9') ||
           ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
}

/*
 * Rewrite `?` to $1..$n, skipping quoted text and comments: '...' (with ''
 * and, after E, backslash escapes), "..." identifiers, $tag$...$tag$ and
 * -- / nested block comments. Text after a top-level ';' may only be blanks
 * and comments (they are dropped): a second statement is FX_EINVAL, as is no
 * statement at all. *count receives the number of `?`.
 */
static int convert_sql(const char *sql, char **out, int *count, const char **why)
{
    size_t n = strlen(sql);
    struct fx_buf b;
    fx_buf_init(&b, 0);
    int params = 0, seen = 0, ended = 0;
    size_t i = 0;
    while (i < n) {
        char c = sql[i];
        size_t start = i;
        if (c == '-' && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n')
                i++;
        } else if (c == '/' && sql[i + 1] == '*') {
            int depth = 0;
            while (i < n) {
                if (sql[i] == '/' && sql[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (sql[i] == '*' && sql[i + 1] == '/') {
                    i += 2;
                    if (--depth == 0)
                        break;
                } else {
                    i++;
                }
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            i++;
        } else if (ended) {
            *why = "prepare takes one SQL statement (fx_store_exec runs several)";
            fx_buf_cleanup(&b);
            return FX_EINVAL;
        } else if (c == ';') {
            ended = 1;
            i++;
            continue; /* nothing from here on is emitted */
        } else if (c == '\'' || c == '"') {
            /* E'...' takes backslash escapes: E alone, not ending a word. */
            int esc = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                      (i < 2 || !ident_char(sql[i - 2]));
            i++;
            while (i < n) {
                if (esc && sql[i] == '\\' && i + 1 < n) {
                    i += 2;
                } else if (sql[i] == c) {
                    if (sql[i + 1] == c) {
                        i += 2;
                    } else {
                        i++;
                        break;
                    }
                } else {
                    i++;
                }
            }
            seen = 1;
        } else if (c == '$' && !(i > 0 && ident_char(sql[i - 1]))) {
            /* $tag$ opens a dollar quote ($1 is a parameter, not a tag; a$b
             * is an identifier). */
            size_t t = i + 1;
            while (t < n && ident_char(sql[t]) && sql[t] != '$' &&
                   !(t == i + 1 && sql[t] >= '0' && sql[t] <= '9'))
                t++;
            if (t < n && sql[t] == '$') {
                size_t taglen = t - i + 1;
                const char *close = NULL;
                for (size_t k = t + 1; k + taglen <= n; k++) {
                    if (memcmp(sql + k, sql + i, taglen) == 0) {
                        close = sql + k;
                        break;
                    }
                }
                i = close ? (size_t)(close - sql) + taglen : n;
            } else {
                i++;
            }
            seen = 1;
        } else if (c == '?') {
            fx_buf_printf(&b, "$%d", ++params);
            i++;
            seen = 1;
            continue;
        } else {
            i++;
            seen = 1;
        }
        if (!ended)
            fx_buf_append(&b, sql + start, i - start);
    }
    if (!seen) {
        *why = "no SQL statement to prepare";
        fx_buf_cleanup(&b);
        return FX_EINVAL;
    }
    *out = fx_buf_take(&b);
    *count = params;
    return 0;
}

static void set_nparams(struct pg_stmt *st, int n)
{
    if (n == st->nparams && st->params)
        return;
    for (int i = 0; i < st->nparams; i++)
        free(st->params[i].buf);
    free(st->params);
    free(st->ptypes);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    size_t k = n > 0 ? (size_t)n : 1;
    st->params = fx_calloc(k, sizeof(*st->params));
    st->ptypes = fx_calloc(k, sizeof(*st->ptypes));
    st->values = fx_calloc(k, sizeof(*st->values));
    st->lengths = fx_calloc(k, sizeof(*st->lengths));
    st->formats = fx_calloc(k, sizeof(*st->formats));
    st->nparams = n;
}

/* Prepare st on the current session and learn its parameter types. */
static int server_prepare(struct pg_stmt *st)
{
    struct pg_store *s = st->store;
    /* A fresh name each time: a name half-prepared before a failure, or
     * prepared before the table changed, is never reused in a session. */
    snprintf(st->name, sizeof(st->name), "fx%lu", ++s->next_name);
    PGresult *res = PQprepare(s->conn, st->name, st->pgsql, 0, NULL);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = result_error(s, res);
        goto out;
    }
    PQclear(res);
    res = PQdescribePrepared(s->conn, st->name);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = result_error(s, res);
        goto out;
    }
    set_nparams(st, PQnparams(res));
    for (int i = 0; i < st->nparams; i++)
        st->ptypes[i] = PQparamtype(res, i);
    st->ncols = PQnfields(res);
    st->gen = s->gen;
out:
    PQclear(res);
    track_tx(s);
    return rc;
}

static void stmt_clear(struct pg_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
    st->row = st->nrows = 0;
    st->state = ST_READY;
}

static void unbind_all(struct pg_stmt *st)
{
    for (int i = 0; i < st->nparams; i++)
        st->params[i].kind = P_NULL;
}

static void cache_grow(struct pg_store *s)
{
    size_t n = s->nbuckets * 2;
    struct pg_stmt **b = fx_calloc(n, sizeof(*b));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct pg_stmt *e = s->buckets[i];
        while (e) {
            struct pg_stmt *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static int pg_prepare(struct fx_store *base, const char *sql, struct fx_stmt **out,
                      struct fx_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    size_t len = strlen(sql);
    uint64_t h = fx_hash64(sql, len);
    for (struct pg_stmt *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->next) {
        if (e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0) {
            stmt_clear(e);
            unbind_all(e);
            *out = &e->base;
            return 0;
        }
    }
    char *pgsql = NULL;
    const char *why = NULL;
    int count = 0;
    int rc = convert_sql(sql, &pgsql, &count, &why);
    if (rc < 0) {
        set_msg(s, "%s", why);
        fx_err_value(err, sql, len);
        return fx_err_set(err, rc, "store: %s", s->errmsg);
    }
    struct pg_stmt *e = fx_calloc(1, sizeof(*e) + len + 1);
    e->base.vt = &pg_vtbl;
    e->store = s;
    e->hash = h;
    e->len = len;
    e->pgsql = pgsql;
    memcpy(e->sql, sql, len + 1);
    set_nparams(e, count);
    /* Preparing changes nothing: a connection found dead on sending may be
     * re-established and the statement sent again, once. */
    for (int attempt = 0;; attempt++) {
        if ((rc = ready(s)) < 0)
            break;
        rc = server_prepare(e);
        if (rc == 0 || !(lost(s) && !s->in_tx && attempt == 0))
            break;
    }
    if (rc < 0) {
        free_stmt(e);
        fx_err_value(err, sql, len);
        return fx_err_set(err, rc, "%s", s->errmsg);
    }
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

static int64_t pg_changes(struct fx_store *base)
{
    return ((struct pg_store *)base)->changes;
}

static const char *pg_errmsg(struct fx_store *base)
{
    return ((struct pg_store *)base)->errmsg;
}

static const char *pg_dialect(const struct fx_store *base)
{
    (void)base;
    return "postgresql";
}

/* ---- statement ops ------------------------------------------------------- */

#define STMT(base) ((struct pg_stmt *)(base))

static struct param *param_at(struct pg_stmt *st, int idx)
{
    if (idx < 1 || idx > st->nparams) {
        set_msg(st->store, "parameter index %d out of range (the statement has %d)", idx,
                st->nparams);
        return NULL;
    }
    return &st->params[idx - 1];
}

static int pg_bind_int(struct fx_stmt *base, int idx, int64_t v)
{
    struct param *p = param_at(STMT(base), idx);
    if (!p)
        return FX_EINVAL;
    p->kind = P_INT;
    snprintf(p->num, sizeof(p->num), "%lld", (long long)v);
    return 0;
}

static int pg_bind_double(struct fx_stmt *base, int idx, double v)
{
    struct param *p = param_at(STMT(base), idx);
    if (!p)
        return FX_EINVAL;
    p->kind = P_DOUBLE;
    /* 17 significant digits round-trip every double; the server reads
     * "inf", "-inf" and "nan" too. */
    snprintf(p->num, sizeof(p->num), "%.17g", v);
    return 0;
}

static int check_text(struct pg_stmt *st, const char *s, size_t len)
{
    if (!s && len)
        return FX_EINVAL;
    if (len > INT_MAX - 1) {
        set_msg(st->store, "text parameter of %zu bytes is too long", len);
        return FX_ETOOBIG;
    }
    return 0;
}

static void copy_into(struct param *p, const char *s, size_t len)
{
    if (p->cap < len + 1) {
        p->cap = len + 1 > 64 ? len + 1 : 64;
        free(p->buf);
        p->buf = fx_malloc(p->cap);
    }
    if (len)
        memcpy(p->buf, s, len);
    p->buf[len] = '\0';
}

/* The parameter idx for text s (checked), or NULL with *rc set. */
static struct param *text_param(struct fx_stmt *base, int idx, const char *s, size_t len, int *rc)
{
    struct param *p = param_at(STMT(base), idx);
    *rc = p ? check_text(STMT(base), s, len) : FX_EINVAL;
    return *rc < 0 ? NULL : p;
}

static int pg_bind_text(struct fx_stmt *base, int idx, const char *s, size_t len)
{
    int rc;
    struct param *p = text_param(base, idx, s, len, &rc);
    if (!p)
        return rc;
    copy_into(p, s, len);
    p->kind = P_TEXT;
    p->len = len;
    return 0;
}

static int pg_bind_text_ref(struct fx_stmt *base, int idx, const char *s, size_t len)
{
    int rc;
    struct param *p = text_param(base, idx, s, len, &rc);
    if (!p)
        return rc;
    p->kind = P_REF;
    p->ref = s ? s : "";
    p->len = len;
    return 0;
}

static int pg_bind_null(struct fx_stmt *base, int idx)
{
    struct param *p = param_at(STMT(base), idx);
    if (!p)
        return FX_EINVAL;
    p->kind = P_NULL;
    return 0;
}

static int text_type(Oid t)
{
    return t == TEXTOID || t == VARCHAROID || t == BPCHAROID;
}

/* Fill the arrays PQexecPrepared takes from the bound parameters. */
static void marshal(struct pg_stmt *st)
{
    for (int i = 0; i < st->nparams; i++) {
        struct param *p = &st->params[i];
        st->formats[i] = 0;
        st->lengths[i] = 0;
        switch (p->kind) {
        case P_NULL:
            st->values[i] = NULL;
            break;
        case P_INT:
        case P_DOUBLE:
            st->values[i] = p->num;
            break;
        default: {
            const char *data = p->kind == P_TEXT ? p->buf : p->ref;
            if (text_type(st->ptypes[i])) {
                /* Binary text is the bytes themselves: no NUL needed, no copy. */
                st->values[i] = data;
                st->lengths[i] = (int)p->len;
                st->formats[i] = 1;
            } else {
                /* Text format reads up to a NUL: a borrowed buffer may lack one. */
                if (p->kind == P_REF)
                    copy_into(p, p->ref, p->len);
                st->values[i] = p->buf;
            }
            break;
        }
        }
    }
}

/* A cached plan whose result columns changed (table altered since the
 * prepare) cannot run: the statement must be prepared again. */
static int plan_changed(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return state && strcmp(state, "0A000") == 0 && msg && strstr(msg, "cached plan");
}

static int execute(struct pg_stmt *st)
{
    struct pg_store *s = st->store;
    stmt_clear(st);
    for (int attempt = 0;; attempt++) {
        int rc = ready(s);
        if (rc < 0)
            return rc;
        if (st->gen != s->gen && (rc = server_prepare(st)) < 0)
            return rc;
        marshal(st);
        PGresult *res =
            PQexecPrepared(s->conn, st->name, st->nparams, st->values, st->lengths, st->formats, 0);
        ExecStatusType t = PQresultStatus(res);
        if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
            track_tx(s);
            count_changes(s, res);
            if (t == PGRES_TUPLES_OK && PQntuples(res) > 0) {
                st->res = res;
                st->nrows = PQntuples(res);
                st->row = 0;
                st->state = ST_ROWS;
                return FX_STORE_ROW;
            }
            PQclear(res);
            st->state = ST_DONE;
            return FX_STORE_DONE;
        }
        if (res && is_copy(res))
            return refuse_copy(s, res);
        if (res && plan_changed(res) && attempt == 0) {
            track_tx(s);
            PQclear(res);
            st->gen = 0; /* prepared again before the next execution */
            if (!s->in_tx)
                continue; /* nothing ran: run it again at once */
            set_msg(s, "a table used by this statement changed inside the transaction: roll back "
                       "and retry");
            return FX_ESTORE;
        }
        rc = result_error(s, res);
        PQclear(res);
        track_tx(s);
        return rc;
    }
}

static int pg_step(struct fx_stmt *base)
{
    struct pg_stmt *st = STMT(base);
    if (st->state == ST_ROWS) {
        if (++st->row < st->nrows)
            return FX_STORE_ROW;
        stmt_clear(st);
        st->state = ST_DONE;
        return FX_STORE_DONE;
    }
    /* Ready, or done: stepping again runs it again with the same bindings. */
    return execute(st);
}

/* The current row's value of col, or NULL (no row, no such column, SQL NULL). */
static const char *cell(struct pg_stmt *st, int col)
{
    if (st->state != ST_ROWS || col < 0 || col >= PQnfields(st->res) ||
        PQgetisnull(st->res, st->row, col))
        return NULL;
    return PQgetvalue(st->res, st->row, col);
}

static int64_t pg_col_int(struct fx_stmt *base, int col)
{
    struct pg_stmt *st = STMT(base);
    const char *v = cell(st, col);
    if (!v)
        return 0;
    if (PQftype(st->res, col) == BOOLOID)
        return v[0] == 't';
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*end == '.' || *end == 'e' || *end == 'E' || (errno == ERANGE && end != v)) {
        /* numeric or floating text: truncate toward zero, saturating */
        double d = strtod(v, NULL);
        if (d != d)
            return 0;
        if (d >= 9223372036854775807.0)
            return INT64_MAX;
        if (d <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)d;
    }
    return x;
}

static double pg_col_double(struct fx_stmt *base, int col)
{
    struct pg_stmt *st = STMT(base);
    const char *v = cell(st, col);
    if (!v)
        return 0.0;
    if (PQftype(st->res, col) == BOOLOID)
        return v[0] == 't' ? 1.0 : 0.0;
    return strtod(v, NULL);
}

static const char *pg_col_text(struct fx_stmt *base, int col, size_t *len)
{
    struct pg_stmt *st = STMT(base);
    const char *v = cell(st, col);
    if (len)
        *len = v ? (size_t)PQgetlength(st->res, st->row, col) : 0;
    return v;
}

static int pg_col_is_null(struct fx_stmt *base, int col)
{
    return cell(STMT(base), col) == NULL;
}

static int pg_ncols(struct fx_stmt *base)
{
    struct pg_stmt *st = STMT(base);
    return st->res ? PQnfields(st->res) : st->ncols;
}

static void pg_reset(struct fx_stmt *base)
{
    stmt_clear(STMT(base));
    unbind_all(STMT(base));
}

/* ---- bulk load ------------------------------------------------------------ */

#define PGCOPY(base) ((struct pg_copy *)(base))

/* Room for n more bytes in the copy buffer. */
static void copy_reserve(struct pg_copy *c, size_t n)
{
    if (c->len + n <= c->cap)
        return;
    size_t cap = c->cap ? c->cap : COPY_FLUSH + 4096;
    while (cap < c->len + n)
        cap *= 2;
    c->buf = fx_realloc(c->buf, cap);
    c->cap = cap;
}

/* Hand the buffered rows to libpq (which sends them). */
static int copy_flush(struct pg_copy *c)
{
    struct pg_store *s = c->store;
    size_t off = 0;
    while (off < c->len) {
        size_t n = c->len - off > INT_MAX ? INT_MAX : c->len - off;
        if (PQputCopyData(s->conn, c->buf + off, (int)n) != 1) {
            set_msg(s, "sending rows to PostgreSQL at %s failed: %s", s->where,
                    PQerrorMessage(s->conn));
            snprintf(c->base.why, sizeof(c->base.why), "%.380s", s->errmsg);
            c->send_failed = 1;
            return FX_ESTORE;
        }
        off += n;
    }
    c->len = 0;
    return 0;
}

static int pg_copy_begin(struct fx_store *base, const char *table, const char *const *cols,
                         size_t ncols, struct fx_copy **out, struct fx_err *err)
{
    struct pg_store *s = (struct pg_store *)base;
    int rc = ready(s);
    if (rc < 0)
        return fx_err_set(err, rc, "copy into %s: %s", table, s->errmsg);
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "COPY %s (", table);
    for (size_t i = 0; i < ncols; i++)
        fx_buf_printf(&b, "%s%s", i ? ", " : "", cols[i]);
    fx_buf_puts(&b, ") FROM STDIN");
    PGresult *res = PQexec(s->conn, b.data);
    fx_buf_cleanup(&b);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = result_error(s, res);
        PQclear(res);
        track_tx(s);
        return fx_err_set(err, rc < 0 ? rc : FX_ESTORE, "copy into %s: %s", table, s->errmsg);
    }
    PQclear(res);
    /* no track_tx here: during COPY the status reads "active", not "in a
     * transaction"; copy_finish_wire tracks it once the copy is over */
    struct pg_copy *c = fx_calloc(1, sizeof(*c));
    c->base.vt = &pg_vtbl;
    c->base.ncols = ncols;
    snprintf(c->base.table, sizeof(c->base.table), "%s", table);
    c->store = s;
    c->open = 1;
    copy_reserve(c, COPY_FLUSH);
    s->copy = c;
    *out = &c->base;
    return 0;
}

static int pg_copy_put_int(struct fx_copy *base, int64_t v)
{
    struct pg_copy *c = PGCOPY(base);
    copy_reserve(c, 24);
    char *w = c->buf + c->len;
    if (base->col)
        *w++ = '\t';
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *w++ = '-';
    while (n)
        *w++ = tmp[--n];
    c->len = (size_t)(w - c->buf);
    return 0;
}

/* COPY text format: these bytes must be written as a backslash escape (the
 * delimiter, row end, carriage return and the escape itself); 0 = as is. */
static const char copy_escape[256] = {['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r', ['\\'] = '\\'};

static int pg_copy_put_text(struct fx_copy *base, const char *s, size_t len)
{
    struct pg_copy *c = PGCOPY(base);
    if (memchr(s, '\0', len)) {
        snprintf(base->why, sizeof(base->why),
                 "row %lld, field %zu: text with a NUL byte (PostgreSQL text cannot hold one)",
                 (long long)base->rows + 1, base->col + 1);
        return FX_EINVAL;
    }
    copy_reserve(c, 2 * len + 1);
    char *w = c->buf + c->len;
    if (base->col)
        *w++ = '\t';
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    for (; p < end; p++) {
        char e = copy_escape[*p];
        if (e) {
            *w++ = '\\';
            *w++ = e;
        } else {
            *w++ = (char)*p;
        }
    }
    c->len = (size_t)(w - c->buf);
    return 0;
}

static int pg_copy_put_null(struct fx_copy *base)
{
    struct pg_copy *c = PGCOPY(base);
    copy_reserve(c, 3);
    if (base->col)
        c->buf[c->len++] = '\t';
    c->buf[c->len++] = '\\';
    c->buf[c->len++] = 'N';
    return 0;
}

static int pg_copy_end_row(struct fx_copy *base)
{
    struct pg_copy *c = PGCOPY(base);
    copy_reserve(c, 1);
    c->buf[c->len++] = '\n';
    return c->len >= COPY_FLUSH ? copy_flush(c) : 0;
}

static void copy_free(struct pg_copy *c)
{
    free(c->buf);
    free(c);
}

static int pg_copy_end(struct fx_copy *base, int64_t *rows, struct fx_err *err)
{
    struct pg_copy *c = PGCOPY(base);
    struct pg_store *s = c->store;
    int rc = base->rc;
    if (rc == 0 && c->open && c->len)
        rc = copy_flush(c);
    if (c->open) {
        /* never a successful end after a failure: the rows would be cut */
        PGresult *res = copy_finish_wire(c, rc ? "the client failed the copy" : NULL);
        /* After a failed send, the server's own error, when it sent one
         * (not the echo of our failing the copy, 57014), says more. */
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (c->send_failed && state && strcmp(state, "57014") != 0) {
            rc = 0;
            base->why[0] = '\0';
        }
        if (rc == 0) {
            if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
                if (rows)
                    *rows = strtoll(PQcmdTuples(res), NULL, 10);
            } else {
                rc = result_error(s, res);
                if (rc == 0)
                    rc = FX_ESTORE;
                /* where in the data: "COPY t, line 3, column i: "abc"" */
                const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
                if (ctx) {
                    char first[sizeof(s->errmsg)];
                    memcpy(first, s->errmsg, sizeof(first));
                    set_msg(s, "%s (at %.*s)", first, (int)strcspn(ctx, "\n"), ctx);
                }
            }
        }
        PQclear(res);
    }
    if (rc < 0) {
        fx_err_set(err, rc, "copy into %s: %s", base->table, base->why[0] ? base->why : s->errmsg);
        if (base->why[0])
            set_msg(s, "copy into %s: %s", base->table, base->why);
    }
    copy_free(c);
    return rc;
}

static void pg_copy_abort(struct fx_copy *base)
{
    struct pg_copy *c = PGCOPY(base);
    if (c->open)
        PQclear(copy_finish_wire(c, "aborted by the client"));
    copy_free(c);
}

static const struct fx_store_vtbl pg_vtbl = {
    .close = pg_close,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .prepare = pg_prepare,
    .bind_int = pg_bind_int,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_text_ref = pg_bind_text_ref,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .col_int = pg_col_int,
    .col_double = pg_col_double,
    .col_text = pg_col_text,
    .col_is_null = pg_col_is_null,
    .ncols = pg_ncols,
    .reset = pg_reset,
    .changes = pg_changes,
    .errmsg = pg_errmsg,
    .dialect = pg_dialect,
    .copy_begin = pg_copy_begin,
    .copy_put_int = pg_copy_put_int,
    .copy_put_text = pg_copy_put_text,
    .copy_put_null = pg_copy_put_null,
    .copy_end_row = pg_copy_end_row,
    .copy_end = pg_copy_end,
    .copy_abort = pg_copy_abort,
};

/* ---- open ---------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [p, p+n) into a new string; NULL on a malformed escape. */
static char *pct_decode(const char *p, size_t n)
{
    char *out = fx_malloc(n + 1), *w = out;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            *w++ = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        *w++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *w = '\0';
    return out;
}

static void add_secret(struct pg_store *s, const char *p, size_t n)
{
    if (n == 0)
        return;
    for (int i = 0; i < NSECRETS; i += 2) {
        if (!s->secrets[i]) {
            s->secrets[i] = fx_strndup(p, n);
            s->secrets[i + 1] = pct_decode(p, n); /* NULL if malformed */
            return;
        }
    }
}

/* URL option "key=N" with 0 <= N <= max: 1 and *out set, 0 when key does not
 * match, < 0 for a bad value. */
static int int_option(const char *q, size_t plen, const char *key, long max, int *out)
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
    *out = (int)v;
    return 1;
}

/*
 * location = "//user:password@host:port/db?params" (what follows the
 * scheme). Builds the URL libpq gets (our options removed, the scheme in the
 * lower case libpq wants), reads our options, and records the password's
 * forms for scrubbing.
 */
static int parse_url(struct pg_store *s, const char *location, char **pq_url, struct fx_err *err)
{
    if (strncmp(location, "//", 2) != 0)
        return fx_err_set(err, FX_EINVAL,
                          "store: a PostgreSQL URL looks like "
                          "postgresql://user:password@host:port/database");
    /* Credentials first, so no later message can show them. libpq's rule:
     * the user part ends at the first '@' met before any '/'. */
    const char *auth = location + 2;
    size_t upto = strcspn(auth, "@/");
    if (auth[upto] == '@') {
        const char *colon = memchr(auth, ':', upto);
        if (colon)
            add_secret(s, colon + 1, (size_t)(auth + upto - colon - 1));
    }
    const char *q = strchr(location, '?');
    for (const char *p = q; p && *p;) {
        p++;
        size_t plen = strcspn(p, "&");
        if (plen > 9 && strncmp(p, "password=", 9) == 0)
            add_secret(s, p + 9, plen - 9);
        p += plen;
    }
    for (const char *p = location; *p; p++) {
        if (*p == '%' && (hexval(p[1]) < 0 || hexval(p[2]) < 0))
            return fx_err_set(err, FX_EINVAL,
                              "store: PostgreSQL URL has a malformed percent-escape (expected "
                              "%%XX)");
    }

    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "postgresql:");
    fx_buf_append(&b, location, q ? (size_t)(q - location) : strlen(location));
    int nkept = 0;
    for (const char *p = q; p && *p;) {
        p++;
        size_t plen = strcspn(p, "&");
        int r;
        if ((r = int_option(p, plen, "busy_timeout", MAX_BUSY_MS, &s->busy_ms)) != 0) {
            if (r < 0) {
                fx_buf_cleanup(&b);
                return fx_err_set(err, FX_EINVAL,
                                  "store: PostgreSQL busy_timeout must be 0..%d milliseconds",
                                  MAX_BUSY_MS);
            }
        } else if ((r = int_option(p, plen, "reconnect_timeout", MAX_RECONNECT_MS,
                                   &s->reconnect_ms)) != 0) {
            if (r < 0) {
                fx_buf_cleanup(&b);
                return fx_err_set(err, FX_EINVAL,
                                  "store: PostgreSQL reconnect_timeout must be 0..%d milliseconds",
                                  MAX_RECONNECT_MS);
            }
        } else if (plen) {
            fx_buf_putc(&b, nkept++ ? '&' : '?');
            fx_buf_append(&b, p, plen);
        }
        p += plen;
    }
    *pq_url = fx_buf_take(&b);
    return 0;
}

static const char *opt(PQconninfoOption *o, const char *key)
{
    for (; o && o->keyword; o++) {
        if (strcmp(o->keyword, key) == 0)
            return o->val && *o->val ? o->val : NULL;
    }
    return NULL;
}

/* "host:port (database D, user U)" for messages, from the parsed URL. */
static int describe_target(struct pg_store *s, const char *pq_url, struct fx_err *err)
{
    char *perr = NULL;
    PQconninfoOption *o = PQconninfoParse(pq_url, &perr);
    if (!o) {
        char m[512];
        snprintf(m, sizeof(m), "%s", perr ? perr : "out of memory");
        PQfreemem(perr);
        one_line(m, sizeof(m));
        scrub(s->secrets, m);
        return fx_err_set(err, FX_EINVAL, "store: invalid PostgreSQL URL: %s", m);
    }
    const char *host = opt(o, "hostaddr");
    if (!host)
        host = opt(o, "host");
    if (!host)
        host = getenv("PGHOST");
    const char *port = opt(o, "port");
    if (!port)
        port = getenv("PGPORT");
    const char *db = opt(o, "dbname");
    const char *user = opt(o, "user");
    snprintf(s->where, sizeof(s->where), "%s:%s (database %s%s%s)", host ? host : "localhost",
             port ? port : "5432", db ? db : "default", user ? ", user " : "", user ? user : "");
    PQconninfoFree(o);
    scrub(s->secrets, s->where);
    return 0;
}

/* The service's schema: created when missing (CREATE SCHEMA needs the right
 * to create in the database even with IF NOT EXISTS, so look first: a
 * deployment may create the schemas and grant less). */
static int ensure_schema(struct pg_store *s, const char *name)
{
    const char *vals[1] = {name};
    PGresult *res = PQexecParams(s->conn, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, NULL,
                                 vals, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = result_error(s, res);
    } else if (PQntuples(res) == 0) {
        PQclear(res);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", s->schema_q);
        res = PQexec(s->conn, sql);
        /* 23505: another process created it at the same moment. */
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!is_ok(res) && !(state && strcmp(state, "23505") == 0))
            rc = result_error(s, res);
    }
    PQclear(res);
    return rc;
}

static int pg_open(const char *url, const char *location, const char *name, struct fx_store **out,
                   struct fx_err *err)
{
    (void)url;
    if (strlen(name) > 63) /* PostgreSQL would truncate the schema name */
        return fx_err_set(err, FX_EINVAL,
                          "store: database name '%s' is too long for a PostgreSQL schema "
                          "(63 bytes at most)",
                          name);
    char *pq_url = NULL;
    struct pg_store *s = fx_calloc(1, sizeof(*s));
    s->base.vt = &pg_vtbl;
    s->busy_ms = DEFAULT_BUSY_MS;
    s->reconnect_ms = DEFAULT_RECONNECT_MS;
    s->nbuckets = 64;
    s->buckets = fx_calloc(s->nbuckets, sizeof(*s->buckets));
    s->gen = 1;
    /* The front allows only [A-Za-z0-9_-] in names: quoting is enough. */
    s->schema_q = fx_asprintf("\"%s\"", name);
    int rc = parse_url(s, location, &pq_url, err);
    if (rc < 0)
        goto out;
    if ((rc = describe_target(s, pq_url, err)) < 0)
        goto out;

    /* Later keywords override earlier ones, the URL's included. */
    const char *const keys[] = {"connect_timeout", "dbname", "fallback_application_name",
                                "client_encoding", NULL};
    const char *const vals[] = {CONNECT_TIMEOUT_S, pq_url, "fluxo", "UTF8", NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn) {
        rc = fx_err_set(err, FX_ENOMEM, "store: cannot allocate a PostgreSQL connection");
        goto out;
    }
    if (lost(s)) {
        set_msg(s, "%s", PQerrorMessage(s->conn));
        rc = fx_err_set(err, FX_ESTORE, "store: cannot connect to PostgreSQL at %s: %s", s->where,
                        s->errmsg);
        goto out;
    }
    PQsetNoticeProcessor(s->conn, notice_cb, NULL);
    if (PQserverVersion(s->conn) < MIN_SERVER_VERSION) {
        rc = fx_err_set(err, FX_ENOTSUP,
                        "store: PostgreSQL at %s is version %d; the store needs 9.5 or later",
                        s->where, PQserverVersion(s->conn));
        goto out;
    }
    if ((rc = ensure_schema(s, name)) < 0) {
        fx_err_set(err, rc, "store: cannot create schema %s at %s: %s", s->schema_q, s->where,
                   s->errmsg);
        goto out;
    }
    if ((rc = session_setup(s)) < 0) {
        fx_err_set(err, rc, "store: cannot set up the session at %s: %s", s->where, s->errmsg);
        goto out;
    }
    s->errmsg[0] = '\0';
    *out = &s->base;
    s = NULL;
    rc = 0;
out:
    if (s)
        pg_close(&s->base);
    free(pq_url);
    return rc;
}

const struct fx_store_ops fx__store_pg_ops = {
    .name = "postgresql",
    .scheme = "postgresql",
    .open = pg_open,
    .vt = &pg_vtbl,
};

/* libpq's short scheme, the same backend. */
const struct fx_store_ops fx__store_postgres_ops = {
    .name = "postgresql",
    .scheme = "postgres",
    .open = pg_open,
    .vt = &pg_vtbl,
};
