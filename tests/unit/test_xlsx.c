/* SPDX-License-Identifier: MIT */
/*
 * Spreadsheet readers: the streaming XLSX reader against golden files made by
 * tests/data/xlsx/make_golden.py (openpyxl plus hand-written XML), a 100k-row
 * workbook written at run time by libxlsxwriter, malformed inputs (each with
 * its own error), limits, the real sample files, and the XLS reader's error
 * paths. Instead of chunk splits, every golden file is read with several
 * inflate block sizes and must give the same records.
 */
#include "fluxo/mem.h"
#include "fluxo/reader.h"
#include "fluxo/xlsx.h"
#include "format/xlsx_int.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xlsxwriter.h>

static char *xdata(const char *name)
{
    char *rel = fx_asprintf("xlsx/%s", name);
    char *p = tu_data_path(rel);
    free(rel);
    return p;
}

/* Every record as "row:type=text|..." lines, or "row:BAD col reason"; a fatal
 * error ends with "FATAL code reason". */
static char *dump_opts(const char *path, const struct fx_reader_opts *o, int *fatal)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    struct fx_reader *r;
    struct fx_err err;
    int rc = fx_reader_open(path, o, &r, &err);
    if (rc) {
        fx_buf_printf(&b, "OPEN %d %s", rc, err.reason);
        if (fatal)
            *fatal = rc;
        return fx_buf_take(&b);
    }
    struct fx_record rec;
    long last = 0;
    while ((rc = fx_reader_next(r, &rec, &err)) == 1) {
        assert_true(rec.row > last);
        last = rec.row;
        if (rec.bad) {
            fx_buf_printf(&b, "%ld:BAD %d %s\n", rec.row, rec.err.column, rec.err.reason);
            continue;
        }
        fx_buf_printf(&b, "%ld:", rec.row);
        for (size_t i = 0; i < rec.ncells; i++) {
            assert_int_equal(rec.cells[i].s[rec.cells[i].len], '\0');
            fx_buf_printf(&b, "%s%d=%s", i ? "|" : "", (int)rec.cells[i].type, rec.cells[i].s);
        }
        fx_buf_putc(&b, '\n');
    }
    if (rc < 0)
        fx_buf_printf(&b, "FATAL %d %s", rc, err.reason);
    if (fatal)
        *fatal = rc < 0 ? rc : 0;
    fx_reader_free(r);
    return fx_buf_take(&b);
}

static char *dump(const char *name, const struct fx_reader_opts *o)
{
    char *p = xdata(name);
    char *s = dump_opts(p, o, NULL);
    free(p);
    return s;
}

static void expect_dump(const char *name, const struct fx_reader_opts *o, const char *want)
{
    char *got = dump(name, o);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s:\n--- want\n%s\n--- got\n%s\n", name, want, got);
    assert_string_equal(got, want);
    free(got);
}

/* ------------------------------------------------------------------------ */

static void test_format_double(void **state)
{
    (void)state;
    char buf[FX__XLSX_NUM_MAX];
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {12345678900.0, "12345678900"},
        {1e15, "1000000000000000"},
        {3500.5, "3500.5"},
        {0.1 + 0.2, "0.30000000000000004"},
        {19.99, "19.99"},
        {-1.5, "-1.5"},
        {-0.0, "0"},
        {1e-7, "0.0000001"},
        {12345678900.000002, "12345678900.000002"},
        {123456789012345678.0, "123456789012345680"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = fx__xlsx_format_double(cases[i].v, buf);
        assert_string_equal(buf, cases[i].s);
        assert_int_equal(n, strlen(cases[i].s));
    }
    assert_true(fx__xlsx_format_double(1e308, buf) == 309);
    assert_true(fx__xlsx_format_double(5e-324, buf) > 300);
    assert_null(strchr(buf, 'e'));
    assert_int_equal(fx__xlsx_format_double(1.0 / 0.0, buf), 0);
}

