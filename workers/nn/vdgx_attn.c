/*  vdgx_attn.c - rotary tables, the KV cache and the attention module (see vdgx_attn.h). */
#include "vdgx_attn.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------------------------
//  Rotary tables

int
vdgx_rope_build (vdgx_backend_t *b, vdgx_rope_t *r, vdgx_rope_layout_t layout, int64_t len,
                 int naxes, const double *coords, int64_t pairs, const int *axis,
                 const double *freq, char **err)
{
    assert (b && r && coords && freq && naxes >= 1 && len >= 1 && pairs >= 1);
    memset (r, 0, sizeof (*r));
    float *cs = malloc ((size_t) (len * pairs) * sizeof (float));
    float *sn = malloc ((size_t) (len * pairs) * sizeof (float));
    if (!cs || !sn) {
        free (cs);
        free (sn);
        vdgx_set_error (err, "rope: out of memory");
        return -1;
    }
    for (int64_t l = 0; l < len; l++)
        for (int64_t j = 0; j < pairs; j++) {
            int ax = axis? axis [j]: 0;
            assert (ax >= 0 && ax < naxes);
            double a = coords [l * naxes + ax] * freq [j];
            cs [l * pairs + j] = (float) cos (a);
            sn [l * pairs + j] = (float) sin (a);
        }
    const int64_t shape [2] = { len, pairs };
    int rc = vdgx_nn_upload (b, &r->cos, VDGX_DTYPE_F32, 2, shape, cs);
    if (rc == 0)
        rc = vdgx_nn_upload (b, &r->sin, VDGX_DTYPE_F32, 2, shape, sn);
    free (cs);
    free (sn);
    if (rc) {
        vdgx_rope_release (b, r);
        return vdgx_nn_fail (b, err, "rope", "table upload");
    }
    r->layout = layout;
    r->len = len;
    r->pairs = pairs;
    return 0;
}

void
vdgx_rope_theta_freqs (double theta, int64_t dim, double *freq)
{
    for (int64_t i = 0; i < dim / 2; i++)
        freq [i] = 1.0 / pow (theta, (double) (2 * i) / (double) dim);
}

int
vdgx_rope_wan3d (vdgx_backend_t *b, vdgx_rope_t *r, int64_t head_dim, int64_t gf, int64_t gh,
                 int64_t gw, char **err)
{
    assert (head_dim >= 6 && head_dim % 2 == 0);
    int64_t c = head_dim / 2, c1 = c / 3, c0 = c - 2 * c1;
    int64_t len = gf * gh * gw;
    double *freq = malloc ((size_t) c * sizeof (double));
    int *axis = malloc ((size_t) c * sizeof (int));
    double *coords = malloc ((size_t) len * 3 * sizeof (double));
    if (!freq || !axis || !coords) {
        free (freq); free (axis); free (coords);
        vdgx_set_error (err, "rope: out of memory");
        return -1;
    }
    //  rope_params(1024, d - 4(d/6)) for frames, rope_params(1024, 2(d/6)) for h and w.
    vdgx_rope_theta_freqs (10000.0, 2 * c0, freq);
    vdgx_rope_theta_freqs (10000.0, 2 * c1, freq + c0);
    vdgx_rope_theta_freqs (10000.0, 2 * c1, freq + c0 + c1);
    for (int64_t j = 0; j < c; j++)
        axis [j] = j < c0? 0: j < c0 + c1? 1: 2;
    for (int64_t f = 0; f < gf; f++)
        for (int64_t h = 0; h < gh; h++)
            for (int64_t w = 0; w < gw; w++) {
                double *p = coords + ((f * gh + h) * gw + w) * 3;
                p [0] = (double) f, p [1] = (double) h, p [2] = (double) w;
            }
    int rc = vdgx_rope_build (b, r, VDGX_ROPE_INTERLEAVED, len, 3, coords, c, axis, freq, err);
    free (freq);
    free (axis);
    free (coords);
    return rc;
}

