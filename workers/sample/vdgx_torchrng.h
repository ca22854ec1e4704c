/*  vdgx_torchrng.h - torch's CPU generator and torch.randn, reproduced bit-exactly.

    `vdgx_torchrng_new (seed)` is `torch.Generator('cpu').manual_seed(seed)`; each randn call is
    `torch.randn(n, generator=g, dtype=...)` on that generator (the state advances, as in torch).
    Facts of torch (checked against torch 1.13.1 on x86-64 with AVX2, see
    tests/data/reference/torch_randn/):
      engine   mt19937 seeded with the seed's low 32 bits; random() is one 32-bit draw,
               random64() = (first << 32) | second.
      uniform  float: (random() & (2^24 - 1)) * 2^-24;  double: (random64() & (2^53 - 1)) * 2^-53.
      n >= 16  (contiguous) normal_fill: all n uniforms first, then Box-Muller in blocks of 16 over
               the pairs (j, j + 8): u1 = 1 - data[j], u2 = data[j + 8], r = sqrt(-2 log u1),
               t = 2 pi u2, data[j] = r cos t, data[j + 8] = r sin t. When n % 16 != 0 the last
               16 places are drawn again (16 new uniforms) and transformed again.
               float32 on an AVX2 CPU uses Cephes log256_ps/sincos256_ps (avx_mathfun.h) in float
               with GCC's FMA contraction (reproduced here with explicit fmaf); float64 uses libm.
      n < 16   normal_distribution<double> per element: u1, u2 double uniforms,
               r = sqrt(-2 log(1 - u2)), t = 2 pi u1, returns r cos t and caches r sin t for the
               next scalar draw (the cache lives in the generator, across randn calls).
    torch's float32 result depends on the CPU path: with ATEN_CPU_CAPABILITY=default (or on a
    CPU without AVX2) torch uses libm logf/cosf/sinf and differs in the last bits; this class
    reproduces the AVX2 path, which is what x86-64 torch runs by default.
    Which noise to use: an engine that must match a reference pipeline seeds this CPU stream.
    torch's CUDA randn is not reproducible across GPUs (Philox per thread, subsequence = global
    thread index, grid capped at SM count x blocks per SM: the values depend on the SM count).
    vdgx_rng (the project's own Philox stream) is for everything else.
*/
#ifndef VDGX_TORCHRNG_H_INCLUDED
#define VDGX_TORCHRNG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_torchrng_t vdgx_torchrng_t;

//  torch.Generator('cpu').manual_seed(seed).
vdgx_torchrng_t *vdgx_torchrng_new (uint64_t seed);
void vdgx_torchrng_destroy (vdgx_torchrng_t **self_p);
//  One mt19937 draw (torch's generator.random()).
uint32_t vdgx_torchrng_random (vdgx_torchrng_t *self);
//  torch.randn(n, generator=g, dtype=torch.float32), AVX2 CPU path.
void vdgx_torchrng_randn (vdgx_torchrng_t *self, float *dst, size_t n);
//  torch.randn(n, generator=g, dtype=torch.float64).
void vdgx_torchrng_randn_f64 (vdgx_torchrng_t *self, double *dst, size_t n);

void vdgx_torchrng_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
