/*  vdgx_nn_testing.c - helpers of the toolkit selftests (see vdgx_nn_testing.h). */
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

float *
vdgx_test_randv (uint64_t *state, size_t n, float scale)
{
    float *v = malloc ((n? n: 1) * sizeof (float));
    assert (v);
    for (size_t i = 0; i < n; i++) {
        float u = (float) (vdgx_splitmix64 (state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
        v [i] = scale * (u == 0.0f? 0.5f: u);
    }
    return v;
}

double
vdgx_test_err (const float *got, const double *want, size_t n)
{
    double e = 0, m = 1;
    for (size_t i = 0; i < n; i++) {
        e = fmax (e, fabs (got [i] - want [i]));
        m = fmax (m, fabs (want [i]));
    }
    return e / m;
}

double
vdgx_test_errf (const float *got, const float *want, size_t n)
{
    double e = 0, m = 1;
    for (size_t i = 0; i < n; i++) {
        e = fmax (e, fabs ((double) got [i] - want [i]));
        m = fmax (m, fabs ((double) want [i]));
    }
    return e / m;
}

float *
vdgx_test_download (vdgx_backend_t *b, const vdgx_tensor_t *t)
{
    float *h = malloc ((size_t) vdgx_tensor_numel (t) * sizeof (float) + 1);
    assert (h && vdgx_tensor_to_f32 (b, t, h) == 0);
    return h;
}

vdgx_backend_t *
vdgx_test_begin (const char *name, bool verbose)
{
    printf (" * %s: ", name);
    if (verbose)
        printf ("\n");
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    if (!b)
        printf ("cpu backend: %s\n", err);
    assert (b);
    return b;
}

void
vdgx_test_end (vdgx_backend_t **b)
{
    vdgx_backend_destroy (b);
    printf ("OK\n");
}
