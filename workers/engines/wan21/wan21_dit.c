/*  wan21_dit.c - WanModel (T2V, I2V, FLF2V) forward on a compute backend, and its weight loaders.

    Shapes: L tokens = F/pt * H/ph * W/pw, ordered f-major then h then w; D = dim; one batch.
    The residual stream x [L, D] and every activation live on the backend in its act dtype.
    Host-side (small, exact in f64 where the official code uses f64): the sinusoidal time
    embedding, the RoPE angle tables, patch gathering and unpatchify.
*/
#include "wan21_dit.h"
#include "vdgx_util.h"
#include "vdgx_attn.h"
#include "vdgx_ckpt.h"
#include "vdgx_wsrc.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    vdgx_attn_t self_attn, cross_attn;  //  q/k RMSNorms across heads (width dim)
    vdgx_mlp_t ffn;                     //  ffn.0, GELU(tanh), ffn.2
    vdgx_norm_t norm1, norm2, norm3;    //  norm1/2: LayerNorm without affine; norm3 affine
    vdgx_tensor_t mod;                  //  modulation [6, D] (f32)
    //  Image DiT: the image keys/values of the cross-attention (norm_k_img: RMS over D).
    vdgx_linear_t k_img, v_img;
    vdgx_norm_t norm_k_img;
} s_block_t;

struct _wan21_dit_context_t {
    vdgx_tensor_t *k, *v;               //  per block [text_len, D]
    vdgx_tensor_t *k_img, *v_img;       //  per block [image_tokens, D] (image DiT)
    int64_t image_tokens;
    int layers;
};

struct _wan21_dit_t {
    vdgx_backend_t *backend;
    wan21_dit_config_t cfg;
    char precision [16];
    vdgx_wfmt_t block_fmt, other_fmt;
    vdgx_dtype_t act;                   //  backend act dtype
    vdgx_linear_t patch, text0, text2, time0, time2, proj, head;
    vdgx_norm_t head_norm;
    vdgx_tensor_t head_mod;             //  [2, D]
    //  img_emb (MLPProj): LayerNorm(img_dim), Linear, erf GELU, Linear, LayerNorm(dim);
    //  flf2v's emb_pos [img_pos, img_dim] (host f32) is added to the features first.
    vdgx_norm_t img_n0, img_n4;
    vdgx_linear_t img_l1, img_l3;
    float *img_pos;
    s_block_t *blocks;
    size_t tensors_used;                //  checkpoint tensors the loader read
    wan21_dit_tap_fn *tap;
    void *tap_ctx;
    //  Activation buffers, reused while the token count stays the same.
    int64_t buf_tokens;
    int64_t rope_grid [3];
    vdgx_tensor_t x, hn, hm, q, q2, k, k2, v, f1, f2;
    vdgx_tensor_t head_a, head_b;       //  f32 [L, D] for the head (views into f1/f2 when they fit)
    vdgx_rope_t rope;
    bool have_bufs, have_rope;
};

static int
s_op_err (wan21_dit_t *self, char **err, const char *what)
{
    return vdgx_nn_fail (self->backend, err, "wan21 dit", what);
}

//  ---------------------------------------------------------------------------------------
//  Configuration

int
wan21_dit_config_preset (const char *name, wan21_dit_config_t *cfg)
{
    if (!name || !cfg)
        return -1;
    memset (cfg, 0, sizeof (*cfg));
    cfg->in_dim = cfg->out_dim = 16;
    cfg->text_dim = 4096;
    cfg->text_len = 512;
    cfg->freq_dim = 256;
    cfg->patch [0] = 1; cfg->patch [1] = 2; cfg->patch [2] = 2;
    cfg->eps = 1e-6;
    if (strcmp (name, "1.3b") == 0) {
        cfg->dim = 1536; cfg->ffn_dim = 8960; cfg->num_heads = 12; cfg->num_layers = 30;
    }
    else
    if (strcmp (name, "14b") == 0 || strcmp (name, "i2v-14b") == 0 || strcmp (name, "flf2v-14b") == 0) {
        cfg->dim = 5120; cfg->ffn_dim = 13824; cfg->num_heads = 40; cfg->num_layers = 40;
        if (strcmp (name, "14b") != 0) {
            cfg->in_dim = 36;
            cfg->img_dim = 1280;
            cfg->img_pos = strcmp (name, "flf2v-14b") == 0? 2 * 257: 0;
        }
    }
    else
        return -1;
    return 0;
}

uint64_t
wan21_dit_memory_estimate (const wan21_dit_config_t *cfg, const char *precision,
                           int64_t tokens, size_t act_size)
{
    assert (cfg);
    vdgx_wfmt_t fmt;
    if (vdgx_precision_parse (precision, &fmt))
        return 0;
    vdgx_wfmt_t other = act_size >= 4? VDGX_WFMT_F32: VDGX_WFMT_BF16;
    int64_t d = cfg->dim, f = cfg->ffn_dim;
    int64_t pin = (int64_t) cfg->in_dim * cfg->patch [0] * cfg->patch [1] * cfg->patch [2];
    int64_t pout = (int64_t) cfg->out_dim * cfg->patch [0] * cfg->patch [1] * cfg->patch [2];
    uint64_t bytes = 0;
    bytes += vdgx_wfmt_bytes (other, d, pin) + vdgx_wfmt_bytes (other, d, cfg->text_dim)
           + vdgx_wfmt_bytes (other, d, d) + vdgx_wfmt_bytes (other, d, cfg->freq_dim)
           + vdgx_wfmt_bytes (other, d, d) + vdgx_wfmt_bytes (other, 6 * d, d)
           + vdgx_wfmt_bytes (other, pout, d);
    bytes += (uint64_t) (2 + 6 + 3 + 6 + 2) * d * act_size;     //  biases, head modulation
    uint64_t block = 8 * vdgx_wfmt_bytes (vdgx_linear_fmt_for (fmt, d), d, d)
                   + vdgx_wfmt_bytes (vdgx_linear_fmt_for (fmt, d), f, d)
                   + vdgx_wfmt_bytes (vdgx_linear_fmt_for (fmt, f), d, f)
                   + (uint64_t) (8 + 4 + 2 + 6 + 1) * d * act_size + (uint64_t) f * act_size;
    if (cfg->img_dim > 0) {
        int64_t id = cfg->img_dim;
        block += 2 * vdgx_wfmt_bytes (vdgx_linear_fmt_for (fmt, d), d, d) + (uint64_t) 3 * d * act_size;
        bytes += vdgx_wfmt_bytes (other, id, id) + vdgx_wfmt_bytes (other, d, id)
               + (uint64_t) (3 * id + 3 * d) * act_size + (uint64_t) cfg->img_pos * id * 4;
    }
    bytes += block * (uint64_t) cfg->num_layers;
    if (tokens > 0) {
        //  8 [L, D] buffers, 2 [L, F] buffers (2 f32 [L, D] for the head when those are
        //  smaller), RoPE tables, and two prompts' cross K/V.
        bytes += (uint64_t) tokens * (8 * d + 2 * f) * act_size;
        if ((uint64_t) f * act_size < (uint64_t) d * 4)
            bytes += (uint64_t) tokens * 2 * d * 4;
        bytes += (uint64_t) tokens * (d / cfg->num_heads) * 4;
        bytes += (uint64_t) 2 * 2 * cfg->num_layers * cfg->text_len * d * act_size;
        //  The image keys/values of both prompts (257 tokens, 514 for flf2v).
        if (cfg->img_dim > 0)
            bytes += (uint64_t) 2 * 2 * cfg->num_layers * (cfg->img_pos > 0? cfg->img_pos: 257) * d * act_size;
    }
    return bytes;
}

