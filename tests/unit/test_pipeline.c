/* SPDX-License-Identifier: MIT */
/*
 * Schema engine: compiling pipelines/vendas.yaml and small inline pipelines,
 * header binding (accents, case, aliases, missing and unknown columns), row
 * validation (every field's canonical value, each bad-input rule, spreadsheet
 * cell types), dedupe keys, the upsert plan and YAML compile errors.
 */
#include "testutil.h"

#include "fluxo/error.h"
#include "fluxo/schema.h"
#include "fluxo/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* A record built from "a|b|c"; a cell "#n:123" is a NUMBER cell, "#d:" DATE, "#e:" ERROR. */
struct trec {
    struct fx_record rec;
    struct fx_cell cells[64];
    char buf[8192];
};

static struct fx_record *mkrec(struct trec *t, long row, const char *line)
{
    memset(&t->rec, 0, sizeof(t->rec));
    snprintf(t->buf, sizeof(t->buf), "%s", line);
    t->rec.row = row;
    t->rec.cells = t->cells;
    char *p = t->buf;
    for (;;) {
        char *bar = strchr(p, '|');
        if (bar)
            *bar = '\0';
        struct fx_cell *c = &t->cells[t->rec.ncells++];
        c->type = FX_CELL_STRING;
        if (!strncmp(p, "#n:", 3) || !strncmp(p, "#d:", 3) || !strncmp(p, "#e:", 3)) {
            c->type = p[1] == 'n' ? FX_CELL_NUMBER : p[1] == 'd' ? FX_CELL_DATE : FX_CELL_ERROR;
            p += 3;
        }
        if (!*p)
            c->type = FX_CELL_EMPTY;
        c->s = p;
        c->len = strlen(p);
        if (!bar)
            break;
        p = bar + 1;
    }
    return &t->rec;
}

static struct fx_pipeline *load_vendas(void)
{
    const char *src = getenv("FLUXO_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/pipelines/vendas.yaml", src ? src : ".");
    struct fx_pipeline *p = NULL;
    struct fx_err err;
    int rc = fx_pipeline_load_file(path, &p, &err);
    if (rc) {
        char msg[1024];
        fx_err_format(&err, msg, sizeof(msg));
        fail_msg("cannot load %s: %s", path, msg);
    }
    return p;
}

static struct fx_pipeline *load_text(const char *yaml)
{
    struct fx_pipeline *p = NULL;
    struct fx_err err;
    int rc = fx_pipeline_load_mem(yaml, strlen(yaml), "test.yaml", &p, &err);
    if (rc) {
        char msg[1024];
        fx_err_format(&err, msg, sizeof(msg));
        fail_msg("compile failed: %s", msg);
    }
    return p;
}

/* Compile must fail with code at line, reason containing want. */
static void expect_compile_error(const char *yaml, int code, long line, const char *want)
{
    struct fx_pipeline *p = NULL;
    struct fx_err err;
    int rc = fx_pipeline_load_mem(yaml, strlen(yaml), "bad.yaml", &p, &err);
    assert_null(p);
    if (rc != code || (line && err.row != line) || !strstr(err.reason, want)) {
        print_error("yaml:\n%s\n", yaml);
        fail_msg("expected %s at line %ld containing \"%s\"; got %s at line %ld: %s",
                 fx_errname(code), line, want, fx_errname(rc), err.row, err.reason);
    }
    assert_string_equal(err.source, "bad.yaml");
}

#define VENDAS_HEADER                                                                              \
    "nome|email|telefone|endereco_completo|cpf_cnpj|produto|quantidade|valor_unitario|"            \
    "forma_pagamento|data_hora"

/* Field indexes in vendas.yaml order. */
enum { NOME, EMAIL, TELEFONE, ENDERECO, CPF_CNPJ, PRODUTO, QUANTIDADE, VALOR, FORMA, DATA_HORA };

struct fixture {
    struct fx_pipeline *p;
    struct fx_binding *b;
    struct fx_row row;
    struct fx_issues iss;
};

static struct fixture *fixture_new(struct fx_pipeline *p, const char *header)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    fx->p = p;
    struct trec t;
    struct fx_err err;
    int rc = fx_pipeline_bind(p, mkrec(&t, 1, header), "vendas.csv", &fx->b, &err);
    if (rc)
        fail_msg("bind failed: %s", err.reason);
    fx_row_init(&fx->row, p);
    return fx;
}

static void fixture_free(struct fixture *fx)
{
    fx_row_cleanup(&fx->row);
    fx_issues_cleanup(&fx->iss);
    fx_binding_free(fx->b);
    fx_pipeline_free(fx->p);
    free(fx);
}

static int validate(struct fixture *fx, long row, const char *line)
{
    struct trec t;
    return fx_pipeline_validate(fx->b, mkrec(&t, row, line), &fx->row, &fx->iss);
}

/* The issue for field (or rule) name, or NULL. */
static const struct fx_issue *issue_for(const struct fixture *fx, const char *field,
                                        const char *rule)
{
    for (size_t i = 0; i < fx->iss.n; i++)
        if (!strcmp(fx->iss.v[i].field, field) && (!rule || !strcmp(fx->iss.v[i].rule, rule)))
            return &fx->iss.v[i];
    return NULL;
}

static void dump_issues(const struct fixture *fx)
{
    for (size_t i = 0; i < fx->iss.n; i++)
        print_message("  issue %s col %d field %s rule %s value '%s': %s\n",
                      fx->iss.v[i].severity == FX_ISSUE_ERROR ? "ERROR" : "WARN",
                      fx->iss.v[i].column, fx->iss.v[i].field, fx->iss.v[i].rule,
                      fx->iss.v[i].value, fx->iss.v[i].reason);
}

/* Validate and expect one error on field with rule, the row rejected. */
static void expect_error(struct fixture *fx, const char *line, const char *field, const char *rule,
                         const char *reason_part)
{
    int rc = validate(fx, 2, line);
    const struct fx_issue *is = issue_for(fx, field, rule);
    if (rc != FX_ESCHEMA || !is || is->severity != FX_ISSUE_ERROR ||
        (reason_part && !strstr(is->reason, reason_part))) {
        dump_issues(fx);
        fail_msg("row '%s': expected error %s/%s (%s)", line, field, rule,
                 reason_part ? reason_part : "");
    }
}

static const char *GOOD_ROW = "  Maria   da  Silva |MARIA@Example.COM|(11) 98765-4321|Rua A, 1|"
                              "529.982.247-25|Notebook Pro|2|R$ 1.234,56|Cartão de Crédito|"
                              "15/03/2024 14:30";

/* Row text with cell i replaced. */
static const char *with_cell(const char *line, int idx, const char *cell)
{
    static char out[4096];
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", line);
    out[0] = '\0';
    char *p = tmp;
    for (int i = 0; p; i++) {
        char *bar = strchr(p, '|');
        if (bar)
            *bar = '\0';
        if (i)
            strcat(out, "|");
        strcat(out, i == idx ? cell : p);
        p = bar ? bar + 1 : NULL;
    }
    return out;
}

