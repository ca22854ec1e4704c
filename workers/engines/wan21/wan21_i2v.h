/*  wan21_i2v.h - the image conditioning of Wan 2.1 image-to-video (WanI2V.generate) and
    first-last-frame-to-video (WanFLF2V.generate): the output size from the image's aspect,
    the mask, the y latent (the VAE encoding of the resized image followed by zero frames)
    and the CLIP features, ready for wan21_dit_sample (args y, image, image_tokens).

    Size: lat_h = round(sqrt(max_area * H/W) // 8 // 2 * 2), lat_w = round(sqrt(max_area *
    W/H) // 8 // 2 * 2) in float64; the video is 8 lat_w x 8 lat_h pixels. The image is
    resized to that (bicubic, no antialias, not clamped, aspect only about kept: no crop);
    CLIP sees the ORIGINAL image (squashed to 224x224 inside wan21_clip).
    Mask [4, T_lat, lat_h, lat_w]: channel k of latent frame j stands for video frame 0
    (j = 0) or 4j + k - 3, and is 1 for the given frames (frame 0; flf2v also the last).
    First-last-frame: the last image is center-cropped as the official code does when its
    size differs from the first's (to round(W_l r) rows x round(H_l r) columns, r =
    max(W_f/W_l, H_f/H_l), zero padded where that is larger), CLIP encodes both (2 x 257
    tokens), and it is the last frame of the VAE input.
*/
#ifndef WAN21_I2V_H_INCLUDED
#define WAN21_I2V_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "wan21_clip.h"
#include "wan21_vae.h"

#ifdef __cplusplus
extern "C" {
#endif

//  An RGB image: rgb [height][width][3] u8.
typedef struct {
    const uint8_t *rgb;
    int width, height;
} wan21_i2v_image_t;

//  The video size (pixels, multiples of 16) for an image of img_width x img_height and a
//  pixel budget max_area. -1 with *err when the image's aspect leaves a side under 16 pixels.
int wan21_i2v_size (int img_width, int img_height, int64_t max_area, int *width, int *height,
                    char **err);

//  The image resized for the VAE: planar [3, height, width] in [-1, 1] (not clamped).
void wan21_i2v_resize (const wan21_i2v_image_t *image, int width, int height, float *out);

//  The mask [4, 1 + (frames-1)/4, lat_h, lat_w]; last: the last frame is given too (flf2v).
void wan21_i2v_mask (int frames, int64_t lat_h, int64_t lat_w, bool last, float *mask);

typedef struct {
    int width, height, frames;  //  the video
    int64_t shape [4];          //  latent [16, T_lat, lat_h, lat_w]
    float *y;                   //  [4 + z_dim, T_lat, lat_h, lat_w]: mask then image latent
    float *clip;                //  [clip_tokens, clip_dim] CLIP features (both images for flf2v)
    int64_t clip_tokens;
} wan21_i2v_cond_t;

//  The conditioning of a width x height video of frames (4n+1) frames from first (and last,
//  or NULL). Returns 0 (free with wan21_i2v_cond_free), or -1 with *err.
int wan21_i2v_condition (wan21_clip_t *clip, wan21_vae_t *vae, const wan21_i2v_image_t *first,
                         const wan21_i2v_image_t *last, int width, int height, int frames,
                         wan21_i2v_cond_t *cond, char **err);
void wan21_i2v_cond_free (wan21_i2v_cond_t *cond);

void wan21_i2v_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
