/*  vdgx_conv.c - causal conv3d with its cache, 1-D convolution and Snake layers (see vdgx_conv.h). */
#include "vdgx_conv.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------------------
//  Causal 3-D convolution

static int
s_alloc5 (vdgx_backend_t *b, vdgx_tensor_t *t, vdgx_dtype_t dtype, int64_t c, int64_t f,
          int64_t h, int64_t w)
{
    const int64_t shape [5] = { 1, c, f, h, w };
    return vdgx_tensor_alloc (b, t, dtype, 5, shape);
}

int
vdgx_cconv3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
              const vdgx_tensor_t *bias, vdgx_tensor_t *cache)
{
    assert (b && y && x && w);
    memset (y, 0, sizeof (*y));
    if (x->ndim != 5 || w->ndim != 5 || x->shape [0] != 1) {
        vdgx_backend_set_error (b, "causal conv3d: x [1,C,F,H,W] and w [Cout,Cin,kt,kh,kw] expected");
        return -1;
    }
    int kt = (int) w->shape [2], kh = (int) w->shape [3], kw = (int) w->shape [4];
    int64_t c = w->shape [0], f = x->shape [2], h = x->shape [3], wd = x->shape [4];
    const int stride [3] = { 1, 1, 1 };
    int pad [4] = { kt - 1, 0, kh / 2, kw / 2 };
    if (!cache || kt == 1) {
        if (s_alloc5 (b, y, x->dtype, c, f, h, wd) || vdgx_op_conv3d (b, y, x, w, bias, stride, pad)) {
            vdgx_nn_free (b, y);
            return -1;
        }
        return 0;
    }
    //  The cached frames go in front of x; zeros make up the rest of the kt-1 frames.
    vdgx_tensor_t cat = { 0 };
    const vdgx_tensor_t *in = x;
    int64_t have = cache->data? cache->shape [2]: 0;
    if (have) {
        if (s_alloc5 (b, &cat, x->dtype, x->shape [1], have + f, h, wd)
        ||  vdgx_op_concat (b, &cat, cache, x, 2)) {
            vdgx_nn_free (b, &cat);
            return -1;
        }
        in = &cat;
    }
    pad [0] = kt - 1 - (int) have;
    int rc = 0;
    if (s_alloc5 (b, y, x->dtype, c, f, h, wd) || vdgx_op_conv3d (b, y, in, w, bias, stride, pad)) {
        vdgx_nn_free (b, y);
        rc = -1;
    }
    else {
        int64_t total = have + f, keep = total < kt - 1? total: kt - 1;
        vdgx_tensor_t next = { 0 };
        if (s_alloc5 (b, &next, x->dtype, x->shape [1], keep, h, wd)
        ||  vdgx_op_slice (b, &next, in, 2, total - keep, keep)) {
            vdgx_nn_free (b, &next);
            vdgx_nn_free (b, y);
            rc = -1;
        }
        else {
            vdgx_nn_free (b, cache);
            *cache = next;
        }
    }
    vdgx_nn_free (b, &cat);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Non-causal 3-D convolution and depth-to-space

//  x padded by p at both ends of dim 2 or 3 of [1, C, F, H, W]: the pieces (copies of single
//  slices, or zeros) are concatenated around x.
static int
s_pad_dim (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int dim, int p,
           vdgx_pad_mode_t mode)
{
    int64_t len = x->shape [dim];
    memset (y, 0, sizeof (*y));
    if (p == 0) {
        if (vdgx_tensor_alloc (b, y, x->dtype, x->ndim, x->shape) || vdgx_op_slice (b, y, x, dim, 0, len)) {
            vdgx_nn_free (b, y);
            return -1;
        }
        return 0;
    }
    if ((mode == VDGX_PAD_REFLECT && p >= len) || len < 1) {
        vdgx_backend_set_error (b, "pad3d: %s padding of %d needs a longer side than %lld",
                                mode == VDGX_PAD_REFLECT? "reflect": "replicate", p, (long long) len);
        return -1;
    }
    vdgx_tensor_t acc = { 0 }, piece = { 0 }, next = { 0 };
    int64_t shape [VDGX_MAX_DIMS];
    memcpy (shape, x->shape, sizeof (int64_t) * (size_t) x->ndim);
    int rc = -1;
    //  Order: front pieces 0..p-1 (outermost first), x, back pieces 0..p-1 (innermost first).
    for (int i = -p; i <= p; i++) {
        const vdgx_tensor_t *part = x;
        if (i != 0) {
            int d = i < 0? -i: i;      //  distance from the edge
            int64_t src = mode == VDGX_PAD_REPLICATE? (i < 0? 0: len - 1)
                        : i < 0? d: len - 1 - d;
            shape [dim] = 1;
            if (vdgx_tensor_alloc (b, &piece, x->dtype, x->ndim, shape))
                goto out;
            if (mode == VDGX_PAD_ZERO) {
                size_t n = (size_t) vdgx_tensor_numel (&piece);
                float *zeros = (float *) calloc (n, sizeof (float));
                int r = zeros? vdgx_tensor_from_f32 (b, &piece, zeros): -1;
                free (zeros);
                if (r)
                    goto out;
            }
            else
            if (vdgx_op_slice (b, &piece, x, dim, src, 1))
                goto out;
            part = &piece;
        }
        if (!acc.data) {
            if (part == x) {
                shape [dim] = len;
                if (vdgx_tensor_alloc (b, &acc, x->dtype, x->ndim, shape) || vdgx_op_slice (b, &acc, x, dim, 0, len))
                    goto out;
            }
            else {
                acc = piece;
                memset (&piece, 0, sizeof (piece));
            }
            continue;
        }
        memcpy (shape, acc.shape, sizeof (int64_t) * (size_t) x->ndim);
        shape [dim] += part->shape [dim];
        if (vdgx_tensor_alloc (b, &next, x->dtype, x->ndim, shape) || vdgx_op_concat (b, &next, &acc, part, dim))
            goto out;
        vdgx_nn_free (b, &acc);
        vdgx_nn_free (b, &piece);
        acc = next;
        memset (&next, 0, sizeof (next));
    }
    *y = acc;
    memset (&acc, 0, sizeof (acc));
    rc = 0;
out:
    vdgx_nn_free (b, &acc);
    vdgx_nn_free (b, &piece);
    vdgx_nn_free (b, &next);
    return rc;
}

int
vdgx_pad3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int pt,
            vdgx_pad_mode_t tmode, int ph, int pw, vdgx_pad_mode_t smode)
{
    assert (b && y && x && pt >= 0 && ph >= 0 && pw >= 0);
    memset (y, 0, sizeof (*y));
    if (x->ndim != 5 || x->shape [0] != 1) {
        vdgx_backend_set_error (b, "pad3d: x [1,C,F,H,W] expected");
        return -1;
    }
    vdgx_tensor_t t = { 0 }, h = { 0 };
    int rc = -1;
    if (s_pad_dim (b, &t, x, 2, pt, tmode) || s_pad_dim (b, &h, &t, 3, ph, smode))
        goto out;
    int64_t rows = vdgx_tensor_numel (&h) / h.shape [4];
    const int64_t shape [5] = { 1, h.shape [1], h.shape [2], h.shape [3], h.shape [4] + 2 * pw };
    if (vdgx_tensor_alloc (b, y, x->dtype, 5, shape))
        goto out;
    vdgx_tensor_t in = vdgx_nn_view2 (&h, rows, h.shape [4]), out = vdgx_nn_view2 (y, rows, shape [4]);
    rc = vdgx_op_pad1d (b, &out, &in, pw, pw, smode);
out:
    if (rc)
        vdgx_nn_free (b, y);
    vdgx_nn_free (b, &t);
    vdgx_nn_free (b, &h);
    return rc;
}

