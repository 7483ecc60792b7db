/* SPDX-License-Identifier: MIT */
/*
 * XLSX writer backend on libxlsxwriter, in constant_memory mode: each row is
 * written to a per-sheet temporary file as it comes (strings inline, no
 * shared-string table), so memory stays flat for any row count; the file
 * itself is assembled and zipped at close.
 *
 * Design notes.
 *  - Rows can only be written in order, so everything that depends on the
 *    data is decided up front: column widths come from the header and the
 *    column kind (money 14, date 12, date-time 20, text by header length,
 *    12..50), not from the content.
 *  - Typed cells: money (integer cents) as numbers with a real currency
 *    format, so sums work; dates and date-times as Excel serial dates; bools
 *    as booleans; a value that does not parse as its kind is written as text
 *    rather than lost.
 *  - Date-times are shown in local wall time of the process zone (fx_tz_set,
 *    the runtime's `timezone`), since spreadsheet dates carry no zone. There
 *    is no public UTC -> local function, and libc's TZ (setenv + localtime_r)
 *    is process-global, locking and may disagree with the zone files fluxo
 *    reads itself, so the offset is found by round trip through
 *    fx_parse_datetime (which reads naive text as local time): L = U + offset
 *    such that local_to_utc(L) = U. In the hour repeated when DST ends, the
 *    second occurrence has no such L; the later (smaller) offset is used.
 *  - Excel's limit is 1,048,576 rows per sheet: after 1,048,575 data rows
 *    (o.sheet_rows, lowered by tests) a new sheet "<name> 2" starts with the
 *    same header, widths, frozen pane and autofilter.
 */
#include "fluxo/mem.h"
#include "fluxo/types.h"
#include "writer_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xlsxwriter.h>

#define DEFAULT_SHEET "Dados"
#define SHEET_NAME_MAX 31
#define XLSX_STR_MAX 32767 /* characters per cell; we cut at this many bytes */

struct xlsx_out {
    lxw_workbook *wb;
    lxw_worksheet *ws;
    lxw_format *f_header, *f_money, *f_date, *f_datetime;
    char base[SHEET_NAME_MAX + 1];
    char *path;
    char *tmpdir;
    unsigned sheet_no;     /* 1-based, current sheet */
    uint64_t sheet_rows;   /* data rows per sheet */
    uint64_t rows_here;    /* data rows on the current sheet */
    struct fx_buf scratch; /* cleaned text (invalid UTF-8, too long) */
};

static int lxw_fail(struct fx_err *err, const char *what, lxw_error e)
{
    return fx_err_set(err, FX_EIO, "%s: %s", what, lxw_strerror(e));
}

/* Sheet names: at most 31 characters, none of []:*?/\ and not starting or ending with '. */
static size_t utf8_cut(const char *s, size_t n, size_t max);

static void sheet_base(const char *name, char out[SHEET_NAME_MAX + 1])
{
    if (!name || !*name)
        name = DEFAULT_SHEET;
    size_t n = utf8_cut(name, strlen(name), SHEET_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        out[i] = strchr("[]:*?/\\", c) || (unsigned char)c < 0x20 ? '_' : c;
    }
    out[n] = '\0';
    if (out[0] == '\'')
        out[0] = '_';
    if (n > 0 && out[n - 1] == '\'')
        out[n - 1] = '_';
    if (n == 0)
        strcpy(out, DEFAULT_SHEET);
}

/* Cut s at a character boundary at or below max bytes. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static double col_width(const struct fx_col *c)
{
    double hdr = (double)fx__utf8_chars(c->header) + 3; /* room for the filter button */
    double w;
    switch (c->kind) {
    case FX_COL_MONEY:
        w = 14;
        break;
    case FX_COL_DATE:
        w = 12;
        break;
    case FX_COL_DATETIME:
        w = 20;
        break;
    case FX_COL_INT:
    case FX_COL_DECIMAL:
        w = 10;
        break;
    case FX_COL_BOOL:
        w = 8;
        break;
    default:
        w = 12;
        break;
    }
    if (hdr > w)
        w = hdr;
    return w > 50 ? 50 : w;
}

