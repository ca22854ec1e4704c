/*  ltx2_vae.c - the LTX-2 / LTX-2.3 video VAE decoder (see ltx2_vae.h).

    Every activation is a backend tensor [1, C, F, H, W] in the act dtype; the whole latent is
    decoded at once, as the official one-stage pipelines do, or tile by tile (opts.tiling): each
    tile is a whole-latent decode into a host f32 buffer, blended into a host accumulator of
    [3 + 1 weight] x (the longest temporal tile's frames) x H x W. The time embedders (timestep-
    conditioned decoders) run once per decode (per tile); their modulation rows (table + embedding) are
    summed on the host and uploaded as F32 [C] shift / scale vectors.
*/
#include "ltx2_vae.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdgx_conv.h"
#include "vdgx_nn.h"
#include "vdgx_torchrng.h"
#include "vdgx_util.h"
#include "vdgx_wsrc.h"

#define S_PIXEL_EPS     1e-8f
#define S_TIME_DIM      256         //  sinusoid width of the time embedders
#define S_DEFAULT_T     0.05f       //  decode_timestep
#define S_DEFAULT_NOISE 0.025f      //  decode_noise_scale
#define S_OUT_CHANNELS  3

typedef struct {
    vdgx_tensor_t w, b;
} s_conv_t;

typedef struct {
    s_conv_t c1, c2;
    float *table;                   //  host [4, C]: shift1, scale1, shift2, scale2 (tc only)
} s_res_t;

typedef struct {
    ltx2_vae_block_t cfg;
    s_res_t *res;                   //  res_x: cfg.layers
    vdgx_linear_t te1, te2;         //  res_x time_embedder (tc only)
    s_conv_t conv;                  //  compress_*
    int stride [3];
} s_block_t;

struct _ltx2_vae_t {
    ltx2_vae_config_t cfg;
    vdgx_backend_t *backend;
    vdgx_dtype_t act;
    vdgx_wfmt_t wfmt;
    float *mean, *std;              //  host [latent_channels]
    float time_scale;               //  timestep_scale_multiplier
    s_conv_t conv_in, conv_out;
    s_block_t blocks [LTX2_VAE_MAX_BLOCKS];
    float *last_table;              //  host [2, C]: shift, scale (tc only)
    vdgx_linear_t lte1, lte2;       //  last_time_embedder
    uint64_t weight_bytes;
    ltx2_vae_tap_fn *tap;
    void *tap_ctx;
};

//  ---------------------------------------------------------------------------------------
//  Configuration

static void
s_stride (ltx2_vae_block_kind_t kind, int stride [3])
{
    stride [0] = kind == LTX2_VAE_COMPRESS_ALL || kind == LTX2_VAE_COMPRESS_TIME? 2: 1;
    stride [1] = stride [2] = kind == LTX2_VAE_COMPRESS_ALL || kind == LTX2_VAE_COMPRESS_SPACE? 2: 1;
}

static int
s_json_int (json_t *obj, const char *key, int dflt, int lo, int hi, int *out, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < lo || json_integer_value (v) > hi) {
        vdgx_set_error (err, "ltx2 vae: config %s must be an integer in [%d, %d]", key, lo, hi);
        return -1;
    }
    *out = (int) json_integer_value (v);
    return 0;
}

static int
s_json_bool (json_t *obj, const char *key, bool dflt, bool *out, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean (v)) {
        vdgx_set_error (err, "ltx2 vae: config %s must be true or false", key);
        return -1;
    }
    *out = json_is_true (v);
    return 0;
}

//  Channel widths in decode order: conv_in gives base * product of the compress multipliers;
//  each compress block divides by its multiplier.
static int
s_config_widths (ltx2_vae_config_t *c, char **err)
{
    int64_t width = c->base_channels;
    for (int i = 0; i < c->nblocks; i++)
        if (c->blocks [i].kind != LTX2_VAE_RES_X)
            width *= c->blocks [i].multiplier;
    if (width > 65536) {
        vdgx_set_error (err, "ltx2 vae: decoder widths too large (%lld)", (long long) width);
        return -1;
    }
    c->time_scale = 1;
    c->space_scale = c->patch_size;
    for (int i = 0; i < c->nblocks; i++) {
        ltx2_vae_block_t *bl = &c->blocks [i];
        bl->in_channels = (int) width;
        if (bl->kind != LTX2_VAE_RES_X) {
            int st [3];
            s_stride (bl->kind, st);
            if (width % bl->multiplier || (width * st [0] * st [1] * st [2]) % bl->multiplier) {
                vdgx_set_error (err, "ltx2 vae: block %d: width %lld not divisible by multiplier %d",
                                i, (long long) width, bl->multiplier);
                return -1;
            }
            width /= bl->multiplier;
            c->time_scale *= st [0];
            c->space_scale *= st [1];
        }
        bl->out_channels = (int) width;
    }
    return 0;
}

