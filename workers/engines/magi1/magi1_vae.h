/*  magi1_vae.h - MAGI-1's ViT VAE decoder (ViTVAE / ViTDecoder of the official code) with the
    official tiled decode and blending (TileProcessor.tiled_decode), on a compute backend.

    Decoder: z [C, T, H, W] -> tokens (t, h, w) -> proj_in -> cls token in front -> + pos_embed
    (trilinearly resized when (T, H, W) is not the native grid) -> blocks of
    x += proj(attn(norm(qkv(x)))) (no pre-norm; q, k and v normalised per head as
    (x - mean) / (std + 1e-5)) and x += fc2(gelu(fc1(LN(x)))) -> LN -> drop cls ->
    unpatchify (patch_length x patch_size x patch_size, 4 channels) -> Conv3d 4 -> 3 (k3, pad
    1). One latent frame gives patch_length video frames (T == 1: only the first is kept).

    For the engine, per finished chunk:
        magi1_vae_t *vae = magi1_vae_open (backend, "<vae folder>", NULL, &err);
        int64_t frames, h, w;
        magi1_vae_tiling_t tiling;
        magi1_vae_tiling_default (&tiling, 24);
        magi1_vae_output_size (vae, T, H, W, &tiling, &frames, &h, &w);
        uint8_t *rgb = malloc (frames * h * w * 3);
        magi1_vae_decode_chunk (vae, latent, T, H, W, 24, NULL, rgb, &err);    //  the DiT's latent
        ... vdgx_video_push_rgb24 (video, rgb + f * h * w * 3, w, h, 0) per frame ...
        magi1_vae_destroy (&vae);
    magi1_vae_load takes any weight source (a checkpoint, or vdgx_wsrc_new_random for
    magi1-tiny) with an explicit config.
*/
#ifndef MAGI1_VAE_H_INCLUDED
#define MAGI1_VAE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_wsrc.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The decoder's ddconfig (what the shapes do not tell: heads, the native grid).
typedef struct {
    int64_t z_chans;            //  latent channels (16)
    int64_t embed_dim;          //  1024
    int64_t depth;              //  blocks (24)
    int64_t heads;              //  16 (head_dim 64)
    int64_t mlp_hidden;         //  embed_dim * mlp_ratio (4096)
    int64_t patch_size;         //  8: latent pixel -> patch_size^2 video pixels
    int64_t patch_length;       //  4: latent frame -> patch_length video frames
    int64_t video_size, video_length;   //  pos_embed grid = video_length / patch_length x
                                        //  (video_size / patch_size)^2 (16 -> 4, 256 -> 32)
} magi1_vae_config_t;

//  The real VAE (sand-ai/MAGI-1 vae/): 1024 wide, 24 blocks, 16 heads, patch 8 x 8 x 4,
//  pos_embed grid 4 x 32 x 32, 16 latent channels.
void magi1_vae_config_default (magi1_vae_config_t *cfg);
//  Fills cfg from a config.json text (the official VAE folder's {"ddconfig": {...}}) or a bare
//  ddconfig object; absent keys keep the defaults. -1 with *err on bad JSON or a
//  configuration this decoder does not implement (use_final_proj, use_rope, no cls token,
//  no qkv norm, no conv last layer).
int magi1_vae_config_parse (const char *json_text, magi1_vae_config_t *cfg, char **err);

//  Tiling (TileProcessor): tiles of tile_px x tile_px video pixels and tile_frames frames,
//  overlapping by the factors; blended linearly over tile_px * spatial_overlap pixels.
typedef struct {
    int64_t tile_px_h, tile_px_w;   //  256
    int64_t tile_frames;            //  fps / 2 (12 at 24 fps)
    double spatial_overlap;         //  0.25
    double temporal_overlap;        //  0
} magi1_vae_tiling_t;

