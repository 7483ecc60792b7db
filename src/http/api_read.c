/* SPDX-License-Identifier: MIT */
/*
 * Read endpoints: health, readiness, metrics, the OpenAPI document and
 * Swagger UI, batch and request status, and the original API's listings of
 * customers, products and purchases (paginated, searchable, filtered).
 *
 * Listings use one SQL text per endpoint with every filter written as
 * "(? IS NULL OR ...)": the statement is prepared once per connection and
 * cached, whatever filters a request uses.
 */
#include "http_int.h"

#include "fluxo/assets.h"
#include "fluxo/bus.h"
#include "fluxo/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/embedded.h"

/* src/http/openapi.json, embedded at build time */
extern const struct fx_embedded fx_http_embedded[];

/* ---- health ---- */

void api_healthz(struct req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    req_reply(r, 200, "application/json", ok, sizeof(ok) - 1, 0);
}

void api_readyz(struct req *r)
{
    struct fx_http *h = r->h;
    struct fx_err err;
    fx_err_clear(&err);
    char store[520] = "ok", bus[520] = "ok";
    int ready = 1;
    struct fx_ingest *ig = http_ingest_get(h, &err);
    if (!ig) {
        snprintf(store, sizeof(store), "%s", err.reason);
        ready = 0;
    } else {
        struct fx_batch_status st;
        int rc = fx_ingest_status(ig, "00000000-0000-0000-0000-000000000000", &st);
        if (rc < 0 && rc != FX_ENOTFOUND) {
            snprintf(store, sizeof(store), "%s", fx_strerror(rc));
            ready = 0;
        }
        http_ingest_put(h, ig);
    }
    struct fx_bus *b = NULL;
    fx_err_clear(&err);
    if (fx_bus_open(h->rt->bus_url, &b, &err) != 0) {
        snprintf(bus, sizeof(bus), "%s", err.reason);
        ready = 0;
    }
    fx_bus_close(b);
    if (h->stopping) {
        ready = 0;
        snprintf(store, sizeof(store), "shutting down");
    }
    struct fx_buf o;
    fx_buf_init(&o, 0);
    fx_buf_printf(&o, "{\"status\":\"%s\",\"checks\":{\"store\":", ready ? "ready" : "not ready");
    fx_buf_json_str(&o, store, strlen(store));
    fx_buf_puts(&o, ",\"bus\":");
    fx_buf_json_str(&o, bus, strlen(bus));
    fx_buf_printf(&o, "},\"backlog_rows\":%lld}", (long long)fx_api_writer_backlog(h->writer));
    req_reply_buf(r, ready ? 200 : 503, "application/json", &o);
    fx_buf_cleanup(&o);
}

void api_metrics(struct req *r)
{
    struct fx_buf o;
    fx_buf_init(&o, 0);
    fx_metrics_render(r->h->metrics, &o);
    req_reply_buf(r, 200, FX_METRICS_CONTENT_TYPE, &o);
    fx_buf_cleanup(&o);
}

/* ---- documentation ---- */

void api_openapi(struct req *r)
{
    req_reply(r, 200, "application/json", fx_http_embedded[0].data, fx_http_embedded[0].len, 0);
    req_header(r, "Cache-Control", "no-cache");
}

