/*  refcheck_ltx2_sampling.c - the LTX-2 (part sampling of `vdgx-refcheck ltx2`) and LTX-2.3
    (part sampling of `vdgx-refcheck ltx23`) schedules and denoising loop against the official
    code's outputs:
    - LTX2Scheduler for every stored case (token counts, stretch off, other shifts and
      terminal), the distilled constants, the one-stage pipeline's schedule;
    - the initial noise (GaussianNoiser on torch's CPU generator, video then audio);
    - the 4-step Euler loop with per-modality CFG (ltx2_sample_run) fed the stored DiT
      velocities: every latent entering a step (LTX-2) and the final latents.
*/
#include "refcheck.h"
#include "ltx2_sample.h"
#include "vdgx_flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_sampling.safetensors"

//  Counts a check that could not be made (a missing tensor) as a failure.
static void
s_missing (vdgx_refcheck_t *rc, const char *what)
{
    printf ("  FAIL %-44s not in %s\n", what, S_VEC);
    rc->checks++;
    rc->failures++;
}

static double
s_num (json_t *obj, const char *key, double dflt)
{
    json_t *v = obj? json_object_get (obj, key): NULL;
    return json_is_number (v)? json_number_value (v): dflt;
}

//  Every stored LTX2Scheduler case: steps, the token count (the latent's, else 4096) and
//  the keyword arguments (stretch, terminal, max_shift, base_shift).
static void
s_check_schedules (vdgx_refcheck_t *rc, json_t *cases)
{
    size_t i;
    json_t *c;
    json_array_foreach (cases, i, c) {
        int steps = (int) s_num (c, "steps", 0);
        json_t *shape = json_object_get (c, "latent_shape");
        int64_t tokens = 4096;
        if (json_is_array (shape)) {
            tokens = 1;
            for (size_t d = 2; d < json_array_size (shape); d++)
                tokens *= (int64_t) json_integer_value (json_array_get (shape, d));
        }
        json_t *kw = json_object_get (c, "kwargs");
        bool stretch = !json_is_false (json_object_get (kw, "stretch"));
        double terminal = s_num (kw, "terminal", 0.1);
        double max_shift = s_num (kw, "max_shift", 2.05), base_shift = s_num (kw, "base_shift", 0.95);
        if (steps < 1 || steps > 1000) {
            s_missing (rc, "a schedule case's steps");
            continue;
        }
        float *got = (float *) malloc (sizeof (float) * (size_t) (steps + 1));
        vdgx_flow_ltx_sigmas (steps, tokens, base_shift, max_shift, stretch? terminal: 0.0, got);
        char name [64];
        snprintf (name, sizeof name, "sched.case%zu.sigmas", i);
        vdgx_refcheck_compare_stored (rc, name, got, (size_t) steps + 1, S_VEC, name);
        free (got);
    }
}

typedef struct {
    vdgx_refcheck_t *rc;
    bool v2;                    //  LTX-2.3 vectors: per-call velocities only
    size_t video_n, audio_n;
    int step;                   //  the step the next call belongs to
    int calls;
} s_loop_t;

