/* SPDX-License-Identifier: MIT */
/*
 * Streaming XLSX reader: one record per sheet row, pulled through the
 * record-reader interface without ever holding the sheet in memory.
 *
 * Why no library: Debian packages no C library that reads XLSX. libxlsxwriter
 * only writes, libfreexl reads only legacy .xls (BIFF), and libxls (also
 * BIFF-only) is not packaged; the C++ and scripting readers (OpenXLSX,
 * openpyxl) either load whole sheets or are not C. An XLSX file is a ZIP of
 * XML parts, so libzip + expat (both packaged, both hardened) are all it
 * takes.
 *
 * Design. Opening reads, each as a SAX stream: xl/workbook.xml (sheet names,
 * relationship ids, date1904), xl/_rels/workbook.xml.rels (the chosen sheet's
 * part), xl/styles.xml (which cell styles are dates) and xl/sharedStrings.xml
 * (the only data kept for the life of the reader). Shared strings are
 * interned as NUL-terminated texts in one buffer addressed by 32-bit offsets,
 * so a string costs its text plus 4 bytes. Past limits.sst_mem bytes of text
 * the table goes to an unlinked temporary file, written behind as parsing
 * goes; each sheet parser then reads it back (pread) through its own cache of
 * 16 KiB pages, half of sst_mem each, and copies the strings into its row
 * text, so nothing points into a page that may be evicted. Strings are
 * numbered in order of first use by the writers we know, so rows mostly hit
 * the newest pages and a few popular ones: a sheet with millions of distinct
 * strings reads in tens of megabytes. (A mapping of the file would not do:
 * the kernel maps whole page-cache folios, so its resident size is not ours
 * to bound.)
 *
 * Rows, serially. The sheet entry is inflated with zip_fread in blocks
 * straight into expat's buffer (XML_GetBuffer/XML_ParseBuffer). When </row>
 * completes a non-empty row the handler suspends the parser (XML_StopParser
 * resumable), fx_reader_next returns the row, and the next call resumes it
 * (XML_ResumeParser) where it stopped, feeding another block when the current
 * one is used up. A row's cell text lives in one row buffer (shared strings
 * point into the table while it is in memory), so memory is the shared
 * strings plus one row plus one block.
 *
 * Rows, in chunks. Expat is most of the cost of a sheet and runs on one core,
 * so a sheet larger than four blocks is parsed in pieces once <sheetData>
 * starts: each inflated block is cut after its last row end tag ("</row>")
 * and the piece before the cut, a chunk, is parsed on its own by a second
 * parser as "<sheetData>" chunk "</sheetData>" into a batch of rows. A worker
 * thread and the reading thread (while it waits) both inflate and parse;
 * batches are returned strictly in order and at most CHUNKS_MAX chunks are
 * alive, so memory stays a few blocks. A byte search cannot tell markup from
 * a comment or a CDATA section, so a chunk is trusted only when it parses
 * without any error: then its last "</row>" was an end tag (nothing after it
 * could close a comment) and, by induction, every chunk starts between two
 * rows. Anything unusual (malformed XML, a fatal error, a row without an r
 * attribute, rows out of order across chunks) discards that chunk's batch
 * and the reader goes back to the serial parser from the start of the chunk,
 * fed first with the open elements ("<worksheet><sheetData>") and counting
 * lines from there, so records, errors and their line numbers are exactly
 * those of a serial parse. What follows the last "</row>" (the end of the
 * part) goes through the serial parser the same way.
 *
 * Threads. Shared state read by both threads (styles, shared strings, caps)
 * is fixed before the worker starts; the chunk list, the producer role (who
 * inflates next: the ZIP entry, the pending bytes, the byte counters) and the
 * chunk states are guarded by one mutex; a chunk being parsed belongs to the
 * thread that marked it busy, and a parsed chunk at the head of the list to
 * the reading thread. The worker is joined before the reader leaves chunk
 * mode or is freed.
 *
 * Safety: every part is size-checked (total uncompressed bytes, compression
 * ratio per entry, counted while inflating since headers can lie), DOCTYPEs
 * are refused (no entity expansion), a token may not outgrow max_line_bytes,
 * and every cap is a clear error naming the file and the part.
 */
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/xlsx.h"
#include "format/xlsx_int.h"

#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zip.h>

size_t fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;

struct fx__xlsx_limits fx__xlsx_limits = {
    .max_total = 1ull << 30,
    .max_ratio = 200,
    .ratio_min = 1ull << 20,
    .max_sst_count = 16u << 20,
    .max_sst_bytes = 1u << 30,
    .sst_mem = 16u << 20,
};

#define MAX_COL 16384     /* XFD */
#define MAX_XF (1u << 20) /* cell formats (Excel allows 64000) */
#define MAX_SHEETS 65536
#define CHUNKS_MAX 8        /* chunks alive: queued, being parsed, parsed, being returned */
#define PREFIX_MAX 1024     /* bytes of open elements replayed before a chunk */
#define DEPTH_MAX 16        /* open elements around <sheetData> */
#define SST_PAGE_SHIFT 14   /* spilled shared strings are read back in 16 KiB pages */
#define SST_WBUF (1u << 20) /* write-behind buffer once the shared strings are spilled */
#define AGAIN 2             /* internal: switched between serial and chunk mode */

/* ------------------------------------------------------------------------ */
/* Numbers and dates                                                         */

