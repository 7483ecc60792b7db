/* SPDX-License-Identifier: MIT */
/*
 * Tests for the metrics registry: the exact exposition text of counters, gauges,
 * histograms and scrape-time gauges, label and help escaping, registration
 * rules, the series cap, exact sums under concurrent updates, and, when Debian's
 * python3-prometheus-client is installed, Prometheus' own text parser reading
 * what we render.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fluxo/error.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/metrics.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(struct fx_metrics *m)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    assert_int_equal(fx_metrics_render(m, &b), 0);
    if (!b.data)
        return fx_strdup("");
    return fx_buf_take(&b);
}

static void assert_render(struct fx_metrics *m, const char *want)
{
    char *got = render(m);
    if (strcmp(got, want) != 0) {
        print_error("--- want ---\n%s--- got ---\n%s------------\n", want, got);
        free(got);
        fail();
    }
    free(got);
}

static void test_counter_text(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    const char *const labels[] = {"route", "status", NULL};
    struct fx_metric_family *f = fx_metrics_counter(m, "fx_requests_total", "Requests.", labels);
    assert_non_null(f);
    const char *a[] = {"/a", "200"}, *b[] = {"/b", "500"};
    struct fx_series *sa = fx_metric_series(f, a);
    fx_counter_add(sa, 3);
    fx_counter_add(fx_metric_series(f, b), 1);
    assert_ptr_equal(fx_metric_series(f, a), sa);
    fx_counter_add(fx_metric_series(f, a), 2);
    /* a family without labels exists, at 0, from registration on */
    struct fx_metric_family *p = fx_metrics_counter(m, "fx_plain_total", NULL, NULL);
    assert_non_null(p);
    assert_ptr_equal(fx_metric_series(p, NULL), fx_metric_series(p, NULL));
    assert_render(m, "# HELP fx_requests_total Requests.\n"
                     "# TYPE fx_requests_total counter\n"
                     "fx_requests_total{route=\"/a\",status=\"200\"} 5\n"
                     "fx_requests_total{route=\"/b\",status=\"500\"} 1\n"
                     "# HELP fx_plain_total \n"
                     "# TYPE fx_plain_total counter\n"
                     "fx_plain_total 0\n");
    fx_counter_add(fx_metric_series(p, NULL), UINT64_MAX);
    assert_render(m, "# HELP fx_requests_total Requests.\n"
                     "# TYPE fx_requests_total counter\n"
                     "fx_requests_total{route=\"/a\",status=\"200\"} 5\n"
                     "fx_requests_total{route=\"/b\",status=\"500\"} 1\n"
                     "# HELP fx_plain_total \n"
                     "# TYPE fx_plain_total counter\n"
                     "fx_plain_total 18446744073709551615\n");
    fx_metrics_free(m);
}

static void test_gauge_text(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    const char *const labels[] = {"k", NULL};
    struct fx_metric_family *g = fx_metrics_gauge(m, "fx_temp", "Gauge values.", labels);
    assert_non_null(g);
    static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    struct fx_series *s[10];
    for (size_t i = 0; i < 10; i++) {
        const char *lv[] = {keys[i]};
        s[i] = fx_metric_series(g, lv);
        assert_non_null(s[i]);
    }
    fx_gauge_set(s[0], 1.5);
    fx_gauge_add(s[0], -0.25);
    fx_gauge_set(s[1], 0.1);
    fx_gauge_set(s[2], 1e21);
    fx_gauge_set(s[3], INFINITY);
    fx_gauge_set(s[4], -INFINITY);
    fx_gauge_set(s[5], NAN);
    fx_gauge_set(s[6], 3);
    fx_gauge_add(s[7], -0.5);
    fx_gauge_set(s[8], 123456789.125);
    fx_gauge_set(s[9], 2.5e-7);
    assert_render(m, "# HELP fx_temp Gauge values.\n"
                     "# TYPE fx_temp gauge\n"
                     "fx_temp{k=\"a\"} 1.25\n"
                     "fx_temp{k=\"b\"} 0.1\n"
                     "fx_temp{k=\"c\"} 1e+21\n"
                     "fx_temp{k=\"d\"} +Inf\n"
                     "fx_temp{k=\"e\"} -Inf\n"
                     "fx_temp{k=\"f\"} NaN\n"
                     "fx_temp{k=\"g\"} 3\n"
                     "fx_temp{k=\"h\"} -0.5\n"
                     "fx_temp{k=\"i\"} 123456789.125\n"
                     "fx_temp{k=\"j\"} 2.5e-07\n");
    fx_metrics_free(m);
}