//  The stored velocity of this call; with the LTX-2 vectors also checks the latents and
//  timesteps entering the step (on its first call).
static int
s_stored_velocity (void *ctx, bool cond, const float *video, const float *audio, float sigma,
                   float *video_v, float *audio_v, char **err)
{
    s_loop_t *l = (s_loop_t *) ctx;
    vdgx_refcheck_t *rc = l->rc;
    char name [96];
    int k = l->step;
    if (!l->v2 && !cond) {      //  the step's first call (uncond runs first here)
        const float *x [2] = { video, audio };
        size_t n [2] = { l->video_n, l->audio_n };
        for (int m = 0; m < 2; m++) {
            snprintf (name, sizeof name, "pipe.step%d.%s.latent", k, m? "audio": "video");
            vdgx_refcheck_compare_stored (rc, name, x [m], n [m], S_VEC, name);
            size_t tokens = 0;
            snprintf (name, sizeof name, "pipe.step%d.%s.timesteps", k, m? "audio": "video");
            float *want = vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &tokens);
            if (want) {
                float *got = (float *) malloc (sizeof (float) * (tokens? tokens: 1));
                for (size_t i = 0; i < tokens; i++)
                    got [i] = sigma;
                vdgx_refcheck_compare (rc, name, got, want, tokens);
                free (got);
                free (want);
            }
        }
    }
    float *out [2] = { video_v, audio_v };
    size_t n [2] = { l->video_n, l->audio_n };
    for (int m = 0; m < 2; m++) {
        if (l->v2)              //  official order: cond, then uncond
            snprintf (name, sizeof name, "pipe.call%d.%s.velocity", 2 * k + (cond? 0: 1),
                      m? "audio": "video");
        else
            snprintf (name, sizeof name, "pipe.step%d.%s.%s.velocity", k, cond? "cond": "uncond",
                      m? "audio": "video");
        size_t numel = 0;
        float *v = vdgx_refcheck_load (rc, S_VEC, name, NULL, NULL, &numel);
        if (!v || numel != n [m]) {
            free (v);
            *err = strdup (name);
            return -1;
        }
        memcpy (out [m], v, sizeof (float) * numel);
        free (v);
    }
    l->calls++;
    if (cond)
        l->step++;
    return 0;
}

