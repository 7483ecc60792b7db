/* SPDX-License-Identifier: MIT */
/*
 * Configuration loading, validation and reporting, driven by the key table in
 * config_keys.c.
 *
 * Design: a config is one slot per table row (text as written, parsed
 * number, origin). Sources are applied lowest precedence first, each
 * overwriting what came before: defaults, the YAML file, the .env file, the
 * process environment; flags (fx_config_set) come last. Every value is
 * validated where it is read, so an error can name its own origin (file and
 * line, variable, flag) even when a higher source would have overridden it:
 * a broken file is reported, never silently masked. An empty value (or YAML
 * null) restores the default. Loading is single-threaded; a loaded config is
 * read-only and may be shared between threads as long as nobody calls
 * fx_config_set.
 */
#include "fluxo/config.h"
#include "core/config_internal.h"
#include "fluxo/error.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

#define CONFIG_FILE_CAP ((size_t)1 << 20) /* YAML and .env files are small */
#define ENV_PREFIX "FLUXO_"

struct slot {
    char *text;   /* NULL = unset */
    int64_t num;  /* parsed value of text (0 for strings and unset) */
    char *origin; /* "default", "flag", "env FLUXO_X", "<file>:<line>" */
};

struct fx_config {
    size_t n;
    struct slot *slot; /* parallel to fx_config_keys */
};

/* ---- the table ---------------------------------------------------------- */

static size_t key_count(void)
{
    size_t n = 0;
    while (fx_config_keys[n].name)
        n++;
    return n;
}

static long key_index(const char *name)
{
    for (size_t i = 0; fx_config_keys[i].name; i++)
        if (strcmp(fx_config_keys[i].name, name) == 0)
            return (long)i;
    return -1;
}

const struct fx_config_key *fx_config_key_find(const char *name)
{
    long i = name ? key_index(name) : -1;
    return i < 0 ? NULL : &fx_config_keys[i];
}

const char *fx__config_env_name(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return out;
    for (const char *p = ENV_PREFIX; *p && n + 1 < cap; p++)
        out[n++] = *p;
    for (const char *p = name; *p && n + 1 < cap; p++)
        out[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
    return out;
}

static long env_index(const char *var)
{
    char env[128];
    for (size_t i = 0; fx_config_keys[i].name; i++)
        if (strcmp(fx__config_env_name(fx_config_keys[i].name, env, sizeof(env)), var) == 0)
            return (long)i;
    return -1;
}

/* Is name the first part of dotted keys ("ingest" of "ingest.chunk_rows")? */
static const char *section_example(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; fx_config_keys[i].name; i++)
        if (strncmp(fx_config_keys[i].name, name, n) == 0 && fx_config_keys[i].name[n] == '.')
            return fx_config_keys[i].name;
    return NULL;
}

/* ---- "did you mean" ----------------------------------------------------- */

/* Optimal string alignment distance (Levenshtein + transpositions), ignoring case. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 128 || lb > 128)
        return (size_t)-1;
    size_t w = lb + 1;
    size_t *d = fx_malloc((la + 1) * w * sizeof(*d));
    for (size_t i = 0; i <= la; i++)
        d[i * w] = i;
    for (size_t j = 0; j <= lb; j++)
        d[j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca != cb;
            size_t best = d[(i - 1) * w + j] + 1;
            if (d[i * w + j - 1] + 1 < best)
                best = d[i * w + j - 1] + 1;
            if (d[(i - 1) * w + j - 1] + cost < best)
                best = d[(i - 1) * w + j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[(i - 2) * w + j - 2] + 1 < best)
                best = d[(i - 2) * w + j - 2] + 1;
            d[i * w + j] = best;
        }
    }
    size_t r = d[la * w + lb];
    free(d);
    return r;
}

const char *fx__config_suggest(const char *name, int env_style, char *out, size_t cap)
{
    size_t best = (size_t)-1;
    const char *pick = NULL;
    char env[128], pick_env[128];
    const char *probe = name;
    if (env_style && strncmp(name, ENV_PREFIX, strlen(ENV_PREFIX)) == 0)
        probe = name + strlen(ENV_PREFIX);
    for (size_t i = 0; fx_config_keys[i].name; i++) {
        const char *cand = fx_config_keys[i].name;
        if (env_style)
            cand = fx__config_env_name(cand, env, sizeof(env)) + strlen(ENV_PREFIX);
        size_t d = edit_distance(probe, cand);
        size_t len = strlen(cand);
        size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
        /* "chunk_rows" at top level: the user forgot the section. */
        const char *last = strrchr(cand, env_style ? '_' : '.');
        if (!env_style && last && strcasecmp(last + 1, probe) == 0)
            d = 1;
        if (d <= limit && d < best) {
            best = d;
            pick = fx_config_keys[i].name;
            if (env_style)
                snprintf(pick_env, sizeof(pick_env), "%s%s", ENV_PREFIX, cand);
        }
    }
    if (cap)
        snprintf(out, cap, "%s", !pick ? "" : env_style ? pick_env : pick);
    return out;
}

