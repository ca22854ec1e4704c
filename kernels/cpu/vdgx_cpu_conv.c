/*  vdgx_cpu_conv.c - convolution pieces of the CPU backend: im2col by whole output rows, the
    bias written ahead of the GEMM (3x3 stride-1 convolutions take Winograd, vdgx_cpu_wino.c).

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
