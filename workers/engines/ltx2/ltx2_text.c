/*  ltx2_text.c - the LTX-2 / LTX-2.3 text path after Gemma (see ltx2_text.h).

    The feature extraction (per-layer statistics over the valid tokens, or per-token RMS) runs
    on the host over the valid rows only: the connectors replace every padding row by a
    register, so padding features never reach the output. Projections, connectors and their
    attention run on the backend.
*/
#include "ltx2_text.h"
#include "ltx2_dit.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdgx_attn.h"
#include "vdgx_nn.h"
#include "vdgx_wsrc.h"

#define S_CONN_MAX_LAYERS 64
#define S_EPS 1e-6f

//  A connector block from the toolkit's pieces: attention with biased projections and RMS
//  q/k norms across all heads, an optional per-head gate, a plain tanh-GELU MLP.
typedef struct {
    vdgx_attn_t attn;
    vdgx_linear_t gate;                     //  to_gate_logits (gated connectors only)
    vdgx_mlp_t ff;
} s_block_t;

typedef struct {
    ltx2_connector_config_t cfg;
    const char *name;                       //  "video_conn" / "audio_conn"
    s_block_t *blocks;
    float *registers;                       //  host [R, C]
    vdgx_norm_t rms;                        //  RMS over C without weight
    vdgx_rope_t rope;                       //  [T*H, head_dim/2] per-head tables for rope_len
    int rope_len;
} s_connector_t;

struct _ltx2_text_t {
    ltx2_text_config_t cfg;
    vdgx_backend_t *backend;
    vdgx_wfmt_t wfmt;
    vdgx_linear_t agg [2];                  //  V1: agg [0] only (no bias); V2: video, audio
    s_connector_t conn [2];                 //  video, audio
    size_t weight_bytes;
    ltx2_text_tap_fn *tap;
    void *tap_arg;
    char error [512];
};

static void
s_set_error (ltx2_text_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof (self->error), fmt, args);
    va_end (args);
}

//  ---------------------------------------------------------------------------------------
//  Configuration from the checkpoint metadata

static int
s_json_int (json_t *obj, const char *key, int lo, int hi, int *out)
{
    json_t *v = json_object_get (obj, key);
    if (!v)
        return 0;
    if (!json_is_integer (v) || json_integer_value (v) < lo || json_integer_value (v) > hi)
        return -1;
    *out = (int) json_integer_value (v);
    return 0;
}

