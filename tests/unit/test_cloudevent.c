/* SPDX-License-Identifier: MIT */
/*
 * CloudEvents codec: encode/decode round trips (every attribute, data bytes
 * verbatim), escaping both ways, large data, every truncation of a valid body,
 * and malformed bodies each rejected with its reason.
 */
#include "testutil.h"

#include "fluxo/bus.h"
#include "fluxo/error.h"
#include "fluxo/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fx_delivery *decode_ok(const char *body, size_t len)
{
    struct fx_delivery *d = fx_calloc(1, sizeof(*d));
    struct fx_err err;
    int rc = fx_cloudevent_decode(body, len, d, &err);
    if (rc)
        fail_msg("decode failed: %s (%s)\nbody: %.*s", fx_errname(rc), err.reason,
                 (int)(len > 300 ? 300 : len), body);
    return d;
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static void roundtrip(const struct fx_msg *m)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    assert_int_equal(fx_cloudevent_encode(m, &b), 0);
    struct fx_delivery *d = decode_ok(b.data, b.len);
    assert_string_equal(d->id, m->id);
    assert_string_equal(d->type, m->type);
    assert_string_equal(d->source, m->source);
    assert_str_or_null(d->routing_key, m->routing_key);
    assert_str_or_null(d->key, m->key && *m->key ? m->key : NULL);
    assert_str_or_null(d->correlation_id, m->correlation_id);
    assert_str_or_null(d->traceparent, m->traceparent);
    if (m->time)
        assert_string_equal(d->time, m->time);
    if (m->data) {
        assert_int_equal(d->data_len, m->data_len);
        assert_memory_equal(d->data, m->data, m->data_len);
        assert_int_equal(d->data[d->data_len], '\0');
    } else {
        assert_null(d->data);
        assert_int_equal(d->data_len, 0);
    }
    fx_delivery_free(d);
    fx_buf_cleanup(&b);
}

static void test_roundtrip_all_attributes(void **state)
{
    (void)state;
    static const char data[] = "{ \"rows\" : [ {\"a\":1, \"b\": -2.5e+3}, [true,false,null],"
                               " \"x\\\"y\\\\z\\u00e9\" ] ,\n\t\"n\":{}}";
    struct fx_msg m = {.id = "0190c5e2-7b1a-7000-8000-000000000001",
                       .type = "fluxo.ingest.chunk",
                       .source = "/fluxo/ingest",
                       .routing_key = "processed_data",
                       .key = "batch-42",
                       .correlation_id = "corr-1",
                       .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                       .time = "2024-05-01T12:00:00.123Z",
                       .data = data,
                       .data_len = strlen(data)};
    roundtrip(&m);
}

static void test_roundtrip_minimal(void **state)
{
    (void)state;
    struct fx_msg m = {.id = "1", .type = "t", .source = "s"};
    roundtrip(&m);
    /* time defaults to now, RFC 3339 UTC with milliseconds */
    struct fx_buf b;
    fx_buf_init(&b, 0);
    assert_int_equal(fx_cloudevent_encode(&m, &b), 0);
    assert_null(strstr(b.data, "\"data\""));
    assert_null(strstr(b.data, "datacontenttype"));
    struct fx_delivery *d = decode_ok(b.data, b.len);
    assert_int_equal(strlen(d->time), 24);
    assert_int_equal(d->time[10], 'T');
    assert_int_equal(d->time[19], '.');
    assert_int_equal(d->time[23], 'Z');
    assert_null(d->routing_key);
    assert_null(d->key);
    fx_delivery_free(d);
    fx_buf_cleanup(&b);
}

