/*  vdgx_cpu_qgemm.c - linear layers that compute on quantized weights (no f32 copy of W).

    y[M,N] = x[M,K] . W[N,K]^T (+ bias) for a weight in any vdgx_quant.h format other than
    F32, blocked like a BLAS: per block of k, each pool task decodes a panel of NC weight rows
    (output columns) straight from their packed codes into a small buffer in L2 and runs its
    register tile over every strip of MR rows of x (read in place, or packed once per block
    for the bf16 path), so a decoded weight is reused by all rows of x and W is never written
    out whole. Every scale that is constant along k (FP8 per tensor or per channel, NVFP4's
    tensor scale) is applied to the output columns instead of the panel. Three paths, the
    highest this CPU has (cpuid at run time) first:
    - avx512bf16: the codes decoded to bf16 (vectorised per format: e4m3 via f16 bits, e2m1 /
      nf4 nibbles through a 16-entry vpermps table), 256 k x 256 n panels, a 12 x 32 tile on
      the BF16 dot instruction (vdpbf16ps, 32 multiply-adds each). BF16, FP8, NVFP4 and MXFP4
      weights are exact in bf16; F16 and NF4 (table value x f32 absmax) are not. By default x
      is rounded to bf16 once per K block (relative error about 2^-9 per product, as a GPU
      computing in bf16, and below the rounding the weight format itself brings: 2^-9 for
      BF16, 2^-4 for FP8), and F16 / NF4 are rounded too. With VDGX_CPU_BF16_ACT=0 x is split
      into two bf16 parts, hi = bf16(x) and lo = bf16(x - hi), both multiplied (x = hi + lo
      within 2^-16, so the product matches the f32 one to about 1e-5, at about the f32 sgemm
      rate: twice the dot instructions), and F16 / NF4 (and any odd K) take the avx512 path.
      Why x in bf16 by default: a quantized weight is chosen to save memory and time; with
      the split this path only matched the f32 sgemm (0.93-0.98x of it on the 2-core dev
      machine, 2026-12-06); rounded, every format runs faster than f32.
    - avx512 (AVX-512F): the codes decoded to f32 (AVX2 + F16C decoders, exact: the panel
      holds the dequantized values), 512 k x 256 n panels, a 12 x 32 FMA tile of zmm.
    - avx2 (AVX2 + FMA; F16C comes with every such CPU): the same decoders, 512 k x 128 n
      panels (256 KB), a 6 x 16 FMA tile of ymm.
    The f32 paths accumulate what sgemm on the dequantized weight would (f32 FMAs on the same
    f32 values; FP8 / NVFP4 tensor and channel scales applied once per output): x is never
    rounded there. Each of their tasks runs every K block of its panel, fetching the next
    block's codes, the next strip's x rows and each tile's y lines ahead (without that the
    decode stalled on memory and lost the f32 rate).
    VDGX_CPU_ISA=generic|avx2|avx512|avx512bf16 caps the level (to run the lower paths on a
    bigger CPU); VDGX_CPU_EXACT=1 turns every path off. Without AVX2 (or capped to generic)
    vdgx_cpu_qlinear returns 1 and the caller takes the portable route (f32 panels of
    dequantized rows, sgemm), which is also the oracle of vdgx_cpu_test's linear test.
    No int8 / VNNI path: x rounded to int8 costs about 2^-8 relative per product, outside
    the 2^-14 bound of the f32 paths (see the selftest), and fp8 codes are not int8.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10)
#define Q_X86 1
#include <immintrin.h>
#endif

#define Q_KC 256            //  k per block of the bf16 path and the skinny one (a multiple of 64:
                            //  no format's block straddles two)
#ifndef Q_KCF
#define Q_KCF 512           //  k per block of the f32 paths (fewer passes over y)
#endif
#define Q_MR 12             //  bf16 path: rows of x per register tile
#define Q_NR 32             //  bf16 path: weight rows (output columns) per register tile: two zmm
#define Q_NC 256            //  bf16 path: output columns per panel (a multiple of Q_NR)
#define Q5_MR 12            //  avx512 f32 path: 12 x 32 tile (24 zmm accumulators)
#define Q5_NR 32
#define Q5_NC 256
#define Q2_MR 6             //  avx2 f32 path: 6 x 16 tile (12 ymm accumulators)
#define Q2_NR 16
#ifndef Q2_NC
#define Q2_NC 128
#endif

bool vdgx_qgemm_disable = false;
int vdgx_qgemm_round_x = -1;
int vdgx_qgemm_isa = -1;

static const char *q_isa_names [] = { "generic", "avx2", "avx512", "avx512bf16" };

const char *
vdgx_cpu_isa_name (vdgx_cpu_isa_t isa)
{
    return (int) isa >= 0 && (int) isa <= (int) VDGX_CPU_ISA_AVX512BF16? q_isa_names [isa]: "?";
}

//  What this CPU has, capped by VDGX_CPU_ISA (read once; an unknown name is reported on
//  stderr and ignored).
vdgx_cpu_isa_t
vdgx_cpu_isa (void)
{
    static int level = -1;
    if (level >= 0)
        return (vdgx_cpu_isa_t) level;
    int hw = VDGX_CPU_ISA_GENERIC;
#ifdef Q_X86
    __builtin_cpu_init ();
    if (__builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma")) {
        hw = VDGX_CPU_ISA_AVX2;
        if (__builtin_cpu_supports ("avx512f")) {
            hw = VDGX_CPU_ISA_AVX512;
            if (__builtin_cpu_supports ("avx512bw") && __builtin_cpu_supports ("avx512vl")
            &&  __builtin_cpu_supports ("avx512dq") && __builtin_cpu_supports ("avx512bf16"))
                hw = VDGX_CPU_ISA_AVX512BF16;
        }
    }
#endif
    const char *env = getenv ("VDGX_CPU_ISA");
    if (env && *env) {
        int cap = -1;
        for (int i = 0; i <= VDGX_CPU_ISA_AVX512BF16; i++)
            if (strcmp (env, q_isa_names [i]) == 0)
                cap = i;
        if (cap < 0)
            fprintf (stderr, "vdgx: VDGX_CPU_ISA=%s is not one of generic, avx2, avx512, avx512bf16: ignored\n", env);
        else if (cap < hw)
            hw = cap;
    }
    level = hw;
    return (vdgx_cpu_isa_t) level;
}

//  The level the quantized linears run at: the tests' override (never above the CPU's),
//  else vdgx_cpu_isa; generic when VDGX_CPU_EXACT is set or a test disabled the paths.
static vdgx_cpu_isa_t
q_level (void)
{
    static int exact = -1;
    if (exact < 0) {
        const char *env = getenv ("VDGX_CPU_EXACT");
        exact = env && *env && strcmp (env, "0");
    }
    if (exact || vdgx_qgemm_disable)
        return VDGX_CPU_ISA_GENERIC;
    vdgx_cpu_isa_t hw = vdgx_cpu_isa ();
    if (vdgx_qgemm_isa >= 0 && vdgx_qgemm_isa < (int) hw)
        return (vdgx_cpu_isa_t) vdgx_qgemm_isa;
    return hw;
}

bool
vdgx_qgemm_available (void)
{
    return q_level () >= VDGX_CPU_ISA_AVX2;
}

#ifdef Q_X86

typedef struct _q_path_t q_path_t;

typedef struct {
    const q_path_t *path;
    const vdgx_weight_t *w;
    const float *x;
    float *y;
    const float *bias;
    const float *colscale;      //  per output column (FP8 per channel) or NULL
    float scale;                //  constant factor (FP8 per tensor x NVFP4 global)
    int64_t M, N, K, k0, kc, mstrips, panels, mchunks;
    void *apack;                //  bf16 path: x of this K block as bf16 pairs [mstrips][kc/2][Q_MR]
    uint32_t *alo;              //  and the lo parts (NULL: x rounded)
} q_job_t;

//  A path: its tile geometry and the three pieces the shared driver (q_panel) calls.
struct _q_path_t {
    const char *name;
    int mr, nr, nc, kc;         //  tile rows, tile columns, columns per panel task, k per block
    int b_bytes;                //  bytes per (k, column) of a decoded panel
    void (*pack_a) (void *ctx, int64_t strip);      //  a pool task: x rows of one strip (NULL: the tile reads x)
    void (*pack_b) (const q_job_t *j, int64_t n0, int64_t nc, void *dst);
    void (*tile) (const q_job_t *j, int64_t ms, const void *pb, int64_t n0, int cols);
};

//  A finished register tile (acc: rows x cols of MR x nr, nr floats a row) into y: the first
//  K block stores, later ones add to the partial sums, and the last one applies the column
//  factors and the bias. Inlined into each path's tile, so compiled (and vectorised) for it.
static inline __attribute__ ((always_inline)) void
q_store (const q_job_t *j, const float *acc, int nr, int64_t m0, int64_t n0, int rows, int cols)
{
    bool first = j->k0 == 0, last = j->k0 + j->kc == j->K;
    const float *cs = j->colscale? j->colscale + n0: NULL, *bias = j->bias? j->bias + n0: NULL;
    float scale = j->scale;
    for (int r = 0; r < rows; r++) {
        float *restrict y = j->y + (m0 + r) * j->N + n0;
        const float *restrict a = acc + r * nr;
        if (!last && first && cols == nr)
            memcpy (y, a, sizeof (float) * (size_t) nr);       //  nr is constant here: inlined
        else if (!last && first)
            memcpy (y, a, sizeof (float) * (size_t) cols);
        else if (!last)
            for (int q = 0; q < cols; q++)
                y [q] += a [q];
        else
            for (int q = 0; q < cols; q++) {
                float v = (first? a [q]: a [q] + y [q]) * scale;
                y [q] = (cs? v * cs [q]: v) + (bias? bias [q]: 0.0f);
            }
    }
}

//  The y lines a tile will update, fetched while its k loop runs (a y row of a tile is one
//  or two cache lines, visited once per K block: without this each was a miss to memory).
static inline __attribute__ ((always_inline)) void
q_prefetch_y (const q_job_t *j, int64_t m0, int64_t n0, int rows, int nr)
{
    for (int r = 0; r < rows; r++) {
        const float *y = j->y + (m0 + r) * j->N + n0;
        __builtin_prefetch (y, 1);
        __builtin_prefetch (y + nr - 1, 1);
    }
}

//  Starts fetching the codes of weight row n, k [k0, k0 + kc) (the decode's loads were
//  misses to memory: a row's run per K block is only 0.25-1 KB, too short for the hardware
//  prefetchers).
static inline __attribute__ ((always_inline)) void
q_prefetch_row (const vdgx_weight_t *w, int64_t n, int64_t k0, int64_t kc)
{
    int64_t e = n * w->k + k0;
    int bits = w->fmt == VDGX_WFMT_BF16 || w->fmt == VDGX_WFMT_F16? 16: w->fmt == VDGX_WFMT_FP8_E4M3? 8: 4;
    const char *p = (const char *) w->data + e * bits / 8;
    for (int64_t b = 0; b < kc * bits / 8; b += 64)
        __builtin_prefetch (p + b);
    if (w->fmt == VDGX_WFMT_NVFP4 || w->fmt == VDGX_WFMT_MXFP4)     //  their block scales: 8-32 bytes
        __builtin_prefetch ((const uint8_t *) w->scales + e / (w->fmt == VDGX_WFMT_NVFP4? 16: 32));
    else if (w->fmt == VDGX_WFMT_NF4)
        __builtin_prefetch ((const float *) w->scales + e / 64);
}

//  ---------------------------------------------------------------------------------------
//  avx512bf16 path

#define Q_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,f16c,fma")))

//  x rows [12 s, 12 s + 12) x k [k0, k0 + kc) -> bf16 pairs, zero rows past M.
Q_TARGET static void
q_pack_a (void *ctx, int64_t s)
{
    const q_job_t *j = ctx;
    int64_t kp = j->kc / 2;
    uint32_t *dst = (uint32_t *) j->apack + s * kp * Q_MR, *dlo = j->alo? j->alo + s * kp * Q_MR: NULL;
    uint16_t row [Q_KC], rlo [Q_KC];
    for (int r = 0; r < Q_MR; r++) {
        int64_t m = s * Q_MR + r;
        if (m < j->M) {
            const float *x = j->x + m * j->K + j->k0;
            int64_t k = 0;
            for (; k + 16 <= j->kc; k += 16) {
                __m512 v = _mm512_loadu_ps (x + k);
                __m256bh h = _mm512_cvtneps_pbh (v);
                _mm256_storeu_si256 ((__m256i *) (row + k), (__m256i) h);
                __m512 hv = _mm512_castsi512_ps (_mm512_slli_epi32 (_mm512_cvtepu16_epi32 ((__m256i) h), 16));
                _mm256_storeu_si256 ((__m256i *) (rlo + k), (__m256i) _mm512_cvtneps_pbh (_mm512_sub_ps (v, hv)));
            }
            for (; k < j->kc; k++) {
                row [k] = vdgx_f32_to_bf16 (x [k]);
                rlo [k] = vdgx_f32_to_bf16 (x [k] - vdgx_bf16_to_f32 (row [k]));
            }
        }
        else {
            memset (row, 0, sizeof (row));
            memset (rlo, 0, sizeof (rlo));
        }
        const uint32_t *pairs = (const uint32_t *) row, *plo = (const uint32_t *) rlo;
        for (int64_t p = 0; p < kp; p++)
            dst [p * Q_MR + r] = pairs [p];
        if (dlo)
            for (int64_t p = 0; p < kp; p++)
                dlo [p * Q_MR + r] = plo [p];
    }
}

static inline __attribute__ ((always_inline)) Q_TARGET void
q_store16 (uint16_t *dst, __m512 v)
{
    _mm256_storeu_si256 ((__m256i *) dst, (__m256i) _mm512_cvtneps_pbh (v));
}

//  16 codes from 8 bytes (two per byte, low nibble first) -> 16 f32 from a 16-entry table.
static inline __attribute__ ((always_inline)) Q_TARGET __m512
q_nibbles (const uint8_t *p, __m512 table)
{
    __m128i b = _mm_loadl_epi64 ((const __m128i *) p);
    __m128i m = _mm_set1_epi8 (15);
    __m128i lo = _mm_and_si128 (b, m), hi = _mm_and_si128 (_mm_srli_epi16 (b, 4), m);
    __m512i idx = _mm512_cvtepu8_epi32 (_mm_unpacklo_epi8 (lo, hi));
    return _mm512_permutexvar_ps (idx, table);
}

//  Weight row n, k [k0, k0 + kc) -> bf16 (without the factors q_job_t applies per column).
Q_TARGET static void
q_decode_row (const vdgx_weight_t *w, int64_t n, int64_t k0, int64_t kc, uint16_t *dst)
{
    int64_t K = w->k;
    const uint8_t *q = w->data;
    switch (w->fmt) {
        case VDGX_WFMT_BF16:
            memcpy (dst, q + (n * K + k0) * 2, (size_t) kc * 2);
            break;
        case VDGX_WFMT_F16: {
            const uint16_t *src = (const uint16_t *) q + n * K + k0;
            int64_t k = 0;
            for (; k + 16 <= kc; k += 16)
                q_store16 (dst + k, _mm512_cvtph_ps (_mm256_loadu_si256 ((const __m256i *) (src + k))));
            for (; k < kc; k++)
                dst [k] = vdgx_f32_to_bf16 (vdgx_f16_to_f32 (src [k]));
            break;
        }
        case VDGX_WFMT_FP8_E4M3: {
            //  e4m3 s.eeee.mmm moved into f16's fields is the same value times 2^-8
            //  (bias 15 against 7), subnormals included; bf16 holds it exactly.
            const uint8_t *src = q + n * K + k0;
            const __m256i mag = _mm256_set1_epi16 (0x7f), sgn = _mm256_set1_epi16 (0x80);
            const __m512 two8 = _mm512_set1_ps (256.0f);
            int64_t k = 0;
            for (; k + 16 <= kc; k += 16) {
                __m256i b = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (src + k)));
                __m256i h = _mm256_or_si256 (_mm256_slli_epi16 (_mm256_and_si256 (b, mag), 7),
                                             _mm256_slli_epi16 (_mm256_and_si256 (b, sgn), 8));
                q_store16 (dst + k, _mm512_mul_ps (_mm512_cvtph_ps (h), two8));
            }
            const float *tab = vdgx_e4m3_table ();
            for (; k < kc; k++)
                dst [k] = vdgx_f32_to_bf16 (tab [src [k]]);
            break;
        }
        case VDGX_WFMT_NVFP4: {
            //  e2m1 x e4m3 has at most 5 significant bits: exact in bf16
            const __m512 tab = _mm512_loadu_ps (vdgx_e2m1_values);
            const uint8_t *sc = (const uint8_t *) w->scales + (n * K + k0) / 16;
            const uint8_t *p = q + (n * K + k0) / 2;
            const float *e4m3 = vdgx_e4m3_table ();
            for (int64_t b = 0; b < kc / 16; b++)
                q_store16 (dst + b * 16, _mm512_mul_ps (q_nibbles (p + b * 8, tab), _mm512_set1_ps (e4m3 [sc [b]])));
            break;
        }
        case VDGX_WFMT_MXFP4: {
            const __m512 tab = _mm512_loadu_ps (vdgx_e2m1_values);
            const uint8_t *sc = (const uint8_t *) w->scales + (n * K + k0) / 32;
            const uint8_t *p = q + (n * K + k0) / 2;
            for (int64_t b = 0; b < kc / 16; b += 2) {
                __m512 d = _mm512_set1_ps (vdgx_e8m0_to_f32 (sc [b / 2]));
                q_store16 (dst + b * 16, _mm512_mul_ps (q_nibbles (p + b * 8, tab), d));
                q_store16 (dst + b * 16 + 16, _mm512_mul_ps (q_nibbles (p + b * 8 + 8, tab), d));
            }
            break;
        }
        case VDGX_WFMT_NF4: {
            const __m512 tab = _mm512_loadu_ps (vdgx_nf4_values);
            const float *sc = (const float *) w->scales + (n * K + k0) / 64;
            const uint8_t *p = q + (n * K + k0) / 2;
            for (int64_t b = 0; b < kc / 16; b++)
                q_store16 (dst + b * 16, _mm512_mul_ps (q_nibbles (p + b * 8, tab), _mm512_set1_ps (sc [b / 4])));
            break;
        }
        default:
            memset (dst, 0, (size_t) kc * 2);
    }
}

//  12 x 32 tile over kp k pairs of bf16 (x's hi and lo parts when pl), then q_store.
static inline __attribute__ ((always_inline)) Q_TARGET void
q_micro (const q_job_t *j, int64_t kp, const uint32_t *pa, const uint32_t *pl, const uint32_t *pb,
         int64_t m0, int64_t n0, int rows, int cols)
{
    q_prefetch_y (j, m0, n0, rows, Q_NR);
    __m512 c [Q_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < Q_MR; r++)
        c [r][0] = c [r][1] = _mm512_setzero_ps ();
    for (int64_t p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh) _mm512_loadu_si512 (pb);
        __m512bh b1 = (__m512bh) _mm512_loadu_si512 (pb + 16);
#pragma GCC unroll 12
        for (int r = 0; r < Q_MR; r++) {
            __m512bh a = (__m512bh) _mm512_set1_epi32 ((int) pa [r]);
            c [r][0] = _mm512_dpbf16_ps (c [r][0], a, b0);
            c [r][1] = _mm512_dpbf16_ps (c [r][1], a, b1);
        }
        if (pl) {
#pragma GCC unroll 12
            for (int r = 0; r < Q_MR; r++) {
                __m512bh a = (__m512bh) _mm512_set1_epi32 ((int) pl [r]);
                c [r][0] = _mm512_dpbf16_ps (c [r][0], a, b0);
                c [r][1] = _mm512_dpbf16_ps (c [r][1], a, b1);
            }
            pl += Q_MR;
        }
        pa += Q_MR;
        pb += Q_NR;
    }
    float acc [Q_MR * Q_NR] __attribute__ ((aligned (64)));
#pragma GCC unroll 12
    for (int r = 0; r < Q_MR; r++) {
        _mm512_store_ps (acc + r * Q_NR, c [r][0]);
        _mm512_store_ps (acc + r * Q_NR + 16, c [r][1]);
    }
    q_store (j, acc, Q_NR, m0, n0, rows, cols);
}

Q_TARGET static void
q_tile_bf16 (const q_job_t *j, int64_t ms, const void *pb, int64_t n0, int cols)
{
    int64_t kp = j->kc / 2, m0 = ms * Q_MR;
    int rows = j->M - m0 < Q_MR? (int) (j->M - m0): Q_MR;
    const uint32_t *pa = (const uint32_t *) j->apack + ms * kp * Q_MR;
    if (j->alo)
        q_micro (j, kp, pa, j->alo + ms * kp * Q_MR, pb, m0, n0, rows, cols);
    else
        q_micro (j, kp, pa, NULL, pb, m0, n0, rows, cols);
}

//  Weight rows [n0, n0 + nc) -> bf16 pairs [strip][kc/2][Q_NR] (zero columns past nc).
Q_TARGET static void
q_pack_b_bf16 (const q_job_t *j, int64_t n0, int64_t nc, void *panel)
{
    int64_t kp = j->kc / 2, strips = (nc + Q_NR - 1) / Q_NR;
    uint16_t row [Q_KC] __attribute__ ((aligned (64)));
    for (int64_t s = 0; s < strips; s++) {
        uint32_t *dst = (uint32_t *) panel + s * kp * Q_NR;
        for (int c = 0; c < Q_NR; c++) {
            if (s * Q_NR + c + 4 < nc)
                q_prefetch_row (j->w, n0 + s * Q_NR + c + 4, j->k0, j->kc);
            if (s * Q_NR + c < nc)
                q_decode_row (j->w, n0 + s * Q_NR + c, j->k0, j->kc, row);
            else
                memset (row, 0, sizeof (row));
            const uint32_t *pairs = (const uint32_t *) row;
            for (int64_t p = 0; p < kp; p++)
                dst [p * Q_NR + c] = pairs [p];
        }
    }
}

//  ---------------------------------------------------------------------------------------
//  f32 paths (avx2, avx512): decoders and the panel transpose in AVX2 + F16C, shared.

#define Q_AVX2 __attribute__ ((target ("avx2,fma,f16c")))
#define Q_AVX512 __attribute__ ((target ("avx512f,avx2,fma,f16c")))

//  16 codes from 8 bytes (low nibble first) -> two vectors of 8 indices in k order.
static inline __attribute__ ((always_inline)) Q_AVX2 void
q_nib16 (const uint8_t *p, __m256i *i0, __m256i *i1)
{
    __m128i b = _mm_loadl_epi64 ((const __m128i *) p), m = _mm_set1_epi8 (15);
    __m128i c = _mm_unpacklo_epi8 (_mm_and_si128 (b, m), _mm_and_si128 (_mm_srli_epi16 (b, 4), m));
    *i0 = _mm256_cvtepu8_epi32 (c);
    *i1 = _mm256_cvtepu8_epi32 (_mm_srli_si128 (c, 8));
}

//  A 16-entry table as two 8-entry halves: vpermps picks by the low 3 bits, bit 3 the half.
static inline __attribute__ ((always_inline)) Q_AVX2 __m256
q_lut16 (__m256i idx, __m256 lo, __m256 hi)
{
    return _mm256_blendv_ps (_mm256_permutevar8x32_ps (lo, idx), _mm256_permutevar8x32_ps (hi, idx),
                             _mm256_castsi256_ps (_mm256_slli_epi32 (idx, 28)));
}

//  Weight row n, k [k0, k0 + kc) -> f32: the dequantized values, without the factors
//  q_job_t applies per column (FP8 scales, NVFP4's tensor scale).
Q_AVX2 static void
q_decode_f32 (const vdgx_weight_t *w, int64_t n, int64_t k0, int64_t kc, float *dst)
{
    int64_t K = w->k, k = 0;
    const uint8_t *q = w->data;
    switch (w->fmt) {
        case VDGX_WFMT_BF16: {
            const uint16_t *src = (const uint16_t *) q + n * K + k0;
            for (; k + 8 <= kc; k += 8)
                _mm256_storeu_ps (dst + k, _mm256_castsi256_ps (_mm256_slli_epi32 (
                    _mm256_cvtepu16_epi32 (_mm_loadu_si128 ((const __m128i *) (src + k))), 16)));
            for (; k < kc; k++)
                dst [k] = vdgx_bf16_to_f32 (src [k]);
            break;
        }
        case VDGX_WFMT_F16: {
            const uint16_t *src = (const uint16_t *) q + n * K + k0;
            for (; k + 8 <= kc; k += 8)
                _mm256_storeu_ps (dst + k, _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (src + k))));
            for (; k < kc; k++)
                dst [k] = vdgx_f16_to_f32 (src [k]);
            break;
        }
        case VDGX_WFMT_FP8_E4M3: {
            //  e4m3 s.eeee.mmm moved into f16's fields is the same value times 2^-8 (bias 15
            //  against 7), subnormals included.
            const uint8_t *src = q + n * K + k0;
            const __m128i mag = _mm_set1_epi16 (0x7f), sgn = _mm_set1_epi16 (0x80);
            const __m256 two8 = _mm256_set1_ps (256.0f);
            for (; k + 8 <= kc; k += 8) {
                __m128i b = _mm_cvtepu8_epi16 (_mm_loadl_epi64 ((const __m128i *) (src + k)));
                __m128i h = _mm_or_si128 (_mm_slli_epi16 (_mm_and_si128 (b, mag), 7), _mm_slli_epi16 (_mm_and_si128 (b, sgn), 8));
                _mm256_storeu_ps (dst + k, _mm256_mul_ps (_mm256_cvtph_ps (h), two8));
            }
            const float *tab = vdgx_e4m3_table ();
            for (; k < kc; k++)
                dst [k] = tab [src [k]];
            break;
        }
        case VDGX_WFMT_NVFP4:
        case VDGX_WFMT_MXFP4:
        case VDGX_WFMT_NF4: {
            //  k0 and kc are multiples of the format's block (16, 32, 64: the k blocks are of 64)
            const float *table = w->fmt == VDGX_WFMT_NF4? vdgx_nf4_values: vdgx_e2m1_values;
            const __m256 lo = _mm256_loadu_ps (table), hi = _mm256_loadu_ps (table + 8);
            const uint8_t *p = q + (n * K + k0) / 2;
            const float *e4m3 = vdgx_e4m3_table ();
            for (; k + 16 <= kc; k += 16, p += 8) {
                int64_t e = n * K + k0 + k;        //  element index: the block's scale
                float d = w->fmt == VDGX_WFMT_NVFP4? e4m3 [((const uint8_t *) w->scales) [e / 16]]:
                          w->fmt == VDGX_WFMT_MXFP4? vdgx_e8m0_to_f32 (((const uint8_t *) w->scales) [e / 32]):
                          ((const float *) w->scales) [e / 64];
                __m256 dv = _mm256_set1_ps (d);
                __m256i i0, i1;
                q_nib16 (p, &i0, &i1);
                _mm256_storeu_ps (dst + k, _mm256_mul_ps (q_lut16 (i0, lo, hi), dv));
                _mm256_storeu_ps (dst + k + 8, _mm256_mul_ps (q_lut16 (i1, lo, hi), dv));
            }
            break;
        }
        default:
            memset (dst, 0, (size_t) kc * sizeof (float));
    }
}

//  Weight rows [n0, n0 + nc) -> f32 panel [strip][kc][nr] (zero columns past nc): eight rows
//  decoded at a time (the next eight fetched meanwhile) and turned into columns by 8 x 8
//  transposes in registers.
static inline __attribute__ ((always_inline)) Q_AVX2 void
q_pack_b_f32 (const q_job_t *j, int64_t n0, int64_t nc, float *panel, int nr)
{
    float rows [8][Q_KCF] __attribute__ ((aligned (32)));
    int64_t kc = j->kc, groups = (nc + nr - 1) / nr * (nr / 8);
    for (int r = 0; r < 8 && r < nc; r++)
        q_prefetch_row (j->w, n0 + r, j->k0, kc);
    for (int64_t g = 0; g < groups; g++) {
        for (int r = 0; r < 8 && (g + 1) * 8 + r < nc; r++)
            q_prefetch_row (j->w, n0 + (g + 1) * 8 + r, j->k0, kc);
        for (int r = 0; r < 8; r++)
            if (g * 8 + r < nc)
                q_decode_f32 (j->w, n0 + g * 8 + r, j->k0, kc, rows [r]);
            else
                memset (rows [r], 0, sizeof (rows [r]));
        float *d = panel + (g * 8 / nr) * kc * nr + (g * 8) % nr;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 t0 = _mm256_unpacklo_ps (_mm256_load_ps (rows [0] + k), _mm256_load_ps (rows [1] + k));
            __m256 t1 = _mm256_unpackhi_ps (_mm256_load_ps (rows [0] + k), _mm256_load_ps (rows [1] + k));
            __m256 t2 = _mm256_unpacklo_ps (_mm256_load_ps (rows [2] + k), _mm256_load_ps (rows [3] + k));
            __m256 t3 = _mm256_unpackhi_ps (_mm256_load_ps (rows [2] + k), _mm256_load_ps (rows [3] + k));
            __m256 t4 = _mm256_unpacklo_ps (_mm256_load_ps (rows [4] + k), _mm256_load_ps (rows [5] + k));
            __m256 t5 = _mm256_unpackhi_ps (_mm256_load_ps (rows [4] + k), _mm256_load_ps (rows [5] + k));
            __m256 t6 = _mm256_unpacklo_ps (_mm256_load_ps (rows [6] + k), _mm256_load_ps (rows [7] + k));
            __m256 t7 = _mm256_unpackhi_ps (_mm256_load_ps (rows [6] + k), _mm256_load_ps (rows [7] + k));
            __m256 u0 = _mm256_shuffle_ps (t0, t2, 0x44), u1 = _mm256_shuffle_ps (t0, t2, 0xee);
            __m256 u2 = _mm256_shuffle_ps (t1, t3, 0x44), u3 = _mm256_shuffle_ps (t1, t3, 0xee);
            __m256 u4 = _mm256_shuffle_ps (t4, t6, 0x44), u5 = _mm256_shuffle_ps (t4, t6, 0xee);
            __m256 u6 = _mm256_shuffle_ps (t5, t7, 0x44), u7 = _mm256_shuffle_ps (t5, t7, 0xee);
            float *o = d + k * nr;
            _mm256_storeu_ps (o, _mm256_permute2f128_ps (u0, u4, 0x20));
            _mm256_storeu_ps (o + nr, _mm256_permute2f128_ps (u1, u5, 0x20));
            _mm256_storeu_ps (o + 2 * nr, _mm256_permute2f128_ps (u2, u6, 0x20));
            _mm256_storeu_ps (o + 3 * nr, _mm256_permute2f128_ps (u3, u7, 0x20));
            _mm256_storeu_ps (o + 4 * nr, _mm256_permute2f128_ps (u0, u4, 0x31));
            _mm256_storeu_ps (o + 5 * nr, _mm256_permute2f128_ps (u1, u5, 0x31));
            _mm256_storeu_ps (o + 6 * nr, _mm256_permute2f128_ps (u2, u6, 0x31));
            _mm256_storeu_ps (o + 7 * nr, _mm256_permute2f128_ps (u3, u7, 0x31));
        }
        for (; k < kc; k++)
            for (int r = 0; r < 8; r++)
                d [k * nr + r] = rows [r][k];
    }
}

Q_AVX2 static void q_pack_b_avx2 (const q_job_t *j, int64_t n0, int64_t nc, void *panel) { q_pack_b_f32 (j, n0, nc, panel, Q2_NR); }
Q_AVX2 static void q_pack_b_avx512 (const q_job_t *j, int64_t n0, int64_t nc, void *panel) { q_pack_b_f32 (j, n0, nc, panel, Q5_NR); }

//  6 x 16 tile of ymm over kc f32 k, then q_store.
Q_AVX2 static void
q_tile_avx2 (const q_job_t *j, int64_t ms, const void *pbv, int64_t n0, int cols)
{
    int64_t m0 = ms * Q2_MR;
    int rows = j->M - m0 < Q2_MR? (int) (j->M - m0): Q2_MR;
    const float *pb = pbv, *x [Q2_MR];
    for (int r = 0; r < Q2_MR; r++)         //  rows past M read row m0 (their sums are dropped)
        x [r] = j->x + (m0 + (r < rows? r: 0)) * j->K + j->k0;
    q_prefetch_y (j, m0, n0, rows, Q2_NR);
    __m256 c [Q2_MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < Q2_MR; r++)
        c [r][0] = c [r][1] = _mm256_setzero_ps ();
    for (int64_t k = 0; k < j->kc; k++, pb += Q2_NR) {
        __m256 b0 = _mm256_loadu_ps (pb), b1 = _mm256_loadu_ps (pb + 8);
#pragma GCC unroll 6
        for (int r = 0; r < Q2_MR; r++) {
            __m256 a = _mm256_broadcast_ss (x [r] + k);
            c [r][0] = _mm256_fmadd_ps (a, b0, c [r][0]);
            c [r][1] = _mm256_fmadd_ps (a, b1, c [r][1]);
        }
    }
    float acc [Q2_MR * Q2_NR] __attribute__ ((aligned (32)));
#pragma GCC unroll 6
    for (int r = 0; r < Q2_MR; r++) {
        _mm256_store_ps (acc + r * Q2_NR, c [r][0]);
        _mm256_store_ps (acc + r * Q2_NR + 8, c [r][1]);
    }
    q_store (j, acc, Q2_NR, m0, n0, rows, cols);
}

//  12 x 32 tile of zmm, the same.
Q_AVX512 static void
q_tile_avx512 (const q_job_t *j, int64_t ms, const void *pbv, int64_t n0, int cols)
{
    int64_t m0 = ms * Q5_MR;
    int rows = j->M - m0 < Q5_MR? (int) (j->M - m0): Q5_MR;
    const float *pb = pbv, *x [Q5_MR];
    for (int r = 0; r < Q5_MR; r++)         //  rows past M read row m0 (their sums are dropped)
        x [r] = j->x + (m0 + (r < rows? r: 0)) * j->K + j->k0;
    q_prefetch_y (j, m0, n0, rows, Q5_NR);
    __m512 c [Q5_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < Q5_MR; r++)
        c [r][0] = c [r][1] = _mm512_setzero_ps ();
    for (int64_t k = 0; k < j->kc; k++, pb += Q5_NR) {
        __m512 b0 = _mm512_loadu_ps (pb), b1 = _mm512_loadu_ps (pb + 16);
#pragma GCC unroll 12
        for (int r = 0; r < Q5_MR; r++) {
            __m512 a = _mm512_set1_ps (x [r][k]);
            c [r][0] = _mm512_fmadd_ps (a, b0, c [r][0]);
            c [r][1] = _mm512_fmadd_ps (a, b1, c [r][1]);
        }
    }
    float acc [Q5_MR * Q5_NR] __attribute__ ((aligned (64)));
#pragma GCC unroll 12
    for (int r = 0; r < Q5_MR; r++) {
        _mm512_store_ps (acc + r * Q5_NR, c [r][0]);
        _mm512_store_ps (acc + r * Q5_NR + 16, c [r][1]);
    }
    q_store (j, acc, Q5_NR, m0, n0, rows, cols);
}

static const q_path_t q_path_bf16 = { "avx512bf16", Q_MR, Q_NR, Q_NC, Q_KC, 2, q_pack_a, q_pack_b_bf16, q_tile_bf16 };
static const q_path_t q_path_avx512 = { "avx512", Q5_MR, Q5_NR, Q5_NC, Q_KCF, 4, NULL, q_pack_b_avx512, q_tile_avx512 };
static const q_path_t q_path_avx2 = { "avx2", Q2_MR, Q2_NR, Q2_NC, Q_KCF, 4, NULL, q_pack_b_avx2, q_tile_avx2 };

//  Part `part` of `parts` of the lines of x rows [m0, m0 + mr) in the current K block: the
//  f32 tiles read x in place, and each task sweeps all of it once per K block, from L3.
static void
q_prefetch_x (const q_job_t *j, int64_t m0, int mr, int64_t part, int64_t parts)
{
    int64_t per_row = (j->kc + 15) / 16, lines = mr * per_row;
    for (int64_t l = part * lines / parts; l < (part + 1) * lines / parts; l++) {
        int64_t m = m0 + l / per_row;
        if (m < j->M)
            __builtin_prefetch (j->x + m * j->K + j->k0 + l % per_row * 16);
    }
}

//  One task: the panel of output columns [panel * nc, ...) times the strips of x of one chunk
//  of rows (all of them unless few panels): for the current K block (bf16 path: x is packed
//  per block first), or for every K block in turn (f32 paths), each decoded once, with the
//  next block's codes fetched while the tiles run (a panel's codes are 32-256 KB: read in
//  one burst, they stalled the decode on memory bandwidth).
static void
q_panel (void *ctx, int64_t t)
{
    q_job_t j = *(const q_job_t *) ctx;
    const q_path_t *p = j.path;
    int64_t panel = t % j.panels, chunk = t / j.panels;
    int64_t n0 = panel * p->nc, nc = j.N - n0 < p->nc? j.N - n0: p->nc;
    int64_t s0 = chunk * j.mstrips / j.mchunks, s1 = (chunk + 1) * j.mstrips / j.mchunks;
    int64_t strips = (nc + p->nr - 1) / p->nr, k_end = p->pack_a? j.k0 + j.kc: j.K;
    char *bp = aligned_alloc (64, (size_t) (p->kc * p->nc * p->b_bytes));
    if (!bp)
        abort ();       //  out of memory in a compute kernel: nothing sensible to return
    for (j.k0 = p->pack_a? j.k0: 0; j.k0 < k_end; j.k0 += p->kc) {
        j.kc = j.K - j.k0 < p->kc? j.K - j.k0: p->kc;
        int64_t sbytes = j.kc * p->nr * p->b_bytes, next = j.k0 + j.kc < k_end? j.k0 + j.kc: -1, fetched = 0;
        p->pack_b (&j, n0, nc, bp);
        for (int64_t ms = s0; ms < s1; ms++) {
            //  the next block's rows, spread over the strips
            for (int64_t upto = next < 0? 0: (ms - s0 + 1) * nc / (s1 - s0); fetched < upto; fetched++)
                q_prefetch_row (j.w, n0 + fetched, next, j.K - next < p->kc? j.K - next: p->kc);
            for (int64_t s = 0; s < strips; s++) {
                if (!p->pack_a && ms + 1 < s1)
                    q_prefetch_x (&j, (ms + 1) * p->mr, p->mr, s, strips);
                p->tile (&j, ms, bp + s * sbytes, n0 + s * p->nr, nc - s * p->nr < p->nr? (int) (nc - s * p->nr): p->nr);
            }
        }
    }
    free (bp);
}

//  Few rows of x (M <= 4: embeddings, decode-like steps), every path: memory-bound on the
//  weight, so each task decodes a run of weight rows once to f32 and dots them with x.
#define Q_SKINNY_ROWS 16

Q_AVX2 static void
q_skinny (void *ctx, int64_t t)
{
    const q_job_t *j = ctx;
    int64_t n0 = t * Q_SKINNY_ROWS, n1 = n0 + Q_SKINNY_ROWS < j->N? n0 + Q_SKINNY_ROWS: j->N;
    float row [Q_KC] __attribute__ ((aligned (32)));
    for (int64_t n = n0; n < n1; n++) {
        __m256 acc [4] = { _mm256_setzero_ps (), _mm256_setzero_ps (), _mm256_setzero_ps (), _mm256_setzero_ps () };
        float tail [4] = { 0, 0, 0, 0 };
        for (int64_t k0 = 0; k0 < j->K; k0 += Q_KC) {
            int64_t kc = j->K - k0 < Q_KC? j->K - k0: Q_KC, k = 0;
            q_decode_f32 (j->w, n, k0, kc, row);
            for (; k + 8 <= kc; k += 8) {
                __m256 wv = _mm256_load_ps (row + k);
                for (int m = 0; m < j->M; m++)
                    acc [m] = _mm256_fmadd_ps (_mm256_loadu_ps (j->x + m * j->K + k0 + k), wv, acc [m]);
            }
            for (; k < kc; k++)
                for (int m = 0; m < j->M; m++)
                    tail [m] += j->x [m * j->K + k0 + k] * row [k];
        }
        float f = j->scale * (j->colscale? j->colscale [n]: 1.0f), bv = j->bias? j->bias [n]: 0.0f;
        for (int m = 0; m < j->M; m++) {
            __m128 s = _mm_add_ps (_mm256_castps256_ps128 (acc [m]), _mm256_extractf128_ps (acc [m], 1));
            s = _mm_add_ps (s, _mm_movehl_ps (s, s));
            s = _mm_add_ss (s, _mm_movehdup_ps (s));
            j->y [m * j->N + n] = (_mm_cvtss_f32 (s) + tail [m]) * f + bv;
        }
    }
}

//  The path for this weight at this level, NULL for none.
static const q_path_t *
q_choose (const vdgx_weight_t *w, vdgx_cpu_isa_t level, bool fast)
{
    if (w->fmt == VDGX_WFMT_F32 || level < VDGX_CPU_ISA_AVX2)
        return NULL;
    bool bf16_exact = w->fmt != VDGX_WFMT_F16 && w->fmt != VDGX_WFMT_NF4;
    if (level >= VDGX_CPU_ISA_AVX512BF16 && w->k % 2 == 0 && (bf16_exact || fast))
        return &q_path_bf16;
    return level >= VDGX_CPU_ISA_AVX512? &q_path_avx512: &q_path_avx2;
}
#endif

const char *
vdgx_qgemm_path (const vdgx_weight_t *w)
{
#ifdef Q_X86
    if (vdgx_qgemm_round_x < 0) {
        const char *env = getenv ("VDGX_CPU_BF16_ACT");
        vdgx_qgemm_round_x = !(env && !strcmp (env, "0"));       //  rounded unless "0"
    }
    const q_path_t *p = q_choose (w, q_level (), vdgx_qgemm_round_x > 0);
    return p? p->name: NULL;
#else
    (void) w;
    return NULL;
#endif
}

int
vdgx_cpu_qlinear (vdgx_cpu_pool_t *pool, float *y, const float *x, int64_t M,
                  const vdgx_weight_t *w, const float *bias)
{
#ifdef Q_X86
    if (!vdgx_qgemm_path (w) || M <= 0)
        return 1;
    bool fast = vdgx_qgemm_round_x > 0;
    q_job_t j = { .path = q_choose (w, q_level (), fast), .w = w, .x = x, .y = y, .bias = bias, .scale = 1.0f,
                  .M = M, .N = w->n, .K = w->k };
    if (w->fmt == VDGX_WFMT_FP8_E4M3) {
        if (w->scale_count == 1)
            j.scale = ((const float *) w->scales) [0];
        else
            j.colscale = w->scales;
    }
    else if (w->fmt == VDGX_WFMT_NVFP4)
        j.scale = w->global_scale;
    if (M <= 4) {
        vdgx_cpu_pool_run (pool, (j.N + Q_SKINNY_ROWS - 1) / Q_SKINNY_ROWS, q_skinny, &j);
        return 0;
    }
    const q_path_t *p = j.path;
    j.mstrips = (M + p->mr - 1) / p->mr;
    j.panels = (j.N + p->nc - 1) / p->nc;
    //  Few panels for the threads: split the rows too (each chunk decodes the panel again,
    //  so only while a chunk keeps 16 strips or more).
    j.mchunks = 1;
    while (j.panels * j.mchunks < 3 * vdgx_cpu_pool_threads (pool) && j.mstrips / (2 * j.mchunks) >= 16)
        j.mchunks *= 2;
    size_t an = (size_t) (j.mstrips * Q_MR * Q_KC / 2);     //  bf16 pairs of hi (and lo)
    if (p->pack_a) {
        j.apack = aligned_alloc (64, sizeof (uint32_t) * an * 2);
        if (!j.apack)
            return -1;
        j.alo = fast? NULL: (uint32_t *) j.apack + an;
    }
    if (p->pack_a)
        for (j.k0 = 0; j.k0 < j.K; j.k0 += p->kc) {
            j.kc = j.K - j.k0 < p->kc? j.K - j.k0: p->kc;
            vdgx_cpu_pool_run (pool, j.mstrips, p->pack_a, &j);
            vdgx_cpu_pool_run (pool, j.panels * j.mchunks, q_panel, &j);
        }
    else
        vdgx_cpu_pool_run (pool, j.panels * j.mchunks, q_panel, &j);      //  K blocks inside
    free (j.apack);
    return 0;
#else
    (void) pool; (void) y; (void) x; (void) M; (void) w; (void) bias;
    return 1;
#endif
}

//  ---------------------------------------------------------------------------------------
//  Selftest: every path this CPU has (forced one at a time through vdgx_qgemm_isa), every
//  format, shapes with M = 1, M past a multiple of every tile's rows, K past a multiple of
//  256 and odd, N odd and over several panels, random (never zero) inputs, against the f64
//  product with the dequantized weight. Bound, relative to sum_k |x_k w_k|, + 1e-6: 2^-14
//  for the f32 paths and the bf16 path's default mode (x = hi + lo), 2^-7 in its fast mode
//  (x rounded to bf16; F16 / NF4 weights rounded too).

static uint64_t q_seed = 0x9e3779b97f4a7c15ull;

typedef struct {
    vdgx_cpu_isa_t level;
    int fast;
} q_mode_t;

void
vdgx_qgemm_test (bool verbose)
{
    printf (" * vdgx_qgemm: ");
    static const q_mode_t modes [] = { { VDGX_CPU_ISA_AVX2, 0 }, { VDGX_CPU_ISA_AVX512, 0 },
                                       { VDGX_CPU_ISA_AVX512BF16, 0 }, { VDGX_CPU_ISA_AVX512BF16, 1 } };
    vdgx_cpu_isa_t top = vdgx_qgemm_available ()? vdgx_cpu_isa (): VDGX_CPU_ISA_GENERIC;   //  VDGX_CPU_EXACT: none
    int nmodes = 0;
    while (nmodes < 4 && modes [nmodes].level <= top)
        nmodes++;
    vdgx_cpu_pool_t *pool = vdgx_cpu_pool_new (3);
    static const int64_t shapes [][3] = { { 1, 33, 64 }, { 4, 50, 320 }, { 5, 32, 64 }, { 7, 37, 75 }, { 13, 40, 128 },
                                          { 37, 300, 576 }, { 12, 256, 256 }, { 100, 70, 2048 }, { 263, 129, 320 } };
    double worst [4][VDGX_WFMT_COUNT] = { { 0 } };
    int saved_round = vdgx_qgemm_round_x, saved_isa = vdgx_qgemm_isa, checked = 0;
    for (size_t s = 0; s < sizeof (shapes) / sizeof (shapes [0]) && nmodes; s++)
        for (int f = 1; f < VDGX_WFMT_COUNT; f++)
            for (int pc = 0; pc < 2; pc++) {
                int64_t M = shapes [s][0], N = shapes [s][1], K = shapes [s][2];
                float *ws = malloc (sizeof (float) * (size_t) (N * K));
                assert (ws);
                for (int64_t i = 0; i < N * K; i++)
                    ws [i] = vdgx_test_randf (&q_seed) * 0.05f;
                vdgx_weight_t w;
                char *err = NULL;
                if (vdgx_weight_quantize (&w, (vdgx_wfmt_t) f, ws, N, K, pc, &err)) {
                    //  the block formats refuse a K that is not a multiple of their block
                    assert (K % 16 && (f == VDGX_WFMT_NVFP4 || f == VDGX_WFMT_MXFP4 || f == VDGX_WFMT_NF4));
                    free (err);
                    free (ws);
                    continue;
                }
                float *x = malloc (sizeof (float) * (size_t) (M * K)), *wd = malloc (sizeof (float) * (size_t) (N * K));
                float *y = malloc (sizeof (float) * (size_t) (M * N)), *bias = malloc (sizeof (float) * (size_t) N);
                double *ref = malloc (sizeof (double) * (size_t) (M * N)), *mag = malloc (sizeof (double) * (size_t) (M * N));
                assert (x && wd && y && bias && ref && mag);
                for (int64_t i = 0; i < M * K; i++)
                    x [i] = vdgx_test_randf (&q_seed) * 3.0f;
                for (int64_t i = 0; i < N; i++)
                    bias [i] = vdgx_test_randf (&q_seed);
                vdgx_weight_dequant (&w, wd);
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++) {
                        double acc = pc? bias [n]: 0.0, a = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double) x [m * K + k] * wd [n * K + k];
                            acc += p;
                            a += fabs (p);
                        }
                        ref [m * N + n] = acc;
                        mag [m * N + n] = a;
                    }
                for (int md = 0; md < nmodes; md++) {
                    vdgx_qgemm_isa = modes [md].level;
                    vdgx_qgemm_round_x = modes [md].fast;
                    bool exact = f != VDGX_WFMT_F16 && f != VDGX_WFMT_NF4;
                    const char *want = modes [md].level == VDGX_CPU_ISA_AVX2? "avx2":
                                       modes [md].level == VDGX_CPU_ISA_AVX512 || K % 2 || !(exact || modes [md].fast)? "avx512": "avx512bf16";
                    assert (strcmp (vdgx_qgemm_path (&w), want) == 0);
                    for (int64_t i = 0; i < M * N; i++)
                        y [i] = vdgx_test_randf (&q_seed);      //  no stale result can pass
                    assert (vdgx_cpu_qlinear (pool, y, x, M, &w, pc? bias: NULL) == 0);
                    double bound = strcmp (want, "avx512bf16") == 0 && modes [md].fast? 1.0 / 128: 1.0 / 16384;
                    for (int64_t i = 0; i < M * N; i++) {
                        double e = fabs (y [i] - ref [i]);
                        if (e / (mag [i] + 1e-30) > worst [md][f])
                            worst [md][f] = e / (mag [i] + 1e-30);
                        if (!(e <= mag [i] * bound + 1e-6)) {
                            fprintf (stderr, "\nFAIL qgemm %s on %s%s [%lld,%lld,%lld] at (%lld,%lld): got %.8g ref %.8g\n", want,
                                     vdgx_wfmt_name ((vdgx_wfmt_t) f), modes [md].fast? " (fast)": "", (long long) M, (long long) N,
                                     (long long) K, (long long) (i / N), (long long) (i % N), y [i], ref [i]);
                            assert (false);
                        }
                    }
                    checked++;
                }
                vdgx_weight_host_free (&w);
                free (x); free (ws); free (wd); free (y); free (bias); free (ref); free (mag);
            }
    vdgx_qgemm_round_x = saved_round;
    vdgx_qgemm_isa = saved_isa;
    if (verbose)
        for (int md = 0; md < nmodes; md++) {
            printf ("%s%s:", vdgx_cpu_isa_name (modes [md].level), modes [md].fast? " fast": "");
            for (int f = 1; f < VDGX_WFMT_COUNT; f++)
                printf (" %s %.1e", vdgx_wfmt_name ((vdgx_wfmt_t) f), worst [md][f]);
            printf ("; ");
        }
    //  fast mode: the formats that bf16 holds exactly lose only x's rounding
    if (nmodes == 4)
        assert (worst [3][VDGX_WFMT_BF16] < 1.0 / 256 && worst [3][VDGX_WFMT_FP8_E4M3] < 1.0 / 256);
    //  generic level, a test's disable switch (VDGX_CPU_EXACT-like) and F32 weights: the
    //  caller gets the portable route
    vdgx_weight_t w;
    float ws [64], x [64], y [1];
    for (int i = 0; i < 64; i++)
        ws [i] = x [i] = vdgx_test_randf (&q_seed);
    assert (vdgx_weight_quantize (&w, VDGX_WFMT_BF16, ws, 1, 64, false, NULL) == 0);
    vdgx_qgemm_isa = VDGX_CPU_ISA_GENERIC;
    assert (!vdgx_qgemm_available () && vdgx_cpu_qlinear (pool, y, x, 1, &w, NULL) == 1);
    vdgx_qgemm_isa = saved_isa;
    vdgx_qgemm_disable = true;
    assert (vdgx_cpu_qlinear (pool, y, x, 1, &w, NULL) == 1);
    vdgx_qgemm_disable = false;
    vdgx_weight_host_free (&w);
    assert (vdgx_weight_quantize (&w, VDGX_WFMT_F32, ws, 1, 64, false, NULL) == 0);
    assert (vdgx_qgemm_path (&w) == NULL && vdgx_cpu_qlinear (pool, y, x, 1, &w, NULL) == 1);
    vdgx_weight_host_free (&w);
    vdgx_cpu_pool_destroy (&pool);
    if (!nmodes)
        printf ("no path here (no AVX2, VDGX_CPU_ISA=generic or VDGX_CPU_EXACT=1: the portable route, tested by vdgx_cpu) ");
    else if (verbose)
        printf ("%d products ", checked);
    printf ("OK\n");
}