static void test_serial_and_formats(void **state)
{
    (void)state;
    char b[24];
    assert_true(fx__xlsx_serial_iso(59, 0, 0, b) > 0);
    assert_string_equal(b, "1900-02-28");
    assert_int_equal(fx__xlsx_serial_iso(60, 0, 0, b), -1);
    assert_true(fx__xlsx_serial_iso(61, 0, 0, b) > 0);
    assert_string_equal(b, "1900-03-01");
    assert_true(fx__xlsx_serial_iso(45306.573263888889, 0, 0, b) > 0);
    assert_string_equal(b, "2024-01-15T13:45:30");
    assert_true(fx__xlsx_serial_iso(0, 1, 0, b) > 0);
    assert_string_equal(b, "1904-01-01");
    assert_true(fx__xlsx_serial_iso(2958465, 0, 0, b) > 0);
    assert_string_equal(b, "9999-12-31");
    assert_int_equal(fx__xlsx_serial_iso(2958466, 0, 0, b), 0);
    assert_int_equal(fx__xlsx_serial_iso(-1, 0, 0, b), 0);

    assert_int_equal(fx__xlsx_format_kind("dd/mm/yyyy"), 1);
    assert_int_equal(fx__xlsx_format_kind("yyyy-mm-dd hh:mm:ss"), 2);
    assert_int_equal(fx__xlsx_format_kind("[h]:mm:ss"), 2);
    assert_int_equal(fx__xlsx_format_kind("mmm-yy"), 1);
    assert_int_equal(fx__xlsx_format_kind("\"day\" 0.00"), 0);
    assert_int_equal(fx__xlsx_format_kind("[Red]#,##0.00;\\-#,##0.00"), 0);
    assert_int_equal(fx__xlsx_format_kind("[$R$-416] #,##0.00"), 0);
    assert_int_equal(fx__xlsx_format_kind("\\d0"), 0);
    assert_int_equal(fx__xlsx_format_kind("General"), 0);
    assert_int_equal(fx__xlsx_format_kind("0.00E+00"), 0);
    assert_int_equal(fx__xlsx_format_kind("h:mm AM/PM"), 2);
}

static void test_basic(void **state)
{
    (void)state;
    expect_dump("basic.xlsx", NULL,
                "1:1=nome|1=cpf|1=preco_txt|1=valor|1=ativo|1=erro|1=data|1=data_hora|1=data_br|"
                "1=nota\n"
                "2:1=Ana|2=12345678900|1=3500.00|2=3500.5|3=true|5=#N/A|4=2024-01-15|"
                "4=2024-01-15T13:45:30|4=2024-02-29|2=19.99\n"
                "3:1=Bruno|2=1000000000000000|1=19.99|2=0.3|3=false|5=#DIV/0!\n"
                "5:1=x|0=|0=|2=7\n"
                "6:0=|1=só B\n");
}

static void test_handmade(void **state)
{
    (void)state;
    expect_dump("handmade.xlsx", NULL,
                "1:1=plain|1=inline|1=Rich text|1=plain!|2=2|3=true|5=#N/A\n"
                "2:4=1900-02-28|4=1900-03-01|4=1900-01-01|4=2024-01-15|4=1900-01-01T12:00:00|"
                "2=42|2=1.5|4=2024-01-15T12:00:00|4=2024-01-15T00:00:00|4=2024-01-16|"
                "4=2024-01-15T06:00:00\n"
                "3:2=1|1=b|2=12345678900.000002|2=0.0000001|2=3500.50|2=0.30000000000000004|"
                "2=1000000000000000\n"
                "4:BAD 2 cell B4: date serial 60 is 1900-02-29, a day that does not exist "
                "(Excel's 1900 leap-year bug)\n"
                "7:0=|0=|2=3\n"
                "9:1=tab\tx|1=abcd\n");
}

