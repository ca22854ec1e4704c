/*  vdgx_cpu_conv.c - convolution pieces of the CPU backend: im2col by whole output rows, the
    bias written ahead of the GEMM, and Winograd F(2x2,3x3) for 3x3 stride-1 convolutions.

    The CPU convolution (vdgx_cpu.c) is col[K, P] (K = Cin*kt*kh*kw rows, P a chunk of output
    positions) followed by one sgemm y[Cout, P] = w[Cout, K] . col through the BLAS. Building
    col element by element with a bounds check per element took as long as the GEMM (Wan-VAE
    decode profile); here each col row is filled one output row at a time: the in-range part
    of the input row is a memcpy (stride 1) or a strided gather, the padding a memset, and the
    causal temporal padding (frames before 0) is a whole zero row. The bias goes into y first
    (a write-only pass) and the GEMM accumulates onto it (beta = 1), which saves re-reading y.
*/
#include "vdgx_kernels_private.h"

#include <string.h>

typedef struct {
    const vdgx_conv_geom_t *g;
    const float *x;
    float *col;
    int64_t p0, np;         //  positions [p0, p0 + np): whole output rows (p0 % Wo == 0)
} s_im2col_job_t;

static void
s_im2col_row (void *ctx, int64_t r)
{
    const s_im2col_job_t *j = ctx;
    const vdgx_conv_geom_t *g = j->g;
    int64_t dw = r % g->kw, dh = (r / g->kw) % g->kh, dt = (r / (g->kw * g->kh)) % g->kt;
    int64_t ci = r / (g->kw * g->kh * g->kt);
    const float *x = j->x + ci * g->T * g->H * g->W;
    float *col = j->col + r * j->np;
    //  output columns [w_lo, w_hi) read inside the input row; the rest is padding
    int64_t w_lo = 0, w_hi = g->Wo;
    while (w_lo < g->Wo && w_lo * g->sw - g->pw + dw < 0)
        w_lo++;
    while (w_hi > w_lo && (w_hi - 1) * g->sw - g->pw + dw >= g->W)
        w_hi--;
    for (int64_t line = j->p0 / g->Wo; line < (j->p0 + j->np) / g->Wo; line++, col += g->Wo) {
        int64_t oh = line % g->Ho, ot = line / g->Ho;
        int64_t it = ot * g->st - g->pt + dt, ih = oh * g->sh - g->ph + dh;
        if (it < 0 || it >= g->T || ih < 0 || ih >= g->H || w_lo >= w_hi) {
            memset (col, 0, sizeof (float) * (size_t) g->Wo);
            continue;
        }
        const float *src = x + (it * g->H + ih) * g->W - g->pw + dw;
        if (w_lo > 0)
            memset (col, 0, sizeof (float) * (size_t) w_lo);
        if (g->sw == 1)
            memcpy (col + w_lo, src + w_lo, sizeof (float) * (size_t) (w_hi - w_lo));
        else
            for (int64_t ow = w_lo; ow < w_hi; ow++)
                col [ow] = src [ow * g->sw];
        if (w_hi < g->Wo)
            memset (col + w_hi, 0, sizeof (float) * (size_t) (g->Wo - w_hi));
    }
}

void
vdgx_cpu_im2col (vdgx_cpu_pool_t *pool, const vdgx_conv_geom_t *g, const float *x, float *col,
                 int64_t p0, int64_t np)
{
    s_im2col_job_t j = { g, x, col, p0, np };
    vdgx_cpu_pool_run (pool, g->Cin * g->kt * g->kh * g->kw, s_im2col_row, &j);
}

typedef struct {
    float *y;
    const float *bias;
    int64_t P;
} s_bias_job_t;

static void
s_bias_fill (void *ctx, int64_t c)
{
    const s_bias_job_t *j = ctx;
    float v = j->bias [c], *y = j->y + c * j->P;
    for (int64_t p = 0; p < j->P; p++)
        y [p] = v;
}

