/*  magi1_vae.c - MAGI-1's ViT VAE decoder on a compute backend, its loader and the official
    tiled decode.

    One decoder pass keeps the token stream x [1 + L, E] (cls row first) on the backend; the
    host does the small things: tokens of the latent, the (resized) position embedding, the
    tiling and blending, the uint8 conversion. Weights are the ViTVAE state_dict names.
*/
#include "magi1_vae.h"
#include "vdgx_nn.h"
#include "vdgx_util.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WHO "magi1 vae"
#define S_EPS 1e-5f             //  the decoder's LayerNorms and the qkv norm (on the std)
#define S_POS_CACHE 4           //  resized position embeddings kept (tile shapes)

typedef struct {
    vdgx_linear_t qkv, proj;
    vdgx_norm_t norm2;
    vdgx_mlp_t mlp;
} s_block_t;

typedef struct {
    int64_t T, H, W;
    vdgx_tensor_t pos;          //  [1 + L, E]: row 0 = cls_token + pos_embed[0], then the grid
} s_pos_t;

struct _magi1_vae_t {
    vdgx_backend_t *backend;
    magi1_vae_config_t cfg;
    int64_t unpatch;            //  channels after unpatchify (embed / (ps^2 pl) = 4)
    vdgx_linear_t proj_in;
    float *cls;                 //  [E]
    float *pos_embed;           //  [1 + N, E] native grid
    s_block_t *blocks;
    vdgx_norm_t qkv_norm, norm;
    vdgx_tensor_t conv_w, conv_b;
    s_pos_t pos [S_POS_CACHE];
    int pos_next;
    magi1_vae_tap_fn *tap;
    void *tap_ctx;
};

void
magi1_vae_config_default (magi1_vae_config_t *cfg)
{
    assert (cfg);
    *cfg = (magi1_vae_config_t) {
        .z_chans = 16, .embed_dim = 1024, .depth = 24, .heads = 16, .mlp_hidden = 4096,
        .patch_size = 8, .patch_length = 4, .video_size = 256, .video_length = 16,
    };
}

static int
s_config_check (const magi1_vae_config_t *c, char **err)
{
    if (c->z_chans < 1 || c->embed_dim < 1 || c->depth < 1 || c->heads < 1 || c->mlp_hidden < 1
    ||  c->patch_size < 1 || c->patch_length < 1 || c->video_size < c->patch_size
    ||  c->video_length < c->patch_length || c->embed_dim % c->heads
    ||  c->embed_dim % (c->patch_size * c->patch_size * c->patch_length)) {
        vdgx_set_error (err, "%s: inconsistent config (embed_dim %lld, heads %lld, patch %lld x %lld)",
                        S_WHO, (long long) c->embed_dim, (long long) c->heads,
                        (long long) c->patch_length, (long long) c->patch_size);
        return -1;
    }
    return 0;
}

int
magi1_vae_config_parse (const char *json_text, magi1_vae_config_t *cfg, char **err)
{
    assert (json_text && cfg);
    json_error_t jerr;
    json_t *root = json_loads (json_text, 0, &jerr);
    if (!root || !json_is_object (root)) {
        vdgx_set_error (err, "%s: config is not a JSON object (%s)", S_WHO, root? "": jerr.text);
        json_decref (root);
        return -1;
    }
    json_t *dd = json_object_get (root, "ddconfig");
    if (!json_is_object (dd))
        dd = root;
    struct { const char *key; int64_t *field; } ints [] = {
        { "z_chans", &cfg->z_chans }, { "embed_dim", &cfg->embed_dim }, { "depth", &cfg->depth },
        { "num_heads", &cfg->heads }, { "patch_size", &cfg->patch_size },
        { "patch_length", &cfg->patch_length }, { "video_size", &cfg->video_size },
        { "video_length", &cfg->video_length } };
    int rc = 0;
    for (size_t i = 0; i < sizeof (ints) / sizeof (ints [0]); i++) {
        json_t *v = json_object_get (dd, ints [i].key);
        if (!v)
            continue;
        if (!json_is_integer (v)) {
            vdgx_set_error (err, "%s: config %s is not an integer", S_WHO, ints [i].key);
            rc = -1;
        }
        else
            *ints [i].field = json_integer_value (v);
    }
    json_t *ratio = json_object_get (dd, "mlp_ratio");
    if (ratio && !json_is_number (ratio)) {
        vdgx_set_error (err, "%s: config mlp_ratio is not a number", S_WHO);
        rc = -1;
    }
    cfg->mlp_hidden = (int64_t) ((double) cfg->embed_dim * (ratio? json_number_value (ratio): 4.0));
    //  The switches this decoder implements (the released VAE's values).
    struct { const char *key; bool want; } flags [] = {
        { "with_cls_token", true }, { "ln_in_attn", true }, { "conv_last_layer", true },
        { "qkv_bias", true }, { "use_rope", false }, { "use_final_proj", false } };
    for (size_t i = 0; rc == 0 && i < sizeof (flags) / sizeof (flags [0]); i++) {
        json_t *v = json_object_get (dd, flags [i].key);
        if (v && (!json_is_boolean (v) || json_is_true (v) != flags [i].want)) {
            vdgx_set_error (err, "%s: config %s other than %s is not supported", S_WHO,
                            flags [i].key, flags [i].want? "true": "false");
            rc = -1;
        }
    }
    json_decref (root);
    return rc? -1: s_config_check (cfg, err);
}

