/*  ltx2_dit.c - the LTX-2 / LTX-2.3 audio+video DiT (see ltx2_dit.h).

    Shapes: video x [B, Nv, C], audio ax [B, Na, Ca]; tokens of all samples are rows of one
    matrix for the linears. The residual streams, the timestep embeddings and the modulation
    values are F32 (as the official code keeps them); other activations are in the backend's
    act dtype. Modulation values are [B*N, C] rows per token (vdgx_adaln_*_tokens), or [B, C]
    per sample when every token of each sample has the same timestep (the usual text-to-video
    step: the same values at 1/N of the memory) and for LTX-2.3's prompt adaLN and a<->v gates. The RoPE tables hold one row per
    (sample, token, head): q [B, N, H, D] is rotated as [1, B*N*H, 1, D].

    Host side: the float32 timestep sinusoids, the RoPE tables (float32 steps as the official
    code takes them) and the positions.
*/
#include "ltx2_dit.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdgx_attn.h"
#include "vdgx_nn.h"
#include "vdgx_util.h"

#define S_MAX_LAYERS 256
#define S_FREQ_DIM 256          //  timestep sinusoid width
#define S_WORK_SLOTS 192       //  a forward holds at most 64 at once (LTX-2.3)

typedef struct {
    vdgx_attn_t a;              //  to_q/k/v/out.0 (biased), q/k RMSNorm across heads (weight)
    vdgx_linear_t gate;         //  to_gate_logits [heads, qdim] (gated attention)
    bool gated;
} s_attn_t;

typedef struct {
    vdgx_linear_t l1, l2, lin;  //  emb.timestep_embedder.linear_1 / linear_2, linear
    int64_t dim, rows;
} s_adaln_t;

typedef struct {
    s_attn_t attn1, attn2, a_attn1, a_attn2, a2v, v2a;
    vdgx_mlp_t ff, a_ff;
    vdgx_tensor_t sst, a_sst;           //  scale_shift_table [6|9, C], audio_ [6|9, Ca]
    vdgx_tensor_t av_v, av_a;           //  scale_shift_table_a2v_ca_video [5, C], _audio [5, Ca]
    vdgx_tensor_t psst, a_psst;         //  prompt_scale_shift_table [2, C], audio_ [2, Ca]
} s_block_t;

struct _ltx2_dit_t {
    vdgx_backend_t *backend;
    ltx2_dit_config_t cfg;
    vdgx_wfmt_t block_fmt, small_fmt;
    vdgx_dtype_t act;
    int64_t dim, adim, rows;            //  stream widths, block table rows (6 or 9)
    vdgx_linear_t patch, a_patch, proj_out, a_proj_out;
    vdgx_linear_t cap1, cap2, a_cap1, a_cap2;
    s_adaln_t adaln, a_adaln, prompt, a_prompt, css_v, css_a, gate_a2v, gate_v2a;
    vdgx_tensor_t out_sst, a_out_sst;   //  [2, C]
    vdgx_norm_t rms_v, rms_a, ln_v, ln_a;
    s_block_t *blocks;
    size_t bytes;
    bool bf16_pos;
    ltx2_dit_tap_fn *tap;
    void *tap_arg;
};

const vdgx_wsrc_map_t ltx2_dit_map = { "official", "model.diffusion_model.", NULL, 0 };

//  ---------------------------------------------------------------------------------------
//  Configuration

static int
s_get_int (json_t *o, const char *key, int def, int lo, int hi, int *out, char **err)
{
    json_t *v = json_object_get (o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < lo || json_integer_value (v) > hi) {
        vdgx_set_error (err, "LTX-2 DiT config: %s must be an integer in [%d, %d]", key, lo, hi);
        return -1;
    }
    *out = (int) json_integer_value (v);
    return 0;
}

static int
s_get_num (json_t *o, const char *key, double def, double lo, double hi, double *out, char **err)
{
    json_t *v = json_object_get (o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number (v) || !(json_number_value (v) >= lo && json_number_value (v) <= hi)) {
        vdgx_set_error (err, "LTX-2 DiT config: %s must be a number in [%g, %g]", key, lo, hi);
        return -1;
    }
    *out = json_number_value (v);
    return 0;
}

static int
s_get_bool (json_t *o, const char *key, bool def, bool *out, char **err)
{
    json_t *v = json_object_get (o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean (v)) {
        vdgx_set_error (err, "LTX-2 DiT config: %s must be true or false", key);
        return -1;
    }
    *out = json_is_true (v);
    return 0;
}

//  A key whose value must be `want` (JSON text) when present: settings this code does not do.
static int
s_expect (json_t *o, const char *key, const char *want, char **err)
{
    json_t *v = json_object_get (o, key);
    if (!v)
        return 0;
    json_t *w = json_loads (want, JSON_DECODE_ANY, NULL);
    int eq = w && json_equal (v, w);
    json_decref (w);
    if (!eq) {
        vdgx_set_error (err, "LTX-2 DiT config: %s must be %s (other values are not supported)", key, want);
        return -1;
    }
    return 0;
}

//  max_pos list of `count` positive integers.
static int
s_get_max_pos (json_t *o, const char *key, int count, int *out, char **err)
{
    json_t *v = json_object_get (o, key);
    if (!v)
        return 0;
    if (!json_is_array (v) || (int) json_array_size (v) != count) {
        vdgx_set_error (err, "LTX-2 DiT config: %s must be a list of %d integers", key, count);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        json_t *e = json_array_get (v, (size_t) i);
        if (!json_is_integer (e) || json_integer_value (e) < 1 || json_integer_value (e) > 1000000) {
            vdgx_set_error (err, "LTX-2 DiT config: %s must hold positive integers", key);
            return -1;
        }
        out [i] = (int) json_integer_value (e);
    }
    return 0;
}

