/* SPDX-License-Identifier: MIT */
/*
 * Lookup over the table of embedded front-end assets. The table itself,
 * fx__assets[], is generated at build time by tools/embed.c (see
 * cmake/assets.cmake); it holds a handful of entries, so a linear scan is as
 * fast as anything cleverer and needs no initialisation.
 */
#include "fluxo/assets.h"

#include <string.h>

/* Defined in the generated fx_assets_data.c, which declares them the same way. */
extern const struct fx_asset fx__assets[];
extern const size_t fx__assets_count;

const struct fx_asset *fx_asset_find(const char *path)
{
    if (!path)
        return NULL;
    if (!*path)
        path = "index.html";
    for (size_t i = 0; i < fx__assets_count; i++) {
        if (strcmp(fx__assets[i].path, path) == 0)
            return &fx__assets[i];
    }
    return NULL;
}

size_t fx_asset_count(void)
{
    return fx__assets_count;
}

const struct fx_asset *fx_asset_at(size_t i)
{
    return i < fx__assets_count ? &fx__assets[i] : NULL;
}
