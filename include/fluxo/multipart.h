/* SPDX-License-Identifier: MIT */
/*
 * multipart/form-data (RFC 7578 over RFC 2046): a push parser for file uploads, fed by
 * the HTTP server in chunks of any size split anywhere. Each part is announced with its
 * form field name, file name and content type, then its data is streamed to a callback
 * as it arrives (never held whole: at most the length of the boundary is held back,
 * while it could still be the start of the next boundary), then its end is signalled.
 *
 * Accepted: CRLF line ends, or bare LF ones throughout (decided by the first boundary
 * line, as some hand-made clients send) and in header lines; a preamble before the first
 * boundary and an epilogue after the last, both ignored; transport padding (blanks)
 * after a boundary; case-insensitive header names and parameter names; quoted and
 * unquoted parameter values (filename="a;b.csv", backslash escapes of '"' and '\');
 * filename* (RFC 5987, UTF-8 or ISO-8859-1) preferred over filename. File names lose any
 * path (both '/' and '\' separate components; "." and ".." become ""). Header bytes and
 * the number of parts are capped.
 *
 * Not thread-safe: one parser per request.
 */
#ifndef FLUXO_MULTIPART_H
#define FLUXO_MULTIPART_H

#include "fluxo/error.h"

#include <stddef.h>

struct fx_multipart;

/*
 * The boundary parameter of a Content-Type header value such as
 * `multipart/form-data; boundary="----x"` into out (cap bytes, NUL included). The media
 * type must be multipart/form-data (any case); the boundary 1 to 70 characters of those
 * RFC 2046 allows (quoted or not). Returns 0; FX_EPARSE (not multipart/form-data, no or a
 * malformed boundary) or FX_ETOOBIG (out too small), with err->reason saying which.
 */
int fx_multipart_boundary(const char *content_type, char *out, size_t cap, struct fx_err *err);

/* One part, as announced to the begin callback; the strings are parser-owned, valid
 * during the callback only. */
struct fx_multipart_part {
    const char *name;         /* form field name from Content-Disposition; never NULL */
    const char *filename;     /* NULL if none; path components stripped; may be "" */
    const char *content_type; /* NULL if none */
};

/* Callbacks (each may be NULL): return 0 to go on, non-zero to stop; the value is then
 * returned by fx_multipart_feed / fx_multipart_finish. data is called zero or more times
 * per part, with pieces of any size (never 0 bytes); end once the part's closing boundary
 * has been seen. */
typedef int (*fx_multipart_begin_cb)(void *ud, const struct fx_multipart_part *part);
typedef int (*fx_multipart_data_cb)(void *ud, const char *data, size_t len);
typedef int (*fx_multipart_end_cb)(void *ud);

struct fx_multipart_opts {
    size_t max_header_bytes; /* a part's header section, line ends included (default 8 KiB) */
    size_t max_parts;        /* parts in the body (default 16) */
};

/* Fill o with the defaults. In options given to fx_multipart_new a 0 also means the
 * default. */
void fx_multipart_opts_init(struct fx_multipart_opts *o);

/* New parser for boundary (without the leading "--"). o may be NULL (defaults). Returns
 * NULL only if boundary is not a valid RFC 2046 boundary (use fx_multipart_boundary to
 * get one); aborts on out of memory. */
struct fx_multipart *fx_multipart_new(const char *boundary, const struct fx_multipart_opts *o,
                                      fx_multipart_begin_cb b, fx_multipart_data_cb d,
                                      fx_multipart_end_cb e, void *ud);

/*
 * Feed the next len bytes of the body, calling the callbacks as parts begin, stream and
 * end. Returns 0, a callback's non-zero value, or a negative FX_E* with err->reason
 * naming the problem and the part (err->row = the part's number, 1-based, or 0 before
 * the first): FX_EPARSE (a part without Content-Disposition, not form-data or without a
 * name, a malformed header line or parameter, a NUL byte in the headers, bytes after a
 * boundary other than blanks and a line end), FX_ETOOBIG (max_header_bytes, max_parts),
 * FX_EENCODING (a name or file name that is not UTF-8). Once stopped or failed, every
 * later call returns the same.
 */
int fx_multipart_feed(struct fx_multipart *m, const char *data, size_t len, struct fx_err *err);

/* End of body: 0 if the closing boundary was seen, else FX_EPARSE ("multipart: body
 * ended before the closing boundary", or "... before the first boundary"). */
int fx_multipart_finish(struct fx_multipart *m, struct fx_err *err);

/* Free the parser; NULL is a no-op. */
void fx_multipart_free(struct fx_multipart *m);

#endif
