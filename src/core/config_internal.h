/* SPDX-License-Identifier: MIT */
/*
 * Internals of the configuration module shared with its unit test: value
 * parsing for every key type (the table has no BOOL key yet, so the test
 * drives the parser with its own key rows) and the "did you mean" helper.
 */
#ifndef FLUXO_CORE_CONFIG_INTERNAL_H
#define FLUXO_CORE_CONFIG_INTERNAL_H

#include "fluxo/config.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Parse text as a value of key k (type, bounds, choices). On success stores
 * the number (INT; SIZE in bytes; MS in milliseconds; BOOL 0/1; 0 for
 * STRING) in *num and returns 0; otherwise writes "expected ..." into why and
 * returns FX_ECONFIG.
 */
int fx__config_parse_value(const struct fx_config_key *k, const char *text, int64_t *num, char *why,
                           size_t cap);

/*
 * Closest key to an unknown name (env_style: compare with FLUXO_* variable
 * names instead), written into out ("data_dir" or "FLUXO_DATA_DIR"), or ""
 * when nothing is close. Returns out.
 */
const char *fx__config_suggest(const char *name, int env_style, char *out, size_t cap);

/* FLUXO_<NAME> for key name: upper case, '.' -> '_'. Returns out. */
const char *fx__config_env_name(const char *name, char *out, size_t cap);

#endif
