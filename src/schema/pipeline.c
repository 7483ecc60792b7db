/* SPDX-License-Identifier: MIT */
/*
 * Pipeline compiler: YAML text (docs/pipelines.md) -> struct fx_pipeline with
 * its validator tables (fields, header-name map, enum label maps, row rules,
 * dedupe spec) and its upsert plan.
 *
 * Design notes. The YAML is parsed by libfyaml into a document tree that is
 * walked once; nothing is resolved (aliases are refused, so a "billion laughs"
 * document cannot expand) and the walk never recurses into user-controlled
 * depth. Every mapping is checked against the keys it may hold, so a typo is
 * an error that names the line instead of a silently ignored setting. All
 * compiled data lives in the pipeline's arena: an error anywhere simply frees
 * the arena. Errors are FX_EPARSE for YAML syntax, FX_ETOOBIG for size and
 * FX_ESCHEMA for everything else, with err->source / err->row pointing at the
 * offending line.
 */
#include "fluxo/error.h"
#include "fluxo/mem.h"
#include "fluxo/schema.h"
#include "fluxo/types.h"
#include "fluxo/util.h"
#include "schema/schema_int.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- types ---- */

static const char *const type_names[] = {
    [FX_T_STRING] = "string",   [FX_T_INT] = "int",     [FX_T_MONEY] = "money",
    [FX_T_DECIMAL] = "decimal", [FX_T_DATE] = "date",   [FX_T_DATETIME] = "datetime",
    [FX_T_BOOL] = "bool",       [FX_T_EMAIL] = "email", [FX_T_CPF_CNPJ] = "cpf_cnpj",
    [FX_T_CPF] = "cpf",         [FX_T_CNPJ] = "cnpj",   [FX_T_PHONE] = "phone",
    [FX_T_ENUM] = "enum",
};
#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))
#define TYPE_LIST                                                                                  \
    "string, int, money, decimal, date, datetime, bool, email, cpf_cnpj, cpf, cnpj, phone, enum"

const char *fx_type_name(enum fx_type t)
{
    return (unsigned)t < NTYPES ? type_names[t] : "unknown";
}

int fx_type_is_integer(enum fx_type t)
{
    return t == FX_T_INT || t == FX_T_MONEY || t == FX_T_DECIMAL || t == FX_T_BOOL;
}

static enum fx_sqltype sqltype_of(enum fx_type t)
{
    switch (t) {
    case FX_T_INT:
    case FX_T_MONEY:
    case FX_T_DECIMAL:
        return FX_SQL_INT;
    case FX_T_BOOL:
        return FX_SQL_BOOL;
    case FX_T_DATE:
        return FX_SQL_DATE;
    case FX_T_DATETIME:
        return FX_SQL_DATETIME;
    default:
        return FX_SQL_TEXT;
    }
}

/* ---- key maps ---- */

static void map_init(struct fx_arena *a, struct fx__map *m, size_t n)
{
    size_t size = 8;
    while (size < 2 * n)
        size *= 2;
    m->slots = fx_arena_alloc(a, size * sizeof(*m->slots));
    memset(m->slots, 0, size * sizeof(*m->slots));
    m->mask = size - 1;
}

int fx__map_get(const struct fx__map *m, const char *key, size_t klen)
{
    if (!m->slots)
        return -1;
    for (size_t i = fx_hash64(key, klen) & m->mask;; i = (i + 1) & m->mask) {
        const struct fx__kv *kv = &m->slots[i];
        if (!kv->key)
            return -1;
        if (kv->klen == klen && memcmp(kv->key, key, klen) == 0)
            return kv->val;
    }
}

/* Insert key -> val; returns -1 when inserted, else the value already stored. */
static int map_put(struct fx_arena *a, struct fx__map *m, const char *key, size_t klen, int val)
{
    size_t i = fx_hash64(key, klen) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        struct fx__kv *kv = &m->slots[i];
        if (!kv->key)
            break;
        if (kv->klen == klen && memcmp(kv->key, key, klen) == 0)
            return kv->val;
    }
    m->slots[i].key = fx_arena_strndup(a, key, klen);
    m->slots[i].klen = klen;
    m->slots[i].val = val;
    return -1;
}

/* ---- compile context and error helpers ---- */

struct cc {
    struct fx_pipeline *p;
    struct fx_arena *a;
    struct fx_err *err;
    const char *source;
    struct fy_node *tables; /* for "declared later" messages */
    const char *input;      /* the YAML text (token marks are offsets into it) */
    size_t input_len;
};

static int fail(struct cc *c, int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct cc *c, int line, const char *field, const char *fmt, ...)
{
    struct fx_err *err = c->err;
    if (!err)
        return FX_ESCHEMA;
    fx_err_clear(err);
    err->code = FX_ESCHEMA;
    err->row = line;
    snprintf(err->source, sizeof(err->source), "%s", c->source);
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return FX_ESCHEMA;
}

/* 1-based line of a node (of its first scalar for collections), 0 if unknown. */
static int node_line(struct fy_node *n)
{
    for (int depth = 0; n && depth < 256; depth++) {
        if (fy_node_get_type(n) == FYNT_SCALAR) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            return m ? m->line + 1 : 0;
        }
        void *it = NULL;
        if (fy_node_get_type(n) == FYNT_SEQUENCE) {
            n = fy_node_sequence_iterate(n, &it);
        } else {
            struct fy_node_pair *pr = fy_node_mapping_iterate(n, &it);
            n = pr ? fy_node_pair_key(pr) : NULL;
        }
    }
    return 0;
}

static int at(struct fy_node *n, int fallback)
{
    int l = node_line(n);
    return l ? l : fallback;
}

static int is_null(struct fy_node *n)
{
    if (!n)
        return 1;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return 0;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    return !s || len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static const char *kind_name(struct fy_node *n)
{
    switch (fy_node_get_type(n)) {
    case FYNT_SEQUENCE:
        return "list";
    case FYNT_MAPPING:
        return "mapping";
    default:
        return "single value";
    }
}

/* Levenshtein distance, capped: used for "did you mean" suggestions. */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t prev[41], cur[41];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            cur[j] = d;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

/* Closest candidate within distance 2, or NULL. */
static const char *suggest(const char *s, size_t n, const char *const *cands, size_t ncands)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < ncands; i++) {
        size_t d = edit_distance(s, n, cands[i]);
        if (d < bd) {
            bd = d;
            best = cands[i];
        }
    }
    return best;
}

static char *join(struct fx_arena *a, const char *const *names, size_t n)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++)
        fx_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    char *s = fx_arena_strndup(a, b.data ? b.data : "", b.len);
    fx_buf_cleanup(&b);
    return s;
}

/* ---- scalar readers ---- */

/*
 * Single-quoted scalar content (between the quotes): '' is a quote, and line
 * breaks fold as YAML 1.2 says (one break -> space, n breaks -> n-1 newlines,
 * white space around breaks dropped).
 */
static const char *sq_unescape(struct fx_arena *a, const char *s, size_t n, size_t *outlen)
{
    if (!memchr(s, '\'', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n)) {
        *outlen = n;
        return s;
    }
    char *o = fx_arena_alloc(a, n + 1);
    size_t j = 0, i = 0;
    while (i < n) {
        char ch = s[i];
        if (ch == '\'' && i + 1 < n && s[i + 1] == '\'') {
            o[j++] = '\'';
            i += 2;
            continue;
        }
        if (ch != '\r' && ch != '\n') {
            o[j++] = ch;
            i++;
            continue;
        }
        while (j > 0 && (o[j - 1] == ' ' || o[j - 1] == '\t'))
            j--;
        size_t breaks = 0;
        while (i < n && (s[i] == '\r' || s[i] == '\n')) {
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            i++;
            breaks++;
            while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
        }
        if (breaks == 1)
            o[j++] = ' ';
        else
            while (--breaks)
                o[j++] = '\n';
    }
    o[j] = '\0';
    *outlen = j;
    return o;
}