int
ltx2_vae_config_parse (const char *vae_json, int base_channels, ltx2_vae_config_t *cfg, char **err)
{
    assert (vae_json && cfg);
    memset (cfg, 0, sizeof (*cfg));
    json_error_t jerr;
    json_t *root = json_loads (vae_json, 0, &jerr);
    int rc = -1;
    if (!json_is_object (root)) {
        vdgx_set_error (err, "ltx2 vae: the vae config is not a JSON object (%s)", root? "not an object": jerr.text);
        goto out;
    }
    bool causal = false;
    if (s_json_int (root, "latent_channels", 128, 1, 4096, &cfg->latent_channels, err)
    ||  s_json_int (root, "patch_size", 4, 1, 16, &cfg->patch_size, err)
    ||  s_json_int (root, "decoder_base_channels", base_channels > 0? base_channels: 0, 1, 8192,
                    &cfg->base_channels, err)
    ||  s_json_bool (root, "timestep_conditioning", true, &cfg->timestep_conditioning, err)
    ||  s_json_bool (root, "causal_decoder", false, &causal, err))
        goto out;
    if (cfg->base_channels <= 0) {
        vdgx_set_error (err, "ltx2 vae: config has no decoder_base_channels and none was given");
        goto out;
    }
    if (causal) {
        vdgx_set_error (err, "ltx2 vae: causal_decoder true is not supported (the LTX-2 decoders are non-causal)");
        goto out;
    }
    json_t *norm = json_object_get (root, "norm_layer");
    if (norm && (!json_is_string (norm) || strcmp (json_string_value (norm), "pixel_norm"))) {
        vdgx_set_error (err, "ltx2 vae: norm_layer must be pixel_norm");
        goto out;
    }
    json_t *dims = json_object_get (root, "dims");
    if (dims && (!json_is_integer (dims) || json_integer_value (dims) != 3)) {
        vdgx_set_error (err, "ltx2 vae: dims must be 3");
        goto out;
    }
    const char *pad_key = json_object_get (root, "decoder_spatial_padding_mode")? "decoder_spatial_padding_mode"
                                                                           : "spatial_padding_mode";
    json_t *pad = json_object_get (root, pad_key);
    if (pad && (!json_is_string (pad) || strcmp (json_string_value (pad), "reflect"))) {
        vdgx_set_error (err, "ltx2 vae: %s must be reflect", pad_key);
        goto out;
    }
    json_t *blocks = json_object_get (root, "decoder_blocks");
    size_t n = json_array_size (blocks);
    if (!json_is_array (blocks) || n == 0 || n > LTX2_VAE_MAX_BLOCKS) {
        vdgx_set_error (err, "ltx2 vae: decoder_blocks must be a list of 1 to %d blocks", LTX2_VAE_MAX_BLOCKS);
        goto out;
    }
    //  The list is in encoder order; the decoder runs it reversed.
    for (size_t i = 0; i < n; i++) {
        json_t *entry = json_array_get (blocks, n - 1 - i);
        json_t *name = json_array_get (entry, 0), *params = json_array_get (entry, 1);
        if (!json_is_array (entry) || !json_is_string (name) || (params && !json_is_object (params))) {
            vdgx_set_error (err, "ltx2 vae: decoder_blocks [%zu] must be [name, {params}]", n - 1 - i);
            goto out;
        }
        json_t *empty = json_object ();
        if (!params)
            params = empty;
        ltx2_vae_block_t *bl = &cfg->blocks [i];
        const char *s = json_string_value (name);
        bool noise = false;
        int bad = 0;
        if (strcmp (s, "res_x") == 0) {
            bl->kind = LTX2_VAE_RES_X;
            bad = s_json_int (params, "num_layers", 1, 1, 64, &bl->layers, err)
               || s_json_bool (params, "inject_noise", false, &noise, err);
            if (!bad && noise) {
                vdgx_set_error (err, "ltx2 vae: res_x inject_noise true is not supported");
                bad = -1;
            }
        }
        else
        if (strcmp (s, "compress_all") == 0 || strcmp (s, "compress_time") == 0
        ||  strcmp (s, "compress_space") == 0) {
            bl->kind = s [9] == 'a'? LTX2_VAE_COMPRESS_ALL: s [9] == 't'? LTX2_VAE_COMPRESS_TIME
                                                                   : LTX2_VAE_COMPRESS_SPACE;
            bad = s_json_int (params, "multiplier", 1, 1, 8, &bl->multiplier, err)
               || s_json_bool (params, "residual", false, &bl->residual, err);
        }
        else {
            vdgx_set_error (err, "ltx2 vae: decoder block \"%s\" is not supported", s);
            bad = -1;
        }
        json_decref (empty);
        if (bad)
            goto out;
    }
    cfg->nblocks = (int) n;
    rc = s_config_widths (cfg, err);
out:
    json_decref (root);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Loading

typedef struct {
    vdgx_wsrc_t *src;
    vdgx_backend_t *b;
    ltx2_vae_t *self;
    char **err;
} s_loader_t;

//  Host f32 of an exactly shaped tensor (the weight source checks numel and the first dim).
static float *
s_fetch (s_loader_t *l, const char *name, int ndim, const int64_t *shape)
{
    const vdgx_ckpt_tensor_t *t = vdgx_wsrc_find (l->src, name);
    if (t) {
        bool same = t->ndim == ndim;
        for (int i = 0; same && i < ndim; i++)
            same = t->shape [i] == shape [i];
        if (!same) {
            char got [96] = "", want [96] = "";
            for (int i = 0; i < t->ndim; i++)
                snprintf (got + strlen (got), sizeof got - strlen (got), "%s%lld", i? ",": "", (long long) t->shape [i]);
            for (int i = 0; i < ndim; i++)
                snprintf (want + strlen (want), sizeof want - strlen (want), "%s%lld", i? ",": "", (long long) shape [i]);
            vdgx_set_error (l->err, "ltx2 vae: tensor %s has shape [%s], expected [%s]", name, got, want);
            return NULL;
        }
    }
    return vdgx_wsrc_fetch (l->src, name, ndim, shape, l->err);
}

static int
s_tensor (s_loader_t *l, vdgx_tensor_t *t, const char *name, vdgx_dtype_t dtype, int ndim,
          const int64_t *shape)
{
    float *buf = s_fetch (l, name, ndim, shape);
    if (!buf)
        return -1;
    int rc = vdgx_nn_upload (l->b, t, dtype, ndim, shape, buf);
    free (buf);
    if (rc)
        return vdgx_nn_fail (l->b, l->err, "ltx2 vae", name);
    l->self->weight_bytes += (uint64_t) vdgx_tensor_numel (t) * vdgx_dtype_size (dtype);
    return 0;
}

static int
s_conv_load (s_loader_t *l, s_conv_t *c, const char *prefix, int64_t cin, int64_t cout)
{
    char name [256];
    const int64_t ws [5] = { cout, cin, 3, 3, 3 }, bs [1] = { cout };
    snprintf (name, sizeof name, "vae.decoder.%s.conv.weight", prefix);
    if (s_tensor (l, &c->w, name, l->self->act, 5, ws))
        return -1;
    snprintf (name, sizeof name, "vae.decoder.%s.conv.bias", prefix);
    return s_tensor (l, &c->b, name, l->self->act, 1, bs);
}

static int
s_linear_load (s_loader_t *l, vdgx_linear_t *lin, const char *prefix, int64_t n, int64_t k)
{
    char name [256];
    const int64_t ws [2] = { n, k }, bs [1] = { n };
    snprintf (name, sizeof name, "%s.weight", prefix);
    float *w = s_fetch (l, name, 2, ws);
    snprintf (name, sizeof name, "%s.bias", prefix);
    float *b = w? s_fetch (l, name, 1, bs): NULL;
    int rc = b? vdgx_linear_from_f32 (l->b, lin, l->self->wfmt, w, b, n, k, VDGX_DTYPE_F32, l->err): -1;
    if (rc == 0)
        l->self->weight_bytes += (uint64_t) (n * k + n) * (l->self->wfmt == VDGX_WFMT_F32? 4: 2);
    free (w);
    free (b);
    return rc;
}

//  timestep_embedder.linear_1 [n, 256] and linear_2 [n, n] of a time embedder.
static int
s_embedder_load (s_loader_t *l, vdgx_linear_t *l1, vdgx_linear_t *l2, const char *prefix, int64_t n)
{
    char name [256];
    snprintf (name, sizeof name, "vae.decoder.%s.timestep_embedder.linear_1", prefix);
    if (s_linear_load (l, l1, name, n, S_TIME_DIM))
        return -1;
    snprintf (name, sizeof name, "vae.decoder.%s.timestep_embedder.linear_2", prefix);
    return s_linear_load (l, l2, name, n, n);
}

static int
s_build (ltx2_vae_t *self, vdgx_wsrc_t *src, vdgx_ckpt_t *ckpt, char **err)
{
    s_loader_t l = { src, self->backend, self, err };
    const ltx2_vae_config_t *c = &self->cfg;
    int64_t lc = c->latent_channels;
    const int64_t cs [1] = { lc };
    self->mean = s_fetch (&l, "vae.per_channel_statistics.mean-of-means", 1, cs);
    self->std = self->mean? s_fetch (&l, "vae.per_channel_statistics.std-of-means", 1, cs): NULL;
    if (!self->std)
        return -1;
    int64_t w0 = c->nblocks? c->blocks [0].in_channels: c->base_channels;
    if (s_conv_load (&l, &self->conv_in, "conv_in", lc, w0))
        return -1;
    char prefix [128];
    for (int i = 0; i < c->nblocks; i++) {
        s_block_t *bl = &self->blocks [i];
        bl->cfg = c->blocks [i];
        s_stride (bl->cfg.kind, bl->stride);
        int64_t ch = bl->cfg.in_channels;
        if (bl->cfg.kind != LTX2_VAE_RES_X) {
            snprintf (prefix, sizeof prefix, "up_blocks.%d.conv", i);
            int64_t cout = ch * bl->stride [0] * bl->stride [1] * bl->stride [2] / bl->cfg.multiplier;
            if (s_conv_load (&l, &bl->conv, prefix, ch, cout))
                return -1;
            continue;
        }
        bl->res = (s_res_t *) calloc ((size_t) bl->cfg.layers, sizeof (s_res_t));
        if (!bl->res) {
            vdgx_set_error (err, "ltx2 vae: out of memory");
            return -1;
        }
        if (c->timestep_conditioning) {
            snprintf (prefix, sizeof prefix, "up_blocks.%d.time_embedder", i);
            if (s_embedder_load (&l, &bl->te1, &bl->te2, prefix, 4 * ch))
                return -1;
        }
        for (int r = 0; r < bl->cfg.layers; r++) {
            snprintf (prefix, sizeof prefix, "up_blocks.%d.res_blocks.%d.conv1", i, r);
            if (s_conv_load (&l, &bl->res [r].c1, prefix, ch, ch))
                return -1;
            snprintf (prefix, sizeof prefix, "up_blocks.%d.res_blocks.%d.conv2", i, r);
            if (s_conv_load (&l, &bl->res [r].c2, prefix, ch, ch))
                return -1;
            if (c->timestep_conditioning) {
                char name [160];
                snprintf (name, sizeof name, "vae.decoder.up_blocks.%d.res_blocks.%d.scale_shift_table", i, r);
                const int64_t ts [2] = { 4, ch };
                if (!(bl->res [r].table = s_fetch (&l, name, 2, ts)))
                    return -1;
            }
        }
    }
    int64_t wl = c->nblocks? c->blocks [c->nblocks - 1].out_channels: c->base_channels;
    int64_t cout = (int64_t) S_OUT_CHANNELS * c->patch_size * c->patch_size;
    if (s_conv_load (&l, &self->conv_out, "conv_out", wl, cout))
        return -1;
    self->time_scale = 1.0f;
    if (c->timestep_conditioning) {
        const int64_t ts [2] = { 2, wl };
        if (!(self->last_table = s_fetch (&l, "vae.decoder.last_scale_shift_table", 2, ts))
        ||  s_embedder_load (&l, &self->lte1, &self->lte2, "last_time_embedder", 2 * wl))
            return -1;
        //  timestep_scale_multiplier: a scalar (shape [] or [1]).
        const char *name = "vae.decoder.timestep_scale_multiplier";
        if (ckpt) {
            const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (ckpt, name);
            int64_t numel = 1;
            for (int i = 0; t && i < t->ndim; i++)
                numel *= t->shape [i];
            char *e = NULL;
            if (!t || numel != 1 || vdgx_ckpt_read_f32 (t, &self->time_scale, &e)
            ||  !isfinite (self->time_scale)) {
                vdgx_set_error (err, "ltx2 vae: tensor %s is missing, not a scalar or unreadable%s%s",
                                name, e? ": ": "", e? e: "");
                free (e);
                return -1;
            }
        }
        else
            self->time_scale = 1000.0f;
    }
    return 0;
}

static ltx2_vae_t *
s_new (const ltx2_vae_config_t *cfg, vdgx_backend_t *backend, vdgx_wsrc_t *src, vdgx_ckpt_t *ckpt,
       char **err)
{
    ltx2_vae_t *self = (ltx2_vae_t *) calloc (1, sizeof (ltx2_vae_t));
    if (!self) {
        vdgx_set_error (err, "ltx2 vae: out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->backend = backend;
    self->act = vdgx_backend_act_dtype (backend);
    self->wfmt = self->act == VDGX_DTYPE_F32? VDGX_WFMT_F32: self->act == VDGX_DTYPE_F16? VDGX_WFMT_F16
                                                                                   : VDGX_WFMT_BF16;
    if (s_build (self, src, ckpt, err))
        ltx2_vae_destroy (&self);
    return self;
}

ltx2_vae_t *
ltx2_vae_new_from_ckpt (vdgx_ckpt_t *ckpt, vdgx_backend_t *backend, char **err)
{
    assert (ckpt && backend);
    const char *text = vdgx_ckpt_metadata (ckpt, "config");
    json_error_t jerr;
    json_t *root = text? json_loads (text, 0, &jerr): NULL;
    json_t *vae = json_object_get (root, "vae");
    if (!json_is_object (vae)) {
        vdgx_set_error (err, "ltx2 vae: the checkpoint has no __metadata__ config with a \"vae\" object");
        json_decref (root);
        return NULL;
    }
    char *vae_text = json_dumps (vae, JSON_COMPACT);
    json_decref (root);
    //  The LTX-2 19B release has no decoder_base_channels: the width conv_out reads.
    int base = 0;
    const vdgx_ckpt_tensor_t *out = vdgx_ckpt_find (ckpt, "vae.decoder.conv_out.conv.weight");
    if (out && out->ndim == 5 && out->shape [1] > 0 && out->shape [1] <= 8192)
        base = (int) out->shape [1];
    ltx2_vae_config_t cfg;
    int rc = vae_text? ltx2_vae_config_parse (vae_text, base, &cfg, err): -1;
    if (!vae_text)
        vdgx_set_error (err, "ltx2 vae: out of memory");
    free (vae_text);
    if (rc)
        return NULL;
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, NULL, "ltx2 vae");
    ltx2_vae_t *self = src? s_new (&cfg, backend, src, ckpt, err): NULL;
    if (!src)
        vdgx_set_error (err, "ltx2 vae: out of memory");
    vdgx_wsrc_destroy (&src);
    return self;
}

ltx2_vae_t *
ltx2_vae_new (const char *path, vdgx_backend_t *backend, char **err)
{
    assert (path && backend);
    char *e = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &e);
    if (!ckpt) {
        vdgx_set_error (err, "ltx2 vae: %s: %s", path, e? e: "cannot open");
        free (e);
        return NULL;
    }
    ltx2_vae_t *self = ltx2_vae_new_from_ckpt (ckpt, backend, err);
    vdgx_ckpt_destroy (&ckpt);
    return self;
}

ltx2_vae_t *
ltx2_vae_new_random (const ltx2_vae_config_t *cfg, vdgx_backend_t *backend, uint64_t seed, char **err)
{
    assert (cfg && backend);
    ltx2_vae_config_t c = *cfg;
    if (c.nblocks < 0 || c.nblocks > LTX2_VAE_MAX_BLOCKS || c.base_channels <= 0
    ||  c.latent_channels <= 0 || c.patch_size <= 0 || s_config_widths (&c, err))
        return NULL;
    vdgx_wsrc_t *src = vdgx_wsrc_new_random (seed, "ltx2 vae");
    ltx2_vae_t *self = src? s_new (&c, backend, src, NULL, err): NULL;
    vdgx_wsrc_destroy (&src);
    if (self)       //  statistics of a usable scale (random ones are ~0.02)
        for (int i = 0; i < c.latent_channels; i++) {
            self->mean [i] = 0.0f;
            self->std [i] = 1.0f;
        }
    return self;
}

void
ltx2_vae_destroy (ltx2_vae_t **self_p)
{
    assert (self_p);
    ltx2_vae_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    vdgx_nn_free (b, &self->conv_in.w);
    vdgx_nn_free (b, &self->conv_in.b);
    vdgx_nn_free (b, &self->conv_out.w);
    vdgx_nn_free (b, &self->conv_out.b);
    for (int i = 0; i < LTX2_VAE_MAX_BLOCKS; i++) {
        s_block_t *bl = &self->blocks [i];
        vdgx_nn_free (b, &bl->conv.w);
        vdgx_nn_free (b, &bl->conv.b);
        vdgx_linear_release (b, &bl->te1);
        vdgx_linear_release (b, &bl->te2);
        for (int r = 0; bl->res && r < bl->cfg.layers; r++) {
            vdgx_nn_free (b, &bl->res [r].c1.w);
            vdgx_nn_free (b, &bl->res [r].c1.b);
            vdgx_nn_free (b, &bl->res [r].c2.w);
            vdgx_nn_free (b, &bl->res [r].c2.b);
            free (bl->res [r].table);
        }
        free (bl->res);
    }
    vdgx_linear_release (b, &self->lte1);
    vdgx_linear_release (b, &self->lte2);
    free (self->last_table);
    free (self->mean);
    free (self->std);
    free (self);
    *self_p = NULL;
}

const ltx2_vae_config_t *
ltx2_vae_config (ltx2_vae_t *self)
{
    assert (self);
    return &self->cfg;
}

uint64_t
ltx2_vae_weight_bytes (ltx2_vae_t *self)
{
    assert (self);
    return self->weight_bytes;
}

//  ---------------------------------------------------------------------------------------
//  Tiling (the official video_vae tiling: split_in_spatial / split_in_temporal, the spatial
//  and temporal slice mappings and compute_trapezoidal_mask_1d)

//  How one latent axis is split: n intervals of `size` latent elements, `overlap` shared.
typedef struct {
    int64_t length, size, overlap;
    bool temporal;              //  later intervals start one earlier, left ramp one longer
    int64_t n;
} s_split_t;

static bool
s_tiling_on (const ltx2_vae_tiling_t *t)
{
    return t && (t->spatial_tile_px || t->spatial_overlap_px || t->temporal_tile_frames || t->temporal_overlap_frames);
}

//  One axis of a tiling: off (0, 0), or tile >= least, tile and overlap multiples of `step`,
//  overlap below the tile (the official SpatialTilingConfig / TemporalTilingConfig checks).
static int
s_axis_check (int tile, int overlap, int least, int step, const char *what, const char *unit, char **err)
{
    if (tile == 0 && overlap == 0)
        return 0;
    if (tile < least || tile % step || overlap < 0 || overlap % step || overlap >= tile) {
        vdgx_set_error (err, "ltx2 vae: %s tiles must be at least %d %s and a multiple of %d, the overlap "
                        "a multiple of %d below the tile (got %d, %d)", what, least, unit, step, step,
                        tile, overlap);
        return -1;
    }
    return 0;
}

static int
s_tiling_check (const ltx2_vae_tiling_t *t, char **err)
{
    return s_axis_check (t->spatial_tile_px, t->spatial_overlap_px, 64, 32, "spatial", "px", err)
        || s_axis_check (t->temporal_tile_frames, t->temporal_overlap_frames, 16, 8, "temporal", "frames", err)? -1: 0;
}

static void
s_split_init (s_split_t *s, int64_t length, int64_t size, int64_t overlap, bool temporal)
{
    s->length = length;
    s->size = size;
    s->overlap = overlap;
    s->temporal = temporal;
    //  One interval when the axis fits (or is not tiled); else ceil ((L - o) / (size - o)).
    s->n = size <= 0 || length <= size? 1: (length + size - 2 * overlap - 1) / (size - overlap);
}

//  The splits of a latent [frames, height, width] (tiling valid, or NULL / off).
static void
s_splits (const ltx2_vae_config_t *cfg, const ltx2_vae_tiling_t *t, int64_t frames, int64_t height,
          int64_t width, s_split_t sp [3])
{
    s_split_init (&sp [0], frames, 0, 0, true);
    s_split_init (&sp [1], height, 0, 0, false);
    s_split_init (&sp [2], width, 0, 0, false);
    if (t && t->spatial_tile_px > 0) {
        int64_t size = t->spatial_tile_px / cfg->space_scale, overlap = t->spatial_overlap_px / cfg->space_scale;
        int64_t longer = height > width? height: width, lower = overlap + 1 > 2? overlap + 1: 2;
        for (int a = 1; a < 3; a++) {
            int64_t len = a == 1? height: width;
            //  Python's round: halves to even, as nearbyint in the default rounding mode.
            int64_t tile = (int64_t) nearbyint ((double) (size * len) / (double) longer);
            s_split_init (&sp [a], len, tile > lower? tile: lower, overlap, false);
        }
    }
    if (t && t->temporal_tile_frames > 0)
        s_split_init (&sp [0], frames, t->temporal_tile_frames / cfg->time_scale,
                      t->temporal_overlap_frames / cfg->time_scale, true);
}

//  Interval i of a split in latent units: [*b, *e), ramps *lr, *rr.
static void
s_interval (const s_split_t *s, int64_t i, int64_t *b, int64_t *e, int64_t *lr, int64_t *rr)
{
    if (s->n == 1) {
        *b = 0;
        *e = s->length;
        *lr = *rr = 0;
        return;
    }
    *b = i * (s->size - s->overlap);
    *e = i == s->n - 1? s->length: *b + s->size;
    *lr = i == 0? 0: s->overlap;
    *rr = i == s->n - 1? 0: s->overlap;
    if (s->temporal && i > 0) {
        *b -= 1;
        *lr += 1;
    }
}

//  The pixel range [*pb, *pe) of interval i, and its blend mask (mask [pe - pb], NULL: only
//  the range). Untiled axes get a mask of ones, as the official default mapping.
static void
s_map (const s_split_t *s, int64_t i, int scale, int64_t *pb, int64_t *pe, float *mask)
{
    int64_t b, e, lr, rr;
    s_interval (s, i, &b, &e, &lr, &rr);
    bool from0 = s->temporal;
    if (s->temporal) {
        *pb = b * scale;
        *pe = 1 + (e - 1) * scale;
        lr = 1 + (lr - 1) * scale;
    }
    else {
        *pb = b * scale;
        *pe = e * scale;
        lr *= scale;
    }
    rr *= scale;
    if (!mask)
        return;
    int64_t len = *pe - *pb;
    lr = lr < 0? 0: lr > len? len: lr;
    rr = rr < 0? 0: rr > len? len: rr;
    for (int64_t k = 0; k < len; k++)
        mask [k] = 1.0f;
    if (s->n == 1)
        return;
    //  Left: linspace (0, 1, lr + 1) without its last value (from 0), or linspace (0, 1,
    //  lr + 2) without its first and last; right: linspace (1, 0, rr + 2) without both ends.
    for (int64_t k = 0; k < lr; k++)
        mask [k] *= from0? (float) ((double) k / (double) lr): (float) ((double) (k + 1) / (double) (lr + 1));
    for (int64_t k = 0; k < rr; k++)
        mask [len - rr + k] *= (float) (1.0 - (double) (k + 1) / (double) (rr + 1));
}

//  The longest interval of a split (latent units).
static int64_t
s_longest (const s_split_t *s)
{
    int64_t most = 0, b, e, lr, rr;
    for (int64_t i = 0; i < s->n; i++) {
        s_interval (s, i, &b, &e, &lr, &rr);
        if (e - b > most)
            most = e - b;
    }
    return most;
}

static uint64_t
s_whole_bytes (const ltx2_vae_config_t *cfg, int64_t frames, int64_t height, int64_t width,
               size_t act_size)
{
    assert (cfg);
    //  Largest tensor of the decode (a block's input or output, a compress conv's output, the
    //  48-channel conv_out); a residual block at that size holds its input, the normalised
    //  copy, its two padding stages and the output, a pixel norm two more: 7 of them.
    double f = (double) frames, h = (double) height, w = (double) width;
    double c = cfg->nblocks? cfg->blocks [0].in_channels: cfg->base_channels;
    double largest = c * f * h * w;
    for (int i = 0; i < cfg->nblocks; i++) {
        const ltx2_vae_block_t *bl = &cfg->blocks [i];
        if (bl->kind == LTX2_VAE_RES_X)
            continue;
        int st [3];
        s_stride (bl->kind, st);
        double conv = c * st [0] * st [1] * st [2] / bl->multiplier * f * h * w;
        largest = fmax (largest, conv);
        f = st [0] == 2? 2 * f - 1: f;
        h *= st [1];
        w *= st [2];
        c = bl->out_channels;
        largest = fmax (largest, c * f * h * w);
    }
    largest = fmax (largest, (double) S_OUT_CHANNELS * cfg->patch_size * cfg->patch_size * f * h * w);
    return (uint64_t) (7.0 * largest * (double) act_size);
}

int64_t
ltx2_vae_tiling_plan (const ltx2_vae_config_t *cfg, const ltx2_vae_tiling_t *tiling, int64_t frames,
                      int64_t height, int64_t width, float *sums [3], char **err)
{
    assert (cfg);
    if (frames < 1 || height < 1 || width < 1 || frames > 4096 || height > 4096 || width > 4096) {
        vdgx_set_error (err, "ltx2 vae: latent size out of range");
        return -1;
    }
    if (s_tiling_on (tiling) && s_tiling_check (tiling, err))
        return -1;
    s_split_t sp [3];
    s_splits (cfg, s_tiling_on (tiling)? tiling: NULL, frames, height, width, sp);
    const int scale [3] = { cfg->time_scale, cfg->space_scale, cfg->space_scale };
    const int64_t out [3] = { cfg->time_scale * (frames - 1) + 1, cfg->space_scale * height, cfg->space_scale * width };
    for (int a = 0; a < 3; a++) {
        if (!sums || !sums [a])
            continue;
        float *mask = (float *) malloc ((size_t) out [a] * sizeof (float));
        if (!mask) {
            vdgx_set_error (err, "ltx2 vae: out of memory");
            return -1;
        }
        memset (sums [a], 0, (size_t) out [a] * sizeof (float));
        for (int64_t i = 0; i < sp [a].n; i++) {
            int64_t pb, pe;
            s_map (&sp [a], i, scale [a], &pb, &pe, mask);
            for (int64_t k = pb; k < pe; k++)
                sums [a][k] += mask [k - pb];
        }
        free (mask);
    }
    return sp [0].n * sp [1].n * sp [2].n;
}

uint64_t
ltx2_vae_activation_bytes (const ltx2_vae_config_t *cfg, const ltx2_vae_tiling_t *tiling,
                           int64_t frames, int64_t height, int64_t width, size_t act_size)
{
    assert (cfg);
    if (!s_tiling_on (tiling) || s_tiling_check (tiling, NULL))
        return s_whole_bytes (cfg, frames, height, width, act_size);
    //  Tiles are decoded one after another; the estimate grows with each side.
    s_split_t sp [3];
    s_splits (cfg, tiling, frames, height, width, sp);
    return s_whole_bytes (cfg, s_longest (&sp [0]), s_longest (&sp [1]), s_longest (&sp [2]), act_size);
}

void
ltx2_vae_set_tap (ltx2_vae_t *self, ltx2_vae_tap_fn *fn, void *ctx)
{
    assert (self);
    self->tap = fn;
    self->tap_ctx = ctx;
}

//  ---------------------------------------------------------------------------------------
//  Decoding

static void
s_tap (ltx2_vae_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_ctx, name, t);
}

