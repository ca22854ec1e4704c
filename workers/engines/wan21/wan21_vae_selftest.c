/*  wan21_vae_selftest.c - selftest of the Wan-VAE decoder (the official numbers are checked
    by vdgx-refcheck --part vae; this covers layout, loading, streaming and errors).
*/
#include "wan21_vae.h"
#include "vdgx_ckpt.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    json_t *want;       //  real layout: name -> shape
    int matched, total;
} s_layout_check_t;

static void
s_check_real (void *arg, const char *name, int ndim, const int64_t *shape)
{
    s_layout_check_t *c = (s_layout_check_t *) arg;
    c->total++;
    json_t *s = json_object_get (c->want, name);
    if (!json_is_array (s) || (int) json_array_size (s) != ndim) {
        printf ("layout: %s missing or of another rank in the real checkpoint\n", name);
        return;
    }
    for (int i = 0; i < ndim; i++)
        if (json_integer_value (json_array_get (s, (size_t) i)) != shape [i]) {
            printf ("layout: %s dim %d differs\n", name, i);
            return;
        }
    c->matched++;
}

typedef struct {
    vdgx_ckpt_tensor_t t [256];
    char names [256][160];
    float *data [256];
    size_t n;
    uint32_t rng;
    bool diffusers;
    const char *skip;       //  leave this tensor out
    const char *reshape;    //  give this tensor a wrong shape
} s_writer_t;

static void
s_collect (void *arg, const char *name, int ndim, const int64_t *shape)
{
    s_writer_t *w = (s_writer_t *) arg;
    if (w->skip && strcmp (name, w->skip) == 0)
        return;
    assert (w->n < 256);
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t) shape [i];
    float *d = (float *) malloc (n * sizeof (float));
    assert (d);
    for (size_t i = 0; i < n; i++) {
        w->rng = w->rng * 1664525u + 1013904223u;
        float u = (float) (w->rng >> 8) / 16777216.f * 2.f - 1.f;
        d [i] = strstr (name, "gamma")? 1.f + 0.2f * u: 0.3f * u;
    }
    vdgx_ckpt_tensor_t *t = &w->t [w->n];
    memset (t, 0, sizeof *t);
    if (w->diffusers)
        assert (wan21_vae_diffusers_name (name, w->names [w->n], 160) == 0);
    else
        snprintf (w->names [w->n], 160, "%s", name);
    t->name = w->names [w->n];
    t->dtype = VDGX_DTYPE_F32;
    t->ndim = ndim;
    memcpy (t->shape, shape, sizeof (int64_t) * (size_t) ndim);
    if (w->reshape && strcmp (name, w->reshape) == 0) {
        t->ndim = 1;
        t->shape [0] = (int64_t) n;
    }
    t->data = d;
    t->nbytes = n * sizeof (float);
    w->data [w->n++] = d;
}

static void
s_write_full (const char *path, int dim, bool diffusers, const char *skip, const char *reshape,
              bool encoder)
{
    s_writer_t *w = (s_writer_t *) calloc (1, sizeof *w);
    assert (w);
    w->rng = 7;
    w->diffusers = diffusers;
    w->skip = skip;
    w->reshape = reshape;
    wan21_vae_layout (dim, 16, s_collect, w);
    if (encoder)
        wan21_vae_encoder_layout (dim, 16, s_collect, w);
    char *err = NULL;
    int rc = vdgx_safetensors_write (path, w->t, w->n, &err);
    assert (rc == 0);
    for (size_t i = 0; i < w->n; i++)
        free (w->data [i]);
    free (w);
}

static void
s_write (const char *path, int dim, bool diffusers, const char *skip, const char *reshape)
{
    s_write_full (path, dim, diffusers, skip, reshape, false);
}