/*
 * Text of a scalar node (not NUL-terminated). Single-quoted scalars are
 * unescaped here from the input bytes: libfyaml 0.7.12 leaks memory when it
 * unescapes runs of '' itself (found by fuzzing).
 */
static const char *text_of(struct cc *c, struct fy_node *n, size_t *len)
{
    if (fy_node_get_style(n) == FYNS_SINGLE_QUOTED) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *a = t ? fy_token_start_mark(t) : NULL;
        const struct fy_mark *b = t ? fy_token_end_mark(t) : NULL;
        if (a && b && a->input_pos <= b->input_pos && b->input_pos <= c->input_len)
            return sq_unescape(c->a, c->input + a->input_pos, b->input_pos - a->input_pos, len);
    }
    return fy_node_get_scalar(n, len);
}

/* The text of a scalar value, NUL-terminated in the arena; what names it in errors. */
static int scalar(struct cc *c, struct fy_node *n, int fb, const char *what, const char **s,
                  size_t *len)
{
    if (is_null(n))
        return fail(c, at(n, fb), NULL, "%s needs a value", what);
    if (fy_node_is_alias(n))
        return fail(c, at(n, fb), NULL, "%s: YAML aliases (*name) are not supported", what);
    if (fy_node_get_type(n) != FYNT_SCALAR)
        return fail(c, at(n, fb), NULL, "%s must be a single value, not a %s", what, kind_name(n));
    *s = text_of(c, n, len);
    if (!*s)
        return fail(c, at(n, fb), NULL, "%s: unreadable value", what);
    if (memchr(*s, '\0', *len))
        return fail(c, at(n, fb), NULL, "%s contains a NUL character", what);
    if (fx_utf8_check(*s, *len) != *len)
        return fail(c, at(n, fb), NULL, "%s is not valid UTF-8", what);
    /* NUL-terminated copy: messages print it with %.60s */
    *s = fx_arena_strndup(c->a, *s, *len);
    return 0;
}

static int str(struct cc *c, struct fy_node *n, int fb, const char *what, const char **out)
{
    size_t len;
    return scalar(c, n, fb, what, out, &len);
}

static int boolean(struct cc *c, struct fy_node *n, int fb, const char *what, int *out)
{
    const char *s;
    size_t len;
    int rc = scalar(c, n, fb, what, &s, &len);
    if (rc)
        return rc;
    if (len == 4 && strncasecmp(s, "true", 4) == 0)
        *out = 1;
    else if (len == 5 && strncasecmp(s, "false", 5) == 0)
        *out = 0;
    else
        return fail(c, at(n, fb), NULL, "%s must be true or false, not '%.*s'", what,
                    (int)(len > 60 ? 60 : len), s);
    return 0;
}

static int integer(struct cc *c, struct fy_node *n, int fb, const char *what, long long lo,
                   long long hi, long long *out)
{
    const char *s;
    size_t len;
    int rc = scalar(c, n, fb, what, &s, &len);
    if (rc)
        return rc;
    char buf[32];
    char *end = NULL;
    long long v = 0;
    if (len > 0 && len < sizeof(buf)) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        v = strtoll(buf, &end, 10);
    }
    if (!end || end == buf || *end || errno)
        return fail(c, at(n, fb), NULL, "%s must be a whole number, not '%.*s'", what,
                    (int)(len > 60 ? 60 : len), s);
    if (v < lo || v > hi)
        return fail(c, at(n, fb), NULL, "%s must be between %lld and %lld, got %lld", what, lo, hi,
                    v);
    *out = v;
    return 0;
}

static int is_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Words PostgreSQL reserves outright: unusable as table or column names unquoted. */
/* clang-format off */
static const char *const sql_reserved[] = {
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
    "case", "cast", "check", "collate", "column", "constraint", "create", "current_catalog",
    "current_date", "current_role", "current_time", "current_timestamp", "current_user",
    "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false",
    "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially",
    "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
    "null", "offset", "on", "only", "or", "order", "placing", "primary", "references",
    "returning", "select", "session_user", "some", "symmetric", "table", "then", "to",
    "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where",
    "window", "with",
};
/* clang-format on */

static int ident(struct cc *c, struct fy_node *n, int fb, const char *what, int sql,
                 const char **out)
{
    int rc = str(c, n, fb, what, out);
    if (rc)
        return rc;
    if (!is_ident(*out))
        return fail(c, at(n, fb), NULL,
                    "%s '%.60s' is not a valid identifier (lowercase letters, digits and _, "
                    "starting with a letter or _, at most 63 characters)",
                    what, *out);
    if (sql)
        for (size_t i = 0; i < sizeof(sql_reserved) / sizeof(sql_reserved[0]); i++)
            if (strcmp(*out, sql_reserved[i]) == 0)
                return fail(c, at(n, fb), NULL, "%s '%s' is a reserved SQL word; choose another",
                            what, *out);
    return 0;
}

/* ---- mappings and sequences ---- */

static int want_map(struct cc *c, struct fy_node *n, int fb, const char *what)
{
    if (n && fy_node_is_alias(n))
        return fail(c, at(n, fb), NULL, "%s: YAML aliases (*name) are not supported", what);
    if (!n || fy_node_get_type(n) != FYNT_MAPPING)
        return fail(c, at(n, fb), NULL, "%s must be a mapping (key: value)%s%s", what,
                    n && !is_null(n) ? ", not a " : "", n && !is_null(n) ? kind_name(n) : "");
    return 0;
}

static int want_seq(struct cc *c, struct fy_node *n, int fb, const char *what, size_t min,
                    size_t max, size_t *count)
{
    if (n && fy_node_is_alias(n))
        return fail(c, at(n, fb), NULL, "%s: YAML aliases (*name) are not supported", what);
    if (!n || fy_node_get_type(n) != FYNT_SEQUENCE)
        return fail(c, at(n, fb), NULL, "%s must be a list, e.g. [a, b]", what);
    int k = fy_node_sequence_item_count(n);
    if (k < 0 || (size_t)k < min)
        return fail(c, at(n, fb), NULL, "%s needs at least %zu item%s", what, min,
                    min == 1 ? "" : "s");
    if ((size_t)k > max)
        return fail(c, at(n, fb), NULL, "%s has %d items; at most %zu are allowed", what, k, max);
    *count = (size_t)k;
    return 0;
}

/* Check that every key of mapping n is a known one. */
static int check_keys(struct cc *c, struct fy_node *n, int fb, const char *what,
                      const char *const *allowed, size_t nallowed)
{
    int rc = want_map(c, n, fb, what);
    if (rc)
        return rc;
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *k = fy_node_pair_key(pr);
        const char *s;
        size_t len;
        if (is_null(k) || fy_node_get_type(k) != FYNT_SCALAR || fy_node_is_alias(k))
            return fail(c, at(k, at(n, fb)), NULL, "%s: keys must be plain names", what);
        if ((rc = scalar(c, k, at(n, fb), "a key", &s, &len)))
            return rc;
        size_t i;
        for (i = 0; i < nallowed; i++)
            if (strlen(allowed[i]) == len && memcmp(allowed[i], s, len) == 0)
                break;
        if (i < nallowed)
            continue;
        const char *sg = suggest(s, len, allowed, nallowed);
        if (sg)
            return fail(c, at(k, fb), NULL, "unknown key '%.60s' in %s (did you mean '%s'?)", s,
                        what, sg);
        char *list = join(c->a, allowed, nallowed);
        return fail(c, at(k, fb), NULL, "unknown key '%.60s' in %s (expected one of: %s)", s, what,
                    list);
    }
    return 0;
}

/* Value of key in a mapping already checked by check_keys; *line gets the key's line. */
static struct fy_node *get(struct cc *c, struct fy_node *map, const char *key, int *line,
                           int *found)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    size_t kl = strlen(key);
    while ((pr = fy_node_mapping_iterate(map, &it))) {
        size_t len;
        const char *s = text_of(c, fy_node_pair_key(pr), &len);
        if (s && len == kl && memcmp(s, key, kl) == 0) {
            if (line)
                *line = node_line(fy_node_pair_key(pr));
            if (found)
                *found = 1;
            return fy_node_pair_value(pr);
        }
    }
    if (found)
        *found = 0;
    return NULL;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Resolve a declared field by name, for references from rules, dedupe and tables. */