static int add_sheet(struct fx_writer *w, struct xlsx_out *x, struct fx_err *err)
{
    char name[SHEET_NAME_MAX + 1];
    x->sheet_no++;
    if (x->sheet_no == 1) {
        strcpy(name, x->base);
    } else {
        char suffix[16];
        int sl = snprintf(suffix, sizeof(suffix), " %u", x->sheet_no);
        size_t keep = utf8_cut(x->base, strlen(x->base), SHEET_NAME_MAX - (size_t)sl);
        memcpy(name, x->base, keep);
        strcpy(name + keep, suffix);
    }
    x->ws = workbook_add_worksheet(x->wb, name);
    if (!x->ws)
        return fx_err_set(err, FX_EIO, "cannot add sheet '%s'", name);
    x->rows_here = 0;
    lxw_error e;
    for (size_t i = 0; i < w->ncols; i++)
        if ((e = worksheet_set_column(x->ws, (lxw_col_t)i, (lxw_col_t)i, col_width(&w->cols[i]),
                                      NULL)) != LXW_NO_ERROR)
            return lxw_fail(err, "setting column widths", e);
    worksheet_freeze_panes(x->ws, 1, 0);
    for (size_t i = 0; i < w->ncols; i++) {
        const char *h = w->cols[i].header;
        size_t n = utf8_cut(h, strlen(h), XLSX_STR_MAX);
        fx_buf_reset(&x->scratch);
        fx_buf_append(&x->scratch, h, n);
        if ((e = worksheet_write_string(x->ws, 0, (lxw_col_t)i, x->scratch.data, x->f_header)) !=
            LXW_NO_ERROR)
            return lxw_fail(err, "writing the header", e);
    }
    return 0;
}

/* Autofilter over the header and the rows of the current sheet. */
static void finish_sheet(struct fx_writer *w, struct xlsx_out *x)
{
    if (x->ws)
        worksheet_autofilter(x->ws, 0, 0, (lxw_row_t)x->rows_here, (lxw_col_t)(w->ncols - 1));
}

static void xlsx_free(struct xlsx_out *x)
{
    fx_buf_cleanup(&x->scratch);
    free(x->path);
    free(x->tmpdir);
    free(x);
}

static int xlsx_open(struct fx_writer *w, const char *path, struct fx_err *err)
{
    if (w->ncols > LXW_COL_MAX)
        return fx_err_set(err, FX_EINVAL, "xlsx holds at most %d columns, got %zu", LXW_COL_MAX,
                          w->ncols);
    if (w->o.tz && fx_tz_set(w->o.tz) != 0)
        return fx_err_set(err, FX_EINVAL, "unknown time zone '%s'", w->o.tz);
    /* fail now, with the system's reason, rather than at close after every row */
    FILE *probe = fopen(path, "wb");
    if (!probe)
        return fx_err_set(err, FX_EIO, "%s: %s", path, strerror(errno));
    fclose(probe);

    struct xlsx_out *x = fx_calloc(1, sizeof(*x));
    fx_buf_init(&x->scratch, 0);
    x->path = fx_strdup(path);
    const char *tmp = w->o.tmpdir ? w->o.tmpdir : getenv("TMPDIR");
    x->tmpdir = tmp && *tmp ? fx_strdup(tmp) : NULL;
    x->sheet_rows = w->o.sheet_rows ? w->o.sheet_rows : LXW_ROW_MAX - 1;
    if (x->sheet_rows > LXW_ROW_MAX - 1)
        x->sheet_rows = LXW_ROW_MAX - 1;
    sheet_base(w->o.sheet_name, x->base);

    lxw_workbook_options wo = {.constant_memory = LXW_TRUE, .tmpdir = x->tmpdir};
    x->wb = workbook_new_opt(path, &wo);
    if (!x->wb) {
        xlsx_free(x);
        return fx_err_set(err, FX_EIO, "%s: cannot create the workbook", path);
    }
    x->f_header = workbook_add_format(x->wb);
    format_set_bold(x->f_header);
    format_set_pattern(x->f_header, LXW_PATTERN_SOLID);
    format_set_bg_color(x->f_header, 0xD9E1F2);
    format_set_bottom(x->f_header, LXW_BORDER_THIN);
    x->f_money = workbook_add_format(x->wb);
    format_set_num_format(x->f_money, "[$R$-416] #,##0.00");
    x->f_date = workbook_add_format(x->wb);
    format_set_num_format(x->f_date, "dd/mm/yyyy");
    x->f_datetime = workbook_add_format(x->wb);
    format_set_num_format(x->f_datetime, "dd/mm/yyyy hh:mm:ss");
    w->impl = x;
    int rc = add_sheet(w, x, err);
    if (rc != 0) {
        struct fx_err ignored;
        w->ops->close(w, &ignored);
        return rc;
    }
    return 0;
}

/* Naive local text of Unix time t read back as UTC by the zone of fx_tz_set. */
static int local_to_utc(int64_t local, int64_t *utc)
{
    char buf[21];
    fx_format_datetime(local, buf); /* "YYYY-MM-DDTHH:MM:SSZ": drop the Z */
    return fx_parse_datetime(buf, 19, utc, NULL);
}

static int64_t utc_to_local(int64_t u)
{
    int64_t back;
    if (local_to_utc(u, &back) != 0)
        return u; /* no zone data: stay in UTC */
    int64_t o1 = u - back;
    if (local_to_utc(u + o1, &back) == 0 && back == u)
        return u + o1;
    int64_t o2 = u + o1 - back;
    if (local_to_utc(u + o2, &back) == 0 && back == u)
        return u + o2;
    return u + (o1 < o2 ? o1 : o2); /* second pass through a repeated hour */
}