//  Reads the arrangement and connector settings; sizes are filled from the shapes later.
static int
s_config (ltx2_text_t *self, vdgx_ckpt_t *ckpt)
{
    ltx2_text_config_t *c = &self->cfg;
    const char *text = vdgx_ckpt_metadata (ckpt, "config");
    if (!text) {
        s_set_error (self, "LTX-2 checkpoint: no __metadata__ \"config\" (it says whether the "
                     "checkpoint is LTX-2 or LTX-2.3)");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loads (text, 0, &jerr);
    json_t *tc = json_object_get (root, "transformer");
    if (!json_is_object (tc)) {
        s_set_error (self, "LTX-2 checkpoint: __metadata__ config is not JSON with a "
                     "\"transformer\" object (%s)", root? "no transformer": jerr.text);
        json_decref (root);
        return -1;
    }
    int rc = 0;
    //  Arrangement: the four V2 keys all absent (LTX-2) or all present with these values.
    static const struct { const char *key; bool want; } v2 [] = {
        { "caption_proj_before_connector", true }, { "caption_projection_first_linear", false },
        { "caption_proj_input_norm", false }, { "caption_projection_second_linear", false } };
    int present = 0;
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get (tc, v2 [i].key);
        if (!v)
            continue;
        present++;
        if (!json_is_boolean (v) || json_is_true (v) != v2 [i].want) {
            s_set_error (self, "LTX-2 checkpoint: config %s must be %s for the LTX-2.3 text path",
                         v2 [i].key, v2 [i].want? "true": "false");
            rc = -1;
        }
    }
    if (rc == 0 && present && present < 4) {
        s_set_error (self, "LTX-2 checkpoint: config has %d of the 4 caption_proj* keys "
                     "(LTX-2 has none, LTX-2.3 all)", present);
        rc = -1;
    }
    c->v2 = present == 4;
    json_t *rt = json_object_get (tc, "rope_type");
    if (rc == 0 && rt && (!json_is_string (rt) || strcmp (json_string_value (rt), "split"))) {
        s_set_error (self, "LTX-2 checkpoint: rope_type \"%s\" is not supported (split only)",
                     json_is_string (rt)? json_string_value (rt): "?");
        rc = -1;
    }
    json_t *fp = json_object_get (tc, "frequencies_precision");
    c->rope_double = json_is_string (fp) && strcmp (json_string_value (fp), "float64") == 0;
    json_t *th = json_object_get (tc, "positional_embedding_theta");
    c->rope_theta = 10000.0;        //  the connectors use the class default
    (void) th;
    json_t *mp = json_object_get (tc, "connector_positional_embedding_max_pos");
    c->rope_max_pos = 1;
    if (rc == 0 && mp) {
        json_t *m0 = json_array_get (mp, 0);
        if (json_array_size (mp) != 1 || !json_is_integer (m0) || json_integer_value (m0) < 1) {
            s_set_error (self, "LTX-2 checkpoint: connector_positional_embedding_max_pos must be [n]");
            rc = -1;
        }
        else
            c->rope_max_pos = (int) json_integer_value (m0);
    }
    //  Connector heads: the config keys, else what the reference checkpoints record in the
    //  text_config metadata, else the class defaults (30 x 128).
    int heads = 30, head_dim = 128;
    const char *ttext = vdgx_ckpt_metadata (ckpt, "text_config");
    json_t *troot = ttext? json_loads (ttext, 0, NULL): NULL;
    json_t *tconn = json_object_get (troot, "connector");
    if (rc == 0 && json_is_object (tconn)
     && (s_json_int (tconn, "num_attention_heads", 1, 4096, &heads)
      || s_json_int (tconn, "attention_head_dim", 2, 65536, &head_dim))) {
        s_set_error (self, "LTX-2 checkpoint: text_config connector heads / head_dim malformed");
        rc = -1;
    }
    json_decref (troot);
    c->video.heads = heads;
    c->video.head_dim = head_dim;
    if (rc == 0 && (s_json_int (tc, "connector_num_attention_heads", 1, 4096, &c->video.heads)
                 || s_json_int (tc, "connector_attention_head_dim", 2, 65536, &c->video.head_dim))) {
        s_set_error (self, "LTX-2 checkpoint: connector_num_attention_heads / _attention_head_dim malformed");
        rc = -1;
    }
    c->audio.heads = c->video.heads;
    c->audio.head_dim = c->video.head_dim;
    if (rc == 0 && (s_json_int (tc, "audio_connector_num_attention_heads", 1, 4096, &c->audio.heads)
                 || s_json_int (tc, "audio_connector_attention_head_dim", 2, 65536, &c->audio.head_dim))) {
        s_set_error (self, "LTX-2 checkpoint: audio_connector_* heads malformed");
        rc = -1;
    }
    json_t *gated = json_object_get (tc, "connector_apply_gated_attention");
    c->video.gated = c->audio.gated = json_is_true (gated);
    json_t *ffb = json_object_get (tc, "connector_ff_bias");
    if (rc == 0 && ffb && !json_is_true (ffb)) {
        s_set_error (self, "LTX-2 checkpoint: connector_ff_bias false is not supported");
        rc = -1;
    }
    json_decref (root);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Loading

//  A linear layer (with its bias when bias) through the weight source.
static int
s_load_linear (ltx2_text_t *self, vdgx_wsrc_t *src, const char *layer, int64_t n, int64_t k,
               bool bias, vdgx_linear_t *l)
{
    char *err = NULL;
    if (vdgx_wsrc_linear (src, self->backend, layer, n, k, self->wfmt, bias? VDGX_DTYPE_F32: -1, l, &err)) {
        s_set_error (self, "%s", err? err: "out of memory");
        free (err);
        return -1;
    }
    self->weight_bytes += vdgx_wfmt_bytes (l->w.fmt, n, k) + (bias? sizeof (float) * (size_t) n: 0);
    return 0;
}

static int
s_load_connector (ltx2_text_t *self, vdgx_ckpt_t *ckpt, vdgx_wsrc_t *src, int which)
{
    s_connector_t *cn = &self->conn [which];
    ltx2_connector_config_t *c = &cn->cfg;
    *c = which? self->cfg.audio: self->cfg.video;
    cn->name = which? "audio_conn": "video_conn";
    char prefix [96], name [256];
    snprintf (prefix, sizeof (prefix), "model.diffusion_model.%s_embeddings_connector",
              which? "audio": "video");
    snprintf (name, sizeof (name), "%s.learnable_registers", prefix);
    const vdgx_ckpt_tensor_t *reg = vdgx_ckpt_find (ckpt, name);
    if (!reg || reg->ndim != 2 || reg->shape [0] < 1 || reg->shape [0] > 65536 || reg->shape [1] < 2
     || reg->shape [1] > 65536) {
        s_set_error (self, "LTX-2 checkpoint: '%s' missing or not [registers, dim]", name);
        return -1;
    }
    c->registers = (int) reg->shape [0];
    c->dim = (int) reg->shape [1];
    if ((int64_t) c->heads * c->head_dim != c->dim || c->head_dim % 2) {
        s_set_error (self, "LTX-2 checkpoint: %s connector is %d wide but the config says %d heads "
                     "x %d", which? "audio": "video", c->dim, c->heads, c->head_dim);
        return -1;
    }
    cn->registers = (float *) malloc (sizeof (float) * (size_t) c->registers * c->dim);
    char *err = NULL;
    if (!cn->registers || vdgx_ckpt_read_f32 (reg, cn->registers, &err)) {
        s_set_error (self, "LTX-2 checkpoint: cannot read '%s': %s", name, err? err: "out of memory");
        free (err);
        return -1;
    }
    c->layers = 0;
    for (int i = 0; i < S_CONN_MAX_LAYERS; i++) {
        snprintf (name, sizeof (name), "%s.transformer_1d_blocks.%d.attn1.to_q.weight", prefix, i);
        if (!vdgx_ckpt_find (ckpt, name))
            break;
        c->layers = i + 1;
    }
    if (c->layers == 0) {
        s_set_error (self, "LTX-2 checkpoint: no %s.transformer_1d_blocks", prefix);
        return -1;
    }
    cn->blocks = (s_block_t *) calloc ((size_t) c->layers, sizeof (s_block_t));
    if (!cn->blocks) {
        s_set_error (self, "out of memory");
        return -1;
    }
    const int64_t C = c->dim, H = c->heads;
    if (vdgx_norm_init (self->backend, &cn->rms, VDGX_NORM_RMS, C, S_EPS, NULL, NULL, false, &err)) {
        s_set_error (self, "%s", err? err: "out of memory");
        free (err);
        return -1;
    }
    for (int i = 0; i < c->layers; i++) {
        s_block_t *bl = &cn->blocks [i];
        vdgx_attn_init (&bl->attn, C, H, H, c->head_dim);
        bl->ff.kind = VDGX_MLP_PLAIN;
        bl->ff.act = VDGX_ACT_GELU_TANH;
        bl->ff.dim = C;
        bl->ff.hidden = 4 * C;
        const struct { const char *name; vdgx_linear_t *l; int64_t n, k; } lin [] = {
            { "attn1.to_q", &bl->attn.q, C, C }, { "attn1.to_k", &bl->attn.k, C, C },
            { "attn1.to_v", &bl->attn.v, C, C }, { "attn1.to_out.0", &bl->attn.o, C, C },
            { "ff.net.0.proj", &bl->ff.up, 4 * C, C }, { "ff.net.2", &bl->ff.down, C, 4 * C },
            { "attn1.to_gate_logits", &bl->gate, H, C } };
        for (size_t j = 0; j < sizeof (lin) / sizeof (lin [0]); j++) {
            if (j == 6 && !c->gated)
                continue;
            snprintf (name, sizeof (name), "%s.transformer_1d_blocks.%d.%s", prefix, i, lin [j].name);
            if (s_load_linear (self, src, name, lin [j].n, lin [j].k, true, lin [j].l))
                return -1;
        }
        vdgx_norm_t *norms [2] = { &bl->attn.q_norm, &bl->attn.k_norm };
        for (int j = 0; j < 2; j++) {
            snprintf (name, sizeof (name), "%s.transformer_1d_blocks.%d.attn1.%s_norm", prefix, i, j? "k": "q");
            if (vdgx_wsrc_norm (src, self->backend, norms [j], VDGX_NORM_RMS, name, C, S_EPS, true,
                                false, false, &err)) {
                s_set_error (self, "%s", err? err: "out of memory");
                free (err);
                return -1;
            }
            self->weight_bytes += sizeof (float) * (size_t) C;
        }
        bl->attn.has_q_norm = bl->attn.has_k_norm = true;
    }
    return 0;
}

ltx2_text_t *
ltx2_text_new_from_ckpt (vdgx_ckpt_t *ckpt, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err)
{
    assert (ckpt && backend && err);
    *err = NULL;
    if (wfmt != VDGX_WFMT_F32 && wfmt != VDGX_WFMT_BF16 && wfmt != VDGX_WFMT_FP8_E4M3) {
        *err = zsys_sprintf ("LTX-2 text: weight format %s is not supported (f32, bf16, fp8)",
                             vdgx_wfmt_name (wfmt));
        return NULL;
    }
    ltx2_text_t *self = (ltx2_text_t *) calloc (1, sizeof (ltx2_text_t));
    if (!self) {
        *err = strdup ("out of memory");
        return NULL;
    }
    self->backend = backend;
    self->wfmt = wfmt;
    ltx2_text_config_t *c = &self->cfg;
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, NULL, "LTX-2 checkpoint");
    int rc = src? s_config (self, ckpt): -1;
    if (!src)
        s_set_error (self, "out of memory");
    if (rc == 0)
        rc = s_load_connector (self, ckpt, src, 0);
    if (rc == 0)
        rc = s_load_connector (self, ckpt, src, 1);
    if (rc == 0) {
        c->video = self->conn [0].cfg;
        c->audio = self->conn [1].cfg;
        c->video_dim = c->video.dim;
        c->audio_dim = c->audio.dim;
        const char *names [2] = { c->v2? "text_embedding_projection.video_aggregate_embed.weight":
                                         "text_embedding_projection.aggregate_embed.weight",
                                  "text_embedding_projection.audio_aggregate_embed.weight" };
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (ckpt, names [0]);
        if (!t || t->ndim != 2 || t->shape [1] < 1 || t->shape [1] > INT32_MAX) {
            s_set_error (self, "LTX-2 checkpoint: '%s' missing or not [dim, D*L] (%s text path)",
                         names [0], c->v2? "LTX-2.3": "LTX-2");
            rc = -1;
        }
        else
            c->feature_dim = (int) t->shape [1];
        if (rc == 0 && !c->v2 && c->video_dim != c->audio_dim) {
            s_set_error (self, "LTX-2 checkpoint: the LTX-2 connectors share one input, but are "
                         "%d and %d wide", c->video_dim, c->audio_dim);
            rc = -1;
        }
        for (int i = 0; rc == 0 && i < (c->v2? 2: 1); i++) {
            char layer [128];
            snprintf (layer, sizeof (layer), "%.*s", (int) (strlen (names [i]) - 7), names [i]);
            rc = s_load_linear (self, src, layer, i? c->audio_dim: c->video_dim, c->feature_dim,
                                c->v2, &self->agg [i]);
        }
    }
    vdgx_wsrc_destroy (&src);
    if (rc) {
        *err = strdup (self->error);
        ltx2_text_destroy (&self);
    }
    return self;
}

