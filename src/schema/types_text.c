/* SPDX-License-Identifier: MIT */
/*
 * Text field parsers: booleans in Portuguese and English, e-mail addresses,
 * document and phone digits, header matching keys and strict UTF-8
 * validation. No allocation, no locale: accents are folded with a fixed
 * table of the Latin-1 Supplement and Latin Extended-A letters, which cover
 * Portuguese, Spanish and the Western European names seen in headers.
 */
#include "fluxo/error.h"
#include "fluxo/types.h"
#include "types_internal.h"

#include <string.h>

static int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return FX_EPARSE;
}

/* ---- accent folding ---------------------------------------------------------------------- */

/* U+00C0 .. U+017F. "" = not a letter (× ÷). */
/* clang-format off */
static const char fold_table[192][3] = {
    /* U+00C0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    /* U+00D0 */ "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss",
    /* U+00E0 */ "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    /* U+00F0 */ "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
    /* U+0100 */ "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",
    /* U+0110 */ "d", "d", "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",
    /* U+0120 */ "g", "g", "g", "g", "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",
    /* U+0130 */ "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",
    /* U+0140 */ "l", "l", "l", "n", "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",
    /* U+0150 */ "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",
    /* U+0160 */ "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",
    /* U+0170 */ "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s",
};
/* clang-format on */

const char *fx__fold_latin(uint32_t cp)
{
    if (cp >= 0xC0 && cp <= 0x17F)
        return fold_table[cp - 0xC0];
    return "";
}

/* ---- bool -------------------------------------------------------------------------------- */

int fx_parse_bool(const char *s, size_t n, int *out, const char **why)
{
    static const char *const truthy[] = {"true", "t",          "sim", "s", "yes", "y",
                                         "1",    "verdadeiro", "v",   "x", "on"};
    static const char *const falsy[] = {"false", "f", "nao", "n", "no", "0", "falso", "off", ""};
    static const char *const bad = "not a yes/no value (expected sim/nao, true/false or 1/0)";
    const char *b = s, *e = s + n;
    fx__trim(&b, &e);
    const unsigned char *p = (const unsigned char *)b, *end = (const unsigned char *)e;

    /* Fold to lowercase ASCII in a small buffer; anything longer than the
     * longest word or not a letter/digit cannot match. */
    char key[12];
    size_t k = 0;
    while (p < end) {
        uint32_t cp;
        int len = fx__utf8_decode(p, end, &cp);
        const char *f;
        char one[2] = {0, 0};
        if (len == 0)
            return fail(why, bad);
        if (cp < 0x80) {
            unsigned char c = fx__lower((unsigned char)cp);
            if (!fx__is_digit(c) && !(c >= 'a' && c <= 'z'))
                return fail(why, bad);
            one[0] = (char)c;
            f = one;
        } else {
            f = fx__fold_latin(cp);
            if (!*f)
                return fail(why, bad);
        }
        for (; *f; f++) {
            if (k + 1 >= sizeof key)
                return fail(why, bad);
            key[k++] = *f;
        }
        p += len;
    }
    key[k] = '\0';
    for (size_t i = 0; i < sizeof truthy / sizeof *truthy; i++)
        if (!strcmp(key, truthy[i])) {
            *out = 1;
            return 0;
        }
    for (size_t i = 0; i < sizeof falsy / sizeof *falsy; i++)
        if (!strcmp(key, falsy[i])) {
            *out = 0;
            return 0;
        }
    return fail(why, bad);
}

/* ---- e-mail ------------------------------------------------------------------------------ */

