/* SPDX-License-Identifier: MIT */
/* Chunk payload decoder: values, escapes, unknown keys, and every malformed shape. */
#include "testutil.h"

#include "services/chunk.h"

#include <stdio.h>
#include <string.h>

static int decode(const char *json, struct fx_chunk *c, char *why)
{
    return fx_chunk_decode(json, strlen(json), c, why, 256);
}

static void test_values(void **state)
{
    (void)state;
    struct fx_chunk c;
    char why[256];
    const char *j = "{\"batch\":\"b1\",\"pipeline\":\"vendas\",\"chunk\":7,\"fields\":[\"nome\","
                    "\"qtd\"],\"raw\":[0],\"rows\":[[2,\"k\",\"Jo\\u00e3o \\\"J\\\"\",-3,\"raw\"],"
                    "[3,\"k2\",null,9223372036854775807,\"\"]]}";
    assert_int_equal(decode(j, &c, why), 0);
    assert_string_equal(c.batch, "b1");
    assert_string_equal(c.pipeline, "vendas");
    assert_int_equal(c.seq, 7);
    assert_int_equal(c.nfields, 2);
    assert_string_equal(c.fields[1], "qtd");
    assert_int_equal(c.nraw, 1);
    assert_int_equal(c.nrows, 2);
    assert_int_equal(fx_chunk_val(&c, 0, 0)->i, 2);
    assert_string_equal(fx_chunk_val(&c, 0, 2)->s, "Jo\xc3\xa3o \"J\"");
    assert_int_equal(fx_chunk_val(&c, 0, 3)->i, -3);
    assert_int_equal(fx_chunk_val(&c, 1, 2)->type, FX_CV_NULL);
    assert_int_equal(fx_chunk_val(&c, 1, 3)->i, INT64_MAX);
    assert_int_equal(fx_chunk_val(&c, 1, 4)->len, 0);
    assert_int_equal(fx_chunk_val(&c, 1, 99)->type, FX_CV_NULL); /* out of range */
    assert_int_equal(fx_chunk_val(&c, 5, 0)->type, FX_CV_NULL);
    fx_chunk_free(&c);
}

static void test_spelling(void **state)
{
    (void)state;
    struct fx_chunk c;
    char why[256];
    /* whitespace, key order, unknown keys with nested values, surrogate pairs */
    const char *j = " { \"rows\" : [ [ 1 , \"\\ud83d\\ude00\\/\\t\" ] ] , \"future\" : {\"a\":[1,"
                    "{\"b\":[true,false,null,\"x\"]}],\"c\":-1.5e3} , \"fields\" : [ ] ,"
                    " \"batch\" : \"b\" , \"pipeline\" : \"p\" } ";
    assert_int_equal(decode(j, &c, why), 0);
    assert_string_equal(fx_chunk_val(&c, 0, 1)->s, "\xf0\x9f\x98\x80/\t");
    fx_chunk_free(&c);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *json, *reason;
    } cases[] = {
        {"", "expected '{'"},
        {"[]", "expected '{'"},
        {"{}", "empty object"},
        {"{\"batch\":\"b\"}", "needs batch, pipeline, fields and rows"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[],\"rows\":[[1.5]]}", "fraction"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[],\"rows\":[[99999999999999999999]]}",
         "out of range"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[],\"rows\":[[\"\\ud800\"]]}",
         "unpaired surrogate"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[],\"rows\":[[\"\\u0000\"]]}", "NUL"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[],\"rows\":[[\"a\nb\"]]}", "control"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[\"a\"],\"rows\":[[1,\"x\"", "expected"},
        {"{\"batch\":\"b\",\"pipeline\":\"p\",\"fields\":[],\"rows\":[]} x", "trailing"},
        {"{\"batch\":1}", "expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx_chunk c;
        char why[256] = "";
        int rc = decode(cases[i].json, &c, why);
        if (rc == 0 || !strstr(why, cases[i].reason)) {
            fprintf(stderr, "case %zu: rc=%d why=%s\n", i, rc, why);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_spelling),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
