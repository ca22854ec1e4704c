/*  test_cuda_linear.c - CUDA vs CPU for linear (every weight format, every kernel path),
    matmul, and load-time weight quantization on the GPU.

    Paths (VDGX_CUDA_LINEAR): auto, lt (cuBLASLt BF16/FP8), mma (weight-only tensor-core
    kernel), dequant (BF16 dequantization + cuBLASLt), naive (reference kernel).
    Tolerances (relative L2 vs the CPU on the same bf16-rounded inputs and the same
    quantized weight codes):
      F32 weights, F32 activations           2e-5  (f32 GEMM, only the summation order differs;
                                             the mma path computes in bf16: 1.5e-2)
      BF16 activations, any weight-only path 1.5e-2 (bf16 output and bf16 dequantized weights)
      FP8 through cuBLASLt                   8e-2  (activations quantized to E4M3 too: 3 bits)
      NVFP4 through cuBLASLt (Blackwell)     0.25  (activations quantized to E2M1 + E4M3 blocks)
*/
#include "gpu_common.h"

static const char *s_paths [] = { "auto", "lt", "mma", "dequant", "naive" };
#define NPATHS 5

typedef struct { int64_t M, N, K; bool bias; } shape_t;

static void s_linear_case (vdgx_backend_t *cpu, vdgx_backend_t *cuda, const char *path,
                           vdgx_wfmt_t fmt, bool per_channel, const shape_t *sh, vdgx_dtype_t dt)
{
    int64_t M = sh->M, N = sh->N, K = sh->K;
    char cas [160];
    snprintf (cas, sizeof cas, "%s%s/%s/%s/M%lld_N%lld_K%lld%s", vdgx_wfmt_name (fmt),
              fmt == VDGX_WFMT_FP8_E4M3 ? (per_channel ? "-ch" : "-t") : "", path,
              dt == VDGX_DTYPE_F32 ? "f32" : "bf16", (long long) M, (long long) N, (long long) K,
              sh->bias ? "+b" : "");
    float *w = malloc ((size_t) (N * K) * sizeof (float));
    float *x = malloc ((size_t) (M * K) * sizeof (float));
    float *bias = malloc ((size_t) N * sizeof (float));
    vdgx_weight_t hw, wc, wg;
    memset (&hw, 0, sizeof hw);
    memset (&wc, 0, sizeof wc);
    memset (&wg, 0, sizeof wg);
    vdgx_tensor_t xc, xg, yc, yg, bc, bg;
    bool hx = false, hy = false, hb = false, hwq = false;
    char *err = NULL;
    gc_fill (w, (size_t) (N * K), 0.05f);
    gc_fill (x, (size_t) (M * K), 1.f);
    gc_fill (bias, (size_t) N, 0.5f);
    gc_round (x, (size_t) (M * K), dt);
    gc_round (bias, (size_t) N, dt);
    int64_t xs [2] = { M, K }, ys [2] = { M, N }, bs [1] = { N };
    if (vdgx_weight_quantize (&hw, fmt, w, N, K, per_channel, &err)) {
        gc_error ("linear", cas, "host quantize: %s", err ? err : "?");
        free (err);
        goto done;
    }
    hwq = true;
    if (vdgx_weight_to_backend (cpu, &wc, &hw) || vdgx_weight_to_backend (cuda, &wg, &hw)) {
        gc_error ("linear", cas, "weight upload: %s", vdgx_backend_error (cuda));
        goto done;
    }
    if (gc_tensor (cpu, &xc, VDGX_DTYPE_F32, 2, xs, x) || gc_tensor (cuda, &xg, dt, 2, xs, x))
        goto fail;
    hx = true;
    if (gc_tensor (cpu, &yc, VDGX_DTYPE_F32, 2, ys, NULL) || gc_tensor (cuda, &yg, dt, 2, ys, NULL))
        goto fail;
    hy = true;
    if (gc_tensor (cpu, &bc, VDGX_DTYPE_F32, 1, bs, bias) || gc_tensor (cuda, &bg, dt, 1, bs, bias))
        goto fail;
    hb = true;
    if (vdgx_op_linear (cpu, &yc, &xc, &wc, sh->bias ? &bc : NULL)) {
        gc_error ("linear", cas, "cpu: %s", vdgx_backend_error (cpu));
        goto done;
    }
    if (vdgx_op_linear (cuda, &yg, &xg, &wg, sh->bias ? &bg : NULL)) {
        gc_error ("linear", cas, "cuda: %s", vdgx_backend_error (cuda));
        goto done;
    }
    {
        float *a = gc_download (cpu, &yc), *g = gc_download (cuda, &yg);
        double tol = 1.5e-2;
        if (fmt == VDGX_WFMT_F32 && dt == VDGX_DTYPE_F32 && strcmp (path, "mma") != 0)
            tol = 2e-5;
        if (fmt == VDGX_WFMT_FP8_E4M3 && (!strcmp (path, "auto") || !strcmp (path, "lt")))
            tol = 8e-2;
        //  Blackwell: NVFP4 through cuBLASLt quantizes the activations to NVFP4 as well
        if (fmt == VDGX_WFMT_NVFP4 && (!strcmp (path, "auto") || !strcmp (path, "lt"))
            && strstr (vdgx_cuda_info (cuda), "NVFP4 block-scaled yes"))
            tol = 0.25;
        if (!a || !g)
            gc_error ("linear", cas, "download: %s", vdgx_backend_error (cuda));
        else
            gc_report ("linear", cas, gc_relerr (g, a, (size_t) (M * N)), tol);
        free (a);
        free (g);
    }
    goto done;
fail:
    gc_error ("linear", cas, "set-up: %s", vdgx_backend_error (cuda));
done:
    if (hx) { vdgx_tensor_release (cpu, &xc); vdgx_tensor_release (cuda, &xg); }
    if (hy) { vdgx_tensor_release (cpu, &yc); vdgx_tensor_release (cuda, &yg); }
    if (hb) { vdgx_tensor_release (cpu, &bc); vdgx_tensor_release (cuda, &bg); }
    vdgx_weight_release (cpu, &wc);
    vdgx_weight_release (cuda, &wg);
    if (hwq) vdgx_weight_host_free (&hw);
    free (w);
    free (x);
    free (bias);
}

