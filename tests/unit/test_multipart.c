/* SPDX-License-Identifier: MIT */
/*
 * multipart/form-data push parser: real bodies (a curl -F upload captured byte for
 * byte, a browser-style form with a preamble and an epilogue, LF-only bodies) must give
 * the same parts whatever the chunk split (every split point, and chunks of 1, 2, 3 and
 * 7 bytes); plus parameters (quoted, escaped, filename* preferred, paths stripped),
 * boundaries inside data, the Content-Type boundary parser, limits, every error, the
 * callbacks' stop values, and that data streams out holding back no more than the
 * delimiter.
 *
 * Results are compared as text dumps, one line per event:
 *   "BEGIN name|filename|content-type" (NULL shown as -), "END \"data\"" with the part's
 *   data as a JSON string, "RC CODE part reason" when feed or finish returns non-zero.
 */
#include "testutil.h"

#include "fluxo/mem.h"
#include "fluxo/multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

struct sink {
    struct fx_buf out;
    struct fx_buf part; /* data of the current part */
    int in_part;
    int stop_begin, stop_data, stop_end; /* stop at this (1-based) part */
    int nbegin, nend;
};

static int on_begin(void *ud, const struct fx_multipart_part *p)
{
    struct sink *k = ud;
    assert_false(k->in_part);
    assert_non_null(p->name);
    k->in_part = 1;
    k->nbegin++;
    fx_buf_reset(&k->part);
    fx_buf_printf(&k->out, "BEGIN %s|%s|%s\n", p->name, p->filename ? p->filename : "-",
                  p->content_type ? p->content_type : "-");
    return k->stop_begin == k->nbegin ? 5 : 0;
}

static int on_data(void *ud, const char *d, size_t n)
{
    struct sink *k = ud;
    assert_true(k->in_part);
    assert_true(n > 0);
    fx_buf_append(&k->part, d, n);
    return k->stop_data == k->nbegin ? 6 : 0;
}

static int on_end(void *ud)
{
    struct sink *k = ud;
    assert_true(k->in_part);
    k->in_part = 0;
    k->nend++;
    fx_buf_puts(&k->out, "END ");
    fx_buf_json_str(&k->out, k->part.data ? k->part.data : "", k->part.len);
    fx_buf_putc(&k->out, '\n');
    return k->stop_end == k->nend ? 8 : 0;
}

static const struct fx_multipart_opts DEF = {8u << 10, 16};

/* Feed in[0..split) as one chunk, then the rest in chunks of step (0 = one chunk). */
static char *run(const char *boundary, const char *in, size_t n, const struct fx_multipart_opts *o,
                 size_t split, size_t step, struct sink proto)
{
    struct sink k = proto;
    fx_buf_init(&k.out, 0);
    fx_buf_init(&k.part, 0);
    fx_buf_puts(&k.out, "");
    struct fx_multipart *m = fx_multipart_new(boundary, o, on_begin, on_data, on_end, &k);
    assert_non_null(m);
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_multipart_feed(m, in, split, &err);
    for (size_t at = split; at < n && rc == 0;) {
        size_t c = step && step < n - at ? step : n - at;
        rc = fx_multipart_feed(m, in + at, c, &err);
        at += c;
    }
    if (rc == 0)
        rc = fx_multipart_finish(m, &err);
    if (rc < 0)
        fx_buf_printf(&k.out, "RC %s %ld %s\n", fx_errname(rc), err.row, err.reason);
    else if (rc)
        fx_buf_printf(&k.out, "RC %d\n", rc);
    if (rc) { /* sticky */
        struct fx_err again;
        assert_int_equal(fx_multipart_feed(m, "x", 1, &again), rc);
        assert_int_equal(fx_multipart_finish(m, &again), rc);
        if (rc < 0)
            assert_string_equal(again.reason, err.reason);
    } else {
        assert_int_equal(fx_multipart_finish(m, &err), 0);
        assert_int_equal(k.nbegin, k.nend);
    }
    fx_multipart_free(m);
    fx_buf_cleanup(&k.part);
    return fx_buf_take(&k.out);
}

