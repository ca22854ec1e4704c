//  vdgx_cuda_elem.cu - memory-bound kernels: casts, norms, modulate, activations, rope,
//  permute, upsample, im2col, FP8 activation quantization, GEMM epilogues.
//  Dtypes are runtime arguments (warp-uniform branches) so one instantiation serves every
//  dtype combination; these kernels are bandwidth bound and the branch costs little.
#include "vdgx_cuda_dev.cuh"

#define GS_LOOP(i, n) \
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t) gridDim.x * blockDim.x)

static __global__ void k_cast (void *y, int ydt, const void *x, int xdt, int64_t n)
{
    GS_LOOP (i, n) vc_st (y, ydt, i, vc_ld (x, xdt, i));
}

//  bf16 -> bf16 style same-dtype vector path is not needed: cast is only used for real
//  conversions (same dtype goes through cudaMemcpyAsync in the host code).
extern "C" cudaError_t vc_cast (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t n)
{
    if (n <= 0) return cudaSuccess;
    k_cast<<<vc_grid (n, 256), 256, 0, st>>> (y, ydt, x, xdt, n);
    return cudaGetLastError ();
}

//  One block per row. Two passes over the row for mean and variance (numerically safer than
//  sum of squares). CACHE: the row is read from global memory once into shared memory (f32,
//  C floats of dynamic shared memory); otherwise the later passes re-read it through L1/L2.
template <bool CACHE>
static __global__ void k_norm (void *y, int ydt, const void *x, int xdt, int64_t rows, int64_t C,
                               const void *gamma, int gdt, const void *beta, int bdt, float eps,
                               int rms, const void *shift, int shdt, const void *scale, int scdt,
                               int64_t L, int64_t Bm)
{
    __shared__ float sh [32];
    extern __shared__ float rowc [];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t base = r * C;
        float mean = 0.f;
        {
            float s = 0.f;
            for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
                float v = vc_ld (x, xdt, base + c);
                if (CACHE) rowc [c] = v;
                s += v;
            }
            //  (each thread reads back only what it wrote: no barrier needed before reuse)
            if (!rms)
                mean = vc_block_sum (s, sh) / (float) C;
        }
        float s2 = 0.f;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            float d = (CACHE ? rowc [c] : vc_ld (x, xdt, base + c)) - mean;
            s2 += d * d;
        }
        float var = vc_block_sum (s2, sh) / (float) C;
        float inv = eps < 0.f ? 1.f / (sqrtf (var) - eps) : rsqrtf (var + eps);
        int64_t mb = ((r / L) % Bm) * C;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            float v = ((CACHE ? rowc [c] : vc_ld (x, xdt, base + c)) - mean) * inv;
            v = v * vc_ldo (gamma, gdt, c, 1.f) + vc_ldo (beta, bdt, c, 0.f);
            if (shift || scale)
                v = v * (1.f + vc_ldo (scale, scdt, mb + c, 0.f)) + vc_ldo (shift, shdt, mb + c, 0.f);
            vc_st (y, ydt, base + c, v);
        }
    }
}

extern "C" cudaError_t vc_norm (cudaStream_t st, void *y, int ydt, const void *x, int xdt,
                                int64_t rows, int64_t C, const void *gamma, int gdt,
                                const void *beta, int bdt, float eps, int rms, const void *shift,
                                int shdt, const void *scale, int scdt, int64_t L, int64_t Bm)
{
    if (rows <= 0 || C <= 0) return cudaSuccess;
    if (L < 1) L = 1;
    if (Bm < 1) Bm = 1;
    int threads = C >= 1024 ? 256 : 128;
    unsigned g = rows > 65535 * 8 ? 65535 * 8 : (unsigned) rows;
    if (C <= 8192)      //  32 KiB of row cache
        k_norm<true><<<g, threads, (size_t) C * sizeof (float), st>>> (y, ydt, x, xdt, rows, C, gamma, gdt, beta,
                                                                       bdt, eps, rms, shift, shdt, scale, scdt, L, Bm);
    else
        k_norm<false><<<g, threads, 0, st>>> (y, ydt, x, xdt, rows, C, gamma, gdt, beta, bdt, eps, rms,
                                              shift, shdt, scale, scdt, L, Bm);
    return cudaGetLastError ();
}

