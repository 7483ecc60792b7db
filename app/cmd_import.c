/* SPDX-License-Identifier: MIT */
/*
 * fluxo import: each file becomes a batch. Then, unless --no-wait, waits
 * until every accepted row is applied, running the relay and the
 * distribution in-process when no other process provides them.
 * Exit status: 0 when every file was read, 1 when a file was refused as a
 * whole, 2 on usage errors.
 */
#include "cli.h"

#include "fluxo/log.h"
#include "fluxo/mem.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct progress {
    const char *name;
    int tty;
    int64_t start;
};

static void human_bytes(long long n, char *out, size_t cap)
{
    if (n >= 1LL << 20)
        snprintf(out, cap, "%.1f MB", (double)n / (1 << 20));
    else
        snprintf(out, cap, "%.0f kB", (double)n / 1024);
}

static void on_progress(void *ud, uint64_t rows, long long bytes, long long total)
{
    struct progress *p = ud;
    double secs = (double)(fx_mono_ms() - p->start) / 1000.0;
    double rate = secs > 0 ? (double)rows / secs : 0;
    char b1[32], b2[32], eta[32] = "";
    human_bytes(bytes, b1, sizeof(b1));
    human_bytes(total, b2, sizeof(b2));
    int pct = total > 0 ? (int)(100.0 * (double)bytes / (double)total) : 0;
    if (total > 0 && bytes > 0 && secs > 0) {
        double left = secs * (double)(total - bytes) / (double)bytes;
        snprintf(eta, sizeof(eta), "ETA %.0fs", left);
    }
    if (p->tty) {
        int bar = pct / 5;
        fprintf(stderr, "\r  %-24.24s [%-20.*s] %3d%%  %llu rows  %s/%s  %.0f rows/s  %-10s",
                p->name, bar, "####################", pct, (unsigned long long)rows, b1, b2, rate,
                eta);
    } else {
        fprintf(stderr, "%s: %llu rows read (%d%%), %.0f rows/s\n", p->name,
                (unsigned long long)rows, pct, rate);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fluxo import [--pipeline NAME] [--no-wait] [--quiet] FILE...\n\n"
                 "Imports each file as one batch of the pipeline (default: key 'pipeline').\n"
                 "Accepted rows are queued in the same transaction as the batch; rejected rows\n"
                 "are recorded with row, column, value and reason ('fluxo status BATCH').\n"
                 "Waits until the batches are applied (running the distribution in this\n"
                 "process when no 'fluxo serve' or 'fluxo run distribution' is running),\n"
                 "unless --no-wait. Exit status 1 when a file was refused as a whole.\n");
}

