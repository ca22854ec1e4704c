/*  toolkit_selftest.c - runs the selftests of the model toolkit (workers/nn, sample, text):
    `vdgx-toolkit-selftest [-v] [class...]` (all when none is named).
*/
#include "vdgx_selftest_main.h"

#include "vdgx_attn.h"
#include "vdgx_conv.h"
#include "vdgx_flow.h"
#include "vdgx_guide.h"
#include "vdgx_nn.h"
#include "vdgx_rng.h"
#include "vdgx_t5.h"
#include "vdgx_tok.h"
#include "vdgx_torchrng.h"
#include "vdgx_wsrc.h"

static const vdgx_selftest_class_t s_classes [] = {
    { "vdgx_nn", vdgx_nn_test },
    { "vdgx_wsrc", vdgx_wsrc_test },
    { "vdgx_attn", vdgx_attn_test },
    { "vdgx_conv", vdgx_conv_test },
    { "vdgx_tok", vdgx_tok_test },
    { "vdgx_t5", vdgx_t5_test },
    { "vdgx_rng", vdgx_rng_test },
    { "vdgx_torchrng", vdgx_torchrng_test },
    { "vdgx_flow", vdgx_flow_test },
    { "vdgx_guide", vdgx_guide_test },
};

int
main (int argc, char *argv [])
{
    return vdgx_selftest_main (argc, argv, s_classes, sizeof (s_classes) / sizeof (s_classes [0]));
}