size_t fx__xlsx_format_double(double v, char out[FX__XLSX_NUM_MAX])
{
    if (!isfinite(v))
        return 0;
    if (v == 0) {
        memcpy(out, "0", 2);
        return 1;
    }
    char tmp[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    const char *s = tmp;
    size_t o = 0;
    if (*s == '-') {
        out[o++] = '-';
        s++;
    }
    char dig[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && nd < (int)sizeof(dig))
            dig[nd++] = *s;
    int e = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    int pos = e + 1; /* digits before the decimal point */
    if (pos <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -pos; i++)
            out[o++] = '0';
        for (int i = 0; i < nd; i++)
            out[o++] = dig[i];
    } else if (pos >= nd) {
        for (int i = 0; i < nd; i++)
            out[o++] = dig[i];
        for (int i = nd; i < pos; i++)
            out[o++] = '0';
    } else {
        for (int i = 0; i < pos; i++)
            out[o++] = dig[i];
        out[o++] = '.';
        for (int i = pos; i < nd; i++)
            out[o++] = dig[i];
    }
    out[o] = '\0';
    return o;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

int fx__xlsx_serial_iso(double serial, int date1904, int want_time, char out[24])
{
    /* 2958465 = 9999-12-31 in the 1900 system (1462 fewer days in 1904) */
    if (!isfinite(serial) || serial < 0 || serial >= (date1904 ? 2957004.0 : 2958466.0))
        return 0;
    double fl = floor(serial);
    long day = (long)fl;
    long secs = lround((serial - fl) * 86400.0);
    if (secs >= 86400) {
        day++;
        secs -= 86400;
    }
    long base;
    if (date1904) {
        base = days_from_civil(1904, 1, 1);
    } else {
        if (day == 60)
            return -1;
        if (day < 60)
            day++; /* Excel counts a 1900-02-29 that never was */
        base = days_from_civil(1899, 12, 30);
    }
    long y;
    unsigned m, d;
    civil_from_days(base + day, &y, &m, &d);
    if (y > 9999)
        return 0;
    if (secs || want_time)
        return snprintf(out, 24, "%04ld-%02u-%02uT%02ld:%02ld:%02ld", y, m, d, secs / 3600,
                        secs / 60 % 60, secs % 60);
    return snprintf(out, 24, "%04ld-%02u-%02u", y, m, d);
}

int fx__xlsx_format_kind(const char *code)
{
    int date = 0, time = 0, month = 0;
    for (const char *p = code; *p; p++) {
        switch (*p) {
        case '"': /* quoted literal */
            while (p[1] && p[1] != '"')
                p++;
            if (p[1])
                p++;
            break;
        case '\\': /* escaped character */
        case '_':  /* space as wide as the next character */
        case '*':  /* fill with the next character */
            if (p[1])
                p++;
            break;
        case '[': { /* [Red], [$R$-416], [>100]; but [h] [mm] [ss] are elapsed time */
            const char *q = p + 1;
            char c = (char)(*q | 0x20);
            if (c == 'h' || c == 'm' || c == 's') {
                while (((*q | 0x20) == c))
                    q++;
                if (*q == ']')
                    time = 1;
            }
            while (p[1] && p[1] != ']')
                p++;
            if (p[1])
                p++;
            break;
        }
        case ';': /* later sections format negatives, zero, text: the first decides */
            goto done;
        default: {
            char c = (char)(*p | 0x20);
            if (c == 'y' || c == 'd')
                date = 1;
            else if (c == 'h' || c == 's')
                time = 1;
            else if (c == 'm')
                month = 1;
            else if (c == 'a' && (strncasecmp(p, "AM/PM", 5) == 0 || strncasecmp(p, "A/P", 3) == 0))
                p += (p[1] == '/' ? 2 : 4);
            else if (c == 'g' && strncasecmp(p, "General", 7) == 0)
                p += 6;
            break;
        }
        }
    }
done:
    if (time)
        return 2;
    return date || month ? 1 : 0;
}

static int builtin_kind(unsigned id)
{
    if (id >= 14 && id <= 17)
        return 1;
    if ((id >= 18 && id <= 22) || (id >= 45 && id <= 47))
        return 2;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reader state                                                              */

enum ctype { T_NUM, T_SST, T_STR, T_INLINE, T_BOOL, T_ERR, T_DATE };

struct sheet_ref {
    char *name;
    char *rid;
};

/* Cell text and cells: one row (serial), or every row of a chunk. */
struct rowbuf {
    char *rb;
    size_t rb_len, rb_cap;
    struct fx_cell *cells;
    size_t *coff;  /* text offset of each cell in rb, SIZE_MAX when s is set */
    size_t ncells; /* cells of the rows kept so far (chunk) */
    size_t cells_cap;
};

/* One row of a parsed chunk. */
struct crow {
    long row;
    size_t cell0, ncells;
    size_t err; /* 1-based index into the chunk's errs, 0 = a good row */
};

enum cstate { C_TODO, C_BUSY, C_DONE };

/* Whole rows of the sheet's text, their line offset, and once parsed their
 * records. Recycled with its buffers. */
struct chunk {
    struct chunk *next;
    char *in;
    size_t in_len, in_cap;
    unsigned long line0; /* line breaks before the chunk in the part */
    long long end;       /* part bytes up to the chunk's end (progress) */
    enum cstate state;
    int redo; /* not trusted: parse serially from here */
    long first_row, last_row;
    struct rowbuf out;
    struct crow *rows;
    size_t nrows, rows_cap, next_row;
    struct fx_err *errs;
    size_t nerrs, errs_cap;
};

/* Bytes the serial parser reads before the rest of the part. */
struct piece {
    struct piece *next;
    char *data;
    size_t len, off;
};

struct xlsx;

/* One parser over the sheet and the state of its handlers. */
struct sheetp {
    struct xlsx *x; /* read-only while rows are parsed */
    XML_Parser xp;
    struct chunk *chunk;       /* chunk mode: rows go to this batch */
    unsigned long line_base;   /* line breaks before what this parser was fed */
    long long fed, last_event; /* serial: bytes fed, and at the last event */
    int fatal;
    struct fx_err ferr;
    int anomaly;   /* chunk mode: cannot be parsed alone */
    int to_chunks; /* stopped at <sheetData> to continue in chunks */
    /* before <sheetData>: the open elements, replayed in front of chunks */
    int tracking, want_chunks, depth;
    char stack[PREFIX_MAX];
    size_t stack_len, marks[DEPTH_MAX];
    int in_sheetdata, in_row, in_c, in_v, in_is, in_t, rph;
    int row_ready;
    long row, last_row, first_row;
    struct rowbuf r;
    size_t cell0, text0; /* the current row's first cell and text byte in r */
    size_t nc, last_value, row_bytes;
    int bad;
    struct fx_err berr;
    size_t col;
    enum ctype ct;
    unsigned style;
    size_t cstart;
    /* spilled shared strings: this parser's page cache (direct-mapped) */
    char *pages;
    size_t *page_no; /* page held by each slot, SIZE_MAX = none */
    size_t nslots;
};

struct xlsx {
    char *path;
    zip_t *za;
    size_t max_line, max_field, max_fields;
    struct fx__xlsx_limits lim;
    unsigned long long total; /* uncompressed bytes read from all parts */
    size_t block;
    int date1904;

    /* workbook */
    struct sheet_ref *sheets;
    size_t nsheets;
    size_t chosen; /* index into sheets */
    char *target;  /* chosen sheet's relationship target */
    int chart;     /* the chosen relationship is not a worksheet */

    /* styles: numFmtId per cellXfs entry, then its date kind */
    unsigned *xf_fmt;
    unsigned char *xf_kind;
    size_t nxf, xf_cap;
    unsigned *fmt_id;
    unsigned char *fmt_kind;
    size_t nfmt, fmt_cap;
    int in_cellxfs;

    /* shared strings: string i is the NUL-terminated text at offset
     * sst_off[i] of the table (sst_len bytes so far). In memory the buffer sst
     * holds it all; once spilled, it holds the text from sst_base on (not yet
     * written to sst_fd), and nothing once the part is parsed. */
    char *sst;
    size_t sst_len, sst_cap, sst_base;
    uint32_t *sst_off;
    size_t nsst, sst_off_cap;
    int sst_fd, sst_nospill;
    char *sst_dir;
    int sst_spilled;
    int in_si, in_t, rph;
    size_t si_start;

    /* generic part parsing */
    XML_Parser xp;
    const char *part;
    long long fed, last_event;
    int fatal;
    struct fx_err ferr;

    /* the sheet part's bytes */
    char *sheet_part;
    zip_file_t *zf;
    unsigned long long sheet_size, sheet_comp, sheet_got;
    int sheet_eof, src_fatal;
    struct fx_err src_err;
    unsigned char head[4]; /* first bytes of the part: UTF-16 is never cut */
    size_t nhead;
    int utf8;
    long long progress;

    /* serial mode */
    struct sheetp *sp;
    struct piece *replay;

    /* chunk mode (see the design note) */
    int chunked;
    char *prefix, *sd_open, *sd_close;
    size_t prefix_len, sd_open_len, sd_close_len;
    char *pend; /* bytes after the last cut */
    size_t pend_len, pend_cap, pend_scanned, pend_max;
    unsigned long lines; /* line breaks before pend */
    long cons_last_row;
    struct chunk *cur;     /* rows being returned */
    struct sheetp *ctx[2]; /* parsers of the reading thread and of the worker */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int have_thread;
    /* guarded by mu */
    struct chunk *head_c, *tail_c, *spare;
    int nchunks, nspare, producing, prod_done, quit;
};

static int fail(struct xlsx *x, struct fx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill err with code and reason, naming the file. */
static int fail(struct xlsx *x, struct fx_err *err, int code, const char *fmt, ...)
{
    if (err) {
        fx_err_clear(err);
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
        va_end(ap);
        snprintf(err->source, sizeof(err->source), "%s", x->path);
    }
    return code;
}

static void hfatal(struct xlsx *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fatal error raised inside an expat handler: stop the parser for good. */
static void hfatal(struct xlsx *x, int code, const char *fmt, ...)
{
    if (x->fatal)
        return;
    x->fatal = code;
    fx_err_clear(&x->ferr);
    x->ferr.code = code;
    snprintf(x->ferr.source, sizeof(x->ferr.source), "%s", x->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->ferr.reason, sizeof(x->ferr.reason), fmt, ap);
    va_end(ap);
    XML_StopParser(x->xp, XML_FALSE);
}

/* Local part of a possibly prefixed name ("x:row" -> "row"). Names are a
 * few bytes, so one forward pass beats strrchr's call. */
static const char *local(const char *name)
{
    const char *l = name;
    for (const char *s = name; *s; s++)
        if (*s == ':')
            l = s + 1;
    return l;
}

static int is_row(const char *ln)
{
    return ln[0] == 'r' && ln[1] == 'o' && ln[2] == 'w' && !ln[3];
}

static const char *attr(const char **atts, const char *name)
{
    for (; *atts; atts += 2)
        if (strcmp(local(atts[0]), name) == 0)
            return atts[1];
    return NULL;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

static void col_name(size_t col, char out[8])
{
    char tmp[8];
    int n = 0;
    while (col > 0 && n < 7) {
        col--;
        tmp[n++] = (char)('A' + col % 26);
        col /= 26;
    }
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

/* Line breaks in s[0..n) as expat counts them: LF, CR, and CR LF once. */
static unsigned long count_breaks(const char *s, size_t n)
{
    unsigned long k = 0;
    const char *e = s + n;
    for (const char *p = s; p < e && (p = memchr(p, '\n', (size_t)(e - p))); p++)
        k++;
    for (const char *p = s; p < e && (p = memchr(p, '\r', (size_t)(e - p))); p++)
        if (p + 1 == e || p[1] != '\n')
            k++;
    return k;
}

/* ------------------------------------------------------------------------ */
/* ZIP entries                                                               */

/* Open a ZIP entry by name after the limit checks. 1 = missing, 0 = open. */
static int open_entry(struct xlsx *x, const char *name, zip_file_t **zf, unsigned long long *size,
                      unsigned long long *comp, struct fx_err *err)
{
    zip_int64_t idx = zip_name_locate(x->za, name, ZIP_FL_NOCASE);
    if (idx < 0)
        return 1;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(x->za, (zip_uint64_t)idx, 0, &st) != 0)
        return fail(x, err, FX_EPARSE, "%s: corrupt ZIP entry: %s", name, zip_strerror(x->za));
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
        return fail(x, err, FX_ENOTSUP, "encrypted workbook: ZIP entry %s is encrypted", name);
    *size = (st.valid & ZIP_STAT_SIZE) ? st.size : 0;
    *comp = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : 0;
    if (x->total > x->lim.max_total || *size > x->lim.max_total - x->total)
        return fail(x, err, FX_ETOOBIG, "%s: workbook parts exceed %llu bytes uncompressed (limit)",
                    name, x->lim.max_total);
    if (*size > x->lim.ratio_min && *size / (*comp ? *comp : 1) > x->lim.max_ratio)
        return fail(x, err, FX_ETOOBIG,
                    "%s: compression ratio over %u:1 (%llu bytes from %llu): refused as a zip "
                    "bomb",
                    name, x->lim.max_ratio, *size, *comp);
    *zf = zip_fopen_index(x->za, (zip_uint64_t)idx, 0);
    if (!*zf)
        return fail(x, err, FX_EPARSE, "%s: cannot open ZIP entry: %s", name, zip_strerror(x->za));
    return 0;
}

/* Inflate up to cap bytes of the entry into buf, enforcing the limits while
 * reading (declared sizes can lie). Returns bytes read, or < 0 (err set). */
static long long read_entry(struct xlsx *x, zip_file_t *zf, const char *name, char *buf, size_t cap,
                            unsigned long long comp, unsigned long long *got, struct fx_err *err)
{
    zip_int64_t n = zip_fread(zf, buf, cap);
    if (n < 0)
        return fail(x, err, FX_EPARSE, "%s: corrupt or truncated ZIP entry: %s", name,
                    zip_file_strerror(zf));
    *got += (unsigned long long)n;
    x->total += (unsigned long long)n;
    if (x->total > x->lim.max_total)
        return fail(x, err, FX_ETOOBIG, "%s: workbook parts exceed %llu bytes uncompressed (limit)",
                    name, x->lim.max_total);
    if (*got > x->lim.ratio_min && *got / (comp ? comp : 1) > x->lim.max_ratio)
        return fail(x, err, FX_ETOOBIG,
                    "%s: compression ratio over %u:1 (%llu bytes from %llu): refused as a zip "
                    "bomb",
                    name, x->lim.max_ratio, *got, comp);
    return n;
}

static void XMLCALL no_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    struct xlsx *x = ud;
    hfatal(x, FX_EPARSE, "%s: DOCTYPE declarations are not allowed in a workbook", x->part);
}

static XML_Parser create_parser(const char *encoding)
{
    XML_Parser p = XML_ParserCreate(encoding);
    if (!p) {
        fprintf(stderr, "fluxo: out of memory (expat)\n");
        abort();
    }
    return p;
}

static XML_Parser new_parser(struct xlsx *x, XML_StartElementHandler start,
                             XML_EndElementHandler end, XML_CharacterDataHandler chars)
{
    XML_Parser p = create_parser(NULL);
    XML_SetUserData(p, x);
    XML_SetElementHandler(p, start, end);
    XML_SetCharacterDataHandler(p, chars);
    XML_SetStartDoctypeDeclHandler(p, no_doctype);
    return p;
}

static int xml_error(struct xlsx *x, struct fx_err *err)
{
    if (x->fatal) {
        if (err)
            *err = x->ferr;
        return x->fatal;
    }
    return fail(x, err, FX_EPARSE, "%s: malformed XML at line %lu: %s", x->part,
                (unsigned long)XML_GetCurrentLineNumber(x->xp),
                XML_ErrorString(XML_GetErrorCode(x->xp)));
}

/* A single XML token (attribute, name) may not grow expat's buffer past the
 * row cap: character data is reported piecewise, so only tokens accumulate. */
static int token_check(struct xlsx *x, XML_Parser xp, long long fed, long long last_event,
                       unsigned long line_base, struct fx_err *err)
{
    if (fed - last_event > (long long)x->max_line + (1 << 20))
        return fail(x, err, FX_ETOOBIG,
                    "%s: an XML token longer than %zu bytes (max_line_bytes) at line %lu", x->part,
                    x->max_line, (unsigned long)XML_GetCurrentLineNumber(xp) + line_base);
    return 0;
}

/* Parse a whole part with the given handlers. 1 = missing, 0 = ok, < 0 error. */
static int parse_part(struct xlsx *x, const char *name, XML_StartElementHandler start,
                      XML_EndElementHandler end, XML_CharacterDataHandler chars, struct fx_err *err)
{
    zip_file_t *zf = NULL;
    unsigned long long size, comp, got = 0;
    int rc = open_entry(x, name, &zf, &size, &comp, err);
    if (rc)
        return rc;
    x->xp = new_parser(x, start, end, chars);
    x->part = name;
    x->fed = x->last_event = 0;
    for (;;) {
        void *buf = XML_GetBuffer(x->xp, (int)x->block);
        if (!buf) {
            rc = xml_error(x, err);
            break;
        }
        long long n = read_entry(x, zf, name, buf, x->block, comp, &got, err);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        x->fed += n;
        if (XML_ParseBuffer(x->xp, (int)n, n == 0) != XML_STATUS_OK) {
            rc = xml_error(x, err);
            break;
        }
        if (n == 0)
            break;
        if ((rc = token_check(x, x->xp, x->fed, x->last_event, 0, err)))
            break;
    }
    XML_ParserFree(x->xp);
    x->xp = NULL;
    zip_fclose(zf);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Workbook, relationships, styles                                           */

static void XMLCALL wb_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct xlsx *x = ud;
    const char *ln = local(name);
    x->last_event = x->fed;
    if (strcmp(ln, "workbookPr") == 0) {
        const char *v = attr(atts, "date1904");
        x->date1904 = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
    } else if (strcmp(ln, "sheet") == 0) {
        const char *n = attr(atts, "name");
        const char *rid = NULL;
        for (const char **a = atts; *a; a += 2)
            if (strchr(a[0], ':') && strcmp(local(a[0]), "id") == 0)
                rid = a[1];
        if (!n || !rid) {
            hfatal(x, FX_EPARSE, "%s: <sheet> without name or r:id", x->part);
            return;
        }
        if (x->nsheets >= MAX_SHEETS) {
            hfatal(x, FX_ETOOBIG, "%s: more than %d sheets", x->part, MAX_SHEETS);
            return;
        }
        x->sheets = fx_realloc(x->sheets, (x->nsheets + 1) * sizeof(*x->sheets));
        x->sheets[x->nsheets].name = fx_strdup(n);
        x->sheets[x->nsheets].rid = fx_strdup(rid);
        x->nsheets++;
    }
}

static void XMLCALL nop_end(void *ud, const XML_Char *name)
{
    (void)name;
    struct xlsx *x = ud;
    x->last_event = x->fed;
}

static void XMLCALL nop_chars(void *ud, const XML_Char *s, int len)
{
    (void)s;
    (void)len;
    struct xlsx *x = ud;
    x->last_event = x->fed;
}

static void XMLCALL rels_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct xlsx *x = ud;
    x->last_event = x->fed;
    if (strcmp(local(name), "Relationship") != 0 || x->target)
        return;
    const char *id = attr(atts, "Id"), *target = attr(atts, "Target");
    const char *type = attr(atts, "Type"), *mode = attr(atts, "TargetMode");
    if (!id || !target || strcmp(id, x->sheets[x->chosen].rid) != 0)
        return;
    if (mode && strcmp(mode, "External") == 0)
        return;
    const char *slash = type ? strrchr(type, '/') : NULL;
    x->chart = slash && strcmp(slash + 1, "worksheet") != 0;
    x->target = fx_strdup(target);
}

/* Resolve a relationship target against xl/ into a ZIP entry name. */
static char *resolve_target(const char *target)
{
    char *full = target[0] == '/' ? fx_strdup(target + 1) : fx_asprintf("xl/%s", target);
    /* drop "./" and fold "dir/../" */
    char *out = fx_malloc(strlen(full) + 1);
    size_t o = 0;
    for (const char *p = full; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] == '/')
                o--;
            while (o > 0 && out[o - 1] != '/')
                o--;
        } else {
            memcpy(out + o, p, n);
            o += n;
            if (e)
                out[o++] = '/';
        }
        p += n + (e ? 1 : 0);
    }
    out[o] = '\0';
    free(full);
    return out;
}

