/*  vdgx_cpu_qgemm.c - linear layers that compute on quantized weights (no f32 copy).

    y[M,N] = x[M,K] . W[N,K]^T (+ bias) for a weight in any vdgx_quant.h format other than
    F32. On a CPU with AVX512-BF16 (checked at run time) the product runs on the BF16 dot
    instruction (vdpbf16ps: 32 multiply-adds per instruction, twice the f32 FMA rate):
    - x is rounded to bf16 once per K block and packed in 12-row strips of k pairs (the
      default: relative error about 2^-9 per product, as a GPU computing in bf16, and below
      the rounding the weight format itself brings: 2^-9 for BF16, 2^-4 for FP8). With
      VDGX_CPU_BF16_ACT=0 x is split into two bf16 parts, hi = bf16(x) and lo = bf16(x - hi),
      and both are multiplied (x = hi + lo within 2^-16 relative, so the product matches the
      f32 one to about 1e-5, at about the f32 sgemm rate: twice the dot instructions);
    - the weight is decoded from its packed codes straight into a bf16 panel (256 k x 256 n,
      in L2) that the 12 x 32 register tile streams; the decode is vectorised per format
      (e4m3 via f16 bits, e2m1 / nf4 nibbles through a 16-entry vpermps table) and every
      scale that is constant along k (FP8 per tensor or per channel, NVFP4's tensor scale) is
      applied to the output columns instead, so:
    - BF16, FP8, NVFP4 and MXFP4 weights are represented exactly in the panel. Products
      accumulate in f32.
    F16 and NF4 (table value x f32 absmax) are not exact in bf16: they take this path only
    when x is rounded too (the default), else the portable route.
    Why x in bf16 by default: a quantized weight is chosen to save memory and time; with the
    split the packed path only matched the f32 sgemm (0.93-0.98x of it on the 2-core dev
    machine, 2026-12-06), so every format cost time; rounded, they run faster than f32.
    Without AVX512-BF16 (or with VDGX_CPU_EXACT=1) vdgx_cpu_qlinear returns 1 and the caller
    takes the portable route (f32 panels of dequantized rows, sgemm).
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

#define Q_MR 12             //  rows of x per register tile
#define Q_NR 32             //  weight rows (output columns) per register tile: two zmm
#define Q_KC 256            //  k per block (even)
#define Q_NC 256            //  output columns per task panel (a multiple of Q_NR)

bool vdgx_qgemm_disable = false;
int vdgx_qgemm_round_x = -1;

#ifdef Q_X86

typedef struct {
    const vdgx_weight_t *w;
    const float *x;
    float *y;
    const float *bias;
    const float *colscale;      //  per output column (FP8 per channel) or NULL
    float scale;                //  constant factor (FP8 per tensor x NVFP4 global)
    int64_t M, N, K, k0, kc, mstrips;
    uint32_t *apack, *alo;      //  [mstrips][kc/2][Q_MR] bf16 pairs of hi and lo (alo NULL: x rounded)
} q_job_t;

#define Q_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,f16c,fma")))

//  x rows [12 s, 12 s + 12) x k [k0, k0 + kc) -> bf16 pairs, zero rows past M.
Q_TARGET static void
q_pack_a (void *ctx, int64_t s)
{
    const q_job_t *j = ctx;
    int64_t kp = j->kc / 2;
    uint32_t *dst = j->apack + s * kp * Q_MR, *dlo = j->alo? j->alo + s * kp * Q_MR: NULL;
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

//  C tile (rows x cols of a 12 x 32 tile) = [C +] A . B over kp k pairs; on the last K block
//  the column factors and the bias are applied on the way out.
static inline __attribute__ ((always_inline)) Q_TARGET void
q_micro (const q_job_t *j, int64_t kp, const uint32_t *pa, const uint32_t *pl, const uint32_t *pb,
         int64_t m0, int64_t n0, int rows, int cols)
{
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
    bool first = j->k0 == 0, last = j->k0 + j->kc == j->K;
    __m512 f0 = _mm512_set1_ps (j->scale), f1 = f0, b0 = _mm512_setzero_ps (), b1 = b0;
    if (last && cols == Q_NR) {
        if (j->colscale) {
            f0 = _mm512_mul_ps (f0, _mm512_loadu_ps (j->colscale + n0));
            f1 = _mm512_mul_ps (f1, _mm512_loadu_ps (j->colscale + n0 + 16));
        }
        if (j->bias) {
            b0 = _mm512_loadu_ps (j->bias + n0);
            b1 = _mm512_loadu_ps (j->bias + n0 + 16);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *y = j->y + (m0 + r) * j->N + n0;
        if (cols == Q_NR) {
            __m512 v0 = c [r][0], v1 = c [r][1];
            if (!first) {
                v0 = _mm512_add_ps (v0, _mm512_loadu_ps (y));
                v1 = _mm512_add_ps (v1, _mm512_loadu_ps (y + 16));
            }
            if (last) {
                v0 = _mm512_fmadd_ps (v0, f0, b0);
                v1 = _mm512_fmadd_ps (v1, f1, b1);
            }
            _mm512_storeu_ps (y, v0);
            _mm512_storeu_ps (y + 16, v1);
        }
        else {
            float t [Q_NR];
            _mm512_storeu_ps (t, c [r][0]);
            _mm512_storeu_ps (t + 16, c [r][1]);
            for (int q = 0; q < cols; q++) {
                float v = t [q] + (first? 0.0f: y [q]);
                if (last)
                    v = v * j->scale * (j->colscale? j->colscale [n0 + q]: 1.0f) + (j->bias? j->bias [n0 + q]: 0.0f);
                y [q] = v;
            }
        }
    }
}

//  One task: output columns [t * Q_NC, ...) for the current K block, every row of x.
Q_TARGET static void
q_panel (void *ctx, int64_t t)
{
    const q_job_t *j = ctx;
    int64_t n0 = t * Q_NC, nc = j->N - n0 < Q_NC? j->N - n0: Q_NC;
    int64_t kp = j->kc / 2, strips = (nc + Q_NR - 1) / Q_NR;
    uint32_t *bp = aligned_alloc (64, sizeof (uint32_t) * (size_t) (Q_NC / Q_NR * Q_KC / 2 * Q_NR));
    if (!bp)
        abort ();       //  out of memory in a compute kernel: nothing sensible to return
    uint16_t row [Q_KC] __attribute__ ((aligned (64)));
    for (int64_t s = 0; s < strips; s++) {
        uint32_t *dst = bp + s * kp * Q_NR;
        for (int c = 0; c < Q_NR; c++) {
            int64_t n = n0 + s * Q_NR + c;
            if (n < j->N)
                q_decode_row (j->w, n, j->k0, j->kc, row);
            else
                memset (row, 0, sizeof (row));
            const uint32_t *pairs = (const uint32_t *) row;
            for (int64_t p = 0; p < kp; p++)
                dst [p * Q_NR + c] = pairs [p];
        }
    }
    for (int64_t ms = 0; ms < j->mstrips; ms++) {
        int64_t m0 = ms * Q_MR;
        int rows = j->M - m0 < Q_MR? (int) (j->M - m0): Q_MR;
        const uint32_t *pa = j->apack + ms * kp * Q_MR, *pl = j->alo? j->alo + ms * kp * Q_MR: NULL;
        for (int64_t s = 0; s < strips; s++) {
            int cols = nc - s * Q_NR < Q_NR? (int) (nc - s * Q_NR): Q_NR;
            if (pl)
                q_micro (j, kp, pa, pl, bp + s * kp * Q_NR, m0, n0 + s * Q_NR, rows, cols);
            else
                q_micro (j, kp, pa, NULL, bp + s * kp * Q_NR, m0, n0 + s * Q_NR, rows, cols);
        }
    }
    free (bp);
}

//  Few rows of x (M <= 4: embeddings, decode-like steps): memory-bound on the weight, so each
//  task decodes a run of weight rows once and dots them with x in f32 (x is not rounded).
#define Q_SKINNY_ROWS 16

Q_TARGET static void
q_skinny (void *ctx, int64_t t)
{
    const q_job_t *j = ctx;
    int64_t n0 = t * Q_SKINNY_ROWS, n1 = n0 + Q_SKINNY_ROWS < j->N? n0 + Q_SKINNY_ROWS: j->N;
    uint16_t row [Q_KC] __attribute__ ((aligned (64)));
    for (int64_t n = n0; n < n1; n++) {
        __m512 acc [4] = { _mm512_setzero_ps (), _mm512_setzero_ps (), _mm512_setzero_ps (), _mm512_setzero_ps () };
        float tail [4] = { 0, 0, 0, 0 };
        for (int64_t k0 = 0; k0 < j->K; k0 += Q_KC) {
            int64_t kc = j->K - k0 < Q_KC? j->K - k0: Q_KC, k = 0;
            q_decode_row (j->w, n, k0, kc, row);
            for (; k + 16 <= kc; k += 16) {
                __m512 wv = _mm512_castsi512_ps (_mm512_slli_epi32 (
                    _mm512_cvtepu16_epi32 (_mm256_load_si256 ((const __m256i *) (row + k))), 16));
                for (int m = 0; m < j->M; m++)
                    acc [m] = _mm512_fmadd_ps (_mm512_loadu_ps (j->x + m * j->K + k0 + k), wv, acc [m]);
            }
            for (; k < kc; k++)
                for (int m = 0; m < j->M; m++)
                    tail [m] += j->x [m * j->K + k0 + k] * vdgx_bf16_to_f32 (row [k]);
        }
        float f = j->scale * (j->colscale? j->colscale [n]: 1.0f), bv = j->bias? j->bias [n]: 0.0f;
        for (int m = 0; m < j->M; m++)
            j->y [m * j->N + n] = (_mm512_reduce_add_ps (acc [m]) + tail [m]) * f + bv;
    }
}

static bool
q_cpu_ok (void)
{
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init ();
        const char *env = getenv ("VDGX_CPU_EXACT");
        ok = __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
             && __builtin_cpu_supports ("avx512vl") && __builtin_cpu_supports ("avx512dq")
             && __builtin_cpu_supports ("avx512bf16") && !(env && *env && strcmp (env, "0"));
    }
    return ok;
}
#endif

bool
vdgx_qgemm_available (void)
{
#ifdef Q_X86
    return q_cpu_ok () && !vdgx_qgemm_disable;
#else
    return false;
#endif
}

int
vdgx_cpu_qlinear (vdgx_cpu_pool_t *pool, float *y, const float *x, int64_t M,
                  const vdgx_weight_t *w, const float *bias)
{
#ifdef Q_X86
    if (vdgx_qgemm_round_x < 0) {
        const char *env = getenv ("VDGX_CPU_BF16_ACT");
        vdgx_qgemm_round_x = !(env && !strcmp (env, "0"));
    }
    bool fast = vdgx_qgemm_round_x > 0;
    if (!vdgx_qgemm_available () || w->fmt == VDGX_WFMT_F32 || w->k % 2 || M <= 0
    ||  (!fast && (w->fmt == VDGX_WFMT_F16 || w->fmt == VDGX_WFMT_NF4)))
        return 1;
    q_job_t j = { .w = w, .x = x, .y = y, .bias = bias, .scale = 1.0f, .M = M, .N = w->n, .K = w->k };
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
    j.mstrips = (M + Q_MR - 1) / Q_MR;
    size_t an = (size_t) (j.mstrips * Q_MR * Q_KC / 2);
    j.apack = aligned_alloc (64, sizeof (uint32_t) * an * (fast? 1: 2));
    if (!j.apack)
        return -1;
    j.alo = fast? NULL: j.apack + an;
    int64_t panels = (j.N + Q_NC - 1) / Q_NC;
    for (j.k0 = 0; j.k0 < j.K; j.k0 += Q_KC) {
        j.kc = j.K - j.k0 < Q_KC? j.K - j.k0: Q_KC;
        vdgx_cpu_pool_run (pool, j.mstrips, q_pack_a, &j);
        vdgx_cpu_pool_run (pool, panels, q_panel, &j);
    }
    free (j.apack);
    return 0;
#else
    (void) pool; (void) y; (void) x; (void) M; (void) w; (void) bias;
    return 1;
#endif
}

//  ---------------------------------------------------------------------------------------
//  Selftest: every format on random inputs and odd shapes against the f32 product with the
//  dequantized weight. Default mode (x = hi + lo): |got - ref| <= 2^-14 * sum_k |x_k w_k| + 1e-6
//  (F16 / NF4 refused: the portable route runs them). Fast mode (x rounded to bf16, F16 / NF4
//  weights too): |got - ref| <= 2^-7 * sum_k |x_k w_k| + 1e-6.

static uint64_t q_seed = 0x9e3779b97f4a7c15ull;

void
vdgx_qgemm_test (bool verbose)
{
    printf (" * vdgx_qgemm: ");
    if (!vdgx_qgemm_available ()) {
        printf ("no AVX512-BF16 on this CPU (the portable route is tested by vdgx_cpu) OK\n");
        return;
    }
    vdgx_cpu_pool_t *pool = vdgx_cpu_pool_new (3);
    static const int64_t shapes [][3] = { { 1, 33, 64 }, { 4, 50, 320 }, { 5, 32, 64 }, { 13, 40, 128 }, { 37, 300, 576 }, { 12, 256, 256 },
                                          { 100, 70, 2048 } };
    double worst [2][VDGX_WFMT_COUNT] = { { 0 } };
    int saved = vdgx_qgemm_round_x;
    for (int fast = 0; fast < 2; fast++)
    for (size_t s = 0; s < sizeof (shapes) / sizeof (shapes [0]); s++)
        for (int f = 1; f < VDGX_WFMT_COUNT; f++)
            for (int pc = 0; pc < 2; pc++) {
                int64_t M = shapes [s][0], N = shapes [s][1], K = shapes [s][2];
                float *x = malloc (sizeof (float) * (size_t) (M * K)), *ws = malloc (sizeof (float) * (size_t) (N * K));
                float *wd = malloc (sizeof (float) * (size_t) (N * K)), *y = malloc (sizeof (float) * (size_t) (M * N));
                float *bias = malloc (sizeof (float) * (size_t) N);
                assert (x && ws && wd && y && bias);
                for (int64_t i = 0; i < M * K; i++)
                    x [i] = vdgx_test_randf (&q_seed) * 3.0f;
                for (int64_t i = 0; i < N * K; i++)
                    ws [i] = vdgx_test_randf (&q_seed) * 0.05f;
                for (int64_t i = 0; i < N; i++)
                    bias [i] = vdgx_test_randf (&q_seed);
                vdgx_weight_t w;
                char *err = NULL;
                assert (vdgx_weight_quantize (&w, (vdgx_wfmt_t) f, ws, N, K, pc, &err) == 0);
                vdgx_weight_dequant (&w, wd);
                vdgx_qgemm_round_x = fast;
                bool exact = f != VDGX_WFMT_F16 && f != VDGX_WFMT_NF4;
                int rc = vdgx_cpu_qlinear (pool, y, x, M, &w, pc? bias: NULL);
                assert (rc == (fast || exact? 0: 1));
                if (rc)
                    M = 0;      //  refused: nothing to compare
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++) {
                        double ref = pc? bias [n]: 0.0, mag = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double) x [m * K + k] * wd [n * K + k];
                            ref += p;
                            mag += fabs (p);
                        }
                        double e = fabs (y [m * N + n] - ref) / (mag + 1e-30);
                        if (e > worst [fast][f])
                            worst [fast][f] = e;
                        if (!(fabs (y [m * N + n] - ref) <= mag / (fast? 128.0: 16384.0) + 1e-6)) {
                            fprintf (stderr, "\nFAIL qgemm %s%s [%lld,%lld,%lld] at (%lld,%lld): got %.8g ref %.8g\n",
                                     vdgx_wfmt_name ((vdgx_wfmt_t) f), fast? " (fast)": "", (long long) M, (long long) N, (long long) K,
                                     (long long) m, (long long) n, y [m * N + n], ref);
                            assert (false);
                        }
                    }
                vdgx_weight_host_free (&w);
                free (x); free (ws); free (wd); free (y); free (bias);
            }
    vdgx_qgemm_round_x = saved;
    if (verbose)
        for (int fast = 0; fast < 2; fast++) {
            printf ("%s:", fast? "fast": "default");
            for (int f = 1; f < VDGX_WFMT_COUNT; f++)
                printf (" %s %.1e", vdgx_wfmt_name ((vdgx_wfmt_t) f), worst [fast][f]);
            printf ("; ");
        }
    //  fast mode: the formats that bf16 holds exactly lose only x's rounding
    assert (worst [1][VDGX_WFMT_BF16] < 1.0 / 256 && worst [1][VDGX_WFMT_FP8_E4M3] < 1.0 / 256);
    //  VDGX_CPU_EXACT-like switch: the caller gets the portable route
    vdgx_qgemm_disable = true;
    vdgx_weight_t w;
    float ws [64], x [64], y [1];
    for (int i = 0; i < 64; i++)
        ws [i] = x [i] = vdgx_test_randf (&q_seed);
    assert (vdgx_weight_quantize (&w, VDGX_WFMT_BF16, ws, 1, 64, false, NULL) == 0);
    assert (vdgx_cpu_qlinear (pool, y, x, 1, &w, NULL) == 1);
    vdgx_qgemm_disable = false;
    vdgx_weight_host_free (&w);
    vdgx_cpu_pool_destroy (&pool);
    printf ("OK\n");
}
