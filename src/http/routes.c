/* SPDX-License-Identifier: MIT */
/*
 * The route table: method, path pattern ({} = one segment), the scope a
 * bearer token needs (0 = public), how the body is taken, and the handlers.
 * docs/api.md and the OpenAPI document (src/http/openapi.json) list the same
 * routes; test_http checks every one of them is documented.
 */
#include "http_int.h"

/* One route per line reads as a table: keep clang-format from spreading them out. */
/* clang-format off */
const struct route http_routes[] = {
    {"GET", "/healthz", "/healthz", 0, BODY_NONE, 0, NULL, NULL, api_healthz},
    {"GET", "/readyz", "/readyz", 0, BODY_NONE, 0, NULL, NULL, api_readyz},
    {"GET", "/metrics", "/metrics", 0, BODY_NONE, 0, NULL, NULL, api_metrics},
    {"GET", "/openapi.json", "/openapi.json", 0, BODY_NONE, 0, NULL, NULL, api_openapi},
    {"GET", "/docs", "/docs", 0, BODY_NONE, 0, NULL, NULL, api_docs},
    {"GET", "/docs/{}", "/docs/{file}", 0, BODY_NONE, 0, NULL, NULL, api_docs},
    {"POST", "/token", "/token", 0, BODY_BUFFER, 0, NULL, NULL, api_token},
    /* the original ingestion API */
    {"GET", "/status", "/status", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_status},
    {"GET", "/clientes", "/clientes", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_clientes},
    {"GET", "/produtos", "/produtos", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_produtos},
    {"GET", "/compras", "/compras", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_compras_list},
    {"POST", "/compras", "/compras", FX_SCOPE_INGEST_WRITE, BODY_STREAM, 0, api_compras_begin,
     api_records_data, api_records_end},
    /* generic */
    {"GET", "/api/v1/pipelines", "/api/v1/pipelines", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL,
     api_pipelines},
    {"POST", "/api/v1/pipelines/{}/records", "/api/v1/pipelines/{name}/records",
     FX_SCOPE_INGEST_WRITE, BODY_STREAM, 0, api_records_begin, api_records_data,
     api_records_end},
    {"POST", "/api/v1/pipelines/{}/files", "/api/v1/pipelines/{name}/files",
     FX_SCOPE_INGEST_WRITE, BODY_STREAM, 1, api_files_begin, api_files_data, api_files_end},
    {"GET", "/api/v1/batches/{}", "/api/v1/batches/{id}", FX_SCOPE_READ, BODY_NONE, 0, NULL,
     NULL, api_batch},
    {"GET", "/api/v1/batches/{}/errors", "/api/v1/batches/{id}/errors", FX_SCOPE_READ,
     BODY_NONE, 0, NULL, NULL, api_batch_errors},
    {"GET", "/api/v1/status/{}", "/api/v1/status/{correlation_id}", FX_SCOPE_READ, BODY_NONE,
     0, NULL, NULL, api_request_status},
    {NULL, NULL, NULL, 0, BODY_NONE, 0, NULL, NULL, NULL},
};
/* clang-format on */
