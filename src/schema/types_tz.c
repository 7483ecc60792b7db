/* SPDX-License-Identifier: MIT */
/*
 * Time zone for naive date-times: the IANA zone set by fx_tz_set (default
 * America/Sao_Paulo), read from the system's TZif files, and the local ->
 * UTC conversion used by fx_parse_datetime.
 *
 * Design note. The parsers run on every cell, from several threads, so the
 * conversion must not take locks, touch the environment or call mktime.
 * Instead of setting TZ and asking libc (localtime_r locks and re-reads the
 * environment), we read the zone file ourselves (RFC 8536: transition times
 * and offsets, plus the POSIX TZ footer rule for instants after the last
 * transition) into an immutable struct tz_zone. A lookup returns the offset
 * and the interval of instants over which it holds; a tiny per-thread cache
 * of those intervals makes the common case (rows from the same months) a
 * couple of comparisons. Zones, once loaded, are never freed, so a thread
 * reading the previous zone while another calls fx_tz_set stays safe; the
 * current zone is an atomic pointer. The default zone is loaded on first use
 * (pthread_once) when fx_tz_set was never called. Zone files are read from
 * $TZDIR, as glibc does, or /usr/share/zoneinfo.
 *
 * Local -> UTC: for wall time L, o_before and o_after are the offsets two
 * days before and after. If L - o_before maps back to L it wins (this is
 * the unique answer, or the earlier of two for an ambiguous time at the end
 * of DST); otherwise if L - o_after does, that (or the offset found at
 * L - o_before, for a change lasting under four days). Otherwise L falls in
 * a gap (start of DST) and o_before is used, which moves it forward by the gap:
 * in Sao Paulo 2018-11-04 00:30 (clocks jumped 00:00 -> 01:00) is read as
 * 03:30Z = 01:30 -02, and 2019-02-16 23:30 (occurring at -02 then at -03)
 * as its first occurrence, 2019-02-17T01:30Z. One rule for both cases: the
 * offset in effect just before the transition.
 */
#include "fluxo/error.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/types.h"
#include "types_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_ZONE "America/Sao_Paulo"
#define MAX_TZIF (1u << 20)
#define TWO_DAYS 172800

/* POSIX TZ rule date: Mm.w.d, Jn (1..365, Feb 29 never counted) or n (0..365). */
struct rule_date {
    char kind;    /* 'M', 'J', 'n' */
    int a, b, c;  /* M: month, week, weekday; J/n: day */
    int32_t time; /* seconds after local midnight, may be negative or > 24h */
};

struct tz_zone {
    struct tz_zone *next; /* list of every zone loaded, never freed */
    char name[128];
    size_t ntrans;
    int64_t *at;  /* transition instants, ascending */
    int32_t *off; /* offset in effect from at[i] */
    int32_t off0; /* before at[0] (RFC 8536: time type 0) */
    int has_rule; /* footer present: governs instants >= at[ntrans-1] */
    int has_dst;
    int32_t std_off, dst_off; /* seconds east of UTC */
    struct rule_date start, end;
};

static _Atomic(const struct tz_zone *) current;
static struct tz_zone *loaded;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* ---- POSIX TZ footer --------------------------------------------------------------------- */

