/* SPDX-License-Identifier: MIT */
/*
 * Field value parsers (include/fluxo/types.h): tables of valid and invalid
 * inputs for every function, with the exact user-facing reasons, calendar
 * and DST boundaries, and a property test of the zone conversion against
 * the C library's localtime_r over several centuries and zones.
 */
#include "testutil.h"

#include "fluxo/error.h"
#include "fluxo/types.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct ok_i64 {
    const char *in;
    int64_t want;
};

struct bad {
    const char *in;
    const char *why;
};

static int64_t utc(int y, int m, int d, int hh, int mi, int ss)
{
    return (int64_t)fx_days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss;
}

typedef int (*parse_i64_fn)(const char *, size_t, int64_t *, const char **);

static void check_ok_i64(parse_i64_fn fn, const struct ok_i64 *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = 0x5a5a;
        const char *why = NULL;
        int rc = fn(t[i].in, strlen(t[i].in), &v, &why);
        if (rc != 0 || v != t[i].want)
            fail_msg("\"%s\": rc %d (%s), got %lld, want %lld", t[i].in, rc, why ? why : "-",
                     (long long)v, (long long)t[i].want);
    }
}

static void check_bad_i64(parse_i64_fn fn, const struct bad *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = 0x5a5a;
        const char *why = NULL;
        int rc = fn(t[i].in, strlen(t[i].in), &v, &why);
        if (rc != FX_EPARSE || !why || strcmp(why, t[i].why))
            fail_msg("\"%s\": rc %d, why \"%s\", want \"%s\"", t[i].in, rc, why ? why : "(null)",
                     t[i].why);
        if (v != 0x5a5a)
            fail_msg("\"%s\": output written on error", t[i].in);
        /* why may be NULL */
        assert_int_equal(fn(t[i].in, strlen(t[i].in), &v, NULL), FX_EPARSE);
    }
}

/* ---- int --------------------------------------------------------------------------------- */

static void test_int(void **state)
{
    (void)state;
    static const struct ok_i64 ok[] = {
        {"12", 12},
        {"+12", 12},
        {"-3", -3},
        {"  42\t", 42},
        {"007", 7},
        {"0", 0},
        {"-0", 0},
        {"12.0", 12},
        {"12,00", 12},
        {"-12,0", -12},
        {"12.0000", 12},
        {"1234.000", 1234},
        {"0.00", 0},
        {"\xc2\xa0"
         "5\xc2\xa0",
         5},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"00000000000000000000000001", 1},
    };
    static const struct bad bad[] = {
        {"", "empty value"},
        {"   ", "empty value"},
        {"1.5", "not a whole number"},
        {"12,50", "not a whole number"},
        {"12.01", "not a whole number"},
        {"1.000", "ambiguous separator: thousands or decimal point"},
        {"1.234", "ambiguous separator: thousands or decimal point"},
        {"123,456", "ambiguous separator: thousands or decimal point"},
        {"1.234.567", "thousands separators are not allowed in whole numbers"},
        {"1.000,00", "thousands separators are not allowed in whole numbers"},
        {"9223372036854775808", "number is out of range"},
        {"-9223372036854775809", "number is out of range"},
        {"99999999999999999999999", "number is out of range"},
        {"12a", "invalid character 'a'"},
        {"1e3", "invalid character 'e'"},
        {"0x1F", "invalid character 'x'"},
        {"1 2", "invalid character ' '"},
        {"12.5a", "invalid character 'a'"},
        {"--1", "more than one sign"},
        {"+-1", "more than one sign"},
        {"-", "no digits"},
        {"+", "no digits"},
        {".5", "no digits before the separator"},
        {"12.", "number ends with a separator"},
        {"R$ 12", "invalid character 'R'"},
        {"\xc3\xa9", "invalid non-ASCII character"},
        {"1\x01", "invalid control character"},
    };
    check_ok_i64(fx_parse_int, ok, N(ok));
    check_bad_i64(fx_parse_int, bad, N(bad));

    /* Not NUL-terminated: only n bytes are read. */
    int64_t v;
    assert_int_equal(fx_parse_int("123456", 3, &v, NULL), 0);
    assert_int_equal(v, 123);
}

/* ---- money ------------------------------------------------------------------------------- */

static void test_money_ok(void **state)
{
    (void)state;
    static const struct ok_i64 ok[] = {
        {"1234.56", 123456},
        {"1234,56", 123456},
        {"1.234,56", 123456},
        {"1,234.56", 123456},
        {"R$ 1.234,56", 123456},
        {"R$\xc2\xa0"
         "1.234,56",
         123456}, /* no-break space, as spreadsheets write it */
        {"R$1234", 123400},
        {"r$ 7", 700},
        {"BRL 10,00", 1000},
        {"brl10", 1000},
        {"-12,5", -1250},
        {"-R$ 12,50", -1250},
        {"R$ -12,50", -1250},
        {"- R$ 3", -300},
        {"+7", 700},
        {"3500.00", 350000},
        {"3500.5", 350050},
        {"3500", 350000},
        {"1.234.567,89", 123456789},
        {"1,234,567.89", 123456789},
        {"  12,3 ", 1230},
        {"1.234", 123400}, /* single separator + 3 digits: thousands */
        {"1,234", 123400},
        {"12.345", 1234500},
        {"999,999", 99999900},
        {"1.234.567", 123456700},
        {"1,234,567", 123456700},
        {"0,05", 5},
        {"-0,05", -5},
        {"0.5", 50},
        {",5", 50},
        {".05", 5},
        {"0", 0},
        {"-0", 0},
        {"000012,30", 1230},
        {"1234.500", 123450}, /* exact trailing zeros are not rounding */
        {"0.500", 50},
        {"12,3400", 1234},
        {"92233720368547758.07", INT64_MAX},
        {"-92233720368547758.08", INT64_MIN},
        {"92.233.720.368.547.758,07", INT64_MAX},
    };
    check_ok_i64(fx_parse_money, ok, N(ok));
}

