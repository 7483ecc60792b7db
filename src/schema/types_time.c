/* SPDX-License-Identifier: MIT */
/*
 * Date and date-time parsers and their canonical text forms.
 *
 * Accepted dates: "dd/mm/yyyy", "d/m/yyyy", "dd-mm-yyyy", "dd.mm.yyyy"
 * (day first, as in Brazil; the two separators must match), and
 * "yyyy-mm-dd", "yyyy/mm/dd", "yyyy.mm.dd" (year first). Day and month take
 * one or two digits, the year exactly four (two-digit years are rejected as
 * ambiguous), in 1000..9999. Every date is calendar-checked.
 *
 * A time may follow the date after 'T', spaces or ", ": "HH:MM[:SS[.frac]]"
 * (hour with one or two digits; fraction truncated), then optionally a zone:
 * "Z", "UTC", "GMT", "±HH", "±HHMM" or "±HH:MM", spaces allowed before it.
 * Second 60 (leap second) and hour 24 are rejected. fx_parse_date checks and
 * then ignores the time and zone (the date is taken as written).
 *
 * Naive date-times (no zone) are local wall time of the zone set by
 * fx_tz_set, converted by fx__tz_local_to_utc (types_tz.c): the civil
 * arithmetic here is pure integer math; only the UTC offset comes from the
 * zone data.
 */
#include "fluxo/error.h"
#include "fluxo/types.h"
#include "types_internal.h"

/* ---- civil calendar (proleptic Gregorian, after H. Hinnant's algorithms) ----------------- */

