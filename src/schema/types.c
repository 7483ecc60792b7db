/* SPDX-License-Identifier: MIT */
/*
 * Numeric field parsers: whole numbers, money in cents and scaled decimals,
 * as they arrive from CSV files and spreadsheets written with Brazilian
 * ("1.234,56") or international ("1,234.56") separators; plus the CPF/CNPJ
 * check digits and the canonical money text.
 *
 * Exact by construction: digits are accumulated into a 64-bit integer with
 * overflow checks, never through double, strtod or any locale-aware call.
 *
 * Separator rules (money and decimal):
 *   - the rightmost '.' or ',' is the decimal separator when it is followed
 *     by 1 .. scale digits ("12,5" = 12.50, "1.234,56", "1,234.56");
 *   - one single separator followed by exactly 3 digits, with a valid first
 *     group ("1.234", "12,345", not "0.123" nor "1234.567"), is a thousands
 *     separator: "1.234" = 1234.00. For decimals of scale >= 3 that reading
 *     and the decimal one are both plausible, so it is rejected as ambiguous;
 *   - several occurrences of the same separator followed by 3-digit groups
 *     are thousands separators ("1.234.567");
 *   - thousands groups after the first have exactly 3 digits, the first
 *     1 to 3 digits without a leading zero;
 *   - more fractional digits than the scale is an error, never a rounding;
 *     extra digits that are all zeros are exact and accepted ("1234.500").
 * Money also accepts a leading "R$" or "BRL" (any case), before or after
 * one sign, with optional spaces. No exponents, no parentheses for
 * negatives, no trailing minus.
 *
 * Whole numbers are stricter: digits with one optional sign, and at most one
 * separator followed by a zero fraction ("12.0", "12,00", "12.000000").
 * "1.000" / "1,000" are rejected as ambiguous (thousands, or 1 with a zero
 * fraction?) and thousands separators are not accepted.
 */
#include "fluxo/types.h"
#include "fluxo/error.h"
#include "types_internal.h"

#include <string.h>

/* ---- reasons for a single bad byte ------------------------------------------------------- */

/* clang-format off */
#define INVALID_CH(c)                                                                              \
    {'i', 'n', 'v', 'a', 'l', 'i', 'd', ' ', 'c', 'h', 'a', 'r', 'a', 'c', 't', 'e', 'r', ' ',   \
     '\'', (char)(c), '\''},
#define UNEXPECTED_CH(c)                                                                           \
    {'u', 'n', 'e', 'x', 'p', 'e', 'c', 't', 'e', 'd', ' ', 'c', 'h', 'a', 'r', 'a', 'c', 't',   \
     'e', 'r', ' ', '\'', (char)(c), '\''},

/* Rows 0x20 .. 0x7F; 0x7F (DEL) is never used (control). */
static const char why_invalid[96][23] = {
    FX__H16(INVALID_CH, 2) FX__H16(INVALID_CH, 3) FX__H16(INVALID_CH, 4)
    FX__H16(INVALID_CH, 5) FX__H16(INVALID_CH, 6) FX__H16(INVALID_CH, 7)
};
static const char why_unexpected[96][26] = {
    FX__H16(UNEXPECTED_CH, 2) FX__H16(UNEXPECTED_CH, 3) FX__H16(UNEXPECTED_CH, 4)
    FX__H16(UNEXPECTED_CH, 5) FX__H16(UNEXPECTED_CH, 6) FX__H16(UNEXPECTED_CH, 7)
};
/* clang-format on */

const char *fx__why_invalid_char(unsigned char c)
{
    if (c >= 0x80)
        return "invalid non-ASCII character";
    if (c < 0x20 || c == 0x7F)
        return "invalid control character";
    return why_invalid[c - 0x20];
}

const char *fx__why_unexpected_char(unsigned char c)
{
    if (c >= 0x80)
        return "unexpected non-ASCII character";
    if (c < 0x20 || c == 0x7F)
        return "unexpected control character";
    return why_unexpected[c - 0x20];
}

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return FX_EPARSE;
}

/* ---- whole numbers ----------------------------------------------------------------------- */

/* Append digit d to *mag unless it would exceed limit. */
static inline int push_digit(uint64_t *mag, unsigned d, uint64_t limit)
{
    if (*mag > (limit - d) / 10)
        return -1;
    *mag = *mag * 10 + d;
    return 0;
}

static int64_t apply_sign(uint64_t mag, int neg)
{
    /* mag <= 2^63 when neg, <= 2^63-1 otherwise (checked by the callers). */
    return neg ? (int64_t)(0 - mag) : (int64_t)mag;
}

