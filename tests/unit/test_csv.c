/* SPDX-License-Identifier: MIT */
/*
 * Streaming CSV reader: the push parser must give the same records whatever
 * the chunk split (every split point, and byte at a time), and the file reader
 * the same whatever the block size; plus delimiter and encoding detection,
 * quoting, line ends, row numbers, caps and row-level errors.
 *
 * Records are compared as text dumps: one line per record, "row:" then the
 * cells as quoted strings, or "row:BAD column reason", or "FATAL row:column".
 */
#include "testutil.h"

#include "fluxo/csv.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static void dump_rec(struct fx_buf *out, const struct fx_record *r)
{
    fx_buf_printf(out, "%ld:", r->row);
    if (r->bad) {
        assert_int_equal(r->ncells, 0);
        assert_int_equal(r->err.row, r->row);
        fx_buf_printf(out, "BAD %d %s\n", r->err.column, r->err.reason);
        return;
    }
    for (size_t k = 0; k < r->ncells; k++) {
        const struct fx_cell *c = &r->cells[k];
        assert_non_null(c->s);
        assert_int_equal(c->s[c->len], '\0');
        assert_int_equal(fx__csv_utf8_check(c->s, c->len), c->len);
        assert_int_equal(c->type, c->len ? FX_CELL_STRING : FX_CELL_EMPTY);
        if (k)
            fx_buf_putc(out, ',');
        fx_buf_json_str(out, c->s, c->len);
    }
    fx_buf_putc(out, '\n');
}

static void dump_fatal(struct fx_buf *out, int rc, const struct fx_err *err)
{
    fx_buf_printf(out, "FATAL %s %ld:%d\n", fx_errname(rc), err->row, err->column);
}

static void feed(struct fx_csv *p, const char *d, size_t len, struct fx_buf *out, int *dead)
{
    while (!*dead) {
        struct fx_record rec;
        struct fx_err err;
        size_t used = 12345;
        int rc = fx_csv_parse(p, d, len, &used, &rec, &err);
        if (rc < 0) {
            dump_fatal(out, rc, &err);
            *dead = 1;
            return;
        }
        assert_true(used <= len);
        d += used;
        len -= used;
        if (rc == 0) {
            assert_int_equal(len, 0);
            return;
        }
        dump_rec(out, &rec);
    }
}

static void finish(struct fx_csv *p, struct fx_buf *out, int dead)
{
    struct fx_record rec;
    struct fx_err err;
    int rc;
    if (dead)
        return;
    while ((rc = fx_csv_finish(p, &rec, &err)) == 1)
        dump_rec(out, &rec);
    if (rc < 0)
        dump_fatal(out, rc, &err);
    /* finishing again is harmless */
    rc = fx_csv_finish(p, &rec, &err);
    assert_true(rc <= 0);
}

/* Feed in[0..split) as one chunk, then the rest in chunks of step (0 = one). */
static char *run_push(const char *in, size_t n, const struct fx_reader_opts *o, size_t split,
                      size_t step)
{
    struct fx_buf out;
    fx_buf_init(&out, 0);
    struct fx_csv *p = fx_csv_new(o);
    int dead = 0;
    feed(p, in, split, &out, &dead);
    for (size_t at = split; at < n && !dead;) {
        size_t k = step && step < n - at ? step : n - at;
        feed(p, in + at, k, &out, &dead);
        at += k;
    }
    finish(p, &out, dead);
    fx_buf_printf(&out, "delim=%d\n", fx_csv_delimiter(p));
    fx_csv_free(p);
    return fx_buf_take(&out);
}

