/*  wan21_dit.c - WanModel (T2V) forward on a compute backend, and its weight loaders.

    Shapes: L tokens = F/pt * H/ph * W/pw, ordered f-major then h then w; D = dim; one batch.
    The residual stream x [L, D] and every activation live on the backend in its act dtype.
    Host-side (small, exact in f64 where the official code uses f64): the sinusoidal time
    embedding, the RoPE angle tables, patch gathering and unpatchify.
*/
#include "wan21_dit.h"
#include "wan21_util.h"
#include "vdgx_rng.h"
#include "vdgx_ckpt.h"
#include "vdgx_quant.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { S_LAYOUT_OFFICIAL = 0, S_LAYOUT_DIFFUSERS, S_LAYOUT_COMFY } s_layout_t;

typedef struct {
    vdgx_weight_t w;
    vdgx_tensor_t b;
    bool loaded;
} s_linear_t;

typedef struct {
    s_linear_t sq, sk, sv, so, cq, ck, cv, co, ffn0, ffn2;
    vdgx_tensor_t snq, snk, cnq, cnk;   //  q/k RMSNorm weights [D]
    vdgx_tensor_t n3w, n3b;             //  norm3 (affine LayerNorm)
    vdgx_tensor_t mod;                  //  modulation [6, D]
} s_block_t;

struct _wan21_dit_context_t {
    vdgx_tensor_t *k, *v;               //  per block [text_len, D]
    int layers;
};

struct _wan21_dit_t {
    vdgx_backend_t *backend;
    wan21_dit_config_t cfg;
    char precision [16];
    vdgx_wfmt_t block_fmt, other_fmt;
    vdgx_dtype_t act;                   //  backend act dtype
    s_linear_t patch, text0, text2, time0, time2, proj, head;
    vdgx_tensor_t head_mod;             //  [2, D]
    s_block_t *blocks;
    size_t tensors_used;                //  checkpoint tensors the loader read
    wan21_dit_tap_fn *tap;
    void *tap_ctx;
    //  Activation buffers, reused while the token count stays the same.
    int64_t buf_tokens;
    int64_t rope_grid [3];
    vdgx_tensor_t x, hn, hm, q, q2, k, k2, v, f1, f2, rope_cos, rope_sin;
    bool have_bufs, have_rope;
};

static int
s_op_err (wan21_dit_t *self, char **err, const char *what)
{
    wan21_set_error (err, "wan21 dit: %s failed: %s", what, vdgx_backend_error (self->backend));
    return -1;
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
    if (strcmp (name, "14b") == 0) {
        cfg->dim = 5120; cfg->ffn_dim = 13824; cfg->num_heads = 40; cfg->num_layers = 40;
    }
    else
        return -1;
    return 0;
}

//  Block linears get the requested format; FP4/FP8 need k divisible by their block size,
//  other shapes fall back to BF16 (vdgx_quant.h).
static int
s_parse_precision (const char *precision, vdgx_wfmt_t *fmt)
{
    if (!precision || strcmp (precision, "bf16") == 0)
        *fmt = VDGX_WFMT_BF16;
    else
    if (strcmp (precision, "fp32") == 0 || strcmp (precision, "f32") == 0)
        *fmt = VDGX_WFMT_F32;
    else
    if (strcmp (precision, "fp16") == 0 || strcmp (precision, "f16") == 0)
        *fmt = VDGX_WFMT_F16;
    else
    if (strcmp (precision, "fp8") == 0)
        *fmt = VDGX_WFMT_FP8_E4M3;
    else
    if (strcmp (precision, "fp4") == 0 || strcmp (precision, "nvfp4") == 0)
        *fmt = VDGX_WFMT_NVFP4;
    else
    if (strcmp (precision, "nf4") == 0)
        *fmt = VDGX_WFMT_NF4;
    else
    if (strcmp (precision, "mxfp4") == 0)
        *fmt = VDGX_WFMT_MXFP4;
    else
        return -1;
    return 0;
}

static vdgx_wfmt_t
s_fmt_for (vdgx_wfmt_t fmt, int64_t k)
{
    int64_t block = fmt == VDGX_WFMT_NVFP4? 16: fmt == VDGX_WFMT_MXFP4? 32: fmt == VDGX_WFMT_NF4? 64: 1;
    return k % block == 0? fmt: VDGX_WFMT_BF16;
}

uint64_t
wan21_dit_memory_estimate (const wan21_dit_config_t *cfg, const char *precision,
                           int64_t tokens, size_t act_size)
{
    assert (cfg);
    vdgx_wfmt_t fmt;
    if (s_parse_precision (precision, &fmt))
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
    uint64_t block = 8 * vdgx_wfmt_bytes (s_fmt_for (fmt, d), d, d)
                   + vdgx_wfmt_bytes (s_fmt_for (fmt, d), f, d)
                   + vdgx_wfmt_bytes (s_fmt_for (fmt, f), d, f)
                   + (uint64_t) (8 + 4 + 2 + 6 + 1) * d * act_size + (uint64_t) f * act_size;
    bytes += block * (uint64_t) cfg->num_layers;
    if (tokens > 0) {
        //  8 [L, D] buffers, 2 [L, F] buffers, RoPE tables, and two prompts' cross K/V.
        bytes += (uint64_t) tokens * (8 * d + 2 * f) * act_size;
        bytes += (uint64_t) tokens * (d / cfg->num_heads) * 4;
        bytes += (uint64_t) 2 * 2 * cfg->num_layers * cfg->text_len * d * act_size;
    }
    return bytes;
}

//  ---------------------------------------------------------------------------------------
//  Weight sources: a checkpoint (any of the three layouts) or a random generator.

typedef struct {
    vdgx_ckpt_t *ckpt;
    s_layout_t layout;
    bool random;            //  random weights (benchmarks) instead of a checkpoint
    uint64_t random_state;
    size_t used;            //  checkpoint tensors read (scale_weight companions not counted)
} s_source_t;

