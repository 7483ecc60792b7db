/* SPDX-License-Identifier: MIT */
/*
 * RabbitMQ bus backend: "amqp://user:pass@host:port/vhost?exchange=fluxo
 * &queue_type=quorum&heartbeat=30" on rabbitmq-c (librabbitmq, AMQP 0-9-1).
 *
 * Design notes
 *
 * Topology. Messages are published to one durable topic exchange (default
 * "fluxo") with their routing key. A group G is a durable queue named G
 * (quorum by default, classic with queue_type=classic) bound to the
 * exchange with the group's patterns, plus three helper queues: G.dead (dead
 * letters, same type as G), G.inflight (classic, always empty, see depth)
 * and G.options (classic: the group's options and patterns as one JSON
 * record, so that handles which did not declare the group use the same
 * lease, backoff and max_attempts; cached for OPTS_TTL_MS). Group names
 * ending in those suffixes are refused.
 *
 * One connection per process and URL. Handles on the same URL share a
 * client (connection, mutex, the messages the process holds): RabbitMQ has
 * no leases, no delayed retry and no per-key ordering, so this backend
 * provides them inside the process that holds the messages, and the broker
 * provides what crosses processes (routing, competing consumers, requeue when
 * a connection dies). So per-key order holds among the handles of one
 * process only, and an expired lease returns the message to the handles of
 * its process; other processes get it when the holder's connection closes.
 * Channels: 1 publishes in confirm mode, 2 runs
 * management RPCs (declares, passive declares that may 404 and close it), 3
 * browses dead letters, and each group gets its own channel (10, 11, ...)
 * holding its unacked messages, so an error on one never requeues another's.
 *
 * Receive pulls with basic.get, one message at a time, and only when no
 * message held by the process can be delivered; when the queue is empty a
 * one-shot consumer with prefetch 1 waits for the next message (no polling
 * of the broker: quorum-queue gets are Raft commands), and is cancelled after
 * its delivery or when no thread waits any more. Nothing is prefetched, so
 * other processes compete for every message that is not being delivered.
 *
 * Held messages. A message taken from G stays unacked on the group channel
 * until it is acked or dead-lettered; the process keeps it in a list in
 * fetch order with its state: ready (deliverable from `due`), leased (to one
 * handle, until `due`) or doomed (to be dead-lettered). A lease that expires
 * makes it ready again for the handles of this process (attempt + 1), or
 * dead-letters it at max_attempts ("lease expired N times"). A nack makes it
 * ready after the backoff (a delayed redelivery inside the process: the
 * message keeps its place, and therefore blocks its key, which a republish
 * to a retry queue could not guarantee). Order per key: only the first held
 * message of a key may be delivered; later ones wait behind it. Among the
 * deliverable ones, the one available longest goes first: a fresh message
 * counts from its publish time (header x-fluxo-published), and before handing
 * out a retry, receive fetches one more message from the queue, so that a
 * retry waits behind messages published before it came due. A process
 * holds at most HOLD_MAX messages (HOLD_BYTES) per group: beyond that it
 * stops fetching. When the connection dies (or the process), the broker
 * requeues everything the process held.
 *
 * Attempts. The header x-fluxo-attempts counts deliveries made before the
 * message was last published (dead letters carry it); the broker counts
 * returns (quorum: x-delivery-count; classic: the redelivered flag, at most
 * 1); the process counts its own deliveries. A message that arrives already
 * delivered max_attempts times (consumers that crash on it) is
 * dead-lettered instead of delivered.
 *
 * Depth: queue.declare(passive) gives only ready messages, so every held
 * message also registers a consumer on the empty queue G.inflight, and depth
 * is ready(G) + consumers(G.inflight). The consumers die with the connection
 * like the unacked messages themselves, so crashes never skew the count.
 *
 * Dead letters are republished (persistent, confirmed) to G.dead with the
 * headers x-fluxo-reason, x-fluxo-attempts, x-fluxo-group and
 * x-fluxo-dead-at, then the original is acked. Listing gets every dead
 * letter without ack on channel 3 and closes the channel (RabbitMQ
 * requeues them): no management plugin needed; ordered by x-fluxo-dead-at.
 *
 * Publish: persistent messages, publisher confirms, at most PUB_WINDOW
 * unconfirmed at a time; returns once every message of the call is
 * confirmed. If the connection breaks, it reconnects with backoff and
 * republishes the unconfirmed messages (duplicates possible, ids are
 * stable) until PUBLISH_TIMEOUT_MS.
 *
 * Threads. Everything touching the connection runs under the client mutex.
 * A thread that must wait for the broker polls the socket without the mutex
 * ("the poller"; others wait on the condition variable), then reads the
 * frames under the mutex; threads that change state under the mutex kick the
 * poller through a pipe. Frames that arrive during an RPC are queued by
 * rabbitmq-c and dispatched later. Heartbeats (30 s) are serviced whenever a
 * thread reads or writes; a process that makes no bus call for two heartbeat
 * intervals loses its connection, and with it its leases. Open handles after
 * fork(), never before.
 */
#include "bus/bus_int.h"
#include "fluxo/log.h"
#include "fluxo/util.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum {
    CH_PUB = 1,
    CH_RPC = 2,
    CH_DEAD = 3,
    CH_GROUP_FIRST = 10,
};

#define FRAME_MAX 131072
#define HEARTBEAT_S 30
#define CONNECT_TIMEOUT_MS 5000
#define RPC_TIMEOUT_MS 30000
#define PUBLISH_TIMEOUT_MS 30000
#define DECLARE_TIMEOUT_MS 10000
#define PUB_WINDOW 256
#define HOLD_MAX 1024
#define HOLD_BYTES (64u << 20)
#define OPTS_TTL_MS 5000
#define OPTS_READ_MAX 16
#define DEAD_MAX 10000
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define POLL_SLICE_MS 5000
#define SHORTSTR_MAX 255

#define CONTENT_TYPE "application/cloudevents+json; charset=utf-8"
#define H_ATTEMPTS "x-fluxo-attempts"
#define H_REASON "x-fluxo-reason"
#define H_GROUP "x-fluxo-group"
#define H_DEAD_AT "x-fluxo-dead-at"
#define H_PUBLISHED "x-fluxo-published"

static const char *const aux_suffix[] = {".dead", ".inflight", ".options"};

/* ---- state ------------------------------------------------------------ */

/* Connection settings parsed from the URL. */
struct conf {
    char *host, *user, *pass, *vhost, *exchange;
    int port;
    int quorum;    /* queue_type=quorum (default) or classic */
    int heartbeat; /* seconds, 0 = off */
    char *display; /* amqp://user@host:port/vhost: for messages, never the password */
};

/* A message this process holds unacked on its group's channel. */
struct held {
    struct held *next, *prev;
    uint64_t dtag;          /* delivery tag on the group channel */
    struct fx_delivery *ev; /* decoded message fields (template for deliveries) */
    char *body;             /* CloudEvent JSON as received (republished as a dead letter) */
    size_t len;
    int base;         /* deliveries before this process took it */
    int local;        /* deliveries made by this process */
    int expiries;     /* leases that ran out */
    char *last_error; /* last nack reason */
    int leased;       /* 1: leased to `holder` until `due` */
    uint64_t holder;  /* handle id */
    int64_t lease_id; /* fx_delivery.tag of the current lease */
    int64_t due;      /* mono ms: ready from / lease end */
    char marker[48];  /* consumer tag on G.inflight, "" until registered */
    char *doom;       /* dead-letter with this reason at the next safe point */
    int busy;         /* being dead-lettered by some thread (mutex released) */
};

enum wait_state { W_NONE, W_ACTIVE, W_SPENT };

struct group {
    struct group *next;
    char *name, *dead_q, *mark_q, *opt_q;
    struct fx_group_opts opts;
    char **patterns; /* from the options record */
    size_t npatterns;
    int have_opts;
    int64_t opts_at;    /* mono ms of the last load */
    uint64_t ready_gen; /* connection generation whose queues were checked */
    amqp_channel_t ch;
    int ch_open;
    struct held *head, *tail;
    size_t nheld, held_bytes;
    enum wait_state wait;
    char wait_tag[48];
    int waiters; /* threads of this process in receive on this group */
};

struct client {
    struct client *next;
    char *url; /* registry key (contains the password: never printed) */
    int refs;  /* handles; under reg_mu */
    struct conf cf;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int wake[2]; /* kicks the poller */
    amqp_connection_state_t conn;
    int up;
    uint64_t gen; /* bumped at every connect and loss */
    int polling;
    int64_t retry_at; /* next connect attempt (mono ms) */
    int failures;
    int fatal; /* FX_E* of a last failure that retrying cannot heal (login refused...), or 0 */
    char why[600];
    int ch_rpc, ch_dead; /* open flags */
    /* publisher confirms on CH_PUB: one publisher at a time (pub_busy) */
    int ch_pub;
    int pub_busy;
    uint64_t pub_seq;   /* tag of the last message published on CH_PUB */
    uint64_t win_first; /* tag of win[0] */
    size_t win_n;
    unsigned char win[PUB_WINDOW]; /* 0 pending, 1 acked, 2 nacked, 3 lost */
    char pub_err[600];
    struct group *groups;
    amqp_channel_t next_ch;
    int64_t next_lease;
    uint64_t next_marker;
};

