/*  vdgx_t5.c - the T5 encoders (umT5 of Wan 2.1, T5-v1.1 of MAGI-1) on the vdgx compute
    layer (see vdgx_t5.h).

    Facts the official code pins down (and the reference vectors check):
    - attention logits are q.k^T with no 1/sqrt(d) scaling, plus the relative position bias
      (umT5: each layer's own; T5-v1.1: block 0's, shared); masked keys get probability 0
      (umT5 sets them to finfo(float32).min, T5-v1.1 adds it: the same softmax);
    - buckets: 32 bidirectional (16 per direction, 8 exact), log-spaced up to max_dist 128,
      the log term computed in float32 and truncated toward zero;
    - T5LayerNorm is x * rsqrt(mean(x^2) + 1e-6) * w (no mean, no bias);
    - FFN is fc2(fc1(x) * gelu_tanh(gate(x))).
*/
#include "vdgx_t5.h"
#include "vdgx_nn.h"
#include "vdgx_util.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdgx_quant.h"

typedef enum {
    S_NORM1, S_Q, S_K, S_V, S_O, S_NORM2, S_GATE, S_FC1, S_FC2, S_POS, S_SLOTS
} s_slot_t;

typedef struct {
    vdgx_tensor_t norm1, norm2;             //  F32 [dim]
    vdgx_weight_t q, k, v, o, gate, fc1, fc2;
    float *pos;                             //  host [num_buckets, heads]
    vdgx_tensor_t bias_cache;               //  F32 [H,L,L] for cached_len (non-CPU backends)
} s_layer_t;

struct _vdgx_t5_t {
    vdgx_t5_config_t cfg;
    vdgx_backend_t *backend;
    vdgx_ckpt_t *ckpt;                      //  open while loading; kept for a mapped embedding
    void *embedding;                        //  [vocab, dim] in emb_dtype: the one host copy
    const void *emb_mapped;                 //  or the same in ckpt's file mapping (kept open)
    vdgx_dtype_t emb_dtype;
    vdgx_wfmt_t wfmt;
    s_layer_t *layers;
    vdgx_tensor_t norm;                     //  final norm, F32 [dim]
    size_t weight_bytes;
    int cached_len;                         //  L of the cached biases, 0 = none
    bool cache_bias;
    vdgx_t5_tap_fn *tap;
    void *tap_arg;
    char error [512];
};

static void
s_set_error (vdgx_t5_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof (self->error), fmt, args);
    va_end (args);
}

//  Tensor name of a slot in either naming scheme; layer -1 names the globals.
static void
s_name (char *buf, size_t size, bool hf, int layer, int slot)
{
    static const char *official [S_SLOTS] = {
        "norm1.weight", "attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight",
        "norm2.weight", "ffn.gate.0.weight", "ffn.fc1.weight", "ffn.fc2.weight",
        "pos_embedding.embedding.weight" };
    //  HF UMT5: wi_0 goes through the activation (= gate), wi_1 is linear (= fc1), wo = fc2.
    static const char *hfname [S_SLOTS] = {
        "layer.0.layer_norm.weight", "layer.0.SelfAttention.q.weight",
        "layer.0.SelfAttention.k.weight", "layer.0.SelfAttention.v.weight",
        "layer.0.SelfAttention.o.weight", "layer.1.layer_norm.weight",
        "layer.1.DenseReluDense.wi_0.weight", "layer.1.DenseReluDense.wi_1.weight",
        "layer.1.DenseReluDense.wo.weight",
        "layer.0.SelfAttention.relative_attention_bias.weight" };
    if (hf)
        snprintf (buf, size, "encoder.block.%d.%s", layer, hfname [slot]);
    else
        snprintf (buf, size, "blocks.%d.%s", layer, official [slot]);
}

static bool
s_has_shape (vdgx_t5_shape_fn *fn, void *arg, const char *name, int ndim, int64_t d0,
             int64_t d1, char **err)
{
    int got_ndim = 0;
    int64_t shape [VDGX_MAX_DIMS] = { 0 };
    if (!fn (arg, name, &got_ndim, shape)) {
        *err = vdgx_strdupf ("T5 checkpoint: missing tensor '%s'", name);
        return false;
    }
    if (got_ndim != ndim || shape [0] != d0 || (ndim > 1 && shape [1] != d1)) {
        *err = ndim > 1
             ? vdgx_strdupf ("T5 checkpoint: '%s' has shape [%lld%s%lld], expected [%lld, %lld]",
                          name, (long long) shape [0], got_ndim > 1? ", ": " / ndim ",
                          got_ndim > 1? (long long) shape [1]: (long long) got_ndim,
                          (long long) d0, (long long) d1)
             : vdgx_strdupf ("T5 checkpoint: '%s' has %d dims / first %lld, expected [%lld]",
                          name, got_ndim, (long long) shape [0], (long long) d0);
        return false;
    }
    return true;
}

int
vdgx_t5_layout (vdgx_t5_shape_fn *fn, void *arg, vdgx_t5_config_t *cfg, char **err)
{
    assert (fn && cfg && err);
    *err = NULL;
    memset (cfg, 0, sizeof (*cfg));
    cfg->max_dist = 128;
    cfg->eps = 1e-6f;
    int ndim = 0;
    int64_t shape [VDGX_MAX_DIMS] = { 0 };
    const char *emb = NULL;
    if (fn (arg, "token_embedding.weight", &ndim, shape))
        emb = "token_embedding.weight";
    else
    if (fn (arg, "shared.weight", &ndim, shape))
        emb = "shared.weight";
    else
    if (fn (arg, "encoder.embed_tokens.weight", &ndim, shape))
        emb = "encoder.embed_tokens.weight";
    if (!emb) {
        *err = strdup ("T5 checkpoint: no token embedding (token_embedding.weight, "
                       "shared.weight or encoder.embed_tokens.weight)");
        return -1;
    }
    cfg->hf_names = strcmp (emb, "token_embedding.weight") != 0;
    if (ndim != 2 || shape [0] < 2 || shape [1] < 1 || shape [0] > INT32_MAX || shape [1] > 65536) {
        *err = vdgx_strdupf ("T5 checkpoint: %s must be [vocab, dim]", emb);
        return -1;
    }
    cfg->vocab = (int) shape [0];
    cfg->dim = (int) shape [1];

    char name [256];
    //  Layer count: consecutive blocks with a first norm.
    for (int i = 0; i < 4096; i++) {
        s_name (name, sizeof (name), cfg->hf_names, i, S_NORM1);
        if (!fn (arg, name, &ndim, shape))
            break;
        cfg->num_layers = i + 1;
    }
    if (cfg->num_layers == 0) {
        *err = strdup ("T5 checkpoint: no encoder blocks");
        return -1;
    }
    s_name (name, sizeof (name), cfg->hf_names, 0, S_Q);
    if (!fn (arg, name, &ndim, shape) || ndim != 2 || shape [0] < 1 || shape [0] > 65536) {
        *err = vdgx_strdupf ("T5 checkpoint: missing or malformed '%s'", name);
        return -1;
    }
    cfg->dim_attn = (int) shape [0];
    s_name (name, sizeof (name), cfg->hf_names, 0, S_FC1);
    if (!fn (arg, name, &ndim, shape) || ndim != 2 || shape [0] < 1 || shape [0] > 1 << 20) {
        *err = vdgx_strdupf ("T5 checkpoint: missing or malformed '%s'", name);
        return -1;
    }
    cfg->dim_ffn = (int) shape [0];
    s_name (name, sizeof (name), cfg->hf_names, 0, S_POS);
    if (!fn (arg, name, &ndim, shape) || ndim != 2 || shape [0] < 2 || shape [0] > 1024
     || shape [1] < 1 || shape [1] > 4096) {
        *err = vdgx_strdupf ("T5 checkpoint: missing or malformed '%s' (the relative position "
                          "table of block 0)", name);
        return -1;
    }
    cfg->num_buckets = (int) shape [0];
    cfg->num_heads = (int) shape [1];
    //  umT5 has a table in every block; T5-v1.1 in block 0 only (shared by all blocks).
    if (cfg->num_layers > 1) {
        s_name (name, sizeof (name), cfg->hf_names, 1, S_POS);
        cfg->shared_bias = !fn (arg, name, &ndim, shape);
    }
    if (cfg->dim_attn % cfg->num_heads) {
        *err = vdgx_strdupf ("T5 checkpoint: attention width %d is not a multiple of %d heads",
                          cfg->dim_attn, cfg->num_heads);
        return -1;
    }
    const int64_t D = cfg->dim, A = cfg->dim_attn, F = cfg->dim_ffn;
    for (int i = 0; i < cfg->num_layers; i++) {
        const struct { int slot, ndim; int64_t d0, d1; } want [] = {
            { S_NORM1, 1, D, 0 }, { S_Q, 2, A, D }, { S_K, 2, A, D }, { S_V, 2, A, D },
            { S_O, 2, D, A }, { S_NORM2, 1, D, 0 }, { S_GATE, 2, F, D }, { S_FC1, 2, F, D },
            { S_FC2, 2, D, F }, { S_POS, 2, cfg->num_buckets, cfg->num_heads } };
        for (size_t j = 0; j < sizeof (want) / sizeof (want [0]); j++) {
            if (want [j].slot == S_POS && cfg->shared_bias && i > 0) {
                //  A table in a later block of a shared-bias model is a layout we do not know.
                s_name (name, sizeof (name), cfg->hf_names, i, S_POS);
                if (fn (arg, name, &ndim, shape)) {
                    *err = vdgx_strdupf ("T5 checkpoint: '%s' exists but block 1 has no relative "
                                         "position table (neither per-layer nor shared)", name);
                    return -1;
                }
                continue;
            }
            s_name (name, sizeof (name), cfg->hf_names, i, want [j].slot);
            if (!s_has_shape (fn, arg, name, want [j].ndim, want [j].d0, want [j].d1, err))
                return -1;
        }
    }
    if (!s_has_shape (fn, arg, cfg->hf_names? "encoder.final_layer_norm.weight": "norm.weight",
                      1, D, 0, err))
        return -1;
    return 0;
}

