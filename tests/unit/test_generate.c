/* SPDX-License-Identifier: MIT */
/*
 * Tests of the sales data generator: determinism, exact counts, every row
 * parsed back from the CSV with an independent RFC 4180 splitter and checked
 * by an independent validator (CPF/CNPJ check digits, quantities, prices,
 * dates), repeats equal to earlier rows, good rows unique by content, and the
 * options (no data_hora, ';', Windows-1252).
 */
#include "testutil.h"

#include "fluxo/generate.h"

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ helpers */

static char *gen_to_mem(const struct fx_gen_opts *o, size_t *len, struct fx_gen_stats *st, int *rc)
{
    char *data = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&data, &n);
    assert_non_null(f);
    *rc = fx_generate_csv(o, f, st);
    assert_int_equal(fclose(f), 0);
    *len = n;
    return data;
}

/* One RFC 4180 record from *p; fields point into storage (caller frees with free_rec). */
struct rec {
    char *f[32];
    size_t n;
};

static void free_rec(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->f[i]);
    r->n = 0;
}

static int next_rec(const char **p, const char *end, char delim, struct rec *r)
{
    if (*p >= end)
        return 0;
    const char *s = *p;
    char *field = malloc((size_t)(end - s) + 1);
    size_t fl = 0;
    int inq = 0, was_quoted = 0;
    r->n = 0;
    for (;;) {
        if (s >= end) {
            assert_false(inq);
            break;
        }
        char c = *s++;
        if (inq) {
            if (c == '"') {
                if (s < end && *s == '"') {
                    field[fl++] = '"';
                    s++;
                } else {
                    inq = 0;
                }
            } else {
                field[fl++] = c;
            }
            continue;
        }
        if (c == '"') {
            assert_int_equal(fl, 0); /* quotes only open a field */
            assert_false(was_quoted);
            inq = was_quoted = 1;
        } else if (c == delim || c == '\n') {
            field[fl] = 0;
            assert_true(r->n < 32);
            r->f[r->n++] = strdup(field);
            fl = 0;
            was_quoted = 0;
            if (c == '\n')
                goto done;
        } else {
            assert_int_not_equal(c, '\r');
            field[fl++] = c;
        }
    }
    field[fl] = 0;
    r->f[r->n++] = strdup(field);
done:
    free(field);
    *p = s;
    return 1;
}

/* --------------------------------------------------------- validators */

static int digits_only(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9') {
            if (n + 1 >= cap)
                return -1;
            out[n++] = *s;
        } else if (*s != '.' && *s != '-' && *s != '/') {
            return -1;
        }
    }
    out[n] = 0;
    return (int)n;
}

static int cpf_ok(const char *d)
{
    int s = 0;
    for (int i = 0; i < 9; i++)
        s += (d[i] - '0') * (10 - i);
    int v1 = s * 10 % 11 % 10;
    s = 0;
    for (int i = 0; i < 10; i++)
        s += (d[i] - '0') * (11 - i);
    int v2 = s * 10 % 11 % 10;
    int same = 1;
    for (int i = 1; i < 11; i++)
        same &= d[i] == d[0];
    return !same && v1 == d[9] - '0' && v2 == d[10] - '0';
}

