/* SPDX-License-Identifier: MIT */
/*
 * Configuration: the key table, value types, YAML and .env files, the process
 * environment, precedence and origins, errors that name their line, dump and
 * help output, and the generated table in docs/configuration.md.
 *
 * Each test runs in a fresh temporary working directory (so ./fluxo.yaml and
 * ./.env are the test's own) with every FLUXO_* configuration variable of the
 * calling shell removed.
 */
#include "testutil.h"

#include "core/config_internal.h"
#include "fluxo/config.h"
#include "fluxo/error.h"
#include "fluxo/mem.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct ctx {
    char *dir;
    char *cwd;
};

static int setup(void **state)
{
    struct ctx *t = calloc(1, sizeof(*t));
    t->cwd = getcwd(NULL, 0);
    t->dir = tu_tmpdir();
    assert_non_null(t->dir);
    assert_int_equal(chdir(t->dir), 0);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *t = *state;
    assert_int_equal(chdir(t->cwd), 0);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t->cwd);
    free(t);
    return 0;
}

/* Remove FLUXO_* settings inherited from the shell (keep the harness's). */
static int group_setup(void **state)
{
    (void)state;
    for (;;) {
        char *victim = NULL;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "FLUXO_", 6) != 0 || strncmp(*e, "FLUXO_TEST_", 11) == 0 ||
                strncmp(*e, "FLUXO_BIN=", 10) == 0 || strncmp(*e, "FLUXO_SOURCE_DIR=", 17) == 0)
                continue;
            victim = strndup(*e, strcspn(*e, "="));
            break;
        }
        if (!victim)
            return 0;
        unsetenv(victim);
        free(victim);
    }
}

static void put(const char *name, const char *text)
{
    char *p = tu_write_file(".", name, text, strlen(text));
    assert_non_null(p);
    free(p);
}

static struct fx_config *load_ok(const char *file, const char *dotenv)
{
    struct fx_config *c = NULL;
    struct fx_err err;
    int rc = fx_config_load(file, dotenv, &c, &err);
    if (rc != 0) {
        char msg[1024];
        fx_err_format(&err, msg, sizeof(msg));
        fail_msg("fx_config_load: %s", msg);
    }
    assert_non_null(c);
    return c;
}

static int load_err(const char *file, const char *dotenv, struct fx_err *err)
{
    struct fx_config *c = (struct fx_config *)0x1;
    int rc = fx_config_load(file, dotenv, &c, err);
    assert_int_not_equal(rc, 0);
    assert_null(c);
    assert_int_equal(err->code, rc);
    return rc;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay);
}

/* ---- the table ---------------------------------------------------------- */

static void test_table_is_consistent(void **state)
{
    (void)state;
    size_t n = 0;
    for (const struct fx_config_key *k = fx_config_keys; k->name; k++, n++) {
        char env[128], env2[128], why[300];
        int64_t v;
        assert_non_null(k->help);
        assert_true(k->min <= k->max);
        assert_true(k->choices == NULL || k->type == FX_CFG_STRING);
        if (k->def)
            assert_int_equal(fx__config_parse_value(k, k->def, &v, why, sizeof(why)), 0);
        assert_ptr_equal(fx_config_key_find(k->name), k);
        fx__config_env_name(k->name, env, sizeof(env));
        for (const struct fx_config_key *o = fx_config_keys; o != k; o++) {
            assert_string_not_equal(o->name, k->name);
            assert_string_not_equal(fx__config_env_name(o->name, env2, sizeof(env2)), env);
        }
    }
    assert_int_equal(n, 44);
    assert_null(fx_config_key_find("nope"));
    char env[64];
    assert_string_equal(fx__config_env_name("ingest.chunk_rows", env, sizeof(env)),
                        "FLUXO_INGEST_CHUNK_ROWS");
}

static void test_defaults(void **state)
{
    (void)state;
    struct fx_config *c = load_ok(NULL, NULL);
    assert_string_equal(fx_config_str(c, "data_dir"), "./data");
    assert_null(fx_config_str(c, "inbox"));
    assert_null(fx_config_str(c, "db"));
    assert_null(fx_config_str(c, "bus"));
    assert_null(fx_config_str(c, "secret"));
    assert_string_equal(fx_config_str(c, "pipelines_dir"), "./pipelines");
    assert_string_equal(fx_config_str(c, "pipeline"), "vendas");
    assert_string_equal(fx_config_str(c, "timezone"), "America/Sao_Paulo");
    assert_string_equal(fx_config_str(c, "log_level"), "info");
    assert_string_equal(fx_config_str(c, "log_format"), "auto");
    assert_string_equal(fx_config_str(c, "http_addr"), "127.0.0.1:8001");
    assert_int_equal(fx_config_int(c, "ingest.chunk_rows"), 1000);
    assert_int_equal(fx_config_int(c, "ingest.max_line_bytes"), 1048576);
    assert_string_equal(fx_config_str(c, "ingest.max_line_bytes"), "1MiB");
    assert_int_equal(fx_config_int(c, "ingest.max_field_bytes"), 65536);
    assert_int_equal(fx_config_int(c, "ingest.max_fields"), 1024);
    assert_int_equal(fx_config_int(c, "relay.batch"), 64);
    assert_int_equal(fx_config_int(c, "relay.interval_ms"), 50);
    assert_int_equal(fx_config_int(c, "watch.interval_ms"), 500);
    assert_int_equal(fx_config_int(c, "watch.settle_ms"), 1000);
    assert_int_equal(fx_config_int(c, "distribution.workers"), 1);
    assert_int_equal(fx_config_int(c, "delivery.max_attempts"), 5);
    assert_int_equal(fx_config_int(c, "delivery.backoff_ms"), 500);
    assert_int_equal(fx_config_int(c, "delivery.lease_ms"), 60000);
    for (const struct fx_config_key *k = fx_config_keys; k->name; k++)
        assert_string_equal(fx_config_origin(c, k->name), "default");
    fx_config_free(c);
    fx_config_free(NULL);
}

