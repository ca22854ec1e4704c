//  vdgx_cuda_attn.cu - attention o = softmax(q.k^T * scale + bias + mask) . v over [B,L,H,D].
//
//  k_flash: FlashAttention-2 forward. A block owns 64 query rows of one (batch, head), each
//  of its 4 warps 16 rows; it streams K/V in blocks of 64 keys through shared memory and
//  keeps the running max / sum (f32, base 2) and the output accumulator in registers, so no
//  Lq x Lk matrix exists. Q.K^T and P.V use mma.sync.m16n8k16 bf16 (fragment layouts as in
//  vdgx_cuda_wgemm.cu); the S accumulator of two neighbouring n8 tiles is exactly the A
//  fragment of the P.V product, so P never leaves registers.
//  k_attn_naive: one warp per (b, query, head), any D <= 512 and any float dtype; the
//  reference for k_flash and the path for F32.
//  Both: grouped KV heads (query head h reads kv head h / (H/Hkv)), a batch stride for K/V
//  (KV-cache views), the mask kinds of vdgx_attn_kind_t (a k_flash block visits only the key
//  tiles its rows can see), and o = 0 for a row that sees no key.
#include "vdgx_cuda_dev.cuh"
#include "vdgx_backend.h"

//  Keys query row i sees under m: [lo, hi) clipped to [0, Lk) (the key_mask thins it further).
__device__ __forceinline__ void va_range (const vc_attn_mask_t &m, int64_t i, int64_t Lk,
                                          int64_t *lo, int64_t *hi)
{
    int64_t p = i + m.q_offset, a = 0, z = Lk;
    if (m.kind == VDGX_ATTN_CAUSAL)
        z = p + 1;
    else if (m.kind == VDGX_ATTN_SLIDING) {
        a = p - m.window + 1;
        z = p + 1;
    }
    else if (m.kind == VDGX_ATTN_BLOCK_CAUSAL) {
        int64_t pb = p >= 0 ? p / m.block : -((-p + m.block - 1) / m.block);
        z = (pb + 1) * m.block;
    }
    z = z > Lk ? Lk : z;
    a = a < 0 ? 0 : a;
    *lo = a;
    *hi = z < a ? a : z;
}

#define FA_BQ 64
#define FA_BK 64
#define LOG2E 1.4426950408889634f

__device__ __forceinline__ void fa_mma (float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile (
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c [0]), "+f"(c [1]), "+f"(c [2]), "+f"(c [3])
        : "r"(a [0]), "r"(a [1]), "r"(a [2]), "r"(a [3]), "r"(b0), "r"(b1));
#endif
}

__device__ __forceinline__ uint32_t fa_pack (float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn (lo, hi);
    return *(uint32_t *) &v;
}

//  Four 8x8 b16 matrices from shared memory, transposed (ldmatrix .trans): lane l gives the
//  address of row l%8 of matrix l/8 and receives, of matrix i, the elements [2(l%4)][l/4]
//  and [2(l%4)+1][l/4] - exactly an mma B fragment register when rows are k.
__device__ __forceinline__ void fa_ldsm_x4_t (uint32_t *r, const void *smem_row)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t a = (uint32_t) __cvta_generic_to_shared (smem_row);
    asm volatile ("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                  : "=r"(r [0]), "=r"(r [1]), "=r"(r [2]), "=r"(r [3]) : "r"(a));
#endif
}

//  16-byte global -> shared copy that bypasses registers; src_bytes 0 writes zeros.
__device__ __forceinline__ void fa_cp16 (void *smem, const void *gmem, int src_bytes)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t a = (uint32_t) __cvta_generic_to_shared (smem);
    asm volatile ("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(a), "l"(gmem), "r"(src_bytes));
#endif
}
__device__ __forceinline__ void fa_cp_commit ()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile ("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void fa_cp_wait ()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile ("cp.async.wait_group %0;\n" :: "n"(N));
#endif
}

