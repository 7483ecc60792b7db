/* SPDX-License-Identifier: MIT */
/*
 * JSON records push parser: a single object, arrays and NDJSON must give the same
 * records and errors whatever the chunk split (every split point, and chunks of 1, 2,
 * 3 and 7 bytes); plus the value rules (exact integers, shortest reals, escapes and
 * surrogate pairs, invalid UTF-8, duplicate keys, nesting flattened, arrays refused),
 * limits, line and column numbers, every fatal error, and the callbacks' stop values.
 *
 * Results are compared as text dumps, one line per event:
 *   "index@line: name=T\"text\" ..."   a record (T: E empty, S string, N number, B bool)
 *   "BAD index CODE column [field] reason"   a bad record
 *   "RC CODE row:column reason"   feed or finish returned non-zero
 */
#include "testutil.h"

#include "fluxo/jsonrec.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

struct sink {
    struct fx_buf out;
    size_t stop_at;  /* return 7 from the record callback at this index */
    size_t stop_bad; /* return 9 from the bad callback at this index */
    size_t last;
};

static int on_rec(void *ud, const struct fx_jsonrec *r)
{
    struct sink *k = ud;
    assert_true(r->index > k->last);
    k->last = r->index;
    fx_buf_printf(&k->out, "%zu@%ld:", r->index, r->line);
    for (size_t i = 0; i < r->n; i++) {
        const struct fx_cell *c = &r->cells[i];
        assert_non_null(r->names[i]);
        assert_non_null(c->s);
        assert_int_equal(c->s[c->len], '\0');
        assert_int_equal(fx__csv_utf8_check(c->s, c->len), c->len);
        assert_true(c->type <= FX_CELL_BOOL);
        assert_true((c->type == FX_CELL_EMPTY) == (c->len == 0));
        fx_buf_printf(&k->out, " %s=%c", r->names[i], "ESNB"[c->type]);
        fx_buf_json_str(&k->out, c->s, c->len);
    }
    fx_buf_putc(&k->out, '\n');
    return k->stop_at == r->index ? 7 : 0;
}

static int on_bad(void *ud, size_t index, const struct fx_err *e)
{
    struct sink *k = ud;
    assert_true(index > k->last);
    k->last = index;
    assert_int_equal(e->row, (long)index);
    assert_true(e->code < 0);
    assert_true(e->column > 0);
    assert_int_equal(fx__csv_utf8_check(e->reason, strlen(e->reason)), strlen(e->reason));
    fx_buf_printf(&k->out, "BAD %zu %s %d [%s] %s\n", index, fx_errname(e->code), e->column,
                  e->field, e->reason);
    return k->stop_bad == index ? 9 : 0;
}

static void dump_rc(struct sink *k, int rc, const struct fx_err *e)
{
    if (rc < 0)
        fx_buf_printf(&k->out, "RC %s %ld:%d %s\n", fx_errname(rc), e->row, e->column, e->reason);
    else
        fx_buf_printf(&k->out, "RC %d\n", rc);
}

/* Deferred NDJSON lines (fx_jsonrec_defer_lines): each one parsed at once by a
 * second parser with the same options and callbacks, which must give exactly
 * what the first parser gives by itself. */
static int defer_mode;
struct dsink {
    struct sink k; /* first: the record and bad callbacks take the sink */
    struct fx_jsonrec_parser *p2;
};
static int on_line(void *ud, const struct fx_jsonrec_line *ln)
{
    struct dsink *d = ud;
    struct fx_err err;
    fx_err_clear(&err);
    return fx_jsonrec_parse_line(d->p2, ln, &err);
}

/* Feed in[0..split) as one chunk, then the rest in chunks of step (0 = one chunk). */
static char *run(const char *in, size_t n, const struct fx_jsonrec_opts *o, size_t split,
                 size_t step, struct sink proto, int with_bad)
{
    struct dsink d = {.k = proto, .p2 = NULL};
    struct sink *kp = &d.k;
#define k (*kp)
    fx_buf_init(&k.out, 0);
    struct fx_jsonrec_parser *p = fx_jsonrec_new(o, on_rec, with_bad ? on_bad : NULL, &d);
    if (defer_mode) {
        d.p2 = fx_jsonrec_new(o, on_rec, with_bad ? on_bad : NULL, &d);
        fx_jsonrec_defer_lines(p, on_line);
    }
    struct fx_err err;
    int rc = fx_jsonrec_feed(p, in, split, &err);
    for (size_t at = split; at < n && rc == 0;) {
        size_t c = step && step < n - at ? step : n - at;
        rc = fx_jsonrec_feed(p, in + at, c, &err);
        at += c;
    }
    if (rc == 0)
        rc = fx_jsonrec_finish(p, &err);
    if (rc) {
        dump_rc(&k, rc, &err);
        /* sticky: later calls give the same answer */
        struct fx_err again;
        assert_int_equal(fx_jsonrec_feed(p, "{}", 2, &again), rc);
        assert_int_equal(fx_jsonrec_finish(p, &again), rc);
        if (rc < 0)
            assert_string_equal(again.reason, err.reason);
    } else {
        assert_int_equal(fx_jsonrec_finish(p, &err), 0);
        assert_int_equal(fx_jsonrec_feed(p, "{}", 2, &err), FX_EINVAL);
    }
    fx_jsonrec_free(p);
    fx_jsonrec_free(d.p2);
    return fx_buf_take(&k.out);
#undef k
}

