/* SPDX-License-Identifier: MIT */
/*
 * The API writer (src/services/ingest_api.c) against a real SQLite ingest
 * store: requests validated, grouped, committed and answered; duplicates
 * found both in `seen` and among keys not yet written; idempotent replays and
 * conflicts; request status; keys written to `seen` in sliced passes and at
 * stop; chunks staged
 * with their outbox entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fluxo/config.h"
#include "fluxo/jsonrec.h"
#include "fluxo/mem.h"
#include "fluxo/services.h"
#include "fluxo/store.h"
#include "fluxo/util.h"
#include "services/chunk.h"
#include "services/ingest_internal.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct env {
    char *dir;
    struct fx_config *cfg;
    struct fx_runtime rt;
    struct fx_api_writer *w;
};

/* PostgreSQL URL of the run (FLUXO_TEST_PG_URL), or NULL: SQLite in a temp dir */
static const char *pg_url;

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->dir = tu_tmpdir();
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_config_load(NULL, NULL, &e->cfg, &err), 0);
    char pipes[1024];
    snprintf(pipes, sizeof(pipes), "%s/pipelines", getenv("FLUXO_SOURCE_DIR"));
    assert_int_equal(fx_config_set(e->cfg, "data_dir", e->dir, &err), 0);
    assert_int_equal(fx_config_set(e->cfg, "pipelines_dir", pipes, &err), 0);
    if (pg_url) { /* a clean server for every test */
        struct fx_store *db;
        assert_int_equal(fx_store_open(pg_url, "ingest", &db, &err), 0);
        assert_int_equal(
            fx_store_exec(db, "DROP SCHEMA IF EXISTS ingest, distribution, auth CASCADE", &err), 0);
        fx_store_close(db);
        assert_int_equal(fx_config_set(e->cfg, "db", pg_url, &err), 0);
    }
    assert_int_equal(fx_runtime_init(&e->rt, e->cfg, &err), 0);
    assert_int_equal(fx_services_migrate(&e->rt, &err), 0);
    assert_int_equal(fx_api_writer_start(&e->rt, &e->w, &err), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    fx_api_writer_stop(e->w);
    fx_runtime_cleanup(&e->rt);
    fx_config_free(e->cfg);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* ---- submitting and waiting ---- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc;
};

static void on_done(void *ud, struct fx_api_req *r, int rc, const struct fx_err *err)
{
    (void)r;
    (void)err;
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->rc = rc;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int submit_wait(struct env *e, struct fx_api_req *r)
{
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    assert_int_equal(fx_api_writer_submit(e->w, r, on_done, &w), 0);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.rc;
}

static const char *const NAMES[] = {"nome",           "email",           "produto",  "quantidade",
                                    "valor_unitario", "forma_pagamento", "data_hora"};
#define NN (sizeof(NAMES) / sizeof(NAMES[0]))

/* A sale; when = NULL leaves data_hora out (position-keyed row). */
static void add_sale(struct fx_api_req *r, long rec, const char *nome, const char *qty,
                     const char *when)
{
    const char *v[NN] = {nome, "x@example.com", "Caneta", qty, "3,50", "Pix", when};
    struct fx_cell c[NN];
    for (size_t i = 0; i < NN; i++) {
        c[i].s = v[i] ? v[i] : "";
        c[i].len = strlen(c[i].s);
        c[i].type = FX_CELL_STRING;
    }
    assert_int_equal(fx_api_req_add(r, NAMES, c, when ? NN : NN - 1, rec, rec), 0);
}

static struct fx_api_req *new_req(struct env *e)
{
    return fx_api_req_new(fx_runtime_pipeline(&e->rt, "vendas"), NULL, NULL, 0);
}

static int64_t count(struct env *e, const char *sql)
{
    struct fx_store *db;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_store_open(e->rt.db_url, "ingest", &db, &err), 0);
    struct fx_stmt *st;
    assert_int_equal(fx_store_prepare(db, sql, &st, &err), 0);
    assert_int_equal(fx_stmt_step(st), FX_STORE_ROW);
    int64_t n = fx_stmt_int(st, 0);
    fx_stmt_reset(st);
    fx_store_close(db);
    return n;
}

/* ---- tests ---- */

static void test_accept_reject_dedupe(void **state)
{
    struct env *e = *state;
    struct fx_api_req *a = new_req(e);
    add_sale(a, 1, "Ana", "2", "2025-01-02 10:00");
    add_sale(a, 2, "", "2", "2025-01-02 10:00");    /* nome is required */
    add_sale(a, 3, "Bia", "0", "2025-01-02 10:01"); /* quantidade min 1 */
    add_sale(a, 4, "Ana", "2", "2025-01-02 10:00"); /* same purchase again */
    assert_int_equal(submit_wait(e, a), 0);
    const struct fx_api_counts *c = fx_api_req_result(a);
    assert_int_equal(c->received, 4);
    assert_int_equal(c->accepted, 1);
    assert_int_equal(c->rejected, 2);
    assert_int_equal(c->duplicate, 1);
    const struct fx_api_issue *is;
    size_t n = fx_api_req_issues(a, &is);
    assert_true(n >= 2);
    assert_int_equal(is[0].record, 2);
    assert_string_equal(is[0].field, "nome");
    assert_string_equal(is[0].rule, "required");

    /* a later request: the key is only in the writer's memory so far */
    struct fx_api_req *b = new_req(e);
    add_sale(b, 1, "Ana", "2", "2025-01-02 10:00");
    add_sale(b, 2, "Carla", "1", "2025-01-03 09:00");
    assert_int_equal(submit_wait(e, b), 0);
    assert_int_equal(fx_api_req_result(b)->accepted, 1);
    assert_int_equal(fx_api_req_result(b)->duplicate, 1);
    assert_string_equal(fx_api_req_result(a)->batch_id, fx_api_req_result(b)->batch_id);

    /* rows staged with their outbox entries; issues carry the request's id */
    assert_int_equal(count(e, "SELECT sum(nrows) FROM staging"), 2);
    assert_int_equal(count(e, "SELECT count(*) FROM outbox"),
                     count(e, "SELECT count(*) FROM staging"));
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM issues WHERE correlation_id = '%s'",
             fx_api_req_correlation(a));
    assert_true(count(e, sql) >= 2);

    /* the request's status */
    struct fx_ingest *ig;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_ingest_open(&e->rt, &ig, &err), 0);
    struct fx_api_counts st;
    assert_int_equal(fx_ingest_request_status(ig, fx_api_req_correlation(a), &st), 0);
    assert_int_equal(st.received, 4);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.queued, 1);
    assert_int_equal(fx_ingest_request_status(ig, "00000000-0000-0000-0000-000000000000", &st),
                     FX_ENOTFOUND);
    fx_ingest_close(ig);
    fx_api_req_free(a);
    fx_api_req_free(b);

    /* stop writes the keys held in memory: a new writer still finds the duplicate */
    fx_api_writer_stop(e->w);
    assert_true(count(e, "SELECT count(*) FROM seen") >= 2);
    assert_int_equal(count(e, "SELECT count(*) FROM batches WHERE state = 'receiving'"), 0);
    assert_int_equal(fx_api_writer_start(&e->rt, &e->w, &err), 0);
    struct fx_api_req *c2 = new_req(e);
    add_sale(c2, 1, "Carla", "1", "2025-01-03 09:00");
    assert_int_equal(submit_wait(e, c2), 0);
    assert_int_equal(fx_api_req_result(c2)->duplicate, 1);
    assert_int_equal(fx_api_req_result(c2)->accepted, 0);
    fx_api_req_free(c2);
}