static int print_issue(void *ud, long row, int column, const char *field, const char *value,
                       const char *rule, const char *reason, const char *severity)
{
    (void)rule;
    const char *name = ud;
    if (column > 0)
        fprintf(stderr, "  %s:%ld:%d: %s: %s: %s (value \"%s\")\n", name, row, column, severity,
                field, reason, value ? value : "");
    else
        fprintf(stderr, "  %s:%ld: %s: %s\n", name, row, severity, reason);
    return 0;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
    const char *pipeline = NULL;
    int wait = 1, quiet = 0;
    char **files = fx_calloc((size_t)argc, sizeof(char *));
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(files);
            return 0;
        } else if (strcmp(argv[i], "--pipeline") == 0 && i + 1 < argc) {
            pipeline = argv[++i];
        } else if (strncmp(argv[i], "--pipeline=", 11) == 0) {
            pipeline = argv[i] + 11;
        } else if (strcmp(argv[i], "--no-wait") == 0) {
            wait = 0;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "fluxo import: unknown option '%s'\n", argv[i]);
            usage(stderr);
            free(files);
            return 2;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (nfiles == 0) {
        usage(stderr);
        free(files);
        return 2;
    }
    if (cli_load_runtime(cli)) {
        free(files);
        return 1;
    }
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    if (fx_ingest_open(&cli->rt, &ig, &err) != 0) {
        cli_print_err("ingest", &err);
        free(files);
        return 1;
    }
    /* Relay and distribution start first, so a big file's first chunks are
     * applied while the rest is still being read. */
    struct fx_services *svc = NULL;
    int own_dist = 0;
    if (wait) {
        cli_on_signals(&cli->rt.stop);
        unsigned mask = FX_SVC_RELAY | FX_SVC_APPLIED;
        own_dist = !fx_distribution_running(&cli->rt);
        if (own_dist)
            mask |= FX_SVC_DISTRIBUTION;
        if (fx_services_start(&cli->rt, mask, &svc, &err) != 0) {
            cli_print_err("services", &err);
            fx_ingest_close(ig);
            free(files);
            return 1;
        }
    }
    int refused = 0;
    char(*batches)[37] = fx_calloc((size_t)nfiles, 37);
    uint64_t *accepted = fx_calloc((size_t)nfiles, sizeof(uint64_t));
    int nbatches = 0;
    for (int i = 0; i < nfiles; i++) {
        struct progress pr = {files[i], isatty(2), fx_mono_ms()};
        struct fx_batch_result res;
        fx_err_clear(&err);
        int rc =
            fx_ingest_file(ig, files[i], pipeline, quiet ? NULL : on_progress, &pr, &res, &err);
        if (pr.tty && !quiet)
            fprintf(stderr, "\r%-110s\r", "");
        if (rc != 0) {
            refused++;
            cli_print_err(res.refused ? "file refused" : "import failed", &err);
            continue;
        }
        double secs = (double)(fx_mono_ms() - pr.start) / 1000.0;
        printf("%s: batch %s (correlation %s)\n  %llu rows: %llu accepted, %llu rejected, "
               "%llu duplicate, %llu warnings, %llu possible duplicates; %.2fs (%.0f rows/s)\n",
               files[i], res.batch_id, res.correlation_id, (unsigned long long)res.received,
               (unsigned long long)res.accepted, (unsigned long long)res.rejected,
               (unsigned long long)res.duplicate, (unsigned long long)res.warnings,
               (unsigned long long)res.possible_dup, secs,
               secs > 0 ? (double)res.received / secs : 0.0);
        if (res.unknown_columns[0])
            printf("  ignored columns: %s\n", res.unknown_columns);
        if ((res.rejected || res.warnings) && !quiet) {
            fx_ingest_issues(ig, res.batch_id, 10, print_issue, files[i]);
            if (res.rejected + res.warnings > 10)
                fprintf(stderr, "  ... see 'fluxo status %s' for all issues\n", res.batch_id);
        }
        memcpy(batches[nbatches], res.batch_id, 37);
        accepted[nbatches++] = res.accepted;
    }
    fflush(stdout);

    if (wait && nbatches > 0 && svc) {
        {
            int64_t t0 = fx_mono_ms(), last = 0;
            for (;;) {
                uint64_t applied = 0, total = 0;
                for (int b = 0; b < nbatches; b++) {
                    struct fx_batch_status st;
                    if (fx_ingest_status(ig, batches[b], &st) == 0) {
                        applied += st.applied;
                        total += st.accepted;
                    }
                }
                int64_t now = fx_mono_ms();
                if (applied >= total) {
                    printf("applied %llu rows in %.2fs%s\n", (unsigned long long)total,
                           (double)(now - t0) / 1000.0,
                           own_dist ? "" : " (by the running distribution service)");
                    break;
                }
                if (cli->rt.stop) {
                    printf("interrupted: %llu of %llu rows applied; the rest stays queued\n",
                           (unsigned long long)applied, (unsigned long long)total);
                    break;
                }
                if (now - last >= 1000 && !quiet) {
                    fprintf(stderr, "%sapplying: %llu / %llu rows%s", isatty(2) ? "\r" : "",
                            (unsigned long long)applied, (unsigned long long)total,
                            isatty(2) ? "   " : "\n");
                    last = now;
                }
                fx_sleep_ms(50);
            }
            if (isatty(2) && !quiet)
                fprintf(stderr, "\r%-60s\r", "");
        }
    }
    fx_services_stop(svc);
    fx_ingest_close(ig);
    free(batches);
    free(accepted);
    free(files);
    return refused ? 1 : 0;
}
