/*  wan21_selftest.c - runs the selftests of the Wan 2.1 engine classes:
    `vdgx-wan21-selftest [-v] [class...]` (all when none is named).
*/
#include "vdgx_selftest_main.h"

#include "wan21_clip.h"
#include "wan21_dit.h"
#include "wan21_engine.h"
#include "wan21_i2v.h"
#include "wan21_vae.h"

static const vdgx_selftest_class_t s_classes [] = {
    { "wan21_dit", wan21_dit_test },
    { "wan21_vae", wan21_vae_test },
    { "wan21_clip", wan21_clip_test },
    { "wan21_i2v", wan21_i2v_test },
    { "wan21_engine", wan21_engine_test },
};

int
main (int argc, char *argv [])
{
    return vdgx_selftest_main (argc, argv, s_classes, sizeof (s_classes) / sizeof (s_classes [0]));
}
