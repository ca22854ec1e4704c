/*  vdgx_cpu_test.c - every CPU op against a plain-loop double-precision reference on random
    non-zero inputs, over several shapes including odd ones.
    Tolerances: |got - ref| <= atol + rtol * |ref| with rtol = 1e-5 for elementwise ops and
    norms; reductions over K terms (linear, matmul, conv, attention) use rtol = 1e-5 and an
    atol of 1e-5 * sum |terms| (the f32 rounding bound of a K-term dot product is far below).
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_seed = 88172645463325252ull;

static float
s_rand (void)
{
    return vdgx_test_randf (&s_seed);
}

static float *
s_randv (int64_t n)
{
    float *v = malloc (sizeof (float) * (size_t) (n? n: 1));
    for (int64_t i = 0; i < n; i++)
        v [i] = s_rand ();
    return v;
}

static int s_failures = 0;

static void
s_compare (const char *what, const float *got, const double *ref, const double *mag, int64_t n,
           double rtol, double atol)
{
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double tol = atol * (mag? mag [i]: 1.0) + rtol * fabs (ref [i]);
        double e = fabs ((double) got [i] - ref [i]);
        if (!(e <= tol) && (at < 0 || e > worst)) {
            worst = e;
            at = i;
        }
    }
    if (at >= 0) {
        fprintf (stderr, "\nFAIL %s: element %lld got %.8g ref %.8g\n", what, (long long) at,
                 got [at], ref [at]);
        s_failures++;
    }
}

//  A CPU tensor over host data (the CPU backend accepts any host memory).
static vdgx_tensor_t
s_t (float *data, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e)
{
    int64_t shape [5] = { a, b, c, d, e };
    vdgx_tensor_t t;
    vdgx_tensor_init (&t, VDGX_DTYPE_F32, ndim, shape, data, VDGX_DEVICE_CPU);
    return t;
}

static void
s_test_sgemm (vdgx_backend_t *b)
{
    static const int64_t shapes [][3] = { { 1, 1, 1 }, { 3, 5, 7 }, { 17, 33, 65 }, { 64, 256, 256 },
                                          { 70, 300, 520 }, { 5, 9, 1 },
                                          { 1, 130, 77 }, { 3, 70, 64 }, { 4, 17, 33 } };
    for (size_t s = 0; s < sizeof (shapes) / sizeof (shapes [0]); s++)
        for (int tb = 0; tb < 2; tb++)
            for (int impl = 0; impl < 3; impl++) {
                vdgx_sgemm_force_generic = impl == 2;
                int64_t M = shapes [s][0], N = shapes [s][1], K = shapes [s][2];
                float *A = s_randv (M * K), *B = s_randv (K * N), *C = s_randv (M * N);
                double *ref = malloc (sizeof (double) * (size_t) (M * N)), *mag = malloc (sizeof (double) * (size_t) (M * N));
                float beta = impl? 0.5f: 0.0f;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double acc = beta * (double) C [i * N + j], m = fabs (acc);
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double) A [i * K + k] * (tb? B [j * K + k]: B [k * N + j]);
                            acc += p;
                            m += fabs (p);
                        }
                        ref [i * N + j] = acc;
                        mag [i * N + j] = m;
                    }
                if (impl)
                    vdgx_sgemm_portable (vdgx_cpu_pool_of (b), tb, M, N, K, A, K, B, tb? K: N, beta, C, N);
                else
                    vdgx_sgemm (vdgx_cpu_pool_of (b), tb, M, N, K, A, K, B, tb? K: N, beta, C, N);
                s_compare (impl == 2? "sgemm_portable (generic tile)": impl? "sgemm_portable": "sgemm",
                           C, ref, mag, M * N, 1e-5, 1e-5);
                vdgx_sgemm_force_generic = false;
                free (A); free (B); free (C); free (ref); free (mag);
            }
}

static void
s_test_linear (vdgx_backend_t *b)
{
    //  the portable route (f32 panels) is the exact oracle; the bf16 route has its own test
    vdgx_qgemm_disable = true;
    static const int64_t shapes [][3] = { { 1, 7, 64 }, { 13, 33, 128 }, { 40, 130, 192 }, { 3, 70, 320 } };
    for (size_t s = 0; s < 4; s++)
        for (int f = 0; f < VDGX_WFMT_COUNT; f++) {
            int64_t M = shapes [s][0], N = shapes [s][1], K = shapes [s][2];
            float *x = s_randv (M * K), *wsrc = s_randv (N * K), *bias = s_randv (N);
            float *y = s_randv (M * N), *wd = malloc (sizeof (float) * (size_t) (N * K));
            vdgx_weight_t hw, dw;
            char *err = NULL;
            assert (vdgx_weight_quantize (&hw, (vdgx_wfmt_t) f, wsrc, N, K, s == 1, &err) == 0);
            assert (vdgx_weight_to_backend (b, &dw, &hw) == 0);
            //  the reference uses the dequantized weight: this checks the op, not the format
            vdgx_weight_dequant (&hw, wd);
            double *ref = malloc (sizeof (double) * (size_t) (M * N)), *mag = malloc (sizeof (double) * (size_t) (M * N));
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double acc = bias [j], m = fabs (acc);
                    for (int64_t k = 0; k < K; k++) {
                        acc += (double) x [i * K + k] * wd [j * K + k];
                        m += fabs ((double) x [i * K + k] * wd [j * K + k]);
                    }
                    ref [i * N + j] = acc;
                    mag [i * N + j] = m;
                }
            vdgx_tensor_t tx = s_t (x, 2, M, K, 0, 0, 0), ty = s_t (y, 2, M, N, 0, 0, 0), tb = s_t (bias, 1, N, 0, 0, 0, 0);
            assert (vdgx_op_linear (b, &ty, &tx, &dw, &tb) == 0);
            char what [64];
            snprintf (what, sizeof (what), "linear %s", vdgx_wfmt_name ((vdgx_wfmt_t) f));
            s_compare (what, y, ref, mag, M * N, 1e-5, 1e-5);
            //  bad shapes are refused with a message
            vdgx_tensor_t bad = s_t (y, 2, M, N + 1, 0, 0, 0);
            assert (vdgx_op_linear (b, &bad, &tx, &dw, NULL) == -1 && strstr (vdgx_backend_error (b), "linear"));
            vdgx_weight_release (b, &dw);
            vdgx_weight_host_free (&hw);
            free (x); free (wsrc); free (bias); free (y); free (wd); free (ref); free (mag);
        }
    vdgx_qgemm_disable = false;
}

static void
s_test_matmul (vdgx_backend_t *b)
{
    int64_t B = 3, M = 5, K = 11, N = 9;
    float *a = s_randv (B * M * K), *bm = s_randv (B * K * N), *y = s_randv (B * M * N);
    double *ref = malloc (sizeof (double) * (size_t) (B * M * N)), *mag = malloc (sizeof (double) * (size_t) (B * M * N));
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0, m = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = (double) a [(bi * M + i) * K + k] * bm [(bi * K + k) * N + j];
                    acc += p;
                    m += fabs (p);
                }
                ref [(bi * M + i) * N + j] = acc;
                mag [(bi * M + i) * N + j] = m;
            }
    vdgx_tensor_t ta = s_t (a, 3, B, M, K, 0, 0), tb = s_t (bm, 3, B, K, N, 0, 0), ty = s_t (y, 3, B, M, N, 0, 0);
    assert (vdgx_op_matmul (b, &ty, &ta, &tb) == 0);
    s_compare ("matmul", y, ref, mag, B * M * N, 1e-5, 1e-5);
    free (a); free (bm); free (y); free (ref); free (mag);
}

static void
s_test_attention (vdgx_backend_t *b)
{
    static const int64_t shapes [][5] = {   //  B, Lq, Lk, H, D
        { 1, 1, 1, 1, 4 }, { 2, 37, 53, 3, 16 }, { 1, 70, 130, 2, 8 }, { 2, 5, 200, 1, 12 }
    };
    for (size_t s = 0; s < 4; s++)
        for (int variant = 0; variant < 4; variant++) {
            int64_t B = shapes [s][0], Lq = shapes [s][1], Lk = shapes [s][2], H = shapes [s][3], D = shapes [s][4];
            bool use_mask = variant & 1, use_bias = variant & 2;
            float *q = s_randv (B * Lq * H * D), *k = s_randv (B * Lk * H * D), *v = s_randv (B * Lk * H * D);
            float *o = s_randv (B * Lq * H * D), *bias = s_randv (H * Lq * Lk);
            for (int64_t i = 0; i < H * Lq * Lk; i++)
                bias [i] *= 3.0f;
            uint8_t *mask = malloc ((size_t) (B * Lk));
            for (int64_t i = 0; i < B * Lk; i++)
                mask [i] = (i % 7) != 3 || (i % Lk) == 0;
            if (B > 1 && Lk > 4)        //  the second batch sees only a prefix (padded text)
                for (int64_t i = Lk / 3; i < Lk; i++)
                    mask [Lk + i] = 0;
            float scale = 1.0f / sqrtf ((float) D);
            double *ref = malloc (sizeof (double) * (size_t) (B * Lq * H * D));
            double *mag = malloc (sizeof (double) * (size_t) (B * Lq * H * D));
            double *p = malloc (sizeof (double) * (size_t) Lk);
            for (int64_t bi = 0; bi < B; bi++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < Lq; i++) {
                        double mx = -INFINITY, sum = 0;
                        for (int64_t j = 0; j < Lk; j++) {
                            double dot = 0;
                            for (int64_t d = 0; d < D; d++)
                                dot += (double) q [((bi * Lq + i) * H + h) * D + d] * k [((bi * Lk + j) * H + h) * D + d];
                            dot *= scale;
                            if (use_bias)
                                dot += bias [(h * Lq + i) * Lk + j];
                            if (use_mask && !mask [bi * Lk + j])
                                dot = -INFINITY;
                            p [j] = dot;
                            if (dot > mx)
                                mx = dot;
                        }
                        for (int64_t j = 0; j < Lk; j++) {
                            p [j] = exp (p [j] - mx);
                            sum += p [j];
                        }
                        for (int64_t d = 0; d < D; d++) {
                            double acc = 0, m = 0;
                            for (int64_t j = 0; j < Lk; j++) {
                                acc += p [j] / sum * v [((bi * Lk + j) * H + h) * D + d];
                                m += p [j] / sum * fabs (v [((bi * Lk + j) * H + h) * D + d]);
                            }
                            ref [((bi * Lq + i) * H + h) * D + d] = acc;
                            mag [((bi * Lq + i) * H + h) * D + d] = m + 1;
                        }
                    }
            vdgx_tensor_t tq = s_t (q, 4, B, Lq, H, D, 0), tk = s_t (k, 4, B, Lk, H, D, 0);
            vdgx_tensor_t tv = s_t (v, 4, B, Lk, H, D, 0), to = s_t (o, 4, B, Lq, H, D, 0);
            vdgx_tensor_t tbias = s_t (bias, 3, H, Lq, Lk, 0, 0);
            int64_t ms [2] = { B, Lk };
            vdgx_tensor_t tm;
            vdgx_tensor_init (&tm, VDGX_DTYPE_U8, 2, ms, mask, VDGX_DEVICE_CPU);
            assert (vdgx_op_attention (b, &to, &tq, &tk, &tv, use_mask? &tm: NULL, use_bias? &tbias: NULL, scale) == 0);
            char what [80];
            snprintf (what, sizeof (what), "attention shape %zu mask %d bias %d", s, use_mask, use_bias);
            s_compare (what, o, ref, mag, B * Lq * H * D, 1e-5, 1e-5);
            free (q); free (k); free (v); free (o); free (bias); free (mask); free (ref); free (mag); free (p);
        }
    //  all keys masked: the row sees no key, o = 0
    float q [4] = { 1, 2, 3, 4 }, k [8] = { 1, 0, 0, 0, 0, 1, 0, 0 }, v [8] = { 1, 2, 3, 4, 3, 4, 5, 6 }, o [4];
    uint8_t mask [2] = { 0, 0 };
    vdgx_tensor_t tq = s_t (q, 4, 1, 1, 1, 4, 0), tk = s_t (k, 4, 1, 2, 1, 4, 0), tv = s_t (v, 4, 1, 2, 1, 4, 0), to = s_t (o, 4, 1, 1, 1, 4, 0);
    int64_t ms [2] = { 1, 2 };
    vdgx_tensor_t tm;
    vdgx_tensor_init (&tm, VDGX_DTYPE_U8, 2, ms, mask, VDGX_DEVICE_CPU);
    assert (vdgx_op_attention (b, &to, &tq, &tk, &tv, &tm, NULL, 1.0f) == 0);
    assert (o [0] == 0 && o [3] == 0);
}

static void
s_test_norms (vdgx_backend_t *b)
{
    static const int64_t shapes [][2] = { { 1, 1 }, { 7, 33 }, { 5, 1536 } };
    for (size_t s = 0; s < 3; s++)
        for (int variant = 0; variant < 8; variant++) {
            //  0-2 layernorm, 3-5 rmsnorm (none / gamma / gamma + beta), 6-7 layernorm with
            //  eps on the standard deviation (eps < 0; none / gamma + beta)
            int64_t R = shapes [s][0], C = shapes [s][1];
            float *x = s_randv (R * C), *y = s_randv (R * C), *g = s_randv (C), *be = s_randv (C);
            for (int64_t i = 0; i < R * C; i++)
                x [i] = x [i] * 3 + 0.5f;
            bool rms = variant >= 3 && variant < 6, stdeps = variant >= 6;
            bool affine = stdeps? variant == 7: variant % 3 != 0;
            bool with_beta = stdeps? variant == 7: variant % 3 == 2;
            float eps = stdeps? -1e-5f: 1e-6f;
            double *ref = malloc (sizeof (double) * (size_t) (R * C));
            for (int64_t r = 0; r < R; r++) {
                double mean = 0, var = 0;
                for (int64_t c = 0; c < C; c++)
                    mean += x [r * C + c];
                mean = rms? 0: mean / C;
                for (int64_t c = 0; c < C; c++)
                    var += (x [r * C + c] - mean) * (x [r * C + c] - mean);
                var /= C;
                for (int64_t c = 0; c < C; c++) {
                    double v = (x [r * C + c] - mean) / (stdeps? sqrt (var) + 1e-5: sqrt (var + 1e-6));
                    if (affine)
                        v *= g [c];
                    if (with_beta && !rms)
                        v += be [c];
                    ref [r * C + c] = v;
                }
            }
            vdgx_tensor_t tx = s_t (x, 2, R, C, 0, 0, 0), ty = s_t (y, 2, R, C, 0, 0, 0);
            vdgx_tensor_t tg = s_t (g, 1, C, 0, 0, 0, 0), tb = s_t (be, 1, C, 0, 0, 0, 0);
            if (rms)
                assert (vdgx_op_rmsnorm (b, &ty, &tx, affine? &tg: NULL, 1e-6f) == 0);
            else
                assert (vdgx_op_layernorm (b, &ty, &tx, affine? &tg: NULL, with_beta? &tb: NULL, eps) == 0);
            s_compare (rms? "rmsnorm": "layernorm", y, ref, NULL, R * C, 1e-5, 1e-5);
            free (x); free (y); free (g); free (be); free (ref);
        }
    //  channel_rmsnorm on [N,C,T,H,W] with and without beta
    int64_t N = 2, C = 5, S = 3 * 7 * 13;
    for (int with_beta = 0; with_beta < 2; with_beta++) {
        float *x = s_randv (N * C * S), *y = s_randv (N * C * S), *g = s_randv (C), *be = s_randv (C);
        double *ref = malloc (sizeof (double) * (size_t) (N * C * S));
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                double ss = 0;
                for (int64_t c = 0; c < C; c++)
                    ss += (double) x [(n * C + c) * S + s] * x [(n * C + c) * S + s];
                double nrm = sqrt (ss);
                if (nrm < 1e-12)
                    nrm = 1e-12;
                for (int64_t c = 0; c < C; c++)
                    ref [(n * C + c) * S + s] = x [(n * C + c) * S + s] / nrm * sqrt ((double) C) * g [c] + (with_beta? be [c]: 0);
            }
        int64_t shape [5] = { N, C, 3, 7, 13 };
        vdgx_tensor_t tx, ty;
        vdgx_tensor_init (&tx, VDGX_DTYPE_F32, 5, shape, x, VDGX_DEVICE_CPU);
        vdgx_tensor_init (&ty, VDGX_DTYPE_F32, 5, shape, y, VDGX_DEVICE_CPU);
        vdgx_tensor_t tg = s_t (g, 1, C, 0, 0, 0, 0), tb = s_t (be, 1, C, 0, 0, 0, 0);
        assert (vdgx_op_channel_rmsnorm (b, &ty, &tx, &tg, with_beta? &tb: NULL) == 0);
        s_compare ("channel_rmsnorm", y, ref, NULL, N * C * S, 1e-5, 1e-5);
        //  fused with SiLU: the same values through silu (in place too: y = x)
        for (int64_t i = 0; i < N * C * S; i++)
            ref [i] = ref [i] / (1.0 + exp (-ref [i]));
        memset (y, 0, sizeof (float) * (size_t) (N * C * S));
        assert (vdgx_op_channel_rmsnorm_silu (b, &ty, &tx, &tg, with_beta? &tb: NULL) == 0);
        s_compare ("channel_rmsnorm_silu", y, ref, NULL, N * C * S, 1e-5, 1e-5);
        assert (vdgx_op_channel_rmsnorm_silu (b, &tx, &tx, &tg, with_beta? &tb: NULL) == 0);
        s_compare ("channel_rmsnorm_silu in place", x, ref, NULL, N * C * S, 1e-5, 1e-5);
        free (x); free (y); free (g); free (be); free (ref);
    }
}

static void
s_test_pointwise (vdgx_backend_t *b)
{
    int64_t B = 2, L = 37, C = 24, n = B * L * C;
    float *x = s_randv (n), *y = s_randv (n), *sh = s_randv (B * C), *sc = s_randv (B * C), *o = s_randv (n);
    double *ref = malloc (sizeof (double) * (size_t) n);
    vdgx_tensor_t tx = s_t (x, 3, B, L, C, 0, 0), ty = s_t (y, 3, B, L, C, 0, 0), to = s_t (o, 3, B, L, C, 0, 0);
    vdgx_tensor_t tsh = s_t (sh, 2, B, C, 0, 0, 0), tsc = s_t (sc, 2, B, C, 0, 0, 0);
    //  modulate
    for (int64_t i = 0; i < n; i++) {
        int64_t bi = i / (L * C), c = i % C;
        ref [i] = x [i] * (1.0 + sc [bi * C + c]) + sh [bi * C + c];
    }
    assert (vdgx_op_modulate (b, &to, &tx, &tsh, &tsc) == 0);
    s_compare ("modulate", o, ref, NULL, n, 1e-5, 1e-6);
    //  gated residual, with and without gate (in place on o)
    memcpy (o, x, sizeof (float) * (size_t) n);
    for (int64_t i = 0; i < n; i++)
        ref [i] = x [i] + (double) y [i] * sc [(i / (L * C)) * C + i % C];
    assert (vdgx_op_gated_residual (b, &to, &ty, &tsc) == 0);
    s_compare ("gated_residual", o, ref, NULL, n, 1e-5, 1e-6);
    memcpy (o, x, sizeof (float) * (size_t) n);
    for (int64_t i = 0; i < n; i++)
        ref [i] = x [i] + (double) y [i];
    assert (vdgx_op_gated_residual (b, &to, &ty, NULL) == 0);
    s_compare ("gated_residual (no gate)", o, ref, NULL, n, 1e-5, 1e-6);
    //  activations (inputs spread wider to hit the tails)
    for (int64_t i = 0; i < n; i++)
        x [i] *= 6.0f;
    for (int64_t i = 0; i < n; i++)
        ref [i] = 0.5 * x [i] * (1 + tanh (sqrt (2 / M_PI) * (x [i] + 0.044715 * pow (x [i], 3))));
    assert (vdgx_op_gelu_tanh (b, &to, &tx) == 0);
    s_compare ("gelu_tanh", o, ref, NULL, n, 1e-5, 1e-6);
    for (int64_t i = 0; i < n; i++)
        ref [i] = x [i] / (1 + exp (-(double) x [i]));
    assert (vdgx_op_silu (b, &to, &tx) == 0);
    s_compare ("silu", o, ref, NULL, n, 1e-5, 1e-6);
    //  add_scaled / mul: full shape and broadcast over leading dims
    for (int bc = 0; bc < 2; bc++) {
        vdgx_tensor_t tb = bc? s_t (sh, 1, C, 0, 0, 0, 0): ty;
        const float *bv = bc? sh: y;
        int64_t nb = bc? C: n;
        for (int64_t i = 0; i < n; i++)
            ref [i] = x [i] + 0.37 * bv [i % nb];
        assert (vdgx_op_add_scaled (b, &to, &tx, &tb, 0.37f) == 0);
        s_compare ("add_scaled", o, ref, NULL, n, 1e-5, 1e-6);
        for (int64_t i = 0; i < n; i++)
            ref [i] = (double) x [i] * bv [i % nb];
        assert (vdgx_op_mul (b, &to, &tx, &tb) == 0);
        s_compare ("mul", o, ref, NULL, n, 1e-5, 1e-6);
    }
    vdgx_tensor_t bad = s_t (sh, 1, 7, 0, 0, 0, 0);
    assert (vdgx_op_add_scaled (b, &to, &tx, &bad, 1.0f) == -1);
    for (int64_t i = 0; i < n; i++) {
        double v = x [i] * 0.5 + 0.25;
        ref [i] = v < -1? -1: v > 1.5? 1.5: v;
    }
    assert (vdgx_op_affine_clamp (b, &to, &tx, 0.5f, 0.25f, -1.0f, 1.5f) == 0);
    s_compare ("affine_clamp", o, ref, NULL, n, 1e-5, 1e-6);
    free (x); free (y); free (sh); free (sc); free (o); free (ref);
}

static void
s_test_rope (vdgx_backend_t *b)
{
    int64_t B = 2, L = 9, H = 3, D = 10, n = B * L * H * D;
    float *x = s_randv (n), *y = s_randv (n), *cs = s_randv (L * D / 2), *sn = s_randv (L * D / 2);
    double *ref = malloc (sizeof (double) * (size_t) n);
    for (int layout = 0; layout < 2; layout++) {
        for (int64_t r = 0; r < B * L * H; r++) {
            int64_t l = (r / H) % L;
            for (int64_t i = 0; i < D / 2; i++) {
                int64_t a = layout? i: 2 * i, c = layout? i + D / 2: 2 * i + 1;
                double x0 = x [r * D + a], x1 = x [r * D + c], co = cs [l * D / 2 + i], si = sn [l * D / 2 + i];
                ref [r * D + a] = x0 * co - x1 * si;
                ref [r * D + c] = x0 * si + x1 * co;
            }
        }
        vdgx_tensor_t tx = s_t (x, 4, B, L, H, D, 0), ty = s_t (y, 4, B, L, H, D, 0);
        vdgx_tensor_t tc = s_t (cs, 2, L, D / 2, 0, 0, 0), ts = s_t (sn, 2, L, D / 2, 0, 0, 0);
        assert (vdgx_op_rope (b, &ty, &tx, &tc, &ts, (vdgx_rope_layout_t) layout) == 0);
        s_compare (layout? "rope half": "rope interleaved", y, ref, NULL, n, 1e-5, 1e-6);
    }
    free (x); free (y); free (cs); free (sn); free (ref);
}

static void
s_test_movement (vdgx_backend_t *b)
{
    //  permute [2,3,4,5] by (2,0,3,1)
    int64_t xs [4] = { 2, 3, 4, 5 };
    int perm [4] = { 2, 0, 3, 1 };
    int64_t n = 120;
    float *x = s_randv (n), *y = s_randv (n);
    double *ref = malloc (sizeof (double) * (size_t) n);
    for (int64_t i0 = 0; i0 < 2; i0++)
        for (int64_t i1 = 0; i1 < 3; i1++)
            for (int64_t i2 = 0; i2 < 4; i2++)
                for (int64_t i3 = 0; i3 < 5; i3++)
                    ref [((i2 * 2 + i0) * 5 + i3) * 3 + i1] = x [((i0 * 3 + i1) * 4 + i2) * 5 + i3];
    vdgx_tensor_t tx = s_t (x, 4, xs [0], xs [1], xs [2], xs [3], 0), ty = s_t (y, 4, 4, 2, 5, 3, 0);
    assert (vdgx_op_permute (b, &ty, &tx, perm) == 0);
    s_compare ("permute", y, ref, NULL, n, 0, 0);
    int badperm [4] = { 0, 0, 1, 2 };
    assert (vdgx_op_permute (b, &ty, &tx, badperm) == -1);
    //  concat along dim 1 of [2,3,4] and [2,2,4]; then slice it back
    float *a = s_randv (24), *c = s_randv (16), *cat = s_randv (40), *sl = s_randv (16);
    double cref [40];
    for (int64_t o = 0; o < 2; o++) {
        for (int64_t i = 0; i < 12; i++)
            cref [o * 20 + i] = a [o * 12 + i];
        for (int64_t i = 0; i < 8; i++)
            cref [o * 20 + 12 + i] = c [o * 8 + i];
    }
    vdgx_tensor_t ta = s_t (a, 3, 2, 3, 4, 0, 0), tc = s_t (c, 3, 2, 2, 4, 0, 0), tcat = s_t (cat, 3, 2, 5, 4, 0, 0);
    assert (vdgx_op_concat (b, &tcat, &ta, &tc, 1) == 0);
    s_compare ("concat", cat, cref, NULL, 40, 0, 0);
    vdgx_tensor_t tsl = s_t (sl, 3, 2, 2, 4, 0, 0);
    assert (vdgx_op_slice (b, &tsl, &tcat, 1, 3, 2) == 0);
    double sref [16];
    for (int i = 0; i < 16; i++)
        sref [i] = c [i];
    s_compare ("slice", sl, sref, NULL, 16, 0, 0);
    assert (vdgx_op_slice (b, &tsl, &tcat, 1, 4, 2) == -1);
    assert (vdgx_op_concat (b, &tcat, &ta, &ta, 1) == -1);
    //  upsample2x
    float *u = s_randv (2 * 3 * 5 * 7), *uy = s_randv (4 * 2 * 3 * 5 * 7);
    double *uref = malloc (sizeof (double) * 840);
    for (int64_t r = 0; r < 6; r++)
        for (int64_t h = 0; h < 10; h++)
            for (int64_t w = 0; w < 14; w++)
                uref [(r * 10 + h) * 14 + w] = u [(r * 5 + h / 2) * 7 + w / 2];
    vdgx_tensor_t tu = s_t (u, 4, 2, 3, 5, 7, 0), tuy = s_t (uy, 4, 2, 3, 10, 14, 0);
    assert (vdgx_op_upsample2x (b, &tuy, &tu) == 0);
    s_compare ("upsample2x", uy, uref, NULL, 840, 0, 0);
    //  cast f32 -> bf16 -> f32 through the op
    uint16_t bf [24];
    int64_t s24 [1] = { 24 };
    vdgx_tensor_t tbf;
    vdgx_tensor_init (&tbf, VDGX_DTYPE_BF16, 1, s24, bf, VDGX_DEVICE_CPU);
    vdgx_tensor_t ta1 = s_t (a, 1, 24, 0, 0, 0, 0), tback = s_t (cat, 1, 24, 0, 0, 0, 0);
    assert (vdgx_op_cast (b, &tbf, &ta1) == 0 && vdgx_op_cast (b, &tback, &tbf) == 0);
    double bref [24];
    for (int i = 0; i < 24; i++)
        bref [i] = vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (a [i]));
    s_compare ("cast bf16", cat, bref, NULL, 24, 0, 0);
    free (x); free (y); free (ref); free (a); free (c); free (cat); free (sl); free (u); free (uy); free (uref);
}

//  Direct convolution of one image in double precision (the reference of the CPU's im2col
//  and Winograd tests): ref[co, ot, oh, ow] = bias[co] + sum x w, mag = |bias| + sum |x w|.
void
vdgx_cpu_conv_ref (const vdgx_conv_geom_t *g, int64_t Cout, const float *x, const float *w,
                   const float *bias, double *ref, double *mag)
{
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t ot = 0; ot < g->To; ot++)
            for (int64_t oh = 0; oh < g->Ho; oh++)
                for (int64_t ow = 0; ow < g->Wo; ow++) {
                    double acc = bias? bias [co]: 0.0, m = fabs (acc);
                    for (int64_t ci = 0; ci < g->Cin; ci++)
                        for (int64_t a = 0; a < g->kt; a++)
                            for (int64_t bb = 0; bb < g->kh; bb++)
                                for (int64_t c = 0; c < g->kw; c++) {
                                    int64_t it = ot * g->st - g->pt + a, ih = oh * g->sh - g->ph + bb;
                                    int64_t iw = ow * g->sw - g->pw + c;
                                    if (it < 0 || it >= g->T || ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
                                        continue;
                                    double p = (double) x [((ci * g->T + it) * g->H + ih) * g->W + iw]
                                             * w [(((co * g->Cin + ci) * g->kt + a) * g->kh + bb) * g->kw + c];
                                    acc += p;
                                    m += fabs (p);
                                }
                    int64_t idx = ((co * g->To + ot) * g->Ho + oh) * g->Wo + ow;
                    ref [idx] = acc;
                    mag [idx] = m;
                }
}

static void
s_test_conv (vdgx_backend_t *b)
{
    static const struct { int64_t N, Cin, Cout, T, H, W, kt, kh, kw; int st [3]; int pad [4]; } cases [] = {
        { 1, 3, 4, 5, 6, 7, 3, 3, 3, { 1, 1, 1 }, { 2, 0, 1, 1 } },      //  causal conv
        { 2, 2, 3, 4, 9, 8, 1, 3, 3, { 1, 2, 2 }, { 0, 0, 1, 1 } },
        { 1, 4, 2, 3, 5, 5, 3, 1, 1, { 2, 1, 1 }, { 1, 1, 0, 0 } },
        { 1, 1, 1, 1, 1, 1, 1, 1, 1, { 1, 1, 1 }, { 0, 0, 0, 0 } },
        //  large enough for Winograd F(4x4,3x3): odd sizes, causal, 2D-like kt = 1
        { 1, 17, 16, 3, 33, 47, 3, 3, 3, { 1, 1, 1 }, { 2, 0, 1, 1 } },
        { 2, 16, 19, 2, 64, 65, 1, 3, 3, { 1, 1, 1 }, { 0, 0, 1, 1 } },
        { 1, 16, 16, 4, 40, 40, 3, 3, 3, { 1, 1, 1 }, { 1, 1, 1, 1 } },
    };
    for (size_t s = 0; s < sizeof (cases) / sizeof (cases [0]); s++) {
        int64_t N = cases [s].N, Ci = cases [s].Cin, Co = cases [s].Cout, T = cases [s].T, H = cases [s].H, W = cases [s].W;
        int64_t kt = cases [s].kt, kh = cases [s].kh, kw = cases [s].kw;
        const int *st = cases [s].st, *pad = cases [s].pad;
        int64_t To = (T + pad [0] + pad [1] - kt) / st [0] + 1, Ho = (H + 2 * pad [2] - kh) / st [1] + 1, Wo = (W + 2 * pad [3] - kw) / st [2] + 1;
        float *x = s_randv (N * Ci * T * H * W), *w = s_randv (Co * Ci * kt * kh * kw), *bias = s_randv (Co);
        int64_t ny = N * Co * To * Ho * Wo;
        float *y = s_randv (ny);
        double *ref = malloc (sizeof (double) * (size_t) ny), *mag = malloc (sizeof (double) * (size_t) ny);
        vdgx_conv_geom_t g = { Ci, T, H, W, kt, kh, kw, To, Ho, Wo, st [0], st [1], st [2], pad [0], pad [2], pad [3] };
        for (int64_t n = 0; n < N; n++)
            vdgx_cpu_conv_ref (&g, Co, x + n * Ci * T * H * W, w, bias, ref + n * Co * To * Ho * Wo,
                               mag + n * Co * To * Ho * Wo);
        vdgx_tensor_t tx = s_t (x, 5, N, Ci, T, H, W), tw = s_t (w, 5, Co, Ci, kt, kh, kw);
        vdgx_tensor_t ty = s_t (y, 5, N, Co, To, Ho, Wo), tb = s_t (bias, 1, Co, 0, 0, 0, 0);
        assert (vdgx_op_conv3d (b, &ty, &tx, &tw, &tb, st, pad) == 0);
        s_compare ("conv3d", y, ref, mag, ny, 1e-5, 1e-5);
        vdgx_tensor_t wrong = s_t (y, 5, N, Co, To + 1, Ho, Wo);
        assert (vdgx_op_conv3d (b, &wrong, &tx, &tw, &tb, st, pad) == -1);
        free (x); free (w); free (bias); free (y); free (ref); free (mag);
    }
    //  conv2d with asymmetric padding and stride 2
    int64_t N = 2, Ci = 3, Co = 5, H = 11, W = 8, kh = 3, kw = 3;
    int st [2] = { 2, 1 }, pad [4] = { 0, 1, 1, 2 };
    int64_t Ho = (H + pad [0] + pad [1] - kh) / st [0] + 1, Wo = (W + pad [2] + pad [3] - kw) / st [1] + 1;
    float *x = s_randv (N * Ci * H * W), *w = s_randv (Co * Ci * kh * kw), *y = s_randv (N * Co * Ho * Wo);
    double *ref = malloc (sizeof (double) * (size_t) (N * Co * Ho * Wo)), *mag = malloc (sizeof (double) * (size_t) (N * Co * Ho * Wo));
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    double acc = 0, m = 0;
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t a = 0; a < kh; a++)
                            for (int64_t c = 0; c < kw; c++) {
                                int64_t ih = oh * st [0] - pad [0] + a, iw = ow * st [1] - pad [2] + c;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                double p = (double) x [((n * Ci + ci) * H + ih) * W + iw] * w [((co * Ci + ci) * kh + a) * kw + c];
                                acc += p;
                                m += fabs (p);
                            }
                    ref [((n * Co + co) * Ho + oh) * Wo + ow] = acc;
                    mag [((n * Co + co) * Ho + oh) * Wo + ow] = m;
                }
    vdgx_tensor_t tx = s_t (x, 4, N, Ci, H, W, 0), tw = s_t (w, 4, Co, Ci, kh, kw, 0), ty = s_t (y, 4, N, Co, Ho, Wo, 0);
    assert (vdgx_op_conv2d (b, &ty, &tx, &tw, NULL, st, pad) == 0);
    s_compare ("conv2d", y, ref, mag, N * Co * Ho * Wo, 1e-5, 1e-5);
    free (x); free (w); free (y); free (ref); free (mag);
}

void
vdgx_cpu_test (bool verbose)
{
    printf (" * vdgx_cpu: ");
    char *err = NULL;
    //  more threads than cores, so the pool's hand-off is exercised
    vdgx_backend_t *b = vdgx_backend_new ("cpu:3", VDGX_DTYPE_F32, &err);
    assert (b && !err);
    assert (vdgx_backend_threads (b) == 3);
    if (verbose)
        printf ("(sgemm: %s) ", vdgx_sgemm_is_openblas ()? "OpenBLAS": "portable");
    s_test_sgemm (b);
    s_test_linear (b);
    s_test_matmul (b);
    s_test_attention (b);
    s_test_norms (b);
    s_test_pointwise (b);
    s_test_rope (b);
    s_test_movement (b);
    s_test_conv (b);
    //  the CPU computes in f32: a bf16 activation is refused with a message
    uint16_t bf [4] = { 0 };
    int64_t s4 [1] = { 4 };
    vdgx_tensor_t tb, tf;
    float f [4];
    vdgx_tensor_init (&tb, VDGX_DTYPE_BF16, 1, s4, bf, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&tf, VDGX_DTYPE_F32, 1, s4, f, VDGX_DEVICE_CPU);
    assert (vdgx_op_silu (b, &tf, &tb) == -1 && strstr (vdgx_backend_error (b), "BF16"));
    vdgx_backend_destroy (&b);
    assert (b == NULL);
    assert (s_failures == 0);
    printf ("OK\n");
}
