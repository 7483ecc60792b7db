/* SPDX-License-Identifier: MIT */
/*
 * Watched folder. A file is picked up only when finished: its size and
 * modification time have not changed for watch.settle_ms, and its name is
 * not hidden or a partial download (.part, .tmp, .crdownload, ~). After the
 * import it moves to processed/ (read, even with rejected rows) or failed/
 * (refused as a whole), with a JSON report beside it, so a bad file is never
 * retried forever and history is never re-sent. A store failure (not the
 * file's fault) is retried up to three scans, then the file is failed.
 */
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/services.h"
#include "fluxo/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct tracked {
    char *name;
    off_t size;
    struct timespec mtime;
    int64_t stable_since;
    int attempts;
    int seen; /* present in the current scan */
};

struct fx_watch {
    struct fx_runtime *rt;
    struct fx_ingest *ig;
    struct tracked *files;
    size_t n;
};

int fx_watch_open(struct fx_runtime *rt, struct fx_ingest *ig, struct fx_watch **out,
                  struct fx_err *err)
{
    char *p1 = fx_asprintf("%s/processed", rt->inbox), *p2 = fx_asprintf("%s/failed", rt->inbox);
    int rc = fx_mkdirs(rt->inbox) || fx_mkdirs(p1) || fx_mkdirs(p2);
    free(p1);
    free(p2);
    if (rc)
        return fx_err_set(err, FX_EIO, "cannot create inbox folders under '%s'", rt->inbox);
    struct fx_watch *w = fx_calloc(1, sizeof(*w));
    w->rt = rt;
    w->ig = ig;
    *out = w;
    return 0;
}

void fx_watch_close(struct fx_watch *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->files[i].name);
    free(w->files);
    free(w);
}

