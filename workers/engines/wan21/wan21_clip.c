/*  wan21_clip.c - the CLIP ViT-H/14 visual tower of Wan 2.1 image-to-video (wan21_clip.h).
*/
#include "wan21_clip.h"
#include "vdgx_attn.h"
#include "vdgx_util.h"
#include "vdgx_wsrc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    vdgx_norm_t norm1, norm2;
    vdgx_attn_t attn;               //  q, k, v from the fused to_qkv; o = proj
    vdgx_mlp_t mlp;                 //  mlp.0, erf GELU, mlp.2
} s_block_t;

struct _wan21_clip_t {
    vdgx_backend_t *b;
    int dim, heads, patch, size, grid, tokens, blocks;
    vdgx_linear_t patch_embedding;  //  [dim, 3 * patch * patch], no bias
    float *cls, *pos;               //  host [dim], [tokens, dim]
    vdgx_norm_t pre_norm;
    s_block_t *blk;
    wan21_clip_tap_fn *tap;
    void *tap_arg;
};

static const float s_mean [3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float s_std [3] = { 0.26862954f, 0.26130258f, 0.27577711f };

void
wan21_clip_to_planar (const uint8_t *rgb, int width, int height, float *img)
{
    assert (rgb && width > 0 && height > 0 && img);
    size_t hw = (size_t) width * (size_t) height;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++)
            img [c * hw + i] = ((float) rgb [3 * i + c] / 255.0f - 0.5f) / 0.5f;
}

void
wan21_clip_preprocess_planar (const float *img, int width, int height, int size, float *pixels)
{
    assert (img && width > 0 && height > 0 && size > 0 && pixels);
    vdgx_nn_resize_bicubic (img, 3, height, width, size, size, pixels);
    size_t ss = (size_t) size * (size_t) size;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < ss; i++)
            pixels [c * ss + i] = (pixels [c * ss + i] * 0.5f + 0.5f - s_mean [c]) / s_std [c];
}

void
wan21_clip_preprocess (const uint8_t *rgb, int width, int height, int size, float *pixels)
{
    assert (rgb && width > 0 && height > 0 && size > 0 && pixels);
    size_t hw = (size_t) width * (size_t) height;
    float *img = malloc (3 * hw * sizeof (float));
    assert (img);
    wan21_clip_to_planar (rgb, width, height, img);
    wan21_clip_preprocess_planar (img, width, height, size, pixels);
    free (img);
}

void
wan21_clip_destroy (wan21_clip_t **self_p)
{
    assert (self_p);
    wan21_clip_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->b;
    vdgx_linear_release (b, &self->patch_embedding);
    vdgx_norm_release (b, &self->pre_norm);
    for (int i = 0; self->blk && i < self->blocks; i++) {
        vdgx_norm_release (b, &self->blk [i].norm1);
        vdgx_norm_release (b, &self->blk [i].norm2);
        vdgx_attn_release (b, &self->blk [i].attn);
        vdgx_mlp_release (b, &self->blk [i].mlp);
    }
    free (self->blk);
    free (self->cls);
    free (self->pos);
    free (self);
    *self_p = NULL;
}

int wan21_clip_dim (wan21_clip_t *self) { return self->dim; }
int wan21_clip_tokens (wan21_clip_t *self) { return self->tokens; }
int wan21_clip_image_size (wan21_clip_t *self) { return self->size; }
int wan21_clip_blocks (wan21_clip_t *self) { return self->blocks; }

void
wan21_clip_set_tap (wan21_clip_t *self, wan21_clip_tap_fn *fn, void *arg)
{
    assert (self);
    self->tap = fn;
    self->tap_arg = arg;
}

