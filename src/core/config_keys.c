/* SPDX-License-Identifier: MIT */
/*
 * The configuration key table: every setting Fluxo reads, with its type,
 * default, bounds and one line of help. This table is the single source for
 * parsing and validation (config.c), `fluxo config --help` and the table in
 * docs/configuration.md (fx_config_doc_markdown; a unit test checks the doc
 * matches). To add a setting, add a row here and regenerate the doc table.
 */
#include "fluxo/config.h"

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)

/* One row per key reads as a table: keep clang-format from spreading them out. */
/* clang-format off */
const struct fx_config_key fx_config_keys[] = {
    {.name = "data_dir", .type = FX_CFG_STRING, .def = "./data",
     .help = "directory of the embedded databases and the inbox"},
    {.name = "inbox", .type = FX_CFG_STRING, .def = NULL,
     .help = "watched folder (default: <data_dir>/inbox)"},
    {.name = "db", .type = FX_CFG_STRING, .def = NULL, .secret = 1,
     .help = "store URL (default: sqlite:<data_dir>)"},
    {.name = "bus", .type = FX_CFG_STRING, .def = NULL, .secret = 1,
     .help = "bus URL (default: local:<data_dir>)"},
    {.name = "pipelines_dir", .type = FX_CFG_STRING, .def = "./pipelines",
     .help = "directory of the pipeline definitions"},
    {.name = "pipeline", .type = FX_CFG_STRING, .def = "vendas",
     .help = "default pipeline for imports and the inbox"},
    {.name = "timezone", .type = FX_CFG_STRING, .def = "America/Sao_Paulo",
     .help = "zone of naive date-times"},
    {.name = "log_level", .type = FX_CFG_STRING, .def = "info",
     .choices = "debug|info|warn|error|off", .help = "lowest level of log lines written"},
    {.name = "log_format", .type = FX_CFG_STRING, .def = "auto", .choices = "auto|json|plain",
     .help = "log line format (auto: plain on a terminal, else JSON)"},

    {.name = "ingest.chunk_rows", .type = FX_CFG_INT, .def = "1000", .min = 1, .max = 100000,
     .help = "rows per chunk of an import"},
    {.name = "ingest.max_line_bytes", .type = FX_CFG_SIZE, .def = "1MiB", .min = 1 * KiB,
     .max = 64 * MiB, .help = "longest accepted input line"},
    {.name = "ingest.max_field_bytes", .type = FX_CFG_SIZE, .def = "64KiB", .min = 16,
     .max = 16 * MiB, .help = "longest accepted field"},
    {.name = "ingest.max_fields", .type = FX_CFG_INT, .def = "1024", .min = 1, .max = 65536,
     .help = "most fields accepted in a record"},
    {.name = "ingest.commit_rows", .type = FX_CFG_INT, .def = "50000", .min = 1000,
     .max = 100000000,
     .help = "rows per ingest transaction: queued chunks flow to distribution while a big file "
             "is still being read"},

    {.name = "relay.batch", .type = FX_CFG_INT, .def = "64", .min = 1, .max = 10000,
     .help = "outbox chunks per publish"},
    {.name = "relay.interval_ms", .type = FX_CFG_MS, .def = "50ms", .min = 1, .max = 60000,
     .help = "interval between relay polls of the outbox"},

    {.name = "watch.interval_ms", .type = FX_CFG_MS, .def = "500ms", .min = 10, .max = 3600000,
     .help = "how often the inbox is scanned"},
    {.name = "watch.settle_ms", .type = FX_CFG_MS, .def = "1000ms", .min = 0, .max = 3600000,
     .help = "a file is finished when its size and mtime have not changed for this long"},

    {.name = "distribution.workers", .type = FX_CFG_INT, .def = "1", .min = 1, .max = 64,
     .help = "number of distribution workers"},
    {.name = "distribution.batch", .type = FX_CFG_INT, .def = "64", .min = 1, .max = 1000,
     .help = "most waiting chunks applied in one transaction (fewer page writes per row)"},

    {.name = "delivery.max_attempts", .type = FX_CFG_INT, .def = "5", .min = 1, .max = 1000,
     .help = "attempts before a delivery is given up"},
    {.name = "delivery.backoff_ms", .type = FX_CFG_MS, .def = "500ms", .min = 1, .max = 3600000,
     .help = "delay before a failed delivery is retried"},
    {.name = "delivery.lease_ms", .type = FX_CFG_MS, .def = "60s", .min = 100, .max = 86400000,
     .help = "how long a claimed delivery is leased to one worker"},

    {.name = "http_addr", .type = FX_CFG_STRING, .def = "127.0.0.1:8001",
     .help = "listen address of the HTTP API (host:port; off: no HTTP server)"},
    {.name = "http.threads", .type = FX_CFG_INT, .def = "0", .min = 0, .max = 256,
     .help = "HTTP event-loop threads (0: one per core)"},
    {.name = "http.max_connections", .type = FX_CFG_INT, .def = "1024", .min = 1, .max = 100000,
     .help = "most simultaneous HTTP connections"},
    {.name = "http.event_loop", .type = FX_CFG_STRING, .def = "poll", .choices = "poll|epoll",
     .help = "how an event loop waits on its connections (epoll: for thousands of idle ones)"},
    {.name = "http.timeout_ms", .type = FX_CFG_MS, .def = "30s", .min = 1000, .max = 3600000,
     .help = "an idle HTTP connection is closed after this long"},
    {.name = "http.max_headers", .type = FX_CFG_INT, .def = "64", .min = 8, .max = 10000,
     .help = "most header lines in a request (more: 431)"},
    {.name = "http.max_header_bytes", .type = FX_CFG_SIZE, .def = "16KiB", .min = 1 * KiB,
     .max = 1 * MiB, .help = "largest request line plus headers (more: 431)"},
    {.name = "http.max_body", .type = FX_CFG_SIZE, .def = "64MiB", .min = 1 * KiB,
     .max = INT64_C(4096) * MiB, .help = "largest JSON / NDJSON request body (more: 413)"},
    {.name = "http.max_upload", .type = FX_CFG_SIZE, .def = "1024MiB", .min = 1 * KiB,
     .max = INT64_C(65536) * MiB, .help = "largest uploaded file, streamed to disk (more: 413)"},
    {.name = "http.max_queued_rows", .type = FX_CFG_INT, .def = "5000000", .min = 1,
     .max = INT64_C(1000000000000),
     .help = "backpressure: past this many accepted rows not yet applied, writes get 429"},
    {.name = "http.access_log", .type = FX_CFG_BOOL, .def = "true",
     .help = "log every request (JSON line: method, path, status, time, correlation id)"},
    {.name = "http.cors_origin", .type = FX_CFG_STRING, .def = NULL,
     .help = "value of Access-Control-Allow-Origin (unset: no CORS headers)"},

    {.name = "secret", .type = FX_CFG_STRING, .def = NULL, .secret = 1,
     .help = "HS256 secret for signing API tokens (JWT), 32 bytes or more; masked in dumps"},
    {.name = "auth.alg", .type = FX_CFG_STRING, .def = "HS256", .choices = "HS256|RS256|ES256",
     .help = "the only JWT algorithm accepted and issued"},
    {.name = "auth.private_key", .type = FX_CFG_STRING, .def = NULL,
     .help = "PEM private key file for RS256/ES256 (signs tokens)"},
    {.name = "auth.public_key", .type = FX_CFG_STRING, .def = NULL,
     .help = "PEM public key file for RS256/ES256 (verifies tokens)"},
    {.name = "auth.issuer", .type = FX_CFG_STRING, .def = "fluxo",
     .help = "iss of issued tokens; tokens of another issuer are refused"},
    {.name = "auth.audience", .type = FX_CFG_STRING, .def = "fluxo-api",
     .help = "aud of issued tokens; tokens for another audience are refused"},
    {.name = "auth.token_ttl", .type = FX_CFG_MS, .def = "1h", .min = 1000, .max = 2592000000,
     .help = "lifetime of issued tokens"},
    {.name = "auth.leeway", .type = FX_CFG_MS, .def = "30s", .min = 0, .max = 3600000,
     .help = "clock skew tolerated on exp and nbf"},
    {.name = "auth.dev", .type = FX_CFG_BOOL, .def = "false",
     .help = "development mode: without a secret, generate one into <data_dir>/jwt.secret"},

    {.name = NULL},
};
/* clang-format on */