void api_docs(struct req *r)
{
    if (strcmp(r->url, "/docs") == 0) {
        /* the page loads ./swagger-ui.css etc.: they resolve under /docs/ only */
        req_reply(r, 308, "text/plain", "", 0, 0);
        req_header(r, "Location", "/docs/");
        return;
    }
    const char *file = r->route->pattern[5] == '/' ? r->params[0] : "index.html";
    const struct fx_asset *a = fx_asset_find(file);
    if (!a) {
        req_problemf(r, 404, NULL, "no such documentation file: %s", file);
        return;
    }
    const char *inm = req_header_in(r, "If-None-Match");
    if (inm && a->etag && strcmp(inm, a->etag) == 0) {
        req_reply(r, 304, NULL, "", 0, 0);
    } else {
        req_reply(r, 200, a->content_type, a->data, a->len, 0);
    }
    if (a->etag)
        req_header(r, "ETag", a->etag);
    req_header(r, "Cache-Control", "no-cache");
    req_header(r, "Content-Security-Policy",
               "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
}

/* ---- batches and requests ---- */

static void batch_json(struct fx_buf *o, const struct fx_batch_status *st)
{
    fx_buf_printf(o, "{\"id\":\"%s\",\"correlation_id\":\"%s\",\"pipeline\":", st->id,
                  st->correlation_id);
    fx_buf_json_str(o, st->pipeline, strlen(st->pipeline));
    fx_buf_printf(o, ",\"state\":\"%s\",\"source\":", st->state);
    fx_buf_json_str(o, st->source, strlen(st->source));
    fx_buf_printf(o, ",\"created_at\":\"%s\"", st->created_at);
    if (st->error[0]) {
        fx_buf_puts(o, ",\"error\":");
        fx_buf_json_str(o, st->error, strlen(st->error));
    }
    uint64_t staged = st->queued + st->published + st->applied;
    double progress = staged ? (double)st->applied / (double)staged : 0;
    const char *phase = strcmp(st->state, "failed") == 0       ? "failed"
                        : strcmp(st->state, "receiving") == 0  ? "receiving"
                        : staged == 0 || st->applied == staged ? "applied"
                                                               : "applying";
    fx_buf_printf(
        o,
        ",\"phase\":\"%s\",\"counts\":{\"received\":%llu,\"accepted\":%llu,"
        "\"rejected\":%llu,\"duplicates\":%llu,\"warnings\":%llu,"
        "\"possible_duplicates\":%llu},\"rows\":{\"queued\":%llu,\"published\":%llu,"
        "\"applied\":%llu},\"progress\":%.4f,\"errors_url\":\"/api/v1/batches/%s/errors\"}",
        phase, (unsigned long long)st->received, (unsigned long long)st->accepted,
        (unsigned long long)st->rejected, (unsigned long long)st->duplicate,
        (unsigned long long)st->warnings, (unsigned long long)st->possible_dup,
        (unsigned long long)st->queued, (unsigned long long)st->published,
        (unsigned long long)st->applied, progress, st->id);
}

static int valid_id(struct req *r, const char *id)
{
    if (strlen(id) > 64 || strspn(id, "0123456789abcdefABCDEF-") != strlen(id)) {
        req_problemf(r, 400, NULL, "'%.64s' is not a valid id (a UUID)", id);
        return 0;
    }
    return 1;
}

/* A pooled ingest handle, or NULL after replying 503. */
static struct fx_ingest *ingest_or_503(struct req *r)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = http_ingest_get(r->h, &err);
    if (!ig)
        req_problemf(r, 503, NULL, "store unavailable: %s", err.reason);
    return ig;
}

/* The batch named by the path: 0, or < 0 after replying 404 / 503. */
static int batch_or_reply(struct req *r, struct fx_ingest *ig, struct fx_batch_status *st)
{
    int rc = fx_ingest_status(ig, r->params[0], st);
    if (rc == FX_ENOTFOUND)
        req_problemf(r, 404, NULL, "no batch %s", r->params[0]);
    else if (rc < 0)
        req_problemf(r, 503, NULL, "cannot read the batch: %s", fx_strerror(rc));
    return rc < 0 ? rc : 0;
}

void api_batch(struct req *r)
{
    if (!valid_id(r, r->params[0]))
        return;
    struct fx_ingest *ig = ingest_or_503(r);
    if (!ig)
        return;
    struct fx_batch_status st;
    int rc = batch_or_reply(r, ig, &st);
    http_ingest_put(r->h, ig);
    if (rc)
        return;
    struct fx_buf o;
    fx_buf_init(&o, 0);
    batch_json(&o, &st);
    req_reply_buf(r, 200, "application/json", &o);
    fx_buf_cleanup(&o);
}

struct err_out {
    struct fx_buf *o;
    int csv;
    size_t n;
};