/* ---- formatting --------------------------------------------------------- */

static void fmt_size(int64_t v, char *out, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } u[] = {
        {"TiB", INT64_C(1) << 40}, {"GiB", INT64_C(1) << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        if (v != 0 && v % u[i].mult == 0) {
            snprintf(out, cap, "%lld%s", (long long)(v / u[i].mult), u[i].unit);
            return;
        }
    }
    snprintf(out, cap, "%lld bytes", (long long)v);
}

static void fmt_ms(int64_t v, char *out, size_t cap)
{
    if (v != 0 && v % 3600000 == 0)
        snprintf(out, cap, "%lldh", (long long)(v / 3600000));
    else if (v != 0 && v % 60000 == 0)
        snprintf(out, cap, "%lldm", (long long)(v / 60000));
    else if (v != 0 && v % 1000 == 0)
        snprintf(out, cap, "%llds", (long long)(v / 1000));
    else
        snprintf(out, cap, "%lldms", (long long)v);
}

static void fmt_bound(const struct fx_config_key *k, int64_t v, char *out, size_t cap)
{
    if (k->type == FX_CFG_SIZE)
        fmt_size(v, out, cap);
    else if (k->type == FX_CFG_MS)
        fmt_ms(v, out, cap);
    else
        snprintf(out, cap, "%lld", (long long)v);
}

static int bounded(const struct fx_config_key *k)
{
    return k->min != 0 || k->max != 0;
}

/* "debug|info|off" -> "debug, info, off" */
static void fmt_choices(const char *choices, const char *sep, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = choices; *p && n + 1 < cap; p++) {
        if (*p == '|') {
            n += (size_t)snprintf(out + n, cap - n, "%s", sep);
            if (n >= cap)
                n = cap - 1;
        } else {
            out[n++] = *p;
            out[n] = '\0';
        }
    }
}

/* Short type description for help and docs: "integer, 1 to 100000". */
static void fmt_type(const struct fx_config_key *k, char *out, size_t cap)
{
    static const char *const names[] = {"string", "integer", "boolean", "size", "duration"};
    char lo[32], hi[32];
    if (k->type == FX_CFG_STRING && k->choices) {
        char list[200];
        fmt_choices(k->choices, ", ", list, sizeof(list));
        snprintf(out, cap, "one of: %s", list);
    } else if (k->type != FX_CFG_STRING && k->type != FX_CFG_BOOL && bounded(k)) {
        fmt_bound(k, k->min, lo, sizeof(lo));
        fmt_bound(k, k->max, hi, sizeof(hi));
        snprintf(out, cap, "%s, %s to %s", names[k->type], lo, hi);
    } else {
        snprintf(out, cap, "%s%s", names[k->type], k->secret ? ", secret" : "");
    }
}

/* ---- value parsing ------------------------------------------------------ */

/* Unsigned decimal digits at *s (at least one); 0 or -1 (none) / -2 (overflow). */
static int parse_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

static int parse_unit_number(const char *text, const char *const *units, const int64_t *mult,
                             size_t nunits, int64_t *num)
{
    const char *p = text;
    uint64_t v;
    int rc = parse_digits(&p, &v);
    if (rc)
        return rc;
    while (*p == ' ')
        p++;
    int64_t m = -1;
    if (*p == '\0') {
        m = 1;
    } else {
        for (size_t i = 0; i < nunits; i++)
            if (strcmp(p, units[i]) == 0)
                m = mult[i];
    }
    if (m <= 0)
        return -1;
    if (v > (uint64_t)INT64_MAX / (uint64_t)m)
        return -2;
    *num = (int64_t)v * m;
    return 0;
}

