/* SPDX-License-Identifier: MIT */
/*
 * Service threads. Each thread opens its own store and bus handles (they are
 * single-threaded by contract) and loops until asked to stop; a loop that
 * hits an error logs it and backs off instead of exiting, so a locked
 * database or a bad message never takes the process down.
 *
 * Coordination between processes on one data dir uses flock(2):
 *  - relay.lock (exclusive): one relay drains the outbox at a time;
 *  - distribution.lock (shared by every distribution worker): lets
 *    `fluxo import` know whether a distribution service is running.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "fluxo/bus.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/services.h"
#include "fluxo/util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

enum kind { K_WATCH, K_RELAY, K_APPLIED, K_DIST };

struct worker {
    struct fx_services *svc;
    enum kind kind;
    pthread_t tid;
    int started;
};

struct fx_services {
    struct fx_runtime *rt;
    volatile int stop;
    size_t n;
    struct worker *w;
};

static int lock_file(const struct fx_runtime *rt, const char *name, int how)
{
    char *path = fx_asprintf("%s/%s", rt->data_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0)
        return -1;
    if (flock(fd, how | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int fx_distribution_running(const struct fx_runtime *rt)
{
    int fd = lock_file(rt, "distribution.lock", LOCK_EX);
    if (fd < 0)
        return 1;
    close(fd);
    return 0;
}

static void backoff(struct fx_services *s, int ms)
{
    for (int waited = 0; waited < ms && !s->stop; waited += 20)
        fx_sleep_ms(20);
}

static void run_watch(struct fx_services *s)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    struct fx_watch *w = NULL;
    while (!s->stop && (fx_ingest_open(s->rt, &ig, &err) || fx_watch_open(s->rt, ig, &w, &err))) {
        fx_log_error("watch", "cannot start: %s", err.reason);
        fx_ingest_close(ig);
        ig = NULL;
        backoff(s, 2000);
    }
    int interval = (int)fx_config_int(s->rt->cfg, "watch.interval_ms");
    fx_log_info("watch", "watching %s", s->rt->inbox);
    while (!s->stop) {
        if (fx_watch_scan(w) < 0)
            fx_log_error("watch", "cannot scan %s", s->rt->inbox);
        backoff(s, interval);
    }
    fx_watch_close(w);
    fx_ingest_close(ig);
}

static void run_relay(struct fx_services *s)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    struct fx_bus *bus = NULL;
    int lock = -1;
    int interval = (int)fx_config_int(s->rt->cfg, "relay.interval_ms");
    int64_t batch = fx_config_int(s->rt->cfg, "relay.batch");
    while (!s->stop) {
        if (lock < 0 && (lock = lock_file(s->rt, "relay.lock", LOCK_EX)) < 0) {
            backoff(s, 500); /* another process relays; take over if it goes away */
            continue;
        }
        if (!ig && fx_ingest_open(s->rt, &ig, &err)) {
            fx_log_error("relay", "cannot open ingest store: %s", err.reason);
            ig = NULL;
            backoff(s, 2000);
            continue;
        }
        if (!bus &&
            (fx_bus_open(s->rt->bus_url, &bus, &err) || fx_services_declare(s->rt, bus, &err))) {
            fx_log_error("relay", "cannot open bus: %s", err.reason);
            fx_bus_close(bus);
            bus = NULL;
            backoff(s, 2000);
            continue;
        }
        int rc = fx_relay_once(ig, bus, &err);
        if (rc < 0) {
            fx_log_error("relay", "publish failed: %s", err.reason);
            backoff(s, 1000);
        } else if (rc < batch) {
            /* Nothing or a partial batch: wait for more. Polling again at
             * once under a steady trickle of small chunks made a bus commit
             * and an outbox commit per chunk, and every outbox commit makes
             * the API writer's connection drop its page cache. A full batch
             * means a backlog: go on at once. */
            backoff(s, interval);
        }
    }
    /* drain what is already staged before exiting, so a graceful stop flushes the outbox */
    while (ig && bus && fx_relay_once(ig, bus, &err) > 0)
        ;
    fx_bus_close(bus);
    fx_ingest_close(ig);
    if (lock >= 0)
        close(lock);
}

