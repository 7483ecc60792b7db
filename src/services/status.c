/* SPDX-License-Identifier: MIT */
/* Batch status and issue listing: the service functions behind `fluxo status` and the API. */
#include "fluxo/mem.h"
#include "ingest_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_col(struct fx_stmt *st, int col, char *dst, size_t cap)
{
    size_t len = 0;
    const char *s = fx_stmt_text(st, col, &len);
    if (!s) {
        dst[0] = '\0';
        return;
    }
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

int fx_ingest_status(struct fx_ingest *ig, const char *batch_id, struct fx_batch_status *out)
{
    memset(out, 0, sizeof(*out));
    struct fx_stmt *st;
    struct fx_err err;
    int rc = fx_store_prepare(ig->db,
                              "SELECT id, correlation_id, pipeline, state, source, created_at,"
                              " coalesce(error,''), received, accepted, rejected, duplicate,"
                              " warnings, possible_dup FROM batches WHERE id = ?",
                              &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, batch_id, strlen(batch_id));
    rc = fx_stmt_step(st);
    if (rc != FX_STORE_ROW) {
        fx_stmt_reset(st);
        return rc < 0 ? rc : FX_ENOTFOUND;
    }
    copy_col(st, 0, out->id, sizeof(out->id));
    copy_col(st, 1, out->correlation_id, sizeof(out->correlation_id));
    copy_col(st, 2, out->pipeline, sizeof(out->pipeline));
    copy_col(st, 3, out->state, sizeof(out->state));
    copy_col(st, 4, out->source, sizeof(out->source));
    copy_col(st, 5, out->created_at, sizeof(out->created_at));
    copy_col(st, 6, out->error, sizeof(out->error));
    out->received = (uint64_t)fx_stmt_int(st, 7);
    out->accepted = (uint64_t)fx_stmt_int(st, 8);
    out->rejected = (uint64_t)fx_stmt_int(st, 9);
    out->duplicate = (uint64_t)fx_stmt_int(st, 10);
    out->warnings = (uint64_t)fx_stmt_int(st, 11);
    out->possible_dup = (uint64_t)fx_stmt_int(st, 12);
    fx_stmt_reset(st);

    rc = fx_store_prepare(ig->db,
                          "SELECT state, sum(nrows) FROM staging WHERE batch_id = ? GROUP BY state",
                          &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, batch_id, strlen(batch_id));
    while ((rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        const char *state = fx_stmt_text(st, 0, NULL);
        uint64_t n = (uint64_t)fx_stmt_int(st, 1);
        if (strcmp(state, "pending") == 0)
            out->queued += n;
        else if (strcmp(state, "published") == 0)
            out->published += n;
        else if (strcmp(state, "applied") == 0)
            out->applied += n;
    }
    fx_stmt_reset(st);
    if (rc < 0)
        return rc;
    /* The stored state only knows "receiving/queued/failed"; delivery progress is derived. */
    if (strcmp(out->state, "queued") == 0) {
        if (out->applied == out->accepted)
            snprintf(out->state, sizeof(out->state), "applied");
        else if (out->queued == 0)
            snprintf(out->state, sizeof(out->state), "published");
    }
    return 0;
}

int fx_ingest_issues(struct fx_ingest *ig, const char *batch_id, size_t limit, fx_issue_cb cb,
                     void *ud)
{
    struct fx_stmt *st;
    struct fx_err err;
    int rc = fx_store_prepare(ig->db,
                              "SELECT row, col, field, value, rule, reason, severity FROM issues"
                              " WHERE batch_id = ? ORDER BY severity, row, col LIMIT ?",
                              &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_text(st, 1, batch_id, strlen(batch_id));
    /* no limit: the largest bound both engines take (PostgreSQL refuses LIMIT -1) */
    fx_stmt_bind_int(st, 2, limit ? (int64_t)limit : INT64_MAX);
    while ((rc = fx_stmt_step(st)) == FX_STORE_ROW) {
        if (cb(ud, (long)fx_stmt_int(st, 0), (int)fx_stmt_int(st, 1), fx_stmt_text(st, 2, NULL),
               fx_stmt_text(st, 3, NULL), fx_stmt_text(st, 4, NULL), fx_stmt_text(st, 5, NULL),
               fx_stmt_text(st, 6, NULL)))
            break;
    }
    fx_stmt_reset(st);
    return rc < 0 ? rc : 0;
}

int fx_ingest_list(struct fx_ingest *ig, size_t limit, fx_batch_cb cb, void *ud)
{
    struct fx_stmt *st;
    struct fx_err err;
    int rc = fx_store_prepare(
        ig->db, "SELECT id FROM batches ORDER BY created_at DESC, id DESC LIMIT ?", &st, &err);
    if (rc)
        return rc;
    fx_stmt_bind_int(st, 1, limit ? (int64_t)limit : INT64_MAX);
    /* ids first: the status queries use statements of their own */
    char(*ids)[37] = fx_calloc(limit ? limit : 1, 37);
    size_t n = 0;
    while (n < (limit ? limit : 1) && (rc = fx_stmt_step(st)) == FX_STORE_ROW)
        copy_col(st, 0, ids[n++], 37);
    fx_stmt_reset(st);
    if (rc >= 0)
        rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct fx_batch_status bs;
        if ((rc = fx_ingest_status(ig, ids[i], &bs)) == 0 && cb(ud, &bs))
            break;
    }
    free(ids);
    return rc;
}
