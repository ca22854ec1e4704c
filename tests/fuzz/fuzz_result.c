/*  fuzz_result.c - libFuzzer target for the result decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("result")
