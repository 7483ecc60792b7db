/* SPDX-License-Identifier: MIT */
/*
 * Kafka bus backend on librdkafka. "kafka://host:port[,host:port][?prop=value&...]" talks to a
 * cluster (the query passes librdkafka properties to every client, e.g. security.protocol);
 * "kafka://mock[:N]" starts librdkafka's in-process mock cluster of N brokers (default 1),
 * shared by the handles of this process on that URL: for tests and demos, it keeps nothing.
 *
 * Design notes
 *
 * Mapping. A routing key is a topic ("processed_data" -> topic processed_data); the message key
 * is the bus ordering key, so the default partitioner keeps a key in one partition. A
 * subscription group is a consumer group (group.id = group name) subscribed to its bindings:
 * an exact binding is that topic (created when the group is declared), a binding with "*" or
 * "#" a regex subscription that matches a superset of the AMQP pattern ("#" -> ".*" with the
 * dots around it optional, "*" -> "[^.]*"); records of topics the pattern does not really match
 * (fx_topic_match) are settled without delivery. Every group also reads its retry topic
 * "<group>.retry"; dead letters go to partition 0 of "<group>.dlq". Declarations live in the
 * topic "__fluxo.groups" (key = group, value = JSON bindings and options), which every handle
 * reads: a group is known to every process, and receive on an undeclared group is
 * FX_ENOTFOUND. Declaring a group commits the current end offsets of every partition it
 * matches that has no committed offset yet, so it sees exactly what is published afterwards
 * (topics created later are read from their start).
 *
 * Processes and handles. Every handle of a process on the same URL shares one context: the
 * idempotent producer (acks=all), the registry reader, and per group one consumer (a member
 * of the Kafka group, created at the first receive) with a pump thread that polls it into
 * the context's buffer. Handles of one process therefore compete per message, like on the
 * embedded backend; processes compete per partition, as Kafka consumers do. The context ends
 * with its last handle.
 *
 * Leases on Kafka. Kafka knows committed offsets, not deliveries; this backend keeps the
 * lease state of a partition in the metadata string of the committed offset, a list of
 * "offset:L:n:until:holder" (delivered n times, leased until a wall-clock time by a
 * consumer), "offset:R:n" (delivered n times, lease expired) and "offset:D" (settled above
 * the commit point). The committed offset itself is the lowest unsettled offset. Each
 * delivery is one synchronous commit that records its lease before receive returns, each
 * ack or nack one commit that records the settlement; a consumer that crashes leaves its
 * leases in the metadata, and whoever gets the partition holds those records until the
 * lease ends and then redelivers them with the right attempt number (or dead-letters them
 * when max_attempts is reached, "lease expired"). Inside a process leases expire on time,
 * as on the embedded backend.
 * A rebalance revokes partitions whose deliveries are still in flight: the delivery stays
 * valid until its lease ends, and settling it then writes a settle marker (header
 * "fluxo-settle" = topic/partition/offset/n) to the group's retry topic, in the partition
 * with the same number as the record's. With the range assignor and topics of equal
 * partition counts, partition i of every topic of the group belongs to the same member, so
 * the new owner reads the marker and settles the record instead of redelivering it. Markers
 * are also the fallback when a commit fails (the mock cluster refuses commits while a
 * rebalance is in progress).
 *
 * Retries and dead letters. A nack writes the record again to "<group>.retry" (same body and
 * key, headers fluxo-attempts = deliveries so far, fluxo-not-before = wall-clock ms,
 * fluxo-reason, fluxo-ts = original publish time) in the partition numbered like the
 * original's, then settles the original; the consumer holds a retry record until it is due.
 * At max_attempts the record goes to "<group>.dlq" partition 0 with fluxo-reason and
 * fluxo-attempts instead; dead_letters reads that topic from the start.
 *
 * Order. Records carry their publish time in microseconds (header fluxo-ts, strictly
 * increasing per process); the consumer delivers the earliest due record first, a keyed
 * record only when it is the earliest unsettled record of its key (a nacked record keeps
 * blocking its key through its retry record, which carries the original time). After an
 * assignment nothing is delivered until every partition has been fetched up to the end
 * offset seen at assignment (at most GATE_MAX_MS), so the retry records and markers of a
 * partition are known before its newer records are handed out. Kafka orders records within
 * a partition only: order per key holds per routing key, not across routing keys.
 *
 * Depth: sum over the group's partitions of (end offset - committed offset - settled
 * entries in the metadata). Exact for records; an unprocessed settle marker counts one.
 *
 * Retention. The cluster may delete records the group has not settled yet (retention.ms or
 * retention.bytes shorter than the backlog; librdkafka's mock cluster keeps only about 5 MiB
 * per partition, consumed or not). Nothing can deliver them any more; an assignment whose
 * committed offset is below the log start, or a fetch that jumps over deleted records, logs an
 * error naming the partition, the offsets and the count, rather than skipping them silently.
 *
 * Threads and locks. ctx->mu protects the buffer, the partitions and the declarations and is
 * never held over network calls. A group's commit_mu serialises its commits and its
 * rebalances (taken before mu): a partition is freed only by a rebalance, so a thread holding
 * commit_mu may keep partition and record pointers across unlocking mu. The registry reader
 * has its own mutex (reg_mu, before mu). Handles are opened after fork(), never before.
 */
#include "bus/bus_int.h"
#include "fluxo/log.h"
#include "fluxo/util.h"

#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTRY_TOPIC "__fluxo.groups"
#define READER_GROUP "__fluxo.reader" /* librdkafka consumers need a group.id; never joined */
#define TOPIC_MAX 249
#define HOLDER_LEN 12
#define ENTRY_MAX 48       /* leased or settled records above a partition's commit point */
#define META_MAX 4000      /* commit metadata (brokers allow 4096 bytes by default) */
#define BUF_HIGH_RECS 1000 /* pause a partition above this many fetched records */
#define BUF_HIGH_BYTES (16u << 20)
#define BUF_LOW_RECS 250
#define BUF_LOW_BYTES (4u << 20)
#define GATE_MAX_MS 2000
#define REGISTRY_TTL_MS 1000
#define REFRESH_MS 2000
#define NET_TIMEOUT_MS 10000
#define PRODUCE_TIMEOUT_MS 30000
#define RETRY_PAUSE_MS 50
#define MOCK_MAX_BROKERS 9

#define H_TS "fluxo-ts"
#define H_ATTEMPTS "fluxo-attempts"
#define H_NOT_BEFORE "fluxo-not-before"
#define H_REASON "fluxo-reason"
#define H_ORIGIN "fluxo-origin"
#define H_SETTLE "fluxo-settle"
#define H_GROUP "fluxo-group"

/* Properties the backend relies on: a URL may not change them. */
static const char *const fixed_props[] = {
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "partition.assignment.strategy",
    "auto.offset.reset",
    "enable.partition.eof",
};

/* ---- state ------------------------------------------------------------ */

enum { K_MSG, K_RETRY, K_SKIP, K_MARKER };
enum { S_NEW, S_INFLIGHT, S_HELD, S_DONE };

/* One record of an owned partition, from its fetch (or its metadata entry) until the commit
 * point passes it. */
struct rec {
    int64_t offset;
    int state;
    int busy;    /* a thread delivers or settles it outside the lock */
    int kind;    /* K_* (unknown until fetched: K_MSG) */
    int fetched; /* body, key and headers known */
    int base;    /* deliveries before this record existed (retry records) */
    int n;       /* deliveries of this record */
    int64_t ts_us;
    int64_t not_before; /* wall ms */
    int64_t until;      /* lease end, wall ms (S_INFLIGHT, S_HELD) */
    int64_t tag;        /* current lease (S_INFLIGHT) */
    uint64_t handle;    /* handle holding it (S_INFLIGHT) */
    char holder[HOLDER_LEN + 1];
    char *key;
    char *body;
    size_t len;
};

struct part {
    char *topic;
    int32_t id;
    int retry;         /* the group's retry topic */
    int64_t next;      /* next offset the fetcher hands over (-1 = unknown) */
    int64_t hwm0;      /* end offset at assignment: the delivery gate */
    int64_t committed; /* commit point the broker has (-1 = none) */
    char *meta;        /* metadata the broker has */
    int paused;
    struct rec **r; /* by offset */
    size_t n, cap;
};

/* A delivery whose partition was revoked while in flight: still valid until its lease ends. */
struct orphan {
    struct orphan *next;
    char *topic;
    int32_t id;
    int64_t offset;
    int n;
    int64_t tag;
    uint64_t handle;
    int64_t until;
    int64_t ts_us; /* publish time: a retry written for it keeps its place in key order */
    char *body;    /* the record as published: a nack writes it again (NULL once handed on) */
    size_t len;
};

struct gdef {
    struct gdef *next;
    char *name;
    char **patterns;
    size_t npatterns;
    struct fx_group_opts opts;
};

struct kctx;

struct kgroup {
    struct kgroup *next;
    struct kctx *ctx;
    char *name, *retry, *dlq;
    char holder[HOLDER_LEN + 1];
    rd_kafka_t *rk;    /* group member, from the first receive */
    rd_kafka_t *admin; /* committed offsets only (never joins) */
    pthread_t pump;
    int pumping;
    atomic_int stop;
    pthread_mutex_t commit_mu;
    uint64_t epoch; /* bumped by every assignment change */
    int64_t assigned_ms;
    int gate;
    struct part **parts;
    size_t nparts;
    struct orphan *orphans;
    char **patterns; /* bindings the member filters with */
    size_t npatterns;
    char **sub; /* current subscription */
    size_t nsub;
    int32_t retry_parts;
    int64_t refreshed_ms;
};

struct kctx {
    struct kctx *next;
    char *url;
    char *shown; /* url without its query, which may carry credentials: for messages */
    int refs;
    char *brokers;
    char **props; /* name, value, name, value... */
    size_t nprops;
    int mock_n;
    rd_kafka_t *mock_host;
    rd_kafka_mock_cluster_t *mock;
    rd_kafka_t *producer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gdef *defs;
    struct kgroup *groups;
    char **topics; /* known to exist */
    size_t ntopics, topics_cap;
    int64_t clock_us;
    int64_t tags;
    uint64_t handles;
    pthread_mutex_t reg_mu;
    rd_kafka_t *reader;
    int32_t reader_parts;
    int64_t *reader_next;
    int64_t synced_ms; /* monotonic, under reg_mu */
};

struct kafka_bus {
    struct fx_bus base;
    struct kctx *ctx;
    uint64_t id;
    struct fx_buf enc;
};

static struct kafka_bus *kb(struct fx_bus *b)
{
    return (struct kafka_bus *)b;
}

static pthread_mutex_t ctxs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kctx *ctxs;

/* ---- names and patterns ----------------------------------------------- */

static int topic_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* Why s cannot be a topic of ours, or NULL. */
static const char *topic_problem(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0)
        return "it is empty";
    if (n > max)
        return "it is too long for a Kafka topic name";
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return "\".\" and \"..\" are not topic names";
    for (size_t i = 0; i < n; i++)
        if (!topic_char(s[i]))
            return "Kafka topic names allow only letters, digits, '.', '_' and '-'";
    if (strncmp(s, "__", 2) == 0)
        return "names starting with \"__\" are reserved for internal topics";
    return NULL;
}

static int check_group_name(const char *group, struct fx_err *err)
{
    /* the group names its retry and dead-letter topics */
    const char *why = topic_problem(group, TOPIC_MAX - strlen(".retry"));
    if (why) {
        fx_err_value(err, group, strlen(group));
        return fx_err_set(err, FX_EINVAL, "group \"%s\" cannot be used with Kafka: %s", group, why);
    }
    return 0;
}

static int is_wild(const char *w, size_t n)
{
    return n == 1 && (w[0] == '*' || w[0] == '#');
}

static int has_wildcard(const char *pat)
{
    for (const char *w = pat;;) {
        const char *e = strchr(w, '.');
        size_t n = e ? (size_t)(e - w) : strlen(w);
        if (is_wild(w, n))
            return 1;
        if (!e)
            return 0;
        w = e + 1;
    }
}

