/* SPDX-License-Identifier: MIT */
/*
 * API ingest: records pushed over HTTP, validated on the request's thread and
 * committed by one writer thread in groups.
 *
 * Why a writer thread: SQLite (and any store) pays per transaction, not per
 * row; a request answered only after its rows are durable would cost one
 * commit each. The writer takes every request waiting, writes them in one
 * transaction and then answers them all, so the cost of a commit is shared
 * by as many requests as arrived during the previous one (group commit).
 * Requests hand over whole (never row by row): a wake-up across the two
 * cores costs more than validating a row.
 *
 * Rows join the pipeline's open API batch (state "receiving", source "api"):
 * batches are closed after api_batch_rows rows or a minute, and left-over
 * open ones are closed at the next start. A big body (more than one slice of
 * records) has a batch of its own instead, whose chunks are written while
 * the body still arrives ("held chunks" below). Each request has its own row in
 * api_requests (counts, idempotency key, body hash) and its issues carry its
 * correlation id. A request with its own traceparent, or with many records,
 * gets chunks of its own so its CloudEvents carry its ids; single-record
 * requests share chunks.
 *
 * Dedupe is the files' one: a row with data_hora is keyed by content; a row
 * without is keyed by (request, record) and its content key only flags a
 * possible duplicate.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/services.h"
#include "fluxo/store.h"
#include "fluxo/util.h"
#include "ingest_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define API_BATCH_ROWS 100000
#define API_BATCH_MS 60000
#define OWN_CHUNKS_ROWS 16 /* requests with more records get chunks of their own */
#define GATHER_MAX 256     /* requests per group before the writer stops waiting */
#define GATHER_US 50       /* longest wait for a group to fill, under load */

/* ---- header bindings, cached by key set ---- */

/* JSON records name their fields; the binding of a key set is built once
 * and shared (read-only) by every thread. Entries live as long as the
 * process. */
#define BIND_CACHE 64
struct bind_entry {
    const struct fx_pipeline *p;
    uint64_t hash;
    char *sig; /* the names joined by \x1f */
    size_t n;
    struct fx_binding *b;
};
static struct bind_entry bind_cache[BIND_CACHE];
static size_t bind_count;
static pthread_mutex_t bind_mu = PTHREAD_MUTEX_INITIALIZER;
/* the entry this thread used last: one-record requests (one per POST) nearly
 * always repeat it, and are spared the signature, hash and lock */
static __thread const struct bind_entry *last_entry;

static int names_signature(const char *const *names, size_t n, struct fx_buf *out)
{
    fx_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fx_buf_putc(out, '\x1f');
        fx_buf_puts(out, names[i]);
    }
    return 0;
}

/* 1 when sig is the signature of names */
static int sig_matches(const char *sig, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (strncmp(sig, names[i], l) != 0 || sig[l] != (i + 1 < n ? '\x1f' : '\0'))
            return 0;
        sig += l + 1;
    }
    return 1;
}

/* Returns a binding (cached: *owned = 0 and *sig_out its entry's signature;
 * else the caller frees it and *sig_out is sig's data) or NULL with err. */
static struct fx_binding *bind_for(const struct fx_pipeline *p, const char *const *names, size_t n,
                                   struct fx_buf *sig, const char **sig_out, int *owned,
                                   struct fx_err *err)
{
    names_signature(names, n, sig);
    uint64_t h = fx_hash64(sig->data ? sig->data : "", sig->len);
    *owned = 0;
    pthread_mutex_lock(&bind_mu);
    for (size_t i = 0; i < bind_count; i++)
        if (bind_cache[i].p == p && bind_cache[i].hash == h &&
            strlen(bind_cache[i].sig) == sig->len &&
            memcmp(bind_cache[i].sig, sig->data ? sig->data : "", sig->len) == 0) {
            struct fx_binding *b = bind_cache[i].b;
            last_entry = &bind_cache[i];
            *sig_out = bind_cache[i].sig;
            pthread_mutex_unlock(&bind_mu);
            return b;
        }
    pthread_mutex_unlock(&bind_mu);

    struct fx_cell *cells = fx_calloc(n ? n : 1, sizeof(*cells));
    for (size_t i = 0; i < n; i++) {
        cells[i].s = names[i];
        cells[i].len = strlen(names[i]);
        cells[i].type = FX_CELL_STRING;
    }
    struct fx_record hdr = {.row = 0, .ncells = n, .cells = cells};
    struct fx_binding *b = NULL;
    int rc = fx_pipeline_bind(p, &hdr, "request", &b, err);
    free(cells);
    if (rc)
        return NULL;
    *sig_out = sig->data ? sig->data : "";
    pthread_mutex_lock(&bind_mu);
    if (bind_count < BIND_CACHE) {
        struct bind_entry *e = &bind_cache[bind_count];
        e->p = p;
        e->hash = h;
        e->sig = fx_strndup(sig->data ? sig->data : "", sig->len);
        e->n = n;
        e->b = b;
        bind_count++;
        last_entry = e;
        *sig_out = e->sig;
    } else {
        *owned = 1;
    }
    pthread_mutex_unlock(&bind_mu);
    return b;
}

/* ---- a request ---- */

struct api_row {
    int64_t key[2], content[2];
    int by_content, distinct_content;
    long record, line;
    size_t off, len; /* rendered chunk row in frag (or frags[frag - 1]) */
    size_t frag;
    int dropped; /* writer: duplicate */
};

/* A big request's chunks written ahead of it (see "held chunks" below). */
struct held_chunk {
    char id[37];
    uint64_t seq;
    size_t first_ix, nrows; /* its rows: rows[first_ix, first_ix + nrows) of the request */
    long first_row, last_row;
    size_t hdr; /* bytes of the payload before its first row */
};

/* What a request, its parts and its abort share (freed with the last of them). */
struct hold {
    _Atomic int refs;
    const struct fx_pipeline *p;
    char batch[37], corr[37], trace[56];
    /* the writer's alone */
    int rc;       /* a part failed: the request fails, its chunks go */
    char *reason; /* why */
    int batch_written;
    int finished; /* the request committed, or its chunks were removed */
};

enum { REQ_RECORDS, REQ_PART, REQ_ABORT };

struct fx_api_req {
    int kind;
    const struct fx_pipeline *p;
    char corr[37];
    char trace[56];
    int own_trace;
    char source_hash[65];
    char *idem_key;
    char body_hash[65];
    struct fx_row row;
    struct fx_issues iss;
    struct fx_buf sig;            /* names signature of the last record bound */
    const char *last_sig;         /* it, or its cache entry's copy */
    struct fx_binding *last_bind; /* its (cached, shared) binding */
    size_t last_n;
    struct fx_buf frag; /* rendered accepted rows */
    char **frags;       /* rendered rows of merged slices, kept as they are */
    size_t nfrags, capfrags;
    struct api_row *rows;
    size_t nrows, caprows;
    struct fx_api_issue *issues;
    size_t nissues, capissues;
    uint64_t received;
    struct fx_api_counts res;
    int replay;
    /* deferred records: slices validated on the pool, merged by settle */
    struct slice *slices, *last_slice, *cur;
    size_t nqueued_slices;        /* sealed and not yet done (under pool.mu) */
    size_t slice_bytes;           /* text of the last full slice */
    struct fx_jsonrec_opts jopts; /* NDJSON lines: the body parser's options */
    int sliced;                   /* a slice was sealed: a big body */
    /* held chunks (the parsing thread's until the request is handed over) */
    struct fx_api_writer *hw; /* holds chunks through this writer; NULL: never */
    struct hold *hold;        /* a big body's (also: a part's, an abort's) */
    struct held_chunk *held;  /* written or on their way, in order */
    size_t nheld, capheld;
    size_t held_rows;   /* rows[0, held_rows) are in them */
    size_t frags_freed; /* frags[0, frags_freed) freed: their rows are all held */
    size_t parts;       /* parts handed to the writer */
    int handed;         /* the request itself was handed to the writer */
    struct fx_buf *pl;  /* a part: its chunks' payloads, of held[0, nheld) */
    /* writer queue */
    fx_api_done_cb done;
    void *ud;
    struct fx_api_req *next;
};

struct fx_api_req *fx_api_req_new(const struct fx_pipeline *p, const char *correlation_id,
                                  const char *traceparent, int own_trace)
{
    struct fx_api_req *r = fx_calloc(1, sizeof(*r));
    r->p = p;
    if (correlation_id && strlen(correlation_id) == 36)
        memcpy(r->corr, correlation_id, 37);
    else
        fx_uuid7(r->corr);
    if (traceparent && strlen(traceparent) == 55) {
        memcpy(r->trace, traceparent, 56);
        r->own_trace = own_trace;
    } else {
        fx_traceparent_new(r->trace);
    }
    fx_row_init(&r->row, p);
    fx_buf_init(&r->sig, 0);
    fx_buf_init(&r->frag, 0);
    return r;
}

static void slices_drop(struct fx_api_req *r);
static int writer_enqueue(struct fx_api_writer *w, struct fx_api_req *r);

static struct hold *hold_ref(struct hold *h)
{
    atomic_fetch_add(&h->refs, 1);
    return h;
}

static void hold_unref(struct hold *h)
{
    if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
        free(h->reason);
        free(h);
    }
}

static void req_destroy(struct fx_api_req *r)
{
    slices_drop(r);
    if (r->pl) {
        for (size_t i = 0; i < r->nheld; i++)
            fx_buf_cleanup(&r->pl[i]);
        free(r->pl);
    }
    free(r->held);
    hold_unref(r->hold);
    fx_row_cleanup(&r->row);
    fx_issues_cleanup(&r->iss);
    fx_buf_cleanup(&r->sig);
    fx_buf_cleanup(&r->frag);
    for (size_t i = 0; i < r->nfrags; i++)
        free(r->frags[i]);
    free(r->frags);
    free(r->rows);
    free(r->issues);
    free(r->idem_key);
    free(r);
}

void fx_api_req_free(struct fx_api_req *r)
{
    if (!r)
        return;
    if (r->kind == REQ_RECORDS && r->parts && !r->handed) {
        /* chunks of it are written or on their way, and it will never
         * commit (its body was refused half way, or its client went away):
         * the writer removes them, after its parts. A stopped writer cannot;
         * the next start does (held_sweep). */
        struct fx_api_req *a = fx_calloc(1, sizeof(*a));
        a->kind = REQ_ABORT;
        a->hold = hold_ref(r->hold);
        if (writer_enqueue(r->hw, a) != 0)
            req_destroy(a);
    }
    req_destroy(r);
}

void fx_api_req_hold(struct fx_api_req *r, struct fx_api_writer *w)
{
    r->hw = w;
}

const char *fx_api_req_correlation(const struct fx_api_req *r)
{
    return r->corr;
}
const char *fx_api_req_traceparent(const struct fx_api_req *r)
{
    return r->trace;
}
const struct fx_api_counts *fx_api_req_result(const struct fx_api_req *r)
{
    return &r->res;
}
int fx_api_req_replay(const struct fx_api_req *r)
{
    return r->replay;
}
uint64_t fx_api_req_rows(const struct fx_api_req *r)
{
    return r->received;
}

size_t fx_api_req_issues(const struct fx_api_req *r, const struct fx_api_issue **out)
{
    *out = r->issues;
    return r->nissues;
}

void fx_api_req_set_idempotency(struct fx_api_req *r, const char *key, const char body_hash[65])
{
    free(r->idem_key);
    r->idem_key = fx_strdup(key);
    memcpy(r->body_hash, body_hash, 65);
}

static struct fx_api_issue *push_issue(struct fx_api_req *r)
{
    if (r->nissues == r->capissues) {
        r->capissues = r->capissues ? r->capissues * 2 : 8;
        r->issues = fx_realloc(r->issues, r->capissues * sizeof(*r->issues));
    }
    struct fx_api_issue *is = &r->issues[r->nissues];
    memset(is, 0, sizeof(*is));
    is->seq = (long)r->nissues++;
    return is;
}

/* Issues in record order, then in the order they were found: the order of
 * the reply and of the stored issues, so a replayed reply is the same. */
static int cmp_issue(const void *a, const void *b)
{
    const struct fx_api_issue *x = a, *y = b;
    if (x->record != y->record)
        return x->record < y->record ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void copy_issue(struct fx_api_issue *d, const struct fx_issue *s)
{
    d->column = s->column;
    d->severity = (int)s->severity;
    snprintf(d->field, sizeof(d->field), "%s", s->field);
    snprintf(d->value, sizeof(d->value), "%s", s->value);
    snprintf(d->rule, sizeof(d->rule), "%s", s->rule);
    snprintf(d->reason, sizeof(d->reason), "%s", s->reason);
}

void fx_api_req_reject(struct fx_api_req *r, long record, long line, const char *rule,
                       const char *reason)
{
    r->received++;
    r->res.rejected++;
    struct fx_api_issue *is = push_issue(r);
    is->record = record;
    is->line = line;
    is->severity = FX_ISSUE_ERROR;
    is->row_ix = -1;
    snprintf(is->rule, sizeof(is->rule), "%s", rule);
    snprintf(is->reason, sizeof(is->reason), "%s", reason);
}

int fx_api_req_add(struct fx_api_req *r, const char *const *names, const struct fx_cell *cells,
                   size_t n, long record, long line)
{
    struct fx_err err;
    fx_err_clear(&err);
    int owned = 0;
    struct fx_binding *b = NULL;
    /* records of a body nearly always repeat the previous one's keys, and
     * requests this thread's previous one's: compare them with its
     * signature before hashing and locking the shared cache */
    const struct bind_entry *e = last_entry;
    if (r->last_bind && n == r->last_n && sig_matches(r->last_sig, names, n)) {
        b = r->last_bind;
    } else if (e && e->p == r->p && e->n == n && sig_matches(e->sig, names, n)) {
        b = r->last_bind = e->b;
        r->last_sig = e->sig;
        r->last_n = n;
    } else {
        b = bind_for(r->p, names, n, &r->sig, &r->last_sig, &owned, &err);
        r->last_bind = owned ? NULL : b;
        r->last_n = n;
    }
    if (!b) {
        fx_api_req_reject(r, record, line, "required", err.reason);
        return 0;
    }
    struct fx_record rec = {.row = record, .ncells = n, .cells = (struct fx_cell *)cells};
    r->received++;
    int vrc = fx_pipeline_validate(b, &rec, &r->row, &r->iss);
    if (vrc != 0) {
        r->res.rejected++;
        for (size_t i = 0; i < r->iss.n; i++) {
            struct fx_api_issue *is = push_issue(r);
            copy_issue(is, &r->iss.v[i]);
            is->record = record;
            is->line = line;
            is->row_ix = -1;
        }
        goto out;
    }
    if (r->nrows == r->caprows) {
        r->caprows = r->caprows ? r->caprows * 2 : 4;
        r->rows = fx_realloc(r->rows, r->caprows * sizeof(*r->rows));
    }
    struct api_row *ar = &r->rows[r->nrows];
    memset(ar, 0, sizeof(*ar));
    char key[65], content[65];
    /* the request's id as a source, for position keys only (a sub-request
     * of a big body has its owner's id, and so the same hash) */
    if (!r->source_hash[0] && fx_binding_keys_by_position(b))
        fx_sha256_hex(r->corr, 36, r->source_hash);
    fx_pipeline_dedupe_key(b, &r->row, r->source_hash, key, content, &ar->by_content);
    fx__key_words(key, ar->key);
    fx__key_words(content, ar->content);
    ar->distinct_content = memcmp(key, content, 64) != 0;
    ar->record = record;
    ar->line = line;
    ar->off = r->frag.len;
    /* rendered here, on the request's thread: the writer only copies it into a chunk */
    fx__chunk_row(&r->frag, 1, r->p, &r->row, key);
    ar->len = r->frag.len - ar->off;
    for (size_t i = 0; i < r->iss.n; i++) {
        struct fx_api_issue *is = push_issue(r);
        copy_issue(is, &r->iss.v[i]);
        is->severity = FX_ISSUE_WARN;
        is->record = record;
        is->line = line;
        is->row_ix = (int)r->nrows;
    }
    r->nrows++;
out:
    if (owned)
        fx_binding_free(b);
    return 0;
}

/* ---- big bodies: validation on a pool of threads ----
 *
 * A request is parsed on its connection's event loop, one thread; validating,
 * keying and rendering a record costs about three times parsing it. Records
 * of a big body are therefore copied into slices of SLICE_RECORDS, and the
 * slices validated by a process-wide pool (one thread per core) into
 * sub-requests that settle merges back in record order: the outcome is the
 * one fx_api_req_add gives, record for record. The parsing thread runs a
 * slice itself when more than SLICE_AHEAD of its request wait, so memory stays
 * bounded and it never idles. A small body (one slice) is validated inline
 * by settle, without a hand-over. */

#define SLICE_RECORDS 1024
#define SLICE_AHEAD 4

struct slice_cell {
    size_t name, val, len; /* offsets into text; val's length */
    enum fx_cell_type type;
};

struct slice_rec {
    long record, line;
    size_t first, n; /* cells [first, first + n); a raw line: its text at first, n bytes */
    long col;        /* a raw line's column; 0 for a record of cells */
};

struct slice {
    struct fx_api_req *owner, *sub;
    int done;            /* validated (under pool.mu) */
    struct slice *next;  /* owner's slices in record order */
    struct slice *qnext; /* the pool's queue */
    struct fx_buf text;
    struct slice_cell *cells;
    size_t ncells, capcells;
    struct slice_rec *recs;
    size_t nrecs, caprecs;
    /* names of the last record (records of a body mostly share them: stored once) */
    size_t *last_names, nlast, caplast;
};

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct slice *head, *tail;
} pool = {PTHREAD_ONCE_INIT,
          PTHREAD_MUTEX_INITIALIZER,
          PTHREAD_COND_INITIALIZER,
          PTHREAD_COND_INITIALIZER,
          NULL,
          NULL};

