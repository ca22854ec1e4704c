/*  vdgx_conv_selftest.c - vdgx_conv_test: a video convolved in chunks through the causal
    cache equals the whole video convolved at once; 1-D layers (plain, transposed, up- and
    downsampling, dilation, groups) and Snake / leaky ReLU against plain C references on
    random inputs (CPU f32, tolerance 1e-5 of the largest value).
*/
#include "vdgx_conv.h"
#include "vdgx_nn_testing.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_state = 0xD1B54A32D192ED03ull;

#define s_randv(n, scale) vdgx_test_randv (&s_state, (n), (scale))

//  PyTorch Conv1d / ConvTranspose1d on the host (float64).
static void
s_ref_conv1d (const vdgx_conv1d_t *c, const float *x, int64_t N, int64_t L, const float *w,
              const float *bias, double *y, int64_t lout)
{
    int64_t G = c->p.groups > 0? c->p.groups: 1, S = c->p.stride > 0? c->p.stride: 1;
    int64_t D = c->p.dilation > 0? c->p.dilation: 1, cig = c->cin / G, cog = c->cout / G;
    for (int64_t i = 0; i < N * c->cout * lout; i++)
        y [i] = bias? bias [(i / lout) % c->cout]: 0.0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < c->cout; co++) {
            int64_t g = co / cog;
            for (int64_t ci = g * cig; ci < (g + 1) * cig; ci++)
                for (int64_t k = 0; k < c->k; k++) {
                    double wv = c->transposed? w [(ci * cog + co % cog) * c->k + k]
                                             : w [(co * cig + ci - g * cig) * c->k + k];
                    for (int64_t l = 0; l < (c->transposed? L: lout); l++) {
                        int64_t t = c->transposed? l * S + k * D - c->p.pad_left: l * S + k * D - c->p.pad_left;
                        if (c->transposed && t >= 0 && t < lout)
                            y [(n * c->cout + co) * lout + t] += x [(n * c->cin + ci) * L + l] * wv;
                        if (!c->transposed && t >= 0 && t < L)
                            y [(n * c->cout + co) * lout + l] += x [(n * c->cin + ci) * L + t] * wv;
                    }
                }
        }
}


//  x [C, L] replicate-padded by pad each side, a transposed depthwise filter f [K] with
//  stride r (times gain), outputs [crop, crop + len) (float64).
static void
s_ref_up (const float *x, int64_t C, int64_t L, int pad, const double *f, int64_t K, int r,
          double gain, int64_t crop, int64_t len, double *y)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t t = 0; t < len; t++) {
            double acc = 0;
            for (int64_t j = 0; j < L + 2 * pad; j++) {
                int64_t k = t + crop - r * j;
                if (k < 0 || k >= K)
                    continue;
                int64_t src = j - pad < 0? 0: j - pad >= L? L - 1: j - pad;
                acc += x [c * L + src] * f [k];
            }
            y [c * len + t] = gain * acc;
        }
}