static int
s_fail (ltx2_vae_t *self, char **err, const char *what)
{
    return vdgx_nn_fail (self->backend, err, "ltx2 vae", what);
}

//  The time embedding of t (already scaled) through linear_1, SiLU, linear_2: host [n].
static int
s_time_embed (ltx2_vae_t *self, const vdgx_linear_t *l1, const vdgx_linear_t *l2, int64_t n,
              float t, float *out, char **err)
{
    vdgx_backend_t *b = self->backend;
    float sinus [S_TIME_DIM];
    vdgx_nn_sinusoidal ((double) t, S_TIME_DIM, 10000.0, true, sinus);
    const int64_t s1 [2] = { 1, S_TIME_DIM };
    vdgx_tensor_t x = { 0 }, h = { 0 }, y = { 0 };
    int rc = vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 2, s1, sinus)
          || vdgx_nn_alloc (b, &h, VDGX_DTYPE_F32, 1, n, 0, 0)
          || vdgx_nn_alloc (b, &y, VDGX_DTYPE_F32, 1, n, 0, 0)
          || vdgx_linear_forward (b, l1, &h, &x)
          || vdgx_op_silu (b, &h, &h)
          || vdgx_linear_forward (b, l2, &y, &h)
          || vdgx_tensor_to_f32 (b, &y, out)? -1: 0;
    if (rc)
        s_fail (self, err, "time embedder");
    vdgx_nn_free (b, &x);
    vdgx_nn_free (b, &h);
    vdgx_nn_free (b, &y);
    return rc;
}

