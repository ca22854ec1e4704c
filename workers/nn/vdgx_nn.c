/*  vdgx_nn.c - views, linear, norms, adaLN and MLPs of the model toolkit (see vdgx_nn.h). */
#include "vdgx_nn.h"
#include "vdgx_quant.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------------------
//  Views and errors

vdgx_tensor_t
vdgx_nn_view (const vdgx_tensor_t *t, int ndim, const int64_t *shape)
{
    vdgx_tensor_t v;
    int rc = vdgx_tensor_reshape (&v, t, ndim, shape);
    assert (rc == 0);
    (void) rc;
    return v;
}

vdgx_tensor_t
vdgx_nn_view2 (const vdgx_tensor_t *t, int64_t d0, int64_t d1)
{
    const int64_t s [2] = { d0, d1 };
    return vdgx_nn_view (t, 2, s);
}

vdgx_tensor_t
vdgx_nn_view3 (const vdgx_tensor_t *t, int64_t d0, int64_t d1, int64_t d2)
{
    const int64_t s [3] = { d0, d1, d2 };
    return vdgx_nn_view (t, 3, s);
}

vdgx_tensor_t
vdgx_nn_view4 (const vdgx_tensor_t *t, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    const int64_t s [4] = { d0, d1, d2, d3 };
    return vdgx_nn_view (t, 4, s);
}

vdgx_tensor_t
vdgx_nn_rows (const vdgx_tensor_t *t, int64_t row, int64_t rows)
{
    assert (t->ndim >= 1 && row >= 0 && rows >= 0 && row + rows <= t->shape [0]);
    assert (vdgx_tensor_is_contiguous (t));
    int64_t shape [VDGX_MAX_DIMS];
    memcpy (shape, t->shape, sizeof (shape));
    shape [0] = rows;
    size_t inner = 1;
    for (int i = 1; i < t->ndim; i++)
        inner *= (size_t) t->shape [i];
    vdgx_tensor_t v;
    vdgx_tensor_init (&v, t->dtype, t->ndim, shape,
                      (char *) t->data + (size_t) row * inner * vdgx_dtype_size (t->dtype), t->device);
    return v;
}

void
vdgx_nn_free (vdgx_backend_t *b, vdgx_tensor_t *t)
{
    if (t->data && t->owner)
        vdgx_tensor_release (b, t);
    memset (t, 0, sizeof (*t));
}

int
vdgx_nn_alloc (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int64_t d0, int64_t d1,
               int64_t d2, int64_t d3)
{
    int64_t shape [4] = { d0, d1, d2, d3 };
    int ndim = d3? 4: d2? 3: d1? 2: 1;
    return vdgx_tensor_alloc (b, t, dtype, ndim, shape);
}

int
vdgx_nn_upload (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int ndim,
                const int64_t *shape, const float *src)
{
    if (vdgx_tensor_alloc (b, t, dtype, ndim, shape))
        return -1;
    if (vdgx_tensor_from_f32 (b, t, src)) {
        vdgx_nn_free (b, t);
        return -1;
    }
    return 0;
}

int
vdgx_nn_fail (vdgx_backend_t *b, char **err, const char *who, const char *what)
{
    vdgx_set_error (err, "%s: %s failed: %s", who, what, vdgx_backend_error (b));
    return -1;
}

//  ---------------------------------------------------------------------------------------
//  Linear

int
vdgx_precision_parse (const char *p, vdgx_wfmt_t *fmt)
{
    static const struct { const char *name; vdgx_wfmt_t fmt; } names [] = {
        { "bf16", VDGX_WFMT_BF16 }, { "fp32", VDGX_WFMT_F32 }, { "f32", VDGX_WFMT_F32 },
        { "fp16", VDGX_WFMT_F16 }, { "f16", VDGX_WFMT_F16 }, { "fp8", VDGX_WFMT_FP8_E4M3 },
        { "fp4", VDGX_WFMT_NVFP4 }, { "nvfp4", VDGX_WFMT_NVFP4 }, { "nf4", VDGX_WFMT_NF4 },
        { "mxfp4", VDGX_WFMT_MXFP4 } };
    if (!p)
        p = "bf16";
    for (size_t i = 0; i < sizeof (names) / sizeof (names [0]); i++)
        if (strcmp (p, names [i].name) == 0) {
            *fmt = names [i].fmt;
            return 0;
        }
    return -1;
}