static int parse_size(const char *text, int64_t *num)
{
    static const char *const units[] = {"B", "K",   "KiB", "M",  "MiB", "G", "GiB",
                                        "T", "TiB", "kB",  "MB", "GB",  "TB"};
    static const int64_t mult[] = {1,
                                   INT64_C(1) << 10,
                                   INT64_C(1) << 10,
                                   INT64_C(1) << 20,
                                   INT64_C(1) << 20,
                                   INT64_C(1) << 30,
                                   INT64_C(1) << 30,
                                   INT64_C(1) << 40,
                                   INT64_C(1) << 40,
                                   INT64_C(1000),
                                   INT64_C(1000000),
                                   INT64_C(1000000000),
                                   INT64_C(1000000000000)};
    return parse_unit_number(text, units, mult, sizeof(mult) / sizeof(mult[0]), num);
}

static int parse_ms(const char *text, int64_t *num)
{
    static const char *const units[] = {"ms", "s", "m", "h"};
    static const int64_t mult[] = {1, 1000, 60000, 3600000};
    return parse_unit_number(text, units, mult, sizeof(mult) / sizeof(mult[0]), num);
}

static int parse_int(const char *text, int64_t *num)
{
    const char *p = text;
    int neg = 0;
    uint64_t v;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int rc = parse_digits(&p, &v);
    if (rc)
        return rc;
    if (*p)
        return -1;
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -2;
    *num = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int parse_bool(const char *text, int64_t *num)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return (*num = 1), 0;
        if (strcasecmp(text, no[i]) == 0)
            return (*num = 0), 0;
    }
    return -1;
}

static int choice_ok(const char *choices, const char *text)
{
    size_t n = strlen(text);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, text, n) == 0)
            return 1;
        p += len + (bar ? 1 : 0);
    }
    return 0;
}

int fx__config_parse_value(const struct fx_config_key *k, const char *text, int64_t *num, char *why,
                           size_t cap)
{
    char lo[32], hi[32], range[80] = "";
    int64_t v = 0;
    int rc = 0;

    if (bounded(k)) {
        fmt_bound(k, k->min, lo, sizeof(lo));
        fmt_bound(k, k->max, hi, sizeof(hi));
        snprintf(range, sizeof(range), " from %s to %s", lo, hi);
    }
    /* Surrounding blanks are not part of a number ("FLUXO_X= 5 " in a shell). */
    char buf[128];
    if (k->type != FX_CFG_STRING) {
        while (*text == ' ' || *text == '\t')
            text++;
        size_t n = strlen(text);
        while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
            n--;
        if (n >= sizeof(buf))
            n = sizeof(buf) - 1; /* too long for any number: fails below */
        memcpy(buf, text, n);
        buf[n] = '\0';
        text = buf;
    }

    switch (k->type) {
    case FX_CFG_STRING:
        if (k->choices && !choice_ok(k->choices, text)) {
            char list[200];
            fmt_choices(k->choices, ", ", list, sizeof(list));
            snprintf(why, cap, "expected one of: %s", list);
            return FX_ECONFIG;
        }
        *num = 0;
        return 0;
    case FX_CFG_BOOL:
        if (parse_bool(text, &v) != 0) {
            snprintf(why, cap, "expected a boolean: true/false, yes/no, on/off or 1/0");
            return FX_ECONFIG;
        }
        *num = v;
        return 0;
    case FX_CFG_INT:
        rc = parse_int(text, &v);
        if (rc == -1) {
            snprintf(why, cap, "expected an integer%s", range);
            return FX_ECONFIG;
        }
        break;
    case FX_CFG_SIZE:
        rc = parse_size(text, &v);
        if (rc == -1) {
            snprintf(why, cap, "expected a size in bytes such as 1048576, 64KiB, 1MiB or 64kB%s",
                     range);
            return FX_ECONFIG;
        }
        break;
    case FX_CFG_MS:
        rc = parse_ms(text, &v);
        if (rc == -1) {
            snprintf(why, cap, "expected a duration such as 500, 500ms, 2s, 1m or 1h%s", range);
            return FX_ECONFIG;
        }
        break;
    }
    if (rc == -2 || (bounded(k) && (v < k->min || v > k->max))) {
        if (bounded(k))
            snprintf(why, cap, "out of range: must be%s", range);
        else
            snprintf(why, cap, "out of range");
        return FX_ECONFIG;
    }
    *num = v;
    return 0;
}

/* ---- errors ------------------------------------------------------------- */

