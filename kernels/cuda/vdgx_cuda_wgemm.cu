//  vdgx_cuda_wgemm.cu - weight-only GEMM for quantized weights (NVFP4, MXFP4, NF4, FP8 E4M3,
//  plus BF16/F32 as the fallback of cuBLASLt), weight dequantization and load-time
//  quantization.
//
//  y[M,N] = x[M,K] . W[N,K]^T + bias. The tensor-core kernel keeps W packed in global memory
//  and decodes it in registers on the way to shared memory (as BF16), then runs
//  mma.sync.m16n8k16 bf16 with f32 accumulation. Fragment layouts (PTX ISA, m16n8k16, .bf16):
//  with g = lane/4 and t = lane%4,
//    A (row-major 16x16): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//    B (16x8, "col"):     b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
//    C (16x8 f32):        c0,c1 = (g, 2t..2t+1), c2,c3 = (g+8, 2t..2t+1)
//  Shared tiles store A as [m][k] and W as [n][k], so every register is one aligned 32-bit
//  load of two consecutive k.
#include "vdgx_cuda_dev.cuh"

__constant__ float c_nf4 [16];

extern "C" cudaError_t vc_set_nf4_table (const float *table16, cudaStream_t st)
{
    return cudaMemcpyToSymbolAsync (c_nf4, table16, 16 * sizeof (float), 0,
                                    cudaMemcpyHostToDevice, st);
}

//  E2M1: sign(bit 3) exponent(bits 2..1) mantissa(bit 0); subnormal when exponent is 0.
__device__ __forceinline__ float vc_e2m1 (unsigned code)
{
    unsigned e = (code >> 1) & 3u, m = code & 1u;
    float v = e == 0 ? 0.5f * (float) m : (1.f + 0.5f * (float) m) * (float) (1u << (e - 1));
    return (code & 8u) ? -v : v;
}
__device__ __forceinline__ float vc_e8m0 (unsigned e)
{
    return e == 255u ? __int_as_float (0x7fc00000) : ldexpf (1.f, (int) e - 127);
}

//  Block-scale of element (n, k) (the element's own dequant factor, data aside).
__device__ __forceinline__ float vc_wscale (const vc_wdesc_t &w, int64_t n, int64_t k)
{
    switch (w.fmt) {
        case VDGX_WFMT_FP8_E4M3:
            return ((const float *) w.scales) [w.scale_count == 1 ? 0 : n];
        case VDGX_WFMT_NVFP4:
            return vc_e4m3_f (((const uint8_t *) w.scales) [n * (w.k / 16) + k / 16]) * w.gscale;
        case VDGX_WFMT_MXFP4:
            return vc_e8m0 (((const uint8_t *) w.scales) [n * (w.k / 32) + k / 32]);
        case VDGX_WFMT_NF4:
            return ((const float *) w.scales) [n * (w.k / 64) + k / 64];
        default:
            return 1.f;
    }
}

//  Code value (unscaled) of element (n, k).
__device__ __forceinline__ float vc_wcode (const vc_wdesc_t &w, int64_t n, int64_t k)
{
    switch (w.fmt) {
        case VDGX_WFMT_F32: return ((const float *) w.data) [n * w.k + k];
        case VDGX_WFMT_BF16: return __bfloat162float (((const __nv_bfloat16 *) w.data) [n * w.k + k]);
        case VDGX_WFMT_F16: return __half2float (((const __half *) w.data) [n * w.k + k]);
        case VDGX_WFMT_FP8_E4M3: return vc_e4m3_f (((const uint8_t *) w.data) [n * w.k + k]);
        default: {
            uint8_t b = ((const uint8_t *) w.data) [n * (w.k / 2) + k / 2];
            unsigned code = (k & 1) ? (b >> 4) : (b & 15u);
            return w.fmt == VDGX_WFMT_NF4 ? c_nf4 [code] : vc_e2m1 (code);
        }
    }
}

__device__ __forceinline__ float vc_wdeq (const vc_wdesc_t &w, int64_t n, int64_t k)
{
    return vc_wcode (w, n, k) * vc_wscale (w, n, k);
}

static __global__ void k_wdequant (__nv_bfloat16 *out, vc_wdesc_t w)
{
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < w.n * w.k;
         i += (int64_t) gridDim.x * blockDim.x)
        out [i] = __float2bfloat16_rn (vc_wdeq (w, i / w.k, i % w.k));
}

