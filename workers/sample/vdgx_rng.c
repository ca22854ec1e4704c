/*  vdgx_rng.c - Philox4x32-10 + Box-Muller (see vdgx_rng.h for the exact definition). */
#include "vdgx_rng.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _vdgx_rng_t {
    uint64_t seed;
    uint64_t next;      //  index of the next normal
};

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void
vdgx_rng_philox (const uint32_t ctr [4], const uint32_t key [2], uint32_t out [4])
{
    uint32_t c0 = ctr [0], c1 = ctr [1], c2 = ctr [2], c3 = ctr [3];
    uint32_t k0 = key [0], k1 = key [1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t) PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t) PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t) (p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t) p1;
        uint32_t n2 = (uint32_t) (p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t) p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out [0] = c0; out [1] = c1; out [2] = c2; out [3] = c3;
}

//  Normals 2c and 2c+1 of the stream.
static void
s_block (uint64_t seed, uint64_t c, double z [2])
{
    const uint32_t key [2] = { (uint32_t) seed, (uint32_t) (seed >> 32) };
    const uint32_t ctr [4] = { (uint32_t) c, (uint32_t) (c >> 32), 0, 0 };
    uint32_t w [4];
    vdgx_rng_philox (ctr, key, w);
    const double two_m53 = 1.0 / 9007199254740992.0;
    double u1 = (double) (((((uint64_t) w [0] << 32) | w [1]) >> 11) + 1) * two_m53;
    double u2 = (double) ((((uint64_t) w [2] << 32) | w [3]) >> 11) * two_m53;
    double r = sqrt (-2.0 * log (u1));
    double a = 2.0 * M_PI * u2;
    z [0] = r * cos (a);
    z [1] = r * sin (a);
}

void
vdgx_rng_normal_at (uint64_t seed, uint64_t first, float *dst, size_t n)
{
    assert (dst || n == 0);
    size_t i = 0;
    double z [2];
    if (n > 0 && (first & 1)) {
        s_block (seed, first >> 1, z);
        dst [i++] = (float) z [1];
    }
    for (; i + 1 < n; i += 2) {
        s_block (seed, (first + i) >> 1, z);
        dst [i] = (float) z [0];
        dst [i + 1] = (float) z [1];
    }
    if (i < n) {
        s_block (seed, (first + i) >> 1, z);
        dst [i] = (float) z [0];
    }
}

vdgx_rng_t *
vdgx_rng_new (uint64_t seed)
{
    vdgx_rng_t *self = calloc (1, sizeof (vdgx_rng_t));
    if (self)
        self->seed = seed;
    return self;
}

void
vdgx_rng_destroy (vdgx_rng_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
vdgx_rng_normal (vdgx_rng_t *self, float *dst, size_t n)
{
    assert (self);
    vdgx_rng_normal_at (self->seed, self->next, dst, n);
    self->next += n;
}

void
vdgx_rng_test (bool verbose)
{
    printf (" * vdgx_rng: ");
    //  Known answers of Philox4x32-10 from the Random123 distribution (kat_vectors).
    {
        uint32_t out [4];
        const uint32_t c0 [4] = { 0, 0, 0, 0 }, k0 [2] = { 0, 0 };
        vdgx_rng_philox (c0, k0, out);
        assert (out [0] == 0x6627e8d5u && out [1] == 0xe169c58du
             && out [2] == 0xbc57ac4cu && out [3] == 0x9b00dbd8u);
        const uint32_t c1 [4] = { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu };
        const uint32_t k1 [2] = { 0xffffffffu, 0xffffffffu };
        vdgx_rng_philox (c1, k1, out);
        assert (out [0] == 0x408f276du && out [1] == 0x41c83b0eu
             && out [2] == 0xa20bc7c6u && out [3] == 0x6d5451fdu);
        const uint32_t c2 [4] = { 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u };
        const uint32_t k2 [2] = { 0xa4093822u, 0x299f31d0u };
        vdgx_rng_philox (c2, k2, out);
        assert (out [0] == 0xd16cfe09u && out [1] == 0x94fdccebu
             && out [2] == 0x5001e420u && out [3] == 0x24126ea1u);
    }
    //  Streams: reproducible, seed-dependent, slice-consistent, roughly N(0,1).
    {
        const size_t n = 100001;
        float *a = malloc (n * sizeof (float));
        float *b = malloc (n * sizeof (float));
        assert (a && b);
        vdgx_rng_t *rng = vdgx_rng_new (42);
        assert (rng);
        vdgx_rng_normal (rng, a, 7);
        vdgx_rng_normal (rng, a + 7, n - 7);
        vdgx_rng_destroy (&rng);
        assert (rng == NULL);
        vdgx_rng_normal_at (42, 0, b, n);
        assert (memcmp (a, b, n * sizeof (float)) == 0);
        vdgx_rng_normal_at (42, 12345, b, 101);
        assert (memcmp (a + 12345, b, 101 * sizeof (float)) == 0);
        vdgx_rng_normal_at (43, 0, b, n);
        size_t same = 0;
        for (size_t i = 0; i < n; i++)
            same += a [i] == b [i];
        assert (same < 10);
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; i++)
            mean += a [i];
        mean /= n;
        for (size_t i = 0; i < n; i++)
            var += (a [i] - mean) * (a [i] - mean);
        var /= n;
        if (verbose)
            printf ("mean %.4f var %.4f ", mean, var);
        assert (fabs (mean) < 0.02 && fabs (var - 1.0) < 0.02);
        free (a);
        free (b);
    }
    printf ("OK\n");
}