static void test_position_keyed_rows(void **state)
{
    struct env *e = *state;
    /* without data_hora every request's row is new; a repeat is only flagged */
    struct fx_api_req *a = new_req(e);
    add_sale(a, 1, "Dora", "1", NULL);
    assert_int_equal(submit_wait(e, a), 0);
    struct fx_api_req *b = new_req(e);
    add_sale(b, 1, "Dora", "1", NULL);
    assert_int_equal(submit_wait(e, b), 0);
    assert_int_equal(fx_api_req_result(b)->accepted, 1);
    assert_int_equal(fx_api_req_result(b)->possible_dup, 1);
    assert_int_equal(fx_api_req_result(b)->duplicate, 0);
    fx_api_req_free(a);
    fx_api_req_free(b);
}

static void test_idempotency(void **state)
{
    struct env *e = *state;
    char h1[65], h2[65];
    fx_sha256_hex("body one", 8, h1);
    fx_sha256_hex("body two", 8, h2);
    struct fx_api_req *a = new_req(e);
    fx_api_req_set_idempotency(a, "key-1", h1);
    add_sale(a, 1, "Eva", "1", "2025-02-01 08:00");
    assert_int_equal(submit_wait(e, a), 0);
    assert_int_equal(fx_api_req_replay(a), 0);

    struct fx_api_req *b = new_req(e);
    fx_api_req_set_idempotency(b, "key-1", h1);
    add_sale(b, 1, "Eva", "1", "2025-02-01 08:00");
    assert_int_equal(submit_wait(e, b), 0);
    assert_int_equal(fx_api_req_replay(b), 1);
    assert_string_equal(fx_api_req_result(b)->correlation_id, fx_api_req_correlation(a));
    assert_int_equal(fx_api_req_result(b)->accepted, 1); /* the first reply's counts */

    struct fx_api_req *c = new_req(e);
    fx_api_req_set_idempotency(c, "key-1", h2);
    add_sale(c, 1, "Eva", "9", "2025-02-01 08:00");
    assert_int_equal(submit_wait(e, c), 0);
    assert_int_equal(fx_api_req_replay(c), 2);
    assert_int_equal(count(e, "SELECT count(*) FROM api_requests"), 1);
    assert_int_equal(count(e, "SELECT sum(nrows) FROM staging"), 1);
    fx_api_req_free(a);
    fx_api_req_free(b);
    fx_api_req_free(c);
}

/* The same Idempotency-Key twice in one group (submitted together, behind
 * others): the second is a replay of the first, a third with another body
 * is refused; on PostgreSQL the group's rows are written together, and the
 * earlier ones must be visible to the lookup. */
static void test_idempotency_one_group(void **state)
{
    struct env *e = *state;
    enum { N = 40 };
    char h1[65], h2[65];
    fx_sha256_hex("body one", 8, h1);
    fx_sha256_hex("body two", 8, h2);
    struct fx_api_req *r[N + 3];
    struct waiter wt[N + 3];
    for (int i = 0; i < N + 3; i++) {
        r[i] = new_req(e);
        char nome[32], when[32];
        snprintf(nome, sizeof(nome), "Grupo %d", i);
        snprintf(when, sizeof(when), "2025-04-01 %02d:%02d", i / 60, i % 60);
        if (i >= N) { /* the last three: one key, the last with another body */
            /* quotes, a backslash, braces, a comma, NULL: text to PostgreSQL's array syntax */
            fx_api_req_set_idempotency(r[i], "k\"g\\ {x},NULL", i < N + 2 ? h1 : h2);
            snprintf(when, sizeof(when), "2025-04-02 10:00");
        }
        add_sale(r[i], 1, nome, "1", when);
        pthread_mutex_init(&wt[i].mu, NULL);
        pthread_cond_init(&wt[i].cv, NULL);
        wt[i].done = 0;
        assert_int_equal(fx_api_writer_submit(e->w, r[i], on_done, &wt[i]), 0);
    }
    for (int i = 0; i < N + 3; i++) {
        pthread_mutex_lock(&wt[i].mu);
        while (!wt[i].done)
            pthread_cond_wait(&wt[i].cv, &wt[i].mu);
        pthread_mutex_unlock(&wt[i].mu);
        assert_int_equal(wt[i].rc, 0);
    }
    assert_int_equal(fx_api_req_replay(r[N]), 0);
    assert_int_equal(fx_api_req_result(r[N])->accepted, 1);
    assert_int_equal(fx_api_req_replay(r[N + 1]), 1);
    assert_string_equal(fx_api_req_result(r[N + 1])->correlation_id, fx_api_req_correlation(r[N]));
    assert_int_equal(fx_api_req_result(r[N + 1])->accepted, 1);
    assert_int_equal(fx_api_req_replay(r[N + 2]), 2);
    assert_int_equal(count(e, "SELECT count(*) FROM api_requests"), N + 1);
    assert_int_equal(
        count(e, "SELECT count(*) FROM api_requests WHERE idem_key = 'k\"g\\ {x},NULL'"), 1);
    assert_int_equal(count(e, "SELECT sum(nrows) FROM staging"), N + 1);
    for (int i = 0; i < N + 3; i++)
        fx_api_req_free(r[i]);
}

