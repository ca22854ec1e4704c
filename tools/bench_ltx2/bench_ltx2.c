/*  vdgx-bench-ltx2 - the LTX-2.3 22B pieces at full width with random weights, timed on a
    backend: one DiT forward (both streams, batch 1) at reduced depth, and the audio decoder +
    vocoder (+ bandwidth extension), for docs/PERFORMANCE.md.

    vdgx-bench-ltx2 [--device cpu|cpu:N|cuda:N] [--precision bf16|fp8|fp4|fp32] [--layers N]
                    [--size WxHxF] [--fps N] [--context N] [--reps N] dit|audio
      dit    one DiT call at the request's latent sizes (768x512x121 at 24 fps: 6144 video
             tokens, 126 audio tokens; 1024 context tokens), N of the 48 blocks; prints the
             time per call and per block, and the 48-block step it implies.
      audio  the audio VAE decoder and the 48 kHz vocoder with its bandwidth extension for the
             request's duration (126 latent frames for 121 frames at 24 fps).
    The configurations are the real 22B ones (ltx2_dit_config_preset "22b"; the audio VAE and
    vocoder config of the real file as reported), the weights random (ltx2_dit_new on a random
    vdgx_wsrc, ltx2_audio_new_random): timing ignores the values.
*/
#include "ltx2_audio.h"
#include "ltx2_dit.h"
#include "ltx2_sample.h"
#include "vdgx_backend.h"
#include "vdgx_wsrc.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

//  The real LTX-2.3 audio VAE and vocoder sections (real_checkpoint_layout.json's config).
static const char *s_audio_config =
    "{\"audio_vae\": {\"model\": {\"params\": {\"sampling_rate\": 16000, \"ddconfig\": {\"ch\": 128,"
    " \"out_ch\": 2, \"ch_mult\": [1, 2, 4], \"num_res_blocks\": 2, \"attn_resolutions\": [],"
    " \"resolution\": 256, \"z_channels\": 8, \"norm_type\": \"pixel\", \"causality_axis\": \"height\","
    " \"dropout\": 0.0, \"mid_block_add_attention\": false, \"mel_bins\": 64, \"double_z\": true,"
    " \"in_channels\": 2}}}, \"preprocessing\": {\"stft\": {\"hop_length\": 160, \"causal\": true,"
    " \"filter_length\": 1024}, \"mel\": {\"n_mel_channels\": 64}}},"
    " \"vocoder\": {\"vocoder\": {\"upsample_initial_channel\": 1536, \"resblock\": \"AMP1\","
    " \"upsample_rates\": [5, 2, 2, 2, 2, 2], \"resblock_kernel_sizes\": [3, 7, 11],"
    " \"upsample_kernel_sizes\": [11, 4, 4, 4, 4, 4], \"resblock_dilation_sizes\": [[1, 3, 5],"
    " [1, 3, 5], [1, 3, 5]], \"stereo\": true, \"use_tanh_at_final\": false, \"activation\": \"snakebeta\","
    " \"use_bias_at_final\": false}, \"bwe\": {\"upsample_initial_channel\": 512, \"resblock\": \"AMP1\","
    " \"upsample_rates\": [6, 5, 2, 2, 2], \"resblock_kernel_sizes\": [3, 7, 11],"
    " \"upsample_kernel_sizes\": [12, 11, 4, 4, 4], \"resblock_dilation_sizes\": [[1, 3, 5], [1, 3, 5],"
    " [1, 3, 5]], \"stereo\": true, \"use_tanh_at_final\": false, \"activation\": \"snakebeta\","
    " \"use_bias_at_final\": false, \"apply_final_activation\": false, \"input_sampling_rate\": 16000,"
    " \"output_sampling_rate\": 48000, \"hop_length\": 80, \"n_fft\": 512, \"win_size\": 512,"
    " \"num_mels\": 64}}}";

static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

//  CPU seconds of this process (all threads): on a shared machine the wall time also counts
//  the time other processes held the cores; CPU time / threads is what an idle host would take.
static double
s_cpu (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: vdgx-bench-ltx2 [--device D] [--precision bf16|fp8|fp4|fp32] [--layers N]\n"
        "                       [--size WxHxF] [--fps N] [--context N] [--reps N] dit|audio\n");
}

//  Random host floats (timing ignores the values).
static float *
s_random (size_t n, uint32_t seed)
{
    float *x = (float *) malloc ((n? n: 1) * sizeof (float));
    for (size_t i = 0; x && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x [i] = (float) (seed >> 8) / 16777216.0f - 0.5f;
    }
    return x;
}

