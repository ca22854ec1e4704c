/*  magi1_dit.c - MAGI-1's VideoDiTModel forward on a compute backend, and its weight loader.

    The residual stream x [1, L, hidden] lives on the backend; host-side (small): the
    float32 timestep sinusoid as the official code forms it, the rotary coordinates, caption
    row selection, patchify / unpatchify. The projection's input regroup
    ('(n hn hd) -> (hn n hd)', n = 2, hn = 8) is folded into linear_proj's columns at load.
*/
#include "magi1_dit.h"
#include "vdgx_attn.h"
#include "vdgx_nn.h"
#include "vdgx_quant.h"
#include "vdgx_util.h"
#include "vdgx_wsrc.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WHO "magi1 dit"
#define S_EPS 1e-6f
#define S_FREQ_DIM 256

typedef struct {
    vdgx_linear_t ada;                      //  ada_modulate_layer.proj.0 [2 hidden, cond]
    vdgx_norm_t ln_qkv;                     //  plain LayerNorm
    vdgx_linear_t q, k, v, qx, kx, vx, proj;
    vdgx_norm_t q_norm, k_norm, qx_norm, kx_norm;   //  1p, per head
    vdgx_norm_t attn_post, mlp_ln, mlp_post;
    vdgx_mlp_t mlp;
} s_layer_t;

struct _magi1_dit_t {
    vdgx_backend_t *backend;
    magi1_dit_config_t cfg;
    vdgx_dtype_t act;
    vdgx_linear_t x_embed, t0, t2, y_xattn, y_adaln, final_linear;
    vdgx_norm_t final_norm;
    float *null_caption;                    //  [caption_len, caption_dim]
    float *bands;                           //  [bands]
    s_layer_t *layers;
    vdgx_kvcache_t *scratch;                //  keys of a call without a cache
    magi1_dit_tap_fn *tap;
    void *tap_ctx;
};

struct _magi1_dit_cache_t {
    int layers;
    vdgx_kvcache_t **kv;
    int64_t first;              //  absolute row of the cache's row 0 (rows before it evicted)
};

static void
s_tap (magi1_dit_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_ctx, name, t);
}

static void
s_tap_layer (magi1_dit_t *self, int layer, const char *name, const vdgx_tensor_t *t)
{
    if (!self->tap)
        return;
    char full [128];
    snprintf (full, sizeof (full), "layers.%d%s%s", layer, *name? ".": "", name);
    self->tap (self->tap_ctx, full, t);
}

//  ---------------------------------------------------------------------------------------
//  Loading

static int
s_norm (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_norm_t *n, const char *prefix, int64_t dim,
        bool one_plus, char **err)
{
    return vdgx_wsrc_norm (src, b, n, VDGX_NORM_LAYER, prefix, dim, S_EPS, true, true, one_plus, err);
}

static int64_t
s_dim (vdgx_wsrc_t *src, const char *name, int axis, char **err)
{
    const vdgx_ckpt_tensor_t *t = vdgx_wsrc_find (src, name);
    //  The FP8 *_quant linears are (1, n, k): leading 1s of a 3-D+ tensor do not count.
    int lead = 0;
    while (t && t->ndim - lead > 2 && t->shape [lead] == 1)
        lead++;
    if (!t || t->ndim - lead <= axis) {
        vdgx_set_error (err, "%s: tensor %s is missing or has too few dims", S_WHO, name);
        return -1;
    }
    return t->shape [lead + axis];
}

//  ---------------------------------------------------------------------------------------
//  The blocks' linear weights, FP8 *_quant checkpoints included.
//
//  In the 4.5B_distill_quant / 24B_distill_quant checkpoints, layers 1 .. L-2 hold
//  linear_qkv.{q,k,v,qx} and mlp.linear_fc1 as PerTensorQuantizedFp8Linear (weight (1, n, k)
//  e4m3, weight_scale (1,), input_scale (k,)) and linear_proj, mlp.linear_fc2 as
//  PerChannelQuantizedFp8Linear (the same plus input_scale (1,), smooth_scale (1, k)). The
//  official forward divides x by input_scale (per k) or smooth_scale, rounds it to e4m3, and
//  scales the e4m3 product by weight_scale * input_scale[0] (bmm_fp8 takes one scale per
//  operand). So the weight it applies to x is
//      W[n, k] = e4m3[n, k] * weight_scale * input_scale[0] / d[k],
//  d = input_scale (per-tensor) or smooth_scale (per-channel). That W is what we load (our
//  activations stay in the act dtype: no e4m3 rounding of x). When d is uniform and FP8 is
//  asked for, the e4m3 values are kept as they are with the one scale (no second rounding).

typedef struct {
    float *w;                   //  [n, k] f32, or
    uint8_t *e4m3;              //  [n, k] e4m3 with one scale
    float scale;
} s_w_t;

static void
s_w_free (s_w_t *w)
{
    free (w->w);
    free (w->e4m3);
    memset (w, 0, sizeof (*w));
}

//  A scale vector of the quant layout as f32 in *v (count 1 or k elements; *v NULL when the
//  checkpoint has none). -1 with *err naming the tensor when it is malformed.
static int
s_quant_vec (vdgx_wsrc_t *src, const char *layer, const char *what, int64_t k, float **v,
             int64_t *count, char **err)
{
    *v = NULL;
    *count = 0;
    char name [220];
    snprintf (name, sizeof (name), "%s.%s", layer, what);
    const vdgx_ckpt_tensor_t *t = vdgx_wsrc_find (src, name);
    if (!t)
        return 0;
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        numel *= t->shape [i];
    if (numel != 1 && numel != k) {
        vdgx_set_error (err, "%s: tensor %s has %lld elements, expected 1 or %lld", S_WHO, name,
                        (long long) numel, (long long) k);
        return -1;
    }
    const int64_t shape [1] = { numel };
    float *x = vdgx_wsrc_fetch (src, name, 1, shape, err);
    if (!x)
        return -1;
    for (int64_t i = 0; i < numel; i++)
        if (!(x [i] > 0)) {
            vdgx_set_error (err, "%s: tensor %s holds a scale that is not positive", S_WHO, name);
            free (x);
            return -1;
        }
    *v = x;
    *count = numel;
    return 0;
}