static void test_many_requests_one_group(void **state)
{
    struct env *e = *state;
    /* submit many at once: they share groups; every one is answered */
    enum { N = 300 };
    struct fx_api_req *r[N];
    struct waiter w[N];
    for (int i = 0; i < N; i++) {
        r[i] = new_req(e);
        char nome[32], when[32];
        snprintf(nome, sizeof(nome), "Cliente %d", i);
        snprintf(when, sizeof(when), "2025-03-01 %02d:%02d", i / 60, i % 60);
        add_sale(r[i], 1, nome, "1", when);
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
        w[i].done = 0;
        assert_int_equal(fx_api_writer_submit(e->w, r[i], on_done, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_mutex_lock(&w[i].mu);
        while (!w[i].done)
            pthread_cond_wait(&w[i].cv, &w[i].mu);
        pthread_mutex_unlock(&w[i].mu);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(fx_api_req_result(r[i])->accepted, 1);
        fx_api_req_free(r[i]);
    }
    assert_int_equal(count(e, "SELECT sum(nrows) FROM staging"), N);
    assert_int_equal(count(e, "SELECT count(*) FROM api_requests"), N);
    assert_true(fx_api_writer_backlog(e->w) >= 0);
}

/* n sales of customers "prefix i", on day (2025-01-01 + day), one a minute
 * (the time is part of a sale's dedupe key) */
static void add_many(struct fx_api_req *r, const char *prefix, int day, int n)
{
    for (int i = 0; i < n; i++) {
        char nome[32], when[32];
        snprintf(nome, sizeof(nome), "%s %d", prefix, i);
        snprintf(when, sizeof(when), "2025-%02d-%02d %02d:%02d", 1 + day / 28, 1 + day % 28,
                 i / 60 % 24, i % 60);
        add_sale(r, i + 1, nome, "1", when);
    }
}

static struct fx_api_req *submit_to(struct fx_api_writer *w, struct fx_api_req *r)
{
    struct waiter wt = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    assert_int_equal(fx_api_writer_submit(w, r, on_done, &wt), 0);
    pthread_mutex_lock(&wt.mu);
    while (!wt.done)
        pthread_cond_wait(&wt.cv, &wt.mu);
    pthread_mutex_unlock(&wt.mu);
    assert_int_equal(wt.rc, 0);
    return r;
}

/* Submit small requests (rows new sales of "prefix i" from day0 + i) until
 * the filter has proved more keys new than `past` (it is in use), at most
 * `tries` of them; returns the filter's count. */
static uint64_t until_filtered(struct env *e, const char *prefix, int day0, int rows, int tries,
                               uint64_t past)
{
    uint64_t filtered = past, looked = 0;
    for (int i = 0; i < tries && filtered == past; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%s%d", prefix, i);
        struct fx_api_req *a = new_req(e);
        add_many(a, p, day0 + i, rows);
        fx_api_req_free(submit_to(e->w, a));
        fx_api_writer_dedupe_stats(e->w, &filtered, &looked);
        usleep(20 * 1000);
    }
    return filtered;
}

/* The first group starts the filter's build: wait until it is in use. */
static void warm_filter(struct env *e)
{
    assert_true(until_filtered(e, "Warm", 1, 3, 100, 0) > 0);
}

/* The in-memory dedupe filter: once built, new keys skip the lookup; keys
 * that another connection (another server, a file import) writes to `seen`
 * behind its back are still found, because the filter is dropped when the
 * generation counter moves and rebuilt from the table. */
static void test_dedupe_filter(void **state)
{
    struct env *e = *state;
    struct fx_err err;
    fx_err_clear(&err);
    warm_filter(e);

    /* another writer (its own connection) takes 200 sales and writes their keys */
    struct fx_api_writer *other = NULL;
    assert_int_equal(fx_api_writer_start(&e->rt, &other, &err), 0);
    struct fx_api_req *b = new_req(e);
    add_many(b, "Outro", 0, 200);
    assert_int_equal(fx_api_req_result(submit_to(other, b))->accepted, 200);
    fx_api_req_free(b);
    fx_api_writer_stop(other);

    /* the same sales through the first writer: all duplicates; one new sale */
    struct fx_api_req *c = new_req(e);
    add_many(c, "Outro", 0, 200);
    add_sale(c, 201, "Nova", "1", "2025-12-30 10:00");
    submit_to(e->w, c);
    assert_int_equal(fx_api_req_result(c)->duplicate, 200);
    assert_int_equal(fx_api_req_result(c)->accepted, 1);
    fx_api_req_free(c);

    /* the filter comes back (rebuilt with the other writer's keys) and still
     * finds them: duplicates without a false "new" */
    uint64_t f0 = 0, l0 = 0;
    fx_api_writer_dedupe_stats(e->w, &f0, &l0);
    assert_true(until_filtered(e, "Later", 120, 2, 200, f0) > f0);
    struct fx_api_req *d = new_req(e);
    add_many(d, "Outro", 0, 200);
    submit_to(e->w, d);
    assert_int_equal(fx_api_req_result(d)->duplicate, 200);
    assert_int_equal(fx_api_req_result(d)->accepted, 0);
    fx_api_req_free(d);
}

/* Dedupe keys reach `seen` in passes: a second after they were taken,
 * sorted, a slice in each following group, the pass spread over half a
 * second. Under steady load (the writer never idle) the passes still
 * complete; keys of a pass are found at every stage (re-sent rows are
 * duplicates); at stop, every key is in `seen`. */
static void test_keys_written_in_slices(void **state)
{
    struct env *e = *state;
    enum { N = 1400 };                        /* add_many: distinct sale times within one day */
    fx_api_writer_set_idle_keys_ms(e->w, -1); /* the pass runs among the groups below */
    struct fx_api_req *a = new_req(e);
    add_many(a, "Lote", 200, N);
    assert_int_equal(fx_api_req_result(submit_to(e->w, a))->accepted, N);
    fx_api_req_free(a);
    assert_int_equal(count(e, "SELECT count(*) FROM seen"), 0); /* held in memory */

    /* 2 s of requests back to back: one new sale and 20 re-sent ones each */
    int64_t t0 = fx_mono_ms();
    int n = 0;
    while (fx_mono_ms() - t0 < 2000) {
        struct fx_api_req *b = new_req(e);
        char nm[32], at[32];
        int day = 250 + n / 1440; /* a new sale time each */
        snprintf(nm, sizeof(nm), "Novo %d", n);
        snprintf(at, sizeof(at), "2025-%02d-%02d %02d:%02d", 1 + day / 28, 1 + day % 28,
                 n % 1440 / 60, n % 60);
        add_sale(b, 1, nm, "1", at);
        for (int i = 0; i < 20; i++) {
            int k = (n * 37 + i * 71) % N;
            char nome[32], when[32];
            snprintf(nome, sizeof(nome), "Lote %d", k);
            snprintf(when, sizeof(when), "2025-%02d-%02d %02d:%02d", 1 + 200 / 28, 1 + 200 % 28,
                     k / 60 % 24, k % 60);
            add_sale(b, i + 2, nome, "1", when);
        }
        submit_to(e->w, b);
        assert_int_equal(fx_api_req_result(b)->accepted, 1);
        assert_int_equal(fx_api_req_result(b)->duplicate, 20);
        fx_api_req_free(b);
        n++;
    }
    /* the first request's pass was written by those groups */
    assert_true(count(e, "SELECT count(*) FROM seen") >= N);

    /* stop writes the rest */
    fx_api_writer_stop(e->w);
    e->w = NULL;
    /* each sale's key, and the content key (all but the time) they share */
    assert_int_equal(count(e, "SELECT count(*) FROM seen"), N + n + 1);
    assert_int_equal(count(e, "SELECT sum(nrows) FROM staging"), N + n);
}

/* An idle writer writes the keys it holds at once, not when they are due (a
 * second after the first): a bulk request that follows another does not
 * find them in its way. */
static void test_keys_written_when_idle(void **state)
{
    struct env *e = *state;
    enum { N = 1400 };
    struct fx_api_req *a = new_req(e);
    add_many(a, "Ocioso", 200, N);
    int64_t t0 = fx_mono_ms();
    assert_int_equal(fx_api_req_result(submit_to(e->w, a))->accepted, N);
    fx_api_req_free(a);
    /* each sale's key and the content key they share */
    int64_t seen = 0;
    while ((seen = count(e, "SELECT count(*) FROM seen")) < N + 1 && fx_mono_ms() - t0 < 10000)
        usleep(5000);
    assert_int_equal(seen, N + 1);
    /* written by the idle writer (20 ms without a request), well before
     * they were due */
    assert_true(fx_mono_ms() - t0 < 900);

    /* the same rows again: all duplicates, found in `seen` */
    struct fx_api_req *b = new_req(e);
    add_many(b, "Ocioso", 200, N);
    assert_int_equal(fx_api_req_result(submit_to(e->w, b))->duplicate, N);
    fx_api_req_free(b);
}

static int cmp_words(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* The pass's sort gives qsort's order: random keys (negative ones too),
 * keys equal in word 0, a bucket of 700 keys sharing their top 16 bits
 * (crafted input), repeated keys, and sizes around the small-input cutoff. */
static void test_keys_sort(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t sizes[] = {0, 1, 2, 255, 256, 257, 5000, 70000};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        size_t n = sizes[t];
        int64_t(*src)[2] = fx_malloc((n + 1) * sizeof(*src));
        int64_t(*got)[2] = fx_malloc((n + 1) * sizeof(*got));
        int64_t(*want)[2] = fx_malloc((n + 1) * sizeof(*want));
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            src[i][0] = (int64_t)x;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            src[i][1] = (int64_t)x;
            if (i % 7 == 1) /* same word 0 as the key before */
                src[i][0] = src[i - 1][0];
            if (i % 11 == 3) /* the same key twice */
                memcpy(src[i], src[i - 1], sizeof(src[i]));
            if (i % 100 < 1 && n >= 50000) /* 700 keys in one bucket */
                src[i][0] = (int64_t)(0x7FFF000000000000ull | (x >> 16));
        }
        memcpy(want, src, n * sizeof(*src));
        qsort(want, n, sizeof(*want), cmp_words);
        fx__keys_sort((const int64_t(*)[2])src, n, got);
        for (size_t i = 0; i < n; i++)
            if (memcmp(got[i], want[i], sizeof(got[i])) != 0)
                fail_msg("%zu keys: key %zu out of order", n, i);
        free(src);
        free(got);
        free(want);
    }
}

/* The dedupe filter grows with the table: a writer started on an empty
 * table (a filter for a few thousand keys) that then takes 300k keys still
 * proves nearly every new key new without a lookup, because the filter is
 * rebuilt bigger once it is past its size. */
static void test_dedupe_filter_grows(void **state)
{
    struct env *e = *state;
    warm_filter(e);
    /* 200 days x 1440 sale times: 288k new keys, in requests of a day each */
    for (int d = 0; d < 200; d++) {
        struct fx_api_req *a = new_req(e);
        add_many(a, "Grande", 110 + d, 1440);
        fx_api_req_free(submit_to(e->w, a));
        if (d % 50 == 49)
            usleep(1100 * 1000); /* rebuilds start at most once a second */
    }
    usleep(1100 * 1000);
    /* 1000 more new keys in small requests: nearly all proven new by the filter */
    uint64_t f1 = 0, l1 = 0, f2 = 0, l2 = 0;
    fx_api_writer_dedupe_stats(e->w, &f1, &l1);
    for (int i = 0; i < 100; i++) {
        char p[16];
        snprintf(p, sizeof(p), "Depois%d", i);
        struct fx_api_req *a = new_req(e);
        add_many(a, p, 320 + i % 10, 10);
        fx_api_req_free(submit_to(e->w, a));
    }
    fx_api_writer_dedupe_stats(e->w, &f2, &l2);
    /* keys per request: 10 sales, some repeated times across the 10 days'
     * prefixes; the lookups must stay a small share of the keys taken */
    assert_true(f2 - f1 > 0);
    assert_true((l2 - l1) * 10 < (f2 - f1));
}

/* Records with other keys than the one before them are bound anew (the
 * binding of the previous record is reused only for the very same keys). */
static void test_changing_keys(void **state)
{
    struct env *e = *state;
    struct fx_api_req *r = new_req(e);
    add_sale(r, 1, "Ana", "1", "2025-08-01 10:00");
    add_sale(r, 2, "Bia", "1", NULL); /* one key fewer: no data_hora */
    add_sale(r, 3, "Cid", "1", "2025-08-01 10:02");
    /* as many keys, one of them different: "nome" is missing, so rejected */
    static const char *const other[NN] = {"nome_x",     "email",          "produto",
                                          "quantidade", "valor_unitario", "forma_pagamento",
                                          "data_hora"};
    const char *v[NN] = {"Dan", "d@example.com", "Caneta", "1", "3,50", "Pix", "2025-08-01 10:03"};
    struct fx_cell c[NN];
    for (size_t i = 0; i < NN; i++) {
        c[i].s = v[i];
        c[i].len = strlen(v[i]);
        c[i].type = FX_CELL_STRING;
    }
    assert_int_equal(fx_api_req_add(r, other, c, NN, 4, 4), 0);
    add_sale(r, 5, "Eva", "1", "2025-08-01 10:04");
    submit_to(e->w, r);
    const struct fx_api_counts *k = fx_api_req_result(r);
    assert_int_equal(k->received, 5);
    assert_int_equal(k->accepted, 4);
    assert_int_equal(k->rejected, 1);
    const struct fx_api_issue *is;
    size_t n = fx_api_req_issues(r, &is);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (is[i].record == 4 && is[i].severity == FX_ISSUE_ERROR &&
            strcmp(is[i].rule, "required") == 0 && strstr(is[i].reason, "nome"))
            found = 1;
    assert_true(found);
    fx_api_req_free(r);
}

/* ---- big bodies: slices validated on the pool ---- */

struct seqctx {
    struct fx_api_req *r;
};

static int seq_rec(void *ud, const struct fx_jsonrec *rec)
{
    struct seqctx *c = ud;
    return fx_api_req_add(c->r, rec->names, rec->cells, rec->n, (long)rec->index, rec->line);
}

static int seq_bad(void *ud, size_t index, const struct fx_err *err)
{
    struct seqctx *c = ud;
    const char *l = strstr(err->reason, "line ");
    long line = l ? strtol(l + 5, NULL, 10) : 0;
    fx_api_req_reject(c->r, (long)index, line > 0 ? line : 0, "json", err->reason);
    return 0;
}

static int par_line(void *ud, const struct fx_jsonrec_line *ln)
{
    struct seqctx *c = ud;
    return fx_api_req_add_line(c->r, ln);
}

/* An NDJSON body of n lines: good sales, bad values, warnings, broken JSON,
 * blank lines, repeats. */
static void ndjson_body(struct fx_buf *b, int n)
{
    for (int i = 0; i < n; i++) {
        switch (i % 17) {
        case 3:
            fx_buf_printf(
                b,
                "{\"nome\":\"C%d\",\"email\":\"c@x.com\",\"produto\":\"P\",\"quantidade\":0,"
                "\"valor_unitario\":\"1,00\",\"forma_pagamento\":\"Pix\"}\n",
                i);
            break;
        case 5:
            fx_buf_printf(b, "{\"nome\":\"C%d\", broken\n", i);
            break;
        case 7:
            fx_buf_puts(b, "\n   \n");
            break;
        case 11: /* a warning: an e-mail with upper case is normalised */
            fx_buf_printf(b,
                          "{\"nome\":\"C%d\",\"email\":\"X%d@Example.COM\",\"produto\":\"P\","
                          "\"quantidade\":2,\"valor_unitario\":\"3,50\","
                          "\"forma_pagamento\":\"pix\",\"data_hora\":\"2025-05-01 10:%02d\"}\n",
                          i, i, i % 60);
            break;
        case 13: /* the same sale as the line before it */
        case 12:
            fx_buf_printf(
                b,
                "{\"nome\":\"R\",\"email\":\"r@x.com\",\"produto\":\"P\",\"quantidade\":1,"
                "\"valor_unitario\":\"2,00\",\"forma_pagamento\":\"Pix\","
                "\"data_hora\":\"2025-06-01 %02d:%02d\"}\n",
                i / 17 / 60 % 24, i / 17 % 60);
            break;
        default:
            fx_buf_printf(
                b,
                "{\"nome\":\"C%d\",\"email\":\"c%d@x.com\",\"produto\":\"P%d\",\"quantidade\":%d,"
                "\"valor_unitario\":\"%d,%02d\",\"forma_pagamento\":\"Pix\","
                "\"data_hora\":\"2025-07-%02d %02d:%02d\"}\n",
                i, i, i % 9, 1 + i % 5, 1 + i % 90, i % 100, 1 + i / 1440 % 28, i / 60 % 24,
                i % 60);
        }
    }
}

/* The slices give what record-by-record validation gives: counts, every
 * issue with its record, line, field, rule and reason, and the same rows
 * (the second request is entirely duplicates of the first). */
static void test_slices_equal_sequential(void **state)
{
    struct env *e = *state;
    struct fx_buf body;
    fx_buf_init(&body, 0);
    ndjson_body(&body, 5000);
    struct fx_jsonrec_opts o;
    fx_jsonrec_opts_init(&o);
    o.ndjson = 1;
    struct fx_err err;

    struct seqctx a = {new_req(e)};
    struct fx_jsonrec_parser *p = fx_jsonrec_new(&o, seq_rec, seq_bad, &a);
    assert_int_equal(fx_jsonrec_feed(p, body.data, body.len, &err), 0);
    assert_int_equal(fx_jsonrec_finish(p, &err), 0);
    fx_jsonrec_free(p);

    struct seqctx b = {new_req(e)};
    fx_api_req_set_json(b.r, &o);
    p = fx_jsonrec_new(&o, seq_rec, seq_bad, &b);
    fx_jsonrec_defer_lines(p, par_line);
    /* fed in odd pieces, as a network delivers it */
    for (size_t at = 0; at < body.len; at += 4093) {
        size_t nb = body.len - at < 4093 ? body.len - at : 4093;
        assert_int_equal(fx_jsonrec_feed(p, body.data + at, nb, &err), 0);
    }
    assert_int_equal(fx_jsonrec_finish(p, &err), 0);
    fx_jsonrec_free(p);
    fx_api_req_settle(b.r);

    assert_int_equal(fx_api_req_rows(a.r), fx_api_req_rows(b.r));
    assert_true(fx_api_req_rows(a.r) > 4000);
    const struct fx_api_issue *ia, *ib;
    size_t na = fx_api_req_issues(a.r, &ia), nb = fx_api_req_issues(b.r, &ib);
    assert_int_equal(na, nb);
    assert_true(na > 500);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(ia[i].record, ib[i].record);
        assert_int_equal(ia[i].line, ib[i].line);
        assert_int_equal(ia[i].column, ib[i].column);
        assert_int_equal(ia[i].severity, ib[i].severity);
        assert_int_equal(ia[i].row_ix, ib[i].row_ix);
        assert_string_equal(ia[i].field, ib[i].field);
        assert_string_equal(ia[i].rule, ib[i].rule);
        assert_string_equal(ia[i].reason, ib[i].reason);
        assert_string_equal(ia[i].value, ib[i].value);
    }
    submit_to(e->w, a.r);
    submit_to(e->w, b.r);
    const struct fx_api_counts *ca = fx_api_req_result(a.r), *cb = fx_api_req_result(b.r);
    assert_int_equal(ca->rejected, cb->rejected);
    assert_true(ca->accepted > 3000);
    assert_true(ca->duplicate > 100); /* the repeated sales inside the body */
    assert_int_equal(cb->accepted, 0);
    assert_int_equal(cb->duplicate, ca->accepted + ca->duplicate);
    fx_api_req_free(a.r);
    fx_api_req_free(b.r);
    fx_buf_cleanup(&body);

    /* a request freed before it settles (a body refused half way) waits for its slices */
    struct fx_api_req *c = new_req(e);
    fx_api_req_set_json(c, &o);
    struct fx_buf big;
    fx_buf_init(&big, 0);
    ndjson_body(&big, 3000);
    struct seqctx cc = {c};
    p = fx_jsonrec_new(&o, seq_rec, seq_bad, &cc);
    fx_jsonrec_defer_lines(p, par_line);
    assert_int_equal(fx_jsonrec_feed(p, big.data, big.len, &err), 0);
    fx_jsonrec_free(p);
    fx_api_req_free(c);
    fx_buf_cleanup(&big);
}

