/*  magi1_sample_selftest.c - magi1_sample_test: the official step counts of the released
    checkpoints, the special tokens' float16 rounding, the 12-step shortcut schedule (t grid of both shortcut modes against the
    official init_t formula in float64, the distill timestep per denoise step), and a 12-step
    distill run on the tiny 4.5B-style weights ($VDGX_SOURCE_DIR) whose first two forwards
    are recomputed with the distill timesteps 4 and 8; the bounded KV cache (its size per
    window and loop; 12- and 16-chunk videos with eviction against keeping every chunk's rows:
    identical latents, a peak allocation that does not grow with the length). (The base and
    8-step distill loops are pinned by `vdgx-refcheck magi1 DIR --part sampling|sampling_distill`.)
*/
#include "magi1_sample.h"
#include "vdgx_ckpt.h"
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int64_t n;                  //  floats of one chunk
    float *cond [2];            //  step 0, 1 "cond" outputs
    float *x_after0;            //  the latent after step 0
    size_t x_n;
} s_obs_t;

static void
s_observe (void *arg, int step, const char *what, const float *data, size_t n)
{
    s_obs_t *o = arg;
    if (step < 2 && strcmp (what, "cond") == 0) {
        assert (n == (size_t) o->n);
        o->cond [step] = malloc (n * sizeof (float));
        memcpy (o->cond [step], data, n * sizeof (float));
    }
    if (step == 0 && strcmp (what, "x_after") == 0) {
        o->x_after0 = malloc (n * sizeof (float));
        memcpy (o->x_after0, data, n * sizeof (float));
        o->x_n = n;
    }
}

//  One run of the loop on a fresh backend (its peak allocation is the run's): chunks chunks
//  whose noise and captions are the first chunks of the given 16-chunk arrays.
typedef struct {
    float *x;                   //  [C, chunks*F, plane]
    int64_t kv_tokens;
    size_t peak, token_bytes;   //  backend peak; KV bytes per token (all layers, k and v)
} s_run_t;

#define S_LONG 16

static void
s_run (const char *path, const magi1_sched_t *s, int chunks, bool keep_all, const float *noise,
       const float *y, const float *mask, s_run_t *r)
{
    const int64_t C = 16, F = 2, H = 4, W = 4, plane = H * W;
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    magi1_dit_load_opts_t opts = { .precision = "fp32" };
    magi1_dit_t *dit = magi1_dit_open (b, path, &opts, &err);
    assert (dit);
    r->x = malloc (sizeof (float) * (size_t) (C * chunks * F * plane));
    assert (r->x);
    for (int64_t c = 0; c < C; c++)
        memcpy (r->x + c * chunks * F * plane, noise + c * S_LONG * F * plane,
                sizeof (float) * (size_t) (chunks * F * plane));
    magi1_sample_args_t args = {
        .chunks = chunks, .C = C, .F = F, .H = H, .W = W, .y = y, .mask = mask,
        .kv_keep_all = keep_all, .kv_tokens = &r->kv_tokens,
    };
    if (magi1_sample (dit, s, &args, r->x, &err))
        fprintf (stderr, "magi1_sample_test: %s\n", err? err: "?");
    r->peak = vdgx_backend_peak_bytes (b);
    r->token_bytes = magi1_dit_cache_bytes_per_token (dit);
    magi1_dit_destroy (&dit);
    vdgx_backend_destroy (&b);
    free (err);
}

