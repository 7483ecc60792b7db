/* SPDX-License-Identifier: MIT */
/* Files embedded in the binary at build time (cmake/embed.cmake). */
#ifndef FLUXO_EMBEDDED_H
#define FLUXO_EMBEDDED_H

#include <stddef.h>

struct fx_embedded {
    const char *name; /* file name, NULL ends the table */
    const char *data; /* NUL-terminated */
    size_t len;
};

/* the .yaml files of pipelines/ in the source tree, used when no pipelines directory is configured
 */
extern const struct fx_embedded fx_embedded_pipelines[];

#endif