int
ltx2_dit_config_from_json (const char *config_json, const char *model_version,
                           ltx2_dit_config_t *cfg, char **err)
{
    assert (cfg);
    if (!config_json) {
        vdgx_set_error (err, "LTX-2 DiT: the checkpoint has no __metadata__ \"config\"");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loads (config_json, 0, &jerr);
    json_t *t = json_object_get (root, "transformer");
    if (!json_is_object (t)) {
        vdgx_set_error (err, "LTX-2 DiT: __metadata__ config is not JSON with a \"transformer\" "
                        "object (%s)", root? "no transformer": jerr.text);
        json_decref (root);
        return -1;
    }
    ltx2_dit_config_t c;
    memset (&c, 0, sizeof (c));
    c.max_pos [0] = 20;
    c.max_pos [1] = c.max_pos [2] = 2048;
    c.audio_max_pos = 20;
    double eps = 1e-6, ts = 1000, avts = 1;
    int rc = 0;
    const struct { const char *key, *want; } fixed [] = {
        { "dropout", "0.0" }, { "attention_bias", "true" }, { "activation_fn", "\"gelu-approximate\"" },
        { "num_embeds_ada_norm", "1000" }, { "only_cross_attention", "false" },
        { "cross_attention_norm", "true" }, { "double_self_attention", "false" },
        { "standardization_norm", "\"rms_norm\"" }, { "norm_elementwise_affine", "false" },
        { "qk_norm", "\"rms_norm\"" }, { "positional_embedding_type", "\"rope\"" },
        { "use_audio_video_cross_attention", "true" }, { "share_ff", "false" },
        { "av_cross_ada_norm", "true" }, { "use_middle_indices_grid", "true" },
        { "rope_type", "\"split\"" }, { "use_keyframes_abs_pos_embedding", "false" } };
    for (size_t i = 0; rc == 0 && i < sizeof (fixed) / sizeof (fixed [0]); i++)
        rc = s_expect (t, fixed [i].key, fixed [i].want, err);
    bool proj_before = false;
    if (rc == 0)
        rc = s_get_int (t, "num_layers", 48, 1, S_MAX_LAYERS, &c.layers, err)
          || s_get_int (t, "num_attention_heads", 32, 1, 1024, &c.heads, err)
          || s_get_int (t, "attention_head_dim", 128, 2, 1024, &c.head_dim, err)
          || s_get_int (t, "in_channels", 128, 1, 65536, &c.in_channels, err)
          || s_get_int (t, "out_channels", 128, 1, 65536, &c.out_channels, err)
          || s_get_int (t, "cross_attention_dim", 4096, 1, 1 << 20, &c.cross_attention_dim, err)
          || s_get_int (t, "audio_num_attention_heads", 32, 1, 1024, &c.audio_heads, err)
          || s_get_int (t, "audio_attention_head_dim", 64, 2, 1024, &c.audio_head_dim, err)
          || s_get_int (t, "audio_in_channels", 128, 1, 65536, &c.audio_in_channels, err)
          || s_get_int (t, "audio_out_channels", 128, 1, 65536, &c.audio_out_channels, err)
          || s_get_int (t, "audio_cross_attention_dim", 2048, 1, 1 << 20, &c.audio_cross_attention_dim, err)
          || s_get_num (t, "positional_embedding_theta", 10000.0, 1.0001, 1e12, &c.rope_theta, err)
          || s_get_num (t, "timestep_scale_multiplier", 1000, 1e-9, 1e9, &ts, err)
          || s_get_num (t, "av_ca_timestep_scale_multiplier", 1, 1e-9, 1e9, &avts, err)
          || s_get_num (t, "norm_eps", 1e-6, 1e-30, 1, &eps, err)
          || s_get_max_pos (t, "positional_embedding_max_pos", 3, c.max_pos, err)
          || s_get_max_pos (t, "audio_positional_embedding_max_pos", 1, &c.audio_max_pos, err)
          || s_get_bool (t, "apply_gated_attention", false, &c.gated_attention, err)
          || s_get_bool (t, "cross_attention_adaln", false, &c.cross_attention_adaln, err)
          || s_get_bool (t, "use_prompt_adaln_single", true, &c.prompt_adaln, err)
          || s_get_bool (t, "ff_bias", true, &c.ff_bias, err)
          || s_get_bool (t, "audio_ff_bias", true, &c.audio_ff_bias, err)
          || s_get_bool (t, "caption_proj_before_connector", false, &proj_before, err)? -1: 0;
    if (rc == 0 && c.heads != c.audio_heads) {
        //  check_config_value (num_attention_heads == audio_num_attention_heads) in the official
        //  configurator: the a<->v RoPE tables are cut per video head
        vdgx_set_error (err, "LTX-2 DiT config: num_attention_heads (%d) must equal "
                        "audio_num_attention_heads (%d)", c.heads, c.audio_heads);
        rc = -1;
    }
    if (rc == 0 && c.audio_cross_attention_dim != c.audio_heads * c.audio_head_dim) {
        vdgx_set_error (err, "LTX-2 DiT config: audio_cross_attention_dim %d must be the audio "
                        "width %d x %d", c.audio_cross_attention_dim, c.audio_heads, c.audio_head_dim);
        rc = -1;
    }
    json_t *fp = json_object_get (t, "frequencies_precision");
    c.rope_double = json_is_string (fp) && strcmp (json_string_value (fp), "float64") == 0;
    c.timestep_scale = ts;
    c.av_ca_timestep_scale = avts;
    c.norm_eps = eps;
    c.prompt_adaln = c.cross_attention_adaln && c.prompt_adaln;
    c.caption_projection = !proj_before;
    if (rc == 0 && c.caption_projection
     && s_get_int (t, "caption_channels", 3840, 1, 1 << 20, &c.caption_channels, err))
        rc = -1;
    //  The a<->v gate timestep: the current code (the LTX-2.3 release line) embeds the other
    //  modality's sigma; checkpoints of the first release (LTX-2) were made with their own
    //  per-token timesteps.
    int major = 0, minor = 0;
    bool v23 = model_version && sscanf (model_version, "%d.%d", &major, &minor) == 2
            && (major > 2 || (major == 2 && minor >= 3));
    c.av_gate_other_sigma = proj_before || v23;
    if (rc == 0 && (c.heads * c.head_dim) % 2) {
        vdgx_set_error (err, "LTX-2 DiT config: odd attention width");
        rc = -1;
    }
    json_decref (root);
    if (rc == 0)
        *cfg = c;
    return rc;
}

int
ltx2_dit_config_from_ckpt (vdgx_ckpt_t *ckpt, ltx2_dit_config_t *cfg, char **err)
{
    assert (ckpt && cfg);
    return ltx2_dit_config_from_json (vdgx_ckpt_metadata (ckpt, "config"),
                                      vdgx_ckpt_metadata (ckpt, "model_version"), cfg, err);
}

int
ltx2_dit_config_preset (const char *name, ltx2_dit_config_t *cfg)
{
    if (!name || !cfg)
        return -1;
    const char *json;
    if (strcmp (name, "19b") == 0)
        json = "{\"transformer\": {\"caption_channels\": 3840, \"av_ca_timestep_scale_multiplier\": 1000,"
               " \"frequencies_precision\": \"float64\"}}";
    else
    if (strcmp (name, "22b") == 0)
        json = "{\"transformer\": {\"av_ca_timestep_scale_multiplier\": 1000, \"frequencies_precision\":"
               " \"float64\", \"apply_gated_attention\": true, \"cross_attention_adaln\": true,"
               " \"caption_proj_before_connector\": true}}";
    else
        return -1;
    return ltx2_dit_config_from_json (json, NULL, cfg, NULL);
}

//  ---------------------------------------------------------------------------------------
//  Weights: one walk over every tensor, loading or counting

typedef struct {
    ltx2_dit_t *self;           //  NULL: count only
    vdgx_wsrc_t *src;
    const ltx2_dit_config_t *cfg;
    vdgx_wfmt_t block_fmt, small_fmt;
    uint64_t bytes, params;
    char **err;
} s_loader_t;

static int
s_lin (s_loader_t *L, vdgx_linear_t *l, const char *name, int64_t n, int64_t k, bool bias, bool block)
{
    vdgx_wfmt_t fmt = vdgx_linear_fmt_for (block? L->block_fmt: L->small_fmt, k);
    L->params += (uint64_t) (n * k + (bias? n: 0));
    L->bytes += vdgx_wfmt_bytes (fmt, n, k) + (bias? sizeof (float) * (size_t) n: 0);
    if (!L->self)
        return 0;
    return vdgx_wsrc_linear (L->src, L->self->backend, name, n, k, fmt, bias? VDGX_DTYPE_F32: -1, l, L->err);
}

static int
s_tab (s_loader_t *L, vdgx_tensor_t *t, const char *name, int64_t rows, int64_t cols)
{
    L->params += (uint64_t) (rows * cols);
    L->bytes += sizeof (float) * (uint64_t) (rows * cols);
    if (!L->self)
        return 0;
    const int64_t shape [2] = { rows, cols };
    return vdgx_wsrc_tensor (L->src, L->self->backend, name, VDGX_DTYPE_F32, 2, shape, t, L->err);
}

static int
s_load_attn (s_loader_t *L, s_attn_t *at, const char *prefix, int64_t qdim, int64_t kdim,
             int64_t heads, int64_t head_dim)
{
    const int64_t inner = heads * head_dim;
    const double eps = L->cfg->norm_eps;
    char name [256];
    if (L->self)
        vdgx_attn_init (&at->a, qdim, heads, heads, head_dim);
    at->gated = L->cfg->gated_attention;
    const struct { const char *n; vdgx_linear_t *l; int64_t rows, cols; } lin [] = {
        { "to_q", &at->a.q, inner, qdim }, { "to_k", &at->a.k, inner, kdim },
        { "to_v", &at->a.v, inner, kdim }, { "to_out.0", &at->a.o, qdim, inner },
        { "to_gate_logits", &at->gate, heads, qdim } };
    for (size_t i = 0; i < 5; i++) {
        if (i == 4 && !at->gated)
            continue;
        snprintf (name, sizeof (name), "%s.%s", prefix, lin [i].n);
        if (s_lin (L, lin [i].l, name, lin [i].rows, lin [i].cols, true, true))
            return -1;
    }
    for (int j = 0; j < 2; j++) {
        L->params += (uint64_t) inner;
        L->bytes += sizeof (float) * (uint64_t) inner;
        if (!L->self)
            continue;
        snprintf (name, sizeof (name), "%s.%s_norm", prefix, j? "k": "q");
        if (vdgx_wsrc_norm (L->src, L->self->backend, j? &at->a.k_norm: &at->a.q_norm, VDGX_NORM_RMS,
                            name, inner, (float) eps, true, false, false, L->err))
            return -1;
    }
    at->a.has_q_norm = at->a.has_k_norm = true;
    return 0;
}

static int
s_load_adaln (s_loader_t *L, s_adaln_t *ad, const char *prefix, int64_t dim, int64_t rows)
{
    char name [256];
    ad->dim = dim;
    ad->rows = rows;
    snprintf (name, sizeof (name), "%s.emb.timestep_embedder.linear_1", prefix);
    if (s_lin (L, &ad->l1, name, dim, S_FREQ_DIM, true, false))
        return -1;
    snprintf (name, sizeof (name), "%s.emb.timestep_embedder.linear_2", prefix);
    if (s_lin (L, &ad->l2, name, dim, dim, true, false))
        return -1;
    snprintf (name, sizeof (name), "%s.linear", prefix);
    return s_lin (L, &ad->lin, name, rows * dim, dim, true, false);
}

static int
s_load_mlp (s_loader_t *L, vdgx_mlp_t *m, const char *prefix, int64_t dim, bool bias)
{
    char name [256];
    m->kind = VDGX_MLP_PLAIN;
    m->act = VDGX_ACT_GELU_TANH;
    m->dim = dim;
    m->hidden = 4 * dim;
    snprintf (name, sizeof (name), "%s.net.0.proj", prefix);
    if (s_lin (L, &m->up, name, 4 * dim, dim, bias, true))
        return -1;
    snprintf (name, sizeof (name), "%s.net.2", prefix);
    return s_lin (L, &m->down, name, dim, 4 * dim, bias, true);
}

//  Every tensor of the model, in checkpoint order of kinds. self->blocks when loading; one
//  scratch block when counting.
static int
s_walk (s_loader_t *L, s_block_t *blocks)
{
    const ltx2_dit_config_t *c = L->cfg;
    ltx2_dit_t *s = L->self;
    ltx2_dit_t dummy;
    if (!s)
        memset (&dummy, 0, sizeof (dummy));
    ltx2_dit_t *m = s? s: &dummy;
    const int64_t C = (int64_t) c->heads * c->head_dim, Ca = (int64_t) c->audio_heads * c->audio_head_dim;
    const int64_t R = c->cross_attention_adaln? 9: 6;
    const int64_t vctx = c->caption_projection? C: c->cross_attention_dim;
    const int64_t actx = c->caption_projection? Ca: c->audio_cross_attention_dim;
    if (s_lin (L, &m->patch, "patchify_proj", C, c->in_channels, true, false)
     || s_lin (L, &m->a_patch, "audio_patchify_proj", Ca, c->audio_in_channels, true, false)
     || s_lin (L, &m->proj_out, "proj_out", c->out_channels, C, true, false)
     || s_lin (L, &m->a_proj_out, "audio_proj_out", c->audio_out_channels, Ca, true, false)
     || s_tab (L, &m->out_sst, "scale_shift_table", 2, C)
     || s_tab (L, &m->a_out_sst, "audio_scale_shift_table", 2, Ca)
     || s_load_adaln (L, &m->adaln, "adaln_single", C, R)
     || s_load_adaln (L, &m->a_adaln, "audio_adaln_single", Ca, R)
     || s_load_adaln (L, &m->css_v, "av_ca_video_scale_shift_adaln_single", C, 4)
     || s_load_adaln (L, &m->css_a, "av_ca_audio_scale_shift_adaln_single", Ca, 4)
     || s_load_adaln (L, &m->gate_a2v, "av_ca_a2v_gate_adaln_single", C, 1)
     || s_load_adaln (L, &m->gate_v2a, "av_ca_v2a_gate_adaln_single", Ca, 1))
        return -1;
    if (c->prompt_adaln
     && (s_load_adaln (L, &m->prompt, "prompt_adaln_single", C, 2)
      || s_load_adaln (L, &m->a_prompt, "audio_prompt_adaln_single", Ca, 2)))
        return -1;
    if (c->caption_projection
     && (s_lin (L, &m->cap1, "caption_projection.linear_1", C, c->caption_channels, true, false)
      || s_lin (L, &m->cap2, "caption_projection.linear_2", C, C, true, false)
      || s_lin (L, &m->a_cap1, "audio_caption_projection.linear_1", Ca, c->caption_channels, true, false)
      || s_lin (L, &m->a_cap2, "audio_caption_projection.linear_2", Ca, Ca, true, false)))
        return -1;
    for (int i = 0; i < c->layers; i++) {
        s_block_t *bl = blocks + (s? i: 0);
        char p [64], name [128];
        snprintf (p, sizeof (p), "transformer_blocks.%d", i);
#define S_NAME(x) (snprintf (name, sizeof (name), "%s.%s", p, (x)), name)
        if (s_load_attn (L, &bl->attn1, S_NAME ("attn1"), C, C, c->heads, c->head_dim)
         || s_load_attn (L, &bl->attn2, S_NAME ("attn2"), C, vctx, c->heads, c->head_dim)
         || s_load_attn (L, &bl->a_attn1, S_NAME ("audio_attn1"), Ca, Ca, c->audio_heads, c->audio_head_dim)
         || s_load_attn (L, &bl->a_attn2, S_NAME ("audio_attn2"), Ca, actx, c->audio_heads, c->audio_head_dim)
         || s_load_attn (L, &bl->a2v, S_NAME ("audio_to_video_attn"), C, Ca, c->audio_heads, c->audio_head_dim)
         || s_load_attn (L, &bl->v2a, S_NAME ("video_to_audio_attn"), Ca, C, c->audio_heads, c->audio_head_dim)
         || s_load_mlp (L, &bl->ff, S_NAME ("ff"), C, c->ff_bias)
         || s_load_mlp (L, &bl->a_ff, S_NAME ("audio_ff"), Ca, c->audio_ff_bias)
         || s_tab (L, &bl->sst, S_NAME ("scale_shift_table"), R, C)
         || s_tab (L, &bl->a_sst, S_NAME ("audio_scale_shift_table"), R, Ca)
         || s_tab (L, &bl->av_v, S_NAME ("scale_shift_table_a2v_ca_video"), 5, C)
         || s_tab (L, &bl->av_a, S_NAME ("scale_shift_table_a2v_ca_audio"), 5, Ca))
            return -1;
        if (c->cross_attention_adaln
         && (s_tab (L, &bl->psst, S_NAME ("prompt_scale_shift_table"), 2, C)
          || s_tab (L, &bl->a_psst, S_NAME ("audio_prompt_scale_shift_table"), 2, Ca)))
            return -1;
#undef S_NAME
    }
    return 0;
}

uint64_t
ltx2_dit_weight_bytes (const ltx2_dit_config_t *cfg, vdgx_wfmt_t fmt, bool small_bf16)
{
    assert (cfg);
    s_loader_t L = { NULL, NULL, cfg, fmt, small_bf16? VDGX_WFMT_BF16: VDGX_WFMT_F32, 0, 0, NULL };
    s_block_t scratch;
    memset (&scratch, 0, sizeof (scratch));
    s_walk (&L, &scratch);
    return L.bytes;
}

uint64_t
ltx2_dit_param_count (const ltx2_dit_config_t *cfg)
{
    assert (cfg);
    s_loader_t L = { NULL, NULL, cfg, VDGX_WFMT_F32, VDGX_WFMT_F32, 0, 0, NULL };
    s_block_t scratch;
    memset (&scratch, 0, sizeof (scratch));
    s_walk (&L, &scratch);
    return L.params;
}

static void
s_attn_release (vdgx_backend_t *b, s_attn_t *at)
{
    vdgx_attn_release (b, &at->a);
    vdgx_linear_release (b, &at->gate);
}

static void
s_adaln_release (vdgx_backend_t *b, s_adaln_t *ad)
{
    vdgx_linear_release (b, &ad->l1);
    vdgx_linear_release (b, &ad->l2);
    vdgx_linear_release (b, &ad->lin);
}

void
ltx2_dit_destroy (ltx2_dit_t **self_p)
{
    assert (self_p);
    ltx2_dit_t *self = *self_p;
    if (!self)
        return;
    vdgx_backend_t *b = self->backend;
    for (int i = 0; self->blocks && i < self->cfg.layers; i++) {
        s_block_t *bl = &self->blocks [i];
        s_attn_t *ats [6] = { &bl->attn1, &bl->attn2, &bl->a_attn1, &bl->a_attn2, &bl->a2v, &bl->v2a };
        for (int j = 0; j < 6; j++)
            s_attn_release (b, ats [j]);
        vdgx_mlp_release (b, &bl->ff);
        vdgx_mlp_release (b, &bl->a_ff);
        vdgx_tensor_t *ts [6] = { &bl->sst, &bl->a_sst, &bl->av_v, &bl->av_a, &bl->psst, &bl->a_psst };
        for (int j = 0; j < 6; j++)
            vdgx_nn_free (b, ts [j]);
    }
    free (self->blocks);
    vdgx_linear_t *ls [8] = { &self->patch, &self->a_patch, &self->proj_out, &self->a_proj_out,
                              &self->cap1, &self->cap2, &self->a_cap1, &self->a_cap2 };
    for (int j = 0; j < 8; j++)
        vdgx_linear_release (b, ls [j]);
    s_adaln_t *ads [8] = { &self->adaln, &self->a_adaln, &self->prompt, &self->a_prompt,
                           &self->css_v, &self->css_a, &self->gate_a2v, &self->gate_v2a };
    for (int j = 0; j < 8; j++)
        s_adaln_release (b, ads [j]);
    vdgx_nn_free (b, &self->out_sst);
    vdgx_nn_free (b, &self->a_out_sst);
    vdgx_norm_release (b, &self->rms_v);
    vdgx_norm_release (b, &self->rms_a);
    vdgx_norm_release (b, &self->ln_v);
    vdgx_norm_release (b, &self->ln_a);
    free (self);
    *self_p = NULL;
}

ltx2_dit_t *
ltx2_dit_new (vdgx_backend_t *backend, vdgx_wsrc_t *src, const ltx2_dit_config_t *cfg,
              const char *precision, char **err)
{
    assert (backend && src && cfg);
    vdgx_wfmt_t fmt;
    if (vdgx_precision_parse (precision, &fmt)) {
        vdgx_set_error (err, "LTX-2 DiT: unknown precision '%s'", precision);
        return NULL;
    }
    if (cfg->layers < 1 || cfg->layers > S_MAX_LAYERS || cfg->heads < 1 || cfg->head_dim < 2
     || cfg->audio_heads != cfg->heads || cfg->audio_head_dim < 2
     || cfg->audio_cross_attention_dim != cfg->audio_heads * cfg->audio_head_dim
     || (cfg->caption_projection && cfg->caption_channels < 1)) {
        vdgx_set_error (err, "LTX-2 DiT: invalid configuration");
        return NULL;
    }
    ltx2_dit_t *self = (ltx2_dit_t *) calloc (1, sizeof (ltx2_dit_t));
    if (!self || !(self->blocks = (s_block_t *) calloc ((size_t) cfg->layers, sizeof (s_block_t)))) {
        free (self);
        vdgx_set_error (err, "LTX-2 DiT: out of memory");
        return NULL;
    }
    self->backend = backend;
    self->cfg = *cfg;
    self->act = vdgx_backend_act_dtype (backend);
    self->block_fmt = fmt;
    self->small_fmt = self->act == VDGX_DTYPE_F32? VDGX_WFMT_F32: VDGX_WFMT_BF16;
    self->bf16_pos = self->act == VDGX_DTYPE_BF16;
    self->dim = (int64_t) cfg->heads * cfg->head_dim;
    self->adim = (int64_t) cfg->audio_heads * cfg->audio_head_dim;
    self->rows = cfg->cross_attention_adaln? 9: 6;
    s_loader_t L = { self, src, cfg, self->block_fmt, self->small_fmt, 0, 0, err };
    const float eps = (float) cfg->norm_eps;
    if (s_walk (&L, self->blocks)
     || vdgx_norm_init (backend, &self->rms_v, VDGX_NORM_RMS, self->dim, eps, NULL, NULL, false, err)
     || vdgx_norm_init (backend, &self->rms_a, VDGX_NORM_RMS, self->adim, eps, NULL, NULL, false, err)
     || vdgx_norm_init (backend, &self->ln_v, VDGX_NORM_LAYER, self->dim, eps, NULL, NULL, false, err)
     || vdgx_norm_init (backend, &self->ln_a, VDGX_NORM_LAYER, self->adim, eps, NULL, NULL, false, err)) {
        ltx2_dit_destroy (&self);
        return NULL;
    }
    self->bytes = L.bytes;
    return self;
}

const ltx2_dit_config_t *
ltx2_dit_config (ltx2_dit_t *self)
{
    assert (self);
    return &self->cfg;
}

size_t
ltx2_dit_bytes (ltx2_dit_t *self)
{
    assert (self);
    return self->bytes;
}

void
ltx2_dit_set_bf16_positions (ltx2_dit_t *self, bool on)
{
    assert (self);
    self->bf16_pos = on;
}

void
ltx2_dit_set_tap (ltx2_dit_t *self, ltx2_dit_tap_fn *fn, void *arg)
{
    assert (self);
    self->tap = fn;
    self->tap_arg = arg;
}

//  ---------------------------------------------------------------------------------------
//  Positions and RoPE

void
ltx2_dit_video_positions (int64_t frames, int64_t height, int64_t width, double fps, float *pos)
{
    assert (frames >= 1 && height >= 1 && width >= 1 && fps > 0 && pos);
    const int64_t n = frames * height * width;
    for (int64_t f = 0, i = 0; f < frames; f++)
        for (int64_t h = 0; h < height; h++)
            for (int64_t w = 0; w < width; w++, i++) {
                //  pixel bounds (f*8 - 7 clamped: the first latent frame is one pixel frame),
                //  the time axis divided by fps in float32 as the latent tools do
                float t0 = (float) (8 * f - 7 < 0? 0: 8 * f - 7), t1 = (float) (8 * f + 1);
                pos [(0 * n + i) * 2 + 0] = t0 / (float) fps;
                pos [(0 * n + i) * 2 + 1] = t1 / (float) fps;
                pos [(1 * n + i) * 2 + 0] = (float) (32 * h);
                pos [(1 * n + i) * 2 + 1] = (float) (32 * h + 32);
                pos [(2 * n + i) * 2 + 0] = (float) (32 * w);
                pos [(2 * n + i) * 2 + 1] = (float) (32 * w + 32);
            }
}

void
ltx2_dit_audio_positions (int64_t frames, float *pos)
{
    assert (frames >= 0 && pos);
    const float hop_s = 160.0f / 16000.0f;
    for (int64_t i = 0; i < frames; i++) {
        int64_t a = 4 * i - 3, e = 4 * i + 1;
        pos [i * 2 + 0] = (float) (a < 0? 0: a) * hop_s;
        pos [i * 2 + 1] = (float) (e < 0? 0: e) * hop_s;
    }
}

//  Round to bf16 (nearest even), as a float.
static float
s_bf16 (float x)
{
    uint32_t u;
    memcpy (&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u)
        u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy (&x, &u, 4);
    return x;
}

void
ltx2_dit_rope (const float *positions, int naxes, int64_t n, const int *max_pos, double theta,
               bool double_grid, bool bf16, int dim, float *cos_t, float *sin_t)
{
    assert (positions && naxes >= 1 && naxes <= 3 && n >= 0 && max_pos && dim >= 2 && cos_t && sin_t);
    const int half = dim / 2, nf = dim / (2 * naxes), pad = half - nf * naxes;
    float grid [4096];
    assert (nf <= 4096);
    for (int i = 0; i < nf; i++) {
        if (double_grid) {
            //  numpy: theta ** linspace(0, 1, nf) in float64 (last point exactly 1), * pi / 2
            double e = nf > 1? (i == nf - 1? 1.0: (double) i * (1.0 / (double) (nf - 1))): 0.0;
            grid [i] = (float) (pow (theta, e) * M_PI / 2.0);
        }
        else {
            //  torch float32 linspace (filled from both ends), theta ** x, * pi / 2 in float32
            float step = nf > 1? 1.0f / (float) (nf - 1): 0.0f;
            float e = i < nf / 2? step * (float) i: 1.0f - step * (float) (nf - 1 - i);
            grid [i] = powf ((float) theta, e) * (float) M_PI / 2.0f;
        }
    }
    for (int64_t t = 0; t < n; t++) {
        float *cr = cos_t + t * half, *sr = sin_t + t * half;
        for (int j = 0; j < pad; j++) {
            cr [j] = 1.0f;
            sr [j] = 0.0f;
        }
        for (int a = 0; a < naxes; a++) {
            float s = positions [((int64_t) a * n + t) * 2], e = positions [((int64_t) a * n + t) * 2 + 1];
            float frac;
            if (bf16) {
                float mid = s_bf16 (s_bf16 (s) + s_bf16 (e)) / 2.0f;
                frac = s_bf16 (s_bf16 (mid / (float) max_pos [a]) * 2.0f);
                frac = s_bf16 (frac - 1.0f);
            }
            else {
                float mid = (s + e) / 2.0f;
                frac = mid / (float) max_pos [a] * 2.0f - 1.0f;
            }
            for (int i = 0; i < nf; i++) {
                float angle = grid [i] * frac;
                cr [pad + i * naxes + a] = cosf (angle);
                sr [pad + i * naxes + a] = sinf (angle);
            }
        }
    }
}

//  ---------------------------------------------------------------------------------------
//  Forward

//  Tensors of one forward; released from a mark on (per block) or all at the end.
typedef struct {
    vdgx_backend_t *b;
    vdgx_tensor_t t [S_WORK_SLOTS];
    int n;
} s_work_t;

static vdgx_tensor_t *
s_new (s_work_t *w, vdgx_dtype_t dtype, int64_t d0, int64_t d1, int64_t d2)
{
    if (w->n >= S_WORK_SLOTS) {
        vdgx_backend_set_error (w->b, "ltx2 dit: out of work slots");
        return NULL;
    }
    vdgx_tensor_t *t = &w->t [w->n];
    if (vdgx_nn_alloc (w->b, t, dtype, d0, d1, d2, 0))
        return NULL;
    w->n++;
    return t;
}

static void
s_release_to (s_work_t *w, int mark)
{
    while (w->n > mark)
        vdgx_nn_free (w->b, &w->t [--w->n]);
}

static void
s_tap (ltx2_dit_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_arg, name, t);
}