void
vdgx_cpu_fill_rows (vdgx_cpu_pool_t *pool, float *y, const float *bias, int64_t rows, int64_t P)
{
    s_bias_job_t j = { y, bias, P };
    vdgx_cpu_pool_run (pool, rows, s_bias_fill, &j);
}

//  ---------------------------------------------------------------------------------------
//  Winograd F(2x2, 3x3) for the 3x3 (x kt) stride-1 "same" convolutions that dominate the
//  Wan-VAE: each 2x2 block of outputs (a tile) costs 16 multiply-adds per (co, ci, tap)
//  instead of 36, so the GEMM work is 4/9 of im2col's (the transforms are additions only).
//    U[xi][dt][co][ci] = (G g G^T)[xi]    weights, per call (cheap next to the GEMMs)
//    V[xi][ci][f][tile] = (B^T d B)[xi]   input 4x4 patches, f over the padded frames
//    M[xi][co][t*bt + tile] = sum_dt U[xi][dt] . V[xi][.][t + dt]   16 x kt sgemm, K = Cin
//    y[co][t][2i..2i+1][2j..2j+1] = A^T M A + bias
//  Tiles are taken in chunks (bt tiles of every output frame) so V and M stay ~32 MB.
//  Rounding: the transforms add at most 4 terms with coefficients 1/2 or 1 (exact or one
//  rounding each), so results match im2col's within a few f32 ulps of the sum of |terms|.

typedef struct {
    const vdgx_conv_geom_t *g;
    int64_t Cout, tw, th, bt, t0, nt, Tp;
    const float *x, *w, *bias;
    float *y, *U, *V, *M;
} s_wino_job_t;

static void
s_wino_weights (void *ctx, int64_t co)
{
    const s_wino_job_t *j = ctx;
    int64_t Cin = j->g->Cin, kt = j->g->kt;
    for (int64_t ci = 0; ci < Cin; ci++)
        for (int64_t dt = 0; dt < kt; dt++) {
            const float *g = j->w + ((co * Cin + ci) * kt + dt) * 9;
            float t [4][3], u [4][4];
            for (int c = 0; c < 3; c++) {
                t [0][c] = g [c];
                t [1][c] = 0.5f * (g [c] + g [3 + c] + g [6 + c]);
                t [2][c] = 0.5f * (g [c] - g [3 + c] + g [6 + c]);
                t [3][c] = g [6 + c];
            }
            for (int r = 0; r < 4; r++) {
                u [r][0] = t [r][0];
                u [r][1] = 0.5f * (t [r][0] + t [r][1] + t [r][2]);
                u [r][2] = 0.5f * (t [r][0] - t [r][1] + t [r][2]);
                u [r][3] = t [r][2];
            }
            for (int xi = 0; xi < 16; xi++)
                j->U [((xi * kt + dt) * j->Cout + co) * Cin + ci] = u [xi / 4][xi % 4];
        }
}

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10)
#include <immintrin.h>
#define S_WINO_X86 1

