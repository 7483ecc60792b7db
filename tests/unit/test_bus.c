/* SPDX-License-Identifier: MIT */
/*
 * Bus conformance suite: the semantics promised in include/fluxo/bus.h,
 * checked through the public API only, once per backend URL:
 *   - always the embedded backend, "local:<fresh temp dir>" per test;
 *   - FLUXO_TEST_AMQP_URL / FLUXO_TEST_KAFKA_URL when set (shared brokers:
 *     every group and routing key of a test carries a random prefix);
 *   - Kafka without FLUXO_TEST_KAFKA_URL (or with kafka://mock): librdkafka's mock
 *     cluster, started by this process and reached over TCP by every handle, child
 *     processes included (FLUXO_TEST_KAFKA_URL=none skips it). See kafka_main.
 * Separate processes are this same binary re-executed with "--child ROLE
 * ..." (see child_main), so each opens its own handle; children are stopped
 * by PID by the test, even on failure. Waits use deadlines, never fixed sleeps.
 */
#include "testutil.h"

#include "fluxo/bus.h"
#include "fluxo/error.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fixture ---------------------------------------------------------- */

struct fixture {
    const char *base; /* env URL, or NULL for the embedded backend */
    char *tmp;        /* scratch dir (and the local bus) */
    char *url;
    char prefix[16]; /* random, for names on shared brokers */
    pid_t kids[8];
    int nkids;
};

static const char *backend_url; /* of the group being run; NULL = local */

static int setup(void **state)
{
    struct fixture *f = fx_calloc(1, sizeof(*f));
    f->base = backend_url;
    f->tmp = tu_tmpdir();
    assert_non_null(f->tmp);
    f->url = f->base ? fx_strdup(f->base) : fx_asprintf("local:%s/bus", f->tmp);
    char id[37];
    fx_uuid7(id);
    snprintf(f->prefix, sizeof(f->prefix), "t%.8s", id + 28);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < f->nkids; i++) {
        if (f->kids[i] > 0) {
            kill(f->kids[i], SIGKILL);
            waitpid(f->kids[i], NULL, 0);
        }
    }
    tu_rmrf(f->tmp);
    free(f->tmp);
    free(f->url);
    free(f);
    return 0;
}

static int is_local(const struct fixture *f)
{
    return f->base == NULL;
}

/* Name helpers: "<prefix>_<name>" for groups, "<prefix>.<key>" for routing keys. */
#define GROUP(f, buf, name) (snprintf(buf, sizeof(buf), "%s_%s", (f)->prefix, name), buf)
#define RKEY(f, buf, key) (snprintf(buf, sizeof(buf), "%s.%s", (f)->prefix, key), buf)

static struct fx_bus *bus_open(const struct fixture *f)
{
    struct fx_bus *b = NULL;
    struct fx_err err;
    int rc = fx_bus_open(f->url, &b, &err);
    if (rc)
        fail_msg("fx_bus_open(%s): %s: %s", f->url, fx_errname(rc), err.reason);
    return b;
}

static void declare1(struct fx_bus *b, const char *group, const char *pattern,
                     const struct fx_group_opts *o)
{
    struct fx_err err;
    int rc = fx_bus_declare(b, group, &pattern, 1, o, &err);
    if (rc)
        fail_msg("declare %s: %s: %s", group, fx_errname(rc), err.reason);
}

static void publish1(struct fx_bus *b, const char *rk, const char *id, const char *key,
                     const char *data)
{
    struct fx_msg m = {.id = id,
                       .type = "test.event",
                       .source = "/test",
                       .routing_key = rk,
                       .key = key,
                       .data = data,
                       .data_len = data ? strlen(data) : 0};
    struct fx_err err;
    int rc = fx_bus_publish(b, &m, 1, &err);
    if (rc)
        fail_msg("publish %s: %s: %s", id, fx_errname(rc), err.reason);
}

/* Receive with a deadline; NULL when nothing came. */
static struct fx_delivery *recv_wait(struct fx_bus *b, const char *group, int timeout_ms)
{
    struct fx_delivery *d = NULL;
    struct fx_err err;
    int rc = fx_bus_receive(b, group, timeout_ms, &d, &err);
    if (rc < 0)
        fail_msg("receive %s: %s: %s", group, fx_errname(rc), err.reason);
    return rc == 1 ? d : NULL;
}

static struct fx_delivery *recv_must(struct fx_bus *b, const char *group, const char *want_id)
{
    struct fx_delivery *d = recv_wait(b, group, 10000);
    if (!d)
        fail_msg("no message on %s within 10 s (expected %s)", group, want_id ? want_id : "any");
    if (want_id && strcmp(d->id, want_id) != 0)
        fail_msg("on %s got %s, expected %s", group, d->id, want_id);
    return d;
}

static void ack_free(struct fx_bus *b, struct fx_delivery *d)
{
    assert_int_equal(fx_bus_ack(b, d), 0);
    fx_delivery_free(d);
}

static void fast_opts(struct fx_group_opts *o)
{
    fx_group_opts_init(o);
    o->backoff_ms = 1;
    o->backoff_max_ms = 1;
}

/* ---- child processes -------------------------------------------------- */

static pid_t spawn(struct fixture *f, const char *const *args)
{
    const char *argv[16] = {"/proc/self/exe", "--child"};
    int n = 2;
    for (; args[n - 2]; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    f->kids[f->nkids++] = pid;
    return pid;
}

/* Wait for a child with a deadline; returns its wait status (killed on timeout). */
static int reap(struct fixture *f, pid_t pid, int timeout_ms)
{
    int64_t deadline = fx_mono_ms() + timeout_ms;
    int status = 0, pause = 1;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (fx_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("child %d did not finish within %d ms", (int)pid, timeout_ms);
        }
        fx_sleep_ms(pause); /* polling a condition, with a deadline */
        pause = pause < 20 ? pause * 2 : 20;
    }
    for (int i = 0; i < f->nkids; i++)
        if (f->kids[i] == pid)
            f->kids[i] = 0;
    return status;
}

/* Read one byte from fd with a deadline. */
static int read_byte(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    char c;
    return read(fd, &c, 1) == 1 ? c : -1;
}

/*
 * consume URL GROUP OUT READYFD GOFD: receive+ack until the group is drained.
 * Handshake with the parent so every consumer provably competes: 'R' (handle
 * open) ... 'G'; then take one message and hold it, 'F' ... 'C'; then go on.
 */
static int child_consume(char **a)
{
    struct fx_bus *b = NULL;
    struct fx_err err;
    if (fx_bus_open(a[0], &b, &err))
        return 2;
    int ready = atoi(a[3]), go = atoi(a[4]);
    if (write(ready, "R", 1) != 1 || read_byte(go, 30000) != 'G')
        return 3;
    FILE *out = fopen(a[2], "w");
    int64_t deadline = fx_mono_ms() + 60000;
    int rc = 0, first = 1;
    while (out && fx_mono_ms() < deadline) {
        struct fx_delivery *d = NULL;
        int r = fx_bus_receive(b, a[1], first ? 30000 : 100, &d, &err);
        if (first && r == 1) {
            first = 0;
            if (write(ready, "F", 1) != 1 || read_byte(go, 30000) != 'C')
                rc = 7;
        }
        if (r < 0) {
            rc = 4;
            break;
        }
        if (r == 0) {
            if (fx_bus_depth(b, a[1]) == 0)
                break;
            continue;
        }
        fprintf(out, "%s\n", d->id);
        if (fx_bus_ack(b, d) != 0)
            rc = 5;
        fx_delivery_free(d);
    }
    if (out)
        fclose(out);
    fx_bus_close(b);
    return out ? rc : 6;
}

