/*  fuzz_control.c - libFuzzer target for the control decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("control")
