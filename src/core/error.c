/* SPDX-License-Identifier: MIT */
/* Error code table lookups and the located error record. */
#include "fluxo/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *fx_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define FX__ERR_MSG(name, c, msg)                                                                  \
    case c:                                                                                        \
        return msg;
        FX_ERRNO_MAP(FX__ERR_MSG)
#undef FX__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *fx_errname(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define FX__ERR_NAME(name, c, msg)                                                                 \
    case c:                                                                                        \
        return #name;
        FX_ERRNO_MAP(FX__ERR_NAME)
#undef FX__ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

void fx_err_clear(struct fx_err *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

int fx_err_set(struct fx_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return code;
}

int fx_err_vset_at(struct fx_err *err, int code, const char *source, long row, const char *fmt,
                   va_list ap)
{
    if (!err)
        return code;
    fx_err_clear(err);
    err->code = code;
    err->row = row;
    snprintf(err->source, sizeof(err->source), "%s", source ? source : "");
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    return code;
}

int fx_err_set_at(struct fx_err *err, int code, const char *source, long row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fx_err_vset_at(err, code, source, row, fmt, ap);
    va_end(ap);
    return rc;
}

void fx_err_value(struct fx_err *err, const char *value, size_t len)
{
    if (!err)
        return;
    size_t n = len < sizeof(err->value) - 1 ? len : sizeof(err->value) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        err->value[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    err->value[n] = '\0';
}

size_t fx_err_format(const struct fx_err *err, char *buf, size_t cap)
{
    int n = 0;
    if (!err || cap == 0)
        return 0;
    n = snprintf(buf, cap, "%s", err->source[0] ? err->source : "-");
    if (err->row > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, ":%ld", err->row);
    if (err->column > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, ":%d", err->column);
    if (err->field[0] && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, ": %s", err->field);
    if ((size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, ": %s",
                      err->reason[0] ? err->reason : fx_strerror(err->code));
    if (err->value[0] && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " (value \"%s\")", err->value);
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