//  The bounded KV cache. Its size in chunks for every window and both loops (the same for any
//  step count, and no longer growing past a few chunks); then the loop on the tiny weights,
//  12 chunks at every window, base and distill: evicting the rows no later step reads gives
//  the latents of keeping every chunk's rows bit for bit; a 16-chunk video allocates exactly
//  what a 12-chunk one does (backend peak), the unbounded layout at least 4 chunks' rows
//  more, and its first chunks are those of the 12-chunk video.
static void
s_bounded_test (const char *path, bool verbose)
{
    magi1_sched_t s;
    for (int cfg = 3; cfg >= 1; cfg -= 2)
        for (int w = 1; w <= 4; w++) {
            int want = cfg == 1 && w >= 3? 6: 5;
            int lcm = w == 3? 12: 4;
            for (int k = 1; k <= 16; k++) {
                magi1_sched_defaults (&s, lcm * k);
                s.window_size = w;
                s.cfg_number = cfg;
                assert (magi1_sample_cache_chunks (&s, 30) == want);
                assert (magi1_sample_cache_chunks (&s, 8) == want);
                for (int n = 1; n < 8; n++) {
                    int got = magi1_sample_cache_chunks (&s, n);
                    assert (got >= 1 && got <= want && got <= n + (cfg == 1? 1: 0));
                }
            }
            if (verbose)
                printf ("\n  cache chunks cfg %d window %d: %d (1 chunk: %d, 2: %d, 3: %d, 4: %d)", cfg, w,
                        want, magi1_sample_cache_chunks (&s, 1), magi1_sample_cache_chunks (&s, 2),
                        magi1_sample_cache_chunks (&s, 3), magi1_sample_cache_chunks (&s, 4));
        }
    magi1_sched_defaults (&s, 6);
    assert (magi1_sample_cache_chunks (&s, 4) == -1);

    const int64_t C = 16, F = 2, H = 4, W = 4, plane = H * W, clip = F * (H / 2) * (W / 2);
    const int64_t len = 800, dim = 32;
    uint64_t rs = 77;
    float *noise = vdgx_test_randv (&rs, (size_t) (C * S_LONG * F * plane), 1.0f);
    float *y = vdgx_test_randv (&rs, (size_t) (S_LONG * len * dim), 1.0f);
    float *mask = calloc ((size_t) (S_LONG * len), sizeof (float));
    for (int i = 0; i < S_LONG; i++)
        for (int r = 0; r < 6 + i % 5; r++)
            mask [i * len + r] = 1;
    const int n = 12;
    for (int cfg = 3; cfg >= 1; cfg -= 2)
        for (int w = 1; w <= 4; w++) {
            magi1_sched_defaults (&s, w == 3? 12: 4);
            s.window_size = w;
            s.cfg_number = cfg;
            s_run_t bounded, every;
            s_run (path, &s, n, false, noise, y, mask, &bounded);
            s_run (path, &s, n, true, noise, y, mask, &every);
            size_t bytes = sizeof (float) * (size_t) (C * n * F * plane);
            assert (bounded.kv_tokens == magi1_sample_cache_chunks (&s, n) * clip);
            assert (every.kv_tokens >= n * clip && every.peak > bounded.peak);
            assert (memcmp (bounded.x, every.x, bytes) == 0);
            for (size_t i = 0; i < bytes / sizeof (float); i++)
                assert (isfinite (bounded.x [i]));
            if (verbose)
                printf ("\n  cfg %d window %d, %d chunks: kv rows %lld (every chunk: %lld), peak %zu / "
                        "%zu bytes, latents identical", cfg, w, n, (long long) bounded.kv_tokens,
                        (long long) every.kv_tokens, bounded.peak, every.peak);
            if (w == 4) {
                //  16 chunks: the same peak bounded; 4 chunks of rows more unbounded; the
                //  chunks finished before the 12-chunk video's end are the same.
                s_run_t longer, longer_every;
                s_run (path, &s, S_LONG, false, noise, y, mask, &longer);
                s_run (path, &s, S_LONG, true, noise, y, mask, &longer_every);
                size_t per_chunk = (size_t) clip * longer.token_bytes;
                if (verbose)
                    printf ("\n  %d chunks: peak %zu bytes (every chunk: %zu)", S_LONG, longer.peak,
                            longer_every.peak);
                assert (longer.peak == bounded.peak && longer.kv_tokens == bounded.kv_tokens);
                assert (longer_every.peak >= every.peak + (S_LONG - n) * per_chunk);
                for (int64_t c = 0; c < C; c++)
                    assert (memcmp (longer.x + c * S_LONG * F * plane, bounded.x + c * n * F * plane,
                                    sizeof (float) * (size_t) ((n - w + 1) * F * plane)) == 0);
                free (longer.x);
                free (longer_every.x);
            }
            free (bounded.x);
            free (every.x);
        }
    free (noise); free (y); free (mask);
}

