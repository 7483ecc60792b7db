/* SPDX-License-Identifier: MIT */
/*
 * Metrics registry and its Prometheus text rendering (format 0.0.4).
 *
 * Design. Three levels, each with its own lifetime rule so that the hot path
 * takes no lock:
 *   - the registry's mutex guards its array of families (registration, render's
 *     snapshot of the array);
 *   - each family's mutex guards its series: the creation-order array and the
 *     open-addressing hash table on the label values;
 *   - a series' values are atomics updated with relaxed ordering: a scrape
 *     needs no ordering between two series, only untorn values.
 * Families and series are only ever added, and freed together with the registry,
 * so a pointer handed out stays valid without reference counting; render copies
 * the pointer arrays under the locks and formats without them, so a scrape never
 * blocks series creation for longer than a memcpy. A gauge callback runs under
 * its own family's lock only, which is what lets fx_metrics_gauge_fn_remove wait
 * for a running call before the callback's owner goes away. Gauges and histogram sums are doubles
 * kept as their bit patterns in 64-bit atomics (C11 has no atomic add for floating types that every
 * compiler inlines), added with a compare-and-swap loop. A histogram keeps one non-cumulative
 * counter per bucket and no separate count: render sums the buckets, so _count always equals the
 * +Inf bucket even mid-update.
 */
#include "fluxo/metrics.h"
#include "fluxo/error.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_GAUGE_FN };

static const char *const kind_names[] = {"counter", "gauge", "histogram", "gauge"};

struct fx_series {
    enum kind kind; /* copied from the family: updates check it without a second load */
    struct fx_metric_family *fam;
    uint64_t hash;
    char **values;          /* fam->nlabels copies */
    _Atomic uint64_t value; /* counter: the count; gauge: the double's bits */
    _Atomic uint64_t sum;   /* histogram: the double's bits */
    _Atomic uint64_t nb[];  /* histogram: per bucket, non-cumulative; [nbounds] is +Inf */
};

struct fx_metric_family {
    enum kind kind;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    struct fx_series *single; /* the one series of a family without labels */

    pthread_mutex_t mu; /* guards everything below */
    double (*fn)(void *ud);
    void *ud;
    struct fx_series **order; /* creation order */
    size_t n, cap;
    struct fx_series **table; /* open addressing, linear probing, power-of-two size */
    size_t tcap;
    int full_logged;
};

struct fx_metrics {
    pthread_mutex_t mu;
    struct fx_metric_family **fams;
    size_t n, cap;
};

static const double default_bounds[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

/* --- doubles in 64-bit atomics ------------------------------------------------ */

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* --- names ------------------------------------------------------------------- */

static int valid_name(const char *s, int colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static size_t count_labels(const char *const *labels)
{
    size_t n = 0;
    while (labels && labels[n])
        n++;
    return n;
}

/* 0 if the label names are usable for a family of kind k; logs why not. */
static int check_labels(const char *metric, const char *const *labels, size_t n, enum kind k)
{
    for (size_t i = 0; i < n; i++) {
        if (!valid_name(labels[i], 0) || strncmp(labels[i], "__", 2) == 0) {
            fx_log_error("metrics",
                         "metric %s: invalid label name '%s': must match [a-zA-Z_][a-zA-Z0-9_]* "
                         "and not start with __",
                         metric, labels[i]);
            return FX_EINVAL;
        }
        if (k == K_HISTOGRAM && strcmp(labels[i], "le") == 0) {
            fx_log_error("metrics", "metric %s: a histogram cannot have a label named le", metric);
            return FX_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(labels[i], labels[j]) == 0) {
                fx_log_error("metrics", "metric %s: label name '%s' is listed twice", metric,
                             labels[i]);
                return FX_EINVAL;
            }
        }
    }
    return 0;
}

static int has_suffix_of(const char *name, const char *base)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(name + n, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

/* A histogram also writes name_bucket, name_sum and name_count: another family
 * under one of those names would make the exposition ambiguous. */
static struct fx_metric_family *derived_clash(const struct fx_metrics *m, const char *name,
                                              enum kind k)
{
    for (size_t i = 0; i < m->n; i++) {
        struct fx_metric_family *e = m->fams[i];
        if ((e->kind == K_HISTOGRAM && has_suffix_of(name, e->name)) ||
            (k == K_HISTOGRAM && has_suffix_of(e->name, name)))
            return e;
    }
    return NULL;
}

static struct fx_metric_family *find_family(const struct fx_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->fams[i]->name, name) == 0)
            return m->fams[i];
    }
    return NULL;
}