/* ---- big bodies: chunks held while the body arrives ---- */

/* A request with holding on, fed body in network-sized pieces; returns once
 * the writer holds some of its chunks (the rest waits for its commit). */
static struct fx_api_req *held_req(struct env *e, const struct fx_buf *body)
{
    struct fx_jsonrec_opts o;
    fx_jsonrec_opts_init(&o);
    o.ndjson = 1;
    struct fx_err err;
    struct seqctx c = {new_req(e)};
    fx_api_req_hold(c.r, e->w);
    fx_api_req_set_json(c.r, &o);
    struct fx_jsonrec_parser *p = fx_jsonrec_new(&o, seq_rec, seq_bad, &c);
    fx_jsonrec_defer_lines(p, par_line);
    for (size_t at = 0; at < body->len; at += 4093) {
        size_t nb = body->len - at < 4093 ? body->len - at : 4093;
        assert_int_equal(fx_jsonrec_feed(p, body->data + at, nb, &err), 0);
        fx_api_req_progress(c.r);
    }
    assert_int_equal(fx_jsonrec_finish(p, &err), 0);
    fx_jsonrec_free(p);
    for (int i = 0; i < 500 && count(e, "SELECT count(*) FROM staging_held") == 0; i++) {
        fx_api_req_progress(c.r);
        usleep(10000);
    }
    assert_true(count(e, "SELECT count(*) FROM staging_held") > 0);
    /* held: staged, nothing queued for the relay yet */
    assert_int_equal(count(e, "SELECT count(*) FROM outbox o JOIN staging_held h"
                              " ON h.id = o.staging_id"),
                     0);
    assert_int_equal(count(e, "SELECT count(DISTINCT h.batch_id) FROM staging_held h"
                              " JOIN batches b ON b.id = h.batch_id WHERE b.state = 'receiving'"),
                     1);
    return c.r;
}

