/*  fuzz_wstate.c - libFuzzer target for the wstate decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("wstate")