//  ---------------------------------------------------------------------------------------
//  Checkpoint layouts (official names are canonical) as data: diffusers renames, ComfyUI prefix.

static const vdgx_wsrc_rename_t s_diffusers_renames [] = {
    { "blocks.*.self_attn.q.", "blocks.*.attn1.to_q." }, { "blocks.*.self_attn.k.", "blocks.*.attn1.to_k." },
    { "blocks.*.self_attn.v.", "blocks.*.attn1.to_v." }, { "blocks.*.self_attn.o.", "blocks.*.attn1.to_out.0." },
    { "blocks.*.self_attn.norm_q.", "blocks.*.attn1.norm_q." },
    { "blocks.*.self_attn.norm_k.", "blocks.*.attn1.norm_k." },
    { "blocks.*.cross_attn.q.", "blocks.*.attn2.to_q." }, { "blocks.*.cross_attn.k.", "blocks.*.attn2.to_k." },
    { "blocks.*.cross_attn.v.", "blocks.*.attn2.to_v." }, { "blocks.*.cross_attn.o.", "blocks.*.attn2.to_out.0." },
    { "blocks.*.cross_attn.norm_q.", "blocks.*.attn2.norm_q." },
    { "blocks.*.cross_attn.norm_k.", "blocks.*.attn2.norm_k." },
    { "blocks.*.norm3.", "blocks.*.norm2." },      //  diffusers numbers the norms in call order
    { "blocks.*.ffn.0.", "blocks.*.ffn.net.0.proj." }, { "blocks.*.ffn.2.", "blocks.*.ffn.net.2." },
    { "blocks.*.modulation", "blocks.*.scale_shift_table" },
    { "text_embedding.0.", "condition_embedder.text_embedder.linear_1." },
    { "text_embedding.2.", "condition_embedder.text_embedder.linear_2." },
    { "time_embedding.0.", "condition_embedder.time_embedder.linear_1." },
    { "time_embedding.2.", "condition_embedder.time_embedder.linear_2." },
    { "time_projection.1.", "condition_embedder.time_proj." },
    { "head.modulation", "scale_shift_table" },
    { "head.head.", "proj_out." },
};
static const vdgx_wsrc_map_t s_maps [] = {
    { "official", NULL, NULL, 0 },
    { "diffusers", NULL, s_diffusers_renames, sizeof (s_diffusers_renames) / sizeof (s_diffusers_renames [0]) },
    { "comfy", "model.diffusion_model.", NULL, 0 },
};

static void
s_free_tensor (wan21_dit_t *self, vdgx_tensor_t *t)
{
    vdgx_nn_free (self->backend, t);
}

static void
s_free_buffers (wan21_dit_t *self)
{
    vdgx_tensor_t *bufs [] = { &self->x, &self->hn, &self->hm, &self->q, &self->q2, &self->k,
                               &self->k2, &self->v, &self->f1, &self->f2, &self->head_a, &self->head_b };
    for (size_t i = 0; i < sizeof (bufs) / sizeof (bufs [0]); i++)
        s_free_tensor (self, bufs [i]);     //  views (no owner) are only forgotten
    self->have_bufs = false;
    self->buf_tokens = 0;
}

void
wan21_dit_destroy (wan21_dit_t **self_p)
{
    assert (self_p);
    wan21_dit_t *self = *self_p;
    if (!self)
        return;
    s_free_buffers (self);
    vdgx_backend_t *be = self->backend;
    vdgx_rope_release (be, &self->rope);
    vdgx_linear_t *tops [] = { &self->patch, &self->text0, &self->text2, &self->time0,
                               &self->time2, &self->proj, &self->head };
    for (size_t i = 0; i < sizeof (tops) / sizeof (tops [0]); i++)
        vdgx_linear_release (be, tops [i]);
    vdgx_norm_release (be, &self->head_norm);
    s_free_tensor (self, &self->head_mod);
    vdgx_norm_release (be, &self->img_n0);
    vdgx_norm_release (be, &self->img_n4);
    vdgx_linear_release (be, &self->img_l1);
    vdgx_linear_release (be, &self->img_l3);
    free (self->img_pos);
    if (self->blocks) {
        for (int i = 0; i < self->cfg.num_layers; i++) {
            s_block_t *b = &self->blocks [i];
            vdgx_attn_release (be, &b->self_attn);
            vdgx_attn_release (be, &b->cross_attn);
            vdgx_mlp_release (be, &b->ffn);
            vdgx_norm_release (be, &b->norm1);
            vdgx_norm_release (be, &b->norm2);
            vdgx_norm_release (be, &b->norm3);
            vdgx_linear_release (be, &b->k_img);
            vdgx_linear_release (be, &b->v_img);
            vdgx_norm_release (be, &b->norm_k_img);
            s_free_tensor (self, &b->mod);
        }
        free (self->blocks);
    }
    free (self);
    *self_p = NULL;
}