static void csv_cell(struct fx_buf *o, const char *s)
{
    s = s ? s : "";
    /* spreadsheet formula injection: neutralise like the CSV writer does */
    int guard = (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r');
    fx_buf_putc(o, '"');
    if (guard)
        fx_buf_putc(o, '\'');
    for (; *s; s++) {
        if (*s == '"')
            fx_buf_putc(o, '"');
        fx_buf_putc(o, *s);
    }
    fx_buf_putc(o, '"');
}

/* One issue as a CSV line or a JSON object (line 0: not known, left out). */
static void issue_out(struct err_out *e, long row, long line, int column, const char *field,
                      const char *value, const char *rule, const char *reason, const char *severity)
{
    if (e->csv) {
        fx_buf_printf(e->o, "%ld;%d;", row, column);
        csv_cell(e->o, field);
        fx_buf_putc(e->o, ';');
        csv_cell(e->o, value);
        fx_buf_putc(e->o, ';');
        csv_cell(e->o, rule);
        fx_buf_putc(e->o, ';');
        csv_cell(e->o, reason);
        fx_buf_putc(e->o, ';');
        csv_cell(e->o, severity);
        fx_buf_puts(e->o, "\r\n");
    } else {
        fx_buf_printf(e->o, "%s{\"row\":%ld,\"column\":%d,\"field\":", e->n ? "," : "", row,
                      column);
        fx_buf_json_str(e->o, field ? field : "", field ? strlen(field) : 0);
        fx_buf_puts(e->o, ",\"value\":");
        fx_buf_json_str(e->o, value ? value : "", value ? strlen(value) : 0);
        fx_buf_puts(e->o, ",\"rule\":");
        fx_buf_json_str(e->o, rule ? rule : "", rule ? strlen(rule) : 0);
        fx_buf_puts(e->o, ",\"reason\":");
        fx_buf_json_str(e->o, reason ? reason : "", reason ? strlen(reason) : 0);
        fx_buf_printf(e->o, ",\"severity\":\"%s\"", severity ? severity : "");
        if (line > 0)
            fx_buf_printf(e->o, ",\"line\":%ld", line);
        fx_buf_putc(e->o, '}');
    }
    e->n++;
}

static int err_row(void *ud, long row, int column, const char *field, const char *value,
                   const char *rule, const char *reason, const char *severity)
{
    issue_out(ud, row, 0, column, field, value, rule, reason, severity);
    return 0;
}

static int err_api(void *ud, const struct fx_api_issue *is)
{
    issue_out(ud, is->record, is->line, is->column, is->field, is->value, is->rule, is->reason,
              is->severity == FX_ISSUE_ERROR ? "error" : "warning");
    return 0;
}

void api_batch_errors(struct req *r)
{
    if (!valid_id(r, r->params[0]))
        return;
    const char *fmt = req_query(r, "format");
    const char *acc = req_header_in(r, "Accept");
    int csv = (fmt && strcasecmp(fmt, "csv") == 0) || (!fmt && acc && strstr(acc, "text/csv"));
    if (fmt && !csv && strcasecmp(fmt, "json") != 0) {
        req_problemf(r, 400, NULL, "format must be json or csv, not '%.20s'", fmt);
        return;
    }
    const char *lim = req_query(r, "limit");
    long limit = lim ? strtol(lim, NULL, 10) : 10000;
    if (limit < 1 || limit > 1000000)
        limit = 10000;
    struct fx_ingest *ig = ingest_or_503(r);
    if (!ig)
        return;
    struct fx_batch_status st;
    if (batch_or_reply(r, ig, &st)) {
        http_ingest_put(r->h, ig);
        return;
    }
    struct fx_buf o;
    fx_buf_init(&o, 0);
    struct err_out e = {&o, csv, 0};
    if (csv)
        fx_buf_puts(&o, "\xEF\xBB\xBFlinha;coluna;campo;valor;regra;motivo;severidade\r\n");
    else
        fx_buf_printf(&o, "{\"batch_id\":\"%s\",\"issues\":[", st.id);
    fx_ingest_issues(ig, st.id, (size_t)limit, err_row, &e);
    http_ingest_put(r->h, ig);
    if (!csv)
        fx_buf_printf(&o, "],\"count\":%zu}", e.n);
    req_reply_buf(r, 200, csv ? "text/csv; charset=utf-8" : "application/json", &o);
    if (csv) {
        char cd[96];
        snprintf(cd, sizeof(cd), "attachment; filename=\"erros-%s.csv\"", st.id);
        req_header(r, "Content-Disposition", cd);
    }
    fx_buf_cleanup(&o);
}

void api_request_status(struct req *r)
{
    if (!valid_id(r, r->params[0]))
        return;
    struct fx_ingest *ig = ingest_or_503(r);
    if (!ig)
        return;
    struct fx_api_counts c;
    int rc = fx_ingest_request_status(ig, r->params[0], &c);
    if (rc != 0) {
        http_ingest_put(r->h, ig);
        if (rc == FX_ENOTFOUND)
            req_problemf(r, 404, NULL, "no request or batch with correlation id %s", r->params[0]);
        else
            req_problemf(r, 503, NULL, "cannot read the status: %s", fx_strerror(rc));
        return;
    }
    struct fx_buf o, eb;
    fx_buf_init(&o, 0);
    fx_buf_init(&eb, 0);
    struct err_out e = {&eb, 0, 0};
    fx_ingest_request_issues(ig, c.correlation_id, 1000, err_api, &e);
    http_ingest_put(r->h, ig);
    const char *phase = c.accepted == 0                     ? "done"
                        : c.applied == c.accepted           ? "applied"
                        : c.queued == 0 && c.published == 0 ? "applied"
                                                            : "queued";
    fx_buf_printf(&o,
                  "{\"correlation_id\":\"%s\",\"batch_id\":\"%s\",\"pipeline\":\"%s\","
                  "\"created_at\":\"%s\",\"batch_state\":\"%s\",\"state\":\"%s\","
                  "\"counts\":{\"received\":%llu,\"accepted\":%llu,\"rejected\":%llu,"
                  "\"duplicates\":%llu,\"warnings\":%llu,\"possible_duplicates\":%llu},"
                  "\"rows\":{\"queued\":%llu,\"published\":%llu,\"applied\":%llu},\"issues\":[%s]}",
                  c.correlation_id, c.batch_id, c.pipeline, c.created_at, c.state, phase,
                  (unsigned long long)c.received, (unsigned long long)c.accepted,
                  (unsigned long long)c.rejected, (unsigned long long)c.duplicate,
                  (unsigned long long)c.warnings, (unsigned long long)c.possible_dup,
                  (unsigned long long)c.queued, (unsigned long long)c.published,
                  (unsigned long long)c.applied, eb.data ? eb.data : "");
    req_reply_buf(r, 200, "application/json", &o);
    fx_buf_cleanup(&o);
    fx_buf_cleanup(&eb);
}

static int status_batch(void *ud, const struct fx_batch_status *st)
{
    struct err_out *e = ud;
    if (e->n++)
        fx_buf_putc(e->o, ',');
    batch_json(e->o, st);
    return 0;
}

void api_status(struct req *r)
{
    struct fx_ingest *ig = ingest_or_503(r);
    if (!ig)
        return;
    struct fx_buf o;
    fx_buf_init(&o, 0);
    fx_buf_printf(&o,
                  "{\"status\":\"ok\",\"backlog_rows\":%lld,\"outbox_rows\":%lld,"
                  "\"recent_batches\":[",
                  (long long)fx_api_writer_backlog(r->h->writer),
                  (long long)fx_api_writer_outbox(r->h->writer));
    struct err_out e = {&o, 0, 0};
    fx_ingest_list(ig, 10, status_batch, &e);
    http_ingest_put(r->h, ig);
    fx_buf_puts(&o, "]}");
    req_reply_buf(r, 200, "application/json", &o);
    fx_buf_cleanup(&o);
}

void api_pipelines(struct req *r)
{
    struct fx_buf o;
    fx_buf_init(&o, 0);
    fx_buf_puts(&o, "{\"pipelines\":[");
    for (size_t i = 0; i < r->h->rt->npipelines; i++) {
        const struct fx_pipeline *p = r->h->rt->pipelines[i];
        fx_buf_printf(&o, "%s{\"name\":", i ? "," : "");
        const char *n = fx_pipeline_name(p);
        fx_buf_json_str(&o, n, strlen(n));
        const char *d = fx_pipeline_description(p);
        fx_buf_puts(&o, ",\"description\":");
        fx_buf_json_str(&o, d ? d : "", d ? strlen(d) : 0);
        fx_buf_puts(&o, ",\"fields\":[");
        for (size_t f = 0; f < fx_pipeline_nfields(p); f++) {
            const char *fn = fx_pipeline_field_name(p, f);
            const char *tn = fx_type_name(fx_pipeline_field_type(p, f));
            fx_buf_printf(&o, "%s{\"name\":", f ? "," : "");
            fx_buf_json_str(&o, fn, strlen(fn));
            fx_buf_puts(&o, ",\"type\":");
            fx_buf_json_str(&o, tn, strlen(tn));
            fx_buf_putc(&o, '}');
        }
        fx_buf_puts(&o, "]}");
    }
    fx_buf_puts(&o, "]}");
    req_reply_buf(r, 200, "application/json", &o);
    fx_buf_cleanup(&o);
}

/* ---- listings ---- */

struct page {
    long page, per_page;
    char like[260]; /* "%q%" with LIKE wildcards escaped, or "" */
};

static int paging(struct req *r, struct page *pg)
{
    const char *p = req_query(r, "page"), *pp = req_query(r, "per_page");
    char *end;
    pg->page = 1;
    pg->per_page = 20;
    if (p) {
        pg->page = strtol(p, &end, 10);
        if (*end || pg->page < 1 || pg->page > 10000000) {
            req_problemf(r, 400, NULL, "page must be a whole number from 1, not '%.20s'", p);
            return -1;
        }
    }
    if (pp) {
        pg->per_page = strtol(pp, &end, 10);
        if (*end || pg->per_page < 1 || pg->per_page > 500) {
            req_problemf(r, 400, NULL, "per_page must be from 1 to 500, not '%.20s'", pp);
            return -1;
        }
    }
    pg->like[0] = '\0';
    const char *q = req_query(r, "q");
    if (!q)
        q = req_query(r, "busca");
    if (q && *q) {
        if (strlen(q) > 100) {
            req_problem(r, 400, NULL, "the search text (q) is longer than 100 characters", NULL);
            return -1;
        }
        size_t o = 0;
        pg->like[o++] = '%';
        for (; *q; q++) {
            if (*q == '%' || *q == '_' || *q == '\\')
                pg->like[o++] = '\\';
            pg->like[o++] = *q;
        }
        pg->like[o++] = '%';
        pg->like[o] = '\0';
    }
    return 0;
}

static void bind_opt(struct fx_stmt *st, int i, const char *s)
{
    if (s && *s)
        fx_stmt_bind_text(st, i, s, strlen(s));
    else
        fx_stmt_bind_null(st, i);
}

static void money(struct fx_buf *o, const char *key, int64_t cents)
{
    fx_buf_printf(o, ",\"%s_centavos\":%lld,\"%s\":\"%s%lld.%02lld\"", key, (long long)cents, key,
                  cents < 0 ? "-" : "", (long long)(cents < 0 ? -cents : cents) / 100,
                  (long long)(cents < 0 ? -cents : cents) % 100);
}

static void text_member(struct fx_buf *o, const char *key, struct fx_stmt *st, int col)
{
    size_t n;
    const char *s = fx_stmt_text(st, col, &n);
    fx_buf_printf(o, ",\"%s\":", key);
    if (s)
        fx_buf_json_str(o, s, n);
    else
        fx_buf_puts(o, "null");
}

/* Run count + page queries; row renders one item. */
static void listing(struct req *r, const char *count_sql, const char *page_sql, int nfilters,
                    const char *const *filters, const struct page *pg,
                    void (*row)(struct fx_buf *o, struct fx_stmt *st))
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_store *db = http_dist_get(r->h, &err);
    if (!db) {
        req_problemf(r, 503, NULL, "store unavailable: %s", err.reason);
        return;
    }
    struct fx_stmt *cs, *ps;
    if (fx_store_prepare(db, count_sql, &cs, &err) || fx_store_prepare(db, page_sql, &ps, &err)) {
        http_dist_put(r->h, db);
        /* no table yet: nothing has been distributed */
        if (strstr(err.reason, "no such table")) {
            char empty[128];
            int n = snprintf(empty, sizeof(empty),
                             "{\"items\":[],\"page\":%ld,\"per_page\":%ld,\"total\":0}", pg->page,
                             pg->per_page);
            req_reply(r, 200, "application/json", empty, (size_t)n, 1);
        } else {
            req_problemf(r, 500, NULL, "cannot query: %s", err.reason);
        }
        return;
    }
    for (int i = 0; i < nfilters; i++) {
        bind_opt(cs, i + 1, filters[i]);
        bind_opt(ps, i + 1, filters[i]);
    }
    int64_t total = fx_stmt_step(cs) == FX_STORE_ROW ? fx_stmt_int(cs, 0) : 0;
    fx_stmt_reset(cs);
    fx_stmt_bind_int(ps, nfilters + 1, pg->per_page);
    fx_stmt_bind_int(ps, nfilters + 2, (pg->page - 1) * pg->per_page);
    struct fx_buf o;
    fx_buf_init(&o, 0);
    fx_buf_puts(&o, "{\"items\":[");
    int n = 0, rc;
    while ((rc = fx_stmt_step(ps)) == FX_STORE_ROW) {
        if (n++)
            fx_buf_putc(&o, ',');
        row(&o, ps);
    }
    fx_stmt_reset(ps);
    http_dist_put(r->h, db);
    if (rc < 0) {
        fx_buf_cleanup(&o);
        req_problemf(r, 503, NULL, "cannot read: %s", fx_strerror(rc));
        return;
    }
    fx_buf_printf(&o, "],\"page\":%ld,\"per_page\":%ld,\"total\":%lld,\"pages\":%lld}", pg->page,
                  pg->per_page, (long long)total,
                  (long long)((total + pg->per_page - 1) / pg->per_page));
    req_reply_buf(r, 200, "application/json", &o);
    fx_buf_cleanup(&o);
}