static void test_date1904(void **state)
{
    (void)state;
    expect_dump("date1904.xlsx", NULL,
                "1:1=data|1=data_hora\n2:4=2024-01-15|4=2000-01-01T12:00:00\n");
}

static void test_sheets(void **state)
{
    (void)state;
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.sheet = "Segunda";
    expect_dump("basic.xlsx", &o, "1:1=segunda|2=2\n");
    o.sheet = "segunda"; /* Excel sheet names are case-insensitive */
    expect_dump("basic.xlsx", &o, "1:1=segunda|2=2\n");
    o.sheet = NULL;
    o.sheet_index = 2;
    expect_dump("basic.xlsx", &o, "1:1=segunda|2=2\n");
    o.sheet_index = 3; /* empty sheet: no records */
    expect_dump("basic.xlsx", &o, "");
    o.sheet_index = 5;
    expect_dump("basic.xlsx", &o, "OPEN -7 sheet_index 5 out of range: the workbook has 4 sheets");
    o.sheet_index = 0;
    o.sheet = "Nope";
    expect_dump("basic.xlsx", &o,
                "OPEN -7 no sheet named \"Nope\" (sheets: \"Vendas\", \"Segunda\", \"Vazia\", "
                "\"Grande\")");
}

static void test_huge_cell(void **state)
{
    (void)state;
    expect_dump("huge.xlsx", NULL,
                "1:1=ok\n2:BAD 1 cell A2 longer than 65536 bytes (max_field_bytes)\n3:1=fim\n");
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.sheet = "Grande";
    o.max_field_bytes = 16384;
    expect_dump("basic.xlsx", &o,
                "1:1=ok\n2:BAD 1 cell A2 longer than 16384 bytes (max_field_bytes)\n3:1=fim\n");
}

static void test_row_limits(void **state)
{
    (void)state;
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.max_fields = 6;
    char *s = dump("handmade.xlsx", &o);
    assert_non_null(strstr(s, "1:BAD 7 cell G1: more than 6 cells (max_fields)\n"));
    assert_non_null(strstr(s, "7:0=|0=|2=3\n"));
    free(s);
    fx_reader_opts_init(&o);
    o.max_line_bytes = 20;
    s = dump("handmade.xlsx", &o);
    assert_non_null(strstr(s, "1:BAD 4 row 1 longer than 20 bytes (max_line_bytes)\n"));
    assert_non_null(strstr(s, "9:1=tab\tx|1=abcd\n"));
    free(s);
}