struct amqp_bus {
    struct fx_bus base;
    struct client *c;
    uint64_t id;
    struct fx_buf enc;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct client *clients;
static uint64_t next_handle_id;

static struct amqp_bus *ab(struct fx_bus *b)
{
    return (struct amqp_bus *)b;
}

static amqp_bytes_t bytes_of(const char *s)
{
    return amqp_cstring_bytes(s);
}

static char *bytes_dup(amqp_bytes_t b)
{
    return fx_strndup(b.bytes ? (const char *)b.bytes : "", b.len);
}

/* ---- URL -------------------------------------------------------------- */

static void conf_free(struct conf *cf)
{
    free(cf->host);
    free(cf->user);
    free(cf->pass);
    free(cf->vhost);
    free(cf->exchange);
    free(cf->display);
    memset(cf, 0, sizeof(*cf));
}

/* url with the password replaced by "***" (for messages about a URL that did not parse). */
static char *redact(const char *url)
{
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return fx_strdup(url);
    return fx_asprintf("%.*s:***%s", (int)(colon - url), url, at);
}

static int query_param(struct conf *cf, const char *k, size_t kn, const char *v, size_t vn,
                       const char *shown, struct fx_err *err)
{
    if (kn == 8 && memcmp(k, "exchange", 8) == 0) {
        if (vn == 0 || vn > SHORTSTR_MAX)
            return fx_err_set(err, FX_EINVAL, "bus URL %s: exchange must be 1 to 255 bytes", shown);
        for (size_t i = 0; i < vn; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == '%')
                return fx_err_set(err, FX_EINVAL,
                                  "bus URL %s: exchange contains a control character or '%%'",
                                  shown);
        free(cf->exchange);
        cf->exchange = fx_strndup(v, vn);
        return 0;
    }
    if (kn == 10 && memcmp(k, "queue_type", 10) == 0) {
        if (vn == 6 && memcmp(v, "quorum", 6) == 0)
            cf->quorum = 1;
        else if (vn == 7 && memcmp(v, "classic", 7) == 0)
            cf->quorum = 0;
        else
            return fx_err_set(err, FX_EINVAL,
                              "bus URL %s: queue_type must be quorum or classic (got \"%.*s\")",
                              shown, (int)vn, v);
        return 0;
    }
    if (kn == 9 && memcmp(k, "heartbeat", 9) == 0) {
        char tmp[16];
        char *end;
        if (vn == 0 || vn >= sizeof(tmp))
            return fx_err_set(err, FX_EINVAL, "bus URL %s: heartbeat must be 0 to 3600 seconds",
                              shown);
        memcpy(tmp, v, vn);
        tmp[vn] = '\0';
        long s = strtol(tmp, &end, 10);
        if (*end || s < 0 || s > 3600)
            return fx_err_set(err, FX_EINVAL,
                              "bus URL %s: heartbeat must be 0 to 3600 seconds (got \"%s\")", shown,
                              tmp);
        cf->heartbeat = (int)s;
        return 0;
    }
    return fx_err_set(err, FX_EINVAL,
                      "bus URL %s: unknown parameter \"%.*s\" (known: exchange, queue_type, "
                      "heartbeat)",
                      shown, (int)kn, k);
}

static int conf_parse(const char *url, struct conf *cf, struct fx_err *err)
{
    memset(cf, 0, sizeof(*cf));
    cf->quorum = 1;
    cf->heartbeat = HEARTBEAT_S;
    cf->exchange = fx_strdup("fluxo");
    char *shown = redact(url);
    const char *q = strchr(url, '?');
    char *base = fx_strndup(url, q ? (size_t)(q - url) : strlen(url));
    struct amqp_connection_info info;
    amqp_default_connection_info(&info);
    int rc = 0;
    if (amqp_parse_url(base, &info) != AMQP_STATUS_OK || info.ssl || !*info.host) {
        rc = fx_err_set(err, FX_EINVAL,
                        "bus URL %s is not a valid amqp:// URL"
                        " (amqp://user:password@host:port/vhost?exchange=NAME)",
                        shown);
        goto out;
    }
    cf->host = fx_strdup(info.host);
    cf->user = fx_strdup(info.user);
    cf->pass = fx_strdup(info.password);
    cf->vhost = fx_strdup(info.vhost);
    cf->port = info.port;
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        if (n && (rc = query_param(cf, p, eq ? (size_t)(eq - p) : n, eq ? eq + 1 : p + n,
                                   eq ? n - (size_t)(eq - p) - 1 : 0, shown, err)))
            goto out;
        p += n + (p[n] == '&');
    }
    cf->display = fx_asprintf("amqp://%s@%s:%d/%s", cf->user, cf->host, cf->port, cf->vhost);
out:
    if (rc)
        conf_free(cf);
    free(base);
    free(shown);
    return rc;
}

/* ---- errors ----------------------------------------------------------- */

static int code_of_reply(int reply_code)
{
    switch (reply_code) {
    case AMQP_NOT_FOUND:
        return FX_ENOTFOUND;
    case AMQP_ACCESS_REFUSED:
    case AMQP_NOT_ALLOWED:
        return FX_EAUTH;
    case AMQP_RESOURCE_LOCKED:
        return FX_EBUSY;
    default:
        return FX_EBUS;
    }
}

static void held_free(struct held *h)
{
    fx_delivery_free(h->ev);
    free(h->body);
    free(h->last_error);
    free(h->doom);
    free(h);
}

static void held_unlink(struct group *g, struct held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        g->head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        g->tail = h->prev;
    g->nheld--;
    g->held_bytes -= h->len;
}

/* The broker requeued everything this group held (channel or connection gone). */
static void group_drop_held(struct group *g)
{
    while (g->head) {
        struct held *h = g->head;
        held_unlink(g, h);
        held_free(h);
    }
    g->ch_open = 0;
    g->wait = W_NONE;
    g->wait_tag[0] = '\0';
    g->ready_gen = 0;
}

static void notify(struct client *c)
{
    pthread_cond_broadcast(&c->cond);
    if (c->polling) {
        ssize_t w = write(c->wake[1], "k", 1);
        (void)w; /* a full pipe already wakes the poller */
    }
}

static void conn_lost(struct client *c, const char *why)
{
    if (!c->up)
        return;
    fx_log_warn("bus", "bus %s: connection lost: %s", c->cf.display, why);
    snprintf(c->why, sizeof(c->why), "%s", why);
    amqp_destroy_connection(c->conn);
    c->conn = NULL;
    c->up = 0;
    c->gen++;
    c->ch_pub = c->ch_rpc = c->ch_dead = 0;
    for (size_t i = 0; i < c->win_n; i++)
        if (c->win[i] == 0)
            c->win[i] = 3;
    for (struct group *g = c->groups; g; g = g->next)
        group_drop_held(g);
    c->retry_at = 0; /* the first reconnect is immediate */
    c->failures = 0;
    notify(c);
}

static struct group *group_by_channel(struct client *c, amqp_channel_t ch)
{
    for (struct group *g = c->groups; g; g = g->next)
        if (g->ch == ch)
            return g;
    return NULL;
}

/* The broker closed channel ch (close-ok already sent). */
static void channel_closed(struct client *c, amqp_channel_t ch, const char *why)
{
    if (ch == CH_PUB) {
        c->ch_pub = 0;
        snprintf(c->pub_err, sizeof(c->pub_err), "%s", why);
        for (size_t i = 0; i < c->win_n; i++)
            if (c->win[i] == 0)
                c->win[i] = 2;
    } else if (ch == CH_RPC) {
        c->ch_rpc = 0;
    } else if (ch == CH_DEAD) {
        c->ch_dead = 0;
    } else {
        struct group *g = group_by_channel(c, ch);
        if (g) {
            if (g->head)
                fx_log_warn("bus",
                            "bus %s: group %s: channel closed by the broker (%s); %zu held"
                            " messages go back to the queue",
                            c->cf.display, g->name, why, g->nheld);
            group_drop_held(g);
        }
    }
    notify(c);
}