//  The fused to_qkv [3d, d] (+ bias) into the module's q, k, v linears.
static int
s_load_qkv (wan21_clip_t *self, vdgx_wsrc_t *src, const char *layer, vdgx_attn_t *a,
            vdgx_wfmt_t fmt, char **err)
{
    int64_t d = self->dim;
    char name [160];
    snprintf (name, sizeof name, "%.140s.weight", layer);
    const int64_t ws [2] = { 3 * d, d }, bs [1] = { 3 * d };
    float *w = vdgx_wsrc_fetch (src, name, 2, ws, err);
    snprintf (name, sizeof name, "%.140s.bias", layer);
    float *bias = w? vdgx_wsrc_fetch (src, name, 1, bs, err): NULL;
    int rc = bias? 0: -1;
    vdgx_linear_t *lin [3] = { &a->q, &a->k, &a->v };
    vdgx_dtype_t act = vdgx_backend_act_dtype (self->b);
    for (int i = 0; i < 3 && !rc; i++)
        rc = vdgx_linear_from_f32 (self->b, lin [i], fmt, w + i * d * d, bias + i * d, d, d, act, err);
    free (w);
    free (bias);
    return rc;
}

static int
s_load_all (wan21_clip_t *self, vdgx_wsrc_t *src, char **err)
{
    vdgx_backend_t *b = self->b;
    int64_t d = self->dim;
    vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    vdgx_wfmt_t fmt = act == VDGX_DTYPE_F32? VDGX_WFMT_F32: VDGX_WFMT_BF16;
    const float eps = 1e-5f;
    const int64_t cs [1] = { d }, ps [2] = { self->tokens, d };
    if (vdgx_wsrc_linear (src, b, "visual.patch_embedding", d, 3 * self->patch * self->patch, fmt,
                          -1, &self->patch_embedding, err)
    ||  !(self->cls = vdgx_wsrc_fetch (src, "visual.cls_embedding", 1, cs, err))
    ||  !(self->pos = vdgx_wsrc_fetch (src, "visual.pos_embedding", 2, ps, err))
    ||  vdgx_wsrc_norm (src, b, &self->pre_norm, VDGX_NORM_LAYER, "visual.pre_norm", d, eps, true,
                        true, false, err))
        return -1;
    for (int i = 0; i < self->blocks; i++) {
        s_block_t *blk = &self->blk [i];
        char p [96], name [128];
        snprintf (p, sizeof p, "visual.transformer.%d", i);
        vdgx_attn_init (&blk->attn, d, self->heads, self->heads, d / self->heads);
        blk->mlp = (vdgx_mlp_t) { .kind = VDGX_MLP_PLAIN, .act = VDGX_ACT_GELU, .dim = d, .hidden = 4 * d };
        snprintf (name, sizeof name, "%s.norm1", p);
        if (vdgx_wsrc_norm (src, b, &blk->norm1, VDGX_NORM_LAYER, name, d, eps, true, true, false, err))
            return -1;
        snprintf (name, sizeof name, "%s.norm2", p);
        if (vdgx_wsrc_norm (src, b, &blk->norm2, VDGX_NORM_LAYER, name, d, eps, true, true, false, err))
            return -1;
        snprintf (name, sizeof name, "%s.attn.to_qkv", p);
        if (s_load_qkv (self, src, name, &blk->attn, fmt, err))
            return -1;
        snprintf (name, sizeof name, "%s.attn.proj", p);
        if (vdgx_wsrc_linear (src, b, name, d, d, fmt, act, &blk->attn.o, err))
            return -1;
        snprintf (name, sizeof name, "%s.mlp.0", p);
        if (vdgx_wsrc_linear (src, b, name, 4 * d, d, fmt, act, &blk->mlp.up, err))
            return -1;
        snprintf (name, sizeof name, "%s.mlp.2", p);
        if (vdgx_wsrc_linear (src, b, name, d, 4 * d, fmt, act, &blk->mlp.down, err))
            return -1;
    }
    return 0;
}

