/*  vdgx_nn_selftest.c - vdgx_nn_test: every layer against a plain C reference on random
    (never zero) inputs. CPU backend in f32: tolerance 1e-5 relative to the largest value
    (bf16 weights: 1e-2, their rounding).
*/
#include "vdgx_nn.h"
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_state = 0x2545F4914F6CDD1Dull;

#define s_randv(n, scale) vdgx_test_randv (&s_state, (n), (scale))

static void
s_ref_linear (const float *x, const float *w, const float *bias, float *y, int64_t m, int64_t n, int64_t k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = bias? bias [j]: 0;
            for (int64_t c = 0; c < k; c++)
                s += (double) x [i * k + c] * w [j * k + c];
            y [i * n + j] = (float) s;
        }
}

static void
s_ref_norm (const float *x, float *y, int64_t rows, int64_t dim, bool rms, const float *w,
            const float *bias, float eps, bool one_plus, bool std_eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        double mean = 0, var = 0;
        if (!rms)
            for (int64_t i = 0; i < dim; i++)
                mean += xr [i] / (double) dim;
        for (int64_t i = 0; i < dim; i++)
            var += (xr [i] - mean) * (xr [i] - mean) / (double) dim;
        for (int64_t i = 0; i < dim; i++) {
            double v = (xr [i] - mean) / (std_eps? sqrt (var) + eps: sqrt (var + eps));
            if (w)
                v *= one_plus? 1.0 + w [i]: w [i];
            if (bias)
                v += bias [i];
            y [r * dim + i] = (float) v;
        }
    }
}

static double
s_act (vdgx_act_t a, double x)
{
    if (a == VDGX_ACT_SILU)
        return x / (1 + exp (-x));
    if (a == VDGX_ACT_GELU)
        return 0.5 * x * (1 + erf (x / sqrt (2.0)));
    if (a == VDGX_ACT_TANH)
        return tanh (x);
    if (a == VDGX_ACT_SIGMOID)
        return 1 / (1 + exp (-x));
    return 0.5 * x * (1 + tanh (sqrt (2 / M_PI) * (x + 0.044715 * x * x * x)));
}

