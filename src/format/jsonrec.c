/* SPDX-License-Identifier: MIT */
/*
 * JSON records (fluxo/jsonrec.h): turns a request body holding one JSON object, an
 * array of objects or NDJSON into flat records, pushed to a callback as the bytes come
 * in from the HTTP server, in chunks of any size.
 *
 * Design notes
 *
 * Parser. Records are parsed by yajl's event parser (libyajl 2.1.0): no tree is built,
 * the callbacks below flatten each object straight into the record. That is what makes
 * bulk NDJSON fast enough: jansson, which built a tree per record, topped out near 280k
 * records/s (10-field, 170-byte records); this does over 1M on the same machine.
 *
 * Framing. This file still finds where each record ends, and hands yajl one whole
 * record's text in a single yajl_parse call:
 *  - NDJSON: a record is a line (JSON text cannot hold a raw '\n'), found with memchr;
 *  - JSON: a record is an object; a small scanner follows strings, escapes and the
 *    bracket depth to find the '}' that closes it, and checks the array punctuation
 *    ('[', ',', ']') between records itself.
 * yajl could follow the whole array by itself, but an error leaves a 2.1.0 handle dead
 * (there is no reset) with no way to tell where the broken element ends; the scanner is
 * what lets a bad element be reported and the next one read. Whole records also make
 * yajl's byte offsets offsets into the record (exact lines and columns) and keep a
 * string's raw text at hand for the checks below. Only one record's text is ever
 * buffered (and only when it straddles two chunks: a record that lies whole inside a
 * chunk is parsed in place), bounded by max_record_bytes.
 *
 * One yajl handle parses record after record (yajl_allow_multiple_values; measured
 * 10-20% faster than a handle per record): a record that fails, or is not a lone
 * object, leaves the handle in an unknown state, so it is freed and the next record
 * gets a new one.
 *
 * What yajl leaves to us. Duplicate keys: a small hash set of the record's flattened
 * names (seeded at random: the keys come from the network), each tagged with the
 * object it belongs to, finds both a key given twice in one object and two fields that
 * collide once flattened ({"a.b":1,"a":{"b":2}}). UTF-8: yajl only checks the shape of
 * multi-byte sequences (it lets overlong forms and surrogates through), so its check is
 * off and every string that is not plain ASCII goes through fx__csv_utf8_check.
 * Escapes: yajl decodes \u0000 to a NUL byte and a lone surrogate to '?' or to some
 * other character, so the raw text of every string that needed unescaping is checked
 * (strings without a backslash are passed in place and need no such look). Whitespace:
 * yajl also takes '\f' and '\v' between tokens, JSON does not. Numbers: yajl_number
 * gives the number's text; integers keep it (checked to fit 64 bits), reals become the
 * shortest text that reads back to the same double (see number_text).
 *
 * Memory. Besides the one record's text: the record's names and values, copied
 * NUL-terminated into one buffer reset per record (no allocation per cell), capped at
 * 8 x max_record_bytes (flattening repeats the outer names in every inner field), the
 * keys and their hash slots; all reused from record to record.
 *
 * Split independence. Every piece of state (BOM bytes matched, inside a string, after
 * a backslash, depth, line and column) lives in the parser, never in a local that a
 * chunk end would lose, and limits are checked on the record's total length, so the
 * same body gives the same records and errors however it is cut.
 *
 * Limits. NDJSON: a line over max_record_bytes (its '\r' '\n' excluded) is a bad record
 * and skipped without storing it. JSON: an object over max_record_bytes is fatal, as
 * the task's contract for arrays asks (the body is refused rather than silently
 * truncated). max_fields and max_depth are checked while flattening.
 *
 * Positions. Lines count '\n'; columns count characters (UTF-8 lead bytes). An error
 * points at what is wrong: the byte or token yajl refused, the key given twice, the
 * number out of range, the bad escape or byte in a string. A leading UTF-8 BOM is
 * skipped.
 */
#include "fluxo/jsonrec.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"
#include "format/csv_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <yajl/yajl_parse.h>

enum state {
    ST_BOM,       /* matching a leading UTF-8 BOM */
    ST_START,     /* JSON: before the first non-blank byte */
    ST_LINE,      /* NDJSON: inside a line (buffered in p->rec while it straddles chunks) */
    ST_SKIP,      /* NDJSON: inside a line over max_record_bytes, not stored */
    ST_ELEM,      /* JSON: inside an object (the body's or an array element) */
    ST_ARR_OPEN,  /* after '[' */
    ST_ARR_NEXT,  /* after ',' */
    ST_ARR_AFTER, /* after an element */
    ST_TRAIL,     /* after the closing ']' or the body's object: only blanks allowed */
    ST_DONE,      /* stopped by a callback or a fatal error: p->rc is returned */
};

#define NONE SIZE_MAX

/* A key of the record being parsed (every key, also those holding an object). */
struct key {
    size_t name;   /* offset of its flattened name in p->store */
    size_t len;    /* length of that name */
    size_t obj;    /* the object it belongs to: 0 is the record, then in order of '{' */
    size_t end;    /* offset in the record text just past its closing quote */
    uint32_t hash; /* of the flattened name */
    int leaf;      /* its value is a scalar: it is a field of the record */
    int clash;     /* a field of another object has the same flattened name */
};

/* An object open in the record being parsed. */
struct frame {
    size_t key; /* the key holding it (NONE for the record itself) */
    size_t obj;
};

/* A field of the record being parsed: offsets in p->store. */
struct field {
    size_t name, val, len;
    enum fx_cell_type type;
};

struct slot {
    uint32_t gen; /* == p->gen: used by the record being parsed */
    size_t key;
};

struct fx_jsonrec_parser {
    struct fx_jsonrec_opts o;
    fx_jsonrec_cb cb;
    fx_jsonrec_bad_cb bad;
    fx_jsonrec_line_cb line_cb; /* NDJSON lines handed over unparsed */
    void *ud;

    enum state st;
    int rc;             /* ST_DONE: what every call returns */
    struct fx_err ferr; /* ST_DONE: the error every call copies out */
    int finished;
    int bom;   /* BOM bytes matched */
    int array; /* JSON: the body is an array */

    long line; /* line of the last byte consumed (1-based) */
    long col;  /* column of the last byte consumed (0 = none yet on this line) */
    long arr_line, arr_col;

    /* the record being collected */
    size_t index; /* records started so far */
    struct fx_buf rec;
    long rec_line, rec_col;
    size_t rec_len;  /* JSON: bytes of the element scanned so far */
    int in_str, esc; /* JSON scanner */
    size_t depth;
    int skip_nonblank; /* ST_SKIP: the skipped line has a non-blank byte */

