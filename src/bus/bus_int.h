/* SPDX-License-Identifier: MIT */
/*
 * Bus internals shared by the front (bus.c) and the backends (bus_<name>.c).
 *
 * A backend is one read-only descriptor, `const struct fx__bus_ops
 * fx__bus_<name>_ops`, listed in the front's table and chosen by URL scheme.
 * Every slot is set: a backend that lacks an operation points the slot at the
 * matching fx__bus_notsup_* default (FX_ENOTSUP) so the front never tests for
 * NULL. An open handle is a backend struct whose first member is struct fx_bus
 * (the front reads ->ops from it and nothing else).
 *
 * The front has already checked arguments when a slot is called: handles,
 * groups, deliveries and messages are non-NULL, names are within limits,
 * messages carry id, type, source and routing_key. Slots report user-facing
 * problems in err (when the prototype has one) and return 0 / FX_E*.
 */
#ifndef FLUXO_BUS_INT_H
#define FLUXO_BUS_INT_H

#include "fluxo/bus.h"

/* Front limits (checked before any slot is called). */
#define FX__BUS_NAME_MAX 200         /* group name, bytes */
#define FX__BUS_KEY_MAX 255          /* routing key, binding pattern, ordering key (AMQP limit) */
#define FX__BUS_BODY_MAX (16u << 20) /* encoded CloudEvent, bytes (backends enforce) */

struct fx__bus_ops {
    const char *name;   /* "local", "amqp", "kafka" */
    const char *scheme; /* URL scheme, without ':' */

    /* Open a handle on url (the whole URL, scheme included). Blocking; the
     * handle is then used by one thread at a time. */
    int (*open)(const char *url, struct fx_bus **out, struct fx_err *err);
    /* Release everything; in-flight deliveries are left to their leases. */
    void (*close)(struct fx_bus *b);
    /* Create or update group and replace its bindings; opts NULL keeps the
     * current options of an existing group (defaults for a new one). */
    int (*declare)(struct fx_bus *b, const char *group, const char *const *patterns,
                   size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err);
    /* Durable when it returns 0; all or nothing where the backend can. */
    int (*publish)(struct fx_bus *b, const struct fx_msg *msgs, size_t n, struct fx_err *err);
    /* Blocks up to timeout_ms (>= 0): 1 with *out (caller frees), 0 none, < 0 error. */
    int (*receive)(struct fx_bus *b, const char *group, int timeout_ms, struct fx_delivery **out,
                   struct fx_err *err);
    /* FX_ENOTFOUND when the lease was lost (another consumer may hold it now). */
    int (*ack)(struct fx_bus *b, struct fx_delivery *d);
    int (*nack)(struct fx_bus *b, struct fx_delivery *d, const char *reason);
    /* Pending + in-flight deliveries of group, or < 0. */
    int64_t (*depth)(struct fx_bus *b, const char *group);
    /* Calls cb with no backend lock held, so cb may use the handle. */
    int (*dead_letters)(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud);
};

struct fx_bus {
    const struct fx__bus_ops *ops;
};

/* Defaults for slots a backend does not implement: each returns FX_ENOTSUP. */
int fx__bus_notsup_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                           size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err);
int fx__bus_notsup_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n,
                           struct fx_err *err);
int fx__bus_notsup_receive(struct fx_bus *b, const char *group, int timeout_ms,
                           struct fx_delivery **out, struct fx_err *err);
int fx__bus_notsup_ack(struct fx_bus *b, struct fx_delivery *d);
int fx__bus_notsup_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason);
int64_t fx__bus_notsup_depth(struct fx_bus *b, const char *group);
int fx__bus_notsup_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud);

/* Backends (one file each). */
extern const struct fx__bus_ops fx__bus_local_ops;
extern const struct fx__bus_ops fx__bus_amqp_ops;
extern const struct fx__bus_ops fx__bus_kafka_ops;

/* Retry delay after a nack of delivery number attempt (1-based):
 * min(backoff_ms * 2^(attempt-1), backoff_max_ms), without overflow. */
int64_t fx__bus_backoff_ms(const struct fx_group_opts *o, int attempt);

#endif
