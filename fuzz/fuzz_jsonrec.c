/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the JSON records push parser. The first byte picks NDJSON or JSON
 * (bit 0), small limits (bits 1-4) and a chunk size (bits 5-7); the rest is the body.
 * The body is parsed whole and in chunks; besides never crashing or leaking, the
 * contract is checked: the same records and errors whatever the split, indexes
 * increasing, cells NUL-terminated, valid UTF-8 and within max_fields, names unique in
 * a record, number cells that read back as numbers, reasons printable UTF-8, the same
 * value from every call once stopped.
 */
#include "fluxo/jsonrec.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    struct fx_buf out;
    const struct fx_jsonrec_opts *o;
    size_t last;
};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_jsonrec: contract broken: %s\n", what);
        abort();
    }
}

static int utf8(const char *s, size_t n)
{
    return fx__csv_utf8_check(s, n) == n;
}

static int on_rec(void *ud, const struct fx_jsonrec *r)
{
    struct sink *k = ud;
    check(r->index > k->last, "indexes increase");
    k->last = r->index;
    check(r->n <= k->o->max_fields, "fields within max_fields");
    check(r->line >= 1, "line is 1-based");
    fx_buf_printf(&k->out, "%zu@%ld:", r->index, r->line);
    for (size_t i = 0; i < r->n; i++) {
        const struct fx_cell *c = &r->cells[i];
        check(c->s[c->len] == '\0', "cell NUL-terminated");
        check(memchr(c->s, '\0', c->len) == NULL, "no NUL inside a cell");
        check(utf8(c->s, c->len), "cell is valid UTF-8");
        check(utf8(r->names[i], strlen(r->names[i])), "name is valid UTF-8");
        check((c->type == FX_CELL_EMPTY) == (c->len == 0), "empty cells are FX_CELL_EMPTY");
        for (size_t j = 0; j < i; j++)
            check(strcmp(r->names[i], r->names[j]) != 0, "names unique in a record");
        if (c->type == FX_CELL_NUMBER) {
            char *end;
            strtod(c->s, &end);
            check(*end == '\0', "number cells read back as numbers");
        }
        fx_buf_printf(&k->out, " %s=%d", r->names[i], (int)c->type);
        fx_buf_json_str(&k->out, c->s, c->len);
    }
    fx_buf_putc(&k->out, '\n');
    return 0;
}

static int on_bad(void *ud, size_t index, const struct fx_err *e)
{
    struct sink *k = ud;
    check(index > k->last, "indexes increase (bad)");
    k->last = index;
    check(e->row == (long)index && e->code < 0 && e->column > 0, "bad record located");
    check(utf8(e->reason, strlen(e->reason)), "reason is valid UTF-8");
    fx_buf_printf(&k->out, "BAD %zu %d %d %s\n", index, e->code, e->column, e->reason);
    return 0;
}

static char *parse(const uint8_t *data, size_t size, const struct fx_jsonrec_opts *o, size_t step)
{
    struct sink k = {.o = o};
    fx_buf_init(&k.out, 0);
    struct fx_jsonrec_parser *p = fx_jsonrec_new(o, on_rec, on_bad, &k);
    struct fx_err err;
    int rc = 0;
    for (size_t at = 0; at < size && rc == 0; at += step) {
        size_t n = step < size - at ? step : size - at;
        rc = fx_jsonrec_feed(p, (const char *)data + at, n, &err);
    }
    if (rc == 0)
        rc = fx_jsonrec_finish(p, &err);
    if (rc) {
        check(rc < 0, "only errors stop this sink");
        check(utf8(err.reason, strlen(err.reason)), "fatal reason is valid UTF-8");
        fx_buf_printf(&k.out, "RC %d %ld:%d %s\n", rc, err.row, err.column, err.reason);
        struct fx_err again;
        check(fx_jsonrec_feed(p, "{}", 2, &again) == rc, "sticky feed");
        check(fx_jsonrec_finish(p, &again) == rc, "sticky finish");
    }
    fx_jsonrec_free(p);
    return fx_buf_take(&k.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    struct fx_jsonrec_opts o;
    fx_jsonrec_opts_init(&o);
    o.ndjson = ctl & 1;
    if (ctl & 2)
        o.max_record_bytes = 24;
    if (ctl & 4)
        o.max_fields = 3;
    if (ctl & 8)
        o.max_depth = 2;
    size_t step = 1 + ((ctl >> 4) & 15) * 3; /* 1..46 */
    char *a = parse(data, size, &o, size ? size : 1);
    char *b = parse(data, size, &o, step);
    if (strcmp(a, b) != 0)
        fprintf(stderr, "whole:\n%s\nchunks of %zu:\n%s\n", a, step, b);
    check(strcmp(a, b) == 0, "same result whatever the chunk split");
    free(a);
    free(b);
    return 0;
}