static void test_histogram_text(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    const char *const labels[] = {"route", NULL};
    const double bounds[] = {0.25, 0.5, 1};
    struct fx_metric_family *h =
        fx_metrics_histogram(m, "fx_latency_seconds", "Latency.", labels, bounds, 3);
    assert_non_null(h);
    const char *x[] = {"x"};
    struct fx_series *s = fx_metric_series(h, x);
    /* le is inclusive: 0.25 falls in the 0.25 bucket; NaN is ignored */
    const double obs[] = {0.125, 0.25, 0.375, 2, 8};
    for (size_t i = 0; i < 5; i++)
        fx_histogram_observe(s, obs[i]);
    fx_histogram_observe(s, NAN);
    const char *y[] = {"y"};
    assert_non_null(fx_metric_series(h, y));
    /* default buckets, and a histogram without labels */
    struct fx_metric_family *d =
        fx_metrics_histogram(m, "fx_default", "Default buckets.", NULL, NULL, 0);
    assert_non_null(d);
    fx_histogram_observe(fx_metric_series(d, NULL), 0.007);
    assert_render(m, "# HELP fx_latency_seconds Latency.\n"
                     "# TYPE fx_latency_seconds histogram\n"
                     "fx_latency_seconds_bucket{route=\"x\",le=\"0.25\"} 2\n"
                     "fx_latency_seconds_bucket{route=\"x\",le=\"0.5\"} 3\n"
                     "fx_latency_seconds_bucket{route=\"x\",le=\"1\"} 3\n"
                     "fx_latency_seconds_bucket{route=\"x\",le=\"+Inf\"} 5\n"
                     "fx_latency_seconds_sum{route=\"x\"} 10.75\n"
                     "fx_latency_seconds_count{route=\"x\"} 5\n"
                     "fx_latency_seconds_bucket{route=\"y\",le=\"0.25\"} 0\n"
                     "fx_latency_seconds_bucket{route=\"y\",le=\"0.5\"} 0\n"
                     "fx_latency_seconds_bucket{route=\"y\",le=\"1\"} 0\n"
                     "fx_latency_seconds_bucket{route=\"y\",le=\"+Inf\"} 0\n"
                     "fx_latency_seconds_sum{route=\"y\"} 0\n"
                     "fx_latency_seconds_count{route=\"y\"} 0\n"
                     "# HELP fx_default Default buckets.\n"
                     "# TYPE fx_default histogram\n"
                     "fx_default_bucket{le=\"0.005\"} 0\n"
                     "fx_default_bucket{le=\"0.01\"} 1\n"
                     "fx_default_bucket{le=\"0.025\"} 1\n"
                     "fx_default_bucket{le=\"0.05\"} 1\n"
                     "fx_default_bucket{le=\"0.1\"} 1\n"
                     "fx_default_bucket{le=\"0.25\"} 1\n"
                     "fx_default_bucket{le=\"0.5\"} 1\n"
                     "fx_default_bucket{le=\"1\"} 1\n"
                     "fx_default_bucket{le=\"2.5\"} 1\n"
                     "fx_default_bucket{le=\"5\"} 1\n"
                     "fx_default_bucket{le=\"10\"} 1\n"
                     "fx_default_bucket{le=\"+Inf\"} 1\n"
                     "fx_default_sum 0.007\n"
                     "fx_default_count 1\n");
    fx_metrics_free(m);
}

