/* SPDX-License-Identifier: MIT */
/*
 * HTTP server on libmicrohttpd: event-loop threads (one per core, epoll,
 * keep-alive), routing, limits, bearer auth, problem+json errors, access
 * logs with correlation ids and traceparent, request metrics, and the
 * suspend/resume protocol that lets the API writer answer a request after
 * its rows are committed without blocking an event loop.
 *
 * A request goes: headers -> route lookup (404/405) -> header count limit
 * (431) -> Content-Length limit (413) -> bearer token and scope (401/403)
 * -> route on_begin -> body (buffered or streamed; 413 past the limit) ->
 * route on_end, which replies or suspends. libmicrohttpd calls the access
 * handler again after a resume; the prepared response is queued then.
 */
#define _GNU_SOURCE
#include "http_int.h"

#include "fluxo/log.h"
#include "fluxo/store.h"
#include "fluxo/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Body bytes read and dropped after an early error reply, before closing. */
#define DISCARD_MAX (16u << 20)

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- replies ---- */

int req_is_replied(const struct req *r)
{
    return r->resp != NULL;
}

static void common_headers(struct req *r)
{
    MHD_add_response_header(r->resp, "X-Correlation-Id", r->corr);
    MHD_add_response_header(r->resp, "traceparent", r->trace);
    MHD_add_response_header(r->resp, "X-Content-Type-Options", "nosniff");
    if (r->h->cors_origin)
        MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", r->h->cors_origin);
}