static int f_matmul (vdgx_backend_t *b, vdgx_tensor_t *o, vdgx_tensor_t **in, const void *a)
{ (void) a; return vdgx_op_matmul (b, o, in [0], in [1]); }

//  GPU quantization must be as accurate as the host's: err(dequant(gpu), W) within 25% (+1e-3)
//  of err(dequant(host), W).
static void s_quant_case (vdgx_backend_t *cuda, vdgx_wfmt_t fmt, bool per_channel, int64_t n, int64_t k)
{
    char cas [96];
    snprintf (cas, sizeof cas, "%s%s/%lldx%lld", vdgx_wfmt_name (fmt),
              fmt == VDGX_WFMT_FP8_E4M3 ? (per_channel ? "-ch" : "-t") : "", (long long) n, (long long) k);
    float *w = malloc ((size_t) (n * k) * sizeof (float)), *dh = malloc ((size_t) (n * k) * sizeof (float));
    float *dg = malloc ((size_t) (n * k) * sizeof (float));
    vdgx_weight_t hw, gw, back;
    memset (&hw, 0, sizeof hw);
    memset (&gw, 0, sizeof gw);
    vdgx_tensor_t src;
    char *err = NULL;
    int64_t ss [2] = { n, k };
    gc_fill (w, (size_t) (n * k), 0.1f);
    for (int64_t r = 0; r < n; r++)         //  rows of different magnitude
        for (int64_t c = 0; c < k; c++)
            w [r * k + c] *= 1.f + (float) (r % 5);
    gc_round (w, (size_t) (n * k), VDGX_DTYPE_BF16);
    if (vdgx_weight_quantize (&hw, fmt, w, n, k, per_channel, &err)) {
        gc_error ("weight_quantize", cas, "host: %s", err ? err : "?");
        free (err);
        goto out;
    }
    vdgx_weight_dequant (&hw, dh);
    if (gc_tensor (cuda, &src, VDGX_DTYPE_BF16, 2, ss, w)) {
        gc_error ("weight_quantize", cas, "upload: %s", vdgx_backend_error (cuda));
        vdgx_weight_host_free (&hw);
        goto out;
    }
    if (vdgx_cuda_weight_quantize (cuda, &gw, fmt, &src, per_channel)) {
        gc_error ("weight_quantize", cas, "cuda: %s", vdgx_backend_error (cuda));
    }
    else {
        //  Bring the device weight back into a host weight (same layout) and dequantize it.
        back = hw;
        size_t db = fmt == VDGX_WFMT_FP8_E4M3 ? (size_t) (n * k) : (size_t) (n * k / 2);
        size_t se = (fmt == VDGX_WFMT_NVFP4 || fmt == VDGX_WFMT_MXFP4) ? 1 : 4;
        back.data = malloc (db);
        back.scales = malloc ((size_t) gw.scale_count * se);
        back.scale_count = gw.scale_count;
        back.global_scale = gw.global_scale;
        if (back.data && back.scales
            && cudaMemcpy (back.data, gw.data, db, cudaMemcpyDeviceToHost) == cudaSuccess
            && cudaMemcpy (back.scales, gw.scales, (size_t) gw.scale_count * se, cudaMemcpyDeviceToHost) == cudaSuccess) {
            vdgx_weight_dequant (&back, dg);
            double eh = gc_relerr (dh, w, (size_t) (n * k)), eg = gc_relerr (dg, w, (size_t) (n * k));
            printf ("  weight_quantize %s: host err %.3e, gpu err %.3e\n", cas, eh, eg);
            gc_report ("weight_quantize", cas, eg, 1.25 * eh + 1e-3);
        }
        else
            gc_error ("weight_quantize", cas, "download failed");
        free (back.data);
        free (back.scales);
        vdgx_weight_release (cuda, &gw);
    }
    vdgx_tensor_release (cuda, &src);
    vdgx_weight_host_free (&hw);
out:
    free (w);
    free (dh);
    free (dg);
}

