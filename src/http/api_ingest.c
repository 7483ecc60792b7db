/* SPDX-License-Identifier: MIT */
/*
 * Ingest endpoints:
 *   POST /api/v1/pipelines/{name}/records  a JSON object, an array or NDJSON
 *   POST /compras                          the original sales body (nested cliente/produto)
 *   POST /api/v1/pipelines/{name}/files    multipart or a raw CSV/XLSX/XLS body
 *
 * Records are parsed and validated as the body arrives (push parser), so
 * memory follows the accepted rows, not the body; the request is then handed
 * to the API writer and answered (202) once its rows are committed. A body
 * whose every record was rejected gets 422 with the reasons; either way the
 * request and its issues are recorded under its correlation id.
 *
 * Uploads stream to a file under <data_dir>/uploads and are imported like a
 * watched-folder file, on a thread of their own so the event loop never
 * waits for an import.
 */
#define _GNU_SOURCE
#include "http_int.h"

#include "fluxo/jsonrec.h"
#include "fluxo/log.h"
#include "fluxo/multipart.h"
#include "fluxo/util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_LISTED 100 /* issues listed in a response; the rest via /errors */

/* ---- shared: backpressure and pipeline lookup ---- */

static const struct fx_pipeline *pipeline_or_404(struct req *r, const char *name)
{
    const struct fx_pipeline *p = fx_runtime_pipeline(r->h->rt, name);
    if (!p) {
        struct fx_buf names;
        fx_buf_init(&names, 0);
        for (size_t i = 0; i < r->h->rt->npipelines; i++)
            fx_buf_printf(&names, "%s%s", i ? ", " : "", fx_pipeline_name(r->h->rt->pipelines[i]));
        req_problemf(r, 404, NULL, "unknown pipeline '%s' (pipelines: %s)", name,
                     names.data ? names.data : "none");
        fx_buf_cleanup(&names);
    }
    return p;
}

static int backpressure(struct req *r)
{
    struct fx_http *h = r->h;
    int64_t backlog = fx_api_writer_backlog(h->writer);
    if (backlog <= h->max_queued_rows)
        return 0;
    char extra[128];
    snprintf(extra, sizeof(extra), "\"backlog_rows\":%lld,\"limit_rows\":%lld", (long long)backlog,
             (long long)h->max_queued_rows);
    req_problem(r, 429, NULL,
                "too many accepted rows are waiting to be applied; retry after the delay in "
                "Retry-After (nothing of this request was taken)",
                extra);
    req_header(r, "Retry-After", "2");
    return 1;
}

/* ---- responses ---- */

static void issue_json(struct fx_buf *b, long record, long line, const char *field,
                       const char *value, const char *rule, const char *reason)
{
    fx_buf_printf(b, "{\"record\":%ld", record);
    if (line > 0)
        fx_buf_printf(b, ",\"line\":%ld", line);
    if (field && *field) {
        fx_buf_puts(b, ",\"field\":");
        fx_buf_json_str(b, field, strlen(field));
    }
    if (value && *value) {
        fx_buf_puts(b, ",\"value\":");
        fx_buf_json_str(b, value, strlen(value));
    }
    fx_buf_puts(b, ",\"rule\":");
    fx_buf_json_str(b, rule ? rule : "", rule ? strlen(rule) : 0);
    fx_buf_puts(b, ",\"reason\":");
    fx_buf_json_str(b, reason ? reason : "", reason ? strlen(reason) : 0);
    fx_buf_putc(b, '}');
}

struct listing {
    struct fx_buf *err, *warn;
    size_t nerr, nwarn;
};

static int list_api_issue(void *ud, const struct fx_api_issue *is)
{
    struct listing *l = ud;
    int e = is->severity == FX_ISSUE_ERROR;
    struct fx_buf *b = e ? l->err : l->warn;
    size_t *k = e ? &l->nerr : &l->nwarn;
    if (*k < MAX_LISTED) {
        if (*k)
            fx_buf_putc(b, ',');
        issue_json(b, is->record, is->line, is->field, is->value, is->rule, is->reason);
    }
    (*k)++;
    return 0;
}