//  Loads every tensor of the configuration from src: the Wan names and the block wiring.
static int
s_load_all (wan21_dit_t *self, vdgx_wsrc_t *src, char **err)
{
    const wan21_dit_config_t *c = &self->cfg;
    vdgx_backend_t *be = self->backend;
    int64_t d = c->dim, H = c->num_heads;
    int64_t pin = (int64_t) c->in_dim * c->patch [0] * c->patch [1] * c->patch [2];
    int64_t pout = (int64_t) c->out_dim * c->patch [0] * c->patch [1] * c->patch [2];
    vdgx_wfmt_t o = self->other_fmt;
    int act = (int) self->act;
    float eps = (float) c->eps;
    if (vdgx_wsrc_linear (src, be, "patch_embedding", d, pin, o, act, &self->patch, err)
    ||  vdgx_wsrc_linear (src, be, "text_embedding.0", d, c->text_dim, o, act, &self->text0, err)
    ||  vdgx_wsrc_linear (src, be, "text_embedding.2", d, d, o, act, &self->text2, err)
    ||  vdgx_wsrc_linear (src, be, "time_embedding.0", d, c->freq_dim, o, act, &self->time0, err)
    ||  vdgx_wsrc_linear (src, be, "time_embedding.2", d, d, o, act, &self->time2, err)
    ||  vdgx_wsrc_linear (src, be, "time_projection.1", 6 * d, d, o, act, &self->proj, err)
    ||  vdgx_wsrc_linear (src, be, "head.head", pout, d, VDGX_WFMT_F32, act, &self->head, err)
    ||  vdgx_norm_init (be, &self->head_norm, VDGX_NORM_LAYER, d, eps, NULL, NULL, false, err))
        return -1;
    //  Modulation tables join e/e0 in f32, as the official code adds them under f32 autocast.
    int64_t hm_shape [2] = { 2, d };
    if (vdgx_wsrc_tensor (src, be, "head.modulation", VDGX_DTYPE_F32, 2, hm_shape, &self->head_mod, err))
        return -1;
    if (c->img_dim > 0) {
        //  MLPProj: LayerNorms with eps 1e-5 (torch default), unlike the blocks' 1e-6.
        int64_t id = c->img_dim;
        if (vdgx_wsrc_norm (src, be, &self->img_n0, VDGX_NORM_LAYER, "img_emb.proj.0", id, 1e-5f, true, true, false, err)
        ||  vdgx_wsrc_linear (src, be, "img_emb.proj.1", id, id, o, act, &self->img_l1, err)
        ||  vdgx_wsrc_linear (src, be, "img_emb.proj.3", d, id, o, act, &self->img_l3, err)
        ||  vdgx_wsrc_norm (src, be, &self->img_n4, VDGX_NORM_LAYER, "img_emb.proj.4", d, 1e-5f, true, true, false, err))
            return -1;
        if (c->img_pos > 0) {
            const int64_t ps [2] = { c->img_pos, id };
            self->img_pos = vdgx_wsrc_fetch (src, "img_emb.emb_pos", 2, ps, err);
            if (!self->img_pos)
                return -1;
        }
    }
    self->blocks = calloc ((size_t) c->num_layers, sizeof (s_block_t));
    if (!self->blocks) {
        vdgx_set_error (err, "wan21 dit: out of memory");
        return -1;
    }
    vdgx_wfmt_t bf = self->block_fmt;
    for (int i = 0; i < c->num_layers; i++) {
        s_block_t *b = &self->blocks [i];
        char name [128];
        vdgx_attn_init (&b->self_attn, d, H, H, d / H);
        vdgx_attn_init (&b->cross_attn, d, H, H, d / H);
        b->ffn = (vdgx_mlp_t) { .kind = VDGX_MLP_PLAIN, .act = VDGX_ACT_GELU_TANH, .dim = d, .hidden = c->ffn_dim };
        struct { const char *n; vdgx_linear_t *l; int64_t rows, cols; } lins [] = {
            { "self_attn.q", &b->self_attn.q, d, d }, { "self_attn.k", &b->self_attn.k, d, d },
            { "self_attn.v", &b->self_attn.v, d, d }, { "self_attn.o", &b->self_attn.o, d, d },
            { "cross_attn.q", &b->cross_attn.q, d, d }, { "cross_attn.k", &b->cross_attn.k, d, d },
            { "cross_attn.v", &b->cross_attn.v, d, d }, { "cross_attn.o", &b->cross_attn.o, d, d },
            { "ffn.0", &b->ffn.up, c->ffn_dim, d }, { "ffn.2", &b->ffn.down, d, c->ffn_dim },
        };
        for (size_t j = 0; j < sizeof (lins) / sizeof (lins [0]); j++) {
            snprintf (name, sizeof (name), "blocks.%d.%s", i, lins [j].n);
            if (vdgx_wsrc_linear (src, be, name, lins [j].rows, lins [j].cols, bf, act, lins [j].l, err))
                return -1;
        }
        struct { const char *n; vdgx_norm_t *nm; bool *has; } qk [] = {
            { "self_attn.norm_q", &b->self_attn.q_norm, &b->self_attn.has_q_norm },
            { "self_attn.norm_k", &b->self_attn.k_norm, &b->self_attn.has_k_norm },
            { "cross_attn.norm_q", &b->cross_attn.q_norm, &b->cross_attn.has_q_norm },
            { "cross_attn.norm_k", &b->cross_attn.k_norm, &b->cross_attn.has_k_norm },
        };
        for (size_t j = 0; j < sizeof (qk) / sizeof (qk [0]); j++) {
            snprintf (name, sizeof (name), "blocks.%d.%s", i, qk [j].n);
            if (vdgx_wsrc_norm (src, be, qk [j].nm, VDGX_NORM_RMS, name, d, eps, true, false, false, err))
                return -1;
            *qk [j].has = true;
        }
        snprintf (name, sizeof (name), "blocks.%d.norm3", i);
        if (vdgx_norm_init (be, &b->norm1, VDGX_NORM_LAYER, d, eps, NULL, NULL, false, err)
        ||  vdgx_norm_init (be, &b->norm2, VDGX_NORM_LAYER, d, eps, NULL, NULL, false, err)
        ||  vdgx_wsrc_norm (src, be, &b->norm3, VDGX_NORM_LAYER, name, d, eps, true, true, false, err))
            return -1;
        int64_t mshape [2] = { 6, d };
        snprintf (name, sizeof (name), "blocks.%d.modulation", i);
        if (vdgx_wsrc_tensor (src, be, name, VDGX_DTYPE_F32, 2, mshape, &b->mod, err))
            return -1;
        if (c->img_dim > 0) {
            snprintf (name, sizeof (name), "blocks.%d.cross_attn.k_img", i);
            if (vdgx_wsrc_linear (src, be, name, d, d, bf, act, &b->k_img, err))
                return -1;
            snprintf (name, sizeof (name), "blocks.%d.cross_attn.v_img", i);
            if (vdgx_wsrc_linear (src, be, name, d, d, bf, act, &b->v_img, err))
                return -1;
            snprintf (name, sizeof (name), "blocks.%d.cross_attn.norm_k_img", i);
            if (vdgx_wsrc_norm (src, be, &b->norm_k_img, VDGX_NORM_RMS, name, d, eps, true, false, false, err))
                return -1;
        }
    }
    return 0;
}

static wan21_dit_t *
s_new (vdgx_backend_t *backend, const char *precision, char **err)
{
    vdgx_wfmt_t fmt;
    if (vdgx_precision_parse (precision, &fmt)) {
        vdgx_set_error (err, "wan21 dit: unknown precision '%s' (fp32, bf16, fp8, fp4, nvfp4, nf4, mxfp4)",
               precision);
        return NULL;
    }
    wan21_dit_t *self = calloc (1, sizeof (wan21_dit_t));
    if (!self) {
        vdgx_set_error (err, "wan21 dit: out of memory");
        return NULL;
    }
    self->backend = backend;
    self->act = vdgx_backend_act_dtype (backend);
    self->block_fmt = fmt;
    self->other_fmt = self->act == VDGX_DTYPE_F32? VDGX_WFMT_F32: VDGX_WFMT_BF16;
    if (fmt == VDGX_WFMT_F32)
        self->other_fmt = VDGX_WFMT_F32;
    snprintf (self->precision, sizeof (self->precision), "%s", precision? precision: "bf16");
    return self;
}

static bool
s_config_ok (const wan21_dit_config_t *c, char **err)
{
    if (c->dim <= 0 || c->num_heads <= 0 || c->dim % c->num_heads
    ||  (c->dim / c->num_heads) % 2 || c->dim / c->num_heads < 6) {
        vdgx_set_error (err, "wan21 dit: dim %d does not split into %d heads of an even size >= 6",
               c->dim, c->num_heads);
        return false;
    }
    if (c->num_layers <= 0 || c->ffn_dim <= 0 || c->in_dim <= 0 || c->out_dim <= 0
    ||  c->text_dim <= 0 || c->text_len <= 0 || c->freq_dim <= 0 || c->freq_dim % 2
    ||  c->patch [0] <= 0 || c->patch [1] <= 0 || c->patch [2] <= 0 || c->img_dim < 0
    ||  c->img_pos < 0 || (c->img_pos > 0 && c->img_dim == 0)) {
        vdgx_set_error (err, "wan21 dit: invalid configuration");
        return false;
    }
    //  The official image cross-attention splits its context at the constant 512
    //  (T5_CONTEXT_TOKEN_NUMBER): text_len 512 is part of the architecture.
    if (c->img_dim > 0 && c->text_len != 512) {
        vdgx_set_error (err, "wan21 dit: an image-to-video DiT needs text_len 512 (got %d)", c->text_len);
        return false;
    }
    if ((c->img_dim > 0) != (c->in_dim > c->out_dim)) {
        vdgx_set_error (err, "wan21 dit: in_dim %d and out_dim %d %s an image branch", c->in_dim,
                        c->out_dim, c->img_dim > 0? "do not fit": "need");
        return false;
    }
    return true;
}

