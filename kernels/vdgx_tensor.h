/*  vdgx_tensor.h - dtypes, tensors and linear-layer weights of the compute layer.

    A tensor is a plain description (dtype, shape, strides, device) of memory owned by a
    backend. Every op in vdgx_backend.h takes contiguous row-major tensors unless it says
    otherwise; strides exist so views can be described and checked (vdgx_tensor_is_contiguous).
*/
#ifndef VDGX_TENSOR_H_INCLUDED
#define VDGX_TENSOR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VDGX_DTYPE_F32 = 0,
    VDGX_DTYPE_F16,
    VDGX_DTYPE_BF16,
    VDGX_DTYPE_F8_E4M3,
    VDGX_DTYPE_F8_E5M2,
    VDGX_DTYPE_F64,
    VDGX_DTYPE_I64,
    VDGX_DTYPE_I32,
    VDGX_DTYPE_U8,
    VDGX_DTYPE_COUNT
} vdgx_dtype_t;

//  Size in bytes of one element, and the safetensors name ("F32", "BF16", "F8_E4M3", ...).
size_t vdgx_dtype_size (vdgx_dtype_t dtype);
const char *vdgx_dtype_name (vdgx_dtype_t dtype);
//  Parses a safetensors dtype name ("BOOL" reads as U8); returns -1 when unknown.
int vdgx_dtype_from_name (const char *name, vdgx_dtype_t *dtype);

#define VDGX_MAX_DIMS 6
#define VDGX_DEVICE_CPU (-1)

typedef struct {
    vdgx_dtype_t dtype;
    int ndim;
    int64_t shape [VDGX_MAX_DIMS];
    int64_t stride [VDGX_MAX_DIMS];     //  in elements; row-major contiguous by default
    void *data;                         //  host pointer (CPU) or device pointer (CUDA)
    int device;                         //  VDGX_DEVICE_CPU or a CUDA ordinal
    void *owner;                        //  backend that allocated data, NULL for a view
} vdgx_tensor_t;

//  Fills a description with contiguous strides. Does not allocate.
void vdgx_tensor_init (vdgx_tensor_t *t, vdgx_dtype_t dtype, int ndim, const int64_t *shape,
                       void *data, int device);
int64_t vdgx_tensor_numel (const vdgx_tensor_t *t);
size_t vdgx_tensor_nbytes (const vdgx_tensor_t *t);
bool vdgx_tensor_is_contiguous (const vdgx_tensor_t *t);
//  Same data, new shape with the same element count (contiguous only); returns -1 otherwise.
int vdgx_tensor_reshape (vdgx_tensor_t *view, const vdgx_tensor_t *t, int ndim, const int64_t *shape);

//  Scalar conversions (exact definitions; round to nearest even, saturating for FP8).
float vdgx_bf16_to_f32 (uint16_t v);
uint16_t vdgx_f32_to_bf16 (float f);
float vdgx_f16_to_f32 (uint16_t v);
uint16_t vdgx_f32_to_f16 (float f);
float vdgx_e4m3_to_f32 (uint8_t v);
uint8_t vdgx_f32_to_e4m3 (float f);     //  max 448, RNE, saturating, NaN stays NaN
float vdgx_e5m2_to_f32 (uint8_t v);
uint8_t vdgx_f32_to_e5m2 (float f);
//  Converts n elements of any float dtype to f32 / f32 to any float dtype (host memory).
int vdgx_convert_to_f32 (float *dst, const void *src, vdgx_dtype_t src_dtype, size_t n);
int vdgx_convert_from_f32 (void *dst, vdgx_dtype_t dst_dtype, const float *src, size_t n);

//  ---------------------------------------------------------------------------------------
//  Linear-layer weights W[n, k] (PyTorch layout: out features x in features), possibly
//  quantized. Formats are defined exactly in vdgx_quant.h.
typedef enum {
    VDGX_WFMT_F32 = 0,
    VDGX_WFMT_BF16,
    VDGX_WFMT_F16,
    VDGX_WFMT_FP8_E4M3,     //  data e4m3 [n,k]; scales f32 [n] (per channel) or [1] (per tensor)
    VDGX_WFMT_NVFP4,        //  data e2m1 [n,k/2] low nibble first; scales e4m3 [n,k/16]; global_scale
    VDGX_WFMT_MXFP4,        //  data e2m1 [n,k/2]; scales e8m0 [n,k/32]
    VDGX_WFMT_NF4,          //  data nf4 codes [n,k/2]; scales f32 absmax [n,k/64]
    VDGX_WFMT_COUNT
} vdgx_wfmt_t;

typedef struct {
    vdgx_wfmt_t fmt;
    int64_t n, k;
    void *data;
    void *scales;
    int64_t scale_count;        //  number of scale elements
    float global_scale;         //  NVFP4 tensor scale (1.0 otherwise)
    int device;
    void *owner;                //  backend that owns data/scales
    void *backend_priv;         //  backend-prepared layout (e.g. swizzled scales), owned by it
} vdgx_weight_t;

const char *vdgx_wfmt_name (vdgx_wfmt_t fmt);
//  Parses "f32", "bf16", "f16", "fp8", "nvfp4", "mxfp4", "nf4"; -1 when unknown.
int vdgx_wfmt_from_name (const char *name, vdgx_wfmt_t *fmt);
//  Bytes a weight of this format and shape needs (data + scales), for memory estimates.
size_t vdgx_wfmt_bytes (vdgx_wfmt_t fmt, int64_t n, int64_t k);

#ifdef __cplusplus
}
#endif
#endif