static void test_money_bad(void **state)
{
    (void)state;
    static const struct bad bad[] = {
        {"", "empty value"},
        {" \t ", "empty value"},
        {"1.23.4", "thousands groups must have 3 digits"},
        {"1.2345.678", "thousands groups must have 3 digits"},
        {"1.234.56", "thousands groups must have 3 digits"},
        {"1,2,3", "thousands groups must have 3 digits"},
        {"1234,567.89", "thousands groups must have 3 digits"},
        {"01.234,56", "thousands groups must have 3 digits"},
        {",123.45", "thousands groups must have 3 digits"},
        {"1.23,45", "thousands groups must have 3 digits"},
        {"12.345,678", "more than 2 decimal places"},
        {"1,234.567", "more than 2 decimal places"},
        {"1234.567", "more than 2 decimal places"},
        {"1.5678", "more than 2 decimal places"},
        {"0.123", "more than 2 decimal places"},
        {"0,001", "more than 2 decimal places"},
        {"12,345678", "more than 2 decimal places"},
        {"1.234,56.78", "more than one decimal separator"},
        {"1,234.56,7", "more than one decimal separator"},
        {"12a", "invalid character 'a'"},
        {"abc", "invalid character 'a'"},
        {"1e5", "invalid character 'e'"},
        {"NaN", "invalid character 'N'"},
        {"US$ 10", "invalid character 'U'"},
        {"R$ R$ 1", "invalid character 'R'"},
        {"R$ 10 BRL", "invalid character ' '"},
        {"1 234,56", "invalid character ' '"},
        {"(12,50)", "invalid character '('"},
        {"12-", "invalid character '-'"},
        {"1-2", "invalid character '-'"},
        {"--12", "more than one sign"},
        {"-+12", "more than one sign"},
        {"- -12", "more than one sign"},
        {"-R$ -1", "more than one sign"},
        {"12.", "number ends with a separator"},
        {"1.234,", "number ends with a separator"},
        {".", "no digits"},
        {",", "no digits"},
        {"R$", "no digits"},
        {"-", "no digits"},
        {"R$ ,", "no digits"},
        {"92233720368547758.08", "number is out of range"},
        {"-92233720368547758.09", "number is out of range"},
        {"99999999999999999999", "number is out of range"},
        {"\xe2\x82\xac 5", "invalid non-ASCII character"},
        {"5\x7f", "invalid control character"},
    };
    check_bad_i64(fx_parse_money, bad, N(bad));
}

/* Every value survives format -> parse. */
static void test_money_format(void **state)
{
    (void)state;
    static const struct {
        int64_t cents;
        const char *text;
    } t[] = {
        {0, "0.00"},
        {5, "0.05"},
        {-5, "-0.05"},
        {50, "0.50"},
        {100, "1.00"},
        {-100, "-1.00"},
        {123456, "1234.56"},
        {-123456, "-1234.56"},
        {350000, "3500.00"},
        {INT64_MAX, "92233720368547758.07"},
        {INT64_MIN, "-92233720368547758.08"},
    };
    char buf[32];
    for (size_t i = 0; i < N(t); i++) {
        fx_format_money(t[i].cents, buf);
        assert_string_equal(buf, t[i].text);
        int64_t back;
        assert_int_equal(fx_parse_money(buf, strlen(buf), &back, NULL), 0);
        assert_true(back == t[i].cents);
    }
    for (int64_t c = -100000; c <= 100000; c += 7) {
        int64_t back;
        fx_format_money(c, buf);
        assert_int_equal(fx_parse_money(buf, strlen(buf), &back, NULL), 0);
        assert_true(back == c);
    }
}

/* ---- decimal ----------------------------------------------------------------------------- */

static int64_t dec(const char *s, int scale, int *rc, const char **why)
{
    int64_t v = 0;
    *why = NULL;
    *rc = fx_parse_decimal(s, strlen(s), scale, &v, why);
    return v;
}

static void test_decimal(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int scale;
        int64_t want;
    } ok[] = {
        {"12", 0, 12},
        {"12.0", 0, 12},
        {"1.234.567", 0, 1234567},
        {"1,5", 1, 15},
        {"-1,5", 1, -15},
        {"1.234", 2, 123400},
        {"0.125", 3, 125},
        {"1234.567", 3, 1234567},
        {"1.234,567", 3, 1234567},
        {"1,234.567", 3, 1234567},
        {"1.234.567", 3, 1234567000},
        {"1,5", 3, 1500},
        {"12.3450", 3, 12345},
        {"1,234.5678", 4, 12345678},
        {"0,0001", 4, 1},
        {"1.123456789", 9, 1123456789},
        {"-0.000000001", 9, -1},
        {"9223372036.854775807", 9, INT64_MAX},
        {"-9223372036.854775808", 9, INT64_MIN},
        {"922337203685477580.7", 1, INT64_MAX},
    };
    static const struct {
        const char *in;
        int scale;
        const char *why;
    } bad[] = {
        {"12.5", 0, "decimal places are not allowed"},
        {"1,25", 1, "more than 1 decimal place"},
        {"12.3456", 3, "more than 3 decimal places"},
        {"1.0000000001", 9, "more than 9 decimal places"},
        {"1.234", 3, "ambiguous separator: thousands or decimal point"},
        {"12,500", 4, "ambiguous separator: thousands or decimal point"},
        {"R$ 5", 2, "invalid character 'R'"},
        {"9223372037", 9, "number is out of range"},
        {"1.23.4", 2, "thousands groups must have 3 digits"},
        {"", 2, "empty value"},
    };
    for (size_t i = 0; i < N(ok); i++) {
        int rc;
        const char *why;
        int64_t v = dec(ok[i].in, ok[i].scale, &rc, &why);
        if (rc || v != ok[i].want)
            fail_msg("\"%s\" scale %d: rc %d (%s) got %lld", ok[i].in, ok[i].scale, rc,
                     why ? why : "-", (long long)v);
    }
    for (size_t i = 0; i < N(bad); i++) {
        int rc;
        const char *why;
        dec(bad[i].in, bad[i].scale, &rc, &why);
        if (rc != FX_EPARSE || !why || strcmp(why, bad[i].why))
            fail_msg("\"%s\" scale %d: rc %d why \"%s\", want \"%s\"", bad[i].in, bad[i].scale, rc,
                     why ? why : "(null)", bad[i].why);
    }
    int rc;
    const char *why;
    dec("1", -1, &rc, &why);
    assert_int_equal(rc, FX_EINVAL);
    dec("1", 10, &rc, &why);
    assert_int_equal(rc, FX_EINVAL);
    /* scale 2 is exactly money, minus the currency prefix */
    int64_t a, b;
    const char *same[] = {"1.234,56", "1,234.56", "-12,5", "1.234", "0.500", ",5"};
    for (size_t i = 0; i < N(same); i++) {
        assert_int_equal(fx_parse_money(same[i], strlen(same[i]), &a, NULL), 0);
        assert_int_equal(fx_parse_decimal(same[i], strlen(same[i]), 2, &b, NULL), 0);
        assert_true(a == b);
    }
}

/* ---- civil calendar ---------------------------------------------------------------------- */