static void cliente_row(struct fx_buf *o, struct fx_stmt *st)
{
    fx_buf_printf(o, "{\"id\":%lld", (long long)fx_stmt_int(st, 0));
    text_member(o, "nome", st, 1);
    text_member(o, "email", st, 2);
    text_member(o, "telefone", st, 3);
    text_member(o, "cpf_cnpj", st, 4);
    fx_buf_printf(o, ",\"compras\":%lld", (long long)fx_stmt_int(st, 5));
    money(o, "total", fx_stmt_int(st, 6));
    int64_t n = fx_stmt_int(st, 5);
    money(o, "ticket_medio", n ? fx_stmt_int(st, 6) / n : 0);
    text_member(o, "ultima_compra", st, 7);
    fx_buf_putc(o, '}');
}

void api_clientes(struct req *r)
{
    struct page pg;
    if (paging(r, &pg))
        return;
    const char *f[] = {pg.like};
    listing(
        r,
        "SELECT count(*) FROM clientes c WHERE (?1 IS NULL OR c.nome LIKE ?1 ESCAPE '\\' OR"
        " c.email LIKE ?1 ESCAPE '\\' OR c.cpf_cnpj LIKE ?1 ESCAPE '\\')",
        "SELECT c.id, c.nome, c.email, c.telefone, c.cpf_cnpj,"
        " (SELECT count(*) FROM compras k WHERE k.cliente_id = c.id),"
        " (SELECT coalesce(sum(valor_total_centavos),0) FROM compras k WHERE k.cliente_id = c.id),"
        " (SELECT max(data_hora) FROM compras k WHERE k.cliente_id = c.id)"
        " FROM clientes c WHERE (?1 IS NULL OR c.nome LIKE ?1 ESCAPE '\\' OR"
        " c.email LIKE ?1 ESCAPE '\\' OR c.cpf_cnpj LIKE ?1 ESCAPE '\\')"
        " ORDER BY c.nome, c.id LIMIT ?2 OFFSET ?3",
        1, f, &pg, cliente_row);
}

