/* SPDX-License-Identifier: MIT */
/*
 * Front-end assets compiled into the binary: the Swagger UI page served under
 * /docs/ (our web/docs/index.html and init.js, plus swagger-ui.css,
 * swagger-ui-bundle.js, the favicon and Swagger UI's license files from the
 * swagger-ui-dist npm package pinned by web/package-lock.json). They are
 * embedded at build time (cmake/assets.cmake, tools/embed.c), so serving them
 * needs no network and no files next to the binary. Everything here is
 * read-only static data: thread-safe, never freed.
 */
#ifndef FLUXO_ASSETS_H
#define FLUXO_ASSETS_H

#include <stddef.h>

struct fx_asset {
    const char *path;          /* relative to the docs root: "index.html", "swagger-ui.css" */
    const unsigned char *data; /* len bytes, followed by a NUL not counted in len */
    size_t len;                /* never 0 */
    const char *content_type;  /* e.g. "text/html; charset=utf-8", "image/png" */
    const char *etag;          /* strong ETag with its quotes: "\"0123456789abcdef\"" */
};

/*
 * The asset served at path, relative to the docs root ("" is the page itself,
 * the same as "index.html"). Exact match only: no leading slash, no query, no
 * "..". Returns NULL if absent (or path is NULL).
 */
const struct fx_asset *fx_asset_find(const char *path);

/* Number of embedded assets. */
size_t fx_asset_count(void);

/* The i-th asset (0 <= i < fx_asset_count()), or NULL past the end. */
const struct fx_asset *fx_asset_at(size_t i);

#endif
