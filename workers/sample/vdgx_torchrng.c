/*  vdgx_torchrng.c - torch's CPU mt19937 generator and randn (see vdgx_torchrng.h).
    Built with -ffp-contract=off: every fused multiply-add below is an explicit fmaf, as GCC
    contracts torch's AVX2 code; nothing else may be fused. */
#include "vdgx_torchrng.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

struct _vdgx_torchrng_t {
    uint32_t state [MT_N];
    int left;                   //  draws left before the next twist
    int next;                   //  index of the next state word
    bool have_normal;           //  normal_distribution<double>'s cached sample
    double next_normal;
};

vdgx_torchrng_t *
vdgx_torchrng_new (uint64_t seed)
{
    vdgx_torchrng_t *self = (vdgx_torchrng_t *) calloc (1, sizeof (vdgx_torchrng_t));
    assert (self);
    self->state [0] = (uint32_t) seed;
    for (int i = 1; i < MT_N; i++)
        self->state [i] = 1812433253u * (self->state [i - 1] ^ (self->state [i - 1] >> 30))
                        + (uint32_t) i;
    self->left = 1;
    self->next = 0;
    return self;
}

void
vdgx_torchrng_destroy (vdgx_torchrng_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static void
s_twist (vdgx_torchrng_t *self)
{
    uint32_t *s = self->state;
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (s [i] & 0x80000000u) | (s [(i + 1) % MT_N] & 0x7fffffffu);
        s [i] = s [(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u)? 0x9908b0dfu: 0u);
    }
    self->left = MT_N;
    self->next = 0;
}