static void check_full(const char *boundary, const char *in, size_t n,
                       const struct fx_multipart_opts *o, struct sink proto, const char *expected)
{
    char *ref = run(boundary, in, n, o, n, 0, proto);
    if (expected && strcmp(ref, expected) != 0) {
        fprintf(stderr, "input:\n%.*s\ngot:\n%s\nexpected:\n%s\n", (int)n, in, ref, expected);
        fail();
    }
    for (size_t i = 0; i <= n; i++) {
        char *got = run(boundary, in, n, o, i, 0, proto);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "input:\n%.*s\nsplit at %zu:\n%s\nreference:\n%s\n", (int)n, in, i, got,
                    ref);
            fail();
        }
        free(got);
    }
    static const size_t steps[] = {1, 2, 3, 7};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        char *got = run(boundary, in, n, o, 0, steps[s], proto);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "input:\n%.*s\nchunks of %zu:\n%s\nreference:\n%s\n", (int)n, in,
                    steps[s], got, ref);
            fail();
        }
        free(got);
    }
    free(ref);
}

static const struct sink no_stop = {.stop_begin = 0};

#define CHECK_O(b, in, o, expected) check_full((b), (in), sizeof(in) - 1, (o), no_stop, (expected))
#define CHECK(in, expected) CHECK_O("XyZ", in, &DEF, expected)

/* ---- real-world shapes ---------------------------------------------------- */

/* curl 7.88 `curl -F file=@x.csv -F nome=Ana`, captured byte for byte. */
static const char curl_body[] = "--------------------------71777c55eb4f5868\r\n"
                                "Content-Disposition: form-data; name=\"file\"; "
                                "filename=\"x.csv\"\r\n"
                                "Content-Type: application/octet-stream\r\n"
                                "\r\n"
                                "nome;valor\r\n"
                                "Jo\xc3\xa3o;1,5\r\n"
                                "\r\n"
                                "--------------------------71777c55eb4f5868\r\n"
                                "Content-Disposition: form-data; name=\"nome\"\r\n"
                                "\r\n"
                                "Ana\r\n"
                                "--------------------------71777c55eb4f5868--\r\n";

static void test_curl(void **state)
{
    (void)state;
    char b[128];
    struct fx_err err;
    assert_int_equal(fx_multipart_boundary("multipart/form-data; "
                                           "boundary=------------------------71777c55eb4f5868",
                                           b, sizeof(b), &err),
                     0);
    assert_string_equal(b, "------------------------71777c55eb4f5868");
    check_full(b, curl_body, sizeof(curl_body) - 1, &DEF, no_stop,
               "BEGIN file|x.csv|application/octet-stream\n"
               "END \"nome;valor\\r\\nJo\xc3\xa3o;1,5\\r\\n\"\n"
               "BEGIN nome|-|-\n"
               "END \"Ana\"\n");
}

static void test_browser(void **state)
{
    (void)state;
    /* a preamble, unicode names, an empty file input, an epilogue */
    CHECK("This is the preamble.\r\n--XyZ is not a boundary line\r\n"
          "--XyZ\r\n"
          "Content-Disposition: form-data; name=\"munic\xc3\xadpio\"\r\n"
          "\r\n"
          "S\xc3\xa3o Paulo\r\n"
          "--XyZ\r\n"
          "Content-Disposition: form-data; name=\"arquivo\"; "
          "filename=\"rela\xc3\xa7\xc3\xa3o 2024.csv\"\r\n"
          "Content-Type: text/csv; charset=utf-8\r\n"
          "\r\n"
          "a;b\n1;2\n"
          "\r\n--XyZ\r\n"
          "Content-Disposition: form-data; name=\"vazio\"; filename=\"\"\r\n"
          "Content-Type: application/octet-stream\r\n"
          "\r\n"
          "\r\n--XyZ--\r\n"
          "epilogue --XyZ\r\n garbage",
          "BEGIN munic\xc3\xadpio|-|-\n"
          "END \"S\xc3\xa3o Paulo\"\n"
          "BEGIN arquivo|rela\xc3\xa7\xc3\xa3o 2024.csv|text/csv; charset=utf-8\n"
          "END \"a;b\\n1;2\\n\"\n"
          "BEGIN vazio||application/octet-stream\n"
          "END \"\"\n");
}

