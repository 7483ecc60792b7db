/* SPDX-License-Identifier: MIT */
/*
 * Bus: durable messaging between services, one interface, a backend per
 * broker chosen from the URL (local:DIR embedded today; amqp://, kafka://
 * next). Services talk only through it, even inside one process.
 *
 * Semantics every backend provides (and the conformance suite checks):
 *  - publish is durable when it returns 0 (confirmed); a batch is all or nothing
 *    on the embedded backend;
 *  - subscription groups: a group is declared with binding patterns matched
 *    against routing keys as AMQP topic exchanges do ("*" one word, "#" zero
 *    or more, words separated by "."); every group sees every matching
 *    message published after it was declared;
 *  - within a group consumers compete (threads or processes): each message
 *    goes to one of them at a time;
 *  - at-least-once: a message is redelivered until acked; a consumer that
 *    dies leaves its lease to expire (lease_ms) and the message returns;
 *  - nack: retried after a backoff (base * 2^(attempt-1), capped); after
 *    max_attempts deliveries it is dead-lettered with the reason kept;
 *  - order per key: within a group, a message is not delivered while an
 *    earlier message with the same non-empty key is pending or in flight.
 *
 * Messages are CloudEvents 1.0 (structured JSON mode) with the extensions
 * correlationid and traceparent. data is JSON text carried verbatim.
 *
 * Threads: a struct fx_bus handle is used by one thread at a time; open one
 * per thread. Handles on the same URL (in one process or several) share the
 * same queues.
 */
#ifndef FLUXO_BUS_H
#define FLUXO_BUS_H

#include "fluxo/error.h"
#include "fluxo/mem.h"

#include <stddef.h>
#include <stdint.h>

struct fx_bus;

/* An outgoing message. Strings are borrowed for the call. */
struct fx_msg {
    const char *id;          /* CloudEvent id; required (stable ids make redelivery detectable) */
    const char *type;        /* e.g. "fluxo.ingest.chunk" */
    const char *source;      /* e.g. "/fluxo/ingest" */
    const char *routing_key; /* e.g. "processed_data", "notifications.order" */
    const char *key;         /* ordering key, or NULL */
    const char *correlation_id; /* or NULL */
    const char *traceparent;    /* or NULL */
    const char *time;           /* RFC 3339; NULL = now */
    const char *data;           /* JSON text (object, array...), or NULL */
    size_t data_len;
};

/* A received message; owned by the caller, free with fx_delivery_free after ack/nack. */
struct fx_delivery {
    char *id, *type, *source, *routing_key, *key, *correlation_id, *traceparent, *time;
    char *data; /* JSON text of data (NUL-terminated), or NULL */
    size_t data_len;
    int attempt; /* 1 on first delivery */
    char *group;
    int64_t tag; /* backend's delivery handle */
};

struct fx_group_opts {
    int max_attempts;   /* deliveries before dead-letter; default 5 */
    int backoff_ms;     /* first retry delay; default 500 */
    int backoff_max_ms; /* cap; default 60000 */
    int lease_ms;       /* unacked delivery returns after this; default 60000 */
};

void fx_group_opts_init(struct fx_group_opts *o);

int fx_bus_open(const char *url, struct fx_bus **out, struct fx_err *err);
void fx_bus_close(struct fx_bus *b);

/* Create or update a group and replace its bindings (idempotent). opts NULL: defaults for a
 * new group, current options kept for an existing one. */
int fx_bus_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                   size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err);

/* Publish n messages; returns once all are durable (0) or none is (< 0). */
int fx_bus_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n, struct fx_err *err);

/* Wait up to timeout_ms (0 = poll) for one message of group:
 * 1 = *out set, 0 = nothing yet, < 0 = error. */
int fx_bus_receive(struct fx_bus *b, const char *group, int timeout_ms, struct fx_delivery **out,
                   struct fx_err *err);

/* Settle d on the handle that received it. FX_ENOTFOUND: the lease was lost (it expired and
 * the message went, or may go, to another consumer). */
int fx_bus_ack(struct fx_bus *b, struct fx_delivery *d);
/* Negative acknowledgement: retry later, or dead-letter after max_attempts. */
int fx_bus_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason);
void fx_delivery_free(struct fx_delivery *d);

/* Messages waiting or in flight in group (excluding dead letters). */
int64_t fx_bus_depth(struct fx_bus *b, const char *group);

/* Dead letters of a group, oldest first: calls cb for each (stop when cb returns non-zero). */
typedef int (*fx_bus_dead_cb)(void *ud, const struct fx_delivery *d, const char *reason);
int fx_bus_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud);

/* 1 if routing_key matches the AMQP topic pattern. */
int fx_topic_match(const char *pattern, const char *routing_key);

/* CloudEvents structured JSON: encode a message (appended to out), decode a body (data kept as
 * raw JSON text). routing_key travels as extension "routingkey", key as "partitionkey". decode
 * overwrites d's message fields (pass a zeroed d); on error they are left NULL. */
int fx_cloudevent_encode(const struct fx_msg *m, struct fx_buf *out);
int fx_cloudevent_decode(const char *body, size_t len, struct fx_delivery *d, struct fx_err *err);

#endif
