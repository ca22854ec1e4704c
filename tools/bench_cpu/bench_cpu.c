/*  vdgx-bench-cpu - times one op or model piece of ours on the CPU, for the side-by-side run
    against PyTorch (tools/bench_cpu/vs_torch.py drives both in one interleaved run).

    vdgx-bench-cpu [--threads N] [--reps R] ITEM ARGS...
      linear M N K FMT        y[M,N] = x[M,K] . W[N,K]^T + bias, FMT f32|bf16|f16|fp8|nvfp4|mxfp4|nf4
                              or all: every format under every path of the quantized
                              linears this CPU has (generic = dequantized panels + sgemm,
                              avx2, avx512, avx512bf16), R interleaved rounds, then tables
                              of median GFLOP/s (wall) and GFLOP per CPU-second, and each
                              format's ratio to f32 on that path
      attention B L H D       self-attention o[B,L,H,D], scale 1/sqrt(D)
      conv3d CIN COUT T H W   causal 3x3x3 conv (vdgx_cconv3d) of x[1,CIN,T,H,W] with a cache of
                              2 earlier frames (so every tap reads real data, as vs_torch.py's
                              item with its cache), pad h 1, w 1
      vae F H W               Wan 2.1 VAE decode (dim 96, z 16, random weights) of a
                              latent 16 x F x H x W -> 1 + 4 (F - 1) frames of 8H x 8W
      ltx2vae F H W           LTX-2.3 video VAE decode (the 22B decoder at full width, 407 M
                              random weights, no timestep conditioning) of a latent
                              128 x F x H x W -> 1 + 8 (F - 1) frames of 32H x 32W
      vocoder V FRAMES        LTX-2 vocoder (V 2: the 19B HiFi-GAN -> 24 kHz; V 23: the 22B
                              BigVGAN v2 + bandwidth extension -> 48 kHz), full size, random
                              weights, of a stereo log-mel of FRAMES frames (100 = 1 s)

    One untimed warm-up, then R timed runs: prints "time <seconds>" per run, then
    "peak_rss_mb <MiB>" (the process's maximum resident set, weights and inputs included).
    Inputs and weights are random (never zero).
*/
#include "vdgx_backend.h"
#include "vdgx_kernels_private.h"
#include "vdgx_quant.h"
#include "wan21_vae.h"
#include "ltx2_vae.h"
#include "ltx2_audio.h"
#include "vdgx_conv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

static uint64_t s_seed = 0x2545f4914f6cdd1dull;

static float *
s_rand (int64_t n, float scale)
{
    float *v = malloc (sizeof (float) * (size_t) (n > 0? n: 1));
    if (!v) {
        fprintf (stderr, "vdgx-bench-cpu: out of memory\n");
        exit (1);
    }
    for (int64_t i = 0; i < n; i++) {
        s_seed ^= s_seed << 13;
        s_seed ^= s_seed >> 7;
        s_seed ^= s_seed << 17;
        v [i] = scale * (2.0f * (float) ((s_seed >> 40) + 1) / 16777217.0f - 1.0f);
    }
    return v;
}

static void
s_tensor (vdgx_backend_t *b, vdgx_tensor_t *t, int ndim, const int64_t *shape, float scale)
{
    if (vdgx_tensor_alloc (b, t, VDGX_DTYPE_F32, ndim, shape)) {
        fprintf (stderr, "vdgx-bench-cpu: out of memory\n");
        exit (1);
    }
    float *v = s_rand (vdgx_tensor_numel (t), scale);
    vdgx_tensor_from_f32 (b, t, v);
    free (v);
}

static void
s_check (vdgx_backend_t *b, int rc, const char *what)
{
    if (rc) {
        fprintf (stderr, "vdgx-bench-cpu: %s: %s\n", what, vdgx_backend_error (b));
        exit (1);
    }
}

static int
s_frame (void *ctx, int index, const float *chw, int width, int height)
{
    (void) ctx; (void) index; (void) chw; (void) width; (void) height;
    return 0;
}

static double
s_cpu_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static void
s_loadavg (char *buf, size_t n)
{
    snprintf (buf, n, "?");
    FILE *f = fopen ("/proc/loadavg", "r");
    if (f) {
        if (fgets (buf, (int) n, f))
            buf [strcspn (buf, " ")] = 0;
        fclose (f);
    }
}

