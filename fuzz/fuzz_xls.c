/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the legacy XLS reader (libfreexl): the input is written to
 * a temp file and read through fx_xls_reader_open and the next loop, with
 * small caps when the first byte says so. Checks: no crash or leak, rows
 * increasing, cells NUL-terminated and within the caps, rejected records
 * without cells, errors with a reason.
 */
#include "fluxo/xlsx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_xls: contract broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    if (ctl & 1) {
        o.max_field_bytes = 1 + ((ctl >> 1) & 7) * 5;
        o.max_fields = 1 + ((ctl >> 4) & 3) * 3;
        o.max_line_bytes = 8 + ((ctl >> 6) & 3) * 20;
    }
    char path[] = "/tmp/fuzz_xls_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    struct fx_reader *r;
    struct fx_err err;
    int rc = off == size ? fx_xls_reader_open(path, &o, &r, &err) : -1;
    if (rc == 0) {
        struct fx_record rec;
        long last = 0;
        while ((rc = fx_reader_next(r, &rec, &err)) == 1) {
            check(rec.row > last, "rows increase");
            last = rec.row;
            if (rec.bad) {
                check(rec.ncells == 0 && rec.err.reason[0], "bad record: no cells, a reason");
                continue;
            }
            check(rec.ncells >= 1 && rec.ncells <= o.max_fields, "cells within max_fields");
            for (size_t i = 0; i < rec.ncells; i++) {
                check(rec.cells[i].len <= o.max_field_bytes, "cell within max_field_bytes");
                check(rec.cells[i].s[rec.cells[i].len] == '\0', "cell NUL-terminated");
            }
        }
        check(rc == 0 || err.reason[0], "fatal error has a reason");
        fx_reader_free(r);
    } else if (off == size) {
        check(rc < 0 && err.reason[0], "open fails with a reason");
    }
    unlink(path);
    return 0;
}