ltx2_text_t *
ltx2_text_new (const char *path, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err)
{
    assert (path && backend && err);
    *err = NULL;
    char *cerr = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &cerr);
    if (!ckpt) {
        *err = zsys_sprintf ("LTX-2 text: %s: %s", path, cerr? cerr: "cannot open");
        free (cerr);
        return NULL;
    }
    ltx2_text_t *self = ltx2_text_new_from_ckpt (ckpt, backend, wfmt, &cerr);
    if (!self) {
        *err = zsys_sprintf ("%s (%s)", cerr, path);
        free (cerr);
    }
    vdgx_ckpt_destroy (&ckpt);
    return self;
}

void
ltx2_text_destroy (ltx2_text_t **self_p)
{
    assert (self_p);
    ltx2_text_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    for (int i = 0; i < 2; i++) {
        vdgx_linear_release (b, &self->agg [i]);
        s_connector_t *cn = &self->conn [i];
        for (int l = 0; cn->blocks && l < cn->cfg.layers; l++) {
            vdgx_attn_release (b, &cn->blocks [l].attn);
            vdgx_linear_release (b, &cn->blocks [l].gate);
            vdgx_mlp_release (b, &cn->blocks [l].ff);
        }
        free (cn->blocks);
        free (cn->registers);
        vdgx_norm_release (b, &cn->rms);
        vdgx_rope_release (b, &cn->rope);
    }
    free (self);
    *self_p = NULL;
}

