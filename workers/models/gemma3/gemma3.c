/*  gemma3.c - the Gemma 3 text decoder on the vdgx compute layer (see gemma3.h).

    Facts the reference vectors (tests/data/reference/gemma3, from the official gemma_pytorch)
    pin down, beyond the header: the embedding scale is the float32 sqrt(D) (HF rounds it to
    the activation dtype: 62.0 for D = 3840 in bf16); inv_freq is 1 / float32 (theta ^
    (float32 (2i) / hd)), divided by the factor on global layers; the angle is the float32
    product p * inv_freq; the logits use the unscaled embedding matrix and are not soft-capped.
*/
#include "gemma3.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vdgx_attn.h"
#include "vdgx_nn.h"
#include "vdgx_quant.h"
#include "vdgx_wsrc.h"

//  Checkpoint names of a layer's tensors (after the "language_model.model." / "model." prefix).
enum { S_Q, S_K, S_V, S_O, S_GATE, S_UP, S_DOWN, S_LINEARS };
enum { S_IN_NORM, S_POST_ATTN_NORM, S_PRE_FF_NORM, S_POST_FF_NORM, S_Q_NORM, S_K_NORM, S_NORMS };

static const char *s_linear_names [S_LINEARS] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" };
static const char *s_norm_names [S_NORMS] = {
    "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
    "post_feedforward_layernorm", "self_attn.q_norm", "self_attn.k_norm" };

//  A layer from the toolkit's pieces: GQA attention with per-head (1+w) q/k norms, the four
//  (1+w) sandwich norms, the gated tanh-GELU MLP.
typedef struct {
    vdgx_attn_t attn;
    vdgx_norm_t norm [S_POST_FF_NORM + 1];
    vdgx_mlp_t mlp;
} s_layer_t;

struct _gemma3_t {
    gemma3_config_t cfg;
    vdgx_backend_t *backend;
    vdgx_ckpt_t *ckpt;                      //  kept open: embedding rows are read from it
    char prefix [32];                       //  "language_model.model." or "model."
    vdgx_wsrc_map_t map;                    //  canonical names -> checkpoint names (the prefix)
    const vdgx_ckpt_tensor_t *embedding;
    float embed_scale;                      //  FP8 embedding: its tensor scale (1 otherwise)
    vdgx_wfmt_t wfmt;
    s_layer_t *layers;
    vdgx_norm_t final_norm;
    vdgx_linear_t head;                     //  tied output head, loaded on first use
    size_t weight_bytes;
    //  RoPE tables of the last length (F32 [L, hd/2]) on the backend
    int rope_len;
    vdgx_rope_t rope [2];                   //  [0] local, [1] global
    gemma3_tap_fn *tap;
    void *tap_arg;
    uint64_t tap_layers;
    char error [512];
};

static void
s_set_error (gemma3_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof (self->error), fmt, args);
    va_end (args);
}

//  ---------------------------------------------------------------------------------------
//  Configuration

void
gemma3_config_defaults (gemma3_config_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof (*cfg));
    cfg->eps = 1e-6f;
    cfg->rope_theta = 1e6;
    cfg->rope_local_theta = 1e4;
    cfg->rope_factor = 8.0f;
    cfg->sliding_window = 1024;
    cfg->sliding_pattern = 6;
    cfg->query_pre_attn_scalar = 256.0f;
    cfg->bos_id = 2;
    cfg->pad_id = 0;
}

bool
gemma3_layer_is_global (const gemma3_config_t *cfg, int layer)
{
    assert (cfg && layer >= 0 && layer < GEMMA3_MAX_LAYERS);
    if (cfg->layer_types_given)
        return cfg->is_global [layer] != 0;
    return cfg->sliding_pattern > 0 && (layer + 1) % cfg->sliding_pattern == 0;
}

static int
s_json_number (json_t *obj, const char *key, double lo, double hi, double *out, char **err)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v))
        return 0;
    if (!json_is_number (v) || !(json_number_value (v) >= lo && json_number_value (v) <= hi)) {
        *err = zsys_sprintf ("Gemma 3 config: \"%s\" must be a number in [%g, %g]", key, lo, hi);
        return -1;
    }
    *out = json_number_value (v);
    return 0;
}