static void
s_tapf (ltx2_dit_t *self, const vdgx_tensor_t *t, const char *fmt, const char *a, const char *c)
{
    if (!self->tap)
        return;
    char name [128];
    snprintf (name, sizeof (name), fmt, a, c);
    self->tap (self->tap_arg, name, t);
}

//  AdaLayerNormSingle on the host timesteps ts [M] (already scaled): mod [M, rows*dim] F32 and,
//  when emb_out, the embedded timestep [M, dim] F32.
static int
s_adaln (ltx2_dit_t *self, s_work_t *w, const s_adaln_t *ad, const float *ts, int64_t M,
         vdgx_tensor_t **mod_out, vdgx_tensor_t **emb_out)
{
    vdgx_backend_t *b = self->backend;
    float *sin_h = (float *) malloc (sizeof (float) * (size_t) (M * S_FREQ_DIM));
    if (!sin_h) {
        vdgx_backend_set_error (b, "out of memory");
        return -1;
    }
    for (int64_t i = 0; i < M; i++)
        vdgx_nn_sinusoidal_f32 (ts [i], S_FREQ_DIM, 10000.0, 0.0f, true, sin_h + i * S_FREQ_DIM);
    vdgx_tensor_t *sn = s_new (w, VDGX_DTYPE_F32, M, S_FREQ_DIM, 0);
    int rc = sn? vdgx_tensor_from_f32 (b, sn, sin_h): -1;
    free (sin_h);
    if (rc)
        return -1;
    vdgx_tensor_t *h = s_new (w, VDGX_DTYPE_F32, M, ad->dim, 0);
    vdgx_tensor_t *emb = s_new (w, VDGX_DTYPE_F32, M, ad->dim, 0);
    vdgx_tensor_t *mod = s_new (w, VDGX_DTYPE_F32, M, ad->rows * ad->dim, 0);
    if (!h || !emb || !mod
     || vdgx_linear_forward (b, &ad->l1, h, sn) || vdgx_op_silu (b, h, h)
     || vdgx_linear_forward (b, &ad->l2, emb, h) || vdgx_op_silu (b, h, emb)
     || vdgx_linear_forward (b, &ad->lin, mod, h))
        return -1;
    *mod_out = mod;
    if (emb_out)
        *emb_out = emb;
    return 0;
}

