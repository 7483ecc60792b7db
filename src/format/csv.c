/* SPDX-License-Identifier: MIT */
/*
 * Streaming CSV: a resumable push parser (fx_csv_*) and a file-backed record
 * reader on top of it (fx_csv_reader_open). Memory stays flat whatever the
 * file size: the reader holds one 64 KiB block (plus its UTF-8 transcoding),
 * the parser one record, and both are bounded by the configured caps even on
 * hostile input.
 *
 * Design notes
 *
 * Stages of the push parser. Input goes through up to three stages, each of
 * which keeps its own state so a chunk may end anywhere (inside the BOM, a
 * quote, a "" escape, a UTF-8 sequence, between CR and LF):
 *   1. BOM: a leading EF BB BF is dropped (bytes held while matching are
 *      passed on if the input turns out not to start with a BOM);
 *   2. DETECT (only when no delimiter was configured): the raw bytes of the
 *      first non-blank record (at most 64 KiB) are buffered while ',' ';' and
 *      tab are counted outside quotes; the most frequent wins, ties going to
 *      ';' then ',' then tab, none at all meaning ',' (one column). Leading
 *      blank lines go straight to the record machine (they only count lines).
 *      The buffered bytes are then replayed through the record machine before
 *      any new input, so the header is parsed by the same code as every other
 *      record. (The sniffer's idea of quotes can differ from the parser's once
 *      the delimiter is known, so the replay may hold more than one record:
 *      fx_csv_parse then returns records with *consumed = 0, and fx_csv_finish
 *      must be called until it returns 0.)
 *   3. MAIN: the record machine (FSTART, UNQ, Q, QQ). Runs of plain text are
 *      found 16 bytes at a time (SSE2, with a byte-table fallback) and copied
 *      with one fixed 16-byte move when short; UNQ stays in a tight loop across
 *      delimiters while fields are unquoted. Nothing is allocated per cell or
 *      per row: cells are copied into one record buffer (a NUL after each)
 *      reused for every record, and UTF-8 is checked once over that buffer.
 *
 * Rows. rec->row is the physical line where the record starts: LF, CR and
 * CRLF each end one physical line, inside quotes too, and blank lines are
 * skipped but counted. A CR outside quotes ends the record at once; an LF
 * right after it is swallowed, so a chunk split between CR and LF changes
 * nothing.
 *
 * Leniency (like Excel): a quote inside an unquoted field is kept literally
 * (ab"c -> ab"c) and does not open a quoted section; text after a closing
 * quote is appended to the field ("ab"c -> abc, "ab" x -> ab x), quotes in
 * that appended text being literal ("a"b"c -> ab"c). Cells are never trimmed.
 *
 * Row-level errors (rec->bad, no cells, reason in rec->err with row and
 * column; the reader goes on with the next record): a field over
 * max_field_bytes, more than max_fields fields, a record over max_line_bytes
 * (raw bytes, quotes and embedded line ends included, terminator excluded),
 * invalid UTF-8, a NUL byte. Once a record is bad nothing more of it is
 * stored; the machine only tracks quotes to find its end (the next line end
 * outside quotes), so memory stays bounded by the caps. Only the first problem
 * of a record is reported, and which one is first never depends on how the
 * input was split.
 *
 * Unterminated quote: if the input ends inside a quoted field, fx_csv_finish
 * (and so fx_reader_next) returns the fatal FX_EPARSE naming the row and
 * column where the quote opened. Everything after that quote was swallowed
 * into one field, so reporting it as a single rejected row would hide how
 * many rows were lost; the file must be fixed. A record that is also over the
 * line cap because of that quote is not reported separately: the fatal error
 * is. Memory stays bounded meanwhile (nothing is stored past the cap).
 *
 * Encodings live in the file reader: a BOM means UTF-8; otherwise the first
 * 64 KiB decide (valid UTF-8, a sequence cut by the end of that sample
 * allowed, means UTF-8, else Windows-1252). Windows-1252 is a single-byte
 * code, so no sequence can be split across blocks: at open, glibc iconv
 * (iconv_open("UTF-8", "WINDOWS-1252")) converts each of the 128 high bytes
 * once into a table, and blocks are then transcoded with that table (ASCII
 * copied 16 bytes at a time), several times faster than calling iconv on the
 * data. The five bytes iconv leaves undefined (81 8D 8F 90 9D) become the C1
 * controls U+0081.. as browsers do. The push parser itself only accepts UTF-8
 * and checks every record, so a file detected as UTF-8 with a bad byte later
 * rejects that row only.
 *
 * Not thread-safe: one parser or reader per thread.
 */
#include "fluxo/csv.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define DETECT_MAX (64u << 10) /* bytes of the first record looked at for the delimiter */

size_t fx__csv_block_size = FX__CSV_BLOCK_MAX;

/* ------------------------------------------------------------------------ */
/* UTF-8 validation                                                          */

