/*  vdgx-bench-kernels [-q] [--threads N] - compute-layer benchmark (CPU backend).

    GEMM: y[M,N] = x[M,K] . W[N,K]^T through vdgx_op_linear for each weight format, next to
    the raw BLAS sgemm (OpenBLAS when built with it) and our portable sgemm on the same shapes.
    The quantized formats run once per path this CPU has (generic: dequantized panels, then
    sgemm; avx2, avx512, avx512bf16: vdgx_cpu_qgemm.c on the packed codes), each row with f32.
    GFLOP/s counts 2*M*N*K per call (decoding is overhead inside that time).
    Attention: vdgx_op_attention on [B,L,H,D], 4*B*H*Lq*Lk*D flops per call.
    -q runs small shapes (a smoke test for ctest).
*/
#include "vdgx_backend.h"
#include "vdgx_quant.h"
#include "vdgx_kernels_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef VDGX_HAVE_OPENBLAS
#include <cblas.h>
#endif

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *
s_rand (int64_t n, uint32_t seed)
{
    float *v = malloc (sizeof (float) * (size_t) n);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v [i] = ((seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    return v;
}

//  Best of reps after one warm-up call (the pool and caches are warm then).
#define S_TIME(best, reps, stmt) do { \
    stmt; \
    best = 1e30; \
    for (int r_ = 0; r_ < (reps); r_++) { \
        double t0_ = s_now (); \
        stmt; \
        double dt_ = s_now () - t0_; \
        if (dt_ < best) best = dt_; \
    } \
} while (0)

static void
s_cpu_model (char *buf, size_t n)
{
    snprintf (buf, n, "unknown CPU");
    FILE *f = fopen ("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line [512];
    while (fgets (line, sizeof (line), f))
        if (strncmp (line, "model name", 10) == 0) {
            char *c = strchr (line, ':');
            if (c) {
                snprintf (buf, n, "%s", c + 2);
                buf [strcspn (buf, "\n")] = 0;
            }
            break;
        }
    fclose (f);
}

int
main (int argc, char **argv)
{
    bool quick = false;
    int threads = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp (argv [a], "-q") == 0)
            quick = true;
        else if (strcmp (argv [a], "--threads") == 0 && a + 1 < argc)
            threads = atoi (argv [++a]);
        else {
            fprintf (stderr, "usage: vdgx-bench-kernels [-q] [--threads N]\n");
            return 2;
        }
    }
    char dev [32], *err = NULL;
    snprintf (dev, sizeof (dev), threads > 0? "cpu:%d": "cpu", threads);
    vdgx_backend_t *b = vdgx_backend_new (dev, VDGX_DTYPE_F32, &err);
    if (!b) {
        fprintf (stderr, "vdgx-bench-kernels: %s\n", err);
        return 1;
    }
    char cpu [256];
    s_cpu_model (cpu, sizeof (cpu));
    const char *blas = "portable (no OpenBLAS)";
#ifdef VDGX_HAVE_OPENBLAS
    blas = openblas_get_corename ();        //  OPENBLAS_CORETYPE=Haswell: what an AVX2-only CPU runs
#endif
    printf ("vdgx-bench-kernels: %s, %d threads, BLAS: %s%s, CPU level %s\n", cpu, vdgx_backend_threads (b),
            vdgx_sgemm_is_openblas ()? "OpenBLAS ": "", blas, vdgx_cpu_isa_name (vdgx_cpu_isa ()));
    int reps = quick? 1: 3;

    //  Shapes from Wan 2.1 1.3B: hidden 1536, FFN 8960, M = tokens of a small latent.
    static const int64_t full [][3] = { { 512, 1536, 1536 }, { 512, 8960, 1536 }, { 512, 1536, 8960 }, { 1, 1536, 1536 } };
    static const int64_t small [][3] = { { 32, 128, 128 }, { 1, 64, 128 } };
    const int64_t (*shapes) [3] = quick? small: full;
    int nshapes = quick? 2: 4;
    //  The quantized linears run once per path this CPU has (vdgx_qgemm_isa forced; generic:
    //  dequantized panels + sgemm), f32 (always sgemm) on every row for the same-row ratio.
    int top = (int) vdgx_cpu_isa ();
    printf ("\nGEMM y[M,N] = x[M,K] . W[N,K]^T, GFLOP/s (best of %d)\n", reps);
    printf ("%6s %6s %6s | %9s %9s | %-10s %8s %8s %8s %8s %8s %8s %8s\n", "M", "N", "K", "blas", "portable",
            "path", "f32", "bf16", "f16", "fp8", "nvfp4", "mxfp4", "nf4");
    for (int s = 0; s < nshapes; s++) {
        int64_t M = shapes [s][0], N = shapes [s][1], K = shapes [s][2];
        double flops = 2.0 * M * N * K, t;
        float *x = s_rand (M * K, 1), *wsrc = s_rand (N * K, 2), *y = s_rand (M * N, 3);
        printf ("%6lld %6lld %6lld |", (long long) M, (long long) N, (long long) K);
#ifdef VDGX_HAVE_OPENBLAS
        S_TIME (t, reps, cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) M, (int) N, (int) K, 1.0f,
                                      x, (int) K, wsrc, (int) K, 0.0f, y, (int) N));
        printf (" %9.1f", flops / t * 1e-9);
#else
        printf (" %9s", "-");