static void test_workbook_limits(void **state)
{
    (void)state;
    struct fx__xlsx_limits saved = fx__xlsx_limits;
    fx__xlsx_limits.max_sst_count = 2;
    expect_dump("handmade.xlsx", NULL,
                "OPEN -4 xl/sharedStrings.xml: more than 2 shared strings (limit)");
    fx__xlsx_limits = saved;
    fx__xlsx_limits.max_sst_bytes = 10;
    expect_dump("handmade.xlsx", NULL,
                "OPEN -4 xl/sharedStrings.xml: shared strings exceed 10 bytes (limit)");
    fx__xlsx_limits = saved;
    fx__xlsx_limits.max_total = 2500;
    char *s = dump("handmade.xlsx", NULL);
    fx__xlsx_limits = saved;
    if (!strstr(s, "workbook parts exceed 2500 bytes uncompressed (limit)"))
        fprintf(stderr, "%s\n", s);
    assert_non_null(strstr(s, "workbook parts exceed 2500 bytes uncompressed (limit)"));
    free(s);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *want;
    } cases[] = {
        {"truncated.xlsx", "OPEN -5 not a valid ZIP archive (truncated or corrupt)"},
        {"bomb.xlsx", "OPEN -4 xl/worksheets/sheet1.xml: compression ratio over 200:1"},
        {"noworkbook.xlsx", "OPEN -5 not an XLSX workbook (no xl/workbook.xml)"},
        {"random.xlsx", "OPEN -5 file is named .xlsx but is not a spreadsheet"},
        {"notxls.xls", "OPEN -5 not a readable XLS workbook: OLE file without an Excel "
                       "workbook stream"},
        {"encrypted.xlsx", "OPEN -6 encrypted workbook"},
        {"zipcrypto.xlsx", "OPEN -6 encrypted workbook: ZIP entry xl/workbook.xml is encrypted"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = dump(cases[i].file, NULL);
        if (strncmp(s, cases[i].want, strlen(cases[i].want)) != 0)
            fprintf(stderr, "%s: got %s\n", cases[i].file, s);
        assert_true(strncmp(s, cases[i].want, strlen(cases[i].want)) == 0);
        free(s);
    }
    /* bad XML: the rows before it, then a fatal error naming the part and line */
    char *s = dump("badxml.xlsx", NULL);
    assert_non_null(strstr(s, "3:2=1|1=b|"));
    assert_non_null(
        strstr(s, "FATAL -5 xl/worksheets/sheet1.xml: malformed XML at line 2: mismatched tag"));
    free(s);
    /* the error names the file */
    char *p = xdata("noworkbook.xlsx");
    struct fx_reader *r;
    struct fx_err err;
    assert_int_equal(fx_xlsx_reader_open(p, NULL, &r, &err), FX_EPARSE);
    assert_null(r);
    assert_string_equal(err.source, p);
    free(p);
    /* the XLSX opener on a non-ZIP and the XLS opener on a non-OLE */
    p = xdata("random.xlsx");
    assert_int_equal(fx_xlsx_reader_open(p, NULL, &r, &err), FX_EPARSE);
    assert_non_null(strstr(err.reason, "not a valid ZIP archive"));
    assert_int_equal(fx_xls_reader_open(p, NULL, &r, &err), FX_EPARSE);
    assert_non_null(strstr(err.reason, "not a readable XLS workbook"));
    free(p);
}

/* Different inflate block sizes give the same records. */
static void test_block_sizes(void **state)
{
    (void)state;
    static const char *const files[] = {"basic.xlsx", "handmade.xlsx", "date1904.xlsx", "huge.xlsx",
                                        "badxml.xlsx"};
    static const size_t blocks[] = {1, 2, 7, 100, 4093};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
        char *want = dump(files[f], NULL);
        for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
            fx__xlsx_block_size = blocks[b];
            char *got = dump(files[f], NULL);
            if (strcmp(want, got) != 0)
                fprintf(stderr, "%s with blocks of %zu:\n%s\nvs\n%s\n", files[f], blocks[b], got,
                        want);
            assert_string_equal(want, got);
            free(got);
        }
        free(want);
    }
    fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
}