/* publish-kill URL RK ID: publish, then die by SIGKILL as soon as it returns. */
static int child_publish_kill(char **a)
{
    struct fx_bus *b = NULL;
    struct fx_err err;
    if (fx_bus_open(a[0], &b, &err))
        return 2;
    struct fx_msg m = {.id = a[2],
                       .type = "test.event",
                       .source = "/test",
                       .routing_key = a[1],
                       .data = "{\"crash\":true}",
                       .data_len = 14};
    if (fx_bus_publish(b, &m, 1, &err))
        return 3;
    raise(SIGKILL);
    return 4;
}

/* receive-kill URL GROUP OUT: receive one, note its id, die before the ack. */
static int child_receive_kill(char **a)
{
    struct fx_bus *b = NULL;
    struct fx_err err;
    if (fx_bus_open(a[0], &b, &err))
        return 2;
    struct fx_delivery *d = NULL;
    if (fx_bus_receive(b, a[1], 10000, &d, &err) != 1)
        return 3;
    FILE *out = fopen(a[2], "w");
    if (!out)
        return 4;
    fprintf(out, "%s %d", d->id, d->attempt);
    fclose(out);
    raise(SIGKILL);
    return 5;
}

static int child_main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[0], "consume") == 0)
        return child_consume(argv + 1);
    if (argc >= 4 && strcmp(argv[0], "publish-kill") == 0)
        return child_publish_kill(argv + 1);
    if (argc >= 4 && strcmp(argv[0], "receive-kill") == 0)
        return child_receive_kill(argv + 1);
    fprintf(stderr, "unknown child role\n");
    return 99;
}

/* ---- tests ------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    char g[64], rk[128], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "rt"), RKEY(f, pat, "orders.*"), NULL);
    static const char data[] = " {\"rows\":[{\"nome\":\"Jo\\u00e3o \\\"Z\\\"\",\"v\":1.5e2},"
                               "[],null,true] , \"s\":\"\xc3\xa9\\n\"}\n";
    struct fx_msg m = {.id = "0190c5e2-7b1a-7000-8000-0000000000aa",
                       .type = "fluxo.ingest.chunk",
                       .source = "/fluxo/ingest",
                       .routing_key = RKEY(f, rk, "orders.created"),
                       .key = "order-\"42\"",
                       .correlation_id = "corr \xe2\x82\xac",
                       .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                       .time = "2024-05-01T12:00:00.123Z",
                       .data = data,
                       .data_len = sizeof(data) - 1};
    struct fx_err err;
    assert_int_equal(fx_bus_publish(b, &m, 1, &err), 0);
    struct fx_delivery *d = recv_must(b, g, m.id);
    assert_string_equal(d->type, m.type);
    assert_string_equal(d->source, m.source);
    assert_string_equal(d->routing_key, m.routing_key);
    assert_string_equal(d->key, m.key);
    assert_string_equal(d->correlation_id, m.correlation_id);
    assert_string_equal(d->traceparent, m.traceparent);
    assert_string_equal(d->time, m.time);
    assert_int_equal(d->data_len, m.data_len);
    assert_memory_equal(d->data, m.data, m.data_len);
    assert_int_equal(d->attempt, 1);
    assert_string_equal(d->group, g);
    ack_free(b, d);
    assert_int_equal(fx_bus_depth(b, g), 0);
    assert_null(recv_wait(b, g, 0));

    /* no data, no optional attributes */
    publish1(b, rk, "bare", NULL, NULL);
    d = recv_must(b, g, "bare");
    assert_null(d->data);
    assert_null(d->key);
    assert_null(d->correlation_id);
    assert_non_null(d->time);
    ack_free(b, d);
    fx_bus_close(b);
}

static void test_fanout(void **state)
{
    struct fixture *f = *state;
    char g1[64], g2[64], g3[64], p1[128], p2[128], p3[128], rk1[128], rk2[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g1, "all"), RKEY(f, p1, "orders.#"), NULL);
    declare1(b, GROUP(f, g2, "created"), RKEY(f, p2, "orders.created"), NULL);
    declare1(b, GROUP(f, g3, "other"), RKEY(f, p3, "other"), NULL);
    publish1(b, RKEY(f, rk1, "orders.created"), "m1", NULL, "1");
    publish1(b, RKEY(f, rk2, "orders.cancelled"), "m2", NULL, "2");
    ack_free(b, recv_must(b, g1, "m1"));
    ack_free(b, recv_must(b, g1, "m2"));
    ack_free(b, recv_must(b, g2, "m1"));
    assert_null(recv_wait(b, g2, 100));
    assert_null(recv_wait(b, g3, 0));
    assert_int_equal(fx_bus_depth(b, g3), 0);

    /* a group with two matching patterns still gets one copy */
    char g4[64], p4[128], p5[128];
    const char *pats[] = {RKEY(f, p4, "orders.*"), RKEY(f, p5, "#")};
    struct fx_err err;
    assert_int_equal(fx_bus_declare(b, GROUP(f, g4, "two"), pats, 2, NULL, &err), 0);
    publish1(b, rk1, "m3", NULL, NULL);
    ack_free(b, recv_must(b, g4, "m3"));
    assert_null(recv_wait(b, g4, 100));
    fx_bus_close(b);
}

