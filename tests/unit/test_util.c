/* SPDX-License-Identifier: MIT */
/*
 * Small helpers of src/core/util.c: URLs shown in logs never carry a
 * password, in the user information or in the query string.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fluxo/util.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_url_redact)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
