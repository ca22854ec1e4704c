/*  refcheck.h - vdgx-refcheck: compares the engines with reference vectors made by the
    official model code (tests/data/reference/<model>/: manifest.json + safetensors).
    Each part (t5, dit, sampling, vae) is one function in its own file.
*/
#ifndef VDGX_REFCHECK_H_INCLUDED
#define VDGX_REFCHECK_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

typedef struct {
    const char *dir;            //  vector directory
    json_t *manifest;           //  parsed manifest.json
    vdgx_backend_t *backend;    //  chosen by --device
    bool gpu;                   //  compare by relative norm (reduced precision) instead of atol/rtol
    double atol, rtol;          //  CPU tolerances (default 1e-4 / 1e-4)
    double relnorm;             //  GPU tolerance (default 1e-2)
    bool verbose;
    int checks, failures;
    void *files;                //  opened checkpoints, by file name (internal)
} vdgx_refcheck_t;

//  Opens (once, then cached) a safetensors file of the vector directory; NULL with a message.
vdgx_ckpt_t *vdgx_refcheck_file (vdgx_refcheck_t *rc, const char *file);
//  Reads a stored tensor as f32 (caller frees); shape copied to shape/ndim when not NULL.
float *vdgx_refcheck_load (vdgx_refcheck_t *rc, const char *file, const char *name,
                           int64_t *shape, int *ndim, size_t *numel);
//  Compares got against want (n floats), prints one line (label, max abs err, max rel err,
//  tolerance, PASS/FAIL) and counts a failure. Returns 0 when within tolerance.
int vdgx_refcheck_compare (vdgx_refcheck_t *rc, const char *label, const float *got,
                           const float *want, size_t n);
//  Same, loading want from the vector file.
int vdgx_refcheck_compare_stored (vdgx_refcheck_t *rc, const char *label, const float *got,
                                  size_t n, const char *file, const char *name);
//  Reads a stored integer tensor (I64/I32/U8) as int64 (caller frees); shape as for _load.
int64_t *vdgx_refcheck_load_i64 (vdgx_refcheck_t *rc, const char *file, const char *name,
                                 int64_t *shape, int *ndim, size_t *numel);
//  Compares a device tensor (any float dtype) with a stored tensor: downloads it as f32
//  and checks that the element counts agree.
int vdgx_refcheck_compare_tensor (vdgx_refcheck_t *rc, const char *label,
                                  const vdgx_tensor_t *got, const char *file, const char *name);
//  Compares got and want laid out as [outer, rows, inner] on the rows whose row_mask is set
//  only (the valid tokens of a padded batch).
int vdgx_refcheck_compare_rows (vdgx_refcheck_t *rc, const char *label, const float *got,
                                const float *want, size_t outer, size_t rows, size_t inner,
                                const uint8_t *row_mask);
//  Collects a decoder's frames (callback form: index, planar [3][H][W]) into one planar
//  video [3][frames][H][W]; a frame out of order or past `frames` aborts the decode and
//  sets bad.
typedef struct {
    float *video;
    int frames, got;
    bool bad;
} vdgx_refcheck_frames_t;
int vdgx_refcheck_collect_frame (void *frames, int index, const float *chw, int width, int height);

//  Closes the cached files (main.c calls it once at the end).
void vdgx_refcheck_close (vdgx_refcheck_t *rc);

//  The parts. Each returns 0 when it ran (failures are counted in rc), -1 when it could not run.
int vdgx_refcheck_wan21_t5 (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_dit (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_sampling (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_vae (vdgx_refcheck_t *rc);
int vdgx_refcheck_t5v11 (vdgx_refcheck_t *rc);
int vdgx_refcheck_gemma3 (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx2_text (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx23_text (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx2_video_vae (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx23_video_vae (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx2_dit (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx23_dit (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx2_audio (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx23_audio (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx2_sampling (vdgx_refcheck_t *rc);
int vdgx_refcheck_ltx23_sampling (vdgx_refcheck_t *rc);
int vdgx_refcheck_magi1_dit (vdgx_refcheck_t *rc);
int vdgx_refcheck_magi1_sampling (vdgx_refcheck_t *rc);
int vdgx_refcheck_magi1_sampling_distill (vdgx_refcheck_t *rc);
int vdgx_refcheck_magi1_vae (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_i2v_clip (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_i2v_vae_encode (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_i2v_dit (vdgx_refcheck_t *rc);
int vdgx_refcheck_wan21_i2v_pipeline (vdgx_refcheck_t *rc);

#endif
