/* SPDX-License-Identifier: MIT */
/*
 * Account and token commands of the API's authentication: `fluxo user add`,
 * `fluxo client add` and `fluxo token`. They open the auth store and keys
 * the way the server does (fx_auth_open), so a token printed here is one the
 * server accepts.
 */
#include "cli.h"

#include "fluxo/auth.h"
#include "fluxo/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define DEFAULT_SCOPES "ingest:write read"

static void user_usage(FILE *out)
{
    fprintf(out,
            "usage: fluxo user add NAME [--scopes \"ingest:write read\"] [--password-stdin]\n\n"
            "Adds an API user who gets tokens with the OAuth2 password grant. The password\n"
            "is asked twice on the terminal without echo, or read as one line from standard\n"
            "input with --password-stdin; it needs %d characters or more and is stored as an\n"
            "argon2id hash. NAME: 1 to %d letters, digits or . _ - @ + :\n"
            "Scopes (space-separated): ingest:write, read, admin; default \"%s\".\n",
            FX_AUTH_PASSWORD_MIN, FX_AUTH_NAME_MAX, DEFAULT_SCOPES);
}

static void client_usage(FILE *out)
{
    fprintf(out,
            "usage: fluxo client add ID [--scopes \"ingest:write read\"]\n\n"
            "Adds an API client that gets tokens with the OAuth2 client-credentials grant,\n"
            "and prints its generated secret on standard output. The secret is stored only\n"
            "as a hash: this is the one time it is shown.\n"
            "Scopes (space-separated): ingest:write, read, admin; default \"%s\".\n",
            DEFAULT_SCOPES);
}

static void token_usage(FILE *out)
{
    fprintf(out,
            "usage: fluxo token SUB [--scopes \"ingest:write read\"] [--ttl 1h]\n\n"
            "Prints a signed API token for subject SUB without any password check, for\n"
            "scripts and tests; anyone who can read this server's key can do the same.\n"
            "--ttl takes a duration like 90s, 30m or 1h (default: auth.token_ttl).\n"
            "Scopes (space-separated): ingest:write, read, admin; default \"%s\".\n",
            DEFAULT_SCOPES);
}

/* Options shared by the three commands; returns 0, or the exit code (2) of a usage error. */
struct opts {
    const char *name;
    const char *scopes;
    const char *ttl;
    int password_stdin;
    int help;
};

static int parse_opts(const char *cmd, int argc, char **argv, int first, int allow_ttl,
                      int allow_stdin, struct opts *o, void (*usage)(FILE *))
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            return 0;
        } else if (allow_stdin && strcmp(a, "--password-stdin") == 0) {
            o->password_stdin = 1;
        } else if (strcmp(a, "--scopes") == 0 || (allow_ttl && strcmp(a, "--ttl") == 0)) {
            if (i + 1 >= argc)
                return cli_missing(a);
            if (strcmp(a, "--scopes") == 0)
                o->scopes = argv[++i];
            else
                o->ttl = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "fluxo %s: unknown option '%s'\n", cmd, a);
            usage(stderr);
            return 2;
        } else if (!o->name) {
            o->name = a;
        } else {
            fprintf(stderr, "fluxo %s: one name at a time ('%s' and '%s')\n", cmd, o->name, a);
            return 2;
        }
    }
    if (!o->name) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static int parse_scopes(const char *cmd, const char *text, unsigned *out)
{
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_scopes_parse(text ? text : DEFAULT_SCOPES, out, &err) != 0) {
        fprintf(stderr, "fluxo %s: --scopes: %s\n", cmd, err.reason);
        return 2;
    }
    return 0;
}

static int open_auth(struct cli *cli, struct fx_auth **a)
{
    if (cli_load_config(cli))
        return 1;
    struct fx_err err;
    fx_err_clear(&err);
    if (fx_auth_open(cli->cfg, NULL, NULL, a, &err) != 0) {
        fprintf(stderr, "fluxo: auth: %s\n", err.reason[0] ? err.reason : fx_strerror(err.code));
        return 1;
    }
    return 0;
}