//  "<layer>.weight" [n, k] (leading 1s tolerated) as host f32 or, for an FP8 *_quant tensor
//  with uniform input scales and want_fp8, its e4m3 values and one scale.
static int
s_fetch_w (vdgx_wsrc_t *src, const char *layer, int64_t n, int64_t k, bool want_fp8, s_w_t *out,
           char **err)
{
    memset (out, 0, sizeof (*out));
    char name [220];
    snprintf (name, sizeof (name), "%s.weight", layer);
    const vdgx_ckpt_tensor_t *raw = vdgx_wsrc_find (src, name);
    int64_t ci = 0, cs = 0;
    float *in = NULL, *sm = NULL, *d = NULL;
    if (raw && raw->dtype == VDGX_DTYPE_F8_E4M3
    &&  (s_quant_vec (src, layer, "input_scale", k, &in, &ci, err)
      || s_quant_vec (src, layer, "smooth_scale", k, &sm, &cs, err))) {
        free (in);
        return -1;
    }
    //  The per-input factor c / d[k] (1 without input scales: plain scaled FP8).
    float c = in? in [0]: 1.0f;
    d = sm? sm: in;
    int64_t cd = sm? cs: ci;
    bool uniform = true;
    for (int64_t i = 1; d && i < cd; i++)
        uniform = uniform && d [i] == d [0];
    int rc = -1;
    if (want_fp8 && raw && raw->dtype == VDGX_DTYPE_F8_E4M3 && uniform) {
        int64_t numel = 1;
        bool ones = true;
        for (int i = 0; i < raw->ndim; i++) {
            numel *= raw->shape [i];
            ones = ones && (i >= raw->ndim - 2 || raw->shape [i] == 1);
        }
        if (raw->ndim < 2 || !ones || raw->shape [raw->ndim - 2] != n || raw->shape [raw->ndim - 1] != k
        ||  raw->nbytes != (size_t) numel) {
            vdgx_set_error (err, "%s: tensor %s is not [%lld, %lld] e4m3", S_WHO, name, (long long) n,
                            (long long) k);
            goto done;
        }
        const int64_t one [1] = { 1 };
        char sname [240];
        snprintf (sname, sizeof (sname), "%s.weight_scale", layer);
        bool has_ws = vdgx_wsrc_find (src, sname) != NULL;
        float *ws = has_ws? vdgx_wsrc_fetch (src, sname, 1, one, err): NULL;
        if (has_ws && !ws)
            goto done;
        out->scale = (ws? ws [0]: 1.0f) * c / (d? d [0]: 1.0f);
        free (ws);
        out->e4m3 = malloc ((size_t) (n * k));
        if (!out->e4m3) {
            vdgx_set_error (err, "%s: out of memory", S_WHO);
            goto done;
        }
        memcpy (out->e4m3, raw->data, (size_t) (n * k));
        rc = 0;
        goto done;
    }
    const int64_t shape [2] = { n, k };
    out->w = vdgx_wsrc_fetch (src, name, 2, shape, err);        //  weight_scale applied
    if (!out->w)
        goto done;
    if (d)
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < k; j++)
                out->w [r * k + j] *= c / d [cd == 1? 0: j];
    rc = 0;
done:
    free (in);
    free (sm);
    if (rc)
        s_w_free (out);
    return rc;
}

//  Rows [row0, row0 + rows) of w as a linear layer in fmt.
static int
s_w_linear (vdgx_backend_t *b, vdgx_linear_t *l, const s_w_t *w, int64_t row0, int64_t rows,
            int64_t k, vdgx_wfmt_t fmt, char **err)
{
    if (w->w)
        return vdgx_linear_from_f32 (b, l, fmt, w->w + row0 * k, NULL, rows, k, VDGX_DTYPE_F32, err);
    vdgx_weight_t host;
    char *e = NULL;
    if (vdgx_weight_from_fp8 (&host, w->e4m3 + row0 * k, &w->scale, 1, rows, k, &e)) {
        vdgx_set_error (err, "%s: %s", S_WHO, e? e: "bad fp8 weight");
        free (e);
        return -1;
    }
    memset (l, 0, sizeof (*l));
    int rc = vdgx_linear_from_weight (b, l, &host, err);
    vdgx_weight_host_free (&host);
    return rc;
}

//  Column j of the result = column from [j] of w (both representations).
static int
s_w_permute_cols (s_w_t *w, int64_t n, int64_t k, const int64_t *from, char **err)
{
    size_t es = w->w? sizeof (float): 1;
    uint8_t *src = w->w? (uint8_t *) w->w: w->e4m3;
    uint8_t *dst = malloc ((size_t) (n * k) * es);
    if (!dst) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return -1;
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < k; j++)
            memcpy (dst + (size_t) (r * k + j) * es, src + (size_t) (r * k + from [j]) * es, es);
    if (w->w) {
        free (w->w);
        w->w = (float *) dst;
    }
    else {
        free (w->e4m3);
        w->e4m3 = dst;
    }
    return 0;
}

//  One block linear "<p><name>" [n, k] (fc1 of the gated MLP: two halves into l and l2).
static int
s_block_linear (vdgx_backend_t *b, vdgx_wsrc_t *src, const char *p, const char *name, int64_t n,
                int64_t k, vdgx_wfmt_t fmt, vdgx_linear_t *l, vdgx_linear_t *l2, char **err)
{
    char layer [200];
    snprintf (layer, sizeof (layer), "%s%s", p, name);
    s_w_t w;
    if (s_fetch_w (src, layer, l2? 2 * n: n, k, fmt == VDGX_WFMT_FP8_E4M3, &w, err))
        return -1;
    int rc = s_w_linear (b, l, &w, 0, n, k, fmt, err);
    if (rc == 0 && l2)
        rc = s_w_linear (b, l2, &w, n, n, k, fmt, err);
    s_w_free (&w);
    return rc;
}