/* 100k rows written by libxlsxwriter in constant-memory mode read back exactly. */
static void test_xlsxwriter_roundtrip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *path = fx_asprintf("%s/big.xlsx", dir);
    lxw_workbook_options wo = {.constant_memory = LXW_TRUE, .tmpdir = dir};
    lxw_workbook *wb = workbook_new_opt(path, &wo);
    assert_non_null(wb);
    lxw_worksheet *ws = workbook_add_worksheet(wb, "Dados");
    lxw_format *df = workbook_add_format(wb);
    format_set_num_format(df, "yyyy-mm-dd");
    enum { ROWS = 100000 };
    worksheet_write_string(ws, 0, 0, "id", NULL);
    worksheet_write_string(ws, 0, 1, "nome", NULL);
    worksheet_write_string(ws, 0, 2, "valor", NULL);
    worksheet_write_string(ws, 0, 3, "data", NULL);
    worksheet_write_string(ws, 0, 4, "ok", NULL);
    worksheet_write_string(ws, 0, 5, "cpf", NULL);
    for (int i = 1; i <= ROWS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Cliente %d & <Ltda>", i);
        worksheet_write_number(ws, (lxw_row_t)i, 0, i, NULL);
        worksheet_write_string(ws, (lxw_row_t)i, 1, name, NULL);
        worksheet_write_number(ws, (lxw_row_t)i, 2, (double)(i % 100000) / 100.0, NULL);
        lxw_datetime dt = {2020 + i % 5, 1 + i % 12, 1 + i % 28, 0, 0, 0};
        worksheet_write_datetime(ws, (lxw_row_t)i, 3, &dt, df);
        worksheet_write_boolean(ws, (lxw_row_t)i, 4, i % 2, NULL);
        if (i % 10 != 0) /* sparse: every tenth row has no cpf */
            worksheet_write_number(ws, (lxw_row_t)i, 5, 10000000000.0 + i, NULL);
    }
    assert_int_equal(workbook_close(wb), LXW_NO_ERROR);

    struct fx_reader *r;
    struct fx_err err;
    int rc = fx_reader_open(path, NULL, &r, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.reason);
    assert_int_equal(rc, 0);
    assert_string_equal(fx_reader_format(r), "xlsx");
    struct fx_record rec;
    assert_int_equal(fx_reader_next(r, &rec, &err), 1);
    assert_int_equal(rec.ncells, 6);
    assert_string_equal(rec.cells[5].s, "cpf");
    for (int i = 1; i <= ROWS; i++) {
        assert_int_equal(fx_reader_next(r, &rec, &err), 1);
        assert_int_equal(rec.row, i + 1);
        assert_false(rec.bad);
        char want[64], num[FX__XLSX_NUM_MAX];
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(rec.cells[0].s, want);
        assert_int_equal(rec.cells[0].type, FX_CELL_NUMBER);
        snprintf(want, sizeof(want), "Cliente %d & <Ltda>", i);
        assert_string_equal(rec.cells[1].s, want);
        assert_int_equal(rec.cells[1].type, FX_CELL_STRING);
        fx__xlsx_format_double((double)(i % 100000) / 100.0, num);
        assert_string_equal(rec.cells[2].s, num);
        snprintf(want, sizeof(want), "%04d-%02d-%02d", 2020 + i % 5, 1 + i % 12, 1 + i % 28);
        assert_string_equal(rec.cells[3].s, want);
        assert_int_equal(rec.cells[3].type, FX_CELL_DATE);
        assert_string_equal(rec.cells[4].s, i % 2 ? "true" : "false");
        assert_int_equal(rec.cells[4].type, FX_CELL_BOOL);
        if (i % 10 != 0) {
            assert_int_equal(rec.ncells, 6);
            snprintf(want, sizeof(want), "%lld", 10000000000LL + i);
            assert_string_equal(rec.cells[5].s, want);
        } else {
            assert_int_equal(rec.ncells, 5);
        }
    }
    assert_int_equal(fx_reader_next(r, &rec, &err), 0);
    assert_int_equal(fx_reader_next(r, &rec, &err), 0);
    long long done, total;
    fx_reader_progress(r, &done, &total);
    assert_true(total > 0);
    assert_true(done == total);
    fx_reader_free(r);
    free(path);
    tu_rmrf(dir);
    free(dir);
}