static const char *rule_name(const char *p)
{
    if (*p == '<') {
        while (*p && *p != '>')
            p++;
        return *p ? p + 1 : NULL;
    }
    const char *b = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    return p - b >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to 167 (RFC 8536 extension), in seconds. */
static const char *rule_hms(const char *p, int32_t *out)
{
    int sign = 1, part[3] = {0, 0, 0};
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    for (int i = 0; i < 3; i++) {
        if (i && *p != ':')
            break;
        if (i)
            p++;
        if (!fx__is_digit((unsigned char)*p))
            return NULL;
        int v = 0, k = 0;
        while (fx__is_digit((unsigned char)*p) && k < 3) {
            v = v * 10 + (*p++ - '0');
            k++;
        }
        part[i] = v;
    }
    if (part[0] > 167 || part[1] > 59 || part[2] > 59)
        return NULL;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return p;
}

static const char *rule_num(const char *p, int *out)
{
    if (!fx__is_digit((unsigned char)*p))
        return NULL;
    int v = 0;
    while (fx__is_digit((unsigned char)*p) && v < 1000)
        v = v * 10 + (*p++ - '0');
    *out = v;
    return p;
}

static const char *rule_date(const char *p, struct rule_date *r)
{
    r->time = 7200;
    if (*p == 'M') {
        r->kind = 'M';
        if (!(p = rule_num(p + 1, &r->a)) || *p++ != '.' || !(p = rule_num(p, &r->b)) ||
            *p++ != '.' || !(p = rule_num(p, &r->c)))
            return NULL;
        if (r->a < 1 || r->a > 12 || r->b < 1 || r->b > 5 || r->c > 6)
            return NULL;
    } else if (*p == 'J') {
        r->kind = 'J';
        if (!(p = rule_num(p + 1, &r->a)) || r->a < 1 || r->a > 365)
            return NULL;
    } else {
        r->kind = 'n';
        if (!(p = rule_num(p, &r->a)) || r->a > 365)
            return NULL;
    }
    if (*p == '/' && !(p = rule_hms(p + 1, &r->time)))
        return NULL;
    return p;
}

static int parse_rule(struct tz_zone *z, const char *p)
{
    int32_t v;
    if (!(p = rule_name(p)) || !(p = rule_hms(p, &v)))
        return -1;
    z->std_off = -v; /* POSIX offsets count west of UTC */
    z->has_dst = 0;
    if (!*p)
        return 0;
    if (!(p = rule_name(p)))
        return -1;
    z->dst_off = z->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = rule_hms(p, &v)))
            return -1;
        z->dst_off = -v;
    }
    if (!*p) { /* no rule given: the POSIX default (US rules) */
        z->start = (struct rule_date){'M', 3, 2, 0, 7200};
        z->end = (struct rule_date){'M', 11, 1, 0, 7200};
    } else if (*p++ != ',' || !(p = rule_date(p, &z->start)) || *p++ != ',' ||
               !(p = rule_date(p, &z->end)) || *p) {
        return -1;
    }
    z->has_dst = 1;
    return 0;
}

/* Local day (days since epoch) on which the rule falls in year y. */
static int64_t rule_day(const struct rule_date *r, int y)
{
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int64_t jan1 = fx_days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->a - 1 + (leap && r->a >= 60);
    if (r->kind == 'n')
        return jan1 + r->a;
    static const unsigned char dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int mdays = dim[r->a] + (r->a == 2 && leap);
    int64_t first = fx_days_from_civil(y, r->a, 1);
    int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (r->c - wd + 7) % 7 + 7 * (r->b - 1);
    while (day > mdays)
        day -= 7;
    return first + day - 1;
}

/* Offset from the footer rule at instant t, with the interval [*lo, *hi). */
static int32_t rule_offset(const struct tz_zone *z, int64_t t, int64_t *lo, int64_t *hi)
{
    if (!z->has_dst) {
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        return z->std_off;
    }
    int y, m, d;
    fx_civil_from_days((int32_t)((t + z->std_off) / 86400 - ((t + z->std_off) % 86400 < 0)), &y, &m,
                       &d);
    struct {
        int64_t at;
        int32_t off;
    } ev[6], tmp;
    int k = 0;
    for (int yy = y - 1; yy <= y + 1; yy++) {
        /* DST starts at standard local time, ends at daylight local time. */
        ev[k].at = rule_day(&z->start, yy) * 86400 + z->start.time - z->std_off;
        ev[k++].off = z->dst_off;
        ev[k].at = rule_day(&z->end, yy) * 86400 + z->end.time - z->dst_off;
        ev[k++].off = z->std_off;
    }
    for (int i = 1; i < 6; i++)
        // cppcheck-suppress uninitvar ; the loop above wrote all six events
        for (int j = i; j > 0 && ev[j].at < ev[j - 1].at; j--)
            tmp = ev[j], ev[j] = ev[j - 1], ev[j - 1] = tmp;
    int i = 5;
    while (i >= 0 && ev[i].at > t)
        i--;
    if (i < 0) { /* cannot happen for sane rules; stay correct anyway */
        *lo = t;
        *hi = ev[0].at;
        return ev[0].off == z->dst_off ? z->std_off : z->dst_off;
    }
    *lo = ev[i].at;
    *hi = i < 5 ? ev[i + 1].at : t + 1;
    return ev[i].off;
}

