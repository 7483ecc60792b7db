/* SPDX-License-Identifier: MIT */
/*
 * Internals of the spreadsheet readers (src/format/xlsx_read.c,
 * src/format/xls_read.c) shared with their unit tests and fuzz targets:
 * the sheet block size and workbook-wide limits (test hooks), the number and
 * date formatting both readers use, and the OLE encryption sniffer.
 */
#ifndef FLUXO_FORMAT_XLSX_INT_H
#define FLUXO_FORMAT_XLSX_INT_H

#include <stddef.h>

/* The XLSX reader inflates ZIP entries in blocks of this size (256 KiB). */
#define FX__XLSX_BLOCK_MAX (256u << 10)

/*
 * Bytes inflated and handed to the XML parser at a time: FX__XLSX_BLOCK_MAX
 * by default; 0 or values above it mean FX__XLSX_BLOCK_MAX. A sheet larger
 * than four blocks is parsed in chunks of about one block on two threads, so
 * small blocks make small sheets take that path too. Read when a reader is
 * opened; tests set it before fx_xlsx_reader_open (not thread-safe).
 */
extern size_t fx__xlsx_block_size;

/*
 * Workbook-wide limits of the XLSX reader (fatal when exceeded), and the
 * memory budget of the shared-string table: its text stays in memory up to
 * sst_mem bytes; past that it moves to an unlinked temporary file
 * ($TMPDIR, else /tmp) read back through page caches of sst_mem bytes in all.
 * Each shared string also costs 4 bytes of memory (its offset), so
 * max_sst_count bounds that part (16M strings: 64 MiB).
 */
struct fx__xlsx_limits {
    unsigned long long max_total; /* uncompressed bytes of all parts read (1 GiB) */
    unsigned max_ratio;           /* uncompressed:compressed per entry (200) ... */
    unsigned long long ratio_min; /* ... checked above this many bytes (1 MiB) */
    size_t max_sst_count;         /* shared strings (16M) */
    size_t max_sst_bytes;         /* shared-string text, at most 4 GiB - 1 (1 GiB) */
    size_t sst_mem;               /* shared-string text kept in memory (16 MiB) */
};

/* Current limits, read when a reader is opened; tests may lower them. */
extern struct fx__xlsx_limits fx__xlsx_limits;

/* Buffer size that fits any fx__xlsx_format_double output. */
#define FX__XLSX_NUM_MAX 400

/*
 * Shortest text that reads back as v, as a plain decimal without exponent
 * ("12345678900", "0.30000000000000004", "1000000000000000"); -0 is "0".
 * Returns the length, or 0 when v is not finite.
 */
size_t fx__xlsx_format_double(double v, char out[FX__XLSX_NUM_MAX]);

/*
 * Spreadsheet serial date to ISO text: "YYYY-MM-DD", or with "THH:MM:SS"
 * when the serial has a time part (rounded to the second) or want_time.
 * 1900 system with Excel's leap-year bug, or the 1904 system.
 * Returns the length (out needs 20 bytes), 0 when out of range (negative or
 * after 9999-12-31), -1 for serial 60 in the 1900 system (1900-02-29).
 */
int fx__xlsx_serial_iso(double serial, int date1904, int want_time, char out[24]);

/* Date kind of a number format code: 0 not a date, 1 date, 2 has a time part. */
int fx__xlsx_format_kind(const char *code);

/* 1 when path is an OLE/CFB file with an EncryptionInfo stream (encrypted
 * OOXML), 0 when not, < 0 on I/O error. */
int fx__ole_is_encrypted(const char *path);

#endif
