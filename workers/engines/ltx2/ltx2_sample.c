/*  ltx2_sample.c - the LTX-2 / LTX-2.3 denoising loop (see ltx2_sample.h). */
#include "ltx2_sample.h"
#include "vdgx_flow.h"
#include "vdgx_guide.h"
#include "vdgx_torchrng.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const float ltx2_distilled_sigmas [LTX2_DISTILLED_STEPS + 1] = {
    1.0f, 0.99375f, 0.9875f, 0.98125f, 0.975f, 0.909375f, 0.725f, 0.421875f, 0.0f
};
const float ltx2_stage2_distilled_sigmas [4] = { 0.909375f, 0.725f, 0.421875f, 0.0f };

//  The official pipelines call LTX2Scheduler without a latent: MAX_SHIFT_ANCHOR tokens.
#define S_PIPELINE_TOKENS 4096

static void
s_set_error (char **err, const char *text)
{
    if (err && !*err)
        *err = strdup (text);
}

int
ltx2_sample_sigmas (ltx2_schedule_t kind, int steps, float *sigmas, char **err)
{
    assert (sigmas);
    if (kind == LTX2_SCHEDULE_DISTILLED) {
        if (steps != LTX2_DISTILLED_STEPS) {
            s_set_error (err, "ltx2: the distilled schedule has exactly 8 steps");
            return -1;
        }
        memcpy (sigmas, ltx2_distilled_sigmas, sizeof ltx2_distilled_sigmas);
        return 0;
    }
    if (steps < 1 || steps > 1000) {
        s_set_error (err, "ltx2: steps must be within 1..1000");
        return -1;
    }
    vdgx_flow_ltx_sigmas (steps, S_PIPELINE_TOKENS, 0.95, 2.05, 0.1, sigmas);
    return 0;
}

void
ltx2_sample_shape (int width, int height, int frames, double fps, ltx2_latent_shape_t *shape)
{
    assert (shape && fps > 0);
    shape->frames = (frames - 1) / 8 + 1;
    shape->height = height / 32;
    shape->width = width / 32;
    shape->video_tokens = shape->frames * shape->height * shape->width;
    //  Python's round(): halves to even, as nearbyint in the default rounding mode.
    double duration = (double) frames / fps;
    shape->audio_frames = (int64_t) nearbyint (duration * 25.0);
}

void
ltx2_sample_noise (uint64_t seed, float *x, size_t video_n, size_t audio_n)
{
    vdgx_torchrng_t *rng = vdgx_torchrng_new (seed);
    assert (rng);
    vdgx_torchrng_randn (rng, x, video_n);
    vdgx_torchrng_randn (rng, x + video_n, audio_n);
    vdgx_torchrng_destroy (&rng);
}

//  The guide's callback: branch 0 is the negative prompt (uncond), branch 1 the prompt.
typedef struct {
    const ltx2_sample_args_t *a;
} s_loop_t;

static int
s_velocity (void *ctx, int branch, const float *x, int64_t t, float sigma, float *v, char **err)
{
    s_loop_t *loop = (s_loop_t *) ctx;
    const ltx2_sample_args_t *a = loop->a;
    (void) t;
    //  With a single branch (no guidance) the one call is the prompt's.
    bool cond = branch == 1 || (a->video_cfg == 1.0 && a->audio_cfg == 1.0);
    return a->velocity (a->ctx, cond, x, x + a->video_n, sigma, v, v + a->video_n, err);
}

int
ltx2_sample_run (const ltx2_sample_args_t *a, float *x, char **err)
{
    assert (a && x && a->velocity && a->sigmas);
    size_t n = a->video_n + a->audio_n;
    vdgx_flow_t *sched = vdgx_flow_new_sigmas (VDGX_SOLVER_EULER, a->steps, a->sigmas, NULL, n, err);
    if (!sched)
        return -1;
    s_loop_t loop = { a };
    vdgx_guide_t g = { .velocity = s_velocity, .ctx = &loop, .progress = a->progress,
                       .cb_ctx = a->ctx, .cancel = a->cancel };
    vdgx_guide_cfg2 (&g, a->video_cfg, a->video_n, a->audio_cfg);
    int rc = vdgx_guide_run (&g, sched, x, n, err);
    vdgx_flow_destroy (&sched);
    return rc == VDGX_GUIDE_CANCELLED? -2: rc;
}

void
ltx2_sample_unpatchify (const float *tokens, int64_t channels, int64_t frames, int64_t height,
                        int64_t width, float *latent)
{
    int64_t n = frames * height * width;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < channels; c++)
            latent [c * n + i] = tokens [i * channels + c];
}

//  ---------------------------------------------------------------------------------------
//  Selftest

//  A linear "model": v = x * (cond? 0.5: -0.25) + sigma, counting calls.
typedef struct {
    int cond_calls, uncond_calls;
} s_toy_t;

