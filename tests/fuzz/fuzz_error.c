/*  fuzz_error.c - libFuzzer target for the error decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("error")
