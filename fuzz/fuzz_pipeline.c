/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the pipeline compiler: arbitrary bytes go to
 * fx_pipeline_load_mem; whatever compiles is bound to a fixed header (or, when
 * that misses required columns, to its own field names) and validates a few
 * fixed rows of text and spreadsheet cells, with dedupe keys, so the compiled
 * tables are exercised too. Must never crash, hang or leak.
 * Corpus: fuzz/corpus/pipeline/.
 */
#include "fluxo/error.h"
#include "fluxo/reader.h"
#include "fluxo/schema.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NH 15

/* clang-format off */
static const char *const header[NH] = {
    "nome", "E-mail", "telefone", "Endereço", "CPF", "produto", "quantidade", "Valor Unitário",
    "forma_pagamento", "data_hora", "a", "b", "c", "x", ""};
/* clang-format on */

static const char *const rows[][NH] = {
    {"  Maria  da Silva ", "MARIA@x.com", "(11) 98765-4321", "Rua A, 1", "529.982.247-25", "Mouse",
     "2", "R$ 1.234,56", "Cartão de Crédito", "15/03/2024 14:30", "1", "sim", "2024-01-01", "x",
     ""},
    {"", "x@", "12", "", "123", "", "0", "abc", "Cheque", "31/02/2024", "-1", "talvez", "ontem",
     "ÁRVORE  Ção", "z"},
    {"Ana", "", "", "", "11.222.333/0001-81", "P", "1,0", "10", "pix", "2024-03-15T14:30:00",
     "99999999999999999999", "", "", "\xc2\xa0", ""},
    {"1", "2", "11987654321", "4", "1234567890", "6", "3.0", "19.989999999999998", "9",
     "2024-03-15", "45366.6041666667", "true", "45366", "#N/A", ""},
};

/* cell types of the last row, as a spreadsheet reader would report them */
static const enum fx_cell_type sheet_types[NH] = {
    FX_CELL_STRING, FX_CELL_STRING, FX_CELL_NUMBER, FX_CELL_STRING, FX_CELL_NUMBER,
    FX_CELL_STRING, FX_CELL_NUMBER, FX_CELL_NUMBER, FX_CELL_STRING, FX_CELL_DATE,
    FX_CELL_NUMBER, FX_CELL_BOOL,   FX_CELL_NUMBER, FX_CELL_ERROR,  FX_CELL_EMPTY};

static void set_record(struct fx_record *rec, struct fx_cell *cells, long row,
                       const char *const *vals, const enum fx_cell_type *types, size_t n)
{
    memset(rec, 0, sizeof(*rec));
    rec->row = row;
    rec->cells = cells;
    rec->ncells = n;
    for (size_t i = 0; i < n; i++) {
        cells[i].s = vals[i];
        cells[i].len = strlen(vals[i]);
        cells[i].type = types ? types[i] : (vals[i][0] ? FX_CELL_STRING : FX_CELL_EMPTY);
    }
}

static struct fx_binding *bind(const struct fx_pipeline *p)
{
    struct fx_cell cells[256];
    struct fx_record rec;
    struct fx_binding *b = NULL;
    struct fx_err err;
    set_record(&rec, cells, 1, header, NULL, NH);
    if (fx_pipeline_bind(p, &rec, "fuzz.csv", &b, &err) == 0)
        return b;
    /* the pipeline's own field names always bind */
    const char *names[256];
    size_t nf = fx_pipeline_nfields(p);
    for (size_t i = 0; i < nf && i < 256; i++)
        names[i] = fx_pipeline_field_name(p, i);
    set_record(&rec, cells, 1, names, NULL, nf < 256 ? nf : 256);
    return fx_pipeline_bind(p, &rec, "fuzz.csv", &b, &err) == 0 ? b : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fx_pipeline *p = NULL;
    struct fx_err err;
    if (fx_pipeline_load_mem((const char *)data, size, "fuzz.yaml", &p, &err) != 0)
        return 0;

    /* walk the plan: every index must be in range */
    const struct fx_plan *plan = fx_pipeline_plan(p);
    size_t sink = 0;
    for (size_t t = 0; t < plan->ntables; t++) {
        const struct fx_plan_table *tab = &plan->tables[t];
        sink += strlen(tab->name);
        for (size_t c = 0; c < tab->ncols; c++)
            sink += strlen(tab->cols[c].name) + (size_t)tab->cols[c].kind;
        for (size_t k = 0; k < tab->nkeys; k++)
            for (size_t c = 0; c < tab->keys[k].ncols; c++)
                sink += strlen(tab->cols[tab->keys[k].cols[c]].name);
    }
    (void)sink;

    struct fx_binding *b = bind(p);
    if (b) {
        struct fx_cell cells[NH];
        struct fx_record rec;
        struct fx_row row;
        struct fx_issues iss = {0};
        size_t nrows = sizeof(rows) / sizeof(rows[0]);
        fx_row_init(&row, p);
        for (size_t r = 0; r <= nrows; r++) {
            if (r < nrows) /* text rows (one of them short), then the last row as sheet cells */
                set_record(&rec, cells, (long)r + 2, rows[r], NULL, r == 1 ? 9 : NH);
            else
                set_record(&rec, cells, (long)r + 2, rows[nrows - 1], sheet_types, NH);
            if (fx_pipeline_validate(b, &rec, &row, &iss) == 0) {
                char key[65], content[65];
                int by;
                fx_pipeline_dedupe_key(b, &row, "0123abcd", key, content, &by);
            }
        }
        rec.bad = 1;
        fx_pipeline_validate(b, &rec, &row, &iss);
        fx_row_cleanup(&row);
        fx_issues_cleanup(&iss);
        fx_binding_free(b);
    }
    fx_pipeline_free(p);
    return 0;
}