/* ---- compile and plan ---- */

static void test_vendas_compiles(void **state)
{
    (void)state;
    struct fx_pipeline *p = load_vendas();
    assert_string_equal(fx_pipeline_name(p), "vendas");
    assert_int_equal(fx_pipeline_nfields(p), 10);
    assert_int_equal(fx_pipeline_chunk_rows(p), 1000);
    assert_int_equal(fx_pipeline_dedupe_by_content(p), 0);
    assert_int_equal(strlen(fx_pipeline_digest(p)), 64);
    assert_true(strlen(fx_pipeline_description(p)) > 0);
    static const char *const names[] = {
        "nome",    "email",      "telefone",       "endereco_completo", "cpf_cnpj",
        "produto", "quantidade", "valor_unitario", "forma_pagamento",   "data_hora"};
    static const enum fx_type types[] = {FX_T_STRING,   FX_T_EMAIL,   FX_T_PHONE, FX_T_STRING,
                                         FX_T_CPF_CNPJ, FX_T_STRING,  FX_T_INT,   FX_T_MONEY,
                                         FX_T_ENUM,     FX_T_DATETIME};
    for (size_t i = 0; i < 10; i++) {
        assert_string_equal(fx_pipeline_field_name(p, i), names[i]);
        assert_int_equal(fx_pipeline_field_type(p, i), types[i]);
        assert_int_equal(fx_pipeline_field_index(p, names[i]), (int)i);
    }
    assert_int_equal(fx_pipeline_field_index(p, "nope"), -1);
    assert_string_equal(fx_type_name(FX_T_MONEY), "money");
    assert_true(fx_type_is_integer(FX_T_MONEY));
    assert_false(fx_type_is_integer(FX_T_DATETIME));
    fx_pipeline_free(p);
    fx_pipeline_free(NULL);
}

static int col_of(const struct fx_plan_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i].name, name))
            return (int)i;
    fail_msg("table %s has no column %s", t->name, name);
    return -1;
}

static void test_vendas_plan(void **state)
{
    (void)state;
    struct fx_pipeline *p = load_vendas();
    const struct fx_plan *plan = fx_pipeline_plan(p);
    assert_int_equal(plan->ntables, 4);
    const struct fx_plan_table *cli = &plan->tables[0], *end = &plan->tables[1],
                               *prod = &plan->tables[2], *comp = &plan->tables[3];
    assert_string_equal(cli->name, "clientes");
    assert_string_equal(end->name, "enderecos");
    assert_string_equal(prod->name, "produtos");
    assert_string_equal(comp->name, "compras");

    /* clientes: two key alternatives, telefone updated */
    assert_int_equal(cli->ncols, 4);
    assert_int_equal(cli->nkeys, 2);
    assert_int_equal(cli->keys[0].ncols, 1);
    assert_int_equal(cli->keys[0].cols[0], col_of(cli, "cpf_cnpj"));
    assert_int_equal(cli->keys[1].ncols, 2);
    assert_int_equal(cli->keys[1].cols[0], col_of(cli, "nome"));
    assert_int_equal(cli->keys[1].cols[1], col_of(cli, "email"));
    assert_int_equal(cli->skip_unless_field, -1);
    const struct fx_plan_column *c = &cli->cols[col_of(cli, "telefone")];
    assert_int_equal(c->kind, FX_SRC_FIELD);
    assert_int_equal(c->a, TELEFONE);
    assert_int_equal(c->sqltype, FX_SQL_TEXT);
    assert_true(c->update);
    assert_false(c->not_null);
    c = &cli->cols[col_of(cli, "nome")];
    assert_true(c->not_null);
    assert_false(c->update);

    /* enderecos: only when there is an address; ref to clientes */
    assert_int_equal(end->skip_unless_field, ENDERECO);
    c = &end->cols[col_of(end, "cliente_id")];
    assert_int_equal(c->kind, FX_SRC_REF);
    assert_int_equal(c->a, 0);
    assert_int_equal(c->sqltype, FX_SQL_INT);
    assert_true(c->not_null);
    assert_int_equal(end->nkeys, 1);
    assert_int_equal(end->keys[0].ncols, 2);

    /* produtos: price updated, constant active flag */
    c = &prod->cols[col_of(prod, "preco_atual_centavos")];
    assert_int_equal(c->kind, FX_SRC_FIELD);
    assert_int_equal(c->a, VALOR);
    assert_int_equal(c->sqltype, FX_SQL_INT);
    assert_true(c->update);
    c = &prod->cols[col_of(prod, "ativo")];
    assert_int_equal(c->kind, FX_SRC_CONST);
    assert_int_equal(c->sqltype, FX_SQL_BOOL);
    assert_string_equal(c->constant, "1");
    assert_true(c->update);

    /* compras: refs, product, raw label, meta columns */
    assert_int_equal(comp->ncols, 11);
    c = &comp->cols[col_of(comp, "produto_id")];
    assert_int_equal(c->kind, FX_SRC_REF);
    assert_int_equal(c->a, 2);
    c = &comp->cols[col_of(comp, "valor_total_centavos")];
    assert_int_equal(c->kind, FX_SRC_PRODUCT);
    assert_int_equal(c->a, QUANTIDADE);
    assert_int_equal(c->b, VALOR);
    assert_int_equal(c->sqltype, FX_SQL_INT);
    assert_true(c->not_null);
    c = &comp->cols[col_of(comp, "forma_pagamento_original")];
    assert_int_equal(c->kind, FX_SRC_RAW);
    assert_int_equal(c->a, FORMA);
    assert_int_equal(c->sqltype, FX_SQL_TEXT);
    c = &comp->cols[col_of(comp, "data_hora")];
    assert_int_equal(c->kind, FX_SRC_FIELD);
    assert_int_equal(c->sqltype, FX_SQL_DATETIME);
    assert_false(c->not_null);
    c = &comp->cols[col_of(comp, "dedupe_id")];
    assert_int_equal(c->kind, FX_SRC_DEDUPE);
    assert_int_equal(c->sqltype, FX_SQL_TEXT);
    c = &comp->cols[col_of(comp, "lote_id")];
    assert_int_equal(c->kind, FX_SRC_BATCH);
    c = &comp->cols[col_of(comp, "linha_origem")];
    assert_int_equal(c->kind, FX_SRC_ROWNUM);
    assert_int_equal(c->sqltype, FX_SQL_INT);
    assert_int_equal(comp->nkeys, 1);
    assert_int_equal(comp->keys[0].cols[0], col_of(comp, "dedupe_id"));
    for (size_t i = 0; i < comp->ncols; i++)
        assert_false(comp->cols[i].update);
    fx_pipeline_free(p);
}

