/* SPDX-License-Identifier: MIT */
/*
 * Tests of the tabular writers. CSV: byte order mark, delimiters, RFC 4180
 * quoting, CSV-injection protection (text neutralised, numbers in numeric
 * columns untouched), money from cents with a decimal point or comma, CRLF,
 * errors. XLSX: files read back by openpyxl (Debian's /usr/bin/python3; the
 * python3 first on PATH may lack it) to check cell types and number formats,
 * the frozen header, the autofilter, the sheet roll-over, odd text, and that
 * memory stays flat over 100k rows. Also the export headers.
 */
#include "testutil.h"

#include "fluxo/export.h"
#include "fluxo/mem.h"
#include "fluxo/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PY "/usr/bin/python3"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WRITER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(WRITER_ASAN)
/* ASan keeps freed blocks in a quarantine (256 MiB by default), which would
 * look like growth in the flat-memory test: keep it small in this program. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=1";
}
#endif

static const struct fx_col csv_cols[] = {
    {"nome", "Nome", FX_COL_TEXT},
    {"quantidade", "Quantidade", FX_COL_INT},
    {"valor_centavos", "Valor (R$)", FX_COL_MONEY},
    {"ativo", "Ativo", FX_COL_BOOL},
};
#define NCSV (sizeof(csv_cols) / sizeof(csv_cols[0]))

/* Write rows (NCSV values each) to a CSV file with o; returns the file's bytes. */
static char *csv_write(const struct fx_writer_opts *o, const char *const *rows, size_t nrows,
                       size_t *len)
{
    char *dir = tu_tmpdir();
    char *path = fx_asprintf("%s/out.csv", dir);
    struct fx_writer *w;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_writer_open("csv", path, csv_cols, NCSV, o, &w, &err), 0);
    for (size_t r = 0; r < nrows; r++)
        assert_int_equal(fx_writer_row(w, rows + r * NCSV), 0);
    assert_int_equal(fx_writer_rows(w), nrows);
    assert_int_equal(fx_writer_close(w, &err), 0);
    char *data = tu_read_file(path, len);
    assert_non_null(data);
    tu_rmrf(dir);
    free(path);
    free(dir);
    return data;
}