/* A pattern that can never match a topic name would be a silent black hole: refuse it. */
static int check_pattern(const char *pat, struct fx_err *err)
{
    if (!has_wildcard(pat)) {
        const char *why = *pat ? topic_problem(pat, TOPIC_MAX) : "it is empty";
        if (why) {
            fx_err_value(err, pat, strlen(pat));
            return fx_err_set(err, FX_EINVAL,
                              "binding pattern \"%s\" can never match a Kafka topic: %s", pat, why);
        }
        return 0;
    }
    for (const char *w = pat;;) {
        const char *e = strchr(w, '.');
        size_t n = e ? (size_t)(e - w) : strlen(w);
        if (!is_wild(w, n)) {
            for (size_t i = 0; i < n; i++) {
                if (!topic_char(w[i])) {
                    fx_err_value(err, pat, strlen(pat));
                    return fx_err_set(err, FX_EINVAL,
                                      "binding pattern \"%s\" can never match a Kafka topic: "
                                      "character '%c' is not allowed in topic names",
                                      pat, w[i]);
                }
            }
        }
        if (!e)
            return 0;
        w = e + 1;
    }
}

/*
 * Regex subscription for a wildcard pattern: a superset of the AMQP semantics (the exact
 * match is fx_topic_match on each record). "*" is one word ("[^.]*"); "#" any run of words
 * (".*") and the dots on both sides of it become optional, so "a.#.c" -> "^a\.?.*\.?c$"
 * also matches "a.c" and, harmlessly, "abc".
 */
static char *pattern_regex(const char *pat)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_putc(&b, '^');
    int prev_hash = 0, first = 1;
    for (const char *w = pat;;) {
        const char *e = strchr(w, '.');
        size_t n = e ? (size_t)(e - w) : strlen(w);
        int hash = n == 1 && w[0] == '#';
        if (!first)
            fx_buf_puts(&b, hash || prev_hash ? "\\.?" : "\\.");
        if (hash)
            fx_buf_puts(&b, ".*");
        else if (n == 1 && w[0] == '*')
            fx_buf_puts(&b, "[^.]*");
        else
            fx_buf_append(&b, w, n);
        prev_hash = hash;
        first = 0;
        if (!e)
            break;
        w = e + 1;
    }
    fx_buf_putc(&b, '$');
    return fx_buf_take(&b);
}

static int matches_any(char **patterns, size_t n, const char *topic)
{
    for (size_t i = 0; i < n; i++)
        if (fx_topic_match(patterns[i], topic))
            return 1;
    return 0;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char **strv_dup(char *const *v, size_t n)
{
    char **out = fx_calloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = fx_strdup(v[i]);
    return out;
}

static int strv_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

/* ---- librdkafka plumbing ---------------------------------------------- */

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* property-scope notices (a producer property on a consumer) are expected with URL
     * properties shared by every client */
    if (level <= 3)
        fx_log_error("bus", "kafka %s: %s", fac, buf);
    else if (level == 4 && strcmp(fac, "CONFWARN") != 0)
        fx_log_warn("bus", "kafka %s: %s", fac, buf);
    else
        fx_log_debug("bus", "kafka %s: %s", fac, buf);
}

static int kerr(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return FX_ETOOBIG;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return FX_ETIMEDOUT;
    default:
        return FX_EBUS;
    }
}

static int conf_put(rd_kafka_conf_t *conf, const char *name, const char *value, struct fx_err *err)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK)
        return fx_err_set(err, FX_EINVAL, "kafka property %s: %s", name, why);
    return 0;
}

enum client { C_PRODUCER, C_MEMBER, C_READER };

struct prop {
    const char *name, *value;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

/* A client of the context's cluster: our defaults, then the URL's properties. */
static rd_kafka_t *client_new(struct kctx *c, enum client kind, const char *group, void *opaque,
                              struct fx_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    int rc = conf_put(conf, "bootstrap.servers", c->brokers, err);
    if (!rc)
        rc = conf_put(conf, "client.id", "fluxo", err);
    if (!rc && kind == C_PRODUCER) {
        static const struct prop p[] = {
            {"enable.idempotence", "true"},
            {"acks", "all"},
            {"linger.ms", "1"},
            {"message.timeout.ms", "30000"},
            /* spread unkeyed messages over every partition: competing consumers */
            {"sticky.partitioning.linger.ms", "0"},
        };
        for (size_t i = 0; !rc && i < sizeof(p) / sizeof(p[0]); i++)
            rc = conf_put(conf, p[i].name, p[i].value, err);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    } else if (!rc) {
        static const struct prop p[] = {
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"auto.offset.reset", "earliest"},
            {"enable.partition.eof", "false"},
            /* co-partitioned topics land on the same member (see the design notes) */
            {"partition.assignment.strategy", "range"},
            /* a receive waits for new records at most this long on the broker */
            {"fetch.wait.max.ms", "100"},
            {"queued.max.messages.kbytes", "16384"},
        };
        for (size_t i = 0; !rc && i < sizeof(p) / sizeof(p[0]); i++)
            rc = conf_put(conf, p[i].name, p[i].value, err);
        if (!rc)
            rc = conf_put(conf, "group.id", group, err);
        /* regex subscriptions see new topics at the next metadata refresh */
        if (!rc)
            rc = conf_put(conf, "topic.metadata.refresh.interval.ms", c->mock ? "1000" : "5000",
                          err);
        /* the mock cluster waits session.timeout.ms - 1 s in every rebalance and 3 s in a
         * group's first one, and drops a joining member whose session ends first */
        if (!rc && c->mock)
            rc = conf_put(conf, "session.timeout.ms", "3500", err);
        if (!rc && c->mock)
            rc = conf_put(conf, "heartbeat.interval.ms", "500", err);
        if (kind == C_MEMBER) {
            rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
            rd_kafka_conf_set_opaque(conf, opaque);
        }
    }
    for (size_t i = 0; !rc && i < c->nprops; i += 2)
        rc = conf_put(conf, c->props[i], c->props[i + 1], err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(kind == C_PRODUCER ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf,
                                  why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fx_err_set(err, FX_EBUS, "bus %s: cannot create a Kafka client: %s", c->shown, why);
        return NULL;
    }
    if (kind != C_PRODUCER)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Partition count of topic (0 when it does not exist), or < 0. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int32_t *n)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, NET_TIMEOUT_MS);
    rd_kafka_topic_destroy(t);
    if (e)
        return kerr(e);
    *n = 0;
    int rc = 0;
    if (md->topic_cnt == 1) {
        rd_kafka_resp_err_t te = md->topics[0].err;
        if (te == 0)
            *n = md->topics[0].partition_cnt;
        else if (te != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
                 te != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
            rc = kerr(te);
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Offsets at time `which` (-1 end, -2 start) for every partition of l, in place. */
static int query_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, int64_t which)
{
    if (l->cnt == 0)
        return 0;
    for (int i = 0; i < l->cnt; i++)
        l->elems[i].offset = which;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, NET_TIMEOUT_MS);
    if (e)
        return kerr(e);
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].err)
            return kerr(l->elems[i].err);
    return 0;
}

static const char *header(rd_kafka_headers_t *h, const char *name, size_t *len)
{
    const void *v = NULL;
    size_t n = 0;
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return NULL;
    if (len)
        *len = n;
    return v;
}

static int64_t header_i64(rd_kafka_headers_t *h, const char *name, int64_t dflt)
{
    size_t n;
    const char *v = header(h, name, &n);
    char tmp[32];
    if (!v || n == 0 || n >= sizeof(tmp))
        return dflt;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    long long x = strtoll(tmp, &end, 10);
    return *end ? dflt : (int64_t)x;
}

static void header_add_i64(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    rd_kafka_header_add(h, name, -1, tmp, n);
}

/* ---- producing --------------------------------------------------------- */

/* One message of a produce call; the delivery report fills the result fields. */
struct out {
    const char *topic;
    int32_t partition; /* RD_KAFKA_PARTITION_UA: by key */
    const char *key;
    const char *value;
    size_t len;
    rd_kafka_headers_t *headers; /* taken by produce_wait */
    atomic_int *pending;
    rd_kafka_resp_err_t err;
    int32_t got_partition;
    int64_t got_offset;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    struct out *o = m->_private;
    if (!o)
        return;
    o->err = m->err;
    o->got_partition = m->partition;
    o->got_offset = m->offset;
    atomic_fetch_sub_explicit(o->pending, 1, memory_order_release);
}

/*
 * Produce n messages and wait for every delivery report (idempotent producer, acks=all: a
 * report without error means the record is replicated). Returns 0, or the error of the first
 * failed message with its index in *bad.
 */