/* A stored issue of a file batch (fx_issue_cb), listed like a request's. */
static int list_stored(void *ud, long row, int column, const char *field, const char *value,
                       const char *rule, const char *reason, const char *severity)
{
    struct fx_api_issue is = {
        .record = row,
        .column = column,
        .severity = severity && strcmp(severity, "error") == 0 ? FX_ISSUE_ERROR : FX_ISSUE_WARN};
    snprintf(is.field, sizeof(is.field), "%s", field ? field : "");
    snprintf(is.value, sizeof(is.value), "%s", value ? value : "");
    snprintf(is.rule, sizeof(is.rule), "%s", rule ? rule : "");
    snprintf(is.reason, sizeof(is.reason), "%s", reason ? reason : "");
    return list_api_issue(ud, &is);
}

/* Written with puts, not printf: one reply per request, and the printf
 * of this line was 5 % of an event loop's time under load. The ids and the
 * pipeline name are safe in JSON as they are (uuids; a pipeline's name is
 * an identifier, [a-z0-9_], checked when pipelines load). */
static void counts_json(struct fx_buf *b, const struct fx_api_counts *c)
{
    fx_buf_puts(b, "\"batch_id\":\"");
    fx_buf_puts(b, c->batch_id);
    fx_buf_puts(b, "\",\"correlation_id\":\"");
    fx_buf_puts(b, c->correlation_id);
    fx_buf_puts(b, "\",\"pipeline\":\"");
    fx_buf_puts(b, c->pipeline);
    fx_buf_puts(b, "\",\"received\":");
    fx_buf_putu(b, c->received);
    fx_buf_puts(b, ",\"accepted\":");
    fx_buf_putu(b, c->accepted);
    fx_buf_puts(b, ",\"rejected\":");
    fx_buf_putu(b, c->rejected);
    fx_buf_puts(b, ",\"duplicates\":");
    fx_buf_putu(b, c->duplicate);
    fx_buf_puts(b, ",\"warnings\":");
    fx_buf_putu(b, c->warnings);
    fx_buf_puts(b, ",\"possible_duplicates\":");
    fx_buf_putu(b, c->possible_dup);
    fx_buf_puts(b, ",\"status_url\":\"/api/v1/status/");
    fx_buf_puts(b, c->correlation_id);
    fx_buf_puts(b, "\",\"batch_url\":\"/api/v1/batches/");
    fx_buf_puts(b, c->batch_id);
    fx_buf_putc(b, '"');
}

/* The reply to a handled records request (fresh or replayed). */
static void reply_records(struct req *r, struct fx_api_req *ar)
{
    const struct fx_api_counts *c = fx_api_req_result(ar);
    struct fx_buf eb, wb;
    fx_buf_init(&eb, 0);
    fx_buf_init(&wb, 0);
    struct listing l = {&eb, &wb, 0, 0};
    if (fx_api_req_replay(ar) == 1) {
        struct fx_err err;
        fx_err_clear(&err);
        struct fx_ingest *ig = http_ingest_get(r->h, &err);
        if (ig) {
            fx_ingest_request_issues(ig, c->correlation_id, 100000, list_api_issue, &l);
            http_ingest_put(r->h, ig);
        }
    } else {
        const struct fx_api_issue *is;
        size_t n = fx_api_req_issues(ar, &is);
        for (size_t i = 0; i < n; i++)
            list_api_issue(&l, &is[i]);
    }
    struct fx_buf b;
    fx_buf_init(&b, 0);
    int all_rejected = c->accepted == 0 && c->duplicate == 0 && c->rejected > 0;
    if (all_rejected) {
        fx_buf_printf(&b, "{\"type\":\"about:blank\",\"title\":\"Unprocessable Content\","
                          "\"status\":422,\"detail\":");
        const char *d = c->rejected == 1 ? "the record was rejected: see errors"
                                         : "every record was rejected: see errors";
        fx_buf_json_str(&b, d, strlen(d));
        fx_buf_puts(&b, ",\"instance\":");
        fx_buf_json_str(&b, r->url, strlen(r->url));
        fx_buf_putc(&b, ',');
    } else {
        fx_buf_putc(&b, '{');
    }
    counts_json(&b, c);
    fx_buf_puts(&b, ",\"errors\":[");
    fx_buf_append(&b, eb.data, eb.len);
    fx_buf_putc(&b, ']');
    if (l.nerr > MAX_LISTED)
        fx_buf_puts(&b, ",\"errors_truncated\":true");
    fx_buf_puts(&b, ",\"warning_details\":[");
    fx_buf_append(&b, wb.data, wb.len);
    fx_buf_putc(&b, ']');
    if (l.nwarn > MAX_LISTED)
        fx_buf_puts(&b, ",\"warnings_truncated\":true");
    fx_buf_putc(&b, '}');
    /* the request's ids are the records' ids */
    memcpy(r->corr, c->correlation_id, 37);
    req_reply_buf(r, all_rejected ? 422 : 202,
                  all_rejected ? "application/problem+json" : "application/json", &b);
    if (fx_api_req_replay(ar) == 1)
        req_header(r, "Idempotent-Replayed", "true");
    if (!all_rejected) {
        char loc[96] = "/api/v1/status/";
        memcpy(loc + 15, c->correlation_id, 37);
        req_header(r, "Location", loc);
    }
    fx_buf_cleanup(&b);
    fx_buf_cleanup(&eb);
    fx_buf_cleanup(&wb);
}

