/*  Selftest runner of the Wan 2.1 DiT part: `vdgx-wan21-dit-selftest <class>` runs
    <class>_test (wan21_rng, wan21_sched, wan21_dit); no argument runs them all.
*/
#include "wan21_dit.h"
#include "wan21_rng.h"
#include "wan21_sched.h"

#include <stdio.h>
#include <string.h>

int
main (int argc, char *argv [])
{
    bool verbose = argc > 2 && strcmp (argv [2], "-v") == 0;
    const char *cls = argc > 1? argv [1]: "all";
    bool all = strcmp (cls, "all") == 0, ran = false;
    if (all || strcmp (cls, "wan21_rng") == 0) {
        wan21_rng_test (verbose);
        ran = true;
    }
    if (all || strcmp (cls, "wan21_sched") == 0) {
        wan21_sched_test (verbose);
        ran = true;
    }
    if (all || strcmp (cls, "wan21_dit") == 0) {
        wan21_dit_test (verbose);
        ran = true;
    }
    if (!ran) {
        fprintf (stderr, "unknown class '%s'\n", cls);
        return 2;
    }
    return 0;
}