//  out [M, C] = table row r [C] + mod [M, rows*C] columns of row r.
static int
s_row (ltx2_dit_t *self, s_work_t *w, const vdgx_tensor_t *table, int r, const vdgx_tensor_t *mod,
       int64_t rows, int64_t C, vdgx_tensor_t **out)
{
    vdgx_backend_t *b = self->backend;
    const int64_t M = vdgx_tensor_numel (mod) / (rows * C);
    vdgx_tensor_t *o = s_new (w, VDGX_DTYPE_F32, M, 1, C);
    if (!o)
        return -1;
    vdgx_tensor_t m3 = vdgx_nn_view3 (mod, M, rows, C);
    vdgx_tensor_t tr = vdgx_nn_rows (table, r, 1);
    if (vdgx_op_slice (b, o, &m3, 1, r, 1) || vdgx_op_add_scaled (b, o, o, &tr, 1.0f))
        return -1;
    *o = vdgx_nn_view2 (o, M, C);
    *out = o;
    return 0;
}

//  y = x * (1 + scale) + shift with one row per token or per sample (x [B, N, C]).
static int
s_modulate (ltx2_dit_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *shift,
            const vdgx_tensor_t *scale)
{
    if (vdgx_tensor_numel (shift) == vdgx_tensor_numel (x))
        return vdgx_adaln_modulate_tokens (self->backend, y, x, shift, scale);
    return vdgx_adaln_modulate (self->backend, y, x, shift, scale);
}