void
magi1_vae_tiling_default (magi1_vae_tiling_t *tiling, int fps)
{
    assert (tiling && fps >= 2);
    *tiling = (magi1_vae_tiling_t) {
        .tile_px_h = 256, .tile_px_w = 256, .tile_frames = fps / 2,
        .spatial_overlap = 0.25, .temporal_overlap = 0,
    };
}

//  ---------------------------------------------------------------------------------------
//  Loading

static float *
s_fetch (vdgx_wsrc_t *src, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, char **err)
{
    const int64_t shape [3] = { d0, d1, d2 };
    return vdgx_wsrc_fetch (src, name, ndim, shape, err);
}

magi1_vae_t *
magi1_vae_load (vdgx_backend_t *b, vdgx_wsrc_t *src, const magi1_vae_config_t *cfg,
                const char *precision, char **err)
{
    assert (b && src);
    magi1_vae_config_t def;
    magi1_vae_config_default (&def);
    if (!cfg)
        cfg = &def;
    if (s_config_check (cfg, err))
        return NULL;
    vdgx_wfmt_t fmt = vdgx_backend_act_dtype (b) == VDGX_DTYPE_F32? VDGX_WFMT_F32: VDGX_WFMT_BF16;
    if (precision && vdgx_precision_parse (precision, &fmt)) {
        vdgx_set_error (err, "%s: unknown precision %s", S_WHO, precision);
        return NULL;
    }
    magi1_vae_t *self = calloc (1, sizeof (magi1_vae_t));
    if (self)
        self->blocks = calloc ((size_t) cfg->depth, sizeof (s_block_t));
    if (!self || !self->blocks) {
        free (self);
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return NULL;
    }
    self->backend = b;
    self->cfg = *cfg;
    const magi1_vae_config_t *c = &self->cfg;
    int64_t E = c->embed_dim, ps = c->patch_size, pl = c->patch_length;
    int64_t N = (c->video_length / pl) * (c->video_size / ps) * (c->video_size / ps);
    self->unpatch = E / (ps * ps * pl);
    vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    char name [160];
    if (vdgx_wsrc_linear (src, b, "decoder.proj_in", E, c->z_chans, fmt, VDGX_DTYPE_F32, &self->proj_in, err)
    ||  !(self->cls = s_fetch (src, "decoder.cls_token", 3, 1, 1, E, err))
    ||  !(self->pos_embed = s_fetch (src, "decoder.pos_embed", 3, 1, 1 + N, E, err)))
        goto fail;
    for (int64_t i = 0; i < c->depth; i++) {
        s_block_t *bl = &self->blocks [i];
#define S_NAME(suffix) (snprintf (name, sizeof (name), "decoder.blocks.%lld.%s", (long long) i, suffix), name)
        if (vdgx_wsrc_linear (src, b, S_NAME ("attn.qkv"), 3 * E, E, fmt, VDGX_DTYPE_F32, &bl->qkv, err)
        ||  vdgx_wsrc_linear (src, b, S_NAME ("attn.proj"), E, E, fmt, VDGX_DTYPE_F32, &bl->proj, err)
        ||  vdgx_wsrc_norm (src, b, &bl->norm2, VDGX_NORM_LAYER, S_NAME ("norm2"), E, S_EPS, true,
                            true, false, err)
        ||  vdgx_wsrc_linear (src, b, S_NAME ("mlp.fc1"), c->mlp_hidden, E, fmt, VDGX_DTYPE_F32,
                              &bl->mlp.up, err)
        ||  vdgx_wsrc_linear (src, b, S_NAME ("mlp.fc2"), E, c->mlp_hidden, fmt, VDGX_DTYPE_F32,
                              &bl->mlp.down, err))
            goto fail;
#undef S_NAME
        bl->mlp.kind = VDGX_MLP_PLAIN;
        bl->mlp.act = VDGX_ACT_GELU;
        bl->mlp.dim = E;
        bl->mlp.hidden = c->mlp_hidden;
    }
    const int64_t wshape [5] = { 3, self->unpatch, 3, 3, 3 }, bshape [1] = { 3 };
    if (vdgx_wsrc_norm (src, b, &self->norm, VDGX_NORM_LAYER, "decoder.norm", E, S_EPS, true, true,
                        false, err)
    ||  vdgx_norm_init (b, &self->qkv_norm, VDGX_NORM_LAYER_STD, E / c->heads, S_EPS, NULL, NULL,
                        false, err)
    ||  vdgx_wsrc_tensor (src, b, "decoder.last_layer.weight", act, 5, wshape, &self->conv_w, err)
    ||  vdgx_wsrc_tensor (src, b, "decoder.last_layer.bias", act, 1, bshape, &self->conv_b, err))
        goto fail;
    return self;
fail:
    magi1_vae_destroy (&self);
    return NULL;
}