#endif
        S_TIME (t, reps, vdgx_sgemm_portable (vdgx_cpu_pool_of (b), true, M, N, K, x, K, wsrc, K, 0.0f, y, N));
        printf (" %9.1f |", flops / t * 1e-9);
        fflush (stdout);
        vdgx_weight_t dw [VDGX_WFMT_COUNT];
        for (int f = 0; f < VDGX_WFMT_COUNT; f++) {
            vdgx_weight_t hw;
            if (vdgx_weight_quantize (&hw, (vdgx_wfmt_t) f, wsrc, N, K, true, &err)
                || vdgx_weight_to_backend (b, &dw [f], &hw)) {
                fprintf (stderr, "\nquantize: %s\n", err? err: vdgx_backend_error (b));
                return 1;
            }
            vdgx_weight_host_free (&hw);
        }
        vdgx_tensor_t tx, ty;
        int64_t xs [2] = { M, K }, ys [2] = { M, N };
        vdgx_tensor_init (&tx, VDGX_DTYPE_F32, 2, xs, x, VDGX_DEVICE_CPU);
        vdgx_tensor_init (&ty, VDGX_DTYPE_F32, 2, ys, y, VDGX_DEVICE_CPU);
        for (int p = 0; p <= top; p++) {
            vdgx_qgemm_isa = p;
            if (p > 0)
                printf ("%6s %6s %6s | %9s %9s |", "", "", "", "", "");
            printf (" %-10s", vdgx_cpu_isa_name ((vdgx_cpu_isa_t) p));
            for (int f = 0; f < VDGX_WFMT_COUNT; f++) {
                int rc = 0;
                S_TIME (t, reps, rc |= vdgx_op_linear (b, &ty, &tx, &dw [f], NULL));
                if (rc) {
                    fprintf (stderr, "\nlinear: %s\n", vdgx_backend_error (b));
                    return 1;
                }
                printf (" %8.1f", flops / t * 1e-9);
                fflush (stdout);
            }
            printf ("\n");
        }
        vdgx_qgemm_isa = -1;
        for (int f = 0; f < VDGX_WFMT_COUNT; f++)
            vdgx_weight_release (b, &dw [f]);
        free (x); free (wsrc); free (y);
    }

    //  Attention
    static const int64_t afull [][5] = { { 1, 1024, 1024, 12, 128 }, { 1, 2048, 512, 12, 128 }, { 1, 1024, 512, 16, 64 } };
    static const int64_t asmall [][5] = { { 1, 64, 64, 2, 32 } };
    const int64_t (*ash) [5] = quick? asmall: afull;
    int nash = quick? 1: 3;
    printf ("\nAttention o[B,Lq,H,D] (blocked online softmax), GFLOP/s (best of %d)\n", reps);
    printf ("%3s %6s %6s %4s %4s | %8s %8s\n", "B", "Lq", "Lk", "H", "D", "GFLOP/s", "ms");
    for (int s = 0; s < nash; s++) {
        int64_t B = ash [s][0], Lq = ash [s][1], Lk = ash [s][2], H = ash [s][3], D = ash [s][4];
        float *q = s_rand (B * Lq * H * D, 4), *k = s_rand (B * Lk * H * D, 5), *v = s_rand (B * Lk * H * D, 6);
        float *o = s_rand (B * Lq * H * D, 7);
        int64_t qs [4] = { B, Lq, H, D }, ks [4] = { B, Lk, H, D };
        vdgx_tensor_t tq, tk, tv, to;
        vdgx_tensor_init (&tq, VDGX_DTYPE_F32, 4, qs, q, VDGX_DEVICE_CPU);
        vdgx_tensor_init (&to, VDGX_DTYPE_F32, 4, qs, o, VDGX_DEVICE_CPU);
        vdgx_tensor_init (&tk, VDGX_DTYPE_F32, 4, ks, k, VDGX_DEVICE_CPU);
        vdgx_tensor_init (&tv, VDGX_DTYPE_F32, 4, ks, v, VDGX_DEVICE_CPU);
        double t;
        int rc = 0;
        S_TIME (t, reps, rc |= vdgx_op_attention (b, &to, &tq, &tk, &tv, NULL, NULL, 1.0f / sqrtf ((float) D)));
        if (rc) {
            fprintf (stderr, "attention: %s\n", vdgx_backend_error (b));
            return 1;
        }
        printf ("%3lld %6lld %6lld %4lld %4lld | %8.1f %8.1f\n", (long long) B, (long long) Lq, (long long) Lk,
                (long long) H, (long long) D, 4.0 * B * H * Lq * Lk * D / t * 1e-9, t * 1e3);
        free (q); free (k); free (v); free (o);
    }
    //  Quantize-at-load: f32 source elements per second for each format (threaded inside).
    {
        int64_t N = quick? 64: 8960, K = quick? 128: 1536;
        float *w = s_rand (N * K, 8);
        printf ("\nQuantize-at-load [%lld x %lld] from f32, Melem/s (all threads)\n", (long long) N, (long long) K);
        for (int f = 1; f < VDGX_WFMT_COUNT; f++) {
            vdgx_weight_t hw;
            double t0 = s_now ();
            if (vdgx_weight_quantize (&hw, (vdgx_wfmt_t) f, w, N, K, true, NULL))
                return 1;
            double t = s_now () - t0;
            printf ("  %-6s %8.1f\n", vdgx_wfmt_name ((vdgx_wfmt_t) f), N * K / t * 1e-6);
            vdgx_weight_host_free (&hw);
        }
        free (w);
    }
    vdgx_backend_destroy (&b);
    return 0;
}