static void test_lf_only(void **state)
{
    (void)state;
    /* bare LF everywhere: the first boundary line decides */
    CHECK("--XyZ\nContent-Disposition: form-data; name=\"a\"\n\nline1\r\nline2\n"
          "--XyZ\ncontent-disposition: form-data; name=b\n\n\n--XyZ--",
          "BEGIN a|-|-\nEND \"line1\\r\\nline2\"\nBEGIN b|-|-\nEND \"\"\n");
    /* CRLF boundaries with bare-LF header lines */
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\nContent-Type: text/plain\n\n"
          "x\r\n--XyZ--\r\n",
          "BEGIN a|-|text/plain\nEND \"x\"\n");
}

static void test_params(void **state)
{
    (void)state;
    CHECK("--XyZ\r\n"
          "CONTENT-DISPOSITION: Form-Data ; NAME = f1 ; FileName=\"a;b.csv\"\r\n"
          "content-type:text/csv\r\n"
          "\r\n1\r\n--XyZ\r\n"
          "Content-Disposition: form-data; name=\"f\\\"2\"; filename=\"C:\\Users\\ana\\x "
          "\\\"y\\\".csv\"\r\n"
          "\r\n2\r\n--XyZ\r\n"
          "Content-Disposition: form-data; name=\"f3\"; filename=\"/etc/../passwd\"; "
          "filename*=UTF-8''dir%2Fna%C3%AFve.csv\r\n"
          "\r\n3\r\n--XyZ\r\n"
          "Content-Disposition: form-data; filename*=iso-8859-1'pt'caf%E9.csv; name=f4; x=y\r\n"
          "\r\n4\r\n--XyZ\r\n"
          "Content-Disposition: form-data; name=\"f5\"; filename=\"../..\"\r\n"
          "X-Other: ignored\r\n"
          "Content-Type: text/plain;\r\n"
          " charset=latin1\r\n"
          "\r\n5\r\n--XyZ\r\n"
          "Content-Disposition: form-data;\r\n\tname=\"f6\"; filename*=UTF-8''a%0Ab\r\n"
          "\r\n6\r\n--XyZ--",
          "BEGIN f1|a;b.csv|text/csv\nEND \"1\"\n"
          "BEGIN f\"2|x \"y\".csv|-\nEND \"2\"\n"
          "BEGIN f3|na\xc3\xafve.csv|-\nEND \"3\"\n"
          "BEGIN f4|caf\xc3\xa9.csv|-\nEND \"4\"\n"
          "BEGIN f5||text/plain;   charset=latin1\nEND \"5\"\n"
          "BEGIN f6|a_b|-\nEND \"6\"\n");
}

static void test_boundary_in_data(void **state)
{
    (void)state;
    /* "--XyZ" without a line end before it, a boundary followed by other text, partial
     * delimiters, CRs before the delimiter, a part ending in CR */
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
          "x--XyZ\r\n--XyZy\r\n--Xy\r\n-\r\r\n\r\n--\r\n--XyZ_\r"
          "\r\n--XyZ \t \r\n"
          "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
          "\r\n\r\n--XyZ--",
          "BEGIN a|-|-\n"
          "END \"x--XyZ\\r\\n--XyZy\\r\\n--Xy\\r\\n-\\r\\r\\n\\r\\n--\\r\\n--XyZ_\\r\"\n"
          "BEGIN b|-|-\n"
          "END \"\\r\\n\"\n");
    /* "--XyZ--z" inside data: a full match then '-' '-' closes the body */
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nab\r\n--XyZ--z",
          "BEGIN a|-|-\nEND \"ab\"\n");
    /* a boundary that is a prefix of another's text */
    CHECK_O("--", "----\r\nContent-Disposition: form-data; name=a\r\n\r\n---\r\n---\r\n------",
            &DEF, "BEGIN a|-|-\nEND \"---\\r\\n---\"\n");
    /* no parts at all */
    CHECK("--XyZ--\r\n", "");
    CHECK("preamble\n--XyZ--", "");
}

/* ---- Content-Type ------------------------------------------------------------ */