/* A thousands-grouped integer part must start with 1..3 digits, no leading zero. */
static int valid_first_group(const char *a, const char *b)
{
    ptrdiff_t k = b - a;
    return k >= 1 && k <= 3 && !(a[0] == '0');
}

int fx_parse_int(const char *s, size_t n, int64_t *out, const char **why)
{
    const char *p = s, *end = s + n;
    fx__trim(&p, &end);
    if (p == end)
        return fail(why, "empty value");
    int neg = 0;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            return fail(why, "more than one sign");
    }
    const char *digits = p;
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    int overflow = 0;
    while (p < end && fx__is_digit((unsigned char)*p)) {
        if (push_digit(&mag, (unsigned)(*p - '0'), limit))
            overflow = 1;
        p++;
    }
    const char *int_end = p;
    if (p < end && (*p == '.' || *p == ',')) {
        /* "12.0", "12,00": a spreadsheet number whose fraction is zero. */
        const char *frac = ++p;
        int zero = 1;
        while (p < end && fx__is_digit((unsigned char)*p)) {
            zero &= *p == '0';
            p++;
        }
        if (p < end) {
            if (*p == '.' || *p == ',')
                return fail(why, "thousands separators are not allowed in whole numbers");
            return fail(why, fx__why_invalid_char((unsigned char)*p));
        }
        if (p == frac)
            return fail(why, "number ends with a separator");
        if (digits == int_end)
            return fail(why, "no digits before the separator");
        if (p - frac == 3 && valid_first_group(digits, int_end))
            return fail(why, "ambiguous separator: thousands or decimal point");
        if (!zero)
            return fail(why, "not a whole number");
    } else if (p < end) {
        return fail(why, fx__why_invalid_char((unsigned char)*p));
    }
    if (digits == int_end)
        return fail(why, "no digits");
    if (overflow)
        return fail(why, "number is out of range");
    *out = apply_sign(mag, neg);
    return 0;
}

/* ---- money and decimals ------------------------------------------------------------------ */

static const char *const why_places[10] = {
    "decimal places are not allowed", "more than 1 decimal place",  "more than 2 decimal places",
    "more than 3 decimal places",     "more than 4 decimal places", "more than 5 decimal places",
    "more than 6 decimal places",     "more than 7 decimal places", "more than 8 decimal places",
    "more than 9 decimal places",
};