magi1_vae_t *
magi1_vae_open (vdgx_backend_t *b, const char *path, const char *precision, char **err)
{
    assert (b && path);
    magi1_vae_config_t cfg;
    magi1_vae_config_default (&cfg);
    char *file = NULL;
    if (vdgx_is_dir (path)) {
        char *conf = vdgx_strdupf ("%s/config.json", path);
        if (conf && vdgx_is_file (conf)) {
            FILE *f = fopen (conf, "rb");
            char *text = NULL;
            long size = -1;
            if (f && fseek (f, 0, SEEK_END) == 0 && (size = ftell (f)) >= 0 && size < (1 << 20)
            &&  fseek (f, 0, SEEK_SET) == 0 && (text = calloc (1, (size_t) size + 1))
            &&  fread (text, 1, (size_t) size, f) == (size_t) size) {
                int rc = magi1_vae_config_parse (text, &cfg, err);
                free (text);
                fclose (f);
                if (rc) {
                    free (conf);
                    return NULL;
                }
            }
            else {
                free (text);
                if (f)
                    fclose (f);
                vdgx_set_error (err, "%s: cannot read %s", S_WHO, conf);
                free (conf);
                return NULL;
            }
        }
        free (conf);
        file = vdgx_strdupf ("%s/diffusion_pytorch_model.safetensors", path);
        if (file && !vdgx_is_file (file)) {
            vdgx_set_error (err, "%s: %s holds no diffusion_pytorch_model.safetensors", S_WHO, path);
            free (file);
            return NULL;
        }
    }
    else
        file = vdgx_strdupf ("%s", path);
    if (!file) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return NULL;
    }
    char *cerr = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &cerr);
    if (!ckpt) {
        //  (the checkpoint's messages name the file)
        if (cerr)
            vdgx_set_error (err, "%s: %s", S_WHO, cerr);
        else
            vdgx_set_error (err, "%s: %s: cannot open", S_WHO, file);
        free (cerr);
        free (file);
        return NULL;
    }
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, NULL, S_WHO);
    magi1_vae_t *self = src? magi1_vae_load (b, src, &cfg, precision, err): NULL;
    if (!src)
        vdgx_set_error (err, "%s: out of memory", S_WHO);
    vdgx_wsrc_destroy (&src);
    vdgx_ckpt_destroy (&ckpt);
    free (file);
    return self;
}

void
magi1_vae_destroy (magi1_vae_t **self_p)
{
    assert (self_p);
    magi1_vae_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    if (self->blocks)
        for (int64_t i = 0; i < self->cfg.depth; i++) {
            vdgx_linear_release (b, &self->blocks [i].qkv);
            vdgx_linear_release (b, &self->blocks [i].proj);
            vdgx_norm_release (b, &self->blocks [i].norm2);
            vdgx_mlp_release (b, &self->blocks [i].mlp);
        }
    free (self->blocks);
    vdgx_linear_release (b, &self->proj_in);
    vdgx_norm_release (b, &self->qkv_norm);
    vdgx_norm_release (b, &self->norm);
    vdgx_nn_free (b, &self->conv_w);
    vdgx_nn_free (b, &self->conv_b);
    for (int i = 0; i < S_POS_CACHE; i++)
        vdgx_nn_free (b, &self->pos [i].pos);
    free (self->cls);
    free (self->pos_embed);
    free (self);
    *self_p = NULL;
}

const magi1_vae_config_t *magi1_vae_config (magi1_vae_t *self) { return &self->cfg; }

void
magi1_vae_set_tap (magi1_vae_t *self, magi1_vae_tap_fn *fn, void *ctx)
{
    self->tap = fn;
    self->tap_ctx = ctx;
}

int64_t
magi1_vae_frames (magi1_vae_t *self, int64_t T)
{
    return T == 1? 1: T * self->cfg.patch_length;
}

//  ---------------------------------------------------------------------------------------
//  One decoder pass

static void
s_tap (magi1_vae_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_ctx, name, t);
}

