/*  refcheck_ltx2_audio.c - the LTX-2 (part audio of `vdgx-refcheck ltx2`) and LTX-2.3 (part
    audio of `vdgx-refcheck ltx23`) audio decoders against the official decode_audio: the
    stored latent through the audio VAE decoder (every stored intermediate, the mel) and the
    vocoder (LTX-2: HiFi-GAN to 24 kHz; LTX-2.3: BigVGAN v2 to 16 kHz, then the bandwidth
    extension's log-mel, residual and resampled skip to 48 kHz). The configuration comes from
    tiny_checkpoint.safetensors' metadata, as for a real checkpoint. Every tensor of
    vectors_audio.safetensors is compared (a stored tensor left unchecked is a failure).

    When vectors_sampling.safetensors is there, the one-stage pipeline's waveform too (LTX-2.3:
    its final audio latent decoded; LTX-2: its stored mel vocoded).

    Tolerances: atol/rtol as given (1e-4) everywhere except the LTX-2.3 waveforms (vocoder
    output, BWE residual and skip, the 48 kHz output), where the vectors' README measures up
    to 3e-3 from float32 summation order alone and suggests atol 5e-3: those use 50x atol.
*/
#include "refcheck.h"
#include "ltx2_audio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_audio.safetensors"
#define S_MAX_NAMES 128
#define S_WAVE_FACTOR 50.0

typedef struct {
    vdgx_refcheck_t *rc;
    bool v2;
    const char *done [S_MAX_NAMES];         //  stored names compared so far
    int ndone;
} s_ctx_t;

static bool
s_is_wave (const s_ctx_t *ctx, const char *stored)
{
    return ctx->v2 && (strstr (stored, "vocoder_out") || strstr (stored, "bwe.residual")
                    || strstr (stored, "bwe.skip") || strstr (stored, "waveform"));
}

static void
s_mark (s_ctx_t *ctx, const char *stored)
{
    if (ctx->ndone < S_MAX_NAMES)
        ctx->done [ctx->ndone++] = strdup (stored);
}

static void
s_compare (s_ctx_t *ctx, const char *stored, const float *got, size_t n)
{
    vdgx_refcheck_t *rc = ctx->rc;
    double atol = rc->atol;
    if (s_is_wave (ctx, stored))
        rc->atol = atol * S_WAVE_FACTOR;
    size_t numel = 0;
    float *want = vdgx_refcheck_load (rc, S_VEC, stored, NULL, NULL, &numel);
    if (!want || numel != n) {
        printf ("  FAIL %-44s size mismatch: %zu vs stored %zu\n", stored, n, numel);
        rc->checks++;
        rc->failures++;
    }
    else
        vdgx_refcheck_compare (rc, stored, got, want, n);
    free (want);
    rc->atol = atol;
    s_mark (ctx, stored);
}

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_ctx_t *ctx = (s_ctx_t *) arg;
    char stored [128];
    if (strcmp (name, "mel") == 0)
        snprintf (stored, sizeof (stored), "audio.out.mel");
    else
    if (strcmp (name, "voc.out") == 0)
        snprintf (stored, sizeof (stored), "audio.mid.voc.vocoder_out");
    else
        snprintf (stored, sizeof (stored), "audio.mid.%s", name);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, stored))
        return;                             //  not every intermediate is stored
    size_t n = (size_t) vdgx_tensor_numel (t);
    float *got = (float *) malloc (sizeof (float) * (n? n: 1));
    if (!got || vdgx_tensor_to_f32 (ctx->rc->backend, t, got)) {
        printf ("  FAIL %-44s unreadable\n", stored);
        ctx->rc->checks++;
        ctx->rc->failures++;
    }
    else
        s_compare (ctx, stored, got, n);
    free (got);
}

//  The one-stage pipeline's audio in vectors_sampling.safetensors (when that file is there):
//  LTX-2.3 decodes the final audio latent (pipe.final.audio_latent), LTX-2 vocodes the stored
//  mel (pipe.audio.out.mel; its latent is stored only un-normalised); both against
//  pipe.audio.waveform, 73 mel frames instead of the audio part's 21.
static void
s_check_pipeline (vdgx_refcheck_t *rc, ltx2_audio_t *audio, bool v2)
{
    const char *file = "vectors_sampling.safetensors";
    char path [4096];
    snprintf (path, sizeof (path), "%s/%s", rc->dir, file);
    FILE *f = fopen (path, "rb");
    if (!f)
        return;
    fclose (f);
    const char *in_name = v2? "pipe.final.audio_latent": "pipe.audio.out.mel";
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    float *in = vdgx_refcheck_load (rc, file, in_name, shape, &ndim, &n);
    vdgx_tensor_t t = { 0 };
    float *pcm = NULL;
    int64_t samples = 0;
    char *err = NULL;
    int rv = -1;
    if (in && ndim == 4 && vdgx_tensor_alloc (rc->backend, &t, VDGX_DTYPE_F32, 4, shape) == 0
     && vdgx_tensor_from_f32 (rc->backend, &t, in) == 0)
        rv = v2? ltx2_audio_decode (audio, &t, &pcm, &samples, &err)
               : ltx2_audio_vocode (audio, &t, &pcm, &samples, &err);
    if (rv) {
        printf ("  FAIL %-44s %s\n", "pipe.audio.waveform", err? err: "input missing or unusable");
        rc->checks++;
        rc->failures++;
    }
    else {
        float *planar = (float *) malloc (sizeof (float) * (size_t) (2 * samples));
        for (int64_t i = 0; planar && i < samples; i++) {
            planar [i] = pcm [2 * i];
            planar [samples + i] = pcm [2 * i + 1];
        }
        double atol = rc->atol;
        if (v2)
            rc->atol = atol * S_WAVE_FACTOR;
        char label [96];
        snprintf (label, sizeof (label), "pipe.audio.waveform (%s)", v2? "decode": "vocode");
        if (planar)
            vdgx_refcheck_compare_stored (rc, label, planar, (size_t) (2 * samples), file, "pipe.audio.waveform");
        rc->atol = atol;
        free (planar);
    }
    vdgx_tensor_release (rc->backend, &t);
    free (in);
    free (pcm);
    free (err);
}

