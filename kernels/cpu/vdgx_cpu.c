/*  vdgx_cpu.c - the CPU backend: every op in f32, multithreaded over a vdgx_cpu_pool.
    It is the oracle the other backends are tested against, so each op stays close to its
    definition in vdgx_backend.h; speed comes from sgemm (linear, matmul, conv), blocking
    (attention) and splitting rows over the pool. The op wrappers have already checked
    shapes and dtypes when these functions run.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vdgx_backend_weight_upload_generic (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host);
void vdgx_backend_weight_free_generic (vdgx_backend_t *b, vdgx_weight_t *w);

typedef struct {
    vdgx_cpu_pool_t *pool;
    float *scratch;             //  dequantized weight panels, im2col columns: kept across
    size_t scratch_size;        //  calls so big buffers are not mapped and faulted each time
} s_cpu_t;

//  The backend's scratch buffer of at least n floats (one op uses it at a time).
static float *
s_scratch (vdgx_backend_t *b, size_t n)
{
    s_cpu_t *cpu = vdgx_backend_priv (b);
    if (cpu->scratch_size < n) {
        free (cpu->scratch);
        cpu->scratch = malloc (n * sizeof (float));
        cpu->scratch_size = cpu->scratch? n: 0;
    }
    return cpu->scratch;
}

static vdgx_cpu_pool_t *
s_pool (vdgx_backend_t *b)
{
    return ((s_cpu_t *) vdgx_backend_priv (b))->pool;
}

vdgx_cpu_pool_t *
vdgx_cpu_pool_of (vdgx_backend_t *b)
{
    return s_pool (b);
}

int
vdgx_cpu_threads (vdgx_backend_t *b)
{
    return vdgx_cpu_pool_threads (s_pool (b));
}

int
vdgx_cpu_check_f32 (vdgx_backend_t *b, const char *op, int n, const vdgx_tensor_t *const *ts)
{
    for (int i = 0; i < n; i++)
        if (ts [i] && ts [i]->dtype != VDGX_DTYPE_F32) {
            vdgx_backend_set_error (b, "%s: the CPU backend computes in F32, got %s", op,
                                    vdgx_dtype_name (ts [i]->dtype));
            return -1;
        }
    return 0;
}
#define S_F32(op, ...) do { \
    const vdgx_tensor_t *ts_ [] = { __VA_ARGS__ }; \
    if (vdgx_cpu_check_f32 (b, op, (int) (sizeof (ts_) / sizeof (ts_ [0])), ts_)) return -1; \
} while (0)

//  Elementwise loops are split into chunks of this many elements.
#define S_CHUNK 16384

static int64_t
s_chunks (int64_t n)
{
    return (n + S_CHUNK - 1) / S_CHUNK;
}

//  ---------------------------------------------------------------------------------------
//  Memory

static void *
s_alloc (vdgx_backend_t *b, size_t bytes)
{
    (void) b;
    size_t n = (bytes + 63) & ~(size_t) 63;
    return aligned_alloc (64, n? n: 64);
}

static void s_free (vdgx_backend_t *b, void *ptr) { (void) b; free (ptr); }

static int
s_memcpy (vdgx_backend_t *b, void *dst, const void *src, size_t bytes)
{
    (void) b;
    if (bytes)
        memmove (dst, src, bytes);
    return 0;
}

static int s_synchronize (vdgx_backend_t *b) { (void) b; return 0; }

//  ---------------------------------------------------------------------------------------
//  cast

typedef struct {
    void *y;
    const void *x;
    vdgx_dtype_t yd, xd;
    int64_t n;
} s_cast_job_t;

static void
s_cast_chunk (void *ctx, int64_t c)
{
    const s_cast_job_t *j = ctx;
    int64_t i0 = c * S_CHUNK, n = j->n - i0 < S_CHUNK? j->n - i0: S_CHUNK;
    const uint8_t *x = (const uint8_t *) j->x + i0 * (int64_t) vdgx_dtype_size (j->xd);
    uint8_t *y = (uint8_t *) j->y + i0 * (int64_t) vdgx_dtype_size (j->yd);
    float tmp [S_CHUNK];
    vdgx_convert_to_f32 (tmp, x, j->xd, (size_t) n);
    vdgx_convert_from_f32 (y, j->yd, tmp, (size_t) n);
}

static int
s_cast (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    if (y->dtype == VDGX_DTYPE_F64 || x->dtype == VDGX_DTYPE_F64 || y->data == x->data) {
        if (y->data == x->data && y->dtype != x->dtype) {
            vdgx_backend_set_error (b, "cast: in-place cast between dtypes is not supported");
            return -1;
        }
    }
    s_cast_job_t j = { y->data, x->data, y->dtype, x->dtype, vdgx_tensor_numel (x) };
    if (y->data == x->data)
        return 0;
    vdgx_cpu_pool_run (s_pool (b), s_chunks (j.n), s_cast_chunk, &j);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  linear: f32 weights go straight to sgemm; other formats are dequantized a panel of rows
//  at a time into scratch and multiplied panel by panel (never the whole weight in f32).

typedef struct {
    const vdgx_weight_t *w;
    int64_t r0;
    float *dst;
} s_deq_job_t;

static void
s_deq_row (void *ctx, int64_t r)
{
    const s_deq_job_t *j = ctx;
    vdgx_weight_dequant_row (j->w, j->r0 + r, j->dst + r * j->w->k);
}

typedef struct {
    float *y;
    const float *bias;
    int64_t M, N;
} s_bias_job_t;

static void
s_bias_row (void *ctx, int64_t i)
{
    const s_bias_job_t *j = ctx;
    float *y = j->y + i * j->N;
    for (int64_t n = 0; n < j->N; n++)
        y [n] += j->bias [n];
}

//  Few rows of x against a quantized weight (text embeddings, time embeddings, decode-like
//  steps): each task dequantizes a run of weight rows into its own buffer and dots them with
//  every x row, so the weight is read once and never written back as f32.
#define S_SKINNY_ROWS 32

typedef struct {
    const vdgx_weight_t *w;
    const float *x, *bias;
    float *y;
    int64_t M;
} s_skinny_job_t;

static void
s_skinny_task (void *ctx, int64_t t)
{
    const s_skinny_job_t *j = ctx;
    int64_t K = j->w->k, N = j->w->n, n0 = t * S_SKINNY_ROWS;
    int64_t n1 = n0 + S_SKINNY_ROWS < N? n0 + S_SKINNY_ROWS: N;
    float *row = malloc (sizeof (float) * (size_t) K);
    if (!row)
        abort ();
    for (int64_t n = n0; n < n1; n++) {
        vdgx_weight_dequant_row (j->w, n, row);
        for (int64_t m = 0; m < j->M; m++)
            j->y [m * N + n] = vdgx_dot_f32 (j->x + m * K, row, K) + (j->bias? j->bias [n]: 0.0f);
    }
    free (row);
}

static int
s_linear (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_weight_t *w,
          const vdgx_tensor_t *bias)
{
    S_F32 ("linear", y, x, bias);
    int64_t K = w->k, N = w->n, M = vdgx_tensor_numel (x) / K;
    float *Y = y->data;
    const float *X = x->data;
    if (w->fmt != VDGX_WFMT_F32 && M <= 4 && !vdgx_qgemm_available ()) {
        s_skinny_job_t sj = { w, X, bias? bias->data: NULL, Y, M };
        vdgx_cpu_pool_run (s_pool (b), (N + S_SKINNY_ROWS - 1) / S_SKINNY_ROWS, s_skinny_task, &sj);
        return 0;
    }
    int q = w->fmt == VDGX_WFMT_F32? 1: vdgx_cpu_qlinear (s_pool (b), Y, X, M, w, bias? bias->data: NULL);
    if (q < 0) {
        vdgx_backend_set_error (b, "linear: out of memory");
        return -1;
    }
    if (q == 0)
        return 0;
    if (w->fmt == VDGX_WFMT_F32)
        vdgx_sgemm (s_pool (b), true, M, N, K, X, K, w->data, K, 0.0f, Y, N);
    else {
        //  Panels of about 4 MB of f32 rows: big enough for an efficient sgemm, small
        //  enough to stay in the last-level cache while it is used.
        int64_t nb = (4 << 20) / (K * 4);
        if (nb < 16)
            nb = 16;
        if (nb > N)
            nb = N;
        float *panel = s_scratch (b, (size_t) (nb * K));
        if (!panel) {
            vdgx_backend_set_error (b, "linear: out of memory for a %lld x %lld panel", (long long) nb, (long long) K);
            return -1;
        }
        for (int64_t n0 = 0; n0 < N; n0 += nb) {
            int64_t rows = N - n0 < nb? N - n0: nb;
            s_deq_job_t dj = { w, n0, panel };
            vdgx_cpu_pool_run (s_pool (b), rows, s_deq_row, &dj);
            vdgx_sgemm (s_pool (b), true, M, rows, K, X, K, panel, K, 0.0f, Y + n0, N);
        }
    }
    if (bias) {
        s_bias_job_t bj = { Y, bias->data, M, N };
        vdgx_cpu_pool_run (s_pool (b), M, s_bias_row, &bj);
    }
    return 0;
}

static int
s_matmul (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bm)
{
    S_F32 ("matmul", y, a, bm);
    int64_t B = a->shape [0], M = a->shape [1], K = a->shape [2], N = bm->shape [2];
    for (int64_t i = 0; i < B; i++)
        vdgx_sgemm (s_pool (b), false, M, N, K, (const float *) a->data + i * M * K, K,
                    (const float *) bm->data + i * K * N, N, 0.0f, (float *) y->data + i * M * N, N);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Norms

typedef struct {
    float *y;
    const float *x, *gamma, *beta;
    int64_t R, C, S;
    float eps;
    bool rms;
    bool silu;          //  channel_rmsnorm_silu: SiLU on each row piece while it is in L1
} s_norm_job_t;

static void
s_norm_row (void *ctx, int64_t r)
{
    const s_norm_job_t *j = ctx;
    const float *x = j->x + r * j->C;
    float *y = j->y + r * j->C;
    float mean = 0, var = 0;
    if (j->rms) {
        for (int64_t c = 0; c < j->C; c++)
            var += x [c] * x [c];
        var /= (float) j->C;
    }
    else {
        for (int64_t c = 0; c < j->C; c++)
            mean += x [c];
        mean /= (float) j->C;
        for (int64_t c = 0; c < j->C; c++)
            var += (x [c] - mean) * (x [c] - mean);
        var /= (float) j->C;
    }
    //  eps < 0: added to the standard deviation (the op table's definition)
    float inv = j->eps < 0? 1.0f / (sqrtf (var) - j->eps): 1.0f / sqrtf (var + j->eps);
    for (int64_t c = 0; c < j->C; c++) {
        float v = (x [c] - mean) * inv;
        if (j->gamma)
            v *= j->gamma [c];
        if (j->beta)
            v += j->beta [c];
        y [c] = v;
    }
}

static int
s_layernorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma,
             const vdgx_tensor_t *beta, float eps)
{
    S_F32 ("layernorm", y, x, gamma, beta);
    int64_t C = x->shape [x->ndim - 1];
    s_norm_job_t j = { y->data, x->data, gamma? gamma->data: NULL, beta? beta->data: NULL,
                       C? vdgx_tensor_numel (x) / C: 0, C, 0, eps, false, false };
    vdgx_cpu_pool_run (s_pool (b), j.R, s_norm_row, &j);
    return 0;
}

static int
s_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma, float eps)
{
    S_F32 ("rmsnorm", y, x, gamma);
    int64_t C = x->shape [x->ndim - 1];
    s_norm_job_t j = { y->data, x->data, gamma? gamma->data: NULL, NULL,
                       C? vdgx_tensor_numel (x) / C: 0, C, 0, eps, true, false };
    vdgx_cpu_pool_run (s_pool (b), j.R, s_norm_row, &j);
    return 0;
}

#define S_CS 256        //  spatial positions per channel_rmsnorm task

static void
s_chnorm_task (void *ctx, int64_t t)
{
    const s_norm_job_t *j = ctx;
    int64_t sblocks = (j->S + S_CS - 1) / S_CS;
    int64_t n = t / sblocks, s0 = (t % sblocks) * S_CS;
    int64_t ns = j->S - s0 < S_CS? j->S - s0: S_CS;
    float ss [S_CS] = { 0 };
    const float *x = j->x + n * j->C * j->S + s0;
    float *y = j->y + n * j->C * j->S + s0;
    for (int64_t c = 0; c < j->C; c++)
        for (int64_t s = 0; s < ns; s++)
            ss [s] += x [c * j->S + s] * x [c * j->S + s];
    float root = sqrtf ((float) j->C);
    for (int64_t s = 0; s < ns; s++) {
        float norm = sqrtf (ss [s]);
        ss [s] = root / (norm > 1e-12f? norm: 1e-12f);
    }
    for (int64_t c = 0; c < j->C; c++) {
        float g = j->gamma? j->gamma [c]: 1.0f, be = j->beta? j->beta [c]: 0.0f;
        float *yc = y + c * j->S;
        for (int64_t s = 0; s < ns; s++)
            yc [s] = x [c * j->S + s] * ss [s] * g + be;
        if (j->silu && !vdgx_cpu_ew_fast (VDGX_CPU_EW_SILU, yc, yc, ns))
            for (int64_t s = 0; s < ns; s++)
                yc [s] = yc [s] / (1.0f + expf (-yc [s]));
    }
}

static int
s_chnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma,
          const vdgx_tensor_t *beta, bool silu)
{
    int64_t N = x->shape [0], C = x->shape [1];
    int64_t S = (N * C) != 0? vdgx_tensor_numel (x) / (N * C): 0;
    s_norm_job_t j = { y->data, x->data, gamma? gamma->data: NULL, beta? beta->data: NULL, N, C, S, 0, true, silu };
    if (S == 0)
        return 0;
    vdgx_cpu_pool_run (s_pool (b), N * ((S + S_CS - 1) / S_CS), s_chnorm_task, &j);
    return 0;
}

static int
s_channel_rmsnorm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *gamma,
                   const vdgx_tensor_t *beta)
{
    S_F32 ("channel_rmsnorm", y, x, gamma, beta);
    return s_chnorm (b, y, x, gamma, beta, false);
}

static int
s_channel_rmsnorm_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                        const vdgx_tensor_t *gamma, const vdgx_tensor_t *beta)
{
    S_F32 ("channel_rmsnorm_silu", y, x, gamma, beta);
    return s_chnorm (b, y, x, gamma, beta, true);
}

//  ---------------------------------------------------------------------------------------
//  Row-broadcast ops over x[B,L,C]

typedef struct {
    float *y;
    const float *x, *a, *c;
    int64_t L, C;
} s_rowb_job_t;

static void
s_modulate_row (void *ctx, int64_t r)
{
    const s_rowb_job_t *j = ctx;
    int64_t bi = r / j->L;
    const float *x = j->x + r * j->C, *shift = j->a + bi * j->C, *scale = j->c + bi * j->C;
    float *y = j->y + r * j->C;
    for (int64_t c = 0; c < j->C; c++)
        y [c] = x [c] * (1.0f + scale [c]) + shift [c];
}

static int
s_modulate (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *shift,
            const vdgx_tensor_t *scale)
{
    S_F32 ("modulate", y, x, shift, scale);
    s_rowb_job_t j = { y->data, x->data, shift->data, scale->data, x->shape [1], x->shape [2] };
    vdgx_cpu_pool_run (s_pool (b), x->shape [0] * x->shape [1], s_modulate_row, &j);
    return 0;
}

static void
s_gres_row (void *ctx, int64_t r)
{
    const s_rowb_job_t *j = ctx;
    int64_t bi = r / j->L;
    float *x = j->y + r * j->C;
    const float *y = j->x + r * j->C, *gate = j->a? j->a + bi * j->C: NULL;
    if (gate)
        for (int64_t c = 0; c < j->C; c++)
            x [c] += y [c] * gate [c];
    else
        for (int64_t c = 0; c < j->C; c++)
            x [c] += y [c];
}

static int
s_gated_residual (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y, const vdgx_tensor_t *gate)
{
    S_F32 ("gated_residual", x, y, gate);
    s_rowb_job_t j = { x->data, y->data, gate? gate->data: NULL, NULL, x->shape [1], x->shape [2] };
    vdgx_cpu_pool_run (s_pool (b), x->shape [0] * x->shape [1], s_gres_row, &j);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Elementwise

typedef enum { S_GELU, S_SILU, S_ADD, S_MUL, S_CLAMP } s_ew_kind_t;

typedef struct {
    s_ew_kind_t kind;
    float *y;
    const float *a, *b;
    int64_t n, nb;
    float f [4];
} s_ew_job_t;

static void
s_ew_chunk (void *ctx, int64_t c)
{
    const s_ew_job_t *j = ctx;
    int64_t i0 = c * S_CHUNK, i1 = i0 + S_CHUNK < j->n? i0 + S_CHUNK: j->n;
    float *y = j->y;
    const float *a = j->a;
    switch (j->kind) {
        case S_GELU:
            if (vdgx_cpu_ew_fast (VDGX_CPU_EW_GELU_TANH, y + i0, a + i0, i1 - i0))
                break;
            for (int64_t i = i0; i < i1; i++) {
                float x = a [i];
                y [i] = 0.5f * x * (1.0f + tanhf (0.7978845608028654f * (x + 0.044715f * x * x * x)));
            }
            break;
        case S_SILU:
            if (vdgx_cpu_ew_fast (VDGX_CPU_EW_SILU, y + i0, a + i0, i1 - i0))
                break;
            for (int64_t i = i0; i < i1; i++)
                y [i] = a [i] / (1.0f + expf (-a [i]));
            break;
        case S_ADD:
        case S_MUL: {
            //  b repeats every nb elements; walk it without a division per element
            int64_t bi = i0 % j->nb;
            for (int64_t i = i0; i < i1; i++) {
                y [i] = j->kind == S_ADD? a [i] + j->f [0] * j->b [bi]: a [i] * j->b [bi];
                if (++bi == j->nb)
                    bi = 0;
            }
            break;
        }
        case S_CLAMP:
            for (int64_t i = i0; i < i1; i++) {
                float v = a [i] * j->f [0] + j->f [1];
                y [i] = v < j->f [2]? j->f [2]: (v > j->f [3]? j->f [3]: v);
            }
            break;
    }
}

static int
s_ew (vdgx_backend_t *b, s_ew_kind_t kind, vdgx_tensor_t *y, const vdgx_tensor_t *a,
      const vdgx_tensor_t *bt, float f0, float f1, float f2, float f3)
{
    s_ew_job_t j = { kind, y->data, a->data, bt? bt->data: NULL, vdgx_tensor_numel (a),
                     bt? vdgx_tensor_numel (bt): 0, { f0, f1, f2, f3 } };
    vdgx_cpu_pool_run (s_pool (b), s_chunks (j.n), s_ew_chunk, &j);
    return 0;
}

static int s_gelu_tanh (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{ S_F32 ("gelu_tanh", y, x); return s_ew (b, S_GELU, y, x, NULL, 0, 0, 0, 0); }
static int s_silu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{ S_F32 ("silu", y, x); return s_ew (b, S_SILU, y, x, NULL, 0, 0, 0, 0); }
static int s_add_scaled (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt, float alpha)
{ S_F32 ("add_scaled", y, a, bt); return s_ew (b, S_ADD, y, a, bt, alpha, 0, 0, 0); }
static int s_mul (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt)
{ S_F32 ("mul", y, a, bt); return s_ew (b, S_MUL, y, a, bt, 0, 0, 0, 0); }
static int s_affine_clamp (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float alpha, float beta, float lo, float hi)
{ S_F32 ("affine_clamp", y, x); return s_ew (b, S_CLAMP, y, x, NULL, alpha, beta, lo, hi); }

//  ---------------------------------------------------------------------------------------
//  rope

typedef struct {
    float *y;
    const float *x, *cos, *sin;
    int64_t L, H, D;
    vdgx_rope_layout_t layout;
} s_rope_job_t;

static void
s_rope_row (void *ctx, int64_t r)
{
    const s_rope_job_t *j = ctx;
    int64_t l = r % j->L, half = j->D / 2;
    const float *cs = j->cos + l * half, *sn = j->sin + l * half;
    for (int64_t h = 0; h < j->H; h++) {
        const float *x = j->x + (r * j->H + h) * j->D;
        float *y = j->y + (r * j->H + h) * j->D;
        for (int64_t i = 0; i < half; i++) {
            int64_t a = j->layout == VDGX_ROPE_INTERLEAVED? 2 * i: i;
            int64_t c = j->layout == VDGX_ROPE_INTERLEAVED? 2 * i + 1: i + half;
            float x0 = x [a], x1 = x [c];
            y [a] = x0 * cs [i] - x1 * sn [i];
            y [c] = x0 * sn [i] + x1 * cs [i];
        }
    }
}

static int
s_rope (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *cos,
        const vdgx_tensor_t *sin, vdgx_rope_layout_t layout)
{
    S_F32 ("rope", y, x);
    s_rope_job_t j = { y->data, x->data, cos->data, sin->data, x->shape [1], x->shape [2], x->shape [3], layout };
    vdgx_cpu_pool_run (s_pool (b), x->shape [0] * x->shape [1], s_rope_row, &j);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Data movement (dtype-agnostic: element size only)

typedef struct {
    uint8_t *y;
    const uint8_t *x;
    int ndim;
    int64_t yshape [VDGX_MAX_DIMS], xstride [VDGX_MAX_DIMS];   //  x strides in y's dim order
    int64_t rows, cols;
    size_t el;
} s_perm_job_t;

static void
s_perm_row (void *ctx, int64_t r)
{
    const s_perm_job_t *j = ctx;
    int64_t off = 0, rem = r;
    for (int d = j->ndim - 2; d >= 0; d--) {
        off += (rem % j->yshape [d]) * j->xstride [d];
        rem /= j->yshape [d];
    }
    int64_t xs = j->xstride [j->ndim - 1];
    uint8_t *y = j->y + (size_t) (r * j->cols) * j->el;
    if (j->el == 4) {
        const float *x = (const float *) j->x + off;
        float *yf = (float *) y;
        for (int64_t c = 0; c < j->cols; c++)
            yf [c] = x [c * xs];
    }
    else
        for (int64_t c = 0; c < j->cols; c++)
            memcpy (y + c * j->el, j->x + (size_t) (off + c * xs) * j->el, j->el);
}

static int
s_permute (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const int *perm)
{
    if (x->ndim == 0 || vdgx_tensor_numel (x) == 0)
        return s_memcpy (b, y->data, x->data, vdgx_tensor_nbytes (x));
    s_perm_job_t j = { y->data, x->data, x->ndim, { 0 }, { 0 }, 0, 0, vdgx_dtype_size (x->dtype) };
    for (int d = 0; d < x->ndim; d++) {
        j.yshape [d] = y->shape [d];
        j.xstride [d] = x->stride [perm [d]];
    }
    j.cols = y->shape [x->ndim - 1];
    j.rows = vdgx_tensor_numel (y) / j.cols;
    vdgx_cpu_pool_run (s_pool (b), j.rows, s_perm_row, &j);
    return 0;
}

static int
s_concat (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *a, const vdgx_tensor_t *bt, int dim)
{
    (void) b;
    size_t el = vdgx_dtype_size (y->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < dim; i++)
        outer *= a->shape [i];
    for (int i = dim + 1; i < a->ndim; i++)
        inner *= a->shape [i];
    size_t ca = (size_t) (a->shape [dim] * inner) * el, cb = (size_t) (bt->shape [dim] * inner) * el;
    uint8_t *yp = y->data;
    for (int64_t o = 0; o < outer; o++) {
        memcpy (yp, (const uint8_t *) a->data + o * ca, ca);
        memcpy (yp + ca, (const uint8_t *) bt->data + o * cb, cb);
        yp += ca + cb;
    }
    return 0;
}

static int
s_slice (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int dim, int64_t start, int64_t len)
{
    (void) b;
    size_t el = vdgx_dtype_size (y->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < dim; i++)
        outer *= x->shape [i];
    for (int i = dim + 1; i < x->ndim; i++)
        inner *= x->shape [i];
    size_t cx = (size_t) (x->shape [dim] * inner) * el, cy = (size_t) (len * inner) * el;
    size_t off = (size_t) (start * inner) * el;
    for (int64_t o = 0; o < outer; o++)
        memmove ((uint8_t *) y->data + o * cy, (const uint8_t *) x->data + o * cx + off, cy);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Convolution: im2col over a chunk of whole output rows (vdgx_cpu_conv.c), then one sgemm
//  y[Cout, P] = w[Cout, Cin*kt*kh*kw] . col[Cin*kt*kh*kw, P] onto the bias written first.
//  Chunks bound the col buffer.

static int
s_conv (vdgx_backend_t *b, const char *op, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
        const vdgx_tensor_t *bias, int64_t T, int64_t kt, int st, int sh, int sw, int pt, int ph, int pw)
{
    S_F32 (op, y, x, w, bias);
    int sd = x->ndim - 2;
    int64_t N = x->shape [0], Cin = x->shape [1], Cout = w->shape [0];
    int64_t H = x->shape [sd == 3? 3: 2], W = x->shape [sd == 3? 4: 3];
    int64_t kh = w->shape [sd == 3? 3: 2], kw = w->shape [sd == 3? 4: 3];
    int64_t To = sd == 3? y->shape [2]: 1, Ho = y->shape [sd == 3? 3: 2], Wo = y->shape [sd == 3? 4: 3];
    int64_t P = To * Ho * Wo, K = Cin * kt * kh * kw;
    if (P == 0 || Cout == 0 || N == 0)
        return 0;
    vdgx_conv_geom_t g = { Cin, T, H, W, kt, kh, kw, To, Ho, Wo, st, sh, sw, pt, ph, pw };
    size_t wf = vdgx_winograd_disable? 0: vdgx_cpu_winograd_floats (&g, Cout);
    float *wsc = wf? s_scratch (b, wf): NULL;
    if (wsc) {
        for (int64_t n = 0; n < N; n++)
            vdgx_cpu_winograd (s_pool (b), &g, Cout, (const float *) x->data + n * Cin * T * H * W,
                               w->data, bias? bias->data: NULL, (float *) y->data + n * Cout * P, wsc);
        return 0;
    }
    //  col chunk: about 16 MB, whole output rows, at least one
    int64_t np = (16 << 20) / (4 * (K? K: 1)) / Wo * Wo;
    if (np < Wo)
        np = Wo;
    if (np > P)
        np = P;
    float *col = s_scratch (b, (size_t) (K * np));
    if (!col) {
        vdgx_backend_set_error (b, "%s: out of memory for im2col (%lld x %lld)", op, (long long) K, (long long) np);
        return -1;
    }
    for (int64_t n = 0; n < N; n++) {
        const float *xn = (const float *) x->data + n * Cin * T * H * W;
        float *yn = (float *) y->data + n * Cout * P;
        if (bias)
            vdgx_cpu_fill_rows (s_pool (b), yn, bias->data, Cout, P);
        for (int64_t p0 = 0; p0 < P; p0 += np) {
            int64_t cnt = P - p0 < np? P - p0: np;
            vdgx_cpu_im2col (s_pool (b), &g, xn, col, p0, cnt);
            vdgx_sgemm (s_pool (b), false, Cout, cnt, K, w->data, K, col, cnt, bias? 1.0f: 0.0f, yn + p0, P);
        }
    }
    return 0;
}

static int
s_conv3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
          const vdgx_tensor_t *bias, const int stride [3], const int pad [4])
{
    return s_conv (b, "conv3d", y, x, w, bias, x->shape [2], w->shape [2], stride [0], stride [1], stride [2],
                   pad [0], pad [2], pad [3]);
}

static int
s_conv2d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
          const vdgx_tensor_t *bias, const int stride [2], const int pad [4])
{
    return s_conv (b, "conv2d", y, x, w, bias, 1, 1, 1, stride [0], stride [1], 0, pad [0], pad [2]);
}

typedef struct {
    float *y;
    const float *x;
    int64_t H, W;
} s_up_job_t;

static void
s_up_row (void *ctx, int64_t r)
{
    const s_up_job_t *j = ctx;
    const float *x = j->x + r * j->W;
    float *y0 = j->y + r * 4 * j->W, *y1 = y0 + 2 * j->W;
    for (int64_t w = 0; w < j->W; w++)
        y0 [2 * w] = y0 [2 * w + 1] = x [w];
    memcpy (y1, y0, sizeof (float) * (size_t) (2 * j->W));
}

static int
s_upsample2x (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    S_F32 ("upsample2x", y, x);
    s_up_job_t j = { y->data, x->data, x->shape [2], x->shape [3] };
    vdgx_cpu_pool_run (s_pool (b), x->shape [0] * x->shape [1] * x->shape [2], s_up_row, &j);
    return 0;
}

//  ---------------------------------------------------------------------------------------

static int
s_weight_upload (vdgx_backend_t *b, vdgx_weight_t *dst, const vdgx_weight_t *host)
{
    return vdgx_backend_weight_upload_generic (b, dst, host);
}

static void
s_weight_free (vdgx_backend_t *b, vdgx_weight_t *w)
{
    vdgx_backend_weight_free_generic (b, w);
}

static int
s_open (vdgx_backend_t *self, int ordinal, char **err)
{
    s_cpu_t *cpu = calloc (1, sizeof (*cpu));
    int threads = ordinal;
    const char *env = getenv ("VDGX_CPU_THREADS");
    if (threads == 0 && env)
        threads = atoi (env);
    if (cpu)
        cpu->pool = vdgx_cpu_pool_new (threads);
    if (!cpu || !cpu->pool) {
        free (cpu);
        *err = vdgx_kstrdupf ("cpu: cannot start worker threads");
        return -1;
    }
    vdgx_backend_set_priv (self, cpu);
    return 0;
}

static void
s_close (vdgx_backend_t *self)
{
    s_cpu_t *cpu = vdgx_backend_priv (self);
    if (cpu) {
        vdgx_cpu_pool_destroy (&cpu->pool);
        free (cpu->scratch);
        free (cpu);
    }
    vdgx_backend_set_priv (self, NULL);
}

static const vdgx_backend_ops_t s_ops = {
    .alloc = s_alloc, .free = s_free, .upload = s_memcpy, .download = s_memcpy, .copy = s_memcpy,
    .synchronize = s_synchronize, .cast = s_cast, .weight_upload = s_weight_upload,
    .weight_free = s_weight_free, .linear = s_linear, .matmul = s_matmul, .attention = vdgx_cpu_attention,
    .layernorm = s_layernorm, .rmsnorm = s_rmsnorm, .channel_rmsnorm = s_channel_rmsnorm,
    .channel_rmsnorm_silu = s_channel_rmsnorm_silu,
    .modulate = s_modulate, .gated_residual = s_gated_residual, .gelu_tanh = s_gelu_tanh,
    .silu = s_silu, .add_scaled = s_add_scaled, .mul = s_mul, .affine_clamp = s_affine_clamp,
    .rope = s_rope, .permute = s_permute, .concat = s_concat, .slice = s_slice,
    .conv3d = s_conv3d, .conv2d = s_conv2d, .upsample2x = s_upsample2x,
    .conv1d = vdgx_cpu_conv1d, .conv_transpose1d = vdgx_cpu_conv_transpose1d, .pad1d = vdgx_cpu_pad1d,
    .snake = vdgx_cpu_snake, .unary = vdgx_cpu_unary,
};

static const vdgx_backend_impl_t s_impl = {
    "cpu", s_open, s_close, &s_ops, VDGX_BACKEND_HOST_MEMORY | VDGX_BACKEND_F32_ONLY, vdgx_cpu_threads
};

const vdgx_backend_impl_t *
vdgx_cpu_backend_impl (void)
{
    return &s_impl;
}
