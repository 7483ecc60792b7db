/* SPDX-License-Identifier: MIT */
/*
 * The generator's uniqueness past 10^8 good rows without data_hora: the
 * customer documents run out and pass r shifts each customer's (product,
 * quantity). Reaching that for real takes 10^8 rows, so this test compiles
 * the generator with a document space of 1,000 and checks that good rows
 * still never share (document or e-mail, product, quantity).
 */
#define DOC_SPACE 1000ULL
#include "../../src/services/generate.c"

#include "testutil.h"

#include <stdio.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void digits(const char *s, char *out)
{
    for (; *s; s++)
        if (*s >= '0' && *s <= '9')
            *out++ = *s;
    *out = 0;
}

static void test_passes_keep_rows_unique(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 60000; /* 60 passes over 1,000 customers */
    o.seed = 8;
    o.with_data_hora = 0;
    o.bad_ratio = 0.02;
    o.dup_ratio = 0.02;
    struct fx_gen *g = fx_gen_new(&o);
    assert_non_null(g);
    assert_true(g->rounds);
    char **keys = calloc(o.rows, sizeof(char *));
    size_t nk = 0;
    const char *cells[FX_GEN_MAX_COLS];
    size_t n;
    int kind;
    while (fx_gen_next(g, cells, &n, &kind)) {
        assert_int_equal(n, 9);
        if (kind != FX_GEN_GOOD && kind != FX_GEN_WARN)
            continue;
        char d[32], key[512];
        digits(cells[4], d);
        snprintf(key, sizeof(key), "%s|%s|%s", *d ? d : cells[1], cells[5], cells[6]);
        keys[nk++] = strdup(key);
    }
    struct fx_gen_stats st;
    fx_gen_counts(g, &st);
    assert_int_equal(nk, st.good_unique);
    qsort(keys, nk, sizeof(keys[0]), cmp_str);
    for (size_t i = 1; i < nk; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            fail_msg("two good rows share the key %s", keys[i]);
    for (size_t i = 0; i < nk; i++)
        free(keys[i]);
    free(keys);
    fx_gen_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passes_keep_rows_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