int main (void)
{
    vdgx_backend_t *cpu, *cuda;
    int rc = gc_open (&cpu, &cuda, "test_cuda_linear");
    if (rc)
        return rc;
    vdgx_backend_destroy (&cuda);
    static const shape_t shapes [] = {
        { 1, 64, 64, true }, { 37, 96, 128, false }, { 300, 200, 256, true }, { 257, 1536, 1536, true },
    };
    static const struct { vdgx_wfmt_t fmt; bool ch; } fmts [] = {
        { VDGX_WFMT_BF16, false }, { VDGX_WFMT_FP8_E4M3, false }, { VDGX_WFMT_FP8_E4M3, true },
        { VDGX_WFMT_NVFP4, false }, { VDGX_WFMT_MXFP4, false }, { VDGX_WFMT_NF4, false },
    };
    for (int p = 0; p < NPATHS; p++) {
        setenv ("VDGX_CUDA_LINEAR", s_paths [p], 1);
        char *err = NULL;
        cuda = vdgx_backend_new ("cuda:0", VDGX_DTYPE_BF16, &err);
        if (!cuda) {
            gc_error ("linear", s_paths [p], "cuda backend: %s", err ? err : "?");
            free (err);
            continue;
        }
        for (size_t f = 0; f < sizeof fmts / sizeof fmts [0]; f++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes [0]; s++) {
                //  the naive kernel is slow: keep it to the small shapes
                if (p == 4 && shapes [s].N * shapes [s].K > 300000)
                    continue;
                s_linear_case (cpu, cuda, s_paths [p], fmts [f].fmt, fmts [f].ch, &shapes [s], VDGX_DTYPE_BF16);
            }
        //  F32 weights and activations: the f32 cuBLASLt GEMM (tight) and BF16 weights with F32 x/y
        for (size_t s = 0; s < 3; s++) {
            s_linear_case (cpu, cuda, s_paths [p], VDGX_WFMT_F32, false, &shapes [s], VDGX_DTYPE_F32);
            s_linear_case (cpu, cuda, s_paths [p], VDGX_WFMT_BF16, false, &shapes [s], VDGX_DTYPE_F32);
        }
        //  FP8 with F32 activations (the non-vectorised activation quantization)
        s_linear_case (cpu, cuda, s_paths [p], VDGX_WFMT_FP8_E4M3, false, &shapes [1], VDGX_DTYPE_F32);
        if (p == 0 || p == 4) {     //  matmul: cuBLASLt (auto) and the naive kernel
            static const int64_t ms [][4] = { { 2, 33, 70, 45 }, { 3, 64, 128, 64 }, { 1, 5, 9, 300 } };
            for (int i = 0; i < 3; i++) {
                const int64_t *m = ms [i];
                gc_in_t in [2] = { { GC_ACT, 3, { m [0], m [1], m [3] }, 1, 0 }, { GC_ACT, 3, { m [0], m [3], m [2] }, 1, 0 } };
                int64_t os [3] = { m [0], m [1], m [2] };
                char cas [96];
                for (int d = 0; d < 2; d++) {
                    vdgx_dtype_t dt = d ? VDGX_DTYPE_BF16 : VDGX_DTYPE_F32;
                    snprintf (cas, sizeof cas, "%s/%s/%lldx%lldx%lldx%lld", s_paths [p], d ? "bf16" : "f32",
                              (long long) m [0], (long long) m [1], (long long) m [2], (long long) m [3]);
                    gc_run (cpu, cuda, "matmul", cas, f_matmul, NULL, 2, in, 3, os, dt, d ? 1e-2 : 2e-5);
                }
            }
        }
        if (p == 0) {
            s_quant_case (cuda, VDGX_WFMT_FP8_E4M3, false, 96, 320);
            s_quant_case (cuda, VDGX_WFMT_FP8_E4M3, true, 96, 320);
            s_quant_case (cuda, VDGX_WFMT_NVFP4, false, 96, 320);
            s_quant_case (cuda, VDGX_WFMT_MXFP4, false, 96, 320);
            s_quant_case (cuda, VDGX_WFMT_NF4, false, 96, 320);
        }
        vdgx_backend_destroy (&cuda);
    }
    unsetenv ("VDGX_CUDA_LINEAR");
    printf ("test_cuda_linear: %d results, %d failed\n", gc_results, gc_failures);
    vdgx_backend_destroy (&cpu);
    return gc_failures ? 1 : 0;
}
