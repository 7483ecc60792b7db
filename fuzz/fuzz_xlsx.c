/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the streaming XLSX reader. The first byte picks the mode,
 * small caps and an inflate block size; the rest is either the whole file
 * (even first byte: the ZIP layer and every part) or the text of
 * xl/worksheets/sheet1.xml placed in a minimal valid workbook built in memory
 * with libzip (odd first byte: the sheet's XML layer). The file is read twice,
 * with a 1..13-byte block and the default one. Besides never crashing or
 * leaking, it checks the contract: the same records whatever the block size
 * (or a failure in both: a bad CRC shows only at an entry's end),
 * rows increasing, cells NUL-terminated and within the caps, rejected
 * records without cells, fatal errors with a reason.
 */
#include "fluxo/mem.h"
#include "fluxo/xlsx.h"
#include "format/xlsx_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_xlsx: contract broken: %s\n", what);
        abort();
    }
}

static char *read_all(const char *path, const struct fx_reader_opts *o, size_t block)
{
    struct fx_buf out;
    fx_buf_init(&out, 0);
    struct fx_reader *r;
    struct fx_err err;
    fx__xlsx_block_size = block;
    int rc = fx_xlsx_reader_open(path, o, &r, &err);
    fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;
    if (rc) {
        check(rc < 0 && r == NULL && err.reason[0], "open fails with a reason");
        fx_buf_printf(&out, "OPEN %d %s\n", rc, err.reason);
        return fx_buf_take(&out);
    }
    struct fx_record rec;
    long last = 0;
    while ((rc = fx_reader_next(r, &rec, &err)) == 1) {
        check(rec.row > last, "rows increase");
        last = rec.row;
        fx_buf_printf(&out, "%ld:", rec.row);
        if (rec.bad) {
            check(rec.ncells == 0, "bad record without cells");
            check(rec.err.reason[0] != '\0', "bad record has a reason");
            fx_buf_printf(&out, "BAD %d %s\n", rec.err.column, rec.err.reason);
            continue;
        }
        check(rec.ncells >= 1 && rec.ncells <= o->max_fields, "cell count within max_fields");
        check(rec.cells[rec.ncells - 1].type != FX_CELL_EMPTY, "no trailing empty cell");
        for (size_t i = 0; i < rec.ncells; i++) {
            const struct fx_cell *c = &rec.cells[i];
            check(c->len <= o->max_field_bytes, "cell within max_field_bytes");
            check(c->s[c->len] == '\0', "cell NUL-terminated");
            check((c->len == 0) == (c->type == FX_CELL_EMPTY), "empty iff FX_CELL_EMPTY");
            fx_buf_printf(&out, "|%d=", (int)c->type);
            fx_buf_json_str(&out, c->s, c->len);
        }
        fx_buf_putc(&out, '\n');
    }
    if (rc < 0) {
        check(err.reason[0] != '\0', "fatal error has a reason");
        fx_buf_printf(&out, "FATAL %d %s\n", rc, err.reason);
    } else {
        check(fx_reader_next(r, &rec, &err) == 0, "end of input is sticky");
    }
    fx_reader_free(r);
    return fx_buf_take(&out);
}

static int add(zip_t *z, const char *name, const void *data, size_t len)
{
    zip_source_t *src = zip_source_buffer(z, data, len, 0);
    if (!src)
        return -1;
    if (zip_file_add(z, name, src, ZIP_FL_OVERWRITE) < 0) {
        zip_source_free(src);
        return -1;
    }
    return 0;
}

/* Write a minimal workbook around sheet to path. */
static int wrap_sheet(const char *path, const uint8_t *sheet, size_t len)
{
    static const char wb[] =
        "<workbook xmlns:r=\"r\"><workbookPr/><sheets><sheet name=\"S\" sheetId=\"1\" "
        "r:id=\"rId1\"/></sheets></workbook>";
    static const char rels[] = "<Relationships><Relationship Id=\"rId1\" "
                               "Type=\"x/worksheet\" Target=\"worksheets/sheet1.xml\"/>"
                               "</Relationships>";
    static const char styles[] =
        "<styleSheet><numFmts><numFmt numFmtId=\"164\" formatCode=\"dd/mm/yyyy hh:mm\"/>"
        "</numFmts><cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"14\"/><xf numFmtId=\"164\"/>"
        "</cellXfs></styleSheet>";
    static const char sst[] = "<sst><si><t>a</t></si><si><r><t>b</t></r><r><t>c</t></r>"
                              "<rPh><t>x</t></rPh></si><si><t/></si></sst>";
    int zerr;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!z)
        return -1;
    if (add(z, "xl/workbook.xml", wb, sizeof(wb) - 1) ||
        add(z, "xl/_rels/workbook.xml.rels", rels, sizeof(rels) - 1) ||
        add(z, "xl/styles.xml", styles, sizeof(styles) - 1) ||
        add(z, "xl/sharedStrings.xml", sst, sizeof(sst) - 1) ||
        add(z, "xl/worksheets/sheet1.xml", sheet, len)) {
        zip_discard(z);
        return -1;
    }
    return zip_close(z) == 0 ? 0 : -1;
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
    if (ctl & 2) {
        o.max_field_bytes = 1 + ((ctl >> 2) & 7) * 5; /* 1..36 */
        o.max_fields = 1 + ((ctl >> 5) & 3) * 3;      /* 1..10 */
        o.max_line_bytes = 8 + ((ctl >> 4) & 7) * 13; /* 8..99 */
    }

    char path[] = "/tmp/fuzz_xlsx_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    int ok = 1;
    if (ctl & 1) {
        close(fd);
        ok = wrap_sheet(path, data, size) == 0;
    } else {
        size_t off = 0;
        while (off < size) {
            ssize_t n = write(fd, data + off, size - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(fd);
        ok = off == size;
    }
    if (ok) {
        char *a = read_all(path, &o, 0);
        char *b = read_all(path, &o, 1 + ctl % 13);
        /* A corrupt entry (CRC) is only known at its end, so how many rows come
         * before the error depends on the block size: then both must fail. */
        int fa = strstr(a, "OPEN ") == a || strstr(a, "FATAL ") != NULL;
        int fb = strstr(b, "OPEN ") == b || strstr(b, "FATAL ") != NULL;
        int same = fa || fb ? fa && fb : strcmp(a, b) == 0;
        if (!same)
            fprintf(stderr, "default blocks:\n%s\nblocks of %u:\n%s\n", a, 1 + ctl % 13, b);
        check(same, "same records whatever the block size");
        free(a);
        free(b);
    }
    unlink(path);
    return 0;
}
