/*  vdgx-worker: one model instance behind the broker (see vdgx_worker.h). */
#include "engine.h"
#include "vdgx_worker.h"
#include <string.h>
#ifdef VDGX_HAVE_WAN21
#include "wan21_engine.h"
#endif
#ifdef VDGX_HAVE_LTX2
#include "ltx2_engine.h"
#endif
#ifdef VDGX_HAVE_MAGI1
#include "magi1_engine.h"
#endif

int
main (int argc, char **argv)
{
#ifdef VDGX_HAVE_LTX2
    if (argc == 5 && strcmp (argv [1], "--make-tiny-checkpoint") == 0 && strcmp (argv [3], "--model") == 0
    &&  strcmp (argv [4], "ltx2-tiny") == 0)
        return ltx2_tiny_main (argv [2]);
#endif
#ifdef VDGX_HAVE_MAGI1
    if (argc == 5 && strcmp (argv [1], "--make-tiny-checkpoint") == 0 && strcmp (argv [3], "--model") == 0
    &&  strcmp (argv [4], "magi1-tiny") == 0)
        return magi1_tiny_main (argv [2]);
#endif
#ifdef VDGX_HAVE_WAN21
    if (argc == 3 && strcmp (argv [1], "--make-tiny-checkpoint") == 0)
        return wan21_tiny_main (argv [2], NULL);
    if (argc == 5 && strcmp (argv [1], "--make-tiny-checkpoint") == 0 && strcmp (argv [3], "--model") == 0)
        return wan21_tiny_main (argv [2], argv [4]);
#endif
    vdgx_engines_register_builtin ();
    return vdgx_worker_main (argc, argv);
}