void req_reply(struct req *r, unsigned status, const char *content_type, const void *data,
               size_t len, int copy)
{
    if (r->resp)
        return; /* first reply wins */
    r->resp = MHD_create_response_from_buffer(
        len, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    r->status = status;
    if (content_type)
        MHD_add_response_header(r->resp, "Content-Type", content_type);
    common_headers(r);
}

void req_reply_buf(struct req *r, unsigned status, const char *content_type, struct fx_buf *b)
{
    if (r->resp)
        return;
    size_t len = b->len;
    char *data = fx_buf_take(b);
    r->resp = MHD_create_response_from_buffer(
        len, data ? data : (char *)"", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    r->status = status;
    if (content_type)
        MHD_add_response_header(r->resp, "Content-Type", content_type);
    common_headers(r);
}

void req_header(struct req *r, const char *name, const char *value)
{
    if (r->resp)
        MHD_add_response_header(r->resp, name, value);
}

static const char *status_title(unsigned s)
{
    switch (s) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

void req_problem(struct req *r, unsigned status, const char *title, const char *detail,
                 const char *extra)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_printf(&b, "{\"type\":\"about:blank\",\"title\":");
    const char *t = title ? title : status_title(status);
    fx_buf_json_str(&b, t, strlen(t));
    fx_buf_printf(&b, ",\"status\":%u", status);
    if (detail) {
        fx_buf_puts(&b, ",\"detail\":");
        fx_buf_json_str(&b, detail, strlen(detail));
    }
    fx_buf_puts(&b, ",\"instance\":");
    fx_buf_json_str(&b, r->url, strlen(r->url));
    fx_buf_printf(&b, ",\"correlation_id\":\"%s\"", r->corr);
    if (extra && *extra) {
        fx_buf_putc(&b, ',');
        fx_buf_puts(&b, extra);
    }
    fx_buf_putc(&b, '}');
    req_reply_buf(r, status, "application/problem+json", &b);
    fx_buf_cleanup(&b);
    if (status == 401)
        req_header(r, "WWW-Authenticate", "Bearer realm=\"fluxo\"");
}

void req_problemf(struct req *r, unsigned status, const char *title, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    req_problem(r, status, title, detail, NULL);
}

void req_suspend(struct req *r)
{
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
}

void req_resume(struct req *r)
{
    MHD_resume_connection(r->conn);
}

const char *req_header_in(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_query(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- pools of read handles ---- */

struct fx_ingest *http_ingest_get(struct fx_http *h, struct fx_err *err)
{
    pthread_mutex_lock(&h->pool_mu);
    struct fx_ingest *ig = h->nig ? h->ig_pool[--h->nig] : NULL;
    pthread_mutex_unlock(&h->pool_mu);
    if (!ig && fx_ingest_open(h->rt, &ig, err) != 0)
        return NULL;
    return ig;
}

void http_ingest_put(struct fx_http *h, struct fx_ingest *ig)
{
    pthread_mutex_lock(&h->pool_mu);
    if (h->nig < sizeof(h->ig_pool) / sizeof(h->ig_pool[0])) {
        h->ig_pool[h->nig++] = ig;
        ig = NULL;
    }
    pthread_mutex_unlock(&h->pool_mu);
    fx_ingest_close(ig);
}

struct fx_store *http_dist_get(struct fx_http *h, struct fx_err *err)
{
    pthread_mutex_lock(&h->pool_mu);
    struct fx_store *db = h->ndist ? h->dist_pool[--h->ndist] : NULL;
    pthread_mutex_unlock(&h->pool_mu);
    if (!db && fx_store_open(h->rt->db_url, "distribution", &db, err) != 0)
        return NULL;
    return db;
}

void http_dist_put(struct fx_http *h, struct fx_store *db)
{
    pthread_mutex_lock(&h->pool_mu);
    if (h->ndist < sizeof(h->dist_pool) / sizeof(h->dist_pool[0])) {
        h->dist_pool[h->ndist++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&h->pool_mu);
    fx_store_close(db);
}

/* ---- routing ---- */

/* Match path against pattern; fills params. 1 = match. */
static int match(const char *pattern, const char *path, struct req *r)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *e = strchr(s, '/');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (n == 0 || n >= sizeof(r->params[0]) || np >= MAX_PARAMS)
                return 0;
            memcpy(r->params[np], s, n);
            r->params[np][n] = '\0';
            np++;
            s += n;
            p += 2;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (*p == '\0' && *s == '/' && s[1] == '\0')
        return 1; /* trailing slash tolerated */
    return *p == '\0' && *s == '\0';
}

/* Route for (method, url): NULL with *path_known set when only the method differs. */
static const struct route *find_route(const char *method, const char *url, struct req *r,
                                      int *path_known, char *allow, size_t allowcap)
{
    *path_known = 0;
    allow[0] = '\0';
    for (const struct route *rt = http_routes; rt->method; rt++) {
        if (!match(rt->pattern, url, r))
            continue;
        if (strcmp(rt->method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))
            return rt;
        *path_known = 1;
        size_t l = strlen(allow);
        snprintf(allow + l, allowcap - l, "%s%s", l ? ", " : "", rt->method);
    }
    return NULL;
}

/* ---- metrics and access log ---- */

static void observe(struct req *r)
{
    struct fx_http *h = r->h;
    double secs = (double)(now_us() - r->t0_us) / 1e6;
    char code[8];
    snprintf(code, sizeof(code), "%u", r->status);
    const char *route = r->route ? r->route->name : "unmatched";
    if (h->m_requests) {
        const char *lv[] = {route, r->method, code, NULL};
        struct fx_series *s = fx_metric_series(h->m_requests, lv);
        if (s)
            fx_counter_add(s, 1);
    }
    if (h->m_latency) {
        const char *lv[] = {route, NULL};
        struct fx_series *s = fx_metric_series(h->m_latency, lv);
        if (s)
            fx_histogram_observe(s, secs);
    }
    enum fx_log_level lvl = r->status >= 500 ? FX_LOG_WARN
                            : h->access_log  ? FX_LOG_INFO
                                             : FX_LOG_DEBUG;
    if (fx__log_level <= lvl)
        fx_log(lvl, "http", r->corr,
               "%s %s -> %u in %.3f ms (route %s, sub %s, body %llu bytes, traceparent %s)",
               r->method, r->url, r->status, secs * 1e3, route, r->who.sub[0] ? r->who.sub : "-",
               (unsigned long long)r->body_len, r->trace);
}

static void req_free(struct req *r)
{
    if (!r)
        return;
    if (r->state_free)
        r->state_free(r->state);
    if (r->resp)
        MHD_destroy_response(r->resp);
    fx_buf_cleanup(&r->body);
    free(r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct fx_http *h = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->finished)
        r->status = 499; /* client went away (or timed out) before the reply */
    observe(r);
    req_free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

struct hdr_count {
    int n;
    size_t bytes;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    struct hdr_count *c = cls;
    c->n++;
    c->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static int valid_traceparent(const char *t)
{
    /* version 00: 2-32-16-2 lowercase hex, ids not all zero */
    if (!t || strlen(t) != 55 || t[2] != '-' || t[35] != '-' || t[52] != '-')
        return 0;
    for (int i = 0; i < 55; i++) {
        if (i == 2 || i == 35 || i == 52)
            continue;
        char ch = t[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    if (memcmp(t, "ff", 2) == 0 || strspn(t + 3, "0") >= 32 || strspn(t + 36, "0") >= 16)
        return 0;
    return 1;
}

/* Headers are in: route, limits, auth. */
static void begin(struct req *r)
{
    struct fx_http *h = r->h;
    const char *tp = req_header_in(r, "traceparent");
    if (valid_traceparent(tp)) {
        /* same trace, a new span of ours */
        char span[56];
        fx_traceparent_new(span);
        snprintf(r->trace, sizeof(r->trace), "00-%.32s-%.16s-%.2s", tp + 3, span + 36, tp + 53);
        r->trace_from_client = 1;
    } else {
        fx_traceparent_new(r->trace);
    }
    /* always ours: it keys the request's records, a client's could repeat */
    fx_uuid7(r->corr);

    struct hdr_count hc = {0, strlen(r->method) + strlen(r->url) + 12};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &hc);
    if (hc.n > h->max_headers) {
        req_problemf(r, 431, NULL, "%d header lines; at most %d are accepted", hc.n,
                     h->max_headers);
        return;
    }
    if (hc.bytes > h->max_header_bytes) {
        req_problemf(r, 431, NULL,
                     "the request line and headers are %zu bytes; at most %zu are accepted",
                     hc.bytes, h->max_header_bytes);
        return;
    }
    int path_known;
    char allow[64];
    r->route = find_route(r->method, r->url, r, &path_known, allow, sizeof(allow));
    if (!r->route) {
        if (path_known) {
            req_problemf(r, 405, NULL, "%s is not allowed on %s (allowed: %s)", r->method, r->url,
                         allow);
            req_header(r, "Allow", allow);
        } else {
            req_problemf(r, 404, NULL, "no such resource: %s", r->url);
        }
        return;
    }
    const struct route *rt = r->route;
    r->body_limit = rt->body == BODY_BUFFER   ? h->max_small_body
                    : rt->upload              ? h->max_upload
                    : rt->body == BODY_STREAM ? h->max_body
                                              : 0;
    const char *cl = req_header_in(r, "Content-Length");
    if (cl) {
        unsigned long long n = strtoull(cl, NULL, 10);
        if (n > r->body_limit) {
            req_problemf(r, 413, NULL,
                         "the body is %llu bytes; this endpoint accepts at most %llu bytes", n,
                         (unsigned long long)r->body_limit);
            return;
        }
    }
    if (rt->scope) {
        const char *a = req_header_in(r, "Authorization");
        if (!a || strncasecmp(a, "Bearer ", 7) != 0) {
            req_problem(r, 401, NULL,
                        a ? "the Authorization header must be 'Bearer <token>'"
                          : "missing bearer token: get one from POST /token",
                        NULL);
            return;
        }
        const char *tok = a + 7;
        while (*tok == ' ')
            tok++;
        struct fx_err err;
        fx_err_clear(&err);
        if (fx_auth_verify(h->auth, tok, strlen(tok), &r->who, &err) != 0) {
            req_problemf(r, 401, NULL, "invalid token: %s", err.reason);
            req_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
            return;
        }
        if ((r->who.scopes & rt->scope) != rt->scope && !(r->who.scopes & FX_SCOPE_ADMIN)) {
            char need[64];
            fx_scopes_format(rt->scope, need, sizeof(need));
            req_problemf(r, 403, NULL, "the token lacks the scope this endpoint needs: %s", need);
            return;
        }
    }
    if (rt->on_begin)
        rt->on_begin(r);
}

static enum MHD_Result queue(struct req *r)
{
    r->finished = 1;
    return MHD_queue_response(r->conn, r->status, r->resp);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **con_cls)
{
    (void)version;
    struct fx_http *h = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = fx_calloc(1, sizeof(*r));
        r->h = h;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->t0_us = now_us();
        r->status = 500;
        fx_buf_init(&r->body, 0);
        *con_cls = r;
        atomic_fetch_add(&h->inflight, 1);
        /* headers are in: refuse early (before "100 Continue" and the upload) */
        r->began = 1;
        begin(r);
        if (r->resp)
            return queue(r);
        return MHD_YES;
    }
    if (r->finished) {
        *size = 0; /* answered early: drop the rest of the body */
        return MHD_YES;
    }
    if (r->suspended) { /* resumed: the reply is ready, or is built now */
        r->suspended = 0;
        if (!r->resp && r->route && r->route->on_resumed)
            r->route->on_resumed(r);
        if (!r->resp)
            req_problem(r, 500, NULL, "the request was resumed without a reply", NULL);
        return queue(r);
    }
    if (*size) {
        size_t n = *size;
        *size = 0;
        r->body_len += n;
        if (r->resp) {
            /* answered (an error) while the body still comes: libmicrohttpd
             * sends a reply only once the body is in, so drop the rest, up to
             * a bound past which the connection is simply closed */
            return r->body_len > r->body_limit + DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (r->body_len > r->body_limit) {
            req_problemf(r, 413, NULL, "the body exceeds %llu bytes, the limit of this endpoint",
                         (unsigned long long)r->body_limit);
            return MHD_YES;
        }
        if (r->route->body == BODY_BUFFER)
            fx_buf_append(&r->body, data, n);
        else if (r->route->body == BODY_STREAM)
            r->route->on_data(r, data, n);
        return MHD_YES;
    }
    /* end of the request */
    if (!r->resp && r->route->on_end)
        r->route->on_end(r);
    if (r->suspended)
        return MHD_YES; /* the reply is queued when MHD calls again after the resume */
    if (!r->resp)
        req_problem(r, 500, NULL, "the handler did not reply", NULL);
    return queue(r);
}

/* ---- start / stop ---- */

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                      struct fx_err *err)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return fx_err_set(err, FX_ECONFIG, "http_addr '%s': expected host:port", addr);
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host))
        return fx_err_set(err, FX_ECONFIG, "http_addr '%s': host too long", addr);
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (g != 0 || !ai)
        return fx_err_set(err, FX_ECONFIG, "http_addr '%s': %s", addr, gai_strerror(g));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    fx_log_debug("http", "libmicrohttpd: %s", msg);
}

static double gauge_backlog(void *ud)
{
    struct fx_http *h = ud;
    return h->writer ? (double)fx_api_writer_backlog(h->writer) : 0;
}

static double gauge_outbox(void *ud)
{
    struct fx_http *h = ud;
    return h->writer ? (double)fx_api_writer_outbox(h->writer) : 0;
}

static double gauge_inflight(void *ud)
{
    struct fx_http *h = ud;
    return (double)atomic_load(&h->inflight);
}

static void metrics_init(struct fx_http *h)
{
    static const double lat[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};
    h->metrics = fx_metrics_default();
    const char *const req_labels[] = {"route", "method", "status", NULL};
    const char *const lat_labels[] = {"route", NULL};
    const char *const row_labels[] = {"pipeline", "outcome", NULL};
    h->m_requests = fx_metrics_counter(h->metrics, "fluxo_http_requests_total",
                                       "HTTP requests by route, method and status", req_labels);
    h->m_latency = fx_metrics_histogram(h->metrics, "fluxo_http_request_duration_seconds",
                                        "HTTP request latency by route", lat_labels, lat,
                                        sizeof(lat) / sizeof(lat[0]));
    h->m_rows = fx_metrics_counter(h->metrics, "fluxo_api_rows_total",
                                   "rows received over the API by pipeline and outcome "
                                   "(received, accepted, rejected, duplicate)",
                                   row_labels);
    fx_metrics_gauge_fn(h->metrics, "fluxo_queue_backlog_rows",
                        "accepted rows not yet applied to the normalized tables", gauge_backlog, h);
    fx_metrics_gauge_fn(h->metrics, "fluxo_outbox_rows",
                        "accepted rows waiting in the outbox for the relay", gauge_outbox, h);
    fx_metrics_gauge_fn(h->metrics, "fluxo_http_inflight_requests", "HTTP requests being served",
                        gauge_inflight, h);
}

void api_count_rows(struct fx_http *h, const char *pipeline, const struct fx_api_counts *c)
{
    if (!h->m_rows)
        return;
    struct {
        const char *name;
        uint64_t v;
    } o[] = {{"received", c->received},
             {"accepted", c->accepted},
             {"rejected", c->rejected},
             {"duplicate", c->duplicate}};
    for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
        if (!o[i].v)
            continue;
        const char *lv[] = {pipeline, o[i].name, NULL};
        struct fx_series *s = fx_metric_series(h->m_rows, lv);
        if (s)
            fx_counter_add(s, o[i].v);
    }
}

/* Uploads left by a process that died mid-request (a finished upload is
 * deleted after its import): older than an hour, so another process's
 * upload in progress is never touched. */
static void clean_uploads(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = fx_asprintf("%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && now - sb.st_mtime > 3600) {
            fx_log_info("http", "removing an upload left by an earlier run: %s", p);
            unlink(p);
        }
        free(p);
    }
    closedir(d);
}

int fx_http_start(struct fx_runtime *rt, struct fx_http **out, struct fx_err *err)
{
    *out = NULL;
    const struct fx_config *cfg = rt->cfg;
    const char *addr = fx_config_str(cfg, "http_addr");
    if (!addr || !*addr || strcmp(addr, "off") == 0)
        return fx_err_set(err, FX_ECONFIG, "http_addr is off: no HTTP server to start");
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = parse_addr(addr, &ss, &sl, err);
    if (rc)
        return rc;
    struct fx_http *h = fx_calloc(1, sizeof(*h));
    h->rt = rt;
    pthread_mutex_init(&h->pool_mu, NULL);
    h->max_body = (uint64_t)fx_config_int(cfg, "http.max_body");
    h->max_upload = (uint64_t)fx_config_int(cfg, "http.max_upload");
    h->max_small_body = 1 << 20;
    if (h->max_small_body > h->max_body)
        h->max_small_body = h->max_body;
    h->max_headers = (int)fx_config_int(cfg, "http.max_headers");
    h->access_log = fx_config_bool(cfg, "http.access_log");
    h->max_header_bytes = (size_t)fx_config_int(cfg, "http.max_header_bytes");
    h->max_queued_rows = fx_config_int(cfg, "http.max_queued_rows");
    const char *cors = fx_config_str(cfg, "http.cors_origin");
    h->cors_origin = cors ? fx_strdup(cors) : NULL;
    h->upload_dir = fx_asprintf("%s/uploads", rt->data_dir);
    if (fx_mkdirs(h->upload_dir) != 0) {
        rc = fx_err_set(err, FX_EIO, "cannot create %s", h->upload_dir);
        goto fail;
    }
    clean_uploads(h->upload_dir);
    if ((rc = fx_auth_open(cfg, rt->db_url, rt->data_dir, &h->auth, err)))
        goto fail;
    if ((rc = fx_api_writer_start(rt, &h->writer, err)))
        goto fail;
    metrics_init(h);

    unsigned threads = (unsigned)fx_config_int(cfg, "http.threads");
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    size_t hdr = (size_t)fx_config_int(cfg, "http.max_header_bytes");
    /* the connection's memory pool holds the request line and headers plus
     * the read buffer for the body: a little above the header limit.
     * libmicrohttpd zeroes the whole pool after every request (6 % of an
     * event loop's time at 32 KiB); 8 KiB above the limit rather than 16
     * left the NDJSON POST as fast (0.29-0.34 s either way, 8 KiB to 64 KiB
     * reads) */
    size_t pool = hdr + 8 * 1024;
    /* poll(2) or epoll. A request waiting for its commit is suspended: with
     * epoll, libmicrohttpd takes its socket out of the epoll set and puts it
     * back on resume, two epoll_ctl calls per request, 12 % of an event
     * loop's time under bench/http.sh's load. poll(2) has no such cost and
     * scans a loop's connections on each wake-up, which is cheaper up to a
     * few hundred of them; epoll is for thousands of mostly idle ones. With
     * poll the server spent 31-33 us of CPU per request where epoll spent
     * 35-36 (same load, alternated runs). */
    unsigned loop =
        strcmp(fx_config_str(cfg, "http.event_loop"), "epoll") == 0 ? MHD_USE_EPOLL : MHD_USE_POLL;
    /* One single-threaded event loop per core, each with its own listening
     * socket on the same port (SO_REUSEPORT): the kernel spreads connections
     * evenly over them. With libmicrohttpd's own thread pool the workers race
     * for accept() on one socket, and under load most connections landed on
     * one worker while the other idled. */
    if (threads > sizeof(h->d) / sizeof(h->d[0]))
        threads = sizeof(h->d) / sizeof(h->d[0]);
    unsigned conn_limit = (unsigned)fx_config_int(cfg, "http.max_connections") / threads;
    for (unsigned i = 0; i < threads; i++) {
        if (i == 1 && ss.ss_family == AF_INET) /* the port the first one got (port 0: any) */
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)h->port);
        else if (i == 1 && ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)h->port);
        h->d[i] = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | loop | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
            0, NULL, NULL, access_cb, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE,
            (unsigned)1, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)(fx_config_int(cfg, "http.timeout_ms") / 1000), MHD_OPTION_CONNECTION_LIMIT,
            conn_limit ? conn_limit : 1u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
            MHD_OPTION_END);
        if (!h->d[i]) {
            rc = fx_err_set(err, FX_EIO, "cannot listen on %s (address in use or not allowed)",
                            addr);
            goto fail;
        }
        h->nd++;
        if (i == 0) {
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(h->d[0], MHD_DAEMON_INFO_BIND_PORT);
            h->port = info ? info->port : 0;
        }
    }
    fx_log_info("http", "API listening on %s (port %u, %u threads, %s); docs at /docs", addr,
                h->port, threads, loop == MHD_USE_EPOLL ? "epoll" : "poll");
    *out = h;
    return 0;