//  Shared memory of one k_flash block: (PIPE ? 2 : 1) buffers of K then V tiles.
static constexpr size_t fa_smem_bytes (int D, bool pipe)
{
    return (size_t) (pipe ? 2 : 1) * 2 * FA_BK * (D + 8) * sizeof (uint16_t);
}

//  The same without .trans: lane l receives, of matrix i, the elements [l/4][2(l%4)] and
//  [l/4][2(l%4)+1] - an mma B fragment register when rows are n and columns k.
__device__ __forceinline__ void fa_ldsm_x4 (uint32_t *r, const void *smem_row)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t a = (uint32_t) __cvta_generic_to_shared (smem_row);
    asm volatile ("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                  : "=r"(r [0]), "=r"(r [1]), "=r"(r [2]), "=r"(r [3]) : "r"(a));
#endif
}

//  LDSM: K and V fragments through ldmatrix (V with .trans) (fewer shared loads) instead of pairs of 16-bit
//  loads. PIPE: K/V tiles double-buffered with cp.async, the next tile loading while this
//  one is computed. Every variant is kept and tested; "auto" uses the simplest one until
//  the others have passed on a GPU.
template <int D, bool LDSM, bool PIPE>
static __global__ void __launch_bounds__ (128)
k_flash (void *o, int odt, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
         const __nv_bfloat16 *v, int64_t Lq, int64_t Lk, int64_t H, int64_t Hkv, int64_t kvb,
         vc_attn_mask_t am, const uint8_t *mask, const float *bias, float scale)
{
    constexpr int LD = D + 8;            //  padded rows: conflict-free fragment reads
    typedef uint16_t row_t [LD];
    extern __shared__ __align__ (16) uint16_t fa_smem [];
    row_t *Ks = (row_t *) fa_smem, *Vs = Ks + FA_BK;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t q0 = (int64_t) blockIdx.x * FA_BQ + warp * 16;
    const int64_t rA = q0 + g, rB = q0 + g + 8;          //  this thread's two query rows
    const int64_t rowstride = H * D;                     //  elements between query tokens
    const int64_t kvrow = Hkv * D;                       //  elements between keys
    const int64_t hk = h / (H / Hkv);
    const __nv_bfloat16 *kb = k + b * kvb + hk * D, *vb = v + b * kvb + hk * D;
    //  The key tiles this block's rows can see: [jstart, jend).
    int64_t jlo, jhi, rlo = (int64_t) blockIdx.x * FA_BQ;
    int64_t rhi = rlo + FA_BQ - 1 < Lq - 1 ? rlo + FA_BQ - 1 : Lq - 1;
    {
        int64_t a, z;
        va_range (am, rlo, Lk, &jlo, &z);
        va_range (am, rhi, Lk, &a, &jhi);
        if (jhi < z) jhi = z;
    }
    const int64_t jstart = (jlo / FA_BK) * FA_BK, jend = jlo < jhi ? jhi : jstart;
    //  This thread's rows' own ranges (rows past Lq see nothing).
    int64_t loA, hiA, loB, hiB;
    va_range (am, rA, Lk, &loA, &hiA);
    va_range (am, rB, Lk, &loB, &hiB);
    if (rA >= Lq) hiA = loA;
    if (rB >= Lq) hiB = loB;

    //  Q fragments straight from global memory (read once per block).
    uint32_t qa [D / 16][4];
    {
        const uint32_t *qA = (const uint32_t *) (q + (b * Lq + rA) * rowstride + h * D);
        const uint32_t *qB = (const uint32_t *) (q + (b * Lq + rB) * rowstride + h * D);
        #pragma unroll
        for (int kd = 0; kd < D / 16; kd++) {
            int c0 = (kd * 16 + 2 * t4) / 2, c1 = (kd * 16 + 8 + 2 * t4) / 2;
            qa [kd][0] = rA < Lq ? qA [c0] : 0u;
            qa [kd][1] = rB < Lq ? qB [c0] : 0u;
            qa [kd][2] = rA < Lq ? qA [c1] : 0u;
            qa [kd][3] = rB < Lq ? qB [c1] : 0u;
        }
    }
    float oacc [D / 8][4];
    #pragma unroll
    for (int i = 0; i < D / 8; i++)
        #pragma unroll
        for (int r = 0; r < 4; r++) oacc [i][r] = 0.f;
    float mA = -INFINITY, mB = -INFINITY, lA = 0.f, lB = 0.f;
    const float sl2 = scale * LOG2E;

    constexpr int VPR = D / 8;          //  16-byte vectors per row
    if (PIPE && jstart < jend) {        //  prologue: the first tile into buffer 0
        for (int i = tid; i < FA_BK * VPR; i += 128) {
            int r = i / VPR, c = (i % VPR) * 8;
            bool in = jstart + r < Lk;
            int64_t off = in ? (jstart + r) * kvrow + c : 0;
            fa_cp16 (&Ks [r][c], kb + off, in ? 16 : 0);
            fa_cp16 (&Vs [r][c], vb + off, in ? 16 : 0);
        }
        fa_cp_commit ();
    }
    for (int64_t j0 = jstart; j0 < jend; j0 += FA_BK) {
        if (PIPE) {
            //  Prefetch the next tile into the other buffer, then wait for this one.
            int nb = (int) (((j0 - jstart) / FA_BK + 1) & 1);
            row_t *Kn = (row_t *) fa_smem + nb * 2 * FA_BK, *Vn = Kn + FA_BK;
            Ks = (row_t *) fa_smem + (1 - nb) * 2 * FA_BK;
            Vs = Ks + FA_BK;
            int64_t j1 = j0 + FA_BK;
            if (j1 < jend) {
                for (int i = tid; i < FA_BK * VPR; i += 128) {
                    int r = i / VPR, c = (i % VPR) * 8;
                    bool in = j1 + r < Lk;
                    int64_t off = in ? (j1 + r) * kvrow + c : 0;
                    fa_cp16 (&Kn [r][c], kb + off, in ? 16 : 0);
                    fa_cp16 (&Vn [r][c], vb + off, in ? 16 : 0);
                }
                fa_cp_commit ();
                fa_cp_wait<1> ();
            }
            else
                fa_cp_wait<0> ();
        }
        else {
            //  K/V tile: 16-byte vectors, zero rows past Lk.
            for (int i = tid; i < FA_BK * VPR; i += 128) {
                int r = i / VPR, c = (i % VPR) * 8;
                uint4 kv = make_uint4 (0, 0, 0, 0), vv = make_uint4 (0, 0, 0, 0);
                if (j0 + r < Lk) {
                    int64_t off = (j0 + r) * kvrow + c;
                    kv = *(const uint4 *) (kb + off);
                    vv = *(const uint4 *) (vb + off);
                }
                *(uint4 *) &Ks [r][c] = kv;
                *(uint4 *) &Vs [r][c] = vv;
            }
        }
        __syncthreads ();

        float s [FA_BK / 8][4];
        #pragma unroll
        for (int nt = 0; nt < FA_BK / 8; nt++) {
            s [nt][0] = s [nt][1] = s [nt][2] = s [nt][3] = 0.f;
            if (LDSM) {
                //  matrix i = (keys nt*8.., d kd*16 + 8i..): {b0,b1} of kd, then of kd+1
                const int mi = lane >> 3, rr = lane & 7;
                #pragma unroll
                for (int kd = 0; kd < D / 16; kd += 2) {
                    uint32_t r [4];
                    fa_ldsm_x4 (r, &Ks [nt * 8 + rr][kd * 16 + mi * 8]);
                    fa_mma (s [nt], qa [kd], r [0], r [1]);
                    fa_mma (s [nt], qa [kd + 1], r [2], r [3]);
                }
            }
            else {
                #pragma unroll
                for (int kd = 0; kd < D / 16; kd++) {
                    uint32_t b0 = *(const uint32_t *) &Ks [nt * 8 + g][kd * 16 + 2 * t4];
                    uint32_t b1 = *(const uint32_t *) &Ks [nt * 8 + g][kd * 16 + 8 + 2 * t4];
                    fa_mma (s [nt], qa [kd], b0, b1);
                }
            }
        }
        //  Logits in base 2 with bias and mask; -inf for masked or out-of-range keys.
        float mxA = -INFINITY, mxB = -INFINITY;
        #pragma unroll
        for (int nt = 0; nt < FA_BK / 8; nt++)
            #pragma unroll
            for (int r = 0; r < 4; r++) {
                int64_t key = j0 + nt * 8 + 2 * t4 + (r & 1);
                int64_t row = r < 2 ? rA : rB;
                float x = s [nt][r] * sl2;
                bool seen = r < 2 ? key >= loA && key < hiA : key >= loB && key < hiB;
                if (!seen || (mask && mask [b * Lk + key] == 0))
                    x = -INFINITY;
                else if (bias && row < Lq)
                    x += bias [(h * Lq + row) * Lk + key] * LOG2E;
                s [nt][r] = x;
                if (r < 2) mxA = fmaxf (mxA, x); else mxB = fmaxf (mxB, x);
            }
        mxA = fmaxf (mxA, __shfl_xor_sync (0xffffffffu, mxA, 1));
        mxA = fmaxf (mxA, __shfl_xor_sync (0xffffffffu, mxA, 2));
        mxB = fmaxf (mxB, __shfl_xor_sync (0xffffffffu, mxB, 1));
        mxB = fmaxf (mxB, __shfl_xor_sync (0xffffffffu, mxB, 2));
        float nA = fmaxf (mA, mxA), nB = fmaxf (mB, mxB);
        //  While every key so far is masked the max is -inf: use 0 so exp2 gives 0, not NaN.
        float uA = nA == -INFINITY ? 0.f : nA, uB = nB == -INFINITY ? 0.f : nB;
        float cA = exp2f (mA - uA), cB = exp2f (mB - uB);
        mA = nA; mB = nB;
        lA *= cA; lB *= cB;
        #pragma unroll
        for (int i = 0; i < D / 8; i++) {
            oacc [i][0] *= cA; oacc [i][1] *= cA;
            oacc [i][2] *= cB; oacc [i][3] *= cB;
        }
        #pragma unroll
        for (int nt = 0; nt < FA_BK / 8; nt++) {
            s [nt][0] = exp2f (s [nt][0] - uA); s [nt][1] = exp2f (s [nt][1] - uA);
            s [nt][2] = exp2f (s [nt][2] - uB); s [nt][3] = exp2f (s [nt][3] - uB);
            lA += s [nt][0] + s [nt][1];
            lB += s [nt][2] + s [nt][3];
        }
        //  O += P . V over 16-key chunks; V's B fragment pairs two keys of one column.
        #pragma unroll
        for (int kk = 0; kk < FA_BK / 16; kk++) {
            uint32_t pa [4];
            pa [0] = fa_pack (s [2 * kk][0], s [2 * kk][1]);
            pa [1] = fa_pack (s [2 * kk][2], s [2 * kk][3]);
            pa [2] = fa_pack (s [2 * kk + 1][0], s [2 * kk + 1][1]);
            pa [3] = fa_pack (s [2 * kk + 1][2], s [2 * kk + 1][3]);
            if (LDSM) {
                //  matrix i = (keys +8*(i&1), d +8*(i>>1)): regs {b0,b1} of tile dt, then dt+1
                const int mi = lane >> 3, rr = lane & 7;
                #pragma unroll
                for (int dt = 0; dt < D / 8; dt += 2) {
                    uint32_t r [4];
                    fa_ldsm_x4_t (r, &Vs [kk * 16 + (mi & 1) * 8 + rr][dt * 8 + (mi >> 1) * 8]);
                    fa_mma (oacc [dt], pa, r [0], r [1]);
                    fa_mma (oacc [dt + 1], pa, r [2], r [3]);
                }
            }
            else {
                int k0 = kk * 16 + 2 * t4;
                #pragma unroll
                for (int dt = 0; dt < D / 8; dt++) {
                    int c = dt * 8 + g;
                    uint32_t b0 = (uint32_t) Vs [k0][c] | ((uint32_t) Vs [k0 + 1][c] << 16);
                    uint32_t b1 = (uint32_t) Vs [k0 + 8][c] | ((uint32_t) Vs [k0 + 9][c] << 16);
                    fa_mma (oacc [dt], pa, b0, b1);
                }
            }
        }
        __syncthreads ();
    }
    lA += __shfl_xor_sync (0xffffffffu, lA, 1);
    lA += __shfl_xor_sync (0xffffffffu, lA, 2);
    lB += __shfl_xor_sync (0xffffffffu, lB, 1);
    lB += __shfl_xor_sync (0xffffffffu, lB, 2);
    //  A row that saw no key has l = 0 and an all-zero accumulator: its output is 0.
    float iA = lA > 0.f ? 1.f / lA : 0.f, iB = lB > 0.f ? 1.f / lB : 0.f;
    #pragma unroll
    for (int dt = 0; dt < D / 8; dt++) {
        int64_t d = dt * 8 + 2 * t4;
        if (rA < Lq) {
            int64_t off = (b * Lq + rA) * rowstride + h * D + d;
            vc_st (o, odt, off, oacc [dt][0] * iA);
            vc_st (o, odt, off + 1, oacc [dt][1] * iA);
        }
        if (rB < Lq) {
            int64_t off = (b * Lq + rB) * rowstride + h * D + d;
            vc_st (o, odt, off, oacc [dt][2] * iB);
            vc_st (o, odt, off + 1, oacc [dt][3] * iB);
        }
    }
}

