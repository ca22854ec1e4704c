/*  wan21_vae.h - the Wan-VAE decoder of Wan 2.1 (class wan21_vae), on a compute backend.

    Computes what WanVAE.decode (wan/modules/vae.py) computes:
      z / (1/std) + mean  ->  conv2 (1x1x1)  ->  per latent frame, with causal caches:
      conv1 -> middle (res, single-head attention per frame over h*w, res) ->
      4 stages of 3 residual blocks, separated by upsample3d, upsample3d, upsample2d
      (time_conv doubles the frames except on the first chunk; nearest-exact x2 + conv2d)
      -> head (RMS_norm, SiLU, causal conv) -> clamp to [-1, 1].
    Latent frame 0 gives 1 video frame, every later one 4. Causal 3x3x3 convolutions see the
    last 2 frames of their previous inputs (zeros before the first frame).

    The encoder (image-to-video conditioning) is wan21_vae_encode, below.

    Weights: the official state_dict (Wan2.1_VAE.pth, or safetensors with the same keys) or
    the diffusers AutoencoderKLWan layout (vae/diffusion_pytorch_model.safetensors). The
    decoder and conv2 are read, and the encoder and conv1 when present (official names
    only). dim and z_dim come from the shapes (dim_mult [1,2,4,4], 2 residual blocks per
    stage, temporal upsampling [true, true, false] / downsampling [false, true, true] are
    fixed).
*/
#ifndef WAN21_VAE_H_INCLUDED
#define WAN21_VAE_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _wan21_vae_t wan21_vae_t;

//  The 16 latent channel statistics of WanVAE (latent = (x - mean) * (1/std)).
extern const float wan21_vae_mean [16];
extern const float wan21_vae_std [16];

//  One decoder tensor: official name and shape (for loaders, writers, layout checks).
typedef void (wan21_vae_layout_fn) (void *arg, const char *name, int ndim, const int64_t *shape);
//  Enumerates every tensor the decoder reads for base width dim and latent channels z_dim,
//  in the official key names. Returns the count.
int wan21_vae_layout (int dim, int z_dim, wan21_vae_layout_fn *fn, void *arg);
//  The diffusers AutoencoderKLWan name of an official decoder key (into buf); -1 if none.
int wan21_vae_diffusers_name (const char *official, char *buf, size_t size);

//  Loads the decoder (and the encoder when the checkpoint has one) from a file (.pth /
//  .safetensors) or a folder (Wan2.1_VAE.pth,
//  Wan2.1_VAE.safetensors, vae/diffusion_pytorch_model.safetensors, or a diffusers vae
//  folder itself). Parameters are held in the backend's act dtype. NULL with *err.
wan21_vae_t *wan21_vae_load (vdgx_backend_t *backend, const char *path, char **err);
//  The same without the encoder, even when the checkpoint has one (text-to-video decodes
//  only, so the encoder's weights are not held in memory).
wan21_vae_t *wan21_vae_load_decoder (vdgx_backend_t *backend, const char *path, char **err);
//  A decoder with random weights (benchmarks, tests): gammas 1, weights uniform with the
//  default PyTorch fan-in scale.
wan21_vae_t *wan21_vae_new_random (vdgx_backend_t *backend, int dim, int z_dim, uint64_t seed,
                                   char **err);
void wan21_vae_destroy (wan21_vae_t **self_p);
int wan21_vae_dim (wan21_vae_t *self);
int wan21_vae_z_dim (wan21_vae_t *self);
//  Bytes of parameters held on the backend.
uint64_t wan21_vae_weight_bytes (wan21_vae_t *self);
//  Peak activation bytes of one decode at this output size (4 frames per chunk), for
//  memory estimates; act_size is the activation element size.
uint64_t wan21_vae_activation_bytes (int dim, int width, int height, size_t act_size);

//  Intermediates while decoding: "conv2" ([1,z,T,h,w], all frames), then per chunk i
//  "chunk<i>.conv1", "chunk<i>.middle.<k>", "chunk<i>.upsamples.<k>", "chunk<i>.head".
typedef void (wan21_vae_tap_fn) (void *ctx, const char *name, const vdgx_tensor_t *t);
void wan21_vae_set_tap (wan21_vae_t *self, wan21_vae_tap_fn *fn, void *ctx);

//  One decoded frame, planar [3][height][width] f32 (clamped to [-1, 1] unless raw).
//  Return 0 to go on, -1 to stop the decode.
typedef int (wan21_vae_frame_fn) (void *ctx, int index, const float *chw, int width, int height);

typedef struct {
    bool raw;               //  skip the final clamp (reference checks of the raw output)
    atomic_int *cancel;     //  checked before every latent frame, may be NULL
} wan21_vae_decode_opts_t;

//  Decodes a normalised latent [z_dim, frames, height, width] (host f32), handing the
//  1 + 4 (frames - 1) video frames of 8*height x 8*width to fn as they are decoded.
//  Returns 0, -2 when cancelled, -1 with *err on an error (or when fn returned -1).
int wan21_vae_decode (wan21_vae_t *self, const float *latent, int64_t frames, int64_t height,
                      int64_t width, const wan21_vae_decode_opts_t *opts,
                      wan21_vae_frame_fn *fn, void *ctx, char **err);

//  The encoder (Encoder3d + conv1 of WanVAE_), loaded when the checkpoint has encoder.*
//  tensors (official names): its tensors in the official names, like wan21_vae_layout.
int wan21_vae_encoder_layout (int dim, int z_dim, wan21_vae_layout_fn *fn, void *arg);
bool wan21_vae_has_encoder (wan21_vae_t *self);
//  Encodes a video [3, frames, height, width] (host f32 in [-1, 1]; frames = 1 + 4k, sides
//  multiples of 8) as WanVAE.encode does: causal chunks of 1, 4, 4, ... frames with the
//  feature caches, conv1, mu = the first z_dim channels (no sampling), normalised
//  (mu - mean) * (1/std) into latent [z_dim, 1 + (frames-1)/4, height/8, width/8].
//  Taps (wan21_vae_set_tap): "enc.chunk<i>.conv1", "enc.chunk<i>.downsamples.<k>",
//  "enc.chunk<i>.middle.<m>", "enc.chunk<i>.head", "enc.conv1".
int wan21_vae_encode (wan21_vae_t *self, const float *video, int64_t frames, int64_t height,
                      int64_t width, float *latent, char **err);

void wan21_vae_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
