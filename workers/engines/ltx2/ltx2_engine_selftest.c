/*  ltx2_engine_selftest.c - selftest of the ltx2 engine on the tiny demo model: limits and
    request defaults, a real job (Gemma + text path, DiT, sampler, video VAE, audio VAE and
    vocoder) with its frames, audio and progress, cancellation, memory estimates, a service of
    the other release refused, and damaged checkpoints (a missing tensor, a wrong shape, a
    truncated file) refused with the tensor or the file named.
*/
#include "ltx2_engine.h"
#include "vdgx_ckpt.h"
#include "vdgx_msg.h"

#include <assert.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int frames, width, height, bad_pixels;
    int64_t samples;
    int channels, rate, bad_samples;
    int progress, denoise_steps;
    const char *cancel_phase;           //  set the cancel flag on this phase's first report
    atomic_int cancel;
} s_sink_t;

static void
s_progress (void *ctx, const vdgx_engine_progress_t *p)
{
    s_sink_t *s = (s_sink_t *) ctx;
    s->progress++;
    if (strcmp (p->phase, "denoising") == 0 && p->step > 0)
        s->denoise_steps = (int) p->step;
    if (s->cancel_phase && strcmp (p->phase, s->cancel_phase) == 0)
        atomic_store (&s->cancel, 1);
}

static int
s_frame (void *ctx, const float *rgb, int width, int height)
{
    s_sink_t *s = (s_sink_t *) ctx;
    s->frames++;
    s->width = width;
    s->height = height;
    for (int i = 0; i < width * height * 3; i++)
        s->bad_pixels += !(rgb [i] >= -1.0f && rgb [i] <= 1.0f);
    return 0;
}

static int
s_audio (void *ctx, const float *pcm, int samples, int channels, int rate)
{
    s_sink_t *s = (s_sink_t *) ctx;
    s->samples += samples;
    s->channels = channels;
    s->rate = rate;
    for (int i = 0; i < samples * channels; i++)
        s->bad_samples += !(pcm [i] >= -1.0f && pcm [i] <= 1.0f);
    return 0;
}

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

//  A copy of the tiny checkpoint into dir/ltx2-tiny.safetensors with tensor `drop` left out
//  or `reshape` given another first dimension; Gemma linked beside it.
static void
s_damaged (const char *tiny, const char *dir, const char *drop, const char *reshape)
{
    assert (mkdir (dir, 0755) == 0);
    char path [512], link [512];
    snprintf (path, sizeof path, "%s/%s", tiny, LTX2_TINY_FILE);
    char *err = NULL;
    vdgx_ckpt_t *ck = vdgx_ckpt_open (path, &err);
    assert (ck);
    size_t n = vdgx_ckpt_count (ck), m = 0;
    vdgx_ckpt_tensor_t *t = (vdgx_ckpt_tensor_t *) calloc (n, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        const vdgx_ckpt_tensor_t *x = vdgx_ckpt_at (ck, i);
        if (drop && strcmp (x->name, drop) == 0)
            continue;
        t [m] = *x;
        if (reshape && strcmp (x->name, reshape) == 0) {
            t [m].shape [0] /= 2;
            t [m].nbytes /= 2;
        }
        m++;
    }
    const char *meta [] = { "config", vdgx_ckpt_metadata (ck, "config"), NULL };
    snprintf (path, sizeof path, "%s/%s", dir, LTX2_TINY_FILE);
    assert (vdgx_safetensors_write_meta (path, t, m, meta, &err) == 0);
    free (t);
    vdgx_ckpt_destroy (&ck);
    snprintf (path, sizeof path, "%s/gemma", tiny);
    snprintf (link, sizeof link, "%s/gemma", dir);
    assert (symlink (path, link) == 0);
}

//  Creates and loads the tiny service from dir; the load error (caller frees) or NULL.
static char *
s_load_error (const char *dir)
{
    vdgx_engine_config_t cfg = { .model = "ltx2-tiny", .weights_dir = dir, .device = "cpu:2" };
    vdgx_engine_t *e = NULL;
    char *err = NULL;
    if (vdgx_ltx2_tiny_engine_class.create (&e, &cfg, &err) == VDGX_ENGINE_OK) {
        vdgx_engine_io_t io = { 0 };
        if (vdgx_ltx2_tiny_engine_class.load (e, &io, &err) == VDGX_ENGINE_OK)
            assert (!"a damaged checkpoint loaded");
        vdgx_ltx2_tiny_engine_class.destroy (&e);
    }
    assert (err);
    return err;
}

