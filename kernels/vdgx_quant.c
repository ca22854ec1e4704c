/*  vdgx_quant.c - quantized weight formats (definitions in vdgx_quant.h): quantize from f32,
    dequantize rows, wrap FP8 checkpoints. Scales are chosen so the largest magnitude in a
    block (or tensor / channel) maps onto the largest code, as the reference recipes do.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const float vdgx_e2m1_values [16] = {
    0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f
};

//  bitsandbytes NF4: quantiles of N(0,1) normalised to [-1, 1], with an exact zero.
const float vdgx_nf4_values [16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f
};

uint8_t
vdgx_f32_to_e2m1 (float f)
{
    uint8_t sign = signbit (f)? 8: 0;
    float a = fabsf (f);
    uint8_t c;
    //  Midpoints between neighbours; a tie goes to the even code (RNE).
    if (isnan (a)) c = 7;
    else if (a <= 0.25f) c = 0;
    else if (a < 0.75f) c = 1;
    else if (a <= 1.25f) c = 2;
    else if (a < 1.75f) c = 3;
    else if (a <= 2.5f) c = 4;
    else if (a < 3.5f) c = 5;
    else if (a <= 5.0f) c = 6;
    else c = 7;
    return sign | c;
}

float
vdgx_e8m0_to_f32 (uint8_t e)
{
    return e == 255? NAN: ldexpf (1.0f, (int) e - 127);
}

static uint8_t
s_nf4_code (float v)
{
    //  nearest table entry; the table is sorted, so compare against midpoints
    uint8_t c = 0;
    for (int i = 1; i < 16; i++)
        if (v > 0.5f * (vdgx_nf4_values [i - 1] + vdgx_nf4_values [i]))
            c = (uint8_t) i;
    return c;
}

static int
s_block (vdgx_wfmt_t fmt)
{
    return fmt == VDGX_WFMT_NVFP4? 16: fmt == VDGX_WFMT_MXFP4? 32: fmt == VDGX_WFMT_NF4? 64: 1;
}

static float
s_amax (const float *x, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf (x [i]);
        if (a > m)
            m = a;
    }
    return m;
}

//  Quantizes rows [r0, r0 + S_QROWS) of src into w (scales of whole-tensor formats are set).
#define S_QROWS 16

typedef struct {
    vdgx_weight_t *w;
    const float *src;
    bool per_channel;
} s_quant_job_t;

static void
s_quant_rows (void *ctx, int64_t t)
{
    const s_quant_job_t *j = ctx;
    vdgx_weight_t *w = j->w;
    int64_t k = w->k, r0 = t * S_QROWS, r1 = r0 + S_QROWS < w->n? r0 + S_QROWS: w->n;
    size_t off = (size_t) (r0 * k), cnt = (size_t) ((r1 - r0) * k);
    const float *src = j->src + off;
    uint8_t *q = w->data;
    switch (w->fmt) {
        case VDGX_WFMT_F32:
            memcpy ((float *) w->data + off, src, cnt * 4);
            break;
        case VDGX_WFMT_BF16:
            vdgx_convert_from_f32 (q + off * 2, VDGX_DTYPE_BF16, src, cnt);
            break;
        case VDGX_WFMT_F16:
            vdgx_convert_from_f32 (q + off * 2, VDGX_DTYPE_F16, src, cnt);
            break;
        case VDGX_WFMT_FP8_E4M3: {
            float *sc = w->scales;
            for (int64_t r = r0; r < r1; r++) {
                const float *x = j->src + r * k;
                if (j->per_channel) {
                    float amax = s_amax (x, k);
                    sc [r] = amax > 0? amax / 448.0f: 1.0f;
                }
                float inv = 1.0f / sc [j->per_channel? r: 0];
                for (int64_t i = 0; i < k; i++)
                    q [r * k + i] = vdgx_f32_to_e4m3 (x [i] * inv);
            }
            break;
        }
        case VDGX_WFMT_NVFP4: {
            uint8_t *sc = w->scales;
            for (int64_t bidx = r0 * (k / 16); bidx < r1 * (k / 16); bidx++) {
                const float *x = j->src + bidx * 16;
                sc [bidx] = vdgx_f32_to_e4m3 (s_amax (x, 16) / 6.0f / w->global_scale);
                float d = vdgx_e4m3_to_f32 (sc [bidx]) * w->global_scale;
                float inv = d > 0? 1.0f / d: 0.0f;
                for (int i = 0; i < 16; i += 2)
                    q [bidx * 8 + i / 2] = (uint8_t) (vdgx_f32_to_e2m1 (x [i] * inv)
                                                      | vdgx_f32_to_e2m1 (x [i + 1] * inv) << 4);
            }
            break;
        }
        case VDGX_WFMT_MXFP4: {
            uint8_t *sc = w->scales;
            for (int64_t bidx = r0 * (k / 32); bidx < r1 * (k / 32); bidx++) {
                const float *x = j->src + bidx * 32;
                float amax = s_amax (x, 32);
                //  OCP MX: shared exponent = floor(log2(amax)) - emax(E2M1) (= 2)
                int e = amax > 0? ilogbf (amax) - 2: 0;
                if (e < -127) e = -127;
                if (e > 127) e = 127;
                sc [bidx] = (uint8_t) (e + 127);
                //  a power of two: multiplying by its inverse is exact
                float inv = ldexpf (1.0f, -e);
                for (int i = 0; i < 32; i += 2)
                    q [bidx * 16 + i / 2] = (uint8_t) (vdgx_f32_to_e2m1 (x [i] * inv)
                                                       | vdgx_f32_to_e2m1 (x [i + 1] * inv) << 4);
            }
            break;
        }
        case VDGX_WFMT_NF4: {
            float *sc = w->scales;
            for (int64_t bidx = r0 * (k / 64); bidx < r1 * (k / 64); bidx++) {
                const float *x = j->src + bidx * 64;
                float amax = s_amax (x, 64);
                sc [bidx] = amax;
                float inv = amax > 0? 1.0f / amax: 0.0f;
                for (int i = 0; i < 64; i += 2)
                    q [bidx * 32 + i / 2] = (uint8_t) (s_nf4_code (x [i] * inv) | s_nf4_code (x [i + 1] * inv) << 4);
            }
            break;
        }
        default:
            break;
    }
}

int
vdgx_weight_quantize (vdgx_weight_t *w, vdgx_wfmt_t fmt, const float *src, int64_t n,
                      int64_t k, bool per_channel, char **err)
{
    assert (w && src);
    memset (w, 0, sizeof (*w));
    if ((unsigned) fmt >= VDGX_WFMT_COUNT || n <= 0 || k <= 0) {
        if (err)
            *err = vdgx_kstrdupf ("quantize: bad format or shape [%lld,%lld]", (long long) n, (long long) k);
        return -1;
    }
    int blk = s_block (fmt);
    if (k % blk) {
        if (err)
            *err = vdgx_kstrdupf ("quantize: %s needs k (%lld) to be a multiple of %d",
                                  vdgx_wfmt_name (fmt), (long long) k, blk);
        return -1;
    }
    for (int64_t i = 0; i < n * k; i++)
        if (!isfinite (src [i])) {
            if (err)
                *err = vdgx_kstrdupf ("quantize: element %lld is not finite", (long long) i);
            return -1;
        }
    w->fmt = fmt;
    w->n = n;
    w->k = k;
    w->global_scale = 1.0f;
    w->device = VDGX_DEVICE_CPU;
    size_t nk = (size_t) (n * k);
    int64_t blocks = blk > 1? n * (k / blk): 0;
    switch (fmt) {
        case VDGX_WFMT_F32:  w->data = malloc (nk * 4); break;
        case VDGX_WFMT_BF16:
        case VDGX_WFMT_F16:  w->data = malloc (nk * 2); break;
        case VDGX_WFMT_FP8_E4M3:
            w->data = malloc (nk);
            w->scale_count = per_channel? n: 1;
            w->scales = malloc ((size_t) w->scale_count * 4);
            break;
        case VDGX_WFMT_NVFP4:
        case VDGX_WFMT_MXFP4:
            w->data = calloc (nk / 2, 1);
            w->scale_count = blocks;
            w->scales = malloc ((size_t) blocks);
            break;
        case VDGX_WFMT_NF4:
            w->data = calloc (nk / 2, 1);
            w->scale_count = blocks;
            w->scales = malloc ((size_t) blocks * 4);
            break;
        default: break;
    }
    if (!w->data || (w->scale_count && !w->scales)) {
        vdgx_weight_host_free (w);
        if (err)
            *err = vdgx_kstrdupf ("quantize: out of memory");
        return -1;
    }
    //  Tensor-wide scales first; then rows are independent and split over threads.
    if (fmt == VDGX_WFMT_FP8_E4M3 && !per_channel) {
        float amax = s_amax (src, (int64_t) nk);
        ((float *) w->scales) [0] = amax > 0? amax / 448.0f: 1.0f;
    }
    if (fmt == VDGX_WFMT_NVFP4) {
        float amax = s_amax (src, (int64_t) nk);
        w->global_scale = amax > 0? amax / (448.0f * 6.0f): 1.0f;
    }
    s_quant_job_t job = { w, src, per_channel };
    int64_t tasks = (n + S_QROWS - 1) / S_QROWS;
    vdgx_cpu_pool_t *pool = n * k >= (1 << 20) && tasks > 1? vdgx_cpu_pool_new (0): NULL;
    vdgx_cpu_pool_run (pool, tasks, s_quant_rows, &job);
    vdgx_cpu_pool_destroy (&pool);
    return 0;
}

int
vdgx_weight_from_fp8 (vdgx_weight_t *w, const uint8_t *e4m3, const float *scales,
                      int64_t scale_count, int64_t n, int64_t k, char **err)
{
    assert (w && e4m3 && scales);
    memset (w, 0, sizeof (*w));
    if (n <= 0 || k <= 0 || (scale_count != 1 && scale_count != n)) {
        if (err)
            *err = vdgx_kstrdupf ("fp8 weight [%lld,%lld]: %lld scales (expected 1 or %lld)",
                                  (long long) n, (long long) k, (long long) scale_count, (long long) n);
        return -1;
    }
    for (int64_t i = 0; i < scale_count; i++)
        if (!isfinite (scales [i])) {
            if (err)
                *err = vdgx_kstrdupf ("fp8 weight: scale %lld is not finite", (long long) i);
            return -1;
        }
    w->fmt = VDGX_WFMT_FP8_E4M3;
    w->n = n;
    w->k = k;
    w->global_scale = 1.0f;
    w->device = VDGX_DEVICE_CPU;
    w->scale_count = scale_count;
    w->data = malloc ((size_t) (n * k));
    w->scales = malloc ((size_t) scale_count * 4);
    if (!w->data || !w->scales) {
        vdgx_weight_host_free (w);
        if (err)
            *err = vdgx_kstrdupf ("fp8 weight: out of memory");
        return -1;
    }
    memcpy (w->data, e4m3, (size_t) (n * k));
    memcpy (w->scales, scales, (size_t) scale_count * 4);
    return 0;
}

//  Offset of block scale (r, c) in the cuBLAS 128x4 tiled layout.
static int64_t
s_tiled_offset (int64_t r, int64_t c, int64_t scale_cols)
{
    int64_t tile = (r / 128) * (scale_cols / 4) + c / 4;
    return tile * 512 + (r % 32) * 16 + ((r % 128) / 32) * 4 + c % 4;
}

static uint8_t
s_swap_nibbles (uint8_t b)
{
    return (uint8_t) ((b >> 4) | (b << 4));
}

int
vdgx_weight_from_nvfp4_tiled (vdgx_weight_t *w, const uint8_t *packed, bool hi_first,
                              const uint8_t *tiled_scales, int64_t scale_rows, int64_t scale_cols,
                              float global_scale, int64_t n, int64_t k, char **err)
{
    assert (w && packed && tiled_scales);
    memset (w, 0, sizeof (*w));
    if (n <= 0 || k <= 0 || k % 16 || scale_rows < n || scale_cols < k / 16
    ||  scale_rows % 128 || scale_cols % 4) {
        if (err)
            *err = vdgx_kstrdupf ("nvfp4 weight [%lld,%lld]: block scales [%lld,%lld] are not its "
                                  "128x4-tiled layout (expected [%lld,%lld])", (long long) n,
                                  (long long) k, (long long) scale_rows, (long long) scale_cols,
                                  (long long) ((n + 127) / 128 * 128),
                                  (long long) ((k / 16 + 3) / 4 * 4));
        return -1;
    }
    if (!isfinite (global_scale)) {
        if (err)
            *err = vdgx_kstrdupf ("nvfp4 weight: the tensor scale is not finite");
        return -1;
    }
    w->fmt = VDGX_WFMT_NVFP4;
    w->n = n;
    w->k = k;
    w->global_scale = global_scale;
    w->device = VDGX_DEVICE_CPU;
    w->scale_count = n * (k / 16);
    w->data = malloc ((size_t) (n * k / 2));
    w->scales = malloc ((size_t) w->scale_count);
    if (!w->data || !w->scales) {
        vdgx_weight_host_free (w);
        if (err)
            *err = vdgx_kstrdupf ("nvfp4 weight: out of memory");
        return -1;
    }
    uint8_t *d = w->data, *sc = w->scales;
    for (int64_t i = 0; i < n * k / 2; i++)
        d [i] = hi_first? s_swap_nibbles (packed [i]): packed [i];
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < k / 16; c++)
            sc [r * (k / 16) + c] = tiled_scales [s_tiled_offset (r, c, scale_cols)];
    return 0;
}

void
vdgx_weight_to_nvfp4_tiled (const vdgx_weight_t *w, bool hi_first, uint8_t *dst_packed,
                            uint8_t *dst_scales, int64_t scale_rows, int64_t scale_cols)
{
    assert (w && w->fmt == VDGX_WFMT_NVFP4 && dst_packed && dst_scales);
    assert (scale_rows >= w->n && scale_rows % 128 == 0 && scale_cols >= w->k / 16 && scale_cols % 4 == 0);
    const uint8_t *d = w->data, *sc = w->scales;
    for (int64_t i = 0; i < w->n * w->k / 2; i++)
        dst_packed [i] = hi_first? s_swap_nibbles (d [i]): d [i];
    memset (dst_scales, 0, (size_t) (scale_rows * scale_cols));
    for (int64_t r = 0; r < w->n; r++)
        for (int64_t c = 0; c < w->k / 16; c++)
            dst_scales [s_tiled_offset (r, c, scale_cols)] = sc [r * (w->k / 16) + c];
}

void
vdgx_weight_dequant_row (const vdgx_weight_t *w, int64_t r, float *dst)
{
    assert (w && r >= 0 && r < w->n);
    int64_t k = w->k;
    const uint8_t *q = w->data;
    switch (w->fmt) {
        case VDGX_WFMT_F32:
            memcpy (dst, (const float *) w->data + r * k, (size_t) k * 4);
            break;
        case VDGX_WFMT_BF16:
            vdgx_convert_to_f32 (dst, q + r * k * 2, VDGX_DTYPE_BF16, (size_t) k);
            break;
        case VDGX_WFMT_F16:
            vdgx_convert_to_f32 (dst, q + r * k * 2, VDGX_DTYPE_F16, (size_t) k);
            break;
        case VDGX_WFMT_FP8_E4M3: {
            const float *tab = vdgx_e4m3_table ();
            float s = ((const float *) w->scales) [w->scale_count == 1? 0: r];
            const uint8_t *p = q + r * k;
            for (int64_t i = 0; i < k; i++)
                dst [i] = tab [p [i]] * s;
            break;
        }
        case VDGX_WFMT_NVFP4: {
            const uint8_t *sc = (const uint8_t *) w->scales + r * (k / 16);
            const uint8_t *p = q + r * k / 2;
            for (int64_t bidx = 0; bidx < k / 16; bidx++) {
                float d = vdgx_e4m3_to_f32 (sc [bidx]) * w->global_scale;
                for (int i = 0; i < 8; i++) {
                    uint8_t byte = p [bidx * 8 + i];
                    dst [bidx * 16 + 2 * i] = vdgx_e2m1_values [byte & 15] * d;
                    dst [bidx * 16 + 2 * i + 1] = vdgx_e2m1_values [byte >> 4] * d;
                }
            }
            break;
        }
        case VDGX_WFMT_MXFP4: {
            const uint8_t *sc = (const uint8_t *) w->scales + r * (k / 32);
            const uint8_t *p = q + r * k / 2;
            for (int64_t bidx = 0; bidx < k / 32; bidx++) {
                float d = vdgx_e8m0_to_f32 (sc [bidx]);
                for (int i = 0; i < 16; i++) {
                    uint8_t byte = p [bidx * 16 + i];
                    dst [bidx * 32 + 2 * i] = vdgx_e2m1_values [byte & 15] * d;
                    dst [bidx * 32 + 2 * i + 1] = vdgx_e2m1_values [byte >> 4] * d;
                }
            }
            break;
        }
        case VDGX_WFMT_NF4: {
            const float *sc = (const float *) w->scales + r * (k / 64);
            const uint8_t *p = q + r * k / 2;
            for (int64_t bidx = 0; bidx < k / 64; bidx++) {
                float d = sc [bidx];
                for (int i = 0; i < 32; i++) {
                    uint8_t byte = p [bidx * 32 + i];
                    dst [bidx * 64 + 2 * i] = vdgx_nf4_values [byte & 15] * d;
                    dst [bidx * 64 + 2 * i + 1] = vdgx_nf4_values [byte >> 4] * d;
                }
            }
            break;
        }
        default:
            memset (dst, 0, (size_t) k * 4);
    }
}

void
vdgx_weight_dequant (const vdgx_weight_t *w, float *dst)
{
    for (int64_t r = 0; r < w->n; r++)
        vdgx_weight_dequant_row (w, r, dst + r * w->k);
}

void
vdgx_weight_host_free (vdgx_weight_t *w)
{
    if (!w)
        return;
    free (w->data);
    free (w->scales);
    w->data = w->scales = NULL;
    w->scale_count = 0;
}

int
vdgx_weight_from_ckpt (vdgx_weight_t *w, vdgx_ckpt_t *ckpt, const char *name, vdgx_wfmt_t fmt,
                       bool per_channel, char **err)
{
    assert (w && ckpt && name);
    memset (w, 0, sizeof (*w));
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (ckpt, name);
    if (!t) {
        if (err)
            *err = vdgx_kstrdupf ("checkpoint has no tensor \"%s\"", name);
        return -1;
    }
    if (t->ndim < 2 || t->shape [0] <= 0) {
        if (err)
            *err = vdgx_kstrdupf ("\"%s\": a weight needs 2 or more dims", name);
        return -1;
    }
    int64_t n = t->shape [0], k = 1;
    for (int i = 1; i < t->ndim; i++)
        k *= t->shape [i];
    if (k <= 0) {
        if (err)
            *err = vdgx_kstrdupf ("\"%s\": empty weight", name);
        return -1;
    }
    float *scales = NULL;
    int64_t scale_count = 1;
    if (t->dtype == VDGX_DTYPE_F8_E4M3) {
        //  "<prefix>.weight" -> "<prefix>.scale_weight" or "<prefix>.weight_scale"
        size_t len = strlen (name);
        size_t plen = len > 7 && strcmp (name + len - 7, ".weight") == 0? len - 7: len;
        char *sname = malloc (plen + 16);
        if (!sname)
            return -1;
        const vdgx_ckpt_tensor_t *st = NULL;
        static const char *suffix [] = { ".scale_weight", ".weight_scale" };
        for (int i = 0; i < 2 && !st; i++) {
            memcpy (sname, name, plen);
            strcpy (sname + plen, suffix [i]);
            st = vdgx_ckpt_find (ckpt, sname);
        }
        free (sname);
        int64_t sn = 1;
        if (st)
            for (int i = 0; i < st->ndim; i++)
                sn *= st->shape [i];
        if (st && sn != 1 && sn != n) {
            if (err)
                *err = vdgx_kstrdupf ("\"%s\": its scale has %lld elements (expected 1 or %lld)", name,
                                      (long long) sn, (long long) n);
            return -1;
        }
        scale_count = st? sn: 1;
        scales = malloc ((size_t) scale_count * 4);
        if (!scales)
            return -1;
        if (!st)
            scales [0] = 1.0f;
        else if (vdgx_ckpt_read_f32 (st, scales, err)) {
            free (scales);
            return -1;
        }
        if (fmt == VDGX_WFMT_FP8_E4M3) {
            int rc = vdgx_weight_from_fp8 (w, t->data, scales, scale_count, n, k, err);
            free (scales);
            return rc;
        }
    }
    float *f = malloc ((size_t) (n * k) * sizeof (float));
    if (!f) {
        free (scales);
        if (err)
            *err = vdgx_kstrdupf ("\"%s\": out of memory", name);
        return -1;
    }
    if (vdgx_ckpt_read_f32 (t, f, err)) {
        free (f);
        free (scales);
        return -1;
    }
    if (scales)
        for (int64_t r = 0; r < n; r++)
            for (int64_t i = 0; i < k; i++)
                f [r * k + i] *= scales [scale_count == 1? 0: r];
    free (scales);
    int rc = vdgx_weight_quantize (w, fmt, f, n, k, per_channel, err);
    free (f);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  Selftest

//  Inverse of the standard normal CDF by Newton's method on 0.5 * erfc(-x / sqrt(2)).
static double
s_norm_ppf (double p)
{
    double x = 0;
    for (int it = 0; it < 100; it++) {
        double cdf = 0.5 * erfc (-x / sqrt (2.0));
        double pdf = exp (-0.5 * x * x) / sqrt (2.0 * M_PI);
        double step = (cdf - p) / pdf;
        x -= step;
        if (fabs (step) < 1e-15)
            break;
    }
    return x;
}

static uint32_t s_rng = 1;
static float
s_randn (void)
{
    //  Box-Muller on a small LCG: deterministic, normal-ish weights like real layers
    s_rng = s_rng * 1664525u + 1013904223u;
    float u1 = ((s_rng >> 8) + 1) / 16777217.0f;
    s_rng = s_rng * 1664525u + 1013904223u;
    float u2 = (s_rng >> 8) / 16777216.0f;
    return sqrtf (-2.0f * logf (u1)) * cosf (6.2831853f * u2);
}

void
vdgx_quant_test (bool verbose)
{
    printf (" * vdgx_quant: ");
    //  E2M1 table value by value, and every code round-trips
    static const float e2m1 [8] = { 0, 0.5f, 1, 1.5f, 2, 3, 4, 6 };
    for (int i = 0; i < 8; i++) {
        assert (vdgx_e2m1_values [i] == e2m1 [i] && vdgx_e2m1_values [i + 8] == -e2m1 [i]);
        assert (vdgx_f32_to_e2m1 (e2m1 [i]) == i && vdgx_f32_to_e2m1 (-e2m1 [i]) == 8 + i);
    }
    //  NVFP4 in the cuBLAS tiled layout: element 2j in the high nibble, scale (33, 5) of an
    //  8-column scale matrix at 512 + 1*16 + 1*4 + 1; a [200, 96] weight round-trips exactly.
    {
        assert (s_tiled_offset (33, 5, 8) == 533 && s_tiled_offset (130, 0, 8) == 2 * 512 + 2 * 16);
        float row [16] = { 6.0f };
        vdgx_weight_t w1, back;
        assert (vdgx_weight_quantize (&w1, VDGX_WFMT_NVFP4, row, 1, 16, false, NULL) == 0);
        uint8_t *packed = malloc (64), *tiled = malloc (512);  //  8 used; GCC cannot bound the copy
        vdgx_weight_to_nvfp4_tiled (&w1, true, packed, tiled, 128, 4);
        assert (packed [0] == 0x70 && ((uint8_t *) w1.data) [0] == 0x07);
        assert (tiled [0] == ((uint8_t *) w1.scales) [0] && tiled [1] == 0);
        free (packed);
        free (tiled);
        vdgx_weight_host_free (&w1);
        int64_t n = 200, k = 96, rows = 256, cols = 8;
        float *x = malloc ((size_t) (n * k) * sizeof (float));
        uint32_t st = 12345;
        for (int64_t i2 = 0; i2 < n * k; i2++) {
            st = st * 1664525u + 1013904223u;
            x [i2] = ((float) (st >> 8) / 16777216.0f - 0.5f) * (1.0f + (float) (i2 % 7));
        }
        vdgx_weight_t q;
        assert (vdgx_weight_quantize (&q, VDGX_WFMT_NVFP4, x, n, k, false, NULL) == 0);
        uint8_t *pk = malloc ((size_t) (n * k / 2)), *ts = malloc ((size_t) (rows * cols));
        vdgx_weight_to_nvfp4_tiled (&q, true, pk, ts, rows, cols);
        assert (vdgx_weight_from_nvfp4_tiled (&back, pk, true, ts, rows, cols, q.global_scale, n, k, NULL) == 0);
        assert (memcmp (back.data, q.data, (size_t) (n * k / 2)) == 0);
        assert (memcmp (back.scales, q.scales, (size_t) q.scale_count) == 0);
        assert (back.global_scale == q.global_scale && back.fmt == VDGX_WFMT_NVFP4);
        char *e = NULL;
        assert (vdgx_weight_from_nvfp4_tiled (&w1, pk, true, ts, 200, cols, 1.0f, n, k, &e) == -1 && e);
        free (e);
        vdgx_weight_host_free (&back);
        vdgx_weight_host_free (&q);
        free (pk);
        free (ts);
        free (x);
    }
    //  ties to even, saturation
    assert (vdgx_f32_to_e2m1 (0.25f) == 0 && vdgx_f32_to_e2m1 (0.75f) == 2);
    assert (vdgx_f32_to_e2m1 (1.25f) == 2 && vdgx_f32_to_e2m1 (1.75f) == 4);
    assert (vdgx_f32_to_e2m1 (2.5f) == 4 && vdgx_f32_to_e2m1 (3.5f) == 6);
    assert (vdgx_f32_to_e2m1 (5.0f) == 6 && vdgx_f32_to_e2m1 (5.01f) == 7);
    assert (vdgx_f32_to_e2m1 (100.0f) == 7 && vdgx_f32_to_e2m1 (-1e9f) == 15);
    assert (vdgx_f32_to_e2m1 (0.26f) == 1 && vdgx_f32_to_e2m1 (2.6f) == 5);
    //  NF4 table: sorted, exact endpoints and zero, values as in bitsandbytes
    assert (vdgx_nf4_values [0] == -1.0f && vdgx_nf4_values [7] == 0.0f && vdgx_nf4_values [15] == 1.0f);
    assert (vdgx_nf4_values [8] == 0.07958029955625534f && vdgx_nf4_values [1] == -0.6961928009986877f);
    for (int i = 1; i < 16; i++)
        assert (vdgx_nf4_values [i] > vdgx_nf4_values [i - 1]);
    for (int i = 0; i < 16; i++)
        assert (s_nf4_code (vdgx_nf4_values [i]) == i);
    //  Independently, from its definition (bitsandbytes create_normal_map, offset 0.9677083):
    //  8 positive normal quantiles at linspace(offset, 0.5, 9)[:-1], 7 negative ones at
    //  linspace(offset, 0.5, 8)[:-1], and zero; sorted and divided by the largest.
    {
        double v [16];
        int n = 0;
        const double offset = 0.9677083;
        for (int i = 0; i < 8; i++)
            v [n++] = s_norm_ppf (offset + (0.5 - offset) * i / 8.0);
        for (int i = 0; i < 7; i++)
            v [n++] = -s_norm_ppf (offset + (0.5 - offset) * i / 7.0);
        v [n++] = 0;
        for (int i = 1; i < 16; i++)        //  insertion sort
            for (int j = i; j > 0 && v [j] < v [j - 1]; j--) {
                double t = v [j]; v [j] = v [j - 1]; v [j - 1] = t;
            }
        for (int i = 0; i < 16; i++) {
            if (verbose)
                printf ("\n   nf4[%2d] = %+.9f (definition %+.9f)", i, vdgx_nf4_values [i], v [i] / v [15]);
            assert (fabs (vdgx_nf4_values [i] - v [i] / v [15]) < 2e-6);
        }
    }
    //  E8M0
    assert (vdgx_e8m0_to_f32 (127) == 1.0f && vdgx_e8m0_to_f32 (130) == 8.0f);
    assert (vdgx_e8m0_to_f32 (0) == ldexpf (1, -127) && isnan (vdgx_e8m0_to_f32 (255)));

    //  Random normal weights: round trip error bounds per format. The bound is the format's
    //  half step relative to the scale of the block (tensor / channel for FP8).
    int64_t n = 37, k = 192;
    float *src = malloc (sizeof (float) * (size_t) (n * k));
    float *back = malloc (sizeof (float) * (size_t) (n * k));
    for (int64_t i = 0; i < n * k; i++)
        src [i] = s_randn () * (1.0f + (float) (i / k) * 0.1f);
    src [5] = 0.0f;
    static const struct { vdgx_wfmt_t fmt; bool pc; int blk; double rel; } cases [] = {
        { VDGX_WFMT_F32, false, 0, 0 },
        { VDGX_WFMT_BF16, false, 0, 1.0 / 256 },
        { VDGX_WFMT_F16, false, 0, 1.0 / 2048 },
        { VDGX_WFMT_FP8_E4M3, false, 0, 1.0 / 16 },      //  relative to |x| (3 mantissa bits)
        { VDGX_WFMT_FP8_E4M3, true, 0, 1.0 / 16 },
        { VDGX_WFMT_NVFP4, false, 16, 0.25 },            //  relative to block amax
        { VDGX_WFMT_MXFP4, false, 32, 0.5 },
        { VDGX_WFMT_NF4, false, 64, 0.1605 },            //  half the widest NF4 gap
    };
    for (size_t c = 0; c < sizeof (cases) / sizeof (cases [0]); c++) {
        vdgx_weight_t w;
        char *err = NULL;
        int rc = vdgx_weight_quantize (&w, cases [c].fmt, src, n, k, cases [c].pc, &err);
        assert (rc == 0 && !err);
        vdgx_weight_dequant (&w, back);
        double worst = 0, mse = 0;
        for (int64_t i = 0; i < n * k; i++) {
            double e = fabs ((double) back [i] - src [i]), ref;
            if (cases [c].blk) {
                int64_t b0 = i / cases [c].blk * cases [c].blk;
                ref = s_amax (src + b0, cases [c].blk);
            }
            else
                ref = fabs (src [i]);
            //  FP8: below the subnormal range the absolute step is scale * 2^-9
            if (cases [c].fmt == VDGX_WFMT_FP8_E4M3) {
                float s = ((float *) w.scales) [cases [c].pc? i / k: 0];
                e -= s * ldexp (1, -10);
            }
            double r = ref > 0? e / ref: e;
            if (r > worst)
                worst = r;
            mse += e * e;
        }
        if (verbose)
            printf ("\n   %s%s: worst rel err %.4f (bound %.4f) rmse %.5f", vdgx_wfmt_name (cases [c].fmt),
                    cases [c].pc? " per-channel": "", worst, cases [c].rel, sqrt (mse / (double) (n * k)));
        assert (worst <= cases [c].rel + 1e-6);
        assert (back [5] == 0.0f);
        assert (vdgx_wfmt_bytes (w.fmt, n, k) >= (size_t) (w.scale_count) || w.fmt < VDGX_WFMT_FP8_E4M3);
        vdgx_weight_host_free (&w);
        assert (w.data == NULL);
    }
    //  Known values: NVFP4 of a block whose amax is 6 * 448 * global keeps 6 exactly
    {
        float x [16] = { 6, -3, 1.5f, 0.5f, 0, 4, -6, 2, 1, -1, 0.5f, 3, 4, -4, 2, -0.5f };
        vdgx_weight_t w;
        assert (vdgx_weight_quantize (&w, VDGX_WFMT_NVFP4, x, 1, 16, false, NULL) == 0);
        vdgx_weight_dequant (&w, back);
        for (int i = 0; i < 16; i++)
            assert (fabsf (back [i] - x [i]) < 1e-6f);
        assert (((uint8_t *) w.data) [0] == (0x7 | (0xd << 4)));     //  6 low, -3 high nibble
        vdgx_weight_host_free (&w);
        assert (vdgx_weight_quantize (&w, VDGX_WFMT_MXFP4, src, 1, 32, false, NULL) == 0);
        assert (w.scale_count == 1 && vdgx_e8m0_to_f32 (((uint8_t *) w.scales) [0])
                == ldexpf (1, ilogbf (s_amax (src, 32)) - 2));
        vdgx_weight_host_free (&w);
    }
    //  Bad input: k not a multiple of the block, non-finite values
    char *err = NULL;
    vdgx_weight_t w;
    assert (vdgx_weight_quantize (&w, VDGX_WFMT_NF4, src, 2, 96, false, &err) == -1 && err);
    free (err);
    err = NULL;
    src [3] = NAN;
    assert (vdgx_weight_quantize (&w, VDGX_WFMT_FP8_E4M3, src, 2, 96, false, &err) == -1 && err);
    free (err);
    //  FP8 wrap
    uint8_t codes [4] = { 0x38, 0xb8, 0x7e, 0x00 };
    float scales [2] = { 0.5f, 2.0f };
    assert (vdgx_weight_from_fp8 (&w, codes, scales, 2, 2, 2, NULL) == 0);
    vdgx_weight_dequant (&w, back);
    assert (back [0] == 0.5f && back [1] == -0.5f && back [2] == 896.0f && back [3] == 0.0f);
    vdgx_weight_host_free (&w);
    err = NULL;
    assert (vdgx_weight_from_fp8 (&w, codes, scales, 3, 2, 2, &err) == -1 && err);
    free (err);
    free (src);
    free (back);
    printf ("OK\n");
}
