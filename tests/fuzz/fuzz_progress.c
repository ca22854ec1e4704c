/*  fuzz_progress.c - libFuzzer target for the progress decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("progress")
