/*  vdgx_cuda_int.h - private to the CUDA backend: kernel launchers shared by the host code
    (vdgx_cuda.c, plain C) and the .cu files. Every launcher returns the launch error
    (cudaGetLastError) so the host code can report it; none synchronises.
    Dtype arguments are vdgx_dtype_t values; "float" kernels accept F32, F16, BF16 (and FP8
    where noted) through per-element conversion, which is uniform across a warp.
*/
#ifndef VDGX_CUDA_INT_H_INCLUDED
#define VDGX_CUDA_INT_H_INCLUDED

#include <cuda_runtime.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  A device weight as the kernels see it (same layout as the host formats in vdgx_quant.h).
typedef struct {
    int fmt;                    //  vdgx_wfmt_t
    int64_t n, k;
    const void *data;
    const void *scales;
    int64_t scale_count;
    float gscale;
} vc_wdesc_t;

//  Elementwise and norms (vdgx_cuda_elem.cu)
cudaError_t vc_cast (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t n);
//  Row norm over C, optional gamma/beta, optional modulate with shift/scale[(r/L)%Bm, C].
cudaError_t vc_norm (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t rows,
                     int64_t C, const void *gamma, int gdt, const void *beta, int bdt, float eps,
                     int rms, const void *shift, int shdt, const void *scale, int scdt, int64_t L,
                     int64_t Bm);
//  Channel RMS norm over dim 1 of x[N,C,S] (Wan-VAE), then SiLU when silu (one pass).
cudaError_t vc_channel_rmsnorm (cudaStream_t st, void *y, int ydt, const void *x, int xdt,
                                int64_t N, int64_t C, int64_t S, const void *gamma, int gdt,
                                const void *beta, int bdt, bool silu);
cudaError_t vc_modulate (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t rows,
                         int64_t C, int64_t L, int64_t Bm, const void *shift, int shdt,
                         const void *scale, int scdt);
cudaError_t vc_gated_residual (cudaStream_t st, void *x, int xdt, const void *y, int ydt,
                               int64_t rows, int64_t C, int64_t L, int64_t Bm, const void *gate,
                               int gdt);
enum { VC_U_GELU = 0, VC_U_SILU, VC_U_AFFINE, VC_U_LEAKY, VC_U_GELU_ERF, VC_U_TANH, VC_U_SIGMOID };
cudaError_t vc_unary (cudaStream_t st, int op, void *y, int ydt, const void *x, int xdt, int64_t n,
                      float a, float b, float lo, float hi);
enum { VC_B_ADD = 0, VC_B_MUL };
cudaError_t vc_binary (cudaStream_t st, int op, void *y, int ydt, const void *a, int adt,
                       const void *b, int bdt, int64_t n, int64_t nb, float alpha);
cudaError_t vc_rope (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t B,
                     int64_t L, int64_t H, int64_t D, const void *cos_t, const void *sin_t,
                     int tdt, int half);
cudaError_t vc_permute (cudaStream_t st, void *y, const void *x, int esize, int ndim,
                        const int64_t *xshape, const int *perm);
cudaError_t vc_upsample2x (cudaStream_t st, void *y, const void *x, int esize, int64_t planes,
                           int64_t H, int64_t W);
//  Column chunk [p0, p0+pc) of the im2col matrix col[K = Cin*kt*kh*kw][pc] (cdt F32 or BF16).
cudaError_t vc_im2col (cudaStream_t st, void *col, int cdt, const void *x, int xdt, int Cin,
                       int T, int H, int W, int kt, int kh, int kw, int s_t, int s_h, int s_w,
                       int p_t, int p_h, int p_w, int To, int Ho, int Wo, int64_t p0, int64_t pc);
cudaError_t vc_conv_naive (cudaStream_t st, void *y, int ydt, const void *x, int xdt,
                           const void *w, int wdt, const void *bias, int bdt, int N, int Cin,
                           int T, int H, int W, int Cout, int kt, int kh, int kw, int s_t,
                           int s_h, int s_w, int p_t, int p_h, int p_w, int To, int Ho, int Wo);
//  y[n, c, p] += bias[c] for y[N, C, P].
cudaError_t vc_add_channel_bias (cudaStream_t st, void *y, int ydt, const void *bias, int bdt,
                                 int64_t N, int64_t C, int64_t P);
//  amax must point to one device float; it is zeroed here.
cudaError_t vc_amax (cudaStream_t st, const void *x, int xdt, int64_t n, float *amax);
//  q = e4m3(x / s), s = amax / 448 (1 when amax is 0); *scale_out = s.
cudaError_t vc_quant_e4m3 (cudaStream_t st, uint8_t *q, const void *x, int xdt, int64_t n,
                           const float *amax, float *scale_out);
//  y[M,N] = y * colscale[n or 0] + bias[n]; colscale/bias may be NULL.
cudaError_t vc_col_scale_bias (cudaStream_t st, void *y, int ydt, int64_t M, int64_t N,
                               const float *colscale, int64_t nscale, const void *bias, int bdt);