int
gemma3_config_parse (gemma3_config_t *cfg, const char *json_text, char **err)
{
    assert (cfg && json_text && err);
    *err = NULL;
    json_error_t jerr;
    json_t *root = json_loads (json_text, 0, &jerr);
    if (!root || !json_is_object (root)) {
        *err = zsys_sprintf ("Gemma 3 config: not a JSON object (%s, line %d)",
                             root? "wrong type": jerr.text, jerr.line);
        json_decref (root);
        return -1;
    }
    json_t *tc = json_object_get (root, "text_config");
    json_t *c = json_is_object (tc)? tc: root;
    double v;
    int rc = 0;
#define S_NUM(key, lo, hi, field, type) \
    if (rc == 0) { v = (double) cfg->field; rc = s_json_number (c, key, lo, hi, &v, err); cfg->field = (type) v; }
    S_NUM ("rms_norm_eps", 0, 1, eps, float)
    S_NUM ("rope_theta", 1, 1e12, rope_theta, double)
    S_NUM ("rope_local_base_freq", 1, 1e12, rope_local_theta, double)
    S_NUM ("sliding_window", 1, 1 << 30, sliding_window, int)
    S_NUM ("sliding_window_pattern", 1, 1 << 16, sliding_pattern, int)
    S_NUM ("query_pre_attn_scalar", 1e-6, 1e9, query_pre_attn_scalar, float)
    S_NUM ("bos_token_id", 0, 1 << 30, bos_id, int)
    S_NUM ("pad_token_id", 0, 1 << 30, pad_id, int)
#undef S_NUM
    json_t *rs = json_object_get (c, "rope_scaling");
    if (rc == 0 && json_is_object (rs)) {
        json_t *type = json_object_get (rs, "rope_type");
        if (!type)
            type = json_object_get (rs, "type");
        if (type && (!json_is_string (type) || strcmp (json_string_value (type), "linear"))) {
            *err = zsys_sprintf ("Gemma 3 config: rope_scaling type \"%s\" is not supported "
                                 "(linear only)", json_is_string (type)? json_string_value (type): "?");
            rc = -1;
        }
        v = cfg->rope_factor;
        if (rc == 0 && (rc = s_json_number (rs, "factor", 1e-6, 1e6, &v, err)) == 0)
            cfg->rope_factor = (float) v;
    }
    else
    if (rc == 0 && rs && json_is_null (rs))
        cfg->rope_factor = 1.0f;
    json_t *lt = json_object_get (c, "layer_types");
    if (rc == 0 && lt) {
        if (!json_is_array (lt) || json_array_size (lt) > GEMMA3_MAX_LAYERS) {
            *err = zsys_sprintf ("Gemma 3 config: layer_types must be an array of at most %d",
                                 GEMMA3_MAX_LAYERS);
            rc = -1;
        }
        for (size_t i = 0; rc == 0 && i < json_array_size (lt); i++) {
            const char *s = json_string_value (json_array_get (lt, i));
            if (s && strcmp (s, "full_attention") == 0)
                cfg->is_global [i] = 1;
            else
            if (s && strcmp (s, "sliding_attention") == 0)
                cfg->is_global [i] = 0;
            else {
                *err = zsys_sprintf ("Gemma 3 config: layer_types[%zu] is \"%s\" (full_attention or "
                                     "sliding_attention)", i, s? s: "not a string");
                rc = -1;
            }
        }
        if (rc == 0)
            cfg->layer_types_given = true;
    }
    json_decref (root);
    return rc;
}

void
gemma3_rope_tables (const gemma3_config_t *cfg, bool global, int len, float *inv_freq,
                    float *cos_t, float *sin_t)
{
    assert (cfg && len >= 0 && inv_freq);
    const int half = cfg->head_dim / 2;
    const float theta = (float) (global? cfg->rope_theta: cfg->rope_local_theta);
    for (int i = 0; i < half; i++) {
        //  theta ** (arange(0, hd, 2).float() / hd), then 1 / x, then / factor, all in f32
        float e = (float) (2 * i) / (float) cfg->head_dim;
        float f = 1.0f / powf (theta, e);
        inv_freq [i] = global? f / cfg->rope_factor: f;
    }
    for (int p = 0; p < len && cos_t && sin_t; p++)
        for (int i = 0; i < half; i++) {
            float angle = (float) p * inv_freq [i];
            cos_t [(size_t) p * half + i] = cosf (angle);
            sin_t [(size_t) p * half + i] = sinf (angle);
        }
}

//  ---------------------------------------------------------------------------------------
//  Loading

static const vdgx_ckpt_tensor_t *
s_find (gemma3_t *self, const char *suffix, char *name, size_t size)
{
    snprintf (name, size, "%s%s", self->prefix, suffix);
    return vdgx_ckpt_find (self->ckpt, name);
}

//  Checks that a tensor exists with the given shape (d1 < 0: 1-D).
static int
s_expect (gemma3_t *self, const char *suffix, int64_t d0, int64_t d1)
{
    char name [256];
    const vdgx_ckpt_tensor_t *t = s_find (self, suffix, name, sizeof (name));
    if (!t) {
        s_set_error (self, "Gemma 3 checkpoint: missing tensor '%s'", name);
        return -1;
    }
    int ndim = d1 < 0? 1: 2;
    if (t->ndim != ndim || t->shape [0] != d0 || (ndim == 2 && t->shape [1] != d1)) {
        char got [96] = "";
        for (int i = 0; i < t->ndim && i < 4; i++)
            snprintf (got + strlen (got), sizeof (got) - strlen (got), "%s%lld", i? ", ": "",
                      (long long) t->shape [i]);
        if (ndim == 2)
            s_set_error (self, "Gemma 3 checkpoint: '%s' has shape [%s], expected [%lld, %lld]",
                         name, got, (long long) d0, (long long) d1);
        else
            s_set_error (self, "Gemma 3 checkpoint: '%s' has shape [%s], expected [%lld]",
                         name, got, (long long) d0);
        return -1;
    }
    if (!(t->dtype == VDGX_DTYPE_F32 || t->dtype == VDGX_DTYPE_BF16 || t->dtype == VDGX_DTYPE_F16
       || t->dtype == VDGX_DTYPE_F8_E4M3)) {
        s_set_error (self, "Gemma 3 checkpoint: '%s' has dtype %s (F32, BF16, F16 or F8_E4M3)",
                     name, vdgx_dtype_name (t->dtype));
        return -1;
    }
    return 0;
}