int
vdgx_rope_apply (vdgx_backend_t *b, const vdgx_rope_t *r, vdgx_tensor_t *y, const vdgx_tensor_t *x)
{
    return vdgx_op_rope (b, y, x, &r->cos, &r->sin, r->layout);
}

int
vdgx_attn_head_gate (vdgx_backend_t *b, vdgx_tensor_t *o, const vdgx_tensor_t *logits, float factor)
{
    const int64_t D = o->shape [o->ndim - 1], n = vdgx_tensor_numel (logits);
    if (o->ndim < 2 || n * D != vdgx_tensor_numel (o)) {
        vdgx_backend_set_error (b, "attention head gate: logits must have one value per head of o");
        return -1;
    }
    //  sigmoid, then spread over the head's D values: [1, n, 1] . [1, 1, D] (factor per column)
    vdgx_tensor_t sig, fac, g;
    memset (&sig, 0, sizeof (sig));
    memset (&fac, 0, sizeof (fac));
    memset (&g, 0, sizeof (g));
    float *f = (float *) malloc (sizeof (float) * (size_t) D);
    int rc = -1;
    if (f && vdgx_nn_alloc (b, &sig, VDGX_DTYPE_F32, 1, n, 1, 0) == 0
     && vdgx_nn_alloc (b, &fac, VDGX_DTYPE_F32, 1, 1, D, 0) == 0
     && vdgx_nn_alloc (b, &g, VDGX_DTYPE_F32, 1, n, D, 0) == 0) {
        for (int64_t i = 0; i < D; i++)
            f [i] = factor;
        vdgx_tensor_t l3 = vdgx_nn_view3 (logits, 1, n, 1), o3 = vdgx_nn_view3 (o, 1, n, D);
        rc = vdgx_tensor_from_f32 (b, &fac, f)
          || vdgx_op_unary (b, &sig, &l3, VDGX_UNARY_SIGMOID, 0.0f)
          || vdgx_op_matmul (b, &g, &sig, &fac)
          || vdgx_op_mul (b, &o3, &o3, &g)? -1: 0;
    }
    else
    if (!f)
        vdgx_backend_set_error (b, "attention head gate: out of memory");
    free (f);
    vdgx_nn_free (b, &sig);
    vdgx_nn_free (b, &fac);
    vdgx_nn_free (b, &g);
    return rc;
}

void
vdgx_rope_release (vdgx_backend_t *b, vdgx_rope_t *r)
{
    vdgx_nn_free (b, &r->cos);
    vdgx_nn_free (b, &r->sin);
}

//  ---------------------------------------------------------------------------------------
//  KV cache

struct _vdgx_kvcache_t {
    vdgx_backend_t *b;
    vdgx_tensor_t k, v;         //  [B, cap, Hkv, D]
    int64_t len;
};

vdgx_kvcache_t *
vdgx_kvcache_new (vdgx_backend_t *b, vdgx_dtype_t dtype, int64_t batch, int64_t cap,
                  int64_t kv_heads, int64_t head_dim, char **err)
{
    assert (b && batch >= 1 && cap >= 1 && kv_heads >= 1 && head_dim >= 1);
    vdgx_kvcache_t *self = calloc (1, sizeof (vdgx_kvcache_t));
    if (!self) {
        vdgx_set_error (err, "kv cache: out of memory");
        return NULL;
    }
    self->b = b;
    if (vdgx_nn_alloc (b, &self->k, dtype, batch, cap, kv_heads, head_dim)
    ||  vdgx_nn_alloc (b, &self->v, dtype, batch, cap, kv_heads, head_dim)) {
        vdgx_nn_fail (b, err, "kv cache", "allocation");
        vdgx_kvcache_destroy (&self);
    }
    return self;
}

void
vdgx_kvcache_destroy (vdgx_kvcache_t **self_p)
{
    assert (self_p);
    vdgx_kvcache_t *self = *self_p;
    if (!self)
        return;
    vdgx_nn_free (self->b, &self->k);
    vdgx_nn_free (self->b, &self->v);
    free (self);
    *self_p = NULL;
}