vdgx_wfmt_t
vdgx_linear_fmt_for (vdgx_wfmt_t fmt, int64_t k)
{
    int64_t block = fmt == VDGX_WFMT_NVFP4? 16: fmt == VDGX_WFMT_MXFP4? 32: fmt == VDGX_WFMT_NF4? 64: 1;
    return k % block == 0? fmt: VDGX_WFMT_BF16;
}

int
vdgx_linear_from_weight (vdgx_backend_t *b, vdgx_linear_t *l, const vdgx_weight_t *host, char **err)
{
    if (vdgx_weight_to_backend (b, &l->w, host))
        return vdgx_nn_fail (b, err, "linear", "weight upload");
    l->loaded = true;
    return 0;
}

int
vdgx_linear_from_f32 (vdgx_backend_t *b, vdgx_linear_t *l, vdgx_wfmt_t fmt, const float *w,
                      const float *bias, int64_t n, int64_t k, vdgx_dtype_t bias_dtype, char **err)
{
    memset (l, 0, sizeof (*l));
    vdgx_weight_t host;
    memset (&host, 0, sizeof (host));
    char *e = NULL;
    if (vdgx_weight_quantize (&host, vdgx_linear_fmt_for (fmt, k), w, n, k, true, &e)) {
        vdgx_set_error (err, "linear: %s", e? e: "quantization failed");
        free (e);
        return -1;
    }
    int rc = vdgx_linear_from_weight (b, l, &host, err);
    vdgx_weight_host_free (&host);
    if (rc == 0 && bias) {
        const int64_t shape [1] = { n };
        if (vdgx_nn_upload (b, &l->b, bias_dtype, 1, shape, bias))
            rc = vdgx_nn_fail (b, err, "linear", "bias upload");
    }
    if (rc)
        vdgx_linear_release (b, l);
    return rc;
}

int
vdgx_linear_forward (vdgx_backend_t *b, const vdgx_linear_t *l, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    const vdgx_tensor_t *bias = l->b.data? &l->b: NULL;
    if (x->ndim == 2 && y->ndim == 2)
        return vdgx_op_linear (b, y, x, &l->w, bias);
    if (x->ndim < 1 || y->ndim < 1 || x->shape [x->ndim - 1] != l->w.k
    ||  y->shape [y->ndim - 1] != l->w.n) {
        vdgx_backend_set_error (b, "linear: x [.., %lld] / y [.., %lld] do not fit W [%lld, %lld]",
                                (long long) x->shape [x->ndim - 1], (long long) y->shape [y->ndim - 1],
                                (long long) l->w.n, (long long) l->w.k);
        return -1;
    }
    vdgx_tensor_t x2 = vdgx_nn_view2 (x, vdgx_tensor_numel (x) / l->w.k, l->w.k);
    vdgx_tensor_t y2 = vdgx_nn_view2 (y, vdgx_tensor_numel (y) / l->w.n, l->w.n);
    return vdgx_op_linear (b, &y2, &x2, &l->w, bias);
}

void
vdgx_linear_release (vdgx_backend_t *b, vdgx_linear_t *l)
{
    if (l->loaded)
        vdgx_weight_release (b, &l->w);
    vdgx_nn_free (b, &l->b);
    memset (l, 0, sizeof (*l));
}

//  ---------------------------------------------------------------------------------------
//  Norms

int
vdgx_norm_init (vdgx_backend_t *b, vdgx_norm_t *n, vdgx_norm_kind_t kind, int64_t dim, float eps,
                const float *w, const float *bias, bool one_plus, char **err)
{
    memset (n, 0, sizeof (*n));
    n->kind = kind;
    n->dim = dim;
    n->eps = eps;
    const int64_t shape [1] = { dim };
    if (w) {
        float *tmp = malloc ((size_t) dim * sizeof (float));
        if (!tmp) {
            vdgx_set_error (err, "norm: out of memory");
            return -1;
        }
        for (int64_t i = 0; i < dim; i++)
            tmp [i] = one_plus? 1.0f + w [i]: w [i];
        int rc = vdgx_nn_upload (b, &n->w, VDGX_DTYPE_F32, 1, shape, tmp);
        free (tmp);
        if (rc)
            return vdgx_nn_fail (b, err, "norm", "weight upload");
    }
    if (bias && vdgx_nn_upload (b, &n->b, VDGX_DTYPE_F32, 1, shape, bias)) {
        vdgx_norm_release (b, n);
        return vdgx_nn_fail (b, err, "norm", "bias upload");
    }
    return 0;
}