    /* the record being parsed by yajl: its text and where it starts in the body */
    yajl_handle yh;
    const char *text;
    size_t tlen;
    long tline, tcol;
    size_t open; /* objects open */
    int done;    /* the record's object is closed */
    size_t end;  /* offset just past its '}' */
    size_t nobj; /* objects met so far */
    size_t cur;  /* the key whose value comes next */
    char *store; /* names and values, NUL-terminated */
    size_t slen, scap, slimit;
    struct frame *frames;
    size_t cap_frames;
    struct key *keys;
    size_t nkeys, cap_keys;
    struct slot *slots;
    size_t nslots;
    uint32_t gen;
    uint64_t seed;
    struct field *fields;
    size_t nfields, cap_fields;
    /* what a callback refused: ecode != 0 */
    int ecode;
    size_t eat; /* offset in the record text */
    char efield[sizeof(((struct fx_err *)0)->field)];
    char emsg[320];

    /* the record handed to the callback */
    const char **names;
    struct fx_cell *cells;
    size_t cap;
};

static const unsigned char bom_bytes[3] = {0xEF, 0xBB, 0xBF};

/* A random seed for the key hashes, once per process: keys come from the network, and
 * keys made to collide under a known hash would make every lookup a long walk. */
static uint64_t hash_seed(void)
{
    static _Atomic uint64_t seed;
    uint64_t s = atomic_load_explicit(&seed, memory_order_relaxed);
    if (s)
        return s;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
        s = (uint64_t)fx_mono_us() ^ (uint64_t)(uintptr_t)&seed; /* early boot: no entropy */
    s |= 1;
    atomic_store_explicit(&seed, s, memory_order_relaxed);
    return s;
}

void fx_jsonrec_opts_init(struct fx_jsonrec_opts *o)
{
    o->ndjson = 0;
    o->max_record_bytes = 1u << 20;
    o->max_fields = 1024;
    o->max_depth = 8;
}

struct fx_jsonrec_parser *fx_jsonrec_new(const struct fx_jsonrec_opts *o, fx_jsonrec_cb cb,
                                         fx_jsonrec_bad_cb bad, void *ud)
{
    struct fx_jsonrec_parser *p = fx_calloc(1, sizeof(*p));
    struct fx_jsonrec_opts d;
    fx_jsonrec_opts_init(&d);
    p->o = o ? *o : d;
    if (!p->o.max_record_bytes)
        p->o.max_record_bytes = d.max_record_bytes;
    if (!p->o.max_fields)
        p->o.max_fields = d.max_fields;
    if (!p->o.max_depth)
        p->o.max_depth = d.max_depth;
    p->cb = cb;
    p->bad = bad;
    p->ud = ud;
    p->st = ST_BOM;
    p->line = 1;
    /* one spare byte: an NDJSON line may hold max_record_bytes plus its '\r' */
    fx_buf_init(&p->rec, p->o.max_record_bytes + 1);
    size_t mrb = p->o.max_record_bytes;
    p->slimit = mrb > (SIZE_MAX - 4096) / 8 ? SIZE_MAX : mrb * 8 + 4096;
    p->gen = 1;
    p->seed = hash_seed();
    return p;
}

void fx_jsonrec_free(struct fx_jsonrec_parser *p)
{
    if (!p)
        return;
    if (p->yh)
        yajl_free(p->yh);
    fx_buf_cleanup(&p->rec);
    free(p->store);
    free(p->frames);
    free(p->keys);
    free(p->slots);
    free(p->fields);
    free(p->names);
    free(p->cells);
    free(p);
}

/* ---- errors -------------------------------------------------------------- */

/* Cut s where it would end inside a UTF-8 sequence (snprintf truncates bytewise). */
static void utf8_trim(char *s)
{
    size_t n = strlen(s);
    size_t ok = fx__csv_utf8_check(s, n);
    if (ok < n && n - ok < 4)
        s[ok] = '\0';
}

/* Copy src into dst (cap bytes) with control bytes and invalid UTF-8 replaced by '?'. */
static void printable(char *dst, size_t cap, const char *src)
{
    fx__text_shown(dst, cap, src, strlen(src));
}

/* "'x'" for a printable byte, else "byte 0xNN". */
static const char *describe(unsigned char c, char buf[16])
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

static int clamp_col(long col)
{
    return col > 0x7fffffffL ? 0x7fffffff : (int)col;
}

static int stop(struct fx_jsonrec_parser *p, int rc)
{
    p->st = ST_DONE;
    p->rc = rc;
    return rc;
}

/* A fatal error of the whole body at line/col. The reason does not repeat line/col
 * (err->row/err->column hold them, and fx_err_format prints both). */