static void test_escaping(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    const char *const labels[] = {"v", NULL};
    struct fx_metric_family *f = fx_metrics_counter(
        m, "fx:esc_total", "Help with \\ backslash,\nnewline and \"quotes\".", labels);
    assert_non_null(f);
    const char *v1[] = {"a\\b\"c\nd"}, *v2[] = {""}, *v3[] = {"caf\xc3\xa9 {x=\"1\"}"};
    fx_counter_add(fx_metric_series(f, v1), 1);
    fx_counter_add(fx_metric_series(f, v2), 2);
    fx_counter_add(fx_metric_series(f, v3), 3);
    assert_render(m, "# HELP fx:esc_total Help with \\\\ backslash,\\nnewline and \"quotes\".\n"
                     "# TYPE fx:esc_total counter\n"
                     "fx:esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"
                     "fx:esc_total{v=\"\"} 2\n"
                     "fx:esc_total{v=\"caf\xc3\xa9 {x=\\\"1\\\"}\"} 3\n");
    fx_metrics_free(m);
}

static void test_registration_rules(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    const char *const ab[] = {"a", "b", NULL}, *const ba[] = {"b", "a", NULL};
    const char *const a[] = {"a", NULL};
    struct fx_metric_family *c = fx_metrics_counter(m, "fx_c_total", "first help", ab);
    assert_non_null(c);
    /* same name, type and labels: the same family (help of the first kept) */
    assert_ptr_equal(fx_metrics_counter(m, "fx_c_total", "other help", ab), c);
    assert_null(fx_metrics_gauge(m, "fx_c_total", "x", ab));
    assert_null(fx_metrics_counter(m, "fx_c_total", "x", ba));
    assert_null(fx_metrics_counter(m, "fx_c_total", "x", a));
    assert_null(fx_metrics_counter(m, "fx_c_total", "x", NULL));

    const double b1[] = {1, 2}, b2[] = {1, 3}, binf[] = {1, 2, INFINITY};
    struct fx_metric_family *h = fx_metrics_histogram(m, "fx_h", "h", a, b1, 2);
    assert_non_null(h);
    assert_ptr_equal(fx_metrics_histogram(m, "fx_h", "h", a, b1, 2), h);
    assert_ptr_equal(fx_metrics_histogram(m, "fx_h", "h", a, binf, 3), h);
    assert_null(fx_metrics_histogram(m, "fx_h", "h", a, b2, 2));
    assert_null(fx_metrics_histogram(m, "fx_h", "h", a, NULL, 0));

    /* a histogram's derived names are taken, both ways round */
    assert_null(fx_metrics_counter(m, "fx_h_count", "x", NULL));
    assert_null(fx_metrics_gauge(m, "fx_h_sum", "x", NULL));
    assert_null(fx_metrics_gauge(m, "fx_h_bucket", "x", NULL));
    assert_non_null(fx_metrics_gauge(m, "fx_h_other", "x", NULL));
    assert_non_null(fx_metrics_counter(m, "fx_g_sum", "x", NULL));
    assert_null(fx_metrics_histogram(m, "fx_g", "x", NULL, NULL, 0));

    /* names */
    static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "é", "a{b}"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_null(fx_metrics_counter(m, bad_names[i], "x", NULL));
    assert_null(fx_metrics_counter(m, NULL, "x", NULL));
    assert_non_null(fx_metrics_counter(m, "_:Ok_9", "x", NULL));
    const char *const bad1[] = {"__reserved", NULL}, *const bad2[] = {"1a", NULL},
                      *const bad3[] = {"a:b", NULL}, *const dup[] = {"a", "a", NULL},
                      *const le[] = {"le", NULL};
    assert_null(fx_metrics_counter(m, "fx_l1", "x", bad1));
    assert_null(fx_metrics_counter(m, "fx_l2", "x", bad2));
    assert_null(fx_metrics_counter(m, "fx_l3", "x", bad3));
    assert_null(fx_metrics_counter(m, "fx_l4", "x", dup));
    assert_null(fx_metrics_histogram(m, "fx_l5", "x", le, NULL, 0));
    assert_non_null(fx_metrics_counter(m, "fx_l6", "x", le));

    /* bounds must be finite and strictly increasing */
    const double eq[] = {1, 1}, dec[] = {2, 1}, nan_b[] = {NAN}, ninf[] = {-INFINITY, 1};
    assert_null(fx_metrics_histogram(m, "fx_b1", "x", NULL, eq, 2));
    assert_null(fx_metrics_histogram(m, "fx_b2", "x", NULL, dec, 2));
    assert_null(fx_metrics_histogram(m, "fx_b3", "x", NULL, nan_b, 1));
    assert_null(fx_metrics_histogram(m, "fx_b4", "x", NULL, ninf, 2));
    assert_null(fx_metrics_histogram(m, "fx_b5", "x", NULL, NULL, 3));

    /* series lookups that cannot succeed */
    assert_null(fx_metric_series(NULL, NULL));
    assert_null(fx_metric_series(c, NULL));
    const char *half[] = {"x", NULL};
    assert_null(fx_metric_series(c, half));

    /* updates of the wrong type, or on NULL, are ignored */
    struct fx_series *cs = fx_metric_series(fx_metrics_counter(m, "fx_t_total", "t", NULL), NULL);
    fx_gauge_set(cs, 5);
    fx_gauge_add(cs, 5);
    fx_histogram_observe(cs, 5);
    fx_counter_add(NULL, 1);
    fx_gauge_set(NULL, 1);
    fx_gauge_add(NULL, 1);
    fx_histogram_observe(NULL, 1);
    char *text = render(m);
    assert_non_null(strstr(text, "\nfx_t_total 0\n"));
    free(text);

    assert_null(fx_metrics_counter(NULL, "fx_x", "x", NULL));
    struct fx_buf b;
    fx_buf_init(&b, 0);
    assert_int_equal(fx_metrics_render(NULL, &b), FX_EINVAL);
    fx_buf_cleanup(&b);
    fx_metrics_free(m);
    fx_metrics_free(NULL);
}