static int
s_dit (vdgx_backend_t *b, const char *precision, int layers, const ltx2_latent_shape_t *sh,
       double fps, int ctx_len, int reps)
{
    ltx2_dit_config_t cfg;
    if (ltx2_dit_config_preset ("22b", &cfg))
        return 1;
    cfg.layers = layers;
    char *err = NULL;
    vdgx_wsrc_t *src = vdgx_wsrc_new_random (1, "bench");
    double t0 = s_now ();
    ltx2_dit_t *dit = ltx2_dit_new (b, src, &cfg, strcmp (precision, "fp4") == 0? "nvfp4": precision, &err);
    vdgx_wsrc_destroy (&src);
    if (!dit) {
        fprintf (stderr, "vdgx-bench-ltx2: %s\n", err? err: "no DiT");
        free (err);
        return 1;
    }
    printf ("dit: LTX-2.3 22B width, %d of 48 blocks, %s block weights (%.2f GB on the backend), "
            "built in %.1f s\n", layers, precision, ltx2_dit_bytes (dit) / 1e9, s_now () - t0);
    int64_t nv = sh->video_tokens, na = sh->audio_frames;
    int64_t vdim = cfg.cross_attention_dim, adim = cfg.audio_cross_attention_dim;
    float *vx = s_random ((size_t) (nv * cfg.in_channels), 1), *ax = s_random ((size_t) (na * cfg.audio_in_channels), 2);
    float *vt = (float *) malloc ((size_t) nv * sizeof (float)), *at = (float *) malloc ((size_t) (na + 1) * sizeof (float));
    float *vpos = (float *) malloc ((size_t) nv * 6 * sizeof (float)), *apos = (float *) malloc ((size_t) (na + 1) * 2 * sizeof (float));
    float *vout = (float *) malloc ((size_t) (nv * cfg.out_channels) * sizeof (float));
    float *aout = (float *) malloc ((size_t) ((na + 1) * cfg.audio_out_channels) * sizeof (float));
    float *vc = s_random ((size_t) (ctx_len * vdim), 3), *ac = s_random ((size_t) (ctx_len * adim), 4);
    float sigma = 0.7f;
    for (int64_t i = 0; i < nv; i++)
        vt [i] = sigma;
    for (int64_t i = 0; i < na; i++)
        at [i] = sigma;
    ltx2_dit_video_positions (sh->frames, sh->height, sh->width, fps, vpos);
    ltx2_dit_audio_positions (na, apos);
    vdgx_tensor_t vctx = { 0 }, actx = { 0 };
    const int64_t vs [2] = { ctx_len, vdim }, as [2] = { ctx_len, adim };
    int rc = 1;
    if (vdgx_tensor_alloc (b, &vctx, vdgx_backend_act_dtype (b), 2, vs) || vdgx_tensor_from_f32 (b, &vctx, vc)
    ||  vdgx_tensor_alloc (b, &actx, vdgx_backend_act_dtype (b), 2, as) || vdgx_tensor_from_f32 (b, &actx, ac)) {
        fprintf (stderr, "vdgx-bench-ltx2: contexts: %s\n", vdgx_backend_error (b));
        goto done;
    }
    ltx2_dit_step_t st = {
        .batch = 1, .video_tokens = nv, .video_latent = vx, .video_timesteps = vt,
        .video_sigma = &sigma, .video_positions = vpos, .video_context = &vctx,
        .audio_tokens = na, .audio_latent = ax, .audio_timesteps = at, .audio_sigma = &sigma,
        .audio_positions = apos, .audio_context = &actx, .video_out = vout, .audio_out = aout,
    };
    double best = 1e30, cpu = 0;
    for (int r = 0; r < reps; r++) {
        double t = s_now (), c = s_cpu ();
        if (ltx2_dit_forward (dit, &st, &err)) {
            fprintf (stderr, "vdgx-bench-ltx2: forward: %s\n", err? err: "?");
            free (err);
            goto done;
        }
        t = s_now () - t;
        if (t < best) {
            best = t;
            cpu = s_cpu () - c;
        }
    }
    printf ("dit: %lld video + %lld audio tokens, %d context: %.3f s per call (%.1f CPU s), "
            "%.3f s per block; 48 blocks: %.1f s per DiT call\n", (long long) nv, (long long) na,
            ctx_len, best, cpu, best / layers, best / layers * 48);
    rc = 0;
done:
    vdgx_tensor_release (b, &vctx);
    vdgx_tensor_release (b, &actx);
    free (vx);
    free (ax);
    free (vt);
    free (at);
    free (vpos);
    free (apos);
    free (vout);
    free (aout);
    free (vc);
    free (ac);
    ltx2_dit_destroy (&dit);
    return rc;
}