static int field_ref(struct cc *c, struct fy_node *n, int fb, const char *where, int *out)
{
    const char *s;
    size_t len;
    int rc = scalar(c, n, fb, where, &s, &len);
    if (rc)
        return rc;
    for (size_t i = 0; i < c->p->nfields; i++) {
        const char *name = c->p->fields[i].name;
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return fail(c, at(n, fb), NULL, "field '%.60s' referenced in %s is not declared", s, where);
}

/* A list of distinct declared fields. */
static int field_list(struct cc *c, struct fy_node *n, int fb, const char *where, size_t min,
                      size_t max, const int **out, size_t *count)
{
    size_t k;
    int rc = want_seq(c, n, fb, where, min, max, &k);
    if (rc)
        return rc;
    int *v = fx_arena_alloc(c->a, (k ? k : 1) * sizeof(int));
    void *it = NULL;
    struct fy_node *e;
    size_t i = 0;
    while ((e = fy_node_sequence_iterate(n, &it)) && i < k) {
        if ((rc = field_ref(c, e, at(n, fb), where, &v[i])))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (v[j] == v[i])
                return fail(c, at(e, fb), NULL, "field '%s' is listed twice in %s",
                            c->p->fields[v[i]].name, where);
        i++;
    }
    *out = v;
    *count = i;
    return 0;
}

/* ---- fields ---- */

static const char *const field_keys[] = {
    "type",       "description", "required", "column",       "aliases", "clean",  "min",     "max",
    "min_length", "max_length",  "scale",    "check_digits", "values",  "labels", "default",
};

static int type_has_bounds(enum fx_type t)
{
    return t == FX_T_INT || t == FX_T_MONEY || t == FX_T_DECIMAL || t == FX_T_DATE ||
           t == FX_T_DATETIME;
}

static int type_has_length(enum fx_type t)
{
    return t == FX_T_STRING || t == FX_T_EMAIL || t == FX_T_PHONE;
}

static int type_is_document(enum fx_type t)
{
    return t == FX_T_CPF_CNPJ || t == FX_T_CPF || t == FX_T_CNPJ;
}

/* Which keys apply to which types (type, description, required, column, aliases: all). */
static int key_applies(const char *key, enum fx_type t)
{
    if (!strcmp(key, "min") || !strcmp(key, "max"))
        return type_has_bounds(t);
    if (!strcmp(key, "min_length") || !strcmp(key, "max_length"))
        return type_has_length(t);
    if (!strcmp(key, "scale"))
        return t == FX_T_DECIMAL;
    if (!strcmp(key, "check_digits"))
        return type_is_document(t);
    if (!strcmp(key, "values") || !strcmp(key, "labels") || !strcmp(key, "default"))
        return t == FX_T_ENUM;
    if (!strcmp(key, "clean"))
        return t == FX_T_STRING;
    return 1;
}

static int parse_type(struct cc *c, struct fy_node *n, int fb, struct fx__field *f)
{
    const char *s;
    size_t len;
    char what[96];
    snprintf(what, sizeof(what), "type of field '%s'", f->name);
    int rc = scalar(c, n, fb, what, &s, &len);
    if (rc)
        return rc;
    for (size_t i = 0; i < NTYPES; i++)
        if (strlen(type_names[i]) == len && memcmp(type_names[i], s, len) == 0) {
            f->type = (enum fx_type)i;
            return 0;
        }
    const char *sg = suggest(s, len, type_names, NTYPES);
    return fail(c, at(n, fb), f->name, "unknown field type '%.60s'%s%s%s (expected one of: %s)", s,
                sg ? " (did you mean '" : "", sg ? sg : "", sg ? "'?)" : "", TYPE_LIST);
}

/* min / max are written in the field's own format ("10,50" for money, dates as dates). */
static int parse_bound(struct cc *c, struct fy_node *n, int fb, struct fx__field *f,
                       const char *key, int64_t *out)
{
    const char *s, *why = NULL;
    size_t len;
    char what[96];
    snprintf(what, sizeof(what), "%s of field '%s'", key, f->name);
    int rc = scalar(c, n, fb, what, &s, &len);
    if (rc)
        return rc;
    int32_t days;
    switch (f->type) {
    case FX_T_INT:
        rc = fx_parse_int(s, len, out, &why);
        break;
    case FX_T_MONEY:
        rc = fx_parse_money(s, len, out, &why);
        break;
    case FX_T_DECIMAL:
        rc = fx_parse_decimal(s, len, f->scale, out, &why);
        break;
    case FX_T_DATE:
        rc = fx_parse_date(s, len, &days, &why);
        *out = days;
        break;
    default:
        rc = fx_parse_datetime(s, len, out, &why);
        break;
    }
    if (rc)
        return fail(c, at(n, fb), f->name, "%s '%.60s' is not a valid %s%s%s", what, s,
                    fx_type_name(f->type), why ? ": " : "", why ? why : "");
    return 0;
}

static int compile_enum(struct cc *c, struct fy_node *spec, int fb, struct fx__field *f)
{
    char what[128];
    int line = fb, found;
    struct fy_node *values = get(c, spec, "values", &line, &found);
    snprintf(what, sizeof(what), "values of enum field '%s'", f->name);
    if (!found)
        return fail(c, fb, f->name, "enum field '%s' needs values: [CODE, ...]", f->name);
    size_t k;
    int rc = want_seq(c, values, line, what, 1, FX__MAX_VALUES, &k);
    if (rc)
        return rc;
    f->codes = fx_arena_alloc(c->a, k * sizeof(char *));
    f->code_lens = fx_arena_alloc(c->a, k * sizeof(size_t));
    int lline = fb;
    struct fy_node *labels = get(c, spec, "labels", &lline, &found);
    size_t nlabels = 0;
    if (found) {
        snprintf(what, sizeof(what), "labels of enum field '%s'", f->name);
        if ((rc = want_map(c, labels, lline, what)))
            return rc;
        int nl = fy_node_mapping_item_count(labels);
        if (nl < 0 || nl > FX__MAX_LABELS)
            return fail(c, lline, f->name, "%s: at most %d labels are allowed", what,
                        FX__MAX_LABELS);
        nlabels = (size_t)nl;
    }
    map_init(c->a, &f->labels, k + nlabels);

    char key[FX__KEY_CAP];
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(values, &it)) && f->ncodes < k) {
        const char *code;
        snprintf(what, sizeof(what), "a value of enum field '%s'", f->name);
        if ((rc = str(c, e, line, what, &code)))
            return rc;
        size_t kl = fx_name_key(code, strlen(code), key, sizeof(key));
        if (kl == 0 || kl >= sizeof(key) - 1)
            return fail(c, at(e, line), f->name,
                        "enum value '%.60s' of field '%s' needs letters or digits (and at most "
                        "%d of them)",
                        code, f->name, FX__KEY_CAP - 2);
        int prev = map_put(c->a, &f->labels, key, kl, (int)f->ncodes);
        if (prev >= 0)
            return fail(c, at(e, line), f->name,
                        "enum values '%s' and '%.60s' of field '%s' are the same when matched "
                        "(case, accents and punctuation are ignored)",
                        f->codes[prev], code, f->name);
        f->codes[f->ncodes] = code;
        f->code_lens[f->ncodes] = strlen(code);
        f->ncodes++;
    }
    f->codes_list = join(c->a, f->codes, f->ncodes);

    it = NULL;
    struct fy_node_pair *pr;
    while (labels && (pr = fy_node_mapping_iterate(labels, &it))) {
        struct fy_node *kn = fy_node_pair_key(pr), *vn = fy_node_pair_value(pr);
        const char *label, *code;
        size_t ll, cl;
        snprintf(what, sizeof(what), "a label of enum field '%s'", f->name);
        if ((rc = scalar(c, kn, lline, what, &label, &ll)))
            return rc;
        int kline = at(kn, lline);
        snprintf(what, sizeof(what), "label '%.40s' of enum field '%s'", label, f->name);
        if ((rc = scalar(c, vn, kline, what, &code, &cl)))
            return rc;
        size_t ci;
        for (ci = 0; ci < f->ncodes; ci++)
            if (f->code_lens[ci] == cl && memcmp(f->codes[ci], code, cl) == 0)
                break;
        if (ci == f->ncodes)
            return fail(c, kline, f->name,
                        "label '%.40s' of field '%s' maps to '%.40s', which is not one of its "
                        "values (%s)",
                        label, f->name, code, f->codes_list);
        size_t kl = fx_name_key(label, ll, key, sizeof(key));
        if (kl == 0 || kl >= sizeof(key) - 1)
            return fail(c, kline, f->name,
                        "label '%.40s' of field '%s' needs letters or digits (and at most %d "
                        "of them)",
                        label, f->name, FX__KEY_CAP - 2);
        int prev = map_put(c->a, &f->labels, key, kl, (int)ci);
        if (prev >= 0 && prev != (int)ci)
            return fail(c, kline, f->name,
                        "label '%.40s' of field '%s' maps to %s, but the same text (matched "
                        "without case, accents and punctuation) already maps to %s",
                        label, f->name, f->codes[ci], f->codes[prev]);
    }

    f->default_code = -1;
    int dline = fb;
    struct fy_node *def = get(c, spec, "default", &dline, &found);
    if (found) {
        const char *code;
        size_t cl;
        snprintf(what, sizeof(what), "default of enum field '%s'", f->name);
        if ((rc = scalar(c, def, dline, what, &code, &cl)))
            return rc;
        for (size_t ci = 0; ci < f->ncodes; ci++)
            if (f->code_lens[ci] == cl && memcmp(f->codes[ci], code, cl) == 0)
                f->default_code = (int)ci;
        if (f->default_code < 0)
            return fail(c, at(def, dline), f->name,
                        "default '%.40s' of field '%s' is not one of its values (%s)", code,
                        f->name, f->codes_list);
    }
    return 0;
}