int64_t vdgx_kvcache_len (vdgx_kvcache_t *self) { return self->len; }
int64_t vdgx_kvcache_capacity (vdgx_kvcache_t *self) { return self->k.shape [1]; }

//  Rows [from, from + n) of batch item i of a [B, cap, Hkv, D] tensor, as [1, n, Hkv, D].
static vdgx_tensor_t
s_span (const vdgx_tensor_t *t, int64_t i, int64_t from, int64_t n)
{
    int64_t row = t->shape [2] * t->shape [3];
    size_t offset = (size_t) ((i * t->shape [1] + from) * row) * vdgx_dtype_size (t->dtype);
    const int64_t shape [4] = { 1, n, t->shape [2], t->shape [3] };
    vdgx_tensor_t v;
    vdgx_tensor_init (&v, t->dtype, 4, shape, (char *) t->data + offset, t->device);
    return v;
}

int
vdgx_kvcache_append (vdgx_kvcache_t *self, const vdgx_tensor_t *k, const vdgx_tensor_t *v)
{
    assert (self && k && v);
    const vdgx_tensor_t *c = &self->k;
    if (k->ndim != 4 || v->ndim != 4 || k->shape [0] != c->shape [0] || k->shape [2] != c->shape [2]
    ||  k->shape [3] != c->shape [3] || memcmp (k->shape, v->shape, sizeof (k->shape))) {
        vdgx_backend_set_error (self->b, "kv cache: k/v must be [%lld, n, %lld, %lld]",
                                (long long) c->shape [0], (long long) c->shape [2], (long long) c->shape [3]);
        return -1;
    }
    int64_t n = k->shape [1];
    if (self->len + n > c->shape [1]) {
        vdgx_backend_set_error (self->b, "kv cache: %lld + %lld rows exceed the capacity %lld",
                                (long long) self->len, (long long) n, (long long) c->shape [1]);
        return -1;
    }
    for (int64_t i = 0; i < c->shape [0]; i++) {
        vdgx_tensor_t dk = s_span (&self->k, i, self->len, n), dv = s_span (&self->v, i, self->len, n);
        vdgx_tensor_t sk = s_span (k, i, 0, n), sv = s_span (v, i, 0, n);
        if (vdgx_op_cast (self->b, &dk, &sk) || vdgx_op_cast (self->b, &dv, &sv))
            return -1;
    }
    self->len += n;
    return 0;
}

int
vdgx_kvcache_truncate (vdgx_kvcache_t *self, int64_t len)
{
    assert (self);
    if (len < 0 || len > self->len) {
        vdgx_backend_set_error (self->b, "kv cache: cannot truncate %lld rows to %lld",
                                (long long) self->len, (long long) len);
        return -1;
    }
    self->len = len;
    return 0;
}

int
vdgx_kvcache_drop_front (vdgx_kvcache_t *self, int64_t n)
{
    assert (self);
    if (n < 0 || n > self->len) {
        vdgx_backend_set_error (self->b, "kv cache: cannot drop %lld of %lld rows", (long long) n,
                                (long long) self->len);
        return -1;
    }
    int64_t keep = self->len - n;
    for (int64_t i = 0; n > 0 && i < self->k.shape [0]; i++)
        for (int64_t at = 0; at < keep; at += n) {
            int64_t m = keep - at < n? keep - at: n;
            vdgx_tensor_t dk = s_span (&self->k, i, at, m), sk = s_span (&self->k, i, at + n, m);
            vdgx_tensor_t dv = s_span (&self->v, i, at, m), sv = s_span (&self->v, i, at + n, m);
            if (vdgx_op_cast (self->b, &dk, &sk) || vdgx_op_cast (self->b, &dv, &sv))
                return -1;
        }
    self->len = keep;
    return 0;
}

