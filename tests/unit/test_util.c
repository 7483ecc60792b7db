/* SPDX-License-Identifier: MIT */
/*
 * Small helpers of src/core/util.c: URLs shown in logs never carry a
 * password, in the user information or in the query string; ids (uuid7,
 * traceparent) have their exact form and never repeat.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fluxo/util.h"

#include <stdlib.h>
#include <string.h>

static void check(const char *url, const char *want)
{
    char out[256];
    fx_url_redact(url, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_url_redact(void **state)
{
    (void)state;
    check("postgresql://fluxo:s3cr3t@db.example:5432/fluxo?sslmode=verify-full",
          "postgresql://fluxo:***@db.example:5432/fluxo?...");
    check("amqp://fluxo:p%40ss@127.0.0.1:5672/vh", "amqp://fluxo:***@127.0.0.1:5672/vh");
    check("kafka://k1:9092,k2:9092?sasl.password=x", "kafka://k1:9092,k2:9092?...");
    check("postgresql://fluxo@db/fluxo", "postgresql://fluxo@db/fluxo"); /* no password */
    check("sqlite:./data", "sqlite:./data");
    check("local:/var/lib/fluxo", "local:/var/lib/fluxo");
    /* an '@' in the path is not user information */
    check("postgresql://db/fluxo?user=a@b", "postgresql://db/fluxo?...");
    check("", "");
    char small[8];
    fx_url_redact("postgresql://u:p@h/d", small, sizeof(small));
    assert_int_equal(strlen(small), 7);
    fx_url_redact(NULL, small, sizeof(small));
    assert_string_equal(small, "");
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* RFC 9562 version 7: 8-4-4-4-12 lowercase hex, version 7, variant 10, the
 * first 48 bits the Unix time in ms; W3C traceparent version 00, sampled. */
static void test_ids(void **state)
{
    (void)state;
    enum { N = 5000 }; /* more than a refill of the random pool */
    char(*u)[37] = calloc(N, 37);
    char(*t)[56] = calloc(N, 56);
    assert_non_null(u);
    assert_non_null(t);
    for (int i = 0; i < N; i++) {
        int64_t before = fx_now_ms();
        memset(u[i], 'x', 37);
        memset(t[i], 'x', 56);
        fx_uuid7(u[i]);
        fx_traceparent_new(t[i]);
        int64_t after = fx_now_ms();
        assert_int_equal(strlen(u[i]), 36);
        for (int k = 0; k < 36; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23)
                assert_int_equal(u[i][k], '-');
            else
                assert_true(is_hex(&u[i][k], 1));
        }
        assert_int_equal(u[i][14], '7');
        assert_non_null(strchr("89ab", u[i][19]));
        char ms_hex[13];
        memcpy(ms_hex, u[i], 8);
        memcpy(ms_hex + 8, u[i] + 9, 4);
        ms_hex[12] = '\0';
        int64_t ms = (int64_t)strtoll(ms_hex, NULL, 16);
        assert_true(ms >= before && ms <= after);

        assert_int_equal(strlen(t[i]), 55);
        assert_memory_equal(t[i], "00-", 3);
        assert_true(is_hex(t[i] + 3, 32));
        assert_int_equal(t[i][35], '-');
        assert_true(is_hex(t[i] + 36, 16));
        assert_string_equal(t[i] + 52, "-01");
        assert_false(strspn(t[i] + 3, "0") >= 32); /* an all-zero trace id is invalid */
    }
    qsort(u, N, 37, cmp_str);
    qsort(t, N, 56, cmp_str);
    for (int i = 1; i < N; i++) {
        assert_string_not_equal(u[i - 1], u[i]);
        assert_string_not_equal(t[i - 1], t[i]);
    }
    free(u);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_url_redact),
                                       cmocka_unit_test(test_ids)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