//  y[b] = a[b] . bm[b] with a[b] [M,K], bm[b] [K,N] (batch strides in elements, 0 = shared).
cudaError_t vc_matmul_naive (cudaStream_t st, void *y, int ydt, const void *a, int adt,
                             const void *bm, int bdt, int64_t B, int64_t M, int64_t N, int64_t K,
                             int64_t a_bs, int64_t b_bs);

//  Weight-only GEMM and weight (de)quantization (vdgx_cuda_wgemm.cu)
cudaError_t vc_set_nf4_table (const float *table16, cudaStream_t st);
cudaError_t vc_wdequant_bf16 (cudaStream_t st, uint16_t *out, const vc_wdesc_t *w);
//  y[M,N] = x[M,K] . W^T + bias. mma: tensor-core kernel (x must be BF16, sm_80+);
//  otherwise the naive kernel (any x dtype).
cudaError_t vc_wgemm (cudaStream_t st, int mma, void *y, int ydt, const void *x, int xdt,
                      int64_t M, const vc_wdesc_t *w, const void *bias, int bdt);
//  Quantizes src [n,k] into preallocated data/scales (layouts of vdgx_quant.h).
//  FP8 per-tensor needs one float of scratch (amax).
cudaError_t vc_wquant (cudaStream_t st, int fmt, void *data, void *scales, const void *src,
                       int sdt, int64_t n, int64_t k, int per_channel, float *scratch,
                       float *gscale_host);

//  NVFP4 for cuBLASLt's block-scaled GEMM: scales [rows, cols] (cols = k/16) re-laid into
//  128x4 tiles (zero padded to vc_swizzled_bytes), and activations x[M,K] quantized to E2M1
//  codes xq [M, K/2] with tiled E4M3 block scales; *alpha_out = w_gscale * activation gscale.
size_t vc_swizzled_bytes (int64_t rows, int64_t cols);
cudaError_t vc_swizzle_scales (cudaStream_t st, uint8_t *dst, const uint8_t *src, int64_t rows,
                               int64_t cols);
cudaError_t vc_quant_act_nvfp4 (cudaStream_t st, uint8_t *xq, uint8_t *sc, const void *x, int xdt,
                                int64_t M, int64_t K, const float *amax, float w_gscale,
                                float *alpha_out);

//  1D ops (vdgx_cuda_ops1d.cu): one thread per output element, f32 accumulation, any float
//  dtype per operand. Shapes as in vdgx_backend.h; w of conv1d [Cout,Cin/G,K], of the
//  transposed one [Cin,Cout/G,K]; bias may be NULL.
cudaError_t vc_conv1d (cudaStream_t st, bool transposed, void *y, int ydt, const void *x, int xdt,
                       const void *w, int wdt, const void *bias, int bdt, int64_t N, int64_t Cin,
                       int64_t Cout, int64_t L, int64_t Lout, int64_t K, int64_t stride,
                       int64_t pad_left, int64_t dilation, int64_t groups);
//  rows of length L -> rows of length L + left + right; mode 0 zero, 1 replicate, 2 reflect.
cudaError_t vc_pad1d (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t rows,
                      int64_t L, int64_t left, int64_t right, int mode);
//  x [N, C, S]: y = x + sin(a x)^2 / (b + 1e-9) with per-channel a, b (beta NULL: b = a).
cudaError_t vc_snake (cudaStream_t st, void *y, int ydt, const void *x, int xdt, const void *alpha,
                      int adt, const void *beta, int bdt, int64_t n, int64_t C, int64_t S,
                      bool logscale);

//  Attention (vdgx_cuda_attn.cu). q,k,v same dtype; q [B,Lq,H,D], k/v [B,Lk,Hkv,D] (query
//  head h reads kv head h / (H/Hkv)) with batch stride kv_bstride elements; mask U8 [B,Lk]
//  or NULL; bias F32 [H,Lq,Lk] or NULL; m: the mask kind (vdgx_attn_kind_t) and its
//  parameters. A row that sees no key gets 0. flash (1 = simple V loads, 2 = ldmatrix.trans
//  V loads, 3 = 2 + cp.async double buffering; 0 = reference kernel):
//  BF16 and D in {64, 128} only (returns cudaErrorNotSupported otherwise).
typedef struct {
    int kind;
    int64_t q_offset, window, block;
} vc_attn_mask_t;
cudaError_t vc_attention (cudaStream_t st, int flash, void *o, int odt, const void *q,
                          const void *k, const void *v, int qdt, int64_t B, int64_t Lq,
                          int64_t Lk, int64_t H, int64_t Hkv, int64_t D, int64_t kv_bstride,
                          vc_attn_mask_t m, const uint8_t *mask, const float *bias, float scale);

#ifdef __cplusplus
}
#endif
#endif
