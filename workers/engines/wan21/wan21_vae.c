/*  wan21_vae.c - the Wan-VAE decoder (see wan21_vae.h).

    Every activation is a backend tensor [1, C, T, H, W] in the act dtype. Each function
    allocates its output and the caller releases its inputs, so at most a few full-resolution
    tensors of one chunk (<= 4 frames) are alive at once.
*/
#include "wan21_vae.h"
#include "vdgx_conv.h"
#include "vdgx_util.h"
#include "vdgx_ckpt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const float wan21_vae_mean [16] = {
    -0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
    0.4134f, -0.0715f, 0.5517f, -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f
};
const float wan21_vae_std [16] = {
    2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f
};

#define S_STAGES        4
#define S_RES_PER_STAGE 3       //  num_res_blocks + 1 in the decoder
#define S_MAX_UPS       (S_STAGES * (S_RES_PER_STAGE + 1))
#define S_MAX_SLOTS     64

typedef struct {
    char *name;
    vdgx_tensor_t t;
} s_param_t;

typedef struct {
    vdgx_tensor_t *w, *b;
    int kt, kh, kw;
    int slot;                   //  causal cache slot, -1 for 1x1x1 convolutions
} s_conv_t;

typedef struct {
    int cin, cout;
    vdgx_tensor_t *g1, *g2;
    s_conv_t c1, c2;
    bool has_sc;
    s_conv_t sc;
} s_res_t;

typedef struct {
    int c;
    vdgx_tensor_t *gamma, *qkv_b, *proj_b;
    vdgx_weight_t qkv, proj;
} s_attn_t;

typedef struct {
    int dim;
    bool temporal;
    s_conv_t conv;              //  resample.1, 2D 3x3 dim -> dim/2
    s_conv_t time_conv;         //  (3,1,1) dim -> 2 dim, cached
} s_up_t;

typedef struct {
    bool is_up;
    s_res_t res;
    s_up_t up;
} s_layer_t;

//  Encoder: residual blocks and downsamplers (ZeroPad2d (0,1,0,1) + 3x3 stride-2 conv per
//  frame; downsample3d adds a stride-2 time conv over the last frame of the previous chunk
//  and this chunk's frames, skipped on the first chunk).
#define S_ENC_LAYERS 11     //  4 stages x 2 residual blocks + 3 downsamplers
typedef struct {
    bool is_down, temporal;
    s_res_t res;
    s_conv_t conv, time_conv;
    int slot;               //  last frame of the previous chunk (temporal)
} s_elayer_t;

struct _wan21_vae_t {
    vdgx_backend_t *b;
    vdgx_dtype_t act;
    int dim, z_dim;
    s_param_t *params;
    int nparams, cap;
    s_conv_t conv2, conv1, head;
    s_res_t mid0, mid2;
    s_attn_t attn;
    vdgx_tensor_t *head_g;
    s_layer_t ups [S_MAX_UPS];
    int nups;
    int nslots;
    vdgx_tensor_t cache [S_MAX_SLOTS];
    bool seen [S_MAX_SLOTS];        //  upsample3d: the first chunk has passed ("Rep")
    wan21_vae_tap_fn *tap;
    void *tap_ctx;
    uint64_t weight_bytes;
    //  Encoder (when the checkpoint has one).
    bool has_encoder;
    s_conv_t econv1, ehead, quant;      //  encoder.conv1, encoder.head.2, conv1
    s_res_t emid0, emid2;
    s_attn_t eattn;
    vdgx_tensor_t *ehead_g;
    s_elayer_t enc [S_ENC_LAYERS];
};

//  ---------------------------------------------------------------------------------------
//  Layout

static void
s_emit (wan21_vae_layout_fn *fn, void *arg, int *count, const char *name, int ndim, ...)
{
    int64_t shape [VDGX_MAX_DIMS];
    va_list ap;
    va_start (ap, ndim);
    for (int i = 0; i < ndim; i++)
        shape [i] = va_arg (ap, int);
    va_end (ap);
    (*count)++;
    if (fn)
        fn (arg, name, ndim, shape);
}

static void
s_emit_res (wan21_vae_layout_fn *fn, void *arg, int *count, const char *prefix, int cin, int cout)
{
    char n [160];
    snprintf (n, sizeof n, "%s.residual.0.gamma", prefix);
    s_emit (fn, arg, count, n, 4, cin, 1, 1, 1);
    snprintf (n, sizeof n, "%s.residual.2.weight", prefix);
    s_emit (fn, arg, count, n, 5, cout, cin, 3, 3, 3);
    snprintf (n, sizeof n, "%s.residual.2.bias", prefix);
    s_emit (fn, arg, count, n, 1, cout);
    snprintf (n, sizeof n, "%s.residual.3.gamma", prefix);
    s_emit (fn, arg, count, n, 4, cout, 1, 1, 1);
    snprintf (n, sizeof n, "%s.residual.6.weight", prefix);
    s_emit (fn, arg, count, n, 5, cout, cout, 3, 3, 3);
    snprintf (n, sizeof n, "%s.residual.6.bias", prefix);
    s_emit (fn, arg, count, n, 1, cout);
    if (cin != cout) {
        snprintf (n, sizeof n, "%s.shortcut.weight", prefix);
        s_emit (fn, arg, count, n, 5, cout, cin, 1, 1, 1);
        snprintf (n, sizeof n, "%s.shortcut.bias", prefix);
        s_emit (fn, arg, count, n, 1, cout);
    }
}

//  Channel widths of decoder stage i (Decoder3d: dims = dim * [4, 4, 4, 2, 1]; stages after
//  an upsampler start from half the width, which the upsampler's conv produced).
static void
s_stage_dims (int dim, int i, int *cin, int *cout)
{
    static const int mult [5] = { 4, 4, 4, 2, 1 };
    *cin = dim * mult [i];
    *cout = dim * mult [i + 1];
    if (i >= 1)
        *cin /= 2;
}

int
wan21_vae_layout (int dim, int z_dim, wan21_vae_layout_fn *fn, void *arg)
{
    int count = 0, top = 4 * dim;
    char n [160];
    s_emit (fn, arg, &count, "conv2.weight", 5, z_dim, z_dim, 1, 1, 1);
    s_emit (fn, arg, &count, "conv2.bias", 1, z_dim);
    s_emit (fn, arg, &count, "decoder.conv1.weight", 5, top, z_dim, 3, 3, 3);
    s_emit (fn, arg, &count, "decoder.conv1.bias", 1, top);
    s_emit_res (fn, arg, &count, "decoder.middle.0", top, top);
    s_emit (fn, arg, &count, "decoder.middle.1.norm.gamma", 3, top, 1, 1);
    s_emit (fn, arg, &count, "decoder.middle.1.to_qkv.weight", 4, 3 * top, top, 1, 1);
    s_emit (fn, arg, &count, "decoder.middle.1.to_qkv.bias", 1, 3 * top);
    s_emit (fn, arg, &count, "decoder.middle.1.proj.weight", 4, top, top, 1, 1);
    s_emit (fn, arg, &count, "decoder.middle.1.proj.bias", 1, top);
    s_emit_res (fn, arg, &count, "decoder.middle.2", top, top);
    int k = 0;
    for (int i = 0; i < S_STAGES; i++) {
        int cin, cout;
        s_stage_dims (dim, i, &cin, &cout);
        for (int r = 0; r < S_RES_PER_STAGE; r++, k++) {
            snprintf (n, sizeof n, "decoder.upsamples.%d", k);
            s_emit_res (fn, arg, &count, n, r == 0? cin: cout, cout);
        }
        if (i != S_STAGES - 1) {
            snprintf (n, sizeof n, "decoder.upsamples.%d.resample.1.weight", k);
            s_emit (fn, arg, &count, n, 4, cout / 2, cout, 3, 3);
            snprintf (n, sizeof n, "decoder.upsamples.%d.resample.1.bias", k);
            s_emit (fn, arg, &count, n, 1, cout / 2);
            if (i < 2) {    //  temperal_upsample = [True, True, False]
                snprintf (n, sizeof n, "decoder.upsamples.%d.time_conv.weight", k);
                s_emit (fn, arg, &count, n, 5, 2 * cout, cout, 3, 1, 1);
                snprintf (n, sizeof n, "decoder.upsamples.%d.time_conv.bias", k);
                s_emit (fn, arg, &count, n, 1, 2 * cout);
            }
            k++;
        }
    }
    s_emit (fn, arg, &count, "decoder.head.0.gamma", 4, dim, 1, 1, 1);
    s_emit (fn, arg, &count, "decoder.head.2.weight", 5, 3, dim, 3, 3, 3);
    s_emit (fn, arg, &count, "decoder.head.2.bias", 1, 3);
    return count;
}