int
vdgx_kvcache_attend (vdgx_kvcache_t *self, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                     const vdgx_attn_spec_t *spec, float scale)
{
    assert (self && o && q);
    vdgx_backend_t *b = self->b;
    if (q->ndim != 4 || q->shape [1] > self->len || self->len == 0) {
        vdgx_backend_set_error (b, "kv cache: %lld queries over %lld cached rows",
                                (long long) (q->ndim == 4? q->shape [1]: -1), (long long) self->len);
        return -1;
    }
    vdgx_attn_spec_t s;
    memset (&s, 0, sizeof (s));
    if (spec)
        s = *spec;
    s.q_offset = self->len - q->shape [1];
    //  Views of the first len rows of every sequence (batch stride = the capacity).
    vdgx_tensor_t k = s_span (&self->k, 0, 0, self->len), v = s_span (&self->v, 0, 0, self->len);
    k.shape [0] = v.shape [0] = self->k.shape [0];
    k.stride [0] = v.stride [0] = self->k.stride [0];
    return vdgx_op_attention_ex (b, o, q, &k, &v, &s, scale);
}

int
vdgx_kvcache_attend_span (vdgx_kvcache_t *self, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                          int64_t from, int64_t n, float scale)
{
    assert (self && o && q);
    vdgx_backend_t *b = self->b;
    if (q->ndim != 4 || self->k.shape [0] != 1 || from < 0 || n <= 0 || from + n > self->len) {
        vdgx_backend_set_error (b, "kv cache: rows [%lld, %lld) of %lld cached rows (batch %lld)",
                                (long long) from, (long long) (from + n), (long long) self->len,
                                (long long) self->k.shape [0]);
        return -1;
    }
    vdgx_tensor_t k = s_span (&self->k, 0, from, n), v = s_span (&self->v, 0, from, n);
    return vdgx_op_attention_ex (b, o, q, &k, &v, NULL, scale);
}

//  ---------------------------------------------------------------------------------------
//  Attention module

void
vdgx_attn_init (vdgx_attn_t *a, int64_t dim, int64_t heads, int64_t kv_heads, int64_t head_dim)
{
    assert (a && dim > 0 && heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && head_dim > 0);
    memset (a, 0, sizeof (*a));
    a->dim = dim;
    a->heads = heads;
    a->kv_heads = kv_heads;
    a->head_dim = head_dim;
    a->scale = (float) (1.0 / sqrt ((double) head_dim));
}

void
vdgx_attn_release (vdgx_backend_t *b, vdgx_attn_t *a)
{
    vdgx_linear_release (b, &a->q);
    vdgx_linear_release (b, &a->k);
    vdgx_linear_release (b, &a->v);
    vdgx_linear_release (b, &a->o);
    vdgx_norm_release (b, &a->q_norm);
    vdgx_norm_release (b, &a->k_norm);
}

//  [B, L, heads, n / heads] view of a [B, L, n] or [L, n] tensor.
static vdgx_tensor_t
s_heads (const vdgx_tensor_t *t, int64_t heads)
{
    int64_t n = t->shape [t->ndim - 1];
    int64_t bl = vdgx_tensor_numel (t) / n;
    int64_t B = t->ndim >= 3? t->shape [0]: 1;
    return vdgx_nn_view4 (t, B, bl / B, heads, n / heads);
}

int
vdgx_attn_project (vdgx_backend_t *b, const vdgx_linear_t *lin, const vdgx_norm_t *norm,
                   const vdgx_rope_t *rope, int64_t heads, vdgx_tensor_t *out, vdgx_tensor_t *tmp,
                   const vdgx_tensor_t *x)
{
    vdgx_tensor_t o4 = s_heads (out, heads), t4 = s_heads (tmp, heads);
    if (norm && rope)
        return vdgx_linear_forward (b, lin, out, x)
            || vdgx_norm_forward (b, norm, tmp, out)
            || vdgx_rope_apply (b, rope, &o4, &t4)? -1: 0;
    if (norm)
        return vdgx_linear_forward (b, lin, tmp, x) || vdgx_norm_forward (b, norm, out, tmp)? -1: 0;
    if (rope)
        return vdgx_linear_forward (b, lin, tmp, x) || vdgx_rope_apply (b, rope, &o4, &t4)? -1: 0;
    return vdgx_linear_forward (b, lin, out, x);
}