static int
s_load_layer (magi1_dit_t *self, vdgx_wsrc_t *src, int i, vdgx_wfmt_t fmt, char **err)
{
    magi1_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    s_layer_t *l = &self->layers [i];
    char p [160], n [200];
    snprintf (p, sizeof (p), "videodit_blocks.layers.%d.", i);
    int64_t H = c->hidden, D = c->head_dim, HD = c->heads * D, GD = c->groups * D;
#define S_NAME(suffix) (snprintf (n, sizeof (n), "%s%s", p, suffix), n)
    if (vdgx_wsrc_linear (src, b, S_NAME ("ada_modulate_layer.proj.0"), 2 * H, c->cond_dim,
                          VDGX_WFMT_F32, VDGX_DTYPE_F32, &l->ada, err)
    ||  s_norm (src, b, &l->ln_qkv, S_NAME ("self_attention.linear_qkv.layer_norm"), H, false, err)
    ||  s_block_linear (b, src, p, "self_attention.linear_qkv.q", HD, H, fmt, &l->q, NULL, err)
    ||  s_block_linear (b, src, p, "self_attention.linear_qkv.k", GD, H, fmt, &l->k, NULL, err)
    ||  s_block_linear (b, src, p, "self_attention.linear_qkv.v", GD, H, fmt, &l->v, NULL, err)
    ||  s_block_linear (b, src, p, "self_attention.linear_qkv.qx", HD, H, fmt, &l->qx, NULL, err)
    ||  s_norm (src, b, &l->q_norm, S_NAME ("self_attention.q_layernorm"), D, true, err)
    ||  s_norm (src, b, &l->k_norm, S_NAME ("self_attention.k_layernorm"), D, true, err)
    ||  s_norm (src, b, &l->qx_norm, S_NAME ("self_attention.q_layernorm_xattn"), D, true, err)
    ||  s_norm (src, b, &l->kx_norm, S_NAME ("self_attention.k_layernorm_xattn"), D, true, err)
    ||  s_norm (src, b, &l->attn_post, S_NAME ("self_attn_post_norm"), H, true, err)
    ||  s_norm (src, b, &l->mlp_ln, S_NAME ("mlp.layer_norm"), H, false, err)
    ||  s_norm (src, b, &l->mlp_post, S_NAME ("mlp_post_norm"), H, true, err))
        return -1;
    //  linear_kv_xattn rows per group: [k (D) | v (D)].
    int64_t kshape [2] = { 2 * GD, H };
    float *kv = vdgx_wsrc_fetch (src, S_NAME ("self_attention.linear_kv_xattn.weight"), 2, kshape, err);
    if (!kv)
        return -1;
    float *wk = malloc ((size_t) (GD * H) * sizeof (float));
    float *wv = malloc ((size_t) (GD * H) * sizeof (float));
    int rc = -1;
    if (wk && wv) {
        for (int64_t g = 0; g < c->groups; g++) {
            memcpy (wk + g * D * H, kv + (2 * g) * D * H, (size_t) (D * H) * sizeof (float));
            memcpy (wv + g * D * H, kv + (2 * g + 1) * D * H, (size_t) (D * H) * sizeof (float));
        }
        rc = vdgx_linear_from_f32 (b, &l->kx, fmt, wk, NULL, GD, H, VDGX_DTYPE_F32, err)
          || vdgx_linear_from_f32 (b, &l->vx, fmt, wv, NULL, GD, H, VDGX_DTYPE_F32, err)? -1: 0;
    }
    free (kv); free (wk); free (wv);
    if (rc)
        return -1;
    //  linear_proj [H, 2 HD] reads regroup(cat[core, cross]): column (hn, n, j) of the
    //  regrouped input is column (n, hn, j) of the concatenation.
    s_w_t wp;
    if (s_fetch_w (src, S_NAME ("self_attention.linear_proj"), H, 2 * HD, fmt == VDGX_WFMT_FP8_E4M3, &wp, err))
        return -1;
    int64_t *from = malloc ((size_t) (2 * HD) * sizeof (int64_t));
    int64_t hd = HD / 8;        //  TP8 layout: hn = 8 slices of q_proj / 8
    for (int64_t hn = 0; from && hn < 8; hn++)
        for (int64_t nn = 0; nn < 2; nn++)
            for (int64_t j = 0; j < hd; j++)
                from [nn * HD + hn * hd + j] = (hn * 2 + nn) * hd + j;
    if (!from)
        vdgx_set_error (err, "%s: out of memory", S_WHO);
    rc = from && s_w_permute_cols (&wp, H, 2 * HD, from, err) == 0
      && s_w_linear (b, &l->proj, &wp, 0, H, 2 * HD, fmt, err) == 0? 0: -1;
    free (from);
    s_w_free (&wp);
    if (rc)
        return -1;
    //  MLP: fc1 [ffn or 2 ffn, H] ([silu half | linear half] for SwiGLU), fc2 [H, ffn].
    l->mlp.kind = c->gated? VDGX_MLP_GATED: VDGX_MLP_PLAIN;
    l->mlp.act = c->gated? VDGX_ACT_SILU: VDGX_ACT_GELU;
    l->mlp.dim = H;
    l->mlp.hidden = c->ffn;
    if (s_block_linear (b, src, p, "mlp.linear_fc2", H, c->ffn, fmt, &l->mlp.down, NULL, err))
        return -1;
    return s_block_linear (b, src, p, "mlp.linear_fc1", c->ffn, H, fmt,
                           c->gated? &l->mlp.gate: &l->mlp.up, c->gated? &l->mlp.up: NULL, err);
#undef S_NAME
}

static int s_load_body (magi1_dit_t *self, vdgx_wsrc_t *src, vdgx_wfmt_t fmt, char **err);

//  An empty model on b with the weight format of opts; takes over wsrc (into *src_p).
static magi1_dit_t *
s_new (vdgx_backend_t *b, const magi1_dit_load_opts_t *opts, vdgx_wsrc_t *wsrc, vdgx_wsrc_t **src_p,
       vdgx_wfmt_t *fmt, char **err)
{
    *fmt = VDGX_WFMT_BF16;
    if (opts && opts->precision && vdgx_precision_parse (opts->precision, fmt)) {
        vdgx_set_error (err, "%s: unknown precision %s", S_WHO, opts->precision);
        vdgx_wsrc_destroy (&wsrc);
        return NULL;
    }
    magi1_dit_t *self = calloc (1, sizeof (magi1_dit_t));
    if (!wsrc || !self) {
        vdgx_wsrc_destroy (&wsrc);
        free (self);
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return NULL;
    }
    self->backend = b;
    self->act = vdgx_backend_act_dtype (b);
    *src_p = wsrc;
    return self;
}

magi1_dit_t *
magi1_dit_load (vdgx_backend_t *b, vdgx_ckpt_t *ckpt, const magi1_dit_load_opts_t *opts, char **err)
{
    assert (b && ckpt);
    vdgx_wfmt_t fmt;
    vdgx_wsrc_t *src = NULL;
    magi1_dit_t *self = s_new (b, opts, vdgx_wsrc_new (ckpt, NULL, S_WHO), &src, &fmt, err);
    if (!self)
        return NULL;
    magi1_dit_config_t *c = &self->cfg;
    //  The configuration from the shapes.
    c->hidden = s_dim (src, "x_embedder.weight", 0, err);
    c->in_channels = c->hidden > 0? s_dim (src, "x_embedder.weight", 1, err): -1;
    c->cond_dim = c->in_channels > 0? s_dim (src, "t_embedder.mlp.0.weight", 0, err): -1;
    c->caption_len = c->cond_dim > 0? s_dim (src, "y_embedder.null_caption_embedding", 0, err): -1;
    c->caption_dim = c->caption_len > 0? s_dim (src, "y_embedder.null_caption_embedding", 1, err): -1;
    c->bands = c->caption_dim > 0? s_dim (src, "rope.bands", 0, err): -1;
    int64_t qrows = c->bands > 0? s_dim (src, "videodit_blocks.layers.0.self_attention.linear_qkv.q.weight", 0, err): -1;
    int64_t krows = qrows > 0? s_dim (src, "videodit_blocks.layers.0.self_attention.linear_qkv.k.weight", 0, err): -1;
    c->ffn = krows > 0? s_dim (src, "videodit_blocks.layers.0.mlp.linear_fc2.weight", 1, err): -1;
    int64_t fc1 = c->ffn > 0? s_dim (src, "videodit_blocks.layers.0.mlp.linear_fc1.weight", 0, err): -1;
    if (fc1 <= 0)
        goto fail;
    c->head_dim = 8 * c->bands;
    c->heads = qrows / c->head_dim;
    c->groups = krows / c->head_dim;
    c->gated = fc1 == 2 * c->ffn;
    c->half_channel_vae = c->in_channels == 32;
    c->out_channels = 16;
    c->x_rescale = opts && opts->x_rescale > 0? opts->x_rescale: c->half_channel_vae? 0.1f: 1.0f;
    if (c->heads * c->head_dim != qrows || c->groups * c->head_dim != krows || c->groups < 1
    ||  c->heads % c->groups || (c->heads * c->head_dim) % 8 || (!c->gated && fc1 != c->ffn)) {
        vdgx_set_error (err, "%s: inconsistent attention / MLP shapes (q %lld, k %lld, bands %lld, fc1 %lld)",
                      S_WHO, (long long) qrows, (long long) krows, (long long) c->bands, (long long) fc1);
        goto fail;
    }
    while (1) {
        char n [160];
        snprintf (n, sizeof (n), "videodit_blocks.layers.%d.self_attention.linear_qkv.q.weight", c->num_layers);
        if (!vdgx_wsrc_find (src, n))
            break;
        c->num_layers++;
    }
    if (s_load_body (self, src, fmt, err))
        goto fail;
    vdgx_wsrc_destroy (&src);
    return self;
fail:
    vdgx_wsrc_destroy (&src);
    magi1_dit_destroy (&self);
    return NULL;
}