static void produto_row(struct fx_buf *o, struct fx_stmt *st)
{
    fx_buf_printf(o, "{\"id\":%lld", (long long)fx_stmt_int(st, 0));
    text_member(o, "nome", st, 1);
    money(o, "preco_atual", fx_stmt_int(st, 2));
    fx_buf_printf(o, ",\"ativo\":%s,\"quantidade_vendida\":%lld",
                  fx_stmt_int(st, 3) ? "true" : "false", (long long)fx_stmt_int(st, 4));
    text_member(o, "ultima_venda", st, 5);
    fx_buf_putc(o, '}');
}

void api_produtos(struct req *r)
{
    struct page pg;
    if (paging(r, &pg))
        return;
    const char *f[] = {pg.like};
    listing(r, "SELECT count(*) FROM produtos p WHERE (?1 IS NULL OR p.nome LIKE ?1 ESCAPE '\\')",
            "SELECT p.id, p.nome, p.preco_atual_centavos, p.ativo,"
            " (SELECT coalesce(sum(quantidade),0) FROM compras k WHERE k.produto_id = p.id),"
            " (SELECT max(data_hora) FROM compras k WHERE k.produto_id = p.id)"
            " FROM produtos p WHERE (?1 IS NULL OR p.nome LIKE ?1 ESCAPE '\\')"
            " ORDER BY p.nome, p.id LIMIT ?2 OFFSET ?3",
            1, f, &pg, produto_row);
}