/* Answer a channel.close or connection.close from the broker; fills why. */
static void answer_close(struct client *c, amqp_channel_t ch, const amqp_method_t *m, char *why,
                         size_t cap, int *code)
{
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *cc = m->decoded;
        *code = cc->reply_code;
        snprintf(why, cap, "%.*s", (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(c->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        const amqp_connection_close_t *cc = m->decoded;
        *code = cc->reply_code;
        snprintf(why, cap, "%.*s", (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(c->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
}

/* Check an RPC reply on channel ch: 0, or the error (reported in err, the
 * channel or connection marked closed). */
static int reply_check(struct client *c, amqp_channel_t ch, amqp_rpc_reply_t r, const char *what,
                       struct fx_err *err)
{
    char why[256];
    int code = 0;
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            answer_close(c, ch, &r.reply, why, sizeof(why), &code);
            channel_closed(c, ch, why);
            return fx_err_set(err, code_of_reply(code), "bus %s: %s: %s", c->cf.display, what, why);
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            answer_close(c, 0, &r.reply, why, sizeof(why), &code);
            conn_lost(c, why);
            return fx_err_set(err, code_of_reply(code),
                              "bus %s: %s: broker closed the connection:"
                              " %s",
                              c->cf.display, what, why);
        }
        conn_lost(c, "unexpected reply from the broker");
        return fx_err_set(err, FX_EBUS, "bus %s: %s: unexpected reply 0x%08x from the broker",
                          c->cf.display, what, (unsigned)r.reply.id);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(why, sizeof(why), "%s", amqp_error_string2(r.library_error));
        conn_lost(c, why);
        return fx_err_set(err, FX_EBUS, "bus %s: %s: connection lost: %s", c->cf.display, what,
                          why);
    default:
        conn_lost(c, "no reply");
        return fx_err_set(err, FX_EBUS, "bus %s: %s: no reply from the broker", c->cf.display,
                          what);
    }
}

static int rpc_check(struct client *c, amqp_channel_t ch, const char *what, struct fx_err *err)
{
    return reply_check(c, ch, amqp_get_rpc_reply(c->conn), what, err);
}

/* A failed send (basic.publish, basic.ack...): the connection is unusable. */
static int send_check(struct client *c, int status, const char *what, struct fx_err *err)
{
    if (status == AMQP_STATUS_OK)
        return 0;
    char why[160];
    snprintf(why, sizeof(why), "%s", amqp_error_string2(status));
    conn_lost(c, why);
    return fx_err_set(err, FX_EBUS, "bus %s: %s: connection lost: %s", c->cf.display, what, why);
}

/* ---- connection ------------------------------------------------------- */

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static int chan_open(struct client *c, amqp_channel_t ch, struct fx_err *err)
{
    if (!c->up)
        return fx_err_set(err, FX_EBUS, "bus %s: not connected: %s", c->cf.display, c->why);
    amqp_channel_open(c->conn, ch);
    return rpc_check(c, ch, "open channel", err);
}

static int pub_channel(struct client *c, struct fx_err *err)
{
    if (c->ch_pub)
        return 0;
    int rc = chan_open(c, CH_PUB, err);
    if (rc)
        return rc;
    amqp_confirm_select(c->conn, CH_PUB);
    if ((rc = rpc_check(c, CH_PUB, "enable publisher confirms", err)))
        return rc;
    c->ch_pub = 1;
    c->pub_seq = 0;
    c->win_n = 0;
    c->pub_err[0] = '\0';
    return 0;
}

static int rpc_channel(struct client *c, struct fx_err *err)
{
    if (c->ch_rpc)
        return 0;
    int rc = chan_open(c, CH_RPC, err);
    if (!rc)
        c->ch_rpc = 1;
    return rc;
}

/* One connection attempt: 0, or the reason in c->why (c->fatal when retrying cannot help). */
static int conn_try(struct client *c)
{
    struct fx_err err;
    fx_err_clear(&err);
    c->fatal = 0;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    if (!sock) {
        if (conn)
            amqp_destroy_connection(conn);
        snprintf(c->why, sizeof(c->why), "cannot create a socket");
        return FX_EBUS;
    }
    struct timeval open_tv = tv_ms(CONNECT_TIMEOUT_MS), rpc_tv = tv_ms(RPC_TIMEOUT_MS);
    int st = amqp_socket_open_noblock(sock, c->cf.host, c->cf.port, &open_tv);
    if (st != AMQP_STATUS_OK) {
        /* rabbitmq-c keeps the OS error to itself: a refused connection is a "socket error" */
        snprintf(c->why, sizeof(c->why), "cannot connect to %s:%d: %s%s", c->cf.host, c->cf.port,
                 amqp_error_string2(st),
                 st == AMQP_STATUS_SOCKET_ERROR ? " (is the broker running and reachable?)" : "");
        amqp_destroy_connection(conn);
        return FX_EBUS;
    }
    amqp_set_handshake_timeout(conn, &rpc_tv);
    amqp_set_rpc_timeout(conn, &rpc_tv);
    char name[64];
    snprintf(name, sizeof(name), "fluxo %ld", (long)getpid());
    amqp_table_entry_t props[1] = {
        {.key = amqp_cstring_bytes("connection_name"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(name)}}};
    amqp_table_t ptab = {1, props};
    amqp_rpc_reply_t r =
        amqp_login_with_properties(conn, c->cf.vhost, 0, FRAME_MAX, c->cf.heartbeat, &ptab,
                                   AMQP_SASL_METHOD_PLAIN, c->cf.user, c->cf.pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *cc = r.reply.decoded;
            snprintf(c->why, sizeof(c->why), "login as %s to vhost %s refused: %.*s", c->cf.user,
                     c->cf.vhost, (int)cc->reply_text.len, (const char *)cc->reply_text.bytes);
            if (cc->reply_code == AMQP_ACCESS_REFUSED || cc->reply_code == AMQP_NOT_ALLOWED)
                c->fatal = FX_EAUTH;
        } else {
            snprintf(c->why, sizeof(c->why), "login as %s to vhost %s failed: %s", c->cf.user,
                     c->cf.vhost,
                     r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                         ? amqp_error_string2(r.library_error)
                         : "unexpected reply");
        }
        amqp_destroy_connection(conn);
        return c->fatal ? c->fatal : FX_EBUS;
    }
    c->conn = conn;
    c->up = 1;
    c->gen++;
    int rc = rpc_channel(c, &err);
    if (!rc)
        rc = pub_channel(c, &err);
    if (!rc) {
        /* publishing before any group exists must not fail: declare the exchange up front */
        amqp_exchange_declare(c->conn, CH_RPC, bytes_of(c->cf.exchange), bytes_of("topic"), 0, 1, 0,
                              0, amqp_empty_table);
        rc = rpc_check(c, CH_RPC, "declare the exchange", &err);
        if (rc && c->up)
            c->fatal = rc; /* the exchange exists with another type, or no permission */
    }
    if (rc) {
        /* err.reason starts with "bus DISPLAY: ", which conn_up adds again */
        size_t skip = strlen(c->cf.display) + 6;
        const char *why = strncmp(err.reason, "bus ", 4) == 0 && strlen(err.reason) > skip
                              ? err.reason + skip
                              : err.reason;
        snprintf(c->why, sizeof(c->why), "%s", why);
        if (c->up) {
            amqp_destroy_connection(c->conn);
            c->conn = NULL;
            c->up = 0;
            c->gen++;
        }
        return rc;
    }
    return 0;
}

/* Wait on the condition variable until `until` (mono ms), mutex released meanwhile. */
static void cwait(struct client *c, int64_t until)
{
    int64_t left = until - fx_mono_ms();
    if (left <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cond, &c->mu, &ts);
}

/*
 * Make sure the connection is up, connecting (again) if needed: at once the
 * first time, then with a backoff doubling from RETRY_MIN_MS to RETRY_MAX_MS,
 * retrying until deadline (mono ms; a deadline in the past allows one try).
 */
static int conn_up(struct client *c, int64_t deadline, struct fx_err *err)
{
    for (;;) {
        if (c->up)
            return 0;
        int64_t now = fx_mono_ms();
        if (now < c->retry_at) {
            if (c->fatal || c->retry_at > deadline)
                return fx_err_set(err, c->fatal ? c->fatal : FX_EBUS, "bus %s: %s", c->cf.display,
                                  c->why);
            cwait(c, c->retry_at);
            continue;
        }
        int rc = conn_try(c);
        if (rc == 0) {
            if (c->failures)
                fx_log_info("bus", "bus %s: connected again after %d failed attempts",
                            c->cf.display, c->failures);
            c->failures = 0;
            c->retry_at = 0;
            notify(c);
            return 0;
        }
        c->failures++;
        int shift = c->failures < 7 ? c->failures - 1 : 6;
        int64_t pause = (int64_t)RETRY_MIN_MS << shift;
        c->retry_at = fx_mono_ms() + (pause < RETRY_MAX_MS ? pause : RETRY_MAX_MS);
        if (c->failures == 1 || c->failures % 10 == 0)
            fx_log_warn("bus", "bus %s: %s (attempt %d)", c->cf.display, c->why, c->failures);
        if (c->fatal || c->retry_at > deadline)
            return fx_err_set(err, rc, "bus %s: %s", c->cf.display, c->why);
    }
}

/* ---- frames ----------------------------------------------------------- */

static int64_t table_int(const amqp_table_t *t, const char *key, int64_t dflt)
{
    size_t kn = strlen(key);
    for (int i = 0; t && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (e->key.len != kn || memcmp(e->key.bytes, key, kn) != 0)
            continue;
        const amqp_field_value_t *v = &e->value;
        switch (v->kind) {
        case AMQP_FIELD_KIND_I8:
            return v->value.i8;
        case AMQP_FIELD_KIND_U8:
            return v->value.u8;
        case AMQP_FIELD_KIND_I16:
            return v->value.i16;
        case AMQP_FIELD_KIND_U16:
            return v->value.u16;
        case AMQP_FIELD_KIND_I32:
            return v->value.i32;
        case AMQP_FIELD_KIND_U32:
            return v->value.u32;
        case AMQP_FIELD_KIND_I64:
            return v->value.i64;
        case AMQP_FIELD_KIND_U64:
            return v->value.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->value.u64;
        default:
            return dflt;
        }
    }
    return dflt;
}

static char *table_str(const amqp_table_t *t, const char *key)
{
    size_t kn = strlen(key);
    for (int i = 0; t && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (e->key.len == kn && memcmp(e->key.bytes, key, kn) == 0 &&
            (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES))
            return bytes_dup(e->value.value.bytes);
    }
    return NULL;
}

/*
 * Take a message the broker handed us (basic.get-ok or basic.deliver) into
 * g's held list. Decoding problems and exhausted attempts doom it (dead
 * letter at the next safe point) rather than fail the caller.
 */
static void held_add(struct client *c, struct group *g, uint64_t dtag, int redelivered,
                     amqp_message_t *msg)
{
    struct held *h = fx_calloc(1, sizeof(*h));
    h->dtag = dtag;
    h->len = msg->body.len;
    h->body = fx_malloc(h->len + 1);
    if (h->len)
        memcpy(h->body, msg->body.bytes, h->len);
    h->body[h->len] = '\0';
    const amqp_table_t *hdr =
        msg->properties._flags & AMQP_BASIC_HEADERS_FLAG ? &msg->properties.headers : NULL;
    int64_t before = table_int(hdr, H_ATTEMPTS, 0);
    int64_t returns = table_int(hdr, "x-delivery-count", -1);
    if (returns < 0)
        returns = redelivered ? 1 : 0;
    int64_t base = before + returns;
    h->base = base > 1000000 ? 1000000 : (int)(base < 0 ? 0 : base);
    /* a fresh message is available since it was published: a retry due later waits behind it */
    int64_t now = fx_mono_ms(), age = fx_now_ms() - table_int(hdr, H_PUBLISHED, fx_now_ms());
    h->due = age > 0 ? now - age : now;
    h->ev = fx_calloc(1, sizeof(*h->ev));
    struct fx_err err;
    fx_err_clear(&err);
    if (h->len > FX__BUS_BODY_MAX) {
        h->doom = fx_asprintf("message of %zu bytes exceeds the bus limit of %u bytes", h->len,
                              FX__BUS_BODY_MAX);
    } else if (fx_cloudevent_decode(h->body, h->len, h->ev, &err) != 0) {
        h->doom = fx_asprintf("not a Fluxo CloudEvent: %s", err.reason);
    } else if (g->have_opts && h->base >= g->opts.max_attempts) {
        h->doom = fx_asprintf("delivered %d times without being settled (consumers crashed or"
                              " lost their connection)",
                              h->base);
    }
    h->prev = g->tail;
    if (g->tail)
        g->tail->next = h;
    else
        g->head = h;
    g->tail = h;
    g->nheld++;
    g->held_bytes += h->len;
    notify(c);
}

static void on_deliver(struct client *c, amqp_channel_t ch, const amqp_basic_deliver_t *d)
{
    uint64_t dtag = d->delivery_tag;
    int redelivered = d->redelivered;
    char tag[48];
    snprintf(tag, sizeof(tag), "%.*s", (int)d->consumer_tag.len,
             (const char *)d->consumer_tag.bytes);
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(c->conn, ch, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_check(c, ch, r, "read a delivery", NULL);
        return;
    }
    struct group *g = group_by_channel(c, ch);
    if (g && strncmp(tag, "fx-w-", 5) == 0) {
        /* our waiting consumer; also one cancelled while this delivery was on its way: the
         * message is ours either way (prefetch 1), keep it rather than requeue it */
        if (g->wait == W_ACTIVE && strcmp(tag, g->wait_tag) == 0)
            g->wait = W_SPENT;
        held_add(c, g, dtag, redelivered, &msg);
    } else {
        /* a marker consumer got a message (someone published to G.inflight, whose
         * x-max-length 0 should drop it): not ours, give it back */
        send_check(c, amqp_basic_reject(c->conn, ch, dtag, 1), "return a stray delivery", NULL);
    }
    amqp_destroy_message(&msg);
}

static void on_confirm(struct client *c, uint64_t tag, int multiple, unsigned char state)
{
    for (size_t i = 0; i < c->win_n; i++) {
        uint64_t t = c->win_first + i;
        if ((t == tag || (multiple && t < tag)) && c->win[i] == 0)
            c->win[i] = state;
    }
}

static void dispatch(struct client *c, amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return; /* content of a frame we skipped */
    amqp_channel_t ch = f->channel;
    char why[256];
    int code;
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f->payload.method.decoded;
        if (ch == CH_PUB)
            on_confirm(c, a->delivery_tag, a->multiple, 1);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f->payload.method.decoded;
        if (ch == CH_PUB)
            on_confirm(c, a->delivery_tag, a->multiple, 2);
        break;
    }
    case AMQP_BASIC_DELIVER_METHOD:
        on_deliver(c, ch, f->payload.method.decoded);
        break;
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_message_t msg;
        if (amqp_read_message(c->conn, ch, &msg, 0).reply_type == AMQP_RESPONSE_NORMAL)
            amqp_destroy_message(&msg);
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
        answer_close(c, ch, &f->payload.method, why, sizeof(why), &code);
        channel_closed(c, ch, why);
        break;
    case AMQP_CONNECTION_CLOSE_METHOD:
        answer_close(c, 0, &f->payload.method, why, sizeof(why), &code);
        conn_lost(c, why);
        break;
    default:
        break;
    }
}

/* Dispatch every frame already received, without blocking. */
static void pump(struct client *c)
{
    while (c->up) {
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        int st = amqp_simple_wait_frame_noblock(c->conn, &f, &zero);
        if (st == AMQP_STATUS_TIMEOUT)
            break;
        if (st != AMQP_STATUS_OK) {
            conn_lost(c, amqp_error_string2(st));
            break;
        }
        dispatch(c, &f);
    }
}

static void release(struct client *c)
{
    if (c->up)
        amqp_maybe_release_buffers(c->conn);
}

/*
 * Wait for frames or a state change until `until` (mono ms); mutex held on
 * entry and exit. One thread polls the socket with the mutex released;
 * the others wait for its broadcast.
 */
static void io_wait(struct client *c, int64_t until)
{
    int64_t now = fx_mono_ms();
    if (until <= now)
        return;
    if (!c->up || c->polling) {
        cwait(c, until);
        return;
    }
    if (amqp_frames_enqueued(c->conn) || amqp_data_in_buffer(c->conn)) {
        pump(c);
        return;
    }
    /* wake at least twice per heartbeat interval: rabbitmq-c sends heartbeats only when called */
    int64_t left = until - now, cap = c->cf.heartbeat ? c->cf.heartbeat * 500 : POLL_SLICE_MS;
    if (cap > POLL_SLICE_MS)
        cap = POLL_SLICE_MS;
    int slice = (int)(left < cap ? left : cap);
    struct pollfd p[2] = {{.fd = amqp_get_sockfd(c->conn), .events = POLLIN},
                          {.fd = c->wake[0], .events = POLLIN}};
    uint64_t gen = c->gen;
    c->polling = 1;
    pthread_mutex_unlock(&c->mu);
    poll(p, 2, slice);
    pthread_mutex_lock(&c->mu);
    c->polling = 0;
    char drain[64];
    while (read(c->wake[0], drain, sizeof(drain)) > 0)
        ;
    if (c->up && c->gen == gen) {
        pump(c);    /* also sends a heartbeat when one is due */
        release(c); /* callers hold no pointer into rabbitmq-c's buffers across a wait */
    }
    pthread_cond_broadcast(&c->cond);
}

/* ---- publishing ------------------------------------------------------- */

static void pub_acquire(struct client *c)
{
    while (c->pub_busy)
        cwait(c, fx_mono_ms() + 1000);
    c->pub_busy = 1;
}

static void pub_release(struct client *c)
{
    c->pub_busy = 0;
    c->win_n = 0;
    notify(c);
}

struct outmsg {
    const char *exchange, *rk;
    const amqp_basic_properties_t *props;
    const char *body;
    size_t len;
};

/*
 * Publish msgs with confirms, PUB_WINDOW at a time; reconnect and resend the
 * unconfirmed ones until deadline (or, with same_conn, fail when the
 * connection breaks). Holds pub_busy; the mutex is released while waiting.
 * Returns 0 or an error naming the message (1-based) the broker refused.
 */
static int pub_confirmed(struct client *c, const struct outmsg *msgs, size_t n, int64_t deadline,
                         int same_conn, struct fx_err *err)
{
    uint64_t gen0 = c->gen;
    unsigned char *done = fx_calloc(n ? n : 1, 1);
    size_t left = n;
    int rc = 0;
    size_t idx[PUB_WINDOW];
    pub_acquire(c);
    while (left) {
        if (same_conn && c->gen != gen0) {
            rc = fx_err_set(err, FX_EBUS, "bus %s: connection lost while publishing: %s",
                            c->cf.display, c->why);
            break;
        }
        if ((rc = conn_up(c, deadline, err)))
            break;
        if ((rc = pub_channel(c, err))) {
            if (!c->up)
                continue; /* the connection died: reconnect and resend */
            break;
        }
        uint64_t gen = c->gen;
        c->win_first = c->pub_seq + 1;
        c->win_n = 0;
        for (size_t i = 0; i < n && c->win_n < PUB_WINDOW; i++) {
            if (done[i])
                continue;
            const struct outmsg *m = &msgs[i];
            amqp_bytes_t body = {m->len, (void *)m->body};
            int st = amqp_basic_publish(c->conn, CH_PUB, bytes_of(m->exchange), bytes_of(m->rk), 0,
                                        0, m->props, body);
            if (send_check(c, st, "publish", NULL))
                break;
            c->pub_seq++;
            idx[c->win_n] = i;
            c->win[c->win_n++] = 0;
        }
        /* wait for the broker's verdict on the whole window */
        for (;;) {
            if (c->gen != gen)
                break;
            size_t pending = 0;
            for (size_t k = 0; k < c->win_n; k++)
                pending += c->win[k] == 0;
            if (!pending)
                break;
            if (fx_mono_ms() >= deadline)
                break;
            io_wait(c, deadline);
        }
        for (size_t k = 0; c->gen == gen && k < c->win_n; k++) {
            if (c->win[k] == 1) {
                done[idx[k]] = 1;
                left--;
            } else if (c->win[k] == 2 && !rc) {
                rc = fx_err_set(err, FX_EBUS, "bus %s: the broker refused message %zu%s%s",
                                c->cf.display, idx[k] + 1, c->pub_err[0] ? ": " : "", c->pub_err);
            }
        }
        if (rc)
            break;
        if (c->gen == gen && left && fx_mono_ms() >= deadline) {
            rc = fx_err_set(err, FX_ETIMEDOUT,
                            "bus %s: %zu of %zu messages not confirmed by the broker within %d ms",
                            c->cf.display, left, n, PUBLISH_TIMEOUT_MS);
            break;
        }
        if (c->gen != gen && left)
            fx_log_warn("bus", "bus %s: resending %zu unconfirmed messages after reconnecting",
                        c->cf.display, left);
    }
    pub_release(c);
    free(done);
    return rc;
}

/* ---- groups ----------------------------------------------------------- */

static int group_name_check(const char *name, struct fx_err *err)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(aux_suffix) / sizeof(aux_suffix[0]); i++) {
        size_t s = strlen(aux_suffix[i]);
        if (n > s && strcmp(name + n - s, aux_suffix[i]) == 0)
            return fx_err_set(err, FX_EINVAL,
                              "bus group \"%s\": names ending in \"%s\" are reserved by the amqp"
                              " backend for its helper queues",
                              name, aux_suffix[i]);
    }
    return 0;
}

