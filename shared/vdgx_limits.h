/*  vdgx_limits.h - what a model accepts: sizes, frames, steps, guidance and fps.

    One description, one check, used everywhere a request meets a model: the engine declares
    its limits and validates with vdgx_limits_check; the worker advertises them in its state
    map (PROTOCOL.md 5.4 `limits`, 5.8); the broker checks every submitted job against the
    limits its workers advertised, so a client learns at submit time, not when a worker
    picks the job up, that the model cannot make it. A model whose limits no worker has
    advertised yet is checked by the worker alone.
*/
#ifndef VDGX_LIMITS_H_INCLUDED
#define VDGX_LIMITS_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_genreq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_LIMITS_SIZES_MAX 16

typedef struct {
    bool present;                           //  false = nothing declared: every check passes
    uint32_t wh_min, wh_max, wh_multiple;   //  width and height each, when nsizes == 0
    uint32_t sizes [VDGX_LIMITS_SIZES_MAX][2];  //  when nsizes > 0: the only (width, height) pairs
    size_t nsizes;
    uint32_t frames_max;
    bool frames_4n1;                        //  frame counts must be 4n+1
    uint32_t frames_step;                   //  0, or frame counts must be frames_step*n+1
    uint32_t steps_max;
    double guidance_max;
    uint32_t fps_max;
    uint32_t images;                        //  input images: 0 text-to-video only, 1 `image`
                                            //  (first frame), 2 also `last_image`
    uint32_t images_required;               //  0..images: how many of them a request must
                                            //  send (an image-to-video model: all of them)
} vdgx_limits_t;

//  Absent limits (present = false).
void vdgx_limits_init (vdgx_limits_t *self);

//  Adds an allowed size. Returns 0, or -1 when the list is full or a side is 0.
int vdgx_limits_add_size (vdgx_limits_t *self, uint32_t width, uint32_t height);

//  Checks what req sets (0 or absent means "the model's default" and is not checked) against
//  the limits. Returns 0, or -1 with err: code bad_request, the field (width, height, frames,
//  steps, guidance, fps, image, last_image) and a message that names model and the allowed
//  values.
int vdgx_limits_check (const vdgx_limits_t *self, const char *model, const vdgx_genreq_t *req,
                       vdgx_error_t *err);

//  Wire form (PROTOCOL.md 5.8): {wh_min, wh_max, wh_multiple, sizes?: ["WxH"], frames_max,
//  frames_4n1, frames_step? (when set), steps_max, guidance_max, fps_max, images?,
//  images_required?} (images and images_required only when > 0). self must be present.
int vdgx_limits_pack (const vdgx_limits_t *self, msgpack_packer *pk);
//  Strict decode of that map at path (for error fields, e.g. "limits"); sets present.
int vdgx_limits_decode_obj (vdgx_limits_t *self, const msgpack_object *obj, const char *path,
                            vdgx_error_t *err);

//  Same limits (both absent, or equal in every field).
bool vdgx_limits_equal (const vdgx_limits_t *a, const vdgx_limits_t *b);

void vdgx_limits_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
