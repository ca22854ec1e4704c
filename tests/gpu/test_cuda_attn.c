/*  test_cuda_attn.c - CUDA vs CPU attention: FlashAttention-2 kernel (BF16, head dim 64/128;
    auto = simple V loads, flash_ldsm = ldmatrix.trans, flash_pipe = + cp.async double
    buffering) and the reference kernel (any head
    dim, F32): Lq != Lk, odd lengths, key mask (also a batch with every key masked), T5 bias.
    Tolerances (relative L2): F32 2e-5; BF16 2e-2 (bf16 inputs are shared; the CUDA side
    rounds P to bf16 for the P.V product and the output to bf16).
*/
#include "gpu_common.h"

typedef struct { float scale; } arg_t;

static int f_attn (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{
    return vdgx_op_attention (b, o, in [0], in [1], in [2], in [3], in [4], ((const arg_t *) a)->scale);
}

int main (void)
{
    vdgx_backend_t *cpu, *cuda;
    int rc = gc_open (&cpu, &cuda, "test_cuda_attn");
    if (rc)
        return rc;
    vdgx_backend_destroy (&cuda);
    //  mask: 0 none, 1 random keys, 2 random keys and the last batch entirely masked
    static const struct { int64_t B, Lq, Lk, H, D; int mask; bool bias; } cs [] = {
        { 1, 64, 64, 2, 64, false, false },
        { 2, 77, 130, 3, 128, true, false },
        { 1, 100, 33, 2, 64, false, true },
        { 2, 50, 70, 2, 80, true, true },
        { 1, 200, 512, 2, 128, true, true },
        { 1, 1, 300, 4, 64, false, false },
        { 2, 70, 90, 2, 128, 2, false },
        { 2, 33, 40, 1, 48, 2, true },
    };
    static const char *paths [] = { "auto", "flash_ldsm", "flash_pipe", "naive" };
    for (int p = 0; p < 4; p++) {
        setenv ("VDGX_CUDA_ATTN", paths [p], 1);
        char *err = NULL;
        cuda = vdgx_backend_new ("cuda:0", VDGX_DTYPE_BF16, &err);
        if (!cuda) {
            gc_error ("attention", paths [p], "cuda backend: %s", err ? err : "?");
            free (err);
            continue;
        }
        for (size_t i = 0; i < sizeof cs / sizeof cs [0]; i++)
            for (int d = 0; d < 2; d++) {
                vdgx_dtype_t dt = d ? VDGX_DTYPE_BF16 : VDGX_DTYPE_F32;
                gc_in_t in [5] = {
                    { GC_ACT, 4, { cs [i].B, cs [i].Lq, cs [i].H, cs [i].D }, 2.f, 0 },
                    { GC_ACT, 4, { cs [i].B, cs [i].Lk, cs [i].H, cs [i].D }, 2.f, 0 },
                    { GC_ACT, 4, { cs [i].B, cs [i].Lk, cs [i].H, cs [i].D }, 1.f, 0 },
                    { cs [i].mask == 2 ? GC_MASKZ : cs [i].mask ? GC_MASK : GC_NONE, 2, { cs [i].B, cs [i].Lk }, 0, 0 },
                    { cs [i].bias ? GC_F32 : GC_NONE, 3, { cs [i].H, cs [i].Lq, cs [i].Lk }, 2.f, 0 },
                };
                int64_t os [4] = { cs [i].B, cs [i].Lq, cs [i].H, cs [i].D };
                arg_t a = { 1.f / sqrtf ((float) cs [i].D) };
                char cas [128];
                snprintf (cas, sizeof cas, "%s/%s/B%lld_Lq%lld_Lk%lld_H%lld_D%lld%s%s", paths [p],
                          d ? "bf16" : "f32", (long long) cs [i].B, (long long) cs [i].Lq,
                          (long long) cs [i].Lk, (long long) cs [i].H, (long long) cs [i].D,
                          cs [i].mask == 2 ? "+mask0" : cs [i].mask ? "+mask" : "", cs [i].bias ? "+bias" : "");
                gc_run (cpu, cuda, "attention", cas, f_attn, &a, 5, in, 4, os, dt, d ? 2e-2 : 2e-5);
            }
        vdgx_backend_destroy (&cuda);
    }
    unsetenv ("VDGX_CUDA_ATTN");
    printf ("test_cuda_attn: %d results, %d failed\n", gc_results, gc_failures);
    vdgx_backend_destroy (&cpu);
    return gc_failures ? 1 : 0;
}
