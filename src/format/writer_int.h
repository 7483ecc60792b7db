/* SPDX-License-Identifier: MIT */
/* The writer instance shared by the front (writer.c) and the backends (csv_write.c, xlsx_write.c).
 */
#ifndef FLUXO_FORMAT_WRITER_INT_H
#define FLUXO_FORMAT_WRITER_INT_H

#include "fluxo/writer.h"

struct fx_writer {
    const struct fx_writer_ops *ops;
    struct fx_col *cols; /* copies: names and headers owned (header never NULL) */
    size_t ncols;
    struct fx_writer_opts o;
    uint64_t rows;     /* data rows accepted */
    int failed;        /* first error of a row, sticky */
    struct fx_err err; /* its reason */
    void *impl;        /* backend state */
};

/* Number of UTF-8 code points in s (for column widths). */
size_t fx__utf8_chars(const char *s);

#endif