static void slice_free(struct slice *sl)
{
    fx_buf_cleanup(&sl->text);
    free(sl->cells);
    free(sl->recs);
    free(sl->last_names);
    fx_api_req_free(sl->sub);
    free(sl);
}

static int line_record(void *ud, const struct fx_jsonrec *rec)
{
    return fx_api_req_add(ud, rec->names, rec->cells, rec->n, (long)rec->index, rec->line);
}

static int line_bad(void *ud, size_t index, const struct fx_err *err)
{
    /* the parser puts the record's line in the reason ("record 3 (line 4, column 17): ...") */
    const char *l = strstr(err->reason, "line ");
    long line = l ? strtol(l + 5, NULL, 10) : 0;
    fx_api_req_reject(ud, (long)index, line > 0 ? line : 0, "json", err->reason);
    return 0;
}

/* Validate the slice's records into request t. */
static void slice_apply(struct slice *sl, struct fx_api_req *t)
{
    size_t maxn = 1;
    for (size_t i = 0; i < sl->nrecs; i++)
        if (sl->recs[i].col == 0 && sl->recs[i].n > maxn)
            maxn = sl->recs[i].n;
    const char **names = fx_malloc(maxn * sizeof(*names));
    struct fx_cell *cells = fx_malloc(maxn * sizeof(*cells));
    const char *txt = sl->text.data;
    struct fx_jsonrec_parser *jp = NULL;
    struct fx_err err; /* bad lines go to line_bad: nothing to read here */
    fx_err_clear(&err);
    for (size_t i = 0; i < sl->nrecs; i++) {
        const struct slice_rec *sr = &sl->recs[i];
        if (sr->col > 0) {
            if (!jp)
                jp = fx_jsonrec_new(&sl->owner->jopts, line_record, line_bad, t);
            struct fx_jsonrec_line ln = {txt + sr->first, sr->n, (size_t)sr->record, sr->line,
                                         sr->col};
            fx_jsonrec_parse_line(jp, &ln, &err);
            continue;
        }
        for (size_t c = 0; c < sr->n; c++) {
            const struct slice_cell *sc = &sl->cells[sr->first + c];
            names[c] = txt + sc->name;
            cells[c].s = txt + sc->val;
            cells[c].len = sc->len;
            cells[c].type = sc->type;
        }
        fx_api_req_add(t, names, cells, sr->n, sr->record, sr->line);
    }
    free(names);
    free(cells);
    fx_jsonrec_free(jp);
}

/* Validate the slice's records into a sub-request of its own (pool). */
static void slice_run(struct slice *sl)
{
    const struct fx_api_req *o = sl->owner;
    struct fx_api_req *sub = fx_calloc(1, sizeof(*sub));
    sub->p = o->p;
    memcpy(sub->corr, o->corr, sizeof(sub->corr));
    fx_row_init(&sub->row, o->p);
    fx_buf_init(&sub->sig, 0);
    fx_buf_init(&sub->frag, 0);
    slice_apply(sl, sub);
    sl->sub = sub;
    /* the records were copied into sub's rows: their text can go now */
    fx_buf_cleanup(&sl->text);
    free(sl->cells);
    free(sl->recs);
    sl->cells = NULL;
    sl->recs = NULL;
}

/* Run a slice just taken off the queue (pool.mu held on entry and on return). */
static void run_taken(struct slice *sl)
{
    pthread_mutex_unlock(&pool.mu);
    slice_run(sl);
    pthread_mutex_lock(&pool.mu);
    sl->done = 1;
    sl->owner->nqueued_slices--;
    pthread_cond_broadcast(&pool.done);
}

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.head)
            pthread_cond_wait(&pool.work, &pool.mu);
        struct slice *sl = pool.head;
        pool.head = sl->qnext;
        if (!pool.head)
            pool.tail = NULL;
        run_taken(sl);
    }
    return NULL;
}

static void pool_start(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > 8)
        n = 8;
    for (long i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, pool_main, NULL) == 0) {
            pthread_setname_np(th, "fx-api-validate");
            pthread_detach(th);
        }
    }
}

/* Take a queued slice of r (any request's when r is NULL) off the queue and
 * run it on this thread; 0 when there was none. */
static int pool_help(struct fx_api_req *r)
{
    pthread_mutex_lock(&pool.mu);
    struct slice **pp = &pool.head, *prev = NULL;
    while (*pp && r && (*pp)->owner != r) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    struct slice *sl = *pp;
    if (!sl) {
        pthread_mutex_unlock(&pool.mu);
        return 0;
    }
    *pp = sl->qnext;
    if (pool.tail == sl)
        pool.tail = prev;
    run_taken(sl);
    pthread_mutex_unlock(&pool.mu);
    return 1;
}

static void slice_queue(struct fx_api_req *r, struct slice *sl)
{
    pthread_once(&pool.once, pool_start);
    pthread_mutex_lock(&pool.mu);
    sl->qnext = NULL;
    if (pool.tail)
        pool.tail->qnext = sl;
    else
        pool.head = sl;
    pool.tail = sl;
    size_t ahead = ++r->nqueued_slices;
    pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    if (ahead > SLICE_AHEAD)
        pool_help(r);
}

/* Wait until no slice of r is queued or running (helping with them). */
static void slices_wait(struct fx_api_req *r)
{
    while (pool_help(r))
        ;
    pthread_mutex_lock(&pool.mu);
    while (r->nqueued_slices)
        pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}

static void slices_drop(struct fx_api_req *r)
{
    if (!r->slices && !r->cur)
        return;
    slices_wait(r);
    for (struct slice *sl = r->slices, *next; sl; sl = next) {
        next = sl->next;
        slice_free(sl);
    }
    if (r->cur)
        slice_free(r->cur);
    r->slices = r->last_slice = r->cur = NULL;
}

static size_t slice_text(struct slice *sl, const char *s, size_t len)
{
    size_t off = sl->text.len;
    fx_buf_append(&sl->text, s, len);
    fx_buf_putc(&sl->text, '\0');
    return off;
}

static struct slice *slice_cur(struct fx_api_req *r, size_t n)
{
    struct slice *sl = r->cur;
    if (!sl) {
        sl = r->cur = fx_calloc(1, sizeof(*sl));
        sl->owner = r;
        fx_buf_init(&sl->text, 0);
        /* sized by the previous slice: no growth copies after the first */
        fx_buf_reserve(&sl->text, r->slice_bytes ? r->slice_bytes + r->slice_bytes / 8 : 4096);
    }
    if (n > sl->caplast) {
        sl->caplast = n;
        sl->last_names = fx_realloc(sl->last_names, n * sizeof(*sl->last_names));
    }
    if (sl->nrecs == sl->caprecs) {
        sl->caprecs = sl->caprecs ? 2 * sl->caprecs : 64;
        sl->recs = fx_realloc(sl->recs, sl->caprecs * sizeof(*sl->recs));
    }
    return sl;
}

/* The current slice is full: queue it. */
static void slice_seal(struct fx_api_req *r, struct slice *sl)
{
    if (sl->nrecs < SLICE_RECORDS)
        return;
    r->slice_bytes = sl->text.len;
    r->cur = NULL;
    if (!r->sliced && r->hw) { /* a big body: a batch of its own, its chunks held as they come */
        struct hold *h = r->hold = fx_calloc(1, sizeof(*h));
        atomic_init(&h->refs, 1);
        h->p = r->p;
        fx_uuid7(h->batch);
        memcpy(h->corr, r->corr, sizeof(h->corr));
        memcpy(h->trace, r->trace, sizeof(h->trace));
    }
    r->sliced = 1;
    if (r->last_slice)
        r->last_slice->next = sl;
    else
        r->slices = sl;
    r->last_slice = sl;
    slice_queue(r, sl);
}

void fx_api_req_set_json(struct fx_api_req *r, const struct fx_jsonrec_opts *o)
{
    r->jopts = *o;
}

int fx_api_req_add_line(struct fx_api_req *r, const struct fx_jsonrec_line *ln)
{
    struct slice *sl = slice_cur(r, 0);
    struct slice_rec *sr = &sl->recs[sl->nrecs++];
    sr->record = (long)ln->index;
    sr->line = ln->line;
    sr->col = ln->col;
    sr->first = slice_text(sl, ln->s, ln->len);
    sr->n = ln->len;
    slice_seal(r, sl);
    return 0;
}

int fx_api_req_add_deferred(struct fx_api_req *r, const char *const *names,
                            const struct fx_cell *cells, size_t n, long record, long line)
{
    struct slice *sl = slice_cur(r, n);
    if (sl->ncells + n > sl->capcells) {
        while (sl->ncells + n > sl->capcells)
            sl->capcells = sl->capcells ? 2 * sl->capcells : 1024;
        sl->cells = fx_realloc(sl->cells, sl->capcells * sizeof(*sl->cells));
    }
    struct slice_rec *sr = &sl->recs[sl->nrecs++];
    sr->record = record;
    sr->line = line;
    sr->col = 0;
    sr->first = sl->ncells;
    sr->n = n;
    for (size_t i = 0; i < n; i++) {
        struct slice_cell *sc = &sl->cells[sl->ncells++];
        if (i < sl->nlast && strcmp(sl->text.data + sl->last_names[i], names[i]) == 0)
            sc->name = sl->last_names[i];
        else
            sc->name = sl->last_names[i] = slice_text(sl, names[i], strlen(names[i]));
        sc->val = slice_text(sl, cells[i].s, cells[i].len);
        sc->len = cells[i].len;
        sc->type = cells[i].type;
    }
    sl->nlast = n;
    slice_seal(r, sl);
    return 0;
}

/* Append sub's outcome to r (the records follow r's in body order); its
 * rendered rows stay in its buffer, which r takes over (no copy). */
static void merge_sub(struct fx_api_req *r, struct fx_api_req *sub)
{
    size_t row0 = r->nrows, frag = 0;
    if (sub->frag.len) {
        if (r->nfrags == r->capfrags) {
            r->capfrags = r->capfrags ? 2 * r->capfrags : 16;
            r->frags = fx_realloc(r->frags, r->capfrags * sizeof(*r->frags));
        }
        r->frags[r->nfrags++] = fx_buf_take(&sub->frag);
        frag = r->nfrags;
    }
    if (r->nrows + sub->nrows > r->caprows) {
        while (r->nrows + sub->nrows > r->caprows)
            r->caprows = r->caprows ? 2 * r->caprows : 64;
        r->rows = fx_realloc(r->rows, r->caprows * sizeof(*r->rows));
    }
    for (size_t i = 0; i < sub->nrows; i++) {
        r->rows[r->nrows] = sub->rows[i];
        r->rows[r->nrows].frag = frag;
        r->nrows++;
    }
    for (size_t i = 0; i < sub->nissues; i++) {
        struct fx_api_issue *is = push_issue(r);
        long seq = is->seq;
        *is = sub->issues[i];
        is->seq = seq;
        if (is->row_ix >= 0)
            is->row_ix += (int)row0;
    }
    r->received += sub->received;
    r->res.rejected += sub->res.rejected;
}

void fx_api_req_settle(struct fx_api_req *r)
{
    if (r->cur && !r->sliced) { /* a small body: validated here, straight into r */
        struct slice *sl = r->cur;
        r->cur = NULL;
        slice_apply(sl, r);
        slice_free(sl);
        return;
    }
    if (r->cur) { /* the last, partial slice: validated here */
        struct slice *sl = r->cur;
        r->cur = NULL;
        slice_run(sl);
        if (r->last_slice)
            r->last_slice->next = sl;
        else
            r->slices = sl;
        r->last_slice = sl;
    }
    if (!r->slices)
        return;
    slices_wait(r);
    size_t rows = 0;
    for (struct slice *sl = r->slices; sl; sl = sl->next)
        rows += sl->sub->nrows;
    if (r->nrows + rows > r->caprows) {
        r->caprows = r->nrows + rows;
        r->rows = fx_realloc(r->rows, r->caprows * sizeof(*r->rows));
    }
    for (struct slice *sl = r->slices, *next; sl; sl = next) {
        next = sl->next;
        merge_sub(r, sl->sub);
        slice_free(sl);
    }
    r->slices = r->last_slice = NULL;
}

