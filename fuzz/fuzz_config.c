/* SPDX-License-Identifier: MIT */
/* Fuzz target: the configuration file parsers (YAML file and .env file). */
#include "fluxo/config.h"
#include "fluxo/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *write_tmp(const uint8_t *data, size_t size)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/fluxo-fuzz-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fx_log_set_level(FX_LOG_OFF);
    char *path = write_tmp(data, size);
    if (!path)
        return 0;
    struct fx_config *c = NULL;
    struct fx_err err;
    if (fx_config_load(path, NULL, &c, &err) == 0) /* as the YAML file */
        fx_config_free(c);
    c = NULL;
    if (fx_config_load(NULL, path, &c, &err) == 0) /* as the .env file */
        fx_config_free(c);
    unlink(path);
    return 0;
}
