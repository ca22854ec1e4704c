/*  vdgx_tensor.c - dtypes, scalar conversions, tensor descriptions, weight format names. */
#include "vdgx_tensor.h"
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; size_t size; } s_dtypes [VDGX_DTYPE_COUNT] = {
    [VDGX_DTYPE_F32] = { "F32", 4 },         [VDGX_DTYPE_F16] = { "F16", 2 },
    [VDGX_DTYPE_BF16] = { "BF16", 2 },       [VDGX_DTYPE_F8_E4M3] = { "F8_E4M3", 1 },
    [VDGX_DTYPE_F8_E5M2] = { "F8_E5M2", 1 }, [VDGX_DTYPE_F64] = { "F64", 8 },
    [VDGX_DTYPE_I64] = { "I64", 8 },         [VDGX_DTYPE_I32] = { "I32", 4 },
    [VDGX_DTYPE_U8] = { "U8", 1 },
};

size_t
vdgx_dtype_size (vdgx_dtype_t dtype)
{
    return (unsigned) dtype < VDGX_DTYPE_COUNT? s_dtypes [dtype].size: 0;
}

const char *
vdgx_dtype_name (vdgx_dtype_t dtype)
{
    return (unsigned) dtype < VDGX_DTYPE_COUNT? s_dtypes [dtype].name: "?";
}

int
vdgx_dtype_from_name (const char *name, vdgx_dtype_t *dtype)
{
    if (!name)
        return -1;
    for (int i = 0; i < VDGX_DTYPE_COUNT; i++)
        if (strcmp (name, s_dtypes [i].name) == 0) {
            *dtype = (vdgx_dtype_t) i;
            return 0;
        }
    //  safetensors BOOL is one byte per element, 0 or 1: read as U8
    if (strcmp (name, "BOOL") == 0) {
        *dtype = VDGX_DTYPE_U8;
        return 0;
    }
    return -1;
}

bool
vdgx_dtype_is_float (vdgx_dtype_t dtype)
{
    return dtype == VDGX_DTYPE_F32 || dtype == VDGX_DTYPE_F16 || dtype == VDGX_DTYPE_BF16
        || dtype == VDGX_DTYPE_F8_E4M3 || dtype == VDGX_DTYPE_F8_E5M2 || dtype == VDGX_DTYPE_F64;
}

void
vdgx_tensor_init (vdgx_tensor_t *t, vdgx_dtype_t dtype, int ndim, const int64_t *shape,
                  void *data, int device)
{
    assert (t);
    assert (ndim >= 0 && ndim <= VDGX_MAX_DIMS);
    memset (t, 0, sizeof (*t));
    t->dtype = dtype;
    t->ndim = ndim;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape [i] = shape [i];
        t->stride [i] = stride;
        stride *= shape [i];
    }
    t->data = data;
    t->device = device;
}

int64_t
vdgx_tensor_numel (const vdgx_tensor_t *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape [i];
    return n;
}

size_t
vdgx_tensor_nbytes (const vdgx_tensor_t *t)
{
    return (size_t) vdgx_tensor_numel (t) * vdgx_dtype_size (t->dtype);
}

bool
vdgx_tensor_is_contiguous (const vdgx_tensor_t *t)
{
    int64_t stride = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        //  A dimension of size 1 may carry any stride (PyTorch does the same).
        if (t->shape [i] != 1 && t->stride [i] != stride)
            return false;
        stride *= t->shape [i];
    }
    return true;
}

int
vdgx_tensor_reshape (vdgx_tensor_t *view, const vdgx_tensor_t *t, int ndim, const int64_t *shape)
{
    if (!vdgx_tensor_is_contiguous (t) || ndim < 0 || ndim > VDGX_MAX_DIMS)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape [i] < 0)
            return -1;
        n *= shape [i];
    }
    if (n != vdgx_tensor_numel (t))
        return -1;
    vdgx_tensor_t v;
    vdgx_tensor_init (&v, t->dtype, ndim, shape, t->data, t->device);
    v.owner = NULL;
    *view = v;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Scalar conversions

static inline uint32_t s_bits (float f) { uint32_t u; memcpy (&u, &f, 4); return u; }
static inline float s_float (uint32_t u) { float f; memcpy (&f, &u, 4); return f; }

float
vdgx_bf16_to_f32 (uint16_t v)
{
    return s_float ((uint32_t) v << 16);
}