/* ---- offset lookup ----------------------------------------------------------------------- */

static int32_t zone_offset(const struct tz_zone *z, int64_t t, int64_t *lo, int64_t *hi)
{
    if (z->ntrans == 0) {
        if (z->has_rule)
            return rule_offset(z, t, lo, hi);
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        return z->off0;
    }
    if (t < z->at[0]) {
        *lo = INT64_MIN;
        *hi = z->at[0];
        return z->off0;
    }
    size_t a = 0, b = z->ntrans; /* at[a] <= t < at[b] */
    while (b - a > 1) {
        size_t mid = a + (b - a) / 2;
        if (z->at[mid] <= t)
            a = mid;
        else
            b = mid;
    }
    if (b < z->ntrans) {
        *lo = z->at[a];
        *hi = z->at[b];
        return z->off[a];
    }
    if (!z->has_rule) {
        *lo = z->at[a];
        *hi = INT64_MAX;
        return z->off[a];
    }
    int32_t o = rule_offset(z, t, lo, hi);
    if (*lo < z->at[a])
        *lo = z->at[a];
    return o;
}

/* Per-thread cache of offset intervals, tagged by zone. */
static _Thread_local struct {
    const struct tz_zone *z;
    int64_t lo, hi;
    int32_t off;
} cache[4];
static _Thread_local unsigned cache_next;

static int32_t offset_at(const struct tz_zone *z, int64_t t)
{
    for (int i = 0; i < 4; i++)
        if (cache[i].z == z && cache[i].lo <= t && t < cache[i].hi)
            return cache[i].off;
    int64_t lo, hi;
    int32_t o = zone_offset(z, t, &lo, &hi);
    unsigned i = cache_next++ & 3;
    cache[i].z = z;
    cache[i].lo = lo;
    cache[i].hi = hi;
    cache[i].off = o;
    return o;
}

/* ---- loading ----------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parse a TZif image (RFC 8536, versions 1 to 4) into z. */
static int parse_tzif(struct tz_zone *z, const unsigned char *buf, size_t len)
{
    const unsigned char *p = buf, *end = buf + len;
    int tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (end - p < 44 || memcmp(p, "TZif", 4))
            return -1;
        int version = p[4];
        uint32_t isutcnt = be32(p + 20), isstdcnt = be32(p + 24), leapcnt = be32(p + 28),
                 timecnt = be32(p + 32), typecnt = be32(p + 36), charcnt = be32(p + 40);
        p += 44;
        if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || leapcnt > 100000 ||
            charcnt > 100000 || isutcnt > 256 || isstdcnt > 256)
            return -1;
        size_t body = (size_t)timecnt * tsize + timecnt + typecnt * 6u + charcnt +
                      leapcnt * (tsize + 4u) + isstdcnt + isutcnt;
        if ((size_t)(end - p) < body)
            return -1;
        if (pass == 0 && version >= '2') {
            p += body; /* skip the 32-bit data, use the 64-bit block */
            tsize = 8;
            continue;
        }
        const unsigned char *times = p, *idx = p + (size_t)timecnt * tsize, *types = idx + timecnt;
        int32_t utoff[256];
        for (uint32_t i = 0; i < typecnt; i++) {
            utoff[i] = (int32_t)be32(types + 6 * i);
            if (utoff[i] <= -TWO_DAYS / 2 || utoff[i] >= TWO_DAYS / 2)
                return -1;
        }
        // cppcheck-suppress uninitvar ; typecnt >= 1 was checked above
        z->off0 = utoff[0];
        z->ntrans = timecnt;
        z->at = fx_malloc((timecnt ? timecnt : 1) * sizeof *z->at);
        z->off = fx_malloc((timecnt ? timecnt : 1) * sizeof *z->off);
        for (uint32_t i = 0; i < timecnt; i++) {
            z->at[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
            if (idx[i] >= typecnt || (i && z->at[i] <= z->at[i - 1]))
                return -1;
            z->off[i] = utoff[idx[i]];
        }
        p += body;
        z->has_rule = 0;
        if (tsize == 8 && p < end && *p == '\n') {
            const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
            char footer[128];
            size_t flen = nl ? (size_t)(nl - p - 1) : 0;
            if (nl && flen > 0 && flen < sizeof footer) {
                memcpy(footer, p + 1, flen);
                footer[flen] = '\0';
                if (parse_rule(z, footer) == 0)
                    z->has_rule = 1;
            }
        }
        return 0;
    }
    return -1;
}