//  16 tiles of one tile row at once, all inside the image (2 j0 - 1 >= 0, 2 j0 + 32 < W,
//  rows 2 i - 1 .. 2 i + 2 inside): patch column b of tile j0 + k is x[2 (j0 + k) - 1 + b],
//  taken from two 32-float loads by even / odd selection.
__attribute__ ((target ("avx512f"))) static void
s_wino_input16 (const float *x, int64_t W, int64_t i, int64_t j0, float *v, size_t plane)
{
    const __m512i even = _mm512_setr_epi32 (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32 (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 d [4][4];
    for (int a = 0; a < 4; a++) {
        const float *row = x + (2 * i - 1 + a) * W + 2 * j0 - 1;
        __m512 u0 = _mm512_loadu_ps (row), u1 = _mm512_loadu_ps (row + 16);
        __m512 w0 = _mm512_loadu_ps (row + 2), w1 = _mm512_loadu_ps (row + 18);
        d [a][0] = _mm512_permutex2var_ps (u0, even, u1);
        d [a][1] = _mm512_permutex2var_ps (u0, odd, u1);
        d [a][2] = _mm512_permutex2var_ps (w0, even, w1);
        d [a][3] = _mm512_permutex2var_ps (w0, odd, w1);
    }
    __m512 t [4][4];
    for (int b = 0; b < 4; b++) {
        t [0][b] = _mm512_sub_ps (d [0][b], d [2][b]);
        t [1][b] = _mm512_add_ps (d [1][b], d [2][b]);
        t [2][b] = _mm512_sub_ps (d [2][b], d [1][b]);
        t [3][b] = _mm512_sub_ps (d [1][b], d [3][b]);
    }
    for (int a = 0; a < 4; a++) {
        _mm512_storeu_ps (v + (a * 4 + 0) * plane, _mm512_sub_ps (t [a][0], t [a][2]));
        _mm512_storeu_ps (v + (a * 4 + 1) * plane, _mm512_add_ps (t [a][1], t [a][2]));
        _mm512_storeu_ps (v + (a * 4 + 2) * plane, _mm512_sub_ps (t [a][2], t [a][1]));
        _mm512_storeu_ps (v + (a * 4 + 3) * plane, _mm512_sub_ps (t [a][1], t [a][3]));
    }
}
#endif

//  V for input channel ci, padded frame f (frames before 0 / past T are zero).
static void
s_wino_input (void *ctx, int64_t r)
{
    const s_wino_job_t *j = ctx;
    const vdgx_conv_geom_t *g = j->g;
    int64_t ci = r / j->Tp, f = r % j->Tp, it = f - g->pt;
    size_t plane = (size_t) (g->Cin * j->Tp * j->bt);
    float *v = j->V + (ci * j->Tp + f) * j->bt;
    if (it < 0 || it >= g->T) {
        for (int xi = 0; xi < 16; xi++)
            memset (v + xi * plane, 0, sizeof (float) * (size_t) j->nt);
        return;
    }
    const float *x = j->x + (ci * g->T + it) * g->H * g->W;
#ifdef S_WINO_X86
    static int avx512 = -1;
    if (avx512 < 0)
        avx512 = __builtin_cpu_supports ("avx512f");
#endif
    for (int64_t n = 0; n < j->nt; n++) {
        int64_t tile = j->t0 + n, i = tile / j->tw, jj = tile % j->tw;
#ifdef S_WINO_X86
        if (avx512 && n + 16 <= j->nt && jj >= 1 && jj + 16 <= j->tw && 2 * (jj + 15) + 2 < g->W
        &&  2 * i - 1 >= 0 && 2 * i + 2 < g->H) {
            s_wino_input16 (x, g->W, i, jj, v + n, plane);
            n += 15;
            continue;
        }
#endif
        float d [4][4];
        for (int a = 0; a < 4; a++) {
            int64_t ih = 2 * i - 1 + a;
            for (int b = 0; b < 4; b++) {
                int64_t iw = 2 * jj - 1 + b;
                d [a][b] = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W? x [ih * g->W + iw]: 0.0f;
            }
        }
        float t [4][4];
        for (int b = 0; b < 4; b++) {
            t [0][b] = d [0][b] - d [2][b];
            t [1][b] = d [1][b] + d [2][b];
            t [2][b] = d [2][b] - d [1][b];
            t [3][b] = d [1][b] - d [3][b];
        }
        for (int a = 0; a < 4; a++) {
            v [(a * 4 + 0) * plane + n] = t [a][0] - t [a][2];
            v [(a * 4 + 1) * plane + n] = t [a][1] + t [a][2];
            v [(a * 4 + 2) * plane + n] = t [a][2] - t [a][1];
            v [(a * 4 + 3) * plane + n] = t [a][1] - t [a][3];
        }
    }
}

//  y for output channel co, output frame ot.
static void
s_wino_output (void *ctx, int64_t r)
{
    const s_wino_job_t *j = ctx;
    const vdgx_conv_geom_t *g = j->g;
    int64_t co = r / g->To, ot = r % g->To;
    size_t plane = (size_t) (j->Cout * g->To * j->bt);
    const float *m = j->M + (co * g->To + ot) * j->bt;
    float *y = j->y + (co * g->To + ot) * g->Ho * g->Wo, bv = j->bias? j->bias [co]: 0.0f;
    for (int64_t n = 0; n < j->nt; n++) {
        int64_t tile = j->t0 + n, i = tile / j->tw, jj = tile % j->tw;
        float s [4][4], t [2][4];
        for (int xi = 0; xi < 16; xi++)
            s [xi / 4][xi % 4] = m [xi * plane + n];
        for (int b = 0; b < 4; b++) {
            t [0][b] = s [0][b] + s [1][b] + s [2][b];
            t [1][b] = s [1][b] - s [2][b] - s [3][b];
        }
        for (int a = 0; a < 2 && 2 * i + a < g->Ho; a++) {
            float o0 = t [a][0] + t [a][1] + t [a][2], o1 = t [a][1] - t [a][2] - t [a][3];
            float *yr = y + (2 * i + a) * g->Wo + 2 * jj;
            yr [0] = o0 + bv;
            if (2 * jj + 1 < g->Wo)
                yr [1] = o1 + bv;
        }
    }
}

//  Tiles per chunk for a scratch of about 8M floats (V and M), at least one tile row.
static int64_t
s_wino_bt (const vdgx_conv_geom_t *g, int64_t Cout)
{
    int64_t Tp = g->To + g->kt - 1, tw = (g->Wo + 1) / 2;
    int64_t bt = (8 << 20) / (16 * (g->Cin * Tp + Cout * g->To));
    bt = bt / tw * tw;
    bt = bt < tw? tw: bt;
    return bt < tw * ((g->Ho + 1) / 2)? bt: tw * ((g->Ho + 1) / 2);
}

size_t
vdgx_cpu_winograd_floats (const vdgx_conv_geom_t *g, int64_t Cout)
{
    //  3x3 "same" stride-1 convolutions, large enough for the transforms to pay
    if (g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->st != 1 || g->ph != 1 || g->pw != 1
    ||  g->Ho != g->H || g->Wo != g->W
    ||  g->To * g->Ho * g->Wo < 4096 || g->Cin < 16 || Cout < 16)
        return 0;
    int64_t Tp = g->To + g->kt - 1, bt = s_wino_bt (g, Cout);
    return (size_t) (16 * g->kt * Cout * g->Cin + 16 * g->Cin * Tp * bt + 16 * Cout * g->To * bt);
}

void
vdgx_cpu_winograd (vdgx_cpu_pool_t *pool, const vdgx_conv_geom_t *g, int64_t Cout, const float *x,
                   const float *w, const float *bias, float *y, float *scratch)
{
    s_wino_job_t j = { .g = g, .Cout = Cout, .tw = (g->Wo + 1) / 2, .th = (g->Ho + 1) / 2,
                       .Tp = g->To + g->kt - 1, .x = x, .w = w, .bias = bias, .y = y };
    j.bt = s_wino_bt (g, Cout);
    j.U = scratch;
    j.V = j.U + 16 * g->kt * Cout * g->Cin;
    j.M = j.V + 16 * g->Cin * j.Tp * j.bt;
    vdgx_cpu_pool_run (pool, Cout, s_wino_weights, &j);
    int64_t tiles = j.tw * j.th;
    for (j.t0 = 0; j.t0 < tiles; j.t0 += j.bt) {
        j.nt = tiles - j.t0 < j.bt? tiles - j.t0: j.bt;
        vdgx_cpu_pool_run (pool, g->Cin * j.Tp, s_wino_input, &j);
        for (int xi = 0; xi < 16; xi++)
            for (int64_t dt = 0; dt < g->kt; dt++)
                vdgx_sgemm (pool, false, Cout, g->To * j.bt, g->Cin,
                            j.U + (xi * g->kt + dt) * Cout * g->Cin, g->Cin,
                            j.V + xi * g->Cin * j.Tp * j.bt + dt * j.bt, j.Tp * j.bt, dt? 1.0f: 0.0f,
                            j.M + xi * Cout * g->To * j.bt, g->To * j.bt);
        vdgx_cpu_pool_run (pool, Cout * g->To, s_wino_output, &j);
    }
}

bool vdgx_winograd_disable = false;
