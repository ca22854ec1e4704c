/*  magi1_selftest.c - runs the selftests of the MAGI-1 engine classes:
    `vdgx-magi1-selftest [-v] [class...]` (all when none is named).
*/
#include "vdgx_selftest_main.h"

#include "magi1_dit.h"
#include "magi1_sample.h"
#include "magi1_vae.h"
#include "magi1_engine.h"

static const vdgx_selftest_class_t s_classes [] = {
    { "magi1_dit", magi1_dit_test },
    { "magi1_sample", magi1_sample_test },
    { "magi1_vae", magi1_vae_test },
    { "magi1_engine", magi1_engine_test },
};

int
main (int argc, char *argv [])
{
    return vdgx_selftest_main (argc, argv, s_classes, sizeof (s_classes) / sizeof (s_classes [0]));
}
