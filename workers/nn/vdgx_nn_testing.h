/*  vdgx_nn_testing.h - helpers the toolkit selftests share: random inputs without zeros,
    normalised errors, downloads, and the CPU backend they run on.
*/
#ifndef VDGX_NN_TESTING_H_INCLUDED
#define VDGX_NN_TESTING_H_INCLUDED

#include "vdgx_nn.h"

//  n floats uniform in [-scale, scale] from a SplitMix64 stream, none exactly 0 (malloc).
float *vdgx_test_randv (uint64_t *state, size_t n, float scale);
//  max |got - want| / max(1, max |want|), with float64 or float32 references.
double vdgx_test_err (const float *got, const double *want, size_t n);
double vdgx_test_errf (const float *got, const float *want, size_t n);
//  A backend tensor as host f32 (malloc).
float *vdgx_test_download (vdgx_backend_t *b, const vdgx_tensor_t *t);
//  Prints the selftest's " * name: " line and opens the CPU backend (2 threads, f32).
vdgx_backend_t *vdgx_test_begin (const char *name, bool verbose);
//  Closes the backend and prints "OK".
void vdgx_test_end (vdgx_backend_t **b);

#endif
