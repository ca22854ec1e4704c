/*  vdgx_cpu_act.c - the CPU references of the vocoder activations: Snake / SnakeBeta with
    per-channel parameters (BigVGAN, the LTX-2 vocoder) and the elementwise functions of
    vdgx_op_unary (leaky ReLU, exact GELU, tanh, sigmoid). Work is split into tasks of about
    S_CHUNK elements (whole channel rows for snake).
*/
#include "vdgx_kernels_private.h"

#include <math.h>

#define S_CHUNK 16384

typedef struct {
    float *y;
    const float *x, *alpha, *beta;
    int64_t n, C, S, rows_per_task;
    bool logscale;
    vdgx_unary_t op;
    float param;
} s_act_job_t;

static void
s_snake_task (void *ctx, int64_t t)
{
    const s_act_job_t *j = ctx;
    int64_t r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task;
    r1 = r1 > j->n / j->S? j->n / j->S: r1;
    for (int64_t r = r0; r < r1; r++) {
        int64_t c = r % j->C;
        float a = j->alpha [c], bb = j->beta? j->beta [c]: j->alpha [c];
        if (j->logscale) {
            a = expf (a);
            bb = expf (bb);
        }
        float inv = 1.0f / (bb + 1e-9f);
        const float *x = j->x + r * j->S;
        float *y = j->y + r * j->S;
        for (int64_t i = 0; i < j->S; i++) {
            float s = sinf (a * x [i]);
            y [i] = x [i] + inv * s * s;
        }
    }
}

int
vdgx_cpu_snake (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *alpha,
                const vdgx_tensor_t *beta, bool logscale)
{
    const vdgx_tensor_t *ts [] = { y, x, alpha, beta };
    if (vdgx_cpu_check_f32 (b, "snake", 4, ts))
        return -1;
    s_act_job_t j = { .y = y->data, .x = x->data, .alpha = alpha->data, .beta = beta? beta->data: NULL,
                      .n = vdgx_tensor_numel (x), .C = x->shape [1], .logscale = logscale };
    if (j.n == 0)
        return 0;
    j.S = j.n / (x->shape [0] * j.C);
    j.rows_per_task = S_CHUNK / j.S > 1? S_CHUNK / j.S: 1;
    int64_t rows = j.n / j.S;
    vdgx_cpu_pool_run (vdgx_cpu_pool_of (b), (rows + j.rows_per_task - 1) / j.rows_per_task, s_snake_task, &j);
    return 0;
}

static void
s_unary_task (void *ctx, int64_t t)
{
    const s_act_job_t *j = ctx;
    int64_t i0 = t * S_CHUNK, i1 = i0 + S_CHUNK > j->n? j->n: i0 + S_CHUNK;
    const float *x = j->x;
    float *y = j->y, p = j->param;
    switch (j->op) {
        case VDGX_UNARY_LEAKY_RELU:
            for (int64_t i = i0; i < i1; i++)
                y [i] = x [i] >= 0.0f? x [i]: p * x [i];
            break;
        case VDGX_UNARY_GELU_ERF:
            for (int64_t i = i0; i < i1; i++)
                y [i] = 0.5f * x [i] * (1.0f + erff (x [i] * 0.70710678118654752f));
            break;
        case VDGX_UNARY_TANH:
            for (int64_t i = i0; i < i1; i++)
                y [i] = tanhf (x [i]);
            break;
        default:
            for (int64_t i = i0; i < i1; i++)
                y [i] = 1.0f / (1.0f + expf (-x [i]));
            break;
    }
}

int
vdgx_cpu_unary (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, vdgx_unary_t op, float param)
{
    const vdgx_tensor_t *ts [] = { y, x };
    if (vdgx_cpu_check_f32 (b, "unary", 2, ts))
        return -1;
    s_act_job_t j = { .y = y->data, .x = x->data, .n = vdgx_tensor_numel (x), .op = op, .param = param };
    vdgx_cpu_pool_run (vdgx_cpu_pool_of (b), (j.n + S_CHUNK - 1) / S_CHUNK, s_unary_task, &j);
    return 0;
}