static void test_csv_defaults(void **state)
{
    (void)state;
    const char *rows[] = {
        "Ana; Maria", "2",    "123456", "1",           /* delimiter inside: quoted */
        "diz \"oi\"", "10",   "0",      "0",           /* quotes doubled */
        "linha\num",  NULL,   "-5",     NULL,          /* newline quoted, NULL empty */
        "",           "-300", "-1250",  "verdadeiro?", /* negatives as numbers */
    };
    size_t len;
    char *out = csv_write(NULL, rows, 4, &len);
    const char *want = "\xef\xbb\xbfNome;Quantidade;Valor (R$);Ativo\n"
                       "\"Ana; Maria\";2;1234.56;Sim\n"
                       "\"diz \"\"oi\"\"\";10;0.00;N\xc3\xa3o\n"
                       "\"linha\num\";;-0.05;\n"
                       ";-300;-12.50;verdadeiro?\n";
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_csv_injection(void **state)
{
    (void)state;
    const char *rows[] = {
        "=SUM(A1:A9)", "-3", "-1250", NULL, /* text neutralised, numbers kept */
        "+5511999",    "7",  "=1+1",  NULL, /* a formula in a money column is text */
        "-abc",        "@x", "100",   NULL, /* an int column with text is text */
        "@SUM(1)",     "1",  "1",     NULL, /**/
        "\tcmd",       "1",  "1",     NULL, /* tab: neutralised, not quoted */
        "\rcmd",       "1",  "1",     NULL, /* CR: neutralised and quoted */
        "a=b",         "1",  "1",     NULL, /* only the first character counts */
    };
    size_t len;
    char *out = csv_write(NULL, rows, 7, &len);
    const char *want = "\xef\xbb\xbfNome;Quantidade;Valor (R$);Ativo\n"
                       "'=SUM(A1:A9);-3;-12.50;\n"
                       "'+5511999;7;'=1+1;\n"
                       "'-abc;'@x;1.00;\n"
                       "'@SUM(1);1;0.01;\n"
                       "'\tcmd;1;0.01;\n"
                       "\"'\rcmd\";1;0.01;\n"
                       "a=b;1;0.01;\n";
    assert_string_equal(out, want);
    free(out);
}

static void test_csv_decimal_comma_crlf(void **state)
{
    (void)state;
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    o.csv_decimal_comma = 1;
    o.csv_crlf = 1;
    o.csv_bom = 0;
    const char *rows[] = {
        "x", "1", "123456", "sim", /**/
        "y", "2", "0",      "n",   /**/
        "z", "3", "-99",    "1",   /**/
        "w", "4", "-100",   "0",   /**/
    };
    size_t len;
    char *out = csv_write(&o, rows, 4, &len);
    assert_string_equal(out, "Nome;Quantidade;Valor (R$);Ativo\r\n"
                             "x;1;1234,56;Sim\r\n"
                             "y;2;0,00;N\xc3\xa3o\r\n"
                             "z;3;-0,99;Sim\r\n"
                             "w;4;-1,00;N\xc3\xa3o\r\n");
    free(out);
}

static void test_csv_comma_delimiter(void **state)
{
    (void)state;
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    o.csv_delimiter = ',';
    o.csv_bom = 0;
    const char *rows[] = {"Silva, Ana", "1", "150", NULL, "a;b", "2", "1", NULL};
    size_t len;
    char *out = csv_write(&o, rows, 2, &len);
    assert_string_equal(out, "Nome,Quantidade,Valor (R$),Ativo\n"
                             "\"Silva, Ana\",1,1.50,\n"
                             "a;b,2,0.01,\n");
    free(out);
}

static void test_csv_decimal_column(void **state)
{
    (void)state;
    const struct fx_col cols[] = {{"peso", NULL, FX_COL_DECIMAL}, {"d", "Data", FX_COL_DATE}};
    char *dir = tu_tmpdir();
    char *path = fx_asprintf("%s/d.csv", dir);
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    o.csv_decimal_comma = 1;
    o.csv_bom = 0;
    struct fx_writer *w;
    struct fx_err err;
    assert_int_equal(fx_writer_open("csv", path, cols, 2, &o, &w, &err), 0);
    const char *r1[] = {"-1.250", "2024-02-29"}, *r2[] = {"12", NULL}, *r3[] = {"-x", "-"};
    assert_int_equal(fx_writer_row(w, r1), 0);
    assert_int_equal(fx_writer_row(w, r2), 0);
    assert_int_equal(fx_writer_row(w, r3), 0);
    assert_int_equal(fx_writer_close(w, &err), 0);
    char *out = tu_read_file(path, NULL);
    assert_string_equal(out, "peso;Data\n-1,250;2024-02-29\n12;\n'-x;'-\n");
    free(out);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct fx_writer *w = (struct fx_writer *)1;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_writer_open("ods", "/tmp/x.ods", csv_cols, NCSV, NULL, &w, &err),
                     FX_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err.reason, "csv or xlsx"));
    assert_int_equal(fx_writer_open("xlsx", "-", csv_cols, NCSV, NULL, &w, &err), FX_EINVAL);
    assert_int_equal(fx_writer_open("csv", "/tmp/x.csv", csv_cols, 0, NULL, &w, &err), FX_EINVAL);
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    o.csv_delimiter = ',';
    o.csv_decimal_comma = 1;
    assert_int_equal(fx_writer_open("csv", "/tmp/x.csv", csv_cols, NCSV, &o, &w, &err), FX_EINVAL);
    fx_err_clear(&err);
    assert_int_equal(
        fx_writer_open("csv", "/nonexistent-dir/x.csv", csv_cols, NCSV, NULL, &w, &err), FX_EIO);
    assert_non_null(strstr(err.reason, "/nonexistent-dir/x.csv"));
    assert_int_equal(
        fx_writer_open("xlsx", "/nonexistent-dir/x.xlsx", csv_cols, NCSV, NULL, &w, &err), FX_EIO);
    o.tz = "Mars/Olympus_Mons";
    o.csv_delimiter = ';';
    assert_int_equal(fx_writer_open("xlsx", "/tmp/x.xlsx", csv_cols, NCSV, &o, &w, &err),
                     FX_EINVAL);
    assert_int_equal(fx_writer_close(NULL, &err), 0);

    /* a full disk is reported, at the latest by close */
    struct stat sb;
    if (stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode)) {
        assert_int_equal(fx_writer_open("csv", "/dev/full", csv_cols, NCSV, NULL, &w, &err), 0);
        const char *row[] = {"a", "1", "1", "1"};
        int rc = 0;
        for (int i = 0; i < 20000 && rc == 0; i++)
            rc = fx_writer_row(w, row);
        fx_err_clear(&err);
        assert_int_equal(fx_writer_close(w, &err), FX_EIO);
        assert_non_null(strstr(err.reason, "/dev/full"));
    }
}

