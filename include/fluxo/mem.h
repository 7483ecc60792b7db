/* SPDX-License-Identifier: MIT */
/*
 * Memory: allocation wrappers that abort on out-of-memory, a growable byte
 * buffer with a hard cap (input can never grow it past the cap: FX_ETOOBIG),
 * and an arena for batch- and request-scoped allocations freed in one call.
 */
#ifndef FLUXO_MEM_H
#define FLUXO_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation wrappers: never return NULL (abort with a message instead). */
void *fx_malloc(size_t n);
void *fx_calloc(size_t nmemb, size_t size);
void *fx_realloc(void *p, size_t n);
char *fx_strdup(const char *s);
char *fx_strndup(const char *s, size_t n);
char *fx_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable buffer. Always NUL-terminated after any successful append. */
struct fx_buf {
    char *data;
    size_t len;
    size_t cap;   /* allocated bytes */
    size_t limit; /* 0 = unlimited; appends past it fail with FX_ETOOBIG */
};

void fx_buf_init(struct fx_buf *b, size_t limit);
void fx_buf_cleanup(struct fx_buf *b);
void fx_buf_reset(struct fx_buf *b); /* len = 0, keeps memory */
int fx_buf_append(struct fx_buf *b, const void *data, size_t n);
/* Make room for extra more bytes at once (FX_ETOOBIG past the limit). */
int fx_buf_reserve(struct fx_buf *b, size_t extra);
int fx_buf_putc(struct fx_buf *b, char c);
int fx_buf_puts(struct fx_buf *b, const char *s);
/* Append v in decimal (without printf: replies written per request use it). */
int fx_buf_putu(struct fx_buf *b, uint64_t v);
int fx_buf_printf(struct fx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fx_buf_vprintf(struct fx_buf *b, const char *fmt, va_list ap);
/* Append s as a JSON string literal (with quotes), escaping as RFC 8259 requires. */
int fx_buf_json_str(struct fx_buf *b, const char *s, size_t n);
/* Give the data away (caller frees); the buffer is left empty. */
char *fx_buf_take(struct fx_buf *b);

/* Arena: bump allocator in chained blocks; fx_arena_reset frees all at once. */
struct fx_arena_block;
struct fx_arena {
    struct fx_arena_block *head;
    size_t block_size;
};

void fx_arena_init(struct fx_arena *a, size_t block_size);
void fx_arena_cleanup(struct fx_arena *a);
void fx_arena_reset(struct fx_arena *a);            /* keeps the first block */
void *fx_arena_alloc(struct fx_arena *a, size_t n); /* 16-byte aligned, never NULL */
char *fx_arena_strndup(struct fx_arena *a, const char *s, size_t n);

#endif
