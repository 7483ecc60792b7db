/* SPDX-License-Identifier: MIT */
/* JSON-lines logger. One write(2) per line so lines from threads never interleave. */
#include "fluxo/log.h"
#include "fluxo/error.h"
#include "fluxo/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum fx_log_level fx__log_level = FX_LOG_INFO;
static int log_plain;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int fx_log_set_level_name(const char *name)
{
    for (int i = 0; i <= FX_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            fx__log_level = (enum fx_log_level)i;
            return 0;
        }
    }
    return FX_EINVAL;
}

void fx_log_set_level(enum fx_log_level level)
{
    fx__log_level = level;
}

void fx_log_set_plain(int plain)
{
    log_plain = plain;
}

void fx__log(enum fx_log_level level, const char *component, const char *correlation_id,
             const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    struct fx_buf b;
    fx_buf_init(&b, 0);
    if (log_plain) {
        fx_buf_printf(&b, "%s %-5s %s: %s%s%s\n", when, level_names[level], component, msg,
                      correlation_id ? " corr=" : "", correlation_id ? correlation_id : "");
    } else {
        fx_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", when,
                      level_names[level]);
        fx_buf_json_str(&b, component, strlen(component));
        if (correlation_id) {
            fx_buf_puts(&b, ",\"correlation_id\":");
            fx_buf_json_str(&b, correlation_id, strlen(correlation_id));
        }
        fx_buf_puts(&b, ",\"msg\":");
        fx_buf_json_str(&b, msg, strlen(msg));
        fx_buf_puts(&b, "}\n");
    }
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
    fx_buf_cleanup(&b);
}
