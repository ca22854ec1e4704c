/*  vdgx_rng.h - the project's seeded Gaussian noise for the Wan samplers.

    Definition (reproducible per seed on every platform):
      Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
      key = (seed & 0xffffffff, seed >> 32), counter = (c & 0xffffffff, c >> 32, 0, 0).
      Block c yields four words w0..w3 and two normals, elements 2c and 2c+1:
        u1 = ((((w0 << 32) | w1) >> 11) + 1) * 2^-53        in (0, 1]
        u2 = (((w2 << 32) | w3) >> 11) * 2^-53              in [0, 1)
        z0 = sqrt(-2 ln u1) * cos(2 pi u2),  z1 = sqrt(-2 ln u1) * sin(2 pi u2)
      computed in double and rounded to float. Element i of a tensor (row-major) is normal i,
      so any slice can be generated independently (vdgx_rng_normal_at).
    Values depend only on IEEE double log/cos/sin; a last-ulp libm difference almost never
    survives the rounding to float.
*/
#ifndef VDGX_RNG_H_INCLUDED
#define VDGX_RNG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_rng_t vdgx_rng_t;

vdgx_rng_t *vdgx_rng_new (uint64_t seed);
void vdgx_rng_destroy (vdgx_rng_t **self_p);
//  Next n normals of the stream (continues where the last call stopped).
void vdgx_rng_normal (vdgx_rng_t *self, float *dst, size_t n);
//  Normals [first, first + n) of the stream of seed, without state.
void vdgx_rng_normal_at (uint64_t seed, uint64_t first, float *dst, size_t n);
//  The raw Philox4x32-10 block (exposed for the known-answer test).
void vdgx_rng_philox (const uint32_t ctr [4], const uint32_t key [2], uint32_t out [4]);

void vdgx_rng_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
