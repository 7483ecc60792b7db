/* SPDX-License-Identifier: MIT */
/*
 * Bus front: picks a backend from the URL scheme, checks arguments once for
 * every backend, and dispatches through the backend's descriptor (bus_int.h).
 * Also the backend-independent pieces: group option defaults, delivery
 * lifetime, AMQP topic matching and the nack backoff formula.
 */
#include "bus/bus_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Backends by scheme. */
static const struct fx__bus_ops *const backends[] = {
    &fx__bus_local_ops,
    &fx__bus_amqp_ops,
    &fx__bus_kafka_ops,
};

/* Every slot must be set (the front never tests for NULL at call time). */
static int ops_complete(const struct fx__bus_ops *o)
{
    return o->name && o->scheme && o->open && o->close && o->declare && o->publish && o->receive &&
           o->ack && o->nack && o->depth && o->dead_letters;
}

void fx_group_opts_init(struct fx_group_opts *o)
{
    o->max_attempts = 5;
    o->backoff_ms = 500;
    o->backoff_max_ms = 60000;
    o->lease_ms = 60000;
}

int64_t fx__bus_backoff_ms(const struct fx_group_opts *o, int attempt)
{
    int64_t d = o->backoff_ms;
    for (int i = 1; i < attempt && d < o->backoff_max_ms; i++)
        d *= 2;
    return d < o->backoff_max_ms ? d : o->backoff_max_ms;
}

void fx_delivery_free(struct fx_delivery *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->type);
    free(d->source);
    free(d->routing_key);
    free(d->key);
    free(d->correlation_id);
    free(d->traceparent);
    free(d->time);
    free(d->data);
    free(d->group);
    free(d);
}

/* ---- topic matching --------------------------------------------------- */

/*
 * Words of a routing key or pattern, as RabbitMQ splits them: "" has no
 * words, "a." has two ("a" and ""). A cursor is copied freely (backtracking).
 */
struct words {
    const char *p; /* start of the next word */
    int done;
};

static struct words words_of(const char *s)
{
    struct words w = {s, *s == '\0'};
    return w;
}

/* Peek the next word into w and n; returns 0 when there is none. */
static int word_peek(const struct words *c, const char **w, size_t *n)
{
    if (c->done)
        return 0;
    const char *e = strchr(c->p, '.');
    *w = c->p;
    *n = e ? (size_t)(e - c->p) : strlen(c->p);
    return 1;
}

static void word_next(struct words *c)
{
    const char *e = strchr(c->p, '.');
    if (e)
        c->p = e + 1;
    else
        c->done = 1;
}

static int is_word(const char *w, size_t n, char c)
{
    return n == 1 && w[0] == c;
}

/*
 * Glob matching over words: '*' is one word, '#' any run of words (zero
 * included). The classic single-backtrack-point algorithm is exact here:
 * on a mismatch only the most recent '#' needs to swallow one more word.
 */
int fx_topic_match(const char *pattern, const char *routing_key)
{
    if (!pattern || !routing_key)
        return 0;
    struct words p = words_of(pattern), k = words_of(routing_key);
    struct words star_p = {NULL, 1}, star_k = {NULL, 1};
    int have_star = 0;
    const char *pw, *kw;
    size_t pn, kn;
    for (;;) {
        int hp = word_peek(&p, &pw, &pn);
        int hk = word_peek(&k, &kw, &kn);
        if (!hk) {
            /* key consumed: the rest of the pattern must be all '#' */
            while (hp && is_word(pw, pn, '#')) {
                word_next(&p);
                hp = word_peek(&p, &pw, &pn);
            }
            if (!hp)
                return 1;
        } else if (hp && is_word(pw, pn, '#')) {
            word_next(&p);
            star_p = p; /* '#' matches zero words for now */
            star_k = k;
            have_star = 1;
            continue;
        } else if (hp && (is_word(pw, pn, '*') || (pn == kn && memcmp(pw, kw, pn) == 0))) {
            word_next(&p);
            word_next(&k);
            continue;
        }
        if (!have_star || star_k.done)
            return 0;
        word_next(&star_k); /* the last '#' takes one more word */
        p = star_p;
        k = star_k;
    }
}

/* ---- argument checks -------------------------------------------------- */