static void XMLCALL styles_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct xlsx *x = ud;
    const char *ln = local(name);
    x->last_event = x->fed;
    unsigned long long id;
    if (strcmp(ln, "numFmt") == 0) {
        const char *code = attr(atts, "formatCode");
        if (parse_uint(attr(atts, "numFmtId"), UINT32_MAX, &id) != 0 || !code)
            return;
        if (x->nfmt >= MAX_XF) {
            hfatal(x, FX_ETOOBIG, "%s: more than %u number formats", x->part, MAX_XF);
            return;
        }
        if (x->nfmt == x->fmt_cap) {
            x->fmt_cap = x->fmt_cap ? 2 * x->fmt_cap : 16;
            x->fmt_id = fx_realloc(x->fmt_id, x->fmt_cap * sizeof(*x->fmt_id));
            x->fmt_kind = fx_realloc(x->fmt_kind, x->fmt_cap);
        }
        x->fmt_id[x->nfmt] = (unsigned)id;
        x->fmt_kind[x->nfmt] = (unsigned char)fx__xlsx_format_kind(code);
        x->nfmt++;
    } else if (strcmp(ln, "cellXfs") == 0) {
        x->in_cellxfs = 1;
    } else if (x->in_cellxfs && strcmp(ln, "xf") == 0) {
        if (parse_uint(attr(atts, "numFmtId"), UINT32_MAX, &id) != 0)
            id = 0;
        if (x->nxf >= MAX_XF) {
            hfatal(x, FX_ETOOBIG, "%s: more than %u cell formats", x->part, MAX_XF);
            return;
        }
        if (x->nxf == x->xf_cap) {
            x->xf_cap = x->xf_cap ? 2 * x->xf_cap : 16;
            x->xf_fmt = fx_realloc(x->xf_fmt, x->xf_cap * sizeof(*x->xf_fmt));
        }
        x->xf_fmt[x->nxf++] = (unsigned)id;
    }
}

static void XMLCALL styles_end(void *ud, const XML_Char *name)
{
    struct xlsx *x = ud;
    x->last_event = x->fed;
    if (strcmp(local(name), "cellXfs") == 0)
        x->in_cellxfs = 0;
}

static void resolve_styles(struct xlsx *x)
{
    x->xf_kind = fx_calloc(x->nxf ? x->nxf : 1, 1);
    for (size_t i = 0; i < x->nxf; i++) {
        int k = builtin_kind(x->xf_fmt[i]);
        for (size_t j = 0; j < x->nfmt; j++)
            if (x->fmt_id[j] == x->xf_fmt[i]) /* custom formats override */
                k = x->fmt_kind[j];
        x->xf_kind[i] = (unsigned char)k;
    }
}

/* ------------------------------------------------------------------------ */
/* Shared strings                                                            */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode OOXML's _xHHHH_ escapes in place (the text only shrinks); returns
 * the new length. Escapes that would make invalid UTF-8 are kept as text. */
static size_t unescape_x(char *s, size_t n)
{
    const char *u = n >= 7 ? memchr(s, '_', n - 6) : NULL;
    while (u && u[1] != 'x')
        u = memchr(u + 1, '_', (size_t)(s + n - 6 - (u + 1)));
    if (!u)
        return n;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '_' && i + 7 <= n && s[i + 1] == 'x' && s[i + 6] == '_') {
            int h[4] = {hexval(s[i + 2]), hexval(s[i + 3]), hexval(s[i + 4]), hexval(s[i + 5])};
            if (h[0] >= 0 && h[1] >= 0 && h[2] >= 0 && h[3] >= 0) {
                unsigned cp = (unsigned)(h[0] << 12 | h[1] << 8 | h[2] << 4 | h[3]);
                if (cp != 0 && (cp < 0xD800 || cp > 0xDFFF)) {
                    if (cp < 0x80) {
                        s[o++] = (char)cp;
                    } else if (cp < 0x800) {
                        s[o++] = (char)(0xC0 | cp >> 6);
                        s[o++] = (char)(0x80 | (cp & 0x3F));
                    } else {
                        s[o++] = (char)(0xE0 | cp >> 12);
                        s[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                        s[o++] = (char)(0x80 | (cp & 0x3F));
                    }
                    i += 7;
                    continue;
                }
            }
        }
        s[o++] = s[i++];
    }
    return o;
}

/* Room for extra more bytes of text in the shared-string buffer. */
static void sst_reserve(struct xlsx *x, size_t extra)
{
    size_t used = x->sst_len - x->sst_base;
    if (used + extra <= x->sst_cap)
        return;
    size_t cap = x->sst_cap ? x->sst_cap : 1 << 16;
    while (cap < used + extra)
        cap *= 2;
    x->sst = fx_realloc(x->sst, cap); /* large blocks move with mremap, untouched pages stay free */
    x->sst_cap = cap;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Spill the shared strings to an unlinked temporary file the first time,
 * then write the buffered text behind. Returns 0, or < 0 with x->fatal set
 * (when called from a handler) or err filled. */
static int sst_flush(struct xlsx *x, struct fx_err *err)
{
    if (x->sst_fd < 0) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir)
            dir = "/tmp";
        char *path = fx_asprintf("%s/fluxo-sst-XXXXXX", dir);
        int fd = mkstemp(path);
        if (fd < 0) {
            /* No place to spill (read-only or missing TMPDIR): stay in memory,
             * still bounded by max_sst_bytes. */
            fx_log_warn("xlsx",
                        "%s: cannot create a temporary file in %s (%s): %zu bytes of shared "
                        "strings stay in memory",
                        x->path, dir, strerror(errno), x->sst_len);
            x->sst_nospill = 1;
            free(path);
            return 0;
        }
        unlink(path);
        free(path);
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        x->sst_fd = fd;
        x->sst_dir = fx_strdup(dir);
    }
    size_t n = x->sst_len - x->sst_base;
    if (write_all(x->sst_fd, x->sst, n) != 0) {
        int e = errno;
        if (err)
            return fail(x, err, FX_EIO,
                        "%s: cannot write shared strings to a temporary file in %s: %s", x->part,
                        x->sst_dir, strerror(e));
        hfatal(x, FX_EIO, "%s: cannot write shared strings to a temporary file in %s: %s", x->part,
               x->sst_dir, strerror(e));
        return FX_EIO;
    }
    if (x->sst_base == 0 && x->sst_cap > SST_WBUF) {
        /* the in-memory table becomes a small write-behind buffer */
        free(x->sst);
        x->sst = NULL;
        x->sst_cap = 0;
    }
    x->sst_base = x->sst_len;
    return 0;
}