static int produce_wait(struct kctx *c, struct out *o, size_t n, size_t *bad, struct fx_err *err)
{
    atomic_int pending = 0;
    int64_t deadline = fx_mono_ms() + PRODUCE_TIMEOUT_MS + 5000;
    int rc = 0;
    size_t sent = 0;
    *bad = 0;
    for (; sent < n; sent++) {
        struct out *m = &o[sent];
        m->pending = &pending;
        m->err = 0;
        atomic_fetch_add(&pending, 1);
        rd_kafka_resp_err_t e;
        for (;;) {
            e = rd_kafka_producev(
                c->producer, RD_KAFKA_V_TOPIC(m->topic), RD_KAFKA_V_PARTITION(m->partition),
                RD_KAFKA_V_KEY(m->key, m->key ? strlen(m->key) : 0),
                RD_KAFKA_V_VALUE((void *)m->value, m->len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(m->headers),
                RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || fx_mono_ms() > deadline)
                break;
            rd_kafka_poll(c->producer, 10); /* make room */
        }
        if (e) {
            atomic_fetch_sub(&pending, 1);
            rd_kafka_headers_destroy(m->headers);
            m->headers = NULL;
            m->err = e;
            break;
        }
        m->headers = NULL; /* librdkafka owns them now */
    }
    for (size_t i = sent + 1; i < n; i++) {
        rd_kafka_headers_destroy(o[i].headers);
        o[i].headers = NULL;
    }
    while (atomic_load_explicit(&pending, memory_order_acquire) > 0) {
        if (fx_mono_ms() > deadline) {
            /* cannot return while reports may still write into o: purge, then drain */
            rd_kafka_purge(c->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            deadline = INT64_MAX;
        }
        rd_kafka_poll(c->producer, 5);
    }
    for (size_t i = 0; i < n && i <= sent; i++) {
        if (i < n && o[i].err) {
            *bad = i;
            rc = fx_err_set(err, kerr(o[i].err), "kafka topic %s: %s", o[i].topic,
                            rd_kafka_err2str(o[i].err));
            break;
        }
    }
    if (!rc && rd_kafka_fatal_error(c->producer, NULL, 0))
        rc = fx_err_set(err, FX_EBUS,
                        "bus %s: the idempotent producer failed fatally; "
                        "close and reopen the bus",
                        c->shown);
    return rc;
}

static int produce1(struct kctx *c, struct out *o, struct fx_err *err)
{
    size_t bad;
    return produce_wait(c, o, 1, &bad, err);
}

/* Make topic exist (auto-created by the broker on a producer metadata request). */
static int ensure_topic(struct kctx *c, const char *topic, struct fx_err *err)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->ntopics; i++) {
        if (strcmp(c->topics[i], topic) == 0) {
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    int64_t deadline = fx_mono_ms() + NET_TIMEOUT_MS;
    int32_t n = 0;
    int rc, pause = 10;
    while ((rc = topic_partitions(c->producer, topic, &n)) == 0 && n == 0) {
        if (fx_mono_ms() > deadline)
            return fx_err_set(err, FX_EBUS,
                              "kafka topic %s does not exist and the cluster did not create it "
                              "(is auto.create.topics.enable off? create it beforehand)",
                              topic);
        fx_sleep_ms(pause); /* the broker is creating it */
        pause = pause < 200 ? pause * 2 : 200;
    }
    if (rc)
        return fx_err_set(err, rc, "bus %s: cannot read metadata of topic %s", c->shown, topic);
    pthread_mutex_lock(&c->mu);
    if (c->ntopics == c->topics_cap) {
        c->topics_cap = c->topics_cap ? c->topics_cap * 2 : 16;
        c->topics = fx_realloc(c->topics, c->topics_cap * sizeof(*c->topics));
    }
    c->topics[c->ntopics++] = fx_strdup(topic);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* ---- registry of declarations ----------------------------------------- */

static void gdef_free(struct gdef *d)
{
    if (!d)
        return;
    free(d->name);
    strv_free(d->patterns, d->npatterns);
    free(d);
}

static struct gdef *gdef_find(struct kctx *c, const char *name)
{
    for (struct gdef *d = c->defs; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

/* Install d (taken) in place of any earlier declaration; mu held. */
static void gdef_put(struct kctx *c, struct gdef *d)
{
    struct gdef **pp = &c->defs;
    while (*pp && strcmp((*pp)->name, d->name) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        struct gdef *old = *pp;
        d->next = old->next;
        *pp = d;
        gdef_free(old);
    } else {
        d->next = NULL;
        *pp = d;
    }
}

static char *gdef_json(const struct gdef *d)
{
    json_t *pats = json_array();
    for (size_t i = 0; i < d->npatterns; i++)
        json_array_append_new(pats, json_string(d->patterns[i]));
    json_t *o = json_pack("{s:s, s:o, s:i, s:i, s:i, s:i}", "group", d->name, "patterns", pats,
                          "max_attempts", d->opts.max_attempts, "backoff_ms", d->opts.backoff_ms,
                          "backoff_max_ms", d->opts.backoff_max_ms, "lease_ms", d->opts.lease_ms);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *out = fx_strdup(s);
    free(s);
    return out;
}

static struct gdef *gdef_parse(const char *json, size_t len)
{
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    if (!o)
        return NULL;
    const char *name = NULL;
    json_t *pats = NULL;
    struct gdef *d = fx_calloc(1, sizeof(*d));
    fx_group_opts_init(&d->opts);
    if (json_unpack(o, "{s:s, s:o, s?:i, s?:i, s?:i, s?:i}", "group", &name, "patterns", &pats,
                    "max_attempts", &d->opts.max_attempts, "backoff_ms", &d->opts.backoff_ms,
                    "backoff_max_ms", &d->opts.backoff_max_ms, "lease_ms",
                    &d->opts.lease_ms) != 0 ||
        !json_is_array(pats)) {
        json_decref(o);
        free(d);
        return NULL;
    }
    d->name = fx_strdup(name);
    d->npatterns = json_array_size(pats);
    d->patterns = fx_calloc(d->npatterns ? d->npatterns : 1, sizeof(char *));
    for (size_t i = 0; i < d->npatterns; i++) {
        const char *p = json_string_value(json_array_get(pats, i));
        d->patterns[i] = fx_strdup(p ? p : "");
    }
    json_decref(o);
    return d;
}

/*
 * Read the registry topic up to its current end (at most every REGISTRY_TTL_MS unless force).
 * Declarations are small and few: the reader keeps its position for the next call.
 */
static int registry_sync(struct kctx *c, int force, struct fx_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&c->reg_mu);
    if (!force && c->synced_ms && fx_mono_ms() - c->synced_ms < REGISTRY_TTL_MS)
        goto out;
    if (!c->reader && !(c->reader = client_new(c, C_READER, READER_GROUP, NULL, err))) {
        rc = err ? err->code : FX_EBUS;
        goto out;
    }
    if (c->reader_parts == 0) {
        int32_t n = 0;
        if ((rc = topic_partitions(c->reader, REGISTRY_TOPIC, &n))) {
            rc = fx_err_set(err, rc, "bus %s: cannot read the group registry %s", c->shown,
                            REGISTRY_TOPIC);
            goto out;
        }
        if (n == 0) { /* nothing declared yet */
            c->synced_ms = fx_mono_ms();
            goto out;
        }
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
        for (int32_t p = 0; p < n; p++)
            rd_kafka_topic_partition_list_add(l, REGISTRY_TOPIC, p);
        if ((rc = query_offsets(c->reader, l, -2)) == 0) {
            c->reader_next = fx_calloc((size_t)n, sizeof(int64_t));
            for (int32_t p = 0; p < n; p++)
                c->reader_next[p] = l->elems[p].offset;
            if (rd_kafka_assign(c->reader, l) == 0)
                c->reader_parts = n;
            else
                rc = FX_EBUS;
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (rc) {
            free(c->reader_next);
            c->reader_next = NULL;
            rc = fx_err_set(err, rc, "bus %s: cannot read the group registry %s", c->shown,
                            REGISTRY_TOPIC);
            goto out;
        }
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->reader_parts);
    for (int32_t p = 0; p < c->reader_parts; p++)
        rd_kafka_topic_partition_list_add(l, REGISTRY_TOPIC, p);
    rc = query_offsets(c->reader, l, -1);
    int64_t deadline = fx_mono_ms() + NET_TIMEOUT_MS;
    for (int32_t p = 0; !rc && p < c->reader_parts; p++) {
        while (c->reader_next[p] < l->elems[p].offset) {
            if (fx_mono_ms() > deadline) {
                rc = FX_ETIMEDOUT;
                break;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c->reader, 100);
            if (!m)
                continue;
            if (!m->err && m->partition >= 0 && m->partition < c->reader_parts) {
                c->reader_next[m->partition] = m->offset + 1;
                struct gdef *d = m->payload ? gdef_parse(m->payload, m->len) : NULL;
                pthread_mutex_lock(&c->mu);
                if (d) {
                    gdef_put(c, d);
                } else if (!m->payload && m->key) { /* tombstone: undeclared */
                    char *name = fx_strndup(m->key, m->key_len);
                    struct gdef **pp = &c->defs;
                    while (*pp && strcmp((*pp)->name, name) != 0)
                        pp = &(*pp)->next;
                    if (*pp) {
                        struct gdef *old = *pp;
                        *pp = old->next;
                        gdef_free(old);
                    }
                    free(name);
                }
                pthread_mutex_unlock(&c->mu);
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (rc)
        rc = fx_err_set(err, rc, "bus %s: cannot read the group registry %s: %s", c->shown,
                        REGISTRY_TOPIC, fx_strerror(rc));
    else
        c->synced_ms = fx_mono_ms();
out:
    pthread_mutex_unlock(&c->reg_mu);
    return rc;
}

/* Options (and optionally bindings) of a declared group: FX_ENOTFOUND when undeclared. */
static int def_get(struct kctx *c, const char *group, struct fx_group_opts *o, char ***patterns,
                   size_t *npatterns, struct fx_err *err)
{
    for (int pass = 0; pass < 2; pass++) {
        int rc = registry_sync(c, pass, err);
        if (rc)
            return rc;
        pthread_mutex_lock(&c->mu);
        struct gdef *d = gdef_find(c, group);
        if (d) {
            if (o)
                *o = d->opts;
            if (patterns) {
                *patterns = strv_dup(d->patterns, d->npatterns);
                *npatterns = d->npatterns;
            }
        }
        pthread_mutex_unlock(&c->mu);
        if (d)
            return 0;
    }
    return fx_err_set(err, FX_ENOTFOUND, "bus group %s is not declared", group);
}

/* ---- records and partitions (mu held) ---------------------------------- */

static void rec_free(struct rec *r)
{
    if (!r)
        return;
    free(r->key);
    free(r->body);
    free(r);
}

static void orphan_free(struct orphan *q)
{
    free(q->topic);
    free(q->body);
    free(q);
}

static void part_free(struct part *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        rec_free(p->r[i]);
    free(p->r);
    free(p->topic);
    free(p->meta);
    free(p);
}

static struct part *part_find(struct kgroup *g, const char *topic, int32_t id)
{
    for (size_t i = 0; i < g->nparts; i++)
        if (g->parts[i]->id == id && strcmp(g->parts[i]->topic, topic) == 0)
            return g->parts[i];
    return NULL;
}

/* Index of the first record with offset >= off. */
static size_t rec_lower(const struct part *p, int64_t off)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->r[mid]->offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct rec *rec_find(const struct part *p, int64_t off)
{
    size_t i = rec_lower(p, off);
    return i < p->n && p->r[i]->offset == off ? p->r[i] : NULL;
}

static struct rec *rec_insert(struct part *p, int64_t off)
{
    size_t i = rec_lower(p, off);
    if (i < p->n && p->r[i]->offset == off)
        return p->r[i];
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->r = fx_realloc(p->r, p->cap * sizeof(*p->r));
    }
    memmove(&p->r[i + 1], &p->r[i], (p->n - i) * sizeof(*p->r));
    struct rec *r = fx_calloc(1, sizeof(*r));
    r->offset = off;
    r->kind = K_MSG;
    p->r[i] = r;
    p->n++;
    return r;
}

/* Lowest unsettled offset: what may be committed. -1 while unknown. */
static int64_t part_point(const struct part *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->r[i]->state != S_DONE && p->r[i]->offset < (p->next < 0 ? INT64_MAX : p->next))
            return p->r[i]->offset;
    return p->next;
}

/* Records above the commit point that the metadata must carry. */
static size_t part_entries(const struct part *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        k += p->r[i]->state != S_NEW || p->r[i]->n > 0;
    return k;
}

static void part_buffered(const struct part *p, size_t *recs, size_t *bytes)
{
    *recs = *bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->r[i]->state == S_NEW && p->r[i]->fetched) {
            (*recs)++;
            *bytes += p->r[i]->len;
        }
    }
}

/* Metadata of the commit at `point`: leases and settlements above it. */
static char *part_meta(const struct kgroup *g, const struct part *p, int64_t point)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "fx1");
    for (size_t i = 0; i < p->n; i++) {
        const struct rec *r = p->r[i];
        if (r->offset < point)
            continue;
        if (r->state == S_DONE)
            fx_buf_printf(&b, " %lld:D", (long long)r->offset);
        else if (r->state == S_INFLIGHT || r->state == S_HELD)
            fx_buf_printf(&b, " %lld:L:%d:%lld:%s", (long long)r->offset, r->n, (long long)r->until,
                          r->state == S_INFLIGHT ? g->holder : r->holder);
        else if (r->n > 0)
            fx_buf_printf(&b, " %lld:R:%d", (long long)r->offset, r->n);
        if (b.len > META_MAX)
            break; /* ENTRY_MAX keeps us far below; never send what a broker refuses */
    }
    return fx_buf_take(&b);
}

/* Entries of a committed metadata string, for the record at or above start. */
struct entry {
    int64_t offset;
    char kind; /* 'L', 'R', 'D' */
    int n;
    int64_t until;
    char holder[HOLDER_LEN + 1];
};

static size_t meta_parse(const char *s, size_t len, struct entry *out, size_t max)
{
    char *copy = fx_strndup(s, len);
    size_t k = 0;
    char *save = NULL;
    char *tok = strtok_r(copy, " ", &save);
    if (!tok || strcmp(tok, "fx1") != 0) {
        free(copy);
        return 0;
    }
    while ((tok = strtok_r(NULL, " ", &save)) && k < max) {
        struct entry e = {0};
        char kind = 0, holder[HOLDER_LEN + 2] = "";
        long long off = 0, until = 0;
        int n = 0;
        if (sscanf(tok, "%lld:%c:%d:%lld:%13s", &off, &kind, &n, &until, holder) < 2)
            continue;
        if (kind != 'L' && kind != 'R' && kind != 'D')
            continue;
        e.offset = off;
        e.kind = kind;
        e.n = n;
        e.until = until;
        snprintf(e.holder, sizeof(e.holder), "%.12s", holder);
        out[k++] = e;
    }
    free(copy);
    return k;
}

/*
 * Records from..to-1 of a partition are gone from the cluster while the group still had to
 * read or settle them (`settled` of them had been settled already). Nothing can bring them
 * back: say so loudly, with where and why, instead of carrying on as if they were delivered.
 */
static void report_lost(const struct kgroup *g, const char *topic, int32_t id, int64_t from,
                        int64_t to, int64_t settled)
{
    int64_t lost = to - from - settled;
    if (lost <= 0)
        return;
    fx_log_error("bus",
                 "kafka group %s: %lld records of %s [%d] (offsets %lld to %lld) were deleted by "
                 "the cluster before the group settled them: those messages are lost (the "
                 "topic's retention.ms or retention.bytes is shorter than the group's backlog; "
                 "librdkafka's mock cluster keeps only about 5 MiB per partition)",
                 g->name, (long long)lost, topic, (int)id, (long long)from, (long long)(to - 1));
}

/* ---- commits (commit_mu held, mu not held) ---------------------------- */

/*
 * Commit the commit point and lease metadata of every given partition that changed since the
 * last successful commit. Returns 0 or the first Kafka error (callers fall back on markers).
 */
static rd_kafka_resp_err_t commit_parts(struct kgroup *g, struct part **ps, size_t n)
{
    struct kctx *c = g->ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
    struct part **sent = fx_calloc(n ? n : 1, sizeof(*sent));
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        struct part *p = ps[i];
        int64_t point = part_point(p);
        if (point < 0)
            continue;
        /* drop what the commit point has passed */
        size_t gone = rec_lower(p, point);
        if (gone) {
            for (size_t j = 0; j < gone; j++)
                rec_free(p->r[j]);
            memmove(p->r, p->r + gone, (p->n - gone) * sizeof(*p->r));
            p->n -= gone;
        }
        char *meta = part_meta(g, p, point);
        if (point == p->committed && p->meta && strcmp(meta, p->meta) == 0) {
            free(meta);
            continue;
        }
        rd_kafka_topic_partition_t *t = rd_kafka_topic_partition_list_add(l, p->topic, p->id);
        t->offset = point;
        t->metadata = meta; /* freed by the list */
        t->metadata_size = strlen(meta);
        sent[k++] = p;
    }
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = 0;
    if (k) {
        e = rd_kafka_commit(g->rk, l, 0);
        if (!e) {
            for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].err && !e)
                    e = l->elems[i].err;
        }
        if (!e) {
            pthread_mutex_lock(&c->mu);
            for (size_t i = 0; i < k; i++) {
                free(sent[i]->meta);
                sent[i]->meta = fx_strndup(l->elems[i].metadata, l->elems[i].metadata_size);
                sent[i]->committed = l->elems[i].offset;
            }
            pthread_mutex_unlock(&c->mu);
        } else {
            fx_log_debug("bus", "kafka group %s: commit failed: %s", g->name, rd_kafka_err2str(e));
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(sent);
    return e;
}

/* ---- settle markers and dead letters ----------------------------------- */

struct ident { /* a record, by value: survives revocation */
    char *topic;
    int32_t id;
    int64_t offset;
    int n;
};

#define NOT_OWNED UINT64_MAX /* epoch for records we know we no longer own */

/* A retry record we just wrote: buffered at once, so that it blocks its key right away. */
struct fresh {
    int32_t partition;
    int64_t offset;
    int base;
    int64_t ts_us, not_before;
    const char *key, *body;
    size_t len;
};

static int32_t retry_partition(struct kgroup *g, int32_t id)
{
    pthread_mutex_lock(&g->ctx->mu);
    int32_t n = g->retry_parts;
    pthread_mutex_unlock(&g->ctx->mu);
    if (n <= 0) {
        int32_t got = 0;
        if (topic_partitions(g->ctx->producer, g->retry, &got) == 0 && got > 0) {
            pthread_mutex_lock(&g->ctx->mu);
            g->retry_parts = got;
            pthread_mutex_unlock(&g->ctx->mu);
        }
        n = got;
    }
    return n > 0 ? id % n : RD_KAFKA_PARTITION_UA;
}

/* Settle a record we may no longer own: the owner of its partition number reads the marker. */
static int write_marker(struct kgroup *g, const struct ident *id)
{
    char v[TOPIC_MAX + 64];
    int len = snprintf(v, sizeof(v), "%s/%d/%lld/%d", id->topic, (int)id->id, (long long)id->offset,
                       id->n);
    struct out o = {.topic = g->retry, .partition = retry_partition(g, id->id)};
    o.headers = rd_kafka_headers_new(1);
    rd_kafka_header_add(o.headers, H_SETTLE, -1, v, len);
    struct fx_err err;
    int rc = produce1(g->ctx, &o, &err);
    if (rc)
        fx_log_error("bus", "kafka group %s: cannot write the settle marker of %s: %s", g->name, v,
                     err.reason);
    else
        fx_log_debug("bus", "kafka group %s: settle marker %s written", g->name, v);
    return rc;
}

static void marker_apply(struct kgroup *g, const char *v, size_t len)
{
    char tmp[TOPIC_MAX + 64];
    if (len >= sizeof(tmp))
        return;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    char *a = strchr(tmp, '/');
    if (!a)
        return;
    *a++ = '\0';
    int id = 0, n = 0;
    long long off = 0;
    if (sscanf(a, "%d/%lld/%d", &id, &off, &n) != 3)
        return;
    struct part *p = part_find(g, tmp, id);
    struct rec *r = p ? rec_find(p, off) : NULL;
    int hit = r && r->state != S_DONE && !r->busy && r->n == n;
    if (hit)
        r->state = S_DONE;
    fx_log_debug("bus", "kafka group %s: settle marker %s/%d/%lld/%d %s", g->name, tmp, id, off, n,
                 hit ? "applied" : "ignored (not ours, or settled)");
}

/*
 * Mark a record settled and commit; when we no longer own it (or the commit fails), write a
 * settle marker instead. fresh: a retry record just written for it, buffered at once.
 */
static int settle_ident(struct kgroup *g, const struct ident *id, uint64_t epoch,
                        const struct fresh *fresh)
{
    struct kctx *c = g->ctx;
    pthread_mutex_lock(&g->commit_mu);
    pthread_mutex_lock(&c->mu);
    struct part *p = g->epoch == epoch ? part_find(g, id->topic, id->id) : NULL;
    struct rec *r = p ? rec_find(p, id->offset) : NULL;
    int owned = r && r->n == id->n;
    if (owned) {
        r->state = S_DONE;
        r->busy = 0;
    } else { /* revoked while we worked on it: its lease goes with this settlement */
        for (struct orphan **pp = &g->orphans; *pp; pp = &(*pp)->next) {
            struct orphan *q = *pp;
            if (q->id == id->id && q->offset == id->offset && q->n == id->n &&
                strcmp(q->topic, id->topic) == 0) {
                *pp = q->next;
                orphan_free(q);
                break;
            }
        }
    }
    struct part *rp = fresh ? part_find(g, g->retry, fresh->partition) : NULL;
    if (rp && rp->next >= 0 && fresh->offset >= rp->next) {
        struct rec *nr = rec_insert(rp, fresh->offset);
        if (!nr->fetched && nr->state == S_NEW) {
            nr->kind = K_RETRY;
            nr->fetched = 1;
            nr->base = fresh->base;
            nr->ts_us = fresh->ts_us;
            nr->not_before = fresh->not_before;
            nr->key = fresh->key ? fx_strdup(fresh->key) : NULL;
            nr->body = fx_strndup(fresh->body, fresh->len);
            nr->len = fresh->len;
        }
    }
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = owned ? commit_parts(g, &p, 1) : RD_KAFKA_RESP_ERR__STATE;
    pthread_mutex_unlock(&g->commit_mu);
    pthread_cond_broadcast(&c->cv);
    return e ? write_marker(g, id) : 0;
}

/* Dead-letter one record (body given) with reason; then settle it. */
static int dead_letter(struct kgroup *g, const struct ident *id, uint64_t epoch, const char *key,
                       const char *body, size_t len, int attempts, int64_t ts_us,
                       const char *reason)
{
    char origin[TOPIC_MAX + 48];
    snprintf(origin, sizeof(origin), "%s/%d/%lld", id->topic, (int)id->id, (long long)id->offset);
    struct out o = {.topic = g->dlq, .partition = 0, .key = key, .value = body, .len = len};
    o.headers = rd_kafka_headers_new(6);
    rd_kafka_header_add(o.headers, H_REASON, -1, reason, -1);
    header_add_i64(o.headers, H_ATTEMPTS, attempts);
    header_add_i64(o.headers, H_TS, ts_us);
    rd_kafka_header_add(o.headers, H_GROUP, -1, g->name, -1);
    rd_kafka_header_add(o.headers, H_ORIGIN, -1, origin, -1);
    struct fx_err err;
    int rc = produce1(g->ctx, &o, &err);
    if (rc) {
        fx_log_error("bus", "kafka group %s: cannot dead-letter %s: %s", g->name, origin,
                     err.reason);
        return rc;
    }
    return settle_ident(g, id, epoch, NULL);
}

/* ---- expiry ------------------------------------------------------------ */

struct expired {
    struct ident id;
    char *key, *body, *reason;
    size_t len;
    int attempts;
    int64_t ts_us;
};

/*
 * Leases that ended: back to the buffer (the next delivery counts one more attempt), or,
 * when that would exceed max_attempts, marked busy and returned for dead-lettering outside
 * the lock. Returns how many records changed state.
 */
static size_t expire_locked(struct kgroup *g, const struct fx_group_opts *o, int64_t now,
                            struct expired **out, size_t *nout)
{
    size_t changed = 0;
    *out = NULL;
    *nout = 0;
    size_t cap = 0;
    for (size_t i = 0; i < g->nparts; i++) {
        struct part *p = g->parts[i];
        for (size_t j = 0; j < p->n; j++) {
            struct rec *r = p->r[j];
            if ((r->state != S_INFLIGHT && r->state != S_HELD) || r->busy || r->until > now)
                continue;
            if (r->state == S_HELD && !r->fetched)
                continue; /* its body comes with the fetch */
            int attempt = r->base + r->n;
            if (attempt < o->max_attempts) {
                r->state = S_NEW;
                r->not_before = 0;
                changed++;
                continue;
            }
            if (!r->fetched)
                continue;
            if (*nout == cap) {
                cap = cap ? cap * 2 : 4;
                *out = fx_realloc(*out, cap * sizeof(**out));
            }
            struct expired *x = &(*out)[(*nout)++];
            x->id = (struct ident){fx_strdup(p->topic), p->id, r->offset, r->n};
            x->key = r->key ? fx_strdup(r->key) : NULL;
            x->body = fx_strndup(r->body, r->len);
            x->len = r->len;
            x->attempts = attempt;
            x->ts_us = r->ts_us;
            x->reason = fx_asprintf("lease expired on delivery %d of %d", attempt, o->max_attempts);
            r->busy = 1;
            changed++;
        }
    }
    return changed;
}

static void expired_run(struct kgroup *g, uint64_t epoch, struct expired *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (dead_letter(g, &x[i].id, epoch, x[i].key, x[i].body, x[i].len, x[i].attempts,
                        x[i].ts_us, x[i].reason) != 0) {
            /* retried at the next expiry pass */
            pthread_mutex_lock(&g->ctx->mu);
            struct part *p = g->epoch == epoch ? part_find(g, x[i].id.topic, x[i].id.id) : NULL;
            struct rec *r = p ? rec_find(p, x[i].id.offset) : NULL;
            if (r)
                r->busy = 0;
            pthread_mutex_unlock(&g->ctx->mu);
        }
        free(x[i].id.topic);
        free(x[i].key);
        free(x[i].body);
        free(x[i].reason);
    }
    free(x);
}