/* Length of the valid sequence at s[0..n), n >= 1, s[0] >= 0x80: > 0 valid
 * length, 0 invalid, -1 a valid but incomplete prefix cut by the end. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < 2)
        return -1;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++) {
        if (k >= n)
            return -1;
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    }
    return (int)len;
}

/* Scalar check of s[i..n) from a character boundary, until at least stop
 * (then *i is the boundary reached): 0 when fine, else 1 with *i at the bad
 * sequence. */
static int utf8_scalar(const unsigned char *s, size_t *ip, size_t stop, size_t n)
{
    size_t i = *ip;
    while (i < stop) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int l = utf8_seq(s + i, n - i);
        if (l <= 0) {
            *ip = i;
            return 1;
        }
        i += (size_t)l;
    }
    *ip = i;
    return 0;
}

size_t fx__csv_utf8_check(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time while they hold only ASCII and whole 2-byte
     * sequences (accented Latin text); anything else goes to the scalar check
     * for one block. Each block starts on a character boundary. */
    const __m128i mc0 = _mm_set1_epi8((char)0xC0), m80 = _mm_set1_epi8((char)0x80);
    const __m128i lo = _mm_set1_epi8(0x41), hi = _mm_set1_epi8(0x60);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        unsigned high = (unsigned)_mm_movemask_epi8(x);
        if (LIKELY(high == 0)) {
            i += 16;
            continue;
        }
        __m128i xs = _mm_xor_si128(x, m80); /* C2..DF become 0x42..0x5F, signed */
        unsigned cont = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(x, mc0), m80));
        unsigned lead = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpgt_epi8(xs, lo), _mm_cmplt_epi8(xs, hi)));
        if ((high & ~(cont | lead)) == 0 && cont == ((lead << 1) & 0xFFFF) && !(lead & 0x8000)) {
            i += 16;
            continue;
        }
        if (utf8_scalar(s, &i, i + 16, n))
            return i;
    }
#endif
    if (utf8_scalar(s, &i, n, n))
        return i;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Push parser                                                               */

enum stage { ST_BOM, ST_DETECT, ST_MAIN, ST_DONE };

enum state {
    S_FSTART, /* at the start of a field */
    S_UNQ,    /* in an unquoted field (or text after a closing quote) */
    S_Q,      /* in a quoted field */
    S_QQ,     /* in a quoted field, just after a quote: escape or close */
};

struct fx_csv {
    size_t max_line, max_field, max_fields;
    char delim;
    enum stage stage, after_bom;
    unsigned char stop[256];  /* S_UNQ stops at: delimiter, CR, LF, NUL */
    unsigned char qstop[256]; /* S_Q stops at: quote, CR, LF, NUL */

    unsigned bom_have; /* BOM bytes matched so far */

    /* delimiter detection */
    char *det;
    size_t det_len;
    size_t det_count[3]; /* ';' ',' tab */
    int det_inq, det_qpend, det_fstart;

    /* bytes to run through the record machine before any new input */
    char *replay;
    size_t replay_len, replay_pos;

    /* record machine */
    enum state st;
    int prev_cr;     /* the last byte processed was a CR */
    int started;     /* the current record has begun */
    int emitted;     /* the caller holds the last record: reset before going on */
    long line;       /* physical line of the next byte */
    long rec_row;    /* line where the current record started */
    long quote_line; /* where the last quoted field opened */
    int quote_col;
    size_t rec_bytes; /* raw bytes of the current record so far */

    /* the record: cell text, NUL after each, reused for every record */
    char *rb;
    size_t rb_len, rb_cap;
    size_t fstart; /* offset in rb of the current field */
    size_t nf;     /* fields completed in the current record */
    size_t *fo;    /* start offset of each completed field */
    struct fx_cell *cells;
    size_t cells_cap;

    int bad; /* current record is rejected; see berr */
    struct fx_err berr;
    int fatal; /* a fatal error ended parsing; see ferr */
    struct fx_err ferr;
};

static size_t or_default(size_t v, size_t def)
{
    return v ? v : def;
}

static int delim_ok(char d)
{
    unsigned char c = (unsigned char)d;
    return c != 0 && c < 0x80 && c != '"' && c != '\r' && c != '\n';
}

static void set_delim(struct fx_csv *p, char d)
{
    p->delim = d;
    memset(p->stop, 0, sizeof(p->stop));
    p->stop[(unsigned char)d] = 1;
    p->stop['\r'] = p->stop['\n'] = p->stop[0] = 1;
}

/* Limits left at 0 take their defaults; a delimiter that cannot be one (quote,
 * CR, LF, non-ASCII) means "detect" (fx_csv_reader_open refuses it instead). */
