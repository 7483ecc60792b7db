/* SPDX-License-Identifier: MIT */
/*
 * Export of a normalized table (`fluxo export`): the table must be one of a
 * loaded pipeline's plan tables (the name is compared against the plan, never
 * pasted into SQL unchecked); the plan says each column's kind (a column fed
 * by a money field is money, a product of money and quantity too, references
 * and row numbers are integers, documents and phones stay text); rows are
 * read with one SELECT through the store API, ORDER BY id, and pushed into a
 * writer one at a time, so memory does not grow with the table.
 */
#include "fluxo/export.h"

#include "fluxo/mem.h"
#include "fluxo/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HEADER_CAP 96

static const struct {
    const char *name, *header;
} known_headers[] = {
    {"id", "ID"},
    {"nome", "Nome"},
    {"email", "E-mail"},
    {"telefone", "Telefone"},
    {"cpf_cnpj", "CPF/CNPJ"},
    {"cpf", "CPF"},
    {"cnpj", "CNPJ"},
    {"endereco", "Endereço"},
    {"endereco_completo", "Endereço completo"},
    {"cliente_id", "ID do cliente"},
    {"produto_id", "ID do produto"},
    {"quantidade", "Quantidade"},
    {"valor_unitario_centavos", "Valor unitário (R$)"},
    {"valor_total_centavos", "Valor total (R$)"},
    {"preco_atual_centavos", "Preço atual (R$)"},
    {"forma_pagamento", "Forma de pagamento"},
    {"forma_pagamento_original", "Forma de pagamento (original)"},
    {"data_hora", "Data e hora"},
    {"dedupe_id", "Chave de deduplicação"},
    {"lote_id", "Lote"},
    {"linha_origem", "Linha de origem"},
    {"ativo", "Ativo"},
    {"criado_em", "Criado em"},
    {"atualizado_em", "Atualizado em"},
};

char *fx_export_header(const char *name, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    for (size_t i = 0; i < sizeof(known_headers) / sizeof(known_headers[0]); i++)
        if (strcmp(known_headers[i].name, name) == 0) {
            snprintf(out, cap, "%s", known_headers[i].header);
            return out;
        }
    size_t n = strlen(name);
    const char *suffix = "";
    if (n > 9 && strcmp(name + n - 9, "_centavos") == 0) { /* money in cents: shown in reais */
        n -= 9;
        suffix = " (R$)";
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        char c = name[i] == '_' ? ' ' : name[i];
        if (o == 0 && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        out[o++] = c;
    }
    out[o] = '\0';
    snprintf(out + o, cap - o, "%s", suffix);
    return out;
}

static enum fx_col_kind field_kind(enum fx_type t)
{
    switch (t) {
    case FX_T_MONEY:
        return FX_COL_MONEY;
    case FX_T_INT:
        return FX_COL_INT;
    case FX_T_DECIMAL:
        /* stored scaled by 10^scale, and the plan does not expose the scale */
        return FX_COL_INT;
    case FX_T_DATE:
        return FX_COL_DATE;
    case FX_T_DATETIME:
        return FX_COL_DATETIME;
    case FX_T_BOOL:
        return FX_COL_BOOL;
    default: /* strings, e-mails, documents and phones (leading zeros), enums */
        return FX_COL_TEXT;
    }
}

static enum fx_col_kind sql_kind(enum fx_sqltype t)
{
    switch (t) {
    case FX_SQL_INT:
        return FX_COL_INT;
    case FX_SQL_BOOL:
        return FX_COL_BOOL;
    case FX_SQL_DATE:
        return FX_COL_DATE;
    case FX_SQL_DATETIME:
        return FX_COL_DATETIME;
    default:
        return FX_COL_TEXT;
    }
}

static enum fx_col_kind plan_kind(const struct fx_pipeline *p, const struct fx_plan_column *c)
{
    switch (c->kind) {
    case FX_SRC_FIELD:
        return field_kind(fx_pipeline_field_type(p, (size_t)c->a));
    case FX_SRC_RAW:
    case FX_SRC_DEDUPE:
    case FX_SRC_BATCH:
        return FX_COL_TEXT;
    case FX_SRC_REF:
    case FX_SRC_ROWNUM:
        return FX_COL_INT;
    case FX_SRC_PRODUCT:
        if (fx_pipeline_field_type(p, (size_t)c->a) == FX_T_MONEY ||
            fx_pipeline_field_type(p, (size_t)c->b) == FX_T_MONEY)
            return FX_COL_MONEY;
        return FX_COL_INT;
    case FX_SRC_CONST:
        return sql_kind(c->sqltype);
    }
    return sql_kind(c->sqltype);
}

static const struct fx_plan_table *find_table(const struct fx_runtime *rt, const char *table,
                                              const struct fx_pipeline **pipe)
{
    for (size_t i = 0; i < rt->npipelines; i++) {
        const struct fx_plan *plan = fx_pipeline_plan(rt->pipelines[i]);
        for (size_t t = 0; plan && t < plan->ntables; t++)
            if (strcmp(plan->tables[t].name, table) == 0) {
                *pipe = rt->pipelines[i];
                return &plan->tables[t];
            }
    }
    return NULL;
}

static int unknown_table(const struct fx_runtime *rt, const char *table, struct fx_err *err)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    for (size_t i = 0; i < rt->npipelines; i++) {
        const struct fx_plan *plan = fx_pipeline_plan(rt->pipelines[i]);
        for (size_t t = 0; plan && t < plan->ntables; t++)
            fx_buf_printf(&b, "%s%s", b.len ? ", " : "", plan->tables[t].name);
    }
    int rc = fx_err_set(err, FX_ENOTFOUND, "unknown table '%s'; tables that can be exported: %s",
                        table, b.len ? b.data : "(none: no pipeline loaded)");
    fx_buf_cleanup(&b);
    return rc;
}

