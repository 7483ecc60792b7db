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
#include <zip.h>

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

/* ------------------------------------------------------------------------ */
/* Chunked parsing and spilled shared strings (large-sheet paths)            */

static void book_add(zip_t *z, const char *name, const void *data, size_t len)
{
    zip_source_t *src = zip_source_buffer(z, data, len, 0);
    assert_non_null(src);
    assert_true(zip_file_add(z, name, src, ZIP_FL_OVERWRITE) >= 0);
}

/* A one-sheet workbook around sheet (and sst when not NULL) at dir/name. */
static char *make_book(const char *dir, const char *name, const char *sheet, size_t sheet_len,
                       const char *sst)
{
    static const char wb[] =
        "<workbook xmlns:r=\"r\"><workbookPr/><sheets><sheet name=\"S\" sheetId=\"1\" "
        "r:id=\"rId1\"/></sheets></workbook>";
    static const char rels[] = "<Relationships><Relationship Id=\"rId1\" "
                               "Type=\"x/worksheet\" Target=\"worksheets/sheet1.xml\"/>"
                               "</Relationships>";
    static const char styles[] = "<styleSheet><cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"14\"/>"
                                 "</cellXfs></styleSheet>";
    char *path = fx_asprintf("%s/%s", dir, name);
    int zerr;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(z);
    book_add(z, "xl/workbook.xml", wb, sizeof(wb) - 1);
    book_add(z, "xl/_rels/workbook.xml.rels", rels, sizeof(rels) - 1);
    book_add(z, "xl/styles.xml", styles, sizeof(styles) - 1);
    if (sst)
        book_add(z, "xl/sharedStrings.xml", sst, strlen(sst));
    book_add(z, "xl/worksheets/sheet1.xml", sheet, sheet_len);
    assert_int_equal(zip_close(z), 0);
    return path;
}

/* The records of path with the default block (a serial parse for these small
 * sheets) and with blocks small enough to cut the sheet into many chunks. */
static char *same_with_chunks(const char *path)
{
    static const size_t blocks[] = {1, 5, 16, 64, 300};
    fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
    char *want = dump_opts(path, NULL, NULL);
    for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
        fx__xlsx_block_size = blocks[b];
        char *got = dump_opts(path, NULL, NULL);
        if (strcmp(want, got) != 0)
            fprintf(stderr, "%s with blocks of %zu:\n%s\nvs serially\n%s\n", path, blocks[b], got,
                    want);
        assert_string_equal(want, got);
        free(got);
    }
    fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
    return want;
}

enum quirk {
    Q_NONE,
    Q_CDATA,     /* "</row>" inside a CDATA section of a cell */
    Q_COMMENT,   /* "</row>" inside comments between and inside rows */
    Q_PI,        /* "</row>" inside a processing instruction */
    Q_NO_R,      /* rows 30.. without an r attribute */
    Q_ORDER,     /* row 25 numbered below row 24: fatal */
    Q_MISMATCH,  /* a mismatched tag in row 40: fatal with its line */
    Q_PREFIX,    /* x: prefixes and "</x:row >" */
    Q_SELFCLOSE, /* empty <row/> elements among the rows */
    Q_TRUNCATED, /* the part ends inside a row */
    Q_ROWTEXT,   /* a cell whose text is "</row>" written with entities */
    Q_BAD_CELLS, /* row-level errors (booleans, shared string index) */
    Q_NESTED,    /* <sheetData> inside another element */
};

