/* SPDX-License-Identifier: MIT */
/* Internals shared by the HTTP server (server.c) and its handlers (api_*.c). */
#ifndef FLUXO_HTTP_INT_H
#define FLUXO_HTTP_INT_H

#include "fluxo/auth.h"
#include "fluxo/http.h"
#include "fluxo/mem.h"
#include "fluxo/metrics.h"
#include "fluxo/services.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

struct req;
struct fx_store;

enum body_kind {
    BODY_NONE = 0, /* a body is refused (413 when present) */
    BODY_BUFFER,   /* collected whole, up to max_small_body */
    BODY_STREAM,   /* handed to route->on_data as it arrives */
};

struct route {
    const char *method;
    const char *pattern; /* "/api/v1/pipelines/{}/records": {} matches one segment */
    const char *name;    /* metrics label (the pattern with names) */
    unsigned scope;      /* FX_SCOPE_* needed; 0 = public */
    enum body_kind body;
    int upload; /* file upload: the body limit is http.max_upload */
    /* after the headers (auth done): may reply at once (an error) */
    void (*on_begin)(struct req *r);
    /* BODY_STREAM: a piece of the body; may reply (an error) */
    void (*on_data)(struct req *r, const char *data, size_t len);
    /* body complete: reply now, or call req_suspend and reply later */
    void (*on_end)(struct req *r);
    /* after a resume with no reply yet: build it (on the event loop) */
    void (*on_resumed)(struct req *r);
};

#define MAX_PARAMS 2

struct req {
    struct fx_http *h;
    struct MHD_Connection *conn;
    const struct route *route;
    const char *method, *url;
    char params[MAX_PARAMS][128];
    struct fx_principal who;
    int64_t t0_us;
    char corr[37];  /* correlation id of the request (X-Correlation-Id) */
    char trace[56]; /* traceparent received or created */
    int trace_from_client;
    int began;
    uint64_t body_len;
    uint64_t body_limit;
    struct fx_buf body; /* BODY_BUFFER */
    /* reply */
    unsigned status;
    struct MHD_Response *resp;
    int suspended;
    int finished; /* response queued */
    /* handler state */
    void *state;
    void (*state_free)(void *state);
};

/* Global server state. */
struct fx_http {
    struct fx_runtime *rt;
    struct MHD_Daemon *d[16]; /* one event loop each */
    unsigned nd;
    unsigned port;
    struct fx_auth *auth;
    struct fx_api_writer *writer;
    char *upload_dir;
    uint64_t max_body, max_upload, max_small_body;
    int64_t max_queued_rows;
    int max_headers;
    int access_log;
    size_t max_header_bytes;
    char *cors_origin;
    _Atomic int inflight;
    volatile int stopping;
    /* read connections (ingest and distribution stores), pooled */
    pthread_mutex_t pool_mu;
    struct fx_ingest *ig_pool[16];
    size_t nig;
    struct fx_store *dist_pool[16];
    size_t ndist;
    /* metrics */
    struct fx_metrics *metrics;
    struct fx_metric_family *m_requests, *m_latency, *m_rows;
};

/* ---- replies (server.c) ---- */
void req_reply(struct req *r, unsigned status, const char *content_type, const void *data,
               size_t len, int copy);
void req_reply_buf(struct req *r, unsigned status, const char *content_type, struct fx_buf *b);
void req_header(struct req *r, const char *name, const char *value);
/* RFC 9457 problem+json. extra: more members, JSON text without braces (may be NULL). */
void req_problem(struct req *r, unsigned status, const char *title, const char *detail,
                 const char *extra);
void req_problemf(struct req *r, unsigned status, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The handler will reply later (from another thread): call from on_end only. */
void req_suspend(struct req *r);
/* Reply prepared off the event loop: wake the connection up. */
void req_resume(struct req *r);
const char *req_header_in(struct req *r, const char *name);
const char *req_query(struct req *r, const char *name);
int req_is_replied(const struct req *r);

/* ---- pooled read handles (server.c) ---- */
struct fx_ingest *http_ingest_get(struct fx_http *h, struct fx_err *err);
void http_ingest_put(struct fx_http *h, struct fx_ingest *ig);
struct fx_store *http_dist_get(struct fx_http *h, struct fx_err *err);
void http_dist_put(struct fx_http *h, struct fx_store *db);

/* ---- handlers ---- */
extern const struct route http_routes[];
/* api_ingest.c */
void api_records_begin(struct req *r);
void api_compras_begin(struct req *r);
void api_records_data(struct req *r, const char *d, size_t n);
void api_records_end(struct req *r);
void api_records_resumed(struct req *r);
void api_files_begin(struct req *r);
void api_files_data(struct req *r, const char *d, size_t n);
void api_files_end(struct req *r);
/* api_read.c */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_metrics(struct req *r);
void api_openapi(struct req *r);
void api_docs(struct req *r);
void api_status(struct req *r);
void api_pipelines(struct req *r);
void api_batch(struct req *r);
void api_batch_errors(struct req *r);
void api_request_status(struct req *r);
void api_clientes(struct req *r);
void api_produtos(struct req *r);
void api_compras_list(struct req *r);
/* api_auth.c */
void api_token(struct req *r);
void api_count_rows(struct fx_http *h, const char *pipeline, const struct fx_api_counts *c);

#endif
