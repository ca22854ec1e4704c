/*  refcheck_ltx2_sampling.c - the LTX-2 (part sampling of `vdgx-refcheck ltx2`) and LTX-2.3
    (part sampling of `vdgx-refcheck ltx23`) schedules and denoising loop against the official
    code's outputs:
    - LTX2Scheduler for every stored case (token counts, stretch off, other shifts and
      terminal), the distilled constants, the one-stage pipeline's schedule;
    - the initial noise (GaussianNoiser on torch's CPU generator, video then audio);
    - the 4-step Euler loop with per-modality CFG (ltx2_sample_run) fed the stored DiT
      velocities: every latent entering a step (LTX-2) and the final latents;
    - the whole one-stage pipeline on the tiny checkpoint: the DiT (ltx2_dit) on the stored
      text contexts (LTX-2: the pipeline's; LTX-2.3: the text vectors' two prompts) for every
      call of the loop, the final latents, the video VAE decode (raw output; LTX-2.3: the
      [0, 1] frames) and the audio decoder + vocoder waveform (LTX-2.3 at 50x atol, as the
      audio part: thread-count rounding alone moves it 3e-3).
*/
#include "refcheck.h"
#include "ltx2_audio.h"
#include "ltx2_dit.h"
#include "ltx2_sample.h"
#include "ltx2_vae.h"
#include "vdgx_flow.h"
#include "vdgx_wsrc.h"

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
    //  With the DiT (the whole pipeline): velocities computed, compared with the stored ones.
    ltx2_dit_t *dit;
    const ltx2_latent_shape_t *sh;
    float *video_pos, *audio_pos, *video_t, *audio_t;
    vdgx_tensor_t ctx_v [2], ctx_a [2];     //  [0] negative, [1] prompt
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
    if (l->dit) {
        for (int64_t i = 0; i < l->sh->video_tokens; i++)
            l->video_t [i] = sigma;
        for (int64_t i = 0; i < l->sh->audio_frames; i++)
            l->audio_t [i] = sigma;
        int c = cond? 1: 0;
        ltx2_dit_step_t st = {
            .batch = 1,
            .video_tokens = l->sh->video_tokens, .video_latent = video, .video_timesteps = l->video_t,
            .video_sigma = &sigma, .video_positions = l->video_pos, .video_context = &l->ctx_v [c],
            .audio_tokens = l->sh->audio_frames, .audio_latent = audio, .audio_timesteps = l->audio_t,
            .audio_sigma = &sigma, .audio_positions = l->audio_pos, .audio_context = &l->ctx_a [c],
            .video_out = video_v, .audio_out = audio_v,
        };
        if (ltx2_dit_forward (l->dit, &st, err))
            return -1;
    }
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
        if (l->dit) {
            char label [128];
            snprintf (label, sizeof label, "DiT %s", name);
            vdgx_refcheck_compare (rc, label, out [m], v, numel);
        }
        else
            memcpy (out [m], v, sizeof (float) * numel);
        free (v);
    }
    l->calls++;
    if (cond)
        l->step++;
    return 0;
}

//  A stored context [1, L, C] or [L, C] as a backend tensor [L, C].
static int
s_context (vdgx_refcheck_t *rc, const char *file, const char *name, vdgx_tensor_t *t)
{
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    float *x = vdgx_refcheck_load (rc, file, name, shape, &ndim, &n);
    if (!x || ndim < 2) {
        free (x);
        s_missing (rc, name);
        return -1;
    }
    const int64_t ts [2] = { shape [ndim - 2], shape [ndim - 1] };
    int r = vdgx_tensor_alloc (rc->backend, t, vdgx_backend_act_dtype (rc->backend), 2, ts)
         || vdgx_tensor_from_f32 (rc->backend, t, x);
    free (x);
    return r? -1: 0;
}

