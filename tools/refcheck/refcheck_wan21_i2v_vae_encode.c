/*  refcheck_wan21_i2v_vae_encode.c - the Wan-VAE encoder against official WanVAE.encode runs:
    case a (9 frames 40x24, frame 0 random and zeros after, as I2V conditions) with every
    stored per-chunk intermediate and conv1, and case b (5 random frames 16x32).
*/
#include "refcheck.h"
#include "wan21_vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_vae_enc.safetensors"
#define S_WEIGHTS "weights_vae.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    int taps;
} s_tap_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = (s_tap_ctx_t *) arg;
    if (strncmp (name, "enc.", 4))
        return;
    char stored [160], label [192];
    snprintf (stored, sizeof stored, "vae_enc.mid.a.%s", name + 4);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, stored))
        return;
    snprintf (label, sizeof label, "vae_encode %s", stored);
    vdgx_refcheck_compare_tensor (ctx->rc, label, t, S_VEC, stored);
    ctx->taps++;
}

static int
s_case (vdgx_refcheck_t *rc, wan21_vae_t *vae, const char *which)
{
    char in [64], out [64], label [96];
    snprintf (in, sizeof in, "vae_enc.in.%s", which);
    snprintf (out, sizeof out, "vae_enc.out.%s", which);
    int64_t s [VDGX_MAX_DIMS];
    int nd = 0;
    float *video = vdgx_refcheck_load (rc, S_VEC, in, s, &nd, NULL);
    if (!video || nd != 4 || s [0] != 3) {
        free (video);
        fprintf (stderr, "refcheck vae_encode: %s missing or malformed\n", in);
        return -1;
    }
    int z = wan21_vae_z_dim (vae);
    size_t n = (size_t) z * (size_t) (1 + (s [1] - 1) / 4) * (size_t) (s [2] / 8) * (size_t) (s [3] / 8);
    float *lat = malloc (n * sizeof (float));
    char *err = NULL;
    snprintf (label, sizeof label, "vae_encode %s", out);
    if (!lat || wan21_vae_encode (vae, video, s [1], s [2], s [3], lat, &err)) {
        printf ("  FAIL %s: %s\n", label, err? err: "out of memory");
        rc->checks++;
        rc->failures++;
    }
    else
        vdgx_refcheck_compare_stored (rc, label, lat, n, S_VEC, out);
    free (err);
    free (lat);
    free (video);
    return 0;
}

int
vdgx_refcheck_wan21_i2v_vae_encode (vdgx_refcheck_t *rc)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", rc->dir, S_WEIGHTS);
    char *err = NULL;
    wan21_vae_t *vae = wan21_vae_load (rc->backend, path, &err);
    if (!vae || !wan21_vae_has_encoder (vae)) {
        fprintf (stderr, "refcheck vae_encode: %s\n", err? err: "the checkpoint has no encoder");
        free (err);
        wan21_vae_destroy (&vae);
        return -1;
    }
    size_t nm = 0, ns = 0;
    float *mean = vdgx_refcheck_load (rc, S_VEC, "vae_enc.mean", NULL, NULL, &nm);
    float *std = vdgx_refcheck_load (rc, S_VEC, "vae_enc.std", NULL, NULL, &ns);
    if (mean && std && nm == 16 && ns == 16) {
        vdgx_refcheck_compare (rc, "vae_encode vae_enc.mean (built-in constants)", wan21_vae_mean, mean, 16);
        vdgx_refcheck_compare (rc, "vae_encode vae_enc.std (built-in constants)", wan21_vae_std, std, 16);
    }
    free (mean);
    free (std);
    s_tap_ctx_t tctx = { rc, 0 };
    wan21_vae_set_tap (vae, s_tap, &tctx);
    int r = s_case (rc, vae, "a");
    wan21_vae_set_tap (vae, NULL, NULL);
    rc->checks++;
    if (tctx.taps < 20) {
        printf ("  vae_encode intermediates: only %d compared: FAIL\n", tctx.taps);
        rc->failures++;
    }
    r = r? r: s_case (rc, vae, "b");
    wan21_vae_destroy (&vae);
    return r;
}
