/* SPDX-License-Identifier: MIT */
/* fluxo generate: deterministic Brazilian sales rows in the vendas layout. */
#include "cli.h"

#include "fluxo/generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: fluxo generate --rows N [--seed S] [--format csv] [--bad-ratio R]\n"
                 "                      [--dup-ratio R] [--warn-ratio R] [--no-data-hora]\n"
                 "                      [--delimiter ,|;] [--windows-1252] [--out FILE]\n\n"
                 "Writes realistic sales rows (columns nome, email, telefone, endereco_completo,\n"
                 "cpf_cnpj, produto, quantidade, valor_unitario, forma_pagamento, data_hora).\n"
                 "The same seed gives the same bytes. --bad-ratio makes that fraction of rows\n"
                 "invalid (one defect each), --dup-ratio repeats earlier rows exactly,\n"
                 "--warn-ratio gives documents with wrong check digits (accepted with a warning).\n"
                 "Counts are printed on stderr. Default output: stdout.\n");
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

int cmd_generate(struct cli *cli, int argc, char **argv)
{
    (void)cli;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    const char *out_path = NULL;
    int have_rows = 0;
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
            if (strcmp(v, "csv") != 0) {
                fprintf(stderr, "fluxo generate: --format %s is not supported (csv)\n", v);
                return 2;
            }
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
    FILE *f = out_path ? fopen(out_path, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "fluxo generate: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof(buf));
    struct fx_gen_stats st;
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
    fprintf(stderr,
            "generated %llu rows: %llu good (%llu with document warnings), %llu bad, "
            "%llu duplicates (seed %llu)\n",
            (unsigned long long)st.rows, (unsigned long long)st.good_unique,
            (unsigned long long)st.warn, (unsigned long long)st.bad, (unsigned long long)st.dup,
            (unsigned long long)o.seed);
    return 0;
}