void
magi1_sample_test (bool verbose)
{
    vdgx_backend_t *b = vdgx_test_begin ("magi1_sample", verbose);
    magi1_sched_t s;
    //  Official configurations.
    const struct { const char *v; int steps, cfg; } off [] = {
        { "4.5B_base", 64, 3 }, { "4.5B_distill", 64, 1 }, { "4.5B_distill_quant", 64, 1 },
        { "24B_base", 32, 3 }, { "24B_distill", 16, 1 }, { "24B_distill_quant", 16, 1 } };
    for (size_t i = 0; i < sizeof (off) / sizeof (off [0]); i++) {
        assert (magi1_sched_official (&s, off [i].v) == 0);
        assert (s.num_steps == off [i].steps && s.cfg_number == off [i].cfg && s.window_size == 4);
    }
    assert (magi1_sched_official (&s, "4.5B_turbo") == -1);

    //  The shortcut grid: init_t with num_steps 12, both modes, in float64.
    for (int mode = 0; mode < 2; mode++) {
        magi1_sched_defaults (&s, 12);
        s.shortcut_16_16_8 = mode;
        float t [13];
        magi1_sched_grid (&s, t);
        const double base [2][3] = { { 0, 0.125, 0.1875 }, { 0, 0.0625, 0.125 } };
        double e = 0;
        for (int i = 0; i <= 12; i++) {
            double v = base [mode][i % 3] + 0.25 * (i / 3);
            v = v * v;
            double want = (1.0 / 3) * v / (1 + (1.0 / 3 - 1) * v);
            e = fmax (e, fabs (t [i] - want));
            assert (i == 0 || t [i] > t [i - 1]);
        }
        assert (e < 1e-6);
        //  Intervals [2, 1, 1] / [1, 1, 2]: distill_dt = 4 / interval * 2.
        for (int idx = 0; idx < 3; idx++)
            assert (magi1_sched_distill_dt_at (&s, idx) == (mode == 0? (idx == 0? 4.0: 8.0): (idx == 2? 4.0: 8.0)));
    }
    magi1_sched_defaults (&s, 16);
    assert (magi1_sched_distill_dt_at (&s, 0) == 8.0 && magi1_sched_distill_dt_at (&s, 3) == 8.0);
    float t8 [9], t8b [9];
    magi1_sched_t_grid (8, t8);
    magi1_sched_defaults (&s, 8);
    magi1_sched_grid (&s, t8b);
    assert (memcmp (t8, t8b, sizeof (t8)) == 0 && fabsf (t8 [4] - 0.1f) < 1e-7f);

    //  Special tokens: float64 other_tokens rounded straight to float16 (not through float32:
    //  1 + 2^-11 + 2^-40 is above the tie and rounds up; 1 + 2^-11 is a tie and goes to even).
    {
        double tok [16 * 4];
        for (int i = 0; i < 64; i++)
            tok [i] = 0.001 * i - 0.02;
        tok [0] = 1.0 + ldexp (1, -11) + ldexp (1, -40);
        tok [1] = 1.0 + ldexp (1, -11);
        tok [2] = 1.0 + 3 * ldexp (1, -11);
        char dir [] = "/tmp/magi1-tok-XXXXXX", file [64];
        assert (mkdtemp (dir));
        snprintf (file, sizeof (file), "%s/special_tokens.safetensors", dir);
        vdgx_ckpt_tensor_t t = { .name = "other_tokens", .dtype = VDGX_DTYPE_F64, .ndim = 2,
                                 .shape = { 16, 4 }, .data = tok, .nbytes = sizeof (tok) };
        char *terr = NULL;
        assert (vdgx_safetensors_write (file, &t, 1, &terr) == 0);
        int64_t count = 0;
        float *other = magi1_special_tokens_load (file, 4, &count, &terr);
        assert (other && count == 16);
        assert (other [0] == 1.0f + ldexpf (1, -10) && other [1] == 1.0f && other [2] == 1.0f + ldexpf (1, -9));
        for (int i = 3; i < 64; i++) {
            uint16_t h;
            vdgx_convert_from_f32 (&h, VDGX_DTYPE_F16, &other [i], 1);
            float back;
            vdgx_convert_to_f32 (&back, &h, VDGX_DTYPE_F16, 1);
            assert (back == other [i] && fabs (other [i] - tok [i]) <= fabs (tok [i]) * ldexp (1, -11) + ldexp (1, -25));
        }
        free (other);
        assert (!magi1_special_tokens_load (file, 8, &count, &terr) && strstr (terr, "other_tokens"));
        free (terr);
        unlink (file);
        rmdir (dir);
    }

    //  A 12-step distill run (2 chunks of 2 frames, 4 x 4): its first forwards use the
    //  distill timesteps 4 (idx 0) and 8 (idx 1).
    const char *srcdir = getenv ("VDGX_SOURCE_DIR");
    assert (srcdir && "VDGX_SOURCE_DIR must name the source tree (ctest sets it)");
    char path [600];
    snprintf (path, sizeof (path), "%s/tests/data/reference/magi1/weights_dit_4.5B.safetensors", srcdir);
    char *err = NULL;
    magi1_dit_load_opts_t opts = { .precision = "fp32" };
    magi1_dit_t *dit = magi1_dit_open (b, path, &opts, &err);
    assert (dit);
    const magi1_dit_config_t *c = magi1_dit_config (dit);
    const int chunks = 2;
    const int64_t C = 16, F = 2, H = 4, W = 4, plane = H * W, len = c->caption_len, dim = c->caption_dim;
    uint64_t rs = 21;
    float *x = vdgx_test_randv (&rs, (size_t) (C * chunks * F * plane), 1.0f);
    float *x0 = malloc (sizeof (float) * (size_t) (C * chunks * F * plane));
    memcpy (x0, x, sizeof (float) * (size_t) (C * chunks * F * plane));
    float *y = vdgx_test_randv (&rs, (size_t) (chunks * len * dim), 1.0f);
    float *mask = calloc ((size_t) (chunks * len), sizeof (float));
    for (int i = 0; i < chunks; i++)
        for (int r = 0; r < 12; r++)
            mask [i * len + r] = 1;
    magi1_sched_defaults (&s, 12);
    s.cfg_number = 1;
    s_obs_t obs = { .n = C * F * plane };
    magi1_sample_args_t args = {
        .chunks = chunks, .C = C, .F = F, .H = H, .W = W, .y = y, .mask = mask,
        .observe = s_observe, .observe_ctx = &obs,
    };
    assert (magi1_sample (dit, &s, &args, x, &err) == 0);
    for (int64_t i = 0; i < C * chunks * F * plane; i++)
        assert (isfinite (x [i]));
    assert (obs.cond [0] && obs.cond [1] && obs.x_after0);
    float grid [13];
    magi1_sched_grid (&s, grid);
    float *xc = malloc (sizeof (float) * (size_t) (C * F * plane));
    float *out = malloc (sizeof (float) * (size_t) (C * F * plane));
    for (int step = 0; step < 2; step++) {
        const float *from = step == 0? x0: obs.x_after0;
        for (int64_t ch = 0; ch < C; ch++)
            memcpy (xc + ch * F * plane, from + ch * chunks * F * plane, sizeof (float) * (size_t) (F * plane));
        double e [2];
        for (int k = 0; k < 2; k++) {
            magi1_dit_call_t call = {
                .T = F, .H = H, .W = W, .chunks = 1, .t = grid + step, .y = y, .mask = mask,
                .distill_dt = k == 0? magi1_sched_distill_dt_at (&s, step): 6.0,
            };
            assert (magi1_dit_forward (dit, NULL, xc, &call, out, &err) == 0);
            e [k] = vdgx_test_errf (obs.cond [step], out, (size_t) (C * F * plane));
        }
        if (verbose)
            printf ("step %d: distill_dt %.0f err %.2e (dt 6: %.2e) ", step,
                    magi1_sched_distill_dt_at (&s, step), e [0], e [1]);
        assert (e [0] < 1e-6 && e [1] > 1e-4);
    }
    free (xc); free (out); free (obs.cond [0]); free (obs.cond [1]); free (obs.x_after0);
    free (x); free (x0); free (y); free (mask); free (err);
    magi1_dit_destroy (&dit);
    s_bounded_test (path, verbose);
    vdgx_test_end (&b);
}