static int check_text(struct fx_err *err, const char *what, const char *s, size_t max, int empty_ok)
{
    if (!s)
        return fx_err_set(err, FX_EINVAL, "%s is required", what);
    size_t n = strlen(s);
    if (n == 0 && !empty_ok)
        return fx_err_set(err, FX_EINVAL, "%s is empty", what);
    if (n > max) {
        fx_err_value(err, s, n);
        return fx_err_set(err, FX_EINVAL, "%s is longer than %zu bytes", what, max);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            fx_err_value(err, s, n);
            return fx_err_set(err, FX_EINVAL, "%s contains a control character", what);
        }
    }
    return 0;
}

static int check_opts(const struct fx_group_opts *o, struct fx_err *err)
{
    if (o->max_attempts < 1)
        return fx_err_set(err, FX_EINVAL, "max_attempts must be >= 1 (got %d)", o->max_attempts);
    if (o->backoff_ms < 0 || o->backoff_max_ms < o->backoff_ms)
        return fx_err_set(err, FX_EINVAL,
                          "backoff must satisfy 0 <= backoff_ms <= backoff_max_ms (got %d, %d)",
                          o->backoff_ms, o->backoff_max_ms);
    if (o->lease_ms < 1)
        return fx_err_set(err, FX_EINVAL, "lease_ms must be >= 1 (got %d)", o->lease_ms);
    return 0;
}

static int check_msg(const struct fx_msg *m, size_t i, struct fx_err *err)
{
    static const size_t attr_max = 1024;
    int rc;
    char what[64];
#define CHECK(field, label, max, empty_ok)                                                         \
    do {                                                                                           \
        snprintf(what, sizeof(what), "message %zu: " label, i + 1);                                \
        if ((rc = check_text(err, what, m->field, max, empty_ok)))                                 \
            goto fail;                                                                             \
    } while (0)
    CHECK(id, "id", attr_max, 0);
    CHECK(type, "type", attr_max, 0);
    CHECK(source, "source", attr_max, 0);
    CHECK(routing_key, "routing_key", (size_t)FX__BUS_KEY_MAX, 0);
    if (m->key)
        CHECK(key, "key", (size_t)FX__BUS_KEY_MAX, 1);
    if (m->correlation_id)
        CHECK(correlation_id, "correlation_id", attr_max, 1);
    if (m->traceparent)
        CHECK(traceparent, "traceparent", attr_max, 1);
    if (m->time)
        CHECK(time, "time", (size_t)64, 0);
#undef CHECK
    if (!m->data && m->data_len)
        return fx_err_set(err, FX_EINVAL, "message %zu: data is NULL but data_len is %zu", i + 1,
                          m->data_len);
    if (m->data && !m->data_len)
        return fx_err_set(err, FX_EINVAL, "message %zu: data is empty (use NULL for no data)",
                          i + 1);
    return 0;
fail:
    return rc;
}

/* ---- front ------------------------------------------------------------ */

int fx_bus_open(const char *url, struct fx_bus **out, struct fx_err *err)
{
    fx_err_clear(err);
    if (!out)
        return fx_err_set(err, FX_EINVAL, "out is NULL");
    *out = NULL;
    if (!url || !*url)
        return fx_err_set(err, FX_EINVAL, "bus URL is empty");
    const char *colon = strchr(url, ':');
    size_t slen = colon ? (size_t)(colon - url) : 0;
    for (size_t i = 0; colon && i < sizeof(backends) / sizeof(backends[0]); i++) {
        const struct fx__bus_ops *o = backends[i];
        if (strlen(o->scheme) != slen || strncmp(url, o->scheme, slen) != 0)
            continue;
        if (!ops_complete(o))
            return fx_err_set(err, FX_EBUS, "bus backend %s has an empty slot", o->name);
        int rc = o->open(url, out, err);
        if (rc == 0)
            (*out)->ops = o;
        return rc;
    }
    fx_err_value(err, url, slen ? slen : strlen(url));
    return fx_err_set(err, FX_ENOTSUP,
                      "unknown bus URL scheme (expected local:DIR, amqp://... or kafka://...)");
}

void fx_bus_close(struct fx_bus *b)
{
    if (b)
        b->ops->close(b);
}