static char *run_file_path(const char *path, const struct fx_reader_opts *o, size_t block)
{
    struct fx_buf out;
    fx_buf_init(&out, 0);
    fx__csv_block_size = block;
    struct fx_reader *r = NULL;
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_csv_reader_open(path, o, &r, &err);
    fx__csv_block_size = FX__CSV_BLOCK_MAX;
    assert_int_equal(rc, 0);
    assert_string_equal(fx_reader_format(r), "csv");
    struct fx_record rec;
    while ((rc = fx_reader_next(r, &rec, &err)) == 1) {
        if (rec.bad)
            assert_string_equal(rec.err.source, path);
        dump_rec(&out, &rec);
    }
    if (rc < 0) {
        assert_string_equal(err.source, path);
        dump_fatal(&out, rc, &err);
    }
    long long done = -1, total = -1;
    fx_reader_progress(r, &done, &total);
    assert_true(done == total);
    fx_reader_free(r);
    return fx_buf_take(&out);
}

static char *run_file(const char *in, size_t n, const struct fx_reader_opts *o, size_t block)
{
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char *path = tu_write_file(dir, "in.csv", in, n);
    assert_non_null(path);
    char *res = run_file_path(path, o, block);
    free(path);
    tu_rmrf(dir);
    free(dir);
    return res;
}

/* Strip the trailing "delim=" line of a push dump (the file reader has none). */
static void strip_delim(char *s)
{
    char *d = strstr(s, "delim=");
    if (d)
        *d = '\0';
}

/*
 * The property: every split point, byte at a time and a few chunk sizes give
 * the reference records; so does the file reader with several block sizes
 * (UTF-8 forced, so it sees the same bytes). expected may be NULL.
 */
static void check_splits(const char *in, size_t n, const struct fx_reader_opts *o,
                         const char *expected)
{
    char *ref = run_push(in, n, o, n, 0);
    if (expected && strcmp(ref, expected) != 0) {
        fprintf(stderr, "input:\n%.*s\ngot:\n%s\nexpected:\n%s\n", (int)n, in, ref, expected);
        fail();
    }
    for (size_t i = 0; i <= n; i++) {
        char *got = run_push(in, n, o, i, 0);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "split at %zu:\n%s\nreference:\n%s\n", i, got, ref);
            fail();
        }
        free(got);
    }
    static const size_t steps[] = {1, 2, 3, 7};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        char *got = run_push(in, n, o, 0, steps[k]);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "chunks of %zu:\n%s\nreference:\n%s\n", steps[k], got, ref);
            fail();
        }
        free(got);
    }
    struct fx_reader_opts fo;
    if (o)
        fo = *o;
    else
        fx_reader_opts_init(&fo);
    fo.encoding = "utf-8";
    strip_delim(ref);
    static const size_t blocks[] = {1, 2, 3, 5, FX__CSV_BLOCK_MAX};
    for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); k++) {
        char *got = run_file(in, n, &fo, blocks[k]);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "file, blocks of %zu:\n%s\nreference:\n%s\n", blocks[k], got, ref);
            fail();
        }
        free(got);
    }
    free(ref);
}

#define CHECK(in, opts, expected) check_splits((in), sizeof(in) - 1, (opts), (expected))

static struct fx_reader_opts small_caps(void)
{
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.max_field_bytes = 5;
    o.max_fields = 3;
    o.max_line_bytes = 14;
    return o;
}

/* ---- push parser, every split ----------------------------------------- */

static void test_simple(void **state)
{
    (void)state;
    CHECK("a,b,c\n1,2,3\n", NULL, "1:\"a\",\"b\",\"c\"\n2:\"1\",\"2\",\"3\"\ndelim=44\n");
    /* no final newline, empty cells, no trimming */
    CHECK("a;b;c\n1;; x \n;;", NULL,
          "1:\"a\",\"b\",\"c\"\n2:\"1\",\"\",\" x \"\n3:\"\",\"\",\"\"\ndelim=59\n");
}