wan21_clip_t *
wan21_clip_load (vdgx_backend_t *backend, const char *path, int heads, char **err)
{
    assert (backend && path);
    char *e = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &e);
    if (!ckpt) {
        vdgx_set_error (err, "wan21 clip: %s: %s", path, e? e: "cannot open");
        free (e);
        return NULL;
    }
    const vdgx_ckpt_tensor_t *pe = vdgx_ckpt_find (ckpt, "visual.patch_embedding.weight");
    const vdgx_ckpt_tensor_t *pos = vdgx_ckpt_find (ckpt, "visual.pos_embedding");
    int blocks = 0;
    for (;; blocks++) {
        char name [96];
        snprintf (name, sizeof name, "visual.transformer.%d.norm1.weight", blocks);
        if (!vdgx_ckpt_find (ckpt, name))
            break;
    }
    if (heads <= 0)
        heads = WAN21_CLIP_HEADS;
    wan21_clip_t *self = NULL;
    if (!pe || !pos || pe->ndim != 4 || pe->shape [1] != 3 || pe->shape [2] != pe->shape [3]
    ||  pe->shape [2] <= 0 || pe->shape [0] <= 0 || pos->ndim < 2 || blocks < 2) {
        vdgx_set_error (err, "wan21 clip: %s is not an open-clip ViT checkpoint (no visual patch "
                        "embedding / position embedding / 2 or more blocks)", path);
        goto done;
    }
    int64_t dim = pe->shape [0], patch = pe->shape [2], tokens = pos->shape [pos->ndim - 2];
    int64_t grid = 1;
    while (grid * grid < tokens - 1)
        grid++;
    if (pos->shape [pos->ndim - 1] != dim || grid * grid != tokens - 1 || dim % heads
    ||  grid * patch > 4096) {
        vdgx_set_error (err, "wan21 clip: %s: position embedding of %lld tokens x %lld does not fit "
                        "a square grid of width %lld with %d heads", path, (long long) tokens,
                        (long long) pos->shape [pos->ndim - 1], (long long) dim, heads);
        goto done;
    }
    self = calloc (1, sizeof (*self));
    if (!self) {
        vdgx_set_error (err, "wan21 clip: out of memory");
        goto done;
    }
    self->b = backend;
    self->dim = (int) dim;
    self->heads = heads;
    self->patch = (int) patch;
    self->grid = (int) grid;
    self->size = (int) (grid * patch);
    self->tokens = (int) tokens;
    self->blocks = blocks - 1;      //  use_31_block: the last block is not run
    self->blk = calloc ((size_t) self->blocks, sizeof (s_block_t));
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, NULL, "wan21 clip");
    if (!self->blk || !src || s_load_all (self, src, err)) {
        if (!self->blk || !src)
            vdgx_set_error (err, "wan21 clip: out of memory");
        wan21_clip_destroy (&self);
    }
    vdgx_wsrc_destroy (&src);
done:
    vdgx_ckpt_destroy (&ckpt);
    return self;
}

static int
s_fail (wan21_clip_t *self, char **err, const char *what)
{
    vdgx_set_error (err, "wan21 clip: %s failed: %s", what, vdgx_backend_error (self->b));
    return -1;
}

