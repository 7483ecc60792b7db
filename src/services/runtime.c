/* SPDX-License-Identifier: MIT */
/* Runtime shared by the services: resolved locations, time zone, loaded pipelines. */
#include "fluxo/bus.h"
#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/services.h"
#include "fluxo/types.h"
#include "fluxo/util.h"
#include "services/embedded.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The pipelines compiled into the binary (pipelines/ of the source tree). */
static int load_embedded(struct fx_runtime *rt, struct fx_err *err)
{
    for (const struct fx_embedded *e = fx_embedded_pipelines; e->name; e++) {
        struct fx_pipeline *p = NULL;
        char source[128];
        snprintf(source, sizeof(source), "(built-in) %s", e->name);
        int rc = fx_pipeline_load_mem(e->data, e->len, source, &p, err);
        if (rc)
            return rc;
        rt->pipelines = fx_realloc(rt->pipelines, (rt->npipelines + 1) * sizeof(p));
        rt->pipelines[rt->npipelines++] = p;
    }
    return 0;
}

static int load_pipelines(struct fx_runtime *rt, struct fx_err *err)
{
    DIR *d = opendir(rt->pipelines_dir);
    if (!d && strcmp(fx_config_origin(rt->cfg, "pipelines_dir"), "default") == 0) {
        /* no ./pipelines here and none configured: the built-in definitions */
        free(rt->pipelines_dir);
        rt->pipelines_dir = fx_strdup("(built-in)");
        return load_embedded(rt, err);
    }
    if (!d) {
        fx_err_set(err, FX_ECONFIG, "cannot open pipelines directory '%s'", rt->pipelines_dir);
        return FX_ECONFIG;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        names = fx_realloc(names, (n + 1) * sizeof(*names));
        names[n++] = fx_asprintf("%s/%s", rt->pipelines_dir, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct fx_pipeline *p = NULL;
        if (rc == 0) {
            rc = fx_pipeline_load_file(names[i], &p, err);
            if (rc == 0) {
                rt->pipelines = fx_realloc(rt->pipelines, (rt->npipelines + 1) * sizeof(p));
                rt->pipelines[rt->npipelines++] = p;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int fx_runtime_init(struct fx_runtime *rt, const struct fx_config *cfg, struct fx_err *err)
{
    memset(rt, 0, sizeof(*rt));
    rt->cfg = cfg;
    rt->data_dir = fx_strdup(fx_config_str(cfg, "data_dir"));
    const char *v;
    rt->db_url = (v = fx_config_str(cfg, "db")) && *v ? fx_strdup(v)
                                                      : fx_asprintf("sqlite:%s", rt->data_dir);
    rt->bus_url = (v = fx_config_str(cfg, "bus")) && *v ? fx_strdup(v)
                                                        : fx_asprintf("local:%s", rt->data_dir);
    rt->inbox = (v = fx_config_str(cfg, "inbox")) && *v ? fx_strdup(v)
                                                        : fx_asprintf("%s/inbox", rt->data_dir);
    rt->pipelines_dir = fx_strdup(fx_config_str(cfg, "pipelines_dir"));
    rt->default_pipeline = fx_strdup(fx_config_str(cfg, "pipeline"));
    if (fx_mkdirs(rt->data_dir) != 0)
        return fx_err_set(err, FX_EIO, "cannot create data directory '%s'", rt->data_dir);
    const char *tz = fx_config_str(cfg, "timezone");
    if (fx_tz_set(tz) != 0)
        return fx_err_set(err, FX_ECONFIG, "unknown time zone '%s' (key timezone, from %s)", tz,
                          fx_config_origin(cfg, "timezone"));
    return load_pipelines(rt, err);
}

void fx_runtime_cleanup(struct fx_runtime *rt)
{
    for (size_t i = 0; i < rt->npipelines; i++)
        fx_pipeline_free(rt->pipelines[i]);
    free(rt->pipelines);
    free(rt->data_dir);
    free(rt->db_url);
    free(rt->bus_url);
    free(rt->inbox);
    free(rt->pipelines_dir);
    free(rt->default_pipeline);
    memset(rt, 0, sizeof(*rt));
}

const struct fx_pipeline *fx_runtime_pipeline(const struct fx_runtime *rt, const char *name)
{
    for (size_t i = 0; i < rt->npipelines; i++)
        if (strcmp(fx_pipeline_name(rt->pipelines[i]), name) == 0)
            return rt->pipelines[i];
    return NULL;
}

int fx_services_declare(struct fx_runtime *rt, struct fx_bus *bus, struct fx_err *err)
{
    struct fx_group_opts o;
    fx_group_opts_init(&o);
    o.max_attempts = (int)fx_config_int(rt->cfg, "delivery.max_attempts");
    o.backoff_ms = (int)fx_config_int(rt->cfg, "delivery.backoff_ms");
    o.lease_ms = (int)fx_config_int(rt->cfg, "delivery.lease_ms");
    if (o.backoff_max_ms < o.backoff_ms)
        o.backoff_max_ms = o.backoff_ms;
    const char *processed[] = {FX_RK_PROCESSED};
    const char *applied[] = {FX_RK_APPLIED};
    int rc = fx_bus_declare(bus, FX_GROUP_DISTRIBUTION, processed, 1, &o, err);
    if (rc == 0)
        rc = fx_bus_declare(bus, FX_GROUP_APPLIED, applied, 1, &o, err);
    return rc;
}