static void test_quotes_and_newlines(void **state)
{
    (void)state;
    CHECK("name;note\r\n\"Jo\"\"ao\";\"l1\r\nl2\"\r\n\"x\ry\";\"a\nb\"\r\nlast;\"\"", NULL,
          "1:\"name\",\"note\"\n"
          "2:\"Jo\\\"ao\",\"l1\\r\\nl2\"\n"
          "4:\"x\\ry\",\"a\\nb\"\n"
          "7:\"last\",\"\"\n"
          "delim=59\n");
    /* quoted delimiters and a quote as the very last byte */
    CHECK("a,\"b,c\",\"\"\"\"\n\"x\",\"y\"", NULL,
          "1:\"a\",\"b,c\",\"\\\"\"\n2:\"x\",\"y\"\ndelim=44\n");
}

static void test_line_ends_and_rows(void **state)
{
    (void)state;
    /* blank lines are skipped but counted; LF, CRLF and CR each end one line */
    CHECK("\n\nh1,h2\n\n1,2\r\n\r\n3,4\r5,6\r\r\n7,8\n\n", NULL,
          "3:\"h1\",\"h2\"\n5:\"1\",\"2\"\n7:\"3\",\"4\"\n8:\"5\",\"6\"\n10:\"7\",\"8\"\n"
          "delim=44\n");
    CHECK("a\rb\r\nc\n\rd", NULL, "1:\"a\"\n2:\"b\"\n3:\"c\"\n5:\"d\"\ndelim=44\n");
    CHECK("a\rb\nc\r\"d\"\ne\n", NULL, "1:\"a\"\n2:\"b\"\n3:\"c\"\n4:\"d\"\n5:\"e\"\ndelim=44\n");
    /* a line end inside quotes moves later rows down */
    CHECK("a,b\n\"1\r\n\r\n2\",x\ny,z\n", NULL,
          "1:\"a\",\"b\"\n2:\"1\\r\\n\\r\\n2\",\"x\"\n5:\"y\",\"z\"\ndelim=44\n");
}

static void test_lenient_quotes(void **state)
{
    (void)state;
    /* stray quote kept literally; text after a closing quote appended */
    CHECK("a,b\nab\"c,\"ab\"c\n\"x\"\"y\" z,\"p\"q\"r\"\n5\" disk,\"\"\"\"x\n", NULL,
          "1:\"a\",\"b\"\n"
          "2:\"ab\\\"c\",\"abc\"\n"
          "3:\"x\\\"y z\",\"pq\\\"r\\\"\"\n"
          "4:\"5\\\" disk\",\"\\\"x\"\n"
          "delim=44\n");
}

static void test_utf8(void **state)
{
    (void)state;
    CHECK("cidade;valor\nS\xc3\xa3o Paulo;1\nJo\xc3\xa3o;\xe2\x82\xac"
          "2\n\xf0\x9f\x98\x80;x\n",
          NULL,
          "1:\"cidade\",\"valor\"\n2:\"S\xc3\xa3o Paulo\",\"1\"\n3:\"Jo\xc3\xa3o\",\"\xe2\x82\xac"
          "2\"\n4:\"\xf0\x9f\x98\x80\",\"x\"\ndelim=59\n");
    /* BOM stripped (every split of it), a BOM prefix alone is not a BOM */
    CHECK("\xef\xbb\xbf"
          "a;b\n1;2\n",
          NULL, "1:\"a\",\"b\"\n2:\"1\",\"2\"\ndelim=59\n");
    CHECK("\xef\xbb\xbf", NULL, "delim=44\n");
    CHECK("\xef\xbb\xbf\r\n", NULL, "delim=44\n");
    CHECK("\xef\xbb"
          "a\n",
          NULL, "1:BAD 1 invalid UTF-8 at byte 1 of column 1\ndelim=44\n");
    /* invalid UTF-8: the row is rejected, the next ones are read with their rows */
    CHECK("a,b\n1,\xff\n\n2,ok\n\"x\n\",\xc3(\n\xed\xa0\x80,\xc0\xaf\n3,\xc3\n4,4", NULL,
          "1:\"a\",\"b\"\n"
          "2:BAD 2 invalid UTF-8 at byte 1 of column 2\n"
          "4:\"2\",\"ok\"\n"
          "5:BAD 2 invalid UTF-8 at byte 1 of column 2\n"
          "7:BAD 1 invalid UTF-8 at byte 1 of column 1\n"
          "8:BAD 2 invalid UTF-8 at byte 1 of column 2\n"
          "9:\"4\",\"4\"\n"
          "delim=44\n");
    /* NUL bytes are refused, quoted or not */
    CHECK("a,b\n1,x\0y\n\"\0\",2\n3,3\n", NULL,
          "1:\"a\",\"b\"\n"
          "2:BAD 2 NUL byte at byte 2 of column 2 (binary or UTF-16 file?)\n"
          "3:BAD 1 NUL byte at byte 1 of column 1 (binary or UTF-16 file?)\n"
          "4:\"3\",\"3\"\n"
          "delim=44\n");
}

