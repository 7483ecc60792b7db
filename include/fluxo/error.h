/* SPDX-License-Identifier: MIT */
/*
 * Error codes and the user-facing error record.
 *
 * Every function that can fail returns 0 or a negative FX_E* code. The codes
 * and their messages come from one X-macro table so that the enum, the
 * message lookup and the docs never drift apart. Where a user needs to know
 * what went wrong in their data, a struct fx_err carries the source (file,
 * request), the row and column, the field and a human reason.
 */
#ifndef FLUXO_ERROR_H
#define FLUXO_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define FX_ERRNO_MAP(X)                                                                            \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(EIO, -3, "input/output error")                                                               \
    X(ETOOBIG, -4, "value exceeds a configured limit")                                             \
    X(EPARSE, -5, "malformed input")                                                               \
    X(ENOTSUP, -6, "operation not supported by this backend")                                      \
    X(ENOTFOUND, -7, "not found")                                                                  \
    X(EEXIST, -8, "already exists")                                                                \
    X(EBUSY, -9, "resource busy")                                                                  \
    X(ETIMEDOUT, -10, "timed out")                                                                 \
    X(ESTORE, -11, "store error")                                                                  \
    X(EBUS, -12, "bus error")                                                                      \
    X(EENCODING, -13, "invalid text encoding")                                                     \
    X(ESCHEMA, -14, "schema violation")                                                            \
    X(EAGAIN, -15, "try again")                                                                    \
    X(ECONFIG, -16, "invalid configuration")                                                       \
    X(ECONSTRAINT, -17, "constraint violated")                                                     \
    X(EEMPTY, -18, "empty input")                                                                  \
    X(ECLOSED, -19, "closed")                                                                      \
    X(EAUTH, -20, "not authorized")

enum {
    FX_OK = 0,
#define FX__ERR_ENUM(name, code, msg) FX_##name = (code),
    FX_ERRNO_MAP(FX__ERR_ENUM)
#undef FX__ERR_ENUM
};

/* Message for an FX_E* code (or "success" for 0); never NULL. */
const char *fx_strerror(int code);

/* Name of an FX_E* code, e.g. "ETOOBIG"; never NULL. */
const char *fx_errname(int code);

/*
 * A located, human-readable error. All fields are optional: row/column are 0
 * when unknown, strings empty. Fixed-size so it can live on the stack and be
 * copied without ownership questions.
 */
struct fx_err {
    int code;         /* FX_E* */
    long row;         /* 1-based row in the source, 0 = n/a */
    int column;       /* 1-based column, 0 = n/a */
    char source[256]; /* file name, request id... */
    char field[64];   /* schema field or column header */
    char value[128];  /* offending value, truncated */
    char reason[512]; /* why, in plain words */
};

/* Reset an error record to "no error". NULL is allowed. */
void fx_err_clear(struct fx_err *err);

/*
 * Set err->code and a printf-style reason; returns code so callers can write
 * `return fx_err_set(err, FX_EPARSE, "...")`. err may be NULL.
 */
int fx_err_set(struct fx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear err, then set code, source, row and a printf-style reason; returns
 * code. err may be NULL. */
int fx_err_set_at(struct fx_err *err, int code, const char *source, long row, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int fx_err_vset_at(struct fx_err *err, int code, const char *source, long row, const char *fmt,
                   va_list ap) __attribute__((format(printf, 5, 0)));

/* Copy a value into err->value (truncated, made printable). */
void fx_err_value(struct fx_err *err, const char *value, size_t len);

/* Format "source:row:column: field: reason (value)" into buf. */
size_t fx_err_format(const struct fx_err *err, char *buf, size_t cap);

#endif