extern "C" cudaError_t vc_wdequant_bf16 (cudaStream_t st, uint16_t *out, const vc_wdesc_t *w)
{
    if (w->n * w->k <= 0) return cudaSuccess;
    k_wdequant<<<vc_grid (w->n * w->k, 256), 256, 0, st>>> ((__nv_bfloat16 *) out, *w);
    return cudaGetLastError ();
}

//  Reference: one warp per output, lanes stride over k (coalesced for x and W).
static __global__ void k_wgemm_naive (void *y, int ydt, const void *x, int xdt, int64_t M,
                                      vc_wdesc_t w, const void *bias, int bdt)
{
    int lane = threadIdx.x & 31;
    int64_t warp = ((int64_t) blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int64_t nwarps = ((int64_t) gridDim.x * blockDim.x) >> 5;
    for (int64_t o = warp; o < M * w.n; o += nwarps) {
        int64_t m = o / w.n, n = o % w.n;
        float acc = 0.f;
        for (int64_t k = lane; k < w.k; k += 32)
            acc += vc_ld (x, xdt, m * w.k + k) * vc_wdeq (w, n, k);
        acc = vc_warp_sum (acc);
        if (lane == 0)
            vc_st (y, ydt, o, acc + vc_ldo (bias, bdt, n, 0.f));
    }
}

#define WG_BM 64
#define WG_BN 64
#define WG_BK 32
#define WG_LD (WG_BK + 8)       //  padded row (80 bytes): conflict-free fragment loads

__device__ __forceinline__ uint32_t vc_pack_bf16 (float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn (lo, hi);     //  .x = lo (low half)
    return *(uint32_t *) &v;
}

__device__ __forceinline__ void vc_mma_bf16 (float *c, const uint32_t *a, const uint32_t *b)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile (
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c [0]), "+f"(c [1]), "+f"(c [2]), "+f"(c [3])
        : "r"(a [0]), "r"(a [1]), "r"(a [2]), "r"(a [3]), "r"(b [0]), "r"(b [1]));
#endif
}

//  Decodes 16 consecutive k of row n (k0 a multiple of 16, all inside [0, K)) into 8 packed
//  bf16 pairs. One scale covers them: the block sizes (16, 32, 64) are multiples of 16.
__device__ __forceinline__ void vc_wdecode16 (const vc_wdesc_t &w, int64_t n, int64_t k0,
                                              uint32_t *out, const float *nf4)
{
    float s = vc_wscale (w, n, k0);
    if (w.fmt == VDGX_WFMT_FP8_E4M3) {
        uint4 q = *(const uint4 *) ((const uint8_t *) w.data + n * w.k + k0);
        uint32_t wv [4] = { q.x, q.y, q.z, q.w };
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float f0 = vc_e4m3_f (wv [j] & 255u), f1 = vc_e4m3_f ((wv [j] >> 8) & 255u);
            float f2 = vc_e4m3_f ((wv [j] >> 16) & 255u), f3 = vc_e4m3_f (wv [j] >> 24);
            out [2 * j] = vc_pack_bf16 (f0 * s, f1 * s);
            out [2 * j + 1] = vc_pack_bf16 (f2 * s, f3 * s);
        }
        return;
    }
    uint2 q = *(const uint2 *) ((const uint8_t *) w.data + n * (w.k / 2) + k0 / 2);
    uint32_t wv [2] = { q.x, q.y };
    bool nf = w.fmt == VDGX_WFMT_NF4;
    #pragma unroll
    for (int j = 0; j < 8; j++) {
        uint32_t byte = (wv [j >> 2] >> (8 * (j & 3))) & 255u;    //  elements 2j, 2j+1
        float lo = nf ? nf4 [byte & 15u] : vc_e2m1 (byte & 15u);
        float hi = nf ? nf4 [byte >> 4] : vc_e2m1 (byte >> 4);
        out [j] = vc_pack_bf16 (lo * s, hi * s);
    }
}

