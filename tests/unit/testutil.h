/* SPDX-License-Identifier: MIT */
/* Shared helpers for unit tests: temp dirs, file I/O, waiting on conditions. */
#ifndef FLUXO_TESTUTIL_H
#define FLUXO_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

/* Create a fresh temporary directory (mkdtemp under $TMPDIR); caller frees the string. */
char *tu_tmpdir(void);
/* rm -rf path (best effort). */
void tu_rmrf(const char *path);
/* Write len bytes to dir/name; returns the full path (caller frees). */
char *tu_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Read a whole file (caller frees); *len may be NULL. NULL on error. */
char *tu_read_file(const char *path, size_t *len);
/* Path of a file under tests/data (caller frees). */
char *tu_data_path(const char *name);

#endif