/* After sharedStrings.xml: map a spilled table. */
static int sst_finish(struct xlsx *x, struct fx_err *err)
{
    if (x->sst_fd < 0)
        return 0;
    int rc = sst_flush(x, err);
    if (rc)
        return rc;
    free(x->sst);
    x->sst = NULL;
    x->sst_cap = 0;
    x->sst_spilled = 1;
    return 0;
}

static void XMLCALL sst_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    (void)atts;
    struct xlsx *x = ud;
    const char *ln = local(name);
    x->last_event = x->fed;
    if (strcmp(ln, "si") == 0) {
        x->in_si = 1;
        x->rph = 0;
        x->si_start = x->sst_len;
    } else if (x->in_si && strcmp(ln, "rPh") == 0) {
        x->rph++;
    } else if (x->in_si && ln[0] == 't' && !ln[1]) {
        x->in_t = x->rph == 0;
    }
}

static void XMLCALL sst_end(void *ud, const XML_Char *name)
{
    struct xlsx *x = ud;
    const char *ln = local(name);
    x->last_event = x->fed;
    if (ln[0] == 't' && !ln[1]) {
        x->in_t = 0;
    } else if (strcmp(ln, "rPh") == 0) {
        if (x->rph > 0)
            x->rph--;
    } else if (strcmp(ln, "si") == 0 && x->in_si) {
        x->in_si = 0;
        if (x->nsst >= x->lim.max_sst_count) {
            hfatal(x, FX_ETOOBIG, "%s: more than %zu shared strings (limit)", x->part,
                   x->lim.max_sst_count);
            return;
        }
        /* flushes happen between strings only, so this one is all in the buffer */
        size_t n = unescape_x(x->sst + (x->si_start - x->sst_base), x->sst_len - x->si_start);
        x->sst_len = x->si_start + n;
        sst_reserve(x, 1);
        x->sst[x->sst_len - x->sst_base] = '\0';
        x->sst_len++;
        if (x->nsst == x->sst_off_cap) {
            x->sst_off_cap = x->sst_off_cap ? 2 * x->sst_off_cap : 1024;
            x->sst_off = fx_realloc(x->sst_off, x->sst_off_cap * sizeof(*x->sst_off));
        }
        x->sst_off[x->nsst++] = (uint32_t)x->si_start;
        if (x->sst_fd >= 0 ? x->sst_len - x->sst_base >= SST_WBUF
                           : !x->sst_nospill && x->sst_len > x->lim.sst_mem)
            sst_flush(x, NULL);
    }
}

static void XMLCALL sst_chars(void *ud, const XML_Char *s, int len)
{
    struct xlsx *x = ud;
    x->last_event = x->fed;
    if (!x->in_si || !x->in_t)
        return;
    if (x->sst_len + (size_t)len + 1 > x->lim.max_sst_bytes) {
        hfatal(x, FX_ETOOBIG, "%s: shared strings exceed %zu bytes (limit)", x->part,
               x->lim.max_sst_bytes);
        return;
    }
    sst_reserve(x, (size_t)len + 1);
    memcpy(x->sst + (x->sst_len - x->sst_base), s, (size_t)len);
    x->sst_len += (size_t)len;
}

/* Offset and length of shared string i. */
static size_t sst_span(const struct xlsx *x, size_t i, size_t *len)
{
    size_t end = i + 1 < x->nsst ? x->sst_off[i + 1] : x->sst_len;
    *len = end - x->sst_off[i] - 1;
    return x->sst_off[i];
}

/* ------------------------------------------------------------------------ */
/* Sheet rows (the handlers of both modes)                                   */

static unsigned long cur_line(const struct sheetp *p)
{
    return (unsigned long)XML_GetCurrentLineNumber(p->xp) + p->line_base;
}

static void pfatal(struct sheetp *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fatal error raised inside a sheet handler: stop the parser for good. A
 * chunk's errors are only a reason to parse it again serially. */
static void pfatal(struct sheetp *p, int code, const char *fmt, ...)
{
    if (p->fatal)
        return;
    p->fatal = code;
    if (!p->chunk) {
        fx_err_clear(&p->ferr);
        p->ferr.code = code;
        snprintf(p->ferr.source, sizeof(p->ferr.source), "%s", p->x->path);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->ferr.reason, sizeof(p->ferr.reason), fmt, ap);
        va_end(ap);
    }
    XML_StopParser(p->xp, XML_FALSE);
}

/* Something a chunk cannot decide alone: parse it serially instead. */
static void anomaly(struct sheetp *p)
{
    p->anomaly = 1;
    XML_StopParser(p->xp, XML_FALSE);
}

static void row_bad(struct sheetp *p, int code, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reject the current row (first problem wins). */
static void row_bad(struct sheetp *p, int code, size_t col, const char *fmt, ...)
{
    if (p->bad)
        return;
    p->bad = 1;
    fx_err_clear(&p->berr);
    p->berr.code = code;
    p->berr.row = p->row;
    p->berr.column = (int)col;
    snprintf(p->berr.source, sizeof(p->berr.source), "%s", p->x->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->berr.reason, sizeof(p->berr.reason), fmt, ap);
    va_end(ap);
}

static int pread_all(int fd, char *buf, size_t n, size_t off)
{
    while (n > 0) {
        ssize_t got = pread(fd, buf, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO; /* the file is ours: short means damaged */
            return -1;
        }
        buf += got;
        off += (size_t)got;
        n -= (size_t)got;
    }
    return 0;
}

/* Copy len bytes of the spilled shared strings at off to dst through this
 * parser's page cache. Returns 0, or -1 with errno set. */
static int sst_copy(struct sheetp *p, size_t off, size_t len, char *dst)
{
    struct xlsx *x = p->x;
    const size_t psize = (size_t)1 << SST_PAGE_SHIFT;
    if (!p->pages) {
        size_t n = (x->lim.sst_mem / 2) >> SST_PAGE_SHIFT;
        p->nslots = n < 4 ? 4 : n;
        p->pages = fx_malloc(p->nslots * psize);
        p->page_no = fx_malloc(p->nslots * sizeof(*p->page_no));
        for (size_t i = 0; i < p->nslots; i++)
            p->page_no[i] = SIZE_MAX;
    }
    while (len > 0) {
        size_t page = off >> SST_PAGE_SHIFT, at = off & (psize - 1);
        size_t slot = page % p->nslots;
        char *mem = p->pages + slot * psize;
        if (p->page_no[slot] != page) {
            size_t start = page * psize;
            size_t want = x->sst_len - start < psize ? x->sst_len - start : psize;
            p->page_no[slot] = SIZE_MAX;
            if (pread_all(x->sst_fd, mem, want, start) != 0)
                return -1;
            p->page_no[slot] = page;
        }
        size_t n = psize - at < len ? psize - at : len;
        memcpy(dst, mem + at, n);
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
}

static void rb_reserve(struct rowbuf *r, size_t extra)
{
    if (r->rb_len + extra <= r->rb_cap)
        return;
    size_t cap = r->rb_cap ? r->rb_cap : 4096;
    while (cap < r->rb_len + extra)
        cap *= 2;
    r->rb = fx_realloc(r->rb, cap);
    r->rb_cap = cap;
}

static void rowbuf_free(struct rowbuf *r)
{
    free(r->rb);
    free(r->cells);
    free(r->coff);
}

/* Column (1-based) from a cell reference "AB12"; 0 when malformed. */
static size_t ref_col(const char *r)
{
    size_t col = 0;
    for (; (*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z'); r++) {
        col = col * 26 + (size_t)((*r | 0x20) - 'a' + 1);
        if (col > MAX_COL)
            return 0;
    }
    return *r >= '0' && *r <= '9' ? col : 0;
}

static void row_begin(struct sheetp *p, const char **atts)
{
    struct xlsx *x = p->x;
    const char *r = attr(atts, "r");
    unsigned long long n;
    long row;
    if (r) {
        if (parse_uint(r, 1ull << 40, &n) != 0 || n == 0) {
            pfatal(p, FX_EPARSE, "%s: invalid row number \"%.32s\" at line %lu", x->part, r,
                   cur_line(p));
            return;
        }
        row = (long)n;
    } else {
        if (p->chunk) { /* its number depends on the rows before the chunk */
            anomaly(p);
            return;
        }
        row = p->last_row + 1;
    }
    if (row <= p->last_row) {
        pfatal(p, FX_EPARSE, "%s: row %ld comes after row %ld (rows out of order)", x->part, row,
               p->last_row);
        return;
    }
    if (!p->first_row)
        p->first_row = row;
    p->row = p->last_row = row;
    p->in_row = 1;
    if (!p->chunk) {
        p->r.rb_len = 0;
        p->r.ncells = 0;
    }
    p->cell0 = p->r.ncells;
    p->text0 = p->r.rb_len;
    p->nc = 0;
    p->last_value = 0;
    p->row_bytes = 0;
    p->bad = 0;
}

/* </row> in chunk mode: keep the row in the batch, or drop it when empty. */
static void row_done(struct sheetp *p)
{
    struct chunk *c = p->chunk;
    if (!p->bad && !p->last_value) {
        p->r.rb_len = p->text0;
        p->r.ncells = p->cell0;
        return;
    }
    if (c->nrows == c->rows_cap) {
        c->rows_cap = c->rows_cap ? 2 * c->rows_cap : 256;
        c->rows = fx_realloc(c->rows, c->rows_cap * sizeof(*c->rows));
    }
    struct crow *w = &c->rows[c->nrows++];
    w->row = p->row;
    w->cell0 = p->cell0;
    if (p->bad) {
        if (c->nerrs == c->errs_cap) {
            c->errs_cap = c->errs_cap ? 2 * c->errs_cap : 4;
            c->errs = fx_realloc(c->errs, c->errs_cap * sizeof(*c->errs));
        }
        c->errs[c->nerrs++] = p->berr;
        w->err = c->nerrs;
        w->ncells = 0;
        p->r.rb_len = p->text0;
        p->r.ncells = p->cell0;
    } else {
        w->err = 0;
        w->ncells = p->last_value;
        p->r.ncells = p->cell0 + p->last_value;
    }
}

static void cell_begin(struct sheetp *p, const char **atts)
{
    const char *r = NULL, *t = NULL, *s = NULL;
    for (const char **a = atts; *a; a += 2) {
        const char *n = a[0];
        if (n[0] && !n[1]) {
            if (n[0] == 'r')
                r = a[1];
            else if (n[0] == 't')
                t = a[1];
            else if (n[0] == 's')
                s = a[1];
        }
    }
    p->in_c = 1;
    p->cstart = p->r.rb_len;
    size_t col = p->nc + 1;
    if (r) {
        col = ref_col(r);
        if (col == 0) {
            pfatal(p, FX_EPARSE, "%s: invalid cell reference \"%.32s\" at line %lu", p->x->part, r,
                   cur_line(p));
            return;
        }
        if (col <= p->nc)
            row_bad(p, FX_EPARSE, col, "cell %.32s is out of order in row %ld", r, p->row);
    } else if (col > MAX_COL) {
        pfatal(p, FX_EPARSE, "%s: row %ld has more than %d columns", p->x->part, p->row, MAX_COL);
        return;
    }
    p->col = col;
    p->ct = T_NUM;
    if (t) {
        /* dispatch on the first byte: this runs for every cell */
        switch (t[0]) {
        case 's':
            if (!t[1])
                p->ct = T_SST;
            else if (strcmp(t, "str") == 0)
                p->ct = T_STR;
            break;
        case 'i':
            if (strcmp(t, "inlineStr") == 0)
                p->ct = T_INLINE;
            break;
        case 'b':
            if (!t[1])
                p->ct = T_BOOL;
            break;
        case 'e':
            if (!t[1])
                p->ct = T_ERR;
            break;
        case 'd':
            if (!t[1])
                p->ct = T_DATE;
            break;
        }
    }
    unsigned style = 0;
    if (s) {
        unsigned long long st;
        if (parse_uint(s, UINT32_MAX, &st) == 0)
            style = (unsigned)st;
    }
    p->style = style;
}

/* Plain decimal ("-12.50") with at most 15 significant digits: such text is
 * what the writer meant and is kept as is. Longer ones ("0.07000000000000001"
 * from writers printing 16-17 digits) are rewritten as the shortest text of
 * the same double; exponent forms always are. */
static int is_plain_decimal(const char *s, size_t n)
{
    size_t sig = 0;
    int lead = 1;
    for (size_t k = 0; k < n; k++)
        if (s[k] >= '0' && s[k] <= '9') {
            lead = lead && s[k] == '0';
            sig += !lead;
        }
    if (sig > 15)
        return 0;
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d0)
        return 0;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f0)
            return 0;
    }
    return i == n;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*v) ? 0 : -1;
}