static void expect_boundary(const char *ct, const char *want)
{
    char b[80];
    struct fx_err err;
    fx_err_clear(&err);
    int rc = fx_multipart_boundary(ct, b, sizeof(b), &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", ct, err.reason);
    assert_int_equal(rc, 0);
    assert_string_equal(b, want);
}

static void expect_boundary_error(const char *ct, size_t cap, int code, const char *reason)
{
    char b[80];
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_multipart_boundary(ct, b, cap, &err), code);
    assert_string_equal(err.reason, reason);
}

static void test_boundary_header(void **state)
{
    (void)state;
    expect_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
                    "----WebKitFormBoundary7MA4YWxkTrZu0gW");
    expect_boundary("Multipart/Form-Data;charset=utf-8;BOUNDARY=\"a b:c=d?\"", "a b:c=d?");
    expect_boundary("  multipart/form-data ; boundary = xyz ; x=1", "xyz");
    expect_boundary("multipart/form-data; boundary=\"0123456789012345678901234567890123456789"
                    "012345678901234567890123456789\"",
                    "0123456789012345678901234567890123456789012345678901234567890123456789");
    expect_boundary_error("application/json", 80, FX_EPARSE,
                          "multipart: Content-Type 'application/json' is not multipart/form-data");
    expect_boundary_error("multipart/mixed; boundary=x", 80, FX_EPARSE,
                          "multipart: Content-Type 'multipart/mixed; boundary=x' is not "
                          "multipart/form-data");
    expect_boundary_error(NULL, 80, FX_EPARSE,
                          "multipart: Content-Type '' is not multipart/form-data");
    expect_boundary_error("multipart/form-data", 80, FX_EPARSE,
                          "multipart: Content-Type has no boundary parameter");
    expect_boundary_error("multipart/form-data; charset=utf-8", 80, FX_EPARSE,
                          "multipart: Content-Type has no boundary parameter");
    expect_boundary_error("multipart/form-data; boundary=", 80, FX_EPARSE,
                          "multipart: malformed parameters in Content-Type "
                          "'multipart/form-data; boundary='");
    expect_boundary_error("multipart/form-data; boundary=\"abc", 80, FX_EPARSE,
                          "multipart: malformed parameters in Content-Type "
                          "'multipart/form-data; boundary=\"abc'");
    expect_boundary_error("multipart/form-data; boundary=\"\"", 80, FX_EPARSE,
                          "multipart: boundary '' is not valid (1 to 70 letters, digits or "
                          "'()+_,-./:=? characters, not ending in a space)");
    expect_boundary_error("multipart/form-data; boundary=\"ab \"", 80, FX_EPARSE,
                          "multipart: boundary 'ab ' is not valid (1 to 70 letters, digits or "
                          "'()+_,-./:=? characters, not ending in a space)");
    expect_boundary_error("multipart/form-data; boundary=a{b", 80, FX_EPARSE,
                          "multipart: boundary 'a{b' is not valid (1 to 70 letters, digits or "
                          "'()+_,-./:=? characters, not ending in a space)");
    expect_boundary_error("multipart/form-data; boundary=012345678901234567890123456789012345678"
                          "90123456789012345678901234567890",
                          80, FX_EPARSE,
                          "multipart: boundary '012345678901234567890123456789012345678901234567"
                          "89012345678901234567890' is not valid (1 to 70 letters, digits or "
                          "'()+_,-./:=? characters, not ending in a space)");
    expect_boundary_error("multipart/form-data; boundary=a; boundary=b", 80, FX_EPARSE,
                          "multipart: Content-Type has two boundary parameters");
    expect_boundary_error("multipart/form-data; boundary=abcd", 4, FX_ETOOBIG,
                          "multipart: boundary of 4 characters does not fit 4 bytes");
    /* the parser refuses what the header parser would */
    assert_null(fx_multipart_new("", NULL, NULL, NULL, NULL, NULL));
    assert_null(fx_multipart_new("a\r\nb", NULL, NULL, NULL, NULL, NULL));
    assert_null(fx_multipart_new(NULL, NULL, NULL, NULL, NULL, NULL));
    fx_multipart_free(NULL);
    /* no callbacks at all is fine */
    struct fx_multipart *m = fx_multipart_new("b", NULL, NULL, NULL, NULL, NULL);
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--b--";
    struct fx_err err;
    assert_int_equal(fx_multipart_feed(m, body, sizeof(body) - 1, &err), 0);
    assert_int_equal(fx_multipart_finish(m, &err), 0);
    fx_multipart_free(m);
}