static void test_caps(void **state)
{
    (void)state;
    struct fx_reader_opts o = small_caps();
    CHECK("a,b\nabcdef,x\n1,2,3,4\nok,ok\n\"lo\nng\",\"abcde\",\"x\"\nz,z\n"
          "\"aa,aa\",bbbbb,\"c\r\nd\"\n,\n",
          &o,
          "1:\"a\",\"b\"\n"
          "2:BAD 1 field in column 1 longer than 5 bytes (max_field_bytes)\n"
          "3:BAD 4 more than 3 fields (column 4; max_fields)\n"
          "4:\"ok\",\"ok\"\n"
          "5:BAD 2 line longer than 14 bytes (max_line_bytes)\n"
          "7:\"z\",\"z\"\n"
          "8:BAD 3 line longer than 14 bytes (max_line_bytes)\n"
          "10:\"\",\"\"\n"
          "delim=44\n");
    /* limits that are exactly met are fine; doubled quotes count once in a field */
    CHECK("abcde,x\n\"\"\"\"\"\"\"\"\"\",c\n", &o,
          "1:\"abcde\",\"x\"\n2:\"\\\"\\\"\\\"\\\"\",\"c\"\ndelim=44\n");
    /* a header over the line cap while the delimiter is still unknown */
    CHECK("aaaa;bbbb;cccc;dddd\n1;2\n", &o,
          "1:BAD 4 more than 3 fields (column 4; max_fields)\n2:\"1\",\"2\"\ndelim=59\n");
}

static void test_unterminated_quote(void **state)
{
    (void)state;
    CHECK("a,b\n1,\"open\n2,3\n4,5", NULL, "1:\"a\",\"b\"\nFATAL EPARSE 2:2\ndelim=44\n");
    struct fx_reader_opts o = small_caps();
    /* over the line cap too: still the one fatal error, where the quote opened */
    CHECK("a,b\nx\n1,\"open\n2,3\n4,5,6,7,8,9\n", &o,
          "1:\"a\",\"b\"\n2:\"x\"\nFATAL EPARSE 3:2\ndelim=44\n");
    CHECK("\"", NULL, "FATAL EPARSE 1:1\ndelim=44\n");

    struct fx_csv *p = fx_csv_new(NULL);
    struct fx_record rec;
    struct fx_err err;
    size_t used;
    assert_int_equal(fx_csv_parse(p, "a\n\"b\n", 5, &used, &rec, &err), 1);
    assert_int_equal(fx_csv_parse(p, "\"b\n", 3, &used, &rec, &err), 0);
    fx_err_clear(&err);
    assert_int_equal(fx_csv_finish(p, &rec, &err), FX_EPARSE);
    assert_int_equal(err.row, 2);
    assert_int_equal(err.column, 1);
    assert_non_null(strstr(err.reason, "unterminated quoted field"));
    assert_non_null(strstr(err.reason, "row 2"));
    fx_csv_free(p);
}

/* ---- delimiter detection ------------------------------------------------ */

static char detect(const char *in)
{
    char *dump = run_push(in, strlen(in), NULL, strlen(in), 0);
    char *d = strstr(dump, "delim=");
    assert_non_null(d);
    char c = (char)atoi(d + 6);
    free(dump);
    return c;
}