//  64x64 output tile per block, 4 warps of 32x32, k step 32.
static __global__ void __launch_bounds__ (128)
k_wgemm_mma (void *y, int ydt, const __nv_bfloat16 *x, int64_t M, vc_wdesc_t w, const void *bias,
             int bdt)
{
    __shared__ __align__ (16) __nv_bfloat16 As [WG_BM][WG_LD];
    __shared__ __align__ (16) __nv_bfloat16 Ws [WG_BN][WG_LD];
    __shared__ float nf4 [16];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int wm = warp >> 1, wn = warp & 1;
    const int64_t m0 = (int64_t) blockIdx.y * WG_BM, n0 = (int64_t) blockIdx.x * WG_BN;
    const int64_t K = w.k, N = w.n;
    if (tid < 16) nf4 [tid] = c_nf4 [tid];
    //  The fast 4-bit/FP8 decode needs 16-aligned k and aligned rows (k % 16 == 0 always
    //  holds for the packed formats; FP8 rows need k % 16 == 0 for 16-byte loads).
    const bool wfast = (w.fmt == VDGX_WFMT_NVFP4 || w.fmt == VDGX_WFMT_MXFP4
                        || w.fmt == VDGX_WFMT_NF4 || w.fmt == VDGX_WFMT_FP8_E4M3) && K % 16 == 0;
    const bool xfast = K % 8 == 0 && ((uintptr_t) x & 15) == 0;
    __syncthreads ();

    float acc [2][4][4];
    #pragma unroll
    for (int i = 0; i < 2; i++)
        #pragma unroll
        for (int j = 0; j < 4; j++)
            #pragma unroll
            for (int r = 0; r < 4; r++) acc [i][j][r] = 0.f;

    //  Each thread fills 16 elements of each tile: row tid/2, k segment (tid%2)*16.
    const int lr = tid >> 1, lk = (tid & 1) * 16;
    for (int64_t k0 = 0; k0 < K; k0 += WG_BK) {
        {   //  activations
            int64_t m = m0 + lr, k = k0 + lk;
            uint4 *dst = (uint4 *) &As [lr][lk];
            if (xfast && m < M && k + 16 <= K) {
                const uint4 *src = (const uint4 *) (x + m * K + k);
                dst [0] = src [0];
                dst [1] = src [1];
            }
            else {
                for (int j = 0; j < 16; j++)
                    As [lr][lk + j] = (m < M && k + j < K) ? x [m * K + k + j] : __float2bfloat16_rn (0.f);
            }
        }
        {   //  weights, decoded in registers
            int64_t n = n0 + lr, k = k0 + lk;
            if (wfast && n < N && k + 16 <= K) {
                uint32_t d [8];
                vc_wdecode16 (w, n, k, d, nf4);
                uint4 *dst = (uint4 *) &Ws [lr][lk];
                dst [0] = make_uint4 (d [0], d [1], d [2], d [3]);
                dst [1] = make_uint4 (d [4], d [5], d [6], d [7]);
            }
            else {
                for (int j = 0; j < 16; j++)
                    Ws [lr][lk + j] = __float2bfloat16_rn ((n < N && k + j < K) ? vc_wdeq (w, n, k + j) : 0.f);
            }
        }
        __syncthreads ();
        #pragma unroll
        for (int kk = 0; kk < WG_BK; kk += 16) {
            uint32_t a [2][4], b [4][2];
            #pragma unroll
            for (int i = 0; i < 2; i++) {
                int r = wm * 32 + i * 16 + g;
                a [i][0] = *(const uint32_t *) &As [r][kk + 2 * t4];
                a [i][1] = *(const uint32_t *) &As [r + 8][kk + 2 * t4];
                a [i][2] = *(const uint32_t *) &As [r][kk + 8 + 2 * t4];
                a [i][3] = *(const uint32_t *) &As [r + 8][kk + 8 + 2 * t4];
            }
            #pragma unroll
            for (int j = 0; j < 4; j++) {
                int c = wn * 32 + j * 8 + g;
                b [j][0] = *(const uint32_t *) &Ws [c][kk + 2 * t4];
                b [j][1] = *(const uint32_t *) &Ws [c][kk + 8 + 2 * t4];
            }
            #pragma unroll
            for (int i = 0; i < 2; i++)
                #pragma unroll
                for (int j = 0; j < 4; j++)
                    vc_mma_bf16 (acc [i][j], a [i], b [j]);
        }
        __syncthreads ();
    }
    #pragma unroll
    for (int i = 0; i < 2; i++)
        #pragma unroll
        for (int j = 0; j < 4; j++)
            #pragma unroll
            for (int r = 0; r < 4; r++) {
                int64_t m = m0 + wm * 32 + i * 16 + g + (r >= 2 ? 8 : 0);
                int64_t n = n0 + wn * 32 + j * 8 + 2 * t4 + (r & 1);
                if (m < M && n < N)
                    vc_st (y, ydt, m * N + n, acc [i][j][r] + vc_ldo (bias, bdt, n, 0.f));
            }
}