uint16_t
vdgx_f32_to_bf16 (float f)
{
    uint32_t u = s_bits (f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t) ((u >> 16) | 0x0040);          //  quiet NaN, keeps the sign
    u += 0x7fffu + ((u >> 16) & 1);                      //  round to nearest even
    return (uint16_t) (u >> 16);
}

//  Encodes |f| into a small float format with mbits mantissa bits and the given bias.
//  The value is rounded once (rint: round half to even) on the quantum of its binade, so
//  the result is exact RNE; overflow either saturates to max_code or goes to inf_code.
static uint32_t
s_encode_mini (float f, int mbits, int bias, float max_finite, uint32_t max_code,
               uint32_t nan_code, int64_t inf_code, bool saturate, int sign_shift)
{
    uint32_t sign = signbit (f)? (1u << sign_shift): 0;
    if (isnan (f))
        return sign | nan_code;
    float a = fabsf (f);
    if (isinf (a))
        return sign | (inf_code >= 0? (uint32_t) inf_code: max_code);
    if (a == 0)
        return sign;
    int emin = 1 - bias;
    int e = ilogbf (a);
    int qexp = (e < emin? emin: e) - mbits;
    float v = ldexpf (rintf (ldexpf (a, -qexp)), qexp);
    if (v > max_finite)
        return sign | (saturate || inf_code < 0? max_code: (uint32_t) inf_code);
    if (v == 0)
        return sign;
    e = ilogbf (v);
    if (e < emin)       //  subnormal: the code is the multiple of the smallest quantum
        return sign | (uint32_t) ldexpf (v, -(emin - mbits));
    uint32_t mant = (uint32_t) (ldexpf (v, mbits - e) - (float) (1u << mbits));
    return sign | ((uint32_t) (e + bias) << mbits) | mant;
}

static float
s_decode_mini (uint32_t code, int ebits, int mbits, int bias, int sign_shift)
{
    uint32_t mmask = (1u << mbits) - 1, emask = (1u << ebits) - 1;
    uint32_t mant = code & mmask, exp = (code >> mbits) & emask;
    float v = exp == 0? ldexpf ((float) mant, 1 - bias - mbits)
                      : ldexpf ((float) (mant | (1u << mbits)), (int) exp - bias - mbits);
    return (code >> sign_shift) & 1? -v: v;
}

static float s_f16_table [65536];
static float s_e4m3_table [256];
static float s_e5m2_table [256];
static pthread_once_t s_tables_once = PTHREAD_ONCE_INIT;

static void
s_tables_init (void)
{
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t exp = (i >> 10) & 0x1f;
        if (exp == 0x1f)
            s_f16_table [i] = (i & 0x3ff)? NAN: ((i & 0x8000)? -INFINITY: INFINITY);
        else
            s_f16_table [i] = s_decode_mini (i, 5, 10, 15, 15);
        if (i < 256) {
            s_e4m3_table [i] = (i & 0x7f) == 0x7f? NAN: s_decode_mini (i, 4, 3, 7, 7);
            uint32_t e5 = (i >> 2) & 0x1f;
            if (e5 == 0x1f)
                s_e5m2_table [i] = (i & 3)? NAN: ((i & 0x80)? -INFINITY: INFINITY);
            else
                s_e5m2_table [i] = s_decode_mini (i, 5, 2, 15, 7);
        }
    }
}

static inline void
s_tables (void)
{
    pthread_once (&s_tables_once, s_tables_init);
}

const float *
vdgx_e4m3_table (void)
{
    s_tables ();
    return s_e4m3_table;
}

float
vdgx_f16_to_f32 (uint16_t v)
{
    s_tables ();
    return s_f16_table [v];
}

uint16_t
vdgx_f32_to_f16 (float f)
{
    //  Fast exact RNE for the normal range [2^-14, 65504]; the generic path does the rest.
    uint32_t u = s_bits (f), au = u & 0x7fffffffu;
    if (au >= 0x38800000u && au <= 0x477fe000u) {
        uint32_t r = (au + 0xfffu + ((au >> 13) & 1)) >> 13;
        return (uint16_t) (((u >> 16) & 0x8000) | (r - ((127 - 15) << 10)));
    }
    //  IEEE half: overflow goes to inf (not saturating).
    return (uint16_t) s_encode_mini (f, 10, 15, 65504.0f, 0x7bff, 0x7e00, 0x7c00, false, 15);
}

float
vdgx_e4m3_to_f32 (uint8_t v)
{
    s_tables ();
    return s_e4m3_table [v];
}

