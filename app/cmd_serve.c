/* SPDX-License-Identifier: MIT */
/* fluxo serve | run SERVICE | migrate: long-running services and schema set-up. */
#include "cli.h"

#include "fluxo/bus.h"
#include "fluxo/http.h"
#include "fluxo/log.h"
#include "fluxo/util.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* Load the runtime and bring every database up to date: 0, or 1 after printing why. */
static int load_and_migrate(struct cli *cli)
{
    if (cli_load_runtime(cli))
        return 1;
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_services_migrate(&cli->rt, &err) != 0) {
        cli_print_err("migrate", &err);
        return 1;
    }
    return 0;
}

/* Publish what is left in the outbox before exiting (bounded wait). */
static void flush_outbox(struct fx_runtime *rt)
{
    struct fx_err err;
    fx_err_clear(&err);
    struct fx_ingest *ig = NULL;
    struct fx_bus *bus = NULL;
    if (fx_ingest_open(rt, &ig, &err) || fx_bus_open(rt->bus_url, &bus, &err)) {
        fx_log_warn("fluxo", "cannot flush the outbox: %s", err.reason);
        goto out;
    }
    int64_t deadline = fx_mono_ms() + 10000;
    int n, total = 0;
    while ((n = fx_relay_once(ig, bus, &err)) > 0 && fx_mono_ms() < deadline)
        total += n;
    if (n < 0)
        fx_log_warn("fluxo", "outbox flush stopped: %s", err.reason);
    else if (total)
        fx_log_info("fluxo", "published %d outbox chunks before exiting", total);
out:
    fx_bus_close(bus);
    fx_ingest_close(ig);
}

static int run_until_signal(struct cli *cli, unsigned mask, const char *what)
{
    if (load_and_migrate(cli))
        return 1;
    struct fx_err err;
    fx_err_clear(&err);
    cli_on_signals(&cli->rt.stop);
    struct fx_services *svc = NULL;
    struct fx_http *http = NULL;
    const char *addr = fx_config_str(cli->cfg, "http_addr");
    int want_http = addr && *addr && strcmp(addr, "off") != 0;
    if ((mask & FX_SVC_RELAY) && want_http && fx_http_start(&cli->rt, &http, &err) != 0) {
        cli_print_err("http", &err);
        return 1;
    }
    if (fx_services_start(&cli->rt, mask, &svc, &err) != 0) {
        cli_print_err(what, &err);
        fx_http_stop(http, 0);
        return 1;
    }
    char db_shown[512], bus_shown[512]; /* never the passwords in the URLs */
    fx_url_redact(cli->rt.db_url, db_shown, sizeof(db_shown));
    fx_url_redact(cli->rt.bus_url, bus_shown, sizeof(bus_shown));
    fx_log_info("fluxo", "%s running on %s (store %s, bus %s%s%s); Ctrl-C or SIGTERM stops", what,
                cli->rt.data_dir, db_shown, bus_shown, (mask & FX_SVC_WATCH) ? ", inbox " : "",
                (mask & FX_SVC_WATCH) ? cli->rt.inbox : "");
    /* systemd (Type=notify): ready now; the watchdog is fed while the main
     * loop runs (sd_* calls are no-ops without NOTIFY_SOCKET) */
    sd_notifyf(0, "READY=1\nSTATUS=%s running on %s", what, cli->rt.data_dir);
    uint64_t wd_usec = 0;
    int64_t wd_every_ms = sd_watchdog_enabled(0, &wd_usec) > 0 ? (int64_t)(wd_usec / 2000) : 0;
    int64_t wd_last = fx_mono_ms();
    while (!cli->rt.stop) {
        fx_sleep_ms(100);
        if (wd_every_ms && fx_mono_ms() - wd_last >= wd_every_ms) {
            sd_notify(0, "WATCHDOG=1");
            wd_last = fx_mono_ms();
        }
    }
    sd_notify(0, "STOPPING=1");
    fx_log_info("fluxo", "stopping: finishing in-flight work");
    /* the API first: in-flight requests finish and their rows are committed */
    fx_http_stop(http, 30000);
    fx_services_stop(svc);
    if (mask & FX_SVC_RELAY)
        flush_outbox(&cli->rt);
    fx_log_info("fluxo", "stopped");
    return 0;
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: fluxo serve\n\nRuns the HTTP API (on http_addr), ingest (watched folder, "
               "relay, applied-status\nconsumer) and distribution (distribution.workers "
               "threads) in one process until\nSIGINT/SIGTERM.\n\n%s",
               CLI_GLOBAL_HELP);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "fluxo serve: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    return run_until_signal(cli, FX_SVC_ALL, "serve");
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
    if (wants_help(argc, argv) || argc != 2) {
        FILE *out = argc == 2 ? stdout : stderr;
        fprintf(out,
                "usage: fluxo run SERVICE\n\nservices:\n"
                "  ingest        HTTP API, watched folder, outbox relay, batch status updates\n"
                "  distribution  applies processed_data chunks to the normalized tables\n"
                "Several processes may share one data dir; they talk only through the bus.\n\n%s",
                CLI_GLOBAL_HELP);
        return argc == 2 ? 0 : 2;
    }
    if (strcmp(argv[1], "ingest") == 0)
        return run_until_signal(cli, FX_SVC_INGEST, "ingest");
    if (strcmp(argv[1], "distribution") == 0)
        return run_until_signal(cli, FX_SVC_DISTRIBUTION, "distribution");
    fprintf(stderr, "fluxo run: unknown service '%s' (ingest, distribution)\n", argv[1]);
    return 2;
}

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: fluxo migrate\n\nCreates or upgrades the databases of every service "
               "(ingest, distribution,\nand each pipeline's tables) and the bus. Idempotent.\n");
        return 0;
    }
    if (load_and_migrate(cli))
        return 1;
    printf("databases up to date in %s\n", cli->rt.data_dir);
    return 0;
}