//  The encoder: loading, errors, determinism, causality (the first latent frame sees only
//  the first video frame).
static void
s_encoder_test (vdgx_backend_t *b, const char *dir, wan21_vae_t *decoder_only, bool verbose)
{
    char path [256], broken [256];
    snprintf (path, sizeof path, "%s/enc.safetensors", dir);
    snprintf (broken, sizeof broken, "%s/enc-broken.safetensors", dir);
    s_write_full (path, 4, false, NULL, NULL, true);
    s_write_full (broken, 4, false, "encoder.downsamples.5.time_conv.weight", NULL, true);
    char *err = NULL;
    float lat [16 * 2 * 2 * 2], lat2 [16 * 2 * 2 * 2], lat1 [16 * 2 * 2];
    enum { F = 5, S = 16 };
    float *video = malloc (sizeof (float) * 3 * F * S * S);
    assert (video);
    uint32_t r = 5;
    for (int i = 0; i < 3 * F * S * S; i++) {
        r = r * 1664525u + 1013904223u;
        video [i] = (float) (r >> 8) / 16777216.f * 2.f - 1.f;
    }
    assert (!wan21_vae_has_encoder (decoder_only));
    assert (wan21_vae_encode (decoder_only, video, F, S, S, lat, &err) == -1 && strstr (err, "no encoder"));
    wan21_vae_t *e = wan21_vae_load (b, path, &err);
    assert (e && wan21_vae_has_encoder (e));
    wan21_vae_t *dec = wan21_vae_load_decoder (b, path, &err);
    assert (dec && !wan21_vae_has_encoder (dec));
    wan21_vae_destroy (&dec);
    assert (wan21_vae_encode (e, video, F, S, S, lat, &err) == 0);
    assert (wan21_vae_encode (e, video, F, S, S, lat2, &err) == 0);
    assert (memcmp (lat, lat2, sizeof lat) == 0);
    double energy = 0;
    for (size_t i = 0; i < sizeof lat / sizeof lat [0]; i++) {
        assert (isfinite (lat [i]));
        energy += fabs (lat [i]);
    }
    assert (energy > 1e-3);
    //  Frame 0 alone (channel planes of 3 x [S, S]) gives latent frame 0.
    float *first = malloc (sizeof (float) * 3 * S * S);
    assert (first);
    for (int c = 0; c < 3; c++)
        memcpy (first + c * S * S, video + (size_t) c * F * S * S, sizeof (float) * S * S);
    assert (wan21_vae_encode (e, first, 1, S, S, lat1, &err) == 0);
    double worst = 0;
    for (int c = 0; c < 16; c++)
        for (int i = 0; i < 4; i++)
            worst = fmax (worst, fabs (lat1 [c * 4 + i] - lat [c * 8 + i]));
    assert (worst < 1e-5);
    assert (wan21_vae_encode (e, video, 4, S, S, lat2, &err) == -1 && strstr (err, "1 + 4k"));
    assert (wan21_vae_encode (e, video, F, 12, S, lat2, &err) == -1 && strstr (err, "multiples of 8"));
    free (err), err = NULL;     //  the loader sets *err without freeing it
    assert (!wan21_vae_load (b, broken, &err) && strstr (err, "encoder.downsamples.5.time_conv.weight"));
    if (verbose)
        printf ("   encoder: first-frame causality %.2e, missing tensor: %s\n", worst, err);
    free (err);
    free (first);
    free (video);
    wan21_vae_destroy (&e);
    unlink (path);
    unlink (broken);
}

typedef struct {
    float *video;       //  [frames][3][H][W]
    int frames, max, w, h;
    int stop_at;        //  return -1 at this frame, -1 = never
} s_frames_t;

static int
s_on_frame (void *arg, int index, const float *chw, int width, int height)
{
    s_frames_t *f = (s_frames_t *) arg;
    assert (index == f->frames);
    assert (index < f->max);
    f->w = width;
    f->h = height;
    memcpy (f->video + (size_t) index * 3 * (size_t) (width * height), chw,
            3 * (size_t) (width * height) * sizeof (float));
    f->frames++;
    return index == f->stop_at? -1: 0;
}

static s_frames_t
s_decode (wan21_vae_t *vae, const float *latent, int64_t t, int64_t h, int64_t w, bool raw)
{
    s_frames_t f = { 0 };
    f.max = 1 + 4 * (int) (t - 1);
    f.stop_at = -1;
    f.video = (float *) calloc ((size_t) f.max * 3 * 64 * (size_t) (h * w), sizeof (float));
    assert (f.video);
    wan21_vae_decode_opts_t opts = { .raw = raw };
    char *err = NULL;
    int rc = wan21_vae_decode (vae, latent, t, h, w, &opts, s_on_frame, &f, &err);
    if (rc)
        printf ("decode: %s\n", err? err: "?");
    assert (rc == 0);
    free (err);
    assert (f.frames == f.max && f.w == 8 * w && f.h == 8 * h);
    return f;
}