static int64_t days_from_civil64(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

int32_t fx_days_from_civil(int y, int m, int d)
{
    return (int32_t)days_from_civil64(y, m, d);
}

static void civil_from_days64(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void fx_civil_from_days(int32_t days, int *y, int *m, int *d)
{
    int64_t yy;
    civil_from_days64(days, &yy, m, d);
    *y = (int)yy;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const unsigned char dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m];
}

/* ---- reasons ----------------------------------------------------------------------------- */

#define WHY_MONTH(n) "month " #n " is out of range",
#define WHY_DAY(n) "day " #n " is out of range",
#define WHY_HOUR(n) "hour " #n " is out of range",
#define WHY_MINUTE(n) "minute " #n " is out of range",
#define WHY_SECOND(n) "second " #n " is out of range",
static const char *const why_month[100] = {FX__N100(WHY_MONTH)};
static const char *const why_day[100] = {FX__N100(WHY_DAY)};
static const char *const why_hour[100] = {FX__N100(WHY_HOUR)};
static const char *const why_minute[100] = {FX__N100(WHY_MINUTE)};
static const char *const why_second[100] = {FX__N100(WHY_SECOND)};

/* [month][day - 29] for days past the end of the month. */
static const char *const why_no_day[13][3] = {
    [2] = {"day 29 does not exist in February (not a leap year)",
           "day 30 does not exist in February", "day 31 does not exist in February"},
    [4] = {NULL, NULL, "day 31 does not exist in April"},
    [6] = {NULL, NULL, "day 31 does not exist in June"},
    [9] = {NULL, NULL, "day 31 does not exist in September"},
    [11] = {NULL, NULL, "day 31 does not exist in November"},
};

static const char *const why_format = "not a date (expected dd/mm/yyyy or yyyy-mm-dd)";

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return FX_EPARSE;
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* Read a run of digits at *pp: returns its length; *val saturates at 99999. */
static int digit_run(const char **pp, const char *end, int *val)
{
    const char *p = *pp;
    int v = 0, k = 0;
    while (p < end && fx__is_digit((unsigned char)*p)) {
        if (v < 10000)
            v = v * 10 + (*p - '0');
        else
            v = 99999;
        p++;
        k++;
    }
    *pp = p;
    *val = v;
    return k;
}

/* Parse the date at *pp (advanced past it) into days since the epoch. */
static int parse_date_part(const char **pp, const char *end, int32_t *days, const char **why)
{
    const char *p = *pp;
    int a, b, c, y, m, d;
    int la = digit_run(&p, end, &a);
    if (la == 0 || p == end || (*p != '-' && *p != '/' && *p != '.'))
        return fail(why, why_format);
    char sep = *p++;
    int lb = digit_run(&p, end, &b);
    if (lb == 0)
        return fail(why, why_format);
    if (p == end || (*p != '-' && *p != '/' && *p != '.'))
        return fail(why, why_format);
    if (*p++ != sep)
        return fail(why, "date separators do not match");
    int lc = digit_run(&p, end, &c);
    if (lc == 0)
        return fail(why, why_format);

    if (la == 4) { /* yyyy-mm-dd */
        if (lb > 2)
            return fail(why, "month must have 1 or 2 digits");
        if (lc > 2)
            return fail(why, "day must have 1 or 2 digits");
        y = a, m = b, d = c;
    } else if (la <= 2) { /* dd/mm/yyyy */
        if (lb > 2)
            return fail(why, "month must have 1 or 2 digits");
        if (lc == 2)
            return fail(why, "ambiguous two-digit year (write all 4 digits)");
        if (lc != 4)
            return fail(why, "year must have 4 digits");
        d = a, m = b, y = c;
    } else {
        return fail(why, why_format);
    }
    if (y < 1000)
        return fail(why, "year must be between 1000 and 9999");
    if (m < 1 || m > 12)
        return fail(why, why_month[m]);
    if (d < 1 || d > 31)
        return fail(why, why_day[d]);
    if (d > days_in_month(y, m))
        return fail(why, why_no_day[m][d - 29]);
    *days = (int32_t)days_from_civil64(y, m, d);
    *pp = p;
    return 0;
}

struct time_part {
    int32_t secs; /* seconds since midnight */
    int has_zone;
    int32_t offset; /* seconds east of UTC, when has_zone */
};

/* Parse "HH:MM[:SS[.frac]][ zone]" filling [p, end) exactly. */
static int parse_time_part(const char *p, const char *end, struct time_part *t, const char **why)
{
    int h, mi, sec = 0, v;
    int lh = digit_run(&p, end, &h);
    if (lh == 0 || lh > 2 || p == end || *p != ':')
        return fail(why, "expected a time as HH:MM or HH:MM:SS");
    p++;
    if (digit_run(&p, end, &mi) != 2)
        return fail(why, "minutes must have 2 digits");
    if (p < end && *p == ':') {
        p++;
        if (digit_run(&p, end, &sec) != 2)
            return fail(why, "seconds must have 2 digits");
        if (p < end && (*p == '.' || *p == ',')) {
            p++;
            if (digit_run(&p, end, &v) == 0)
                return fail(why, "expected digits after the decimal point of the seconds");
        }
    }
    if (h > 23)
        return fail(why, why_hour[h]);
    if (mi > 59)
        return fail(why, why_minute[mi]);
    if (sec == 60)
        return fail(why, "leap second 60 is not supported");
    if (sec > 59)
        return fail(why, why_second[sec]);
    t->secs = h * 3600 + mi * 60 + sec;
    t->has_zone = 0;
    t->offset = 0;

    p = fx__skip_ws(p, end);
    if (p == end)
        return 0;
    unsigned char c = (unsigned char)*p;
    t->has_zone = 1;
    if ((c == 'Z' || c == 'z') && end - p == 1)
        return 0;
    if (end - p == 3 && ((fx__lower(c) == 'u' && fx__lower((unsigned char)p[1]) == 't' &&
                          fx__lower((unsigned char)p[2]) == 'c') ||
                         (fx__lower(c) == 'g' && fx__lower((unsigned char)p[1]) == 'm' &&
                          fx__lower((unsigned char)p[2]) == 't')))
        return 0;
    if (c != '+' && c != '-')
        return fail(why, fx__why_invalid_char(c));
    p++;
    int oh, om = 0, lo = digit_run(&p, end, &oh);
    if (lo == 4) { /* ±HHMM */
        om = oh % 100;
        oh /= 100;
    } else if (lo == 2) {
        if (p < end && *p == ':') {
            p++;
            if (digit_run(&p, end, &om) != 2)
                return fail(why, "time zone offset must be ±HH:MM");
        }
    } else {
        return fail(why, "time zone offset must be ±HH:MM");
    }
    if (p != end)
        return fail(why, fx__why_invalid_char((unsigned char)*p));
    if (oh > 23 || om > 59)
        return fail(why, "time zone offset out of range");
    t->offset = (oh * 3600 + om * 60) * (c == '-' ? -1 : 1);
    return 0;
}

/* Date, then optionally 'T' / spaces / ", " and a time. t->secs = -1 when absent. */
static int parse_date_time(const char *s, size_t n, int32_t *days, struct time_part *t,
                           const char **why)
{
    const char *p = s, *end = s + n;
    fx__trim(&p, &end);
    if (p == end)
        return fail(why, "empty value");
    int rc = parse_date_part(&p, end, days, why);
    if (rc)
        return rc;
    t->secs = -1;
    t->has_zone = 0;
    if (p == end)
        return 0;
    const char *q = p;
    if (*q == 'T' || *q == 't')
        q++;
    else if (*q == ',')
        q = fx__skip_ws(q + 1, end);
    else
        q = fx__skip_ws(q, end);
    if (q == p)
        return fail(why, fx__why_invalid_char((unsigned char)*p));
    if (q == end)
        return fail(why, "expected a time after the date");
    return parse_time_part(q, end, t, why);
}

int fx_parse_date(const char *s, size_t n, int32_t *days, const char **why)
{
    struct time_part t;
    int32_t d;
    int rc = parse_date_time(s, n, &d, &t, why);
    if (rc == 0)
        *days = d;
    return rc;
}

int fx_parse_datetime(const char *s, size_t n, int64_t *epoch_s, const char **why)
{
    struct time_part t;
    int32_t days;
    int rc = parse_date_time(s, n, &days, &t, why);
    if (rc)
        return rc;
    int64_t wall = (int64_t)days * 86400 + (t.secs < 0 ? 0 : t.secs);
    if (t.has_zone) {
        *epoch_s = wall - t.offset;
        return 0;
    }
    return fx__tz_local_to_utc(wall, epoch_s, why);
}

/* ---- formatting -------------------------------------------------------------------------- */

static void put2(char *o, int v)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

/* Years outside 0000..9999 do not fit the fixed-size forms: clamp to the
 * first / last representable day (never produced by the parsers above). */
static int64_t clamp_days(int64_t days, int64_t *secs)
{
    static const int64_t lo = -719528, hi = 2932896; /* 0000-01-01, 9999-12-31 */
    if (days < lo) {
        *secs = 0;
        return lo;
    }
    if (days > hi) {
        *secs = 86399;
        return hi;
    }
    return days;
}

static void format_civil(int64_t days, char *o)
{
    int64_t y;
    int m, d;
    civil_from_days64(days, &y, &m, &d);
    put2(o, (int)(y / 100));
    put2(o + 2, (int)(y % 100));
    o[4] = '-';
    put2(o + 5, m);
    o[7] = '-';
    put2(o + 8, d);
}

void fx_format_date(int32_t days, char out[11])
{
    int64_t unused = 0;
    format_civil(clamp_days(days, &unused), out);
    out[10] = '\0';
}

void fx_format_datetime(int64_t epoch_s, char out[21])
{
    int64_t days = epoch_s / 86400, secs = epoch_s % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t d2 = clamp_days(days, &secs);
    format_civil(d2, out);
    out[10] = 'T';
    put2(out + 11, (int)(secs / 3600));
    out[13] = ':';
    put2(out + 14, (int)(secs / 60 % 60));
    out[16] = ':';
    put2(out + 17, (int)(secs % 60));
    out[19] = 'Z';
    out[20] = '\0';
}