//  Uploads table row + embedding row (host) for `rows` rows of width c into F32 [c] tensors.
static int
s_mod_rows (ltx2_vae_t *self, const float *table, const float *emb, int64_t c, int rows,
            vdgx_tensor_t *out)
{
    float *row = (float *) malloc ((size_t) c * sizeof (float));
    if (!row)
        return -1;
    int rc = 0;
    for (int r = 0; r < rows && rc == 0; r++) {
        for (int64_t i = 0; i < c; i++)
            row [i] = table [r * c + i] + emb [r * c + i];
        const int64_t s [1] = { c };
        rc = vdgx_nn_upload (self->backend, &out [r], VDGX_DTYPE_F32, 1, s, row);
    }
    free (row);
    return rc;
}

//  y = conv (silu (pixel_norm (x) [* (1 + scale) + shift])).
static int
s_norm_act_conv (ltx2_vae_t *self, const vdgx_tensor_t *x, const vdgx_tensor_t *shift,
                 const vdgx_tensor_t *scale, const s_conv_t *conv, vdgx_tensor_t *y, char **err)
{
    vdgx_backend_t *b = self->backend;
    vdgx_tensor_t h = { 0 };
    int rc = vdgx_pixel_norm (b, &h, x, S_PIXEL_EPS, shift, scale)
          || vdgx_op_silu (b, &h, &h)
          || vdgx_conv3d_same (b, y, &h, &conv->w, &conv->b, VDGX_PAD_REPLICATE, VDGX_PAD_REFLECT)? -1: 0;
    vdgx_nn_free (b, &h);
    return rc? s_fail (self, err, "residual block"): 0;
}