/* "a counter with labels (route, status)", for messages about clashes. */
static void describe(char *buf, size_t cap, enum kind k, const char *const *labels, size_t nlabels,
                     size_t nbounds)
{
    size_t len = (size_t)snprintf(buf, cap, "a %s", kind_names[k]);
    if (k == K_GAUGE_FN) {
        snprintf(buf + len, cap - len, " computed at scrape time");
        return;
    }
    len += (size_t)snprintf(buf + len, cap - len, " with labels (");
    for (size_t i = 0; i < nlabels && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", labels[i]);
    if (len < cap)
        len += (size_t)snprintf(buf + len, cap - len, ")");
    if (k == K_HISTOGRAM && len < cap)
        snprintf(buf + len, cap - len, " and %zu bucket bounds", nbounds);
}

static int same_shape(const struct fx_metric_family *f, enum kind k, const char *const *labels,
                      size_t nlabels, const double *bounds, size_t nbounds)
{
    if (f->kind != k || f->nlabels != nlabels || f->nbounds != nbounds)
        return 0;
    for (size_t i = 0; i < nlabels; i++) {
        if (strcmp(f->labels[i], labels[i]) != 0)
            return 0;
    }
    for (size_t i = 0; i < nbounds; i++) {
        if (f->bounds[i] != bounds[i])
            return 0;
    }
    return 1;
}

/* --- series -------------------------------------------------------------------- */

static struct fx_series *series_new(struct fx_metric_family *f, uint64_t hash,
                                    const char *const *values)
{
    size_t nb = f->kind == K_HISTOGRAM ? f->nbounds + 1 : 0;
    struct fx_series *s = fx_malloc(sizeof(*s) + nb * sizeof(s->nb[0]));
    s->kind = f->kind;
    s->fam = f;
    s->hash = hash;
    s->values = f->nlabels ? fx_calloc(f->nlabels, sizeof(char *)) : NULL;
    for (size_t i = 0; values && i < f->nlabels; i++)
        s->values[i] = fx_strdup(values[i]);
    atomic_init(&s->value, f->kind == K_GAUGE ? dbits(0.0) : 0);
    atomic_init(&s->sum, dbits(0.0));
    for (size_t i = 0; i < nb; i++)
        atomic_init(&s->nb[i], 0);
    return s;
}

static void series_free(struct fx_series *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s);
}

/* FNV-1a over the values, each followed by a 0xff byte (never in UTF-8) so that
 * ("ab", "c") and ("a", "bc") hash apart. 0 if a value is NULL. */
static int hash_values(const char *const *values, size_t n, uint64_t *out)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        if (!values[i])
            return 0;
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL;
    }
    *out = h;
    return 1;
}

static int same_values(const struct fx_series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->values[i], values[i]) != 0)
            return 0;
    }
    return 1;
}

/* Insert into the hash table; the caller holds f->mu and made room. */
static void table_put(struct fx_metric_family *f, struct fx_series *s)
{
    size_t mask = f->tcap - 1;
    size_t i = (size_t)s->hash & mask;
    while (f->table[i])
        i = (i + 1) & mask;
    f->table[i] = s;
}

/* Keep the table at most half full so probes stay short. Caller holds f->mu. */
static void table_reserve(struct fx_metric_family *f, size_t n)
{
    if (n * 2 <= f->tcap)
        return;
    size_t old_cap = f->tcap;
    struct fx_series **old = f->table;
    f->tcap = old_cap ? old_cap * 2 : 16;
    while (n * 2 > f->tcap)
        f->tcap *= 2;
    f->table = fx_calloc(f->tcap, sizeof(*f->table));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i])
            table_put(f, old[i]);
    }
    free(old);
}

static void order_append(struct fx_metric_family *f, struct fx_series *s)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->order = fx_realloc(f->order, f->cap * sizeof(*f->order));
    }
    f->order[f->n++] = s;
}

struct fx_series *fx_metric_series(struct fx_metric_family *f, const char *const *label_values)
{
    if (!f || f->kind == K_GAUGE_FN)
        return NULL;
    if (f->nlabels == 0)
        return f->single;
    uint64_t h;
    if (!label_values || !hash_values(label_values, f->nlabels, &h))
        return NULL;