/* A 60-row sheet with the given quirk; line breaks vary (LF, CR LF, CR). */
static char *quirk_sheet(enum quirk q, size_t *len)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    const char *px = q == Q_PREFIX ? "x:" : "";
    fx_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<%sworksheet%s>\n", px,
                  q == Q_PREFIX ? " xmlns:x=\"urn:x\"" : "");
    fx_buf_printf(&b, "<%sdimension ref=\"A1:C60\"/>%s<%ssheetData>\n", px,
                  q == Q_NESTED ? "<ext>" : "", px);
    for (int i = 1; i <= 60; i++) {
        const char *eol = i % 3 == 0 ? "\r\n" : i % 3 == 1 ? "\n" : "\r";
        if (q == Q_COMMENT && i == 10)
            fx_buf_puts(&b, "<!-- </row> <row r=\"999\"> -->");
        if (q == Q_PI && i == 12)
            fx_buf_puts(&b, "<?pi </row> ?>");
        if (q == Q_SELFCLOSE && i % 7 == 0) {
            fx_buf_printf(&b, "<row r=\"%d\"/>%s", i, eol);
            continue;
        }
        if (q == Q_TRUNCATED && i == 45) {
            fx_buf_printf(&b, "<row r=\"%d\"><c r=\"A%d\"><v>1", i, i);
            *len = b.len;
            return fx_buf_take(&b);
        }
        int r = q == Q_ORDER && i == 25 ? 3 : i;
        if (q == Q_NO_R && i >= 30)
            fx_buf_printf(&b, "<%srow>", px);
        else
            fx_buf_printf(&b, "<%srow r=\"%d\" spans=\"1:3\">", px, r);
        fx_buf_printf(&b, "<%sc r=\"A%d\" t=\"inlineStr\"><%sis><%st>", px, r, px, px);
        if (q == Q_CDATA && i == 20)
            fx_buf_puts(&b, "<![CDATA[a </row><row r=\"21\"> b]]>");
        else if (q == Q_ROWTEXT && i == 20)
            fx_buf_puts(&b, "&lt;/row&gt;");
        else
            fx_buf_printf(&b, "nome %d", i);
        fx_buf_printf(&b, "</%st></%sis></%sc>", px, px, px);
        if (q == Q_COMMENT && i == 33)
            fx_buf_puts(&b, "<!--</row>-->");
        if (q == Q_MISMATCH && i == 40)
            fx_buf_puts(&b, "<c r=\"B40\"><v>1</x></c>");
        else if (q == Q_BAD_CELLS && i % 11 == 0)
            fx_buf_printf(&b, "<c r=\"B%d\" t=\"b\"><v>7</v></c>", r);
        else
            fx_buf_printf(&b, "<%sc r=\"B%d\" s=\"1\"><%sv>%d</%sv></%sc>", px, r, px, 45000 + i,
                          px, px);
        fx_buf_printf(&b, "<%sc r=\"C%d\"><%sv>%d.5</%sv></%sc>", px, r, px, i, px, px);
        fx_buf_printf(&b, "</%srow%s>%s", px, q == Q_PREFIX ? " " : "", eol);
    }
    fx_buf_printf(&b, "</%ssheetData>%s<%spageMargins left=\"0.7\"/>\n</%sworksheet>\n", px,
                  q == Q_NESTED ? "</ext>" : "", px, px);
    *len = b.len;
    return fx_buf_take(&b);
}

/* Sheets cut into chunks read exactly like a serial parse, whatever hides a
 * "</row>" where a byte search finds it, and whatever makes a chunk unfit to
 * be parsed alone (the reader then goes back to the serial parser). */