static int compile_clean(struct cc *c, struct fy_node *n, int fb, struct fx__field *f)
{
    static const char *const rules[] = {"trim", "collapse_spaces", "upper", "lower",
                                        "strip_accents"};
    char what[96];
    snprintf(what, sizeof(what), "clean of field '%s'", f->name);
    size_t k;
    int rc = want_seq(c, n, fb, what, 0, 16, &k);
    if (rc)
        return rc;
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(n, &it))) {
        const char *s;
        size_t len;
        if ((rc = scalar(c, e, fb, what, &s, &len)))
            return rc;
        size_t i;
        for (i = 0; i < NELEM(rules); i++)
            if (strlen(rules[i]) == len && memcmp(rules[i], s, len) == 0)
                break;
        if (i == NELEM(rules)) {
            const char *sg = suggest(s, len, rules, NELEM(rules));
            return fail(c, at(e, fb), f->name,
                        "unknown cleaning rule '%.40s' in field '%s'%s%s%s (expected one of: "
                        "trim, collapse_spaces, upper, lower, strip_accents)",
                        s, f->name, sg ? " (did you mean '" : "", sg ? sg : "", sg ? "'?)" : "");
        }
        static const unsigned bits[] = {0, FX__CLEAN_COLLAPSE, FX__CLEAN_UPPER, FX__CLEAN_LOWER,
                                        FX__CLEAN_STRIP_ACCENTS};
        f->clean |= bits[i];
    }
    if ((f->clean & FX__CLEAN_UPPER) && (f->clean & FX__CLEAN_LOWER))
        return fail(c, fb, f->name, "field '%s': clean rules upper and lower exclude each other",
                    f->name);
    return 0;
}

static int compile_field(struct cc *c, struct fy_node *kn, struct fy_node *spec, int fb,
                         struct fx__field *f, const char ***aliases, size_t *naliases)
{
    int rc = ident(c, kn, fb, "field name", 0, &f->name);
    if (rc)
        return rc;
    f->line = at(kn, fb);
    f->default_code = -1;
    f->scale = 2;
    f->check_digits = FX__CHECK_REJECT;
    *naliases = 0;
    char what[96];
    snprintf(what, sizeof(what), "field '%s'", f->name);

    if (is_null(spec))
        return fail(c, f->line, f->name, "field '%s' needs a type (one of: %s)", f->name,
                    TYPE_LIST);
    /* shorthand: `telefone: phone` */
    if (spec && !is_null(spec) && fy_node_get_type(spec) == FYNT_SCALAR &&
        !fy_node_is_alias(spec)) {
        if ((rc = parse_type(c, spec, f->line, f)))
            return rc;
        if (f->type == FX_T_ENUM)
            return fail(c, f->line, f->name, "enum field '%s' needs values: [CODE, ...]", f->name);
        return 0;
    }
    if ((rc = check_keys(c, spec, f->line, what, field_keys, NELEM(field_keys))))
        return rc;
    int line, found;
    struct fy_node *n = get(c, spec, "type", &line, &found);
    if (!found)
        return fail(c, f->line, f->name, "field '%s' needs a type (one of: %s)", f->name,
                    TYPE_LIST);
    if ((rc = parse_type(c, n, line, f)))
        return rc;

    /* keys that do not apply to this type are mistakes, not no-ops */
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(spec, &it))) {
        size_t len;
        const char *k = text_of(c, fy_node_pair_key(pr), &len);
        char key[32];
        snprintf(key, sizeof(key), "%.*s", (int)len, k);
        if (!key_applies(key, f->type))
            return fail(c, at(fy_node_pair_key(pr), f->line), f->name,
                        "key '%s' does not apply to %s fields (field '%s')", key,
                        fx_type_name(f->type), f->name);
    }

    if ((n = get(c, spec, "description", &line, &found)), found) {
        const char *d;
        if ((rc = str(c, n, line, "description", &d)))
            return rc;
    }
    if ((n = get(c, spec, "required", &line, &found)), found)
        if ((rc = boolean(c, n, line, "required", &f->required)))
            return rc;
    f->need_column = f->required;
    if ((n = get(c, spec, "column", &line, &found)), found) {
        const char *s;
        size_t len;
        if ((rc = scalar(c, n, line, "column", &s, &len)))
            return rc;
        if (len == 8 && !memcmp(s, "required", 8)) {
            f->need_column = 1;
        } else if (len == 8 && !memcmp(s, "optional", 8)) {
            /* the column may be missing; when present, every row needs a value */
            f->need_column = 0;
            f->required = 1;
        } else {
            return fail(c, at(n, line), f->name,
                        "column of field '%s' must be required or optional, not '%.40s'", f->name,
                        s);
        }
    }
    if ((n = get(c, spec, "aliases", &line, &found)), found) {
        size_t k;
        snprintf(what, sizeof(what), "aliases of field '%s'", f->name);
        if ((rc = want_seq(c, n, line, what, 0, FX__MAX_ALIASES, &k)))
            return rc;
        *aliases = fx_arena_alloc(c->a, (k ? k : 1) * sizeof(char *));
        void *sit = NULL;
        struct fy_node *e;
        while ((e = fy_node_sequence_iterate(n, &sit)) && *naliases < k)
            if ((rc = str(c, e, line, what, &(*aliases)[(*naliases)++])))
                return rc;
    }
    if ((n = get(c, spec, "clean", &line, &found)), found)
        if ((rc = compile_clean(c, n, line, f)))
            return rc;
    if ((n = get(c, spec, "scale", &line, &found)), found) {
        long long v;
        if ((rc = integer(c, n, line, "scale", 0, 9, &v)))
            return rc;
        f->scale = (int)v;
    }
    if ((n = get(c, spec, "min", &line, &found)), found) {
        if ((rc = parse_bound(c, n, line, f, "min", &f->min)))
            return rc;
        f->has_min = 1;
    }
    if ((n = get(c, spec, "max", &line, &found)), found) {
        if ((rc = parse_bound(c, n, line, f, "max", &f->max)))
            return rc;
        f->has_max = 1;
        if (f->has_min && f->min > f->max)
            return fail(c, line, f->name, "field '%s': min is greater than max", f->name);
    }
    long long v;
    if ((n = get(c, spec, "min_length", &line, &found)), found) {
        if ((rc = integer(c, n, line, "min_length", 0, 1000000, &v)))
            return rc;
        f->min_length = (size_t)v;
    }
    if ((n = get(c, spec, "max_length", &line, &found)), found) {
        if ((rc = integer(c, n, line, "max_length", 1, 1000000, &v)))
            return rc;
        f->max_length = (size_t)v;
        if (f->min_length > f->max_length)
            return fail(c, line, f->name, "field '%s': min_length is greater than max_length",
                        f->name);
    }
    if ((n = get(c, spec, "check_digits", &line, &found)), found) {
        const char *s;
        size_t len;
        if ((rc = scalar(c, n, line, "check_digits", &s, &len)))
            return rc;
        if (len == 6 && !memcmp(s, "reject", 6))
            f->check_digits = FX__CHECK_REJECT;
        else if (len == 4 && !memcmp(s, "warn", 4))
            f->check_digits = FX__CHECK_WARN;
        else if (len == 3 && !memcmp(s, "off", 3))
            f->check_digits = FX__CHECK_OFF;
        else
            return fail(c, at(n, line), f->name,
                        "check_digits of field '%s' must be reject, warn or off, not '%.40s'",
                        f->name, s);
    }
    if (f->type == FX_T_ENUM)
        return compile_enum(c, spec, f->line, f);
    return 0;
}

