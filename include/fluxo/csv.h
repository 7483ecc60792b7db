/* SPDX-License-Identifier: MIT */
/*
 * Streaming CSV (RFC 4180 plus what real files do): a resumable push parser
 * that accepts input in chunks of any size, split anywhere (inside quotes,
 * between CR and LF, inside a UTF-8 sequence), and a file reader on top of it
 * that plugs into the record-reader interface (fluxo/reader.h).
 *
 * Accepted: ',' ';' or tab delimiters (detected from the first record when
 * opts->delimiter is 0), quoted fields with doubled quotes and embedded
 * newlines, LF / CRLF / CR line ends, a UTF-8 BOM, Windows-1252 text
 * (transcoded to UTF-8 with iconv). Caps: line, field, and field count.
 */
#ifndef FLUXO_CSV_H
#define FLUXO_CSV_H

#include "fluxo/reader.h"

#include <stddef.h>

struct fx_csv;

/* New parser; opts may be NULL (defaults). Input given to fx_csv_parse must be UTF-8. */
struct fx_csv *fx_csv_new(const struct fx_reader_opts *opts);
void fx_csv_free(struct fx_csv *p);

/*
 * Parse from data[0..len). Stops as soon as one record is complete:
 * returns 1 with *consumed bytes used and rec filled (valid until the next
 * call); returns 0 when all len bytes were consumed without completing a
 * record (feed more, or call fx_csv_finish at end of input); < 0 on a fatal
 * error (err filled). Row-level problems come back as rec->bad (see reader.h).
 */
int fx_csv_parse(struct fx_csv *p, const char *data, size_t len, size_t *consumed,
                 struct fx_record *rec, struct fx_err *err);

/* End of input: returns 1 with the last record if one was pending, else 0. */
int fx_csv_finish(struct fx_csv *p, struct fx_record *rec, struct fx_err *err);

/* The delimiter in use (detected or configured); 0 before the first record. */
char fx_csv_delimiter(const struct fx_csv *p);

/* Open a CSV file as a record reader (used by fx_reader_open). */
int fx_csv_reader_open(const char *path, const struct fx_reader_opts *opts, struct fx_reader **out,
                       struct fx_err *err);

#endif