int
wan21_vae_encoder_layout (int dim, int z_dim, wan21_vae_layout_fn *fn, void *arg)
{
    static const int mult [5] = { 1, 1, 2, 4, 4 };
    int count = 0, top = 4 * dim, z2 = 2 * z_dim;
    char n [160];
    s_emit (fn, arg, &count, "encoder.conv1.weight", 5, dim, 3, 3, 3, 3);
    s_emit (fn, arg, &count, "encoder.conv1.bias", 1, dim);
    int k = 0;
    for (int i = 0; i < S_STAGES; i++) {
        int cin = dim * mult [i], cout = dim * mult [i + 1];
        for (int r = 0; r < 2; r++, k++) {
            snprintf (n, sizeof n, "encoder.downsamples.%d", k);
            s_emit_res (fn, arg, &count, n, r == 0? cin: cout, cout);
        }
        if (i != S_STAGES - 1) {
            snprintf (n, sizeof n, "encoder.downsamples.%d.resample.1.weight", k);
            s_emit (fn, arg, &count, n, 4, cout, cout, 3, 3);
            snprintf (n, sizeof n, "encoder.downsamples.%d.resample.1.bias", k);
            s_emit (fn, arg, &count, n, 1, cout);
            if (i >= 1) {   //  temperal_downsample = [False, True, True]
                snprintf (n, sizeof n, "encoder.downsamples.%d.time_conv.weight", k);
                s_emit (fn, arg, &count, n, 5, cout, cout, 3, 1, 1);
                snprintf (n, sizeof n, "encoder.downsamples.%d.time_conv.bias", k);
                s_emit (fn, arg, &count, n, 1, cout);
            }
            k++;
        }
    }
    s_emit_res (fn, arg, &count, "encoder.middle.0", top, top);
    s_emit (fn, arg, &count, "encoder.middle.1.norm.gamma", 3, top, 1, 1);
    s_emit (fn, arg, &count, "encoder.middle.1.to_qkv.weight", 4, 3 * top, top, 1, 1);
    s_emit (fn, arg, &count, "encoder.middle.1.to_qkv.bias", 1, 3 * top);
    s_emit (fn, arg, &count, "encoder.middle.1.proj.weight", 4, top, top, 1, 1);
    s_emit (fn, arg, &count, "encoder.middle.1.proj.bias", 1, top);
    s_emit_res (fn, arg, &count, "encoder.middle.2", top, top);
    s_emit (fn, arg, &count, "encoder.head.0.gamma", 4, top, 1, 1, 1);
    s_emit (fn, arg, &count, "encoder.head.2.weight", 5, z2, top, 3, 3, 3);
    s_emit (fn, arg, &count, "encoder.head.2.bias", 1, z2);
    s_emit (fn, arg, &count, "conv1.weight", 5, z2, z2, 1, 1, 1);
    s_emit (fn, arg, &count, "conv1.bias", 1, z2);
    return count;
}

//  diffusers AutoencoderKLWan names (scripts/convert_wan_to_diffusers.py mapping facts).
int
wan21_vae_diffusers_name (const char *o, char *buf, size_t size)
{
    static const char *const res_from [] = { "residual.0.gamma", "residual.2.weight",
        "residual.2.bias", "residual.3.gamma", "residual.6.weight", "residual.6.bias",
        "shortcut.weight", "shortcut.bias" };
    static const char *const res_to [] = { "norm1.gamma", "conv1.weight", "conv1.bias",
        "norm2.gamma", "conv2.weight", "conv2.bias", "conv_shortcut.weight", "conv_shortcut.bias" };
    int r = -1;
    if (strncmp (o, "conv2.", 6) == 0)
        r = snprintf (buf, size, "post_quant_conv.%s", o + 6);
    else
    if (strncmp (o, "decoder.conv1.", 14) == 0)
        r = snprintf (buf, size, "decoder.conv_in.%s", o + 14);
    else
    if (strcmp (o, "decoder.head.0.gamma") == 0)
        r = snprintf (buf, size, "decoder.norm_out.gamma");
    else
    if (strncmp (o, "decoder.head.2.", 15) == 0)
        r = snprintf (buf, size, "decoder.conv_out.%s", o + 15);
    else
    if (strncmp (o, "decoder.middle.1.", 17) == 0)
        r = snprintf (buf, size, "decoder.mid_block.attentions.0.%s", o + 17);
    else
    if (strncmp (o, "decoder.middle.", 15) == 0 || strncmp (o, "decoder.upsamples.", 18) == 0) {
        bool mid = o [8] == 'm';
        const char *p = o + (mid? 15: 18);
        char *end = NULL;
        long idx = strtol (p, &end, 10);
        if (end == p || *end != '.' || idx < 0 || idx >= S_MAX_UPS)
            return -1;
        const char *rest = end + 1;
        if (!mid && (idx % 4) == 3)
            r = snprintf (buf, size, "decoder.up_blocks.%ld.upsamplers.0.%s", idx / 4, rest);
        else
        for (size_t i = 0; i < sizeof res_from / sizeof res_from [0]; i++)
            if (strcmp (rest, res_from [i]) == 0) {
                if (mid)
                    r = snprintf (buf, size, "decoder.mid_block.resnets.%ld.%s", idx / 2, res_to [i]);
                else
                    r = snprintf (buf, size, "decoder.up_blocks.%ld.resnets.%ld.%s", idx / 4,
                                  idx % 4, res_to [i]);
            }
    }
    return r > 0 && (size_t) r < size? 0: -1;
}

//  ---------------------------------------------------------------------------------------
//  Parameters

typedef int (s_source_fn) (void *arg, const char *name, int ndim, const int64_t *shape,
                           float *dst, size_t n, char **err);

typedef struct {
    wan21_vae_t *self;
    s_source_fn *src;
    void *src_arg;
    char *err;
    float *host;
    size_t host_cap;
} s_build_t;