static struct group *group_get(struct client *c, const char *name)
{
    for (struct group *g = c->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    struct group *g = fx_calloc(1, sizeof(*g));
    g->name = fx_strdup(name);
    g->dead_q = fx_asprintf("%s.dead", name);
    g->mark_q = fx_asprintf("%s.inflight", name);
    g->opt_q = fx_asprintf("%s.options", name);
    g->ch = c->next_ch++;
    fx_group_opts_init(&g->opts);
    g->next = c->groups;
    c->groups = g;
    return g;
}

static struct group *group_find(struct client *c, const char *name)
{
    for (struct group *g = c->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

static void patterns_free(struct group *g)
{
    for (size_t i = 0; i < g->npatterns; i++)
        free(g->patterns[i]);
    free(g->patterns);
    g->patterns = NULL;
    g->npatterns = 0;
}

static void group_free(struct group *g)
{
    group_drop_held(g);
    patterns_free(g);
    free(g->name);
    free(g->dead_q);
    free(g->mark_q);
    free(g->opt_q);
    free(g);
}

static amqp_table_t queue_args(int quorum, amqp_table_entry_t *e, int max_len_zero)
{
    int n = 0;
    e[n].key = amqp_cstring_bytes("x-queue-type");
    e[n].value.kind = AMQP_FIELD_KIND_UTF8;
    e[n].value.value.bytes = amqp_cstring_bytes(quorum ? "quorum" : "classic");
    n++;
    if (max_len_zero) {
        e[n].key = amqp_cstring_bytes("x-max-length");
        e[n].value.kind = AMQP_FIELD_KIND_I32;
        e[n].value.value.i32 = 0;
        n++;
    }
    amqp_table_t t = {n, e};
    return t;
}

static int queue_declare(struct client *c, const char *name, int quorum, int max_len_zero,
                         struct fx_err *err)
{
    amqp_table_entry_t e[2];
    char what[300];
    snprintf(what, sizeof(what), "declare queue \"%s\"", name);
    int rc = rpc_channel(c, err);
    if (rc)
        return rc;
    amqp_queue_declare(c->conn, CH_RPC, bytes_of(name), 0, 1, 0, 0,
                       queue_args(quorum, e, max_len_zero));
    return rpc_check(c, CH_RPC, what, err);
}

/* Passive declare: 0 with the counts, FX_ENOTFOUND, or an error. */
static int queue_stat(struct client *c, const char *name, uint32_t *messages, uint32_t *consumers,
                      struct fx_err *err)
{
    char what[300];
    snprintf(what, sizeof(what), "look up queue \"%s\"", name);
    int rc = rpc_channel(c, err);
    if (rc)
        return rc;
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c->conn, CH_RPC, bytes_of(name), 1, 0, 0, 0, amqp_empty_table);
    if ((rc = rpc_check(c, CH_RPC, what, err)))
        return rc;
    if (messages)
        *messages = ok->message_count;
    if (consumers)
        *consumers = ok->consumer_count;
    return 0;
}

static int no_group(struct client *c, const char *name, struct fx_err *err)
{
    return fx_err_set(err, FX_ENOTFOUND, "bus group \"%s\" is not declared (no queue \"%s\" in %s)",
                      name, name, c->cf.display);
}

/* Parse an options record; 0 or -1. */
static int opts_parse(const char *body, size_t len, struct fx_group_opts *o, char ***pats,
                      size_t *npats, int64_t *ts)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    fx_group_opts_init(o);
    json_t *v;
    if ((v = json_object_get(root, "max_attempts")) && json_is_integer(v))
        o->max_attempts = (int)json_integer_value(v);
    if ((v = json_object_get(root, "backoff_ms")) && json_is_integer(v))
        o->backoff_ms = (int)json_integer_value(v);
    if ((v = json_object_get(root, "backoff_max_ms")) && json_is_integer(v))
        o->backoff_max_ms = (int)json_integer_value(v);
    if ((v = json_object_get(root, "lease_ms")) && json_is_integer(v))
        o->lease_ms = (int)json_integer_value(v);
    *ts = (v = json_object_get(root, "ts")) && json_is_integer(v) ? json_integer_value(v) : 0;
    json_t *arr = json_object_get(root, "patterns");
    *pats = NULL;
    *npats = 0;
    if (json_is_array(arr) && json_array_size(arr)) {
        *pats = fx_calloc(json_array_size(arr), sizeof(char *));
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *s = json_array_get(arr, i);
            if (json_is_string(s))
                (*pats)[(*npats)++] = fx_strdup(json_string_value(s));
        }
    }
    json_decref(root);
    if (o->max_attempts < 1 || o->backoff_ms < 0 || o->backoff_max_ms < o->backoff_ms ||
        o->lease_ms < 1) {
        for (size_t i = 0; i < *npats; i++)
            free((*pats)[i]);
        free(*pats);
        return -1;
    }
    return 0;
}