static int err_at(struct fx_err *err, const char *source, long row, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int err_at(struct fx_err *err, const char *source, long row, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fx_err_vset_at(err, FX_ECONFIG, source, row, fmt, ap);
    va_end(ap);
    return FX_ECONFIG;
}

static int err_unknown(struct fx_err *err, const char *source, long row, const char *name,
                       int env_style)
{
    char hint[128];
    fx__config_suggest(name, env_style, hint, sizeof(hint));
    const char *sect = env_style ? NULL : section_example(name);
    if (sect)
        return err_at(err, source, row,
                      "'%s' is a section, not a key: set its keys under it (e.g. '%s')", name,
                      sect);
    return err_at(err, source, row, "unknown configuration %s '%s'%s%s%s",
                  env_style ? "variable" : "key", name, hint[0] ? "; did you mean '" : "", hint,
                  hint[0] ? "'?" : "");
}

/* ---- slots -------------------------------------------------------------- */

static struct slot *slot_of(const struct fx_config *c, const char *name, const char *fn)
{
    long i = name ? key_index(name) : -1;
    if (i < 0 || !c) {
        fprintf(stderr, "fluxo: %s: unknown configuration key '%s' (programming error)\n", fn,
                name ? name : "(null)");
        abort();
    }
    return &c->slot[i];
}

/*
 * Validate text for key i and store it with its origin. source/row locate the
 * value for errors; origin is what fx_config_origin will report.
 */
static int set_slot(struct fx_config *c, size_t i, const char *text, const char *source, long row,
                    const char *origin, struct fx_err *err)
{
    const struct fx_config_key *k = &fx_config_keys[i];
    const char *t = text && *text ? text : k->def;
    int64_t num = 0;
    char why[300];
    if (t && fx__config_parse_value(k, t, &num, why, sizeof(why)) != 0) {
        err_at(err, source, row, "%s", why);
        if (err) {
            snprintf(err->field, sizeof(err->field), "%s", k->name);
            if (!k->secret)
                fx_err_value(err, t, strlen(t));
        }
        return FX_ECONFIG;
    }
    struct slot *s = &c->slot[i];
    free(s->text);
    free(s->origin);
    s->text = fx_strdup(t);
    s->num = num;
    s->origin = fx_strdup(origin);
    return 0;
}

static int set_slot_at(struct fx_config *c, size_t i, const char *text, const char *file, long row,
                       struct fx_err *err)
{
    char *origin = fx_asprintf("%s:%ld", file, row);
    int rc = set_slot(c, i, text, file, row, origin, err);
    free(origin);
    return rc;
}

/* ---- files -------------------------------------------------------------- */

static int read_config_file(const char *path, const char *what, char **out, size_t *len,
                            struct fx_err *err)
{
    struct fx_buf b;
    char chunk[8192];
    int rc = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_at(err, path, 0, "cannot open %s: %s", what, strerror(errno));
    fx_buf_init(&b, CONFIG_FILE_CAP);
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n && fx_buf_append(&b, chunk, n) != 0) {
            err_at(err, path, 0, "%s is larger than %zu KiB", what, CONFIG_FILE_CAP >> 10);
            if (err)
                err->code = FX_ETOOBIG;
            rc = FX_ETOOBIG;
            goto out;
        }
        if (n < sizeof(chunk))
            break;
    }
    if (ferror(f)) {
        rc = err_at(err, path, 0, "cannot read %s: %s", what, strerror(errno));
        goto out;
    }
    *len = b.len;
    *out = fx_buf_take(&b);
out:
    fclose(f);
    fx_buf_cleanup(&b);
    return rc;
}

/* ---- YAML --------------------------------------------------------------- */

struct yaml_load {
    struct fx_config *c;
    const char *path;
    long *line_of; /* per key: line where this file set it, 0 = not yet */
    struct fx_err *err;
};

static long node_line(struct fy_node *n)
{
    struct fy_token *t = n ? fy_node_get_scalar_token(n) : NULL;
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    return m ? (long)m->line + 1 : 0;
}

