/*  wan21_clip_selftest.c - selftest of the Wan I2V CLIP visual tower (the official numbers are
    checked by vdgx-refcheck wan21-i2v --part clip; this covers preprocessing invariants,
    geometry from the shapes, the unused text tower / last block, and load errors).
*/
#include "wan21_clip.h"
#include "vdgx_ckpt.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAXT 64

typedef struct {
    vdgx_ckpt_tensor_t t [S_MAXT];
    char names [S_MAXT][96];
    float *data [S_MAXT];
    size_t n;
    uint32_t rng;
} s_writer_t;

static void
s_add (s_writer_t *w, const char *name, int ndim, const int64_t *shape, float base, float amp)
{
    assert (w->n < S_MAXT);
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t) shape [i];
    float *d = malloc (n * sizeof (float));
    assert (d);
    for (size_t i = 0; i < n; i++) {
        w->rng = w->rng * 1664525u + 1013904223u;
        d [i] = base + amp * ((float) (w->rng >> 8) / 16777216.f * 2.f - 1.f);
    }
    vdgx_ckpt_tensor_t *t = &w->t [w->n];
    memset (t, 0, sizeof *t);
    snprintf (w->names [w->n], sizeof w->names [0], "%s", name);
    t->name = w->names [w->n];
    t->dtype = VDGX_DTYPE_F32;
    t->ndim = ndim;
    memcpy (t->shape, shape, sizeof (int64_t) * (size_t) ndim);
    t->data = d;
    t->nbytes = n * sizeof (float);
    w->data [w->n++] = d;
}