struct fx_csv *fx_csv_new(const struct fx_reader_opts *opts)
{
    struct fx_csv *p = fx_calloc(1, sizeof(*p));
    p->max_line = or_default(opts ? opts->max_line_bytes : 0, 1 << 20);
    p->max_field = or_default(opts ? opts->max_field_bytes : 0, 64 << 10);
    p->max_fields = or_default(opts ? opts->max_fields : 0, 1024);
    if (opts && delim_ok(opts->delimiter)) {
        set_delim(p, opts->delimiter);
        p->after_bom = ST_MAIN;
    } else {
        p->after_bom = ST_DETECT;
    }
    p->qstop['"'] = p->qstop['\r'] = p->qstop['\n'] = p->qstop[0] = 1;
    p->stage = ST_BOM;
    p->det_fstart = 1;
    p->st = S_FSTART;
    p->line = 1;
    p->rb_cap = 4096;
    p->rb = fx_malloc(p->rb_cap);
    p->cells_cap = 16;
    p->fo = fx_malloc(p->cells_cap * sizeof(*p->fo));
    p->cells = fx_malloc(p->cells_cap * sizeof(*p->cells));
    return p;
}

void fx_csv_free(struct fx_csv *p)
{
    if (!p)
        return;
    free(p->det);
    free(p->replay);
    free(p->rb);
    free(p->fo);
    free(p->cells);
    free(p);
}

char fx_csv_delimiter(const struct fx_csv *p)
{
    return p->delim;
}

static int column_of(size_t idx)
{
    return idx < (size_t)INT_MAX ? (int)idx + 1 : INT_MAX;
}

static void set_bad(struct fx_csv *p, int code, size_t idx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reject the current record (first problem wins; the caller checks p->bad). */
static void set_bad(struct fx_csv *p, int code, size_t idx, const char *fmt, ...)
{
    p->bad = 1;
    fx_err_clear(&p->berr);
    p->berr.code = code;
    p->berr.row = p->rec_row;
    p->berr.column = column_of(idx);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->berr.reason, sizeof(p->berr.reason), fmt, ap);
    va_end(ap);
}

static void rec_reset(struct fx_csv *p)
{
    p->rb_len = 0;
    p->fstart = 0;
    p->nf = 0;
    p->started = 0;
    p->bad = 0;
    p->rec_bytes = 0;
    p->emitted = 0;
}

/* Make room for extra more bytes in rb; cells already stored are rebased. */
static void rb_grow(struct fx_csv *p, size_t extra)
{
    size_t cap = p->rb_cap;
    while (cap - p->rb_len < extra)
        cap *= 2;
    p->rb = fx_realloc(p->rb, cap);
    p->rb_cap = cap;
    for (size_t k = 0; k < p->nf; k++)
        p->cells[k].s = p->rb + p->fo[k];
}

static void line_bad(struct fx_csv *p)
{
    set_bad(p, FX_ETOOBIG, p->nf, "line longer than %zu bytes (max_line_bytes)", p->max_line);
}

/*
 * Append field text s[0..n), not yet counted in rec_bytes; avail >= n bytes
 * are readable at s. Bounded: a field never grows past max_field. When the
 * run crosses a cap, the cap crossed at the earlier byte is reported (field
 * first on the same byte), so the error does not depend on where the input
 * was split. rb always keeps 16 spare bytes, so short runs are copied with
 * one fixed 16-byte move instead of a memcpy call.
 */
static inline void put(struct fx_csv *p, const char *s, size_t n, size_t avail)
{
    if (p->bad || n == 0)
        return;
    size_t froom = p->max_field - (p->rb_len - p->fstart);
    size_t lroom = p->max_line > p->rec_bytes ? p->max_line - p->rec_bytes : 0;
    if (UNLIKELY(n > froom || n > lroom)) {
        if (froom <= lroom)
            set_bad(p, FX_ETOOBIG, p->nf,
                    "field in column %d longer than %zu bytes (max_field_bytes)", column_of(p->nf),
                    p->max_field);
        else
            line_bad(p);
        return;
    }
    if (UNLIKELY(p->rb_cap - p->rb_len < n + 16))
        rb_grow(p, n + 16);
    if (n <= 16 && avail >= 16)
        memcpy(p->rb + p->rb_len, s, 16);
    else
        memcpy(p->rb + p->rb_len, s, n);
    p->rb_len += n;
}

/* A NUL byte in a cell: C strings would silently cut it, so reject the row. */
static void put_nul(struct fx_csv *p)
{
    if (!p->bad)
        set_bad(p, FX_EENCODING, p->nf,
                "NUL byte at byte %zu of column %d (binary or UTF-16 file?)",
                p->rb_len - p->fstart + 1, column_of(p->nf));
}

static void cells_grow(struct fx_csv *p)
{
    p->cells_cap *= 2;
    p->fo = fx_realloc(p->fo, p->cells_cap * sizeof(*p->fo));
    p->cells = fx_realloc(p->cells, p->cells_cap * sizeof(*p->cells));
}