/* The rows of batch's chunks: each chunk's payload has as many rows as its
 * staging row says, row numbers rise across chunks in order, no key twice.
 * Returns the number of rows. */
static int64_t check_chunks(struct env *e, const char *batch)
{
    struct fx_store *db;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_store_open(e->rt.db_url, "ingest", &db, &err), 0);
    struct fx_stmt *st;
    assert_int_equal(fx_store_prepare(db,
                                      "SELECT s.nrows, p.payload, s.first_row, s.last_row"
                                      " FROM staging s JOIN staging_payload p ON p.id = s.id"
                                      " WHERE s.batch_id = ? ORDER BY s.seq",
                                      &st, &err),
                     0);
    fx_stmt_bind_text(st, 1, batch, strlen(batch));
    int64_t total = 0, last = 0;
    size_t nkeys = 0, capkeys = 0;
    char(*keys)[33] = NULL;
    while (fx_stmt_step(st) == FX_STORE_ROW) {
        size_t len;
        const char *pl = fx_stmt_text(st, 1, &len);
        struct fx_chunk c;
        char why[256];
        assert_int_equal(fx_chunk_decode(pl, len, &c, why, sizeof(why)), 0);
        assert_string_equal(c.batch, batch);
        assert_int_equal((int64_t)c.nrows, fx_stmt_int(st, 0));
        assert_true(c.nrows > 0);
        assert_int_equal(fx_chunk_val(&c, 0, 0)->i, fx_stmt_int(st, 2));
        assert_int_equal(fx_chunk_val(&c, c.nrows - 1, 0)->i, fx_stmt_int(st, 3));
        for (size_t r = 0; r < c.nrows; r++) {
            int64_t row = fx_chunk_val(&c, r, 0)->i;
            assert_true(row > last);
            last = row;
            if (nkeys == capkeys) {
                capkeys = capkeys ? 2 * capkeys : 1024;
                keys = realloc(keys, capkeys * sizeof(*keys));
            }
            snprintf(keys[nkeys++], 33, "%s", fx_chunk_val(&c, r, 1)->s);
        }
        total += (int64_t)c.nrows;
        fx_chunk_free(&c);
    }
    fx_stmt_reset(st);
    fx_store_close(db);
    qsort(keys, nkeys, sizeof(*keys), (int (*)(const void *, const void *))strcmp);
    for (size_t i = 1; i < nkeys; i++)
        assert_string_not_equal(keys[i - 1], keys[i]);
    free(keys);
    return total;
}