static void check_full(const char *in, size_t n, const struct fx_jsonrec_opts *o, struct sink proto,
                       int with_bad, const char *expected)
{
    char *ref = run(in, n, o, n, 0, proto, with_bad);
    if (expected && strcmp(ref, expected) != 0) {
        fprintf(stderr, "input:\n%.*s\ngot:\n%s\nexpected:\n%s\n", (int)n, in, ref, expected);
        fail();
    }
    for (size_t i = 0; i <= n; i++) {
        char *got = run(in, n, o, i, 0, proto, with_bad);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "input:\n%.*s\nsplit at %zu:\n%s\nreference:\n%s\n", (int)n, in, i, got,
                    ref);
            fail();
        }
        free(got);
    }
    if (o && o->ndjson && with_bad && !defer_mode) {
        defer_mode = 1;
        char *got = run(in, n, o, n, 0, proto, with_bad);
        char *got2 = run(in, n, o, n / 2, 3, proto, with_bad);
        defer_mode = 0;
        if (strcmp(got, ref) != 0 || strcmp(got2, ref) != 0) {
            fprintf(stderr, "input:\n%.*s\ndeferred lines:\n%s\n%s\nreference:\n%s\n", (int)n, in,
                    got, got2, ref);
            fail();
        }
        free(got);
        free(got2);
    }
    static const size_t steps[] = {1, 2, 3, 7};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        char *got = run(in, n, o, 0, steps[s], proto, with_bad);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "input:\n%.*s\nchunks of %zu:\n%s\nreference:\n%s\n", (int)n, in,
                    steps[s], got, ref);
            fail();
        }
        free(got);
    }
    free(ref);
}

static const struct sink no_stop = {.stop_at = 0};

static struct fx_jsonrec_opts opts(int ndjson)
{
    struct fx_jsonrec_opts o;
    fx_jsonrec_opts_init(&o);
    o.ndjson = ndjson;
    return o;
}

static const struct fx_jsonrec_opts JSON_OPTS = {0, 1u << 20, 1024, 8};
static const struct fx_jsonrec_opts ND_OPTS = {1, 1u << 20, 1024, 8};

#define CHECK_O(in, o, expected) check_full((in), sizeof(in) - 1, (o), no_stop, 1, (expected))
#define CHECK(in, expected) CHECK_O(in, &JSON_OPTS, expected)
#define CHECK_ND(in, expected) CHECK_O(in, &ND_OPTS, expected)

/* ---- shapes ----------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct fx_jsonrec_opts o = opts(1);
    assert_int_equal(o.ndjson, 1);
    assert_int_equal(o.max_record_bytes, 1u << 20);
    assert_int_equal(o.max_fields, 1024);
    assert_int_equal(o.max_depth, 8);
    /* NULL options: JSON with the defaults */
    struct sink k = {.stop_at = 0};
    fx_buf_init(&k.out, 0);
    struct fx_jsonrec_parser *p = fx_jsonrec_new(NULL, on_rec, on_bad, &k);
    struct fx_err err;
    assert_int_equal(fx_jsonrec_feed(p, "{\"a\":1}", 7, &err), 0);
    assert_int_equal(fx_jsonrec_finish(p, &err), 0);
    assert_string_equal(k.out.data, "1@1: a=N\"1\"\n");
    fx_jsonrec_free(p);
    fx_buf_cleanup(&k.out);
    fx_jsonrec_free(NULL);
}

static void test_object(void **state)
{
    (void)state;
    CHECK("{\"id\":1,\"nome\":\"Ana\",\"ativo\":true,\"obs\":null,\"x\":\"\",\"f\":false}",
          "1@1: id=N\"1\" nome=S\"Ana\" ativo=B\"true\" obs=E\"\" x=E\"\" f=B\"false\"\n");
    /* blanks around, a line end inside */
    CHECK("\r\n  {\n\t\"a\" : \"b\" ,\n \"c\":2 }\n\n", "1@2: a=S\"b\" c=N\"2\"\n");
    CHECK("{}", "1@1:\n");
}

static void test_array(void **state)
{
    (void)state;
    CHECK("[\n {\"a\":1},\n {\"a\":2} ,{\"a\":3}\n]\n",
          "1@2: a=N\"1\"\n2@3: a=N\"2\"\n3@3: a=N\"3\"\n");
    CHECK("[{\"a\":\"}{\\\"][\"},{\"b\":\"\\\\\"}]", "1@1: a=S\"}{\\\"][\"\n2@1: b=S\"\\\\\"\n");
    CHECK("[]", "");
    CHECK(" [ \n ] \n", "");
    CHECK("[{}]", "1@1:\n");
}

static void test_ndjson(void **state)
{
    (void)state;
    /* CRLF, blank and whitespace-only lines, no final line end */
    CHECK_ND("{\"a\":1}\r\n\r\n  \t\n{\"a\":2}\r\n {\"a\":3}",
             "1@1: a=N\"1\"\n2@4: a=N\"2\"\n3@5: a=N\"3\"\n");
    CHECK_ND("{\"a\":1}\n{\"a\":2}\n\n", "1@1: a=N\"1\"\n2@2: a=N\"2\"\n");
    /* a bad line in the middle is reported; the others still come through */
    CHECK_ND("{\"a\":1}\n{\"a\":1 x}\n{\"a\":3}\n[1]\n7\n{\"a\":4} {\"a\":5}\n{\"a\":6}\n",
             "1@1: a=N\"1\"\n"
             "BAD 2 EPARSE 8 [] record 2 (line 2, column 8): unexpected 'x'\n"
             "3@3: a=N\"3\"\n"
             "BAD 4 EPARSE 1 [] record 4 (line 4, column 1): expected a JSON object, found an "
             "array\n"
             "BAD 5 EPARSE 1 [] record 5 (line 5, column 1): expected a JSON object, found a "
             "number\n"
             "BAD 6 EPARSE 9 [] record 6 (line 6, column 9): unexpected '{' after the end of "
             "the object (one object per line)\n"
             "7@7: a=N\"6\"\n");
    /* RFC 7464 json-seq: an RS before each text */
    CHECK_ND("\x1e{\"a\":1}\n\x1e{\"a\" 2}\n\x1e\n\x1e\x1e{\"a\":3}\n",
             "1@1: a=N\"1\"\n"
             "BAD 2 EPARSE 7 [] record 2 (line 2, column 7): ':' expected after the key, found "
             "a number\n"
             "3@4: a=N\"3\"\n");
    /* an unfinished last line */
    CHECK_ND("{\"a\":1}\n{\"a\":", "1@1: a=N\"1\"\nBAD 2 EPARSE 5 [] record 2 (line 2, column "
                                   "5): the line ends before the object is closed\n");
}

/* ---- values ---------------------------------------------------------------- */