//  Everything but the configuration (self->cfg filled): the weights from src.
static int
s_load_body (magi1_dit_t *self, vdgx_wsrc_t *src, vdgx_wfmt_t fmt, char **err)
{
    magi1_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    self->layers = calloc ((size_t) c->num_layers, sizeof (s_layer_t));
    int64_t xshape [5] = { c->hidden, c->in_channels, 1, 2, 2 };
    if (!self->layers) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return -1;
    }
    float *wx = vdgx_wsrc_fetch (src, "x_embedder.weight", 5, xshape, err);
    if (!wx)
        return -1;
    int rc = vdgx_linear_from_f32 (b, &self->x_embed, VDGX_WFMT_F32, wx, NULL, c->hidden,
                                   c->in_channels * 4, VDGX_DTYPE_F32, err);
    free (wx);
    int64_t nshape [2] = { c->caption_len, c->caption_dim };
    int64_t bshape [1] = { c->bands };
    if (rc
    ||  vdgx_wsrc_linear (src, b, "t_embedder.mlp.0", c->cond_dim, S_FREQ_DIM, VDGX_WFMT_F32, VDGX_DTYPE_F32, &self->t0, err)
    ||  vdgx_wsrc_linear (src, b, "t_embedder.mlp.2", c->cond_dim, c->cond_dim, VDGX_WFMT_F32, VDGX_DTYPE_F32, &self->t2, err)
    ||  vdgx_wsrc_linear (src, b, "y_embedder.y_proj_xattn.0", c->hidden, c->caption_dim, VDGX_WFMT_F32, VDGX_DTYPE_F32, &self->y_xattn, err)
    ||  vdgx_wsrc_linear (src, b, "y_embedder.y_proj_adaln.0", c->cond_dim, c->caption_dim, VDGX_WFMT_F32, VDGX_DTYPE_F32, &self->y_adaln, err)
    ||  vdgx_wsrc_linear (src, b, "final_linear.linear", 4 * c->in_channels, c->hidden, VDGX_WFMT_F32, -1, &self->final_linear, err)
    ||  s_norm (src, b, &self->final_norm, "videodit_blocks.final_layernorm", c->hidden, true, err)
    ||  !(self->null_caption = vdgx_wsrc_fetch (src, "y_embedder.null_caption_embedding", 2, nshape, err))
    ||  !(self->bands = vdgx_wsrc_fetch (src, "rope.bands", 1, bshape, err)))
        return -1;
    for (int i = 0; i < c->num_layers; i++)
        if (s_load_layer (self, src, i, fmt, err))
            return -1;
    return 0;
}

void
magi1_dit_config_preset (magi1_dit_config_t *cfg, bool big, int layers)
{
    assert (cfg);
    *cfg = (magi1_dit_config_t) {
        .num_layers = layers > 0? layers: big? 48: 34,
        .hidden = big? 6144: 3072, .ffn = big? 16384: 12288, .heads = big? 48: 24, .groups = 8,
        .head_dim = 128, .cond_dim = big? 1536: 768, .caption_dim = 4096, .caption_len = 800,
        .in_channels = big? 32: 16, .out_channels = 16, .gated = big, .half_channel_vae = big,
        .x_rescale = big? 0.1f: 1.0f, .bands = 16,
    };
}

magi1_dit_t *
magi1_dit_new_random (vdgx_backend_t *b, const magi1_dit_config_t *cfg, uint64_t seed,
                      const magi1_dit_load_opts_t *opts, char **err)
{
    assert (b && cfg);
    const magi1_dit_config_t *c = cfg;
    if (c->num_layers < 1 || c->head_dim != 8 * c->bands || c->heads * c->head_dim % 8
    ||  c->groups < 1 || c->heads % c->groups || c->hidden < 1 || c->ffn < 1 || c->cond_dim < 1
    ||  c->caption_len < 1 || c->caption_dim < 1 || c->in_channels < c->out_channels) {
        vdgx_set_error (err, "%s: inconsistent config", S_WHO);
        return NULL;
    }
    vdgx_wfmt_t fmt;
    vdgx_wsrc_t *src = NULL;
    magi1_dit_t *self = s_new (b, opts, vdgx_wsrc_new_random (seed, S_WHO), &src, &fmt, err);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    int rc = s_load_body (self, src, fmt, err);
    vdgx_wsrc_destroy (&src);
    if (rc)
        magi1_dit_destroy (&self);
    return self;
}

//  The checkpoint file of a path in the official layout, or NULL.
static char *
s_resolve (const char *path)
{
    if (vdgx_is_file (path))
        return vdgx_strdupf ("%s", path);
    const char *dirs [] = { "", "/inference_weight", "/inference_weight.distill",
                            "/inference_weight.fp8", "/inference_weight.fp8.distill" };
    const char *files [] = { "model.safetensors.index.json", "model.safetensors" };
    for (size_t d = 0; d < sizeof (dirs) / sizeof (dirs [0]); d++)
        for (size_t f = 0; f < 2; f++) {
            char *p = vdgx_strdupf ("%s%s/%s", path, dirs [d], files [f]);
            if (p && vdgx_is_file (p))
                return p;
            free (p);
        }
    return NULL;
}

magi1_dit_t *
magi1_dit_open (vdgx_backend_t *b, const char *path, const magi1_dit_load_opts_t *opts, char **err)
{
    assert (b && path);
    char *file = s_resolve (path);
    if (!file) {
        vdgx_set_error (err, "%s: %s holds no model.safetensors[.index.json] (nor inference_weight*/)",
                        S_WHO, path);
        return NULL;
    }
    char *cerr = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &cerr);
    if (!ckpt) {
        vdgx_set_error (err, "%s: %s: %s", S_WHO, file, cerr? cerr: "cannot open");
        free (cerr);
        free (file);
        return NULL;
    }
    magi1_dit_t *self = magi1_dit_load (b, ckpt, opts, err);
    vdgx_ckpt_destroy (&ckpt);
    free (file);
    return self;
}

void
magi1_dit_destroy (magi1_dit_t **self_p)
{
    assert (self_p);
    magi1_dit_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    if (self->layers) {
        for (int i = 0; i < self->cfg.num_layers; i++) {
            s_layer_t *l = &self->layers [i];
            vdgx_linear_t *lin [] = { &l->ada, &l->q, &l->k, &l->v, &l->qx, &l->kx, &l->vx, &l->proj };
            for (size_t j = 0; j < sizeof (lin) / sizeof (lin [0]); j++)
                vdgx_linear_release (b, lin [j]);
            vdgx_norm_t *nrm [] = { &l->ln_qkv, &l->q_norm, &l->k_norm, &l->qx_norm, &l->kx_norm,
                                    &l->attn_post, &l->mlp_ln, &l->mlp_post };
            for (size_t j = 0; j < sizeof (nrm) / sizeof (nrm [0]); j++)
                vdgx_norm_release (b, nrm [j]);
            vdgx_mlp_release (b, &l->mlp);
        }
        free (self->layers);
    }
    vdgx_linear_release (b, &self->x_embed);
    vdgx_linear_release (b, &self->t0);
    vdgx_linear_release (b, &self->t2);
    vdgx_linear_release (b, &self->y_xattn);
    vdgx_linear_release (b, &self->y_adaln);
    vdgx_linear_release (b, &self->final_linear);
    vdgx_norm_release (b, &self->final_norm);
    vdgx_kvcache_destroy (&self->scratch);
    free (self->null_caption);
    free (self->bands);
    free (self);
    *self_p = NULL;
}