static void compra_row(struct fx_buf *o, struct fx_stmt *st)
{
    fx_buf_printf(o, "{\"id\":%lld", (long long)fx_stmt_int(st, 0));
    text_member(o, "data_hora", st, 1);
    fx_buf_printf(o, ",\"cliente\":{\"id\":%lld", (long long)fx_stmt_int(st, 2));
    text_member(o, "nome", st, 3);
    fx_buf_printf(o, "},\"produto\":{\"id\":%lld", (long long)fx_stmt_int(st, 4));
    text_member(o, "nome", st, 5);
    fx_buf_printf(o, "},\"quantidade\":%lld", (long long)fx_stmt_int(st, 6));
    money(o, "valor_unitario", fx_stmt_int(st, 7));
    money(o, "valor_total", fx_stmt_int(st, 8));
    text_member(o, "forma_pagamento", st, 9);
    text_member(o, "forma_pagamento_original", st, 10);
    text_member(o, "lote_id", st, 11);
    fx_buf_putc(o, '}');
}

static int date_ok(const char *s)
{
    return !s || (strlen(s) == 10 && s[4] == '-' && s[7] == '-' && strspn(s, "0123456789-") == 10);
}

void api_compras_list(struct req *r)
{
    struct page pg;
    if (paging(r, &pg))
        return;
    const char *fp = req_query(r, "forma_pagamento");
    const char *de = req_query(r, "de"), *ate = req_query(r, "ate");
    if (!de)
        de = req_query(r, "from");
    if (!ate)
        ate = req_query(r, "to");
    if (!date_ok(de) || !date_ok(ate)) {
        req_problemf(r, 400, NULL, "de and ate are dates as YYYY-MM-DD (got '%.20s', '%.20s')",
                     de ? de : "", ate ? ate : "");
        return;
    }
    if (fp && strlen(fp) > 40) {
        req_problem(r, 400, NULL, "forma_pagamento is too long", NULL);
        return;
    }
    /* ate is inclusive: compare against the next day */
    char ate_next[16] = "";
    if (ate)
        snprintf(ate_next, sizeof(ate_next), "%s~", ate);
    char fpu[48] = "";
    if (fp) {
        size_t i = 0;
        for (; i < sizeof(fpu) - 1 && fp[i]; i++)
            fpu[i] = (fp[i] >= 'a' && fp[i] <= 'z') ? (char)(fp[i] - 32) : fp[i];
        fpu[i] = '\0';
    }
    const char *f[] = {pg.like, fpu, de, ate_next};
    static const char where[] =
        " WHERE (?1 IS NULL OR c.nome LIKE ?1 ESCAPE '\\' OR p.nome LIKE ?1 ESCAPE '\\')"
        " AND (?2 IS NULL OR k.forma_pagamento = ?2)"
        " AND (?3 IS NULL OR k.data_hora >= ?3) AND (?4 IS NULL OR k.data_hora < ?4)";
    char count_sql[1024], page_sql[1536];
    snprintf(count_sql, sizeof(count_sql),
             "SELECT count(*) FROM compras k JOIN clientes c ON c.id = k.cliente_id"
             " JOIN produtos p ON p.id = k.produto_id%s",
             where);
    snprintf(page_sql, sizeof(page_sql),
             "SELECT k.id, k.data_hora, c.id, c.nome, p.id, p.nome, k.quantidade,"
             " k.valor_unitario_centavos, k.valor_total_centavos, k.forma_pagamento,"
             " k.forma_pagamento_original, k.lote_id FROM compras k"
             " JOIN clientes c ON c.id = k.cliente_id JOIN produtos p ON p.id = k.produto_id%s"
             " ORDER BY k.data_hora DESC, k.id DESC LIMIT ?5 OFFSET ?6",
             where);
    listing(r, count_sql, page_sql, 4, f, &pg, compra_row);
}