static void test_plan_sqltypes_and_consts(void **state)
{
    (void)state;
    struct fx_pipeline *p = load_text("name: t\n"
                                      "fields:\n"
                                      "  d: {type: date}\n"
                                      "  b: bool\n"
                                      "  x: {type: decimal, scale: 3}\n"
                                      "  e: {type: enum, values: [A, B]}\n"
                                      "tables:\n"
                                      "  t1:\n"
                                      "    keys: [[d]]\n"
                                      "    columns:\n"
                                      "      d: d\n"
                                      "      b: {field: b}\n"
                                      "      x: x\n"
                                      "      e: e\n"
                                      "      n: {const: 42}\n"
                                      "      f: {const: false}\n"
                                      "      s: {const: \"true\"}\n"
                                      "      w: {const: hello}\n");
    const struct fx_plan_table *t = &fx_pipeline_plan(p)->tables[0];
    static const enum fx_sqltype want[] = {FX_SQL_DATE, FX_SQL_BOOL, FX_SQL_INT,  FX_SQL_TEXT,
                                           FX_SQL_INT,  FX_SQL_BOOL, FX_SQL_TEXT, FX_SQL_TEXT};
    assert_int_equal(t->ncols, 8);
    for (size_t i = 0; i < t->ncols; i++)
        assert_int_equal(t->cols[i].sqltype, want[i]);
    assert_string_equal(t->cols[4].constant, "42");
    assert_string_equal(t->cols[5].constant, "0");
    assert_string_equal(t->cols[6].constant, "true");
    assert_string_equal(t->cols[7].constant, "hello");
    assert_int_equal(fx_pipeline_chunk_rows(p), 1000);
    fx_pipeline_free(p);
}

static void test_yaml_quoting(void **state)
{
    (void)state;
    /* single-quoted scalars: '' escapes and line folding (a long run of '' once leaked inside
     * libfyaml; the compiler unescapes these itself) */
    struct fixture *fx =
        fixture_new(load_text("name: t\n"
                              "description: 'it''s a\n"
                              "  multi-line   \n"
                              "\n"
                              "  text'\n"
                              "fields:\n"
                              "  'e':\n"
                              "    type: enum\n"
                              "    values: ['it''s', 'x''''''''''''''''''''''''y']\n"
                              "    labels: {\"yes \\\"sir\\\"\": 'it''s'}\n"),
                    "E");
    assert_string_equal(fx_pipeline_description(fx->p), "it's a multi-line\ntext");
    assert_int_equal(validate(fx, 2, "It's"), 0);
    assert_string_equal(fx->row.v[0].s, "it's");
    assert_int_equal(validate(fx, 2, "yes, sir"), 0);
    assert_string_equal(fx->row.v[0].s, "it's");
    assert_int_equal(validate(fx, 2, "XY"), 0);
    assert_string_equal(fx->row.v[0].s, "x''''''''''''y"); /* 12 quotes */
    fixture_free(fx);
}

/* ---- binding ---- */

static void test_bind_aliases_accents_case(void **state)
{
    (void)state;
    struct fx_pipeline *p = load_vendas();
    struct trec t;
    struct fx_binding *b = NULL;
    struct fx_err err;
    int rc = fx_pipeline_bind(p,
                              mkrec(&t, 1,
                                    "NOME|E-mail|Telefone| |Endereço|CPF|Nome do Produto|Qtd|"
                                    "Valor Unitário|Forma de Pagamento|Observação|Vendedor"),
                              "x.csv", &b, &err);
    if (rc)
        fail_msg("bind: %s", err.reason);
    assert_int_equal(fx_binding_pipeline(b), p);
    assert_int_equal(fx_binding_column(b, NOME), 0);
    assert_int_equal(fx_binding_column(b, EMAIL), 1);
    assert_int_equal(fx_binding_column(b, ENDERECO), 4);
    assert_int_equal(fx_binding_column(b, CPF_CNPJ), 5);
    assert_int_equal(fx_binding_column(b, PRODUTO), 6);
    assert_int_equal(fx_binding_column(b, QUANTIDADE), 7);
    assert_int_equal(fx_binding_column(b, VALOR), 8);
    assert_int_equal(fx_binding_column(b, FORMA), 9);
    assert_true(fx_binding_has_field(b, FORMA));
    assert_false(fx_binding_has_field(b, DATA_HORA));
    assert_int_equal(fx_binding_column(b, DATA_HORA), -1);
    const char *const *unknown;
    assert_int_equal(fx_binding_unknown(b, &unknown), 2);
    assert_string_equal(unknown[0], "Observação");
    assert_string_equal(unknown[1], "Vendedor");
    fx_binding_free(b);
    fx_binding_free(NULL);
    fx_pipeline_free(p);
}

static void test_bind_missing_columns(void **state)
{
    (void)state;
    struct fx_pipeline *p = load_vendas();
    struct trec t;
    struct fx_binding *b = NULL;
    struct fx_err err;
    int rc = fx_pipeline_bind(p, mkrec(&t, 1, "Nome|email|Coluna X"), "x.csv", &b, &err);
    assert_int_equal(rc, FX_ESCHEMA);
    assert_null(b);
    assert_string_equal(err.source, "x.csv");
    assert_int_equal(err.row, 1);
    assert_non_null(strstr(
        err.reason, "missing columns: produto, quantidade, valor_unitario, forma_pagamento;"));
    assert_non_null(strstr(err.reason, "expected: nome, email, telefone, endereco_completo, "
                                       "cpf_cnpj, produto, quantidade, valor_unitario, "
                                       "forma_pagamento, data_hora;"));
    assert_non_null(strstr(err.reason, "found: Nome, email, Coluna X"));

    /* the same field twice */
    rc = fx_pipeline_bind(p, mkrec(&t, 1, VENDAS_HEADER "|CPF"), "x.csv", &b, &err);
    assert_int_equal(rc, FX_ESCHEMA);
    assert_non_null(strstr(err.reason, "both map to field 'cpf_cnpj'"));
    assert_int_equal(err.column, 11);

    /* a bad header record */
    struct fx_record *h = mkrec(&t, 1, VENDAS_HEADER);
    h->bad = 1;
    snprintf(h->err.reason, sizeof(h->err.reason), "invalid UTF-8");
    rc = fx_pipeline_bind(p, h, "x.csv", &b, &err);
    assert_int_equal(rc, FX_ESCHEMA);
    assert_string_equal(err.reason, "invalid UTF-8");
    fx_pipeline_free(p);
}

/* ---- validation ---- */