static void test_delimiter_detection(void **state)
{
    (void)state;
    assert_int_equal(detect("a,b,c\n1;2\n"), ',');
    assert_int_equal(detect("a;b;c\n1,2,3,4,5\n"), ';');
    assert_int_equal(detect("a\tb\tc;d\n"), '\t');
    assert_int_equal(detect("a;b,c\n"), ';');         /* tie: ';' first */
    assert_int_equal(detect("a,b\tc\n"), ',');        /* tie: ',' before tab */
    assert_int_equal(detect("single\n1\n"), ',');     /* one column */
    assert_int_equal(detect("\"a,b,c\";d;e\n"), ';'); /* quoted delimiters do not count */
    assert_int_equal(detect("\"a\"\"b,c,d\";e\n"), ';');
    assert_int_equal(detect("\n\r\nx;y\n"), ';'); /* leading blank lines */
    assert_int_equal(detect("x;y"), ';');         /* no line end at all */
    assert_int_equal(detect(""), ',');

    /* a configured delimiter is used as is */
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.delimiter = '|';
    CHECK("a|b;c\n1|2\n", &o, "1:\"a\",\"b;c\"\n2:\"1\",\"2\"\ndelim=124\n");
    o.delimiter = ',';
    CHECK("a;b;c,d\n", &o, "1:\"a;b;c\",\"d\"\ndelim=44\n");
    /* the header decides even when the heuristic and the parser disagree */
    CHECK("a;b,\"c\nd;e\n", NULL, "1:\"a\",\"b,\\\"c\"\n2:\"d\",\"e\"\ndelim=59\n");
}

/* ---- file reader ---------------------------------------------------------- */

static void test_file_windows1252(void **state)
{
    (void)state;
    static const char in[] = "nome;cidade;pre\xe7o\r\nJo\xe3o;S\xe3o Paulo;\x80 1,50\r\n"
                             "\"Concei\xe7\xe3o\";\"Bras\xedlia\r\nDF\";\x81\x9d\r\n";
    const char *expected = "1:\"nome\",\"cidade\",\"pre\xc3\xa7o\"\n"
                           "2:\"Jo\xc3\xa3o\",\"S\xc3\xa3o Paulo\",\"\xe2\x82\xac 1,50\"\n"
                           "3:\"Concei\xc3\xa7\xc3\xa3o\",\"Bras\xc3\xadlia\\r\\nDF\","
                           "\"\xc2\x81\xc2\x9d\"\n";
    static const size_t blocks[] = {1, 2, 7, FX__CSV_BLOCK_MAX};
    for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); k++) {
        char *got = run_file(in, sizeof(in) - 1, NULL, blocks[k]);
        assert_string_equal(got, expected);
        free(got);
    }
    /* named explicitly */
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.encoding = "WINDOWS-1252";
    char *got = run_file(in, sizeof(in) - 1, &o, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, expected);
    free(got);
    /* edges of the table: U+20AC, U+0178, U+00FF, and an undefined byte */
    got = run_file("\x80\x9f\xff\x8d\n", 5, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "1:\"\xe2\x82\xac\xc5\xb8\xc3\xbf\xc2\x8d\"\n");
    free(got);
    /* the brief's example, alone */
    got = run_file("Jo\xe3o;S\xe3o Paulo", 14, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "1:\"Jo\xc3\xa3o\",\"S\xc3\xa3o Paulo\"\n");
    free(got);
}

static void test_file_bom_and_utf8(void **state)
{
    (void)state;
    /* BOM: UTF-8 whatever follows; a later bad byte rejects that row only */
    static const char in[] = "\xef\xbb\xbf"
                             "a;b\nS\xc3\xa3o;1\nJo\xe3o;2\n3;\xc3\xa7\n";
    const char *expected = "1:\"a\",\"b\"\n2:\"S\xc3\xa3o\",\"1\"\n"
                           "3:BAD 1 invalid UTF-8 at byte 3 of column 1\n4:\"3\",\"\xc3\xa7\"\n";
    static const size_t blocks[] = {1, 2, 3, 4, FX__CSV_BLOCK_MAX};
    for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); k++) {
        char *got = run_file(in, sizeof(in) - 1, NULL, blocks[k]);
        assert_string_equal(got, expected);
        free(got);
    }
}

