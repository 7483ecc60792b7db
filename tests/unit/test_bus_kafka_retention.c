/* SPDX-License-Identifier: MIT */
/*
 * Kafka backend: records the cluster deletes before a group settles them. Regression test for
 * the "chunks of a killed consumer stay undelivered" failures of test_distributed_kafka: the
 * missing chunks were never leased by anyone; librdkafka's mock cluster keeps only about 5 MiB
 * per partition and had deleted the oldest chunks of a partition before the group's first
 * member joined, and the backend started past them without a word. Here, on the in-process
 * mock cluster (kafka://mock), more than 5 MiB is published under one key (one partition)
 * before the group's member joins; then everything left is received. The survivors come in
 * order and complete, the depth ends at 0, and the backend's log (stderr, captured for the
 * receive) names the lost records: topic, partition, offsets and count.
 */
#include "testutil.h"

#include "fluxo/bus.h"
#include "fluxo/error.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GROUP "retention"
#define TOPIC "retention.big"
#define MSGS 24
#define PAD (300 * 1024) /* 24 x 300 KiB: about 7 MiB in one partition */

/* stderr into a file while the backend works, so that its log lines can be checked. */
struct capture {
    char *dir, *path;
    int saved;
};

static void capture_start(struct capture *cap)
{
    cap->dir = tu_tmpdir();
    assert_non_null(cap->dir);
    cap->path = tu_write_file(cap->dir, "stderr.log", "", 0);
    assert_non_null(cap->path);
    FILE *f = fopen(cap->path, "w");
    assert_non_null(f);
    fflush(stderr);
    cap->saved = dup(STDERR_FILENO);
    assert_true(cap->saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    fclose(f);
}

/* Restore stderr, replay what was captured onto it; returns the text (caller frees). */
static char *capture_end(struct capture *cap)
{
    fflush(stderr);
    assert_true(dup2(cap->saved, STDERR_FILENO) >= 0);
    close(cap->saved);
    size_t len = 0;
    char *text = tu_read_file(cap->path, &len);
    assert_non_null(text);
    if (len && write(STDERR_FILENO, text, len) < 0)
        perror("replaying the captured log");
    tu_rmrf(cap->dir);
    free(cap->dir);
    free(cap->path);
    return text;
}

static void publish_big(struct fx_bus *b, int i, char *data)
{
    /* one publish call per message: one record batch each, deleted one by one */
    int n = snprintf(data, 32, "{\"i\":%d,\"pad\":\"", i);
    memset(data + n, 'x', PAD);
    strcpy(data + n + PAD, "\"}");
    char id[16];
    snprintf(id, sizeof(id), "m%02d", i);
    struct fx_msg m = {.id = id,
                       .type = "test.big",
                       .source = "/test",
                       .routing_key = TOPIC,
                       .key = "one-key", /* one partition */
                       .data = data,
                       .data_len = strlen(data)};
    struct fx_err err;
    int rc = fx_bus_publish(b, &m, 1, &err);
    if (rc)
        fail_msg("publish %s: %s: %s", id, fx_errname(rc), err.reason);
}

static void test_deleted_before_join(void **state)
{
    (void)state;
    struct fx_bus *b = NULL;
    struct fx_err err;
    assert_int_equal(fx_bus_open("kafka://mock", &b, &err), 0);
    const char *pat = TOPIC;
    assert_int_equal(fx_bus_declare(b, GROUP, &pat, 1, NULL, &err), 0);
    char *data = fx_malloc(PAD + 64);
    for (int i = 0; i < MSGS; i++)
        publish_big(b, i, data);
    free(data);

    /* the first receive joins the group (3 s on the mock coordinator); then the rest. No
     * assertion while stderr is captured: cmocka reports failures there. */
    struct capture cap;
    capture_start(&cap);
    int first = -1, last = -1, gaps = 0, got = 0, bad_acks = 0;
    int64_t deadline = fx_mono_ms() + 60000;
    while (last < MSGS - 1 && fx_mono_ms() < deadline) {
        struct fx_delivery *d = NULL;
        int rc = fx_bus_receive(b, GROUP, 10000, &d, &err);
        if (rc < 0) {
            capture_end(&cap);
            fail_msg("receive: %s: %s", fx_errname(rc), err.reason);
        }
        if (rc == 0)
            break;
        int i = atoi(d->id + 1);
        if (first < 0)
            first = i;
        else if (i != last + 1)
            gaps++;
        last = i;
        got++;
        bad_acks += fx_bus_ack(b, d) != 0;
        fx_delivery_free(d);
    }
    int64_t depth = fx_bus_depth(b, GROUP);
    char *log = capture_end(&cap);

    print_message("the mock cluster deleted %d of %d records before the member joined\n", first,
                  MSGS);
    /* what the cluster kept arrives, in order, and nothing else waits */
    assert_true(first > 0); /* more than 5 MiB: the oldest are gone */
    assert_int_equal(last, MSGS - 1);
    assert_int_equal(gaps, 0);
    assert_int_equal(got, MSGS - first);
    assert_int_equal(bad_acks, 0);
    assert_int_equal(depth, 0);
    /* the loss is reported with where and how much, not skipped silently */
    char want[128], range[64];
    snprintf(want, sizeof(want), "%d records of %s [", first, TOPIC);
    snprintf(range, sizeof(range), "(offsets 0 to %d) were deleted by the cluster", first - 1);
    const char *hit = strstr(log, want), *bol = hit;
    while (bol && bol > log && bol[-1] != '\n')
        bol--;
    char *line = hit ? fx_strndup(bol, strcspn(bol, "\n")) : NULL;
    if (!line || !strstr(line, range) || !strstr(line, "\"level\":\"error\""))
        fail_msg("no error naming the %d lost records (\"%s ... %s\") in the log", first, want,
                 range);
    free(line);
    free(log);
    fx_bus_close(b);
}

int main(void)
{
    const char *env = getenv("FLUXO_TEST_KAFKA_URL");
    if (env && *env && strcmp(env, "kafka://mock") != 0) {
        /* a real cluster deletes by its own retention settings: nothing to provoke here */
        printf("bus/kafka-retention: skipped (FLUXO_TEST_KAFKA_URL is not the mock cluster)\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deleted_before_join),
    };
    return cmocka_run_group_tests_name("bus/kafka-retention", tests, NULL, NULL);
}
