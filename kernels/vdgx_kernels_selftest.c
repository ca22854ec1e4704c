/*  vdgx-kernels-selftest [-v] [class ...] - runs the selftests of kernels/ (all by default). */
#include "vdgx_kernels_private.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

static const s_test_t s_tests [] = {
    { "tensor", vdgx_tensor_test }, { "json", vdgx_json_test }, { "backend", vdgx_backend_test },
    { "cpu", vdgx_cpu_test }, { "attn", vdgx_cpu_attn_test },
    { "ops1d", vdgx_cpu_ops1d_test }, { "quant", vdgx_quant_test }, { "ckpt", vdgx_ckpt_test },
    { "qgemm", vdgx_qgemm_test },
    { "attn_fast", vdgx_cpu_attn_fast_test },
    { "ew_fast", vdgx_cpu_ew_fast_test }, { "wino", vdgx_cpu_wino_test },
    { "pth", vdgx_pth_test },
};

int
main (int argc, char **argv)
{
    setvbuf (stdout, NULL, _IONBF, 0);
    bool verbose = false;
    int ran = 0;
    for (int a = 1; a < argc; a++)
        if (strcmp (argv [a], "-v") == 0)
            verbose = true;
    for (int a = 1; a < argc; a++) {
        if (strcmp (argv [a], "-v") == 0)
            continue;
        bool found = false;
        for (size_t i = 0; i < sizeof (s_tests) / sizeof (s_tests [0]); i++)
            if (strcmp (argv [a], s_tests [i].name) == 0) {
                s_tests [i].test (verbose);
                found = true;
                ran++;
            }
        if (!found) {
            fprintf (stderr, "unknown test class: %s\n", argv [a]);
            return 1;
        }
    }
    if (!ran)
        for (size_t i = 0; i < sizeof (s_tests) / sizeof (s_tests [0]); i++)
            s_tests [i].test (verbose);
    return 0;
}