    struct fx_series *s = NULL;
    pthread_mutex_lock(&f->mu);
    size_t mask = f->tcap - 1;
    for (size_t i = (size_t)h & mask; f->table[i]; i = (i + 1) & mask) {
        if (f->table[i]->hash == h && same_values(f->table[i], label_values, f->nlabels)) {
            s = f->table[i];
            goto out;
        }
    }
    if (f->n >= FX_METRICS_MAX_SERIES) {
        if (!f->full_logged)
            fx_log_error("metrics",
                         "metric %s: %d series already, the most one family may hold; new label "
                         "values are not counted (are labels fed with unbounded input?)",
                         f->name, FX_METRICS_MAX_SERIES);
        f->full_logged = 1;
        goto out;
    }
    s = series_new(f, h, label_values);
    table_reserve(f, f->n + 1);
    table_put(f, s);
    order_append(f, s);
out:
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* --- updates (hot path) -------------------------------------------------------- */

void fx_counter_add(struct fx_series *s, uint64_t v)
{
    if (s && s->kind == K_COUNTER)
        atomic_fetch_add_explicit(&s->value, v, memory_order_relaxed);
}

void fx_gauge_set(struct fx_series *s, double v)
{
    if (s && s->kind == K_GAUGE)
        atomic_store_explicit(&s->value, dbits(v), memory_order_relaxed);
}

void fx_gauge_add(struct fx_series *s, double v)
{
    if (s && s->kind == K_GAUGE)
        atomic_add_double(&s->value, v);
}

void fx_histogram_observe(struct fx_series *s, double v)
{
    if (!s || s->kind != K_HISTOGRAM || isnan(v))
        return;
    /* first bucket whose bound is >= v (le is inclusive); nbounds is +Inf */
    const double *b = s->fam->bounds;
    size_t lo = 0, hi = s->fam->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->nb[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->sum, v);
}

/* --- registry ------------------------------------------------------------------ */

struct fx_metrics *fx_metrics_new(void)
{
    struct fx_metrics *m = fx_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static struct fx_metrics *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    default_registry = fx_metrics_new();
}

struct fx_metrics *fx_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

static void family_free(struct fx_metric_family *f)
{
    for (size_t i = 0; i < f->n; i++)
        series_free(f->order[i], f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->order);
    free(f->table);
    free(f->bounds);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void fx_metrics_free(struct fx_metrics *m)
{
    /* the default registry is shared by the whole process: nobody owns it */
    if (!m || m == default_registry)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/*
 * Register a family, or return the existing one of the same name and shape.
 * Validation happens before the lock; the clash checks under it.
 */
static struct fx_metric_family *family_get(struct fx_metrics *m, enum kind k, const char *name,
                                           const char *help, const char *const *labels,
                                           const double *bounds, size_t nbounds,
                                           double (*fn)(void *ud), void *ud)
{
    if (!m)
        return NULL;
    if (!valid_name(name, 1)) {
        fx_log_error("metrics", "invalid metric name '%s': must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                     name ? name : "(null)");
        return NULL;
    }
    size_t nlabels = count_labels(labels);
    if (check_labels(name, labels, nlabels, k))
        return NULL;

    struct fx_metric_family *f = NULL, *rebind = NULL;
    pthread_mutex_lock(&m->mu);
    struct fx_metric_family *e = find_family(m, name);
    if (e) {
        if (k == K_GAUGE_FN && e->kind == K_GAUGE_FN) {
            /* the latest owner wins (a restarted server); rebound after the registry
             * lock is released, since fn runs under the family's lock */
            f = rebind = e;
        } else if (k != K_GAUGE_FN && same_shape(e, k, labels, nlabels, bounds, nbounds)) {
            f = e;
        } else {
            char have[256], want[256];
            describe(have, sizeof(have), e->kind, (const char *const *)e->labels, e->nlabels,
                     e->nbounds);
            describe(want, sizeof(want), k, labels, nlabels, nbounds);
            fx_log_error("metrics",
                         "metric %s is already registered as %s; cannot register it "
                         "again as %s",
                         name, have, want);
        }
        goto out;
    }
    e = derived_clash(m, name, k);
    if (e) {
        const char *h = e->kind == K_HISTOGRAM && has_suffix_of(name, e->name) ? e->name : name;
        fx_log_error("metrics",
                     "metric %s clashes with %s: histogram %s writes the series %s_bucket, "
                     "%s_sum and %s_count",
                     name, e->name, h, h, h, h);
        goto out;
    }

    f = fx_calloc(1, sizeof(*f));
    f->kind = k;
    f->name = fx_strdup(name);
    f->help = fx_strdup(help ? help : "");
    f->nlabels = nlabels;
    f->labels = nlabels ? fx_calloc(nlabels, sizeof(char *)) : NULL;
    for (size_t i = 0; i < nlabels; i++)
        f->labels[i] = fx_strdup(labels[i]);
    f->nbounds = nbounds;
    if (nbounds) {
        f->bounds = fx_malloc(nbounds * sizeof(double));
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
    }
    f->fn = fn;
    f->ud = ud;
    pthread_mutex_init(&f->mu, NULL);
    if (k != K_GAUGE_FN) {
        /* the table always exists, so lookups need no empty-table branch */
        table_reserve(f, 1);
        if (nlabels == 0) {
            f->single = series_new(f, 0, NULL);
            order_append(f, f->single);
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->fams = fx_realloc(m->fams, m->cap * sizeof(*m->fams));
    }
    m->fams[m->n++] = f;
out:
    pthread_mutex_unlock(&m->mu);
    if (rebind) {
        pthread_mutex_lock(&rebind->mu);
        rebind->fn = fn;
        rebind->ud = ud;
        pthread_mutex_unlock(&rebind->mu);
    }
    return f;
}

struct fx_metric_family *fx_metrics_counter(struct fx_metrics *m, const char *name,
                                            const char *help, const char *const *label_names)
{
    return family_get(m, K_COUNTER, name, help, label_names, NULL, 0, NULL, NULL);
}

struct fx_metric_family *fx_metrics_gauge(struct fx_metrics *m, const char *name, const char *help,
                                          const char *const *label_names)
{
    return family_get(m, K_GAUGE, name, help, label_names, NULL, 0, NULL, NULL);
}

struct fx_metric_family *fx_metrics_histogram(struct fx_metrics *m, const char *name,
                                              const char *help, const char *const *label_names,
                                              const double *bounds, size_t nbounds)
{
    if (!bounds && nbounds == 0) {
        bounds = default_bounds;
        nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
    }
    if (!bounds && nbounds) {
        fx_log_error("metrics", "histogram %s: %zu bucket bounds announced but none given",
                     name ? name : "(null)", nbounds);
        return NULL;
    }
    /* the +Inf bucket is always there; accept it spelled out */
    if (nbounds && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
        nbounds--;
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            fx_log_error("metrics",
                         "histogram %s: bucket bound %zu (%g) is not finite or not greater "
                         "than the one before: bounds must be finite and strictly increasing",
                         name ? name : "(null)", i, bounds[i]);
            return NULL;
        }
    }
    return family_get(m, K_HISTOGRAM, name, help, label_names, bounds, nbounds, NULL, NULL);
}

int fx_metrics_gauge_fn(struct fx_metrics *m, const char *name, const char *help,
                        double (*fn)(void *ud), void *ud)
{
    if (!m || !fn) {
        fx_log_error("metrics", "gauge %s: no %s given", name ? name : "(null)",
                     m ? "callback" : "registry");
        return FX_EINVAL;
    }
    if (!valid_name(name, 1)) {
        fx_log_error("metrics", "invalid metric name '%s': must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                     name ? name : "(null)");
        return FX_EINVAL;
    }
    /* family_get logs the clash */
    return family_get(m, K_GAUGE_FN, name, help, NULL, NULL, 0, fn, ud) ? 0 : FX_EEXIST;
}

int fx_metrics_gauge_fn_remove(struct fx_metrics *m, const char *name, void *ud)
{
    if (!m || !name)
        return FX_EINVAL;
    pthread_mutex_lock(&m->mu);
    struct fx_metric_family *f = find_family(m, name);
    pthread_mutex_unlock(&m->mu);
    if (!f || f->kind != K_GAUGE_FN)
        return FX_ENOTFOUND;
    int rc = FX_ENOTFOUND;
    /* waits for a render running fn: after this, fn is never called with ud again */
    pthread_mutex_lock(&f->mu);
    if (f->fn && f->ud == ud) {
        f->fn = NULL;
        f->ud = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* --- rendering ----------------------------------------------------------------- */

/* The output with a sticky error: after the first failed append nothing more is
 * written, so a too-small limit leaves a clean prefix. */
struct out {
    struct fx_buf *b;
    int rc;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (!o->rc)
        o->rc = fx_buf_append(o->b, s, n);
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Escape backslash and newline, plus the double quote inside label values. */
static void put_escaped(struct out *o, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\'           ? "\\\\"
                          : *s == '\n'         ? "\\n"
                          : quote && *s == '"' ? "\\\""
                                               : NULL;
        if (!esc)
            continue;
        put(o, run, (size_t)(s - run));
        puts_(o, esc);
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

/* Shortest text that reads back as the same double ("0.1", not
 * "0.10000000000000001"), as Prometheus' Go client writes them; Inf and NaN
 * spelled the way the format wants. */
static void fmt_double(char buf[32], double v)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* whole numbers as integers ("400000", not "4e+05") while every digit is exact */
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, 32, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void put_double(struct out *o, double v)
{
    char buf[32];
    fmt_double(buf, v);
    puts_(o, buf);
}

static void put_u64(struct out *o, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    puts_(o, buf);
}

/* name{l1="v1",...[,le="bound"]} */
static void put_series_name(struct out *o, const struct fx_metric_family *f,
                            const struct fx_series *s, const char *suffix, const char *le)
{
    puts_(o, f->name);
    puts_(o, suffix);
    if (f->nlabels == 0 && !le)
        return;
    put(o, "{", 1);
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i)
            put(o, ",", 1);
        puts_(o, f->labels[i]);
        put(o, "=\"", 2);
        put_escaped(o, s->values[i], 1);
        put(o, "\"", 1);
    }
    if (le) {
        puts_(o, f->nlabels ? ",le=\"" : "le=\"");
        puts_(o, le);
        put(o, "\"", 1);
    }
    put(o, "}", 1);
}

static void render_series(struct out *o, const struct fx_metric_family *f,
                          const struct fx_series *s)
{
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    switch (f->kind) {
    case K_COUNTER:
        put_series_name(o, f, s, "", NULL);
        put(o, " ", 1);
        put_u64(o, v);
        put(o, "\n", 1);
        break;
    case K_GAUGE:
        put_series_name(o, f, s, "", NULL);
        put(o, " ", 1);
        put_double(o, bitsd(v));
        put(o, "\n", 1);
        break;
    case K_HISTOGRAM: {
        uint64_t cum = 0;
        char le[32];
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += atomic_load_explicit(&s->nb[i], memory_order_relaxed);
            if (i < f->nbounds)
                fmt_double(le, f->bounds[i]);
            else
                strcpy(le, "+Inf");
            put_series_name(o, f, s, "_bucket", le);
            put(o, " ", 1);
            put_u64(o, cum);
            put(o, "\n", 1);
        }
        put_series_name(o, f, s, "_sum", NULL);
        put(o, " ", 1);
        put_double(o, bitsd(atomic_load_explicit(&s->sum, memory_order_relaxed)));
        put(o, "\n", 1);
        put_series_name(o, f, s, "_count", NULL);
        put(o, " ", 1);
        put_u64(o, cum);
        put(o, "\n", 1);
        break;
    }
    case K_GAUGE_FN:
        break;
    }
}

static void render_family(struct out *o, struct fx_metric_family *f)
{
    /* a snapshot of the series pointers (series are never freed before the
     * registry), or the callback's value: fn runs under the family's lock so that
     * fx_metrics_gauge_fn_remove can wait for it before its owner frees ud */
    struct fx_series **snap = NULL;
    int has_fn = 0;
    double fn_value = 0;
    pthread_mutex_lock(&f->mu);
    size_t n = f->n;
    if (n) {
        snap = fx_malloc(n * sizeof(*snap));
        memcpy(snap, f->order, n * sizeof(*snap));
    }
    if (f->kind == K_GAUGE_FN && f->fn) {
        fn_value = f->fn(f->ud);
        has_fn = 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (f->kind == K_GAUGE_FN && !has_fn)
        return; /* removed: nothing to say */

    puts_(o, "# HELP ");
    puts_(o, f->name);
    put(o, " ", 1);
    put_escaped(o, f->help, 0);
    puts_(o, "\n# TYPE ");
    puts_(o, f->name);
    put(o, " ", 1);
    puts_(o, kind_names[f->kind]);
    put(o, "\n", 1);
    if (has_fn) {
        puts_(o, f->name);
        put(o, " ", 1);
        put_double(o, fn_value);
        put(o, "\n", 1);
    }
    for (size_t i = 0; i < n && snap; i++)
        render_series(o, f, snap[i]);
    free(snap);
}

int fx_metrics_render(struct fx_metrics *m, struct fx_buf *out)
{
    if (!m || !out)
        return FX_EINVAL;
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    struct fx_metric_family **fams = fx_malloc((n ? n : 1) * sizeof(*fams));
    if (n)
        memcpy(fams, m->fams, n * sizeof(*fams));
    pthread_mutex_unlock(&m->mu);

    struct out o = {out, 0};
    for (size_t i = 0; i < n && !o.rc; i++)
        render_family(&o, fams[i]);
    free(fams);
    return o.rc;
}