static int match_ci(const char *p, const char *end, const char *lit, size_t k)
{
    if ((size_t)(end - p) < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (fx__lower((unsigned char)p[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* Check thousands groups in [a, b): first group per valid_first_group, then
 * sep + exactly 3 digits each. Only separators equal to sep may occur. */
static int valid_grouping(const char *a, const char *b, char sep)
{
    const char *q = a;
    while (q < b && *q != sep)
        q++;
    if (!valid_first_group(a, q))
        return 0;
    while (q < b) {
        if (*q != sep || b - q < 4)
            return 0;
        for (int i = 1; i <= 3; i++)
            if (!fx__is_digit((unsigned char)q[i]))
                return 0;
        q += 4;
    }
    return 1;
}

/*
 * The grammar shared by money (scale 2, currency prefix allowed) and
 * decimals. *out = value * 10^scale, exactly.
 */
static int parse_scaled(const char *s, size_t n, int scale, int money, int64_t *out,
                        const char **why)
{
    const char *p = s, *end = s + n;
    fx__trim(&p, &end);
    if (p == end)
        return fail(why, "empty value");

    /* Prefix: [sign] [currency] [sign], spaces between. */
    int neg = 0, signs = 0, currency = 0;
    for (;;) {
        if (p < end && (*p == '+' || *p == '-')) {
            if (++signs > 1)
                return fail(why, "more than one sign");
            neg = *p == '-';
            p = fx__skip_ws(p + 1, end);
        } else if (money && !currency && match_ci(p, end, "r$", 2)) {
            currency = 1;
            p = fx__skip_ws(p + 2, end);
        } else if (money && !currency && match_ci(p, end, "brl", 3)) {
            currency = 1;
            p = fx__skip_ws(p + 3, end);
        } else {
            break;
        }
    }

    /* Body: digits and separators only. */
    const char *body = p, *last = NULL;
    int ndot = 0, ncomma = 0, ndigits = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (fx__is_digit(c)) {
            ndigits++;
        } else if (c == '.' || c == ',') {
            ndot += c == '.';
            ncomma += c == ',';
            last = p;
        } else if (c == '+' || c == '-') {
            return fail(why, p == body ? "more than one sign" : fx__why_invalid_char(c));
        } else {
            return fail(why, fx__why_invalid_char(c));
        }
    }
    if (ndigits == 0)
        return fail(why, "no digits");

    const char *int_end = end; /* integer digits are [body, int_end) */
    const char *frac = end;    /* fraction digits are [frac, frac_end) */
    const char *frac_end = end;
    int nsep = ndot + ncomma;
    if (nsep > 0) {
        ptrdiff_t k = end - last - 1;
        char sep = *last, other = sep == '.' ? ',' : '.';
        int same = (sep == '.' ? ncomma : ndot) == 0;
        if (k == 0)
            return fail(why, "number ends with a separator");
        if (k == 3 && same && nsep == 1 && valid_first_group(body, last)) {
            /* "1.234": thousands. For scale >= 3 it could as well be 1.234. */
            if (scale >= 3)
                return fail(why, "ambiguous separator: thousands or decimal point");
            if (!valid_grouping(body, end, sep))
                return fail(why, "thousands groups must have 3 digits");
        } else if (k == 3 && same && nsep > 1) {
            /* "1.234.567": only thousands separators. */
            if (!valid_grouping(body, end, sep))
                return fail(why, "thousands groups must have 3 digits");
        } else {
            /* last is the decimal separator; the integer part may only hold
             * thousands separators of the other kind. */
            if (same && nsep > 1)
                return fail(why, "thousands groups must have 3 digits");
            if ((sep == '.' ? ndot : ncomma) > 1)
                return fail(why, "more than one decimal separator");
            if (!same && !valid_grouping(body, last, other))
                return fail(why, "thousands groups must have 3 digits");
            int_end = last;
            frac = last + 1;
            if (k > scale) {
                /* Exact trailing zeros ("1234.500") are not rounding. */
                for (const char *q = frac + scale; q < end; q++)
                    if (*q != '0')
                        return fail(why, why_places[scale]);
                frac_end = frac + scale;
            }
        }
    }

    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (const char *q = body; q < int_end; q++)
        if (fx__is_digit((unsigned char)*q) && push_digit(&mag, (unsigned)(*q - '0'), limit))
            return fail(why, "number is out of range");
    int places = 0;
    for (const char *q = frac; q < frac_end; q++, places++)
        if (push_digit(&mag, (unsigned)(*q - '0'), limit))
            return fail(why, "number is out of range");
    for (; places < scale; places++)
        if (push_digit(&mag, 0, limit))
            return fail(why, "number is out of range");
    *out = apply_sign(mag, neg);
    return 0;
}

int fx_parse_money(const char *s, size_t n, int64_t *cents, const char **why)
{
    return parse_scaled(s, n, 2, 1, cents, why);
}

int fx_parse_decimal(const char *s, size_t n, int scale, int64_t *scaled, const char **why)
{
    if (scale < 0 || scale > 9) {
        if (why)
            *why = "decimal scale must be between 0 and 9";
        return FX_EINVAL;
    }
    return parse_scaled(s, n, scale, 0, scaled, why);
}

void fx_format_money(int64_t cents, char out[32])
{
    uint64_t mag = cents < 0 ? 0 - (uint64_t)cents : (uint64_t)cents;
    char tmp[32];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + mag % 10);
        mag /= 10;
        if (k == 2)
            tmp[k++] = '.';
    } while (mag || k < 4); /* at least "d.dd" */
    int o = 0;
    if (cents < 0)
        out[o++] = '-';
    while (k)
        out[o++] = tmp[--k];
    out[o] = '\0';
}

/* ---- CPF / CNPJ -------------------------------------------------------------------------- */

/* Mod-11 check digit over d[0..n) with weights w[0..n). */
static int mod11(const char *d, const int *w, int n)
{
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += (d[i] - '0') * w[i];
    int r = sum % 11;
    return r < 2 ? 0 : 11 - r;
}

static int all_digits_not_repeated(const char *d, int n)
{
    if (!d)
        return 0;
    int repeated = 1;
    for (int i = 0; i < n; i++) {
        if (!fx__is_digit((unsigned char)d[i]))
            return 0;
        repeated &= d[i] == d[0];
    }
    return !repeated;
}

int fx_cpf_valid(const char *d11)
{
    static const int w1[9] = {10, 9, 8, 7, 6, 5, 4, 3, 2};
    static const int w2[10] = {11, 10, 9, 8, 7, 6, 5, 4, 3, 2};
    if (!all_digits_not_repeated(d11, 11))
        return 0;
    return mod11(d11, w1, 9) == d11[9] - '0' && mod11(d11, w2, 10) == d11[10] - '0';
}

int fx_cnpj_valid(const char *d14)
{
    static const int w1[12] = {5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
    static const int w2[13] = {6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
    if (!all_digits_not_repeated(d14, 14))
        return 0;
    return mod11(d14, w1, 12) == d14[12] - '0' && mod11(d14, w2, 13) == d14[13] - '0';
}
