/* SPDX-License-Identifier: MIT */
/*
 * Pipelines: declared in YAML (pipelines/<name>.yaml, see docs/pipelines.md),
 * compiled once into
 *   - a validator: header binding (names and aliases matched by fx_name_key),
 *     typed fields with cleaning rules, required / min / max, row rules,
 *     per-field policies (CPF/CNPJ check digits: reject | warn | off);
 *   - a dedupe spec: content key, or source file hash + row when the file
 *     lacks the columns that make content unique (e.g. no data_hora);
 *   - an upsert plan: one input row mapped onto several related tables by
 *     natural keys and references, in dependency order.
 *
 * Canonical values (struct fx_value): for each field type, which member holds
 * the value, and how it travels and is stored:
 *   string, enum (code), email (lowercased), cpf_cnpj / phone (digits):  s
 *   int: i      money: i (cents)    decimal: i (scaled by 10^scale)   bool: i (0/1)
 *   date: s "YYYY-MM-DD" (i = days since epoch)
 *   datetime: s "YYYY-MM-DDTHH:MM:SSZ" UTC (i = Unix seconds)
 * fx_type_is_integer() tells whether i (JSON number, SQL INTEGER) or s
 * (JSON string, SQL TEXT) is the canonical form. raw is the trimmed input text.
 *
 * Thread-safety: a compiled pipeline and a binding are immutable and may be
 * shared; a struct fx_row is per thread.
 */
#ifndef FLUXO_SCHEMA_H
#define FLUXO_SCHEMA_H

#include "fluxo/error.h"
#include "fluxo/mem.h"
#include "fluxo/reader.h"

#include <stddef.h>
#include <stdint.h>

enum fx_type {
    FX_T_STRING = 0,
    FX_T_INT,
    FX_T_MONEY,
    FX_T_DECIMAL,
    FX_T_DATE,
    FX_T_DATETIME,
    FX_T_BOOL,
    FX_T_EMAIL,
    FX_T_CPF_CNPJ, /* 11 or 14 digits */
    FX_T_CPF,
    FX_T_CNPJ,
    FX_T_PHONE,
    FX_T_ENUM,
};

/* Name used in YAML ("money"), and whether i is the canonical member. */
const char *fx_type_name(enum fx_type t);
int fx_type_is_integer(enum fx_type t);

struct fx_value {
    int present;   /* 0 = null / empty */
    int64_t i;     /* see header comment */
    const char *s; /* NUL-terminated; valid until the next validate on this row */
    size_t len;
    const char *raw; /* trimmed input text ("" when absent) */
    size_t raw_len;
};

struct fx_row {
    size_t n; /* = number of fields of the pipeline */
    struct fx_value *v;
    long src_row;          /* physical row in the source */
    struct fx_arena arena; /* scratch for this row's strings; reset per validate */
};

enum fx_severity { FX_ISSUE_ERROR = 0, FX_ISSUE_WARN = 1 };

struct fx_issue {
    enum fx_severity severity;
    int column;       /* 1-based column in the source, 0 = row-level */
    char field[64];   /* field name */
    char value[128];  /* offending input, truncated */
    char rule[32];    /* "required", "type", "min", "check_digits", "require_any", ... */
    char reason[256]; /* user-facing English sentence */
};

struct fx_issues {
    size_t n, cap;
    struct fx_issue *v;
};

void fx_issues_clear(struct fx_issues *iss); /* n = 0, keeps memory */
void fx_issues_cleanup(struct fx_issues *iss);
int fx_issues_has_error(const struct fx_issues *iss);

/* ---- compiled pipeline ---- */

struct fx_pipeline;

/* Compile a pipeline from YAML text; source names the file in errors (with line numbers). */
int fx_pipeline_load_mem(const char *yaml, size_t len, const char *source, struct fx_pipeline **out,
                         struct fx_err *err);
int fx_pipeline_load_file(const char *path, struct fx_pipeline **out, struct fx_err *err);
void fx_pipeline_free(struct fx_pipeline *p);

const char *fx_pipeline_name(const struct fx_pipeline *p);
size_t fx_pipeline_nfields(const struct fx_pipeline *p);
const char *fx_pipeline_field_name(const struct fx_pipeline *p, size_t i);
enum fx_type fx_pipeline_field_type(const struct fx_pipeline *p, size_t i);
/* Field index by exact name, or -1. */
int fx_pipeline_field_index(const struct fx_pipeline *p, const char *name);
/* Pipeline options (YAML `options:`). */
int fx_pipeline_dedupe_by_content(const struct fx_pipeline *p);
/* Rows per outbox chunk (YAML options.chunk_rows, default 1000). */
size_t fx_pipeline_chunk_rows(const struct fx_pipeline *p);
/* Free-text description (YAML `description:`), "" when none. */
const char *fx_pipeline_description(const struct fx_pipeline *p);
/* SHA-256 (64 hex chars) of the YAML text: records which version of a definition ran. */
const char *fx_pipeline_digest(const struct fx_pipeline *p);