/* Header-name map: every field's name and aliases by matching key. */
static int compile_names(struct cc *c, const char ***aliases, const size_t *naliases)
{
    struct fx_pipeline *p = c->p;
    size_t total = 0;
    for (size_t i = 0; i < p->nfields; i++)
        total += 1 + naliases[i];
    map_init(c->a, &p->names, total);
    char key[FX__KEY_CAP];
    for (size_t i = 0; i < p->nfields; i++) {
        struct fx__field *f = &p->fields[i];
        for (size_t j = 0; j <= naliases[i]; j++) {
            const char *name = j == 0 ? f->name : aliases[i][j - 1];
            size_t kl = fx_name_key(name, strlen(name), key, sizeof(key));
            if (kl == 0 || kl >= sizeof(key) - 1)
                return fail(c, f->line, f->name,
                            "alias '%.60s' of field '%s' needs letters or digits (and at most %d "
                            "of them) to match a header",
                            name, f->name, FX__KEY_CAP - 2);
            int prev = map_put(c->a, &p->names, key, kl, (int)i);
            if (prev >= 0 && prev != (int)i)
                return fail(c, f->line, f->name,
                            "%s '%.60s' of field '%s' matches the same headers as field '%s' "
                            "(names are matched without case, accents and punctuation)",
                            j == 0 ? "name" : "alias", name, f->name, p->fields[prev].name);
        }
    }
    const char **names = fx_arena_alloc(c->a, p->nfields * sizeof(char *));
    for (size_t i = 0; i < p->nfields; i++)
        names[i] = p->fields[i].name;
    p->expected_list = join(c->a, names, p->nfields);
    return 0;
}

static int compile_fields(struct cc *c, struct fy_node *n, int fb)
{
    int rc = want_map(c, n, fb, "fields");
    if (rc)
        return rc;
    int k = fy_node_mapping_item_count(n);
    if (k < 1)
        return fail(c, at(n, fb), NULL, "fields: declare at least one field");
    if (k > FX__MAX_FIELDS)
        return fail(c, at(n, fb), NULL, "too many fields (%d; at most %d)", k, FX__MAX_FIELDS);
    struct fx_pipeline *p = c->p;
    p->fields = fx_arena_alloc(c->a, (size_t)k * sizeof(*p->fields));
    memset(p->fields, 0, (size_t)k * sizeof(*p->fields));
    const char ***aliases = fx_arena_alloc(c->a, (size_t)k * sizeof(*aliases));
    size_t *naliases = fx_arena_alloc(c->a, (size_t)k * sizeof(size_t));
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it)) && p->nfields < (size_t)k) {
        size_t i = p->nfields;
        aliases[i] = NULL;
        if ((rc = compile_field(c, fy_node_pair_key(pr), fy_node_pair_value(pr), at(n, fb),
                                &p->fields[i], &aliases[i], &naliases[i])))
            return rc;
        p->nfields++;
    }
    return compile_names(c, aliases, naliases);
}

/* ---- options, rules, dedupe ---- */

static int compile_options(struct cc *c, struct fy_node *n, int fb)
{
    static const char *const keys[] = {"chunk_rows", "dedupe_by_content"};
    int rc = check_keys(c, n, fb, "options", keys, NELEM(keys));
    if (rc)
        return rc;
    int line, found;
    struct fy_node *v = get(c, n, "chunk_rows", &line, &found);
    if (found) {
        long long x;
        if ((rc = integer(c, v, line, "options.chunk_rows", 1, 1000000, &x)))
            return rc;
        c->p->chunk_rows = (size_t)x;
    }
    v = get(c, n, "dedupe_by_content", &line, &found);
    if (found && (rc = boolean(c, v, line, "options.dedupe_by_content", &c->p->dedupe_by_content)))
        return rc;
    return 0;
}

static int compile_rules(struct cc *c, struct fy_node *n, int fb)
{
    static const char *const kinds[] = {"require_any"};
    size_t k;
    int rc = want_seq(c, n, fb, "rules", 0, FX__MAX_RULES, &k);
    if (rc)
        return rc;
    struct fx_pipeline *p = c->p;
    p->rules = fx_arena_alloc(c->a, (k ? k : 1) * sizeof(*p->rules));
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(n, &it)) && p->nrules < k) {
        char what[64];
        snprintf(what, sizeof(what), "rule %zu", p->nrules + 1);
        if ((rc = check_keys(c, e, fb, what, kinds, NELEM(kinds))))
            return rc;
        if (fy_node_mapping_item_count(e) != 1)
            return fail(c, at(e, fb), NULL, "%s must have exactly one kind (require_any)", what);
        int line, found;
        struct fy_node *v = get(c, e, "require_any", &line, &found);
        struct fx__rule *r = &p->rules[p->nrules];
        r->kind = FX__RULE_REQUIRE_ANY;
        if ((rc = field_list(c, v, line, "rules (require_any)", 2, FX__MAX_FIELDS, &r->fields,
                             &r->n)))
            return rc;
        const char **names = fx_arena_alloc(c->a, r->n * sizeof(char *));
        for (size_t i = 0; i < r->n; i++)
            names[i] = p->fields[r->fields[i]].name;
        r->fields_list = join(c->a, names, r->n);
        p->nrules++;
    }
    return 0;
}

static int compile_dedupe(struct cc *c, int declared, struct fy_node *n, int fb)
{
    struct fx_pipeline *p = c->p;
    if (!declared) {
        /* default: every field is content; no column is needed for content dedupe */
        int *all = fx_arena_alloc(c->a, p->nfields * sizeof(int));
        for (size_t i = 0; i < p->nfields; i++)
            all[i] = (int)i;
        p->content = all;
        p->ncontent = p->nfields;
        return 0;
    }
    static const char *const keys[] = {"content", "requires_columns"};
    int rc = check_keys(c, n, fb, "dedupe", keys, NELEM(keys));
    if (rc)
        return rc;
    int line, found;
    struct fy_node *v = get(c, n, "content", &line, &found);
    if (!found)
        return fail(c, at(n, fb), NULL, "dedupe needs content: [fields that identify a row]");
    if ((rc = field_list(c, v, line, "dedupe.content", 1, FX__MAX_FIELDS, &p->content,
                         &p->ncontent)))
        return rc;
    v = get(c, n, "requires_columns", &line, &found);
    if (found && (rc = field_list(c, v, line, "dedupe.requires_columns", 0, FX__MAX_FIELDS,
                                  &p->need, &p->nneed)))
        return rc;
    return 0;
}

