/* SPDX-License-Identifier: MIT */
/*
 * Legacy XLS reader (BIFF5/BIFF8 in an OLE/CFB container) behind the
 * record-reader interface, on libfreexl. freexl_open loads the workbook
 * stream and its shared strings into memory and indexes every cell of the
 * selected sheet, so memory is proportional to the file (XLS files are at
 * most 65536 rows x 256 columns, tens of MB at worst); rows are then built
 * one at a time from freexl_get_cell_value. Numbers get the same exact plain
 * decimal text as the XLSX reader; freexl already turns date-formatted cells
 * into "YYYY-MM-DD[ HH:MM:SS]" text, which becomes ISO with a 'T'.
 *
 * An encrypted OOXML workbook is also an OLE container (EncryptionInfo +
 * EncryptedPackage streams), so the opener looks for that first and refuses
 * it as encrypted rather than as a broken XLS.
 */
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/xlsx.h"
#include "format/xlsx_int.h"

#include <errno.h>
#include <fcntl.h>
#include <freexl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* OLE encryption sniffing                                                   */

/* Directory entry named name (UTF-16LE, 128-byte entry) at e? */
static int dir_entry_is(const unsigned char *e, const char *name)
{
    size_t n = strlen(name);
    unsigned namelen = (unsigned)e[64] | (unsigned)e[65] << 8;
    if (namelen != 2 * (n + 1) || e[66] != 2) /* bytes incl. NUL; type 2 = stream */
        return 0;
    for (size_t i = 0; i < n; i++)
        if (e[2 * i] != (unsigned char)name[i] || e[2 * i + 1] != 0)
            return 0;
    return 1;
}

/*
 * Directory entries are 128 bytes aligned on sector boundaries (sectors are
 * 512 or 4096 bytes after a 512-byte header), so looking at every 128-byte
 * slot of the file finds them without walking the FAT chains; a stream entry
 * named EncryptionInfo is what Office writes for an encrypted OOXML package.
 */
int fx__ole_is_encrypted(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    enum { BLK = 64 << 10 };
    unsigned char *buf = fx_malloc(BLK);
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf, BLK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t o = 0; o + 128 <= n; o += 128)
            if (buf[o] == 'E' && dir_entry_is(buf + o, "EncryptionInfo")) {
                found = 1;
                break;
            }
        if (found || n < BLK)
            break;
    }
    free(buf);
    close(fd);
    return found;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Check the OLE directory before freexl sees it: libfreexl 1.0.6 converts
 * directory entry names with a length taken from the file and overflows a
 * stack buffer when that length is corrupt (found by fuzz_xls). Walks the
 * directory chain through the FAT sectors listed in the header (files over
 * ~7 MB keep more FAT sectors elsewhere; their later directory sectors are
 * not checked). Returns 0 when fine, -1 when an entry is invalid.
 */
