/*  Selftest runner for the worker runtime and the client library, with the test engine
    registered: `vdgx-worker-selftest [class]`. */
#include <czmq.h>
#include "engine.h"
#include "vdgx_testgen.h"
#include "vdgx_runner.h"
#include "vdgx_worker.h"
#include "vdgx_tmpsweep.h"
//  The client selftest is declared here rather than including vdgx_client.h.
void vdgx_client_test (bool verbose);

int
main (int argc, char **argv)
{
    const char *which = argc > 1? argv [1]: NULL;
    bool verbose = getenv ("VDGX_VERBOSE") != NULL;
    vdgx_engine_register (&vdgx_testgen_engine_class);
    zsys_init ();
    if (!which || streq (which, "engine_registry")) {
        //  Registry rules: duplicates refused, exact names beat the longest "name-" prefix.
        printf (" * engine_registry: ");
        static vdgx_engine_class_t a, b;
        a = vdgx_testgen_engine_class;
        a.name = "testgen-big";
        b = vdgx_testgen_engine_class;
        assert (vdgx_engine_register (&vdgx_testgen_engine_class) == -1);
        assert (vdgx_engine_register (&b) == -1);       //  same name
        assert (vdgx_engine_register (NULL) == -1);
        assert (vdgx_engine_register (&a) == 0);
        assert (vdgx_engine_find ("testgen") == &vdgx_testgen_engine_class);
        assert (vdgx_engine_find ("testgen-small") == &vdgx_testgen_engine_class);
        assert (vdgx_engine_find ("testgen-big") == &a);
        assert (vdgx_engine_find ("testgen-big-2") == &a);
        assert (vdgx_engine_find ("testgenx") == NULL);
        assert (vdgx_engine_find ("wan") == NULL);
        assert (vdgx_engine_at (0) && !vdgx_engine_at (1000));
        printf ("OK\n");
    }
    if (!which || streq (which, "runner"))
        vdgx_runner_test (verbose);
    if (!which || streq (which, "worker"))
        vdgx_worker_test (verbose);
    if (!which || streq (which, "tmpsweep"))
        vdgx_tmpsweep_test (verbose);
    if (!which || streq (which, "client"))
        vdgx_client_test (verbose);
    return 0;
}
