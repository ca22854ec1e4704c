/*  ltx2_vae.h - the LTX-2 / LTX-2.3 video VAE decoder (class ltx2_vae), on a compute backend.

    Computes what the official VideoDecoder computes (ltx_core video_vae), for both block lists:
      [timestep-conditioned: x = 0.975 latent + 0.025 noise]  ->  x * std-of-means +
      mean-of-means  ->  conv_in  ->  up_blocks (the config's decoder_blocks in reverse
      order)  ->  PixelNorm  ->  [timestep-conditioned: (1 + scale) x + shift]  ->  SiLU  ->
      conv_out (48 channels)  ->  unpatchify 4x4 (channel c*16 + w_sub*4 + h_sub).
    Blocks: res_x (residual blocks PixelNorm, [modulation], SiLU, conv, twice, with one
    time_embedder per group), compress_all / compress_time / compress_space (conv to
    C * stride / multiplier channels, depth-to-space (c p1 p2 p3) by (2,2,2) / (2,1,1) /
    (1,2,2), the first frame dropped when time is doubled; "residual": the input
    depth-to-space'd and tiled along the channels is added). Every 3x3x3 convolution is
    non-causal: the first / last frame replicated in time, reflect padding in space.
    PixelNorm is x / sqrt (mean_c (x^2) + 1e-8).
    A latent [128, T, H, W] gives 8 (T - 1) + 1 frames of 32 H x 32 W (LTX-2 and LTX-2.3
    real configs; the output size follows from the block list).

    ltx2_vae_decode decodes the whole latent at once by default, as the official pipeline
    classes do when they are given no tiling config (and as the reference vectors were made).
    With opts.tiling set it decodes tile by tile as the official VideoDecoder.tiled_decode
    does (the command-line entry points pass TilingConfig.default (), here
    LTX2_VAE_TILING_DEFAULT: spatial tiles of 512 px with 64 px overlap, temporal tiles of 64
    frames with 24 overlap), which bounds the activation memory by the tile size:
      - the latent is split per axis: space into tiles of tile / space_scale latent pixels
        (on the shorter side scaled by side / longer side, rounded half to even, at least
        max (2, overlap + 1)), stride tile - overlap, the last tile ending at the edge; time
        into tile / time_scale latent frames the same way, every tile after the first
        starting one latent frame earlier (its first decoded frame is the "first frame");
      - tile [b, e) maps to pixels [32 b, 32 e) in space and [8 b, 8 (e - 1) + 1) in time;
      - each tile is weighted by a separable trapezoidal mask (linear ramps over the overlap,
        in time the ramp of a later tile starting from 0), summed, and divided by the summed
        weights; frames are handed to fn as soon as no later tile reaches them.
    Each tile is decoded as a whole latent would be: the timestep-conditioned noise is drawn
    per tile in tile order (time, height, width) from the seed, or cut from opts.noise.
    Host memory: a whole decode holds the whole video in f32 (3 x frames x H x W); a tiled one
    one tile's output plus a blend accumulator of 4 x (longest temporal tile's frames) x H x W
    f32 (the weights are summed in f32 where the official code uses the latent's dtype).

    Weights: the single-file LTX-2 checkpoints, keys vae.decoder.* and vae.per_channel_
    statistics.*; the config from the safetensors __metadata__ "config" object's "vae"
    section (decoder_blocks, timestep_conditioning, latent_channels, patch_size, causal_decoder
    must be false, decoder_base_channels; when that key is absent, as in the LTX-2 19B
    release, the base width is read from conv_out's shape). Every tensor's shape is checked.
*/
#ifndef LTX2_VAE_H_INCLUDED
#define LTX2_VAE_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LTX2_VAE_MAX_BLOCKS 16

typedef enum {
    LTX2_VAE_RES_X = 0,         //  residual blocks
    LTX2_VAE_COMPRESS_ALL,      //  depth-to-space (2, 2, 2)
    LTX2_VAE_COMPRESS_TIME,     //  (2, 1, 1)
    LTX2_VAE_COMPRESS_SPACE     //  (1, 2, 2)
} ltx2_vae_block_kind_t;

typedef struct {
    ltx2_vae_block_kind_t kind;
    int layers;                 //  res_x: residual blocks
    int multiplier;             //  compress_*: channel reduction factor
    bool residual;              //  compress_*: residual depth-to-space path
    int in_channels, out_channels;
} ltx2_vae_block_t;

typedef struct {
    int latent_channels;        //  128 (LTX-2, LTX-2.3)
    int patch_size;             //  4
    int base_channels;          //  decoder_base_channels (width before conv_out)
    bool timestep_conditioning;
    int nblocks;
    ltx2_vae_block_t blocks [LTX2_VAE_MAX_BLOCKS];  //  in decode order (up_blocks.<i>)
    int time_scale;             //  output frames = time_scale * (T - 1) + 1
    int space_scale;            //  output side = space_scale * latent side
} ltx2_vae_config_t;

typedef struct _ltx2_vae_t ltx2_vae_t;

//  Parses a "vae" config object (JSON text of the metadata's "vae" section) into cfg; the
//  base width must be in the JSON (decoder_base_channels) or given as base_channels > 0.
//  Returns 0, or -1 with *err.
int ltx2_vae_config_parse (const char *vae_json, int base_channels, ltx2_vae_config_t *cfg,
                           char **err);