/* ------------------------------------------------------------ xlsx */

/* Dump every sheet: "sheet NAME freeze F filter R rows N", then per cell
 * "CELL|type|value|format" (type: s string, n number, d date, b bool). */
static const char dump_py[] = "import sys, openpyxl, datetime\n"
                              "wb = openpyxl.load_workbook(sys.argv[1])\n"
                              "for ws in wb.worksheets:\n"
                              "    print('sheet', ws.title, 'freeze', ws.freeze_panes,\n"
                              "          'filter', ws.auto_filter.ref, 'rows', ws.max_row)\n"
                              "    if len(sys.argv) > 2: continue\n"
                              "    for row in ws.iter_rows():\n"
                              "        for c in row:\n"
                              "            if c.value is None: continue\n"
                              "            v = c.value\n"
                              "            if isinstance(v, datetime.datetime):\n"
                              "                v = v.isoformat()\n"
                              "            print('%s|%s|%s|%s|%s' % (c.coordinate, c.data_type,\n"
                              "                  v, c.number_format, 'B' if c.font.b else ''))\n";

static char *py_dump(const char *dir, const char *xlsx, int sheets_only)
{
    char *script = tu_write_file(dir, "dump.py", dump_py, strlen(dump_py));
    char *cmd = fx_asprintf(PY " %s %s%s 2>&1", script, xlsx, sheets_only ? " sheets" : "");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct fx_buf b;
    fx_buf_init(&b, 0);
    char line[4096];
    while (fgets(line, sizeof(line), p))
        fx_buf_puts(&b, line);
    int st = pclose(p);
    if (st != 0)
        fprintf(stderr, "python said:\n%s\n", b.data ? b.data : "");
    assert_int_equal(st, 0);
    free(cmd);
    free(script);
    return fx_buf_take(&b);
}

static void expect_line(const char *dump, const char *line)
{
    char *l = fx_asprintf("%s\n", line);
    if (!strstr(dump, l)) {
        fprintf(stderr, "missing line: %s\nin:\n%s\n", line, dump);
        fail();
    }
    free(l);
}

static int have_openpyxl(void)
{
    return system(PY " -c 'import openpyxl' >/dev/null 2>&1") == 0;
}