//  Wan-VAE RMS_norm over dim 1 of x[N,C,S], y = x / max(||x[n,:,s]||_2, 1e-12) * sqrt(C)
//  * gamma[c] + beta[c], then SiLU when SILU (channel_rmsnorm_silu). The plain C reference is
//  the CPU backend's s_chnorm_task (kernels/cpu/vdgx_cpu.c).
//  A block takes a tile of 32 neighbouring positions s of one n and all C channels: warp ty
//  holds channels ty, ty + CHN_TY, ... of the tile, so every load and store is 32 neighbouring
//  s (coalesced). The warps' partial sums of squares meet in shared memory, and every thread
//  adds the CHN_TY partials of its column in the same order. In place (y == x) is safe: each
//  element is read and written by one thread, the read first. Two kernels:
//    k_chnorm_reg<T, K>  x and y of one dtype T (BF16 or F32), C <= K * CHN_TY: the thread's K
//                        values stay in registers between the passes, so x is read from
//                        memory once and y written once (the napkin bytes of the op); gamma
//                        and beta are read once per block into shared memory;
//    k_chnorm_any        any float dtypes, any C: the second pass reads x again (the tile the
//                        block has just read, from L1/L2).
#define CHN_TY 16
#define CHN_MAXC (24 * CHN_TY)

__device__ __forceinline__ float s_tof (float v) { return v; }
__device__ __forceinline__ float s_tof (__nv_bfloat16 v) { return __bfloat162float (v); }
__device__ __forceinline__ void s_fromf (float *p, float v) { *p = v; }
__device__ __forceinline__ void s_fromf (__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn (v); }

//  SiLU with the fast exp and division. __expf is off by 2 + 1.2 |v| ulp: under 2e-6
//  relative for |v| <= 10; past that SiLU is about v (exp(-v) vanishes against 1) or smaller
//  than 5e-4 in size, and below about v = -87 the quotient is 0 (exactly: under 1e-35).
//  The IEEE expf and division each add a slow-path branch per value, which doubled the
//  registers of the unrolled K = 24 kernel (120 against 64 on sm_90a).
template <bool SILU>
static __device__ __forceinline__ float s_chn_out (float v)
{
    return SILU ? __fdividef (v, 1.f + __expf (-v)) : v;
}

//  gamma (1 when NULL) and beta (0 when NULL) of channels [0, C) into gb [0..C) and gb [C..2C).
static __device__ __forceinline__ void s_chn_params (float *gb, int64_t C, const void *gamma, int gdt,
                                                     const void *beta, int bdt)
{
    const int tid = threadIdx.y * 32 + threadIdx.x;
    for (int64_t c = tid; c < C; c += 32 * CHN_TY) {
        gb [c] = vc_ldo (gamma, gdt, c, 1.f);
        gb [C + c] = vc_ldo (beta, bdt, c, 0.f);
    }
    __syncthreads ();
}

//  The scale sqrt(C) / max(||x||, 1e-12) of the thread's column from the warps' partial sums
//  of squares ss (a barrier inside: every thread of the block calls it).
static __device__ __forceinline__ float s_chn_scale (float (*part) [32], float ss, float root)
{
    part [threadIdx.y][threadIdx.x] = ss;
    __syncthreads ();
    ss = 0.f;
    #pragma unroll
    for (int r = 0; r < CHN_TY; r++)
        ss += part [r][threadIdx.x];
    return root / fmaxf (sqrtf (ss), 1e-12f);
}

template <typename T, int K, bool SILU>
static __global__ void __launch_bounds__ (32 * CHN_TY)
k_chnorm_reg (T *y, const T *x, int64_t N, int64_t C, int64_t S, const void *gamma, int gdt,
              const void *beta, int bdt)
{
    __shared__ float part [CHN_TY][32];
    __shared__ float gb [2 * K * CHN_TY];
    s_chn_params (gb, C, gamma, gdt, beta, bdt);
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t stiles = (S + 31) / 32, step = CHN_TY * S;
    const float root = sqrtf ((float) C);
    for (int64_t t = blockIdx.x; t < N * stiles; t += gridDim.x) {
        const int64_t n = t / stiles, s = (t % stiles) * 32 + tx;
        const bool live = s < S;
        const int64_t off = (n * C + ty) * S + s;       //  element (n, ty, s)
        float v [K];
        //  all K loads first, then the sum: the loads are in flight together
        #pragma unroll
        for (int k = 0; k < K; k++)
            v [k] = live && ty + k * CHN_TY < C ? s_tof (x [off + k * step]) : 0.f;
        float ss = 0.f;
        #pragma unroll
        for (int k = 0; k < K; k++)
            ss += v [k] * v [k];
        const float f = s_chn_scale (part, ss, root);
        #pragma unroll
        for (int k = 0; k < K; k++) {
            const int c = ty + k * CHN_TY;
            if (live && c < C)
                s_fromf (y + off + k * step, s_chn_out<SILU> (v [k] * f * gb [c] + gb [C + c]));
        }
        __syncthreads ();       //  every column read part before the next tile rewrites it
    }
}

