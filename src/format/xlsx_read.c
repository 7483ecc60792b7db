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
 * (interned in one growing buffer, NUL-terminated, addressed by 32-bit
 * offsets: the only data kept for the life of the reader). The sheet entry is
 * then inflated with zip_fread in blocks straight into expat's buffer
 * (XML_GetBuffer/XML_ParseBuffer). When </row> completes a non-empty row the
 * handler suspends the parser (XML_StopParser resumable), fx_reader_next
 * returns the row, and the next call resumes it (XML_ResumeParser) where it
 * stopped, feeding another block when the current one is used up. A row's
 * cell text lives in one row buffer (shared strings point into the interned
 * buffer), so memory is the shared strings plus one row plus one block.
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
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

size_t fx__xlsx_block_size = FX__XLSX_BLOCK_MAX;

struct fx__xlsx_limits fx__xlsx_limits = {
    .max_total = 1ull << 30,
    .max_ratio = 200,
    .ratio_min = 1ull << 20,
    .max_sst_count = 1000000,
    .max_sst_bytes = 256u << 20,
};

#define MAX_COL 16384     /* XFD */
#define MAX_XF (1u << 20) /* cell formats (Excel allows 64000) */
#define MAX_SHEETS 65536

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

    /* shared strings: text of string i at sst + sst_off[i], NUL-terminated */
    char *sst;
    size_t sst_len, sst_cap;
    uint32_t *sst_off;
    size_t nsst, sst_off_cap;
    int in_si, in_t, rph;
    size_t si_start;

    /* generic part parsing */
    XML_Parser xp;
    const char *part;
    long long fed, last_event;
    int fatal;
    struct fx_err ferr;

    /* sheet streaming */
    char *sheet_part;
    zip_file_t *zf;
    unsigned long long sheet_size, sheet_comp;
    int final_fed;
    int in_sheetdata, in_row, in_c, in_v, in_is;
    int row_ready;
    long row, last_row;
    char *rb;
    size_t rb_len, rb_cap;
    struct fx_cell *cells;
    size_t *coff;
    size_t ncells, cells_cap, last_value;
    size_t row_bytes;
    int bad;
    struct fx_err berr;
    size_t col;
    enum ctype ct;
    unsigned style;
    size_t cstart;
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