fail:
    fx_http_stop(h, 0);
    return rc;
}

unsigned fx_http_port(const struct fx_http *h)
{
    return h->port;
}

void fx_http_stop(struct fx_http *h, int grace_ms)
{
    if (!h)
        return;
    h->stopping = 1;
    if (h->nd) {
        /* stop accepting; in-flight requests (uploads included) go on */
        for (unsigned i = 0; i < h->nd; i++) {
            MHD_socket fd = MHD_quiesce_daemon(h->d[i]);
            if (fd != MHD_INVALID_SOCKET)
                close(fd);
        }
        int64_t deadline = fx_mono_ms() + grace_ms;
        while (atomic_load(&h->inflight) > 0 && fx_mono_ms() < deadline)
            fx_sleep_ms(10);
        if (atomic_load(&h->inflight) > 0)
            fx_log_warn("http", "%d requests still in flight after %d ms: closing them",
                        atomic_load(&h->inflight), grace_ms);
        for (unsigned i = 0; i < h->nd; i++)
            MHD_stop_daemon(h->d[i]);
    }
    if (h->metrics) {
        /* the scrape-time gauges read this server: detach them first */
        fx_metrics_gauge_fn_remove(h->metrics, "fluxo_queue_backlog_rows", h);
        fx_metrics_gauge_fn_remove(h->metrics, "fluxo_outbox_rows", h);
        fx_metrics_gauge_fn_remove(h->metrics, "fluxo_http_inflight_requests", h);
    }
    fx_api_writer_stop(h->writer);
    fx_auth_close(h->auth);
    for (size_t i = 0; i < h->nig; i++)
        fx_ingest_close(h->ig_pool[i]);
    for (size_t i = 0; i < h->ndist; i++)
        fx_store_close(h->dist_pool[i]);
    pthread_mutex_destroy(&h->pool_mu);
    free(h->upload_dir);
    free(h->cors_origin);
    free(h);
}