/* ---- held chunks ----
 *
 * A big body used to reach the writer whole, once parsed and validated:
 * the writer then copied its rows into chunks and wrote them (payloads of
 * about a quarter of the body's size), and the commit wrote them again to
 * the WAL, about 110 ms for 100k rows during which the other core had
 * nothing to do. So while a big body still arrives, its validated rows are
 * put into chunks on the parsing thread, in parts of whole chunks, and the
 * writer stages each part with the groups of the moment: without an outbox
 * entry (nothing publishes or applies them), each chunk listed in
 * staging_held. When the request commits, its dedupe keys are decided as
 * for any request and its held chunks queued; a chunk holding a row found to
 * be a duplicate is rewritten without it (or removed). A request that never
 * commits has its held chunks removed: by the writer after its parts when it
 * is freed unfinished (body refused half way, client gone) or when its
 * commit failed, and at the next start (held_sweep) when the server stopped
 * first. Such a body gets a batch of its own (its chunks name it before it
 * is known which shared batch would be open when it commits): any body of
 * more than SLICE_RECORDS records, so the batch a request joins does not
 * depend on timing. */

/* Merge the leading slices of r the pool has finished (parsing thread). */
static void merge_done(struct fx_api_req *r)
{
    struct slice *last = NULL;
    pthread_mutex_lock(&pool.mu);
    for (struct slice *sl = r->slices; sl && sl->done; sl = sl->next)
        last = sl;
    pthread_mutex_unlock(&pool.mu);
    if (!last)
        return;
    struct slice *stop = last->next;
    for (struct slice *sl = r->slices, *next; sl != stop; sl = next) {
        next = sl->next;
        merge_sub(r, sl->sub);
        slice_free(sl);
    }
    r->slices = stop;
    if (!stop)
        r->last_slice = NULL;
}

/* Put the merged rows not held yet into chunks, as many whole ones as there
 * are, and hand them to the writer as one part. */
static void hold_chunks(struct fx_api_req *r)
{
    size_t cr = fx_pipeline_chunk_rows(r->p);
    if (r->nrows - r->held_rows < cr)
        return;
    size_t n = (r->nrows - r->held_rows) / cr;
    struct fx_api_req *part = fx_calloc(1, sizeof(*part));
    part->kind = REQ_PART;
    part->hold = hold_ref(r->hold);
    part->held = fx_malloc(n * sizeof(*part->held));
    part->pl = fx_calloc(n, sizeof(*part->pl));
    for (size_t k = 0; k < n; k++) {
        if (r->nheld == r->capheld) {
            r->capheld = r->capheld ? 2 * r->capheld : 64;
            r->held = fx_realloc(r->held, r->capheld * sizeof(*r->held));
        }
        struct held_chunk *hc = &r->held[r->nheld];
        const struct api_row *rows = r->rows + r->held_rows;
        fx_uuid7(hc->id);
        hc->seq = r->nheld;
        hc->first_ix = r->held_rows;
        hc->nrows = cr;
        hc->first_row = rows[0].record;
        hc->last_row = rows[cr - 1].record;
        struct fx_buf *b = &part->pl[k];
        fx_buf_init(b, 0);
        fx__chunk_begin(b, r->hold->batch, r->p, hc->seq);
        hc->hdr = b->len;
        size_t bytes = 0;
        for (size_t j = 0; j < cr; j++)
            bytes += rows[j].len + 1;
        fx_buf_reserve(b, b->len + bytes + 2);
        for (size_t j = 0; j < cr; j++) {
            if (j)
                fx_buf_putc(b, ',');
            const char *base = rows[j].frag ? r->frags[rows[j].frag - 1] : r->frag.data;
            fx_buf_append(b, base + rows[j].off, rows[j].len);
        }
        fx_buf_puts(b, "]}");
        part->held[k] = *hc;
        part->nheld++;
        r->nheld++;
        r->held_rows += cr;
    }
    r->parts++;
    if (writer_enqueue(r->hw, part) != 0)
        req_destroy(part); /* stopping: the request is refused at its end */
    /* rendered rows of merged slices whose rows are all held now */
    size_t upto = r->held_rows < r->nrows ? r->rows[r->held_rows].frag : r->nfrags + 1;
    for (; r->frags_freed + 1 < upto; r->frags_freed++) {
        free(r->frags[r->frags_freed]);
        r->frags[r->frags_freed] = NULL;
    }
}

void fx_api_req_progress(struct fx_api_req *r)
{
    if (!r->hold || !r->slices)
        return;
    merge_done(r);
    hold_chunks(r);
}

/* ---- the writer ---- */

struct open_batch {
    const struct fx_pipeline *p;
    char id[37], corr[37];
    int64_t opened_ms;
    uint64_t received, accepted, rejected, duplicate, warnings, possible_dup, chunks, rows;
    uint64_t gone; /* chunks numbered but removed (held ones left empty by duplicates) */
    struct fx_buf chunk;
    size_t chunk_rows;
    long first_row, last_row;
    const char *chunk_corr, *chunk_trace; /* own chunk of one request */
};

/* ---- the dedupe filter ----
 *
 * Nearly every key the API takes is new, and proving it took an index probe
 * into `seen` (millions of keys) per row: half of the writer's time on a big
 * body. A blocked Bloom filter over `seen` answers "certainly new" for most
 * keys without the probe; the others (duplicates and about one false
 * positive in a thousand) are still looked up.
 *
 * The filter must hold every key of `seen`, including those written by other
 * connections and processes (file imports, another server). Every
 * transaction that inserts keys bumps seen_gen.gen (migration ingest v4), and
 * the writer reads gen inside each transaction, where it holds the write lock:
 * gen equal to the filter's means nothing was added behind its back; any
 * other value turns the filter off (every key looked up, as before) until a
 * thread rebuilds it from the table (a read snapshot: gen and all keys) and
 * the writer installs it, if gen has only moved by the writer's own key
 * writes since that snapshot. SQLite only; other stores always look up.
 */

struct seen_filter {
    uint64_t *bits; /* nblocks blocks of 8 words (512 bits, one cache line) */
    size_t nblocks; /* a power of two */
    size_t n;       /* keys added */
    int64_t gen;    /* seen_gen.gen the contents match */
};

#define SF_MAX_BYTES (64u << 20) /* past ~32M keys it grows less precise, never wrong */

static void sf_init(struct seen_filter *f, size_t keys)
{
    size_t nb = 1024; /* 64 KiB */
    while (nb * 512 < keys * 16 && nb * 64 < SF_MAX_BYTES)
        nb <<= 1;
    f->bits = fx_calloc(nb * 8, sizeof(uint64_t));
    f->nblocks = nb;
    f->n = 0;
    f->gen = 0;
}

static void sf_free(struct seen_filter *f)
{
    free(f->bits);
    memset(f, 0, sizeof(*f));
}

/* Keys are SHA-256 words, uniform already: the block comes from the high
 * word, six bit positions of nine bits each from the low one. */
static void sf_add(struct seen_filter *f, const int64_t k[2])
{
    uint64_t *b = f->bits + ((uint64_t)k[0] & (f->nblocks - 1)) * 8;
    uint64_t lo = (uint64_t)k[1];
    for (int i = 0; i < 6; i++, lo >>= 9)
        b[(lo >> 6) & 7] |= 1ull << (lo & 63);
    f->n++;
}

static int sf_maybe(const struct seen_filter *f, const int64_t k[2])
{
    const uint64_t *b = f->bits + ((uint64_t)k[0] & (f->nblocks - 1)) * 8;
    uint64_t lo = (uint64_t)k[1];
    for (int i = 0; i < 6; i++, lo >>= 9)
        if (!(b[(lo >> 6) & 7] & (1ull << (lo & 63))))
            return 0;
    return 1;
}

struct fx_api_writer {
    struct fx_runtime *rt;
    struct fx_ingest *ig;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fx_api_req *head, *tail;
    int stop;
    int started;
    _Atomic int64_t backlog, outbox, waiting_rows;
    size_t nqueued, last_group;
    int64_t refreshed_ms, refresh_us; /* the last backlog count: when, how long */
    struct open_batch *batches;
    size_t nbatches;
    /* dedupe keys taken but not yet written to `seen` (see pending_*) */
    int64_t (*pend)[2];
    size_t npend, cappend; /* open addressing, cappend a power of two */
    int64_t pend_since;
    /* the pass being written: fq[0..fq_done) are in `seen`, fq[fq_done..
     * fq_next) were written by the open transaction, sorted */
    int64_t (*fq)[2];
    size_t fq_n, fq_cap, fq_done, fq_next;
    int64_t fq_start_ms;      /* when the pass started */
    int64_t idle_keys_ms;     /* no idle key writes before this (after a failure) */
    int idle_keys_after;      /* ms without a request before idle key writes; -1: none */
    int64_t (*group_keys)[2]; /* keys taken by the group being written */
    size_t ngroup, capgroup;
    _Atomic uint64_t st_filtered, st_looked_up; /* new keys the filter proved; lookups */
    int pg;                                     /* the store is PostgreSQL */
    /* PostgreSQL: the keys a group will look up (ask) and those of them
     * `seen` holds (known), both sorted, read in one go before the group */
    int64_t (*ask)[2], (*known)[2];
    size_t nask, capask, nknown, capknown;
    int prefetched;
    /* PostgreSQL: the group's api_requests rows, an array literal per column
     * (without its braces), written in one statement before the commit */
    struct fx_buf ar_col[13];
    size_t ar_n;
    /* SQLite: the group's requests whose api_requests rows are not written
     * yet (sq_flush), AR_ROWS to a statement */
    const struct fx_api_req **ar_pend;
    size_t ar_npend, ar_cappend;
    /* the dedupe filter (see above) */
    int sf_enabled, sf_valid, sf_running;
    struct seen_filter sf, sf_next; /* in use; a finished rebuild (under sf_mu) */
    int sf_next_rc;                 /* 0 none, 1 built, < 0 failed (under sf_mu) */
    pthread_mutex_t sf_mu;
    pthread_t sf_thread;
    int64_t sf_started_ms;
    struct {
        int64_t from, to;
    } * sf_own; /* our key writes while a rebuild runs */
    size_t sf_nown, sf_capown;
    int64_t (*sf_ownkeys)[2];
    size_t sf_nownkeys, sf_capownkeys;
    char owner[320];  /* "host pid token": held chunks' owner (staging_held) */
    int64_t swept_ms; /* last look for held chunks of requests that ended */
    /* group-commit statistics, logged at debug level every few seconds */
    uint64_t st_groups, st_reqs, st_us;
    int64_t st_since;
};

static int read_int(struct fx_store *db, const char *sql, int64_t *out)
{
    struct fx_stmt *st;
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_store_prepare(db, sql, &st, &err);
    if (rc)
        return rc;
    rc = fx_stmt_step(st);
    if (rc == FX_STORE_ROW)
        *out = fx_stmt_int(st, 0);
    fx_stmt_reset(st);
    return rc == FX_STORE_ROW ? 0 : rc < 0 ? rc : FX_ENOTFOUND;
}

/* Build a filter of the whole table from one read snapshot. */
static int sf_build(struct fx_store *db, struct seen_filter *f)
{
    int64_t n = 0, gen = 0;
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_store_exec(db, "BEGIN", &err); /* deferred: a read snapshot, no lock */
    if (rc)
        return rc;
    if ((rc = read_int(db, "SELECT gen FROM seen_gen", &gen)) != 0 ||
        (rc = read_int(db, "SELECT count(*) FROM seen", &n)) != 0)
        goto out;
    sf_init(f, (size_t)n * 2);
    f->gen = gen;
    struct fx_stmt *st;
    if ((rc = fx_store_prepare(db, "SELECT hi, lo FROM seen", &st, &err)) != 0)
        goto out;
    while ((rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        int64_t k[2] = {fx_stmt_int(st, 0), fx_stmt_int(st, 1)};
        sf_add(f, k);
    }
    fx_stmt_reset(st);
    if (rc > 0)
        rc = 0;
out:
    fx_store_exec(db, "COMMIT", &err);
    if (rc)
        sf_free(f);
    return rc;
}

static void *sf_rebuild_main(void *arg)
{
    struct fx_api_writer *w = arg;
    /* Background work: the writer uses the old filter meanwhile. At full
     * priority a rebuild (80-120 ms at 450k keys) took its share of the
     * two cores from the event loops for that long. */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
    struct seen_filter f = {0};
    struct fx_store *db = NULL;
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_store_open(w->rt->db_url, "ingest", &db, &err);
    if (rc == 0)
        rc = sf_build(db, &f);
    fx_store_close(db);
    pthread_mutex_lock(&w->sf_mu);
    w->sf_next = f;
    w->sf_next_rc = rc ? rc : 1;
    pthread_mutex_unlock(&w->sf_mu);
    return NULL;
}

/* seen_gen.gen inside the writer's transaction: 0, or -1 with the filter
 * turned off (it can no longer be trusted to hold every key). */
static int gen_read(struct fx_api_writer *w, int64_t *gen)
{
    if (read_int(w->ig->db, "SELECT gen FROM seen_gen", gen) == 0)
        return 0;
    w->sf_valid = 0;
    return -1;
}

/* Inside the writer's transaction: is the filter still the whole of `seen`?
 * Installs a finished rebuild; starts one when the filter is off. */
static void sf_check(struct fx_api_writer *w)
{
    if (!w->sf_enabled)
        return;
    int64_t gen = 0;
    if (gen_read(w, &gen) != 0)
        return;
    pthread_mutex_lock(&w->sf_mu);
    int done = w->sf_next_rc;
    pthread_mutex_unlock(&w->sf_mu);
    if (done) {
        pthread_join(w->sf_thread, NULL);
        w->sf_running = 0;
        w->sf_next_rc = 0;
        struct seen_filter nf = w->sf_next;
        memset(&w->sf_next, 0, sizeof(w->sf_next));
        if (done == 1) {
            /* gen may have moved since the snapshot by our own key writes only */
            int64_t g = nf.gen;
            for (size_t i = 0; i < w->sf_nown; i++)
                if (w->sf_own[i].from == g)
                    g = w->sf_own[i].to;
            if (g == gen) {
                for (size_t i = 0; i < w->sf_nownkeys; i++)
                    sf_add(&nf, w->sf_ownkeys[i]);
                sf_free(&w->sf);
                w->sf = nf;
                w->sf.gen = gen;
                w->sf_valid = 1;
                fx_log_debug("api", "dedupe filter rebuilt: %zu keys", w->sf.n);
            } else {
                sf_free(&nf);
            }
        }
        w->sf_nown = w->sf_nownkeys = 0;
    }
    if (w->sf_valid && gen != w->sf.gen)
        w->sf_valid = 0; /* keys were added by another connection */
    /* A filter is sized for twice the keys of its snapshot; past its size it
     * still answers correctly but ever less often "certainly new" (a server
     * started on an empty table would look up every key after a few hundred
     * thousand). Rebuild it bigger, using it meanwhile. */
    int full =
        w->sf_valid && w->sf.n * 16 > w->sf.nblocks * 512 && w->sf.nblocks * 64 < SF_MAX_BYTES;
    if ((!w->sf_valid || full) && !w->sf_running && fx_mono_ms() - w->sf_started_ms >= 1000) {
        w->sf_started_ms = fx_mono_ms();
        w->sf_nown = w->sf_nownkeys = 0;
        if (pthread_create(&w->sf_thread, NULL, sf_rebuild_main, w) == 0)
            w->sf_running = 1;
    }
}

/* Our own keys were written, moving gen from..to (inside the transaction). */
static void sf_own(struct fx_api_writer *w, int64_t from, const int64_t (*keys)[2], size_t n)
{
    if (!w->sf_enabled)
        return;
    int64_t to = 0;
    if (gen_read(w, &to) != 0)
        return;
    if (w->sf.bits)
        for (size_t i = 0; i < n; i++)
            sf_add(&w->sf, keys[i]); /* even when off: a superset is never wrong */
    if (w->sf_valid && from == w->sf.gen)
        w->sf.gen = to;
    if (w->sf_running) { /* a rebuild from an older snapshot must learn these */
        if (w->sf_nown == w->sf_capown) {
            w->sf_capown = w->sf_capown ? 2 * w->sf_capown : 16;
            w->sf_own = fx_realloc(w->sf_own, w->sf_capown * sizeof(*w->sf_own));
        }
        w->sf_own[w->sf_nown].from = from;
        w->sf_own[w->sf_nown].to = to;
        w->sf_nown++;
        if (w->sf_nownkeys + n > w->sf_capownkeys) {
            while (w->sf_nownkeys + n > w->sf_capownkeys)
                w->sf_capownkeys = w->sf_capownkeys ? 2 * w->sf_capownkeys : 4096;
            w->sf_ownkeys = fx_realloc(w->sf_ownkeys, w->sf_capownkeys * sizeof(*w->sf_ownkeys));
        }
        memcpy(w->sf_ownkeys + w->sf_nownkeys, keys, n * sizeof(*keys));
        w->sf_nownkeys += n;
    }
}

void fx_api_writer_dedupe_stats(const struct fx_api_writer *w, uint64_t *filtered,
                                uint64_t *looked_up)
{
    *filtered = atomic_load(&w->st_filtered);
    *looked_up = atomic_load(&w->st_looked_up);
}

int64_t fx_api_writer_backlog(const struct fx_api_writer *w)
{
    return atomic_load(&w->backlog) + atomic_load(&w->waiting_rows);
}

int64_t fx_api_writer_outbox(const struct fx_api_writer *w)
{
    return atomic_load(&w->outbox);
}

static int exec_text(struct fx_store *db, const char *sql, const char *a, const char *b,
                     struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(db, sql, &st, err);
    if (rc)
        return rc;
    if (a)
        fx_stmt_bind_text(st, 1, a, strlen(a));
    if (b)
        fx_stmt_bind_text(st, 2, b, strlen(b));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "%s", fx_store_errmsg(db)) : 0;
}