uint32_t
vdgx_torchrng_random (vdgx_torchrng_t *self)
{
    assert (self);
    if (--self->left <= 0)
        s_twist (self);
    uint32_t y = self->state [self->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static float
s_uniform_f32 (vdgx_torchrng_t *self)
{
    return (float) (vdgx_torchrng_random (self) & 0xffffffu) * (1.0f / 16777216.0f);
}

static double
s_uniform_f64 (vdgx_torchrng_t *self)
{
    uint64_t hi = vdgx_torchrng_random (self);
    uint64_t lo = vdgx_torchrng_random (self);
    return (double) (((hi << 32) | lo) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

//  at::normal_distribution<double> (the scalar path, n < 16), with its cache.
static double
s_normal_scalar (vdgx_torchrng_t *self)
{
    if (self->have_normal) {
        self->have_normal = false;
        return self->next_normal;
    }
    double u1 = s_uniform_f64 (self);
    double u2 = s_uniform_f64 (self);
    double r = sqrt (-2.0 * log (1.0 - u2));
    double theta = 2.0 * M_PI * u1;
    self->next_normal = r * sin (theta);
    self->have_normal = true;
    return r * cos (theta);
}

static inline uint32_t
s_bits (float x)
{
    uint32_t u;
    memcpy (&u, &x, 4);
    return u;
}

static inline float
s_float (uint32_t u)
{
    float x;
    memcpy (&x, &u, 4);
    return x;
}

//  Cephes logf of avx_mathfun.h's log256_ps, one lane, for x in (0, 1].
static float
s_cephes_log (float x)
{
    if (x < 1.17549435e-38f)                    //  cut off denormals (x > 0 here)
        x = 1.17549435e-38f;
    int32_t e_int = (int32_t) (s_bits (x) >> 23) - 0x7f;
    x = s_float ((s_bits (x) & ~0x7f800000u) | s_bits (0.5f));
    float e = (float) e_int + 1.0f;
    bool below = x < 0.707106781186547524f;
    float tmp = below? x: 0.0f;
    x = x - 1.0f;
    e = e - (below? 1.0f: 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = fmaf (7.0376836292E-2f, x, -1.1514610310E-1f);
    y = fmaf (y, x, 1.1676998740E-1f);
    y = fmaf (y, x, -1.2420140846E-1f);
    y = fmaf (y, x, 1.4249322787E-1f);
    y = fmaf (y, x, -1.6668057665E-1f);
    y = fmaf (y, x, 2.0000714765E-1f);
    y = fmaf (y, x, -2.4999993993E-1f);
    y = fmaf (y, x, 3.3333331174E-1f);
    y = y * x;
    y = fmaf (y, z, e * -2.12194440e-4f);
    y = fmaf (-z, 0.5f, y);
    x = x + y;
    x = fmaf (e, 0.693359375f, x);
    return x;
}

//  Cephes sincosf of avx_mathfun.h's sincos256_ps, one lane.
static void
s_cephes_sincos (float x, float *s, float *c)
{
    uint32_t sign_sin = s_bits (x) & 0x80000000u;
    x = s_float (s_bits (x) & 0x7fffffffu);
    int32_t j = (int32_t) (x * 1.27323954473516f);
    j = (j + 1) & ~1;
    float y = (float) j;
    uint32_t swap_sin = ((uint32_t) j & 4u) << 29;
    bool poly_sin = (j & 2) == 0;               //  sine polynomial gives the sine
    x = fmaf (y, -0.78515625f, x);
    x = fmaf (y, -2.4187564849853515625e-4f, x);
    x = fmaf (y, -3.77489497744594108e-8f, x);
    uint32_t sign_cos = ((uint32_t) ~(j - 2) & 4u) << 29;
    sign_sin ^= swap_sin;
    float z = x * x;
    float yc = fmaf (2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf (yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = fmaf (yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = fmaf (-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf (ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf (ys, x, x);
    *s = s_float (s_bits (poly_sin? ys: yc) ^ sign_sin);
    *c = s_float (s_bits (poly_sin? yc: ys) ^ sign_cos);
}

static void
s_fill16_f32 (float *d)
{
    const float two_pi = (float) (2.0 * M_PI);
    for (int j = 0; j < 8; j++) {
        float radius = sqrtf (-2.0f * s_cephes_log (1.0f - d [j]));
        float s, c;
        s_cephes_sincos (two_pi * d [j + 8], &s, &c);
        d [j] = radius * c;
        d [j + 8] = radius * s;
    }
}

static void
s_fill16_f64 (double *d)
{
    for (int j = 0; j < 8; j++) {
        double radius = sqrt (-2.0 * log (1.0 - d [j]));
        double theta = 2.0 * M_PI * d [j + 8];
        d [j] = radius * cos (theta);
        d [j + 8] = radius * sin (theta);
    }
}

void
vdgx_torchrng_randn (vdgx_torchrng_t *self, float *dst, size_t n)
{
    assert (self && (dst || n == 0));
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            dst [i] = (float) s_normal_scalar (self);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst [i] = s_uniform_f32 (self);
    for (size_t i = 0; i + 16 <= n; i += 16)
        s_fill16_f32 (dst + i);
    if (n % 16) {
        for (size_t i = n - 16; i < n; i++)
            dst [i] = s_uniform_f32 (self);
        s_fill16_f32 (dst + n - 16);
    }
}

void
vdgx_torchrng_randn_f64 (vdgx_torchrng_t *self, double *dst, size_t n)
{
    assert (self && (dst || n == 0));
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            dst [i] = s_normal_scalar (self);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst [i] = s_uniform_f64 (self);
    for (size_t i = 0; i + 16 <= n; i += 16)
        s_fill16_f64 (dst + i);
    if (n % 16) {
        for (size_t i = n - 16; i < n; i++)
            dst [i] = s_uniform_f64 (self);
        s_fill16_f64 (dst + n - 16);
    }
}

//  --------------------------------------------------------------------------
//  Selftest: torch's own output (tests/data/reference/torch_randn/vectors.bin, made by
//  make_vectors.py with torch 1.13.1), compared bit for bit.

static bool
s_read (FILE *f, void *buf, size_t size)
{
    return fread (buf, 1, size, f) == size;
}

void
vdgx_torchrng_test (bool verbose)
{
    printf (" * vdgx_torchrng: ");

    //  mt19937 known answer: the 10000th output of the default seed 5489 (C++11 [rand.predef]).
    vdgx_torchrng_t *self = vdgx_torchrng_new (5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = vdgx_torchrng_random (self);
    assert (v == 4123659995u);
    vdgx_torchrng_destroy (&self);
    assert (self == NULL);

    const char *src = getenv ("VDGX_SOURCE_DIR");
    char path [4096];
    snprintf (path, sizeof (path), "%s/tests/data/reference/torch_randn/vectors.bin",
              src? src: ".");
    FILE *f = fopen (path, "rb");
    if (!f)
        printf ("cannot open %s\n", path);
    assert (f && "torch reference vectors (VDGX_SOURCE_DIR must name the source tree)");
    char magic [8];
    uint32_t cases = 0;
    assert (s_read (f, magic, 8) && memcmp (magic, "VDGXTRN1", 8) == 0);
    assert (s_read (f, &cases, 4) && cases > 0);
    size_t values = 0, mismatches = 0;
    for (uint32_t c = 0; c < cases; c++) {
        uint64_t seed;
        uint32_t hdr [3];
        assert (s_read (f, &seed, 8) && s_read (f, hdr, 12));
        uint32_t dtype = hdr [0];
        assert (dtype <= 1 && hdr [1] > 0 && hdr [1] <= 100000 && hdr [2] <= 100000);
        self = vdgx_torchrng_new (seed);
        for (int draw = 1; draw <= 2; draw++) {
            size_t n = hdr [draw];
            if (n == 0)
                continue;
            size_t esize = dtype? 8: 4;
            unsigned char *want = (unsigned char *) malloc (n * esize);
            unsigned char *got = (unsigned char *) malloc (n * esize);
            assert (want && got && s_read (f, want, n * esize));
            if (dtype)
                vdgx_torchrng_randn_f64 (self, (double *) got, n);
            else
                vdgx_torchrng_randn (self, (float *) got, n);
            for (size_t i = 0; i < n; i++)
                if (memcmp (got + i * esize, want + i * esize, esize)) {
                    if (verbose || mismatches < 10)
                        printf ("\nseed %llu %s draw %d n %zu [%zu]: got %.9g want %.9g",
                                (unsigned long long) seed, dtype? "f64": "f32", draw, n, i,
                                dtype? ((double *) got) [i]: ((float *) got) [i],
                                dtype? ((double *) want) [i]: ((float *) want) [i]);
                    mismatches++;
                }
            values += n;
            free (want);
            free (got);
        }
        vdgx_torchrng_destroy (&self);
    }
    //  Digests of large draws (about 0.1% of values depend on the exact FMA contraction).
    uint32_t digests = 0;
    assert (s_read (f, &digests, 4) && digests > 0);
    for (uint32_t d = 0; d < digests; d++) {
        uint64_t seed, want;
        uint32_t hdr [2];
        assert (s_read (f, &seed, 8) && s_read (f, hdr, 8) && s_read (f, &want, 8));
        assert (hdr [0] <= 1 && hdr [1] <= (1u << 22));
        size_t n = hdr [1], esize = hdr [0]? 8: 4;
        unsigned char *got = (unsigned char *) malloc (n * esize);
        assert (got);
        self = vdgx_torchrng_new (seed);
        if (hdr [0])
            vdgx_torchrng_randn_f64 (self, (double *) got, n);
        else
            vdgx_torchrng_randn (self, (float *) got, n);
        vdgx_torchrng_destroy (&self);
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n * esize; i++)
            h = (h ^ got [i]) * 0x100000001b3ull;
        free (got);
        if (h != want) {
            printf ("\nseed %llu %s randn(%zu) digest %016llx, torch %016llx",
                    (unsigned long long) seed, hdr [0]? "f64": "f32", n,
                    (unsigned long long) h, (unsigned long long) want);
            mismatches++;
        }
        values += n;
    }
    assert (fgetc (f) == EOF);
    fclose (f);
    if (mismatches)
        printf ("\n%zu of %zu values differ from torch\n", mismatches, values);
    assert (mismatches == 0);
    if (verbose)
        printf ("%u cases + %u digests, %zu values bit-exact; ", cases, digests, values);
    printf ("OK\n");
}