/* Replace the current cell's text (at cstart) with s[0..n). */
static void cell_set_text(struct sheetp *p, const char *s, size_t n)
{
    p->r.rb_len = p->cstart;
    rb_reserve(&p->r, n + 1);
    memcpy(p->r.rb + p->r.rb_len, s, n);
    p->r.rb_len += n;
}

static void cell_end(struct sheetp *p)
{
    struct xlsx *x = p->x;
    struct rowbuf *r = &p->r;
    p->in_c = p->in_v = p->in_is = 0;
    if (p->bad)
        return;
    size_t col = p->col;
    char cref[8];
    if (col > x->max_fields) {
        col_name(col, cref);
        row_bad(p, FX_ETOOBIG, col, "cell %s%ld: more than %zu cells (max_fields)", cref, p->row,
                x->max_fields);
        return;
    }
    if (p->cell0 + col > r->cells_cap) {
        size_t cap = r->cells_cap ? r->cells_cap : 64;
        while (cap < p->cell0 + col)
            cap *= 2;
        r->cells = fx_realloc(r->cells, cap * sizeof(*r->cells));
        r->coff = fx_realloc(r->coff, cap * sizeof(*r->coff));
        r->cells_cap = cap;
    }
    struct fx_cell *cells = r->cells + p->cell0;
    size_t *coff = r->coff + p->cell0;
    for (size_t i = p->nc; i + 1 < col; i++) {
        cells[i] = (struct fx_cell){.s = "", .len = 0, .type = FX_CELL_EMPTY};
        coff[i] = SIZE_MAX;
    }
    rb_reserve(r, FX__XLSX_NUM_MAX + 1);
    char *text = r->rb + p->cstart;
    size_t tlen = r->rb_len - p->cstart;
    text[tlen] = '\0';
    struct fx_cell *c = &cells[col - 1];
    coff[col - 1] = p->cstart;
    p->nc = col;
    c->type = FX_CELL_STRING;
    switch (p->ct) {
    case T_SST: {
        unsigned long long idx;
        r->rb_len = p->cstart;
        if (tlen == 0) {
            c->type = FX_CELL_EMPTY;
            break;
        }
        if (parse_uint(text, SIZE_MAX, &idx) != 0 || idx >= x->nsst) {
            col_name(col, cref);
            row_bad(p, FX_EPARSE, col, "cell %s%ld: shared string index %.32s out of range", cref,
                    p->row, text);
            return;
        }
        size_t len, off = sst_span(x, (size_t)idx, &len);
        if (len > x->max_field) {
            col_name(col, cref);
            row_bad(p, FX_ETOOBIG, col, "cell %s%ld longer than %zu bytes (max_field_bytes)", cref,
                    p->row, x->max_field);
            return;
        }
        if (!len)
            c->type = FX_CELL_EMPTY;
        if (!x->sst_spilled) { /* point into the table */
            c->s = x->sst + off;
            c->len = len;
            coff[col - 1] = SIZE_MAX;
            p->row_bytes += len;
            break;
        }
        rb_reserve(r, len + 1); /* a copy: cached pages come and go */
        if (sst_copy(p, off, len, r->rb + p->cstart) != 0) {
            pfatal(p, FX_EIO, "%s: cannot read shared strings back from a temporary file in %s: %s",
                   x->part, x->sst_dir, strerror(errno));
            return;
        }
        r->rb_len = p->cstart + len;
        break;
    }
    case T_STR:
    case T_INLINE:
        tlen = unescape_x(text, tlen);
        r->rb_len = p->cstart + tlen;
        c->type = tlen ? FX_CELL_STRING : FX_CELL_EMPTY;
        break;
    case T_BOOL:
        if (tlen == 0) {
            c->type = FX_CELL_EMPTY;
        } else if ((text[0] == '0' || text[0] == '1') && tlen == 1) {
            int t = text[0] == '1';
            cell_set_text(p, t ? "true" : "false", t ? 4 : 5);
            c->type = FX_CELL_BOOL;
        } else {
            col_name(col, cref);
            row_bad(p, FX_EPARSE, col, "cell %s%ld: invalid boolean \"%.32s\"", cref, p->row, text);
            return;
        }
        break;
    case T_ERR:
        c->type = tlen ? FX_CELL_ERROR : FX_CELL_EMPTY;
        break;
    case T_DATE:
        c->type = tlen ? FX_CELL_DATE : FX_CELL_EMPTY;
        break;
    case T_NUM: {
        if (tlen == 0) {
            c->type = FX_CELL_EMPTY;
            break;
        }
        c->type = FX_CELL_NUMBER;
        int kind = p->style < x->nxf ? x->xf_kind[p->style] : 0;
        int plain = !kind && is_plain_decimal(text, tlen);
        if (plain)
            break;
        double v;
        if (parse_double(text, &v) != 0) {
            col_name(col, cref);
            row_bad(p, FX_EPARSE, col, "cell %s%ld: invalid number \"%.32s\"", cref, p->row, text);
            return;
        }
        char buf[FX__XLSX_NUM_MAX];
        int n = 0;
        if (kind) {
            n = fx__xlsx_serial_iso(v, x->date1904, kind == 2, buf);
            if (n < 0) {
                col_name(col, cref);
                row_bad(p, FX_EPARSE, col,
                        "cell %s%ld: date serial 60 is 1900-02-29, a day that does not "
                        "exist (Excel's 1900 leap-year bug)",
                        cref, p->row);
                return;
            }
            if (n > 0)
                c->type = FX_CELL_DATE;
        }
        if (n == 0 && !is_plain_decimal(text, tlen))
            n = (int)fx__xlsx_format_double(v, buf);
        if (n > 0)
            cell_set_text(p, buf, (size_t)n);
        break;
    }
    }
    if (c->type != FX_CELL_EMPTY)
        p->last_value = col;
    if (coff[col - 1] != SIZE_MAX) {
        size_t n = r->rb_len - p->cstart;
        if (n > x->max_field) {
            col_name(col, cref);
            row_bad(p, FX_ETOOBIG, col, "cell %s%ld longer than %zu bytes (max_field_bytes)", cref,
                    p->row, x->max_field);
            return;
        }
        c->len = n;
        p->row_bytes += n;
        r->rb[r->rb_len++] = '\0';
    }
    if (p->row_bytes > x->max_line) {
        col_name(col, cref);
        row_bad(p, FX_ETOOBIG, col, "row %ld longer than %zu bytes (max_line_bytes)", p->row,
                x->max_line);
        return;
    }
}

static void start_chunks_here(struct sheetp *p, const char *qname);

