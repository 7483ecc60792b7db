/* SPDX-License-Identifier: MIT */
/*
 * fluxo check: read and validate files against a pipeline without storing
 * anything — what a user runs before sending a file, and the parse + validate
 * figure of the benchmarks.
 */
#include "cli.h"

#include "fluxo/reader.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_file(struct cli *cli, const char *path, const struct fx_pipeline *p, long show)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_reader_opts ro;
    fx_reader_opts_init(&ro);
    ro.max_line_bytes = (size_t)fx_config_int(cli->cfg, "ingest.max_line_bytes");
    ro.max_field_bytes = (size_t)fx_config_int(cli->cfg, "ingest.max_field_bytes");
    ro.max_fields = (size_t)fx_config_int(cli->cfg, "ingest.max_fields");
    struct fx_reader *rd = NULL;
    struct fx_binding *b = NULL;
    struct fx_record rec;
    int rc = fx_reader_open(path, &ro, &rd, &err);
    if (rc == 0 && (rc = fx_reader_next(rd, &rec, &err)) == 0)
        rc = fx_err_set(&err, FX_EEMPTY, "empty file: no header row and no data");
    if (rc == 1 && rec.bad) {
        err = rec.err;
        rc = FX_EPARSE;
    }
    if (rc == 1)
        rc = fx_pipeline_bind(p, &rec, path, &b, &err);
    if (rc != 0) {
        if (!err.source[0])
            snprintf(err.source, sizeof(err.source), "%s", path);
        cli_print_err("file refused", &err);
        fx_reader_free(rd);
        return 1;
    }
    struct fx_row row;
    struct fx_issues iss = {0};
    fx_row_init(&row, p);
    unsigned long long n = 0, bad = 0, warn = 0;
    long shown = 0;
    int64_t t0 = fx_mono_ms();
    while ((rc = fx_reader_next(rd, &rec, &err)) == 1) {
        n++;
        int v = fx_pipeline_validate(b, &rec, &row, &iss);
        if (v)
            bad++;
        else if (iss.n)
            warn++;
        for (size_t i = 0; i < iss.n && shown < show; i++, shown++)
            fprintf(stderr, "  %s:%ld:%d: %s: %s: %s (value \"%s\")\n", path, rec.row,
                    iss.v[i].column, iss.v[i].severity == FX_ISSUE_ERROR ? "error" : "warning",
                    iss.v[i].field, iss.v[i].reason, iss.v[i].value);
    }
    double secs = (double)(fx_mono_ms() - t0) / 1000.0;
    if (rc < 0)
        cli_print_err("read error", &err);
    else if (n == 0)
        fprintf(stderr, "fluxo: %s: header only: the file has no data rows\n", path);
    printf("%s: %llu rows, %llu valid (%llu with warnings), %llu invalid; %.3fs, %.0f rows/s\n",
           path, n, n - bad, warn, bad, secs, secs > 0 ? (double)n / secs : 0.0);
    fx_row_cleanup(&row);
    fx_issues_cleanup(&iss);
    fx_binding_free(b);
    fx_reader_free(rd);
    return rc < 0 || n == 0 ? 1 : 0;
}

int cmd_check(struct cli *cli, int argc, char **argv)
{
    const char *pipeline = NULL;
    long show = 20;
    int first = 0, nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: fluxo check [--pipeline NAME] [--show N] FILE...\n\n"
                   "Reads and validates files against a pipeline without storing anything;\n"
                   "prints the first N issues (default 20) and the counts. Exit status 1 when\n"
                   "a file is refused as a whole.\n");
            return 0;
        } else if (strcmp(argv[i], "--pipeline") == 0 && i + 1 < argc) {
            pipeline = argv[++i];
        } else if (strcmp(argv[i], "--show") == 0 && i + 1 < argc) {
            show = strtol(argv[++i], NULL, 10);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "fluxo check: unknown option '%s'\n", argv[i]);
            return 2;
        } else {
            if (!first)
                first = i;
            nfiles++;
        }
    }
    if (!nfiles) {
        fprintf(stderr, "usage: fluxo check [--pipeline NAME] [--show N] FILE...\n");
        return 2;
    }
    if (cli_load_runtime(cli))
        return 1;
    const char *name = pipeline ? pipeline : cli->rt.default_pipeline;
    const struct fx_pipeline *p = fx_runtime_pipeline(&cli->rt, name);
    if (!p) {
        fprintf(stderr, "fluxo check: unknown pipeline '%s'\n", name);
        return 1;
    }
    int rc = 0;
    for (int i = first; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            if (strcmp(argv[i], "--pipeline") == 0 || strcmp(argv[i], "--show") == 0)
                i++;
            continue;
        }
        rc |= check_file(cli, argv[i], p, show);
    }
    return rc;
}
