/*  vdgx_broker_selftest.c - runs the selftests of the broker's classes.
        vdgx-broker-selftest [-v] [class]
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "vdgx_acl.h"
#include "vdgx_ostree.h"
#include "vdgx_syncer.h"
#include "vdgx_jobqueue.h"
#include "vdgx_registry.h"
#include "vdgx_jobstore.h"
#include "vdgx_storeguard.h"
#include "vdgx_outcheck.h"
#include "vdgx_storecheck.h"
#include "vdgx_quota.h"
#include "vdgx_broker.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

static const s_class_t s_classes [] = {
    { "acl", vdgx_acl_test },
    { "ostree", vdgx_ostree_test },
    { "syncer", vdgx_syncer_test },
    { "jobqueue", vdgx_jobqueue_test },
    { "registry", vdgx_registry_test },
    { "jobstore", vdgx_jobstore_test },
    { "storeguard", vdgx_storeguard_test },
    { "outcheck", vdgx_outcheck_test },
    { "storecheck", vdgx_storecheck_test },
    { "quota", vdgx_quota_test },
    { "broker", vdgx_broker_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            verbose = true;
        else
            only = argv [i];
    }
    size_t n = sizeof (s_classes) / sizeof (s_classes [0]);
    bool found = false;
    for (size_t c = 0; c < n; c++)
        if (!only || strcmp (only, s_classes [c].name) == 0) {
            s_classes [c].test (verbose);
            found = true;
        }
    if (!found) {
        fprintf (stderr, "unknown class '%s'\n", only);
        return 1;
    }
    return 0;
}