static int ole_directory_ok(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0; /* freexl reports the I/O error */
    unsigned char hdr[512], sec[4096], fat[4096];
    int ok = 0;
    if (fread(hdr, 1, sizeof(hdr), f) != sizeof(hdr))
        goto out;
    unsigned shift = (unsigned)hdr[30] | (unsigned)hdr[31] << 8;
    if (shift != 9 && shift != 12)
        goto out;
    size_t ssz = (size_t)1 << shift;
    uint32_t nfat = le32(hdr + 44), dir = le32(hdr + 48);
    for (int guard = 0; dir < 0xFFFFFFFAu && guard < 4096; guard++) {
        if (fseek(f, (long)((dir + 1ull) << shift), SEEK_SET) != 0 || fread(sec, 1, ssz, f) != ssz)
            break; /* truncated: freexl refuses it */
        for (size_t o = 0; o < ssz; o += 128) {
            unsigned namelen = (unsigned)sec[o + 64] | (unsigned)sec[o + 65] << 8;
            if (namelen > 64 || namelen % 2) /* unused entries too: freexl reads them */
                goto out;
        }
        uint32_t per = (uint32_t)(ssz / 4), idx = dir / per;
        if (idx >= nfat || idx >= 109)
            break;
        uint32_t fs = le32(hdr + 76 + 4 * idx);
        if (fs >= 0xFFFFFFFAu || fseek(f, (long)((fs + 1ull) << shift), SEEK_SET) != 0 ||
            fread(fat, 1, ssz, f) != ssz)
            break;
        dir = le32(fat + 4 * (dir % per));
    }
    ok = 1;
out:
    fclose(f);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */

struct xls {
    char *path;
    const void *h;
    unsigned rows, cols; /* counts */
    unsigned next_row;   /* 0-based */
    size_t max_line, max_field, max_fields;
    struct fx_buf text; /* the row's cell text */
    struct fx_cell *cells;
    size_t *coff;
};

static int xfail(const char *path, struct fx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int xfail(const char *path, struct fx_err *err, int code, const char *fmt, ...)
{
    if (err) {
        fx_err_clear(err);
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
        va_end(ap);
        snprintf(err->source, sizeof(err->source), "%s", path);
    }
    return code;
}

static const char *freexl_reason(int rc)
{
    switch (rc) {
    case FREEXL_FILE_NOT_FOUND:
        return "file not found";
    case FREEXL_INSUFFICIENT_MEMORY:
        return "out of memory";
    case FREEXL_INVALID_CFBF_HEADER:
    case FREEXL_CFBF_INVALID_SIGNATURE:
    case FREEXL_CFBF_INVALID_SECTOR_SIZE:
        return "not a valid OLE container";
    case FREEXL_CFBF_READ_ERROR:
    case FREEXL_CFBF_SEEK_ERROR:
        return "read error (truncated file?)";
    case FREEXL_CFBF_EMPTY_FAT_CHAIN:
    case FREEXL_CFBF_ILLEGAL_FAT_ENTRY:
    case FREEXL_INVALID_MINI_STREAM:
    case FREEXL_CFBF_ILLEGAL_MINI_FAT_ENTRY:
        return "corrupt OLE container (bad allocation table)";
    case FREEXL_BIFF_INVALID_BOF:
        return "corrupt workbook (invalid BOF record)";
    case FREEXL_BIFF_INVALID_SST:
    case FREEXL_BIFF_ILLEGAL_SST_INDEX:
        return "corrupt workbook (invalid shared strings)";
    case FREEXL_BIFF_WORKBOOK_NOT_FOUND:
        return "OLE file without an Excel workbook stream (not an XLS file)";
    case FREEXL_INVALID_CHARACTER:
    case FREEXL_UNSUPPORTED_CHARSET:
        return "text in an unsupported or invalid code page";
    case FREEXL_ILLEGAL_RK_VALUE:
        return "corrupt numeric value";
    case FREEXL_CRAFTED_FILE:
        return "severely corrupted (or crafted) file";
    default:
        return "unreadable workbook";
    }
}

/* Append one cell's text at position col (0-based) of the row. */
static void put(struct xls *x, size_t col, const char *s, size_t n, enum fx_cell_type t)
{
    x->coff[col] = x->text.len;
    x->cells[col].len = n;
    x->cells[col].type = n ? t : FX_CELL_EMPTY;
    fx_buf_append(&x->text, s, n);
    fx_buf_putc(&x->text, '\0');
}

static int xls_next(void *self, struct fx_record *rec, struct fx_err *err)
{
    struct xls *x = self;
    while (x->next_row < x->rows) {
        unsigned r = x->next_row++;
        fx_buf_reset(&x->text);
        size_t ncells = 0;
        int bad = 0;
        fx_err_clear(&rec->err);
        for (unsigned c = 0; c < x->cols && !bad; c++) {
            FreeXL_CellValue v;
            int rc = freexl_get_cell_value(x->h, r, (unsigned short)c, &v);
            if (rc == FREEXL_ILLEGAL_CELL_ROW_COL)
                break;
            if (rc != FREEXL_OK)
                return xfail(x->path, err, FX_EPARSE, "row %u column %u: %s", r + 1, c + 1,
                             freexl_reason(rc));
            char num[FX__XLSX_NUM_MAX];
            const char *s = NULL;
            size_t n = 0;
            enum fx_cell_type t = FX_CELL_STRING;
            char date[24];
            switch (v.type) {
            case FREEXL_CELL_INT:
                n = (size_t)snprintf(num, sizeof(num), "%d", v.value.int_value);
                s = num;
                t = FX_CELL_NUMBER;
                break;
            case FREEXL_CELL_DOUBLE:
                n = fx__xlsx_format_double(v.value.double_value, num);
                s = num;
                t = FX_CELL_NUMBER;
                break;
            case FREEXL_CELL_TEXT:
            case FREEXL_CELL_SST_TEXT:
                s = v.value.text_value ? v.value.text_value : "";
                n = strlen(s);
                break;
            case FREEXL_CELL_DATE:
            case FREEXL_CELL_DATETIME:
            case FREEXL_CELL_TIME:
                s = v.value.text_value ? v.value.text_value : "";
                if (v.type == FREEXL_CELL_TIME)
                    snprintf(date, sizeof(date), "1899-12-31T%.8s", s);
                else
                    snprintf(date, sizeof(date), "%.19s", s);
                if (date[10] == ' ')
                    date[10] = 'T';
                s = date;
                n = strlen(date);
                t = FX_CELL_DATE;
                break;
            default:
                break;
            }
            if (!n)
                continue;
            if (c >= x->max_fields) {
                fx_err_set(&rec->err, FX_ETOOBIG, "more than %zu cells (max_fields)",
                           x->max_fields);
                rec->err.column = (int)c + 1;
                bad = 1;
                break;
            }
            if (n > x->max_field) {
                fx_err_set(&rec->err, FX_ETOOBIG, "cell longer than %zu bytes (max_field_bytes)",
                           x->max_field);
                rec->err.column = (int)c + 1;
                bad = 1;
                break;
            }
            for (size_t i = ncells; i < c; i++)
                put(x, i, "", 0, FX_CELL_EMPTY);
            put(x, c, s, n, t);
            ncells = (size_t)c + 1;
            if (x->text.len > x->max_line + x->cols) {
                fx_err_set(&rec->err, FX_ETOOBIG, "row longer than %zu bytes (max_line_bytes)",
                           x->max_line);
                rec->err.column = (int)c + 1;
                bad = 1;
            }
        }
        if (!bad && ncells == 0)
            continue; /* empty row */
        rec->row = (long)r + 1;
        rec->cells = x->cells;
        rec->bad = bad;
        if (bad) {
            rec->ncells = 0;
            rec->err.row = rec->row;
            snprintf(rec->err.source, sizeof(rec->err.source), "%s", x->path);
            return 1;
        }
        for (size_t i = 0; i < ncells; i++)
            x->cells[i].s = x->text.data + x->coff[i];
        rec->ncells = ncells;
        return 1;
    }
    return 0;
}

static void xls_progress(void *self, long long *done, long long *total)
{
    struct xls *x = self;
    *done = x->next_row;
    *total = x->rows;
}

static void xls_free(void *self)
{
    struct xls *x = self;
    if (!x)
        return;
    if (x->h)
        freexl_close(x->h);
    fx_buf_cleanup(&x->text);
    free(x->cells);
    free(x->coff);
    free(x->path);
    free(x);
}

static const struct fx_reader_ops xls_reader_ops = {
    .name = "xls",
    .next = xls_next,
    .progress = xls_progress,
    .free = xls_free,
};

int fx_xls_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                       struct fx_err *err)
{
    struct fx_reader_opts defaults;
    *out = NULL;
    fx_err_clear(err);
    if (!opts) {
        fx_reader_opts_init(&defaults);
        opts = &defaults;
    }
    int enc = fx__ole_is_encrypted(path);
    if (enc < 0)
        return xfail(path, err, FX_EIO, "cannot open file: %s", strerror(errno));
    if (enc)
        return xfail(path, err, FX_ENOTSUP,
                     "encrypted workbook (password-protected Office file): remove the password "
                     "and save again");
    struct xls *x = fx_calloc(1, sizeof(*x));
    x->path = fx_strdup(path);
    x->max_line = opts->max_line_bytes ? opts->max_line_bytes : 1 << 20;
    x->max_field = opts->max_field_bytes ? opts->max_field_bytes : 64 << 10;
    x->max_fields = opts->max_fields ? opts->max_fields : 1024;
    fx_buf_init(&x->text, 0);
    int rc = 0;
    if (ole_directory_ok(path) != 0) {
        rc = xfail(path, err, FX_EPARSE,
                   "not a readable XLS workbook: corrupt OLE container (bad directory entry)");
        goto out;
    }
    int frc = freexl_open(path, &x->h);
    if (frc != FREEXL_OK) {
        x->h = NULL;
        rc = xfail(path, err, frc == FREEXL_FILE_NOT_FOUND ? FX_EIO : FX_EPARSE,
                   "not a readable XLS workbook: %s", freexl_reason(frc));
        goto out;
    }
    unsigned info = 0;
    if (freexl_get_info(x->h, FREEXL_BIFF_PASSWORD, &info) == FREEXL_OK &&
        info == FREEXL_BIFF_OBFUSCATED) {
        rc = xfail(path, err, FX_ENOTSUP,
                   "encrypted workbook (password-protected XLS): remove the password and save "
                   "again");
        goto out;
    }
    unsigned nsheets = 0;
    if (freexl_get_info(x->h, FREEXL_BIFF_SHEET_COUNT, &nsheets) != FREEXL_OK || nsheets == 0) {
        rc = xfail(path, err, FX_EPARSE, "XLS workbook has no worksheets");
        goto out;
    }
    unsigned idx = 0;
    if (opts->sheet) {
        idx = nsheets;
        for (unsigned i = 0; i < nsheets && idx == nsheets; i++) {
            const char *name = NULL;
            if (freexl_get_worksheet_name(x->h, (unsigned short)i, &name) == FREEXL_OK && name &&
                strcasecmp(name, opts->sheet) == 0)
                idx = i;
        }
        if (idx == nsheets) {
            rc = xfail(path, err, FX_ENOTFOUND, "no sheet named \"%s\"", opts->sheet);
            goto out;
        }
    } else if (opts->sheet_index > 0) {
        if ((unsigned)opts->sheet_index > nsheets) {
            rc = xfail(path, err, FX_ENOTFOUND,
                       "sheet_index %d out of range: the workbook has %u sheets", opts->sheet_index,
                       nsheets);
            goto out;
        }
        idx = (unsigned)opts->sheet_index - 1;
    }
    if ((frc = freexl_select_active_worksheet(x->h, (unsigned short)idx)) != FREEXL_OK) {
        rc = xfail(path, err, FX_EPARSE, "cannot select worksheet %u: %s", idx + 1,
                   freexl_reason(frc));
        goto out;
    }
    unsigned short cols = 0;
    if ((frc = freexl_worksheet_dimensions(x->h, &x->rows, &cols)) != FREEXL_OK) {
        rc = xfail(path, err, FX_EPARSE, "cannot read sheet dimensions: %s", freexl_reason(frc));
        goto out;
    }
    x->cols = cols;
    x->cells = fx_calloc(x->cols ? x->cols : 1, sizeof(*x->cells));
    x->coff = fx_calloc(x->cols ? x->cols : 1, sizeof(*x->coff));
    fx_log_debug("xls", "%s: sheet %u, %u rows x %u columns", path, idx + 1, x->rows, x->cols);
    *out = fx_reader_wrap(&xls_reader_ops, x, path);
    return 0;
out:
    xls_free(x);
    return rc;
}