struct fn_state {
    int calls;
    double value;
};

static double read_fn(void *ud)
{
    struct fn_state *st = ud;
    st->calls++;
    return st->value;
}

static void test_gauge_fn(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    struct fn_state a = {0, 42}, b = {0, 0.5};
    assert_int_equal(fx_metrics_gauge_fn(m, "fx_queue_depth", "Rows waiting.", read_fn, &a), 0);
    assert_non_null(fx_metrics_counter(m, "fx_after_total", "after", NULL));
    assert_int_equal(a.calls, 0);
    assert_render(m, "# HELP fx_queue_depth Rows waiting.\n"
                     "# TYPE fx_queue_depth gauge\n"
                     "fx_queue_depth 42\n"
                     "# HELP fx_after_total after\n"
                     "# TYPE fx_after_total counter\n"
                     "fx_after_total 0\n");
    assert_int_equal(a.calls, 1);
    a.value = 7;
    char *text = render(m);
    assert_non_null(strstr(text, "\nfx_queue_depth 7\n"));
    free(text);
    assert_int_equal(a.calls, 2);

    /* registering again rebinds: a restarted owner takes the gauge over */
    assert_int_equal(fx_metrics_gauge_fn(m, "fx_queue_depth", "ignored", read_fn, &b), 0);
    text = render(m);
    assert_non_null(strstr(text, "# HELP fx_queue_depth Rows waiting.\n"));
    assert_non_null(strstr(text, "\nfx_queue_depth 0.5\n"));
    free(text);
    assert_int_equal(a.calls, 2);
    assert_int_equal(b.calls, 1);

    /* the old owner cannot detach the new one; the new one can */
    assert_int_equal(fx_metrics_gauge_fn_remove(m, "fx_queue_depth", &a), FX_ENOTFOUND);
    assert_int_equal(fx_metrics_gauge_fn_remove(m, "fx_queue_depth", &b), 0);
    assert_int_equal(fx_metrics_gauge_fn_remove(m, "fx_queue_depth", &b), FX_ENOTFOUND);
    assert_int_equal(fx_metrics_gauge_fn_remove(m, "fx_after_total", NULL), FX_ENOTFOUND);
    assert_int_equal(fx_metrics_gauge_fn_remove(m, "fx_nothing", NULL), FX_ENOTFOUND);
    assert_render(m, "# HELP fx_after_total after\n"
                     "# TYPE fx_after_total counter\n"
                     "fx_after_total 0\n");
    assert_int_equal(b.calls, 1);

    assert_int_equal(fx_metrics_gauge_fn(m, "fx_after_total", "x", read_fn, &a), FX_EEXIST);
    assert_int_equal(fx_metrics_gauge_fn(m, "bad name", "x", read_fn, &a), FX_EINVAL);
    assert_int_equal(fx_metrics_gauge_fn(m, "fx_nofn", "x", NULL, &a), FX_EINVAL);
    assert_null(fx_metrics_gauge(m, "fx_queue_depth", "x", NULL));
    fx_metrics_free(m);
}