//  A tiny tower: dim 16, patch 4, image 12 (9 + 1 tokens), `blocks` blocks, plus a text
//  tensor and log_scale that must be read past. skip: leave that tensor out.
static void
s_write (const char *path, int blocks, const char *skip)
{
    s_writer_t *w = calloc (1, sizeof *w);
    assert (w);
    w->rng = 11;
    const int64_t D = 16;
    const int64_t pe [4] = { D, 3, 4, 4 }, cls [3] = { 1, 1, D }, pos [3] = { 1, 10, D };
    const int64_t vd [1] = { D }, qkv [2] = { 3 * D, D }, qkvb [1] = { 3 * D }, pr [2] = { D, D };
    const int64_t m0 [2] = { 4 * D, D }, m0b [1] = { 4 * D }, m2 [2] = { D, 4 * D }, one [1] = { 1 };
    s_add (w, "visual.patch_embedding.weight", 4, pe, 0, 0.1f);
    s_add (w, "visual.cls_embedding", 3, cls, 0, 0.5f);
    s_add (w, "visual.pos_embedding", 3, pos, 0, 0.5f);
    s_add (w, "visual.pre_norm.weight", 1, vd, 1, 0.2f);
    s_add (w, "visual.pre_norm.bias", 1, vd, 0, 0.2f);
    s_add (w, "log_scale", 1, one, 0, 1);
    s_add (w, "textual.token_embedding.weight", 2, pr, 0, 1);
    for (int i = 0; i < blocks; i++) {
        const char *sfx [] = { "norm1.weight", "norm1.bias", "attn.to_qkv.weight", "attn.to_qkv.bias",
                               "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                               "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias" };
        const int64_t *shp [] = { vd, vd, qkv, qkvb, pr, vd, vd, vd, m0, m0b, m2, vd };
        const int nd [] = { 1, 1, 2, 1, 2, 1, 1, 1, 2, 1, 2, 1 };
        for (int j = 0; j < 12; j++) {
            char name [96];
            snprintf (name, sizeof name, "visual.transformer.%d.%s", i, sfx [j]);
            if (skip && strcmp (skip, name) == 0)
                continue;
            s_add (w, name, nd [j], shp [j], strstr (sfx [j], "norm") && strstr (sfx [j], "weight")? 1: 0, 0.3f);
        }
    }
    char *err = NULL;
    int rc = vdgx_safetensors_write (path, w->t, w->n, &err);
    assert (rc == 0);
    for (size_t i = 0; i < w->n; i++)
        free (w->data [i]);
    free (w);
}

void
wan21_clip_test (bool verbose)
{
    printf (" * wan21_clip: ");
    if (verbose)
        printf ("\n");
    //  A uniform image stays uniform through the bicubic squash (weights sum to 1).
    uint8_t *rgb = malloc (30 * 17 * 3);
    assert (rgb);
    for (int i = 0; i < 30 * 17; i++) {
        rgb [3 * i] = 200;
        rgb [3 * i + 1] = 13;
        rgb [3 * i + 2] = 255;
    }
    float px [3 * 12 * 12];
    wan21_clip_preprocess (rgb, 30, 17, 12, px);
    const float mean [3] = { 0.48145466f, 0.4578275f, 0.40821073f };
    const float std [3] = { 0.26862954f, 0.26130258f, 0.27577711f };
    const int v [3] = { 200, 13, 255 };
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 144; i++)
            assert (fabsf (px [c * 144 + i] - ((float) v [c] / 255.f - mean [c]) / std [c]) < 1e-5f);

    char dir [] = "/tmp/vdgx-clip-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [128];
    snprintf (path, sizeof path, "%s/clip.safetensors", dir);
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, &err);
    assert (b);

    //  Geometry from the shapes; the last block is not run and need not be complete.
    s_write (path, 3, "visual.transformer.2.mlp.2.weight");
    wan21_clip_t *clip = wan21_clip_load (b, path, 2, &err);
    if (!clip)
        printf ("load: %s\n", err);
    assert (clip);
    assert (wan21_clip_dim (clip) == 16 && wan21_clip_tokens (clip) == 10);
    assert (wan21_clip_image_size (clip) == 12 && wan21_clip_blocks (clip) == 2);
    for (int i = 0; i < 30 * 17 * 3; i++)
        rgb [i] = (uint8_t) (i * 37 + 11);
    float f1 [10 * 16], f2 [10 * 16];
    assert (wan21_clip_encode (clip, rgb, 30, 17, f1, &err) == 0);
    assert (wan21_clip_encode (clip, rgb, 30, 17, f2, &err) == 0);
    assert (memcmp (f1, f2, sizeof f1) == 0);
    double norm = 0;
    for (int i = 0; i < 160; i++) {
        assert (isfinite (f1 [i]));
        norm += fabs (f1 [i]);
    }
    assert (norm > 1);
    //  The image matters.
    rgb [0] ^= 0xff;
    rgb [30 * 17 * 3 - 1] ^= 0xff;
    assert (wan21_clip_encode (clip, rgb, 30, 17, f2, &err) == 0);
    assert (memcmp (f1, f2, sizeof f1) != 0);
    assert (wan21_clip_encode (clip, rgb, 0, 17, f2, &err) == -1 && strstr (err, "empty"));
    wan21_clip_destroy (&clip);
    assert (clip == NULL);

    //  Errors: a missing tensor of a run block, heads that do not divide the width, a
    //  non-CLIP file.
    s_write (path, 3, "visual.transformer.1.attn.to_qkv.bias");
    clip = wan21_clip_load (b, path, 2, &err);
    assert (!clip && strstr (err, "visual.transformer.1.attn.to_qkv.bias"));
    if (verbose)
        printf ("   missing: %s\n", err);
    s_write (path, 3, NULL);
    clip = wan21_clip_load (b, path, 3, &err);
    assert (!clip && strstr (err, "3 heads"));
    s_write (path, 1, NULL);
    clip = wan21_clip_load (b, path, 2, &err);
    assert (!clip && strstr (err, "not an open-clip ViT"));
    FILE *f = fopen (path, "w");
    assert (f);
    fputs ("not a checkpoint", f);
    fclose (f);
    clip = wan21_clip_load (b, path, 2, &err);
    assert (!clip && err);
    if (verbose)
        printf ("   garbage: %s\n", err);
    unlink (path);
    rmdir (dir);
    free (err);
    free (rgb);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
