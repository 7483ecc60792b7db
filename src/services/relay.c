/* SPDX-License-Identifier: MIT */
/*
 * Relay: drains the ingest outbox onto the bus, and the ingest-side consumer
 * of distribution.applied events.
 *
 * Publication and marking are two steps on two stores: a crash between them
 * re-publishes the same chunks with the same CloudEvent ids, which the
 * distribution inbox recognises. Nothing is lost, nothing is applied twice.
 */
#include "fluxo/bus.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "ingest_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct pending {
    int64_t seq;
    char *id, *corr, *trace, *payload;
    size_t payload_len;
};

int fx_relay_once(struct fx_ingest *ig, struct fx_bus *bus, struct fx_err *err)
{
    int64_t limit = fx_config_int(ig->rt->cfg, "relay.batch");
    struct fx_stmt *st;
    int rc = fx_store_prepare(ig->db,
                              "SELECT o.seq, s.id, coalesce(s.correlation_id, b.correlation_id),"
                              " coalesce(s.traceparent, b.traceparent), p.payload"
                              " FROM outbox o JOIN staging s ON s.id = o.staging_id"
                              " JOIN staging_payload p ON p.id = s.id"
                              " JOIN batches b ON b.id = s.batch_id ORDER BY o.seq LIMIT ?",
                              &st, err);
    if (rc)
        return rc;
    fx_stmt_bind_int(st, 1, limit);
    struct pending *p = fx_calloc((size_t)limit, sizeof(*p));
    size_t n = 0;
    while (n < (size_t)limit && (rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        size_t len;
        p[n].seq = fx_stmt_int(st, 0);
        p[n].id = fx_strdup(fx_stmt_text(st, 1, NULL));
        p[n].corr = fx_strdup(fx_stmt_text(st, 2, NULL));
        const char *t = fx_stmt_text(st, 3, NULL);
        p[n].trace = t ? fx_strdup(t) : NULL;
        const char *pl = fx_stmt_text(st, 4, &len);
        p[n].payload = fx_strndup(pl, len);
        p[n].payload_len = len;
        n++;
    }
    fx_stmt_reset(st);
    if (rc < 0) {
        fx_err_set(err, rc, "cannot read outbox: %s", fx_store_errmsg(ig->db));
        goto out;
    }
    rc = 0;
    if (n == 0)
        goto out;
    struct fx_msg *msgs = fx_calloc(n, sizeof(*msgs));
    for (size_t i = 0; i < n; i++) {
        msgs[i].id = p[i].id;
        msgs[i].type = "fluxo.ingest.chunk";
        msgs[i].source = "/fluxo/ingest";
        msgs[i].routing_key = FX_RK_PROCESSED;
        msgs[i].correlation_id = p[i].corr;
        msgs[i].traceparent = p[i].trace;
        msgs[i].data = p[i].payload;
        msgs[i].data_len = p[i].payload_len;
    }
    rc = fx_bus_publish(bus, msgs, n, err);
    free(msgs);
    if (rc)
        goto out;
    char now[32];
    fx__now_iso(now);
    if ((rc = fx_store_begin(ig->db)) != 0) {
        fx_err_set(err, rc, "cannot mark published: %s", fx_store_errmsg(ig->db));
        goto out;
    }
    struct fx_stmt *up, *del;
    if ((rc = fx_store_prepare(ig->db,
                               "UPDATE staging SET state='published', published_at=?"
                               " WHERE id=? AND state='pending'",
                               &up, err)) ||
        (rc = fx_store_prepare(ig->db, "DELETE FROM outbox WHERE seq=?", &del, err))) {
        fx_store_rollback(ig->db);
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        fx_stmt_bind_text(up, 1, now, strlen(now));
        fx_stmt_bind_text(up, 2, p[i].id, strlen(p[i].id));
        int r1 = fx_stmt_step(up);
        fx_stmt_reset(up);
        fx_stmt_bind_int(del, 1, p[i].seq);
        int r2 = fx_stmt_step(del);
        fx_stmt_reset(del);
        if (r1 < 0 || r2 < 0)
            rc = fx_err_set(err, r1 < 0 ? r1 : r2, "cannot mark published: %s",
                            fx_store_errmsg(ig->db));
    }
    if (rc == 0)
        rc = fx_store_commit(ig->db);
    else
        fx_store_rollback(ig->db);
    if (rc == 0)
        rc = (int)n;
out:
    for (size_t i = 0; i < n; i++) {
        free(p[i].id);
        free(p[i].corr);
        free(p[i].trace);
        free(p[i].payload);
    }
    free(p);
    return rc;
}

int fx_applied_once(struct fx_ingest *ig, struct fx_bus *bus, int timeout_ms, struct fx_err *err)
{
    struct fx_delivery *d = NULL;
    int rc = fx_bus_receive(bus, FX_GROUP_APPLIED, timeout_ms, &d, err);
    if (rc <= 0)
        return rc;
    json_error_t je;
    json_t *doc = d->data ? json_loadb(d->data, d->data_len, 0, &je) : NULL;
    const char *chunk = doc ? json_string_value(json_object_get(doc, "chunk")) : NULL;
    if (!chunk) {
        fx_log(FX_LOG_ERROR, "ingest", d->correlation_id,
               "malformed distribution.applied event %s: no chunk id", d->id);
        fx_bus_nack(bus, d, "malformed event: data.chunk missing");
        goto out;
    }
    char now[32];
    fx__now_iso(now);
    struct fx_stmt *st;
    rc = fx_store_prepare(ig->db,
                          "UPDATE staging SET state='applied', applied_at=? WHERE id=?"
                          " AND state <> 'applied'",
                          &st, err);
    if (rc == 0) {
        fx_stmt_bind_text(st, 1, now, strlen(now));
        fx_stmt_bind_text(st, 2, chunk, strlen(chunk));
        rc = fx_stmt_step(st);
        fx_stmt_reset(st);
    }
    if (rc < 0) {
        fx_err_set(err, rc, "cannot mark chunk applied: %s", fx_store_errmsg(ig->db));
        fx_bus_nack(bus, d, err ? err->reason : "store error");
    } else {
        fx_bus_ack(bus, d);
        rc = 1;
    }
out:
    json_decref(doc);
    fx_delivery_free(d);
    return rc < 0 ? rc : 1;
}
