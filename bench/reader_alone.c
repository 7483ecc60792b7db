/* SPDX-License-Identifier: MIT */
/*
 * A reader alone, no validation: opens FILE with the record-reader interface
 * (format by content: CSV, XLSX, XLS), pulls every record and counts rows and
 * cells. Prints "rows R cells C seconds S cells/s X" for bench/run.sh.
 *
 * usage: bench_reader_alone FILE
 */
#include "fluxo/reader.h"
#include "fluxo/util.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_reader *rd = NULL;
    int64_t t0 = fx_mono_us();
    if (fx_reader_open(argv[1], NULL, &rd, &err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err.reason);
        return 1;
    }
    struct fx_record rec;
    long long rows = 0, cells = 0;
    int rc;
    while ((rc = fx_reader_next(rd, &rec, &err)) == 1) {
        rows++;
        cells += (long long)rec.ncells;
    }
    fx_reader_free(rd);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err.reason);
        return 1;
    }
    double s = (double)(fx_mono_us() - t0) / 1e6;
    printf("rows %lld cells %lld seconds %.3f cells/s %.0f\n", rows, cells, s, (double)cells / s);
    return 0;
}
