/*  wan21_vae_selftest.c - runs the selftests of the VAE and engine classes: `vdgx-wan21-vae-selftest
    [-v] [class...]` (all when none is named).
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wan21_vae.h"
#include "wan21_engine.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

int
main (int argc, char *argv [])
{
    const s_class_t classes [] = {
        { "wan21_vae", wan21_vae_test },
        { "wan21_engine", wan21_engine_test },
    };
    const size_t count = sizeof (classes) / sizeof (classes [0]);
    bool verbose = false;
    int named = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp (argv [i], "-v") == 0)
            verbose = true;
        else
            named++;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            continue;
        size_t c = 0;
        while (c < count && strcmp (classes [c].name, argv [i]))
            c++;
        if (c == count) {
            fprintf (stderr, "unknown class '%s'\n", argv [i]);
            return 2;
        }
        classes [c].test (verbose);
    }
    if (!named)
        for (size_t c = 0; c < count; c++)
            classes [c].test (verbose);
    return 0;
}
