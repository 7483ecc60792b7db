/* SPDX-License-Identifier: MIT */
/* Clocks, UUIDv7, traceparent, hashing (libsodium) and file helpers. */
#include "fluxo/util.h"
#include "fluxo/error.h"
#include "fluxo/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct fx_sha256) >= sizeof(crypto_hash_sha256_state),
               "fx_sha256 too small for libsodium state");

static void ensure_sodium(void)
{
    static int ready;
    if (!ready) {
        if (sodium_init() < 0) {
            fprintf(stderr, "fluxo: libsodium failed to initialise\n");
            abort();
        }
        ready = 1;
    }
}

int64_t fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fx_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Random bytes for ids come from a per-thread pool refilled by one
 * getrandom call (libsodium): ids are made per request, and a system call
 * for each of them showed in profiles (4 KiB: a refill per ~120 requests).
 * A fork starts the child's pool anew so parent and child never hand out
 * the same bytes. */
static _Atomic unsigned pool_generation;
static void pool_atfork_child(void)
{
    pool_generation++;
}
static void ensure_atfork(void)
{
    pthread_atfork(NULL, NULL, pool_atfork_child);
}

static void id_random(unsigned char *out, size_t n)
{
    static __thread unsigned char pool[4096];
    static __thread size_t left;
    static __thread unsigned gen;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ensure_atfork);
    if (gen != pool_generation) {
        left = 0;
        gen = pool_generation;
    }
    if (n > sizeof(pool)) {
        randombytes_buf(out, n);
        return;
    }
    if (left < n) {
        randombytes_buf(pool, sizeof(pool));
        left = sizeof(pool);
    }
    memcpy(out, pool + sizeof(pool) - left, n);
    sodium_memzero(pool + sizeof(pool) - left, n);
    left -= n;
}

int64_t fx_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fx_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Hex of in[0..n) at out, unterminated; returns the end. Ids are written
 * by hand: snprintf was a visible share of a request's cost. */
static char *hex_at(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *out++ = digits[in[i] >> 4];
        *out++ = digits[in[i] & 15];
    }
    return out;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    *hex_at(out, in, n) = '\0';
}

void fx_uuid7(char out[37])
{
    ensure_sodium();
    unsigned char b[16];
    uint64_t ms = (uint64_t)fx_now_ms();
    id_random(b + 6, 10);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    char *o = hex_at(out, b, 4); /* 8-4-4-4-12 */
    *o++ = '-';
    o = hex_at(o, b + 4, 2);
    *o++ = '-';
    o = hex_at(o, b + 6, 2);
    *o++ = '-';
    o = hex_at(o, b + 8, 2);
    *o++ = '-';
    o = hex_at(o, b + 10, 6);
    *o = '\0';
}

void fx_traceparent_new(char out[56])
{
    ensure_sodium();
    unsigned char b[24];
    id_random(b, sizeof(b));
    memcpy(out, "00-", 3);
    char *o = hex_at(out + 3, b, 16);
    *o++ = '-';
    o = hex_at(o, b + 16, 8);
    memcpy(o, "-01", 4);
}

void fx_sha256_init(struct fx_sha256 *s)
{
    ensure_sodium();
    crypto_hash_sha256_init((crypto_hash_sha256_state *)s->opaque);
}

void fx_sha256_update(struct fx_sha256 *s, const void *data, size_t len)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)s->opaque, data, len);
}

void fx_sha256_final_hex(struct fx_sha256 *s, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final((crypto_hash_sha256_state *)s->opaque, d);
    hex(d, sizeof(d), out);
}

void fx_sha256_hex(const void *data, size_t len, char out[65])
{
    struct fx_sha256 s;
    fx_sha256_init(&s);
    fx_sha256_update(&s, data, len);
    fx_sha256_final_hex(&s, out);
}

_Static_assert(sizeof(struct fx_keyhash) >= sizeof(crypto_generichash_state),
               "fx_keyhash too small for libsodium state");

void fx_keyhash_init(struct fx_keyhash *s)
{
    ensure_sodium();
    crypto_generichash_init((crypto_generichash_state *)s->opaque, NULL, 0, 32);
}

void fx_keyhash_update(struct fx_keyhash *s, const void *data, size_t len)
{
    crypto_generichash_update((crypto_generichash_state *)s->opaque, data, len);
}

void fx_keyhash_final_hex(struct fx_keyhash *s, char out[65])
{
    unsigned char d[32];
    crypto_generichash_final((crypto_generichash_state *)s->opaque, d, sizeof(d));
    hex(d, sizeof(d), out);
}

void fx_keyhash_hex(const void *data, size_t len, char out[65])
{
    struct fx_keyhash s;
    fx_keyhash_init(&s);
    fx_keyhash_update(&s, data, len);
    fx_keyhash_final_hex(&s, out);
}

int fx_sha256_file(const char *path, char out[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FX_EIO;
    struct fx_sha256 s;
    fx_sha256_init(&s);
    unsigned char buf[1 << 16];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return FX_EIO;
        }
        if (n == 0)
            break;
        fx_sha256_update(&s, buf, (size_t)n);
    }
    close(fd);
    fx_sha256_final_hex(&s, out);
    return 0;
}

uint64_t fx_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int fx_mkdirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return FX_EINVAL;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return FX_EIO;
            tmp[i] = c;
        }
    }
    return 0;
}

void fx_url_redact(const char *url, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!url)
        return;
    struct fx_buf b;
    fx_buf_init(&b, 0);
    const char *auth = strstr(url, "://");
    const char *start = auth ? auth + 3 : url;
    const char *end = start + strcspn(start, "/?#");
    const char *at = NULL;
    for (const char *p = start; p < end; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
    if (colon) {
        fx_buf_append(&b, url, (size_t)(colon - url) + 1);
        fx_buf_puts(&b, "***");
        url = at;
    }
    const char *q = strchr(url, '?');
    fx_buf_append(&b, url, q ? (size_t)(q - url) : strlen(url));
    if (q)
        fx_buf_puts(&b, "?...");
    snprintf(out, cap, "%s", b.data ? b.data : "");
    fx_buf_cleanup(&b);
}
