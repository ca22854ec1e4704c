/*  gemma3.h - the Gemma 3 text decoder (class gemma3) on the vdgx compute layer.

    Computes what Google's Gemma 3 (gemma_pytorch / HF Gemma3TextModel) computes for a batch of
    left- or right-padded token rows, and hands out every hidden state:
      hidden [0]     = embed_tokens [ids] * sqrt(D)      (sqrt(D) a float32 constant, rounded to
                                                          the activation dtype as HF does)
      hidden [i]     = output of layer i-1, 1 <= i <= N-1
      hidden [N]     = final (1+w) RMSNorm of the output of layer N-1
    (the HF output_hidden_states tuple; the raw output of the last layer is kept apart).
    A layer is a sandwich with no bias anywhere:
      h   = x + post_attention_norm (attn (input_norm (x)))
      out = h + post_feedforward_norm (down (gelu_tanh (gate (f)) * up (f))), f = pre_ff_norm (h)
    every norm y = x * rsqrt (mean (x^2) + eps) * (1 + w) in f32 (weights stored without the +1);
    attention is GQA (query head h reads kv head h / (H/KV)) with per-head q/k (1+w) RMSNorms
    over head_dim, then rotate-half RoPE, then softmax (q.k * query_pre_attn_scalar^-0.5).
    Layer i is global when (i+1) % sliding_pattern == 0 (or as config.json's layer_types say):
    global layers use rope_theta with linear scaling (positions / factor) and a causal mask;
    local layers use rope_local_base_freq and a sliding window (key j visible to query i iff
    i - window < j <= i). inv_freq = 1 / theta^(2i/hd) and the angle float32 (p * inv_freq)
    are float32 as the official code computes them; positions are 0..L-1 in every row, pads
    included. Padding keys (mask 0) get probability exactly 0; rows of padding queries are
    not specified (they are finite here) and only valid rows are meaningful.

    Weights: the Hugging Face layout - a directory with config.json, tokenizer.model and
    model.safetensors or model.safetensors.index.json + shards - with the text decoder under
    `language_model.model.*` (Gemma3ForConditionalGeneration; the vision tower and projector
    are not read) or `model.*` (Gemma3ForCausalLM). Sizes come from the tensor shapes; the
    other settings from config.json (its text_config), with Gemma-3-12B's values when absent.
    Linear weights are held as f32, bf16 or fp8 (e4m3, per-channel scales) or nvfp4, from
    BF16/F16/F32 or FP8 (+ weight_scale) checkpoint tensors. The token embedding stays in the
    mapped checkpoint (rows gathered on the host); the tied output head (logits) is loaded on
    first use only.
*/
#ifndef GEMMA3_H_INCLUDED
#define GEMMA3_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GEMMA3_MAX_LAYERS 256

typedef struct {
    //  From the tensor shapes.
    int vocab, hidden, layers, heads, kv_heads, head_dim, ffn;
    //  From config.json (defaults: those of Gemma-3-12B's config.json and HF's Gemma3TextConfig).
    float eps;                      //  rms_norm_eps, 1e-6
    double rope_theta;              //  global layers, 1e6
    double rope_local_theta;        //  local layers (rope_local_base_freq), 1e4
    float rope_factor;              //  linear scaling of global layers (rope_scaling.factor), 8
    int sliding_window;             //  1024 (Gemma-3-12B)
    int sliding_pattern;            //  6: layer i global iff (i+1) % 6 == 0
    float query_pre_attn_scalar;    //  256: scores scaled by its -1/2 power
    int bos_id, pad_id;             //  2, 0
    bool layer_types_given;         //  config.json listed layer_types
    uint8_t is_global [GEMMA3_MAX_LAYERS];
} gemma3_config_t;

//  The non-shape settings at their defaults (sizes zero).
void gemma3_config_defaults (gemma3_config_t *cfg);
//  Reads the settings of an HF config.json text (the object itself or its "text_config");
//  keys that are absent keep their current value. -1 with *err on malformed JSON or values.
int gemma3_config_parse (gemma3_config_t *cfg, const char *json_text, char **err);
//  Whether layer i is global (uses layer_types when config.json gave them, else the pattern).
bool gemma3_layer_is_global (const gemma3_config_t *cfg, int layer);

//  RoPE of one layer kind for positions 0..len-1: inv_freq [head_dim/2] and the tables
//  cos/sin [len, head_dim/2], computed in float32 as the official code does.
void gemma3_rope_tables (const gemma3_config_t *cfg, bool global, int len, float *inv_freq,
                         float *cos, float *sin);

typedef struct _gemma3_t gemma3_t;

//  Loads from a directory (config.json + model.safetensors[.index.json]), an *.index.json or a
//  .safetensors file (config.json beside it is read when present). wfmt: F32, BF16,
//  FP8_E4M3 or NVFP4 for the linear weights. NULL with *err naming the file or tensor.
gemma3_t *gemma3_new (const char *path, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err);
//  Same from an open checkpoint and settings (cfg: the settings; its sizes are ignored and
//  derived from the shapes; NULL = defaults). Takes ownership of *ckpt_p in every case.
gemma3_t *gemma3_new_from_ckpt (vdgx_ckpt_t **ckpt_p, const gemma3_config_t *cfg,
                                vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err);
void gemma3_destroy (gemma3_t **self_p);

const gemma3_config_t *gemma3_config (gemma3_t *self);
const char *gemma3_error (gemma3_t *self);
//  Bytes of weights held on the backend (linear weights + norms; not the mapped embedding).
size_t gemma3_weight_bytes (gemma3_t *self);

//  Intermediate taps (refcheck, debugging), named as the reference vectors name them:
//  "l<i>.input_layernorm", ".q_proj", ".k_proj", ".v_proj" ([B,L,*]), ".q_norm", ".k_norm",
//  ".q_rope", ".k_rope" ([B,L,heads,hd]), ".attn_ctx", ".o_proj", ".post_attention_layernorm",
//  ".resid_mid", ".pre_feedforward_layernorm", ".mlp.gate_proj", ".mlp.up_proj", ".mlp.act",
//  ".mlp.out", ".post_feedforward_layernorm", ".out" ([B,L,*]); only for layers whose bit is
//  set in `layers` (bit i = layer i, i < 64). NULL disables.
typedef void (gemma3_tap_fn) (void *arg, const char *name, const vdgx_tensor_t *t);
void gemma3_set_tap (gemma3_t *self, gemma3_tap_fn *fn, void *arg, uint64_t layers);

//  Runs the decoder on ids [B,L] (host) with mask [B,L] (host, 1 = token, 0 = padding; NULL =
//  all tokens). Allocates hidden [N+1,B,L,D] in the backend's act dtype (the HF tuple above;
//  caller releases with vdgx_tensor_release). last_out, when not NULL, receives [B,L,D] the raw
//  output of the last layer (caller releases). logits, when not NULL, receives host f32
//  [B,vocab] the tied-head logits at position L-1 (loads the head on first use).
int gemma3_forward (gemma3_t *self, const int32_t *ids, const uint8_t *mask, int batch, int len,
                    vdgx_tensor_t *hidden, vdgx_tensor_t *last_out, float *logits);

//  Writes a random-weight decoder of cfg's sizes and settings into the existing directory dir
//  in the HF layout (config.json, model.safetensors.index.json, a shard for the embedding and
//  one per layer): linear weights BF16, or F8_E4M3 with a weight_scale when fp8. For tests
//  and benchmarks. -1 with *err.
int gemma3_write_random (const char *dir, const gemma3_config_t *cfg, uint64_t seed, bool fp8,
                         char **err);

void gemma3_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