template <bool SILU>
static __global__ void __launch_bounds__ (32 * CHN_TY)
k_chnorm_any (void *y, int ydt, const void *x, int xdt, int64_t N, int64_t C, int64_t S,
              const void *gamma, int gdt, const void *beta, int bdt)
{
    __shared__ float part [CHN_TY][32];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t stiles = (S + 31) / 32;
    const float root = sqrtf ((float) C);
    for (int64_t t = blockIdx.x; t < N * stiles; t += gridDim.x) {
        const int64_t n = t / stiles, s = (t % stiles) * 32 + tx;
        const bool live = s < S;
        const int64_t base = n * C * S + s;
        float ss = 0.f;
        if (live)
            for (int64_t c = ty; c < C; c += CHN_TY) {
                const float u = vc_ld (x, xdt, base + c * S);
                ss += u * u;
            }
        const float f = s_chn_scale (part, ss, root);
        if (live)
            for (int64_t c = ty; c < C; c += CHN_TY)
                vc_st (y, ydt, base + c * S,
                       s_chn_out<SILU> (vc_ld (x, xdt, base + c * S) * f * vc_ldo (gamma, gdt, c, 1.f)
                                        + vc_ldo (beta, bdt, c, 0.f)));
        __syncthreads ();
    }
}

template <typename T, int K>
static void s_chn_reg (cudaStream_t st, unsigned grid, bool silu, void *y, const void *x, int64_t N,
                       int64_t C, int64_t S, const void *gamma, int gdt, const void *beta, int bdt)
{
    dim3 block (32, CHN_TY);
    if (silu)
        k_chnorm_reg<T, K, true><<<grid, block, 0, st>>> ((T *) y, (const T *) x, N, C, S, gamma, gdt, beta, bdt);
    else
        k_chnorm_reg<T, K, false><<<grid, block, 0, st>>> ((T *) y, (const T *) x, N, C, S, gamma, gdt, beta, bdt);
}

template <typename T>
static void s_chn_typed (cudaStream_t st, unsigned grid, bool silu, void *y, const void *x, int64_t N,
                         int64_t C, int64_t S, const void *gamma, int gdt, const void *beta, int bdt)
{
    //  the Wan VAEs' widths 96, 192, 384 take K = 6, 12, 24
    if (C <= 2 * CHN_TY)
        s_chn_reg<T, 2> (st, grid, silu, y, x, N, C, S, gamma, gdt, beta, bdt);
    else if (C <= 6 * CHN_TY)
        s_chn_reg<T, 6> (st, grid, silu, y, x, N, C, S, gamma, gdt, beta, bdt);
    else if (C <= 12 * CHN_TY)
        s_chn_reg<T, 12> (st, grid, silu, y, x, N, C, S, gamma, gdt, beta, bdt);
    else
        s_chn_reg<T, 24> (st, grid, silu, y, x, N, C, S, gamma, gdt, beta, bdt);
}

extern "C" cudaError_t vc_channel_rmsnorm (cudaStream_t st, void *y, int ydt, const void *x,
                                           int xdt, int64_t N, int64_t C, int64_t S,
                                           const void *gamma, int gdt, const void *beta, int bdt,
                                           bool silu)
{
    if (N * S <= 0 || C <= 0) return cudaSuccess;
    int64_t tiles = N * ((S + 31) / 32);
    unsigned grid = tiles > 65535LL * 16 ? 65535u * 16 : (unsigned) tiles;
    if (xdt == ydt && C <= CHN_MAXC && xdt == VDGX_DTYPE_BF16)
        s_chn_typed<__nv_bfloat16> (st, grid, silu, y, x, N, C, S, gamma, gdt, beta, bdt);
    else if (xdt == ydt && C <= CHN_MAXC && xdt == VDGX_DTYPE_F32)
        s_chn_typed<float> (st, grid, silu, y, x, N, C, S, gamma, gdt, beta, bdt);
    else {
        dim3 block (32, CHN_TY);
        if (silu)
            k_chnorm_any<true><<<grid, block, 0, st>>> (y, ydt, x, xdt, N, C, S, gamma, gdt, beta, bdt);
        else
            k_chnorm_any<false><<<grid, block, 0, st>>> (y, ydt, x, xdt, N, C, S, gamma, gdt, beta, bdt);
    }
    return cudaGetLastError ();
}