extern "C" cudaError_t vc_wgemm (cudaStream_t st, int mma, void *y, int ydt, const void *x, int xdt,
                                 int64_t M, const vc_wdesc_t *w, const void *bias, int bdt)
{
    if (M <= 0 || w->n <= 0) return cudaSuccess;
    if (mma) {
        if (xdt != VDGX_DTYPE_BF16) return cudaErrorInvalidValue;
        int64_t gy = (M + WG_BM - 1) / WG_BM, gx = (w->n + WG_BN - 1) / WG_BN;
        if (gy > 65535) return cudaErrorInvalidConfiguration;   //  M > 4M rows: caller splits
        dim3 grid ((unsigned) gx, (unsigned) gy);
        k_wgemm_mma<<<grid, 128, 0, st>>> (y, ydt, (const __nv_bfloat16 *) x, M, *w, bias, bdt);
    }
    else {
        int64_t warps = M * w->n;
        unsigned g = vc_grid (warps * 32, 128);
        k_wgemm_naive<<<g, 128, 0, st>>> (y, ydt, x, xdt, M, *w, bias, bdt);
    }
    return cudaGetLastError ();
}

//  ---------------------------------------------------------------------------------------
//  Load-time quantization (same definitions as vdgx_quant.h).

//  RNE to the nearest E2M1 magnitude; ties go to the even mantissa (0.25->0, 0.75->1,
//  1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4); saturates at 6.
__device__ __forceinline__ unsigned vc_f_e2m1 (float f)
{
    float a = fabsf (f);
    unsigned c;
    if (!(a > 0.25f)) c = 0;
    else if (a < 0.75f) c = 1;
    else if (a <= 1.25f) c = 2;
    else if (a < 1.75f) c = 3;
    else if (a <= 2.5f) c = 4;
    else if (a < 3.5f) c = 5;
    else if (a <= 5.f) c = 6;
    else c = 7;
    return (f < 0.f && c) ? (c | 8u) : c;
}

__device__ __forceinline__ unsigned vc_f_nf4 (float v, const float *t)
{
    unsigned best = 0;
    float bd = fabsf (v - t [0]);
    for (unsigned i = 1; i < 16; i++) {
        float d = fabsf (v - t [i]);
        if (d < bd) { bd = d; best = i; }
    }
    return best;
}

