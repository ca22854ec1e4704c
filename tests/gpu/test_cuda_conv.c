/*  test_cuda_conv.c - CUDA vs CPU conv3d / conv2d (im2col + cuBLASLt GEMM, and the direct
    reference kernel): strides, causal and asymmetric padding, 1x1 kernels, bias, odd sizes.
    Tolerances (relative L2): F32 2e-5; BF16 1e-2.
*/
#include "gpu_common.h"

typedef struct { int stride [3]; int pad [4]; bool three; } arg_t;

static int f_conv (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{
    const arg_t *p = (const arg_t *) a;
    return p->three ? vdgx_op_conv3d (b, o, in [0], in [1], in [2], p->stride, p->pad)
                    : vdgx_op_conv2d (b, o, in [0], in [1], in [2], p->stride, p->pad);
}

int main (void)
{
    vdgx_backend_t *cpu, *cuda;
    int rc = gc_open (&cpu, &cuda, "test_cuda_conv");
    if (rc)
        return rc;
    vdgx_backend_destroy (&cuda);
    //  x [N,Cin,T,H,W], w [Cout,Cin,kt,kh,kw]; 2d cases leave T = kt = 0.
    static const struct { int64_t x [5], w [5]; int stride [3], pad [4]; bool bias; } c3 [] = {
        { { 1, 4, 5, 9, 11 }, { 6, 4, 3, 3, 3 }, { 1, 1, 1 }, { 2, 0, 1, 1 }, true },
        { { 2, 3, 4, 8, 8 }, { 5, 3, 1, 3, 3 }, { 1, 2, 2 }, { 0, 0, 1, 1 }, true },
        { { 1, 16, 2, 5, 7 }, { 8, 16, 1, 1, 1 }, { 1, 1, 1 }, { 0, 0, 0, 0 }, false },
        { { 1, 8, 3, 4, 6 }, { 8, 8, 3, 1, 1 }, { 2, 1, 1 }, { 2, 0, 0, 0 }, true },
    };
    static const struct { int64_t x [4], w [4]; int stride [2], pad [4]; bool bias; } c2 [] = {
        { { 2, 3, 13, 17 }, { 4, 3, 3, 3 }, { 2, 2 }, { 1, 1, 1, 1 }, true },
        { { 1, 8, 9, 9 }, { 16, 8, 1, 1 }, { 1, 1 }, { 0, 0, 0, 0 }, false },
        { { 1, 6, 10, 12 }, { 6, 6, 3, 3 }, { 2, 2 }, { 0, 1, 0, 1 }, true },
    };
    static const char *paths [] = { "auto", "naive" };
    for (int p = 0; p < 2; p++) {
        setenv ("VDGX_CUDA_CONV", paths [p], 1);
        char *err = NULL;
        cuda = vdgx_backend_new ("cuda:0", VDGX_DTYPE_BF16, &err);
        if (!cuda) {
            gc_error ("conv", paths [p], "cuda backend: %s", err ? err : "?");
            free (err);
            continue;
        }
        for (int d = 0; d < 2; d++) {
            vdgx_dtype_t dt = d ? VDGX_DTYPE_BF16 : VDGX_DTYPE_F32;
            double tol = d ? 1e-2 : 2e-5;
            char cas [128];
            for (size_t i = 0; i < sizeof c3 / sizeof c3 [0]; i++) {
                arg_t a;
                memset (&a, 0, sizeof a);
                a.three = true;
                memcpy (a.stride, c3 [i].stride, sizeof a.stride);
                memcpy (a.pad, c3 [i].pad, sizeof a.pad);
                gc_in_t in [3] = {
                    { GC_ACT, 5, { c3 [i].x [0], c3 [i].x [1], c3 [i].x [2], c3 [i].x [3], c3 [i].x [4] }, 1, 0 },
                    { GC_ACT, 5, { c3 [i].w [0], c3 [i].w [1], c3 [i].w [2], c3 [i].w [3], c3 [i].w [4] }, 0.3f, 0 },
                    { c3 [i].bias ? GC_ACT : GC_NONE, 1, { c3 [i].w [0] }, 1, 0 },
                };
                int64_t os [5] = { c3 [i].x [0], c3 [i].w [0],
                                   (c3 [i].x [2] + a.pad [0] + a.pad [1] - c3 [i].w [2]) / a.stride [0] + 1,
                                   (c3 [i].x [3] + 2 * a.pad [2] - c3 [i].w [3]) / a.stride [1] + 1,
                                   (c3 [i].x [4] + 2 * a.pad [3] - c3 [i].w [4]) / a.stride [2] + 1 };
                snprintf (cas, sizeof cas, "%s/%s/3d_%zu", paths [p], d ? "bf16" : "f32", i);
                gc_run (cpu, cuda, "conv3d", cas, f_conv, &a, 3, in, 5, os, dt, tol);
            }
            for (size_t i = 0; i < sizeof c2 / sizeof c2 [0]; i++) {
                arg_t a;
                memset (&a, 0, sizeof a);
                memcpy (a.stride, c2 [i].stride, 2 * sizeof (int));
                memcpy (a.pad, c2 [i].pad, sizeof a.pad);
                gc_in_t in [3] = {
                    { GC_ACT, 4, { c2 [i].x [0], c2 [i].x [1], c2 [i].x [2], c2 [i].x [3] }, 1, 0 },
                    { GC_ACT, 4, { c2 [i].w [0], c2 [i].w [1], c2 [i].w [2], c2 [i].w [3] }, 0.3f, 0 },
                    { c2 [i].bias ? GC_ACT : GC_NONE, 1, { c2 [i].w [0] }, 1, 0 },
                };
                int64_t os [4] = { c2 [i].x [0], c2 [i].w [0],
                                   (c2 [i].x [2] + a.pad [0] + a.pad [1] - c2 [i].w [2]) / a.stride [0] + 1,
                                   (c2 [i].x [3] + a.pad [2] + a.pad [3] - c2 [i].w [3]) / a.stride [1] + 1 };
                snprintf (cas, sizeof cas, "%s/%s/2d_%zu", paths [p], d ? "bf16" : "f32", i);
                gc_run (cpu, cuda, "conv2d", cas, f_conv, &a, 3, in, 4, os, dt, tol);
            }
        }
        vdgx_backend_destroy (&cuda);
    }
    unsetenv ("VDGX_CUDA_CONV");
    printf ("test_cuda_conv: %d results, %d failed\n", gc_results, gc_failures);
    vdgx_backend_destroy (&cpu);
    return gc_failures ? 1 : 0;
}