static void test_late_group(void **state)
{
    struct fixture *f = *state;
    char early[64], late[64], pat[128], rk[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, early, "early"), RKEY(f, pat, "x"), NULL);
    publish1(b, RKEY(f, rk, "x"), "old", NULL, NULL);
    declare1(b, GROUP(f, late, "late"), pat, NULL);
    publish1(b, rk, "new", NULL, NULL);
    ack_free(b, recv_must(b, late, "new"));
    assert_null(recv_wait(b, late, 100));
    ack_free(b, recv_must(b, early, "old"));
    ack_free(b, recv_must(b, early, "new"));

    /* declaring again is idempotent: no duplicate bindings, nothing replayed */
    declare1(b, late, pat, NULL);
    declare1(b, late, pat, NULL);
    publish1(b, rk, "again", NULL, NULL);
    assert_int_equal(fx_bus_depth(b, late), 1);
    ack_free(b, recv_must(b, late, "again"));
    fx_bus_close(b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_competing_processes(void **state)
{
    struct fixture *f = *state;
    enum { N = 300 };
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "work"), RKEY(f, pat, "work"), NULL);
    static char ids[N][16];
    struct fx_msg batch[50];
    for (int i = 0; i < N; i += 50) {
        for (int k = 0; k < 50; k++) {
            snprintf(ids[i + k], sizeof(ids[0]), "m%03d", i + k);
            batch[k] = (struct fx_msg){.id = ids[i + k],
                                       .type = "t",
                                       .source = "/test",
                                       .routing_key = pat,
                                       .data = "{}",
                                       .data_len = 2};
        }
        struct fx_err err;
        assert_int_equal(fx_bus_publish(b, batch, 50, &err), 0);
    }
    assert_int_equal(fx_bus_depth(b, g), N);

    int ready[2][2], go[2][2];
    char out[2][4200], rfd[2][16], gfd[2][16];
    pid_t pid[2];
    for (int c = 0; c < 2; c++) {
        assert_int_equal(pipe(ready[c]), 0);
        assert_int_equal(pipe(go[c]), 0);
        snprintf(out[c], sizeof(out[c]), "%s/consumer%d.txt", f->tmp, c);
        snprintf(rfd[c], sizeof(rfd[c]), "%d", ready[c][1]);
        snprintf(gfd[c], sizeof(gfd[c]), "%d", go[c][0]);
        const char *args[] = {"consume", f->url, g, out[c], rfd[c], gfd[c], NULL};
        pid[c] = spawn(f, args);
        close(ready[c][1]);
        close(go[c][0]);
    }
    for (int c = 0; c < 2; c++)
        assert_int_equal(read_byte(ready[c][0], 30000), 'R');
    /* three consumers each hold a distinct message at the same time */
    char *got[N * 2];
    int n = 0, mine = 0;
    struct fx_delivery *held = recv_must(b, g, NULL);
    for (int c = 0; c < 2; c++)
        assert_int_equal(write(go[c][1], "G", 1), 1);
    for (int c = 0; c < 2; c++)
        assert_int_equal(read_byte(ready[c][0], 30000), 'F');
    assert_int_equal(fx_bus_depth(b, g), N);
    got[n++] = fx_strdup(held->id);
    mine++;
    ack_free(b, held);
    for (int c = 0; c < 2; c++) {
        assert_int_equal(write(go[c][1], "C", 1), 1);
        close(go[c][1]);
        close(ready[c][0]);
    }

    int64_t deadline = fx_mono_ms() + 60000;
    while (fx_mono_ms() < deadline) {
        struct fx_delivery *d = recv_wait(b, g, 100);
        if (!d) {
            if (fx_bus_depth(b, g) == 0)
                break;
            continue;
        }
        assert_true(n < N * 2);
        got[n++] = fx_strdup(d->id);
        mine++;
        ack_free(b, d);
    }
    int per_child[2] = {0, 0};
    for (int c = 0; c < 2; c++) {
        int status = reap(f, pid[c], 60000);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        FILE *in = fopen(out[c], "r");
        assert_non_null(in);
        char line[64];
        while (fgets(line, sizeof(line), in)) {
            line[strcspn(line, "\n")] = '\0';
            assert_true(n < N * 2);
            got[n++] = fx_strdup(line);
            per_child[c]++;
        }
        fclose(in);
    }
    print_message("competing consumers: parent %d, child1 %d, child2 %d\n", mine, per_child[0],
                  per_child[1]);
    /* disjoint and complete: sorted, the ids are exactly m000..m299 once each */
    assert_int_equal(n, N);
    qsort(got, (size_t)n, sizeof(got[0]), cmp_str);
    for (int i = 0; i < N; i++) {
        assert_string_equal(got[i], ids[i]);
        free(got[i]);
    }
    assert_true(mine > 0 && per_child[0] > 0 && per_child[1] > 0);
    assert_int_equal(fx_bus_depth(b, g), 0);
    fx_bus_close(b);
}

static void test_nack_backoff(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.backoff_ms = 300;
    o.backoff_max_ms = 1000;
    declare1(b, GROUP(f, g, "retry"), RKEY(f, pat, "job"), &o);
    publish1(b, pat, "j1", NULL, "{\"n\":1}");
    struct fx_delivery *d = recv_must(b, g, "j1");
    assert_int_equal(d->attempt, 1);
    int64_t t0 = fx_mono_ms();
    assert_int_equal(fx_bus_nack(b, d, "transient failure"), 0);
    fx_delivery_free(d);
    assert_null(recv_wait(b, g, 0)); /* not before the backoff */
    assert_int_equal(fx_bus_depth(b, g), 1);
    d = recv_must(b, g, "j1");
    int64_t waited = fx_mono_ms() - t0;
    assert_int_equal(d->attempt, 2);
    assert_string_equal(d->data, "{\"n\":1}");
    if (waited < 250)
        fail_msg("redelivered after %lld ms, backoff is 300 ms", (long long)waited);
    /* second retry doubles the delay (600 ms) */
    t0 = fx_mono_ms();
    assert_int_equal(fx_bus_nack(b, d, "again"), 0);
    fx_delivery_free(d);
    d = recv_must(b, g, "j1");
    waited = fx_mono_ms() - t0;
    assert_int_equal(d->attempt, 3);
    if (waited < 550)
        fail_msg("third delivery after %lld ms, backoff is 600 ms", (long long)waited);
    ack_free(b, d);
    fx_bus_close(b);
}

/* What distribution does once it has decoded a chunk: the data is freed. */
static void drop_data(struct fx_delivery *d)
{
    free(d->data);
    d->data = NULL;
    d->data_len = 0;
}

/* The caller may drop a delivery's data once it has used it (distribution
 * frees it after decoding a chunk): a nack after that still redelivers the
 * message whole, and a dead letter keeps its data. */
static void test_nack_after_data_freed(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    struct fx_group_opts o;
    fast_opts(&o);
    o.max_attempts = 2;
    declare1(b, GROUP(f, g, "freed"), RKEY(f, pat, "job"), &o);
    publish1(b, pat, "c1", NULL, "{\"rows\":[1,2,3]}");
    struct fx_delivery *d = recv_must(b, g, "c1");
    drop_data(d);
    assert_int_equal(fx_bus_nack(b, d, "store busy"), 0);
    fx_delivery_free(d);
    d = recv_must(b, g, "c1");
    assert_int_equal(d->attempt, 2);
    assert_non_null(d->data);
    assert_string_equal(d->data, "{\"rows\":[1,2,3]}");
    drop_data(d);
    assert_int_equal(fx_bus_nack(b, d, "still busy"), 0); /* max_attempts: dead letter */
    fx_delivery_free(d);
    struct fx_delivery *again = recv_wait(b, g, 200);
    if (again)
        fail_msg("dead letter %s redelivered", again->id);
    fx_bus_close(b);
}

struct dead_seen {
    int n;
    char id[64];
    char reason[256];
    int attempt;
};

static int on_dead(void *ud, const struct fx_delivery *d, const char *reason)
{
    struct dead_seen *s = ud;
    s->n++;
    snprintf(s->id, sizeof(s->id), "%s", d->id);
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    s->attempt = d->attempt;
    return 0;
}