//  Derives the sizes from the shapes and checks every tensor the decoder reads.
static int
s_layout (gemma3_t *self)
{
    gemma3_config_t *c = &self->cfg;
    static const char *prefixes [] = { "language_model.model.", "model.", "" };
    const vdgx_ckpt_tensor_t *emb = NULL;
    char name [256];
    for (size_t i = 0; i < sizeof (prefixes) / sizeof (prefixes [0]) && !emb; i++) {
        snprintf (self->prefix, sizeof (self->prefix), "%s", prefixes [i]);
        emb = s_find (self, "embed_tokens.weight", name, sizeof (name));
    }
    if (!emb) {
        s_set_error (self, "Gemma 3 checkpoint: no token embedding (language_model.model."
                     "embed_tokens.weight or model.embed_tokens.weight)");
        return -1;
    }
    if (emb->ndim != 2 || emb->shape [0] < 3 || emb->shape [0] > INT32_MAX || emb->shape [1] < 2
     || emb->shape [1] > 65536) {
        s_set_error (self, "Gemma 3 checkpoint: '%s' must be [vocab, hidden]", name);
        return -1;
    }
    self->embedding = emb;
    c->vocab = (int) emb->shape [0];
    c->hidden = (int) emb->shape [1];
    c->layers = 0;
    for (int i = 0; i < GEMMA3_MAX_LAYERS; i++) {
        char suffix [96];
        snprintf (suffix, sizeof (suffix), "layers.%d.input_layernorm.weight", i);
        if (!s_find (self, suffix, name, sizeof (name)))
            break;
        c->layers = i + 1;
    }
    if (c->layers == 0) {
        s_set_error (self, "Gemma 3 checkpoint: no decoder layers (%slayers.0.*)", self->prefix);
        return -1;
    }
    const vdgx_ckpt_tensor_t *qn = s_find (self, "layers.0.self_attn.q_norm.weight", name, sizeof (name));
    const vdgx_ckpt_tensor_t *q = s_find (self, "layers.0.self_attn.q_proj.weight", name, sizeof (name));
    const vdgx_ckpt_tensor_t *k = s_find (self, "layers.0.self_attn.k_proj.weight", name, sizeof (name));
    const vdgx_ckpt_tensor_t *g = s_find (self, "layers.0.mlp.gate_proj.weight", name, sizeof (name));
    if (!qn || !q || !k || !g || qn->ndim != 1 || q->ndim != 2 || k->ndim != 2 || g->ndim != 2
     || qn->shape [0] < 2 || qn->shape [0] % 2 || q->shape [0] % qn->shape [0]
     || k->shape [0] % qn->shape [0] || k->shape [0] == 0 || g->shape [0] < 1
     || g->shape [0] > (1 << 20) || q->shape [0] > (1 << 20)) {
        s_set_error (self, "Gemma 3 checkpoint: missing or malformed q_norm / q_proj / k_proj / "
                     "gate_proj in %slayers.0 (head_dim comes from q_norm)", self->prefix);
        return -1;
    }
    c->head_dim = (int) qn->shape [0];
    c->heads = (int) (q->shape [0] / c->head_dim);
    c->kv_heads = (int) (k->shape [0] / c->head_dim);
    c->ffn = (int) g->shape [0];
    if (c->heads % c->kv_heads) {
        s_set_error (self, "Gemma 3 checkpoint: %d query heads are not a multiple of %d kv heads",
                     c->heads, c->kv_heads);
        return -1;
    }
    const int64_t D = c->hidden, A = (int64_t) c->heads * c->head_dim;
    const int64_t KV = (int64_t) c->kv_heads * c->head_dim, F = c->ffn, HD = c->head_dim;
    const int64_t lin [S_LINEARS][2] = { { A, D }, { KV, D }, { KV, D }, { D, A }, { F, D }, { F, D }, { D, F } };
    for (int i = 0; i < c->layers; i++) {
        char suffix [128];
        for (int j = 0; j < S_LINEARS; j++) {
            snprintf (suffix, sizeof (suffix), "layers.%d.%s.weight", i, s_linear_names [j]);
            if (s_expect (self, suffix, lin [j][0], lin [j][1]))
                return -1;
        }
        for (int j = 0; j < S_NORMS; j++) {
            snprintf (suffix, sizeof (suffix), "layers.%d.%s.weight", i, s_norm_names [j]);
            if (s_expect (self, suffix, j >= S_Q_NORM? HD: D, -1))
                return -1;
        }
    }
    if (s_expect (self, "norm.weight", D, -1))
        return -1;
    if (c->bos_id >= c->vocab || c->pad_id >= c->vocab) {
        s_set_error (self, "Gemma 3: bos %d / pad %d outside the vocabulary (%d)", c->bos_id,
                     c->pad_id, c->vocab);
        return -1;
    }
    return 0;
}