static void test_numbers(void **state)
{
    (void)state;
    CHECK("{\"max\":9223372036854775807,\"min\":-9223372036854775808,\"big\":12345678900,"
          "\"z\":0,\"neg\":-17}",
          "1@1: max=N\"9223372036854775807\" min=N\"-9223372036854775808\" "
          "big=N\"12345678900\" z=N\"0\" neg=N\"-17\"\n");
    CHECK("{\"a\":3500.10,\"b\":1e3,\"c\":0.1,\"d\":0.30000000000000004,\"e\":1.5e-7,"
          "\"f\":-0.0,\"g\":2.5E+2,\"h\":1.0,\"i\":3500.0999999999999,\"j\":1e300}",
          "1@1: a=N\"3500.1\" b=N\"1000\" c=N\"0.1\" d=N\"0.30000000000000004\" "
          "e=N\"1.5e-07\" f=N\"-0\" g=N\"250\" h=N\"1\" i=N\"3500.1\" j=N\"1e+300\"\n");
    /* out of range: the record is refused, the next one read */
    CHECK_ND("{\"a\":9223372036854775808}\n{\"a\":1e400}\n{\"a\":1}\n",
             "BAD 1 EPARSE 6 [a] record 1 (line 1, column 6): field 'a': integer "
             "9223372036854775808 is out of range (64-bit integers: -9223372036854775808 to "
             "9223372036854775807)\n"
             "BAD 2 EPARSE 6 [a] record 2 (line 2, column 6): field 'a': number 1e400 is out of "
             "range\n"
             "3@3: a=N\"1\"\n");
}

static void test_strings(void **state)
{
    (void)state;
    CHECK("{\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"u\":\"\\u00e9\\u20AC\",\"s\":\"\\ud83d\\ude00\","
          "\"raw\":\"S\xc3\xa3o \xf0\x9f\x98\x80\"}",
          "1@1: e=S\"\\\"\\\\/\\u0008\\u000c\\n\\r\\t\" u=S\"\xc3\xa9\xe2\x82\xac\" "
          "s=S\"\xf0\x9f\x98\x80\" raw=S\"S\xc3\xa3o \xf0\x9f\x98\x80\"\n");
    /* unicode names */
    CHECK("{\"munic\xc3\xadpio\":\"S\xc3\xa3o Paulo\",\"\xe5\x90\x8d\xe5\x89\x8d\":\"x\"}",
          "1@1: munic\xc3\xadpio=S\"S\xc3\xa3o Paulo\" \xe5\x90\x8d\xe5\x89\x8d=S\"x\"\n");
    /* invalid UTF-8, lone surrogates, NUL and raw control characters are refused */
    CHECK_ND("{\"a\":\"\xff\"}\n{\"a\":\"\\ud800\"}\n{\"a\":\"\\u0000\"}\n{\"a\":\"x\ty\"}\n"
             "{\"\xc3\xa3\":\"\xc3\"}\n{\"ok\":1}\n",
             "BAD 1 EENCODING 7 [a] record 1 (line 1, column 7): field 'a': invalid UTF-8 "
             "(byte 0xFF)\n"
             "BAD 2 EPARSE 7 [a] record 2 (line 2, column 7): field 'a': \\ud800: a high "
             "surrogate escape without the low one after it\n"
             "BAD 3 EPARSE 7 [a] record 3 (line 3, column 7): field 'a': \\u0000: NUL is not "
             "allowed in text\n"
             "BAD 4 EPARSE 8 [] record 4 (line 4, column 8): byte 0x09 inside a string (control "
             "characters must be escaped)\n"
             "BAD 5 EENCODING 7 [\xc3\xa3] record 5 (line 5, column 7): field '\xc3\xa3': "
             "invalid UTF-8 (byte 0xC3)\n"
             "6@6: ok=N\"1\"\n");
}

static void test_duplicates(void **state)
{
    (void)state;
    CHECK_ND("{\"a\":1,\"a\":2}\n{\"n\":{\"x\":1,\"x\":1}}\n{\"a.b\":1,\"a\":{\"b\":2}}\n"
             "{\"a\":1,\"b\":2}\n",
             "BAD 1 EPARSE 8 [a] record 1 (line 1, column 8): duplicate key 'a'\n"
             "BAD 2 EPARSE 13 [n.x] record 2 (line 2, column 13): duplicate key 'x' in the "
             "object 'n'\n"
             "BAD 3 EPARSE 15 [a.b] record 3 (line 3, column 15): field 'a.b' appears twice "
             "once nested objects are flattened\n"
             "4@4: a=N\"1\" b=N\"2\"\n");
}

static void test_nested(void **state)
{
    (void)state;
    CHECK("{\"id\":1,\"cliente\":{\"nome\":\"Ana\",\"end\":{\"cidade\":\"SP\",\"uf\":null}},"
          "\"vazio\":{},\"v\":2.5}",
          "1@1: id=N\"1\" cliente.nome=S\"Ana\" cliente.end.cidade=S\"SP\" cliente.end.uf=E\"\" "
          "v=N\"2.5\"\n");
    /* only empty nested objects: a record without fields */
    CHECK("{\"a\":{},\"b\":{\"c\":{}}}", "1@1:\n");
    /* arrays are refused, at any depth, naming the field */
    CHECK("[{\"x\":[1,2]},{\"a\":{\"y\":[]}},{\"ok\":true}]",
          "BAD 1 ENOTSUP 7 [x] record 1 (line 1, column 7): field 'x': arrays are not "
          "supported\n"
          "BAD 2 ENOTSUP 24 [a.y] record 2 (line 1, column 24): field 'a.y': arrays are not "
          "supported\n"
          "3@1: ok=B\"true\"\n");
}

/* ---- limits ------------------------------------------------------------------- */