/* IANA names only: no absolute paths, no "." or ".." components. */
static int valid_zone_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((struct tz_zone *)0)->name) || name[0] == '/')
        return 0;
    const char *comp = name;
    for (const char *p = name;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t k = (size_t)(p - comp);
            if (k == 0 || (k == 1 && comp[0] == '.') ||
                (k == 2 && comp[0] == '.' && comp[1] == '.'))
                return 0;
            if (!*p)
                return 1;
            comp = p + 1;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     fx__is_digit((unsigned char)*p) || *p == '_' || *p == '-' || *p == '+' ||
                     *p == '.')) {
            return 0;
        }
    }
}

static void zone_free(struct tz_zone *z)
{
    free(z->at);
    free(z->off);
    free(z);
}

/* Find or load a zone (caller holds load_lock). NULL when unknown. */
static struct tz_zone *zone_get(const char *name)
{
    for (struct tz_zone *z = loaded; z; z = z->next)
        if (!strcmp(z->name, name))
            return z;
    if (!valid_zone_name(name))
        return NULL;
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    char *path = fx_asprintf("%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return NULL;
    struct stat st;
    struct tz_zone *z = NULL;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 44 || st.st_size > MAX_TZIF)
        goto out;
    buf = fx_malloc((size_t)st.st_size);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    z = fx_calloc(1, sizeof *z);
    if (parse_tzif(z, buf, got)) {
        zone_free(z);
        z = NULL;
        goto out;
    }
    strcpy(z->name, name);
    z->next = loaded;
    loaded = z;
out:
    free(buf);
    close(fd);
    return z;
}

int fx_tz_set(const char *iana_name)
{
    if (!iana_name)
        return FX_EINVAL;
    pthread_mutex_lock(&load_lock);
    struct tz_zone *z = zone_get(iana_name);
    if (z)
        atomic_store_explicit(&current, z, memory_order_release);
    pthread_mutex_unlock(&load_lock);
    return z ? 0 : FX_EINVAL;
}

static void load_default(void)
{
    pthread_mutex_lock(&load_lock);
    struct tz_zone *z = zone_get(DEFAULT_ZONE);
    const struct tz_zone *none = NULL;
    if (z)
        atomic_compare_exchange_strong(&current, &none, z);
    pthread_mutex_unlock(&load_lock);
    if (!z)
        fx_log_error("types", "time zone data for %s not found (is tzdata installed?)",
                     DEFAULT_ZONE);
}

int fx__tz_local_to_utc(int64_t local, int64_t *utc, const char **why)
{
    const struct tz_zone *z = atomic_load_explicit(&current, memory_order_acquire);
    if (!z) {
        pthread_once(&default_once, load_default);
        z = atomic_load_explicit(&current, memory_order_acquire);
        if (!z) {
            if (why)
                *why = "time zone data is not available";
            return FX_EPARSE;
        }
    }
    /* Fast path: offset constant over [local - 2d, local + 2d]. */
    for (int i = 0; i < 4; i++)
        if (cache[i].z == z && cache[i].lo <= local - TWO_DAYS && local + TWO_DAYS < cache[i].hi) {
            *utc = local - cache[i].off;
            return 0;
        }
    int32_t before = offset_at(z, local - TWO_DAYS), after = offset_at(z, local + TWO_DAYS);
    int32_t inside = offset_at(z, local - before);
    if (inside == before) /* unique, or the earlier of two */
        *utc = local - before;
    else if (offset_at(z, local - after) == after)
        *utc = local - after;
    else if (offset_at(z, local - inside) == inside) /* a change lasting under 4 days */
        *utc = local - inside;
    else /* in a gap: shifted forward by it */
        *utc = local - before;
    return 0;
}