int
vdgx_conv3d_same (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                  const vdgx_tensor_t *w, const vdgx_tensor_t *bias, vdgx_pad_mode_t tmode,
                  vdgx_pad_mode_t smode)
{
    assert (b && y && x && w);
    memset (y, 0, sizeof (*y));
    if (x->ndim != 5 || w->ndim != 5 || x->shape [0] != 1
    ||  w->shape [2] % 2 == 0 || w->shape [3] % 2 == 0 || w->shape [4] % 2 == 0) {
        vdgx_backend_set_error (b, "conv3d same: x [1,C,F,H,W] and w [Cout,Cin,kt,kh,kw] with odd kernel sizes expected");
        return -1;
    }
    int pt = (int) w->shape [2] / 2, ph = (int) w->shape [3] / 2, pw = (int) w->shape [4] / 2;
    const int stride [3] = { 1, 1, 1 };
    int pad [4] = { 0, 0, 0, 0 };
    vdgx_tensor_t padded = { 0 };
    const vdgx_tensor_t *in = x;
    if (tmode == VDGX_PAD_ZERO && smode == VDGX_PAD_ZERO) {
        pad [0] = pad [1] = pt;
        pad [2] = ph;
        pad [3] = pw;
    }
    else {
        if (vdgx_pad3d (b, &padded, x, pt, tmode, ph, pw, smode))
            return -1;
        in = &padded;
    }
    const int64_t shape [5] = { 1, w->shape [0], x->shape [2], x->shape [3], x->shape [4] };
    int rc = vdgx_tensor_alloc (b, y, x->dtype, 5, shape) || vdgx_op_conv3d (b, y, in, w, bias, stride, pad)? -1: 0;
    if (rc)
        vdgx_nn_free (b, y);
    vdgx_nn_free (b, &padded);
    return rc;
}

