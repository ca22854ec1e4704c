/*  vdgx_fbtest_module.c - libvdgx_fbtest.so, a backend module for the tests: device "fbtest:N"
    keeps its tensors in separate host buffers (not the CPU backend's), takes BF16 (or any)
    activations, and implements no compute op, so every vdgx_op_* on it goes through the CPU
    fallback (download, compute, upload) of vdgx_backend.c. Loading it exercises the module
    loader end to end (dlopen, vdgx_backend_module_init, registration) without a GPU, and
    test_backend_ops runs every op on it against the CPU backend.
*/
#include "vdgx_backend.h"

#include <stdlib.h>
#include <string.h>

static const vdgx_backend_host_t *s_host;

static void *
s_alloc (vdgx_backend_t *b, size_t n)
{
    (void) b;
    return malloc (n? n: 1);
}

static void
s_free (vdgx_backend_t *b, void *p)
{
    (void) b;
    free (p);
}

static int
s_copy (vdgx_backend_t *b, void *dst, const void *src, size_t n)
{
    (void) b;
    if (n)
        memmove (dst, src, n);
    return 0;
}

static int
s_open (vdgx_backend_t *self, int ordinal, char **err)
{
    (void) err;
    if (ordinal > 3) {
        s_host->set_error (self, "fbtest: no device %d", ordinal);
        *err = strdup ("fbtest: only devices 0 to 3");
        return -1;
    }
    return 0;
}

static const vdgx_backend_ops_t s_ops = {
    .alloc = s_alloc, .free = s_free, .upload = s_copy, .download = s_copy, .copy = s_copy
};
static const vdgx_backend_impl_t s_impl = { "fbtest", s_open, NULL, &s_ops, 0, NULL };

const vdgx_backend_impl_t *vdgx_backend_module_init (const vdgx_backend_host_t *host, char **err);

const vdgx_backend_impl_t *
vdgx_backend_module_init (const vdgx_backend_host_t *host, char **err)
{
    if (!host || host->abi != VDGX_BACKEND_ABI) {
        *err = strdup ("fbtest: other backend interface version");
        return NULL;
    }
    s_host = host;
    return &s_impl;
}
