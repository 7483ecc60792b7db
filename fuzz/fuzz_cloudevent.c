/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the CloudEvents decoder: any input must be accepted or
 * rejected with a reason, without overreads; an accepted event must survive
 * encode -> decode unchanged (every attribute, data bytes exactly). The
 * input is copied to an exact-size heap buffer so ASan sees overreads.
 */
#include "fluxo/bus.h"
#include "fluxo/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const char *a, const char *b, const char *what)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        fprintf(stderr, "round trip changed %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fx_malloc(size ? size : 1);
    if (size)
        memcpy(body, data, size);
    struct fx_delivery *d = fx_calloc(1, sizeof(*d));
    struct fx_err err;
    int rc = fx_cloudevent_decode(body, size, d, &err);
    if (rc) {
        if (!err.reason[0] || d->id || d->data)
            abort(); /* a rejection always says why and leaves nothing behind */
        goto out;
    }
    struct fx_msg m = {.id = d->id,
                       .type = d->type,
                       .source = d->source,
                       .routing_key = d->routing_key,
                       .key = d->key,
                       .correlation_id = d->correlation_id,
                       .traceparent = d->traceparent,
                       .time = d->time,
                       .data = d->data,
                       .data_len = d->data_len};
    struct fx_buf b;
    fx_buf_init(&b, 0);
    if (fx_cloudevent_encode(&m, &b) != 0)
        abort(); /* decoded attributes are valid UTF-8: always encodable */
    struct fx_delivery *e = fx_calloc(1, sizeof(*e));
    if (fx_cloudevent_decode(b.data, b.len, e, &err) != 0) {
        fprintf(stderr, "re-decode failed: %s\n", err.reason);
        abort();
    }
    same(e->id, d->id, "id");
    same(e->type, d->type, "type");
    same(e->source, d->source, "source");
    same(e->routing_key, d->routing_key, "routingkey");
    same(e->key, d->key, "partitionkey");
    same(e->correlation_id, d->correlation_id, "correlationid");
    same(e->traceparent, d->traceparent, "traceparent");
    if (d->time) /* absent time is stamped "now" by encode */
        same(e->time, d->time, "time");
    if (e->data_len != d->data_len || (d->data && memcmp(e->data, d->data, d->data_len) != 0))
        abort();
    fx_delivery_free(e);
    fx_buf_cleanup(&b);
out:
    fx_delivery_free(d);
    free(body);
    return 0;
}