static int batch_insert(struct fx_api_writer *w, const char *id, const char *corr, const char *tp,
                        const struct fx_pipeline *p, const char *now, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(w->ig->db,
                              "INSERT INTO batches(id,correlation_id,traceparent,pipeline,source,"
                              "state,created_at) VALUES(?,?,?,?,'api','receiving',?)",
                              &st, err);
    if (rc)
        return rc;
    const char *pn = fx_pipeline_name(p);
    fx_stmt_bind_text(st, 1, id, 36);
    fx_stmt_bind_text(st, 2, corr, 36);
    fx_stmt_bind_text(st, 3, tp, strlen(tp));
    fx_stmt_bind_text(st, 4, pn, strlen(pn));
    fx_stmt_bind_text(st, 5, now, strlen(now));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot open API batch: %s", fx_store_errmsg(w->ig->db))
                  : 0;
}

static int batch_open(struct fx_api_writer *w, struct open_batch *ob, const char *now,
                      struct fx_err *err)
{
    fx_uuid7(ob->id);
    fx_uuid7(ob->corr);
    ob->opened_ms = fx_mono_ms();
    ob->received = ob->accepted = ob->rejected = ob->duplicate = ob->warnings = 0;
    ob->possible_dup = ob->chunks = ob->gone = ob->rows = 0;
    ob->chunk_rows = 0;
    char tp[56];
    fx_traceparent_new(tp);
    return batch_insert(w, ob->id, ob->corr, tp, ob->p, now, err);
}

static int batch_save(struct fx_api_writer *w, struct open_batch *ob, int close, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(w->ig->db,
                              "UPDATE batches SET state=?, received=?, accepted=?, rejected=?,"
                              " duplicate=?, warnings=?, possible_dup=?, chunks=?, finished_at=?"
                              " WHERE id=?",
                              &st, err);
    if (rc)
        return rc;
    const char *state = close ? "queued" : "receiving";
    fx_stmt_bind_text(st, 1, state, strlen(state));
    fx__bind_counts(st, 2,
                    (const uint64_t[6]){ob->received, ob->accepted, ob->rejected, ob->duplicate,
                                        ob->warnings, ob->possible_dup});
    fx_stmt_bind_int(st, 8, (int64_t)(ob->chunks - ob->gone));
    char now[32];
    fx__now_iso(now);
    if (close)
        fx_stmt_bind_text(st, 9, now, strlen(now));
    else
        fx_stmt_bind_null(st, 9);
    fx_stmt_bind_text(st, 10, ob->id, 36);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot save API batch: %s", fx_store_errmsg(w->ig->db))
                  : 0;
}

static int chunk_flush(struct fx_api_writer *w, struct open_batch *ob, const char *now,
                       struct fx_err *err)
{
    if (ob->chunk_rows == 0)
        return 0;
    int rc = fx__stage_chunk(w->ig->db, ob->id, ob->chunks, ob->first_row, ob->last_row,
                             ob->chunk_rows, now, &ob->chunk, ob->chunk_corr, ob->chunk_trace, err);
    if (rc)
        return rc;
    ob->chunks++;
    ob->chunk_rows = 0;
    return 0;
}

static int chunk_add(struct fx_api_writer *w, struct open_batch *ob, const struct fx_api_req *r,
                     const struct api_row *ar, const char *now, struct fx_err *err)
{
    if (ob->chunk_rows == 0) {
        fx__chunk_begin(&ob->chunk, ob->id, ob->p, ob->chunks);
        ob->first_row = ar->record;
    }
    ob->last_row = ar->record;
    if (ob->chunk_rows)
        fx_buf_putc(&ob->chunk, ',');
    const char *base = ar->frag ? r->frags[ar->frag - 1] : r->frag.data;
    fx_buf_append(&ob->chunk, base + ar->off, ar->len);
    ob->chunk_rows++;
    ob->rows++;
    if (ob->chunk_rows >= fx_pipeline_chunk_rows(ob->p))
        return chunk_flush(w, ob, now, err);
    return 0;
}

static struct open_batch *batch_for(struct fx_api_writer *w, const struct fx_pipeline *p,
                                    const char *now, struct fx_err *err)
{
    for (size_t i = 0; i < w->nbatches; i++)
        if (w->batches[i].p == p) {
            if (!w->batches[i].id[0] && batch_open(w, &w->batches[i], now, err))
                return NULL;
            return &w->batches[i];
        }
    w->batches = fx_realloc(w->batches, (w->nbatches + 1) * sizeof(*w->batches));
    struct open_batch *ob = &w->batches[w->nbatches++];
    memset(ob, 0, sizeof(*ob));
    ob->p = p;
    fx_buf_init(&ob->chunk, 0);
    if (batch_open(w, ob, now, err)) {
        ob->id[0] = '\0';
        return NULL;
    }
    return ob;
}

/*
 * Dedupe keys are random by nature: inserting each into the `seen` index as
 * it comes dirties a random page per key, and at tens of thousands of
 * requests a second those page writes were most of the commit cost. So the
 * writer tests a key against `seen` (a read: cached pages) and against the
 * keys it took but has not written yet, and keeps new keys in memory (`pend`).
 *
 * Every PEND_MS (or PEND_MAX keys) the pending keys become a pass: sorted
 * into `fq`, they are written in index order, a slice of them in each of the
 * following groups' transactions. Sorted keys share pages, so a pass dirties
 * each page of the index at most once, however many keys land on it; written
 * in slices, no group waits for a whole pass. (Written as one transaction
 * every 250 ms, the keys held the writer for 10-35 ms each time, growing with
 * the table: the requests queued behind it made most of the p99 latency.)
 * The slices are paced by time, the pass spread over PASS_SPREAD_MS: each
 * group writes what is due by then. (Cut into 64 slices instead, a pass was
 * written in the first ~50 ms after it started, 2-6 ms of keys in each of
 * those groups, and the 5 % of requests in them made the p99.)
 *
 * When no request came for 20 ms, the writer is idle and writes every key it
 * holds at once, due or not, in transactions of IDLE_SLICE keys (a request
 * that comes meanwhile waits for one of them at most). Three 100k-row NDJSON
 * POSTs in a row took 0.29 / 0.35 / 0.43 s before, each finding the keys of
 * the one before in its way; 0.22-0.27 s each since.
 *
 * After a crash the keys of the last seconds may be missing from `seen`: a
 * re-sent row of those seconds is then taken again at ingest, and the
 * normalized tables' unique dedupe id still keeps it from being applied
 * twice.
 */
#define PEND_MAX 65536
#define PEND_MS 1000
#define PASS_SPREAD_MS 500 /* a pass is written over about this long */
#define PASS_MIN 64        /* keys per slice at least */

static size_t pend_slot(const struct fx_api_writer *w, const int64_t k[2])
{
    uint64_t h = (uint64_t)k[0] ^ ((uint64_t)k[1] * 0x9E3779B97F4A7C15ull);
    return (size_t)(h ^ (h >> 29)) & (w->cappend - 1);
}

static int pend_has(const struct fx_api_writer *w, const int64_t k[2])
{
    if (!w->npend)
        return 0;
    for (size_t i = pend_slot(w, k);; i = (i + 1) & (w->cappend - 1)) {
        if (w->pend[i][0] == 0 && w->pend[i][1] == 0)
            return 0;
        if (w->pend[i][0] == k[0] && w->pend[i][1] == k[1])
            return 1;
    }
}

static void pend_put(struct fx_api_writer *w, const int64_t k[2]);

static void pend_rehash(struct fx_api_writer *w, size_t cap)
{
    int64_t(*old)[2] = w->pend;
    size_t oldcap = w->cappend;
    w->pend = fx_calloc(cap, sizeof(*w->pend));
    w->cappend = cap;
    w->npend = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i][0] || old[i][1])
            pend_put(w, old[i]);
    free(old);
}

/* Insert without recording it as the current group's. */
static void pend_put(struct fx_api_writer *w, const int64_t k[2])
{
    if (k[0] == 0 && k[1] == 0)
        return; /* the empty-slot marker; a 2^-128 key is not worth a flag */
    if (!w->cappend)
        pend_rehash(w, 4 * PEND_MAX);
    else if (2 * (w->npend + 1) > w->cappend) /* one big request can pass PEND_MAX */
        pend_rehash(w, 2 * w->cappend);
    size_t i = pend_slot(w, k);
    while (w->pend[i][0] || w->pend[i][1]) {
        if (w->pend[i][0] == k[0] && w->pend[i][1] == k[1])
            return;
        i = (i + 1) & (w->cappend - 1);
    }
    w->pend[i][0] = k[0];
    w->pend[i][1] = k[1];
    if (w->npend++ == 0)
        w->pend_since = fx_mono_ms();
}

/* Room for n more pending keys without a rehash midway (a big request
 * takes hundreds of thousands: growing by doubling re-inserted most of them
 * once or twice, inside its transaction). */
static void pend_reserve(struct fx_api_writer *w, size_t n)
{
    size_t cap = w->cappend ? w->cappend : 4 * PEND_MAX;
    while (2 * (w->npend + n) > cap)
        cap *= 2;
    if (cap != w->cappend)
        pend_rehash(w, cap);
}

/* Append a key to a growable array of keys. */
static void keys_push(int64_t (**arr)[2], size_t *n, size_t *cap, const int64_t k[2])
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        *arr = fx_realloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[*n][0] = k[0];
    (*arr)[*n][1] = k[1];
    (*n)++;
}

/* A key taken by the group being written (forgotten if the group rolls back). */
static void pend_add(struct fx_api_writer *w, const int64_t k[2])
{
    pend_put(w, k);
    keys_push(&w->group_keys, &w->ngroup, &w->capgroup, k);
}

static int cmp_key(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Sorted keys into `seen`, one statement each (SQLite: no round trips). */
static int keys_insert(struct fx_api_writer *w, const int64_t (*keys)[2], size_t n,
                       struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(
        w->ig->db, "INSERT INTO seen(hi,lo) VALUES(?,?) ON CONFLICT DO NOTHING", &st, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        fx_stmt_bind_int(st, 1, keys[i][0]);
        fx_stmt_bind_int(st, 2, keys[i][1]);
        int s = fx_stmt_step(st);
        fx_stmt_reset(st);
        if (s < 0)
            rc = fx_err_set(err, s, "cannot record dedupe keys: %s", fx_store_errmsg(w->ig->db));
    }
    return rc;
}

#define PG_KEYS_PER_INSERT 8192

/* PostgreSQL array literals of the keys' two words, for unnest(?::bigint[], ?::bigint[]). */
static void key_arrays(struct fx_buf *hi, struct fx_buf *lo, const int64_t (*keys)[2], size_t n)
{
    fx_buf_reset(hi);
    fx_buf_reset(lo);
    for (size_t i = 0; i < n; i++) {
        fx_buf_printf(hi, "%s%lld", i ? "," : "{", (long long)keys[i][0]);
        fx_buf_printf(lo, "%s%lld", i ? "," : "{", (long long)keys[i][1]);
    }
    fx_buf_putc(hi, '}');
    fx_buf_putc(lo, '}');
}

/*
 * PostgreSQL: run sql (taking the keys' two words as unnest(?::bigint[],
 * ?::bigint[])) on keys[0..n), 8192 keys a statement; rows it returns (hi,
 * lo) are added to w->known. A round trip per key would hold every group
 * for hundreds of them (the file import does the same, src/services/ingest.c).
 */
static int pg_keys(struct fx_api_writer *w, const char *sql, const int64_t (*keys)[2], size_t n,
                   const char *what, struct fx_err *err)
{
    struct fx_buf hi, lo;
    fx_buf_init(&hi, 0);
    fx_buf_init(&lo, 0);
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += PG_KEYS_PER_INSERT) {
        size_t end = n - at > PG_KEYS_PER_INSERT ? at + PG_KEYS_PER_INSERT : n;
        key_arrays(&hi, &lo, keys + at, end - at);
        struct fx_stmt *st;
        if ((rc = fx_store_prepare(w->ig->db, sql, &st, err)))
            break;
        fx_stmt_bind_text(st, 1, hi.data, hi.len);
        fx_stmt_bind_text(st, 2, lo.data, lo.len);
        int s;
        while ((s = fx_stmt_step(st)) == FX_STORE_ROW) {
            int64_t k[2] = {fx_stmt_int(st, 0), fx_stmt_int(st, 1)};
            keys_push(&w->known, &w->nknown, &w->capknown, k);
        }
        fx_stmt_reset(st);
        if (s < 0)
            rc = fx_err_set(err, s, "cannot %s %zu dedupe keys: %s", what, end - at,
                            fx_store_errmsg(w->ig->db));
    }
    fx_buf_cleanup(&hi);
    fx_buf_cleanup(&lo);
    return rc;
}

