/* SPDX-License-Identifier: MIT */
/* fluxo status BATCH_ID: counts per state, progress and the batch's issues. */
#include "cli.h"

#include "fluxo/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct issue_out {
    int json;
    int first;
};

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static int print_issue(void *ud, long row, int column, const char *field, const char *value,
                       const char *rule, const char *reason, const char *severity)
{
    struct issue_out *o = ud;
    if (o->json) {
        printf("%s{\"row\":%ld,\"column\":%d,\"field\":", o->first ? "" : ",", row, column);
        json_str(field);
        printf(",\"value\":");
        json_str(value);
        printf(",\"rule\":");
        json_str(rule);
        printf(",\"severity\":");
        json_str(severity);
        printf(",\"reason\":");
        json_str(reason);
        putchar('}');
    } else {
        printf("  row %-7ld col %-3d %-8s %-16s %s", row, column, severity,
               field && *field ? field : "-", reason);
        if (value && *value)
            printf(" (value \"%s\")", value);
        putchar('\n');
    }
    o->first = 0;
    return 0;
}

static int list_row(void *ud, const struct fx_batch_status *st)
{
    (void)ud;
    const char *name = strrchr(st->source, '/');
    name = name ? name + 1 : st->source;
    printf("%-36s  %-19.19s  %-9s  %9llu %9llu %8llu %9llu %9llu  %s\n", st->id, st->created_at,
           st->state, (unsigned long long)st->received, (unsigned long long)st->accepted,
           (unsigned long long)st->rejected, (unsigned long long)st->duplicate,
           (unsigned long long)st->applied, name);
    return 0;
}

/* fluxo status without an id: the most recent batches, one line each. */
static int list_batches(struct cli *cli, long limit)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    if (fx_ingest_open(&cli->rt, &ig, &err) != 0) {
        cli_print_err("ingest", &err);
        return 1;
    }
    printf("%-36s  %-19s  %-9s  %9s %9s %8s %9s %9s  %s\n", "batch", "created (UTC)", "state",
           "received", "accepted", "rejected", "duplicate", "applied", "source");
    int rc = fx_ingest_list(ig, limit > 0 ? (size_t)limit : 20, list_row, NULL);
    fx_ingest_close(ig);
    return rc ? 1 : 0;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    const char *id = NULL;
    int json = 0;
    long limit = 50, last = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: fluxo status [--json] [--errors N] BATCH_ID\n"
                   "       fluxo status [--last N]\n\n"
                   "Shows a batch: counts per state (received, rejected, duplicate, queued,\n"
                   "applied), progress and up to N issues (default 50, 0 = all). Without a\n"
                   "batch id, lists the last N batches (default 20), newest first.\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--last") == 0 && i + 1 < argc) {
            last = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--errors") == 0 && i + 1 < argc) {
            limit = strtol(argv[++i], NULL, 10);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "fluxo status: unknown option '%s'\n", argv[i]);
            return 2;
        } else {
            id = argv[i];
        }
    }
    if (cli_load_runtime(cli))
        return 1;
    if (!id)
        return list_batches(cli, last);
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    if (fx_ingest_open(&cli->rt, &ig, &err) != 0) {
        cli_print_err("ingest", &err);
        return 1;
    }
    struct fx_batch_status st;
    int rc = fx_ingest_status(ig, id, &st);
    if (rc != 0) {
        fprintf(stderr, "fluxo status: %s: %s\n", id,
                rc == FX_ENOTFOUND ? "no such batch" : fx_strerror(rc));
        fx_ingest_close(ig);
        return 1;
    }
    double pct = st.accepted ? 100.0 * (double)st.applied / (double)st.accepted : 100.0;
    struct issue_out o = {json, 1};
    if (json) {
        printf("{\"id\":\"%s\",\"correlation_id\":\"%s\",\"pipeline\":", st.id, st.correlation_id);
        json_str(st.pipeline);
        printf(",\"state\":\"%s\",\"source\":", st.state);
        json_str(st.source);
        printf(",\"created_at\":\"%s\",\"error\":", st.created_at);
        json_str(st.error);
        printf(",\"counts\":{\"received\":%llu,\"accepted\":%llu,\"rejected\":%llu,"
               "\"duplicate\":%llu,\"warnings\":%llu,\"possible_duplicates\":%llu,"
               "\"queued\":%llu,\"published\":%llu,\"applied\":%llu},\"progress\":%.1f,"
               "\"issues\":[",
               (unsigned long long)st.received, (unsigned long long)st.accepted,
               (unsigned long long)st.rejected, (unsigned long long)st.duplicate,
               (unsigned long long)st.warnings, (unsigned long long)st.possible_dup,
               (unsigned long long)st.queued, (unsigned long long)st.published,
               (unsigned long long)st.applied, pct);
        fx_ingest_issues(ig, id, (size_t)limit, print_issue, &o);
        printf("]}\n");
    } else {
        printf("batch       %s\ncorrelation %s\npipeline    %s\nsource      %s\ncreated     %s\n"
               "state       %s\n",
               st.id, st.correlation_id, st.pipeline, st.source, st.created_at, st.state);
        if (st.error[0])
            printf("error       %s\n", st.error);
        printf("received    %llu\naccepted    %llu\nrejected    %llu\nduplicate   %llu\n"
               "warnings    %llu (possible duplicates %llu)\n"
               "queued      %llu\npublished   %llu\napplied     %llu (%.1f%%)\n",
               (unsigned long long)st.received, (unsigned long long)st.accepted,
               (unsigned long long)st.rejected, (unsigned long long)st.duplicate,
               (unsigned long long)st.warnings, (unsigned long long)st.possible_dup,
               (unsigned long long)st.queued, (unsigned long long)st.published,
               (unsigned long long)st.applied, pct);
        if (st.rejected || st.warnings) {
            printf("issues:\n");
            fx_ingest_issues(ig, id, (size_t)limit, print_issue, &o);
        }
    }
    fx_ingest_close(ig);
    return 0;
}