//  Fast exact RNE for the common normal range; the generic path handles the rest.
uint8_t
vdgx_f32_to_e4m3 (float f)
{
    uint32_t u = s_bits (f);
    uint32_t sign = (u >> 24) & 0x80;
    uint32_t au = u & 0x7fffffffu;
    //  2^-6 <= |f| < 448: the normal range, rounded on the 20 dropped mantissa bits
    if (au >= 0x3c800000u && au < 0x43e00000u) {
        uint32_t r = au + 0x7ffffu + ((au >> 20) & 1);
        r = (r >> 20) - ((127 - 7) << 3);          //  rebias the exponent
        if (r > 0x7e)
            r = 0x7e;
        return (uint8_t) (sign | r);
    }
    return (uint8_t) s_encode_mini (f, 3, 7, 448.0f, 0x7e, 0x7f, -1, true, 7);
}

float
vdgx_e5m2_to_f32 (uint8_t v)
{
    s_tables ();
    return s_e5m2_table [v];
}

uint8_t
vdgx_f32_to_e5m2 (float f)
{
    //  Finite overflow saturates to 57344; inf stays inf (E5M2 has one).
    return (uint8_t) s_encode_mini (f, 2, 15, 57344.0f, 0x7b, 0x7f, 0x7c, true, 7);
}

int
vdgx_convert_to_f32 (float *dst, const void *src, vdgx_dtype_t src_dtype, size_t n)
{
    s_tables ();
    switch (src_dtype) {
        case VDGX_DTYPE_F32:
            memmove (dst, src, n * 4);
            return 0;
        case VDGX_DTYPE_BF16: {
            const uint8_t *p = src;
            for (size_t i = 0; i < n; i++) {
                uint16_t v;
                memcpy (&v, p + 2 * i, 2);
                dst [i] = s_float ((uint32_t) v << 16);
            }
            return 0;
        }
        case VDGX_DTYPE_F16: {
            const uint8_t *p = src;
            for (size_t i = 0; i < n; i++) {
                uint16_t v;
                memcpy (&v, p + 2 * i, 2);
                dst [i] = s_f16_table [v];
            }
            return 0;
        }
        case VDGX_DTYPE_F8_E4M3:
            for (size_t i = 0; i < n; i++)
                dst [i] = s_e4m3_table [((const uint8_t *) src) [i]];
            return 0;
        case VDGX_DTYPE_F8_E5M2:
            for (size_t i = 0; i < n; i++)
                dst [i] = s_e5m2_table [((const uint8_t *) src) [i]];
            return 0;
        case VDGX_DTYPE_F64: {
            const uint8_t *p = src;
            for (size_t i = 0; i < n; i++) {
                double v;
                memcpy (&v, p + 8 * i, 8);
                dst [i] = (float) v;
            }
            return 0;
        }
        default:
            return -1;
    }
}

int
vdgx_convert_from_f32 (void *dst, vdgx_dtype_t dst_dtype, const float *src, size_t n)
{
    uint8_t *p = dst;
    switch (dst_dtype) {
        case VDGX_DTYPE_F32:
            memmove (dst, src, n * 4);
            return 0;
        case VDGX_DTYPE_BF16:
            for (size_t i = 0; i < n; i++) {
                uint16_t v = vdgx_f32_to_bf16 (src [i]);
                memcpy (p + 2 * i, &v, 2);
            }
            return 0;
        case VDGX_DTYPE_F16:
            for (size_t i = 0; i < n; i++) {
                uint16_t v = vdgx_f32_to_f16 (src [i]);
                memcpy (p + 2 * i, &v, 2);
            }
            return 0;
        case VDGX_DTYPE_F8_E4M3:
            for (size_t i = 0; i < n; i++)
                p [i] = vdgx_f32_to_e4m3 (src [i]);
            return 0;
        case VDGX_DTYPE_F8_E5M2:
            for (size_t i = 0; i < n; i++)
                p [i] = vdgx_f32_to_e5m2 (src [i]);
            return 0;
        case VDGX_DTYPE_F64:
            for (size_t i = 0; i < n; i++) {
                double v = src [i];
                memcpy (p + 8 * i, &v, 8);
            }
            return 0;
        default:
            return -1;
    }
}

//  ---------------------------------------------------------------------------------------
//  Weight formats

