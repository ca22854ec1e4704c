/*  fuzz_ckpt.h - shared body of the checkpoint fuzz targets: open the input as a checkpoint
    from memory and touch every byte every tensor claims, so an out-of-bounds tensor shows up
    under AddressSanitizer instead of passing silently. */
#ifndef FUZZ_CKPT_H_INCLUDED
#define FUZZ_CKPT_H_INCLUDED

#include "vdgx_ckpt.h"

#include <stdlib.h>
#include <string.h>

static volatile uint8_t s_sink;

static int
fuzz_ckpt_one (const uint8_t *data, size_t size)
{
    char *err = NULL;
    vdgx_ckpt_t *c = vdgx_ckpt_open_buffer (data, size, &err);
    if (!c) {
        //  a failure always explains itself
        if (!err || !*err)
            abort ();
        free (err);
        return 0;
    }
    for (size_t i = 0; i < vdgx_ckpt_count (c); i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (c, i);
        if (vdgx_ckpt_find (c, t->name) == NULL)
            abort ();
        const uint8_t *p = t->data;
        uint8_t acc = 0;
        for (size_t b = 0; b < t->nbytes; b++)
            acc ^= p [b];
        s_sink = acc;
        size_t el = vdgx_dtype_size (t->dtype);
        if (t->nbytes <= (1u << 20)) {
            float *f = malloc (t->nbytes / el * sizeof (float) + 4);
            char *e2 = NULL;
            if (f && vdgx_ckpt_read_f32 (t, f, &e2) != 0)
                free (e2);
            free (f);
        }
    }
    vdgx_ckpt_destroy (&c);
    return 0;
}

#endif
