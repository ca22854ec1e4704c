/*  vdgx_cpu_wino.c - Winograd F(4x4, 3x3) for the 3x3 (x kt) stride-1 convolutions ("same" or
    "valid") of the CPU backend, the bulk of the video VAEs' decoders.

    Each 4x4 block of outputs (a tile) takes a 6x6 input patch; per (co, ci, temporal tap) it
    costs 36 multiply-adds instead of im2col's 144 (F(2x2, 3x3), which this replaces, took 64),
    and the transformed input is 2.25x the input instead of 4x:
      U[xi][co][dt Cin + ci] = (G g G^T)[xi]        weights, once per call (taps used only)
      V[xi][f][ci][n]        = (B^T d B)[xi]        input patches of tile n, real frames f only
      M[xi][ot][co][n]       = U[xi][co][dlo Cin .. dhi Cin) . V[xi][ot + dlo - pt ..][.][n]
      y[co][ot][4i + r][4j + c] = (A^T M A)[r][c] + bias
    (Lavin & Gray, points 0, +-1, +-2, inf). The temporal taps are summed inside one GEMM per
    (xi, output frame) with K = (taps) x Cin, so every input frame is transformed once and
    used by each output frame that reads it; taps that fall on the causal / zero padding
    (frames before 0 or past the end) are left out of K instead of multiplying zeros (the
    first chunk of a causal decoder reads 2 padding frames of 3). The 36 x To GEMMs run as
    pool tasks (each single-threaded); tiles are taken in chunks of whole tile rows so V and
    M stay near S_BUDGET floats.

    With AVX-512 the weight transform writes U packed 12 output channels per k (gathering
    the 3x3 kernels of 12 channels into the lanes), and the GEMM is a 12 x 32 register tile
    (24 zmm accumulators) over U's packed rows and V's rows in place: no packing copies
    (OpenBLAS spent a quarter of its time packing these K = 96..1152 products), about the
    core's FMA peak on the VAE shapes. Input transform: six padded input rows are copied
    into a buffer (zero columns and rows outside the image, so edge tiles need no special
    case), then 16 tiles at a time (stride-4 columns picked by permutes); output transform
    16 tiles at a time, interleaved back to rows. The plain C reference (no AVX-512 or
    VDGX_CPU_ISA below avx512, vdgx_wino_vec_disable, and the selftest) is scalar transforms
    on a plain U and the backend's sgemm.

    Rounding: the input / output transforms have coefficients up to 5 and 8, so a result is
    off by a few f32 ulps of sum |transformed terms|, more than an im2col dot product: the
    selftest measures at most 2.3e-6 of sum |x w| against a double-precision convolution
    (vector and scalar paths) and bounds it by 2e-5 (im2col's bound in selftest.cpu: 1e-5).
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10)
#define W_X86 1
#include <immintrin.h>
#endif

#define S_XI 36                     //  6 x 6 transformed values per tile
#define S_BUDGET (6 << 20)          //  floats of V + M per chunk of tiles
#define S_MR 12                     //  rows (output channels) of the vector GEMM tile
#define S_MIN_TILES 16              //  tiles per frame below which im2col is used: the
                                    //  GEMMs run frame by frame, and the weight transform
                                    //  (36 x taps x Cout x Cin floats) costs more than it
                                    //  saves on small images (LTX's 8x8 frames: 2-4x slower)

bool vdgx_winograd_disable = false;
bool vdgx_wino_vec_disable = false;

typedef struct {
    const vdgx_conv_geom_t *g;
    int64_t Cout, Kf, tw, th, bt, row0, nt, rowlen, dmin, dmax, ncb;
    const float *x, *w, *bias;
    float *y, *U, *V, *M;
    bool vec;
} s_job_t;

//  One dimension of B^T d B (d0..d5 -> t[0..5]) and of A^T m (m0..m5 -> o[0..3]); written for
//  both float and the 16-lane vector type.
#define S_BT(d0, d1, d2, d3, d4, d5, t) do { \
    (t) [0] = 4.0f * (d0) - 5.0f * (d2) + (d4); \
    (t) [1] = ((d4) - 4.0f * (d2)) + ((d3) - 4.0f * (d1)); \
    (t) [2] = ((d4) - 4.0f * (d2)) - ((d3) - 4.0f * (d1)); \
    (t) [3] = ((d4) - (d2)) + 2.0f * ((d3) - (d1)); \
    (t) [4] = ((d4) - (d2)) - 2.0f * ((d3) - (d1)); \
    (t) [5] = 4.0f * (d1) - 5.0f * (d3) + (d5); \
} while (0)
#define S_AT(m0, m1, m2, m3, m4, m5, o) do { \
    (o) [0] = (m0) + ((m1) + (m2)) + ((m3) + (m4)); \
    (o) [1] = ((m1) - (m2)) + 2.0f * ((m3) - (m4)); \
    (o) [2] = ((m1) + (m2)) + 4.0f * ((m3) + (m4)); \
    (o) [3] = ((m1) - (m2)) + 8.0f * ((m3) - (m4)) + (m5); \
} while (0)

//  One dimension of G g G^T (g0..g2 -> u[0..5]), float and vector.
#define S_G(g0, g1, g2, u) do { \
    (u) [0] = 0.25f * (g0); \
    (u) [1] = (-1.0f / 6.0f) * ((g0) + (g1) + (g2)); \
    (u) [2] = (-1.0f / 6.0f) * ((g0) - (g1) + (g2)); \
    (u) [3] = (1.0f / 24.0f) * (g0) + (1.0f / 12.0f) * (g1) + (1.0f / 6.0f) * (g2); \
    (u) [4] = (1.0f / 24.0f) * (g0) - (1.0f / 12.0f) * (g1) + (1.0f / 6.0f) * (g2); \
    (u) [5] = (g2); \
} while (0)

//  Reference weight transform of one 3x3 kernel g -> u[xi * plane].
static void
s_weight1 (const float *g, float *u, size_t plane)
{
    float t [6][3];
    for (int c = 0; c < 3; c++) {
        float o [6];
        S_G (g [c], g [3 + c], g [6 + c], o);
        for (int r = 0; r < 6; r++)
            t [r][c] = o [r];
    }
    for (int r = 0; r < 6; r++) {
        float o [6];
        S_G (t [r][0], t [r][1], t [r][2], o);
        for (int c = 0; c < 6; c++)
            u [(r * 6 + c) * plane] = o [c];
    }
}

//  Reference input transform of tile column jt from six padded rows (buf, rowlen apart):
//  patch column b is buf[4 jt + b]. Writes v[xi * plane].
static void
s_input1 (const float *buf, int64_t rowlen, int64_t jt, float *v, size_t plane)
{
    float d [6][6], t [6][6];
    for (int a = 0; a < 6; a++) {
        const float *p = buf + a * rowlen + 4 * jt;
        S_BT (p [0], p [1], p [2], p [3], p [4], p [5], d [a]);
    }
    for (int b = 0; b < 6; b++) {
        float o [6];
        S_BT (d [0][b], d [1][b], d [2][b], d [3][b], d [4][b], d [5][b], o);
        for (int a = 0; a < 6; a++)
            t [a][b] = o [a];
    }
    for (int xi = 0; xi < S_XI; xi++)
        v [xi * plane] = t [xi / 6][xi % 6];
}

//  Reference output transform of one tile: m[xi * plane] -> rows of y (Wo apart), only the
//  rows < nr and columns < nc that exist.
static void
s_output1 (const float *m, size_t plane, float bias, float *y, int64_t Wo, int nr, int nc)
{
    float t [4][6];
    for (int b = 0; b < 6; b++) {
        float o [4];
        S_AT (m [(0 * 6 + b) * plane], m [(1 * 6 + b) * plane], m [(2 * 6 + b) * plane],
              m [(3 * 6 + b) * plane], m [(4 * 6 + b) * plane], m [(5 * 6 + b) * plane], o);
        for (int r = 0; r < 4; r++)
            t [r][b] = o [r];
    }
    for (int r = 0; r < nr; r++) {
        float o [4];
        S_AT (t [r][0], t [r][1], t [r][2], t [r][3], t [r][4], t [r][5], o);
        for (int c = 0; c < nc; c++)
            y [r * Wo + c] = o [c] + bias;
    }
}

#ifdef W_X86
typedef float s_v16 __attribute__ ((vector_size (64)));
#define W_TARGET __attribute__ ((target ("avx512f,fma")))

//  U of 12 output channels (rows < Cout - co0 exist, the others get zeros) for one (dt, ci),
//  packed: u[xi * plane + r] for row r. Kernels of consecutive co are kstride floats apart.
W_TARGET static void
s_weight12 (const float *g, int64_t kstride, int rows, float *u, size_t plane)
{
    __mmask16 mask = (__mmask16) ((1u << rows) - 1);
    __m512i ix = _mm512_mullo_epi32 (_mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32 ((int) kstride));
    s_v16 k [9], t [6][3];
    for (int e = 0; e < 9; e++)
        k [e] = (s_v16) _mm512_mask_i32gather_ps (_mm512_setzero_ps (), mask, ix, g + e, 4);
    for (int c = 0; c < 3; c++) {
        s_v16 o [6];
        S_G (k [c], k [3 + c], k [6 + c], o);
        for (int r = 0; r < 6; r++)
            t [r][c] = o [r];
    }
    for (int r = 0; r < 6; r++) {
        s_v16 o [6];
        S_G (t [r][0], t [r][1], t [r][2], o);
        for (int c = 0; c < 6; c++)
            _mm512_mask_storeu_ps (u + (r * 6 + c) * plane, 0x0FFF, (__m512) o [c]);
    }
}

//  C[r][n] = sum_k A[k][r] B[k][n] for rows r < rows, columns n < ncols <= W (16 or 32):
//  A packed 12 rows per k, B rows ldb apart, C rows ldc apart; 12 x W accumulators, named
//  (GCC keeps an array of them in memory).
#define S_ACC(r) __m512 a##r##0 = _mm512_setzero_ps (), a##r##1 = _mm512_setzero_ps ()
#define S_FMA(r) do { __m512 av_ = _mm512_set1_ps (A [r]); \
    a##r##0 = _mm512_fmadd_ps (av_, b0, a##r##0); \
    if (W == 32) a##r##1 = _mm512_fmadd_ps (av_, b1, a##r##1); } while (0)
#define S_OUT(r) do { if (r < rows) { _mm512_mask_storeu_ps (C + r * ldc, m0, a##r##0); \
    if (W == 32) _mm512_mask_storeu_ps (C + r * ldc + 16, m1, a##r##1); } } while (0)

static inline __attribute__ ((always_inline)) W_TARGET void
s_kern (int W, int64_t K, const float *A, const float *B, int64_t ldb, float *C, int64_t ldc,
        int rows, int ncols)
{
    S_ACC (0); S_ACC (1); S_ACC (2); S_ACC (3); S_ACC (4); S_ACC (5);
    S_ACC (6); S_ACC (7); S_ACC (8); S_ACC (9); S_ACC (10); S_ACC (11);
    __mmask16 m0 = (__mmask16) (ncols >= 16? 0xFFFF: (1u << ncols) - 1);
    __mmask16 m1 = (__mmask16) (W < 32 || ncols <= 16? 0: ncols >= 32? 0xFFFF: (1u << (ncols - 16)) - 1);
    for (int64_t k = 0; k < K; k++, A += S_MR, B += ldb) {
        __m512 b0 = _mm512_maskz_loadu_ps (m0, B), b1 = W == 32? _mm512_maskz_loadu_ps (m1, B + 16): b0;
        S_FMA (0); S_FMA (1); S_FMA (2); S_FMA (3); S_FMA (4); S_FMA (5);
        S_FMA (6); S_FMA (7); S_FMA (8); S_FMA (9); S_FMA (10); S_FMA (11);
    }
    S_OUT (0); S_OUT (1); S_OUT (2); S_OUT (3); S_OUT (4); S_OUT (5);
    S_OUT (6); S_OUT (7); S_OUT (8); S_OUT (9); S_OUT (10); S_OUT (11);
}

W_TARGET static void
s_kern32 (int64_t K, const float *A, const float *B, int64_t ldb, float *C, int64_t ldc, int rows, int ncols)
{
    s_kern (32, K, A, B, ldb, C, ldc, rows, ncols);
}

W_TARGET static void
s_kern16 (int64_t K, const float *A, const float *B, int64_t ldb, float *C, int64_t ldc, int rows, int ncols)
{
    s_kern (16, K, A, B, ldb, C, ldc, rows, ncols);
}

//  16 tiles (jt0 .. jt0 + 15, the first cnt stored) of six padded rows; reads buf up to
//  4 jt0 + 80 of each row.
W_TARGET static void
s_input16 (const float *buf, int64_t rowlen, int64_t jt0, int cnt, float *v, size_t plane)
{
    const __m512i base = _mm512_setr_epi32 (0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    s_v16 d [6][6];
    for (int a = 0; a < 6; a++) {
        const float *p = buf + a * rowlen + 4 * jt0;
        __m512 v0 = _mm512_loadu_ps (p), v1 = _mm512_loadu_ps (p + 16);
        __m512 v2 = _mm512_loadu_ps (p + 32), v3 = _mm512_loadu_ps (p + 48);
        __m512i v4 = _mm512_castps_si512 (_mm512_loadu_ps (p + 64));
        s_v16 c [6];
        for (int b = 0; b < 4; b++) {
            __m512i ix = _mm512_add_epi32 (base, _mm512_set1_epi32 (b));
            c [b] = (s_v16) _mm512_mask_blend_ps (0xFF00, _mm512_permutex2var_ps (v0, ix, v1),
                                                  _mm512_permutex2var_ps (v2, ix, v3));
        }
        //  columns 4 and 5 of tile k are columns 0 and 1 of tile k + 1
        c [4] = (s_v16) _mm512_castsi512_ps (_mm512_alignr_epi32 (v4, _mm512_castps_si512 ((__m512) c [0]), 1));
        c [5] = (s_v16) _mm512_castsi512_ps (_mm512_alignr_epi32 (_mm512_alignr_epi32 (v4, v4, 1),
                                                                  _mm512_castps_si512 ((__m512) c [1]), 1));
        S_BT (c [0], c [1], c [2], c [3], c [4], c [5], d [a]);
    }
    __mmask16 mask = (__mmask16) ((1u << cnt) - 1);
    for (int b = 0; b < 6; b++) {
        s_v16 o [6];
        S_BT (d [0][b], d [1][b], d [2][b], d [3][b], d [4][b], d [5][b], o);
        for (int a = 0; a < 6; a++)
            _mm512_mask_storeu_ps (v + (a * 6 + b) * plane, mask, (__m512) o [a]);
    }
}

//  16 tiles of one tile row (the first cnt exist): m[xi * plane + k] -> y rows (Wo apart),
//  rows < nr, columns < nc (counted from the first tile's column).
W_TARGET static void
s_output16 (const float *m, size_t plane, float bias, float *y, int64_t Wo, int nr, int64_t nc, int cnt)
{
    __mmask16 mask = (__mmask16) ((1u << cnt) - 1);
    s_v16 t [4][6];
    for (int b = 0; b < 6; b++) {
        s_v16 in [6], o [4];
        for (int a = 0; a < 6; a++)
            in [a] = (s_v16) _mm512_maskz_loadu_ps (mask, m + (a * 6 + b) * plane);
        S_AT (in [0], in [1], in [2], in [3], in [4], in [5], o);
        for (int r = 0; r < 4; r++)
            t [r][b] = o [r];
    }
    __m512 bv = _mm512_set1_ps (bias);
    for (int r = 0; r < nr; r++) {
        s_v16 o [4];
        S_AT (t [r][0], t [r][1], t [r][2], t [r][3], t [r][4], t [r][5], o);
        __m512 o0 = _mm512_add_ps ((__m512) o [0], bv), o1 = _mm512_add_ps ((__m512) o [1], bv);
        __m512 o2 = _mm512_add_ps ((__m512) o [2], bv), o3 = _mm512_add_ps ((__m512) o [3], bv);
        //  lanes are tiles; interleave to 4 x 16 consecutive columns
        __m512 t0 = _mm512_unpacklo_ps (o0, o1), t1 = _mm512_unpackhi_ps (o0, o1);
        __m512 t2 = _mm512_unpacklo_ps (o2, o3), t3 = _mm512_unpackhi_ps (o2, o3);
        __m512 u0 = _mm512_shuffle_ps (t0, t2, 0x44), u1 = _mm512_shuffle_ps (t0, t2, 0xEE);
        __m512 u2 = _mm512_shuffle_ps (t1, t3, 0x44), u3 = _mm512_shuffle_ps (t1, t3, 0xEE);
        __m512 a0 = _mm512_shuffle_f32x4 (u0, u1, 0x44), b0 = _mm512_shuffle_f32x4 (u2, u3, 0x44);
        __m512 a1 = _mm512_shuffle_f32x4 (u0, u1, 0xEE), b1 = _mm512_shuffle_f32x4 (u2, u3, 0xEE);
        __m512 out [4] = { _mm512_shuffle_f32x4 (a0, b0, 0x88), _mm512_shuffle_f32x4 (a0, b0, 0xDD),
                           _mm512_shuffle_f32x4 (a1, b1, 0x88), _mm512_shuffle_f32x4 (a1, b1, 0xDD) };
        float *yr = y + r * Wo;
        for (int q = 0; q < 4; q++) {
            int64_t n = nc - 16 * q;
            if (n <= 0)
                break;
            _mm512_mask_storeu_ps (yr + 16 * q, (__mmask16) (n >= 16? 0xFFFF: (1u << n) - 1), out [q]);
        }
    }
}
#endif

//  U for the temporal taps some output frame reads: with the vector kernels, of output
//  channels [12 t, 12 t + 12) packed 12 per k (U[xi][t][k][r]); else of output channel t,
//  plain (U[xi][co][k], for the sgemm).
static void
s_weights (void *ctx, int64_t t)
{
    const s_job_t *j = ctx;
    int64_t Cin = j->g->Cin, kt = j->g->kt;
#ifdef W_X86
    if (j->vec) {
        size_t plane = (size_t) (j->ncb * j->Kf * S_MR);
        int rows = j->Cout - t * S_MR < S_MR? (int) (j->Cout - t * S_MR): S_MR;
        for (int64_t dt = j->dmin; dt < j->dmax; dt++)
            for (int64_t ci = 0; ci < Cin; ci++)
                s_weight12 (j->w + ((t * S_MR * Cin + ci) * kt + dt) * 9, Cin * kt * 9, rows,
                            j->U + (t * j->Kf + dt * Cin + ci) * S_MR, plane);
        return;
    }
#endif
    size_t plane = (size_t) (j->Cout * j->Kf);
    for (int64_t dt = j->dmin; dt < j->dmax; dt++)
        for (int64_t ci = 0; ci < Cin; ci++)
            s_weight1 (j->w + ((t * Cin + ci) * kt + dt) * 9, j->U + t * j->Kf + dt * Cin + ci, plane);
}

//  V of input channel ci, input frame f, for the chunk's tiles.
static void
s_input (void *ctx, int64_t r)
{
    const s_job_t *j = ctx;
    const vdgx_conv_geom_t *g = j->g;
    int64_t f = r / g->Cin, ci = r % g->Cin, rl = j->rowlen;
    const float *x = j->x + (ci * g->T + f) * g->H * g->W;
    size_t plane = (size_t) (g->T * g->Cin * j->bt);
    float *v = j->V + (f * g->Cin + ci) * j->bt;
    float buf [6 * rl];
    for (int64_t i = j->row0; i < j->row0 + j->nt / j->tw; i++) {
        //  padded rows: buf[q] is input column q - pw
        for (int a = 0; a < 6; a++) {
            int64_t ih = 4 * i - g->ph + a;
            float *row = buf + a * rl;
            if (ih < 0 || ih >= g->H) {
                memset (row, 0, sizeof (float) * (size_t) rl);
                continue;
            }
            if (g->pw)
                row [0] = 0.0f;
            memcpy (row + g->pw, x + ih * g->W, sizeof (float) * (size_t) g->W);
            memset (row + g->pw + g->W, 0, sizeof (float) * (size_t) (rl - g->pw - g->W));
        }
        float *vi = v + (i - j->row0) * j->tw;
#ifdef W_X86
        if (j->vec) {
            for (int64_t jt = 0; jt < j->tw; jt += 16)
                s_input16 (buf, rl, jt, j->tw - jt < 16? (int) (j->tw - jt): 16, vi + jt, plane);
            continue;
        }
#endif
        for (int64_t jt = 0; jt < j->tw; jt++)
            s_input1 (buf, rl, jt, vi + jt, plane);
    }
}

//  M[xi][ot] = sum over the taps that read real frames of U . V (one sgemm, K = taps x Cin).
static void
s_gemm (void *ctx, int64_t r)
{
    const s_job_t *j = ctx;
    const vdgx_conv_geom_t *g = j->g;
    int64_t xi = r / g->To, ot = r % g->To;
    int64_t dlo = g->pt - ot > 0? g->pt - ot: 0, dhi = g->T + g->pt - ot;
    if (dhi > g->kt)
        dhi = g->kt;
    float *m = j->M + (xi * g->To + ot) * j->Cout * j->bt;
    if (dhi <= dlo) {
        for (int64_t co = 0; co < j->Cout; co++)
            memset (m + co * j->bt, 0, sizeof (float) * (size_t) j->nt);
        return;
    }
    int64_t K = (dhi - dlo) * g->Cin;
    const float *v = j->V + (xi * g->T + ot + dlo - g->pt) * g->Cin * j->bt;
#ifdef W_X86
    if (j->vec) {
        //  32 tiles at a time through every 12-row block of U (the B slab stays in L1 / L2)
        for (int64_t n0 = 0; n0 < j->nt; n0 += 32) {
            int nc = j->nt - n0 < 32? (int) (j->nt - n0): 32;
            for (int64_t cb = 0; cb < j->ncb; cb++) {
                const float *a = j->U + ((xi * j->ncb + cb) * j->Kf + dlo * g->Cin) * S_MR;
                int rows = j->Cout - cb * S_MR < S_MR? (int) (j->Cout - cb * S_MR): S_MR;
                (nc > 16? s_kern32: s_kern16) (K, a, v + n0, j->bt, m + cb * S_MR * j->bt + n0, j->bt, rows, nc);
            }
        }
        return;
    }
#endif
    vdgx_sgemm (NULL, false, j->Cout, j->nt, K, j->U + xi * j->Cout * j->Kf + dlo * g->Cin, j->Kf, v, j->bt,
                0.0f, m, j->bt);
}

//  y of output channel co, output frame ot, for the chunk's tiles.
static void
s_output (void *ctx, int64_t r)
{
    const s_job_t *j = ctx;
    const vdgx_conv_geom_t *g = j->g;
    int64_t ot = r / j->Cout, co = r % j->Cout;
    size_t plane = (size_t) (g->To * j->Cout * j->bt);
    const float *m = j->M + (ot * j->Cout + co) * j->bt;
    float *y = j->y + (co * g->To + ot) * g->Ho * g->Wo, bv = j->bias? j->bias [co]: 0.0f;
    for (int64_t i = j->row0; i < j->row0 + j->nt / j->tw; i++) {
        const float *mi = m + (i - j->row0) * j->tw;
        float *yi = y + 4 * i * g->Wo;
        int nr = g->Ho - 4 * i < 4? (int) (g->Ho - 4 * i): 4;
#ifdef W_X86
        if (j->vec) {
            for (int64_t jt = 0; jt < j->tw; jt += 16)
                s_output16 (mi + jt, plane, bv, yi + 4 * jt, g->Wo, nr, g->Wo - 4 * jt,
                            j->tw - jt < 16? (int) (j->tw - jt): 16);
            continue;
        }
#endif
        for (int64_t jt = 0; jt < j->tw; jt++)
            s_output1 (mi + jt, plane, bv, yi + 4 * jt, g->Wo, nr,
                       g->Wo - 4 * jt < 4? (int) (g->Wo - 4 * jt): 4);
    }
}

//  Tile rows per chunk: V + M of about S_BUDGET floats, at least one row.
static int64_t
s_rows (const vdgx_conv_geom_t *g, int64_t Cout)
{
    int64_t tw = (g->Wo + 3) / 4, th = (g->Ho + 3) / 4;
    int64_t rows = S_BUDGET / (S_XI * (g->T * g->Cin + g->To * Cout) * tw);
    return rows < 1? 1: rows > th? th: rows;
}

size_t
vdgx_cpu_winograd_floats (const vdgx_conv_geom_t *g, int64_t Cout)
{
    //  3x3 stride-1 convolutions, "same" (pads 1) or "valid" (pads 0, e.g. after an explicit
    //  reflect padding), large enough for the transforms to pay
    if (g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->st != 1 || g->ph < 0 || g->ph > 1
    ||  g->pw < 0 || g->pw > 1 || g->Ho != g->H + 2 * g->ph - 2 || g->Wo != g->W + 2 * g->pw - 2
    ||  g->W > 8192 || g->To < 1 || g->T < 1
    ||  ((g->Ho + 3) / 4) * ((g->Wo + 3) / 4) < S_MIN_TILES || g->Cin < 16)
        return 0;
    int64_t bt = s_rows (g, Cout) * ((g->Wo + 3) / 4);
    int64_t cpad = (Cout + S_MR - 1) / S_MR * S_MR;
    return (size_t) (S_XI * (g->kt * cpad * g->Cin + g->T * g->Cin * bt + g->To * Cout * bt));
}

void
vdgx_cpu_winograd (vdgx_cpu_pool_t *pool, const vdgx_conv_geom_t *g, int64_t Cout, const float *x,
                   const float *w, const float *bias, float *y, float *scratch)
{
    s_job_t j = { .g = g, .Cout = Cout, .Kf = g->kt * g->Cin, .tw = (g->Wo + 3) / 4, .th = (g->Ho + 3) / 4,
                  .x = x, .w = w, .bias = bias, .y = y };
    int64_t rows = s_rows (g, Cout);
    j.bt = rows * j.tw;
    j.rowlen = (4 * j.tw + 80 + 15) / 16 * 16;
    j.ncb = (Cout + S_MR - 1) / S_MR;
    j.U = scratch;
    j.V = j.U + S_XI * j.ncb * S_MR * j.Kf;
    j.M = j.V + S_XI * g->T * g->Cin * j.bt;
    //  taps read by some output frame: dt + ot - pt in [0, T) for an ot in [0, To)
    j.dmin = g->pt - (g->To - 1) > 0? g->pt - (g->To - 1): 0;
    j.dmax = g->T + g->pt < g->kt? g->T + g->pt: g->kt;
#ifdef W_X86
    j.vec = vdgx_cpu_isa () >= VDGX_CPU_ISA_AVX512 && !vdgx_wino_vec_disable;
#endif
    vdgx_cpu_pool_run (pool, j.vec? j.ncb: Cout, s_weights, &j);
    for (j.row0 = 0; j.row0 < j.th; j.row0 += rows) {
        j.nt = (j.th - j.row0 < rows? j.th - j.row0: rows) * j.tw;
        vdgx_cpu_pool_run (pool, g->T * g->Cin, s_input, &j);
        vdgx_cpu_pool_run (pool, S_XI * g->To, s_gemm, &j);
        vdgx_cpu_pool_run (pool, g->To * Cout, s_output, &j);
    }
}

//  ---------------------------------------------------------------------------------------
//  Selftest: the Winograd convolution (vector and scalar transforms) against a direct
//  double-precision convolution on random inputs, over odd sizes, tails of the 16-tile
//  groups, kt 1 and 3 with causal and two-sided temporal padding (padding taps left out).

void
vdgx_cpu_wino_test (bool verbose)
{
    printf (" * vdgx_cpu_wino: ");
    static const struct { int64_t Cin, Cout, T, H, W, kt; int pt, pb, ps; } cases [] = {
        { 16, 16, 1, 32, 32, 3, 2, 0, 1 },      //  one frame after two padding frames
        { 17, 19, 3, 33, 47, 3, 2, 0, 1 },      //  causal, odd sizes, partial tiles
        { 16, 24, 4, 21, 70, 3, 1, 1, 1 },      //  two-sided temporal padding
        { 20, 16, 3, 40, 36, 3, 1, 0, 1 },      //  one cached frame in front
        { 32, 17, 1, 45, 66, 1, 0, 0, 1 },      //  2-D (kt 1)
        { 16, 18, 3, 38, 41, 3, 0, 0, 0 },      //  "valid" (input padded by the caller)
        { 24, 3, 2, 20, 23, 3, 2, 0, 1 },       //  few output channels (a decoder's head)
    };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    vdgx_cpu_pool_t *pool = vdgx_cpu_pool_new (3);
    assert (pool);
    double worst [2] = { 0, 0 };
    bool have_vec = false;
    for (size_t s = 0; s < sizeof (cases) / sizeof (cases [0]); s++) {
        int64_t Ci = cases [s].Cin, Co = cases [s].Cout, T = cases [s].T, H = cases [s].H, W = cases [s].W;
        int64_t kt = cases [s].kt, To = T + cases [s].pt + cases [s].pb - kt + 1, ps = cases [s].ps;
        int64_t Ho = H + 2 * ps - 2, Wo = W + 2 * ps - 2;
        vdgx_conv_geom_t g = { Ci, T, H, W, kt, 3, 3, To, Ho, Wo, 1, 1, 1, cases [s].pt, (int) ps, (int) ps };
        size_t nf = vdgx_cpu_winograd_floats (&g, Co);
        assert (nf > 0);
        int64_t nx = Ci * T * H * W, nw = Co * Ci * kt * 9, ny = Co * To * Ho * Wo;
        float *x = malloc (sizeof (float) * (size_t) nx), *w = malloc (sizeof (float) * (size_t) nw);
        float *bias = malloc (sizeof (float) * (size_t) Co), *y = malloc (sizeof (float) * (size_t) ny);
        float *scratch = malloc (sizeof (float) * nf);
        double *ref = malloc (sizeof (double) * (size_t) ny), *mag = malloc (sizeof (double) * (size_t) ny);
        assert (x && w && bias && y && scratch && ref && mag);
        for (int64_t i = 0; i < nx; i++)
            x [i] = vdgx_test_randf (&seed);
        for (int64_t i = 0; i < nw; i++)
            w [i] = vdgx_test_randf (&seed);
        for (int64_t i = 0; i < Co; i++)
            bias [i] = vdgx_test_randf (&seed);
        vdgx_cpu_conv_ref (&g, Co, x, w, bias, ref, mag);
        for (int path = 0; path < 2; path++) {
            vdgx_wino_vec_disable = path == 1;
            for (int64_t i = 0; i < ny; i++)
                y [i] = NAN;
            vdgx_cpu_winograd (pool, &g, Co, x, w, bias, y, scratch);
            for (int64_t i = 0; i < ny; i++) {
                double e = fabs ((double) y [i] - ref [i]) / mag [i];
                if (!(e <= 2e-5))
                    fprintf (stderr, "\nwino case %zu path %d: element %lld got %.8g ref %.8g (|terms| %.3g)\n",
                             s, path, (long long) i, y [i], ref [i], mag [i]);
                assert (e <= 2e-5);
                if (e > worst [path])
                    worst [path] = e;
            }
        }
        vdgx_wino_vec_disable = false;
#ifdef W_X86
        have_vec = vdgx_cpu_isa () >= VDGX_CPU_ISA_AVX512;
#endif
        free (x); free (w); free (bias); free (y); free (scratch); free (ref); free (mag);
    }
    //  below the size threshold, or not 3x3 "same" stride 1: no Winograd
    vdgx_conv_geom_t small = { 16, 1, 8, 8, 3, 3, 3, 1, 8, 8, 1, 1, 1, 2, 1, 1 };
    vdgx_conv_geom_t strided = { 16, 1, 64, 64, 1, 3, 3, 1, 32, 32, 1, 2, 2, 0, 1, 1 };
    assert (vdgx_cpu_winograd_floats (&small, 16) == 0 && vdgx_cpu_winograd_floats (&strided, 16) == 0);
    vdgx_cpu_pool_destroy (&pool);
    if (verbose)
        printf ("\n   worst |y - y64| / sum |x w|: vector %.2e%s, scalar %.2e\n   ", worst [0],
                have_vec? "": " (no AVX-512: scalar again)", worst [1]);
    printf ("OK\n");
}
