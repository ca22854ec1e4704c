/*  vdgx_cpu_conv1d.c - the CPU references of the 1D ops vocoders are built from: conv1d,
    transposed conv1d (both with stride, padding, dilation, groups) and pad1d.

    Convolutions with few terms per output (depthwise, FIR filters: Cin/groups * K small) run
    as direct loops, one task per output row. Wider ones go through sgemm: conv1d as im2col
    columns times the weight, a tile of output positions at a time; the transposed one as the
    input (transposed) times the weight, whose [L, Cout/groups * K] products are then added
    into the output rows at l*stride + k*dilation - pad_left (col2im). Tiles keep the scratch
    under S_TILE_FLOATS.
*/
#include "vdgx_kernels_private.h"

#include <stdlib.h>
#include <string.h>

#define S_TILE_FLOATS (4 << 20)
#define S_DIRECT_TERMS 48       //  Cin/groups * K up to this: direct loops

typedef struct {
    float *y;
    const float *x, *w, *bias;
    int64_t N, Cin, Cout, L, Lout, K, G, Cin_g, Cout_g;
    int64_t s, pl, d;
    //  gemm path
    float *cols;
    int64_t n, g, t0, tn;
} s_conv_job_t;

//  Checks dtypes and fills *j; runs the direct loops (direct_row per output row) when the
//  convolution has few terms per output. 1: the sgemm path is to run; 0: done; -1: error.
static int
s_start (vdgx_backend_t *b, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x,
         const vdgx_tensor_t *w, const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p,
         s_conv_job_t *j, void (*direct_row) (void *, int64_t))
{
    const vdgx_tensor_t *ts [] = { y, x, w, bias };
    if (vdgx_cpu_check_f32 (b, op, 4, ts))
        return -1;
    *j = (s_conv_job_t) {
        .y = y->data, .x = x->data, .w = w->data, .bias = bias? bias->data: NULL,
        .N = x->shape [0], .Cin = x->shape [1], .Cout = y->shape [1], .L = x->shape [2],
        .Lout = y->shape [2], .K = w->shape [2], .G = p->groups, .s = p->stride, .pl = p->pad_left,
        .d = p->dilation
    };
    j->Cin_g = j->Cin / j->G;
    j->Cout_g = j->Cout / j->G;
    if (j->N * j->Cout * j->Lout == 0)
        return 0;
    if (j->Cin_g * j->K <= S_DIRECT_TERMS) {
        vdgx_cpu_pool_run (vdgx_cpu_pool_of (b), j->N * j->Cout, direct_row, j);
        return 0;
    }
    return 1;
}

//  ---------------------------------------------------------------------------------------
//  conv1d

static void
s_conv_direct_row (void *ctx, int64_t r)
{
    const s_conv_job_t *j = ctx;
    int64_t n = r / j->Cout, co = r % j->Cout, g = co / j->Cout_g;
    float *y = j->y + r * j->Lout;
    const float *w = j->w + co * j->Cin_g * j->K;
    for (int64_t t = 0; t < j->Lout; t++) {
        float acc = j->bias? j->bias [co]: 0.0f;
        for (int64_t c = 0; c < j->Cin_g; c++) {
            const float *x = j->x + (n * j->Cin + g * j->Cin_g + c) * j->L;
            for (int64_t k = 0; k < j->K; k++) {
                int64_t i = t * j->s + k * j->d - j->pl;
                if (i >= 0 && i < j->L)
                    acc += x [i] * w [c * j->K + k];
            }
        }
        y [t] = acc;
    }
}

//  im2col row r = c*K + k of the tile [t0, t0 + tn) of batch n, group g
static void
s_im2col_row (void *ctx, int64_t r)
{
    const s_conv_job_t *j = ctx;
    int64_t c = r / j->K, k = r % j->K;
    const float *x = j->x + (j->n * j->Cin + j->g * j->Cin_g + c) * j->L;
    float *col = j->cols + r * j->tn;
    for (int64_t t = 0; t < j->tn; t++) {
        int64_t i = (j->t0 + t) * j->s + k * j->d - j->pl;
        col [t] = i >= 0 && i < j->L? x [i]: 0.0f;
    }
}