static inline void end_field(struct fx_csv *p)
{
    if (LIKELY(!p->bad)) {
        if (UNLIKELY(p->nf == p->cells_cap))
            cells_grow(p);
        if (UNLIKELY(p->rb_cap - p->rb_len < 16))
            rb_grow(p, 16);
        size_t len = p->rb_len - p->fstart;
        p->rb[p->rb_len++] = '\0';
        struct fx_cell *c = &p->cells[p->nf];
        p->fo[p->nf] = p->fstart;
        c->s = p->rb + p->fstart;
        c->len = len;
        c->type = len ? FX_CELL_STRING : FX_CELL_EMPTY;
        p->fstart = p->rb_len;
    }
    p->nf++;
}

/* A delimiter: the current field ends and another begins. */
static inline void next_field(struct fx_csv *p)
{
    end_field(p);
    if (UNLIKELY(p->nf >= p->max_fields) && !p->bad)
        set_bad(p, FX_ETOOBIG, p->nf, "more than %zu fields (column %d; max_fields)", p->max_fields,
                column_of(p->nf));
}

/* Cells are separated by NULs in rb, so one pass over rb checks them all (a
 * sequence cannot straddle two cells); only on failure find the cell. */
static void check_utf8(struct fx_csv *p)
{
    size_t at = fx__csv_utf8_check(p->rb, p->rb_len);
    if (LIKELY(at == p->rb_len))
        return;
    size_t k = 0;
    while (k + 1 < p->nf && p->fo[k + 1] <= at)
        k++;
    const char *s = p->cells[k].s;
    size_t off = at - p->fo[k];
    set_bad(p, FX_EENCODING, k, "invalid UTF-8 at byte %zu of column %d", off + 1, column_of(k));
    /* show the valid text before the bad byte, cut on a character boundary */
    size_t show = off < sizeof(p->berr.value) - 1 ? off : sizeof(p->berr.value) - 1;
    while (show > 0 && show < off && ((unsigned char)s[show] & 0xC0) == 0x80)
        show--;
    fx_err_value(&p->berr, s, show);
}

static int emit(struct fx_csv *p, struct fx_record *rec)
{
    end_field(p);
    p->emitted = 1;
    if (!p->bad)
        check_utf8(p);
    rec->row = p->rec_row;
    rec->cells = p->cells;
    if (UNLIKELY(p->bad)) {
        rec->bad = 1;
        rec->ncells = 0;
        rec->err = p->berr;
        return 1;
    }
    rec->ncells = p->nf;
    rec->bad = 0;
    /* a full fx_err_clear per row would cost more than parsing it */
    rec->err.code = 0;
    rec->err.row = 0;
    rec->err.column = 0;
    rec->err.source[0] = rec->err.field[0] = rec->err.value[0] = rec->err.reason[0] = '\0';
    return 1;
}

/* First j >= i in u[i..n) where u[j] is a, b, c or NUL (table: the same set). */
static inline size_t scan(const unsigned char *u, size_t i, size_t n, unsigned char a,
                          unsigned char b, unsigned char c, const unsigned char *table)
{
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8((char)a), vb = _mm_set1_epi8((char)b),
                  vc = _mm_set1_epi8((char)c), vz = _mm_setzero_si128();
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(u + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)),
                                 _mm_or_si128(_mm_cmpeq_epi8(x, vc), _mm_cmpeq_epi8(x, vz)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#else
    (void)a;
    (void)b;
    (void)c;
#endif
    while (i < n && !table[u[i]])
        i++;
    return i;
}

/*
 * The record machine over s[0..n): returns 1 when a record completes (rec
 * filled, *used = bytes consumed including its line end), else 0 with *used
 * = n. rec may be NULL only when s cannot complete a record.
 */
