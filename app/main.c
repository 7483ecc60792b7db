/* SPDX-License-Identifier: MIT */
/*
 * The fluxo command line: global flags and configuration, then one of the
 * subcommands (serve, run, import, check, status, migrate, config, generate, export, user,
 * client, token).
 * Each command lives in its own file (app/cmd_*.c); this file holds the
 * dispatch and the shared option handling.
 */
#include "cli.h"

#include "fluxo/log.h"
#include "fluxo/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FLUXO_VERSION
#define FLUXO_VERSION "dev"
#endif

static const struct command commands[] = {
    {"serve", "run every service in this process (ingest, relay, folder watch, distribution)",
     cmd_serve},
    {"run", "run one service: ingest | distribution", cmd_run},
    {"import", "import files (CSV, XLSX, XLS) as batches and wait until they are applied",
     cmd_import},
    {"check", "validate files against a pipeline without storing anything", cmd_check},
    {"status", "show a batch: counts per state, progress and errors", cmd_status},
    {"migrate", "create or upgrade every service's database", cmd_migrate},
    {"config", "validate | show the configuration, or list the keys (--help)", cmd_config},
    {"generate", "write deterministic Brazilian sales rows (vendas layout)", cmd_generate},
    {"export", "write a normalized table (clientes, compras...) as CSV or XLSX", cmd_export},
    {"user", "add an API user (OAuth2 password grant): user add NAME", cmd_user},
    {"client", "add an API client and print its secret: client add ID", cmd_client},
    {"token", "print a signed API token for a subject (scripts, tests)", cmd_token},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: fluxo [global options] COMMAND [options] [args]\n\n"
                 "Event-driven data ingestion and distribution.\n\ncommands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->help);
    fprintf(out, "\n%s\nRun 'fluxo COMMAND --help' for a command's options.\n", CLI_GLOBAL_HELP);
}

int cli_parse_global(struct cli *cli, int *argc, char **argv)
{
    /* Pull global options out of argv wherever they are; keep the rest in order. */
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define TAKE(flag)                                                                                 \
    (strcmp(a, flag) == 0 ? (i + 1 < *argc ? (val = argv[++i], 1) : cli_missing(flag))             \
     : strncmp(a, flag "=", sizeof(flag)) == 0 ? (val = a + sizeof(flag), 1)                       \
                                               : 0)
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        } else if (TAKE("--config")) {
            cli->config_file = val;
        } else if (TAKE("--env-file")) {
            cli->env_file = val;
        } else if (TAKE("--data-dir")) {
            cli_add_set(cli, "data_dir", val);
        } else if (TAKE("--log-level")) {
            cli_add_set(cli, "log_level", val);
        } else if (TAKE("--set")) {
            const char *eq = strchr(val, '=');
            if (!eq) {
                fprintf(stderr, "fluxo: --set needs KEY=VALUE, got '%s'\n", val);
                exit(2);
            }
            char *k = fx_strndup(val, (size_t)(eq - val));
            cli_add_set(cli, k, eq + 1);
            free(k);
        } else {
            argv[out++] = argv[i];
        }
#undef TAKE
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli;
    memset(&cli, 0, sizeof(cli));
    cli_parse_global(&cli, &argc, argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("fluxo %s\n", FLUXO_VERSION);
        return 0;
    }
    for (const struct command *c = commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            int rc = c->fn(&cli, argc - 1, argv + 1);
            cli_cleanup(&cli);
            return rc;
        }
    }
    fprintf(stderr, "fluxo: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