/* Write sorted keys into `seen` (inside the caller's transaction). */
static int keys_write(struct fx_api_writer *w, const int64_t (*keys)[2], size_t n,
                      struct fx_err *err)
{
    int64_t gen0 = 0;
    if (w->sf_enabled)
        gen_read(w, &gen0);
    int rc = w->pg ? pg_keys(w,
                             "INSERT INTO seen(hi,lo) SELECT * FROM"
                             " unnest(?::bigint[], ?::bigint[]) ON CONFLICT DO NOTHING",
                             keys, n, "record", err)
                   : keys_insert(w, keys, n, err);
    if (rc == 0 && w->sf_enabled &&
        (rc = fx_store_exec(w->ig->db, "UPDATE seen_gen SET gen = gen + 1", err)))
        fx_err_set(err, rc, "cannot record dedupe keys: %s", fx_store_errmsg(w->ig->db));
    if (rc == 0)
        sf_own(w, gen0, keys, n);
    return rc;
}

/* The pending keys moved to the start of the table, in no order. */
static size_t pend_compact(struct fx_api_writer *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->cappend; i++)
        if (w->pend[i][0] || w->pend[i][1]) {
            w->pend[n][0] = w->pend[i][0];
            w->pend[n][1] = w->pend[i][1];
            n++;
        }
    return n;
}

/* The pending keys, compacted to the front of the table and sorted. */
static size_t pend_sorted(struct fx_api_writer *w)
{
    size_t n = pend_compact(w);
    qsort(w->pend, n, sizeof(*w->pend), cmp_key);
    return n;
}

/* n keys of src into dst, in cmp_key order (signed, word 0 then 1). A pass
 * starts with up to PEND_MAX keys, once a second under load, between two
 * groups: qsort took 9-10 ms for 65k keys, and every request queued behind
 * it waited. The keys are BLAKE2b words, uniform, so a counting sort on their
 * top 16 bits (in signed order) leaves about one key per bucket, sorted in
 * place; a bucket grown big (crafted keys) is qsorted, no worse than before. */
void fx__keys_sort(const int64_t (*src)[2], size_t n, int64_t (*dst)[2])
{
    enum { BUCKETS = 1 << 16 };
    if (n < 256 || n > UINT32_MAX) {
        memcpy(dst, src, n * sizeof(*dst));
        qsort(dst, n, sizeof(*dst), cmp_key);
        return;
    }
    uint32_t *at = fx_calloc(BUCKETS + 1, sizeof(*at));
#define KEY_BUCKET(k) ((size_t)(((uint64_t)(k)[0] ^ 0x8000000000000000ull) >> 48))
    for (size_t i = 0; i < n; i++)
        at[KEY_BUCKET(src[i]) + 1]++;
    for (size_t b = 0; b < BUCKETS; b++)
        at[b + 1] += at[b];
    /* at[b] is now where bucket b starts; it moves to where b+1 starts */
    for (size_t i = 0; i < n; i++) {
        size_t j = at[KEY_BUCKET(src[i])]++;
        dst[j][0] = src[i][0];
        dst[j][1] = src[i][1];
    }
#undef KEY_BUCKET
    size_t from = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        size_t to = at[b], m = to - from;
        if (m > 16) {
            qsort(dst + from, m, sizeof(*dst), cmp_key);
        } else {
            for (size_t i = from + 1; i < to; i++) { /* insertion sort */
                int64_t k0 = dst[i][0], k1 = dst[i][1];
                size_t j = i;
                while (j > from &&
                       (dst[j - 1][0] > k0 || (dst[j - 1][0] == k0 && dst[j - 1][1] > k1))) {
                    dst[j][0] = dst[j - 1][0];
                    dst[j][1] = dst[j - 1][1];
                    j--;
                }
                dst[j][0] = k0;
                dst[j][1] = k1;
            }
        }
        from = to;
    }
    free(at);
}

/* Write all pending keys in index order (inside the caller's transaction):
 * at stop, where nothing may stay behind. */
static int pend_flush(struct fx_api_writer *w, struct fx_err *err)
{
    if (!w->npend)
        return 0;
    size_t n = pend_sorted(w);
    sf_check(w);
    int rc = keys_write(w, (const int64_t(*)[2])w->pend, n, err);
    /* the table is rebuilt empty either way: on failure the group rolls back
     * and its requests fail, and keys of committed groups are still in the
     * store's `seen` only if this succeeded -- so keep them on failure */
    if (rc == 0) {
        memset(w->pend, 0, w->cappend * sizeof(*w->pend));
        w->npend = 0;
    } else {
        /* put them back into hash order */
        int64_t(*keys)[2] = fx_malloc(n * sizeof(*keys));
        memcpy(keys, w->pend, n * sizeof(*keys));
        memset(w->pend, 0, w->cappend * sizeof(*w->pend));
        w->npend = 0;
        for (size_t i = 0; i < n; i++)
            pend_put(w, keys[i]);
        free(keys);
    }
    return rc;
}

/* Is the key in the pass (written or not)? */
static int fq_has(const struct fx_api_writer *w, const int64_t k[2])
{
    return w->fq_n && bsearch(k, w->fq, w->fq_n, sizeof(*w->fq), cmp_key) != NULL;
}

/* Between groups: when the pending keys are due (or `now`, on an idle
 * writer) and no pass runs, they become the next pass. */
static void pass_start_due(struct fx_api_writer *w, int now)
{
    if (w->fq_n || !w->npend ||
        (!now && w->npend < PEND_MAX && fx_mono_ms() - w->pend_since < PEND_MS))
        return;
    size_t n = pend_compact(w);
    if (n > w->fq_cap) {
        free(w->fq);
        w->fq_cap = n;
        w->fq = fx_malloc(n * sizeof(*w->fq));
    }
    fx__keys_sort((const int64_t(*)[2])w->pend, n, w->fq);
    w->fq_n = n;
    w->fq_done = w->fq_next = 0;
    w->fq_start_ms = fx_mono_ms();
    memset(w->pend, 0, w->cappend * sizeof(*w->pend));
    w->npend = 0;
    w->ngroup = 0; /* keys of committed groups only: a later rollback keeps them */
}

/* Inside a transaction: write the next `max` keys of the pass. */
/* Keys of the pass due in this group: as many as bring it to the share of
 * PASS_SPREAD_MS gone by (all of it past that), PASS_MIN at least. */
static size_t pass_due(const struct fx_api_writer *w)
{
    if (!w->fq_n)
        return 0;
    int64_t gone = fx_mono_ms() - w->fq_start_ms + 1;
    size_t target = gone >= PASS_SPREAD_MS
                        ? w->fq_n
                        : (size_t)((double)w->fq_n * (double)gone / PASS_SPREAD_MS);
    size_t due = target > w->fq_next ? target - w->fq_next : 0;
    return due < PASS_MIN ? PASS_MIN : due;
}

static int pass_write(struct fx_api_writer *w, size_t max, struct fx_err *err)
{
    size_t m = w->fq_n - w->fq_next;
    if (m > max)
        m = max;
    if (!m)
        return 0;
    int rc = keys_write(w, (const int64_t(*)[2])(w->fq + w->fq_next), m, err);
    if (rc == 0)
        w->fq_next += m;
    return rc;
}

/* After the transaction: keep what it wrote, or forget it on rollback. */
static void pass_end(struct fx_api_writer *w, int committed)
{
    if (!committed) {
        w->fq_next = w->fq_done;
        return;
    }
    w->fq_done = w->fq_next;
    if (w->fq_done == w->fq_n)
        w->fq_n = w->fq_done = w->fq_next = 0;
}

static void ask_push(struct fx_api_writer *w, const int64_t k[2])
{
    if (pend_has(w, k) || fq_has(w, k))
        return; /* decided without `seen` */
    keys_push(&w->ask, &w->nask, &w->capask, k);
}

/*
 * PostgreSQL: a lookup per key is a round trip per row. Before a group, read
 * which of the keys its rows will look up `seen` already holds, 8192 keys a
 * statement; seen_take then answers from that (keys it did not ask about
 * are still looked up one by one). Same answers as the lookups one by one in
 * the same transaction: keys the group itself takes are found among the
 * pending ones first.
 */
static int pg_prefetch(struct fx_api_writer *w, struct fx_api_req *list, struct fx_err *err)
{
    w->prefetched = 0;
    w->nask = w->nknown = 0;
    for (struct fx_api_req *r = list; r; r = r->next)
        for (size_t i = 0; i < r->nrows; i++) {
            ask_push(w, r->rows[i].key);
            if (r->rows[i].distinct_content && !r->rows[i].by_content)
                ask_push(w, r->rows[i].content);
        }
    if (!w->nask)
        return 0;
    qsort(w->ask, w->nask, sizeof(*w->ask), cmp_key);
    size_t n = 0;
    for (size_t i = 0; i < w->nask; i++)
        if (i == 0 || cmp_key(w->ask[i - 1], w->ask[i]) != 0) {
            w->ask[n][0] = w->ask[i][0];
            w->ask[n][1] = w->ask[i][1];
            n++;
        }
    w->nask = n;
    int rc = pg_keys(w,
                     "SELECT s.hi, s.lo FROM unnest(?::bigint[], ?::bigint[])"
                     " AS k(hi, lo) JOIN seen s ON s.hi = k.hi AND s.lo = k.lo",
                     (const int64_t(*)[2])w->ask, n, "look up", err);
    if (rc == 0) {
        if (w->nknown > 1)
            qsort(w->known, w->nknown, sizeof(*w->known), cmp_key);
        w->prefetched = 1;
    }
    return rc;
}

/* 1 = the key is new (taken), 0 = seen before, < 0 error. */
static int seen_take(struct fx_api_writer *w, const int64_t k[2], struct fx_err *err)
{
    if (pend_has(w, k) || fq_has(w, k))
        return 0;
    if (w->sf_valid && !sf_maybe(&w->sf, k)) { /* certainly not in `seen` */
        atomic_fetch_add_explicit(&w->st_filtered, 1, memory_order_relaxed);
        pend_add(w, k);
        return 1;
    }
    atomic_fetch_add_explicit(&w->st_looked_up, 1, memory_order_relaxed);
    if (w->prefetched && bsearch(k, w->ask, w->nask, sizeof(*w->ask), cmp_key)) {
        if (w->nknown && bsearch(k, w->known, w->nknown, sizeof(*w->known), cmp_key))
            return 0;
        pend_add(w, k);
        return 1;
    }
    struct fx_stmt *st;
    int rc = fx_store_prepare(w->ig->db, "SELECT 1 FROM seen WHERE hi = ? AND lo = ?", &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_int(st, 1, k[0]);
    fx_stmt_bind_int(st, 2, k[1]);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "cannot look up a dedupe key: %s", fx_store_errmsg(w->ig->db));
    if (rc == FX_STORE_ROW)
        return 0;
    pend_add(w, k);
    return 1;
}

static int issue_insert(struct fx_store *db, const char *batch, const char *corr,
                        const struct fx_api_issue *is, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(db,
                              "INSERT INTO issues(batch_id,row,col,field,value,rule,reason,"
                              "severity,correlation_id,line) VALUES(?,?,?,?,?,?,?,?,?,?)",
                              &st, err);
    if (rc)
        return rc;
    const char *sev = is->severity == FX_ISSUE_ERROR ? "error" : "warning";
    fx_stmt_bind_text(st, 1, batch, 36);
    fx_stmt_bind_int(st, 2, is->record);
    fx_stmt_bind_int(st, 3, is->column);
    fx_stmt_bind_text(st, 4, is->field, strlen(is->field));
    fx_stmt_bind_text(st, 5, is->value, strlen(is->value));
    fx_stmt_bind_text(st, 6, is->rule, strlen(is->rule));
    fx_stmt_bind_text(st, 7, is->reason, strlen(is->reason));
    fx_stmt_bind_text(st, 8, sev, strlen(sev));
    fx_stmt_bind_text(st, 9, corr, 36);
    if (is->line > 0)
        fx_stmt_bind_int(st, 10, is->line);
    else
        fx_stmt_bind_null(st, 10);
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot record issue: %s", fx_store_errmsg(db)) : 0;
}

#define AR_INSERT                                                                                  \
    "INSERT INTO api_requests(correlation_id,batch_id,pipeline,idem_key,body_hash,traceparent,"    \
    "received,accepted,rejected,duplicate,warnings,possible_dup,created_at)"

/* One element of a PostgreSQL array literal: NULL, or text quoted with " and \ escaped. */
static void ar_text(struct fx_buf *b, const char *s)
{
    if (b->len)
        fx_buf_putc(b, ',');
    if (!s) {
        fx_buf_puts(b, "NULL");
        return;
    }
    fx_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fx_buf_putc(b, '\\');
        fx_buf_putc(b, *s);
    }
    fx_buf_putc(b, '"');
}

static void ar_int(struct fx_buf *b, uint64_t v)
{
    fx_buf_printf(b, "%s%llu", b->len ? "," : "", (unsigned long long)v);
}

static void ar_drop(struct fx_api_writer *w)
{
    w->ar_npend = 0;
    for (int i = 0; i < 13; i++)
        fx_buf_reset(&w->ar_col[i]);
    w->ar_n = 0;
}

static int sq_flush(struct fx_api_writer *w, struct fx_err *err);

/* The group's api_requests rows: on PostgreSQL in one statement (a round
 * trip per request was most of a small request's time there), on SQLite
 * by sq_flush. */
static int ar_flush(struct fx_api_writer *w, struct fx_err *err)
{
    if (!w->pg)
        return sq_flush(w, err);
    if (!w->ar_n)
        return 0;
    struct fx_buf lit[13];
    for (int i = 0; i < 13; i++) {
        fx_buf_init(&lit[i], 0);
        fx_buf_putc(&lit[i], '{');
        fx_buf_append(&lit[i], w->ar_col[i].data, w->ar_col[i].len);
        fx_buf_putc(&lit[i], '}');
    }
    struct fx_stmt *st;
    int rc =
        fx_store_prepare(w->ig->db,
                         AR_INSERT " SELECT * FROM unnest(?::text[], ?::text[], ?::text[],"
                                   " ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[],"
                                   " ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[],"
                                   " ?::text[])",
                         &st, err);
    if (rc == 0) {
        for (int i = 0; i < 13; i++)
            fx_stmt_bind_text(st, i + 1, lit[i].data, lit[i].len);
        rc = fx_stmt_step(st);
        fx_stmt_reset(st);
        rc = rc < 0 ? fx_err_set(err, rc, "cannot record %zu requests: %s", w->ar_n,
                                 fx_store_errmsg(w->ig->db))
                    : 0;
    }
    for (int i = 0; i < 13; i++)
        fx_buf_cleanup(&lit[i]);
    ar_drop(w);
    return rc;
}

