/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the streaming CSV reader. The first byte picks small caps,
 * the chunk splits and the file reader's block size; the rest is the CSV.
 * The input goes through the push parser with two different chunk splits and
 * through the file reader (UTF-8 forced, then auto-detected) from a temp
 * file. Besides never crashing or leaking, it checks the contract: the same
 * records whatever the split, rows increasing, cells NUL-terminated, valid
 * UTF-8 and within the caps, rejected records without cells.
 */
#include "fluxo/csv.h"
#include "fluxo/mem.h"
#include "format/csv_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    struct fx_buf out;
    const struct fx_reader_opts *o;
    long last_row;
};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_csv: contract broken: %s\n", what);
        abort();
    }
}

static void take(struct sink *k, const struct fx_record *r)
{
    check(r->row > k->last_row, "rows increase");
    k->last_row = r->row;
    fx_buf_printf(&k->out, "%ld:", r->row);
    if (r->bad) {
        check(r->ncells == 0, "bad record without cells");
        check(r->err.reason[0] != '\0', "bad record has a reason");
        fx_buf_printf(&k->out, "BAD %d %s\n", r->err.column, r->err.reason);
        return;
    }
    check(r->ncells >= 1 && r->ncells <= k->o->max_fields, "cell count within max_fields");
    for (size_t i = 0; i < r->ncells; i++) {
        const struct fx_cell *c = &r->cells[i];
        check(c->len <= k->o->max_field_bytes, "cell within max_field_bytes");
        check(c->s[c->len] == '\0', "cell NUL-terminated");
        check(memchr(c->s, '\0', c->len) == NULL, "no NUL inside a cell");
        check(fx__csv_utf8_check(c->s, c->len) == c->len, "cell is valid UTF-8");
        check(c->type == (c->len ? FX_CELL_STRING : FX_CELL_EMPTY), "cell type");
        fx_buf_putc(&k->out, '|');
        fx_buf_json_str(&k->out, c->s, c->len);
    }
    fx_buf_putc(&k->out, '\n');
}

static void fatal(struct sink *k, int rc, const struct fx_err *err)
{
    fx_buf_printf(&k->out, "FATAL %d %ld:%d\n", rc, err->row, err->column);
}

/* Push parser: data[0..split) as one chunk, then chunks of step bytes. */
static char *push(const uint8_t *data, size_t size, const struct fx_reader_opts *o, size_t split,
                  size_t step)
{
    struct sink k = {.o = o};
    fx_buf_init(&k.out, 0);
    struct fx_csv *p = fx_csv_new(o);
    struct fx_record rec;
    struct fx_err err;
    int rc = 0;
    size_t at = 0;
    while (at < size && rc >= 0) {
        size_t end = at < split ? split : (step < size - at ? at + step : size);
        const char *d = (const char *)data + at;
        size_t len = end - at;
        while (rc >= 0) {
            size_t used;
            rc = fx_csv_parse(p, d, len, &used, &rec, &err);
            if (rc < 0)
                break;
            check(used <= len, "consumed within the chunk");
            d += used;
            len -= used;
            if (rc == 0)
                break;
            take(&k, &rec);
        }
        at = end;
    }
    if (rc >= 0) {
        while ((rc = fx_csv_finish(p, &rec, &err)) == 1)
            take(&k, &rec);
    }
    if (rc < 0)
        fatal(&k, rc, &err);
    fx_csv_free(p);
    return fx_buf_take(&k.out);
}

static char *from_file(const char *path, const struct fx_reader_opts *o, size_t block)
{
    struct sink k = {.o = o};
    fx_buf_init(&k.out, 0);
    struct fx_reader *r;
    struct fx_err err;
    fx__csv_block_size = block;
    int rc = fx_csv_reader_open(path, o, &r, &err);
    fx__csv_block_size = FX__CSV_BLOCK_MAX;
    check(rc == 0, "reader opens");
    struct fx_record rec;
    while ((rc = fx_reader_next(r, &rec, &err)) == 1)
        take(&k, &rec);
    if (rc < 0)
        fatal(&k, rc, &err);
    long long done, total;
    fx_reader_progress(r, &done, &total);
    check(done == total, "progress reaches the file size");
    fx_reader_free(r);
    return fx_buf_take(&k.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;

    struct fx_reader_opts o;
    fx_reader_opts_init(&o);
    o.max_field_bytes = 1 + (ctl & 7) * 3;       /* 1..22 */
    o.max_fields = 1 + ((ctl >> 3) & 3) * 2;     /* 1..7 */
    o.max_line_bytes = 4 + ((ctl >> 5) & 7) * 9; /* 4..67 */
    if (ctl & 0x10)
        o.delimiter = ";,\t|"[ctl & 3];

    size_t split = size ? (ctl * 7919u) % (size + 1) : 0;
    char *a = push(data, size, &o, split, size);
    char *b = push(data, size, &o, 0, 1 + ctl % 5);
    if (strcmp(a, b) != 0)
        fprintf(stderr, "split at %zu:\n%s\nchunks of %u:\n%s\n", split, a, 1 + ctl % 5, b);
    check(strcmp(a, b) == 0, "same records whatever the chunk split");

    char path[] = "/tmp/fuzz_csv_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        size_t off = 0;
        while (off < size) {
            ssize_t n = write(fd, data + off, size - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(fd);
        if (off == size) {
            o.encoding = "utf-8";
            char *c = from_file(path, &o, 1 + ctl % 13);
            if (strcmp(a, c) != 0)
                fprintf(stderr, "push parser:\n%s\nfile reader:\n%s\n", a, c);
            check(strcmp(a, c) == 0, "file reader agrees with the push parser");
            free(c);
            o.encoding = NULL;
            free(from_file(path, &o, 1 + ctl % 3));
        }
        unlink(path);
    }
    free(a);
    free(b);
    return 0;
}