static void
s_build_one (void *arg, const char *name, int ndim, const int64_t *shape)
{
    s_build_t *bd = (s_build_t *) arg;
    wan21_vae_t *self = bd->self;
    if (bd->err)
        return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t) shape [i];
    if (n > bd->host_cap) {
        float *h = (float *) realloc (bd->host, n * sizeof (float));
        if (!h) {
            bd->err = vdgx_strdupf ("wan21 vae: out of memory reading %s", name);
            return;
        }
        bd->host = h;
        bd->host_cap = n;
    }
    if (bd->src (bd->src_arg, name, ndim, shape, bd->host, n, &bd->err))
        return;
    if (self->nparams == self->cap) {
        int cap = self->cap? 2 * self->cap: 128;
        s_param_t *p = (s_param_t *) realloc (self->params, (size_t) cap * sizeof (s_param_t));
        if (!p) {
            bd->err = vdgx_strdupf ("wan21 vae: out of memory");
            return;
        }
        self->params = p;
        self->cap = cap;
    }
    s_param_t *p = &self->params [self->nparams];
    memset (p, 0, sizeof *p);
    p->name = strdup (name);
    if (!p->name || vdgx_tensor_alloc (self->b, &p->t, self->act, ndim, shape)
    ||  vdgx_tensor_from_f32 (self->b, &p->t, bd->host)) {
        bd->err = vdgx_strdupf ("wan21 vae: cannot place %s on %s: %s", name,
                             vdgx_backend_name (self->b), vdgx_backend_error (self->b));
        vdgx_tensor_release (self->b, &p->t);
        free (p->name);
        return;
    }
    self->nparams++;
    self->weight_bytes += vdgx_tensor_nbytes (&p->t);
    //  The attention's 1x1 convolutions run as linears over [pixels, C].
    bool enc = strncmp (name, "encoder.", 8) == 0;
    const char *local = enc? name + 8: strncmp (name, "decoder.", 8) == 0? name + 8: name;
    bool qkv = strcmp (local, "middle.1.to_qkv.weight") == 0;
    if (qkv || strcmp (local, "middle.1.proj.weight") == 0) {
        vdgx_weight_t host = { .fmt = VDGX_WFMT_F32, .n = shape [0], .k = shape [1],
                               .data = bd->host, .global_scale = 1.f, .device = VDGX_DEVICE_CPU };
        uint16_t *half = NULL;
        if (self->act == VDGX_DTYPE_BF16 || self->act == VDGX_DTYPE_F16) {
            half = (uint16_t *) malloc (n * sizeof (uint16_t));
            if (!half || vdgx_convert_from_f32 (half, self->act, bd->host, n)) {
                free (half);
                bd->err = vdgx_strdupf ("wan21 vae: out of memory");
                return;
            }
            host.fmt = self->act == VDGX_DTYPE_BF16? VDGX_WFMT_BF16: VDGX_WFMT_F16;
            host.data = half;
        }
        s_attn_t *at = enc? &self->eattn: &self->attn;
        vdgx_weight_t *w = qkv? &at->qkv: &at->proj;
        if (vdgx_weight_to_backend (self->b, w, &host))
            bd->err = vdgx_strdupf ("wan21 vae: cannot place %s: %s", name, vdgx_backend_error (self->b));
        free (half);
    }
}

static vdgx_tensor_t *
s_param (wan21_vae_t *self, const char *fmt, ...)
{
    char name [160];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (name, sizeof name, fmt, ap);
    va_end (ap);
    for (int i = 0; i < self->nparams; i++)
        if (strcmp (self->params [i].name, name) == 0)
            return &self->params [i].t;
    return NULL;
}

static int
s_conv_wire (wan21_vae_t *self, s_conv_t *cv, const char *prefix, bool cached)
{
    cv->w = s_param (self, "%s.weight", prefix);
    cv->b = s_param (self, "%s.bias", prefix);
    if (!cv->w || !cv->b)
        return -1;
    int nd = cv->w->ndim;
    cv->kt = nd == 5? (int) cv->w->shape [2]: 1;
    cv->kh = (int) cv->w->shape [nd - 2];
    cv->kw = (int) cv->w->shape [nd - 1];
    cv->slot = -1;
    if (cached && cv->kt > 1) {
        if (self->nslots == S_MAX_SLOTS)
            return -1;
        cv->slot = self->nslots++;
    }
    return 0;
}

static int
s_res_wire (wan21_vae_t *self, s_res_t *r, const char *prefix, int cin, int cout)
{
    char n [160];
    r->cin = cin;
    r->cout = cout;
    r->g1 = s_param (self, "%s.residual.0.gamma", prefix);
    r->g2 = s_param (self, "%s.residual.3.gamma", prefix);
    snprintf (n, sizeof n, "%s.residual.2", prefix);
    if (!r->g1 || !r->g2 || s_conv_wire (self, &r->c1, n, true))
        return -1;
    snprintf (n, sizeof n, "%s.residual.6", prefix);
    if (s_conv_wire (self, &r->c2, n, true))
        return -1;
    r->has_sc = cin != cout;
    snprintf (n, sizeof n, "%s.shortcut", prefix);
    return r->has_sc? s_conv_wire (self, &r->sc, n, false): 0;
}

static int
s_wire (wan21_vae_t *self)
{
    int d = self->dim, top = 4 * d;
    char n [160];
    if (s_conv_wire (self, &self->conv2, "conv2", false)
    ||  s_conv_wire (self, &self->conv1, "decoder.conv1", true)
    ||  s_res_wire (self, &self->mid0, "decoder.middle.0", top, top)
    ||  s_res_wire (self, &self->mid2, "decoder.middle.2", top, top))
        return -1;
    self->attn.c = top;
    self->attn.gamma = s_param (self, "decoder.middle.1.norm.gamma");
    self->attn.qkv_b = s_param (self, "decoder.middle.1.to_qkv.bias");
    self->attn.proj_b = s_param (self, "decoder.middle.1.proj.bias");
    if (!self->attn.gamma || !self->attn.qkv_b || !self->attn.proj_b)
        return -1;
    int k = 0;
    for (int i = 0; i < S_STAGES; i++) {
        int cin, cout;
        s_stage_dims (d, i, &cin, &cout);
        for (int r = 0; r < S_RES_PER_STAGE; r++, k++) {
            snprintf (n, sizeof n, "decoder.upsamples.%d", k);
            self->ups [k].is_up = false;
            if (s_res_wire (self, &self->ups [k].res, n, r == 0? cin: cout, cout))
                return -1;
        }
        if (i != S_STAGES - 1) {
            s_up_t *u = &self->ups [k].up;
            self->ups [k].is_up = true;
            u->dim = cout;
            u->temporal = i < 2;
            snprintf (n, sizeof n, "decoder.upsamples.%d.resample.1", k);
            if (s_conv_wire (self, &u->conv, n, false))
                return -1;
            snprintf (n, sizeof n, "decoder.upsamples.%d.time_conv", k);
            if (u->temporal && s_conv_wire (self, &u->time_conv, n, true))
                return -1;
            k++;
        }
    }
    self->nups = k;
    self->head_g = s_param (self, "decoder.head.0.gamma");
    return self->head_g? s_conv_wire (self, &self->head, "decoder.head.2", true): -1;
}

static int
s_attn_wire (wan21_vae_t *self, s_attn_t *at, const char *prefix, int c)
{
    at->c = c;
    at->gamma = s_param (self, "%s.middle.1.norm.gamma", prefix);
    at->qkv_b = s_param (self, "%s.middle.1.to_qkv.bias", prefix);
    at->proj_b = s_param (self, "%s.middle.1.proj.bias", prefix);
    return at->gamma && at->qkv_b && at->proj_b? 0: -1;
}

