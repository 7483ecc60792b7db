/* SPDX-License-Identifier: MIT */
/* Fuzz target: the chunk payload decoder the distribution runs on every message. */
#include "services/chunk.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fx_chunk c;
    char why[256];
    if (fx_chunk_decode((const char *)data, size, &c, why, sizeof(why)) == 0) {
        /* touch everything the distribution reads */
        volatile size_t sum = strlen(c.batch) + strlen(c.pipeline);
        for (size_t i = 0; i < c.nfields; i++)
            sum += strlen(c.fields[i]);
        for (size_t r = 0; r < c.nrows; r++)
            for (size_t j = 0; j < c.row_len[r] + 1; j++) {
                const struct fx_cv *v = fx_chunk_val(&c, r, j);
                if (v->type == FX_CV_STR)
                    sum += strlen(v->s) + v->len;
            }
        (void)sum;
        fx_chunk_free(&c);
    }
    return 0;
}
