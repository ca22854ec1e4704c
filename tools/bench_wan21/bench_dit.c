/*  vdgx-bench-dit - seconds per denoising step of the Wan 2.1 DiT.

    vdgx-bench-dit [--model 1.3b|14b] [--width 832] [--height 480] [--frames 81]
                   [--blocks N] [--precision bf16|fp8|fp4|nf4|fp32] [--device cpu|cuda[:N]]
                   [--iters 3] [--peak-tflops X]

    Weights are random (uniform, std 0.02, full width; values do not change the work done). One
    denoising step is two forwards (prompt and negative prompt, CFG). With fewer blocks or a
    smaller video than the real run, the per-block time is extrapolated to the full model in
    two ways: by the achieved FLOP rate (which carries the quadratic attention term) and,
    for reference, linearly per token.

    FLOPs per forward (multiply-add = 2), L tokens, D dim, F ffn, T text_len, per block:
      linears  2 L (4 D^2 [self q,k,v,o] + 2 D^2 [cross q,o] + 2 D F [FFN])
      attention 4 L^2 D (self: QK^T and PV) + 4 L T D (cross)
    plus the patch embedding and head (2 L D (64 + 64)). Cross-attention K/V are computed once
    per prompt, not per step. 1.3B at 832x480x81 (L = 32760): ~0.28 PFLOP per forward.
*/
#include "wan21_dit.h"
#include "vdgx_rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct { double linear, attention, other; } s_flops_t;

static s_flops_t
s_flops (const wan21_dit_config_t *c, int blocks, double L)
{
    double d = c->dim, f = c->ffn_dim, t = c->text_len;
    s_flops_t r;
    r.linear = blocks * 2.0 * L * (6.0 * d * d + 2.0 * d * f);
    r.attention = blocks * (4.0 * L * L * d + 4.0 * L * t * d);
    r.other = 2.0 * L * d * (64.0 + 64.0);
    return r;
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: vdgx-bench-dit [--model 1.3b|14b] [--width W] [--height H] [--frames F]\n"
                     "       [--blocks N] [--precision bf16|fp8|fp4|nf4|fp32] [--device cpu|cuda[:N]]\n"
                     "       [--iters N] [--peak-tflops X]\n");
}