static void test_validate_good_row(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    int rc = validate(fx, 7, GOOD_ROW);
    if (rc)
        dump_issues(fx);
    assert_int_equal(rc, 0);
    assert_int_equal(fx->row.src_row, 7);
    assert_int_equal(fx->row.n, 10);
    const struct fx_value *v = fx->row.v;
    for (size_t i = 0; i < 10; i++)
        assert_true(v[i].present);
    assert_string_equal(v[NOME].s, "Maria da Silva");
    assert_int_equal(v[NOME].len, 14);
    assert_string_equal(v[NOME].raw, "Maria   da  Silva");
    assert_string_equal(v[EMAIL].s, "maria@example.com");
    assert_string_equal(v[TELEFONE].s, "11987654321");
    assert_string_equal(v[ENDERECO].s, "Rua A, 1");
    assert_string_equal(v[CPF_CNPJ].s, "52998224725");
    assert_int_equal(v[CPF_CNPJ].len, 11);
    assert_string_equal(v[PRODUTO].s, "Notebook Pro");
    assert_int_equal(v[QUANTIDADE].i, 2);
    assert_int_equal(v[VALOR].i, 123456);
    assert_string_equal(v[VALOR].raw, "R$ 1.234,56");
    assert_string_equal(v[FORMA].s, "CREDITO");
    assert_string_equal(v[FORMA].raw, "Cartão de Crédito");
    assert_string_equal(v[DATA_HORA].s, "2024-03-15T17:30:00Z");
    assert_int_equal(v[DATA_HORA].len, 20);
    assert_int_equal(v[DATA_HORA].i, 1710523800);
    assert_int_equal(fx->iss.n, 0);

    /* optional fields empty: null, still accepted; CNPJ instead of CPF */
    rc = validate(fx, 8, "Ana||||11.222.333/0001-81|Mouse|1|10,5|pix|2024-01-02T03:04:05Z");
    if (rc)
        dump_issues(fx);
    assert_int_equal(rc, 0);
    assert_false(v[EMAIL].present);
    assert_string_equal(v[EMAIL].s, "");
    assert_false(v[TELEFONE].present);
    assert_false(v[ENDERECO].present);
    assert_string_equal(v[CPF_CNPJ].s, "11222333000181");
    assert_int_equal(v[VALOR].i, 1050);
    assert_string_equal(v[FORMA].s, "PIX");
    assert_string_equal(v[DATA_HORA].s, "2024-01-02T03:04:05Z");

    /* a short row: missing trailing cells are empty */
    rc = validate(fx, 9, "Ana|ana@x.com.br||||Mouse|1|3500.00|Boleto Bancário");
    assert_int_equal(rc, FX_ESCHEMA); /* data_hora column exists: a value is needed */
    assert_non_null(issue_for(fx, "data_hora", "required"));
    assert_int_equal(fx->iss.n, 1);
    assert_int_equal(v[VALOR].i, 350000);
    assert_string_equal(v[FORMA].s, "BOLETO");
    fixture_free(fx);
}

static void test_validate_bad_inputs(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    expect_error(fx, with_cell(GOOD_ROW, NOME, "   "), "nome", "required", "nome is required");
    assert_int_equal(issue_for(fx, "nome", "required")->column, 1);
    expect_error(fx, with_cell(GOOD_ROW, CPF_CNPJ, "529.982.247"), "cpf_cnpj", "type",
                 "CPF/CNPJ must have 11 or 14 digits, got 9");
    expect_error(fx, with_cell(GOOD_ROW, CPF_CNPJ, "1234567890"), "cpf_cnpj", "type", "got 10");
    expect_error(fx, with_cell(GOOD_ROW, CPF_CNPJ, "529.982.247-2X"), "cpf_cnpj", "type", NULL);
    expect_error(fx, with_cell(GOOD_ROW, QUANTIDADE, "0"), "quantidade", "min",
                 "must be at least 1");
    expect_error(fx, with_cell(GOOD_ROW, QUANTIDADE, "-1"), "quantidade", "min", NULL);
    expect_error(fx, with_cell(GOOD_ROW, QUANTIDADE, "abc"), "quantidade", "type",
                 "quantidade is not a valid whole number");
    expect_error(fx, with_cell(GOOD_ROW, QUANTIDADE, "1,5"), "quantidade", "type", NULL);
    expect_error(fx, with_cell(GOOD_ROW, VALOR, "12,3x"), "valor_unitario", "type", NULL);
    expect_error(fx, with_cell(GOOD_ROW, VALOR, "dez reais"), "valor_unitario", "type", NULL);
    expect_error(fx, with_cell(GOOD_ROW, VALOR, "-5,00"), "valor_unitario", "min",
                 "must be at least 0.00");
    expect_error(fx, with_cell(GOOD_ROW, EMAIL, "maria@"), "email", "type", NULL);
    expect_error(fx, with_cell(GOOD_ROW, TELEFONE, "123"), "telefone", "min_length", NULL);
    expect_error(fx, with_cell(GOOD_ROW, TELEFONE, "ramal 12"), "telefone", "type", NULL);
    expect_error(fx, with_cell(GOOD_ROW, DATA_HORA, "31/02/2024"), "data_hora", "type", NULL);
    assert_int_equal(issue_for(fx, "data_hora", "type")->column, 10);
    assert_string_equal(issue_for(fx, "data_hora", "type")->value, "31/02/2024");
    expect_error(fx, with_cell(GOOD_ROW, DATA_HORA, ""), "data_hora", "required", NULL);
    expect_error(fx, with_cell(GOOD_ROW, FORMA, ""), "forma_pagamento", "required", NULL);
    char longname[260];
    memset(longname, 'x', 201);
    longname[201] = '\0';
    expect_error(fx, with_cell(GOOD_ROW, NOME, longname), "nome", "max_length",
                 "longer than 200 characters (201)");

    /* no document and no e-mail */
    const char *row = with_cell(with_cell(GOOD_ROW, EMAIL, ""), CPF_CNPJ, "");
    expect_error(fx, row, "cpf_cnpj, email", "require_any",
                 "needs at least one of: cpf_cnpj, email");
    assert_int_equal(issue_for(fx, "cpf_cnpj, email", "require_any")->column, 0);
    assert_int_equal(fx->iss.n, 1);
    /* either one is enough */
    assert_int_equal(validate(fx, 2, with_cell(GOOD_ROW, EMAIL, "")), 0);
    assert_int_equal(validate(fx, 2, with_cell(GOOD_ROW, CPF_CNPJ, "")), 0);
    fixture_free(fx);
}