//  Loads the decoder from an LTX-2 / LTX-2.3 single-file checkpoint (path), or from an open
//  checkpoint (borrowed while loading). Parameters are held in the backend's act dtype.
//  NULL with *err naming the tensor or setting.
ltx2_vae_t *ltx2_vae_new (const char *path, vdgx_backend_t *backend, char **err);
ltx2_vae_t *ltx2_vae_new_from_ckpt (vdgx_ckpt_t *ckpt, vdgx_backend_t *backend, char **err);
//  A decoder of this config with random weights (benchmarks, memory tests).
ltx2_vae_t *ltx2_vae_new_random (const ltx2_vae_config_t *cfg, vdgx_backend_t *backend,
                                 uint64_t seed, char **err);
void ltx2_vae_destroy (ltx2_vae_t **self_p);

const ltx2_vae_config_t *ltx2_vae_config (ltx2_vae_t *self);
//  Bytes of parameters held on the backend.
uint64_t ltx2_vae_weight_bytes (ltx2_vae_t *self);
//  Tiled decoding (see above). Zero sizes turn an axis's tiling off; all zero (or a zeroed
//  struct) decodes the whole latent at once. Spatial: tile >= 64 px, a multiple of 32,
//  overlap a multiple of 32 below the tile; temporal: tile >= 16 frames, a multiple of 8,
//  overlap a multiple of 8 below the tile (the official TilingConfig's checks).
typedef struct {
    int spatial_tile_px, spatial_overlap_px;
    int temporal_tile_frames, temporal_overlap_frames;
} ltx2_vae_tiling_t;

//  The official TilingConfig.default () of the LTX-2 / LTX-2.3 releases (ltx-core up to
//  2026-03; later ltx-core versions changed it to 768 / 64 px and 80 / 24 frames).
#define LTX2_VAE_TILING_DEFAULT ((ltx2_vae_tiling_t) { 512, 64, 64, 24 })

//  The tiles of a latent [frames, height, width] under tiling (NULL or off: 1): returns their
//  number, and where sums [a] is given fills it with axis a's summed 1-D blend masks (time,
//  height, width; lengths: output frames, height, width). The blend weight of an output
//  pixel is sums [0][f] * sums [1][y] * sums [2][x]. -1 with *err for a bad tiling or size.
int64_t ltx2_vae_tiling_plan (const ltx2_vae_config_t *cfg, const ltx2_vae_tiling_t *tiling,
                              int64_t frames, int64_t height, int64_t width, float *sums [3],
                              char **err);

//  Peak activation bytes (backend memory) of one decode of a latent [C, frames, height,
//  width], for memory estimates: of the whole latent when tiling is NULL or off, else of the
//  largest tile; act_size is the activation element size.
uint64_t ltx2_vae_activation_bytes (const ltx2_vae_config_t *cfg, const ltx2_vae_tiling_t *tiling,
                                    int64_t frames, int64_t height, int64_t width,
                                    size_t act_size);

//  Intermediates (refcheck, debugging), [1, C, F, H, W]: "conv_in_input", "conv_in",
//  "up_blocks.<i>", "conv_norm_out", "conv_act_input" (after the final modulation),
//  "conv_out"; timestep-conditioned also "up_blocks.<i>.time_embedder" and
//  "last_time_embedder" ([1, n]). A tiled decode taps each tile's.
typedef void (ltx2_vae_tap_fn) (void *ctx, const char *name, const vdgx_tensor_t *t);
void ltx2_vae_set_tap (ltx2_vae_t *self, ltx2_vae_tap_fn *fn, void *ctx);

//  One decoded frame, planar [3][height][width] f32 (clamped to [-1, 1] unless raw).
//  Return 0 to go on, -1 to stop.
typedef int (ltx2_vae_frame_fn) (void *ctx, int index, const float *chw, int width, int height);

typedef struct {
    bool raw;                   //  no clamp to [-1, 1] (reference checks of the raw output)
    //  Timestep-conditioned decoders only (ignored otherwise):
    float timestep;             //  decode timestep; 0 means the official default 0.05
    float noise_scale;          //  0 means the official default 0.025
    const float *noise;         //  randn [C, frames, height, width]; NULL: drawn with torch's
                                //  CPU generator from seed (torch.randn order)
    uint64_t seed;
    atomic_int *cancel;         //  checked between blocks, may be NULL
    ltx2_vae_tiling_t tiling;   //  zeroed: the whole latent at once
} ltx2_vae_decode_opts_t;

//  Decodes a normalised latent [latent_channels, frames, height, width] (host f32), handing
//  the time_scale (frames - 1) + 1 frames of space_scale * height x space_scale * width to
//  fn in order (tiled: the blended frames, clamped after blending). Returns 0, -2 when
//  cancelled, -1 with *err (also when fn returned -1, or for a bad tiling or a tile with a
//  side under 2 latent pixels).
int ltx2_vae_decode (ltx2_vae_t *self, const float *latent, int64_t frames, int64_t height,
                     int64_t width, const ltx2_vae_decode_opts_t *opts, ltx2_vae_frame_fn *fn,
                     void *ctx, char **err);

void ltx2_vae_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