//  A res_x group: *x is replaced by the group's output.
static int
s_res_x (ltx2_vae_t *self, int index, const s_block_t *bl, float t, vdgx_tensor_t *x, char **err)
{
    vdgx_backend_t *b = self->backend;
    int64_t c = bl->cfg.in_channels;
    float *emb = NULL;
    vdgx_tensor_t mod [4] = { { 0 } };
    int rc = 0;
    if (self->cfg.timestep_conditioning) {
        emb = (float *) malloc ((size_t) (4 * c) * sizeof (float));
        if (!emb || s_time_embed (self, &bl->te1, &bl->te2, 4 * c, t, emb, err))
            goto fail;
        if (self->tap) {
            vdgx_tensor_t et = { 0 };
            const int64_t s [2] = { 1, 4 * c };
            char name [64];
            snprintf (name, sizeof name, "up_blocks.%d.time_embedder", index);
            if (vdgx_nn_upload (b, &et, VDGX_DTYPE_F32, 2, s, emb) == 0)
                s_tap (self, name, &et);
            vdgx_nn_free (b, &et);
        }
    }
    for (int r = 0; r < bl->cfg.layers && rc == 0; r++) {
        const s_res_t *res = &bl->res [r];
        bool tc = self->cfg.timestep_conditioning;
        if (tc && s_mod_rows (self, res->table, emb, c, 4, mod)) {
            s_fail (self, err, "modulation upload");
            goto fail;
        }
        vdgx_tensor_t h1 = { 0 }, h2 = { 0 };
        rc = s_norm_act_conv (self, x, tc? &mod [0]: NULL, tc? &mod [1]: NULL, &res->c1, &h1, err)
          || s_norm_act_conv (self, &h1, tc? &mod [2]: NULL, tc? &mod [3]: NULL, &res->c2, &h2, err)? -1: 0;
        if (rc == 0 && vdgx_op_add_scaled (b, &h2, &h2, x, 1.0f))
            rc = s_fail (self, err, "residual add");
        vdgx_nn_free (b, &h1);
        if (rc == 0) {
            vdgx_nn_free (b, x);
            *x = h2;
        }
        else
            vdgx_nn_free (b, &h2);
        for (int i = 0; i < 4; i++)
            vdgx_nn_free (b, &mod [i]);
    }
    free (emb);
    return rc;
fail:
    free (emb);
    return -1;
}

