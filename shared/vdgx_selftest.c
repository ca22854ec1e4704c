/*  vdgx_selftest.c - runs the selftests of libvdgx's classes.
        vdgx-selftest            all classes
        vdgx-selftest config     one class (-v for verbose output)
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vdgx_config.h"
#include "vdgx_genreq.h"
#include "vdgx_limits.h"
#include "vdgx_log.h"
#include "vdgx_mp.h"
#include "vdgx_msg.h"
#include "vdgx_sha256.h"
#include "vdgx_netlist.h"
#include "vdgx_image.h"
#include "vdgx_ratelimit.h"
#ifdef VDGX_HAVE_VIDEO
#include "vdgx_video.h"
#endif

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

static const s_class_t s_classes [] = {
    { "log", vdgx_log_test },
    { "sha256", vdgx_sha256_test },
    { "config", vdgx_config_test },
    { "mp", vdgx_mp_test },
    { "genreq", vdgx_genreq_test },
    { "limits", vdgx_limits_test },
    { "msg", vdgx_msg_test },
    { "netlist", vdgx_netlist_test },
    { "image", vdgx_image_test },
    { "ratelimit", vdgx_ratelimit_test },
    //  >>> video engineer: the video entry is already here, enabled by CMake (VDGX_HAVE_VIDEO)
    //  when shared/vdgx_video.c exists; add new classes above this line.
#ifdef VDGX_HAVE_VIDEO
    { "video", vdgx_video_test },
#endif
};

int
main (int argc, char *argv [])
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0 || strcmp (argv [i], "--verbose") == 0)
            verbose = true;
        else
        if (strcmp (argv [i], "-h") == 0 || strcmp (argv [i], "--help") == 0) {
            printf ("usage: %s [-v] [class]\nclasses:", argv [0]);
            for (size_t c = 0; c < sizeof (s_classes) / sizeof (s_classes [0]); c++)
                printf (" %s", s_classes [c].name);
            printf ("\n");
            return 0;
        }
        else
            only = argv [i];
    }
    int ran = 0;
    for (size_t c = 0; c < sizeof (s_classes) / sizeof (s_classes [0]); c++) {
        if (only && strcmp (only, s_classes [c].name))
            continue;
        printf (" * %s: ", s_classes [c].name);
        fflush (stdout);
        s_classes [c].test (verbose);
        printf ("OK\n");
        ran++;
    }
    if (ran == 0) {
        fprintf (stderr, "vdgx-selftest: unknown class '%s' (try --help)\n", only);
        return 1;
    }
    return 0;
}