static int
s_audio (vdgx_backend_t *b, const ltx2_latent_shape_t *sh, int reps)
{
    ltx2_audio_config_t cfg;
    char *err = NULL;
    if (ltx2_audio_config_parse (s_audio_config, &cfg, &err)) {
        fprintf (stderr, "vdgx-bench-ltx2: %s\n", err);
        free (err);
        return 1;
    }
    double t0 = s_now ();
    ltx2_audio_t *a = ltx2_audio_new_random (&cfg, 1, b, &err);
    if (!a) {
        fprintf (stderr, "vdgx-bench-ltx2: %s\n", err? err: "no audio decoder");
        free (err);
        return 1;
    }
    printf ("audio: LTX-2.3 audio VAE + vocoder + BWE (%.0f M weights), built in %.1f s\n",
            ltx2_audio_weight_bytes (a) / 4e6, s_now () - t0);
    int64_t T = sh->audio_frames, F = cfg.stats_channels;
    float *x = s_random ((size_t) (T * F), 5);
    vdgx_tensor_t lat = { 0 };
    const int64_t shape [2] = { T, F };
    int rc = 1;
    if (vdgx_tensor_alloc (b, &lat, VDGX_DTYPE_F32, 2, shape) || vdgx_tensor_from_f32 (b, &lat, x)) {
        fprintf (stderr, "vdgx-bench-ltx2: latent: %s\n", vdgx_backend_error (b));
        goto done;
    }
    double best = 1e30, cpu = 0;
    int64_t samples = 0;
    for (int r = 0; r < reps; r++) {
        float *pcm = NULL;
        double t = s_now (), c = s_cpu ();
        if (ltx2_audio_decode (a, &lat, &pcm, &samples, &err)) {
            fprintf (stderr, "vdgx-bench-ltx2: decode: %s\n", err? err: "?");
            free (err);
            goto done;
        }
        t = s_now () - t;
        free (pcm);
        if (t < best) {
            best = t;
            cpu = s_cpu () - c;
        }
    }
    printf ("audio: %lld latent frames -> %lld samples at %d Hz (%.2f s of sound): %.3f s (%.1f CPU s)\n",
            (long long) T, (long long) samples, ltx2_audio_sample_rate (a),
            (double) samples / ltx2_audio_sample_rate (a), best, cpu);
    rc = 0;
done:
    vdgx_tensor_release (b, &lat);
    free (x);
    ltx2_audio_destroy (&a);
    return rc;
}

int
main (int argc, char **argv)
{
    const char *device = "cpu", *precision = "bf16", *what = NULL;
    int layers = 1, w = 768, h = 512, frames = 121, fps = 24, ctx_len = 1024, reps = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc? argv [i + 1]: NULL;
        if (strcmp (a, "--device") == 0 && v)
            device = argv [++i];
        else
        if (strcmp (a, "--precision") == 0 && v)
            precision = argv [++i];
        else
        if (strcmp (a, "--layers") == 0 && v)
            layers = atoi (argv [++i]);
        else
        if (strcmp (a, "--size") == 0 && v) {
            if (sscanf (argv [++i], "%dx%dx%d", &w, &h, &frames) != 3) {
                s_usage ();
                return 2;
            }
        }
        else
        if (strcmp (a, "--fps") == 0 && v)
            fps = atoi (argv [++i]);
        else
        if (strcmp (a, "--context") == 0 && v)
            ctx_len = atoi (argv [++i]);
        else
        if (strcmp (a, "--reps") == 0 && v)
            reps = atoi (argv [++i]);
        else
        if (a [0] != '-' && !what)
            what = a;
        else {
            s_usage ();
            return 2;
        }
    }
    if (!what || (strcmp (what, "dit") && strcmp (what, "audio")) || layers < 1 || layers > 48
    ||  w < 32 || h < 32 || w % 32 || h % 32 || frames < 1 || frames % 8 != 1 || fps < 1
    ||  ctx_len < 1 || reps < 1) {
        s_usage ();
        return 2;
    }
    bool cpu = strncmp (device, "cpu", 3) == 0;
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new (device, cpu || strcmp (precision, "fp32") == 0?
                                          VDGX_DTYPE_F32: VDGX_DTYPE_BF16, &err);
    if (!b) {
        fprintf (stderr, "vdgx-bench-ltx2: %s: %s\n", device, err? err: "?");
        free (err);
        return 1;
    }
    ltx2_latent_shape_t sh;
    ltx2_sample_shape (w, h, frames, fps, &sh);
    printf ("vdgx-bench-ltx2 %s on %s: %dx%dx%d at %d fps\n", what, vdgx_backend_name (b), w, h,
            frames, fps);
    int rc = strcmp (what, "dit") == 0? s_dit (b, precision, layers, &sh, fps, ctx_len, reps)
           : s_audio (b, &sh, reps);
    vdgx_backend_destroy (&b);
    return rc;
}
