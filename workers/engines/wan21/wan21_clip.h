/*  wan21_clip.h - the CLIP image encoder of Wan 2.1 image-to-video (class wan21_clip): the
    visual tower of open-clip XLM-RoBERTa-large ViT-H/14 as wan/modules/clip.py runs it.

    Preprocessing (CLIPModel.visual's caller in WanI2V.generate): the ORIGINAL image as
    uint8 RGB -> /255 -> (x - 0.5) / 0.5 -> bicubic to image_size x image_size (aspect
    ignored, no antialias) -> * 0.5 + 0.5 (no clamp) -> Normalize(CLIP mean, std).
    ViT (use_31_block): patch conv without bias, cat(cls, patches) + pos, pre_norm LayerNorm,
    pre-norm blocks (fused to_qkv split q|k|v, erf GELU MLP, LayerNorm eps 1e-5), output of
    every block but the last, no post_norm, no head: [tokens = (size/patch)^2 + 1, dim].

    Weights: models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth (or safetensors with the
    same keys); only visual.* up to the second-to-last block is read (textual.*, log_scale,
    visual.post_norm / head and the last block are left alone). Width, patch, image size and
    block count come from the shapes; the head count is given (ViT-H: 16).
*/
#ifndef WAN21_CLIP_H_INCLUDED
#define WAN21_CLIP_H_INCLUDED

#include <stdint.h>
#include "vdgx_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _wan21_clip_t wan21_clip_t;

//  The head count of the real ViT-H/14 tower (dim 1280).
#define WAN21_CLIP_HEADS 16

//  Loads the visual tower from a checkpoint file; heads 0 = WAN21_CLIP_HEADS. Parameters
//  are held in the backend's act dtype. NULL with *err.
wan21_clip_t *wan21_clip_load (vdgx_backend_t *backend, const char *path, int heads, char **err);
void wan21_clip_destroy (wan21_clip_t **self_p);
int wan21_clip_dim (wan21_clip_t *self);
int wan21_clip_tokens (wan21_clip_t *self);
int wan21_clip_image_size (wan21_clip_t *self);
//  Blocks run (the checkpoint's count minus one).
int wan21_clip_blocks (wan21_clip_t *self);

//  The official preprocessing of an RGB image (rgb [height, width, 3], row stride width*3)
//  into pixels [3, size, size] (host f32).
void wan21_clip_preprocess (const uint8_t *rgb, int width, int height, int size, float *pixels);
//  The first step of it: RGB u8 -> planar [3, height, width] in [-1, 1] (u8 / 255 - 0.5) / 0.5,
//  the image tensor of WanI2V.generate.
void wan21_clip_to_planar (const uint8_t *rgb, int width, int height, float *img);
//  The rest from such a planar [-1, 1] image (bicubic to size x size, normalise).
void wan21_clip_preprocess_planar (const float *img, int width, int height, int size, float *pixels);

//  Intermediates while encoding: "patch_embedding" ([1, N-1, dim] tokens, row-major patches),
//  "pre_norm", "transformer.0.attn", "transformer.0.mlp" (branch outputs of block 0),
//  "transformer.<i>" ([1, N, dim]).
typedef void (wan21_clip_tap_fn) (void *arg, const char *name, const vdgx_tensor_t *t);
void wan21_clip_set_tap (wan21_clip_t *self, wan21_clip_tap_fn *fn, void *arg);

//  features [tokens, dim] (host f32) of preprocessed pixels [3, size, size].
int wan21_clip_encode_pixels (wan21_clip_t *self, const float *pixels, float *features, char **err);
//  The same from an RGB image (preprocessing included).
int wan21_clip_encode (wan21_clip_t *self, const uint8_t *rgb, int width, int height,
                       float *features, char **err);
//  The same from a planar [-1, 1] image [3, height, width] (wan21_clip_to_planar).
int wan21_clip_encode_planar (wan21_clip_t *self, const float *img, int width, int height,
                              float *features, char **err);

void wan21_clip_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
