/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one typed table of keys (src/core/config_keys.c) drives
 * parsing, validation, `fluxo config --help` and docs/configuration.md.
 *
 * Sources, highest precedence first: command-line flags, FLUXO_* environment
 * variables, a .env file (KEY=VALUE lines, FLUXO_* names), the YAML file
 * (fluxo.yaml or --config / FLUXO_CONFIG), defaults. Key "data_dir" is
 * FLUXO_DATA_DIR in the environment and data_dir: in YAML; dotted YAML
 * nesting is allowed ("ingest: {chunk_rows: 500}" is key ingest.chunk_rows,
 * env FLUXO_INGEST_CHUNK_ROWS). An unknown key in the file or .env is an error
 * naming the file and line; an invalid value names where it came from.
 */
#ifndef FLUXO_CONFIG_H
#define FLUXO_CONFIG_H

#include "fluxo/error.h"

#include <stdint.h>
#include <stdio.h>

enum fx_cfg_type { FX_CFG_STRING = 0, FX_CFG_INT, FX_CFG_BOOL, FX_CFG_SIZE, FX_CFG_MS };

struct fx_config_key {
    const char *name; /* "data_dir", "ingest.chunk_rows" */
    enum fx_cfg_type type;
    const char *def;     /* default as text; NULL = unset */
    int64_t min, max;    /* for numeric types (inclusive); 0,0 = unbounded */
    int secret;          /* masked in dumps */
    const char *help;    /* one line */
    const char *choices; /* STRING only: allowed values "a|b|c"; NULL = any text */
};

/* The table (NULL-name terminated). */
extern const struct fx_config_key fx_config_keys[];

/* The table entry for name, or NULL when name is not a key. */
const struct fx_config_key *fx_config_key_find(const char *name);

struct fx_config;

/*
 * Load defaults, then file (path, or FLUXO_CONFIG, or ./fluxo.yaml when it
 * exists), then dotenv (path, or ./.env when it exists), then the process
 * environment. Flags are applied afterwards with fx_config_set. A file named
 * by path or FLUXO_CONFIG must exist. FLUXO_* environment variables that are
 * not keys are ignored with a warning (FLUXO_CONFIG, FLUXO_BIN,
 * FLUXO_SOURCE_DIR and FLUXO_TEST_* silently). An empty value, or YAML null,
 * means "the default" (the origin still names where it was set).
 * On success *out is a new config (free with fx_config_free); on failure
 * returns FX_ECONFIG (or FX_ETOOBIG for an oversized file), *out is NULL and
 * err says where (source, row) and why. Does not block beyond reading files.
 */
int fx_config_load(const char *file, const char *dotenv, struct fx_config **out,
                   struct fx_err *err);
void fx_config_free(struct fx_config *c);

/*
 * Set from a flag (origin "flag"); validates type and bounds. On error
 * (FX_ECONFIG: unknown key, bad value) the previous value is kept.
 */
int fx_config_set(struct fx_config *c, const char *name, const char *value, struct fx_err *err);

/*
 * Typed getters; name must be in the table and of a fitting type (abort
 * otherwise: programming error). Strings stay valid until the next
 * fx_config_set of that key or fx_config_free.
 */
/* Any type: the text as written (NULL when unset). */
const char *fx_config_str(const struct fx_config *c, const char *name);
/* INT; SIZE in bytes; MS in milliseconds; BOOL as 0/1. */
int64_t fx_config_int(const struct fx_config *c, const char *name);
/* BOOL only: 0 or 1. */
int fx_config_bool(const struct fx_config *c, const char *name);
/*
 * Where the value came from: "default", "flag", "env FLUXO_X", "<file>:<line>"
 * (YAML or .env). Valid until the next fx_config_set of that key.
 */
const char *fx_config_origin(const struct fx_config *c, const char *name);

/* Print every key with value (secrets masked) and origin. */
void fx_config_dump(const struct fx_config *c, FILE *out);
/* Print the key table as help text. */
void fx_config_help(FILE *out);
/* Print the key table as the Markdown table of docs/configuration.md. */
void fx_config_doc_markdown(FILE *out);

#endif