static __global__ void k_modulate (void *y, int ydt, const void *x, int xdt, int64_t rows,
                                   int64_t C, int64_t L, int64_t Bm, const void *shift, int shdt,
                                   const void *scale, int scdt)
{
    GS_LOOP (i, rows * C) {
        int64_t r = i / C, c = i % C;
        int64_t m = ((r / L) % Bm) * C + c;
        float v = vc_ld (x, xdt, i) * (1.f + vc_ldo (scale, scdt, m, 0.f)) + vc_ldo (shift, shdt, m, 0.f);
        vc_st (y, ydt, i, v);
    }
}

extern "C" cudaError_t vc_modulate (cudaStream_t st, void *y, int ydt, const void *x, int xdt,
                                    int64_t rows, int64_t C, int64_t L, int64_t Bm,
                                    const void *shift, int shdt, const void *scale, int scdt)
{
    if (rows * C <= 0) return cudaSuccess;
    k_modulate<<<vc_grid (rows * C, 256), 256, 0, st>>> (y, ydt, x, xdt, rows, C, L < 1 ? 1 : L,
                                                         Bm < 1 ? 1 : Bm, shift, shdt, scale, scdt);
    return cudaGetLastError ();
}

static __global__ void k_gated_residual (void *x, int xdt, const void *y, int ydt, int64_t rows,
                                         int64_t C, int64_t L, int64_t Bm, const void *gate, int gdt)
{
    GS_LOOP (i, rows * C) {
        int64_t r = i / C, c = i % C;
        int64_t m = ((r / L) % Bm) * C + c;
        float v = vc_ld (x, xdt, i) + vc_ld (y, ydt, i) * vc_ldo (gate, gdt, m, 1.f);
        vc_st (x, xdt, i, v);
    }
}

extern "C" cudaError_t vc_gated_residual (cudaStream_t st, void *x, int xdt, const void *y,
                                          int ydt, int64_t rows, int64_t C, int64_t L, int64_t Bm,
                                          const void *gate, int gdt)
{
    if (rows * C <= 0) return cudaSuccess;
    k_gated_residual<<<vc_grid (rows * C, 256), 256, 0, st>>> (x, xdt, y, ydt, rows, C,
                                                               L < 1 ? 1 : L, Bm < 1 ? 1 : Bm,
                                                               gate, gdt);
    return cudaGetLastError ();
}

static __global__ void k_unary (int op, void *y, int ydt, const void *x, int xdt, int64_t n,
                                float a, float b, float lo, float hi)
{
    GS_LOOP (i, n) {
        float v = vc_ld (x, xdt, i), r;
        if (op == VC_U_GELU) {
            //  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
            r = 0.5f * v * (1.f + tanhf (u));
        }
        else
        if (op == VC_U_SILU)
            r = v / (1.f + expf (-v));
        else
        if (op == VC_U_LEAKY)
            r = v >= 0.f ? v : a * v;
        else
        if (op == VC_U_GELU_ERF)
            r = 0.5f * v * (1.f + erff (v * 0.70710678118654752f));
        else
        if (op == VC_U_TANH)
            r = tanhf (v);
        else
        if (op == VC_U_SIGMOID)
            r = 1.f / (1.f + expf (-v));
        else
            r = fminf (fmaxf (v * a + b, lo), hi);
        vc_st (y, ydt, i, r);
    }
}

extern "C" cudaError_t vc_unary (cudaStream_t st, int op, void *y, int ydt, const void *x, int xdt,
                                 int64_t n, float a, float b, float lo, float hi)
{
    if (n <= 0) return cudaSuccess;
    k_unary<<<vc_grid (n, 256), 256, 0, st>>> (op, y, ydt, x, xdt, n, a, b, lo, hi);
    return cudaGetLastError ();
}

static __global__ void k_binary (int op, void *y, int ydt, const void *a, int adt, const void *b,
                                 int bdt, int64_t n, int64_t nb, float alpha)
{
    GS_LOOP (i, n) {
        float va = vc_ld (a, adt, i), vb = vc_ld (b, bdt, nb == n ? i : i % nb);
        vc_st (y, ydt, i, op == VC_B_ADD ? va + alpha * vb : va * vb);
    }
}

