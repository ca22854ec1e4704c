/*  vdgx_t5.h - T5 text encoders (class vdgx_t5): umT5-XXL (Wan 2.1) and T5-v1.1-XXL (MAGI-1).

    Computes what the official encoders compute: token embedding (not scaled), N blocks of
    pre-RMSNorm self-attention (no 1/sqrt(d) scaling, a relative position bias with
    bidirectional buckets, masked keys with probability 0) and a gated-GELU(tanh) FFN
    fc2(fc1(x) * gelu(gate(x))), then a final RMSNorm (T5LayerNorm, eps 1e-6).
    The bias: umT5 has a table in every block (per-layer bias); T5-v1.1 has one in block 0,
    whose bias every block adds (shared_bias). Which one is read from the checkpoint.

    Weights: Wan's official umT5 state_dict (models_t5_umt5-xxl-enc-bf16.pth or safetensors
    with the same keys) or HF names (UMT5EncoderModel / T5EncoderModel, e.g. diffusers
    text_encoder/, sharded or not). Every dimension comes from the checkpoint shapes. Linear
    weights are held in a chosen format (f32, bf16, fp8 quantized per output channel at load);
    the token embedding is kept once, on the host (rows are gathered there), and the
    checkpoint is closed after loading.
*/
#ifndef VDGX_T5_H_INCLUDED
#define VDGX_T5_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int vocab, dim, dim_attn, dim_ffn, num_heads, num_layers, num_buckets;
    int max_dist;       //  128 for umT5
    float eps;          //  1e-6
    bool hf_names;      //  the checkpoint uses HF (U)MT5EncoderModel names
    bool shared_bias;   //  T5-v1.1: block 0's relative position bias serves every block
} vdgx_t5_config_t;

//  Shape lookup used by the layout check: fills ndim/shape for a tensor name, false if absent.
typedef bool (vdgx_t5_shape_fn) (void *arg, const char *name, int *ndim, int64_t *shape);

//  Derives the configuration from tensor names and shapes alone (official or HF names) and
//  checks every tensor the encoder needs. Returns 0, or -1 with *err (caller frees).
int vdgx_t5_layout (vdgx_t5_shape_fn *fn, void *arg, vdgx_t5_config_t *cfg, char **err);

typedef struct _vdgx_t5_t vdgx_t5_t;

//  Opens a checkpoint (file, *.index.json, or a directory holding model.safetensors[.index.json]
//  or a .pth) and loads the encoder onto backend with linear weights in wfmt
//  (F32, BF16, F16 or FP8_E4M3). NULL with *err on failure.
vdgx_t5_t *vdgx_t5_new (const char *path, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err);
//  Same from an open checkpoint; takes ownership of *ckpt_p (nulls it) in every case. A
//  file checkpoint stays mapped for the encoder's life: the token embedding is read in place
//  (only the rows of prompts seen become resident); one opened from a buffer is copied.
vdgx_t5_t *vdgx_t5_new_from_ckpt (vdgx_ckpt_t **ckpt_p, vdgx_backend_t *backend,
                                    vdgx_wfmt_t wfmt, char **err);
void vdgx_t5_destroy (vdgx_t5_t **self_p);

const vdgx_t5_config_t *vdgx_t5_config (vdgx_t5_t *self);
const char *vdgx_t5_error (vdgx_t5_t *self);
//  Bytes of weights held on the backend (linear weights + norms).
size_t vdgx_t5_weight_bytes (vdgx_t5_t *self);

//  Intermediate taps (refcheck, debugging): called with "blocks.<i>" after each block and
//  "pos_bias.<i>" (F32 [H,L,L]) for each layer's bias. NULL disables.
typedef void (vdgx_t5_tap_fn) (void *arg, const char *name, const vdgx_tensor_t *t);
void vdgx_t5_set_tap (vdgx_t5_t *self, vdgx_t5_tap_fn *fn, void *arg);

//  T5Encoder(ids, mask): ids [B,L] (host), mask [B,L] (host, 1 = real token) or NULL.
//  Allocates out [B,L,dim] in the backend's act dtype (caller releases with
//  vdgx_tensor_release). Padded rows are computed as the official code does.
int vdgx_t5_forward (vdgx_t5_t *self, const int32_t *ids, const uint8_t *mask, int batch,
                      int len, vdgx_tensor_t *out);

//  What the DiT needs for one prompt: the encoder output of the n real tokens (ids, EOS
//  included), zero-padded to text_len rows. out [text_len, dim] act dtype (caller releases).
//  Runs the n real tokens only: masked keys contribute exactly zero, so this equals the
//  official 512-token padded run restricted to its first n rows.
int vdgx_t5_encode (vdgx_t5_t *self, const int32_t *ids, int n, int text_len, vdgx_tensor_t *out);

//  Relative position bucket of rel = key - query (bidirectional, float32 log truncated as
//  the official code does).
int vdgx_t5_bucket (int rel, int num_buckets, int max_dist);
//  bias [H,Lq,Lk] = table[bucket(k - q), h] for an embedding table [num_buckets, H].
void vdgx_t5_pos_bias (const float *table, int heads, int num_buckets, int max_dist,
                        int lq, int lk, float *bias);

void vdgx_t5_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