/* ---- the pump: fetched records into the buffer -------------------------- */

static void on_message(struct kgroup *g, rd_kafka_message_t *m)
{
    struct kctx *c = g->ctx;
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            fx_log_debug("bus", "kafka group %s: %s", g->name, rd_kafka_message_errstr(m));
        else
            fx_log_warn("bus", "kafka group %s: %s", g->name, rd_kafka_message_errstr(m));
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    pthread_mutex_lock(&c->mu);
    struct part *p = part_find(g, topic, m->partition);
    if (!p || (p->next >= 0 && m->offset < p->next)) {
        pthread_mutex_unlock(&c->mu);
        return; /* not ours (any more), or seen */
    }
    if (p->next >= 0 && m->offset > p->next) {
        /* A gap: compaction, transaction markers, or, when the log now starts above where we
         * were, records retention deleted before we read them (the fetcher then restarts
         * from the log start: auto.offset.reset). The low watermark is the one of the last
         * fetch response, known locally. */
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(g->rk, topic, m->partition, &lo, &hi) == 0 &&
            lo > p->next) {
            int64_t to = lo < m->offset ? lo : m->offset, settled = 0;
            for (size_t i = 0; i < p->n && p->r[i]->offset < to; i++)
                settled += p->r[i]->offset >= p->next && p->r[i]->state == S_DONE;
            report_lost(g, topic, m->partition, p->next, to, settled);
        }
    }
    /* records that vanished (compaction) while their metadata entry waited for them */
    for (size_t i = 0; i < p->n && p->r[i]->offset < m->offset; i++)
        if (!p->r[i]->fetched && p->r[i]->state != S_DONE)
            p->r[i]->state = S_DONE;
    p->next = m->offset + 1;
    struct rec *r = rec_insert(p, m->offset);
    if (r->fetched || r->state == S_DONE) {
        pthread_mutex_unlock(&c->mu);
        return; /* buffered when we wrote it, or settled by a marker */
    }
    size_t n;
    const char *settle = header(h, H_SETTLE, &n);
    int retry = p->retry && header(h, H_ATTEMPTS, NULL);
    if (settle) {
        r->kind = K_MARKER;
        r->state = S_DONE;
        if (p->retry)
            marker_apply(g, settle, n);
    } else if (!retry && (header(h, H_ATTEMPTS, NULL) || header(h, H_REASON, NULL) ||
                          !matches_any(g->patterns, g->npatterns, topic))) {
        /* another group's retry or dead letter, or a topic the regex over-matched */
        r->kind = K_SKIP;
        r->state = S_DONE;
    } else {
        r->kind = retry ? K_RETRY : K_MSG;
        r->fetched = 1;
        r->key = m->key && m->key_len ? fx_strndup(m->key, m->key_len) : NULL;
        free(r->body); /* an adopted delivery's copy: the same bytes */
        r->body = fx_malloc(m->len + 1);
        if (m->len)
            memcpy(r->body, m->payload, m->len);
        r->body[m->len] = '\0';
        r->len = m->len;
        rd_kafka_timestamp_type_t tt;
        int64_t kts = rd_kafka_message_timestamp(m, &tt);
        r->ts_us = header_i64(h, H_TS, kts > 0 ? kts * 1000 : 0);
        if (retry) {
            r->base = (int)header_i64(h, H_ATTEMPTS, 0);
            r->not_before = header_i64(h, H_NOT_BEFORE, 0);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* Open the delivery gate once every partition caught up with its end at assignment. */
static void gate_check_locked(struct kgroup *g, int64_t now_mono)
{
    if (g->gate)
        return;
    int open = now_mono - g->assigned_ms >= GATE_MAX_MS;
    for (size_t i = 0; !open && i < g->nparts; i++) {
        struct part *p = g->parts[i];
        if (!(p->paused || (p->next >= 0 && p->next >= p->hwm0)))
            return;
    }
    g->gate = 1;
}

static void subscribe_locked(struct kgroup *g);

static void housekeeping(struct kgroup *g)
{
    struct kctx *c = g->ctx;
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    int64_t now = fx_now_ms(), mono = fx_mono_ms();
    struct expired *x;
    size_t nx;
    rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_t *resume = rd_kafka_topic_partition_list_new(4);

    pthread_mutex_lock(&c->mu);
    struct gdef *d = gdef_find(c, g->name);
    if (d)
        o = d->opts;
    int was_open = g->gate;
    gate_check_locked(g, mono);
    size_t changed = expire_locked(g, &o, now, &x, &nx) + (g->gate != was_open);
    uint64_t epoch = g->epoch;
    for (size_t i = 0; i < g->nparts; i++) {
        struct part *p = g->parts[i];
        size_t recs, bytes;
        part_buffered(p, &recs, &bytes);
        if (!p->paused && (recs > BUF_HIGH_RECS || bytes > BUF_HIGH_BYTES)) {
            rd_kafka_topic_partition_list_add(pause, p->topic, p->id);
            p->paused = 1;
        } else if (p->paused && recs < BUF_LOW_RECS && bytes < BUF_LOW_BYTES) {
            rd_kafka_topic_partition_list_add(resume, p->topic, p->id);
            p->paused = 0;
        }
    }
    for (struct orphan **pp = &g->orphans; *pp;) {
        struct orphan *q = *pp;
        if (q->until < now - 1000) { /* past its lease: nobody can settle it any more */
            *pp = q->next;
            orphan_free(q);
        } else {
            pp = &q->next;
        }
    }
    pthread_mutex_unlock(&c->mu);

    if (pause->cnt)
        rd_kafka_pause_partitions(g->rk, pause);
    if (resume->cnt)
        rd_kafka_resume_partitions(g->rk, resume);
    rd_kafka_topic_partition_list_destroy(pause);
    rd_kafka_topic_partition_list_destroy(resume);
    if (changed)
        pthread_cond_broadcast(&c->cv);
    expired_run(g, epoch, x, nx);

    pthread_mutex_lock(&g->commit_mu);
    commit_parts(g, g->parts, g->nparts);
    pthread_mutex_unlock(&g->commit_mu);

    if (mono - g->refreshed_ms >= REFRESH_MS) {
        /* declarations changed by other processes: options and bindings */
        g->refreshed_ms = mono;
        if (registry_sync(c, 0, NULL) == 0) {
            pthread_mutex_lock(&c->mu);
            d = gdef_find(c, g->name);
            if (d && !strv_equal(d->patterns, d->npatterns, g->patterns, g->npatterns)) {
                strv_free(g->patterns, g->npatterns);
                g->patterns = strv_dup(d->patterns, d->npatterns);
                g->npatterns = d->npatterns;
                subscribe_locked(g);
            }
            pthread_mutex_unlock(&c->mu);
        }
    }
}

static void *pump_main(void *arg)
{
    struct kgroup *g = arg;
    while (!atomic_load(&g->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(g->rk, 100);
        int got = 0;
        while (m) {
            on_message(g, m);
            rd_kafka_message_destroy(m);
            got++;
            m = got < 512 ? rd_kafka_consumer_poll(g->rk, 0) : NULL;
        }
        if (got)
            pthread_cond_broadcast(&g->ctx->cv);
        housekeeping(g);
    }
    return NULL;
}

/* ---- rebalances (pump thread, or the closing thread) -------------------- */

static void on_assign(struct kgroup *g, rd_kafka_topic_partition_list_t *l)
{
    struct kctx *c = g->ctx;
    rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_topic_partition_list_t *lo = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_topic_partition_list_t *hi = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FAIL;
    for (int attempt = 0; attempt < 3 && e; attempt++)
        e = rd_kafka_committed(g->rk, cl, NET_TIMEOUT_MS);
    if (e)
        fx_log_error("bus",
                     "kafka group %s: cannot read committed offsets (%s): leases of "
                     "crashed consumers are lost",
                     g->name, rd_kafka_err2str(e));
    int qlo = query_offsets(g->rk, lo, -2), qhi = query_offsets(g->rk, hi, -1);

    pthread_mutex_lock(&g->commit_mu);
    pthread_mutex_lock(&c->mu);
    g->epoch++;
    g->parts = fx_realloc(g->parts, (g->nparts + (size_t)l->cnt + 1) * sizeof(*g->parts));
    for (int i = 0; i < l->cnt; i++) {
        struct part *p = fx_calloc(1, sizeof(*p));
        p->topic = fx_strdup(l->elems[i].topic);
        p->id = l->elems[i].partition;
        p->retry = strcmp(p->topic, g->retry) == 0;
        p->committed = -1;
        int64_t low = qlo ? -1 : lo->elems[i].offset;
        int64_t com = e ? -1 : cl->elems[i].offset;
        int64_t start = com >= 0 ? (low > com ? low : com) : low;
        p->next = start;
        p->hwm0 = qhi ? 0 : hi->elems[i].offset;
        if (com >= 0 && !e) {
            p->committed = com;
            p->meta = fx_strndup(cl->elems[i].metadata ? cl->elems[i].metadata : "",
                                 cl->elems[i].metadata_size);
            struct entry ents[ENTRY_MAX * 2];
            size_t ne =
                meta_parse(cl->elems[i].metadata ? cl->elems[i].metadata : "",
                           cl->elems[i].metadata_size, ents, sizeof(ents) / sizeof(ents[0]));
            if (low > com) {
                /* the log now starts above our commit point: retention deleted records
                 * that nobody settled (whatever was leased or due among them too) */
                int64_t settled = 0;
                for (size_t k = 0; k < ne; k++)
                    settled += ents[k].kind == 'D' && ents[k].offset < low;
                report_lost(g, p->topic, p->id, com, low, settled);
            }
            for (size_t k = 0; k < ne; k++) {
                if (ents[k].offset < start)
                    continue;
                struct rec *r = rec_insert(p, ents[k].offset);
                r->n = ents[k].n;
                if (ents[k].kind == 'D') {
                    r->state = S_DONE;
                } else if (ents[k].kind == 'R') {
                    r->state = S_NEW;
                } else {
                    r->state = S_HELD;
                    r->until = ents[k].until;
                    snprintf(r->holder, sizeof(r->holder), "%s", ents[k].holder);
                    /* our own delivery coming back: it stays valid */
                    for (struct orphan **pp = &g->orphans; *pp; pp = &(*pp)->next) {
                        struct orphan *q = *pp;
                        if (strcmp(ents[k].holder, g->holder) == 0 && q->id == p->id &&
                            q->offset == r->offset && q->n == r->n &&
                            strcmp(q->topic, p->topic) == 0) {
                            r->state = S_INFLIGHT;
                            r->tag = q->tag;
                            r->handle = q->handle;
                            r->until = q->until;
                            if (!r->body) { /* a nack before the fetch writes this body */
                                r->body = q->body;
                                r->len = q->len;
                                q->body = NULL;
                            }
                            *pp = q->next;
                            orphan_free(q);
                            break;
                        }
                    }
                }
            }
        }
        l->elems[i].offset = start >= 0 ? start : RD_KAFKA_OFFSET_STORED;
        g->parts[g->nparts++] = p;
    }
    g->assigned_ms = fx_mono_ms();
    g->gate = 0;
    size_t held = 0, adopted = 0;
    for (size_t i = 0; i < g->nparts; i++) {
        for (size_t j = 0; j < g->parts[i]->n; j++) {
            held += g->parts[i]->r[j]->state == S_HELD;
            adopted += g->parts[i]->r[j]->state == S_INFLIGHT;
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&g->commit_mu);
    rd_kafka_topic_partition_list_destroy(cl);
    rd_kafka_topic_partition_list_destroy(lo);
    rd_kafka_topic_partition_list_destroy(hi);
    rd_kafka_assign(g->rk, l);
    fx_log_debug("bus",
                 "kafka group %s: assigned %d partitions; %zu leases of others held, %zu of ours "
                 "back in flight",
                 g->name, l->cnt, held, adopted);
    pthread_cond_broadcast(&c->cv);
}

static void on_revoke(struct kgroup *g)
{
    struct kctx *c = g->ctx;
    pthread_mutex_lock(&g->commit_mu);
    pthread_mutex_lock(&c->mu);
    g->epoch++;
    for (size_t i = 0; i < g->nparts; i++) {
        struct part *p = g->parts[i];
        for (size_t j = 0; j < p->n; j++) {
            struct rec *r = p->r[j];
            if (r->state != S_INFLIGHT)
                continue;
            struct orphan *q = fx_calloc(1, sizeof(*q));
            q->topic = fx_strdup(p->topic);
            q->id = p->id;
            q->offset = r->offset;
            q->n = r->n;
            q->tag = r->tag;
            q->handle = r->handle;
            q->until = r->until;
            q->ts_us = r->ts_us;
            q->body = r->body; /* the caller's delivery may no longer hold its data */
            q->len = r->len;
            r->body = NULL;
            q->next = g->orphans;
            g->orphans = q;
        }
        part_free(p);
    }
    size_t orphans = 0;
    for (struct orphan *q = g->orphans; q; q = q->next)
        orphans++;
    fx_log_debug("bus",
                 "kafka group %s: revoked %zu partitions; %zu deliveries in flight keep "
                 "their leases",
                 g->name, g->nparts, orphans);
    g->nparts = 0;
    g->gate = 0;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&g->commit_mu);
    rd_kafka_assign(g->rk, NULL);
    pthread_cond_broadcast(&c->cv);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kgroup *g = opaque;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(g, parts);
    } else if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(g);
    } else {
        fx_log_warn("bus", "kafka group %s: rebalance error: %s", g->name, rd_kafka_err2str(e));
        on_revoke(g);
        rd_kafka_assign(rk, NULL);
    }
}

/* ---- groups ------------------------------------------------------------ */

static void subscribe_locked(struct kgroup *g)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)g->npatterns + 1);
    char **sub = fx_calloc(g->npatterns + 1, sizeof(*sub));
    size_t n = 0;
    sub[n++] = fx_strdup(g->retry);
    for (size_t i = 0; i < g->npatterns; i++) {
        if (!*g->patterns[i])
            continue;
        char *s = has_wildcard(g->patterns[i]) ? pattern_regex(g->patterns[i])
                                               : fx_strdup(g->patterns[i]);
        size_t k = 0;
        while (k < n && strcmp(sub[k], s) != 0)
            k++;
        if (k < n)
            free(s);
        else
            sub[n++] = s;
    }
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, sub[i], RD_KAFKA_PARTITION_UA);
    if (!g->rk || strv_equal(sub, n, g->sub, g->nsub)) {
        strv_free(sub, n);
    } else {
        rd_kafka_resp_err_t e = rd_kafka_subscribe(g->rk, l);
        if (e)
            fx_log_error("bus", "kafka group %s: cannot subscribe: %s", g->name,
                         rd_kafka_err2str(e));
        strv_free(g->sub, g->nsub);
        g->sub = sub;
        g->nsub = n;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static struct kgroup *group_get(struct kctx *c, const char *name)
{
    pthread_mutex_lock(&c->mu);
    struct kgroup *g = c->groups;
    while (g && strcmp(g->name, name) != 0)
        g = g->next;
    if (!g) {
        g = fx_calloc(1, sizeof(*g));
        g->ctx = c;
        g->name = fx_strdup(name);
        g->retry = fx_asprintf("%s.retry", name);
        g->dlq = fx_asprintf("%s.dlq", name);
        char id[37];
        fx_uuid7(id);
        /* the random tail of a UUIDv7, without its dash */
        snprintf(g->holder, sizeof(g->holder), "%.4s%.8s", id + 19, id + 24);
        pthread_mutex_init(&g->commit_mu, NULL);
        g->patterns = fx_calloc(1, sizeof(char *));
        g->sub = fx_calloc(1, sizeof(char *));
        g->next = c->groups;
        c->groups = g;
    }
    pthread_mutex_unlock(&c->mu);
    return g;
}

static struct kgroup *group_find(struct kctx *c, const char *name)
{
    pthread_mutex_lock(&c->mu);
    struct kgroup *g = c->groups;
    while (g && strcmp(g->name, name) != 0)
        g = g->next;
    pthread_mutex_unlock(&c->mu);
    return g;
}

/* Join the Kafka group with this process (once): member, subscription, pump. */
static int group_start(struct kctx *c, struct kgroup *g, struct fx_err *err)
{
    char **pats = NULL;
    size_t npats = 0;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    int started = g->rk != NULL;
    pthread_mutex_unlock(&c->mu);
    if (started)
        return 0;
    if ((rc = def_get(c, g->name, NULL, &pats, &npats, err)))
        return rc;
    rd_kafka_t *rk = client_new(c, C_MEMBER, g->name, g, err);
    if (!rk) {
        strv_free(pats, npats);
        return err ? err->code : FX_EBUS;
    }
    pthread_mutex_lock(&c->mu);
    if (g->rk) { /* another thread won */
        pthread_mutex_unlock(&c->mu);
        rd_kafka_destroy(rk);
        strv_free(pats, npats);
        return 0;
    }
    g->rk = rk;
    strv_free(g->patterns, g->npatterns);
    g->patterns = pats;
    g->npatterns = npats;
    g->refreshed_ms = fx_mono_ms();
    subscribe_locked(g);
    atomic_store(&g->stop, 0);
    if (pthread_create(&g->pump, NULL, pump_main, g) == 0)
        g->pumping = 1;
    else
        rc = fx_err_set(err, FX_EBUS, "bus %s: cannot start the consumer thread of group %s",
                        c->shown, g->name);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* A client that reads and writes the group's committed offsets: the member or a bystander. */
static rd_kafka_t *group_offsets_client(struct kctx *c, struct kgroup *g, struct fx_err *err)
{
    pthread_mutex_lock(&c->mu);
    rd_kafka_t *rk = g->rk ? g->rk : g->admin;
    pthread_mutex_unlock(&c->mu);
    if (rk)
        return rk;
    rk = client_new(c, C_READER, g->name, NULL, err);
    if (!rk)
        return NULL;
    pthread_mutex_lock(&c->mu);
    if (g->admin) {
        pthread_mutex_unlock(&c->mu);
        rd_kafka_destroy(rk);
        return g->admin;
    }
    g->admin = rk;
    pthread_mutex_unlock(&c->mu);
    return rk;
}

static void group_free(struct kgroup *g)
{
    if (g->pumping) {
        atomic_store(&g->stop, 1);
        pthread_join(g->pump, NULL);
    }
    if (g->rk) {
        /* leaves the group now instead of after session.timeout.ms; leases stay in the
         * committed metadata for the next owner */
        rd_kafka_consumer_close(g->rk);
        rd_kafka_destroy(g->rk);
    }
    if (g->admin) {
        rd_kafka_consumer_close(g->admin);
        rd_kafka_destroy(g->admin);
    }
    for (size_t i = 0; i < g->nparts; i++)
        part_free(g->parts[i]);
    free(g->parts);
    while (g->orphans) {
        struct orphan *q = g->orphans;
        g->orphans = q->next;
        orphan_free(q);
    }
    strv_free(g->patterns, g->npatterns);
    strv_free(g->sub, g->nsub);
    pthread_mutex_destroy(&g->commit_mu);
    free(g->name);
    free(g->retry);
    free(g->dlq);
    free(g);
}

/* Every topic of the cluster that the group reads: bound ones and its retry topic. */
static int group_topics(struct kctx *c, struct kgroup *g, char **patterns, size_t npatterns,
                        rd_kafka_topic_partition_list_t **out, struct fx_err *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->producer, 1, NULL, &md, NET_TIMEOUT_MS);
    if (e)
        return fx_err_set(err, kerr(e), "bus %s: cannot list topics: %s", c->shown,
                          rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (t->err || strncmp(t->topic, "__", 2) == 0)
            continue;
        if (strcmp(t->topic, g->retry) != 0 && !matches_any(patterns, npatterns, t->topic))
            continue;
        for (int p = 0; p < t->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(l, t->topic, t->partitions[p].id);
    }
    rd_kafka_metadata_destroy(md);
    *out = l;
    return 0;
}

/* ---- context ----------------------------------------------------------- */

static void ctx_free(struct kctx *c)
{
    if (!c)
        return;
    while (c->groups) {
        struct kgroup *g = c->groups;
        c->groups = g->next;
        group_free(g);
    }
    if (c->reader) {
        rd_kafka_consumer_close(c->reader);
        rd_kafka_destroy(c->reader);
    }
    if (c->producer) {
        rd_kafka_flush(c->producer, 5000);
        rd_kafka_destroy(c->producer);
    }
    if (c->mock)
        rd_kafka_mock_cluster_destroy(c->mock);
    if (c->mock_host)
        rd_kafka_destroy(c->mock_host);
    while (c->defs) {
        struct gdef *d = c->defs;
        c->defs = d->next;
        gdef_free(d);
    }
    strv_free(c->topics, c->ntopics);
    strv_free(c->props, c->nprops);
    free(c->reader_next);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->reg_mu);
    pthread_cond_destroy(&c->cv);
    free(c->brokers);
    free(c->shown);
    free(c->url);
    free(c);
}

/* kafka://hosts[?name=value&...] into brokers, mock size and properties. */
static int parse_url(const char *url, struct kctx *c, struct fx_err *err)
{
    const char *shown = c->shown;
    const char *rest = url + strlen("kafka:");
    if (strncmp(rest, "//", 2) != 0)
        return fx_err_set(err, FX_EINVAL,
                          "bus URL %s: expected kafka://host:port[,host:port] or kafka://mock[:N]",
                          shown);
    rest += 2;
    const char *q = strchr(rest, '?');
    char *hosts = q ? fx_strndup(rest, (size_t)(q - rest)) : fx_strdup(rest);
    int rc = 0;
    if (!*hosts) {
        rc = fx_err_set(err, FX_EINVAL, "bus URL %s names no broker (kafka://host:port)", shown);
    } else if (strcmp(hosts, "mock") == 0 || strncmp(hosts, "mock:", 5) == 0) {
        char *end = NULL;
        long n = hosts[4] ? strtol(hosts + 5, &end, 10) : 1;
        if (hosts[4] && (!*(hosts + 5) || *end || n < 1 || n > MOCK_MAX_BROKERS))
            rc = fx_err_set(err, FX_EINVAL, "bus URL %s: mock cluster size must be 1 to %d", shown,
                            MOCK_MAX_BROKERS);
        c->mock_n = (int)n;
    } else {
        for (char *h = hosts; *h; h++) {
            if ((unsigned char)*h <= ' ' || *h == '/' || *h == '@') {
                rc = fx_err_set(err, FX_EINVAL, "bus URL %s: bad character in broker list", shown);
                break;
            }
        }
        c->brokers = fx_strdup(hosts);
    }
    free(hosts);
    size_t cap = 0;
    for (const char *p = q ? q + 1 : NULL; !rc && p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) {
            rc = fx_err_set(err, FX_EINVAL, "bus URL %s: query item %zu is not name=value", shown,
                            c->nprops / 2 + 1);
            break;
        }
        char *name = fx_strndup(p, (size_t)(eq - p));
        for (size_t i = 0; i < sizeof(fixed_props) / sizeof(fixed_props[0]); i++) {
            if (strcmp(name, fixed_props[i]) == 0) {
                rc = fx_err_set(err, FX_EINVAL,
                                "bus URL %s: kafka property %s is set by the bus and cannot be "
                                "changed",
                                shown, name);
                break;
            }
        }
        if (c->nprops + 2 > cap) {
            cap = cap ? cap * 2 : 8;
            c->props = fx_realloc(c->props, cap * sizeof(*c->props));
        }
        c->props[c->nprops++] = name;
        c->props[c->nprops++] = fx_strndup(eq + 1, len - (size_t)(eq - p) - 1);
        p = amp ? amp + 1 : NULL;
    }
    return rc;
}