wan21_dit_t *
wan21_dit_new_random (vdgx_backend_t *backend, const wan21_dit_config_t *cfg,
                      const char *precision, uint64_t seed, char **err)
{
    assert (backend && cfg);
    if (!s_config_ok (cfg, err))
        return NULL;
    wan21_dit_t *self = s_new (backend, precision, err);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    vdgx_wsrc_t *src = vdgx_wsrc_new_random (seed, "wan21 dit");
    int rc = src? s_load_all (self, src, err): -1;
    if (!src)
        vdgx_set_error (err, "wan21 dit: out of memory");
    vdgx_wsrc_destroy (&src);
    if (rc)
        wan21_dit_destroy (&self);
    return self;
}

//  Reads num_heads / text_len from a config.json (official or diffusers keys), if present.
static void
s_read_config_json (const char *dir, int *num_heads, int *text_len, int dim)
{
    char path [4096 + 16];
    snprintf (path, sizeof (path), "%s/config.json", dir);
    if (!vdgx_is_file (path))
        return;
    json_t *root = json_load_file (path, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return;
    }
    json_t *h = json_object_get (root, "num_heads");
    if (!h)
        h = json_object_get (root, "num_attention_heads");
    json_t *hd = json_object_get (root, "attention_head_dim");
    json_t *cdim = json_object_get (root, "dim");
    //  A config.json of another model lying beside a single file must not be trusted.
    bool dim_ok = !json_is_integer (cdim) || json_integer_value (cdim) == dim;
    if (json_is_integer (hd) && json_is_integer (h))
        dim_ok = dim_ok && json_integer_value (hd) * json_integer_value (h) == dim;
    if (dim_ok && json_is_integer (h) && json_integer_value (h) > 0 && *num_heads == 0)
        *num_heads = (int) json_integer_value (h);
    json_t *tl = json_object_get (root, "text_len");
    if (dim_ok && json_is_integer (tl) && json_integer_value (tl) > 0 && *text_len == 0)
        *text_len = (int) json_integer_value (tl);
    json_decref (root);
}

wan21_dit_t *
wan21_dit_load (vdgx_backend_t *backend, const char *path, const wan21_dit_load_opts_t *opts,
                char **err)
{
    assert (backend);
    if (!path) {
        vdgx_set_error (err, "wan21 dit: no weights path");
        return NULL;
    }
    wan21_dit_load_opts_t o = { 0 };
    if (opts)
        o = *opts;
    //  Resolve a folder to its weights file.
    char file [4096], dir [4096];
    if (vdgx_is_dir (path)) {
        const char *candidates [] = {
            "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "transformer/diffusion_pytorch_model.safetensors",
        };
        file [0] = 0;
        for (size_t i = 0; i < sizeof (candidates) / sizeof (candidates [0]); i++) {
            snprintf (file, sizeof (file), "%s/%s", path, candidates [i]);
            if (vdgx_is_file (file))
                break;
            file [0] = 0;
        }
        if (!file [0]) {
            vdgx_set_error (err, "wan21 dit: no diffusion_pytorch_model.safetensors[.index.json] in %s "
                        "or %s/transformer", path, path);
            return NULL;
        }
    }
    else
        snprintf (file, sizeof (file), "%s", path);
    snprintf (dir, sizeof (dir), "%s", file);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf (dir, sizeof (dir), ".");

    char *e = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &e);
    if (!ckpt) {
        vdgx_set_error (err, "wan21 dit: %s: %s", file, e? e: "cannot open");
        free (e);
        return NULL;
    }
    //  Layout: the map under which the time projection is found.
    vdgx_wsrc_t *src = NULL;
    for (size_t i = 0; i < sizeof (s_maps) / sizeof (s_maps [0]) && !src; i++) {
        src = vdgx_wsrc_new (ckpt, &s_maps [i], "wan21 dit");
        if (src && !vdgx_wsrc_find (src, "time_projection.1.weight"))
            vdgx_wsrc_destroy (&src);
    }
    if (!src) {
        vdgx_set_error (err, "wan21 dit: %s is not a Wan 2.1 DiT checkpoint (no patch embedding / "
                    "time projection)", file);
        vdgx_ckpt_destroy (&ckpt);
        return NULL;
    }
    //  The image branch is read in the official names only: a diffusers image-to-video
    //  transformer (image_embedder, add_k_proj) is refused by name.
    for (size_t i = 0; i < vdgx_ckpt_count (ckpt); i++) {
        const char *name = vdgx_ckpt_at (ckpt, i)->name;
        if (strstr (name, "image_embedder") || strstr (name, "add_k_proj")) {
            vdgx_set_error (err, "wan21 dit: %s is a diffusers image-to-video checkpoint (%s); "
                   "image-to-video needs the official layout (Wan-AI/Wan2.1-I2V-14B-480P)", file, name);
            vdgx_wsrc_destroy (&src);
            vdgx_ckpt_destroy (&ckpt);
            return NULL;
        }
    }
    //  Configuration from the shapes.
    wan21_dit_config_t c;
    memset (&c, 0, sizeof (c));
    c.eps = 1e-6;
    const vdgx_ckpt_tensor_t *pe = vdgx_wsrc_find (src, "patch_embedding.weight");
    const vdgx_ckpt_tensor_t *te = vdgx_wsrc_find (src, "text_embedding.0.weight");
    const vdgx_ckpt_tensor_t *tm = vdgx_wsrc_find (src, "time_embedding.0.weight");
    const vdgx_ckpt_tensor_t *hd = vdgx_wsrc_find (src, "head.head.weight");
    const vdgx_ckpt_tensor_t *ff = vdgx_wsrc_find (src, "blocks.0.ffn.0.weight");
    if (!pe || pe->ndim != 5 || !te || te->ndim != 2 || !tm || tm->ndim != 2 || !hd
    ||  hd->ndim != 2 || !ff || ff->ndim != 2) {
        vdgx_set_error (err, "wan21 dit: %s lacks the embeddings, the head or block 0 with the expected ranks",
               file);
        vdgx_wsrc_destroy (&src);
        vdgx_ckpt_destroy (&ckpt);
        return NULL;
    }
    c.dim = (int) pe->shape [0];
    c.in_dim = (int) pe->shape [1];
    c.patch [0] = (int) pe->shape [2];
    c.patch [1] = (int) pe->shape [3];
    c.patch [2] = (int) pe->shape [4];
    c.text_dim = (int) te->shape [1];
    c.freq_dim = (int) tm->shape [1];
    c.ffn_dim = (int) ff->shape [0];
    int64_t pp = (int64_t) c.patch [0] * c.patch [1] * c.patch [2];
    c.out_dim = pp > 0 && hd->shape [0] % pp == 0? (int) (hd->shape [0] / pp): 0;
    while (true) {
        char name [64];
        snprintf (name, sizeof (name), "blocks.%d.modulation", c.num_layers);
        if (!vdgx_wsrc_find (src, name))
            break;
        c.num_layers++;
    }
    //  Image DiT (model_type i2v / flf2v): img_emb's first linear [img_dim, img_dim].
    const vdgx_ckpt_tensor_t *ie = vdgx_wsrc_find (src, "img_emb.proj.1.weight");
    const vdgx_ckpt_tensor_t *ep = vdgx_wsrc_find (src, "img_emb.emb_pos");
    if (ie) {
        c.img_dim = ie->ndim == 2? (int) ie->shape [1]: -1;
        c.img_pos = ep && ep->ndim >= 2? (int) ep->shape [ep->ndim - 2]: 0;
        if (c.img_dim <= 0 || c.in_dim <= c.out_dim || (ep && (ep->ndim < 2 || c.img_pos <= 0))) {
            vdgx_set_error (err, "wan21 dit: %s: an image-to-video DiT needs img_emb.proj.1.weight "
                   "[img_dim, img_dim] and more input (%d) than output (%d) channels",
                   file, c.in_dim, c.out_dim);
            vdgx_wsrc_destroy (&src);
            vdgx_ckpt_destroy (&ckpt);
            return NULL;
        }
    }
    c.num_heads = o.num_heads;
    c.text_len = o.text_len;
    s_read_config_json (dir, &c.num_heads, &c.text_len, c.dim);
    if (c.num_heads == 0)
        c.num_heads = c.dim / 128;
    if (c.text_len == 0)
        c.text_len = 512;
    if (!s_config_ok (&c, err)) {
        vdgx_wsrc_destroy (&src);
        vdgx_ckpt_destroy (&ckpt);
        return NULL;
    }
    wan21_dit_t *self = s_new (backend, o.precision, err);
    if (self) {
        self->cfg = c;
        if (s_load_all (self, src, err))
            wan21_dit_destroy (&self);
        else
            self->tensors_used = vdgx_wsrc_used (src);
    }
    vdgx_wsrc_destroy (&src);
    vdgx_ckpt_destroy (&ckpt);
    return self;
}

