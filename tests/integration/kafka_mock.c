/* SPDX-License-Identifier: MIT */
/*
 * fluxo-kafka-mock: librdkafka's mock Kafka cluster as a process of its own,
 * for tests that run Fluxo services as separate processes over Kafka (no
 * Kafka broker is packaged for Debian). `kafka://mock` inside a service would
 * give each process a cluster of its own; this program starts one cluster,
 * prints its bootstrap address (127.0.0.1:PORT[,...]) on a line of stdout,
 * and serves it until SIGTERM or SIGINT, or until its parent process exits
 * (so a test that is killed does not leave it behind).
 *
 *   fluxo-kafka-mock [--brokers N] [--topic NAME:PARTITIONS]...
 *
 * --topic creates a topic up front with that many partitions (and the
 * replication factor min(3, N)); topics created on demand get the mock's
 * default of 4 partitions. The cluster lives in memory only, and keeps about
 * 5 MiB per partition: beyond that it deletes the oldest record batches,
 * consumed or not (librdkafka 2.0.2 offers no setting for it), so a test
 * whose backlog may exceed that in one partition gives its topics more
 * partitions with --topic.
 */
#define _GNU_SOURCE /* prctl */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define BROKERS_MAX 9
#define TOPICS_MAX 32

struct topic {
    const char *name;
    size_t name_len;
    int partitions;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fluxo-kafka-mock [--brokers N] [--topic NAME:PARTITIONS]...\n"
            "Starts librdkafka's mock Kafka cluster (N brokers, 1 to %d, default 1),\n"
            "prints its bootstrap address and serves it until SIGTERM or SIGINT.\n",
            BROKERS_MAX);
}

/* A whole number in [lo, hi], or -1. */
static int parse_int(const char *s, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return (int)v;
}

/* "NAME:PARTITIONS" into t: 0, or -1 after saying what is wrong. */
static int parse_topic(const char *arg, struct topic *t)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg) {
        fprintf(stderr, "fluxo-kafka-mock: --topic %s: expected NAME:PARTITIONS\n", arg);
        return -1;
    }
    t->name = arg;
    t->name_len = (size_t)(colon - arg);
    t->partitions = parse_int(colon + 1, 1, 1000);
    if (t->partitions < 0) {
        fprintf(stderr, "fluxo-kafka-mock: --topic %s: partitions must be 1 to 1000\n", arg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 1;
    struct topic topics[TOPICS_MAX];
    size_t ntopics = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = parse_int(argv[++i], 1, BROKERS_MAX);
            if (brokers < 0) {
                fprintf(stderr, "fluxo-kafka-mock: --brokers %s: expected 1 to %d\n", argv[i],
                        BROKERS_MAX);
                return 2;
            }
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            if (ntopics == TOPICS_MAX) {
                fprintf(stderr, "fluxo-kafka-mock: at most %d --topic options\n", TOPICS_MAX);
                return 2;
            }
            if (parse_topic(argv[++i], &topics[ntopics]) != 0)
                return 2;
            ntopics++;
        } else {
            fprintf(stderr, "fluxo-kafka-mock: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    /* Blocked before librdkafka starts its threads, so they inherit the mask
     * and the signals stay pending for sigwait below, whichever thread the
     * kernel would have picked. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        return 1; /* the parent is already gone: nobody will use the cluster */

    int rc = 1;
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* warnings and errors only, on stderr (librdkafka's default log sink) */
    if (rd_kafka_conf_set(conf, "log_level", "4", why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "fluxo-kafka-mock: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    /* The mock cluster needs a client handle to live in; this one never produces. */
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!host) {
        fprintf(stderr, "fluxo-kafka-mock: cannot create the host handle: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(host, brokers);
    if (!mc) {
        fprintf(stderr, "fluxo-kafka-mock: cannot start a mock cluster of %d broker(s)\n", brokers);
        goto out;
    }
    for (size_t i = 0; i < ntopics; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)topics[i].name_len, topics[i].name);
        int rf = brokers < 3 ? brokers : 3;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, topics[i].partitions, rf);
        if (e) {
            fprintf(stderr, "fluxo-kafka-mock: cannot create topic %s: %s\n", name,
                    rd_kafka_err2str(e));
            goto out;
        }
    }
    /* One line, flushed: the caller waits for it. */
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "fluxo-kafka-mock: signal %d, stopping\n", sig);
    rc = 0;
out:
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return rc;
}