static struct kctx *ctx_new(const char *url, struct fx_err *err)
{
    struct kctx *c = fx_calloc(1, sizeof(*c));
    c->url = fx_strdup(url);
    c->shown = fx_strndup(url, strcspn(url, "?"));
    c->refs = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->reg_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    c->props = fx_calloc(1, sizeof(char *));
    if (parse_url(url, c, err))
        goto fail;
    /* reject unknown properties now, with the URL in the message */
    rd_kafka_conf_t *probe = rd_kafka_conf_new();
    for (size_t i = 0; i < c->nprops; i += 2) {
        if (conf_put(probe, c->props[i], c->props[i + 1], err)) {
            rd_kafka_conf_destroy(probe);
            char why[sizeof(err->reason)];
            snprintf(why, sizeof(why), "%s", err->reason);
            fx_err_set(err, FX_EINVAL, "bus URL %s: %s", c->shown, why);
            goto fail;
        }
    }
    rd_kafka_conf_destroy(probe);
    if (c->mock_n) {
        char why[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, on_log);
        c->mock_host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
        if (!c->mock_host) {
            rd_kafka_conf_destroy(conf);
            fx_err_set(err, FX_EBUS, "bus %s: cannot start a mock cluster: %s", c->shown, why);
            goto fail;
        }
        c->mock = rd_kafka_mock_cluster_new(c->mock_host, c->mock_n);
        if (!c->mock) {
            fx_err_set(err, FX_EBUS, "bus %s: cannot start a mock cluster", c->shown);
            goto fail;
        }
        c->brokers = fx_strdup(rd_kafka_mock_cluster_bootstraps(c->mock));
        fx_log_info("bus", "kafka mock cluster of %d broker(s) at %s (this process only)",
                    c->mock_n, c->brokers);
    }
    if (!(c->producer = client_new(c, C_PRODUCER, NULL, NULL, err)))
        goto fail;
    return c;
fail:
    ctx_free(c);
    return NULL;
}