const magi1_dit_config_t *magi1_dit_config (magi1_dit_t *self) { return &self->cfg; }
const float *magi1_dit_null_caption (magi1_dit_t *self) { return self->null_caption; }

void
magi1_dit_set_tap (magi1_dit_t *self, magi1_dit_tap_fn *fn, void *ctx)
{
    self->tap = fn;
    self->tap_ctx = ctx;
}

//  ---------------------------------------------------------------------------------------
//  KV cache

magi1_dit_cache_t *
magi1_dit_cache_new (magi1_dit_t *dit, int64_t tokens, char **err)
{
    magi1_dit_cache_t *self = calloc (1, sizeof (magi1_dit_cache_t));
    if (self)
        self->kv = calloc ((size_t) dit->cfg.num_layers, sizeof (vdgx_kvcache_t *));
    if (!self || !self->kv) {
        free (self);
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return NULL;
    }
    self->layers = dit->cfg.num_layers;
    for (int i = 0; i < self->layers; i++)
        if (!(self->kv [i] = vdgx_kvcache_new (dit->backend, dit->act, 1, tokens, dit->cfg.groups,
                                               dit->cfg.head_dim, err))) {
            magi1_dit_cache_destroy (&self);
            return NULL;
        }
    return self;
}

int
magi1_dit_cache_evict (magi1_dit_cache_t *self, int64_t row, char **err)
{
    assert (self);
    if (row <= self->first)
        return 0;
    int64_t drop = row - self->first;
    for (int i = 0; i < self->layers; i++)
        if (drop > vdgx_kvcache_len (self->kv [i]) || vdgx_kvcache_drop_front (self->kv [i], drop)) {
            vdgx_set_error (err, "%s: cannot evict the rows before %lld: %lld rows from %lld cached",
                            S_WHO, (long long) row, (long long) vdgx_kvcache_len (self->kv [i]),
                            (long long) self->first);
            return -1;
        }
    self->first = row;
    return 0;
}

int64_t magi1_dit_cache_first_row (magi1_dit_cache_t *self) { return self->first; }
int64_t magi1_dit_cache_capacity (magi1_dit_cache_t *self) { return vdgx_kvcache_capacity (self->kv [0]); }

void
magi1_dit_cache_destroy (magi1_dit_cache_t **self_p)
{
    assert (self_p);
    magi1_dit_cache_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->layers; i++)
        vdgx_kvcache_destroy (&self->kv [i]);
    free (self->kv);
    free (self);
    *self_p = NULL;
}

size_t
magi1_dit_cache_bytes_per_token (magi1_dit_t *dit)
{
    const magi1_dit_config_t *c = &dit->cfg;
    return (size_t) (2 * c->num_layers * c->groups * c->head_dim) * vdgx_dtype_size (dit->act);
}

//  ---------------------------------------------------------------------------------------
//  Host-side pieces

//  The timestep sinusoid as the official code forms it in float32: [cos | sin] of
//  (t * 1000) * exp(-ln(1e4) * i / 128).
static void
s_sinusoid (float t, float *out)
{
    int half = S_FREQ_DIM / 2;
    float tt = t * 1000.0f;
    for (int i = 0; i < half; i++) {
        float freq = expf (-logf (10000.0f) * (float) i / (float) half);
        float arg = tt * freq;
        out [i] = (float) cos ((double) arg);
        out [half + i] = (float) sin ((double) arg);
    }
}

//  Rotary coordinates (t, h, w) of the call's tokens, rescaled as the official
//  build_fourier_pos_embed with ref = [T_total, H/rf, W/rf], rf = sqrt(H W / 256).
static void
s_rope_coords (const magi1_dit_call_t *call, double *coords)
{
    int64_t T = call->T, H = call->H / 2, W = call->W / 2;
    double rf = sqrt ((double) (H * W) / 256.0);
    double ref_h = (float) ((double) H / rf), ref_w = (float) ((double) W / rf);
    int64_t l = 0;
    for (int64_t f = 0; f < T; f++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++, l++) {
                double ch = (double) h - (double) (H - 1) / 2.0;
                double cw = (double) w - (double) (W - 1) / 2.0;
                if (H > 1)
                    ch = ch / (double) (H - 1) * (ref_h - 1.0);
                if (W > 1)
                    cw = cw / (double) (W - 1) * (ref_w - 1.0);
                coords [l * 3 + 0] = (double) (call->frame_offset + f);
                coords [l * 3 + 1] = ch;
                coords [l * 3 + 2] = cw;
            }
}

void
magi1_dit_rope_table (magi1_dit_t *self, const magi1_dit_call_t *call, float *table)
{
    int64_t L = call->T * (call->H / 2) * (call->W / 2), nb = self->cfg.bands;
    double *coords = malloc ((size_t) (L * 3) * sizeof (double));
    if (!coords)
        return;
    s_rope_coords (call, coords);
    for (int64_t l = 0; l < L; l++)
        for (int64_t j = 0; j < 3 * nb; j++) {
            double a = coords [l * 3 + j / nb] * self->bands [j % nb];
            table [l * 6 * nb + j] = (float) sin (a);
            table [l * 6 * nb + 3 * nb + j] = (float) cos (a);
        }
    free (coords);
}

//  ---------------------------------------------------------------------------------------
//  Forward

#define S_NBUF 24

typedef struct {
    vdgx_tensor_t t [S_NBUF];
    int n;
} s_bufs_t;

static vdgx_tensor_t *
s_buf (magi1_dit_t *self, s_bufs_t *bufs, vdgx_dtype_t dtype, int64_t d0, int64_t d1, int64_t d2)
{
    assert (bufs->n < S_NBUF);
    vdgx_tensor_t *t = &bufs->t [bufs->n];
    if (vdgx_nn_alloc (self->backend, t, dtype, d0, d1, d2, 0))
        return NULL;
    bufs->n++;
    return t;
}

//  A contiguous view of the first elements of a larger scratch buffer.
static vdgx_tensor_t
s_prefix (const vdgx_tensor_t *t, const int64_t shape [4])
{
    assert (shape [0] * shape [1] * shape [2] * shape [3] <= vdgx_tensor_numel (t));
    vdgx_tensor_t v;
    vdgx_tensor_init (&v, t->dtype, 4, shape, t->data, t->device);
    return v;
}

//  out [1,L,heads*D] = rotary on the first 6 * bands channels of every head (pairs i and
//  i + 3 bands, flash-attn's non-interleaved layout), the rest passed through.
static int
s_rope (magi1_dit_t *self, const vdgx_rope_t *rope, vdgx_tensor_t *out, const vdgx_tensor_t *in,
        int64_t heads, vdgx_tensor_t *s1, vdgx_tensor_t *s2, vdgx_tensor_t *s3)
{
    vdgx_backend_t *b = self->backend;
    int64_t L = in->shape [1], D = self->cfg.head_dim, R = 6 * self->cfg.bands;
    vdgx_tensor_t x4 = vdgx_nn_view4 (in, 1, L, heads, D);
    vdgx_tensor_t o4 = vdgx_nn_view4 (out, 1, L, heads, D);
    int64_t rs [4] = { 1, L, heads, R }, ps [4] = { 1, L, heads, D - R };
    vdgx_tensor_t a = s_prefix (s1, rs), r = s_prefix (s2, rs), p = s_prefix (s3, ps);
    return vdgx_op_slice (b, &a, &x4, 3, 0, R) || vdgx_rope_apply (b, rope, &r, &a)
        || vdgx_op_slice (b, &p, &x4, 3, R, D - R) || vdgx_op_concat (b, &o4, &r, &p, 3)? -1: 0;
}