/*
 * Read the group's options record from G.options: get every copy without ack,
 * keep the newest, ack (delete) the older ones and put the newest back.
 * Returns 1 found, 0 none, < 0 error. A concurrent reader may hold the record
 * for a moment; with nothing cached we retry briefly.
 */
static int opts_load(struct client *c, struct group *g, struct fx_err *err)
{
    for (int tries = 0;; tries++) {
        int rc = rpc_channel(c, err);
        if (rc)
            return rc;
        uint64_t tags[OPTS_READ_MAX], best_tag = 0;
        size_t ntags = 0;
        int found = 0;
        int64_t best_ts = -1;
        struct fx_group_opts best;
        char **best_pats = NULL;
        size_t best_np = 0;
        while (ntags < OPTS_READ_MAX) {
            amqp_rpc_reply_t r = amqp_basic_get(c->conn, CH_RPC, bytes_of(g->opt_q), 0);
            if ((rc = reply_check(c, CH_RPC, r, "read group options", err)))
                break;
            if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
                break;
            uint64_t tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
            amqp_message_t msg;
            amqp_rpc_reply_t mr = amqp_read_message(c->conn, CH_RPC, &msg, 0);
            if ((rc = reply_check(c, CH_RPC, mr, "read group options", err)))
                break;
            tags[ntags++] = tag;
            struct fx_group_opts o;
            char **pats;
            size_t np;
            int64_t ts;
            if (opts_parse(msg.body.bytes, msg.body.len, &o, &pats, &np, &ts) == 0) {
                if (ts >= best_ts) {
                    for (size_t i = 0; i < best_np; i++)
                        free(best_pats[i]);
                    free(best_pats);
                    best = o;
                    best_pats = pats;
                    best_np = np;
                    best_ts = ts;
                    best_tag = tag;
                    found = 1;
                } else {
                    for (size_t i = 0; i < np; i++)
                        free(pats[i]);
                    free(pats);
                }
            }
            amqp_destroy_message(&msg);
        }
        for (size_t i = 0; !rc && i < ntags; i++) {
            int st = tags[i] == best_tag ? amqp_basic_reject(c->conn, CH_RPC, tags[i], 1)
                                         : amqp_basic_ack(c->conn, CH_RPC, tags[i], 0);
            rc = send_check(c, st, "settle group options", err);
        }
        if (rc) {
            for (size_t i = 0; i < best_np; i++)
                free(best_pats[i]);
            free(best_pats);
            return rc;
        }
        if (found) {
            g->opts = best;
            patterns_free(g);
            g->patterns = best_pats;
            g->npatterns = best_np;
            g->have_opts = 1;
            g->opts_at = fx_mono_ms();
            return 1;
        }
        if (g->have_opts || tries >= 5)
            return 0;
        cwait(c, fx_mono_ms() + 10);
        if (!c->up)
            return fx_err_set(err, FX_EBUS, "bus %s: connection lost: %s", c->cf.display, c->why);
    }
}

static int opts_store(struct client *c, struct group *g, const struct fx_group_opts *o,
                      const char *const *pats, size_t npats, struct fx_err *err)
{
    json_t *root = json_object();
    json_object_set_new(root, "max_attempts", json_integer(o->max_attempts));
    json_object_set_new(root, "backoff_ms", json_integer(o->backoff_ms));
    json_object_set_new(root, "backoff_max_ms", json_integer(o->backoff_max_ms));
    json_object_set_new(root, "lease_ms", json_integer(o->lease_ms));
    json_object_set_new(root, "ts", json_integer(fx_now_ms()));
    json_t *arr = json_array();
    for (size_t i = 0; i < npats; i++)
        json_array_append_new(arr, json_string(pats[i]));
    json_object_set_new(root, "patterns", arr);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    amqp_basic_properties_t p = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
    };
    struct outmsg m = {"", g->opt_q, &p, text, strlen(text)};
    int rc = pub_confirmed(c, &m, 1, fx_mono_ms() + PUBLISH_TIMEOUT_MS, 0, err);
    free(text);
    return rc;
}

/*
 * Make g usable on the current connection: its queue exists (FX_ENOTFOUND
 * otherwise), its helper queues exist, its channel is open and its options
 * are fresh.
 */
static int group_ready(struct client *c, struct group *g, struct fx_err *err)
{
    int rc;
    if (g->ready_gen != c->gen) {
        rc = queue_stat(c, g->name, NULL, NULL, err);
        if (rc == FX_ENOTFOUND)
            return no_group(c, g->name, err);
        if (rc || (rc = queue_declare(c, g->dead_q, c->cf.quorum, 0, err)) ||
            (rc = queue_declare(c, g->mark_q, 0, 1, err)) ||
            (rc = queue_declare(c, g->opt_q, 0, 0, err)))
            return rc;
        g->ready_gen = c->gen;
    }
    if (!g->ch_open) {
        if ((rc = chan_open(c, g->ch, err)))
            return rc;
        amqp_basic_qos(c->conn, g->ch, 0, 1, 0);
        if ((rc = rpc_check(c, g->ch, "set prefetch", err)))
            return rc;
        g->ch_open = 1;
    }
    if (!g->have_opts || fx_mono_ms() - g->opts_at > OPTS_TTL_MS) {
        rc = opts_load(c, g, err);
        if (rc < 0)
            return rc;
        if (rc == 0 && !g->have_opts) {
            fx_group_opts_init(&g->opts); /* a queue declared by someone else: defaults */
            g->have_opts = 1;
        }
        g->opts_at = fx_mono_ms();
    }
    return 0;
}