//  The position embedding of a T x H x W grid with the cls row (cls_token + pos_embed[0])
//  in front, on the backend; resized grids are kept for the next tiles of that shape.
static const vdgx_tensor_t *
s_pos (magi1_vae_t *self, int64_t T, int64_t H, int64_t W, char **err)
{
    for (int i = 0; i < S_POS_CACHE; i++)
        if (self->pos [i].pos.data && self->pos [i].T == T && self->pos [i].H == H && self->pos [i].W == W)
            return &self->pos [i].pos;
    const magi1_vae_config_t *c = &self->cfg;
    int64_t E = c->embed_dim, L = T * H * W;
    int64_t nt = c->video_length / c->patch_length, ns = c->video_size / c->patch_size;
    float *host = malloc ((size_t) ((1 + L) * E) * sizeof (float));
    float *planar = NULL, *resized = NULL;
    if (!host)
        goto oom;
    for (int64_t e = 0; e < E; e++)
        host [e] = self->cls [e] + self->pos_embed [e];
    if (T == nt && H == ns && W == ns)
        memcpy (host + E, self->pos_embed + E, (size_t) (L * E) * sizeof (float));
    else {
        //  resize_pos_embed: [N, E] -> [E, nt, ns, ns] -> trilinear -> [L, E]
        int64_t N = nt * ns * ns;
        planar = malloc ((size_t) (N * E) * sizeof (float));
        resized = malloc ((size_t) (L * E) * sizeof (float));
        if (!planar || !resized)
            goto oom;
        for (int64_t n = 0; n < N; n++)
            for (int64_t e = 0; e < E; e++)
                planar [e * N + n] = self->pos_embed [(1 + n) * E + e];
        vdgx_nn_resize_trilinear (planar, E, nt, ns, ns, T, H, W, resized);
        for (int64_t l = 0; l < L; l++)
            for (int64_t e = 0; e < E; e++)
                host [(1 + l) * E + e] = resized [e * L + l];
    }
    s_pos_t *slot = &self->pos [self->pos_next];
    self->pos_next = (self->pos_next + 1) % S_POS_CACHE;
    vdgx_nn_free (self->backend, &slot->pos);
    const int64_t shape [2] = { 1 + L, E };
    if (vdgx_nn_upload (self->backend, &slot->pos, vdgx_backend_act_dtype (self->backend), 2, shape, host)) {
        vdgx_nn_fail (self->backend, err, S_WHO, "position embedding upload");
        free (host); free (planar); free (resized);
        return NULL;
    }
    slot->T = T;
    slot->H = H;
    slot->W = W;
    free (host); free (planar); free (resized);
    return &slot->pos;
oom:
    free (host); free (planar); free (resized);
    vdgx_set_error (err, "%s: out of memory", S_WHO);
    return NULL;
}

static void
s_tap_block (magi1_vae_t *self, int64_t i, const char *what, const vdgx_tensor_t *t)
{
    if (!self->tap)
        return;
    char name [96];
    snprintf (name, sizeof (name), "decoder.blocks.%lld%s%s", (long long) i, *what? ".": "", what);
    self->tap (self->tap_ctx, name, t);
}