extern "C" cudaError_t vc_binary (cudaStream_t st, int op, void *y, int ydt, const void *a, int adt,
                                  const void *b, int bdt, int64_t n, int64_t nb, float alpha)
{
    if (n <= 0 || nb <= 0) return cudaSuccess;
    k_binary<<<vc_grid (n, 256), 256, 0, st>>> (op, y, ydt, a, adt, b, bdt, n, nb, alpha);
    return cudaGetLastError ();
}

//  One thread per rotated pair. Tables are [L, D/2].
static __global__ void k_rope (void *y, int ydt, const void *x, int xdt, int64_t B, int64_t L,
                               int64_t H, int64_t D, const void *ct, const void *stb, int tdt,
                               int half)
{
    int64_t D2 = D / 2;
    GS_LOOP (i, B * L * H * D2) {
        int64_t p = i % D2, row = i / D2;      //  row = (b*L + l)*H + h
        int64_t l = (row / H) % L;
        int64_t base = row * D;
        int64_t i0 = half ? base + p : base + 2 * p;
        int64_t i1 = half ? base + p + D2 : base + 2 * p + 1;
        float c = vc_ld (ct, tdt, l * D2 + p), s = vc_ld (stb, tdt, l * D2 + p);
        float x0 = vc_ld (x, xdt, i0), x1 = vc_ld (x, xdt, i1);
        vc_st (y, ydt, i0, x0 * c - x1 * s);
        vc_st (y, ydt, i1, x0 * s + x1 * c);
    }
}

extern "C" cudaError_t vc_rope (cudaStream_t st, void *y, int ydt, const void *x, int xdt, int64_t B,
                                int64_t L, int64_t H, int64_t D, const void *cos_t,
                                const void *sin_t, int tdt, int half)
{
    int64_t n = B * L * H * (D / 2);
    if (n <= 0) return cudaSuccess;
    k_rope<<<vc_grid (n, 256), 256, 0, st>>> (y, ydt, x, xdt, B, L, H, D, cos_t, sin_t, tdt, half);
    return cudaGetLastError ();
}

typedef struct { int64_t yshape [6]; int64_t xstride [6]; int ndim; } vc_perm_t;

template <typename T>
static __global__ void k_permute (T *y, const T *x, vc_perm_t p, int64_t n)
{
    GS_LOOP (i, n) {
        int64_t rem = i, off = 0;
        for (int d = p.ndim - 1; d >= 0; d--) {
            int64_t c = rem % p.yshape [d];
            rem /= p.yshape [d];
            off += c * p.xstride [d];
        }
        y [i] = x [off];
    }
}

extern "C" cudaError_t vc_permute (cudaStream_t st, void *y, const void *x, int esize, int ndim,
                                   const int64_t *xshape, const int *perm)
{
    if (ndim < 1 || ndim > 6) return cudaErrorInvalidValue;
    vc_perm_t p;
    int64_t xs [6], n = 1;
    xs [ndim - 1] = 1;
    for (int d = ndim - 2; d >= 0; d--)
        xs [d] = xs [d + 1] * xshape [d + 1];
    p.ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        p.yshape [d] = xshape [perm [d]];
        p.xstride [d] = xs [perm [d]];
        n *= p.yshape [d];
    }
    if (n <= 0) return cudaSuccess;
    unsigned g = vc_grid (n, 256);
    switch (esize) {
        case 1: k_permute<uint8_t><<<g, 256, 0, st>>> ((uint8_t *) y, (const uint8_t *) x, p, n); break;
        case 2: k_permute<uint16_t><<<g, 256, 0, st>>> ((uint16_t *) y, (const uint16_t *) x, p, n); break;
        case 4: k_permute<uint32_t><<<g, 256, 0, st>>> ((uint32_t *) y, (const uint32_t *) x, p, n); break;
        case 8: k_permute<uint64_t><<<g, 256, 0, st>>> ((uint64_t *) y, (const uint64_t *) x, p, n); break;
        default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError ();
}

template <typename T>
static __global__ void k_upsample2x (T *y, const T *x, int64_t planes, int64_t H, int64_t W)
{
    int64_t W2 = 2 * W, H2 = 2 * H;
    GS_LOOP (i, planes * H2 * W2) {
        int64_t ox = i % W2, oy = (i / W2) % H2, pl = i / (W2 * H2);
        y [i] = x [(pl * H + oy / 2) * W + ox / 2];
    }
}