//  linear M N K all: every (path, format) once per round, rounds interleaved, medians.
static int
s_linear_all (vdgx_backend_t *b, int64_t M, int64_t N, int64_t K, int reps)
{
    enum { PATHS = VDGX_CPU_ISA_AVX512BF16 + 1 };
    int top = (int) vdgx_cpu_isa ();
    vdgx_weight_t dw [VDGX_WFMT_COUNT] = { { 0 } };
    float *w = s_rand (N * K, 1.0f / sqrtf ((float) K));
    for (int f = 0; f < VDGX_WFMT_COUNT; f++) {
        vdgx_weight_t hw = { 0 };
        char *err = NULL;
        if (vdgx_weight_quantize (&hw, (vdgx_wfmt_t) f, w, N, K, true, &err) || vdgx_weight_to_backend (b, &dw [f], &hw)) {
            fprintf (stderr, "vdgx-bench-cpu: weight %s: %s\n", vdgx_wfmt_name ((vdgx_wfmt_t) f), err? err: vdgx_backend_error (b));
            return 1;
        }
        vdgx_weight_host_free (&hw);
    }
    free (w);
    vdgx_tensor_t t [3] = { { 0 } };
    int64_t sx [2] = { M, K }, sy [2] = { M, N }, sb [1] = { N };
    s_tensor (b, &t [0], 2, sx, 1.0f);
    s_tensor (b, &t [1], 2, sy, 1.0f);
    s_tensor (b, &t [2], 1, sb, 1.0f);
    //  wall and process CPU seconds per call: on a shared machine the CPU time is the steadier
    size_t cells = (size_t) (PATHS * VDGX_WFMT_COUNT * (reps + 1));
    double *times = calloc (2 * cells, sizeof (double)), *cpu = times + cells;
    if (!times)
        return 1;
    char load0 [32], load1 [32];
    s_loadavg (load0, sizeof load0);
    for (int r = 0; r <= reps; r++)         //  round 0 warms up
        for (int p = 0; p <= top; p++)
            for (int f = 0; f < VDGX_WFMT_COUNT; f++) {
                vdgx_qgemm_isa = p;
                double t0 = s_now (), c0 = s_cpu_now ();
                s_check (b, vdgx_op_linear (b, &t [1], &t [0], &dw [f], &t [2]), "linear");
                times [(p * VDGX_WFMT_COUNT + f) * (reps + 1) + r] = s_now () - t0;
                cpu [(p * VDGX_WFMT_COUNT + f) * (reps + 1) + r] = s_cpu_now () - c0;
            }
    vdgx_qgemm_isa = -1;
    s_loadavg (load1, sizeof load1);
    const char *blas = "portable sgemm";
#ifdef VDGX_HAVE_OPENBLAS
    blas = openblas_get_corename ();        //  OPENBLAS_CORETYPE=Haswell: what an AVX2-only CPU runs
#endif
    printf ("linear %lldx%lldx%lld, %d threads, f32 = sgemm (OpenBLAS core: %s), medians of %d interleaved "
            "rounds (load average %s at the start, %s at the end)\n", (long long) M, (long long) N, (long long) K,
            vdgx_backend_threads (b), blas, reps, load0, load1);
    for (int table = 0; table < 2; table++) {
        printf ("%s\n%-11s", table? "GFLOP per CPU-second (process CPU time, all threads; medians)": "GFLOP/s (wall clock; medians)",
                "path");
        for (int f = 0; f < VDGX_WFMT_COUNT; f++)
            printf (" %8s", vdgx_wfmt_name ((vdgx_wfmt_t) f));
        printf ("\n");
        for (int p = 0; p <= top; p++) {
            double med [VDGX_WFMT_COUNT];
            for (int f = 0; f < VDGX_WFMT_COUNT; f++) {
                double *v = (table? cpu: times) + (p * VDGX_WFMT_COUNT + f) * (reps + 1) + 1;
                qsort (v, (size_t) reps, sizeof (double), s_cmp_double);
                double m = reps % 2? v [reps / 2]: 0.5 * (v [reps / 2 - 1] + v [reps / 2]);
                med [f] = 2.0 * (double) M * (double) N * (double) K / m * 1e-9;
            }
            printf ("%-11s", vdgx_cpu_isa_name ((vdgx_cpu_isa_t) p));
            for (int f = 0; f < VDGX_WFMT_COUNT; f++)
                printf (" %8.1f", med [f]);
            printf ("\n%-11s", "  /f32");
            for (int f = 0; f < VDGX_WFMT_COUNT; f++)
                printf (" %8.2f", med [f] / med [0]);
            printf ("\n");
        }
    }
    free (times);
    for (int i = 0; i < 3; i++)
        vdgx_tensor_release (b, &t [i]);
    for (int f = 0; f < VDGX_WFMT_COUNT; f++)
        vdgx_weight_release (b, &dw [f]);
    return 0;
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: vdgx-bench-cpu [--threads N] [--reps R] linear M N K FMT|all | attention B L H D\n"
                     "       | conv3d CIN COUT T H W | vae F H W | ltx2vae F H W\n"
                     "       | vocoder 2|23 FRAMES\n");
    exit (2);
}