/* ---- operations -------------------------------------------------------- */

static int kafka_open(const char *url, struct fx_bus **out, struct fx_err *err)
{
    pthread_mutex_lock(&ctxs_mu);
    struct kctx *c = ctxs;
    while (c && strcmp(c->url, url) != 0)
        c = c->next;
    if (c) {
        c->refs++;
    } else if ((c = ctx_new(url, err))) {
        c->next = ctxs;
        ctxs = c;
    }
    pthread_mutex_unlock(&ctxs_mu);
    if (!c)
        return err && err->code ? err->code : FX_EBUS;
    struct kafka_bus *h = fx_calloc(1, sizeof(*h));
    h->ctx = c;
    pthread_mutex_lock(&c->mu);
    h->id = ++c->handles;
    pthread_mutex_unlock(&c->mu);
    fx_buf_init(&h->enc, FX__BUS_BODY_MAX);
    *out = &h->base;
    return 0;
}

static void kafka_close(struct fx_bus *b)
{
    struct kafka_bus *h = kb(b);
    struct kctx *c = h->ctx;
    pthread_mutex_lock(&ctxs_mu);
    int last = --c->refs == 0;
    if (last) {
        struct kctx **pp = &ctxs;
        while (*pp != c)
            pp = &(*pp)->next;
        *pp = c->next;
    }
    pthread_mutex_unlock(&ctxs_mu);
    if (last)
        ctx_free(c);
    fx_buf_cleanup(&h->enc);
    free(h);
}