int
vdgx_norm_forward (vdgx_backend_t *b, const vdgx_norm_t *n, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    int64_t numel = vdgx_tensor_numel (x);
    if (n->dim <= 0 || numel % n->dim || vdgx_tensor_numel (y) != numel) {
        vdgx_backend_set_error (b, "norm: %lld elements do not split into rows of %lld",
                                (long long) numel, (long long) n->dim);
        return -1;
    }
    vdgx_tensor_t x2 = vdgx_nn_view2 (x, numel / n->dim, n->dim);
    vdgx_tensor_t y2 = vdgx_nn_view2 (y, numel / n->dim, n->dim);
    const vdgx_tensor_t *w = n->w.data? &n->w: NULL, *bias = n->b.data? &n->b: NULL;
    if (n->kind == VDGX_NORM_RMS)
        return vdgx_op_rmsnorm (b, &y2, &x2, w, n->eps);
    //  A negative eps asks the op for eps on the standard deviation.
    return vdgx_op_layernorm (b, &y2, &x2, w, bias, n->kind == VDGX_NORM_LAYER_STD? -n->eps: n->eps);
}

void
vdgx_norm_release (vdgx_backend_t *b, vdgx_norm_t *n)
{
    vdgx_nn_free (b, &n->w);
    vdgx_nn_free (b, &n->b);
}

//  ---------------------------------------------------------------------------------------
//  PixelNorm: channels moved last, RMS-normalised (and modulated) per position, moved back.

int
vdgx_pixel_norm (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float eps,
                 const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    assert (b && y && x && x->ndim >= 2 && (!shift) == (!scale));
    memset (y, 0, sizeof (*y));
    int64_t n = x->shape [0], c = x->shape [1], s = vdgx_tensor_numel (x) / (n * c);
    vdgx_tensor_t xin = vdgx_nn_view3 (x, n, c, s), last = { 0 }, normed = { 0 };
    static const int swap [3] = { 0, 2, 1 };
    int rc = -1;
    if (vdgx_nn_alloc (b, &last, x->dtype, n, s, c, 0)
    ||  vdgx_op_permute (b, &last, &xin, swap)
    ||  vdgx_nn_alloc (b, &normed, x->dtype, n, s, c, 0))
        goto out;
    vdgx_tensor_t rows = vdgx_nn_view2 (&last, n * s, c), nrows = vdgx_nn_view2 (&normed, n * s, c);
    if (vdgx_op_rmsnorm (b, &nrows, &rows, NULL, eps))
        goto out;
    if (shift) {
        //  One modulation for every sample: [1, N*S, C].
        vdgx_tensor_t m = vdgx_nn_view3 (&normed, 1, n * s, c);
        if (vdgx_op_modulate (b, &m, &m, shift, scale))
            goto out;
    }
    if (vdgx_tensor_alloc (b, y, x->dtype, x->ndim, x->shape))
        goto out;
    vdgx_tensor_t yv = vdgx_nn_view3 (y, n, c, s);
    rc = vdgx_op_permute (b, &yv, &normed, swap);
out:
    if (rc)
        vdgx_nn_free (b, y);
    vdgx_nn_free (b, &last);
    vdgx_nn_free (b, &normed);
    return rc;
}

//  adaLN

int
vdgx_adaln_rows (vdgx_backend_t *b, vdgx_tensor_t *out, const vdgx_tensor_t *table,
                 const vdgx_tensor_t *emb)
{
    return vdgx_op_add_scaled (b, out, table, emb, 1.0f);
}