int
magi1_vae_decode_pass (magi1_vae_t *self, const float *z, int64_t T, int64_t H, int64_t W,
                       float *video, char **err)
{
    assert (self && z && video);
    if (T < 1 || H < 1 || W < 1) {
        vdgx_set_error (err, "%s: empty latent %lld x %lld x %lld", S_WHO, (long long) T,
                        (long long) H, (long long) W);
        return -1;
    }
    vdgx_backend_t *b = self->backend;
    const magi1_vae_config_t *c = &self->cfg;
    vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    int64_t E = c->embed_dim, C = c->z_chans, L = T * H * W, L1 = L + 1;
    int64_t heads = c->heads, D = E / heads, ps = c->patch_size, pl = c->patch_length;
    int64_t uc = self->unpatch, OT = T * pl, OH = H * ps, OW = W * ps;
    const vdgx_tensor_t *pos = s_pos (self, T, H, W, err);
    if (!pos)
        return -1;
    vdgx_tensor_t zin = { 0 }, x = { 0 }, t1 = { 0 }, t3 = { 0 }, n3 = { 0 }, p3 = { 0 }, o = { 0 };
    vdgx_tensor_t h1 = { 0 }, h2 = { 0 }, un = { 0 }, un2 = { 0 }, img = { 0 };
    float *tok = malloc ((size_t) (L * C) * sizeof (float));
    int rc = -1;
    const char *what = "allocation";
    if (!tok) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return -1;
    }
    //  (C, T, H, W) -> tokens (t, h, w) x C
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t l = 0; l < L; l++)
            tok [l * C + ch] = z [ch * L + l];
    const int64_t zshape [2] = { L, C };
    if (vdgx_nn_upload (b, &zin, act, 2, zshape, tok)
    ||  vdgx_nn_alloc (b, &x, act, L1, E, 0, 0) || vdgx_nn_alloc (b, &t1, act, L1, E, 0, 0)
    ||  vdgx_nn_alloc (b, &t3, act, L1, 3 * E, 0, 0) || vdgx_nn_alloc (b, &n3, act, L1, 3 * E, 0, 0)
    ||  vdgx_nn_alloc (b, &p3, act, 3, L1, E, 0) || vdgx_nn_alloc (b, &o, act, 1, L1, heads, D)
    ||  vdgx_nn_alloc (b, &h1, act, L1, c->mlp_hidden, 0, 0)
    ||  vdgx_nn_alloc (b, &h2, act, L1, c->mlp_hidden, 0, 0))
        goto done;
    //  x = [cls + pos0 ; proj_in(z) + pos]
    what = "proj_in";
    vdgx_tensor_t xr = vdgx_nn_rows (&x, 1, L), tr = vdgx_nn_rows (&t1, 1, L);
    vdgx_tensor_t pr = vdgx_nn_rows (pos, 1, L), p0 = vdgx_nn_rows (pos, 0, 1), x0 = vdgx_nn_rows (&x, 0, 1);
    if (vdgx_linear_forward (b, &self->proj_in, &tr, &zin))
        goto done;
    vdgx_tensor_t tap3 = vdgx_nn_view3 (&tr, 1, L, E);
    s_tap (self, "decoder.proj_in", &tap3);
    tap3 = vdgx_nn_view3 (&pr, 1, L, E);
    s_tap (self, "decoder.pos_embed_resized", &tap3);
    if (vdgx_op_add_scaled (b, &xr, &tr, &pr, 1.0f) || vdgx_op_cast (b, &x0, &p0))
        goto done;
    vdgx_tensor_t x3 = vdgx_nn_view3 (&x, 1, L1, E), t13 = vdgx_nn_view3 (&t1, 1, L1, E);
    const int perm [3] = { 1, 0, 2 };
    for (int64_t i = 0; i < c->depth; i++) {
        const s_block_t *bl = &self->blocks [i];
        what = "attention";
        //  qkv [L1, 3, heads, D], each head's q, k and v normalised; then [3, L1, E]
        if (vdgx_linear_forward (b, &bl->qkv, &t3, &x))
            goto done;
        vdgx_tensor_t tv = vdgx_nn_view3 (&t3, 1, L1, 3 * E);
        s_tap_block (self, i, "attn.qkv", &tv);
        if (vdgx_norm_forward (b, &self->qkv_norm, &n3, &t3))
            goto done;
        vdgx_tensor_t nv = vdgx_nn_view (&n3, 5, (const int64_t [5]) { 1, L1, 3, heads, D });
        s_tap_block (self, i, "attn.qkv_norm", &nv);
        vdgx_tensor_t n3v = vdgx_nn_view3 (&n3, L1, 3, E);
        if (vdgx_op_permute (b, &p3, &n3v, perm))
            goto done;
        vdgx_tensor_t p4 = vdgx_nn_view4 (&p3, 3, L1, heads, D);
        vdgx_tensor_t q = vdgx_nn_rows (&p4, 0, 1), k = vdgx_nn_rows (&p4, 1, 1), v = vdgx_nn_rows (&p4, 2, 1);
        if (vdgx_op_attention (b, &o, &q, &k, &v, NULL, NULL, 1.0f / sqrtf ((float) D)))
            goto done;
        vdgx_tensor_t o2 = vdgx_nn_view2 (&o, L1, E);
        if (vdgx_linear_forward (b, &bl->proj, &t1, &o2))
            goto done;
        s_tap_block (self, i, "attn", &t13);
        if (vdgx_op_add_scaled (b, &x, &x, &t1, 1.0f))
            goto done;
        what = "mlp";
        if (vdgx_norm_forward (b, &bl->norm2, &t1, &x))
            goto done;
        s_tap_block (self, i, "norm2", &t13);
        vdgx_tensor_t n3r = vdgx_nn_view2 (&n3, 3 * L1, E);
        vdgx_tensor_t y2 = vdgx_nn_rows (&n3r, 0, L1);      //  n3 is free scratch here
        if (vdgx_mlp_forward (b, &bl->mlp, &y2, &t1, &h1, &h2))
            goto done;
        vdgx_tensor_t y3 = vdgx_nn_view3 (&y2, 1, L1, E);
        s_tap_block (self, i, "mlp", &y3);
        if (vdgx_op_add_scaled (b, &x, &x, &y2, 1.0f))
            goto done;
        s_tap_block (self, i, "", &x3);
    }
    what = "output";
    if (vdgx_norm_forward (b, &self->norm, &t1, &x))
        goto done;
    s_tap (self, "decoder.norm", &t13);
    //  Drop cls; (lT lH lW pT pH pW C) -> (C lT pT lH pH lW pW): C to the front (2-D
    //  transpose), then the 6-D permute of (C lT) lH lW pT pH pW.
    vdgx_tensor_t body = vdgx_nn_view2 (&tr, L * pl * ps * ps, uc);
    if (vdgx_nn_alloc (b, &un, act, uc, L * pl * ps * ps, 0, 0)
    ||  vdgx_nn_alloc (b, &un2, act, 1, uc, OT, OH * OW)
    ||  vdgx_nn_alloc (b, &img, act, 1, 3, OT, OH * OW))
        goto done;
    const int perm2 [2] = { 1, 0 };
    if (vdgx_op_permute (b, &un, &body, perm2))
        goto done;
    vdgx_tensor_t un6 = vdgx_nn_view (&un, 6, (const int64_t [6]) { uc * T, H, W, pl, ps, ps });
    vdgx_tensor_t un26 = vdgx_nn_view (&un2, 6, (const int64_t [6]) { uc * T, pl, H, ps, W, ps });
    const int perm6 [6] = { 0, 3, 1, 4, 2, 5 };
    if (vdgx_op_permute (b, &un26, &un6, perm6))
        goto done;
    vdgx_tensor_t cin = vdgx_nn_view (&un2, 5, (const int64_t [5]) { 1, uc, OT, OH, OW });
    vdgx_tensor_t cout = vdgx_nn_view (&img, 5, (const int64_t [5]) { 1, 3, OT, OH, OW });
    s_tap (self, "decoder.last_layer.input", &cin);
    const int stride [3] = { 1, 1, 1 }, pad [4] = { 1, 1, 1, 1 };
    if (vdgx_op_conv3d (b, &cout, &cin, &self->conv_w, &self->conv_b, stride, pad))
        goto done;
    s_tap (self, "decoder.last_layer", &cout);
    if (T == 1) {
        //  ViTVAE.decode keeps the first of the patch_length frames.
        float *all = malloc ((size_t) (3 * OT * OH * OW) * sizeof (float));
        if (!all || vdgx_tensor_to_f32 (b, &img, all)) {
            free (all);
            goto done;
        }
        for (int64_t ch = 0; ch < 3; ch++)
            memcpy (video + ch * OH * OW, all + ch * OT * OH * OW, (size_t) (OH * OW) * sizeof (float));
        free (all);
    }
    else if (vdgx_tensor_to_f32 (b, &img, video))
        goto done;
    rc = 0;