int
vdgx_attn_core (vdgx_backend_t *b, const vdgx_attn_t *a, vdgx_tensor_t *o, const vdgx_tensor_t *q,
                const vdgx_tensor_t *k, const vdgx_tensor_t *v, const vdgx_attn_spec_t *spec)
{
    return vdgx_op_attention_ex (b, o, q, k, v, spec, a->scale);
}

int
vdgx_attn_forward (vdgx_backend_t *b, const vdgx_attn_t *a, vdgx_tensor_t *y, const vdgx_tensor_t *x,
                   const vdgx_tensor_t *ctx, const vdgx_rope_t *rope_q, const vdgx_rope_t *rope_k,
                   const vdgx_attn_spec_t *spec, vdgx_kvcache_t *cache, char **err)
{
    assert (b && a && y && x);
    if (!ctx)
        ctx = x;
    if (!rope_k)
        rope_k = rope_q;
    int64_t B = x->ndim >= 3? x->shape [0]: 1;
    int64_t Lq = vdgx_tensor_numel (x) / x->shape [x->ndim - 1] / B;
    int64_t Lk = vdgx_tensor_numel (ctx) / ctx->shape [ctx->ndim - 1] / B;
    int64_t H = a->heads, G = a->kv_heads, D = a->head_dim;
    vdgx_dtype_t act = vdgx_backend_act_dtype (b);
    vdgx_tensor_t q = { 0 }, k = { 0 }, v = { 0 }, tq = { 0 }, tk = { 0 }, o = { 0 };
    int rc = vdgx_nn_alloc (b, &q, act, B, Lq, H * D, 0);
    rc = rc? rc: vdgx_nn_alloc (b, &tq, act, B, Lq, H * D, 0);
    rc = rc? rc: vdgx_nn_alloc (b, &o, act, B, Lq, H * D, 0);
    rc = rc? rc: vdgx_nn_alloc (b, &k, act, B, Lk, G * D, 0);
    rc = rc? rc: vdgx_nn_alloc (b, &tk, act, B, Lk, G * D, 0);
    rc = rc? rc: vdgx_nn_alloc (b, &v, act, B, Lk, G * D, 0);
    if (rc)
        vdgx_nn_fail (b, err, "attention", "allocation");
    else
    if (vdgx_attn_project (b, &a->q, a->has_q_norm? &a->q_norm: NULL, rope_q, H, &q, &tq, x)
    ||  vdgx_attn_project (b, &a->k, a->has_k_norm? &a->k_norm: NULL, rope_k, G, &k, &tk, ctx)
    ||  vdgx_linear_forward (b, &a->v, &v, ctx))
        rc = vdgx_nn_fail (b, err, "attention", "q/k/v projection");
    else {
        vdgx_tensor_t q4 = s_heads (&q, H), k4 = s_heads (&k, G), v4 = s_heads (&v, G);
        vdgx_tensor_t o4 = s_heads (&o, H);
        if (cache)
            rc = vdgx_kvcache_append (cache, &k4, &v4)
              || vdgx_kvcache_attend (cache, &o4, &q4, spec, a->scale)? -1: 0;
        else
            rc = vdgx_attn_core (b, a, &o4, &q4, &k4, &v4, spec);
        if (rc || vdgx_linear_forward (b, &a->o, y, &o))
            rc = vdgx_nn_fail (b, err, "attention", cache? "cached attention": "attention");
    }
    vdgx_tensor_t *tmp [] = { &q, &k, &v, &tq, &tk, &o };
    for (size_t i = 0; i < sizeof (tmp) / sizeof (tmp [0]); i++)
        vdgx_nn_free (b, tmp [i]);
    return rc;
}