static const char *s_wfmt_names [VDGX_WFMT_COUNT] = {
    "f32", "bf16", "f16", "fp8", "nvfp4", "mxfp4", "nf4"
};

const char *
vdgx_wfmt_name (vdgx_wfmt_t fmt)
{
    return (unsigned) fmt < VDGX_WFMT_COUNT? s_wfmt_names [fmt]: "?";
}

int
vdgx_wfmt_from_name (const char *name, vdgx_wfmt_t *fmt)
{
    if (!name)
        return -1;
    for (int i = 0; i < VDGX_WFMT_COUNT; i++)
        if (strcmp (name, s_wfmt_names [i]) == 0) {
            *fmt = (vdgx_wfmt_t) i;
            return 0;
        }
    return -1;
}

size_t
vdgx_wfmt_bytes (vdgx_wfmt_t fmt, int64_t n, int64_t k)
{
    size_t nk = (size_t) n * (size_t) k;
    switch (fmt) {
        case VDGX_WFMT_F32:      return nk * 4;
        case VDGX_WFMT_BF16:
        case VDGX_WFMT_F16:      return nk * 2;
        case VDGX_WFMT_FP8_E4M3: return nk + (size_t) n * 4;
        case VDGX_WFMT_NVFP4:    return nk / 2 + nk / 16;
        case VDGX_WFMT_MXFP4:    return nk / 2 + nk / 32;
        case VDGX_WFMT_NF4:      return nk / 2 + nk / 64 * 4;
        default:                 return 0;
    }
}

//  ---------------------------------------------------------------------------------------
//  Selftest