//  x += y * gate, gate per token or per sample.
static int
s_gated_add (ltx2_dit_t *self, vdgx_tensor_t *x, const vdgx_tensor_t *y, const vdgx_tensor_t *gate)
{
    if (vdgx_tensor_numel (gate) == vdgx_tensor_numel (x))
        return vdgx_adaln_gate_tokens (self->backend, x, y, gate);
    return vdgx_adaln_gate (self->backend, x, y, gate);
}

//  One attention module: y [B, Nq, qdim] = to_out (gate (attn (q (x), k (ctx), v (ctx)))) with
//  q/k RMS norms across heads and RoPE when tables are given (q table rows per (b, n, head)).
static int
s_attention (ltx2_dit_t *self, s_work_t *w, const s_attn_t *at, vdgx_tensor_t *y,
             const vdgx_tensor_t *x, const vdgx_tensor_t *ctx, const vdgx_rope_t *rq,
             const vdgx_rope_t *rk, const char *tap)
{
    vdgx_backend_t *b = self->backend;
    const int64_t B = x->shape [0], Nq = x->shape [1], Nk = ctx->shape [1];
    const int64_t H = at->a.heads, D = at->a.head_dim, inner = H * D;
    const int mark = w->n;
    vdgx_tensor_t *q = s_new (w, self->act, B, Nq, inner), *qn = s_new (w, self->act, B, Nq, inner);
    vdgx_tensor_t *k = s_new (w, self->act, B, Nk, inner), *kn = s_new (w, self->act, B, Nk, inner);
    vdgx_tensor_t *v = s_new (w, self->act, B, Nk, inner), *o = s_new (w, self->act, B, Nq, inner);
    if (!q || !qn || !k || !kn || !v || !o
     || vdgx_linear_forward (b, &at->a.q, q, x) || vdgx_linear_forward (b, &at->a.k, k, ctx)
     || vdgx_linear_forward (b, &at->a.v, v, ctx)
     || vdgx_norm_forward (b, &at->a.q_norm, qn, q) || vdgx_norm_forward (b, &at->a.k_norm, kn, k))
        return -1;
    if (tap) {
        s_tapf (self, x, "%s.%s", tap, "in_x");
        if (ctx != x)
            s_tapf (self, ctx, "%s.%s", tap, "in_context");
        s_tapf (self, qn, "%s.%s", tap, "q_normed");
        s_tapf (self, kn, "%s.%s", tap, "k_normed");
    }
    vdgx_tensor_t *qa = qn, *ka = kn;
    if (rq) {
        //  per (sample, token, head-chunk) tables: [1, rows, 1, width]
        const int64_t rwq = rq->pairs * 2, rwk = rk->pairs * 2;
        vdgx_tensor_t qi = vdgx_nn_view4 (qn, 1, B * Nq * inner / rwq, 1, rwq);
        vdgx_tensor_t qo = vdgx_nn_view4 (q, 1, B * Nq * inner / rwq, 1, rwq);
        vdgx_tensor_t ki = vdgx_nn_view4 (kn, 1, B * Nk * inner / rwk, 1, rwk);
        vdgx_tensor_t ko = vdgx_nn_view4 (k, 1, B * Nk * inner / rwk, 1, rwk);
        if (vdgx_rope_apply (b, rq, &qo, &qi) || vdgx_rope_apply (b, rk, &ko, &ki))
            return -1;
        qa = q;
        ka = k;
    }
    vdgx_tensor_t q4 = vdgx_nn_view4 (qa, B, Nq, H, D), k4 = vdgx_nn_view4 (ka, B, Nk, H, D);
    vdgx_tensor_t v4 = vdgx_nn_view4 (v, B, Nk, H, D), o4 = vdgx_nn_view4 (o, B, Nq, H, D);
    if (vdgx_attn_core (b, &at->a, &o4, &q4, &k4, &v4, NULL))
        return -1;
    if (at->gated) {
        vdgx_tensor_t *gl = s_new (w, VDGX_DTYPE_F32, B, Nq, H);
        if (!gl || vdgx_linear_forward (b, &at->gate, gl, x))
            return -1;
        if (tap)
            s_tapf (self, gl, "%s.%s", tap, "gate_logits");
        if (vdgx_attn_head_gate (b, &o4, gl, 2.0f))
            return -1;
        if (tap)
            s_tapf (self, o, "%s.%s", tap, "attn_gated");
    }
    else
    if (tap)
        s_tapf (self, o, "%s.%s", tap, "attn_core");
    if (vdgx_linear_forward (b, &at->a.o, y, o))
        return -1;
    s_release_to (w, mark);
    return 0;
}

