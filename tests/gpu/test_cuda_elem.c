/*  test_cuda_elem.c - CUDA vs CPU for the memory-bound ops: cast, layernorm, rmsnorm, fused
    norm + modulate, channel_rmsnorm and channel_rmsnorm_silu (every width class of the
    kernel: registers for C <= 32, 96, 192, 384, re-read past that; a tail tile; in place),
    modulate, gated residual, gelu_tanh, silu, add_scaled, mul, affine_clamp, rope (both
    layouts), permute, concat, slice, upsample2x.
    Tolerances (relative L2): F32 1e-5 (same formulas, f32 everywhere); BF16 1e-2 (the CUDA
    result is rounded to bf16, about 2^-9 relative per element).
*/
#include "gpu_common.h"

typedef struct { float f [4]; int i [8]; vdgx_rope_layout_t layout; } arg_t;

static int f_cast (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_cast (b, o, in [0]); }
static int f_layernorm (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ return vdgx_op_layernorm (b, o, in [0], in [1], in [2], ((const arg_t *) a)->f [0]); }
static int f_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ return vdgx_op_rmsnorm (b, o, in [0], in [1], ((const arg_t *) a)->f [0]); }
static int f_channel_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_channel_rmsnorm (b, o, in [0], in [1], in [2]); }
static int f_chnorm_silu (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_channel_rmsnorm_silu (b, o, in [0], in [1], in [2]); }
static int f_chnorm_silu_inplace (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; (void) o; return vdgx_op_channel_rmsnorm_silu (b, in [0], in [0], in [1], in [2]); }
static int f_modulate (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_modulate (b, o, in [0], in [1], in [2]); }
static int f_gated (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; (void) o; return vdgx_op_gated_residual (b, in [0], in [1], in [2]); }
static int f_gelu (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_gelu_tanh (b, o, in [0]); }
static int f_silu (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_silu (b, o, in [0]); }
static int f_add_scaled (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ return vdgx_op_add_scaled (b, o, in [0], in [1], ((const arg_t *) a)->f [0]); }
static int f_mul (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_mul (b, o, in [0], in [1]); }
static int f_affine_clamp (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{
    const arg_t *p = (const arg_t *) a;
    return vdgx_op_affine_clamp (b, o, in [0], p->f [0], p->f [1], p->f [2], p->f [3]);
}
static int f_rope (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ return vdgx_op_rope (b, o, in [0], in [1], in [2], ((const arg_t *) a)->layout); }
static int f_permute (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ return vdgx_op_permute (b, o, in [0], ((const arg_t *) a)->i); }
static int f_concat (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ return vdgx_op_concat (b, o, in [0], in [1], ((const arg_t *) a)->i [0]); }
static int f_slice (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{
    const arg_t *p = (const arg_t *) a;
    return vdgx_op_slice (b, o, in [0], p->i [0], p->i [1], p->i [2]);
}
static int f_upsample (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_upsample2x (b, o, in [0]); }

//  Fused LayerNorm + modulate on CUDA against layernorm then modulate on the CPU.
static int f_norm_mod (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{
    const arg_t *p = (const arg_t *) a;
    bool rms = p->i [0];
    if (vdgx_backend_device (b) != VDGX_DEVICE_CPU)
        return vdgx_cuda_norm_modulate (b, o, in [0], in [1], rms ? NULL : in [2], p->f [0], rms, in [3], in [4]);
    vdgx_tensor_t t;
    if (vdgx_tensor_alloc (b, &t, o->dtype, o->ndim, o->shape))
        return -1;
    int rc = rms ? vdgx_op_rmsnorm (b, &t, in [0], in [1], p->f [0])
                 : vdgx_op_layernorm (b, &t, in [0], in [1], in [2], p->f [0]);
    if (rc == 0)
        rc = vdgx_op_modulate (b, o, &t, in [3], in [4]);
    vdgx_tensor_release (b, &t);
    return rc;
}

#define IN(k, nd, ...) { k, nd, { __VA_ARGS__ }, 0, 0 }

static void s_dtype (vdgx_backend_t *cpu, vdgx_backend_t *cuda, vdgx_dtype_t dt)
{
    const char *dn = dt == VDGX_DTYPE_F32 ? "f32" : "bf16";
    double tol = dt == VDGX_DTYPE_F32 ? 1e-5 : 1e-2;
    char cas [128];
    arg_t a;
    memset (&a, 0, sizeof a);

    static const int64_t rows [] = { 1, 37, 300 }, cols [] = { 77, 1536, 5120 };
    for (int r = 0; r < 3; r++) {
        int64_t R = rows [r], C = cols [r];
        gc_in_t ln [3] = { IN (GC_ACT, 2, R, C), IN (GC_ACT, 1, C), IN (GC_ACT, 1, C) };
        ln [0].scale = 3.f; ln [0].offset = 0.5f;
        int64_t os [2] = { R, C };
        a.f [0] = 1e-6f;
        snprintf (cas, sizeof cas, "%s/%lldx%lld", dn, (long long) R, (long long) C);
        gc_run (cpu, cuda, "layernorm", cas, f_layernorm, &a, 3, ln, 2, os, dt, tol);
        ln [2].kind = GC_NONE;
        snprintf (cas, sizeof cas, "%s/%lldx%lld/nobeta", dn, (long long) R, (long long) C);
        gc_run (cpu, cuda, "layernorm", cas, f_layernorm, &a, 3, ln, 2, os, dt, tol);
        snprintf (cas, sizeof cas, "%s/%lldx%lld", dn, (long long) R, (long long) C);
        gc_run (cpu, cuda, "rmsnorm", cas, f_rmsnorm, &a, 2, ln, 2, os, dt, tol);
    }
    {   //  fused adaLN: x [2, 45, 96], shift/scale [2, 96]
        gc_in_t in [5] = { IN (GC_ACT, 3, 2, 45, 96), IN (GC_ACT, 1, 96), IN (GC_ACT, 1, 96),
                           IN (GC_ACT, 2, 2, 96), IN (GC_ACT, 2, 2, 96) };
        in [4].scale = 0.5f;
        int64_t os [3] = { 2, 45, 96 };
        a.f [0] = 1e-6f;
        for (int rms = 0; rms < 2; rms++) {
            a.i [0] = rms;
            snprintf (cas, sizeof cas, "%s/%s", dn, rms ? "rms" : "ln");
            gc_run (cpu, cuda, "norm_modulate", cas, f_norm_mod, &a, 5, in, 3, os, dt, tol);
        }
    }
    {   //  channel_rmsnorm x [2, 24, 3*5*7] with and without beta
        gc_in_t in [3] = { IN (GC_ACT, 5, 2, 24, 3, 5, 7), IN (GC_ACT, 1, 24), IN (GC_ACT, 1, 24) };
        int64_t os [5] = { 2, 24, 3, 5, 7 };
        snprintf (cas, sizeof cas, "%s/2x24x105", dn);
        gc_run (cpu, cuda, "channel_rmsnorm", cas, f_channel_rmsnorm, &a, 3, in, 5, os, dt, tol);
        in [2].kind = GC_NONE;
        snprintf (cas, sizeof cas, "%s/2x24x105/nobeta", dn);
        gc_run (cpu, cuda, "channel_rmsnorm", cas, f_channel_rmsnorm, &a, 3, in, 5, os, dt, tol);
        gc_run (cpu, cuda, "channel_rmsnorm_silu", cas, f_chnorm_silu, &a, 3, in, 5, os, dt, tol);
    }
    {   //  the Wan-VAE widths (96, 192, 384: registers) and 520 (x read twice); S = 3*11*13
        //  = 429 leaves a partial tile of 13 positions. x in +-3 so SiLU sees both signs widely.
        static const int64_t widths [] = { 96, 192, 384, 520 };
        for (int w = 0; w < 4; w++) {
            int64_t C = widths [w], N = w == 1 ? 2 : 1;
            gc_in_t in [3] = { IN (GC_ACT, 5, N, C, 3, 11, 13), IN (GC_ACT, 1, C), IN (GC_ACT, 1, C) };
            in [0].scale = 3.f;
            in [1].offset = 1.f;        //  gammas around 1, as trained ones are
            int64_t os [5] = { N, C, 3, 11, 13 };
            if (w != 2)
                in [2].kind = GC_NONE;  //  Wan's norms have no beta; 384 keeps one
            snprintf (cas, sizeof cas, "%s/%lldx%lldx429%s", dn, (long long) N, (long long) C, w == 2 ? "/beta" : "");
            gc_run (cpu, cuda, "channel_rmsnorm", cas, f_channel_rmsnorm, &a, 3, in, 5, os, dt, tol);
            gc_run (cpu, cuda, "channel_rmsnorm_silu", cas, f_chnorm_silu, &a, 3, in, 5, os, dt, tol);
            snprintf (cas, sizeof cas, "%s/%lldx%lldx429/inplace", dn, (long long) N, (long long) C);
            gc_run (cpu, cuda, "channel_rmsnorm_silu", cas, f_chnorm_silu_inplace, &a, 3, in, 0, NULL, dt, tol);
        }
    }
    {
        gc_in_t in [3] = { IN (GC_ACT, 3, 3, 29, 160), IN (GC_ACT, 2, 3, 160), IN (GC_ACT, 2, 3, 160) };
        int64_t os [3] = { 3, 29, 160 };
        snprintf (cas, sizeof cas, "%s/3x29x160", dn);
        gc_run (cpu, cuda, "modulate", cas, f_modulate, &a, 3, in, 3, os, dt, tol);
    }
    {   //  gated residual: x [B,L,C] += y [B,L,C] * gate [B,C]
        gc_in_t in [3] = { IN (GC_ACT, 3, 3, 29, 160), IN (GC_ACT, 3, 3, 29, 160), IN (GC_ACT, 2, 3, 160) };
        snprintf (cas, sizeof cas, "%s/3x29x160", dn);
        gc_run (cpu, cuda, "gated_residual", cas, f_gated, &a, 3, in, 0, NULL, dt, tol);
        in [2].kind = GC_NONE;
        snprintf (cas, sizeof cas, "%s/3x29x160/nogate", dn);
        gc_run (cpu, cuda, "gated_residual", cas, f_gated, &a, 3, in, 0, NULL, dt, tol);
    }
    {
        gc_in_t in [2] = { IN (GC_ACT, 2, 33, 1001), IN (GC_ACT, 1, 1001) };
        in [0].scale = 6.f;
        int64_t os [2] = { 33, 1001 };
        snprintf (cas, sizeof cas, "%s/33x1001", dn);
        gc_run (cpu, cuda, "gelu_tanh", cas, f_gelu, &a, 1, in, 2, os, dt, tol);
        gc_run (cpu, cuda, "silu", cas, f_silu, &a, 1, in, 2, os, dt, tol);
        a.f [0] = -0.75f;
        gc_in_t ab [2] = { IN (GC_ACT, 2, 33, 1001), IN (GC_ACT, 2, 33, 1001) };
        gc_run (cpu, cuda, "add_scaled", cas, f_add_scaled, &a, 2, ab, 2, os, dt, tol);
        gc_run (cpu, cuda, "mul", cas, f_mul, &a, 2, ab, 2, os, dt, tol);
        snprintf (cas, sizeof cas, "%s/33x1001/broadcast", dn);
        gc_run (cpu, cuda, "add_scaled", cas, f_add_scaled, &a, 2, in, 2, os, dt, tol);
        gc_run (cpu, cuda, "mul", cas, f_mul, &a, 2, in, 2, os, dt, tol);
        a.f [0] = 1.5f; a.f [1] = 0.25f; a.f [2] = -1.f; a.f [3] = 1.f;
        snprintf (cas, sizeof cas, "%s/33x1001", dn);
        gc_run (cpu, cuda, "affine_clamp", cas, f_affine_clamp, &a, 1, in, 2, os, dt, tol);
    }
    {   //  rope x [2, 19, 3, 64], tables [19, 32]
        gc_in_t in [3] = { IN (GC_ACT, 4, 2, 19, 3, 64), IN (GC_F32, 2, 19, 32), IN (GC_F32, 2, 19, 32) };
        int64_t os [4] = { 2, 19, 3, 64 };
        for (int l = 0; l < 2; l++) {
            a.layout = l ? VDGX_ROPE_HALF : VDGX_ROPE_INTERLEAVED;
            snprintf (cas, sizeof cas, "%s/%s", dn, l ? "half" : "interleaved");
            gc_run (cpu, cuda, "rope", cas, f_rope, &a, 3, in, 4, os, dt, tol);
        }
    }
    {   //  permute [2,3,5,7,4] -> perm (0,3,1,4,2): exact
        gc_in_t in [1] = { IN (GC_ACT, 5, 2, 3, 5, 7, 4) };
        int perm [5] = { 0, 3, 1, 4, 2 };
        memcpy (a.i, perm, sizeof perm);
        int64_t os [5] = { 2, 7, 3, 4, 5 };
        snprintf (cas, sizeof cas, "%s/5d", dn);
        gc_run (cpu, cuda, "permute", cas, f_permute, &a, 1, in, 5, os, dt, 0);
    }
    {   //  concat / slice along a middle dim: exact
        gc_in_t in [2] = { IN (GC_ACT, 3, 4, 5, 33), IN (GC_ACT, 3, 4, 9, 33) };
        int64_t os [3] = { 4, 14, 33 };
        a.i [0] = 1;
        snprintf (cas, sizeof cas, "%s/dim1", dn);
        gc_run (cpu, cuda, "concat", cas, f_concat, &a, 2, in, 3, os, dt, 0);
        a.i [0] = 1; a.i [1] = 2; a.i [2] = 6;
        int64_t ss [3] = { 4, 6, 33 };
        gc_run (cpu, cuda, "slice", cas, f_slice, &a, 1, &in [1], 3, ss, dt, 0);
        a.i [0] = 2; a.i [1] = 31; a.i [2] = 2;
        int64_t s2 [3] = { 4, 9, 2 };
        snprintf (cas, sizeof cas, "%s/lastdim", dn);
        gc_run (cpu, cuda, "slice", cas, f_slice, &a, 1, &in [1], 3, s2, dt, 0);
    }
    {
        gc_in_t in [1] = { IN (GC_ACT, 4, 2, 3, 7, 5) };
        int64_t os [4] = { 2, 3, 14, 10 };
        snprintf (cas, sizeof cas, "%s/2x3x7x5", dn);
        gc_run (cpu, cuda, "upsample2x", cas, f_upsample, &a, 1, in, 4, os, dt, 0);
    }
}

int main (void)
{
    vdgx_backend_t *cpu, *cuda;
    int rc = gc_open (&cpu, &cuda, "test_cuda_elem");
    if (rc)
        return rc;
    s_dtype (cpu, cuda, VDGX_DTYPE_F32);
    s_dtype (cpu, cuda, VDGX_DTYPE_BF16);
    {   //  cast f32 -> bf16 -> f32 on the device against the host conversion
        gc_in_t in [1] = { IN (GC_F32, 2, 17, 333) };
        int64_t os [2] = { 17, 333 };
        gc_run (cpu, cuda, "cast", "f32->bf16", f_cast, NULL, 1, in, 2, os, VDGX_DTYPE_BF16, 1e-2);
        gc_run (cpu, cuda, "cast", "f32->f32", f_cast, NULL, 1, in, 2, os, VDGX_DTYPE_F32, 0);
    }
    printf ("test_cuda_elem: %d results, %d failed\n", gc_results, gc_failures);
    vdgx_backend_destroy (&cuda);
    vdgx_backend_destroy (&cpu);
    return gc_failures ? 1 : 0;
}