static int yaml_is_null(struct fy_node *v)
{
    size_t len = 0;
    const char *s;
    if (!v)
        return 1;
    s = fy_node_get_scalar(v, &len);
    if (fy_node_get_style(v) != FYNS_PLAIN)
        return 0;
    return !s || len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int yaml_mapping(struct yaml_load *y, struct fy_node *map, const char *prefix)
{
    void *iter = NULL;
    struct fy_node_pair *pair;
    int rc = 0;
    while ((pair = fy_node_mapping_iterate(map, &iter))) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        size_t klen = 0;
        const char *ks = NULL;
        long line = node_line(kn);
        if (kn && fy_node_get_type(kn) == FYNT_SCALAR && !fy_node_is_alias(kn))
            ks = fy_node_get_scalar(kn, &klen);
        if (!ks || klen == 0 || memchr(ks, '\0', klen))
            return err_at(y->err, y->path, line, "configuration keys must be non-empty names");
        char *name = prefix ? fx_asprintf("%s.%.*s", prefix, (int)klen, ks) : fx_strndup(ks, klen);
        long idx = key_index(name);
        enum fy_node_type vt = vn ? fy_node_get_type(vn) : FYNT_SCALAR;

        if (vt == FYNT_MAPPING) {
            if (idx >= 0)
                rc = err_at(y->err, y->path, line, "key '%s' takes a single value, not a mapping",
                            name);
            else
                rc = yaml_mapping(y, vn, name);
        } else if (idx < 0) {
            rc = err_unknown(y->err, y->path, line, name, 0);
        } else if (vt == FYNT_SEQUENCE) {
            rc = err_at(y->err, y->path, line, "key '%s' takes a single value, not a list", name);
        } else if (vn && fy_node_is_alias(vn)) {
            rc = err_at(y->err, y->path, line, "key '%s': YAML aliases are not supported", name);
        } else if (y->line_of[idx]) {
            rc = err_at(y->err, y->path, line, "key '%s' is set twice (first at line %ld)", name,
                        y->line_of[idx]);
        } else {
            size_t vlen = 0;
            const char *vs = yaml_is_null(vn) ? NULL : fy_node_get_scalar(vn, &vlen);
            if (vs && memchr(vs, '\0', vlen)) {
                rc = err_at(y->err, y->path, line, "key '%s': value contains a NUL byte", name);
            } else {
                char *val = vs ? fx_strndup(vs, vlen) : NULL;
                y->line_of[idx] = line ? line : -1;
                rc = set_slot_at(y->c, (size_t)idx, val, y->path, line, y->err);
                free(val);
            }
        }
        free(name);
        if (rc)
            return rc;
    }
    return 0;
}