int
wan21_clip_encode_pixels (wan21_clip_t *self, const float *pixels, float *features, char **err)
{
    assert (self && pixels && features);
    vdgx_backend_t *b = self->b;
    vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    int64_t d = self->dim, N = self->tokens, P = N - 1, pin = 3 * (int64_t) self->patch * self->patch;
    const int patch [3] = { 1, self->patch, self->patch };
    float *host = malloc ((size_t) (P * pin > N * d? P * pin: N * d) * sizeof (float));
    vdgx_tensor_t pt = { 0 }, pe = { 0 }, x = { 0 }, h = { 0 }, y = { 0 }, f1 = { 0 }, f2 = { 0 };
    int rc = -1;
    if (!host) {
        vdgx_set_error (err, "wan21 clip: out of memory");
        return -1;
    }
    //  Patch embedding as a linear layer over (c, ky, kx) patch vectors.
    vdgx_nn_patchify3d (pixels, 3, 1, self->size, self->size, patch, host);
    const int64_t pshape [3] = { 1, P, pin };
    if (vdgx_nn_upload (b, &pt, act, 3, pshape, host)
    ||  vdgx_nn_alloc (b, &pe, act, 1, P, d, 0)
    ||  vdgx_linear_forward (b, &self->patch_embedding, &pe, &pt)) {
        s_fail (self, err, "patch embedding");
        goto out;
    }
    if (self->tap)
        self->tap (self->tap_arg, "patch_embedding", &pe);
    //  tokens = cat(cls, patches) + pos, on the host.
    if (vdgx_tensor_to_f32 (b, &pe, host + d)) {
        s_fail (self, err, "download");
        goto out;
    }
    memcpy (host, self->cls, (size_t) d * sizeof (float));
    for (int64_t i = 0; i < N * d; i++)
        host [i] += self->pos [i];
    const int64_t xshape [3] = { 1, N, d };
    if (vdgx_nn_upload (b, &x, act, 3, xshape, host)
    ||  vdgx_nn_alloc (b, &h, act, 1, N, d, 0)
    ||  vdgx_nn_alloc (b, &y, act, 1, N, d, 0)
    ||  vdgx_nn_alloc (b, &f1, act, 1, N, 4 * d, 0)
    ||  vdgx_nn_alloc (b, &f2, act, 1, N, 4 * d, 0)) {
        s_fail (self, err, "allocation");
        goto out;
    }
    if (vdgx_norm_forward (b, &self->pre_norm, &h, &x)) {
        s_fail (self, err, "pre_norm");
        goto out;
    }
    if (self->tap)
        self->tap (self->tap_arg, "pre_norm", &h);
    {   vdgx_tensor_t t = x; x = h; h = t; }
    for (int i = 0; i < self->blocks; i++) {
        const s_block_t *blk = &self->blk [i];
        if (vdgx_norm_forward (b, &blk->norm1, &h, &x)
        ||  vdgx_attn_forward (b, &blk->attn, &y, &h, NULL, NULL, NULL, NULL, NULL, err)) {
            s_fail (self, err, "attention");
            goto out;
        }
        if (i == 0 && self->tap)
            self->tap (self->tap_arg, "transformer.0.attn", &y);
        if (vdgx_adaln_gate (b, &x, &y, NULL)
        ||  vdgx_norm_forward (b, &blk->norm2, &h, &x)
        ||  vdgx_mlp_forward (b, &blk->mlp, &y, &h, &f1, &f2)) {
            s_fail (self, err, "mlp");
            goto out;
        }
        if (i == 0 && self->tap)
            self->tap (self->tap_arg, "transformer.0.mlp", &y);
        if (vdgx_adaln_gate (b, &x, &y, NULL)) {
            s_fail (self, err, "residual");
            goto out;
        }
        if (self->tap) {
            char name [48];
            snprintf (name, sizeof name, "transformer.%d", i);
            self->tap (self->tap_arg, name, &x);
        }
    }
    if (vdgx_tensor_to_f32 (b, &x, features)) {
        s_fail (self, err, "download");
        goto out;
    }
    rc = 0;
out:
    vdgx_tensor_t *tmp [] = { &pt, &pe, &x, &h, &y, &f1, &f2 };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        vdgx_nn_free (b, tmp [i]);
    free (host);
    return rc;
}

//  Preprocesses one image (8-bit interleaved rgb, or planar floats) and encodes it.
static int
s_encode (wan21_clip_t *self, const uint8_t *rgb, const float *planar, int width, int height,
          float *features, char **err)
{
    if (width <= 0 || height <= 0) {
        vdgx_set_error (err, "wan21 clip: empty image (%dx%d)", width, height);
        return -1;
    }
    size_t n = 3 * (size_t) self->size * (size_t) self->size;
    float *pixels = malloc (n * sizeof (float));
    if (!pixels) {
        vdgx_set_error (err, "wan21 clip: out of memory");
        return -1;
    }
    if (rgb)
        wan21_clip_preprocess (rgb, width, height, self->size, pixels);
    else
        wan21_clip_preprocess_planar (planar, width, height, self->size, pixels);
    int rc = wan21_clip_encode_pixels (self, pixels, features, err);
    free (pixels);
    return rc;
}

int
wan21_clip_encode_planar (wan21_clip_t *self, const float *img, int width, int height,
                          float *features, char **err)
{
    assert (self && img && features);
    return s_encode (self, NULL, img, width, height, features, err);
}

int
wan21_clip_encode (wan21_clip_t *self, const uint8_t *rgb, int width, int height, float *features,
                   char **err)
{
    assert (self && rgb && features);
    return s_encode (self, rgb, NULL, width, height, features, err);
}