/* ---- value types -------------------------------------------------------- */

static int64_t parse_ok(const struct fx_config_key *k, const char *text)
{
    int64_t v = -12345;
    char why[300] = "";
    if (fx__config_parse_value(k, text, &v, why, sizeof(why)) != 0)
        fail_msg("'%s' rejected: %s", text, why);
    return v;
}

static void parse_bad(const struct fx_config_key *k, const char *text, const char *expect)
{
    int64_t v = -12345;
    char why[300] = "";
    assert_int_equal(fx__config_parse_value(k, text, &v, why, sizeof(why)), FX_ECONFIG);
    assert_int_equal(v, -12345);
    assert_contains(why, expect);
}

static void test_parse_types(void **state)
{
    (void)state;
    const struct fx_config_key i = {.name = "i", .type = FX_CFG_INT};
    const struct fx_config_key ib = {.name = "ib", .type = FX_CFG_INT, .min = -5, .max = 5};
    const struct fx_config_key b = {.name = "b", .type = FX_CFG_BOOL};
    const struct fx_config_key s = {.name = "s", .type = FX_CFG_SIZE};
    const struct fx_config_key sb = {
        .name = "sb", .type = FX_CFG_SIZE, .min = 1024, .max = 64 << 20};
    const struct fx_config_key m = {.name = "m", .type = FX_CFG_MS};
    const struct fx_config_key ch = {.name = "c", .type = FX_CFG_STRING, .choices = "a|bb|c"};

    assert_int_equal(parse_ok(&i, "42"), 42);
    assert_int_equal(parse_ok(&i, "+42"), 42);
    assert_int_equal(parse_ok(&i, "-42"), -42);
    assert_int_equal(parse_ok(&i, " 7 "), 7);
    assert_int_equal(parse_ok(&i, "9223372036854775807"), INT64_MAX);
    assert_int_equal(parse_ok(&i, "-9223372036854775808"), INT64_MIN);
    parse_bad(&i, "9223372036854775808", "out of range");
    parse_bad(&i, "99999999999999999999999", "out of range");
    parse_bad(&i, "", "expected an integer");
    parse_bad(&i, "4x", "expected an integer");
    parse_bad(&i, "0x10", "expected an integer");
    parse_bad(&i, "1.5", "expected an integer");
    parse_bad(&i, "- 1", "expected an integer");
    assert_int_equal(parse_ok(&ib, "-5"), -5);
    parse_bad(&ib, "6", "out of range: must be from -5 to 5");
    parse_bad(&ib, "x", "expected an integer from -5 to 5");

    const char *yes[] = {"true", "yes", "on", "1", "TRUE", "Yes", "ON"};
    const char *no[] = {"false", "no", "off", "0", "False", "NO"};
    for (size_t k = 0; k < sizeof(yes) / sizeof(*yes); k++)
        assert_int_equal(parse_ok(&b, yes[k]), 1);
    for (size_t k = 0; k < sizeof(no) / sizeof(*no); k++)
        assert_int_equal(parse_ok(&b, no[k]), 0);
    parse_bad(&b, "maybe", "expected a boolean");
    parse_bad(&b, "2", "expected a boolean");

    assert_int_equal(parse_ok(&s, "1048576"), 1048576);
    assert_int_equal(parse_ok(&s, "16B"), 16);
    assert_int_equal(parse_ok(&s, "64KiB"), 65536);
    assert_int_equal(parse_ok(&s, "64K"), 65536);
    assert_int_equal(parse_ok(&s, "64 KiB"), 65536);
    assert_int_equal(parse_ok(&s, "1MiB"), 1048576);
    assert_int_equal(parse_ok(&s, "1M"), 1048576);
    assert_int_equal(parse_ok(&s, "1GiB"), INT64_C(1) << 30);
    assert_int_equal(parse_ok(&s, "1G"), INT64_C(1) << 30);
    assert_int_equal(parse_ok(&s, "2TiB"), INT64_C(2) << 40);
    assert_int_equal(parse_ok(&s, "64kB"), 64000);
    assert_int_equal(parse_ok(&s, "3MB"), 3000000);
    assert_int_equal(parse_ok(&s, "1GB"), 1000000000);
    parse_bad(&s, "64KB", "expected a size");
    parse_bad(&s, "1.5MiB", "expected a size");
    parse_bad(&s, "-1", "expected a size");
    parse_bad(&s, "MiB", "expected a size");
    parse_bad(&s, "12 parsecs", "expected a size");
    parse_bad(&s, "99999999999GiB", "out of range");
    assert_int_equal(parse_ok(&sb, "64MiB"), 64 << 20);
    parse_bad(&sb, "65MiB", "out of range: must be from 1KiB to 64MiB");
    parse_bad(&sb, "1023", "out of range");
    parse_bad(&sb, "lots",
              "expected a size in bytes such as 1048576, 64KiB, 1MiB or 64kB from "
              "1KiB to 64MiB");

    assert_int_equal(parse_ok(&m, "500"), 500);
    assert_int_equal(parse_ok(&m, "500ms"), 500);
    assert_int_equal(parse_ok(&m, "2s"), 2000);
    assert_int_equal(parse_ok(&m, "1m"), 60000);
    assert_int_equal(parse_ok(&m, "1h"), 3600000);
    assert_int_equal(parse_ok(&m, "0"), 0);
    parse_bad(&m, "1d", "expected a duration");
    parse_bad(&m, "1.5s", "expected a duration");
    parse_bad(&m, "-5ms", "expected a duration");
    parse_bad(&m, "s", "expected a duration");
    parse_bad(&m, "999999999999999999h", "out of range");

    assert_int_equal(parse_ok(&ch, "bb"), 0);
    parse_bad(&ch, "b", "expected one of: a, bb, c");
    parse_bad(&ch, "A", "expected one of");
}

