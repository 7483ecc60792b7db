/* SPDX-License-Identifier: MIT */
/*
 * Embedded bus backend: "local:DIR" keeps every queue in DIR/bus.db, a SQLite
 * database of its own (never the service stores), shared by every handle,
 * thread and process that opens the same DIR.
 *
 * Design notes
 *
 * Tables. messages holds each published CloudEvent body once, with refs =
 * number of delivery rows pointing at it. deliveries holds one row per
 * (group, message): the queue itself. Publishing is one transaction that
 * inserts the messages and a delivery for each group whose bindings match
 * (fx_topic_match against the bindings read inside the same transaction, so
 * a group sees exactly the messages committed after its declaration). Ack
 * deletes the delivery and, when refs reaches 0, the message; dead letters
 * keep theirs for inspection.
 *
 * States: 0 ready, 1 leased, 2 waiting (blocked behind an earlier message of
 * the same key), 3 dead. due_ms is when a row becomes claimable: for ready
 * rows the publish time or the end of a nack backoff, for leased rows the end
 * of the lease. Claiming is a single index seek on the partial index
 * (gid, due_ms, seq) WHERE state < 2: "the earliest-available deliverable
 * row", O(log n) however large the backlog or the set of delayed retries.
 * Fresh messages are therefore served in publish order; a retry whose backoff
 * ended at T takes its turn before messages published after T (never starved
 * by a backlog).
 *
 * Order per key: at most one delivery per (group, key) is ready or leased,
 * the lowest seq among the non-dead ones; later ones are inserted as waiting
 * and promoted (waiting -> ready) when the head is acked or dead-lettered.
 * A nacked head stays ready (with its backoff) and so keeps blocking its key.
 * The claim therefore never has to look at other rows of the key.
 *
 * Leases: a claim sets state leased, attempts + 1, due_ms = now + lease_ms
 * and consumer = this handle's id (a UUIDv7). Ack and nack only touch a row
 * still leased by this handle at the same attempt: otherwise FX_ENOTFOUND
 * (the lease expired and someone else took it). A claim that finds an
 * expired lease whose attempts already reached max_attempts dead-letters it
 * ("lease expired N times") instead of handing out a crash loop again.
 * Times are wall-clock ms (fx_now_ms) because they are compared across
 * processes and restarts.
 *
 * Durability: WAL. Publish commits run with synchronous=FULL: the WAL is
 * fsynced before fx_bus_publish returns 0, so a confirmed publish survives a
 * process kill and a power loss (one fsync per batch: batch publishes).
 * Claims, acks and nacks run with synchronous=NORMAL: their commit is in the
 * WAL (OS page cache) before returning, so they survive a process crash; a
 * power loss may roll back the last few of them, which at-least-once
 * delivery tolerates (the message comes back). WAL frames are replayed in
 * order, so such a loss is always a suffix and never reorders state.
 * secure_delete=FAST (Debian builds SQLite with it ON): with ON, every ack
 * rewrites the freed overflow pages of its body as zeros, ~6x the bytes
 * written per acked 100 KB message; FAST still zeroes deleted content on
 * b-tree pages, and freed overflow pages keep stale bytes until reused.
 * wal_autocheckpoint=8192 pages (32 MB): a receive+ack writes ~8 WAL pages,
 * and each checkpoint costs two fsyncs, so checkpointing every 1000 pages
 * (the default) cost ~30% of consumer throughput; journal_size_limit trims
 * the WAL file back to 64 MB afterwards.
 *
 * Concurrency: every write is a short BEGIN IMMEDIATE transaction (busy
 * timeout 10 s, BEGIN retried on SQLITE_BUSY until that deadline); bodies are
 * copied out in the claim and decoded after the commit. An idle receive
 * polls with a read-only query (no write lock) and sleeps 1 ms growing to
 * 20 ms; handles of one process on the same DIR also share a condition
 * variable signalled after each publish/ack/nack commit, so in-process
 * consumers wake at once. Open handles after fork(), never before.
 */
#include "bus/bus_int.h"
#include "fluxo/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 10000
#define POLL_MIN_MS 1
#define POLL_MAX_MS 20
#define DEAD_PAGE 64