/* ---- errors and limits ------------------------------------------------------------ */

#define PART(name) "Content-Disposition: form-data; name=\"" name "\"\r\n\r\n"

static void test_errors(void **state)
{
    (void)state;
    CHECK("--XyZ\r\n" PART("a") "1\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\n2\r\n--XyZ--",
          "BEGIN a|-|-\nEND \"1\"\n"
          "RC EPARSE 2 multipart: part 2 has no Content-Disposition header\n");
    CHECK("--XyZ\r\n\r\nx\r\n--XyZ--",
          "RC EPARSE 1 multipart: part 1 has no Content-Disposition header\n");
    CHECK("--XyZ\r\nContent-Disposition: attachment; filename=a.csv\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: Content-Disposition is 'attachment', expected "
          "form-data\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; filename=a.csv\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: Content-Disposition has no name\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: Content-Disposition has the parameter 'name' twice\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: malformed parameters in Content-Disposition "
          "'form-data; name=\"a'\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a b\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: malformed parameters in Content-Disposition "
          "'form-data; name=a b'\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
          "Content-Disposition: form-data; name=b\r\n\r\n",
          "RC EPARSE 1 multipart: part 1 has two Content-Disposition headers\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a\r\nbogus line\r\n\r\n",
          "RC EPARSE 1 multipart: part 1 has a malformed header line 'bogus line'\n");
    CHECK("--XyZ\r\n Content-Disposition: form-data; name=a\r\n\r\n",
          "RC EPARSE 1 multipart: part 1 has a malformed header line ' Content-Disposition: "
          "form-data; name=a'\n");
    CHECK("--XyZ\r\nContent-Disposition : form-data; name=a\r\n\r\n",
          "RC EPARSE 1 multipart: part 1 has a malformed header line 'Content-Disposition : "
          "form-data; name=a'\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a; filename*=UTF-8''%C3\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: filename* 'UTF-8''%C3' is not a valid RFC 5987 value "
          "in UTF-8 or ISO-8859-1\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a; filename*=koi8-r''%C3\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: filename* 'koi8-r''%C3' is not a valid RFC 5987 value "
          "in UTF-8 or ISO-8859-1\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a; filename*=UTF-8'%41\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: filename* 'UTF-8'%41' is not a valid RFC 5987 value "
          "in UTF-8 or ISO-8859-1\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a; filename*=UTF-8''%4\r\n\r\n",
          "RC EPARSE 1 multipart: part 1: filename* 'UTF-8''%4' is not a valid RFC 5987 value "
          "in UTF-8 or ISO-8859-1\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=\"\xe9\"\r\n\r\n",
          "RC EENCODING 1 multipart: part 1: field name is not UTF-8\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a; filename=\"caf\xe9.csv\"\r\n\r\n",
          "RC EENCODING 1 multipart: part 1: file name is not UTF-8 (send it as "
          "filename*=UTF-8'' with percent-encoding)\n");
    CHECK("--XyZ\r\nContent-Disposition: form-data; name=a\r\nX: \0\r\n\r\n",
          "RC EPARSE 1 multipart: part 1 has a NUL byte in its headers\n");
    /* junk after a boundary (once the first was seen) */
    CHECK("--XyZ\r\n" PART("a") "1\r\n--XyZ x\r\n",
          "BEGIN a|-|-\nRC EPARSE 1 multipart: unexpected 'x' after the boundary that ends part "
          "1\n");
    CHECK("--XyZ\r\n" PART("a") "1\r\n--XyZ\rx",
          "BEGIN a|-|-\nRC EPARSE 1 multipart: unexpected 'x' after the boundary that ends part "
          "1\n");
    CHECK("--XyZ\r\n" PART("a") "1\r\n--XyZ-x",
          "BEGIN a|-|-\nRC EPARSE 1 multipart: unexpected 'x' after the boundary that ends part "
          "1\n");
    /* the end of the body in the wrong place */
    CHECK("", "RC EPARSE 0 multipart: empty body\n");
    CHECK("just text\r\n--XyZx\r\n",
          "RC EPARSE 0 multipart: body ended before the first boundary ('--XyZ')\n");
    CHECK("--XyZ", "RC EPARSE 0 multipart: body ended before the first boundary ('--XyZ')\n");
    CHECK("--XyZ\r\n", "RC EPARSE 1 multipart: body ended before the closing boundary (in the "
                       "headers of part 1)\n");
    CHECK("--XyZ\r\n" PART("a") "data\r\n--Xy",
          "BEGIN a|-|-\nRC EPARSE 1 multipart: body ended before the closing boundary (in part "
          "1)\n");
    CHECK("--XyZ\r\n" PART("a") "data\r\n--XyZ\r\n",
          "BEGIN a|-|-\nEND \"data\"\nRC EPARSE 2 multipart: body ended before the closing "
          "boundary (in the headers of part 2)\n");
    CHECK("--XyZ\r\n" PART("a") "data\r\n--XyZ-",
          "BEGIN a|-|-\nRC EPARSE 1 multipart: body ended before the closing boundary (in part "
          "1)\n");
}

