/*  magi1_dit.h - MAGI-1's chunk-causal video DiT (4.5B and 24B from one code path) on the
    model toolkit: parallel self/cross attention with GQA and a regrouped concatenated
    output, "1p" LayerNorms, sandwich post-norms, gate-only modulation (tanh softcap),
    learnable RoPE bands on 3/4 of each head, block-causal kv ranges over a KV cache of
    clean chunks (rows no later chunk attends can be evicted), distill mode.

    Layouts (one batch row): x [C, T, H, W] host f32 latent of the chunks of one call
    (chunk-major along T); tokens ordered (t, h, w), 2x2 spatial patches.
*/
#ifndef MAGI1_DIT_H_INCLUDED
#define MAGI1_DIT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int num_layers;
    int64_t hidden, ffn, heads, groups, head_dim, cond_dim, caption_dim, caption_len;
    int64_t in_channels;        //  checkpoint's x_embedder input (32 for half_channel_vae)
    int64_t out_channels;       //  latent channels returned (16)
    bool gated;                 //  SwiGLU MLP (24B) instead of exact GELU (4.5B)
    bool half_channel_vae;      //  x = cat([x, x]) on input, channels [:16] kept on output
    float x_rescale;            //  x *= x_rescale before the embedder, out /= x_rescale
    int64_t bands;              //  learnable rope bands (head_dim / 8)
} magi1_dit_config_t;

typedef struct {
    const char *precision;      //  weight format of the blocks ("fp32", "bf16", "fp8"); NULL = bf16
    float x_rescale;            //  0 = from the layout (0.1 with a half-channel VAE, else 1)
} magi1_dit_load_opts_t;

typedef struct _magi1_dit_t magi1_dit_t;
typedef struct _magi1_dit_cache_t magi1_dit_cache_t;

//  Loads from an open checkpoint (names as the official files spell them); the config is
//  inferred from the tensor shapes. NULL with *err naming the tensor that is wrong.
magi1_dit_t *magi1_dit_load (vdgx_backend_t *b, vdgx_ckpt_t *ckpt, const magi1_dit_load_opts_t *opts,
                             char **err);
//  Loads the official layout: a variant folder (ckpt/magi/<variant>/ holding
//  inference_weight[.distill][.fp8]/), an inference_weight folder, its
//  model.safetensors.index.json (shards beside it) or a single .safetensors file.
magi1_dit_t *magi1_dit_open (vdgx_backend_t *b, const char *path, const magi1_dit_load_opts_t *opts,
                             char **err);
//  The real configurations (4.5B, or 24B when big) with layers layers (0 = all: 34 / 48).
void magi1_dit_config_preset (magi1_dit_config_t *cfg, bool big, int layers);
//  A model of cfg with random weights (vdgx_wsrc_new_random: benchmarks, memory tests).
magi1_dit_t *magi1_dit_new_random (vdgx_backend_t *b, const magi1_dit_config_t *cfg, uint64_t seed,
                                   const magi1_dit_load_opts_t *opts, char **err);
void magi1_dit_destroy (magi1_dit_t **self_p);
const magi1_dit_config_t *magi1_dit_config (magi1_dit_t *self);
//  The null caption embedding [caption_len, caption_dim] (host f32, owned by the model).
const float *magi1_dit_null_caption (magi1_dit_t *self);

//  KV cache of clean chunks: per layer k (after norm + rotary) and v, `tokens` rows. Rows are
//  numbered absolutely (magi1_dit_call_t's cache_rows and kv_range), from row 0 of the video.
magi1_dit_cache_t *magi1_dit_cache_new (magi1_dit_t *dit, int64_t tokens, char **err);
void magi1_dit_cache_destroy (magi1_dit_cache_t **self_p);
//  Evicts the rows before absolute row `row` (no later call may read them: a kv range or
//  cache_rows below it is refused) and moves the rest to the front of the storage, bit for
//  bit: a cache of the rows still attended serves a video of any length. Rows numbers stay
//  absolute. No-op when row is at or before the first row kept; -1 (err set) when the rows
//  were never written.
int magi1_dit_cache_evict (magi1_dit_cache_t *self, int64_t row, char **err);
//  The first absolute row kept (0 until rows are evicted), and the rows the storage holds.
int64_t magi1_dit_cache_first_row (magi1_dit_cache_t *self);
int64_t magi1_dit_cache_capacity (magi1_dit_cache_t *self);
//  Bytes the cache holds per token (all layers, k and v).
size_t magi1_dit_cache_bytes_per_token (magi1_dit_t *dit);

//  One forward call (VideoDiTModel.forward for one batch row).
typedef struct {
    int64_t T, H, W;            //  latent grid of x (H, W even); T = chunks * chunk frames
    int chunks;                 //  chunks in this call (denoising ranges)
    const float *t;             //  [chunks] in [0, 1], 1 = clean
    const float *y;             //  [chunks, caption_len, caption_dim] captions
    const float *mask;          //  [chunks, caption_len] 1 = attended caption row
    bool caption_dropout;       //  adaLN caption row: null_caption[-1] when set, [-2] when not
    int64_t frame_offset;       //  rotary t position of the first frame (cached frames before)
    int64_t cache_rows;         //  cached tokens in front of this call's keys
    const int64_t *kv_range;    //  [chunks][2] key ranges in cat(cache[:cache_rows], own k);
                                //  NULL = each chunk sees only itself
    int64_t write_rows;         //  own k/v rows written to the cache after cache_rows (0 = none)
    double distill_dt;          //  > 0: distill mode, t_embedder(distill_dt) is added
} magi1_dit_call_t;

//  out [out_channels, T, H, W] = the velocity. cache may be NULL when cache_rows and
//  write_rows are 0. After the call the cache holds rows up to cache_rows + write_rows: rows
//  past them (written by an earlier call) are dropped, which the official schedules never
//  read. The cache's storage must hold the rows from its first row to cache_rows plus the
//  call's tokens (own k/v are appended there to attend).
int magi1_dit_forward (magi1_dit_t *self, magi1_dit_cache_t *cache, const float *x,
                       const magi1_dit_call_t *call, float *out, char **err);

//  Intermediates by the vectors' names ("layers.0.q_layernorm", "final_linear", ...);
//  token tensors are [1, L, ...]; "x_embedder" is token-major [L, hidden].
typedef void (magi1_dit_tap_fn) (void *ctx, const char *name, const vdgx_tensor_t *t);
void magi1_dit_set_tap (magi1_dit_t *self, magi1_dit_tap_fn *fn, void *ctx);

//  The rotary table [L, 6 * bands] = [sin | cos] of a call (host f32, for checks).
void magi1_dit_rope_table (magi1_dit_t *self, const magi1_dit_call_t *call, float *table);

void magi1_dit_test (bool verbose);


#ifdef __cplusplus
}
#endif
#endif