static int
s_sampling (vdgx_refcheck_t *rc, bool v2)
{
    json_t *configs = json_object_get (rc->manifest, "configs");
    json_t *pipe = json_object_get (configs, "pipeline");
    json_t *cases = v2? json_object_get (json_object_get (configs, "info"), "schedules")
                      : json_object_get (configs, "schedules");
    if (!json_is_object (pipe) || !json_is_array (cases)) {
        printf ("  manifest.json has no configs.pipeline / schedules\n");
        return -1;
    }
    if (!vdgx_refcheck_file (rc, S_VEC))
        return -1;
    //  Schedules.
    s_check_schedules (rc, cases);
    vdgx_refcheck_compare_stored (rc, "distilled sigmas", ltx2_distilled_sigmas,
                                  LTX2_DISTILLED_STEPS + 1, S_VEC,
                                  v2? "sched.DISTILLED_SIGMA_VALUES": "sched.distilled");
    vdgx_refcheck_compare_stored (rc, "stage-2 distilled sigmas", ltx2_stage2_distilled_sigmas, 4,
                                  S_VEC, v2? "sched.STAGE_2_DISTILLED_SIGMA_VALUES"
                                           : "sched.stage2_distilled");
    int steps = (int) s_num (pipe, v2? "steps": "num_inference_steps", 0);
    float sigmas [64];
    char *err = NULL;
    if (steps < 1 || steps > 63 || ltx2_sample_sigmas (LTX2_SCHEDULE_DEV, steps, sigmas, &err)) {
        printf ("  bad pipeline steps %d: %s\n", steps, err? err: "");
        free (err);
        return -1;
    }
    vdgx_refcheck_compare_stored (rc, "pipe.sigmas", sigmas, (size_t) steps + 1, S_VEC, "pipe.sigmas");

    //  Sizes from the request, checked against the stored velocities' shapes.
    int width = (int) s_num (pipe, "width", 0), height = (int) s_num (pipe, "height", 0);
    int frames = (int) s_num (pipe, "num_frames", 0);
    double fps = s_num (pipe, "frame_rate", 24.0);
    ltx2_latent_shape_t sh;
    ltx2_sample_shape (width, height, frames, fps, &sh);
    const char *vname = v2? "pipe.call0.video.velocity": "pipe.step0.cond.video.velocity";
    const char *aname = v2? "pipe.call0.audio.velocity": "pipe.step0.cond.audio.velocity";
    vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
    const vdgx_ckpt_tensor_t *vt = vdgx_ckpt_find (vec, vname), *at = vdgx_ckpt_find (vec, aname);
    if (!vt || !at || vt->ndim != 3 || at->ndim != 3) {
        s_missing (rc, vname);
        return -1;
    }
    rc->checks++;
    if (vt->shape [1] != sh.video_tokens || at->shape [1] != sh.audio_frames) {
        printf ("  FAIL latent sizes: %lld video tokens, %lld audio frames; stored %lld, %lld\n",
                (long long) sh.video_tokens, (long long) sh.audio_frames,
                (long long) vt->shape [1], (long long) at->shape [1]);
        rc->failures++;
        return 0;
    }
    printf ("  PASS latent sizes: %lld video tokens (%lldx%lldx%lld), %lld audio frames\n",
            (long long) sh.video_tokens, (long long) sh.frames, (long long) sh.height,
            (long long) sh.width, (long long) sh.audio_frames);
    int64_t vch = vt->shape [2], ach = at->shape [2];
    size_t vn = (size_t) (sh.video_tokens * vch), an = (size_t) (sh.audio_frames * ach);

    //  Noise, then the loop on the stored velocities.
    double seed = s_num (pipe, "seed", 0);
    float *x = (float *) malloc (sizeof (float) * (vn + an));
    ltx2_sample_noise ((uint64_t) seed, x, vn, an);
    //  (the LTX-2 set checks the noise as step 0's latent; LTX-2.3 through the final latents)
    double vcfg = s_num (pipe, v2? "video_cfg": "cfg_guidance_scale", 1.0);
    double acfg = s_num (pipe, v2? "audio_cfg": "cfg_guidance_scale", 1.0);
    s_loop_t loop = { rc, v2, vn, an, 0, 0 };
    ltx2_sample_args_t a = { .video_n = vn, .audio_n = an, .sigmas = sigmas, .steps = steps,
                             .video_cfg = vcfg, .audio_cfg = acfg,
                             .velocity = s_stored_velocity, .ctx = &loop };
    if (ltx2_sample_run (&a, x, &err)) {
        printf ("  FAIL the loop stopped: %s\n", err? err: "?");
        rc->checks++;
        rc->failures++;
        free (err);
        free (x);
        return 0;
    }
    rc->checks++;
    int want_calls = (int) s_num (pipe, "dit_calls", s_num (json_object_get (configs, "info"),
                                                            "pipeline_dit_calls", 0));
    printf ("  %s DiT calls: %d (the official loop: %d)\n", loop.calls == want_calls? "PASS": "FAIL",
            loop.calls, want_calls);
    rc->failures += loop.calls != want_calls;
    //  Final latents: video tokens unpatchified to [C, F, H, W]; audio tokens [T, c*16 + f]
    //  to [c, T, f].
    float *vl = (float *) malloc (sizeof (float) * vn);
    ltx2_sample_unpatchify (x, vch, sh.frames, sh.height, sh.width, vl);
    vdgx_refcheck_compare_stored (rc, "final video latent", vl, vn, S_VEC,
                                  v2? "pipe.final.video_latent": "pipe.vae.in.latent");
    if (v2) {
        int64_t mel = 16, zc = ach / mel, T = sh.audio_frames;
        float *al = (float *) malloc (sizeof (float) * an);
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < zc; c++)
                for (int64_t f = 0; f < mel; f++)
                    al [(c * T + t) * mel + f] = x [vn + (size_t) (t * ach + c * mel + f)];
        vdgx_refcheck_compare_stored (rc, "final audio latent", al, an, S_VEC,
                                      "pipe.final.audio_latent");
        free (al);
    }
    free (vl);
    free (x);
    return 0;
}

int
vdgx_refcheck_ltx2_sampling (vdgx_refcheck_t *rc)
{
    return s_sampling (rc, false);
}

int
vdgx_refcheck_ltx23_sampling (vdgx_refcheck_t *rc)
{
    return s_sampling (rc, true);
}