static int
s_toy_velocity (void *ctx, bool cond, const float *video, const float *audio, float sigma,
                float *video_v, float *audio_v, char **err)
{
    s_toy_t *toy = (s_toy_t *) ctx;
    (void) err;
    *(cond? &toy->cond_calls: &toy->uncond_calls) += 1;
    float k = cond? 0.5f: -0.25f;
    video_v [0] = video [0] * k + sigma;
    audio_v [0] = audio [0] * k + sigma;
    audio_v [1] = audio [1] * k + sigma;
    return 0;
}

void
ltx2_sample_test (bool verbose)
{
    printf (" * ltx2_sample: ");
    (void) verbose;
    char *err = NULL;
    //  Schedules: the dev schedule starts (almost exactly) at 1 and ends 0.1, 0; the distilled
    //  one is the constant and refuses other step counts.
    float s [41];
    assert (ltx2_sample_sigmas (LTX2_SCHEDULE_DEV, 40, s, &err) == 0);
    assert (fabsf (s [0] - 1.0f) < 1e-6f && fabsf (s [39] - 0.1f) < 1e-6f && s [40] == 0.0f);
    for (int i = 0; i < 40; i++)
        assert (s [i + 1] < s [i]);
    assert (ltx2_sample_sigmas (LTX2_SCHEDULE_DISTILLED, 8, s, &err) == 0);
    assert (s [5] == 0.909375f && s [8] == 0.0f);
    assert (ltx2_sample_sigmas (LTX2_SCHEDULE_DISTILLED, 7, s, &err) == -1 && err);
    free (err);
    err = NULL;
    //  Latent sizes: 768x512x121 at 24 fps is 16 x 16 x 24 video tokens, 126 audio frames;
    //  9 frames at 12 fps gives 19 audio frames (18.75 rounded), 0.5 rounds to even.
    ltx2_latent_shape_t sh;
    ltx2_sample_shape (768, 512, 121, 24.0, &sh);
    assert (sh.frames == 16 && sh.height == 16 && sh.width == 24 && sh.video_tokens == 6144);
    assert (sh.audio_frames == 126);
    ltx2_sample_shape (96, 64, 9, 12.0, &sh);
    assert (sh.frames == 2 && sh.height == 2 && sh.width == 3 && sh.audio_frames == 19);
    ltx2_sample_shape (32, 32, 1, 50.0, &sh);
    assert (sh.audio_frames == 0);
    //  Noise: video first, then audio, one torch stream.
    float both [5], alone [5];
    ltx2_sample_noise (7, both, 2, 3);
    vdgx_torchrng_t *rng = vdgx_torchrng_new (7);
    vdgx_torchrng_randn (rng, alone, 2);
    vdgx_torchrng_randn (rng, alone + 2, 3);
    vdgx_torchrng_destroy (&rng);
    assert (memcmp (both, alone, sizeof both) == 0);
    //  The loop: per-modality guidance against a hand-written Euler loop.
    float x [3] = { 1.0f, -0.5f, 2.0f }, want [3];
    memcpy (want, x, sizeof x);
    float sig [5];
    ltx2_sample_sigmas (LTX2_SCHEDULE_DEV, 4, sig, NULL);
    s_toy_t toy = { 0, 0 };
    ltx2_sample_args_t a = { .video_n = 1, .audio_n = 2, .sigmas = sig, .steps = 4,
                             .video_cfg = 4.0, .audio_cfg = 3.0, .velocity = s_toy_velocity,
                             .ctx = &toy };
    assert (ltx2_sample_run (&a, x, &err) == 0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            float c = want [j] * 0.5f + sig [i], u = want [j] * -0.25f + sig [i];
            float scale = j? 3.0f: 4.0f;
            want [j] += (sig [i + 1] - sig [i]) * (c + (scale - 1.0f) * (c - u));
        }
    for (int j = 0; j < 3; j++)
        assert (fabsf (x [j] - want [j]) < 1e-5f);
    assert (toy.cond_calls == 4 && toy.uncond_calls == 4);
    //  No guidance: one (cond) call per step.
    toy.cond_calls = toy.uncond_calls = 0;
    a.video_cfg = a.audio_cfg = 1.0;
    assert (ltx2_sample_run (&a, x, &err) == 0);
    assert (toy.cond_calls == 4 && toy.uncond_calls == 0);
    //  Unpatchify: token i, channel c -> [c][i].
    float tok [6] = { 0, 1, 2, 3, 4, 5 }, lat [6];
    ltx2_sample_unpatchify (tok, 2, 1, 1, 3, lat);
    assert (lat [0] == 0 && lat [1] == 2 && lat [2] == 4 && lat [3] == 1 && lat [5] == 5);
    printf ("OK\n");
}