const ltx2_text_config_t *
ltx2_text_config (ltx2_text_t *self)
{
    assert (self);
    return &self->cfg;
}

const char *
ltx2_text_error (ltx2_text_t *self)
{
    assert (self);
    return self->error;
}

size_t
ltx2_text_weight_bytes (ltx2_text_t *self)
{
    assert (self);
    return self->weight_bytes;
}

void
ltx2_text_set_tap (ltx2_text_t *self, ltx2_text_tap_fn *fn, void *arg)
{
    assert (self);
    self->tap = fn;
    self->tap_arg = arg;
}

//  ---------------------------------------------------------------------------------------
//  RoPE

void
ltx2_text_rope (double theta, int max_pos, bool double_precision, int dim, int len, float *cos_t,
                float *sin_t)
{
    assert (dim >= 2 && max_pos >= 1 && len >= 0 && cos_t && sin_t);
    //  the DiT's split RoPE on 1-D positions p (bounds [p, p]: the middle is p itself)
    float *pos = (float *) malloc (sizeof (float) * 2 * (size_t) (len? len: 1));
    assert (pos);
    for (int p = 0; p < len; p++)
        pos [2 * p] = pos [2 * p + 1] = (float) p;
    ltx2_dit_rope (pos, 1, len, &max_pos, theta, double_precision, false, dim, cos_t, sin_t);
    free (pos);
}

