/*  vdgx-worker: one model instance behind the broker (see vdgx_worker.h). */
#include "engine.h"
#include "vdgx_worker.h"

int
main (int argc, char **argv)
{
    vdgx_engines_register_builtin ();
    return vdgx_worker_main (argc, argv);
}
