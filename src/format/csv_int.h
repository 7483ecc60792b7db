/* SPDX-License-Identifier: MIT */
/*
 * Internals of the CSV module (src/format/csv.c) shared with its unit tests and
 * fuzz target only: the file reader's block size, so tests can check that every
 * block split gives the same records, and the module's UTF-8 validator.
 */
#ifndef FLUXO_FORMAT_CSV_INT_H
#define FLUXO_FORMAT_CSV_INT_H

#include <stddef.h>

/* The CSV file reader reads the file in blocks of this size (64 KiB). */
#define FX__CSV_BLOCK_MAX (64u << 10)

/*
 * Bytes of each block the file reader hands to the transcoder and the parser
 * at a time: FX__CSV_BLOCK_MAX by default; values above it or 0 mean
 * FX__CSV_BLOCK_MAX.
 * Encoding detection always looks at the first 64 KiB whatever this is.
 * Read when a reader is opened; tests set it before fx_csv_reader_open (not
 * thread-safe).
 */
extern size_t fx__csv_block_size;

/* Offset of the first invalid UTF-8 sequence in s[0..n) (a sequence cut by the
 * end of the buffer counts as invalid), or n when the whole buffer is valid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
size_t fx__csv_utf8_check(const char *s, size_t n);

/* src[0..n) into dst (cap bytes, NUL-terminated), whole UTF-8 characters only,
 * control bytes and invalid UTF-8 as '?': input quoted in an error reason must
 * not break the JSON or the log line it ends up in. Returns dst. */
const char *fx__text_shown(char *dst, size_t cap, const char *src, size_t n);

#endif