extern "C" cudaError_t vc_upsample2x (cudaStream_t st, void *y, const void *x, int esize,
                                      int64_t planes, int64_t H, int64_t W)
{
    int64_t n = planes * H * W * 4;
    if (n <= 0) return cudaSuccess;
    unsigned g = vc_grid (n, 256);
    switch (esize) {
        case 2: k_upsample2x<uint16_t><<<g, 256, 0, st>>> ((uint16_t *) y, (const uint16_t *) x, planes, H, W); break;
        case 4: k_upsample2x<uint32_t><<<g, 256, 0, st>>> ((uint32_t *) y, (const uint32_t *) x, planes, H, W); break;
        case 1: k_upsample2x<uint8_t><<<g, 256, 0, st>>> ((uint8_t *) y, (const uint8_t *) x, planes, H, W); break;
        case 8: k_upsample2x<uint64_t><<<g, 256, 0, st>>> ((uint64_t *) y, (const uint64_t *) x, planes, H, W); break;
        default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError ();
}

typedef struct {
    int Cin, T, H, W, kt, kh, kw, s_t, s_h, s_w, p_t, p_h, p_w, To, Ho, Wo;
} vc_conv_t;

//  col[kk][j] for kk over Cin*kt*kh*kw and j over the chunk; consecutive threads take
//  consecutive output positions so the writes are coalesced.
static __global__ void k_im2col (void *col, int cdt, const void *x, int xdt, vc_conv_t c,
                                 int64_t p0, int64_t pc)
{
    int64_t K = (int64_t) c.Cin * c.kt * c.kh * c.kw;
    GS_LOOP (i, K * pc) {
        int64_t kk = i / pc, j = i % pc, p = p0 + j;
        int ow = (int) (p % c.Wo), oh = (int) ((p / c.Wo) % c.Ho), ot = (int) (p / ((int64_t) c.Wo * c.Ho));
        int kx = (int) (kk % c.kw), ky = (int) ((kk / c.kw) % c.kh);
        int kz = (int) ((kk / ((int64_t) c.kw * c.kh)) % c.kt), ci = (int) (kk / ((int64_t) c.kw * c.kh * c.kt));
        int it = ot * c.s_t - c.p_t + kz, ih = oh * c.s_h - c.p_h + ky, iw = ow * c.s_w - c.p_w + kx;
        float v = 0.f;
        if (it >= 0 && it < c.T && ih >= 0 && ih < c.H && iw >= 0 && iw < c.W)
            v = vc_ld (x, xdt, (((int64_t) ci * c.T + it) * c.H + ih) * c.W + iw);
        vc_st (col, cdt, i, v);
    }
}

extern "C" cudaError_t vc_im2col (cudaStream_t st, void *col, int cdt, const void *x, int xdt,
                                  int Cin, int T, int H, int W, int kt, int kh, int kw, int s_t,
                                  int s_h, int s_w, int p_t, int p_h, int p_w, int To, int Ho,
                                  int Wo, int64_t p0, int64_t pc)
{
    vc_conv_t c = { Cin, T, H, W, kt, kh, kw, s_t, s_h, s_w, p_t, p_h, p_w, To, Ho, Wo };
    int64_t n = (int64_t) Cin * kt * kh * kw * pc;
    if (n <= 0) return cudaSuccess;
    k_im2col<<<vc_grid (n, 256), 256, 0, st>>> (col, cdt, x, xdt, c, p0, pc);
    return cudaGetLastError ();
}

//  Direct convolution, one thread per output: the reference for the im2col + GEMM path.
static __global__ void k_conv_naive (void *y, int ydt, const void *x, int xdt, const void *w,
                                     int wdt, const void *bias, int bdt, int N, int Cout,
                                     vc_conv_t c)
{
    int64_t P = (int64_t) c.To * c.Ho * c.Wo;
    GS_LOOP (i, (int64_t) N * Cout * P) {
        int64_t p = i % P, co = (i / P) % Cout, n = i / (P * Cout);
        int ow = (int) (p % c.Wo), oh = (int) ((p / c.Wo) % c.Ho), ot = (int) (p / ((int64_t) c.Wo * c.Ho));
        float acc = vc_ldo (bias, bdt, co, 0.f);
        for (int ci = 0; ci < c.Cin; ci++)
            for (int kz = 0; kz < c.kt; kz++) {
                int it = ot * c.s_t - c.p_t + kz;
                if (it < 0 || it >= c.T) continue;
                for (int ky = 0; ky < c.kh; ky++) {
                    int ih = oh * c.s_h - c.p_h + ky;
                    if (ih < 0 || ih >= c.H) continue;
                    for (int kx = 0; kx < c.kw; kx++) {
                        int iw = ow * c.s_w - c.p_w + kx;
                        if (iw < 0 || iw >= c.W) continue;
                        float xv = vc_ld (x, xdt, ((((int64_t) n * c.Cin + ci) * c.T + it) * c.H + ih) * c.W + iw);
                        float wv = vc_ld (w, wdt, (((co * c.Cin + ci) * c.kt + kz) * c.kh + ky) * c.kw + kx);
                        acc += xv * wv;
                    }
                }
            }
        vc_st (y, ydt, i, acc);
    }
}

extern "C" cudaError_t vc_conv_naive (cudaStream_t st, void *y, int ydt, const void *x, int xdt,
                                      const void *w, int wdt, const void *bias, int bdt, int N,
                                      int Cin, int T, int H, int W, int Cout, int kt, int kh,
                                      int kw, int s_t, int s_h, int s_w, int p_t, int p_h,
                                      int p_w, int To, int Ho, int Wo)
{
    vc_conv_t c = { Cin, T, H, W, kt, kh, kw, s_t, s_h, s_w, p_t, p_h, p_w, To, Ho, Wo };
    int64_t n = (int64_t) N * Cout * To * Ho * Wo;
    if (n <= 0) return cudaSuccess;
    k_conv_naive<<<vc_grid (n, 128), 128, 0, st>>> (y, ydt, x, xdt, w, wdt, bias, bdt, N, Cout, c);
    return cudaGetLastError ();
}

static __global__ void k_add_channel_bias (void *y, int ydt, const void *bias, int bdt, int64_t N,
                                           int64_t C, int64_t P)
{
    GS_LOOP (i, N * C * P) {
        int64_t c = (i / P) % C;
        vc_st (y, ydt, i, vc_ld (y, ydt, i) + vc_ld (bias, bdt, c));
    }
}

extern "C" cudaError_t vc_add_channel_bias (cudaStream_t st, void *y, int ydt, const void *bias,
                                            int bdt, int64_t N, int64_t C, int64_t P)
{
    if (N * C * P <= 0 || !bias) return cudaSuccess;
    k_add_channel_bias<<<vc_grid (N * C * P, 256), 256, 0, st>>> (y, ydt, bias, bdt, N, C, P);
    return cudaGetLastError ();
}

//  |x| max: per-block reduction, then one atomicMax on the float's bits (valid because the
//  values are >= 0, whose IEEE order matches the integer order).
static __global__ void k_amax (const void *x, int xdt, int64_t n, float *amax)
{
    __shared__ float sh [32];
    float m = 0.f;
    GS_LOOP (i, n) {
        float v = fabsf (vc_ld (x, xdt, i));
        if (v == v) m = fmaxf (m, v);
    }
    vc_block_amax (m, sh, amax);
}

//  BF16 fast path: 8 elements per 16-byte load (the FP8 GEMM pays this pass on every call).
static __global__ void k_amax_bf16x8 (const uint4 *x, int64_t n8, float *amax)
{
    __shared__ float sh [32];
    float m = 0.f;
    GS_LOOP (i, n8) {
        uint4 v = x [i];
        const __nv_bfloat162 *h = (const __nv_bfloat162 *) &v;
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 f = __bfloat1622float2 (h [j]);
            m = fmaxf (m, fmaxf (fabsf (f.x), fabsf (f.y)));      //  fmaxf drops NaN
        }
    }
    vc_block_amax (m, sh, amax);
}

