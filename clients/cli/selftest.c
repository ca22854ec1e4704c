/*  vdgx-cli-selftest CLASS: runs one class selftest of the CLI (ctest selftest.CLASS). */
#include <stdio.h>
#include <string.h>
#include "vdgx_progressbar.h"
#include "vdgx_stats.h"
#include "vdgx_supervisor.h"

int
main (int argc, char **argv)
{
    bool verbose = argc > 2 && strcmp (argv [2], "-v") == 0;
    const char *which = argc > 1? argv [1]: "all";
    bool all = strcmp (which, "all") == 0, ran = false;
    if (all || strcmp (which, "progressbar") == 0) { vdgx_progressbar_test (verbose); ran = true; }
    if (all || strcmp (which, "stats") == 0) { vdgx_stats_test (verbose); ran = true; }
    if (all || strcmp (which, "supervisor") == 0) { vdgx_supervisor_test (verbose); ran = true; }
    if (!ran) {
        fprintf (stderr, "vdgx-cli-selftest: unknown class '%s'\n", which);
        return 2;
    }
    return 0;
}
