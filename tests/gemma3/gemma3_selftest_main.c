/*  gemma3_selftest_main.c - runs the selftests of the Gemma 3 classes:
    `vdgx-gemma3-selftest [-v] [class...]` (all when none is named).
*/
#include "vdgx_selftest_main.h"

#include "gemma3.h"
#include "gemma3_tok.h"

static const vdgx_selftest_class_t s_classes [] = {
    { "gemma3_tok", gemma3_tok_test },
    { "gemma3", gemma3_test },
};

int
main (int argc, char *argv [])
{
    return vdgx_selftest_main (argc, argv, s_classes, sizeof (s_classes) / sizeof (s_classes [0]));
}
