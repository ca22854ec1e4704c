/*  test_cuda_attn.c - CUDA vs CPU attention: FlashAttention-2 kernel (BF16, head dim 64/128;
    auto = simple V loads, flash_ldsm = ldmatrix.trans, flash_pipe = + cp.async double
    buffering) and the reference kernel (any head
    dim, F32): Lq != Lk, odd lengths, key mask (also a batch with every key masked: o = 0),
    T5 bias; then vdgx_op_attention_ex: grouped KV heads (ratios 2, 4, H) under causal,
    sliding-window and block-causal masks with a KV-cache q_offset.
    Tolerances (relative L2): F32 2e-5; BF16 2e-2 (bf16 inputs are shared; the CUDA side
    rounds P to bf16 for the P.V product and the output to bf16).
*/
#include "gpu_common.h"

typedef struct { float scale; vdgx_attn_spec_t spec; } arg_t;

static int f_attn (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{
    const arg_t *x = a;
    if (x->spec.kind == VDGX_ATTN_FULL)
        return vdgx_op_attention (b, o, in [0], in [1], in [2], in [3], in [4], x->scale);
    vdgx_attn_spec_t spec = x->spec;
    spec.key_mask = in [3];
    spec.bias = in [4];
    return vdgx_op_attention_ex (b, o, in [0], in [1], in [2], &spec, x->scale);
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
    //  masked GQA cases: B, Lq, Lk, H, Hkv, D, kind, window / block
    static const struct { int64_t B, Lq, Lk, H, Hkv, D; vdgx_attn_kind_t kind; int64_t wb; } gs [] = {
        { 1, 130, 130, 4, 2, 64, VDGX_ATTN_CAUSAL, 0 },
        { 2, 70, 200, 8, 2, 128, VDGX_ATTN_CAUSAL, 0 },         //  KV-cache append: q_offset 130
        { 1, 3, 300, 4, 1, 64, VDGX_ATTN_CAUSAL, 0 },           //  decode, MQA
        { 2, 150, 150, 4, 4, 128, VDGX_ATTN_SLIDING, 37 },
        { 1, 200, 260, 8, 2, 64, VDGX_ATTN_SLIDING, 64 },
        { 1, 129, 129, 2, 1, 80, VDGX_ATTN_SLIDING, 5 },        //  reference kernel (D 80)
        { 1, 190, 190, 4, 2, 64, VDGX_ATTN_BLOCK_CAUSAL, 48 },
        { 2, 100, 160, 4, 1, 128, VDGX_ATTN_BLOCK_CAUSAL, 64 },
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
                arg_t a = { 1.f / sqrtf ((float) cs [i].D), { .kind = VDGX_ATTN_FULL } };
                char cas [128];
                snprintf (cas, sizeof cas, "%s/%s/B%lld_Lq%lld_Lk%lld_H%lld_D%lld%s%s", paths [p],
                          d ? "bf16" : "f32", (long long) cs [i].B, (long long) cs [i].Lq,
                          (long long) cs [i].Lk, (long long) cs [i].H, (long long) cs [i].D,
                          cs [i].mask == 2 ? "+mask0" : cs [i].mask ? "+mask" : "", cs [i].bias ? "+bias" : "");
                gc_run (cpu, cuda, "attention", cas, f_attn, &a, 5, in, 4, os, dt, d ? 2e-2 : 2e-5);
            }
        for (size_t i = 0; i < sizeof gs / sizeof gs [0]; i++)
            for (int d = 0; d < 2; d++) {
                vdgx_dtype_t dt = d ? VDGX_DTYPE_BF16 : VDGX_DTYPE_F32;
                bool masked = i % 2 == 1;
                gc_in_t in [5] = {
                    { GC_ACT, 4, { gs [i].B, gs [i].Lq, gs [i].H, gs [i].D }, 2.f, 0 },
                    { GC_ACT, 4, { gs [i].B, gs [i].Lk, gs [i].Hkv, gs [i].D }, 2.f, 0 },
                    { GC_ACT, 4, { gs [i].B, gs [i].Lk, gs [i].Hkv, gs [i].D }, 1.f, 0 },
                    { masked ? GC_MASK : GC_NONE, 2, { gs [i].B, gs [i].Lk }, 0, 0 },
                    { i % 3 == 0 ? GC_F32 : GC_NONE, 3, { gs [i].H, gs [i].Lq, gs [i].Lk }, 2.f, 0 },
                };
                int64_t os [4] = { gs [i].B, gs [i].Lq, gs [i].H, gs [i].D };
                arg_t a = { 1.f / sqrtf ((float) gs [i].D),
                            { .kind = gs [i].kind, .q_offset = gs [i].Lk - gs [i].Lq,
                              .window = gs [i].wb, .block = gs [i].wb } };
                char cas [160];
                snprintf (cas, sizeof cas, "%s/%s/ex_kind%d_B%lld_Lq%lld_Lk%lld_H%lld_Hkv%lld_D%lld_w%lld%s",
                          paths [p], d ? "bf16" : "f32", (int) gs [i].kind, (long long) gs [i].B,
                          (long long) gs [i].Lq, (long long) gs [i].Lk, (long long) gs [i].H,
                          (long long) gs [i].Hkv, (long long) gs [i].D, (long long) gs [i].wb,
                          masked ? "+mask" : "");
                gc_run (cpu, cuda, "attention", cas, f_attn, &a, 5, in, 4, os, dt, d ? 2e-2 : 2e-5);
            }
        vdgx_backend_destroy (&cuda);
    }
    unsetenv ("VDGX_CUDA_ATTN");
    printf ("test_cuda_attn: %d results, %d failed\n", gc_results, gc_failures);
    vdgx_backend_destroy (&cpu);
    return gc_failures ? 1 : 0;
}