/* The request's api_requests row (its ids and counts in r->res), written
 * with the group's others by ar_flush. */
static void request_row(struct fx_api_writer *w, const struct fx_api_req *r)
{
    const struct fx_api_counts *c = &r->res;
    if (w->pg) {
        struct fx_buf *col = w->ar_col;
        ar_text(&col[0], r->corr);
        ar_text(&col[1], c->batch_id);
        ar_text(&col[2], c->pipeline);
        ar_text(&col[3], r->idem_key);
        ar_text(&col[4], r->idem_key ? r->body_hash : NULL);
        ar_text(&col[5], r->trace);
        ar_int(&col[6], c->received);
        ar_int(&col[7], c->accepted);
        ar_int(&col[8], c->rejected);
        ar_int(&col[9], c->duplicate);
        ar_int(&col[10], c->warnings);
        ar_int(&col[11], c->possible_dup);
        ar_text(&col[12], c->created_at);
        w->ar_n++;
        return;
    }
    if (w->ar_npend == w->ar_cappend) {
        w->ar_cappend = w->ar_cappend ? 2 * w->ar_cappend : 64;
        w->ar_pend = fx_realloc(w->ar_pend, w->ar_cappend * sizeof(*w->ar_pend));
    }
    w->ar_pend[w->ar_npend++] = r;
}

/* SQLite: the pending api_requests rows, AR_ROWS to a statement (one
 * statement a request was a quarter of the writer's time under load, most
 * of it the statement's own overhead, not the row's). */
#define AR_ROWS 16
#define AR_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?)"
static int sq_flush(struct fx_api_writer *w, struct fx_err *err)
{
    static const char *const sql[2] = {
        AR_INSERT " VALUES" AR_ROW,
        AR_INSERT " VALUES" AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW
                  "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW "," AR_ROW
                  "," AR_ROW "," AR_ROW,
    };
    int rc = 0;
    size_t at = 0;
    while (at < w->ar_npend && rc == 0) {
        size_t n = w->ar_npend - at >= AR_ROWS ? AR_ROWS : 1;
        struct fx_stmt *st;
        if ((rc = fx_store_prepare(w->ig->db, sql[n == AR_ROWS], &st, err)))
            break;
        for (size_t k = 0; k < n; k++) {
            const struct fx_api_req *r = w->ar_pend[at + k];
            const struct fx_api_counts *c = &r->res;
            int b = (int)k * 13;
            fx_stmt_bind_text(st, b + 1, r->corr, 36);
            fx_stmt_bind_text(st, b + 2, c->batch_id, 36);
            fx_stmt_bind_text(st, b + 3, c->pipeline, strlen(c->pipeline));
            if (r->idem_key) {
                fx_stmt_bind_text(st, b + 4, r->idem_key, strlen(r->idem_key));
                fx_stmt_bind_text(st, b + 5, r->body_hash, 64);
            }
            fx_stmt_bind_text(st, b + 6, r->trace, strlen(r->trace));
            fx__bind_counts(st, b + 7,
                            (const uint64_t[6]){c->received, c->accepted, c->rejected, c->duplicate,
                                                c->warnings, c->possible_dup});
            fx_stmt_bind_text(st, b + 13, c->created_at, strlen(c->created_at));
        }
        int s = fx_stmt_step(st);
        fx_stmt_reset(st);
        if (s < 0)
            rc =
                fx_err_set(err, s, "cannot record %zu requests: %s", n, fx_store_errmsg(w->ig->db));
        at += n;
    }
    w->ar_npend = 0;
    return rc;
}

/* An earlier request with r's idempotency key: 1 (r->res filled, replay set), 0 none, < 0. */
static int idem_lookup(struct fx_api_writer *w, struct fx_api_req *r, struct fx_err *err)
{
    struct fx_stmt *st;
    int rc = fx_store_prepare(w->ig->db,
                              "SELECT correlation_id, batch_id, body_hash, received, accepted,"
                              " rejected, duplicate, warnings, possible_dup, created_at, pipeline"
                              " FROM api_requests WHERE idem_key = ?",
                              &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, r->idem_key, strlen(r->idem_key));
    rc = fx_stmt_step(st);
    if (rc == FX_STORE_ROW) {
        const char *hash = fx_stmt_text(st, 2, NULL);
        if (hash && strcmp(hash, r->body_hash) == 0) {
            r->replay = 1;
            snprintf(r->res.correlation_id, sizeof(r->res.correlation_id), "%s",
                     fx_stmt_text(st, 0, NULL));
            snprintf(r->res.batch_id, sizeof(r->res.batch_id), "%s", fx_stmt_text(st, 1, NULL));
            r->res.received = (uint64_t)fx_stmt_int(st, 3);
            r->res.accepted = (uint64_t)fx_stmt_int(st, 4);
            r->res.rejected = (uint64_t)fx_stmt_int(st, 5);
            r->res.duplicate = (uint64_t)fx_stmt_int(st, 6);
            r->res.warnings = (uint64_t)fx_stmt_int(st, 7);
            r->res.possible_dup = (uint64_t)fx_stmt_int(st, 8);
            snprintf(r->res.created_at, sizeof(r->res.created_at), "%s", fx_stmt_text(st, 9, NULL));
            snprintf(r->res.pipeline, sizeof(r->res.pipeline), "%s", fx_stmt_text(st, 10, NULL));
        } else {
            r->replay = 2;
        }
        rc = 1;
    } else if (rc >= 0) {
        rc = 0;
    } else {
        fx_err_set(err, rc, "cannot look up idempotency key: %s", fx_store_errmsg(w->ig->db));
    }
    fx_stmt_reset(st);
    return rc;
}

/* ---- held chunks: the writer's side ---- */

static int exec_id(struct fx_store *db, const char *sql, const char *id, struct fx_err *err)
{
    return exec_text(db, sql, id, NULL, err);
}

/* Stage a part's chunks, held (inside the group's transaction). */
static int write_part(struct fx_api_writer *w, struct fx_api_req *part, const char *now,
                      struct fx_err *err)
{
    struct hold *h = part->hold;
    if (h->rc || h->finished)
        return 0; /* an earlier part failed: so will the request */
    int rc;
    if (!h->batch_written) {
        if ((rc = batch_insert(w, h->batch, h->corr, h->trace, h->p, now, err)))
            return rc;
        h->batch_written = 1;
    }
    for (size_t k = 0; k < part->nheld; k++) {
        const struct held_chunk *hc = &part->held[k];
        if ((rc = fx__stage_chunk_as(w->ig->db, hc->id, w->owner, h->batch, hc->seq, hc->first_row,
                                     hc->last_row, hc->nrows, now, &part->pl[k], h->corr, h->trace,
                                     err)))
            return rc;
    }
    return 0;
}

/* Remove the held chunks of batch; the batch fails with why (or, why NULL,
 * goes: a request answered by an earlier one leaves no trace). */
static int hold_discard(struct fx_api_writer *w, const char *batch, const char *why,
                        struct fx_err *err)
{
    static const char *const del[] = {
        "DELETE FROM staging_payload WHERE id IN (SELECT id FROM staging_held WHERE batch_id = ?)",
        "DELETE FROM staging WHERE id IN (SELECT id FROM staging_held WHERE batch_id = ?)",
        "DELETE FROM staging_held WHERE batch_id = ?",
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(del) / sizeof(del[0]) && rc == 0; i++)
        rc = exec_id(w->ig->db, del[i], batch, err);
    if (rc)
        return rc;
    if (!why)
        return exec_id(w->ig->db, "DELETE FROM batches WHERE id = ? AND state = 'receiving'", batch,
                       err);
    struct fx_stmt *st;
    if ((rc = fx_store_prepare(w->ig->db,
                               "UPDATE batches SET state = 'failed', error = ?, finished_at = ?"
                               " WHERE id = ? AND state = 'receiving'",
                               &st, err)))
        return rc;
    char now[32];
    fx__now_iso(now);
    fx_stmt_bind_text(st, 1, why, strlen(why));
    fx_stmt_bind_text(st, 2, now, strlen(now));
    fx_stmt_bind_text(st, 3, batch, strlen(batch));
    rc = fx_stmt_step(st);
    fx_stmt_reset(st);
    return rc < 0 ? fx_err_set(err, rc, "cannot remove held chunks: %s", fx_store_errmsg(w->ig->db))
                  : 0;
}

/* An abort: the request will not commit; its held chunks go. */
static int write_abort(struct fx_api_writer *w, struct fx_api_req *a, struct fx_err *err)
{
    if (a->hold->finished || !a->hold->batch_written)
        return 0;
    return hold_discard(w, a->hold->batch,
                        "the request ended before its body was complete; nothing of it was taken",
                        err);
}

/* 1 when every held chunk of r is still in the store. */
static int held_present(struct fx_api_writer *w, const struct fx_api_req *r, struct fx_err *err)
{
    if (!r->nheld)
        return 1;
    struct fx_stmt *st;
    int rc = fx_store_prepare(w->ig->db, "SELECT count(*) FROM staging_held WHERE batch_id = ?",
                              &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, r->hold->batch, 36);
    rc = fx_stmt_step(st);
    int64_t n = rc == FX_STORE_ROW ? fx_stmt_int(st, 0) : -1;
    fx_stmt_reset(st);
    if (rc < 0)
        return fx_err_set(err, rc, "cannot read held chunks: %s", fx_store_errmsg(w->ig->db));
    return n == (int64_t)r->nheld;
}

/* A held chunk some of whose rows were duplicates: rewritten without them,
 * from its stored payload (the rendered rows were freed once held), or
 * removed when none is left. */
static int held_rewrite(struct fx_api_writer *w, const struct fx_api_req *r,
                        const struct held_chunk *hc, struct open_batch *ob, struct fx_err *err)
{
    struct fx_store *db = w->ig->db;
    struct fx_stmt *st;
    int rc = fx_store_prepare(db, "SELECT payload FROM staging_payload WHERE id = ?", &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, hc->id, 36);
    rc = fx_stmt_step(st);
    size_t len = 0;
    const char *pl = rc == FX_STORE_ROW ? fx_stmt_text(st, 0, &len) : NULL;
    struct fx_buf nb;
    fx_buf_init(&nb, 0);
    size_t off = hc->hdr, kept = 0;
    long first = 0, last = 0;
    int bad = !pl || len < hc->hdr;
    if (!bad)
        fx_buf_append(&nb, pl, hc->hdr);
    for (size_t j = 0; j < hc->nrows && !bad; j++) {
        const struct api_row *ar = &r->rows[hc->first_ix + j];
        if (j)
            off++; /* the comma before the row */
        if (off + ar->len > len) {
            bad = 1;
            break;
        }
        if (!ar->dropped) {
            if (kept)
                fx_buf_putc(&nb, ',');
            else
                first = ar->record;
            fx_buf_append(&nb, pl + off, ar->len);
            last = ar->record;
            kept++;
        }
        off += ar->len;
    }
    if (!bad && (len - off != 2 || memcmp(pl + off, "]}", 2) != 0))
        bad = 1;
    fx_stmt_reset(st);
    if (rc < 0 || bad) {
        fx_buf_cleanup(&nb);
        return rc < 0 ? fx_err_set(err, rc, "cannot read held chunk: %s", fx_store_errmsg(db))
                      : fx_err_set(err, FX_ESTORE,
                                   "held chunk %s does not hold the rows its request put there",
                                   hc->id);
    }
    if (kept == 0) {
        ob->gone++;
        rc = exec_id(db, "DELETE FROM staging_payload WHERE id = ?", hc->id, err);
        if (rc == 0)
            rc = exec_id(db, "DELETE FROM staging WHERE id = ?", hc->id, err);
        fx_buf_cleanup(&nb);
        return rc;
    }
    fx_buf_puts(&nb, "]}");
    rc = fx_store_prepare(db, "UPDATE staging_payload SET payload = ? WHERE id = ?", &st, err);
    if (rc == 0) {
        fx_stmt_bind_text_ref(st, 1, nb.data, nb.len);
        fx_stmt_bind_text(st, 2, hc->id, 36);
        int s = fx_stmt_step(st);
        fx_stmt_reset(st);
        if (s < 0)
            rc = fx_err_set(err, s, "cannot rewrite held chunk: %s", fx_store_errmsg(db));
    }
    if (rc == 0 && (rc = fx_store_prepare(db,
                                          "UPDATE staging SET nrows = ?, first_row = ?,"
                                          " last_row = ? WHERE id = ?",
                                          &st, err)) == 0) {
        fx_stmt_bind_int(st, 1, (int64_t)kept);
        fx_stmt_bind_int(st, 2, first);
        fx_stmt_bind_int(st, 3, last);
        fx_stmt_bind_text(st, 4, hc->id, 36);
        int s = fx_stmt_step(st);
        fx_stmt_reset(st);
        if (s < 0)
            rc = fx_err_set(err, s, "cannot rewrite held chunk: %s", fx_store_errmsg(db));
    }
    fx_buf_cleanup(&nb);
    return rc ? rc : fx__queue_chunk(db, hc->id, err);
}

/* The request commits: its held chunks are queued (rewritten first where
 * rows of them were duplicates: dirty) and no longer held. */
static int held_queue(struct fx_api_writer *w, const struct fx_api_req *r,
                      const unsigned char *dirty, struct open_batch *ob, struct fx_err *err)
{
    int rc = 0;
    for (size_t k = 0; k < r->nheld && rc == 0; k++)
        rc = dirty[k] ? held_rewrite(w, r, &r->held[k], ob, err)
                      : fx__queue_chunk(w->ig->db, r->held[k].id, err);
    if (rc == 0)
        rc = exec_id(w->ig->db, "DELETE FROM staging_held WHERE batch_id = ?", r->hold->batch, err);
    return rc;
}

/* Held chunks of requests that ended without committing or removing them:
 * their server stopped (on this host: its process is gone), or they are over
 * an hour old (another host's server, or one that never came back). */