enum { ST_READY = 0, ST_LEASED = 1, ST_WAITING = 2, ST_DEAD = 3 };

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS groups("
    " gid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " max_attempts INTEGER NOT NULL, backoff_ms INTEGER NOT NULL,"
    " backoff_max_ms INTEGER NOT NULL, lease_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS bindings("
    " gid INTEGER NOT NULL, pattern TEXT NOT NULL, PRIMARY KEY(gid, pattern)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS messages("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, routing_key TEXT NOT NULL,"
    " key TEXT, body BLOB NOT NULL, created_ms INTEGER NOT NULL, refs INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries("
    " gid INTEGER NOT NULL, seq INTEGER NOT NULL, state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, expiries INTEGER NOT NULL DEFAULT 0,"
    " due_ms INTEGER NOT NULL, key TEXT, consumer TEXT, last_error TEXT,"
    " PRIMARY KEY(gid, seq)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(gid, due_ms, seq) WHERE state < 2;"
    "CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries(gid, key, seq)"
    " WHERE key IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(gid, seq) WHERE state = 3;";

/* Prepared statements of a handle, by purpose. INDEXED BY pins the plans
 * (without ANALYZE statistics SQLite would scan a group's primary-key range
 * for the key and dead-letter lookups); a plan that cannot use its index
 * fails at prepare time instead of degrading silently. */
enum stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SYNC_FULL,
    S_SYNC_NORMAL,
    S_GROUP,
    S_BINDINGS,
    S_MSG_INSERT,
    S_DLV_INSERT,
    S_KEY_BUSY,
    S_PICK,
    S_LEASE,
    S_EXPIRE_DEAD,
    S_BODY,
    S_ACK,
    S_NACK,
    S_PROMOTE,
    S_UNREF,
    S_MSG_DELETE,
    S_DEPTH,
    S_DEAD_PAGE,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [S_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [S_GROUP] = "SELECT gid, max_attempts, backoff_ms, backoff_max_ms, lease_ms"
                " FROM groups WHERE name = ?1",
    [S_BINDINGS] = "SELECT b.gid, b.pattern FROM bindings b ORDER BY b.gid",
    [S_MSG_INSERT] = "INSERT INTO messages(id, routing_key, key, body, created_ms, refs)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_DLV_INSERT] = "INSERT INTO deliveries(gid, seq, state, due_ms, key)"
                     " VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_KEY_BUSY] = "SELECT 1 FROM deliveries INDEXED BY deliveries_key"
                   " WHERE gid = ?1 AND key = ?2 AND state < 3 LIMIT 1",
    [S_PICK] = "SELECT seq, state, attempts, expiries, key, last_error"
               " FROM deliveries INDEXED BY deliveries_due"
               " WHERE gid = ?1 AND state < 2 AND due_ms <= ?2 ORDER BY due_ms, seq LIMIT 1",
    [S_LEASE] = "UPDATE deliveries SET state = 1, attempts = attempts + 1,"
                " expiries = expiries + ?3, due_ms = ?4, consumer = ?5"
                " WHERE gid = ?1 AND seq = ?2",
    [S_EXPIRE_DEAD] = "UPDATE deliveries SET state = 3, expiries = expiries + 1,"
                      " consumer = NULL, last_error = ?3 WHERE gid = ?1 AND seq = ?2",
    [S_BODY] = "SELECT body FROM messages WHERE seq = ?1",
    [S_ACK] = "DELETE FROM deliveries WHERE gid = ?1 AND seq = ?2 AND state = 1"
              " AND consumer = ?3 AND attempts = ?4 RETURNING key",
    [S_NACK] = "UPDATE deliveries SET state = ?5, due_ms = ?6, last_error = ?7, consumer = NULL"
               " WHERE gid = ?1 AND seq = ?2 AND state = 1 AND consumer = ?3 AND attempts = ?4"
               " RETURNING key",
    [S_PROMOTE] = "UPDATE deliveries SET state = 0 WHERE gid = ?1 AND seq ="
                  " (SELECT seq FROM deliveries INDEXED BY deliveries_key"
                  " WHERE gid = ?1 AND key = ?2 AND state = 2"
                  " ORDER BY seq LIMIT 1)",
    [S_UNREF] = "UPDATE messages SET refs = refs - 1 WHERE seq = ?1 RETURNING refs",
    [S_MSG_DELETE] = "DELETE FROM messages WHERE seq = ?1",
    [S_DEPTH] = "SELECT count(*) FROM deliveries WHERE gid = ?1 AND state < 3",
    [S_DEAD_PAGE] = "SELECT d.seq, d.attempts, d.last_error, m.body FROM deliveries d"
                    " INDEXED BY deliveries_dead JOIN messages m ON m.seq = d.seq"
                    " WHERE d.gid = ?1 AND d.state = 3 AND d.seq > ?2 ORDER BY d.seq LIMIT ?3",
};

/* ---- in-process wake-ups ---------------------------------------------- */

/* One per DIR (by device and inode) with open handles in this process. */
struct wake {
    struct wake *next;
    dev_t dev;
    ino_t ino;
    int refs;
    uint64_t gen; /* bumped after each commit that may make work claimable */
    pthread_cond_t cond;
};

static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wake *wakes;

static struct wake *wake_get(const struct stat *st)
{
    pthread_mutex_lock(&wake_mu);
    struct wake *w = wakes;
    while (w && !(w->dev == st->st_dev && w->ino == st->st_ino))
        w = w->next;
    if (!w) {
        w = fx_calloc(1, sizeof(*w));
        w->dev = st->st_dev;
        w->ino = st->st_ino;
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &attr);
        pthread_condattr_destroy(&attr);
        w->next = wakes;
        wakes = w;
    }
    w->refs++;
    pthread_mutex_unlock(&wake_mu);
    return w;
}

