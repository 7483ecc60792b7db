/* SPDX-License-Identifier: MIT */
/*
 * The verified-token cache: API clients send the same bearer token on every
 * request until it expires, so remembering the outcome of a full
 * verification (base64url, two JSON documents, a signature) turns most
 * verifications into one keyed hash, one lock and one comparison.
 *
 * Design: 256 sets of 4 entries (1024 tokens), each set with its own mutex,
 * so concurrent HTTP threads rarely meet on a lock. The set is chosen by
 * SipHash-2-4 of the token under a key drawn at start-up: an attacker cannot
 * compute which tokens share a set, so cannot flush a victim's entry at will.
 * A hit needs equal hashes and equal bytes. Only tokens that passed every
 * check are stored, with their principal; the caller re-checks exp and nbf on
 * each hit, because the cache never makes a token valid longer.
 */
#include "auth_int.h"

#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <stdlib.h>
#include <string.h>

#define SETS 256
#define WAYS 4

struct entry {
    uint64_t hash;
    char *tok; /* NULL: free slot */
    size_t len;
    int64_t nbf_ms, exp_ms, drop_ms;
    uint64_t used; /* set->clock at the last hit, for LRU */
    struct fx_principal p;
};

struct set {
    pthread_mutex_t mu;
    uint64_t clock;
    uint64_t hits, misses;
    struct entry e[WAYS];
};

struct fx__token_cache {
    unsigned char key[crypto_shorthash_KEYBYTES];
    struct set sets[SETS];
};

static uint64_t token_hash(const struct fx__token_cache *c, const char *tok, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)tok, len, c->key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    return v;
}

static struct entry *find(struct set *s, uint64_t h, const char *tok, size_t len)
{
    for (int i = 0; i < WAYS; i++) {
        struct entry *e = &s->e[i];
        if (e->tok && e->hash == h && e->len == len && memcmp(e->tok, tok, len) == 0)
            return e;
    }
    return NULL;
}

static void clear_entry(struct entry *e)
{
    free(e->tok);
    memset(e, 0, sizeof(*e));
}

struct fx__token_cache *fx__token_cache_new(void)
{
    struct fx__token_cache *c = fx_calloc(1, sizeof(*c));
    crypto_shorthash_keygen(c->key);
    for (int i = 0; i < SETS; i++)
        pthread_mutex_init(&c->sets[i].mu, NULL);
    return c;
}

void fx__token_cache_free(struct fx__token_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SETS; i++) {
        for (int w = 0; w < WAYS; w++)
            clear_entry(&c->sets[i].e[w]);
        pthread_mutex_destroy(&c->sets[i].mu);
    }
    free(c);
}

int fx__token_cache_get(struct fx__token_cache *c, const char *tok, size_t len,
                        struct fx_principal *p, int64_t *nbf_ms, int64_t *exp_ms)
{
    uint64_t h = token_hash(c, tok, len);
    struct set *s = &c->sets[h % SETS];
    pthread_mutex_lock(&s->mu);
    struct entry *e = find(s, h, tok, len);
    if (e) {
        e->used = ++s->clock;
        s->hits++;
        *p = e->p;
        *nbf_ms = e->nbf_ms;
        *exp_ms = e->exp_ms;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return e != NULL;
}

void fx__token_cache_put(struct fx__token_cache *c, const char *tok, size_t len,
                         const struct fx_principal *p, int64_t nbf_ms, int64_t exp_ms,
                         int64_t drop_ms)
{
    uint64_t h = token_hash(c, tok, len);
    struct set *s = &c->sets[h % SETS];
    /* copy outside the lock; free the loser outside it too */
    char *copy = fx_malloc(len);
    memcpy(copy, tok, len);
    char *old = NULL;
    int64_t now = fx_now_ms();
    pthread_mutex_lock(&s->mu);
    struct entry *e = find(s, h, tok, len);
    if (e) {
        old = copy; /* another thread stored it meanwhile */
    } else {
        /* a free slot, else one past its drop time, else the least recently used */
        for (int i = 0; i < WAYS && !e; i++)
            if (!s->e[i].tok)
                e = &s->e[i];
        for (int i = 0; i < WAYS && !e; i++)
            if (s->e[i].drop_ms <= now)
                e = &s->e[i];
        if (!e) {
            e = &s->e[0];
            for (int i = 1; i < WAYS; i++)
                if (s->e[i].used < e->used)
                    e = &s->e[i];
        }
        old = e->tok;
        e->hash = h;
        e->tok = copy;
        e->len = len;
        e->nbf_ms = nbf_ms;
        e->exp_ms = exp_ms;
        e->drop_ms = drop_ms;
        e->p = *p;
    }
    e->used = ++s->clock;
    pthread_mutex_unlock(&s->mu);
    free(old);
}

void fx__token_cache_drop(struct fx__token_cache *c, const char *tok, size_t len)
{
    uint64_t h = token_hash(c, tok, len);
    struct set *s = &c->sets[h % SETS];
    char *old = NULL;
    pthread_mutex_lock(&s->mu);
    struct entry *e = find(s, h, tok, len);
    if (e) {
        old = e->tok;
        e->tok = NULL;
        e->len = 0;
        e->used = 0;
    }
    pthread_mutex_unlock(&s->mu);
    free(old);
}

void fx__token_cache_stats(struct fx__token_cache *c, struct fx_auth_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < SETS; i++) {
        struct set *s = &c->sets[i];
        pthread_mutex_lock(&s->mu);
        out->cache_hits += s->hits;
        out->cache_misses += s->misses;
        for (int w = 0; w < WAYS; w++)
            out->cache_entries += s->e[w].tok != NULL;
        pthread_mutex_unlock(&s->mu);
    }
}