//  The pipeline's tiling at fps (decode_chunk: 256 px, fps / 2 frames, 0.25, 0).
void magi1_vae_tiling_default (magi1_vae_tiling_t *tiling, int fps);

typedef struct _magi1_vae_t magi1_vae_t;

//  Loads "decoder.*" from a weight source (canonical names = the official diffusers keys),
//  every tensor's shape checked against cfg (NULL = the default config). precision: weight
//  format of the linear layers ("fp32", "bf16"; NULL = fp32 on an F32 backend, else bf16).
//  NULL with *err naming the tensor.
magi1_vae_t *magi1_vae_load (vdgx_backend_t *b, vdgx_wsrc_t *src, const magi1_vae_config_t *cfg,
                             const char *precision, char **err);
//  Loads the official VAE folder (config.json + diffusion_pytorch_model.safetensors), or a
//  .safetensors file with the default config.
magi1_vae_t *magi1_vae_open (vdgx_backend_t *b, const char *path, const char *precision, char **err);
void magi1_vae_destroy (magi1_vae_t **self_p);
const magi1_vae_config_t *magi1_vae_config (magi1_vae_t *self);

//  Video frames of T latent frames: 1 when T == 1, else T * patch_length.
int64_t magi1_vae_frames (magi1_vae_t *self, int64_t T);

//  The tiled decode's output of a T x H x W latent (tiling NULL = 24 fps): frames, height,
//  width. With the pipeline's tiling a chunk's whole 3-latent tiles give T * patch_length
//  frames (6 latent frames -> 24); a last tile of one latent frame gives 1. -1 on a bad size.
int magi1_vae_output_size (magi1_vae_t *self, int64_t T, int64_t H, int64_t W,
                           const magi1_vae_tiling_t *tiling, int64_t *frames, int64_t *height,
                           int64_t *width);

//  ViTVAE.decode of the whole latent in one pass (no tiling): z [z_chans, T, H, W] host f32
//  -> video [3, frames, H * patch_size, W * patch_size] host f32 (not clamped).
int magi1_vae_decode_pass (magi1_vae_t *self, const float *z, int64_t T, int64_t H, int64_t W,
                           float *video, char **err);
//  TileProcessor.tiled_decode (tiling NULL = the default at 24 fps), rearranged as the
//  pipeline does: video [frames, 3, height, width] host f32 (magi1_vae_output_size).
int magi1_vae_decode (magi1_vae_t *self, const float *z, int64_t T, int64_t H, int64_t W,
                      const magi1_vae_tiling_t *tiling, float *video, char **err);
//  decode_chunk / post_chunk_process: a chunk of the DiT's latent [z_chans, T, H, W], divided
//  by the scale factor 0.18215, tiled decode at fps (magi1_vae_tiling_default; sizes from
//  magi1_vae_output_size with that tiling); video [frames, 3, h, w] (or NULL) and
//  rgb [frames, h, w, 3] (or NULL) = (x * 127.5 + 127.5) clamped to [0, 255], truncated.
int magi1_vae_decode_chunk (magi1_vae_t *self, const float *latent, int64_t T, int64_t H, int64_t W,
                            int fps, float *video, uint8_t *rgb, char **err);

//  Intermediates of every decoder pass by the module names of the official code
//  ("decoder.proj_in" [1, L, E], "decoder.pos_embed_resized", "decoder.blocks.<i>.attn.qkv",
//  ".attn.qkv_norm", ".attn", ".norm2", ".mlp", "decoder.blocks.<i>", "decoder.norm",
//  "decoder.last_layer.input" [1, 4, t, h, w], "decoder.last_layer").
typedef void (magi1_vae_tap_fn) (void *ctx, const char *name, const vdgx_tensor_t *t);
void magi1_vae_set_tap (magi1_vae_t *self, magi1_vae_tap_fn *fn, void *ctx);

#define MAGI1_VAE_SCALE_FACTOR 0.18215f

void magi1_vae_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
