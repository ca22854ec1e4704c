/*  refcheck_wan21_i2v_clip.c - the CLIP image encoder of Wan 2.1 I2V against one official
    CLIPModel.visual run: the preprocessed pixels from the uint8 image, the patch embedding,
    pre_norm, block 0's branches, every block's output and the features.
*/
#include "refcheck.h"
#include "wan21_clip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_clip.safetensors"
#define S_WEIGHTS "weights_clip.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    int dim, taps;
} s_tap_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_tap_ctx_t *ctx = (s_tap_ctx_t *) arg;
    char stored [128], label [160];
    snprintf (stored, sizeof stored, "clip.mid.%s", name);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, stored))
        return;
    snprintf (label, sizeof label, "clip %s", stored);
    if (strcmp (name, "patch_embedding") == 0) {
        //  Stored channels-first [1, dim, g, g]; the engine has tokens [1, g*g, dim].
        size_t n = vdgx_tensor_numel (t), P = n / (size_t) ctx->dim;
        float *tok = malloc (n * sizeof (float)), *cf = malloc (n * sizeof (float));
        float *want = vdgx_refcheck_load (ctx->rc, S_VEC, stored, NULL, NULL, NULL);
        if (tok && cf && want && vdgx_tensor_to_f32 (ctx->rc->backend, t, tok) == 0) {
            for (size_t p = 0; p < P; p++)
                for (size_t c = 0; c < (size_t) ctx->dim; c++)
                    cf [c * P + p] = tok [p * (size_t) ctx->dim + c];
            vdgx_refcheck_compare (ctx->rc, label, cf, want, n);
        }
        free (tok);
        free (cf);
        free (want);
    }
    else
        vdgx_refcheck_compare_tensor (ctx->rc, label, t, S_VEC, stored);
    ctx->taps++;
}

int
vdgx_refcheck_wan21_i2v_clip (vdgx_refcheck_t *rc)
{
    json_t *heads_j = json_object_get (json_object_get (json_object_get (rc->manifest, "configs"),
                                                        "clip"), "vision_heads");
    if (!json_is_integer (heads_j)) {
        fprintf (stderr, "refcheck clip: manifest has no configs.clip.vision_heads\n");
        return -1;
    }
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", rc->dir, S_WEIGHTS);
    char *err = NULL;
    wan21_clip_t *clip = wan21_clip_load (rc->backend, path, (int) json_integer_value (heads_j), &err);
    int64_t is [VDGX_MAX_DIMS];
    int in = 0;
    size_t nimg = 0;
    int64_t *img = vdgx_refcheck_load_i64 (rc, S_VEC, "clip.in.image_u8", is, &in, &nimg);
    float *pixels = NULL, *feat = NULL;
    int result = -1;
    if (!clip || !img || in != 3 || is [2] != 3) {
        fprintf (stderr, "refcheck clip: %s\n", err? err: "vectors missing / malformed");
        goto out;
    }
    uint8_t *rgb = malloc (nimg);
    int S = wan21_clip_image_size (clip);
    size_t npix = 3 * (size_t) S * (size_t) S, nfeat = (size_t) wan21_clip_tokens (clip) * (size_t) wan21_clip_dim (clip);
    pixels = malloc (npix * sizeof (float));
    feat = malloc (nfeat * sizeof (float));
    if (!rgb || !pixels || !feat) {
        free (rgb);
        goto out;
    }
    for (size_t i = 0; i < nimg; i++)
        rgb [i] = (uint8_t) img [i];
    wan21_clip_preprocess (rgb, (int) is [1], (int) is [0], S, pixels);
    free (rgb);
    vdgx_refcheck_compare_stored (rc, "clip clip.in.pixels", pixels, npix, S_VEC, "clip.in.pixels");

    s_tap_ctx_t tctx = { rc, wan21_clip_dim (clip), 0 };
    wan21_clip_set_tap (clip, s_tap, &tctx);
    if (wan21_clip_encode_pixels (clip, pixels, feat, &err)) {
        fprintf (stderr, "refcheck clip: %s\n", err? err: "encode failed");
        rc->checks++;
        rc->failures++;
    }
    else {
        vdgx_refcheck_compare_stored (rc, "clip clip.out", feat, nfeat, S_VEC, "clip.out");
        rc->checks++;
        if (tctx.taps < 5) {
            printf ("  clip intermediates: only %d compared: FAIL\n", tctx.taps);
            rc->failures++;
        }
    }
    result = 0;
out:
    free (err);
    free (img);
    free (pixels);
    free (feat);
    wan21_clip_destroy (&clip);
    return result;
}