static void test_dead_letter(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    struct fx_group_opts o;
    fast_opts(&o);
    o.max_attempts = 3;
    declare1(b, GROUP(f, g, "dlq"), RKEY(f, pat, "job"), &o);
    publish1(b, pat, "poison", NULL, "[1,2,3]");
    publish1(b, pat, "fine", NULL, NULL);
    for (int attempt = 1; attempt <= 3; attempt++) {
        struct fx_delivery *d = recv_must(b, g, NULL);
        if (strcmp(d->id, "fine") == 0) {
            ack_free(b, d);
            d = recv_must(b, g, "poison");
        }
        assert_string_equal(d->id, "poison");
        assert_int_equal(d->attempt, attempt);
        char why[64];
        snprintf(why, sizeof(why), "bad row on attempt %d", attempt);
        assert_int_equal(fx_bus_nack(b, d, why), 0);
        fx_delivery_free(d);
    }
    struct fx_delivery *d = recv_wait(b, g, 200);
    if (d)
        fail_msg("dead letter %s redelivered (attempt %d)", d->id, d->attempt);
    assert_int_equal(fx_bus_depth(b, g), 0);
    struct dead_seen s = {0};
    assert_int_equal(fx_bus_dead_letters(b, g, on_dead, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.id, "poison");
    assert_string_equal(s.reason, "bad row on attempt 3");
    assert_int_equal(s.attempt, 3);
    fx_bus_close(b);
}

static void test_lease_expiry(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b1 = bus_open(f), *b2 = bus_open(f);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.lease_ms = 300;
    declare1(b1, GROUP(f, g, "lease"), RKEY(f, pat, "job"), &o);
    publish1(b1, pat, "j1", NULL, NULL);
    struct fx_delivery *d = recv_must(b1, g, "j1");
    fx_delivery_free(d);
    fx_bus_close(b1); /* consumer vanished without ack */
    assert_null(recv_wait(b2, g, 0));
    d = recv_must(b2, g, "j1");
    assert_int_equal(d->attempt, 2);
    ack_free(b2, d);
    fx_bus_close(b2);
}

static void test_lease_expiry_dead_letter(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.lease_ms = 100;
    o.max_attempts = 2;
    declare1(b, GROUP(f, g, "crashloop"), RKEY(f, pat, "job"), &o);
    publish1(b, pat, "j1", NULL, NULL);
    struct fx_delivery *d1 = recv_must(b, g, "j1");
    struct fx_delivery *d2 = recv_must(b, g, "j1"); /* after d1's lease expired */
    assert_int_equal(d2->attempt, 2);
    assert_null(recv_wait(b, g, 400)); /* d2's lease expires too: dead, not redelivered */
    assert_int_equal(fx_bus_ack(b, d2), FX_ENOTFOUND);
    assert_int_equal(fx_bus_depth(b, g), 0);
    struct dead_seen s = {0};
    assert_int_equal(fx_bus_dead_letters(b, g, on_dead, &s), 0);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(s.reason, "lease expired"));
    fx_delivery_free(d1);
    fx_delivery_free(d2);
    fx_bus_close(b);
}

static void test_crash_after_publish(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "crashpub"), RKEY(f, pat, "job"), NULL);
    const char *args[] = {"publish-kill", f->url, pat, "survivor", NULL};
    int status = reap(f, spawn(f, args), 30000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    struct fx_delivery *d = recv_must(b, g, "survivor");
    assert_string_equal(d->data, "{\"crash\":true}");
    ack_free(b, d);
    fx_bus_close(b);
}

static void test_crash_before_ack(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128], out[4200];
    struct fx_bus *b = bus_open(f);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.lease_ms = 300;
    declare1(b, GROUP(f, g, "crashack"), RKEY(f, pat, "job"), &o);
    publish1(b, pat, "j1", NULL, "{}");
    snprintf(out, sizeof(out), "%s/received.txt", f->tmp);
    const char *args[] = {"receive-kill", f->url, g, out, NULL};
    int status = reap(f, spawn(f, args), 30000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    char *seen = tu_read_file(out, NULL);
    assert_non_null(seen);
    assert_string_equal(seen, "j1 1");
    free(seen);
    struct fx_delivery *d = recv_must(b, g, "j1");
    assert_int_equal(d->attempt, 2);
    ack_free(b, d);
    fx_bus_close(b);
}

static void test_order_per_key(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *h1 = bus_open(f), *h2 = bus_open(f);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.backoff_ms = 50;
    declare1(h1, GROUP(f, g, "keyed"), RKEY(f, pat, "job"), &o);
    publish1(h1, pat, "A1", "A", NULL);
    publish1(h1, pat, "B1", "B", NULL);
    publish1(h1, pat, "A2", "A", NULL);
    publish1(h1, pat, "B2", "B", NULL);
    publish1(h1, pat, "A3", "A", NULL);
    publish1(h1, pat, "N1", NULL, NULL);
    struct fx_delivery *a1 = recv_must(h1, g, "A1");
    struct fx_delivery *b1 = recv_must(h2, g, "B1"); /* not A2: A1 is in flight */
    struct fx_delivery *n1 = recv_must(h2, g, "N1"); /* unkeyed flows past blocked keys */
    assert_null(recv_wait(h1, g, 100));
    ack_free(h2, n1);
    ack_free(h1, a1);
    struct fx_delivery *a2 = recv_must(h2, g, "A2");
    /* a nacked head keeps blocking its key until it is redelivered and acked */
    assert_int_equal(fx_bus_nack(h2, b1, "retry me"), 0);
    fx_delivery_free(b1);
    assert_null(recv_wait(h1, g, 0));
    b1 = recv_must(h1, g, "B1");
    assert_int_equal(b1->attempt, 2);
    ack_free(h2, a2);
    ack_free(h1, b1);
    struct fx_delivery *x = recv_must(h1, g, NULL), *y = recv_must(h2, g, NULL);
    assert_true((strcmp(x->id, "B2") == 0 && strcmp(y->id, "A3") == 0) ||
                (strcmp(x->id, "A3") == 0 && strcmp(y->id, "B2") == 0));
    ack_free(h1, x);
    ack_free(h2, y);
    assert_int_equal(fx_bus_depth(h1, g), 0);

    /* a dead-lettered head releases its key */
    o.max_attempts = 1;
    declare1(h1, g, pat, &o);
    publish1(h1, pat, "C1", "C", NULL);
    publish1(h1, pat, "C2", "C", NULL);
    struct fx_delivery *c1 = recv_must(h1, g, "C1");
    assert_null(recv_wait(h2, g, 0));
    assert_int_equal(fx_bus_nack(h1, c1, "fatal"), 0);
    fx_delivery_free(c1);
    ack_free(h2, recv_must(h2, g, "C2"));
    fx_bus_close(h1);
    fx_bus_close(h2);
}

/* Two threads, keys interleaved: a key is never in flight twice, in order. */
struct order_shared {
    const struct fixture *f;
    const char *group;
    pthread_mutex_t mu;
    int inflight[4];
    int last[4];
    int done;
    int violations;
};

static void *order_worker(void *arg)
{
    struct order_shared *s = arg;
    struct fx_bus *b = NULL;
    struct fx_err err;
    if (fx_bus_open(s->f->url, &b, &err))
        return (void *)1;
    int64_t deadline = fx_mono_ms() + 60000;
    while (fx_mono_ms() < deadline) {
        struct fx_delivery *d = NULL;
        int r = fx_bus_receive(b, s->group, 50, &d, &err);
        if (r < 0)
            break;
        pthread_mutex_lock(&s->mu);
        int finished = s->done == 200;
        pthread_mutex_unlock(&s->mu);
        if (r == 0) {
            if (finished)
                break;
            continue;
        }
        int k = d->key[0] - 'A', idx = atoi(d->data);
        pthread_mutex_lock(&s->mu);
        if (s->inflight[k] || idx <= s->last[k])
            s->violations++;
        s->inflight[k] = 1;
        s->last[k] = idx;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->mu);
        s->inflight[k] = 0;
        s->done++;
        pthread_mutex_unlock(&s->mu);
        if (fx_bus_ack(b, d) != 0) {
            pthread_mutex_lock(&s->mu);
            s->violations++;
            pthread_mutex_unlock(&s->mu);
        }
        fx_delivery_free(d);
    }
    fx_bus_close(b);
    return NULL;
}