int fx_bus_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                   size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err)
{
    fx_err_clear(err);
    int rc;
    if (!b)
        return fx_err_set(err, FX_EINVAL, "bus handle is NULL");
    if ((rc = check_text(err, "group", group, FX__BUS_NAME_MAX, 0)))
        return rc;
    if (npatterns && !patterns)
        return fx_err_set(err, FX_EINVAL, "patterns is NULL");
    for (size_t i = 0; i < npatterns; i++) {
        if ((rc = check_text(err, "binding pattern", patterns[i], FX__BUS_KEY_MAX, 1)))
            return rc;
    }
    if (opts && (rc = check_opts(opts, err)))
        return rc;
    return b->ops->declare(b, group, patterns, npatterns, opts, err);
}

int fx_bus_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n, struct fx_err *err)
{
    fx_err_clear(err);
    int rc;
    if (!b)
        return fx_err_set(err, FX_EINVAL, "bus handle is NULL");
    if (n && !msgs)
        return fx_err_set(err, FX_EINVAL, "msgs is NULL");
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_msg(&msgs[i], i, err)))
            return rc;
    }
    if (n == 0)
        return 0;
    return b->ops->publish(b, msgs, n, err);
}

int fx_bus_receive(struct fx_bus *b, const char *group, int timeout_ms, struct fx_delivery **out,
                   struct fx_err *err)
{
    fx_err_clear(err);
    int rc;
    if (!b || !out)
        return fx_err_set(err, FX_EINVAL, "bus handle or out is NULL");
    *out = NULL;
    if ((rc = check_text(err, "group", group, FX__BUS_NAME_MAX, 0)))
        return rc;
    if (timeout_ms < 0)
        return fx_err_set(err, FX_EINVAL, "timeout_ms must be >= 0 (got %d)", timeout_ms);
    return b->ops->receive(b, group, timeout_ms, out, err);
}

int fx_bus_ack(struct fx_bus *b, struct fx_delivery *d)
{
    if (!b || !d || !d->group)
        return FX_EINVAL;
    return b->ops->ack(b, d);
}

int fx_bus_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason)
{
    if (!b || !d || !d->group)
        return FX_EINVAL;
    return b->ops->nack(b, d, reason && *reason ? reason : "nack");
}

int64_t fx_bus_depth(struct fx_bus *b, const char *group)
{
    if (!b || check_text(NULL, "group", group, FX__BUS_NAME_MAX, 0))
        return FX_EINVAL;
    return b->ops->depth(b, group);
}

int fx_bus_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud)
{
    if (!b || !cb || check_text(NULL, "group", group, FX__BUS_NAME_MAX, 0))
        return FX_EINVAL;
    return b->ops->dead_letters(b, group, cb, ud);
}

/* ---- defaults for empty slots ----------------------------------------- */

int fx__bus_notsup_declare(struct fx_bus *b, const char *group, const char *const *patterns,
                           size_t npatterns, const struct fx_group_opts *opts, struct fx_err *err)
{
    (void)group, (void)patterns, (void)npatterns, (void)opts;
    return fx_err_set(err, FX_ENOTSUP, "bus backend %s cannot declare groups", b->ops->name);
}

int fx__bus_notsup_publish(struct fx_bus *b, const struct fx_msg *msgs, size_t n,
                           struct fx_err *err)
{
    (void)msgs, (void)n;
    return fx_err_set(err, FX_ENOTSUP, "bus backend %s cannot publish", b->ops->name);
}

int fx__bus_notsup_receive(struct fx_bus *b, const char *group, int timeout_ms,
                           struct fx_delivery **out, struct fx_err *err)
{
    (void)group, (void)timeout_ms, (void)out;
    return fx_err_set(err, FX_ENOTSUP, "bus backend %s cannot receive", b->ops->name);
}

int fx__bus_notsup_ack(struct fx_bus *b, struct fx_delivery *d)
{
    (void)b, (void)d;
    return FX_ENOTSUP;
}

int fx__bus_notsup_nack(struct fx_bus *b, struct fx_delivery *d, const char *reason)
{
    (void)b, (void)d, (void)reason;
    return FX_ENOTSUP;
}

int64_t fx__bus_notsup_depth(struct fx_bus *b, const char *group)
{
    (void)b, (void)group;
    return FX_ENOTSUP;
}

int fx__bus_notsup_dead_letters(struct fx_bus *b, const char *group, fx_bus_dead_cb cb, void *ud)
{
    (void)b, (void)group, (void)cb, (void)ud;
    return FX_ENOTSUP;
}