/* ---- records ---- */

struct rec_state {
    struct req *r;
    struct fx_api_req *ar;
    struct fx_jsonrec_parser *jp;
    int compras; /* the original body: flatten cliente./produto. */
    int fatal;
    struct fx_sha256 sha;
    int idem;
    char **names; /* renamed keys (compras) */
    size_t cap_names;
    int write_rc;       /* the writer's outcome */
    char *write_reason; /* and its reason, when it failed */
};

static void rec_state_free(void *p)
{
    struct rec_state *s = p;
    if (!s)
        return;
    fx_jsonrec_free(s->jp);
    fx_api_req_free(s->ar);
    free(s->write_reason);
    for (size_t i = 0; i < s->cap_names; i++)
        free(s->names[i]);
    free(s->names);
    free(s);
}

/* The original POST /compras nests the customer and the product. */
static const char *compras_name(const char *k)
{
    if (strncmp(k, "cliente.", 8) == 0)
        return k + 8;
    if (strcmp(k, "produto.nome_produto") == 0 || strcmp(k, "produto.nome") == 0)
        return "produto";
    if (strncmp(k, "produto.", 8) == 0)
        return k + 8;
    return k;
}

static int on_record(void *ud, const struct fx_jsonrec *rec)
{
    struct rec_state *s = ud;
    if (!s->compras) /* copied and validated in slices, on the pool for a big body */
        return fx_api_req_add_deferred(s->ar, rec->names, rec->cells, rec->n, (long)rec->index,
                                       rec->line);
    const char **names = fx_calloc(rec->n ? rec->n : 1, sizeof(char *));
    for (size_t i = 0; i < rec->n; i++)
        names[i] = compras_name(rec->names[i]);
    int rc = fx_api_req_add(s->ar, names, rec->cells, rec->n, (long)rec->index, rec->line);
    free(names);
    return rc;
}

/* NDJSON: the line goes to the pool unparsed (parsed and validated there) */
static int on_line(void *ud, const struct fx_jsonrec_line *ln)
{
    struct rec_state *s = ud;
    return fx_api_req_add_line(s->ar, ln);
}

static int on_bad(void *ud, size_t index, const struct fx_err *err)
{
    struct rec_state *s = ud;
    /* the parser puts the record's line in the reason ("record 3 (line 4, column 17): ...") */
    const char *l = strstr(err->reason, "line ");
    long line = l ? strtol(l + 5, NULL, 10) : 0;
    fx_api_req_reject(s->ar, (long)index, line > 0 ? line : 0, "json", err->reason);
    return 0;
}

static void records_begin_common(struct req *r, const struct fx_pipeline *p, int compras)
{
    if (backpressure(r))
        return;
    const char *ct = req_header_in(r, "Content-Type");
    int ndjson = 0;
    if (ct && (strncasecmp(ct, "application/x-ndjson", 20) == 0 ||
               strncasecmp(ct, "application/jsonl", 17) == 0 ||
               strncasecmp(ct, "application/json-seq", 20) == 0))
        ndjson = 1;
    else if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        req_problemf(r, 415, NULL,
                     "Content-Type %s is not accepted here: send application/json (an object or "
                     "an array of objects)%s",
                     ct ? ct : "(none)", compras ? "" : " or application/x-ndjson");
        return;
    }
    if (compras && ndjson) {
        req_problem(r, 415, NULL, "POST /compras takes one JSON object (application/json)", NULL);
        return;
    }
    struct rec_state *s = fx_calloc(1, sizeof(*s));
    s->r = r;
    s->compras = compras;
    /* a client's traceparent makes the request's chunks its own (its trace goes on) */
    s->ar = fx_api_req_new(p, r->corr, r->trace, r->trace_from_client);
    struct fx_jsonrec_opts o;
    fx_jsonrec_opts_init(&o);
    o.ndjson = ndjson;
    o.max_record_bytes = (size_t)fx_config_int(r->h->rt->cfg, "ingest.max_line_bytes");
    o.max_fields = (size_t)fx_config_int(r->h->rt->cfg, "ingest.max_fields");
    if (!compras)
        o.max_depth = 8;
    s->jp = fx_jsonrec_new(&o, on_record, on_bad, s);
    if (!compras) /* a big body's chunks are written while it arrives */
        fx_api_req_hold(s->ar, r->h->writer);
    if (ndjson) {
        fx_api_req_set_json(s->ar, &o);
        fx_jsonrec_defer_lines(s->jp, on_line);
    }
    const char *key = req_header_in(r, "Idempotency-Key");
    if (key) {
        if (!*key || strlen(key) > 255) {
            rec_state_free(s);
            req_problem(r, 400, NULL, "Idempotency-Key must be 1 to 255 characters", NULL);
            return;
        }
        s->idem = 1;
        fx_sha256_init(&s->sha);
        fx_sha256_update(&s->sha, r->url, strlen(r->url));
        fx_sha256_update(&s->sha, "\n", 1);
    }
    r->state = s;
    r->state_free = rec_state_free;
}

