/* SPDX-License-Identifier: MIT */
/* Internals shared by the ingest-side files (ingest.c, relay.c, status.c). */
#ifndef FLUXO_INGEST_INTERNAL_H
#define FLUXO_INGEST_INTERNAL_H

#include "fluxo/services.h"
#include "fluxo/store.h"

struct fx_ingest {
    struct fx_runtime *rt;
    struct fx_store *db;
};

/* Current UTC time as RFC 3339 with milliseconds. */
void fx__now_iso(char out[32]);

#endif
