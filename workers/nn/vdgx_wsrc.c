/*  vdgx_wsrc.c - weight sources through layout maps (see vdgx_wsrc.h). */
#include "vdgx_wsrc.h"
#include "vdgx_quant.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _vdgx_wsrc_t {
    vdgx_ckpt_t *ckpt;              //  borrowed; NULL for a random source
    const vdgx_wsrc_map_t *map;
    uint64_t random_state;          //  xorshift64 state, never 0
    size_t used;
    char who [64];
};

vdgx_wsrc_t *
vdgx_wsrc_new (vdgx_ckpt_t *ckpt, const vdgx_wsrc_map_t *map, const char *who)
{
    assert (ckpt);
    vdgx_wsrc_t *self = calloc (1, sizeof (vdgx_wsrc_t));
    if (!self)
        return NULL;
    self->ckpt = ckpt;
    self->map = map;
    snprintf (self->who, sizeof (self->who), "%s", who? who: "checkpoint");
    return self;
}

vdgx_wsrc_t *
vdgx_wsrc_new_random (uint64_t seed, const char *who)
{
    vdgx_wsrc_t *self = calloc (1, sizeof (vdgx_wsrc_t));
    if (!self)
        return NULL;
    self->random_state = seed * 0x9E3779B97F4A7C15ull | 1;
    snprintf (self->who, sizeof (self->who), "%s", who? who: "random");
    return self;
}