/* ---- YAML --------------------------------------------------------------- */

static void test_yaml_values(void **state)
{
    (void)state;
    put("my.yaml", "# Fluxo settings\n"
                   "data_dir: /srv/fluxo\n"                     /* 2 */
                   "timezone: \"UTC\"\n"                        /* 3 */
                   "ingest:\n"                                  /* 4 */
                   "  chunk_rows: 500\n"                        /* 5 */
                   "  max_line_bytes: 2MiB\n"                   /* 6 */
                   "relay.batch: 7\n"                           /* 7 */
                   "delivery: {lease_ms: 2m, backoff_ms: 2s}\n" /* 8 */
                   "watch:\n"                                   /* 9 */
                   "  settle_ms: 0\n"                           /* 10 */
                   "secret: 's3cr3t'\n"                         /* 11 */
                   "inbox: ~\n"                                 /* 12 */
                   "log_level: debug\n");                       /* 13 */
    struct fx_config *c = load_ok("my.yaml", NULL);
    assert_string_equal(fx_config_str(c, "data_dir"), "/srv/fluxo");
    assert_string_equal(fx_config_origin(c, "data_dir"), "my.yaml:2");
    assert_string_equal(fx_config_str(c, "timezone"), "UTC");
    assert_int_equal(fx_config_int(c, "ingest.chunk_rows"), 500);
    assert_string_equal(fx_config_origin(c, "ingest.chunk_rows"), "my.yaml:5");
    assert_int_equal(fx_config_int(c, "ingest.max_line_bytes"), 2 << 20);
    assert_string_equal(fx_config_str(c, "ingest.max_line_bytes"), "2MiB");
    assert_int_equal(fx_config_int(c, "relay.batch"), 7);
    assert_string_equal(fx_config_origin(c, "relay.batch"), "my.yaml:7");
    assert_int_equal(fx_config_int(c, "delivery.lease_ms"), 120000);
    assert_int_equal(fx_config_int(c, "delivery.backoff_ms"), 2000);
    assert_string_equal(fx_config_origin(c, "delivery.backoff_ms"), "my.yaml:8");
    assert_int_equal(fx_config_int(c, "watch.settle_ms"), 0);
    assert_string_equal(fx_config_str(c, "secret"), "s3cr3t");
    assert_null(fx_config_str(c, "inbox")); /* null: the default */
    assert_string_equal(fx_config_origin(c, "inbox"), "my.yaml:12");
    assert_string_equal(fx_config_str(c, "log_level"), "debug");
    assert_int_equal(fx_config_int(c, "ingest.max_fields"), 1024);
    assert_string_equal(fx_config_origin(c, "ingest.max_fields"), "default");
    fx_config_free(c);

    /* The nested and the dotted forms are the same key. */
    put("a.yaml", "ingest:\n  chunk_rows: 33\n");
    put("b.yaml", "ingest.chunk_rows: 33\n");
    c = load_ok("a.yaml", NULL);
    struct fx_config *d = load_ok("b.yaml", NULL);
    assert_int_equal(fx_config_int(c, "ingest.chunk_rows"), fx_config_int(d, "ingest.chunk_rows"));
    assert_int_equal(fx_config_int(d, "ingest.chunk_rows"), 33);
    fx_config_free(c);
    fx_config_free(d);

    /* Empty files and comment-only files are valid and set nothing. */
    put("empty.yaml", "");
    put("comments.yaml", "# nothing here yet\n\n");
    put("dashes.yaml", "---\n");
    c = load_ok("empty.yaml", NULL);
    assert_int_equal(fx_config_int(c, "relay.batch"), 64);
    fx_config_free(c);
    c = load_ok("comments.yaml", NULL);
    fx_config_free(c);
    c = load_ok("dashes.yaml", NULL);
    fx_config_free(c);
}