static void wake_put(struct wake *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&wake_mu);
    if (--w->refs == 0) {
        struct wake **pp = &wakes;
        while (*pp != w)
            pp = &(*pp)->next;
        *pp = w->next;
        pthread_cond_destroy(&w->cond);
        free(w);
    }
    pthread_mutex_unlock(&wake_mu);
}

static void wake_signal(struct wake *w)
{
    pthread_mutex_lock(&wake_mu);
    w->gen++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&wake_mu);
}

static uint64_t wake_gen(struct wake *w)
{
    pthread_mutex_lock(&wake_mu);
    uint64_t g = w->gen;
    pthread_mutex_unlock(&wake_mu);
    return g;
}

/* Sleep up to ms, returning early when the generation moves past seen. */
static void wake_wait(struct wake *w, uint64_t seen, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&wake_mu);
    while (w->gen == seen) {
        if (pthread_cond_timedwait(&w->cond, &wake_mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&wake_mu);
}

/* ---- handle ----------------------------------------------------------- */

struct local_bus {
    struct fx_bus base;
    sqlite3 *db;
    char *path;
    int lock_fd;       /* DIR/bus.lock: writers queue on flock() here */
    char consumer[37]; /* this handle's id in deliveries.consumer */
    struct wake *wake;
    int sync_full; /* current PRAGMA synchronous is FULL */
    sqlite3_stmt *st[S_COUNT];
    struct fx_buf enc;  /* encoded body (publish) */
    struct fx_buf body; /* claimed body, copied out of the transaction */
};

static struct local_bus *lb(struct fx_bus *b)
{
    return (struct local_bus *)b;
}

static int db_error(struct local_bus *l, int src, struct fx_err *err, const char *what)
{
    int code = (src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED ? FX_EBUSY
               : (src & 0xff) == SQLITE_IOERR || (src & 0xff) == SQLITE_FULL ||
                       (src & 0xff) == SQLITE_CANTOPEN
                   ? FX_EIO
                   : FX_EBUS;
    return fx_err_set(err, code, "bus %s: %s: %s", l->path, what,
                      l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(src));
}

static sqlite3_stmt *stmt(struct local_bus *l, enum stmt s)
{
    sqlite3_stmt *st = l->st[s];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Run a statement with no result rows. */
static int exec_stmt(struct local_bus *l, enum stmt s)
{
    sqlite3_stmt *st = stmt(l, s);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Writers queue in the kernel (see begin); released by end_tx or by death. */
static void writer_lock(struct local_bus *l)
{
    while (flock(l->lock_fd, LOCK_EX) != 0 && errno == EINTR)
        ;
}

static void writer_unlock(struct local_bus *l)
{
    flock(l->lock_fd, LOCK_UN);
}

static int set_sync(struct local_bus *l, int full)
{
    if (l->sync_full == full)
        return SQLITE_OK;
    int rc = exec_stmt(l, full ? S_SYNC_FULL : S_SYNC_NORMAL);
    if (rc == SQLITE_OK)
        l->sync_full = full;
    return rc;
}

/*
 * Start a write transaction with the right durability.
 *
 * Writers first queue on an exclusive flock() of DIR/bus.lock. SQLite's own
 * busy handler polls with sleeps growing to 100 ms, so under load a writer
 * that just committed re-takes the lock long before a sleeping one wakes: a
 * consumer or, worse, a publisher could starve for seconds. A blocked flock
 * is woken by the kernel at release, so the write lock is handed over in
 * microseconds and every handle gets its turn. flock locks belong to the open
 * file (one per handle), so threads of one process queue too, and the kernel
 * drops them when a process dies. BEGIN IMMEDIATE then normally succeeds at
 * once; for anyone not using the lock file (a sqlite3 shell) the busy timeout
 * still applies, and BEGIN is retried on SQLITE_BUSY (SQLite returns it
 * without waiting in some WAL recovery cases) until BUSY_TIMEOUT_MS.
 */
static int begin(struct local_bus *l, int full, struct fx_err *err)
{
    int rc = set_sync(l, full);
    if (rc != SQLITE_OK)
        return db_error(l, rc, err, "set synchronous");
    writer_lock(l);
    int64_t deadline = fx_mono_ms() + BUSY_TIMEOUT_MS;
    int pause = 1;
    while ((rc = exec_stmt(l, S_BEGIN)) == SQLITE_BUSY && fx_mono_ms() < deadline) {
        fx_sleep_ms(pause);
        pause = pause < 50 ? pause * 2 : 50;
    }
    if (rc != SQLITE_OK) {
        writer_unlock(l);
        return db_error(l, rc, err, "begin");
    }
    return 0;
}

static int commit(struct local_bus *l, struct fx_err *err)
{
    int rc = exec_stmt(l, S_COMMIT);
    int code = rc == SQLITE_OK ? 0 : db_error(l, rc, err, "commit");
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(l->db))
        exec_stmt(l, S_ROLLBACK);
    writer_unlock(l);
    return code;
}

static void rollback(struct local_bus *l)
{
    if (!sqlite3_get_autocommit(l->db))
        exec_stmt(l, S_ROLLBACK);
    writer_unlock(l);
}

static void local_close(struct fx_bus *b)
{
    struct local_bus *l = lb(b);
    if (l->db && !sqlite3_get_autocommit(l->db))
        rollback(l);
    if (l->lock_fd >= 0)
        close(l->lock_fd);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(l->st[i]);
    sqlite3_close(l->db);
    wake_put(l->wake);
    fx_buf_cleanup(&l->enc);
    fx_buf_cleanup(&l->body);
    free(l->path);
    free(l);
}

static int local_open(const char *url, struct fx_bus **out, struct fx_err *err)
{
    const char *dir = url + strlen("local:");
    if (!*dir)
        return fx_err_set(err, FX_EINVAL, "bus URL %s names no directory (local:DIR)", url);
    if (fx_mkdirs(dir) != 0)
        return fx_err_set(err, FX_EIO, "bus: cannot create directory %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0)
        return fx_err_set(err, FX_EIO, "bus: cannot stat %s: %s", dir, strerror(errno));

    struct local_bus *l = fx_calloc(1, sizeof(*l));
    l->path = fx_asprintf("%s/bus.db", dir);
    char *lock = fx_asprintf("%s/bus.lock", dir);
    l->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lock);
    fx_buf_init(&l->enc, FX__BUS_BODY_MAX);
    fx_buf_init(&l->body, 0);
    fx_uuid7(l->consumer);
    int rc;
    if (l->lock_fd < 0) {
        rc = fx_err_set(err, FX_EIO, "bus: cannot open %s/bus.lock: %s", dir, strerror(errno));
        goto fail;
    }
    rc = sqlite3_open_v2(l->path, &l->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = db_error(l, rc, err, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(l->db, 0);
    sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
    /* WAL is persistent in the file; setting it again is cheap and may need
     * the busy handler while another process creates the database. */
    char *msg = NULL;
    rc = sqlite3_exec(l->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                      " PRAGMA journal_size_limit=67108864; PRAGMA secure_delete=FAST;"
                      " PRAGMA wal_autocheckpoint=8192;",
                      NULL, NULL, &msg);
    if (rc == SQLITE_OK) {
        sqlite3_free(msg);
        msg = NULL;
        rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
    }
    if (rc == SQLITE_OK) {
        sqlite3_free(msg);
        msg = NULL;
        sqlite3_stmt *v;
        int version = 0;
        if (sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK) {
            if (sqlite3_step(v) == SQLITE_ROW)
                version = sqlite3_column_int(v, 0);
            sqlite3_finalize(v);
        }
        if (version > SCHEMA_VERSION) {
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
            rc = fx_err_set(err, FX_EBUS, "bus %s: schema version %d is newer than %d", l->path,
                            version, SCHEMA_VERSION);
            goto fail;
        }
        rc = sqlite3_exec(l->db, schema_sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK && version < SCHEMA_VERSION) {
            sqlite3_free(msg);
            msg = NULL;
            rc = sqlite3_exec(l->db, "PRAGMA user_version=1", NULL, NULL, &msg);
        }
        if (rc == SQLITE_OK) {
            sqlite3_free(msg);
            msg = NULL;
            rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, &msg);
        }
        if (rc != SQLITE_OK)
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        fx_err_set(err, rc == SQLITE_BUSY ? FX_EBUSY : FX_EBUS, "bus %s: initialise: %s", l->path,
                   msg ? msg : sqlite3_errmsg(l->db));
        sqlite3_free(msg);
        rc = err ? err->code : FX_EBUS;
        goto fail;
    }
    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(l->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL);
        if (rc != SQLITE_OK) {
            rc = db_error(l, rc, err, "prepare");
            goto fail;
        }
    }
    l->wake = wake_get(&st);
    l->base.ops = &fx__bus_local_ops;
    *out = &l->base;
    return 0;
fail:
    local_close(&l->base);
    return rc;
}

/* ---- groups ----------------------------------------------------------- */

/* Look up group (inside or outside a transaction): 1 found, 0 not, < 0 error. */
static int group_get(struct local_bus *l, const char *name, int64_t *gid, struct fx_group_opts *o)
{
    sqlite3_stmt *st = stmt(l, S_GROUP);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *gid = sqlite3_column_int64(st, 0);
        o->max_attempts = sqlite3_column_int(st, 1);
        o->backoff_ms = sqlite3_column_int(st, 2);
        o->backoff_max_ms = sqlite3_column_int(st, 3);
        o->lease_ms = sqlite3_column_int(st, 4);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -rc;
}

static int no_group(struct fx_err *err, const char *group)
{
    return fx_err_set(err, FX_ENOTFOUND, "bus group \"%s\" is not declared", group);
}

static int local_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                         size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err)
{
    struct local_bus *l = lb(b);
    int rc = begin(l, 1, err);
    if (rc)
        return rc;
    struct fx_group_opts o;
    int64_t gid = 0;
    int found = group_get(l, group, &gid, &o);
    sqlite3_stmt *st = NULL;
    if (found < 0) {
        rc = db_error(l, -found, err, "read group");
        goto out;
    }
    if (!found && !opts)
        fx_group_opts_init(&o);
    if (opts)
        o = *opts;
    rc = sqlite3_prepare_v2(l->db,
                            "INSERT INTO groups(name, max_attempts, backoff_ms, backoff_max_ms,"
                            " lease_ms) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE SET"
                            " max_attempts = ?2, backoff_ms = ?3, backoff_max_ms = ?4,"
                            " lease_ms = ?5 RETURNING gid",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, o.max_attempts);
        sqlite3_bind_int(st, 3, o.backoff_ms);
        sqlite3_bind_int(st, 4, o.backoff_max_ms);
        sqlite3_bind_int(st, 5, o.lease_ms);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            gid = sqlite3_column_int64(st, 0);
        rc = rc == SQLITE_ROW ? sqlite3_step(st) : rc;
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(l->db, "DELETE FROM bindings WHERE gid = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, gid);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(l->db);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            l->db, "INSERT OR IGNORE INTO bindings(gid, pattern) VALUES(?1, ?2)", -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < npatterns; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, gid);
        sqlite3_bind_text(st, 2, patterns[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(l->db);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        rc = db_error(l, rc, err, "declare");
        goto out;
    }
    return commit(l, err);
out:
    rollback(l);
    return rc;
}

/* ---- publish ---------------------------------------------------------- */

struct binding {
    int64_t gid;
    char *pattern;
};

static void bindings_free(struct binding *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].pattern);
    free(v);
}

static int bindings_load(struct local_bus *l, struct binding **out, size_t *n)
{
    sqlite3_stmt *st = stmt(l, S_BINDINGS);
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = fx_realloc(*out, cap * sizeof(**out));
        }
        (*out)[*n].gid = sqlite3_column_int64(st, 0);
        (*out)[*n].pattern = fx_strdup((const char *)sqlite3_column_text(st, 1));
        (*n)++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Insert one message and its deliveries. Bindings are sorted by gid. */
static int publish_one(struct local_bus *l, const struct fx_msg *m, const struct binding *bs,
                       size_t nb, int64_t now, struct fx_err *err, size_t idx)
{
    /* matching groups, each once (a group may have several matching patterns) */
    int64_t gids_small[16], *gids = gids_small;
    size_t ng = 0;
    if (nb > 16)
        gids = fx_malloc(nb * sizeof(*gids));
    for (size_t i = 0; i < nb; i++) {
        if ((ng == 0 || gids[ng - 1] != bs[i].gid) && fx_topic_match(bs[i].pattern, m->routing_key))
            gids[ng++] = bs[i].gid;
    }
    int rc = 0;
    if (ng == 0)
        goto out; /* unroutable: dropped, as an AMQP topic exchange does */

    fx_buf_reset(&l->enc);
    rc = fx_cloudevent_encode(m, &l->enc);
    if (rc == FX_ETOOBIG) {
        rc = fx_err_set(err, FX_ETOOBIG, "message %zu: encoded event exceeds %u bytes", idx + 1,
                        FX__BUS_BODY_MAX);
        goto out;
    } else if (rc) {
        rc = fx_err_set(err, rc, "message %zu: cannot encode: %s", idx + 1, fx_strerror(rc));
        goto out;
    }
    const char *key = m->key && *m->key ? m->key : NULL;
    sqlite3_stmt *st = stmt(l, S_MSG_INSERT);
    sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->routing_key, -1, SQLITE_STATIC);
    if (key)
        sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, l->enc.data, (int)l->enc.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, (int64_t)ng);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src != SQLITE_DONE) {
        rc = db_error(l, src, err, "insert message");
        goto out;
    }
    int64_t seq = sqlite3_last_insert_rowid(l->db);
    for (size_t g = 0; g < ng; g++) {
        int state = ST_READY;
        if (key) {
            sqlite3_stmt *kb = stmt(l, S_KEY_BUSY);
            sqlite3_bind_int64(kb, 1, gids[g]);
            sqlite3_bind_text(kb, 2, key, -1, SQLITE_STATIC);
            src = sqlite3_step(kb);
            sqlite3_reset(kb);
            if (src == SQLITE_ROW)
                state = ST_WAITING;
            else if (src != SQLITE_DONE) {
                rc = db_error(l, src, err, "check key");
                goto out;
            }
        }
        st = stmt(l, S_DLV_INSERT);
        sqlite3_bind_int64(st, 1, gids[g]);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int(st, 3, state);
        sqlite3_bind_int64(st, 4, now);
        if (key)
            sqlite3_bind_text(st, 5, key, -1, SQLITE_STATIC);
        src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE) {
            rc = db_error(l, src, err, "insert delivery");
            goto out;
        }
    }