//  Frames [1, ...) of x along time (the first frame dropped after a time doubling).
static int
s_drop_first (vdgx_backend_t *b, vdgx_tensor_t *x)
{
    int64_t shape [5] = { 1, x->shape [1], x->shape [2] - 1, x->shape [3], x->shape [4] };
    vdgx_tensor_t y = { 0 };
    if (vdgx_tensor_alloc (b, &y, x->dtype, 5, shape) || vdgx_op_slice (b, &y, x, 2, 1, shape [2])) {
        vdgx_nn_free (b, &y);
        return -1;
    }
    vdgx_nn_free (b, x);
    *x = y;
    return 0;
}

//  A compress_* block: conv, depth-to-space, [+ the tiled depth-to-space input].
static int
s_compress (ltx2_vae_t *self, const s_block_t *bl, vdgx_tensor_t *x, char **err)
{
    vdgx_backend_t *b = self->backend;
    vdgx_tensor_t h = { 0 }, y = { 0 }, res = { 0 };
    int rc = -1;
    if (vdgx_conv3d_same (b, &h, x, &bl->conv.w, &bl->conv.b, VDGX_PAD_REPLICATE, VDGX_PAD_REFLECT)
    ||  vdgx_depth_to_space3d (b, &y, &h, bl->stride)
    ||  (bl->stride [0] == 2 && s_drop_first (b, &y)))
        goto out;
    if (bl->cfg.residual) {
        //  x depth-to-space'd to C / (p1 p2 p3) channels, repeated along the channels up to
        //  C / multiplier (add_scaled repeats a smaller b).
        if (vdgx_depth_to_space3d (b, &res, x, bl->stride)
        ||  (bl->stride [0] == 2 && s_drop_first (b, &res))
        ||  vdgx_op_add_scaled (b, &y, &y, &res, 1.0f))
            goto out;
    }
    vdgx_nn_free (b, x);
    *x = y;
    memset (&y, 0, sizeof (y));
    rc = 0;
out:
    if (rc)
        s_fail (self, err, "compress block");
    vdgx_nn_free (b, &h);
    vdgx_nn_free (b, &y);
    vdgx_nn_free (b, &res);
    return rc;
}

static bool
s_cancelled (const ltx2_vae_decode_opts_t *opts)
{
    return opts && opts->cancel && atomic_load (opts->cancel);
}