done:
    if (rc && err && !*err)
        vdgx_nn_fail (b, err, S_WHO, what);
    free (tok);
    vdgx_tensor_t *ts [] = { &zin, &x, &t1, &t3, &n3, &p3, &o, &h1, &h2, &un, &un2, &img };
    for (size_t i = 0; i < sizeof (ts) / sizeof (ts [0]); i++)
        vdgx_nn_free (b, ts [i]);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Tiled decode (TileProcessor.tiled_decode, one rank)

typedef struct {
    float *v;                   //  [3, t, h, w]
    int64_t t, h, w;
} s_tile_t;

//  b[k] = a[n_a - e + k] (1 - k/e) + b[k] k/e along one axis (0 = t, 1 = h, 2 = w) over
//  e = min(extent, a's size, b's size); a and b agree on the other axes.
static void
s_blend (const s_tile_t *a, s_tile_t *b, int axis, int64_t extent)
{
    int64_t na = axis == 0? a->t: axis == 1? a->h: a->w;
    int64_t nb = axis == 0? b->t: axis == 1? b->h: b->w;
    int64_t e = extent < na? extent: na;
    e = e < nb? e: nb;
    for (int64_t k = 0; k < e; k++) {
        float w1 = (float) ((double) k / (double) e), w0 = (float) (1.0 - (double) k / (double) e);
        int64_t ka = na - e + k;
        //  slice k of b (and ka of a) across the other two axes
        for (int64_t ch = 0; ch < 3; ch++) {
            int64_t n1 = axis == 0? b->h: b->t, n2 = axis == 2? b->h: b->w;
            for (int64_t i1 = 0; i1 < n1; i1++)
                for (int64_t i2 = 0; i2 < n2; i2++) {
                    int64_t bt, by, bx, at, ay, ax;
                    if (axis == 0)      { bt = k; by = i1; bx = i2; at = ka; ay = i1; ax = i2; }
                    else if (axis == 1) { bt = i1; by = k; bx = i2; at = i1; ay = ka; ax = i2; }
                    else                { bt = i1; by = i2; bx = k; at = i1; ay = i2; ax = ka; }
                    float *pb = b->v + ((ch * b->t + bt) * b->h + by) * b->w + bx;
                    float va = a->v [((ch * a->t + at) * a->h + ay) * a->w + ax];
                    *pb = va * w0 + *pb * w1;
                }
        }
    }
}

//  TileProcessor's geometry: tiles of lat_* latents every ov_* latents, blended over be_*
//  output pixels / frames, cropped to lim_*.
typedef struct {
    int64_t lat_t, lat_h, lat_w, ov_t, ov_h, ov_w, be_t, be_h, be_w, lim_t, lim_h, lim_w;
    int64_t nt, nh, nw;
} s_geo_t;