static int cnpj_ok(const char *d)
{
    static const int w[13] = {6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
    int s = 0;
    for (int i = 0; i < 12; i++)
        s += (d[i] - '0') * w[i + 1];
    int v1 = s % 11 < 2 ? 0 : 11 - s % 11;
    s = 0;
    for (int i = 0; i < 13; i++)
        s += (d[i] - '0') * w[i];
    int v2 = s % 11 < 2 ? 0 : 11 - s % 11;
    return v1 == d[12] - '0' && v2 == d[13] - '0';
}

/* "3500.00" or "3.500,00" to cents; -1 if neither. */
static long parse_price(const char *s)
{
    long v = 0;
    size_t n = strlen(s);
    if (n < 4)
        return -1;
    char sep = s[n - 3];
    if (sep != '.' && sep != ',')
        return -1;
    int group = 0, saw_dot = 0;
    for (size_t i = 0; i < n - 3; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i] - '0');
            group++;
        } else if (sep == ',' && s[i] == '.' && group > 0 && (!saw_dot || group == 3)) {
            saw_dot = 1;
            group = 0;
        } else {
            return -1;
        }
    }
    if (group == 0 || (saw_dot && group != 3))
        return -1;
    for (size_t i = n - 2; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "dd/mm/yyyy HH:MM:SS" or "yyyy-mm-ddTHH:MM:SS" to yyyymmddHHMMSS; -1 if invalid. */
static long long parse_dt(const char *s)
{
    int d, m, y, H, M, S;
    char tail;
    if (strlen(s) != 19)
        return -1;
    if (sscanf(s, "%2d/%2d/%4d %2d:%2d:%2d%c", &d, &m, &y, &H, &M, &S, &tail) != 6 &&
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &m, &d, &H, &M, &S, &tail) != 6)
        return -1;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || H > 23 || M > 59 || S > 59 || H < 0 || M < 0 || S < 0)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    return ((((y * 100LL + m) * 100 + d) * 100 + H) * 100 + M) * 100 + S;
}

static int email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at > s && strchr(at + 1, '.') && at[1] != '.' && !strchr(at + 1, '@');
}

enum {
    F_NOME = 1 << 0,
    F_NOID = 1 << 1,
    F_DOCLEN = 1 << 2,
    F_QTD = 1 << 3,
    F_VALOR = 1 << 4,
    F_DATA = 1 << 5,
    F_EMAIL = 1 << 6,
    F_OTHER = 1 << 7,
};

/* Problems of a row (bit set), as the sales pipeline sees them. doc_valid: check digits. */
static int row_faults(char **f, size_t n, int *doc_valid, char docdig[20])
{
    int faults = 0;
    *doc_valid = 0;
    docdig[0] = 0;
    if (!*f[0])
        faults |= F_NOME;
    if (!*f[4] && !*f[1])
        faults |= F_NOID;
    if (*f[4]) {
        int nd = digits_only(f[4], docdig, 20);
        if (nd != 11 && nd != 14)
            faults |= F_DOCLEN;
        else
            *doc_valid = nd == 11 ? cpf_ok(docdig) : cnpj_ok(docdig);
    }
    if (*f[1] && !email_ok(f[1]))
        faults |= *f[4] ? F_OTHER : F_EMAIL;
    char *e;
    long q = strtol(f[6], &e, 10);
    if (*e || q < 1 || q > 10)
        faults |= F_QTD;
    if (parse_price(f[7]) < 0)
        faults |= F_VALOR;
    if (n == 10) {
        long long dt = parse_dt(f[9]);
        if (dt < 0)
            faults |= F_DATA;
        else if (dt < 20240101000000LL || dt > 20251231235959LL)
            faults |= F_OTHER;
    }
    if (!*f[2] || !*f[3] || !*f[5] || !*f[8])
        faults |= F_OTHER;
    return faults;
}