/* ---- held messages ---------------------------------------------------- */

static struct held *held_by_dtag(struct group *g, uint64_t dtag)
{
    for (struct held *h = g->head; h; h = h->next)
        if (h->dtag == dtag)
            return h;
    return NULL;
}

/* Register h's marker consumer on G.inflight (see depth). */
static int marker_add(struct client *c, struct group *g, struct held *h, struct fx_err *err)
{
    char tag[48];
    snprintf(tag, sizeof(tag), "fx-m-%ld-%llu", (long)getpid(),
             (unsigned long long)++c->next_marker);
    amqp_basic_consume(c->conn, g->ch, bytes_of(g->mark_q), bytes_of(tag), 0, 0, 0,
                       amqp_empty_table);
    int rc = rpc_check(c, g->ch, "count a message in flight", err);
    if (!rc)
        snprintf(h->marker, sizeof(h->marker), "%s", tag);
    return rc;
}

static int marker_drop(struct client *c, struct group *g, struct held *h, struct fx_err *err)
{
    if (!h->marker[0])
        return 0;
    amqp_basic_cancel(c->conn, g->ch, bytes_of(h->marker));
    int rc = rpc_check(c, g->ch, "uncount a message in flight", err);
    if (!rc)
        h->marker[0] = '\0';
    return rc;
}

/* Ack h on the broker and forget it. h is freed (also on error: the broker
 * then requeues it with the channel). */
static int held_ack(struct client *c, struct group *g, struct held *h, struct fx_err *err)
{
    uint64_t gen = c->gen;
    int rc = send_check(c, amqp_basic_ack(c->conn, g->ch, h->dtag, 0), "ack", err);
    if (!rc)
        rc = marker_drop(c, g, h, err); /* its cancel-ok also tells the ack was processed */
    if (c->gen == gen && g->ch_open) {
        held_unlink(g, h);
        held_free(h);
    }
    notify(c);
    return rc;
}

/*
 * Dead-letter the held message with delivery tag dtag: republish it to
 * G.dead with the reason (confirmed), then ack it. The mutex is released
 * while waiting for the confirm, so h is looked up again afterwards.
 */
static int dead_letter(struct client *c, struct group *g, uint64_t dtag, const char *reason,
                       struct fx_err *err)
{
    struct held *h = held_by_dtag(g, dtag);
    if (!h || h->busy)
        return FX_ENOTFOUND;
    uint64_t gen = c->gen;
    h->busy = 1;
    int attempt = h->base + h->local;
    /* copies: the connection may die while the mutex is released, freeing h */
    size_t len = h->len;
    char *body = fx_malloc(len + 1);
    memcpy(body, h->body, len + 1);
    char *id =
        h->ev && h->ev->id && strlen(h->ev->id) <= SHORTSTR_MAX ? fx_strdup(h->ev->id) : NULL;
    amqp_table_entry_t e[4];
    e[0].key = amqp_cstring_bytes(H_REASON);
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = amqp_cstring_bytes(reason);
    e[1].key = amqp_cstring_bytes(H_ATTEMPTS);
    e[1].value.kind = AMQP_FIELD_KIND_I32;
    e[1].value.value.i32 = attempt;
    e[2].key = amqp_cstring_bytes(H_GROUP);
    e[2].value.kind = AMQP_FIELD_KIND_UTF8;
    e[2].value.value.bytes = amqp_cstring_bytes(g->name);
    e[3].key = amqp_cstring_bytes(H_DEAD_AT);
    e[3].value.kind = AMQP_FIELD_KIND_I64;
    e[3].value.value.i64 = fx_now_ms();
    amqp_basic_properties_t p = {
        ._flags =
            AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG,
        .content_type = amqp_cstring_bytes(CONTENT_TYPE),
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
        .headers = {4, e},
    };
    if (id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(id);
    }
    struct outmsg m = {"", g->dead_q, &p, body, len};
    /* not across a reconnect: the broker requeues the original with the connection */
    int rc = pub_confirmed(c, &m, 1, fx_mono_ms() + PUBLISH_TIMEOUT_MS, 1, err);
    free(body);
    free(id);
    if (c->gen != gen || !g->ch_open || !(h = held_by_dtag(g, dtag)))
        return rc ? rc : FX_ENOTFOUND;
    h->busy = 0;
    if (rc)
        return rc;
    return held_ack(c, g, h, err);
}

/* Lease expiries of g: back to ready, or doomed at max_attempts. */
static void sweep(struct group *g, int64_t now)
{
    for (struct held *h = g->head; h; h = h->next) {
        if (!h->leased || h->due > now || h->busy)
            continue;
        h->leased = 0; /* available since the lease ended (due) */
        h->lease_id = 0;
        h->expiries++;
        if (h->base + h->local >= g->opts.max_attempts && !h->doom)
            h->doom = h->last_error ? fx_asprintf("lease expired %d times; last error: %s",
                                                  h->expiries, h->last_error)
                                    : fx_asprintf("lease expired %d times", h->expiries);
    }
}

/*
 * Work that needs RPCs and so cannot run inside frame dispatch: register
 * markers, cancel spent waiting consumers, dead-letter doomed messages.
 */
static void fixups(struct client *c)
{
    for (int round = 0; round < 8 && c->up; round++) {
        int again = 0;
        for (struct group *g = c->groups; g && c->up; g = g->next) {
            if (!g->ch_open)
                continue;
            if (g->wait == W_SPENT) {
                amqp_basic_cancel(c->conn, g->ch, bytes_of(g->wait_tag));
                if (rpc_check(c, g->ch, "stop waiting", NULL))
                    break;
                g->wait = W_NONE;
                g->wait_tag[0] = '\0';
                again = 1;
            }
            for (struct held *h = g->head; h && g->ch_open; h = h->next) {
                if (!h->marker[0] && !h->busy && marker_add(c, g, h, NULL))
                    break;
            }
            for (struct held *h = g->head; h && g->ch_open && c->up;) {
                struct held *next = h->next;
                if (h->doom && !h->busy) {
                    uint64_t dtag = h->dtag;
                    char *why = fx_strdup(h->doom);
                    fx_log_warn("bus", "bus %s: group %s: message %s dead-lettered: %s",
                                c->cf.display, g->name, h->ev && h->ev->id ? h->ev->id : "?", why);
                    dead_letter(c, g, dtag, why, NULL);
                    free(why);
                    again = 1;
                    break; /* the list may have changed while the mutex was released */
                }
                h = next;
            }
        }
        if (!again)
            break;
    }
}

/* The deliverable held message of g available the longest: ready, due, and first of its key. */
static struct held *pick(struct group *g, int64_t now)
{
    const char *small[64];
    const char **seen = small;
    size_t nseen = 0, cap = 64;
    struct held *found = NULL;
    for (struct held *h = g->head; h; h = h->next) {
        const char *key = h->ev ? h->ev->key : NULL;
        if (key) {
            int dup = 0;
            for (size_t i = 0; i < nseen && !dup; i++)
                dup = strcmp(seen[i], key) == 0;
            if (dup)
                continue; /* an earlier message of this key is still held */
            if (nseen == cap) {
                const char **bigger = fx_malloc(2 * cap * sizeof(*bigger));
                memcpy(bigger, seen, nseen * sizeof(*seen));
                if (seen != small)
                    free(seen);
                seen = bigger;
                cap *= 2;
            }
            seen[nseen++] = key;
        }
        if (!h->leased && !h->doom && !h->busy && h->due <= now && (!found || h->due < found->due))
            found = h;
    }
    if (seen != small)
        free(seen);
    return found;
}

/* Next time something held by g changes by itself (lease end, backoff end). */
static int64_t next_timer(const struct group *g, int64_t until)
{
    int64_t now = fx_mono_ms();
    for (const struct held *h = g->head; h; h = h->next)
        if ((h->leased || h->due > now) && h->due < until)
            until = h->due;
    return until;
}

static int can_fetch(const struct group *g)
{
    return g->nheld < HOLD_MAX && g->held_bytes < HOLD_BYTES;
}

/* basic.get one message into g: 1 taken, 0 queue empty, < 0 error. */
static int fetch(struct client *c, struct group *g, struct fx_err *err)
{
    char what[300];
    snprintf(what, sizeof(what), "get from queue \"%s\"", g->name);
    amqp_rpc_reply_t r = amqp_basic_get(c->conn, g->ch, bytes_of(g->name), 0);
    int rc = reply_check(c, g->ch, r, what, err);
    if (rc)
        return rc == FX_ENOTFOUND ? no_group(c, g->name, err) : rc;
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
        return 0;
    const amqp_basic_get_ok_t *ok = r.reply.decoded;
    uint64_t dtag = ok->delivery_tag;
    int redelivered = ok->redelivered;
    amqp_message_t msg;
    amqp_rpc_reply_t mr = amqp_read_message(c->conn, g->ch, &msg, 0);
    if ((rc = reply_check(c, g->ch, mr, what, err)))
        return rc;
    held_add(c, g, dtag, redelivered, &msg);
    amqp_destroy_message(&msg);
    return 1;
}