static void
s_bias_rows (void *ctx, int64_t r)
{
    const s_conv_job_t *j = ctx;
    float bv = j->bias [r % j->Cout], *y = j->y + r * j->Lout;
    for (int64_t t = 0; t < j->Lout; t++)
        y [t] += bv;
}

int
vdgx_cpu_conv1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
                 const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p)
{
    s_conv_job_t j;
    int rc = s_start (b, "conv1d", y, x, w, bias, p, &j, s_conv_direct_row);
    if (rc <= 0)
        return rc;
    vdgx_cpu_pool_t *pool = vdgx_cpu_pool_of (b);
    int64_t rows = j.Cin_g * j.K;
    int64_t tile = S_TILE_FLOATS / rows;
    tile = tile < 64? 64: tile > j.Lout? j.Lout: tile;
    j.cols = malloc (sizeof (float) * (size_t) (rows * tile));
    if (!j.cols) {
        vdgx_backend_set_error (b, "conv1d: out of memory for %lld x %lld columns", (long long) rows, (long long) tile);
        return -1;
    }
    for (j.n = 0; j.n < j.N; j.n++)
        for (j.g = 0; j.g < j.G; j.g++)
            for (j.t0 = 0; j.t0 < j.Lout; j.t0 += tile) {
                j.tn = j.Lout - j.t0 < tile? j.Lout - j.t0: tile;
                vdgx_cpu_pool_run (pool, rows, s_im2col_row, &j);
                vdgx_sgemm (pool, false, j.Cout_g, j.tn, rows, j.w + j.g * j.Cout_g * rows, rows, j.cols, j.tn,
                            0.0f, j.y + (j.n * j.Cout + j.g * j.Cout_g) * j.Lout + j.t0, j.Lout);
            }
    free (j.cols);
    if (j.bias)
        vdgx_cpu_pool_run (pool, j.N * j.Cout, s_bias_rows, &j);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  conv_transpose1d

static void
s_convt_direct_row (void *ctx, int64_t r)
{
    const s_conv_job_t *j = ctx;
    int64_t n = r / j->Cout, co = r % j->Cout, g = co / j->Cout_g, col = co % j->Cout_g;
    float *y = j->y + r * j->Lout;
    float bv = j->bias? j->bias [co]: 0.0f;
    for (int64_t t = 0; t < j->Lout; t++)
        y [t] = bv;
    for (int64_t c = 0; c < j->Cin_g; c++) {
        int64_t ci = g * j->Cin_g + c;
        const float *x = j->x + (n * j->Cin + ci) * j->L;
        const float *w = j->w + (ci * j->Cout_g + col) * j->K;
        for (int64_t l = 0; l < j->L; l++)
            for (int64_t k = 0; k < j->K; k++) {
                int64_t t = l * j->s + k * j->d - j->pl;
                if (t >= 0 && t < j->Lout)
                    y [t] += x [l] * w [k];
            }
    }
}

//  xT [tn, Cin_g] of the tile [t0, t0 + tn) of input positions (batch n, group g), row l
static void
s_transpose_row (void *ctx, int64_t l)
{
    const s_conv_job_t *j = ctx;
    float *dst = j->cols + l * j->Cin_g;
    for (int64_t c = 0; c < j->Cin_g; c++)
        dst [c] = j->x [(j->n * j->Cin + j->g * j->Cin_g + c) * j->L + j->t0 + l];
}

//  Adds the products P [tn, Cout_g*K] (after xT in cols) into output row co of the group.
static void
s_col2im_row (void *ctx, int64_t co)
{
    const s_conv_job_t *j = ctx;
    const float *P = j->cols + j->tn * j->Cin_g;
    int64_t ck = j->Cout_g * j->K;
    float *y = j->y + (j->n * j->Cout + j->g * j->Cout_g + co) * j->Lout;
    for (int64_t l = 0; l < j->tn; l++) {
        const float *pr = P + l * ck + co * j->K;
        for (int64_t k = 0; k < j->K; k++) {
            int64_t t = (j->t0 + l) * j->s + k * j->d - j->pl;
            if (t >= 0 && t < j->Lout)
                y [t] += pr [k];
        }
    }
}

static void
s_fill_rows (void *ctx, int64_t r)
{
    const s_conv_job_t *j = ctx;
    float bv = j->bias? j->bias [r % j->Cout]: 0.0f, *y = j->y + r * j->Lout;
    for (int64_t t = 0; t < j->Lout; t++)
        y [t] = bv;
}

int
vdgx_cpu_conv_transpose1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
                           const vdgx_tensor_t *bias, const vdgx_conv1d_params_t *p)
{
    s_conv_job_t j;
    int rc = s_start (b, "conv_transpose1d", y, x, w, bias, p, &j, s_convt_direct_row);
    if (rc <= 0)
        return rc;
    vdgx_cpu_pool_t *pool = vdgx_cpu_pool_of (b);
    int64_t ck = j.Cout_g * j.K;
    int64_t tile = S_TILE_FLOATS / (ck + j.Cin_g);
    tile = tile < 16? 16: tile > j.L? j.L: tile;
    j.cols = malloc (sizeof (float) * (size_t) (tile * (ck + j.Cin_g)));
    if (!j.cols) {
        vdgx_backend_set_error (b, "conv_transpose1d: out of memory for a %lld-position tile", (long long) tile);
        return -1;
    }
    vdgx_cpu_pool_run (pool, j.N * j.Cout, s_fill_rows, &j);
    for (j.n = 0; j.n < j.N; j.n++)
        for (j.g = 0; j.g < j.G; j.g++)
            for (j.t0 = 0; j.t0 < j.L; j.t0 += tile) {
                j.tn = j.L - j.t0 < tile? j.L - j.t0: tile;
                vdgx_cpu_pool_run (pool, j.tn, s_transpose_row, &j);
                //  P [tn, Cout_g*K] = xT [tn, Cin_g] . W_g [Cin_g, Cout_g*K]
                vdgx_sgemm (pool, false, j.tn, ck, j.Cin_g, j.cols, j.Cin_g, j.w + j.g * j.Cin_g * ck, ck,
                            0.0f, j.cols + j.tn * j.Cin_g, ck);
                vdgx_cpu_pool_run (pool, j.Cout_g, s_col2im_row, &j);
            }
    free (j.cols);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  pad1d

typedef struct {
    float *y;
    const float *x;
    int64_t L, left, right;
    vdgx_pad_mode_t mode;
} s_pad_job_t;

static void
s_pad_row (void *ctx, int64_t r)
{
    const s_pad_job_t *j = ctx;
    const float *x = j->x + r * j->L;
    int64_t Ly = j->L + j->left + j->right;
    float *y = j->y + r * Ly;
    for (int64_t t = 0; t < Ly; t++) {
        int64_t i = t - j->left;
        if (i < 0 || i >= j->L) {
            if (j->mode == VDGX_PAD_ZERO) {
                y [t] = 0.0f;
                continue;
            }
            if (j->mode == VDGX_PAD_REPLICATE)
                i = i < 0? 0: j->L - 1;
            else
                i = i < 0? -i: 2 * (j->L - 1) - i;
        }
        y [t] = x [i];
    }
}

int
vdgx_cpu_pad1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left, int right,
                vdgx_pad_mode_t mode)
{
    const vdgx_tensor_t *ts [] = { y, x };
    if (vdgx_cpu_check_f32 (b, "pad1d", 2, ts))
        return -1;
    s_pad_job_t j = { .y = y->data, .x = x->data, .L = x->shape [x->ndim - 1], .left = left,
                      .right = right, .mode = mode };
    int64_t Ly = j.L + left + right;
    if (Ly == 0)
        return 0;
    vdgx_cpu_pool_run (vdgx_cpu_pool_of (b), vdgx_tensor_numel (y) / Ly, s_pad_row, &j);
    return 0;
}