static void test_order_per_key_threads(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "keyed2"), RKEY(f, pat, "job"), NULL);
    struct order_shared s = {.f = f, .group = g, .last = {-1, -1, -1, -1}};
    pthread_mutex_init(&s.mu, NULL);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, order_worker, &s), 0);
    static char ids[200][16], datas[200][16], keys[4][2] = {"A", "B", "C", "D"};
    struct fx_msg batch[20];
    for (int i = 0; i < 200; i += 20) {
        for (int k = 0; k < 20; k++) {
            int n = i + k;
            snprintf(ids[n], sizeof(ids[n]), "k%03d", n);
            snprintf(datas[n], sizeof(datas[n]), "%d", n);
            batch[k] = (struct fx_msg){.id = ids[n],
                                       .type = "t",
                                       .source = "/test",
                                       .routing_key = pat,
                                       .key = keys[n % 4],
                                       .data = datas[n],
                                       .data_len = strlen(datas[n])};
        }
        struct fx_err err;
        assert_int_equal(fx_bus_publish(b, batch, 20, &err), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(s.done, 200);
    assert_int_equal(s.violations, 0);
    pthread_mutex_destroy(&s.mu);
    fx_bus_close(b);
}

static void test_topic_match(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *key;
        int match;
    } cases[] = {
        {"processed_data", "processed_data", 1},
        {"processed_data", "processed_data.x", 0},
        {"processed_data", "processed", 0},
        {"notifications.#", "notifications", 1},
        {"notifications.#", "notifications.order", 1},
        {"notifications.#", "notifications.order.x", 1},
        {"notifications.#", "notificationsx", 0},
        {"notifications.#", "other.notifications", 0},
        {"#", "", 1},
        {"#", "a", 1},
        {"#", "a.b.c", 1},
        {"*", "a", 1},
        {"*", "", 0},
        {"*", "a.b", 0},
        {"inventory.*", "inventory.check", 1},
        {"inventory.*", "inventory.response", 1},
        {"inventory.*", "inventory", 0},
        {"inventory.*", "inventory.check.x", 0},
        {"*.order", "notifications.order", 1},
        {"*.order", "order", 0},
        {"a.*.c", "a.b.c", 1},
        {"a.*.c", "a.c", 0},
        {"a.#.c", "a.c", 1},
        {"a.#.c", "a.b.c", 1},
        {"a.#.c", "a.b.x.c", 1},
        {"a.#.c", "a.b.x.d", 0},
        {"#.c", "c", 1},
        {"#.c", "a.b.c", 1},
        {"#.c", "a.b.c.d", 0},
        {"#.#", "a", 1},
        {"#.*", "", 0},
        {"#.*", "a", 1},
        {"*.#", "a.b", 1},
        {"#.a.#", "x.a.y", 1},
        {"#.a.#", "x.b.y", 0},
        {"a.#.b.#.c", "a.b.c", 1},
        {"a.#.b.#.c", "a.x.b.y.z.c", 1},
        {"a.#.b.#.c", "a.x.c.b", 0},
        {"", "", 1},
        {"", "a", 0},
        {"a.", "a.", 1},
        {"a.*", "a.", 1},
        {"a", "a.", 0},
        {"a#", "ab", 0},
        {"a*", "ab", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = fx_topic_match(cases[i].pattern, cases[i].key);
        if (got != cases[i].match)
            fail_msg("fx_topic_match(\"%s\", \"%s\") = %d, want %d", cases[i].pattern, cases[i].key,
                     got, cases[i].match);
    }
    assert_int_equal(fx_topic_match(NULL, "a"), 0);
}

/* Routing through the bus follows the same table. */
static void test_topic_routing(void **state)
{
    struct fixture *f = *state;
    char g1[64], g2[64], g3[64], p1[128], p2[128], p3[128], rk[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g1, "checks"), RKEY(f, p1, "inventory.check"), NULL);
    declare1(b, GROUP(f, g2, "responses"), RKEY(f, p2, "inventory.response"), NULL);
    declare1(b, GROUP(f, g3, "notif"), RKEY(f, p3, "notifications.#"), NULL);
    publish1(b, RKEY(f, rk, "inventory.check"), "c1", NULL, NULL);
    publish1(b, RKEY(f, rk, "inventory.response"), "r1", NULL, NULL);
    publish1(b, RKEY(f, rk, "notifications.order"), "n1", NULL, NULL);
    publish1(b, RKEY(f, rk, "notifications"), "n2", NULL, NULL);
    publish1(b, RKEY(f, rk, "unrouted"), "u1", NULL, NULL);
    ack_free(b, recv_must(b, g1, "c1"));
    ack_free(b, recv_must(b, g2, "r1"));
    ack_free(b, recv_must(b, g3, "n1"));
    ack_free(b, recv_must(b, g3, "n2"));
    assert_int_equal(fx_bus_depth(b, g1) + fx_bus_depth(b, g2) + fx_bus_depth(b, g3), 0);
    fx_bus_close(b);
}

static void test_depth(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    struct fx_group_opts o;
    fast_opts(&o);
    o.max_attempts = 1;
    declare1(b, GROUP(f, g, "depth"), RKEY(f, pat, "job"), &o);
    assert_int_equal(fx_bus_depth(b, g), 0);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d", i);
        publish1(b, pat, id, i == 4 ? "K" : NULL, NULL);
    }
    publish1(b, pat, "d5", "K", NULL); /* waiting behind d4: still counted */
    assert_int_equal(fx_bus_depth(b, g), 6);
    struct fx_delivery *d = recv_must(b, g, "d0");
    assert_int_equal(fx_bus_depth(b, g), 6); /* in flight counts */
    ack_free(b, d);
    assert_int_equal(fx_bus_depth(b, g), 5);
    d = recv_must(b, g, "d1");
    assert_int_equal(fx_bus_nack(b, d, "dead"), 0); /* max_attempts 1: dead letter */
    fx_delivery_free(d);
    assert_int_equal(fx_bus_depth(b, g), 4);
    char other[64];
    assert_int_equal(fx_bus_depth(b, GROUP(f, other, "undeclared")), FX_ENOTFOUND);
    fx_bus_close(b);
}

static void test_ack_after_lease_lost(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *h1 = bus_open(f), *h2 = bus_open(f);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.lease_ms = 200;
    declare1(h1, GROUP(f, g, "lost"), RKEY(f, pat, "job"), &o);
    publish1(h1, pat, "j1", NULL, NULL);
    struct fx_delivery *slow = recv_must(h1, g, "j1");
    struct fx_delivery *fast = recv_must(h2, g, "j1"); /* after the lease expired */
    assert_int_equal(fast->attempt, 2);
    assert_int_equal(fx_bus_ack(h1, slow), FX_ENOTFOUND);
    assert_int_equal(fx_bus_nack(h1, slow, "late"), FX_ENOTFOUND);
    /* a handle cannot settle another handle's delivery either */
    assert_int_equal(fx_bus_ack(h1, fast), FX_ENOTFOUND);
    assert_int_equal(fx_bus_ack(h2, fast), 0);
    assert_int_equal(fx_bus_ack(h2, fast), FX_ENOTFOUND); /* twice */
    fx_delivery_free(slow);
    fx_delivery_free(fast);
    assert_int_equal(fx_bus_depth(h1, g), 0);
    fx_bus_close(h1);
    fx_bus_close(h2);
}