int
main (int argc, char *argv [])
{
    const char *model = "1.3b", *precision = "bf16", *device = "cpu";
    int width = 832, height = 480, frames = 81, blocks = 0, iters = 3;
    double peak_tflops = 0;
    //  Options come in pairs: flag, value.
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv [i], *v = i + 1 < argc? argv [i + 1]: NULL;
        if (!v) {
            s_usage ();
            return 2;
        }
        if (strcmp (a, "--model") == 0) model = v;
        else if (strcmp (a, "--precision") == 0) precision = v;
        else if (strcmp (a, "--device") == 0) device = v;
        else if (strcmp (a, "--width") == 0) width = atoi (v);
        else if (strcmp (a, "--height") == 0) height = atoi (v);
        else if (strcmp (a, "--frames") == 0) frames = atoi (v);
        else if (strcmp (a, "--blocks") == 0) blocks = atoi (v);
        else if (strcmp (a, "--iters") == 0) iters = atoi (v);
        else if (strcmp (a, "--peak-tflops") == 0) peak_tflops = atof (v);
        else {
            s_usage ();
            return 2;
        }
    }
    wan21_dit_config_t cfg;
    if (wan21_dit_config_preset (model, &cfg)) {
        fprintf (stderr, "vdgx-bench-dit: unknown model '%s'\n", model);
        return 2;
    }
    const int full_blocks = cfg.num_layers;
    if (blocks <= 0 || blocks > full_blocks)
        blocks = full_blocks;
    if (iters < 1)
        iters = 1;
    cfg.num_layers = blocks;
    int64_t shape [4];
    char *err = NULL;
    if (wan21_latent_shape (width, height, frames, shape, &err)) {
        fprintf (stderr, "vdgx-bench-dit: %s\n", err);
        free (err);
        return 2;
    }
    bool cpu = strncmp (device, "cpu", 3) == 0;
    vdgx_backend_t *backend = vdgx_backend_new (device, cpu? VDGX_DTYPE_F32: VDGX_DTYPE_BF16, &err);
    if (!backend) {
        fprintf (stderr, "vdgx-bench-dit: device %s: %s\n", device, err? err: "unavailable");
        free (err);
        return 1;
    }
    double t0 = s_now ();
    wan21_dit_t *dit = wan21_dit_new_random (backend, &cfg, precision, 1, &err);
    if (!dit) {
        fprintf (stderr, "vdgx-bench-dit: %s\n", err? err: "cannot build the model");
        free (err);
        vdgx_backend_destroy (&backend);
        return 1;
    }
    double t_load = s_now () - t0;
    int64_t L = shape [1] * (shape [2] / 2) * (shape [3] / 2);
    size_t n = (size_t) (shape [0] * shape [1] * shape [2] * shape [3]);
    float *latent = malloc (n * sizeof (float));
    float *out = malloc (n * sizeof (float));
    float *text = malloc ((size_t) cfg.text_len * cfg.text_dim * sizeof (float));
    if (!latent || !out || !text) {
        fprintf (stderr, "vdgx-bench-dit: out of memory\n");
        return 1;
    }
    vdgx_rng_normal_at (2, 0, latent, n);
    vdgx_rng_normal_at (3, 0, text, (size_t) cfg.text_len * cfg.text_dim);
    wan21_dit_context_t *ctx = wan21_dit_context_new (dit, text, cfg.text_len, &err);
    int rc = ctx? 0: -1;
    //  Warm-up forward: allocates the activation buffers and RoPE tables.
    if (rc == 0)
        rc = wan21_dit_forward (dit, latent, shape [1], shape [2], shape [3], 999, ctx, out, &err);
    double best = 1e30, total = 0;
    for (int i = 0; rc == 0 && i < iters; i++) {
        double s = s_now ();
        rc = wan21_dit_forward (dit, latent, shape [1], shape [2], shape [3], 999 - i, ctx, out, &err);
        double dt = s_now () - s;
        total += dt;
        if (dt < best)
            best = dt;
    }
    if (rc) {
        fprintf (stderr, "vdgx-bench-dit: %s\n", err? err: "forward failed");
        free (err);
        return 1;
    }
    s_flops_t f = s_flops (&cfg, blocks, (double) L);
    double flops = f.linear + f.attention + f.other;
    //  The full run: all blocks at 832x480x81.
    int64_t full_shape [4];
    wan21_latent_shape (832, 480, 81, full_shape, NULL);
    double full_L = (double) (full_shape [1] * (full_shape [2] / 2) * (full_shape [3] / 2));
    s_flops_t ff = s_flops (&cfg, full_blocks, full_L);
    double full_flops = ff.linear + ff.attention + ff.other;
    double rate = flops / best;
    double per_block_token = best / blocks / (double) L;
    wan21_dit_config_t full_cfg = cfg;
    full_cfg.num_layers = full_blocks;
    size_t act = cpu? 4: 2;
    printf ("vdgx-bench-dit: Wan 2.1 %s DiT, %s weights, device %s (act %s)\n", model, precision,
            vdgx_backend_name (backend), cpu? "f32": "bf16");
    printf ("  run: %dx%dx%d frames -> latent %lldx%lldx%lld, %lld tokens, %d of %d blocks, "
            "model built in %.1f s\n", width, height, frames, (long long) shape [1],
            (long long) shape [2], (long long) shape [3], (long long) L, blocks, full_blocks, t_load);
    printf ("  forward: best %.4f s, mean %.4f s over %d; step (2 forwards, CFG): %.4f s\n",
            best, total / iters, iters, 2 * best);
    printf ("  work: %.3f GFLOP per forward (linears %.3f, attention %.3f) -> %.1f GFLOP/s\n",
            flops * 1e-9, f.linear * 1e-9, f.attention * 1e-9, rate * 1e-9);
    printf ("  per block per token: %.3f us\n", per_block_token * 1e6);
    printf ("  full run 832x480x81 (%.0f tokens, %d blocks): %.3f PFLOP per forward "
            "(linears %.3f, attention %.3f), %.3f PFLOP per step\n", full_L, full_blocks,
            full_flops * 1e-15, ff.linear * 1e-15, ff.attention * 1e-15, 2 * full_flops * 1e-15);
    printf ("  extrapolated step at the achieved %.1f GFLOP/s: %.1f s; linear per-token "
            "extrapolation (ignores L^2 attention): %.1f s\n", rate * 1e-9, 2 * full_flops / rate,
            2 * per_block_token * full_blocks * full_L);
    if (peak_tflops > 0)
        printf ("  FLOP floor at %.0f TFLOP/s: %.3f s per step\n", peak_tflops,
                2 * full_flops / (peak_tflops * 1e12));
    printf ("  memory: backend peak %.1f MiB this run; estimate for the full run %.2f GiB "
            "(weights %.2f GiB)\n", vdgx_backend_peak_bytes (backend) / 1048576.0,
            wan21_dit_memory_estimate (&full_cfg, precision, (int64_t) full_L, act) / 1073741824.0,
            wan21_dit_memory_estimate (&full_cfg, precision, 0, act) / 1073741824.0);
    wan21_dit_context_destroy (dit, &ctx);
    wan21_dit_destroy (&dit);
    vdgx_backend_destroy (&backend);
    free (latent);
    free (out);
    free (text);
    return 0;
}