//  ---------------------------------------------------------------------------------------
//  Encoding

static void
s_tap (ltx2_text_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_arg, name, t);
}

typedef struct {
    vdgx_tensor_t h, q, k, v, qn, kn, o, a, gl, f1, f1b, f2;
} s_conn_work_t;

static void
s_conn_work_release (vdgx_backend_t *b, s_conn_work_t *w)
{
    vdgx_tensor_t *all [] = { &w->h, &w->q, &w->k, &w->v, &w->qn, &w->kn, &w->o, &w->a, &w->gl, &w->f1, &w->f1b, &w->f2 };
    for (size_t i = 0; i < sizeof (all) / sizeof (all [0]); i++)
        vdgx_tensor_release (b, all [i]);
}

//  Runs connector `which` on x [T, C] (modified in place) into out [T, C].
static int
s_connector (ltx2_text_t *self, int which, vdgx_tensor_t *x, vdgx_tensor_t *out)
{
    s_connector_t *cn = &self->conn [which];
    const ltx2_connector_config_t *c = &cn->cfg;
    vdgx_backend_t *b = self->backend;
    const vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    const int64_t T = x->shape [0], C = c->dim, H = c->heads, HD = c->head_dim;
    if (cn->rope_len != T) {
        vdgx_rope_release (b, &cn->rope);
        cn->rope_len = 0;
        float *cs = (float *) malloc (sizeof (float) * (size_t) (T * C / 2));
        float *sn = (float *) malloc (sizeof (float) * (size_t) (T * C / 2));
        //  per-head chunks: the [T, C/2] table seen as [T*H, head_dim/2]
        const int64_t shape [2] = { T * H, HD / 2 };
        int rc = cs && sn? 0: -1;
        if (rc == 0) {
            ltx2_text_rope (self->cfg.rope_theta, self->cfg.rope_max_pos, self->cfg.rope_double,
                            (int) C, (int) T, cs, sn);
            cn->rope.layout = VDGX_ROPE_HALF;
            cn->rope.len = T * H;
            cn->rope.pairs = HD / 2;
            rc = vdgx_nn_upload (b, &cn->rope.cos, VDGX_DTYPE_F32, 2, shape, cs)
              || vdgx_nn_upload (b, &cn->rope.sin, VDGX_DTYPE_F32, 2, shape, sn);
        }
        free (cs);
        free (sn);
        if (rc) {
            s_set_error (self, "LTX-2 text: cannot place the RoPE tables: %s", vdgx_backend_error (b));
            return -1;
        }
        cn->rope_len = (int) T;
    }
    s_conn_work_t w;
    memset (&w, 0, sizeof (w));
    const int64_t sc [2] = { T, C }, sf [2] = { T, 4 * C }, sh [2] = { T, H };
    int rc = -1;
    if (vdgx_tensor_alloc (b, &w.h, act, 2, sc) || vdgx_tensor_alloc (b, &w.q, act, 2, sc)
     || vdgx_tensor_alloc (b, &w.k, act, 2, sc) || vdgx_tensor_alloc (b, &w.v, act, 2, sc)
     || vdgx_tensor_alloc (b, &w.qn, act, 2, sc) || vdgx_tensor_alloc (b, &w.kn, act, 2, sc)
     || vdgx_tensor_alloc (b, &w.o, act, 2, sc) || vdgx_tensor_alloc (b, &w.a, act, 2, sc)
     || vdgx_tensor_alloc (b, &w.f1, act, 2, sf) || vdgx_tensor_alloc (b, &w.f1b, act, 2, sf)
     || vdgx_tensor_alloc (b, &w.f2, act, 2, sc)
     || (c->gated && vdgx_tensor_alloc (b, &w.gl, VDGX_DTYPE_F32, 2, sh))) {
        s_set_error (self, "LTX-2 text: cannot allocate work tensors: %s", vdgx_backend_error (b));
        goto done;
    }
    //  RoPE per head: [1, T*H, 1, HD] with the [T*H, HD/2] view of the [T, C/2] tables
    const int64_t s4 [4] = { 1, T, H, HD }, sr [4] = { 1, T * H, 1, HD };
    vdgx_tensor_t q4 = vdgx_nn_view (&w.q, 4, s4), k4 = vdgx_nn_view (&w.k, 4, s4), v4 = vdgx_nn_view (&w.v, 4, s4);
    vdgx_tensor_t o4 = vdgx_nn_view (&w.o, 4, s4);
    vdgx_tensor_t qr = vdgx_nn_view (&w.q, 4, sr), kr = vdgx_nn_view (&w.k, 4, sr);
    vdgx_tensor_t qnr = vdgx_nn_view (&w.qn, 4, sr), knr = vdgx_nn_view (&w.kn, 4, sr);
    char name [64];
    for (int i = 0; i < c->layers; i++) {
        s_block_t *bl = &cn->blocks [i];
        if (vdgx_norm_forward (b, &cn->rms, &w.h, x)
         || vdgx_linear_forward (b, &bl->attn.q, &w.q, &w.h)
         || vdgx_linear_forward (b, &bl->attn.k, &w.k, &w.h)
         || vdgx_linear_forward (b, &bl->attn.v, &w.v, &w.h)
         || vdgx_norm_forward (b, &bl->attn.q_norm, &w.qn, &w.q)
         || vdgx_norm_forward (b, &bl->attn.k_norm, &w.kn, &w.k)
         || vdgx_rope_apply (b, &cn->rope, &qr, &qnr)
         || vdgx_rope_apply (b, &cn->rope, &kr, &knr)
         || vdgx_attn_core (b, &bl->attn, &o4, &q4, &k4, &v4, NULL))
            goto op_failed;
        if (c->gated) {
            //  gates = 2 sigmoid (logits) per head
            if (vdgx_linear_forward (b, &bl->gate, &w.gl, &w.h) || vdgx_attn_head_gate (b, &o4, &w.gl, 2.0f))
                goto op_failed;
        }
        if (vdgx_linear_forward (b, &bl->attn.o, &w.a, &w.o)
         || vdgx_op_add_scaled (b, x, x, &w.a, 1.0f)
         || vdgx_norm_forward (b, &cn->rms, &w.h, x)
         || vdgx_mlp_forward (b, &bl->ff, &w.f2, &w.h, &w.f1, &w.f1b)
         || vdgx_op_add_scaled (b, x, x, &w.f2, 1.0f))
            goto op_failed;
        snprintf (name, sizeof (name), "%s.blocks.%d", cn->name, i);
        s_tap (self, name, x);
    }
    if (vdgx_norm_forward (b, &cn->rms, out, x))
        goto op_failed;
    snprintf (name, sizeof (name), "%s.out", cn->name);
    s_tap (self, name, out);
    rc = 0;
    goto done;
op_failed:
    s_set_error (self, "LTX-2 text: %s", vdgx_backend_error (b));
done:
    s_conn_work_release (b, &w);
    return rc;
}