static void test_batch_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    if (!is_local(f))
        skip(); /* bus.h promises atomic batches on the embedded backend only */
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "batch"), RKEY(f, pat, "job"), NULL);
    static char ids[64][16];
    struct fx_msg batch[64];
    size_t big_len = (16u << 20) + 1;
    char *big = fx_malloc(big_len);
    memset(big, ' ', big_len);
    big[0] = '1';
    for (int i = 0; i < 64; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%02d", i);
        batch[i] = (struct fx_msg){.id = ids[i],
                                   .type = "t",
                                   .source = "/test",
                                   .routing_key = pat,
                                   .data = "{}",
                                   .data_len = 2};
    }
    batch[40].data = big; /* too big: fails after 40 rows were inserted */
    batch[40].data_len = big_len;
    struct fx_err err;
    assert_int_equal(fx_bus_publish(b, batch, 64, &err), FX_ETOOBIG);
    assert_non_null(strstr(err.reason, "message 41"));
    assert_int_equal(fx_bus_depth(b, g), 0);
    assert_null(recv_wait(b, g, 0));
    batch[40].data = "{}";
    batch[40].data_len = 2;
    batch[63].id = NULL; /* rejected before anything is written */
    assert_int_equal(fx_bus_publish(b, batch, 64, &err), FX_EINVAL);
    assert_non_null(strstr(err.reason, "message 64: id"));
    assert_int_equal(fx_bus_depth(b, g), 0);
    batch[63].id = ids[63];
    assert_int_equal(fx_bus_publish(b, batch, 64, &err), 0);
    assert_int_equal(fx_bus_depth(b, g), 64);
    for (int i = 0; i < 64; i++)
        ack_free(b, recv_must(b, g, ids[i])); /* publish order within the batch */
    free(big);
    fx_bus_close(b);
}

static void test_receive_timeout(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "idle"), RKEY(f, pat, "job"), NULL);
    int64_t t0 = fx_mono_ms();
    assert_null(recv_wait(b, g, 300));
    int64_t took = fx_mono_ms() - t0;
    if (took < 300 || took > 550)
        fail_msg("receive(300) returned after %lld ms", (long long)took);
    t0 = fx_mono_ms();
    assert_null(recv_wait(b, g, 0));
    assert_true(fx_mono_ms() - t0 < 100);
    fx_bus_close(b);
}

struct waiter {
    const struct fixture *f;
    const char *group;
    int64_t got_at;
    int rc;
};

static void *wait_one(void *arg)
{
    struct waiter *w = arg;
    struct fx_bus *b = NULL;
    struct fx_err err;
    w->rc = fx_bus_open(w->f->url, &b, &err);
    if (w->rc)
        return NULL;
    struct fx_delivery *d = NULL;
    w->rc = fx_bus_receive(b, w->group, 10000, &d, &err);
    w->got_at = fx_mono_ms();
    if (w->rc == 1)
        w->rc = fx_bus_ack(b, d) == 0 ? 1 : -1;
    fx_delivery_free(d);
    fx_bus_close(b);
    return NULL;
}

/* A receiver blocked in another thread wakes on publish, not at its timeout. */
static void test_wakeup(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "wake"), RKEY(f, pat, "job"), NULL);
    struct waiter w = {.f = f, .group = g};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_one, &w), 0);
    /* let the receiver reach its idle wait; correctness does not depend on it */
    int64_t until = fx_mono_ms() + 100;
    while (fx_mono_ms() < until)
        fx_sleep_ms(10);
    int64_t t0 = fx_mono_ms();
    publish1(b, pat, "ping", NULL, NULL);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 1);
    print_message("publish -> receive wake-up: %lld ms\n", (long long)(w.got_at - t0));
    assert_true(w.got_at - t0 < 1000);
    fx_bus_close(b);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct fx_bus *b = NULL;
    struct fx_err err;
    assert_int_equal(fx_bus_open("nosuch://x", &b, &err), FX_ENOTSUP);
    assert_non_null(strstr(err.reason, "unknown bus URL scheme"));
    assert_null(b);
    assert_int_equal(fx_bus_open("", &b, &err), FX_EINVAL);
    if (is_local(f))
        assert_int_equal(fx_bus_open("local:", &b, &err), FX_EINVAL);
    b = bus_open(f);
    char g[64], pat[128];
    struct fx_delivery *d = NULL;
    assert_int_equal(fx_bus_receive(b, GROUP(f, g, "nosuch"), 0, &d, &err), FX_ENOTFOUND);
    assert_int_equal(fx_bus_receive(b, "", 0, &d, &err), FX_EINVAL);
    assert_int_equal(fx_bus_receive(b, g, -1, &d, &err), FX_EINVAL);
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    assert_int_equal(o.max_attempts, 5);
    assert_int_equal(o.backoff_ms, 500);
    assert_int_equal(o.backoff_max_ms, 60000);
    assert_int_equal(o.lease_ms, 60000);
    o.max_attempts = 0;
    const char *p = RKEY(f, pat, "x");
    assert_int_equal(fx_bus_declare(b, g, &p, 1, &o, &err), FX_EINVAL);
    assert_non_null(strstr(err.reason, "max_attempts"));
    struct fx_msg m = {.id = "1", .type = "t", .source = "s", .routing_key = NULL};
    assert_int_equal(fx_bus_publish(b, &m, 1, &err), FX_EINVAL);
    assert_non_null(strstr(err.reason, "routing_key is required"));
    m.routing_key = pat;
    m.data_len = 3;
    assert_int_equal(fx_bus_publish(b, &m, 1, &err), FX_EINVAL);
    assert_int_equal(fx_bus_publish(b, NULL, 0, &err), 0);
    assert_int_equal(fx_bus_ack(b, NULL), FX_EINVAL);
    assert_int_equal(fx_bus_dead_letters(b, g, NULL, NULL), FX_EINVAL);
    fx_bus_close(b);
    fx_bus_close(NULL);
    fx_delivery_free(NULL);
}

/* Run a shell command, capture its stdout (caller frees); fails the test on a non-zero exit. */
static char *run_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        fail_msg("popen(%s): %s", cmd, strerror(errno));
    struct fx_buf out;
    fx_buf_init(&out, 1u << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        assert_int_equal(fx_buf_append(&out, chunk, n), 0);
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s: exit status %d, output: %s", cmd, status, out.data ? out.data : "");
    return out.data ? fx_buf_take(&out) : fx_strdup("");
}

/*
 * amqp:// only: a plain AMQP client (amqp-tools, on rabbitmq-c like the
 * backend but knowing nothing of Fluxo) reads what Fluxo publishes, and
 * Fluxo reads a CloudEvent the plain client publishes. The body on the wire
 * is the CloudEvent JSON and nothing else.
 */
