/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the multipart/form-data push parser, with the fixed boundary "XyZ"
 * (short, so the fuzzer finds it). The first byte picks a chunk size and small limits;
 * the rest is the body, parsed whole and in chunks. Besides never crashing or leaking,
 * the contract is checked: the same parts, data and errors whatever the split, begin
 * and end paired, no empty data calls, names and file names valid UTF-8 without path
 * separators in file names, the same value from every call once stopped.
 */
#include "fluxo/mem.h"
#include "fluxo/multipart.h"
#include "format/csv_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    struct fx_buf out;
    int in_part;
    size_t parts;
    const struct fx_multipart_opts *o;
};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_multipart: contract broken: %s\n", what);
        abort();
    }
}

static int utf8(const char *s)
{
    return fx__csv_utf8_check(s, strlen(s)) == strlen(s);
}

static int on_begin(void *ud, const struct fx_multipart_part *p)
{
    struct sink *k = ud;
    check(!k->in_part, "begin after end");
    check(++k->parts <= k->o->max_parts, "parts within max_parts");
    k->in_part = 1;
    check(p->name && utf8(p->name), "name is UTF-8");
    if (p->filename) {
        check(utf8(p->filename), "file name is UTF-8");
        check(!strpbrk(p->filename, "/\\"), "file name has no path");
        check(strcmp(p->filename, ".") && strcmp(p->filename, ".."), "file name not . or ..");
    }
    fx_buf_printf(&k->out, "\nBEGIN %s|%s|%s\n", p->name, p->filename ? p->filename : "-",
                  p->content_type ? p->content_type : "-");
    return 0;
}

static int on_data(void *ud, const char *d, size_t n)
{
    struct sink *k = ud;
    check(k->in_part, "data inside a part");
    check(n > 0, "no empty data calls");
    fx_buf_append(&k->out, d, n);
    return 0;
}

static int on_end(void *ud)
{
    struct sink *k = ud;
    check(k->in_part, "end after begin");
    k->in_part = 0;
    fx_buf_puts(&k->out, "\nEND\n");
    return 0;
}

static struct fx_buf parse(const uint8_t *data, size_t size, const struct fx_multipart_opts *o,
                           size_t step)
{
    struct sink k = {.o = o};
    fx_buf_init(&k.out, 0);
    fx_buf_puts(&k.out, ""); /* data never NULL, for memcmp */
    struct fx_multipart *m = fx_multipart_new("XyZ", o, on_begin, on_data, on_end, &k);
    check(m != NULL, "parser created");
    struct fx_err err;
    int rc = 0;
    for (size_t at = 0; at < size && rc == 0; at += step) {
        size_t n = step < size - at ? step : size - at;
        rc = fx_multipart_feed(m, (const char *)data + at, n, &err);
    }
    if (rc == 0)
        rc = fx_multipart_finish(m, &err);
    if (rc) {
        check(rc < 0, "only errors stop this sink");
        check(err.reason[0] != '\0', "errors have a reason");
        check(utf8(err.reason), "reason is valid UTF-8");
        for (const char *c = err.reason; *c; c++)
            check((unsigned char)*c >= 0x20 && *c != 0x7f, "reason is printable");
        /* the data passed on before an error is all but the held-back delimiter prefix,
         * which depends on the content only: it is compared too */
        fx_buf_printf(&k.out, "\nRC %d %ld %s\n", rc, err.row, err.reason);
        struct fx_err again;
        check(fx_multipart_feed(m, "x", 1, &again) == rc, "sticky feed");
        check(fx_multipart_finish(m, &again) == rc, "sticky finish");
    } else {
        check(!k.in_part, "every part ended");
    }
    fx_multipart_free(m);
    return k.out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    struct fx_multipart_opts o;
    fx_multipart_opts_init(&o);
    if (ctl & 1)
        o.max_header_bytes = 64;
    if (ctl & 2)
        o.max_parts = 2;
    size_t step = 1 + (ctl >> 2) % 23;
    /* the dumps hold raw part data (NULs too): compare them as bytes */
    struct fx_buf a = parse(data, size, &o, size ? size : 1);
    struct fx_buf b = parse(data, size, &o, step);
    int same = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    if (!same)
        fprintf(stderr, "whole:\n%.*s\nchunks of %zu:\n%.*s\n", (int)a.len, a.data, step,
                (int)b.len, b.data);
    check(same, "same result whatever the chunk split");
    fx_buf_cleanup(&a);
    fx_buf_cleanup(&b);
    return 0;
}