static void test_limits(void **state)
{
    (void)state;
    struct fx_multipart_opts o;
    fx_multipart_opts_init(&o);
    assert_int_equal(o.max_header_bytes, 8u << 10);
    assert_int_equal(o.max_parts, 16);
    /* the header section: 42 bytes here, blank line included */
    o.max_header_bytes = 42;
    CHECK_O("XyZ", "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ--", &o,
            "BEGIN a|-|-\nEND \"x\"\n");
    o.max_header_bytes = 41;
    CHECK_O("XyZ", "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ--", &o,
            "RC ETOOBIG 1 multipart: headers of part 1 longer than 41 bytes "
            "(max_header_bytes)\n");
    /* endless headers without a line end are caught too */
    o.max_header_bytes = 16;
    CHECK_O("XyZ", "--XyZ\r\nXXXXXXXXXXXXXXXXXXXXXXXXXXX", &o,
            "RC ETOOBIG 1 multipart: headers of part 1 longer than 16 bytes "
            "(max_header_bytes)\n");
    fx_multipart_opts_init(&o);
    o.max_parts = 2;
    CHECK_O("XyZ", "--XyZ\r\n" PART("a") "1\r\n--XyZ\r\n" PART("b") "2\r\n--XyZ--", &o,
            "BEGIN a|-|-\nEND \"1\"\nBEGIN b|-|-\nEND \"2\"\n");
    CHECK_O("XyZ",
            "--XyZ\r\n" PART("a") "1\r\n--XyZ\r\n" PART("b") "2\r\n--XyZ\r\n" PART("c") "3\r\n"
                                                                                        "--XyZ--",
            &o,
            "BEGIN a|-|-\nEND \"1\"\nBEGIN b|-|-\nEND \"2\"\nRC ETOOBIG 2 multipart: more than "
            "2 parts (max_parts)\n");
    /* zeros mean the defaults */
    o.max_parts = 0;
    o.max_header_bytes = 0;
    CHECK_O("XyZ", "--XyZ\r\n" PART("a") "1\r\n--XyZ--", &o, "BEGIN a|-|-\nEND \"1\"\n");
}

/* ---- callbacks and streaming ------------------------------------------------------ */

static void test_stop(void **state)
{
    (void)state;
    static const char body[] = "--XyZ\r\n" PART("a") "1\r\n--XyZ\r\n" PART("b") "22\r\n--XyZ--";
    struct sink k = {.stop_begin = 2};
    check_full("XyZ", body, sizeof(body) - 1, &DEF, k,
               "BEGIN a|-|-\nEND \"1\"\nBEGIN b|-|-\nRC 5\n");
    k = (struct sink){.stop_data = 1};
    check_full("XyZ", body, sizeof(body) - 1, &DEF, k, "BEGIN a|-|-\nRC 6\n");
    k = (struct sink){.stop_end = 1};
    check_full("XyZ", body, sizeof(body) - 1, &DEF, k, "BEGIN a|-|-\nEND \"1\"\nRC 8\n");
    /* a stop at the very last end is still returned */
    k = (struct sink){.stop_end = 2};
    check_full("XyZ", body, sizeof(body) - 1, &DEF, k,
               "BEGIN a|-|-\nEND \"1\"\nBEGIN b|-|-\nEND \"22\"\nRC 8\n");
}