static void test_amqp_plain_client(void **state)
{
    struct fixture *f = *state;
    if (!f->base || strncmp(f->base, "amqp://", 7) != 0)
        skip();
    if (system("command -v amqp-get >/dev/null && command -v amqp-publish >/dev/null") != 0)
        fail_msg("amqp-get/amqp-publish not found: install amqp-tools (scripts/deps.sh --test)");
    /* the tools take the URL without Fluxo's query parameters */
    char *url = fx_strndup(f->base, strcspn(f->base, "?"));
    const char *exchange = strstr(f->base, "exchange=");
    char *xname = exchange ? fx_strndup(exchange + 9, strcspn(exchange + 9, "&")) : NULL;
    assert_null(strchr(url, '\''));
    char g[64], pat[128], rk[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "plain"), RKEY(f, pat, "orders.*"), NULL);
    struct fx_msg m = {.id = "0190c5e2-7b1a-7000-8000-0000000000bb",
                       .type = "fluxo.ingest.chunk",
                       .source = "/fluxo/ingest",
                       .routing_key = RKEY(f, rk, "orders.created"),
                       .key = "order-42",
                       .correlation_id = "corr-1",
                       .data = "{\"rows\":[1,2,3]}",
                       .data_len = 16};
    struct fx_err err;
    assert_int_equal(fx_bus_publish(b, &m, 1, &err), 0);

    char *cmd = fx_asprintf("amqp-get --url='%s' --queue='%s'", url, g);
    char *body = run_capture(cmd);
    free(cmd);
    assert_non_null(strstr(body, "\"specversion\":\"1.0\""));
    struct fx_delivery *got = fx_calloc(1, sizeof(*got));
    if (fx_cloudevent_decode(body, strlen(body), got, &err) != 0)
        fail_msg("amqp-get printed something that is not a CloudEvent (%s): %s", err.reason, body);
    assert_string_equal(got->id, m.id);
    assert_string_equal(got->type, m.type);
    assert_string_equal(got->routing_key, m.routing_key);
    assert_string_equal(got->key, m.key);
    assert_string_equal(got->correlation_id, m.correlation_id);
    assert_string_equal(got->data, m.data);
    fx_delivery_free(got);
    free(body);
    assert_int_equal(fx_bus_depth(b, g), 0); /* amqp-get took it */

    /* and the other way round: a CloudEvent published by the plain client */
    char *ce = fx_asprintf("{\"specversion\":\"1.0\",\"id\":\"from-amqp-publish\",\"source\":"
                           "\"/plain\",\"type\":\"plain.event\",\"routingkey\":\"%s\","
                           "\"data\":{\"ok\":true}}",
                           rk);
    cmd = fx_asprintf("amqp-publish --url='%s' --exchange='%s' --routing-key='%s' --persistent "
                      "--content-type='application/cloudevents+json' --body='%s'",
                      url, xname ? xname : "fluxo", rk, ce);
    free(run_capture(cmd));
    free(cmd);
    free(ce);
    struct fx_delivery *d = recv_must(b, g, "from-amqp-publish");
    assert_string_equal(d->type, "plain.event");
    assert_string_equal(d->data, "{\"ok\":true}");
    assert_int_equal(d->attempt, 1);
    ack_free(b, d);
    fx_bus_close(b);
    free(xname);
    free(url);
}

/* ---- Kafka-only cases ------------------------------------------------- */

static char kafka_brokers[512]; /* host:port list of the Kafka group's cluster, for kcat */

/* A published event is a plain CloudEvent in the topic: read it back with kcat. */
static void test_kafka_kcat(void **state)
{
    struct fixture *f = *state;
    if (!*kafka_brokers || system("command -v kcat >/dev/null 2>&1") != 0)
        skip();
    char rk[128], cmd[1024];
    struct fx_bus *b = bus_open(f);
    static const char data[] = "{\"rows\":[{\"nome\":\"Jo\\u00e3o\"},[]],\"n\":1.5e2}";
    struct fx_msg m = {.id = "0190c5e2-7b1a-7000-8000-0000000000bb",
                       .type = "fluxo.ingest.chunk",
                       .source = "/fluxo/ingest",
                       .routing_key = RKEY(f, rk, "kcat"),
                       .key = "order-42",
                       .correlation_id = "corr-7",
                       .time = "2024-05-01T12:00:00.123Z",
                       .data = data,
                       .data_len = sizeof(data) - 1};
    struct fx_err err;
    assert_int_equal(fx_bus_publish(b, &m, 1, &err), 0);
    snprintf(cmd, sizeof(cmd),
             "timeout 60 kcat -b '%s' -C -t '%s' -c 1 -e -q -f '%%k\\t%%h\\t%%s\\n' 2>&1",
             kafka_brokers, rk);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    if (status != 0)
        fail_msg("%s: exit status %d: %s", cmd, status, out);
    char *tab1 = strchr(out, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2)
        fail_msg("kcat output is not key<TAB>headers<TAB>value: %s", out);
    *tab1 = *tab2 = '\0';
    assert_string_equal(out, "order-42"); /* the ordering key is the Kafka key */
    assert_non_null(strstr(tab1 + 1, "fluxo-ts="));
    json_error_t je;
    json_t *ev = json_loads(tab2 + 1, JSON_DISABLE_EOF_CHECK, &je);
    if (!ev)
        fail_msg("kcat value is not JSON (%s): %s", je.text, tab2 + 1);
    assert_string_equal(json_string_value(json_object_get(ev, "specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(ev, "id")), m.id);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), m.type);
    assert_string_equal(json_string_value(json_object_get(ev, "source")), m.source);
    assert_string_equal(json_string_value(json_object_get(ev, "time")), m.time);
    assert_string_equal(json_string_value(json_object_get(ev, "routingkey")), rk);
    assert_string_equal(json_string_value(json_object_get(ev, "partitionkey")), m.key);
    assert_string_equal(json_string_value(json_object_get(ev, "correlationid")), m.correlation_id);
    json_t *want = json_loads(data, 0, &je);
    assert_non_null(want);
    assert_true(json_equal(json_object_get(ev, "data"), want));
    json_decref(want);
    json_decref(ev);

    /* and a CloudEvent produced by kcat is received like Fluxo's own */
    char g[64], rk2[128];
    declare1(b, GROUP(f, g, "kcat"), RKEY(f, rk2, "kcat.in"), NULL);
    snprintf(cmd, sizeof(cmd),
             "printf '%%s\\n' '{\"specversion\":\"1.0\",\"id\":\"from-kcat\",\"source\":"
             "\"/kcat\",\"type\":\"test.event\",\"data\":{\"n\":2}}' | timeout 60 kcat -b '%s' "
             "-P -t '%s' -k K 2>&1",
             kafka_brokers, rk2);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    status = pclose(p);
    if (status != 0)
        fail_msg("%s: exit status %d: %s", cmd, status, out);
    struct fx_delivery *d = recv_must(b, g, "from-kcat");
    assert_string_equal(d->data, "{\"n\":2}");
    assert_int_equal(d->attempt, 1);
    ack_free(b, d);
    fx_bus_close(b);
}

struct joined {
    const struct fixture *f;
    const char *group;
    atomic_int ready;
    int64_t got_at;
    int rc;
};

static void *wait_joined(void *arg)
{
    struct joined *w = arg;
    struct fx_bus *b = NULL;
    struct fx_err err;
    struct fx_delivery *d = NULL;
    if ((w->rc = fx_bus_open(w->f->url, &b, &err)))
        goto out;
    /* the first receive joins the Kafka group (3 s on the mock cluster) */
    if ((w->rc = fx_bus_receive(b, w->group, 30000, &d, &err)) != 1 || fx_bus_ack(b, d) != 0)
        goto out;
    fx_delivery_free(d);
    d = NULL;
    atomic_store(&w->ready, 1);
    w->rc = fx_bus_receive(b, w->group, 10000, &d, &err);
    w->got_at = fx_mono_ms();
    if (w->rc == 1)
        w->rc = fx_bus_ack(b, d) == 0 ? 1 : -1;
out:
    atomic_store(&w->ready, 1);
    fx_delivery_free(d);
    fx_bus_close(b);
    return NULL;
}

/* test_wakeup once the receiver is a member of the group (see kafka_main). */
static void test_kafka_wakeup_joined(void **state)
{
    struct fixture *f = *state;
    char g[64], pat[128];
    struct fx_bus *b = bus_open(f);
    declare1(b, GROUP(f, g, "wake"), RKEY(f, pat, "job"), NULL);
    struct joined w = {.f = f, .group = g};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_joined, &w), 0);
    publish1(b, pat, "warm-up", NULL, NULL);
    int64_t until = fx_mono_ms() + 40000;
    while (!atomic_load(&w.ready) && fx_mono_ms() < until)
        fx_sleep_ms(10); /* polling a condition, with a deadline */
    assert_true(atomic_load(&w.ready));
    until = fx_mono_ms() + 100; /* let the receiver reach its idle wait */
    while (fx_mono_ms() < until)
        fx_sleep_ms(10);
    int64_t t0 = fx_mono_ms();
    publish1(b, pat, "ping", NULL, NULL);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 1);
    print_message("publish -> receive wake-up (joined): %lld ms\n", (long long)(w.got_at - t0));
    assert_true(w.got_at - t0 < 1000);
    fx_bus_close(b);
}