static int ignored_name(const char *n)
{
    size_t len = strlen(n);
    static const char *const suffixes[] = {
        ".part", ".tmp", ".crdownload", ".swp", ".partial", ".report.json", "~"};
    if (n[0] == '.')
        return 1;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if (len >= sl && strcmp(n + len - sl, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

struct report_ctx {
    struct fx_buf *b;
    int first;
};

static int report_issue(void *ud, long row, int column, const char *field, const char *value,
                        const char *rule, const char *reason, const char *severity)
{
    struct report_ctx *rc = ud;
    struct fx_buf *b = rc->b;
    fx_buf_printf(b, "%s\n    {\"row\": %ld, \"column\": %d, \"field\": ", rc->first ? "" : ",",
                  row, column);
    fx_buf_json_str(b, field ? field : "", field ? strlen(field) : 0);
    fx_buf_puts(b, ", \"value\": ");
    fx_buf_json_str(b, value ? value : "", value ? strlen(value) : 0);
    fx_buf_printf(b, ", \"rule\": \"%s\", \"severity\": \"%s\", \"reason\": ", rule, severity);
    fx_buf_json_str(b, reason, strlen(reason));
    fx_buf_putc(b, '}');
    rc->first = 0;
    return 0;
}

static void write_report(struct fx_watch *w, const char *path, const char *name,
                         const struct fx_batch_result *res, const struct fx_err *err, int ok)
{
    struct fx_buf b;
    fx_buf_init(&b, 0);
    fx_buf_puts(&b, "{\n  \"file\": ");
    fx_buf_json_str(&b, name, strlen(name));
    fx_buf_printf(&b,
                  ",\n  \"batch_id\": \"%s\",\n  \"correlation_id\": \"%s\",\n"
                  "  \"status\": \"%s\",\n",
                  res->batch_id, res->correlation_id, ok ? "processed" : "failed");
    if (!ok) {
        char msg[1200];
        fx_err_format(err, msg, sizeof(msg));
        fx_buf_puts(&b, "  \"error\": ");
        fx_buf_json_str(&b, msg, strlen(msg));
        fx_buf_puts(&b, ",\n");
    }
    fx_buf_printf(&b,
                  "  \"rows\": %llu, \"accepted\": %llu, \"rejected\": %llu, \"duplicate\": %llu,"
                  " \"warnings\": %llu, \"possible_duplicates\": %llu,\n  \"ignored_columns\": ",
                  (unsigned long long)res->received, (unsigned long long)res->accepted,
                  (unsigned long long)res->rejected, (unsigned long long)res->duplicate,
                  (unsigned long long)res->warnings, (unsigned long long)res->possible_dup);
    fx_buf_json_str(&b, res->unknown_columns, strlen(res->unknown_columns));
    fx_buf_puts(&b, ",\n  \"issues\": [");
    struct report_ctx ctx = {&b, 1};
    if (ok)
        fx_ingest_issues(w->ig, res->batch_id, 1000, report_issue, &ctx);
    fx_buf_puts(&b, "\n  ]\n}\n");
    char *rpath = fx_asprintf("%s.report.json", path);
    FILE *f = fopen(rpath, "w");
    if (f) {
        fwrite(b.data, 1, b.len, f);
        fclose(f);
    } else {
        fx_log_error("watch", "cannot write report %s: %s", rpath, strerror(errno));
    }
    free(rpath);
    fx_buf_cleanup(&b);
}

static void handle(struct fx_watch *w, struct tracked *t)
{
    char *src = fx_asprintf("%s/%s", w->rt->inbox, t->name);
    struct fx_batch_result res;
    struct fx_err err;
    fx_err_clear(&err);
    fx_log_info("watch", "importing %s", src);
    int rc = fx_ingest_file(w->ig, src, NULL, NULL, NULL, &res, &err);
    int refused = rc < 0 && res.refused;
    if (rc < 0 && !refused && ++t->attempts < 3) {
        fx_log_warn("watch", "import of %s failed (%s), will retry", src, err.reason);
        free(src);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    char *dst =
        fx_asprintf("%s/%s/%s-%s", w->rt->inbox, rc == 0 ? "processed" : "failed", stamp, t->name);
    if (rename(src, dst) != 0)
        fx_log_error("watch",
                     "cannot move %s to %s: %s (it will not be imported again by this "
                     "process)",
                     src, dst, strerror(errno));
    write_report(w, dst, t->name, &res, &err, rc == 0);
    if (rc == 0)
        fx_log(FX_LOG_INFO, "watch", res.correlation_id,
               "%s -> processed (batch %s: %llu accepted, %llu rejected, %llu duplicate)", t->name,
               res.batch_id, (unsigned long long)res.accepted, (unsigned long long)res.rejected,
               (unsigned long long)res.duplicate);
    else
        fx_log(FX_LOG_WARN, "watch", res.correlation_id, "%s -> failed: %s", t->name, err.reason);
    t->attempts = 1000; /* done: never again, even if the move failed */
    free(src);
    free(dst);
}

int fx_watch_scan(struct fx_watch *w)
{
    DIR *d = opendir(w->rt->inbox);
    if (!d)
        return FX_EIO;
    for (size_t i = 0; i < w->n; i++)
        w->files[i].seen = 0;
    int64_t now = fx_mono_ms();
    int64_t settle = fx_config_int(w->rt->cfg, "watch.settle_ms");
    struct dirent *e;
    int handled = 0;
    while ((e = readdir(d))) {
        if (ignored_name(e->d_name))
            continue;
        char *path = fx_asprintf("%s/%s", w->rt->inbox, e->d_name);
        struct stat st;
        int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!ok)
            continue;
        struct tracked *t = NULL;
        for (size_t i = 0; i < w->n; i++)
            if (strcmp(w->files[i].name, e->d_name) == 0)
                t = &w->files[i];
        if (!t) {
            w->files = fx_realloc(w->files, (w->n + 1) * sizeof(*w->files));
            t = &w->files[w->n++];
            memset(t, 0, sizeof(*t));
            t->name = fx_strdup(e->d_name);
            t->size = st.st_size;
            t->mtime = st.st_mtim;
            t->stable_since = now;
        }
        t->seen = 1;
        if (t->size != st.st_size || t->mtime.tv_sec != st.st_mtim.tv_sec ||
            t->mtime.tv_nsec != st.st_mtim.tv_nsec) {
            t->size = st.st_size;
            t->mtime = st.st_mtim;
            t->stable_since = now;
            t->attempts = 0; /* a new version of the file */
            continue;
        }
        if (t->attempts >= 1000 || now - t->stable_since < settle)
            continue;
        handle(w, t);
        handled++;
    }
    closedir(d);
    /* forget files that disappeared */
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->files[i].seen)
            w->files[k++] = w->files[i];
        else
            free(w->files[i].name);
    }
    w->n = k;
    return handled;
}
