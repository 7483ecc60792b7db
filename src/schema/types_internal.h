/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the field value parsers (types.c, types_text.c,
 * types_time.c, types_tz.c): whitespace trimming, a strict UTF-8 decoder,
 * compile-time tables of user-facing reasons, and the zone offset lookup.
 *
 * Reasons ("month 13 is out of range", "invalid character 'a'") must have
 * static storage, so the variants are generated at compile time by the
 * FX__N100 / FX__H16 macros below rather than formatted per call.
 */
#ifndef FLUXO_SCHEMA_TYPES_INTERNAL_H
#define FLUXO_SCHEMA_TYPES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* clang-format off */
/* X(0) .. X(99), as decimal tokens (so #n stringizes "7", "42"). */
#define FX__N10(X, t)                                                                              \
    X(t##0) X(t##1) X(t##2) X(t##3) X(t##4) X(t##5) X(t##6) X(t##7) X(t##8) X(t##9)
#define FX__N100(X)                                                                                \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) FX__N10(X, 1) FX__N10(X, 2)                 \
        FX__N10(X, 3) FX__N10(X, 4) FX__N10(X, 5) FX__N10(X, 6) FX__N10(X, 7) FX__N10(X, 8)       \
            FX__N10(X, 9)
/* X(0xh0) .. X(0xhF). */
#define FX__H16(X, h)                                                                              \
    X(0x##h##0) X(0x##h##1) X(0x##h##2) X(0x##h##3) X(0x##h##4) X(0x##h##5) X(0x##h##6)           \
        X(0x##h##7) X(0x##h##8) X(0x##h##9) X(0x##h##A) X(0x##h##B) X(0x##h##C) X(0x##h##D)       \
            X(0x##h##E) X(0x##h##F)
/* clang-format on */

static inline int fx__is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10u;
}

static inline unsigned char fx__lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26u ? (unsigned char)(c + 32) : c;
}

/* Length of the whitespace sequence starting at p (ASCII blanks, U+00A0
 * no-break space and U+202F narrow no-break space, which spreadsheets put
 * in currency and number formats), or 0. */
static inline size_t fx__ws_len(const char *p, const char *end)
{
    unsigned char c = (unsigned char)*p;
    if (c == ' ' || (c >= '\t' && c <= '\r'))
        return 1;
    if (c == 0xC2 && end - p >= 2 && (unsigned char)p[1] == 0xA0)
        return 2;
    if (c == 0xE2 && end - p >= 3 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0xAF)
        return 3;
    return 0;
}

static inline const char *fx__skip_ws(const char *p, const char *end)
{
    size_t k;
    while (p < end && (k = fx__ws_len(p, end)) != 0)
        p += k;
    return p;
}

/* Trim whitespace on both ends of [*p, *end). */
static inline void fx__trim(const char **p, const char **end)
{
    const char *b = fx__skip_ws(*p, *end), *e = *end;
    while (e > b) {
        unsigned char c = (unsigned char)e[-1];
        if (c == ' ' || (c >= '\t' && c <= '\r'))
            e--;
        else if (c == 0xA0 && e - b >= 2 && (unsigned char)e[-2] == 0xC2)
            e -= 2;
        else if (c == 0xAF && e - b >= 3 && (unsigned char)e[-2] == 0x80 &&
                 (unsigned char)e[-3] == 0xE2)
            e -= 3;
        else
            break;
    }
    *p = b;
    *end = e;
}

/*
 * Decode one strict UTF-8 sequence at p (p < end): returns its length (1-4)
 * and the code point, or 0 if the bytes at p do not start a valid sequence
 * (overlong forms, surrogates, > U+10FFFF, truncated, stray continuation).
 */
static inline int fx__utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        *cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        *cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        *cp = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
        return 4;
    }
    return 0;
}

/* "invalid character 'x'" / "unexpected character 'x'" for the byte c
 * (generic wording for control and non-ASCII bytes). Static strings. */
const char *fx__why_invalid_char(unsigned char c);
const char *fx__why_unexpected_char(unsigned char c);

/* ASCII fold of a Latin-1 Supplement / Latin Extended-A code point
 * (U+00C0..U+017F): "a", "ae", "ss"...; "" for non-letters (×, ÷) and for
 * code points outside that range. */
const char *fx__fold_latin(uint32_t cp);

/*
 * Wall-clock seconds (civil date-time counted as if it were UTC) in the
 * zone set by fx_tz_set (default America/Sao_Paulo) to Unix seconds.
 * Non-existent local times (DST gap) and ambiguous ones (DST end) both take
 * the UTC offset in effect just before the transition. Returns 0, or
 * FX_EPARSE with *why set when no zone data can be loaded.
 */
int fx__tz_local_to_utc(int64_t local, int64_t *utc, const char **why);

#endif
