//  vdgx_cuda_dev.cuh - device helpers shared by the .cu files (dtype loads/stores, reductions).
#ifndef VDGX_CUDA_DEV_CUH_INCLUDED
#define VDGX_CUDA_DEV_CUH_INCLUDED

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>
#include "vdgx_tensor.h"
#include "vdgx_cuda_int.h"

//  Grid for n elements with 256-thread blocks, capped; kernels loop with a grid stride.
static inline unsigned vc_grid (int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 16) b = 65535LL * 16;
    return (unsigned) b;
}

__device__ __forceinline__ float vc_e4m3_f (uint8_t v)
{
    __half_raw h = __nv_cvt_fp8_to_halfraw ((__nv_fp8_storage_t) v, __NV_E4M3);
    return __half2float (__half (h));
}
__device__ __forceinline__ uint8_t vc_f_e4m3 (float f)
{
    return (uint8_t) __nv_cvt_float_to_fp8 (f, __NV_SATFINITE, __NV_E4M3);
}
__device__ __forceinline__ float vc_e5m2_f (uint8_t v)
{
    __half_raw h = __nv_cvt_fp8_to_halfraw ((__nv_fp8_storage_t) v, __NV_E5M2);
    return __half2float (__half (h));
}

//  Loads element i of a float tensor of dtype dt as f32.
__device__ __forceinline__ float vc_ld (const void *p, int dt, int64_t i)
{
    switch (dt) {
        case VDGX_DTYPE_F32: return ((const float *) p) [i];
        case VDGX_DTYPE_BF16: return __bfloat162float (((const __nv_bfloat16 *) p) [i]);
        case VDGX_DTYPE_F16: return __half2float (((const __half *) p) [i]);
        case VDGX_DTYPE_F8_E4M3: return vc_e4m3_f (((const uint8_t *) p) [i]);
        case VDGX_DTYPE_F8_E5M2: return vc_e5m2_f (((const uint8_t *) p) [i]);
        case VDGX_DTYPE_F64: return (float) ((const double *) p) [i];
        default: return 0.f;
    }
}
__device__ __forceinline__ void vc_st (void *p, int dt, int64_t i, float v)
{
    switch (dt) {
        case VDGX_DTYPE_F32: ((float *) p) [i] = v; break;
        case VDGX_DTYPE_BF16: ((__nv_bfloat16 *) p) [i] = __float2bfloat16_rn (v); break;
        case VDGX_DTYPE_F16: ((__half *) p) [i] = __float2half_rn (v); break;
        case VDGX_DTYPE_F8_E4M3: ((uint8_t *) p) [i] = vc_f_e4m3 (v); break;
        case VDGX_DTYPE_F8_E5M2:
            ((uint8_t *) p) [i] = (uint8_t) __nv_cvt_float_to_fp8 (v, __NV_SATFINITE, __NV_E5M2);
            break;
        case VDGX_DTYPE_F64: ((double *) p) [i] = v; break;
        default: break;
    }
}
//  Optional operand: 'dflt' when p is NULL.
__device__ __forceinline__ float vc_ldo (const void *p, int dt, int64_t i, float dflt)
{
    return p ? vc_ld (p, dt, i) : dflt;
}

__device__ __forceinline__ float vc_warp_sum (float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync (0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float vc_warp_max (float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf (v, __shfl_xor_sync (0xffffffffu, v, o));
    return v;
}
//  Sum over the block (blockDim.x a multiple of 32, <= 1024); sh has 32 floats. Every thread
//  gets the result.
__device__ __forceinline__ float vc_block_sum (float v, float *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = vc_warp_sum (v);
    if (lane == 0) sh [wid] = v;
    __syncthreads ();
    if (wid == 0) {
        float t = lane < nw ? sh [lane] : 0.f;
        t = vc_warp_sum (t);
        if (lane == 0) sh [0] = t;
    }
    __syncthreads ();
    float r = sh [0];
    __syncthreads ();
    return r;
}
//  Max of the non-negative m over the block (same shape rules as vc_block_sum), folded into
//  *amax by one atomicMax (non-negative floats order like their bit patterns as ints).
__device__ __forceinline__ void vc_block_amax (float m, float *sh, float *amax)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    m = vc_warp_max (m);
    if (lane == 0) sh [wid] = m;
    __syncthreads ();
    if (wid == 0) {
        m = lane < nw ? sh [lane] : 0.f;
        m = vc_warp_max (m);
        if (lane == 0) atomicMax ((int *) amax, __float_as_int (m));
    }
}

#endif