static void test_civil(void **state)
{
    (void)state;
    assert_int_equal(fx_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(fx_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(fx_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(fx_days_from_civil(1900, 1, 1), -25567);
    assert_int_equal(fx_days_from_civil(2024, 2, 29), 19782);
    assert_int_equal(fx_days_from_civil(0, 1, 1), -719528);
    assert_int_equal(fx_days_from_civil(9999, 12, 31), 2932896);
    assert_int_equal(fx_days_from_civil(2000, 3, 1) - fx_days_from_civil(2000, 2, 28), 2);
    assert_int_equal(fx_days_from_civil(1900, 3, 1) - fx_days_from_civil(1900, 2, 28), 1);
    assert_int_equal(fx_days_from_civil(2100, 3, 1) - fx_days_from_civil(2100, 2, 28), 1);
    assert_int_equal(fx_days_from_civil(2024, 3, 1) - fx_days_from_civil(2024, 2, 28), 2);

    /* Day by day from year -800 to 9999: consecutive, valid, round-tripping. */
    int py, pm, pd;
    fx_civil_from_days(-1012000, &py, &pm, &pd);
    for (int32_t z = -1011999; z <= 2932896; z++) {
        int y, m, d;
        fx_civil_from_days(z, &y, &m, &d);
        int next = (y == py && m == pm && d == pd + 1) || (y == py && m == pm + 1 && d == 1) ||
                   (y == py + 1 && m == 1 && pm == 12 && d == 1);
        if (!next || fx_days_from_civil(y, m, d) != z)
            fail_msg("day %d: %d-%d-%d after %d-%d-%d", z, y, m, d, py, pm, pd);
        py = y, pm = m, pd = d;
    }
    int y, m, d;
    fx_civil_from_days(INT32_MIN, &y, &m, &d);
    assert_int_equal(fx_days_from_civil(y, m, d), INT32_MIN);
    fx_civil_from_days(INT32_MAX, &y, &m, &d);
    assert_int_equal(fx_days_from_civil(y, m, d), INT32_MAX);
}

/* ---- dates ------------------------------------------------------------------------------- */

static void test_date(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int y, m, d;
    } ok[] = {
        {"31/01/2024", 2024, 1, 31},
        {"1/2/2024", 2024, 2, 1},
        {"01-02-2024", 2024, 2, 1},
        {"01.02.2024", 2024, 2, 1},
        {"2024-02-29", 2024, 2, 29},
        {"29/02/2024", 2024, 2, 29},
        {"2000-02-29", 2000, 2, 29},
        {"29/02/2000", 2000, 2, 29},
        {"1900-02-28", 1900, 2, 28},
        {"2024/12/31", 2024, 12, 31},
        {"2024-1-5", 2024, 1, 5},
        {"2024.01.05", 2024, 1, 5},
        {"30/04/2024", 2024, 4, 30},
        {"31/12/1999", 1999, 12, 31},
        {"1000-01-01", 1000, 1, 1},
        {"9999-12-31", 9999, 12, 31},
        {"  15/03/2024\t", 2024, 3, 15},
        {"2024-01-31T10:00:00", 2024, 1, 31},
        {"2024-01-31 10:00", 2024, 1, 31},
        {"2024-01-31T23:30:00-03:00", 2024, 1, 31}, /* the date as written */
        {"2024-01-31T23:30:00.123Z", 2024, 1, 31},
        {"31/01/2024 23:59:59", 2024, 1, 31},
        {"31/01/2024, 08:00", 2024, 1, 31},
        {"31/01/2024 00:00:00", 2024, 1, 31},
    };
    static const struct bad bad[] = {
        {"", "empty value"},
        {"29/02/2023", "day 29 does not exist in February (not a leap year)"},
        {"1900-02-29", "day 29 does not exist in February (not a leap year)"},
        {"2100-02-29", "day 29 does not exist in February (not a leap year)"},
        {"30/02/2024", "day 30 does not exist in February"},
        {"31/02/2024", "day 31 does not exist in February"},
        {"31/04/2024", "day 31 does not exist in April"},
        {"31/06/2024", "day 31 does not exist in June"},
        {"31/09/2024", "day 31 does not exist in September"},
        {"2024-11-31", "day 31 does not exist in November"},
        {"2024-13-01", "month 13 is out of range"},
        {"2024-00-10", "month 0 is out of range"},
        {"12/31/2024", "month 31 is out of range"},
        {"01/99/2024", "month 99 is out of range"},
        {"00/01/2024", "day 0 is out of range"},
        {"32/01/2024", "day 32 is out of range"},
        {"31/01/24", "ambiguous two-digit year (write all 4 digits)"},
        {"1/1/99", "ambiguous two-digit year (write all 4 digits)"},
        {"31/01/202", "year must have 4 digits"},
        {"31/01/20245", "year must have 4 digits"},
        {"0999-01-01", "year must be between 1000 and 9999"},
        {"0000-01-01", "year must be between 1000 and 9999"},
        {"2024-001-01", "month must have 1 or 2 digits"},
        {"01/001/2024", "month must have 1 or 2 digits"},
        {"2024-01-001", "day must have 1 or 2 digits"},
        {"2024-01/31", "date separators do not match"},
        {"31/01-2024", "date separators do not match"},
        {"20240131", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
        {"abc", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
        {"2024-01", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
        {"2024--01", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
        {"202-01-01", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
        {"31 jan 2024", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
        {"2024-01-31T", "expected a time after the date"},
        {"2024-01-31x", "invalid character 'x'"},
        {"2024-01-31T25:00", "hour 25 is out of range"},
        {"31/01/2024 10h", "expected a time as HH:MM or HH:MM:SS"},
    };
    for (size_t i = 0; i < N(ok); i++) {
        int32_t days = -1;
        const char *why = NULL;
        int rc = fx_parse_date(ok[i].in, strlen(ok[i].in), &days, &why);
        if (rc || days != fx_days_from_civil(ok[i].y, ok[i].m, ok[i].d))
            fail_msg("\"%s\": rc %d (%s)", ok[i].in, rc, why ? why : "-");
    }
    for (size_t i = 0; i < N(bad); i++) {
        int32_t days = -7;
        const char *why = NULL;
        int rc = fx_parse_date(bad[i].in, strlen(bad[i].in), &days, &why);
        if (rc != FX_EPARSE || !why || strcmp(why, bad[i].why) || days != -7)
            fail_msg("\"%s\": rc %d why \"%s\", want \"%s\"", bad[i].in, rc, why ? why : "(null)",
                     bad[i].why);
    }

    /* Leap years across four centuries: Feb 29 exactly when y%4==0 && (y%100 || y%400==0). */
    for (int y = 1600; y <= 2400; y++) {
        char buf[16];
        int32_t days;
        snprintf(buf, sizeof buf, "29/02/%04d", y);
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        assert_int_equal(fx_parse_date(buf, strlen(buf), &days, NULL), leap ? 0 : FX_EPARSE);
    }

    char out[11];
    fx_format_date(0, out);
    assert_string_equal(out, "1970-01-01");
    fx_format_date(-1, out);
    assert_string_equal(out, "1969-12-31");
    fx_format_date(19782, out);
    assert_string_equal(out, "2024-02-29");
    fx_format_date(fx_days_from_civil(1000, 1, 1), out);
    assert_string_equal(out, "1000-01-01");
    fx_format_date(INT32_MIN, out);
    assert_string_equal(out, "0000-01-01");
    fx_format_date(INT32_MAX, out);
    assert_string_equal(out, "9999-12-31");
}

/* ---- date-times and zones ---------------------------------------------------------------- */

static void check_dt(const char *in, int64_t want)
{
    int64_t v = 0;
    const char *why = NULL;
    int rc = fx_parse_datetime(in, strlen(in), &v, &why);
    if (rc || v != want) {
        char got[21], exp[21];
        fx_format_datetime(v, got);
        fx_format_datetime(want, exp);
        fail_msg("\"%s\": rc %d (%s), got %s, want %s", in, rc, why ? why : "-", got, exp);
    }
}

/* Must run before any fx_tz_set: the default zone is America/Sao_Paulo. */
static void test_datetime_default_zone(void **state)
{
    (void)state;
    check_dt("2023-06-01 12:00", utc(2023, 6, 1, 15, 0, 0));
    check_dt("2018-12-01 12:00", utc(2018, 12, 1, 14, 0, 0));
    check_dt("2018-06-01 12:00", utc(2018, 6, 1, 15, 0, 0));
}

static void test_datetime(void **state)
{
    (void)state;
    assert_int_equal(fx_tz_set("America/Sao_Paulo"), 0);
    const struct ok_i64 ok[] = {
        /* explicit zones */
        {"2024-01-31T10:00:00Z", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-31t10:00:00z", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-31T10:00Z", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-31T10:00:00.999Z", utc(2024, 1, 31, 10, 0, 0)}, /* fraction truncated */
        {"2024-01-31T10:00:00,5Z", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-31T10:00:00+05:30", utc(2024, 1, 31, 4, 30, 0)},
        {"2024-01-31T10:00:00+0530", utc(2024, 1, 31, 4, 30, 0)},
        {"2024-01-31T10:00:00+05", utc(2024, 1, 31, 5, 0, 0)},
        {"2024-01-31T10:00:00-03:00", utc(2024, 1, 31, 13, 0, 0)},
        {"2024-01-31 10:00:00 -0300", utc(2024, 1, 31, 13, 0, 0)},
        {"2024-01-31 10:00:00.123456+00", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-31 10:00:00 UTC", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-31 10:00:00 gmt", utc(2024, 1, 31, 10, 0, 0)},
        {"2024-01-01T01:00:00+02:00", utc(2023, 12, 31, 23, 0, 0)},
        {"31/01/2024 10:00 Z", utc(2024, 1, 31, 10, 0, 0)},
        /* naive: Sao Paulo local time, -03 since 2019 */
        {"2023-06-01 12:00", utc(2023, 6, 1, 15, 0, 0)},
        {"2023-06-01T12:00:00", utc(2023, 6, 1, 15, 0, 0)},
        {"31/01/2024 10:00", utc(2024, 1, 31, 13, 0, 0)},
        {"31/01/2024T10:00:00", utc(2024, 1, 31, 13, 0, 0)},
        {"31/01/2024, 10:00", utc(2024, 1, 31, 13, 0, 0)},
        {"1/2/2024 9:05", utc(2024, 2, 1, 12, 5, 0)},
        {"01-02-2024 09:05:07", utc(2024, 2, 1, 12, 5, 7)},
        {"2024-01-31", utc(2024, 1, 31, 3, 0, 0)},
        {"31/12/2024 23:59:59", utc(2025, 1, 1, 2, 59, 59)},
        /* DST era: -02 in summer, -03 in winter */
        {"2018-12-01 12:00", utc(2018, 12, 1, 14, 0, 0)},
        {"2018-06-01 12:00", utc(2018, 6, 1, 15, 0, 0)},
        {"2016-01-15 08:00", utc(2016, 1, 15, 10, 0, 0)},
        /* DST start 2018-11-04: 00:00 -03 jumped to 01:00 -02 */
        {"2018-11-03 23:59:59", utc(2018, 11, 4, 2, 59, 59)},
        {"2018-11-04 00:00", utc(2018, 11, 4, 3, 0, 0)},  /* gap: shifted forward */
        {"2018-11-04 00:30", utc(2018, 11, 4, 3, 30, 0)}, /* gap: = 01:30 -02 */
        {"2018-11-04", utc(2018, 11, 4, 3, 0, 0)},        /* midnight does not exist */
        {"2018-11-04 01:00", utc(2018, 11, 4, 3, 0, 0)},
        {"2018-11-04 01:30", utc(2018, 11, 4, 3, 30, 0)},
        /* DST end 2019-02-17: 00:00 -02 went back to 23:00 -03 on the 16th */
        {"2019-02-16 22:59:59", utc(2019, 2, 17, 0, 59, 59)},
        {"2019-02-16 23:00", utc(2019, 2, 17, 1, 0, 0)},  /* ambiguous: first (-02) */
        {"2019-02-16 23:30", utc(2019, 2, 17, 1, 30, 0)}, /* ambiguous: first (-02) */
        {"2019-02-16 23:59:59", utc(2019, 2, 17, 1, 59, 59)},
        {"2019-02-17 00:00", utc(2019, 2, 17, 3, 0, 0)},
        {"2019-02-17", utc(2019, 2, 17, 3, 0, 0)},
        /* far past and future */
        {"1000-01-01 00:00:00Z", utc(1000, 1, 1, 0, 0, 0)},
        {"9999-12-31 23:59:59Z", utc(9999, 12, 31, 23, 59, 59)},
        {"9999-12-31 23:59:59", utc(10000, 1, 1, 2, 59, 59)},
        {"2100-01-01 00:00", utc(2100, 1, 1, 3, 0, 0)},
        {"1913-01-01 00:00", utc(1913, 1, 1, 3, 6, 28)}, /* local mean time, -3:06:28 */
    };
    check_ok_i64(fx_parse_datetime, ok, N(ok));

    static const struct bad bad[] = {
        {"", "empty value"},
        {"2024-01-31 24:00", "hour 24 is out of range"},
        {"2024-01-31 10:60", "minute 60 is out of range"},
        {"2024-01-31 23:59:60", "leap second 60 is not supported"},
        {"2024-01-31 23:59:61", "second 61 is out of range"},
        {"2024-01-31T10", "expected a time as HH:MM or HH:MM:SS"},
        {"2024-01-31T100:00", "expected a time as HH:MM or HH:MM:SS"},
        {"2024-01-31T10:0", "minutes must have 2 digits"},
        {"2024-01-31T10:000", "minutes must have 2 digits"},
        {"2024-01-31T10:00:0", "seconds must have 2 digits"},
        {"2024-01-31T10:00:00.Z", "expected digits after the decimal point of the seconds"},
        {"2024-01-31T10:00:00+25:00", "time zone offset out of range"},
        {"2024-01-31T10:00:00+03:60", "time zone offset out of range"},
        {"2024-01-31T10:00:00+3", "time zone offset must be ±HH:MM"},
        {"2024-01-31T10:00:00+03:0", "time zone offset must be ±HH:MM"},
        {"2024-01-31T10:00:00+03:00x", "invalid character 'x'"},
        {"2024-01-31T10:00 PM", "invalid character 'P'"},
        {"2024-01-31T10:00:00Zx", "invalid character 'Z'"},
        {"2024-01-31T", "expected a time after the date"},
        {"29/02/2023 10:00", "day 29 does not exist in February (not a leap year)"},
        {"31/01/24 10:00", "ambiguous two-digit year (write all 4 digits)"},
        {"10:00", "not a date (expected dd/mm/yyyy or yyyy-mm-dd)"},
    };
    check_bad_i64(fx_parse_datetime, bad, N(bad));

    char out[21];
    fx_format_datetime(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    fx_format_datetime(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    fx_format_datetime(1700000000, out);
    assert_string_equal(out, "2023-11-14T22:13:20Z");
    fx_format_datetime(utc(2024, 2, 29, 23, 5, 9), out);
    assert_string_equal(out, "2024-02-29T23:05:09Z");
    fx_format_datetime(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    fx_format_datetime(INT64_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00Z");
}

static void test_tz_set(void **state)
{
    (void)state;
    const char *bad[] = {"Not/AZone",
                         "",
                         "America",
                         "../../../../etc/passwd",
                         "/usr/share/zoneinfo/UTC",
                         "America/../UTC",
                         "America//Sao_Paulo",
                         "zone.tab",
                         "America/Sao Paulo",
                         "./UTC"};
    assert_int_equal(fx_tz_set(NULL), FX_EINVAL);
    for (size_t i = 0; i < N(bad); i++)
        if (fx_tz_set(bad[i]) != FX_EINVAL)
            fail_msg("fx_tz_set(\"%s\") accepted", bad[i]);

    assert_int_equal(fx_tz_set("UTC"), 0);
    check_dt("2024-01-31 10:00", utc(2024, 1, 31, 10, 0, 0));
    /* a failed set keeps the previous zone */
    assert_int_equal(fx_tz_set("Not/AZone"), FX_EINVAL);
    check_dt("2024-01-31 10:00", utc(2024, 1, 31, 10, 0, 0));

    assert_int_equal(fx_tz_set("America/New_York"), 0);
    check_dt("2024-07-01 12:00", utc(2024, 7, 1, 16, 0, 0));
    check_dt("2024-01-01 12:00", utc(2024, 1, 1, 17, 0, 0));
    check_dt("2024-03-10 02:30", utc(2024, 3, 10, 7, 30, 0)); /* gap -> 03:30 EDT */
    check_dt("2024-11-03 01:30", utc(2024, 11, 3, 5, 30, 0)); /* ambiguous -> EDT */
    check_dt("2100-07-01 12:00", utc(2100, 7, 1, 16, 0, 0));  /* footer rule */
    check_dt("2100-01-01 12:00", utc(2100, 1, 1, 17, 0, 0));

    assert_int_equal(fx_tz_set("Australia/Sydney"), 0); /* southern DST */
    check_dt("2100-01-01 12:00", utc(2100, 1, 1, 1, 0, 0));
    check_dt("2100-07-01 12:00", utc(2100, 7, 1, 2, 0, 0));

    assert_int_equal(fx_tz_set("Asia/Kolkata"), 0);
    check_dt("2024-01-31 10:00", utc(2024, 1, 31, 4, 30, 0));

    assert_int_equal(fx_tz_set("America/Sao_Paulo"), 0);
    check_dt("2018-11-04 00:30", utc(2018, 11, 4, 3, 30, 0));
}

/* A hand-made version 1 TZif file (32-bit times, no footer) read from $TZDIR. */
static size_t put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

static void test_tz_tzif_v1(void **state)
{
    (void)state;
    unsigned char f[128] = "TZif";
    size_t k = 20;                           /* magic, version 0 ('\0'), 15 reserved bytes */
    uint32_t counts[6] = {0, 0, 0, 2, 2, 4}; /* isut, isstd, leap, time, type, char */
    for (int i = 0; i < 6; i++)
        k += put_be32(f + k, counts[i]);
    k += put_be32(f + k, 1000000000u);
    k += put_be32(f + k, 1100000000u);
    f[k++] = 1;                             /* from 1e9: type 1 */
    f[k++] = 0;                             /* from 1.1e9: type 0 */
    k += put_be32(f + k, (uint32_t)-10800); /* type 0: -03, not DST */
    f[k++] = 0;
    f[k++] = 0;
    k += put_be32(f + k, 3600); /* type 1: +01, DST */
    f[k++] = 1;
    f[k++] = 0;
    memcpy(f + k, "XXX", 4);
    k += 4;

    char *dir = tu_tmpdir();
    free(tu_write_file(dir, "V1", f, k));
    free(tu_write_file(dir, "Short", f, k - 5));
    free(tu_write_file(dir, "Text", "not a zone file at all, just some text here....", 48));
    setenv("TZDIR", dir, 1);
    assert_int_equal(fx_tz_set("V1"), 0);
    assert_int_equal(fx_tz_set("Short"), FX_EINVAL);
    assert_int_equal(fx_tz_set("Text"), FX_EINVAL);
    assert_int_equal(fx_tz_set("V1"), 0);
    unsetenv("TZDIR");

    check_dt("1985-11-04 21:53:20", 500000000);  /* before the first transition: -03 */
    check_dt("2003-04-10 19:40:00", 1050000000); /* +01 */
    check_dt("2001-09-09 00:46:40", 1000007200); /* in the gap: shifted forward */
    check_dt("2008-01-10 18:20:00", 1200000000); /* after the last, no footer: -03 */
    check_dt("2001-09-08 22:46:40", 1000000000); /* 22:46:40 -03 is in the 4 h gap */
    tu_rmrf(dir);
    free(dir);

    assert_int_equal(fx_tz_set("Etc/GMT+3"), 0); /* no transitions, footer only */
    check_dt("2024-01-01 00:00", utc(2024, 1, 1, 3, 0, 0));
    assert_int_equal(fx_tz_set("America/Sao_Paulo"), 0);
}

/*
 * Property test against the C library. For instants across 1850..2150 in
 * many zones: the local wall time libc reports parses back to the instant,
 * or, when that wall time occurs twice, to the earlier instant. At each
 * transition, wall times inside a gap shift forward by the gap and
 * ambiguous ones take the earlier instant.
 */
static void wall_string(int64_t wall, char *buf)
{
    char z[21];
    fx_format_datetime(wall, z);
    memcpy(buf, z, 19); /* naive: drop the 'Z' */
    buf[19] = '\0';
}

static int64_t parse_wall(int64_t wall)
{
    char buf[24];
    int64_t v;
    wall_string(wall, buf);
    const char *why = NULL;
    if (fx_parse_datetime(buf, strlen(buf), &v, &why))
        fail_msg("\"%s\": %s", buf, why);
    return v;
}

static long libc_off(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return tm.tm_gmtoff;
}

static void check_instant(const char *zone, int64_t t)
{
    long o = libc_off(t);
    int64_t r = parse_wall(t + o);
    if (r == t)
        return;
    /* acceptable only as the earlier reading of an ambiguous wall time */
    if (!(r < t && r + libc_off(r) == t + o)) {
        char w[24], a[21], b[21];
        wall_string(t + o, w);
        fx_format_datetime(t, a);
        fx_format_datetime(r, b);
        fail_msg("%s: wall %s is %s (libc), parsed as %s", zone, w, a, b);
    }
}

static int transitions_checked;

static void check_transition(const char *zone, int64_t lo, int64_t hi)
{
    transitions_checked++;
    /* bisect the instant T where the libc offset changes: off(lo) != off(hi) */
    long o1 = libc_off(lo), o2;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (libc_off(mid) == o1)
            lo = mid;
        else
            hi = mid;
    }
    int64_t T = hi;
    o2 = libc_off(T);
    for (int64_t d = -3; d <= 3; d++)
        check_instant(zone, T + d);
    long span = o2 > o1 ? o2 - o1 : o1 - o2;
    int64_t xs[3] = {0, span / 2, span - 1};
    for (int i = 0; i < 3; i++) {
        int64_t x = xs[i];
        if (o2 > o1) { /* gap: wall T+o1+x does not exist -> T + x */
            int64_t r = parse_wall(T + o1 + x);
            if (r != T + x)
                fail_msg("%s: gap at %lld+%lld parsed as %lld", zone, (long long)T, (long long)x,
                         (long long)r);
        } else { /* overlap: wall T+o2+x occurs twice -> the earlier, T+o2+x-o1 */
            int64_t r = parse_wall(T + o2 + x);
            if (r != T + o2 + x - o1)
                fail_msg("%s: overlap at %lld+%lld parsed as %lld", zone, (long long)T,
                         (long long)x, (long long)r);
        }
    }
}

static void test_tz_against_libc(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "America/Sao_Paulo",
        "America/Noronha",
        "America/Manaus",
        "America/New_York",
        "Europe/London",
        "Europe/Dublin",
        "Europe/Lisbon",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/St_Johns",
        "Pacific/Chatham",
        "Africa/Casablanca",
        "Asia/Tehran",
        "Pacific/Apia",
        "America/Santiago",
        "UTC",
    };
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    const int64_t from = utc(1850, 1, 1, 0, 0, 0), to = utc(2150, 1, 1, 0, 0, 0);
    const int64_t step = 97 * 3607; /* ~4 days, drifting through the hours */
    for (size_t z = 0; z < N(zones); z++) {
        assert_int_equal(fx_tz_set(zones[z]), 0);
        setenv("TZ", zones[z], 1);
        tzset();
        long prev = libc_off(from);
        for (int64_t t = from; t < to; t += step) {
            check_instant(zones[z], t);
            long o = libc_off(t + step);
            if (o != prev)
                check_transition(zones[z], t, t + step);
            prev = o;
        }
    }
    /* the sweep really crossed DST changes (about 2 per year in several zones) */
    assert_true(transitions_checked > 1500);
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    assert_int_equal(fx_tz_set("America/Sao_Paulo"), 0);
}

/* Several threads converting across DST boundaries agree with one thread. */
#define TH_N 4
#define TH_ROWS 20000
static int64_t th_expected[TH_ROWS];

static int64_t th_wall(int i)
{
    return utc(2015, 1, 1, 0, 0, 0) + (int64_t)i * 7919; /* 2015 .. 2020 */
}

static void *th_run(void *arg)
{
    (void)arg;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < TH_ROWS; i++) {
            char buf[24];
            int64_t v;
            wall_string(th_wall(i), buf);
            if (fx_parse_datetime(buf, strlen(buf), &v, NULL) || v != th_expected[i])
                return (void *)1;
        }
    return NULL;
}

static void test_tz_threads(void **state)
{
    (void)state;
    assert_int_equal(fx_tz_set("America/Sao_Paulo"), 0);
    for (int i = 0; i < TH_ROWS; i++) {
        char buf[24];
        wall_string(th_wall(i), buf);
        assert_int_equal(fx_parse_datetime(buf, strlen(buf), &th_expected[i], NULL), 0);
    }
    pthread_t th[TH_N];
    for (int i = 0; i < TH_N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, th_run, NULL), 0);
    for (int i = 0; i < TH_N; i++) {
        void *res;
        pthread_join(th[i], &res);
        assert_null(res);
    }
}

/* ---- bool -------------------------------------------------------------------------------- */

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "true",       "TRUE", "True", "t",   "T",  "sim", "SIM",   "Sim",
        "s",          "S",    "yes",  "YES", "y",  "Y",   "1",     "verdadeiro",
        "VERDADEIRO", "v",    "x",    "X",   "on", "ON",  " sim ", "s\xc3\xadm" /* sím */};
    static const char *const no[] = {"false",      "FALSE", "f",   "F",     "n\xc3\xa3o", /* não */
                                     "N\xc3\x83O",                                        /* NÃO */
                                     "N\xc3\xa3o", "nao",   "NAO", "n",     "N",
                                     "no",         "NO",    "0",   "falso", "FALSO",
                                     "off",        "",      "   "};
    static const char *const bad[] = {
        "2",           "talvez",          "si", "yes!",  "1.0", "n\xc3\xa3oo", "\xff",
        "verdadeiroo", "simsimsimsimsim", "-",  "s i m", "ja",  "n\xc3\xa3",   "\xc3\x97"};
    for (size_t i = 0; i < N(yes); i++) {
        int v = -1;
        if (fx_parse_bool(yes[i], strlen(yes[i]), &v, NULL) || v != 1)
            fail_msg("\"%s\" is not true", yes[i]);
    }
    for (size_t i = 0; i < N(no); i++) {
        int v = -1;
        if (fx_parse_bool(no[i], strlen(no[i]), &v, NULL) || v != 0)
            fail_msg("\"%s\" is not false", no[i]);
    }
    for (size_t i = 0; i < N(bad); i++) {
        int v = -1;
        const char *why = NULL;
        if (fx_parse_bool(bad[i], strlen(bad[i]), &v, &why) != FX_EPARSE || v != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_string_equal(why, "not a yes/no value (expected sim/nao, true/false or 1/0)");
    }
}

/* ---- e-mail ------------------------------------------------------------------------------ */

static void test_email(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"Joao.Silva@Example.com.br", "joao.silva@example.com.br"},
        {"  a@b.co  ", "a@b.co"},
        {"a+tag@sub.domain.org", "a+tag@sub.domain.org"},
        {"o'neil@x.io", "o'neil@x.io"},
        {"user_name-1@my-domain.com.br", "user_name-1@my-domain.com.br"},
        {"1@2.com", "1@2.com"},
        {"x@a1.b2c", "x@a1.b2c"},
    };
    static const struct bad bad[] = {
        {"", "empty e-mail address"},
        {"   ", "empty e-mail address"},
        {"mailto:a@b.com", "remove the \"mailto:\" prefix"},
        {"MailTo:a@b.com", "remove the \"mailto:\" prefix"},
        {"ab.com", "e-mail address has no @"},
        {"a@@b.com", "e-mail address has more than one @"},
        {"a@b@c.com", "e-mail address has more than one @"},
        {"@b.com", "nothing before the @ in e-mail address"},
        {"a@", "nothing after the @ in e-mail address"},
        {"a@b", "e-mail domain has no dot"},
        {"a@localhost", "e-mail domain has no dot"},
        {"a b@c.com", "e-mail address contains a space"},
        {"Name <a@b.com>", "e-mail address contains a space"},
        {"a@b.c", "e-mail top-level domain too short"},
        {"a@b..com", "empty label in e-mail domain"},
        {"a@.b.com", "empty label in e-mail domain"},
        {"a@b.com.", "empty label in e-mail domain"},
        {".a@b.com", "misplaced dot before the @ in e-mail address"},
        {"a.@b.com", "misplaced dot before the @ in e-mail address"},
        {"a..b@c.com", "misplaced dot before the @ in e-mail address"},
        {"a@-b.com", "e-mail domain label starts or ends with a hyphen"},
        {"a@b-.com", "e-mail domain label starts or ends with a hyphen"},
        {"a@b.123", "e-mail domain ends with a number"},
        {"a@10.20.30.40", "e-mail domain ends with a number"},
        {"jo\xc3\xa3o@x.com", "e-mail address contains a non-ASCII character"},
        {"a@b_c.com", "invalid character '_'"},
        {"a,b@c.com", "invalid character ','"},
        {"a@[1.2.3.4]", "invalid character '['"},
        {"\"a\"@b.com", "invalid character '\"'"},
        {"a\x01@b.com", "e-mail address contains a control character"},
    };
    char out[256];
    size_t len;
    for (size_t i = 0; i < N(ok); i++) {
        const char *why = NULL;
        int rc = fx_parse_email(ok[i].in, strlen(ok[i].in), out, sizeof out, &len, &why);
        if (rc || strcmp(out, ok[i].out) || len != strlen(ok[i].out))
            fail_msg("\"%s\": rc %d (%s)", ok[i].in, rc, why ? why : "-");
    }
    for (size_t i = 0; i < N(bad); i++) {
        const char *why = NULL;
        int rc = fx_parse_email(bad[i].in, strlen(bad[i].in), out, sizeof out, &len, &why);
        if (rc != FX_EPARSE || !why || strcmp(why, bad[i].why))
            fail_msg("\"%s\": rc %d why \"%s\", want \"%s\"", bad[i].in, rc, why ? why : "(null)",
                     bad[i].why);
    }

    /* lengths: local part 64, label 63, total 254 */
    char buf[400];
    memset(buf, 'a', 64);
    strcpy(buf + 64, "@b.com");
    assert_int_equal(fx_parse_email(buf, strlen(buf), out, sizeof out, NULL, NULL), 0);
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@b.com");
    const char *why = NULL;
    assert_int_equal(fx_parse_email(buf, strlen(buf), out, sizeof out, NULL, &why), FX_EPARSE);
    assert_string_equal(why, "part before the @ longer than 64 characters");
    strcpy(buf, "a@");
    memset(buf + 2, 'b', 64);
    strcpy(buf + 66, ".com");
    assert_int_equal(fx_parse_email(buf, strlen(buf), out, sizeof out, NULL, &why), FX_EPARSE);
    assert_string_equal(why, "e-mail domain label longer than 63 characters");
    /* exactly 254: "a@" + 3 labels of 62 + '.' each + a last label of 63 */
    strcpy(buf, "a@");
    size_t k = 2;
    for (int i = 0; i < 3; i++) {
        memset(buf + k, 'c', 62);
        k += 62;
        buf[k++] = '.';
    }
    memset(buf + k, 'x', 63);
    buf[k + 63] = '\0';
    assert_int_equal(strlen(buf), 254);
    assert_int_equal(fx_parse_email(buf, 254, out, sizeof out, &len, &why), 0);
    assert_int_equal(len, 254);
    buf[254] = 'x';
    buf[255] = '\0';
    assert_int_equal(fx_parse_email(buf, 255, out, sizeof out, NULL, &why), FX_EPARSE);
    assert_string_equal(why, "e-mail address longer than 254 characters");
    /* output buffer too small */
    assert_int_equal(fx_parse_email("a@b.com", 7, out, 7, NULL, &why), FX_EPARSE);
    assert_string_equal(why, "e-mail address too long");
    assert_int_equal(fx_parse_email("a@b.com", 7, out, 8, &len, &why), 0);
    assert_string_equal(out, "a@b.com");
}

/* ---- digits, CPF, CNPJ ------------------------------------------------------------------- */

static void test_digits(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"529.982.247-25", "52998224725"},
        {"11.222.333/0001-81", "11222333000181"},
        {"+55 (11) 98765-4321", "5511987654321"},
        {"  123 ", "123"},
        {"12\xc2\xa0"
         "34",
         "1234"},
        {"1\t2", "12"},
        {"0", "0"},
    };
    static const struct bad bad[] = {
        {"123a", "unexpected character 'a'"},
        {"12_3", "unexpected character '_'"},
        {"12,3", "unexpected character ','"},
        {"ramal 12", "unexpected character 'r'"},
        {"12\xc3\xa7", "unexpected non-ASCII character"},
        {"1\x02", "unexpected control character"},
        {"", "no digits"},
        {"--", "no digits"},
        {" ( ) ", "no digits"},
    };
    char out[32];
    size_t len;
    for (size_t i = 0; i < N(ok); i++) {
        const char *why = NULL;
        int rc = fx_parse_digits(ok[i].in, strlen(ok[i].in), out, sizeof out, &len, &why);
        if (rc || strcmp(out, ok[i].out) || len != strlen(ok[i].out))
            fail_msg("\"%s\": rc %d (%s)", ok[i].in, rc, why ? why : "-");
    }
    for (size_t i = 0; i < N(bad); i++) {
        const char *why = NULL;
        int rc = fx_parse_digits(bad[i].in, strlen(bad[i].in), out, sizeof out, &len, &why);
        if (rc != FX_EPARSE || !why || strcmp(why, bad[i].why))
            fail_msg("\"%s\": rc %d why \"%s\", want \"%s\"", bad[i].in, rc, why ? why : "(null)",
                     bad[i].why);
    }
    const char *why = NULL;
    assert_int_equal(fx_parse_digits("12345", 5, out, 6, &len, &why), 0);
    assert_string_equal(out, "12345");
    assert_int_equal(fx_parse_digits("12345", 5, out, 5, &len, &why), FX_EPARSE);
    assert_string_equal(why, "too many digits");
    assert_int_equal(fx_parse_digits("1", 1, out, 0, NULL, &why), FX_EPARSE);
    assert_int_equal(fx_parse_digits("1", 1, out, 2, NULL, NULL), 0);
}

static void test_cpf_cnpj(void **state)
{
    (void)state;
    const char *cpf_ok[] = {"52998224725", "11144477735", "12345678909", "39053344705"};
    const char *cpf_bad[] = {"52998224724", "52998224715", "12345678900", "00000000000",
                             "11111111111", "99999999999", "5299822472a", "5299822472 "};
    const char *cnpj_ok[] = {"11222333000181", "11444777000161", "00000000000191"};
    const char *cnpj_bad[] = {"11222333000182", "11222333000191", "00000000000000",
                              "11111111111111", "1122233300018a", "AB222333000181"};
    for (size_t i = 0; i < N(cpf_ok); i++)
        if (fx_cpf_valid(cpf_ok[i]) != 1)
            fail_msg("CPF %s should be valid", cpf_ok[i]);
    for (size_t i = 0; i < N(cpf_bad); i++)
        if (fx_cpf_valid(cpf_bad[i]) != 0)
            fail_msg("CPF %s should be invalid", cpf_bad[i]);
    for (size_t i = 0; i < N(cnpj_ok); i++)
        if (fx_cnpj_valid(cnpj_ok[i]) != 1)
            fail_msg("CNPJ %s should be valid", cnpj_ok[i]);
    for (size_t i = 0; i < N(cnpj_bad); i++)
        if (fx_cnpj_valid(cnpj_bad[i]) != 0)
            fail_msg("CNPJ %s should be invalid", cnpj_bad[i]);
    assert_int_equal(fx_cpf_valid(NULL), 0);
    assert_int_equal(fx_cnpj_valid(NULL), 0);
    /* only the first 11 / 14 bytes are read */
    assert_int_equal(fx_cpf_valid("52998224725XYZ"), 1);

    /* Every single-digit change of a valid number breaks it. */
    char d[15];
    strcpy(d, "52998224725");
    for (int i = 0; i < 11; i++)
        for (char c = '0'; c <= '9'; c++) {
            char was = d[i];
            if (c == was)
                continue;
            d[i] = c;
            assert_int_equal(fx_cpf_valid(d), 0);
            d[i] = was;
        }
    strcpy(d, "11222333000181");
    for (int i = 0; i < 14; i++)
        for (char c = '0'; c <= '9'; c++) {
            char was = d[i];
            if (c == was)
                continue;
            d[i] = c;
            assert_int_equal(fx_cnpj_valid(d), 0);
            d[i] = was;
        }
    /* digits output feeds the validators */
    char out[16];
    assert_int_equal(fx_parse_digits("529.982.247-25", 14, out, sizeof out, NULL, NULL), 0);
    assert_int_equal(fx_cpf_valid(out), 1);
}

/* ---- name keys --------------------------------------------------------------------------- */

static void test_name_key(void **state)
{
    (void)state;
    static const struct {
        const char *in, *key;
    } t[] = {
        {"Valor Unitário", "valorunitario"},
        {"valor_unitario", "valorunitario"},
        {"VALOR UNITARIO", "valorunitario"},
        {"VALOR UNITÁRIO", "valorunitario"},
        {"Cartão de Crédito", "cartaodecredito"},
        {"CPF/CNPJ", "cpfcnpj"},
        {"Data-Hora", "datahora"},
        {"e-mail", "email"},
        {"  Nome.Completo  ", "nomecompleto"},
        {"Nº Pedido", "npedido"},
        {"Item 1", "item1"},
        {"ÀÁÂÃÄÅ àáâãäå", "aaaaaaaaaaaa"},
        {"ÇçÑñ", "ccnn"},
        {"ÈÉÊË èéêë ÌÍÎÏ ìíîï", "eeeeeeeeiiiiiiii"},
        {"ÒÓÔÕÖ òóôõö Ø ø", "oooooooooooo"},
        {"ÙÚÛÜ ùúûü Ýýÿ", "uuuuuuuuyyy"},
        {"Straße", "strasse"},
        {"Æsir æ", "aesirae"},
        {"Þór ð Ð", "thordd"},
        {"Œuvre œ", "oeuvreoe"},
        {"Łódź", "lodz"},
        {"Ångström", "angstrom"},
        {"ĳssel Ĳ", "ijsselij"},
        {"İstanbul ış", "istanbulis"},
        {"Šťastný Žluťoučký", "stastnyzlutoucky"},
        {"Dvořák", "dvorak"},
        {"2×3÷4", "234"},
        {"a\xff"
         "b",
         "ab"},         /* invalid byte dropped */
        {"a\xc3", "a"}, /* truncated sequence */
        {"a\xc0\xaf"
         "b",
         "ab"}, /* overlong '/' */
        {"a\xed\xa0\x80"
         "b",
         "ab"}, /* surrogate */
        {"日本 x", "x"},
        {"a\xcc\x81gua", "agua"}, /* decomposed á: the combining mark is dropped */
        {"😀ok", "ok"},
        {"", ""},
        {"!@#$%^&*()", ""},
    };
    char out[64];
    for (size_t i = 0; i < N(t); i++) {
        size_t n = fx_name_key(t[i].in, strlen(t[i].in), out, sizeof out);
        if (strcmp(out, t[i].key) || n != strlen(t[i].key))
            fail_msg("\"%s\": got \"%s\" (%zu), want \"%s\"", t[i].in, out, n, t[i].key);
    }
    /* truncation: at most cap-1 bytes + NUL */
    assert_int_equal(fx_name_key("abcdefg", 7, out, 5), 4);
    assert_string_equal(out, "abcd");
    assert_int_equal(fx_name_key("abc", 3, out, 1), 0);
    assert_string_equal(out, "");
    out[0] = 'z';
    assert_int_equal(fx_name_key("abc", 3, out, 0), 0);
    assert_int_equal(out[0], 'z');
    assert_int_equal(fx_name_key("aß", strlen("aß"), out, 3), 1); /* "ss" does not fit */
    assert_string_equal(out, "a");
    /* every Latin-1 / Latin Extended-A code point folds to ASCII letters (or nothing) */
    for (unsigned cp = 0xA0; cp <= 0x17F; cp++) {
        char in[3] = {(char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F)), 0};
        size_t n = fx_name_key(in, 2, out, sizeof out);
        assert_true(n <= 2);
        for (size_t j = 0; j < n; j++)
            assert_true(out[j] >= 'a' && out[j] <= 'z');
        if (cp >= 0xC0 && cp != 0xD7 && cp != 0xF7)
            assert_true(n >= 1);
    }
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len, want;
    } t[] = {
        {"", 0, 0},
        {"hello", 5, 5},
        {"a\0b", 3, 3},
        {"a\xc3\xa7\xc3\xa3o", 6, 6},
        {"\xf0\x9f\x98\x80", 4, 4},
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"\xef\xbf\xbf", 3, 3},     /* U+FFFF */
        {"\xed\x9f\xbf", 3, 3},     /* U+D7FF */
        {"\xee\x80\x80", 3, 3},     /* U+E000 */
        {"\xc2\x80", 2, 2},         /* U+0080 */
        {"\xe0\xa0\x80", 3, 3},     /* U+0800 */
        {"\xf0\x90\x80\x80", 4, 4}, /* U+10000 */
        {"\xc0\xaf", 2, 0},         /* overlong */
        {"\xc1\xbf", 2, 0},
        {"a\xe0\x80\xaf", 4, 1},
        {"ab\xf0\x80\x80\xaf", 6, 2},
        {"\xed\xa0\x80", 3, 0}, /* surrogate */
        {"x\xed\xbf\xbf", 4, 1},
        {"\xf4\x90\x80\x80", 4, 0}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xff", 1, 0},
        {"\x80", 1, 0},
        {"abc\xbf", 4, 3},
        {"ab\xe2\x82", 4, 2}, /* truncated */
        {"\xc3", 1, 0},
        {"\xc3\x28", 2, 0},
        {"0123456789abcdefg\xff"
         "0123456789",
         28, 17},
        {"0123456789abcdef\xc3\xa9"
         "0123456789",
         28, 28},
    };
    for (size_t i = 0; i < N(t); i++) {
        size_t r = fx_utf8_check(t[i].in, t[i].len);
        if (r != t[i].want)
            fail_msg("case %zu: got %zu, want %zu", i, r, t[i].want);
    }
    /* exhaustive over 2-byte sequences vs. the definition */
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++) {
            char s[2] = {(char)a, (char)b};
            int valid =
                (a < 0x80 && b < 0x80) || (a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF);
            assert_int_equal(fx_utf8_check(s, 2) == 2, valid);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datetime_default_zone), /* first: before any fx_tz_set */
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_money_ok),
        cmocka_unit_test(test_money_bad),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_datetime),
        cmocka_unit_test(test_tz_set),
        cmocka_unit_test(test_tz_tzif_v1),
        cmocka_unit_test(test_tz_against_libc),
        cmocka_unit_test(test_tz_threads),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_cpf_cnpj),
        cmocka_unit_test(test_name_key),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