extern "C" cudaError_t vc_amax (cudaStream_t st, const void *x, int xdt, int64_t n, float *amax)
{
    cudaError_t e = cudaMemsetAsync (amax, 0, sizeof (float), st);
    if (e != cudaSuccess || n <= 0) return e;
    if (xdt == VDGX_DTYPE_BF16 && n % 8 == 0 && ((uintptr_t) x & 15) == 0) {
        unsigned g = vc_grid (n / 8, 256);
        if (g > 2048) g = 2048;
        k_amax_bf16x8<<<g, 256, 0, st>>> ((const uint4 *) x, n / 8, amax);
        return cudaGetLastError ();
    }
    unsigned g = vc_grid (n, 256);
    if (g > 1024) g = 1024;
    k_amax<<<g, 256, 0, st>>> (x, xdt, n, amax);
    return cudaGetLastError ();
}

static __global__ void k_quant_e4m3 (uint8_t *q, const void *x, int xdt, int64_t n,
                                     const float *amax, float *scale_out)
{
    float a = *amax;
    float s = a > 0.f ? a / 448.f : 1.f;
    float inv = 1.f / s;
    if (blockIdx.x == 0 && threadIdx.x == 0 && scale_out) *scale_out = s;
    GS_LOOP (i, n) q [i] = vc_f_e4m3 (vc_ld (x, xdt, i) * inv);
}