/* ---- tables (upsert plan) ---- */

static const char *const table_keys[] = {"description", "when", "keys", "columns", "update"};
static const char *const source_kinds[] = {"field", "raw", "ref", "const", "product", "meta"};

/* Line where table `name` is declared among all tables, 0 if it is not. */
static int table_declared_at(struct cc *c, const char *name, size_t len)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    while (c->tables && (pr = fy_node_mapping_iterate(c->tables, &it))) {
        size_t kl;
        const char *k = text_of(c, fy_node_pair_key(pr), &kl);
        if (k && kl == len && memcmp(k, name, len) == 0)
            return at(fy_node_pair_key(pr), -1);
    }
    return 0;
}

static int compile_column(struct cc *c, size_t ti, struct fy_node *kn, struct fy_node *spec, int fb,
                          struct fx_plan_column *col)
{
    struct fx_pipeline *p = c->p;
    const struct fx_plan_table *tabs = p->plan.tables;
    const char *tname = tabs[ti].name;
    char what[160];
    snprintf(what, sizeof(what), "column name in table '%s'", tname);
    int rc = ident(c, kn, fb, what, 1, &col->name);
    if (rc)
        return rc;
    int line = at(kn, fb);
    snprintf(what, sizeof(what), "column '%s' of table '%s'", col->name, tname);
    col->a = col->b = -1;
    if (spec && !is_null(spec) && fy_node_get_type(spec) == FYNT_SCALAR &&
        !fy_node_is_alias(spec)) {
        col->kind = FX_SRC_FIELD;
    } else {
        if ((rc = check_keys(c, spec, line, what, source_kinds, NELEM(source_kinds))))
            return rc;
        if (fy_node_mapping_item_count(spec) != 1)
            return fail(c, line, NULL,
                        "%s must have exactly one source (field, raw, ref, const, product or "
                        "meta)",
                        what);
        void *it = NULL;
        struct fy_node_pair *pr = fy_node_mapping_iterate(spec, &it);
        size_t kl;
        const char *k = text_of(c, fy_node_pair_key(pr), &kl);
        line = at(fy_node_pair_key(pr), line);
        spec = fy_node_pair_value(pr);
        static const enum fx_src_kind kinds[] = {FX_SRC_FIELD, FX_SRC_RAW,     FX_SRC_REF,
                                                 FX_SRC_CONST, FX_SRC_PRODUCT, FX_SRC_DEDUPE};
        for (size_t i = 0; i < NELEM(source_kinds); i++)
            if (strlen(source_kinds[i]) == kl && memcmp(source_kinds[i], k, kl) == 0)
                col->kind = kinds[i];
    }

    const char *s;
    size_t len;
    switch (col->kind) {
    case FX_SRC_FIELD:
    case FX_SRC_RAW:
        if ((rc = field_ref(c, spec, line, what, &col->a)))
            return rc;
        col->sqltype = col->kind == FX_SRC_RAW ? FX_SQL_TEXT : sqltype_of(p->fields[col->a].type);
        col->not_null = p->fields[col->a].required && p->fields[col->a].need_column;
        return 0;
    case FX_SRC_REF: {
        if ((rc = scalar(c, spec, line, what, &s, &len)))
            return rc;
        for (size_t t = 0; t < ti; t++)
            if (strlen(tabs[t].name) == len && memcmp(tabs[t].name, s, len) == 0) {
                col->a = (int)t;
                col->sqltype = FX_SQL_INT;
                col->not_null = tabs[t].skip_unless_field < 0;
                return 0;
            }
        int dl = table_declared_at(c, s, len);
        if (len == strlen(tname) && memcmp(tname, s, len) == 0)
            return fail(c, at(spec, line), NULL, "%s: a table cannot reference itself", what);
        if (dl)
            return fail(c, at(spec, line), NULL,
                        "%s references table '%.60s', which is declared after it (line %d); "
                        "declare referenced tables first",
                        what, s, dl);
        return fail(c, at(spec, line), NULL, "%s references unknown table '%.60s'", what, s);
    }
    case FX_SRC_CONST:
        if ((rc = scalar(c, spec, line, what, &s, &len)))
            return rc;
        col->not_null = 1;
        col->sqltype = FX_SQL_TEXT;
        if (fy_node_get_style(spec) == FYNS_PLAIN) {
            if (len == 4 && strncasecmp(s, "true", 4) == 0) {
                col->sqltype = FX_SQL_BOOL;
                s = "1", len = 1;
            } else if (len == 5 && strncasecmp(s, "false", 5) == 0) {
                col->sqltype = FX_SQL_BOOL;
                s = "0", len = 1;
            } else {
                size_t i = (len > 1 && s[0] == '-') ? 1 : 0;
                size_t digits = 0;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                    i++, digits++;
                if (i == len && digits > 0 && digits <= 18)
                    col->sqltype = FX_SQL_INT;
            }
        }
        col->constant = fx_arena_strndup(c->a, s, len);
        return 0;
    case FX_SRC_PRODUCT: {
        const int *f;
        size_t n;
        if ((rc = field_list(c, spec, line, what, 2, 2, &f, &n)))
            return rc;
        enum fx_type ta = p->fields[f[0]].type, tb = p->fields[f[1]].type;
        int num_a = ta == FX_T_INT || ta == FX_T_MONEY || ta == FX_T_DECIMAL;
        int num_b = tb == FX_T_INT || tb == FX_T_MONEY || tb == FX_T_DECIMAL;
        if (!num_a || !num_b || (ta != FX_T_INT && tb != FX_T_INT))
            return fail(c, line, NULL,
                        "%s: product needs two numeric fields, at least one of type int (got %s "
                        "and %s)",
                        what, fx_type_name(ta), fx_type_name(tb));
        col->a = f[0];
        col->b = f[1];
        col->sqltype = FX_SQL_INT;
        col->not_null = p->fields[f[0]].required && p->fields[f[0]].need_column &&
                        p->fields[f[1]].required && p->fields[f[1]].need_column;
        return 0;
    }
    default: /* meta */
        if ((rc = scalar(c, spec, line, what, &s, &len)))
            return rc;
        col->not_null = 1;
        if (len == 6 && !memcmp(s, "dedupe", 6)) {
            col->kind = FX_SRC_DEDUPE;
            col->sqltype = FX_SQL_TEXT;
        } else if (len == 5 && !memcmp(s, "batch", 5)) {
            col->kind = FX_SRC_BATCH;
            col->sqltype = FX_SQL_TEXT;
        } else if (len == 3 && !memcmp(s, "row", 3)) {
            col->kind = FX_SRC_ROWNUM;
            col->sqltype = FX_SQL_INT;
        } else {
            return fail(c, at(spec, line), NULL,
                        "%s: unknown meta '%.40s' (expected dedupe, batch or row)", what, s);
        }
        return 0;
    }
}

static int column_index(struct fx_plan_table *t, const char *s, size_t len)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strlen(t->cols[i].name) == len && memcmp(t->cols[i].name, s, len) == 0)
            return (int)i;
    return -1;
}