void
vdgx_conv_test (bool verbose)
{
    vdgx_backend_t *b = vdgx_test_begin ("vdgx_conv", verbose);
    char *err = NULL;

    //  Causal conv3d: 9 frames at once vs chunks 1 + 4 + 4 (the VAE's) and 2 + 3 + 4.
    {
        const int64_t C = 3, CO = 4, F = 9, H = 5, W = 6;
        float *xh = s_randv ((size_t) (C * F * H * W), 1.0f), *wh = s_randv ((size_t) (CO * C * 27), 0.3f);
        float *bh = s_randv ((size_t) CO, 0.3f);
        vdgx_tensor_t x, w, bias, y;
        const int64_t sx [5] = { 1, C, F, H, W }, sw [5] = { CO, C, 3, 3, 3 }, sb [1] = { CO };
        assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 5, sx, xh) == 0);
        assert (vdgx_nn_upload (b, &w, VDGX_DTYPE_F32, 5, sw, wh) == 0);
        assert (vdgx_nn_upload (b, &bias, VDGX_DTYPE_F32, 1, sb, bh) == 0);
        assert (vdgx_cconv3d (b, &y, &x, &w, &bias, NULL) == 0);
        float *whole = vdgx_test_download (b, &y);
        vdgx_nn_free (b, &y);
        const int64_t plans [2][3] = { { 1, 4, 4 }, { 2, 3, 4 } };
        for (int pi = 0; pi < 2; pi++) {
            vdgx_tensor_t cache = { 0 };
            int64_t at = 0;
            double e = 0;
            for (int ci = 0; ci < 3; ci++) {
                int64_t n = plans [pi][ci];
                vdgx_tensor_t part;
                assert (vdgx_nn_alloc (b, &part, VDGX_DTYPE_F32, 1, C, n, H) == 0);
                const int64_t sp [5] = { 1, C, n, H, W };
                vdgx_nn_free (b, &part);
                float *ph = malloc (sizeof (float) * (size_t) (C * n * H * W));
                for (int64_t c = 0; c < C; c++)
                    memcpy (ph + c * n * H * W, xh + (c * F + at) * H * W, sizeof (float) * (size_t) (n * H * W));
                assert (vdgx_nn_upload (b, &part, VDGX_DTYPE_F32, 5, sp, ph) == 0);
                assert (vdgx_cconv3d (b, &y, &part, &w, &bias, &cache) == 0);
                assert (cache.shape [2] == (at + n < 2? at + n: 2));
                float *got = vdgx_test_download (b, &y);
                for (int64_t c = 0; c < CO; c++)
                    for (int64_t i = 0; i < n * H * W; i++)
                        e = fmax (e, fabs (got [c * n * H * W + i] - whole [(c * F + at) * H * W + i]));
                free (got);
                free (ph);
                vdgx_nn_free (b, &y);
                vdgx_nn_free (b, &part);
                at += n;
            }
            if (verbose)
                printf ("  causal conv3d in chunks vs whole: %.3g\n", e);
            assert (e < 1e-5);
            vdgx_nn_free (b, &cache);
        }
        //  Bad shapes are errors.
        vdgx_tensor_t x4 = vdgx_nn_view4 (&x, C, F, H, W);
        assert (vdgx_cconv3d (b, &y, &x4, &w, &bias, NULL) == -1 && !y.data);
        free (xh); free (wh); free (bh); free (whole);
        vdgx_nn_free (b, &x); vdgx_nn_free (b, &w); vdgx_nn_free (b, &bias);
    }

    //  Non-causal conv3d (replicate in time, reflect / zero in space), pad3d and
    //  depth-to-space against plain loops.
    {
        const int64_t C = 3, CO = 4, F = 4, H = 5, W = 6;
        float *xh = s_randv ((size_t) (C * F * H * W), 1.0f), *wh = s_randv ((size_t) (CO * C * 27), 0.3f);
        float *bh = s_randv ((size_t) CO, 0.3f);
        vdgx_tensor_t x, w, bias, y;
        const int64_t sx [5] = { 1, C, F, H, W }, sw [5] = { CO, C, 3, 3, 3 }, sb [1] = { CO };
        assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 5, sx, xh) == 0);
        assert (vdgx_nn_upload (b, &w, VDGX_DTYPE_F32, 5, sw, wh) == 0);
        assert (vdgx_nn_upload (b, &bias, VDGX_DTYPE_F32, 1, sb, bh) == 0);
        for (int reflect = 0; reflect < 2; reflect++) {
            vdgx_pad_mode_t sm = reflect? VDGX_PAD_REFLECT: VDGX_PAD_ZERO;
            double *want = (double *) calloc ((size_t) (CO * F * H * W), sizeof (double));
            for (int64_t o = 0; o < CO; o++)
                for (int64_t f = 0; f < F; f++)
                    for (int64_t h = 0; h < H; h++)
                        for (int64_t x0 = 0; x0 < W; x0++) {
                            double acc = bh [o];
                            for (int64_t c = 0; c < C; c++)
                                for (int kt = 0; kt < 3; kt++)
                                    for (int kh = 0; kh < 3; kh++)
                                        for (int kw = 0; kw < 3; kw++) {
                                            int64_t ft = f + kt - 1, hh = h + kh - 1, ww = x0 + kw - 1;
                                            ft = ft < 0? 0: ft >= F? F - 1: ft;
                                            if (reflect) {
                                                hh = hh < 0? -hh: hh >= H? 2 * (H - 1) - hh: hh;
                                                ww = ww < 0? -ww: ww >= W? 2 * (W - 1) - ww: ww;
                                            }
                                            else if (hh < 0 || hh >= H || ww < 0 || ww >= W)
                                                continue;
                                            acc += (double) xh [((c * F + ft) * H + hh) * W + ww]
                                                 * wh [(((o * C + c) * 3 + kt) * 3 + kh) * 3 + kw];
                                        }
                            want [((o * F + f) * H + h) * W + x0] = acc;
                        }
            assert (vdgx_conv3d_same (b, &y, &x, &w, &bias, VDGX_PAD_REPLICATE, sm) == 0);
            float *got = vdgx_test_download (b, &y);
            double e = vdgx_test_err (got, want, (size_t) (CO * F * H * W));
            if (verbose)
                printf ("  conv3d same (replicate time, %s space): %.3g\n", reflect? "reflect": "zero", e);
            assert (e < 1e-5);
            free (got); free (want);
            vdgx_nn_free (b, &y);
        }
        //  pad3d with 2 frames / rows / columns; reflect needs a longer side than the pad.
        assert (vdgx_pad3d (b, &y, &x, 2, VDGX_PAD_REFLECT, 2, 2, VDGX_PAD_REPLICATE) == 0);
        assert (y.shape [2] == F + 4 && y.shape [3] == H + 4 && y.shape [4] == W + 4);
        float *got = vdgx_test_download (b, &y);
        double e = 0;
        for (int64_t c = 0; c < C; c++)
            for (int64_t f = 0; f < F + 4; f++)
                for (int64_t h = 0; h < H + 4; h++)
                    for (int64_t x0 = 0; x0 < W + 4; x0++) {
                        int64_t ft = f - 2, hh = h - 2, ww = x0 - 2;
                        ft = ft < 0? -ft: ft >= F? 2 * (F - 1) - ft: ft;
                        hh = hh < 0? 0: hh >= H? H - 1: hh;
                        ww = ww < 0? 0: ww >= W? W - 1: ww;
                        e = fmax (e, fabs (got [((c * (F + 4) + f) * (H + 4) + h) * (W + 4) + x0]
                                           - xh [((c * F + ft) * H + hh) * W + ww]));
                    }
        assert (e == 0);
        free (got);
        vdgx_nn_free (b, &y);
        assert (vdgx_pad3d (b, &y, &x, 4, VDGX_PAD_REFLECT, 0, 0, VDGX_PAD_ZERO) == -1 && !y.data);
        //  Depth-to-space for every stride the LTX decoders use.
        const int strides [4][3] = { { 2, 2, 2 }, { 2, 1, 1 }, { 1, 2, 2 }, { 1, 1, 1 } };
        for (int s = 0; s < 4; s++) {
            const int *st = strides [s];
            int64_t r = st [0] * st [1] * st [2], CC = 2, IC = CC * r;
            float *dh = s_randv ((size_t) (IC * F * H * W), 1.0f);
            vdgx_tensor_t d;
            const int64_t sd [5] = { 1, IC, F, H, W };
            assert (vdgx_nn_upload (b, &d, VDGX_DTYPE_F32, 5, sd, dh) == 0);
            assert (vdgx_depth_to_space3d (b, &y, &d, st) == 0);
            assert (y.shape [1] == CC && y.shape [2] == F * st [0] && y.shape [3] == H * st [1] && y.shape [4] == W * st [2]);
            float *dg = vdgx_test_download (b, &y);
            int64_t OF = F * st [0], OH = H * st [1], OW = W * st [2];
            int bad = 0;
            for (int64_t c = 0; c < CC; c++)
                for (int64_t f = 0; f < OF; f++)
                    for (int64_t h = 0; h < OH; h++)
                        for (int64_t x0 = 0; x0 < OW; x0++) {
                            int64_t ic = ((c * st [0] + f % st [0]) * st [1] + h % st [1]) * st [2] + x0 % st [2];
                            float v = dh [((ic * F + f / st [0]) * H + h / st [1]) * W + x0 / st [2]];
                            bad += dg [((c * OF + f) * OH + h) * OW + x0] != v;
                        }
            if (verbose)
                printf ("  depth to space (%d,%d,%d): %d wrong\n", st [0], st [1], st [2], bad);
            assert (bad == 0);
            free (dg); free (dh);
            vdgx_nn_free (b, &y);
            vdgx_nn_free (b, &d);
        }
        free (xh); free (wh); free (bh);
        vdgx_nn_free (b, &x); vdgx_nn_free (b, &w); vdgx_nn_free (b, &bias);
    }

    //  1-D layers from a (random) weight source.
    {
        vdgx_wsrc_t *src = vdgx_wsrc_new_random (3, "conv test");
        const int64_t N = 2, L = 12;
        struct { bool t; int64_t cin, cout, k; vdgx_conv1d_params_t p; int64_t want_len; } cases [] = {
            { false, 4, 6, 3, { .pad_left = 1, .pad_right = 1 }, 12 },
            { false, 4, 6, 3, { .dilation = 2, .pad_left = 2, .pad_right = 2, .groups = 2 }, 12 },
            { false, 4, 4, 4, vdgx_conv1d_downsample (2, 4), 6 },
            { true, 4, 6, 4, vdgx_conv1d_upsample (2, 4), 24 },
            { true, 4, 4, 11, vdgx_conv1d_upsample (5, 11), 60 },
            { true, 4, 6, 3, { .stride = 2, .output_padding = 1, .groups = 2 }, 26 },
        };
        for (size_t ci = 0; ci < sizeof (cases) / sizeof (cases [0]); ci++) {
            vdgx_conv1d_t c;
            assert (vdgx_conv1d_load (src, b, &c, "up.0", cases [ci].cin, cases [ci].cout, cases [ci].k,
                                      cases [ci].t, &cases [ci].p, true, VDGX_DTYPE_F32, &err) == 0);
            assert (vdgx_conv1d_layer_out_len (&c, L) == cases [ci].want_len);
            float *xh = s_randv ((size_t) (N * c.cin * L), 1.0f);
            vdgx_tensor_t x, y;
            const int64_t sx [3] = { N, c.cin, L };
            assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 3, sx, xh) == 0);
            assert (vdgx_conv1d_forward (b, &c, &y, &x, &err) == 0 && y.shape [2] == cases [ci].want_len);
            float *got = vdgx_test_download (b, &y), *wh = vdgx_test_download (b, &c.w), *bh = vdgx_test_download (b, &c.b);
            int64_t lout = y.shape [2];
            double *want = malloc (sizeof (double) * (size_t) (N * c.cout * lout));
            s_ref_conv1d (&c, xh, N, L, wh, bh, want, lout);
            double e = vdgx_test_err (got, want, (size_t) (N * c.cout * lout));
            if (verbose)
                printf ("  conv1d case %zu (%s, L %lld -> %lld): %.3g\n", ci, c.transposed? "transposed": "plain",
                        (long long) L, (long long) lout, e);
            assert (e < 1e-5);
            free (xh); free (got); free (wh); free (bh); free (want);
            vdgx_nn_free (b, &y);
            //  Wrong channel count: an error.
            vdgx_tensor_t xbad = vdgx_nn_view3 (&x, N * 2, c.cin / 2, L);
            assert (vdgx_conv1d_forward (b, &c, &y, &xbad, &err) == -1 && err);
            vdgx_nn_free (b, &x);
            vdgx_conv1d_release (b, &c);
        }
        //  Snake / SnakeBeta (log scale), leaky ReLU.
        const int64_t C = 5;
        float *xh = s_randv ((size_t) (N * C * L), 2.0f);
        vdgx_tensor_t x, y;
        const int64_t sx [3] = { N, C, L };
        assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 3, sx, xh) == 0);
        assert (vdgx_nn_alloc (b, &y, VDGX_DTYPE_F32, N, C, L, 0) == 0);
        double *want = malloc (sizeof (double) * (size_t) (N * C * L));
        for (int beta = 0; beta < 2; beta++) {
            vdgx_snake_t s;
            assert (vdgx_snake_load (src, b, &s, "act", C, beta, beta, &err) == 0);
            assert (vdgx_snake_forward (b, &s, &y, &x) == 0);
            float *al = vdgx_test_download (b, &s.alpha), *be = beta? vdgx_test_download (b, &s.beta): NULL, *got = vdgx_test_download (b, &y);
            for (int64_t i = 0; i < N * C * L; i++) {
                int64_t c = (i / L) % C;
                double a = beta? exp (al [c]): al [c], bb = beta? exp (be [c]): al [c];
                double sn = sin (a * xh [i]);
                want [i] = xh [i] + sn * sn / (bb + 1e-9);
            }
            double e = vdgx_test_err (got, want, (size_t) (N * C * L));
            if (verbose)
                printf ("  snake%s: %.3g\n", beta? "beta (log scale)": "", e);
            assert (e < 1e-5);
            free (al); free (be); free (got);
            vdgx_snake_release (b, &s);
        }
        assert (vdgx_leaky_relu (b, &y, &x, 0.1f) == 0);
        float *got = vdgx_test_download (b, &y);
        for (int64_t i = 0; i < N * C * L; i++)
            want [i] = xh [i] >= 0? xh [i]: 0.1 * xh [i];
        assert (vdgx_test_err (got, want, (size_t) (N * C * L)) < 1e-6);
        free (got); free (want); free (xh);
        vdgx_nn_free (b, &x);
        vdgx_nn_free (b, &y);
        vdgx_wsrc_destroy (&src);
    }

    //  Anti-aliased SnakeBeta (BigVGAN v2 Activation1d, filters K = 12) and Hann-sinc x3
    //  upsampling against float64 references.
    {
        vdgx_wsrc_t *src = vdgx_wsrc_new_random (5, "conv test");
        const int64_t C = 3, L = 17, K = 12;
        float *xh = s_randv ((size_t) (C * L), 1.5f);
        vdgx_tensor_t x, y;
        const int64_t sx [3] = { 1, C, L };
        assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 3, sx, xh) == 0);
        vdgx_aa_act_t a;
        assert (vdgx_aa_act_load (src, b, &a, "acts1.0", C, K, true, true, &err) == 0);
        assert (vdgx_aa_act_forward (b, &a, &y, &x, &err) == 0 && y.shape [2] == L);
        float *got = vdgx_test_download (b, &y), *fu = vdgx_test_download (b, &a.up);
        float *fd = vdgx_test_download (b, &a.down), *al = vdgx_test_download (b, &a.act.alpha);
        float *be = vdgx_test_download (b, &a.act.beta);
        double fuk [12], fdk [12], *u = malloc (sizeof (double) * (size_t) (C * 2 * L));
        for (int64_t k = 0; k < K; k++) {
            assert (fu [k] == fu [K + k] && fd [k] == fd [2 * K + k]);    //  one filter per channel
            fuk [k] = fu [k] / 2.0;
            fdk [k] = fd [k];
        }
        s_ref_up (xh, C, L, (int) (K / 2 - 1), fuk, K, 2, 2.0, 15, 2 * L, u);
        double *want = malloc (sizeof (double) * (size_t) (C * L));
        for (int64_t c = 0; c < C; c++) {
            double aa = exp (al [c]), bb = exp (be [c]);
            for (int64_t t = 0; t < 2 * L; t++) {
                double sn = sin (aa * u [c * 2 * L + t]);
                u [c * 2 * L + t] += sn * sn / (bb + 1e-9);
            }
            for (int64_t l = 0; l < L; l++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t j = 2 * l + k - (K / 2 - 1);
                    j = j < 0? 0: j >= 2 * L? 2 * L - 1: j;
                    acc += u [c * 2 * L + j] * fdk [k];
                }
                want [c * L + l] = acc;
            }
        }
        double e = vdgx_test_err (got, want, (size_t) (C * L));
        if (verbose)
            printf ("  anti-aliased snakebeta: %.3g\n", e);
        assert (e < 1e-5);
        free (got); free (fu); free (fd); free (al); free (be); free (u); free (want);
        vdgx_nn_free (b, &y);
        vdgx_aa_act_release (b, &a);
        //  Odd filters and wrong channel counts are errors.
        assert (vdgx_aa_act_load (src, b, &a, "acts1.0", C, 11, true, true, &err) == -1 && err);
        assert (vdgx_aa_act_load (src, b, &a, "acts1.0", C, K, true, true, &err) == 0);
        vdgx_tensor_t xbad = vdgx_nn_view3 (&x, 1, 1, C * L);
        assert (vdgx_aa_act_forward (b, &a, &y, &xbad, &err) == -1 && !y.data);
        vdgx_aa_act_release (b, &a);

        //  Hann-sinc x3: the taps against the float64 formula, the layer against the
        //  reference, and a constant signal stays (nearly) constant.
        const int R = 3, KS = 2 * 7 * R + 1;
        float taps [43];
        vdgx_sinc_up_filter (R, taps);
        double f [43], te = 0;
        for (int i = 0; i < KS; i++) {
            double t = ((double) i / R - 7) * 0.99, tc = t < -6? -6: t > 6? 6: t;
            double w = cos (tc * M_PI / 12), sc = t == 0? 1: sin (M_PI * t) / (M_PI * t);
            f [i] = sc * w * w * 0.99 / R;
            te = fmax (te, fabs (taps [i] - f [i]));
        }
        assert (te < 1e-6 && fabs (taps [21] - 0.33) < 1e-7);
        vdgx_sinc_up_t su;
        assert (vdgx_sinc_up_init (b, &su, R, C, &err) == 0);
        assert (vdgx_sinc_up_forward (b, &su, &y, &x, &err) == 0 && y.shape [2] == R * L);
        got = vdgx_test_download (b, &y);
        want = malloc (sizeof (double) * (size_t) (C * R * L));
        s_ref_up (xh, C, L, 7, f, KS, R, R, 2 * 7 * R, R * L, want);
        e = vdgx_test_err (got, want, (size_t) (C * R * L));
        if (verbose)
            printf ("  hann-sinc x3 upsampling: %.3g (taps %.3g)\n", e, te);
        assert (e < 1e-5);
        free (got); free (want);
        vdgx_nn_free (b, &y);
        for (int64_t i = 0; i < C * L; i++)
            xh [i] = 0.5f;
        vdgx_nn_free (b, &x);
        assert (vdgx_nn_upload (b, &x, VDGX_DTYPE_F32, 3, sx, xh) == 0);
        assert (vdgx_sinc_up_forward (b, &su, &y, &x, &err) == 0);
        got = vdgx_test_download (b, &y);
        for (int64_t i = 0; i < C * R * L; i++)
            assert (fabs (got [i] - 0.5) < 0.01);
        free (got);
        vdgx_nn_free (b, &y);
        vdgx_sinc_up_release (b, &su);
        free (xh);
        vdgx_nn_free (b, &x);
        vdgx_wsrc_destroy (&src);
    }
    free (err);
    vdgx_test_end (&b);
}
