/*  vdgx_pth.c - PyTorch .pth reader (work in progress: detection only). */
#include "vdgx_kernels_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
vdgx_pth_detect (const void *buf, size_t size)
{
    return size >= 4 && memcmp (buf, "PK\x03\x04", 4) == 0;
}

int
vdgx_pth_parse (const uint8_t *buf, size_t size, vdgx_pth_result_t *out, char **err)
{
    (void) buf; (void) size; (void) out;
    *err = vdgx_kstrdupf (".pth reading is not implemented yet");
    return -1;
}

void
vdgx_pth_result_free (vdgx_pth_result_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        free ((char *) r->tensors [i].name);
    free (r->tensors);
    r->tensors = NULL;
    r->count = 0;
}

void
vdgx_pth_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_pth: (pending) OK\n");
}