out:
    if (gids != gids_small)
        free(gids);
    return rc;
}

static int local_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n, struct fx_err *err)
{
    struct local_bus *l = lb(b);
    struct binding *bs = NULL;
    size_t nb = 0;
    int rc = begin(l, 1, err);
    if (rc)
        return rc;
    int src = bindings_load(l, &bs, &nb);
    if (src != SQLITE_OK) {
        rc = db_error(l, src, err, "read bindings");
        goto out;
    }
    int64_t now = fx_now_ms();
    for (size_t i = 0; i < n && !rc; i++)
        rc = publish_one(l, &msgs[i], bs, nb, now, err, i);
    if (!rc) {
        rc = commit(l, err);
        if (!rc)
            wake_signal(l->wake);
    }
out:
    if (rc)
        rollback(l);
    bindings_free(bs, nb);
    return rc;
}

/* ---- receive ---------------------------------------------------------- */

/* Waiting -> ready for the next message of key in gid (after its head left). */
static int promote(struct local_bus *l, int64_t gid, const char *key)
{
    if (!key)
        return SQLITE_OK;
    sqlite3_stmt *st = stmt(l, S_PROMOTE);
    sqlite3_bind_int64(st, 1, gid);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Something claimable now? Read-only (no write lock): for idle polling. */
static int peek(struct local_bus *l, int64_t gid, int64_t now)
{
    sqlite3_stmt *st = stmt(l, S_PICK);
    sqlite3_bind_int64(st, 1, gid);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -rc;
}

/*
 * One claim transaction: 1 with *out, 0 nothing claimable, < 0 error.
 * Expired leases that used up max_attempts are dead-lettered on the way.
 */
static int claim(struct local_bus *l, const char *group, struct fx_delivery **out,
                 struct fx_err *err)
{
    int rc = begin(l, 0, err);
    if (rc)
        return rc;
    struct fx_group_opts o;
    int64_t gid, seq = 0;
    int attempt = 0, src, found = group_get(l, group, &gid, &o), wrote = 0;
    char *key = NULL;
    if (found <= 0) {
        rc = found < 0 ? db_error(l, -found, err, "read group") : no_group(err, group);
        goto fail;
    }
    int64_t now = fx_now_ms();
    for (;;) {
        sqlite3_stmt *st = stmt(l, S_PICK);
        sqlite3_bind_int64(st, 1, gid);
        sqlite3_bind_int64(st, 2, now);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            sqlite3_reset(st);
            free(key);
            if (!wrote) {
                rollback(l);
                return 0;
            }
            return commit(l, err); /* keep the dead letters made on the way */
        }
        if (src != SQLITE_ROW) {
            sqlite3_reset(st);
            rc = db_error(l, src, err, "pick");
            goto fail;
        }
        seq = sqlite3_column_int64(st, 0);
        int state = sqlite3_column_int(st, 1);
        int attempts = sqlite3_column_int(st, 2);
        int expiries = sqlite3_column_int(st, 3) + (state == ST_LEASED);
        free(key);
        key = sqlite3_column_type(st, 4) == SQLITE_NULL
                  ? NULL
                  : fx_strdup((const char *)sqlite3_column_text(st, 4));
        char *last = sqlite3_column_type(st, 5) == SQLITE_NULL
                         ? NULL
                         : fx_strdup((const char *)sqlite3_column_text(st, 5));
        sqlite3_reset(st);
        if (state == ST_LEASED && attempts >= o.max_attempts) {
            /* a consumer keeps dying on it: dead-letter instead of a crash loop */
            char *why = expiries == attempts || !last
                            ? fx_asprintf("lease expired %d times", expiries)
                            : fx_asprintf("lease expired %d times in %d attempts; last error: %s",
                                          expiries, attempts, last);
            st = stmt(l, S_EXPIRE_DEAD);
            sqlite3_bind_int64(st, 1, gid);
            sqlite3_bind_int64(st, 2, seq);
            sqlite3_bind_text(st, 3, why, -1, SQLITE_TRANSIENT);
            src = sqlite3_step(st);
            sqlite3_reset(st);
            free(why);
            free(last);
            if (src == SQLITE_DONE)
                src = promote(l, gid, key);
            if (src != SQLITE_DONE && src != SQLITE_OK) {
                rc = db_error(l, src, err, "dead-letter");
                goto fail;
            }
            wrote = 1;
            continue;
        }
        free(last);
        st = stmt(l, S_LEASE);
        sqlite3_bind_int64(st, 1, gid);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int(st, 3, state == ST_LEASED);
        sqlite3_bind_int64(st, 4, now + o.lease_ms);
        sqlite3_bind_text(st, 5, l->consumer, -1, SQLITE_STATIC);
        src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE) {
            rc = db_error(l, src, err, "lease");
            goto fail;
        }
        attempt = attempts + 1;
        break;
    }
    sqlite3_stmt *st = stmt(l, S_BODY);
    sqlite3_bind_int64(st, 1, seq);
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        sqlite3_reset(st);
        rc = src == SQLITE_DONE ? fx_err_set(err, FX_EBUS, "bus %s: message %lld has no body",
                                             l->path, (long long)seq)
                                : db_error(l, src, err, "read body");
        goto fail;
    }
    fx_buf_reset(&l->body);
    fx_buf_append(&l->body, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_reset(st);
    if ((rc = commit(l, err)))
        goto fail;
    free(key);

    struct fx_delivery *d = fx_calloc(1, sizeof(*d));
    rc = fx_cloudevent_decode(l->body.data, l->body.len, d, err);
    if (rc) {
        /* cannot happen with bodies we encoded; the lease will expire and,
         * after max_attempts, the message is dead-lettered */
        free(d);
        return rc;
    }
    d->attempt = attempt;
    d->group = fx_strdup(group);
    d->tag = seq;
    *out = d;
    return 1;
fail:
    free(key);
    rollback(l);
    return rc;
}