/* RFC 5322 atext, plus '.' handled separately. */
static int is_atext(unsigned char c)
{
    if (fx__is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL;
}

static int is_ldh(unsigned char c)
{
    return fx__is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

int fx_parse_email(const char *s, size_t n, char *out, size_t cap, size_t *outlen, const char **why)
{
    const char *p = s, *end = s + n;
    fx__trim(&p, &end);
    size_t len = (size_t)(end - p);
    if (len == 0)
        return fail(why, "empty e-mail address");
    if (len >= 7) {
        size_t i = 0;
        while (i < 7 && fx__lower((unsigned char)p[i]) == (unsigned char)"mailto:"[i])
            i++;
        if (i == 7)
            return fail(why, "remove the \"mailto:\" prefix");
    }

    const char *at = NULL;
    for (const char *q = p; q < end; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == ' ' || c == '\t')
            return fail(why, "e-mail address contains a space");
        if (c < 0x20 || c == 0x7F)
            return fail(why, "e-mail address contains a control character");
        if (c >= 0x80)
            return fail(why, "e-mail address contains a non-ASCII character");
        if (c == '@') {
            if (at)
                return fail(why, "e-mail address has more than one @");
            at = q;
        }
    }
    if (!at)
        return fail(why, "e-mail address has no @");
    if (len > 254)
        return fail(why, "e-mail address longer than 254 characters");

    /* Local part: dot-atom. */
    if (at == p)
        return fail(why, "nothing before the @ in e-mail address");
    if (at - p > 64)
        return fail(why, "part before the @ longer than 64 characters");
    for (const char *q = p; q < at; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '.') {
            if (q == p || q + 1 == at || q[1] == '.')
                return fail(why, "misplaced dot before the @ in e-mail address");
        } else if (!is_atext(c)) {
            return fail(why, fx__why_invalid_char(c));
        }
    }

    /* Domain: LDH labels, at least two, last not numeric. */
    const char *d = at + 1;
    if (d == end)
        return fail(why, "nothing after the @ in e-mail address");
    int labels = 0, tld_alpha = 0;
    const char *label = d;
    for (const char *q = d;; q++) {
        if (q == end || *q == '.') {
            ptrdiff_t ll = q - label;
            if (ll == 0)
                return fail(why, "empty label in e-mail domain");
            if (ll > 63)
                return fail(why, "e-mail domain label longer than 63 characters");
            if (label[0] == '-' || q[-1] == '-')
                return fail(why, "e-mail domain label starts or ends with a hyphen");
            labels++;
            if (q == end)
                break;
            label = q + 1;
        } else if (!is_ldh((unsigned char)*q)) {
            return fail(why, fx__why_invalid_char((unsigned char)*q));
        }
    }
    if (labels < 2)
        return fail(why, "e-mail domain has no dot");
    for (const char *r = label; r < end; r++)
        tld_alpha |= !fx__is_digit((unsigned char)*r);
    if (!tld_alpha)
        return fail(why, "e-mail domain ends with a number");
    if (end - label < 2)
        return fail(why, "e-mail top-level domain too short");

    if (len + 1 > cap)
        return fail(why, "e-mail address too long");
    for (size_t i = 0; i < len; i++)
        out[i] = (char)fx__lower((unsigned char)p[i]);
    out[len] = '\0';
    if (outlen)
        *outlen = len;
    return 0;
}

/* ---- digits ------------------------------------------------------------------------------ */

int fx_parse_digits(const char *s, size_t n, char *out, size_t cap, size_t *outlen,
                    const char **why)
{
    const char *p = s, *end = s + n;
    size_t k = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (fx__is_digit(c)) {
            if (k + 1 >= cap)
                return fail(why, "too many digits");
            out[k++] = (char)c;
            p++;
            continue;
        }
        size_t ws = fx__ws_len(p, end);
        if (ws) {
            p += ws;
            continue;
        }
        switch (c) {
        case '.':
        case '-':
        case '/':
        case '(':
        case ')':
        case '+':
            p++;
            continue;
        default:
            return fail(why, fx__why_unexpected_char(c));
        }
    }
    if (k == 0)
        return fail(why, "no digits");
    out[k] = '\0';
    if (outlen)
        *outlen = k;
    return 0;
}

/* ---- name keys --------------------------------------------------------------------------- */

size_t fx_name_key(const char *s, size_t n, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t k = 0;
    if (cap == 0)
        return 0;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            c = fx__lower(c);
            if (fx__is_digit(c) || (c >= 'a' && c <= 'z')) {
                if (k + 1 >= cap)
                    break;
                out[k++] = (char)c;
            }
            continue;
        }
        uint32_t cp;
        int len = fx__utf8_decode(p, end, &cp);
        if (len == 0) {
            p++; /* invalid byte: dropped */
            continue;
        }
        p += len;
        const char *f = fx__fold_latin(cp);
        if (*f && k + strlen(f) >= cap)
            break;
        while (*f)
            out[k++] = *f++;
    }
    out[k] = '\0';
    return k;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

size_t fx_utf8_check(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        /* ASCII fast path, 8 bytes at a time. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ull)
                break;
            p += 8;
        }
        if (p == end)
            break;
        if (*p < 0x80) {
            p++;
            continue;
        }
        uint32_t cp;
        int len = fx__utf8_decode(p, end, &cp);
        if (len == 0)
            return (size_t)(p - (const unsigned char *)s);
        p += len;
    }
    return n;
}