int
main (int argc, char *argv [])
{
    int threads = 0, reps = 3, a = 1;
    while (a + 1 < argc && strncmp (argv [a], "--", 2) == 0) {
        if (strcmp (argv [a], "--threads") == 0) threads = atoi (argv [a + 1]);
        else if (strcmp (argv [a], "--reps") == 0) reps = atoi (argv [a + 1]);
        else s_usage ();
        a += 2;
    }
    if (a >= argc || reps < 1)
        s_usage ();
    const char *item = argv [a++];
    int64_t n [6] = { 0 };
    int want = strcmp (item, "linear") == 0? 3: strcmp (item, "attention") == 0? 4:
               strcmp (item, "conv3d") == 0? 5: strcmp (item, "vae") == 0? 3:
               strcmp (item, "ltx2vae") == 0? 3: strcmp (item, "vocoder") == 0? 2: -1;
    if (want < 0 || argc - a < want + (strcmp (item, "linear") == 0))
        s_usage ();
    for (int i = 0; i < want; i++) {
        n [i] = atoll (argv [a + i]);
        if (n [i] <= 0 || n [i] > 1 << 20)
            s_usage ();
    }
    char device [32], *err = NULL;
    snprintf (device, sizeof device, threads > 0? "cpu:%d": "cpu", threads);
    vdgx_backend_t *b = vdgx_backend_new (device, VDGX_DTYPE_F32, &err);
    if (!b) {
        fprintf (stderr, "vdgx-bench-cpu: %s\n", err);
        return 1;
    }
    vdgx_tensor_t t [4] = { { 0 } };
    vdgx_weight_t hw = { 0 }, dw = { 0 };
    wan21_vae_t *vae = NULL;
    ltx2_vae_t *ltx = NULL;
    ltx2_audio_t *audio = NULL;
    float *latent = NULL;
    int kind = 0;
    if (strcmp (item, "linear") == 0 && strcmp (argv [a + 3], "all") == 0) {
        int rc = s_linear_all (b, n [0], n [1], n [2], reps);
        vdgx_backend_destroy (&b);
        return rc;
    }
    if (strcmp (item, "linear") == 0) {
        vdgx_wfmt_t fmt;
        if (vdgx_wfmt_from_name (argv [a + 3], &fmt))
            s_usage ();
        float *w = s_rand (n [1] * n [2], 1.0f / sqrtf ((float) n [2]));
        if (vdgx_weight_quantize (&hw, fmt, w, n [1], n [2], true, &err)
        ||  vdgx_weight_to_backend (b, &dw, &hw)) {
            fprintf (stderr, "vdgx-bench-cpu: weight: %s\n", err? err: vdgx_backend_error (b));
            return 1;
        }
        free (w);
        vdgx_weight_host_free (&hw);
        int64_t sx [2] = { n [0], n [2] }, sy [2] = { n [0], n [1] }, sb [1] = { n [1] };
        s_tensor (b, &t [0], 2, sx, 1.0f);
        s_tensor (b, &t [1], 2, sy, 1.0f);
        s_tensor (b, &t [2], 1, sb, 1.0f);
        kind = 1;
    }
    else if (strcmp (item, "attention") == 0) {
        int64_t s [4] = { n [0], n [1], n [2], n [3] };
        for (int i = 0; i < 4; i++)
            s_tensor (b, &t [i], 4, s, 1.0f);
        kind = 2;
    }
    else if (strcmp (item, "conv3d") == 0) {
        int64_t sx [5] = { 1, n [0], n [2], n [3], n [4] }, sw [5] = { n [1], n [0], 3, 3, 3 };
        int64_t sc [5] = { 1, n [0], 2, n [3], n [4] }, sb [1] = { n [1] };
        s_tensor (b, &t [0], 5, sx, 1.0f);
        s_tensor (b, &t [1], 5, sw, 1.0f / sqrtf ((float) (27 * n [0])));
        s_tensor (b, &t [2], 5, sc, 1.0f);
        s_tensor (b, &t [3], 1, sb, 1.0f);
        kind = 3;
    }
    else if (strcmp (item, "ltx2vae") == 0) {
        //  The LTX-2.3 22B decoder (decoder_base_channels 128, the 2.3 block list).
        static const char *config = "{\"latent_channels\": 128, \"patch_size\": 4, "
            "\"decoder_base_channels\": 128, \"decoder_blocks\": [[\"res_x\", {\"num_layers\": 4}], "
            "[\"compress_space\", {\"multiplier\": 2}], [\"res_x\", {\"num_layers\": 6}], "
            "[\"compress_time\", {\"multiplier\": 2}], [\"res_x\", {\"num_layers\": 4}], "
            "[\"compress_all\", {\"multiplier\": 1}], [\"res_x\", {\"num_layers\": 2}], "
            "[\"compress_all\", {\"multiplier\": 2}], [\"res_x\", {\"num_layers\": 2}]], "
            "\"timestep_conditioning\": false}";
        ltx2_vae_config_t cfg;
        if (ltx2_vae_config_parse (config, 0, &cfg, &err) || !(ltx = ltx2_vae_new_random (&cfg, b, 1, &err))) {
            fprintf (stderr, "vdgx-bench-cpu: ltx2vae: %s\n", err);
            return 1;
        }
        latent = s_rand (128 * n [0] * n [1] * n [2], 1.0f);
        kind = 5;
    }
    else if (strcmp (item, "vocoder") == 0) {
        if (n [0] != 2 && n [0] != 23)
            s_usage ();
        ltx2_audio_config_t cfg;
        ltx2_audio_config_released (&cfg, n [0] == 23);
        audio = ltx2_audio_new_random (&cfg, 1, b, &err);
        if (!audio) {
            fprintf (stderr, "vdgx-bench-cpu: vocoder: %s\n", err);
            return 1;
        }
        //  a log-mel's range: ln 1e-5 = -11.5 .. ln 10
        int64_t sm [4] = { 1, cfg.out_ch, n [1], cfg.mel_bins };
        s_tensor (b, &t [0], 4, sm, 7.0f);
        kind = 6;
    }
    else {
        vae = wan21_vae_new_random (b, 96, 16, 1, &err);
        if (!vae) {
            fprintf (stderr, "vdgx-bench-cpu: vae: %s\n", err);
            return 1;
        }
        latent = s_rand (16 * n [0] * n [1] * n [2], 1.0f);
        kind = 4;
    }
    for (int r = 0; r <= reps; r++) {
        double t0 = s_now ();
        switch (kind) {
            case 1:
                s_check (b, vdgx_op_linear (b, &t [1], &t [0], &dw, &t [2]), "linear");
                break;
            case 2:
                s_check (b, vdgx_op_attention (b, &t [3], &t [0], &t [1], &t [2], NULL, NULL,
                                               1.0f / sqrtf ((float) n [3])), "attention");
                break;
            case 3: {
                //  the cache keeps 2 frames (the last of x's, after the first run)
                vdgx_tensor_t y = { 0 };
                s_check (b, vdgx_cconv3d (b, &y, &t [0], &t [1], &t [3], &t [2]), "conv3d");
                vdgx_tensor_release (b, &y);
                break;
            }
            case 5:
                if (ltx2_vae_decode (ltx, latent, n [0], n [1], n [2], NULL, s_frame, NULL, &err)) {
                    fprintf (stderr, "vdgx-bench-cpu: ltx2vae decode: %s\n", err);
                    return 1;
                }
                break;
            case 6: {
                float *pcm = NULL;
                int64_t samples = 0;
                if (ltx2_audio_vocode (audio, &t [0], &pcm, &samples, &err)) {
                    fprintf (stderr, "vdgx-bench-cpu: vocoder: %s\n", err);
                    return 1;
                }
                free (pcm);
                break;
            }
            default:
                if (wan21_vae_decode (vae, latent, n [0], n [1], n [2], NULL, s_frame, NULL, &err)) {
                    fprintf (stderr, "vdgx-bench-cpu: vae decode: %s\n", err);
                    return 1;
                }
        }
        if (r > 0)
            printf ("time %.6f\n", s_now () - t0);
    }
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    printf ("peak_rss_mb %.1f\n", ru.ru_maxrss / 1024.0);
    for (int i = 0; i < 4; i++)
        vdgx_tensor_release (b, &t [i]);
    if (dw.data)
        vdgx_weight_release (b, &dw);
    wan21_vae_destroy (&vae);
    ltx2_vae_destroy (&ltx);
    ltx2_audio_destroy (&audio);
    free (latent);
    vdgx_backend_destroy (&b);
    return 0;
}