//  [B,L,C] views of x/y when they are 2D [L,C] (one sample).
static vdgx_tensor_t
s_as3 (const vdgx_tensor_t *t)
{
    if (t->ndim == 3)
        return *t;
    int64_t c = t->shape [t->ndim - 1];
    return vdgx_nn_view3 (t, 1, vdgx_tensor_numel (t) / c, c);
}

int
vdgx_adaln_modulate (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    vdgx_tensor_t y3 = s_as3 (y), x3 = s_as3 (x);
    return vdgx_op_modulate (b, &y3, &x3, shift, scale);
}

int
vdgx_adaln_gate (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y, const vdgx_tensor_t *gate)
{
    vdgx_tensor_t y3 = s_as3 (y), x3 = s_as3 (x);
    return vdgx_op_gated_residual (b, &x3, &y3, gate);
}

//  One row per token: x seen as [rows, 1, C] so the per-sample ops apply per token.
static vdgx_tensor_t
s_as_tokens (const vdgx_tensor_t *t)
{
    int64_t c = t->shape [t->ndim - 1];
    return vdgx_nn_view3 (t, vdgx_tensor_numel (t) / c, 1, c);
}

int
vdgx_adaln_modulate_tokens (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                            const vdgx_tensor_t *shift, const vdgx_tensor_t *scale)
{
    vdgx_tensor_t y3 = s_as_tokens (y), x3 = s_as_tokens (x);
    return vdgx_op_modulate (b, &y3, &x3, shift, scale);
}

int
vdgx_adaln_gate_tokens (vdgx_backend_t *b, vdgx_tensor_t *x, const vdgx_tensor_t *y,
                        const vdgx_tensor_t *gate)
{
    vdgx_tensor_t y3 = s_as_tokens (y), x3 = s_as_tokens (x);
    return vdgx_op_gated_residual (b, &x3, &y3, gate);
}

//  ---------------------------------------------------------------------------------------
//  Activations and MLPs

int
vdgx_act_forward (vdgx_backend_t *b, vdgx_act_t act, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    switch (act) {
        case VDGX_ACT_GELU_TANH: return vdgx_op_gelu_tanh (b, y, x);
        case VDGX_ACT_SILU: return vdgx_op_silu (b, y, x);
        case VDGX_ACT_GELU: return vdgx_op_unary (b, y, x, VDGX_UNARY_GELU_ERF, 0.0f);
        case VDGX_ACT_TANH: return vdgx_op_unary (b, y, x, VDGX_UNARY_TANH, 0.0f);
        case VDGX_ACT_SIGMOID: return vdgx_op_unary (b, y, x, VDGX_UNARY_SIGMOID, 0.0f);
    }
    vdgx_backend_set_error (b, "activation %d unknown", (int) act);
    return -1;
}

int
vdgx_mlp_forward (vdgx_backend_t *b, const vdgx_mlp_t *m, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                  vdgx_tensor_t *h1, vdgx_tensor_t *h2)
{
    if (m->kind == VDGX_MLP_PLAIN)
        return vdgx_linear_forward (b, &m->up, h1, x)
            || vdgx_act_forward (b, m->act, h2, h1)
            || vdgx_linear_forward (b, &m->down, y, h2)? -1: 0;
    //  Gated: h2 = act(gate(x)), h1 = up(x), h1 *= h2 (elementwise, in place).
    return vdgx_linear_forward (b, &m->gate, h1, x)
        || vdgx_act_forward (b, m->act, h2, h1)
        || vdgx_linear_forward (b, &m->up, h1, x)
        || vdgx_op_mul (b, h1, h1, h2)
        || vdgx_linear_forward (b, &m->down, y, h1)? -1: 0;
}

void
vdgx_mlp_release (vdgx_backend_t *b, vdgx_mlp_t *m)
{
    vdgx_linear_release (b, &m->up);
    vdgx_linear_release (b, &m->gate);
    vdgx_linear_release (b, &m->down);
}

//  ---------------------------------------------------------------------------------------
//  Host-side embeddings and patching

void
vdgx_nn_sinusoidal (double t, int dim, double max_period, bool cos_first, float *out)
{
    assert (dim > 0 && dim % 2 == 0 && out);
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        double arg = t * pow (max_period, -(double) i / (double) half);
        out [cos_first? i: half + i] = (float) cos (arg);
        out [cos_first? half + i: i] = (float) sin (arg);
    }
}