static void records_begin(struct req *r)
{
    const struct fx_pipeline *p = pipeline_or_404(r, r->params[0]);
    if (p)
        records_begin_common(r, p, 0);
}

static void compras_begin(struct req *r)
{
    const struct fx_pipeline *p = pipeline_or_404(r, r->h->rt->default_pipeline);
    if (p)
        records_begin_common(r, p, 1);
}

/* 400 for a body that is not JSON as a whole, with where (line, column) and why. */
static void body_problem(struct req *r, const struct fx_err *e)
{
    if (e->row > 0 && e->column > 0)
        req_problemf(r, 400, NULL, "malformed body: line %ld, column %d: %s", e->row, e->column,
                     e->reason);
    else if (e->row > 0)
        req_problemf(r, 400, NULL, "malformed body: line %ld: %s", e->row, e->reason);
    else
        req_problemf(r, 400, NULL, "malformed body: %s", e->reason);
}

static void records_data(struct req *r, const char *data, size_t len)
{
    struct rec_state *s = r->state;
    if (s->idem)
        fx_sha256_update(&s->sha, data, len);
    if (s->fatal)
        return;
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_jsonrec_feed(s->jp, data, len, &err);
    if (rc < 0) {
        s->fatal = 1;
        body_problem(r, &err);
        return;
    }
    fx_api_req_progress(s->ar);
}

/* The writer's callback: record the outcome and wake the connection; the
 * reply is built on the connection's own event loop (records_resumed), not on
 * the single writer thread every request waits for. */
static void records_done(void *ud, struct fx_api_req *ar, int rc, const struct fx_err *err)
{
    (void)ar;
    struct req *r = ud;
    struct rec_state *s = r->state;
    s->write_rc = rc;
    if (err && err->reason[0])
        s->write_reason = fx_strdup(err->reason);
    req_resume(r);
}

static void records_resumed(struct req *r)
{
    struct rec_state *s = r->state;
    struct fx_api_req *ar = s->ar;
    if (s->write_rc < 0) {
        req_problemf(r, 503, NULL, "the rows could not be stored (nothing was taken): %s",
                     s->write_reason ? s->write_reason : fx_strerror(s->write_rc));
        req_header(r, "Retry-After", "5");
    } else if (fx_api_req_replay(ar) == 2) {
        req_problem(r, 422, NULL,
                    "this Idempotency-Key was already used with a different body; use a new key "
                    "for a new request",
                    NULL);
    } else {
        if (fx_api_req_replay(ar) == 0)
            api_count_rows(r->h, fx_api_req_result(ar)->pipeline, fx_api_req_result(ar));
        reply_records(r, ar);
    }
}

static void records_end(struct req *r)
{
    struct rec_state *s = r->state;
    if (s->fatal)
        return;
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_jsonrec_finish(s->jp, &err) < 0) {
        body_problem(r, &err);
        return;
    }
    fx_api_req_settle(s->ar);
    if (fx_api_req_rows(s->ar) == 0) {
        req_problem(r, 400, NULL, "the body holds no record", NULL);
        return;
    }
    if (s->compras && fx_api_req_rows(s->ar) != 1) {
        req_problem(r, 400, NULL, "POST /compras takes one purchase (a JSON object)", NULL);
        return;
    }
    if (s->idem) {
        char hash[65];
        fx_sha256_final_hex(&s->sha, hash);
        fx_api_req_set_idempotency(s->ar, req_header_in(r, "Idempotency-Key"), hash);
    }
    req_suspend(r);
    if (fx_api_writer_submit(r->h->writer, s->ar, records_done, r) != 0) {
        req_problem(r, 503, NULL, "the server is shutting down; retry on another instance", NULL);
        req_header(r, "Retry-After", "5");
        req_resume(r);
    }
}

