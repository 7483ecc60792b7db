/* SPDX-License-Identifier: MIT */
/*
 * The API writer (src/services/ingest_api.c) against a real SQLite ingest
 * store: requests validated, grouped, committed and answered; duplicates
 * found both in `seen` and among keys not yet written; idempotent replays and
 * conflicts; request status; keys written to `seen` at stop; chunks staged
 * with their outbox entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fluxo/config.h"
#include "fluxo/services.h"
#include "fluxo/store.h"
#include "fluxo/util.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct env {
    char *dir;
    struct fx_config *cfg;
    struct fx_runtime rt;
    struct fx_api_writer *w;
};

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

int main(void)
{
    setenv("FLUXO_LOG_LEVEL", "warn", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_reject_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_position_keyed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_one_group, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