int fx_export_columns(const struct fx_runtime *rt, const char *table, struct fx_col **cols,
                      size_t *n, struct fx_err *err)
{
    *cols = NULL;
    *n = 0;
    const struct fx_pipeline *p = NULL;
    const struct fx_plan_table *t = find_table(rt, table, &p);
    if (!t)
        return unknown_table(rt, table, err);
    size_t nc = t->ncols + 2; /* id, columns, criado_em */
    /* one block: the array, then each column's header text */
    struct fx_col *c = fx_calloc(1, nc * (sizeof(*c) + HEADER_CAP));
    char *hdr = (char *)(c + nc);
    c[0] = (struct fx_col){"id", fx_export_header("id", hdr, HEADER_CAP), FX_COL_INT};
    for (size_t i = 0; i < t->ncols; i++) {
        const struct fx_plan_column *pc = &t->cols[i];
        c[i + 1] = (struct fx_col){
            pc->name, fx_export_header(pc->name, hdr + (i + 1) * HEADER_CAP, HEADER_CAP),
            plan_kind(p, pc)};
    }
    c[nc - 1] = (struct fx_col){
        "criado_em", fx_export_header("criado_em", hdr + (nc - 1) * HEADER_CAP, HEADER_CAP),
        FX_COL_DATETIME};
    *cols = c;
    *n = nc;
    return 0;
}

int fx_export_table(struct fx_runtime *rt, const char *table, const char *format, const char *path,
                    const struct fx_writer_opts *o, uint64_t *rows, struct fx_err *err)
{
    struct fx_col *cols = NULL;
    size_t ncols = 0;
    struct fx_store *db = NULL;
    struct fx_writer *w = NULL;
    const char **vals = NULL;
    char *sql = NULL;
    int rc, opened = 0;
    if (rows)
        *rows = 0;
    if ((rc = fx_export_columns(rt, table, &cols, &ncols, err)) != 0)
        goto out;
    if ((rc = fx_store_open(rt->db_url, "distribution", &db, err)) != 0)
        goto out;

    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "SELECT ");
    for (size_t i = 0; i < ncols; i++)
        fx_buf_printf(&b, "%s%s", i ? ", " : "", cols[i].name);
    fx_buf_printf(&b, " FROM %s ORDER BY id", table);
    sql = fx_buf_take(&b);
    struct fx_stmt *st;
    if ((rc = fx_store_prepare(db, sql, &st, err)) != 0) {
        rc = fx_err_set(err, FX_ESTORE,
                        "cannot read table %s: %s (has the distribution run? see 'fluxo migrate')",
                        table, fx_store_errmsg(db));
        goto out;
    }

    struct fx_writer_opts wo;
    if (o)
        wo = *o;
    else
        fx_writer_opts_init(&wo);
    if (!wo.sheet_name)
        wo.sheet_name = table;
    if ((rc = fx_writer_open(format, path, cols, ncols, &wo, &w, err)) != 0)
        goto out;
    opened = 1;
    vals = fx_calloc(ncols, sizeof(*vals));
    int s;
    while ((s = fx_stmt_step(st)) == FX_STORE_ROW) {
        for (size_t i = 0; i < ncols; i++)
            vals[i] = fx_stmt_text(st, (int)i, NULL);
        if ((rc = fx_writer_row(w, vals)) != 0)
            break; /* the writer keeps the reason; close reports it */
    }
    if (s < 0 && rc == 0)
        rc = fx_err_set(err, s, "reading table %s: %s", table, fx_store_errmsg(db));
    fx_stmt_reset(st);
    if (rows)
        *rows = fx_writer_rows(w);
    {
        struct fx_err cerr;
        fx_err_clear(&cerr);
        int crc = fx_writer_close(w, &cerr);
        w = NULL;
        if (crc != 0 && rc == 0)
            rc = crc;
        if (crc != 0 && err && (err->code == 0 || err->code == crc))
            *err = cerr;
    }
out:;
    struct stat sb;
    /* no half-written export left behind; but never unlink what is not a plain
     * file we wrote (a device such as /dev/stdout, a symbolic link) */
    if (rc != 0 && opened && strcmp(path, "-") != 0 && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        remove(path);
    free(vals);
    free(sql);
    fx_store_close(db);
    free(cols);
    return rc;
}