/* ---- file uploads ---- */

struct up_state {
    struct req *r;
    const struct fx_pipeline *p;
    struct fx_multipart *mp;
    int fd;
    char *path;
    char filename[256];
    int nfiles;
    int in_file;
    pthread_t thread;
    struct fx_batch_result res;
    int rc;
    struct fx_err err;
};

static void up_state_free(void *p)
{
    struct up_state *s = p;
    if (!s)
        return;
    fx_multipart_free(s->mp);
    if (s->fd >= 0)
        close(s->fd);
    if (s->path) {
        unlink(s->path);
        free(s->path);
    }
    free(s);
}

static int up_write(struct up_state *s, const char *data, size_t len)
{
    while (len) {
        ssize_t w = write(s->fd, data, len);
        if (w < 0) {
            req_problemf(s->r, 507, "Insufficient Storage", "cannot write the upload: %m");
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static int open_upload(struct up_state *s)
{
    char id[37];
    fx_uuid7(id);
    const char *base = s->filename[0] ? s->filename : "upload";
    free(s->path);
    s->path = fx_asprintf("%s/%s-%s", s->r->h->upload_dir, id, base);
    s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        req_problemf(s->r, 500, NULL, "cannot create the upload file: %m");
        free(s->path);
        s->path = NULL;
        return -1;
    }
    return 0;
}

static int mp_begin(void *ud, const struct fx_multipart_part *part)
{
    struct up_state *s = ud;
    if (!part->filename && strcmp(part->name ? part->name : "", "file") != 0)
        return 0; /* another form field: ignored */
    if (s->nfiles++) {
        req_problem(s->r, 400, NULL, "send one file per request (form field 'file')", NULL);
        return 1;
    }
    snprintf(s->filename, sizeof(s->filename), "%s",
             part->filename && *part->filename ? part->filename : "upload");
    for (char *c = s->filename; *c; c++)
        if (*c == '/' || *c == '\\')
            *c = '_';
    s->in_file = 1;
    return open_upload(s) ? 1 : 0;
}

static int mp_data(void *ud, const char *data, size_t len)
{
    struct up_state *s = ud;
    if (!s->in_file)
        return 0;
    return up_write(s, data, len) ? 1 : 0;
}

static int mp_end(void *ud)
{
    struct up_state *s = ud;
    s->in_file = 0;
    return 0;
}

static void files_begin(struct req *r)
{
    const struct fx_pipeline *p = pipeline_or_404(r, r->params[0]);
    if (!p || backpressure(r))
        return;
    struct up_state *s = fx_calloc(1, sizeof(*s));
    s->r = r;
    s->p = p;
    s->fd = -1;
    r->state = s;
    r->state_free = up_state_free;
    const char *ct = req_header_in(r, "Content-Type");
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        char boundary[128];
        struct fx_err err;
        fx_err_clear(&err);
        if (fx_multipart_boundary(ct, boundary, sizeof(boundary), &err) != 0) {
            req_problemf(r, 400, NULL, "%s", err.reason);
            return;
        }
        s->mp = fx_multipart_new(boundary, NULL, mp_begin, mp_data, mp_end, s);
        return;
    }
    /* a raw body: the file itself (the format is found from its content) */
    const char *name = req_query(r, "filename");
    snprintf(s->filename, sizeof(s->filename), "%s", name && *name ? name : "upload");
    for (char *c = s->filename; *c; c++)
        if (*c == '/' || *c == '\\')
            *c = '_';
    open_upload(s);
}

static void files_data(struct req *r, const char *data, size_t len)
{
    struct up_state *s = r->state;
    if (s->mp) {
        struct fx_err err;
        fx_err_clear(&err);
        int rc = fx_multipart_feed(s->mp, data, len, &err);
        if (rc < 0 && !req_is_replied(r))
            req_problemf(r, 400, NULL, "malformed multipart body: %s", err.reason);
        return;
    }
    up_write(s, data, len);
}

static void *import_thread(void *arg)
{
    struct req *r = arg;
    struct up_state *s = r->state;
    struct fx_http *h = r->h;
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    int rc = fx_ingest_open(h->rt, &ig, &err);
    if (rc == 0)
        rc = fx_ingest_file(ig, s->path, fx_pipeline_name(s->p), NULL, NULL, &s->res, &err);
    if (rc < 0 && !s->res.refused) {
        req_problemf(r, 503, NULL, "the file could not be stored: %s", err.reason);
    } else if (rc < 0) {
        /* the temporary path means nothing to the client: name its file */
        snprintf(err.source, sizeof(err.source), "%s", s->filename);
        char msg[1024];
        fx_err_format(&err, msg, sizeof(msg));
        char extra[128];
        snprintf(extra, sizeof(extra), "\"batch_id\":\"%s\"", s->res.batch_id);
        req_problem(r, 422, "File refused", msg, extra);
    } else {
        struct fx_api_counts c;
        memset(&c, 0, sizeof(c));
        memcpy(c.batch_id, s->res.batch_id, 37);
        memcpy(c.correlation_id, s->res.correlation_id, 37);
        snprintf(c.pipeline, sizeof(c.pipeline), "%s", fx_pipeline_name(s->p));
        c.received = s->res.received;
        c.accepted = s->res.accepted;
        c.rejected = s->res.rejected;
        c.duplicate = s->res.duplicate;
        c.warnings = s->res.warnings;
        c.possible_dup = s->res.possible_dup;
        api_count_rows(h, c.pipeline, &c);
        struct fx_buf eb, wb, b;
        fx_buf_init(&eb, 0);
        fx_buf_init(&wb, 0);
        fx_buf_init(&b, 0);
        struct listing l = {&eb, &wb, 0, 0};
        fx_ingest_issues(ig, s->res.batch_id, 2 * MAX_LISTED, list_stored, &l);
        fx_buf_putc(&b, '{');
        counts_json(&b, &c);
        fx_buf_puts(&b, ",\"file\":");
        fx_buf_json_str(&b, s->filename, strlen(s->filename));
        fx_buf_printf(&b, ",\"errors\":[%s],\"warning_details\":[%s]}", eb.data ? eb.data : "",
                      wb.data ? wb.data : "");
        memcpy(r->corr, c.correlation_id, 37);
        req_reply_buf(r, 202, "application/json", &b);
        fx_buf_cleanup(&b);
        fx_buf_cleanup(&eb);
        fx_buf_cleanup(&wb);
    }
    fx_ingest_close(ig);
    req_resume(r);
    return NULL;
}

static void files_end(struct req *r)
{
    struct up_state *s = r->state;
    if (s->mp) {
        struct fx_err err;
        fx_err_clear(&err);
        if (fx_multipart_finish(s->mp, &err) < 0) {
            req_problemf(r, 400, NULL, "malformed multipart body: %s", err.reason);
            return;
        }
        if (s->nfiles == 0) {
            req_problem(r, 400, NULL, "the form has no file: send it in the field 'file'", NULL);
            return;
        }
    }
    if (s->fd < 0) {
        req_problem(r, 500, NULL, "the upload was not stored", NULL);
        return;
    }
    if (fsync(s->fd) != 0 || close(s->fd) != 0) {
        s->fd = -1;
        req_problemf(r, 507, "Insufficient Storage", "cannot store the upload: %m");
        return;
    }
    s->fd = -1;
    if (r->body_len == 0) {
        req_problem(r, 400, NULL, "the file is empty", NULL);
        return;
    }
    req_suspend(r);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&s->thread, &attr, import_thread, r) != 0) {
        req_problem(r, 503, NULL, "cannot start the import; retry later", NULL);
        req_resume(r);
    }
    pthread_attr_destroy(&attr);
}

/* ---- route table entries (see routes.c) ---- */
void api_records_begin(struct req *r)
{
    records_begin(r);
}
void api_compras_begin(struct req *r)
{
    compras_begin(r);
}
void api_records_data(struct req *r, const char *d, size_t n)
{
    records_data(r, d, n);
}
void api_records_end(struct req *r)
{
    records_end(r);
}
void api_files_begin(struct req *r)
{
    files_begin(r);
}
void api_files_data(struct req *r, const char *d, size_t n)
{
    files_data(r, d, n);
}
void api_files_end(struct req *r)
{
    files_end(r);
}
void api_records_resumed(struct req *r)
{
    records_resumed(r);
}
