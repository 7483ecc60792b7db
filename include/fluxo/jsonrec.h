/* SPDX-License-Identifier: MIT */
/*
 * JSON records: a push parser for the body of `POST /api/v1/pipelines/{name}/records`.
 * The body is one JSON object, a JSON array of objects, or NDJSON (one object per line),
 * fed in chunks of any size split anywhere; each object becomes one record of flat
 * name/cell pairs (nested objects flattened with "."), delivered to a callback. Memory
 * is bounded by the options (one record's text and cells at most), never by the body
 * size, and the records delivered never depend on how the body was split.
 *
 * Cells (struct fx_cell, fluxo/reader.h): a string is its text (FX_CELL_STRING; the
 * empty string is FX_CELL_EMPTY, as in every other reader); an integer its exact decimal
 * digits and a real the shortest decimal text that reads back to the same double
 * (3500.10 -> "3500.1", 1e3 -> "1000"), both FX_CELL_NUMBER; true/false FX_CELL_BOOL
 * "true"/"false"; null FX_CELL_EMPTY "". A nested object contributes its leaves as
 * "outer.inner" (an empty nested object contributes nothing); an array value is refused.
 * Strings must be valid UTF-8 and may not hold \u0000 or an unpaired surrogate escape;
 * integers must fit 64 bits; a key may appear once per object, and two fields may not
 * share a name once flattened ({"a.b":1,"a":{"b":2}}).
 *
 * NDJSON lines may end in LF or CRLF; blank lines are skipped (but counted in line
 * numbers); a line may start with the RS byte of RFC 7464, so application/json-seq
 * bodies parse as NDJSON too. A leading UTF-8 BOM is skipped in every mode.
 *
 * Not thread-safe: one parser per request.
 */
#ifndef FLUXO_JSONREC_H
#define FLUXO_JSONREC_H

#include "fluxo/error.h"
#include "fluxo/reader.h"

#include <stddef.h>

struct fx_jsonrec_opts {
    int ndjson;              /* 1: NDJSON; 0: a JSON object or array */
    size_t max_record_bytes; /* one object's text (default 1 MiB) */
    size_t max_fields;       /* keys per object after flattening (default 1024) */
    size_t max_depth;        /* nesting: 1 = flat objects only (default 8) */
};

/* Fill o with the defaults (JSON, not NDJSON). In options given to fx_jsonrec_new a
 * limit of 0 also means its default. */
void fx_jsonrec_opts_init(struct fx_jsonrec_opts *o);

/*
 * One record: parallel arrays of n names and n cells, in the order of the keys in the
 * object (depth first for nested objects). Everything is parser-owned and valid only
 * during the callback. index: 1-based record number in the body (bad records count);
 * line: 1-based line where the record starts (NDJSON: its line; array: line of its '{').
 */
struct fx_jsonrec {
    size_t index;
    long line;
    size_t n;
    const char *const *names;
    const struct fx_cell *cells;
};

/* Called for each good record. Return 0 to go on, non-zero to stop (the value is then
 * returned from fx_jsonrec_feed / fx_jsonrec_finish). */
typedef int (*fx_jsonrec_cb)(void *ud, const struct fx_jsonrec *rec);

/*
 * Called for a record that is not valid JSON, not an object, has an array value, a
 * duplicate key, two fields with the same flattened name or a value out of range, or
 * is over a limit (NDJSON: a line over max_record_bytes). Parsing goes on with the next
 * record (NDJSON: the next line; array: the next element, found by the scanner).
 * err->code is FX_EPARSE (syntax, duplicate key or field, bad escape, number out of
 * range, not an object), FX_EENCODING (invalid UTF-8), FX_ENOTSUP (array value) or
 * FX_ETOOBIG (max_fields, max_depth, or names and values over 8 x max_record_bytes once
 * flattened); err->row = index, err->column = column in the body of what is wrong,
 * err->field the field when one is at fault, err->reason names the record and where
 * it is wrong, as the HTTP API shows it, e.g.
 * "record 3 (line 4, column 17): ',' or '}' expected after the value, found 'x'".
 * Return non-zero to stop.
 */
typedef int (*fx_jsonrec_bad_cb)(void *ud, size_t index, const struct fx_err *err);

struct fx_jsonrec_parser;

/*
 * New parser. o may be NULL (defaults: JSON). cb is required; bad may be NULL, in
 * which case the first bad record is a fatal error (its code returned by feed/finish,
 * err filled as for the callback). Never returns NULL (aborts on out of memory).
 */
struct fx_jsonrec_parser *fx_jsonrec_new(const struct fx_jsonrec_opts *o, fx_jsonrec_cb cb,
                                         fx_jsonrec_bad_cb bad, void *ud);

/*
 * Feed the next len bytes of the body; calls the callbacks for every record completed.
 * Returns 0, a callback's non-zero value (parsing stops), or a negative FX_E* for a fatal
 * error of the whole body: err->row and err->column are then the line and column where
 * it was found, and err->reason says what without repeating them (fx_err_format prints
 * both; err->source is empty): top level not an object/array, an array element that is
 * not an object, garbage after the closing ']' or after the object, a record over
 * max_record_bytes in an array or as the whole body (FX_ETOOBIG: the array cannot be
 * resynchronised without reading the element). Once stopped or failed, every later
 * call returns the same value (and the same err).
 */
int fx_jsonrec_feed(struct fx_jsonrec_parser *p, const char *data, size_t len, struct fx_err *err);

/*
 * End of body: delivers a last NDJSON line without '\n'; fails (FX_EPARSE) if an array
 * or object is unterminated (err->row/column: the end of the body; the reason says
 * where the array or object starts), or with FX_EEMPTY if the body had no record at all
 * (empty, only whitespace or blank lines; row and column 0): "empty body: expected a
 * JSON object, an array of objects or NDJSON". An empty array "[]" is a valid body with
 * no records.
 */
int fx_jsonrec_finish(struct fx_jsonrec_parser *p, struct fx_err *err);

/*
 * Parallel NDJSON: after fx_jsonrec_defer_lines, each NDJSON line that would be parsed as
 * a record is handed to line_cb as text instead (without its '\n', '\r' and RS prefix),
 * with the index, line and column the record would have; everything else (blank lines,
 * lines over max_record_bytes, line numbers, the empty-body check) stays with the parser.
 * The text is valid only during the call. Another parser, with the same options, on any
 * thread, then parses it with fx_jsonrec_parse_line: its callbacks see exactly what this
 * parser's would have (record, or bad record with the same error). No effect on JSON
 * (object or array) bodies.
 */
struct fx_jsonrec_line {
    const char *s;
    size_t len;
    size_t index;
    long line, col;
};
typedef int (*fx_jsonrec_line_cb)(void *ud, const struct fx_jsonrec_line *ln);
void fx_jsonrec_defer_lines(struct fx_jsonrec_parser *p, fx_jsonrec_line_cb line_cb);
/* Parse one deferred line: 0, or the callback's non-zero value (or the bad record's
 * code when the parser has no bad callback). */
int fx_jsonrec_parse_line(struct fx_jsonrec_parser *p, const struct fx_jsonrec_line *ln,
                          struct fx_err *err);

/* Free the parser; NULL is a no-op. */
void fx_jsonrec_free(struct fx_jsonrec_parser *p);

#endif
