/* SPDX-License-Identifier: MIT */
/* fluxo generate: deterministic Brazilian sales rows in the vendas layout. */
#include "cli.h"

#include "fluxo/generate.h"
#include "fluxo/writer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: fluxo generate --rows N [--seed S] [--format csv|xlsx] [--bad-ratio R]\n"
                 "                      [--dup-ratio R] [--warn-ratio R] [--no-data-hora]\n"
                 "                      [--delimiter ,|;] [--windows-1252] [--out FILE]\n\n"
                 "Writes realistic sales rows (columns nome, email, telefone, endereco_completo,\n"
                 "cpf_cnpj, produto, quantidade, valor_unitario, forma_pagamento, data_hora).\n"
                 "The same seed gives the same bytes. --bad-ratio makes that fraction of rows\n"
                 "invalid (one defect each), --dup-ratio repeats earlier rows exactly,\n"
                 "--warn-ratio gives documents with wrong check digits (accepted with a warning).\n"
                 "Counts are printed on stderr. Default output: stdout (CSV only).\n"
                 "--format xlsx writes the same cells as text in one sheet and needs --out.\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || !*s) {
        fprintf(stderr, "fluxo generate: %s needs a non-negative integer, got '%s'\n", flag, s);
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_ratio(const char *flag, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || !*s || !isfinite(v) || v < 0 || v > 1) {
        fprintf(stderr, "fluxo generate: %s needs a number between 0 and 1, got '%s'\n", flag, s);
        return 2;
    }
    *out = v;
    return 0;
}

static void print_counts(const struct fx_gen_stats *st, uint64_t seed)
{
    fprintf(stderr,
            "generated %llu rows: %llu good (%llu with document warnings), %llu bad, "
            "%llu duplicates (seed %llu)\n",
            (unsigned long long)st->rows, (unsigned long long)st->good_unique,
            (unsigned long long)st->warn, (unsigned long long)st->bad, (unsigned long long)st->dup,
            (unsigned long long)seed);
}

/* The generator's rows through the XLSX writer: the same header and cells as the
 * CSV, all as text (what a spreadsheet typed by hand holds is text too). */
static int generate_xlsx(const struct fx_gen_opts *o, const char *path, struct fx_gen_stats *st,
                         struct fx_err *err)
{
    size_t ncols;
    const char *const *hdr = fx_gen_header(o, &ncols);
    struct fx_col cols[FX_GEN_MAX_COLS];
    for (size_t i = 0; i < ncols; i++)
        cols[i] = (struct fx_col){hdr[i], hdr[i], FX_COL_TEXT};
    struct fx_writer_opts wo;
    fx_writer_opts_init(&wo);
    wo.sheet_name = "vendas";
    struct fx_gen *g = fx_gen_new(o);
    if (!g)
        return fx_err_set(err, FX_EINVAL, "invalid generator options");
    struct fx_writer *w;
    int rc = fx_writer_open("xlsx", path, cols, ncols, &wo, &w, err);
    if (rc == 0) {
        const char *cells[FX_GEN_MAX_COLS];
        size_t n;
        while (fx_gen_next(g, cells, &n, NULL) == 1)
            if (fx_writer_row(w, cells) != 0)
                break; /* reported by close */
        rc = fx_writer_close(w, err);
    }
    fx_gen_counts(g, st);
    fx_gen_free(g);
    return rc;
}

int cmd_generate(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    const char *out_path = NULL;
    int have_rows = 0, xlsx = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-data-hora") == 0) {
            o.with_data_hora = 0;
            continue;
        } else if (strcmp(a, "--windows-1252") == 0) {
            o.windows1252 = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "fluxo generate: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--rows") == 0) {
            rc = parse_u64(a, v, &o.rows);
            have_rows = 1;
        } else if (strcmp(a, "--seed") == 0) {
            rc = parse_u64(a, v, &o.seed);
        } else if (strcmp(a, "--bad-ratio") == 0) {
            rc = parse_ratio(a, v, &o.bad_ratio);
        } else if (strcmp(a, "--dup-ratio") == 0) {
            rc = parse_ratio(a, v, &o.dup_ratio);
        } else if (strcmp(a, "--warn-ratio") == 0) {
            rc = parse_ratio(a, v, &o.warn_ratio);
        } else if (strcmp(a, "--format") == 0) {
            if (strcmp(v, "csv") != 0 && strcmp(v, "xlsx") != 0) {
                fprintf(stderr, "fluxo generate: --format %s is not supported (csv, xlsx)\n", v);
                return 2;
            }
            xlsx = strcmp(v, "xlsx") == 0;
        } else if (strcmp(a, "--delimiter") == 0) {
            if ((v[0] != ',' && v[0] != ';') || v[1]) {
                fprintf(stderr, "fluxo generate: --delimiter must be ',' or ';'\n");
                return 2;
            }
            o.delimiter = v[0];
        } else if (strcmp(a, "--out") == 0 || strcmp(a, "-o") == 0) {
            out_path = v;
        } else {
            fprintf(stderr, "fluxo generate: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (rc)
            return rc;
    }
    if (!have_rows) {
        usage(stderr);
        return 2;
    }
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_gen_opts_check(&o, &err) != 0) {
        fprintf(stderr, "fluxo generate: %s\n", err.reason);
        return 2;
    }
    if (xlsx) {
        if (!out_path || strcmp(out_path, "-") == 0) {
            fprintf(stderr, "fluxo generate: --format xlsx needs --out FILE\n");
            return 2;
        }
        if (o.windows1252) {
            fprintf(stderr, "fluxo generate: --windows-1252 is for CSV only\n");
            return 2;
        }
    }
    struct fx_gen_stats st;
    if (xlsx) {
        int rc = generate_xlsx(&o, out_path, &st, &err);
        if (rc != 0) {
            fprintf(stderr, "fluxo generate: %s\n", err.reason[0] ? err.reason : fx_strerror(rc));
            return 1;
        }
        print_counts(&st, o.seed);
        return 0;
    }
    FILE *f = out_path ? fopen(out_path, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "fluxo generate: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof(buf));
    int rc = fx_generate_csv(&o, f, &st);
    int flushed;
    if (out_path)
        flushed = fclose(f);
    else
        flushed = fflush(f);
    if (flushed != 0 && rc == 0)
        rc = FX_EIO;
    if (rc != 0) {
        fprintf(stderr, "fluxo generate: %s\n", fx_strerror(rc));
        return 1;
    }
    print_counts(&st, o.seed);
    return 0;
}