//  Host features of the n valid tokens: V1 normalised per layer, V2 RMS per token and layer;
//  feats [n, D*S] with index d*S + l. h: host [S, T, D].
static void
s_features (bool v2, const float *h, const uint8_t *mask, int64_t S, int64_t T, int64_t D,
            int64_t n, float *feats)
{
    const int64_t F = D * S;
    for (int64_t l = 0; l < S; l++) {
        const float *hl = h + l * T * D;
        float mean = 0, range = 0;
        if (!v2) {
            double sum = 0;
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t t = 0; t < T; t++) {
                if (!mask [t])
                    continue;
                for (int64_t d = 0; d < D; d++) {
                    float v = hl [t * D + d];
                    sum += v;
                    lo = v < lo? v: lo;
                    hi = v > hi? v: hi;
                }
            }
            mean = (float) sum / ((float) (n * D) + S_EPS);
            range = hi - lo;
        }
        for (int64_t t = 0, j = 0; t < T; t++) {
            if (!mask [t])
                continue;
            const float *row = hl + t * D;
            float r = 0;
            if (v2) {
                double ss = 0;
                for (int64_t d = 0; d < D; d++)
                    ss += (double) row [d] * row [d];
                r = 1.0f / sqrtf ((float) (ss / (double) D) + S_EPS);
            }
            float *out = feats + j * F + l;
            for (int64_t d = 0; d < D; d++)
                out [d * S] = v2? row [d] * r: 8.0f * (row [d] - mean) / (range + S_EPS);
            j++;
        }
    }
}

