/* SPDX-License-Identifier: MIT */
/* Shared state and helpers of the fluxo command line. */
#ifndef FLUXO_CLI_H
#define FLUXO_CLI_H

#include "fluxo/config.h"
#include "fluxo/services.h"

#include <stdio.h>

#define CLI_GLOBAL_HELP                                                                            \
    "global options (anywhere on the line):\n"                                                     \
    "  --config FILE      YAML configuration (default: $FLUXO_CONFIG or ./fluxo.yaml)\n"           \
    "  --env-file FILE    .env file (default: ./.env when present)\n"                              \
    "  --data-dir DIR     data directory (key data_dir, env FLUXO_DATA_DIR, default ./data)\n"     \
    "  --set KEY=VALUE    set any configuration key (see 'fluxo config --help')\n"                 \
    "  --log-level LEVEL  debug | info | warn | error | off\n"                                     \
    "precedence: flags > FLUXO_* environment > .env > YAML file > defaults\n"

struct cli {
    const char *config_file;
    const char *env_file;
    size_t nsets;
    char **set_keys;
    char **set_values;
    struct fx_config *cfg;
    struct fx_runtime rt;
    int rt_ready;
};

struct command {
    const char *name;
    const char *help;
    int (*fn)(struct cli *cli, int argc, char **argv);
};

int cli_parse_global(struct cli *cli, int *argc, char **argv);
int cli_missing(const char *flag);
void cli_add_set(struct cli *cli, const char *key, const char *value);
/* Load configuration (file, .env, env, flags) and set up logging; prints errors. 0 or 1. */
int cli_load_config(struct cli *cli);
/* Also resolve the runtime (dirs, pipelines); prints errors. 0 or 1. */
int cli_load_runtime(struct cli *cli);
void cli_cleanup(struct cli *cli);
/* Print an fx_err as "fluxo: <formatted>" on stderr. */
void cli_print_err(const char *what, const struct fx_err *err);
/* Install SIGINT/SIGTERM handlers that set *flag. */
void cli_on_signals(volatile int *flag);

int cmd_serve(struct cli *cli, int argc, char **argv);
int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_check(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_migrate(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_generate(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
/* fluxo user add / client add / token (app/cmd_auth.c) */
int cmd_user(struct cli *cli, int argc, char **argv);
int cmd_client(struct cli *cli, int argc, char **argv);
int cmd_token(struct cli *cli, int argc, char **argv);

#endif