static void test_series_cap(void **state)
{
    (void)state;
    struct fx_metrics *m = fx_metrics_new();
    const char *const labels[] = {"id", NULL};
    struct fx_metric_family *f = fx_metrics_counter(m, "fx_many_total", "many", labels);
    char id[16];
    const char *lv[] = {id};
    for (int i = 0; i < FX_METRICS_MAX_SERIES; i++) {
        snprintf(id, sizeof(id), "%d", i);
        struct fx_series *s = fx_metric_series(f, lv);
        assert_non_null(s);
        fx_counter_add(s, (uint64_t)i);
    }
    snprintf(id, sizeof(id), "%d", FX_METRICS_MAX_SERIES);
    assert_null(fx_metric_series(f, lv));
    /* existing series are still found once the family is full */
    snprintf(id, sizeof(id), "%d", 1234);
    struct fx_series *s = fx_metric_series(f, lv);
    assert_non_null(s);
    fx_counter_add(s, 1);
    char *text = render(m);
    assert_non_null(strstr(text, "\nfx_many_total{id=\"1234\"} 1235\n"));
    assert_non_null(strstr(text, "\nfx_many_total{id=\"9999\"} 9999\n"));
    assert_null(strstr(text, "id=\"10000\""));
    free(text);

    /* a limited buffer: FX_ETOOBIG, and what was written is a clean prefix */
    struct fx_buf b;
    fx_buf_init(&b, 100);
    assert_int_equal(fx_metrics_render(m, &b), FX_ETOOBIG);
    assert_true(b.len <= 100);
    assert_memory_equal(b.data, "# HELP fx_many_total many\n", 26);
    fx_buf_cleanup(&b);
    fx_metrics_free(m);
}

static void test_default_registry(void **state)
{
    (void)state;
    struct fx_metrics *d = fx_metrics_default();
    assert_non_null(d);
    assert_ptr_equal(fx_metrics_default(), d);
    fx_metrics_free(d); /* ignored: the process owns it */
    assert_non_null(fx_metrics_counter(d, "fx_test_default_total", "still usable", NULL));
    char *text = render(d);
    assert_non_null(strstr(text, "fx_test_default_total 0\n"));
    free(text);
}

/* --- concurrency ------------------------------------------------------------------ */

#define THREADS 4
#define ROUNDS 100000

struct shared {
    struct fx_metric_family *dyn;
    struct fx_series *counter, *gauge, *hist;
    struct fx_metrics *m;
    int stop;
    pthread_mutex_t mu;
    int renders;
};