static int compile_keys(struct cc *c, struct fy_node *n, int fb, struct fx_plan_table *t)
{
    char what[128];
    snprintf(what, sizeof(what), "keys of table '%s'", t->name);
    size_t k;
    int rc = want_seq(c, n, fb, what, 1, FX__MAX_KEYS, &k);
    if (rc)
        return rc;
    struct fx_plan_key *keys = fx_arena_alloc(c->a, k * sizeof(*keys));
    void *it = NULL;
    struct fy_node *alt;
    size_t nk = 0;
    while ((alt = fy_node_sequence_iterate(n, &it)) && nk < k) {
        size_t m;
        if (alt && fy_node_get_type(alt) != FYNT_SEQUENCE)
            return fail(c, at(alt, fb), NULL,
                        "%s: each alternative must be a list of columns, e.g. "
                        "keys: [[cpf_cnpj], [nome, email]]",
                        what);
        if ((rc = want_seq(c, alt, at(n, fb), what, 1, 16, &m)))
            return rc;
        int *cols = fx_arena_alloc(c->a, m * sizeof(int));
        void *jt = NULL;
        struct fy_node *e;
        size_t j = 0;
        while ((e = fy_node_sequence_iterate(alt, &jt)) && j < m) {
            const char *s;
            size_t len;
            if ((rc = scalar(c, e, at(alt, fb), what, &s, &len)))
                return rc;
            cols[j] = column_index(t, s, len);
            if (cols[j] < 0)
                return fail(c, at(e, fb), NULL,
                            "key column '%.60s' of table '%s' is not one of its columns", s,
                            t->name);
            for (size_t x = 0; x < j; x++)
                if (cols[x] == cols[j])
                    return fail(c, at(e, fb), NULL, "key column '%.60s' of table '%s' is repeated",
                                s, t->name);
            j++;
        }
        keys[nk].cols = cols;
        keys[nk].ncols = j;
        nk++;
    }
    t->keys = keys;
    t->nkeys = nk;
    return 0;
}

static int compile_table(struct cc *c, size_t ti, struct fy_node *kn, struct fy_node *spec, int fb)
{
    struct fx_plan_table *t = (struct fx_plan_table *)&c->p->plan.tables[ti];
    int rc = ident(c, kn, fb, "table name", 1, &t->name);
    if (rc)
        return rc;
    int tline = at(kn, fb);
    t->skip_unless_field = -1;
    char what[96];
    snprintf(what, sizeof(what), "table '%s'", t->name);
    if ((rc = check_keys(c, spec, tline, what, table_keys, NELEM(table_keys))))
        return rc;
    int line, found;
    struct fy_node *n;
    if ((n = get(c, spec, "description", &line, &found)), found) {
        const char *d;
        if ((rc = str(c, n, line, "description", &d)))
            return rc;
    }
    if ((n = get(c, spec, "when", &line, &found)), found) {
        snprintf(what, sizeof(what), "when of table '%s'", t->name);
        if ((rc = field_ref(c, n, line, what, &t->skip_unless_field)))
            return rc;
    }

    n = get(c, spec, "columns", &line, &found);
    if (!found)
        return fail(c, tline, NULL, "table '%s' needs columns", t->name);
    snprintf(what, sizeof(what), "columns of table '%s'", t->name);
    if ((rc = want_map(c, n, line, what)))
        return rc;
    int k = fy_node_mapping_item_count(n);
    if (k < 1 || k > FX__MAX_COLUMNS)
        return fail(c, line, NULL, "table '%s' needs between 1 and %d columns", t->name,
                    FX__MAX_COLUMNS);
    struct fx_plan_column *cols = fx_arena_alloc(c->a, (size_t)k * sizeof(*cols));
    memset(cols, 0, (size_t)k * sizeof(*cols));
    t->cols = cols;
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(n, &it)) && t->ncols < (size_t)k) {
        if ((rc = compile_column(c, ti, fy_node_pair_key(pr), fy_node_pair_value(pr), line,
                                 &cols[t->ncols])))
            return rc;
        t->ncols++;
    }

    n = get(c, spec, "keys", &line, &found);
    if (!found)
        return fail(c, tline, NULL,
                    "table '%s' needs keys: the columns that identify a row, e.g. [[nome]]",
                    t->name);
    if ((rc = compile_keys(c, n, line, t)))
        return rc;

    if ((n = get(c, spec, "update", &line, &found)), found) {
        size_t m;
        snprintf(what, sizeof(what), "update of table '%s'", t->name);
        if ((rc = want_seq(c, n, line, what, 0, FX__MAX_COLUMNS, &m)))
            return rc;
        void *jt = NULL;
        struct fy_node *e;
        while ((e = fy_node_sequence_iterate(n, &jt))) {
            const char *s;
            size_t len;
            if ((rc = scalar(c, e, line, what, &s, &len)))
                return rc;
            int ci = column_index(t, s, len);
            if (ci < 0)
                return fail(c, at(e, line), NULL,
                            "update column '%.60s' of table '%s' is not one of its columns", s,
                            t->name);
            for (size_t a = 0; a < t->nkeys; a++)
                for (size_t b = 0; b < t->keys[a].ncols; b++)
                    if (t->keys[a].cols[b] == ci)
                        return fail(c, at(e, line), NULL,
                                    "column '%s' of table '%s' is part of a key and cannot be "
                                    "updated",
                                    cols[ci].name, t->name);
            cols[ci].update = 1;
        }
    }
    return 0;
}

static int compile_tables(struct cc *c, struct fy_node *n, int fb)
{
    int rc = want_map(c, n, fb, "tables");
    if (rc)
        return rc;
    int k = fy_node_mapping_item_count(n);
    if (k < 0 || k > FX__MAX_TABLES)
        return fail(c, at(n, fb), NULL, "too many tables (%d; at most %d)", k, FX__MAX_TABLES);
    c->tables = n;
    struct fx_plan_table *tabs = fx_arena_alloc(c->a, (size_t)(k ? k : 1) * sizeof(*tabs));
    memset(tabs, 0, (size_t)(k ? k : 1) * sizeof(*tabs));
    c->p->plan.tables = tabs;
    void *it = NULL;
    struct fy_node_pair *pr;
    size_t ti = 0;
    while ((pr = fy_node_mapping_iterate(n, &it)) && ti < (size_t)k) {
        if ((rc = compile_table(c, ti, fy_node_pair_key(pr), fy_node_pair_value(pr), at(n, fb))))
            return rc;
        c->p->plan.ntables = ++ti;
    }
    return 0;
}

/* The fields whose raw input text some table stores, in field order: chunk
 * rows carry only these (fx_plan.raw). */
static void plan_raw_fields(struct fx_pipeline *p, struct fx_arena *a)
{
    int *raw = fx_arena_alloc(a, (p->nfields ? p->nfields : 1) * sizeof(int));
    size_t n = 0;
    for (size_t f = 0; f < p->nfields; f++) {
        int used = 0;
        for (size_t t = 0; t < p->plan.ntables && !used; t++)
            for (size_t k = 0; k < p->plan.tables[t].ncols; k++)
                if (p->plan.tables[t].cols[k].kind == FX_SRC_RAW &&
                    p->plan.tables[t].cols[k].a == (int)f)
                    used = 1;
        if (used)
            raw[n++] = (int)f;
    }
    p->plan.raw = raw;
    p->plan.nraw = n;
}

/* ---- top level ---- */

static int compile(struct cc *c, struct fy_node *root)
{
    static const char *const keys[] = {"name",  "description", "options", "fields",
                                       "rules", "dedupe",      "tables"};
    struct fx_pipeline *p = c->p;
    if (is_null(root))
        return fail(c, 1, NULL, "empty pipeline definition");
    int rc = check_keys(c, root, 1, "the pipeline", keys, NELEM(keys));
    if (rc)
        return rc;
    int line, found;
    struct fy_node *n = get(c, root, "name", &line, &found);
    if (!found)
        return fail(c, at(root, 1), NULL, "the pipeline needs a name");
    if ((rc = ident(c, n, line, "pipeline name", 0, &p->name)))
        return rc;
    if ((n = get(c, root, "description", &line, &found)), found)
        if ((rc = str(c, n, line, "description", &p->description)))
            return rc;
    if ((n = get(c, root, "options", &line, &found)), found)
        if ((rc = compile_options(c, n, line)))
            return rc;
    n = get(c, root, "fields", &line, &found);
    if (!found)
        return fail(c, at(root, 1), NULL, "the pipeline needs fields");
    if ((rc = compile_fields(c, n, line)))
        return rc;
    if ((n = get(c, root, "rules", &line, &found)), found)
        if ((rc = compile_rules(c, n, line)))
            return rc;
    n = get(c, root, "dedupe", &line, &found);
    if ((rc = compile_dedupe(c, found, n, line)))
        return rc;
    if ((n = get(c, root, "tables", &line, &found)), found)
        if ((rc = compile_tables(c, n, line)))
            return rc;
    plan_raw_fields(p, c->a);
    return 0;
}