//  Rows [row, row + n) of a [1, L, ...] tensor as [1, n, heads, D].
static vdgx_tensor_t
s_rows4 (const vdgx_tensor_t *t, int64_t row, int64_t n, int64_t heads, int64_t D)
{
    int64_t L = vdgx_tensor_numel (t) / (heads * D);
    vdgx_tensor_t t3 = vdgx_nn_view3 (t, L, heads, D);
    vdgx_tensor_t r = vdgx_nn_rows (&t3, row, n);
    return vdgx_nn_view4 (&r, 1, n, heads, D);
}

//  y rows of chunk r (clip rows each) *= gate row r, for r < chunks.
static int
s_gate (magi1_dit_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *gates, int chunks, int64_t clip)
{
    int64_t C = self->cfg.hidden;
    vdgx_tensor_t y2 = vdgx_nn_view2 (y, chunks * clip, C);
    for (int r = 0; r < chunks; r++) {
        vdgx_tensor_t yr = vdgx_nn_rows (&y2, r * clip, clip);
        vdgx_tensor_t g = vdgx_nn_rows (gates, r, 1);
        if (vdgx_op_mul (self->backend, &yr, &yr, &g))
            return -1;
    }
    return 0;
}

int
magi1_dit_forward (magi1_dit_t *self, magi1_dit_cache_t *cache, const float *x,
                   const magi1_dit_call_t *call, float *out, char **err)
{
    assert (self && x && call && out);
    const magi1_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    int64_t T = call->T, Hl = call->H, Wl = call->W, R = call->chunks;
    if (R < 1 || T < 1 || T % R || Hl < 2 || Wl < 2 || Hl % 2 || Wl % 2 || !call->t || !call->y
    ||  !call->mask || call->cache_rows < 0 || call->write_rows < 0) {
        vdgx_set_error (err, "%s: invalid call (T %lld, H %lld, W %lld, chunks %lld)", S_WHO,
                        (long long) T, (long long) Hl, (long long) Wl, (long long) R);
        return -1;
    }
    int64_t L = T * (Hl / 2) * (Wl / 2), clip = L / R, hid = c->hidden, D = c->head_dim;
    int64_t HD = c->heads * D, GD = c->groups * D, Cin = c->in_channels, nb = c->bands;
    if (!cache && (call->cache_rows || call->write_rows)) {
        vdgx_set_error (err, "%s: cache rows without a cache", S_WHO);
        return -1;
    }
    if (call->write_rows > L) {
        vdgx_set_error (err, "%s: %lld rows to write, %lld tokens", S_WHO,
                        (long long) call->write_rows, (long long) L);
        return -1;
    }
    //  Keys in absolute rows [first, cache_rows + L); the cache's row 0 is row `first`.
    int64_t keys = call->cache_rows + L, first = cache? cache->first: 0;
    for (int64_t r = 0; call->kv_range && r < R; r++) {
        int64_t a = call->kv_range [2 * r], e = call->kv_range [2 * r + 1];
        if (a < 0 || e <= a || e > keys) {
            vdgx_set_error (err, "%s: kv range %lld of chunk %lld outside the %lld keys", S_WHO,
                            (long long) a, (long long) r, (long long) keys);
            return -1;
        }
        if (a < first) {
            vdgx_set_error (err, "%s: kv range %lld of chunk %lld reaches rows evicted from the "
                            "cache (it starts at row %lld)", S_WHO, (long long) a, (long long) r,
                            (long long) first);
            return -1;
        }
    }
    if (cache) {
        if (call->cache_rows < first) {
            vdgx_set_error (err, "%s: %lld cached rows asked, the cache starts at row %lld", S_WHO,
                            (long long) call->cache_rows, (long long) first);
            return -1;
        }
        if (keys - first > vdgx_kvcache_capacity (cache->kv [0])) {
            vdgx_set_error (err, "%s: %lld keys exceed the cache of %lld tokens", S_WHO,
                            (long long) (keys - first), (long long) vdgx_kvcache_capacity (cache->kv [0]));
            return -1;
        }
        if (call->cache_rows - first > vdgx_kvcache_len (cache->kv [0])) {
            vdgx_set_error (err, "%s: %lld cached rows asked, %lld written", S_WHO,
                            (long long) call->cache_rows, (long long) (first + vdgx_kvcache_len (cache->kv [0])));
            return -1;
        }
    }
    else if (!self->scratch || vdgx_kvcache_capacity (self->scratch) < L) {
        vdgx_kvcache_destroy (&self->scratch);
        if (!(self->scratch = vdgx_kvcache_new (b, self->act, 1, L, c->groups, D, err)))
            return -1;
    }
    //  Caption rows per chunk.
    int64_t *cu = calloc ((size_t) R + 1, sizeof (int64_t));
    if (!cu) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        return -1;
    }
    for (int64_t r = 0; r < R; r++) {
        int64_t n = 0;
        for (int64_t i = 0; i < c->caption_len; i++)
            n += call->mask [r * c->caption_len + i] > 0.5f;
        if (n == 0) {
            free (cu);
            vdgx_set_error (err, "%s: chunk %lld has no caption rows", S_WHO, (long long) r);
            return -1;
        }
        cu [r + 1] = cu [r] + n;
    }
    int64_t Ly = cu [R];
    int rc = -1;
    s_bufs_t bufs = { .n = 0 };
    vdgx_tensor_t small [9], gates [2];
    memset (small, 0, sizeof (small));
    memset (gates, 0, sizeof (gates));
    vdgx_rope_t rope;
    memset (&rope, 0, sizeof (rope));
    vdgx_tensor_t fo;
    memset (&fo, 0, sizeof (fo));
    bool have_rope = false;
    float *host = NULL;
    double *coords = NULL, *freq = NULL;
    int *axis = NULL;
    size_t host_n = (size_t) (L * 4 * Cin);
    if (host_n < (size_t) (Cin * T * Hl * Wl))
        host_n = (size_t) (Cin * T * Hl * Wl);
    if (host_n < (size_t) (Ly * c->caption_dim))
        host_n = (size_t) (Ly * c->caption_dim);
    if (host_n < (size_t) ((R + 1) * S_FREQ_DIM))
        host_n = (size_t) ((R + 1) * S_FREQ_DIM);
    if (host_n < (size_t) (R * 2 * hid))
        host_n = (size_t) (R * 2 * hid);
    float *host2 = malloc (host_n * sizeof (float));
    host = malloc (host_n * sizeof (float));
    coords = malloc ((size_t) (L * 3) * sizeof (double));
    freq = malloc ((size_t) (3 * nb) * sizeof (double));
    axis = malloc ((size_t) (3 * nb) * sizeof (int));
    if (!host || !host2 || !coords || !freq || !axis) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        goto done;
    }
    vdgx_dtype_t A = self->act;
    vdgx_tensor_t *X = s_buf (self, &bufs, A, 1, L, hid), *mixed = s_buf (self, &bufs, A, 1, L, hid);
    vdgx_tensor_t *q = s_buf (self, &bufs, A, 1, L, HD), *qr = s_buf (self, &bufs, A, 1, L, HD);
    vdgx_tensor_t *qx = s_buf (self, &bufs, A, 1, L, HD), *tmp = s_buf (self, &bufs, A, 1, L, HD);
    vdgx_tensor_t *s1 = s_buf (self, &bufs, A, 1, L, HD), *s2 = s_buf (self, &bufs, A, 1, L, HD);
    vdgx_tensor_t *s3 = s_buf (self, &bufs, A, 1, L, HD);
    vdgx_tensor_t *k = s_buf (self, &bufs, A, 1, L, GD), *kr = s_buf (self, &bufs, A, 1, L, GD);
    vdgx_tensor_t *v = s_buf (self, &bufs, A, 1, L, GD), *k2 = s_buf (self, &bufs, A, 1, L, GD);
    vdgx_tensor_t *core = s_buf (self, &bufs, A, 1, L, HD), *cross = s_buf (self, &bufs, A, 1, L, HD);
    vdgx_tensor_t *cat = s_buf (self, &bufs, A, 1, L, 2 * HD);
    vdgx_tensor_t *a1 = s_buf (self, &bufs, A, 1, L, hid), *a2 = s_buf (self, &bufs, A, 1, L, hid);
    vdgx_tensor_t *h1 = s_buf (self, &bufs, A, 1, L, c->ffn), *h2 = s_buf (self, &bufs, A, 1, L, c->ffn);
    vdgx_tensor_t *yx = s_buf (self, &bufs, A, 1, Ly, hid), *kx = s_buf (self, &bufs, A, 1, Ly, GD);
    vdgx_tensor_t *vx = s_buf (self, &bufs, A, 1, Ly, GD), *ktmp = s_buf (self, &bufs, A, 1, Ly, GD);
    if (!ktmp)
        goto fail_backend;

    //  Patch embedding.
    float scale_in = c->x_rescale;
    int64_t plane = T * Hl * Wl;
    for (int64_t ch = 0; ch < Cin; ch++) {
        const float *src = x + (ch % c->out_channels) * plane;
        if (!c->half_channel_vae && ch >= c->out_channels)
            src = x + ch * plane;
        for (int64_t i = 0; i < plane; i++)
            host2 [ch * plane + i] = src [i] * scale_in;
    }
    const int patch [3] = { 1, 2, 2 };
    vdgx_nn_patchify3d (host2, Cin, T, Hl, Wl, patch, host);
    int64_t tshape [3] = { 1, L, 4 * Cin };
    if (vdgx_nn_upload (b, &small [0], A, 3, tshape, host)
    ||  vdgx_linear_forward (b, &self->x_embed, X, &small [0]))
        goto fail_backend;
    s_tap (self, "x_embedder", X);

    //  Condition: t_embedder(t) (+ t_embedder(distill_dt)) + y_proj_adaln(null row).
    int64_t nt = R + (call->distill_dt > 0? 1: 0);
    for (int64_t r = 0; r < R; r++)
        s_sinusoid (call->t [r], host + r * S_FREQ_DIM);
    if (call->distill_dt > 0)
        s_sinusoid ((float) call->distill_dt, host + R * S_FREQ_DIM);
    int64_t sshape [2] = { nt, S_FREQ_DIM };
    const float *nullrow = self->null_caption + (c->caption_len - (call->caption_dropout? 1: 2)) * c->caption_dim;
    int64_t yshape [2] = { 1, c->caption_dim };
    if (vdgx_nn_upload (b, &small [1], VDGX_DTYPE_F32, 2, sshape, host)
    ||  vdgx_nn_alloc (b, &small [2], VDGX_DTYPE_F32, nt, c->cond_dim, 0, 0)
    ||  vdgx_nn_alloc (b, &small [3], VDGX_DTYPE_F32, nt, c->cond_dim, 0, 0)
    ||  vdgx_linear_forward (b, &self->t0, &small [2], &small [1])
    ||  vdgx_act_forward (b, VDGX_ACT_SILU, &small [2], &small [2])
    ||  vdgx_linear_forward (b, &self->t2, &small [3], &small [2])
    ||  vdgx_nn_upload (b, &small [4], VDGX_DTYPE_F32, 2, yshape, nullrow)
    ||  vdgx_nn_alloc (b, &small [5], VDGX_DTYPE_F32, 1, c->cond_dim, 0, 0)
    ||  vdgx_linear_forward (b, &self->y_adaln, &small [5], &small [4])
    ||  vdgx_nn_alloc (b, &small [6], VDGX_DTYPE_F32, R, c->cond_dim, 0, 0))
        goto fail_backend;
    vdgx_tensor_t temb = vdgx_nn_rows (&small [3], 0, R);
    s_tap (self, "t_embedder", &temb);
    s_tap (self, "y_embedder.y_adaln", &small [5]);
    if (vdgx_op_add_scaled (b, &small [6], &temb, &small [5], 1.0f))
        goto fail_backend;
    if (call->distill_dt > 0) {
        vdgx_tensor_t dt = vdgx_nn_rows (&small [3], R, 1);
        s_tap (self, "t_embedder#1", &dt);
        if (vdgx_op_add_scaled (b, &small [6], &small [6], &dt, 1.0f))
            goto fail_backend;
    }
    s_tap (self, "condition", &small [6]);
    if (vdgx_act_forward (b, VDGX_ACT_SILU, &small [6], &small [6]))
        goto fail_backend;
    vdgx_tensor_t *cond_act = &small [6];

    //  Captions: the attended rows of each chunk, y_proj_xattn = SiLU(Linear).
    for (int64_t r = 0, o = 0; r < R; r++)
        for (int64_t i = 0; i < c->caption_len; i++)
            if (call->mask [r * c->caption_len + i] > 0.5f)
                memcpy (host + (o++) * c->caption_dim,
                        call->y + (r * c->caption_len + i) * c->caption_dim,
                        (size_t) c->caption_dim * sizeof (float));
    int64_t cshape [3] = { 1, Ly, c->caption_dim };
    if (vdgx_nn_upload (b, &small [7], A, 3, cshape, host)
    ||  vdgx_linear_forward (b, &self->y_xattn, yx, &small [7])
    ||  vdgx_act_forward (b, VDGX_ACT_SILU, yx, yx))
        goto fail_backend;
    s_tap (self, "y_xattn_flat", yx);

    //  Rotary table over (t, h, w) with the learnable bands.
    s_rope_coords (call, coords);
    for (int64_t j = 0; j < 3 * nb; j++) {
        axis [j] = (int) (j / nb);
        freq [j] = self->bands [j % nb];
    }
    if (vdgx_rope_build (b, &rope, VDGX_ROPE_HALF, L, 3, coords, 3 * nb, axis, freq, err))
        goto done;
    have_rope = true;

    if (vdgx_nn_alloc (b, &gates [0], VDGX_DTYPE_F32, R, hid, 0, 0) || vdgx_nn_alloc (b, &gates [1], VDGX_DTYPE_F32, R, hid, 0, 0)
    ||  vdgx_nn_alloc (b, &small [8], VDGX_DTYPE_F32, R, 2 * hid, 0, 0))
        goto fail_backend;
    float scale = (float) (1.0 / sqrt ((double) D));
    for (int li = 0; li < c->num_layers; li++) {
        s_layer_t *l = &self->layers [li];
        vdgx_kvcache_t *kv = cache? cache->kv [li]: self->scratch;
        //  Gates: tanh(ada(SiLU(condition))) = [gate_msa | gate_mlp] per chunk.
        if (vdgx_linear_forward (b, &l->ada, &small [8], cond_act) || vdgx_tensor_to_f32 (b, &small [8], host))
            goto fail_backend;
        s_tap_layer (self, li, "ada_modulate_layer", &small [8]);
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < hid; j++) {
                host2 [r * hid + j] = tanhf (host [r * 2 * hid + j]);
                host2 [R * hid + r * hid + j] = tanhf (host [r * 2 * hid + hid + j]);
            }
        if (vdgx_tensor_upload (b, &gates [0], host2) || vdgx_tensor_upload (b, &gates [1], host2 + R * hid))
            goto fail_backend;
        //  Projections.
        if (vdgx_norm_forward (b, &l->ln_qkv, mixed, X))
            goto fail_backend;
        s_tap_layer (self, li, "linear_qkv.layer_norm", mixed);
        if (vdgx_attn_project (b, &l->q, &l->q_norm, NULL, c->heads, q, tmp, mixed))
            goto fail_backend;
        s_tap_layer (self, li, "q_layernorm", q);
        if (vdgx_attn_project (b, &l->k, &l->k_norm, NULL, c->groups, k, k2, mixed))
            goto fail_backend;
        s_tap_layer (self, li, "k_layernorm", k);
        if (vdgx_linear_forward (b, &l->v, v, mixed))
            goto fail_backend;
        s_tap_layer (self, li, "linear_qkv.v", v);
        if (vdgx_attn_project (b, &l->qx, &l->qx_norm, NULL, c->heads, qx, tmp, mixed))
            goto fail_backend;
        s_tap_layer (self, li, "q_layernorm_xattn", qx);
        if (vdgx_attn_project (b, &l->kx, &l->kx_norm, NULL, c->groups, kx, ktmp, yx)
        ||  vdgx_linear_forward (b, &l->vx, vx, yx))
            goto fail_backend;
        s_tap_layer (self, li, "k_layernorm_xattn", kx);
        if (s_rope (self, &rope, qr, q, c->heads, s1, s2, s3)
        ||  s_rope (self, &rope, kr, k, c->groups, s1, s2, s3))
            goto fail_backend;
        s_tap_layer (self, li, "k_rope", kr);
        //  Self-attention: keys = cat(cache[:cache_rows], own k) in the cache's rows.
        vdgx_tensor_t k4 = vdgx_nn_view4 (kr, 1, L, c->groups, D), v4 = vdgx_nn_view4 (v, 1, L, c->groups, D);
        if (vdgx_kvcache_truncate (kv, cache? call->cache_rows - first: 0) || vdgx_kvcache_append (kv, &k4, &v4))
            goto fail_backend;
        for (int64_t r = 0; r < R; r++) {
            vdgx_tensor_t qr4 = s_rows4 (qr, r * clip, clip, c->heads, D);
            vdgx_tensor_t or4 = s_rows4 (core, r * clip, clip, c->heads, D);
            int64_t from = call->cache_rows + r * clip, n = clip;
            if (call->kv_range) {
                from = call->kv_range [2 * r];
                n = call->kv_range [2 * r + 1] - from;
            }
            if (vdgx_kvcache_attend_span (kv, &or4, &qr4, from - first, n, scale))
                goto fail_backend;
        }
        if (vdgx_kvcache_truncate (kv, cache? call->cache_rows + call->write_rows - first: 0))
            goto fail_backend;
        s_tap_layer (self, li, "self_attention.core_attn_out", core);
        //  Cross-attention: each chunk over its own caption rows.
        for (int64_t r = 0; r < R; r++) {
            vdgx_tensor_t q4 = s_rows4 (qx, r * clip, clip, c->heads, D);
            vdgx_tensor_t o4 = s_rows4 (cross, r * clip, clip, c->heads, D);
            vdgx_tensor_t kk = s_rows4 (kx, cu [r], cu [r + 1] - cu [r], c->groups, D);
            vdgx_tensor_t vv = s_rows4 (vx, cu [r], cu [r + 1] - cu [r], c->groups, D);
            if (vdgx_op_attention_ex (b, &o4, &q4, &kk, &vv, NULL, scale))
                goto fail_backend;
        }
        s_tap_layer (self, li, "self_attention.cross_attn_out", cross);
        if (vdgx_op_concat (b, cat, core, cross, 2) || vdgx_linear_forward (b, &l->proj, a1, cat))
            goto fail_backend;
        s_tap_layer (self, li, "linear_proj", a1);
        if (s_gate (self, a1, &gates [0], (int) R, clip) || vdgx_norm_forward (b, &l->attn_post, a2, a1))
            goto fail_backend;
        s_tap_layer (self, li, "self_attn_post_norm", a2);
        if (vdgx_op_add_scaled (b, X, X, a2, 1.0f) || vdgx_norm_forward (b, &l->mlp_ln, mixed, X))
            goto fail_backend;
        s_tap_layer (self, li, "mlp.layer_norm", mixed);
        if (vdgx_mlp_forward (b, &l->mlp, a1, mixed, h1, h2))
            goto fail_backend;
        s_tap_layer (self, li, "mlp", a1);
        if (s_gate (self, a1, &gates [1], (int) R, clip) || vdgx_norm_forward (b, &l->mlp_post, a2, a1))
            goto fail_backend;
        s_tap_layer (self, li, "mlp_post_norm", a2);
        if (vdgx_op_add_scaled (b, X, X, a2, 1.0f))
            goto fail_backend;
        s_tap_layer (self, li, "", X);
    }
    //  Head: final_layernorm (1p), final_linear, unpatchify, channels [:16], / x_rescale.
    if (vdgx_norm_forward (b, &self->final_norm, a1, X))
        goto fail_backend;
    s_tap (self, "final_layernorm", a1);
    if (vdgx_nn_alloc (b, &fo, VDGX_DTYPE_F32, 1, L, 4 * Cin, 0) || vdgx_linear_forward (b, &self->final_linear, &fo, a1)
    ||  vdgx_tensor_to_f32 (b, &fo, host)) {
        vdgx_nn_free (b, &fo);
        goto fail_backend;
    }
    s_tap (self, "final_linear", &fo);
    vdgx_nn_free (b, &fo);
    vdgx_nn_unpatchify3d (host, Cin, T, Hl, Wl, patch, host2);
    for (int64_t i = 0; i < c->out_channels * plane; i++)
        out [i] = host2 [i] / c->x_rescale;
    rc = 0;
    goto done;
fail_backend:
    vdgx_nn_fail (b, err, S_WHO, "forward");
done:
    for (int i = 0; i < 9; i++)
        vdgx_nn_free (b, &small [i]);
    vdgx_nn_free (b, &gates [0]);
    vdgx_nn_free (b, &gates [1]);
    for (int i = 0; i < bufs.n; i++)
        vdgx_nn_free (b, &bufs.t [i]);
    if (have_rope)
        vdgx_rope_release (b, &rope);
    free (host); free (host2); free (coords); free (freq); free (axis); free (cu);
    return rc;
}
