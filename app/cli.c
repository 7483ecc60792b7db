/* SPDX-License-Identifier: MIT */
/* Configuration loading, error printing and signals for the command line. */
#include "cli.h"

#include "fluxo/log.h"
#include "fluxo/mem.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_missing(const char *flag)
{
    fprintf(stderr, "fluxo: option %s needs a value\n", flag);
    exit(2);
}

void cli_add_set(struct cli *cli, const char *key, const char *value)
{
    cli->set_keys = fx_realloc(cli->set_keys, (cli->nsets + 1) * sizeof(char *));
    cli->set_values = fx_realloc(cli->set_values, (cli->nsets + 1) * sizeof(char *));
    cli->set_keys[cli->nsets] = fx_strdup(key);
    cli->set_values[cli->nsets] = fx_strdup(value);
    cli->nsets++;
}

void cli_print_err(const char *what, const struct fx_err *err)
{
    char msg[1400];
    fx_err_format(err, msg, sizeof(msg));
    if (what)
        fprintf(stderr, "fluxo: %s: %s\n", what, msg);
    else
        fprintf(stderr, "fluxo: %s\n", msg);
}

int cli_load_config(struct cli *cli)
{
    if (cli->cfg)
        return 0;
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_config_load(cli->config_file, cli->env_file, &cli->cfg, &err) != 0) {
        cli_print_err("configuration", &err);
        return 1;
    }
    for (size_t i = 0; i < cli->nsets; i++) {
        if (fx_config_set(cli->cfg, cli->set_keys[i], cli->set_values[i], &err) != 0) {
            cli_print_err("configuration", &err);
            return 1;
        }
    }
    if (fx_log_set_level_name(fx_config_str(cli->cfg, "log_level")) != 0) {
        fprintf(stderr,
                "fluxo: configuration: log_level must be debug, info, warn, error or off\n");
        return 1;
    }
    const char *fmt = fx_config_str(cli->cfg, "log_format");
    fx_log_set_plain(strcmp(fmt, "plain") == 0 || (strcmp(fmt, "auto") == 0 && isatty(2)));
    return 0;
}

int cli_load_runtime(struct cli *cli)
{
    if (cli_load_config(cli))
        return 1;
    if (cli->rt_ready)
        return 0;
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_runtime_init(&cli->rt, cli->cfg, &err) != 0) {
        cli_print_err(NULL, &err);
        fx_runtime_cleanup(&cli->rt);
        return 1;
    }
    cli->rt_ready = 1;
    return 0;
}

void cli_cleanup(struct cli *cli)
{
    if (cli->rt_ready)
        fx_runtime_cleanup(&cli->rt);
    fx_config_free(cli->cfg);
    for (size_t i = 0; i < cli->nsets; i++) {
        free(cli->set_keys[i]);
        free(cli->set_values[i]);
    }
    free(cli->set_keys);
    free(cli->set_values);
}

static volatile int *signal_flag;

static void on_signal(int sig)
{
    (void)sig;
    if (signal_flag)
        *signal_flag = 1;
}

void cli_on_signals(volatile int *flag)
{
    signal_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
