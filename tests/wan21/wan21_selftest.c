/*  wan21_selftest.c - runs the selftests of the Wan 2.1 engine classes:
    `vdgx-wan21-selftest [-v] [class...]` (all when none is named).
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wan21_dit.h"
#include "wan21_engine.h"
#include "wan21_rng.h"
#include "wan21_sched.h"
#include "wan21_t5.h"
#include "wan21_tok.h"
#include "wan21_vae.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

static const s_class_t s_classes [] = {
    { "wan21_tok", wan21_tok_test },
    { "wan21_t5", wan21_t5_test },
    { "wan21_rng", wan21_rng_test },
    { "wan21_sched", wan21_sched_test },
    { "wan21_dit", wan21_dit_test },
    { "wan21_vae", wan21_vae_test },
    { "wan21_engine", wan21_engine_test },
};
#define S_CLASS_COUNT (sizeof (s_classes) / sizeof (s_classes [0]))

int
main (int argc, char *argv [])
{
    bool verbose = false;
    int named = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            verbose = true;
        else
            named++;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            continue;
        size_t c = 0;
        while (c < S_CLASS_COUNT && strcmp (s_classes [c].name, argv [i]))
            c++;
        if (c == S_CLASS_COUNT) {
            fprintf (stderr, "unknown class '%s'\n", argv [i]);
            return 2;
        }
        s_classes [c].test (verbose);
    }
    if (!named)
        for (size_t c = 0; c < S_CLASS_COUNT; c++)
            s_classes [c].test (verbose);
    return 0;
}
