/*  wan21_dit.h - the Wan 2.1 diffusion transformer (WanModel: text-to-video, image-to-video
    and first-last-frame-to-video) and its sampling loop, on a compute backend (vdgx_backend.h).

    Image-to-video (model_type i2v, told by the img_emb tensors): in_dim 36 = the 16 noise
    channels + the 20 conditioning channels y (mask 4, image latent 16), concatenated before
    the patch embedding; CLIP features [tokens, img_dim] -> img_emb (LayerNorm eps 1e-5,
    Linear, erf GELU, Linear, LayerNorm eps 1e-5) are the image context; each block's
    cross-attention adds attn(q, norm_k_img(k_img(img)), v_img(img)) to the text attention
    before o. First-last-frame (flf2v) is the same with img_emb.emb_pos [1, 2*257, img_dim]
    added to the features of the two images.

    Weights: the official `diffusion_pytorch_model.safetensors` (single or sharded with an
    index), the diffusers `transformer/` folder (renamed keys), or a ComfyUI single file
    (`model.diffusion_model.` prefix). Tensors may be F32/F16/BF16 or F8_E4M3 with an optional
    per-tensor `<layer>.scale_weight` / `<layer>.weight_scale` (kept as FP8 at precision fp8). The configuration comes from the tensor shapes; num_heads from a
    config.json beside the weights when present, else dim/128; text_len 512 unless overridden.

    Precision ("fp32", "bf16", "fp8", "fp4" = "nvfp4", "nf4", "mxfp4") applies to the block
    linears (q, k, v, o of both attentions and the FFN). Embeddings, modulation tables, norms
    and the head stay in F32 when the backend computes in F32, else in BF16.

    Activations are in the backend's act dtype, except the residual stream, the time embedding
    and the modulation tables, which stay f32 as in the official code. One forward is
      patch embed -> [blocks] -> head -> unpatchify
    exactly as wan/modules/model.py computes it (see tests/data/reference/wan21/README.md).
*/
#ifndef WAN21_DIT_H_INCLUDED
#define WAN21_DIT_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_flow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim, ffn_dim, num_heads, num_layers;
    int in_dim, out_dim, text_dim, text_len, freq_dim;
    int patch [3];          //  (t, h, w)
    double eps;             //  1e-6
    int img_dim;            //  CLIP feature width of the image branch (1280); 0 = text-to-video
    int img_pos;            //  rows of img_emb.emb_pos (flf2v: 2 x 257); 0 = none
} wan21_dit_config_t;

//  The released T2V configurations: "1.3b" or "14b". -1 when unknown.
int wan21_dit_config_preset (const char *name, wan21_dit_config_t *cfg);

typedef struct {
    const char *precision;  //  NULL = "bf16"
    int num_heads;          //  0 = from config.json, else dim/128
    int text_len;           //  0 = from config.json, else 512
} wan21_dit_load_opts_t;

typedef struct _wan21_dit_t wan21_dit_t;
typedef struct _wan21_dit_context_t wan21_dit_context_t;

//  Observes intermediates of a forward (reference checks). name as in vectors_dit:
//  "patch_embedding" ([L, dim], token-major), "time_embedding", "time_projection",
//  "text_embedding", "blocks.N.norm1", ... "blocks.N", "head"; an image DiT also gives
//  "img_emb" ([1, tokens, dim]), "blocks.N.cross_attn.norm_q", "blocks.N.cross_attn.norm_k_img"
//  and "blocks.N.cross_attn.v_img".
typedef void (wan21_dit_tap_fn) (void *ctx, const char *name, const vdgx_tensor_t *t);

//  Loads a DiT from a file (.safetensors, .safetensors.index.json) or a folder (official or
//  diffusers layout). NULL with a message in *err on a missing, malformed or mismatching file.
wan21_dit_t *wan21_dit_load (vdgx_backend_t *backend, const char *path,
                             const wan21_dit_load_opts_t *opts, char **err);
//  A DiT with random weights, uniform with std 0.02 (benchmarks; values do not affect timing).
wan21_dit_t *wan21_dit_new_random (vdgx_backend_t *backend, const wan21_dit_config_t *cfg,
                                   const char *precision, uint64_t seed, char **err);