//  The whole pipeline on the tiny checkpoint: DiT calls (compared with the stored velocities
//  in s_stored_velocity) and the final latents they lead to; then the video and audio decode
//  of `final`, the latents of the loop on the stored velocities (what the official decoders
//  were given, to 2e-6). The LTX-2.3 vectors store no pipeline contexts: the text vectors'
//  encodings of the same two prompts stand in, and the DiT velocities agree to 2e-4 (the DiT
//  part itself to 1e-5), so the DiT-driven values are held to 5x the tolerance there.
static void
s_pipeline (vdgx_refcheck_t *rc, bool v2, const float *sigmas, int steps,
            const ltx2_latent_shape_t *sh, int64_t vch, int64_t ach, uint64_t seed, double vcfg,
            double acfg, double fps, const float *final)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/tiny_checkpoint.safetensors", rc->dir);
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
    ltx2_dit_config_t cfg;
    ltx2_dit_t *dit = NULL;
    ltx2_vae_t *vae = NULL;
    ltx2_audio_t *audio = NULL;
    vdgx_wsrc_t *src = NULL;
    size_t vn = (size_t) (sh->video_tokens * vch), an = (size_t) (sh->audio_frames * ach);
    s_loop_t loop;
    memset (&loop, 0, sizeof loop);
    float *x = (float *) malloc (sizeof (float) * (vn + an));
    float *vl = (float *) malloc (sizeof (float) * vn);
    if (!ckpt || ltx2_dit_config_from_ckpt (ckpt, &cfg, &err)
    ||  !(src = vdgx_wsrc_new (ckpt, &ltx2_dit_map, "LTX-2 checkpoint"))
    ||  !(dit = ltx2_dit_new (rc->backend, src, &cfg, rc->gpu? "bf16": "fp32", &err))
    ||  !(vae = ltx2_vae_new_from_ckpt (ckpt, rc->backend, &err))
    ||  !(audio = ltx2_audio_new (ckpt, rc->backend, &err))) {
        printf ("  FAIL pipeline: the tiny checkpoint does not load: %s\n", err? err: "?");
        rc->checks++;
        rc->failures++;
        goto out;
    }
    vdgx_wsrc_destroy (&src);
    printf ("  pipeline on the tiny checkpoint (DiT, video VAE, audio decoder + vocoder):\n");
    loop = (s_loop_t) { rc, v2, vn, an, 0, 0, dit, sh, NULL, NULL, NULL, NULL, { { 0 } }, { { 0 } } };
    loop.video_pos = (float *) malloc ((size_t) sh->video_tokens * 6 * sizeof (float));
    loop.audio_pos = (float *) malloc ((size_t) (sh->audio_frames + 1) * 2 * sizeof (float));
    loop.video_t = (float *) malloc ((size_t) sh->video_tokens * sizeof (float));
    loop.audio_t = (float *) malloc ((size_t) (sh->audio_frames + 1) * sizeof (float));
    ltx2_dit_video_positions (sh->frames, sh->height, sh->width, fps, loop.video_pos);
    ltx2_dit_audio_positions (sh->audio_frames, loop.audio_pos);
    if (!v2) {
        vdgx_refcheck_compare_stored (rc, "pipe.video.positions", loop.video_pos,
                                      (size_t) sh->video_tokens * 6, S_VEC, "pipe.video.positions");
        vdgx_refcheck_compare_stored (rc, "pipe.audio.positions", loop.audio_pos,
                                      (size_t) sh->audio_frames * 2, S_VEC, "pipe.audio.positions");
    }
    //  Contexts: [1] the prompt's, [0] the negative prompt's.
    const char *tf = v2? "vectors_text.safetensors": S_VEC;
    const char *names [4] = { v2? "text.p1.out.video_encoding": "pipe.context.video_neg",
                              v2? "text.p0.out.video_encoding": "pipe.context.video_pos",
                              v2? "text.p1.out.audio_encoding": "pipe.context.audio_neg",
                              v2? "text.p0.out.audio_encoding": "pipe.context.audio_pos" };
    if (s_context (rc, tf, names [0], &loop.ctx_v [0]) || s_context (rc, tf, names [1], &loop.ctx_v [1])
    ||  s_context (rc, tf, names [2], &loop.ctx_a [0]) || s_context (rc, tf, names [3], &loop.ctx_a [1]))
        goto out;
    double atol = rc->atol, rtol = rc->rtol;
    if (v2) {
        rc->atol *= 5;
        rc->rtol *= 5;
    }
    ltx2_sample_noise (seed, x, vn, an);
    ltx2_sample_args_t a = { .video_n = vn, .audio_n = an, .sigmas = sigmas, .steps = steps,
                             .video_cfg = vcfg, .audio_cfg = acfg,
                             .velocity = s_stored_velocity, .ctx = &loop };
    if (ltx2_sample_run (&a, x, &err)) {
        printf ("  FAIL pipeline: the loop stopped: %s\n", err? err: "?");
        rc->checks++;
        rc->failures++;
        goto out;
    }
    ltx2_sample_unpatchify (x, vch, sh->frames, sh->height, sh->width, vl);
    vdgx_refcheck_compare_stored (rc, "pipeline final video latent", vl, vn, S_VEC,
                                  v2? "pipe.final.video_latent": "pipe.vae.in.latent");
    if (v2) {
        float *al = (float *) malloc (sizeof (float) * an);
        int64_t mel = 16, zc = ach / mel, T = sh->audio_frames;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < zc; c++)
                for (int64_t f = 0; f < mel; f++)
                    al [(c * T + t) * mel + f] = x [vn + (size_t) (t * ach + c * mel + f)];
        vdgx_refcheck_compare_stored (rc, "pipeline final audio latent", al, an, S_VEC,
                                      "pipe.final.audio_latent");
        free (al);
    }
    rc->atol = atol;
    rc->rtol = rtol;
    //  The decoders on the official loop's latents.
    memcpy (x, final, sizeof (float) * (vn + an));
    ltx2_sample_unpatchify (x, vch, sh->frames, sh->height, sh->width, vl);
    //  Video: the raw decode (LTX-2, with the stored decode noise) or the [0, 1] frames.
    const ltx2_vae_config_t *vc = ltx2_vae_config (vae);
    int F = (int) (vc->time_scale * (sh->frames - 1) + 1);
    int H = (int) (vc->space_scale * sh->height), W = (int) (vc->space_scale * sh->width);
    size_t pix = (size_t) F * H * W;
    vdgx_refcheck_frames_t fr = { (float *) calloc (3 * pix, sizeof (float)), F, 0, false };
    size_t nn = 0;
    float *noise = v2? NULL: vdgx_refcheck_load (rc, S_VEC, "pipe.vae.noise", NULL, NULL, &nn);
    ltx2_vae_decode_opts_t vo = { .raw = true, .noise = noise };
    int r = ltx2_vae_decode (vae, vl, sh->frames, sh->height, sh->width, &vo,
                             vdgx_refcheck_collect_frame, &fr, &err);
    free (noise);
    rc->checks++;
    if (r || fr.got != F) {
        printf ("  FAIL pipeline video decode: %s\n", err? err: "?");
        rc->failures++;
    }
    else {
        rc->checks--;
        if (!v2)
            vdgx_refcheck_compare_stored (rc, "pipe.vae.out.raw", fr.video, 3 * pix, S_VEC, "pipe.vae.out.raw");
        else {
            //  decode_video: ((x + 1) / 2).clamp(0, 1) as [F, H, W, 3]
            float *f01 = (float *) malloc (3 * pix * sizeof (float));
            for (size_t i = 0; i < pix; i++)
                for (int c = 0; c < 3; c++) {
                    float v = (fr.video [c * pix + i] + 1.0f) / 2.0f;
                    f01 [3 * i + c] = v < 0? 0: v > 1? 1: v;
                }
            vdgx_refcheck_compare_stored (rc, "pipe.video.frames", f01, 3 * pix, S_VEC, "pipe.video.frames");
            free (f01);
        }
    }
    free (fr.video);
    //  Audio: the final tokens through the audio decoder and the vocoder.
    vdgx_tensor_t lat = { 0 };
    const int64_t as [2] = { sh->audio_frames, ach };
    float *pcm = NULL;
    int64_t samples = 0;
    rc->checks++;
    if (vdgx_tensor_alloc (rc->backend, &lat, VDGX_DTYPE_F32, 2, as)
    ||  vdgx_tensor_from_f32 (rc->backend, &lat, x + vn)
    ||  ltx2_audio_decode (audio, &lat, &pcm, &samples, &err)) {
        printf ("  FAIL pipeline audio decode: %s\n", err? err: vdgx_backend_error (rc->backend));
        rc->failures++;
    }
    else {
        rc->checks--;
        float *planar = (float *) malloc ((size_t) samples * 2 * sizeof (float));
        for (int64_t i = 0; i < samples; i++)
            for (int c = 0; c < 2; c++)
                planar [c * samples + i] = pcm [2 * i + c];
        if (v2)
            rc->atol = atol * 50;       //  the 48 kHz waveform: 5e-3 (see the vectors' README)
        vdgx_refcheck_compare_stored (rc, "pipe.audio.waveform", planar, (size_t) samples * 2, S_VEC,
                                      "pipe.audio.waveform");
        rc->atol = atol;
        free (planar);
    }
    vdgx_tensor_release (rc->backend, &lat);
    free (pcm);
out:
    free (err);
    for (int i = 0; i < 2; i++) {
        vdgx_tensor_release (rc->backend, &loop.ctx_v [i]);
        vdgx_tensor_release (rc->backend, &loop.ctx_a [i]);
    }
    free (loop.video_pos);
    free (loop.audio_pos);
    free (loop.video_t);
    free (loop.audio_t);
    free (x);
    free (vl);
    vdgx_wsrc_destroy (&src);
    ltx2_dit_destroy (&dit);
    ltx2_vae_destroy (&vae);
    ltx2_audio_destroy (&audio);
    vdgx_ckpt_destroy (&ckpt);
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
    s_loop_t loop = { .rc = rc, .v2 = v2, .video_n = vn, .audio_n = an };
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
    //  The same run with the DiT, and the decoders on these latents.
    s_pipeline (rc, v2, sigmas, steps, &sh, vch, ach, (uint64_t) seed, vcfg, acfg, fps, x);
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