//  One warp per block of B elements (B = 16, 32 or 64 along k) of a 4-bit format; lane j
//  handles elements 2j, 2j+1 (so B/2 lanes are active).
static __global__ void k_wquant4 (int fmt, uint8_t *data, void *scales, const void *src, int sdt,
                                  int64_t n, int64_t k, float gscale)
{
    const int B = fmt == VDGX_WFMT_NVFP4 ? 16 : fmt == VDGX_WFMT_MXFP4 ? 32 : 64;
    int lane = threadIdx.x & 31;
    int64_t nb = n * (k / B);
    int64_t warp = ((int64_t) blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int64_t nwarps = ((int64_t) gridDim.x * blockDim.x) >> 5;
    for (int64_t blk = warp; blk < nb; blk += nwarps) {
        int64_t e0 = blk * B + 2 * lane;          //  rows are contiguous: block index is linear
        bool on = 2 * lane < B;
        float v0 = on ? vc_ld (src, sdt, e0) : 0.f, v1 = on ? vc_ld (src, sdt, e0 + 1) : 0.f;
        float amax = vc_warp_max (fmaxf (fabsf (v0), fabsf (v1)));
        float s;
        if (fmt == VDGX_WFMT_NVFP4) {
            uint8_t sc = vc_f_e4m3 (gscale > 0.f ? amax / (6.f * gscale) : 0.f);
            s = vc_e4m3_f (sc) * gscale;
            if (lane == 0) ((uint8_t *) scales) [blk] = sc;
        }
        else if (fmt == VDGX_WFMT_MXFP4) {
            //  OCP MX: shared exponent floor(log2(amax)) - 2 (emax of E2M1), clamped to E8M0.
            int e = amax > 0.f ? (int) floorf (log2f (amax)) - 2 : -127;
            e = max (-127, min (127, e));
            s = ldexpf (1.f, e);
            if (lane == 0) ((uint8_t *) scales) [blk] = (uint8_t) (e + 127);
        }
        else {
            s = amax;
            if (lane == 0) ((float *) scales) [blk] = amax;
        }
        float inv = s > 0.f ? 1.f / s : 0.f;
        if (on) {
            unsigned c0, c1;
            if (fmt == VDGX_WFMT_NF4) {
                c0 = vc_f_nf4 (v0 * inv, c_nf4);
                c1 = vc_f_nf4 (v1 * inv, c_nf4);
            }
            else {
                c0 = vc_f_e2m1 (v0 * inv);
                c1 = vc_f_e2m1 (v1 * inv);
            }
            data [e0 / 2] = (uint8_t) (c0 | (c1 << 4));
        }
    }
}

//  FP8 per-channel: one block per row.
static __global__ void k_wquant_fp8_rows (uint8_t *data, float *scales, const void *src, int sdt,
                                          int64_t n, int64_t k)
{
    __shared__ float sh [32];
    for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
        float m = 0.f;
        for (int64_t c = threadIdx.x; c < k; c += blockDim.x)
            m = fmaxf (m, fabsf (vc_ld (src, sdt, r * k + c)));
        //  block max via the sum helper's layout
        m = vc_warp_max (m);
        int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
        if (lane == 0) sh [wid] = m;
        __syncthreads ();
        float amax = 0.f;
        for (int i = 0; i < (int) (blockDim.x >> 5); i++) amax = fmaxf (amax, sh [i]);
        __syncthreads ();
        float s = amax > 0.f ? amax / 448.f : 1.f;
        if (threadIdx.x == 0) scales [r] = s;
        for (int64_t c = threadIdx.x; c < k; c += blockDim.x)
            data [r * k + c] = vc_f_e4m3 (vc_ld (src, sdt, r * k + c) / s);
    }
}

extern "C" cudaError_t vc_wquant (cudaStream_t st, int fmt, void *data, void *scales,
                                  const void *src, int sdt, int64_t n, int64_t k, int per_channel,
                                  float *scratch, float *gscale_host)
{
    cudaError_t e;
    if (n * k <= 0) return cudaSuccess;
    if (fmt == VDGX_WFMT_FP8_E4M3) {
        if (per_channel) {
            unsigned g = n > 65535 * 4 ? 65535 * 4 : (unsigned) n;
            k_wquant_fp8_rows<<<g, 256, 0, st>>> ((uint8_t *) data, (float *) scales, src, sdt, n, k);
            return cudaGetLastError ();
        }
        if ((e = vc_amax (st, src, sdt, n * k, scratch)) != cudaSuccess) return e;
        return vc_quant_e4m3 (st, (uint8_t *) data, src, sdt, n * k, scratch, (float *) scales);
    }
    float gs = 1.f;
    if (fmt == VDGX_WFMT_NVFP4) {
        float amax = 0.f;
        if ((e = vc_amax (st, src, sdt, n * k, scratch)) != cudaSuccess) return e;
        if ((e = cudaMemcpyAsync (&amax, scratch, sizeof (float), cudaMemcpyDeviceToHost, st)) != cudaSuccess)
            return e;
        if ((e = cudaStreamSynchronize (st)) != cudaSuccess) return e;
        gs = amax > 0.f ? amax / (448.f * 6.f) : 1.f;
    }
    if (gscale_host) *gscale_host = gs;
    int B = fmt == VDGX_WFMT_NVFP4 ? 16 : fmt == VDGX_WFMT_MXFP4 ? 32 : 64;
    int64_t nb = n * (k / B);
    k_wquant4<<<vc_grid (nb * 32, 256), 256, 0, st>>> (fmt, (uint8_t *) data, scales, src, sdt, n, k, gs);
    return cudaGetLastError ();
}