static int kafka_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                         size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err)
{
    struct kafka_bus *h = kb(b);
    struct kctx *c = h->ctx;
    int rc;
    if ((rc = check_group_name(group, err)))
        return rc;
    for (size_t i = 0; i < npatterns; i++)
        if ((rc = check_pattern(patterns[i], err)))
            return rc;
    if ((rc = registry_sync(c, 1, err)))
        return rc;
    struct gdef *d = fx_calloc(1, sizeof(*d));
    d->name = fx_strdup(group);
    d->patterns = strv_dup((char *const *)patterns, npatterns);
    d->npatterns = npatterns;
    fx_group_opts_init(&d->opts);
    pthread_mutex_lock(&c->mu);
    struct gdef *old = gdef_find(c, group);
    if (opts)
        d->opts = *opts;
    else if (old)
        d->opts = old->opts;
    pthread_mutex_unlock(&c->mu);

    struct kgroup *g = group_get(c, group);
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_t *rk;
    char *json = NULL;
    if ((rc = ensure_topic(c, REGISTRY_TOPIC, err)) || (rc = ensure_topic(c, g->retry, err)) ||
        (rc = ensure_topic(c, g->dlq, err)))
        goto out;
    for (size_t i = 0; i < npatterns; i++)
        if (*patterns[i] && !has_wildcard(patterns[i]) && (rc = ensure_topic(c, patterns[i], err)))
            goto out;
    /* a new group starts at the current end of what it matches (its "declared" point) */
    if ((rc = group_topics(c, g, d->patterns, d->npatterns, &l, err)))
        goto out;
    if (!(rk = group_offsets_client(c, g, err))) {
        rc = err ? err->code : FX_EBUS;
        goto out;
    }
    rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, cl, NET_TIMEOUT_MS);
    if (!e && (rc = query_offsets(c->producer, l, -1)) == 0) {
        rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(l->cnt);
        for (int i = 0; i < l->cnt; i++)
            if (cl->elems[i].offset < 0)
                rd_kafka_topic_partition_list_add(todo, l->elems[i].topic, l->elems[i].partition)
                    ->offset = l->elems[i].offset;
        if (todo->cnt && (e = rd_kafka_commit(rk, todo, 0)))
            /* the group is active elsewhere: its members read new partitions from the start */
            fx_log_warn("bus",
                        "kafka group %s: cannot set the starting offsets of %d new "
                        "partitions (%s)",
                        group, todo->cnt, rd_kafka_err2str(e));
        e = 0;
        rd_kafka_topic_partition_list_destroy(todo);
    }
    rd_kafka_topic_partition_list_destroy(cl);
    if (e)
        rc = fx_err_set(err, kerr(e), "bus %s: cannot read the offsets of group %s: %s", c->shown,
                        group, rd_kafka_err2str(e));
    else if (rc)
        rc = fx_err_set(err, rc, "bus %s: cannot read the end offsets of group %s's topics",
                        c->shown, group);
    if (rc)
        goto out;
    json = gdef_json(d);
    struct out o = {.topic = REGISTRY_TOPIC,
                    .partition = RD_KAFKA_PARTITION_UA,
                    .key = group,
                    .value = json,
                    .len = strlen(json)};
    if ((rc = produce1(c, &o, err)))
        goto out;
    pthread_mutex_lock(&c->mu);
    if (g->rk && !strv_equal(d->patterns, d->npatterns, g->patterns, g->npatterns)) {
        strv_free(g->patterns, g->npatterns);
        g->patterns = strv_dup(d->patterns, d->npatterns);
        g->npatterns = d->npatterns;
        subscribe_locked(g);
    }
    gdef_put(c, d);
    d = NULL;
    pthread_mutex_unlock(&c->mu);
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    free(json);
    gdef_free(d);
    return rc;
}

static int kafka_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n, struct fx_err *err)
{
    struct kafka_bus *h = kb(b);
    struct kctx *c = h->ctx;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *why = topic_problem(msgs[i].routing_key, TOPIC_MAX);
        if (why) {
            fx_err_value(err, msgs[i].routing_key, strlen(msgs[i].routing_key));
            return fx_err_set(err, FX_EINVAL,
                              "message %zu: routing_key \"%s\" cannot be a Kafka topic: %s", i + 1,
                              msgs[i].routing_key, why);
        }
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = ensure_topic(c, msgs[i].routing_key, err)))
            return rc;
    struct out *o = fx_calloc(n, sizeof(*o));
    size_t *ends = fx_calloc(n, sizeof(*ends));
    fx_buf_reset(&h->enc);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = fx_cloudevent_encode(&msgs[i], &h->enc);
        if (rc == FX_ETOOBIG)
            rc = fx_err_set(err, FX_ETOOBIG, "message %zu: encoded event exceeds %u bytes", i + 1,
                            FX__BUS_BODY_MAX);
        else if (rc)
            rc = fx_err_set(err, rc, "message %zu: cannot encode: %s", i + 1, fx_strerror(rc));
        ends[i] = h->enc.len;
    }
    if (rc)
        goto out;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    int64_t now = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
    pthread_mutex_lock(&c->mu);
    int64_t ts = now > c->clock_us ? now : c->clock_us + 1;
    c->clock_us = ts + (int64_t)n - 1;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        size_t start = i ? ends[i - 1] : 0;
        const char *key = msgs[i].key && *msgs[i].key ? msgs[i].key : NULL;
        o[i] = (struct out){.topic = msgs[i].routing_key,
                            .partition = RD_KAFKA_PARTITION_UA,
                            .key = key,
                            .value = h->enc.data + start,
                            .len = ends[i] - start};
        o[i].headers = rd_kafka_headers_new(1);
        header_add_i64(o[i].headers, H_TS, ts + (int64_t)i);
    }
    size_t bad = 0;
    struct fx_err perr;
    if ((rc = produce_wait(c, o, n, &bad, &perr))) {
        if (rc == FX_ETOOBIG)
            rc = fx_err_set(err, rc,
                            "message %zu: the Kafka cluster refuses a record of %zu bytes "
                            "(message.max.bytes); a Kafka batch is not atomic, other messages "
                            "of it may be published",
                            bad + 1, o[bad].len);
        else
            rc = fx_err_set(err, rc,
                            "message %zu: %s; a Kafka batch is not atomic, other messages of it "
                            "may be published",
                            bad + 1, perr.reason);
    }
out:
    free(o);
    free(ends);
    return rc;
}

/* The record receive hands out next, chosen under mu and marked busy. */
struct pick {
    char *topic;
    int32_t id;
    int64_t offset;
    uint64_t epoch;
};

struct keyslot {
    const char *key;
    const struct rec *head;
};

/*
 * Earliest deliverable record: fetched, due, and the earliest unsettled record of its key.
 * *wake_ms: wall-clock time at which something becomes deliverable or expires.
 */
static int pick_locked(struct kgroup *g, int64_t now, struct pick *out, int64_t *wake_ms)
{
    gate_check_locked(g, fx_mono_ms());
    size_t total = 0;
    for (size_t i = 0; i < g->nparts; i++)
        total += g->parts[i]->n;
    size_t cap = 16;
    while (cap < total * 2)
        cap *= 2;
    struct keyslot *slots = fx_calloc(cap, sizeof(*slots));
    for (size_t i = 0; i < g->nparts; i++) {
        struct part *p = g->parts[i];
        for (size_t j = 0; j < p->n; j++) {
            const struct rec *r = p->r[j];
            if (r->state == S_DONE || !r->key)
                continue;
            size_t k = (size_t)fx_hash64(r->key, strlen(r->key)) & (cap - 1);
            while (slots[k].key && strcmp(slots[k].key, r->key) != 0)
                k = (k + 1) & (cap - 1);
            if (!slots[k].key || r->ts_us < slots[k].head->ts_us ||
                (r->ts_us == slots[k].head->ts_us && r->offset < slots[k].head->offset)) {
                slots[k].key = r->key;
                slots[k].head = r;
            }
        }
    }
    struct rec *best = NULL;
    struct part *best_p = NULL;
    int64_t best_eff = 0;
    for (size_t i = 0; i < g->nparts; i++) {
        struct part *p = g->parts[i];
        int full = part_entries(p) >= ENTRY_MAX;
        for (size_t j = 0; j < p->n; j++) {
            struct rec *r = p->r[j];
            if ((r->state == S_INFLIGHT || r->state == S_HELD) && r->until < *wake_ms)
                *wake_ms = r->until;
            if (r->state != S_NEW || r->busy || !r->fetched ||
                (r->kind != K_MSG && r->kind != K_RETRY))
                continue;
            if (r->not_before > now) {
                if (r->not_before < *wake_ms)
                    *wake_ms = r->not_before;
                continue;
            }
            if (!g->gate || full)
                continue;
            if (r->key) {
                size_t k = (size_t)fx_hash64(r->key, strlen(r->key)) & (cap - 1);
                while (strcmp(slots[k].key, r->key) != 0)
                    k = (k + 1) & (cap - 1);
                if (slots[k].head != r)
                    continue;
            }
            int64_t eff = r->ts_us > r->not_before * 1000 ? r->ts_us : r->not_before * 1000;
            if (!best || eff < best_eff) {
                best = r;
                best_p = p;
                best_eff = eff;
            }
        }
    }
    free(slots);
    if (!best)
        return 0;
    best->busy = 1;
    out->topic = fx_strdup(best_p->topic);
    out->id = best_p->id;
    out->offset = best->offset;
    out->epoch = g->epoch;
    return 1;
}

/*
 * Lease the picked record (one commit that records the lease) and build its delivery.
 * 1 = *out set, 0 = lost it (rebalance, failed commit, unreadable body), < 0 error.
 */
