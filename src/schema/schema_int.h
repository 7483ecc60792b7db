/* SPDX-License-Identifier: MIT */
/*
 * Internal representation of a compiled pipeline, shared by the compiler
 * (pipeline.c: YAML -> these structs and the upsert plan) and the validator
 * (validate.c: header binding, row validation, dedupe keys).
 *
 * Ownership: everything a pipeline points to lives in its arena and is freed
 * by fx_pipeline_free in one call, which keeps the compiler's many error paths
 * leak-free. A compiled pipeline is never modified afterwards, so it can be
 * shared by threads; bindings reference it and must not outlive it.
 */
#ifndef FLUXO_SCHEMA_INT_H
#define FLUXO_SCHEMA_INT_H

#include "fluxo/mem.h"
#include "fluxo/schema.h"

#include <stddef.h>
#include <stdint.h>

/* Compile-time limits (documented in docs/pipelines.md). */
#define FX__YAML_MAX_BYTES (1024 * 1024)
#define FX__MAX_FIELDS 256
#define FX__MAX_TABLES 32
#define FX__MAX_COLUMNS 256 /* per table */
#define FX__MAX_KEYS 8      /* key alternatives per table */
#define FX__MAX_ALIASES 64  /* per field */
#define FX__MAX_VALUES 256  /* enum codes */
#define FX__MAX_LABELS 4096 /* enum labels */
#define FX__MAX_RULES 64
#define FX__KEY_CAP 256 /* buffer for fx_name_key matching keys */

/* String cleaning rules (field `clean:`); trimming is always applied. */
enum {
    FX__CLEAN_COLLAPSE = 1 << 0, /* runs of white space -> one space */
    FX__CLEAN_UPPER = 1 << 1,
    FX__CLEAN_LOWER = 1 << 2,
    FX__CLEAN_STRIP_ACCENTS = 1 << 3,
};

enum fx__check { FX__CHECK_REJECT = 0, FX__CHECK_WARN, FX__CHECK_OFF };

/* Open-addressing table from a matching key (fx_name_key form) to an index. */
struct fx__kv {
    const char *key; /* NULL = empty slot */
    size_t klen;
    int val;
};
struct fx__map {
    struct fx__kv *slots;
    size_t mask; /* slots - 1 (power of two) */
};

/* Index stored under key, or -1. */
int fx__map_get(const struct fx__map *m, const char *key, size_t klen);

struct fx__field {
    const char *name;
    enum fx_type type;
    int line;             /* where it is declared */
    int required;         /* value needed in every row (when the file has the column) */
    int need_column;      /* the header must be present */
    unsigned clean;       /* FX__CLEAN_* (string fields) */
    int has_min, has_max; /* numeric and date bounds on fx_value.i */
    int64_t min, max;
    size_t min_length, max_length; /* in characters; 0 = no bound */
    int scale;                     /* decimal */
    enum fx__check check_digits;   /* cpf_cnpj, cpf, cnpj */
    /* enum: codes, label/code matching keys -> code index, default for unmapped labels */
    size_t ncodes;
    const char **codes;
    size_t *code_lens;
    struct fx__map labels;
    int default_code;       /* -1 = unmapped labels are errors */
    const char *codes_list; /* "PIX, CREDITO, ..." for messages */
};

enum fx__rule_kind { FX__RULE_REQUIRE_ANY = 0 };

struct fx__rule {
    enum fx__rule_kind kind;
    size_t n;
    const int *fields;
    const char *fields_list; /* "cpf_cnpj, email" */
};

struct fx_pipeline {
    struct fx_arena arena; /* owns everything below */
    const char *name;
    const char *description;
    char digest[65]; /* SHA-256 of the YAML text */
    size_t chunk_rows;
    int dedupe_by_content;

    size_t nfields;
    struct fx__field *fields;
    struct fx__map names;      /* header matching key (name or alias) -> field index */
    const char *expected_list; /* "nome, email, ..." for binding errors */

    size_t nrules;
    struct fx__rule *rules;

    size_t ncontent; /* dedupe.content */
    const int *content;
    size_t nneed; /* dedupe.requires_columns */
    const int *need;

    struct fx_plan plan;
};

#endif