//  Host timesteps scaled as the official float32 code: ts * a (then * f when f != 1).
static float *
s_scaled (const float *ts, int64_t n, double a, double f)
{
    float *out = (float *) malloc (sizeof (float) * (size_t) (n? n: 1));
    if (!out)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        float v = ts [i] * (float) a;
        out [i] = f != 1.0? v * (float) f: v;
    }
    return out;
}

//  Per-stream state of a forward.
typedef struct {
    const char *name;                   //  "video" / "audio"
    int64_t N, C, H;
    vdgx_tensor_t *x;                   //  residual [B, N, C] F32
    vdgx_tensor_t *mod, *emb;           //  adaln [M, rows*C], embedded [M, C]: M = B*N, or B when
                                        //  every token of a sample has the same timestep
    vdgx_tensor_t *pmod;                //  prompt adaln [B, 2C] (or NULL)
    vdgx_tensor_t *css;                 //  cross scale/shift [M, 4C]
    vdgx_tensor_t *cgate;               //  cross gate [M, C] or [B, C]
    vdgx_tensor_t *ctx;                 //  context [B, L, C]
    vdgx_rope_t rope, xrope;            //  self / a<->v tables
} s_stream_t;

static int
s_upload_rope (vdgx_backend_t *b, vdgx_rope_t *r, const float *cs, const float *sn, int64_t rows,
               int64_t pairs)
{
    const int64_t shape [2] = { rows, pairs };
    r->layout = VDGX_ROPE_HALF;
    r->len = rows;
    r->pairs = pairs;
    return vdgx_nn_upload (b, &r->cos, VDGX_DTYPE_F32, 2, shape, cs)
        || vdgx_nn_upload (b, &r->sin, VDGX_DTYPE_F32, 2, shape, sn)? -1: 0;
}

//  Tables of B samples: positions [B, naxes, N, 2] -> [B*N*H, dim/(2H)] (only the first
//  `use_axes` axes: the a<->v tables take the time axis).
static int
s_rope (ltx2_dit_t *self, vdgx_rope_t *r, const float *positions, int64_t B, int naxes, int use_axes,
        int64_t N, const int *max_pos, int dim, int64_t H, bool bf16)
{
    const int64_t half = dim / 2;
    float *cs = (float *) malloc (sizeof (float) * (size_t) (B * N * half + 1));
    float *sn = (float *) malloc (sizeof (float) * (size_t) (B * N * half + 1));
    int rc = cs && sn? 0: -1;
    for (int64_t bb = 0; rc == 0 && bb < B; bb++)
        ltx2_dit_rope (positions + bb * naxes * N * 2, use_axes, N, max_pos, self->cfg.rope_theta,
                       self->cfg.rope_double, bf16, dim, cs + bb * N * half, sn + bb * N * half);
    if (rc == 0)
        rc = s_upload_rope (self->backend, r, cs, sn, B * N * H, half / H);
    free (cs);
    free (sn);
    return rc;
}

//  A stream's inputs: x, adaLN values, context, RoPE tables.
static int
s_prepare (ltx2_dit_t *self, s_work_t *w, s_stream_t *st, int64_t B, const float *latent,
           int64_t in_ch, const vdgx_linear_t *patch, const float *timesteps, const float *sigma,
           const float *other_sigma, const s_adaln_t *adaln, const s_adaln_t *prompt,
           const s_adaln_t *css, const s_adaln_t *cgate, const vdgx_tensor_t *ctx_in,
           const vdgx_linear_t *cap1, const vdgx_linear_t *cap2, const float *positions, int naxes,
           const int *max_pos, bool bf16_pos)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_dit_config_t *c = &self->cfg;
    const int64_t N = st->N, C = st->C, M = B * N;
    char name [96];
    vdgx_tensor_t *lat = s_new (w, VDGX_DTYPE_F32, B, N, in_ch);
    st->x = s_new (w, VDGX_DTYPE_F32, B, N, C);
    if (!lat || !st->x || vdgx_tensor_from_f32 (b, lat, latent) || vdgx_linear_forward (b, patch, st->x, lat))
        return -1;
    snprintf (name, sizeof (name), "pre.%s.x", st->name);
    s_tap (self, name, st->x);
    //  adaLN of the per-token timesteps (sigma * 1000); once per sample when a sample's
    //  tokens share one timestep (the same values, N times less memory and work)
    bool uniform = true;
    for (int64_t i = 0; uniform && i < M; i++)
        uniform = timesteps [i] == timesteps [(i / N) * N];
    float *first = (float *) malloc (sizeof (float) * (size_t) B);
    for (int64_t bb = 0; first && bb < B; bb++)
        first [bb] = timesteps [bb * N];
    const float *tsrc = uniform? first: timesteps;
    const int64_t TM = uniform? B: M;
    //  a<->v gate: the other modality's sigma (current code) or own per-token timesteps
    const double factor = c->av_ca_timestep_scale / c->timestep_scale;
    const bool own = !c->av_gate_other_sigma;
    float *ts = first? s_scaled (tsrc, TM, c->timestep_scale, 1.0): NULL;
    float *gts = !first? NULL: own? s_scaled (tsrc, TM, c->timestep_scale, factor)
                                  : s_scaled (other_sigma, B, c->timestep_scale, factor);
    free (first);
    int rc = ts && gts? s_adaln (self, w, adaln, ts, TM, &st->mod, &st->emb): -1;
    if (rc == 0)
        rc = s_adaln (self, w, css, ts, TM, &st->css, NULL);
    if (rc == 0)
        rc = s_adaln (self, w, cgate, gts, own? TM: B, &st->cgate, NULL);
    free (ts);
    free (gts);
    if (rc) {
        if (!vdgx_backend_error (b) [0])
            vdgx_backend_set_error (b, "out of memory");
        return -1;
    }
    snprintf (name, sizeof (name), "pre.%s.timesteps", st->name);
    s_tap (self, name, st->mod);
    snprintf (name, sizeof (name), "pre.%s.embedded_timestep", st->name);
    s_tap (self, name, st->emb);
    snprintf (name, sizeof (name), "pre.%s.cross_scale_shift_timestep", st->name);
    s_tap (self, name, st->css);
    snprintf (name, sizeof (name), "pre.%s.cross_gate_timestep", st->name);
    s_tap (self, name, st->cgate);
    if (c->prompt_adaln) {
        float *ps = s_scaled (sigma, B, c->timestep_scale, 1.0);
        rc = ps? s_adaln (self, w, prompt, ps, B, &st->pmod, NULL): -1;
        free (ps);
        if (rc)
            return -1;
        snprintf (name, sizeof (name), "pre.%s.prompt_timestep", st->name);
        s_tap (self, name, st->pmod);
    }
    //  context
    const int64_t L = ctx_in->ndim == 3? ctx_in->shape [1]: ctx_in->shape [0];
    const int64_t Cin = ctx_in->shape [ctx_in->ndim - 1];
    if ((ctx_in->ndim == 3 && ctx_in->shape [0] != B) || (ctx_in->ndim == 2 && B != 1)
     || (ctx_in->ndim != 2 && ctx_in->ndim != 3)) {
        vdgx_backend_set_error (b, "ltx2 dit: the %s context must be [B, L, C] (or [L, C] for one "
                                "sample)", st->name);
        return -1;
    }
    const int64_t want = c->caption_projection? c->caption_channels
                       : (st->name [0] == 'v'? c->cross_attention_dim: c->audio_cross_attention_dim);
    if (Cin != want) {
        vdgx_backend_set_error (b, "ltx2 dit: the %s context is %lld wide, the model takes %lld",
                                st->name, (long long) Cin, (long long) want);
        return -1;
    }
    vdgx_tensor_t ctx3 = vdgx_nn_view3 (ctx_in, B, L, Cin);
    st->ctx = s_new (w, VDGX_DTYPE_F32, B, L, c->caption_projection? C: Cin);
    if (!st->ctx)
        return -1;
    if (c->caption_projection) {
        vdgx_tensor_t *h = s_new (w, self->act, B, L, C);
        if (!h || vdgx_linear_forward (b, cap1, h, &ctx3) || vdgx_op_gelu_tanh (b, h, h)
         || vdgx_linear_forward (b, cap2, st->ctx, h))
            return -1;
    }
    else
    if (vdgx_op_cast (b, st->ctx, &ctx3))
        return -1;
    snprintf (name, sizeof (name), "pre.%s.context", st->name);
    s_tap (self, name, st->ctx);
    //  RoPE: self-attention over every axis; a<->v over time with the a<->v width and max_pos
    const int xmax [1] = { c->max_pos [0] > c->audio_max_pos? c->max_pos [0]: c->audio_max_pos };
    if (s_rope (self, &st->rope, positions, B, naxes, naxes, N, max_pos, (int) C, st->H, bf16_pos)
     || s_rope (self, &st->xrope, positions, B, naxes, 1, N, xmax, c->audio_cross_attention_dim,
                st->H, bf16_pos)) {
        if (!vdgx_backend_error (b) [0])
            vdgx_backend_set_error (b, "out of memory");
        return -1;
    }
    return 0;
}