//  ---------------------------------------------------------------------------------------
//  NVFP4 through cuBLASLt (block-scaled, Blackwell): scale tensors in the 128x4 tiled layout
//  cuBLASLt expects for CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3. For a [rows, cols] scale
//  matrix (cols = k/16), tiles of 128 rows x 4 columns (512 bytes) follow each other row-tile
//  major; inside a tile, row r and column c sit at (r % 32) * 16 + ((r % 128) / 32) * 4 + c % 4.

__device__ __forceinline__ int64_t vc_swz (int64_t r, int64_t c, int64_t ncolblk)
{
    return ((r / 128) * ncolblk + c / 4) * 512 + (r % 32) * 16 + ((r % 128) / 32) * 4 + (c % 4);
}

static __global__ void k_swizzle_scales (uint8_t *dst, const uint8_t *src, int64_t rows, int64_t cols)
{
    int64_t ncb = (cols + 3) / 4;
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < rows * cols;
         i += (int64_t) gridDim.x * blockDim.x)
        dst [vc_swz (i / cols, i % cols, ncb)] = src [i];
}

extern "C" size_t vc_swizzled_bytes (int64_t rows, int64_t cols)
{
    return (size_t) (((rows + 127) / 128) * 128) * (size_t) (((cols + 3) / 4) * 4);
}

extern "C" cudaError_t vc_swizzle_scales (cudaStream_t st, uint8_t *dst, const uint8_t *src, int64_t rows,
                                          int64_t cols)
{
    cudaError_t e = cudaMemsetAsync (dst, 0, vc_swizzled_bytes (rows, cols), st);   //  padding = 0
    if (e != cudaSuccess || rows * cols <= 0) return e;
    k_swizzle_scales<<<vc_grid (rows * cols, 256), 256, 0, st>>> (dst, src, rows, cols);
    return cudaGetLastError ();
}

//  Activations to NVFP4: one thread per 16-element block of a row. The tensor scale
//  gs = amax / (448 * 6) comes from *amax on the device; alpha_out = w_gscale * gs, the
//  product of the two tensor scales, is cuBLASLt's alpha (device pointer mode).
static __global__ void k_quant_act_nvfp4 (uint8_t *xq, uint8_t *sc, const void *x, int xdt, int64_t M,
                                          int64_t K, const float *amax, float w_gscale, float *alpha_out)
{
    float a = *amax;
    float gs = a > 0.f ? a / (448.f * 6.f) : 1.f;
    if (blockIdx.x == 0 && threadIdx.x == 0) *alpha_out = w_gscale * gs;
    int64_t nbk = K / 16, ncb = (nbk + 3) / 4;
    for (int64_t i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < M * nbk;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t m = i / nbk, bk = i % nbk;
        float v [16], bmax = 0.f;
        #pragma unroll
        for (int j = 0; j < 16; j++) {
            v [j] = vc_ld (x, xdt, m * K + bk * 16 + j);
            bmax = fmaxf (bmax, fabsf (v [j]));
        }
        uint8_t s8 = vc_f_e4m3 (bmax / (6.f * gs));
        float s = vc_e4m3_f (s8) * gs, inv = s > 0.f ? 1.f / s : 0.f;
        uint32_t w [2] = { 0, 0 };
        #pragma unroll
        for (int j = 0; j < 16; j++)
            w [j >> 3] |= vc_f_e2m1 (v [j] * inv) << (4 * (j & 7));
        *(uint2 *) (xq + m * (K / 2) + bk * 8) = make_uint2 (w [0], w [1]);
        sc [vc_swz (m, bk, ncb)] = s8;
    }
}

extern "C" cudaError_t vc_quant_act_nvfp4 (cudaStream_t st, uint8_t *xq, uint8_t *sc, const void *x, int xdt,
                                           int64_t M, int64_t K, const float *amax, float w_gscale,
                                           float *alpha_out)
{
    cudaError_t e = cudaMemsetAsync (sc, 0, vc_swizzled_bytes (M, K / 16), st);
    if (e != cudaSuccess || M * K <= 0) return e;
    k_quant_act_nvfp4<<<vc_grid (M * (K / 16), 256), 256, 0, st>>> (xq, sc, x, xdt, M, K, amax, w_gscale, alpha_out);
    return cudaGetLastError ();
}