/* Valid UTF-8 for the first 64 KiB (detected UTF-8), then one bad row. */
/* A UTF-8 file with one damaged row inside the sniffed sample stays UTF-8:
 * its accented rows decode as UTF-8 and only the damaged row is rejected. */
static void test_file_sniff_damaged_utf8(void **state)
{
    (void)state;
    static const char in[] = "nome;cidade\nJo\xc3\xa3o;S\xc3\xa3o Paulo\nAna;Bel\xc3\xa9m\n"
                             "Bad\xff\xfe;x\nZ\xc3\xa9;y\n";
    char *got = run_file(in, sizeof(in) - 1, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "1:\"nome\",\"cidade\"\n2:\"Jo\xc3\xa3o\",\"S\xc3\xa3o Paulo\"\n"
                             "3:\"Ana\",\"Bel\xc3\xa9m\"\n"
                             "4:BAD 1 invalid UTF-8 at byte 4 of column 1\n"
                             "5:\"Z\xc3\xa9\",\"y\"\n");
    free(got);
}

static void test_file_late_invalid_utf8(void **state)
{
    (void)state;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "id;cidade;valor\n");
    long rows = 1;
    while (b.len < 70000) {
        fx_buf_printf(&b, "%ld;S\xc3\xa3o Paulo;%ld,50\n", rows, rows * 3);
        rows++;
    }
    long bad_row = ++rows;
    fx_buf_puts(&b, "x;Jo\xe3o;1\n");
    fx_buf_puts(&b, "\r\n");
    rows++;
    fx_buf_puts(&b, "y;Bel\xc3\xa9m;2");
    rows++;

    for (int pass = 0; pass < 2; pass++) {
        char *dump = run_file(b.data, b.len, NULL, pass ? 1000 : FX__CSV_BLOCK_MAX);
        char want[256];
        snprintf(want, sizeof(want),
                 "%ld:BAD 2 invalid UTF-8 at byte 3 of column 2\n%ld:\"y\","
                 "\"Bel\xc3\xa9m\",\"2\"\n",
                 bad_row, rows);
        size_t dl = strlen(dump), wl = strlen(want);
        assert_true(dl > wl);
        assert_string_equal(dump + dl - wl, want);
        free(dump);
    }

    /* the same file read through the push parser in one go agrees */
    char *ref = run_push(b.data, b.len, NULL, b.len, 0);
    strip_delim(ref);
    char *got = run_file(b.data, b.len, NULL, 4093);
    assert_string_equal(got, ref);
    free(got);
    free(ref);
    fx_buf_cleanup(&b);
}

/* A UTF-8 sequence cut by the end of the 64 KiB sample is still UTF-8. */
static void test_file_sniff_boundary(void **state)
{
    (void)state;
    size_t n = FX__CSV_BLOCK_MAX + 100;
    char *in = fx_malloc(n);
    memset(in, 'a', n);
    memcpy(in, "h\n", 2);
    for (size_t i = 2; i + 1 < n; i += 64)
        in[i] = '\n';
    in[FX__CSV_BLOCK_MAX - 1] = '\xc3';
    in[FX__CSV_BLOCK_MAX] = '\xa9';
    char *got = run_file(in, n, NULL, FX__CSV_BLOCK_MAX);
    assert_null(strstr(got, "BAD"));
    assert_non_null(strstr(got, "a\xc3\xa9"
                                "a"));
    free(got);
    free(in);
}