template <int D, bool LDSM, bool PIPE>
static cudaError_t s_flash (dim3 grid, cudaStream_t st, void *o, int odt, const __nv_bfloat16 *q,
                            const __nv_bfloat16 *k, const __nv_bfloat16 *v, int64_t Lq, int64_t Lk,
                            int64_t H, int64_t Hkv, int64_t kvb, vc_attn_mask_t am,
                            const uint8_t *mask, const float *bias, float scale)
{
    constexpr size_t smem = fa_smem_bytes (D, PIPE);
    //  Over 48 KiB of dynamic shared memory needs an opt-in per kernel.
    cudaError_t e = cudaFuncSetAttribute (k_flash<D, LDSM, PIPE>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          (int) smem);
    if (e != cudaSuccess)
        return e;
    k_flash<D, LDSM, PIPE><<<grid, 128, smem, st>>> (o, odt, q, k, v, Lq, Lk, H, Hkv, kvb, am, mask,
                                                       bias, scale);
    return cudaGetLastError ();
}

#define NA_MAXD 512
static __global__ void k_attn_naive (void *o, int odt, const void *q, const void *k, const void *v,
                                     int qdt, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                     int64_t Hkv, int64_t D, int64_t kvb, vc_attn_mask_t am,
                                     const uint8_t *mask, const float *bias, float scale)
{
    int lane = threadIdx.x & 31;
    int64_t warp = ((int64_t) blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int64_t nwarps = ((int64_t) gridDim.x * blockDim.x) >> 5;
    for (int64_t w = warp; w < B * Lq * H; w += nwarps) {
        int64_t h = w % H, qi = (w / H) % Lq, b = w / (H * Lq);
        int64_t qoff = ((b * Lq + qi) * H + h) * D;
        float qr [NA_MAXD / 32], acc [NA_MAXD / 32];
        #pragma unroll
        for (int i = 0; i < NA_MAXD / 32; i++) {
            int64_t d = lane + 32 * i;
            qr [i] = d < D ? vc_ld (q, qdt, qoff + d) : 0.f;
            acc [i] = 0.f;
        }
        float m = -INFINITY, l = 0.f;
        int64_t jlo, jhi, hk = h / (H / Hkv);
        va_range (am, qi, Lk, &jlo, &jhi);
        for (int64_t j = jlo; j < jhi; j++) {
            if (mask && mask [b * Lk + j] == 0) continue;
            int64_t koff = b * kvb + (j * Hkv + hk) * D;
            float dot = 0.f;
            #pragma unroll
            for (int i = 0; i < NA_MAXD / 32; i++) {
                int64_t d = lane + 32 * i;
                if (d < D) dot += qr [i] * vc_ld (k, qdt, koff + d);
            }
            dot = vc_warp_sum (dot) * scale;
            if (bias) dot += bias [(h * Lq + qi) * Lk + j];
            float nm = fmaxf (m, dot);
            float c = expf (m - nm), p = expf (dot - nm);
            l = l * c + p;
            #pragma unroll
            for (int i = 0; i < NA_MAXD / 32; i++) {
                int64_t d = lane + 32 * i;
                if (d < D) acc [i] = acc [i] * c + p * vc_ld (v, qdt, koff + d);
            }
            m = nm;
        }
        float il = l > 0.f ? 1.f / l : 0.f;      //  a row that saw no key: acc = 0, o = 0
        #pragma unroll
        for (int i = 0; i < NA_MAXD / 32; i++) {
            int64_t d = lane + 32 * i;
            if (d < D) vc_st (o, odt, qoff + d, acc [i] * il);
        }
    }
}

extern "C" cudaError_t vc_attention (cudaStream_t st, int flash, void *o, int odt, const void *q,
                                     const void *k, const void *v, int qdt, int64_t B, int64_t Lq,
                                     int64_t Lk, int64_t H, int64_t Hkv, int64_t D,
                                     int64_t kv_bstride, vc_attn_mask_t am, const uint8_t *mask,
                                     const float *bias, float scale)
{
    if (B * Lq * H <= 0 || D <= 0) return cudaSuccess;
    if (Hkv <= 0 || H % Hkv) return cudaErrorInvalidValue;
    if (flash) {
        bool aligned = (((uintptr_t) q | (uintptr_t) k | (uintptr_t) v) & 15) == 0 && kv_bstride % 8 == 0;
        if (qdt != VDGX_DTYPE_BF16 || (D != 64 && D != 128) || !aligned)
            return cudaErrorNotSupported;
        int64_t gx = (Lq + FA_BQ - 1) / FA_BQ;
        if (H > 65535 || B > 65535 || gx > 0x7fffffff) return cudaErrorNotSupported;
        dim3 grid ((unsigned) gx, (unsigned) H, (unsigned) B);
        const __nv_bfloat16 *qb = (const __nv_bfloat16 *) q, *kb = (const __nv_bfloat16 *) k,
                            *vb = (const __nv_bfloat16 *) v;
        if (D == 64) {
            if (flash == 3)
                return s_flash<64, true, true> (grid, st, o, odt, qb, kb, vb, Lq, Lk, H, Hkv, kv_bstride, am, mask, bias, scale);
            if (flash == 2)
                return s_flash<64, true, false> (grid, st, o, odt, qb, kb, vb, Lq, Lk, H, Hkv, kv_bstride, am, mask, bias, scale);
            return s_flash<64, false, false> (grid, st, o, odt, qb, kb, vb, Lq, Lk, H, Hkv, kv_bstride, am, mask, bias, scale);
        }
        if (flash == 3)
            return s_flash<128, true, true> (grid, st, o, odt, qb, kb, vb, Lq, Lk, H, Hkv, kv_bstride, am, mask, bias, scale);
        if (flash == 2)
            return s_flash<128, true, false> (grid, st, o, odt, qb, kb, vb, Lq, Lk, H, Hkv, kv_bstride, am, mask, bias, scale);
        return s_flash<128, false, false> (grid, st, o, odt, qb, kb, vb, Lq, Lk, H, Hkv, kv_bstride, am, mask, bias, scale);
    }
    if (D > NA_MAXD) return cudaErrorNotSupported;
    unsigned g = vc_grid (B * Lq * H * 32, 128);
    k_attn_naive<<<g, 128, 0, st>>> (o, odt, q, k, v, qdt, B, Lq, Lk, H, Hkv, D, kv_bstride, am, mask,
                                     bias, scale);
    return cudaGetLastError ();
}
