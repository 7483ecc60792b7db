/* SPDX-License-Identifier: MIT */
/*
 * Metrics registry rendered in the Prometheus text exposition format 0.0.4
 * (served at /metrics, Content-Type "text/plain; version=0.0.4; charset=utf-8").
 *
 * A registry holds families (name, help, type, label names); a family holds
 * series, one per combination of label values. Updating a series is one relaxed
 * atomic operation (a compare-and-swap loop for doubles) and takes no lock, so
 * the request path stays cheap: look a series up once and keep the pointer.
 * fx_metric_series hashes the label values and probes a small table behind the
 * family's mutex (tens of nanoseconds): fine per request for dynamic labels
 * such as route x status, but a pointer cached at start-up is cheaper still.
 *
 * Everything here is thread-safe. Families and series live as long as their
 * registry; none is ever removed. A family holds at most FX_METRICS_MAX_SERIES
 * series, so labels fed from input (a path, a status) cannot grow memory without
 * bound: past the cap fx_metric_series returns NULL and logs once. Every update
 * function accepts NULL and does nothing, so a metric that failed to register
 * never breaks the code it measures.
 */
#ifndef FLUXO_METRICS_H
#define FLUXO_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct fx_buf;

/* Most series one family may hold. */
#define FX_METRICS_MAX_SERIES 10000

/* Content-Type of fx_metrics_render's output. */
#define FX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A registry. */
struct fx_metrics;

/* The process-wide registry, created on first use and never freed. */
struct fx_metrics *fx_metrics_default(void);

/* A new, empty registry (tests, embedding); never NULL. */
struct fx_metrics *fx_metrics_new(void);

/* Free a registry with its families and series: no thread may still use any of
 * them. NULL and the default registry are ignored. */
void fx_metrics_free(struct fx_metrics *m);

/* A metric family: name, help, type and label names. */
struct fx_metric_family;

/*
 * Register a counter (or gauge) family, or return the one already registered
 * under that name if it has the same type and label names (its help is kept).
 * name must match [a-zA-Z_:][a-zA-Z0-9_:]*; label_names is a NULL-terminated
 * array of distinct names matching [a-zA-Z_][a-zA-Z0-9_]* and not starting with
 * "__", or NULL for none. help may be NULL. Strings are copied. Returns NULL, and
 * logs why, on an invalid name or a clash with an existing family.
 * A family without labels has its one series from the start, so it renders 0
 * before the first update.
 */
struct fx_metric_family *fx_metrics_counter(struct fx_metrics *m, const char *name,
                                            const char *help, const char *const *label_names);
struct fx_metric_family *fx_metrics_gauge(struct fx_metrics *m, const char *name, const char *help,
                                          const char *const *label_names);

/*
 * Register a histogram family (see fx_metrics_counter for the rules); "le" is not
 * a valid label name here. bounds are the buckets' upper bounds, finite and
 * strictly increasing (the +Inf bucket is implicit; a trailing +Inf is accepted
 * and ignored); bounds NULL with nbounds 0 means Prometheus' defaults
 * {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}. Returns the existing family
 * if one with the same name, labels and bounds exists; NULL on error.
 */
struct fx_metric_family *fx_metrics_histogram(struct fx_metrics *m, const char *name,
                                              const char *help, const char *const *label_names,
                                              const double *bounds, size_t nbounds);

/* One label-value combination of a family. */
struct fx_series;

/*
 * The series of f for label_values (one string per label name of the family, in
 * the same order; NULL for a family without labels), created on first use with
 * the values copied. Takes the family's mutex briefly. Returns NULL if f is
 * NULL, a value is NULL, or the family already holds FX_METRICS_MAX_SERIES series.
 */
struct fx_series *fx_metric_series(struct fx_metric_family *f, const char *const *label_values);

/* Update a series: lock-free, never blocks. NULL s, or a series of another type,
 * is ignored. Counters wrap at 2^64. fx_histogram_observe ignores NaN. */
void fx_counter_add(struct fx_series *s, uint64_t v);
void fx_gauge_set(struct fx_series *s, double v);
void fx_gauge_add(struct fx_series *s, double v);
void fx_histogram_observe(struct fx_series *s, double v);

/*
 * A gauge without labels whose value fn(ud) computes at render time (queue
 * depth, outbox lag). Registering the same name again rebinds it to the new fn
 * and ud (a restarted server takes its gauges over). fn runs on the rendering
 * thread holding only this gauge's own lock: it may take its own locks and must
 * not block for long or call fx_metrics_* on the same registry. Returns 0,
 * FX_EINVAL (bad name, NULL fn) or FX_EEXIST (the name is another kind of metric).
 */
int fx_metrics_gauge_fn(struct fx_metrics *m, const char *name, const char *help,
                        double (*fn)(void *ud), void *ud);

/*
 * Detach the callback of gauge name if it is still bound to ud; the gauge then
 * renders nothing until registered again. Waits for a render running the
 * callback, so ud may be freed as soon as this returns; never call it while
 * holding a lock the callback takes. Returns 0, or FX_ENOTFOUND (no such gauge,
 * or it is bound to another ud).
 */
int fx_metrics_gauge_fn_remove(struct fx_metrics *m, const char *name, void *ud);

/*
 * Append every family to out in the text format 0.0.4: families and their series
 * in creation order, each family with # HELP and # TYPE lines; histograms as
 * cumulative name_bucket{le="..."} lines ending with le="+Inf", then name_sum and
 * name_count. Help text escapes backslash and newline; label values escape
 * backslash, double quote and newline. Values that are updated while rendering
 * appear either before or after the update; a histogram's _count is always its
 * +Inf bucket. Returns 0 or FX_ETOOBIG (out's limit; out then holds a prefix).
 */
int fx_metrics_render(struct fx_metrics *m, struct fx_buf *out);

#endif