static void test_chunks_match_serial(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    for (int q = Q_NONE; q <= Q_NESTED; q++) {
        size_t len;
        char *sheet = quirk_sheet((enum quirk)q, &len);
        char *path = make_book(dir, "q.xlsx", sheet, len, NULL);
        char *got = same_with_chunks(path);
        switch (q) {
        case Q_NONE:
        case Q_PREFIX:
        case Q_NESTED:
            assert_non_null(strstr(got, "1:1=nome 1|4=2023-03-16|2=1.5\n"));
            assert_non_null(strstr(got, "60:1=nome 60|4=2023-05-14|2=60.5\n"));
            assert_null(strstr(got, "FATAL"));
            break;
        case Q_CDATA:
            assert_non_null(strstr(got, "20:1=a </row><row r=\"21\"> b|"));
            assert_non_null(strstr(got, "\n60:1=nome 60|"));
            break;
        case Q_ROWTEXT:
            assert_non_null(strstr(got, "20:1=</row>|"));
            break;
        case Q_COMMENT:
        case Q_PI:
        case Q_SELFCLOSE:
            assert_non_null(strstr(got, "\n60:1=nome 60|"));
            assert_null(strstr(got, "999"));
            assert_null(strstr(got, "FATAL"));
            break;
        case Q_NO_R:
            assert_non_null(strstr(got, "\n30:1=nome 30|"));
            assert_non_null(strstr(got, "\n60:1=nome 60|"));
            break;
        case Q_ORDER:
            assert_non_null(strstr(got, "\n24:1=nome 24|"));
            assert_non_null(strstr(got, "FATAL -5 xl/worksheets/sheet1.xml: row 3 comes after row "
                                        "24 (rows out of order)"));
            break;
        case Q_MISMATCH:
            assert_non_null(strstr(got, "\n39:1=nome 39|"));
            assert_non_null(strstr(got, "FATAL -5 xl/worksheets/sheet1.xml: malformed XML at line "
                                        "43: mismatched tag"));
            break;
        case Q_TRUNCATED:
            assert_non_null(strstr(got, "\n44:1=nome 44|"));
            assert_non_null(strstr(got, "FATAL -5 xl/worksheets/sheet1.xml: malformed XML"));
            break;
        case Q_BAD_CELLS:
            assert_non_null(
                strstr(got, "\n11:BAD 2 cell B11: invalid boolean \"7\"\n12:1=nome 12|"));
            break;
        }
        free(got);
        free(path);
        free(sheet);
    }
    tu_rmrf(dir);
    free(dir);
}

/* A UTF-16 sheet is never cut at byte offsets, and reads like its UTF-8 twin. */
static void test_chunks_utf16(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    size_t len;
    char *sheet = quirk_sheet(Q_NONE, &len);
    char *p8 = make_book(dir, "u8.xlsx", sheet, len, NULL);
    char *want = same_with_chunks(p8);
    /* the same text as UTF-16LE with a BOM (it is ASCII) and its declaration */
    char *text =
        fx_asprintf("<?xml version=\"1.0\" encoding=\"UTF-16\"?>%s", strstr(sheet, "?>") + 2);
    size_t tlen = strlen(text);
    char *u16 = fx_malloc(2 * tlen + 2);
    u16[0] = (char)0xFF;
    u16[1] = (char)0xFE;
    for (size_t i = 0; i < tlen; i++) {
        u16[2 + 2 * i] = text[i];
        u16[3 + 2 * i] = 0;
    }
    free(text);
    char *p16 = make_book(dir, "u16.xlsx", u16, 2 * tlen + 2, NULL);
    char *got = same_with_chunks(p16);
    if (strcmp(want, got) != 0)
        fprintf(stderr, "--- UTF-8\n%s\n--- UTF-16\n%s\n", want, got);
    assert_string_equal(want, got);
    free(got);
    free(want);
    free(u16);
    free(p16);
    free(p8);
    free(sheet);
    tu_rmrf(dir);
    free(dir);
}

/* A row larger than what a chunk may hold is read serially (here the row is
 * over max_line_bytes: a bad row either way). */
static void test_chunks_huge_row(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "<worksheet><sheetData>");
    for (int i = 1; i <= 3; i++) {
        fx_buf_printf(&b, "<row r=\"%d\">", i);
        int cells = i == 2 ? 60 : 2;
        for (int c = 1; c <= cells; c++) {
            fx_buf_printf(&b, "<c t=\"inlineStr\"><is><t>");
            for (int k = 0; k < (i == 2 ? 2000 : 1); k++)
                fx_buf_puts(&b, "0123456789");
            fx_buf_puts(&b, "</t></is></c>");
        }
        fx_buf_puts(&b, "</row>");
    }
    fx_buf_puts(&b, "</sheetData></worksheet>");
    char *path = make_book(dir, "huge.xlsx", b.data, b.len, NULL);
    struct fx__xlsx_limits saved = fx__xlsx_limits;
    fx__xlsx_limits.max_ratio = 100000; /* the repeated text compresses too well */
    fx__xlsx_block_size = 4096;
    char *chunked = dump_opts(path, NULL, NULL);
    fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
    char *serial = dump_opts(path, NULL, NULL);
    fx__xlsx_limits = saved;
    if (strcmp(chunked, serial) != 0 || !strstr(serial, "3:1="))
        fprintf(stderr, "--- chunked\n%s\n--- serial\n%s\n", chunked, serial);
    assert_string_equal(chunked, serial);
    assert_non_null(strstr(serial, "2:BAD 53 row 2 longer than 1048576 bytes (max_line_bytes)\n"
                                   "3:1=0123456789|1=0123456789\n"));
    free(chunked);
    free(serial);
    free(path);
    fx_buf_cleanup(&b);
    tu_rmrf(dir);
    free(dir);
}