const wan21_dit_config_t *
wan21_dit_config (wan21_dit_t *self)
{
    assert (self);
    return &self->cfg;
}

size_t
wan21_dit_tensors_used (wan21_dit_t *self)
{
    assert (self);
    return self->tensors_used;
}

const char *
wan21_dit_precision (wan21_dit_t *self)
{
    assert (self);
    return self->precision;
}

void
wan21_dit_set_tap (wan21_dit_t *self, wan21_dit_tap_fn *fn, void *ctx)
{
    assert (self);
    self->tap = fn;
    self->tap_ctx = ctx;
}

static void
s_tap (wan21_dit_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_ctx, name, t);
}

//  ---------------------------------------------------------------------------------------
//  Host-side tables

void
wan21_dit_rope_angles (int head_dim, double *angles)
{
    assert (head_dim > 0 && head_dim % 2 == 0 && angles);
    int d = head_dim, half = d / 2;
    //  rope_params(1024, d - 4(d/6)) for frames, rope_params(1024, 2(d/6)) for h and w.
    int dims [3] = { d - 4 * (d / 6), 2 * (d / 6), 2 * (d / 6) };
    double *freq = malloc ((size_t) half * sizeof (double));
    assert (freq);
    for (int part = 0, col = 0; part < 3; col += dims [part] / 2, part++)
        vdgx_rope_theta_freqs (10000.0, dims [part], freq + col);
    for (int pos = 0; pos < 1024; pos++)
        for (int j = 0; j < half; j++)
            angles [(size_t) pos * half + j] = (double) pos * freq [j];
    free (freq);
}

//  The 3-axis RoPE table of the token grid (vdgx_rope_wan3d), kept while the grid stays.
static int
s_rope_tables (wan21_dit_t *self, int64_t gf, int64_t gh, int64_t gw, char **err)
{
    if (self->have_rope && self->rope_grid [0] == gf && self->rope_grid [1] == gh
    &&  self->rope_grid [2] == gw)
        return 0;
    vdgx_rope_release (self->backend, &self->rope);
    self->have_rope = false;
    if (vdgx_rope_wan3d (self->backend, &self->rope, self->cfg.dim / self->cfg.num_heads, gf, gh, gw, err))
        return -1;
    self->rope_grid [0] = gf;
    self->rope_grid [1] = gh;
    self->rope_grid [2] = gw;
    self->have_rope = true;
    return 0;
}

