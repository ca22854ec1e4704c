/*  bench_cuda.c - vdgx-bench-cuda: throughput of the CUDA backend's kernels against ceilings
    measured in the same run:
      GB/s     vs a 1 GiB device-to-device cudaMemcpy (read + write bytes)
      TFLOP/s  vs cuBLASLt's own BF16 GEMM on the same shape (the backend's BF16 linear is a
               plain cuBLASLt call, so that is what it measures)
    Each figure is the median of timed repetitions (CUDA events on the backend's stream);
    L2 is flushed (a 256 MiB memset) before every repetition.
    Output lines: "BENCH <name> <value> <unit> frac=<x> <note>" (tests/gpu/run.sh collects
    them). Shapes follow Wan 2.1 1.3B at 480p/81 frames: 32760 tokens, 1536 / 8960 features,
    12 heads of 128; the channel norms follow its VAE decoder (96 and 384 channels).
*/
#include "vdgx_backend.h"
#include "vdgx_quant.h"
#include "vdgx_cuda.h"
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vdgx_backend_t *g_b;
static cudaStream_t g_st;
static void *g_flush;
static size_t g_flush_bytes = 256u << 20;
static int g_fail;

typedef int (*op_fn) (void *arg);

static int s_cmp (const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;
    return x < y ? -1 : x > y;
}

//  Median milliseconds of reps timed runs (after one warm-up); -1 on error.
static double s_time (op_fn fn, void *arg, int reps)
{
    cudaEvent_t e0, e1;
    float ms [64];
    if (reps > 64) reps = 64;
    if (cudaEventCreate (&e0) != cudaSuccess || cudaEventCreate (&e1) != cudaSuccess)
        return -1;
    double r = -1;
    if (fn (arg))
        goto out;
    for (int i = 0; i < reps; i++) {
        cudaMemsetAsync (g_flush, i & 0xff, g_flush_bytes, g_st);
        cudaEventRecord (e0, g_st);
        if (fn (arg))
            goto out;
        cudaEventRecord (e1, g_st);
        if (cudaEventSynchronize (e1) != cudaSuccess)
            goto out;
        cudaEventElapsedTime (&ms [i], e0, e1);
    }
    qsort (ms, (size_t) reps, sizeof ms [0], s_cmp);
    r = ms [reps / 2];
out:
    if (r < 0) {
        fprintf (stderr, "bench: op failed: %s / %s\n", vdgx_backend_error (g_b), cudaGetErrorString (cudaGetLastError ()));
        g_fail++;
    }
    cudaEventDestroy (e0);
    cudaEventDestroy (e1);
    return r;
}

static void s_print (const char *name, double value, const char *unit, double frac, const char *note)
{
    printf ("BENCH %-34s %10.1f %-7s frac=%.3f %s\n", name, value, unit, frac, note);
    fflush (stdout);
}

//  Device tensor with cheap pseudo-random values in +-scale (generated on the host).
static int s_rand (vdgx_tensor_t *t, vdgx_dtype_t dt, int nd, const int64_t *shape, float scale)
{
    if (vdgx_tensor_alloc (g_b, t, dt, nd, shape))
        return -1;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape [i];
    float *h = malloc ((size_t) n * sizeof (float));
    if (!h)
        return -1;
    uint32_t s = 0x12345678u ^ (uint32_t) n;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h [i] = ((float) (s >> 8) / 16777216.f * 2.f - 1.f) * scale;
    }
    int rc = vdgx_tensor_from_f32 (g_b, t, h);
    free (h);
    return rc;
}

//  The FP8 GEMM alone, straight through cuBLASLt (E4M3 x E4M3 -> BF16, TN, per-tensor scales,
//  fast accumulation): what the backend's FP8 linear costs without its activation
//  quantization pass. -1 when cuBLASLt has no algorithm (e.g. before sm_89).
typedef struct {
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
    const void *A, *B;
    void *D, *ws;
} fp8_t;