static int fatal(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fatal(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fx_err_vset_at(&p->ferr, code, NULL, line, fmt, ap);
    va_end(ap);
    p->ferr.column = clamp_col(col);
    if (err)
        *err = p->ferr;
    return stop(p, code);
}

/* A bad record (p->index) at line/col: to the bad callback, or fatal without one. */
static int bad(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
               const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int bad(struct fx_jsonrec_parser *p, struct fx_err *err, int code, long line, long col,
               const char *field, const char *fmt, ...)
{
    struct fx_err e;
    char why[sizeof(e.reason)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fx_err_set_at(&e, code, NULL, (long)p->index, "record %zu (line %ld, column %ld): %s", p->index,
                  line, col, why);
    utf8_trim(e.reason);
    e.column = clamp_col(col);
    if (field)
        printable(e.field, sizeof(e.field), field);
    if (!p->bad) {
        p->ferr = e;
        if (err)
            *err = e;
        return stop(p, code);
    }
    int rc = p->bad(p->ud, p->index, &e);
    if (rc) {
        fx_err_clear(&p->ferr);
        return stop(p, rc);
    }
    return 0;
}

/* ---- numbers ---------------------------------------------------------------- */

/* Decimal digits of v into buf (at least 21 bytes). */
static size_t int_text(long long v, char *buf)
{
    char tmp[24];
    size_t n = 0, o = 0;
    /* work on the negative side: it holds LLONG_MIN */
    long long x = v < 0 ? v : -v;
    do {
        tmp[n++] = (char)('0' - x % 10);
        x /= 10;
    } while (x);
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    return o;
}

/* Shortest of %.15g, %.16g, %.17g that reads back as the same double: 3500.1 stays
 * "3500.1" instead of the exact binary expansion. Whole numbers below 1e15 (where %.15g
 * prints every digit) take the integer path. */
static size_t real_text(double d, char *buf, size_t cap)
{
    if (d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d)))
        return int_text((long long)d, buf);
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return (size_t)n;
}

#define NUMBER_ROOM 40 /* bytes number_text may write */

enum { NUM_INT_RANGE = -1, NUM_REAL_RANGE = -2 };

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The cell text of the JSON number s[0..n) (its grammar checked by yajl) into out
 * (NUMBER_ROOM bytes), NUL-terminated; returns its length or NUM_*_RANGE.
 *
 * Integers keep their digits ("-0" is "0") and must fit 64 bits. A real with at most
 * 15 significant digits in the range of normal doubles is written straight from its
 * digits: DBL_DIG is 15, so that is exactly what "%.15g" prints for the double it reads
 * as, which is the shortest text that reads back (real_text's first try). Others go
 * through strtod and real_text.
 */
static long number_text(const char *s, size_t n, char *out)
{
    size_t i = 0, o = 0;
    int neg = s[0] == '-';
    i += (size_t)neg;
    size_t ib = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t ie = i, fb = i, fe = i;
    if (i < n && s[i] == '.') {
        fb = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        fe = i;
    }
    if (i == n && fb == ie) { /* an integer */
        size_t nd = ie - ib;
        if (nd > 19 ||
            (nd == 19 &&
             memcmp(s + ib, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))
            return NUM_INT_RANGE;
        if (nd == 1 && s[ib] == '0')
            neg = 0;
        if (neg)
            out[o++] = '-';
        memcpy(out + o, s + ib, nd);
        o += nd;
        out[o] = '\0';
        return (long)o;
    }
    long ex = 0;
    int ex_big = 0;
    if (i < n) { /* 'e' or 'E' */
        i++;
        int eneg = s[i] == '-';
        if (s[i] == '-' || s[i] == '+')
            i++;
        for (; i < n; i++) {
            if (ex < 100000)
                ex = ex * 10 + (s[i] - '0');
            else
                ex_big = 1;
        }
        if (eneg)
            ex = -ex;
    }
    /* the digits int ++ frac, without the leading and trailing zeros */
    size_t il = ie - ib, total = il + (fe - fb);
#define DIGIT(j) ((j) < il ? s[ib + (j)] : s[fb + (j)-il])
    size_t first = 0, last = total;
    while (first < total && DIGIT(first) == '0')
        first++;
    if (first == total) { /* zero keeps its sign, as %g prints it */
        if (neg)
            out[o++] = '-';
        out[o++] = '0';
        out[o] = '\0';
        return (long)o;
    }
    while (DIGIT(last - 1) == '0')
        last--;
    size_t k = last - first;
    long x = (long)il - 1 - (long)first + ex; /* decimal exponent of the first digit */
    if (k <= 15 && !ex_big && x >= -307 && x <= 307) {
        char d[15];
        for (size_t j = 0; j < k; j++)
            d[j] = DIGIT(first + j);
        if (neg)
            out[o++] = '-';
        if (x < -4 || x >= 15) { /* %g's exponent form: d.ddde+XX */
            out[o++] = d[0];
            if (k > 1) {
                out[o++] = '.';
                memcpy(out + o, d + 1, k - 1);
                o += k - 1;
            }
            o += (size_t)snprintf(out + o, NUMBER_ROOM - o, "e%c%02ld", x < 0 ? '-' : '+',
                                  x < 0 ? -x : x);
        } else if (x >= 0) {
            for (long j = 0; j <= x; j++)
                out[o++] = (size_t)j < k ? d[j] : '0';
            if (k > (size_t)x + 1) {
                out[o++] = '.';
                memcpy(out + o, d + x + 1, k - (size_t)x - 1);
                o += k - (size_t)x - 1;
            }
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (long j = -1; j > x; j--)
                out[o++] = '0';
            memcpy(out + o, d, k);
            o += k;
        }
        out[o] = '\0';
        return (long)o;
    }
#undef DIGIT
    /* rare: more digits than a double holds, or near the ends of its range */
    char small[64];
    char *z = n < sizeof(small) ? small : fx_malloc(n + 1);
    memcpy(z, s, n);
    z[n] = '\0';
    double v = strtod(z, NULL);
    if (z != small)
        free(z);
    if (isinf(v))
        return NUM_REAL_RANGE;
    return (long)real_text(v, out, NUMBER_ROOM);
}

/* ---- the record being parsed: yajl callbacks -------------------------------- */

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Line and column of byte at of the record text. */
static void position(const struct fx_jsonrec_parser *p, size_t at, long *line, long *col)
{
    const char *t = p->text;
    long l = p->tline, c = p->tcol;
    if (at > p->tlen)
        at = p->tlen;
    for (size_t i = 0; i < at; i++) {
        unsigned char b = (unsigned char)t[i];
        if (b == '\n') {
            l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* A name (n bytes) for a message: at most 64 bytes, cut on a character boundary. */
static const char *short_span(const char *name, size_t n, char buf[72])
{
    size_t k = n;
    if (k > 64) {
        k = 64;
        while (k > 0 && ((unsigned char)name[k] & 0xC0) == 0x80)
            k--;
    }
    snprintf(buf, 72, "%.*s%s", (int)k, name, k < n ? "..." : "");
    return buf;
}

static const char *short_name(const char *name, char buf[72])
{
    return short_span(name, strlen(name), buf);
}

/* Refuse the record being parsed (byte at of its text); returns 0 to stop yajl. */
static int refuse(struct fx_jsonrec_parser *p, int code, size_t at, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(struct fx_jsonrec_parser *p, int code, size_t at, const char *field,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->emsg, sizeof(p->emsg), fmt, ap);
    va_end(ap);
    p->ecode = code;
    p->eat = at;
    p->efield[0] = '\0';
    if (field)
        printable(p->efield, sizeof(p->efield), field);
    return 0;
}

static size_t consumed(const struct fx_jsonrec_parser *p)
{
    size_t off = yajl_get_bytes_consumed(p->yh);
    return off < p->tlen ? off : p->tlen;
}

static const char *name_of(const struct fx_jsonrec_parser *p, size_t key)
{
    return p->store + p->keys[key].name;
}

/* Start of the string whose closing quote is at close (raw text: an opening quote is the
 * first '"' before it not escaped by an odd run of backslashes). */
static size_t string_start(const char *t, size_t close)
{
    size_t i = close;
    while (i > 0) {
        i--;
        if (t[i] != '"')
            continue;
        size_t bs = 0;
        while (bs < i && t[i - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return i;
    }
    return 0;
}

static int too_big(struct fx_jsonrec_parser *p)
{
    return refuse(p, FX_ETOOBIG, consumed(p), NULL,
                  "the names and values of the record take more than %zu bytes once flattened "
                  "(8 x max_record_bytes)",
                  p->slimit);
}

static char *room_grow(struct fx_jsonrec_parser *p, size_t n)
{
    if (n > p->slimit - p->slen)
        return NULL;
    size_t cap = p->scap ? p->scap : 1024;
    while (cap < p->slen + n)
        cap *= 2;
    if (cap > p->slimit) /* so that room's test covers the cap too */
        cap = p->slimit;
    p->store = fx_realloc(p->store, cap);
    p->scap = cap;
    char *d = p->store + p->slen;
    p->slen += n;
    return d;
}

/* n bytes at the end of the store (valid until the next call), or NULL over its cap. */
static inline char *room(struct fx_jsonrec_parser *p, size_t n)
{
    if (n > p->scap - p->slen)
        return room_grow(p, n);
    char *d = p->store + p->slen;
    p->slen += n;
    return d;
}

static inline uint64_t load64(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

static inline uint64_t load32(const char *s)
{
    uint32_t w;
    memcpy(&w, s, 4);
    return w;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

/* Names are short: up to 16 bytes are read as two overlapping words, without a loop
 * over bytes (FNV's byte loop, a chain of multiplies, was a tenth of the time per
 * record). */
static uint32_t hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ (n * 0xC2B2AE3D27D4EB4Full), a = 0, b = 0;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 16 < n; i += 16)
            h = mix(mix(h, load64(s + i)), load64(s + i + 8));
        a = load64(s + (n - i > 8 ? i : n - 8));
        b = load64(s + n - 8);
    } else if (n >= 4) {
        a = load32(s);
        b = load32(s + n - 4);
    } else if (n > 0) {
        a = (uint64_t)(unsigned char)s[0] << 16 | (uint64_t)(unsigned char)s[n / 2] << 8 |
            (unsigned char)s[n - 1];
    }
    h = mix(mix(h, a), b);
    return (uint32_t)(h >> 32);
}

static void slots_grow(struct fx_jsonrec_parser *p)
{
    size_t n = p->nslots ? p->nslots * 2 : 64;
    free(p->slots);
    p->slots = fx_calloc(n, sizeof(*p->slots));
    p->nslots = n;
    p->gen = 1;
    for (size_t k = 0; k < p->nkeys; k++) {
        size_t i = p->keys[k].hash & (n - 1);
        while (p->slots[i].gen == p->gen)
            i = (i + 1) & (n - 1);
        p->slots[i] = (struct slot){.gen = p->gen, .key = k};
    }
}

/* s[0..n) lies in the record text: yajl passed a string in place, nothing unescaped. */
static inline int in_text(const struct fx_jsonrec_parser *p, const char *s, size_t n)
{
    return (uintptr_t)s >= (uintptr_t)p->text && (uintptr_t)s + n <= (uintptr_t)p->text + p->tlen;
}

/* s[0..n) is all ASCII (eight bytes at a time: most names and values are). */
static inline int ascii(const char *s, size_t n)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) == 0;
}

/* The 4 hex digits of a \u escape (yajl checked that they are hex digits). */
static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)s[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/*
 * Check the string s[0..n) that yajl passed for the token ending at the current offset:
 * valid UTF-8 and, when yajl had to unescape it, no \u0000 and no lone surrogate in its
 * raw text. field: the field holding the value (NULL for a key).
 */
static int check_string_slow(struct fx_jsonrec_parser *p, const char *s, size_t n,
                             const char *field)
{
    /* the common case, in place and ASCII, is taken by check_string */
    const char *t = p->text;
    const char *raw = s;
    size_t rn = n, base;
    char b[72];
    if (in_text(p, s, n)) {
        base = (size_t)(s - t); /* in place: nothing was unescaped */
    } else {
        size_t close = consumed(p);
        if (close == 0 || t[close - 1] != '"') { /* not expected: check what we have */
            size_t at = fx__csv_utf8_check(s, n);
            if (at < n || memchr(s, '\0', n))
                return refuse(p, FX_EENCODING, close, field, "invalid text in a string");
            return 1;
        }
        close--;
        base = string_start(t, close) + 1;
        raw = t + base;
        rn = close - base;
    }
    size_t at = fx__csv_utf8_check(raw, rn);
    if (at < rn) {
        const char *what = field ? short_name(field, b) : NULL;
        return refuse(p, FX_EENCODING, base + at, field, "%s%s%sinvalid UTF-8 (byte 0x%02X)",
                      what ? "field '" : "", what ? what : "",
                      what ? "': " : "in a key: ", (unsigned char)raw[at]);
    }
    if (raw == s)
        return 1;
    for (size_t i = 0; i + 1 < rn; i++) {
        if (raw[i] != '\\')
            continue;
        if (raw[i + 1] != 'u') {
            i++;
            continue;
        }
        unsigned cp = hex4(raw + i + 2);
        const char *why = NULL;
        if (cp == 0) {
            why = "NUL is not allowed in text";
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            why = "a low surrogate escape without the high one before it";
        } else if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo = 0;
            if (i + 11 < rn && raw[i + 6] == '\\' && raw[i + 7] == 'u')
                lo = hex4(raw + i + 8);
            if (lo >= 0xDC00 && lo <= 0xDFFF)
                i += 6;
            else
                why = "a high surrogate escape without the low one after it";
        }
        if (why) {
            const char *what = field ? short_name(field, b) : NULL;
            return refuse(p, FX_EPARSE, base + i, field, "%s%s%s\\u%.4s: %s", what ? "field '" : "",
                          what ? what : "", what ? "': " : "in a key: ", raw + i + 2, why);
        }
        i += 5;
    }
    return 1;
}

static inline int check_string(struct fx_jsonrec_parser *p, const char *s, size_t n,
                               const char *field)
{
    if (in_text(p, s, n) && ascii(s, n))
        return 1;
    return check_string_slow(p, s, n, field);
}

/* Offset of the first non-blank byte of the record text. */
static size_t text_start(const struct fx_jsonrec_parser *p)
{
    size_t i = 0;
    while (i < p->tlen && is_ws((unsigned char)p->text[i]))
        i++;
    return i;
}

/* A value outside any object: the record is not an object, or text follows it. */
static int top_value(struct fx_jsonrec_parser *p, const char *kind)
{
    if (p->done)
        return 0; /* reported as what follows the object, by record() */
    return refuse(p, FX_EPARSE, text_start(p), NULL, "expected a JSON object, found %s", kind);
}

/* Before a scalar value of the current key: 1 if it may become a field. */
static inline int leaf_ok(struct fx_jsonrec_parser *p, const char *kind)
{
    if (p->open == 0)
        return top_value(p, kind);
    struct key *k = &p->keys[p->cur];
    char b[72];
    if (p->nfields == p->o.max_fields)
        return refuse(p, FX_ETOOBIG, string_start(p->text, k->end - 1), NULL,
                      "more than %zu fields (max_fields)", p->o.max_fields);
    if (k->clash)
        return refuse(p, FX_EPARSE, string_start(p->text, k->end - 1), name_of(p, p->cur),
                      "field '%s' appears twice once nested objects are flattened",
                      short_name(name_of(p, p->cur), b));
    return 1;
}

/* The current key's value is the last len bytes of the store (its NUL after them). */
static inline int leaf_add(struct fx_jsonrec_parser *p, size_t len, enum fx_cell_type type)
{
    struct key *k = &p->keys[p->cur];
    k->leaf = 1;
    if (p->nfields == p->cap_fields) {
        p->cap_fields = p->cap_fields ? p->cap_fields * 2 : 16;
        p->fields = fx_realloc(p->fields, p->cap_fields * sizeof(*p->fields));
    }
    p->fields[p->nfields++] = (struct field){
        .name = k->name, .val = p->slen - len - 1, .len = len, .type = len ? type : FX_CELL_EMPTY};
    return 1;
}

static int leaf_text(struct fx_jsonrec_parser *p, const char *s, size_t n, enum fx_cell_type type)
{
    char *d = room(p, n + 1);
    if (!d)
        return too_big(p);
    memcpy(d, s, n);
    d[n] = '\0';
    return leaf_add(p, n, type);
}

static int on_null(void *ctx)
{
    struct fx_jsonrec_parser *p = ctx;
    return leaf_ok(p, "null") && leaf_text(p, "", 0, FX_CELL_EMPTY);
}

static int on_boolean(void *ctx, int v)
{
    struct fx_jsonrec_parser *p = ctx;
    return leaf_ok(p, "a boolean") && leaf_text(p, v ? "true" : "false", v ? 4 : 5, FX_CELL_BOOL);
}

static int on_number(void *ctx, const char *s, size_t n)
{
    struct fx_jsonrec_parser *p = ctx;
    if (!leaf_ok(p, "a number"))
        return 0;
    char *d = room(p, NUMBER_ROOM);
    if (!d)
        return too_big(p);
    long len = number_text(s, n, d);
    if (len < 0) {
        char b[72];
        size_t end = consumed(p);
        const char *name = name_of(p, p->cur);
        return refuse(p, FX_EPARSE, end >= n ? end - n : 0, name,
                      "field '%s': %s %.*s%s is out of range%s", short_name(name, b),
                      len == NUM_INT_RANGE ? "integer" : "number", n > 40 ? 40 : (int)n, s,
                      n > 40 ? "..." : "",
                      len == NUM_INT_RANGE ? " (64-bit integers: -9223372036854775808 to "
                                             "9223372036854775807)"
                                           : "");
    }
    p->slen -= NUMBER_ROOM - (size_t)len - 1;
    return leaf_add(p, (size_t)len, FX_CELL_NUMBER);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
    struct fx_jsonrec_parser *p = ctx;
    return leaf_ok(p, "a string") && check_string(p, (const char *)s, n, name_of(p, p->cur)) &&
           leaf_text(p, (const char *)s, n, FX_CELL_STRING);
}

static int on_start_map(void *ctx)
{
    struct fx_jsonrec_parser *p = ctx;
    if (p->open == 0) {
        if (p->done)
            return 0; /* a second value: reported by record() */
    } else {
        if (p->open >= p->o.max_depth) {
            char b[72];
            const char *name = name_of(p, p->cur);
            return refuse(p, FX_ETOOBIG, consumed(p) - 1, name,
                          "field '%s': objects nested deeper than %zu levels (max_depth)",
                          short_name(name, b), p->o.max_depth);
        }
    }
    if (p->open == p->cap_frames) {
        p->cap_frames = p->cap_frames ? p->cap_frames * 2 : 8;
        p->frames = fx_realloc(p->frames, p->cap_frames * sizeof(*p->frames));
    }
    p->frames[p->open] = (struct frame){.key = p->open ? p->cur : NONE, .obj = p->nobj++};
    p->open++;
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *s, size_t n)
{
    struct fx_jsonrec_parser *p = ctx;
    if (!check_string(p, (const char *)s, n, NULL))
        return 0;
    const struct frame *f = &p->frames[p->open - 1];
    int inner = f->key != NONE; /* "outer.key" (the outer name may be "") */
    size_t plen = inner ? p->keys[f->key].len : 0;
    size_t len = inner ? plen + 1 + n : n;
    char *d = room(p, len + 1);
    if (!d)
        return too_big(p);
    if (inner) {
        memcpy(d, p->store + p->keys[f->key].name, plen);
        d[plen] = '.';
    }
    memcpy(d + len - n, s, n);
    d[len] = '\0';
    size_t name = (size_t)(d - p->store);

    if (p->nkeys == p->cap_keys) {
        p->cap_keys = p->cap_keys ? p->cap_keys * 2 : 16;
        p->keys = fx_realloc(p->keys, p->cap_keys * sizeof(*p->keys));
    }
    if ((p->nkeys + 1) * 2 > p->nslots)
        slots_grow(p);
    struct key *k = &p->keys[p->nkeys];
    /* where the key ends, for messages (in place, without asking yajl) */
    size_t end =
        in_text(p, (const char *)s, n) ? (size_t)((const char *)s - p->text) + n + 1 : consumed(p);
    *k = (struct key){.name = name, .len = len, .obj = f->obj, .end = end};
    k->hash = hash(p->seed, d, len);
    size_t mask = p->nslots - 1, i = k->hash & mask;
    for (; p->slots[i].gen == p->gen; i = (i + 1) & mask) {
        const struct key *o = &p->keys[p->slots[i].key];
        if (o->hash != k->hash || o->len != len || memcmp(p->store + o->name, d, len) != 0)
            continue;
        if (o->obj == k->obj) {
            char b[72], b2[72];
            return refuse(p, FX_EPARSE, string_start(p->text, k->end - 1), d,
                          "duplicate key '%s'%s%s%s", short_name(d + len - n, b),
                          inner ? " in the object '" : "", inner ? short_span(d, plen, b2) : "",
                          inner ? "'" : "");
        }
        if (o->leaf)
            k->clash = 1;
    }
    p->slots[i] = (struct slot){.gen = p->gen, .key = p->nkeys};
    p->cur = p->nkeys++;
    return 1;
}

static int on_end_map(void *ctx)
{
    struct fx_jsonrec_parser *p = ctx;
    if (--p->open == 0) {
        p->done = 1;
        p->end = consumed(p);
    } else {
        p->cur = p->frames[p->open].key; /* back in the outer object */
    }
    return 1;
}

static int on_start_array(void *ctx)
{
    struct fx_jsonrec_parser *p = ctx;
    if (p->open == 0)
        return top_value(p, "an array");
    char b[72];
    const char *name = name_of(p, p->cur);
    return refuse(p, FX_ENOTSUP, consumed(p) - 1, name, "field '%s': arrays are not supported",
                  short_name(name, b));
}

static int on_end_array(void *ctx)
{
    (void)ctx;
    return 0; /* never reached: arrays stop the parse when they start */
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* ---- the record being parsed: yajl's own errors ----------------------------- */

/* yajl's messages (2.1.0), reworded; where: the offending byte is the one yajl stopped
 * at (AT) or the one before (BEFORE); or the offending token ends where yajl stopped
 * (TOKEN) or starts there (TOKEN_BACK: yajl put it back). */
enum where { AT, BEFORE, TOKEN, TOKEN_BACK };
static const struct {
    const char *yajl; /* part of yajl's message */
    const char *text; /* ours; %s: what was found */
    enum where where;
} syntax_errors[] = {
    {"invalid char in json text", "unexpected %s", BEFORE},
    {"invalid string in json text", "invalid literal (true, false or null expected), found %s", AT},
    {"invalid character inside string", "%s inside a string (control characters must be escaped)",
     AT},
    {"before a character which it may not", "invalid escape in a string: '\\' followed by %s", AT},
    {"non-hex", "invalid \\u escape in a string: 4 hex digits expected, found %s", AT},
    {"after the minus sign", "malformed number: a digit expected after '-', found %s", AT},
    {"after the decimal point", "malformed number: a digit expected after '.', found %s", AT},
    {"after the exponent", "malformed number: a digit expected in the exponent, found %s", AT},
    {"comment", "comments are not allowed in JSON (found %s)", AT},
    {"separated by a colon", "':' expected after the key, found %s", TOKEN},
    {"after key and value", "',' or '}' expected after the value, found %s", TOKEN_BACK},
    {"after array element", "',' or ']' expected after the value, found %s", TOKEN_BACK},
    {"invalid object key", "a key (a string in double quotes) expected, found %s", TOKEN},
    {"unallowed token", "a value expected, found %s", TOKEN},
};

/* What the byte at of the record text is, for a message. */
static const char *found(const struct fx_jsonrec_parser *p, size_t at, char buf[16])
{
    if (at >= p->tlen)
        return p->o.ndjson ? "the end of the line" : "the end of the record";
    const char *s = p->text + at;
    unsigned char c = (unsigned char)*s;
    size_t l = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (c >= 0x80 && l <= p->tlen - at && fx__csv_utf8_check(s, l) == l) {
        snprintf(buf, 16, "'%.*s'", (int)l, s);
        return buf;
    }
    return describe(c, buf);
}

/* End of the token that starts at i (a string, a number or literal, or one byte). */
static size_t token_end(const char *t, size_t n, size_t i)
{
    if (t[i] == '"') {
        for (i++; i < n; i++) {
            if (t[i] == '\\')
                i++;
            else if (t[i] == '"')
                return i + 1;
        }
        return n;
    }
    size_t j = i;
    while (j < n && (is_digit(t[j]) || (t[j] >= 'a' && t[j] <= 'z') || t[j] == 'E' || t[j] == '.' ||
                     t[j] == '+' || t[j] == '-'))
        j++;
    return j > i ? j : i + 1;
}

/*
 * The token yajl refused, from the offset it stopped at: end: off is just past the
 * token (most errors), else off is where yajl put it back (its start; 2 bytes into a
 * string). Error path only: the text is tokenized from its start to find the token's
 * bounds. Returns its start and says what it is.
 */
static size_t token(const struct fx_jsonrec_parser *p, size_t off, int end, const char **what,
                    char buf[16])
{
    const char *t = p->text;
    size_t n = p->tlen, i = 0, start = off;
    while (i < n) {
        while (i < n && is_ws((unsigned char)t[i]))
            i++;
        if (i >= n)
            break;
        size_t e = token_end(t, n, i);
        if (end ? e == off || (i < off && off < e)
                : i == off || (t[i] == '"' && i + 2 == off) || (i < off && off < e)) {
            start = i;
            break;
        }
        if (i >= off)
            break;
        i = e;
    }
    if (start >= n) {
        *what = found(p, start, buf);
        return start;
    }
    unsigned char c = (unsigned char)t[start];
    if (c == '"') {
        *what = "a string";
    } else if (c == '-' || is_digit((char)c)) {
        *what = "a number";
    } else if (c >= 'a' && c <= 'z') {
        size_t e = token_end(t, n, start);
        snprintf(buf, 16, "'%.*s'", (int)(e - start < 6 ? e - start : 6), t + start);
        *what = buf;
    } else {
        *what = found(p, start, buf);
    }
    return start;
}

/* yajl refused the record text; in_finish: in yajl_complete_parse, past the text. */
static void syntax_error(struct fx_jsonrec_parser *p, int in_finish)
{
    unsigned char *m = yajl_get_error(p->yh, 0, NULL, 0);
    const char *msg = m ? (const char *)m : "";
    size_t off = in_finish ? p->tlen : consumed(p);
    char b[16];
    /* invalid UTF-8 up to where yajl stopped is the first thing wrong */
    size_t bad_at = fx__csv_utf8_check(p->text, p->tlen);
    if (bad_at < off || (bad_at < p->tlen && bad_at == off)) {
        refuse(p, FX_EENCODING, bad_at, NULL, "invalid UTF-8 (byte 0x%02X)",
               (unsigned char)p->text[bad_at]);
    } else if (strstr(msg, "premature EOF")) {
        refuse(p, FX_EPARSE, p->tlen ? p->tlen - 1 : 0, NULL,
               "the %s ends before the object is closed", p->o.ndjson ? "line" : "record");
    } else {
        size_t i = 0, n = sizeof(syntax_errors) / sizeof(syntax_errors[0]);
        while (i < n && !strstr(msg, syntax_errors[i].yajl))
            i++;
        int lexical = strncmp(msg, "lexical", 7) == 0;
        enum where w = i < n ? syntax_errors[i].where : lexical ? BEFORE : TOKEN;
        size_t at = off;
        const char *what;
        if (w == TOKEN || w == TOKEN_BACK) {
            at = token(p, off, w == TOKEN, &what, b);
        } else {
            if (w == BEFORE && at > 0)
                at--;
            if (in_finish)
                at = p->tlen;
            what = found(p, at, b);
        }
        if (i < n) {
            refuse(p, FX_EPARSE, at, NULL, syntax_errors[i].text, what);
        } else {
            /* an error this file does not know: yajl's words */
            const char *colon = strstr(msg, ": ");
            char text[160];
            snprintf(text, sizeof(text), "%s", colon ? colon + 2 : msg);
            text[strcspn(text, "\n")] = '\0';
            refuse(p, FX_EPARSE, at, NULL, "invalid JSON: %s (found %s)", text, what);
        }
    }
    if (m)
        yajl_free_error(p->yh, m);
}

/* ---- one record ------------------------------------------------------------- */

static yajl_handle new_handle(struct fx_jsonrec_parser *p)
{
    yajl_handle h = yajl_alloc(&callbacks, NULL, p);
    if (!h) {
        fprintf(stderr, "fluxo: out of memory allocating a JSON parser\n");
        abort();
    }
    /* strings are checked by check_string, more strictly than yajl would */
    yajl_config(h, yajl_dont_validate_strings, 1);
    /* one handle for record after record */
    yajl_config(h, yajl_allow_multiple_values, 1);
    return h;
}

/* Parse s[0..n), the text of record p->index starting at line/col, and deliver it. */
static int record(struct fx_jsonrec_parser *p, const char *s, size_t n, long line, long col,
                  struct fx_err *err)
{
    p->text = s;
    p->tlen = n;
    p->tline = line;
    p->tcol = col;
    p->open = 0;
    p->done = 0;
    p->nobj = 0;
    p->nkeys = 0;
    p->nfields = 0;
    p->slen = 0;
    p->ecode = 0;
    if (++p->gen == 0) { /* the generation wrapped: forget every slot */
        if (p->slots)
            memset(p->slots, 0, p->nslots * sizeof(*p->slots));
        p->gen = 1;
    }
    if (!p->yh)
        p->yh = new_handle(p);

    yajl_status st = yajl_parse(p->yh, (const unsigned char *)s, n);
    int in_finish = 0;
    if (st == yajl_status_ok && !p->done) {
        /* a value yajl could not end (a top-level number) or an unclosed object */
        st = yajl_complete_parse(p->yh);
        in_finish = 1;
    }
    if (!p->ecode && p->done) {
        size_t i = p->end;
        while (i < n && is_ws((unsigned char)s[i]))
            i++;
        char b[16];
        if (i < n) {
            refuse(p, FX_EPARSE, i, NULL, "unexpected %s after the end of the object%s",
                   found(p, i, b), p->o.ndjson ? " (one object per line)" : "");
        } else if (st == yajl_status_ok) {
            const char *ff = memchr(s, '\f', n), *vt = memchr(s, '\v', n);
            const char *w = ff && (!vt || ff < vt) ? ff : vt;
            if (w)
                refuse(p, FX_EPARSE, (size_t)(w - s), NULL,
                       "%s is not JSON whitespace (space, tab, CR and LF are)", describe(*w, b));
        }
    }
    if (!p->ecode && st != yajl_status_ok)
        syntax_error(p, in_finish);
    if (!p->ecode && !p->done) /* not expected: yajl took the text without an object */
        refuse(p, FX_EPARSE, text_start(p), NULL, "expected a JSON object");
    if (p->ecode) {
        /* the handle is in the middle of something: the next record gets a new one */
        yajl_free(p->yh);
        p->yh = NULL;
        long el, ec;
        position(p, p->eat, &el, &ec);
        return bad(p, err, p->ecode, el, ec, p->efield[0] ? p->efield : NULL, "%s", p->emsg);
    }
    if (!p->cb)
        return 0;
    if (p->nfields > p->cap) {
        p->cap = p->nfields;
        p->names = fx_realloc(p->names, p->cap * sizeof(*p->names));
        p->cells = fx_realloc(p->cells, p->cap * sizeof(*p->cells));
    }
    for (size_t i = 0; i < p->nfields; i++) {
        const struct field *f = &p->fields[i];
        p->names[i] = p->store + f->name;
        p->cells[i] = (struct fx_cell){.s = p->store + f->val, .len = f->len, .type = f->type};
    }
    struct fx_jsonrec r = {
        .index = p->index, .line = line, .n = p->nfields, .names = p->names, .cells = p->cells};
    int rc = p->cb(p->ud, &r);
    if (rc) {
        fx_err_clear(&p->ferr);
        stop(p, rc);
    }
    return rc;
}

/* ---- NDJSON ----------------------------------------------------------------- */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != 0x1E)
            return 0;
    return 1;
}

static int line_too_long(struct fx_jsonrec_parser *p, struct fx_err *err)
{
    p->index++;
    return bad(p, err, FX_ETOOBIG, p->line, 1, NULL,
               "line longer than %zu bytes (max_record_bytes)", p->o.max_record_bytes);
}

/* One whole line, its '\n' excluded. */
static int ndjson_line(struct fx_jsonrec_parser *p, const char *s, size_t n, struct fx_err *err)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (is_blank(s, n))
        return 0;
    if (n > p->o.max_record_bytes)
        return line_too_long(p, err);
    p->index++;
    /* RFC 7464 (application/json-seq) puts an RS before each text */
    size_t rs = 0;
    while (rs < n && s[rs] == 0x1E)
        rs++;
    if (p->line_cb) {
        struct fx_jsonrec_line ln = {s + rs, n - rs, p->index, p->line, 1 + (long)rs};
        int rc = p->line_cb(p->ud, &ln);
        if (rc) {
            fx_err_clear(&p->ferr);
            stop(p, rc);
        }
        return rc;
    }
    return record(p, s + rs, n - rs, p->line, 1 + (long)rs, err);
}

void fx_jsonrec_defer_lines(struct fx_jsonrec_parser *p, fx_jsonrec_line_cb line_cb)
{
    p->line_cb = line_cb;
}

int fx_jsonrec_parse_line(struct fx_jsonrec_parser *p, const struct fx_jsonrec_line *ln,
                          struct fx_err *err)
{
    p->index = ln->index;
    return record(p, ln->s, ln->len, ln->line, ln->col, err);
}

/* Consume NDJSON bytes; returns after each line so the caller can check for a stop. */
static int ndjson(struct fx_jsonrec_parser *p, const char **dp, size_t *np, struct fx_err *err)
{
    const char *d = *dp;
    size_t n = *np;
    const char *nl = memchr(d, '\n', n);
    size_t k = nl ? (size_t)(nl - d) : n;
    size_t room_left = p->o.max_record_bytes + 1; /* the line and its '\r' */
    int rc = 0;
    if (p->st == ST_SKIP) {
        if (!p->skip_nonblank)
            p->skip_nonblank = !is_blank(d, k);
        if (nl) {
            if (p->skip_nonblank)
                rc = line_too_long(p, err);
            p->st = ST_LINE;
        }
    } else if (p->rec.len + k > room_left) {
        p->skip_nonblank = !is_blank(p->rec.data, p->rec.len) || !is_blank(d, k);
        fx_buf_reset(&p->rec);
        p->st = ST_SKIP;
        if (nl) {
            if (p->skip_nonblank)
                rc = line_too_long(p, err);
            p->st = ST_LINE;
        }
    } else if (!nl) {
        fx_buf_append(&p->rec, d, k);
    } else if (p->rec.len == 0) {
        rc = ndjson_line(p, d, k, err); /* whole line in this chunk: parse in place */
    } else {
        fx_buf_append(&p->rec, d, k);
        rc = ndjson_line(p, p->rec.data, p->rec.len, err);
        fx_buf_reset(&p->rec);
    }
    if (nl) {
        p->line++;
        k++;
    }
    *dp = d + k;
    *np = n - k;
    return rc;
}

/* ---- JSON: object or array ------------------------------------------------- */

/* Account for one consumed byte in line/column. */
static void step(struct fx_jsonrec_parser *p, unsigned char c)
{
    if (c == '\n') {
        p->line++;
        p->col = 0;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

static void begin_elem(struct fx_jsonrec_parser *p)
{
    p->index++;
    p->st = ST_ELEM;
    p->rec_line = p->line;
    p->rec_col = p->col + 1;
    p->rec_len = 0;
    p->in_str = p->esc = 0;
    p->depth = 0;
    fx_buf_reset(&p->rec);
}

/* Scan the element from d: consumes up to and including its closing brace. */
static int elem(struct fx_jsonrec_parser *p, const char **dp, size_t *np, struct fx_err *err)
{
    const unsigned char *d = (const unsigned char *)*dp;
    size_t n = *np, i = 0;
    int done = 0;
    for (; i < n; i++) {
        unsigned char c = d[i];
        step(p, c);
        if (p->in_str) {
            if (p->esc)
                p->esc = 0;
            else if (c == '\\')
                p->esc = 1;
            else if (c == '"')
                p->in_str = 0;
        } else if (c == '"') {
            p->in_str = 1;
        } else if (c == '{' || c == '[') {
            p->depth++;
        } else if ((c == '}' || c == ']') && --p->depth == 0) {
            i++;
            done = 1;
            break;
        }
    }
    *dp += i;
    *np -= i;
    p->rec_len += i;
    if (p->rec_len > p->o.max_record_bytes)
        return fatal(p, err, FX_ETOOBIG, p->rec_line, p->rec_col,
                     "record %zu is longer than %zu bytes (max_record_bytes)", p->index,
                     p->o.max_record_bytes);
    p->st = done ? (p->array ? ST_ARR_AFTER : ST_TRAIL) : ST_ELEM;
    if (!done) {
        fx_buf_append(&p->rec, d, i);
        return 0;
    }
    if (p->rec.len == 0) /* whole element in this chunk: parse in place */
        return record(p, (const char *)d, i, p->rec_line, p->rec_col, err);
    fx_buf_append(&p->rec, d, i);
    int rc = record(p, p->rec.data, p->rec.len, p->rec_line, p->rec_col, err);
    fx_buf_reset(&p->rec);
    return rc;
}

/* One significant (non-blank) byte c between records, at p->line/p->col once stepped. */
static int punct(struct fx_jsonrec_parser *p, unsigned char c, struct fx_err *err)
{
    char b[16];
    if (c == '{' && (p->st == ST_START || p->st == ST_ARR_OPEN || p->st == ST_ARR_NEXT)) {
        begin_elem(p); /* the scanner consumes the '{' */
        return 0;
    }
    step(p, c);
    switch (p->st) {
    case ST_START:
        if (c == '[') {
            p->array = 1;
            p->arr_line = p->line;
            p->arr_col = p->col;
            p->st = ST_ARR_OPEN;
            return 0;
        }
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "expected a JSON object or an array of objects, found %s", describe(c, b));
    case ST_ARR_OPEN:
        if (c == ']') {
            p->st = ST_TRAIL;
            return 0;
        }
        /* fall through */
    case ST_ARR_NEXT:
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "array element %zu is not an object (found %s)", p->index + 1, describe(c, b));
    case ST_ARR_AFTER:
        if (c == ',') {
            p->st = ST_ARR_NEXT;
            return 0;
        }
        if (c == ']') {
            p->st = ST_TRAIL;
            return 0;
        }
        return fatal(p, err, FX_EPARSE, p->line, p->col,
                     "expected ',' or ']' after array element %zu, found %s", p->index,
                     describe(c, b));
    default: /* ST_TRAIL */
        if (!p->array && c == '{')
            return fatal(p, err, FX_EPARSE, p->line, p->col,
                         "another object after the JSON object (one object per line is NDJSON: "
                         "send it as application/x-ndjson)");
        return fatal(p, err, FX_EPARSE, p->line, p->col, "unexpected %s after the closing %s",
                     describe(c, b), p->array ? "']' of the array" : "'}' of the JSON object");
    }
}

/* ---- driver ------------------------------------------------------------------ */

static enum state first_state(const struct fx_jsonrec_parser *p)
{
    return p->o.ndjson ? ST_LINE : ST_START;
}

static int run(struct fx_jsonrec_parser *p, const char *d, size_t n, struct fx_err *err)
{
    int rc = 0;
    while (n > 0 && rc == 0) {
        switch (p->st) {
        case ST_BOM:
            if ((unsigned char)*d == bom_bytes[p->bom]) {
                d++;
                n--;
                if (++p->bom == 3)
                    p->st = first_state(p);
            } else {
                /* not a BOM after all: its bytes so far are ordinary input */
                int k = p->bom;
                p->st = first_state(p);
                if (k)
                    rc = run(p, (const char *)bom_bytes, (size_t)k, err);
            }
            break;
        case ST_LINE:
        case ST_SKIP:
            rc = ndjson(p, &d, &n, err);
            break;
        case ST_ELEM:
            rc = elem(p, &d, &n, err);
            break;
        case ST_DONE:
            return p->rc;
        default:
            while (n > 0 && is_ws((unsigned char)*d)) {
                step(p, (unsigned char)*d);
                d++;
                n--;
            }
            if (n > 0) {
                unsigned char c = (unsigned char)*d;
                if (c != '{' || p->st == ST_ARR_AFTER || p->st == ST_TRAIL) {
                    d++;
                    n--;
                }
                rc = punct(p, c, err);
            }
            break;
        }
    }
    return rc;
}

int fx_jsonrec_feed(struct fx_jsonrec_parser *p, const char *data, size_t len, struct fx_err *err)
{
    if (p->st == ST_DONE) {
        if (err && p->rc < 0)
            *err = p->ferr;
        return p->rc;
    }
    if (p->finished)
        return fx_err_set(err, FX_EINVAL, "fx_jsonrec_feed called after fx_jsonrec_finish");
    int rc = run(p, data, len, err);
    if (rc < 0 && err && p->st == ST_DONE)
        *err = p->ferr;
    return rc;
}

int fx_jsonrec_finish(struct fx_jsonrec_parser *p, struct fx_err *err)
{
    int rc = 0;
    if (p->st == ST_DONE)
        goto out;
    if (p->finished)
        return 0;
    p->finished = 1;
    if (p->st == ST_BOM) {
        int k = p->bom;
        p->st = first_state(p);
        if (k && (rc = run(p, (const char *)bom_bytes, (size_t)k, err)))
            goto out;
    }
    switch (p->st) {
    case ST_LINE:
        if (p->rec.len) {
            rc = ndjson_line(p, p->rec.data, p->rec.len, err);
            fx_buf_reset(&p->rec);
        }
        break;
    case ST_SKIP:
        if (p->skip_nonblank)
            rc = line_too_long(p, err);
        p->st = ST_LINE;
        break;
    case ST_ELEM:
        if (p->array)
            rc = fatal(p, err, FX_EPARSE, p->line, p->col,
                       "the body ends inside array element %zu, which starts at line %ld, "
                       "column %ld: the object is not closed",
                       p->index, p->rec_line, p->rec_col);
        else
            rc = fatal(p, err, FX_EPARSE, p->line, p->col,
                       "the body ends inside the JSON object that starts at line %ld, column "
                       "%ld: the object is not closed",
                       p->rec_line, p->rec_col);
        break;
    case ST_ARR_OPEN:
    case ST_ARR_NEXT:
    case ST_ARR_AFTER:
        rc = fatal(p, err, FX_EPARSE, p->line, p->col,
                   "the body ends before the closing ']' of the array that starts at line %ld, "
                   "column %ld",
                   p->arr_line, p->arr_col);
        break;
    default:
        break;
    }
    if (rc)
        goto out;
    if (p->st == ST_START || (p->o.ndjson && p->index == 0))
        rc = fatal(p, err, FX_EEMPTY, 0, 0,
                   "empty body: expected a JSON object, an array of objects or NDJSON");
out:
    if (p->st == ST_DONE) {
        rc = p->rc;
        if (err && rc < 0)
            *err = p->ferr;
    }
    return rc;
}