//  y = rms (x) * (1 + scale) + shift with per-token rows r_shift, r_scale of table + mod.
static int
s_ada (ltx2_dit_t *self, s_work_t *w, vdgx_tensor_t *y, const vdgx_tensor_t *xn,
       const vdgx_tensor_t *table, const vdgx_tensor_t *mod, int64_t rows, int r_shift, int r_scale)
{
    const int64_t C = xn->shape [xn->ndim - 1];
    vdgx_tensor_t *shift, *scale;
    return s_row (self, w, table, r_shift, mod, rows, C, &shift)
        || s_row (self, w, table, r_scale, mod, rows, C, &scale)
        || s_modulate (self, y, xn, shift, scale)? -1: 0;
}

//  x += y * (table row r + mod row r), per token.
static int
s_gate (ltx2_dit_t *self, s_work_t *w, vdgx_tensor_t *x, const vdgx_tensor_t *y,
        const vdgx_tensor_t *table, const vdgx_tensor_t *mod, int64_t rows, int r)
{
    vdgx_tensor_t *g;
    return s_row (self, w, table, r, mod, rows, x->shape [2], &g)
        || s_gated_add (self, x, y, g)? -1: 0;
}

//  Self-attention and text cross-attention of one stream (block steps 1-3).
static int
s_stream_attn (ltx2_dit_t *self, s_work_t *w, s_stream_t *st, const s_attn_t *attn1,
               const s_attn_t *attn2, const vdgx_tensor_t *sst, const vdgx_tensor_t *psst,
               const vdgx_norm_t *rms, int blk)
{
    vdgx_backend_t *b = self->backend;
    const ltx2_dit_config_t *c = &self->cfg;
    const int64_t B = st->x->shape [0], N = st->N, C = st->C, R = self->rows;
    const int mark = w->n;
    char tap [64], name [128];
    vdgx_tensor_t *xn = s_new (w, VDGX_DTYPE_F32, B, N, C), *h = s_new (w, VDGX_DTYPE_F32, B, N, C);
    vdgx_tensor_t *y = s_new (w, VDGX_DTYPE_F32, B, N, C);
    if (!xn || !h || !y || vdgx_norm_forward (b, rms, xn, st->x)
     || s_ada (self, w, h, xn, sst, st->mod, R, 0, 1))
        return -1;
    snprintf (tap, sizeof (tap), "blk%d.%s.attn1", blk, st->name);
    if (s_attention (self, w, attn1, y, h, h, &st->rope, &st->rope, blk == 0? tap: NULL))
        return -1;
    s_tap (self, tap, y);
    if (s_gate (self, w, st->x, y, sst, st->mod, R, 2) || vdgx_norm_forward (b, rms, xn, st->x))
        return -1;
    snprintf (tap, sizeof (tap), "blk%d.%s.attn2", blk, st->name);
    if (c->cross_attention_adaln) {
        //  query: rows 6 (shift), 7 (scale); context: prompt table + prompt adaLN (per sample)
        const int64_t L = st->ctx->shape [1];
        vdgx_tensor_t *cm = s_new (w, VDGX_DTYPE_F32, B, L, C);
        vdgx_tensor_t *pv = s_new (w, VDGX_DTYPE_F32, B, 2, C);
        if (!cm || !pv || s_ada (self, w, h, xn, sst, st->mod, R, 6, 7))
            return -1;
        vdgx_tensor_t sh, sc;
        if (st->pmod) {
            //  rows [shift, scale] of table + prompt_timestep
            vdgx_tensor_t p3 = vdgx_nn_view3 (st->pmod, B, 2, C);
            if (vdgx_op_add_scaled (b, pv, &p3, psst, 1.0f))
                return -1;
            vdgx_tensor_t *s1 = s_new (w, VDGX_DTYPE_F32, B, 1, C), *s2 = s_new (w, VDGX_DTYPE_F32, B, 1, C);
            if (!s1 || !s2 || vdgx_op_slice (b, s1, pv, 1, 0, 1) || vdgx_op_slice (b, s2, pv, 1, 1, 1))
                return -1;
            sh = vdgx_nn_view2 (s1, B, C);
            sc = vdgx_nn_view2 (s2, B, C);
        }
        else {
            sh = vdgx_nn_rows (psst, 0, 1);
            sc = vdgx_nn_rows (psst, 1, 1);
        }
        if (vdgx_adaln_modulate (b, cm, st->ctx, &sh, &sc))
            return -1;
        if (blk == 0) {
            snprintf (name, sizeof (name), "%s.in_context_modulated", tap);
            s_tap (self, name, cm);
        }
        if (s_attention (self, w, attn2, y, h, cm, NULL, NULL, blk == 0? tap: NULL))
            return -1;
        s_tap (self, tap, y);
        if (s_gate (self, w, st->x, y, sst, st->mod, R, 8))
            return -1;
    }
    else {
        if (s_attention (self, w, attn2, y, xn, st->ctx, NULL, NULL, blk == 0? tap: NULL))
            return -1;
        s_tap (self, tap, y);
        if (vdgx_op_add_scaled (b, st->x, st->x, y, 1.0f))
            return -1;
    }
    s_release_to (w, mark);
    return 0;
}

//  x += gate * y with the a<->v gate: table row 4 + cross gate (per token or per sample).
static int
s_av_gate (ltx2_dit_t *self, s_work_t *w, s_stream_t *st, const vdgx_tensor_t *y,
           const vdgx_tensor_t *table)
{
    vdgx_backend_t *b = self->backend;
    const int64_t C = st->C;
    const int64_t M = vdgx_tensor_numel (st->cgate) / C;
    vdgx_tensor_t *g = s_new (w, VDGX_DTYPE_F32, M, C, 0);
    vdgx_tensor_t tr = vdgx_nn_rows (table, 4, 1);
    if (!g || vdgx_op_add_scaled (b, g, st->cgate, &tr, 1.0f))
        return -1;
    return s_gated_add (self, st->x, y, g);
}