static int local_receive(struct fx_bus *b, const char *group, int timeout_ms,
                         struct fx_delivery **out, struct fx_err *err)
{
    struct local_bus *l = lb(b);
    int64_t deadline = fx_mono_ms() + timeout_ms;
    int pause = POLL_MIN_MS;
    int rc;
    /* first try straight away: with a backlog the read-only peek is a waste */
    uint64_t gen = wake_gen(l->wake);
    if ((rc = claim(l, group, out, err)) != 0)
        return rc;
    for (;;) {
        int64_t left = deadline - fx_mono_ms();
        if (left <= 0)
            return 0;
        wake_wait(l->wake, gen, (int)(left < pause ? left : pause));
        pause = pause * 2 < POLL_MAX_MS ? pause * 2 : POLL_MAX_MS;
        uint64_t g = wake_gen(l->wake);
        if (g != gen)
            pause = POLL_MIN_MS; /* activity: poll tightly again */
        gen = g;
        struct fx_group_opts o;
        int64_t gid;
        int found = group_get(l, group, &gid, &o);
        if (found <= 0)
            return found < 0 ? db_error(l, -found, err, "read group") : no_group(err, group);
        int ready = peek(l, gid, fx_now_ms());
        if (ready < 0)
            return db_error(l, -ready, err, "peek");
        if (ready && (rc = claim(l, group, out, err)) != 0)
            return rc;
    }
}