/* Start the one-shot waiting consumer of g (prefetch 1). */
static int wait_start(struct client *c, struct group *g, struct fx_err *err)
{
    char tag[48];
    snprintf(tag, sizeof(tag), "fx-w-%ld-%llu", (long)getpid(),
             (unsigned long long)++c->next_marker);
    amqp_basic_consume(c->conn, g->ch, bytes_of(g->name), bytes_of(tag), 0, 0, 0, amqp_empty_table);
    int rc = rpc_check(c, g->ch, "wait for messages", err);
    if (rc)
        return rc == FX_ENOTFOUND ? no_group(c, g->name, err) : rc;
    snprintf(g->wait_tag, sizeof(g->wait_tag), "%s", tag);
    g->wait = W_ACTIVE;
    return 0;
}

static void wait_stop(struct client *c, struct group *g)
{
    if (g->wait == W_NONE || !g->ch_open || !c->up)
        return;
    amqp_basic_cancel(c->conn, g->ch, bytes_of(g->wait_tag));
    if (rpc_check(c, g->ch, "stop waiting", NULL) == 0) {
        g->wait = W_NONE;
        g->wait_tag[0] = '\0';
    }
    pump(c); /* a delivery that raced the cancel becomes a held message */
}

static struct fx_delivery *delivery_copy(const struct fx_delivery *t)
{
    struct fx_delivery *d = fx_calloc(1, sizeof(*d));
#define DUP(f) d->f = t->f ? fx_strdup(t->f) : NULL
    DUP(id);
    DUP(type);
    DUP(source);
    DUP(routing_key);
    DUP(key);
    DUP(correlation_id);
    DUP(traceparent);
    DUP(time);
#undef DUP
    if (t->data) {
        d->data = fx_malloc(t->data_len + 1);
        memcpy(d->data, t->data, t->data_len);
        d->data[t->data_len] = '\0';
        d->data_len = t->data_len;
    }
    return d;
}

/* ---- operations ------------------------------------------------------- */

static void client_free(struct client *c)
{
    if (c->up) {
        amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c->conn);
    }
    while (c->groups) {
        struct group *g = c->groups;
        c->groups = g->next;
        group_free(g);
    }
    close(c->wake[0]);
    close(c->wake[1]);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    conf_free(&c->cf);
    free(c->url);
    free(c);
}

static void amqp_close(struct fx_bus *b)
{
    struct amqp_bus *a = ab(b);
    struct client *c = a->c;
    if (c) {
        /* leases of this handle are left to run out: another handle of the
         * process takes the messages then, or the broker when the last one goes */
        pthread_mutex_lock(&reg_mu);
        int last = --c->refs == 0;
        if (last) {
            struct client **pp = &clients;
            while (*pp != c)
                pp = &(*pp)->next;
            *pp = c->next;
        }
        pthread_mutex_unlock(&reg_mu);
        if (last)
            client_free(c);
    }
    fx_buf_cleanup(&a->enc);
    free(a);
}

static int amqp_open(const char *url, struct fx_bus **out, struct fx_err *err)
{
    struct conf cf;
    int rc = conf_parse(url, &cf, err);
    if (rc)
        return rc;
    struct amqp_bus *a = fx_calloc(1, sizeof(*a));
    fx_buf_init(&a->enc, 0); /* a batch: each message is checked against the limit */
    pthread_mutex_lock(&reg_mu);
    a->id = ++next_handle_id;
    struct client *c = clients;
    while (c && strcmp(c->url, url) != 0)
        c = c->next;
    if (!c) {
        c = fx_calloc(1, sizeof(*c));
        c->url = fx_strdup(url);
        c->cf = cf;
        memset(&cf, 0, sizeof(cf));
        pthread_mutex_init(&c->mu, NULL);
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&c->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (pipe(c->wake) != 0) {
            pthread_mutex_unlock(&reg_mu);
            rc = fx_err_set(err, FX_EIO, "bus: cannot create a pipe: %s", strerror(errno));
            c->wake[0] = c->wake[1] = -1;
            client_free(c);
            conf_free(&cf);
            fx_buf_cleanup(&a->enc);
            free(a);
            return rc;
        }
        for (int i = 0; i < 2; i++) {
            fcntl(c->wake[i], F_SETFL, fcntl(c->wake[i], F_GETFL) | O_NONBLOCK);
            fcntl(c->wake[i], F_SETFD, FD_CLOEXEC);
        }
        c->next_ch = CH_GROUP_FIRST;
        c->next = clients;
        clients = c;
    }
    c->refs++;
    a->c = c;
    pthread_mutex_unlock(&reg_mu);
    conf_free(&cf);
    a->base.ops = &fx__bus_amqp_ops;
    pthread_mutex_lock(&c->mu);
    rc = conn_up(c, fx_mono_ms(), err);
    pthread_mutex_unlock(&c->mu);
    if (rc) {
        amqp_close(&a->base);
        return rc;
    }
    *out = &a->base;
    return 0;
}

static int amqp_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                        size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err)
{
    struct client *c = ab(b)->c;
    int rc = group_name_check(group, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->mu);
    int64_t deadline = fx_mono_ms() + DECLARE_TIMEOUT_MS;
    struct group *g = group_get(c, group);
    char what[300];
    if ((rc = conn_up(c, deadline, err)) || (rc = queue_declare(c, g->name, c->cf.quorum, 0, err)))
        goto out;
    /* check the helper queues again and read the record with its patterns; a new group has
     * none (no reason to wait for one: have_opts skips opts_load's patience) */
    g->ready_gen = 0;
    g->have_opts = 1;
    g->opts_at = fx_mono_ms();
    if ((rc = group_ready(c, g, err)) || (rc = opts_load(c, g, err)) < 0)
        goto out;
    struct fx_group_opts o = opts ? *opts : g->opts;
    /* replace the bindings: drop the recorded patterns that are gone */
    for (size_t i = 0; i < g->npatterns; i++) {
        int keep = 0;
        for (size_t k = 0; k < npatterns && !keep; k++)
            keep = strcmp(g->patterns[i], patterns[k]) == 0;
        if (keep)
            continue;
        snprintf(what, sizeof(what), "unbind \"%s\" from queue \"%s\"", g->patterns[i], g->name);
        amqp_queue_unbind(c->conn, CH_RPC, bytes_of(g->name), bytes_of(c->cf.exchange),
                          bytes_of(g->patterns[i]), amqp_empty_table);
        if ((rc = rpc_check(c, CH_RPC, what, err)))
            goto out;
    }
    for (size_t k = 0; k < npatterns; k++) {
        snprintf(what, sizeof(what), "bind queue \"%s\" to exchange \"%s\" with \"%s\"", g->name,
                 c->cf.exchange, patterns[k]);
        if ((rc = rpc_channel(c, err)))
            goto out;
        amqp_queue_bind(c->conn, CH_RPC, bytes_of(g->name), bytes_of(c->cf.exchange),
                        bytes_of(patterns[k]), amqp_empty_table);
        if ((rc = rpc_check(c, CH_RPC, what, err)))
            goto out;
    }
    if ((rc = opts_store(c, g, &o, patterns, npatterns, err)))
        goto out;
    g->opts = o;
    patterns_free(g);
    if (npatterns) {
        g->patterns = fx_calloc(npatterns, sizeof(char *));
        for (size_t k = 0; k < npatterns; k++)
            g->patterns[k] = fx_strdup(patterns[k]);
        g->npatterns = npatterns;
    }
    g->have_opts = 1;
    g->opts_at = fx_mono_ms();
out:
    pump(c);
    fixups(c);
    release(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int amqp_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n, struct fx_err *err)
{
    struct amqp_bus *a = ab(b);
    struct client *c = a->c;
    /* encode everything first: a message that cannot be sent fails the call before any is */
    size_t *off = fx_malloc((n + 1) * sizeof(*off));
    struct outmsg *out = fx_calloc(n, sizeof(*out));
    amqp_basic_properties_t *props = fx_calloc(n, sizeof(*props));
    struct fx_buf *enc = &a->enc;
    fx_buf_reset(enc);
    int rc = 0;
    int64_t now_ms = fx_now_ms();
    amqp_table_entry_t published = {.key = amqp_cstring_bytes(H_PUBLISHED),
                                    .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = now_ms}};
    for (size_t i = 0; i < n; i++) {
        off[i] = enc->len;
        rc = fx_cloudevent_encode(&msgs[i], enc);
        if (!rc && enc->len - off[i] > FX__BUS_BODY_MAX)
            rc = FX_ETOOBIG;
        if (rc == FX_ETOOBIG) {
            rc = fx_err_set(err, FX_ETOOBIG,
                            "message %zu: the encoded CloudEvent exceeds the bus limit of %u bytes",
                            i + 1, FX__BUS_BODY_MAX);
            goto out;
        } else if (rc) {
            rc = fx_err_set(err, rc, "message %zu: cannot encode: %s", i + 1, fx_strerror(rc));
            goto out;
        }
        amqp_basic_properties_t *p = &props[i];
        p->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                    AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
        p->content_type = amqp_cstring_bytes(CONTENT_TYPE);
        p->delivery_mode = AMQP_DELIVERY_PERSISTENT;
        p->timestamp = (uint64_t)(now_ms / 1000);
        p->headers.num_entries = 1;
        p->headers.entries = &published;
        p->app_id = amqp_cstring_bytes("fluxo");
        /* AMQP short strings hold 255 bytes: longer values travel in the body only */
        if (strlen(msgs[i].id) <= SHORTSTR_MAX) {
            p->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
            p->message_id = amqp_cstring_bytes(msgs[i].id);
        }
        if (strlen(msgs[i].type) <= SHORTSTR_MAX) {
            p->_flags |= AMQP_BASIC_TYPE_FLAG;
            p->type = amqp_cstring_bytes(msgs[i].type);
        }
        if (msgs[i].correlation_id && *msgs[i].correlation_id &&
            strlen(msgs[i].correlation_id) <= SHORTSTR_MAX) {
            p->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
            p->correlation_id = amqp_cstring_bytes(msgs[i].correlation_id);
        }
    }
    off[n] = enc->len;
    for (size_t i = 0; i < n; i++) {
        out[i].exchange = c->cf.exchange;
        out[i].rk = msgs[i].routing_key;
        out[i].props = &props[i];
        out[i].body = enc->data + off[i];
        out[i].len = off[i + 1] - off[i];
    }
    pthread_mutex_lock(&c->mu);
    rc = pub_confirmed(c, out, n, fx_mono_ms() + PUBLISH_TIMEOUT_MS, 0, err);
    pump(c);
    fixups(c);
    release(c);
    pthread_mutex_unlock(&c->mu);
out:
    if (enc->cap > 2 * (size_t)FX__BUS_BODY_MAX) {
        fx_buf_cleanup(enc); /* do not keep a huge batch's buffer */
        fx_buf_init(enc, 0);
    }
    free(off);
    free(out);
    free(props);
    return rc;
}