static void test_samples(void **state)
{
    (void)state;
    char *p = tu_data_path("vendas_20250727_185237.xlsx");
    char *s = dump_opts(p, NULL, NULL);
    free(p);
    assert_true(strncmp(s,
                        "1:1=nome|1=email|1=telefone|1=endereco_completo|1=cpf_cnpj|1=produto|"
                        "1=quantidade|1=valor_unitario|1=data_hora|1=forma_pagamento\n"
                        "2:1=João Silva|1=joao@email.com|1=1111-1111|1=Rua A, 123|2=12345678900|"
                        "1=Notebook|2=1|1=3500.00|4=2025-07-27T14:00:00|1=Cartão\n"
                        "3:1=João Silva|1=joao@email.com|1=1111-1111|1=Rua A, 123|2=12345678900|"
                        "1=Mouse|2=2|1=50.00|4=2025-07-27T14:05:00|1=Cartão\n"
                        "4:1=Maria Lima|1=maria@email.com|1=2222-2222|1=Av. B, 456|2=98765432100|"
                        "1=Teclado|2=1|1=120.00|4=2025-07-27T15:00:00|1=PIX\n",
                        strlen("1:1=nome|1=email|1=telefone|1=endereco_completo|1=cpf_cnpj|"
                               "1=produto|1=quantidade|1=valor_unitario|1=data_hora|1="
                               "forma_pagamento\n")) == 0);
    assert_non_null(strstr(s, "2:1=João Silva|1=joao@email.com|1=1111-1111|1=Rua A, 123|"
                              "2=12345678900|1=Notebook|2=1|1=3500.00|4=2025-07-27T14:00:00|"
                              "1=Cartão\n"));
    assert_non_null(strstr(s, "4:1=Maria Lima|1=maria@email.com|1=2222-2222|1=Av. B, 456|"
                              "2=98765432100|1=Teclado|2=1|1=120.00|4=2025-07-27T15:00:00|"
                              "1=PIX\n"));
    assert_null(strstr(s, "BAD"));
    assert_null(strstr(s, "FATAL"));
    free(s);

    p = tu_data_path("vendas_20250727_200024.xlsx");
    s = dump_opts(p, NULL, NULL);
    free(p);
    assert_non_null(strstr(s, "1:1=nome|1=email|1=telefone|1=endereco_completo|1=cpf_cnpj|"
                              "1=produto|1=quantidade|1=valor_unitario|1=forma_pagamento\n"));
    assert_non_null(strstr(s, "2:1=Thiago Povoa|1=thiago@email.com|1=1111-1111|1=Rua A, 123|"
                              "2=12345678980|1=Notebook|2=1|1=3500.00|1=Cartão\n"));
    assert_null(strstr(s, "BAD"));
    assert_null(strstr(s, "FATAL"));
    free(s);
}

/* The sample workbooks saved as legacy .xls by LibreOffice (tests/data/xlsx/
 * vendas_*.xls, made once with `soffice --headless --convert-to xls`) read
 * exactly as the .xlsx originals through the XLS backend (libfreexl). */
static void test_xls_matches_xlsx(void **state)
{
    (void)state;
    static const char *const names[] = {"vendas_20250727_185237", "vendas_20250727_200024"};
    for (size_t i = 0; i < 2; i++) {
        char *xname = fx_asprintf("%s.xlsx", names[i]);
        char *lname = fx_asprintf("xlsx/%s.xls", names[i]);
        char *xp = tu_data_path(xname), *lp = tu_data_path(lname);
        char *a = dump_opts(xp, NULL, NULL), *b = dump_opts(lp, NULL, NULL);
        if (strcmp(a, b) != 0)
            fprintf(stderr, "--- xlsx\n%s\n--- xls\n%s\n", a, b);
        assert_string_equal(a, b);
        free(a);
        free(b);
        free(xp);
        free(lp);
        free(xname);
        free(lname);
    }
}

static void test_dispatch_csv_still_csv(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *p = tu_write_file(dir, "a.csv", "a,b\n1,2\n", 8);
    struct fx_reader *r;
    struct fx_err err;
    assert_int_equal(fx_reader_open(p, NULL, &r, &err), 0);
    assert_string_equal(fx_reader_format(r), "csv");
    fx_reader_free(r);
    free(p);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_serial_and_formats),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_handmade),
        cmocka_unit_test(test_date1904),
        cmocka_unit_test(test_sheets),
        cmocka_unit_test(test_huge_cell),
        cmocka_unit_test(test_row_limits),
        cmocka_unit_test(test_workbook_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_block_sizes),
        cmocka_unit_test(test_xlsxwriter_roundtrip),
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_xls_matches_xlsx),
        cmocka_unit_test(test_dispatch_csv_still_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