/* A big body's chunks are written while it arrives and queued at its
 * commit; chunks holding repeats found then are rewritten without them; the
 * outcome is that of the request without holding (the same body sent again
 * the usual way is all duplicates), in a batch of its own. */
static void test_held_chunks(void **state)
{
    struct env *e = *state;
    struct fx_buf body;
    fx_buf_init(&body, 0);
    ndjson_body(&body, 6000);
    struct fx_api_req *b = held_req(e, &body);
    fx_api_req_settle(b);
    submit_to(e->w, b);
    const struct fx_api_counts *cb = fx_api_req_result(b);
    assert_true(cb->accepted > 4000);
    assert_true(cb->duplicate > 100); /* repeats inside the body, some in held chunks */
    assert_string_equal(cb->state, "queued");
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held"), 0);
    assert_int_equal(check_chunks(e, cb->batch_id), (int64_t)cb->accepted);
    /* every chunk is queued for the relay, the batch closed with the request's counts */
    assert_int_equal(count(e, "SELECT count(*) FROM staging s LEFT JOIN outbox o"
                              " ON o.staging_id = s.id WHERE o.seq IS NULL"),
                     0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM batches WHERE id = '%s' AND state = 'queued' AND accepted = %llu"
             " AND chunks = (SELECT count(*) FROM staging WHERE batch_id = '%s')",
             cb->batch_id, (unsigned long long)cb->accepted, cb->batch_id);
    assert_int_equal(count(e, sql), 1);
    /* held chunks were rewritten: full chunks but the last, except those */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM staging WHERE batch_id = '%s' AND nrows < 1000 AND seq <"
             " (SELECT max(seq) FROM staging WHERE batch_id = '%s')",
             cb->batch_id, cb->batch_id);
    assert_true(count(e, sql) > 0);

    /* the same body without holding: validated the same, every row a duplicate now */
    struct fx_jsonrec_opts o;
    fx_jsonrec_opts_init(&o);
    o.ndjson = 1;
    struct fx_err err;
    struct seqctx a = {new_req(e)};
    struct fx_jsonrec_parser *p = fx_jsonrec_new(&o, seq_rec, seq_bad, &a);
    assert_int_equal(fx_jsonrec_feed(p, body.data, body.len, &err), 0);
    assert_int_equal(fx_jsonrec_finish(p, &err), 0);
    fx_jsonrec_free(p);
    submit_to(e->w, a.r);
    const struct fx_api_counts *ca = fx_api_req_result(a.r);
    assert_int_equal(ca->received, cb->received);
    assert_int_equal(ca->rejected, cb->rejected);
    assert_int_equal(ca->accepted, 0);
    assert_int_equal(ca->duplicate, cb->accepted + cb->duplicate);
    assert_string_not_equal(ca->batch_id, cb->batch_id);

    /* and sent again with holding: every held chunk emptied and removed */
    struct fx_api_req *c = held_req(e, &body);
    fx_api_req_settle(c);
    submit_to(e->w, c);
    const struct fx_api_counts *cc = fx_api_req_result(c);
    assert_int_equal(cc->accepted, 0);
    assert_int_equal(cc->duplicate, cb->accepted + cb->duplicate);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held"), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM staging WHERE batch_id = '%s'", cc->batch_id);
    assert_int_equal(count(e, sql), 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM batches WHERE id = '%s' AND state = 'queued' AND chunks = 0"
             " AND duplicate = %llu",
             cc->batch_id, (unsigned long long)cc->duplicate);
    assert_int_equal(count(e, sql), 1);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_payload p LEFT JOIN staging s"
                              " ON s.id = p.id WHERE s.id IS NULL"),
                     0);
    fx_api_req_free(a.r);
    fx_api_req_free(b);
    fx_api_req_free(c);
    fx_buf_cleanup(&body);
}