/* Shared strings past the memory budget go to a temporary file and read the
 * same, serially and in chunks, including while pages are given back; with
 * nowhere to spill they stay in memory. */
static void test_sst_spill(void **state)
{
    (void)state;
    struct fx__xlsx_limits saved = fx__xlsx_limits;
    static const char *const files[] = {"basic.xlsx", "handmade.xlsx"};
    for (size_t f = 0; f < 2; f++) {
        char *want = dump(files[f], NULL);
        fx__xlsx_limits.sst_mem = 1;
        char *got = dump(files[f], NULL);
        fx__xlsx_block_size = 7;
        char *got7 = dump(files[f], NULL);
        fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
        fx__xlsx_limits = saved;
        assert_string_equal(want, got);
        assert_string_equal(want, got7);
        free(want);
        free(got);
        free(got7);
    }

    /* 20000 distinct strings (about 600 kB) read with a 128 kB budget */
    char *dir = tu_tmpdir();
    struct fx_buf sst, sheet;
    fx_buf_init(&sst, 0);
    fx_buf_init(&sheet, 0);
    fx_buf_puts(&sst, "<sst>");
    fx_buf_puts(&sheet, "<worksheet><sheetData>");
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        fx_buf_printf(&sst, "<si><t>texto compartilhado numero %06d</t></si>", i);
    for (int i = 0; i < N; i++) /* first the strings in order, then a stride */
        fx_buf_printf(&sheet,
                      "<row r=\"%d\"><c t=\"s\"><v>%d</v></c><c t=\"s\"><v>%d</v></c></row>", i + 1,
                      i, (int)((i * 7919L) % N));
    fx_buf_puts(&sst, "</sst>");
    fx_buf_puts(&sheet, "</sheetData></worksheet>");
    char *path = make_book(dir, "sst.xlsx", sheet.data, sheet.len, sst.data);
    const char *old_tmp = getenv("TMPDIR");
    char *saved_tmp = old_tmp ? fx_strdup(old_tmp) : NULL;
    for (int pass = 0; pass < 3; pass++) {
        fx__xlsx_limits.sst_mem = 128u << 10;
        fx__xlsx_block_size = pass == 1 ? 8192 : FX__XLSX_BLOCK_MAX;
        if (pass == 2)
            setenv("TMPDIR", "/nonexistent/fluxo-test", 1);
        struct fx_reader *r;
        struct fx_err err;
        assert_int_equal(fx_reader_open(path, NULL, &r, &err), 0);
        struct fx_record rec;
        for (int i = 0; i < N; i++) {
            assert_int_equal(fx_reader_next(r, &rec, &err), 1);
            assert_int_equal(rec.row, i + 1);
            assert_int_equal(rec.ncells, 2);
            char want[64];
            snprintf(want, sizeof(want), "texto compartilhado numero %06d", i);
            assert_string_equal(rec.cells[0].s, want);
            snprintf(want, sizeof(want), "texto compartilhado numero %06d", (int)((i * 7919L) % N));
            assert_string_equal(rec.cells[1].s, want);
        }
        assert_int_equal(fx_reader_next(r, &rec, &err), 0);
        fx_reader_free(r);
        if (saved_tmp)
            setenv("TMPDIR", saved_tmp, 1);
        else
            unsetenv("TMPDIR");
        fx__xlsx_limits = saved;
        fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
    }
    free(saved_tmp);
    free(path);
    fx_buf_cleanup(&sst);
    fx_buf_cleanup(&sheet);
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
        cmocka_unit_test(test_chunks_match_serial),
        cmocka_unit_test(test_chunks_utf16),
        cmocka_unit_test(test_chunks_huge_row),
        cmocka_unit_test(test_sst_spill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