/* ---- header binding ---- */

struct fx_binding;

/*
 * Bind a header record to the pipeline's fields. Fails (FX_ESCHEMA) when a
 * required column is missing, with err->reason listing the expected and the
 * found headers. Unknown columns are ignored and listed by fx_binding_unknown.
 */
int fx_pipeline_bind(const struct fx_pipeline *p, const struct fx_record *header,
                     const char *source, struct fx_binding **out, struct fx_err *err);
void fx_binding_free(struct fx_binding *b);
const struct fx_pipeline *fx_binding_pipeline(const struct fx_binding *b);
/* Ignored header names (array owned by the binding), count returned. */
size_t fx_binding_unknown(const struct fx_binding *b, const char *const **names);
/* 1 if the file has a column for field i. */
int fx_binding_has_field(const struct fx_binding *b, size_t i);
/* 0-based column of field i in the file, or -1 when the file lacks it. */
int fx_binding_column(const struct fx_binding *b, size_t i);

/* ---- validation ---- */

void fx_row_init(struct fx_row *row, const struct fx_pipeline *p);
void fx_row_cleanup(struct fx_row *row);

/*
 * Clean, type and check one record. Returns 0 when the row is accepted
 * (issues may hold warnings) or FX_ESCHEMA when rejected (issues holds at
 * least one error; every failing field is reported, not just the first).
 * issues is cleared first. A rec->bad record is rejected with its reader error.
 */
int fx_pipeline_validate(const struct fx_binding *b, const struct fx_record *rec,
                         struct fx_row *row, struct fx_issues *issues);

/* ---- dedupe ---- */

/*
 * Dedupe key of an accepted row, 64 hex chars (BLAKE2b-256, see fx_keyhash in util.h):
 *  - the content key (hash of the declared content fields' canonical values)
 *    when the file has every column dedupe.requires_columns names (e.g.
 *    data_hora): *by_content = 1;
 *  - else, with the pipeline option dedupe_by_content, the repeat key below:
 *    *by_content = 1;
 *  - else a hash of (source_hash, row number): *by_content = 0.
 * content_out (may be NULL) receives the repeat key: the content fields
 * without the requires_columns ones (without the time), so a row of a file
 * without data_hora can be matched against earlier purchases, timed or not,
 * and flagged as a possible duplicate.
 */
void fx_pipeline_dedupe_key(const struct fx_binding *b, const struct fx_row *row,
                            const char *source_hash, char key_out[65], char content_out[65],
                            int *by_content);
/* 1 when rows bound by b are keyed by position, the only keys that read
 * source_hash (callers may compute it only then). */
int fx_binding_keys_by_position(const struct fx_binding *b);

/* ---- upsert plan ---- */

enum fx_src_kind {
    FX_SRC_FIELD = 0, /* canonical value of field a */
    FX_SRC_RAW,       /* raw input text of field a */
    FX_SRC_REF,       /* id of the row this input row mapped to in table a (earlier table) */
    FX_SRC_CONST,     /* constant text / number (constant) */
    FX_SRC_PRODUCT,   /* integer product of fields a and b (e.g. quantidade * valor_unitario) */
    FX_SRC_DEDUPE,    /* the row's dedupe key */
    FX_SRC_BATCH,     /* the batch id */
    FX_SRC_ROWNUM,    /* source row number */
};

enum fx_sqltype { FX_SQL_TEXT = 0, FX_SQL_INT, FX_SQL_BOOL, FX_SQL_DATE, FX_SQL_DATETIME };

struct fx_plan_column {
    const char *name;
    enum fx_src_kind kind;
    enum fx_sqltype sqltype;
    int a, b;             /* field / table indexes, per kind */
    const char *constant; /* FX_SRC_CONST: text; INT as decimal digits; BOOL as "1" / "0" */
    int not_null;
    int update; /* overwrite on conflict (e.g. current price); keys never update */
};

struct fx_plan_key {
    size_t ncols;
    const int *cols; /* indexes into the table's columns */
};

struct fx_plan_table {
    const char *name;
    size_t ncols;
    const struct fx_plan_column *cols;
    size_t nkeys;                   /* alternatives, tried in order: the first whose   */
    const struct fx_plan_key *keys; /* columns are all non-null identifies the row */
    int skip_unless_field; /* -1, or field index: no row in this table when that field is null */
};

struct fx_plan {
    size_t ntables;
    const struct fx_plan_table *tables; /* dependency order: refs point backwards */
    size_t nraw;
    const int *raw; /* fields whose raw input text a table stores (FX_SRC_RAW), ascending */
};

const struct fx_plan *fx_pipeline_plan(const struct fx_pipeline *p);

#endif