//  Decodes one prepared latent block x0 (host, noise mixed in, de-normalised) [lc, f, h, w]
//  into *out, host f32 [3][F][H][W] unclamped (caller frees), osize = { F, H, W }.
//  Returns 0, -2 when cancelled, -1 with *err.
static int
s_decode_raw (ltx2_vae_t *self, const float *x0, int64_t frames, int64_t height, int64_t width,
              float t, const ltx2_vae_decode_opts_t *opts, float **out, int64_t osize [3], char **err)
{
    const ltx2_vae_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    int64_t lc = c->latent_channels;
    vdgx_tensor_t x = { 0 }, y = { 0 };
    vdgx_tensor_t mod [2] = { { 0 } };
    float *emb = NULL, *host = NULL;
    int rc = -1;
    const int64_t xs [5] = { 1, lc, frames, height, width };
    if (vdgx_nn_upload (b, &x, self->act, 5, xs, x0)) {
        s_fail (self, err, "latent upload");
        goto out;
    }
    s_tap (self, "conv_in_input", &x);
    if (vdgx_conv3d_same (b, &y, &x, &self->conv_in.w, &self->conv_in.b, VDGX_PAD_REPLICATE, VDGX_PAD_REFLECT)) {
        s_fail (self, err, "conv_in");
        goto out;
    }
    vdgx_nn_free (b, &x);
    x = y;
    memset (&y, 0, sizeof (y));
    s_tap (self, "conv_in", &x);
    float ts = t * self->time_scale;
    char name [64];
    for (int i = 0; i < c->nblocks; i++) {
        if (s_cancelled (opts)) {
            rc = -2;
            goto out;
        }
        const s_block_t *bl = &self->blocks [i];
        if (bl->cfg.kind == LTX2_VAE_RES_X? s_res_x (self, i, bl, ts, &x, err): s_compress (self, bl, &x, err))
            goto out;
        snprintf (name, sizeof name, "up_blocks.%d", i);
        s_tap (self, name, &x);
    }
    if (s_cancelled (opts)) {
        rc = -2;
        goto out;
    }
    //  Final norm [+ modulation], SiLU, conv_out.
    int64_t wl = x.shape [1];
    if (self->tap) {
        if (vdgx_pixel_norm (b, &y, &x, S_PIXEL_EPS, NULL, NULL)) {
            s_fail (self, err, "conv_norm_out");
            goto out;
        }
        s_tap (self, "conv_norm_out", &y);
        vdgx_nn_free (b, &y);
    }
    if (c->timestep_conditioning) {
        emb = (float *) malloc ((size_t) (2 * wl) * sizeof (float));
        if (!emb || s_time_embed (self, &self->lte1, &self->lte2, 2 * wl, ts, emb, err))
            goto out;
        if (self->tap) {
            vdgx_tensor_t et = { 0 };
            const int64_t s [2] = { 1, 2 * wl };
            if (vdgx_nn_upload (b, &et, VDGX_DTYPE_F32, 2, s, emb) == 0)
                s_tap (self, "last_time_embedder", &et);
            vdgx_nn_free (b, &et);
        }
        if (s_mod_rows (self, self->last_table, emb, wl, 2, mod)) {
            s_fail (self, err, "modulation upload");
            goto out;
        }
    }
    bool tc = c->timestep_conditioning;
    if (vdgx_pixel_norm (b, &y, &x, S_PIXEL_EPS, tc? &mod [0]: NULL, tc? &mod [1]: NULL)) {
        s_fail (self, err, "conv_norm_out");
        goto out;
    }
    vdgx_nn_free (b, &x);
    x = y;
    memset (&y, 0, sizeof (y));
    s_tap (self, "conv_act_input", &x);
    if (vdgx_op_silu (b, &x, &x)
    ||  vdgx_conv3d_same (b, &y, &x, &self->conv_out.w, &self->conv_out.b, VDGX_PAD_REPLICATE, VDGX_PAD_REFLECT)) {
        s_fail (self, err, "conv_out");
        goto out;
    }
    vdgx_nn_free (b, &x);
    x = y;
    memset (&y, 0, sizeof (y));
    s_tap (self, "conv_out", &x);

    //  Unpatchify: channel c*p*p + w_sub*p + h_sub -> (c, h*p + h_sub, w*p + w_sub).
    int64_t p = c->patch_size, F = x.shape [2], H = x.shape [3], W = x.shape [4];
    const int64_t s6 [6] = { S_OUT_CHANNELS, p, p, F, H, W }, o6 [6] = { S_OUT_CHANNELS, F, H, p, W, p };
    const int perm [6] = { 0, 3, 4, 2, 5, 1 };
    if (vdgx_tensor_alloc (b, &y, x.dtype, 6, o6)) {
        s_fail (self, err, "unpatchify");
        goto out;
    }
    vdgx_tensor_t in = vdgx_nn_view (&x, 6, s6);
    int64_t oh = H * p, ow = W * p, plane = oh * ow;
    host = (float *) malloc ((size_t) (S_OUT_CHANNELS * F * plane) * sizeof (float));
    if (!host) {
        vdgx_set_error (err, "ltx2 vae: out of memory");
        goto out;
    }
    if (vdgx_op_permute (b, &y, &in, perm) || vdgx_tensor_to_f32 (b, &y, host)) {
        s_fail (self, err, "unpatchify");
        goto out;
    }
    *out = host;
    host = NULL;
    osize [0] = F;
    osize [1] = oh;
    osize [2] = ow;
    rc = 0;
out:
    vdgx_nn_free (b, &x);
    vdgx_nn_free (b, &y);
    vdgx_nn_free (b, &mod [0]);
    vdgx_nn_free (b, &mod [1]);
    free (emb);
    free (host);
    return rc;
}

//  The latent box [t0, t1) x [h0, h1) x [w0, w1) of latent [lc, frames, height, width] into
//  x0 [lc, t1 - t0, h1 - h0, w1 - w0]: timestep-conditioned, noise * scale + (1 - scale) *
//  latent (noise cut from the given full-size noise, or drawn for the box from rng, as the
//  official forward draws torch.randn of its input's shape); then * std + mean per channel.
static void
s_prepare (ltx2_vae_t *self, const float *latent, int64_t frames, int64_t height, int64_t width,
           const int64_t box [6], const float *noise, vdgx_torchrng_t *rng, float ns, float *x0)
{
    const ltx2_vae_config_t *c = &self->cfg;
    int64_t tf = box [1] - box [0], th = box [3] - box [2], tw = box [5] - box [4];
    int64_t per = tf * th * tw, n = c->latent_channels * per;
    if (rng)
        vdgx_torchrng_randn (rng, x0, (size_t) n);
    float keep = (float) (1.0 - (double) ns);
    for (int64_t ch = 0; ch < c->latent_channels; ch++)
        for (int64_t f = 0; f < tf; f++)
            for (int64_t y = 0; y < th; y++) {
                size_t src = (((size_t) ch * (size_t) frames + (size_t) (box [0] + f)) * (size_t) height
                           + (size_t) (box [2] + y)) * (size_t) width + (size_t) box [4];
                float *dst = x0 + ((ch * tf + f) * th + y) * tw;
                for (int64_t x = 0; x < tw; x++) {
                    float v = latent [src + (size_t) x];
                    if (c->timestep_conditioning) {
                        //  As the official decoder, in float32 steps.
                        float z = rng? dst [x]: noise [src + (size_t) x];
                        v = z * ns + keep * v;
                    }
                    dst [x] = v * self->std [ch] + self->mean [ch];
                }
            }
}

//  Hands frames [from, to) of the blend accumulator (frame `base` at row 0) to fn,
//  normalised by the summed weights (wsum NULL: a single tile, as it is) and clamped unless
//  raw.
static int
s_emit (const float *acc, const float *wsum, int64_t rows, int64_t base, int64_t from, int64_t to,
        int64_t oh, int64_t ow, bool raw, float *frame, ltx2_vae_frame_fn *fn, void *ctx, char **err)
{
    size_t plane = (size_t) (oh * ow);
    for (int64_t f = from; f < to; f++) {
        const float *w = wsum? wsum + (size_t) (f - base) * plane: NULL;
        for (int ch = 0; ch < S_OUT_CHANNELS; ch++) {
            const float *src = acc + ((size_t) ch * (size_t) rows + (size_t) (f - base)) * plane;
            float *dst = frame + (size_t) ch * plane;
            for (size_t i = 0; i < plane; i++) {
                float v = w? src [i] / fmaxf (w [i], 1e-8f): src [i];
                dst [i] = raw? v: fminf (fmaxf (v, -1.0f), 1.0f);
            }
        }
        if (fn (ctx, (int) f, frame, (int) ow, (int) oh)) {
            vdgx_set_error (err, "ltx2 vae: the frame consumer stopped the decode at frame %lld", (long long) f);
            return -1;
        }
    }
    return 0;
}