static void test_validate_multiple_errors(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    int rc = validate(fx, 3, "|x@|12|Rua|||0|abc|Cheque|ontem");
    assert_int_equal(rc, FX_ESCHEMA);
    static const char *const want[][2] = {
        {"nome", "required"},        {"email", "type"},     {"telefone", "min_length"},
        {"produto", "required"},     {"quantidade", "min"}, {"valor_unitario", "type"},
        {"forma_pagamento", "enum"}, {"data_hora", "type"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!issue_for(fx, want[i][0], want[i][1])) {
            dump_issues(fx);
            fail_msg("missing issue %s/%s", want[i][0], want[i][1]);
        }
    /* the unmapped label is a warning, the rest errors; require_any is not added on top of the
     * invalid e-mail */
    assert_int_equal(issue_for(fx, "forma_pagamento", "enum")->severity, FX_ISSUE_WARN);
    assert_null(issue_for(fx, "cpf_cnpj, email", "require_any"));
    assert_int_equal(fx->iss.n, 8);

    /* the issues array is reused: a good row clears it */
    assert_int_equal(validate(fx, 4, GOOD_ROW), 0);
    assert_int_equal(fx->iss.n, 0);
    assert_false(fx_issues_has_error(&fx->iss));
    fixture_free(fx);
}

static void test_check_digits_policy(void **state)
{
    (void)state;
    /* vendas: warn */
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    int rc = validate(fx, 2, with_cell(GOOD_ROW, CPF_CNPJ, "529.982.247-24"));
    assert_int_equal(rc, 0);
    const struct fx_issue *is = issue_for(fx, "cpf_cnpj", "check_digits");
    assert_non_null(is);
    assert_int_equal(is->severity, FX_ISSUE_WARN);
    assert_string_equal(is->reason, "invalid CPF check digits");
    assert_string_equal(is->value, "529.982.247-24");
    assert_int_equal(is->column, 5);
    assert_string_equal(fx->row.v[CPF_CNPJ].s, "52998224724");
    rc = validate(fx, 2, with_cell(GOOD_ROW, CPF_CNPJ, "11.222.333/0001-80"));
    assert_int_equal(rc, 0);
    assert_string_equal(issue_for(fx, "cpf_cnpj", "check_digits")->reason,
                        "invalid CNPJ check digits");
    fixture_free(fx);

    /* reject (the default) and off */
    fx = fixture_new(load_text("name: t\nfields:\n"
                               "  doc: {type: cpf_cnpj, required: true}\n"
                               "  cpf: {type: cpf, check_digits: off}\n"
                               "  cnpj: {type: cnpj, check_digits: reject}\n"),
                     "doc|cpf|cnpj");
    rc = validate(fx, 2, "529.982.247-24|529.982.247-24|11.222.333/0001-81");
    assert_int_equal(rc, FX_ESCHEMA);
    is = issue_for(fx, "doc", "check_digits");
    assert_non_null(is);
    assert_int_equal(is->severity, FX_ISSUE_ERROR);
    assert_int_equal(fx->iss.n, 1);
    expect_error(fx, "52998224725|11222333000181|52998224725", "cpf", "type",
                 "CPF must have 11 digits, got 14");
    expect_error(fx, "52998224725|52998224725|52998224725", "cnpj", "type",
                 "CNPJ must have 14 digits, got 11");
    assert_int_equal(validate(fx, 2, "52998224725|52998224725|11222333000181"), 0);
    fixture_free(fx);
}

static void test_data_hora_optional_column(void **state)
{
    (void)state;
    /* without the column: null, no error, keyed by source + row */
    struct fixture *fx = fixture_new(
        load_vendas(),
        "nome|email|telefone|endereco_completo|cpf_cnpj|produto|quantidade|valor_unitario|"
        "forma_pagamento");
    const char *row = "Maria|maria@x.com||Rua A|529.982.247-25|Mouse|1|10|Pix";
    assert_int_equal(validate(fx, 2, row), 0);
    assert_false(fx->row.v[DATA_HORA].present);
    assert_string_equal(fx->row.v[DATA_HORA].s, "");
    char k2[65], c2[65], k3[65], c3[65];
    int by = -1;
    fx_pipeline_dedupe_key(fx->b, &fx->row, "abc123", k2, c2, &by);
    assert_int_equal(by, 0);
    assert_int_equal(validate(fx, 3, row), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "abc123", k3, c3, &by);
    assert_int_equal(by, 0);
    assert_string_not_equal(k2, k3); /* different rows: different keys */
    assert_string_equal(c2, c3);     /* same content */
    assert_int_equal(strlen(k2), 64);
    /* the same file and row again: the same key (replays change nothing) */
    fx_pipeline_dedupe_key(fx->b, &fx->row, "abc123", k2, NULL, NULL);
    assert_string_equal(k2, k3);
    /* another file: another key */
    fx_pipeline_dedupe_key(fx->b, &fx->row, "def456", k2, NULL, &by);
    assert_string_not_equal(k2, k3);
    fixture_free(fx);
}

static void test_enum_labels(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    static const char *const cases[][2] = {
        {"Cartão de Crédito", "CREDITO"},
        {"CARTAO DE CREDITO", "CREDITO"},
        {"cartão de débito", "DEBITO"},
        {"Débito", "DEBITO"},
        {"PIX", "PIX"},
        {"credito", "CREDITO"},
        {"Espécie", "DINHEIRO"},
        {"Boleto Bancário", "BOLETO"},
        {"Transferência Bancária", "OUTROS"},
        {"TED", "OUTROS"},
        {"outros", "OUTROS"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = validate(fx, 2, with_cell(GOOD_ROW, FORMA, cases[i][0]));
        assert_int_equal(rc, 0);
        assert_string_equal(fx->row.v[FORMA].s, cases[i][1]);
        assert_string_equal(fx->row.v[FORMA].raw, cases[i][0]);
        assert_int_equal(fx->iss.n, 0);
    }
    /* unknown label: default code, a warning, the original label kept */
    int rc = validate(fx, 2, with_cell(GOOD_ROW, FORMA, "Cartão"));
    assert_int_equal(rc, 0);
    assert_string_equal(fx->row.v[FORMA].s, "OUTROS");
    assert_string_equal(fx->row.v[FORMA].raw, "Cartão");
    assert_int_equal(fx->iss.n, 1);
    assert_int_equal(fx->iss.v[0].severity, FX_ISSUE_WARN);
    assert_string_equal(fx->iss.v[0].reason, "unmapped label 'Cartão' mapped to OUTROS");
    assert_string_equal(fx->iss.v[0].rule, "enum");
    fixture_free(fx);

    /* without a default an unknown label is an error */
    fx = fixture_new(load_text("name: t\nfields:\n"
                               "  f: {type: enum, values: [SIM, NAO], labels: {\"Não\": NAO}}\n"),
                     "f");
    assert_int_equal(validate(fx, 2, "não"), 0);
    assert_string_equal(fx->row.v[0].s, "NAO");
    expect_error(fx, "talvez", "f", "enum", "unknown f 'talvez' (expected one of: SIM, NAO)");
    fixture_free(fx);
}

static void test_spreadsheet_cells(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    /* CPF as a number lost its leading zero; quantity 3.0; price 3500.5; a date cell */
    int rc = validate(fx, 2,
                      "Maria|m@x.com|#n:11987654321|Rua|#n:1234567890|Mouse|#n:3.0|#n:3500.5|"
                      "Pix|#d:2024-03-15T14:30:00");
    if (rc)
        dump_issues(fx);
    assert_int_equal(rc, 0);
    assert_string_equal(fx->row.v[CPF_CNPJ].s, "01234567890");
    assert_string_equal(fx->row.v[TELEFONE].s, "11987654321");
    assert_int_equal(fx->row.v[QUANTIDADE].i, 3);
    assert_int_equal(fx->row.v[VALOR].i, 350050);
    assert_string_equal(fx->row.v[DATA_HORA].s, "2024-03-15T17:30:00Z");
    assert_int_equal(fx->iss.n, 0);

    /* binary floating-point noise in number cells is rounded to cents; text is exact */
    rc = validate(fx, 2, with_cell(GOOD_ROW, VALOR, "#n:19.989999999999998"));
    assert_int_equal(rc, 0);
    assert_int_equal(fx->row.v[VALOR].i, 1999);
    assert_string_equal(fx->row.v[VALOR].raw, "19.989999999999998");
    rc = validate(fx, 2, with_cell(GOOD_ROW, VALOR, "#n:99.99500000000001"));
    assert_int_equal(rc, 0);
    assert_int_equal(fx->row.v[VALOR].i, 10000);
    expect_error(fx, with_cell(GOOD_ROW, VALOR, "#n:10.005"), "valor_unitario", "type",
                 "more decimal places");
    /* a number cell's point is always decimal: 1234.5 is not 12,345 */
    rc = validate(fx, 2, with_cell(GOOD_ROW, VALOR, "#n:1234.500"));
    assert_int_equal(rc, 0);
    assert_int_equal(fx->row.v[VALOR].i, 123450);
    rc = validate(fx, 2, with_cell(GOOD_ROW, VALOR, "#n:-0.5"));
    assert_int_equal(rc, FX_ESCHEMA); /* min 0 */
    assert_non_null(issue_for(fx, "valor_unitario", "min"));
    expect_error(fx, with_cell(GOOD_ROW, VALOR, "19.989999999999998"), "valor_unitario", "type",
                 NULL);
    /* the same digits as text are not padded */
    expect_error(fx, with_cell(GOOD_ROW, CPF_CNPJ, "1234567890"), "cpf_cnpj", "type", "got 10");
    /* an Excel serial number in a date-time column: 45366.6041666667 = 2024-03-15 14:30 */
    rc = validate(fx, 2, with_cell(GOOD_ROW, DATA_HORA, "#n:45366.6041666667"));
    assert_int_equal(rc, 0);
    assert_string_equal(fx->row.v[DATA_HORA].s, "2024-03-15T17:30:00Z");
    /* a date-only cell */
    rc = validate(fx, 2, with_cell(GOOD_ROW, DATA_HORA, "#d:2024-03-15"));
    assert_int_equal(rc, 0);
    assert_string_equal(fx->row.v[DATA_HORA].s, "2024-03-15T03:00:00Z");
    /* spreadsheet errors are never values, not even for text fields */
    expect_error(fx, with_cell(GOOD_ROW, PRODUTO, "#e:#N/A"), "produto", "type",
                 "spreadsheet error (#N/A)");
    fixture_free(fx);
}

static void test_bad_record(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    struct trec t;
    struct fx_record *rec = mkrec(&t, 5, GOOD_ROW);
    rec->bad = 1;
    rec->err.code = FX_EENCODING;
    rec->err.column = 3;
    snprintf(rec->err.reason, sizeof(rec->err.reason), "invalid UTF-8 sequence");
    snprintf(rec->err.value, sizeof(rec->err.value), "ab?c");
    assert_int_equal(fx_pipeline_validate(fx->b, rec, &fx->row, &fx->iss), FX_ESCHEMA);
    assert_int_equal(fx->iss.n, 1);
    assert_string_equal(fx->iss.v[0].rule, "read");
    assert_int_equal(fx->iss.v[0].column, 3);
    assert_string_equal(fx->iss.v[0].reason, "invalid UTF-8 sequence");
    assert_string_equal(fx->iss.v[0].value, "ab?c");
    assert_int_equal(fx->row.src_row, 5);
    for (size_t i = 0; i < fx->row.n; i++)
        assert_false(fx->row.v[i].present);
    fixture_free(fx);
}

static void test_issue_value_truncated(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    char big[400];
    /* 'é' is 2 bytes: truncation must not split it */
    size_t n = 0;
    big[n++] = 'x';
    while (n < 300) {
        big[n++] = (char)0xC3;
        big[n++] = (char)0xA9;
    }
    big[n] = '\0';
    expect_error(fx, with_cell(GOOD_ROW, QUANTIDADE, big), "quantidade", "type", NULL);
    const struct fx_issue *is = issue_for(fx, "quantidade", "type");
    assert_true(strlen(is->value) <= 127);
    assert_true(strlen(is->value) >= 125);
    assert_int_equal(fx_utf8_check(is->value, strlen(is->value)), strlen(is->value));
    fixture_free(fx);
}

static void test_clean_rules(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(
        load_text("name: t\nfields:\n"
                  "  a: {type: string, clean: [upper]}\n"
                  "  b: {type: string, clean: [lower, strip_accents]}\n"
                  "  c: {type: string, clean: [collapse_spaces, strip_accents, upper]}\n"
                  "  d: {type: string, min_length: 2, max_length: 3}\n"),
        "a|b|c|d");
    int rc = validate(fx, 2, "\xc2\xa0 são paulo \t|ÁRVORE Ção|  joão \t\xc2\xa0 da   silva |ção");
    if (rc)
        dump_issues(fx);
    assert_int_equal(rc, 0);
    assert_string_equal(fx->row.v[0].s, "SÃO PAULO");
    assert_string_equal(fx->row.v[0].raw, "são paulo");
    assert_string_equal(fx->row.v[1].s, "arvore cao");
    assert_string_equal(fx->row.v[2].s, "JOAO DA SILVA");
    assert_string_equal(fx->row.v[3].s, "ção");
    expect_error(fx, "a|b|c|x", "d", "min_length", NULL);
    expect_error(fx, "a|b|c|abcd", "d", "max_length", NULL);
    fixture_free(fx);
}

static void test_types_and_bounds(void **state)
{
    (void)state;
    struct fixture *fx =
        fixture_new(load_text("name: t\nfields:\n"
                              "  d: {type: date, min: 01/01/2000, max: 2030-12-31}\n"
                              "  x: {type: decimal, scale: 3, min: \"0,5\"}\n"
                              "  b: bool\n"
                              "  m: {type: money, max: \"1.000,00\"}\n"),
                    "d|x|b|m");
    int rc = validate(fx, 2, "15/03/2024|1,25|sim|R$ 999,99");
    if (rc)
        dump_issues(fx);
    assert_int_equal(rc, 0);
    assert_string_equal(fx->row.v[0].s, "2024-03-15");
    assert_int_equal(fx->row.v[0].i, fx_days_from_civil(2024, 3, 15));
    assert_int_equal(fx->row.v[1].i, 1250);
    assert_int_equal(fx->row.v[2].i, 1);
    assert_int_equal(fx->row.v[3].i, 99999);
    expect_error(fx, "31/12/1999|1|sim|1", "d", "min", "must be at least 2000-01-01");
    expect_error(fx, "01/01/2031|1|sim|1", "d", "max", "must be at most 2030-12-31");
    expect_error(fx, "01/01/2001|0,499|sim|1", "x", "min", "must be at least 0.500");
    expect_error(fx, "01/01/2001|1|talvez|1", "b", "type", NULL);
    expect_error(fx, "01/01/2001|1|não|1000,01", "m", "max", "must be at most 1000.00");
    /* nothing required: an empty row is accepted, all null */
    assert_int_equal(validate(fx, 2, "|||"), 0);
    fixture_free(fx);
}

/* ---- dedupe ---- */

static void test_dedupe_keys(void **state)
{
    (void)state;
    struct fixture *fx = fixture_new(load_vendas(), VENDAS_HEADER);
    char k1[65], c1[65], k2[65], c2[65];
    int by = -1;
    assert_int_equal(validate(fx, 2, GOOD_ROW), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h1", k1, c1, &by);
    assert_int_equal(by, 1);
    assert_string_not_equal(k1, c1); /* the repeat key leaves the time out */
    /* same canonical content written differently, another row, another file: same key */
    assert_int_equal(validate(fx, 9,
                              "Maria da Silva|maria@example.com|11 987654321|Rua B|52998224725|"
                              "Notebook Pro|2,0|1234.56|CREDITO|2024-03-15 14:30:00"),
                     0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h2", k2, c2, &by);
    assert_int_equal(by, 1);
    assert_string_equal(k1, k2);
    /* a different minute: a different purchase */
    assert_int_equal(validate(fx, 9, with_cell(GOOD_ROW, DATA_HORA, "15/03/2024 14:31")), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h1", k2, c2, NULL);
    assert_string_not_equal(k1, k2);
    assert_string_equal(c1, c2); /* ...but it repeats the same purchase content */
    /* null and empty are not the same as a value: e-mail dropped */
    assert_int_equal(validate(fx, 9, with_cell(GOOD_ROW, EMAIL, "")), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h1", k2, NULL, NULL);
    assert_string_not_equal(k1, k2);
    fixture_free(fx);

    /* dedupe_by_content: content keys even without the columns */
    fx = fixture_new(load_text("name: t\n"
                               "options: {dedupe_by_content: true}\n"
                               "fields: {a: string, b: int, c: datetime}\n"
                               "dedupe: {content: [a, b], requires_columns: [c]}\n"),
                     "a|b");
    assert_int_equal(fx_pipeline_dedupe_by_content(fx->p), 1);
    assert_int_equal(validate(fx, 2, "x|1"), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h", k1, c1, &by);
    assert_int_equal(by, 1);
    assert_int_equal(validate(fx, 3, "x|1"), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h", k2, c2, &by);
    assert_string_equal(k1, k2);
    /* values are separated unambiguously: ("x1", null) differs from ("x", 1) */
    assert_int_equal(validate(fx, 3, "x1|"), 0);
    fx_pipeline_dedupe_key(fx->b, &fx->row, "h", k2, c2, &by);
    assert_string_not_equal(k1, k2);
    fixture_free(fx);
}

/* ---- compile errors ---- */

static void test_compile_errors(void **state)
{
    (void)state;
    const char *head = "name: t\nfields:\n";
    char y[2048];
#define BAD(body, code, line, want)                                                                \
    do {                                                                                           \
        snprintf(y, sizeof(y), "%s%s", head, body);                                                \
        expect_compile_error(y, code, line, want);                                                 \
    } while (0)

    BAD("  nome: {type: string, requird: true}\n", FX_ESCHEMA, 3,
        "unknown key 'requird' in field 'nome' (did you mean 'required'?)");
    BAD("  a: string\n  valor: {type: moneyy}\n", FX_ESCHEMA, 4,
        "unknown field type 'moneyy' (did you mean 'money'?) (expected one of: string, int, money");
    BAD("  a: string\n  b:\n    type: int\n    min: abc\n", FX_ESCHEMA, 6,
        "min of field 'b' 'abc' is not a valid int");
    BAD("  a: string\ndedupe:\n  content: [a, x]\n", FX_ESCHEMA, 5,
        "field 'x' referenced in dedupe.content is not declared");
    BAD("  a: string\nrules:\n  - require_any: [a, zz]\n", FX_ESCHEMA, 5,
        "field 'zz' referenced in rules (require_any) is not declared");
    BAD("  a: {type: string, min: 3}\n", FX_ESCHEMA, 3,
        "key 'min' does not apply to string fields");
    BAD("  a: {type: enum, values: [X], default: Y}\n", FX_ESCHEMA, 3,
        "default 'Y' of field 'a' is not one of its values (X)");
    BAD("  a: {type: enum}\n", FX_ESCHEMA, 3, "enum field 'a' needs values");
    BAD("  a: string\n  b:\n", FX_ESCHEMA, 4, "field 'b' needs a type (one of: string, int");
    BAD("  a: {required: true}\n", FX_ESCHEMA, 3, "field 'a' needs a type");
    BAD("  a: {type: enum, values: [X, Y], labels: {Foo: X, FOO: Y}}\n", FX_ESCHEMA, 3,
        "already maps to X");
    BAD("  a: {type: enum, values: [X], labels: {Foo: Z}}\n", FX_ESCHEMA, 3,
        "maps to 'Z', which is not one of its values");
    BAD("  a: {type: string, aliases: [b]}\n  b: int\n", FX_ESCHEMA, 4,
        "name 'b' of field 'b' matches the same headers as field 'a'");
    BAD("  a: {type: string, aliases: [B-1]}\n  b: {type: int, aliases: [b_1]}\n", FX_ESCHEMA, 4,
        "alias 'b_1' of field 'b' matches the same headers as field 'a'");
    BAD("  Nome: string\n", FX_ESCHEMA, 3, "field name 'Nome' is not a valid identifier");
    BAD("  a: {type: string, column: maybe}\n", FX_ESCHEMA, 3, "must be required or optional");
    BAD("  a: {type: cpf_cnpj, check_digits: yes}\n", FX_ESCHEMA, 3, "must be reject, warn or off");
    BAD("  a: {type: string, clean: [trim, uper]}\n", FX_ESCHEMA, 3,
        "unknown cleaning rule 'uper' in field 'a' (did you mean 'upper'?)");
    BAD("  a: {type: int, min: 5, max: 1}\n", FX_ESCHEMA, 3, "min is greater than max");
    BAD("  a: {type: string, required: maybe}\n", FX_ESCHEMA, 3, "required must be true or false");
    BAD("  a: string\nextra: 1\n", FX_ESCHEMA, 4, "unknown key 'extra' in the pipeline");
    BAD("  a: string\noptions: {chunk_rows: 0}\n", FX_ESCHEMA, 4,
        "options.chunk_rows must be between 1 and 1000000");

    /* tables */
    BAD("  a: string\n"
        "tables:\n"
        "  t2:\n"
        "    keys: [[x]]\n"
        "    columns: {x: a, r: {ref: t1}}\n"
        "  t1:\n"
        "    keys: [[a]]\n"
        "    columns: {a: a}\n",
        FX_ESCHEMA, 7,
        "column 'r' of table 't2' references table 't1', which is declared after it (line 8)");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    columns: {a: a, r: {ref: nope}}\n",
        FX_ESCHEMA, 7, "references unknown table 'nope'");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[b]]\n    columns: {a: a}\n", FX_ESCHEMA, 6,
        "key column 'b' of table 't1' is not one of its columns");
    BAD("  a: string\ntables:\n  t1:\n    keys: [a]\n    columns: {a: a}\n", FX_ESCHEMA, 6,
        "each alternative must be a list of columns");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    columns: {a: a}\n    update: [a]\n",
        FX_ESCHEMA, 8, "column 'a' of table 't1' is part of a key and cannot be updated");
    BAD("  a: string\ntables:\n  Bad-Name:\n    keys: [[a]]\n    columns: {a: a}\n", FX_ESCHEMA, 5,
        "table name 'Bad-Name' is not a valid identifier");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    columns: {a: a, order: a}\n", FX_ESCHEMA,
        7, "column name in table 't1' 'order' is a reserved SQL word");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    columns: {a: b}\n", FX_ESCHEMA, 7,
        "field 'b' referenced in column 'a' of table 't1' is not declared");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    columns: {a: {meta: when}}\n",
        FX_ESCHEMA, 7, "unknown meta 'when'");
    BAD("  a: string\n  b: int\ntables:\n  t1:\n    keys: [[p]]\n    columns: {p: {product: [a, "
        "b]}}\n",
        FX_ESCHEMA, 8, "product needs two numeric fields");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    columns: {a: {field: a, raw: a}}\n",
        FX_ESCHEMA, 7, "must have exactly one source");
    BAD("  a: string\ntables:\n  t1:\n    columns: {a: a}\n", FX_ESCHEMA, 5,
        "table 't1' needs keys");
    BAD("  a: string\ntables:\n  t1:\n    keys: [[a]]\n    colums: {a: a}\n", FX_ESCHEMA, 7,
        "unknown key 'colums' in table 't1' (did you mean 'columns'?)");

    /* document-level problems */
    expect_compile_error("fields:\n  a: string\n", FX_ESCHEMA, 1, "the pipeline needs a name");
    expect_compile_error("name: t\n", FX_ESCHEMA, 1, "the pipeline needs fields");
    expect_compile_error("", FX_ESCHEMA, 1, "empty pipeline definition");
    expect_compile_error("# only a comment\n", FX_ESCHEMA, 1, "empty pipeline definition");
    expect_compile_error("- a\n- b\n", FX_ESCHEMA, 1, "the pipeline must be a mapping");
    expect_compile_error("name: t\nfields: {a: [string\n", FX_EPARSE, 0, "YAML syntax error");
    /* Windows and old Mac line breaks keep line numbers */
    expect_compile_error("name: t\r\nfields:\r\n  a: {type: moneyy}\r\n", FX_ESCHEMA, 3,
                         "unknown field type 'moneyy'");
    expect_compile_error("name: t\rfields:\r\r  a: {type: moneyy}\r", FX_ESCHEMA, 4,
                         "unknown field type 'moneyy'");
    expect_compile_error("name: t\nfields: {a: string}\nx: \"\x01\"\n", FX_EPARSE, 3,
                         "control character");
    expect_compile_error("name: t\nfields: {a: \"\xff\"}\n", FX_EPARSE, 2, "invalid UTF-8");
    expect_compile_error("name: t\nname: u\nfields: {a: string}\n", FX_EPARSE, 2, "duplicate key");
    expect_compile_error("name: t\nfields: {a: string}\n---\nname: u\n", FX_ESCHEMA, 4,
                         "more than one YAML document");
    expect_compile_error("name: &n t\nfields: {a: string}\ndescription: *n\n", FX_ESCHEMA, 3,
                         "aliases (*name) are not supported");
    expect_compile_error("name: t\nfields: {a: string}\n<<: {x: 1}\n", FX_ESCHEMA, 3,
                         "unknown key '<<'");
#undef BAD
}