void
vdgx_wsrc_destroy (vdgx_wsrc_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

size_t
vdgx_wsrc_used (vdgx_wsrc_t *self)
{
    return self->used;
}

//  Matches `pattern` ('*' = a decimal number) at the start of name; on success the number
//  (or "") goes to num and the length of name consumed is returned, else -1.
static int
s_match (const char *pattern, const char *name, char *num, size_t num_size)
{
    const char *p = pattern, *n = name;
    num [0] = 0;
    while (*p) {
        if (*p == '*') {
            size_t len = 0;
            while (isdigit ((unsigned char) n [len]))
                len++;
            if (len == 0 || len >= num_size)
                return -1;
            memcpy (num, n, len);
            num [len] = 0;
            n += len;
            p++;
        }
        else
        if (*p++ != *n++)
            return -1;
    }
    return (int) (n - name);
}

void
vdgx_wsrc_name (vdgx_wsrc_t *self, const char *canonical, char *out, size_t size)
{
    const vdgx_wsrc_map_t *map = self->map;
    const char *prefix = map && map->prefix? map->prefix: "";
    for (size_t i = 0; map && i < map->count; i++) {
        char num [24];
        int used = s_match (map->renames [i].from, canonical, num, sizeof (num));
        if (used < 0)
            continue;
        //  `to` with its '*' replaced by the number, then the rest of the name.
        size_t len = (size_t) snprintf (out, size, "%s", prefix);
        for (const char *t = map->renames [i].to; *t && len + 1 < size; t++) {
            if (*t == '*')
                len += (size_t) snprintf (out + len, size - len, "%s", num);
            else {
                out [len++] = *t;
                out [len] = 0;
            }
        }
        if (len < size)
            snprintf (out + len, size - len, "%s", canonical + used);
        return;
    }
    snprintf (out, size, "%s%s", prefix, canonical);
}

const vdgx_ckpt_tensor_t *
vdgx_wsrc_find (vdgx_wsrc_t *self, const char *canonical)
{
    if (!self->ckpt)
        return NULL;
    char name [512];
    vdgx_wsrc_name (self, canonical, name, sizeof (name));
    return vdgx_ckpt_find (self->ckpt, name);
}

static bool
s_shape_is (const vdgx_ckpt_tensor_t *t, int ndim, const int64_t *shape)
{
    //  Leading 1s are tolerated ([1, 6, D] modulation tables; conv kernels [D, C, 1, 2, 2]
    //  are checked by numel through their flattened 2D shape).
    int64_t numel = 1, want = 1;
    for (int i = 0; i < t->ndim; i++)
        numel *= t->shape [i];
    for (int i = 0; i < ndim; i++)
        want *= shape [i];
    if (numel != want || t->ndim < 1)
        return false;
    return t->shape [0] == shape [0] || (t->ndim > ndim && t->shape [0] == 1);
}

//  Per-tensor scale of a scaled-FP8 weight; 1 when absent.
static int
s_fp8_scale (vdgx_wsrc_t *self, const char *canonical, float *scale, char **err)
{
    *scale = 1.0f;
    char base [400], cand [420], name [512];
    snprintf (base, sizeof (base), "%s", canonical);
    char *dot = strrchr (base, '.');
    if (!dot || strcmp (dot, ".weight") != 0)
        return 0;
    *dot = 0;
    const vdgx_ckpt_tensor_t *t = NULL;
    const char *suffixes [2] = { "scale_weight", "weight_scale" };
    for (int i = 0; i < 2 && !t; i++) {
        snprintf (cand, sizeof (cand), "%s.%s", base, suffixes [i]);
        vdgx_wsrc_name (self, cand, name, sizeof (name));
        t = vdgx_ckpt_find (self->ckpt, name);
    }
    if (!t)
        return 0;
    if (t->ndim > 1 || (t->ndim == 1 && t->shape [0] != 1)) {
        vdgx_set_error (err, "%s: %s is not a scalar", self->who, name);
        return -1;
    }
    char *e = NULL;
    if (vdgx_ckpt_read_f32 (t, scale, &e)) {
        vdgx_set_error (err, "%s: %s: %s", self->who, name, e? e: "unreadable");
        free (e);
        return -1;
    }
    return 0;
}

static void s_dims (char *out, size_t size, int ndim, const int64_t *shape);

//  An NVFP4 checkpoint weight (the LTX-2 nvfp4 files, ModelOpt): "<layer>.weight" U8 [n, k/2]
//  with "<layer>.weight_scale" F8_E4M3 block scales in cuBLAS 128x4 tiles and the F32 tensor
//  scale "<layer>.weight_scale_2"; element 2j in the high nibble. Fills w and returns 1; 0 when
//  the tensor is not one; -1 with *err.
static int
s_nvfp4 (vdgx_wsrc_t *self, const char *canonical, const vdgx_ckpt_tensor_t *t, int64_t n,
         int64_t k, vdgx_weight_t *w, char **err)
{
    if (!t || t->dtype != VDGX_DTYPE_U8)
        return 0;
    char base [400], cand [420], sname [512], s2name [512];
    snprintf (base, sizeof (base), "%s", canonical);
    char *dot = strrchr (base, '.');
    if (!dot || strcmp (dot, ".weight") != 0)
        return 0;
    *dot = 0;
    snprintf (cand, sizeof (cand), "%s.weight_scale", base);
    vdgx_wsrc_name (self, cand, sname, sizeof (sname));
    snprintf (cand, sizeof (cand), "%s.weight_scale_2", base);
    vdgx_wsrc_name (self, cand, s2name, sizeof (s2name));
    const vdgx_ckpt_tensor_t *sc = vdgx_ckpt_find (self->ckpt, sname);
    const vdgx_ckpt_tensor_t *s2 = vdgx_ckpt_find (self->ckpt, s2name);
    char name [512];
    vdgx_wsrc_name (self, canonical, name, sizeof (name));
    if (!sc || !s2 || sc->dtype != VDGX_DTYPE_F8_E4M3 || sc->ndim != 2 || s2->dtype != VDGX_DTYPE_F32
    ||  s2->nbytes != 4) {
        vdgx_set_error (err, "%s: tensor %s is U8 but not NVFP4 (needs %s F8_E4M3 and %s F32 scalar)",
                        self->who, name, sname, s2name);
        return -1;
    }
    if (t->ndim != 2 || t->shape [0] != n || t->shape [1] * 2 != k) {
        char got [96];
        s_dims (got, sizeof (got), t->ndim, t->shape);
        vdgx_set_error (err, "%s: tensor %s has shape [%s], expected NVFP4 [%lld,%lld]", self->who,
                        name, got, (long long) n, (long long) (k / 2));
        return -1;
    }
    float g;
    memcpy (&g, s2->data, 4);
    char *e = NULL;
    if (vdgx_weight_from_nvfp4_tiled (w, t->data, true, sc->data, sc->shape [0], sc->shape [1], g,
                                      n, k, &e)) {
        vdgx_set_error (err, "%s: %s: %s", self->who, name, e? e: "bad nvfp4 weight");
        free (e);
        return -1;
    }
    return 1;
}

static void
s_random_fill (vdgx_wsrc_t *self, const char *name, float *buf, int64_t numel)
{
    size_t len = strlen (name);
    bool is_norm = strstr (name, "norm") != NULL && len > 7 && strcmp (name + len - 7, ".weight") == 0;
    bool is_bias = len > 5 && strcmp (name + len - 5, ".bias") == 0;
    if (is_norm || is_bias) {
        for (int64_t i = 0; i < numel; i++)
            buf [i] = is_norm? 1.0f: 0.0f;
        return;
    }
    //  Uniform with std 0.02 from a xorshift stream: a 1.3B model fills in seconds
    //  (Box-Muller normals would take half a minute), and timing ignores the values.
    uint64_t state = self->random_state;
    const float a = 0.02f * 1.7320508f;
    for (int64_t i = 0; i < numel; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        buf [i] = a * ((float) (state >> 40) * (2.0f / 16777216.0f) - 1.0f);
    }
    self->random_state = state;
}

static void
s_dims (char *out, size_t size, int ndim, const int64_t *shape)
{
    out [0] = 0;
    for (int i = 0; i < ndim; i++)
        snprintf (out + strlen (out), size - strlen (out), "%s%lld", i? ",": "", (long long) shape [i]);
}

float *
vdgx_wsrc_fetch (vdgx_wsrc_t *self, const char *canonical, int ndim, const int64_t *shape, char **err)
{
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape [i];
    float *buf = malloc ((size_t) (numel? numel: 1) * sizeof (float));
    if (!buf) {
        vdgx_set_error (err, "%s: out of memory reading %s", self->who, canonical);
        return NULL;
    }
    if (!self->ckpt) {
        s_random_fill (self, canonical, buf, numel);
        return buf;
    }
    char name [512];
    vdgx_wsrc_name (self, canonical, name, sizeof (name));
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (self->ckpt, name);
    if (!t) {
        vdgx_set_error (err, "%s: tensor %s is missing", self->who, name);
        free (buf);
        return NULL;
    }
    if (t->dtype == VDGX_DTYPE_U8 && ndim == 2) {
        vdgx_weight_t w;
        int is = s_nvfp4 (self, canonical, t, shape [0], shape [1], &w, err);
        if (is < 0) {
            free (buf);
            return NULL;
        }
        if (is) {
            vdgx_weight_dequant (&w, buf);
            vdgx_weight_host_free (&w);
            self->used++;
            return buf;
        }
    }
    if (!s_shape_is (t, ndim, shape)) {
        char want [96], got [96];
        s_dims (want, sizeof (want), ndim, shape);
        s_dims (got, sizeof (got), t->ndim, t->shape);
        vdgx_set_error (err, "%s: tensor %s has shape [%s], expected [%s]", self->who, name, got, want);
        free (buf);
        return NULL;
    }
    char *e = NULL;
    float scale;
    if (vdgx_ckpt_read_f32 (t, buf, &e)) {
        vdgx_set_error (err, "%s: tensor %s: %s", self->who, name, e? e: "unreadable dtype");
        free (e);
        free (buf);
        return NULL;
    }
    if (s_fp8_scale (self, canonical, &scale, err)) {
        free (buf);
        return NULL;
    }
    self->used++;
    if (scale != 1.0f)
        for (int64_t i = 0; i < numel; i++)
            buf [i] *= scale;
    for (int64_t i = 0; i < numel; i++)
        if (!isfinite (buf [i])) {
            vdgx_set_error (err, "%s: tensor %s holds a non-finite value", self->who, name);
            free (buf);
            return NULL;
        }
    return buf;
}

int
vdgx_wsrc_tensor (vdgx_wsrc_t *self, vdgx_backend_t *b, const char *name, vdgx_dtype_t dtype,
                  int ndim, const int64_t *shape, vdgx_tensor_t *t, char **err)
{
    float *buf = vdgx_wsrc_fetch (self, name, ndim, shape, err);
    if (!buf)
        return -1;
    int rc = vdgx_nn_upload (b, t, dtype, ndim, shape, buf);
    free (buf);
    return rc? vdgx_nn_fail (b, err, self->who, name): 0;
}

int
vdgx_wsrc_linear (vdgx_wsrc_t *self, vdgx_backend_t *b, const char *layer, int64_t n, int64_t k,
                  vdgx_wfmt_t fmt, int bias_dtype, vdgx_linear_t *l, char **err)
{
    memset (l, 0, sizeof (*l));
    char name [400];
    snprintf (name, sizeof (name), "%s.weight", layer);
    fmt = vdgx_linear_fmt_for (fmt, k);
    vdgx_weight_t host;
    memset (&host, 0, sizeof (host));
    const vdgx_ckpt_tensor_t *raw = vdgx_wsrc_find (self, name);
    char *e = NULL;
    if (raw && raw->dtype == VDGX_DTYPE_F8_E4M3 && fmt == VDGX_WFMT_FP8_E4M3
    &&  raw->ndim == 2 && raw->shape [0] == n && raw->shape [1] == k) {
        //  A pre-quantized checkpoint keeps its own FP8 values (no double rounding).
        float scale;
        if (s_fp8_scale (self, name, &scale, err))
            return -1;
        if (vdgx_weight_from_fp8 (&host, raw->data, &scale, 1, n, k, &e)) {
            vdgx_set_error (err, "%s: %s: %s", self->who, name, e? e: "bad fp8 weight");
            free (e);
            return -1;
        }
        self->used++;
    }
    else
    if (raw && raw->dtype == VDGX_DTYPE_U8 && fmt == VDGX_WFMT_NVFP4) {
        //  A pre-quantized NVFP4 checkpoint keeps its values (only the layout changes).
        if (s_nvfp4 (self, name, raw, n, k, &host, err) != 1) {
            if (err && !*err)
                vdgx_set_error (err, "%s: tensor %s is U8 but not NVFP4", self->who, name);
            return -1;
        }
        self->used++;
    }
    else {
        const int64_t shape [2] = { n, k };
        float *buf = vdgx_wsrc_fetch (self, name, 2, shape, err);
        if (!buf)
            return -1;
        int rc = vdgx_weight_quantize (&host, fmt, buf, n, k, true, &e);
        free (buf);
        if (rc) {
            vdgx_set_error (err, "%s: %s: %s", self->who, name, e? e: "quantization failed");
            free (e);
            return -1;
        }
    }
    int rc = vdgx_linear_from_weight (b, l, &host, err);
    vdgx_weight_host_free (&host);
    if (rc == 0 && bias_dtype >= 0) {
        snprintf (name, sizeof (name), "%s.bias", layer);
        const int64_t bshape [1] = { n };
        rc = vdgx_wsrc_tensor (self, b, name, (vdgx_dtype_t) bias_dtype, 1, bshape, &l->b, err);
    }
    if (rc)
        vdgx_linear_release (b, l);
    return rc;
}

int
vdgx_wsrc_norm (vdgx_wsrc_t *self, vdgx_backend_t *b, vdgx_norm_t *n, vdgx_norm_kind_t kind,
                const char *prefix, int64_t dim, float eps, bool affine, bool bias, bool one_plus,
                char **err)
{
    char name [400];
    const int64_t shape [1] = { dim };
    float *w = NULL, *bb = NULL;
    if (affine) {
        snprintf (name, sizeof (name), "%s.weight", prefix);
        if (!(w = vdgx_wsrc_fetch (self, name, 1, shape, err)))
            return -1;
    }
    if (bias) {
        snprintf (name, sizeof (name), "%s.bias", prefix);
        if (!(bb = vdgx_wsrc_fetch (self, name, 1, shape, err))) {
            free (w);
            return -1;
        }
    }
    int rc = vdgx_norm_init (b, n, kind, dim, eps, w, bb, one_plus, err);
    free (w);
    free (bb);
    return rc;
}