void
vdgx_nn_test (bool verbose)
{
    vdgx_backend_t *b = vdgx_test_begin ("vdgx_nn", verbose);
    char *err = NULL;
    const int64_t M = 7, K = 48, N = 40, F = 64;

    //  Views.
    vdgx_tensor_t t;
    assert (vdgx_nn_alloc (b, &t, VDGX_DTYPE_F32, 4, 3, 2, 0) == 0 && t.ndim == 3);
    vdgx_tensor_t r = vdgx_nn_rows (&t, 1, 2);
    assert (r.shape [0] == 2 && r.shape [1] == 3 && (char *) r.data == (char *) t.data + 6 * 4);
    vdgx_tensor_t v = vdgx_nn_view2 (&t, 12, 2);
    assert (v.shape [0] == 12 && v.data == t.data);
    vdgx_nn_free (b, &t);
    assert (!t.data);

    //  Linear with and without bias, f32 and bf16 weights, 3-D input.
    float *x = s_randv ((size_t) (M * K), 1.0f), *w = s_randv ((size_t) (N * K), 0.2f);
    float *bias = s_randv ((size_t) N, 0.5f), *want = malloc ((size_t) (M * F) * sizeof (float));
    vdgx_tensor_t xt, yt;
    const int64_t sx [3] = { 1, M, K };
    assert (vdgx_nn_upload (b, &xt, VDGX_DTYPE_F32, 3, sx, x) == 0);
    assert (vdgx_nn_alloc (b, &yt, VDGX_DTYPE_F32, 1, M, N, 0) == 0);
    for (int fmt = 0; fmt < 2; fmt++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            vdgx_linear_t l;
            assert (vdgx_linear_from_f32 (b, &l, fmt? VDGX_WFMT_BF16: VDGX_WFMT_F32, w,
                                          with_bias? bias: NULL, N, K, VDGX_DTYPE_F32, &err) == 0);
            assert (vdgx_linear_forward (b, &l, &yt, &xt) == 0);
            float *got = vdgx_test_download (b, &yt);
            s_ref_linear (x, w, with_bias? bias: NULL, want, M, N, K);
            double e = vdgx_test_errf (got, want, (size_t) (M * N));
            if (verbose)
                printf ("  linear %s%s: %.3g\n", fmt? "bf16": "f32", with_bias? " +bias": "", e);
            assert (e < (fmt? 1e-2: 1e-5));
            free (got);
            vdgx_linear_release (b, &l);
        }
    //  A shape mismatch is an error, not a crash.
    {
        vdgx_linear_t l;
        assert (vdgx_linear_from_f32 (b, &l, VDGX_WFMT_F32, w, NULL, N, K, VDGX_DTYPE_F32, &err) == 0);
        assert (vdgx_linear_forward (b, &l, &xt, &xt) == -1);
        vdgx_linear_release (b, &l);
    }
    vdgx_wfmt_t pf;
    assert (vdgx_precision_parse ("fp8", &pf) == 0 && pf == VDGX_WFMT_FP8_E4M3);
    assert (vdgx_precision_parse (NULL, &pf) == 0 && pf == VDGX_WFMT_BF16);
    assert (vdgx_precision_parse ("int3", &pf) == -1);
    assert (vdgx_linear_fmt_for (VDGX_WFMT_NVFP4, 40) == VDGX_WFMT_BF16);
    assert (vdgx_linear_fmt_for (VDGX_WFMT_NVFP4, 48) == VDGX_WFMT_NVFP4);

    //  Norms: LayerNorm (plain / affine+bias), RMSNorm (plain / w / 1+w), per head (dim 8
    //  over [M, 6, 8]) and across heads (dim 48); LayerNorm with eps on the std (eps 0.05
    //  so that it differs from eps on the variance).
    float *nw = s_randv ((size_t) K, 1.0f), *nb = s_randv ((size_t) K, 1.0f);
    vdgx_tensor_t nt;
    assert (vdgx_nn_alloc (b, &nt, VDGX_DTYPE_F32, 1, M, K, 0) == 0);
    const struct { vdgx_norm_kind_t kind; int64_t dim; bool w, b, one_plus; } cases [] = {
        { VDGX_NORM_LAYER, K, false, false, false }, { VDGX_NORM_LAYER, K, true, true, false },
        { VDGX_NORM_RMS, K, false, false, false }, { VDGX_NORM_RMS, K, true, false, false },
        { VDGX_NORM_RMS, K, true, false, true }, { VDGX_NORM_RMS, 8, true, false, false },
        { VDGX_NORM_RMS, 8, true, false, true }, { VDGX_NORM_LAYER, 8, true, true, false },
        { VDGX_NORM_LAYER_STD, 8, false, false, false }, { VDGX_NORM_LAYER_STD, K, true, true, false } };
    for (size_t c = 0; c < sizeof (cases) / sizeof (cases [0]); c++) {
        vdgx_norm_t n;
        bool std_eps = cases [c].kind == VDGX_NORM_LAYER_STD;
        float eps = std_eps? 0.05f: 1e-6f;
        assert (vdgx_norm_init (b, &n, cases [c].kind, cases [c].dim, eps, cases [c].w? nw: NULL,
                                cases [c].b? nb: NULL, cases [c].one_plus, &err) == 0);
        vdgx_tensor_t x4 = vdgx_nn_view4 (&xt, 1, M, K / 8, 8);
        assert (vdgx_norm_forward (b, &n, &nt, cases [c].dim == 8? &x4: &xt) == 0);
        float *got = vdgx_test_download (b, &nt);
        s_ref_norm (x, want, M * K / cases [c].dim, cases [c].dim, cases [c].kind == VDGX_NORM_RMS,
                    cases [c].w? nw: NULL, cases [c].b? nb: NULL, eps, cases [c].one_plus, std_eps);
        double e = vdgx_test_errf (got, want, (size_t) (M * K));
        if (verbose)
            printf ("  norm case %zu: %.3g\n", c, e);
        assert (e < 1e-5);
        free (got);
        vdgx_norm_release (b, &n);
    }
    {
        vdgx_norm_t n;
        assert (vdgx_norm_init (b, &n, VDGX_NORM_RMS, 5, 1e-6f, NULL, NULL, false, &err) == 0);
        assert (vdgx_norm_forward (b, &n, &nt, &xt) == -1);     //  48 does not split into 5s
    }

    //  adaLN: table + emb, then modulate and gate with its rows.
    {
        float *tab = s_randv ((size_t) (3 * K), 1.0f), *emb = s_randv ((size_t) (3 * K), 1.0f);
        vdgx_tensor_t tt, et, mt, yt2, rt;
        const int64_t s3 [2] = { 3, K };
        assert (vdgx_nn_upload (b, &tt, VDGX_DTYPE_F32, 2, s3, tab) == 0);
        assert (vdgx_nn_upload (b, &et, VDGX_DTYPE_F32, 2, s3, emb) == 0);
        assert (vdgx_nn_alloc (b, &mt, VDGX_DTYPE_F32, 3, K, 0, 0) == 0);
        assert (vdgx_nn_alloc (b, &yt2, VDGX_DTYPE_F32, M, K, 0, 0) == 0);
        const int64_t sr [2] = { M, K };
        assert (vdgx_nn_upload (b, &rt, VDGX_DTYPE_F32, 2, sr, x) == 0);
        assert (vdgx_adaln_rows (b, &mt, &tt, &et) == 0);
        vdgx_tensor_t shift = vdgx_nn_rows (&mt, 0, 1), scale = vdgx_nn_rows (&mt, 1, 1);
        vdgx_tensor_t gate = vdgx_nn_rows (&mt, 2, 1);
        vdgx_tensor_t x2 = vdgx_nn_view2 (&xt, M, K);
        assert (vdgx_adaln_modulate (b, &yt2, &x2, &shift, &scale) == 0);
        assert (vdgx_adaln_gate (b, &rt, &yt2, &gate) == 0);
        float *got = vdgx_test_download (b, &rt);
        for (int64_t i = 0; i < M; i++)
            for (int64_t c = 0; c < K; c++) {
                double m = x [i * K + c] * (1 + tab [K + c] + emb [K + c]) + tab [c] + emb [c];
                want [i * K + c] = (float) (x [i * K + c] + m * (tab [2 * K + c] + emb [2 * K + c]));
            }
        double e = vdgx_test_errf (got, want, (size_t) (M * K));
        if (verbose)
            printf ("  adaln: %.3g\n", e);
        assert (e < 1e-5);
        free (got);
        free (tab);
        free (emb);
        vdgx_tensor_t *all [] = { &tt, &et, &mt, &yt2, &rt };
        for (size_t i = 0; i < 5; i++)
            vdgx_nn_free (b, all [i]);
    }

    //  Per-token adaLN: y = x (1 + scale) + shift and r += y gate with one table row per token.
    {
        const int64_t R = 6, C = 5;
        float *xh = s_randv ((size_t) (R * C), 1.0f), *sh = s_randv ((size_t) (R * C), 0.5f);
        float *sc = s_randv ((size_t) (R * C), 0.5f), *ga = s_randv ((size_t) (R * C), 0.7f);
        float *rh = s_randv ((size_t) (R * C), 1.0f);
        double *want2 = malloc (sizeof (double) * (size_t) (R * C));
        double *want3 = malloc (sizeof (double) * (size_t) (R * C));
        for (int64_t i = 0; i < R * C; i++) {
            want2 [i] = (double) xh [i] * (1.0 + sc [i]) + sh [i];
            want3 [i] = rh [i] + (double) (float) want2 [i] * ga [i];
        }
        vdgx_tensor_t xt2, st, ct, gt, yt2, rt;
        const int64_t s3 [3] = { 2, R / 2, C }, s2 [2] = { R, C };
        assert (vdgx_nn_upload (b, &xt2, VDGX_DTYPE_F32, 3, s3, xh) == 0);
        assert (vdgx_nn_upload (b, &st, VDGX_DTYPE_F32, 2, s2, sh) == 0);
        assert (vdgx_nn_upload (b, &ct, VDGX_DTYPE_F32, 2, s2, sc) == 0);
        assert (vdgx_nn_upload (b, &gt, VDGX_DTYPE_F32, 2, s2, ga) == 0);
        assert (vdgx_nn_upload (b, &rt, VDGX_DTYPE_F32, 3, s3, rh) == 0);
        assert (vdgx_nn_alloc (b, &yt2, VDGX_DTYPE_F32, 2, R / 2, C, 0) == 0);
        assert (vdgx_adaln_modulate_tokens (b, &yt2, &xt2, &st, &ct) == 0);
        float *got = vdgx_test_download (b, &yt2);
        double e = vdgx_test_err (got, want2, (size_t) (R * C));
        free (got);
        assert (vdgx_adaln_gate_tokens (b, &rt, &yt2, &gt) == 0);
        got = vdgx_test_download (b, &rt);
        double e2 = vdgx_test_err (got, want3, (size_t) (R * C));
        if (verbose)
            printf ("  per-token adaln: %.3g %.3g\n", e, e2);
        assert (e < 1e-6 && e2 < 1e-6);
        //  a table of the wrong size is refused
        vdgx_tensor_t short_t;
        const int64_t s1 [2] = { 1, C };
        assert (vdgx_nn_upload (b, &short_t, VDGX_DTYPE_F32, 2, s1, sh) == 0);
        assert (vdgx_adaln_modulate_tokens (b, &yt2, &xt2, &short_t, &ct) == -1);
        vdgx_nn_free (b, &short_t);
        free (got);
        free (xh); free (sh); free (sc); free (ga); free (rh); free (want2); free (want3);
        vdgx_tensor_t *all [] = { &xt2, &st, &ct, &gt, &yt2, &rt };
        for (size_t i = 0; i < 6; i++)
            vdgx_nn_free (b, all [i]);
    }

    //  MLPs: plain GELU-tanh / exact GELU, SwiGLU, GeGLU; y [M, K] from x [M, K].
    {
        float *wu = s_randv ((size_t) (F * K), 0.2f), *wg = s_randv ((size_t) (F * K), 0.2f);
        float *wd = s_randv ((size_t) (K * F), 0.2f), *bu = s_randv ((size_t) F, 0.3f);
        float *h = malloc ((size_t) (M * F) * sizeof (float)), *g = malloc ((size_t) (M * F) * sizeof (float));
        vdgx_tensor_t h1, h2, y;
        assert (vdgx_nn_alloc (b, &h1, VDGX_DTYPE_F32, M, F, 0, 0) == 0);
        assert (vdgx_nn_alloc (b, &h2, VDGX_DTYPE_F32, M, F, 0, 0) == 0);
        assert (vdgx_nn_alloc (b, &y, VDGX_DTYPE_F32, M, K, 0, 0) == 0);
        const struct { vdgx_mlp_kind_t kind; vdgx_act_t act; } kinds [] = {
            { VDGX_MLP_PLAIN, VDGX_ACT_GELU_TANH }, { VDGX_MLP_PLAIN, VDGX_ACT_GELU },
            { VDGX_MLP_GATED, VDGX_ACT_SILU }, { VDGX_MLP_GATED, VDGX_ACT_GELU_TANH },
            { VDGX_MLP_GATED, VDGX_ACT_GELU }, { VDGX_MLP_PLAIN, VDGX_ACT_TANH },
            { VDGX_MLP_GATED, VDGX_ACT_SIGMOID } };
        for (size_t c = 0; c < sizeof (kinds) / sizeof (kinds [0]); c++) {
            vdgx_mlp_t m = { .kind = kinds [c].kind, .act = kinds [c].act, .dim = K, .hidden = F };
            bool gated = m.kind == VDGX_MLP_GATED;
            assert (vdgx_linear_from_f32 (b, &m.up, VDGX_WFMT_F32, wu, bu, F, K, VDGX_DTYPE_F32, &err) == 0);
            assert (vdgx_linear_from_f32 (b, &m.down, VDGX_WFMT_F32, wd, NULL, K, F, VDGX_DTYPE_F32, &err) == 0);
            if (gated)
                assert (vdgx_linear_from_f32 (b, &m.gate, VDGX_WFMT_F32, wg, NULL, F, K, VDGX_DTYPE_F32, &err) == 0);
            vdgx_tensor_t x2 = vdgx_nn_view2 (&xt, M, K);
            assert (vdgx_mlp_forward (b, &m, &y, &x2, &h1, &h2) == 0);
            float *got = vdgx_test_download (b, &y);
            s_ref_linear (x, wu, bu, h, M, F, K);
            if (gated)
                s_ref_linear (x, wg, NULL, g, M, F, K);
            for (int64_t i = 0; i < M * F; i++)
                h [i] = gated? (float) (s_act (m.act, g [i]) * h [i]): (float) s_act (m.act, h [i]);
            s_ref_linear (h, wd, NULL, want, M, K, F);
            double e = vdgx_test_errf (got, want, (size_t) (M * K));
            if (verbose)
                printf ("  mlp kind %d act %d: %.3g\n", m.kind, m.act, e);
            assert (e < 1e-5);
            free (got);
            vdgx_mlp_release (b, &m);
        }
        free (wu); free (wg); free (wd); free (bu); free (h); free (g);
        vdgx_nn_free (b, &h1);
        vdgx_nn_free (b, &h2);
        vdgx_nn_free (b, &y);
    }

    //  float32 sinusoid (PixArt / LTX timestep embedding) against the float64 one: the angle
    //  t * freq is rounded to float32, so the difference grows with t (about 6e-8 * t).
    {
        float e32 [256];
        double worst = 0;
        const float ts [3] = { 0.05f, 350.0f, 999.0f };
        for (int c = 0; c < 3; c++) {
            float e64 [256];
            vdgx_nn_sinusoidal (ts [c], 256, 10000.0, true, e64);
            vdgx_nn_sinusoidal_f32 (ts [c], 256, 10000.0, 0.0f, true, e32);
            double d = 0;
            for (int i = 0; i < 256; i++)
                d = fmax (d, fabs ((double) e32 [i] - e64 [i]));
            assert (d < 1e-6 + 2e-7 * ts [c]);
            worst = fmax (worst, d);
        }
        //  freq_shift 1 (diffusers' default): exponent over half - 1, sin first
        float a [8];
        vdgx_nn_sinusoidal_f32 (3.0f, 8, 10000.0, 1.0f, false, a);
        for (int i = 0; i < 4; i++) {
            double arg = 3.0 * exp (-log (10000.0) * i / 3.0);
            assert (fabs (a [i] - sin (arg)) < 1e-6 && fabs (a [4 + i] - cos (arg)) < 1e-6);
        }
        if (verbose)
            printf ("  sinusoidal f32 vs f64: %.3g\n", worst);
    }

    //  Host embeddings: sinusoidal values, both orders; patchify of an index ramp puts each
    //  element where the Conv3d flattening says, and unpatchify with (p,q,r,c) order inverts
    //  a patchify whose channel is made innermost.
    {
        float e [8], e2 [8];
        vdgx_nn_sinusoidal (5.0, 8, 10000.0, true, e);
        vdgx_nn_sinusoidal (5.0, 8, 10000.0, false, e2);
        for (int i = 0; i < 4; i++) {
            double arg = 5.0 * pow (10000.0, -i / 4.0);
            assert (e [i] == (float) cos (arg) && e [4 + i] == (float) sin (arg));
            assert (e2 [i] == e [4 + i] && e2 [4 + i] == e [i]);
        }
        const int patch [3] = { 1, 2, 2 };
        const int64_t C = 3, F = 2, H = 4, W = 6, n = C * F * H * W, pin = C * 4;
        float *ramp = malloc (sizeof (float) * n), *tok = malloc (sizeof (float) * n);
        float *perm = malloc (sizeof (float) * n), *back = malloc (sizeof (float) * n);
        for (int64_t i = 0; i < n; i++)
            ramp [i] = (float) i;
        vdgx_nn_patchify3d (ramp, C, F, H, W, patch, tok);
        //  token (f=1, h=1, w=2), element (c=2, p=0, q=1, r=0): x[2][1][3][4]
        int64_t token = (1 * 2 + 1) * 3 + 2;
        assert (tok [token * pin + (2 * 2 + 1) * 2 + 0] == ramp [((2 * F + 1) * H + 3) * W + 4]);
        for (int64_t t = 0; t < n / pin; t++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t k = 0; k < 4; k++)
                    perm [t * pin + k * C + c] = tok [t * pin + c * 4 + k];
        vdgx_nn_unpatchify3d (perm, C, F, H, W, patch, back);
        assert (memcmp (back, ramp, sizeof (float) * n) == 0);
        free (ramp); free (tok); free (perm); free (back);
    }
    {
        //  Bicubic resize: same size is the identity; otherwise each output is Keys' kernel
        //  (A = -0.75, |x| form) over the clamped taps around scale * (i + 0.5) - 0.5.
        uint64_t rs = 77;
        const int64_t C = 2, H = 5, W = 7, OH = 9, OW = 3;
        float *img = vdgx_test_randv (&rs, (size_t) (C * H * W), 1.0f);
        float *same = malloc (sizeof (float) * (size_t) (C * H * W));
        float *out = malloc (sizeof (float) * (size_t) (C * OH * OW));
        vdgx_nn_resize_bicubic (img, C, H, W, H, W, same);
        assert (memcmp (same, img, sizeof (float) * (size_t) (C * H * W)) == 0);
        vdgx_nn_resize_bicubic (img, C, H, W, OH, OW, out);
        double *want2 = malloc (sizeof (double) * (size_t) (C * OH * OW));
        for (int64_t ci = 0; ci < C; ci++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double sy = (double) H / OH * (i + 0.5) - 0.5, sx = (double) W / OW * (j + 0.5) - 0.5;
                    double acc = 0;
                    for (int64_t yy = (int64_t) floor (sy) - 1; yy <= (int64_t) floor (sy) + 2; yy++)
                        for (int64_t xx = (int64_t) floor (sx) - 1; xx <= (int64_t) floor (sx) + 2; xx++) {
                            double k [2], d [2] = { fabs (sy - yy), fabs (sx - xx) };
                            for (int a = 0; a < 2; a++) {
                                double A = -0.75, t = d [a];
                                k [a] = t <= 1? ((A + 2) * t - (A + 3)) * t * t + 1
                                      : t < 2? ((A * t - 5 * A) * t + 8 * A) * t - 4 * A: 0;
                            }
                            int64_t cy = yy < 0? 0: yy >= H? H - 1: yy, cx = xx < 0? 0: xx >= W? W - 1: xx;
                            acc += k [0] * k [1] * img [(ci * H + cy) * W + cx];
                        }
                    want2 [(ci * OH + i) * OW + j] = acc;
                }
        double e2 = vdgx_test_err (out, want2, (size_t) (C * OH * OW));
        if (verbose)
            printf ("bicubic err %.2e ", e2);
        assert (e2 < 1e-5);
        free (img); free (same); free (out); free (want2);
    }
    {
        //  Trilinear resize: same size is the identity; otherwise the separable hat kernel
        //  at max(0, in / out * (i + 0.5) - 0.5) with the last index repeated past the edge.
        uint64_t rs = 91;
        const int64_t C = 2, D = 4, H = 5, W = 3, OD = 2, OH = 7, OW = 3;
        float *vol = vdgx_test_randv (&rs, (size_t) (C * D * H * W), 1.0f);
        float *same = malloc (sizeof (float) * (size_t) (C * D * H * W));
        float *out = malloc (sizeof (float) * (size_t) (C * OD * OH * OW));
        double *want3 = malloc (sizeof (double) * (size_t) (C * OD * OH * OW));
        vdgx_nn_resize_trilinear (vol, C, D, H, W, D, H, W, same);
        assert (memcmp (same, vol, sizeof (float) * (size_t) (C * D * H * W)) == 0);
        vdgx_nn_resize_trilinear (vol, C, D, H, W, OD, OH, OW, out);
        const int64_t in [3] = { D, H, W }, on [3] = { OD, OH, OW };
        for (int64_t ci = 0; ci < C; ci++)
            for (int64_t a = 0; a < OD; a++)
                for (int64_t i = 0; i < OH; i++)
                    for (int64_t j = 0; j < OW; j++) {
                        const int64_t o [3] = { a, i, j };
                        double acc = 0;
                        for (int64_t zz = 0; zz < D; zz++)
                            for (int64_t yy = 0; yy < H; yy++)
                                for (int64_t xx = 0; xx < W; xx++) {
                                    const int64_t p [3] = { zz, yy, xx };
                                    double k = 1;
                                    for (int ax = 0; ax < 3; ax++) {
                                        double src = (double) in [ax] / on [ax] * (o [ax] + 0.5) - 0.5;
                                        src = src < 0? 0: src;
                                        double lo = floor (src), fr = src - lo;
                                        double hi = lo + 1 < in [ax]? lo + 1: lo;
                                        double kw = (p [ax] == lo? 1 - fr: 0) + (p [ax] == hi? fr: 0);
                                        k *= kw;
                                    }
                                    acc += k * vol [((ci * D + zz) * H + yy) * W + xx];
                                }
                        want3 [((ci * OD + a) * OH + i) * OW + j] = acc;
                    }
        double e3 = vdgx_test_err (out, want3, (size_t) (C * OD * OH * OW));
        if (verbose)
            printf ("trilinear err %.2e ", e3);
        assert (e3 < 1e-6);
        free (vol); free (same); free (out); free (want3);
    }

    free (x); free (w); free (bias); free (want); free (nw); free (nb);
    vdgx_nn_free (b, &xt);
    vdgx_nn_free (b, &yt);
    vdgx_nn_free (b, &nt);
    free (err);
    //  PixelNorm over the channels of [2, C, S], plain and modulated.
    {
        const int64_t N = 2, C = 5, S = 7;
        float *xh = s_randv ((size_t) (N * C * S), 1.0f), *sh = s_randv ((size_t) C, 0.5f);
        float *sc = s_randv ((size_t) C, 0.5f);
        vdgx_tensor_t x, shift, scale, y;
        const int64_t sx [3] = { N, C, S }, sv [1] = { C };
        assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 3, sx, xh) == 0);
        assert (vdgx_nn_upload (b, &shift, VDGX_DTYPE_F32, 1, sv, sh) == 0);
        assert (vdgx_nn_upload (b, &scale, VDGX_DTYPE_F32, 1, sv, sc) == 0);
        double *want = (double *) malloc (sizeof (double) * (size_t) (N * C * S));
        for (int mod = 0; mod < 2; mod++) {
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < S; i++) {
                    double ms = 0;
                    for (int64_t c = 0; c < C; c++)
                        ms += (double) xh [(n * C + c) * S + i] * xh [(n * C + c) * S + i];
                    double r = 1.0 / sqrt (ms / (double) C + 1e-8);
                    for (int64_t c = 0; c < C; c++) {
                        double v = xh [(n * C + c) * S + i] * r;
                        want [(n * C + c) * S + i] = mod? v * (1.0 + sc [c]) + sh [c]: v;
                    }
                }
            assert (vdgx_pixel_norm (b, &y, &x, 1e-8f, mod? &shift: NULL, mod? &scale: NULL) == 0);
            assert (y.ndim == 3 && y.shape [1] == C);
            float *got = vdgx_test_download (b, &y);
            double e = vdgx_test_err (got, want, (size_t) (N * C * S));
            if (verbose)
                printf ("  pixel norm%s: %.3g\n", mod? " (modulated)": "", e);
            assert (e < 1e-5);
            free (got);
            vdgx_nn_free (b, &y);
        }
        free (want); free (xh); free (sh); free (sc);
        vdgx_nn_free (b, &x); vdgx_nn_free (b, &shift); vdgx_nn_free (b, &scale);
    }
    vdgx_test_end (&b);
}