static void test_depth(void **state)
{
    (void)state;
    struct fx_jsonrec_opts o = opts(1);
    o.max_depth = 2;
    CHECK_O("{\"a\":{\"b\":1}}\n{\"a\":{\"b\":{\"c\":1}}}\n{\"c\":3}\n", &o,
            "1@1: a.b=N\"1\"\n"
            "BAD 2 ETOOBIG 11 [a.b] record 2 (line 2, column 11): field 'a.b': objects nested "
            "deeper than 2 levels (max_depth)\n"
            "3@3: c=N\"3\"\n");
    o.max_depth = 1;
    CHECK_O("{\"a\":{}}\n", &o,
            "BAD 1 ETOOBIG 6 [a] record 1 (line 1, column 6): field 'a': objects nested deeper "
            "than 1 levels (max_depth)\n");
    /* the default: 8 levels */
    CHECK_ND("{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":{\"8\":1}}}}}}}}\n"
             "{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":{\"8\":{\"9\":1}}}}}}}}}\n",
             "1@1: 1.2.3.4.5.6.7.8=N\"1\"\n"
             "BAD 2 ETOOBIG 41 [1.2.3.4.5.6.7.8] record 2 (line 2, column 41): field "
             "'1.2.3.4.5.6.7.8': objects nested deeper than 8 levels (max_depth)\n");
}

static void test_max_fields(void **state)
{
    (void)state;
    struct fx_jsonrec_opts o = opts(1);
    o.max_fields = 3;
    CHECK_O("{\"a\":1,\"b\":2,\"c\":3}\n{\"a\":1,\"b\":2,\"c\":3,\"d\":4}\n"
            "{\"a\":1,\"n\":{\"b\":2,\"c\":3}}\n{\"a\":{\"b\":{\"c\":1,\"d\":2}},\"e\":{\"f\":3,"
            "\"g\":4}}\n",
            &o,
            "1@1: a=N\"1\" b=N\"2\" c=N\"3\"\n"
            "BAD 2 ETOOBIG 20 [] record 2 (line 2, column 20): more than 3 fields "
            "(max_fields)\n"
            "3@3: a=N\"1\" n.b=N\"2\" n.c=N\"3\"\n"
            "BAD 4 ETOOBIG 37 [] record 4 (line 4, column 37): more than 3 fields "
            "(max_fields)\n");
    /* many fields with the default: the cell arrays grow */
    struct fx_buf in, want;
    fx_buf_init(&in, 0);
    fx_buf_init(&want, 0);
    fx_buf_puts(&in, "{");
    fx_buf_puts(&want, "1@1:");
    for (int i = 0; i < 1024; i++) {
        fx_buf_printf(&in, "%s\"k%d\":%d", i ? "," : "", i, i);
        fx_buf_printf(&want, " k%d=N\"%d\"", i, i);
    }
    fx_buf_puts(&in, "}");
    fx_buf_puts(&want, "\n");
    char *got = run(in.data, in.len, &JSON_OPTS, in.len, 0, no_stop, 1);
    assert_string_equal(got, want.data);
    free(got);
    fx_buf_cleanup(&in);
    fx_buf_cleanup(&want);
}

static void test_record_size(void **state)
{
    (void)state;
    struct fx_jsonrec_opts o = opts(1);
    o.max_record_bytes = 10;
    /* 10 bytes fit (also before a CRLF); 11 do not; blank lines never count */
    CHECK_O("{\"a\":1234}\n{\"a\":1234}\r\n{\"a\":12345}\n                    \n"
            "{\"b\":1}\n{\"a\":1234} \r\n   {\"a\":12345678}\n{\"c\":1}",
            &o,
            "1@1: a=N\"1234\"\n"
            "2@2: a=N\"1234\"\n"
            "BAD 3 ETOOBIG 1 [] record 3 (line 3, column 1): line longer than 10 bytes "
            "(max_record_bytes)\n"
            "4@5: b=N\"1\"\n"
            "BAD 5 ETOOBIG 1 [] record 5 (line 6, column 1): line longer than 10 bytes "
            "(max_record_bytes)\n"
            "BAD 6 ETOOBIG 1 [] record 6 (line 7, column 1): line longer than 10 bytes "
            "(max_record_bytes)\n"
            "7@8: c=N\"1\"\n");
    /* the last line, too long, without a line end */
    CHECK_O("{\"a\":1}\n{\"a\":1234567}", &o,
            "1@1: a=N\"1\"\nBAD 2 ETOOBIG 1 [] record 2 (line 2, column 1): line longer than 10 "
            "bytes (max_record_bytes)\n");
    /* a JSON array cannot resynchronise: fatal */
    o.ndjson = 0;
    CHECK_O("[{\"a\":1234},\n {\"a\":12345}]", &o,
            "1@1: a=N\"1234\"\n"
            "RC ETOOBIG 2:2 record 2 is longer than 10 bytes (max_record_bytes)\n");
    CHECK_O("  {\"a\":123456789}", &o,
            "RC ETOOBIG 1:3 record 1 is longer than 10 bytes (max_record_bytes)\n");
    /* an unterminated record longer than the cap: the cap speaks first */
    CHECK_O("[{\"a\":\"12345678", &o,
            "RC ETOOBIG 1:2 record 1 is longer than 10 bytes (max_record_bytes)\n");
}

/* ---- errors ---------------------------------------------------------------- */

static void test_empty(void **state)
{
    (void)state;
    const char *msg = "RC EEMPTY 0:0 empty body: expected a JSON object, an array of objects or "
                      "NDJSON\n";
    CHECK("", msg);
    CHECK(" \r\n\t ", msg);
    CHECK("\xef\xbb\xbf", msg);
    CHECK_ND("", msg);
    CHECK_ND("\n\r\n  \n", msg);
    CHECK_ND("\xef\xbb\xbf\n", msg);
}

static void test_fatal(void **state)
{
    (void)state;
    /* err->row and err->column hold the position: the reason does not repeat it */
    CHECK("5", "RC EPARSE 1:1 expected a JSON object or an array of objects, found '5'\n");
    CHECK("\n  \"x\"", "RC EPARSE 2:3 expected a JSON object or an array of objects, found '\"'\n");
    CHECK("\x01", "RC EPARSE 1:1 expected a JSON object or an array of objects, found byte 0x01\n");
    /* array elements that are not objects */
    CHECK("[1]", "RC EPARSE 1:2 array element 1 is not an object (found '1')\n");
    CHECK("[{\"a\":1},\n [2]]",
          "1@1: a=N\"1\"\nRC EPARSE 2:2 array element 2 is not an object (found '[')\n");
    CHECK("[{},]", "1@1:\nRC EPARSE 1:5 array element 2 is not an object (found ']')\n");
    CHECK("[{} {}]", "1@1:\nRC EPARSE 1:5 expected ',' or ']' after array element 1, found '{'\n");
    /* garbage after the end */
    CHECK("[{}] x", "1@1:\nRC EPARSE 1:6 unexpected 'x' after the closing ']' of the array\n");
    CHECK("[{}]]", "1@1:\nRC EPARSE 1:5 unexpected ']' after the closing ']' of the array\n");
    CHECK("{\"a\":1} x",
          "1@1: a=N\"1\"\nRC EPARSE 1:9 unexpected 'x' after the closing '}' of the JSON object\n");
    CHECK("{\"a\":1}\n{\"a\":2}\n",
          "1@1: a=N\"1\"\nRC EPARSE 2:1 another object after the JSON object (one object per "
          "line is NDJSON: send it as application/x-ndjson)\n");
    /* unterminated: found at the end of the body; the reason says where the opening was */
    CHECK("[{\"a\":1}", "1@1: a=N\"1\"\nRC EPARSE 1:8 the body ends before the closing ']' of "
                        "the array that starts at line 1, column 1\n");
    CHECK("\n [{\"a\":1},", "1@2: a=N\"1\"\nRC EPARSE 2:10 the body ends before the closing ']' "
                            "of the array that starts at line 2, column 2\n");
    CHECK("[", "RC EPARSE 1:1 the body ends before the closing ']' of the array that starts at "
               "line 1, column 1\n");
    CHECK("[{\"a\":\"}", "RC EPARSE 1:8 the body ends inside array element 1, which starts at "
                         "line 1, column 2: the object is not closed\n");
    CHECK("{\"a\":{\"b\":1}", "RC EPARSE 1:12 the body ends inside the JSON object that starts "
                              "at line 1, column 1: the object is not closed\n");
    /* a partial BOM is not a BOM */
    CHECK("\xef\xbb{}",
          "RC EPARSE 1:1 expected a JSON object or an array of objects, found byte 0xEF\n");
    CHECK("\xef", "RC EPARSE 1:1 expected a JSON object or an array of objects, found byte 0xEF\n");
}

static void test_array_bad_elements(void **state)
{
    (void)state;
    /* a malformed element is a bad record; the scanner finds the next one */
    CHECK("[{\"a\":1},{\"a\":1 x},\n {\"a\":},{\"a\":1,\"a\":2},{\"b\":\"\xff\"},{\"a\":3}]",
          "1@1: a=N\"1\"\n"
          "BAD 2 EPARSE 17 [] record 2 (line 1, column 17): unexpected 'x'\n"
          "BAD 3 EPARSE 7 [] record 3 (line 2, column 7): a value expected, found '}'\n"
          "BAD 4 EPARSE 16 [a] record 4 (line 2, column 16): duplicate key 'a'\n"
          "BAD 5 EENCODING 29 [b] record 5 (line 2, column 29): field 'b': invalid UTF-8 (byte "
          "0xFF)\n"
          "6@2: a=N\"3\"\n");
    /* an element spanning lines: jansson's position is translated to the body's */
    CHECK("[\n  {\"a\":1,\n   \"b\" 2}]",
          "BAD 1 EPARSE 8 [] record 1 (line 3, column 8): ':' expected after the key, found a "
          "number\n");
    /* a bracket mismatch ends the element early; the rest is then out of place */
    CHECK("[{\"a\":1]},{}]",
          "BAD 1 EPARSE 8 [] record 1 (line 1, column 8): ',' or '}' expected after the value, "
          "found ']'\n"
          "RC EPARSE 1:9 expected ',' or ']' after array element 1, found '}'\n");
}

static void test_bom(void **state)
{
    (void)state;
    CHECK("\xef\xbb\xbf{\"a\":1}", "1@1: a=N\"1\"\n");
    CHECK("\xef\xbb\xbf[{\"a\":1 x}]",
          "BAD 1 EPARSE 9 [] record 1 (line 1, column 9): unexpected 'x'\n");
    CHECK_ND("\xef\xbb\xbf{\"a\":1}\n{\"b\":2}\n", "1@1: a=N\"1\"\n2@2: b=N\"2\"\n");
    /* a partial BOM in NDJSON is part of the line (and invalid UTF-8 there) */
    CHECK_ND("\xef\xbb{\"a\":1}\n{\"b\":2}\n",
             "BAD 1 EENCODING 1 [] record 1 (line 1, column 1): invalid UTF-8 (byte 0xEF)\n"
             "2@2: b=N\"2\"\n");
    CHECK_ND("\xef",
             "BAD 1 EENCODING 1 [] record 1 (line 1, column 1): invalid UTF-8 (byte 0xEF)\n");
}

/* ---- callbacks ----------------------------------------------------------------- */

static void test_stop(void **state)
{
    (void)state;
    static const char nd[] = "{\"a\":1}\n{\"a\":2}\n{\"a\":x}\n{\"a\":4}\n";
    struct sink k = {.stop_at = 2};
    check_full(nd, sizeof(nd) - 1, &ND_OPTS, k, 1, "1@1: a=N\"1\"\n2@2: a=N\"2\"\nRC 7\n");
    k = (struct sink){.stop_bad = 3};
    check_full(nd, sizeof(nd) - 1, &ND_OPTS, k, 1,
               "1@1: a=N\"1\"\n2@2: a=N\"2\"\nBAD 3 EPARSE 6 [] record 3 (line 3, column 6): "
               "unexpected 'x'\nRC 9\n");
    static const char arr[] = "[{\"a\":1},{\"a\":2},{\"a\":3}]";
    k = (struct sink){.stop_at = 2};
    check_full(arr, sizeof(arr) - 1, &JSON_OPTS, k, 1, "1@1: a=N\"1\"\n2@1: a=N\"2\"\nRC 7\n");
    /* a stop at the last record of the body is still returned by feed */
    k = (struct sink){.stop_at = 3};
    check_full(arr, sizeof(arr) - 1, &JSON_OPTS, k, 1,
               "1@1: a=N\"1\"\n2@1: a=N\"2\"\n3@1: a=N\"3\"\nRC 7\n");
    /* without a bad-record callback the first bad record is fatal */
    check_full(nd, sizeof(nd) - 1, &ND_OPTS, no_stop, 0,
               "1@1: a=N\"1\"\n2@2: a=N\"2\"\nRC EPARSE 3:6 record 3 (line 3, column 6): "
               "unexpected 'x'\n");
}

static void test_error_fields(void **state)
{
    (void)state;
    struct sink k = {.stop_at = 0};
    fx_buf_init(&k.out, 0);
    struct fx_jsonrec_parser *p = fx_jsonrec_new(&JSON_OPTS, on_rec, on_bad, &k);
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_jsonrec_feed(p, "[{\"a\":1},\n {\"x\":[]}", 19, &err), 0);
    assert_int_equal(fx_jsonrec_feed(p, ", 2]", 4, &err), FX_EPARSE);
    assert_int_equal(err.code, FX_EPARSE);
    assert_int_equal(err.row, 2);
    assert_int_equal(err.column, 12);
    assert_string_equal(err.reason, "array element 3 is not an object (found '2')");
    assert_string_equal(k.out.data,
                        "1@1: a=N\"1\"\nBAD 2 ENOTSUP 7 [x] record 2 (line 2, column 7): field "
                        "'x': arrays are not supported\n");
    fx_jsonrec_free(p);
    fx_buf_cleanup(&k.out);
}

/* ---- yajl-era checks ------------------------------------------------------------ */

static void test_more_numbers(void **state)
{
    (void)state;
    /* reals: written from their digits when a double holds them, else via strtod */
    CHECK("{\"a\":1e-5,\"b\":0.0001,\"c\":123456789012345,\"d\":1e15,\"e\":100e-2,\"f\":1E2,"
          "\"g\":-0,\"h\":0e5,\"i\":-1e-400,\"j\":1e-400,\"k\":0.000001,"
          "\"l\":123456789012345.6,\"m\":-12.5e1,\"n\":0.00012300,\"o\":1e-307,\"p\":1e308}",
          "1@1: a=N\"1e-05\" b=N\"0.0001\" c=N\"123456789012345\" d=N\"1e+15\" e=N\"1\" "
          "f=N\"100\" g=N\"0\" h=N\"0\" i=N\"-0\" j=N\"0\" k=N\"1e-06\" "
          "l=N\"123456789012345.6\" m=N\"-125\" n=N\"0.000123\" o=N\"1e-307\" p=N\"1e+308\"\n");
    /* integers keep their digits; past 64 bits they are refused */
    CHECK_ND("{\"a\":-9223372036854775809}\n{\"a\":123456789012345678901234567890}\n"
             "{\"a\":-1e999999999999}\n",
             "BAD 1 EPARSE 6 [a] record 1 (line 1, column 6): field 'a': integer "
             "-9223372036854775809 is out of range (64-bit integers: -9223372036854775808 to "
             "9223372036854775807)\n"
             "BAD 2 EPARSE 6 [a] record 2 (line 2, column 6): field 'a': integer "
             "123456789012345678901234567890 is out of range (64-bit integers: "
             "-9223372036854775808 to 9223372036854775807)\n"
             "BAD 3 EPARSE 6 [a] record 3 (line 3, column 6): field 'a': number -1e999999999999 "
             "is out of range\n");
}

/* What the jansson parser gave for a number: the reference for the digit-based path. */
static void number_reference(const char *num, char *out, size_t cap)
{
    if (!strpbrk(num, ".eE")) {
        long long v = strtoll(num, NULL, 10);
        snprintf(out, cap, "%lld", v);
        return;
    }
    double d = strtod(num, NULL);
    if (d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
        snprintf(out, cap, "%lld", (long long)d);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
}

static void test_numbers_random(void **state)
{
    (void)state;
    /* many random numbers, as NDJSON, against the strtod and printf reference */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    struct fx_buf in, want;
    fx_buf_init(&in, 0);
    fx_buf_init(&want, 0);
    size_t line = 0;
    for (int i = 0; i < 20000; i++) {
        char num[64], ref[64];
        size_t o = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x & 1)
            num[o++] = '-';
        int nd = 1 + (int)((x >> 1) % 19), dot = (int)((x >> 8) % (unsigned)(nd + 3));
        for (int j = 0; j < nd; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* no leading zero before more digits (JSON); zeros inside and at the end */
            num[o++] = (char)('0' + (j == 0 && dot != 1 ? 1 + x % 9 : x % 10));
            if (j + 1 == dot && j + 1 < nd)
                num[o++] = '.';
        }
        if ((x >> 20) % 3 == 0)
            o += (size_t)snprintf(num + o, sizeof(num) - o, "e%d", (int)((x >> 24) % 640) - 320);
        num[o] = '\0';
        if (isinf(strtod(num, NULL)) || (!strpbrk(num, ".eE") && nd > 18))
            continue; /* out of range: test_numbers' business */
        number_reference(num, ref, sizeof(ref));
        line++;
        fx_buf_printf(&in, "{\"v\":%s}\n", num);
        fx_buf_printf(&want, "%zu@%zu: v=N\"%s\"\n", line, line, ref);
    }
    char *got = run(in.data, in.len, &ND_OPTS, in.len, 0, no_stop, 1);
    if (strcmp(got, want.data) != 0) {
        const char *g = got, *w = want.data;
        while (*g && *g == *w)
            g++, w++;
        while (g > got && g[-1] != '\n')
            g--, w--;
        fprintf(stderr, "got:      %.*s\nexpected: %.*s\n", (int)strcspn(g, "\n"), g,
                (int)strcspn(w, "\n"), w);
        fail();
    }
    free(got);
    fx_buf_cleanup(&in);
    fx_buf_cleanup(&want);
}

static void test_escapes(void **state)
{
    (void)state;
    /* yajl decodes bad escapes to something: the raw text is checked instead */
    CHECK_ND("{\"a\":\"\\ud800\\u0041\"}\n{\"a\":\"\\udc00x\"}\n{\"a\":\"x\\ud800\"}\n"
             "{\"k\\u0000\":1}\n{\"S\\u00e3o\":\"Jo\\u00e3o \\\"J\\\"\"}\n"
             "{\"a\":\"\\ud83d\\ude00\\\\ud800\\/\"}\n{\"\\ud83d\":1}\n",
             "BAD 1 EPARSE 7 [a] record 1 (line 1, column 7): field 'a': \\ud800: a high "
             "surrogate escape without the low one after it\n"
             "BAD 2 EPARSE 7 [a] record 2 (line 2, column 7): field 'a': \\udc00: a low "
             "surrogate escape without the high one before it\n"
             "BAD 3 EPARSE 8 [a] record 3 (line 3, column 8): field 'a': \\ud800: a high "
             "surrogate escape without the low one after it\n"
             "BAD 4 EPARSE 4 [] record 4 (line 4, column 4): in a key: \\u0000: NUL is not "
             "allowed in text\n"
             "5@5: S\xc3\xa3o=S\"Jo\xc3\xa3o \\\"J\\\"\"\n"
             "6@6: a=S\"\xf0\x9f\x98\x80\\\\ud800/\"\n"
             "BAD 7 EPARSE 3 [] record 7 (line 7, column 3): in a key: \\ud83d: a high "
             "surrogate escape without the low one after it\n");
    /* overlong forms and encoded surrogates, which yajl's own check lets through */
    CHECK_ND("{\"a\":\"\xc0\x80\"}\n{\"a\":\"\xed\xa0\x80\"}\n{\"a\":\"\xf4\x90\x80\x80\"}\n",
             "BAD 1 EENCODING 7 [a] record 1 (line 1, column 7): field 'a': invalid UTF-8 "
             "(byte 0xC0)\n"
             "BAD 2 EENCODING 7 [a] record 2 (line 2, column 7): field 'a': invalid UTF-8 "
             "(byte 0xED)\n"
             "BAD 3 EENCODING 7 [a] record 3 (line 3, column 7): field 'a': invalid UTF-8 "
             "(byte 0xF4)\n");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    /* every kind of error yajl finds, worded, and the next line still read (a new
     * yajl handle after each) */
    CHECK_ND("{\"a\":tru}\n{\"a\":-}\n{\"a\":1.}\n{\"a\":1e}\n{\"a\":\"\\q\"}\n"
             "{\"a\":\"\\u12x4\"}\n{1:2}\n{\"a\":1,}\n{\"a\" \"b\"}\n{\"a\":1 \"bc\":2}\n"
             "/*x*/{}\n{\xc3\xa9:1}\n{\"a\":1 true}\n{\"a\":\"x\n{\"a\":{\"b\":1}\n{\"ok\":1}\n",
             "BAD 1 EPARSE 9 [] record 1 (line 1, column 9): invalid literal (true, false or "
             "null expected), found '}'\n"
             "BAD 2 EPARSE 7 [] record 2 (line 2, column 7): malformed number: a digit expected "
             "after '-', found '}'\n"
             "BAD 3 EPARSE 8 [] record 3 (line 3, column 8): malformed number: a digit expected "
             "after '.', found '}'\n"
             "BAD 4 EPARSE 8 [] record 4 (line 4, column 8): malformed number: a digit expected "
             "in the exponent, found '}'\n"
             "BAD 5 EPARSE 8 [] record 5 (line 5, column 8): invalid escape in a string: '\\' "
             "followed by 'q'\n"
             "BAD 6 EPARSE 11 [] record 6 (line 6, column 11): invalid \\u escape in a string: "
             "4 hex digits expected, found 'x'\n"
             "BAD 7 EPARSE 2 [] record 7 (line 7, column 2): a key (a string in double quotes) "
             "expected, found a number\n"
             "BAD 8 EPARSE 8 [] record 8 (line 8, column 8): a key (a string in double quotes) "
             "expected, found '}'\n"
             "BAD 9 EPARSE 6 [] record 9 (line 9, column 6): ':' expected after the key, found "
             "a string\n"
             "BAD 10 EPARSE 8 [] record 10 (line 10, column 8): ',' or '}' expected after the "
             "value, found a string\n"
             "BAD 11 EPARSE 1 [] record 11 (line 11, column 1): comments are not allowed in "
             "JSON (found '/')\n"
             "BAD 12 EPARSE 2 [] record 12 (line 12, column 2): unexpected '\xc3\xa9'\n"
             "BAD 13 EPARSE 8 [] record 13 (line 13, column 8): ',' or '}' expected after the "
             "value, found 'true'\n"
             "BAD 14 EPARSE 7 [] record 14 (line 14, column 7): the line ends before the "
             "object is closed\n"
             "BAD 15 EPARSE 12 [] record 15 (line 15, column 12): the line ends before the "
             "object is closed\n"
             "16@16: ok=N\"1\"\n");
    /* what follows the object on its line, and whitespace JSON does not have */
    CHECK_ND("{\"a\":\f1}\n{\"a\":1}\v\n{\"a\":1} 7\n{\"a\":1} \"x\n{\"a\":1}}\n{\"a\":1} [\n"
             "\"x\"\n{\"a\":1}\n",
             "BAD 1 EPARSE 6 [] record 1 (line 1, column 6): byte 0x0C is not JSON whitespace "
             "(space, tab, CR and LF are)\n"
             "BAD 2 EPARSE 8 [] record 2 (line 2, column 8): unexpected byte 0x0B after the end "
             "of the object (one object per line)\n"
             "BAD 3 EPARSE 9 [] record 3 (line 3, column 9): unexpected '7' after the end of "
             "the object (one object per line)\n"
             "BAD 4 EPARSE 9 [] record 4 (line 4, column 9): unexpected '\"' after the end of "
             "the object (one object per line)\n"
             "BAD 5 EPARSE 8 [] record 5 (line 5, column 8): unexpected '}' after the end of "
             "the object (one object per line)\n"
             "BAD 6 EPARSE 9 [] record 6 (line 6, column 9): unexpected '[' after the end of "
             "the object (one object per line)\n"
             "BAD 7 EPARSE 1 [] record 7 (line 7, column 1): expected a JSON object, found a "
             "string\n"
             "8@8: a=N\"1\"\n");
}

static void test_keys(void **state)
{
    (void)state;
    /* the same key in two objects is fine; twice in one object is not; flattened names
     * must not collide, but an object's name may be a field's prefix */
    CHECK_ND("{\"a\":{\"x\":1},\"b\":{\"x\":1}}\n{\"a\":{\"x\":1},\"a\":{\"y\":2}}\n"
             "{\"a.b\":{\"c\":1},\"a\":{\"b\":{\"d\":2}}}\n{\"a\":{},\"a\":{}}\n"
             "{\"a\":{\"b\":1},\"a.b\":2}\n{\"a\":{\"b\":{}},\"a.b\":2}\n",
             "1@1: a.x=N\"1\" b.x=N\"1\"\n"
             "BAD 2 EPARSE 14 [a] record 2 (line 2, column 14): duplicate key 'a'\n"
             "3@3: a.b.c=N\"1\" a.b.d=N\"2\"\n"
             "BAD 4 EPARSE 9 [a] record 4 (line 4, column 9): duplicate key 'a'\n"
             "BAD 5 EPARSE 14 [a.b] record 5 (line 5, column 14): field 'a.b' appears twice "
             "once nested objects are flattened\n"
             "6@6: a.b=N\"2\"\n");
    /* an empty key is a name like any other, also as the outer name */
    CHECK("{\"\":1,\"x\":{\"\":2},\"\\u0000x\":0}",
          "BAD 1 EPARSE 19 [] record 1 (line 1, column 19): in a key: \\u0000: NUL is not "
          "allowed in text\n");
    CHECK("[{\"\":{\"b\":1},\"b\":2},{\"\":{\"x\":1,\"x\":2}}]",
          "1@1: .b=N\"1\" b=N\"2\"\n"
          "BAD 2 EPARSE 32 [.x] record 2 (line 1, column 32): duplicate key 'x' in the object "
          "''\n");
    /* many keys: the hash set grows */
    struct fx_buf in, want;
    fx_buf_init(&in, 0);
    fx_buf_init(&want, 0);
    fx_buf_puts(&in, "{");
    fx_buf_puts(&want, "1@1:");
    for (int i = 0; i < 300; i++) {
        fx_buf_printf(&in, "%s\"o%d\":{\"k\":%d}", i ? "," : "", i, i);
        fx_buf_printf(&want, " o%d.k=N\"%d\"", i, i);
    }
    fx_buf_puts(&in, ",\"o7\":1}");
    fx_buf_puts(&want, "\n");
    char *got = run(in.data, in.len, &JSON_OPTS, in.len, 0, no_stop, 1);
    assert_non_null(strstr(got, "duplicate key 'o7'"));
    free(got);
    in.len -= 8;
    fx_buf_puts(&in, "}");
    got = run(in.data, in.len, &JSON_OPTS, in.len, 0, no_stop, 1);
    assert_string_equal(got, want.data);
    free(got);
    fx_buf_cleanup(&in);
    fx_buf_cleanup(&want);
}

static void test_long_names(void **state)
{
    (void)state;
    /* names in messages are cut (on a character boundary); reasons stay valid UTF-8 */
    struct fx_buf in;
    fx_buf_init(&in, 0);
    fx_buf_puts(&in, "{\"");
    for (int i = 0; i < 300; i++)
        fx_buf_puts(&in, "\xc3\xa9");
    fx_buf_puts(&in, "\":[1]}\n");
    char *got = run(in.data, in.len, &ND_OPTS, in.len, 0, no_stop, 1);
    assert_non_null(strstr(got, "BAD 1 ENOTSUP 305 ["));
    assert_non_null(strstr(got, "...': arrays are not supported\n"));
    free(got);
    /* flattening repeats the outer names: capped at 8 x max_record_bytes */
    struct fx_jsonrec_opts o = opts(1);
    o.max_record_bytes = 1000;
    fx_buf_reset(&in);
    fx_buf_puts(&in, "{\"");
    for (int i = 0; i < 500; i++)
        fx_buf_putc(&in, 'k');
    fx_buf_puts(&in, "\":{");
    for (int i = 0; i < 70; i++)
        fx_buf_printf(&in, "%s\"%c%c\":1", i ? "," : "", 'a' + i / 26, 'a' + i % 26);
    fx_buf_puts(&in, "}}\n{\"ok\":1}\n");
    assert_true(in.len < 1000 + 11);
    got = run(in.data, in.len, &o, in.len, 0, no_stop, 1);
    assert_non_null(strstr(got, "BAD 1 ETOOBIG"));
    assert_non_null(strstr(got, "take more than 12096 bytes once flattened"));
    assert_non_null(strstr(got, "2@2: ok=N\"1\"\n"));
    free(got);
    fx_buf_cleanup(&in);
}

static void test_long_bodies(void **state)
{
    (void)state;
    /* many records through small chunks: memory stays at one record */
    struct fx_buf in;
    fx_buf_init(&in, 0);
    fx_buf_puts(&in, "[");
    for (int i = 0; i < 2000; i++)
        fx_buf_printf(&in, "%s{\"i\":%d,\"s\":\"%0*d\"}", i ? ",\n" : "", i, i % 50, 0);
    fx_buf_puts(&in, "]");
    struct fx_jsonrec_opts o = opts(0);
    o.max_record_bytes = 80;
    for (size_t step = 1; step < 300; step += 37) {
        char *got = run(in.data, in.len, &o, 0, step, no_stop, 1);
        size_t lines = 0;
        for (char *s = got; (s = strchr(s, '\n')); s++)
            lines++;
        assert_int_equal(lines, 2000);
        assert_null(strstr(got, "BAD"));
        assert_non_null(strstr(got, "2000@2000: i=N\"1999\""));
        free(got);
    }
    fx_buf_cleanup(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_object),
        cmocka_unit_test(test_array),        cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_strings),
        cmocka_unit_test(test_duplicates),   cmocka_unit_test(test_nested),
        cmocka_unit_test(test_depth),        cmocka_unit_test(test_max_fields),
        cmocka_unit_test(test_record_size),  cmocka_unit_test(test_empty),
        cmocka_unit_test(test_fatal),        cmocka_unit_test(test_array_bad_elements),
        cmocka_unit_test(test_bom),          cmocka_unit_test(test_stop),
        cmocka_unit_test(test_error_fields), cmocka_unit_test(test_long_bodies),
        cmocka_unit_test(test_more_numbers), cmocka_unit_test(test_numbers_random),
        cmocka_unit_test(test_escapes),      cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_keys),         cmocka_unit_test(test_long_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