static void test_encode_layout(void **state)
{
    (void)state;
    struct fx_msg m = {.id = "i",
                       .type = "t",
                       .source = "s",
                       .routing_key = "a.b",
                       .key = "k",
                       .time = "2024-01-01T00:00:00.000Z",
                       .data = "[1]",
                       .data_len = 3};
    struct fx_buf b;
    fx_buf_init(&b, 0);
    assert_int_equal(fx_cloudevent_encode(&m, &b), 0);
    assert_string_equal(b.data,
                        "{\"specversion\":\"1.0\",\"id\":\"i\",\"source\":\"s\",\"type\":\"t\","
                        "\"time\":\"2024-01-01T00:00:00.000Z\","
                        "\"datacontenttype\":\"application/json\",\"routingkey\":\"a.b\","
                        "\"partitionkey\":\"k\",\"data\":[1]}");
    /* encode appends */
    assert_int_equal(fx_cloudevent_encode(&m, &b), 0);
    assert_int_equal(b.data[b.len / 2], '{');
    fx_buf_cleanup(&b);
}

static void test_escaping_roundtrip(void **state)
{
    (void)state;
    struct fx_msg m = {.id = "quote\" backslash\\ slash/",
                       .type = "ctl\x01\x1f tab\t nl\n cr\r",
                       .source = "utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                       .routing_key = "r.\"k\"",
                       .key = "\\",
                       .correlation_id = "\xe4\xb8\xad\xe6\x96\x87",
                       .data = "\"just a string with \\\"escapes\\\" \\ud83d\\ude00\"",
                       .data_len = 0};
    m.data_len = strlen(m.data);
    roundtrip(&m);
}