static int
s_buffers (wan21_dit_t *self, int64_t L, char **err)
{
    if (self->have_bufs && self->buf_tokens == L)
        return 0;
    s_free_buffers (self);
    int64_t d = self->cfg.dim, f = self->cfg.ffn_dim;
    int64_t sd [2] = { L, d }, sf [2] = { L, f };
    vdgx_tensor_t *bufs [] = { &self->x, &self->hn, &self->hm, &self->q, &self->q2, &self->k,
                               &self->k2, &self->v };
    //  The residual stream x stays f32 on every backend (the official blocks add their
    //  residuals under f32 autocast); the other activations use the act dtype.
    for (size_t i = 0; i < sizeof (bufs) / sizeof (bufs [0]); i++)
        if (vdgx_tensor_alloc (self->backend, bufs [i], i == 0? VDGX_DTYPE_F32: self->act, 2, sd))
            return s_op_err (self, err, "activation buffers");
    if (vdgx_tensor_alloc (self->backend, &self->f1, self->act, 2, sf)
    ||  vdgx_tensor_alloc (self->backend, &self->f2, self->act, 2, sf))
        return s_op_err (self, err, "activation buffers");
    //  The head runs in f32 [L, D]: in the FFN buffers (free by then) when [L, ffn] in the act
    //  dtype holds that much, else in buffers of its own (ffn_dim < dim, or < 2 dim in bf16).
    if (vdgx_tensor_nbytes (&self->f1) >= (size_t) (L * d) * sizeof (float)) {
        vdgx_tensor_init (&self->head_a, VDGX_DTYPE_F32, 2, sd, self->f1.data, self->f1.device);
        vdgx_tensor_init (&self->head_b, VDGX_DTYPE_F32, 2, sd, self->f2.data, self->f2.device);
    }
    else
    if (vdgx_tensor_alloc (self->backend, &self->head_a, VDGX_DTYPE_F32, 2, sd)
    ||  vdgx_tensor_alloc (self->backend, &self->head_b, VDGX_DTYPE_F32, 2, sd))
        return s_op_err (self, err, "head buffers");
    self->buf_tokens = L;
    self->have_bufs = true;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Forward

static int
s_linear (wan21_dit_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_linear_t *l,
          char **err, const char *what)
{
    if (vdgx_linear_forward (self->backend, l, y, x))
        return s_op_err (self, err, what);
    return 0;
}

//  The image context: img_emb(features (+ emb_pos)) [n, D], then every block's k_img / v_img.
static int
s_image_context (wan21_dit_t *self, wan21_dit_context_t *ctx, const float *image, int64_t n,
                 char **err)
{
    const wan21_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    int64_t id = c->img_dim, d = c->dim;
    float *host = malloc ((size_t) (n * id) * sizeof (float));
    ctx->k_img = calloc ((size_t) c->num_layers, sizeof (vdgx_tensor_t));
    ctx->v_img = calloc ((size_t) c->num_layers, sizeof (vdgx_tensor_t));
    if (!host || !ctx->k_img || !ctx->v_img) {
        free (host);
        vdgx_set_error (err, "wan21 dit: out of memory (image context)");
        return -1;
    }
    ctx->image_tokens = n;
    memcpy (host, image, (size_t) (n * id) * sizeof (float));
    if (self->img_pos)
        for (int64_t i = 0; i < n * id; i++)
            host [i] += self->img_pos [i];
    vdgx_tensor_t in = { 0 }, a = { 0 }, h1 = { 0 }, h2 = { 0 }, e = { 0 }, emb = { 0 }, kraw = { 0 };
    int64_t s_i [2] = { n, id }, s_d [2] = { n, d };
    int rc = vdgx_tensor_alloc (b, &in, self->act, 2, s_i);
    rc = rc? rc: vdgx_tensor_alloc (b, &a, self->act, 2, s_i);
    rc = rc? rc: vdgx_tensor_alloc (b, &h1, self->act, 2, s_i);
    rc = rc? rc: vdgx_tensor_alloc (b, &h2, self->act, 2, s_i);
    rc = rc? rc: vdgx_tensor_alloc (b, &e, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &emb, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &kraw, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_from_f32 (b, &in, host);
    free (host);
    if (rc)
        rc = s_op_err (self, err, "image context upload");
    else
    if (vdgx_norm_forward (b, &self->img_n0, &a, &in))
        rc = s_op_err (self, err, "img_emb.proj.0");
    else
    if (s_linear (self, &h1, &a, &self->img_l1, err, "img_emb.proj.1"))
        rc = -1;
    else
    if (vdgx_act_forward (b, VDGX_ACT_GELU, &h2, &h1))
        rc = s_op_err (self, err, "img_emb gelu");
    else
    if (s_linear (self, &e, &h2, &self->img_l3, err, "img_emb.proj.3"))
        rc = -1;
    else
    if (vdgx_norm_forward (b, &self->img_n4, &emb, &e))
        rc = s_op_err (self, err, "img_emb.proj.4");
    if (rc == 0) {
        vdgx_tensor_t e3 = vdgx_nn_view3 (&emb, 1, n, d);
        s_tap (self, "img_emb", &e3);
    }
    for (int i = 0; rc == 0 && i < c->num_layers; i++) {
        s_block_t *blk = &self->blocks [i];
        char name [64];
        if (vdgx_tensor_alloc (b, &ctx->k_img [i], self->act, 2, s_d)
        ||  vdgx_tensor_alloc (b, &ctx->v_img [i], self->act, 2, s_d))
            rc = s_op_err (self, err, "image keys");
        else
        if (vdgx_attn_project (b, &blk->k_img, &blk->norm_k_img, NULL, 1, &ctx->k_img [i], &kraw, &emb))
            rc = s_op_err (self, err, "cross_attn.k_img");
        else
            rc = s_linear (self, &ctx->v_img [i], &emb, &blk->v_img, err, "cross_attn.v_img");
        if (rc == 0 && self->tap) {
            vdgx_tensor_t k3 = vdgx_nn_view3 (&ctx->k_img [i], 1, n, d);
            vdgx_tensor_t v3 = vdgx_nn_view3 (&ctx->v_img [i], 1, n, d);
            snprintf (name, sizeof (name), "blocks.%d.cross_attn.norm_k_img", i);
            s_tap (self, name, &k3);
            snprintf (name, sizeof (name), "blocks.%d.cross_attn.v_img", i);
            s_tap (self, name, &v3);
        }
    }
    vdgx_tensor_t *tmp [] = { &in, &a, &h1, &h2, &e, &emb, &kraw };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        s_free_tensor (self, tmp [i]);
    return rc;
}

wan21_dit_context_t *
wan21_dit_context_new (wan21_dit_t *self, const float *context, int64_t len, char **err)
{
    return wan21_dit_context_new_image (self, context, len, NULL, 0, err);
}

wan21_dit_context_t *
wan21_dit_context_new_image (wan21_dit_t *self, const float *context, int64_t len,
                             const float *image, int64_t image_tokens, char **err)
{
    assert (self);
    const wan21_dit_config_t *c = &self->cfg;
    if (!context || len < 0 || len > c->text_len) {
        vdgx_set_error (err, "wan21 dit: context of %lld rows (1..%d allowed)", (long long) len, c->text_len);
        return NULL;
    }
    if (c->img_dim == 0 && image) {
        vdgx_set_error (err, "wan21 dit: image features given to a text-to-video DiT");
        return NULL;
    }
    int64_t want = c->img_pos > 0? c->img_pos: 257;
    if (c->img_dim > 0 && (!image || image_tokens != want)) {
        vdgx_set_error (err, "wan21 dit: this %s DiT needs the CLIP features of %s (%lld tokens, got %lld)",
                        c->img_pos > 0? "first-last-frame": "image-to-video",
                        c->img_pos > 0? "two images": "the image", (long long) want,
                        (long long) (image? image_tokens: 0));
        return NULL;
    }
    vdgx_backend_t *b = self->backend;
    int64_t tl = c->text_len, d = c->dim;
    //  Zero rows pad the prompt to text_len BEFORE the embedding, and are attended to.
    float *host = calloc ((size_t) tl * c->text_dim, sizeof (float));
    wan21_dit_context_t *ctx = calloc (1, sizeof (wan21_dit_context_t));
    if (ctx) {
        ctx->k = calloc ((size_t) c->num_layers, sizeof (vdgx_tensor_t));
        ctx->v = calloc ((size_t) c->num_layers, sizeof (vdgx_tensor_t));
        ctx->layers = c->num_layers;
    }
    if (!host || !ctx || !ctx->k || !ctx->v) {
        free (host);
        wan21_dit_context_destroy (self, &ctx);
        vdgx_set_error (err, "wan21 dit: out of memory (context)");
        return NULL;
    }
    memcpy (host, context, (size_t) len * c->text_dim * sizeof (float));
    vdgx_tensor_t in = { 0 }, h1 = { 0 }, h2 = { 0 }, emb = { 0 }, kraw = { 0 };
    int64_t s_in [2] = { tl, c->text_dim }, s_d [2] = { tl, d };
    int rc = vdgx_tensor_alloc (b, &in, self->act, 2, s_in);
    rc = rc? rc: vdgx_tensor_alloc (b, &h1, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &h2, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &emb, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &kraw, self->act, 2, s_d);
    rc = rc? rc: vdgx_tensor_from_f32 (b, &in, host);
    free (host);
    if (rc)
        s_op_err (self, err, "context upload");
    else
    if (s_linear (self, &h1, &in, &self->text0, err, "text_embedding.0"))
        rc = -1;
    else
    if (vdgx_op_gelu_tanh (b, &h2, &h1))
        rc = s_op_err (self, err, "text_embedding gelu");
    else
    if (s_linear (self, &emb, &h2, &self->text2, err, "text_embedding.2"))
        rc = -1;
    if (rc == 0) {
        vdgx_tensor_t e3 = vdgx_nn_view3 (&emb, 1, tl, d);
        s_tap (self, "text_embedding", &e3);
    }
    for (int i = 0; rc == 0 && i < c->num_layers; i++) {
        s_block_t *blk = &self->blocks [i];
        if (vdgx_tensor_alloc (b, &ctx->k [i], self->act, 2, s_d)
        ||  vdgx_tensor_alloc (b, &ctx->v [i], self->act, 2, s_d))
            rc = s_op_err (self, err, "context keys");
        else
        if (vdgx_attn_project (b, &blk->cross_attn.k, &blk->cross_attn.k_norm, NULL, 1,
                               &ctx->k [i], &kraw, &emb))
            rc = s_op_err (self, err, "cross_attn.k");
        else
            rc = s_linear (self, &ctx->v [i], &emb, &blk->cross_attn.v, err, "cross_attn.v");
    }
    vdgx_tensor_t *tmp [] = { &in, &h1, &h2, &emb, &kraw };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        s_free_tensor (self, tmp [i]);
    if (rc == 0 && c->img_dim > 0)
        rc = s_image_context (self, ctx, image, image_tokens, err);
    if (rc)
        wan21_dit_context_destroy (self, &ctx);
    return ctx;
}

void
wan21_dit_context_destroy (wan21_dit_t *self, wan21_dit_context_t **ctx_p)
{
    assert (self && ctx_p);
    wan21_dit_context_t *ctx = *ctx_p;
    if (!ctx)
        return;
    for (int i = 0; i < ctx->layers; i++) {
        if (ctx->k)
            s_free_tensor (self, &ctx->k [i]);
        if (ctx->v)
            s_free_tensor (self, &ctx->v [i]);
        if (ctx->k_img)
            s_free_tensor (self, &ctx->k_img [i]);
        if (ctx->v_img)
            s_free_tensor (self, &ctx->v_img [i]);
    }
    free (ctx->k);
    free (ctx->v);
    free (ctx->k_img);
    free (ctx->v_img);
    free (ctx);
    *ctx_p = NULL;
}

//  e = time_embedding(sin emb(t)) [1, D] and e0 = time_projection(e) [6, D].
static int
s_time (wan21_dit_t *self, int64_t t, vdgx_tensor_t *e, vdgx_tensor_t *e0, char **err)
{
    const wan21_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    float *sinus = malloc ((size_t) c->freq_dim * sizeof (float));
    if (!sinus) {
        vdgx_set_error (err, "wan21 dit: out of memory");
        return -1;
    }
    //  float64, [cos, sin], frequencies 10000^(-i/half), as sinusoidal_embedding_1d.
    vdgx_nn_sinusoidal ((double) t, c->freq_dim, 10000.0, true, sinus);
    vdgx_tensor_t s = { 0 }, h1 = { 0 }, h2 = { 0 }, se = { 0 };
    int64_t s_f [2] = { 1, c->freq_dim }, s_d [2] = { 1, c->dim }, s_6 [2] = { 1, 6 * (int64_t) c->dim };
    //  The time path is tiny and runs in f32 everywhere (official: f32 autocast).
    const vdgx_dtype_t f32 = VDGX_DTYPE_F32;
    int rc = vdgx_tensor_alloc (b, &s, f32, 2, s_f);
    rc = rc? rc: vdgx_tensor_alloc (b, &h1, f32, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &h2, f32, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, &se, f32, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, e, f32, 2, s_d);
    rc = rc? rc: vdgx_tensor_alloc (b, e0, f32, 2, s_6);
    rc = rc? rc: vdgx_tensor_from_f32 (b, &s, sinus);
    free (sinus);
    if (rc)
        s_op_err (self, err, "time embedding buffers");
    else
    if (s_linear (self, &h1, &s, &self->time0, err, "time_embedding.0"))
        rc = -1;
    else
    if (vdgx_op_silu (b, &h2, &h1))
        rc = s_op_err (self, err, "time_embedding silu");
    else
    if (s_linear (self, e, &h2, &self->time2, err, "time_embedding.2"))
        rc = -1;
    else
    if (vdgx_op_silu (b, &se, e))
        rc = s_op_err (self, err, "time_projection silu");
    else
    if (s_linear (self, e0, &se, &self->proj, err, "time_projection.1"))
        rc = -1;
    if (rc == 0) {
        s_tap (self, "time_embedding", e);
        s_tap (self, "time_projection", e0);
    }
    s_free_tensor (self, &s);
    s_free_tensor (self, &h1);
    s_free_tensor (self, &h2);
    s_free_tensor (self, &se);
    return rc;
}

//  One attention block on self->x (see WanAttentionBlock.forward).
static int
s_block (wan21_dit_t *self, int index, const vdgx_tensor_t *e0, wan21_dit_context_t *ctx,
         vdgx_tensor_t *mod, char **err)
{
    const wan21_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    s_block_t *blk = &self->blocks [index];
    int64_t L = self->buf_tokens, d = c->dim, H = c->num_heads, hd = d / H;
    int64_t tl = c->text_len;
    char name [64];
#define TAP(suffix, t) do { if (self->tap) { snprintf (name, sizeof (name), "blocks.%d%s", index, suffix); s_tap (self, name, t); } } while (0)

    //  (shift, scale, gate) = modulation + e0: rows (0, 1, 2) attention, (3, 4, 5) FFN.
    vdgx_tensor_t e0v = vdgx_nn_view2 (e0, 6, d);
    if (vdgx_adaln_rows (b, mod, &blk->mod, &e0v))
        return s_op_err (self, err, "modulation");
    vdgx_tensor_t m [6];
    for (int i = 0; i < 6; i++)
        m [i] = vdgx_nn_rows (mod, i, 1);
    vdgx_tensor_t hn3 = vdgx_nn_view3 (&self->hn, 1, L, d), hm3 = vdgx_nn_view3 (&self->hm, 1, L, d);

    //  Self-attention: q/k RMSNorm over the full width, then RoPE (q, k land in q2, k2;
    //  the normed values stay in q, k for the taps).
    const vdgx_attn_t *sa = &blk->self_attn;
    if (vdgx_norm_forward (b, &blk->norm1, &self->hn, &self->x))
        return s_op_err (self, err, "norm1");
    TAP (".norm1", &hn3);
    if (vdgx_adaln_modulate (b, &self->hm, &self->hn, &m [0], &m [1]))
        return s_op_err (self, err, "modulate (attention)");
    if (vdgx_attn_project (b, &sa->q, &sa->q_norm, &self->rope, H, &self->q2, &self->q, &self->hm)
    ||  vdgx_attn_project (b, &sa->k, &sa->k_norm, &self->rope, H, &self->k2, &self->k, &self->hm)
    ||  vdgx_linear_forward (b, &sa->v, &self->v, &self->hm))
        return s_op_err (self, err, "self_attn q/k/v");
    if (self->tap) {
        vdgx_tensor_t q3 = vdgx_nn_view3 (&self->q, 1, L, d), k3 = vdgx_nn_view3 (&self->k, 1, L, d);
        vdgx_tensor_t v3 = vdgx_nn_view3 (&self->v, 1, L, d);
        TAP (".self_attn.norm_q", &q3);
        TAP (".self_attn.norm_k", &k3);
        TAP (".self_attn.v", &v3);
    }
    vdgx_tensor_t q24 = vdgx_nn_view4 (&self->q2, 1, L, H, hd), k24 = vdgx_nn_view4 (&self->k2, 1, L, H, hd);
    vdgx_tensor_t v4 = vdgx_nn_view4 (&self->v, 1, L, H, hd), o4 = vdgx_nn_view4 (&self->hn, 1, L, H, hd);
    if (vdgx_attn_core (b, sa, &o4, &q24, &k24, &v4, NULL))
        return s_op_err (self, err, "self-attention");
    if (s_linear (self, &self->hm, &self->hn, &sa->o, err, "self_attn.o"))
        return -1;
    TAP (".self_attn", &hm3);
    if (vdgx_adaln_gate (b, &self->x, &self->hm, &m [2]))
        return s_op_err (self, err, "gated residual (attention)");

    //  Cross-attention to all text_len context rows (no mask); an image DiT adds the
    //  attention of the same q to the image tokens before o (WanI2VCrossAttention).
    const vdgx_attn_t *ca = &blk->cross_attn;
    if (vdgx_norm_forward (b, &blk->norm3, &self->hn, &self->x))
        return s_op_err (self, err, "norm3");
    TAP (".norm3", &hn3);
    if (vdgx_attn_project (b, &ca->q, &ca->q_norm, NULL, H, &self->q, &self->q2, &self->hn))
        return s_op_err (self, err, "cross_attn.q");
    if (c->img_dim > 0 && self->tap) {
        vdgx_tensor_t q3 = vdgx_nn_view3 (&self->q, 1, L, d);
        TAP (".cross_attn.norm_q", &q3);
    }
    vdgx_tensor_t q4 = vdgx_nn_view4 (&self->q, 1, L, H, hd);
    vdgx_tensor_t ck4 = vdgx_nn_view4 (&ctx->k [index], 1, tl, H, hd);
    vdgx_tensor_t cv4 = vdgx_nn_view4 (&ctx->v [index], 1, tl, H, hd);
    if (vdgx_attn_core (b, ca, &o4, &q4, &ck4, &cv4, NULL))
        return s_op_err (self, err, "cross-attention");
    if (c->img_dim > 0) {
        int64_t ni = ctx->image_tokens;
        vdgx_tensor_t ik4 = vdgx_nn_view4 (&ctx->k_img [index], 1, ni, H, hd);
        vdgx_tensor_t iv4 = vdgx_nn_view4 (&ctx->v_img [index], 1, ni, H, hd);
        vdgx_tensor_t io4 = vdgx_nn_view4 (&self->hm, 1, L, H, hd);
        if (vdgx_attn_core (b, ca, &io4, &q4, &ik4, &iv4, NULL))
            return s_op_err (self, err, "image cross-attention");
        if (vdgx_adaln_gate (b, &self->hn, &self->hm, NULL))
            return s_op_err (self, err, "text + image attention");
    }
    if (s_linear (self, &self->hm, &self->hn, &ca->o, err, "cross_attn.o"))
        return -1;
    TAP (".cross_attn", &hm3);
    if (vdgx_adaln_gate (b, &self->x, &self->hm, NULL))
        return s_op_err (self, err, "residual (cross-attention)");

    //  FFN.
    if (vdgx_norm_forward (b, &blk->norm2, &self->hn, &self->x))
        return s_op_err (self, err, "norm2");
    if (vdgx_adaln_modulate (b, &self->hm, &self->hn, &m [3], &m [4]))
        return s_op_err (self, err, "modulate (ffn)");
    if (vdgx_mlp_forward (b, &blk->ffn, &self->hn, &self->hm, &self->f1, &self->f2))
        return s_op_err (self, err, "ffn");
    TAP (".ffn", &hn3);
    if (vdgx_adaln_gate (b, &self->x, &self->hn, &m [5]))
        return s_op_err (self, err, "gated residual (ffn)");
    if (self->tap) {
        vdgx_tensor_t x3 = vdgx_nn_view3 (&self->x, 1, L, d);
        TAP ("", &x3);
    }
#undef TAP
    return 0;
}

int
wan21_dit_forward (wan21_dit_t *self, const float *latent, int64_t frames, int64_t height,
                   int64_t width, int64_t t, wan21_dit_context_t *ctx, float *out, char **err)
{
    assert (self && latent && out && ctx);
    const wan21_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    int64_t pt = c->patch [0], ph = c->patch [1], pw = c->patch [2];
    if (frames <= 0 || height <= 0 || width <= 0 || frames % pt || height % ph || width % pw) {
        vdgx_set_error (err, "wan21 dit: latent %lldx%lldx%lld is not a multiple of the patch %lldx%lldx%lld",
               (long long) frames, (long long) height, (long long) width,
               (long long) pt, (long long) ph, (long long) pw);
        return -1;
    }
    int64_t gf = frames / pt, gh = height / ph, gw = width / pw;
    int64_t L = gf * gh * gw;
    if (gf > 1024 || gh > 1024 || gw > 1024) {
        vdgx_set_error (err, "wan21 dit: grid %lldx%lldx%lld exceeds the 1024 RoPE positions",
               (long long) gf, (long long) gh, (long long) gw);
        return -1;
    }
    int64_t d = c->dim, cin = c->in_dim, cout = c->out_dim;
    int64_t pin = cin * pt * ph * pw, pout = cout * pt * ph * pw;
    if (s_buffers (self, L, err) || s_rope_tables (self, gf, gh, gw, err))
        return -1;

    //  Patch embedding (Conv3d with stride = kernel) as a linear over gathered patches:
    //  patch vector index = ((ci * pt + p) * ph + q) * pw + r, as the conv weight flattens.
    float *patches = malloc ((size_t) L * pin * sizeof (float));
    if (!patches) {
        vdgx_set_error (err, "wan21 dit: out of memory (patches)");
        return -1;
    }
    vdgx_nn_patchify3d (latent, cin, frames, height, width, c->patch, patches);
    vdgx_tensor_t pin_t = { 0 }, e = { 0 }, e0 = { 0 }, mod = { 0 }, hmod = { 0 }, hout = { 0 };
    int64_t s_p [2] = { L, pin }, s_m [2] = { 6, d }, s_h [2] = { 2, d }, s_o [2] = { L, pout };
    int rc = vdgx_tensor_alloc (b, &pin_t, self->act, 2, s_p);
    rc = rc? rc: vdgx_tensor_alloc (b, &mod, VDGX_DTYPE_F32, 2, s_m);
    rc = rc? rc: vdgx_tensor_alloc (b, &hmod, VDGX_DTYPE_F32, 2, s_h);
    rc = rc? rc: vdgx_tensor_alloc (b, &hout, VDGX_DTYPE_F32, 2, s_o);
    rc = rc? rc: vdgx_tensor_from_f32 (b, &pin_t, patches);
    free (patches);
    if (rc)
        rc = s_op_err (self, err, "patch upload");
    else
        rc = s_linear (self, &self->x, &pin_t, &self->patch, err, "patch_embedding");
    if (rc == 0)
        s_tap (self, "patch_embedding", &self->x);
    if (rc == 0)
        rc = s_time (self, t, &e, &e0, err);
    for (int i = 0; rc == 0 && i < c->num_layers; i++)
        rc = s_block (self, i, &e0, ctx, &mod, err);
    if (rc == 0) {
        //  Head: LayerNorm, modulation with head.modulation + e (not e0), linear, all in f32
        //  (the official head runs under f32 autocast), in the f32 head buffers.
        vdgx_tensor_t shift = vdgx_nn_rows (&hmod, 0, 1), scale = vdgx_nn_rows (&hmod, 1, 1);
        if (vdgx_adaln_rows (b, &hmod, &self->head_mod, &e))
            rc = s_op_err (self, err, "head modulation");
        else
        if (vdgx_norm_forward (b, &self->head_norm, &self->head_a, &self->x))
            rc = s_op_err (self, err, "head norm");
        else
        if (vdgx_adaln_modulate (b, &self->head_b, &self->head_a, &shift, &scale))
            rc = s_op_err (self, err, "head modulate");
        else
            rc = s_linear (self, &hout, &self->head_b, &self->head, err, "head.head");
    }
    float *u = NULL;
    if (rc == 0) {
        vdgx_tensor_t h3 = vdgx_nn_view3 (&hout, 1, L, pout);
        s_tap (self, "head", &h3);
        u = malloc ((size_t) L * pout * sizeof (float));
        if (!u) {
            vdgx_set_error (err, "wan21 dit: out of memory (head output)");
            rc = -1;
        }
        else
        if (vdgx_tensor_to_f32 (b, &hout, u))
            rc = s_op_err (self, err, "head download");
    }
    if (rc == 0) {
        //  Unpatchify fhwpqrc -> cfphqwr.
        vdgx_nn_unpatchify3d (u, cout, frames, height, width, c->patch, out);
    }
    free (u);
    vdgx_tensor_t *tmp [] = { &pin_t, &e, &e0, &mod, &hmod, &hout };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        s_free_tensor (self, tmp [i]);
    return rc;
}