static void quiet_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

/* First collected libfyaml error as FX_EPARSE. */
static int yaml_error(struct fy_diag *diag, const char *source, struct fx_err *err)
{
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it))) {
        if (e->type < FYET_ERROR)
            continue;
        if (err) {
            fx_err_clear(err);
            snprintf(err->source, sizeof(err->source), "%s", source);
            err->row = e->line > 0 ? e->line : 0;
            err->column = e->column > 0 ? e->column : 0;
        }
        return fx_err_set(err, FX_EPARSE, "YAML syntax error: %s", e->msg ? e->msg : "?");
    }
    if (err) {
        fx_err_clear(err);
        snprintf(err->source, sizeof(err->source), "%s", source);
    }
    return fx_err_set(err, FX_EPARSE, "YAML syntax error");
}

/*
 * YAML text must be UTF-8 without control characters. Checking it before
 * libfyaml sees it gives a precise error, and keeps malformed bytes away from
 * the parser (libfyaml 0.7 can loop on invalid UTF-8 in a directive line).
 */
static int check_text(const char *yaml, size_t len, const char *source, struct fx_err *err)
{
    size_t bad = fx_utf8_check(yaml, len);
    const char *why = "invalid UTF-8";
    for (size_t i = 0; i < bad; i++) {
        unsigned char c = (unsigned char)yaml[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            bad = i;
            why = "control character";
            break;
        }
    }
    if (bad == len)
        return 0;
    long line = 1;
    size_t bol = 0;
    for (size_t i = 0; i < bad; i++)
        if (yaml[i] == '\n')
            line++, bol = i + 1;
    if (err) {
        fx_err_clear(err);
        snprintf(err->source, sizeof(err->source), "%s", source);
        err->row = line;
        err->column = (int)(bad - bol + 1);
    }
    return fx_err_set(err, FX_EPARSE, "%s (byte 0x%02x) in the pipeline definition", why,
                      (unsigned char)yaml[bad]);
}

int fx_pipeline_load_mem(const char *yaml, size_t len, const char *source, struct fx_pipeline **out,
                         struct fx_err *err)
{
    if (out)
        *out = NULL;
    if (!source)
        source = "pipeline";
    if (!out || (!yaml && len))
        return fx_err_set(err, FX_EINVAL, "no pipeline text");
    if (len > FX__YAML_MAX_BYTES) {
        fx_err_clear(err);
        if (err)
            snprintf(err->source, sizeof(err->source), "%s", source);
        return fx_err_set(err, FX_ETOOBIG, "pipeline definition is larger than %d bytes",
                          FX__YAML_MAX_BYTES);
    }
    int rc = check_text(yaml ? yaml : "", len, source, err);
    if (rc)
        return rc;
    /* line breaks as LF only: same line numbers, and libfyaml 0.7.12 leaks on some runs
     * of bare CRs inside quoted scalars (found by fuzzing) */
    char *text = fx_malloc(len + 1);
    size_t tlen = 0;
    for (size_t i = 0; i < len; i++) {
        if (yaml[i] == '\r') {
            text[tlen++] = '\n';
            if (i + 1 < len && yaml[i + 1] == '\n')
                i++;
        } else {
            text[tlen++] = yaml[i];
        }
    }
    text[tlen] = '\0';
    struct fx_pipeline *p = fx_calloc(1, sizeof(*p));
    fx_arena_init(&p->arena, 16 * 1024);
    p->chunk_rows = 1000;
    fx_sha256_hex(yaml ? yaml : "", len, p->digest);
    struct cc c = {
        .p = p, .a = &p->arena, .err = err, .source = source, .input = text, .input_len = tlen};

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = quiet_output;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    struct fy_parser *fyp = NULL;
    struct fy_document *doc = NULL, *doc2 = NULL;
    if (!diag) {
        rc = fx_err_set(err, FX_ENOMEM, "cannot create YAML parser");
        goto out;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {
        .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2,
        .diag = diag,
    };
    fyp = fy_parser_create(&cfg);
    if (!fyp || fy_parser_set_string(fyp, text, tlen) != 0) {
        rc = fx_err_set(err, FX_ENOMEM, "cannot create YAML parser");
        goto out;
    }
    doc = fy_parse_load_document(fyp);
    if (!doc || fy_diag_got_error(diag)) {
        if (fy_diag_got_error(diag)) {
            rc = yaml_error(diag, source, err);
            goto out;
        }
        rc = fail(&c, 1, NULL, "empty pipeline definition");
        goto out;
    }
    doc2 = fy_parse_load_document(fyp);
    if (fy_diag_got_error(diag)) {
        rc = yaml_error(diag, source, err);
        goto out;
    }
    if (doc2) {
        rc = fail(&c, at(fy_document_root(doc2), 0), NULL,
                  "more than one YAML document: a file holds one pipeline");
        goto out;
    }
    rc = compile(&c, fy_document_root(doc));
out:
    if (doc2)
        fy_parse_document_destroy(fyp, doc2);
    if (doc)
        fy_parse_document_destroy(fyp, doc);
    if (fyp)
        fy_parser_destroy(fyp);
    if (diag)
        fy_diag_destroy(diag);
    free(text);
    if (rc) {
        fx_pipeline_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int fx_pipeline_load_file(const char *path, struct fx_pipeline **out, struct fx_err *err)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return fx_err_set(err, FX_EINVAL, "no pipeline file");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        fx_err_clear(err);
        if (err)
            snprintf(err->source, sizeof(err->source), "%s", path);
        return fx_err_set(err, e == ENOENT ? FX_ENOTFOUND : FX_EIO, "cannot open pipeline file: %s",
                          strerror(e));
    }
    size_t cap = FX__YAML_MAX_BYTES + 1;
    char *buf = fx_malloc(cap);
    size_t len = fread(buf, 1, cap, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad) {
        fx_err_clear(err);
        if (err)
            snprintf(err->source, sizeof(err->source), "%s", path);
        rc = fx_err_set(err, FX_EIO, "cannot read pipeline file");
    } else {
        rc = fx_pipeline_load_mem(buf, len, path, out, err);
    }
    free(buf);
    return rc;
}

void fx_pipeline_free(struct fx_pipeline *p)
{
    if (!p)
        return;
    fx_arena_cleanup(&p->arena);
    free(p);
}

const char *fx_pipeline_name(const struct fx_pipeline *p)
{
    return p->name;
}

const char *fx_pipeline_description(const struct fx_pipeline *p)
{
    return p->description ? p->description : "";
}

const char *fx_pipeline_digest(const struct fx_pipeline *p)
{
    return p->digest;
}

size_t fx_pipeline_nfields(const struct fx_pipeline *p)
{
    return p->nfields;
}

const char *fx_pipeline_field_name(const struct fx_pipeline *p, size_t i)
{
    return i < p->nfields ? p->fields[i].name : NULL;
}

enum fx_type fx_pipeline_field_type(const struct fx_pipeline *p, size_t i)
{
    return i < p->nfields ? p->fields[i].type : FX_T_STRING;
}

int fx_pipeline_field_index(const struct fx_pipeline *p, const char *name)
{
    for (size_t i = 0; name && i < p->nfields; i++)
        if (strcmp(p->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

int fx_pipeline_dedupe_by_content(const struct fx_pipeline *p)
{
    return p->dedupe_by_content;
}

size_t fx_pipeline_chunk_rows(const struct fx_pipeline *p)
{
    return p->chunk_rows;
}

const struct fx_plan *fx_pipeline_plan(const struct fx_pipeline *p)
{
    return &p->plan;
}