static void XMLCALL sheet_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct sheetp *p = ud;
    p->last_event = p->fed;
    const char *ln = local(name);
    if (p->in_c) {
        switch (ln[0]) {
        case 'v':
            if (!ln[1])
                p->in_v = 1;
            break;
        case 'i':
            if (ln[1] == 's' && !ln[2]) {
                p->in_is = 1;
                p->rph = 0;
            }
            break;
        case 'r':
            if (p->in_is && strcmp(ln, "rPh") == 0)
                p->rph++;
            break;
        case 't':
            if (p->in_is && !ln[1])
                p->in_t = p->rph == 0;
            break;
        case 'c':
            if (!ln[1])
                pfatal(p, FX_EPARSE, "%s: <c> inside a cell at line %lu", p->x->part, cur_line(p));
            break;
        }
    } else if (p->in_row) {
        if (ln[0] == 'c' && !ln[1])
            cell_begin(p, atts);
        else if (is_row(ln))
            pfatal(p, FX_EPARSE, "%s: <row> inside a row at line %lu", p->x->part, cur_line(p));
    } else if (p->in_sheetdata) {
        if (is_row(ln)) {
            if (p->row_ready) {
                pfatal(p, FX_EPARSE, "%s: unexpected row", p->x->part);
                return;
            }
            row_begin(p, atts);
        }
    } else if (strcmp(ln, "sheetData") == 0) {
        p->in_sheetdata = 1;
        if (p->tracking) {
            p->tracking = 0;
            if (p->want_chunks && p->depth <= DEPTH_MAX)
                start_chunks_here(p, name);
        }
    } else if (p->tracking) {
        /* remember the open elements: a chunk parsed later needs them */
        size_t n = strlen(name);
        if (p->depth < DEPTH_MAX && p->stack_len + n + 2 <= sizeof(p->stack)) {
            p->marks[p->depth] = p->stack_len;
            p->stack[p->stack_len++] = '<';
            memcpy(p->stack + p->stack_len, name, n);
            p->stack_len += n;
            p->stack[p->stack_len++] = '>';
        } else {
            p->want_chunks = 0;
        }
        p->depth++;
    }
}

static void XMLCALL sheet_end(void *ud, const XML_Char *name)
{
    struct sheetp *p = ud;
    p->last_event = p->fed;
    const char *ln = local(name);
    if (p->in_c) {
        switch (ln[0]) {
        case 'v':
            if (!ln[1])
                p->in_v = 0;
            break;
        case 't':
            if (!ln[1])
                p->in_t = 0;
            break;
        case 'r':
            if (strcmp(ln, "rPh") == 0)
                p->rph -= p->rph > 0;
            break;
        case 'i':
            if (ln[1] == 's' && !ln[2])
                p->in_is = p->in_t = 0;
            break;
        case 'c':
            if (!ln[1])
                cell_end(p);
            break;
        }
    } else if (p->in_row && is_row(ln)) {
        p->in_row = 0;
        if (p->chunk) {
            row_done(p);
        } else if (p->bad || p->last_value) {
            p->row_ready = 1;
            XML_StopParser(p->xp, XML_TRUE);
        }
    } else if (strcmp(ln, "sheetData") == 0) {
        p->in_sheetdata = 0;
    } else if (p->tracking && p->depth > 0) {
        p->depth--;
        if (p->depth < DEPTH_MAX)
            p->stack_len = p->marks[p->depth];
    }
}

static void XMLCALL sheet_chars(void *ud, const XML_Char *s, int len)
{
    struct sheetp *p = ud;
    p->last_event = p->fed;
    if (!p->in_c || !(p->in_v || p->in_t) || p->bad)
        return;
    struct xlsx *x = p->x;
    size_t n = (size_t)len;
    size_t cell = p->r.rb_len - p->cstart;
    if (cell + n > x->max_field) {
        char cref[8];
        col_name(p->col, cref);
        row_bad(p, FX_ETOOBIG, p->col, "cell %s%ld longer than %zu bytes (max_field_bytes)", cref,
                p->row, x->max_field);
        return;
    }
    if (p->row_bytes + cell + n > x->max_line) {
        row_bad(p, FX_ETOOBIG, p->col, "row %ld longer than %zu bytes (max_line_bytes)", p->row,
                x->max_line);
        return;
    }
    rb_reserve(&p->r, n + 1);
    memcpy(p->r.rb + p->r.rb_len, s, n);
    p->r.rb_len += n;
}

static void XMLCALL sheet_no_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                     const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    struct sheetp *p = ud;
    pfatal(p, FX_EPARSE, "%s: DOCTYPE declarations are not allowed in a workbook", p->x->part);
}

/* Only UTF-8 text may be cut at byte offsets. */
static void XMLCALL sheet_decl(void *ud, const XML_Char *version, const XML_Char *encoding,
                               int standalone)
{
    (void)version;
    (void)standalone;
    struct sheetp *p = ud;
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        p->want_chunks = 0;
}

static void sheet_handlers(struct sheetp *p)
{
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, sheet_start, sheet_end);
    XML_SetCharacterDataHandler(p->xp, sheet_chars);
    XML_SetStartDoctypeDeclHandler(p->xp, sheet_no_doctype);
}

/* Fresh handler state; keeps the buffers and the parser. */
static void sheetp_reset(struct sheetp *p)
{
    p->chunk = NULL;
    p->line_base = 0;
    p->fed = p->last_event = 0;
    p->fatal = p->anomaly = p->to_chunks = 0;
    p->tracking = p->want_chunks = p->depth = 0;
    p->stack_len = 0;
    p->in_sheetdata = p->in_row = p->in_c = p->in_v = p->in_is = p->in_t = p->rph = 0;
    p->row_ready = 0;
    p->row = p->last_row = p->first_row = 0;
    p->r.rb_len = p->r.ncells = 0;
    p->cell0 = p->text0 = p->nc = p->last_value = p->row_bytes = 0;
    p->bad = 0;
}

static void sheetp_free(struct sheetp *p)
{
    if (!p)
        return;
    if (p->xp)
        XML_ParserFree(p->xp);
    rowbuf_free(&p->r);
    free(p->pages);
    free(p->page_no);
    free(p);
}

/* A serial parser over the sheet (the prolog, the end of the part, and
 * whatever chunks could not be trusted), on encoding (NULL: as declared). */
static struct sheetp *serial_parser(struct xlsx *x, struct sheetp *p, const char *encoding)
{
    if (!p) {
        p = fx_calloc(1, sizeof(*p));
        p->x = x;
    }
    if (p->xp)
        XML_ParserFree(p->xp);
    p->xp = create_parser(encoding);
    sheetp_reset(p);
    sheet_handlers(p);
    return p;
}

/* ------------------------------------------------------------------------ */
/* Serial mode                                                               */

static void replay_add(struct piece ***tail, char *data, size_t len)
{
    if (!len) {
        free(data);
        return;
    }
    struct piece *r = fx_calloc(1, sizeof(*r));
    r->data = data;
    r->len = len;
    **tail = r;
    *tail = &r->next;
}

/* Next bytes of the sheet for the serial parser: replayed bytes first, then
 * the rest of the part. Returns the count (0 at the end) or < 0 (err set). */
static long long serial_read(struct xlsx *x, char *buf, size_t cap, struct fx_err *err)
{
    struct piece *r = x->replay;
    if (r) {
        size_t n = r->len - r->off < cap ? r->len - r->off : cap;
        memcpy(buf, r->data + r->off, n);
        r->off += n;
        if (r->off == r->len) {
            x->replay = r->next;
            free(r->data);
            free(r);
        }
        return (long long)n;
    }
    if (x->src_fatal) {
        if (err)
            *err = x->src_err;
        return x->src_fatal;
    }
    if (x->sheet_eof) {
        x->progress = (long long)x->sheet_got;
        return 0;
    }
    long long n = read_entry(x, x->zf, x->sheet_part, buf, cap, x->sheet_comp, &x->sheet_got, err);
    if (n == 0)
        x->sheet_eof = 1;
    for (long long i = 0; i < n && x->nhead < sizeof(x->head); i++)
        x->head[x->nhead++] = (unsigned char)buf[i];
    if (n > 0)
        x->progress = (long long)x->sheet_got;
    return n;
}

static int sheet_xml_error(struct sheetp *p, struct fx_err *err)
{
    if (p->fatal) {
        *err = p->ferr;
        return p->fatal;
    }
    return fail(p->x, err, FX_EPARSE, "%s: malformed XML at line %lu: %s", p->x->part, cur_line(p),
                XML_ErrorString(XML_GetErrorCode(p->xp)));
}

static void emit(struct sheetp *p, struct fx_record *rec)
{
    p->row_ready = 0;
    rec->row = p->row;
    rec->cells = p->r.cells;
    if (p->bad) {
        rec->bad = 1;
        rec->ncells = 0;
        rec->err = p->berr;
        return;
    }
    for (size_t i = 0; i < p->last_value; i++)
        if (p->r.coff[i] != SIZE_MAX)
            p->r.cells[i].s = p->r.rb + p->r.coff[i];
    rec->ncells = p->last_value;
    rec->bad = 0;
    rec->err.code = 0;
}

static void start_chunks(struct xlsx *x);

