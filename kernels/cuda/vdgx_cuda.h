/*  vdgx_cuda.h - the CUDA backend (cuBLASLt GEMMs, custom FP4/FP8 weight-only GEMM,
    FlashAttention-2-style attention, fused norms and elementwise kernels).

    Built as the module libvdgx_cuda.so: the backend registry (kernels/vdgx_backend.c) loads
    it with dlopen the first time "cuda" / "cuda:N" is asked for and calls
    vdgx_backend_module_init. Everything else here is optional extras for tests and the
    benchmark, which link the module directly (valid once a "cuda" backend has been created).

    Kernel path selection (read once when a backend opens; tests use it to check every path):
      VDGX_CUDA_LINEAR = auto | lt | mma | naive | dequant
          lt      cuBLASLt (BF16, FP8 E4M3), falls back to the others when no algorithm fits
          mma     custom weight-only mma.sync GEMM (4-bit and FP8 weights dequantized in
                  registers)
          dequant dequantize the weight into a BF16 scratch, then cuBLASLt BF16 GEMM
          naive   one thread per output, the reference kernel
      VDGX_CUDA_ATTN = auto | flash | flash_ldsm | flash_pipe | naive   (auto = flash)
      VDGX_CUDA_CONV = auto | gemm | naive
    VDGX_CUDA_SYNC=1 synchronises after every kernel, so a device fault is reported by the op
    that caused it (the tests run that way).
*/
#ifndef VDGX_CUDA_H_INCLUDED
#define VDGX_CUDA_H_INCLUDED

#include "vdgx_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The module entry point: the CUDA backend's ops table and open/close (prefix "cuda").
const vdgx_backend_impl_t *vdgx_backend_module_init (const vdgx_backend_host_t *host, char **err);

//  Number of CUDA devices (0 when the driver or a GPU is missing; never fails).
int vdgx_cuda_device_count (void);

//  One line describing the device and the paths in use (compute capability, cuBLASLt FP8 /
//  NVFP4 availability). Valid while the backend lives.
const char *vdgx_cuda_info (vdgx_backend_t *self);

//  The backend's stream (a cudaStream_t), e.g. to time its work with CUDA events.
void *vdgx_cuda_stream (vdgx_backend_t *self);

//  Fused LayerNorm (or RMSNorm when rms) + adaLN modulate over x[B,L,C]:
//  y = norm(x) * gamma + beta, then y * (1 + scale[B,C]) + shift[B,C]. gamma, beta, shift,
//  scale may each be NULL.
int vdgx_cuda_norm_modulate (vdgx_backend_t *self, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                             const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta, float eps,
                             bool rms, const vdgx_tensor_t *shift, const vdgx_tensor_t *scale);

//  Load-time quantization on the GPU: src is a device BF16/F32 tensor [n,k]; creates a device
//  weight of format fmt (FP8_E4M3, NVFP4, NF4, MXFP4) with the same definitions as
//  vdgx_weight_quantize. Free with the backend's weight_free (vdgx_weight_release).
int vdgx_cuda_weight_quantize (vdgx_backend_t *self, vdgx_weight_t *dst, vdgx_wfmt_t fmt,
                               const vdgx_tensor_t *src, bool per_channel);

#ifdef __cplusplus
}
#endif
#endif