static int machine(struct fx_csv *p, const char *s, size_t n, size_t *used, struct fx_record *rec)
{
    const unsigned char *u = (const unsigned char *)s;
    const unsigned char *stop = p->stop, *qstop = p->qstop;
    const unsigned char d = (unsigned char)p->delim;
    size_t i = 0;
    if (p->emitted)
        rec_reset(p);
    while (i < n) {
        unsigned char c = u[i];
        int was_cr = p->prev_cr;
        p->prev_cr = 0;
        switch (p->st) {
        case S_FSTART:
            if (c == '\r' || c == '\n')
                goto eol;
            if (!p->started) {
                p->started = 1;
                p->rec_row = p->line;
            }
            if (c == '"') {
                p->st = S_Q;
                p->quote_line = p->line;
                p->quote_col = column_of(p->nf);
                i++;
                p->rec_bytes++;
                break;
            }
            if (c == d) {
                i++;
                p->rec_bytes++;
                next_field(p);
                break;
            }
            p->st = S_UNQ;
            was_cr = 0; /* c is not the LF of a CRLF */
            /* fall through */
        case S_UNQ:
            /* fast path: stay here across delimiters while fields are plain text */
            for (;;) {
                size_t j = scan(u, i, n, d, '\r', '\n', stop);
                put(p, s + i, j - i, n - i);
                p->rec_bytes += j - i;
                i = j;
                if (i == n)
                    goto step_end;
                c = u[i];
                if (c != d)
                    break;
                i++;
                p->rec_bytes++;
                next_field(p);
                p->st = S_FSTART;
                if (UNLIKELY(p->rec_bytes > p->max_line) && !p->bad)
                    line_bad(p);
                if (i == n)
                    goto step_end;
                c = u[i];
                if (c == '"' || c == d || c == '\r' || c == '\n')
                    goto step_end; /* let FSTART handle it */
                p->st = S_UNQ;
            }
            if (c == 0) {
                put_nul(p);
                i++;
                p->rec_bytes++;
                break;
            }
            /* CR or LF after field text: never the LF of a CRLF */
            was_cr = 0;
            goto eol;
        case S_Q: {
            size_t j = scan(u, i, n, '"', '\r', '\n', qstop);
            if (j > i) {
                put(p, s + i, j - i, n - i);
                p->rec_bytes += j - i;
                i = j;
                was_cr = 0;
                if (i == n)
                    break;
                c = u[i];
            }
            i++;
            p->rec_bytes++;
            if (c == '"') {
                p->st = S_QQ;
            } else if (c == 0) {
                put_nul(p);
            } else {
                /* a line end inside quotes is cell text and a physical line */
                put(p, s + i - 1, 1, 1);
                if (c == '\r') {
                    p->line++;
                    p->prev_cr = 1;
                } else if (!was_cr) {
                    p->line++;
                }
            }
            break;
        }
        case S_QQ:
            if (c == '"') { /* doubled quote */
                put(p, "\"", 1, 1);
                p->st = S_Q;
                i++;
                p->rec_bytes++;
            } else if (c == d) {
                i++;
                p->rec_bytes++;
                next_field(p);
                p->st = S_FSTART;
            } else if (c == '\r' || c == '\n') {
                goto eol;
            } else {
                p->st = S_UNQ; /* lenient: text after the closing quote is appended */
            }
            break;
        }
    step_end:
        if (UNLIKELY(p->rec_bytes > p->max_line) && !p->bad)
            line_bad(p);
        continue;
    eol:
        /* c = u[i] is CR or LF outside quotes */
        i++;
        if (c == '\n' && was_cr)
            continue; /* second half of a CRLF whose CR ended the line */
        p->line++;
        p->prev_cr = c == '\r';
        p->st = S_FSTART;
        if (p->started) {
            *used = i;
            return emit(p, rec);
        }
        /* blank line: skipped, but counted */
    }
    *used = n;
    return 0;
}

/* --- delimiter detection -------------------------------------------------- */

static void detect_decide(struct fx_csv *p)
{
    static const char cand[3] = {';', ',', '\t'};
    size_t best = 0;
    char d = ',';
    for (int k = 0; k < 3; k++) {
        if (p->det_count[k] > best) {
            best = p->det_count[k];
            d = cand[k];
        }
    }
    set_delim(p, d);
    p->replay = p->det;
    p->replay_len = p->det_len;
    p->replay_pos = 0;
    p->det = NULL;
    p->det_len = 0;
    p->stage = ST_MAIN;
}

/* Count delimiters of the first record. Consumes bytes of s; switches to
 * ST_MAIN (with the record queued for replay) once its end is seen. */
static size_t detect_step(struct fx_csv *p, const char *s, size_t n)
{
    size_t i = 0;
    if (p->det_len == 0) {
        /* leading blank lines only count lines: straight to the machine */
        while (i < n && (s[i] == '\r' || s[i] == '\n'))
            i++;
        if (i > 0) {
            size_t k;
            machine(p, s, i, &k, NULL);
        }
        if (i == n)
            return n;
    }
    if (!p->det)
        p->det = fx_malloc(DETECT_MAX);
    size_t room = DETECT_MAX - p->det_len;
    size_t lim = n - i < room ? n : i + room;
    size_t from = i;
    int end = 0;
    for (; i < lim; i++) {
        char c = s[i];
        if (p->det_inq) {
            if (!p->det_qpend) {
                if (c == '"')
                    p->det_qpend = 1;
                continue;
            }
            p->det_qpend = 0;
            if (c == '"')
                continue; /* doubled quote */
            p->det_inq = 0;
        }
        if (c == '"' && p->det_fstart) {
            p->det_inq = 1;
            p->det_fstart = 0;
        } else if (c == ';' || c == ',' || c == '\t') {
            p->det_count[c == ';' ? 0 : c == ',' ? 1 : 2]++;
            p->det_fstart = 1;
        } else if (c == '\r' || c == '\n') {
            i++;
            end = 1;
            break;
        } else {
            p->det_fstart = 0;
        }
    }
    memcpy(p->det + p->det_len, s + from, i - from);
    p->det_len += i - from;
    if (end || p->det_len == DETECT_MAX)
        detect_decide(p);
    return i;
}