/* ---- ack / nack ------------------------------------------------------- */

/* Drop one reference to message seq; delete it with the last one. */
static int unref(struct local_bus *l, int64_t seq)
{
    sqlite3_stmt *st = stmt(l, S_UNREF);
    sqlite3_bind_int64(st, 1, seq);
    int rc = sqlite3_step(st);
    int64_t refs = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rc;
    if (refs > 0)
        return SQLITE_OK;
    st = stmt(l, S_MSG_DELETE);
    sqlite3_bind_int64(st, 1, seq);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Settle a delivery we hold: ack (dead < 0: delete) or nack (state, due). */
static int settle(struct local_bus *l, struct fx_delivery *d, int nack, const char *reason)
{
    int rc = begin(l, 0, NULL);
    if (rc)
        return rc;
    struct fx_group_opts o;
    int64_t gid;
    int found = group_get(l, d->group, &gid, &o);
    char *key = NULL;
    int hit = 0, state = ST_READY, src;
    if (found <= 0) {
        rc = found < 0 ? FX_EBUS : FX_ENOTFOUND;
        goto out;
    }
    sqlite3_stmt *st = stmt(l, nack ? S_NACK : S_ACK);
    sqlite3_bind_int64(st, 1, gid);
    sqlite3_bind_int64(st, 2, d->tag);
    sqlite3_bind_text(st, 3, l->consumer, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, d->attempt);
    if (nack) {
        state = d->attempt >= o.max_attempts ? ST_DEAD : ST_READY;
        sqlite3_bind_int(st, 5, state);
        sqlite3_bind_int64(st, 6, fx_now_ms() + fx__bus_backoff_ms(&o, d->attempt));
        sqlite3_bind_text(st, 7, reason, -1, SQLITE_STATIC);
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        hit = 1;
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            key = fx_strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_reset(st);
    if (src != SQLITE_DONE) {
        rc = src == SQLITE_BUSY ? FX_EBUSY : FX_EBUS;
        goto out;
    }
    if (!hit) {
        rc = FX_ENOTFOUND; /* lease lost: another consumer may have it now */
        goto out;
    }
    src = SQLITE_OK;
    if (!nack)
        src = unref(l, d->tag);
    if (src == SQLITE_OK && (!nack || state == ST_DEAD))
        src = promote(l, gid, key);
    if (src != SQLITE_OK) {
        rc = src == SQLITE_BUSY ? FX_EBUSY : FX_EBUS;
        goto out;
    }
    free(key);
    if ((rc = commit(l, NULL)) == 0)
        wake_signal(l->wake);
    return rc;
out:
    free(key);
    rollback(l);
    return rc;
}

static int local_ack(struct fx_bus *b, struct fx_delivery *d)
{
    return settle(lb(b), d, 0, NULL);
}

static int local_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason)
{
    return settle(lb(b), d, 1, reason);
}

/* ---- inspection ------------------------------------------------------- */

static int64_t local_depth(struct fx_bus *b, const char *group)
{
    struct local_bus *l = lb(b);
    struct fx_group_opts o;
    int64_t gid;
    int found = group_get(l, group, &gid, &o);
    if (found <= 0)
        return found < 0 ? FX_EBUS : FX_ENOTFOUND;
    sqlite3_stmt *st = stmt(l, S_DEPTH);
    sqlite3_bind_int64(st, 1, gid);
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : FX_EBUS;
    sqlite3_reset(st);
    return n;
}

struct dead {
    struct fx_delivery *d;
    char *reason;
};

/* Pages of DEAD_PAGE rows, read and released before the callbacks run. */
static int local_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud)
{
    struct local_bus *l = lb(b);
    struct fx_group_opts o;
    int64_t gid, after = 0;
    int found = group_get(l, group, &gid, &o);
    if (found <= 0)
        return found < 0 ? FX_EBUS : FX_ENOTFOUND;
    struct dead page[DEAD_PAGE];
    for (;;) {
        size_t n = 0, rows = 0;
        int rc = 0, src;
        sqlite3_stmt *st = stmt(l, S_DEAD_PAGE);
        sqlite3_bind_int64(st, 1, gid);
        sqlite3_bind_int64(st, 2, after);
        sqlite3_bind_int(st, 3, DEAD_PAGE);
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            struct fx_delivery *d = fx_calloc(1, sizeof(*d));
            after = sqlite3_column_int64(st, 0);
            rows++;
            if (fx_cloudevent_decode(sqlite3_column_blob(st, 3),
                                     (size_t)sqlite3_column_bytes(st, 3), d, NULL) != 0) {
                free(d);
                continue; /* unreadable body: nothing to show */
            }
            d->tag = after;
            d->attempt = sqlite3_column_int(st, 1);
            d->group = fx_strdup(group);
            page[n].d = d;
            page[n].reason = fx_strdup(sqlite3_column_type(st, 2) == SQLITE_NULL
                                           ? ""
                                           : (const char *)sqlite3_column_text(st, 2));
            n++;
        }
        sqlite3_reset(st);
        if (src != SQLITE_DONE)
            rc = FX_EBUS;
        int stop = 0;
        for (size_t i = 0; i < n; i++) {
            if (!rc && !stop)
                stop = cb(ud, page[i].d, page[i].reason) != 0;
            fx_delivery_free(page[i].d);
            free(page[i].reason);
        }
        if (rc || stop || rows < DEAD_PAGE)
            return rc;
    }
}

const struct fx__bus_ops fx__bus_local_ops = {
    .name = "local",
    .scheme = "local",
    .open = local_open,
    .close = local_close,
    .declare = local_declare,
    .publish = local_publish,
    .receive = local_receive,
    .ack = local_ack,
    .nack = local_nack,
    .depth = local_depth,
    .dead_letters = local_dead_letters,
};
