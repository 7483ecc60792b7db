/* SPDX-License-Identifier: MIT */
/* Allocation wrappers, capped growable buffers and arenas. */
#include "fluxo/mem.h"
#include "fluxo/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "fluxo: out of memory allocating %zu bytes\n", n);
    abort();
}

void *fx_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *fx_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *fx_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *fx_strndup(const char *s, size_t n)
{
    char *p = fx_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *fx_strdup(const char *s)
{
    return s ? fx_strndup(s, strlen(s)) : NULL;
}

char *fx_asprintf(const char *fmt, ...)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    va_list ap;
    va_start(ap, fmt);
    fx_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return fx_buf_take(&b);
}

void fx_buf_init(struct fx_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void fx_buf_cleanup(struct fx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void fx_buf_reset(struct fx_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int reserve(struct fx_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (b->limit && b->len + extra > b->limit)
        return FX_ETOOBIG;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = fx_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int fx_buf_reserve(struct fx_buf *b, size_t extra)
{
    return reserve(b, extra);
}

int fx_buf_append(struct fx_buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fx_buf_putc(struct fx_buf *b, char c)
{
    return fx_buf_append(b, &c, 1);
}

int fx_buf_puts(struct fx_buf *b, const char *s)
{
    return fx_buf_append(b, s, strlen(s));
}

int fx_buf_putu(struct fx_buf *b, uint64_t v)
{
    char d[20];
    size_t n = sizeof(d);
    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return fx_buf_append(b, d + n, sizeof(d) - n);
}

int fx_buf_vprintf(struct fx_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return FX_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int fx_buf_printf(struct fx_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fx_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int fx_buf_json_str(struct fx_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = reserve(b, n + 2);
    if (rc)
        return rc;
    b->data[b->len++] = '"';
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if ((rc = fx_buf_append(b, s + run, i - run)))
            return rc;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        if ((rc = fx_buf_append(b, esc, el)))
            return rc;
        run = i + 1;
    }
    if ((rc = fx_buf_append(b, s + run, n - run)))
        return rc;
    return fx_buf_putc(b, '"');
}

char *fx_buf_take(struct fx_buf *b)
{
    char *p = b->data ? b->data : fx_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

struct fx_arena_block {
    struct fx_arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char mem[];
};

void fx_arena_init(struct fx_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
}

void fx_arena_cleanup(struct fx_arena *a)
{
    struct fx_arena_block *b = a->head;
    while (b) {
        struct fx_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

void fx_arena_reset(struct fx_arena *a)
{
    if (!a->head)
        return;
    struct fx_arena_block *last = a->head;
    /* keep the most recent block only if it is a standard-size one */
    struct fx_arena_block *b = last->next;
    while (b) {
        struct fx_arena_block *n = b->next;
        free(b);
        b = n;
    }
    last->next = NULL;
    last->used = 0;
}

void *fx_arena_alloc(struct fx_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct fx_arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > a->block_size ? n : a->block_size;
        struct fx_arena_block *nb = fx_malloc(sizeof(*nb) + size);
        nb->size = size;
        nb->used = 0;
        if (b && n > a->block_size) {
            /* oversized: chain behind the head so the head keeps serving */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->mem;
        }
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->mem + b->used;
    b->used += n;
    return p;
}

char *fx_arena_strndup(struct fx_arena *a, const char *s, size_t n)
{
    char *p = fx_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
