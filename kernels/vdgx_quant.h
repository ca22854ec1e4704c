/*  vdgx_quant.h - quantized weight formats, exact definitions and conversions both ways.

    FP8 E4M3  : 1-4-3, bias 7, no inf, max 448; RNE; saturating. Scale f32 per tensor or per
                output channel: w = e4m3 * scale, scale = amax / 448.
    NVFP4     : E2M1 values +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}; blocks of 16 along k, each with an
                E4M3 scale; one f32 tensor scale: w = e2m1 * e4m3_scale * global_scale,
                global_scale = amax / (448 * 6).
    MXFP4     : E2M1 values; blocks of 32 with an E8M0 scale (2^(e-127)).
    NF4       : the bitsandbytes 16-level NormalFloat table; blocks of 64 with an f32 absmax.
    Packing   : two 4-bit codes per byte, element 2i in the low nibble, 2i+1 in the high one.
    k must be a multiple of the block size (16, 32, 64); callers keep other shapes in bf16.
*/
#ifndef VDGX_QUANT_H_INCLUDED
#define VDGX_QUANT_H_INCLUDED

#include "vdgx_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const float vdgx_e2m1_values [16];
extern const float vdgx_nf4_values [16];

uint8_t vdgx_f32_to_e2m1 (float f);         //  RNE to the nearest E2M1 value, saturating at 6
float vdgx_e8m0_to_f32 (uint8_t e);

//  Host weights: quantizes src f32 [n,k] into a newly allocated host weight of format fmt
//  (per_channel selects FP8 per-output-channel scales). Frees with vdgx_weight_host_free.
int vdgx_weight_quantize (vdgx_weight_t *w, vdgx_wfmt_t fmt, const float *src, int64_t n,
                          int64_t k, bool per_channel, char **err);
//  Wraps an already-FP8 checkpoint tensor (e4m3 [n,k]) with its scale(s) (copies).
int vdgx_weight_from_fp8 (vdgx_weight_t *w, const uint8_t *e4m3, const float *scales,
                          int64_t scale_count, int64_t n, int64_t k, char **err);
//  Wraps an NVFP4 checkpoint weight in the cuBLAS block-scaled layout (ModelOpt / the LTX-2
//  nvfp4 files: packed [n, k/2] with element 2j in the HIGH nibble when hi_first; e4m3 block
//  scales in 128x4 tiles of the zero-padded [scale_rows = roundup(n, 128), scale_cols =
//  roundup(k/16, 4)] matrix: tile (r/128) * (scale_cols/4) + c/4, offset tile*512 +
//  (r%32)*16 + ((r%128)/32)*4 + c%4; the f32 per-tensor decode scale) into the project's
//  NVFP4 layout (low nibble first, scales row-major [n, k/16]). Same values (copies).
int vdgx_weight_from_nvfp4_tiled (vdgx_weight_t *w, const uint8_t *packed, bool hi_first,
                                  const uint8_t *tiled_scales, int64_t scale_rows,
                                  int64_t scale_cols, float global_scale, int64_t n, int64_t k,
                                  char **err);
//  The inverse (tests, checkpoint writers): dst_packed [n*k/2], dst_scales [scale_rows *
//  scale_cols] (zero padding) from an NVFP4 host weight.
void vdgx_weight_to_nvfp4_tiled (const vdgx_weight_t *w, bool hi_first, uint8_t *dst_packed,
                                 uint8_t *dst_scales, int64_t scale_rows, int64_t scale_cols);

//  Dequantizes row r (k elements) of a host weight into dst.
void vdgx_weight_dequant_row (const vdgx_weight_t *w, int64_t r, float *dst);
//  Dequantizes the whole weight (n*k floats).
void vdgx_weight_dequant (const vdgx_weight_t *w, float *dst);
void vdgx_weight_host_free (vdgx_weight_t *w);

//  Loads the linear weight `name` ("blocks.0.ffn.0.weight", [n,k]; more dims flatten into k)
//  from a checkpoint into a host weight of format fmt. BF16/F16/F32 tensors are quantized at
//  load; an F8_E4M3 tensor (a *_fp8_e4m3fn checkpoint) takes its scale from "<prefix>.scale_weight"
//  (ComfyUI) or "<prefix>.weight_scale" ([1], [] or [n] / [n,1]; 1.0 when neither exists) and
//  is kept as-is for fmt FP8 or dequantized and requantized otherwise.
typedef struct _vdgx_ckpt_t vdgx_ckpt_t;
int vdgx_weight_from_ckpt (vdgx_weight_t *w, vdgx_ckpt_t *ckpt, const char *name, vdgx_wfmt_t fmt,
                           bool per_channel, char **err);

void vdgx_quant_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
