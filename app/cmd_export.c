/* SPDX-License-Identifier: MIT */
/* fluxo export TABLE: a normalized table of the distribution database as CSV or XLSX. */
#include "cli.h"

#include "fluxo/export.h"
#include "fluxo/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fluxo export TABLE [--format csv|xlsx] [--out FILE] [--decimal-comma]\n"
            "                          [--crlf] [--no-bom] [--delimiter ';'|','|'|'|tab]\n\n"
            "Writes every row of a normalized table (e.g. clientes, produtos, compras) in\n"
            "id order, with pt-BR headers. Default format csv; default file TABLE.csv or\n"
            "TABLE.xlsx in the current directory; --out - writes CSV to standard output.\n\n"
            "CSV: UTF-8 with a byte order mark (--no-bom to omit it), ';' between fields,\n"
            "money as 1234.56 (--decimal-comma: 1234,56), '\\n' line ends (--crlf: CRLF).\n"
            "Text cells starting with = + - @ are prefixed with ' so that spreadsheets\n"
            "do not run them as formulas.\n"
            "XLSX: typed cells (money in R$, dates, date-times in the configured timezone),\n"
            "header frozen with a filter; past 1,048,575 rows the rows go on in a new sheet.\n");
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
    const char *table = NULL, *format = NULL, *out = NULL;
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--decimal-comma") == 0) {
            o.csv_decimal_comma = 1;
        } else if (strcmp(a, "--crlf") == 0) {
            o.csv_crlf = 1;
        } else if (strcmp(a, "--no-bom") == 0) {
            o.csv_bom = 0;
        } else if (strcmp(a, "--format") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "-o") == 0 ||
                   strcmp(a, "--delimiter") == 0) {
            if (!v)
                return cli_missing(a);
            i++;
            if (strcmp(a, "--format") == 0) {
                if (strcmp(v, "csv") != 0 && strcmp(v, "xlsx") != 0) {
                    fprintf(stderr, "fluxo export: --format must be csv or xlsx, got '%s'\n", v);
                    return 2;
                }
                format = v;
            } else if (strcmp(a, "--delimiter") == 0) {
                if (strcmp(v, "tab") == 0 || strcmp(v, "\\t") == 0)
                    v = "\t";
                if (!strchr(";,|\t", v[0]) || !v[0] || v[1]) {
                    fprintf(stderr, "fluxo export: --delimiter must be ';', ',', '|' or tab\n");
                    return 2;
                }
                o.csv_delimiter = v[0];
            } else {
                out = v;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "fluxo export: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!table) {
            table = a;
        } else {
            fprintf(stderr, "fluxo export: one table at a time ('%s' and '%s')\n", table, a);
            return 2;
        }
    }
    if (!table) {
        usage(stderr);
        return 2;
    }
    if (!format)
        format = "csv";
    if (o.csv_decimal_comma && o.csv_delimiter == ',') {
        fprintf(stderr, "fluxo export: --decimal-comma needs a delimiter other than ','\n");
        return 2;
    }
    if (out && strcmp(out, "-") == 0 && strcmp(format, "xlsx") == 0) {
        fprintf(stderr, "fluxo export: xlsx cannot go to standard output; give --out FILE\n");
        return 2;
    }
    if (cli_load_runtime(cli))
        return 1;
    char *def = NULL;
    if (!out)
        out = def = fx_asprintf("%s.%s", table, format);
    struct fx_err err;
    fx_err_clear(&err);
    uint64_t rows = 0;
    int rc = fx_export_table(&cli->rt, table, format, out, &o, &rows, &err);
    if (rc != 0) {
        if (err.source[0])
            cli_print_err("export", &err);
        else
            fprintf(stderr, "fluxo export: %s\n", err.reason[0] ? err.reason : fx_strerror(rc));
        free(def);
        return 1;
    }
    fprintf(strcmp(out, "-") == 0 ? stderr : stdout, "exported %llu rows of %s to %s\n",
            (unsigned long long)rows, table, strcmp(out, "-") == 0 ? "standard output" : out);
    free(def);
    return 0;
}