static void yaml_quiet(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

static int yaml_syntax_error(struct fy_diag *diag, const char *path, struct fx_err *err)
{
    void *iter = NULL;
    struct fy_diag_error *e = fy_diag_errors_iterate(diag, &iter);
    if (!e)
        return err_at(err, path, 0, "invalid YAML");
    err_at(err, path, e->line > 0 ? e->line : 0, "YAML syntax error: %s", e->msg);
    if (err && e->column > 0)
        err->column = e->column;
    return FX_ECONFIG;
}

static int load_yaml(struct fx_config *c, const char *path, struct fx_err *err)
{
    char *text = NULL;
    size_t len = 0;
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    struct fy_document *doc = NULL, *extra = NULL;
    struct yaml_load y = {.c = c, .path = path, .err = err};
    int rc = read_config_file(path, "configuration file", &text, &len, err);
    if (rc)
        return rc;

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = yaml_quiet;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (!diag) {
        rc = err_at(err, path, 0, "cannot create the YAML parser");
        goto out;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET, .diag = diag};
    fyp = fy_parser_create(&pcfg);
    if (!fyp || fy_parser_set_string(fyp, text, len) != 0) {
        rc = err_at(err, path, 0, "cannot create the YAML parser");
        goto out;
    }
    doc = fy_parse_load_document(fyp);
    if (fy_diag_got_error(diag)) {
        rc = yaml_syntax_error(diag, path, err);
        goto out;
    }
    if (doc) {
        extra = fy_parse_load_document(fyp);
        if (fy_diag_got_error(diag)) {
            rc = yaml_syntax_error(diag, path, err);
            goto out;
        }
        if (extra) {
            struct fy_document_state *st = fy_document_get_document_state(extra);
            const struct fy_mark *m = st ? fy_document_state_start_mark(st) : NULL;
            rc = err_at(err, path, m ? m->line + 1 : 0,
                        "only one YAML document is allowed in a configuration file");
            goto out;
        }
    }
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    if (!root || (fy_node_get_type(root) == FYNT_SCALAR && yaml_is_null(root)))
        goto out; /* empty file, or only comments: no keys */
    if (fy_node_get_type(root) != FYNT_MAPPING) {
        rc = err_at(err, path, node_line(root),
                    "expected a mapping of configuration keys (key: value lines), found a %s",
                    fy_node_get_type(root) == FYNT_SEQUENCE ? "list" : "single value");
        goto out;
    }
    y.line_of = fx_calloc(key_count(), sizeof(*y.line_of));
    rc = yaml_mapping(&y, root, NULL);
out:
    free(y.line_of);
    if (extra)
        fy_parse_document_destroy(fyp, extra);
    if (doc)
        fy_parse_document_destroy(fyp, doc);
    if (fyp)
        fy_parser_destroy(fyp);
    if (diag)
        fy_diag_destroy(diag);
    free(text);
    return rc;
}

/* ---- .env --------------------------------------------------------------- */

struct dotenv {
    const char *p, *end;
    long line;
};

static int at_eol(const struct dotenv *d)
{
    return d->p >= d->end || *d->p == '\n' ||
           (*d->p == '\r' && (d->p + 1 >= d->end || d->p[1] == '\n'));
}

static void skip_blanks(struct dotenv *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t'))
        d->p++;
}

/* Skip the rest of the line and its terminator. */
static void next_line(struct dotenv *d)
{
    while (d->p < d->end && *d->p != '\n')
        d->p++;
    if (d->p < d->end) {
        d->p++;
        d->line++;
    }
}

/* A quoted value starting at the opening quote; may span lines. */
static int dotenv_quoted(struct dotenv *d, struct fx_buf *val)
{
    char q = *d->p++;
    while (d->p < d->end && *d->p != q) {
        char ch = *d->p++;
        if (ch == '\n')
            d->line++;
        if (q == '"' && ch == '\\' && d->p < d->end) {
            char e = *d->p;
            if (e == 'n' || e == 't' || e == 'r' || e == '"' || e == '\\') {
                ch = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
                d->p++;
            }
        }
        fx_buf_putc(val, ch);
    }
    if (d->p >= d->end)
        return -1;
    d->p++; /* closing quote */
    return 0;
}

static void dotenv_unquoted(struct dotenv *d, struct fx_buf *val)
{
    const char *start = d->p;
    while (!at_eol(d)) {
        if (*d->p == '#' && d->p > start && (d->p[-1] == ' ' || d->p[-1] == '\t'))
            break; /* inline comment */
        d->p++;
    }
    const char *stop = d->p;
    while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
        stop--;
    fx_buf_append(val, start, (size_t)(stop - start));
}

static int is_ours(const char *key)
{
    return strncmp(key, ENV_PREFIX, strlen(ENV_PREFIX)) == 0 && strcmp(key, "FLUXO_CONFIG") != 0;
}

static int load_dotenv(struct fx_config *c, const char *path, struct fx_err *err)
{
    char *text = NULL, *key = NULL;
    size_t len = 0;
    struct fx_buf val;
    int rc = read_config_file(path, ".env file", &text, &len, err);
    if (rc)
        return rc;
    fx_buf_init(&val, 0);
    struct dotenv d = {.p = text, .end = text + len, .line = 1};

    while (d.p < d.end) {
        long line = d.line;
        skip_blanks(&d);
        if (at_eol(&d) || *d.p == '#') {
            next_line(&d);
            continue;
        }
        if (d.end - d.p > 7 && strncmp(d.p, "export", 6) == 0 &&
            (d.p[6] == ' ' || d.p[6] == '\t')) {
            d.p += 6;
            skip_blanks(&d);
        }
        const char *ks = d.p;
        while (d.p < d.end && !strchr(" \t=#\r\n", *d.p))
            d.p++;
        free(key);
        key = fx_strndup(ks, (size_t)(d.p - ks));
        skip_blanks(&d);
        if (!*key || d.p >= d.end || *d.p != '=') {
            /* Another tool's syntax is its business; ours must be KEY=VALUE. */
            if (*key && is_ours(key)) {
                rc = err_at(err, path, line, "expected %s=VALUE", key);
                goto out;
            }
            if (!*key) {
                rc = err_at(err, path, line, "expected KEY=VALUE");
                goto out;
            }
            next_line(&d);
            continue;
        }
        d.p++; /* '=' */
        skip_blanks(&d);
        fx_buf_reset(&val);
        if (d.p < d.end && (*d.p == '"' || *d.p == '\'')) {
            char q = *d.p;
            if (dotenv_quoted(&d, &val) != 0) {
                rc = err_at(err, path, line, "%s: %s-quoted value without a closing quote", key,
                            q == '"' ? "double" : "single");
                goto out;
            }
            skip_blanks(&d);
            if (!at_eol(&d) && *d.p != '#') {
                rc = err_at(err, path, d.line, "%s: unexpected text after the closing quote", key);
                goto out;
            }
        } else {
            dotenv_unquoted(&d, &val);
        }
        next_line(&d);

        if (!is_ours(key))
            continue; /* other tools' settings, and FLUXO_CONFIG */
        long idx = env_index(key);
        if (idx < 0) {
            rc = err_unknown(err, path, line, key, 1);
            goto out;
        }
        if (val.data && memchr(val.data, '\0', val.len)) {
            rc = err_at(err, path, line, "%s: value contains a NUL byte", key);
            goto out;
        }
        rc = set_slot_at(c, (size_t)idx, val.data ? val.data : "", path, line, err);
        if (rc)
            goto out;
    }
out:
    free(key);
    fx_buf_cleanup(&val);
    free(text);
    return rc;
}

/* ---- process environment ------------------------------------------------ */

/* Variables of the launcher and the test harness, not configuration. */
static int env_silently_ignored(const char *var)
{
    return strcmp(var, "FLUXO_CONFIG") == 0 || strcmp(var, "FLUXO_BIN") == 0 ||
           strcmp(var, "FLUXO_SOURCE_DIR") == 0 || strncmp(var, "FLUXO_TEST_", 11) == 0 ||
           strcmp(var, "FLUXO_AUTH_FAST_HASH") == 0 || strcmp(var, "FLUXO_BENCH_TOKEN") == 0;
}

static int load_environ(struct fx_config *c, struct fx_err *err)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
            continue;
        char *var = fx_strndup(*e, (size_t)(eq - *e));
        long idx = env_silently_ignored(var) ? -2 : env_index(var);
        int rc = 0;
        if (idx == -1) {
            char hint[128];
            fx__config_suggest(var, 1, hint, sizeof(hint));
            fx_log_warn("config", "ignoring environment variable %s: not a configuration key%s%s%s",
                        var, hint[0] ? " (did you mean " : "", hint, hint[0] ? "?)" : "");
        } else if (idx >= 0) {
            char *origin = fx_asprintf("env %s", var);
            rc = set_slot(c, (size_t)idx, eq + 1, origin, 0, origin, err);
            free(origin);
        }
        free(var);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- public API --------------------------------------------------------- */

void fx_config_free(struct fx_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->slot[i].text);
        free(c->slot[i].origin);
    }
    free(c->slot);
    free(c);
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int fx_config_load(const char *file, const char *dotenv, struct fx_config **out, struct fx_err *err)
{
    int rc = 0;
    struct fx_config *c = fx_calloc(1, sizeof(*c));
    c->n = key_count();
    c->slot = fx_calloc(c->n, sizeof(*c->slot));
    *out = NULL;
    fx_err_clear(err);

    for (size_t i = 0; i < c->n; i++) {
        rc = set_slot(c, i, NULL, "default", 0, "default", err);
        if (rc) { /* a bad default is a bug in config_keys.c */
            fprintf(stderr, "fluxo: bad default for configuration key '%s'\n",
                    fx_config_keys[i].name);
            abort();
        }
    }

    const char *env_file = getenv("FLUXO_CONFIG");
    if (file) {
        rc = load_yaml(c, file, err);
    } else if (env_file && *env_file) {
        rc = load_yaml(c, env_file, err);
        if (rc && err && !file_exists(env_file))
            snprintf(err->reason, sizeof(err->reason),
                     "FLUXO_CONFIG names a configuration file that does not exist");
    } else if (file_exists("fluxo.yaml")) {
        rc = load_yaml(c, "fluxo.yaml", err);
    }
    if (rc)
        goto out;

    if (dotenv)
        rc = load_dotenv(c, dotenv, err);
    else if (file_exists(".env"))
        rc = load_dotenv(c, ".env", err);
    if (rc)
        goto out;

    rc = load_environ(c, err);
out:
    if (rc) {
        fx_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int fx_config_set(struct fx_config *c, const char *name, const char *value, struct fx_err *err)
{
    long idx = name ? key_index(name) : -1;
    fx_err_clear(err);
    if (idx < 0)
        return err_unknown(err, "flag", 0, name ? name : "", 0);
    return set_slot(c, (size_t)idx, value, "flag", 0, "flag", err);
}

const char *fx_config_str(const struct fx_config *c, const char *name)
{
    return slot_of(c, name, "fx_config_str")->text;
}

int64_t fx_config_int(const struct fx_config *c, const char *name)
{
    const struct slot *s = slot_of(c, name, "fx_config_int");
    if (fx_config_keys[s - c->slot].type == FX_CFG_STRING) {
        fprintf(stderr, "fluxo: fx_config_int: '%s' is a string key (programming error)\n", name);
        abort();
    }
    return s->num;
}

int fx_config_bool(const struct fx_config *c, const char *name)
{
    const struct slot *s = slot_of(c, name, "fx_config_bool");
    if (fx_config_keys[s - c->slot].type != FX_CFG_BOOL) {
        fprintf(stderr, "fluxo: fx_config_bool: '%s' is not a boolean key (programming error)\n",
                name);
        abort();
    }
    return s->num != 0;
}

const char *fx_config_origin(const struct fx_config *c, const char *name)
{
    return slot_of(c, name, "fx_config_origin")->origin;
}

static const char *shown_value(const struct fx_config_key *k, const struct slot *s)
{
    if (!s->text)
        return "(unset)";
    return k->secret ? "********" : s->text;
}

void fx_config_dump(const struct fx_config *c, FILE *out)
{
    int wname = 0, wval = 0;
    for (size_t i = 0; i < c->n; i++) {
        int a = (int)strlen(fx_config_keys[i].name);
        int b = (int)strlen(shown_value(&fx_config_keys[i], &c->slot[i]));
        wname = a > wname ? a : wname;
        wval = b > wval ? b : wval;
    }
    for (size_t i = 0; i < c->n; i++)
        fprintf(out, "%-*s = %-*s   (%s)\n", wname, fx_config_keys[i].name, wval,
                shown_value(&fx_config_keys[i], &c->slot[i]), c->slot[i].origin);
}

void fx_config_help(FILE *out)
{
    enum { COLS = 5 };
    static const char *const head[COLS] = {"KEY", "ENVIRONMENT", "TYPE", "DEFAULT", "DESCRIPTION"};
    int w[COLS] = {0};
    char env[128], type[256];
    for (int j = 0; j < COLS; j++)
        w[j] = (int)strlen(head[j]);
    for (size_t i = 0; fx_config_keys[i].name; i++) {
        const struct fx_config_key *k = &fx_config_keys[i];
        fx__config_env_name(k->name, env, sizeof(env));
        fmt_type(k, type, sizeof(type));
        const char *cell[COLS - 1] = {k->name, env, type, k->def ? k->def : "-"};
        for (int j = 0; j < COLS - 1; j++)
            if ((int)strlen(cell[j]) > w[j])
                w[j] = (int)strlen(cell[j]);
    }
    fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2], head[2], w[3],
            head[3], head[4]);
    for (size_t i = 0; fx_config_keys[i].name; i++) {
        const struct fx_config_key *k = &fx_config_keys[i];
        fx__config_env_name(k->name, env, sizeof(env));
        fmt_type(k, type, sizeof(type));
        fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", w[0], k->name, w[1], env, w[2], type, w[3],
                k->def ? k->def : "-", k->help ? k->help : "");
    }
}

/* Markdown text: escape the characters that would end a cell or start markup. */
static void md_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (strchr("|<>*`\\", *s))
            fputc('\\', out);
        fputc(*s, out);
    }
}

void fx_config_doc_markdown(FILE *out)
{
    char env[128], type[256];
    fprintf(out, "| Key | Environment variable | Type | Default | Description |\n");
    fprintf(out, "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; fx_config_keys[i].name; i++) {
        const struct fx_config_key *k = &fx_config_keys[i];
        fx__config_env_name(k->name, env, sizeof(env));
        fmt_type(k, type, sizeof(type));
        fprintf(out, "| `%s` | `%s` | ", k->name, env);
        md_text(out, type);
        fprintf(out, " | ");
        if (k->def)
            fprintf(out, "`%s`", k->def);
        else
            fprintf(out, "(none)");
        fprintf(out, " | ");
        md_text(out, k->help ? k->help : "");
        fprintf(out, " |\n");
    }
}