/* One line from f without its line end; NULL at end of input. Caller wipes and frees. */
static char *read_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static void wipe(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

/* Prompt on the terminal with echo off; NULL on end of input. */
static char *prompt_hidden(const char *prompt)
{
    struct termios old, quiet;
    int have = tcgetattr(STDIN_FILENO, &old) == 0;
    fputs(prompt, stderr);
    fflush(stderr);
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = read_line(stdin);
    if (have)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return line;
}

static char *get_password(int from_stdin)
{
    if (from_stdin) {
        char *pw = read_line(stdin);
        if (!pw)
            fprintf(stderr, "fluxo user add: no password on standard input\n");
        return pw;
    }
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "fluxo user add: standard input is not a terminal to ask the password "
                        "on; pass it as one line with --password-stdin\n");
        return NULL;
    }
    char *pw = prompt_hidden("Password: ");
    if (!pw)
        return NULL;
    char *again = prompt_hidden("Password (again): ");
    int same = again && strcmp(pw, again) == 0;
    wipe(again);
    if (!same) {
        fprintf(stderr, "fluxo user add: the two passwords differ; nothing was added\n");
        wipe(pw);
        return NULL;
    }
    return pw;
}

int cmd_user(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        user_usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        if (argc >= 2)
            fprintf(stderr, "fluxo user: unknown action '%s'\n", argv[1]);
        user_usage(stderr);
        return 2;
    }
    struct opts o = {0};
    int rc = parse_opts("user add", argc, argv, 2, 0, 1, &o, user_usage);
    if (rc || o.help) {
        if (o.help)
            user_usage(stdout);
        return rc;
    }
    unsigned scopes = 0;
    if ((rc = parse_scopes("user add", o.scopes, &scopes)) != 0)
        return rc;
    struct fx_auth *a = NULL;
    if (open_auth(cli, &a))
        return 1;
    char *pw = get_password(o.password_stdin);
    if (!pw) {
        fx_auth_close(a);
        return 1;
    }
    struct fx_err err;
    fx_err_clear(&err);
    rc = fx_auth_user_add(a, o.name, pw, scopes, &err);
    wipe(pw);
    fx_auth_close(a);
    if (rc) {
        fprintf(stderr, "fluxo user add: %s\n", err.reason[0] ? err.reason : fx_strerror(rc));
        return 1;
    }
    char text[FX_SCOPES_TEXT_MAX];
    fx_scopes_format(scopes, text, sizeof(text));
    printf("added user %s (scopes: %s)\n", o.name, text[0] ? text : "none");
    return 0;
}

int cmd_client(struct cli *cli, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        client_usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        if (argc >= 2)
            fprintf(stderr, "fluxo client: unknown action '%s'\n", argv[1]);
        client_usage(stderr);
        return 2;
    }
    struct opts o = {0};
    int rc = parse_opts("client add", argc, argv, 2, 0, 0, &o, client_usage);
    if (rc || o.help) {
        if (o.help)
            client_usage(stdout);
        return rc;
    }
    unsigned scopes = 0;
    if ((rc = parse_scopes("client add", o.scopes, &scopes)) != 0)
        return rc;
    struct fx_auth *a = NULL;
    if (open_auth(cli, &a))
        return 1;
    struct fx_err err;
    fx_err_clear(&err);
    char *secret = NULL;
    rc = fx_auth_client_add(a, o.name, NULL, scopes, &secret, &err);
    fx_auth_close(a);
    if (rc) {
        fprintf(stderr, "fluxo client add: %s\n", err.reason[0] ? err.reason : fx_strerror(rc));
        return 1;
    }
    char text[FX_SCOPES_TEXT_MAX];
    fx_scopes_format(scopes, text, sizeof(text));
    fprintf(stderr,
            "added client %s (scopes: %s); its secret follows: store it now, it cannot be "
            "shown again\n",
            o.name, text[0] ? text : "none");
    printf("%s\n", secret);
    wipe(secret);
    return 0;
}

int cmd_token(struct cli *cli, int argc, char **argv)
{
    struct opts o = {0};
    int rc = parse_opts("token", argc, argv, 1, 1, 0, &o, token_usage);
    if (rc || o.help) {
        if (o.help)
            token_usage(stdout);
        return rc;
    }
    unsigned scopes = 0;
    if ((rc = parse_scopes("token", o.scopes, &scopes)) != 0)
        return rc;
    if (cli_load_config(cli))
        return 1;
    struct fx_err err;
    fx_err_clear(&err);
    /* --ttl is auth.token_ttl for this run: same syntax, bounds and messages */
    if (o.ttl && fx_config_set(cli->cfg, "auth.token_ttl", o.ttl, &err) != 0) {
        fprintf(stderr, "fluxo token: --ttl: %s\n", err.reason);
        return 2;
    }
    struct fx_auth *a = NULL;
    if (open_auth(cli, &a))
        return 1;
    char *token = NULL;
    rc = fx_auth_issue(a, o.name, scopes, 0, &token, &err);
    fx_auth_close(a);
    if (rc) {
        fprintf(stderr, "fluxo token: %s\n", err.reason[0] ? err.reason : fx_strerror(rc));
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}