int
ltx2_vae_decode (ltx2_vae_t *self, const float *latent, int64_t frames, int64_t height,
                 int64_t width, const ltx2_vae_decode_opts_t *opts, ltx2_vae_frame_fn *fn,
                 void *ctx, char **err)
{
    assert (self && latent && fn);
    const ltx2_vae_config_t *c = &self->cfg;
    //  Reflect padding needs sides of at least 2 latent pixels (as in PyTorch).
    if (frames < 1 || height < 2 || width < 2 || frames > 4096 || height > 4096 || width > 4096) {
        vdgx_set_error (err, "ltx2 vae: latent size %lldx%lldx%lld (frames x height x width) out of "
                        "range (sides 2 to 4096)",
                        (long long) frames, (long long) height, (long long) width);
        return -1;
    }
    const ltx2_vae_tiling_t *tiling = opts && s_tiling_on (&opts->tiling)? &opts->tiling: NULL;
    if (tiling && s_tiling_check (tiling, err))
        return -1;
    s_split_t sp [3];
    s_splits (c, tiling, frames, height, width, sp);
    const int scale [3] = { c->time_scale, c->space_scale, c->space_scale };
    for (int a = 0; a < 3; a++) {
        int64_t b, e, lr, rr;
        s_interval (&sp [a], sp [a].n - 1, &b, &e, &lr, &rr);
        if (a > 0 && e - b < 2) {
            vdgx_set_error (err, "ltx2 vae: the tiling leaves a tile %lld latent pixel%s wide (%s %lld); "
                            "reflect padding needs 2", (long long) (e - b), e - b == 1? "": "s",
                            a == 1? "height": "width", (long long) (a == 1? height: width));
            return -1;
        }
    }
    float t = 0.0f, ns = 0.0f;
    const float *noise = NULL;
    vdgx_torchrng_t *rng = NULL;
    if (c->timestep_conditioning) {
        t = opts && opts->timestep > 0? opts->timestep: S_DEFAULT_T;
        ns = opts && opts->noise_scale > 0? opts->noise_scale: S_DEFAULT_NOISE;
        noise = opts? opts->noise: NULL;
        if (!noise && !(rng = vdgx_torchrng_new (opts? opts->seed: 0))) {
            vdgx_set_error (err, "ltx2 vae: out of memory");
            return -1;
        }
    }
    //  Output frames and size; the longest tile in latent units.
    int64_t of = c->time_scale * (frames - 1) + 1, oh = c->space_scale * height, ow = c->space_scale * width;
    int64_t lt = s_longest (&sp [0]), lh = s_longest (&sp [1]), lw = s_longest (&sp [2]);
    size_t plane = (size_t) (oh * ow);
    //  Accumulator rows: frames from the current temporal tile's start to the end of the
    //  longest temporal tile (earlier tiles end no later than later ones start + overlap).
    int64_t rows = c->time_scale * (lt - 1) + 1;
    bool single = sp [0].n == 1 && sp [1].n == 1 && sp [2].n == 1;
    float *x0 = (float *) malloc ((size_t) (c->latent_channels * lt * lh * lw) * sizeof (float));
    float *frame = (float *) malloc ((size_t) S_OUT_CHANNELS * plane * sizeof (float));
    float *acc = single? NULL: (float *) calloc ((size_t) S_OUT_CHANNELS * (size_t) rows * plane, sizeof (float));
    float *wsum = single? NULL: (float *) calloc ((size_t) rows * plane, sizeof (float));
    float *mt = (float *) malloc ((size_t) rows * sizeof (float));
    float *mh = (float *) malloc ((size_t) oh * sizeof (float));
    float *mw = (float *) malloc ((size_t) ow * sizeof (float));
    float *tile = NULL;
    int rc = -1;
    if (!x0 || !frame || (!single && (!acc || !wsum)) || !mt || !mh || !mw) {
        vdgx_set_error (err, "ltx2 vae: out of memory");
        goto out;
    }
    bool raw = opts && opts->raw;
    int64_t base = 0;                   //  output frame of accumulator row 0
    for (int64_t it = 0; it < sp [0].n; it++) {
        int64_t tb, te, pb, pe, lr, rr;
        s_interval (&sp [0], it, &tb, &te, &lr, &rr);
        s_map (&sp [0], it, scale [0], &pb, &pe, mt);
        if (!single && pb > base) {
            //  No later tile reaches the frames before this one's start: hand them out and
            //  move the rest of the accumulator to the top.
            if (s_emit (acc, wsum, rows, base, base, pb, oh, ow, raw, frame, fn, ctx, err))
                goto out;
            int64_t keep = rows - (pb - base);
            for (int ch = 0; ch < S_OUT_CHANNELS; ch++) {
                float *r0 = acc + (size_t) ch * (size_t) rows * plane;
                memmove (r0, r0 + (size_t) (pb - base) * plane, (size_t) keep * plane * sizeof (float));
                memset (r0 + (size_t) keep * plane, 0, (size_t) (pb - base) * plane * sizeof (float));
            }
            memmove (wsum, wsum + (size_t) (pb - base) * plane, (size_t) keep * plane * sizeof (float));
            memset (wsum + (size_t) keep * plane, 0, (size_t) (pb - base) * plane * sizeof (float));
            base = pb;
        }
        for (int64_t ih = 0; ih < sp [1].n; ih++)
            for (int64_t iw = 0; iw < sp [2].n; iw++) {
                if (s_cancelled (opts)) {
                    rc = -2;
                    goto out;
                }
                int64_t box [6], hb, he, wb, we;
                box [0] = tb;
                box [1] = te;
                s_interval (&sp [1], ih, &box [2], &box [3], &lr, &rr);
                s_interval (&sp [2], iw, &box [4], &box [5], &lr, &rr);
                s_map (&sp [1], ih, scale [1], &hb, &he, mh);
                s_map (&sp [2], iw, scale [2], &wb, &we, mw);
                s_prepare (self, latent, frames, height, width, box, noise, rng, ns, x0);
                int64_t os [3] = { 0 };
                int r = s_decode_raw (self, x0, te - tb, box [3] - box [2], box [5] - box [4], t, opts, &tile, os, err);
                if (r) {
                    rc = r;
                    goto out;
                }
                assert (os [0] == pe - pb && os [1] == he - hb && os [2] == we - wb);
                if (single) {
                    //  The whole latent: its frames as they are.
                    if (s_emit (tile, NULL, of, 0, 0, of, oh, ow, raw, frame, fn, ctx, err))
                        goto out;
                }
                else
                    //  buffer += tile * mask, weights += mask (mask = (mt * mh) * mw).
                    for (int64_t f = 0; f < os [0]; f++)
                        for (int64_t y = 0; y < os [1]; y++) {
                            size_t row = ((size_t) (pb - base + f) * (size_t) oh + (size_t) (hb + y)) * (size_t) ow
                                       + (size_t) wb;
                            float mty = mt [f] * mh [y];
                            for (int64_t x = 0; x < os [2]; x++) {
                                float m = mty * mw [x];
                                wsum [row + (size_t) x] += m;
                                for (int ch = 0; ch < S_OUT_CHANNELS; ch++)
                                    acc [(size_t) ch * (size_t) rows * plane + row + (size_t) x]
                                        += tile [((size_t) (ch * os [0] + f) * (size_t) os [1] + (size_t) y)
                                                 * (size_t) os [2] + (size_t) x] * m;
                            }
                        }
                free (tile);
                tile = NULL;
            }
    }
    if (!single && s_emit (acc, wsum, rows, base, base, of, oh, ow, raw, frame, fn, ctx, err))
        goto out;
    rc = 0;
out:
    vdgx_torchrng_destroy (&rng);
    free (tile);
    free (x0);
    free (frame);
    free (acc);
    free (wsum);
    free (mt);
    free (mh);
    free (mw);
    return rc;
}