/* A big body that never commits (refused half way, client gone): its held
 * chunks are removed, its batch fails, and none of its rows counts as seen. */
static void test_held_abort(void **state)
{
    struct env *e = *state;
    struct fx_buf body;
    fx_buf_init(&body, 0);
    ndjson_body(&body, 4000);
    struct fx_api_req *r = held_req(e, &body);
    fx_api_req_free(r);
    for (int i = 0; i < 500 && count(e, "SELECT count(*) FROM staging_held") > 0; i++)
        usleep(10000);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held"), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM staging"), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_payload"), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM batches WHERE state = 'failed' AND error"
                              " LIKE '%before its body was complete%'"),
                     1);
    /* sent again in full: taken as new */
    struct fx_api_req *again = held_req(e, &body);
    fx_api_req_settle(again);
    submit_to(e->w, again);
    assert_true(fx_api_req_result(again)->accepted > 2500);
    assert_int_equal(check_chunks(e, fx_api_req_result(again)->batch_id),
                     (int64_t)fx_api_req_result(again)->accepted);
    fx_api_req_free(again);
    fx_buf_cleanup(&body);
}

/* A big body sent again with its Idempotency-Key: the first reply again, and
 * the chunks the repeat held are gone with its batch. */
static void test_held_replay(void **state)
{
    struct env *e = *state;
    struct fx_buf body;
    fx_buf_init(&body, 0);
    ndjson_body(&body, 3000);
    char hash[65];
    memset(hash, 'a', 64);
    hash[64] = '\0';
    struct fx_api_req *a = held_req(e, &body);
    fx_api_req_settle(a);
    fx_api_req_set_idempotency(a, "big-1", hash);
    submit_to(e->w, a);
    int64_t batches = count(e, "SELECT count(*) FROM batches");
    int64_t chunks = count(e, "SELECT count(*) FROM staging");
    struct fx_api_req *b = held_req(e, &body);
    fx_api_req_settle(b);
    fx_api_req_set_idempotency(b, "big-1", hash);
    submit_to(e->w, b);
    assert_int_equal(fx_api_req_replay(b), 1);
    assert_string_equal(fx_api_req_result(b)->batch_id, fx_api_req_result(a)->batch_id);
    assert_int_equal(fx_api_req_result(b)->accepted, fx_api_req_result(a)->accepted);
    assert_int_equal(count(e, "SELECT count(*) FROM batches"), batches);
    assert_int_equal(count(e, "SELECT count(*) FROM staging"), chunks);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held"), 0);
    fx_api_req_free(a);
    fx_api_req_free(b);
    fx_buf_cleanup(&body);
}

