/*  vdgx_cpu_ops1d_test.c - the 1D vocoder ops on the CPU backend against plain double loops
    written from their definitions in vdgx_backend.h: conv1d and conv_transpose1d (stride,
    asymmetric padding, dilation, groups incl. depthwise, output_padding; both the direct and
    the sgemm paths), pad1d (zero, replicate, reflect), Snake / SnakeBeta (plain and log-scale
    parameters) and the unary functions; random non-zero inputs.
    Tolerance: |got - ref| <= 1e-5 * (1 + sum |terms|) + 1e-5 * |ref| for the convolutions,
    2e-6 * (1 + |ref|) for the elementwise ops; pad1d is exact.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_seed = 0x2545f4914f6cdd1dull;
static int s_failures = 0;

static float *
s_randv (int64_t n, float scale)
{
    float *v = malloc (sizeof (float) * (size_t) (n? n: 1));
    for (int64_t i = 0; i < n; i++)
        v [i] = scale * vdgx_test_randf (&s_seed);
    return v;
}

static vdgx_tensor_t
s_t3 (float *data, int64_t a, int64_t b, int64_t c)
{
    vdgx_tensor_t t;
    int64_t sh [3] = { a, b, c };
    vdgx_tensor_init (&t, VDGX_DTYPE_F32, 3, sh, data, VDGX_DEVICE_CPU);
    return t;
}

static void
s_compare (const char *what, const float *got, const double *ref, const double *mag, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++) {
        double e = fabs ((double) got [i] - ref [i]);
        if (!(e <= tol * ((mag? mag [i]: fabs (ref [i])) + 1) + tol * fabs (ref [i]))) {
            fprintf (stderr, "\nFAIL %s: element %lld got %.8g ref %.8g\n", what, (long long) i, got [i], ref [i]);
            s_failures++;
            return;
        }
    }
}

typedef struct {
    int64_t N, Cin, Cout, L, K;
    vdgx_conv1d_params_t p;
} s_conv_case_t;

static void
s_test_conv (vdgx_backend_t *b, bool transposed)
{
    static const s_conv_case_t cases [] = {
        { 1, 1, 1, 1, 1, { 0 } },
        { 2, 3, 5, 17, 3, { .stride = 1, .pad_left = 1, .pad_right = 1 } },
        { 1, 4, 6, 40, 7, { .stride = 2, .pad_left = 3, .pad_right = 2, .dilation = 1 } },
        { 2, 6, 6, 33, 3, { .stride = 1, .pad_left = 5, .pad_right = 5, .dilation = 5 } },  //  ResBlock 'same'
        { 1, 8, 8, 50, 12, { .stride = 2, .pad_left = 5, .pad_right = 6, .groups = 8 } },  //  depthwise FIR
        { 2, 6, 4, 29, 5, { .stride = 3, .pad_left = 0, .pad_right = 4, .dilation = 2, .groups = 2 } },
        { 1, 32, 24, 70, 7, { .stride = 1, .pad_left = 3, .pad_right = 3 } },              //  sgemm path
        { 2, 16, 12, 45, 11, { .stride = 2, .pad_left = 6, .pad_right = 1, .dilation = 3, .groups = 4 } },
    };
    static const s_conv_case_t tcases [] = {
        { 1, 1, 1, 1, 1, { 0 } },
        { 2, 3, 5, 17, 4, { .stride = 2, .pad_left = 1, .pad_right = 1 } },
        { 1, 4, 6, 20, 16, { .stride = 8, .pad_left = 4, .pad_right = 4 } },               //  vocoder up x8
        { 2, 6, 6, 21, 12, { .stride = 2, .pad_left = 0, .pad_right = 0, .groups = 6 } },  //  depthwise up x2
        { 1, 4, 6, 13, 3, { .stride = 3, .pad_left = 1, .pad_right = 1, .output_padding = 2 } },
        { 2, 6, 4, 15, 5, { .stride = 2, .pad_left = 2, .pad_right = 3, .dilation = 2, .groups = 2, .output_padding = 1 } },
        { 1, 32, 24, 30, 10, { .stride = 5, .pad_left = 2, .pad_right = 3 } },             //  sgemm path
        { 2, 24, 16, 19, 7, { .stride = 3, .pad_left = 4, .pad_right = 0, .dilation = 2, .groups = 2 } },
    };
    const s_conv_case_t *cs = transposed? tcases: cases;
    size_t nc = transposed? sizeof (tcases) / sizeof (tcases [0]): sizeof (cases) / sizeof (cases [0]);
    for (size_t ci = 0; ci < nc; ci++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            s_conv_case_t c = cs [ci];
            vdgx_conv1d_params_t q = c.p;
            q.stride = q.stride? q.stride: 1;
            q.dilation = q.dilation? q.dilation: 1;
            q.groups = q.groups? q.groups: 1;
            int64_t G = q.groups, Cin_g = c.Cin / G, Cout_g = c.Cout / G;
            int64_t Lout = transposed? vdgx_conv_transpose1d_out_len (c.L, c.K, &c.p): vdgx_conv1d_out_len (c.L, c.K, &c.p);
            assert (Lout >= 1);
            int64_t nw = transposed? c.Cin * Cout_g * c.K: c.Cout * Cin_g * c.K;
            float *x = s_randv (c.N * c.Cin * c.L, 1.0f), *w = s_randv (nw, 0.5f), *bias = s_randv (c.Cout, 1.0f);
            float *y = s_randv (c.N * c.Cout * Lout, 1.0f);
            double *ref = calloc ((size_t) (c.N * c.Cout * Lout), sizeof (double));
            double *mag = calloc ((size_t) (c.N * c.Cout * Lout), sizeof (double));
            for (int64_t n = 0; n < c.N; n++)
                for (int64_t co = 0; co < c.Cout; co++) {
                    int64_t g = co / Cout_g;
                    for (int64_t t = 0; t < Lout; t++) {
                        double acc = with_bias? bias [co]: 0, m = fabs (acc);
                        for (int64_t cl = 0; cl < Cin_g; cl++) {
                            int64_t cin = g * Cin_g + cl;
                            for (int64_t k = 0; k < c.K; k++) {
                                double term;
                                if (!transposed) {
                                    int64_t i = t * q.stride + k * q.dilation - q.pad_left;
                                    if (i < 0 || i >= c.L)
                                        continue;
                                    term = (double) x [(n * c.Cin + cin) * c.L + i] * w [(co * Cin_g + cl) * c.K + k];
                                }
                                else {
                                    //  t = l*stride + k*dilation - pad_left
                                    int64_t num = t + q.pad_left - k * q.dilation;
                                    if (num < 0 || num % q.stride || num / q.stride >= c.L)
                                        continue;
                                    term = (double) x [(n * c.Cin + cin) * c.L + num / q.stride]
                                           * w [(cin * Cout_g + co % Cout_g) * c.K + k];
                                }
                                acc += term;
                                m += fabs (term);
                            }
                        }
                        ref [(n * c.Cout + co) * Lout + t] = acc;
                        mag [(n * c.Cout + co) * Lout + t] = m;
                    }
                }
            vdgx_tensor_t tx = s_t3 (x, c.N, c.Cin, c.L), ty = s_t3 (y, c.N, c.Cout, Lout);
            vdgx_tensor_t tw = transposed? s_t3 (w, c.Cin, Cout_g, c.K): s_t3 (w, c.Cout, Cin_g, c.K);
            int64_t bs [1] = { c.Cout };
            vdgx_tensor_t tb;
            vdgx_tensor_init (&tb, VDGX_DTYPE_F32, 1, bs, bias, VDGX_DEVICE_CPU);
            int rc = transposed? vdgx_op_conv_transpose1d (b, &ty, &tx, &tw, with_bias? &tb: NULL, &c.p)
                               : vdgx_op_conv1d (b, &ty, &tx, &tw, with_bias? &tb: NULL, &c.p);
            if (rc)
                fprintf (stderr, "\n%s\n", vdgx_backend_error (b));
            assert (rc == 0);
            char what [96];
            snprintf (what, sizeof (what), "%s case %zu bias %d", transposed? "conv_transpose1d": "conv1d", ci, with_bias);
            s_compare (what, y, ref, mag, c.N * c.Cout * Lout, 1e-5);
            free (x); free (w); free (bias); free (y); free (ref); free (mag);
        }
}

static void
s_test_pad (vdgx_backend_t *b)
{
    static const int pads [][2] = { { 0, 0 }, { 3, 0 }, { 0, 4 }, { 2, 5 }, { 6, 6 } };
    int64_t R = 5, L = 7;
    float *x = s_randv (R * L, 1.0f);
    for (int m = 0; m < 3; m++)
        for (size_t pi = 0; pi < sizeof (pads) / sizeof (pads [0]); pi++) {
            int l = pads [pi][0], r = pads [pi][1];
            int64_t Ly = L + l + r;
            float *y = s_randv (R * Ly, 1.0f);
            vdgx_tensor_t tx = s_t3 (x, 1, R, L), ty = s_t3 (y, 1, R, Ly);
            assert (vdgx_op_pad1d (b, &ty, &tx, l, r, (vdgx_pad_mode_t) m) == 0);
            for (int64_t row = 0; row < R; row++)
                for (int64_t t = 0; t < Ly; t++) {
                    int64_t i = t - l;
                    float want;
                    if (i >= 0 && i < L)
                        want = x [row * L + i];
                    else if (m == VDGX_PAD_ZERO)
                        want = 0;
                    else if (m == VDGX_PAD_REPLICATE)
                        want = x [row * L + (i < 0? 0: L - 1)];
                    else        //  reflect about the end samples (not repeating them)
                        want = x [row * L + (i < 0? -i: 2 * L - 2 - i)];
                    if (y [row * Ly + t] != want) {
                        fprintf (stderr, "\nFAIL pad1d mode %d pads %d,%d at %lld,%lld\n", m, l, r, (long long) row, (long long) t);
                        s_failures++;
                    }
                }
            free (y);
        }
    //  reflect needs pads shorter than the input
    float y [20];
    vdgx_tensor_t tx = s_t3 (x, 1, 1, 3), ty = s_t3 (y, 1, 1, 9);
    assert (vdgx_op_pad1d (b, &ty, &tx, 3, 3, VDGX_PAD_REFLECT) == -1 && strstr (vdgx_backend_error (b), "longer"));
    assert (vdgx_op_pad1d (b, &ty, &tx, 3, 3, VDGX_PAD_REPLICATE) == 0 && y [0] == x [0] && y [8] == x [2]);
    free (x);
}

static void
s_test_act (vdgx_backend_t *b)
{
    int64_t N = 2, C = 5, S = 37, n = N * C * S;
    float *x = s_randv (n, 4.0f), *y = s_randv (n, 1.0f), *alpha = s_randv (C, 1.0f), *beta = s_randv (C, 1.0f);
    double *ref = malloc (sizeof (double) * (size_t) n);
    for (int64_t c = 0; c < C; c++) {
        alpha [c] = alpha [c] > 0? alpha [c] + 0.2f: alpha [c] - 0.2f;      //  linear scale: away from 0
        beta [c] = fabsf (beta [c]) + 0.3f;
    }
    vdgx_tensor_t tx = s_t3 (x, N, C, S), ty = s_t3 (y, N, C, S);
    int64_t cs [1] = { C };
    vdgx_tensor_t ta, tb;
    vdgx_tensor_init (&ta, VDGX_DTYPE_F32, 1, cs, alpha, VDGX_DEVICE_CPU);
    vdgx_tensor_init (&tb, VDGX_DTYPE_F32, 1, cs, beta, VDGX_DEVICE_CPU);
    for (int variant = 0; variant < 4; variant++) {
        bool with_beta = variant & 1, logscale = variant & 2;
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (i / S) % C;
            double a = logscale? exp ((double) alpha [c]): alpha [c];
            double bb = with_beta? (logscale? exp ((double) beta [c]): beta [c]): a;
            double s = sin (a * x [i]);
            ref [i] = x [i] + s * s / (bb + 1e-9);
        }
        assert (vdgx_op_snake (b, &ty, &tx, &ta, with_beta? &tb: NULL, logscale) == 0);
        char what [64];
        snprintf (what, sizeof (what), "snake beta %d logscale %d", with_beta, logscale);
        s_compare (what, y, ref, NULL, n, 2e-6 / 0.1);      //  1/|alpha| up to 5 amplifies sin's rounding
    }
    for (int op = 0; op < VDGX_UNARY_COUNT; op++) {
        float slope = op == VDGX_UNARY_LEAKY_RELU? 0.1f: 0.0f;
        for (int64_t i = 0; i < n; i++) {
            double v = x [i];
            ref [i] = op == VDGX_UNARY_LEAKY_RELU? (v >= 0? v: slope * v)
                    : op == VDGX_UNARY_GELU_ERF? 0.5 * v * (1 + erf (v / sqrt (2.0)))
                    : op == VDGX_UNARY_TANH? tanh (v): 1 / (1 + exp (-v));
        }
        assert (vdgx_op_unary (b, &ty, &tx, (vdgx_unary_t) op, slope) == 0);
        char what [32];
        snprintf (what, sizeof (what), "unary %d", op);
        s_compare (what, y, ref, NULL, n, 2e-6);
    }
    assert (vdgx_op_unary (b, &ty, &tx, VDGX_UNARY_COUNT, 0) == -1);
    assert (vdgx_op_snake (b, &ty, &tx, &tb, NULL, false) == 0);       //  any [C] tensor
    vdgx_tensor_t tshort = ta;
    tshort.shape [0] = C - 1;
    tshort.stride [0] = 1;
    assert (vdgx_op_snake (b, &ty, &tx, &tshort, NULL, false) == -1);
    free (x); free (y); free (alpha); free (beta); free (ref);
}

void
vdgx_cpu_ops1d_test (bool verbose)
{
    (void) verbose;
    printf (" * vdgx_cpu_ops1d: ");
    vdgx_backend_t *b = vdgx_backend_new ("cpu", VDGX_DTYPE_F32, NULL);
    assert (b);
    s_test_conv (b, false);
    s_test_conv (b, true);
    s_test_pad (b);
    s_test_act (b);
    //  bad parameters are refused with a message
    float bx [32], by [32], bw [48];
    for (int i = 0; i < 48; i++)
        bw [i] = bx [i % 32] = by [i % 32] = vdgx_test_randf (&s_seed);
    vdgx_tensor_t x = s_t3 (bx, 1, 4, 8), y = s_t3 (by, 1, 4, 6), w = s_t3 (bw, 4, 4, 3);
    vdgx_conv1d_params_t p = { .stride = -1 };
    assert (vdgx_op_conv1d (b, &y, &x, &w, NULL, &p) == -1 && strstr (vdgx_backend_error (b), "parameters"));
    p = (vdgx_conv1d_params_t) { .groups = 3 };
    assert (vdgx_op_conv1d (b, &y, &x, &w, NULL, &p) == -1 && strstr (vdgx_backend_error (b), "channels"));
    assert (vdgx_op_conv1d (b, &y, &x, &w, NULL, NULL) == 0);
    y = s_t3 (by, 1, 4, 7);
    assert (vdgx_op_conv1d (b, &y, &x, &w, NULL, NULL) == -1 && strstr (vdgx_backend_error (b), "expected 6"));
    p = (vdgx_conv1d_params_t) { .stride = 2, .output_padding = 2 };       //  must be < stride
    assert (vdgx_conv_transpose1d_out_len (8, 3, &p) == -1);
    p.output_padding = 1;
    assert (vdgx_conv_transpose1d_out_len (8, 3, &p) == 18);
    assert (vdgx_conv1d_out_len (8, 3, &p) == -1);      //  output_padding is for the transposed one
    vdgx_backend_destroy (&b);
    assert (s_failures == 0);
    printf ("OK\n");
}