//  Uploads feats [n, F] (times scale) and projects them with aggregate embed `which`.
static int
s_project (ltx2_text_t *self, int which, const float *feats, int64_t n, float scale, float *tmp,
           vdgx_tensor_t *proj)
{
    vdgx_backend_t *b = self->backend;
    const int64_t F = self->cfg.feature_dim, C = which? self->cfg.audio_dim: self->cfg.video_dim;
    const int64_t sfeat [2] = { n, F }, sproj [2] = { n, C };
    vdgx_tensor_t x;
    memset (&x, 0, sizeof (x));
    const float *src = feats;
    if (scale != 1.0f) {
        for (int64_t i = 0; i < n * F; i++)
            tmp [i] = feats [i] * scale;
        src = tmp;
    }
    int rc = -1;
    if (vdgx_tensor_alloc (b, &x, VDGX_DTYPE_F32, 2, sfeat) == 0
     && vdgx_tensor_from_f32 (b, &x, src) == 0
     && vdgx_tensor_alloc (b, proj, vdgx_backend_act_dtype (b), 2, sproj) == 0
     && vdgx_linear_forward (b, &self->agg [which], proj, &x) == 0)
        rc = 0;
    if (rc == 0 && !self->cfg.v2)
        s_tap (self, "normed_concat", &x);
    if (rc)
        s_set_error (self, "LTX-2 text: projection failed: %s", vdgx_backend_error (b));
    vdgx_tensor_release (b, &x);
    return rc;
}

//  Connector input [T, C]: the n projected tokens first, then registers [j mod R].
static int
s_registers_in (ltx2_text_t *self, int which, const vdgx_tensor_t *proj, int64_t n, int64_t T,
                vdgx_tensor_t *x)
{
    vdgx_backend_t *b = self->backend;
    const s_connector_t *cn = &self->conn [which];
    const int64_t C = cn->cfg.dim, R = cn->cfg.registers;
    const int64_t shape [2] = { T, C };
    float *host = (float *) malloc (sizeof (float) * (size_t) (T * C));
    int rc = host? 0: -1;
    if (rc == 0 && n > 0)
        rc = vdgx_tensor_to_f32 (b, proj, host);
    for (int64_t j = n; rc == 0 && j < T; j++)
        memcpy (host + j * C, cn->registers + (j % R) * C, sizeof (float) * (size_t) C);
    if (rc == 0)
        rc = vdgx_tensor_alloc (b, x, vdgx_backend_act_dtype (b), 2, shape)
          || vdgx_tensor_from_f32 (b, x, host);
    free (host);
    if (rc)
        s_set_error (self, "LTX-2 text: cannot build the connector input: %s", vdgx_backend_error (b));
    else {
        char name [64];
        snprintf (name, sizeof (name), "%s.registers_in", cn->name);
        s_tap (self, name, x);
    }
    return rc;
}