void
vdgx_nn_sinusoidal_f32 (float t, int dim, double max_period, float freq_shift, bool cos_first,
                        float *out)
{
    assert (dim > 0 && dim % 2 == 0 && out);
    const int half = dim / 2;
    const float lnp = (float) -log (max_period), div = (float) half - freq_shift;
    for (int i = 0; i < half; i++) {
        float e = lnp * (float) i;
        e = e / div;
        float arg = t * expf (e);
        out [cos_first? i: half + i] = cosf (arg);
        out [cos_first? half + i: i] = sinf (arg);
    }
}

void
vdgx_nn_patchify3d (const float *x, int64_t c, int64_t f, int64_t h, int64_t w, const int patch [3],
                    float *tokens)
{
    int64_t pt = patch [0], ph = patch [1], pw = patch [2];
    int64_t gf = f / pt, gh = h / ph, gw = w / pw, pin = c * pt * ph * pw;
    for (int64_t a = 0; a < gf; a++)
      for (int64_t bb = 0; bb < gh; bb++)
        for (int64_t cc = 0; cc < gw; cc++) {
            float *dst = tokens + ((a * gh + bb) * gw + cc) * pin;
            for (int64_t ci = 0; ci < c; ci++)
              for (int64_t p = 0; p < pt; p++)
                for (int64_t q = 0; q < ph; q++)
                  for (int64_t r = 0; r < pw; r++)
                    *dst++ = x [((ci * f + a * pt + p) * h + bb * ph + q) * w + cc * pw + r];
        }
}

void
vdgx_nn_unpatchify3d (const float *tokens, int64_t c, int64_t f, int64_t h, int64_t w,
                      const int patch [3], float *x)
{
    int64_t pt = patch [0], ph = patch [1], pw = patch [2];
    int64_t gf = f / pt, gh = h / ph, gw = w / pw, pout = c * pt * ph * pw;
    for (int64_t a = 0; a < gf; a++)
      for (int64_t bb = 0; bb < gh; bb++)
        for (int64_t cc = 0; cc < gw; cc++) {
            const float *src = tokens + ((a * gh + bb) * gw + cc) * pout;
            for (int64_t p = 0; p < pt; p++)
              for (int64_t q = 0; q < ph; q++)
                for (int64_t r = 0; r < pw; r++)
                  for (int64_t co = 0; co < c; co++)
                    x [((co * f + a * pt + p) * h + bb * ph + q) * w + cc * pw + r]
                        = src [((p * ph + q) * pw + r) * c + co];
        }
}