void
ltx2_engine_test (bool verbose)
{
    printf (" * ltx2_engine: ");
    if (verbose)
        printf ("\n");
    char dir [] = "/tmp/vdgx-ltx2-engine-XXXXXX";
    assert (mkdtemp (dir));
    char tiny [600];
    snprintf (tiny, sizeof tiny, "%s/tiny", dir);
    char *err = NULL;
    assert (ltx2_tiny_write (tiny, 42, &err) == 0);
    const vdgx_engine_class_t *cls = &vdgx_ltx2_tiny_engine_class;

    //  Limits and defaults: multiples of 32, 8n+1 frames, 24 fps.
    vdgx_engine_config_t cfg = { .model = "ltx2-tiny", .weights_dir = tiny, .device = "cpu:2" };
    vdgx_engine_t *e = NULL;
    assert (cls->create (&e, &cfg, &err) == VDGX_ENGINE_OK);
    vdgx_limits_t lim;
    assert (cls->limits (e, &lim) == 0 && lim.frames_step == 8 && lim.wh_multiple == 32);
    vdgx_genreq_t req;
    vdgx_error_t verr;
    vdgx_genreq_init (&req);
    req.prompt = strdup ("a red car drives through a rainy city at night");
    assert (cls->validate (e, &req, &verr) == 0);
    assert (req.width == 64 && req.height == 64 && req.frames == 9 && req.fps == 24 && req.steps == 4);
    vdgx_genreq_t bad;
    vdgx_genreq_init (&bad);
    bad.prompt = strdup ("x");
    bad.frames = 12;
    assert (cls->validate (e, &bad, &verr) == -1 && strcmp (verr.field, "frames") == 0);
    bad.frames = 17;
    bad.width = 48;
    bad.height = 64;
    assert (cls->validate (e, &bad, &verr) == -1 && strcmp (verr.field, "width") == 0);
    vdgx_genreq_clear (&bad);
    int channels = 0, rate = 0;
    assert (cls->audio_format (e, &req, &channels, &rate) == 0 && channels == 2 && rate == 24000);
    assert (cls->memory_estimate (e, "fp32") > (1u << 20));

    //  A job: 9 frames of 64x64 in [-1, 1], 9/24 s of stereo 24 kHz audio, progress per step.
    s_sink_t sink;
    memset (&sink, 0, sizeof sink);
    vdgx_engine_io_t io = { .ctx = &sink, .progress = s_progress, .frame = s_frame,
                            .audio = s_audio, .cancel = &sink.cancel };
    if (cls->load (e, &io, &err) != VDGX_ENGINE_OK)
        printf ("load: %s\n", err);
    assert (err == NULL);
    vdgx_engine_output_t out;
    memset (&out, 0, sizeof out);
    int rc = cls->generate (e, &req, &io, &out, &err);
    if (rc)
        printf ("generate: %s\n", err);
    assert (rc == VDGX_ENGINE_OK);
    assert (sink.frames == 9 && sink.width == 64 && sink.height == 64 && sink.bad_pixels == 0);
    assert (sink.samples == 9000 && sink.channels == 2 && sink.rate == 24000 && sink.bad_samples == 0);
    assert (sink.denoise_steps == 4 && out.frames == 9 && out.fps == 24);
    if (verbose)
        printf ("  job: text %.2f s, denoise %.2f s, decode %.2f s\n", out.t_text, out.t_denoise,
                out.t_decode);
    //  Cancelled while denoising.
    memset (&sink, 0, sizeof sink);
    sink.cancel_phase = "denoising";
    assert (cls->generate (e, &req, &io, &out, &err) == VDGX_ENGINE_CANCELLED);
    assert (sink.frames == 0 && sink.samples == 0);
    vdgx_genreq_clear (&req);
    cls->destroy (&e);
    assert (!e);

    //  The tiny folder is not a 19B checkpoint.
    vdgx_engine_config_t big = { .model = "ltx2-19b", .weights_dir = tiny, .device = "cpu" };
    assert (vdgx_ltx2_engine_class.create (&e, &big, &err) == VDGX_ENGINE_ERROR);
    assert (strstr (err, "LTX-2 19B") && strstr (err, "tiny"));
    free (err);
    err = NULL;
    //  The released sizes estimate tens of GB before any weights exist.
    char nothing [700];
    snprintf (nothing, sizeof nothing, "%s/none", dir);
    assert (mkdir (nothing, 0755) == 0);
    vdgx_engine_config_t c22 = { .model = "ltx23-22b", .weights_dir = nothing, .device = "cpu" };
    assert (vdgx_ltx23_engine_class.create (&e, &c22, &err) == VDGX_ENGINE_OK);
    uint64_t est = vdgx_ltx23_engine_class.memory_estimate (e, "bf16");
    assert (est > 40ull * 1000 * 1000 * 1000 && est < 200ull * 1000 * 1000 * 1000);
    memset (&sink, 0, sizeof sink);
    assert (vdgx_ltx23_engine_class.load (e, &io, &err) == VDGX_ENGINE_ERROR && strstr (err, "no LTX-2 checkpoint"));
    free (err);
    err = NULL;
    vdgx_ltx23_engine_class.destroy (&e);

    //  Damaged checkpoints: the tensor or the file named.
    char d1 [700], d2 [700], d3 [700], path [800];
    snprintf (d1, sizeof d1, "%s/missing", dir);
    s_damaged (tiny, d1, "model.diffusion_model.transformer_blocks.1.ff.net.2.weight", NULL);
    char *msg = s_load_error (d1);
    if (verbose)
        printf ("  %s\n", msg);
    assert (strstr (msg, "transformer_blocks.1.ff.net.2.weight"));
    free (msg);
    snprintf (d2, sizeof d2, "%s/shape", dir);
    s_damaged (tiny, d2, NULL, "vae.decoder.conv_out.conv.weight");
    msg = s_load_error (d2);
    if (verbose)
        printf ("  %s\n", msg);
    assert (strstr (msg, "conv_out"));
    free (msg);
    snprintf (d3, sizeof d3, "%s/truncated", dir);
    s_damaged (tiny, d3, NULL, NULL);
    snprintf (path, sizeof path, "%s/%s", d3, LTX2_TINY_FILE);
    struct stat st;
    assert (stat (path, &st) == 0 && truncate (path, st.st_size / 2) == 0);
    msg = s_load_error (d3);
    if (verbose)
        printf ("  %s\n", msg);
    assert (strstr (msg, LTX2_TINY_FILE));
    free (msg);

    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    printf ("OK\n");
}
