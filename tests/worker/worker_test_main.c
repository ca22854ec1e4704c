/*  vdgx-worker-test: vdgx-worker plus the test engine "testgen" (never installed). */
#include "engine.h"
#include "vdgx_testgen.h"
#include "vdgx_worker.h"

int
main (int argc, char **argv)
{
    vdgx_engines_register_builtin ();
    vdgx_engine_register (&vdgx_testgen_engine_class);
    return vdgx_worker_main (argc, argv);
}
