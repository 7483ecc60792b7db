/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API: libmicrohttpd event loops (one per core, keep-alive), a
 * router with per-route scopes and body limits, RFC 9457 problem+json
 * errors, JWT bearer auth, ingest endpoints answered after a group commit,
 * read endpoints, OpenAPI + Swagger UI, /healthz, /readyz and /metrics.
 * See docs/api.md.
 */
#ifndef FLUXO_HTTP_H
#define FLUXO_HTTP_H

#include "fluxo/error.h"
#include "fluxo/services.h"

struct fx_http;

/* Listen on http_addr (host:port; port 0 = any free port) and serve until
 * fx_http_stop. */
int fx_http_start(struct fx_runtime *rt, struct fx_http **out, struct fx_err *err);
/* The port actually bound. */
unsigned fx_http_port(const struct fx_http *h);
/* Graceful stop: stop accepting, let in-flight requests finish (up to
 * grace_ms), commit what the API writer holds, close the open API batches. */
void fx_http_stop(struct fx_http *h, int grace_ms);

#endif