int
vdgx_depth_to_space3d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                       const int stride [3])
{
    assert (b && y && x && stride && stride [0] >= 1 && stride [1] >= 1 && stride [2] >= 1);
    memset (y, 0, sizeof (*y));
    int64_t p1 = stride [0], p2 = stride [1], p3 = stride [2], r = p1 * p2 * p3;
    if (x->ndim != 5 || x->shape [0] != 1 || x->shape [1] % r) {
        vdgx_backend_set_error (b, "depth to space: x [1,C*%lld,F,H,W] expected", (long long) r);
        return -1;
    }
    int64_t c = x->shape [1] / r, f = x->shape [2], h = x->shape [3], w = x->shape [4];
    const int64_t shape [5] = { 1, c, f * p1, h * p2, w * p3 };
    vdgx_tensor_t mid = { 0 };
    int rc = -1;
    if (vdgx_tensor_alloc (b, y, x->dtype, 5, shape))
        goto out;
    //  Time: [c, p1, p2 p3, f, h w] -> [c, p2 p3, f, p1, h w] (straight into y without space).
    const vdgx_tensor_t *src = x;
    bool space = p2 > 1 || p3 > 1;
    if (p1 > 1) {
        const int64_t s5 [5] = { c, p1, p2 * p3, f, h * w }, o5 [5] = { c, p2 * p3, f, p1, h * w };
        const int perm [5] = { 0, 2, 3, 1, 4 };
        if (space && vdgx_tensor_alloc (b, &mid, x->dtype, 5, o5))
            goto out;
        vdgx_tensor_t in = vdgx_nn_view (x, 5, s5), tout = vdgx_nn_view (space? &mid: y, 5, o5);
        if (vdgx_op_permute (b, &tout, &in, perm))
            goto out;
        if (!space) {
            rc = 0;
            goto out;
        }
        src = &mid;
    }
    if (!space) {           //  stride 1, 1, 1: a copy
        rc = vdgx_op_slice (b, y, x, 1, 0, c);
        goto out;
    }
    //  Space: [c, p2, p3, F, h, w] -> [c, F, h, p2, w, p3].
    const int64_t s6 [6] = { c, p2, p3, f * p1, h, w }, o6 [6] = { c, f * p1, h, p2, w, p3 };
    const int perm6 [6] = { 0, 3, 4, 1, 5, 2 };
    vdgx_tensor_t in = vdgx_nn_view (src, 6, s6), out = vdgx_nn_view (y, 6, o6);
    rc = vdgx_op_permute (b, &out, &in, perm6);
out:
    if (rc)
        vdgx_nn_free (b, y);
    vdgx_nn_free (b, &mid);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  1-D convolution layers

vdgx_conv1d_params_t
vdgx_conv1d_upsample (int factor, int k)
{
    vdgx_conv1d_params_t p = { .stride = factor, .pad_left = (k - factor) / 2, .pad_right = (k - factor) / 2 };
    return p;
}

vdgx_conv1d_params_t
vdgx_conv1d_downsample (int factor, int k)
{
    vdgx_conv1d_params_t p = { .stride = factor, .pad_left = (k - factor) / 2, .pad_right = (k - factor) / 2 };
    return p;
}

int
vdgx_conv1d_load (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_conv1d_t *c, const char *prefix,
                  int64_t cin, int64_t cout, int64_t k, bool transposed, const vdgx_conv1d_params_t *p,
                  bool bias, vdgx_dtype_t dtype, char **err)
{
    memset (c, 0, sizeof (*c));
    c->transposed = transposed;
    c->p = *p;
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    int groups = p->groups > 0? p->groups: 1;
    if (cin % groups || cout % groups) {
        vdgx_set_error (err, "conv1d %s: %d groups do not divide %lld -> %lld channels", prefix,
                        groups, (long long) cin, (long long) cout);
        return -1;
    }
    const int64_t ws [3] = { transposed? cin: cout, (transposed? cout: cin) / groups, k };
    const int64_t bs [1] = { cout };
    char name [400];
    snprintf (name, sizeof (name), "%s.weight", prefix);
    if (vdgx_wsrc_tensor (src, b, name, dtype, 3, ws, &c->w, err))
        return -1;
    snprintf (name, sizeof (name), "%s.bias", prefix);
    if (bias && vdgx_wsrc_tensor (src, b, name, dtype, 1, bs, &c->b, err)) {
        vdgx_conv1d_release (b, c);
        return -1;
    }
    return 0;
}

int64_t
vdgx_conv1d_layer_out_len (const vdgx_conv1d_t *c, int64_t len)
{
    int64_t out = c->transposed? vdgx_conv_transpose1d_out_len (len, c->k, &c->p)
                               : vdgx_conv1d_out_len (len, c->k, &c->p);
    return len >= 1 && out >= 1? out: 0;
}

int
vdgx_conv1d_forward (vdgx_backend_t *b, const vdgx_conv1d_t *c, vdgx_tensor_t *y,
                     const vdgx_tensor_t *x, char **err)
{
    memset (y, 0, sizeof (*y));
    int64_t lout = x->ndim == 3? vdgx_conv1d_layer_out_len (c, x->shape [2]): 0;
    if (lout == 0 || x->shape [1] != c->cin) {
        vdgx_set_error (err, "conv1d: input [%lld, %lld, %lld] does not fit %lld channels, kernel %lld",
                        (long long) x->shape [0], (long long) (x->ndim > 1? x->shape [1]: 0),
                        (long long) (x->ndim > 2? x->shape [2]: 0), (long long) c->cin, (long long) c->k);
        return -1;
    }
    const int64_t shape [3] = { x->shape [0], c->cout, lout };
    const vdgx_tensor_t *bias = c->b.data? &c->b: NULL;
    if (vdgx_tensor_alloc (b, y, x->dtype, 3, shape)
    ||  (c->transposed? vdgx_op_conv_transpose1d (b, y, x, &c->w, bias, &c->p)
                      : vdgx_op_conv1d (b, y, x, &c->w, bias, &c->p))) {
        vdgx_nn_free (b, y);
        return vdgx_nn_fail (b, err, "conv1d", c->transposed? "transposed convolution": "convolution");
    }
    return 0;
}

void
vdgx_conv1d_release (vdgx_backend_t *b, vdgx_conv1d_t *c)
{
    vdgx_nn_free (b, &c->w);
    vdgx_nn_free (b, &c->b);
}

//  ---------------------------------------------------------------------------------------
//  Snake

int
vdgx_snake_load (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_snake_t *s, const char *prefix,
                 int64_t channels, bool beta, bool logscale, char **err)
{
    memset (s, 0, sizeof (*s));
    s->logscale = logscale;
    char name [400];
    const int64_t shape [1] = { channels };
    snprintf (name, sizeof (name), "%s.alpha", prefix);
    if (vdgx_wsrc_tensor (src, b, name, VDGX_DTYPE_F32, 1, shape, &s->alpha, err))
        return -1;
    snprintf (name, sizeof (name), "%s.beta", prefix);
    if (beta && vdgx_wsrc_tensor (src, b, name, VDGX_DTYPE_F32, 1, shape, &s->beta, err)) {
        vdgx_snake_release (b, s);
        return -1;
    }
    return 0;
}

int
vdgx_snake_forward (vdgx_backend_t *b, const vdgx_snake_t *s, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    return vdgx_op_snake (b, y, x, &s->alpha, s->beta.data? &s->beta: NULL, s->logscale);
}

void
vdgx_snake_release (vdgx_backend_t *b, vdgx_snake_t *s)
{
    vdgx_nn_free (b, &s->alpha);
    vdgx_nn_free (b, &s->beta);
}

int
vdgx_leaky_relu (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, float slope)
{
    return vdgx_op_unary (b, y, x, VDGX_UNARY_LEAKY_RELU, slope);
}

//  ---------------------------------------------------------------------------------------
//  Anti-aliased activation (BigVGAN v2)

//  A [1, 1, K] filter buffer from the weight source, repeated for C channels (times scale)
//  as a depthwise weight [C, 1, K].
static int
s_depthwise_filter (vdgx_wsrc_t *src, vdgx_backend_t *b, const char *name, int64_t channels,
                    int64_t k, float scale, vdgx_tensor_t *t, char **err)
{
    const int64_t fs [3] = { 1, 1, k };
    float *f = vdgx_wsrc_fetch (src, name, 3, fs, err);
    if (!f)
        return -1;
    float *w = (float *) malloc (sizeof (float) * (size_t) (channels * k));
    if (!w) {
        free (f);
        vdgx_set_error (err, "%s: out of memory", name);
        return -1;
    }
    for (int64_t c = 0; c < channels; c++)
        for (int64_t i = 0; i < k; i++)
            w [c * k + i] = f [i] * scale;
    const int64_t ws [3] = { channels, 1, k };
    int rc = vdgx_nn_upload (b, t, VDGX_DTYPE_F32, 3, ws, w);
    if (rc)
        vdgx_nn_fail (b, err, name, "upload");
    free (f);
    free (w);
    return rc;
}

int
vdgx_aa_act_load (vdgx_wsrc_t *src, vdgx_backend_t *b, vdgx_aa_act_t *a, const char *prefix,
                  int64_t channels, int64_t kernel, bool beta, bool logscale, char **err)
{
    memset (a, 0, sizeof (*a));
    if (kernel < 2 || kernel % 2) {
        vdgx_set_error (err, "%s: anti-aliased activation filters need an even size >= 2, not %lld",
                        prefix, (long long) kernel);
        return -1;
    }
    a->channels = channels;
    a->up_k = a->down_k = kernel;
    char name [400];
    snprintf (name, sizeof (name), "%s.act", prefix);
    if (vdgx_snake_load (src, b, &a->act, name, channels, beta, logscale, err))
        return -1;
    snprintf (name, sizeof (name), "%s.upsample.filter", prefix);
    if (s_depthwise_filter (src, b, name, channels, kernel, 2.0f, &a->up, err)) {
        vdgx_aa_act_release (b, a);
        return -1;
    }
    snprintf (name, sizeof (name), "%s.downsample.lowpass.filter", prefix);
    if (s_depthwise_filter (src, b, name, channels, kernel, 1.0f, &a->down, err)) {
        vdgx_aa_act_release (b, a);
        return -1;
    }
    return 0;
}

//  y = pad1d (x, left, right, mode), allocated here.
static int
s_pad1d (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, int left, int right,
         vdgx_pad_mode_t mode)
{
    int64_t shape [VDGX_MAX_DIMS];
    memcpy (shape, x->shape, sizeof (shape));
    shape [x->ndim - 1] += left + right;
    if (vdgx_tensor_alloc (b, y, x->dtype, x->ndim, shape) || vdgx_op_pad1d (b, y, x, left, right, mode)) {
        vdgx_nn_free (b, y);
        return -1;
    }
    return 0;
}

//  y = conv (x) with a depthwise [C, 1, K] weight, allocated here.
static int
s_depthwise (vdgx_backend_t *b, vdgx_tensor_t *y, const vdgx_tensor_t *x, const vdgx_tensor_t *w,
             const vdgx_conv1d_params_t *p, bool transposed)
{
    int64_t len = transposed? vdgx_conv_transpose1d_out_len (x->shape [2], w->shape [2], p)
                            : vdgx_conv1d_out_len (x->shape [2], w->shape [2], p);
    if (len < 1) {
        vdgx_backend_set_error (b, "depthwise filter: input of %lld samples is too short",
                                (long long) x->shape [2]);
        return -1;
    }
    const int64_t shape [3] = { x->shape [0], x->shape [1], len };
    if (vdgx_tensor_alloc (b, y, x->dtype, 3, shape)
    ||  (transposed? vdgx_op_conv_transpose1d (b, y, x, w, NULL, p): vdgx_op_conv1d (b, y, x, w, NULL, p))) {
        vdgx_nn_free (b, y);
        return -1;
    }
    return 0;
}

int
vdgx_aa_act_forward (vdgx_backend_t *b, const vdgx_aa_act_t *a, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                     char **err)
{
    memset (y, 0, sizeof (*y));
    if (x->ndim != 3 || x->shape [1] != a->channels || x->shape [2] < 1) {
        vdgx_set_error (err, "anti-aliased activation: input is not [N, %lld, L]", (long long) a->channels);
        return -1;
    }
    const int ku = (int) a->up_k, kd = (int) a->down_k, pad = ku / 2 - 1;
    const vdgx_conv1d_params_t up = { .stride = 2, .groups = (int) a->channels,
                                      .pad_left = pad * 2 + (ku - 2) / 2, .pad_right = pad * 2 + (ku - 1) / 2 };
    const vdgx_conv1d_params_t down = { .stride = 2, .groups = (int) a->channels };
    vdgx_tensor_t t1 = { 0 }, t2 = { 0 };
    if (s_pad1d (b, &t1, x, pad, pad, VDGX_PAD_REPLICATE)
    ||  s_depthwise (b, &t2, &t1, &a->up, &up, true))
        goto fail;
    vdgx_nn_free (b, &t1);
    if (vdgx_snake_forward (b, &a->act, &t2, &t2)
    ||  s_pad1d (b, &t1, &t2, kd / 2 - 1, kd / 2, VDGX_PAD_REPLICATE))
        goto fail;
    vdgx_nn_free (b, &t2);
    if (s_depthwise (b, y, &t1, &a->down, &down, false))
        goto fail;
    vdgx_nn_free (b, &t1);
    return 0;
fail:
    vdgx_nn_free (b, &t1);
    vdgx_nn_free (b, &t2);
    return vdgx_nn_fail (b, err, "anti-aliased activation", "forward");
}

void
vdgx_aa_act_release (vdgx_backend_t *b, vdgx_aa_act_t *a)
{
    vdgx_snake_release (b, &a->act);
    vdgx_nn_free (b, &a->up);
    vdgx_nn_free (b, &a->down);
}

//  ---------------------------------------------------------------------------------------
//  Hann-sinc upsampling

#define S_SINC_WIDTH 7          //  ceil (6 / 0.99)

void
vdgx_sinc_up_filter (int ratio, float *taps)
{
    const float rolloff = 0.99f, lpw = 6.0f, pi = 3.14159265358979323846f;
    const int k = 2 * S_SINC_WIDTH * ratio + 1;
    for (int i = 0; i < k; i++) {
        float t = ((float) i / (float) ratio - (float) S_SINC_WIDTH) * rolloff;
        float tc = t < -lpw? -lpw: t > lpw? lpw: t;
        float c = cosf (tc * pi / lpw / 2.0f);
        float sinc = t == 0.0f? 1.0f: sinf (pi * t) / (pi * t);
        taps [i] = sinc * (c * c) * rolloff / (float) ratio;
    }
}

int
vdgx_sinc_up_init (vdgx_backend_t *b, vdgx_sinc_up_t *s, int ratio, int64_t channels, char **err)
{
    memset (s, 0, sizeof (*s));
    if (ratio < 1 || ratio > 64 || channels < 1) {
        vdgx_set_error (err, "sinc upsampling: ratio %d / %lld channels out of range", ratio, (long long) channels);
        return -1;
    }
    s->ratio = ratio;
    s->width = S_SINC_WIDTH;
    s->channels = channels;
    s->k = 2 * S_SINC_WIDTH * ratio + 1;
    float *taps = (float *) malloc (sizeof (float) * (size_t) s->k);
    float *w = (float *) malloc (sizeof (float) * (size_t) (s->k * channels));
    if (!taps || !w) {
        free (taps);
        free (w);
        vdgx_set_error (err, "sinc upsampling: out of memory");
        return -1;
    }
    vdgx_sinc_up_filter (ratio, taps);
    for (int64_t c = 0; c < channels; c++)
        for (int64_t i = 0; i < s->k; i++)
            w [c * s->k + i] = taps [i];
    const int64_t ws [3] = { channels, 1, s->k };
    int rc = vdgx_nn_upload (b, &s->w, VDGX_DTYPE_F32, 3, ws, w);
    free (taps);
    free (w);
    return rc? vdgx_nn_fail (b, err, "sinc upsampling", "upload"): 0;
}

int
vdgx_sinc_up_forward (vdgx_backend_t *b, const vdgx_sinc_up_t *s, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                      char **err)
{
    memset (y, 0, sizeof (*y));
    if (x->ndim != 3 || x->shape [1] != s->channels || x->shape [2] < 1) {
        vdgx_set_error (err, "sinc upsampling: input is not [N, %lld, L]", (long long) s->channels);
        return -1;
    }
    //  PyTorch: pad w each side, transposed conv, crop 2 w r on the left and K - r on the right.
    const vdgx_conv1d_params_t p = { .stride = s->ratio, .groups = (int) s->channels,
                                     .pad_left = 2 * s->width * s->ratio, .pad_right = (int) s->k - s->ratio };
    vdgx_tensor_t t1 = { 0 }, t2 = { 0 };
    if (s_pad1d (b, &t1, x, s->width, s->width, VDGX_PAD_REPLICATE)
    ||  s_depthwise (b, &t2, &t1, &s->w, &p, true))
        goto fail;
    vdgx_nn_free (b, &t1);
    if (vdgx_op_affine_clamp (b, &t2, &t2, (float) s->ratio, 0.0f, -INFINITY, INFINITY))
        goto fail;
    *y = t2;
    return 0;
fail:
    vdgx_nn_free (b, &t1);
    vdgx_nn_free (b, &t2);
    return vdgx_nn_fail (b, err, "sinc upsampling", "forward");
}

void
vdgx_sinc_up_release (vdgx_backend_t *b, vdgx_sinc_up_t *s)
{
    vdgx_nn_free (b, &s->w);
}