//  Shape lookup over an open checkpoint.
static bool
s_ckpt_shape (void *arg, const char *name, int *ndim, int64_t *shape)
{
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find ((vdgx_ckpt_t *) arg, name);
    if (!t)
        return false;
    *ndim = t->ndim;
    memcpy (shape, t->shape, sizeof (int64_t) * (size_t) t->ndim);
    return true;
}

int
vdgx_t5_bucket (int rel, int num_buckets, int max_dist)
{
    int half = num_buckets / 2;
    int bucket = rel > 0? half: 0;
    int dist = rel < 0? -rel: rel;
    int max_exact = half / 2;
    if (dist < max_exact)
        return bucket + dist;
    //  The official code evaluates this in float32 and truncates (.long()); each step is
    //  rounded to float as torch does: log(dist / max_exact) / log(max_dist / max_exact)
    //  (a Python double rounded to float) * (half - max_exact).
    float ratio = (float) dist / (float) max_exact;
    float scaled = logf (ratio) / (float) log ((double) max_dist / max_exact);
    scaled = scaled * (float) (half - max_exact);
    long large = max_exact + (long) scaled;
    if (large > half - 1)
        large = half - 1;
    return bucket + (int) large;
}

void
vdgx_t5_pos_bias (const float *table, int heads, int num_buckets, int max_dist, int lq,
                   int lk, float *bias)
{
    //  The bias depends on k - q only: one row of lq + lk - 1 values per head.
    int span = lq + lk - 1;
    float *row = (float *) malloc (sizeof (float) * (size_t) span);
    assert (row);
    for (int h = 0; h < heads; h++) {
        for (int r = 0; r < span; r++)
            row [r] = table [(size_t) vdgx_t5_bucket (r - (lq - 1), num_buckets, max_dist) * heads + h];
        for (int q = 0; q < lq; q++)
            memcpy (bias + ((size_t) h * lq + q) * lk, row + (lq - 1 - q), sizeof (float) * (size_t) lk);
    }
    free (row);
}