/* Local part of a possibly prefixed name ("x:row" -> "row"). */
static const char *local(const char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
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

static XML_Parser new_parser(struct xlsx *x, XML_StartElementHandler start,
                             XML_EndElementHandler end, XML_CharacterDataHandler chars)
{
    XML_Parser p = XML_ParserCreate(NULL);
    if (!p) {
        fprintf(stderr, "fluxo: out of memory (expat)\n");
        abort();
    }
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
static int token_check(struct xlsx *x, struct fx_err *err)
{
    if (x->fed - x->last_event > (long long)x->max_line + (1 << 20))
        return fail(x, err, FX_ETOOBIG,
                    "%s: an XML token longer than %zu bytes (max_line_bytes) at line %lu", x->part,
                    x->max_line, (unsigned long)XML_GetCurrentLineNumber(x->xp));
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
        if ((rc = token_check(x, err)))
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

static void sst_reserve(struct xlsx *x, size_t extra)
{
    if (x->sst_len + extra <= x->sst_cap)
        return;
    size_t cap = x->sst_cap ? x->sst_cap : 1 << 16;
    while (cap < x->sst_len + extra)
        cap *= 2;
    x->sst = fx_realloc(x->sst, cap); /* large blocks move with mremap, untouched pages stay free */
    x->sst_cap = cap;
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
    } else if (x->in_si && strcmp(ln, "t") == 0) {
        x->in_t = x->rph == 0;
    }
}

static void XMLCALL sst_end(void *ud, const XML_Char *name)
{
    struct xlsx *x = ud;
    const char *ln = local(name);
    x->last_event = x->fed;
    if (strcmp(ln, "t") == 0) {
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
        size_t n = unescape_x(x->sst + x->si_start, x->sst_len - x->si_start);
        x->sst_len = x->si_start + n;
        sst_reserve(x, 1);
        x->sst[x->sst_len++] = '\0';
        if (x->nsst == x->sst_off_cap) {
            x->sst_off_cap = x->sst_off_cap ? 2 * x->sst_off_cap : 1024;
            x->sst_off = fx_realloc(x->sst_off, x->sst_off_cap * sizeof(*x->sst_off));
        }
        x->sst_off[x->nsst++] = (uint32_t)x->si_start;
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
    memcpy(x->sst + x->sst_len, s, (size_t)len);
    x->sst_len += (size_t)len;
}

static const char *sst_get(const struct xlsx *x, size_t i, size_t *len)
{
    size_t end = i + 1 < x->nsst ? x->sst_off[i + 1] : x->sst_len;
    *len = end - x->sst_off[i] - 1;
    return x->sst + x->sst_off[i];
}

/* ------------------------------------------------------------------------ */
/* Sheet rows                                                                */

static void row_bad(struct xlsx *x, int code, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reject the current row (first problem wins). */
static void row_bad(struct xlsx *x, int code, size_t col, const char *fmt, ...)
{
    if (x->bad)
        return;
    x->bad = 1;
    fx_err_clear(&x->berr);
    x->berr.code = code;
    x->berr.row = x->row;
    x->berr.column = (int)col;
    snprintf(x->berr.source, sizeof(x->berr.source), "%s", x->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->berr.reason, sizeof(x->berr.reason), fmt, ap);
    va_end(ap);
}

static void rb_reserve(struct xlsx *x, size_t extra)
{
    if (x->rb_len + extra <= x->rb_cap)
        return;
    size_t cap = x->rb_cap ? x->rb_cap : 4096;
    while (cap < x->rb_len + extra)
        cap *= 2;
    x->rb = fx_realloc(x->rb, cap);
    x->rb_cap = cap;
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

static void row_begin(struct xlsx *x, const char **atts)
{
    const char *r = attr(atts, "r");
    unsigned long long n;
    long row = x->last_row + 1;
    if (r) {
        if (parse_uint(r, 1ull << 40, &n) != 0 || n == 0) {
            hfatal(x, FX_EPARSE, "%s: invalid row number \"%.32s\" at line %lu", x->part, r,
                   (unsigned long)XML_GetCurrentLineNumber(x->xp));
            return;
        }
        row = (long)n;
    }
    if (row <= x->last_row) {
        hfatal(x, FX_EPARSE, "%s: row %ld comes after row %ld (rows out of order)", x->part, row,
               x->last_row);
        return;
    }
    x->row = x->last_row = row;
    x->in_row = 1;
    x->rb_len = 0;
    x->ncells = 0;
    x->last_value = 0;
    x->row_bytes = 0;
    x->bad = 0;
}

static void cell_begin(struct xlsx *x, const char **atts)
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
    x->in_c = 1;
    x->cstart = x->rb_len;
    size_t col = x->ncells + 1;
    if (r) {
        col = ref_col(r);
        if (col == 0) {
            hfatal(x, FX_EPARSE, "%s: invalid cell reference \"%.32s\" at line %lu", x->part, r,
                   (unsigned long)XML_GetCurrentLineNumber(x->xp));
            return;
        }
        if (col <= x->ncells)
            row_bad(x, FX_EPARSE, col, "cell %.32s is out of order in row %ld", r, x->row);
    } else if (col > MAX_COL) {
        {
            hfatal(x, FX_EPARSE, "%s: row %ld has more than %d columns", x->part, x->row, MAX_COL);
            return;
        }
    }
    x->col = col;
    x->ct = T_NUM;
    if (t) {
        if (strcmp(t, "s") == 0)
            x->ct = T_SST;
        else if (strcmp(t, "str") == 0)
            x->ct = T_STR;
        else if (strcmp(t, "inlineStr") == 0)
            x->ct = T_INLINE;
        else if (strcmp(t, "b") == 0)
            x->ct = T_BOOL;
        else if (strcmp(t, "e") == 0)
            x->ct = T_ERR;
        else if (strcmp(t, "d") == 0)
            x->ct = T_DATE;
    }
    unsigned long long st = 0;
    x->style = s && parse_uint(s, UINT32_MAX, &st) == 0 ? (unsigned)st : 0;
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
static void cell_set_text(struct xlsx *x, const char *s, size_t n)
{
    x->rb_len = x->cstart;
    rb_reserve(x, n + 1);
    memcpy(x->rb + x->rb_len, s, n);
    x->rb_len += n;
}

static void cell_end(struct xlsx *x)
{
    x->in_c = x->in_v = x->in_is = 0;
    if (x->bad)
        return;
    size_t col = x->col;
    char cref[8];
    if (col > x->max_fields) {
        col_name(col, cref);
        {
            row_bad(x, FX_ETOOBIG, col, "cell %s%ld: more than %zu cells (max_fields)", cref,
                    x->row, x->max_fields);
            return;
        }
    }
    if (col > x->cells_cap) {
        size_t cap = x->cells_cap ? x->cells_cap : 64;
        while (cap < col)
            cap *= 2;
        x->cells = fx_realloc(x->cells, cap * sizeof(*x->cells));
        x->coff = fx_realloc(x->coff, cap * sizeof(*x->coff));
        x->cells_cap = cap;
    }
    for (size_t i = x->ncells; i + 1 < col; i++) {
        x->cells[i] = (struct fx_cell){.s = "", .len = 0, .type = FX_CELL_EMPTY};
        x->coff[i] = SIZE_MAX;
    }
    rb_reserve(x, FX__XLSX_NUM_MAX + 1);
    char *text = x->rb + x->cstart;
    size_t tlen = x->rb_len - x->cstart;
    text[tlen] = '\0';
    struct fx_cell *c = &x->cells[col - 1];
    x->coff[col - 1] = x->cstart;
    x->ncells = col;
    c->type = FX_CELL_STRING;
    switch (x->ct) {
    case T_SST: {
        unsigned long long idx;
        x->rb_len = x->cstart;
        if (tlen == 0) {
            c->type = FX_CELL_EMPTY;
            break;
        }
        if (parse_uint(text, SIZE_MAX, &idx) != 0 || idx >= x->nsst) {
            col_name(col, cref);
            {
                row_bad(x, FX_EPARSE, col, "cell %s%ld: shared string index %.32s out of range",
                        cref, x->row, text);
                return;
            }
        }
        c->s = sst_get(x, (size_t)idx, &c->len);
        x->coff[col - 1] = SIZE_MAX;
        if (c->len > x->max_field) {
            col_name(col, cref);
            {
                row_bad(x, FX_ETOOBIG, col, "cell %s%ld longer than %zu bytes (max_field_bytes)",
                        cref, x->row, x->max_field);
                return;
            }
        }
        x->row_bytes += c->len;
        if (!c->len)
            c->type = FX_CELL_EMPTY;
        break;
    }
    case T_STR:
    case T_INLINE:
        tlen = unescape_x(text, tlen);
        x->rb_len = x->cstart + tlen;
        c->type = tlen ? FX_CELL_STRING : FX_CELL_EMPTY;
        break;
    case T_BOOL:
        if (tlen == 0) {
            c->type = FX_CELL_EMPTY;
        } else if (strcmp(text, "1") == 0 || strcmp(text, "0") == 0) {
            int t = text[0] == '1';
            cell_set_text(x, t ? "true" : "false", t ? 4 : 5);
            c->type = FX_CELL_BOOL;
        } else {
            col_name(col, cref);
            {
                row_bad(x, FX_EPARSE, col, "cell %s%ld: invalid boolean \"%.32s\"", cref, x->row,
                        text);
                return;
            }
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
        int kind = x->style < x->nxf ? x->xf_kind[x->style] : 0;
        int plain = !kind && is_plain_decimal(text, tlen);
        if (plain)
            break;
        double v;
        if (parse_double(text, &v) != 0) {
            col_name(col, cref);
            {
                row_bad(x, FX_EPARSE, col, "cell %s%ld: invalid number \"%.32s\"", cref, x->row,
                        text);
                return;
            }
        }
        char buf[FX__XLSX_NUM_MAX];
        int n = 0;
        if (kind) {
            n = fx__xlsx_serial_iso(v, x->date1904, kind == 2, buf);
            if (n < 0) {
                col_name(col, cref);
                {
                    row_bad(x, FX_EPARSE, col,
                            "cell %s%ld: date serial 60 is 1900-02-29, a day that does not "
                            "exist (Excel's 1900 leap-year bug)",
                            cref, x->row);
                    return;
                }
            }
            if (n > 0)
                c->type = FX_CELL_DATE;
        }
        if (n == 0 && !is_plain_decimal(text, tlen))
            n = (int)fx__xlsx_format_double(v, buf);
        if (n > 0)
            cell_set_text(x, buf, (size_t)n);
        break;
    }
    }
    if (c->type != FX_CELL_EMPTY)
        x->last_value = col;
    if (x->coff[col - 1] != SIZE_MAX) {
        size_t n = x->rb_len - x->cstart;
        if (n > x->max_field) {
            col_name(col, cref);
            {
                row_bad(x, FX_ETOOBIG, col, "cell %s%ld longer than %zu bytes (max_field_bytes)",
                        cref, x->row, x->max_field);
                return;
            }
        }
        c->len = n;
        x->row_bytes += n;
        x->rb[x->rb_len++] = '\0';
    }
    if (x->row_bytes > x->max_line) {
        col_name(col, cref);
        {
            row_bad(x, FX_ETOOBIG, col, "row %ld longer than %zu bytes (max_line_bytes)", x->row,
                    x->max_line);
            return;
        }
    }
}

static void XMLCALL sheet_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct xlsx *x = ud;
    x->last_event = x->fed;
    const char *ln = local(name);
    if (x->in_c) {
        if (ln[0] == 'v' && !ln[1])
            x->in_v = 1;
        else if (strcmp(ln, "is") == 0)
            x->in_is = 1, x->rph = 0;
        else if (x->in_is && strcmp(ln, "rPh") == 0)
            x->rph++;
        else if (x->in_is && ln[0] == 't' && !ln[1])
            x->in_t = x->rph == 0;
        else if (ln[0] == 'c' && !ln[1])
            hfatal(x, FX_EPARSE, "%s: <c> inside a cell at line %lu", x->part,
                   (unsigned long)XML_GetCurrentLineNumber(x->xp));
    } else if (x->in_row) {
        if (ln[0] == 'c' && !ln[1])
            cell_begin(x, atts);
        else if (strcmp(ln, "row") == 0)
            hfatal(x, FX_EPARSE, "%s: <row> inside a row at line %lu", x->part,
                   (unsigned long)XML_GetCurrentLineNumber(x->xp));
    } else if (x->in_sheetdata) {
        if (strcmp(ln, "row") == 0) {
            if (x->row_ready) {
                hfatal(x, FX_EPARSE, "%s: unexpected row", x->part);
                return;
            }
            row_begin(x, atts);
        }
    } else if (strcmp(ln, "sheetData") == 0) {
        x->in_sheetdata = 1;
    }
}

static void XMLCALL sheet_end(void *ud, const XML_Char *name)
{
    struct xlsx *x = ud;
    x->last_event = x->fed;
    const char *ln = local(name);
    if (x->in_c) {
        if (ln[0] == 'v' && !ln[1])
            x->in_v = 0;
        else if (ln[0] == 't' && !ln[1])
            x->in_t = 0;
        else if (strcmp(ln, "rPh") == 0)
            x->rph -= x->rph > 0;
        else if (strcmp(ln, "is") == 0)
            x->in_is = x->in_t = 0;
        else if (ln[0] == 'c' && !ln[1])
            cell_end(x);
    } else if (x->in_row && strcmp(ln, "row") == 0) {
        x->in_row = 0;
        if (x->bad || x->last_value) {
            x->row_ready = 1;
            XML_StopParser(x->xp, XML_TRUE);
        }
    } else if (strcmp(ln, "sheetData") == 0) {
        x->in_sheetdata = 0;
    }
}

static void XMLCALL sheet_chars(void *ud, const XML_Char *s, int len)
{
    struct xlsx *x = ud;
    x->last_event = x->fed;
    if (!x->in_c || !(x->in_v || x->in_t) || x->bad)
        return;
    size_t n = (size_t)len;
    if (x->rb_len - x->cstart + n > x->max_field) {
        char cref[8];
        col_name(x->col, cref);
        {
            row_bad(x, FX_ETOOBIG, x->col, "cell %s%ld longer than %zu bytes (max_field_bytes)",
                    cref, x->row, x->max_field);
            return;
        }
    }
    if (x->row_bytes + x->rb_len - x->cstart + n > x->max_line) {
        row_bad(x, FX_ETOOBIG, x->col, "row %ld longer than %zu bytes (max_line_bytes)", x->row,
                x->max_line);
        return;
    }
    rb_reserve(x, n + 1);
    memcpy(x->rb + x->rb_len, s, n);
    x->rb_len += n;
}

static void emit(struct xlsx *x, struct fx_record *rec)
{
    x->row_ready = 0;
    rec->row = x->row;
    rec->cells = x->cells;
    if (x->bad) {
        rec->bad = 1;
        rec->ncells = 0;
        rec->err = x->berr;
        return;
    }
    for (size_t i = 0; i < x->last_value; i++)
        if (x->coff[i] != SIZE_MAX)
            x->cells[i].s = x->rb + x->coff[i];
    rec->ncells = x->last_value;
    rec->bad = 0;
    rec->err.code = 0;
}

static int xlsx_next(void *self, struct fx_record *rec, struct fx_err *err)
{
    struct xlsx *x = self;
    for (;;) {
        if (x->fatal) {
            if (err)
                *err = x->ferr;
            return x->fatal;
        }
        if (x->row_ready) {
            emit(x, rec);
            return 1;
        }
        XML_ParsingStatus ps;
        XML_GetParsingStatus(x->xp, &ps);
        if (ps.parsing == XML_FINISHED)
            return 0;
        enum XML_Status st;
        if (ps.parsing == XML_SUSPENDED) {
            st = XML_ResumeParser(x->xp);
        } else {
            int rc = token_check(x, &x->ferr);
            if (rc) {
                x->fatal = rc;
                continue;
            }
            void *buf = XML_GetBuffer(x->xp, (int)x->block);
            if (!buf) {
                x->fatal = xml_error(x, &x->ferr);
                continue;
            }
            unsigned long long got = (unsigned long long)x->fed;
            long long n =
                read_entry(x, x->zf, x->sheet_part, buf, x->block, x->sheet_comp, &got, &x->ferr);
            if (n < 0) {
                x->fatal = (int)n;
                continue;
            }
            x->fed += n;
            st = XML_ParseBuffer(x->xp, (int)n, n == 0);
        }
        if (st == XML_STATUS_ERROR)
            x->fatal = xml_error(x, &x->ferr);
    }
}

static void xlsx_progress(void *self, long long *done, long long *total)
{
    struct xlsx *x = self;
    *done = x->fed;
    *total = (long long)x->sheet_size;
}

static void xlsx_free(void *self)
{
    struct xlsx *x = self;
    if (!x)
        return;
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
    free(x->sheet_part);
    free(x->rb);
    free(x->cells);
    free(x->coff);
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
    x->path = fx_strdup(path);
    x->max_line = opts->max_line_bytes ? opts->max_line_bytes : 1 << 20;
    x->max_field = opts->max_field_bytes ? opts->max_field_bytes : 64 << 10;
    x->max_fields = opts->max_fields ? opts->max_fields : 1024;
    x->lim = fx__xlsx_limits;
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
    rc = open_entry(x, x->sheet_part, &x->zf, &x->sheet_size, &x->sheet_comp, err);
    if (rc == 1) {
        rc = fail(x, err, FX_EPARSE, "sheet \"%s\": part %s is missing from the archive",
                  x->sheets[x->chosen].name, x->sheet_part);
        goto out;
    }
    if (rc < 0)
        goto out;
    x->xp = new_parser(x, sheet_start, sheet_end, sheet_chars);
    x->part = x->sheet_part;
    x->fed = x->last_event = 0;
    x->rph = x->in_t = 0;
    fx_log_debug("xlsx", "%s: sheet \"%s\" (%s), %zu shared strings, %llu bytes", path,
                 x->sheets[x->chosen].name, x->sheet_part, x->nsst, x->sheet_size);
    *out = fx_reader_wrap(&xlsx_reader_ops, x, path);
    return 0;
out:
    xlsx_free(x);
    return rc;
}