static void to_lxw(int64_t t, lxw_datetime *dt)
{
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    fx_civil_from_days((int32_t)days, &dt->year, &dt->month, &dt->day);
    dt->hour = (int)(secs / 3600);
    dt->min = (int)(secs / 60 % 60);
    dt->sec = (double)(secs % 60);
}

static int parse_i64(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
        return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

static lxw_error write_text(struct xlsx_out *x, lxw_row_t r, lxw_col_t c, const char *v)
{
    size_t n = strlen(v);
    size_t ok = fx_utf8_check(v, n);
    if (ok == n && n <= XLSX_STR_MAX)
        return worksheet_write_string(x->ws, r, c, v, NULL);
    /* invalid bytes would make the XML unreadable: replace them; cut overlong cells */
    fx_buf_reset(&x->scratch);
    const char *p = v, *end = v + n;
    while (p < end && x->scratch.len < XLSX_STR_MAX) {
        size_t good = fx_utf8_check(p, (size_t)(end - p));
        fx_buf_append(&x->scratch, p, good);
        p += good;
        if (p < end) {
            fx_buf_putc(&x->scratch, '?');
            p++;
        }
    }
    size_t keep = utf8_cut(x->scratch.data, x->scratch.len, XLSX_STR_MAX);
    x->scratch.data[keep] = '\0';
    return worksheet_write_string(x->ws, r, c, x->scratch.data, NULL);
}

static lxw_error write_cell(struct xlsx_out *x, lxw_row_t r, lxw_col_t c, enum fx_col_kind kind,
                            const char *v)
{
    int64_t i;
    lxw_datetime dt;
    switch (kind) {
    case FX_COL_MONEY:
        if (parse_i64(v, &i) == 0)
            return worksheet_write_number(x->ws, r, c, (double)i / 100.0, x->f_money);
        break;
    case FX_COL_INT:
        if (parse_i64(v, &i) == 0)
            return worksheet_write_number(x->ws, r, c, (double)i, NULL);
        break;
    case FX_COL_DECIMAL: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (!*end && !errno && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))
            return worksheet_write_number(x->ws, r, c, d, NULL);
        break;
    }
    case FX_COL_DATE: {
        int32_t days;
        if (fx_parse_date(v, strlen(v), &days, NULL) == 0) {
            to_lxw((int64_t)days * 86400, &dt);
            return worksheet_write_datetime(x->ws, r, c, &dt, x->f_date);
        }
        break;
    }
    case FX_COL_DATETIME:
        if (fx_parse_datetime(v, strlen(v), &i, NULL) == 0) {
            to_lxw(utc_to_local(i), &dt);
            return worksheet_write_datetime(x->ws, r, c, &dt, x->f_datetime);
        }
        break;
    case FX_COL_BOOL: {
        int b;
        if (fx_parse_bool(v, strlen(v), &b, NULL) == 0)
            return worksheet_write_boolean(x->ws, r, c, b, NULL);
        break;
    }
    case FX_COL_TEXT:
        break;
    }
    return write_text(x, r, c, v);
}

static int xlsx_row(struct fx_writer *w, const char *const *values)
{
    struct xlsx_out *x = w->impl;
    if (x->rows_here >= x->sheet_rows) {
        finish_sheet(w, x);
        int rc = add_sheet(w, x, &w->err);
        if (rc != 0)
            return rc;
    }
    lxw_row_t r = (lxw_row_t)(x->rows_here + 1);
    for (size_t i = 0; i < w->ncols; i++) {
        const char *v = values[i];
        if (!v || !*v)
            continue;
        lxw_error e = write_cell(x, r, (lxw_col_t)i, w->cols[i].kind, v);
        if (e != LXW_NO_ERROR) {
            fx_err_set(&w->err, FX_EIO, "writing row %llu, column %s: %s",
                       (unsigned long long)w->rows + 1, w->cols[i].name, lxw_strerror(e));
            return FX_EIO;
        }
    }
    x->rows_here++;
    return 0;
}

static int xlsx_close(struct fx_writer *w, struct fx_err *err)
{
    struct xlsx_out *x = w->impl;
    if (!x)
        return 0;
    finish_sheet(w, x);
    lxw_error e = workbook_close(x->wb);
    int rc = 0;
    if (e != LXW_NO_ERROR)
        rc = fx_err_set(err, FX_EIO, "%s: %s", x->path, lxw_strerror(e));
    xlsx_free(x);
    w->impl = NULL;
    return rc;
}

const struct fx_writer_ops fx_writer_xlsx_ops = {
    .name = "xlsx",
    .stdout_ok = 0,
    .open = xlsx_open,
    .row = xlsx_row,
    .close = xlsx_close,
};
