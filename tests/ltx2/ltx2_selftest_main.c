/*  ltx2_selftest_main.c - runs the selftests of the LTX-2 classes (text conditioning, DiT):
    `vdgx-ltx2-selftest [-v] [class...]` (all when none is named).
*/
#include "vdgx_selftest_main.h"

#include "ltx2_dit.h"
#include "ltx2_audio.h"
#include "ltx2_prompt.h"
#include "ltx2_sample.h"
#include "ltx2_engine.h"
#include "ltx2_text.h"
#include "ltx2_vae.h"

static const vdgx_selftest_class_t s_classes [] = {
    { "ltx2_text", ltx2_text_test },
    { "ltx2_prompt", ltx2_prompt_test },
    { "ltx2_vae", ltx2_vae_test },
    { "ltx2_dit", ltx2_dit_test },
    { "ltx2_audio", ltx2_audio_test },
    { "ltx2_sample", ltx2_sample_test },
    { "ltx2_engine", ltx2_engine_test },
};

int
main (int argc, char *argv [])
{
    return vdgx_selftest_main (argc, argv, s_classes, sizeof (s_classes) / sizeof (s_classes [0]));
}