struct counter {
    size_t bytes;
    unsigned char next; /* the data is bytes 0, 1, 2, ... 255, 0, ... */
};

static int count_data(void *ud, const char *d, size_t n)
{
    struct counter *c = ud;
    for (size_t i = 0; i < n; i++)
        assert_int_equal((unsigned char)d[i], c->next++);
    c->bytes += n;
    return 0;
}

static void test_streaming(void **state)
{
    (void)state;
    /* a 4 MiB part fed 64 KiB at a time: everything but the held-back delimiter prefix is
     * passed on before the body ends, and the bytes come out in order */
    const char *bnd = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    struct counter c = {0};
    struct fx_multipart *m = fx_multipart_new(bnd, NULL, NULL, count_data, NULL, &c);
    struct fx_err err;
    char *head = fx_asprintf("--%s\r\n" PART("f"), bnd);
    assert_int_equal(fx_multipart_feed(m, head, strlen(head), &err), 0);
    free(head);
    size_t total = 4u << 20;
    char block[65536];
    for (size_t at = 0; at < total; at += sizeof(block)) {
        for (size_t i = 0; i < sizeof(block); i++)
            block[i] = (char)(unsigned char)((at + i) & 0xff);
        assert_int_equal(fx_multipart_feed(m, block, sizeof(block), &err), 0);
        assert_true(c.bytes + strlen(bnd) + 4 >= at + sizeof(block));
    }
    char *tail = fx_asprintf("\r\n--%s--\r\n", bnd);
    assert_int_equal(fx_multipart_feed(m, tail, strlen(tail), &err), 0);
    free(tail);
    assert_int_equal(fx_multipart_finish(m, &err), 0);
    assert_int_equal(c.bytes, total);
    fx_multipart_free(m);

    /* a delimiter's start at the end of a chunk is held back, then released as data */
    struct sink k = {.stop_begin = 0};
    fx_buf_init(&k.out, 0);
    fx_buf_init(&k.part, 0);
    m = fx_multipart_new("XyZ", NULL, on_begin, on_data, on_end, &k);
    static const char h2[] = "--XyZ\r\n" PART("a") "abc\r\n--Xy";
    assert_int_equal(fx_multipart_feed(m, h2, sizeof(h2) - 1, &err), 0);
    assert_int_equal(k.part.len, 3);
    assert_int_equal(fx_multipart_feed(m, "Q", 1, &err), 0);
    assert_int_equal(k.part.len, 10);
    assert_memory_equal(k.part.data, "abc\r\n--XyQ", 10);
    assert_int_equal(fx_multipart_feed(m, "\r\n--XyZ", 7, &err), 0);
    assert_int_equal(k.part.len, 10);
    assert_int_equal(k.nend, 0);
    assert_int_equal(fx_multipart_feed(m, "--", 2, &err), 0);
    assert_int_equal(k.nend, 1);
    assert_int_equal(fx_multipart_finish(m, &err), 0);
    fx_multipart_free(m);
    fx_buf_cleanup(&k.out);
    fx_buf_cleanup(&k.part);

    /* data that keeps almost matching: "\r\n--XyZ" minus its last byte, again and again */
    struct fx_buf in, want;
    fx_buf_init(&in, 0);
    fx_buf_init(&want, 0);
    fx_buf_puts(&in, "--XyZ\r\n" PART("a"));
    fx_buf_puts(&want, "BEGIN a|-|-\nEND \"");
    for (int i = 0; i < 50; i++) {
        fx_buf_puts(&in, "\r\n--Xy\r\r\n-");
        fx_buf_puts(&want, "\\r\\n--Xy\\r\\r\\n-");
    }
    fx_buf_puts(&in, "\r\n--XyZ--");
    fx_buf_puts(&want, "\"\n");
    check_full("XyZ", in.data, in.len, &DEF, no_stop, want.data);
    fx_buf_cleanup(&in);
    fx_buf_cleanup(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl),
        cmocka_unit_test(test_browser),
        cmocka_unit_test(test_lf_only),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_boundary_in_data),
        cmocka_unit_test(test_boundary_header),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
