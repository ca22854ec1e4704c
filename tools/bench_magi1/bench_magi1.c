/*  bench_magi1.c - vdgx-bench-magi1: MAGI-1's DiT on one chunk, with random weights of the
    real 4.5B (or 24B) widths at reduced depth:
    - one chunk's forward without a cache (the first chunk of a video);
    - one chunk's forward reading a KV cache of `cached` clean chunks, against recomputing
      those chunks in the same forward (what a runtime without a KV cache does);
    - the window forward of the official schedule (window 4 chunks + the cached context) and
      from it the time per finished chunk: num_steps / window window passes per chunk
      (distill: one pass; base cfg 3: two window passes + one pass per chunk alone);
    - KV-cache bytes per chunk, measured on the backend, and computed for the real depths
      and resolutions (4.5B 720x720, 24B 720x1280; bf16).

    vdgx-bench-magi1 [--device cpu|cuda[:N]] [--size 4.5B|24B] [--layers N] [--wfmt bf16|fp8|fp32]
                     [--frames F] [--height H] [--width W] [--cached K] [--reps R]
                     [--hidden D --ffn F --heads H --groups G]   (narrower: smoke tests)

    Latent sizes (--frames, --height, --width) are in latent units (a chunk is 6 latent
    frames = 24 video frames; 720x720 is 90x90). The defaults on the CPU are small
    (1 layer, 6 x 16 x 16, 2 cached chunks): every figure is printed per layer and
    extrapolated linearly to the real depth, and ratios measured in the same run are the
    figures to compare across machines and loads.
*/
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "magi1_dit.h"
#include "vdgx_backend.h"

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: vdgx-bench-magi1 [--device cpu|cuda[:N]] [--size 4.5B|24B] [--layers N]\n"
        "                        [--wfmt bf16|fp8|fp32] [--frames F] [--height H] [--width W]\n"
        "                        [--cached K] [--reps R] [--hidden D --ffn F --heads H --groups G]\n");
}

typedef struct {
    magi1_dit_t *dit;
    const magi1_dit_config_t *c;
    int64_t F, H, W, clip;
    float *x, *y, *mask, *t, *out;
    int reps;
} s_ctx_t;

static double
s_cpu_seconds (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

//  Best of reps of one forward of `chunks` chunks after `cached` cached chunks: wall seconds
//  (returned) and CPU seconds of the process (*cpu; with --device cpu:1 no idle pool thread
//  counts: the figure to compare on a loaded machine).
static double
s_time (s_ctx_t *s, magi1_dit_cache_t *cache, int chunks, int cached, bool fill, double *cpu)
{
    int64_t ranges [2 * 16];
    for (int i = 0; i < chunks; i++) {
        ranges [2 * i] = 0;
        ranges [2 * i + 1] = (int64_t) (cached + i + 1) * s->clip;
    }
    magi1_dit_call_t call = {
        .T = chunks * s->F, .H = s->H, .W = s->W, .chunks = chunks, .t = s->t, .y = s->y,
        .mask = s->mask, .frame_offset = cached * s->F, .cache_rows = cached * s->clip,
        .kv_range = ranges, .write_rows = fill? chunks * s->clip: 0,
    };
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < (fill? 1: s->reps); r++) {
        char *err = NULL;
        int64_t t0 = zclock_usecs ();
        double c0 = s_cpu_seconds ();
        if (magi1_dit_forward (s->dit, cache, s->x, &call, s->out, &err)) {
            fprintf (stderr, "vdgx-bench-magi1: %s\n", err? err: "forward failed");
            exit (1);
        }
        double sec = (zclock_usecs () - t0) / 1e6, cs = s_cpu_seconds () - c0;
        best = sec < best? sec: best;
        best_cpu = cs < best_cpu? cs: best_cpu;
    }
    if (cpu)
        *cpu = best_cpu;
    return best;
}