static void test_yaml_unknown_key(void **state)
{
    (void)state;
    struct fx_err err;
    put("f.yaml", "data_dir: x\n"
                  "\n"
                  "data_dri: y\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.code, FX_ECONFIG);
    assert_string_equal(err.source, "f.yaml");
    assert_int_equal(err.row, 3);
    assert_string_equal(err.reason,
                        "unknown configuration key 'data_dri'; did you mean 'data_dir'?");

    /* Nested: the dotted name, the inner line. */
    put("g.yaml", "ingest:\n"
                  "  chunk_rows: 5\n"
                  "  max_feilds: 9\n");
    load_err("g.yaml", NULL, &err);
    assert_int_equal(err.row, 3);
    assert_string_equal(err.reason, "unknown configuration key 'ingest.max_feilds'; did you mean "
                                    "'ingest.max_fields'?");

    /* A key written without its section. */
    put("h.yaml", "chunk_rows: 5\n");
    load_err("h.yaml", NULL, &err);
    assert_int_equal(err.row, 1);
    assert_contains(err.reason, "did you mean 'ingest.chunk_rows'?");

    /* Nothing close: no suggestion. */
    put("i.yaml", "# x\ncompletely_different: 1\n");
    load_err("i.yaml", NULL, &err);
    assert_int_equal(err.row, 2);
    assert_string_equal(err.reason, "unknown configuration key 'completely_different'");

    /* A section given a value. */
    put("j.yaml", "ingest: 5\n");
    load_err("j.yaml", NULL, &err);
    assert_contains(err.reason, "'ingest' is a section");

    char msg[1024];
    put("k.yaml", "data_dir: 1\npipeline: 2\nrelay:\n  bacth: 3\n");
    load_err("k.yaml", NULL, &err);
    fx_err_format(&err, msg, sizeof(msg));
    assert_string_equal(msg, "k.yaml:4: unknown configuration key 'relay.bacth'; did you mean "
                             "'relay.batch'?");
}

static void test_yaml_bad_values(void **state)
{
    (void)state;
    struct fx_err err;
    char msg[1024];

    put("f.yaml", "data_dir: x\ningest:\n  chunk_rows: lots\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.code, FX_ECONFIG);
    assert_string_equal(err.source, "f.yaml");
    assert_int_equal(err.row, 3);
    assert_string_equal(err.field, "ingest.chunk_rows");
    assert_string_equal(err.value, "lots");
    assert_string_equal(err.reason, "expected an integer from 1 to 100000");
    fx_err_format(&err, msg, sizeof(msg));
    assert_string_equal(msg, "f.yaml:3: ingest.chunk_rows: expected an integer from 1 to 100000 "
                             "(value \"lots\")");

    put("f.yaml", "ingest.chunk_rows: 100001\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 1);
    assert_string_equal(err.value, "100001");
    assert_string_equal(err.reason, "out of range: must be from 1 to 100000");

    put("f.yaml", "\n\ningest:\n  max_line_bytes: 1 megabyte\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 4);
    assert_string_equal(err.field, "ingest.max_line_bytes");
    assert_string_equal(err.value, "1 megabyte");
    assert_contains(err.reason, "expected a size");
    assert_contains(err.reason, "from 1KiB to 64MiB");

    put("f.yaml", "ingest:\n  max_line_bytes: 128MiB\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 2);
    assert_string_equal(err.reason, "out of range: must be from 1KiB to 64MiB");

    put("f.yaml", "watch:\n  interval_ms: soon\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 2);
    assert_string_equal(err.field, "watch.interval_ms");
    assert_contains(err.reason, "expected a duration such as 500, 500ms, 2s, 1m or 1h");
    assert_contains(err.reason, "from 10ms to 1h");

    put("f.yaml", "delivery.lease_ms: 2d\n");
    load_err("f.yaml", NULL, &err);
    assert_contains(err.reason, "from 100ms to 24h");

    put("f.yaml", "log_level: loud\n");
    load_err("f.yaml", NULL, &err);
    assert_string_equal(err.reason, "expected one of: debug, info, warn, error, off");
    assert_string_equal(err.value, "loud");

    /* Structure errors. */
    put("f.yaml", "data_dir: [a, b]\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 1);
    assert_contains(err.reason, "not a list");
    put("f.yaml", "pipeline:\n  name: x\n");
    load_err("f.yaml", NULL, &err);
    assert_contains(err.reason, "not a mapping");
    put("f.yaml", "ingest:\n  chunk_rows: 1\ningest.chunk_rows: 2\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 3);
    assert_string_equal(err.reason, "key 'ingest.chunk_rows' is set twice (first at line 2)");
    put("f.yaml", "relay.batch: &x 5\nrelay.interval_ms: *x\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 2);
    assert_contains(err.reason, "aliases are not supported");
}

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    struct fx_err err;
    put("f.yaml", "data_dir: x\n"
                  "pipeline: y\n"
                  "timezone: \"UTC\n");
    load_err("f.yaml", NULL, &err);
    assert_string_equal(err.source, "f.yaml");
    assert_int_equal(err.row, 3);
    assert_contains(err.reason, "YAML syntax error");

    put("f.yaml", "data_dir: x\ndata_dir: y\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 2);
    assert_contains(err.reason, "duplicate key");

    put("f.yaml", "data_dir: x\n  pipeline: y\n");
    load_err("f.yaml", NULL, &err);
    assert_true(err.row >= 1 && err.row <= 2);

    /* Not a mapping. */
    put("f.yaml", "- data_dir\n- pipeline\n");
    load_err("f.yaml", NULL, &err);
    assert_contains(err.reason, "expected a mapping");
    assert_contains(err.reason, "found a list");
    put("f.yaml", "just words\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 1);
    assert_contains(err.reason, "found a single value");

    /* One document only. */
    put("f.yaml", "data_dir: x\n---\npipeline: y\n");
    load_err("f.yaml", NULL, &err);
    assert_int_equal(err.row, 2);
    assert_contains(err.reason, "only one YAML document");
}

/* ---- file selection ----------------------------------------------------- */

static void test_file_selection(void **state)
{
    (void)state;
    struct fx_err err;

    /* An explicit file must exist. */
    load_err("missing.yaml", NULL, &err);
    assert_string_equal(err.source, "missing.yaml");
    assert_contains(err.reason, "cannot open configuration file");
    load_err(NULL, "missing.env", &err);
    assert_string_equal(err.source, "missing.env");
    assert_contains(err.reason, "cannot open .env file");

    /* ./fluxo.yaml and ./.env are picked up when they exist. */
    put("fluxo.yaml", "pipeline: from_default_yaml\n");
    put(".env", "FLUXO_TIMEZONE=UTC\n");
    struct fx_config *c = load_ok(NULL, NULL);
    assert_string_equal(fx_config_str(c, "pipeline"), "from_default_yaml");
    assert_string_equal(fx_config_origin(c, "pipeline"), "fluxo.yaml:1");
    assert_string_equal(fx_config_str(c, "timezone"), "UTC");
    assert_string_equal(fx_config_origin(c, "timezone"), ".env:1");
    fx_config_free(c);

    /* FLUXO_CONFIG replaces ./fluxo.yaml; an explicit path replaces both. */
    put("other.yaml", "pipeline: from_env_yaml\n");
    put("third.yaml", "pipeline: from_arg\n");
    setenv("FLUXO_CONFIG", "other.yaml", 1);
    c = load_ok(NULL, NULL);
    assert_string_equal(fx_config_str(c, "pipeline"), "from_env_yaml");
    fx_config_free(c);
    c = load_ok("third.yaml", NULL);
    assert_string_equal(fx_config_str(c, "pipeline"), "from_arg");
    fx_config_free(c);
    setenv("FLUXO_CONFIG", "nowhere.yaml", 1);
    load_err(NULL, NULL, &err);
    assert_string_equal(err.source, "nowhere.yaml");
    assert_contains(err.reason, "FLUXO_CONFIG");
    unsetenv("FLUXO_CONFIG");

    /* An explicit .env replaces ./.env. */
    put("x.env", "FLUXO_PIPELINE=from_x_env\n");
    c = load_ok(NULL, "x.env");
    assert_string_equal(fx_config_str(c, "pipeline"), "from_x_env");
    assert_string_equal(fx_config_str(c, "timezone"), "America/Sao_Paulo");
    fx_config_free(c);

    /* A directory is not a file. */
    assert_int_equal(mkdir("adir", 0700), 0);
    load_err("adir", NULL, &err);
    assert_string_equal(err.source, "adir");
}

/* ---- precedence --------------------------------------------------------- */

static void test_precedence(void **state)
{
    (void)state;
    struct fx_err err;
    /* Each key is set by one more layer than the one before. */
    put("fluxo.yaml", "ingest:\n"
                      "  chunk_rows: 10\n"
                      "relay:\n"
                      "  batch: 10\n"
                      "distribution:\n"
                      "  workers: 10\n"
                      "delivery:\n"
                      "  max_attempts: 10\n");
    put(".env", "FLUXO_RELAY_BATCH=20\n"
                "FLUXO_DISTRIBUTION_WORKERS=20\n"
                "FLUXO_DELIVERY_MAX_ATTEMPTS=20\n");
    setenv("FLUXO_DISTRIBUTION_WORKERS", "30", 1);
    setenv("FLUXO_DELIVERY_MAX_ATTEMPTS", "30", 1);
    struct fx_config *c = load_ok(NULL, NULL);
    assert_int_equal(fx_config_set(c, "delivery.max_attempts", "40", &err), 0);

    assert_int_equal(fx_config_int(c, "ingest.max_fields"), 1024);
    assert_string_equal(fx_config_origin(c, "ingest.max_fields"), "default");
    assert_int_equal(fx_config_int(c, "ingest.chunk_rows"), 10);
    assert_string_equal(fx_config_origin(c, "ingest.chunk_rows"), "fluxo.yaml:2");
    assert_int_equal(fx_config_int(c, "relay.batch"), 20);
    assert_string_equal(fx_config_origin(c, "relay.batch"), ".env:1");
    assert_int_equal(fx_config_int(c, "distribution.workers"), 30);
    assert_string_equal(fx_config_origin(c, "distribution.workers"),
                        "env FLUXO_DISTRIBUTION_WORKERS");
    assert_int_equal(fx_config_int(c, "delivery.max_attempts"), 40);
    assert_string_equal(fx_config_origin(c, "delivery.max_attempts"), "flag");
    fx_config_free(c);

    /* An empty value restores the default, whatever it overrides. */
    setenv("FLUXO_DISTRIBUTION_WORKERS", "", 1);
    c = load_ok(NULL, NULL);
    assert_int_equal(fx_config_int(c, "distribution.workers"), 1);
    assert_string_equal(fx_config_origin(c, "distribution.workers"),
                        "env FLUXO_DISTRIBUTION_WORKERS");
    assert_int_equal(fx_config_set(c, "relay.batch", "", &err), 0);
    assert_int_equal(fx_config_int(c, "relay.batch"), 64);
    fx_config_free(c);

    unsetenv("FLUXO_DISTRIBUTION_WORKERS");
    unsetenv("FLUXO_DELIVERY_MAX_ATTEMPTS");
}

static void test_flags(void **state)
{
    (void)state;
    struct fx_err err;
    struct fx_config *c = load_ok(NULL, NULL);
    assert_int_equal(fx_config_set(c, "ingest.max_field_bytes", "1MiB", &err), 0);
    assert_int_equal(fx_config_int(c, "ingest.max_field_bytes"), 1 << 20);
    assert_string_equal(fx_config_origin(c, "ingest.max_field_bytes"), "flag");

    /* A bad value keeps the previous one. */
    assert_int_equal(fx_config_set(c, "ingest.max_field_bytes", "8", &err), FX_ECONFIG);
    assert_string_equal(err.source, "flag");
    assert_string_equal(err.field, "ingest.max_field_bytes");
    assert_string_equal(err.value, "8");
    assert_string_equal(err.reason, "out of range: must be from 16 bytes to 16MiB");
    assert_int_equal(fx_config_int(c, "ingest.max_field_bytes"), 1 << 20);

    assert_int_equal(fx_config_set(c, "data_dri", "x", &err), FX_ECONFIG);
    assert_string_equal(err.source, "flag");
    assert_string_equal(err.reason,
                        "unknown configuration key 'data_dri'; did you mean 'data_dir'?");
    assert_int_equal(fx_config_set(c, "DATA_DIR", "x", &err), FX_ECONFIG);
    assert_contains(err.reason, "did you mean 'data_dir'?");
    fx_config_free(c);
}

/* ---- .env --------------------------------------------------------------- */

static void test_dotenv_syntax(void **state)
{
    (void)state;
    put("t.env", "# settings for fluxo and friends\n"                       /* 1 */
                 "\n"                                                       /* 2 */
                 "export FLUXO_DATA_DIR=/var/lib/fluxo\n"                   /* 3 */
                 "FLUXO_PIPELINE = spaced   # trailing comment\n"           /* 4 */
                 "FLUXO_TIMEZONE='Europe/Lisbon # not a comment'\n"         /* 5 */
                 "FLUXO_HTTP_ADDR=\"0.0.0.0:80\"  # comment after quotes\n" /* 6 */
                 "FLUXO_SECRET=\"a\\\"b\\\\c\\nd\"\n"                       /* 7 */
                 "FLUXO_INBOX=/in#box\n"                                    /* 8 */
                 "   # indented comment\n"                                  /* 9 */
                 "OTHER_TOOL=whatever\n"                                    /* 10 */
                 "PRIVATE_KEY=\"-----BEGIN\n"                               /* 11 */
                 "FLUXO_BOGUS inside a quoted value\n"                      /* 12 */
                 "-----END\"\n"                                             /* 13 */
                 "FLUXO_CONFIG=ignored.yaml\n"                              /* 14 */
                 "FLUXO_RELAY_BATCH=9\r\n"                                  /* 15 */
                 "JUST_A_NAME\n"                                            /* 16 */
                 "FLUXO_DB='sqlite:x'");                                    /* 17 */
    struct fx_config *c = load_ok(NULL, "t.env");
    assert_string_equal(fx_config_str(c, "data_dir"), "/var/lib/fluxo");
    assert_string_equal(fx_config_origin(c, "data_dir"), "t.env:3");
    assert_string_equal(fx_config_str(c, "pipeline"), "spaced");
    assert_string_equal(fx_config_str(c, "timezone"), "Europe/Lisbon # not a comment");
    assert_string_equal(fx_config_str(c, "http_addr"), "0.0.0.0:80");
    assert_string_equal(fx_config_str(c, "secret"), "a\"b\\c\nd");
    assert_string_equal(fx_config_str(c, "inbox"), "/in#box");
    assert_int_equal(fx_config_int(c, "relay.batch"), 9);
    assert_string_equal(fx_config_origin(c, "relay.batch"), "t.env:15");
    assert_string_equal(fx_config_str(c, "db"), "sqlite:x");
    assert_string_equal(fx_config_origin(c, "db"), "t.env:17");
    fx_config_free(c);

    /* Single quotes are literal. */
    put("u.env", "FLUXO_DATA_DIR='a\\nb'\nFLUXO_PIPELINE=\n");
    c = load_ok(NULL, "u.env");
    assert_string_equal(fx_config_str(c, "data_dir"), "a\\nb");
    assert_string_equal(fx_config_str(c, "pipeline"), "vendas");
    assert_string_equal(fx_config_origin(c, "pipeline"), "u.env:2");
    fx_config_free(c);
}

static void test_dotenv_errors(void **state)
{
    (void)state;
    struct fx_err err;

    put("a.env", "OTHER=1\n# comment\nFLUXO_DATA_DRI=x\n");
    load_err(NULL, "a.env", &err);
    assert_int_equal(err.code, FX_ECONFIG);
    assert_string_equal(err.source, "a.env");
    assert_int_equal(err.row, 3);
    assert_string_equal(err.reason, "unknown configuration variable 'FLUXO_DATA_DRI'; did you "
                                    "mean 'FLUXO_DATA_DIR'?");

    put("b.env", "\nFLUXO_INGEST_CHUNK_ROWS=0\n");
    load_err(NULL, "b.env", &err);
    assert_string_equal(err.source, "b.env");
    assert_int_equal(err.row, 2);
    assert_string_equal(err.field, "ingest.chunk_rows");
    assert_string_equal(err.value, "0");
    assert_contains(err.reason, "out of range");

    put("c.env", "FLUXO_DATA_DIR=\"unterminated\nFLUXO_PIPELINE=x\n");
    load_err(NULL, "c.env", &err);
    assert_int_equal(err.row, 1);
    assert_contains(err.reason, "without a closing quote");

    put("d.env", "FLUXO_DATA_DIR='x' y\n");
    load_err(NULL, "d.env", &err);
    assert_int_equal(err.row, 1);
    assert_contains(err.reason, "after the closing quote");

    put("e.env", "\n\nFLUXO_DATA_DIR\n");
    load_err(NULL, "e.env", &err);
    assert_int_equal(err.row, 3);
    assert_string_equal(err.reason, "expected FLUXO_DATA_DIR=VALUE");

    put("f.env", "=value\n");
    load_err(NULL, "f.env", &err);
    assert_int_equal(err.row, 1);

    /* The YAML file is checked before the .env file. */
    put("g.yaml", "ingest:\n  chunk_rows: x\n");
    load_err("g.yaml", "a.env", &err);
    assert_string_equal(err.source, "g.yaml");
}

/* ---- process environment ------------------------------------------------ */

static void test_env_invalid_value(void **state)
{
    (void)state;
    struct fx_err err;
    char msg[1024];
    setenv("FLUXO_INGEST_CHUNK_ROWS", "abc", 1);
    load_err(NULL, NULL, &err);
    unsetenv("FLUXO_INGEST_CHUNK_ROWS");
    assert_string_equal(err.source, "env FLUXO_INGEST_CHUNK_ROWS");
    assert_int_equal(err.row, 0);
    assert_string_equal(err.field, "ingest.chunk_rows");
    assert_string_equal(err.value, "abc");
    fx_err_format(&err, msg, sizeof(msg));
    assert_string_equal(msg, "env FLUXO_INGEST_CHUNK_ROWS: ingest.chunk_rows: expected an "
                             "integer from 1 to 100000 (value \"abc\")");

    setenv("FLUXO_WATCH_SETTLE_MS", " 2s ", 1);
    struct fx_config *c = load_ok(NULL, NULL);
    unsetenv("FLUXO_WATCH_SETTLE_MS");
    assert_int_equal(fx_config_int(c, "watch.settle_ms"), 2000);
    assert_string_equal(fx_config_origin(c, "watch.settle_ms"), "env FLUXO_WATCH_SETTLE_MS");
    fx_config_free(c);
}

/* Run fn with stderr captured into a string (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "stderr.txt";
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    return text;
}

static void load_and_free(void)
{
    struct fx_config *c = load_ok(NULL, NULL);
    fx_config_free(c);
}

static void test_env_unknown_is_warned(void **state)
{
    (void)state;
    setenv("FLUXO_DATA_DIRR", "x", 1);
    setenv("FLUXO_SOMETHING_ELSE", "x", 1);
    setenv("FLUXO_TEST_WHATEVER", "x", 1);
    setenv("FLUXO_CONFIG", "", 1);
    char *text = capture_stderr(load_and_free);
    unsetenv("FLUXO_DATA_DIRR");
    unsetenv("FLUXO_SOMETHING_ELSE");
    unsetenv("FLUXO_TEST_WHATEVER");
    unsetenv("FLUXO_CONFIG");

    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    assert_contains(text, "FLUXO_DATA_DIRR");
    assert_contains(text, "did you mean FLUXO_DATA_DIR?");
    assert_contains(text, "FLUXO_SOMETHING_ELSE");
    assert_contains(text, "\"component\":\"config\"");
    assert_null(strstr(text, "FLUXO_TEST_WHATEVER"));
    assert_null(strstr(text, "FLUXO_CONFIG"));
    assert_null(strstr(text, "FLUXO_BIN"));
    free(text);
}

/* ---- output ------------------------------------------------------------- */

static char *dump(const struct fx_config *c, int help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    if (help == 2)
        fx_config_doc_markdown(f);
    else if (help)
        fx_config_help(f);
    else
        fx_config_dump(c, f);
    fclose(f);
    return text;
}

static void test_dump_masks_secrets(void **state)
{
    (void)state;
    struct fx_err err;
    struct fx_config *c = load_ok(NULL, NULL);
    char *text = dump(c, 0);
    assert_contains(text, "secret");
    assert_null(strstr(text, "********"));
    free(text);

    assert_int_equal(fx_config_set(c, "secret", "hunter2-very-secret", &err), 0);
    assert_int_equal(fx_config_set(c, "relay.batch", "12", &err), 0);
    text = dump(c, 0);
    assert_null(strstr(text, "hunter2"));
    assert_contains(text, "********");
    assert_contains(text, "(flag)");
    assert_contains(text, "(default)");

    /* One aligned line per key: "name = value   (origin)". */
    int lines = 0;
    long eq_col = -1;
    for (char *line = text; *line; lines++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *eq = strstr(line, " = ");
        assert_non_null(eq);
        if (eq_col < 0)
            eq_col = eq - line;
        assert_int_equal(eq - line, eq_col);
        assert_true(nl[-1] == ')');
        if (strncmp(line, "relay.batch ", 12) == 0)
            assert_contains(line, "= 12 ");
        line = nl + 1;
    }
    assert_int_equal(lines, 44);
    free(text);
    fx_config_free(c);
}

static void test_help_lists_every_key(void **state)
{
    (void)state;
    char *text = dump(NULL, 1);
    for (const struct fx_config_key *k = fx_config_keys; k->name; k++) {
        char env[128];
        assert_contains(text, k->name);
        assert_contains(text, fx__config_env_name(k->name, env, sizeof(env)));
        assert_contains(text, k->help);
    }
    assert_contains(text, "integer, 1 to 100000");
    assert_contains(text, "size, 1KiB to 64MiB");
    assert_contains(text, "duration, 100ms to 24h");
    assert_contains(text, "one of: debug, info, warn, error, off");
    free(text);
}

/* docs/configuration.md carries the table generated from fx_config_keys. */
static void test_docs_match_table(void **state)
{
    (void)state;
    const char *src = getenv("FLUXO_SOURCE_DIR");
    if (!src || !*src)
        skip();
    char *path = fx_asprintf("%s/docs/configuration.md", src);
    char *doc = tu_read_file(path, NULL);
    char *table = dump(NULL, 2);
    if (!doc || !strstr(doc, table))
        fail_msg("%s is out of date; its key table must read:\n%s", path, table);
    free(doc);
    free(table);
    free(path);
}

static void test_suggest(void **state)
{
    (void)state;
    char out[128];
    assert_string_equal(fx__config_suggest("data_dri", 0, out, sizeof(out)), "data_dir");
    assert_string_equal(fx__config_suggest("piepline", 0, out, sizeof(out)), "pipeline");
    assert_string_equal(fx__config_suggest("Timezone", 0, out, sizeof(out)), "timezone");
    assert_string_equal(fx__config_suggest("relay.bach", 0, out, sizeof(out)), "relay.batch");
    assert_string_equal(fx__config_suggest("max_fields", 0, out, sizeof(out)), "ingest.max_fields");
    assert_string_equal(fx__config_suggest("zzz", 0, out, sizeof(out)), "");
    assert_string_equal(fx__config_suggest("FLUXO_SECRT", 1, out, sizeof(out)), "FLUXO_SECRET");
    assert_string_equal(fx__config_suggest("FLUXO_HOME", 1, out, sizeof(out)), "");
}

/* Asking for a key that is not in the table is a bug: abort, loudly. */
static void test_unknown_getter_aborts(void **state)
{
    (void)state;
    struct fx_config *c = load_ok(NULL, NULL);
    for (int which = 0; which < 4; which++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, STDERR_FILENO);
            if (which == 0)
                (void)fx_config_str(c, "no.such.key");
            else if (which == 1)
                (void)fx_config_int(c, "no.such.key");
            else if (which == 2)
                (void)fx_config_int(c, "data_dir"); /* a string key */
            else
                (void)fx_config_bool(c, "relay.batch"); /* not a boolean */
            _exit(0);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
    }
    fx_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_is_consistent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_invalid_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_unknown_is_warned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_masks_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_lists_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs_match_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suggest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_getter_aborts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
