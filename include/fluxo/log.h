/* SPDX-License-Identifier: MIT */
/*
 * Structured logging: one JSON object per line on stderr with time, level,
 * component, correlation id and message. The level check happens in the macro,
 * before any argument is evaluated or formatted.
 */
#ifndef FLUXO_LOG_H
#define FLUXO_LOG_H

enum fx_log_level { FX_LOG_DEBUG = 0, FX_LOG_INFO, FX_LOG_WARN, FX_LOG_ERROR, FX_LOG_OFF };

extern enum fx_log_level fx__log_level;

/* Set the threshold; "debug", "info", "warn", "error", "off". Returns 0 or FX_EINVAL. */
int fx_log_set_level_name(const char *name);
void fx_log_set_level(enum fx_log_level level);
/* Log as plain text lines instead of JSON (for terminals). */
void fx_log_set_plain(int plain);

void fx__log(enum fx_log_level level, const char *component, const char *correlation_id,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define fx_log(level, component, corr, ...)                                                        \
    do {                                                                                           \
        if ((level) >= fx__log_level)                                                              \
            fx__log((level), (component), (corr), __VA_ARGS__);                                    \
    } while (0)

#define fx_log_debug(comp, ...) fx_log(FX_LOG_DEBUG, comp, NULL, __VA_ARGS__)
#define fx_log_info(comp, ...) fx_log(FX_LOG_INFO, comp, NULL, __VA_ARGS__)
#define fx_log_warn(comp, ...) fx_log(FX_LOG_WARN, comp, NULL, __VA_ARGS__)
#define fx_log_error(comp, ...) fx_log(FX_LOG_ERROR, comp, NULL, __VA_ARGS__)

#endif