static void test_limits(void **state)
{
    (void)state;
    /* larger than 1 MiB */
    size_t n = 1024 * 1024 + 10;
    char *big = malloc(n + 1);
    memset(big, '#', n);
    big[n] = '\0';
    struct fx_pipeline *p = NULL;
    struct fx_err err;
    assert_int_equal(fx_pipeline_load_mem(big, n, "big.yaml", &p, &err), FX_ETOOBIG);
    assert_null(p);
    free(big);

    /* 257 fields, 33 tables */
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "name: t\nfields:\n");
    for (int i = 0; i < 257; i++)
        fx_buf_printf(&b, "  f%d: string\n", i);
    expect_compile_error(b.data, FX_ESCHEMA, 0, "too many fields (257; at most 256)");
    fx_buf_reset(&b);
    fx_buf_puts(&b, "name: t\nfields: {a: string}\ntables:\n");
    for (int i = 0; i < 33; i++)
        fx_buf_printf(&b, "  t%d: {keys: [[a]], columns: {a: a}}\n", i);
    expect_compile_error(b.data, FX_ESCHEMA, 0, "too many tables (33; at most 32)");
    fx_buf_cleanup(&b);

    /* a missing file */
    assert_int_equal(fx_pipeline_load_file("/nonexistent/x.yaml", &p, &err), FX_ENOTFOUND);
    assert_string_equal(err.source, "/nonexistent/x.yaml");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vendas_compiles),
        cmocka_unit_test(test_vendas_plan),
        cmocka_unit_test(test_plan_sqltypes_and_consts),
        cmocka_unit_test(test_yaml_quoting),
        cmocka_unit_test(test_bind_aliases_accents_case),
        cmocka_unit_test(test_bind_missing_columns),
        cmocka_unit_test(test_validate_good_row),
        cmocka_unit_test(test_validate_bad_inputs),
        cmocka_unit_test(test_validate_multiple_errors),
        cmocka_unit_test(test_check_digits_policy),
        cmocka_unit_test(test_data_hora_optional_column),
        cmocka_unit_test(test_enum_labels),
        cmocka_unit_test(test_spreadsheet_cells),
        cmocka_unit_test(test_bad_record),
        cmocka_unit_test(test_issue_value_truncated),
        cmocka_unit_test(test_clean_rules),
        cmocka_unit_test(test_types_and_bounds),
        cmocka_unit_test(test_dedupe_keys),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