void
vdgx_tensor_test (bool verbose)
{
    printf (" * vdgx_tensor: ");
    assert (vdgx_dtype_size (VDGX_DTYPE_BF16) == 2);
    vdgx_dtype_t dt;
    assert (vdgx_dtype_from_name ("F8_E4M3", &dt) == 0 && dt == VDGX_DTYPE_F8_E4M3);
    assert (vdgx_dtype_from_name ("F4", &dt) == -1);
    assert (vdgx_dtype_from_name ("BOOL", &dt) == 0 && dt == VDGX_DTYPE_U8);
    assert (strcmp (vdgx_dtype_name (VDGX_DTYPE_I64), "I64") == 0);

    int64_t shape [3] = { 2, 3, 5 };
    vdgx_tensor_t t, v;
    vdgx_tensor_init (&t, VDGX_DTYPE_F32, 3, shape, NULL, VDGX_DEVICE_CPU);
    assert (t.stride [0] == 15 && t.stride [1] == 5 && t.stride [2] == 1);
    assert (vdgx_tensor_numel (&t) == 30 && vdgx_tensor_nbytes (&t) == 120);
    assert (vdgx_tensor_is_contiguous (&t));
    int64_t s2 [2] = { 6, 5 };
    assert (vdgx_tensor_reshape (&v, &t, 2, s2) == 0 && v.stride [0] == 5);
    s2 [1] = 4;
    assert (vdgx_tensor_reshape (&v, &t, 2, s2) == -1);
    t.stride [0] = 16;
    assert (!vdgx_tensor_is_contiguous (&t));

    //  bf16: exact values, RNE ties, NaN
    assert (vdgx_f32_to_bf16 (1.0f) == 0x3f80);
    assert (vdgx_f32_to_bf16 (s_float (0x3f808000u)) == 0x3f80);   //  tie -> even
    assert (vdgx_f32_to_bf16 (s_float (0x3f818000u)) == 0x3f82);   //  tie -> even (up)
    assert (vdgx_f32_to_bf16 (s_float (0x3f808001u)) == 0x3f81);
    assert (isnan (vdgx_bf16_to_f32 (vdgx_f32_to_bf16 (NAN))));
    //  f16
    assert (vdgx_f32_to_f16 (1.0f) == 0x3c00 && vdgx_f16_to_f32 (0x3c00) == 1.0f);
    assert (vdgx_f32_to_f16 (65504.0f) == 0x7bff);
    assert (vdgx_f32_to_f16 (65520.0f) == 0x7c00);                   //  tie rounds to inf
    assert (vdgx_f32_to_f16 (65519.0f) == 0x7bff);
    assert (vdgx_f16_to_f32 (0x0001) == ldexpf (1, -24));            //  smallest subnormal
    assert (vdgx_f32_to_f16 (ldexpf (1, -25)) == 0);                 //  tie -> 0 (even)
    assert (vdgx_f32_to_f16 (ldexpf (3, -26)) == 1);
    assert (vdgx_f32_to_f16 (-2.0f) == 0xc000);
    //  every f16 round-trips
    for (uint32_t i = 0; i < 65536; i++) {
        float f = vdgx_f16_to_f32 ((uint16_t) i);
        if (!isnan (f))
            assert (vdgx_f32_to_f16 (f) == i);
    }
    //  e4m3: every code round-trips, max 448, saturation, subnormals, NaN
    for (uint32_t i = 0; i < 256; i++) {
        float f = vdgx_e4m3_to_f32 ((uint8_t) i);
        if ((i & 0x7f) == 0x7f)
            assert (isnan (f));
        else
            assert (vdgx_f32_to_e4m3 (f) == i);
    }
    assert (vdgx_e4m3_to_f32 (0x7e) == 448.0f && vdgx_e4m3_to_f32 (0x01) == ldexpf (1, -9));
    assert (vdgx_e4m3_to_f32 (0x08) == ldexpf (1, -6));
    assert (vdgx_f32_to_e4m3 (1000.0f) == 0x7e && vdgx_f32_to_e4m3 (-1e30f) == 0xfe);
    assert (vdgx_f32_to_e4m3 (INFINITY) == 0x7e && vdgx_f32_to_e4m3 (464.0f) == 0x7e);
    assert ((vdgx_f32_to_e4m3 (NAN) & 0x7f) == 0x7f);
    assert (vdgx_f32_to_e4m3 (1.0625f) == 0x38);      //  1 + 1/16 tie -> even (1.0)
    assert (vdgx_f32_to_e4m3 (1.1875f) == 0x3a);      //  1 + 3/16 tie -> even (1.25)
    assert (vdgx_f32_to_e4m3 (ldexpf (1, -10)) == 0); //  tie -> 0
    assert (vdgx_f32_to_e4m3 (ldexpf (3, -11)) == 1);
    //  the fast path agrees with the generic path on random floats
    uint32_t seed = 12345;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t e = 110 + (seed >> 24) % 40;
        float f = s_float ((seed & 0x807fffffu) | (e << 23));
        assert (vdgx_f32_to_e4m3 (f)
                == (uint8_t) s_encode_mini (f, 3, 7, 448.0f, 0x7e, 0x7f, -1, true, 7));
    }
    //  the f16 fast path agrees with the generic encoder
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t e = 100 + (seed >> 24) % 50;
        float f = s_float ((seed & 0x807fffffu) | (e << 23));
        assert (vdgx_f32_to_f16 (f) == (uint16_t) s_encode_mini (f, 10, 15, 65504.0f, 0x7bff, 0x7e00, 0x7c00, false, 15));
    }
    //  e5m2
    for (uint32_t i = 0; i < 256; i++) {
        float f = vdgx_e5m2_to_f32 ((uint8_t) i);
        if (!isnan (f))
            assert (vdgx_f32_to_e5m2 (f) == i);
    }
    assert (vdgx_e5m2_to_f32 (0x7b) == 57344.0f && vdgx_f32_to_e5m2 (1e6f) == 0x7b);
    assert (vdgx_f32_to_e5m2 (INFINITY) == 0x7c);

    float src [5] = { 1.5f, -2.0f, 0.0f, 3.0f, 1e-3f }, back [5];     //  exact in every format
    uint8_t buf [40];
    for (int d = 0; d < VDGX_DTYPE_COUNT; d++) {
        if (!vdgx_dtype_is_float ((vdgx_dtype_t) d))
            assert (vdgx_convert_from_f32 (buf, (vdgx_dtype_t) d, src, 5) == -1);
        else {
            assert (vdgx_convert_from_f32 (buf, (vdgx_dtype_t) d, src, 4) == 0);
            assert (vdgx_convert_to_f32 (back, buf, (vdgx_dtype_t) d, 4) == 0);
            for (int i = 0; i < 4; i++)
                assert (back [i] == src [i]);
        }
    }
    vdgx_wfmt_t fmt;
    assert (vdgx_wfmt_from_name ("nvfp4", &fmt) == 0 && fmt == VDGX_WFMT_NVFP4);
    assert (vdgx_wfmt_from_name ("int3", &fmt) == -1);
    assert (vdgx_wfmt_bytes (VDGX_WFMT_NF4, 4, 128) == 256 + 32);
    if (verbose)
        printf ("(conversions exhaustive) ");
    printf ("OK\n");
}