static void run_applied(struct fx_services *s)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    struct fx_bus *bus = NULL;
    while (!s->stop) {
        if (!ig && fx_ingest_open(s->rt, &ig, &err)) {
            ig = NULL;
            backoff(s, 2000);
            continue;
        }
        if (!bus &&
            (fx_bus_open(s->rt->bus_url, &bus, &err) || fx_services_declare(s->rt, bus, &err))) {
            fx_bus_close(bus);
            bus = NULL;
            backoff(s, 2000);
            continue;
        }
        if (fx_applied_once(ig, bus, 200, &err) < 0) {
            fx_log_error("ingest", "applied consumer: %s", err.reason);
            backoff(s, 500);
        }
    }
    fx_bus_close(bus);
    fx_ingest_close(ig);
}

static void run_dist(struct fx_services *s)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_distribution *d = NULL;
    int lock = lock_file(s->rt, "distribution.lock", LOCK_SH);
    unsigned long chunks = 0;
    while (!s->stop) {
        if (!d && fx_distribution_open(s->rt, &d, &err)) {
            fx_log_error("distribution", "cannot start: %s", err.reason);
            d = NULL;
            backoff(s, 2000);
            continue;
        }
        int rc = fx_distribution_once(d, 200, &err);
        if (rc < 0)
            backoff(s, 100);
        else
            chunks += (unsigned long)rc;
    }
    fx_log_info("distribution", "worker stopped after applying %lu chunks", chunks);
    fx_distribution_close(d);
    if (lock >= 0)
        close(lock);
}

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    static const char *const names[] = {"fx-watch", "fx-relay", "fx-applied", "fx-dist"};
    pthread_setname_np(pthread_self(), names[w->kind]);
    switch (w->kind) {
    case K_WATCH:
        run_watch(w->svc);
        break;
    case K_RELAY:
        run_relay(w->svc);
        break;
    case K_APPLIED:
        run_applied(w->svc);
        break;
    case K_DIST:
        run_dist(w->svc);
        break;
    }
    return NULL;
}

int fx_services_start(struct fx_runtime *rt, unsigned mask, struct fx_services **out,
                      struct fx_err *err)
{
    struct fx_services *s = fx_calloc(1, sizeof(*s));
    s->rt = rt;
    size_t workers =
        (mask & FX_SVC_DISTRIBUTION) ? (size_t)fx_config_int(rt->cfg, "distribution.workers") : 0;
    s->w = fx_calloc(3 + workers, sizeof(*s->w));
    if (mask & FX_SVC_WATCH)
        s->w[s->n++].kind = K_WATCH;
    if (mask & FX_SVC_RELAY)
        s->w[s->n++].kind = K_RELAY;
    if (mask & FX_SVC_APPLIED)
        s->w[s->n++].kind = K_APPLIED;
    for (size_t i = 0; i < workers; i++)
        s->w[s->n++].kind = K_DIST;
    for (size_t i = 0; i < s->n; i++) {
        s->w[i].svc = s;
        if (pthread_create(&s->w[i].tid, NULL, thread_main, &s->w[i]) != 0) {
            fx_err_set(err, FX_ENOMEM, "cannot start service thread");
            fx_services_stop(s);
            return FX_ENOMEM;
        }
        s->w[i].started = 1;
    }
    *out = s;
    return 0;
}

void fx_services_stop(struct fx_services *s)
{
    if (!s)
        return;
    s->stop = 1;
    for (size_t i = 0; i < s->n; i++)
        if (s->w[i].started)
            pthread_join(s->w[i].tid, NULL);
    free(s->w);
    free(s);
}

int fx_services_migrate(struct fx_runtime *rt, struct fx_err *err)
{
    struct fx_ingest *ig = NULL;
    struct fx_distribution *d = NULL;
    int rc = fx_ingest_open(rt, &ig, err);
    if (rc == 0)
        rc = fx_distribution_open(rt, &d, err);
    fx_distribution_close(d);
    fx_ingest_close(ig);
    return rc;
}