int
ltx2_text_encode (ltx2_text_t *self, const vdgx_tensor_t *hidden, const uint8_t *mask,
                  vdgx_tensor_t *video, vdgx_tensor_t *audio)
{
    assert (self && hidden && mask && video && audio);
    memset (video, 0, sizeof (*video));
    memset (audio, 0, sizeof (*audio));
    const ltx2_text_config_t *c = &self->cfg;
    vdgx_backend_t *b = self->backend;
    if (hidden->ndim != 4 || hidden->shape [1] != 1 || hidden->shape [2] < 1
     || hidden->shape [0] * hidden->shape [3] != c->feature_dim) {
        s_set_error (self, "LTX-2 text: hidden states must be [S, 1, T, D] with S*D = %d (one "
                     "prompt at a time)", c->feature_dim);
        return -1;
    }
    const int64_t S = hidden->shape [0], T = hidden->shape [2], D = hidden->shape [3];
    for (int i = 0; i < 2; i++)
        if (T % self->conn [i].cfg.registers) {
            s_set_error (self, "LTX-2 text: %lld tokens are not a multiple of the %d registers",
                         (long long) T, self->conn [i].cfg.registers);
            return -1;
        }
    int64_t n = 0;
    for (int64_t t = 0; t < T; t++)
        n += mask [t] != 0;
    size_t hn = (size_t) (S * T * D), fn = (size_t) (n * D * S);
    float *h = (float *) malloc (sizeof (float) * hn);
    float *feats = (float *) malloc (sizeof (float) * (fn? fn: 1));
    float *tmp = c->v2? (float *) malloc (sizeof (float) * (fn? fn: 1)): NULL;
    vdgx_tensor_t proj [2], x;
    memset (proj, 0, sizeof (proj));
    memset (&x, 0, sizeof (x));
    int rc = -1;
    if (!h || !feats || (c->v2 && !tmp)) {
        s_set_error (self, "LTX-2 text: out of memory");
        goto done;
    }
    if (vdgx_tensor_to_f32 (b, hidden, h)) {
        s_set_error (self, "LTX-2 text: cannot read the hidden states: %s", vdgx_backend_error (b));
        goto done;
    }
    s_features (c->v2, h, mask, S, T, D, n, feats);
    for (int i = 0; i < 2; i++) {
        vdgx_tensor_t *out = i? audio: video;
        //  V1: one projection feeds both connectors
        int p = c->v2? i: 0;
        if (n > 0 && (i == 0 || c->v2)) {
            float scale = c->v2? (float) sqrt ((double) (i? c->audio_dim: c->video_dim) / (double) D): 1.0f;
            if (s_project (self, p, feats, n, scale, tmp, &proj [p]))
                goto done;
            s_tap (self, c->v2? (i? "features_audio": "features_video"): "projected", &proj [p]);
        }
        const int64_t shape [2] = { T, self->conn [i].cfg.dim };
        if (s_registers_in (self, i, &proj [p], n, T, &x)
         || vdgx_tensor_alloc (b, out, vdgx_backend_act_dtype (b), 2, shape)) {
            if (!self->error [0])
                s_set_error (self, "LTX-2 text: %s", vdgx_backend_error (b));
            goto done;
        }
        if (s_connector (self, i, &x, out))
            goto done;
        vdgx_tensor_release (b, &x);
    }
    rc = 0;
done:
    if (rc) {
        vdgx_tensor_release (b, video);
        vdgx_tensor_release (b, audio);
    }
    vdgx_tensor_release (b, &x);
    vdgx_tensor_release (b, &proj [0]);
    vdgx_tensor_release (b, &proj [1]);
    free (h);
    free (feats);
    free (tmp);
    return rc;
}