static int
s_run (vdgx_refcheck_t *rc, bool want_v2)
{
    char path [4096];
    snprintf (path, sizeof (path), "%s/tiny_checkpoint.safetensors", rc->dir);
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
    ltx2_audio_t *audio = ckpt? ltx2_audio_new (ckpt, rc->backend, &err): NULL;
    vdgx_ckpt_destroy (&ckpt);
    if (!audio) {
        fprintf (stderr, "refcheck %s audio: %s\n", want_v2? "ltx23": "ltx2", err? err: "cannot load");
        free (err);
        return -1;
    }
    const ltx2_audio_config_t *c = ltx2_audio_config (audio);
    bool ok = c->bwe == want_v2 && c->output_rate == (want_v2? 48000: 24000);
    printf ("  %-4s configuration from the checkpoint metadata: %s vocoder, %d Hz%s (decoder ch %d, "
            "%d levels)\n", ok? "PASS": "FAIL", c->vocoder.amp? "BigVGAN-v2": "HiFi-GAN", c->output_rate,
            c->bwe? " with bandwidth extension": "", c->ch, c->levels);
    rc->checks++;
    rc->failures += !ok;

    s_ctx_t ctx = { .rc = rc, .v2 = want_v2 };
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    float *lat = vdgx_refcheck_load (rc, S_VEC, "audio.in.latent", shape, &ndim, &n);
    vdgx_tensor_t latent = { 0 };
    float *pcm = NULL;
    int64_t samples = 0;
    int rv = -1;
    if (!lat || ndim != 4) {
        fprintf (stderr, "refcheck audio: audio.in.latent missing or not [1, z, T, F]\n");
        goto done;
    }
    s_mark (&ctx, "audio.in.latent");
    if (vdgx_tensor_alloc (rc->backend, &latent, VDGX_DTYPE_F32, 4, shape)
     || vdgx_tensor_from_f32 (rc->backend, &latent, lat)) {
        fprintf (stderr, "refcheck audio: cannot place the latent: %s\n", vdgx_backend_error (rc->backend));
        goto done;
    }
    ltx2_audio_set_tap (audio, s_tap, &ctx);
    rv = ltx2_audio_decode (audio, &latent, &pcm, &samples, &err);
    ltx2_audio_set_tap (audio, NULL, NULL);
    if (rv) {
        fprintf (stderr, "refcheck audio: %s\n", err? err: "decode failed");
        goto done;
    }
    //  The waveform [2, samples]: de-interleave; its length must be what the API promises.
    bool len_ok = samples == ltx2_audio_samples (c, shape [2]);
    printf ("  %-4s %-44s %lld samples at %d Hz\n", len_ok? "PASS": "FAIL", "output length",
            (long long) samples, ltx2_audio_sample_rate (audio));
    rc->checks++;
    rc->failures += !len_ok;
    float *planar = (float *) malloc (sizeof (float) * (size_t) (2 * samples));
    for (int64_t i = 0; planar && i < samples; i++) {
        planar [i] = pcm [2 * i];
        planar [samples + i] = pcm [2 * i + 1];
    }
    if (planar)
        s_compare (&ctx, "audio.out.waveform", planar, (size_t) (2 * samples));
    free (planar);
    //  Every stored tensor was compared.
    vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
    size_t count = vec? vdgx_ckpt_count (vec): 0;
    int missed = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = vdgx_ckpt_at (vec, i)->name;
        bool seen = false;
        for (int j = 0; j < ctx.ndone && !seen; j++)
            seen = strcmp (ctx.done [j], name) == 0;
        if (!seen) {
            printf ("  FAIL %-44s stored but not compared\n", name);
            missed++;
        }
    }
    printf ("  %-4s %-44s %d of %zu stored tensors\n", missed || !count? "FAIL": "PASS", "coverage",
            ctx.ndone, count);
    rc->checks++;
    rc->failures += missed || !count;
    s_check_pipeline (rc, audio, want_v2);
done:
    for (int j = 0; j < ctx.ndone; j++)
        free ((void *) ctx.done [j]);
    vdgx_tensor_release (rc->backend, &latent);
    free (lat);
    free (pcm);
    free (err);
    ltx2_audio_destroy (&audio);
    return rv;
}

int
vdgx_refcheck_ltx2_audio (vdgx_refcheck_t *rc)
{
    return s_run (rc, false);
}

int
vdgx_refcheck_ltx23_audio (vdgx_refcheck_t *rc)
{
    return s_run (rc, true);
}