static int serial_next(struct xlsx *x, struct fx_record *rec)
{
    struct sheetp *p = x->sp;
    for (;;) {
        if (x->fatal)
            return x->fatal;
        if (p->row_ready) {
            emit(p, rec);
            return 1;
        }
        XML_ParsingStatus ps;
        XML_GetParsingStatus(p->xp, &ps);
        if (ps.parsing == XML_FINISHED)
            return 0;
        enum XML_Status st;
        if (ps.parsing == XML_SUSPENDED) {
            st = XML_ResumeParser(p->xp);
        } else {
            int rc = token_check(x, p->xp, p->fed, p->last_event, p->line_base, &x->ferr);
            if (rc) {
                x->fatal = rc;
                continue;
            }
            void *buf = XML_GetBuffer(p->xp, (int)x->block);
            if (!buf) {
                x->fatal = sheet_xml_error(p, &x->ferr);
                continue;
            }
            long long n = serial_read(x, buf, x->block, &x->ferr);
            if (n < 0) {
                x->fatal = (int)n;
                continue;
            }
            p->fed += n;
            st = XML_ParseBuffer(p->xp, (int)n, n == 0);
        }
        if (st == XML_STATUS_ERROR) {
            if (p->to_chunks) {
                start_chunks(x);
                return AGAIN;
            }
            x->fatal = sheet_xml_error(p, &x->ferr);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Chunk mode                                                                */

static void pend_reserve(struct xlsx *x, size_t extra)
{
    if (x->pend_len + extra <= x->pend_cap)
        return;
    size_t cap = x->pend_cap ? x->pend_cap : 4096;
    while (cap < x->pend_len + extra)
        cap *= 2;
    x->pend = fx_realloc(x->pend, cap);
    x->pend_cap = cap;
}

/* Called by the <sheetData> start handler of the first serial parser: keep
 * the bytes after the tag, the open elements and the line count, and stop
 * the parser for the chunks to take over. Declines quietly (the sheet is
 * then read serially) when any of that is unavailable. */
static void start_chunks_here(struct sheetp *p, const char *qname)
{
    struct xlsx *x = p->x;
    int off = 0, size = 0;
    const char *ctx = XML_GetInputContext(p->xp, &off, &size);
    int n = XML_GetCurrentByteCount(p->xp);
    size_t ql = strlen(qname);
    /* UTF-16 (a BOM, or a zero byte among the first two) is never cut */
    int utf8 = x->nhead >= 2 && x->head[1] != 0 &&
               (x->head[0] == '<' || x->head[0] == 0xEF || x->head[0] == ' ' ||
                x->head[0] == '\t' || x->head[0] == '\r' || x->head[0] == '\n');
    if (!utf8 || !ctx || n < 2 || off < 0 || off + n > size || ctx[off + n - 2] == '/' ||
        p->stack_len + ql + 2 > PREFIX_MAX)
        return;
    x->prefix_len = p->stack_len + ql + 2;
    x->prefix = fx_malloc(x->prefix_len + 1);
    memcpy(x->prefix, p->stack, p->stack_len);
    snprintf(x->prefix + p->stack_len, ql + 3, "<%s>", qname);
    x->sd_open = fx_asprintf("<%s>", qname);
    x->sd_open_len = ql + 2;
    x->sd_close = fx_asprintf("</%s>", qname);
    x->sd_close_len = ql + 3;
    x->lines = cur_line(p) - 1 + count_breaks(ctx + off, (size_t)n);
    size_t rest = (size_t)(size - off - n);
    pend_reserve(x, rest + 1);
    memcpy(x->pend, ctx + off + n, rest);
    x->pend_len = rest;
    x->pend_scanned = 0;
    p->to_chunks = 1;
    XML_StopParser(p->xp, XML_FALSE);
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || (unsigned char)c >= 0x80;
}

/* Offset just past the last row end tag ("</row>", "</x:row >") of s[0..n)
 * that ends at or after lo (bytes before lo were searched already), or 0. */
static size_t last_row_end(const char *s, size_t n, size_t lo)
{
    size_t from = lo > 256 ? lo - 256 : 0; /* a tag may straddle the old end */
    for (size_t i = n; i > from; i--) {
        if (s[i - 1] != '>')
            continue;
        size_t q = i - 1;
        while (q > 0 &&
               (s[q - 1] == ' ' || s[q - 1] == '\t' || s[q - 1] == '\r' || s[q - 1] == '\n'))
            q--;
        if (q < 5 || memcmp(s + q - 3, "row", 3) != 0)
            continue;
        size_t b = q - 3;
        if (s[b - 1] == ':') {
            size_t a = b - 1;
            while (a > 0 && name_char(s[a - 1]))
                a--;
            if (a == b - 1)
                continue;
            b = a;
        }
        if (b >= 2 && s[b - 1] == '/' && s[b - 2] == '<')
            return i;
    }
    return 0;
}

/* Inflate one block after the pending bytes and cut them after their last
 * row end tag into a chunk (recycling *spare when given). Runs unlocked by
 * the one thread holding the producer role. Returns the chunk or NULL; *done
 * is set when the producer stops for good (end of the part, an error, or no
 * row end within pend_max bytes): the serial parser then takes over. */
static struct chunk *produce(struct xlsx *x, struct chunk **spare, int *done)
{
    pend_reserve(x, x->block);
    long long n = read_entry(x, x->zf, x->sheet_part, x->pend + x->pend_len, x->block,
                             x->sheet_comp, &x->sheet_got, &x->src_err);
    if (n <= 0) {
        if (n < 0)
            x->src_fatal = (int)n;
        else
            x->sheet_eof = 1;
        *done = 1;
        return NULL;
    }
    size_t lo = x->pend_scanned;
    x->pend_len += (size_t)n;
    size_t cut = last_row_end(x->pend, x->pend_len, lo);
    if (!cut) {
        x->pend_scanned = x->pend_len;
        if (x->pend_len > x->pend_max)
            *done = 1;
        return NULL;
    }
    struct chunk *c = *spare;
    *spare = NULL;
    if (!c)
        c = fx_calloc(1, sizeof(*c));
    /* the chunk takes the pending buffer; its old one receives the rest */
    char *old = c->in;
    size_t old_cap = c->in_cap;
    c->in = x->pend;
    c->in_cap = x->pend_cap;
    c->in_len = cut;
    size_t rest = x->pend_len - cut;
    x->pend = old;
    x->pend_cap = old_cap;
    x->pend_len = 0;
    pend_reserve(x, rest + x->block);
    memcpy(x->pend, c->in + cut, rest);
    x->pend_len = rest;
    x->pend_scanned = rest;
    c->line0 = x->lines;
    x->lines += count_breaks(c->in, cut);
    c->end = (long long)(x->sheet_got - rest);
    c->state = C_TODO;
    c->next = NULL;
    return c;
}

/* Parse one chunk into its batch with the calling thread's parser. */
static void parse_chunk(struct xlsx *x, struct sheetp *p, struct chunk *c)
{
    if (p->xp)
        XML_ParserReset(p->xp, "UTF-8");
    else
        p->xp = create_parser("UTF-8");
    sheetp_reset(p);
    sheet_handlers(p);
    p->chunk = c;
    struct rowbuf mine = p->r; /* the batch's buffers become the parser's */
    p->r = c->out;
    p->r.rb_len = p->r.ncells = 0;
    c->nrows = c->nerrs = c->next_row = 0;
    /* One final buffer, not three calls: expat then skips counting lines and
     * columns over the whole chunk (about a tenth of its work), and computes
     * them only if something goes wrong. */
    size_t n = x->sd_open_len + c->in_len + x->sd_close_len;
    char *buf = XML_GetBuffer(p->xp, (int)n);
    int ok = buf != NULL;
    if (ok) {
        memcpy(buf, x->sd_open, x->sd_open_len);
        memcpy(buf + x->sd_open_len, c->in, c->in_len);
        memcpy(buf + x->sd_open_len + c->in_len, x->sd_close, x->sd_close_len);
        ok = XML_ParseBuffer(p->xp, (int)n, XML_TRUE) == XML_STATUS_OK;
    }
    c->redo = !ok || p->fatal || p->anomaly;
    c->first_row = p->first_row;
    c->last_row = p->last_row;
    c->out = p->r;
    p->r = mine;
    p->chunk = NULL;
}

/* From here to worker(), functions are called with x->mu held; run_producer
 * and run_parse release it around their work. */

static int can_produce(const struct xlsx *x)
{
    return !x->producing && !x->prod_done && !x->quit && x->nchunks < CHUNKS_MAX;
}

static struct chunk *first_todo(const struct xlsx *x)
{
    for (struct chunk *c = x->head_c; c; c = c->next)
        if (c->state == C_TODO)
            return c;
    return NULL;
}

/* Take the producer role: inflate one block (see produce). */
static void run_producer(struct xlsx *x)
{
    struct chunk *spare = x->spare;
    if (spare) {
        x->spare = spare->next;
        x->nspare--;
    }
    x->producing = 1;
    pthread_mutex_unlock(&x->mu);
    int done = 0;
    struct chunk *c = produce(x, &spare, &done);
    pthread_mutex_lock(&x->mu);
    x->producing = 0;
    x->prod_done |= done;
    if (spare) {
        spare->next = x->spare;
        x->spare = spare;
        x->nspare++;
    }
    if (c) {
        if (x->tail_c)
            x->tail_c->next = c;
        else
            x->head_c = c;
        x->tail_c = c;
        x->nchunks++;
    }
    pthread_cond_broadcast(&x->cv);
}

/* Parse chunk c, which was waiting, with the calling thread's parser p. */
static void run_parse(struct xlsx *x, struct sheetp *p, struct chunk *c)
{
    c->state = C_BUSY;
    pthread_mutex_unlock(&x->mu);
    parse_chunk(x, p, c);
    pthread_mutex_lock(&x->mu);
    c->state = C_DONE;
    pthread_cond_broadcast(&x->cv);
}

static void chunk_free(struct chunk *c)
{
    if (!c)
        return;
    free(c->in);
    rowbuf_free(&c->out);
    free(c->rows);
    free(c->errs);
    free(c);
}

/* A returned chunk is kept for reuse (its buffers are the right size). */
static void release(struct xlsx *x, struct chunk *c)
{
    x->nchunks--;
    if (x->nspare >= CHUNKS_MAX) {
        chunk_free(c);
    } else {
        c->next = x->spare;
        x->spare = c;
        x->nspare++;
    }
    pthread_cond_broadcast(&x->cv);
}

static void *worker(void *arg)
{
    struct xlsx *x = arg;
    pthread_mutex_lock(&x->mu);
    while (!x->quit) {
        struct chunk *c = first_todo(x);
        if (c)
            run_parse(x, x->ctx[1], c);
        else if (can_produce(x))
            run_producer(x);
        else
            pthread_cond_wait(&x->cv, &x->mu);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

static void stop_worker(struct xlsx *x)
{
    if (!x->have_thread)
        return;
    pthread_mutex_lock(&x->mu);
    x->quit = 1;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->th, NULL);
    x->have_thread = 0;
}

/* The first serial parser stopped at <sheetData>: continue in chunks. */
static void start_chunks(struct xlsx *x)
{
    struct sheetp *p = x->sp;
    x->sp = NULL;
    XML_ParserFree(p->xp);
    p->xp = NULL;
    x->ctx[0] = p;
    x->ctx[1] = fx_calloc(1, sizeof(*x->ctx[1]));
    x->ctx[1]->x = x;
    /* a chunk holds whole rows: past this without a row end, go serial */
    x->pend_max = x->max_line + (1u << 20) + 2 * x->block;
    if (x->pend_max > (64u << 20))
        x->pend_max = 64u << 20;
    x->chunked = 1;
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1 && pthread_create(&x->th, NULL, worker, x) == 0)
        x->have_thread = 1;
}

/* Leave chunk mode for good: the serial parser continues from chunk `from`
 * (NULL: from the pending bytes), after the open elements. */
static void go_serial(struct xlsx *x, struct chunk *from)
{
    stop_worker(x);
    struct sheetp *p = serial_parser(x, x->ctx[0], "UTF-8");
    x->ctx[0] = NULL;
    sheetp_free(x->ctx[1]);
    x->ctx[1] = NULL;
    p->line_base = from ? from->line0 : x->lines;
    p->last_row = x->cons_last_row;
    struct piece **tail = &x->replay;
    replay_add(&tail, fx_strndup(x->prefix, x->prefix_len), x->prefix_len);
    if (from) {
        replay_add(&tail, from->in, from->in_len);
        from->in = NULL;
        chunk_free(from);
    }
    for (struct chunk *c = x->head_c, *next; c; c = next) {
        next = c->next;
        replay_add(&tail, c->in, c->in_len);
        c->in = NULL;
        chunk_free(c);
    }
    x->head_c = x->tail_c = NULL;
    replay_add(&tail, x->pend, x->pend_len);
    x->pend = NULL;
    x->pend_len = x->pend_cap = 0;
    for (struct chunk *c = x->spare, *next; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    x->spare = NULL;
    x->nspare = x->nchunks = 0;
    x->chunked = 0;
    x->sp = p;
}

static void emit_chunk_row(struct chunk *c, struct fx_record *rec)
{
    const struct crow *w = &c->rows[c->next_row++];
    rec->row = w->row;
    rec->cells = c->out.cells;
    if (w->err) {
        rec->bad = 1;
        rec->ncells = 0;
        rec->err = c->errs[w->err - 1];
        return;
    }
    struct fx_cell *cells = c->out.cells + w->cell0;
    const size_t *coff = c->out.coff + w->cell0;
    for (size_t i = 0; i < w->ncells; i++)
        if (coff[i] != SIZE_MAX)
            cells[i].s = c->out.rb + coff[i];
    rec->cells = cells;
    rec->ncells = w->ncells;
    rec->bad = 0;
    rec->err.code = 0;
}

/* Return the rows of the head chunk in order, helping (parsing or inflating)
 * while it is not ready; switch to the serial parser after the last chunk or
 * at one that cannot be trusted. */
static int chunked_next(struct xlsx *x, struct fx_record *rec)
{
    for (;;) {
        struct chunk *c = x->cur;
        if (c && c->next_row < c->nrows) {
            emit_chunk_row(c, rec);
            return 1;
        }
        pthread_mutex_lock(&x->mu);
        if (c) {
            x->cur = NULL;
            release(x, c);
        }
        for (;;) {
            c = x->head_c;
            if (c ? c->state == C_DONE : x->prod_done && !x->producing)
                break;
            struct chunk *t = first_todo(x);
            if (t)
                run_parse(x, x->ctx[0], t);
            else if (can_produce(x))
                run_producer(x);
            else
                pthread_cond_wait(&x->cv, &x->mu);
        }
        /* rows out of order across chunks: let the serial parser say so */
        int serial = !c || c->redo || (c->first_row && c->first_row <= x->cons_last_row);
        if (c) {
            x->head_c = c->next;
            if (!x->head_c)
                x->tail_c = NULL;
            if (serial)
                x->nchunks--; /* go_serial takes it */
        }
        pthread_mutex_unlock(&x->mu);
        if (serial) {
            go_serial(x, c);
            return AGAIN;
        }
        if (c->last_row)
            x->cons_last_row = c->last_row;
        x->progress = c->end;
        x->cur = c;
    }
}

static int xlsx_next(void *self, struct fx_record *rec, struct fx_err *err)
{
    struct xlsx *x = self;
    for (;;) {
        int rc = x->chunked ? chunked_next(x, rec) : serial_next(x, rec);
        if (rc == AGAIN)
            continue;
        if (rc < 0 && err)
            *err = x->ferr;
        return rc;
    }
}

static void xlsx_progress(void *self, long long *done, long long *total)
{
    struct xlsx *x = self;
    *done = x->progress;
    *total = (long long)x->sheet_size;
}

static void xlsx_free(void *self)
{
    struct xlsx *x = self;
    if (!x)
        return;
    stop_worker(x);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    if (x->xp)
        XML_ParserFree(x->xp);
    if (x->zf)
        zip_fclose(x->zf);
    if (x->za)
        zip_discard(x->za);
    for (size_t i = 0; i < x->nsheets; i++) {
        free(x->sheets[i].name);
        free(x->sheets[i].rid);
    }
    free(x->sheets);
    free(x->target);
    free(x->xf_fmt);
    free(x->xf_kind);
    free(x->fmt_id);
    free(x->fmt_kind);
    free(x->sst);
    free(x->sst_off);
    if (x->sst_fd >= 0)
        close(x->sst_fd);
    free(x->sst_dir);
    free(x->sheet_part);
    sheetp_free(x->sp);
    sheetp_free(x->ctx[0]);
    sheetp_free(x->ctx[1]);
    for (struct piece *r = x->replay, *next; r; r = next) {
        next = r->next;
        free(r->data);
        free(r);
    }
    chunk_free(x->cur);
    for (struct chunk *c = x->head_c, *next; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    for (struct chunk *c = x->spare, *next; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    free(x->pend);
    free(x->prefix);
    free(x->sd_open);
    free(x->sd_close);
    free(x->path);
    free(x);
}

static const struct fx_reader_ops xlsx_reader_ops = {
    .name = "xlsx",
    .next = xlsx_next,
    .progress = xlsx_progress,
    .free = xlsx_free,
};

/* ------------------------------------------------------------------------ */
/* Opening                                                                   */

static int choose_sheet(struct xlsx *x, const struct fx_reader_opts *opts, struct fx_err *err)
{
    if (x->nsheets == 0)
        return fail(x, err, FX_EPARSE, "xl/workbook.xml lists no sheets");
    if (opts->sheet) {
        for (size_t i = 0; i < x->nsheets; i++)
            if (strcmp(x->sheets[i].name, opts->sheet) == 0) {
                x->chosen = i;
                return 0;
            }
        for (size_t i = 0; i < x->nsheets; i++)
            if (strcasecmp(x->sheets[i].name, opts->sheet) == 0) {
                x->chosen = i;
                return 0;
            }
        struct fx_buf names;
        fx_buf_init(&names, 300);
        for (size_t i = 0; i < x->nsheets; i++)
            if (fx_buf_printf(&names, "%s\"%s\"", i ? ", " : "", x->sheets[i].name) != 0)
                break;
        int rc = fail(x, err, FX_ENOTFOUND, "no sheet named \"%s\" (sheets: %s)", opts->sheet,
                      names.data ? names.data : "");
        fx_buf_cleanup(&names);
        return rc;
    }
    if (opts->sheet_index < 0 || (size_t)opts->sheet_index > x->nsheets)
        return fail(x, err, FX_ENOTFOUND,
                    "sheet_index %d out of range: the workbook has %zu sheets", opts->sheet_index,
                    x->nsheets);
    x->chosen = opts->sheet_index > 0 ? (size_t)opts->sheet_index - 1 : 0;
    return 0;
}

int fx_xlsx_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                        struct fx_err *err)
{
    struct fx_reader_opts defaults;
    int rc = 0;
    *out = NULL;
    fx_err_clear(err);
    if (!opts) {
        fx_reader_opts_init(&defaults);
        opts = &defaults;
    }
    struct xlsx *x = fx_calloc(1, sizeof(*x));
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->sst_fd = -1;
    x->path = fx_strdup(path);
    x->max_line = opts->max_line_bytes ? opts->max_line_bytes : 1 << 20;
    x->max_field = opts->max_field_bytes ? opts->max_field_bytes : 64 << 10;
    x->max_fields = opts->max_fields ? opts->max_fields : 1024;
    x->lim = fx__xlsx_limits;
    if (x->lim.max_sst_bytes > UINT32_MAX) /* offsets are 32-bit */
        x->lim.max_sst_bytes = UINT32_MAX;
    x->block = fx__xlsx_block_size && fx__xlsx_block_size < FX__XLSX_BLOCK_MAX ? fx__xlsx_block_size
                                                                               : FX__XLSX_BLOCK_MAX;

    int zerr = 0;
    x->za = zip_open(path, ZIP_RDONLY, &zerr);
    if (!x->za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        if (zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ || zerr == ZIP_ER_NOENT)
            rc = fail(x, err, FX_EIO, "cannot open file: %s", zip_error_strerror(&ze));
        else
            rc = fail(x, err, FX_EPARSE, "not a valid ZIP archive (truncated or corrupt): %s",
                      zip_error_strerror(&ze));
        zip_error_fini(&ze);
        goto out;
    }
    if (zip_name_locate(x->za, "xl/workbook.xml", ZIP_FL_NOCASE) < 0) {
        if (zip_name_locate(x->za, "xl/workbook.bin", ZIP_FL_NOCASE) >= 0)
            rc = fail(x, err, FX_ENOTSUP,
                      "binary workbook (XLSB) is not supported: save it as .xlsx or CSV");
        else
            rc = fail(x, err, FX_EPARSE, "not an XLSX workbook (no xl/workbook.xml)");
        goto out;
    }
    if ((rc = parse_part(x, "xl/workbook.xml", wb_start, nop_end, nop_chars, err)))
        goto out;
    if ((rc = choose_sheet(x, opts, err)))
        goto out;
    rc = parse_part(x, "xl/_rels/workbook.xml.rels", rels_start, nop_end, nop_chars, err);
    if (rc < 0)
        goto out;
    if (rc == 1 || !x->target) {
        rc = fail(x, err, FX_EPARSE, "sheet \"%s\" has no part (relationship %s not found)",
                  x->sheets[x->chosen].name, x->sheets[x->chosen].rid);
        goto out;
    }
    if (x->chart) {
        rc = fail(x, err, FX_ENOTSUP, "sheet \"%s\" is not a worksheet (chart or dialog sheet)",
                  x->sheets[x->chosen].name);
        goto out;
    }
    x->sheet_part = resolve_target(x->target);
    rc = parse_part(x, "xl/styles.xml", styles_start, styles_end, nop_chars, err);
    if (rc < 0)
        goto out;
    resolve_styles(x);
    rc = parse_part(x, "xl/sharedStrings.xml", sst_start, sst_end, sst_chars, err);
    if (rc < 0)
        goto out;
    if ((rc = sst_finish(x, err)))
        goto out;
    rc = open_entry(x, x->sheet_part, &x->zf, &x->sheet_size, &x->sheet_comp, err);
    if (rc == 1) {
        rc = fail(x, err, FX_EPARSE, "sheet \"%s\": part %s is missing from the archive",
                  x->sheets[x->chosen].name, x->sheet_part);
        goto out;
    }
    if (rc < 0)
        goto out;
    x->part = x->sheet_part;
    x->sp = serial_parser(x, NULL, NULL);
    XML_SetXmlDeclHandler(x->sp->xp, sheet_decl);
    x->sp->tracking = 1;
    /* chunks pay off (and get tested with small blocks) past a few blocks */
    x->sp->want_chunks = x->sheet_size > 4 * (unsigned long long)x->block;
    fx_log_debug("xlsx", "%s: sheet \"%s\" (%s), %zu shared strings (%zu bytes%s), %llu bytes",
                 path, x->sheets[x->chosen].name, x->sheet_part, x->nsst, x->sst_len,
                 x->sst_spilled ? ", spilled to a temporary file" : "", x->sheet_size);
    *out = fx_reader_wrap(&xlsx_reader_ops, x, path);
    return 0;
out:
    xlsx_free(x);
    return rc;
}