/* --- BOM ------------------------------------------------------------------ */

/* Hand bytes to the stage after the BOM; they cannot complete a record. */
static void after_bom_feed(struct fx_csv *p, const char *s, size_t n)
{
    size_t k;
    p->stage = p->after_bom;
    if (n == 0)
        return;
    if (p->stage == ST_DETECT)
        detect_step(p, s, n); /* a BOM prefix has no line end: all taken */
    else
        machine(p, s, n, &k, NULL);
}

static size_t bom_step(struct fx_csv *p, const char *s, size_t n)
{
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    size_t i = 0;
    while (i < n && p->bom_have < 3) {
        if (s[i] != bom[p->bom_have]) {
            after_bom_feed(p, bom, p->bom_have);
            return i;
        }
        p->bom_have++;
        i++;
    }
    if (p->bom_have == 3)
        after_bom_feed(p, NULL, 0);
    return i;
}

/* --- public --------------------------------------------------------------- */

static int run_replay(struct fx_csv *p, struct fx_record *rec)
{
    while (p->replay_pos < p->replay_len) {
        size_t k;
        int rc = machine(p, p->replay + p->replay_pos, p->replay_len - p->replay_pos, &k, rec);
        p->replay_pos += k;
        if (rc)
            return rc;
    }
    if (p->replay) {
        free(p->replay);
        p->replay = NULL;
        p->replay_len = p->replay_pos = 0;
    }
    return 0;
}

static int finished(struct fx_csv *p, struct fx_err *err)
{
    if (p->fatal) {
        if (err)
            *err = p->ferr;
        return p->fatal;
    }
    return 0;
}

int fx_csv_parse(struct fx_csv *p, const char *data, size_t len, size_t *consumed,
                 struct fx_record *rec, struct fx_err *err)
{
    size_t used = 0;
    *consumed = 0;
    if (UNLIKELY(p->stage == ST_DONE))
        return p->fatal ? finished(p, err)
                        : fx_err_set(err, FX_EINVAL, "CSV parser used after fx_csv_finish");
    for (;;) {
        if (UNLIKELY(p->replay)) {
            int rc = run_replay(p, rec);
            if (rc) {
                *consumed = used;
                return rc;
            }
        }
        if (used == len)
            break;
        if (LIKELY(p->stage == ST_MAIN)) {
            size_t k;
            int rc = machine(p, data + used, len - used, &k, rec);
            used += k;
            if (rc) {
                *consumed = used;
                return rc;
            }
        } else if (p->stage == ST_BOM) {
            used += bom_step(p, data + used, len - used);
        } else {
            used += detect_step(p, data + used, len - used);
        }
    }
    *consumed = used;
    return 0;
}