static int
s_enc_wire (wan21_vae_t *self)
{
    static const int mult [5] = { 1, 1, 2, 4, 4 };
    int d = self->dim, top = 4 * d;
    char n [160];
    if (s_conv_wire (self, &self->econv1, "encoder.conv1", true)
    ||  s_conv_wire (self, &self->quant, "conv1", false)
    ||  s_res_wire (self, &self->emid0, "encoder.middle.0", top, top)
    ||  s_res_wire (self, &self->emid2, "encoder.middle.2", top, top)
    ||  s_attn_wire (self, &self->eattn, "encoder", top)
    ||  !(self->ehead_g = s_param (self, "encoder.head.0.gamma"))
    ||  s_conv_wire (self, &self->ehead, "encoder.head.2", true))
        return -1;
    int k = 0;
    for (int i = 0; i < S_STAGES; i++) {
        int cin = d * mult [i], cout = d * mult [i + 1];
        for (int r = 0; r < 2; r++, k++) {
            snprintf (n, sizeof n, "encoder.downsamples.%d", k);
            if (s_res_wire (self, &self->enc [k].res, n, r == 0? cin: cout, cout))
                return -1;
        }
        if (i != S_STAGES - 1) {
            s_elayer_t *l = &self->enc [k];
            l->is_down = true;
            l->temporal = i >= 1;
            snprintf (n, sizeof n, "encoder.downsamples.%d.resample.1", k);
            if (s_conv_wire (self, &l->conv, n, false))
                return -1;
            snprintf (n, sizeof n, "encoder.downsamples.%d.time_conv", k);
            if (l->temporal) {
                if (s_conv_wire (self, &l->time_conv, n, false) || self->nslots == S_MAX_SLOTS)
                    return -1;
                l->slot = self->nslots++;
            }
            k++;
        }
    }
    return k == S_ENC_LAYERS? 0: -1;
}

static wan21_vae_t *
s_build (vdgx_backend_t *backend, int dim, int z_dim, s_source_fn *src, void *src_arg,
         bool encoder, char **err)
{
    wan21_vae_t *self = (wan21_vae_t *) calloc (1, sizeof *self);
    if (!self) {
        *err = vdgx_strdupf ("wan21 vae: out of memory");
        return NULL;
    }
    self->b = backend;
    self->act = vdgx_backend_act_dtype (backend);
    self->dim = dim;
    self->z_dim = z_dim;
    s_build_t bd = { .self = self, .src = src, .src_arg = src_arg };
    wan21_vae_layout (dim, z_dim, s_build_one, &bd);
    if (encoder && !bd.err)
        wan21_vae_encoder_layout (dim, z_dim, s_build_one, &bd);
    free (bd.host);
    self->has_encoder = encoder;
    if (!bd.err && (s_wire (self) || (encoder && s_enc_wire (self))))
        bd.err = vdgx_strdupf ("wan21 vae: internal error wiring the %s", encoder? "encoder": "decoder");
    if (bd.err) {
        *err = bd.err;
        wan21_vae_destroy (&self);
    }
    return self;
}

void
wan21_vae_destroy (wan21_vae_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wan21_vae_t *self = *self_p;
    for (int i = 0; i < self->nparams; i++) {
        vdgx_tensor_release (self->b, &self->params [i].t);
        free (self->params [i].name);
    }
    for (int i = 0; i < S_MAX_SLOTS; i++)
        vdgx_tensor_release (self->b, &self->cache [i]);
    vdgx_weight_release (self->b, &self->attn.qkv);
    vdgx_weight_release (self->b, &self->attn.proj);
    vdgx_weight_release (self->b, &self->eattn.qkv);
    vdgx_weight_release (self->b, &self->eattn.proj);
    free (self->params);
    free (self);
    *self_p = NULL;
}

int wan21_vae_dim (wan21_vae_t *self) { return self->dim; }
int wan21_vae_z_dim (wan21_vae_t *self) { return self->z_dim; }
uint64_t wan21_vae_weight_bytes (wan21_vae_t *self) { return self->weight_bytes; }

void
wan21_vae_set_tap (wan21_vae_t *self, wan21_vae_tap_fn *fn, void *ctx)
{
    self->tap = fn;
    self->tap_ctx = ctx;
}

//  Checkpoint source: official names first, then the diffusers names.
typedef struct {
    vdgx_ckpt_t *ckpt;
    const char *path;
} s_ckpt_src_t;