/* kafka://mock: a cluster inside this process, shared by its handles; URL and name checks. */
static void test_kafka_mock_url(void **state)
{
    (void)state;
    struct fx_bus *b1 = NULL, *b2 = NULL, *x = NULL;
    struct fx_err err;
    assert_int_equal(fx_bus_open("kafka://mock", &b1, &err), 0);
    assert_int_equal(fx_bus_open("kafka://mock", &b2, &err), 0);
    const char *pat = "mock.#";
    assert_int_equal(fx_bus_declare(b1, "mockgroup", &pat, 1, NULL, &err), 0);
    publish1(b1, "mock.job", "m1", "k", "{\"ok\":true}");
    struct fx_delivery *d = recv_wait(b2, "mockgroup", 30000);
    assert_non_null(d);
    assert_string_equal(d->id, "m1");
    ack_free(b2, d);
    assert_int_equal(fx_bus_depth(b1, "mockgroup"), 0);
    struct fx_msg m = {.id = "1", .type = "t", .source = "s", .routing_key = "no spaces"};
    assert_int_equal(fx_bus_publish(b1, &m, 1, &err), FX_EINVAL);
    assert_non_null(strstr(err.reason, "cannot be a Kafka topic"));
    pat = "a.b c";
    assert_int_equal(fx_bus_declare(b1, "mockgroup", &pat, 1, NULL, &err), FX_EINVAL);
    pat = "x";
    assert_int_equal(fx_bus_declare(b1, "bad group", &pat, 1, NULL, &err), FX_EINVAL);
    fx_bus_close(b1);
    fx_bus_close(b2);
    assert_int_equal(fx_bus_open("kafka://mock:0", &x, &err), FX_EINVAL);
    assert_int_equal(fx_bus_open("kafka://", &x, &err), FX_EINVAL);
    assert_int_equal(fx_bus_open("kafka://h:9092?group.id=x", &x, &err), FX_EINVAL);
    assert_non_null(strstr(err.reason, "group.id"));
    assert_int_equal(fx_bus_open("kafka://h:9092?no.such.property=1", &x, &err), FX_EINVAL);
    assert_null(x);
}

static const struct CMUnitTest kafka_suite[] = {
    cmocka_unit_test_setup_teardown(test_kafka_kcat, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kafka_wakeup_joined, setup, teardown),
    cmocka_unit_test_setup_teardown(test_kafka_mock_url, setup, teardown),
};

/* ---- main ------------------------------------------------------------- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest suite[] = {
    T(test_topic_match),
    T(test_bad_arguments),
    T(test_roundtrip),
    T(test_fanout),
    T(test_topic_routing),
    T(test_late_group),
    T(test_depth),
    T(test_receive_timeout),
    T(test_wakeup),
    T(test_nack_backoff),
    T(test_nack_after_data_freed),
    T(test_dead_letter),
    T(test_lease_expiry),
    T(test_lease_expiry_dead_letter),
    T(test_ack_after_lease_lost),
    T(test_order_per_key),
    T(test_order_per_key_threads),
    T(test_batch_all_or_nothing),
    T(test_crash_after_publish),
    T(test_crash_before_ack),
    T(test_competing_processes),
    T(test_amqp_plain_client),
};

/*
 * The Kafka group. FLUXO_TEST_KAFKA_URL names a cluster ("none" skips the group). Unset, or
 * kafka://mock, runs the group on librdkafka's mock cluster: this process starts it and gives
 * every handle its TCP address, so the child processes of the crash and competing cases reach
 * the same cluster (kafka://mock in a child would be a cluster of its own). The URL's
 * properties shorten the consumer session to what the mock group coordinator needs.
 *
 * One case is left out on the mock cluster, test_wakeup: its receiver opens a fresh handle on
 * a fresh group 100 ms before the publish and must wake within 1 s, but the first join of a
 * Kafka group waits group.initial.rebalance.delay.ms, fixed at 3 s in the mock coordinator of
 * librdkafka 2.0.2. test_kafka_wakeup_joined checks the same wake-up once the receiver is a
 * member. Against a real cluster every case runs.
 */
static int kafka_main(void)
{
    const char *env = getenv("FLUXO_TEST_KAFKA_URL");
    if (env && strcmp(env, "none") == 0)
        return 0;
    int mock = !env || !*env || strcmp(env, "kafka://mock") == 0;
    rd_kafka_t *host = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    char *url = NULL;
    if (mock) {
        char why[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", why, sizeof(why));
        host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
        mc = host ? rd_kafka_mock_cluster_new(host, 1) : NULL;
        if (!mc) {
            fprintf(stderr, "bus/kafka: cannot start librdkafka's mock cluster: %s\n", why);
            return 1;
        }
        snprintf(kafka_brokers, sizeof(kafka_brokers), "%s", rd_kafka_mock_cluster_bootstraps(mc));
        url = fx_asprintf("kafka://%s?session.timeout.ms=3500&heartbeat.interval.ms=500"
                          "&topic.metadata.refresh.interval.ms=1000",
                          kafka_brokers);
    } else {
        url = fx_strdup(env);
        if (strncmp(url, "kafka://", 8) == 0) /* kcat takes the broker list alone */
            snprintf(kafka_brokers, sizeof(kafka_brokers), "%.*s", (int)strcspn(url + 8, "?"),
                     url + 8);
    }
    struct CMUnitTest cases[sizeof(suite) / sizeof(suite[0])];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++)
        if (!(mock && suite[i].test_func == test_wakeup))
            cases[n++] = suite[i];
    backend_url = url;
    int failed = _cmocka_run_group_tests("bus/kafka", cases, n, NULL, NULL);
    failed += _cmocka_run_group_tests("bus/kafka-only", kafka_suite,
                                      sizeof(kafka_suite) / sizeof(kafka_suite[0]), NULL, NULL);
    backend_url = NULL;
    free(url);
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (host)
        rd_kafka_destroy(host);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main(argc - 2, argv + 2);
    int failed = 0;
    backend_url = NULL;
    failed +=
        _cmocka_run_group_tests("bus/local", suite, sizeof(suite) / sizeof(suite[0]), NULL, NULL);
    static const struct {
        const char *name, *env;
    } brokers[] = {{"bus/amqp", "FLUXO_TEST_AMQP_URL"}};
    for (size_t i = 0; i < sizeof(brokers) / sizeof(brokers[0]); i++) {
        const char *url = getenv(brokers[i].env);
        if (!url || !*url)
            continue;
        backend_url = url;
        failed += _cmocka_run_group_tests(brokers[i].name, suite, sizeof(suite) / sizeof(suite[0]),
                                          NULL, NULL);
    }
    failed += kafka_main();
    return failed ? 1 : 0;
}