/* Held chunks left by a server that stopped mid-body are removed when the
 * next one starts; another live server's recent ones stay. */
static void test_held_sweep(void **state)
{
    struct env *e = *state;
    struct fx_buf body;
    fx_buf_init(&body, 0);
    ndjson_body(&body, 4000);
    struct fx_api_req *r = held_req(e, &body);
    int64_t held = count(e, "SELECT count(*) FROM staging_held");
    fx_api_writer_stop(e->w); /* stops with r's body unfinished: its chunks stay */
    e->w = NULL;
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held"), held);
    assert_int_equal(count(e, "SELECT count(*) FROM staging"), held);
    struct fx_store *db;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_store_open(e->rt.db_url, "ingest", &db, &err), 0);
    char now[32];
    int64_t ms = fx_now_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    char sql[512];
    /* another host's server, receiving a body right now; and one gone long ago */
    snprintf(sql, sizeof(sql),
             "INSERT INTO staging_held(batch_id,id,owner,created_at) VALUES"
             " ('00000000-0000-7000-8000-000000000001','x1','elsewhere 1 t','%s'),"
             " ('00000000-0000-7000-8000-000000000002','x2','elsewhere 1 t',"
             "'2020-01-01T00:00:00.000Z')",
             now);
    assert_int_equal(fx_store_exec(db, sql, &err), 0);
    fx_store_close(db);
    assert_int_equal(fx_api_writer_start(&e->rt, &e->w, &err), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held"), 1);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_held WHERE id = 'x1'"), 1);
    assert_int_equal(count(e, "SELECT count(*) FROM staging"), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM staging_payload"), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM batches WHERE state = 'failed' AND error"
                              " LIKE '%server stopped%'"),
                     1);
    /* r's end reaching a server without its held chunks: refused, nothing taken */
    fx_api_req_settle(r);
    assert_int_not_equal(submit_wait(e, r), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM staging"), 0);
    assert_int_equal(count(e, "SELECT count(*) FROM api_requests"), 0);
    fx_api_req_free(r);
    fx_buf_cleanup(&body);
}

int main(void)
{
    setenv("FLUXO_LOG_LEVEL", "warn", 1);
    /* SQLite always; with FLUXO_TEST_PG_URL (the integration run,
     * test_ingest_api_pg) the same on PostgreSQL instead, less the
     * in-memory filter of `seen`, which only the SQLite store has (and the
     * key sort, which needs no store) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_reject_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_position_keyed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_one_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_one_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slices_equal_sequential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changing_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_written_in_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_written_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_sweep, setup, teardown),
    };
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test(test_keys_sort),
        cmocka_unit_test_setup_teardown(test_dedupe_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_filter_grows, setup, teardown),
    };
    const char *pg = getenv("FLUXO_TEST_PG_URL");
    if (pg && *pg) {
        pg_url = pg;
        return cmocka_run_group_tests_name("API writer [postgresql]", tests, NULL, NULL);
    }
    int failed = cmocka_run_group_tests_name("API writer [sqlite]", tests, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("API writer, dedupe filter [sqlite]", sqlite_only, NULL, NULL);
    return failed ? 1 : 0;
}