static int
s_geometry (magi1_vae_t *self, int64_t T, int64_t H, int64_t W, const magi1_vae_tiling_t *tiling,
            s_geo_t *g, char **err)
{
    const magi1_vae_config_t *c = &self->cfg;
    int64_t ps = c->patch_size, pl = c->patch_length;
    double so = tiling->spatial_overlap, to = tiling->temporal_overlap;
    g->lat_h = tiling->tile_px_h / ps;
    g->lat_w = tiling->tile_px_w / ps;
    g->lat_t = tiling->tile_frames / pl;
    g->ov_h = (int64_t) ((double) g->lat_h * (1 - so));
    g->ov_w = (int64_t) ((double) g->lat_w * (1 - so));
    g->ov_t = (int64_t) ((double) g->lat_t * (1 - to));
    if (T < 1 || H < 1 || W < 1 || g->ov_h < 1 || g->ov_w < 1 || g->ov_t < 1 || so < 0 || so >= 1
    ||  to < 0 || to >= 1) {
        vdgx_set_error (err, "%s: bad latent (%lld x %lld x %lld) or tiling", S_WHO, (long long) T,
                        (long long) H, (long long) W);
        return -1;
    }
    int64_t real_h = g->lat_h * ps, real_w = g->lat_w * ps, real_t = g->lat_t * pl;
    g->be_h = (int64_t) ((double) real_h * so);
    g->be_w = (int64_t) ((double) real_w * so);
    g->be_t = (int64_t) ((double) real_t * to);
    g->lim_h = real_h - g->be_h;
    g->lim_w = real_w - g->be_w;
    g->lim_t = real_t - g->be_t;
    g->nt = (T + g->ov_t - 1) / g->ov_t;
    g->nh = (H + g->ov_h - 1) / g->ov_h;
    g->nw = (W + g->ov_w - 1) / g->ov_w;
    return 0;
}

static int64_t
s_min (int64_t a, int64_t b)
{
    return a < b? a: b;
}

int
magi1_vae_output_size (magi1_vae_t *self, int64_t T, int64_t H, int64_t W,
                       const magi1_vae_tiling_t *tiling, int64_t *frames, int64_t *height,
                       int64_t *width)
{
    assert (self);
    magi1_vae_tiling_t def;
    if (!tiling) {
        magi1_vae_tiling_default (&def, 24);
        tiling = &def;
    }
    s_geo_t g;
    if (s_geometry (self, T, H, W, tiling, &g, NULL))
        return -1;
    int64_t ps = self->cfg.patch_size, f = 0, h = 0, w = 0;
    for (int64_t i = 0; i < g.nt; i++)
        f += s_min (magi1_vae_frames (self, s_min (T - i * g.ov_t, g.lat_t)), g.lim_t);
    for (int64_t i = 0; i < g.nh; i++)
        h += s_min (s_min (H - i * g.ov_h, g.lat_h) * ps, g.lim_h);
    for (int64_t i = 0; i < g.nw; i++)
        w += s_min (s_min (W - i * g.ov_w, g.lat_w) * ps, g.lim_w);
    if (frames)
        *frames = f;
    if (height)
        *height = h;
    if (width)
        *width = w;
    return 0;
}