//  Bytes a linear layer holds on the backend.
static size_t
s_linear_bytes (const vdgx_linear_t *l)
{
    return vdgx_wfmt_bytes (l->w.fmt, l->w.n, l->w.k);
}

//  Every weight of layer i through the weight source.
static int
s_load_layer (gemma3_t *self, vdgx_wsrc_t *src, int i, char **err)
{
    const gemma3_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    s_layer_t *l = &self->layers [i];
    const int64_t D = c->hidden, A = (int64_t) c->heads * c->head_dim;
    const int64_t KV = (int64_t) c->kv_heads * c->head_dim, F = c->ffn, HD = c->head_dim;
    vdgx_attn_init (&l->attn, D, c->heads, c->kv_heads, HD);
    l->attn.scale = 1.0f / sqrtf (c->query_pre_attn_scalar);
    l->mlp.kind = VDGX_MLP_GATED;
    l->mlp.act = VDGX_ACT_GELU_TANH;
    l->mlp.dim = D;
    l->mlp.hidden = F;
    vdgx_linear_t *lin [S_LINEARS] = { &l->attn.q, &l->attn.k, &l->attn.v, &l->attn.o,
                                       &l->mlp.gate, &l->mlp.up, &l->mlp.down };
    const int64_t shape [S_LINEARS][2] = { { A, D }, { KV, D }, { KV, D }, { D, A }, { F, D },
                                           { F, D }, { D, F } };
    char name [128];
    for (int j = 0; j < S_LINEARS; j++) {
        snprintf (name, sizeof (name), "layers.%d.%s", i, s_linear_names [j]);
        if (vdgx_wsrc_linear (src, b, name, shape [j][0], shape [j][1], self->wfmt, -1, lin [j], err))
            return -1;
        self->weight_bytes += s_linear_bytes (lin [j]);
    }
    vdgx_norm_t *norm [S_NORMS] = { &l->norm [S_IN_NORM], &l->norm [S_POST_ATTN_NORM],
                                    &l->norm [S_PRE_FF_NORM], &l->norm [S_POST_FF_NORM],
                                    &l->attn.q_norm, &l->attn.k_norm };
    for (int j = 0; j < S_NORMS; j++) {
        snprintf (name, sizeof (name), "layers.%d.%s", i, s_norm_names [j]);
        int64_t dim = j >= S_Q_NORM? HD: D;
        if (vdgx_wsrc_norm (src, b, norm [j], VDGX_NORM_RMS, name, dim, c->eps, true, false, true, err))
            return -1;
        self->weight_bytes += sizeof (float) * (size_t) dim;
    }
    l->attn.has_q_norm = l->attn.has_k_norm = true;
    return 0;
}

gemma3_t *
gemma3_new_from_ckpt (vdgx_ckpt_t **ckpt_p, const gemma3_config_t *cfg, vdgx_backend_t *backend,
                      vdgx_wfmt_t wfmt, char **err)
{
    assert (ckpt_p && *ckpt_p && backend && err);
    *err = NULL;
    if (wfmt != VDGX_WFMT_F32 && wfmt != VDGX_WFMT_BF16 && wfmt != VDGX_WFMT_FP8_E4M3
     && wfmt != VDGX_WFMT_NVFP4) {
        *err = zsys_sprintf ("Gemma 3: weight format %s is not supported (f32, bf16, fp8, nvfp4)",
                             vdgx_wfmt_name (wfmt));
        vdgx_ckpt_destroy (ckpt_p);
        return NULL;
    }
    gemma3_t *self = (gemma3_t *) calloc (1, sizeof (gemma3_t));
    if (!self) {
        *err = strdup ("out of memory");
        vdgx_ckpt_destroy (ckpt_p);
        return NULL;
    }
    self->ckpt = *ckpt_p;
    *ckpt_p = NULL;
    self->backend = backend;
    self->wfmt = wfmt;
    self->embed_scale = 1.0f;
    if (cfg)
        self->cfg = *cfg;
    else
        gemma3_config_defaults (&self->cfg);
    int rc = s_layout (self);
    const gemma3_config_t *c = &self->cfg;
    if (rc == 0 && self->embedding->dtype == VDGX_DTYPE_F8_E4M3) {
        //  an FP8 embedding carries one tensor scale
        char name [256];
        const vdgx_ckpt_tensor_t *s = s_find (self, "embed_tokens.weight_scale", name, sizeof (name));
        if (!s)
            s = s_find (self, "embed_tokens.scale_weight", name, sizeof (name));
        if (s && (s->nbytes < 1 || vdgx_ckpt_read_f32 (s, &self->embed_scale, NULL) || s->ndim > 1
               || (s->ndim == 1 && s->shape [0] != 1) || !isfinite (self->embed_scale))) {
            s_set_error (self, "Gemma 3 checkpoint: '%s' must be one finite scale", name);
            rc = -1;
        }
    }
    if (rc == 0) {
        self->layers = (s_layer_t *) calloc ((size_t) c->layers, sizeof (s_layer_t));
        if (!self->layers) {
            s_set_error (self, "out of memory");
            rc = -1;
        }
    }
    char *lerr = NULL;
    self->map.name = "hf";
    self->map.prefix = self->prefix;
    vdgx_wsrc_t *src = rc == 0? vdgx_wsrc_new (self->ckpt, &self->map, "Gemma 3 checkpoint"): NULL;
    if (rc == 0 && !src) {
        s_set_error (self, "out of memory");
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < c->layers; i++)
        rc = s_load_layer (self, src, i, &lerr);
    if (rc == 0)
        rc = vdgx_wsrc_norm (src, backend, &self->final_norm, VDGX_NORM_RMS, "norm", c->hidden,
                             c->eps, true, false, true, &lerr);
    if (lerr) {
        s_set_error (self, "%s", lerr);
        free (lerr);
    }
    vdgx_wsrc_destroy (&src);
    if (rc) {
        *err = strdup (self->error);
        gemma3_destroy (&self);
        return NULL;
    }
    return self;
}

