/* SPDX-License-Identifier: MIT */
/* fluxo config validate | show | --help */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_config(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf(out, "usage: fluxo config validate | show | --help\n\n"
                     "  validate  load the configuration and every pipeline; report errors\n"
                     "  show      print every key with its value and where it came from\n"
                     "  docs      print the key table of docs/configuration.md (Markdown)\n\n"
                     "keys (YAML key, environment variable, type, default):\n");
        fx_config_help(out);
        fprintf(out, "\n%s", CLI_GLOBAL_HELP);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "validate") == 0) {
        if (cli_load_runtime(cli))
            return 1;
        printf("configuration valid; %zu pipeline(s) compiled from %s\n", cli->rt.npipelines,
               cli->rt.pipelines_dir);
        return 0;
    }
    if (strcmp(argv[1], "docs") == 0) { /* the key table of docs/configuration.md */
        fx_config_doc_markdown(stdout);
        return 0;
    }
    if (strcmp(argv[1], "show") == 0) {
        if (cli_load_config(cli))
            return 1;
        fx_config_dump(cli->cfg, stdout);
        return 0;
    }
    fprintf(stderr, "fluxo config: unknown action '%s' (validate, show, docs)\n", argv[1]);
    return 2;
}
