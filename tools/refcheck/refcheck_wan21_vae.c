/*  refcheck_wan21_vae.c - the Wan-VAE decoder against one official WanVAE.decode run:
    latent statistics, conv2, every stored decoder intermediate of chunks 0 and 1 (causal
    caches in use), the raw output and the clamped video. Also provides the decoded-video
    hook of the sampling part (vdgx_refcheck_wan21_sampling_video).
*/
#include "refcheck.h"
#include "wan21_vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_vae.safetensors"
#define S_WEIGHTS "weights_vae.safetensors"

static wan21_vae_t *
s_load (vdgx_refcheck_t *rc)
{
    size_t len = strlen (rc->dir) + sizeof (S_WEIGHTS) + 2;
    char *path = (char *) malloc (len);
    if (!path)
        return NULL;
    snprintf (path, len, "%s/%s", rc->dir, S_WEIGHTS);
    char *err = NULL;
    wan21_vae_t *vae = wan21_vae_load (rc->backend, path, &err);
    if (!vae)
        fprintf (stderr, "refcheck vae: %s\n", err? err: "cannot load");
    free (err);
    free (path);
    return vae;
}

typedef struct {
    vdgx_refcheck_t *rc;
    int taps;
} s_tap_ctx_t;

//  Intermediates the vector file stores are compared as they pass.
static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = (s_tap_ctx_t *) arg;
    char stored [160], label [192];
    if (strcmp (name, "conv2") == 0)
        snprintf (stored, sizeof stored, "vae.mid.conv2");
    else
        snprintf (stored, sizeof stored, "vae.mid.decoder.%s", name);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, stored))
        return;
    snprintf (label, sizeof label, "vae %s", stored);
    vdgx_refcheck_compare_tensor (ctx->rc, label, t, S_VEC, stored);
    ctx->taps++;
}

//  Decodes latent [16, F, H, W] into a [3, 1+4(F-1), 8H, 8W] video (caller frees).
static float *
s_decode (vdgx_refcheck_t *rc, wan21_vae_t *vae, const float *latent, const int64_t shape [4],
          bool raw, size_t *n_out)
{
    int frames = 1 + 4 * (int) (shape [1] - 1);
    size_t n = (size_t) 3 * (size_t) frames * (size_t) (64 * shape [2] * shape [3]);
    vdgx_refcheck_frames_t c = { (float *) calloc (n, sizeof (float)), frames, 0, false };
    if (!c.video)
        return NULL;
    wan21_vae_decode_opts_t opts = { .raw = raw };
    char *err = NULL;
    int r = wan21_vae_decode (vae, latent, shape [1], shape [2], shape [3], &opts,
                             vdgx_refcheck_collect_frame, &c, &err);
    if (r != 0 || c.bad || c.got != frames) {
        fprintf (stderr, "refcheck vae: decode failed: %s (%d of %d frames)\n",
                 err? err: c.bad? "frames out of order": "error", c.got, frames);
        rc->checks++;
        rc->failures++;
        free (err);
        free (c.video);
        return NULL;
    }
    free (err);
    *n_out = n;
    return c.video;
}

int
vdgx_refcheck_wan21_vae (vdgx_refcheck_t *rc)
{
    int64_t zs [VDGX_MAX_DIMS];
    int zn = 0;
    size_t nmean = 0, nstd = 0;
    float *z = vdgx_refcheck_load (rc, S_VEC, "vae.in.z", zs, &zn, NULL);
    float *mean = vdgx_refcheck_load (rc, S_VEC, "vae.in.mean", NULL, NULL, &nmean);
    float *std = vdgx_refcheck_load (rc, S_VEC, "vae.in.std", NULL, NULL, &nstd);
    wan21_vae_t *vae = s_load (rc);
    int result = -1;
    if (!z || !mean || !std || !vae || zn != 4 || nmean != 16 || nstd != 16 || zs [0] != 16) {
        fprintf (stderr, "refcheck vae: vectors or weights missing / malformed\n");
        goto out;
    }
    //  The hard-coded statistics must be the ones the official decode used.
    vdgx_refcheck_compare (rc, "vae vae.in.mean (built-in constants)", wan21_vae_mean, mean, 16);
    vdgx_refcheck_compare (rc, "vae vae.in.std (built-in constants)", wan21_vae_std, std, 16);

    s_tap_ctx_t tctx = { rc, 0 };
    wan21_vae_set_tap (vae, s_tap, &tctx);
    size_t n = 0;
    float *raw = s_decode (rc, vae, z, zs, true, &n);
    wan21_vae_set_tap (vae, NULL, NULL);
    if (raw) {
        vdgx_refcheck_compare_stored (rc, "vae vae.out.raw", raw, n, S_VEC, "vae.out.raw");
        free (raw);
    }
    rc->checks++;
    if (tctx.taps < 10) {
        printf ("  vae intermediates: only %d compared: FAIL\n", tctx.taps);
        rc->failures++;
    }
    float *video = s_decode (rc, vae, z, zs, false, &n);
    if (video) {
        vdgx_refcheck_compare_stored (rc, "vae vae.out.video", video, n, S_VEC, "vae.out.video");
        free (video);
    }
    result = 0;
out:
    wan21_vae_destroy (&vae);
    free (z);
    free (mean);
    free (std);
    return result;
}

//  The sampling part's hook: the whole pipeline through the decoded video.
int vdgx_refcheck_wan21_sampling_video (vdgx_refcheck_t *rc, const char *solver,
                                        const float *x0, const int64_t shape [4]);
int
vdgx_refcheck_wan21_sampling_video (vdgx_refcheck_t *rc, const char *solver, const float *x0,
                                    const int64_t shape [4])
{
    wan21_vae_t *vae = s_load (rc);
    if (!vae)
        return -1;
    size_t n = 0;
    float *video = s_decode (rc, vae, x0, shape, false, &n);
    wan21_vae_destroy (&vae);
    if (!video)
        return -1;
    char name [64], label [96];
    snprintf (name, sizeof name, "%s.video", solver);
    snprintf (label, sizeof label, "loop %s (decoded)", name);
    vdgx_refcheck_compare_stored (rc, label, video, n, "vectors_sampling.safetensors", name);
    free (video);
    return 0;
}