static void test_decode_escapes(void **state)
{
    (void)state;
    const char *body = "{\"specversion\":\"1.0\",\"id\":\"\\u00e9\\u20ac\\ud83d\\ude00\","
                       "\"source\":\"a\\/b\\b\\f\\n\\r\\t\\\"\\\\\",\"type\":\"\\u0041\","
                       "\"partitionkey\":\"\",\"subject\":\"ignored\",\"ext\":{\"x\":[1,{}]}}";
    struct fx_delivery *d = decode_ok(body, strlen(body));
    assert_string_equal(d->id, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_string_equal(d->source, "a/b\b\f\n\r\t\"\\");
    assert_string_equal(d->type, "A");
    assert_null(d->key); /* empty ordering key is no key */
    assert_null(d->data);
    fx_delivery_free(d);

    /* escaped member names are attributes too; optional null is absent */
    const char *b2 = "{\"spec\\u0076ersion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\","
                     "\"correlationid\":null,\"data\":null}";
    d = decode_ok(b2, strlen(b2));
    assert_null(d->correlation_id);
    assert_string_equal(d->data, "null");
    fx_delivery_free(d);

    /* data is the exact text between ':' and the member's end, whitespace included */
    const char *b3 =
        "{\"data\" :\n [ 1 ,2 ] \t,\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\","
        "\"type\":\"t\"}";
    d = decode_ok(b3, strlen(b3));
    assert_string_equal(d->data, "\n [ 1 ,2 ] \t");
    assert_int_equal(d->data_len, 12);
    fx_delivery_free(d);
}

static void test_large_data(void **state)
{
    (void)state;
    struct fx_buf data;
    fx_buf_init(&data, 0);
    fx_buf_puts(&data, "{\"rows\":[");
    for (int i = 0; i < 20000; i++) {
        fx_buf_printf(&data,
                      "%s{\"nome\":\"Cliente \\\"%d\\\" S\\u00e3o\",\"valor\":%d.%02d,"
                      "\"tags\":[\"a\",\"b\\\\c\",null,true],\"n\":{\"x\":[[],[{}]]}}",
                      i ? "," : "", i, i * 7, i % 100);
    }
    fx_buf_puts(&data, "]}");
    assert_true(data.len > 1000000);
    struct fx_msg m = {.id = "big",
                       .type = "t",
                       .source = "s",
                       .routing_key = "processed_data",
                       .data = data.data,
                       .data_len = data.len};
    roundtrip(&m);
    fx_buf_cleanup(&data);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b,
                "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":");
    for (int i = 0; i < 500; i++)
        fx_buf_putc(&b, '[');
    for (int i = 0; i < 500; i++)
        fx_buf_putc(&b, ']');
    fx_buf_putc(&b, '}');
    struct fx_delivery *d = decode_ok(b.data, b.len);
    assert_int_equal(d->data_len, 1000);
    fx_delivery_free(d);

    fx_buf_reset(&b);
    fx_buf_puts(&b,
                "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":");
    for (int i = 0; i < 100000; i++)
        fx_buf_putc(&b, '[');
    d = fx_calloc(1, sizeof(*d));
    struct fx_err err;
    assert_int_equal(fx_cloudevent_decode(b.data, b.len, d, &err), FX_EPARSE);
    assert_non_null(strstr(err.reason, "nesting too deep"));
    free(d);
    fx_buf_cleanup(&b);
}

/* Every strict prefix of a valid body is rejected cleanly (fields left NULL). */
static void test_every_truncation(void **state)
{
    (void)state;
    struct fx_msg m = {.id = "id-\xc3\xa9",
                       .type = "t\"",
                       .source = "s",
                       .routing_key = "a.b",
                       .key = "k",
                       .correlation_id = "c",
                       .traceparent = "tp",
                       .data = "{\"a\":[1,-2.5e3,\"x\\u00e9\\\"\",true,false,null,{}]}"};
    m.data_len = strlen(m.data);
    struct fx_buf b;
    fx_buf_init(&b, 0);
    assert_int_equal(fx_cloudevent_encode(&m, &b), 0);
    for (size_t len = 0; len < b.len; len++) {
        char *copy = fx_strndup(b.data, len); /* exact-size heap copy: ASan sees overreads */
        struct fx_delivery *d = fx_calloc(1, sizeof(*d));
        struct fx_err err;
        int rc = fx_cloudevent_decode(copy, len, d, &err);
        if (rc == 0)
            fail_msg("prefix of %zu bytes accepted", len);
        assert_true(err.reason[0] != '\0');
        assert_null(d->id);
        assert_null(d->data);
        free(d);
        free(copy);
    }
    fx_buf_cleanup(&b);
}

struct bad_case {
    const char *body;
    int code;
    const char *reason; /* substring */
};

static const struct bad_case bad_cases[] = {
    {"", FX_EPARSE, "body is empty"},
    {"   \n", FX_EPARSE, "body is empty"},
    {"[1,2]", FX_EPARSE, "not a JSON object (starts with '['"},
    {"\"x\"", FX_EPARSE, "not a JSON object"},
    {"{}", FX_EPARSE, "missing required attribute \"specversion\""},
    {"{\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "missing required attribute \"specversion\""},
    {"{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "missing required attribute \"id\""},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"t\"}", FX_EPARSE,
     "missing required attribute \"source\""},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}", FX_EPARSE,
     "missing required attribute \"type\""},
    {"{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "unsupported specversion \"0.3\""},
    {"{\"specversion\":1.0,\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "attribute \"specversion\" must be a string"},
    {"{\"specversion\":\"1.0\",\"id\":7,\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "attribute \"id\" must be a string"},
    {"{\"specversion\":\"1.0\",\"id\":null,\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "attribute \"id\" must be a string"},
    {"{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "required attribute \"id\" is empty"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"time\":5}", FX_EPARSE,
     "attribute \"time\" must be a string"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"id\":\"2\",\"source\":\"s\",\"type\":\"t\"}",
     FX_EPARSE, "duplicate attribute \"id\""},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data_base64\":\"AA=="
     "\"}",
     FX_EPARSE, "attribute \"data_base64\" is not supported"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"} x", FX_EPARSE,
     "unexpected data after the JSON object at byte 55"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"}{}", FX_EPARSE,
     "unexpected data after"},
    {"{\"specversion\":\"1.0\" \"id\":\"1\"}", FX_EPARSE, "at byte 21: expected ',' or '}'"},
    {"{\"specversion\":\"1.0\",}", FX_EPARSE, "expected a member name"},
    {"{specversion:\"1.0\"}", FX_EPARSE, "at byte 1: expected a member name"},
    {"{\"specversion\" \"1.0\"}", FX_EPARSE, "expected ':' after member name"},
    {"{\"specversion\":\"1.0", FX_EPARSE, "at byte 15: unterminated string"},
    {"{\"specversion\":\"1.0\",\"id\":\"a\nb\"}", FX_EPARSE, "control character in string"},
    {"{\"specversion\":\"1.0\",\"id\":\"a\\qb\"}", FX_EPARSE, "invalid escape in string"},
    {"{\"specversion\":\"1.0\",\"id\":\"a\\u12G4\"}", FX_EPARSE, "invalid \\u escape"},
    {"{\"specversion\":\"1.0\",\"id\":\"\\ud800x\"}", FX_EPARSE, "unpaired surrogate"},
    {"{\"specversion\":\"1.0\",\"id\":\"\\udc00\"}", FX_EPARSE, "unpaired surrogate"},
    {"{\"specversion\":\"1.0\",\"id\":\"a\\u0000b\",\"source\":\"s\",\"type\":\"t\"}", FX_EPARSE,
     "attribute \"id\" contains a NUL"},
    {"{\"specversion\":\"1.0\",\"id\":\"\xff\",\"source\":\"s\",\"type\":\"t\"}", FX_EENCODING,
     "attribute \"id\" is not valid UTF-8"},
    {"{\"specversion\":\"1.0\",\"id\":\"\xed\xa0\x80\",\"source\":\"s\",\"type\":\"t\"}",
     FX_EENCODING, "not valid UTF-8"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":}", FX_EPARSE,
     "invalid number"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":[1,]}",
     FX_EPARSE, "invalid number"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":[1 2]}",
     FX_EPARSE, "expected ',' or ']' in array"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":{\"a\":1]}",
     FX_EPARSE, "expected ',' or '}' in object"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":{\"a\" 1}}",
     FX_EPARSE, "expected ':' after member name"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":{1:2}}",
     FX_EPARSE, "expected a member name"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":tru}",
     FX_EPARSE, "unexpected character"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":01}",
     FX_EPARSE, "expected ',' or '}' after a member"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":-}", FX_EPARSE,
     "invalid number"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":1.}",
     FX_EPARSE, "invalid number"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":1e+}",
     FX_EPARSE, "invalid number"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":[[[]]}",
     FX_EPARSE, "at byte 66: expected ',' or ']' in array"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":[[[ ",
     FX_EPARSE, "unexpected end of input"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\": ", FX_EPARSE,
     "unexpected end of input"},
    {"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"x\":\"\x01\"}",
     FX_EPARSE, "control character in string"},
    {"\xef\xbb\xbf{}", FX_EPARSE, "not a JSON object"},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        size_t len = strlen(c->body);
        char *copy = fx_strndup(c->body, len);
        struct fx_delivery *d = fx_calloc(1, sizeof(*d));
        struct fx_err err;
        int rc = fx_cloudevent_decode(copy, len, d, &err);
        if (rc != c->code || !strstr(err.reason, c->reason))
            fail_msg("case %zu %s: got %s \"%s\", want %s \"%s\"", i, c->body, fx_errname(rc),
                     err.reason, fx_errname(c->code), c->reason);
        assert_null(d->id);
        assert_null(d->source);
        assert_null(d->data);
        free(d);
        free(copy);
    }
}

static void test_encode_errors(void **state)
{
    (void)state;
    struct fx_buf b;
    fx_buf_init(&b, 64);
    struct fx_msg m = {.id = "1", .type = "t", .source = "s"};
    m.id = NULL;
    assert_int_equal(fx_cloudevent_encode(&m, &b), FX_EINVAL);
    m.id = "bad \xc3";
    assert_int_equal(fx_cloudevent_encode(&m, &b), FX_EENCODING);
    assert_int_equal(b.len, 0);
    m.id = "1";
    m.data = "[\"0123456789012345678901234567890123456789\"]";
    m.data_len = strlen(m.data);
    assert_int_equal(fx_cloudevent_encode(&m, &b), FX_ETOOBIG);
    assert_int_equal(b.len, 0); /* left as it was */
    fx_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_attributes),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_encode_layout),
        cmocka_unit_test(test_escaping_roundtrip),
        cmocka_unit_test(test_decode_escapes),
        cmocka_unit_test(test_large_data),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_encode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