//  A checkpoint tensor as f32 (caller frees); FP8 tensors with a "<module>.scale_weight"
//  beside them (ComfyUI scaled-fp8 files) are rescaled.
static float *
s_read_f32 (vdgx_t5_t *self, const char *name, size_t *numel)
{
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (self->ckpt, name);
    if (!t) {
        s_set_error (self, "T5 checkpoint: missing tensor '%s'", name);
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t) t->shape [i];
    float *buf = (float *) malloc (sizeof (float) * (n? n: 1));
    if (!buf) {
        s_set_error (self, "out of memory reading '%s'", name);
        return NULL;
    }
    char *err = NULL;
    if (vdgx_ckpt_read_f32 (t, buf, &err)) {
        s_set_error (self, "T5 checkpoint: '%s': %s", name, err? err: "cannot read");
        free (err);
        free (buf);
        return NULL;
    }
    if (t->dtype == VDGX_DTYPE_F8_E4M3 || t->dtype == VDGX_DTYPE_F8_E5M2) {
        char sname [300];
        snprintf (sname, sizeof (sname), "%s", name);
        char *dot = strrchr (sname, '.');
        if (dot && strcmp (dot, ".weight") == 0) {
            strcpy (dot, ".scale_weight");
            const vdgx_ckpt_tensor_t *s = vdgx_ckpt_find (self->ckpt, sname);
            float scale = 1.0f;
            if (s && s->nbytes >= 1 && vdgx_ckpt_read_f32 (s, &scale, NULL) == 0 && isfinite (scale))
                for (size_t i = 0; i < n; i++)
                    buf [i] *= scale;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite (buf [i])) {
            s_set_error (self, "T5 checkpoint: '%s' holds a non-finite value", name);
            free (buf);
            return NULL;
        }
    if (numel)
        *numel = n;
    return buf;
}

static int
s_load_linear (vdgx_t5_t *self, const char *name, int64_t n, int64_t k, vdgx_weight_t *dst)
{
    float *buf = s_read_f32 (self, name, NULL);
    if (!buf)
        return -1;
    vdgx_weight_t host;
    memset (&host, 0, sizeof (host));
    int rc = 0;
    if (self->wfmt == VDGX_WFMT_F32 || self->wfmt == VDGX_WFMT_BF16 || self->wfmt == VDGX_WFMT_F16) {
        vdgx_dtype_t dt = self->wfmt == VDGX_WFMT_F32? VDGX_DTYPE_F32:
                          self->wfmt == VDGX_WFMT_BF16? VDGX_DTYPE_BF16: VDGX_DTYPE_F16;
        host.fmt = self->wfmt;
        host.n = n;
        host.k = k;
        host.global_scale = 1.0f;
        host.device = VDGX_DEVICE_CPU;
        if (dt == VDGX_DTYPE_F32) {
            host.data = buf;
            buf = NULL;
        }
        else {
            host.data = malloc ((size_t) (n * k) * vdgx_dtype_size (dt));
            if (!host.data || vdgx_convert_from_f32 (host.data, dt, buf, (size_t) (n * k)))
                rc = -1;
        }
        if (rc == 0 && vdgx_weight_to_backend (self->backend, dst, &host))
            rc = -1;
        if (rc)
            s_set_error (self, "cannot place '%s' on %s: %s", name,
                         vdgx_backend_name (self->backend), vdgx_backend_error (self->backend));
        free (host.data);
    }
    else {
        char *err = NULL;
        if (vdgx_weight_quantize (&host, self->wfmt, buf, n, k, true, &err)) {
            s_set_error (self, "cannot quantize '%s' to %s: %s", name,
                         vdgx_wfmt_name (self->wfmt), err? err: "unknown error");
            free (err);
            rc = -1;
        }
        else {
            if (vdgx_weight_to_backend (self->backend, dst, &host)) {
                s_set_error (self, "cannot place '%s' on %s: %s", name,
                             vdgx_backend_name (self->backend), vdgx_backend_error (self->backend));
                rc = -1;
            }
            vdgx_weight_host_free (&host);
        }
    }
    free (buf);
    if (rc == 0)
        self->weight_bytes += vdgx_wfmt_bytes (self->wfmt, n, k);
    return rc;
}

static int
s_load_norm (vdgx_t5_t *self, const char *name, vdgx_tensor_t *dst)
{
    float *buf = s_read_f32 (self, name, NULL);
    if (!buf)
        return -1;
    int64_t shape [1] = { self->cfg.dim };
    int rc = 0;
    if (vdgx_tensor_alloc (self->backend, dst, VDGX_DTYPE_F32, 1, shape)
     || vdgx_tensor_from_f32 (self->backend, dst, buf)) {
        s_set_error (self, "cannot place '%s' on %s: %s", name,
                     vdgx_backend_name (self->backend), vdgx_backend_error (self->backend));
        rc = -1;
    }
    free (buf);
    self->weight_bytes += sizeof (float) * (size_t) self->cfg.dim;
    return rc;
}

vdgx_t5_t *
vdgx_t5_new_from_ckpt (vdgx_ckpt_t **ckpt_p, vdgx_backend_t *backend, vdgx_wfmt_t wfmt,
                        char **err)
{
    assert (ckpt_p && *ckpt_p && backend && err);
    *err = NULL;
    if (wfmt != VDGX_WFMT_F32 && wfmt != VDGX_WFMT_BF16 && wfmt != VDGX_WFMT_F16
     && wfmt != VDGX_WFMT_FP8_E4M3) {
        *err = vdgx_strdupf ("T5: weight format %s is not supported (f32, bf16, f16, fp8)",
                          vdgx_wfmt_name (wfmt));
        vdgx_ckpt_destroy (ckpt_p);
        return NULL;
    }
    vdgx_t5_t *self = (vdgx_t5_t *) calloc (1, sizeof (vdgx_t5_t));
    if (!self) {
        *err = strdup ("out of memory");
        vdgx_ckpt_destroy (ckpt_p);
        return NULL;
    }
    self->ckpt = *ckpt_p;
    *ckpt_p = NULL;
    self->backend = backend;
    self->wfmt = wfmt;
    self->cache_bias = vdgx_backend_device (backend) != VDGX_DEVICE_CPU;
    if (vdgx_t5_layout (s_ckpt_shape, self->ckpt, &self->cfg, err)) {
        vdgx_t5_destroy (&self);
        return NULL;
    }
    const vdgx_t5_config_t *c = &self->cfg;
    const vdgx_ckpt_tensor_t *emb = vdgx_ckpt_find (self->ckpt, c->hf_names
        ? (vdgx_ckpt_find (self->ckpt, "shared.weight")? "shared.weight": "encoder.embed_tokens.weight")
        : "token_embedding.weight");
    vdgx_dtype_t edt = emb->dtype;
    if (edt != VDGX_DTYPE_F32 && edt != VDGX_DTYPE_BF16 && edt != VDGX_DTYPE_F16
     && edt != VDGX_DTYPE_F8_E4M3 && edt != VDGX_DTYPE_F8_E5M2 && edt != VDGX_DTYPE_F64) {
        *err = vdgx_strdupf ("T5 checkpoint: token embedding dtype %s is not a float type",
                          vdgx_dtype_name (emb->dtype));
        vdgx_t5_destroy (&self);
        return NULL;
    }
    self->layers = (s_layer_t *) calloc ((size_t) c->num_layers, sizeof (s_layer_t));
    if (!self->layers) {
        *err = strdup ("out of memory");
        vdgx_t5_destroy (&self);
        return NULL;
    }
    char name [256];
    int rc = 0;
    for (int i = 0; i < c->num_layers && rc == 0; i++) {
        s_layer_t *l = &self->layers [i];
        const struct { int slot; vdgx_weight_t *w; int64_t n, k; } lin [] = {
            { S_Q, &l->q, c->dim_attn, c->dim }, { S_K, &l->k, c->dim_attn, c->dim },
            { S_V, &l->v, c->dim_attn, c->dim }, { S_O, &l->o, c->dim, c->dim_attn },
            { S_GATE, &l->gate, c->dim_ffn, c->dim }, { S_FC1, &l->fc1, c->dim_ffn, c->dim },
            { S_FC2, &l->fc2, c->dim, c->dim_ffn } };
        for (size_t j = 0; j < sizeof (lin) / sizeof (lin [0]) && rc == 0; j++) {
            s_name (name, sizeof (name), c->hf_names, i, lin [j].slot);
            rc = s_load_linear (self, name, lin [j].n, lin [j].k, lin [j].w);
        }
        if (rc == 0) {
            s_name (name, sizeof (name), c->hf_names, i, S_NORM1);
            rc = s_load_norm (self, name, &l->norm1);
        }
        if (rc == 0) {
            s_name (name, sizeof (name), c->hf_names, i, S_NORM2);
            rc = s_load_norm (self, name, &l->norm2);
        }
        if (rc == 0 && (i == 0 || !c->shared_bias)) {
            s_name (name, sizeof (name), c->hf_names, i, S_POS);
            l->pos = s_read_f32 (self, name, NULL);
            rc = l->pos? 0: -1;
        }
        vdgx_ckpt_release_pages (self->ckpt);  //  this layer's file pages, now converted
    }
    //  The token embedding: one host copy (rows are gathered on the host). From a mapped
    //  file that copy is the mapping itself: the checkpoint stays open, its pages read while
    //  loading are given back, and only the rows of the prompts seen become resident (256K
    //  rows x 4096 of umT5 are 2 GB in BF16). From a caller's buffer it is copied and the
    //  checkpoint closed.
    bool keep_map = vdgx_ckpt_mapped (self->ckpt);
    if (rc == 0 && keep_map) {
        self->emb_dtype = emb->dtype;
        self->emb_mapped = emb->data;
    }
    else
    if (rc == 0) {
        self->emb_dtype = emb->dtype;
        self->embedding = malloc (emb->nbytes);
        if (!self->embedding) {
            s_set_error (self, "T5: out of memory for the token embedding");
            rc = -1;
        }
        else
            memcpy (self->embedding, emb->data, emb->nbytes);
    }
    if (rc == 0)
        rc = s_load_norm (self, c->hf_names? "encoder.final_layer_norm.weight": "norm.weight",
                          &self->norm);
    if (rc) {
        *err = strdup (self->error);
        vdgx_t5_destroy (&self);
        return NULL;
    }
    if (keep_map)
        vdgx_ckpt_release_pages (self->ckpt);
    else
        vdgx_ckpt_destroy (&self->ckpt);
    return self;
}

vdgx_t5_t *
vdgx_t5_new (const char *path, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err)
{
    assert (path && backend && err);
    *err = NULL;
    struct stat st;
    char file [4096];
    if (stat (path, &st) != 0) {
        *err = vdgx_strdupf ("T5: cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    snprintf (file, sizeof (file), "%s", path);
    if (S_ISDIR (st.st_mode)) {
        //  A text_encoder/ folder or a model folder holding one (the engine names its own files).
        static const char *candidates [] = {
            "model.safetensors.index.json",
            "model.safetensors", "text_encoder/model.safetensors.index.json",
            "text_encoder/model.safetensors",
            //  HF torch.save shards (MAGI-1's ckpt/t5/t5-v1_1-xxl)
            "pytorch_model.bin.index.json", "pytorch_model.bin" };
        bool found = false;
        for (size_t i = 0; i < sizeof (candidates) / sizeof (candidates [0]) && !found; i++) {
            snprintf (file, sizeof (file), "%s/%s", path, candidates [i]);
            found = vdgx_is_file (file);
        }
        if (!found) {
            *err = vdgx_strdupf ("T5: '%s' holds none of model.safetensors[.index.json], "
                              "text_encoder/, pytorch_model.bin[.index.json]", path);
            return NULL;
        }
    }
    char *cerr = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &cerr);
    if (!ckpt) {
        *err = vdgx_strdupf ("T5: %s: %s", file, cerr? cerr: "cannot open");
        free (cerr);
        return NULL;
    }
    return vdgx_t5_new_from_ckpt (&ckpt, backend, wfmt, err);
}

void
vdgx_t5_destroy (vdgx_t5_t **self_p)
{
    assert (self_p);
    vdgx_t5_t *self = *self_p;
    if (!self)
        return;
    if (self->layers) {
        for (int i = 0; i < self->cfg.num_layers; i++) {
            s_layer_t *l = &self->layers [i];
            vdgx_weight_t *w [] = { &l->q, &l->k, &l->v, &l->o, &l->gate, &l->fc1, &l->fc2 };
            for (size_t j = 0; j < sizeof (w) / sizeof (w [0]); j++)
                if (w [j]->data)
                    vdgx_weight_release (self->backend, w [j]);
            if (l->norm1.data)
                vdgx_tensor_release (self->backend, &l->norm1);
            if (l->norm2.data)
                vdgx_tensor_release (self->backend, &l->norm2);
            if (l->bias_cache.data)
                vdgx_tensor_release (self->backend, &l->bias_cache);
            free (l->pos);
        }
        free (self->layers);
    }
    if (self->norm.data)
        vdgx_tensor_release (self->backend, &self->norm);
    vdgx_ckpt_destroy (&self->ckpt);
    free (self->embedding);
    free (self);
    *self_p = NULL;
}

const vdgx_t5_config_t *
vdgx_t5_config (vdgx_t5_t *self)
{
    assert (self);
    return &self->cfg;
}

const char *
vdgx_t5_error (vdgx_t5_t *self)
{
    assert (self);
    return self->error;
}

size_t
vdgx_t5_weight_bytes (vdgx_t5_t *self)
{
    assert (self);
    return self->weight_bytes;
}

void
vdgx_t5_set_tap (vdgx_t5_t *self, vdgx_t5_tap_fn *fn, void *arg)
{
    assert (self);
    self->tap = fn;
    self->tap_arg = arg;
}

//  Work tensors of one forward.
typedef struct {
    vdgx_tensor_t x, x32, h, q, k, v, att, y, g, ga, f, p, bias;
} s_work_t;

static void
s_work_release (vdgx_backend_t *b, s_work_t *w)
{
    vdgx_tensor_t *all [] = { &w->x, &w->x32, &w->h, &w->q, &w->k, &w->v, &w->att, &w->y, &w->g,
                              &w->ga, &w->f, &w->p, &w->bias };
    for (size_t i = 0; i < sizeof (all) / sizeof (all [0]); i++)
        if (all [i]->data)
            vdgx_tensor_release (b, all [i]);
}

//  The official code sets masked logits to finfo(float32).min (replacing the bias), which
//  absorbs q.k and gives those keys weight exactly 0. -1e30 does the same in f32 (q.k is far
//  below its ulp) and stays finite when a backend rescales logits (e.g. by log2(e)).
#define S_MASKED (-1e30f)

//  Bias of layer i for length L into `bias` (F32 [H,L,L]); masked keys of sequence `seq`
//  set to finfo.min when mask is given (the official masked_fill replaces the bias).
static int
s_layer_bias (vdgx_t5_t *self, int i, int L, const uint8_t *mask, float *host,
              vdgx_tensor_t *bias)
{
    const vdgx_t5_config_t *c = &self->cfg;
    vdgx_t5_pos_bias (self->layers [c->shared_bias? 0: i].pos, c->num_heads, c->num_buckets,
                      c->max_dist, L, L, host);
    if (mask) {
        for (size_t r = 0; r < (size_t) c->num_heads * L; r++)
            for (int k = 0; k < L; k++)
                if (!mask [k])
                    host [r * L + k] = S_MASKED;
    }
    return vdgx_tensor_from_f32 (self->backend, bias, host);
}

int
vdgx_t5_forward (vdgx_t5_t *self, const int32_t *ids, const uint8_t *mask, int batch,
                  int len, vdgx_tensor_t *out)
{
    assert (self && ids && out);
    memset (out, 0, sizeof (*out));
    const vdgx_t5_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    if (batch < 1 || len < 1 || (int64_t) batch * len > (1 << 24)) {
        s_set_error (self, "T5: bad batch %d x length %d", batch, len);
        return -1;
    }
    const int64_t B = batch, L = len, M = B * L, D = c->dim, A = c->dim_attn, F = c->dim_ffn;
    const int64_t H = c->num_heads, HD = A / H;
    for (int64_t i = 0; i < M; i++)
        if (ids [i] < 0 || ids [i] >= c->vocab) {
            s_set_error (self, "T5: token id %d at %lld is outside the vocabulary (%d)",
                         ids [i], (long long) i, c->vocab);
            return -1;
        }
    //  A sequence needs its own bias only when some of its keys are masked.
    bool masked = false;
    if (mask)
        for (int64_t i = 0; i < M && !masked; i++)
            masked = mask [i] == 0;
    const vdgx_dtype_t act = vdgx_backend_act_dtype (b);

    s_work_t w;
    memset (&w, 0, sizeof (w));
    float *host = NULL;
    int rc = -1;
    const int64_t sx [3] = { B, L, D }, sq [2] = { M, A }, sd [2] = { M, D }, sf [2] = { M, F };
    const int64_t sbias [3] = { H, L, L };
    if (vdgx_tensor_alloc (b, &w.x, act, 3, sx) || vdgx_tensor_alloc (b, &w.h, act, 2, sd)
     || vdgx_tensor_alloc (b, &w.q, act, 2, sq) || vdgx_tensor_alloc (b, &w.k, act, 2, sq)
     || vdgx_tensor_alloc (b, &w.v, act, 2, sq) || vdgx_tensor_alloc (b, &w.att, act, 2, sq)
     || vdgx_tensor_alloc (b, &w.y, act, 2, sd) || vdgx_tensor_alloc (b, &w.g, act, 2, sf)
     || vdgx_tensor_alloc (b, &w.ga, act, 2, sf) || vdgx_tensor_alloc (b, &w.f, act, 2, sf)
     || vdgx_tensor_alloc (b, &w.p, act, 2, sf)) {
        s_set_error (self, "T5: cannot allocate work tensors: %s", vdgx_backend_error (b));
        goto done;
    }
    //  Embedding rows are gathered on the host from the mapped checkpoint.
    size_t hsize = (size_t) (M * D);
    if ((size_t) (H * L * L) > hsize)
        hsize = (size_t) (H * L * L);
    host = (float *) malloc (sizeof (float) * hsize);
    if (!host) {
        s_set_error (self, "T5: out of memory");
        goto done;
    }
    size_t esize = vdgx_dtype_size (self->emb_dtype);
    for (int64_t i = 0; i < M; i++)
        vdgx_convert_to_f32 (host + i * D, (const char *) (self->emb_mapped? self->emb_mapped: self->embedding)
                             + (size_t) ids [i] * D * esize,
                             self->emb_dtype, (size_t) D);
    //  Reduced-precision backends: upload f32 as is and cast on the device (the host-side
    //  conversion would cost more than a layer on a GPU).
    if (act == VDGX_DTYPE_F32? vdgx_tensor_from_f32 (b, &w.x, host) != 0:
        (vdgx_tensor_alloc (b, &w.x32, VDGX_DTYPE_F32, 3, sx) || vdgx_tensor_from_f32 (b, &w.x32, host)
         || vdgx_op_cast (b, &w.x, &w.x32))) {
        s_set_error (self, "T5: upload failed: %s", vdgx_backend_error (b));
        goto done;
    }
    bool use_cache = self->cache_bias && !masked;
    if (!use_cache && vdgx_tensor_alloc (b, &w.bias, VDGX_DTYPE_F32, 3, sbias)) {
        s_set_error (self, "T5: cannot allocate the bias: %s", vdgx_backend_error (b));
        goto done;
    }
    if (use_cache && self->cached_len != len) {
        for (int i = 0; i < c->num_layers; i++)
            if (self->layers [i].bias_cache.data)
                vdgx_tensor_release (b, &self->layers [i].bias_cache);
        self->cached_len = 0;
        for (int i = 0; i < (c->shared_bias? 1: c->num_layers); i++)
            if (vdgx_tensor_alloc (b, &self->layers [i].bias_cache, VDGX_DTYPE_F32, 3, sbias)
             || s_layer_bias (self, i, len, NULL, host, &self->layers [i].bias_cache)) {
                s_set_error (self, "T5: cannot build the position bias: %s", vdgx_backend_error (b));
                goto done;
            }
        self->cached_len = len;
    }

    vdgx_tensor_t x2 = vdgx_nn_view (&w.x, 2, sd);
    const int64_t s4 [4] = { B, L, H, HD }, s1 [4] = { 1, L, H, HD }, y3 [3] = { B, L, D };
    vdgx_tensor_t q4 = vdgx_nn_view (&w.q, 4, s4), k4 = vdgx_nn_view (&w.k, 4, s4), v4 = vdgx_nn_view (&w.v, 4, s4);
    vdgx_tensor_t o4 = vdgx_nn_view (&w.att, 4, s4), y_3 = vdgx_nn_view (&w.y, 3, y3);
    char tapname [64];
    for (int i = 0; i < c->num_layers; i++) {
        s_layer_t *l = &self->layers [i];
        if (vdgx_op_rmsnorm (b, &w.h, &x2, &l->norm1, c->eps)
         || vdgx_op_linear (b, &w.q, &w.h, &l->q, NULL)
         || vdgx_op_linear (b, &w.k, &w.h, &l->k, NULL)
         || vdgx_op_linear (b, &w.v, &w.h, &l->v, NULL))
            goto op_failed;
        if (!masked) {
            vdgx_tensor_t *bias = use_cache? &self->layers [c->shared_bias? 0: i].bias_cache: &w.bias;
            if (!use_cache && (i == 0 || !c->shared_bias) && s_layer_bias (self, i, len, NULL, host, bias))
                goto op_failed;
            if (self->tap) {
                snprintf (tapname, sizeof (tapname), "pos_bias.%d", i);
                self->tap (self->tap_arg, tapname, bias);
            }
            if (vdgx_op_attention (b, &o4, &q4, &k4, &v4, NULL, bias, 1.0f))
                goto op_failed;
        }
        else {
            if (self->tap) {
                if (s_layer_bias (self, i, len, NULL, host, &w.bias))
                    goto op_failed;
                snprintf (tapname, sizeof (tapname), "pos_bias.%d", i);
                self->tap (self->tap_arg, tapname, &w.bias);
            }
            //  Each sequence has its own masked columns: attention one sequence at a time
            //  on views into the batched q/k/v.
            size_t step = (size_t) (L * A) * vdgx_dtype_size (act);
            for (int64_t s = 0; s < B; s++) {
                vdgx_tensor_t qs, ks, vs, os;
                vdgx_tensor_init (&qs, act, 4, s1, (char *) w.q.data + s * step, w.q.device);
                vdgx_tensor_init (&ks, act, 4, s1, (char *) w.k.data + s * step, w.k.device);
                vdgx_tensor_init (&vs, act, 4, s1, (char *) w.v.data + s * step, w.v.device);
                vdgx_tensor_init (&os, act, 4, s1, (char *) w.att.data + s * step, w.att.device);
                if (s_layer_bias (self, i, len, mask + s * L, host, &w.bias)
                 || vdgx_op_attention (b, &os, &qs, &ks, &vs, NULL, &w.bias, 1.0f))
                    goto op_failed;
            }
        }
        if (vdgx_op_linear (b, &w.y, &w.att, &l->o, NULL)
         || vdgx_op_gated_residual (b, &w.x, &y_3, NULL)
         || vdgx_op_rmsnorm (b, &w.h, &x2, &l->norm2, c->eps)
         || vdgx_op_linear (b, &w.g, &w.h, &l->gate, NULL)
         || vdgx_op_gelu_tanh (b, &w.ga, &w.g)
         || vdgx_op_linear (b, &w.f, &w.h, &l->fc1, NULL)
         || vdgx_op_mul (b, &w.p, &w.f, &w.ga)
         || vdgx_op_linear (b, &w.y, &w.p, &l->fc2, NULL)
         || vdgx_op_gated_residual (b, &w.x, &y_3, NULL))
            goto op_failed;
        if (self->tap) {
            snprintf (tapname, sizeof (tapname), "blocks.%d", i);
            self->tap (self->tap_arg, tapname, &w.x);
        }
    }
    if (vdgx_tensor_alloc (b, out, act, 3, sx)) {
        s_set_error (self, "T5: cannot allocate the output: %s", vdgx_backend_error (b));
        goto done;
    }
    vdgx_tensor_t out2 = vdgx_nn_view (out, 2, sd);
    if (vdgx_op_rmsnorm (b, &out2, &x2, &self->norm, c->eps)) {
        vdgx_tensor_release (b, out);
        memset (out, 0, sizeof (*out));
        goto op_failed;
    }
    rc = 0;
    goto done;
op_failed:
    s_set_error (self, "T5: op failed on %s: %s", vdgx_backend_name (b), vdgx_backend_error (b));
done:
    free (host);
    s_work_release (b, &w);
    return rc;
}

int
vdgx_t5_encode (vdgx_t5_t *self, const int32_t *ids, int n, int text_len, vdgx_tensor_t *out)
{
    assert (self && ids && out);
    memset (out, 0, sizeof (*out));
    if (n < 1 || n > text_len) {
        s_set_error (self, "T5: %d tokens do not fit text_len %d", n, text_len);
        return -1;
    }
    vdgx_tensor_t enc;
    if (vdgx_t5_forward (self, ids, NULL, 1, n, &enc))
        return -1;
    vdgx_backend_t *b = self->backend;
    const int64_t D = self->cfg.dim;
    const int64_t s_real [2] = { n, D }, s_pad [2] = { text_len - n, D }, s_out [2] = { text_len, D };
    if (n == text_len) {
        //  Nothing to pad: hand over the buffer itself as [text_len, dim].
        *out = enc;
        out->ndim = 2;
        out->shape [0] = text_len;
        out->shape [1] = D;
        out->stride [0] = D;
        out->stride [1] = 1;
        return 0;
    }
    //  The padding rows are exact zeros (the DiT embeds them itself).
    vdgx_tensor_t real = vdgx_nn_view (&enc, 2, s_real);
    int rc = -1;
    vdgx_tensor_t zeros;
    memset (&zeros, 0, sizeof (zeros));
    float *host = (float *) calloc ((size_t) ((text_len - n) * D), sizeof (float));
    const vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    if (host && vdgx_tensor_alloc (b, &zeros, act, 2, s_pad) == 0
     && vdgx_tensor_from_f32 (b, &zeros, host) == 0
     && vdgx_tensor_alloc (b, out, act, 2, s_out) == 0) {
        if (vdgx_op_concat (b, out, &real, &zeros, 0) == 0)
            rc = 0;
        else {
            vdgx_tensor_release (b, out);
            memset (out, 0, sizeof (*out));
        }
    }
    if (rc)
        s_set_error (self, "T5: cannot pad the context: %s", vdgx_backend_error (b));
    free (host);
    if (zeros.data)
        vdgx_tensor_release (b, &zeros);
    vdgx_tensor_release (b, &enc);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

#include <jansson.h>

typedef struct {
    json_t *tensors;        //  name -> shape array (real_checkpoint_layout.json)
    bool to_hf;             //  look the names up through the HF -> official mapping
    const char *broken;     //  a name reported with a wrong shape
} s_layout_arg_t;

//  HF name -> official name (test helper; the loader goes the other way).
static bool
s_hf_to_official (const char *hf, char *out, size_t size)
{
    if (strcmp (hf, "shared.weight") == 0) {
        snprintf (out, size, "token_embedding.weight");
        return true;
    }
    if (strcmp (hf, "encoder.final_layer_norm.weight") == 0) {
        snprintf (out, size, "norm.weight");
        return true;
    }
    int layer;
    char rest [200];
    if (sscanf (hf, "encoder.block.%d.%199s", &layer, rest) != 2)
        return false;
    for (int slot = 0; slot < S_SLOTS; slot++) {
        char a [256], b [256];
        s_name (a, sizeof (a), true, layer, slot);
        if (strcmp (a, hf) == 0) {
            s_name (b, sizeof (b), false, layer, slot);
            snprintf (out, size, "%s", b);
            return true;
        }
    }
    return false;
}

static bool
s_layout_shape (void *argp, const char *name, int *ndim, int64_t *shape)
{
    s_layout_arg_t *arg = (s_layout_arg_t *) argp;
    char official [256];
    if (arg->to_hf) {
        if (!s_hf_to_official (name, official, sizeof (official)))
            return false;
        name = official;
    }
    json_t *dims = json_object_get (arg->tensors, name);
    if (!json_is_array (dims))
        return false;
    *ndim = (int) json_array_size (dims);
    for (int i = 0; i < *ndim && i < VDGX_MAX_DIMS; i++)
        shape [i] = json_integer_value (json_array_get (dims, i));
    if (arg->broken && strcmp (arg->broken, name) == 0)
        shape [0] += 1;
    return true;
}

//  ---- A minimal torch.save writer (zip of stored entries + protocol-2 pickle), so the
//  loader is tested on the .pth container the official umT5 checkpoint ships in.

static void
s_put (unsigned char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        *cap = (*len + n) * 2 + 256;
        *buf = (unsigned char *) realloc (*buf, *cap);
        assert (*buf);
    }
    memcpy (*buf + *len, data, n);
    *len += n;
}

static void
s_put_le (unsigned char **buf, size_t *len, size_t *cap, uint64_t v, int bytes)
{
    unsigned char b [8];
    for (int i = 0; i < bytes; i++)
        b [i] = (unsigned char) (v >> (8 * i));
    s_put (buf, len, cap, b, (size_t) bytes);
}

static void
s_put_str (unsigned char **buf, size_t *len, size_t *cap, const char *str)
{
    s_put (buf, len, cap, str, strlen (str));
}

static uint32_t
s_crc32 (const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p [i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void
s_pickle_unicode (unsigned char **buf, size_t *len, size_t *cap, const char *str)
{
    s_put_str (buf, len, cap, "X");
    s_put_le (buf, len, cap, strlen (str), 4);
    s_put_str (buf, len, cap, str);
}

static void
s_pickle_int (unsigned char **buf, size_t *len, size_t *cap, int64_t v)
{
    s_put_str (buf, len, cap, "J");
    s_put_le (buf, len, cap, (uint64_t) v, 4);
}

static int
s_write_pth (const char *path, const vdgx_ckpt_tensor_t *t, size_t n)
{
    //  The pickle: OrderedDict of _rebuild_tensor_v2(persistent storage, 0, size, stride,
    //  False, OrderedDict()), storages keyed "0", "1", ...
    unsigned char *pk = NULL;
    size_t pl = 0, pc = 0;
    s_put (&pk, &pl, &pc, "\x80\x02", 2);
    s_put_str (&pk, &pl, &pc, "ccollections\nOrderedDict\n)R(");
    for (size_t i = 0; i < n; i++) {
        char key [32];
        snprintf (key, sizeof (key), "%zu", i);
        s_pickle_unicode (&pk, &pl, &pc, t [i].name);
        s_put_str (&pk, &pl, &pc, "ctorch._utils\n_rebuild_tensor_v2\n((");
        s_pickle_unicode (&pk, &pl, &pc, "storage");
        s_put_str (&pk, &pl, &pc, "ctorch\nBFloat16Storage\n");
        s_pickle_unicode (&pk, &pl, &pc, key);
        s_pickle_unicode (&pk, &pl, &pc, "cpu");
        s_pickle_int (&pk, &pl, &pc, (int64_t) (t [i].nbytes / 2));
        s_put_str (&pk, &pl, &pc, "tQ");
        s_pickle_int (&pk, &pl, &pc, 0);
        s_put_str (&pk, &pl, &pc, "(");
        for (int d = 0; d < t [i].ndim; d++)
            s_pickle_int (&pk, &pl, &pc, t [i].shape [d]);
        s_put_str (&pk, &pl, &pc, "t(");
        for (int d = 0; d < t [i].ndim; d++)
            s_pickle_int (&pk, &pl, &pc, d + 1 < t [i].ndim? t [i].shape [d + 1]: 1);
        s_put_str (&pk, &pl, &pc, "t\x89");
        s_put_str (&pk, &pl, &pc, "ccollections\nOrderedDict\n)Rt");
        s_put_str (&pk, &pl, &pc, "R");
    }
    s_put_str (&pk, &pl, &pc, "u.");

    //  The zip: stored entries, then the central directory.
    unsigned char *z = NULL, *cd = NULL;
    size_t zl = 0, zc = 0, cl = 0, cc = 0;
    size_t entries = n + 2;
    for (size_t e = 0; e < entries; e++) {
        char name [64];
        const unsigned char *data;
        size_t size;
        if (e == 0) {
            snprintf (name, sizeof (name), "tiny/data.pkl");
            data = pk, size = pl;
        }
        else
        if (e == entries - 1) {
            snprintf (name, sizeof (name), "tiny/version");
            data = (const unsigned char *) "3\n", size = 2;
        }
        else {
            snprintf (name, sizeof (name), "tiny/data/%zu", e - 1);
            data = (const unsigned char *) t [e - 1].data, size = t [e - 1].nbytes;
        }
        uint32_t crc = s_crc32 (data, size);
        size_t offset = zl;
        s_put_le (&z, &zl, &zc, 0x04034b50, 4);
        s_put_le (&z, &zl, &zc, 20, 2);
        s_put_le (&z, &zl, &zc, 0, 2);              //  flags
        s_put_le (&z, &zl, &zc, 0, 2);              //  stored
        s_put_le (&z, &zl, &zc, 0, 4);              //  time, date
        s_put_le (&z, &zl, &zc, crc, 4);
        s_put_le (&z, &zl, &zc, size, 4);
        s_put_le (&z, &zl, &zc, size, 4);
        s_put_le (&z, &zl, &zc, strlen (name), 2);
        s_put_le (&z, &zl, &zc, 0, 2);
        s_put_str (&z, &zl, &zc, name);
        s_put (&z, &zl, &zc, data, size);
        s_put_le (&cd, &cl, &cc, 0x02014b50, 4);
        s_put_le (&cd, &cl, &cc, 20, 2);
        s_put_le (&cd, &cl, &cc, 20, 2);
        s_put_le (&cd, &cl, &cc, 0, 2);
        s_put_le (&cd, &cl, &cc, 0, 2);
        s_put_le (&cd, &cl, &cc, 0, 4);
        s_put_le (&cd, &cl, &cc, crc, 4);
        s_put_le (&cd, &cl, &cc, size, 4);
        s_put_le (&cd, &cl, &cc, size, 4);
        s_put_le (&cd, &cl, &cc, strlen (name), 2);
        s_put_le (&cd, &cl, &cc, 0, 2);             //  extra
        s_put_le (&cd, &cl, &cc, 0, 2);             //  comment
        s_put_le (&cd, &cl, &cc, 0, 2);             //  disk
        s_put_le (&cd, &cl, &cc, 0, 2);             //  internal attributes
        s_put_le (&cd, &cl, &cc, 0, 4);             //  external attributes
        s_put_le (&cd, &cl, &cc, offset, 4);
        s_put_str (&cd, &cl, &cc, name);
    }
    size_t cd_offset = zl;
    s_put (&z, &zl, &zc, cd, cl);
    s_put_le (&z, &zl, &zc, 0x06054b50, 4);
    s_put_le (&z, &zl, &zc, 0, 4);
    s_put_le (&z, &zl, &zc, entries, 2);
    s_put_le (&z, &zl, &zc, entries, 2);
    s_put_le (&z, &zl, &zc, cl, 4);
    s_put_le (&z, &zl, &zc, cd_offset, 4);
    s_put_le (&z, &zl, &zc, 0, 2);
    FILE *f = fopen (path, "wb");
    int rc = (f && fwrite (z, 1, zl, f) == zl)? 0: -1;
    if (f && fclose (f))
        rc = -1;
    free (pk);
    free (z);
    free (cd);
    return rc;
}

//  Relative position tables of a tiny model: random in every block (umT5), block 0 only
//  (T5-v1.1), every block a copy of block 0's, or blocks 0 and 2 only (a broken layout).
typedef enum { S_POS_EACH, S_POS_SHARED, S_POS_COPIES, S_POS_GAP } s_pos_mode_t;

//  Tiny random T5 (BF16) with official or HF names, as safetensors or .pth.
static void
s_write_tiny (const char *path, bool hf, bool pth, int layers, uint32_t seed, s_pos_mode_t pos)
{
    const int V = 64, D = 16, A = 16, F = 24, H = 2, NB = 32;
    size_t max_tensors = 3 + (size_t) layers * S_SLOTS;
    vdgx_ckpt_tensor_t *t = (vdgx_ckpt_tensor_t *) calloc (max_tensors, sizeof (vdgx_ckpt_tensor_t));
    char (*names) [256] = (char (*) [256]) calloc (max_tensors, 256);
    size_t n = 0;
    uint32_t rng = seed;
    for (int i = -1; i <= layers; i++) {
        int slots = (i < 0 || i == layers)? 1: S_SLOTS;
        for (int slot = 0; slot < slots; slot++) {
            int64_t d0, d1 = 0;
            float scale = 0.3f, offset = 0.0f;
            bool later_pos = i > 0 && i < layers && slot == S_POS;
            if (later_pos && (pos == S_POS_SHARED || (pos == S_POS_GAP && i == 1)))
                continue;
            if (i < 0) {
                snprintf (names [n], 256, hf? "shared.weight": "token_embedding.weight");
                d0 = V, d1 = D, scale = 1.0f;
            }
            else
            if (i == layers) {
                snprintf (names [n], 256, hf? "encoder.final_layer_norm.weight": "norm.weight");
                d0 = D, offset = 1.0f;
            }
            else {
                s_name (names [n], 256, hf, i, slot);
                switch (slot) {
                    case S_NORM1: case S_NORM2: d0 = D; offset = 1.0f; break;
                    case S_Q: case S_K: case S_V: d0 = A, d1 = D; break;
                    case S_O: d0 = D, d1 = A; break;
                    case S_GATE: case S_FC1: d0 = F, d1 = D; break;
                    case S_FC2: d0 = D, d1 = F; break;
                    default: d0 = NB, d1 = H; scale = 1.0f; break;
                }
            }
            size_t numel = (size_t) d0 * (d1? d1: 1);
            uint16_t *data = (uint16_t *) malloc (numel * 2);
            if (later_pos && pos == S_POS_COPIES)
                memcpy (data, t [1 + S_POS].data, numel * 2);       //  block 0's table
            else
            for (size_t e = 0; e < numel; e++) {
                rng = rng * 1664525u + 1013904223u;
                float u = ((rng >> 8) / 16777216.0f) * 2.0f - 1.0f;
                data [e] = vdgx_f32_to_bf16 (offset + scale * u);
            }
            t [n].name = names [n];
            t [n].dtype = VDGX_DTYPE_BF16;
            t [n].ndim = d1? 2: 1;
            t [n].shape [0] = d0;
            t [n].shape [1] = d1;
            t [n].data = data;
            t [n].nbytes = numel * 2;
            n++;
        }
    }
    char *err = NULL;
    int rc = pth? s_write_pth (path, t, n): vdgx_safetensors_write (path, t, n, &err);
    if (rc)
        printf ("cannot write %s: %s\n", path, err? err: "");
    assert (rc == 0);
    for (size_t i = 0; i < n; i++)
        free ((void *) t [i].data);
    free (t);
    free (names);
}

static float *
s_forward_host (vdgx_t5_t *t5, vdgx_backend_t *b, const int32_t *ids, const uint8_t *mask,
                int batch, int len)
{
    vdgx_tensor_t out;
    int rc = vdgx_t5_forward (t5, ids, mask, batch, len, &out);
    if (rc)
        printf ("forward: %s\n", vdgx_t5_error (t5));
    assert (rc == 0);
    float *host = (float *) malloc (sizeof (float) * (size_t) vdgx_tensor_numel (&out));
    rc = vdgx_tensor_to_f32 (b, &out, host);
    assert (rc == 0);
    vdgx_tensor_release (b, &out);
    return host;
}

void
vdgx_t5_test (bool verbose)
{
    printf (" * vdgx_t5: ");
    if (verbose)
        printf ("\n");

    //  Buckets: the official table (32 bidirectional, max_dist 128) at known points, and a
    //  float64 evaluation away from the exact powers of two where float32 truncation could
    //  differ (it does not for this configuration: log2 ratios hit integers exactly).
    const struct { int rel, bucket; } known [] = {
        { 0, 0 }, { -1, 1 }, { 1, 17 }, { -7, 7 }, { 7, 23 }, { -8, 8 }, { 8, 24 },
        { -11, 8 }, { -12, 9 }, { -15, 9 }, { -16, 10 }, { 16, 26 }, { -32, 12 }, { -64, 14 },
        { -127, 15 }, { -128, 15 }, { 128, 31 }, { 159, 31 }, { -100000, 15 }, { 100000, 31 } };
    for (size_t i = 0; i < sizeof (known) / sizeof (known [0]); i++) {
        int got = vdgx_t5_bucket (known [i].rel, 32, 128);
        if (got != known [i].bucket)
            printf ("bucket(%d) = %d, expected %d\n", known [i].rel, got, known [i].bucket);
        assert (got == known [i].bucket);
    }
    for (int rel = -300; rel <= 300; rel++) {
        int dist = abs (rel);
        int want = rel > 0? 16: 0;
        if (dist < 8)
            want += dist;
        else {
            int large = 8 + (int) (log (dist / 8.0) / log (16.0) * 8.0 + 1e-9);
            want += large < 15? large: 15;
        }
        assert (vdgx_t5_bucket (rel, 32, 128) == want);
    }
    //  The bias table: bias[h][q][k] = table[bucket(k - q)][h], also for Lq != Lk.
    {
        const int H = 3, NB = 32, LQ = 5, LK = 7;
        float table [NB * H], bias [H * LQ * LK];
        for (int i = 0; i < NB * H; i++)
            table [i] = (float) i * 0.5f - 7.0f;
        vdgx_t5_pos_bias (table, H, NB, 128, LQ, LK, bias);
        for (int h = 0; h < H; h++)
            for (int q = 0; q < LQ; q++)
                for (int k = 0; k < LK; k++)
                    assert (bias [(h * LQ + q) * LK + k] == table [vdgx_t5_bucket (k - q, NB, 128) * H + h]);
    }

    //  Layout: the real umT5-XXL names and shapes give the XXL configuration, under official
    //  and HF names; a wrong shape and a missing tensor are refused with a message.
    const char *src = getenv ("VDGX_SOURCE_DIR");
    char path [4096];
    snprintf (path, sizeof (path), "%s/tests/data/reference/wan21/real_checkpoint_layout.json",
              src? src: ".");
    json_t *layout = json_load_file (path, 0, NULL);
    if (!layout)
        printf ("(no %s: real layout not checked) ", path);
    else {
        s_layout_arg_t arg = { json_object_get (json_object_get (layout, "t5"), "tensors"), false, NULL };
        assert (json_object_size (arg.tensors) == 242);
        vdgx_t5_config_t cfg;
        char *err = NULL;
        for (int hf = 0; hf < 2; hf++) {
            arg.to_hf = hf;
            int rc = vdgx_t5_layout (s_layout_shape, &arg, &cfg, &err);
            if (rc)
                printf ("layout: %s\n", err);
            assert (rc == 0 && !err);
            assert (cfg.vocab == 256384 && cfg.dim == 4096 && cfg.dim_attn == 4096
                 && cfg.dim_ffn == 10240 && cfg.num_heads == 64 && cfg.num_layers == 24
                 && cfg.num_buckets == 32 && cfg.max_dist == 128 && cfg.hf_names == (bool) hf);
        }
        arg.to_hf = false;
        arg.broken = "blocks.17.ffn.fc2.weight";
        assert (vdgx_t5_layout (s_layout_shape, &arg, &cfg, &err) == -1);
        if (verbose)
            printf ("  broken shape: %s\n", err);
        assert (err && strstr (err, "blocks.17.ffn.fc2.weight"));
        free (err);
        arg.broken = NULL;
        json_object_del (arg.tensors, "blocks.23.attn.v.weight");
        assert (vdgx_t5_layout (s_layout_shape, &arg, &cfg, &err) == -1);
        assert (err && strstr (err, "missing tensor 'blocks.23.attn.v.weight'"));
        free (err);
        json_decref (layout);
    }

    //  Loader and forward on tiny BF16 checkpoints written here.
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, &err);
    assert (b);
    char tmpl [] = "/tmp/vdgx_t5_XXXXXX";
    char *dir = mkdtemp (tmpl);
    assert (dir);
    char official [4200], hfpath [4200];
    snprintf (official, sizeof (official), "%s/official.safetensors", dir);
    snprintf (hfpath, sizeof (hfpath), "%s/model.safetensors", dir);
    s_write_tiny (official, false, false, 3, 7, S_POS_EACH);
    s_write_tiny (hfpath, true, false, 3, 7, S_POS_EACH);
    char pthpath [4200];
    snprintf (pthpath, sizeof (pthpath), "%s/tiny_t5.pth", dir);
    s_write_tiny (pthpath, false, true, 3, 7, S_POS_EACH);

    vdgx_t5_t *t5 = vdgx_t5_new (official, b, VDGX_WFMT_F32, &err);
    if (!t5)
        printf ("load: %s\n", err);
    assert (t5);
    vdgx_t5_t *t5hf = vdgx_t5_new (dir, b, VDGX_WFMT_F32, &err);     //  directory: model.safetensors
    if (!t5hf)
        printf ("load hf: %s\n", err);
    assert (t5hf);
    const vdgx_t5_config_t *c = vdgx_t5_config (t5);
    assert (c->vocab == 64 && c->dim == 16 && c->dim_ffn == 24 && c->num_heads == 2
         && c->num_layers == 3 && !c->hf_names && vdgx_t5_config (t5hf)->hf_names);

    enum { L = 9 };
    int32_t ids [2 * L];
    uint8_t mask [2 * L];
    for (int i = 0; i < 2 * L; i++) {
        ids [i] = (i * 37 + 5) % 64;
        mask [i] = (i < L) || (i - L < 5);      //  second sequence: 5 real tokens
    }
    float *a = s_forward_host (t5, b, ids, mask, 2, L);
    float *ahf = s_forward_host (t5hf, b, ids, mask, 2, L);
    for (int i = 0; i < 2 * L * 16; i++)
        assert (a [i] == ahf [i] && isfinite (a [i]));
    //  The same weights in a torch.save (.pth) file compute the same.
    vdgx_t5_t *t5pth = vdgx_t5_new (pthpath, b, VDGX_WFMT_F32, &err);
    if (!t5pth)
        printf ("load pth: %s\n", err);
    assert (t5pth && vdgx_t5_config (t5pth)->num_layers == 3);
    float *apth = s_forward_host (t5pth, b, ids, mask, 2, L);
    assert (memcmp (a, apth, sizeof (float) * 2 * L * 16) == 0);
    free (apth);
    vdgx_t5_destroy (&t5pth);
    //  Masking: the masked sequence's real rows equal a run on its real tokens alone, and
    //  the unmasked sequence equals its own batch-of-one run.
    float *s1 = s_forward_host (t5, b, ids + L, NULL, 1, 5);
    float *s0 = s_forward_host (t5, b, ids, NULL, 1, L);
    double maxd = 0;
    for (int i = 0; i < 5 * 16; i++)
        maxd = fmax (maxd, fabs (s1 [i] - a [L * 16 + i]));
    for (int i = 0; i < L * 16; i++)
        maxd = fmax (maxd, fabs (s0 [i] - a [i]));
    if (verbose)
        printf ("  masked batch vs single runs: max diff %.3g\n", maxd);
    assert (maxd < 1e-5);
    //  Padded rows differ from zero (they are computed, as the official code does).
    assert (a [(L + 7) * 16] != 0.0f);

    //  encode: the n rows of a single run, then exact zeros up to text_len.
    vdgx_tensor_t ctx;
    int rc = vdgx_t5_encode (t5, ids + L, 5, 12, &ctx);
    assert (rc == 0 && ctx.ndim == 2 && ctx.shape [0] == 12 && ctx.shape [1] == 16);
    float host [12 * 16];
    rc = vdgx_tensor_to_f32 (b, &ctx, host);
    assert (rc == 0);
    for (int i = 0; i < 12 * 16; i++)
        assert (i < 5 * 16? fabsf (host [i] - s1 [i]) < 1e-5f: host [i] == 0.0f);
    vdgx_tensor_release (b, &ctx);
    assert (vdgx_t5_encode (t5, ids, 13, 12, &ctx) == -1);

    //  Bad input is an error, not a crash.
    int32_t bad [3] = { 1, 64, 2 };
    assert (vdgx_t5_forward (t5, bad, NULL, 1, 3, &ctx) == -1);
    assert (strstr (vdgx_t5_error (t5), "outside the vocabulary"));
    bad [1] = -1;
    assert (vdgx_t5_forward (t5, bad, NULL, 1, 3, &ctx) == -1);
    assert (vdgx_t5_forward (t5, bad, NULL, 0, 3, &ctx) == -1);

    //  T5-v1.1 layout (HF names, a table in block 0 only): the shared bias computes what a
    //  per-layer model with copies of block 0's table computes; a table in block 2 but not
    //  in block 1 is refused.
    {
        char shared [4200], copies [4200], gap [4200];
        snprintf (shared, sizeof (shared), "%s/shared.safetensors", dir);
        snprintf (copies, sizeof (copies), "%s/copies.safetensors", dir);
        snprintf (gap, sizeof (gap), "%s/gap.safetensors", dir);
        s_write_tiny (shared, true, false, 3, 9, S_POS_SHARED);
        s_write_tiny (copies, true, false, 3, 9, S_POS_COPIES);
        s_write_tiny (gap, true, false, 3, 9, S_POS_GAP);
        vdgx_t5_t *ts = vdgx_t5_new (shared, b, VDGX_WFMT_F32, &err);
        vdgx_t5_t *tc = vdgx_t5_new (copies, b, VDGX_WFMT_F32, &err);
        assert (ts && tc && vdgx_t5_config (ts)->shared_bias && !vdgx_t5_config (tc)->shared_bias);
        float *as = s_forward_host (ts, b, ids, mask, 2, L);
        float *ac = s_forward_host (tc, b, ids, mask, 2, L);
        assert (memcmp (as, ac, sizeof (float) * 2 * L * 16) == 0);
        float *us = s_forward_host (ts, b, ids, NULL, 2, L);
        float *uc = s_forward_host (tc, b, ids, NULL, 2, L);
        assert (memcmp (us, uc, sizeof (float) * 2 * L * 16) == 0);
        free (as); free (ac); free (us); free (uc);
        vdgx_t5_destroy (&ts);
        vdgx_t5_destroy (&tc);
        assert (!vdgx_t5_new (gap, b, VDGX_WFMT_F32, &err) && err && strstr (err, "block.2"));
        if (verbose)
            printf ("  gap: %s\n", err);
        free (err);
        err = NULL;
        unlink (shared);
        unlink (copies);
        unlink (gap);
    }

    //  FP8 (per-channel e4m3) weights stay close to f32.
    vdgx_t5_t *t5fp8 = vdgx_t5_new (official, b, VDGX_WFMT_FP8_E4M3, &err);
    if (!t5fp8)
        printf ("load fp8: %s\n", err);
    assert (t5fp8);
    assert (vdgx_t5_weight_bytes (t5fp8) < vdgx_t5_weight_bytes (t5) / 2);
    float *a8 = s_forward_host (t5fp8, b, ids, mask, 2, L);
    double num = 0, den = 0;
    for (int i = 0; i < 2 * L * 16; i++) {
        num += (a8 [i] - a [i]) * (double) (a8 [i] - a [i]);
        den += a [i] * (double) a [i];
    }
    if (verbose)
        printf ("  fp8 vs f32 relative norm %.3g\n", sqrt (num / den));
    assert (sqrt (num / den) < 0.1 && num > 0);
    vdgx_t5_destroy (&t5fp8);
    free (a8);

    free (a);
    free (ahf);
    free (s1);
    free (s0);
    vdgx_t5_destroy (&t5);
    vdgx_t5_destroy (&t5hf);
    assert (!t5 && !t5hf);

    //  Malformed checkpoints: truncated file, and a wrong shape.
    FILE *f = fopen (official, "r+b");
    assert (f);
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fclose (f);
    rc = truncate (official, size / 2);
    assert (rc == 0);
    t5 = vdgx_t5_new (official, b, VDGX_WFMT_F32, &err);
    assert (!t5 && err);
    if (verbose)
        printf ("  truncated: %s\n", err);
    free (err);
    t5 = vdgx_t5_new ("/nonexistent/t5.pth", b, VDGX_WFMT_F32, &err);
    assert (!t5 && err);
    free (err);
    t5 = vdgx_t5_new (official, b, VDGX_WFMT_NVFP4, &err);
    assert (!t5 && err);
    free (err);

    unlink (official);
    unlink (hfpath);
    unlink (pthpath);
    rmdir (dir);
    vdgx_backend_destroy (&b);
    printf ("OK\n");
}