int fx_csv_finish(struct fx_csv *p, struct fx_record *rec, struct fx_err *err)
{
    if (p->stage == ST_DONE)
        return finished(p, err);
    if (p->stage == ST_BOM)
        after_bom_feed(p, "\xEF\xBB", p->bom_have);
    if (p->stage == ST_DETECT)
        detect_decide(p);
    if (p->emitted)
        rec_reset(p);
    int rc = run_replay(p, rec);
    if (rc)
        return rc; /* more may be pending: the caller calls again until 0 */
    p->stage = ST_DONE;
    if (p->st == S_Q) {
        fx_err_clear(&p->ferr);
        p->ferr.code = FX_EPARSE;
        p->ferr.row = p->quote_line;
        p->ferr.column = p->quote_col;
        snprintf(p->ferr.reason, sizeof(p->ferr.reason),
                 "unterminated quoted field: the quote opened at row %ld, column %d is never "
                 "closed, so the rest of the input (to line %ld) cannot be read",
                 p->quote_line, p->quote_col, p->line);
        p->fatal = FX_EPARSE;
        return finished(p, err);
    }
    if (p->started)
        return emit(p, rec);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* File reader                                                               */

struct csv_file {
    int fd;
    char *path;
    struct fx_csv *p;
    long long size, done;
    size_t block;       /* slice handed to transcoder and parser */
    unsigned char *buf; /* raw block read from the file */
    size_t len, pos;
    int eof;
    int cp1252; /* the file is Windows-1252: transcode with map */
    struct {
        unsigned char len, b[3];
    } map[128];      /* UTF-8 of bytes 0x80..0xFF, from iconv */
    char *tbuf;      /* transcoded slice */
    const char *cur; /* slice being parsed: into buf or tbuf */
    size_t cur_len, cur_pos;
};

static int io_error(struct csv_file *f, struct fx_err *err, const char *what, int e)
{
    fx_err_set(err, FX_EIO, "%s: %s", what, strerror(e));
    if (err)
        snprintf(err->source, sizeof(err->source), "%s", f->path);
    return FX_EIO;
}

/* Read into buf from offset len up to want bytes (or end of file). */
static int fill(struct csv_file *f, size_t want, struct fx_err *err)
{
    while (f->len < want && !f->eof) {
        ssize_t n = read(f->fd, f->buf + f->len, want - f->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error(f, err, "cannot read file", errno);
        }
        if (n == 0)
            f->eof = 1;
        f->len += (size_t)n;
        f->done += n;
    }
    return 0;
}

/* Fill f->map from glibc's Windows-1252 converter. */
static int cp1252_map(struct csv_file *f)
{
    iconv_t cd = iconv_open("UTF-8", "WINDOWS-1252");
    if (cd == (iconv_t)-1)
        return -1;
    for (unsigned c = 0x80; c < 0x100; c++) {
        char in = (char)c, out[8];
        char *ip = &in, *op = out;
        size_t il = 1, ol = sizeof(out);
        size_t rc = iconv(cd, &ip, &il, &op, &ol);
        size_t len = (size_t)(op - out);
        if (rc == (size_t)-1 || len == 0 || len > 3) {
            /* undefined in Windows-1252: the C1 control with the same number */
            out[0] = (char)(0xC0 | (c >> 6));
            out[1] = (char)(0x80 | (c & 0x3F));
            len = 2;
        }
        f->map[c - 0x80].len = (unsigned char)len;
        memcpy(f->map[c - 0x80].b, out, len);
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    iconv_close(cd);
    return 0;
}

/* Windows-1252 slice -> UTF-8 in tbuf (at most 3 bytes out per byte in). */
static size_t transcode(struct csv_file *f, const unsigned char *in, size_t n)
{
    unsigned char *o = (unsigned char *)f->tbuf;
    size_t i = 0;
    while (i < n) {
#if defined(__SSE2__)
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(in + i));
            if (_mm_movemask_epi8(x))
                break;
            _mm_storeu_si128((__m128i *)o, x);
            o += 16;
            i += 16;
        }
        if (i >= n)
            break;
#endif
        unsigned char c = in[i++];
        if (c < 0x80) {
            *o++ = c;
            continue;
        }
        memcpy(o, f->map[c - 0x80].b, 3); /* tbuf has slack for the fixed copy */
        o += f->map[c - 0x80].len;
    }
    return (size_t)(o - (unsigned char *)f->tbuf);
}

static int csv_next(void *self, struct fx_record *rec, struct fx_err *err)
{
    struct csv_file *f = self;
    for (;;) {
        if (f->cur_pos < f->cur_len) {
            size_t k;
            int rc = fx_csv_parse(f->p, f->cur + f->cur_pos, f->cur_len - f->cur_pos, &k, rec, err);
            f->cur_pos += k;
            if (rc)
                return rc;
            f->cur = NULL;
            f->cur_len = f->cur_pos = 0;
        }
        if (f->pos < f->len) {
            size_t n = f->len - f->pos < f->block ? f->len - f->pos : f->block;
            const unsigned char *s = f->buf + f->pos;
            f->pos += n;
            if (f->cp1252) {
                f->cur = f->tbuf;
                f->cur_len = transcode(f, s, n);
            } else {
                f->cur = (const char *)s;
                f->cur_len = n;
            }
            f->cur_pos = 0;
            continue;
        }
        if (!f->eof) {
            f->len = f->pos = 0;
            int rc = fill(f, FX__CSV_BLOCK_MAX, err);
            if (rc)
                return rc;
            continue;
        }
        int rc = fx_csv_finish(f->p, rec, err);
        if (rc < 0 && err && !err->source[0])
            snprintf(err->source, sizeof(err->source), "%s", f->path);
        return rc;
    }
}

static void csv_progress(void *self, long long *done, long long *total)
{
    struct csv_file *f = self;
    *done = f->done;
    *total = f->size;
}

static void csv_free(void *self)
{
    struct csv_file *f = self;
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    fx_csv_free(f->p);
    free(f->buf);
    free(f->tbuf);
    free(f->path);
    free(f);
}

static const struct fx_reader_ops csv_reader_ops = {
    .name = "csv",
    .next = csv_next,
    .progress = csv_progress,
    .free = csv_free,
};

/* 1 = UTF-8, 0 = Windows-1252, -1 = unknown name. */
static int encoding_named(const char *name)
{
    static const char *const utf8[] = {"utf-8", "utf8"};
    static const char *const cp1252[] = {"windows-1252", "cp1252", "latin1", "iso-8859-1"};
    for (size_t k = 0; k < sizeof(utf8) / sizeof(utf8[0]); k++)
        if (strcasecmp(name, utf8[k]) == 0)
            return 1;
    for (size_t k = 0; k < sizeof(cp1252) / sizeof(cp1252[0]); k++)
        if (strcasecmp(name, cp1252[k]) == 0)
            return 0;
    return -1;
}