static const int defect_fault[FX_GEN_DEFECT_COUNT] = {
    [FX_GEN_DEFECT_NONE] = 0,
    [FX_GEN_DEFECT_EMPTY_NOME] = F_NOME,
    [FX_GEN_DEFECT_NO_IDENTITY] = F_NOID,
    [FX_GEN_DEFECT_DOC_LENGTH] = F_DOCLEN,
    [FX_GEN_DEFECT_QUANTIDADE] = F_QTD,
    [FX_GEN_DEFECT_VALOR] = F_VALOR,
    [FX_GEN_DEFECT_DATA_HORA] = F_DATA,
    [FX_GEN_DEFECT_EMAIL] = F_EMAIL,
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and check that no two strings are equal. */
static void assert_all_distinct(char **v, size_t n)
{
    qsort(v, n, sizeof(v[0]), cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            fail_msg("duplicate key %s", v[i]);
}

static char *join(char **f, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(f[i]) + 1;
    char *s = malloc(len), *p = s;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(f[i]);
        memcpy(p, f[i], l);
        p += l;
        *p++ = '\x1f';
    }
    *p = 0;
    return s;
}

/*
 * Generate opts as CSV and, in step, with the row API; parse the CSV back and
 * check every row against its kind. Returns the stats.
 */
static void check_file(const struct fx_gen_opts *o, struct fx_gen_stats *out_st)
{
    size_t len;
    int rc;
    struct fx_gen_stats st;
    char *data = gen_to_mem(o, &len, &st, &rc);
    assert_int_equal(rc, 0);
    size_t ncols = o->with_data_hora ? 10 : 9;

    const char *p = data, *end = data + len;
    struct rec r;
    assert_true(next_rec(&p, end, o->delimiter, &r));
    size_t hn;
    const char *const *h = fx_gen_header(o, &hn);
    assert_int_equal(r.n, ncols);
    assert_int_equal(hn, ncols);
    for (size_t i = 0; i < ncols; i++)
        assert_string_equal(r.f[i], h[i]);
    free_rec(&r);

    struct fx_gen *g = fx_gen_new(o);
    assert_non_null(g);
    uint64_t rows = o->rows;
    char **good = calloc(rows + 1, sizeof(char *));
    char **keys = calloc(rows + 1, sizeof(char *));
    char **ids = calloc(rows + 1, sizeof(char *));
    char **people = calloc(rows + 1, sizeof(char *));
    char **persons = calloc(rows + 1, sizeof(char *));
    size_t ngood = 0, npeople = 0;
    long prod_price[128] = {0};
    char *prod_name[128] = {0};
    size_t nprod = 0;
    uint64_t cnt[4] = {0}, defects[FX_GEN_DEFECT_COUNT] = {0};
    long long last_dt = 0;

    for (uint64_t i = 0; i < rows; i++) {
        const char *cells[FX_GEN_MAX_COLS];
        size_t n;
        int kind;
        assert_int_equal(fx_gen_next(g, cells, &n, &kind), 1);
        assert_int_equal(n, ncols);
        assert_true(next_rec(&p, end, o->delimiter, &r));
        assert_int_equal(r.n, ncols);
        for (size_t c = 0; c < n; c++)
            assert_string_equal(r.f[c], cells[c]); /* quoting round-trips */
        cnt[kind]++;

        int doc_valid;
        char dd[20];
        int faults = row_faults(r.f, n, &doc_valid, dd);
        enum fx_gen_defect d = fx_gen_last_defect(g);
        char *line = join(r.f, n);
        if (*dd && !(faults & (F_NOME | F_NOID | F_DOCLEN | F_EMAIL))) {
            char *who[4] = {dd, r.f[0], r.f[1], r.f[3]};
            /* "nome\x1femail\x1fendereco\x1f" then the document, unterminated */
            char *doc_of[4] = {r.f[0], r.f[1], r.f[3], dd};
            persons[npeople] = join(doc_of, 4);
            *strrchr(persons[npeople], '\x1f') = 0;
            people[npeople++] = join(who, 4);
        }
        if (kind == FX_GEN_BAD) {
            assert_int_not_equal(d, FX_GEN_DEFECT_NONE);
            defects[d]++;
            if (faults != defect_fault[d])
                fail_msg("row %llu (%s): faults %#x, want %#x", (unsigned long long)i,
                         fx_gen_defect_name(d), faults, defect_fault[d]);
            assert_true(!*r.f[4] || doc_valid || (faults & F_DOCLEN));
            free(line);
        } else if (kind == FX_GEN_DUP) {
            assert_int_equal(d, FX_GEN_DEFECT_NONE);
            size_t j = 0;
            while (j < ngood && strcmp(good[j], line) != 0)
                j++;
            if (j == ngood)
                fail_msg("row %llu is a repeat of no earlier good row", (unsigned long long)i);
            free(line);
        } else {
            assert_int_equal(d, FX_GEN_DEFECT_NONE);
            if (faults)
                fail_msg("good row %llu has faults %#x: %s", (unsigned long long)i, faults, line);
            if (*r.f[4])
                assert_int_equal(doc_valid, kind == FX_GEN_GOOD);
            else
                assert_int_equal(kind, FX_GEN_GOOD);
            /* one price per product */
            size_t k = 0;
            while (k < nprod && strcmp(prod_name[k], r.f[5]) != 0)
                k++;
            long price = parse_price(r.f[7]);
            if (k == nprod) {
                assert_true(nprod < 128);
                prod_name[nprod] = strdup(r.f[5]);
                prod_price[nprod++] = price;
            } else {
                assert_int_equal(prod_price[k], price);
            }
            /* content key: document (else e-mail), product, quantity, price, data_hora */
            char key[512];
            long long dt = ncols == 10 ? parse_dt(r.f[9]) : 0;
            snprintf(key, sizeof(key), "%s|%s|%s|%ld|%lld", *dd ? dd : r.f[1], r.f[5], r.f[6],
                     price, dt);
            keys[ngood] = strdup(key);
            if (ncols == 10) {
                /* stronger: timestamps strictly increase over good rows */
                assert_true(dt > last_dt);
                last_dt = dt;
            } else {
                /* stronger: the identity alone is unique */
                ids[ngood] = strdup(*dd ? dd : r.f[1]);
            }
            good[ngood++] = line;
        }
        free_rec(&r);
    }
    assert_false(fx_gen_next(g, (const char *[FX_GEN_MAX_COLS]){0}, &hn, NULL));
    assert_true(p == end);

    struct fx_gen_stats st2;
    fx_gen_counts(g, &st2);
    assert_memory_equal(&st, &st2, sizeof(st));
    assert_int_equal(st.rows, rows);
    assert_int_equal(st.bad, cnt[FX_GEN_BAD]);
    assert_int_equal(st.dup, cnt[FX_GEN_DUP]);
    assert_int_equal(st.warn, cnt[FX_GEN_WARN]);
    assert_int_equal(st.good_unique, cnt[FX_GEN_GOOD] + cnt[FX_GEN_WARN]);
    assert_int_equal(st.good_unique, ngood);
    assert_int_equal(st.rows, st.bad + st.dup + st.good_unique);
    uint64_t dsum = 0;
    for (int d = 0; d < FX_GEN_DEFECT_COUNT; d++) {
        assert_int_equal(st.defects[d], defects[d]);
        dsum += defects[d];
    }
    assert_int_equal(dsum, st.bad);
    if (!o->with_data_hora)
        assert_int_equal(st.defects[FX_GEN_DEFECT_DATA_HORA], 0);

    assert_all_distinct(keys, ngood);
    /* a document always belongs to the same person (name, e-mail, address) */
    qsort(people, npeople, sizeof(people[0]), cmp_str);
    for (size_t i = 1; i < npeople; i++) {
        size_t dl = strcspn(people[i], "\x1f");
        if (strncmp(people[i - 1], people[i], dl + 1) == 0 && strcmp(people[i - 1], people[i]) != 0)
            fail_msg("one document, two people: %s / %s", people[i - 1], people[i]);
    }
    /* and a person (name, e-mail, address) has one document */
    qsort(persons, npeople, sizeof(persons[0]), cmp_str);
    for (size_t i = 1; i < npeople; i++) {
        size_t pl = (size_t)(strrchr(persons[i], '\x1f') - persons[i]) + 1;
        if (strncmp(persons[i - 1], persons[i], pl) == 0 && strcmp(persons[i - 1], persons[i]) != 0)
            fail_msg("one person, two documents: %s / %s", persons[i - 1], persons[i]);
    }
    for (size_t i = 0; i < npeople; i++) {
        free(people[i]);
        free(persons[i]);
    }
    free(people);
    free(persons);
    if (ncols == 9)
        assert_all_distinct(ids, ngood);
    for (size_t i = 0; i < ngood; i++) {
        free(good[i]);
        free(keys[i]);
        free(ids[i]);
    }
    for (size_t i = 0; i < nprod; i++)
        free(prod_name[i]);
    free(good);
    free(keys);
    free(ids);
    fx_gen_free(g);
    free(data);
    if (out_st)
        *out_st = st;
}

/* -------------------------------------------------------------- tests */

static void test_header(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 0;
    size_t len;
    int rc;
    char *data = gen_to_mem(&o, &len, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(data, "nome,email,telefone,endereco_completo,cpf_cnpj,produto,quantidade,"
                              "valor_unitario,forma_pagamento,data_hora\n");
    free(data);

    o.with_data_hora = 0;
    o.delimiter = ';';
    data = gen_to_mem(&o, &len, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(data, "nome;email;telefone;endereco_completo;cpf_cnpj;produto;quantidade;"
                              "valor_unitario;forma_pagamento\n");
    free(data);
}

static void test_deterministic(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 3000;
    o.seed = 42;
    o.bad_ratio = 0.1;
    o.dup_ratio = 0.05;
    o.warn_ratio = 0.02;
    size_t l1, l2, l3;
    int rc;
    char *a = gen_to_mem(&o, &l1, NULL, &rc);
    assert_int_equal(rc, 0);
    char *b = gen_to_mem(&o, &l2, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);

    o.seed = 43;
    char *c = gen_to_mem(&o, &l3, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_true(l1 != l3 || memcmp(a, c, l1) != 0);
    /* and not just a little different: the first data rows differ */
    const char *ra = strchr(a, '\n') + 1, *rc2 = strchr(c, '\n') + 1;
    assert_true(strncmp(ra, rc2, (size_t)(strchr(ra, '\n') - ra)) != 0);
    free(a);
    free(b);
    free(c);
}

static void test_exact_counts(void **state)
{
    (void)state;
    static const struct {
        uint64_t rows;
        double bad, dup;
        uint64_t want_bad, want_dup;
    } cases[] = {
        {1000, 0.1, 0.05, 100, 50}, {333, 0.123, 0.2, 41, 67}, {10, 0.05, 0.05, 1, 1},
        {10, 0.04, 0.04, 0, 0},     {100, 0, 0, 0, 0},         {100, 1, 0, 100, 0},
        {100, 0.7, 0.5, 70, 29},    {1, 0, 1, 0, 0},           {2, 0, 1, 0, 1},
        {0, 0.5, 0.5, 0, 0},        {1000, 0, 0.999, 0, 999},  {7, 0.5, 0, 4, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx_gen_opts o;
        fx_gen_opts_init(&o);
        o.rows = cases[i].rows;
        o.bad_ratio = cases[i].bad;
        o.dup_ratio = cases[i].dup;
        o.seed = i;
        struct fx_gen_stats st;
        check_file(&o, &st);
        assert_int_equal(st.bad, cases[i].want_bad);
        assert_int_equal(st.dup, cases[i].want_dup);
        assert_int_equal(st.good_unique, cases[i].rows - cases[i].want_bad - cases[i].want_dup);
        assert_int_equal(st.warn, 0);
    }
}

static void test_rows_valid(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 20000;
    o.seed = 7;
    o.bad_ratio = 0.1;
    o.dup_ratio = 0.1;
    o.warn_ratio = 0.03;
    struct fx_gen_stats st;
    check_file(&o, &st);
    assert_int_equal(st.bad, 2000);
    assert_int_equal(st.dup, 2000);
    assert_true(st.warn > 0 && st.warn < st.good_unique / 10);
    for (int d = 1; d < FX_GEN_DEFECT_COUNT; d++)
        assert_true(st.defects[d] > 0); /* every defect occurs */
}

static void test_no_data_hora(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 20000;
    o.seed = 99;
    o.bad_ratio = 0.05;
    o.dup_ratio = 0.05;
    o.with_data_hora = 0;
    o.warn_ratio = 0.01;
    check_file(&o, NULL);
}

static void test_semicolon(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 5000;
    o.seed = 5;
    o.delimiter = ';';
    o.bad_ratio = 0.2;
    o.dup_ratio = 0.2;
    check_file(&o, NULL);
}

static void test_good_rows_look_real(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 5000;
    o.seed = 11;
    struct fx_gen *g = fx_gen_new(&o);
    const char *cells[FX_GEN_MAX_COLS];
    size_t n;
    int kind, accents = 0, br_price = 0, plain_price = 0, cpf = 0, cnpj = 0, iso = 0, br_dt = 0;
    int quoted_product = 0;
    while (fx_gen_next(g, cells, &n, &kind)) {
        assert_int_equal(kind, FX_GEN_GOOD);
        if (strchr(cells[0], 0xc3))
            accents++;
        /* e-mail: lowercase ASCII */
        for (const char *s = cells[1]; *s; s++)
            assert_true((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("._@", *s));
        /* phone: "(DD) ..." mostly */
        assert_true(cells[2][0] == '(' || cells[2][0] == '+' ||
                    (cells[2][0] >= '1' && cells[2][0] <= '9'));
        /* address: "..., N - Bairro, Cidade - UF" */
        const char *dash = strrchr(cells[3], '-');
        assert_non_null(dash);
        assert_int_equal(strlen(dash), 4);
        assert_non_null(strchr(cells[3], ','));
        char dd[20];
        int nd = digits_only(cells[4], dd, sizeof(dd));
        cpf += nd == 11;
        cnpj += nd == 14;
        if (strchr(cells[7], ','))
            br_price++;
        else
            plain_price++;
        if (strchr(cells[9], 'T'))
            iso++;
        else
            br_dt++;
        if (strchr(cells[5], '"'))
            quoted_product++;
    }
    assert_true(accents > 500);
    assert_true(br_price > 500 && plain_price > 500);
    assert_true(cpf > 3000 && cnpj > 200);
    assert_true(iso > 500 && br_dt > 500);
    assert_true(quoted_product > 0);
    fx_gen_free(g);
}

static void test_windows1252(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 3000;
    o.seed = 3;
    o.bad_ratio = 0.1;
    size_t lu, lw;
    int rc;
    char *u = gen_to_mem(&o, &lu, NULL, &rc);
    assert_int_equal(rc, 0);
    o.windows1252 = 1;
    char *w = gen_to_mem(&o, &lw, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_true(lw < lu);
    assert_non_null(memchr(w, 0xe3, lw)); /* ã */

    iconv_t cd = iconv_open("UTF-8", "WINDOWS-1252");
    assert_true(cd != (iconv_t)-1);
    char *back = malloc(lw * 3 + 1), *in = w, *out = back;
    size_t inleft = lw, outleft = lw * 3;
    assert_true(iconv(cd, &in, &inleft, &out, &outleft) != (size_t)-1);
    iconv_close(cd);
    assert_int_equal((size_t)(out - back), lu);
    assert_memory_equal(back, u, lu);
    free(back);
    free(u);
    free(w);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.bad_ratio = 1.5;
    assert_null(fx_gen_new(&o));
    struct fx_err err;
    fx_err_clear(&err);
    assert_int_equal(fx_gen_opts_check(&o, &err), FX_EINVAL);
    assert_true(err.reason[0] != 0);
    size_t len;
    int rc;
    char *data = gen_to_mem(&o, &len, NULL, &rc);
    assert_int_equal(rc, FX_EINVAL);
    assert_int_equal(len, 0);
    free(data);

    fx_gen_opts_init(&o);
    o.dup_ratio = -0.1;
    assert_int_equal(fx_gen_opts_check(&o, NULL), FX_EINVAL);
    fx_gen_opts_init(&o);
    o.delimiter = '\t';
    assert_int_equal(fx_gen_opts_check(&o, NULL), FX_EINVAL);
    fx_gen_opts_init(&o);
    assert_int_equal(fx_gen_opts_check(&o, NULL), 0);
    fx_gen_free(NULL);
}

static void test_write_error(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        skip();
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 10000;
    assert_int_equal(fx_generate_csv(&o, f, NULL), FX_EIO);
    fclose(f);
}

/* Informational: rows per second to /dev/null (not asserted: sanitizer builds are slow). */
static void test_speed(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        skip();
    struct fx_gen_opts o;
    fx_gen_opts_init(&o);
    o.rows = 300000;
    o.bad_ratio = 0.05;
    o.dup_ratio = 0.05;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(fx_generate_csv(&o, f, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fclose(f);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("generate: %.0f rows/s\n", (double)o.rows / s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_exact_counts),
        cmocka_unit_test(test_rows_valid),
        cmocka_unit_test(test_no_data_hora),
        cmocka_unit_test(test_semicolon),
        cmocka_unit_test(test_good_rows_look_real),
        cmocka_unit_test(test_windows1252),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