static void test_file_empty_and_header_only(void **state)
{
    (void)state;
    char *got = run_file("", 0, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "");
    free(got);
    got = run_file("\xef\xbb\xbf\r\n\r\n", 7, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "");
    free(got);
    got = run_file("data;valor;cliente\r\n", 20, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "1:\"data\",\"valor\",\"cliente\"\n");
    free(got);
    got = run_file("data;valor", 10, NULL, 3);
    assert_string_equal(got, "1:\"data\",\"valor\"\n");
    free(got);
}

static void test_file_errors(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof(path), "%s/missing.csv", dir);
    struct fx_reader *r = (struct fx_reader *)&r;
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_csv_reader_open(path, NULL, &r, &err), FX_EIO);
    assert_null(r);
    assert_int_equal(err.code, FX_EIO);
    assert_string_equal(err.source, path);
    assert_non_null(strstr(err.reason, strerror(ENOENT)));

    fx_err_clear(&err);
    assert_int_equal(fx_csv_reader_open(dir, NULL, &r, &err), FX_EIO);
    assert_string_equal(err.source, dir);

    char *file = tu_write_file(dir, "a.csv", "a\n", 2);
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.encoding = "utf-16";
    assert_int_equal(fx_csv_reader_open(file, &o, &r, &err), FX_EINVAL);
    assert_non_null(strstr(err.reason, "utf-16"));
    fx_reader_opts_init(&o);
    o.delimiter = '"';
    assert_int_equal(fx_csv_reader_open(file, &o, &r, &err), FX_EINVAL);

    /* the front dispatches CSV here too */
    assert_int_equal(fx_reader_open(file, NULL, &r, &err), 0);
    assert_string_equal(fx_reader_source(r), file);
    fx_reader_free(r);
    free(file);

    /* an unterminated quote ends the file with a fatal error naming the row */
    file = tu_write_file(dir, "q.csv", "a;b\n1;\"x\n2;3\n", 13);
    char *got = run_file_path(file, NULL, FX__CSV_BLOCK_MAX);
    assert_string_equal(got, "1:\"a\",\"b\"\nFATAL EPARSE 2:2\n");
    free(got);
    free(file);
    tu_rmrf(dir);
    free(dir);
}

static void test_file_progress_and_big(void **state)
{
    (void)state;
    /* records straddling many blocks, one over-long record skipped in the middle */
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "a,b,c\n");
    for (int i = 0; i < 20000; i++) {
        if (i == 7000) {
            fx_buf_puts(&b, "\"");
            for (int k = 0; k < 300000; k++)
                fx_buf_puts(&b, k % 100 ? "x" : "\n");
            fx_buf_puts(&b, "\",y\n");
        }
        fx_buf_printf(&b, "%d,\"q\"\"%d\",r\n", i, i * 7);
    }
    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.max_line_bytes = 100000;
    o.max_field_bytes = 100000;
    char *ref = run_push(b.data, b.len, &o, b.len, 0);
    strip_delim(ref);
    assert_non_null(strstr(ref, "BAD 1 line longer than 100000 bytes"));
    assert_non_null(strstr(ref, "\"19999\",\"q\\\"139993\",\"r\"\n"));
    static const size_t blocks[] = {997, FX__CSV_BLOCK_MAX};
    for (size_t k = 0; k < 2; k++) {
        char *got = run_file(b.data, b.len, &o, blocks[k]);
        assert_string_equal(got, ref);
        free(got);
    }
    free(ref);

    /* progress: bytes read so far against the file size */
    char *dir = tu_tmpdir();
    char *path = tu_write_file(dir, "p.csv", b.data, b.len);
    struct fx_reader *r;
    struct fx_err err;
    assert_int_equal(fx_csv_reader_open(path, &o, &r, &err), 0);
    long long done, total;
    struct fx_record rec;
    assert_int_equal(fx_reader_next(r, &rec, &err), 1);
    fx_reader_progress(r, &done, &total);
    assert_int_equal(total, (long long)b.len);
    assert_true(done > 0 && done <= FX__CSV_BLOCK_MAX);
    while (fx_reader_next(r, &rec, &err) == 1)
        ;
    fx_reader_progress(r, &done, &total);
    assert_int_equal(done, (long long)b.len);
    fx_reader_free(r);
    free(path);
    tu_rmrf(dir);
    free(dir);
    fx_buf_cleanup(&b);
}

