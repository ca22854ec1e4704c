/*  fuzz_chunk.c - libFuzzer target for the chunk decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("chunk")