typedef struct { const char *official, *diffusers; } s_rename_t;

static const s_rename_t s_block_renames [] = {
    { "self_attn.q.", "attn1.to_q." }, { "self_attn.k.", "attn1.to_k." },
    { "self_attn.v.", "attn1.to_v." }, { "self_attn.o.", "attn1.to_out.0." },
    { "self_attn.norm_q.", "attn1.norm_q." }, { "self_attn.norm_k.", "attn1.norm_k." },
    { "cross_attn.q.", "attn2.to_q." }, { "cross_attn.k.", "attn2.to_k." },
    { "cross_attn.v.", "attn2.to_v." }, { "cross_attn.o.", "attn2.to_out.0." },
    { "cross_attn.norm_q.", "attn2.norm_q." }, { "cross_attn.norm_k.", "attn2.norm_k." },
    { "norm3.", "norm2." },             //  diffusers numbers the norms in call order
    { "ffn.0.", "ffn.net.0.proj." }, { "ffn.2.", "ffn.net.2." },
    { "modulation", "scale_shift_table" },
};

static const s_rename_t s_top_renames [] = {
    { "patch_embedding.", "patch_embedding." },
    { "text_embedding.0.", "condition_embedder.text_embedder.linear_1." },
    { "text_embedding.2.", "condition_embedder.text_embedder.linear_2." },
    { "time_embedding.0.", "condition_embedder.time_embedder.linear_1." },
    { "time_embedding.2.", "condition_embedder.time_embedder.linear_2." },
    { "time_projection.1.", "condition_embedder.time_proj." },
    { "head.modulation", "scale_shift_table" },
    { "head.head.", "proj_out." },
};

#define S_COMFY_PREFIX "model.diffusion_model."

//  The name an official key has in the source's layout.
static void
s_source_name (const s_source_t *src, const char *official, char *out, size_t size)
{
    if (src->layout == S_LAYOUT_COMFY) {
        snprintf (out, size, "%s%s", S_COMFY_PREFIX, official);
        return;
    }
    if (src->layout == S_LAYOUT_OFFICIAL) {
        snprintf (out, size, "%s", official);
        return;
    }
    const char *rest = official;
    const s_rename_t *table = s_top_renames;
    size_t count = sizeof (s_top_renames) / sizeof (s_top_renames [0]);
    char prefix [32] = "";
    int block;
    int used = 0;
    if (sscanf (official, "blocks.%d.%n", &block, &used) == 1 && used > 0) {
        snprintf (prefix, sizeof (prefix), "blocks.%d.", block);
        rest = official + used;
        table = s_block_renames;
        count = sizeof (s_block_renames) / sizeof (s_block_renames [0]);
    }
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen (table [i].official);
        if (strncmp (rest, table [i].official, len) == 0) {
            snprintf (out, size, "%s%s%s", prefix, table [i].diffusers, rest + len);
            return;
        }
    }
    snprintf (out, size, "%s%s", prefix, rest);
}

static const vdgx_ckpt_tensor_t *
s_find (const s_source_t *src, const char *official)
{
    char name [256];
    s_source_name (src, official, name, sizeof (name));
    return vdgx_ckpt_find (src->ckpt, name);
}

static bool
s_shape_is (const vdgx_ckpt_tensor_t *t, int ndim, const int64_t *shape)
{
    //  Leading 1s are tolerated ([1, 6, D] modulation tables; conv kernels [D, C, 1, 2, 2]
    //  are checked by numel through their flattened 2D shape).
    int64_t numel = 1, want = 1;
    for (int i = 0; i < t->ndim; i++)
        numel *= t->shape [i];
    for (int i = 0; i < ndim; i++)
        want *= shape [i];
    if (numel != want || t->ndim < 1)
        return false;
    return t->shape [0] == shape [0] || (t->ndim > ndim && t->shape [0] == 1);
}

//  Per-tensor scale of a scaled-FP8 weight: "<layer>.scale_weight" (ComfyUI) or
//  "<layer>.weight_scale", in the source's naming; 1 when absent.
static int
s_fp8_scale (const s_source_t *src, const char *official, float *scale, char **err)
{
    *scale = 1.0f;
    char base [256], cand [300], name [300];
    snprintf (base, sizeof (base), "%s", official);
    char *dot = strrchr (base, '.');
    if (!dot || strcmp (dot, ".weight") != 0)
        return 0;
    *dot = 0;
    const vdgx_ckpt_tensor_t *t = NULL;
    const char *suffixes [2] = { "scale_weight", "weight_scale" };
    for (int i = 0; i < 2 && !t; i++) {
        snprintf (cand, sizeof (cand), "%s.%s", base, suffixes [i]);
        s_source_name (src, cand, name, sizeof (name));
        t = vdgx_ckpt_find (src->ckpt, name);
    }
    if (!t)
        return 0;
    if (t->ndim > 1 || (t->ndim == 1 && t->shape [0] != 1)) {
        wan21_set_error (err, "wan21 dit: %s is not a scalar", name);
        return -1;
    }
    char *e = NULL;
    if (vdgx_ckpt_read_f32 (t, scale, &e)) {
        wan21_set_error (err, "wan21 dit: %s: %s", name, e? e: "unreadable");
        free (e);
        return -1;
    }
    return 0;
}