int
magi1_vae_decode (magi1_vae_t *self, const float *z, int64_t T, int64_t H, int64_t W,
                  const magi1_vae_tiling_t *tiling, float *video, char **err)
{
    assert (self && z && video);
    magi1_vae_tiling_t def;
    if (!tiling) {
        magi1_vae_tiling_default (&def, 24);
        tiling = &def;
    }
    const magi1_vae_config_t *c = &self->cfg;
    int64_t ps = c->patch_size, C = c->z_chans;
    s_geo_t g;
    if (s_geometry (self, T, H, W, tiling, &g, err))
        return -1;
    int64_t lat_t = g.lat_t, lat_h = g.lat_h, lat_w = g.lat_w, ov_t = g.ov_t, ov_h = g.ov_h, ov_w = g.ov_w;
    int64_t be_t = g.be_t, be_h = g.be_h, be_w = g.be_w, lim_t = g.lim_t, lim_h = g.lim_h, lim_w = g.lim_w;
    int64_t nt = g.nt, nh = g.nh, nw = g.nw;
    int64_t n = nt * nh * nw;
    s_tile_t *tiles = calloc ((size_t) n, sizeof (s_tile_t));
    s_tile_t cur = { 0 };
    float *sub = NULL;
    int rc = -1;
    if (!tiles)
        goto oom;
    //  Decode every tile.
    for (int64_t f = 0; f < nt; f++)
        for (int64_t i = 0; i < nh; i++)
            for (int64_t j = 0; j < nw; j++) {
                int64_t t0 = f * ov_t, y0 = i * ov_h, x0 = j * ov_w;
                int64_t tt = T - t0 < lat_t? T - t0: lat_t;
                int64_t th = H - y0 < lat_h? H - y0: lat_h, tw = W - x0 < lat_w? W - x0: lat_w;
                s_tile_t *tl = &tiles [(f * nh + i) * nw + j];
                tl->t = magi1_vae_frames (self, tt);
                tl->h = th * ps;
                tl->w = tw * ps;
                free (sub);
                sub = malloc ((size_t) (C * tt * th * tw) * sizeof (float));
                tl->v = malloc ((size_t) (3 * tl->t * tl->h * tl->w) * sizeof (float));
                if (!sub || !tl->v)
                    goto oom;
                for (int64_t ch = 0; ch < C; ch++)
                    for (int64_t a = 0; a < tt; a++)
                        for (int64_t y = 0; y < th; y++)
                            memcpy (sub + ((ch * tt + a) * th + y) * tw,
                                    z + ((ch * T + t0 + a) * H + y0 + y) * W + x0,
                                    (size_t) tw * sizeof (float));
                if (magi1_vae_decode_pass (self, sub, tt, th, tw, tl->v, err))
                    goto done;
            }
    //  Output geometry: the cropped sizes summed along each axis.
    int64_t OH = 0, OW = 0;
    for (int64_t i = 0; i < nh; i++)
        OH += tiles [i * nw].h < lim_h? tiles [i * nw].h: lim_h;
    for (int64_t j = 0; j < nw; j++)
        OW += tiles [j].w < lim_w? tiles [j].w: lim_w;
    //  Blend each tile with the unblended ones before it in t, then h, then w; crop; place.
    int64_t ft0 = 0;
    for (int64_t f = 0; f < nt; f++) {
        int64_t fy0 = 0, ct = 0;
        for (int64_t i = 0; i < nh; i++) {
            int64_t fx0 = 0, chh = 0;
            for (int64_t j = 0; j < nw; j++) {
                const s_tile_t *raw = &tiles [(f * nh + i) * nw + j];
                size_t bytes = (size_t) (3 * raw->t * raw->h * raw->w) * sizeof (float);
                free (cur.v);
                cur = *raw;
                if (!(cur.v = malloc (bytes)))
                    goto oom;
                memcpy (cur.v, raw->v, bytes);
                if (f > 0)
                    s_blend (&tiles [((f - 1) * nh + i) * nw + j], &cur, 0, be_t);
                if (i > 0)
                    s_blend (&tiles [(f * nh + i - 1) * nw + j], &cur, 1, be_h);
                if (j > 0)
                    s_blend (&tiles [(f * nh + i) * nw + j - 1], &cur, 2, be_w);
                int64_t kt = cur.t < lim_t? cur.t: lim_t, kh = cur.h < lim_h? cur.h: lim_h;
                int64_t kw = cur.w < lim_w? cur.w: lim_w;
                //  video [frames, 3, OH, OW] ("b c t h w -> (b t) c h w")
                for (int64_t a = 0; a < kt; a++)
                    for (int64_t ch = 0; ch < 3; ch++)
                        for (int64_t y = 0; y < kh; y++)
                            memcpy (video + (((ft0 + a) * 3 + ch) * OH + fy0 + y) * OW + fx0,
                                    cur.v + ((ch * cur.t + a) * cur.h + y) * cur.w,
                                    (size_t) kw * sizeof (float));
                fx0 += kw;
                ct = kt;
                chh = kh;
            }
            fy0 += chh;
        }
        ft0 += ct;
    }
    rc = 0;
    goto done;
oom:
    vdgx_set_error (err, "%s: out of memory", S_WHO);
done:
    free (sub);
    free (cur.v);
    for (int64_t i = 0; tiles && i < n; i++)
        free (tiles [i].v);
    free (tiles);
    return rc;
}

int
magi1_vae_decode_chunk (magi1_vae_t *self, const float *latent, int64_t T, int64_t H, int64_t W,
                        int fps, float *video, uint8_t *rgb, char **err)
{
    assert (self && latent);
    if (fps < 2) {
        vdgx_set_error (err, "%s: fps %d too low for the temporal tiles", S_WHO, fps);
        return -1;
    }
    magi1_vae_tiling_t tiling;
    magi1_vae_tiling_default (&tiling, fps);
    int64_t C = self->cfg.z_chans, frames, h, w;
    if (magi1_vae_output_size (self, T, H, W, &tiling, &frames, &h, &w)) {
        vdgx_set_error (err, "%s: bad latent (%lld x %lld x %lld)", S_WHO, (long long) T,
                        (long long) H, (long long) W);
        return -1;
    }
    size_t nz = (size_t) (C * T * H * W), nv = (size_t) (frames * 3 * h * w);
    float *z = malloc (nz * sizeof (float));
    float *v = video? video: malloc (nv * sizeof (float));
    int rc = -1;
    if (!z || !v) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        goto done;
    }
    for (size_t i = 0; i < nz; i++)
        z [i] = latent [i] / MAGI1_VAE_SCALE_FACTOR;
    if (magi1_vae_decode (self, z, T, H, W, &tiling, v, err))
        goto done;
    if (rgb)
        for (int64_t f = 0; f < frames; f++)
            for (int64_t ch = 0; ch < 3; ch++)
                for (int64_t p = 0; p < h * w; p++) {
                    float x = v [(f * 3 + ch) * h * w + p] * 127.5f + 127.5f;
                    x = x < 0? 0: x > 255? 255: x;      //  NaN stays NaN: cast below gives 0
                    rgb [(f * h * w + p) * 3 + ch] = x == x? (uint8_t) x: 0;
                }
    rc = 0;
done:
    free (z);
    if (v != video)
        free (v);
    return rc;
}
