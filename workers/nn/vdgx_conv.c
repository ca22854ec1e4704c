/*  vdgx_conv.c - causal conv3d with its cache, 1-D convolution and Snake layers (see vdgx_conv.h). */
#include "vdgx_conv.h"

#include <assert.h>
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