/* Straightforward decoder as the reference for the vectorised validator. */
static size_t ref_utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned long cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

static void test_utf8_validator(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a",
        "abcdefgh",
        ";",
        "\xc3\xa9",
        "\xc3\xa3o",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xc2\x80",
        "\xdf\xbf",
        "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
        "\xc3",
        "\xa9",
        "\x80",
        "\xc0\xaf",
        "\xc1\xbf",
        "\xe0\x80\x80",
        "\xe0\x9f\xbf",
        "\xed\xa0\x80",
        "\xed\x9f\xbf",
        "\xf0\x8f\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xff",
        "\xfe",
        "\xe2\x82",
        "\xf0\x9f\x98",
        "0123456789abcdef",
    };
    const size_t np = sizeof(pieces) / sizeof(pieces[0]);
    unsigned seed = 12345;
    unsigned char buf[256];
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        size_t want = (seed >> 16) % 96;
        /* mostly valid text, sometimes one bad piece */
        int bad_ok = (seed >> 8) % 4 == 0;
        while (n < want) {
            seed = seed * 1103515245u + 12345u;
            size_t k = (seed >> 16) % np;
            if (!bad_ok && k >= 11 && k != 27)
                k = (seed >> 20) % 11;
            size_t l = strlen(pieces[k]);
            if (n + l > sizeof(buf))
                break;
            memcpy(buf + n, pieces[k], l);
            n += l;
        }
        size_t want_off = ref_utf8_check(buf, n);
        size_t got = fx__csv_utf8_check((const char *)buf, n);
        if (got != want_off) {
            fprintf(stderr, "utf8 check: got %zu, reference %zu, n %zu\n", got, want_off, n);
            fail();
        }
    }
    /* every single byte and every byte pair */
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            unsigned char two[2] = {(unsigned char)a, (unsigned char)b};
            assert_int_equal(fx__csv_utf8_check((const char *)two, 2), ref_utf8_check(two, 2));
        }
    }
}

static void test_parser_contract(void **state)
{
    (void)state;
    /* cells stay valid until the next call; a record is returned as soon as complete */
    struct fx_csv *p = fx_csv_new(NULL);
    struct fx_record rec;
    struct fx_err err;
    size_t used;
    const char *in = "h1;h2\n1;2\n3;4\n";
    assert_int_equal(fx_csv_parse(p, in, strlen(in), &used, &rec, &err), 1);
    assert_int_equal(used, 6);
    assert_int_equal(fx_csv_delimiter(p), ';');
    assert_int_equal(rec.ncells, 2);
    assert_string_equal(rec.cells[1].s, "h2");
    assert_int_equal(fx_csv_parse(p, in + 6, strlen(in) - 6, &used, &rec, &err), 1);
    assert_int_equal(used, 4);
    assert_int_equal(rec.row, 2);
    assert_int_equal(rec.bad, 0);
    assert_int_equal(fx_csv_finish(p, &rec, &err), 0);
    fx_csv_free(p);
    fx_csv_free(NULL);

    /* zero limits mean defaults */
    struct fx_reader_opts o;
    memset(&o, 0, sizeof(o));
    CHECK("a,b\n", &o, "1:\"a\",\"b\"\ndelim=44\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_quotes_and_newlines),
        cmocka_unit_test(test_line_ends_and_rows),
        cmocka_unit_test(test_lenient_quotes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_delimiter_detection),
        cmocka_unit_test(test_file_windows1252),
        cmocka_unit_test(test_file_bom_and_utf8),
        cmocka_unit_test(test_file_late_invalid_utf8),
        cmocka_unit_test(test_file_sniff_damaged_utf8),
        cmocka_unit_test(test_file_sniff_boundary),
        cmocka_unit_test(test_file_empty_and_header_only),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_progress_and_big),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_parser_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