static int deliver(struct kafka_bus *h, struct kgroup *g, struct pick *pk,
                   const struct fx_group_opts *o, struct fx_delivery **out)
{
    struct kctx *c = h->ctx;
    pthread_mutex_lock(&g->commit_mu);
    pthread_mutex_lock(&c->mu);
    struct part *p = g->epoch == pk->epoch ? part_find(g, pk->topic, pk->id) : NULL;
    struct rec *r = p ? rec_find(p, pk->offset) : NULL;
    if (!r || !r->busy || r->state != S_NEW) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&g->commit_mu);
        return 0;
    }
    r->n++;
    r->state = S_INFLIGHT;
    r->until = fx_now_ms() + o->lease_ms;
    r->tag = ++c->tags;
    r->handle = h->id;
    int64_t tag = r->tag;
    int n = r->n, attempt = r->base + r->n;
    int64_t ts_us = r->ts_us;
    char *body = fx_strndup(r->body, r->len);
    size_t len = r->len;
    char *key = r->key ? fx_strdup(r->key) : NULL;
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = commit_parts(g, &p, 1);
    pthread_mutex_unlock(&g->commit_mu);

    pthread_mutex_lock(&c->mu);
    uint64_t epoch = g->epoch;
    r = epoch == pk->epoch ? rec_find(p, pk->offset) : NULL;
    if (r)
        r->busy = 0;
    if (e) {
        /* the lease is not recorded: do not hand the record out (retried later) */
        if (r && r->tag == tag && r->state == S_INFLIGHT) {
            r->state = S_NEW;
            r->n--;
        }
        for (struct orphan **pp = &g->orphans; *pp; pp = &(*pp)->next) {
            if ((*pp)->tag == tag) {
                struct orphan *q = *pp;
                *pp = q->next;
                orphan_free(q);
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    struct fx_delivery *d = NULL;
    struct fx_err derr;
    if (!e) {
        d = fx_calloc(1, sizeof(*d));
        if (fx_cloudevent_decode(body, len, d, &derr) != 0) {
            /* not something a bus publisher wrote: straight to the dead letters */
            free(d);
            d = NULL;
            struct ident id = {pk->topic, pk->id, pk->offset, n};
            char *why = fx_asprintf("not a Fluxo CloudEvent: %s", derr.reason);
            fx_log_warn("bus", "kafka group %s: record %s/%d/%lld: %s", g->name, pk->topic,
                        (int)pk->id, (long long)pk->offset, why);
            dead_letter(g, &id, epoch, key, body, len, attempt, ts_us, why);
            free(why);
        }
    }
    free(body);
    free(key);
    if (!d)
        return 0;
    d->attempt = attempt;
    d->group = fx_strdup(g->name);
    d->tag = tag;
    *out = d;
    return 1;
}

static int kafka_receive(struct fx_bus *b, const char *group, int timeout_ms,
                         struct fx_delivery **out, struct fx_err *err)
{
    struct kafka_bus *h = kb(b);
    struct kctx *c = h->ctx;
    int64_t deadline = fx_mono_ms() + timeout_ms;
    struct fx_group_opts o;
    int rc;
    if ((rc = check_group_name(group, err)) || (rc = def_get(c, group, &o, NULL, NULL, err)))
        return rc;
    struct kgroup *g = group_get(c, group);
    if ((rc = group_start(c, g, err)))
        return rc;
    for (;;) {
        struct pick pk = {0};
        struct expired *x;
        size_t nx;
        int64_t now = fx_now_ms(), wake = INT64_MAX;
        pthread_mutex_lock(&c->mu);
        struct gdef *d = gdef_find(c, group);
        if (d)
            o = d->opts;
        expire_locked(g, &o, now, &x, &nx);
        uint64_t epoch = g->epoch;
        int found = pick_locked(g, now, &pk, &wake);
        if (!found && !nx) {
            int64_t left = deadline - fx_mono_ms();
            if (left <= 0) {
                pthread_mutex_unlock(&c->mu);
                return 0;
            }
            int64_t until = wake == INT64_MAX ? left : wake - now;
            if (until > left)
                until = left;
            if (until < 1)
                until = 1;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += until / 1000;
            ts.tv_nsec += (long)(until % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        expired_run(g, epoch, x, nx);
        if (!found)
            continue;
        rc = deliver(h, g, &pk, &o, out);
        free(pk.topic);
        if (rc != 0)
            return rc;
        if (fx_mono_ms() >= deadline)
            return 0;
        fx_sleep_ms(RETRY_PAUSE_MS < deadline - fx_mono_ms() ? RETRY_PAUSE_MS : 1);
    }
}

/* Settle delivery d held by handle h: ack, or nack with reason. */
static struct rec *lease_find(struct kgroup *g, int64_t tag, struct part **where)
{
    for (size_t i = 0; i < g->nparts; i++) {
        struct part *p = g->parts[i];
        for (size_t j = 0; j < p->n; j++) {
            if (p->r[j]->state == S_INFLIGHT && p->r[j]->tag == tag) {
                *where = p;
                return p->r[j];
            }
        }
    }
    return NULL;
}

static int settle(struct kafka_bus *h, struct fx_delivery *d, int nack, const char *reason)
{
    struct kctx *c = h->ctx;
    struct kgroup *g = group_find(c, d->group);
    if (!g)
        return FX_ENOTFOUND;
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    struct ident id = {0};
    int owned = 0, orphan = 0;
    int64_t ts_us = 0;
    char *stored = NULL; /* the record's body as published, for a nack */
    size_t stored_len = 0;
    pthread_mutex_lock(&c->mu);
    struct gdef *def = gdef_find(c, g->name);
    if (def)
        o = def->opts;
    uint64_t epoch = g->epoch;
    struct part *p = NULL;
    struct rec *r = lease_find(g, d->tag, &p);
    if (r && r->handle == h->id && !r->busy) {
        r->busy = 1;
        owned = 1;
        id = (struct ident){fx_strdup(p->topic), p->id, r->offset, r->n};
        ts_us = r->ts_us;
        if (nack && r->body) {
            stored = fx_strndup(r->body, r->len);
            stored_len = r->len;
        }
    } else if (!r) {
        int64_t now = fx_now_ms();
        for (struct orphan **pp = &g->orphans; *pp; pp = &(*pp)->next) {
            struct orphan *q = *pp;
            if (q->tag == d->tag && q->handle == h->id && q->until > now) {
                id = (struct ident){q->topic, q->id, q->offset, q->n};
                ts_us = q->ts_us;
                stored = q->body;
                stored_len = q->len;
                *pp = q->next;
                free(q);
                orphan = 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!owned && !orphan)
        return FX_ENOTFOUND; /* lease lost: expired, settled already, or not this handle's */

    int rc = 0;
    struct fresh fresh = {.partition = -1};
    char *body = stored;
    size_t len = stored_len;
    uint64_t at = orphan ? NOT_OWNED : epoch;
    if (nack && !body) {
        /* No copy of the record (never expected): rebuild it from the delivery. The
         * delivery belongs to the caller, who may have taken its data already. */
        struct fx_msg m = {.id = d->id,
                           .type = d->type,
                           .source = d->source,
                           .routing_key = d->routing_key,
                           .key = d->key,
                           .correlation_id = d->correlation_id,
                           .traceparent = d->traceparent,
                           .time = d->time,
                           .data = d->data,
                           .data_len = d->data_len};
        struct fx_buf enc;
        fx_buf_init(&enc, FX__BUS_BODY_MAX);
        rc = fx_cloudevent_encode(&m, &enc);
        body = fx_buf_take(&enc);
        len = body ? strlen(body) : 0;
    }
    if (nack) {
        /* the body travels again as it was published, from the backend's own copy: the
         * caller owns the delivery and may have freed or changed its data (distribution
         * does, once the chunk is decoded) */
        if (!rc && d->attempt >= o.max_attempts) {
            rc = dead_letter(g, &id, at, d->key, body, len, d->attempt, ts_us, reason);
            goto done;
        }
        if (!rc) {
            int64_t due = fx_now_ms() + fx__bus_backoff_ms(&o, d->attempt);
            char origin[TOPIC_MAX + 48];
            snprintf(origin, sizeof(origin), "%s/%d/%lld", id.topic, (int)id.id,
                     (long long)id.offset);
            struct out w = {.topic = g->retry,
                            .partition = retry_partition(g, id.id),
                            .key = d->key && *d->key ? d->key : NULL,
                            .value = body,
                            .len = len};
            w.headers = rd_kafka_headers_new(5);
            header_add_i64(w.headers, H_ATTEMPTS, d->attempt);
            header_add_i64(w.headers, H_NOT_BEFORE, due);
            header_add_i64(w.headers, H_TS, ts_us ? ts_us : fx_now_ms() * 1000);
            rd_kafka_header_add(w.headers, H_REASON, -1, reason, -1);
            rd_kafka_header_add(w.headers, H_ORIGIN, -1, origin, -1);
            struct fx_err perr;
            rc = produce1(c, &w, &perr);
            if (rc) {
                fx_log_error("bus", "kafka group %s: cannot write a retry of %s: %s", g->name,
                             origin, perr.reason);
            } else {
                fresh = (struct fresh){.partition = w.got_partition,
                                       .offset = w.got_offset,
                                       .base = d->attempt,
                                       .ts_us = ts_us ? ts_us : fx_now_ms() * 1000,
                                       .not_before = due,
                                       .key = d->key && *d->key ? d->key : NULL,
                                       .body = body,
                                       .len = len};
            }
        }
    }
    if (!rc)
        rc = settle_ident(g, &id, at, fresh.partition >= 0 ? &fresh : NULL);
done:
    if (rc && owned) { /* keep the lease: the caller may try again */
        pthread_mutex_lock(&c->mu);
        p = g->epoch == epoch ? part_find(g, id.topic, id.id) : NULL;
        r = p ? rec_find(p, id.offset) : NULL;
        if (r)
            r->busy = 0;
        pthread_mutex_unlock(&c->mu);
    }
    free(id.topic);
    free(body);
    return rc;
}

static int kafka_ack(struct fx_bus *b, struct fx_delivery *d)
{
    return settle(kb(b), d, 0, NULL);
}

static int kafka_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason)
{
    return settle(kb(b), d, 1, reason);
}

static int64_t kafka_depth(struct fx_bus *b, const char *group)
{
    struct kafka_bus *h = kb(b);
    struct kctx *c = h->ctx;
    char **pats = NULL;
    size_t npats = 0;
    if (check_group_name(group, NULL) || def_get(c, group, NULL, &pats, &npats, NULL))
        return FX_ENOTFOUND;
    struct kgroup *g = group_get(c, group);
    rd_kafka_topic_partition_list_t *l = NULL;
    int64_t depth = FX_EBUS;
    rd_kafka_t *rk = group_offsets_client(c, g, NULL);
    if (!rk || group_topics(c, g, pats, npats, &l, NULL))
        goto out;
    rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_topic_partition_list_t *lo = rd_kafka_topic_partition_list_copy(l);
    if (rd_kafka_committed(rk, cl, NET_TIMEOUT_MS) == 0 && query_offsets(c->producer, l, -1) == 0 &&
        query_offsets(c->producer, lo, -2) == 0) {
        depth = 0;
        for (int i = 0; i < l->cnt; i++) {
            int64_t end = l->elems[i].offset;
            int64_t from = cl->elems[i].offset >= 0 ? cl->elems[i].offset : lo->elems[i].offset;
            if (from < lo->elems[i].offset)
                from = lo->elems[i].offset;
            if (end <= from)
                continue;
            depth += end - from;
            struct entry ents[ENTRY_MAX * 2];
            size_t ne = cl->elems[i].metadata
                            ? meta_parse(cl->elems[i].metadata, cl->elems[i].metadata_size, ents,
                                         sizeof(ents) / sizeof(ents[0]))
                            : 0;
            for (size_t k = 0; k < ne; k++)
                if (ents[k].kind == 'D' && ents[k].offset >= from && ents[k].offset < end)
                    depth--;
        }
    }
    rd_kafka_topic_partition_list_destroy(cl);
    rd_kafka_topic_partition_list_destroy(lo);
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    strv_free(pats, npats);
    return depth;
}

/* Dead letters: "<group>.dlq" from its start, partition by partition (we write partition 0). */
static int kafka_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud)
{
    struct kafka_bus *h = kb(b);
    struct kctx *c = h->ctx;
    if (check_group_name(group, NULL) || def_get(c, group, NULL, NULL, NULL, NULL))
        return FX_ENOTFOUND;
    char *dlq = fx_asprintf("%s.dlq", group);
    int32_t nparts = 0;
    int rc = topic_partitions(c->producer, dlq, &nparts);
    rd_kafka_t *rk = NULL;
    if (rc || nparts == 0)
        goto out;
    if (!(rk = client_new(c, C_READER, READER_GROUP, NULL, NULL))) {
        rc = FX_EBUS;
        goto out;
    }
    int stop = 0;
    for (int32_t p = 0; p < nparts && !rc && !stop; p++) {
        rd_kafka_topic_partition_list_t *lo = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(lo, dlq, p);
        rd_kafka_topic_partition_list_t *hi = rd_kafka_topic_partition_list_copy(lo);
        if ((rc = query_offsets(c->producer, lo, -2)) ||
            (rc = query_offsets(c->producer, hi, -1)) ||
            lo->elems[0].offset >= hi->elems[0].offset) {
            rd_kafka_topic_partition_list_destroy(lo);
            rd_kafka_topic_partition_list_destroy(hi);
            continue;
        }
        int64_t end = hi->elems[0].offset, next = lo->elems[0].offset;
        rd_kafka_assign(rk, lo);
        int64_t deadline = fx_mono_ms() + NET_TIMEOUT_MS;
        while (next < end && !stop) {
            if (fx_mono_ms() > deadline) {
                rc = FX_ETIMEDOUT;
                break;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (!m)
                continue;
            if (m->err || m->partition != p) {
                rd_kafka_message_destroy(m);
                continue;
            }
            deadline = fx_mono_ms() + NET_TIMEOUT_MS;
            next = m->offset + 1;
            rd_kafka_headers_t *hd = NULL;
            rd_kafka_message_headers(m, &hd);
            struct fx_delivery *d = fx_calloc(1, sizeof(*d));
            if (m->payload && fx_cloudevent_decode(m->payload, m->len, d, NULL) == 0) {
                size_t rl = 0;
                const char *rs = header(hd, H_REASON, &rl);
                char *reason = rs ? fx_strndup(rs, rl) : fx_strdup("");
                d->attempt = (int)header_i64(hd, H_ATTEMPTS, 0);
                d->group = fx_strdup(group);
                d->tag = m->offset;
                rd_kafka_message_destroy(m);
                m = NULL;
                stop = cb(ud, d, reason) != 0; /* no lock held */
                free(reason);
                fx_delivery_free(d);
            } else {
                free(d); /* unreadable body: nothing to show */
            }
            if (m)
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(rk, NULL);
        rd_kafka_topic_partition_list_destroy(lo);
        rd_kafka_topic_partition_list_destroy(hi);
    }
out:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free(dlq);
    return rc;
}

const struct fx__bus_ops fx__bus_kafka_ops = {
    .name = "kafka",
    .scheme = "kafka",
    .open = kafka_open,
    .close = kafka_close,
    .declare = kafka_declare,
    .publish = kafka_publish,
    .receive = kafka_receive,
    .ack = kafka_ack,
    .nack = kafka_nack,
    .depth = kafka_depth,
    .dead_letters = kafka_dead_letters,
};