static int held_stale(const struct fx_api_writer *w, const char *owner, const char *created)
{
    if (strcmp(owner, w->owner) == 0)
        return 0; /* ours: requests still arriving */
    char host[256];
    const char *sp = strchr(owner, ' ');
    if (sp && (size_t)(sp - owner) < sizeof(host) && gethostname(host, sizeof(host)) == 0 &&
        strlen(host) == (size_t)(sp - owner) && memcmp(host, owner, strlen(host)) == 0) {
        long pid = strtol(sp + 1, NULL, 10);
        if (pid == (long)getpid() || (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            return 1; /* an earlier writer of this process, or a process gone */
    }
    char cutoff[32];
    time_t t = (time_t)(fx_now_ms() / 1000) - 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(cutoff, sizeof(cutoff), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return strcmp(created, cutoff) < 0;
}

static void held_sweep(struct fx_api_writer *w)
{
    w->swept_ms = fx_mono_ms();
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_stmt *st;
    if (fx_store_prepare(w->ig->db,
                         "SELECT batch_id, min(owner), min(created_at) FROM staging_held"
                         " GROUP BY batch_id",
                         &st, &err) != 0)
        return;
    char(*stale)[37] = NULL;
    size_t n = 0, cap = 0;
    while (fx_stmt_step(st) == FX_STORE_ROW) {
        const char *b = fx_stmt_text(st, 0, NULL), *o = fx_stmt_text(st, 1, NULL),
                   *c = fx_stmt_text(st, 2, NULL);
        if (!b || strlen(b) != 36 || !o || !c || !held_stale(w, o, c))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            stale = fx_realloc(stale, cap * sizeof(*stale));
        }
        memcpy(stale[n++], b, 37);
    }
    fx_stmt_reset(st);
    for (size_t i = 0; i < n; i++) {
        int rc = fx_store_begin(w->ig->db);
        if (rc == 0)
            rc = hold_discard(w, stale[i],
                              "the server stopped before the request's body was complete;"
                              " nothing of it was taken",
                              &err);
        if (rc == 0)
            rc = fx_store_commit(w->ig->db);
        if (rc) {
            fx_store_rollback(w->ig->db);
            fx_log(FX_LOG_WARN, "api", NULL, "cannot remove held chunks of batch %s: %s", stale[i],
                   err.reason[0] ? err.reason : fx_store_errmsg(w->ig->db));
        } else {
            fx_log(FX_LOG_INFO, "api", NULL,
                   "removed the chunks of batch %s: its request never completed", stale[i]);
        }
    }
    free(stale);
}

static int write_rows(struct fx_api_writer *w, struct fx_api_req *r, struct open_batch *ob,
                      unsigned char *dirty, const char *now, struct fx_err *err);

/* Write one request inside the group's transaction. */
static int write_req(struct fx_api_writer *w, struct fx_api_req *r, const char *now,
                     struct fx_err *err)
{
    int rc;
    r->replay = 0;
    struct hold *h = r->hold;
    if (h && !h->rc && (rc = held_present(w, r, err)) <= 0) {
        if (rc < 0)
            return rc;
        h->rc = FX_ESTORE;
        h->reason = fx_strdup("chunks this request wrote while its body arrived were removed"
                              " as abandoned; nothing of it was taken");
    }
    if (h && h->rc) /* it fails alone (write_group answers it with h->rc) */
        return hold_discard(w, h->batch, h->reason ? h->reason : "the request failed", err);
    /* the group's earlier requests must be visible to the lookup */
    if (r->idem_key && (rc = ar_flush(w, err)))
        return rc;
    if (r->idem_key && (rc = idem_lookup(w, r, err)) != 0) {
        if (rc == 1 && h) /* answered by the earlier request: nothing of this one is taken */
            rc = hold_discard(w, h->batch, NULL, err);
        return rc < 0 ? rc : 0;
    }
    if (!h) {
        struct open_batch *ob = batch_for(w, r->p, now, err);
        return ob ? write_rows(w, r, ob, NULL, now, err) : FX_ESTORE;
    }
    /* a big body: its batch of its own, some of its chunks held already */
    struct open_batch mine;
    memset(&mine, 0, sizeof(mine));
    mine.p = r->p;
    memcpy(mine.id, h->batch, sizeof(mine.id));
    memcpy(mine.corr, h->corr, sizeof(mine.corr));
    mine.chunks = r->nheld; /* the next chunk's number */
    fx_buf_init(&mine.chunk, 0);
    unsigned char *dirty = fx_calloc(r->nheld ? r->nheld : 1, 1);
    rc = 0;
    if (!h->batch_written &&
        (rc = batch_insert(w, h->batch, h->corr, h->trace, r->p, now, err)) == 0)
        h->batch_written = 1;
    if (rc == 0)
        rc = write_rows(w, r, &mine, dirty, now, err);
    if (rc == 0 && (rc = batch_save(w, &mine, 1, err)) == 0)
        snprintf(r->res.state, sizeof(r->res.state), "queued");
    fx_buf_cleanup(&mine.chunk);
    free(dirty);
    return rc;
}

/* The rows of request r into batch ob (its chunks, issues and request row);
 * dirty: r's held chunks, marked where a row of theirs is a duplicate. */
static int write_rows(struct fx_api_writer *w, struct fx_api_req *r, struct open_batch *ob,
                      unsigned char *dirty, const char *now, struct fx_err *err)
{
    int rc;
    struct fx_api_counts *c = &r->res;
    uint64_t rejected = c->rejected;
    memset(c, 0, sizeof(*c));
    c->rejected = rejected;
    c->received = r->received;
    memcpy(c->batch_id, ob->id, 37);
    memcpy(c->correlation_id, r->corr, 37);
    snprintf(c->pipeline, sizeof(c->pipeline), "%s", fx_pipeline_name(r->p));
    memcpy(c->created_at, now, sizeof(c->created_at));
    int own = r->hold || r->own_trace || r->nrows > OWN_CHUNKS_ROWS;
    if (own) { /* chunks of its own: its CloudEvents carry its ids */
        if ((rc = chunk_flush(w, ob, now, err)))
            return rc;
        ob->chunk_corr = r->corr;
        ob->chunk_trace = r->trace;
    }
    size_t per = r->nheld ? r->held[0].nrows : 1;
    if (r->nrows > 64) {
        pend_reserve(w, 2 * r->nrows); /* a key and a repeat key a row at most */
        if (w->ngroup + 2 * r->nrows > w->capgroup) {
            w->capgroup = w->ngroup + 2 * r->nrows;
            w->group_keys = fx_realloc(w->group_keys, w->capgroup * sizeof(*w->group_keys));
        }
    }
    for (size_t i = 0; i < r->nrows; i++) {
        /* the held chunks are queued before the chunks of the rest */
        if (i == r->held_rows && r->nheld && (rc = held_queue(w, r, dirty, ob, err)))
            return rc;
        struct api_row *ar = &r->rows[i];
        ar->dropped = 0;
        if ((rc = seen_take(w, ar->key, err)) < 0)
            return rc;
        if (rc == 0) {
            ar->dropped = 1;
            c->duplicate++;
            if (i < r->held_rows)
                dirty[i / per] = 1;
            continue;
        }
        if (ar->distinct_content && ar->by_content) {
            /* the repeat key (content without the time) of a timed row: only
             * recorded, so later rows without a time can be matched to it */
            pend_add(w, ar->content);
        } else if (ar->distinct_content) {
            /* keyed by position: a repeat key seen before only flags the row */
            if ((rc = seen_take(w, ar->content, err)) < 0)
                return rc;
            if (rc == 0) {
                c->possible_dup++;
                struct fx_api_issue *is = push_issue(r);
                is->record = ar->record;
                is->line = ar->line;
                is->severity = FX_ISSUE_WARN;
                is->row_ix = (int)i;
                snprintf(is->rule, sizeof(is->rule), "possible_duplicate");
                snprintf(is->reason, sizeof(is->reason),
                         "same content as an earlier row; kept because the record has no "
                         "date-time to tell a repeat purchase from a re-sent one");
            }
        }
        c->accepted++;
        if (i < r->held_rows)
            continue; /* in a held chunk already */
        if ((rc = chunk_add(w, ob, r, ar, now, err)))
            return rc;
    }
    if (r->nheld && r->held_rows == r->nrows && (rc = held_queue(w, r, dirty, ob, err)))
        return rc;
    /* warnings of a duplicate row go: the row was not taken */
    size_t keep = 0;
    for (size_t i = 0; i < r->nissues; i++)
        if (!(r->issues[i].row_ix >= 0 && r->rows[r->issues[i].row_ix].dropped))
            r->issues[keep++] = r->issues[i];
    r->nissues = keep;
    if (r->nissues > 1)
        qsort(r->issues, r->nissues, sizeof(*r->issues), cmp_issue);
    for (size_t i = 0; i < r->nissues; i++) {
        const struct fx_api_issue *is = &r->issues[i];
        if (is->severity == FX_ISSUE_WARN)
            c->warnings++;
        if ((rc = issue_insert(w->ig->db, ob->id, r->corr, is, err)))
            return rc;
    }
    if (own) {
        if ((rc = chunk_flush(w, ob, now, err)))
            return rc;
        ob->chunk_corr = ob->chunk_trace = NULL;
    }
    request_row(w, r);
    ob->received += c->received;
    ob->accepted += c->accepted;
    ob->rejected += c->rejected;
    ob->duplicate += c->duplicate;
    ob->warnings += c->warnings;
    ob->possible_dup += c->possible_dup;
    snprintf(c->state, sizeof(c->state), "receiving");
    return 0;
}

/* The backlog (rows staged and not applied, the outbox's share of them
 * pending) as the store has it, counted between two groups: every 250 ms,
 * or less often when the count itself takes long (it sums every unapplied
 * chunk, by the index; with `run ingest` alone nothing is applied and the
 * backlog grows), so counting never takes more than 2 % of the writer. */
static int refresh_due(const struct fx_api_writer *w)
{
    int64_t every = w->refresh_us / 20; /* ms: 50 times the last count */
    return fx_mono_ms() - w->refreshed_ms >= (every > 250 ? every : 250);
}

static void refresh_backlog(struct fx_api_writer *w)
{
    int64_t t0 = fx_mono_us();
    struct fx_stmt *st;
    struct fx_err err;
    if (fx_store_prepare(w->ig->db,
                         "SELECT coalesce(sum(nrows),0), coalesce(sum(CASE WHEN state='pending'"
                         " THEN nrows END),0) FROM staging WHERE state <> 'applied'",
                         &st, &err) != 0)
        return;
    if (fx_stmt_step(st) == FX_STORE_ROW) {
        atomic_store(&w->backlog, fx_stmt_int(st, 0));
        atomic_store(&w->outbox, fx_stmt_int(st, 1));
    }
    fx_stmt_reset(st);
    w->refreshed_ms = fx_mono_ms();
    w->refresh_us = fx_mono_us() - t0;
}

/* The writer is idle: write the rest of the pass, and the pending keys
 * (all of them when `now`, else when due), in transactions of at most
 * IDLE_SLICE keys, stopping as soon as a request is queued. */
#define IDLE_SLICE 8192
static void pass_finish_idle(struct fx_api_writer *w, int now)
{
    pass_start_due(w, now);
    while (w->fq_n) {
        pthread_mutex_lock(&w->mu);
        int busy = w->head != NULL || w->stop;
        pthread_mutex_unlock(&w->mu);
        if (busy)
            return;
        struct fx_err err;
        fx_err_clear(&err);
        int rc = fx_store_begin(w->ig->db);
        if (rc == 0) {
            sf_check(w);
            rc = pass_write(w, IDLE_SLICE, &err);
        }
        if (rc == 0)
            rc = fx_store_commit(w->ig->db);
        if (rc) {
            fx_store_rollback(w->ig->db);
            fx_log(FX_LOG_WARN, "api", NULL, "dedupe keys not written yet (will retry): %s",
                   err.reason[0] ? err.reason : fx_store_errmsg(w->ig->db));
        }
        pass_end(w, rc == 0);
        if (rc) {
            w->idle_keys_ms = fx_mono_ms() + 1000; /* not again at once */
            return;
        }
        if (!w->fq_n && now)
            pass_start_due(w, 1);
    }
}

/* A group rolled back: the keys it took were not stored with their rows. */
static void pend_forget_group(struct fx_api_writer *w)
{
    if (!w->ngroup)
        return;
    qsort(w->group_keys, w->ngroup, sizeof(*w->group_keys), cmp_key);
    size_t n = 0;
    int64_t(*keys)[2] = fx_malloc((w->npend ? w->npend : 1) * sizeof(*keys));
    for (size_t i = 0; i < w->cappend; i++)
        if ((w->pend[i][0] || w->pend[i][1]) &&
            !bsearch(w->pend[i], w->group_keys, w->ngroup, sizeof(*w->group_keys), cmp_key)) {
            keys[n][0] = w->pend[i][0];
            keys[n][1] = w->pend[i][1];
            n++;
        }
    memset(w->pend, 0, w->cappend * sizeof(*w->pend));
    w->npend = 0;
    w->ngroup = 0;
    for (size_t i = 0; i < n; i++)
        pend_put(w, keys[i]);
    free(keys);
}

/* Write a group; on failure every request of it fails (nothing of it was committed). */
static void write_group(struct fx_api_writer *w, struct fx_api_req *list)
{
    int64_t t0 = fx_mono_us();
    w->ngroup = 0;
    struct fx_err err;
    fx_err_clear(&err);
    char now[32];
    fx__now_iso(now);
    int rc = fx_store_begin(w->ig->db);
    if (rc)
        fx_err_set(&err, rc, "cannot start transaction: %s", fx_store_errmsg(w->ig->db));
    else
        sf_check(w); /* under the write lock: nobody adds keys until the commit */
    if (rc == 0 && w->pg)
        rc = pg_prefetch(w, list, &err);
    for (struct fx_api_req *r = list; r && rc == 0; r = r->next)
        rc = r->kind == REQ_PART    ? write_part(w, r, now, &err)
             : r->kind == REQ_ABORT ? write_abort(w, r, &err)
                                    : write_req(w, r, now, &err);
    w->prefetched = 0;
    if (rc == 0)
        rc = ar_flush(w, &err);
    else
        ar_drop(w); /* rolled back with the group */
    for (size_t i = 0; i < w->nbatches && rc == 0; i++) {
        struct open_batch *ob = &w->batches[i];
        if (!ob->id[0])
            continue;
        int close =
            ob->rows >= API_BATCH_ROWS || fx_mono_ms() - ob->opened_ms > API_BATCH_MS || w->stop;
        if ((rc = chunk_flush(w, ob, now, &err)) || (rc = batch_save(w, ob, close, &err)))
            break;
    }
    /* a slice of the running pass of dedupe keys; at stop, everything */
    if (rc == 0)
        rc = pass_write(w, w->stop ? SIZE_MAX : pass_due(w), &err);
    if (rc == 0 && w->stop)
        rc = pend_flush(w, &err);
    if (rc == 0 && (rc = fx_store_commit(w->ig->db)) != 0)
        fx_err_set(&err, rc, "cannot commit: %s", fx_store_errmsg(w->ig->db));
    pass_end(w, rc == 0);
    if (rc) {
        fx_store_rollback(w->ig->db);
        pend_forget_group(w);
        fx_log(FX_LOG_ERROR, "api", NULL, "API write failed, requests refused: %s", err.reason);
        /* the batches' in-memory state may be ahead of the store: start new ones */
        for (size_t i = 0; i < w->nbatches; i++) {
            w->batches[i].id[0] = '\0';
            w->batches[i].chunk_rows = 0;
        }
    } else {
        for (size_t i = 0; i < w->nbatches; i++) {
            struct open_batch *ob = &w->batches[i];
            if (ob->id[0] && (ob->rows >= API_BATCH_ROWS ||
                              fx_mono_ms() - ob->opened_ms > API_BATCH_MS || w->stop))
                ob->id[0] = '\0'; /* closed above: the next row opens a new one */
        }
    }
    w->st_groups++;
    w->st_us += (uint64_t)(fx_mono_us() - t0);
    for (struct fx_api_req *q = list; q; q = q->next)
        w->st_reqs++;
    if (fx_mono_ms() - w->st_since >= 5000) {
        if (w->st_groups)
            fx_log_debug("api", "writer: %llu groups, %.1f requests per group, %.2f ms per group",
                         (unsigned long long)w->st_groups,
                         (double)w->st_reqs / (double)w->st_groups,
                         (double)w->st_us / 1000.0 / (double)w->st_groups);
        w->st_groups = w->st_reqs = w->st_us = 0;
        w->st_since = fx_mono_ms();
    }
    while (list) {
        struct fx_api_req *next = list->next;
        list->next = NULL;
        struct hold *h = list->hold;
        if (list->kind != REQ_RECORDS) {
            if (list->kind == REQ_PART && rc && !h->rc) { /* its request will fail */
                h->rc = rc;
                h->reason = fx_strdup(err.reason);
            } else if (list->kind == REQ_ABORT && rc == 0) {
                h->finished = 1;
            }
            req_destroy(list);
            list = next;
            continue;
        }
        /* a request with held chunks fails alone when they could not all be written */
        int rrc = rc ? rc : h && h->rc ? h->rc : 0;
        struct fx_err herr;
        fx_err_clear(&herr);
        if (!rc && rrc)
            fx_err_set(&herr, rrc, "%s", h->reason ? h->reason : "the request failed");
        if (h && rc == 0) {
            h->finished = 1;
        } else if (h && h->batch_written) { /* rolled back: its held chunks go */
            struct fx_api_req *a = fx_calloc(1, sizeof(*a));
            a->kind = REQ_ABORT;
            a->hold = hold_ref(h);
            if (writer_enqueue(w, a) != 0)
                req_destroy(a);
        }
        atomic_fetch_sub(&w->waiting_rows, (int64_t)list->received);
        if (rrc == 0 && !list->replay)
            atomic_fetch_add(&w->backlog, (int64_t)list->res.accepted);
        list->done(list->ud, list, rrc, rc ? &err : rrc ? &herr : NULL);
        list = next;
    }
    if (rc == 0)
        pass_start_due(w, 0);
}

static void *writer_main(void *arg)
{
    struct fx_api_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop) {
            /* Dedupe keys still to write: once no request came for
             * idle_keys_after ms (20), the writer is idle and writes them
             * now rather than when due, so that the next burst (a bulk POST
             * after another) does not find them in its way. */
            int keys_waiting =
                (w->npend || w->fq_n) && w->idle_keys_after >= 0 && fx_mono_ms() >= w->idle_keys_ms;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (keys_waiting ? w->idle_keys_after : 250) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            int timed_out = pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT;
            if (!w->head && !w->stop && keys_waiting && timed_out) {
                pthread_mutex_unlock(&w->mu);
                pass_finish_idle(w, 1);
                pthread_mutex_lock(&w->mu);
                continue;
            }
            if (!w->head && refresh_due(w)) {
                pthread_mutex_unlock(&w->mu);
                refresh_backlog(w);
                /* close an idle batch that has aged out */
                int idle_close = 0;
                for (size_t i = 0; i < w->nbatches; i++)
                    if (w->batches[i].id[0] &&
                        fx_mono_ms() - w->batches[i].opened_ms > API_BATCH_MS)
                        idle_close = 1;
                if (idle_close)
                    write_group(w, NULL);
                pass_finish_idle(w, 0);
                if (fx_mono_ms() - w->swept_ms >= 60000)
                    held_sweep(w);
                pthread_mutex_lock(&w->mu);
            }
        }
        /* Under load (the last group held several requests), give the next
         * ones a moment to join: each commit writes whole pages to the WAL,
         * so a few large groups cost far less than many small ones. A lone
         * client never waits. 50 us: with 64 connections on 2 cores, 250 us
         * left the cores idle 14 % of the time and gave 28-30k requests/s,
         * 50 us 31-32k, no wait at all 29-32k. */
        if (w->last_group > 1 && !w->stop && w->nqueued < GATHER_MAX) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += GATHER_US * 1000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (w->nqueued < GATHER_MAX && !w->stop &&
                   pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
                ;
        }
        struct fx_api_req *list = w->head;
        w->last_group = w->nqueued;
        w->head = w->tail = NULL;
        w->nqueued = 0;
        int stopping = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (list || stopping)
            write_group(w, list);
        if (refresh_due(w))
            refresh_backlog(w);
        pthread_mutex_lock(&w->mu);
        if (stopping && !w->head)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int fx_api_writer_start(struct fx_runtime *rt, struct fx_api_writer **out, struct fx_err *err)
{
    *out = NULL;
    struct fx_api_writer *w = fx_calloc(1, sizeof(*w));
    w->rt = rt;
    w->idle_keys_after = 20;
    int rc = fx_ingest_open(rt, &w->ig, err);
    if (rc) {
        free(w);
        return rc;
    }
    w->pg = strcmp(fx_store_dialect(w->ig->db), "postgresql") == 0;
    if (strcmp(fx_store_dialect(w->ig->db), "sqlite") == 0) {
        /* Checkpoints (copying the WAL back into the database, with an fsync)
         * take up to a second; run by the committing connection, they stalled
         * every request waiting for a group. The relay's connection, which
         * commits small transactions many times a second, checkpoints at the
         * usual 64 MiB; this one only past 256 MiB, as a fallback. */
        fx_store_exec(w->ig->db, "PRAGMA wal_autocheckpoint=65536", err);
        fx_err_clear(err);
        /* a big request's transaction dirties tens of MB of pages: with the
         * default cache SQLite spills them to the WAL mid-transaction and
         * writes them twice */
        fx_store_exec(w->ig->db, "PRAGMA cache_size=-65536", err);
        fx_err_clear(err);
        /* When a commit restarts the WAL from its start, SQLite truncates a
         * file grown past journal_size_limit: 20-70 ms of ftruncate inside
         * the commit, which every request of the group (and those queued
         * behind it) waited for, most of the p99 latency under load. This
         * connection leaves the file at its size (about the checkpoint
         * threshold, 64 MiB, reused from the start); the others still
         * truncate it. */
        fx_store_exec(w->ig->db, "PRAGMA journal_size_limit=-1", err);
        fx_err_clear(err);
        int64_t gen;
        w->sf_enabled = read_int(w->ig->db, "SELECT gen FROM seen_gen", &gen) == 0;
    }
    pthread_mutex_init(&w->sf_mu, NULL);
    if (w->sf_enabled) { /* built while the server starts; installed by the first group */
        w->sf_started_ms = fx_mono_ms();
        if (pthread_create(&w->sf_thread, NULL, sf_rebuild_main, w) == 0)
            w->sf_running = 1;
    }
    /* API batches left open by an earlier run that stopped without closing them */
    char now[32];
    fx__now_iso(now);
    char cutoff[32];
    {
        /* two minutes ago, in the same text form as created_at */
        time_t t = (time_t)(fx_now_ms() / 1000) - 120;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(cutoff, sizeof(cutoff), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    }
    exec_text(w->ig->db,
              "UPDATE batches SET state='queued', finished_at=? WHERE state='receiving' AND"
              " source='api' AND created_at < ?",
              now, cutoff, err);
    fx_err_clear(err);
    {
        char host[256] = "localhost", token[37];
        gethostname(host, sizeof(host) - 1);
        fx_uuid7(token);
        snprintf(w->owner, sizeof(w->owner), "%s %ld %s", host, (long)getpid(), token);
    }
    held_sweep(w);
    refresh_backlog(w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        fx_ingest_close(w->ig);
        free(w);
        return fx_err_set(err, FX_EIO, "cannot start the API writer thread");
    }
    pthread_setname_np(w->thread, "fx-api-writer");
    w->started = 1;
    *out = w;
    return 0;
}

void fx_api_writer_set_idle_keys_ms(struct fx_api_writer *w, int ms)
{
    pthread_mutex_lock(&w->mu);
    w->idle_keys_after = ms < 0 ? -1 : ms > 999 ? 999 : ms;
    pthread_mutex_unlock(&w->mu);
}

int fx_api_writer_submit(struct fx_api_writer *w, struct fx_api_req *r, fx_api_done_cb done,
                         void *ud)
{
    r->done = done;
    r->ud = ud;
    atomic_fetch_add(&w->waiting_rows, (int64_t)r->received);
    r->handed = 1;
    int rc = writer_enqueue(w, r);
    if (rc) {
        r->handed = 0;
        atomic_fetch_sub(&w->waiting_rows, (int64_t)r->received);
    }
    return rc;
}

/* Queue an item (a request, a part, an abort) for the writer. */
static int writer_enqueue(struct fx_api_writer *w, struct fx_api_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->stop) {
        pthread_mutex_unlock(&w->mu);
        return FX_ECLOSED;
    }
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->nqueued++;
    /* while gathering, wake the writer only when the group is full */
    if (w->nqueued == 1 || w->nqueued >= GATHER_MAX)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void fx_api_writer_stop(struct fx_api_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    for (size_t i = 0; i < w->nbatches; i++)
        fx_buf_cleanup(&w->batches[i].chunk);
    free(w->batches);
    if (w->sf_running)
        pthread_join(w->sf_thread, NULL);
    sf_free(&w->sf);
    sf_free(&w->sf_next);
    free(w->sf_own);
    free(w->sf_ownkeys);
    pthread_mutex_destroy(&w->sf_mu);
    free(w->pend);
    free(w->fq);
    free(w->ask);
    free(w->known);
    for (int i = 0; i < 13; i++)
        fx_buf_cleanup(&w->ar_col[i]);
    free(w->ar_pend);
    free(w->group_keys);
    fx_ingest_close(w->ig);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* ---- status of a request ---- */

int fx_ingest_request_status(struct fx_ingest *ig, const char *corr, struct fx_api_counts *out)
{
    memset(out, 0, sizeof(*out));
    struct fx_stmt *st;
    struct fx_err err;
    int rc = fx_store_prepare(
        ig->db,
        "SELECT r.correlation_id, r.batch_id, r.pipeline, r.created_at, b.state, r.received,"
        " r.accepted, r.rejected, r.duplicate, r.warnings, r.possible_dup"
        " FROM api_requests r JOIN batches b ON b.id = r.batch_id WHERE r.correlation_id = ?"
        " UNION ALL SELECT correlation_id, id, pipeline, created_at, state, received, accepted,"
        " rejected, duplicate, warnings, possible_dup FROM batches WHERE correlation_id = ?"
        " LIMIT 1",
        &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, corr, strlen(corr));
    fx_stmt_bind_text(st, 2, corr, strlen(corr));
    rc = fx_stmt_step(st);
    if (rc != FX_STORE_ROW) {
        fx_stmt_reset(st);
        return rc < 0 ? rc : FX_ENOTFOUND;
    }
#define COPY(dst, col)                                                                             \
    snprintf(dst, sizeof(dst), "%s", fx_stmt_text(st, col, NULL) ? fx_stmt_text(st, col, NULL) : "")
    COPY(out->correlation_id, 0);
    COPY(out->batch_id, 1);
    COPY(out->pipeline, 2);
    COPY(out->created_at, 3);
    COPY(out->state, 4);
#undef COPY
    out->received = (uint64_t)fx_stmt_int(st, 5);
    out->accepted = (uint64_t)fx_stmt_int(st, 6);
    out->rejected = (uint64_t)fx_stmt_int(st, 7);
    out->duplicate = (uint64_t)fx_stmt_int(st, 8);
    out->warnings = (uint64_t)fx_stmt_int(st, 9);
    out->possible_dup = (uint64_t)fx_stmt_int(st, 10);
    fx_stmt_reset(st);
    /* rows of the request by staging state: a request's rows are in the chunks
     * of its batch that cover its records... chunks are shared, so count the
     * request's own chunks when it has some, else use the batch's state */
    rc = fx_store_prepare(ig->db,
                          "SELECT state, sum(nrows) FROM staging WHERE correlation_id = ?"
                          " GROUP BY state",
                          &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, corr, strlen(corr));
    uint64_t own = 0;
    while (fx_stmt_step(st) == FX_STORE_ROW) {
        const char *s = fx_stmt_text(st, 0, NULL);
        uint64_t n = (uint64_t)fx_stmt_int(st, 1);
        own += n;
        if (s && strcmp(s, "pending") == 0)
            out->queued += n;
        else if (s && strcmp(s, "published") == 0)
            out->published += n;
        else if (s && strcmp(s, "applied") == 0)
            out->applied += n;
    }
    fx_stmt_reset(st);
    if (own == 0 && out->accepted > 0) {
        /* shared chunks: the request is applied when no chunk of its batch
         * created up to its commit is still waiting */
        rc = fx_store_prepare(ig->db,
                              "SELECT coalesce(max(CASE WHEN state='pending' THEN 2"
                              " WHEN state='published' THEN 1 ELSE 0 END),0) FROM staging"
                              " WHERE batch_id = ? AND created_at <= ?",
                              &st, &err);
        if (rc)
            return rc;
        fx_stmt_bind_text(st, 1, out->batch_id, strlen(out->batch_id));
        fx_stmt_bind_text(st, 2, out->created_at, strlen(out->created_at));
        int worst = fx_stmt_step(st) == FX_STORE_ROW ? (int)fx_stmt_int(st, 0) : 2;
        fx_stmt_reset(st);
        if (worst == 2)
            out->queued = out->accepted;
        else if (worst == 1)
            out->published = out->accepted;
        else
            out->applied = out->accepted;
    }
    return 0;
}

int fx_ingest_request_issues(struct fx_ingest *ig, const char *corr, size_t limit,
                             fx_api_issue_cb cb, void *ud)
{
    struct fx_stmt *st;
    struct fx_err err;
    /* in the order they were written: rowid on SQLite, an identity column on PostgreSQL */
    int pg = strcmp(fx_store_dialect(ig->db), "postgresql") == 0;
    int rc = fx_store_prepare(ig->db,
                              pg ? "SELECT row, coalesce(line, 0), col, field, value, rule, reason,"
                                   " severity FROM issues WHERE correlation_id = ?"
                                   " ORDER BY row, id LIMIT ?"
                                 : "SELECT row, coalesce(line, 0), col, field, value, rule, reason,"
                                   " severity FROM issues WHERE correlation_id = ?"
                                   " ORDER BY row, rowid LIMIT ?",
                              &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, corr, strlen(corr));
    fx_stmt_bind_int(st, 2, (int64_t)limit);
    while ((rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        struct fx_api_issue is;
        memset(&is, 0, sizeof(is));
        is.record = (long)fx_stmt_int(st, 0);
        is.line = (long)fx_stmt_int(st, 1);
        is.column = (int)fx_stmt_int(st, 2);
        is.row_ix = -1;
#define COPY(dst, col)                                                                             \
    snprintf(dst, sizeof(dst), "%s", fx_stmt_text(st, col, NULL) ? fx_stmt_text(st, col, NULL) : "")
        COPY(is.field, 3);
        COPY(is.value, 4);
        COPY(is.rule, 5);
        COPY(is.reason, 6);
#undef COPY
        const char *sev = fx_stmt_text(st, 7, NULL);
        is.severity = sev && strcmp(sev, "error") == 0 ? FX_ISSUE_ERROR : FX_ISSUE_WARN;
        if (cb(ud, &is))
            break;
    }
    fx_stmt_reset(st);
    return rc < 0 ? rc : 0;
}