//  Output head: LayerNorm, (1 + scale) and shift from table rows 1 / 0 + embedded timestep,
//  proj_out; result to host out.
static int
s_head (ltx2_dit_t *self, s_work_t *w, s_stream_t *st, const vdgx_norm_t *ln,
        const vdgx_tensor_t *table, const vdgx_linear_t *proj, int64_t out_ch, float *out)
{
    vdgx_backend_t *b = self->backend;
    const int64_t B = st->x->shape [0], N = st->N, C = st->C;
    vdgx_tensor_t *xn = s_new (w, VDGX_DTYPE_F32, B, N, C), *h = s_new (w, VDGX_DTYPE_F32, B, N, C);
    const int64_t M = vdgx_tensor_numel (st->emb) / C;
    vdgx_tensor_t *sh = s_new (w, VDGX_DTYPE_F32, M, C, 0), *sc = s_new (w, VDGX_DTYPE_F32, M, C, 0);
    vdgx_tensor_t *y = s_new (w, VDGX_DTYPE_F32, B, N, out_ch);
    vdgx_tensor_t r0 = vdgx_nn_rows (table, 0, 1), r1 = vdgx_nn_rows (table, 1, 1);
    if (!xn || !h || !sh || !sc || !y || vdgx_norm_forward (b, ln, xn, st->x)
     || vdgx_op_add_scaled (b, sh, st->emb, &r0, 1.0f) || vdgx_op_add_scaled (b, sc, st->emb, &r1, 1.0f)
     || s_modulate (self, h, xn, sh, sc) || vdgx_linear_forward (b, proj, y, h))
        return -1;
    return vdgx_tensor_to_f32 (b, y, out);
}

int
ltx2_dit_forward (ltx2_dit_t *self, const ltx2_dit_step_t *s, char **err)
{
    assert (self && s);
    vdgx_backend_t *b = self->backend;
    const ltx2_dit_config_t *c = &self->cfg;
    if (s->batch < 1 || s->video_tokens < 1 || s->audio_tokens < 1 || !s->video_latent
     || !s->video_timesteps || !s->video_positions || !s->video_context || !s->audio_latent
     || !s->audio_timesteps || !s->audio_positions || !s->audio_context || !s->video_out
     || !s->audio_out || ((c->prompt_adaln || c->av_gate_other_sigma) && (!s->video_sigma || !s->audio_sigma))) {
        vdgx_set_error (err, "ltx2 dit: the step lacks inputs (both streams, their timesteps, "
                        "positions, contexts%s and outputs are needed)",
                        c->prompt_adaln || c->av_gate_other_sigma? ", per-sample sigmas": "");
        return -1;
    }
    const int64_t B = s->batch;
    s_work_t w;
    memset (&w, 0, sizeof (w));
    w.b = b;
    s_stream_t v, a;
    memset (&v, 0, sizeof (v));
    memset (&a, 0, sizeof (a));
    v.name = "video";
    v.N = s->video_tokens;
    v.C = self->dim;
    v.H = c->heads;
    a.name = "audio";
    a.N = s->audio_tokens;
    a.C = self->adim;
    a.H = c->audio_heads;
    int rc = -1;
    if (s_prepare (self, &w, &v, B, s->video_latent, c->in_channels, &self->patch, s->video_timesteps,
                   s->video_sigma, s->audio_sigma, &self->adaln, &self->prompt, &self->css_v,
                   &self->gate_a2v, s->video_context, &self->cap1, &self->cap2, s->video_positions, 3,
                   c->max_pos, self->bf16_pos)
     || s_prepare (self, &w, &a, B, s->audio_latent, c->audio_in_channels, &self->a_patch,
                   s->audio_timesteps, s->audio_sigma, s->video_sigma, &self->a_adaln, &self->a_prompt,
                   &self->css_a, &self->gate_v2a, s->audio_context, &self->a_cap1, &self->a_cap2,
                   s->audio_positions, 1, &c->audio_max_pos, false))
        goto op_failed;
    for (int i = 0; i < c->layers; i++) {
        s_block_t *bl = &self->blocks [i];
        const int mark = w.n;
        char tap [64];
        if (s_stream_attn (self, &w, &v, &bl->attn1, &bl->attn2, &bl->sst, &bl->psst, &self->rms_v, i)
         || s_stream_attn (self, &w, &a, &bl->a_attn1, &bl->a_attn2, &bl->a_sst, &bl->a_psst, &self->rms_a, i))
            goto op_failed;
        //  audio <-> video: rms of both taken once, before either update
        vdgx_tensor_t *vn = s_new (&w, VDGX_DTYPE_F32, B, v.N, v.C), *an = s_new (&w, VDGX_DTYPE_F32, B, a.N, a.C);
        vdgx_tensor_t *vq = s_new (&w, VDGX_DTYPE_F32, B, v.N, v.C), *ak = s_new (&w, VDGX_DTYPE_F32, B, a.N, a.C);
        vdgx_tensor_t *vy = s_new (&w, VDGX_DTYPE_F32, B, v.N, v.C), *ay = s_new (&w, VDGX_DTYPE_F32, B, a.N, a.C);
        if (!vn || !an || !vq || !ak || !vy || !ay
         || vdgx_norm_forward (b, &self->rms_v, vn, v.x) || vdgx_norm_forward (b, &self->rms_a, an, a.x))
            goto op_failed;
        //  a2v: video rows (scale 0, shift 1), audio rows (0, 1)
        snprintf (tap, sizeof (tap), "blk%d.a2v", i);
        if (s_ada (self, &w, vq, vn, &bl->av_v, v.css, 4, 1, 0)
         || s_ada (self, &w, ak, an, &bl->av_a, a.css, 4, 1, 0)
         || s_attention (self, &w, &bl->a2v, vy, vq, ak, &v.xrope, &a.xrope, i == 0? tap: NULL))
            goto op_failed;
        s_tap (self, tap, vy);
        //  v2a: audio rows (2, 3), video rows (2, 3) of the pre-a2v video
        snprintf (tap, sizeof (tap), "blk%d.v2a", i);
        if (s_ada (self, &w, ak, an, &bl->av_a, a.css, 4, 3, 2)
         || s_ada (self, &w, vq, vn, &bl->av_v, v.css, 4, 3, 2)
         || s_attention (self, &w, &bl->v2a, ay, ak, vq, &a.xrope, &v.xrope, i == 0? tap: NULL))
            goto op_failed;
        s_tap (self, tap, ay);
        if (s_av_gate (self, &w, &v, vy, &bl->av_v) || s_av_gate (self, &w, &a, ay, &bl->av_a))
            goto op_failed;
        //  FFNs: rows 3 (shift), 4 (scale), 5 (gate)
        s_stream_t *sts [2] = { &v, &a };
        const vdgx_mlp_t *ffs [2] = { &bl->ff, &bl->a_ff };
        const vdgx_tensor_t *tabs [2] = { &bl->sst, &bl->a_sst };
        const vdgx_norm_t *rms [2] = { &self->rms_v, &self->rms_a };
        for (int m = 0; m < 2; m++) {
            s_stream_t *st = sts [m];
            vdgx_tensor_t *xn = m? an: vn, *h = m? ak: vq, *y = m? ay: vy;
            vdgx_tensor_t *h1 = s_new (&w, self->act, B, st->N, 4 * st->C);
            vdgx_tensor_t *h2 = s_new (&w, self->act, B, st->N, 4 * st->C);
            if (!h1 || !h2 || vdgx_norm_forward (b, rms [m], xn, st->x)
             || s_ada (self, &w, h, xn, tabs [m], st->mod, self->rows, 3, 4))
                goto op_failed;
            if (i == 0 && m == 0) {
                snprintf (tap, sizeof (tap), "blk%d.%s.ff.in_x", i, st->name);
                s_tap (self, tap, h);
            }
            if (vdgx_mlp_forward (b, ffs [m], y, h, h1, h2))
                goto op_failed;
            snprintf (tap, sizeof (tap), "blk%d.%s.ff", i, st->name);
            s_tap (self, tap, y);
            if (s_gate (self, &w, st->x, y, tabs [m], st->mod, self->rows, 5))
                goto op_failed;
        }
        snprintf (tap, sizeof (tap), "blk%d.video.out", i);
        s_tap (self, tap, v.x);
        snprintf (tap, sizeof (tap), "blk%d.audio.out", i);
        s_tap (self, tap, a.x);
        s_release_to (&w, mark);
    }
    if (s_head (self, &w, &v, &self->ln_v, &self->out_sst, &self->proj_out, c->out_channels, s->video_out)
     || s_head (self, &w, &a, &self->ln_a, &self->a_out_sst, &self->a_proj_out, c->audio_out_channels,
                s->audio_out))
        goto op_failed;
    rc = 0;
    goto done;
op_failed:
    vdgx_set_error (err, "ltx2 dit: %s", vdgx_backend_error (b)[0]? vdgx_backend_error (b): "out of memory");
done:
    vdgx_rope_release (b, &v.rope);
    vdgx_rope_release (b, &v.xrope);
    vdgx_rope_release (b, &a.rope);
    vdgx_rope_release (b, &a.xrope);
    s_release_to (&w, 0);
    return rc;
}