int
main (int argc, char *argv [])
{
    setvbuf (stdout, NULL, _IOLBF, 0);      //  lines as they come (long CPU runs)
    const char *device = "cpu", *size = "4.5B", *wfmt = NULL;
    int layers = 0, cached = 2, reps = 2;
    int64_t F = 6, H = 0, W = 0, hidden = 0, ffn = 0, heads = 0, groups = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc? argv [i + 1]: NULL;
        if (!v) {
            s_usage ();
            return 2;
        }
        if (strcmp (a, "--device") == 0) device = v;
        else if (strcmp (a, "--size") == 0) size = v;
        else if (strcmp (a, "--wfmt") == 0) wfmt = v;
        else if (strcmp (a, "--layers") == 0) layers = atoi (v);
        else if (strcmp (a, "--frames") == 0) F = atoll (v);
        else if (strcmp (a, "--height") == 0) H = atoll (v);
        else if (strcmp (a, "--width") == 0) W = atoll (v);
        else if (strcmp (a, "--cached") == 0) cached = atoi (v);
        else if (strcmp (a, "--reps") == 0) reps = atoi (v);
        else if (strcmp (a, "--hidden") == 0) hidden = atoll (v);
        else if (strcmp (a, "--ffn") == 0) ffn = atoll (v);
        else if (strcmp (a, "--heads") == 0) heads = atoll (v);
        else if (strcmp (a, "--groups") == 0) groups = atoll (v);
        else {
            s_usage ();
            return 2;
        }
        i++;
    }
    bool big = strcmp (size, "24B") == 0, gpu = strncmp (device, "cuda", 4) == 0;
    if ((!big && strcmp (size, "4.5B")) || F < 1 || cached < 0 || cached > 11 || reps < 1) {
        s_usage ();
        return 2;
    }
    if (!layers)
        layers = gpu? (big? 48: 34): 1;
    if (!H)
        H = gpu? 90: 16;
    if (!W)
        W = gpu? (big? 160: 90): 16;
    if (H % 2 || W % 2 || H < 2 || W < 2) {
        fprintf (stderr, "vdgx-bench-magi1: --height and --width must be even\n");
        return 2;
    }
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new (device, gpu? VDGX_DTYPE_BF16: VDGX_DTYPE_F32, &err);
    if (!b) {
        fprintf (stderr, "vdgx-bench-magi1: %s\n", err? err: "no backend");
        return 1;
    }
    magi1_dit_config_t cfg;
    magi1_dit_config_preset (&cfg, big, layers);
    if (hidden) {
        cfg.hidden = hidden;
        cfg.cond_dim = hidden / 4;
    }
    cfg.ffn = ffn? ffn: cfg.ffn;
    cfg.heads = heads? heads: cfg.heads;
    cfg.groups = groups? groups: cfg.groups;
    int full_layers = big? 48: 34;
    magi1_dit_load_opts_t opts = { .precision = wfmt? wfmt: gpu? "bf16": "fp32" };
    int64_t t0 = zclock_usecs ();
    magi1_dit_t *dit = magi1_dit_new_random (b, &cfg, 7, &opts, &err);
    if (!dit) {
        fprintf (stderr, "vdgx-bench-magi1: %s\n", err? err: "cannot build the model");
        return 1;
    }
    double load_s = (zclock_usecs () - t0) / 1e6;
    const magi1_dit_config_t *c = magi1_dit_config (dit);
    int window = 4, most = cached + window;
    s_ctx_t s = { .dit = dit, .c = c, .F = F, .H = H, .W = W, .clip = F * (H / 2) * (W / 2), .reps = reps };
    size_t xn = (size_t) (c->in_channels * most * F * H * W);
    s.x = malloc (xn * sizeof (float));
    s.out = malloc (xn * sizeof (float));
    s.y = malloc ((size_t) (most * c->caption_len * c->caption_dim) * sizeof (float));
    s.mask = calloc ((size_t) (most * c->caption_len), sizeof (float));
    s.t = malloc ((size_t) most * sizeof (float));
    if (!s.x || !s.out || !s.y || !s.mask || !s.t) {
        fprintf (stderr, "vdgx-bench-magi1: out of memory\n");
        return 1;
    }
    uint64_t seed = 1;
    for (size_t i = 0; i < xn; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        s.x [i] = (float) ((seed >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    for (size_t i = 0; i < (size_t) (most * c->caption_len * c->caption_dim); i++)
        s.y [i] = 0.01f * (float) ((i * 2654435761u) % 201) - 1.0f;
    for (int k = 0; k < most; k++) {
        s.t [k] = 0.2f + 0.15f * (float) k;
        for (int r = 0; r < 60; r++)
            s.mask [k * c->caption_len + r] = 1;
    }
    //  KV cache: bytes on the backend for `cached` + window chunks.
    size_t before = vdgx_backend_bytes_in_use (b);
    magi1_dit_cache_t *cache = magi1_dit_cache_new (dit, (int64_t) (most + 1) * s.clip, &err);
    if (!cache) {
        fprintf (stderr, "vdgx-bench-magi1: %s\n", err? err: "no cache");
        return 1;
    }
    double cache_chunk = (double) (vdgx_backend_bytes_in_use (b) - before) / (most + 1);
    size_t per_token = magi1_dit_cache_bytes_per_token (dit);

    printf ("MAGI-1 %s%s (hidden %lld, %lld/%lld heads, ffn %lld%s), %d of %d layers, %s weights, %s\n",
            size, hidden || ffn || heads || groups? " narrowed": " widths", (long long) c->hidden, (long long) c->heads, (long long) c->groups, (long long) c->ffn,
            c->gated? " SwiGLU": " GELU", layers, full_layers, opts.precision, vdgx_backend_name (b));
    printf ("chunk: %lld latent frames x %lld x %lld = %lld tokens; %d cached chunks; best of %d; "
            "random weights built in %.1f s\n", (long long) F, (long long) H, (long long) W,
            (long long) s.clip, cached, reps, load_s);
    //  The cache holds `cached` clean chunks (written by one forward, not timed).
    if (cached)
        s_time (&s, cache, cached, 0, true, NULL);
    s_time (&s, NULL, 1, 0, false, NULL);       //  warm-up (pool buffers, caches)
    double c_first, c_cached, c_recompute, c_window;
    double t_first = s_time (&s, NULL, 1, 0, false, &c_first);
    double t_cached = cached? s_time (&s, cache, 1, cached, false, &c_cached): t_first;
    double t_recompute = cached? s_time (&s, NULL, cached + 1, 0, false, &c_recompute): t_first;
    double t_window = s_time (&s, cache, window, cached, false, &c_window);
    if (!cached)
        c_cached = c_recompute = c_first;
    double scale = (double) full_layers / layers;
    printf ("%-50s %9s %9s %11s\n", "", "wall", "CPU", "CPU x depth");
    printf ("%-50s %8.3fs %8.3fs %10.2fs\n", "one chunk, no cache (first chunk)", t_first, c_first, c_first * scale);
    printf ("%-50s %8.3fs %8.3fs %10.2fs\n", "one chunk reading the KV cache", t_cached, c_cached, c_cached * scale);
    printf ("%-50s %8.3fs %8.3fs %10.2fs\n", "same chunk, context recomputed (no KV cache)", t_recompute,
            c_recompute, c_recompute * scale);
    printf ("%-50s %8.3fs %8.3fs %10.2fs\n", "window pass (4 chunks after the cached ones)", t_window,
            c_window, c_window * scale);
    printf ("ratios (CPU time): recompute / cached %.2f, window / one chunk cached %.2f\n",
            c_recompute / c_cached, c_window / c_cached);
    //  Per finished chunk in steady state: steps / window passes (plus the single-chunk
    //  uncond passes of cfg 3, about the no-cache forward each).
    int distill_steps = big? 16: 64, base_steps = big? 32: 64;
    double per_distill = (double) distill_steps / window * c_window * scale;
    double per_base = (double) base_steps / window * (2 * c_window + window * c_first) * scale;
    printf ("per finished chunk (steady state, %d layers, CPU s): distill %d steps %.1f; base %d steps (cfg 3) %.1f\n",
            full_layers, distill_steps, per_distill, base_steps, per_base);
    printf ("KV cache: %.0f bytes per chunk on the backend at %d layers (%zu bytes per token, all layers)\n",
            cache_chunk, layers, per_token);
    size_t el = 2;      //  bf16 on a GPU; the real group count whatever the narrowing
    magi1_dit_config_t real;
    magi1_dit_config_preset (&real, big, 0);
    double tok = big? 6.0 * 45 * 80: 6.0 * 45 * 45;
    printf ("KV cache, real: %s %s bf16: %.2f GB per chunk (%.0f tokens x %d layers x k,v x %lld x 128)\n",
            size, big? "720x1280": "720x720",
            tok * full_layers * 2.0 * (double) (real.groups * real.head_dim) * el / 1e9, tok, full_layers,
            (long long) real.groups);
    magi1_dit_cache_destroy (&cache);
    magi1_dit_destroy (&dit);
    free (s.x); free (s.out); free (s.y); free (s.mask); free (s.t);
    vdgx_backend_destroy (&b);
    return 0;
}