//  Reads a whole small text file (caller frees); NULL when it cannot.
static char *
s_slurp (const char *path, size_t cap)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return NULL;
    char *buf = (char *) malloc (cap + 1);
    size_t n = buf? fread (buf, 1, cap, f): 0;
    bool too_big = buf && n == cap && fgetc (f) != EOF;
    fclose (f);
    if (!buf || too_big) {
        free (buf);
        return NULL;
    }
    buf [n] = 0;
    return buf;
}

static bool
s_is_file (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

gemma3_t *
gemma3_new (const char *path, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err)
{
    assert (path && backend && err);
    *err = NULL;
    struct stat st;
    if (stat (path, &st) != 0) {
        *err = zsys_sprintf ("Gemma 3: cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    char file [4096], dir [4096], conf [4200];
    if (S_ISDIR (st.st_mode)) {
        snprintf (dir, sizeof (dir), "%s", path);
        snprintf (file, sizeof (file), "%s/model.safetensors.index.json", path);
        if (!s_is_file (file))
            snprintf (file, sizeof (file), "%s/model.safetensors", path);
        if (!s_is_file (file)) {
            *err = zsys_sprintf ("Gemma 3: '%s' holds neither model.safetensors.index.json nor "
                                 "model.safetensors", path);
            return NULL;
        }
    }
    else {
        snprintf (file, sizeof (file), "%s", path);
        snprintf (dir, sizeof (dir), "%s", path);
        char *slash = strrchr (dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf (dir, sizeof (dir), ".");
    }
    gemma3_config_t cfg;
    gemma3_config_defaults (&cfg);
    snprintf (conf, sizeof (conf), "%s/config.json", dir);
    if (s_is_file (conf)) {
        char *text = s_slurp (conf, 1 << 20);
        char *cerr = NULL;
        if (!text || gemma3_config_parse (&cfg, text, &cerr)) {
            *err = zsys_sprintf ("Gemma 3: %s: %s", conf, cerr? cerr: "cannot read (or over 1 MiB)");
            free (cerr);
            free (text);
            return NULL;
        }
        free (text);
    }
    char *cerr = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &cerr);
    if (!ckpt) {
        *err = zsys_sprintf ("Gemma 3: %s: %s", file, cerr? cerr: "cannot open");
        free (cerr);
        return NULL;
    }
    gemma3_t *self = gemma3_new_from_ckpt (&ckpt, &cfg, backend, wfmt, &cerr);
    if (!self) {
        *err = zsys_sprintf ("%s (%s)", cerr? cerr: "Gemma 3: cannot load", file);
        free (cerr);
    }
    return self;
}

void
gemma3_destroy (gemma3_t **self_p)
{
    assert (self_p);
    gemma3_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    for (int i = 0; self->layers && i < self->cfg.layers; i++) {
        s_layer_t *l = &self->layers [i];
        vdgx_attn_release (b, &l->attn);
        vdgx_mlp_release (b, &l->mlp);
        for (int j = 0; j <= S_POST_FF_NORM; j++)
            vdgx_norm_release (b, &l->norm [j]);
    }
    free (self->layers);
    vdgx_linear_release (b, &self->head);
    vdgx_norm_release (b, &self->final_norm);
    vdgx_rope_release (b, &self->rope [0]);
    vdgx_rope_release (b, &self->rope [1]);
    vdgx_ckpt_destroy (&self->ckpt);
    free (self);
    *self_p = NULL;
}

const gemma3_config_t *
gemma3_config (gemma3_t *self)
{
    assert (self);
    return &self->cfg;
}

const char *
gemma3_error (gemma3_t *self)
{
    assert (self);
    return self->error;
}

size_t
gemma3_weight_bytes (gemma3_t *self)
{
    assert (self);
    return self->weight_bytes;
}

void
gemma3_set_tap (gemma3_t *self, gemma3_tap_fn *fn, void *arg, uint64_t layers)
{
    assert (self);
    self->tap = fn;
    self->tap_arg = arg;
    self->tap_layers = layers;
}

//  ---------------------------------------------------------------------------------------
//  Forward

typedef struct {
    vdgx_tensor_t x32, h, q, k, v, qn, kn, o, a, an, resid, f, g, u, d, dn, last, mask;
} s_work_t;

static void
s_work_release (vdgx_backend_t *b, s_work_t *w)
{
    vdgx_tensor_t *all [] = { &w->x32, &w->h, &w->q, &w->k, &w->v, &w->qn, &w->kn, &w->o, &w->a,
                              &w->an, &w->resid, &w->f, &w->g, &w->u, &w->d, &w->dn,
                              &w->last, &w->mask };
    for (size_t i = 0; i < sizeof (all) / sizeof (all [0]); i++)
        vdgx_tensor_release (b, all [i]);
}

//  Slot i of hidden [N+1,B,L,D] as a [M,D] view.
static vdgx_tensor_t
s_slot (const vdgx_tensor_t *hidden, int i, int64_t M, int64_t D)
{
    const int64_t shape [2] = { M, D };
    vdgx_tensor_t v;
    vdgx_tensor_init (&v, hidden->dtype, 2, shape,
                      (char *) hidden->data + (size_t) i * (size_t) (M * D) * vdgx_dtype_size (hidden->dtype),
                      hidden->device);
    return v;
}

static void
s_tap (gemma3_t *self, int layer, const char *what, const vdgx_tensor_t *t, int ndim,
       const int64_t *shape)
{
    if (!self->tap || layer >= 64 || !(self->tap_layers >> layer & 1))
        return;
    char name [96];
    snprintf (name, sizeof (name), "l%d.%s", layer, what);
    vdgx_tensor_t v = vdgx_nn_view (t, ndim, shape);
    self->tap (self->tap_arg, name, &v);
}

static int
s_rope_upload (gemma3_t *self, int len)
{
    if (self->rope_len == len)
        return 0;
    vdgx_backend_t *b = self->backend;
    const int half = self->cfg.head_dim / 2;
    for (int i = 0; i < 2; i++)
        vdgx_rope_release (b, &self->rope [i]);
    self->rope_len = 0;
    float *inv = (float *) malloc (sizeof (float) * (size_t) half);
    float *c = (float *) malloc (sizeof (float) * (size_t) len * half);
    float *s = (float *) malloc (sizeof (float) * (size_t) len * half);
    int rc = inv && c && s? 0: -1;
    const int64_t shape [2] = { len, half };
    for (int g = 0; rc == 0 && g < 2; g++) {
        //  the toolkit's rotary table, filled with the float32 angles the official code uses
        gemma3_rope_tables (&self->cfg, g == 1, len, inv, c, s);
        vdgx_rope_t *r = &self->rope [g];
        r->layout = VDGX_ROPE_HALF;
        r->len = len;
        r->pairs = half;
        if (vdgx_nn_upload (b, &r->cos, VDGX_DTYPE_F32, 2, shape, c)
         || vdgx_nn_upload (b, &r->sin, VDGX_DTYPE_F32, 2, shape, s))
            rc = -1;
    }
    free (inv);
    free (c);
    free (s);
    if (rc)
        s_set_error (self, "Gemma 3: cannot place the RoPE tables: %s", vdgx_backend_error (b));
    else
        self->rope_len = len;
    return rc;
}

//  Embedding rows of ids into host f32 [M,D], times sqrt(D) as the activation dtype rounds it.
static void
s_embed (gemma3_t *self, const int32_t *ids, int64_t M, float *out)
{
    const int64_t D = self->cfg.hidden;
    const vdgx_ckpt_tensor_t *e = self->embedding;
    size_t esize = vdgx_dtype_size (e->dtype);
    float scale = sqrtf ((float) D);
    if (vdgx_backend_act_dtype (self->backend) == VDGX_DTYPE_BF16)
        scale = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (scale));
    else
    if (vdgx_backend_act_dtype (self->backend) == VDGX_DTYPE_F16)
        scale = vdgx_f16_to_f32 (vdgx_f32_to_f16 (scale));
    for (int64_t i = 0; i < M; i++) {
        float *row = out + i * D;
        vdgx_convert_to_f32 (row, (const char *) e->data + (size_t) ids [i] * (size_t) D * esize,
                             e->dtype, (size_t) D);
        for (int64_t d = 0; d < D; d++)
            row [d] = row [d] * self->embed_scale * scale;
    }
}

static int
s_logits (gemma3_t *self, const vdgx_tensor_t *final, int64_t B, int64_t L, float *logits)
{
    vdgx_backend_t *b = self->backend;
    const int64_t D = self->cfg.hidden;
    if (!self->head.loaded) {
        char *err = NULL;
        vdgx_wsrc_t *src = vdgx_wsrc_new (self->ckpt, &self->map, "Gemma 3 checkpoint");
        int rc = src? vdgx_wsrc_linear (src, b, "embed_tokens", self->cfg.vocab, D, self->wfmt, -1,
                                        &self->head, &err): -1;
        vdgx_wsrc_destroy (&src);
        if (rc) {
            s_set_error (self, "%s", err? err: "out of memory");
            free (err);
            return -1;
        }
    }
    //  last row of every sequence
    vdgx_tensor_t rows, out;
    memset (&rows, 0, sizeof (rows));
    memset (&out, 0, sizeof (out));
    const int64_t rs [2] = { B, D }, os [2] = { B, self->cfg.vocab };
    float *host = (float *) malloc (sizeof (float) * (size_t) (B * L * D));
    int rc = -1;
    if (host && vdgx_tensor_to_f32 (b, final, host) == 0) {
        for (int64_t i = 0; i < B; i++)
            memmove (host + i * D, host + ((i + 1) * L - 1) * D, sizeof (float) * (size_t) D);
        if (vdgx_tensor_alloc (b, &rows, VDGX_DTYPE_F32, 2, rs) == 0
         && vdgx_tensor_alloc (b, &out, VDGX_DTYPE_F32, 2, os) == 0
         && vdgx_tensor_from_f32 (b, &rows, host) == 0
         && vdgx_linear_forward (b, &self->head, &out, &rows) == 0
         && vdgx_tensor_to_f32 (b, &out, logits) == 0)
            rc = 0;
    }
    if (rc)
        s_set_error (self, "Gemma 3: logits failed: %s", vdgx_backend_error (b));
    free (host);
    vdgx_tensor_release (b, &rows);
    vdgx_tensor_release (b, &out);
    return rc;
}

int
gemma3_forward (gemma3_t *self, const int32_t *ids, const uint8_t *mask, int batch, int len,
                vdgx_tensor_t *hidden, vdgx_tensor_t *last_out, float *logits)
{
    assert (self && ids && hidden);
    memset (hidden, 0, sizeof (*hidden));
    if (last_out)
        memset (last_out, 0, sizeof (*last_out));
    const gemma3_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    if (batch < 1 || len < 1 || (int64_t) batch * len > (1 << 22)) {
        s_set_error (self, "Gemma 3: bad batch %d x length %d", batch, len);
        return -1;
    }
    const int64_t B = batch, L = len, M = B * L, D = c->hidden, N = c->layers;
    const int64_t H = c->heads, KV = c->kv_heads, HD = c->head_dim, F = c->ffn;
    for (int64_t i = 0; i < M; i++)
        if (ids [i] < 0 || ids [i] >= c->vocab) {
            s_set_error (self, "Gemma 3: token id %d at %lld is outside the vocabulary (%d)",
                         ids [i], (long long) i, c->vocab);
            return -1;
        }
    bool padded = false;
    for (int64_t i = 0; mask && i < M; i++)
        padded |= mask [i] == 0;
    const vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    s_work_t w;
    memset (&w, 0, sizeof (w));
    float *host = NULL;
    int rc = -1;
    const int64_t shs [4] = { N + 1, B, L, D }, sd [2] = { M, D }, sa [2] = { M, H * HD };
    const int64_t skv [2] = { M, KV * HD }, sf [2] = { M, F }, sm [2] = { B, L };
    if (vdgx_tensor_alloc (b, hidden, act, 4, shs)
     || vdgx_tensor_alloc (b, &w.h, act, 2, sd) || vdgx_tensor_alloc (b, &w.q, act, 2, sa)
     || vdgx_tensor_alloc (b, &w.k, act, 2, skv) || vdgx_tensor_alloc (b, &w.v, act, 2, skv)
     || vdgx_tensor_alloc (b, &w.qn, act, 2, sa) || vdgx_tensor_alloc (b, &w.kn, act, 2, skv)
     || vdgx_tensor_alloc (b, &w.o, act, 2, sa) || vdgx_tensor_alloc (b, &w.a, act, 2, sd)
     || vdgx_tensor_alloc (b, &w.an, act, 2, sd) || vdgx_tensor_alloc (b, &w.resid, act, 2, sd)
     || vdgx_tensor_alloc (b, &w.f, act, 2, sd) || vdgx_tensor_alloc (b, &w.g, act, 2, sf)
     || vdgx_tensor_alloc (b, &w.u, act, 2, sf)
     || vdgx_tensor_alloc (b, &w.d, act, 2, sd) || vdgx_tensor_alloc (b, &w.dn, act, 2, sd)
     || vdgx_tensor_alloc (b, &w.last, act, 2, sd)
     || (padded && vdgx_tensor_alloc (b, &w.mask, VDGX_DTYPE_U8, 2, sm))) {
        s_set_error (self, "Gemma 3: cannot allocate work tensors: %s", vdgx_backend_error (b));
        goto done;
    }
    if (padded && vdgx_tensor_upload (b, &w.mask, mask)) {
        s_set_error (self, "Gemma 3: cannot place the mask: %s", vdgx_backend_error (b));
        goto done;
    }
    if (s_rope_upload (self, len))
        goto done;
    host = (float *) malloc (sizeof (float) * (size_t) (M * D));
    if (!host) {
        s_set_error (self, "Gemma 3: out of memory");
        goto done;
    }
    s_embed (self, ids, M, host);
    vdgx_tensor_t x0 = s_slot (hidden, 0, M, D);
    if (act == VDGX_DTYPE_F32? vdgx_tensor_from_f32 (b, &x0, host) != 0:
        (vdgx_tensor_alloc (b, &w.x32, VDGX_DTYPE_F32, 2, sd) || vdgx_tensor_from_f32 (b, &w.x32, host)
         || vdgx_op_cast (b, &x0, &w.x32))) {
        s_set_error (self, "Gemma 3: upload failed: %s", vdgx_backend_error (b));
        goto done;
    }
    const int64_t s3d [3] = { B, L, D }, s3a [3] = { B, L, H * HD }, s3kv [3] = { B, L, KV * HD };
    const int64_t s3f [3] = { B, L, F }, s4q [4] = { B, L, H, HD }, s4k [4] = { B, L, KV, HD };
    vdgx_tensor_t q4 = vdgx_nn_view (&w.q, 4, s4q), k4 = vdgx_nn_view (&w.k, 4, s4k);
    vdgx_tensor_t v4 = vdgx_nn_view (&w.v, 4, s4k), o4 = vdgx_nn_view (&w.o, 4, s4q);
    vdgx_tensor_t qn4 = vdgx_nn_view (&w.qn, 4, s4q), kn4 = vdgx_nn_view (&w.kn, 4, s4k);
    for (int i = 0; i < N; i++) {
        s_layer_t *l = &self->layers [i];
        const bool global = gemma3_layer_is_global (c, i);
        vdgx_tensor_t in = s_slot (hidden, i, M, D);
        vdgx_tensor_t out = i + 1 < N? s_slot (hidden, i + 1, M, D): w.last;
        vdgx_attn_spec_t spec;
        memset (&spec, 0, sizeof (spec));
        spec.kind = global? VDGX_ATTN_CAUSAL: VDGX_ATTN_SLIDING;
        spec.window = c->sliding_window;
        spec.key_mask = padded? &w.mask: NULL;
        //  attention: q/k projections, per-head (1+w) norms, RoPE, GQA with the layer's mask
        if (vdgx_norm_forward (b, &l->norm [S_IN_NORM], &w.h, &in)
         || vdgx_linear_forward (b, &l->attn.q, &w.q, &w.h)
         || vdgx_linear_forward (b, &l->attn.k, &w.k, &w.h)
         || vdgx_linear_forward (b, &l->attn.v, &w.v, &w.h))
            goto op_failed;
        s_tap (self, i, "input_layernorm", &w.h, 3, s3d);
        s_tap (self, i, "q_proj", &w.q, 3, s3a);
        s_tap (self, i, "k_proj", &w.k, 3, s3kv);
        s_tap (self, i, "v_proj", &w.v, 3, s3kv);
        if (vdgx_norm_forward (b, &l->attn.q_norm, &w.qn, &w.q)
         || vdgx_norm_forward (b, &l->attn.k_norm, &w.kn, &w.k))
            goto op_failed;
        s_tap (self, i, "q_norm", &w.qn, 4, s4q);
        s_tap (self, i, "k_norm", &w.kn, 4, s4k);
        if (vdgx_rope_apply (b, &self->rope [global], &q4, &qn4)
         || vdgx_rope_apply (b, &self->rope [global], &k4, &kn4))
            goto op_failed;
        s_tap (self, i, "q_rope", &w.q, 4, s4q);
        s_tap (self, i, "k_rope", &w.k, 4, s4k);
        if (vdgx_attn_core (b, &l->attn, &o4, &q4, &k4, &v4, &spec)
         || vdgx_linear_forward (b, &l->attn.o, &w.a, &w.o)
         || vdgx_norm_forward (b, &l->norm [S_POST_ATTN_NORM], &w.an, &w.a)
         || vdgx_op_add_scaled (b, &w.resid, &in, &w.an, 1.0f))
            goto op_failed;
        s_tap (self, i, "attn_ctx", &w.o, 3, s3a);
        s_tap (self, i, "o_proj", &w.a, 3, s3d);
        s_tap (self, i, "post_attention_layernorm", &w.an, 3, s3d);
        s_tap (self, i, "resid_mid", &w.resid, 3, s3d);
        //  MLP: down (gelu_tanh (gate (f)) * up (f)); g ends as the product, u as the GELU
        if (vdgx_norm_forward (b, &l->norm [S_PRE_FF_NORM], &w.f, &w.resid)
         || vdgx_mlp_forward (b, &l->mlp, &w.d, &w.f, &w.g, &w.u)
         || vdgx_norm_forward (b, &l->norm [S_POST_FF_NORM], &w.dn, &w.d)
         || vdgx_op_add_scaled (b, &out, &w.resid, &w.dn, 1.0f))
            goto op_failed;
        s_tap (self, i, "pre_feedforward_layernorm", &w.f, 3, s3d);
        s_tap (self, i, "mlp.act", &w.g, 3, s3f);
        s_tap (self, i, "mlp.out", &w.d, 3, s3d);
        s_tap (self, i, "post_feedforward_layernorm", &w.dn, 3, s3d);
        s_tap (self, i, "out", &out, 3, s3d);
    }
    vdgx_tensor_t final = s_slot (hidden, (int) N, M, D);
    if (vdgx_norm_forward (b, &self->final_norm, &final, &w.last))
        goto op_failed;
    if (logits && s_logits (self, &final, B, L, logits))
        goto done;
    if (last_out) {
        *last_out = vdgx_nn_view (&w.last, 3, s3d);
        last_out->owner = w.last.owner;     //  ownership moves to the caller
        memset (&w.last, 0, sizeof (w.last));
    }
    rc = 0;
    goto done;
op_failed:
    s_set_error (self, "Gemma 3: %s", vdgx_backend_error (b));
done:
    if (rc)
        vdgx_tensor_release (b, hidden);
    s_work_release (b, &w);
    free (host);
    return rc;
}