static int amqp_receive(struct fx_bus *b, const char *group, int timeout_ms,
                        struct fx_delivery **out, struct fx_err *err)
{
    struct amqp_bus *a = ab(b);
    struct client *c = a->c;
    int rc = group_name_check(group, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->mu);
    int64_t deadline = fx_mono_ms() + timeout_ms;
    struct group *g = group_get(c, group);
    int peeked = 0;
    g->waiters++;
    for (;;) {
        if ((rc = conn_up(c, deadline, err)) || (rc = group_ready(c, g, err)))
            break;
        int64_t now = fx_mono_ms();
        sweep(g, now);
        fixups(c);
        if (!c->up || !g->ch_open)
            continue;
        struct held *h = pick(g, now);
        if (h && (h->local || h->expiries) && !peeked && g->wait == W_NONE && can_fetch(g)) {
            /* a retry: messages still in the queue may have been published before it came due */
            peeked = 1;
            if ((rc = fetch(c, g, err)) != 0) {
                if (rc > 0 || (!c->up && fx_mono_ms() < deadline))
                    continue;
                break;
            }
        }
        if (h) {
            h->leased = 1;
            h->holder = a->id;
            h->lease_id = ++c->next_lease;
            h->local++;
            h->due = now + g->opts.lease_ms;
            struct fx_delivery *d = delivery_copy(h->ev);
            d->attempt = h->base + h->local;
            d->group = fx_strdup(group);
            d->tag = h->lease_id;
            *out = d;
            rc = 1;
            break;
        }
        if (g->wait == W_NONE && can_fetch(g)) {
            rc = fetch(c, g, err);
            if (rc > 0)
                continue;
            if (rc < 0) {
                if (!c->up && fx_mono_ms() < deadline)
                    continue; /* reconnect and try again within the timeout */
                break;
            }
        }
        if (fx_mono_ms() >= deadline) {
            rc = 0;
            break;
        }
        if (g->wait == W_NONE && can_fetch(g) && (rc = wait_start(c, g, err))) {
            if (!c->up && fx_mono_ms() < deadline)
                continue;
            break;
        }
        io_wait(c, next_timer(g, deadline));
    }
    if (--g->waiters == 0 && g->wait == W_ACTIVE)
        wait_stop(c, g);
    fixups(c);
    release(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* The held message behind delivery d, if d's lease is still current. */
static struct held *leased(struct client *c, struct amqp_bus *a, const struct fx_delivery *d,
                           struct group **gp)
{
    struct group *g = group_find(c, d->group);
    if (!g || !c->up || !g->ch_open)
        return NULL;
    for (struct held *h = g->head; h; h = h->next) {
        if (h->lease_id == d->tag && h->leased && h->holder == a->id && !h->busy) {
            if (h->due <= fx_mono_ms())
                return NULL; /* expired, even if no receive swept it yet */
            *gp = g;
            return h;
        }
    }
    return NULL;
}

static int amqp_ack(struct fx_bus *b, struct fx_delivery *d)
{
    struct amqp_bus *a = ab(b);
    struct client *c = a->c;
    pthread_mutex_lock(&c->mu);
    pump(c);
    struct group *g = NULL;
    struct held *h = leased(c, a, d, &g);
    int rc = FX_ENOTFOUND;
    if (h && held_ack(c, g, h, NULL) == 0)
        rc = 0;
    fixups(c);
    release(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int amqp_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason)
{
    struct amqp_bus *a = ab(b);
    struct client *c = a->c;
    pthread_mutex_lock(&c->mu);
    pump(c);
    struct group *g = NULL;
    struct held *h = leased(c, a, d, &g);
    int rc = FX_ENOTFOUND;
    if (h) {
        int attempt = h->base + h->local;
        free(h->last_error);
        h->last_error = fx_strdup(reason);
        if (attempt >= g->opts.max_attempts) {
            rc = dead_letter(c, g, h->dtag, reason, NULL);
            if (rc && rc != FX_ENOTFOUND)
                fx_log_warn("bus", "bus %s: group %s: cannot dead-letter %s: %s", c->cf.display,
                            g->name, d->id, fx_strerror(rc));
        } else {
            /* delayed redelivery inside the process: it keeps its place and its key */
            h->leased = 0;
            h->lease_id = 0;
            h->due = fx_mono_ms() + fx__bus_backoff_ms(&g->opts, attempt);
            notify(c);
            rc = 0;
        }
    }
    fixups(c);
    release(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int64_t amqp_depth(struct fx_bus *b, const char *group)
{
    struct client *c = ab(b)->c;
    if (group_name_check(group, NULL))
        return FX_EINVAL;
    char *mark_q = fx_asprintf("%s.inflight", group);
    uint32_t ready = 0, inflight = 0;
    pthread_mutex_lock(&c->mu);
    int rc = conn_up(c, fx_mono_ms(), NULL);
    if (!rc) {
        pump(c);
        fixups(c); /* every message this process holds is counted before we look */
        rc = queue_stat(c, group, &ready, NULL, NULL);
    }
    if (!rc && (rc = queue_stat(c, mark_q, NULL, &inflight, NULL)) == FX_ENOTFOUND)
        rc = 0; /* a queue declared by someone else: no helper queues, nothing held */
    release(c);
    pthread_mutex_unlock(&c->mu);
    free(mark_q);
    return rc ? rc : (int64_t)ready + inflight;
}

struct dead {
    struct fx_delivery *d;
    char *reason;
    int64_t at;
    size_t seq;
};

static int dead_cmp(const void *x, const void *y)
{
    const struct dead *a = x, *b = y;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/*
 * Browse G.dead: get every message without ack on CH_DEAD, then close the
 * channel so that RabbitMQ puts them all back. Callbacks run afterwards,
 * with the mutex released.
 */
static int amqp_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud)
{
    struct client *c = ab(b)->c;
    if (group_name_check(group, NULL))
        return FX_EINVAL;
    struct dead *list = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&c->mu);
    int rc = conn_up(c, fx_mono_ms(), NULL);
    if (!rc)
        rc = queue_stat(c, group, NULL, NULL, NULL);
    struct group *g = rc ? NULL : group_get(c, group);
    if (!rc && !c->ch_dead) {
        rc = chan_open(c, CH_DEAD, NULL);
        c->ch_dead = rc == 0;
    }
    while (!rc && n < DEAD_MAX) {
        amqp_rpc_reply_t r = amqp_basic_get(c->conn, CH_DEAD, bytes_of(g->dead_q), 0);
        rc = reply_check(c, CH_DEAD, r, "read dead letters", NULL);
        if (rc == FX_ENOTFOUND) {
            rc = 0; /* no dead-letter queue yet: none */
            break;
        }
        if (rc || r.reply.id != AMQP_BASIC_GET_OK_METHOD)
            break;
        amqp_message_t msg;
        rc = reply_check(c, CH_DEAD, amqp_read_message(c->conn, CH_DEAD, &msg, 0),
                         "read dead letters", NULL);
        if (rc)
            break;
        const amqp_table_t *hdr =
            msg.properties._flags & AMQP_BASIC_HEADERS_FLAG ? &msg.properties.headers : NULL;
        struct fx_delivery *d = fx_calloc(1, sizeof(*d));
        if (fx_cloudevent_decode(msg.body.bytes, msg.body.len, d, NULL) == 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                list = fx_realloc(list, cap * sizeof(*list));
            }
            d->attempt = (int)table_int(hdr, H_ATTEMPTS, 0);
            d->group = fx_strdup(group);
            d->tag = (int64_t)n;
            char *why = table_str(hdr, H_REASON);
            list[n] = (struct dead){d, why ? why : fx_strdup(""), table_int(hdr, H_DEAD_AT, 0), n};
            n++;
        } else {
            free(d); /* not a CloudEvent: nothing to show */
        }
        amqp_destroy_message(&msg);
    }
    if (c->ch_dead && c->up) {
        /* closing the channel returns every message we looked at */
        amqp_rpc_reply_t r = amqp_channel_close(c->conn, CH_DEAD, AMQP_REPLY_SUCCESS);
        c->ch_dead = 0;
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            reply_check(c, CH_DEAD, r, "close the dead-letter channel", NULL);
    }
    pump(c);
    release(c);
    pthread_mutex_unlock(&c->mu);
    qsort(list, n, sizeof(*list), dead_cmp);
    int stop = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc && !stop)
            stop = cb(ud, list[i].d, list[i].reason) != 0;
        fx_delivery_free(list[i].d);
        free(list[i].reason);
    }
    free(list);
    return rc;
}

const struct fx__bus_ops fx__bus_amqp_ops = {
    .name = "amqp",
    .scheme = "amqp",
    .open = amqp_open,
    .close = amqp_close,
    .declare = amqp_declare,
    .publish = amqp_publish,
    .receive = amqp_receive,
    .ack = amqp_ack,
    .nack = amqp_nack,
    .depth = amqp_depth,
    .dead_letters = amqp_dead_letters,
};