//  Keys' cubic convolution weights of the 4 taps around a fractional offset t (A = -0.75).
static void
s_cubic_weights (float t, float wt [4])
{
    const float A = -0.75f;
    float x1 = t + 1.0f, x2 = 1.0f - t, x3 = 2.0f - t;
    wt [0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
    wt [1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
    wt [2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    wt [3] = ((A * x3 - 5.0f * A) * x3 + 8.0f * A) * x3 - 4.0f * A;
}

//  Per output index: the first tap (unclamped) and the 4 weights.
static void
s_cubic_axis (int64_t in, int64_t out, int64_t *first, float *wts)
{
    float scale = (float) in / (float) out;
    for (int64_t i = 0; i < out; i++) {
        float src = scale * ((float) i + 0.5f) - 0.5f;
        float fl = floorf (src);
        first [i] = (int64_t) fl - 1;
        s_cubic_weights (src - fl, wts + 4 * i);
    }
}

static inline int64_t
s_clampi (int64_t v, int64_t hi)
{
    return v < 0? 0: v > hi? hi: v;
}

void
vdgx_nn_resize_bicubic (const float *x, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow,
                        float *y)
{
    assert (x && y && c > 0 && h > 0 && w > 0 && oh > 0 && ow > 0);
    int64_t *fy = malloc ((size_t) (oh + ow) * sizeof (int64_t));
    float *wy = malloc ((size_t) (oh + ow) * 4 * sizeof (float));
    assert (fy && wy);      //  small tables
    int64_t *fx = fy + oh;
    float *wx = wy + 4 * oh;
    s_cubic_axis (h, oh, fy, wy);
    s_cubic_axis (w, ow, fx, wx);
    for (int64_t ci = 0; ci < c; ci++) {
        const float *plane = x + ci * h * w;
        for (int64_t i = 0; i < oh; i++) {
            float *dst = y + (ci * oh + i) * ow;
            for (int64_t j = 0; j < ow; j++) {
                //  Along the width for each of the 4 rows, then along the height.
                float acc = 0.0f;
                for (int a = 0; a < 4; a++) {
                    const float *row = plane + s_clampi (fy [i] + a, h - 1) * w;
                    float r = 0.0f;
                    for (int bb = 0; bb < 4; bb++)
                        r += wx [4 * j + bb] * row [s_clampi (fx [j] + bb, w - 1)];
                    acc += wy [4 * i + a] * r;
                }
                dst [j] = acc;
            }
        }
    }
    free (fy);
    free (wy);
}

//  One axis of the trilinear resize: taps i0, i1 and weights l0, l1 per output index.
static void
s_linear_axis (int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *l0, float *l1)
{
    float scale = (float) in / (float) out;
    for (int64_t i = 0; i < out; i++) {
        float src = scale * ((float) i + 0.5f) - 0.5f;
        if (src < 0)
            src = 0;
        int64_t f = (int64_t) src;
        float lam = src - (float) f;
        lam = lam < 0? 0: lam > 1? 1: lam;
        i0 [i] = f;
        i1 [i] = f < in - 1? f + 1: f;
        l1 [i] = lam;
        l0 [i] = 1.0f - lam;
    }
}

void
vdgx_nn_resize_trilinear (const float *x, int64_t c, int64_t d, int64_t h, int64_t w,
                          int64_t od, int64_t oh, int64_t ow, float *y)
{
    assert (x && y && c > 0 && d > 0 && h > 0 && w > 0 && od > 0 && oh > 0 && ow > 0);
    int64_t n = od + oh + ow;
    int64_t *ix = malloc ((size_t) (2 * n) * sizeof (int64_t));
    float *lx = malloc ((size_t) (2 * n) * sizeof (float));
    assert (ix && lx);      //  small tables
    int64_t *t0 = ix, *t1 = ix + od, *h0 = ix + 2 * od, *h1 = h0 + oh, *w0 = h1 + oh, *w1 = w0 + ow;
    float *tl0 = lx, *tl1 = lx + od, *hl0 = lx + 2 * od, *hl1 = hl0 + oh, *wl0 = hl1 + oh, *wl1 = wl0 + ow;
    s_linear_axis (d, od, t0, t1, tl0, tl1);
    s_linear_axis (h, oh, h0, h1, hl0, hl1);
    s_linear_axis (w, ow, w0, w1, wl0, wl1);
    for (int64_t ci = 0; ci < c; ci++) {
        const float *vol = x + ci * d * h * w;
        for (int64_t a = 0; a < od; a++)
            for (int64_t i = 0; i < oh; i++) {
                const float *r00 = vol + (t0 [a] * h + h0 [i]) * w, *r01 = vol + (t0 [a] * h + h1 [i]) * w;
                const float *r10 = vol + (t1 [a] * h + h0 [i]) * w, *r11 = vol + (t1 [a] * h + h1 [i]) * w;
                float *dst = y + ((ci * od + a) * oh + i) * ow;
                for (int64_t j = 0; j < ow; j++) {
                    float p0 = hl0 [i] * (wl0 [j] * r00 [w0 [j]] + wl1 [j] * r00 [w1 [j]])
                             + hl1 [i] * (wl0 [j] * r01 [w0 [j]] + wl1 [j] * r01 [w1 [j]]);
                    float p1 = hl0 [i] * (wl0 [j] * r10 [w0 [j]] + wl1 [j] * r10 [w1 [j]])
                             + hl1 [i] * (wl0 [j] * r11 [w0 [j]] + wl1 [j] * r11 [w1 [j]]);
                    dst [j] = tl0 [a] * p0 + tl1 [a] * p1;
                }
            }
    }
    free (ix);
    free (lx);
}