void
wan21_vae_test (bool verbose)
{
    printf (" * wan21_vae: ");
    //  The decoder reads exactly the decoder + conv2 tensors of the real Wan2.1_VAE.pth.
    const char *src = getenv ("VDGX_SOURCE_DIR");
    if (src) {
        char path [1024];
        snprintf (path, sizeof path, "%s/tests/data/reference/wan21/real_checkpoint_layout.json", src);
        json_t *root = json_load_file (path, 0, NULL);
        if (root) {
            json_t *vae = json_object_get (json_object_get (root, "vae"), "tensors");
            assert (json_is_object (vae));
            s_layout_check_t c = { vae, 0, 0 };
            int n = wan21_vae_layout (96, 16, s_check_real, &c);
            int real = 0;
            const char *key;
            json_t *v;
            json_object_foreach (vae, key, v)
                real += strncmp (key, "decoder.", 8) == 0 || strncmp (key, "conv2.", 6) == 0;
            if (verbose)
                printf ("\n   real layout: %d of %d decoder tensors match (%d in the file)\n",
                        c.matched, n, real);
            assert (c.matched == n && c.total == n && real == n);
            json_decref (root);
        }
    }
    //  diffusers AutoencoderKLWan names.
    const char *pairs [][2] = {
        { "conv2.weight", "post_quant_conv.weight" },
        { "decoder.conv1.bias", "decoder.conv_in.bias" },
        { "decoder.middle.0.residual.0.gamma", "decoder.mid_block.resnets.0.norm1.gamma" },
        { "decoder.middle.2.residual.6.weight", "decoder.mid_block.resnets.1.conv2.weight" },
        { "decoder.middle.1.to_qkv.weight", "decoder.mid_block.attentions.0.to_qkv.weight" },
        { "decoder.upsamples.4.shortcut.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight" },
        { "decoder.upsamples.7.time_conv.bias", "decoder.up_blocks.1.upsamplers.0.time_conv.bias" },
        { "decoder.upsamples.11.resample.1.weight", "decoder.up_blocks.2.upsamplers.0.resample.1.weight" },
        { "decoder.upsamples.14.residual.3.gamma", "decoder.up_blocks.3.resnets.2.norm2.gamma" },
        { "decoder.head.0.gamma", "decoder.norm_out.gamma" },
        { "decoder.head.2.weight", "decoder.conv_out.weight" },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs [0]; i++) {
        char buf [160];
        assert (wan21_vae_diffusers_name (pairs [i][0], buf, sizeof buf) == 0);
        if (strcmp (buf, pairs [i][1]))
            printf ("%s -> %s (want %s)\n", pairs [i][0], buf, pairs [i][1]);
        assert (strcmp (buf, pairs [i][1]) == 0);
    }
    char buf [160];
    assert (wan21_vae_diffusers_name ("decoder.upsamples.x.residual.0.gamma", buf, sizeof buf) == -1);
    assert (wan21_vae_diffusers_name ("encoder.conv1.weight", buf, sizeof buf) == -1);

    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    char dir [] = "/tmp/vdgx-vae-test-XXXXXX";
    assert (mkdtemp (dir));
    char official [256], diffusers [256], missing [256], bad [256];
    snprintf (official, sizeof official, "%s/Wan2.1_VAE.safetensors", dir);
    snprintf (diffusers, sizeof diffusers, "%s/diffusers.safetensors", dir);
    snprintf (missing, sizeof missing, "%s/missing.safetensors", dir);
    snprintf (bad, sizeof bad, "%s/bad.safetensors", dir);
    const int dim = 4;
    s_write (official, dim, false, NULL, NULL);
    s_write (diffusers, dim, true, NULL, NULL);
    s_write (missing, dim, false, "decoder.upsamples.7.time_conv.weight", NULL);
    s_write (bad, dim, false, NULL, "decoder.middle.1.proj.weight");

    //  Loading: by file, by folder, diffusers names; clear errors for bad files.
    wan21_vae_t *a = wan21_vae_load (b, official, &err);
    assert (a && wan21_vae_dim (a) == dim && wan21_vae_z_dim (a) == 16);
    wan21_vae_t *byfolder = wan21_vae_load (b, dir, &err);
    assert (byfolder);
    wan21_vae_t *d = wan21_vae_load (b, diffusers, &err);
    assert (d);
    assert (!wan21_vae_load (b, missing, &err) && err && strstr (err, "decoder.upsamples.7.time_conv.weight"));
    free (err), err = NULL;
    assert (!wan21_vae_load (b, bad, &err) && err && strstr (err, "decoder.middle.1.proj.weight")
            && strstr (err, "shape"));
    free (err), err = NULL;
    assert (!wan21_vae_load (b, "/nonexistent/vae", &err) && err);
    free (err), err = NULL;

    //  A random latent [16, 3, 2, 3] -> 9 frames of 24x16.
    const int64_t T = 3, H = 2, W = 3;
    size_t n = (size_t) (16 * T * H * W);
    float *z = (float *) malloc (n * sizeof (float));
    uint32_t r = 99;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        z [i] = ((float) (r >> 8) / 16777216.f * 2.f - 1.f) * 1.5f;
    }
    s_frames_t fa = s_decode (a, z, T, H, W, false);
    s_frames_t fraw = s_decode (a, z, T, H, W, true);
    s_frames_t ff = s_decode (byfolder, z, T, H, W, false);
    s_frames_t fd = s_decode (d, z, T, H, W, false);
    s_frames_t fa2 = s_decode (a, z, T, H, W, false);      //  caches reset between decodes
    size_t vn = (size_t) fa.max * 3 * (size_t) (fa.w * fa.h);
    int outside = 0;
    double energy = 0;
    for (size_t i = 0; i < vn; i++) {
        assert (fa.video [i] >= -1.f && fa.video [i] <= 1.f);
        assert (fa.video [i] == fmaxf (-1.f, fminf (1.f, fraw.video [i])));
        outside += fabsf (fraw.video [i]) > 1.f;
        energy += fabs (fa.video [i]);
        assert (fa.video [i] == fd.video [i] && fa.video [i] == fa2.video [i] && fa.video [i] == ff.video [i]);
    }
    assert (energy > 1e-3 * (double) vn);       //  not a constant output
    //  Causality: the first 5 frames depend on latent frames 0 and 1 only. Each latent frame
    //  is a separate plane per channel, so take the first 2 of every channel.
    float *z2 = (float *) malloc ((size_t) (16 * 2 * H * W) * sizeof (float));
    for (int c = 0; c < 16; c++)
        memcpy (z2 + (size_t) c * 2 * (size_t) (H * W), z + (size_t) c * (size_t) (T * H * W),
                2 * (size_t) (H * W) * sizeof (float));
    s_frames_t f2 = s_decode (a, z2, 2, H, W, false);
    size_t n2 = (size_t) f2.max * 3 * (size_t) (f2.w * f2.h);
    assert (f2.max == 5);
    for (size_t i = 0; i < n2; i++)
        assert (fabsf (f2.video [i] - fa.video [i]) <= 1e-5f);     //  only GEMM blocking differs
    //  ... and the later frames do depend on the history (the caches carry it).
    float *z3 = (float *) malloc ((size_t) (16 * H * W) * sizeof (float));
    for (int c = 0; c < 16; c++)
        memcpy (z3 + (size_t) c * (size_t) (H * W), z + ((size_t) c * (size_t) T + 2) * (size_t) (H * W),
                (size_t) (H * W) * sizeof (float));
    s_frames_t f3 = s_decode (a, z3, 1, H, W, false);     //  latent frame 2 alone: 1 frame
    double diff = 0;
    for (size_t i = 0; i < (size_t) 3 * (size_t) (f3.w * f3.h); i++)
        diff += fabs (f3.video [i] - fa.video [(size_t) 8 * 3 * (size_t) (f3.w * f3.h) + i]);
    assert (diff > 1e-3);

    //  Cancellation before the first frame; a consumer that stops the decode.
    atomic_int cancel = 1;
    wan21_vae_decode_opts_t opts = { .cancel = &cancel };
    s_frames_t fc = { .video = fa.video, .max = fa.max, .stop_at = -1 };
    assert (wan21_vae_decode (a, z, T, H, W, &opts, s_on_frame, &fc, &err) == -2 && fc.frames == 0);
    s_frames_t fs = { .video = fa.video, .max = fa.max, .stop_at = 2 };
    assert (wan21_vae_decode (a, z, T, H, W, NULL, s_on_frame, &fs, &err) == -1 && fs.frames == 3 && err);
    free (err), err = NULL;
    assert (wan21_vae_decode (a, z, 0, H, W, NULL, s_on_frame, &fs, &err) == -1 && err);
    free (err), err = NULL;

    s_encoder_test (b, dir, a, verbose);

    //  Random weights (benchmarks) decode too.
    wan21_vae_t *rnd = wan21_vae_new_random (b, dim, 16, 1, &err);
    assert (rnd);
    s_frames_t fr = s_decode (rnd, z, T, H, W, false);
    assert (wan21_vae_weight_bytes (rnd) == wan21_vae_weight_bytes (a));
    if (verbose)
        printf ("   %d frames %dx%d, %d raw values outside [-1, 1], weights %llu bytes\n", fa.frames,
                fa.w, fa.h, outside, (unsigned long long) wan21_vae_weight_bytes (a));
    free (fa.video); free (fraw.video); free (ff.video); free (fd.video); free (fa2.video);
    free (f2.video); free (f3.video); free (fr.video);
    free (z); free (z2); free (z3);
    wan21_vae_destroy (&rnd);
    wan21_vae_destroy (&a);
    wan21_vae_destroy (&byfolder);
    wan21_vae_destroy (&d);
    assert (!a && !d);
    unlink (official); unlink (diffusers); unlink (missing); unlink (bad);
    rmdir (dir);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