static int f_fp8_raw (void *arg)
{
    fp8_t *f = arg;
    float alpha = 1.f, beta = 0.f;
    return cublasLtMatmul (f->lt, f->desc, &alpha, f->A, f->la, f->B, f->lb, &beta, f->D, f->ld, f->D, f->ld,
                           &f->algo, f->ws, 32u << 20, g_st) != CUBLAS_STATUS_SUCCESS;
}

static double s_fp8_raw (int64_t M, int64_t N, int64_t K, int reps)
{
    fp8_t f;
    memset (&f, 0, sizeof f);
    void *a = NULL, *b = NULL, *d = NULL, *ws = NULL;
    float *one = NULL;
    double ms = -1;
    cublasLtMatmulPreference_t pref = NULL;
    if (cublasLtCreate (&f.lt) != CUBLAS_STATUS_SUCCESS)
        return -1;
    if (cudaMalloc (&a, (size_t) (N * K)) != cudaSuccess || cudaMalloc (&b, (size_t) (M * K)) != cudaSuccess
        || cudaMalloc (&d, (size_t) (M * N) * 2) != cudaSuccess || cudaMalloc (&ws, 32u << 20) != cudaSuccess
        || cudaMalloc ((void **) &one, sizeof (float)) != cudaSuccess)
        goto out;
    cudaMemsetAsync (a, 0x38, (size_t) (N * K), g_st);      //  0x38 = 1.0 in E4M3
    cudaMemsetAsync (b, 0x30, (size_t) (M * K), g_st);      //  0.5
    float h1 = 1.f;
    cudaMemcpy (one, &h1, sizeof h1, cudaMemcpyHostToDevice);
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    int8_t fast = 1;
    if (cublasLtMatmulDescCreate (&f.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS)
        goto out;
    cublasLtMatmulDescSetAttribute (f.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    cublasLtMatmulDescSetAttribute (f.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    cublasLtMatmulDescSetAttribute (f.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
    cublasLtMatmulDescSetAttribute (f.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &one, sizeof one);
    cublasLtMatmulDescSetAttribute (f.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &one, sizeof one);
    if (cublasLtMatrixLayoutCreate (&f.la, CUDA_R_8F_E4M3, K, N, K) != CUBLAS_STATUS_SUCCESS
        || cublasLtMatrixLayoutCreate (&f.lb, CUDA_R_8F_E4M3, K, M, K) != CUBLAS_STATUS_SUCCESS
        || cublasLtMatrixLayoutCreate (&f.ld, CUDA_R_16BF, N, M, N) != CUBLAS_STATUS_SUCCESS
        || cublasLtMatmulPreferenceCreate (&pref) != CUBLAS_STATUS_SUCCESS)
        goto out;
    uint64_t wsb = 32u << 20;
    cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic (f.lt, f.desc, f.la, f.lb, f.ld, f.ld, pref, 1, &res, &found)
        != CUBLAS_STATUS_SUCCESS || found == 0)
        goto out;
    f.algo = res.algo;
    f.A = a; f.B = b; f.D = d; f.ws = ws;
    ms = s_time (f_fp8_raw, &f, reps);
out:
    cudaStreamSynchronize (g_st);
    if (pref) cublasLtMatmulPreferenceDestroy (pref);
    if (f.la) cublasLtMatrixLayoutDestroy (f.la);
    if (f.lb) cublasLtMatrixLayoutDestroy (f.lb);
    if (f.ld) cublasLtMatrixLayoutDestroy (f.ld);
    if (f.desc) cublasLtMatmulDescDestroy (f.desc);
    cublasLtDestroy (f.lt);
    cudaFree (a); cudaFree (b); cudaFree (d); cudaFree (ws); cudaFree (one);
    return ms;
}

//  ---- op closures
typedef struct { vdgx_tensor_t *y, *x; vdgx_weight_t *w; } lin_t;
static int f_linear (void *a) { lin_t *l = a; return vdgx_op_linear (g_b, l->y, l->x, l->w, NULL); }
typedef struct { vdgx_tensor_t *o, *q, *k, *v; float scale; } att_t;
static int f_attn (void *a) { att_t *t = a; return vdgx_op_attention (g_b, t->o, t->q, t->k, t->v, NULL, NULL, t->scale); }
typedef struct { void *dst, *src; size_t bytes; } cpy_t;
static int f_copy (void *a)
{
    cpy_t *c = a;
    return cudaMemcpyAsync (c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, g_st) != cudaSuccess;
}
typedef struct { int kind; vdgx_tensor_t *y, *x, *g, *b, *s; } el_t;
static int f_elem (void *a)
{
    el_t *e = a;
    switch (e->kind) {
        case 0: return vdgx_op_layernorm (g_b, e->y, e->x, e->g, e->b, 1e-6f);
        case 1: return vdgx_op_rmsnorm (g_b, e->y, e->x, e->g, 1e-6f);
        case 2: return vdgx_op_modulate (g_b, e->y, e->x, e->b, e->s);
        case 3: return vdgx_op_gated_residual (g_b, e->y, e->x, e->s);
        case 4: return vdgx_op_gelu_tanh (g_b, e->y, e->x);
        case 5: return vdgx_op_add_scaled (g_b, e->y, e->y, e->x, 0.5f);
        case 6: return vdgx_cuda_norm_modulate (g_b, e->y, e->x, NULL, NULL, 1e-6f, false, e->b, e->s);
        case 7: return vdgx_op_rope (g_b, e->y, e->x, e->g, e->b, VDGX_ROPE_INTERLEAVED);
        case 8: return vdgx_op_channel_rmsnorm (g_b, e->y, e->x, e->g, NULL);
        case 9: return vdgx_op_channel_rmsnorm_silu (g_b, e->y, e->x, e->g, NULL);
        //  what vdgx_op_channel_rmsnorm_silu runs on a backend without the fused kernel
        case 10: return vdgx_op_channel_rmsnorm (g_b, e->y, e->x, e->g, NULL) || vdgx_op_silu (g_b, e->y, e->y);
        default: return -1;
    }
}

static vdgx_backend_t *s_open (const char *linear_path)
{
    char *err = NULL;
    setenv ("VDGX_CUDA_LINEAR", linear_path, 1);
    vdgx_backend_t *b = vdgx_backend_new ("cuda:0", VDGX_DTYPE_BF16, &err);
    unsetenv ("VDGX_CUDA_LINEAR");
    if (!b) {
        fprintf (stderr, "bench: cuda backend: %s\n", err ? err : "?");
        free (err);
    }
    return b;
}

int main (int argc, char **argv)
{
    bool quick = argc > 1 && strcmp (argv [1], "--quick") == 0;
    if (vdgx_cuda_device_count () == 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount (&n);
        printf ("SKIP: no CUDA device (%s)\n", cudaGetErrorString (e));
        return 77;
    }
    if (!(g_b = s_open ("auto")))
        return 1;
    g_st = (cudaStream_t) vdgx_cuda_stream (g_b);
    printf ("device: %s\n", vdgx_cuda_info (g_b));
    if (cudaMalloc (&g_flush, g_flush_bytes) != cudaSuccess) {
        fprintf (stderr, "bench: no memory for the L2 flush buffer\n");
        return 1;
    }
    const int64_t M = quick ? 4096 : 32760, C = 1536, F = 8960, H = 12, D = 128;
    const int reps = quick ? 3 : 10;

    //  ---- bandwidth ceiling
    double bw = 0;
    {
        size_t bytes = (size_t) 1 << 30;
        cpy_t c = { NULL, NULL, bytes };
        if (cudaMalloc (&c.dst, bytes) == cudaSuccess && cudaMalloc (&c.src, bytes) == cudaSuccess) {
            cudaMemsetAsync (c.src, 1, bytes, g_st);
            double ms = s_time (f_copy, &c, reps);
            bw = 2.0 * (double) bytes / (ms * 1e-3) / 1e9;
            s_print ("d2d_copy_1GiB_ceiling", bw, "GB/s", 1.0, "(read + write bytes)");
        }
        cudaFree (c.dst);
        cudaFree (c.src);
    }

    //  ---- GEMMs: BF16 (cuBLASLt ceiling), FP8, NVFP4 weight-only (auto = dequant + cuBLASLt,
    //  and the mma.sync kernel)
    double bf16_best = 0;
    {
        int64_t xs [2] = { M, C };
        vdgx_tensor_t x, y1, y2, wsrc1, wsrc2;
        int64_t y1s [2] = { M, C }, y2s [2] = { M, F }, w1s [2] = { C, C }, w2s [2] = { F, C };
        if (s_rand (&x, VDGX_DTYPE_BF16, 2, xs, 1.f) || vdgx_tensor_alloc (g_b, &y1, VDGX_DTYPE_BF16, 2, y1s)
            || vdgx_tensor_alloc (g_b, &y2, VDGX_DTYPE_BF16, 2, y2s)
            || s_rand (&wsrc1, VDGX_DTYPE_BF16, 2, w1s, 0.05f) || s_rand (&wsrc2, VDGX_DTYPE_BF16, 2, w2s, 0.05f)) {
            fprintf (stderr, "bench: allocation failed: %s\n", vdgx_backend_error (g_b));
            return 1;
        }
        struct { const char *name; int64_t N; vdgx_tensor_t *y, *ws; } sh [2] = {
            { "N1536_K1536", C, &y1, &wsrc1 }, { "N8960_K1536", F, &y2, &wsrc2 } };
        for (int s = 0; s < 2; s++) {
            double flop = 2.0 * (double) M * (double) sh [s].N * (double) C;
            char name [96], note [96];
            //  BF16 weight: the cuBLASLt BF16 GEMM itself
            vdgx_weight_t wb;
            memset (&wb, 0, sizeof wb);
            wb.fmt = VDGX_WFMT_BF16; wb.n = sh [s].N; wb.k = C; wb.data = sh [s].ws->data;
            wb.device = vdgx_backend_device (g_b); wb.owner = g_b; wb.global_scale = 1.f;
            lin_t l = { sh [s].y, &x, &wb };
            double ms = s_time (f_linear, &l, reps);
            double bf = flop / (ms * 1e-3) / 1e12;
            if (bf > bf16_best) bf16_best = bf;
            snprintf (name, sizeof name, "gemm_bf16_M%lld_%s", (long long) M, sh [s].name);
            s_print (name, bf, "TFLOP/s", 1.0, "(cuBLASLt BF16 = ceiling)");
            //  FP8 GEMM alone (cuBLASLt directly)
            ms = s_fp8_raw (M, sh [s].N, C, reps);
            if (ms > 0) {
                double t = flop / (ms * 1e-3) / 1e12;
                snprintf (name, sizeof name, "gemm_fp8_cublaslt_M%lld_%s", (long long) M, sh [s].name);
                s_print (name, t, "TFLOP/s", t / bf, "(vs BF16; cuBLASLt FP8 GEMM alone)");
            }
            else
                printf ("BENCH %-34s %10s %-7s frac=0 (no cuBLASLt FP8 algorithm)\n", "gemm_fp8_cublaslt", "n/a", "TFLOP/s");
            //  FP8 per-tensor weight, quantized on the GPU
            vdgx_weight_t w8;
            if (vdgx_cuda_weight_quantize (g_b, &w8, VDGX_WFMT_FP8_E4M3, sh [s].ws, false) == 0) {
                l.w = &w8;
                ms = s_time (f_linear, &l, reps);
                double t = flop / (ms * 1e-3) / 1e12;
                snprintf (name, sizeof name, "linear_fp8_M%lld_%s", (long long) M, sh [s].name);
                s_print (name, t, "TFLOP/s", t / bf, "(vs BF16; incl. activation amax+quant)");
                vdgx_weight_release (g_b, &w8);
            }
            else
                fprintf (stderr, "bench: fp8 quantize: %s\n", vdgx_backend_error (g_b)), g_fail++;
            //  NVFP4 weight-only
            vdgx_weight_t w4;
            if (vdgx_cuda_weight_quantize (g_b, &w4, VDGX_WFMT_NVFP4, sh [s].ws, false) == 0) {
                l.w = &w4;
                ms = s_time (f_linear, &l, reps);
                double t = flop / (ms * 1e-3) / 1e12;
                snprintf (name, sizeof name, "linear_nvfp4_M%lld_%s", (long long) M, sh [s].name);
                snprintf (note, sizeof note, "(vs BF16; dequant + cuBLASLt)");
                s_print (name, t, "TFLOP/s", t / bf, note);
                //  the same weight through the mma.sync weight-only kernel
                vdgx_backend_t *keep = g_b;
                vdgx_backend_t *mb = s_open ("mma");
                if (mb) {
                    vdgx_weight_t wm;
                    vdgx_tensor_t xm, ym;
                    int64_t ys2 [2] = { M, sh [s].N };
                    g_b = mb;
                    cudaStream_t keep_st = g_st;
                    g_st = (cudaStream_t) vdgx_cuda_stream (mb);
                    if (s_rand (&xm, VDGX_DTYPE_BF16, 2, xs, 1.f) == 0
                        && vdgx_tensor_alloc (mb, &ym, VDGX_DTYPE_BF16, 2, ys2) == 0) {
                        vdgx_tensor_t wsm;
                        int64_t wss [2] = { sh [s].N, C };
                        if (s_rand (&wsm, VDGX_DTYPE_BF16, 2, wss, 0.05f) == 0
                            && vdgx_cuda_weight_quantize (mb, &wm, VDGX_WFMT_NVFP4, &wsm, false) == 0) {
                            lin_t lm = { &ym, &xm, &wm };
                            ms = s_time (f_linear, &lm, quick ? 2 : 5);
                            t = flop / (ms * 1e-3) / 1e12;
                            snprintf (name, sizeof name, "linear_nvfp4_mma_M%lld_%s", (long long) M, sh [s].name);
                            s_print (name, t, "TFLOP/s", t / bf, "(vs BF16; mma.sync weight-only kernel)");
                            vdgx_weight_release (mb, &wm);
                            vdgx_tensor_release (mb, &wsm);
                        }
                        vdgx_tensor_release (mb, &xm);
                        vdgx_tensor_release (mb, &ym);
                    }
                    //  decode-like small M, where weight-only kernels matter
                    vdgx_backend_destroy (&mb);
                    g_b = keep;
                    g_st = keep_st;
                }
                vdgx_weight_release (g_b, &w4);
            }
            else
                fprintf (stderr, "bench: nvfp4 quantize: %s\n", vdgx_backend_error (g_b)), g_fail++;
        }
        vdgx_tensor_release (g_b, &x);
        vdgx_tensor_release (g_b, &y1);
        vdgx_tensor_release (g_b, &y2);
        vdgx_tensor_release (g_b, &wsrc1);
        vdgx_tensor_release (g_b, &wsrc2);
    }

    //  ---- attention
    {
        int64_t qs [4] = { 1, M, H, D };
        vdgx_tensor_t q, k, v, o;
        if (s_rand (&q, VDGX_DTYPE_BF16, 4, qs, 1.f) == 0 && s_rand (&k, VDGX_DTYPE_BF16, 4, qs, 1.f) == 0
            && s_rand (&v, VDGX_DTYPE_BF16, 4, qs, 1.f) == 0 && vdgx_tensor_alloc (g_b, &o, VDGX_DTYPE_BF16, 4, qs) == 0) {
            att_t a = { &o, &q, &k, &v, 1.f / sqrtf ((float) D) };
            double ms = s_time (f_attn, &a, quick ? 2 : 4);
            double flop = 4.0 * (double) M * (double) M * (double) H * (double) D;
            double t = flop / (ms * 1e-3) / 1e12;
            char name [96];
            snprintf (name, sizeof name, "attention_L%lld_H12_D128", (long long) M);
            s_print (name, t, "TFLOP/s", bf16_best > 0 ? t / bf16_best : 0, "(vs best BF16 GEMM; flash mma.sync)");
            //  the other variants, each on a second backend sharing only the device
            static const char *const var [] = { "flash_ldsm", "flash_pipe" };
            for (int vi = 0; vi < 2; vi++) {
                setenv ("VDGX_CUDA_ATTN", var [vi], 1);
                char *err = NULL;
                vdgx_backend_t *lb = vdgx_backend_new ("cuda:0", VDGX_DTYPE_BF16, &err);
                unsetenv ("VDGX_CUDA_ATTN");
                free (err);
                if (lb) {
                    vdgx_backend_t *keep = g_b;
                    cudaStream_t keep_st = g_st;
                    cudaStreamSynchronize (g_st);
                    //  the tensors live on keep's pool but the same device: fine for reading and
                    //  writing from lb's stream once keep's stream is idle
                    g_b = lb;
                    g_st = (cudaStream_t) vdgx_cuda_stream (lb);
                    ms = s_time (f_attn, &a, quick ? 2 : 4);
                    t = flop / (ms * 1e-3) / 1e12;
                    snprintf (name, sizeof name, "attention_%s_L%lld_H12_D128", var [vi] + 6, (long long) M);
                    s_print (name, t, "TFLOP/s", bf16_best > 0 ? t / bf16_best : 0,
                             vi ? "(vs best BF16 GEMM; ldmatrix + cp.async pipeline)" : "(vs best BF16 GEMM; V via ldmatrix.trans)");
                    cudaStreamSynchronize (g_st);
                    vdgx_backend_destroy (&lb);
                    g_b = keep;
                    g_st = keep_st;
                }
            }
            vdgx_tensor_release (g_b, &q);
            vdgx_tensor_release (g_b, &k);
            vdgx_tensor_release (g_b, &v);
            vdgx_tensor_release (g_b, &o);
        }
        else
            fprintf (stderr, "bench: attention allocation: %s\n", vdgx_backend_error (g_b)), g_fail++;
    }

    //  ---- memory-bound ops, [M, 1536] bf16
    {
        int64_t xs [2] = { M, C }, cs [1] = { C }, ms2 [2] = { 1, C }, rs [4] = { 1, M, H, D }, ts [2] = { M, D / 2 };
        vdgx_tensor_t x, y, g, b, s, xr, yr, ct, st;
        if (s_rand (&x, VDGX_DTYPE_BF16, 2, xs, 1.f) || s_rand (&y, VDGX_DTYPE_BF16, 2, xs, 1.f)
            || s_rand (&g, VDGX_DTYPE_BF16, 1, cs, 1.f) || s_rand (&b, VDGX_DTYPE_BF16, 2, ms2, 1.f)
            || s_rand (&s, VDGX_DTYPE_BF16, 2, ms2, 1.f) || s_rand (&xr, VDGX_DTYPE_BF16, 4, rs, 1.f)
            || vdgx_tensor_alloc (g_b, &yr, VDGX_DTYPE_BF16, 4, rs)
            || s_rand (&ct, VDGX_DTYPE_F32, 2, ts, 1.f) || s_rand (&st, VDGX_DTYPE_F32, 2, ts, 1.f)) {
            fprintf (stderr, "bench: allocation failed: %s\n", vdgx_backend_error (g_b));
            return 1;
        }
        double nb = (double) M * C * 2;     //  bytes of one [M, C] bf16 tensor
        struct { const char *name; int kind; double bytes; } ops [] = {
            { "layernorm_bf16", 0, 2 * nb }, { "rmsnorm_bf16", 1, 2 * nb }, { "modulate_bf16", 2, 2 * nb },
            { "gated_residual_bf16", 3, 3 * nb }, { "gelu_tanh_bf16", 4, 2 * nb }, { "add_scaled_bf16", 5, 3 * nb },
            { "layernorm_modulate_fused_bf16", 6, 2 * nb }, { "rope_interleaved_bf16", 7, 2 * nb },
        };
        for (size_t i = 0; i < sizeof ops / sizeof ops [0]; i++) {
            el_t e = { ops [i].kind, &y, &x, &g, &b, &s };
            if (ops [i].kind == 7) {
                e.y = &yr; e.x = &xr; e.g = &ct; e.b = &st;
            }
            double ms = s_time (f_elem, &e, reps);
            double gbs = ops [i].bytes / (ms * 1e-3) / 1e9;
            char name [96];
            snprintf (name, sizeof name, "%s_%lldx1536", ops [i].name, (long long) M);
            s_print (name, gbs, "GB/s", bw > 0 ? gbs / bw : 0, "(vs d2d copy)");
        }
        vdgx_tensor_t *all [] = { &x, &y, &g, &b, &s, &xr, &yr, &ct, &st };
        for (size_t i = 0; i < sizeof all / sizeof all [0]; i++)
            vdgx_tensor_release (g_b, all [i]);
    }
    //  ---- Wan-VAE decoder norms: x [1, C, T, H, W] bf16, gamma [C], at the decoder's widest
    //  level (96 channels, 480x832) and its 384-channel level (240x416), T = 2 (1 with
    //  --quick): 150 MB a tensor, three times an H100's L2. The fused norm + SiLU against the
    //  two ops it replaces, all reported at the fused op's bytes (read x, write y), so the
    //  fractions compare directly.
    {
        static const int64_t shapes [2][5] = { { 1, 96, 2, 480, 832 }, { 1, 384, 2, 240, 416 } };
        for (int si = 0; si < 2; si++) {
            int64_t xs [5], cs [1] = { shapes [si][1] };
            memcpy (xs, shapes [si], sizeof xs);
            if (quick)
                xs [2] = 1;
            vdgx_tensor_t x, y, g;
            if (s_rand (&x, VDGX_DTYPE_BF16, 5, xs, 2.f) || vdgx_tensor_alloc (g_b, &y, VDGX_DTYPE_BF16, 5, xs)
                || s_rand (&g, VDGX_DTYPE_BF16, 1, cs, 1.f)) {
                fprintf (stderr, "bench: allocation failed: %s\n", vdgx_backend_error (g_b));
                return 1;
            }
            double nb = (double) xs [0] * xs [1] * xs [2] * xs [3] * xs [4] * 2;
            struct { const char *name; int kind; const char *note; } ops [] = {
                { "channel_rmsnorm", 8, "(vs d2d copy)" },
                { "channel_rmsnorm_silu", 9, "(vs d2d copy; fused, one pass)" },
                { "channel_rmsnorm_silu_2op", 10, "(vs d2d copy; norm then silu, at the fused op's bytes)" },
            };
            for (size_t i = 0; i < sizeof ops / sizeof ops [0]; i++) {
                el_t e = { ops [i].kind, &y, &x, &g, NULL, NULL };
                double ms = s_time (f_elem, &e, reps);
                double gbs = 2 * nb / (ms * 1e-3) / 1e9;
                char name [96];
                snprintf (name, sizeof name, "%s_bf16_%lldx%lldx%lldx%lld", ops [i].name, (long long) xs [1],
                          (long long) xs [2], (long long) xs [3], (long long) xs [4]);
                s_print (name, gbs, "GB/s", bw > 0 ? gbs / bw : 0, ops [i].note);
            }
            vdgx_tensor_release (g_b, &x);
            vdgx_tensor_release (g_b, &y);
            vdgx_tensor_release (g_b, &g);
        }
    }
    cudaFree (g_flush);
    vdgx_backend_destroy (&g_b);
    printf ("bench: %s\n", g_fail ? "some benchmarks failed" : "done");
    return g_fail ? 1 : 0;
}
