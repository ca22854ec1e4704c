/*  fuzz_wreply.c - libFuzzer target for the wreply decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("wreply")
