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
    {"GET", "/healthz", "/healthz", 0, BODY_NONE, 0, NULL, NULL, api_healthz, NULL},
    {"GET", "/readyz", "/readyz", 0, BODY_NONE, 0, NULL, NULL, api_readyz, NULL},
    {"GET", "/metrics", "/metrics", 0, BODY_NONE, 0, NULL, NULL, api_metrics, NULL},
    {"GET", "/openapi.json", "/openapi.json", 0, BODY_NONE, 0, NULL, NULL, api_openapi, NULL},
    {"GET", "/docs", "/docs", 0, BODY_NONE, 0, NULL, NULL, api_docs, NULL},
    {"GET", "/docs/{}", "/docs/{file}", 0, BODY_NONE, 0, NULL, NULL, api_docs, NULL},
    {"POST", "/token", "/token", 0, BODY_BUFFER, 0, NULL, NULL, api_token, NULL},
    /* the original ingestion API */
    {"GET", "/status", "/status", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_status, NULL},
    {"GET", "/clientes", "/clientes", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_clientes, NULL},
    {"GET", "/produtos", "/produtos", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_produtos, NULL},
    {"GET", "/compras", "/compras", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL, api_compras_list, NULL},
    {"POST", "/compras", "/compras", FX_SCOPE_INGEST_WRITE, BODY_STREAM, 0, api_compras_begin,
     api_records_data, api_records_end, api_records_resumed},
    /* generic */
    {"GET", "/api/v1/pipelines", "/api/v1/pipelines", FX_SCOPE_READ, BODY_NONE, 0, NULL, NULL,
     api_pipelines, NULL},
    {"POST", "/api/v1/pipelines/{}/records", "/api/v1/pipelines/{name}/records",
     FX_SCOPE_INGEST_WRITE, BODY_STREAM, 0, api_records_begin, api_records_data,
     api_records_end, api_records_resumed},
    {"POST", "/api/v1/pipelines/{}/files", "/api/v1/pipelines/{name}/files",
     FX_SCOPE_INGEST_WRITE, BODY_STREAM, 1, api_files_begin, api_files_data, api_files_end, NULL},
    {"GET", "/api/v1/batches/{}", "/api/v1/batches/{id}", FX_SCOPE_READ, BODY_NONE, 0, NULL,
     NULL, api_batch, NULL},
    {"GET", "/api/v1/batches/{}/errors", "/api/v1/batches/{id}/errors", FX_SCOPE_READ,
     BODY_NONE, 0, NULL, NULL, api_batch_errors, NULL},
    {"GET", "/api/v1/status/{}", "/api/v1/status/{correlation_id}", FX_SCOPE_READ, BODY_NONE,
     0, NULL, NULL, api_request_status, NULL},
    {NULL, NULL, NULL, 0, BODY_NONE, 0, NULL, NULL, NULL, NULL},
};
/* clang-format on */