static int
s_ckpt_source (void *arg, const char *name, int ndim, const int64_t *shape, float *dst, size_t n,
               char **err)
{
    s_ckpt_src_t *cs = (s_ckpt_src_t *) arg;
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (cs->ckpt, name);
    char alt [200];
    if (!t && wan21_vae_diffusers_name (name, alt, sizeof alt) == 0)
        t = vdgx_ckpt_find (cs->ckpt, alt);
    if (!t) {
        *err = vdgx_strdupf ("wan21 vae: %s has no tensor '%s'", cs->path, name);
        return -1;
    }
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape [i] == shape [i];
    if (!same) {
        char want [96] = "", got [96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf (want + strlen (want), sizeof want - strlen (want), "%s%lld", i? ",": "",
                      (long long) shape [i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf (got + strlen (got), sizeof got - strlen (got), "%s%lld", i? ",": "",
                      (long long) t->shape [i]);
        *err = vdgx_strdupf ("wan21 vae: %s: tensor '%s' has shape [%s], expected [%s]", cs->path,
                          t->name, got, want);
        return -1;
    }
    (void) n;
    char *e = NULL;
    if (vdgx_ckpt_read_f32 (t, dst, &e)) {
        *err = vdgx_strdupf ("wan21 vae: %s: %s: %s", cs->path, t->name, e? e: "cannot read");
        free (e);
        return -1;
    }
    return 0;
}

//  Resolves a folder to the VAE file inside it (caller frees); NULL when there is none.
static char *
s_resolve (const char *path)
{
    static const char *const names [] = {
        "Wan2.1_VAE.pth", "Wan2.1_VAE.safetensors", "vae/diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.safetensors", NULL
    };
    if (vdgx_is_file (path))
        return strdup (path);
    for (int i = 0; names [i]; i++) {
        char *p = vdgx_strdupf ("%s/%s", path, names [i]);
        if (p && vdgx_is_file (p))
            return p;
        free (p);
    }
    return NULL;
}

static wan21_vae_t *s_load (vdgx_backend_t *backend, const char *path, bool want_encoder,
                            char **err);

wan21_vae_t *
wan21_vae_load (vdgx_backend_t *backend, const char *path, char **err)
{
    return s_load (backend, path, true, err);
}

wan21_vae_t *
wan21_vae_load_decoder (vdgx_backend_t *backend, const char *path, char **err)
{
    return s_load (backend, path, false, err);
}

static wan21_vae_t *
s_load (vdgx_backend_t *backend, const char *path, bool want_encoder, char **err)
{
    if (!backend || !path || !err)
        return NULL;
    char *file = s_resolve (path);
    if (!file) {
        *err = vdgx_strdupf ("wan21 vae: no VAE checkpoint at '%s' (expected a .pth/.safetensors "
                          "file, Wan2.1_VAE.pth or vae/diffusion_pytorch_model.safetensors)", path);
        return NULL;
    }
    char *e = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (file, &e);
    if (!ckpt) {
        *err = vdgx_strdupf ("wan21 vae: cannot open %s: %s", file, e? e: "unknown error");
        free (e);
        free (file);
        return NULL;
    }
    //  dim and z_dim from the shapes of conv2 and the head norm.
    const vdgx_ckpt_tensor_t *c2 = vdgx_ckpt_find (ckpt, "conv2.weight");
    if (!c2)
        c2 = vdgx_ckpt_find (ckpt, "post_quant_conv.weight");
    const vdgx_ckpt_tensor_t *hg = vdgx_ckpt_find (ckpt, "decoder.head.0.gamma");
    if (!hg)
        hg = vdgx_ckpt_find (ckpt, "decoder.norm_out.gamma");
    wan21_vae_t *self = NULL;
    if (!c2 || !hg || c2->ndim != 5 || hg->ndim < 1 || c2->shape [0] < 1 || c2->shape [0] > 1024
    ||  hg->shape [0] < 1 || hg->shape [0] > 4096 || hg->shape [0] % 2)
        *err = vdgx_strdupf ("wan21 vae: %s is not a Wan-VAE checkpoint (conv2 / decoder.head.0 "
                          "missing or malformed)", file);
    else {
        s_ckpt_src_t cs = { ckpt, file };
        self = s_build (backend, (int) hg->shape [0], (int) c2->shape [0], s_ckpt_source, &cs,
                        want_encoder && vdgx_ckpt_find (ckpt, "encoder.conv1.weight") != NULL,
                        err);
    }
    vdgx_ckpt_destroy (&ckpt);
    free (file);
    return self;
}

//  Random source: PyTorch's default init bound 1/sqrt(fan_in), gammas 1.
typedef struct {
    uint64_t state;
} s_rand_src_t;


static int
s_rand_source (void *arg, const char *name, int ndim, const int64_t *shape, float *dst, size_t n,
               char **err)
{
    (void) err;
    s_rand_src_t *rs = (s_rand_src_t *) arg;
    if (strstr (name, "gamma")) {
        for (size_t i = 0; i < n; i++)
            dst [i] = 1.f + 0.1f * ((float) (vdgx_splitmix64 (&rs->state) >> 40) / 16777216.f - 0.5f);
        return 0;
    }
    //  A bias shares its weight's fan-in; use the output width as a stand-in.
    double fan_in = 1;
    for (int i = 1; i < ndim; i++)
        fan_in *= (double) shape [i];
    if (ndim == 1)
        fan_in = (double) shape [0];
    float bound = (float) (1.0 / sqrt (fan_in));
    for (size_t i = 0; i < n; i++)
        dst [i] = bound * (2.f * (float) (vdgx_splitmix64 (&rs->state) >> 40) / 16777216.f - 1.f);
    return 0;
}

wan21_vae_t *
wan21_vae_new_random (vdgx_backend_t *backend, int dim, int z_dim, uint64_t seed, char **err)
{
    if (!backend || dim < 2 || dim % 2 || z_dim < 1) {
        if (err)
            *err = vdgx_strdupf ("wan21 vae: bad random configuration dim %d z_dim %d", dim, z_dim);
        return NULL;
    }
    s_rand_src_t rs = { seed ^ 0x5641455F52414E44ull };
    return s_build (backend, dim, z_dim, s_rand_source, &rs, false, err);
}

uint64_t
wan21_vae_activation_bytes (int dim, int width, int height, size_t act_size)
{
    //  The widest full-resolution point: stage 3 (dim channels, 4 frames) where a causal conv
    //  holds its input with 2 cached frames (6 frames), its output (4) and the block input
    //  and residual (8), plus the cache slots of the other stages.
    uint64_t px = (uint64_t) width * (uint64_t) height;
    uint64_t full = (uint64_t) dim * px * act_size;
    return full * (6 + 4 + 8 + 2 * 7);
}

//  ---------------------------------------------------------------------------------------
//  Forward

typedef struct {
    wan21_vae_t *self;
    char **err;
} s_ctx_t;

static int
s_fail (wan21_vae_t *self, char **err, const char *what)
{
    if (err && !*err)
        *err = vdgx_strdupf ("wan21 vae: %s: %s", what, vdgx_backend_error (self->b));
    return -1;
}

static int
s_alloc5 (wan21_vae_t *self, vdgx_tensor_t *t, int64_t c, int64_t f, int64_t h, int64_t w)
{
    int64_t shape [5] = { 1, c, f, h, w };
    return vdgx_tensor_alloc (self->b, t, self->act, 5, shape);
}

//  Gives an owned tensor a new shape (same element count), keeping its ownership.
static void
s_reshape (vdgx_tensor_t *t, int ndim, const int64_t *shape)
{
    vdgx_tensor_t v;
    int rc = vdgx_tensor_reshape (&v, t, ndim, shape);
    (void) rc;
    v.owner = t->owner;
    *t = v;
}

static void
s_tap (wan21_vae_t *self, const char *name, const vdgx_tensor_t *t)
{
    if (self->tap)
        self->tap (self->tap_ctx, name, t);
}

//  Causal convolution (vdgx_cconv3d): a convolution with kt > 1 keeps its slot's last input
//  frames (CACHE_T = kt - 1 = 2) between chunks.
static int
s_cconv (wan21_vae_t *self, const s_conv_t *cv, const vdgx_tensor_t *x, vdgx_tensor_t *y,
         char **err)
{
    if (vdgx_cconv3d (self->b, y, x, cv->w, cv->b, cv->slot < 0? NULL: &self->cache [cv->slot]))
        return s_fail (self, err, "causal conv3d");
    return 0;
}

//  y = silu(RMS_norm(x)) (channels first over C).
static int
s_norm_silu (wan21_vae_t *self, const vdgx_tensor_t *gamma, const vdgx_tensor_t *x,
             vdgx_tensor_t *y, bool silu, char **err)
{
    int64_t c = x->shape [1], s = vdgx_tensor_numel (x) / c;
    int64_t s3 [3] = { 1, c, s };
    vdgx_tensor_t xv, yv, g;
    int64_t gs [1] = { c };
    if (vdgx_tensor_reshape (&xv, x, 3, s3) || vdgx_tensor_reshape (&g, gamma, 1, gs))
        return s_fail (self, err, "rms norm view");
    if (vdgx_tensor_alloc (self->b, y, self->act, x->ndim, x->shape))
        return s_fail (self, err, "alloc");
    vdgx_tensor_reshape (&yv, y, 3, s3);
    if (silu? vdgx_op_channel_rmsnorm_silu (self->b, &yv, &xv, &g, NULL)
            : vdgx_op_channel_rmsnorm (self->b, &yv, &xv, &g, NULL)) {
        s_fail (self, err, "rms norm / silu");
        vdgx_tensor_release (self->b, y);
        return -1;
    }
    return 0;
}

static int
s_res (wan21_vae_t *self, const s_res_t *r, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    vdgx_tensor_t sc = { 0 }, a = { 0 }, bt = { 0 }, c = { 0 };
    int rc = -1;
    if (r->has_sc && s_cconv (self, &r->sc, x, &sc, err))
        goto out;
    if (s_norm_silu (self, r->g1, x, &a, true, err) || s_cconv (self, &r->c1, &a, &bt, err))
        goto out;
    vdgx_tensor_release (self->b, &a);
    if (s_norm_silu (self, r->g2, &bt, &c, true, err))
        goto out;
    vdgx_tensor_release (self->b, &bt);
    if (s_cconv (self, &r->c2, &c, y, err))
        goto out;
    if (vdgx_op_add_scaled (self->b, y, y, r->has_sc? &sc: x, 1.f)) {
        s_fail (self, err, "residual add");
        vdgx_tensor_release (self->b, y);
        goto out;
    }
    rc = 0;
out:
    vdgx_tensor_release (self->b, &sc);
    vdgx_tensor_release (self->b, &a);
    vdgx_tensor_release (self->b, &bt);
    vdgx_tensor_release (self->b, &c);
    return rc;
}

//  Single-head attention over the h*w pixels of each frame (AttentionBlock).
static int
s_attn (wan21_vae_t *self, const s_attn_t *at, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    int64_t c = x->shape [1], f = x->shape [2], hw = x->shape [3] * x->shape [4], px = f * hw;
    vdgx_tensor_t n = { 0 }, tok = { 0 }, qkv = { 0 }, q = { 0 }, k = { 0 }, v = { 0 },
                  o = { 0 }, p = { 0 };
    int rc = -1;
    int64_t s_cp [2] = { c, px }, s_pc [2] = { px, c }, s_p3 [2] = { px, 3 * c };
    int64_t s_q [4] = { f, hw, 1, c };
    const int perm [2] = { 1, 0 };
    if (s_norm_silu (self, at->gamma, x, &n, false, err))
        goto out;
    s_reshape (&n, 2, s_cp);
    if (vdgx_tensor_alloc (self->b, &tok, self->act, 2, s_pc)
    ||  vdgx_op_permute (self->b, &tok, &n, perm)
    ||  vdgx_tensor_alloc (self->b, &qkv, self->act, 2, s_p3)
    ||  vdgx_op_linear (self->b, &qkv, &tok, &at->qkv, at->qkv_b)) {
        s_fail (self, err, "attention qkv");
        goto out;
    }
    vdgx_tensor_t *parts [3] = { &q, &k, &v };
    for (int i = 0; i < 3; i++)
        if (vdgx_tensor_alloc (self->b, parts [i], self->act, 2, s_pc)
        ||  vdgx_op_slice (self->b, parts [i], &qkv, 1, i * c, c)) {
            s_fail (self, err, "attention split");
            goto out;
        }
    for (int i = 0; i < 3; i++)
        s_reshape (parts [i], 4, s_q);
    if (vdgx_tensor_alloc (self->b, &o, self->act, 4, s_q)
    ||  vdgx_op_attention (self->b, &o, &q, &k, &v, NULL, NULL, (float) (1.0 / sqrt ((double) c)))) {
        s_fail (self, err, "attention");
        goto out;
    }
    s_reshape (&o, 2, s_pc);
    vdgx_tensor_release (self->b, &tok);
    if (vdgx_tensor_alloc (self->b, &p, self->act, 2, s_pc)
    ||  vdgx_op_linear (self->b, &p, &o, &at->proj, at->proj_b)
    ||  vdgx_tensor_alloc (self->b, y, self->act, 2, s_cp)
    ||  vdgx_op_permute (self->b, y, &p, perm)) {
        s_fail (self, err, "attention proj");
        vdgx_tensor_release (self->b, y);
        goto out;
    }
    s_reshape (y, 5, x->shape);
    if (vdgx_op_add_scaled (self->b, y, y, x, 1.f)) {
        s_fail (self, err, "attention residual");
        vdgx_tensor_release (self->b, y);
        goto out;
    }
    rc = 0;
out:
    vdgx_tensor_release (self->b, &n);
    vdgx_tensor_release (self->b, &tok);
    vdgx_tensor_release (self->b, &qkv);
    vdgx_tensor_release (self->b, &q);
    vdgx_tensor_release (self->b, &k);
    vdgx_tensor_release (self->b, &v);
    vdgx_tensor_release (self->b, &o);
    vdgx_tensor_release (self->b, &p);
    return rc;
}

//  [1,C,T,H,W] <-> [T,C,H,W] (a copy unless T == 1).
static int
s_swap_ct (wan21_vae_t *self, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    int64_t s [5] = { 1, x->shape [2], x->shape [1], x->shape [3], x->shape [4] };
    const int perm [5] = { 0, 2, 1, 3, 4 };
    if (vdgx_tensor_alloc (self->b, y, self->act, 5, s) || vdgx_op_permute (self->b, y, x, perm))
        return s_fail (self, err, "permute");
    return 0;
}

static int
s_up (wan21_vae_t *self, const s_up_t *u, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    vdgx_tensor_t tc = { 0 }, il = { 0 }, big = { 0 };
    const vdgx_tensor_t *cur = x;
    int rc = -1;
    int64_t c = x->shape [1], f = x->shape [2], h = x->shape [3], w = x->shape [4];
    if (u->temporal) {
        if (!self->seen [u->time_conv.slot])
            self->seen [u->time_conv.slot] = true;  //  first chunk: time_conv skipped ("Rep")
        else {
            if (s_cconv (self, &u->time_conv, x, &tc, err))
                goto out;
            //  [2, C, T, HW] -> [C, T, 2, HW]: channel half j becomes frame 2t + j.
            int64_t s4 [4] = { 2, c, f, h * w }, o4 [4] = { c, f, 2, h * w };
            const int perm [4] = { 1, 2, 0, 3 };
            s_reshape (&tc, 4, s4);
            if (vdgx_tensor_alloc (self->b, &il, self->act, 4, o4)
            ||  vdgx_op_permute (self->b, &il, &tc, perm)) {
                s_fail (self, err, "time upsample interleave");
                goto out;
            }
            f *= 2;
            int64_t s5 [5] = { 1, c, f, h, w };
            s_reshape (&il, 5, s5);
            cur = &il;
        }
    }
    //  Per frame: nearest-exact x2, then the 3x3 conv (dim -> dim/2). Both work frame by
    //  frame in place of [1, C, T, H, W]: the upsample on the C*T planes, the conv as a
    //  1x3x3 conv3d (no [C,T] <-> [T,C] copies around a batched conv2d).
    int64_t sp [4] = { 1, c * f, h, w }, sbp [4] = { 1, c * f, 2 * h, 2 * w },
            sw5 [5] = { c / 2, c, 1, 3, 3 };
    vdgx_tensor_t frv = vdgx_nn_view (cur, 4, sp), wv = vdgx_nn_view (u->conv.w, 5, sw5), bigv;
    int stride [3] = { 1, 1, 1 }, pad [4] = { 0, 0, 1, 1 };
    if (s_alloc5 (self, &big, c, f, 2 * h, 2 * w)
    ||  (bigv = vdgx_nn_view (&big, 4, sbp), vdgx_op_upsample2x (self->b, &bigv, &frv))
    ||  s_alloc5 (self, y, c / 2, f, 2 * h, 2 * w)
    ||  vdgx_op_conv3d (self->b, y, &big, &wv, u->conv.b, stride, pad)) {
        vdgx_tensor_release (self->b, y);
        s_fail (self, err, "upsample");
        goto out;
    }
    rc = 0;
out:
    vdgx_tensor_release (self->b, &tc);
    vdgx_tensor_release (self->b, &il);
    vdgx_tensor_release (self->b, &big);
    return rc;
}

//  One latent frame through the decoder; *y receives [1, 3, T, 8h, 8w].
static int
s_chunk (wan21_vae_t *self, int index, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    vdgx_tensor_t a = { 0 }, bt = { 0 };
    char name [64];
    if (s_cconv (self, &self->conv1, x, &a, err))
        return -1;
    snprintf (name, sizeof name, "chunk%d.conv1", index);
    s_tap (self, name, &a);
    for (int m = 0; m < 3; m++) {
        int rc = m == 1? s_attn (self, &self->attn, &a, &bt, err): s_res (self, m? &self->mid2: &self->mid0, &a, &bt, err);
        vdgx_tensor_release (self->b, &a);
        if (rc)
            return -1;
        a = bt;
        bt.data = NULL;
        snprintf (name, sizeof name, "chunk%d.middle.%d", index, m);
        s_tap (self, name, &a);
    }
    for (int k = 0; k < self->nups; k++) {
        const s_layer_t *l = &self->ups [k];
        int rc = l->is_up? s_up (self, &l->up, &a, &bt, err): s_res (self, &l->res, &a, &bt, err);
        vdgx_tensor_release (self->b, &a);
        if (rc)
            return -1;
        a = bt;
        bt.data = NULL;
        snprintf (name, sizeof name, "chunk%d.upsamples.%d", index, k);
        s_tap (self, name, &a);
    }
    int rc = s_norm_silu (self, self->head_g, &a, &bt, true, err);
    vdgx_tensor_release (self->b, &a);
    if (rc || s_cconv (self, &self->head, &bt, y, err)) {
        vdgx_tensor_release (self->b, &bt);
        return -1;
    }
    vdgx_tensor_release (self->b, &bt);
    snprintf (name, sizeof name, "chunk%d.head", index);
    s_tap (self, name, y);
    return 0;
}

static void
s_clear_cache (wan21_vae_t *self)
{
    for (int i = 0; i < S_MAX_SLOTS; i++) {
        vdgx_tensor_release (self->b, &self->cache [i]);
        self->seen [i] = false;
    }
}

int
wan21_vae_decode (wan21_vae_t *self, const float *latent, int64_t frames, int64_t height,
                  int64_t width, const wan21_vae_decode_opts_t *opts, wan21_vae_frame_fn *fn,
                  void *ctx, char **err)
{
    if (!self || !latent || !fn) {
        if (err)
            *err = vdgx_strdupf ("wan21 vae: decode needs a decoder, a latent and a frame callback");
        return -1;
    }
    if (frames < 1 || height < 1 || width < 1 || frames > 4096 || height > 4096 || width > 4096) {
        if (err)
            *err = vdgx_strdupf ("wan21 vae: bad latent size %lldx%lldx%lld", (long long) frames,
                              (long long) height, (long long) width);
        return -1;
    }
    s_clear_cache (self);
    int z = self->z_dim;
    size_t n = (size_t) z * (size_t) (frames * height * width), plane = (size_t) (frames * height * width);
    float *zn = (float *) malloc (n * sizeof (float));
    float *frame = (float *) malloc ((size_t) 3 * 64 * (size_t) (height * width) * sizeof (float));
    float *out = NULL;
    vdgx_tensor_t lat = { 0 }, post = { 0 }, xi = { 0 }, y = { 0 };
    int rc = -1;
    if (!zn || !frame) {
        *err = vdgx_strdupf ("wan21 vae: out of memory");
        goto done;
    }
    //  De-normalisation exactly as the official z / scale[1] + scale[0] with scale[1] = 1/std.
    for (int c = 0; c < z; c++) {
        float mean = z == 16? wan21_vae_mean [c]: 0.f, inv = z == 16? 1.f / wan21_vae_std [c]: 1.f;
        for (size_t i = 0; i < plane; i++)
            zn [c * plane + i] = latent [c * plane + i] / inv + mean;
    }
    if (s_alloc5 (self, &lat, z, frames, height, width) || vdgx_tensor_from_f32 (self->b, &lat, zn)) {
        s_fail (self, err, "latent upload");
        goto done;
    }
    if (s_cconv (self, &self->conv2, &lat, &post, err))
        goto done;
    vdgx_tensor_release (self->b, &lat);
    s_tap (self, "conv2", &post);
    int64_t oh = 8 * height, ow = 8 * width;
    out = (float *) malloc ((size_t) 3 * 4 * (size_t) (oh * ow) * sizeof (float));
    if (!out) {
        *err = vdgx_strdupf ("wan21 vae: out of memory");
        goto done;
    }
    int index = 0;
    for (int64_t i = 0; i < frames; i++) {
        if (opts && opts->cancel && atomic_load (opts->cancel)) {
            rc = -2;
            goto done;
        }
        if (s_alloc5 (self, &xi, z, 1, height, width) || vdgx_op_slice (self->b, &xi, &post, 2, i, 1)) {
            s_fail (self, err, "latent frame");
            goto done;
        }
        if (s_chunk (self, (int) i, &xi, &y, err))
            goto done;
        vdgx_tensor_release (self->b, &xi);
        int64_t tf = y.shape [2];
        if (y.shape [1] != 3 || y.shape [3] != oh || y.shape [4] != ow || tf > 4) {
            *err = vdgx_strdupf ("wan21 vae: internal error: chunk output has the wrong shape");
            goto done;
        }
        if ((!opts || !opts->raw) && vdgx_op_affine_clamp (self->b, &y, &y, 1.f, 0.f, -1.f, 1.f)) {
            s_fail (self, err, "clamp");
            goto done;
        }
        if (vdgx_tensor_to_f32 (self->b, &y, out)) {
            s_fail (self, err, "download");
            goto done;
        }
        vdgx_tensor_release (self->b, &y);
        size_t hw = (size_t) (oh * ow);
        for (int64_t t = 0; t < tf; t++) {
            for (int c = 0; c < 3; c++)
                memcpy (frame + c * hw, out + ((size_t) c * (size_t) tf + (size_t) t) * hw,
                        hw * sizeof (float));
            if (fn (ctx, index++, frame, (int) ow, (int) oh)) {
                if (err && !*err)
                    *err = vdgx_strdupf ("wan21 vae: the frame consumer stopped the decode");
                goto done;
            }
        }
    }
    rc = 0;
done:
    vdgx_tensor_release (self->b, &lat);
    vdgx_tensor_release (self->b, &post);
    vdgx_tensor_release (self->b, &xi);
    vdgx_tensor_release (self->b, &y);
    s_clear_cache (self);
    free (zn);
    free (frame);
    free (out);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Encoder

bool
wan21_vae_has_encoder (wan21_vae_t *self)
{
    return self && self->has_encoder;
}

//  One downsampler: per frame ZeroPad2d (0,1,0,1) + 3x3 stride-2 conv; downsample3d then
//  runs its stride-2 time conv over [last frame of the previous chunk, this chunk] (the
//  first chunk passes and only leaves its last frame).
static int
s_down (wan21_vae_t *self, const s_elayer_t *l, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    vdgx_tensor_t fr = { 0 }, cv = { 0 }, sp = { 0 }, cat = { 0 }, last = { 0 };
    int rc = -1;
    int64_t c = x->shape [1], f = x->shape [2], h = x->shape [3], w = x->shape [4];
    int64_t h2 = h / 2, w2 = w / 2;
    int64_t sf [4] = { f, c, h, w }, so [4] = { f, c, h2, w2 };
    if (f == 1)
        fr = *x, fr.owner = NULL;
    else
    if (s_swap_ct (self, x, &fr, err))
        goto out;
    vdgx_tensor_t frv;
    vdgx_tensor_reshape (&frv, &fr, 4, sf);
    int stride [2] = { 2, 2 }, pad [4] = { 0, 1, 0, 1 };
    if (vdgx_tensor_alloc (self->b, &cv, self->act, 4, so)
    ||  vdgx_op_conv2d (self->b, &cv, &frv, l->conv.w, l->conv.b, stride, pad)) {
        s_fail (self, err, "downsample");
        goto out;
    }
    int64_t s5 [5] = { 1, f, c, h2, w2 };
    s_reshape (&cv, 5, s5);
    if (f == 1) {
        int64_t o5 [5] = { 1, c, 1, h2, w2 };
        s_reshape (&cv, 5, o5);
        sp = cv;
        cv.data = NULL;
    }
    else
    if (s_swap_ct (self, &cv, &sp, err))
        goto out;
    if (!l->temporal) {
        *y = sp;
        sp.data = NULL;
        rc = 0;
        goto out;
    }
    vdgx_tensor_t *cache = &self->cache [l->slot];
    if (s_alloc5 (self, &last, c, 1, h2, w2) || vdgx_op_slice (self->b, &last, &sp, 2, f - 1, 1)) {
        s_fail (self, err, "downsample cache");
        goto out;
    }
    if (!cache->data) {
        *y = sp;
        sp.data = NULL;
    }
    else {
        int stride3 [3] = { 2, 1, 1 }, pad3 [4] = { 0, 0, 0, 0 };
        int64_t tf = (1 + f - 3) / 2 + 1;
        if (s_alloc5 (self, &cat, c, 1 + f, h2, w2) || vdgx_op_concat (self->b, &cat, cache, &sp, 2)
        ||  s_alloc5 (self, y, c, tf, h2, w2)
        ||  vdgx_op_conv3d (self->b, y, &cat, l->time_conv.w, l->time_conv.b, stride3, pad3)) {
            s_fail (self, err, "downsample time conv");
            vdgx_tensor_release (self->b, y);
            goto out;
        }
    }
    vdgx_tensor_release (self->b, cache);
    *cache = last;
    last.data = NULL;
    rc = 0;
out:
    vdgx_tensor_release (self->b, &fr);
    vdgx_tensor_release (self->b, &cv);
    vdgx_tensor_release (self->b, &sp);
    vdgx_tensor_release (self->b, &cat);
    vdgx_tensor_release (self->b, &last);
    return rc;
}

//  One chunk (1 frame, then 4) through the encoder; *y receives [1, 2 z, 1, h/8, w/8].
static int
s_enc_chunk (wan21_vae_t *self, int index, const vdgx_tensor_t *x, vdgx_tensor_t *y, char **err)
{
    vdgx_tensor_t a = { 0 }, bt = { 0 };
    char name [64];
    if (s_cconv (self, &self->econv1, x, &a, err))
        return -1;
    snprintf (name, sizeof name, "enc.chunk%d.conv1", index);
    s_tap (self, name, &a);
    for (int k = 0; k < S_ENC_LAYERS; k++) {
        const s_elayer_t *l = &self->enc [k];
        int rc = l->is_down? s_down (self, l, &a, &bt, err): s_res (self, &l->res, &a, &bt, err);
        vdgx_tensor_release (self->b, &a);
        if (rc)
            return -1;
        a = bt;
        bt.data = NULL;
        snprintf (name, sizeof name, "enc.chunk%d.downsamples.%d", index, k);
        s_tap (self, name, &a);
    }
    for (int m = 0; m < 3; m++) {
        int rc = m == 1? s_attn (self, &self->eattn, &a, &bt, err)
                       : s_res (self, m? &self->emid2: &self->emid0, &a, &bt, err);
        vdgx_tensor_release (self->b, &a);
        if (rc)
            return -1;
        a = bt;
        bt.data = NULL;
        snprintf (name, sizeof name, "enc.chunk%d.middle.%d", index, m);
        s_tap (self, name, &a);
    }
    int rc = s_norm_silu (self, self->ehead_g, &a, &bt, true, err);
    vdgx_tensor_release (self->b, &a);
    if (rc || s_cconv (self, &self->ehead, &bt, y, err)) {
        vdgx_tensor_release (self->b, &bt);
        return -1;
    }
    vdgx_tensor_release (self->b, &bt);
    snprintf (name, sizeof name, "enc.chunk%d.head", index);
    s_tap (self, name, y);
    return 0;
}

int
wan21_vae_encode (wan21_vae_t *self, const float *video, int64_t frames, int64_t height,
                  int64_t width, float *latent, char **err)
{
    if (!self || !video || !latent) {
        vdgx_set_error (err, "wan21 vae: encode needs a VAE, a video and an output");
        return -1;
    }
    if (!self->has_encoder) {
        vdgx_set_error (err, "wan21 vae: this checkpoint has no encoder (encoder.* tensors)");
        return -1;
    }
    if (frames < 1 || (frames - 1) % 4 || height < 8 || width < 8 || height % 8 || width % 8
    ||  frames > 4097 || height > 8192 || width > 8192) {
        vdgx_set_error (err, "wan21 vae: cannot encode %lld frames of %lldx%lld (frames must be "
                        "1 + 4k, sides multiples of 8)", (long long) frames, (long long) width,
                        (long long) height);
        return -1;
    }
    s_clear_cache (self);
    int z = self->z_dim, z2 = 2 * z;
    int64_t T = 1 + (frames - 1) / 4, lh = height / 8, lw = width / 8, lp = lh * lw;
    float *enc = malloc ((size_t) z2 * (size_t) (T * lp) * sizeof (float));
    float *chunk = malloc ((size_t) z2 * (size_t) lp * sizeof (float));
    vdgx_tensor_t vid = { 0 }, xi = { 0 }, y = { 0 }, h = { 0 }, q = { 0 };
    int rc = -1;
    if (!enc || !chunk) {
        vdgx_set_error (err, "wan21 vae: out of memory");
        goto done;
    }
    if (s_alloc5 (self, &vid, 3, frames, height, width) || vdgx_tensor_from_f32 (self->b, &vid, video)) {
        s_fail (self, err, "video upload");
        goto done;
    }
    for (int64_t i = 0; i < T; i++) {
        int64_t first = i? 1 + 4 * (i - 1): 0, nf = i? 4: 1;
        if (s_alloc5 (self, &xi, 3, nf, height, width) || vdgx_op_slice (self->b, &xi, &vid, 2, first, nf)) {
            s_fail (self, err, "video chunk");
            goto done;
        }
        if (s_enc_chunk (self, (int) i, &xi, &y, err))
            goto done;
        vdgx_tensor_release (self->b, &xi);
        if (y.shape [1] != z2 || y.shape [2] != 1 || y.shape [3] != lh || y.shape [4] != lw) {
            vdgx_set_error (err, "wan21 vae: internal error: encoder chunk has the wrong shape");
            goto done;
        }
        if (vdgx_tensor_to_f32 (self->b, &y, chunk)) {
            s_fail (self, err, "download");
            goto done;
        }
        vdgx_tensor_release (self->b, &y);
        for (int c = 0; c < z2; c++)
            memcpy (enc + ((size_t) c * (size_t) T + (size_t) i) * (size_t) lp,
                    chunk + (size_t) c * (size_t) lp, (size_t) lp * sizeof (float));
    }
    vdgx_tensor_release (self->b, &vid);
    if (s_alloc5 (self, &h, z2, T, lh, lw) || vdgx_tensor_from_f32 (self->b, &h, enc)) {
        s_fail (self, err, "upload");
        goto done;
    }
    if (s_cconv (self, &self->quant, &h, &q, err))
        goto done;
    s_tap (self, "enc.conv1", &q);
    if (vdgx_tensor_to_f32 (self->b, &q, enc)) {
        s_fail (self, err, "download");
        goto done;
    }
    //  mu = the first z channels, normalised as (mu - mean) * (1 / std).
    size_t plane = (size_t) (T * lp);
    for (int c = 0; c < z; c++) {
        float mean = z == 16? wan21_vae_mean [c]: 0.f, inv = z == 16? 1.f / wan21_vae_std [c]: 1.f;
        for (size_t i = 0; i < plane; i++)
            latent [c * plane + i] = (enc [c * plane + i] - mean) * inv;
    }
    rc = 0;
done:
    vdgx_tensor_release (self->b, &vid);
    vdgx_tensor_release (self->b, &xi);
    vdgx_tensor_release (self->b, &y);
    vdgx_tensor_release (self->b, &h);
    vdgx_tensor_release (self->b, &q);
    s_clear_cache (self);
    free (enc);
    free (chunk);
    return rc;
}