static void *hammer(void *arg)
{
    struct shared *sh = arg;
    static const char *const routes[] = {"/a", "/b", "/c"};
    static const char *const codes[] = {"200", "404"};
    for (int i = 0; i < ROUNDS; i++) {
        fx_counter_add(sh->counter, 1);
        fx_gauge_add(sh->gauge, 1.0);
        fx_histogram_observe(sh->hist, (double)(i % 4));
        /* dynamic lookups: every thread creates and finds the same six series */
        const char *lv[] = {routes[i % 3], codes[i % 2]};
        fx_counter_add(fx_metric_series(sh->dyn, lv), 1);
    }
    return NULL;
}

static void *scraper(void *arg)
{
    struct shared *sh = arg;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        int stop = sh->stop;
        pthread_mutex_unlock(&sh->mu);
        if (stop)
            break;
        char *text = render(sh->m);
        free(text);
        sh->renders++;
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    struct shared sh = {0};
    pthread_mutex_init(&sh.mu, NULL);
    sh.m = fx_metrics_new();
    const char *const labels[] = {"route", "status", NULL};
    const double bounds[] = {0.5, 1.5, 2.5};
    sh.dyn = fx_metrics_counter(sh.m, "fx_dyn_total", "dynamic", labels);
    sh.counter = fx_metric_series(fx_metrics_counter(sh.m, "fx_n_total", "n", NULL), NULL);
    sh.gauge = fx_metric_series(fx_metrics_gauge(sh.m, "fx_g", "g", NULL), NULL);
    sh.hist = fx_metric_series(fx_metrics_histogram(sh.m, "fx_hist", "h", NULL, bounds, 3), NULL);
    assert_non_null(sh.dyn);
    assert_non_null(sh.counter);
    assert_non_null(sh.gauge);
    assert_non_null(sh.hist);

    pthread_t t[THREADS], scr;
    assert_int_equal(pthread_create(&scr, NULL, scraper, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_lock(&sh.mu);
    sh.stop = 1;
    pthread_mutex_unlock(&sh.mu);
    pthread_join(scr, NULL);

    char *text = render(sh.m);
    /* 4 x 100000 rounds; i % 6 cycles through the (route, status) pairs, and
     * 100000 = 6 x 16666 + 4, so pairs 0..3 get one more per thread */
    const char *want[] = {
        "\nfx_n_total 400000\n",
        "\nfx_g 400000\n",
        "\nfx_hist_bucket{le=\"0.5\"} 100000\n",
        "\nfx_hist_bucket{le=\"1.5\"} 200000\n",
        "\nfx_hist_bucket{le=\"2.5\"} 300000\n",
        "\nfx_hist_bucket{le=\"+Inf\"} 400000\n",
        "\nfx_hist_sum 600000\n",
        "\nfx_hist_count 400000\n",
        "\nfx_dyn_total{route=\"/a\",status=\"200\"} 66668\n",
        "\nfx_dyn_total{route=\"/b\",status=\"404\"} 66668\n",
        "\nfx_dyn_total{route=\"/c\",status=\"200\"} 66668\n",
        "\nfx_dyn_total{route=\"/a\",status=\"404\"} 66668\n",
        "\nfx_dyn_total{route=\"/b\",status=\"200\"} 66664\n",
        "\nfx_dyn_total{route=\"/c\",status=\"404\"} 66664\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(text, want[i]))
            fail_msg("missing %s in:\n%s", want[i] + 1, text);
    }
    /* creation order is the order of first use: (/a,200), (/b,404), (/c,200), ... */
    assert_true(strstr(text, "route=\"/a\",status=\"200\"") <
                strstr(text, "route=\"/b\",status=\"404\""));
    free(text);
    print_message("  %d concurrent renders during the updates\n", sh.renders);
    pthread_mutex_destroy(&sh.mu);
    fx_metrics_free(sh.m);
}

/* --- Prometheus' own parser ------------------------------------------------------- */

/* Reads the exposition with prometheus_client's text parser and prints every
 * sample as name|label=value,...|value (labels sorted), one per line. */
static const char parse_py[] =
    "import sys\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "text = open(sys.argv[1], encoding='utf-8').read()\n"
    "for fam in text_string_to_metric_families(text):\n"
    "    for s in fam.samples:\n"
    "        labels = ','.join('%s=%s' % (k, s.labels[k]) for k in sorted(s.labels))\n"
    "        print('%s|%s|%s|%r' % (fam.type, s.name, labels, s.value))\n";

/* A python with prometheus_client: Debian's package installs it for /usr/bin/python3,
 * which a python3 earlier in PATH (pyenv, a venv) does not see. NULL if none. */
static const char *prometheus_python(void)
{
    static const char *const pythons[] = {"python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof(pythons) / sizeof(pythons[0]); i++) {
        char *cmd =
            fx_asprintf("%s -c 'import prometheus_client.parser' >/dev/null 2>&1", pythons[i]);
        int rc = system(cmd);
        free(cmd);
        if (rc == 0)
            return pythons[i];
    }
    return NULL;
}

static void test_prometheus_parser(void **state)
{
    (void)state;
    const char *python = prometheus_python();
    if (!python) {
        print_message("  python3-prometheus-client not installed: exact-text tests only\n");
        skip();
    }
    struct fx_metrics *m = fx_metrics_new();
    const char *const labels[] = {"route", "status", NULL};
    struct fx_metric_family *c =
        fx_metrics_counter(m, "fx_req_total", "Requests\\ \"all\"\nsorts", labels);
    const char *v1[] = {"/a\\b", "2\"0\n0"};
    fx_counter_add(fx_metric_series(c, v1), 7);
    fx_gauge_set(fx_metric_series(fx_metrics_gauge(m, "fx_temp", "t", NULL), NULL), -1.25);
    const double bounds[] = {0.25, 1};
    const char *const rl[] = {"route", NULL};
    const char *rv[] = {"x"};
    struct fx_series *h =
        fx_metric_series(fx_metrics_histogram(m, "fx_lat", "lat", rl, bounds, 2), rv);
    fx_histogram_observe(h, 0.125);
    fx_histogram_observe(h, 4);
    struct fn_state st = {0, 3};
    assert_int_equal(fx_metrics_gauge_fn(m, "fx_depth", "depth", read_fn, &st), 0);

    char *text = render(m);
    char *dir = tu_tmpdir();
    char *prom = tu_write_file(dir, "metrics.prom", text, strlen(text));
    char *py = tu_write_file(dir, "parse.py", parse_py, strlen(parse_py));
    char *cmd = fx_asprintf("%s %s %s 2>&1", python, py, prom);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct fx_buf out;
    fx_buf_init(&out, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        assert_int_equal(fx_buf_append(&out, chunk, n), 0);
    int status = pclose(p);
    const char *want = "counter|fx_req_total|route=/a\\b,status=2\"0\n0|7.0\n"
                       "gauge|fx_temp||-1.25\n"
                       "histogram|fx_lat_bucket|le=0.25,route=x|1.0\n"
                       "histogram|fx_lat_bucket|le=1,route=x|1.0\n"
                       "histogram|fx_lat_bucket|le=+Inf,route=x|2.0\n"
                       "histogram|fx_lat_sum|route=x|4.125\n"
                       "histogram|fx_lat_count|route=x|2.0\n"
                       "gauge|fx_depth||3.0\n";
    if (status != 0 || !out.data || strcmp(out.data, want) != 0)
        fail_msg("prometheus_client read:\n%s\nfrom:\n%s", out.data ? out.data : "", text);
    fx_buf_cleanup(&out);
    free(cmd);
    free(py);
    free(prom);
    tu_rmrf(dir);
    free(dir);
    free(text);
    fx_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_text),       cmocka_unit_test(test_gauge_text),
        cmocka_unit_test(test_histogram_text),     cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_registration_rules), cmocka_unit_test(test_gauge_fn),
        cmocka_unit_test(test_series_cap),         cmocka_unit_test(test_default_registry),
        cmocka_unit_test(test_concurrent_updates), cmocka_unit_test(test_prometheus_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