static __global__ void k_quant_e4m3_bf16x8 (uint2 *q, const uint4 *x, int64_t n8, const float *amax,
                                            float *scale_out)
{
    float a = *amax;
    float s = a > 0.f ? a / 448.f : 1.f;
    float inv = 1.f / s;
    if (blockIdx.x == 0 && threadIdx.x == 0 && scale_out) *scale_out = s;
    GS_LOOP (i, n8) {
        uint4 v = x [i];
        const __nv_bfloat162 *h = (const __nv_bfloat162 *) &v;
        uint32_t w [2] = { 0, 0 };
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 f = __bfloat1622float2 (h [j]);
            uint32_t b = (uint32_t) vc_f_e4m3 (f.x * inv) | ((uint32_t) vc_f_e4m3 (f.y * inv) << 8);
            w [j >> 1] |= b << (16 * (j & 1));
        }
        q [i] = make_uint2 (w [0], w [1]);
    }
}

extern "C" cudaError_t vc_quant_e4m3 (cudaStream_t st, uint8_t *q, const void *x, int xdt, int64_t n,
                                      const float *amax, float *scale_out)
{
    if (n <= 0) return cudaSuccess;
    if (xdt == VDGX_DTYPE_BF16 && n % 8 == 0 && (((uintptr_t) x | (uintptr_t) q) & 15) == 0) {
        k_quant_e4m3_bf16x8<<<vc_grid (n / 8, 256), 256, 0, st>>> ((uint2 *) q, (const uint4 *) x, n / 8,
                                                                   amax, scale_out);
        return cudaGetLastError ();
    }
    k_quant_e4m3<<<vc_grid (n, 256), 256, 0, st>>> (q, x, xdt, n, amax, scale_out);
    return cudaGetLastError ();
}

static __global__ void k_col_scale_bias (void *y, int ydt, int64_t M, int64_t N,
                                         const float *colscale, int64_t nscale, const void *bias,
                                         int bdt)
{
    GS_LOOP (i, M * N) {
        int64_t c = i % N;
        float v = vc_ld (y, ydt, i);
        if (colscale) v *= colscale [nscale == N ? c : 0];
        if (bias) v += vc_ld (bias, bdt, c);
        vc_st (y, ydt, i, v);
    }
}

extern "C" cudaError_t vc_col_scale_bias (cudaStream_t st, void *y, int ydt, int64_t M, int64_t N,
                                          const float *colscale, int64_t nscale, const void *bias,
                                          int bdt)
{
    if (M * N <= 0 || (!colscale && !bias)) return cudaSuccess;
    k_col_scale_bias<<<vc_grid (M * N, 256), 256, 0, st>>> (y, ydt, M, N, colscale, nscale, bias, bdt);
    return cudaGetLastError ();
}

//  Reference batched matmul: one thread per output, f32 accumulation.
static __global__ void k_matmul_naive (void *y, int ydt, const void *a, int adt, const void *bm,
                                       int bdt, int64_t B, int64_t M, int64_t N, int64_t K,
                                       int64_t a_bs, int64_t b_bs)
{
    GS_LOOP (i, B * M * N) {
        int64_t n = i % N, m = (i / N) % M, b = i / (M * N);
        const int64_t ao = b * a_bs + m * K, bo = b * b_bs + n;
        float acc = 0.f;
        for (int64_t k = 0; k < K; k++)
            acc += vc_ld (a, adt, ao + k) * vc_ld (bm, bdt, bo + k * N);
        vc_st (y, ydt, i, acc);
    }
}

extern "C" cudaError_t vc_matmul_naive (cudaStream_t st, void *y, int ydt, const void *a, int adt,
                                        const void *bm, int bdt, int64_t B, int64_t M, int64_t N,
                                        int64_t K, int64_t a_bs, int64_t b_bs)
{
    if (B * M * N <= 0) return cudaSuccess;
    k_matmul_naive<<<vc_grid (B * M * N, 128), 128, 0, st>>> (y, ydt, a, adt, bm, bdt, B, M, N, K,
                                                              a_bs, b_bs);
    return cudaGetLastError ();
}