/* BOM => UTF-8. Otherwise look at the first 64 KiB: valid UTF-8 (a sequence
 * cut by the end of the sample being fine unless the file ends) is UTF-8.
 * A sample with invalid bytes is still UTF-8 when it holds more valid
 * multi-byte sequences than invalid bytes: a UTF-8 file with one damaged
 * row must keep its other rows' accents (the damaged row is rejected),
 * while Windows-1252 text almost never forms valid multi-byte sequences
 * ("ã" is E3 followed by an ASCII letter). */
static int sniff_utf8(const struct csv_file *f)
{
    if (f->len >= 3 && memcmp(f->buf, "\xEF\xBB\xBF", 3) == 0)
        return 1;
    size_t off = fx__csv_utf8_check((const char *)f->buf, f->len);
    if (off == f->len)
        return 1;
    size_t valid = 0, invalid = 0;
    for (size_t i = 0; i < f->len;) {
        if (f->buf[i] < 0x80) {
            i++;
            continue;
        }
        int n = utf8_seq(f->buf + i, f->len - i);
        if (n > 0) {
            valid++;
            i += (size_t)n;
        } else if (n < 0 && !f->eof) {
            break; /* cut by the end of the sample */
        } else {
            invalid++;
            i++;
        }
    }
    return invalid == 0 || valid > invalid;
}

int fx_csv_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                       struct fx_err *err)
{
    struct fx_reader_opts defaults;
    int rc = 0;
    *out = NULL;
    if (!opts) {
        fx_reader_opts_init(&defaults);
        opts = &defaults;
    }
    struct csv_file *f = fx_calloc(1, sizeof(*f));
    f->fd = -1;
    f->path = fx_strdup(path);

    int utf8 = -1; /* -1 = detect */
    if (opts->encoding && strcasecmp(opts->encoding, "auto") != 0) {
        utf8 = encoding_named(opts->encoding);
        if (utf8 < 0) {
            rc = fx_err_set(err, FX_EINVAL,
                            "unsupported encoding \"%s\" (use auto, utf-8 or windows-1252)",
                            opts->encoding);
            goto out;
        }
    }
    if (opts->delimiter && !delim_ok(opts->delimiter)) {
        rc = fx_err_set(err, FX_EINVAL,
                        "invalid CSV delimiter 0x%02x (quote, line ends and non-ASCII are not "
                        "allowed)",
                        (unsigned char)opts->delimiter);
        goto out;
    }

    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        rc = io_error(f, err, "cannot open file", errno);
        goto out;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        rc = io_error(f, err, "cannot stat file", errno);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = io_error(f, err, "cannot read file", EISDIR);
        goto out;
    }
    f->size = S_ISREG(st.st_mode) ? (long long)st.st_size : 0;
    f->block = fx__csv_block_size && fx__csv_block_size < FX__CSV_BLOCK_MAX ? fx__csv_block_size
                                                                            : FX__CSV_BLOCK_MAX;
    f->buf = fx_malloc(FX__CSV_BLOCK_MAX);
    if ((rc = fill(f, FX__CSV_BLOCK_MAX, err)))
        goto out;
    if (utf8 < 0)
        utf8 = sniff_utf8(f);
    if (!utf8) {
        f->cp1252 = 1;
        if (cp1252_map(f) != 0) {
            rc = fx_err_set(err, FX_ENOTSUP, "no Windows-1252 converter in iconv: %s",
                            strerror(errno));
            if (err)
                snprintf(err->source, sizeof(err->source), "%s", path);
            goto out;
        }
        f->tbuf = fx_malloc(3 * FX__CSV_BLOCK_MAX + 16);
    }
    fx_log_debug("csv", "%s: %s, %lld bytes", path, utf8 ? "UTF-8" : "Windows-1252", f->size);
    f->p = fx_csv_new(opts);
    *out = fx_reader_wrap(&csv_reader_ops, f, path);
    return 0;
out:
    csv_free(f);
    return rc;
}

const char *fx__text_shown(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        size_t end = i + fx__csv_utf8_check(src + i, n - i);
        while (i < end) { /* whole sequences only, so dst is never cut inside one */
            unsigned char c = (unsigned char)src[i];
            size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (o + l + 1 > cap)
                goto done;
            if (l == 1)
                dst[o] = c < 0x20 || c == 0x7f ? '?' : (char)c;
            else
                memcpy(dst + o, src + i, l);
            o += l;
            i += l;
        }
        if (i < n) {
            if (o + 2 > cap)
                goto done;
            dst[o++] = '?';
            i++;
        }
    }
done:
    dst[o] = '\0';
    return dst;
}