void wan21_dit_destroy (wan21_dit_t **self_p);
const wan21_dit_config_t *wan21_dit_config (wan21_dit_t *self);
const char *wan21_dit_precision (wan21_dit_t *self);
//  Checkpoint tensors the loader read (825 for the 1.3B official file; 0 for random weights).
size_t wan21_dit_tensors_used (wan21_dit_t *self);
void wan21_dit_set_tap (wan21_dit_t *self, wan21_dit_tap_fn *fn, void *ctx);

//  Bytes the DiT needs at this precision: weights, plus activations for `tokens` tokens
//  (0 = weights only), with activations of act_size bytes per element.
uint64_t wan21_dit_memory_estimate (const wan21_dit_config_t *cfg, const char *precision,
                                    int64_t tokens, size_t act_size);

//  Prepares a prompt: context [len, text_dim] host f32 (len <= text_len) is zero-padded to
//  text_len, embedded, and every block's cross-attention keys/values are computed once.
//  A text-to-video DiT only (an image DiT needs the image features).
wan21_dit_context_t *wan21_dit_context_new (wan21_dit_t *self, const float *context,
                                            int64_t len, char **err);
//  The same with the CLIP features of the image(s), image [image_tokens, img_dim] host f32
//  (i2v: 257 tokens of one image; flf2v: img_pos tokens, the first image's then the last's).
//  image must be NULL for a text-to-video DiT and is required otherwise.
wan21_dit_context_t *wan21_dit_context_new_image (wan21_dit_t *self, const float *context,
                                                  int64_t len, const float *image,
                                                  int64_t image_tokens, char **err);
void wan21_dit_context_destroy (wan21_dit_t *self, wan21_dit_context_t **ctx_p);

//  One forward: latent [in_dim, frames, height, width] (host f32) at timestep t -> out
//  [out_dim, frames, height, width] (host f32). Sizes must be multiples of the patch.
//  For an image DiT the latent is cat(noise [out_dim], y [in_dim - out_dim]) by channels.
int wan21_dit_forward (wan21_dit_t *self, const float *latent, int64_t frames, int64_t height,
                       int64_t width, int64_t t, wan21_dit_context_t *ctx, float *out,
                       char **err);

//  RoPE frequency table of WanModel.freqs: angles (radians) [1024, head_dim/2], the three
//  rope_params tables side by side. cos/sin of it are the stored freqs_real/imag.
void wan21_dit_rope_angles (int head_dim, double *angles);

//  Latent size for a video: frames 4n+1, width/height multiples of 16.
int wan21_latent_shape (int width, int height, int frames, int64_t shape [4], char **err);

typedef struct {
    const float *context;           //  [context_len, text_dim] host f32 (prompt)
    int64_t context_len;
    const float *context_null;      //  negative prompt; may be NULL when guidance is 1
    int64_t context_null_len;
    int width, height, frames;      //  video size in pixels (frames 4n+1)
    int steps;
    double guidance;                //  noise = uncond + guidance * (cond - uncond)
    double shift;
    vdgx_solver_t sampler;
    uint64_t seed;                  //  initial noise: vdgx_rng (Philox) stream of this seed
    const float *noise;             //  or this initial latent (host f32), when not NULL
    //  Image DiT: the conditioning y [in_dim - out_dim, F, H, W] (host f32: mask, image
    //  latent) given to every model call, and the CLIP features [image_tokens, img_dim].
    const float *y;
    const float *image;
    int64_t image_tokens;
    void (*progress) (void *ctx, int step, int steps);     //  after each step, may be NULL
    void *progress_ctx;
    //  After the model calls of step `step` (before the scheduler step), may be NULL.
    void (*on_step) (void *ctx, int step, int64_t t, const float *latent, const float *cond,
                     const float *uncond, size_t n);
    void *on_step_ctx;
    atomic_int *cancel;             //  checked at every step boundary, may be NULL
} wan21_dit_sample_args_t;

//  The denoising loop. On success *latent_p is the final latent (malloc, caller frees) of
//  shape [out_dim, F, H, W] (shape written to shape[4]) and 0 is returned. Returns
//  VDGX_ENGINE_CANCELLED (-2) when cancelled, -1 with *err on an error.
int wan21_dit_sample (wan21_dit_t *self, const wan21_dit_sample_args_t *args,
                      float **latent_p, int64_t shape [4], char **err);

//  The official default negative prompt (wan/configs/shared_config.py sample_neg_prompt).
extern const char *wan21_default_negative_prompt;

void wan21_dit_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