static void test_xlsx_types(void **state)
{
    (void)state;
    if (!have_openpyxl()) {
        skip();
        return;
    }
    const struct fx_col cols[] = {
        {"nome", "Nome", FX_COL_TEXT},         {"qtd", "Quantidade", FX_COL_INT},
        {"valor", "Valor (R$)", FX_COL_MONEY}, {"dia", "Dia", FX_COL_DATE},
        {"quando", "Quando", FX_COL_DATETIME}, {"ativo", "Ativo", FX_COL_BOOL},
        {"peso", "Peso", FX_COL_DECIMAL},      {"doc", "CPF/CNPJ", FX_COL_TEXT},
    };
    char *dir = tu_tmpdir();
    char *path = fx_asprintf("%s/t.xlsx", dir);
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    o.sheet_name = "compras";
    o.tz = "America/Sao_Paulo";
    struct fx_writer *w;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_writer_open("xlsx", path, cols, 8, &o, &w, &err), 0);
    const char *r1[] = {"=SUM(A1)", "3",   "123456",     "2024-02-29", "2024-01-01T23:53:19Z",
                        "1",        "1.5", "01234567890"};
    const char *r2[] = {"Jo\xc3\xa3o", "-2", "-5", "abc", "2024-07-10T12:00:00.250Z",
                        "false",       NULL, ""};
    const char *r3[] = {"ctl\x01 bad\xff utf8", NULL, "0", NULL, "garbage", "talvez", "x", NULL};
    assert_int_equal(fx_writer_row(w, r1), 0);
    assert_int_equal(fx_writer_row(w, r2), 0);
    assert_int_equal(fx_writer_row(w, r3), 0);
    assert_int_equal(fx_writer_close(w, &err), 0);

    char *d = py_dump(dir, path, 0);
    expect_line(d, "sheet compras freeze A2 filter A1:H4 rows 4");
    expect_line(d, "A1|s|Nome|General|B");
    expect_line(d, "C1|s|Valor (R$)|General|B");
    expect_line(d, "A2|s|=SUM(A1)|General|"); /* a string cell, never a formula */
    expect_line(d, "B2|n|3|General|");
    expect_line(d, "C2|n|1234.56|[$R$-416] #,##0.00|");
    expect_line(d, "D2|d|2024-02-29T00:00:00|dd/mm/yyyy|");
    expect_line(d, "E2|d|2024-01-01T20:53:19|dd/mm/yyyy hh:mm:ss|"); /* UTC-3 */
    expect_line(d, "F2|b|True|General|");
    expect_line(d, "G2|n|1.5|General|");
    expect_line(d, "H2|s|01234567890|General|"); /* leading zero kept */
    expect_line(d, "A3|s|Jo\xc3\xa3o|General|");
    expect_line(d, "B3|n|-2|General|");
    expect_line(d, "C3|n|-0.05|[$R$-416] #,##0.00|");
    expect_line(d, "D3|s|abc|General|"); /* not a date: kept as text */
    expect_line(d, "E3|d|2024-07-10T09:00:00|dd/mm/yyyy hh:mm:ss|");
    expect_line(d, "F3|b|False|General|");
    expect_line(d, "C4|n|0|[$R$-416] #,##0.00|");
    expect_line(d, "E4|s|garbage|General|");
    expect_line(d, "F4|s|talvez|General|");
    expect_line(d, "G4|s|x|General|");
    assert_non_null(strstr(d, "A4|s|ctl"));
    assert_non_null(strstr(d, " bad? utf8|General|"));
    assert_null(strstr(d, "H3|"));
    free(d);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static void test_xlsx_sheet_rollover(void **state)
{
    (void)state;
    if (!have_openpyxl()) {
        skip();
        return;
    }
    char *dir = tu_tmpdir();
    char *path = fx_asprintf("%s/r.xlsx", dir);
    struct fx_writer_opts o;
    fx_writer_opts_init(&o);
    o.sheet_rows = 3;
    o.sheet_name = "vendas: 2024/[jan] a name longer than 31";
    struct fx_writer *w;
    struct fx_err err;
    assert_int_equal(fx_writer_open("xlsx", path, csv_cols, NCSV, &o, &w, &err), 0);
    for (int i = 0; i < 7; i++) {
        char q[16];
        snprintf(q, sizeof(q), "%d", i);
        const char *row[] = {"n", q, "100", "1"};
        assert_int_equal(fx_writer_row(w, row), 0);
    }
    assert_int_equal(fx_writer_close(w, &err), 0);
    char *d = py_dump(dir, path, 0);
    expect_line(d, "sheet vendas_ 2024__jan_ a name longe freeze A2 filter A1:D4 rows 4");
    expect_line(d, "sheet vendas_ 2024__jan_ a name lon 2 freeze A2 filter A1:D4 rows 4");
    expect_line(d, "sheet vendas_ 2024__jan_ a name lon 3 freeze A2 filter A1:D2 rows 2");
    assert_int_equal(strstr(d, "A1|s|Nome|General|B") != NULL, 1);
    free(d);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* 100k rows: memory must not follow the row count (constant_memory mode). */
static void test_xlsx_100k_flat_memory(void **state)
{
    (void)state;
    const struct fx_col cols[] = {
        {"id", "ID", FX_COL_INT},         {"nome", "Nome", FX_COL_TEXT},
        {"valor", "Valor", FX_COL_MONEY}, {"quando", "Quando", FX_COL_DATETIME},
        {"dia", "Dia", FX_COL_DATE},      {"email", "E-mail", FX_COL_TEXT},
    };
    char *dir = tu_tmpdir();
    char *path = fx_asprintf("%s/big.xlsx", dir);
    struct fx_writer *w;
    struct fx_err err;
    assert_int_equal(fx_writer_open("xlsx", path, cols, 6, NULL, &w, &err), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rss10k = 0;
    for (int i = 0; i < 100000; i++) {
        char id[16], nome[48], valor[16], email[64];
        snprintf(id, sizeof(id), "%d", i + 1);
        snprintf(nome, sizeof(nome), "Cliente n\xc3\xbamero %d da Silva", i);
        snprintf(valor, sizeof(valor), "%d", (i * 37) % 100000);
        snprintf(email, sizeof(email), "cliente%d@exemplo.com.br", i);
        const char *row[] = {id, nome, valor, "2024-05-06T07:08:09Z", "2024-05-06", email};
        assert_int_equal(fx_writer_row(w, row), 0);
        if (i == 10000)
            rss10k = rss_kb();
    }
    long rss100k = rss_kb();
    assert_int_equal(fx_writer_close(w, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    fprintf(stderr,
            "xlsx 100k rows x 6 cols: %.2f s (%.0f rows/s), RSS %ld KiB at 10k rows, %ld KiB "
            "at 100k, file %lld KiB\n",
            secs, 100000 / secs, rss10k, rss100k, (long long)sb.st_size / 1024);
    /* flat: 90k more rows may not cost more than a few MiB (no per-row memory) */
    assert_true(rss100k - rss10k < 8 * 1024);
    if (have_openpyxl()) {
        char *d = py_dump(dir, path, 1);
        expect_line(d, "sheet Dados freeze A2 filter A1:F100001 rows 100001");
        free(d);
    }
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static void test_export_headers(void **state)
{
    (void)state;
    char h[96];
    assert_string_equal(fx_export_header("valor_unitario_centavos", h, sizeof(h)),
                        "Valor unit\xc3\xa1rio (R$)");
    assert_string_equal(fx_export_header("cpf_cnpj", h, sizeof(h)), "CPF/CNPJ");
    assert_string_equal(fx_export_header("preco_custo_centavos", h, sizeof(h)), "Preco custo (R$)");
    assert_string_equal(fx_export_header("codigo_interno", h, sizeof(h)), "Codigo interno");
    assert_string_equal(fx_export_header("x", h, 1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_defaults),
        cmocka_unit_test(test_csv_injection),
        cmocka_unit_test(test_csv_decimal_comma_crlf),
        cmocka_unit_test(test_csv_comma_delimiter),
        cmocka_unit_test(test_csv_decimal_column),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_xlsx_types),
        cmocka_unit_test(test_xlsx_sheet_rollover),
        cmocka_unit_test(test_xlsx_100k_flat_memory),
        cmocka_unit_test(test_export_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