//  Reads official tensor `name` of the expected shape as f32 (malloc'd). Random sources fill
//  uniform values of std 0.02 (norm weights 1, biases 0, so activations stay finite).
static float *
s_fetch (s_source_t *src, const char *official, int ndim, const int64_t *shape, char **err)
{
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape [i];
    float *buf = malloc ((size_t) numel * sizeof (float));
    if (!buf) {
        wan21_set_error (err, "wan21 dit: out of memory reading %s", official);
        return NULL;
    }
    if (src->random) {
        size_t len = strlen (official);
        bool is_norm = strstr (official, "norm") != NULL && len > 7
                     && strcmp (official + len - 7, ".weight") == 0;
        bool is_bias = len > 5 && strcmp (official + len - 5, ".bias") == 0;
        if (is_norm || is_bias)
            for (int64_t i = 0; i < numel; i++)
                buf [i] = is_norm? 1.0f: 0.0f;
        else {
            //  Uniform with std 0.02 from a xorshift stream: a 1.3B model fills in seconds
            //  (Box-Muller normals would take half a minute), and timing ignores the values.
            uint64_t state = src->random_state;
            const float a = 0.02f * 1.7320508f;
            for (int64_t i = 0; i < numel; i++) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf [i] = a * ((float) (state >> 40) * (2.0f / 16777216.0f) - 1.0f);
            }
            src->random_state = state;
        }
        return buf;
    }
    const vdgx_ckpt_tensor_t *t = s_find (src, official);
    char name [256];
    s_source_name (src, official, name, sizeof (name));
    if (!t) {
        wan21_set_error (err, "wan21 dit: tensor %s is missing", name);
        free (buf);
        return NULL;
    }
    if (!s_shape_is (t, ndim, shape)) {
        char want [96] = "", got [96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf (want + strlen (want), sizeof (want) - strlen (want), "%s%lld", i? ",": "", (long long) shape [i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf (got + strlen (got), sizeof (got) - strlen (got), "%s%lld", i? ",": "", (long long) t->shape [i]);
        wan21_set_error (err, "wan21 dit: tensor %s has shape [%s], expected [%s]", name, got, want);
        free (buf);
        return NULL;
    }
    char *e = NULL;
    if (vdgx_ckpt_read_f32 (t, buf, &e)) {
        wan21_set_error (err, "wan21 dit: tensor %s: %s", name, e? e: "unreadable dtype");
        free (e);
        free (buf);
        return NULL;
    }
    float scale;
    if (s_fp8_scale (src, official, &scale, err)) {
        free (buf);
        return NULL;
    }
    src->used++;
    if (scale != 1.0f)
        for (int64_t i = 0; i < numel; i++)
            buf [i] *= scale;
    for (int64_t i = 0; i < numel; i++)
        if (!isfinite (buf [i])) {
            wan21_set_error (err, "wan21 dit: tensor %s holds a non-finite value", name);
            free (buf);
            return NULL;
        }
    return buf;
}

//  A vector (bias, norm weight, modulation table) onto the backend in the act dtype.
static int
s_load_vec (wan21_dit_t *self, s_source_t *src, const char *name, int ndim,
            const int64_t *shape, vdgx_tensor_t *t, char **err)
{
    float *buf = s_fetch (src, name, ndim, shape, err);
    if (!buf)
        return -1;
    //  Modulation tables join e/e0 in f32, as the official code adds them under f32 autocast.
    vdgx_dtype_t dtype = strstr (name, "modulation")? VDGX_DTYPE_F32: self->act;
    int rc = vdgx_tensor_alloc (self->backend, t, dtype, ndim, shape);
    if (rc == 0)
        rc = vdgx_tensor_from_f32 (self->backend, t, buf);
    free (buf);
    if (rc)
        return s_op_err (self, err, name);
    return 0;
}

//  A linear layer: weight [n, k] in fmt (quantized here) and bias [n].
static int
s_load_linear (wan21_dit_t *self, s_source_t *src, const char *layer, int64_t n,
               int64_t k, vdgx_wfmt_t fmt, s_linear_t *lin, char **err)
{
    char name [256];
    snprintf (name, sizeof (name), "%s.weight", layer);
    fmt = s_fmt_for (fmt, k);
    vdgx_weight_t host;
    memset (&host, 0, sizeof (host));
    int rc = -1;
    const vdgx_ckpt_tensor_t *raw = src->ckpt? s_find (src, name): NULL;
    if (raw && raw->dtype == VDGX_DTYPE_F8_E4M3 && fmt == VDGX_WFMT_FP8_E4M3
    &&  raw->ndim == 2 && raw->shape [0] == n && raw->shape [1] == k) {
        //  A pre-quantized checkpoint keeps its own FP8 values (no double rounding).
        float scale;
        if (s_fp8_scale (src, name, &scale, err))
            return -1;
        char *e = NULL;
        if (vdgx_weight_from_fp8 (&host, raw->data, &scale, 1, n, k, &e)) {
            wan21_set_error (err, "wan21 dit: %s: %s", name, e? e: "bad fp8 weight");
            free (e);
            return -1;
        }
        src->used++;
    }
    else {
        int64_t shape [2] = { n, k };
        float *buf = s_fetch (src, name, 2, shape, err);
        if (!buf)
            return -1;
        char *e = NULL;
        rc = vdgx_weight_quantize (&host, fmt, buf, n, k, true, &e);
        free (buf);
        if (rc) {
            wan21_set_error (err, "wan21 dit: %s: %s", name, e? e: "quantization failed");
            free (e);
            return -1;
        }
    }
    rc = vdgx_weight_to_backend (self->backend, &lin->w, &host);
    vdgx_weight_host_free (&host);
    if (rc)
        return s_op_err (self, err, name);
    lin->loaded = true;
    snprintf (name, sizeof (name), "%s.bias", layer);
    int64_t bshape [1] = { n };
    if (s_load_vec (self, src, name, 1, bshape, &lin->b, err))
        return -1;
    return 0;
}

static void
s_free_linear (wan21_dit_t *self, s_linear_t *lin)
{
    if (lin->loaded)
        vdgx_weight_release (self->backend, &lin->w);
    if (lin->b.data)
        vdgx_tensor_release (self->backend, &lin->b);
    memset (lin, 0, sizeof (*lin));
}

static void
s_free_tensor (wan21_dit_t *self, vdgx_tensor_t *t)
{
    if (t->data)
        vdgx_tensor_release (self->backend, t);
    memset (t, 0, sizeof (*t));
}

static void
s_free_buffers (wan21_dit_t *self)
{
    vdgx_tensor_t *bufs [] = { &self->x, &self->hn, &self->hm, &self->q, &self->q2, &self->k,
                               &self->k2, &self->v, &self->f1, &self->f2 };
    for (size_t i = 0; i < sizeof (bufs) / sizeof (bufs [0]); i++)
        s_free_tensor (self, bufs [i]);
    s_free_tensor (self, &self->rope_cos);
    s_free_tensor (self, &self->rope_sin);
    self->have_bufs = self->have_rope = false;
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
    s_linear_t *tops [] = { &self->patch, &self->text0, &self->text2, &self->time0,
                            &self->time2, &self->proj, &self->head };
    for (size_t i = 0; i < sizeof (tops) / sizeof (tops [0]); i++)
        s_free_linear (self, tops [i]);
    s_free_tensor (self, &self->head_mod);
    if (self->blocks) {
        for (int i = 0; i < self->cfg.num_layers; i++) {
            s_block_t *b = &self->blocks [i];
            s_linear_t *lins [] = { &b->sq, &b->sk, &b->sv, &b->so, &b->cq, &b->ck, &b->cv,
                                    &b->co, &b->ffn0, &b->ffn2 };
            for (size_t j = 0; j < sizeof (lins) / sizeof (lins [0]); j++)
                s_free_linear (self, lins [j]);
            vdgx_tensor_t *vecs [] = { &b->snq, &b->snk, &b->cnq, &b->cnk, &b->n3w, &b->n3b, &b->mod };
            for (size_t j = 0; j < sizeof (vecs) / sizeof (vecs [0]); j++)
                s_free_tensor (self, vecs [j]);
        }
        free (self->blocks);
    }
    free (self);
    *self_p = NULL;
}

//  Loads every tensor of the configuration from src.
static int
s_load_all (wan21_dit_t *self, s_source_t *src, char **err)
{
    const wan21_dit_config_t *c = &self->cfg;
    int64_t d = c->dim;
    int64_t pin = (int64_t) c->in_dim * c->patch [0] * c->patch [1] * c->patch [2];
    int64_t pout = (int64_t) c->out_dim * c->patch [0] * c->patch [1] * c->patch [2];
    vdgx_wfmt_t o = self->other_fmt;
    if (s_load_linear (self, src, "patch_embedding", d, pin, o, &self->patch, err)
    ||  s_load_linear (self, src, "text_embedding.0", d, c->text_dim, o, &self->text0, err)
    ||  s_load_linear (self, src, "text_embedding.2", d, d, o, &self->text2, err)
    ||  s_load_linear (self, src, "time_embedding.0", d, c->freq_dim, o, &self->time0, err)
    ||  s_load_linear (self, src, "time_embedding.2", d, d, o, &self->time2, err)
    ||  s_load_linear (self, src, "time_projection.1", 6 * d, d, o, &self->proj, err)
    ||  s_load_linear (self, src, "head.head", pout, d, VDGX_WFMT_F32, &self->head, err))
        return -1;
    int64_t hm_shape [2] = { 2, d };
    if (s_load_vec (self, src, "head.modulation", 2, hm_shape, &self->head_mod, err))
        return -1;
    self->blocks = calloc ((size_t) c->num_layers, sizeof (s_block_t));
    if (!self->blocks) {
        wan21_set_error (err, "wan21 dit: out of memory");
        return -1;
    }
    vdgx_wfmt_t bf = self->block_fmt;
    for (int i = 0; i < c->num_layers; i++) {
        s_block_t *b = &self->blocks [i];
        char name [128];
        struct { const char *n; s_linear_t *l; int64_t rows, cols; } lins [] = {
            { "self_attn.q", &b->sq, d, d }, { "self_attn.k", &b->sk, d, d },
            { "self_attn.v", &b->sv, d, d }, { "self_attn.o", &b->so, d, d },
            { "cross_attn.q", &b->cq, d, d }, { "cross_attn.k", &b->ck, d, d },
            { "cross_attn.v", &b->cv, d, d }, { "cross_attn.o", &b->co, d, d },
            { "ffn.0", &b->ffn0, c->ffn_dim, d }, { "ffn.2", &b->ffn2, d, c->ffn_dim },
        };
        for (size_t j = 0; j < sizeof (lins) / sizeof (lins [0]); j++) {
            snprintf (name, sizeof (name), "blocks.%d.%s", i, lins [j].n);
            if (s_load_linear (self, src, name, lins [j].rows, lins [j].cols, bf, lins [j].l, err))
                return -1;
        }
        int64_t vshape [1] = { d };
        struct { const char *n; vdgx_tensor_t *t; } vecs [] = {
            { "self_attn.norm_q.weight", &b->snq }, { "self_attn.norm_k.weight", &b->snk },
            { "cross_attn.norm_q.weight", &b->cnq }, { "cross_attn.norm_k.weight", &b->cnk },
            { "norm3.weight", &b->n3w }, { "norm3.bias", &b->n3b },
        };
        for (size_t j = 0; j < sizeof (vecs) / sizeof (vecs [0]); j++) {
            snprintf (name, sizeof (name), "blocks.%d.%s", i, vecs [j].n);
            if (s_load_vec (self, src, name, 1, vshape, vecs [j].t, err))
                return -1;
        }
        int64_t mshape [2] = { 6, d };
        snprintf (name, sizeof (name), "blocks.%d.modulation", i);
        if (s_load_vec (self, src, name, 2, mshape, &b->mod, err))
            return -1;
    }
    return 0;
}

static wan21_dit_t *
s_new (vdgx_backend_t *backend, const char *precision, char **err)
{
    vdgx_wfmt_t fmt;
    if (s_parse_precision (precision, &fmt)) {
        wan21_set_error (err, "wan21 dit: unknown precision '%s' (fp32, bf16, fp8, fp4, nvfp4, nf4, mxfp4)",
               precision);
        return NULL;
    }
    wan21_dit_t *self = calloc (1, sizeof (wan21_dit_t));
    if (!self) {
        wan21_set_error (err, "wan21 dit: out of memory");
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
        wan21_set_error (err, "wan21 dit: dim %d does not split into %d heads of an even size >= 6",
               c->dim, c->num_heads);
        return false;
    }
    if (c->num_layers <= 0 || c->ffn_dim <= 0 || c->in_dim <= 0 || c->out_dim <= 0
    ||  c->text_dim <= 0 || c->text_len <= 0 || c->freq_dim <= 0 || c->freq_dim % 2
    ||  c->patch [0] <= 0 || c->patch [1] <= 0 || c->patch [2] <= 0) {
        wan21_set_error (err, "wan21 dit: invalid configuration");
        return false;
    }
    //  The head reuses the FFN buffers ([L, ffn] act dtype) as f32 [L, dim] scratch.
    if (c->ffn_dim < 2 * c->dim) {
        wan21_set_error (err, "wan21 dit: ffn_dim %d < 2 * dim %d is not supported", c->ffn_dim, c->dim);
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
    //  xorshift64 must not start at 0.
    s_source_t src = { .random = true, .random_state = seed * 0x9E3779B97F4A7C15ull | 1 };
    int rc = s_load_all (self, &src, err);
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
    if (!wan21_is_file (path))
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
        wan21_set_error (err, "wan21 dit: no weights path");
        return NULL;
    }
    wan21_dit_load_opts_t o = { 0 };
    if (opts)
        o = *opts;
    //  Resolve a folder to its weights file.
    char file [4096], dir [4096];
    if (wan21_is_dir (path)) {
        const char *candidates [] = {
            "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "transformer/diffusion_pytorch_model.safetensors",
        };
        file [0] = 0;
        for (size_t i = 0; i < sizeof (candidates) / sizeof (candidates [0]); i++) {
            snprintf (file, sizeof (file), "%s/%s", path, candidates [i]);
            if (wan21_is_file (file))
                break;
            file [0] = 0;
        }
        if (!file [0]) {
            wan21_set_error (err, "wan21 dit: no diffusion_pytorch_model.safetensors[.index.json] in %s "
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
    s_source_t src = { .ckpt = vdgx_ckpt_open (file, &e) };
    if (!src.ckpt) {
        wan21_set_error (err, "wan21 dit: %s: %s", file, e? e: "cannot open");
        free (e);
        return NULL;
    }
    //  Layout: by the names of the patch embedding and the time projection.
    if (vdgx_ckpt_find (src.ckpt, S_COMFY_PREFIX "patch_embedding.weight"))
        src.layout = S_LAYOUT_COMFY;
    else
    if (vdgx_ckpt_find (src.ckpt, "condition_embedder.time_proj.weight"))
        src.layout = S_LAYOUT_DIFFUSERS;
    else
    if (vdgx_ckpt_find (src.ckpt, "time_projection.1.weight"))
        src.layout = S_LAYOUT_OFFICIAL;
    else {
        wan21_set_error (err, "wan21 dit: %s is not a Wan 2.1 DiT checkpoint (no patch embedding / "
                    "time projection)", file);
        vdgx_ckpt_destroy (&src.ckpt);
        return NULL;
    }
    //  Image-to-video checkpoints carry an image branch this engine does not run.
    for (size_t i = 0; i < vdgx_ckpt_count (src.ckpt); i++) {
        const char *name = vdgx_ckpt_at (src.ckpt, i)->name;
        if (strstr (name, "img_emb") || strstr (name, "k_img") || strstr (name, "image_embedder")
        ||  strstr (name, "add_k_proj")) {
            wan21_set_error (err, "wan21 dit: %s is an image-to-video checkpoint (%s); only T2V is supported",
                   file, name);
            vdgx_ckpt_destroy (&src.ckpt);
            return NULL;
        }
    }
    //  Configuration from the shapes.
    wan21_dit_config_t c;
    memset (&c, 0, sizeof (c));
    c.eps = 1e-6;
    const vdgx_ckpt_tensor_t *pe = s_find (&src, "patch_embedding.weight");
    const vdgx_ckpt_tensor_t *te = s_find (&src, "text_embedding.0.weight");
    const vdgx_ckpt_tensor_t *tm = s_find (&src, "time_embedding.0.weight");
    const vdgx_ckpt_tensor_t *hd = s_find (&src, "head.head.weight");
    const vdgx_ckpt_tensor_t *ff = s_find (&src, "blocks.0.ffn.0.weight");
    if (!pe || pe->ndim != 5 || !te || te->ndim != 2 || !tm || tm->ndim != 2 || !hd
    ||  hd->ndim != 2 || !ff || ff->ndim != 2) {
        wan21_set_error (err, "wan21 dit: %s lacks the embeddings, the head or block 0 with the expected ranks",
               file);
        vdgx_ckpt_destroy (&src.ckpt);
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
        if (!s_find (&src, name))
            break;
        c.num_layers++;
    }
    c.num_heads = o.num_heads;
    c.text_len = o.text_len;
    s_read_config_json (dir, &c.num_heads, &c.text_len, c.dim);
    if (c.num_heads == 0)
        c.num_heads = c.dim / 128;
    if (c.text_len == 0)
        c.text_len = 512;
    if (!s_config_ok (&c, err)) {
        vdgx_ckpt_destroy (&src.ckpt);
        return NULL;
    }
    wan21_dit_t *self = s_new (backend, o.precision, err);
    if (self) {
        self->cfg = c;
        if (s_load_all (self, &src, err))
            wan21_dit_destroy (&self);
        else
            self->tensors_used = src.used;
    }
    vdgx_ckpt_destroy (&src.ckpt);
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
    for (int pos = 0; pos < 1024; pos++) {
        int col = 0;
        for (int part = 0; part < 3; part++)
            for (int i = 0; i < dims [part] / 2; i++, col++) {
                double inv = 1.0 / pow (10000.0, (double) (2 * i) / (double) dims [part]);
                angles [(size_t) pos * half + col] = (double) pos * inv;
            }
    }
}

//  cos/sin [L, hd/2] for the grid: pair j belongs to frames, heights or widths by the split
//  [c - 2(c/3), c/3, c/3] of c = hd/2 pairs, and takes the angle of that token's position.
static int
s_rope_tables (wan21_dit_t *self, int64_t gf, int64_t gh, int64_t gw, char **err)
{
    if (self->have_rope && self->rope_grid [0] == gf && self->rope_grid [1] == gh
    &&  self->rope_grid [2] == gw)
        return 0;
    s_free_tensor (self, &self->rope_cos);
    s_free_tensor (self, &self->rope_sin);
    self->have_rope = false;
    int hd = self->cfg.dim / self->cfg.num_heads, c = hd / 2;
    int c1 = c / 3, c0 = c - 2 * c1;
    int64_t L = gf * gh * gw;
    double *angles = malloc ((size_t) 1024 * c * sizeof (double));
    float *cs = malloc ((size_t) L * c * sizeof (float));
    float *sn = malloc ((size_t) L * c * sizeof (float));
    if (!angles || !cs || !sn) {
        free (angles); free (cs); free (sn);
        wan21_set_error (err, "wan21 dit: out of memory (rope)");
        return -1;
    }
    wan21_dit_rope_angles (hd, angles);
    for (int64_t f = 0; f < gf; f++)
        for (int64_t h = 0; h < gh; h++)
            for (int64_t w = 0; w < gw; w++) {
                int64_t tok = (f * gh + h) * gw + w;
                for (int j = 0; j < c; j++) {
                    int64_t pos = j < c0? f: j < c0 + c1? h: w;
                    double a = angles [(size_t) pos * c + j];
                    cs [tok * c + j] = (float) cos (a);
                    sn [tok * c + j] = (float) sin (a);
                }
            }
    free (angles);
    int64_t shape [2] = { L, c };
    int rc = vdgx_tensor_alloc (self->backend, &self->rope_cos, VDGX_DTYPE_F32, 2, shape);
    if (rc == 0)
        rc = vdgx_tensor_alloc (self->backend, &self->rope_sin, VDGX_DTYPE_F32, 2, shape);
    if (rc == 0)
        rc = vdgx_tensor_from_f32 (self->backend, &self->rope_cos, cs);
    if (rc == 0)
        rc = vdgx_tensor_from_f32 (self->backend, &self->rope_sin, sn);
    free (cs);
    free (sn);
    if (rc)
        return s_op_err (self, err, "rope tables");
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
    vdgx_tensor_t rc_cos = self->rope_cos, rc_sin = self->rope_sin;
    bool have_rope = self->have_rope;
    int64_t grid [3] = { self->rope_grid [0], self->rope_grid [1], self->rope_grid [2] };
    //  Keep the RoPE tables: s_free_buffers would drop them.
    memset (&self->rope_cos, 0, sizeof (vdgx_tensor_t));
    memset (&self->rope_sin, 0, sizeof (vdgx_tensor_t));
    s_free_buffers (self);
    self->rope_cos = rc_cos;
    self->rope_sin = rc_sin;
    self->have_rope = have_rope;
    memcpy (self->rope_grid, grid, sizeof (grid));
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
    self->buf_tokens = L;
    self->have_bufs = true;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Forward

//  A view of rows [row, row + rows) of a contiguous 2D tensor.
static vdgx_tensor_t
s_rows (const vdgx_tensor_t *t, int64_t row, int64_t rows)
{
    vdgx_tensor_t v;
    int64_t shape [2] = { rows, t->shape [1] };
    size_t offset = (size_t) row * (size_t) t->shape [1] * vdgx_dtype_size (t->dtype);
    vdgx_tensor_init (&v, t->dtype, 2, shape, (char *) t->data + offset, t->device);
    return v;
}

static vdgx_tensor_t
s_view (const vdgx_tensor_t *t, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    vdgx_tensor_t v;
    int64_t shape [4] = { d0, d1, d2, d3 };
    int rc = vdgx_tensor_reshape (&v, t, ndim, shape);
    assert (rc == 0);
    (void) rc;
    return v;
}

static int
s_linear (wan21_dit_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, const s_linear_t *l,
          char **err, const char *what)
{
    if (vdgx_op_linear (self->backend, y, x, &l->w, &l->b))
        return s_op_err (self, err, what);
    return 0;
}

wan21_dit_context_t *
wan21_dit_context_new (wan21_dit_t *self, const float *context, int64_t len, char **err)
{
    assert (self);
    const wan21_dit_config_t *c = &self->cfg;
    if (!context || len < 0 || len > c->text_len) {
        wan21_set_error (err, "wan21 dit: context of %lld rows (1..%d allowed)", (long long) len, c->text_len);
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
        wan21_set_error (err, "wan21 dit: out of memory (context)");
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
        vdgx_tensor_t e3 = s_view (&emb, 3, 1, tl, d, 0);
        s_tap (self, "text_embedding", &e3);
    }
    for (int i = 0; rc == 0 && i < c->num_layers; i++) {
        s_block_t *blk = &self->blocks [i];
        if (vdgx_tensor_alloc (b, &ctx->k [i], self->act, 2, s_d)
        ||  vdgx_tensor_alloc (b, &ctx->v [i], self->act, 2, s_d))
            rc = s_op_err (self, err, "context keys");
        else
        if (s_linear (self, &kraw, &emb, &blk->ck, err, "cross_attn.k")
        ||  s_linear (self, &ctx->v [i], &emb, &blk->cv, err, "cross_attn.v"))
            rc = -1;
        else
        if (vdgx_op_rmsnorm (b, &ctx->k [i], &kraw, &blk->cnk, (float) c->eps))
            rc = s_op_err (self, err, "cross_attn.norm_k");
    }
    vdgx_tensor_t *tmp [] = { &in, &h1, &h2, &emb, &kraw };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        s_free_tensor (self, tmp [i]);
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
    }
    free (ctx->k);
    free (ctx->v);
    free (ctx);
    *ctx_p = NULL;
}

//  e = time_embedding(sin emb(t)) [1, D] and e0 = time_projection(e) [6, D].
static int
s_time (wan21_dit_t *self, int64_t t, vdgx_tensor_t *e, vdgx_tensor_t *e0, char **err)
{
    const wan21_dit_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    int half = c->freq_dim / 2;
    float *sinus = malloc ((size_t) c->freq_dim * sizeof (float));
    if (!sinus) {
        wan21_set_error (err, "wan21 dit: out of memory");
        return -1;
    }
    //  float64, [cos, sin], frequencies 10000^(-i/half), as sinusoidal_embedding_1d.
    for (int i = 0; i < half; i++) {
        double arg = (double) t * pow (10000.0, -(double) i / (double) half);
        sinus [i] = (float) cos (arg);
        sinus [half + i] = (float) sin (arg);
    }
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
    float eps = (float) c->eps;
    char name [64];
#define TAP(suffix, t) do { if (self->tap) { snprintf (name, sizeof (name), "blocks.%d%s", index, suffix); s_tap (self, name, t); } } while (0)

    //  (shift, scale, gate) = modulation + e0: rows (0, 1, 2) attention, (3, 4, 5) FFN.
    vdgx_tensor_t e0v = s_view (e0, 2, 6, d, 0, 0);
    if (vdgx_op_add_scaled (b, mod, &blk->mod, &e0v, 1.0f))
        return s_op_err (self, err, "modulation");
    vdgx_tensor_t m [6];
    for (int i = 0; i < 6; i++)
        m [i] = s_rows (mod, i, 1);
    vdgx_tensor_t x3 = s_view (&self->x, 3, 1, L, d, 0);
    vdgx_tensor_t hn3 = s_view (&self->hn, 3, 1, L, d, 0);
    vdgx_tensor_t hm3 = s_view (&self->hm, 3, 1, L, d, 0);

    //  Self-attention.
    if (vdgx_op_layernorm (b, &self->hn, &self->x, NULL, NULL, eps))
        return s_op_err (self, err, "norm1");
    TAP (".norm1", &hn3);
    if (vdgx_op_modulate (b, &hm3, &hn3, &m [0], &m [1]))
        return s_op_err (self, err, "modulate (attention)");
    if (s_linear (self, &self->q2, &self->hm, &blk->sq, err, "self_attn.q")
    ||  s_linear (self, &self->k2, &self->hm, &blk->sk, err, "self_attn.k")
    ||  s_linear (self, &self->v, &self->hm, &blk->sv, err, "self_attn.v"))
        return -1;
    //  q/k RMSNorm over the full width, before the split into heads.
    if (vdgx_op_rmsnorm (b, &self->q, &self->q2, &blk->snq, eps)
    ||  vdgx_op_rmsnorm (b, &self->k, &self->k2, &blk->snk, eps))
        return s_op_err (self, err, "self_attn q/k norm");
    vdgx_tensor_t q3 = s_view (&self->q, 3, 1, L, d, 0), k3 = s_view (&self->k, 3, 1, L, d, 0);
    vdgx_tensor_t v3 = s_view (&self->v, 3, 1, L, d, 0);
    TAP (".self_attn.norm_q", &q3);
    TAP (".self_attn.norm_k", &k3);
    TAP (".self_attn.v", &v3);
    vdgx_tensor_t q4 = s_view (&self->q, 4, 1, L, H, hd), k4 = s_view (&self->k, 4, 1, L, H, hd);
    vdgx_tensor_t q24 = s_view (&self->q2, 4, 1, L, H, hd), k24 = s_view (&self->k2, 4, 1, L, H, hd);
    vdgx_tensor_t v4 = s_view (&self->v, 4, 1, L, H, hd);
    if (vdgx_op_rope (b, &q24, &q4, &self->rope_cos, &self->rope_sin, VDGX_ROPE_INTERLEAVED)
    ||  vdgx_op_rope (b, &k24, &k4, &self->rope_cos, &self->rope_sin, VDGX_ROPE_INTERLEAVED))
        return s_op_err (self, err, "rope");
    vdgx_tensor_t o4 = s_view (&self->hn, 4, 1, L, H, hd);
    float scale = (float) (1.0 / sqrt ((double) hd));
    if (vdgx_op_attention (b, &o4, &q24, &k24, &v4, NULL, NULL, scale))
        return s_op_err (self, err, "self-attention");
    if (s_linear (self, &self->hm, &self->hn, &blk->so, err, "self_attn.o"))
        return -1;
    TAP (".self_attn", &hm3);
    if (vdgx_op_gated_residual (b, &x3, &hm3, &m [2]))
        return s_op_err (self, err, "gated residual (attention)");

    //  Cross-attention to all text_len context rows (no mask).
    if (vdgx_op_layernorm (b, &self->hn, &self->x, &blk->n3w, &blk->n3b, eps))
        return s_op_err (self, err, "norm3");
    TAP (".norm3", &hn3);
    if (s_linear (self, &self->q2, &self->hn, &blk->cq, err, "cross_attn.q"))
        return -1;
    if (vdgx_op_rmsnorm (b, &self->q, &self->q2, &blk->cnq, eps))
        return s_op_err (self, err, "cross_attn.norm_q");
    vdgx_tensor_t ck4 = s_view (&ctx->k [index], 4, 1, tl, H, hd);
    vdgx_tensor_t cv4 = s_view (&ctx->v [index], 4, 1, tl, H, hd);
    vdgx_tensor_t o24 = s_view (&self->hn, 4, 1, L, H, hd);
    if (vdgx_op_attention (b, &o24, &q4, &ck4, &cv4, NULL, NULL, scale))
        return s_op_err (self, err, "cross-attention");
    if (s_linear (self, &self->hm, &self->hn, &blk->co, err, "cross_attn.o"))
        return -1;
    TAP (".cross_attn", &hm3);
    if (vdgx_op_gated_residual (b, &x3, &hm3, NULL))
        return s_op_err (self, err, "residual (cross-attention)");

    //  FFN.
    if (vdgx_op_layernorm (b, &self->hn, &self->x, NULL, NULL, eps))
        return s_op_err (self, err, "norm2");
    if (vdgx_op_modulate (b, &hm3, &hn3, &m [3], &m [4]))
        return s_op_err (self, err, "modulate (ffn)");
    if (s_linear (self, &self->f1, &self->hm, &blk->ffn0, err, "ffn.0"))
        return -1;
    if (vdgx_op_gelu_tanh (b, &self->f2, &self->f1))
        return s_op_err (self, err, "ffn gelu");
    if (s_linear (self, &self->hn, &self->f2, &blk->ffn2, err, "ffn.2"))
        return -1;
    TAP (".ffn", &hn3);
    if (vdgx_op_gated_residual (b, &x3, &hn3, &m [5]))
        return s_op_err (self, err, "gated residual (ffn)");
    TAP ("", &x3);
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
        wan21_set_error (err, "wan21 dit: latent %lldx%lldx%lld is not a multiple of the patch %lldx%lldx%lld",
               (long long) frames, (long long) height, (long long) width,
               (long long) pt, (long long) ph, (long long) pw);
        return -1;
    }
    int64_t gf = frames / pt, gh = height / ph, gw = width / pw;
    int64_t L = gf * gh * gw;
    if (gf > 1024 || gh > 1024 || gw > 1024) {
        wan21_set_error (err, "wan21 dit: grid %lldx%lldx%lld exceeds the 1024 RoPE positions",
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
        wan21_set_error (err, "wan21 dit: out of memory (patches)");
        return -1;
    }
    for (int64_t f = 0; f < gf; f++)
      for (int64_t h = 0; h < gh; h++)
        for (int64_t w = 0; w < gw; w++) {
            float *dst = patches + ((f * gh + h) * gw + w) * pin;
            for (int64_t ci = 0; ci < cin; ci++)
              for (int64_t p = 0; p < pt; p++)
                for (int64_t q = 0; q < ph; q++)
                  for (int64_t r = 0; r < pw; r++)
                    *dst++ = latent [((ci * frames + f * pt + p) * height + h * ph + q) * width + w * pw + r];
        }
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
        //  (the official head runs under f32 autocast). The FFN buffers are free now and
        //  hold an f32 [L, D] each: [L, ffn] in act dtype is at least as large.
        vdgx_tensor_t n32, m32;
        int64_t s_ld [2] = { L, d };
        vdgx_tensor_init (&n32, VDGX_DTYPE_F32, 2, s_ld, self->f1.data, self->f1.device);
        vdgx_tensor_init (&m32, VDGX_DTYPE_F32, 2, s_ld, self->f2.data, self->f2.device);
        assert (vdgx_tensor_nbytes (&n32) <= vdgx_tensor_nbytes (&self->f1));
        vdgx_tensor_t n3 = s_view (&n32, 3, 1, L, d, 0), m3 = s_view (&m32, 3, 1, L, d, 0);
        vdgx_tensor_t shift = s_rows (&hmod, 0, 1), scale = s_rows (&hmod, 1, 1);
        if (vdgx_op_add_scaled (b, &hmod, &self->head_mod, &e, 1.0f))
            rc = s_op_err (self, err, "head modulation");
        else
        if (vdgx_op_layernorm (b, &n32, &self->x, NULL, NULL, (float) c->eps))
            rc = s_op_err (self, err, "head norm");
        else
        if (vdgx_op_modulate (b, &m3, &n3, &shift, &scale))
            rc = s_op_err (self, err, "head modulate");
        else
            rc = s_linear (self, &hout, &m32, &self->head, err, "head.head");
    }
    float *u = NULL;
    if (rc == 0) {
        vdgx_tensor_t h3 = s_view (&hout, 3, 1, L, pout, 0);
        s_tap (self, "head", &h3);
        u = malloc ((size_t) L * pout * sizeof (float));
        if (!u) {
            wan21_set_error (err, "wan21 dit: out of memory (head output)");
            rc = -1;
        }
        else
        if (vdgx_tensor_to_f32 (b, &hout, u))
            rc = s_op_err (self, err, "head download");
    }
    if (rc == 0) {
        //  Unpatchify fhwpqrc -> cfphqwr.
        for (int64_t f = 0; f < gf; f++)
          for (int64_t h = 0; h < gh; h++)
            for (int64_t w = 0; w < gw; w++) {
                const float *src = u + ((f * gh + h) * gw + w) * pout;
                for (int64_t p = 0; p < pt; p++)
                  for (int64_t q = 0; q < ph; q++)
                    for (int64_t r = 0; r < pw; r++)
                      for (int64_t co = 0; co < cout; co++)
                        out [((co * frames + f * pt + p) * height + h * ph + q) * width + w * pw + r]
                            = src [((p * ph + q) * pw + r) * cout + co];
            }
    }
    free (u);
    vdgx_tensor_t *tmp [] = { &pin_t, &e, &e0, &mod, &hmod, &hout };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        s_free_tensor (self, tmp [i]);
    return rc;
}
